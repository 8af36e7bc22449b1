"""pixel_softmax and PixelSoftmax against NumPy, in both Keras flavours."""

import numpy as np
import pytest
import tensorflow as tf
from reference import softmax

from sm_pixel_ce import PixelSoftmax, pixel_softmax
from sm_pixel_ce.flavor import keras


def test_matches_numpy(rng):
    x = rng.normal(0, 4, (2, 5, 6, 7)).astype(np.float32)
    p = pixel_softmax(x).numpy()
    np.testing.assert_allclose(p, softmax(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)


def test_channels_first_axis(rng):
    x = rng.normal(0, 4, (2, 7, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(
        pixel_softmax(x, axis=1).numpy(), softmax(x, axis=1), rtol=1e-5, atol=1e-7
    )


def test_stable_for_huge_logits(rng):
    x = rng.choice([-1e4, 0.0, 1e4], size=(2, 4, 4, 7)).astype(np.float32)
    x[0, 0, 0] = 1e4  # ties at the maximum
    p = pixel_softmax(x).numpy()
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p, softmax(x), atol=1e-7)


def test_shift_invariance(rng):
    x = rng.normal(size=(1, 3, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(
        pixel_softmax(x).numpy(), pixel_softmax(x + 100.0).numpy(), atol=1e-6
    )


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_half_precision_computes_in_float32(rng, dtype):
    x = tf.cast(rng.normal(0, 4, (2, 4, 4, 7)), dtype)
    p = pixel_softmax(x)
    assert p.dtype == tf.float32
    np.testing.assert_allclose(
        p.numpy(), softmax(tf.cast(x, tf.float32).numpy()), rtol=1e-5, atol=1e-7
    )
    assert p._keras_logits.dtype == tf.float32


def test_keeps_logits_behind_output(rng):
    x = tf.constant(rng.normal(size=(1, 2, 2, 3)).astype(np.float32))
    assert pixel_softmax(x)._keras_logits is x


@pytest.mark.parametrize("axis", [4, -5, 1.0, True])
def test_bad_axis(axis):
    with pytest.raises(ValueError, match="axis"):
        pixel_softmax(np.zeros((1, 2, 2, 3), np.float32), axis=axis)


def test_rank_one_rejected():
    with pytest.raises(ValueError, match=r"rank >= 2.*Received rank 1"):
        pixel_softmax(np.zeros((3,), np.float32))


def test_string_name_resolves():
    assert keras.activations.get("pixel_softmax") is pixel_softmax
    assert keras.layers.Activation("pixel_softmax").activation is pixel_softmax


def test_layer_config_and_values(rng):
    layer = PixelSoftmax(axis=1, name="probs")
    assert layer.get_config()["axis"] == 1
    clone = PixelSoftmax.from_config(layer.get_config())
    x = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(clone(x).numpy(), softmax(x, axis=1), rtol=1e-5, atol=1e-7)


def test_layer_under_mixed_precision_outputs_float32(rng):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inputs = keras.Input((4, 4, 3))
        logits = keras.layers.Conv2D(5, 1)(inputs)
        model = keras.Model(
            inputs, [PixelSoftmax()(logits), keras.layers.Activation("pixel_softmax")(logits)]
        )
        for out in model(rng.normal(size=(2, 4, 4, 3)).astype(np.float32)):
            assert out.dtype == tf.float32
            np.testing.assert_allclose(out.numpy().sum(-1), 1.0, rtol=1e-6)
    finally:
        keras.mixed_precision.set_global_policy("float32")
