"""The backend rules (examples/backend_rules.md) under ``KERAS_BACKEND=jax``: the calls of
tests/test_backend_rules.py (tests/rules_cases.py), eagerly and under ``jax.jit``, give the same
float64-reference numbers and dtypes as on TensorFlow. Run with ``KERAS_BACKEND=jax python -m
pytest -m jax tests/test_jax_backend_rules.py``; skipped on TensorFlow."""

import numpy as np
import pytest
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
from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]

if BACKEND == "jax":
    import jax
    import jax.numpy as jnp


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", list(PROBABILITY_CASES))
def test_plain_probabilities_follow_the_clipped_log(name, jit):
    fn, y_true, y_pred, kwargs, expected = probability_case(name)
    step = lambda p: fn(y_true, p, **kwargs)  # noqa: E731
    check((jax.jit(step) if jit else step)(jnp.asarray(y_pred)), expected)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int64", "float16", "float32"])
def test_mask_dtypes_give_the_same_value(dtype):
    fn, y_true, y_pred, kwargs, expected = probability_case("cce_mask")
    check(fn(y_true.astype(dtype), jnp.asarray(y_pred), **kwargs), expected)


@pytest.mark.parametrize("form", ["mask", "one_hot"])
def test_cce_gradient_is_finite_and_exact(form):
    p, mask = inputs()
    y_true = labels(form, mask)
    gradient = np.asarray(jax.grad(lambda x: pixel_categorical_crossentropy(y_true, x))(p))
    assert np.all(np.isfinite(gradient))
    np.testing.assert_allclose(gradient, cce_gradient(p, mask), rtol=REL, atol=1e-7)


def test_bce_gradient_is_finite_and_exact():
    p, mask = inputs()
    y_true = labels("one_hot", mask)
    gradient = np.asarray(jax.grad(lambda x: pixel_binary_crossentropy(y_true, x))(p))
    assert np.all(np.isfinite(gradient))
    np.testing.assert_allclose(gradient, bce_gradient(p, mask), rtol=REL, atol=1e-7)


def test_plain_probabilities_give_the_fused_value_up_to_a_gap_of_87():
    logits, mask = gap_inputs()
    expected = gap_expected(logits, mask)
    fused = pixel_categorical_crossentropy(mask, pixel_softmax(logits), reduction="none")
    plain = pixel_categorical_crossentropy(
        mask, jnp.array(jax.nn.softmax(logits)), reduction="none"
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
@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
def test_returned_dtype(name, dtype):
    fn, y_true = dtype_case(name)
    p, _ = inputs()
    assert result_dtype(fn(y_true, ops.cast(p, dtype))) == "float32"


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_float64_predictions_where_jax_holds_float64(name):
    """JAX holds float64 only with x64 on (otherwise a float64 input is a float32 array before
    the loss sees it); there each loss returns what it returns on TensorFlow."""
    fn, y_true = dtype_case(name)
    p, _ = inputs()
    with jax.enable_x64(True):
        value = fn(y_true, jnp.asarray(p, jnp.float64))
        assert result_dtype(value) == FLOAT64_RESULT[name]


@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
def test_float64_sample_weight_keeps_float32(dtype):
    p, mask = inputs()
    sample_weight = np.random.default_rng(3).uniform(0.5, 2.0, mask.shape)  # float64
    value = pixel_categorical_crossentropy(mask, ops.cast(p, dtype), sample_weight=sample_weight)
    assert result_dtype(value) == "float32"
    check(value, sample_weight_expected(ops.cast(p, dtype), mask, sample_weight))
