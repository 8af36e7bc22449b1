"""``evaluate``, ``predict`` and ``export --calibration`` read data as the model's data contract
says, with no flags; a flag that contradicts it is one line; and the jobs size images as the
model was trained, saying so in one line.

Tiny models (a 3x3 and a 1x1 convolution ending in ``pixel_softmax``, 32 px) saved with their
contract by :func:`sm_pixel_ce.save_model`; every score is checked against PIL + NumPy here.
"""

import json

import numpy as np
import pytest
from PIL import Image

import sm_pixel_ce
from sm_pixel_ce.cli import main
from sm_pixel_ce.data.contract import DataContract
from sm_pixel_ce.data.options import options_from_contract
from sm_pixel_ce.exporting.calibration import (
    CalibrationOptions,
    calibration_reader,
    read_calibration,
)
from sm_pixel_ce.flavor import keras
from sm_pixel_ce.inference.evaluation import evaluate
from sm_pixel_ce.inference.predict import predict_files

SIDE = 32
NAMES = ("sky", "road", "car")
IGNORE = 255
#: Class order red, blue, green: ascending (R, G, B) order would number them 2, 0, 1.
COLORS = ((0, (255, 0, 0)), (1, (0, 0, 255)), (2, (0, 255, 0)))


def _model(shape=(SIDE, SIDE, 3), classes=3, seed=0):
    inputs = keras.Input(shape)
    features = keras.layers.Conv2D(
        8,
        3,
        padding="same",
        activation="relu",
        kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed),
    )(inputs)
    logits = keras.layers.Conv2D(
        classes, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed + 1)
    )(features)
    return keras.Model(inputs, keras.layers.Activation("pixel_softmax")(logits))


@pytest.fixture(scope="module")
def fixed():
    return _model()


@pytest.fixture(scope="module")
def flexible():
    return _model((None, None, 3))


def _save(model, folder, contract, name="model.keras"):
    path = str(folder / name)
    sm_pixel_ce.save_model(model, path, contract=contract)
    return path


def _images(folder, count=4, size=(SIDE, SIDE), seed=0):
    """RGB PNGs of smooth random blobs, so that the model's classes form regions."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize(size[::-1], Image.BILINEAR)
        picture.save(folder / f"{index}.png")
    return sorted(p.name for p in folder.iterdir())


def _predicted(model, folder, names):
    images = np.stack(
        [np.asarray(Image.open(folder / n).convert("RGB"), np.float32) / 255 for n in names]
    )
    return model.predict(images, verbose=0).argmax(-1)


def _truth(predicted, seed=1):
    """The model's answer with a fifth of the pixels changed and a border of void (255)."""
    rng = np.random.default_rng(seed)
    truth = predicted.copy()
    noise = rng.random(truth.shape) < 0.2
    truth[noise] = rng.integers(0, 3, noise.sum())
    truth[:, :2] = IGNORE
    return truth.astype(np.uint8)


def _numpy_scores(truth, predicted, classes=3, ignore=IGNORE):
    keep = truth != ignore
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (truth[keep].astype(int), predicted[keep]), 1)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    return confusion, float(np.mean(tp[union > 0] / union[union > 0]))


@pytest.fixture(scope="module")
def index_data(fixed, tmp_path_factory):
    """A folder of masks of class indices, the model saved with its contract."""
    root = tmp_path_factory.mktemp("index")
    names = _images(root / "images")
    truth = _truth(_predicted(fixed, root / "images", names))
    (root / "masks").mkdir()
    for name, mask in zip(names, truth):
        Image.fromarray(mask, mode="L").save(root / "masks" / name)
    contract = DataContract(
        3, NAMES, ignore_index=IGNORE, channels=3, dtype="uint8", size=SIDE, sizing="resize"
    )
    return root, _save(fixed, root, contract), truth, _predicted(fixed, root / "images", names)


def test_evaluate_with_no_flags_scores_as_numpy(index_data):
    root, path, truth, predicted = index_data
    lines = []
    result = evaluate(path, root, log=lines.append)
    confusion, miou = _numpy_scores(truth, predicted)
    np.testing.assert_array_equal(result["confusion"], confusion)
    assert result["miou"] == pytest.approx(miou, abs=1e-9)
    assert result["classes"] == list(NAMES)
    assert any(line.startswith("data contract: 3 classes (sky, road, car)") for line in lines)
    sizing = [line for line in lines if line.startswith("sizing:")]
    assert sizing == [
        "sizing: whole images resized to 32x32 as the model was trained (its data contract), "
        "the masks resized alike (nearest neighbour) and scored at that size; --tile 32 "
        "predicts at the images' own scale instead"
    ]


@pytest.mark.parametrize("format", ["onnx", "tflite"])
def test_an_export_carrying_the_contract_needs_no_flags(index_data, tmp_path, format):
    root, path, truth, predicted = index_data
    out = str(tmp_path / f"model.{format}")
    sm_pixel_ce.export(path, out, format=format, check=False)
    result = evaluate(out, root)
    np.testing.assert_array_equal(result["confusion"], _numpy_scores(truth, predicted)[0])
    assert result["classes"] == list(NAMES)


@pytest.mark.parametrize(
    "flag, words",
    [
        (["--ignore-index", "0"], ["--ignore-index 0", "ignore_index=255"]),
        (["--class-names", "a,b,c"], ["--class-names a,b,c", "class_names=sky,road,car"]),
        (["--scale", "4095"], ["--scale 4095", "scale=255"]),
        (["--no-exif"], ["--no-exif", "exif=True"]),
        (["--size", "64"], ["--size 64", "size=32x32"]),
    ],
)
def test_a_flag_that_contradicts_the_contract_is_one_line(index_data, capsys, flag, words):
    root, path, _, _ = index_data
    status = main(["evaluate", path, "--data", str(root), "--out", str(root / "e"), *flag])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "contradicts the model's data contract" in lines[0]
    for word in words:
        assert word in lines[0]


def test_a_flag_that_agrees_with_the_contract_is_taken(index_data):
    root, path, truth, predicted = index_data
    result = evaluate(path, root, ignore_index=IGNORE, class_names=NAMES, scale=255)
    assert result["miou"] == pytest.approx(_numpy_scores(truth, predicted)[1], abs=1e-9)


@pytest.fixture(scope="module")
def color_data(fixed, tmp_path_factory):
    """Colour-coded masks (red, blue, green for classes 0, 1, 2), the model saved with that
    colour table in its contract."""
    root = tmp_path_factory.mktemp("colors")
    names = _images(root / "images", seed=3)
    predicted = _predicted(fixed, root / "images", names)
    truth = _truth(predicted, seed=4)
    lookup = np.zeros((256, 3), np.uint8)
    for number, color in COLORS:
        lookup[number] = color
    lookup[IGNORE] = (0, 0, 0)
    (root / "masks").mkdir()
    for name, mask in zip(names, truth):
        Image.fromarray(lookup[mask]).save(root / "masks" / name)
    contract = DataContract(
        3,
        NAMES,
        ignore_index=IGNORE,
        colors=COLORS,
        ignore_color=(0, 0, 0),
        channels=3,
        dtype="uint8",
        size=SIDE,
    )
    return root, _save(fixed, root, contract), truth, predicted


def test_colour_masks_are_decoded_with_the_models_table(color_data):
    """``--mask-colors auto`` once numbered red, blue, green in ascending (R, G, B) order
    (blue 0, green 1, red 2) whatever the model was trained with, and scored it low with no
    warning; the model's own table is used now."""
    root, path, truth, predicted = color_data
    lines = []
    result = evaluate(path, root, mask_colors="auto", log=lines.append)
    confusion, miou = _numpy_scores(truth, predicted)
    sorted_order = np.array([2, 0, 1, IGNORE])  # class -> its colour's rank in (R, G, B) order
    shuffled = np.where(truth == IGNORE, IGNORE, sorted_order[np.minimum(truth, 3)])
    wrong = _numpy_scores(shuffled.astype(np.uint8), predicted)[1]
    assert miou > wrong + 0.2
    np.testing.assert_array_equal(result["confusion"], confusion)
    assert result["miou"] == pytest.approx(miou, abs=1e-9)
    assert result["classes"] == list(NAMES)
    assert (
        "  masks: colours decoded with the model's colour table (data contract): "
        "(255,0,0)=0, (0,0,255)=1, (0,255,0)=2, (0,0,0)=255" in lines
    )
    assert evaluate(path, root)["miou"] == result["miou"]  # no flag at all: the same


def test_a_colour_file_that_contradicts_the_table_is_refused(color_data, tmp_path):
    root, path, _, _ = color_data
    table = tmp_path / "colors.json"
    rows = [{"class": c, "color": list(color)} for c, color in ((0, (0, 0, 255)), (1, (255, 0, 0)))]
    table.write_text(json.dumps(rows + [{"class": 2, "color": [0, 255, 0]}]))
    clash = r"--mask-colors .*colors.json contradicts .*\(255,0,0\)=0"
    with pytest.raises(ValueError, match=clash):
        evaluate(path, root, mask_colors=str(table))


def test_auto_numbering_without_a_table_says_its_order(color_data, fixed, tmp_path):
    root, _, _, _ = color_data
    plain = tmp_path / "plain.keras"
    fixed.save(plain)
    lines = []
    evaluate(
        str(plain), root, mask_colors="auto", ignore_color="0,0,0", classes=3, log=lines.append
    )
    assert (
        "  masks: --mask-colors auto numbered the colours in ascending (R, G, B) order, the "
        "model having no colour table in a data contract: (0,0,255)=0, (0,255,0)=1, "
        "(255,0,0)=2, (0,0,0)=255; pass --mask-colors FILE if it was trained otherwise" in lines
    )


def test_predict_writes_the_models_colours_and_names(color_data, fixed, tmp_path, capsys):
    root, path, _, predicted = color_data
    out = tmp_path / "out"
    assert main(["predict", path, str(root / "images"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sizing: whole images resized to 32x32 as the model was trained" in printed
    legend = json.loads((out / "classes.json").read_text())
    assert legend == [
        {"class": c, "name": name, "color": list(color)} for (c, color), name in zip(COLORS, NAMES)
    ]
    mask = Image.open(out / "0.png")
    assert mask.mode == "P"
    assert mask.getpalette()[:9] == [255, 0, 0, 0, 0, 255, 0, 255, 0]
    np.testing.assert_array_equal(np.asarray(mask), predicted[0])


@pytest.mark.parametrize(
    "sizing, flags, how, words",
    [
        ("resize", [], "resize", "whole images resized to 32x32 as the model was trained"),
        ("crop", [], "tiles", "a sliding 32x32 window at the images' own scale, as the model"),
        ("crop", ["--resize"], "resize", "whole images resized to 32x32 --resize"),
        ("resize", ["--tile", "32"], "tiles", "a sliding 32x32 window at the images' own scale"),
        (None, [], "whole", "images up to 1024 px predicted whole at their own scale"),
    ],
)
def test_predict_sizes_as_trained_and_says_so(
    flexible, tmp_path, capsys, sizing, flags, how, words
):
    _images(tmp_path / "photos", count=1, size=(48, 64))
    if sizing is None:
        path = str(tmp_path / "plain.keras")
        flexible.save(path)
    else:
        contract = DataContract(3, NAMES, size=SIDE, sizing=sizing, dtype="uint8", channels=3)
        path = _save(flexible, tmp_path, contract)
    out = tmp_path / "out"
    result = predict_files(path, [tmp_path / "photos"], out, log=print, **_flags(flags))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("sizing:")]
    assert len(lines) == 1 and words in lines[0], lines
    other = {"resize": "--tile", "tiles": "--resize", "whole": "--resize"}[how]
    assert f"; {other} " in lines[0]
    assert result["images"][0]["how"] == how
    if sizing is None:
        assert "the model carries no data contract" in lines[0]


def _flags(flags):
    if flags == ["--resize"]:
        return {"resize": True}
    return {"tile": int(flags[1])} if flags else {}


def test_resize_and_tile_are_refused_together(index_data, tmp_path, capsys):
    root, path, _, _ = index_data
    for job in (
        ["predict", path, str(root / "images"), "--out", str(tmp_path / "p")],
        ["evaluate", path, "--data", str(root), "--out", str(tmp_path / "e")],
    ):
        assert main([*job, "--resize", "--tile", "32"]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and "--resize" in lines[0] and "--tile 32" in lines[0], lines
        assert "pass one" in lines[0]


def test_calibration_is_read_as_the_contract_says(tmp_path):
    names = _images(tmp_path / "calibration" / "images", count=2, size=(40, 40))
    contract = DataContract(3, NAMES, bands=(2, 1, 0), scale=510, channels=3, dtype="uint8")
    reader, scale = calibration_reader(
        CalibrationOptions(folder=str(tmp_path / "calibration")), contract
    )
    images, masks = read_calibration(tmp_path / "calibration", 40, 40, reader=reader, scale=scale)
    expected = np.stack(
        [
            np.asarray(Image.open(tmp_path / "calibration" / "images" / n), np.float32)[..., ::-1]
            / 510
            for n in names
        ]
    )
    assert masks is None
    np.testing.assert_allclose(images, expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"--bands 0,1,2 contradicts .*bands=2,1,0"):
        calibration_reader(
            CalibrationOptions(folder=str(tmp_path / "calibration"), bands="0,1,2"), contract
        )


def test_the_merge_fills_only_what_was_not_given():
    contract = DataContract(
        3, NAMES, ignore_index=IGNORE, colors=COLORS, bands=(0, 1, 2), scale=None, exif=False
    )
    read = options_from_contract(sm_pixel_ce.data.options.ReadOptions(), contract)
    assert read.ignore_index == IGNORE and read.class_names == NAMES
    assert read.bands == "0,1,2" and read.scale == 1 and read.no_exif is True
    assert [row["color"] for row in read.mask_colors] == [[255, 0, 0], [0, 0, 255], [0, 255, 0]]
    assert options_from_contract(sm_pixel_ce.data.options.ReadOptions(), None).bands is None
