"""Property tests (hypothesis): for random shapes, class counts, axes, ignored pixels, class
weights and smoothing, the losses are finite, >= 0 and equal to the NumPy reference; one-hot
labels give what integer masks give; channels_first gives what channels_last gives; and
``pixel_softmax`` rows sum to 1 and do not move when a constant is added to the logits.

Runs are derandomized (the same examples on every run and machine) and keep no example database.
"""

from dataclasses import dataclass

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import pixel_bce, pixel_cce, softmax

from sm_pixel_ce import pixel_binary_crossentropy, pixel_categorical_crossentropy, pixel_softmax
from sm_pixel_ce.flavor import keras

PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, database=None)
# float32 loss against the float64 reference.
RTOL, ATOL = 2e-5, 1e-6


@dataclass
class Problem:
    """One random labelled batch, channels-last, with the loss options to use on it."""

    logits: np.ndarray  # (N, *spatial, C) float32
    labels: np.ndarray  # (N, *spatial) int64, ignored pixels hold ignore_index
    ignore_index: object  # None, 255, or a class in [0, C)
    class_weights: object  # None or (C,) float64, >= 0, not all zero
    smoothing: float
    sample_weight: object  # None or (N,)

    @property
    def num_classes(self):
        return self.logits.shape[-1]

    @property
    def valid(self):
        if self.ignore_index is None:
            return np.ones(self.labels.shape, bool)
        return self.labels != self.ignore_index

    def one_hot(self):
        """Dense labels: ignored pixels become all-zero (unlabelled) rows."""
        safe = np.where(self.valid, self.labels, 0)
        return np.eye(self.num_classes, dtype=np.float32)[safe] * self.valid[..., None]


@st.composite
def problems(draw, class_weights=True):
    num_classes = draw(st.integers(2, 64))
    side = 6 if num_classes <= 16 else 3
    rank = draw(st.sampled_from([2, 2, 2, 1, 3]))  # spatial dims: mostly images, also 1-D and 3-D
    if rank == 3:
        side = min(side, 3)
    shape = (draw(st.integers(1, 3)), *(draw(st.integers(1, side)) for _ in range(rank)))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logits = rng.normal(0.0, scale, (*shape, num_classes)).astype(np.float32)
    labels = rng.integers(0, num_classes, shape)

    ignore = draw(st.sampled_from([None, "void", "class"]))
    ignore_index = {None: None, "void": 255, "class": draw(st.integers(0, num_classes - 1))}[ignore]
    if ignore_index is not None:
        labels[rng.uniform(size=shape) < draw(st.floats(0.0, 1.0))] = ignore_index

    weight_kind = draw(st.sampled_from([None, "positive", "some_zero"])) if class_weights else None
    weights = None
    if weight_kind is not None:
        weights = rng.uniform(0.1, 3.0, num_classes)
        if weight_kind == "some_zero":
            weights[rng.uniform(size=num_classes) < 0.5] = 0.0
            weights[rng.integers(num_classes)] = 1.0
    smoothing = draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)))
    sample_weight = rng.uniform(0.0, 2.0, shape[0]) if draw(st.booleans()) else None
    return Problem(logits, labels, ignore_index, weights, smoothing, sample_weight)


def cce_options(p):
    return dict(bce_options(p), class_weights=p.class_weights)


def bce_options(p):
    return dict(
        ignore_index=p.ignore_index, label_smoothing=p.smoothing, sample_weight=p.sample_weight
    )


def cce_reference(p, reduction):
    reduction = {"sum_over_batch_size": "mean"}.get(reduction, reduction)
    return pixel_cce(
        p.labels,
        p.logits,
        p.class_weights,
        p.ignore_index,
        p.smoothing,
        p.sample_weight,
        reduction=reduction,
    )


def bce_reference(p, reduction):
    valid = p.valid
    y = np.eye(p.num_classes)[np.where(valid, p.labels, 0)]
    sw = np.ones(p.labels.shape)
    if p.sample_weight is not None:
        sw = sw * np.reshape(p.sample_weight, (-1,) + (1,) * (p.labels.ndim - 1))
    terms = sw * valid * per_pixel_bce(y, p)
    if reduction == "sum_over_batch_size":  # Σ sw·ℓ / Σ counted
        return 0.0 if valid.sum() == 0 else terms.sum() / valid.sum()
    return terms if reduction == "none" else terms.sum()


def per_pixel_bce(y, p):
    """Per-pixel BCE, read off the reference (a mean over one pixel at a time)."""
    flat_y, flat_z = y.reshape(-1, p.num_classes), p.logits.reshape(-1, p.num_classes)
    per_pixel = [pixel_bce(yi, zi, smoothing=p.smoothing) for yi, zi in zip(flat_y, flat_z)]
    return np.reshape(per_pixel, p.labels.shape)


def sigmoid_np(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


def predictions(kind, form, logits, axis=-1):
    """What reaches the loss: logits, the activation's output (fused), or plain probabilities."""
    if form == "logits":
        return logits, {"from_logits": True}
    if form == "activation":
        if kind == "cce":
            return pixel_softmax(logits, axis=axis), {}
        return keras.activations.sigmoid(tf.constant(logits)), {}
    probs = softmax(logits, axis=axis) if kind == "cce" else sigmoid_np(logits)
    return tf.constant(probs.astype(np.float32)), {}


def forms(scale_ok):
    # Plain float32 probabilities cannot hold 1 - p near 1 (a sigmoid's rounds to 1 past a logit
    # of about 17): use them only for small logits.
    names = ["logits", "activation", "probabilities"]
    return st.sampled_from(names if scale_ok else names[:2])


def check_value(value, expected):
    value = value.numpy()
    assert value.dtype == np.float32
    assert np.all(np.isfinite(value)) and np.all(value >= 0)
    np.testing.assert_allclose(value, expected, rtol=RTOL, atol=ATOL)


REDUCTIONS = st.sampled_from(["sum_over_batch_size", "sum", "none"])


@PROPERTY
@given(problem=problems(), reduction=REDUCTIONS, data=st.data())
def test_cce_finite_nonnegative_equals_reference(problem, reduction, data):
    form = data.draw(forms(np.abs(problem.logits).max() < 4))
    y_pred, extra = predictions("cce", form, problem.logits)
    options = {**cce_options(problem), **extra}
    value = pixel_categorical_crossentropy(problem.labels, y_pred, reduction=reduction, **options)
    check_value(value, cce_reference(problem, reduction))


@PROPERTY
@given(problem=problems(class_weights=False), reduction=REDUCTIONS, data=st.data())
def test_bce_finite_nonnegative_equals_reference(problem, reduction, data):
    form = data.draw(forms(np.abs(problem.logits).max() < 4))
    y_pred, extra = predictions("bce", form, problem.logits)
    options = {**bce_options(problem), **extra}
    value = pixel_binary_crossentropy(problem.labels, y_pred, reduction=reduction, **options)
    check_value(value, bce_reference(problem, reduction))


@PROPERTY
@given(problem=problems(), form=st.sampled_from(["logits", "activation"]))
def test_cce_one_hot_equals_integer_mask(problem, form):
    y_pred, extra = predictions("cce", form, problem.logits)
    options = {**cce_options(problem), **extra}
    for reduction in ("sum_over_batch_size", "none"):
        options["reduction"] = reduction
        sparse = pixel_categorical_crossentropy(problem.labels, y_pred, **options)
        dense = pixel_categorical_crossentropy(problem.one_hot(), y_pred, **options)
        np.testing.assert_allclose(dense.numpy(), sparse.numpy(), rtol=RTOL, atol=ATOL)


@PROPERTY
@given(problem=problems(class_weights=False), form=st.sampled_from(["logits", "activation"]))
def test_bce_one_hot_equals_integer_mask(problem, form):
    # Dense pixel_bce labels mark an ignored pixel by ignore_index in a channel (here 255 in all).
    y_pred, extra = predictions("bce", form, problem.logits)
    dense = np.where(problem.valid[..., None], problem.one_hot(), 255.0).astype(np.float32)
    sparse_options = {**bce_options(problem), **extra}
    dense_options = dict(sparse_options, ignore_index=None if problem.ignore_index is None else 255)
    for reduction in ("sum_over_batch_size", "none"):
        sparse = pixel_binary_crossentropy(
            problem.labels, y_pred, reduction=reduction, **sparse_options
        )
        got = pixel_binary_crossentropy(dense, y_pred, reduction=reduction, **dense_options)
        np.testing.assert_allclose(got.numpy(), sparse.numpy(), rtol=RTOL, atol=ATOL)


@PROPERTY
@given(
    problem=problems(),
    kind=st.sampled_from(["cce", "bce"]),
    label_form=st.sampled_from(["integer", "dense"]),
    form=st.sampled_from(["logits", "activation"]),
    last_axis=st.sampled_from(["negative", "positive"]),
)
def test_channels_first_equals_channels_last(problem, kind, label_form, form, last_axis):
    rank = problem.logits.ndim
    fn, options = (
        (pixel_categorical_crossentropy, cce_options(problem))
        if kind == "cce"
        else (pixel_binary_crossentropy, bce_options(problem))
    )
    if kind == "bce" and label_form == "dense" and problem.ignore_index is not None:
        options["ignore_index"] = None  # ignored pixels are all-zero rows: counted negatives
    y_last = problem.labels if label_form == "integer" else problem.one_hot()
    y_first = y_last if label_form == "integer" else np.moveaxis(y_last, -1, 1)
    logits_first = np.moveaxis(problem.logits, -1, 1)
    axis_last = -1 if last_axis == "negative" else rank - 1
    pred_last, extra = predictions(kind, form, problem.logits, axis=axis_last)
    pred_first, _ = predictions(kind, form, logits_first, axis=1)
    options.update(extra)
    for reduction in ("sum_over_batch_size", "none"):
        last = fn(y_last, pred_last, axis=axis_last, reduction=reduction, **options).numpy()
        first = fn(y_first, pred_first, axis=1, reduction=reduction, **options).numpy()
        assert first.shape == last.shape
        np.testing.assert_allclose(first, last, rtol=RTOL, atol=ATOL)
        assert np.all(np.isfinite(first)) and np.all(first >= 0)


@PROPERTY
@given(
    num_classes=st.integers(2, 64),
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    axis_choice=st.sampled_from(["last", "first"]),
    scale=st.sampled_from([0.1, 1.0, 10.0, 1e4]),
    shift=st.floats(-50.0, 50.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_pixel_softmax_rows_sum_to_one_and_shift_invariant(
    num_classes, shape, axis_choice, scale, shift, seed
):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, scale, (*shape, num_classes))
    axis = -1
    if axis_choice == "first":
        x, axis = np.moveaxis(x, -1, 1), 1
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        z = x.astype(dtype)
        p = pixel_softmax(z, axis=axis).numpy()
        assert p.dtype == dtype and np.all(np.isfinite(p)) and np.all(p >= 0)
        np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=0, atol=tol)
        np.testing.assert_allclose(p, softmax(z, axis=axis), rtol=0, atol=tol)
        # A constant per pixel (broadcast along the class axis), and one for the whole tensor.
        per_pixel = rng.uniform(-50.0, 50.0, np.delete(z.shape, axis))
        shift_tol = tol if dtype is np.float64 else 1e-4  # float32 rounds x + 50 to ~4e-6
        for constant in (dtype(shift), np.expand_dims(per_pixel, axis).astype(dtype)):
            shifted = pixel_softmax(z + constant, axis=axis).numpy()
            np.testing.assert_allclose(shifted, p, rtol=0, atol=shift_tol)


@pytest.mark.parametrize("kind", ["cce", "bce"])
def test_reference_helpers_agree_with_reference_module(kind):
    # The property file's reductions of the reference are the reference's own, at neutral options.
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 3, 3))
    p = Problem(logits, labels, None, None, 0.0, None)
    expected = pixel_cce(labels, logits) if kind == "cce" else pixel_bce(np.eye(4)[labels], logits)
    helper = cce_reference if kind == "cce" else bce_reference
    got = helper(p, "sum_over_batch_size")
    np.testing.assert_allclose(got, expected, rtol=1e-12)
