"""Folders as users have them: phone photos with an EXIF orientation, colour-coded masks (a table
or ``auto``), TIFF and multi-band images, 16-bit masks, mask name patterns. Every number is
checked against Pillow, tifffile or NumPy read here, independently of the reader."""

import json

import numpy as np
import pytest
import tifffile
from conftest import tiny_compare_argv, write_mask_folder
from PIL import Image, ImageOps

from sm_pixel_ce.cli import main
from sm_pixel_ce.compare.options import CompareOptions
from sm_pixel_ce.compare.splitting import split_indices
from sm_pixel_ce.data import (
    DataError,
    FolderReader,
    FolderSource,
    ImageKind,
    OptionsMismatch,
    load_folder,
    pair_files,
)
from sm_pixel_ce.exporting.calibration import read_calibration
from sm_pixel_ce.flavor import keras

#: CamVid-like colours of three classes, and the void colour.
COLOURS = {0: (128, 64, 128), 1: (70, 70, 70), 2: (107, 142, 35)}
VOID = (0, 0, 0)
NAMES = ["road", "building", "vegetation"]


def _blocks(seed, height, width, classes=3, block=8):
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, classes, (height // block, width // block))
    return np.repeat(np.repeat(grid, block, 0), block, 1)


def _one_line(error):
    text = str(error)
    assert len(text.splitlines()) == 1, text
    return text


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sm-pixel-ce compare: error: "), err
    return err[0]


# --- EXIF orientation ----------------------------------------------------------------------------


def _quadrant_view(height, width):
    """A picture of four coloured quadrants, and its mask (classes 0-3 by quadrant)."""
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2, width // 2 :] = 1
    mask[height // 2 :, : width // 2] = 2
    mask[height // 2 :, width // 2 :] = 3
    palette = np.array([(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 230, 40)], np.uint8)
    return palette[mask], mask


def _save_with_orientation(path, picture, orientation, **save):
    image = Image.fromarray(picture)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif.tobytes(), **save)


def _phone_folder(root, height, width, count=2):
    """Photos shown ``width`` x ``height`` whose JPEG is stored turned (EXIF orientation 6:
    rotate 90° clockwise to show), with masks drawn on the view."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    view, mask = _quadrant_view(height, width)
    for i in range(count):
        stored = np.ascontiguousarray(np.rot90(view, 1))  # what the camera wrote
        _save_with_orientation(root / "images" / f"IMG_{i}.jpg", stored, 6, quality=95)
        Image.fromarray(mask).save(root / "masks" / f"IMG_{i}.png")
    return view, mask


@pytest.mark.one_flavor
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    picture = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3)).astype(np.uint8)
    path = tmp_path / "a.png"
    _save_with_orientation(path, picture, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    reader = FolderReader()
    np.testing.assert_array_equal(reader.read_image(str(path)), expected)
    np.testing.assert_array_equal(FolderReader(exif=False).read_image(str(path)), picture)
    height, width = expected.shape[:2]
    np.testing.assert_allclose(reader.image(str(path), height, width).numpy(), expected / 255)


@pytest.mark.one_flavor
def test_the_streamed_images_are_turned_too(tmp_path):
    # Eight orientations in one folder: the tf.data graph picks each one's turn.
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    expected = []
    for o in range(1, 9):
        picture = np.random.default_rng(o).integers(0, 256, (8, 8, 3)).astype(np.uint8)
        _save_with_orientation(tmp_path / "images" / f"{o}.png", picture, o)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "masks" / f"{o}.png")
        shown = ImageOps.exif_transpose(Image.open(tmp_path / "images" / f"{o}.png"))
        expected.append(np.asarray(shown))
    images, _ = load_folder(str(tmp_path), classes=2, size=8)
    np.testing.assert_allclose(images, np.stack(expected) / 255, atol=1e-6)


def test_a_portrait_phone_photo_pairs_with_the_mask_drawn_on_its_view(tmp_path, capsys):
    view, mask = _phone_folder(tmp_path / "data", height=96, width=64)
    image_path = str(tmp_path / "data" / "images" / "IMG_0.jpg")
    assert Image.open(image_path).size == (96, 64)  # stored landscape, shown portrait
    reader = FolderReader(classes=4)
    good, _ = reader.check(reader.pair(str(tmp_path / "data"))[0])
    assert len(good) == 2 and reader.turned == 2
    shown = np.asarray(ImageOps.exif_transpose(Image.open(image_path))).astype(int)
    image = reader.read_image(image_path)
    assert image.shape == (96, 64, 3)
    # Pillow's values, turned as exif_transpose turns them; the JPEG's loss is small.
    np.testing.assert_array_equal(image, shown)
    assert np.abs(image - view.astype(int)).mean() < 3
    for c in range(4):  # every class of the mask lies on its own colour
        assert np.abs(image[mask == c].mean(0) - view[mask == c][0]).max() < 6

    # As stored (--no-exif) the mask no longer fits, and the error says why.
    with pytest.raises(DataError) as info:
        FolderReader(classes=4, exif=False).check(good)
    text = _one_line(info.value)
    assert text.startswith(str(tmp_path / "data" / "masks" / "IMG_0.png"))
    assert "EXIF orientation 6" in text and "drop --no-exif" in text
    argv = tiny_compare_argv(tmp_path / "out", "--no-exif", data=tmp_path / "data")
    argv[argv.index("--classes") + 1] = "4"
    assert main(argv) == 1
    assert "drop --no-exif" in _error_line(capsys)

    # A mask drawn on the stored picture: named, with the orientation and the way out.
    Image.fromarray(np.ascontiguousarray(np.rot90(mask, 1))).save(
        tmp_path / "data" / "masks" / "IMG_1.png"
    )
    with pytest.raises(DataError) as info:
        reader.check(good)
    text = _one_line(info.value)
    assert text.startswith(str(tmp_path / "data" / "masks" / "IMG_1.png"))
    assert "the mask is 96x64 px, the size of its image" in text and "as stored" in text
    assert "EXIF orientation 6: rotated 90° clockwise" in text and "--no-exif" in text


@pytest.mark.one_flavor
def test_a_square_phone_photo_is_turned_although_any_mask_would_fit(tmp_path):
    view, mask = _phone_folder(tmp_path, height=64, width=64)
    path = str(tmp_path / "images" / "IMG_0.jpg")
    shown = np.asarray(ImageOps.exif_transpose(Image.open(path))).astype(int)
    images, masks = load_folder(str(tmp_path), classes=4, size=64)
    assert np.abs(images[0] * 255 - shown).max() <= 4.01
    np.testing.assert_array_equal(masks[0], mask)
    for c in range(4):
        assert np.abs(images[0][mask == c].mean(0) * 255 - view[mask == c][0]).max() < 6
    # Read as stored, the same mask would train on a picture turned a quarter away from it.
    stored, _ = load_folder(str(tmp_path), classes=4, size=64, exif=False)
    assert np.abs(stored[0] * 255 - view).mean() > 50


# --- colour-coded masks --------------------------------------------------------------------------


def _colour_folder(root, count=8, side=32, with_void=True):
    """RGB images and CamVid-like colour masks (8-px blocks), a 2-px void border on the left;
    returns the expected classes (255 for void)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    expected = []
    for i in range(count):
        classes = _blocks(i, side, side)
        if with_void:
            classes[:, :2] = 255
        colours = np.zeros((side, side, 3), np.uint8)
        for c, colour in COLOURS.items():
            colours[classes == c] = colour
        colours[classes == 255] = VOID
        noise = np.random.default_rng(100 + i).integers(0, 40, (side, side, 3))
        Image.fromarray((colours * 0.8 + noise).astype(np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(colours).save(root / "masks" / f"{i}.png")
        expected.append(classes)
    return np.stack(expected)


def _table(path):
    rows = [{"class": c, "name": n, "color": list(COLOURS[c])} for c, n in enumerate(NAMES)]
    path.write_text(json.dumps(rows))
    return str(path)


@pytest.mark.one_flavor
def test_colour_masks_with_a_table(tmp_path):
    expected = _colour_folder(tmp_path / "data")
    table = _table(tmp_path / "colours.json")
    options = dict(mask_colors=table, ignore_color=VOID)
    _, masks = load_folder(str(tmp_path / "data"), 3, size=32, ignore_index=255, **options)
    np.testing.assert_array_equal(masks, expected)
    reader = FolderReader(3, 255, **options)
    assert reader.class_names() == NAMES
    # Unknown colour: named with its file; --skip-bad does not hide a table that does not fit.
    bad = np.asarray(Image.open(tmp_path / "data" / "masks" / "5.png")).copy()
    bad[10:12, 10:12] = (1, 2, 3)
    Image.fromarray(bad).save(tmp_path / "data" / "masks" / "5.png")
    pairs = reader.pair(str(tmp_path / "data"))[0]
    with pytest.raises(OptionsMismatch) as info:
        reader.check(pairs, skip_bad=True)
    text = _one_line(info.value)
    assert text.startswith(str(tmp_path / "data" / "masks" / "5.png"))
    assert "colour(s) (1,2,3) (4 px) not in --mask-colors" in text and table in text
    # Without --mask-colors a colour mask says what to pass.
    with pytest.raises(OptionsMismatch, match="pass --mask-colors FILE or --mask-colors auto"):
        FolderReader(3, 255).check(pairs)
    for rows, message in (
        ([{"class": 7, "color": [1, 2, 3]}], "entry 0 has class 7, out of range"),
        ([{"class": 1, "color": [1, 2]}], "entry 0"),
        ({"road": [1, 2, 3]}, "expects a JSON list"),
    ):
        (tmp_path / "bad.json").write_text(json.dumps(rows))
        with pytest.raises(DataError, match=message):
            FolderReader(3, 255, mask_colors=str(tmp_path / "bad.json"))


@pytest.mark.one_flavor  # reading colour masks; the flavour's training is tested elsewhere
def test_colour_masks_numbered_automatically(tmp_path, capsys):
    expected = _colour_folder(tmp_path / "data")
    reader = FolderReader(3, 255, mask_colors="auto", ignore_color=VOID)
    pairs, _ = reader.check(reader.pair(str(tmp_path / "data"))[0])
    # Ascending (R, G, B): (70,70,70) < (107,142,35) < (128,64,128).
    order = sorted(COLOURS.values())
    renumber = {c: order.index(colour) for c, colour in COLOURS.items()}
    renumbered = np.vectorize(lambda v: renumber.get(v, 255))(expected)
    masks = np.stack([m for _, m in FolderSource(pairs, 32, reader).dataset().as_numpy_iterator()])
    np.testing.assert_array_equal(masks, renumbered)
    rows = reader.describe()["mask_colors"]["colors"]
    assert [tuple(r["color"]) for r in rows] == order + [VOID]
    assert [r["pixels"] for r in rows] == [int((renumbered == c).sum()) for c in (0, 1, 2, 255)]
    # The number of colours must be --classes; each count is in the message.
    with pytest.raises(DataError) as info:
        FolderReader(4, 255, mask_colors="auto", ignore_color=VOID).check(pairs)
    text = _one_line(info.value)
    assert text.startswith("--mask-colors auto: the masks hold 3 colour(s)")
    assert f"(70,70,70) {rows[0]['pixels']} px" in text and "--classes is 4" in text
    with pytest.raises(DataError, match="hold 4 colour.*--ignore-color R,G,B"):
        FolderReader(3, 255, mask_colors="auto").check(pairs)

    argv = tiny_compare_argv(
        tmp_path / "out", "--mask-colors", "auto", "--ignore-color", "0,0,0", data=tmp_path / "data"
    )
    at = argv.index("--ignore-index")
    del argv[at : at + 2]  # the ignore value comes from --ignore-color
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"colour (70, 70, 70) -> class 0, {rows[0]['pixels']} px" in printed
    with open(tmp_path / "out" / "report.json") as f:
        config = json.load(f)["config"]
    assert config["ignore_index"] == 255  # what --ignore-color's pixels got
    assert config["class_names"] == ["(70,70,70)", "(107,142,35)", "(128,64,128)"]
    assert config["mask_colors"]["colors"] == rows


# --- TIFF, bands and the scaling convention ------------------------------------------------------


def _tiff_folder(root, count=8, side=32, bands=4, dtype=np.uint16, compress_every=2):
    """``bands``-band TIFFs whose bands follow the classes (some zlib or LZW, one planar)
    and grey index masks; returns the images as written."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 3.0
    written = []
    for i in range(count):
        classes = _blocks(i, side, side)
        rng = np.random.default_rng(i)
        image = (classes[..., None] + 1) * np.linspace(0.1, 0.3, bands) + rng.random(
            (side, side, bands)
        ) * 0.05
        image = (image * top).astype(dtype)
        if i == 1:
            tifffile.imwrite(
                root / "images" / f"{i}.tif",
                np.moveaxis(image, -1, 0),
                photometric="minisblack",
                planarconfig="separate",
            )
        else:
            tifffile.imwrite(
                root / "images" / f"{i}.tif",
                image,
                photometric="minisblack",
                planarconfig="contig",
                # LZW needs imagecodecs, as many GIS and microscopy TIFFs do.
                compression=("zlib", "lzw")[i // 2 % 2] if i % compress_every == 0 else None,
            )
        mask = classes.astype(np.uint8)
        mask[:2] = 255
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
        written.append(image)
    return np.stack(written)


@pytest.mark.one_flavor
def test_multiband_uint16_tiffs_are_divided_by_65535(tmp_path):
    written = _tiff_folder(tmp_path)
    reader = FolderReader(3, 255)
    pairs, _ = reader.check(reader.pair(str(tmp_path))[0])
    assert reader.kind == ImageKind("uint16", 4)
    for (path, _), array in zip(pairs, written):
        stored = tifffile.imread(path)
        stored = np.moveaxis(stored, 0, -1) if path.endswith("1.tif") else stored  # planar
        np.testing.assert_array_equal(stored, array)
        np.testing.assert_array_equal(reader.read_image(path), stored)
    images, _ = load_folder(str(tmp_path), 3, size=32, ignore_index=255)
    np.testing.assert_allclose(images, written / 65535.0, atol=1e-6)
    three, _ = load_folder(str(tmp_path), 3, size=32, ignore_index=255, bands="0,1,2")
    np.testing.assert_allclose(three, written[..., :3] / 65535.0, atol=1e-6)
    # A band the images do not have: one line naming the file and the option.
    with pytest.raises(OptionsMismatch) as info:
        FolderReader(3, 255, bands=(0, 4)).check(pairs, skip_bad=True)
    text = _one_line(info.value)
    assert text.startswith(pairs[0][0]) and "--bands 0,4 asks for band 4" in text
    assert "the image has 4 band(s) (0-3" in text
    # Export calibration reads the folder the same way.
    calibration, _ = read_calibration(str(tmp_path), 32, 32)
    np.testing.assert_array_equal(calibration, images)


@pytest.mark.one_flavor
def test_float_tiffs_enter_as_they_are(tmp_path):
    written = _tiff_folder(tmp_path, count=3, bands=2, dtype=np.float32, compress_every=1)
    images, _ = load_folder(str(tmp_path), 3, size=32, ignore_index=255)
    assert images.shape == (3, 32, 32, 2) and images.max() > 1.0  # not divided, not clipped
    np.testing.assert_allclose(images, written, rtol=1e-5)


@pytest.mark.one_flavor
def test_image_formats_and_bands(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 24, 3)).astype(np.uint8)
    grey = rgb[..., 0]
    grey16 = (grey.astype(np.uint16) * 257 + 3).astype(np.uint16)
    files = {
        "a.bmp": (Image.fromarray(rgb), {}, rgb),
        "b.webp": (Image.fromarray(rgb), {"lossless": True}, rgb),
        "c.png": (Image.fromarray(grey), {}, np.repeat(grey[..., None], 3, -1)),
        "d.png": (Image.fromarray(np.dstack([rgb, grey])), {}, rgb),  # RGBA: alpha dropped
        "e.png": (Image.fromarray(grey16), {}, np.repeat(grey16[..., None], 3, -1)),
        "f.tif": (None, {}, np.repeat(grey16[..., None], 3, -1)),
    }
    tifffile.imwrite(tmp_path / "f.tif", grey16)
    reader = FolderReader()
    for name, (image, save, expected) in files.items():
        if image is not None:
            image.save(tmp_path / name, **save)
        got = reader.read_image(str(tmp_path / name))
        assert got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected, err_msg=name)
    one = FolderReader(bands="0")
    assert one.read_image(str(tmp_path / "c.png")).shape == (16, 24, 1)
    np.testing.assert_array_equal(one.read_image(str(tmp_path / "d.png"))[..., 0], rgb[..., 0])
    alpha = FolderReader(bands=(3,)).read_image(str(tmp_path / "d.png"))
    np.testing.assert_array_equal(alpha[..., 0], grey)
    assert reader.image(str(tmp_path / "e.png"), 16, 24).numpy().max() == pytest.approx(
        grey16.max() / 65535, abs=1e-6
    )


def test_a_saved_model_standardises_uint16_bands_and_predicts_without_the_run(tmp_path, capsys):
    written = _tiff_folder(tmp_path / "data")
    out = tmp_path / "out"
    assert main(tiny_compare_argv(out, data=tmp_path / "data")) == 0
    assert "images: 4 band(s) of uint16, divided by 65535, standardised" in capsys.readouterr().out
    with open(out / "report.json") as f:
        config = json.load(f)["config"]
    train, val = split_indices(8, 0.25, seed=0)
    scaled = (written[train] / 65535.0).reshape(-1, 4)
    statistics = config["input"]["normalization"]
    np.testing.assert_allclose(statistics["mean"], scaled.mean(0), rtol=1e-5)
    np.testing.assert_allclose(statistics["variance"], scaled.var(0), rtol=1e-4)
    model = keras.models.load_model(str(out / "model_cce.keras"))
    first = model.layers[1]
    assert isinstance(first, keras.layers.Normalization) and model.input_shape == (None, 32, 32, 4)
    np.testing.assert_allclose(np.ravel(first.mean), statistics["mean"], rtol=1e-6)
    # Prediction needs the file alone: the images read as the reader reads them.
    reader = FolderReader()
    pairs = pair_files(str(tmp_path / "data"))
    images = np.stack([reader.image(pairs[i][0], 32, 32).numpy() for i in val])
    np.testing.assert_allclose(images, written[val] / 65535.0, atol=1e-6)
    saved = np.load(out / "predictions.npz")
    assert saved["val_images"].shape == (2, 32, 32, 4)
    np.testing.assert_array_equal(np.asarray(model(images)).argmax(-1), saved["pred_cce"])

    # Pretrained encoders are RGB: 4 bands are refused, by the option or from the data.
    argv = tiny_compare_argv(
        tmp_path / "o2", "--encoder-weights", "imagenet", data=tmp_path / "data"
    )
    assert main(argv) == 1
    line = _error_line(capsys)
    assert "--encoder-weights imagenet: the encoder's weights take 3 bands" in line
    assert "the images give 4; choose 3 with --bands" in line
    argv = tiny_compare_argv(
        tmp_path / "o3", "--encoder-weights", "imagenet", "--bands", "0,1,2,3", data=tmp_path
    )
    assert main(argv) == 2
    assert "--encoder-weights imagenet takes 3 bands" in _error_line(capsys)


# --- 16-bit masks, names and folders -------------------------------------------------------------


@pytest.mark.one_flavor
def test_sixteen_bit_masks(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    expected = []
    for i in range(3):
        mask = (_blocks(i, 32, 32, classes=300)).astype(np.uint16)
        mask[:2] = 65535
        mask[8:16, 8:16] = 299  # the largest class, beyond one byte
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "images" / f"{i}.png")
        if i == 2:
            tifffile.imwrite(tmp_path / "masks" / f"{i}.tif", mask)
        else:
            Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
        expected.append(mask)
    assert Image.open(tmp_path / "masks" / "0.png").mode == "I;16"
    _, masks = load_folder(str(tmp_path), 300, size=32, ignore_index=65535)
    assert masks.dtype == np.uint16
    np.testing.assert_array_equal(masks, np.stack(expected))
    with pytest.raises(OptionsMismatch) as info:
        load_folder(str(tmp_path), 299, size=32, ignore_index=65535)
    assert "out of range; expected values in [0, 298] or the ignore value 65535" in str(info.value)
    # Few classes in a 16-bit file: streamed as uint8.
    small = np.stack(expected).copy() % 3
    for i in range(2):
        Image.fromarray(small[i].astype(np.uint16)).save(tmp_path / "masks" / f"{i}.png")
    tifffile.imwrite(tmp_path / "masks" / "2.tif", small[2].astype(np.uint16))
    _, masks = load_folder(str(tmp_path), 3, size=32)
    assert masks.dtype == np.uint8
    np.testing.assert_array_equal(masks, small)
    CompareOptions(data=str(tmp_path), classes=300, ignore_index=65535)
    with pytest.raises(ValueError, match=r"--ignore-index must be a mask value in \[0, 65535\]"):
        CompareOptions(data=str(tmp_path), classes=3, ignore_index=70000)


def _patterned_folder(root, count=6):
    """``images/img_<i>.jpg`` with ``labels/img_<i>_mask.png`` (16-bit, 300 classes)."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(count):
        mask = _blocks(i, 32, 32, classes=300).astype(np.uint16)
        mask[:, :2] = 65535
        picture = np.stack([mask % 256, mask // 2 % 256, np.full_like(mask, 90)], -1)
        Image.fromarray(picture.astype(np.uint8)).save(root / "images" / f"img_{i:03d}.jpg")
        Image.fromarray(mask).save(root / "labels" / f"img_{i:03d}_mask.png")


@pytest.mark.one_flavor
def test_mask_name_patterns(tmp_path):
    _patterned_folder(tmp_path)
    reader = FolderReader(masks=str(tmp_path / "labels"), mask_pattern="{stem}_mask.png")
    pairs, skipped = reader.pair(str(tmp_path))
    assert not skipped
    assert [(p.split("/")[-1], m.split("/")[-1]) for p, m in pairs][:2] == [
        ("img_000.jpg", "img_000_mask.png"),
        ("img_001.jpg", "img_001_mask.png"),
    ]
    # By stem alone nothing pairs: the count and the first names, and what to do.
    with pytest.raises(DataError) as info:
        FolderReader(masks=str(tmp_path / "labels")).pair(str(tmp_path))
    text = _one_line(info.value)
    assert "6 image(s) without a mask: img_000.jpg, img_001.jpg, img_002.jpg and 3 more" in text
    assert "--mask-pattern" in text and "--skip-bad" in text
    # Masks beside the images: the pattern tells them apart.
    for mask in (tmp_path / "labels").iterdir():
        mask.rename(tmp_path / "images" / mask.name)
    (tmp_path / "images" / "img_005_mask.png").unlink()
    same = FolderReader(masks=str(tmp_path / "images"), mask_pattern="{stem}_mask.png")
    with pytest.raises(DataError) as info:
        same.pair(str(tmp_path))
    assert (
        "(1 image(s) without a mask: img_005.jpg); with --mask-pattern {stem}_mask.png, the "
        "mask of img_005 is img_005_mask.png" in _one_line(info.value)
    )
    pairs, skipped = same.pair(str(tmp_path), skip_bad=True)
    assert len(pairs) == 5 and [s["image"].split("/")[-1] for s in skipped] == ["img_005.jpg"]
    with pytest.raises(DataError, match="pairing by file stem would pair every image with itself"):
        FolderReader(masks=str(tmp_path / "images")).pair(str(tmp_path))
    for bad in ("{stem}.jpg", "mask.png", "{stem}_{x}.png", "masks/{stem}.png", "{stem}{stem}.png"):
        with pytest.raises(ValueError, match="--mask-pattern must be a file name with {stem} once"):
            CompareOptions(data=str(tmp_path), classes=3, mask_pattern=bad)


# A legend of 300 classes does not fit the predictions picture; the picture is not checked here.
@pytest.mark.one_flavor  # reading patterned 16-bit folders
@pytest.mark.filterwarnings("ignore:Tight layout not applied")
def test_patterned_sixteen_bit_folder_end_to_end(tmp_path):
    _patterned_folder(tmp_path / "data")
    argv = tiny_compare_argv(
        tmp_path / "out",
        "--masks",
        str(tmp_path / "data" / "labels"),
        "--mask-pattern",
        "{stem}_mask.png",
        data=tmp_path / "data",
    )
    argv[argv.index("--classes") + 1] = "300"
    argv[argv.index("--ignore-index") + 1] = "65535"
    assert main(argv) == 0
    saved = np.load(tmp_path / "out" / "predictions.npz")
    assert saved["val_masks"].dtype == np.uint16 and saved["pred_cce"].dtype == np.uint16
    expected = np.asarray(Image.open(tmp_path / "data" / "labels" / "img_000_mask.png"))
    assert set(np.unique(saved["val_masks"])) <= set(np.unique(expected)) | set(range(300))
    assert saved["pred_cce"].max() < 300
    # 8-bit images enter as they always did: divided by 255, no standardisation layer.
    model = keras.models.load_model(str(tmp_path / "out" / "model_cce.keras"))
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)
    assert model.input_shape == (None, 32, 32, 3)


def test_unpaired_files_and_bad_options_are_one_line(tmp_path, capsys):
    folder = write_mask_folder(tmp_path / "data")
    (folder / "masks" / "007.png").unlink()
    argv = tiny_compare_argv(tmp_path / "out", data=folder)
    assert main(argv) == 1
    line = _error_line(capsys)
    assert "unpaired files (1 image(s) without a mask: 007.png)" in line
    assert "--skip-bad" in line
    for flag, message in (
        (["--bands", "a"], "--bands must be comma-separated band indices"),
        (["--ignore-color", "1,2"], "--ignore-color must be R,G,B"),
        (["--ignore-color", "1,2,3"], "--ignore-color marks a colour of colour-coded masks"),
        (["--mask-colors", "nowhere.json"], "--mask-colors must be auto or a JSON file"),
    ):
        assert main(argv + flag) == 2
        assert message in _error_line(capsys)


@pytest.mark.one_flavor
def test_the_format_bench_writes_the_same_pictures_in_every_format(tmp_path):
    from sm_pixel_ce.bench.formats import measure_decoding, write_format_folder

    tiff = write_format_folder(str(tmp_path / "tiff"), "tiff", 3, 32)
    png = write_format_folder(str(tmp_path / "png"), "png", 3, 32)
    wide = tifffile.imread(f"{tiff}/images/00001.tif")
    assert wide.shape == (32, 32, 4) and wide.dtype == np.uint16
    eight = np.asarray(Image.open(f"{png}/images/00001.png"))
    np.testing.assert_array_equal(eight, wide[..., :3] >> 8)
    row = measure_decoding(tiff, 32)
    assert (row["images"], row["channels"], row["dtype"]) == (3, 4, "uint16")
    assert row["images_per_s"] > 0
