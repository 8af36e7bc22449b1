"""``sm-pixel-ce compare``: NumPy metrics against hand-checked cases, and tiny end-to-end runs
whose report is recomputed independently from the saved predictions and the reloaded models."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import reference
from PIL import Image

import sm_pixel_ce
from sm_pixel_ce.class_weights import count_class_pixels
from sm_pixel_ce.cli import main
from sm_pixel_ce.compare import evaluation
from sm_pixel_ce.compare.variants import loss_for, targets_for
from sm_pixel_ce.flavor import keras

# --- NumPy metrics -------------------------------------------------------------------------------


def _streamed(probabilities, labels, classes):
    scores = evaluation.StreamingScore(classes)
    scores.update(probabilities, labels)
    return scores.result()


def test_ece_hand_checked():
    # Two pixels at confidence 0.9 (one right), two at 0.6 (both right): bins 13 and 9 of 15.
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert reference.expected_calibration_error(probabilities, labels) == pytest.approx(expected)
    assert _streamed(probabilities, labels, 2)["ece"] == pytest.approx(expected)
    perfect = np.eye(3)[[0, 1, 2]]
    assert reference.expected_calibration_error(perfect, np.array([0, 1, 2])) == pytest.approx(0.0)
    assert _streamed(perfect, np.array([0, 1, 2]), 3)["ece"] == pytest.approx(0.0)


def test_binary_accuracy_artefact():
    # Predicting "no class" everywhere: 6 of 7 channels right per pixel, yet nothing is segmented.
    probabilities = np.full((10, 7), 0.1)
    labels = np.arange(10) % 7
    assert reference.binary_accuracy(probabilities, labels) == pytest.approx(6 / 7)
    assert _streamed(probabilities, labels, 7)["binary_accuracy"] == pytest.approx(6 / 7)


@pytest.mark.parametrize(
    "variant, method", [("cce-weighted", "median_frequency"), ("cce-balanced", "inverse_frequency")]
)
def test_weighted_variants_take_sm_pixel_ce_class_weights(variant, method):
    # Two images: class 2 only in the second, class 3 in none (weight 0, with a warning).
    masks = np.array([[[0, 0, 1, 255]], [[0, 1, 2, 2]]], np.uint8)
    counts = count_class_pixels(masks, 4, ignore_index=255)
    np.testing.assert_array_equal(counts.pixels, [3, 2, 2, 0])
    np.testing.assert_array_equal(counts.image_pixels, [7, 7, 4, 0])
    with pytest.warns(UserWarning, match=r"\[3\] appear in no mask"):
        loss = loss_for(variant, lambda: counts, 4, ignore_index=255)
        expected = sm_pixel_ce.class_weights(masks, 4, method, ignore_index=255)
    assert loss.get_config()["class_weights"] == pytest.approx(expected)
    # Median frequency by hand: freq = n_c / pixels of the images holding c = 3/7, 2/7, 2/4.
    if method == "median_frequency":
        freq = np.array([3 / 7, 2 / 7, 2 / 4])
        np.testing.assert_allclose(expected[:3], np.median(freq) / freq)
        assert expected[3] == 0.0


def test_epochs_to_fraction():
    assert evaluation.epochs_to_fraction([0.1, 0.5, 0.91, 1.0, 0.95]) == 3
    assert evaluation.epochs_to_fraction([]) is None
    assert evaluation.epochs_to_fraction([None, 0.5, 1.0]) == 3
    assert evaluation.epochs_to_fraction([None, None]) is None


# --- end to end ----------------------------------------------------------------------------------


def _reference_metrics(labels, predictions, classes, ignore_index=None):
    """Independent recomputation: per class, count pixels directly (no confusion matrix)."""
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    t, p = labels[keep], predictions[keep]
    ious = []
    for c in range(classes):
        union = np.sum((t == c) | (p == c))
        ious.append(None if union == 0 else np.sum((t == c) & (p == c)) / union)
    return ious, float(np.mean(t == p))


def _check_report(out, classes, variants, ignore_index=None):
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert set(report) == {"config", "results", "recommendation"}
    assert report["config"]["classes"] == classes and report["config"]["variants"] == list(variants)
    assert [r["variant"] for r in report["results"]] == list(variants)
    saved = np.load(os.path.join(out, "predictions.npz"))
    labels = saved["val_masks"]
    for r in report["results"]:
        for key in (
            "miou",
            "pixel_accuracy",
            "per_class_iou",
            "keras_accuracy",
            "binary_accuracy",
            "ece",
            "train_loss",
            "val_loss",
            "epochs_to_90",
            "seconds",
        ):
            assert key in r, key
        assert len(r["per_class_iou"]) == classes
        present = [v for v in r["per_class_iou"] if v is not None]
        assert r["miou"] == pytest.approx(np.mean(present), abs=1e-12)
        assert 0 <= r["ece"] <= 1 and r["seconds"] > 0
        predictions = saved["pred_" + r["variant"].replace("-", "_")]
        ious, accuracy = _reference_metrics(labels, predictions, classes, ignore_index)
        assert r["pixel_accuracy"] == pytest.approx(accuracy, abs=1e-12)
        assert [v is None for v in r["per_class_iou"]] == [v is None for v in ious]
        assert [v for v in r["per_class_iou"] if v is not None] == pytest.approx(
            [v for v in ious if v is not None]
        )

        # Fresh load, no custom_objects: same argmax, and Keras's own "accuracy" gives
        # keras_accuracy.
        model = keras.models.load_model(os.path.join(out, f"model_{r['variant']}.keras"))
        outputs = np.asarray(model(saved["val_images"], training=False))
        size = labels.shape[1]
        np.testing.assert_array_equal(
            outputs.reshape(len(labels), size, size, classes).argmax(-1), predictions
        )
        assert r["reload_max_abs_diff"] <= 1e-5
        model.compile(loss=model.loss, metrics=["accuracy"])
        targets = targets_for(r["variant"], labels, classes, ignore_index)
        evaluated = model.evaluate(saved["val_images"], targets, verbose=0, return_dict=True)
        assert r["keras_accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-6)
        assert r["val_loss"] == pytest.approx(evaluated["loss"], rel=1e-4, abs=1e-5)
    for name in ("compare_curves.png", "compare_per_class_iou.png", "compare_predictions.png"):
        with Image.open(os.path.join(out, name)) as image:
            assert image.format == "PNG"
    with open(os.path.join(out, "report.md")) as f:
        markdown = f.read()
    assert "| variant | mIoU |" in markdown and "compare_curves.png" in markdown
    return report


def test_compare_scenes_end_to_end(tmp_path, capsys, compare_argv):
    out = str(tmp_path / "out")
    variants = ("cce", "bce")
    status = main(compare_argv(out, "--in-process", variants=variants, images=10))
    assert status == 0
    printed = capsys.readouterr().out
    assert "Keras 'accuracy'" in printed and "reloaded" in printed
    report = _check_report(out, 7, variants)
    assert report["config"]["train_images"] + report["config"]["val_images"] == 10


# Reading a folder (palette masks, void pixels): flavour-independent; the scenes run above trains
# in each flavour.
@pytest.mark.one_flavor
def test_compare_data_folder_with_palette_and_ignore(tmp_path, mask_folder, compare_argv):
    data = mask_folder(tmp_path / "data", side=40, palette=True)
    out = str(tmp_path / "out")
    variants = ("cce-weighted", "reshape")
    argv = compare_argv(out, "--arch", "Linknet", "--in-process", variants=variants, data=data)
    status = main(argv)
    assert status == 0
    report = _check_report(out, 3, variants, ignore_index=255)
    assert report["config"]["ignore_index"] == 255
    assert report["config"]["train_images"] == 6 and report["config"]["val_images"] == 2
    assert 255 in np.load(os.path.join(out, "predictions.npz"))["val_masks"]


@pytest.mark.slow
def test_compare_all_variants_two_seeds(tmp_path, compare_argv):
    out = str(tmp_path / "out")
    variants = ("cce", "bce", "reshape", "cce-weighted", "cce-smooth")
    status = main(compare_argv(out, "--epochs", "2", "--seeds", "2", variants=variants))
    assert status == 0
    with open(os.path.join(out, "report.json")) as f:
        results = json.load(f)["results"]
    for r in results:
        assert [run["seed"] for run in r["runs"]] == [0, 1]
        assert r["seconds"] == pytest.approx(np.mean([run["seconds"] for run in r["runs"]]))
        assert r["std"]["miou"] == pytest.approx(np.std([run["miou"] for run in r["runs"]]))
        present = [v for v in r["per_class_iou"] if v is not None]
        assert r["miou"] == pytest.approx(np.mean(present), abs=1e-12)
        assert len(r["val_miou_per_epoch"]) == 2


@pytest.mark.parametrize(
    "setup, arguments, status, message",
    [
        (None, ["--data", "{tmp}/missing", "--classes", "3"], 1, "missing/images/ (layout"),
        (
            "unpaired",
            ["--data", "{tmp}/data", "--classes", "3", "--ignore-index", "255"],
            1,
            "unpaired files",
        ),
        (
            "folder",
            ["--data", "{tmp}/data", "--classes", "2", "--ignore-index", "255"],
            1,
            "mask value(s) [2] out of range",
        ),
        ("folder", ["--data", "{tmp}/data", "--classes", "3"], 1, "[255] out of range"),
        ("folder", ["--data", "{tmp}/data"], 2, "--data needs --classes N"),
        (None, ["--variants", "cce,softmax"], 2, "--variants must name some of cce, bce"),
        (None, ["--size", "48"], 2, "--size must be a positive multiple of 32"),
        (None, ["--arch", "PSPNet", "--size", "64"], 2, "multiple of 48 for --arch PSPNet"),
        (None, ["--backbone", "resnet9"], 2, "--backbone must be a segmentation_models backbone"),
    ],
)
def test_errors_are_one_line_and_non_zero(
    tmp_path, capsys, mask_folder, setup, arguments, status, message
):
    if setup:
        mask_folder(tmp_path / "data", side=40, palette=True)
    if setup == "unpaired":
        (tmp_path / "data" / "masks" / "003.png").unlink()
    argv = ["compare", "--out", str(tmp_path / "out")] + [a.format(tmp=tmp_path) for a in arguments]
    assert main(argv) == status
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sm-pixel-ce compare: error: "), captured.err
    assert message in lines[0]


@pytest.mark.one_flavor  # an argument error before any Keras object
def test_error_from_the_console_has_no_traceback(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "sm_pixel_ce",
            "compare",
            "--data",
            str(tmp_path / "nothing"),
            "--classes",
            "3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    assert "sm-pixel-ce compare: error: " in process.stderr and "nothing/images/" in process.stderr
