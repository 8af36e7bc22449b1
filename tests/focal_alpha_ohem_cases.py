"""Issue #31's cross-entropy options (``focal_alpha``, ``pos_weight``, ``ohem_threshold`` with
``min_kept``) checked against the float64 references of tests/reference.py, written from
torchvision, MONAI, segmentation_models_pytorch and MMSegmentation. Backend-neutral: each
backend's test file passes its own ``value_and_grad(f, x) -> (value, gradient)``."""

import numpy as np
from reference import (
    mmseg_ohem_cross_entropy,
    mmseg_ohem_weight,
    monai_softmax_focal,
    numeric_gradient,
    pixel_cce,
    pixel_cce_focal_alpha,
    smp_focal_multiclass,
    smp_soft_bce,
    torchvision_sigmoid_focal,
)

from sm_pixel_ce import (
    PixelBinaryCrossentropy,
    PixelCategoricalCrossentropy,
    pixel_binary_crossentropy,
    pixel_categorical_crossentropy,
    pixel_softmax,
)

N, H, W, C = 2, 3, 4, 3
REL = 1e-5
ALPHA = [0.25, 1.0, 2.0]


def data(void=True):
    rng = np.random.default_rng(31)
    logits = rng.normal(0, 2, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W))
    if void:
        labels[0, 0, :2] = 255
    return logits, labels


def one_hot(labels):
    return np.eye(C, dtype=np.float32)[np.where(labels == 255, 0, labels)]


def check_focal_alpha_cce(value_and_grad):
    """Per-class ``focal_alpha`` on ``pixel_cce``: the fused route (``pixel_softmax`` output),
    the unfused one (label smoothing), dense labels and ``axis=1`` equal the reference, values
    and gradients; without void pixels it is C times MONAI's ``FocalLoss(use_softmax=True,
    weight=α)`` mean, and MONAI's scalar ``alpha=a`` is ``focal_alpha=[1 - a, a, ..., a]``."""
    logits, labels = data()
    for gamma, smoothing in ((2.0, 0.0), (0.0, 0.0), (1.5, 0.1)):
        loss = PixelCategoricalCrossentropy(
            focal_alpha=ALPHA, focal_gamma=gamma, label_smoothing=smoothing, ignore_index=255
        )

        def reference(z, gamma=gamma, smoothing=smoothing):
            return pixel_cce_focal_alpha(labels, z, ALPHA, gamma, smoothing, 255)

        value, grad = value_and_grad(lambda z: loss(labels, pixel_softmax(z)), logits)
        np.testing.assert_allclose(value, reference(logits), rtol=REL)
        np.testing.assert_allclose(grad, numeric_gradient(reference, logits), atol=1e-6)
    dense = pixel_categorical_crossentropy(
        one_hot(labels) * (labels != 255)[..., None], logits, from_logits=True, focal_alpha=ALPHA
    )
    np.testing.assert_allclose(dense, pixel_cce_focal_alpha(labels, logits, ALPHA, 0, 0, 255), REL)
    first = pixel_categorical_crossentropy(
        labels,
        np.moveaxis(logits, -1, 1),
        axis=1,
        from_logits=True,
        focal_alpha=ALPHA,
        ignore_index=255,
    )
    np.testing.assert_allclose(first, pixel_cce_focal_alpha(labels, logits, ALPHA, 0, 0, 255), REL)
    logits, labels = data(void=False)
    ours = pixel_categorical_crossentropy(
        labels, logits, from_logits=True, focal_gamma=2.0, focal_alpha=ALPHA
    )
    np.testing.assert_allclose(
        ours, C * monai_softmax_focal(logits, labels, 2.0, weight=ALPHA), REL
    )
    monai_scalar = pixel_categorical_crossentropy(
        labels, logits, from_logits=True, focal_gamma=2.0, focal_alpha=[0.75, 0.25, 0.25]
    )
    np.testing.assert_allclose(
        monai_scalar, C * monai_softmax_focal(logits, labels, 2.0, alpha=0.25), REL
    )


def check_focal_alpha_bce(value_and_grad):
    """``focal_alpha`` on ``pixel_bce`` is torchvision's ``sigmoid_focal_loss(alpha, gamma)``
    averaged over channels and counted pixels (values and gradients, per-class alpha); with a
    scalar alpha, C times it is SMP's ``FocalLoss("multiclass", alpha, gamma, ignore_index)``;
    ``reduction="none"`` gives each pixel's mean over channels."""
    logits, labels = data()
    valid = labels != 255
    alpha = [0.25, 0.5, 0.9]

    def reference(z):
        per = torchvision_sigmoid_focal(z, one_hot(labels), alpha, 2.0).mean(-1)
        return (per * valid).sum() / valid.sum()

    loss = PixelBinaryCrossentropy(
        from_logits=True, focal_alpha=alpha, focal_gamma=2.0, ignore_index=255
    )
    value, grad = value_and_grad(lambda z: loss(labels, z), logits)
    np.testing.assert_allclose(value, reference(logits), rtol=REL)
    np.testing.assert_allclose(grad, numeric_gradient(reference, logits), atol=1e-6)
    smp = smp_focal_multiclass(logits, labels, 0.25, 2.0, ignore_index=255)
    ours = pixel_binary_crossentropy(
        labels, logits, from_logits=True, focal_alpha=0.25, focal_gamma=2.0, ignore_index=255
    )
    np.testing.assert_allclose(C * np.asarray(ours), smp, rtol=REL)
    per_pixel = pixel_binary_crossentropy(
        labels, logits, from_logits=True, focal_alpha=alpha, ignore_index=255, reduction="none"
    )
    expected = torchvision_sigmoid_focal(logits, one_hot(labels), alpha, 0.0).mean(-1) * valid
    np.testing.assert_allclose(per_pixel, expected, rtol=REL, atol=1e-7)


POS_WEIGHT = [0.5, 2.0, 3.0]


def check_pos_weight(value_and_grad):
    """``pos_weight`` on ``pixel_bce``: with label smoothing ``2s`` it is SMP's
    ``SoftBCEWithLogitsLoss(smooth_factor=s, pos_weight)`` (torch's BCE on the smoothed
    targets), averaged over channels and counted pixels: values and gradients from logits, the
    value on sigmoid probabilities, multi-label dense targets, and ``axis=1``."""
    logits, labels = data()
    valid = labels != 255
    loss = PixelBinaryCrossentropy(
        from_logits=True, pos_weight=POS_WEIGHT, label_smoothing=0.2, ignore_index=255
    )

    def reference(z):
        per = smp_soft_bce(z, one_hot(labels), smooth_factor=0.1, pos_weight=POS_WEIGHT)
        return (per.mean(-1) * valid).sum() / valid.sum()

    value, grad = value_and_grad(lambda z: loss(labels, z), logits)
    np.testing.assert_allclose(value, reference(logits), rtol=REL)
    np.testing.assert_allclose(grad, numeric_gradient(reference, logits), atol=1e-6)
    multi = (np.random.default_rng(1).uniform(size=logits.shape) < 0.4).astype(np.float32)
    expected = smp_soft_bce(logits, multi, pos_weight=POS_WEIGHT).mean()
    probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    for y, z, options in (
        (multi, logits, {"from_logits": True}),
        (multi, probabilities.astype(np.float32), {}),
        (np.moveaxis(multi, -1, 1), np.moveaxis(logits, -1, 1), {"from_logits": True, "axis": 1}),
    ):
        got = pixel_binary_crossentropy(y, z, pos_weight=POS_WEIGHT, **options)
        np.testing.assert_allclose(got, expected, rtol=REL)


OHEM_WEIGHTS = [0.5, 1.0, 2.0]


def check_ohem(value_and_grad):
    """``ohem_threshold`` and ``min_kept`` on ``pixel_cce`` keep MMSegmentation's
    ``OHEMPixelSampler`` pixels: with many below the threshold (``min_kept`` 1) and with fewer
    (``min_kept`` the floor); ``reduction="sum"`` is MMSegmentation's sum of its class-weighted
    cross-entropy over them, the mean divides by their class weights; the gradient is non-zero
    exactly at the kept pixels and equals the reference's; probabilities, one-hot labels,
    ``axis=1`` and ``"none"`` agree; ``min_kept`` past the counted pixels keeps them all."""
    logits, labels = data()
    for threshold, min_kept in ((0.5, 1), (0.1, 5)):
        kept = mmseg_ohem_weight(logits, labels, threshold, min_kept) > 0
        below = (kept.sum(), (mmseg_ohem_weight(logits, labels, threshold, 0) > 0).sum())
        assert below[0] == (below[1] if min_kept == 1 else min_kept * N), below
        options = {"ohem_threshold": threshold, "min_kept": min_kept, "ignore_index": 255}
        total, _ = mmseg_ohem_cross_entropy(logits, labels, threshold, min_kept, OHEM_WEIGHTS)
        summed = pixel_categorical_crossentropy(
            labels,
            logits,
            from_logits=True,
            class_weights=OHEM_WEIGHTS,
            reduction="sum",
            **options,
        )
        np.testing.assert_allclose(summed, total, rtol=REL)
        loss = PixelCategoricalCrossentropy(class_weights=OHEM_WEIGHTS, **options)

        def reference(z, threshold=threshold, min_kept=min_kept):
            weight = mmseg_ohem_weight(z, labels, threshold, min_kept)
            total, _ = mmseg_ohem_cross_entropy(z, labels, threshold, min_kept, OHEM_WEIGHTS)
            counted = np.asarray(OHEM_WEIGHTS)[np.where(weight > 0, labels, 0)] * weight
            return total / counted.sum()

        value, grad = value_and_grad(lambda z: loss(labels, pixel_softmax(z)), logits)
        np.testing.assert_allclose(value, reference(logits), rtol=REL)
        np.testing.assert_array_equal(np.abs(grad).sum(-1) > 0, kept)
        np.testing.assert_allclose(grad, numeric_gradient(reference, logits), atol=1e-6)
        plain = pixel_cce(labels, logits, ignore_index=255, reduction="none") * kept
        probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        for y, z, more in (
            (labels, probabilities.astype(np.float32), {}),
            (one_hot(labels) * (labels != 255)[..., None], logits, {"from_logits": True}),
            (labels, np.moveaxis(logits, -1, 1), {"from_logits": True, "axis": 1}),
        ):
            got = pixel_categorical_crossentropy(y, z, reduction="none", **options, **more)
            np.testing.assert_allclose(got, plain, rtol=REL, atol=1e-6)
    everything = pixel_categorical_crossentropy(
        labels, logits, from_logits=True, ohem_threshold=1e-6, min_kept=1000, ignore_index=255
    )
    np.testing.assert_allclose(everything, pixel_cce(labels, logits, ignore_index=255), rtol=REL)


#: Every check above, for one parametrized test per backend.
CHECKS = (check_focal_alpha_cce, check_focal_alpha_bce, check_pos_weight, check_ohem)
