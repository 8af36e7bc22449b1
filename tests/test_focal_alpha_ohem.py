"""Issue #31's cross-entropy options on TensorFlow (Keras 3 and tf_keras): ``focal_alpha``,
``pos_weight`` and OHEM by threshold against the references of tests/reference.py (written from
torchvision, MONAI, SMP and MMSegmentation), Keras's ``CategoricalFocalCrossentropy``, saved and
reloaded, and the checks' errors."""

import numpy as np
import pytest
import tensorflow as tf
from focal_alpha_ohem_cases import (
    POS_WEIGHT,
    C,
    check_focal_alpha_bce,
    check_focal_alpha_cce,
    check_pos_weight,
    data,
    one_hot,
)

from sm_pixel_ce import (
    PixelBinaryCrossentropy,
    PixelCategoricalCrossentropy,
    pixel_binary_crossentropy,
    pixel_categorical_crossentropy,
)
from sm_pixel_ce.flavor import keras


def value_and_grad(fn, x):
    z = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = fn(z)
    return value.numpy(), tape.gradient(value, z).numpy()


def test_focal_alpha_cce():
    check_focal_alpha_cce(value_and_grad)


def test_focal_alpha_bce():
    check_focal_alpha_bce(value_and_grad)


def test_pos_weight():
    check_pos_weight(value_and_grad)


def test_pos_weight_equals_torch_bce_with_logits():
    """The value and gradient of PyTorch's own ``BCEWithLogitsLoss(pos_weight=...)`` (channels
    last: its ``pos_weight`` broadcasts over the last axis), on multi-label targets."""
    torch = pytest.importorskip("torch")
    logits, _ = data(void=False)
    targets = (np.random.default_rng(2).uniform(size=logits.shape) < 0.5).astype(np.float32)
    z = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(POS_WEIGHT))(
        z, torch.tensor(targets)
    )
    (expected_grad,) = torch.autograd.grad(expected, z)
    loss = PixelBinaryCrossentropy(from_logits=True, pos_weight=POS_WEIGHT)
    value, grad = value_and_grad(lambda x: loss(targets, x), logits)
    np.testing.assert_allclose(value, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad.numpy(), rtol=1e-4, atol=1e-7)


def test_scalar_focal_alpha_equals_keras_categorical_focal():
    """A scalar ``focal_alpha`` on plain probabilities is Keras's
    ``CategoricalFocalCrossentropy(alpha, gamma)`` (every class scaled alike)."""
    logits, labels = data(void=False)
    p = tf.nn.softmax(logits)
    expected = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0)(one_hot(labels), p)
    for y in (labels, one_hot(labels)):
        got = pixel_categorical_crossentropy(y, p, focal_gamma=2.0, focal_alpha=0.25)
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_options_save_and_reload():
    losses = [
        PixelCategoricalCrossentropy(focal_alpha=[0.2, 1.0, 3.0], focal_gamma=1.0),
        PixelBinaryCrossentropy(focal_alpha=0.25),
        PixelBinaryCrossentropy(pos_weight=POS_WEIGHT, label_smoothing=0.1),
    ]
    logits, labels = data(void=False)
    for loss in losses:
        again = keras.losses.deserialize(keras.losses.serialize(loss))
        assert again.get_config() == loss.get_config()
        p = tf.sigmoid(logits)
        np.testing.assert_allclose(again(labels, p), loss(labels, p))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: PixelCategoricalCrossentropy(focal_alpha=-0.5), "must be a number >= 0"),
        (lambda: PixelCategoricalCrossentropy(focal_alpha=[[1.0]]), "1-D sequence"),
        (lambda: PixelBinaryCrossentropy(focal_alpha=1.5), "must be a number in [0, 1]"),
        (lambda: PixelBinaryCrossentropy(focal_alpha=[0.2, 2.0]), "must be in [0, 1]"),
        (lambda: PixelBinaryCrossentropy(pos_weight=[1.0, -2.0]), "must be finite and >= 0"),
        (lambda: PixelBinaryCrossentropy(pos_weight="a"), "a sequence of numbers"),
    ],
)
def test_bad_options_raise(make, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make()


def test_per_class_lengths_must_match_the_classes():
    logits, labels = data(void=False)
    with pytest.raises(ValueError, match=f"`focal_alpha` needs one weight per class: expected {C}"):
        pixel_categorical_crossentropy(labels, logits, from_logits=True, focal_alpha=[1.0, 2.0])
    with pytest.raises(ValueError, match="`focal_alpha` needs one weight per class"):
        pixel_binary_crossentropy(labels, logits, from_logits=True, focal_alpha=[0.5])
    with pytest.raises(ValueError, match="`pos_weight` needs one weight per class"):
        pixel_binary_crossentropy(labels, logits, from_logits=True, pos_weight=[1.0, 2.0])
