"""The shared math of the region losses, on the ``(pixels, classes)`` of ``_pixels``.

* :func:`tversky_loss`: per-class sums of predictions, labels and their overlap, then
  segmentation_models_pytorch's ``soft_tversky_score`` (Dice: α = β = ½, Jaccard: α = β = 1).
* :func:`lovasz_loss`: the Lovász extension of the Jaccard loss (Berman et al. 2018), one sort of
  the errors per class (per image and class with ``per_image``).

Both are global under ``tf.distribute``: the per-class sums are summed over the replicas, and the
Lovász sort runs over the errors of every replica (gathered), so that the replicas' shares add up
to the loss of the whole batch on one device, and so do their gradients. :func:`reduce_images`
applies the loss's ``reduction`` over the images. On another Keras backend (JAX)
:func:`region_loss` and the Lovász loss hand over to ``_neutral_regions``.
"""

import tensorflow as tf

from .. import _checks, _neutral_regions, _pixels
from .._backend import hooks
from ..flavor import IS_TENSORFLOW

try:  # TensorFlow's own XLA operations: the single-operand sort.
    from tensorflow.compiler.tf2xla.python import xla as _xla
except ImportError:  # another TensorFlow layout: tf.sort under XLA (slower, same values)
    _xla = None

# Column sums take this many pixels side by side on the minor axis: XLA on CPU reduces a short
# minor axis (7 classes) slowly, 56 lanes fast.
_LANES = 8
# The bits of 2.0 as an int32. Errors |y - p| lie in [0, 2) (probabilities may pass 1 by the
# tolerance), where a float orders as its bits: ``_ERROR_BOUND - bits`` sorts them descending.
_ERROR_BOUND = 0x40000000
# Radix digits of the 31-bit inverted error (LSD first), and of the row index.
_ERROR_DIGITS = (10, 10, 11)
_ROW_DIGIT = 11
_MAX_ROW_BITS = 2 * _ROW_DIGIT
_MAX_ELEMENTS = 2**31 - 1


class RegionInputs:
    """Labels, predictions and pixel weights of a region loss, grouped ``(G, n, ...)``: one group
    per image with ``per_image`` (or ``reduction="none"``), else one group of every pixel.

    Args:
        y_true, y_pred, sample_weight: The loss's arguments.
        options: The loss's checked options (``axis``, ``from_logits``, ``ignore_index``,
            ``per_image`` and ``reduction`` are read).
        where: The loss's name, for errors.

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
        lanes: Whether ``n`` is a multiple of ``_LANES`` (the fast column sums).
    """

    def __init__(self, y_true, y_pred, options, sample_weight, where):
        pixels = _pixels.flat_predictions(
            y_true, y_pred, options["axis"], options["from_logits"], where, False, "float32"
        )
        scores, from_logits = pixels.scores, pixels.from_logits
        num_classes = pixels.num_classes
        if pixels.dense:
            labels, row_sum = pixels.dense_distributions()
            valid = row_sum > 0
        else:
            labels, valid = pixels.integer_labels(options["ignore_index"])
        weights = None if valid is None else tf.cast(valid, scores.dtype)
        images, per_image_pixels = pixels.images()
        self.images, self.image_weights = images, None
        if sample_weight is not None:
            sw = tf.cast(pixels.pixel_sample_weight(sample_weight), scores.dtype)
            weights = sw if weights is None else weights * sw
            self.image_weights = tf.reduce_mean(tf.reshape(sw, [images, per_image_pixels]), 1)
        self.lanes = isinstance(per_image_pixels, int) and per_image_pixels % _LANES == 0
        if _neutral_regions.by_image(options):
            self.groups, shape = images, [images, per_image_pixels]
        else:
            self.groups, shape = 1, [1, -1]
        self.pixels, self.from_logits, self.dense = pixels, from_logits, pixels.dense
        self.scores = tf.reshape(scores, shape + [num_classes])
        self.labels = tf.reshape(labels, shape + ([num_classes] if pixels.dense else []))
        self.weights = None if weights is None else tf.reshape(weights, shape)
        self.flat_labels, self.flat_valid = labels, valid

    @property
    def num_classes(self):
        return self.pixels.num_classes

    def probabilities(self):
        return tf.nn.softmax(self.scores) if self.from_logits else self.scores

    def checked(self, value):
        """``value`` with the data checks attached (and the check that it is finite)."""
        return self.pixels.checked(value, tf.reduce_all(tf.math.is_finite(value)))


def tversky_loss(inputs, tversky, options, where):
    """segmentation_models_pytorch's multiclass Tversky loss (Dice, Jaccard) on ``inputs``.

    Per class ``c`` over the counted pixels (weights ``m``): ``Σp = Σ m·p_c``, ``Σy = Σ m·y_c``,
    ``TP = (Σp + Σy - Σ m·|p_c - y_c|) / 2`` (``Σ m·p_c·[y = c]`` for integer masks),
    ``FP = Σp - TP``, ``FN = Σy - TP``; ``score = (TP + smooth) / max(TP + α·FP + β·FN + smooth,
    eps)``; ``ℓ_c = 1 - score`` (``-log max(score, eps)`` with ``log_loss``), 0 for a class absent
    from the labels (``Σy = 0``). The loss is ``(Σ_c w_c ℓ_c / Σ_c w_c)^γ`` over ``classes``
    (with ``absent_classes="skip"`` over those present only); with ``per_image`` that of each
    image, then the mean over the images (other reductions: :func:`reduce_images`).

    Args:
        inputs: The :class:`RegionInputs`.
        tversky: ``(α, β, γ)``.
        options: The loss's checked options.
        where: The loss's name, for errors.

    Returns:
        This replica's share of the loss, a float32 scalar (``(N,)`` for ``"none"``).
    """
    cw = overlap_class_weights(
        inputs.num_classes, options["classes"], options["class_weights"], where
    )
    return inputs.checked(overlap_loss(inputs, _class_sums(inputs), tversky, options, cw))


def overlap_class_weights(num_classes, classes, class_weights, where):
    """The ``(C,)`` class weights tensor (None for all 1), ``classes`` checked against the
    predictions' classes."""
    _neutral_regions.check_overlap_class_weights(num_classes, classes, class_weights, where)
    return _pixels.class_weight_tensor(class_weights, num_classes, tf.float32, where)


def overlap_loss(inputs, sums, tversky, options, cw):
    """This replica's share of :func:`tversky_loss` from the per-class ``sums`` ``(Σp, Σy, TP)``,
    each ``(G, C)``, and the class weights tensor ``cw`` (or None)."""
    alpha, beta, gamma = tversky
    smooth, eps, classes = options["smooth"], options["eps"], options["classes"]
    s_p, s_y, tp = sums
    if not _neutral_regions.by_image(options):
        s_p, s_y, tp = (hooks.global_sums(s) for s in (s_p, s_y, tp))
    fp, fn = s_p - tp, s_y - tp
    score = (tp + smooth) / tf.maximum(tp + alpha * fp + beta * fn + smooth, eps)
    losses = -tf.math.log(tf.maximum(score, eps)) if options["log_loss"] else 1.0 - score
    present = tf.cast(s_y > 0, losses.dtype)
    losses = losses * present
    weights = tf.ones([inputs.num_classes]) if cw is None else cw
    if classes is not None:
        losses, present = tf.gather(losses, classes, axis=-1), tf.gather(present, classes, axis=-1)
        weights = tf.gather(weights, classes)
    if options["absent_classes"] == "skip":
        weights = weights * present
        loss = tf.math.divide_no_nan(
            tf.reduce_sum(losses * weights, -1), tf.reduce_sum(weights, -1)
        )
    elif cw is None:
        loss = tf.reduce_mean(losses, axis=-1)
    else:
        loss = tf.einsum("gc,c->g", losses, weights) / tf.reduce_sum(weights)
    if gamma != 1.0:
        loss = tf.pow(tf.maximum(loss, _pixels.TINY), gamma)
    return reduce_images(loss, inputs, options)


def reduce_images(loss, inputs, options):
    """This replica's share of a region loss under its ``reduction``, from ``loss`` ``(G,)``: each
    image's own loss (``_neutral_regions.by_image``), or the batch's one value (of global sums).

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
            total = tf.reduce_sum(loss)
            if reduction == "sum":
                return total
            return tf.math.divide_no_nan(
                total, hooks.global_sum(tf.cast(inputs.groups, loss.dtype))
            )
        total = tf.reduce_sum(loss * weights)
        if reduction == "sum":
            return total
        return tf.math.divide_no_nan(total, hooks.global_sum(tf.reduce_sum(weights)))
    share = loss[0] / tf.cast(hooks.replicas(), loss.dtype)
    if reduction != "sum":
        return share
    count = tf.cast(inputs.images, loss.dtype) if weights is None else tf.reduce_sum(weights)
    return share * hooks.global_sum(count)


def _class_sums(inputs):
    """``(Σp, Σy, TP)``, each ``(G, C)``: see :func:`tversky_loss`."""
    weights, lanes, num_classes = inputs.weights, inputs.lanes, inputs.num_classes
    if inputs.dense:
        p = inputs.probabilities()
        y = inputs.labels
        if weights is not None:
            p, y = p * weights[..., None], y * weights[..., None]
        s_p, s_y = _column_sums(p, lanes), _column_sums(y, lanes)
        return s_p, s_y, (s_p + s_y - _column_sums(tf.abs(p - y), lanes)) / 2
    hit = tf.equal(inputs.labels[..., None], tf.range(num_classes))
    s_y = label_sums(inputs.labels, weights, num_classes)
    if inputs.from_logits:
        s_p, tp, _ = softmax_statistics(inputs.scores, hit, weights, lanes)
    else:
        p = inputs.scores if weights is None else inputs.scores * weights[..., None]
        s_p, tp = _column_sums(p, lanes), _column_sums(tf.where(hit, p, 0.0), lanes)
    return s_p, s_y, tp


def label_sums(labels, weights, num_classes):
    """``Σ m·[y = c]`` per group and class, ``(G, C)``, from the ``(G, n)`` mask: a segment sum,
    which under XLA costs a third of summing a ``(G, n, C)`` one-hot (written out first)."""
    groups = tf.shape(labels)[0]
    segments = labels + num_classes * tf.range(groups)[:, None]
    ones = tf.ones_like(labels, tf.float32) if weights is None else weights
    sums = tf.math.unsorted_segment_sum(
        tf.reshape(ones, [-1]), tf.reshape(segments, [-1]), groups * num_classes
    )
    return tf.reshape(sums, [groups, num_classes])


def _column_sums(x, lanes):
    """``Σ`` over the pixels of ``(G, n, C)``: ``(G, C)``."""
    if not lanes:
        return tf.reduce_sum(x, axis=1)
    classes = x.shape[-1]
    wide = tf.reshape(x, [tf.shape(x)[0], -1, _LANES * classes])
    return tf.reduce_sum(tf.reshape(tf.reduce_sum(wide, axis=1), [-1, _LANES, classes]), axis=1)


def softmax_statistics(logits, hit, weights, lanes):
    """``(Σ m·p, Σ m·p·[y = c], log p_y)`` of ``p = softmax(logits)`` ``(G, n, C)``: the Dice
    sums ``(G, C)`` and each pixel's log-probability of its class ``(G, n)``, in one pass.

    The gradient is written out: with respect to ``p`` it is ``m·(a_c + b_c·[y = c])`` for the
    sums, taken through the softmax at once (``p·(g - Σ_c p·g)``), plus ``[y = c] - p`` for
    ``log p_y``: a quarter faster than autodiff under XLA, and a sum of cross-entropy and Dice
    costs one softmax. ``log p_y`` is exact down to ``p_y`` = 1.2e-38 (a cross-entropy of 87.3,
    where it stops); its gradient is exact everywhere.
    """

    @tf.custom_gradient
    def statistics(z):
        top = tf.reduce_max(z, axis=-1, keepdims=True)
        e = tf.exp(z - top)
        total = tf.reduce_sum(e, axis=-1, keepdims=True)
        p = e / total
        p_y = tf.where(hit, p, 0.0)
        if weights is None:
            s_p, tp = _column_sums(p, lanes), _column_sums(p_y, lanes)
        else:
            s_p = _column_sums(p * weights[..., None], lanes)
            tp = _column_sums(p_y * weights[..., None], lanes)
        # From the buffer the sums read anyway (log(e_y) - log(total) would cost a second pass
        # under XLA): below the smallest normal float -log p_y stops at 87.3, its gradient not.
        log_p_y = tf.math.log(tf.maximum(tf.reduce_sum(p_y, axis=-1), _pixels.TINY))

        def grad(d_s_p, d_tp, d_log_p_y):
            d_z = None
            if d_s_p is not None or d_tp is not None:
                g = 0.0 if d_s_p is None else d_s_p[:, None, :]
                if d_tp is not None:
                    g = g + tf.where(hit, d_tp[:, None, :], 0.0)
                if weights is not None:
                    g = g * weights[..., None]
                d_z = p * (g - tf.reduce_sum(p * g, axis=-1, keepdims=True))
            if d_log_p_y is not None:
                d_ce = d_log_p_y[..., None] * (tf.cast(hit, p.dtype) - p)
                d_z = d_ce if d_z is None else d_z + d_ce
            return tf.zeros_like(z) if d_z is None else d_z

        return (s_p, tp, log_p_y), grad

    return statistics(logits)


# --- Lovász ------------------------------------------------------------------------------------


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
    if not IS_TENSORFLOW:
        return _neutral_regions.lovasz_loss(y_true, y_pred, options, where)
    inputs = RegionInputs(y_true, y_pred, options, None, where)
    num_classes, classes = inputs.num_classes, options["classes"]
    _checks.classes_in_range(classes, num_classes, where)
    p = inputs.probabilities()
    if inputs.dense:
        y = inputs.labels
        hard = False
    else:
        y = tf.cast(tf.equal(inputs.labels[..., None], tf.range(num_classes)), tf.int32)
        hard = True
    valid = None if inputs.weights is None else inputs.weights > 0
    if valid is not None:
        y = y * tf.cast(valid[..., None], y.dtype)
    errors = tf.abs(tf.cast(y, p.dtype) - p)
    # One row per (group, class): (G·C, n), the row count static where G is (the sort uses it).
    static_rows = isinstance(inputs.groups, int)
    shape = [inputs.groups * num_classes, -1] if static_rows else [-1, tf.shape(errors)[1]]
    rows = tf.reshape(tf.transpose(errors, [0, 2, 1]), shape)
    labels = tf.reshape(tf.transpose(y, [0, 2, 1]), shape)
    if valid is not None:
        valid = tf.reshape(tf.repeat(valid[:, None, :], num_classes, axis=1), shape)
    gather = not _neutral_regions.by_image(options)
    losses, label_sums = _lovasz_rows(rows, labels, valid, hard, gather=gather)
    losses = tf.reshape(losses, [-1, num_classes])
    if classes == "present":
        present = tf.cast(tf.reshape(label_sums, [-1, num_classes]) > 0, losses.dtype)
        loss = tf.math.divide_no_nan(
            tf.reduce_sum(losses * present, -1), tf.reduce_sum(present, -1)
        )
    elif classes == "all":
        loss = tf.reduce_mean(losses, axis=-1)
    else:
        loss = tf.reduce_mean(tf.gather(losses, classes, axis=-1), axis=-1)
    return inputs.checked(reduce_images(loss, inputs, options))


def _lovasz_rows(errors, labels, valid, hard, gather):
    """``(ℓ, Σ labels)`` of each row of ``errors`` ``(R, n)``, with the sort's subgradient.

    With ``gather`` under a distribution strategy, the rows are those of every replica's pixels
    side by side (the global sort); the gradient is this replica's part, times the replica count
    (its share of the loss is ``ℓ / replicas``).
    """

    @tf.custom_gradient
    def rows(local_errors):
        values = [local_errors, labels] + ([] if valid is None else [tf.cast(valid, tf.int32)])
        if gather:
            values, offset = hooks.gather_pixels(values, axis=1)
        else:
            offset = 0
        e, y, v = values[0], values[1], (values[2] > 0 if valid is not None else None)
        losses, label_sums, jaccard, order, counted = _lovasz_sorted(e, y, v, hard)

        def grad(d_losses, _):
            step = jaccard - tf.pad(jaccard[:, :-1], [[0, 0], [1, 0]])  # J_k - J_(k-1)
            step = tf.where(counted, step, 0.0) * d_losses[:, None]
            step = step * tf.cast(hooks.replicas(), step.dtype) if gather else step
            shape = tf.shape(e)
            unsorted = tf.reshape(_unsort(tf.reshape(order, [-1]), tf.reshape(step, [-1])), shape)
            return unsorted[:, offset : offset + tf.shape(local_errors)[1]]

        return (losses, label_sums), grad

    return rows(errors)


def _lovasz_sorted(errors, labels, valid, hard):
    """The Lovász extension of each row: ``(ℓ, Σ labels, J, order, counted)``, the last three in
    sorted order (``order``: the flat index each sorted element came from)."""
    num_rows, n = tf.shape(errors)[0], tf.shape(errors)[1]
    total = tf.cast(num_rows, tf.int64) * tf.cast(n, tf.int64)
    checks = _checks.data(
        total <= _MAX_ELEMENTS,
        f"pixel_lovasz_loss: at most {_MAX_ELEMENTS} errors (pixels × classes) per sort. (errors)",
        total,
    )
    with tf.control_dependencies(checks):
        inverted = _ERROR_BOUND - tf.bitcast(errors, tf.int32)
    if valid is not None:  # not counted: after every error
        inverted = tf.where(valid, inverted, _ERROR_BOUND + 1)
    index = tf.reshape(tf.range(num_rows * n, dtype=tf.int32), [num_rows, n])
    keys = tf.bitwise.bitwise_or(
        tf.bitwise.left_shift(tf.cast(inverted, tf.int64), 32), tf.cast(index, tf.int64)
    )
    keys = _sort_rows(keys, n)
    high = tf.cast(tf.bitwise.right_shift(keys, 32), tf.int32)
    order = tf.cast(tf.bitwise.bitwise_and(keys, 0xFFFFFFFF), tf.int32)
    counted = high <= _ERROR_BOUND
    e = tf.where(counted, tf.bitcast(_ERROR_BOUND - high, tf.float32), 0.0)
    y = tf.gather(tf.reshape(labels, [-1]), order)
    if hard:  # exact integer counts
        ones = tf.cast(counted, tf.int32)
    else:
        ones = tf.cast(counted, y.dtype)
    label_sum = tf.reduce_sum(y, axis=-1, keepdims=True)
    inside = label_sum - tf.cumsum(y, axis=-1)
    union = label_sum + tf.cumsum(ones - y, axis=-1)
    jaccard = 1.0 - tf.math.divide_no_nan(tf.cast(inside, tf.float32), tf.cast(union, tf.float32))
    following = tf.pad(e[:, 1:], [[0, 0], [0, 1]])
    losses = tf.reduce_sum((e - following) * jaccard, axis=-1)
    return losses, tf.cast(label_sum[:, 0], tf.float32), jaccard, order, counted


def _sort_rows(keys, n):
    """Each row of the int64 ``keys`` ``(R, n)`` in increasing order (the keys are distinct).

    Under XLA: one single-operand XLA sort, 3x faster than the comparator sort ``tf.sort``
    lowers to. Otherwise: a radix sort of the flat keys with ``tf.dynamic_partition`` (stable),
    by the error's digits and then by row, 3x faster than ``tf.sort`` (``TopKV2``) on CPU.
    """
    if _xla is not None and _checks.compiling_with_xla():
        return _xla.sort(keys)
    rows = keys.shape[0]
    flat = tf.reshape(keys, [-1])
    shift = 32
    for bits in _ERROR_DIGITS:
        digit = tf.bitwise.bitwise_and(tf.bitwise.right_shift(flat, shift), (1 << bits) - 1)
        flat = tf.concat(tf.dynamic_partition(flat, tf.cast(digit, tf.int32), 1 << bits), 0)
        shift += bits
    if rows != 1:
        row_bits = _MAX_ROW_BITS if rows is None else max(1, int(rows - 1).bit_length())
        checks = _checks.data(
            tf.shape(keys)[0] <= 2**row_bits,
            f"pixel_lovasz_loss: at most {2**row_bits} sorted rows (images × classes). (rows)",
            tf.shape(keys)[0],
        )
        with tf.control_dependencies(checks):
            flat = tf.identity(flat)
        low = 0
        while low < row_bits:
            bits = min(_ROW_DIGIT, row_bits - low)
            row = tf.cast(tf.bitwise.bitwise_and(flat, 0xFFFFFFFF), tf.int32) // n
            digit = tf.bitwise.bitwise_and(tf.bitwise.right_shift(row, low), (1 << bits) - 1)
            flat = tf.concat(tf.dynamic_partition(flat, digit, 1 << bits), 0)
            low += bits
    return tf.reshape(flat, tf.shape(keys))


def _unsort(order, values):
    """``values`` put back where ``order`` says they came from (a permutation)."""
    if _checks.compiling_with_xla():
        return tf.scatter_nd(order[:, None], values, tf.shape(values))
    return tf.dynamic_stitch([order], [values])


def region_loss(y_true, y_pred, sample_weight, options, where, tversky):
    """Flatten the inputs and compute :func:`tversky_loss` with ``tversky = (α, β, γ)`` and the
    loss's checked ``options``."""
    if not IS_TENSORFLOW:
        return _neutral_regions.region_loss(y_true, y_pred, sample_weight, options, where, tversky)
    inputs = RegionInputs(y_true, y_pred, options, sample_weight, where)
    return tversky_loss(inputs, tversky, options, where)
