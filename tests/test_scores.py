"""``sm_pixel_ce.scores``: the confusion matrix and every score derived from it, against
hand-checked numbers (ideal, worst, an absent class, no class at all, ignored pixels), and the
jobs that score through it."""

import numpy as np
import pytest
import reference

from sm_pixel_ce import PixelMeanIoU
from sm_pixel_ce.exporting import check
from sm_pixel_ce.scores import confusion_matrix, scores_from_confusion

KEYS = {
    "per_class_iou",
    "per_class_dice",
    "per_class_precision",
    "per_class_recall",
    "pixel_accuracy",
    "miou",
    "mdice",
    "macc",
}


def _scores(labels, predictions, classes, ignore_index=None):
    return scores_from_confusion(confusion_matrix(labels, predictions, classes, ignore_index))


# --- confusion_matrix ----------------------------------------------------------------------------


def test_confusion_matrix_hand_checked():
    labels = np.array([[0, 0, 1], [1, 2, 255]])
    predictions = np.array([[0, 1, 1], [1, 0, 2]])
    matrix = confusion_matrix(labels, predictions, 4, ignore_index=255)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize(
    "labels, predictions, message",
    [
        ([0, 5], [0, 1], r"labels must lie in \[0, 1\].*max=5"),
        ([-1, 0], [0, 1], r"labels must lie in \[0, 1\].*min=-1"),
        ([0, 1, 1], [0, 1], "same number of pixels. Received: 3 labels and 2 predictions"),
    ],
    ids=["too-large", "negative", "sizes-differ"],
)
def test_confusion_matrix_rejects_bad_labels(labels, predictions, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.array(labels), np.array(predictions), 2)


def test_confusion_matrix_of_ignored_pixels_only_is_empty():
    matrix = confusion_matrix(np.full(4, 255), np.zeros(4), 3, ignore_index=255)
    np.testing.assert_array_equal(matrix, np.zeros((3, 3)))


# --- scores_from_confusion -----------------------------------------------------------------------


def test_scores_hand_checked():
    # tp (1, 2, 0, 0), row sums (true) (2, 2, 1, 0), column sums (predicted) (2, 3, 0, 0)
    scores = scores_from_confusion([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    assert set(scores) == KEYS
    assert scores["per_class_iou"] == pytest.approx([1 / 3, 2 / 3, 0.0, None])
    assert scores["per_class_dice"] == pytest.approx([2 / 4, 4 / 5, 0.0, None])
    # class 2 is never predicted: its precision is 0 / 0, undefined, as in MMSegmentation
    assert scores["per_class_precision"] == pytest.approx([1 / 2, 2 / 3, None, None])
    assert scores["per_class_recall"] == pytest.approx([1 / 2, 1.0, 0.0, None])
    assert scores["pixel_accuracy"] == pytest.approx(3 / 5)
    assert scores["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert scores["mdice"] == pytest.approx((1 / 2 + 4 / 5 + 0) / 3)
    assert scores["macc"] == pytest.approx((1 / 2 + 1 + 0) / 3)


@pytest.mark.parametrize(
    "predictions, miou, mdice, accuracy",
    [
        ([0, 0, 1, 1, 2, 2], 1.0, 1.0, 1.0),  # ideal
        ([1, 1, 2, 2, 0, 0], 0.0, 0.0, 0.0),  # worst: every pixel wrong
        # class 0 everywhere: IoU_0 = 2 / 6 and Dice_0 = 4 / 8; classes 1 and 2 score 0
        ([0, 0, 0, 0, 0, 0], (2 / 6) / 3, (4 / 8) / 3, 2 / 6),
    ],
    ids=["ideal", "worst", "one-class"],
)
def test_ideal_and_worst(predictions, miou, mdice, accuracy):
    scores = _scores(np.array([0, 0, 1, 1, 2, 2]), np.array(predictions), 3)
    assert scores["miou"] == pytest.approx(miou)
    assert scores["mdice"] == pytest.approx(mdice)
    assert scores["pixel_accuracy"] == pytest.approx(accuracy)
    assert scores["macc"] == pytest.approx(accuracy)  # balanced classes: mAcc = aAcc here


def test_an_absent_class_is_undefined_not_zero():
    # Class 2 is in neither labels nor predictions: None, and left out of every mean.
    scores = _scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 3)
    for key in ("per_class_iou", "per_class_dice", "per_class_precision", "per_class_recall"):
        assert scores[key][2] is None, key
    assert scores["per_class_iou"] == pytest.approx([1 / 2, 2 / 3, None])
    assert scores["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert scores["mdice"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert scores["macc"] == pytest.approx((1 / 2 + 1) / 2)


def test_a_class_only_predicted_has_iou_zero_and_no_recall():
    # Class 1 is predicted but never true: IoU and precision 0, recall 0 / 0 (left out of mAcc).
    scores = _scores(np.array([0, 0]), np.array([0, 1]), 2)
    assert scores["per_class_iou"] == pytest.approx([1 / 2, 0.0])
    assert scores["per_class_precision"] == pytest.approx([1.0, 0.0])
    assert scores["per_class_recall"] == pytest.approx([1 / 2, None])
    assert scores["macc"] == pytest.approx(1 / 2)


def test_no_class_at_all_is_undefined():
    for matrix in (np.zeros((3, 3), np.int64), confusion_matrix([255], [0], 3, 255)):
        scores = scores_from_confusion(matrix)
        for key in ("miou", "mdice", "macc", "pixel_accuracy"):
            assert scores[key] is None, key
        assert scores["per_class_iou"] == [None, None, None]


def test_ignore_index_pixels_are_not_counted():
    labels = np.array([0, 1, 255, 255])
    predictions = np.array([0, 1, 0, 1])
    assert _scores(labels, predictions, 2, ignore_index=255)["miou"] == 1.0
    assert _scores(labels, predictions, 2, ignore_index=255)["pixel_accuracy"] == 1.0


def test_weighted_counts_are_scored_alike():
    # A float matrix (e.g. weighted counts) scores as its integer multiple.
    matrix = np.array([[3, 1], [0, 2]])
    weighted, counted = scores_from_confusion(matrix / 4), scores_from_confusion(matrix)
    for key in KEYS:
        assert weighted[key] == pytest.approx(counted[key], abs=1e-15), key


@pytest.mark.parametrize(
    "matrix, message",
    [
        (np.zeros((2, 3)), r"square, \(C, C\). Received: shape=\(2, 3\)"),
        ([[1, -1], [0, 1]], "min=-1"),
    ],
    ids=["not-square", "negative"],
)
def test_scores_reject_a_bad_matrix(matrix, message):
    with pytest.raises(ValueError, match=message):
        scores_from_confusion(matrix)


def test_scores_equal_the_mask_reference(rng):
    labels = rng.integers(0, 5, (3, 7, 7))
    labels[:, 0] = 255
    labels[labels == 4] = 0  # class 4 absent from the labels...
    probabilities = rng.random((3, 7, 7, 5))
    probabilities[..., 3] = 0  # ...and class 3 never predicted
    scores = _scores(labels, probabilities.argmax(-1), 5, ignore_index=255)
    expected = reference.score(probabilities, labels, 5, ignore_index=255)
    assert scores["per_class_iou"] == pytest.approx(expected["per_class_iou"], abs=1e-12)
    assert scores["miou"] == pytest.approx(expected["miou"], abs=1e-12)
    assert scores["pixel_accuracy"] == pytest.approx(expected["pixel_accuracy"], abs=1e-12)


def test_keras_pixel_miou_agrees_where_defined(rng):
    # The streaming Keras metric (tensors) and the NumPy scores give one mIoU.
    labels = rng.integers(0, 4, (2, 6, 6))
    labels[0, 0] = 255
    logits = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    metric = PixelMeanIoU(num_classes=4, ignore_index=255)
    metric.update_state(labels, logits)
    expected = _scores(labels, logits.argmax(-1), 4, ignore_index=255)["miou"]
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


# --- the jobs that score through it --------------------------------------------------------------


def test_export_check_mean_iou_skips_values_outside_the_classes():
    probabilities = np.eye(3)[[[0, 1], [2, 2]]]  # predicted 0, 1 / 2, 2
    masks = np.array([[0, 255], [2, 7]], np.uint8)  # 255 and 7 are not classes of the model
    assert check.mean_iou(probabilities, masks) == pytest.approx(1.0)
    assert check.mean_iou(probabilities, np.full((2, 2), 255, np.uint8)) is None
    # One channel: > 0.5 is class 1, and the two classes are scored.
    sigmoid = np.array([[[0.9], [0.1]]])
    assert check.mean_iou(sigmoid, np.array([[1, 1]])) == pytest.approx((0 + 1 / 2) / 2)


def test_export_report_shows_an_undefined_miou_as_a_dash():
    from sm_pixel_ce.exporting.report import ExportReport

    report = ExportReport(
        format="onnx",
        quantize=None,
        path="m.onnx",
        file_bytes=10,
        input_shape=[None, 32, 32, 3],
        input_dtype="float32",
        flavor="Keras 3",
        checked=True,
        runtime="onnxruntime",
        samples=1,
        sample_source="calibration images (32x32)",
        max_difference=0.0,
        argmax_agreement=1.0,
        runtime_ms_per_image=1.0,
        keras_ms_per_image=1.0,
        miou_keras=0.5,
    )
    assert "Keras 0.5000, export - (change -)" in report.format_text()
    assert report.to_dict()["miou_change"] is None
    report.miou_keras = None
    assert "mIoU" not in report.format_text()
