"""The backend rules (examples/backend_rules.md) on TensorFlow, Keras 3 and tf_keras: plain
probabilities enter a log clipped to [smallest normal, 1] (cce, bce, focal, top_k), class weights
and half-precision inputs compute in float32, and what dtype each loss returns. The same calls
(tests/rules_cases.py) give the same float64-reference numbers on JAX
(tests/test_jax_backend_rules.py)."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from rules_cases import (
    CLASS_WEIGHTS,
    FLOAT64_RESULT,
    FUNCTIONS,
    HALF_AND_SINGLE,
    IGNORE_INDEX,
    PROBABILITY_CASES,
    REL,
    bce_gradient,
    cce_gradient,
    check,
    class_weights_expected,
    dice_expected,
    dtype_case,
    gap_expected,
    gap_inputs,
    inputs,
    labels,
    lovasz_expected,
    probability_case,
    result_dtype,
    sample_weight_expected,
    weighted_inputs,
)

from sm_pixel_ce import (
    pixel_binary_crossentropy,
    pixel_categorical_crossentropy,
    pixel_dice_loss,
    pixel_lovasz_loss,
    pixel_softmax,
)

XLA_CASES = ("cce_mask", "focal", "bce_one_hot")


@pytest.mark.parametrize("name", list(PROBABILITY_CASES))
def test_plain_probabilities_follow_the_clipped_log(name):
    fn, y_true, y_pred, kwargs, expected = probability_case(name)
    check(fn(y_true, tf.constant(y_pred), **kwargs), expected)


@pytest.mark.parametrize("name", XLA_CASES)
def test_plain_probabilities_under_xla(name):
    # XLA flushes subnormals to zero: the subnormal pixel's 87.34 must not depend on it.
    fn, y_true, y_pred, kwargs, expected = probability_case(name)
    step = tf.function(lambda p: fn(y_true, p, **kwargs), jit_compile=True)
    check(step(tf.constant(y_pred)), expected)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int64", "float16", "float32"])
def test_mask_dtypes_give_the_same_value(dtype):
    fn, y_true, y_pred, kwargs, expected = probability_case("cce_mask")
    check(fn(y_true.astype(dtype), tf.constant(y_pred), **kwargs), expected)


@pytest.mark.parametrize("form", ["mask", "one_hot"])
def test_cce_gradient_is_finite_and_exact(form):
    p, mask = inputs()
    y_pred = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        loss = pixel_categorical_crossentropy(labels(form, mask), y_pred)
    gradient = tape.gradient(loss, y_pred).numpy()
    assert np.all(np.isfinite(gradient))
    np.testing.assert_allclose(gradient, cce_gradient(p, mask), rtol=REL, atol=1e-7)


def test_bce_gradient_is_finite_and_exact():
    p, mask = inputs()
    y_pred = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        loss = pixel_binary_crossentropy(labels("one_hot", mask), y_pred)
    gradient = tape.gradient(loss, y_pred).numpy()
    assert np.all(np.isfinite(gradient))
    np.testing.assert_allclose(gradient, bce_gradient(p, mask), rtol=REL, atol=1e-7)


def test_plain_probabilities_give_the_fused_value_up_to_a_gap_of_87():
    logits, mask = gap_inputs()
    expected = gap_expected(logits, mask)
    fused = pixel_categorical_crossentropy(mask, pixel_softmax(logits), reduction="none")
    plain = pixel_categorical_crossentropy(
        mask, tf.constant(tf.nn.softmax(logits).numpy()), reduction="none"
    )
    check(fused, expected)
    check(plain, expected)


@pytest.mark.parametrize("weights", ["numpy_float64", "list"])
@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
@pytest.mark.parametrize("form", ["logits", "probabilities"])
@pytest.mark.parametrize("label_form", ["mask", "one_hot"])
def test_class_weights_compute_in_float32(weights, dtype, form, label_form):
    y_true, y_pred, mask = weighted_inputs(form, label_form, dtype)
    cw = CLASS_WEIGHTS if weights == "numpy_float64" else CLASS_WEIGHTS.tolist()
    value = pixel_categorical_crossentropy(
        y_true,
        y_pred,
        from_logits=form == "logits",
        class_weights=cw,
        ignore_index=IGNORE_INDEX if label_form == "mask" else None,
    )
    assert result_dtype(value) == "float32"
    check(value, class_weights_expected(y_pred, mask, form == "logits"))


@pytest.mark.parametrize("weights", ["numpy_float64", "list"])
@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
def test_region_class_weights_compute_in_float32(weights, dtype):
    y_true, y_pred, mask = weighted_inputs("region", "mask", dtype)
    cw = CLASS_WEIGHTS if weights == "numpy_float64" else CLASS_WEIGHTS.tolist()
    value = pixel_dice_loss(y_true, y_pred, class_weights=cw, ignore_index=IGNORE_INDEX)
    assert result_dtype(value) == "float32"
    check(value, dice_expected(y_pred, mask))
    lovasz = pixel_lovasz_loss(y_true, y_pred, ignore_index=IGNORE_INDEX)
    assert result_dtype(lovasz) == "float32"
    check(lovasz, lovasz_expected(y_pred, mask))


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("dtype", HALF_AND_SINGLE + ("float64",))
def test_returned_dtype(name, dtype):
    fn, y_true = dtype_case(name)
    p, _ = inputs()
    value = fn(y_true, ops.cast(p, dtype))
    assert result_dtype(value) == (FLOAT64_RESULT[name] if dtype == "float64" else "float32")


@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
def test_float64_sample_weight_keeps_float32(dtype):
    p, mask = inputs()
    sample_weight = np.random.default_rng(3).uniform(0.5, 2.0, mask.shape)  # float64
    value = pixel_categorical_crossentropy(mask, ops.cast(p, dtype), sample_weight=sample_weight)
    assert result_dtype(value) == "float32"
    check(value, sample_weight_expected(ops.cast(p, dtype), mask, sample_weight))
