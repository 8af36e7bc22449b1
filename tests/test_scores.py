"""``sm_pixel_ce.scores``: the confusion matrix and every score derived from it, against
hand-checked numbers (ideal, worst, an absent class, no class at all, ignored pixels) and NumPy
references; the means over a subset of classes; the streamed scores (Brier, per-image mIoU,
calibration bins); multi-label scores; and the jobs that score through them."""

import numpy as np
import pytest
import reference

from sm_pixel_ce.compare import evaluation
from sm_pixel_ce.exporting import check
from sm_pixel_ce.scores import (
    ECE_BINS,
    MultilabelScore,
    StreamingScore,
    class_means,
    confusion_matrix,
    multilabel_counts,
    multilabel_scores,
    scores_from_confusion,
)

KEYS = {
    "per_class_iou",
    "per_class_dice",
    "per_class_precision",
    "per_class_recall",
    "per_class_pixels",
    "pixel_accuracy",
    "miou",
    "mdice",
    "macc",
    "fwiou",
}

# NumPy alone: the same in both Keras flavours, so the Keras 3 process alone runs it.
pytestmark = pytest.mark.one_flavor


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
    assert scores["per_class_pixels"] == [2, 2, 1, 0]
    # fwIoU: shares 2/5, 2/5, 1/5 of the label pixels; class 3 has none (and no IoU).
    assert scores["fwiou"] == pytest.approx(2 / 5 * 1 / 3 + 2 / 5 * 2 / 3 + 1 / 5 * 0)


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
        for key in ("miou", "mdice", "macc", "pixel_accuracy", "fwiou"):
            assert scores[key] is None, key
        assert scores["per_class_iou"] == [None, None, None]
        assert scores["per_class_pixels"] == [0, 0, 0]


def test_ignore_index_pixels_are_not_counted():
    labels = np.array([0, 1, 255, 255])
    predictions = np.array([0, 1, 0, 1])
    assert _scores(labels, predictions, 2, ignore_index=255)["miou"] == 1.0
    assert _scores(labels, predictions, 2, ignore_index=255)["pixel_accuracy"] == 1.0


def test_weighted_counts_are_scored_alike():
    # A float matrix (e.g. weighted counts) scores as its integer multiple.
    matrix = np.array([[3, 1], [0, 2]])
    weighted, counted = scores_from_confusion(matrix / 4), scores_from_confusion(matrix)
    for key in KEYS - {"per_class_pixels"}:
        assert weighted[key] == pytest.approx(counted[key], abs=1e-15), key
    assert counted["per_class_pixels"] == [4, 2]
    assert weighted["per_class_pixels"] == [1.0, 0.5]


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


# --- fwIoU and the means over some classes -------------------------------------------------------


def _random_matrix(rng, classes):
    """A confusion matrix with an absent class (zero row and column), a class never predicted
    (zero column) and a class never true (zero row)."""
    matrix = rng.integers(0, 20, (classes, classes))
    matrix[0, :] = matrix[:, 0] = 0
    matrix[:, 1] = 0
    matrix[2, :] = 0
    return matrix


def _reference_means(matrix, kept):
    """mIoU, mDice, mAcc and fwIoU over the ``kept`` classes, from the definitions."""
    matrix = np.asarray(matrix, np.float64)
    tp, label, predicted = np.diag(matrix), matrix.sum(1), matrix.sum(0)
    kept = np.asarray(kept, int)

    def mean(numerator, denominator):
        defined = denominator[kept] > 0
        if not defined.any():
            return None
        return float(np.mean(numerator[kept][defined] / denominator[kept][defined]))

    union = label + predicted - tp
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    fwiou = (
        float((label[kept] * iou[kept]).sum() / label[kept].sum()) if label[kept].sum() else None
    )
    return {
        "miou": mean(tp, union),
        "mdice": mean(2 * tp, label + predicted),
        "macc": mean(tp, label),
        "fwiou": fwiou,
    }


def test_fwiou_equals_the_reference_on_random_matrices(rng):
    for classes in (3, 5, 9):
        matrix = _random_matrix(rng, classes)
        expected = _reference_means(matrix, range(classes))
        scores = scores_from_confusion(matrix)
        assert scores["fwiou"] == pytest.approx(expected["fwiou"], abs=1e-12)
        assert scores["per_class_pixels"] == matrix.sum(1).tolist()


def test_class_means_equal_the_reference_on_random_matrices(rng):
    for classes in (3, 6, 11):
        matrix = _random_matrix(rng, classes)
        scores = scores_from_confusion(matrix)
        for kept in (range(1, classes), [classes - 1], [0], [0, 1], rng.permutation(classes)[:3]):
            means = class_means(scores, kept)
            assert set(means) == {"miou", "mdice", "macc", "fwiou"}
            expected = _reference_means(matrix, sorted(kept))
            for key, value in expected.items():
                assert means[key] == pytest.approx(value, abs=1e-12), (key, list(kept))


def test_class_means_of_every_class_are_the_scores_own():
    scores = scores_from_confusion([[3, 1, 0], [2, 5, 0], [0, 0, 0]])
    assert class_means(scores, range(3)) == {
        k: scores[k] for k in ("miou", "mdice", "macc", "fwiou")
    }


def test_class_means_hand_checked():
    # IoU (3 / 6, 5 / 8), Dice (6 / 9, 10 / 13), recall (3 / 4, 5 / 7), label pixels (4, 7).
    scores = scores_from_confusion([[3, 1], [2, 5]])
    assert class_means(scores, [1]) == pytest.approx(
        {"miou": 5 / 8, "mdice": 10 / 13, "macc": 5 / 7, "fwiou": 5 / 8}
    )
    # Class 0 absent from labels and predictions: kept alone, no mean is defined.
    absent = scores_from_confusion([[0, 0], [0, 2]])
    assert class_means(absent, [0]) == {"miou": None, "mdice": None, "macc": None, "fwiou": None}
    assert class_means(absent, []) == {"miou": None, "mdice": None, "macc": None, "fwiou": None}


def test_class_means_of_a_multilabel_and_a_boundary_result():
    means = class_means(
        {"per_class_iou": [0.5, None, 1.0], "per_class_f1": [0.6, None, 1.0]}, [1, 2]
    )
    assert means == {"miou": 1.0, "mf1": 1.0}
    boundary = {"per_class_iou": [0.5, 0.25], "per_class_boundary_iou": [0.2, None]}
    assert class_means(boundary, [0, 1]) == {"miou": 0.375, "boundary_miou": 0.2}


@pytest.mark.parametrize(
    "scores, classes, message",
    [
        ({"per_class_iou": [0.5, 0.5]}, [2], r"in \[0, 1\]. Received: classes=\[2\]"),
        ({"per_class_iou": [0.5, 0.5]}, [-1], r"classes=\[-1\]"),
        ({"per_class_iou": [0.5, 0.5]}, [0.5], r"classes=\[0.5\]"),
        ({"miou": 0.5}, [0], r"per-class lists.*keys=\['miou'\]"),
    ],
)
def test_class_means_rejects(scores, classes, message):
    with pytest.raises(ValueError, match=message):
        class_means(scores, classes)


# --- StreamingScore ------------------------------------------------------------------------------


def _probabilities(rng, shape, classes):
    logits = rng.normal(size=shape + (classes,)) * 3
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def test_streaming_score_lives_in_scores_and_compare_re_exports_it():
    assert evaluation.StreamingScore is StreamingScore
    assert evaluation.ECE_BINS == ECE_BINS == 15


def test_streaming_full_result_equals_the_whole_set_scores(rng):
    probabilities = _probabilities(rng, (5, 9, 7), 4)
    labels = rng.integers(0, 4, (5, 9, 7))
    labels[:, 0] = 255
    scores = StreamingScore(4, ignore_index=255)
    for start, stop in ((0, 2), (2, 5)):
        scores.update(probabilities[start:stop], labels[start:stop])
    full = scores.result(full=True)
    whole = scores_from_confusion(
        confusion_matrix(labels, probabilities.argmax(-1), 4, ignore_index=255)
    )
    assert set(full) == KEYS | {"binary_accuracy", "ece", "brier"}
    for key in KEYS:
        assert full[key] == pytest.approx(whole[key], abs=1e-12), key
    assert full["per_class_pixels"] == np.bincount(labels[labels != 255], minlength=4).tolist()
    # The summary compare reports is unchanged.
    assert set(scores.result()) == {
        "miou",
        "pixel_accuracy",
        "per_class_iou",
        "binary_accuracy",
        "ece",
    }
    assert set(StreamingScore(4, calibration=False).result(full=True)) == KEYS


def test_brier_equals_the_direct_formula(rng):
    probabilities = _probabilities(rng, (3, 6, 5), 4).astype(np.float32)
    labels = rng.integers(0, 4, (3, 6, 5))
    labels[0, :2] = 255
    scores = StreamingScore(4, ignore_index=255)
    scores.update(probabilities[:1], labels[:1])
    scores.update(probabilities[1:], labels[1:])
    counted = labels != 255
    p = probabilities[counted].astype(np.float64)
    expected = np.mean(((p - np.eye(4)[labels[counted]]) ** 2).sum(-1))
    assert scores.result(full=True)["brier"] == pytest.approx(expected, rel=1e-12)


def test_brier_hand_checked():
    # (0.8, 0.2) for class 0: 0.04 + 0.04; (0.3, 0.7) for class 0: 0.49 + 0.49; one-hot: 0.
    scores = StreamingScore(2)
    scores.update(np.array([[0.8, 0.2], [0.3, 0.7], [0.0, 1.0]]), np.array([0, 0, 1]))
    assert scores.result(full=True)["brier"] == pytest.approx((0.08 + 0.98 + 0.0) / 3)
    nothing = StreamingScore(2, ignore_index=255)
    nothing.update(np.full((1, 2, 2, 2), 0.5), np.full((1, 2, 2), 255))
    assert nothing.result(full=True)["brier"] is None


def test_update_returns_each_images_miou(rng):
    probabilities = _probabilities(rng, (6, 8, 8), 5)
    labels = rng.integers(0, 5, (6, 8, 8))
    labels[1] = 255  # an image with no counted pixel: None
    labels[2][labels[2] == 3] = 0  # an image without class 3
    scores = StreamingScore(5, ignore_index=255, calibration=False)
    got = scores.update(probabilities[:4], labels[:4]) + scores.update(
        probabilities[4:], labels[4:]
    )
    expected = [
        scores_from_confusion(confusion_matrix(y, p.argmax(-1), 5, ignore_index=255))["miou"]
        for p, y in zip(probabilities, labels)
    ]
    assert got[1] is None
    assert got == pytest.approx(expected, abs=1e-15)


def test_calibration_bins_count_every_pixel_and_match_the_ece(rng):
    probabilities = _probabilities(rng, (4, 10, 10), 3)
    labels = rng.integers(0, 3, (4, 10, 10))
    labels[:, :, 0] = 255
    scores = StreamingScore(3, ignore_index=255, bins=10)
    scores.update(probabilities, labels)
    bins = scores.calibration_bins()
    assert len(bins) == 10
    assert sum(b["pixels"] for b in bins) == np.count_nonzero(labels != 255)
    assert [(b["lower"], b["upper"]) for b in bins] == pytest.approx(
        [(b / 10, (b + 1) / 10) for b in range(10)]
    )
    # Per bin, from the definition.
    counted = labels != 255
    confidence = probabilities[counted].max(-1)
    correct = probabilities[counted].argmax(-1) == labels[counted]
    index = np.minimum((confidence * 10).astype(int), 9)
    gap = 0.0
    for b, row in enumerate(bins):
        members = index == b
        assert row["pixels"] == members.sum()
        if not members.any():
            assert row["accuracy"] is None and row["confidence"] is None
            continue
        assert row["accuracy"] == pytest.approx(correct[members].mean(), abs=1e-12)
        assert row["confidence"] == pytest.approx(confidence[members].mean(), abs=1e-12)
        gap += row["pixels"] * abs(row["accuracy"] - row["confidence"])
    assert bins[0]["pixels"] == 0  # with 3 classes no confidence is below 1 / 3
    assert scores.result()["ece"] == pytest.approx(gap / counted.sum(), abs=1e-12)


def test_calibration_bins_need_calibration():
    with pytest.raises(ValueError, match="calibration=False"):
        StreamingScore(2, calibration=False).calibration_bins()


def test_streaming_score_rejects_probabilities_of_another_class_count():
    with pytest.raises(ValueError, match=r"\(N, ..., 3\). Received: probabilities.shape=\(2, 2\)"):
        StreamingScore(3).update(np.full((2, 2), 0.5), np.zeros(2, int))


def test_streaming_score_slices_large_batches_without_changing_a_number(rng, monkeypatch):
    # The calibration sums are taken a slice of pixels at a time; any slice gives the same.
    from sm_pixel_ce import scores as module

    probabilities = _probabilities(rng, (2, 16, 16), 3).astype(np.float32)
    labels = rng.integers(0, 3, (2, 16, 16))
    labels[0, 3] = 255
    results = []
    for pixels in (1 << 22, 7 * 3, 1):
        monkeypatch.setattr(module, "_SLICE", pixels)
        scores = StreamingScore(3, ignore_index=255)
        scores.update(probabilities, labels)
        results.append((scores.result(full=True), scores.calibration_bins()))
    assert results[1] == results[0]
    assert results[2][0]["ece"] == results[0][0]["ece"]
    assert results[2][0]["brier"] == pytest.approx(results[0][0]["brier"], rel=1e-13)


# --- multi-label ---------------------------------------------------------------------------------


def test_multilabel_counts_and_scores_hand_checked():
    truth = np.array([[[1, 0, 0], [1, 1, 0]], [[0, 1, 0], [0, 0, 0]]], bool)
    predicted = np.array([[[1, 1, 0], [0, 1, 0]], [[0, 1, 0], [1, 0, 0]]], bool)
    tp, fp, fn = multilabel_counts(truth, predicted)
    assert tp.dtype == np.int64
    np.testing.assert_array_equal((tp, fp, fn), [[1, 2, 0], [1, 1, 0], [1, 0, 0]])
    scores = multilabel_scores(tp, fp, fn)
    assert scores["per_class_iou"] == pytest.approx([1 / 3, 2 / 3, None])
    assert scores["per_class_f1"] == pytest.approx([2 / 4, 4 / 5, None])
    assert scores["miou"] == pytest.approx(1 / 2)
    assert scores["mf1"] == pytest.approx((1 / 2 + 4 / 5) / 2)
    # The second row of the first image not counted: channel 0 loses its false negative.
    valid = np.array([[True, False], [True, True]])
    np.testing.assert_array_equal(
        multilabel_counts(truth, predicted, valid), [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    )


def test_multilabel_equals_numpy(rng):
    probabilities = rng.random((5, 6, 7, 4))
    truth = rng.random((5, 6, 7, 4)) < 0.4
    truth[..., 3] = False
    probabilities[..., 3] = 0.1  # channel 3 neither true nor predicted: undefined
    valid = rng.random((5, 6, 7)) < 0.8
    streamed = MultilabelScore(4, threshold=0.6)
    per_image = streamed.update(probabilities[:2], truth[:2], valid[:2])
    per_image += streamed.update(probabilities[2:], truth[2:], valid[2:])
    predicted = probabilities > 0.6

    def reference(t, p, v):
        t, p = t[v], p[v]
        tp, fp, fn = (t & p).sum(0), (p & ~t).sum(0), (t & ~p).sum(0)
        iou = [a / (a + b + c) if a + b + c else None for a, b, c in zip(tp, fp, fn)]
        f1 = [2 * a / (2 * a + b + c) if a + b + c else None for a, b, c in zip(tp, fp, fn)]
        return iou, f1, tp + fn

    iou, f1, pixels = reference(truth, predicted, valid)
    result = streamed.result()
    assert set(result) == {"per_class_iou", "per_class_f1", "miou", "mf1", "per_class_pixels"}
    assert result["per_class_iou"] == pytest.approx(iou, abs=1e-12)
    assert result["per_class_f1"] == pytest.approx(f1, abs=1e-12)
    assert result["per_class_iou"][3] is None
    assert result["miou"] == pytest.approx(np.mean(iou[:3]), abs=1e-12)
    assert result["mf1"] == pytest.approx(np.mean(f1[:3]), abs=1e-12)
    assert result["per_class_pixels"] == pixels.tolist()
    for n in range(5):
        image_iou = reference(truth[n], predicted[n], valid[n])[0]
        assert per_image[n] == pytest.approx(np.mean([v for v in image_iou if v is not None]))


def test_multilabel_of_nothing_is_undefined():
    scores = MultilabelScore(2)
    assert scores.update(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 2), bool)) == [None]
    assert scores.result()["miou"] is None and scores.result()["mf1"] is None


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: multilabel_counts(np.zeros((2, 3), bool), np.zeros((2, 2), bool)),
            r"truth.shape=\(2, 3\)",
        ),
        (
            lambda: multilabel_counts(
                np.zeros((2, 3), bool), np.zeros((2, 3), bool), np.ones(3, bool)
            ),
            r"valid.shape=\(3,\)",
        ),
        (
            lambda: MultilabelScore(2).update(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3), bool)),
            r"\(N, ..., 2\)",
        ),
        (
            lambda: MultilabelScore(2).update(
                np.zeros((1, 2, 2)), np.zeros((1, 2, 2), bool), np.ones((1, 3))
            ),
            "valid.shape",
        ),
        (lambda: MultilabelScore(2, threshold=1.5), "threshold=1.5"),
    ],
    ids=["shapes", "valid", "channels", "stream-valid", "threshold"],
)
def test_multilabel_rejects(call, message):
    with pytest.raises(ValueError, match=message):
        call()


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
