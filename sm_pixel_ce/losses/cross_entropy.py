"""Per-pixel cross-entropies: ``pixel_cce`` (softmax) and ``pixel_bce`` (sigmoid baseline).

Both flatten labels and predictions to (pixels, classes) the same way (see ``_pixels``), accept
dense or integer labels, and reduce to the weighted mean ``Σ w·ℓ / Σ w`` over counted pixels.
Both take a focal term (``focal_gamma``, ``focal_alpha``) and hard-pixel mining (``top_k``) for
rare classes; ``pixel_cce`` OHEM by threshold (``ohem_threshold``, ``min_kept``), ``pixel_bce``
PyTorch's ``pos_weight`` (examples/losses_focal_pos_weight_ohem.md).
"""

import math

import keras
import numpy as np
from keras import ops

from .. import _checks, _pixels
from .._backend import hooks
from .._registry import register, serializable
from ._base import _PixelLoss
from ._options import (
    AXIS,
    CLASS_WEIGHTS,
    FROM_LOGITS,
    IGNORE_INDEX,
    REDUCTION,
    SAMPLE_WEIGHT,
    Option,
    Options,
    loss_function,
)

LABEL_SMOOTHING = Option(
    "label_smoothing",
    0.0,
    _checks.label_smoothing,
    "``s`` in [0, 1]: the targets mixed with the uniform distribution. Defaults to 0.0.",
)
FOCAL_GAMMA = Option(
    "focal_gamma",
    0.0,
    _checks.focal_gamma,
    "The focal exponent ``γ >= 0`` (0: the plain cross-entropy). Defaults to 0.0.",
)
FOCAL_ALPHA = Option(
    "focal_alpha",
    None,
    _checks.focal_alpha,
    "The focal ``α``: a number >= 0 for every class, or one per class ``α[c]`` (MONAI's "
    "``weight``; SMP #808), or None for 1. It scales each class's term of ``ℓ`` and not the "
    "mean's denominator (``class_weights`` scale both). Defaults to None.",
)
TOP_K = Option(
    "top_k",
    None,
    _checks.top_k,
    "Fraction in (0, 1] of the counted pixels kept (the hardest), or None for all; with "
    '``reduction="none"`` the pixels not kept are 0. Defaults to None.',
)

OHEM_THRESHOLD = Option(
    "ohem_threshold",
    None,
    _checks.ohem_threshold,
    "OHEM by threshold ``t`` in (0, 1] (MMSegmentation's ``OHEMPixelSampler(thresh)``): only "
    "the counted pixels whose label-class probability is below ``t`` enter the loss, at least "
    "``min_kept`` per image (the least probable); None for all. Not with ``top_k``. "
    "Defaults to None.",
)
MIN_KEPT = Option(
    "min_kept",
    0,
    _checks.min_kept,
    "With ``ohem_threshold``: the least number of pixels kept per image of the batch "
    "(MMSegmentation's ``min_kept``, times the global batch size under ``tf.distribute``). "
    "Defaults to 0.",
)


def _mining_together(options, where):
    """``top_k`` and OHEM are two ways to choose the pixels: one at a time."""
    if options["top_k"] is not None and options["ohem_threshold"] is not None:
        raise ValueError(
            f"{where}: `top_k` and `ohem_threshold` both choose the pixels that count; give one. "
            f"Received: top_k={options['top_k']}, ohem_threshold={options['ohem_threshold']}"
        )
    if options["min_kept"] and options["ohem_threshold"] is None:
        raise ValueError(
            f"{where}: `min_kept` only applies with `ohem_threshold` (for a fraction of the "
            f"hardest pixels use `top_k`). Received: min_kept={options['min_kept']}, "
            "ohem_threshold=None"
        )


#: ``pixel_cce``'s options, in its function's order.
CATEGORICAL = Options(
    AXIS,
    FROM_LOGITS,
    LABEL_SMOOTHING,
    CLASS_WEIGHTS._replace(
        doc="One weight ``w[c] >= 0`` per class, or None for all 1. A dense label's pixel "
        "weight is ``Σ_c y_c·w[c]``. Defaults to None."
    ),
    IGNORE_INDEX._replace(
        doc="Integer-mask value whose pixels are not counted (may be a class in [0, C)), or "
        "None. Defaults to None."
    ),
    SAMPLE_WEIGHT,
    REDUCTION,
    FOCAL_GAMMA,
    FOCAL_ALPHA,
    TOP_K,
    OHEM_THRESHOLD,
    MIN_KEPT,
    together=_mining_together,
)
#: ``pixel_bce``'s options: ``pixel_cce``'s but the class weights.
BINARY = Options(
    AXIS,
    FROM_LOGITS,
    LABEL_SMOOTHING,
    IGNORE_INDEX._replace(
        doc="Label value whose pixels are not counted (in an integer mask, or in any channel "
        "of dense labels), or None. Defaults to None."
    ),
    SAMPLE_WEIGHT,
    REDUCTION,
    FOCAL_GAMMA,
    FOCAL_ALPHA._replace(
        check=_checks.binary_focal_alpha,
        doc="torchvision's ``alpha``: each term is scaled by ``α·y' + (1 - α)·(1 - y')``; a "
        "number in [0, 1], or one per class, or None for none (torchvision's ``alpha=-1``). "
        "Defaults to None.",
    ),
    Option(
        "pos_weight",
        None,
        _checks.pos_weight,
        "One weight ``pw[c] >= 0`` per class on the positive term: "
        "``-(pw[c]·y'·log p + (1 - y')·log(1 - p))``, PyTorch's "
        "``BCEWithLogitsLoss(pos_weight=...)`` (with label smoothing as SMP's "
        "``SoftBCEWithLogitsLoss``: on the smoothed targets), or None for all 1. Defaults to None.",
    ),
    TOP_K,
)


@serializable
@loss_function(CATEGORICAL)
def pixel_categorical_crossentropy(y_true, y_pred, sample_weight, options, where):
    """Categorical cross-entropy over every pixel, reduced to a weighted mean.

    Per pixel ``i`` with target ``y`` and predicted probabilities ``p`` (softmax over ``axis``):
    ``ℓᵢ = -Σ_c α_c y'_c (1 - p_c)^γ log p_c`` with ``y' = (1 - s)·y + s/C`` (label smoothing
    ``s``, focal exponent ``γ``, 0 for the plain cross-entropy, focal ``α``, 1 without). Reduced:
    ``Σᵢ swᵢ·w[yᵢ]·ℓᵢ / Σᵢ w[yᵢ]`` over counted pixels, as PyTorch's ``cross_entropy`` with
    ``weight`` and ``ignore_index``; an all-ignored batch gives 0. Keras ``sample_weight`` ``sw``
    scales terms as in Keras (per image ``(N,)`` or per pixel ``(N, H, W)``). With ``top_k``
    only the ⌈top_k·n⌉ counted pixels of largest ``ℓᵢ`` (ranked before any weight) enter both
    sums (DeepLab's ``top_k_percent_pixels``); under ``tf.distribute`` they are chosen among
    the pixels of all replicas, as on one device. With ``ohem_threshold`` (not with ``top_k``)
    only the counted pixels whose label probability is below it, and at least ``min_kept`` per
    image (the least probable), enter both sums: MMSegmentation's ``OHEMPixelSampler``
    (examples/losses_focal_pos_weight_ohem.md), global under ``tf.distribute`` as ``top_k``.

    Labels and predictions are flattened to ``(pixels, C)`` by one operation; channels_first
    tensors (``axis=1``) are transposed to channels-last first. When ``y_pred`` is the output of
    ``pixel_softmax`` (or Keras's softmax) the loss is computed from the logits behind it
    (``softmax_cross_entropy_with_logits``): stable, and a confidently wrong pixel keeps its
    gradient ``p - y``. Other probabilities are renormalised over the classes and enter the log
    clipped to [smallest normal float, 1]: ``-log p`` is exact down to ``p`` = 1.2e-38 (87.3),
    where Keras clips at 1e-7 (16.1); the same on every backend (examples/backend_rules.md).

    Args:
        y_true: Dense labels of ``y_pred``'s shape (one-hot or soft, each pixel summing to 1; an
            all-zero pixel is unlabelled and not counted), or an integer mask ``(N, H, W)`` /
            ``(N, H, W, 1)`` of any integer dtype or integer-valued float.
        y_pred: Probabilities (or logits with ``from_logits=True``), e.g. ``(N, H, W, C)``.
        {options}

    Returns:
        A float32 scalar (or ``(N, H, W)`` for ``reduction="none"``); float64 for float64
        predictions.

    Example:
        >>> y_true = np.array([[[0, 2], [1, 255]]])            # (1, 2, 2) integer mask
        >>> y_pred = sm_pixel_ce.pixel_softmax(np.random.randn(1, 2, 2, 3))
        >>> loss = pixel_categorical_crossentropy(y_true, y_pred, ignore_index=255)
        >>> model.compile("adam", loss="pixel_cce")  # or PixelCategoricalCrossentropy(...)
    """
    pixels = _pixels.flat_predictions(
        y_true, y_pred, options["axis"], options["from_logits"], where, binary=False
    )
    scores = pixels.scores
    cw = _pixels.class_weight_tensor(
        options["class_weights"], pixels.num_classes, scores.dtype, where
    )
    alpha = _per_class(options["focal_alpha"], pixels.num_classes, scores.dtype, where)
    if pixels.dense:
        labels, row_sum = pixels.dense_distributions()
        weights = row_sum if cw is None else ops.einsum("pc,c->p", labels, cw)
        losses, counted = _dense_categorical(pixels, labels, options, alpha), row_sum > 0
        nll = _dense_label_nll(pixels, labels, row_sum) if options["ohem_threshold"] else None
    else:
        labels, valid = pixels.integer_labels(options["ignore_index"])
        if pixels.from_logits and not options["label_smoothing"]:
            cross_entropy = hooks.sparse_softmax_cross_entropy(labels, scores)
            return sparse_cross_entropy_mean(
                pixels, cross_entropy, labels, valid, cw, options, sample_weight
            )
        losses = _sparse_categorical(pixels, labels, options, alpha)
        weights, counted = _integer_weights(labels, valid, cw, scores.dtype), valid
        nll = _sparse_label_nll(pixels, labels) if options["ohem_threshold"] else None
    weights = _mine(losses, counted, weights, options, pixels, nll)
    return _pixels.reduce(pixels, losses, weights, sample_weight, options["reduction"])


def _per_class(values, num_classes, dtype, where, name="focal_alpha"):
    """A per-class option (a number for every class, or one per class) as a ``(C,)`` tensor of
    ``dtype``; None stays None."""
    if values is None:
        return None
    if isinstance(values, list):
        _checks.one_weight_per_class(values, num_classes, where, name)
    else:
        values = [values] * num_classes
    return ops.convert_to_tensor(np.asarray(values), dtype=keras.backend.standardize_dtype(dtype))


def _dense_categorical(pixels, labels, options, alpha):
    """Each pixel's cross-entropy with its (smoothed) dense distribution ``labels``, each
    class's term times ``alpha`` (None: 1)."""
    label_smoothing, focal_gamma = options["label_smoothing"], options["focal_gamma"]
    scores, target = pixels.scores, labels
    if label_smoothing:
        target = labels * (1.0 - label_smoothing) + label_smoothing / pixels.num_classes
    if alpha is not None:
        target = target * alpha
    if focal_gamma:
        return -ops.sum(target * _focal_log_p(scores, pixels.from_logits, focal_gamma), axis=-1)
    if pixels.from_logits:
        return hooks.softmax_cross_entropy(target, scores)
    return -ops.sum(target * ops.log(_clipped_probabilities(scores)), axis=-1)


def _sparse_categorical(pixels, labels, options, alpha):
    """Each pixel's cross-entropy with its integer label (smoothed), unfused, each class's term
    times ``alpha`` (None: 1)."""
    label_smoothing, focal_gamma = options["label_smoothing"], options["focal_gamma"]
    scores, from_logits = pixels.scores, pixels.from_logits
    if not (from_logits or label_smoothing or focal_gamma):
        # The usual case on plain probabilities: the log of each pixel's one probability, not
        # of all C.
        picked = hooks.pick(scores, labels)
        losses = -ops.log(_pixels.for_log(picked / ops.sum(scores, axis=-1)))
        return losses if alpha is None else losses * hooks.gather(alpha, labels)
    if focal_gamma:
        log_p = _focal_log_p(scores, from_logits, focal_gamma)
    elif from_logits:
        log_p = ops.log_softmax(scores, axis=-1)
    else:
        log_p = ops.log(_clipped_probabilities(scores))
    if alpha is not None:
        log_p = log_p * alpha
    losses = -hooks.pick(log_p, labels)
    if label_smoothing:
        losses = (1.0 - label_smoothing) * losses - label_smoothing * ops.mean(log_p, axis=-1)
    return losses


def sparse_cross_entropy_mean(pixels, cross_entropy, labels, valid, cw, options, sample_weight):
    """``pixel_categorical_crossentropy`` of an integer mask from the per-pixel ``-log p_y``.

    Args:
        pixels: The :class:`~sm_pixel_ce._pixels.Pixels` of the call.
        cross_entropy: ``-log p_y`` per pixel, ``(P,)``.
        labels, valid: As :meth:`~sm_pixel_ce._pixels.Pixels.integer_labels` returns them.
        cw: The ``(C,)`` class weights, or None.
        options: The checked options of :func:`pixel_categorical_crossentropy` (its
            ``focal_gamma``, ``focal_alpha``, ``top_k``, ``ohem_threshold``, ``min_kept`` and
            ``reduction`` are read).
        sample_weight: As for :func:`pixel_categorical_crossentropy`.

    Returns:
        This replica's share of the loss (a scalar), or the per-pixel map for ``"none"``.
    """
    weights = _integer_weights(labels, valid, cw, cross_entropy.dtype)
    losses = cross_entropy
    if options["focal_gamma"]:
        # ℓ = (1 - p_y)^γ·ce with p_y = exp(-ce): per pixel, on the fused kernel's output.
        losses = losses * _pixels.focal_factor(-ops.expm1(-losses), options["focal_gamma"])
    if options["focal_alpha"] is not None:
        alpha = _per_class(options["focal_alpha"], pixels.num_classes, losses.dtype, pixels.where)
        losses = losses * hooks.gather(alpha, labels)
    weights = _mine(losses, valid, weights, options, pixels, cross_entropy)
    return _pixels.reduce(pixels, losses, weights, sample_weight, options["reduction"])


def _integer_weights(labels, valid, cw, dtype):
    """Each pixel's weight: its class's (or 1), 0 where not valid; None for all 1."""
    if cw is not None:
        weights = hooks.gather(cw, labels)
        return weights if valid is None else ops.where(valid, weights, 0.0)
    return None if valid is None else ops.cast(valid, dtype)


@serializable
@loss_function(BINARY)
def pixel_binary_crossentropy(y_true, y_pred, sample_weight, options, where):
    """Binary cross-entropy per class channel, averaged over channels and counted pixels.

    The baseline to compare ``pixel_cce`` with: each channel is an independent sigmoid.
    Per pixel ``ℓᵢ = mean_c -(y'_c log p_c + (1 - y'_c) log(1 - p_c))·(1 - p'_c)^γ·α'_c`` with
    ``y' = (1 - s)·y + s/2``, ``p'_c = y'_c p_c + (1 - y'_c)(1 - p_c)`` and
    ``α'_c = α_c y'_c + (1 - α_c)(1 - y'_c)`` (1 without ``focal_alpha``): torchvision's
    ``sigmoid_focal_loss(alpha, gamma)``; ``γ = 0`` and no ``α`` is the plain BCE), the
    positive term ``y'_c log p_c`` times ``pos_weight[c]`` when given; reduced
    ``Σᵢ swᵢ·wᵢ·ℓᵢ / Σᵢ wᵢ`` where ``wᵢ`` is 0 for ignored pixels and 1 otherwise, over the
    hardest pixels only with ``top_k`` (as for :func:`pixel_categorical_crossentropy`). With
    neutral options this equals Keras's ``binary_crossentropy`` where no probability lies within
    1e-7 of 0 or 1: plain probabilities enter each log clipped to [smallest normal float, 1]
    (``-log p`` exact to 87.3), where Keras clips to [1e-7, 1 - 1e-7].

    Args:
        y_true: Dense labels of ``y_pred``'s shape with values in [0, 1] (one-hot or
            multi-label), or an integer mask ``(N, H, W)`` / ``(N, H, W, 1)`` (one-hot encoded
            here; with a single channel, the mask's 1 is the foreground).
        y_pred: Sigmoid probabilities (or logits with ``from_logits=True``), ``(N, H, W, C)``.
        {options}

    Returns:
        A float32 scalar (or ``(N, H, W)`` for ``reduction="none"``); float64 for float64
        predictions.

    Example:
        >>> model = sm.Unet("resnet18", encoder_weights=None, classes=7, activation="sigmoid")
        >>> model.compile("adam", loss="pixel_bce")
    """
    pixels = _pixels.flat_predictions(
        y_true, y_pred, options["axis"], options["from_logits"], where, binary=True
    )
    labels, weights = _binary_labels(pixels, options["ignore_index"], where)
    label_smoothing = options["label_smoothing"]
    if label_smoothing:
        labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
    pos_weight = _per_class(
        options["pos_weight"], pixels.num_classes, pixels.scores.dtype, where, "pos_weight"
    )
    alpha = _alpha_factor(options["focal_alpha"], labels, pixels, where)
    gamma = options["focal_gamma"]
    if pixels.from_logits and gamma and pos_weight is None:
        terms = _sigmoid_focal_terms(labels, pixels.scores, gamma, alpha)
    else:
        terms = _binary_terms(pixels.scores, labels, pixels.from_logits, gamma, pos_weight)
        terms = terms if alpha is None else terms * alpha
    losses = ops.mean(terms, axis=-1)
    counted = None if weights is None else weights > 0
    weights = _mine(losses, counted, weights, options, pixels)
    return _pixels.reduce(pixels, losses, weights, sample_weight, options["reduction"])


def _binary_terms(scores, labels, from_logits, focal_gamma, pos_weight=None):
    """The elementwise sigmoid cross-entropy ``(P, C)`` (its positive term times ``pos_weight``
    when given), times the focal factor when set."""
    if from_logits:
        if pos_weight is None:
            losses = hooks.sigmoid_cross_entropy(labels, scores)
        else:
            # PyTorch's form: (1 - y)·z + (1 + (pw - 1)·y)·softplus(-z), stable for any z.
            log_weight = 1.0 + (pos_weight - 1.0) * labels
            losses = (1.0 - labels) * scores + log_weight * ops.softplus(-scores)
        # 1 - p'_c from the logits: exact for confident pixels, where 1 - sigmoid rounds to 0.
        miss = labels * ops.sigmoid(-scores) + (1.0 - labels) * ops.sigmoid(scores)
    else:
        p = _pixels.for_log(scores)
        positive = labels if pos_weight is None else labels * pos_weight
        losses = -(positive * ops.log(p) + (1.0 - labels) * ops.log(_pixels.for_log(1.0 - p)))
        miss = labels * (1.0 - p) + (1.0 - labels) * p
    return losses * _pixels.focal_factor(miss, focal_gamma) if focal_gamma else losses


def _alpha_factor(focal_alpha, labels, pixels, where):
    """torchvision's ``α' = α·y' + (1 - α)·(1 - y')`` of the ``(P, C)`` targets ``labels``,
    written ``(1 - α) + (2α - 1)·y'`` (two operations, on numbers for a scalar ``α``); None
    without ``focal_alpha``."""
    if focal_alpha is None:
        return None
    if isinstance(focal_alpha, list):
        alpha = _per_class(focal_alpha, pixels.num_classes, pixels.scores.dtype, where)
    else:
        alpha = float(focal_alpha)
    return (1.0 - alpha) + (2.0 * alpha - 1.0) * labels


def _sigmoid_focal_terms(labels, logits, gamma, alpha):
    """torchvision's ``sigmoid_focal_loss`` terms ``α'·(1 - p')^γ·bce`` ``(P, C)`` from the
    logits (``α'``: the ``(P, C)`` factor of :func:`_alpha_factor`, or None), with its gradient
    written out (``hooks.written_gradient``).

    One ``e = exp(-|z|)`` gives the cross-entropy (``max(z, 0) - z·y + log1p(e)``, TensorFlow's
    fused formula) and both sigmoids (``σ(|z|) = 1/(1 + e)``, ``σ(-|z|) = e·σ(|z|)``): ``1 - p'``
    stays exact for confident pixels, where ``1 - σ`` rounds to 0. The gradient is
    ``α'·(f'(m)·(1 - 2y)·σ(z)σ(-z)·bce + f(m)·(σ(z) - y))`` with ``m = 1 - p'``, ``f(m) = m^γ``:
    one elementwise pass back, where autodiff keeps the sigmoids and powers of the forward pass.
    """

    def terms(z):
        e = ops.exp(-ops.abs(z))
        big = 1.0 / (1.0 + e)
        small = e * big
        positive = z >= 0
        # 1 - p' = y·σ(-z) + (1 - y)·σ(z): the small sigmoid weighs y where z >= 0, 1 - y below.
        other = ops.where(positive, labels, 1.0 - labels)
        miss = other * small + (1.0 - other) * big
        bce = ops.relu(z) - z * labels + ops.log1p(e)
        factor = _focal_power(miss, gamma)
        value = factor * bce if alpha is None else alpha * factor * bce

        def gradient(upstream):
            slope = _focal_slope(miss, factor, gamma)
            p = ops.where(positive, big, small)
            d = slope * (1.0 - 2.0 * labels) * (big * small) * bce + factor * (p - labels)
            return upstream * d if alpha is None else upstream * alpha * d

        return value, gradient

    return hooks.written_gradient(terms, logits)


def _focal_power(miss, gamma):
    """``miss^γ``: as ``_pixels.focal_factor`` (floored at the smallest normal number), and for
    ``γ`` of 1 and 2 as a product (no floor needed: the same value, a cheaper pass)."""
    if gamma == 1.0:
        return miss
    if gamma == 2.0:
        return miss * miss
    return _pixels.focal_factor(miss, gamma)


def _focal_slope(miss, factor, gamma):
    """The derivative of :func:`_focal_power` in ``miss``, from its value ``factor``."""
    if gamma == 1.0:
        return 1.0
    if gamma == 2.0:
        return 2.0 * miss
    floor = _pixels.smallest_normal(miss.dtype)
    return ops.where(miss >= floor, gamma * factor / ops.maximum(miss, floor), 0.0)


def _binary_labels(pixels, ignore_index, where):
    """``(labels, weights)`` of ``pixel_bce``: ``(P, C)`` targets in [0, 1] (an integer mask
    one-hot encoded) and the 0/1 pixel weights (None: every pixel counts)."""
    dtype, num_classes = _pixels.dtype_name(pixels.scores), pixels.num_classes
    if not pixels.dense:
        labels, valid = pixels.integer_labels(ignore_index, num_values=max(num_classes, 2))
        if num_classes == 1:
            labels = ops.cast(labels, dtype)[:, None]
        else:
            labels = ops.one_hot(labels, num_classes, dtype=dtype)
        return labels, None if valid is None else ops.cast(valid, dtype)
    raw = ops.cast(pixels.labels, dtype)
    labels, weights = raw, None
    in_range = ops.logical_and(raw >= 0, raw <= 1)
    if ignore_index is not None:
        ignored = ops.any(ops.equal(raw, float(ignore_index)), axis=-1)
        weights = ops.cast(ops.logical_not(ignored), dtype)
        in_range = ops.logical_or(in_range, ignored[:, None])
        labels = ops.where(ignored[:, None], 0.0, raw)
    pixels.require(
        ops.all(in_range),
        _pixels.binary_labels_out_of_range(where, ignore_index),
        *hooks.extremes(raw),
    )
    return labels, weights


def _clipped_probabilities(probabilities):
    """Probabilities renormalised along the classes (as Keras does), clipped for a log."""
    return _pixels.for_log(probabilities / ops.sum(probabilities, axis=-1, keepdims=True))


def _focal_log_p(scores, from_logits, gamma):
    """``(1 - p_c)^γ·log p_c`` per class: from log-softmax for logits, else from the
    renormalised probabilities clipped for a log (``_pixels.for_log``)."""
    if from_logits:
        log_p = ops.log_softmax(scores, axis=-1)
        return _pixels.focal_factor(-ops.expm1(log_p), gamma) * log_p
    p = _clipped_probabilities(scores)
    return _pixels.focal_factor(1.0 - p, gamma) * ops.log(p)


def _mine(losses, counted, weights, options, pixels, nll=None):
    """The pixel weights with the pixels hard-pixel mining drops set to 0: ``top_k``'s hardest
    by ``losses``, or OHEM's by each pixel's ``nll = -log p_y`` (``ohem_threshold``)."""
    top_k, threshold = options["top_k"], options.get("ohem_threshold")
    if threshold is not None:
        kept = _ohem_kept(nll, counted, threshold, options["min_kept"], pixels)
    elif top_k is None or top_k == 1.0:
        return weights
    else:
        kept = _pixels.hardest(losses, counted, top_k)
    if weights is None:
        return ops.cast(kept, losses.dtype)
    return ops.where(kept, weights, 0.0)


def _ohem_kept(nll, counted, threshold, min_kept, pixels):
    """MMSegmentation's ``OHEMPixelSampler``: the counted pixels whose label probability
    ``exp(-nll)`` is below ``threshold``, and the ``min_kept`` per image (of the global batch)
    least probable, chosen by the hook of ``top_k`` (exact under ``tf.distribute``)."""
    nll = ops.stop_gradient(nll)
    kept = nll > -math.log(threshold)
    if counted is not None:
        kept = ops.logical_and(kept, counted)
    if min_kept:
        images = hooks.global_sum(ops.cast(pixels.spatial_shape[0], "int32"))
        kept = ops.logical_or(kept, hooks.hardest(nll, counted, count=min_kept * images))
    return kept


def _sparse_label_nll(pixels, labels):
    """``-log p_y`` per pixel of an integer mask, from the logits or the renormalised
    probabilities (clipped for the log), for OHEM's choice."""
    if pixels.from_logits:
        return hooks.sparse_softmax_cross_entropy(labels, pixels.scores)
    scores = pixels.scores
    return -ops.log(_pixels.for_log(hooks.pick(scores, labels) / ops.sum(scores, axis=-1)))


def _dense_label_nll(pixels, labels, row_sum):
    """``-log Σ_c y_c p_c / Σ_c y_c`` per pixel of dense labels (``-log p_y`` for one-hot)."""
    if pixels.from_logits:
        p = ops.softmax(pixels.scores, axis=-1)
    else:
        p = pixels.scores / ops.sum(pixels.scores, axis=-1, keepdims=True)
    q = ops.sum(labels * p, axis=-1) / ops.maximum(row_sum, 1e-30)
    return -ops.log(_pixels.for_log(q))


@register("loss", "pixel_cce", "pixel_categorical_crossentropy")
class PixelCategoricalCrossentropy(_PixelLoss):
    """Categorical cross-entropy over every pixel; see :func:`pixel_categorical_crossentropy`.

    {call}

    Example:
        >>> loss = PixelCategoricalCrossentropy(class_weights=[0.2] + [1.0] * 6, ignore_index=255)
        >>> model.compile("adam", loss=loss)   # or simply loss="pixel_cce"
        >>> hard = PixelCategoricalCrossentropy(focal_gamma=2.0, top_k=0.25, ignore_index=255)
        >>> ohem = PixelCategoricalCrossentropy(ohem_threshold=0.7, min_kept=10000)
    """

    _fn = staticmethod(pixel_categorical_crossentropy)
    default_name = "pixel_categorical_crossentropy"
    none_shape = "(N, H, W)"


@register("loss", "pixel_bce", "pixel_binary_crossentropy")
class PixelBinaryCrossentropy(_PixelLoss):
    """Per-channel binary cross-entropy over every pixel; see :func:`pixel_binary_crossentropy`.

    {call}

    Example:
        >>> model = sm.Unet("resnet18", encoder_weights=None, classes=7, activation="sigmoid")
        >>> model.compile("adam", loss=PixelBinaryCrossentropy(ignore_index=255))
    """

    _fn = staticmethod(pixel_binary_crossentropy)
    default_name = "pixel_binary_crossentropy"
    none_shape = "(N, H, W)"


@register("loss", "pixel_focal", "pixel_categorical_focal_crossentropy")
class PixelCategoricalFocalCrossentropy(PixelCategoricalCrossentropy):
    """``PixelCategoricalCrossentropy`` with ``focal_gamma=2`` by default: ``"pixel_focal"``.

    Every option is :class:`PixelCategoricalCrossentropy`'s; only the defaults of
    ``focal_gamma`` and ``name`` differ. On probabilities none of which is below 1e-7 it equals
    Keras's ``CategoricalFocalCrossentropy(alpha=1, gamma=2)``, with ``ignore_index``, class
    weights and the weighted mean of ``pixel_cce`` (below 1e-7 Keras clips, ``pixel_cce``'s log
    does not: see :func:`pixel_categorical_crossentropy`).

    Example:
        >>> model.compile("adam", loss="pixel_focal")
        >>> model.compile("adam", loss=PixelCategoricalFocalCrossentropy(ignore_index=255))
    """

    declaration = CATEGORICAL.replace(focal_gamma=2.0)
    default_name = "pixel_categorical_focal_crossentropy"
