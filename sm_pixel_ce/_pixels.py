"""The shared math of the pixel losses and metrics, once on ``keras.ops`` for every backend: bring
labels and predictions to ``(pixels, classes)`` the same way, check them, reduce.

Predictions are moved to channels-last (a transpose, never a reshape across axes) and flattened
to ``(P, C)``; labels take the same path: dense labels ``(P, C)``, integer masks ``(P,)``. What a
backend does its own way (fused kernels, graph assertions, ``tf.distribute``, the logits behind
a softmax, sorts) is a hook of ``_backend.hooks``.
"""

import functools
import operator
import warnings

import keras
import numpy as np
from keras import ops

from . import _checks
from ._backend import generic, hooks

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


def dtype_name(x):
    """``x``'s dtype as Keras names it (``"float16"``): a torch dtype equals no string."""
    return keras.backend.standardize_dtype(x.dtype)


def smallest_normal(dtype):
    """The smallest normal number of the float ``dtype`` (a name, or NumPy's, TensorFlow's,
    JAX's or torch's dtype): float32 1.18e-38, float64 2.2e-308.

    Plain probabilities enter a log clipped to ``[smallest_normal, 1]`` on every backend: ``-log
    p`` is exact for every normal ``p`` (a pixel's loss stops at 87.3 in float32), its gradient
    ``1/p`` stays finite (that of a subnormal ``p`` would not, and XLA flushes them to 0), and
    ``p = 1`` gives exactly 0. Keras clips at 1e-7 instead (``-log p`` stops at 16.1).
    """
    return float(np.finfo(keras.backend.standardize_dtype(dtype)).tiny)


#: The smallest normal float32 (``smallest_normal("float32")``), where logs and powers floor.
TINY = generic.TINY


def for_log(p):
    """``p`` clipped to ``[smallest normal, 1]`` of its dtype, the rule of every backend for
    plain probabilities: selects, so that the gradient passes on the closed interval (as
    ``tf.clip_by_value``'s; JAX's clip halves it at the bounds, at ``p = 1`` among them)."""
    tiny = smallest_normal(p.dtype)
    return ops.where(p < tiny, tiny, ops.where(p > 1.0, 1.0, p))


def focal_factor(miss, gamma):
    """``(1 - p)^γ`` from ``miss = 1 - p``, floored at the smallest normal number (a finite
    gradient for γ < 1)."""
    return ops.power(ops.maximum(miss, smallest_normal(miss.dtype)), gamma)


def class_weight_tensor(class_weights, num_classes, dtype, where):
    """``class_weights`` as a ``(C,)`` tensor of ``dtype`` (the scores'), None staying None."""
    if class_weights is None:
        return None
    _checks.one_weight_per_class(class_weights, num_classes, where)
    dtype = keras.backend.standardize_dtype(dtype)
    return ops.convert_to_tensor(np.asarray(class_weights), dtype=dtype)


def to_float(x):
    """``x`` as float32, unless it is float32 or float64 already."""
    return x if dtype_name(x) in ("float32", "float64") else ops.cast(x, "float32")


def _product(dims):
    """The product of ints and (TensorFlow, dynamic) scalar tensors: an int when all are."""
    return functools.reduce(operator.mul, dims, 1)


def _shape_tensor(shape):
    return ops.stack([ops.cast(d, "int32") for d in shape])


def _compatible(a, b):
    """Whether two static shapes (None: unknown) may be the same."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def flat_predictions(y_true, y_pred, axis, from_logits, where, binary, dtype=None, logits=True):
    """The :class:`Pixels` of a loss's inputs, its ``scores`` the logits behind a softmax/sigmoid
    output when there are some (``from_logits`` then True), cast to ``dtype`` when given;
    probabilities are checked to be ones. With ``logits=False`` such an output is kept as the
    probabilities it is (unchecked: an activation made them), for a loss that needs only them."""
    op_type, activation = ("Sigmoid", "a sigmoid") if binary else ("Softmax", "pixel_softmax")
    behind = hooks.logits_behind(y_pred, axis, op_type)
    if behind is not None:
        if from_logits:
            warnings.warn(
                f"{where}: from_logits=True, but the predictions come from a {op_type.lower()} "
                "activation; computing from "
                + ("the logits behind it." if logits else "its probabilities."),
                stacklevel=4,
            )
        if logits:
            y_pred, from_logits = behind, True
        else:
            from_logits = False
    pixels = Pixels(y_true, y_pred, axis, where, binary=binary, dtype=dtype)
    pixels.from_logits = bool(from_logits)
    if not from_logits and behind is None:
        pixels.require_probabilities(activation=activation)
    return pixels


class Pixels:
    """Labels and predictions flattened to pixels, with what the losses need to know about them,
    and the data checks of the call.

    Attributes:
        scores: ``(P, C)`` logits or probabilities, channels-last order (half precision in
            float32, ``dtype`` when given).
        labels: ``(P, C)`` float dense labels, or ``(P,)`` integer mask values.
        dense: Whether ``labels`` are dense.
        num_classes: C.
        pred_shape: The prediction's static shape, a tuple (None: unknown, TensorFlow only).
        spatial_shape: The prediction's shape without its class axis: ints, or scalar tensors
            where TensorFlow knows the size only when the graph runs.
        checks: The staged data checks (backend hooks: graph assertions, host callbacks).
        poison: Conditions that, false, make the loss NaN (checks that XLA would drop).
        from_logits: Whether ``scores`` are logits (set by :func:`flat_predictions`).
    """

    def __init__(self, y_true, y_pred, axis, where, binary, dtype=None):
        y_pred = ops.convert_to_tensor(y_pred)
        pred_shape = tuple(y_pred.shape)
        rank = len(pred_shape)
        class_axis = _checks.class_axis(axis, rank, where, min_rank=2)
        num_classes = pred_shape[class_axis]
        if num_classes is None:
            raise ValueError(
                f"{where}: the class axis (axis={axis}) of the predictions must have a known size. "
                f"Received shape {pred_shape}."
            )
        if not binary and num_classes < 2:
            raise ValueError(
                f"{where}: a softmax cross-entropy needs at least 2 classes on axis {axis}; "
                f"received predictions of shape {pred_shape}. For a single foreground channel "
                "use pixel_bce (sigmoid)."
            )
        self.where, self.num_classes, self.pred_shape = where, num_classes, pred_shape
        self.class_axis, self.rank, self.from_logits = class_axis, rank, False
        self.checks, self.poison = [], []
        self._perm = None
        if class_axis != rank - 1:
            self._perm = [d for d in range(rank) if d != class_axis] + [class_axis]
        shape = ops.shape(y_pred)
        self.spatial_shape = tuple(shape[:class_axis]) + tuple(shape[class_axis + 1 :])
        self.static_spatial = pred_shape[:class_axis] + pred_shape[class_axis + 1 :]
        self._shape = shape
        self.dense, self.labels = self._labels(ops.convert_to_tensor(y_true))
        if dtype_name(y_pred) in ("float16", "bfloat16"):
            y_pred = ops.cast(y_pred, "float32")
        if dtype is not None:
            y_pred = ops.cast(y_pred, dtype)
        self.scores = self._flat(y_pred)

    def _flat(self, x):
        if self._perm is not None:
            x = ops.transpose(x, self._perm)
        return ops.reshape(x, (-1, self.num_classes))

    def _labels(self, y_true):
        rank, axis, num_classes = self.rank, self.class_axis, self.num_classes
        true_shape = tuple(y_true.shape)
        if len(true_shape) == rank and true_shape[axis] == num_classes:
            self._check_shape(y_true, self.pred_shape, self._shape)
            return True, self._flat(to_float(y_true))
        if len(true_shape) == rank and true_shape[axis] == 1:
            y_true = ops.squeeze(y_true, axis=axis)
            true_shape = tuple(y_true.shape)
        if len(true_shape) == rank - 1:
            self._check_shape(y_true, self.static_spatial, self.spatial_shape)
            return False, ops.reshape(y_true, (-1,))
        raise ValueError(self._mismatch(true_shape))

    def _check_shape(self, y_true, expected, expected_dynamic):
        true_shape = tuple(y_true.shape)
        if not _compatible(true_shape, expected):
            raise ValueError(self._mismatch(true_shape))
        if None in true_shape or None in expected:
            self.require(
                ops.all(
                    ops.equal(_shape_tensor(ops.shape(y_true)), _shape_tensor(expected_dynamic))
                ),
                f"{self.where}: labels and predictions differ in shape (labels, predictions).",
                _shape_tensor(ops.shape(y_true)),
                _shape_tensor(self._shape),
            )

    def _mismatch(self, true_shape):
        return mismatch_message(
            self.where, true_shape, self.pred_shape, self.class_axis, self.num_classes
        )

    def require(self, condition, message, *values):
        """Require ``condition``: raise now when it is known, else when the step runs (staged
        by the backend's hook)."""
        hooks.require(self.checks, condition, message, *values)

    def checked(self, value, finite):
        """``value`` with the data checks and the check that the loss is ``finite`` attached."""
        self.require(finite, NOT_FINITE.format(where=self.where))
        return hooks.attach(self.checks, self.poison, value)

    def require_probabilities(self, activation="pixel_softmax"):
        """Check that the scores, taken as probabilities, are finite and within [0, 1].

        Plain probabilities are renormalised and clipped, which would hide an Inf, and logits
        given with ``from_logits=False`` would give a wrong loss without a word. Predictions that
        come with their logits (softmax, sigmoid) never get here.
        """
        scores = self.scores
        finite = ops.all(ops.isfinite(scores))
        self.require(finite, NOT_FINITE.format(where=self.where))
        low, high = hooks.extremes(scores)
        in_range = ops.logical_and(
            low >= -PROBABILITY_TOLERANCE, high <= 1.0 + PROBABILITY_TOLERANCE
        )
        if hooks.drops_assertions():
            # No assertion survives XLA (Keras 3's default on GPU): a NaN loss from the first
            # step, rather than a finite, wrong one.
            self.poison.append(in_range)
        self.require(
            ops.logical_or(ops.logical_not(finite), in_range),  # not finite: reported above
            NOT_PROBABILITIES.format(where=self.where, activation=activation),
            low,
            high,
        )

    def dense_distributions(self):
        """Validate dense labels as one distribution over the classes per pixel (or none).

        Returns:
            ``(labels, row_sum)``: the ``(P, C)`` labels in the scores' dtype and each pixel's
            sum, 1 for a labelled pixel and 0 for an unlabelled one (which does not count).
        """
        labels = ops.cast(self.labels, self.scores.dtype)
        # An einsum with ones, not a sum over the last axis: XLA on CPU reduces a short minor
        # axis slowly (+30% on the whole loss at 7 classes), and matvec is slow without XLA.
        ones = ops.ones((self.num_classes,), dtype_name(labels))
        row_sum = ops.einsum("pc,c->p", labels, ones)
        min_label, (min_sum, max_sum) = hooks.extremes(labels)[0], hooks.extremes(row_sum)
        # Every pixel labelled (the usual case): the extreme sums within the tolerance of 1
        # settle it. Only batches with unlabelled or stray pixels pay for checking each pixel.
        rows_ok = ops.cond(
            ops.all(ops.abs(ops.stack([min_sum, max_sum]) - 1) <= ROW_SUM_TOLERANCE),
            lambda: ops.convert_to_tensor(True),
            lambda: ops.all(
                ops.logical_or(ops.abs(row_sum - 1) <= ROW_SUM_TOLERANCE, ops.equal(row_sum, 0))
            ),
        )
        self.require(
            ops.logical_and(min_label >= 0, rows_ok),
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
        static, dynamic = self.static_spatial, self.spatial_shape
        count = static[0] if static[0] is not None else dynamic[0]
        if None not in static[1:]:
            return count, int(np.prod(static[1:], dtype=np.int64))
        return count, _product(dynamic[1:])

    def integer_labels(self, ignore_index, num_values=None):
        """Validate the integer mask and return ``(safe_labels, valid)``: the ``(P,)`` int32
        labels with ignored pixels replaced by 0, and a bool mask of the counted ones (None:
        all)."""
        labels, where = self.labels, self.where
        num_values = num_values or self.num_classes
        dtype = dtype_name(labels)
        if "float" in dtype:
            self.require(
                ops.all(ops.equal(labels, ops.round(labels))),
                NON_INTEGER_MASK.format(where=where),
                *hooks.extremes(labels),
            )
        elif "int" not in dtype:
            raise ValueError(NOT_A_MASK.format(where=where, dtype=dtype))
        labels = ops.cast(labels, "int32")
        valid = None
        in_range = ops.logical_and(labels >= 0, labels < num_values)
        if ignore_index is not None:
            valid = ops.not_equal(labels, ignore_index)
            in_range = ops.logical_or(in_range, ops.logical_not(valid))
        self.require(
            ops.all(in_range),
            mask_out_of_range(where, num_values, ignore_index, self.num_classes),
            *hooks.extremes(labels),
        )
        if valid is not None:
            labels = ops.where(valid, labels, 0)
        # In a graph, use the labels only once the range is checked, so that the clear message
        # wins over a kernel's own out-of-range error.
        return hooks.depend(labels, self.checks), valid

    def pixel_sample_weight(self, sample_weight):
        """Per-image ``(N,)``, per-pixel ``(N, H, W)`` or ``(N, H, W, 1)`` sample weights,
        flattened to ``(P,)``."""
        sw = to_float(ops.convert_to_tensor(sample_weight))
        spatial = self.static_spatial
        if len(sw.shape) == self.rank and sw.shape[self.class_axis] == 1:
            sw = ops.squeeze(sw, axis=self.class_axis)
        shape = tuple(sw.shape)
        if shape == ():
            return ops.broadcast_to(sw, (_product(self.spatial_shape),))
        if len(shape) == 1 and _compatible(shape, spatial[:1]):
            return ops.repeat(sw, self.images()[1])
        if _compatible(shape, spatial):
            if None in shape or None in spatial:
                self.require(
                    ops.all(
                        ops.equal(_shape_tensor(ops.shape(sw)), _shape_tensor(self.spatial_shape))
                    ),
                    f"{self.where}: sample_weight and predictions differ in shape "
                    "(sample_weight, pixels).",
                    _shape_tensor(ops.shape(sw)),
                    _shape_tensor(self.spatial_shape),
                )
            return ops.reshape(sw, (-1,))
        raise ValueError(
            f"{self.where}: sample_weight must be per image {spatial[:1]}, or per pixel "
            f"{spatial}. Received shape {shape}."
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
        sw = ops.cast(sw, weighted.dtype)
        weighted = weighted * sw
    if reduction in ("none", None):
        value = ops.reshape(weighted, pixels.spatial_shape)
        return pixels.checked(value, ops.all(ops.isfinite(losses)))
    total = ops.sum(weighted)
    if reduction == "sum":
        return pixels.checked(total, ops.isfinite(total))
    if reduction in _MEAN_REDUCTIONS:
        if weights is None:
            denominator = ops.cast(ops.shape(losses)[0], total.dtype)
        else:
            denominator = ops.sum(weights)
    else:
        counted = ops.ones_like(losses) if weights is None else weights
        denominator = ops.sum(counted if sw is None else counted * sw)
    mean = ops.divide_no_nan(total, hooks.global_sum(denominator))
    return pixels.checked(mean, ops.isfinite(total))


def hardest(losses, counted, top_k):
    """Which pixels hard-pixel mining keeps: the ⌈top_k·n⌉ counted pixels with the largest loss.

    ``n`` is the number of counted pixels (``counted`` True, or all pixels when None). Among
    equal losses the earlier pixels are kept, so exactly ⌈top_k·n⌉ pixels are kept. TensorFlow
    finds the k-th largest loss by a binary search on the float's bits, global under
    ``tf.distribute`` (the pixels a single device would keep); other backends from the k-th
    largest loss too, without a sort (``_backend.generic.hardest``).

    Args:
        losses: Per-pixel losses ``(P,)``, >= 0 (no gradient flows through the selection).
        counted: Bool ``(P,)`` of the pixels that count, or None for all.
        top_k: Fraction in (0, 1].

    Returns:
        A bool ``(P,)``, True for the kept pixels.
    """
    return hooks.hardest(losses, counted, top_k)


def mismatch_message(where, true_shape, pred_shape, axis, c):
    """The error for labels of shape ``true_shape`` (a tuple, None for unknown) that do not fit
    predictions of shape ``pred_shape`` with ``c`` classes on ``axis``, with a hint where the
    axes look swapped."""
    rank = len(pred_shape)
    spatial = tuple(pred_shape[:axis]) + tuple(pred_shape[axis + 1 :])
    message = (
        f"{where}: labels do not match the predictions of shape {tuple(pred_shape)} "
        f"(class axis {axis}, {c} classes). Expected dense labels of the same shape, or an "
        f"integer mask of shape {spatial} or with a size-1 class axis. "
        f"Received labels of shape {tuple(true_shape)}."
    )
    if len(true_shape) == rank:
        channels_first_true = len(true_shape) >= 3 and true_shape[1] == c and axis == rank - 1
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
        len(true_shape) == rank - 1 and axis == rank - 1 and rank >= 3 and pred_shape[1] is not None
    ):
        if tuple(true_shape[1:]) == tuple(pred_shape[2:]):
            message += (
                f" The predictions look channels_first (N, C, H, W) with {pred_shape[1]} "
                "classes: "
                "pass axis=1."
            )
    return message
