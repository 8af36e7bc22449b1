"""The backend-neutral path (``keras.ops``) of the region losses (Dice, Jaccard, Tversky, Lovász)
and of hard-pixel mining (``top_k``), taken when Keras runs on a backend other than TensorFlow
(``KERAS_BACKEND=jax``). The TensorFlow path stays in ``losses._functional`` and ``_pixels``.

It computes what the TensorFlow path computes, on :class:`~sm_pixel_ce._pixels.Pixels` (the same
flattening, checks and error texts; data checks inside ``jit`` run on the host).
What the backend changes:

* **Plain autodiff.** The softmax of ``from_logits`` and the Lovász sort are differentiated by
  the backend: the same gradients as the TensorFlow path's written-out ones (the sort's
  subgradient ``J_k - J_(k-1)`` at the pixel of rank ``k``, ties in pixel order).
* **Sorts, not radix or bit searches.** The Lovász errors and the ``top_k`` losses are ordered by
  a stable ``ops.argsort`` (earlier pixels first among equal values, as on TensorFlow).
* **No replica context.** Keras's JAX distribution computes the loss on the global batch, so
  every sum, count and sort is global already (no all-gather).
"""

import numpy as np
from keras import ops

from . import _checks, _pixels


def by_image(options):
    """Whether a region loss computes each image's own loss: with ``per_image``, and for
    ``reduction="none"`` (each image's loss, whatever ``per_image``). Both backends ask here."""
    return bool(options["per_image"]) or options.get("reduction", "mean") in ("none", None)


class RegionInputs:
    """Labels, predictions and pixel weights of a region loss grouped ``(G, n, ...)``, as
    ``losses._functional.RegionInputs``: one group per image (:func:`by_image`), else one.

    It takes the arguments of ``losses._functional.RegionInputs``.

    Attributes:
        pixels: The :class:`~sm_pixel_ce._pixels.Pixels` (its checks go on the loss).
        scores: ``(G, n, C)`` float32 logits (``from_logits``) or probabilities.
        from_logits, dense: As given / whether the labels are dense.
        labels: ``(G, n)`` int32 classes (ignored pixels 0), or ``(G, n, C)`` float32 labels.
        weights: ``(G, n)`` float32 pixel weights (0: not counted), or None for all 1.
        groups: G, an int.
        images: N, an int.
        image_weights: ``(N,)`` each image's sample weight (the mean over its pixels), or None.
    """

    def __init__(self, y_true, y_pred, options, sample_weight, where):
        pixels = _pixels.flat_predictions(
            y_true, y_pred, options["axis"], options["from_logits"], where, False, "float32"
        )
        from_logits = pixels.from_logits
        num_classes = pixels.num_classes
        if pixels.dense:
            labels, row_sum = pixels.dense_distributions()
            valid = row_sum > 0
        else:
            labels, valid = pixels.integer_labels(options["ignore_index"])
        weights = None if valid is None else ops.cast(valid, "float32")
        spatial = pixels.spatial_shape
        self.images, self.image_weights = int(spatial[0]), None
        if sample_weight is not None:
            sw = ops.cast(pixels.pixel_sample_weight(sample_weight), "float32")
            weights = sw if weights is None else weights * sw
            self.image_weights = ops.mean(ops.reshape(sw, (self.images, -1)), axis=1)
        self.groups = self.images if by_image(options) else 1
        shape = (self.groups, -1)
        self.pixels, self.from_logits, self.dense = pixels, from_logits, pixels.dense
        self.num_classes = num_classes
        self.scores = ops.reshape(pixels.scores, shape + (num_classes,))
        self.labels = ops.reshape(labels, shape + ((num_classes,) if pixels.dense else ()))
        self.weights = None if weights is None else ops.reshape(weights, shape)

    def probabilities(self):
        return ops.softmax(self.scores, axis=-1) if self.from_logits else self.scores

    def checked(self, value):
        """``value`` with the data checks (and that it is finite) run, or staged in ``jit``."""
        return self.pixels.checked(value, ops.all(ops.isfinite(value)))


def region_loss(y_true, y_pred, sample_weight, options, where, tversky):
    """``losses._functional.region_loss`` on ``keras.ops``: the Tversky loss (Dice, Jaccard) with
    ``tversky = (α, β, γ)`` and the loss's checked ``options``.

    Returns:
        A float32 scalar (``(N,)`` for ``reduction="none"``).
    """
    inputs = RegionInputs(y_true, y_pred, options, sample_weight, where)
    num_classes = inputs.num_classes
    check_overlap_class_weights(num_classes, options["classes"], options["class_weights"], where)
    weights = inputs.weights
    p = inputs.probabilities()
    if inputs.dense:
        y = inputs.labels
        if weights is not None:
            p, y = p * weights[..., None], y * weights[..., None]
        s_p, s_y = ops.sum(p, axis=1), ops.sum(y, axis=1)
        tp = (s_p + s_y - ops.sum(ops.abs(p - y), axis=1)) / 2
    else:
        hit = ops.one_hot(inputs.labels, num_classes, dtype="float32")
        if weights is not None:
            p = p * weights[..., None]
        y = hit if weights is None else hit * weights[..., None]
        s_p, s_y, tp = ops.sum(p, axis=1), ops.sum(y, axis=1), ops.sum(p * hit, axis=1)
    loss = _overlap_loss(s_p, s_y, tp, tversky, options, num_classes)
    return inputs.checked(reduce_images(loss, inputs, options))


def check_overlap_class_weights(num_classes, classes, class_weights, where):
    """Check ``classes`` against the predictions' classes, and the class weights: one per class,
    not all zero over ``classes`` (the checks of both backends)."""
    _checks.classes_in_range(classes, num_classes, where)
    if class_weights is None:
        return
    _checks.one_weight_per_class(class_weights, num_classes, where)
    if classes is not None and not np.any(np.take(class_weights, classes)):
        raise ValueError(
            f"{where}: the `class_weights` of the chosen `classes` are all zero, so no class "
            f"would count. Received: classes={classes}, class_weights={list(class_weights)}"
        )


def _overlap_loss(s_p, s_y, tp, tversky, options, num_classes):
    """``losses._functional.overlap_loss`` from the per-class sums, each ``(G, C)``: the loss of
    each group, ``(G,)``."""
    alpha, beta, gamma = tversky
    smooth, eps, classes = options["smooth"], options["eps"], options["classes"]
    class_weights = options["class_weights"]
    fp, fn = s_p - tp, s_y - tp
    score = (tp + smooth) / ops.maximum(tp + alpha * fp + beta * fn + smooth, eps)
    losses = -ops.log(ops.maximum(score, eps)) if options["log_loss"] else 1.0 - score
    present = ops.cast(s_y > 0, losses.dtype)
    losses = losses * present
    weights = np.ones(num_classes, np.float32)
    if class_weights is not None:
        weights = np.asarray(class_weights, np.float32)
    if classes is not None:
        losses, present = ops.take(losses, classes, axis=-1), ops.take(present, classes, axis=-1)
        weights = weights[list(classes)]
    weights = ops.convert_to_tensor(weights)
    if options["absent_classes"] == "skip":
        weights = weights * present
        loss = ops.divide_no_nan(ops.sum(losses * weights, -1), ops.sum(weights, -1))
    elif class_weights is None:
        loss = ops.mean(losses, axis=-1)
    else:
        loss = ops.sum(losses * weights, -1) / ops.sum(weights)
    if gamma != 1.0:
        loss = ops.power(ops.maximum(loss, _pixels.TINY), gamma)
    return loss


def reduce_images(loss, inputs, options):
    """``losses._functional.reduce_images`` on one device (or the global batch): the region
    loss under its ``reduction`` from ``loss`` ``(G,)``, each image's or the batch's."""
    reduction, weights = options["reduction"], inputs.image_weights
    if reduction in ("none", None):
        return loss if weights is None else loss * weights
    if reduction in ("sum_over_batch_size", "mean") or (
        weights is None and reduction == "mean_with_sample_weight"
    ):
        return ops.mean(loss)  # per_image's mean, or the batch's one value
    if options["per_image"]:
        total = ops.sum(loss if weights is None else loss * weights)
        if reduction == "sum":
            return total
        return ops.divide_no_nan(total, ops.sum(weights))
    if reduction == "sum":
        return loss[0] * (inputs.images if weights is None else ops.sum(weights))
    return loss[0]


def lovasz_loss(y_true, y_pred, options, where):
    """``losses._functional.lovasz_loss`` on ``keras.ops``, with the loss's checked ``options``.

    Per ``(group, class)`` row the errors are sorted in decreasing order (a stable argsort, the
    pixels that do not count last); the loss and its gradient are the TensorFlow path's.

    Returns:
        A float32 scalar (``(N,)`` for ``reduction="none"``).
    """
    inputs = RegionInputs(y_true, y_pred, options, None, where)
    num_classes, classes = inputs.num_classes, options["classes"]
    _checks.classes_in_range(classes, num_classes, where)
    p = inputs.probabilities()
    hard = not inputs.dense
    y = ops.one_hot(inputs.labels, num_classes, dtype="int32") if hard else inputs.labels
    valid = None if inputs.weights is None else inputs.weights > 0
    if valid is not None:
        y = y * ops.cast(valid[..., None], y.dtype)
    errors = ops.abs(ops.cast(y, p.dtype) - p)
    # One row per (group, class): (G·C, n).
    rows = ops.reshape(ops.transpose(errors, (0, 2, 1)), (inputs.groups * num_classes, -1))
    labels = ops.reshape(ops.transpose(y, (0, 2, 1)), (inputs.groups * num_classes, -1))
    keys = -rows
    if valid is not None:
        valid = ops.reshape(ops.repeat(valid[:, None, :], num_classes, axis=1), ops.shape(rows))
        keys = ops.where(valid, keys, np.inf)  # not counted: after every error
    order = ops.stop_gradient(ops.argsort(keys, axis=-1))
    e = ops.take_along_axis(rows, order, axis=-1)
    y = ops.take_along_axis(labels, order, axis=-1)
    if valid is None:
        ones = ops.ones_like(y)
    else:
        counted = ops.take_along_axis(valid, order, axis=-1)
        e = ops.where(counted, e, 0.0)
        ones = ops.cast(counted, y.dtype)
    label_sum = ops.sum(y, axis=-1, keepdims=True)
    inside = label_sum - ops.cumsum(y, axis=-1)
    union = label_sum + ops.cumsum(ones - y, axis=-1)  # int32 for masks: exact counts
    jaccard = 1.0 - ops.divide_no_nan(ops.cast(inside, "float32"), ops.cast(union, "float32"))
    following = ops.pad(e[:, 1:], ((0, 0), (0, 1)))
    losses = ops.reshape(ops.sum((e - following) * jaccard, axis=-1), (-1, num_classes))
    if classes == "present":
        present = ops.cast(ops.reshape(label_sum, (-1, num_classes)) > 0, losses.dtype)
        loss = ops.divide_no_nan(ops.sum(losses * present, -1), ops.sum(present, -1))
    elif classes == "all":
        loss = ops.mean(losses, axis=-1)
    else:
        loss = ops.mean(ops.take(losses, classes, axis=-1), axis=-1)
    return inputs.checked(reduce_images(loss, inputs, options))
