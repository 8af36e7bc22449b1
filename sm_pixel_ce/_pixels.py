"""Shared math of the pixel losses: bring labels and predictions to (pixels, classes) the same way.

Predictions are moved to channels-last (a transpose, never a reshape across axes) and flattened
to ``(P, C)``; labels take the same path: dense labels ``(P, C)``, integer masks ``(P,)``.
"""

import warnings

import numpy as np
import tensorflow as tf

from . import _checks

# A dense label row counts when it sums to 1 within this tolerance (or to 0: an unlabelled pixel).
ROW_SUM_TOLERANCE = 1e-3

# Predictions given as probabilities may stray this far outside [0, 1] (rounding) before they
# are taken for logits.
PROBABILITY_TOLERANCE = 1e-3

NOT_PROBABILITIES = (
    "{where}: from_logits=False, but the predictions lie outside [0, 1], so they are not "
    "probabilities (logits?): pass from_logits=True, or end the model in {activation}. "
    "(min, max of the predictions)"
)

NOT_FINITE = (
    "{where}: the loss is not finite because the predictions contain NaN or Inf (a diverging "
    "model: lower the learning rate, or use loss scaling under mixed precision)."
)

NON_INTEGER_MASK = (
    "{where}: the integer mask holds non-integer values. Masks resized with bilinear "
    "interpolation do this; resize masks with nearest-neighbour. (min, max of the mask)"
)

NOT_A_MASK = "{where}: expected an integer or integer-valued float mask. Received dtype {dtype}."


def mask_out_of_range(where, num_values, ignore_index, num_classes):
    """The message of an integer mask with a value outside ``[0, num_values)`` (and not
    ``ignore_index``)."""
    expected = f"values in [0, {num_values - 1}]" + (
        f" or the ignore_index {ignore_index}"
        if ignore_index is not None
        else " (no ignore_index is set)"
    )
    return (
        f"{where}: integer mask out of range; expected {expected} for {num_classes} "
        "predicted classes. (min, max of the mask)"
    )


def binary_labels_out_of_range(where, ignore_index):
    """The message of ``pixel_bce``'s dense labels outside [0, 1] (and not ``ignore_index``)."""
    return (
        f"{where}: dense labels must lie in [0, 1]"
        + (f" (or equal ignore_index {ignore_index})" if ignore_index is not None else "")
        + ". (min, max of the labels)"
    )


REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight", "sum", "none", None)
_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")


def check_reduction(reduction, where, name="reduction"):
    """Validate a loss's ``reduction``: one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{where}: unknown `reduction`. Expected one of {REDUCTIONS}. "
            f"Received: reduction={reduction!r}"
        )
    return reduction


def logits_behind(y_pred, op_type):
    """The logits behind a softmax/sigmoid output (Keras's ``_keras_logits`` or the graph op),
    else None."""
    logits = getattr(y_pred, "_keras_logits", None)
    if logits is not None:
        return logits
    if (
        hasattr(y_pred, "op")
        and not isinstance(y_pred, (tf.__internal__.EagerTensor, tf.Variable))
        and y_pred.op.type == op_type
    ):
        return y_pred.op.inputs[0]
    return None


def scores_of(y_pred, from_logits, op_type, where):
    """Logits to use (fused path) or probabilities, and whether they are logits."""
    logits = logits_behind(y_pred, op_type)
    if logits is not None:
        if from_logits:
            warnings.warn(
                f"{where}: from_logits=True, but the predictions come from a {op_type.lower()} "
                "activation; computing from the logits behind it.",
                stacklevel=4,
            )
        return logits, True
    return y_pred, from_logits


def flat_predictions(y_true, y_pred, axis, from_logits, where, binary, dtype=None):
    """``(pixels, scores, from_logits)``: the :class:`Pixels` of a loss's inputs, the predictions
    flattened to ``(P, C)`` (the logits behind a softmax/sigmoid output when there are some, cast
    to ``dtype`` when given) and whether they are logits; probabilities are checked to be ones."""
    op_type, activation = ("Sigmoid", "a sigmoid") if binary else ("Softmax", "pixel_softmax")
    scores, from_logits = scores_of(y_pred, from_logits, op_type, where)
    pixels = Pixels(y_true, scores, axis, where, binary=binary)
    scores = pixels.flatten_scores(scores)
    if dtype is not None:
        scores = tf.cast(scores, dtype)
    if not from_logits:
        pixels.require_probabilities(scores, activation=activation)
    return pixels, scores, from_logits


def smallest_normal(dtype):
    """The smallest normal number of the float ``dtype`` (NumPy, JAX or TensorFlow's):
    float32 1.18e-38, float64 2.2e-308.

    Plain probabilities enter a log clipped to ``[smallest_normal, 1]`` on every backend: ``-log
    p`` is exact for every normal ``p`` (a pixel's loss stops at 87.3 in float32), its gradient
    ``1/p`` stays finite (that of a subnormal ``p`` would not, and XLA flushes them to 0), and
    ``p = 1`` gives exactly 0. Keras clips at 1e-7 instead (``-log p`` stops at 16.1).
    """
    return float(np.finfo(getattr(dtype, "as_numpy_dtype", dtype)).tiny)


# Smallest normal float32: logs and powers are floored here (p^γ keeps a finite gradient for
# γ < 1, log p a finite value), so a pixel's loss stops at 87.3.
TINY = smallest_normal("float32")  # 1.1754944e-38


def class_weight_tensor(class_weights, num_classes, dtype, where):
    """``class_weights`` as a ``(C,)`` tensor (None stays None), one weight per class."""
    if class_weights is None:
        return None
    _checks.one_weight_per_class(class_weights, num_classes, where)
    return tf.constant(class_weights, dtype=dtype)


def to_float(x):
    x = tf.convert_to_tensor(x)
    if x.dtype in (tf.float32, tf.float64):
        return x
    return tf.cast(x, tf.float32)


class Pixels:
    """Labels and predictions flattened to pixels, with what the losses need to know about them.

    Attributes:
        scores: ``(P, C)`` logits or probabilities, channels-last order.
        labels: ``(P, C)`` float dense labels, or ``(P,)`` int32 class indices.
        dense: Whether ``labels`` are dense.
        num_classes: C.
        spatial_shape: Shape tensor of the prediction without its class axis, e.g. (N, H, W).
        checks: Control dependencies of data checks (graph mode).
        poison: Conditions that, false, make the loss NaN (checks that XLA would drop).
    """

    def __init__(self, y_true, y_pred, axis, where, binary):
        y_pred = tf.convert_to_tensor(y_pred)
        rank = y_pred.shape.rank
        class_axis = _checks.class_axis(axis, rank, where, min_rank=2)
        num_classes = y_pred.shape[class_axis]
        if num_classes is None:
            raise ValueError(
                f"{where}: the class axis (axis={axis}) of the predictions must have a known size. "
                f"Received shape {y_pred.shape}."
            )
        if not binary and num_classes < 2:
            raise ValueError(
                f"{where}: a softmax cross-entropy needs at least 2 classes on axis {axis}; "
                f"received predictions of shape {y_pred.shape}. For a single foreground channel "
                "use pixel_bce (sigmoid)."
            )
        perm = None
        if class_axis != rank - 1:
            perm = [d for d in range(rank) if d != class_axis] + [class_axis]
        self.where = where
        self.num_classes = num_classes
        self.checks = []
        self.poison = []
        self.pred_shape = y_pred.shape
        self.class_axis = class_axis
        self.rank = rank
        self._perm = perm
        self.y_pred = y_pred
        shape = tf.shape(y_pred)
        self.spatial_shape = tf.concat([shape[:class_axis], shape[class_axis + 1 :]], 0)
        self.dense, labels = self._labels(y_true)
        self.labels = labels

    def flatten_scores(self, scores):
        scores = tf.convert_to_tensor(scores)
        if scores.dtype in (tf.float16, tf.bfloat16):
            scores = tf.cast(scores, tf.float32)
        if self._perm is not None:
            scores = tf.transpose(scores, self._perm)
        return tf.reshape(scores, [-1, self.num_classes])

    def _labels(self, y_true):
        y_true = tf.convert_to_tensor(y_true)
        rank, axis, num_classes = self.rank, self.class_axis, self.num_classes
        pred_shape = self.pred_shape
        true_shape = y_true.shape
        spatial = pred_shape[:axis].concatenate(pred_shape[axis + 1 :])
        if true_shape.rank == rank and true_shape[axis] == num_classes:
            self._check_shape(true_shape, pred_shape, y_true, "labels")
            if self._perm is not None:
                y_true = tf.transpose(y_true, self._perm)
            return True, tf.reshape(to_float(y_true), [-1, num_classes])
        if true_shape.rank == rank and true_shape[axis] == 1:
            y_true = tf.squeeze(y_true, axis=axis)
            true_shape = y_true.shape
        if true_shape.rank == rank - 1:
            self._check_shape(true_shape, spatial, y_true, "integer mask")
            return False, tf.reshape(y_true, [-1])
        raise ValueError(self._mismatch(y_true.shape))

    def _check_shape(self, true_shape, expected, y_true, what):
        if not true_shape.is_compatible_with(expected):
            raise ValueError(self._mismatch(y_true.shape))
        if not (true_shape.is_fully_defined() and expected.is_fully_defined()):
            expected_dynamic = tf.shape(self.y_pred) if what == "labels" else self.spatial_shape
            self.checks += _checks.data(
                tf.reduce_all(tf.equal(tf.shape(y_true), expected_dynamic)),
                f"{self.where}: labels and predictions differ in shape (labels, predictions).",
                tf.shape(y_true),
                tf.shape(self.y_pred),
            )

    def _mismatch(self, true_shape):
        return mismatch_message(
            self.where, true_shape, self.pred_shape, self.class_axis, self.num_classes
        )

    def require_probabilities(self, probabilities, activation="pixel_softmax"):
        """Check that predictions taken as probabilities are finite and within [0, 1].

        Plain probabilities are renormalised and clipped, which would hide an Inf, and logits
        given with ``from_logits=False`` would give a wrong loss without a word. Predictions that
        come with their logits (softmax, sigmoid) never get here.
        """
        finite = tf.reduce_all(tf.math.is_finite(probabilities))
        self.checks += _checks.data(finite, NOT_FINITE.format(where=self.where))
        low, high = tf.reduce_min(probabilities), tf.reduce_max(probabilities)
        in_range = tf.logical_and(
            low >= -PROBABILITY_TOLERANCE, high <= 1.0 + PROBABILITY_TOLERANCE
        )
        if _checks.compiling_with_xla():
            # No assertion survives XLA (Keras 3's default on GPU): a NaN loss from the first
            # step, rather than a finite, wrong one.
            self.poison.append(in_range)
        self.checks += _checks.data(
            tf.logical_or(tf.logical_not(finite), in_range),  # not finite: reported above
            NOT_PROBABILITIES.format(where=self.where, activation=activation),
            low,
            high,
        )

    def dense_distributions(self, dtype):
        """Validate dense labels as one distribution over the classes per pixel (or none).

        Args:
            dtype: The float dtype of the predictions, which the labels take.

        Returns:
            ``(labels, row_sum)``: the float ``(P, C)`` labels and each pixel's sum, 1 for a
            labelled pixel and 0 for an unlabelled one (which does not count).
        """
        labels = tf.cast(self.labels, dtype)
        # An einsum with ones, not reduce_sum(axis=-1): XLA on CPU reduces a short minor axis
        # slowly (+30% on the whole loss at 7 classes), and matvec is slow without XLA.
        row_sum = tf.einsum("pc,c->p", labels, tf.ones([self.num_classes], labels.dtype))
        min_label, min_sum, max_sum = (
            tf.reduce_min(labels),
            tf.reduce_min(row_sum),
            tf.reduce_max(row_sum),
        )
        # Every pixel labelled (the usual case): the extreme sums within the tolerance of 1
        # settle it. Only batches with unlabelled or stray pixels pay for checking each pixel.
        rows_ok = tf.cond(
            tf.reduce_all(tf.abs(tf.stack([min_sum, max_sum]) - 1) <= ROW_SUM_TOLERANCE),
            lambda: tf.constant(True),
            lambda: tf.reduce_all(_sums_to_one_or_zero(row_sum)),
        )
        self.checks += _checks.data(
            tf.logical_and(min_label >= 0, rows_ok),
            f"{self.where}: dense labels must be >= 0 with each pixel summing to 1 (one class "
            "per pixel) or to 0 (unlabelled). For several classes per pixel use pixel_bce. "
            "(min label, min and max pixel sum)",
            min_label,
            min_sum,
            max_sum,
        )
        return labels, row_sum

    def images(self):
        """``(N, pixels per image)``: the first axis and the product of the other spatial axes,
        each a Python int where the shape is static, else a scalar tensor."""
        spatial = self.pred_shape[: self.class_axis].concatenate(
            self.pred_shape[self.class_axis + 1 :]
        )
        count = spatial[0] if spatial[0] is not None else self.spatial_shape[0]
        rest = spatial[1:]
        if rest.is_fully_defined():
            per_image = int(np.prod(rest.as_list(), dtype=np.int64))
        else:
            per_image = tf.reduce_prod(self.spatial_shape[1:])
        return count, per_image

    def integer_labels(self, ignore_index, num_values=None):
        """Validate the integer mask and return ``(safe_labels, valid)``.

        ``safe_labels`` has ignored pixels replaced by 0; ``valid`` is a bool mask or None.
        """
        labels = self.labels
        num_values = num_values or self.num_classes
        where = self.where
        if labels.dtype.is_floating:
            self.checks += _checks.data(
                tf.reduce_all(tf.equal(labels, tf.round(labels))),
                NON_INTEGER_MASK.format(where=where),
                tf.reduce_min(labels),
                tf.reduce_max(labels),
            )
        elif not labels.dtype.is_integer:
            raise ValueError(NOT_A_MASK.format(where=where, dtype=labels.dtype.name))
        labels = tf.cast(labels, tf.int32)
        valid = None
        in_range = tf.logical_and(labels >= 0, labels < num_values)
        if ignore_index is not None:
            valid = tf.not_equal(labels, ignore_index)
            in_range = tf.logical_or(in_range, tf.logical_not(valid))
        self.checks += _checks.data(
            tf.reduce_all(in_range),
            mask_out_of_range(where, num_values, ignore_index, self.num_classes),
            tf.reduce_min(labels),
            tf.reduce_max(labels),
        )
        if valid is not None:
            labels = tf.where(valid, labels, tf.zeros_like(labels))
        if self.checks:
            # In a graph, gather only once the range is checked, so that the clear message wins
            # over the kernel's own out-of-range error.
            with tf.control_dependencies(self.checks):
                labels = tf.identity(labels)
        return labels, valid

    def pixel_sample_weight(self, sample_weight):
        """Per-image (N,), per-pixel (N, H, W) or (N, H, W, 1) sample weights, flattened to (P,)."""
        sw = to_float(sample_weight)
        rank, axis = self.rank, self.class_axis
        spatial = self.pred_shape[:axis].concatenate(self.pred_shape[axis + 1 :])
        if sw.shape.rank == rank and sw.shape[axis] == 1:
            sw = tf.squeeze(sw, axis=axis)
        if sw.shape.rank == 0:
            return tf.fill(tf.reshape(tf.reduce_prod(self.spatial_shape), [1]), sw)
        if sw.shape.rank == 1 and sw.shape.is_compatible_with(spatial[:1]):
            per_image = tf.reduce_prod(self.spatial_shape[1:])
            return tf.repeat(sw, per_image)
        if sw.shape.rank == rank - 1 and sw.shape.is_compatible_with(spatial):
            self.checks += _checks.data(
                tf.reduce_all(tf.equal(tf.shape(sw), self.spatial_shape)),
                f"{self.where}: sample_weight and predictions differ in shape "
                "(sample_weight, pixels).",
                tf.shape(sw),
                self.spatial_shape,
            )
            return tf.reshape(sw, [-1])
        raise ValueError(
            f"{self.where}: sample_weight must be per image {tuple(spatial[:1])}, or per pixel "
            f"{tuple(spatial)}. Received shape {tuple(sw.shape)}."
        )


def reduce(pixels, losses, weights, sample_weight, reduction):
    """Weighted reduction of per-pixel losses ``(P,)``.

    Under a ``tf.distribute`` strategy the mean is global: each replica returns its share
    ``Σ_replica sw·w·ℓ / Σ_all replicas w`` (the denominator is summed across replicas), so that
    the replicas' shares, summed as gradients are, give exactly the single-device weighted mean
    (per-replica averaging, as PyTorch DDP does, would weight replicas equally instead).

    Args:
        pixels: The :class:`Pixels` of this call.
        losses: Per-pixel losses, ``(P,)``.
        weights: Per-pixel class weights / counted mask, ``(P,)``, or None (every pixel weight 1).
        sample_weight: Keras sample weights or None.
        reduction: ``"sum_over_batch_size"``/``"mean"``: Σ sw·w·ℓ / Σ w;
            ``"mean_with_sample_weight"``: Σ sw·w·ℓ / Σ sw·w; ``"sum"``: Σ sw·w·ℓ;
            ``"none"``/None: sw·w·ℓ in the prediction's shape without its class axis.

    Returns:
        A scalar, or the per-pixel map for ``"none"``.
    """
    sw = None if sample_weight is None else pixels.pixel_sample_weight(sample_weight)
    weighted = losses if weights is None else losses * weights
    if sw is not None:
        weighted = weighted * tf.cast(sw, weighted.dtype)
    if reduction in ("none", None):
        return checked(
            pixels,
            tf.reshape(weighted, pixels.spatial_shape),
            tf.reduce_all(tf.math.is_finite(losses)),
        )
    total = tf.reduce_sum(weighted)
    if reduction == "sum":
        return checked(pixels, total, tf.math.is_finite(total))
    if reduction in _MEAN_REDUCTIONS:
        if weights is None:
            denominator = tf.cast(tf.size(losses), total.dtype)
        else:
            denominator = tf.reduce_sum(weights)
    else:
        counted = tf.ones_like(losses) if weights is None else weights
        if sw is not None:
            counted = counted * tf.cast(sw, counted.dtype)
        denominator = tf.reduce_sum(counted)
    mean = tf.math.divide_no_nan(total, _global_sum(denominator))
    return checked(pixels, mean, tf.math.is_finite(total))


def mismatch_message(where, true_shape, pred_shape, axis, c):
    """The error for labels of shape ``true_shape`` (a ``tf.TensorShape``) that do not fit
    predictions of shape ``pred_shape`` with ``c`` classes on ``axis``, with a hint where the
    axes look swapped."""
    rank = pred_shape.rank
    spatial = tuple(pred_shape[:axis]) + tuple(pred_shape[axis + 1 :])
    message = (
        f"{where}: labels do not match the predictions of shape {tuple(pred_shape)} "
        f"(class axis {axis}, {c} classes). Expected dense labels of the same shape, or an "
        f"integer mask of shape {spatial} or with a size-1 class axis. "
        f"Received labels of shape {tuple(true_shape)}."
    )
    if true_shape.rank == rank:
        channels_first_true = true_shape.rank >= 3 and true_shape[1] == c and axis == rank - 1
        if channels_first_true and tuple(true_shape[:1]) + tuple(true_shape[2:]) + (c,) == tuple(
            pred_shape
        ):
            message += (
                " The labels look channels_first (N, C, H, W) while the predictions are "
                "channels_last: move the class axis of the labels last "
                "(np.moveaxis(y, 1, -1)), "
                "or give channels_first predictions with axis=1."
            )
        elif (
            axis == 1
            and true_shape[-1] == c
            and tuple(true_shape[:1]) + (c,) + tuple(true_shape[1:-1]) == tuple(pred_shape)
        ):
            message += (
                " The labels look channels_last (N, H, W, C) while axis=1 says the predictions "
                "are channels_first: move the class axis of the labels to position 1."
            )
        elif true_shape[axis] is not None and true_shape[axis] != c:
            message += f" The class counts differ: labels have {true_shape[axis]}, predictions {c}."
    elif (
        true_shape.rank == rank - 1 and axis == rank - 1 and rank >= 3 and pred_shape[1] is not None
    ):
        if tuple(true_shape[1:]) == tuple(pred_shape[2:]):
            message += (
                f" The predictions look channels_first (N, C, H, W) with {pred_shape[1]} "
                "classes: "
                "pass axis=1."
            )
    return message


def _sums_to_one_or_zero(sums):
    return tf.logical_or(tf.abs(sums - 1) <= ROW_SUM_TOLERANCE, tf.equal(sums, 0))


def replicas():
    """Number of replicas whose losses are summed (1 outside a distribution strategy)."""
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def global_sums(local):
    """Sums over the pixels of every replica, from this replica's sums ``local``.

    The value is the global sum; the gradient is ``replicas()`` times that of ``local``. A loss
    ``f(S)`` of global sums ``S`` then returns the share ``f(global_sums(s)) / replicas()``: the
    replicas' shares add up to ``f(S)``, and their gradients, summed as Keras sums them, to the
    gradient of ``f(S)`` on one device (``f'(S)·Σ_r ∂s_r``). Outside a strategy: ``local``.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return local
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(local))
    # local - stop_gradient(local) is exactly 0: it only carries the gradient.
    return total + context.num_replicas_in_sync * (local - tf.stop_gradient(local))


def global_count(value):
    """``value`` (a count, no gradient) summed over the replicas; ``value`` outside a strategy."""
    return _global_sum(value)


def gather_pixels(values, axis):
    """Every replica's ``values`` concatenated along ``axis`` in replica order, and where this
    replica's own start: ``(gathered, offset)``. Outside a strategy: ``(values, 0)``."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values, 0
    gathered = [context.all_gather(tf.stop_gradient(v), axis=axis) for v in values]
    sizes = context.all_gather(tf.shape(values[0])[axis : axis + 1], axis=0)
    offset = tf.reduce_sum(sizes[: tf.cast(context.replica_id_in_sync_group, tf.int32)])
    return gathered, offset


def _global_sum(value):
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(value))


def checked(pixels, value, finite):
    """Attach the data checks, and the check that the loss is finite, to ``value``."""
    if pixels.poison:
        value = tf.where(tf.reduce_all(tf.stack(pixels.poison)), value, float("nan"))
    checks = pixels.checks + _checks.data(finite, NOT_FINITE.format(where=pixels.where))
    if not checks:
        return value
    with tf.control_dependencies(checks):
        return tf.identity(value)


def hardest(losses, counted, top_k):
    """Which pixels hard-pixel mining keeps: the ⌈top_k·n⌉ counted pixels with the largest loss.

    ``n`` is the number of counted pixels (``counted`` True, or all pixels when None). Among
    equal losses the earlier pixels are kept, as ``tf.math.top_k`` does, so exactly ⌈top_k·n⌉
    pixels are kept. The k-th largest loss is found by a binary search on the float's bits (31
    passes of compare-and-count, no sort), which costs less than the loss itself on CPU and GPU.

    Under a ``tf.distribute`` strategy the selection is global: ``n``, the counts of the search
    and the order of ties are taken across all replicas (in replica order, i.e. the order of the
    global batch), so that the replicas together keep exactly the pixels a single device would.

    Args:
        losses: Per-pixel losses ``(P,)``, >= 0 (no gradient flows through the selection).
        counted: Bool ``(P,)`` of the pixels that count, or None for all.
        top_k: Fraction in (0, 1].

    Returns:
        A bool ``(P,)``, True for the kept pixels.
    """
    # A float >= 0 orders as its bits read as an int32 (cross-entropies are >= 0; the max()
    # only turns a -0.0 into 0). Pixels that do not count get -1, below every loss.
    keys = tf.bitcast(tf.maximum(tf.stop_gradient(tf.cast(losses, tf.float32)), 0.0), tf.int32)
    if counted is None:
        n = tf.size(losses)
    else:
        keys = tf.where(counted, keys, -1)
        n = tf.reduce_sum(tf.cast(counted, tf.int32))
    n = _global_total(n)
    # ⌈top_k·n⌉, with a relative margin so that e.g. 0.3·10 = 3.0000000000000004 gives 3.
    k = tf.cast(tf.math.ceil(top_k * (1.0 - 1e-12) * tf.cast(n, tf.float64)), tf.int32)
    # Largest threshold t with at least k keys >= t: the k-th largest key.
    low = tf.constant(0, tf.int32)
    high = tf.constant(2**31 - 1, tf.int32)
    for _ in range(31):
        middle = high - (high - low) // 2  # the upper middle, without overflow
        enough = _global_total(tf.reduce_sum(tf.cast(keys >= middle, tf.int32))) >= k
        low = tf.where(enough, middle, low)
        high = tf.where(enough, high, middle - 1)
    above = keys > low
    ties = tf.cast(tf.equal(keys, low), tf.int32)
    needed = k - _global_total(tf.reduce_sum(tf.cast(above, tf.int32)))
    tie_rank = tf.cumsum(ties) + _ties_before_this_replica(tf.reduce_sum(ties))
    return tf.logical_or(above, tf.logical_and(ties > 0, tie_rank <= needed))


def _global_total(value):
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _ties_before_this_replica(local_ties):
    """How many tied pixels the replicas before this one hold (0 outside a strategy)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tf.constant(0, tf.int32)
    replicas = context.num_replicas_in_sync
    own = tf.one_hot(context.replica_id_in_sync_group, replicas, dtype=tf.int32) * local_ties
    every = context.all_reduce(tf.distribute.ReduceOp.SUM, own)
    return tf.reduce_sum(every[: tf.cast(context.replica_id_in_sync_group, tf.int32)])
