"""The --data folder loader (tf.data, palette masks, nearest resize, clear errors) and the
scenes."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from sm_pixel_ce.data import (
    CLASS_NAMES,
    NUM_CLASSES,
    ArraySource,
    DataError,
    FolderSource,
    check_pairs,
    decode_image,
    list_files,
    load_folder,
    locate_bad_file,
    make_scenes,
    pair_by_stem,
    pair_files,
    read_mask,
    resize_mask,
)

# TensorFlow's decoding and NumPy, no Keras object: the same in both Keras flavours, so the
# Keras 3 process alone runs it.
pytestmark = pytest.mark.one_flavor

# A palette whose colours are not their indices, so only index-preserving decoding passes.
_PALETTE = [200, 10, 10, 10, 200, 10, 10, 10, 200] + [0, 0, 0] * 252 + [255, 255, 255]


def _mask(seed, side, classes=3):
    rng = np.random.default_rng(seed)
    mask = np.repeat(
        np.repeat(rng.integers(0, classes, (side // 8, side // 8)), 8, 0), 8, 1
    ).astype(np.uint8)
    mask[:2] = 255  # void border
    return mask


def _write_folder(root, count=4, side=32, palette_at=(1,), jpeg_at=(2,)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    masks = []
    for i in range(count):
        mask = _mask(i, side)
        m = mask.astype(np.int32)
        image = np.stack([m * 60 % 256, np.full_like(m, 90), 255 - m * 40 % 256], -1).astype(
            np.uint8
        )
        suffix = ".jpg" if i in jpeg_at else ".png"
        Image.fromarray(image).save(root / "images" / f"img{i}{suffix}")
        m = Image.fromarray(mask)
        if i in palette_at:
            m = m.convert("P")
            m.putpalette(_PALETTE)
            m.putdata(mask.ravel().tolist())
        m.save(root / "masks" / f"img{i}.png")
        masks.append(mask)
    return np.stack(masks)


def test_scenes_are_deterministic_and_in_range():
    a_images, a_masks = make_scenes(4, size=32, seed=3)
    b_images, b_masks = make_scenes(4, size=32, seed=3)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_masks, b_masks)
    assert a_images.dtype == np.float32 and a_masks.dtype == np.uint8
    assert 0.0 <= a_images.min() and a_images.max() <= 1.0
    assert a_masks.max() < NUM_CLASSES == len(CLASS_NAMES) == 7
    assert not np.array_equal(a_masks, make_scenes(4, size=32, seed=4)[1])


def test_load_folder_keeps_palette_indices_and_ignore_value(tmp_path):
    expected = _write_folder(tmp_path)
    palette = Image.open(tmp_path / "masks" / "img1.png")
    assert palette.mode == "P"  # the file really is a palette PNG
    images, masks = load_folder(str(tmp_path), classes=3, size=32, ignore_index=255)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    # Same size: nearest neighbour must reproduce every class index, palette file included.
    np.testing.assert_array_equal(masks, expected)


def test_masks_are_resized_with_nearest_neighbour(tmp_path):
    expected = _write_folder(tmp_path, side=64)
    _, masks = load_folder(str(tmp_path), classes=3, size=32, ignore_index=255)
    assert masks.shape == (4, 32, 32)
    # Halving 8x8 blocks with nearest neighbour keeps exact values, no blends between classes.
    assert set(np.unique(masks)) <= {0, 1, 2, 255}
    np.testing.assert_array_equal(masks, expected[:, ::2, ::2])


def test_pairs_by_stem(tmp_path):
    _write_folder(tmp_path)
    pairs = pair_files(str(tmp_path))
    assert [p.split("/")[-1] for p, _ in pairs] == ["img0.png", "img1.png", "img2.jpg", "img3.png"]
    assert all(m.endswith(p.split("/")[-1].rsplit(".", 1)[0] + ".png") for p, m in pairs)


def test_list_files_and_pair_by_stem(tmp_path):
    for name in ("b.PNG", "a.jpg", ".hidden.png", "notes.txt", "c.png"):
        (tmp_path / name).write_bytes(b"")
    files = list_files(str(tmp_path), (".png", ".jpg"))
    names = {"a": "a.jpg", "b": "b.PNG", "c": "c.png"}
    assert files == {stem: str(tmp_path / name) for stem, name in names.items()}
    pairs, images_alone, masks_alone = pair_by_stem(files, {"a": "m/a.png", "z": "m/z.png"})
    assert (pairs, images_alone, masks_alone) == ([(files["a"], "m/a.png")], ["b", "c"], ["z"])
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"two files share the stem 'a' \(a.jpg, a.png\)"):
        list_files(str(tmp_path), (".png", ".jpg"))


def test_export_calibration_reads_a_folder_as_load_folder_does(tmp_path):
    # One decoder and one mask resize for both: the same numbers, bit for bit.
    from sm_pixel_ce.exporting.calibration import read_calibration

    _write_folder(tmp_path, side=64)
    images, masks = load_folder(str(tmp_path), classes=3, size=32, ignore_index=255)
    calibration_images, calibration_masks = read_calibration(str(tmp_path), 32, 32)
    np.testing.assert_array_equal(calibration_images, images)
    np.testing.assert_array_equal(calibration_masks, masks)
    first_image, first_mask = pair_files(str(tmp_path))[0]
    np.testing.assert_array_equal(decode_image(first_image, 32, 32).numpy(), images[0])
    np.testing.assert_array_equal(resize_mask(read_mask(first_mask), 32, 32).numpy(), masks[0])
    assert decode_image(first_image, 16, 24).shape == (16, 24, 3)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no_masks", "masks/ (layout"),
        ("unpaired", "unpaired files (1 image(s) without a mask: img3.png"),
        (
            "out_of_range",
            "mask value(s) [7] out of range; expected values in [0, 2] or the ignore value 255",
        ),
        ("rgb_mask", "Received mode RGB"),
    ],
)
def test_bad_folders_raise_clear_errors(tmp_path, damage, message):
    _write_folder(tmp_path)
    if damage == "no_masks":
        for f in (tmp_path / "masks").iterdir():
            f.unlink()
        (tmp_path / "masks").rmdir()
    elif damage == "unpaired":
        (tmp_path / "masks" / "img3.png").unlink()
    elif damage == "out_of_range":
        mask = _mask(0, 32)
        mask[5, 5] = 7
        Image.fromarray(mask).save(tmp_path / "masks" / "img0.png")
    else:
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "masks" / "img0.png")
    with pytest.raises(DataError) as info:
        load_folder(str(tmp_path), classes=3, size=32, ignore_index=255)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_value_255_without_ignore_index_is_an_error(tmp_path):
    _write_folder(tmp_path)
    with pytest.raises(DataError, match=r"\[255\] out of range.*no --ignore-index set"):
        load_folder(str(tmp_path), classes=3, size=32)


# --- per-file checks and streaming -----------------------------------------------------------


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    "damage, culprit, message",
    [
        ("image", "images/img1.png", "images/img1.png: cannot decode the image"),
        ("jpeg", "images/img2.jpg", "images/img2.jpg: cannot decode the image"),
        ("mask", "masks/img3.png", "masks/img3.png: cannot read the mask"),
        ("garbage", "images/img0.png", "images/img0.png: cannot decode the image"),
        ("size", "masks/img1.png", "the mask is 16x32 px but its image"),
    ],
)
def test_a_bad_file_is_named_and_can_be_skipped(tmp_path, damage, culprit, message):
    _write_folder(tmp_path)
    if damage == "image":
        _truncate(tmp_path / "images" / "img1.png")
    elif damage == "jpeg":
        _truncate(tmp_path / "images" / "img2.jpg", 0.6)
    elif damage == "mask":
        _truncate(tmp_path / "masks" / "img3.png")
    elif damage == "garbage":
        (tmp_path / "images" / "img0.png").write_bytes(b"not an image at all")
    else:
        Image.fromarray(_mask(1, 32)[:, :16].copy()).save(tmp_path / "masks" / "img1.png")
    pairs = pair_files(str(tmp_path))
    with pytest.raises(DataError) as info:
        check_pairs(pairs, 3, 255)
    text = str(info.value)
    assert len(text.splitlines()) == 1 and text.startswith(str(tmp_path / culprit))
    assert message in text
    if damage == "size":  # names both files
        assert str(tmp_path / "images" / "img1.png") in text
    with pytest.raises(DataError, match="cannot decode|cannot read|px but its image"):
        load_folder(str(tmp_path), classes=3, size=32, ignore_index=255)
    good, skipped = check_pairs(pairs, 3, 255, skip_bad=True)
    assert len(good) == 3 and [s["file"] for s in skipped] == [str(tmp_path / culprit)]
    assert skipped[0]["reason"] == text


def test_skip_bad_does_not_skip_options_that_do_not_fit(tmp_path):
    _write_folder(tmp_path)
    with pytest.raises(DataError, match=r"\[255\] out of range"):
        check_pairs(pair_files(str(tmp_path)), 3, skip_bad=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "masks" / "img0.png")
    with pytest.raises(DataError, match="Received mode RGB"):
        check_pairs(pair_files(str(tmp_path)), 3, 255, skip_bad=True)


def test_a_file_tensorflow_cannot_decode_is_located(tmp_path):
    _write_folder(tmp_path)
    pairs = pair_files(str(tmp_path))
    _truncate(tmp_path / "images" / "img2.jpg", 0.6)  # after the check, as if found mid-training
    with pytest.raises(tf.errors.OpError) as info:
        list(FolderSource(pairs, 32).dataset().batch(4))
    bad = FolderSource(pairs, 32).locate_error(info.value)
    assert isinstance(bad, DataError)
    assert str(bad).startswith(str(tmp_path / "images" / "img2.jpg") + ": cannot decode the image")
    _write_folder(tmp_path / "again")
    pairs = pair_files(str(tmp_path / "again"))
    (tmp_path / "again" / "masks" / "img1.png").write_bytes(b"broken")
    with pytest.raises(tf.errors.OpError) as info:
        list(FolderSource(pairs, 32).dataset().batch(4))
    bad = locate_bad_file(pairs, info.value)
    assert str(bad).startswith(str(tmp_path / "again" / "masks" / "img1.png") + ": cannot read")


def test_folder_source_streams_what_load_folder_loads(tmp_path):
    _write_folder(tmp_path, count=6, side=64, jpeg_at=(2, 5))
    images, masks = load_folder(str(tmp_path), classes=3, size=32, ignore_index=255)
    source = FolderSource(pair_files(str(tmp_path)), 32)
    assert len(source) == 6 and source.names[2].endswith("img2.jpg")
    streamed = list(source.subset([4, 1]).dataset().batch(2).as_numpy_iterator())
    np.testing.assert_array_equal(streamed[0][0], images[[4, 1]])
    np.testing.assert_array_equal(streamed[0][1], masks[[4, 1]])
    # Shuffled by file name with a seed: the same order as shuffling the arrays in memory.
    order = [m for _, m in source.dataset(shuffle_seed=3).as_numpy_iterator()]
    expected = [
        m
        for _, m in tf.data.Dataset.from_tensor_slices((images, masks))
        .shuffle(6, seed=3)
        .as_numpy_iterator()
    ]
    np.testing.assert_array_equal(np.stack(order), np.stack(expected))
    np.testing.assert_array_equal(np.stack(list(source.masks().as_numpy_iterator())), masks)
    array = ArraySource(images, masks)
    np.testing.assert_array_equal(np.stack(list(array.masks().as_numpy_iterator())), masks)
    np.testing.assert_array_equal(
        np.stack([m for _, m in array.dataset(shuffle_seed=3).as_numpy_iterator()]),
        np.stack(expected),
    )
