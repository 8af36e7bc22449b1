"""``evaluate``: its numbers against NumPy written here, Boundary IoU on a case checked by hand,
its files, and one line for each kind of bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from sm_pixel_ce.__main__ import main
from sm_pixel_ce.flavor import keras
from sm_pixel_ce.inference.evaluation import evaluate

CLASSES = 3
IGNORE = 255


def pointwise_model(kernel, bias, size=None, activation="softmax"):
    """A 1x1 convolution and a softmax (or sigmoid): its answer at a pixel depends on that pixel
    alone, so NumPy gives it exactly and tiling cannot change it."""
    inputs = keras.Input((size, size, kernel.shape[0]))
    layer = keras.layers.Conv2D(kernel.shape[1], 1, name="head")
    outputs = keras.layers.Activation(activation)(layer(inputs))
    model = keras.Model(inputs, outputs)
    layer.set_weights([kernel[None, None].astype(np.float32), bias.astype(np.float32)])
    return model


def _weights(seed=0, classes=CLASSES):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 4, (3, classes)), rng.normal(0, 0.5, classes)


def numpy_probabilities(images, kernel, bias, activation="softmax"):
    logits = images.astype(np.float64) @ kernel + bias
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-logits))
    logits -= logits.max(-1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def read_folder(root):
    names = sorted(p.name for p in (root / "images").iterdir())
    images = [np.asarray(Image.open(root / "images" / n), np.float32) / 255 for n in names]
    masks = [np.asarray(Image.open(root / "masks" / n)) for n in names]
    return names, images, masks


def reference_scores(probabilities, masks, classes=CLASSES, ignore=IGNORE):
    """MMSegmentation's IoUMetric, ECE (15 bins) and Brier, written out in NumPy."""
    probabilities = np.concatenate([p.reshape(-1, classes) for p in probabilities])
    labels = np.concatenate([m.ravel() for m in masks]).astype(np.int64)
    keep = labels != ignore
    probabilities, labels = probabilities[keep], labels[keep]
    predicted = probabilities.argmax(-1)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    tp, truth, pred = np.diag(confusion), confusion.sum(1), confusion.sum(0)

    def ratio(a, b):
        return [None if d == 0 else n / d for n, d in zip(a, b)]

    iou = ratio(tp, truth + pred - tp)
    defined = [v for v in iou if v is not None]
    confidence = probabilities.max(-1)
    bins = np.minimum((confidence * 15).astype(int), 14)
    ece = (
        sum(
            abs((predicted[bins == b] == labels[bins == b]).sum() - confidence[bins == b].sum())
            for b in range(15)
        )
        / labels.size
    )
    one_hot = np.eye(classes)[labels]
    return {
        "confusion": confusion,
        "iou": iou,
        "dice": ratio(2 * tp, truth + pred),
        "precision": ratio(tp, pred),
        "recall": ratio(tp, truth),
        "miou": float(np.mean(defined)),
        "aacc": tp.sum() / labels.size,
        "fwiou": sum(t / truth.sum() * v for t, v in zip(truth, iou) if v is not None),
        "ece": ece,
        "brier": ((probabilities - one_hot) ** 2).sum(-1).mean(),
        "pixels": truth.tolist(),
    }


def assert_close_lists(actual, expected, tolerance=1e-6):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert (a is None) == (e is None), (actual, expected)
        if e is not None:
            assert a == pytest.approx(e, abs=tolerance)


def test_scores_at_original_resolution_match_numpy(tmp_path, mask_folder):
    root = mask_folder(tmp_path / "data", count=5, side=40, classes=CLASSES)
    kernel, bias = _weights()
    model = pointwise_model(kernel, bias)
    result = evaluate(
        model,
        root,
        ignore_index=IGNORE,
        class_names="red,green,blue",
        exclude_classes="0",
        out=tmp_path / "out",
    )
    names, images, masks = read_folder(root)
    probabilities = [numpy_probabilities(i, kernel, bias) for i in images]
    expected = reference_scores(probabilities, masks)
    assert result["resolution"] == "original"
    assert result["classes"] == ["red", "green", "blue"]
    np.testing.assert_array_equal(result["confusion"], expected["confusion"])
    for key in ("iou", "dice", "precision", "recall"):
        assert_close_lists(result["per_class"][key], expected[key])
    assert result["per_class"]["pixels"] == expected["pixels"]
    for key in ("miou", "aacc", "fwiou", "ece", "brier"):
        assert result[key] == pytest.approx(expected[key], abs=1e-5), key
    kept = [v for v in expected["iou"][1:] if v is not None]
    assert result["excluding"]["classes"] == [0]
    assert result["excluding"]["miou"] == pytest.approx(np.mean(kept), abs=1e-6)
    # One mIoU per image, each the mean over the classes of that image.
    assert [i["file"].rsplit("/", 1)[-1] for i in result["images"]] == names
    for entry, p, m in zip(result["images"], probabilities, masks):
        assert entry["miou"] == pytest.approx(reference_scores([p], [m])["miou"], abs=1e-6)
    saved = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert saved["miou"] == pytest.approx(result["miou"])
    for name in ("report.md", "confusion.png", "reliability.png", "worst.png"):
        assert (tmp_path / "out" / name).stat().st_size > 200, name


def test_fixed_size_model_is_scored_at_its_size(tmp_path, mask_folder):
    root = mask_folder(tmp_path / "data", count=4, side=32, classes=CLASSES)
    kernel, bias = _weights(1)
    result = evaluate(pointwise_model(kernel, bias, size=32), root, ignore_index=IGNORE)
    _, images, masks = read_folder(root)
    expected = reference_scores([numpy_probabilities(i, kernel, bias) for i in images], masks)
    assert result["resolution"] == "32x32 (whole images resized)"
    np.testing.assert_array_equal(result["confusion"], expected["confusion"])
    assert result["miou"] == pytest.approx(expected["miou"], abs=1e-6)


def test_tiles_give_the_whole_image_scores(tmp_path, mask_folder):
    root = mask_folder(tmp_path / "data", count=2, side=64, classes=CLASSES)
    model = pointwise_model(*_weights(2))
    whole = evaluate(model, root, ignore_index=IGNORE)
    tiled = evaluate(model, root, ignore_index=IGNORE, tile=32, overlap=0.5)
    assert tiled["confusion"] == whole["confusion"]
    assert tiled["resolution"] == "original (tiles of 32, overlap 0.5)"


def _square_folder(root):
    """10x10: a red 4x4 square predicted at rows/cols 3..6; the truth's square is one column to
    the right (cols 4..7)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image = np.zeros((10, 10, 3), np.uint8)
    image[3:7, 3:7, 0] = 255
    mask = np.zeros((10, 10), np.uint8)
    mask[3:7, 4:8] = 1
    Image.fromarray(image).save(root / "images" / "a.png")
    Image.fromarray(mask).save(root / "masks" / "a.png")
    return root


def test_boundary_iou_of_a_case_checked_by_hand(tmp_path):
    # Class 1 is predicted where red is high: logits (0, 20 (R - 0.5)).
    kernel = np.array([[0.0, 20.0], [0.0, 0.0], [0.0, 0.0]])
    model = pointwise_model(kernel, np.array([0.0, -10.0]))
    result = evaluate(model, _square_folder(tmp_path / "data"))
    # d = max(1, round(0.02 * sqrt(10² + 10²))) = 1: a pixel is on the boundary when a pixel of
    # another class, or the image's edge, is among its 8 neighbours.
    # Class 1: each square's boundary is its 12-pixel ring (2x2 inside). The rings share rows 3
    # and 6 at cols 4..6 (6 pixels); rows 4-5 differ (cols 3, 6 against 4, 7).
    # I = 6, U = 12 + 12 - 6 = 18 -> 1/3.
    # Class 0: the 36-pixel frame of the image plus the 20 pixels around each square: 56 each.
    # Shared: the frame (36), and the rows 2..7 x cols 3..7 (30 pixels) outside both squares
    # (whose union there is rows 3..6 x cols 3..7, 20 pixels): 10. I = 46, U = 66 -> 23/33.
    assert result["per_class"]["boundary_iou"] == pytest.approx([23 / 33, 1 / 3])
    # IoU: class 1 shares 12 of 20 pixels; class 0, 80 of 88.
    assert result["per_class"]["iou"] == pytest.approx([80 / 88, 12 / 20])


def test_multilabel_scores_per_channel(tmp_path):
    rng = np.random.default_rng(3)
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "masks").mkdir()
    images, truths = [], []
    for i in range(3):
        image = rng.integers(0, 256, (24, 40, 3)).astype(np.uint8)
        truth = rng.random((24, 40, 3)) > 0.5
        Image.fromarray(image).save(tmp_path / "data" / "images" / f"{i}.png")
        for c, name in enumerate(("roof", "tree", "car")):
            plane = (truth[..., c] * 255).astype(np.uint8)
            Image.fromarray(plane).save(tmp_path / "data" / "masks" / f"{i}_{name}.png")
        images.append(image.astype(np.float32) / 255)
        truths.append(truth)
    kernel, bias = _weights(4)
    model = pointwise_model(kernel, bias, activation="sigmoid")
    result = evaluate(model, tmp_path / "data", class_names="roof,tree,car")
    assert result["multilabel"] is True
    predicted = (
        np.concatenate(
            [numpy_probabilities(i, kernel, bias, "sigmoid").reshape(-1, 3) for i in images]
        )
        > 0.5
    )
    truth = np.concatenate([t.reshape(-1, 3) for t in truths])
    tp = (predicted & truth).sum(0)
    fp = (predicted & ~truth).sum(0)
    fn = (~predicted & truth).sum(0)
    assert result["per_class"]["iou"] == pytest.approx(tp / (tp + fp + fn))
    assert result["per_class"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert result["per_class"]["pixels"] == truth.sum(0).tolist()


def _run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def saved_model(tmp_path):
    path = tmp_path / "pointwise.keras"
    pointwise_model(*_weights()).save(path)
    return path


def test_command_line_writes_the_report(tmp_path, mask_folder, saved_model, capsys):
    root = mask_folder(tmp_path / "data", count=3, side=32, classes=CLASSES)
    out = tmp_path / "eval"
    status, stdout, err = _run(
        [
            "evaluate",
            str(saved_model),
            "--data",
            str(root),
            "--ignore-index",
            "255",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert status == 0, err
    result = json.loads((out / "evaluation.json").read_text())
    assert f"{100 * result['miou']:.2f}" in stdout
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "extra, status, words",
    [
        (["--classes", "5"], 2, "predicts 3 classes, but --classes is 5"),
        (["--tile", "64"], 2, "smaller than --tile 64"),
        (["--size", "32", "--tile", "32"], 2, "exclude each other"),
        (["--exclude-classes", "7"], 2, "--exclude-classes"),
    ],
)
def test_bad_options_get_one_line(tmp_path, mask_folder, saved_model, capsys, extra, status, words):
    root = mask_folder(tmp_path / "data", count=2, side=32, classes=CLASSES)
    code, _, err = _run(
        [
            "evaluate",
            str(saved_model),
            "--data",
            str(root),
            "--ignore-index",
            "255",
            "--out",
            str(tmp_path / "o"),
            *extra,
        ],
        capsys,
    )
    assert code == status
    assert words in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_bad_data_gets_one_line_naming_the_file(tmp_path, mask_folder, saved_model, capsys):
    root = mask_folder(tmp_path / "data", count=2, side=32, classes=CLASSES)
    # No --ignore-index: the 255 border is a value >= C.
    code, _, err = _run(["evaluate", str(saved_model), "--data", str(root)], capsys)
    assert code == 1
    assert "masks/000.png" in err and "out of range" in err
    assert len(err.strip().splitlines()) == 1, err
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    code, _, err = _run(["evaluate", str(saved_model), "--data", str(empty)], capsys)
    assert code == 1 and "images" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.one_flavor  # a measuring script's bookkeeping, not the flavour's scoring
def test_evaluate_scaling_measures_a_child_run(tmp_path):
    from sm_pixel_ce.bench.evaluation import format_evaluate_scaling, run_evaluate_scaling

    (point,) = run_evaluate_scaling((4,), size=32, workdir=str(tmp_path))
    assert point["returncode"] == 0 and point["images"] == 4
    assert 100 < point["peak_rss_mb"] < 4000
    assert "| 4 | 32 |" in format_evaluate_scaling([point])


@pytest.mark.parametrize("format", ["onnx", "tflite"])
def test_an_exported_file_scores_as_its_keras_model(tmp_path, mask_folder, format):
    import sm_pixel_ce

    root = mask_folder(tmp_path / "data", count=3, side=32, classes=CLASSES)
    model = pointwise_model(*_weights(5))
    out = str(tmp_path / f"m.{format}")
    sm_pixel_ce.export(model, out, format=format, check=False, size=32)
    keras_result = evaluate(model, root, ignore_index=IGNORE)
    exported = evaluate(out, root, ignore_index=IGNORE)
    assert exported["confusion"] == keras_result["confusion"]
    assert exported["ece"] == pytest.approx(keras_result["ece"], abs=1e-5)


def test_multilabel_masks_as_one_multichannel_tiff(tmp_path):
    import tifffile

    rng = np.random.default_rng(6)
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "masks").mkdir()
    image = rng.integers(0, 256, (16, 24, 3)).astype(np.uint8)
    truth = rng.random((16, 24, 3)) > 0.6
    Image.fromarray(image).save(tmp_path / "data" / "images" / "a.png")
    tifffile.imwrite(tmp_path / "data" / "masks" / "a.tif", truth.astype(np.uint8))
    kernel, bias = _weights(7)
    result = evaluate(
        pointwise_model(kernel, bias, activation="sigmoid"), tmp_path / "data", threshold=0.4
    )
    predicted = numpy_probabilities(image / 255.0, kernel, bias, "sigmoid") > 0.4
    tp = (predicted & truth).sum((0, 1))
    union = (predicted | truth).sum((0, 1))
    assert result["multilabel"] and result["threshold"] == 0.4
    assert result["per_class"]["iou"] == pytest.approx(tp / union)


def test_skip_bad_scores_the_rest_and_lists_the_file(tmp_path, mask_folder):
    root = mask_folder(tmp_path / "data", count=3, side=32, classes=CLASSES)
    (root / "images" / "001.png").write_bytes(b"not a png")
    model = pointwise_model(*_weights())
    with pytest.raises(Exception, match="001.png"):
        evaluate(model, root, ignore_index=IGNORE)
    result = evaluate(model, root, ignore_index=IGNORE, skip_bad=True)
    assert result["images_scored"] == 2
    assert [s["file"].rsplit("/", 1)[-1] for s in result["skipped"]] == ["001.png"]


def test_scale_divides_the_pixels_instead_of_255(tmp_path, mask_folder):
    root = mask_folder(tmp_path / "data", count=2, side=32, classes=CLASSES)
    kernel, bias = _weights(8)
    result = evaluate(pointwise_model(kernel, bias), root, ignore_index=IGNORE, scale=127.5)
    _, images, masks = read_folder(root)
    doubled = [numpy_probabilities(2 * i, kernel, bias) for i in images]
    np.testing.assert_array_equal(
        result["confusion"], reference_scores(doubled, masks)["confusion"]
    )
