"""The shared math of the region losses, once on ``keras.ops`` for every backend, on the
``(pixels, classes)`` of ``_pixels``.

* :func:`region_loss`: per-class sums of predictions, labels and their overlap, then
  segmentation_models_pytorch's ``soft_tversky_score`` (Dice: α = β = ½, Jaccard: α = β = 1).
* :func:`lovasz_loss`: the Lovász extension of the Jaccard loss (Berman et al. 2018), one sort of
  the errors per class (per image and class with ``per_image``).

Both are global under ``tf.distribute``: the per-class sums are summed over the replicas, and the
Lovász sort runs over the errors of every replica (gathered), so that the replicas' shares add up
to the loss of the whole batch on one device, and so do their gradients. :func:`reduce_images`
applies the loss's ``reduction`` over the images. The per-class sums and the sort are backend
hooks (``_backend``: TensorFlow's are faster kernels of the same math).
"""

import numpy as np
from keras import ops

from .. import _checks, _pixels
from .._backend import hooks


def by_image(options):
    """Whether a region loss computes each image's own loss: with ``per_image``, and for
    ``reduction="none"`` (each image's loss, whatever ``per_image``)."""
    return bool(options["per_image"]) or options.get("reduction", "mean") in ("none", None)


class RegionInputs:
    """Labels, predictions and pixel weights of a region loss, grouped ``(G, n, ...)``: one group
    per image with ``per_image`` (or ``reduction="none"``), else one group of every pixel.

    Args:
        y_true, y_pred, sample_weight: The loss's arguments.
        options: The loss's checked options (``axis``, ``from_logits``, ``ignore_index``,
            ``per_image`` and ``reduction`` are read).
        where: The loss's name, for errors.
        logits: Whether a ``pixel_softmax`` output is replaced by the logits behind it (False: it
            is used as the probabilities it is; ``hooks.REGION_LOGITS`` for the region losses).
            Defaults to True.

    Attributes:
        pixels: The :class:`~sm_pixel_ce._pixels.Pixels` (its checks go on the loss).
        scores: ``(G, n, C)`` float32 logits (``from_logits``) or probabilities.
        from_logits: Whether ``scores`` are logits.
        dense: Whether ``labels`` are dense.
        labels: ``(G, n)`` int32 classes (ignored pixels 0), or ``(G, n, C)`` float labels.
        weights: ``(G, n)`` float pixel weights (0: not counted), or None for all 1.
        flat_labels, flat_valid: The labels ``(P,)`` / ``(P, C)`` and the bool ``(P,)`` of the
            counted pixels (None: all), ungrouped.
        groups: G, an int or a scalar tensor (the images of this replica with ``per_image``).
        images: N, this replica's images, an int or a scalar tensor.
        image_weights: ``(N,)`` each image's sample weight (the mean over its pixels of
            ``sample_weight``), or None without sample weights.
        per_image: The pixels of an image, an int or a scalar tensor.
    """

    def __init__(self, y_true, y_pred, options, sample_weight, where, logits=True):
        pixels = _pixels.flat_predictions(
            y_true,
            y_pred,
            options["axis"],
            options["from_logits"],
            where,
            False,
            "float32",
            logits,
        )
        num_classes = pixels.num_classes
        if pixels.dense:
            labels, row_sum = pixels.dense_distributions()
            valid = row_sum > 0
        else:
            labels, valid = pixels.integer_labels(options["ignore_index"])
        weights = None if valid is None else ops.cast(valid, "float32")
        images, per_image = pixels.images()
        self.images, self.per_image, self.image_weights = images, per_image, None
        if sample_weight is not None:
            sw = ops.cast(pixels.pixel_sample_weight(sample_weight), "float32")
            weights = sw if weights is None else weights * sw
            self.image_weights = ops.mean(ops.reshape(sw, (images, per_image)), axis=1)
        if by_image(options):
            self.groups, shape = images, (images, per_image)
        else:
            self.groups, shape = 1, (1, -1)
        self.pixels, self.from_logits, self.dense = pixels, pixels.from_logits, pixels.dense
        self.num_classes = num_classes
        self.scores = ops.reshape(pixels.scores, shape + (num_classes,))
        self.labels = ops.reshape(labels, shape + ((num_classes,) if pixels.dense else ()))
        self.weights = None if weights is None else ops.reshape(weights, shape)
        self.flat_labels, self.flat_valid = labels, valid

    def probabilities(self):
        return ops.softmax(self.scores, axis=-1) if self.from_logits else self.scores

    def checked(self, value):
        """``value`` with the data checks attached (and the check that it is finite)."""
        return self.pixels.checked(value, ops.all(ops.isfinite(value)))


def region_loss(y_true, y_pred, sample_weight, options, where, tversky):
    """segmentation_models_pytorch's multiclass Tversky loss (Dice, Jaccard) on ``inputs``.

    Per class ``c`` over the counted pixels (weights ``m``): ``Σp = Σ m·p_c``, ``Σy = Σ m·y_c``,
    ``TP = (Σp + Σy - Σ m·|p_c - y_c|) / 2`` (``Σ m·p_c·[y = c]`` for integer masks),
    ``FP = Σp - TP``, ``FN = Σy - TP``; ``score = (TP + smooth) / max(TP + α·FP + β·FN + smooth,
    eps)``; ``ℓ_c = 1 - score`` (``-log max(score, eps)`` with ``log_loss``), 0 for a class absent
    from the labels (``Σy = 0``). The loss is ``(Σ_c w_c ℓ_c / Σ_c w_c)^γ`` over ``classes``
    (with ``absent_classes="skip"`` over those present only); with ``per_image`` that of each
    image, then the mean over the images (other reductions: :func:`reduce_images`).

    Args:
        y_true, y_pred, sample_weight: The loss's arguments.
        tversky: ``(α, β, γ)``.
        options: The loss's checked options.
        where: The loss's name, for errors.

    Returns:
        This replica's share of the loss, a float32 scalar (``(N,)`` for ``"none"``).
    """
    inputs = RegionInputs(y_true, y_pred, options, sample_weight, where, hooks.REGION_LOGITS)
    cw = overlap_class_weights(
        inputs.num_classes, options["classes"], options["class_weights"], where
    )
    return inputs.checked(overlap_loss(inputs, hooks.class_sums(inputs), tversky, options, cw))


def overlap_class_weights(num_classes, classes, class_weights, where):
    """The ``(C,)`` class weights tensor (None for all 1), ``classes`` checked against the
    predictions' classes."""
    check_overlap_class_weights(num_classes, classes, class_weights, where)
    return _pixels.class_weight_tensor(class_weights, num_classes, "float32", where)


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


def overlap_loss(inputs, sums, tversky, options, cw):
    """This replica's share of :func:`region_loss` from the per-class ``sums`` ``(Σp, Σy, TP)``,
    each ``(G, C)``, and the class weights tensor ``cw`` (or None)."""
    alpha, beta, gamma = tversky
    smooth, eps, classes = options["smooth"], options["eps"], options["classes"]
    s_p, s_y, tp = sums
    if not by_image(options):
        s_p, s_y, tp = (hooks.global_sums(s) for s in (s_p, s_y, tp))
    fp, fn = s_p - tp, s_y - tp
    score = (tp + smooth) / ops.maximum(tp + alpha * fp + beta * fn + smooth, eps)
    losses = -ops.log(ops.maximum(score, eps)) if options["log_loss"] else 1.0 - score
    present = ops.cast(s_y > 0, losses.dtype)
    losses = losses * present
    weights = ops.ones((inputs.num_classes,), "float32") if cw is None else cw
    if classes is not None:
        losses, present = ops.take(losses, classes, axis=-1), ops.take(present, classes, axis=-1)
        weights = ops.take(weights, classes)
    if options["absent_classes"] == "skip":
        weights = weights * present
        loss = ops.divide_no_nan(ops.sum(losses * weights, -1), ops.sum(weights, -1))
    elif cw is None:
        loss = ops.mean(losses, axis=-1)
    else:
        loss = ops.einsum("gc,c->g", losses, weights) / ops.sum(weights)
    if gamma != 1.0:
        loss = ops.power(ops.maximum(loss, _pixels.TINY), gamma)
    return reduce_images(loss, inputs, options)


def reduce_images(loss, inputs, options):
    """This replica's share of a region loss under its ``reduction``, from ``loss`` ``(G,)``: each
    image's own loss (:func:`by_image`), or the batch's one value (of global sums).

    With ``v_n`` the loss of image ``n`` (``per_image``) or of the batch (else: every image
    carries it) and ``W_n`` the image's sample weight (``inputs.image_weights``, 1 without):

    * ``"sum_over_batch_size"``/``"mean"``: ``mean_n v_n`` (the sample weights weight pixels in
      the sums only, as they always have);
    * ``"sum"``: ``Σ_n W_n·v_n`` (``N`` times the default without sample weights);
    * ``"mean_with_sample_weight"``: ``Σ_n W_n·v_n / Σ_n W_n`` (the default without them);
    * ``"none"``: ``W_n·ℓ_n``, each image's own loss, ``(N,)`` (this replica's images).

    Under ``tf.distribute`` ``N`` and ``Σ W_n`` are the global batch's, and the replicas' shares
    add up to the value on one device.
    """
    reduction, weights = options["reduction"], inputs.image_weights
    if reduction in ("none", None):
        return loss if weights is None else loss * weights
    mean = reduction in ("sum_over_batch_size", "mean")
    if options["per_image"]:
        if mean or weights is None:
            total = ops.sum(loss)
            if reduction == "sum":
                return total
            count = ops.cast(inputs.groups, loss.dtype)
        else:
            total = ops.sum(loss * weights)
            if reduction == "sum":
                return total
            count = ops.sum(weights)
        return ops.divide_no_nan(total, hooks.global_sum(count))
    share = loss[0] / float(hooks.replicas())
    if reduction != "sum":
        return share
    count = ops.cast(inputs.images, loss.dtype) if weights is None else ops.sum(weights)
    return share * hooks.global_sum(count)


def lovasz_loss(y_true, y_pred, options, where):
    """segmentation_models_pytorch's ``_lovasz_softmax`` on ``inputs``.

    Per class ``c`` over the counted pixels: errors ``e = |y_c - p_c|`` sorted in decreasing
    order; ``J_k = 1 - (G - F_k) / (G + B_k)`` with ``G = Σ y_c``, ``F_k``/``B_k`` the labels
    ``y_c`` / ``1 - y_c`` summed over the first k; ``ℓ_c = Σ_k e_(k)·(J_k - J_(k-1))``
    (evaluated as ``Σ_k (e_(k) - e_(k+1))·J_k``, which keeps float32 accurate). The loss is
    the mean of ``ℓ_c`` over ``classes``: the classes present in the labels (``"present"``),
    all, or a list; 0 without counted pixels. With ``per_image``, that of each image, then the
    mean over the images (other reductions: :func:`reduce_images`).

    Returns:
        This replica's share of the loss, a float32 scalar (``(N,)`` for ``"none"``).
    """
    inputs = RegionInputs(y_true, y_pred, options, None, where)
    num_classes, classes = inputs.num_classes, options["classes"]
    _checks.classes_in_range(classes, num_classes, where)
    p = inputs.probabilities()
    y = inputs.labels if inputs.dense else ops.one_hot(inputs.labels, num_classes, dtype="int32")
    valid = None if inputs.weights is None else inputs.weights > 0
    if valid is not None:
        y = y * ops.cast(valid[..., None], y.dtype)
    errors = ops.abs(ops.cast(y, p.dtype) - p)
    # One row per (group, class): (G·C, n), the row count static where G is (the sort uses it).
    if isinstance(inputs.groups, int):
        shape = (inputs.groups * num_classes, -1)
    else:
        shape = (-1, ops.shape(errors)[1])
    rows = ops.reshape(ops.transpose(errors, (0, 2, 1)), shape)
    labels = ops.reshape(ops.transpose(y, (0, 2, 1)), shape)
    if valid is not None:
        valid = ops.reshape(ops.repeat(valid[:, None, :], num_classes, axis=1), shape)
    gather = not by_image(options)
    losses, label_sums = hooks.lovasz_rows(
        rows, labels, valid, not inputs.dense, gather, lovasz_extension
    )
    losses = ops.reshape(losses, (-1, num_classes))
    if classes == "present":
        present = ops.cast(ops.reshape(label_sums, (-1, num_classes)) > 0, losses.dtype)
        loss = ops.divide_no_nan(ops.sum(losses * present, -1), ops.sum(present, -1))
    elif classes == "all":
        loss = ops.mean(losses, axis=-1)
    else:
        loss = ops.mean(ops.take(losses, classes, axis=-1), axis=-1)
    return inputs.checked(reduce_images(loss, inputs, options))


def lovasz_extension(e, y, ones):
    """``(ℓ, Σ y, J)`` of rows of errors ``e`` sorted in decreasing order (0 past the counted
    pixels), their labels ``y`` and ``ones`` (1 where counted; int32 for masks: exact counts)."""
    label_sum = ops.sum(y, axis=-1, keepdims=True)
    inside = label_sum - ops.cumsum(y, axis=-1)
    union = label_sum + ops.cumsum(ones - y, axis=-1)
    jaccard = 1.0 - ops.divide_no_nan(ops.cast(inside, "float32"), ops.cast(union, "float32"))
    following = ops.pad(e[:, 1:], ((0, 0), (0, 1)))
    losses = ops.sum((e - following) * jaccard, axis=-1)
    return losses, ops.cast(label_sum[:, 0], "float32"), jaccard
