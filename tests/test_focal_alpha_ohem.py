"""Issue #31's cross-entropy options on TensorFlow (Keras 3 and tf_keras): ``focal_alpha``,
``pos_weight`` and OHEM by threshold against the references of tests/reference.py (written from
torchvision, MONAI, SMP and MMSegmentation), Keras's ``CategoricalFocalCrossentropy``, saved and
reloaded, and the checks' errors."""

import re

import numpy as np
import pytest
import tensorflow as tf
from focal_alpha_ohem_cases import CHECKS, POS_WEIGHT, C, data, one_hot
from reference import numeric_gradient, torchvision_sigmoid_focal
from test_focal_topk import gradient as value_and_grad

from sm_pixel_ce import (
    PixelBinaryCrossentropy,
    PixelCategoricalCrossentropy,
    pixel_binary_crossentropy,
    pixel_categorical_crossentropy,
)
from sm_pixel_ce.flavor import keras


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_matches_the_references(check):
    check(value_and_grad)


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


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.0])
def test_sigmoid_focal_written_gradient(gamma):
    """The focal ``pixel_bce`` from logits differentiates by its written-out gradient (and in a
    graph without XLA through an XLA kernel): for every form of ``(1 - p')^γ`` (products for
    1 and 2, powers else), on smoothed (soft) targets, with a per-class alpha, eagerly, in a
    graph and under XLA, the value and gradient of torchvision's formula (numeric)."""
    logits, labels = data()
    logits[0, 0, 2] = [30.0, -30.0, 30.0]  # confident pixels: 1 - p' far below float32's eps
    valid = labels != 255
    alpha, smoothing = [0.25, 0.5, 0.9], 0.1
    targets = one_hot(labels) * (1.0 - smoothing) + smoothing / 2

    def reference(z):
        per = torchvision_sigmoid_focal(z, targets, alpha, gamma).mean(-1)
        return (per * valid).sum() / valid.sum()

    loss = PixelBinaryCrossentropy(
        from_logits=True,
        focal_alpha=alpha,
        focal_gamma=gamma,
        label_smoothing=smoothing,
        ignore_index=255,
    )
    expected = numeric_gradient(reference, logits)
    for mode in (None, False, True):
        fn = lambda z: loss(labels, z)  # noqa: E731
        if mode is not None:
            fn = tf.function(fn, jit_compile=mode)
        value, grad = value_and_grad(fn, logits)
        np.testing.assert_allclose(value, reference(logits), rtol=1e-5)
        np.testing.assert_allclose(grad, expected, atol=1e-6)


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
        PixelCategoricalCrossentropy(ohem_threshold=0.7, min_kept=3, ignore_index=255),
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
        (lambda: PixelCategoricalCrossentropy(ohem_threshold=0.0), "a probability in (0, 1]"),
        (lambda: PixelCategoricalCrossentropy(ohem_threshold=0.7, min_kept=-1), "integer >= 0"),
        (lambda: PixelCategoricalCrossentropy(min_kept=10), "only applies with `ohem_threshold`"),
        (
            lambda: PixelCategoricalCrossentropy(ohem_threshold=0.7, top_k=0.2),
            "`top_k` and `ohem_threshold` both choose",
        ),
    ],
)
def test_bad_options_raise(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_per_class_lengths_must_match_the_classes():
    logits, labels = data(void=False)
    with pytest.raises(ValueError, match=f"`focal_alpha` needs one weight per class: expected {C}"):
        pixel_categorical_crossentropy(labels, logits, from_logits=True, focal_alpha=[1.0, 2.0])
    with pytest.raises(ValueError, match="`focal_alpha` needs one weight per class"):
        pixel_binary_crossentropy(labels, logits, from_logits=True, focal_alpha=[0.5])
    with pytest.raises(ValueError, match="`pos_weight` needs one weight per class"):
        pixel_binary_crossentropy(labels, logits, from_logits=True, pos_weight=[1.0, 2.0])


@pytest.mark.one_flavor
def test_ohem_spec_by_name():
    """``compare``'s spec ``pixel_cce(ohem_threshold=0.7,min_kept=100)`` builds that loss; OHEM
    with ``top_k`` is refused by the spec too; ``--variants all`` holds none of the options."""
    from sm_pixel_ce.compare.specs import parse_spec
    from sm_pixel_ce.compare.variants import BUILT_IN, loss_for

    loss = loss_for("pixel_cce(ohem_threshold=0.7,min_kept=100)", None, 3, ignore_index=255)
    config = loss.get_config()
    assert (config["ohem_threshold"], config["min_kept"], config["ignore_index"]) == (0.7, 100, 255)
    with pytest.raises(ValueError, match="both choose"):
        parse_spec("pixel_cce(ohem_threshold=0.7,top_k=0.2)")
    specs = [spec for spec, _ in BUILT_IN.values() if spec]
    assert not [s for s in specs if any(w in s for w in ("ohem", "pos_weight", "focal_alpha"))]
