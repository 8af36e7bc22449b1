"""Bad-input catalogue: every case is a clear error naming expected and received, or a result
defined in the README and checked against the NumPy reference. No case yields NaN or a silent
number.

Both losses are run wherever a case applies to them (parametrize ids end in ``-cce`` / ``-bce``).
"""

import numpy as np
import pytest
import tensorflow as tf
from reference import pixel_bce, pixel_cce, softmax

import sm_pixel_ce
from sm_pixel_ce import (
    PixelBinaryCrossentropy,
    PixelCategoricalCrossentropy,
    pixel_binary_crossentropy,
    pixel_categorical_crossentropy,
    pixel_softmax,
)
from sm_pixel_ce.flavor import keras

N, H, W, C = 2, 4, 4, 3
LOSSES = {"cce": pixel_categorical_crossentropy, "bce": pixel_binary_crossentropy}
CLASSES = {"cce": PixelCategoricalCrossentropy, "bce": PixelBinaryCrossentropy}
BOTH = ("cce", "bce")

_rng = np.random.default_rng(6)
LOGITS = _rng.normal(0, 2, (N, H, W, C)).astype(np.float32)
LABELS = _rng.integers(0, C, (N, H, W))
PROBS = np.full((N, H, W, C), 1 / C, np.float32)
NOT_FINITE = ("not finite", "NaN", "Inf", "predictions")


def one_hot(labels, c=C):
    return np.eye(c, dtype=np.float32)[labels]


def with_value(array, index, value):
    array = np.array(array, copy=True)
    array[index] = value
    return array


def reference(kind, labels, logits, ignore_index=None, smoothing=0.0, class_weights=None):
    """The README's value for an integer mask and channels-last logits (NumPy, float64)."""
    if kind == "cce":
        return pixel_cce(labels, logits, class_weights, ignore_index, smoothing)
    valid = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    safe = np.where(valid, labels, 0).astype(np.int64)
    return pixel_bce(np.eye(logits.shape[-1])[safe], logits, valid=valid, smoothing=smoothing)


def probabilities(kind, logits):
    """What the model's activation gives: pixel_softmax for pixel_cce, sigmoid for pixel_bce."""
    if kind == "cce":
        return pixel_softmax(logits)
    return keras.activations.sigmoid(tf.constant(logits))


def assert_error(error, fragments):
    message = str(error.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"message lacks {missing}: {message}"


def cases(table):
    """Expand ``(id, kinds, ...)`` rows into one pytest.param per loss."""
    return [pytest.param(kind, *row[2:], id=f"{row[0]}-{kind}") for row in table for kind in row[1]]


# (id, losses, kwargs, y_true, y_pred, fragments the ValueError must contain)
ERRORS = [
    # Shapes: the message gives the predictions' shape (expected) and the labels' (received).
    (
        "rank",
        BOTH,
        {},
        np.zeros((N, H)),
        PROBS,
        ["(2, 4, 4, 3)", "integer mask of shape (2, 4, 4)", "Received labels of shape (2, 4)"],
    ),
    (
        "rank_too_high",
        BOTH,
        {},
        np.zeros((N, H, W, C, 1), np.float32),
        PROBS,
        ["(2, 4, 4, 3)", "Received labels of shape (2, 4, 4, 3, 1)"],
    ),
    (
        "spatial_size",
        BOTH,
        {},
        np.zeros((N, H, W + 1)),
        PROBS,
        ["integer mask of shape (2, 4, 4)", "Received labels of shape (2, 4, 5)"],
    ),
    (
        "spatial_size_dense",
        BOTH,
        {},
        np.zeros((N, H + 1, W, C), np.float32),
        PROBS,
        ["(2, 4, 4, 3)", "Received labels of shape (2, 5, 4, 3)"],
    ),
    (
        "batch_size",
        BOTH,
        {},
        np.zeros((N + 1, H, W)),
        PROBS,
        ["integer mask of shape (2, 4, 4)", "Received labels of shape (3, 4, 4)"],
    ),
    (
        "class_count",
        BOTH,
        {},
        np.zeros((N, H, W, 5), np.float32),
        PROBS,
        ["3 classes", "class counts differ: labels have 5, predictions 3"],
    ),
    (
        "channels_first_labels",
        BOTH,
        {},
        np.zeros((N, C, H, W), np.float32),
        PROBS,
        ["Received labels of shape (2, 3, 4, 4)", "look channels_first", "np.moveaxis"],
    ),
    (
        "channels_last_labels_axis1",
        BOTH,
        {"axis": 1},
        np.zeros((N, H, W, C), np.float32),
        np.full((N, C, H, W), 1 / C, np.float32),
        ["Received labels of shape (2, 4, 4, 3)", "look channels_last"],
    ),
    (
        "channels_first_predictions",
        BOTH,
        {},
        np.zeros((N, H, W)),
        np.full((N, C, H, W), 0.25, np.float32),
        ["integer mask of shape (2, 3, 4)", "look channels_first", "pass axis=1"],
    ),
    # Integer labels: expected range, whether an ignore_index is set, and the mask's min and max.
    (
        "label_negative",
        BOTH,
        {},
        with_value(LABELS, (0, 0, 0), -1),
        PROBS,
        ["out of range", "[0, 2]", "Received: -1, 2"],
    ),
    (
        "label_above_c",
        BOTH,
        {},
        with_value(LABELS, (0, 0, 0), 7),
        PROBS,
        ["out of range", "[0, 2]", "Received: 0, 7"],
    ),
    (
        "label_equal_c_no_ignore_index",
        BOTH,
        {},
        with_value(LABELS, (1, 2, 3), C),
        PROBS,
        ["[0, 2]", "no ignore_index is set", "Received: 0, 3"],
    ),
    (
        "label_outside_range_and_ignore_index",
        BOTH,
        {"ignore_index": 255},
        with_value(LABELS, (0, 0, 0), 7),
        PROBS,
        ["[0, 2]", "or the ignore_index 255", "Received: 0, 7"],
    ),
    (
        "float_mask_non_integer",
        BOTH,
        {},
        with_value(LABELS.astype(np.float32), (0, 1, 1), 1.5),
        PROBS,
        ["non-integer values", "nearest-neighbour", "Received: 0.0, 2.0"],
    ),
    (
        "float_mask_nan",
        BOTH,
        {},
        with_value(LABELS.astype(np.float32), (0, 1, 1), np.nan),
        PROBS,
        ["non-integer values", "Received: nan"],
    ),
    # Dense rows: >= 0 and summing to 1 (or 0); anything else points to pixel_bce.
    (
        "dense_row_sums_to_2",
        ("cce",),
        {},
        with_value(one_hot(LABELS), (0, 0, 0), [1, 1, 0]),
        PROBS,
        ["summing to 1", "pixel_bce", "Received: 0.0, 1.0, 2.0"],
    ),
    (
        "dense_row_sums_to_half",
        ("cce",),
        {},
        with_value(one_hot(LABELS), (0, 0, 0), [0.5, 0, 0]),
        PROBS,
        ["summing to 1", "pixel_bce", "Received: 0.0, 0.5, 1.0"],
    ),
    (
        "dense_row_sum_off_by_2e-3",
        ("cce",),
        {},
        with_value(one_hot(LABELS), (0, 0, 0), [1.002, 0, 0]),
        PROBS,
        ["summing to 1", "pixel_bce"],
    ),
    (
        "dense_negative_entry",
        ("cce",),
        {},
        with_value(one_hot(LABELS), (0, 0, 0), [1.5, -0.5, 0]),
        PROBS,
        [">= 0", "summing to 1", "Received: -0.5"],
    ),
    (
        "dense_nan_label",
        ("cce",),
        {},
        with_value(one_hot(LABELS), (0, 0, 0, 0), np.nan),
        PROBS,
        ["summing to 1", "Received: nan"],
    ),
    (
        "dense_outside_0_1",
        ("bce",),
        {},
        with_value(one_hot(LABELS), (0, 0, 0, 0), 2.0),
        PROBS,
        ["lie in [0, 1]", "Received: 0.0, 2.0"],
    ),
    (
        "dense_outside_0_1_with_ignore_index",
        ("bce",),
        {"ignore_index": 255},
        with_value(one_hot(LABELS), (0, 0, 0, 0), -1.0),
        PROBS,
        ["lie in [0, 1] (or equal ignore_index 255)", "Received: -1.0, 1.0"],
    ),
    # NaN / Inf in what the model produced: the loss would not be finite.
    ("nan_probabilities", BOTH, {}, LABELS, with_value(PROBS, (0, 1, 2, 0), np.nan), NOT_FINITE),
    ("inf_probabilities", BOTH, {}, LABELS, with_value(PROBS, (1, 0, 0, 2), np.inf), NOT_FINITE),
    (
        "nan_logits",
        BOTH,
        {"from_logits": True},
        LABELS,
        with_value(LOGITS, (0, 1, 2, 0), np.nan),
        NOT_FINITE,
    ),
    (
        "inf_logits",
        BOTH,
        {"from_logits": True},
        LABELS,
        with_value(LOGITS, (0, 1, 2, 0), np.inf),
        NOT_FINITE,
    ),
    (
        "neg_inf_logit_on_target_class",
        BOTH,
        {"from_logits": True},
        np.zeros((N, H, W), np.int64),
        with_value(LOGITS, (0, 0, 0, 0), -np.inf),
        NOT_FINITE,
    ),
    (
        "nan_logits_reduction_none",
        BOTH,
        {"from_logits": True, "reduction": "none"},
        LABELS,
        with_value(LOGITS, (1, 3, 3, 1), np.nan),
        NOT_FINITE,
    ),
    (
        "nan_logits_reduction_sum",
        BOTH,
        {"from_logits": True, "reduction": "sum"},
        LABELS,
        with_value(LOGITS, (1, 3, 3, 1), np.nan),
        NOT_FINITE,
    ),
    # Smoothing gives the -inf class a target s/C > 0: an infinite loss, so an error.
    (
        "neg_inf_logit_non_target_with_smoothing",
        ("cce",),
        {"from_logits": True, "label_smoothing": 0.1},
        np.zeros((N, H, W), np.int64),
        with_value(LOGITS, (Ellipsis, 2), -np.inf),
        NOT_FINITE,
    ),
    # Options: checked before any data is looked at.
    (
        "class_weights_too_short",
        ("cce",),
        {"class_weights": [1.0, 2.0]},
        LABELS,
        PROBS,
        ["one weight per class", "expected 3, received 2"],
    ),
    (
        "class_weights_too_long",
        ("cce",),
        {"class_weights": [1.0, 2.0, 3.0, 4.0]},
        LABELS,
        PROBS,
        ["one weight per class", "expected 3, received 4"],
    ),
    (
        "class_weights_negative",
        ("cce",),
        {"class_weights": [1.0, -1.0, 1.0]},
        LABELS,
        PROBS,
        ["finite and >= 0", "Received: class_weights=[1.0, -1.0, 1.0]"],
    ),
    (
        "class_weights_nan",
        ("cce",),
        {"class_weights": [1.0, np.nan, 1.0]},
        LABELS,
        PROBS,
        ["finite and >= 0", "Received: class_weights=[1.0, nan, 1.0]"],
    ),
    (
        "class_weights_all_zero",
        ("cce",),
        {"class_weights": [0.0, 0.0, 0.0]},
        LABELS,
        PROBS,
        ["all zero", "Received: class_weights=[0.0, 0.0, 0.0]"],
    ),
    (
        "class_weights_2d",
        ("cce",),
        {"class_weights": [[1.0, 2.0, 3.0]]},
        LABELS,
        PROBS,
        ["1-D", "Received shape (1, 3)"],
    ),
    (
        "label_smoothing_negative",
        BOTH,
        {"label_smoothing": -0.1},
        LABELS,
        PROBS,
        ["[0, 1]", "Received: label_smoothing=-0.1"],
    ),
    (
        "label_smoothing_above_1",
        BOTH,
        {"label_smoothing": 1.5},
        LABELS,
        PROBS,
        ["[0, 1]", "Received: label_smoothing=1.5"],
    ),
    (
        "label_smoothing_nan",
        BOTH,
        {"label_smoothing": float("nan")},
        LABELS,
        PROBS,
        ["[0, 1]", "Received: label_smoothing=nan"],
    ),
    (
        "axis_too_high",
        BOTH,
        {"axis": 4},
        LABELS,
        PROBS,
        ["out of range", "-4 <= axis < 4", "Received: axis=4"],
    ),
    (
        "axis_too_low",
        BOTH,
        {"axis": -5},
        LABELS,
        PROBS,
        ["out of range", "-4 <= axis < 4", "Received: axis=-5"],
    ),
    (
        "axis_not_integer",
        BOTH,
        {"axis": "last"},
        LABELS,
        PROBS,
        ["must be an integer", "Received: axis='last'"],
    ),
    (
        "ignore_index_not_integer",
        BOTH,
        {"ignore_index": 2.5},
        LABELS,
        PROBS,
        ["integer label value", "Received: ignore_index=2.5"],
    ),
    (
        "unknown_reduction",
        BOTH,
        {"reduction": "average"},
        LABELS,
        PROBS,
        ["unknown `reduction`", "'sum_over_batch_size'", "Received: reduction='average'"],
    ),
]


@pytest.mark.parametrize("kind, kwargs, y_true, y_pred, fragments", cases(ERRORS))
def test_clear_value_error(kind, kwargs, y_true, y_pred, fragments):
    with pytest.raises(ValueError) as error:
        LOSSES[kind](y_true, y_pred, **kwargs)
    assert_error(error, [LOSSES[kind].__name__, *fragments])


# Option errors also come from the loss classes' constructors, before any data.
CONSTRUCTOR_ERRORS = [
    ("class_weights_negative", ("cce",), {"class_weights": [1.0, -1.0, 1.0]}, "finite and >= 0"),
    ("class_weights_all_zero", ("cce",), {"class_weights": [0, 0, 0]}, "all zero"),
    ("label_smoothing_above_1", BOTH, {"label_smoothing": 1.5}, "Received: label_smoothing=1.5"),
    ("axis_not_integer", BOTH, {"axis": 1.0}, "Received: axis=1.0"),
    ("unknown_reduction", BOTH, {"reduction": "average"}, "Received: reduction='average'"),
]


@pytest.mark.parametrize("kind, kwargs, fragment", cases(CONSTRUCTOR_ERRORS))
def test_constructor_rejects_bad_options(kind, kwargs, fragment):
    with pytest.raises(ValueError) as error:
        CLASSES[kind](**kwargs)
    assert_error(error, [fragment])


@pytest.mark.parametrize("kind", BOTH)
def test_not_finite_inside_tf_function(kind):
    # Inside a compiled step the same message arrives as InvalidArgumentError when it runs.
    fn = tf.function(lambda y, z: LOSSES[kind](y, z, from_logits=True))
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        fn(tf.constant(LABELS), tf.constant(with_value(LOGITS, (0, 0, 0, 1), np.nan)))
    assert_error(error, NOT_FINITE)
    np.testing.assert_allclose(
        fn(tf.constant(LABELS), tf.constant(LOGITS)).numpy(),
        reference(kind, LABELS, LOGITS),
        rtol=1e-5,
    )


# Well-defined results: each value equals the NumPy reference (and is finite).


@pytest.mark.parametrize("kind", BOTH)
@pytest.mark.parametrize("ignored_class", [0, 2])
def test_ignore_index_inside_class_range(kind, ignored_class):
    # Allowed (PyTorch semantics): that class's pixels are not counted.
    got = LOSSES[kind](LABELS, probabilities(kind, LOGITS), ignore_index=ignored_class).numpy()
    expected = reference(kind, LABELS, LOGITS, ignore_index=ignored_class)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    counted = LABELS != ignored_class
    if kind == "cce":  # the same as the loss over the other pixels only
        np.testing.assert_allclose(got, pixel_cce(LABELS[counted], LOGITS[counted]), rtol=1e-5)


@pytest.mark.parametrize("kind", BOTH)
def test_label_equal_c_with_ignore_index_c(kind):
    labels = with_value(LABELS, (0, slice(None), 0), C)
    got = LOSSES[kind](labels, probabilities(kind, LOGITS), ignore_index=C).numpy()
    np.testing.assert_allclose(got, reference(kind, labels, LOGITS, ignore_index=C), rtol=1e-5)


@pytest.mark.parametrize("kind", BOTH)
@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_negative_ignore_index(kind, dtype):
    labels = with_value(LABELS, (1, 0), -1).astype(dtype)
    got = LOSSES[kind](labels, probabilities(kind, LOGITS), ignore_index=-1).numpy()
    np.testing.assert_allclose(got, reference(kind, labels, LOGITS, ignore_index=-1), rtol=1e-5)


def test_dense_all_zero_rows_are_unlabelled():
    y = one_hot(LABELS)
    y[0, 1:3] = 0.0
    ignored = with_value(LABELS, (0, slice(1, 3)), 255)
    got = pixel_categorical_crossentropy(y, pixel_softmax(LOGITS)).numpy()
    np.testing.assert_allclose(got, pixel_cce(ignored, LOGITS, ignore_index=255), rtol=1e-5)


def test_dense_row_sum_within_tolerance_counts():
    # Sums within 1 ± 1e-3 count as one class per pixel (rounding of soft labels stored in float16).
    y = with_value(one_hot(LABELS), (0, 0, 0), [0.9995, 0.0, 0.0])
    got = pixel_categorical_crossentropy(y, pixel_softmax(LOGITS)).numpy()
    np.testing.assert_allclose(got, pixel_cce(with_value(LABELS, (0, 0, 0), 0), LOGITS), rtol=1e-3)


def test_bce_multi_hot_rows_are_allowed():
    # Several classes per pixel is what pixel_bce is for: rows need not sum to 1.
    y = with_value(one_hot(LABELS), (0, 0, 0), [1, 1, 1])
    got = pixel_binary_crossentropy(y, LOGITS, from_logits=True).numpy()
    np.testing.assert_allclose(got, pixel_bce(y, LOGITS), rtol=1e-5)


@pytest.mark.parametrize("form", ["from_logits", "pixel_softmax"])
def test_neg_inf_logit_for_non_target_class_is_probability_zero(form):
    # A -inf logit is a valid probability 0; the loss is the one over the remaining classes.
    labels = np.where(LABELS == 2, 0, LABELS)
    logits = with_value(LOGITS, (Ellipsis, 2), -np.inf)
    if form == "from_logits":
        got = pixel_categorical_crossentropy(labels, logits, from_logits=True).numpy()
    else:
        got = pixel_categorical_crossentropy(labels, pixel_softmax(logits)).numpy()
    assert np.isfinite(got)
    np.testing.assert_allclose(got, pixel_cce(labels, LOGITS[..., :2]), rtol=1e-5)


@pytest.mark.parametrize("form", ["from_logits", "pixel_softmax"])
def test_neg_inf_logit_with_dense_labels_is_reported_not_finite(form):
    # Documented: TF's fused dense kernel computes 0·(-inf) = NaN, so with dense labels a -inf
    # logit is reported as non-finite predictions (the integer-mask path above gives the exact
    # loss).
    labels = np.where(LABELS == 2, 0, LABELS)
    logits = with_value(LOGITS, (Ellipsis, 2), -np.inf)
    y_pred = logits if form == "from_logits" else pixel_softmax(logits)
    with pytest.raises(ValueError, match="not finite.*NaN or Inf"):
        pixel_categorical_crossentropy(one_hot(labels), y_pred, from_logits=form == "from_logits")


@pytest.mark.parametrize("label_form", ["integer", "dense"])
def test_bce_neg_inf_logit_is_reported_not_finite(label_form):
    # Documented: sigmoid_cross_entropy_with_logits computes -z·y = -(-inf)·0 = NaN.
    labels = np.where(LABELS == 2, 0, LABELS)
    logits = with_value(LOGITS, (Ellipsis, 2), -np.inf)
    y = labels if label_form == "integer" else one_hot(labels)
    with pytest.raises(ValueError, match="not finite.*NaN or Inf"):
        pixel_binary_crossentropy(y, logits, from_logits=True)


EMPTY_LABELS = {
    "integer": np.zeros((0, H, W), np.int64),
    "dense": np.zeros((0, H, W, C), np.float32),
}


@pytest.mark.parametrize("kind", BOTH)
@pytest.mark.parametrize("label_form", ["integer", "dense"])
def test_empty_batch(kind, label_form):
    # No counted pixel: the mean is 0.0 (never NaN), the sum 0.0, the per-pixel map empty.
    y, z = EMPTY_LABELS[label_form], np.zeros((0, H, W, C), np.float32)
    fn = LOSSES[kind]
    for reduction in ("sum_over_batch_size", "mean_with_sample_weight", "sum"):
        value = fn(y, z, from_logits=True, reduction=reduction)
        assert value.dtype == tf.float32 and value.shape == () and value.numpy() == 0.0
    assert CLASSES[kind](from_logits=True)(y, z).numpy() == 0.0
    per_pixel = fn(y, z, from_logits=True, reduction="none")
    assert per_pixel.shape == (0, H, W)


@pytest.mark.parametrize("kind", BOTH)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 1, 1)], ids=["N1", "N3"])
def test_one_by_one_images(kind, shape):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (*shape, C)).astype(np.float32)
    labels = rng.integers(0, C, shape)
    got = LOSSES[kind](labels, probabilities(kind, logits), label_smoothing=0.1).numpy()
    np.testing.assert_allclose(got, reference(kind, labels, logits, smoothing=0.1), rtol=1e-5)
    per_pixel = LOSSES[kind](labels, probabilities(kind, logits), reduction="none")
    assert per_pixel.shape == shape


@pytest.mark.parametrize("kind", BOTH)
@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_label_smoothing_bounds_are_valid(kind, smoothing):
    got = LOSSES[kind](LABELS, probabilities(kind, LOGITS), label_smoothing=smoothing).numpy()
    np.testing.assert_allclose(got, reference(kind, LABELS, LOGITS, smoothing=smoothing), rtol=1e-5)


def test_some_zero_class_weights_are_valid():
    # Only *all*-zero weights are an error; a zero weight just drops that class.
    weights = [0.0, 1.0, 2.0]
    got = pixel_categorical_crossentropy(LABELS, pixel_softmax(LOGITS), class_weights=weights)
    got = got.numpy()
    np.testing.assert_allclose(got, pixel_cce(LABELS, LOGITS, class_weights=weights), rtol=1e-5)


HALF = {"float16": tf.float16, "bfloat16": tf.bfloat16}


@pytest.mark.parametrize("kind", BOTH)
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("form", ["logits", "activation", "probabilities"])
def test_half_precision_predictions(kind, dtype, form):
    # Computed and returned in float32; the reference is taken on the half-precision values.
    half_logits = tf.cast(LOGITS, HALF[dtype])
    exact_logits = tf.cast(half_logits, tf.float64).numpy()
    if form == "logits":
        value = LOSSES[kind](LABELS, half_logits, from_logits=True)
    elif form == "activation":
        if kind == "cce":
            value = LOSSES[kind](LABELS, pixel_softmax(half_logits))
        else:
            value = LOSSES[kind](LABELS, keras.activations.sigmoid(half_logits))
    else:
        probs = softmax(LOGITS) if kind == "cce" else 1 / (1 + np.exp(-LOGITS.astype(np.float64)))
        half_probs = tf.cast(probs, HALF[dtype])
        value = LOSSES[kind](LABELS, half_probs)
        p = tf.cast(half_probs, tf.float64).numpy()
        # The logits that give these rounded probabilities exactly (softmax renormalises them).
        exact_logits = np.log(p) if kind == "cce" else np.log(p) - np.log1p(-p)
    assert value.dtype == tf.float32
    np.testing.assert_allclose(value.numpy(), reference(kind, LABELS, exact_logits), rtol=1e-4)
    # And close to the full-precision loss, within what half precision can hold.
    np.testing.assert_allclose(value.numpy(), reference(kind, LABELS, LOGITS), rtol=3e-2)


@pytest.mark.parametrize("kind", BOTH)
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("label_form", ["integer", "dense"])
def test_half_precision_labels(kind, dtype, label_form):
    y = LABELS if label_form == "integer" else one_hot(LABELS)
    value = LOSSES[kind](tf.cast(y, HALF[dtype]), LOGITS, from_logits=True)
    assert value.dtype == tf.float32
    np.testing.assert_allclose(value.numpy(), reference(kind, LABELS, LOGITS), rtol=1e-5)


# String names: sm_pixel_ce.get resolves ours and lists the valid ones when it cannot.


@pytest.mark.parametrize(
    "name, kind, expected",
    [
        ("pixel_cce", None, PixelCategoricalCrossentropy),
        ("pixel_bce", "loss", PixelBinaryCrossentropy),
        ("pixel_softmax", "activation", pixel_softmax),
    ],
)
def test_get_resolves_registered_names(name, kind, expected):
    assert sm_pixel_ce.get(name, kind=kind) is expected


@pytest.mark.parametrize(
    "name, kind, close_match",
    [
        ("pixel_ce", None, "pixel_cce"),
        ("pixel_softmx", None, "pixel_softmax"),
        ("pixel_bcee", "loss", "pixel_bce"),
    ],
)
def test_get_unknown_name_lists_valid_names(name, kind, close_match):
    with pytest.raises(ValueError) as error:
        sm_pixel_ce.get(name, kind=kind)
    message = str(error.value)
    assert f"Received: {name!r}" in message
    assert "did you mean" in message.lower() and close_match in message
    valid = sm_pixel_ce.list_names(kind)
    assert all(n in message for n in valid), f"not every valid name listed: {message}"


def test_get_wrong_kind_is_an_error():
    with pytest.raises(ValueError) as error:
        sm_pixel_ce.get("pixel_softmax", kind="loss")
    assert_error(error, ["pixel_cce", "pixel_bce", "Received: 'pixel_softmax'"])
    with pytest.raises(ValueError) as error:
        sm_pixel_ce.get("pixel_cce", kind="optimizer")
    assert_error(error, ["'loss'", "'activation'", "Received: kind='optimizer'"])


@pytest.mark.parametrize(
    "getter, name",
    [("losses", "pixel_ce"), ("activations", "pixel_softmx")],
)
def test_keras_get_of_unknown_name_raises(getter, name):
    # Keras's own message is not ours to change; in both flavours it is a ValueError.
    with pytest.raises(ValueError, match=name):
        getattr(keras, getter).get(name)
