"""Keras's loss arguments (``reduction``, ``name``, ``dtype``) under ``KERAS_BACKEND=jax``: every
reduction of every region loss against the float64 NumPy references (tests/reference.py), eagerly
and under ``jax.jit``, the dtype of the value and the config. Run with ``KERAS_BACKEND=jax python
-m pytest -m jax tests/test_jax_loss_arguments.py``; skipped on TensorFlow
(tests/test_loss_arguments.py runs the same there)."""

import keras
import numpy as np
import pytest
from reference import pixel_cce, region_reference, softmax

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]

if BACKEND == "jax":
    import jax

    from sm_pixel_ce import (
        PixelCategoricalCrossentropy,
        PixelDiceLoss,
        PixelJaccardLoss,
        PixelLossSum,
        PixelLovaszLoss,
        PixelTverskyLoss,
        pixel_softmax,
    )

    #: name -> (class, options, (α, β, γ) or None for Lovász).
    LOSSES = {
        "dice": (PixelDiceLoss, {}, (0.5, 0.5, 1.0)),
        "jaccard": (PixelJaccardLoss, {"classes": [1, 2, 3]}, (1.0, 1.0, 1.0)),
        "tversky": (PixelTverskyLoss, {"alpha": 0.3, "beta": 0.7, "gamma": 0.75}, (0.3, 0.7, 0.75)),
        "lovasz": (PixelLovaszLoss, {}, None),
    }
else:
    LOSSES = {"dice": None, "jaccard": None, "tversky": None, "lovasz": None}

N, H, W, C = 3, 4, 8, 4
REDUCTIONS = ["sum_over_batch_size", "sum", "mean_with_sample_weight", "none"]
SAMPLE_WEIGHTS = np.array([1.0, 2.0, 3.0], np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 2, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W)).astype(np.int32)
    labels[0, :2] = 255
    labels[1][labels[1] == 3] = 2
    return labels, logits


def expected(name, labels, probabilities, reduction, per_image, weights=None):
    _, options, tversky = LOSSES[name]
    options = {k: v for k, v in options.items() if k not in ("alpha", "beta", "gamma")}
    return region_reference(
        tversky, probabilities, labels, reduction, per_image, weights, ignore_index=255, **options
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("per_image", [False, True], ids=["batch", "per_image"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_every_reduction_eager_and_jitted(data, name, per_image, reduction):
    labels, logits = data
    cls, options, _ = LOSSES[name]
    loss = cls(ignore_index=255, per_image=per_image, reduction=reduction, **options)
    want = expected(name, labels, softmax(logits), reduction, per_image)
    eager = np.asarray(loss(labels, pixel_softmax(logits)))
    jitted = np.asarray(jax.jit(lambda z: loss(labels, pixel_softmax(z)))(logits))
    assert eager.shape == ((N,) if reduction == "none" else ())
    np.testing.assert_allclose(eager, want, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(jitted, want, rtol=2e-5, atol=1e-6)
    if name != "lovasz":  # the Lovász extension takes no sample weights
        sw = SAMPLE_WEIGHTS
        weighted = np.asarray(jax.jit(lambda z: loss(labels, pixel_softmax(z), sw))(logits))
        want = expected(name, labels, softmax(logits), reduction, per_image, sw)
        np.testing.assert_allclose(weighted, want, rtol=2e-5, atol=1e-6)


def test_dtype_name_and_config(data):
    labels, logits = data
    half = softmax(logits).astype(np.float16)
    loss = PixelDiceLoss(ignore_index=255, dtype="float32", name="d", reduction="sum")
    value = loss(labels, half)
    assert value.dtype == "float32" and loss.name == "d"
    np.testing.assert_allclose(
        float(value), expected("dice", labels, half.astype(np.float64), "sum", False), rtol=2e-5
    )
    assert PixelLovaszLoss(dtype="bfloat16", ignore_index=255)(labels, half).dtype == "bfloat16"
    cce = PixelCategoricalCrossentropy(ignore_index=255, dtype=keras.DTypePolicy("float32"))
    np.testing.assert_allclose(
        float(cce(labels, half)),
        pixel_cce(labels, np.log(half.astype(np.float64)), ignore_index=255),
        rtol=1e-5,
    )
    for original in (loss, PixelCategoricalCrossentropy(dtype="float64") + loss):
        config = original.get_config()
        assert type(original).from_config(config).get_config() == config
    with pytest.raises(ValueError, match="give `reduction` to the terms"):
        PixelLossSum([loss], reduction="none")
