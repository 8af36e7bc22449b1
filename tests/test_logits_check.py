"""Logits are not probabilities: with from_logits=False every pixel loss refuses predictions outside
[0, 1] in one line that gives their min and max and names from_logits=True (eagerly a ValueError,
in a graph the same text as InvalidArgumentError), and skips the check on softmax/sigmoid outputs
that carry their logits."""

import numpy as np
import pytest
import tensorflow as tf

from sm_pixel_ce import (
    PixelBinaryCrossentropy,
    PixelCategoricalCrossentropy,
    PixelCategoricalFocalCrossentropy,
    PixelDiceLoss,
    PixelJaccardLoss,
    PixelLovaszLoss,
    PixelTverskyLoss,
    pixel_softmax,
)
from sm_pixel_ce.flavor import keras

LOSSES = [
    PixelCategoricalCrossentropy,
    PixelBinaryCrossentropy,
    PixelCategoricalFocalCrossentropy,
    PixelDiceLoss,
    PixelJaccardLoss,
    PixelTverskyLoss,
    PixelLovaszLoss,
]
C = 3


@pytest.fixture
def data(rng):
    logits = rng.normal(0, 2, (2, 4, 4, C)).astype(np.float32)
    logits[0, 0, 0] = [-3.5, 0.25, 4.75]  # the extremes the message must report
    logits = np.clip(logits, -3.5, 4.75)
    labels = rng.integers(0, C, (2, 4, 4))
    return logits, labels


def message_pattern(where):
    return (
        rf"^{where}: from_logits=False, but the predictions lie outside \[0, 1\], so they are "
        r"not probabilities \(logits\?\): pass from_logits=True, or end the model in .*"
        r"\(min, max of the predictions\) Received: -3\.5, 4\.75$"
    )


@pytest.mark.parametrize("cls", LOSSES)
def test_logits_given_as_probabilities_raise_one_clear_line(data, cls):
    logits, labels = data
    loss = cls()
    where = type(loss)._fn.__name__
    with pytest.raises(ValueError, match=message_pattern(where)) as caught:
        loss(labels, tf.constant(logits))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("cls", LOSSES)
def test_graph_mode_gives_the_same_text_as_invalid_argument(data, cls):
    logits, labels = data
    loss = cls()
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        tf.function(lambda y, p: loss(y, p))(tf.constant(labels), tf.constant(logits))
    text = str(caught.value)
    assert "from_logits=False, but the predictions lie outside [0, 1]" in text
    assert "pass from_logits=True" in text and "-3.5" in text and "4.75" in text


@pytest.mark.parametrize("cls", LOSSES)
def test_outputs_with_their_logits_and_probabilities_pass(data, cls):
    logits, labels = data
    loss = cls()
    z = tf.constant(logits)
    outputs = [pixel_softmax(z), keras.activations.softmax(z), tf.nn.softmax(z)]
    if cls is PixelBinaryCrossentropy:
        outputs = [tf.sigmoid(z), keras.activations.sigmoid(z)]
    for predictions in outputs:
        assert np.isfinite(loss(labels, predictions).numpy())
    # Rounding just past 1 is not taken for logits.
    nearly = np.clip(tf.nn.softmax(z).numpy() * (1 + 1e-6), 0, None)
    assert np.isfinite(loss(labels, tf.constant(nearly)).numpy())
    # Inside a compiled step, a softmax output passes too (its op holds the logits).
    step = tf.function(
        lambda y, z: loss(
            y, tf.nn.softmax(z) if cls is not PixelBinaryCrossentropy else tf.sigmoid(z)
        )
    )
    assert np.isfinite(step(tf.constant(labels), z).numpy())


def test_the_measured_case_no_longer_gives_a_wrong_number(data):
    # Before: pixel_cce on logits with from_logits=False renormalised and clipped them into a
    # finite, wrong loss (7.03 against 3.33 from the logits on the data).
    logits, labels = data
    right = PixelCategoricalCrossentropy(from_logits=True)(labels, logits).numpy()
    assert np.isfinite(right)
    with pytest.raises(ValueError, match="pass from_logits=True"):
        PixelCategoricalCrossentropy()(labels, logits)


def test_model_without_activation_fails_the_fit_step_clearly(rng):
    # keras-hub's SegFormer and other heads end in logits: loss="pixel_cce" must not train on them.
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(C, 1, bias_initializer="ones")(inputs))
    model.compile("sgd", loss="pixel_cce")
    x = rng.normal(0, 3, size=(2, 4, 4, 3)).astype(np.float32)
    y = rng.integers(0, C, (2, 4, 4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="pass from_logits=True"):
        model.train_on_batch(x, y)
    model.compile("sgd", loss=PixelCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(float(np.ravel(model.train_on_batch(x, y))[0]))


def test_not_finite_predictions_keep_their_own_message(data):
    logits, labels = data
    p = tf.nn.softmax(logits).numpy()
    p[0, 0, 0, 0] = np.nan
    for cls in (PixelCategoricalCrossentropy, PixelDiceLoss):
        with pytest.raises(ValueError, match="not finite because the predictions contain NaN"):
            cls()(labels, tf.constant(p))


@pytest.mark.parametrize("cls", [PixelCategoricalCrossentropy, PixelDiceLoss, PixelLovaszLoss])
def test_under_xla_logits_give_nan_not_a_wrong_number(data, cls):
    # XLA drops assertions (Keras 3 compiles with it by default on GPU): the loss is NaN instead.
    logits, labels = data
    loss = cls()
    step = tf.function(lambda y, p: loss(y, p), jit_compile=True)
    assert np.isnan(step(tf.constant(labels), tf.constant(logits)).numpy())
    probabilities = tf.constant(tf.nn.softmax(logits).numpy())
    np.testing.assert_allclose(
        step(tf.constant(labels), probabilities).numpy(),
        loss(labels, probabilities).numpy(),
        rtol=1e-6,
    )
