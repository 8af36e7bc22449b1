"""``sm_pixel_ce.scores``'s segmentation_models_pytorch API (``get_stats``, the 17 score
functions, their reductions and ``zero_division``) against tests/reference.py's SMP 0.5 read
from its source, on random cases (hypothesis) and cases checked by hand; the counts of
TensorFlow tensors (PyTorch's: tests/test_torch_smp_scores.py); the imagewise means the streams
keep; and ``evaluate``'s."""

import warnings

import numpy as np
import pytest
import reference
from hypothesis import given, settings
from hypothesis import strategies as st

from sm_pixel_ce import scores
from sm_pixel_ce.scores import MultilabelScore, StreamingScore, get_stats, iou_score
from sm_pixel_ce.smp_scores import REDUCTIONS

# NumPy alone (and tensors read as NumPy): the same in both Keras flavours.
pytestmark = pytest.mark.one_flavor

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)

#: ``segmentation_models_pytorch.metrics.__all__`` in SMP 0.5.
SMP_NAMES = [
    "get_stats",
    "fbeta_score",
    "f1_score",
    "iou_score",
    "accuracy",
    "precision",
    "recall",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "positive_predictive_value",
    "negative_predictive_value",
    "false_negative_rate",
    "false_positive_rate",
    "false_discovery_rate",
    "false_omission_rate",
    "positive_likelihood_ratio",
    "negative_likelihood_ratio",
]
SCORES = SMP_NAMES[1:]


def assert_stats_equal(actual, expected):
    assert len(actual) == 4
    for a, e in zip(actual, expected):
        assert isinstance(a, np.ndarray) and a.dtype == np.int64
        np.testing.assert_array_equal(a, e)


# --- get_stats ------------------------------------------------------------------------------------


@st.composite
def multiclass_cases(draw):
    classes = draw(st.integers(1, 6))
    spatial = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3))
    shape = (draw(st.integers(1, 3)), *spatial)
    ignore_index = draw(st.sampled_from([None, -1, 255]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    target = rng.integers(0, classes, shape)
    output = rng.integers(0, classes, shape)
    if ignore_index is not None:
        target[rng.random(shape) < 0.3] = ignore_index
        # Where the target is ignored the output may be anything: it is not counted.
        output[rng.random(shape) < 0.2] = 10**6
    dtype = np.uint8 if ignore_index != -1 and draw(st.booleans()) else np.int64
    return output, target.astype(dtype), classes, ignore_index


@PROPERTY
@given(multiclass_cases())
def test_multiclass_stats_equal_smp(case):
    output, target, classes, ignore_index = case
    if ignore_index is None:
        output = np.minimum(output, classes - 1)
    else:
        output = np.where(target == ignore_index, output, np.minimum(output, classes - 1))
    expected = reference.smp_get_stats(output, target, "multiclass", ignore_index, None, classes)
    actual = get_stats(output, target, "multiclass", ignore_index, num_classes=classes)
    assert_stats_equal(actual, expected)
    counted = (target != ignore_index).reshape(len(target), -1).sum(1)
    np.testing.assert_array_equal(sum(actual), np.broadcast_to(counted[:, None], actual[0].shape))


@st.composite
def multilabel_cases(draw):
    mode = draw(st.sampled_from(["binary", "multilabel"]))
    channels = 1 if mode == "binary" else draw(st.integers(1, 5))
    spatial = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    shape = (draw(st.integers(1, 3)), channels, *spatial)  # SMP's layout
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["probabilities", "0/1", "bool", "per-class"]))
    target = (rng.random(shape) < 0.4).astype(np.int64)
    if kind in ("probabilities", "per-class"):
        output = rng.random(shape).astype(np.float32)
        output[rng.random(shape) < 0.1] = 0.5  # on the threshold: counted (>=)
        threshold = 0.5 if kind == "probabilities" else rng.random(channels).round(2).tolist()
        if kind == "probabilities" and draw(st.booleans()):
            target *= 255  # SMP thresholds the target too
    else:
        output, threshold = (rng.random(shape) < 0.5).astype(np.int64), None
        if kind == "bool":
            output, target = output.astype(bool), target.astype(bool)
    return mode, output, target, threshold


@PROPERTY
@given(multilabel_cases())
def test_binary_and_multilabel_stats_equal_smp(case):
    mode, output, target, threshold = case
    expected = reference.smp_get_stats(output, target, mode, threshold=threshold)
    channels_last = [np.moveaxis(a, 1, -1) for a in (output, target)]
    assert_stats_equal(get_stats(*channels_last, mode, threshold=threshold), expected)
    assert_stats_equal(get_stats(output, target, mode, threshold=threshold, axis=1), expected)


def test_stats_checked_by_hand():
    # Image 0: truth 0 1 2 ignored; prediction 0 1 1 2.
    output = np.array([[0, 1, 1, 2], [2, 2, 2, 2]])
    target = np.array([[0, 1, 2, 255], [2, 2, 0, 1]])
    tp, fp, fn, tn = get_stats(output, target, "multiclass", 255, num_classes=3)
    assert tp.tolist() == [[1, 1, 0], [0, 0, 2]]
    assert fp.tolist() == [[0, 1, 0], [0, 0, 2]]
    assert fn.tolist() == [[0, 0, 1], [1, 1, 0]]
    assert tn.tolist() == [[2, 1, 2], [3, 3, 0]]
    probabilities = np.array([[[0.9, 0.2], [0.5, 0.7], [0.1, 0.4]]])  # (1, 3 pixels, 2)
    truth = np.array([[[1, 0], [0, 1], [1, 1]]])
    counts = get_stats(probabilities, truth, "multilabel", threshold=[0.5, 0.6])
    assert [c.tolist() for c in counts] == [[[1, 1]], [[1, 0]], [[1, 1]], [[0, 1]]]


def test_stats_of_tensorflow_tensors():
    import tensorflow as tf

    rng = np.random.default_rng(5)
    output, target = rng.integers(0, 4, (2, 3, 4)), rng.integers(0, 4, (2, 3, 4))
    target[:, 0] = 255
    expected = get_stats(output, target, "multiclass", 255, num_classes=4)
    tensors = [tf.constant(a, tf.int32) for a in (output, target)]
    assert_stats_equal(get_stats(*tensors, "multiclass", 255, num_classes=4), expected)
    probabilities = rng.random((2, 3, 4, 2)).astype(np.float32)
    planes = rng.integers(0, 2, (2, 3, 4, 2))
    expected = get_stats(probabilities, planes, "multilabel", threshold=0.5)
    tensors = tf.constant(probabilities), tf.constant(planes)
    assert_stats_equal(get_stats(*tensors, "multilabel", threshold=0.5), expected)


F = np.zeros((1, 2, 2), np.float32)
I2 = np.zeros((1, 2, 2), np.int64)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((I2, I2, "softmax"), "mode='softmax'"),
        ((I2, F, "multiclass"), "target.dtype=float32"),
        ((F, I2, "multiclass"), "output.dtype=float32"),
        ((I2, np.zeros((1, 2, 3), int), "multiclass"), r"target.shape=\(1, 2, 3\)"),
        ((I2, I2, "multiclass"), "num_classes=None"),
        ((I2, I2, "multiclass", None, 0.5, 2), "threshold=0.5"),
        ((I2, I2, "multiclass", 0, None, 2), "ignore_index=0"),
        ((I2 + 2, I2, "multiclass", None, None, 2), "output min=2, max=2"),
        ((I2, I2 - 3, "multiclass", 255, None, 2), "target min=-3"),
        ((I2[..., None], I2[..., None], "binary", 255), "ignore_index=255"),
        ((F[..., None], I2[..., None], "binary"), "threshold=None"),
        ((I2, I2, "binary"), r"output.shape=\(1, 2, 2\)"),
        ((I2 + 2, I2, "multilabel"), r"output values \[2\]"),
        ((F, I2, "multilabel", None, [0.5, 0.5, 0.5]), "one number per class"),
        ((F, I2, "multilabel", None, "0.5"), "threshold='0.5'"),
        ((F + np.nan, I2, "multilabel", None, 0.5), "4 NaN"),
        ((F, I2, "multilabel", None, 0.5, None, 0), "axis=0"),
        ((F[0, 0], I2[0, 0], "multilabel", None, 0.5), r"output.shape=\(2,\)"),
    ],
)
def test_get_stats_rejects(arguments, message):
    with pytest.raises(ValueError, match=message):
        get_stats(*arguments)


# --- the scores and their reductions --------------------------------------------------------------


@st.composite
def count_cases(draw):
    images, classes = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Small counts, half of them 0: every zero denominator shows up.
    counts = [rng.integers(0, 4, (images, classes)) * (rng.random((images, classes)) < 0.5)]
    counts += [
        c * (rng.random((images, classes)) < 0.5) for c in rng.integers(0, 4, (3, images, classes))
    ]
    weights = draw(st.sampled_from([None, "random", "ints"]))
    if weights == "random":
        weights = (rng.random(classes) + 0.05).tolist()
    elif weights == "ints":
        weights = rng.integers(1, 4, classes).tolist()
    zero_division = draw(st.sampled_from([1.0, 0.0, 0.25, "warn"]))
    return counts, weights, zero_division


@PROPERTY
@given(count_cases(), st.sampled_from(SCORES), st.sampled_from([0.5, 1.0, 2.0]))
def test_scores_equal_smp_in_every_reduction(case, name, beta):
    counts, weights, zero_division = case
    options = {"beta": beta} if name == "fbeta_score" else {}
    for reduction in REDUCTIONS:
        class_weights = weights
        if weights is None and reduction and "weighted" in reduction:
            class_weights = [1.0] * counts[0].shape[1]
        arguments = dict(reduction=reduction, class_weights=class_weights)
        expected = reference.smp_score(
            name, *counts, **arguments, zero_division=zero_division, **options
        )
        if reduction == "micro" and np.isnan(expected):  # SMP's NaN: ours applies zero_division
            expected = 0.0 if zero_division == "warn" else zero_division
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            actual = getattr(scores, name)(
                *counts, **arguments, zero_division=zero_division, **options
            )
        if reduction in (None, "none"):
            assert isinstance(actual, np.ndarray) and actual.shape == counts[0].shape
        else:
            assert isinstance(actual, float)
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-15, err_msg=reduction)


# tp, fp, fn, tn of 2 images x 2 classes: class 1 absent from image 0's truth and prediction.
TP, FP, FN, TN = (
    np.array(c) for c in ([[3, 0], [1, 2]], [[1, 0], [0, 2]], [[0, 0], [1, 0]], [[4, 8], [6, 4]])
)


@pytest.mark.parametrize(
    "name, reduction, options, expected",
    [
        ("iou_score", "micro", {}, 6 / 10),
        ("iou_score", "macro", {}, (4 / 6 + 2 / 4) / 2),
        ("iou_score", "weighted", {"class_weights": [3, 1]}, 0.75 * 4 / 6 + 0.25 * 2 / 4),
        (
            "iou_score",
            "macro",
            {"class_weights": np.array([3, 1])},
            (0.75 * 4 / 6 + 0.25 * 2 / 4) / 2,
        ),
        ("iou_score", "micro-imagewise", {}, (3 / 4 + 3 / 6) / 2),
        ("iou_score", "macro-imagewise", {}, (3 / 4 + 1 + 1 / 2 + 2 / 4) / 4),
        ("iou_score", "macro-imagewise", {"zero_division": 0}, (3 / 4 + 0 + 1 / 2 + 2 / 4) / 4),
        ("iou_score", "weighted-imagewise", {"class_weights": [1, 1]}, (5 / 8 + 3 / 4) / 2 / 2),
        ("f1_score", "macro-imagewise", {}, (6 / 7 + 1 + 2 / 3 + 4 / 6) / 4),
        ("fbeta_score", "micro", {"beta": 2.0}, 5 * 6 / (5 * 6 + 4 * 1 + 3)),
        ("accuracy", "micro", {}, 28 / 32),
        ("precision", "macro", {}, (4 / 5 + 2 / 4) / 2),
        ("recall", "micro-imagewise", {}, (1 + 3 / 4) / 2),
        ("specificity", "macro", {}, (10 / 11 + 12 / 14) / 2),
        ("balanced_accuracy", "micro", {}, (6 / 7 + 22 / 25) / 2),
        ("negative_predictive_value", "micro", {}, 22 / 23),
        ("false_omission_rate", "micro", {}, 1 / 23),
        ("false_discovery_rate", "micro", {}, 3 / 9),
        ("false_positive_rate", "micro", {}, 3 / 25),
        ("false_negative_rate", "micro", {}, 1 / 7),
        ("positive_likelihood_ratio", "micro", {}, (6 / 7) / (3 / 25)),
        ("negative_likelihood_ratio", "micro", {}, (1 / 7) / (22 / 25)),
    ],
)
def test_scores_checked_by_hand(name, reduction, options, expected):
    actual = getattr(scores, name)(TP, FP, FN, TN, reduction=reduction, **options)
    assert actual == pytest.approx(expected, rel=1e-12)


def test_zero_division_and_infinite_ratios():
    zeros = np.zeros((1, 1), np.int64)
    # A class in neither truth nor prediction: zero_division, in "micro" too (SMP: NaN there).
    assert iou_score(zeros, zeros, zeros, zeros + 4, reduction="micro") == 1.0
    assert iou_score(zeros, zeros, zeros, zeros, reduction="macro", zero_division=0.3) == 0.3
    with pytest.warns(UserWarning, match="iou_score: a zero denominator"):
        assert iou_score(zeros, zeros, zeros, zeros, reduction="micro", zero_division="warn") == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a defined score does not warn
        assert iou_score(zeros + 1, zeros, zeros, zeros, zero_division="warn") == [[1.0]]
    # No false positive: LR+ is +inf (not a zero division), as in SMP.
    one = zeros + 1
    assert scores.positive_likelihood_ratio(one, zeros, zeros, one, reduction="micro") == np.inf
    assert scores.positive_likelihood_ratio(zeros, zeros, one, one, reduction="micro") == 1.0


def test_smp_names_are_importable_from_scores():
    from sm_pixel_ce import smp_scores

    for name in SMP_NAMES:
        assert callable(getattr(scores, name)), name
        assert getattr(scores, name) is getattr(smp_scores, name), name
        assert name == "precision" or name == "recall" or getattr(scores, name).__name__ == name
    assert scores.precision is scores.positive_predictive_value
    assert scores.recall is scores.sensitivity
    assert "Args:" in scores.iou_score.__doc__ and "beta: " in scores.fbeta_score.__doc__


@pytest.mark.parametrize(
    "arguments, options, message",
    [
        ((TP, FP, FN, TN), {"reduction": "mean"}, "reduction='mean'"),
        ((TP, FP, FN, TN), {"reduction": "weighted"}, "class_weights=None"),
        ((TP, FP, FN, TN), {"reduction": "weighted", "class_weights": [1]}, r"\[1\]"),
        ((TP, FP, FN, TN), {"reduction": "macro", "class_weights": [0, 0]}, "not all zero"),
        ((TP, FP, FN, TN), {"reduction": "macro", "class_weights": [-1, 2]}, "not negative"),
        ((TP, FP, FN, TN), {"zero_division": "skip"}, "zero_division='skip'"),
        ((TP, FP, FN, TN[0]), {}, r"\(2, 2\), \(2, 2\), \(2, 2\), \(2,\)"),
        ((TP, FP, FN, -TN), {}, "tn min=-8"),
        ((TP, FP, FN, TN * np.nan), {}, "tn min=nan"),
        ((TP, FP, FN, TN.astype(str)), {}, r"tn.dtype=<U\d+"),
        ((TP[:0], FP[:0], FN[:0], TN[:0]), {}, "at least 1"),
    ],
)
def test_scores_reject(arguments, options, message):
    with pytest.raises(ValueError, match=message):
        iou_score(*arguments, **options)


# --- the imagewise means of the streams and of evaluate -----------------------------------------


def _smp_imagewise(tp, fp, fn, tn):
    return {
        f"{score}_{reduction}_imagewise": reference.smp_score(
            f"{score}_score", tp, fp, fn, tn, reduction=f"{reduction}-imagewise"
        )
        for score in ("iou", "f1")
        for reduction in ("macro", "micro")
    }


def assert_imagewise(actual, expected, images):
    assert actual["images"] == images and actual["zero_division"] == 1.0
    assert set(actual) == set(expected) | {"images", "zero_division"}
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, rel=1e-12), key


def test_streamed_imagewise_means_equal_smp(rng):
    probabilities = rng.random((5, 6, 7, 4))
    labels = rng.integers(0, 4, (5, 6, 7))
    labels[rng.random(labels.shape) < 0.2] = 255
    labels[1][labels[1] == 3] = 2  # class 3 absent from image 1's truth
    stream = StreamingScore(4, 255, calibration=False)
    assert stream.imagewise()["iou_macro_imagewise"] is None
    stream.update(probabilities[:2], labels[:2])
    stream.update(probabilities[2:], labels[2:])
    counts = reference.smp_get_stats(probabilities.argmax(-1), labels, "multiclass", 255, None, 4)
    assert_imagewise(stream.imagewise(), _smp_imagewise(*counts), 5)

    planes = rng.random((3, 6, 7, 2))
    truth = rng.random((3, 6, 7, 2)) < 0.3
    truth[0, ..., 1], planes[0, ..., 1] = False, 0.1  # channel 1 nowhere in image 0
    multilabel = MultilabelScore(2, threshold=0.6)
    for n in range(3):
        multilabel.update(planes[n : n + 1], truth[n : n + 1])
    counts = reference.smp_get_stats(
        np.moveaxis(planes, -1, 1),
        np.moveaxis(truth, -1, 1).astype(int),
        "multilabel",
        threshold=0.6,
    )
    assert_imagewise(multilabel.imagewise(), _smp_imagewise(*counts), 3)


def test_evaluate_reports_smp_imagewise_means(tmp_path, mask_folder):
    from test_evaluate import _weights, numpy_probabilities, pointwise_model, read_folder

    from sm_pixel_ce.inference.evaluation import evaluate

    root = mask_folder(tmp_path / "data", count=3, side=32, classes=3)
    kernel, bias = _weights()
    result = evaluate(pointwise_model(kernel, bias), root, ignore_index=255, out=tmp_path / "out")
    _, images, masks = read_folder(root)
    predicted = np.stack([numpy_probabilities(i, kernel, bias).argmax(-1) for i in images])
    counts = reference.smp_get_stats(predicted, np.stack(masks), "multiclass", 255, None, 3)
    assert_imagewise(result["imagewise"], _smp_imagewise(*counts), 3)
    report = (tmp_path / "out" / "report.md").read_text()
    expected_row = "| IoU | {:.2f} | {:.2f} |".format(
        100 * result["imagewise"]["iou_macro_imagewise"],
        100 * result["imagewise"]["iou_micro_imagewise"],
    )
    assert expected_row in report
