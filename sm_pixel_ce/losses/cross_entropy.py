"""Per-pixel cross-entropies: ``pixel_cce`` (softmax) and ``pixel_bce`` (sigmoid baseline).

Both flatten labels and predictions to (pixels, classes) the same way (see ``_pixels``), accept
dense or integer labels, and reduce to the weighted mean ``Σ w·ℓ / Σ w`` over counted pixels.
Both take a focal term (``focal_gamma``) and hard-pixel mining (``top_k``) for rare classes.
"""

import tensorflow as tf

from .. import _checks, _neutral, _neutral_regions, _pixels
from .._registry import register, serializable
from ..flavor import IS_TENSORFLOW
from ._base import _PixelLoss, class_weight_tensor, scores_of


@serializable
def pixel_categorical_crossentropy(
    y_true,
    y_pred,
    axis=-1,
    from_logits=False,
    label_smoothing=0.0,
    class_weights=None,
    ignore_index=None,
    sample_weight=None,
    reduction="sum_over_batch_size",
    focal_gamma=0.0,
    top_k=None,
):
    """Categorical cross-entropy over every pixel, reduced to a weighted mean.

    Per pixel ``i`` with target ``y`` and predicted probabilities ``p`` (softmax over ``axis``):
    ``ℓᵢ = -Σ_c y'_c (1 - p_c)^γ log p_c`` with ``y' = (1 - s)·y + s/C`` (label smoothing ``s``,
    focal exponent ``γ``, 0 for the plain cross-entropy). Reduced:
    ``Σᵢ swᵢ·w[yᵢ]·ℓᵢ / Σᵢ w[yᵢ]`` over counted pixels, as PyTorch's ``cross_entropy`` with
    ``weight`` and ``ignore_index``; an all-ignored batch gives 0. Keras ``sample_weight`` ``sw``
    scales terms as in Keras (per image ``(N,)`` or per pixel ``(N, H, W)``). With ``top_k``
    only the ⌈top_k·n⌉ counted pixels of largest ``ℓᵢ`` (ranked before any weight) enter both
    sums (DeepLab's ``top_k_percent_pixels``); under ``tf.distribute`` they are chosen among
    the pixels of all replicas, as on one device.

    Labels and predictions are flattened to ``(pixels, C)`` by one operation; channels_first
    tensors (``axis=1``) are transposed to channels-last first. When ``y_pred`` is the output of
    ``pixel_softmax`` (or Keras's softmax) the loss is computed from the logits behind it
    (``softmax_cross_entropy_with_logits``): stable, and a confidently wrong pixel keeps its
    gradient ``p - y``.

    Args:
        y_true: Dense labels of ``y_pred``'s shape (one-hot or soft, each pixel summing to 1; an
            all-zero pixel is unlabelled and not counted), or an integer mask ``(N, H, W)`` /
            ``(N, H, W, 1)`` of any integer dtype or integer-valued float.
        y_pred: Probabilities (or logits with ``from_logits=True``), e.g. ``(N, H, W, C)``.
        axis: Class axis of ``y_pred``. Defaults to -1.
        from_logits: Whether ``y_pred`` holds logits. Defaults to False.
        label_smoothing: ``s`` in [0, 1]. Defaults to 0.0.
        class_weights: One weight ``w[c] >= 0`` per class, or None for all 1. A dense label's
            pixel weight is ``Σ_c y_c·w[c]``. Defaults to None.
        ignore_index: Integer-mask value whose pixels are not counted (may be a class in
            [0, C)), or None. Defaults to None.
        sample_weight: Keras sample weights, ``(N,)`` or ``(N, H, W)``, or None. Defaults to None.
        reduction: ``"sum_over_batch_size"`` (or ``"mean"``): the weighted mean above;
            ``"mean_with_sample_weight"``: divide by ``Σ sw·w``; ``"sum"``; ``"none"``: the
            per-pixel weighted losses ``(N, H, W)``. Defaults to "sum_over_batch_size".
        focal_gamma: ``γ >= 0``. On probabilities the loss then equals Keras's
            ``CategoricalFocalCrossentropy(alpha=1, gamma=γ)``; from logits it is computed with
            log-softmax. Defaults to 0.0.
        top_k: Fraction in (0, 1] of the counted pixels kept (the hardest), or None for all;
            with ``reduction="none"`` the pixels not kept are 0. Defaults to None.

    Returns:
        A float32 scalar (or ``(N, H, W)`` for ``reduction="none"``).

    Example:
        >>> y_true = np.array([[[0, 2], [1, 255]]])            # (1, 2, 2) integer mask
        >>> y_pred = sm_pixel_ce.pixel_softmax(np.random.randn(1, 2, 2, 3))
        >>> loss = pixel_categorical_crossentropy(y_true, y_pred, ignore_index=255)
        >>> model.compile("adam", loss="pixel_cce")  # or PixelCategoricalCrossentropy(...)
    """
    where = "pixel_categorical_crossentropy"
    label_smoothing = _checks.label_smoothing(label_smoothing, where)
    ignore_index = _checks.ignore_index(ignore_index, where)
    class_weights = _checks.class_weights(class_weights, where)
    focal_gamma = _checks.focal_gamma(focal_gamma, where)
    top_k = _checks.top_k(top_k, where)
    _pixels.check_reduction(reduction, where)
    if not IS_TENSORFLOW:
        if top_k is not None and top_k != 1.0:
            return _neutral_regions.mined_crossentropy(
                _neutral.pixel_categorical_crossentropy,
                y_true,
                y_pred,
                axis,
                class_weights,
                ignore_index,
                sample_weight,
                reduction,
                top_k,
                where,
                binary=False,
                from_logits=from_logits,
                label_smoothing=label_smoothing,
                focal_gamma=focal_gamma,
            )
        return _neutral.pixel_categorical_crossentropy(
            y_true,
            y_pred,
            axis,
            from_logits,
            label_smoothing,
            class_weights,
            ignore_index,
            sample_weight,
            reduction,
            focal_gamma,
            where,
        )

    scores, from_logits = scores_of(y_pred, from_logits, "Softmax", where)
    pixels = _pixels.Pixels(y_true, scores, axis, where, binary=False)
    num_classes = pixels.num_classes
    scores = pixels.flatten_scores(scores)
    if not from_logits:
        pixels.require_probabilities(scores)
    cw = class_weight_tensor(class_weights, num_classes, scores.dtype, where)

    if pixels.dense:
        labels, row_sum = pixels.dense_distributions(scores.dtype)
        weights = row_sum if cw is None else tf.einsum("pc,c->p", labels, cw)
        counted = row_sum > 0
        target = labels
        if label_smoothing:
            target = labels * (1.0 - label_smoothing) + label_smoothing / num_classes
        if focal_gamma:
            losses = -tf.reduce_sum(target * _focal_log_p(scores, from_logits, focal_gamma), -1)
        elif from_logits:
            losses = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=scores)
        else:
            losses = -tf.reduce_sum(target * _log_probabilities(scores), axis=-1)
    else:
        labels, valid = pixels.integer_labels(ignore_index)
        if from_logits and not label_smoothing:
            return sparse_cross_entropy_mean(
                pixels,
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=scores),
                labels,
                valid,
                cw,
                focal_gamma,
                top_k,
                sample_weight,
                reduction,
            )
        counted = valid
        weights = _integer_weights(labels, valid, cw, scores.dtype)
        if focal_gamma:
            log_p = _focal_log_p(scores, from_logits, focal_gamma)
        elif from_logits:
            log_p = tf.nn.log_softmax(scores, axis=-1)
        else:
            log_p = _log_probabilities(scores)
        losses = -tf.gather(log_p, labels[:, None], batch_dims=1)[:, 0]
        if label_smoothing:
            losses = (1.0 - label_smoothing) * losses - label_smoothing * tf.reduce_mean(
                log_p, axis=-1
            )
    weights = _mine(losses, counted, weights, top_k)
    return _pixels.reduce(pixels, losses, weights, sample_weight, reduction)


def sparse_cross_entropy_mean(
    pixels, cross_entropy, labels, valid, cw, focal_gamma, top_k, sample_weight, reduction
):
    """``pixel_categorical_crossentropy`` of an integer mask from the per-pixel ``-log p_y``.

    Args:
        pixels: The :class:`~sm_pixel_ce._pixels.Pixels` of the call.
        cross_entropy: ``-log p_y`` per pixel, ``(P,)``.
        labels, valid: As :meth:`~sm_pixel_ce._pixels.Pixels.integer_labels` returns them.
        cw: The ``(C,)`` class weights, or None.
        focal_gamma, top_k, sample_weight, reduction: As for
            :func:`pixel_categorical_crossentropy`.

    Returns:
        This replica's share of the loss (a scalar), or the per-pixel map for ``"none"``.
    """
    weights = _integer_weights(labels, valid, cw, cross_entropy.dtype)
    losses = cross_entropy
    if focal_gamma:
        # ℓ = (1 - p_y)^γ·ce with p_y = exp(-ce): per pixel, on the fused kernel's output.
        losses = losses * _focal_factor(-tf.math.expm1(-losses), focal_gamma)
    weights = _mine(losses, valid, weights, top_k)
    return _pixels.reduce(pixels, losses, weights, sample_weight, reduction)


def _integer_weights(labels, valid, cw, dtype):
    """Each pixel's weight: its class's (or 1), 0 where not valid; None for all 1."""
    if cw is not None:
        weights = tf.gather(cw, labels)
        if valid is not None:
            weights = tf.where(valid, weights, tf.zeros_like(weights))
        return weights
    return None if valid is None else tf.cast(valid, dtype)


@serializable
def pixel_binary_crossentropy(
    y_true,
    y_pred,
    axis=-1,
    from_logits=False,
    label_smoothing=0.0,
    ignore_index=None,
    sample_weight=None,
    reduction="sum_over_batch_size",
    focal_gamma=0.0,
    top_k=None,
):
    """Binary cross-entropy per class channel, averaged over channels and counted pixels.

    The baseline to compare ``pixel_cce`` with: each channel is an independent sigmoid.
    Per pixel ``ℓᵢ = mean_c -(y'_c log p_c + (1 - y'_c) log(1 - p_c))·(1 - p'_c)^γ`` with
    ``y' = (1 - s)·y + s/2`` and ``p'_c = y'_c p_c + (1 - y'_c)(1 - p_c)`` (torchvision's
    ``sigmoid_focal_loss`` without alpha; ``γ = 0`` is the plain BCE); reduced
    ``Σᵢ swᵢ·wᵢ·ℓᵢ / Σᵢ wᵢ`` where ``wᵢ`` is 0 for ignored pixels and 1 otherwise, over the
    hardest pixels only with ``top_k`` (as for :func:`pixel_categorical_crossentropy`). With
    neutral options this equals Keras's ``binary_crossentropy``.

    Args:
        y_true: Dense labels of ``y_pred``'s shape with values in [0, 1] (one-hot or
            multi-label), or an integer mask ``(N, H, W)`` / ``(N, H, W, 1)`` (one-hot encoded
            here; with a single channel, the mask's 1 is the foreground).
        y_pred: Sigmoid probabilities (or logits with ``from_logits=True``), ``(N, H, W, C)``.
        axis: Class axis of ``y_pred``. Defaults to -1.
        from_logits: Whether ``y_pred`` holds logits. Defaults to False.
        label_smoothing: ``s`` in [0, 1]. Defaults to 0.0.
        ignore_index: Label value whose pixels are not counted (in an integer mask, or in any
            channel of dense labels), or None. Defaults to None.
        sample_weight: Keras sample weights, ``(N,)`` or ``(N, H, W)``, or None. Defaults to None.
        reduction: As for :func:`pixel_categorical_crossentropy`. Defaults to "sum_over_batch_size".
        focal_gamma: ``γ >= 0``. Defaults to 0.0.
        top_k: Fraction in (0, 1] of the counted pixels kept (the hardest), or None for all.
            Defaults to None.

    Returns:
        A float32 scalar (or ``(N, H, W)`` for ``reduction="none"``).

    Example:
        >>> model = sm.Unet("resnet18", encoder_weights=None, classes=7, activation="sigmoid")
        >>> model.compile("adam", loss="pixel_bce")
    """
    where = "pixel_binary_crossentropy"
    label_smoothing = _checks.label_smoothing(label_smoothing, where)
    ignore_index = _checks.ignore_index(ignore_index, where)
    focal_gamma = _checks.focal_gamma(focal_gamma, where)
    top_k = _checks.top_k(top_k, where)
    _pixels.check_reduction(reduction, where)
    if not IS_TENSORFLOW:
        if top_k is not None and top_k != 1.0:
            return _neutral_regions.mined_crossentropy(
                _neutral.pixel_binary_crossentropy,
                y_true,
                y_pred,
                axis,
                None,
                ignore_index,
                sample_weight,
                reduction,
                top_k,
                where,
                binary=True,
                from_logits=from_logits,
                label_smoothing=label_smoothing,
                focal_gamma=focal_gamma,
            )
        return _neutral.pixel_binary_crossentropy(
            y_true,
            y_pred,
            axis,
            from_logits,
            label_smoothing,
            ignore_index,
            sample_weight,
            reduction,
            focal_gamma,
            where,
        )

    scores, from_logits = scores_of(y_pred, from_logits, "Sigmoid", where)
    pixels = _pixels.Pixels(y_true, scores, axis, where, binary=True)
    num_classes = pixels.num_classes
    scores = pixels.flatten_scores(scores)
    if not from_logits:
        pixels.require_probabilities(scores, activation="a sigmoid")

    if pixels.dense:
        labels = tf.cast(pixels.labels, scores.dtype)
        weights = None
        in_range = tf.logical_and(labels >= 0, labels <= 1)
        if ignore_index is not None:
            ignored = tf.reduce_any(tf.equal(labels, float(ignore_index)), axis=-1)
            weights = tf.cast(tf.logical_not(ignored), scores.dtype)
            in_range = tf.logical_or(in_range, ignored[:, None])
            labels = tf.where(ignored[:, None], tf.zeros_like(labels), labels)
        pixels.checks += _checks.data(
            tf.reduce_all(in_range),
            f"{where}: dense labels must lie in [0, 1]"
            + (f" (or equal ignore_index {ignore_index})" if ignore_index is not None else "")
            + ". (min, max of the labels)",
            tf.reduce_min(pixels.labels),
            tf.reduce_max(pixels.labels),
        )
    else:
        labels, valid = pixels.integer_labels(ignore_index, num_values=max(num_classes, 2))
        if num_classes == 1:
            labels = tf.cast(labels, scores.dtype)[:, None]
        else:
            labels = tf.one_hot(labels, num_classes, dtype=scores.dtype)
        weights = None if valid is None else tf.cast(valid, scores.dtype)
    if label_smoothing:
        labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=scores)
        if focal_gamma:
            # 1 - p'_c from the logits: exact for confident pixels, where 1 - sigmoid rounds to 0.
            miss = labels * tf.sigmoid(-scores) + (1.0 - labels) * tf.sigmoid(scores)
            losses = losses * _focal_factor(miss, focal_gamma)
    else:
        p = tf.clip_by_value(scores, _pixels.EPSILON, 1.0 - _pixels.EPSILON)
        losses = -(labels * tf.math.log(p) + (1.0 - labels) * tf.math.log(1.0 - p))
        if focal_gamma:
            miss = labels * (1.0 - p) + (1.0 - labels) * p
            losses = losses * _focal_factor(miss, focal_gamma)
    losses = tf.reduce_mean(losses, axis=-1)
    counted = None if weights is None else weights > 0
    weights = _mine(losses, counted, weights, top_k)
    return _pixels.reduce(pixels, losses, weights, sample_weight, reduction)


def _clipped_probabilities(probabilities):
    """Keras's treatment of probabilities: renormalise along classes, clip."""
    p = probabilities / tf.reduce_sum(probabilities, axis=-1, keepdims=True)
    return tf.clip_by_value(p, _pixels.EPSILON, 1.0 - _pixels.EPSILON)


def _log_probabilities(probabilities):
    return tf.math.log(_clipped_probabilities(probabilities))


# Smallest normal float32: (1 - p)^γ is evaluated at no less, so that its gradient
# γ(1 - p)^(γ-1) stays finite for γ < 1 where p rounds to 1.
_TINY = 1.1754944e-38


def _focal_factor(miss, gamma):
    """``(1 - p)^γ`` from ``miss = 1 - p``."""
    return tf.pow(tf.maximum(miss, _TINY), gamma)


def _focal_log_p(scores, from_logits, gamma):
    """``(1 - p_c)^γ·log p_c`` per class: from log-softmax for logits, else as Keras's focal loss
    does (renormalised, clipped probabilities)."""
    if from_logits:
        log_p = tf.nn.log_softmax(scores, axis=-1)
        return _focal_factor(-tf.math.expm1(log_p), gamma) * log_p
    p = _clipped_probabilities(scores)
    return _focal_factor(1.0 - p, gamma) * tf.math.log(p)


def _mine(losses, counted, weights, top_k):
    """The pixel weights with the pixels hard-pixel mining drops set to 0."""
    if top_k is None or top_k == 1.0:
        return weights
    kept = _pixels.hardest(losses, counted, top_k)
    if weights is None:
        return tf.cast(kept, losses.dtype)
    return tf.where(kept, weights, tf.zeros_like(weights))


@register("loss", "pixel_cce", "pixel_categorical_crossentropy")
class PixelCategoricalCrossentropy(_PixelLoss):
    """Categorical cross-entropy over every pixel; see :func:`pixel_categorical_crossentropy`.

    Args:
        axis: Class axis of the predictions (``1`` for channels_first). Defaults to -1.
        from_logits: Whether predictions are logits. Defaults to False.
        label_smoothing: Mix targets with the uniform 1/C, in [0, 1]. Defaults to 0.0.
        class_weights: One weight per class, or None. Defaults to None.
        ignore_index: Integer-mask value not counted, or None. Defaults to None.
        focal_gamma: Focal exponent ``γ >= 0`` (0: plain cross-entropy). Defaults to 0.0.
        top_k: Fraction in (0, 1] of the counted pixels kept, the hardest, or None for all.
            Defaults to None.
        reduction: ``"sum_over_batch_size"`` (weighted mean), ``"mean"``,
            ``"mean_with_sample_weight"``, ``"sum"`` or ``"none"``.
            Defaults to "sum_over_batch_size".
        name: Defaults to "pixel_categorical_crossentropy".

    Returns:
        Called as ``loss(y_true, y_pred, sample_weight=None)``: a float32 scalar.

    Example:
        >>> loss = PixelCategoricalCrossentropy(class_weights=[0.2] + [1.0] * 6, ignore_index=255)
        >>> model.compile("adam", loss=loss)   # or simply loss="pixel_cce"
        >>> hard = PixelCategoricalCrossentropy(focal_gamma=2.0, top_k=0.25, ignore_index=255)
    """

    _fn = staticmethod(pixel_categorical_crossentropy)

    def __init__(
        self,
        axis=-1,
        from_logits=False,
        label_smoothing=0.0,
        class_weights=None,
        ignore_index=None,
        focal_gamma=0.0,
        top_k=None,
        reduction="sum_over_batch_size",
        name="pixel_categorical_crossentropy",
    ):
        where = type(self).__name__
        super().__init__(reduction=reduction, name=name)
        self.axis = _checks.axis_argument(axis, where)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _checks.label_smoothing(label_smoothing, where)
        weights = _checks.class_weights(class_weights, where)
        self.class_weights = None if weights is None else list(weights)
        self.ignore_index = _checks.ignore_index(ignore_index, where)
        self.focal_gamma = _checks.focal_gamma(focal_gamma, where)
        self.top_k = _checks.top_k(top_k, where)

    def get_config(self):
        return {
            "axis": self.axis,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "class_weights": self.class_weights,
            "ignore_index": self.ignore_index,
            "focal_gamma": self.focal_gamma,
            "top_k": self.top_k,
            "reduction": self._pixel_reduction,
            "name": self.name,
        }


@register("loss", "pixel_bce", "pixel_binary_crossentropy")
class PixelBinaryCrossentropy(_PixelLoss):
    """Per-channel binary cross-entropy over every pixel; see :func:`pixel_binary_crossentropy`.

    Args:
        axis: Class axis of the predictions (``1`` for channels_first). Defaults to -1.
        from_logits: Whether predictions are logits. Defaults to False.
        label_smoothing: Mix targets with 1/2, in [0, 1]. Defaults to 0.0.
        ignore_index: Label value not counted, or None. Defaults to None.
        focal_gamma: Sigmoid focal exponent ``γ >= 0`` (0: plain BCE). Defaults to 0.0.
        top_k: Fraction in (0, 1] of the counted pixels kept, the hardest, or None for all.
            Defaults to None.
        reduction: As for :class:`PixelCategoricalCrossentropy`. Defaults to "sum_over_batch_size".
        name: Defaults to "pixel_binary_crossentropy".

    Returns:
        Called as ``loss(y_true, y_pred, sample_weight=None)``: a float32 scalar.

    Example:
        >>> model = sm.Unet("resnet18", encoder_weights=None, classes=7, activation="sigmoid")
        >>> model.compile("adam", loss=PixelBinaryCrossentropy(ignore_index=255))
    """

    _fn = staticmethod(pixel_binary_crossentropy)

    def __init__(
        self,
        axis=-1,
        from_logits=False,
        label_smoothing=0.0,
        ignore_index=None,
        focal_gamma=0.0,
        top_k=None,
        reduction="sum_over_batch_size",
        name="pixel_binary_crossentropy",
    ):
        where = type(self).__name__
        super().__init__(reduction=reduction, name=name)
        self.axis = _checks.axis_argument(axis, where)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _checks.label_smoothing(label_smoothing, where)
        self.ignore_index = _checks.ignore_index(ignore_index, where)
        self.focal_gamma = _checks.focal_gamma(focal_gamma, where)
        self.top_k = _checks.top_k(top_k, where)

    def get_config(self):
        return {
            "axis": self.axis,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "ignore_index": self.ignore_index,
            "focal_gamma": self.focal_gamma,
            "top_k": self.top_k,
            "reduction": self._pixel_reduction,
            "name": self.name,
        }


@register("loss", "pixel_focal", "pixel_categorical_focal_crossentropy")
class PixelCategoricalFocalCrossentropy(PixelCategoricalCrossentropy):
    """``PixelCategoricalCrossentropy`` with ``focal_gamma=2`` by default: ``"pixel_focal"``.

    Every option is :class:`PixelCategoricalCrossentropy`'s; only the defaults of
    ``focal_gamma`` and ``name`` differ. On probabilities it equals Keras's
    ``CategoricalFocalCrossentropy(alpha=1, gamma=2)``, with ``ignore_index``, class weights and
    the weighted mean of ``pixel_cce``.

    Example:
        >>> model.compile("adam", loss="pixel_focal")
        >>> model.compile("adam", loss=PixelCategoricalFocalCrossentropy(ignore_index=255))
    """

    def __init__(
        self,
        axis=-1,
        from_logits=False,
        label_smoothing=0.0,
        class_weights=None,
        ignore_index=None,
        focal_gamma=2.0,
        top_k=None,
        reduction="sum_over_batch_size",
        name="pixel_categorical_focal_crossentropy",
    ):
        super().__init__(
            axis=axis,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            class_weights=class_weights,
            ignore_index=ignore_index,
            focal_gamma=focal_gamma,
            top_k=top_k,
            reduction=reduction,
            name=name,
        )
