"""PixelBinaryCrossentropy / pixel_binary_crossentropy against NumPy and Keras."""

import numpy as np
import pytest
import tensorflow as tf
from reference import pixel_bce

from sm_pixel_ce import PixelBinaryCrossentropy, pixel_binary_crossentropy
from sm_pixel_ce.flavor import keras

N, H, W, C = 2, 5, 6, 4


@pytest.fixture
def data(rng):
    return rng.normal(0, 3, (N, H, W, C)).astype(np.float32), rng.integers(0, C, (N, H, W))


def one_hot(labels, c=C):
    return np.eye(c, dtype=np.float32)[labels]


def sigmoid(z):
    return keras.activations.sigmoid(tf.constant(z))


def test_matches_numpy_and_keras_with_neutral_options(data):
    logits, labels = data
    got = pixel_binary_crossentropy(one_hot(labels), sigmoid(logits)).numpy()
    np.testing.assert_allclose(got, pixel_bce(one_hot(labels), logits), rtol=1e-5)
    keras_value = keras.losses.BinaryCrossentropy()(one_hot(labels), tf.sigmoid(logits)).numpy()
    np.testing.assert_allclose(got, keras_value, rtol=1e-4)


def test_integer_mask_equals_one_hot(data):
    logits, labels = data
    expected = pixel_binary_crossentropy(one_hot(labels), sigmoid(logits)).numpy()
    for y in (labels.astype("uint8"), labels[..., None].astype("int32"), labels.astype("float32")):
        np.testing.assert_allclose(
            pixel_binary_crossentropy(y, sigmoid(logits)).numpy(), expected, rtol=1e-6
        )


def test_from_logits_and_channels_first(data):
    logits, labels = data
    expected = pixel_bce(one_hot(labels), logits)
    np.testing.assert_allclose(
        pixel_binary_crossentropy(labels, logits, from_logits=True).numpy(), expected, rtol=1e-5
    )
    first = PixelBinaryCrossentropy(axis=1, from_logits=True)(
        labels, np.moveaxis(logits, -1, 1)
    ).numpy()
    np.testing.assert_allclose(first, expected, rtol=1e-5)
    dense_first = PixelBinaryCrossentropy(axis=1)(
        np.moveaxis(one_hot(labels), -1, 1), sigmoid(np.moveaxis(logits, -1, 1))
    ).numpy()
    np.testing.assert_allclose(dense_first, expected, rtol=1e-5)


def test_ignore_index_and_smoothing(rng, data):
    logits, labels = data
    labels = labels.copy()
    labels[rng.uniform(size=labels.shape) < 0.4] = 255
    valid = labels != 255
    expected = pixel_bce(one_hot(np.where(valid, labels, 0)), logits, valid=valid, smoothing=0.2)
    loss = PixelBinaryCrossentropy(ignore_index=255, label_smoothing=0.2)
    np.testing.assert_allclose(loss(labels, sigmoid(logits)).numpy(), expected, rtol=1e-5)
    keras_smooth = keras.losses.BinaryCrossentropy(label_smoothing=0.2)(
        one_hot(labels[valid]), tf.sigmoid(logits[valid])
    )
    np.testing.assert_allclose(expected, keras_smooth.numpy(), rtol=1e-4)


def test_single_channel_binary_masks(rng):
    logits = rng.normal(0, 2, (N, H, W, 1)).astype(np.float32)
    mask = rng.integers(0, 2, (N, H, W))
    mask[0, 0] = 255
    valid = mask != 255
    expected = pixel_bce(np.where(valid, mask, 0)[..., None], logits, valid=valid)
    loss = PixelBinaryCrossentropy(ignore_index=255)
    np.testing.assert_allclose(loss(mask, sigmoid(logits)).numpy(), expected, rtol=1e-5)
    # The same mask as dense (N, H, W, 1) labels, the void value in the channel.
    np.testing.assert_allclose(
        loss(mask[..., None].astype("float32"), sigmoid(logits)).numpy(), expected, rtol=1e-5
    )


def test_fused_gradient_from_sigmoid_output():
    z = tf.Variable(np.array([[[[40.0, -40.0]]]], np.float32))
    y = np.array([[[[0.0, 1.0]]]], np.float32)

    @tf.function
    def gradient():
        with tf.GradientTape() as tape:
            loss = pixel_binary_crossentropy(y, keras.activations.sigmoid(z), reduction="sum")
        return tape.gradient(loss, z)

    np.testing.assert_allclose(gradient().numpy(), (tf.sigmoid(z).numpy() - y) / 2, atol=1e-6)


def test_stable_for_huge_logits(rng):
    logits = rng.choice([-1e4, 1e4], size=(N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W))
    got = pixel_binary_crossentropy(labels, logits, from_logits=True).numpy()
    np.testing.assert_allclose(got, pixel_bce(one_hot(labels), logits), rtol=1e-5)


def test_config_and_names():
    loss = PixelBinaryCrossentropy(
        axis=1, from_logits=True, label_smoothing=0.1, ignore_index=255, name="b"
    )
    config = loss.get_config()
    assert config == {
        "axis": 1,
        "from_logits": True,
        "label_smoothing": 0.1,
        "ignore_index": 255,
        "focal_gamma": 0.0,
        "focal_alpha": None,
        "pos_weight": None,
        "top_k": None,
        "reduction": "sum_over_batch_size",
        "name": "b",
        "dtype": None,
    }
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is PixelBinaryCrossentropy and restored.get_config() == config
    for name in ("pixel_bce", "pixel_binary_crossentropy", "PixelBinaryCrossentropy"):
        assert isinstance(keras.losses.get(name), PixelBinaryCrossentropy)


@pytest.mark.parametrize(
    "y_true, kwargs, match",
    [
        (np.full((N, H, W, C), 2.0, np.float32), {}, r"lie in \[0, 1\]"),
        (np.full((N, H, W), C), {}, "out of range"),
        (np.zeros((N, C, H, W), np.float32), {}, "look channels_first"),
        (np.zeros((N, H, W)), {"label_smoothing": 2}, r"\[0, 1\]"),
    ],
)
def test_bad_input(y_true, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pixel_binary_crossentropy(y_true, np.full((N, H, W, C), 0.5, np.float32), **kwargs)
