"""The backend-neutral path (``keras.ops``) of ``pixel_softmax``, ``pixel_cce``, ``pixel_bce`` and
the metrics' confusion counts, taken when Keras runs on a backend other than TensorFlow
(``KERAS_BACKEND=jax``). The TensorFlow path (fused kernels, graph assertions, ``tf.distribute``)
stays in ``_pixels`` and the loss modules.

It computes what the TensorFlow path computes, with three differences the backend forces:

* **Logits behind a softmax in a side table.** A JAX array (or tracer) takes no attributes, so
  ``pixel_softmax`` records ``id(output) -> (weak reference to output, logits, class axis)`` in
  ``_LOGITS``; ``pixel_cce`` of that very output (same object, same class axis) computes from the
  logits, fused: exact value and gradient ``p - y`` at any logit gap. The entry goes when the
  output dies (the weak reference's callback), so tracing leaves nothing behind. Probabilities not
  found there (another softmax, or an array Keras copied) take ``log p`` of ``p`` clipped to
  ``[smallest normal, 1]``, as on TensorFlow (``_pixels.smallest_normal``): exact up to a logit
  gap of 87 (where the loss stops at 87.3).
* **Data checks inside ``jit``** run on the host through one ``jax.debug.callback`` per loss, fed
  a few scalars (all-finite, min, max, in-range flags) that XLA fuses into the loss's own passes
  over the data: the step raises the same ``ValueError`` text, wrapped by JAX in a
  ``JaxRuntimeError`` (as TensorFlow's graph wraps it in an ``InvalidArgumentError``). Called
  eagerly, they raise the ``ValueError`` itself. Caught inside ``jit``: a non-finite loss;
  probabilities not finite or outside [0, 1]; an integer mask out of range (past
  ``ignore_index``) or holding non-integer floats; dense labels negative or not summing to 1 or 0
  per pixel (``pixel_cce``) or outside [0, 1] (``pixel_bce``). Shapes, dtypes and options fail at
  trace time. At 8x256x256x7 the checks cost less than the machine's noise (under 1 %).
* **No replica context.** Keras's JAX distribution computes the loss on the global batch (one
  program over sharded arrays), so every mean and count is global already.
"""

import functools
import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from . import _checks, _pixels
from .flavor import BACKEND


def _traced(value):
    """Whether ``value`` is an abstract value being traced (inside ``jax.jit``)."""
    if BACKEND != "jax":
        return False
    import jax

    return isinstance(value, jax.core.Tracer)


def _raise_unless(message, condition, *values):
    # ops.convert_to_numpy, not np.asarray: a torch tensor must leave autograd (predictions that
    # require grad, in training) and its device first.
    if not bool(ops.convert_to_numpy(condition)):
        shown = ", ".join(_checks._show(ops.convert_to_numpy(v)) for v in values)
        raise ValueError(message + (f" Received: {shown}" if shown else ""))


#: id(softmax output) -> (weak reference to it, its logits, its class axis >= 0); see the module's
#: docstring. Keyed by id: JAX arrays and tracers are weakly referenceable but not hashable.
_LOGITS = {}


def _forget(key, ref):
    """The weak reference's callback: drop the entry of a dead output (and only its own)."""
    entry = _LOGITS.get(key)
    if entry is not None and entry[0] is ref:
        _LOGITS.pop(key, None)


def _remember(output, logits, axis):
    key = id(output)
    try:
        ref = weakref.ref(output, functools.partial(_forget, key))
    except TypeError:  # not weakly referenceable: no fused route, the floored log instead
        return
    _LOGITS[key] = (ref, logits, axis)


def logits_behind(y_pred, axis, from_logits, where):
    """The logits behind ``y_pred`` when it is a live ``pixel_softmax`` output over the class axis
    ``axis``, else None (warning, as TensorFlow does, when ``from_logits`` was set on it)."""
    entry = _LOGITS.get(id(y_pred))
    if entry is None or entry[0]() is not y_pred:
        return None
    _, logits, softmax_axis = entry
    if axis % len(logits.shape) != softmax_axis:
        return None
    if from_logits:
        warnings.warn(
            f"{where}: from_logits=True, but the predictions come from a softmax activation; "
            "computing from the logits behind it.",
            stacklevel=4,
        )
    return logits


def pixel_softmax(x, axis):
    x = ops.convert_to_tensor(x)
    class_axis = _checks.class_axis(axis, len(x.shape), "pixel_softmax", min_rank=2)
    if _dtype(x) in ("float16", "bfloat16"):
        x = ops.cast(x, "float32")
    output = ops.softmax(x, axis=axis)
    _remember(output, x, class_axis)
    return output


class Pixels:
    """Labels and predictions flattened to ``(P, C)`` / ``(P,)``, as ``_pixels.Pixels`` does, with
    their data checks.

    Attributes:
        scores: ``(P, C)`` float32 (or float64) logits or probabilities, channels-last order.
        labels: ``(P, C)`` dense labels, or ``(P,)`` integer mask values.
        grid_scores, grid_labels: The same before flattening, ``(N, H, W, C)`` / ``(N, H, W)``.
        dense: Whether ``labels`` are dense.
        num_classes: C.
        spatial_shape: The prediction's shape without its class axis, a tuple of ints.
    """

    def __init__(self, y_true, y_pred, axis, where, binary):
        y_pred = ops.convert_to_tensor(y_pred)
        pred_shape = tuple(y_pred.shape)
        rank = len(pred_shape)
        class_axis = _checks.class_axis(axis, rank, where, min_rank=2)
        num_classes = pred_shape[class_axis]
        if not binary and num_classes < 2:
            raise ValueError(
                f"{where}: a softmax cross-entropy needs at least 2 classes on axis {axis}; "
                f"received predictions of shape {tf.TensorShape(pred_shape)}. For a single "
                "foreground channel use pixel_bce (sigmoid)."
            )
        self.where, self.num_classes, self.pred_shape = where, num_classes, pred_shape
        self._checks = []
        self.spatial_shape = pred_shape[:class_axis] + pred_shape[class_axis + 1 :]
        if _dtype(y_pred) in ("float16", "bfloat16"):
            y_pred = ops.cast(y_pred, "float32")
        # Channels-last, before flattening: an elementwise loss summed whole is faster from here.
        self.grid_scores = ops.moveaxis(y_pred, class_axis, -1)
        self.scores = ops.reshape(self.grid_scores, (-1, num_classes))

        y_true = ops.convert_to_tensor(y_true)
        true_shape = tuple(y_true.shape)
        mismatch = _pixels.mismatch_message(
            where, tf.TensorShape(true_shape), tf.TensorShape(pred_shape), class_axis, num_classes
        )
        if len(true_shape) == rank and true_shape[class_axis] == num_classes:
            if true_shape != pred_shape:
                raise ValueError(mismatch)
            self.dense = True
            labels = ops.moveaxis(y_true, class_axis, -1)
            self.grid_labels = _pixels_float(labels)
            self.labels = ops.reshape(self.grid_labels, (-1, num_classes))
            return
        if len(true_shape) == rank and true_shape[class_axis] == 1:
            y_true = ops.squeeze(y_true, axis=class_axis)
            true_shape = tuple(y_true.shape)
        if true_shape != self.spatial_shape:
            raise ValueError(mismatch)
        self.dense = False
        self.grid_labels = y_true
        self.labels = ops.reshape(y_true, (-1,))

    def require(self, condition, message, *values):
        """Require ``condition``: raise now when it is concrete, else when the step runs."""
        if _traced(condition):
            self._checks.append((condition, message, values))
        else:
            _raise_unless(message, condition, *values)

    def checked(self, value, finite):
        """``value``, with the checks of a traced call (and that the loss is finite) run on the
        host: one callback, which raises the first that fails."""
        self.require(finite, _pixels.NOT_FINITE.format(where=self.where))
        if self._checks:
            import jax

            checks = self._checks
            jax.debug.callback(
                functools.partial(_raise_first, [(m, len(v)) for _, m, v in checks]),
                *[part for condition, _, values in checks for part in (condition, *values)],
            )
        return value

    def require_probabilities(self, activation="pixel_softmax"):
        scores = self.scores
        finite = ops.all(ops.isfinite(scores))
        self.require(finite, _pixels.NOT_FINITE.format(where=self.where))
        low, high = ops.min(scores), ops.max(scores)
        tolerance = _pixels.PROBABILITY_TOLERANCE
        self.require(
            ops.logical_or(
                ops.logical_not(finite),
                ops.logical_and(low >= -tolerance, high <= 1.0 + tolerance),
            ),
            _pixels.NOT_PROBABILITIES.format(where=self.where, activation=activation),
            low,
            high,
        )

    def dense_distributions(self):
        """``(labels, row_sum)`` of dense labels checked as one distribution per pixel (or
        none), as ``_pixels.Pixels.dense_distributions``."""
        labels = ops.cast(self.labels, self.scores.dtype)
        row_sum = ops.sum(labels, axis=-1)
        tolerance = _pixels.ROW_SUM_TOLERANCE
        rows_ok = ops.all(ops.logical_or(ops.abs(row_sum - 1) <= tolerance, ops.equal(row_sum, 0)))
        self.require(
            ops.logical_and(ops.min(labels) >= 0, rows_ok),
            f"{self.where}: dense labels must be >= 0 with each pixel summing to 1 (one class "
            "per pixel) or to 0 (unlabelled). For several classes per pixel use pixel_bce. "
            "(min label, min and max pixel sum)",
            ops.min(labels),
            ops.min(row_sum),
            ops.max(row_sum),
        )
        return labels, row_sum

    def integer_labels(self, ignore_index, num_values=None):
        """``(safe_labels, valid)`` of the integer mask, as ``_pixels.Pixels.integer_labels``."""
        labels, where = self.labels, self.where
        num_values = num_values or self.num_classes
        dtype = _dtype(labels)
        if "float" in dtype:
            self.require(
                ops.all(ops.equal(labels, ops.round(labels))),
                _pixels.NON_INTEGER_MASK.format(where=where),
                ops.min(labels),
                ops.max(labels),
            )
        elif "int" not in dtype:
            raise ValueError(_pixels.NOT_A_MASK.format(where=where, dtype=dtype))
        labels = ops.cast(labels, "int32")
        in_range = ops.logical_and(labels >= 0, labels < num_values)
        valid = None
        if ignore_index is not None:
            valid = ops.not_equal(labels, ignore_index)
            in_range = ops.logical_or(in_range, ops.logical_not(valid))
        self.require(
            ops.all(in_range),
            _pixels.mask_out_of_range(where, num_values, ignore_index, self.num_classes),
            ops.min(labels),
            ops.max(labels),
        )
        if valid is not None:
            labels = ops.where(valid, labels, 0)
        return labels, valid

    def pixel_sample_weight(self, sample_weight):
        """Per-image ``(N,)``, per-pixel ``(N, H, W)`` or ``(N, H, W, 1)`` weights as ``(P,)``."""
        sw = _pixels_float(ops.convert_to_tensor(sample_weight))
        spatial = self.spatial_shape
        shape = tuple(sw.shape)
        if len(shape) == len(spatial) + 1 and shape[-1] == 1:
            sw, shape = ops.squeeze(sw, axis=-1), shape[:-1]
        if shape == ():
            return ops.full((int(np.prod(spatial)),), sw)
        if shape == spatial[:1]:
            return ops.repeat(sw, int(np.prod(spatial[1:])))
        if shape == spatial:
            return ops.reshape(sw, (-1,))
        raise ValueError(
            f"{self.where}: sample_weight must be per image {spatial[:1]}, or per pixel "
            f"{spatial}. Received shape {shape}."
        )


def _raise_first(layout, *parts):
    """Host side of :meth:`Pixels.checked`: ``parts`` are each check's condition and values."""
    at = 0
    for message, count in layout:
        _raise_unless(message, *parts[at : at + 1 + count])
        at += 1 + count


def _pixels_float(x):
    return x if _dtype(x) in ("float32", "float64") else ops.cast(x, "float32")


def _dtype(x):
    """``x``'s dtype as Keras names it (``"float16"``): a torch dtype equals no string."""
    return keras.backend.standardize_dtype(x.dtype)


def reduce(pixels, losses, weights, sample_weight, reduction):
    """Weighted reduction of per-pixel losses ``(P,)``, as ``_pixels.reduce`` (one device, or the
    global batch under Keras's JAX distribution)."""
    weighted = losses if weights is None else losses * weights
    sw = None
    if sample_weight is not None:
        sw = ops.cast(pixels.pixel_sample_weight(sample_weight), weighted.dtype)
        weighted = weighted * sw
    if reduction in ("none", None):
        value = ops.reshape(weighted, pixels.spatial_shape)
        return pixels.checked(value, ops.all(ops.isfinite(losses)))
    total = ops.sum(weighted)
    if reduction == "sum":
        return pixels.checked(total, ops.isfinite(total))
    if reduction in ("sum_over_batch_size", "mean"):
        denominator = (
            ops.cast(losses.shape[0], total.dtype) if weights is None else ops.sum(weights)
        )
    else:
        counted = ops.ones_like(losses) if weights is None else weights
        denominator = ops.sum(counted if sw is None else counted * sw)
    return pixels.checked(ops.divide_no_nan(total, denominator), ops.isfinite(total))


def _for_log(p):
    """``p`` clipped to ``[smallest normal, 1]`` of its dtype, as on TensorFlow: selects, not
    ``ops.clip``, so that the gradient passes on the closed interval as ``tf.clip_by_value``'s
    does (JAX's clip halves it at the bounds, at ``p = 1`` among them)."""
    tiny = _pixels.smallest_normal(_dtype(p))
    return ops.where(p < tiny, tiny, ops.where(p > 1.0, 1.0, p))


def _clipped_probabilities(probabilities):
    """Probabilities renormalised along the classes, clipped for a log (``_for_log``)."""
    return _for_log(probabilities / ops.sum(probabilities, axis=-1, keepdims=True))


def _focal_factor(miss, gamma):
    """``(1 - p)^γ`` from ``miss = 1 - p``, floored at the smallest normal number."""
    return ops.power(ops.maximum(miss, _pixels.smallest_normal(_dtype(miss))), gamma)


def pixel_categorical_crossentropy(y_true, y_pred, sample_weight, options, where):
    """``pixel_categorical_crossentropy`` on ``keras.ops``: ``options`` are its checked options
    (``top_k`` aside: see ``_neutral_regions.crossentropy``)."""
    axis, from_logits = options["axis"], options["from_logits"]
    label_smoothing, focal_gamma = options["label_smoothing"], options["focal_gamma"]
    logits = logits_behind(y_pred, axis, from_logits, where)
    if logits is not None:
        y_pred, from_logits = logits, True
    pixels = Pixels(y_true, y_pred, axis, where, binary=False)
    num_classes, scores = pixels.num_classes, pixels.scores
    if not from_logits:
        pixels.require_probabilities()
    cw = _class_weight_tensor(options["class_weights"], scores, where)
    # From logits, -Σ t·log_softmax(z) = lse(z)·Σt - Σ t·z: the log-softmax is never formed and
    # an integer label picks z_y with a compare, not a gather (whose gradient is a scatter). Under
    # jax.jit that is faster than the take_along_axis floor itself.
    lse = ops.logsumexp(scores, axis=-1) if from_logits and not focal_gamma else None
    if pixels.dense:
        labels, row_sum = pixels.dense_distributions()
        weights = row_sum if cw is None else ops.matmul(labels, cw)
        target = labels
        if label_smoothing:
            target = labels * (1.0 - label_smoothing) + label_smoothing / num_classes
        if lse is not None:
            losses = lse * ops.sum(target, axis=-1) - ops.sum(target * scores, axis=-1)
        else:
            log_p = _log_p(scores, from_logits, focal_gamma)
            losses = -ops.sum(target * log_p, axis=-1)
        return reduce(pixels, losses, weights, sample_weight, options["reduction"])
    labels, valid = pixels.integer_labels(options["ignore_index"])
    picked = ops.equal(labels[:, None], ops.arange(num_classes, dtype=labels.dtype))
    if lse is not None:
        losses = lse - _pick(picked, scores)
        if label_smoothing:
            mean_log_p = ops.mean(scores, axis=-1) - lse
            losses = (1.0 - label_smoothing) * losses - label_smoothing * mean_log_p
    elif not (from_logits or label_smoothing or focal_gamma):
        # The usual case, a softmax output and a mask: the log of each pixel's one probability,
        # not of all C.
        p_y = _pick(picked, scores) / ops.sum(scores, axis=-1)
        losses = -ops.log(_for_log(p_y))
    else:
        log_p = _log_p(scores, from_logits, focal_gamma)
        losses = -_pick(picked, log_p)
        if label_smoothing:
            losses = (1.0 - label_smoothing) * losses - label_smoothing * ops.mean(log_p, axis=-1)
    weights = _integer_weights(labels, valid, cw)
    return reduce(pixels, losses, weights, sample_weight, options["reduction"])


def _pick(picked, values):
    """Each pixel's value at its label: ``values`` ``(P, C)`` where ``picked`` (one-hot bools)."""
    return ops.sum(ops.where(picked, values, 0.0), axis=-1)


def _log_p(scores, from_logits, focal_gamma):
    """``log p`` of logits or probabilities ``(P, C)``, times the focal factor when set: ``1 - p``
    from ``-expm1(log p)`` for logits (exact for confident pixels), else from the clipped ``p``,
    as on TensorFlow."""
    if from_logits:
        log_p = ops.log_softmax(scores, axis=-1)
        miss = -ops.expm1(log_p) if focal_gamma else None
    else:
        p = _clipped_probabilities(scores)
        log_p = ops.log(p)
        miss = 1.0 - p if focal_gamma else None
    if focal_gamma:
        log_p = _focal_factor(miss, focal_gamma) * log_p
    return log_p


def _class_weight_tensor(class_weights, scores, where):
    """``class_weights`` as a ``(C,)`` tensor of the scores' dtype, or None."""
    if class_weights is None:
        return None
    _checks.one_weight_per_class(class_weights, scores.shape[-1], where)
    return ops.convert_to_tensor(np.asarray(class_weights), dtype=scores.dtype)


def _integer_weights(labels, valid, cw):
    """Each pixel's weight: its class's (or 1), 0 where not valid; None for all 1."""
    if cw is None:
        return None if valid is None else ops.cast(valid, "float32")
    weights = ops.take(cw, labels)
    return weights if valid is None else ops.where(valid, weights, 0.0)


def pixel_binary_crossentropy(y_true, y_pred, sample_weight, options, where):
    """``pixel_binary_crossentropy`` on ``keras.ops``: ``options`` are its checked options
    (``top_k`` aside: see ``_neutral_regions.crossentropy``)."""
    axis, from_logits, reduction = options["axis"], options["from_logits"], options["reduction"]
    label_smoothing, focal_gamma = options["label_smoothing"], options["focal_gamma"]
    ignore_index = options["ignore_index"]
    pixels = Pixels(y_true, y_pred, axis, where, binary=True)
    num_classes, scores = pixels.num_classes, pixels.scores
    if not from_logits:
        pixels.require_probabilities(activation="a sigmoid")
    # Dense labels with no per-pixel weight: the loss is the sum of the elementwise terms, taken
    # whole on the unflattened grid (half the time of flattening and averaging per pixel first).
    whole = (
        pixels.dense
        and ignore_index is None
        and sample_weight is None
        and reduction not in ("none", None)
    )
    if whole:
        scores = pixels.grid_scores
    if pixels.dense:
        raw = ops.cast(pixels.grid_labels if whole else pixels.labels, scores.dtype)
        labels, weights = raw, None
        in_range = ops.logical_and(raw >= 0, raw <= 1)
        if ignore_index is not None:
            ignored = ops.any(ops.equal(raw, float(ignore_index)), axis=-1)
            weights = ops.cast(ops.logical_not(ignored), scores.dtype)
            in_range = ops.logical_or(in_range, ignored[:, None])
            labels = ops.where(ignored[:, None], 0.0, raw)
        pixels.require(
            ops.all(in_range),
            _pixels.binary_labels_out_of_range(where, ignore_index),
            ops.min(raw),
            ops.max(raw),
        )
    else:
        labels, valid = pixels.integer_labels(ignore_index, num_values=max(num_classes, 2))
        if num_classes == 1:
            labels = ops.cast(labels, scores.dtype)[:, None]
        else:
            labels = ops.one_hot(labels, num_classes, dtype=scores.dtype)
        weights = None if valid is None else ops.cast(valid, scores.dtype)
    if label_smoothing:
        labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
    losses = _binary_terms(scores, labels, from_logits, focal_gamma)
    if whole:
        total = ops.sum(losses) / num_classes
        value = total if reduction == "sum" else total / int(np.prod(pixels.spatial_shape))
        return pixels.checked(value, ops.isfinite(total))
    return reduce(pixels, ops.mean(losses, axis=-1), weights, sample_weight, reduction)


def _binary_terms(scores, labels, from_logits, focal_gamma):
    """The elementwise sigmoid cross-entropy (times the focal factor when set)."""
    if from_logits:
        # softplus(z) - z·y = max(z, 0) - z·y + log(1 + exp(-|z|)), TensorFlow's
        # sigmoid_cross_entropy_with_logits, in one op fewer.
        losses = ops.softplus(scores) - scores * labels
        if focal_gamma:
            miss = labels * ops.sigmoid(-scores) + (1.0 - labels) * ops.sigmoid(scores)
            losses = losses * _focal_factor(miss, focal_gamma)
        return losses
    p = _for_log(scores)
    losses = -(labels * ops.log(p) + (1.0 - labels) * ops.log(_for_log(1.0 - p)))
    if focal_gamma:
        miss = labels * (1.0 - p) + (1.0 - labels) * p
        losses = losses * _focal_factor(miss, focal_gamma)
    return losses


def argmax_pairs(y_true, y_pred, num_classes, ignore_index, axis, where):
    """The checked pixels of a confusion count: ``(pixels, labels, predicted, valid)``, the
    ``(P,)`` int32 labels and argmax predictions and the bool ``(P,)`` of counted pixels (None:
    all)."""
    pixels = Pixels(y_true, y_pred, axis, where, binary=False)
    if num_classes is not None and pixels.num_classes != num_classes:
        raise ValueError(
            f"{where}: the predictions have {pixels.num_classes} classes on axis {axis}; expected "
            f"num_classes={num_classes}. Received predictions of shape {pixels.pred_shape}."
        )
    predicted = ops.cast(ops.argmax(pixels.scores, axis=-1), "int32")
    if pixels.dense:
        labels = ops.cast(ops.argmax(pixels.labels, axis=-1), "int32")
        valid = ops.any(ops.not_equal(pixels.labels, 0), axis=-1)
    else:
        labels, valid = pixels.integer_labels(ignore_index)
    return pixels, labels, predicted, valid


def confusion_counts(y_true, y_pred, num_classes, ignore_index, axis, where):
    """The ``(C, C)`` int32 confusion counts of per-pixel argmax predictions (rows: labels), as
    ``metrics.pixel_confusion_matrix`` without sample weights."""
    pixels, labels, predicted, valid = argmax_pairs(
        y_true, y_pred, num_classes, ignore_index, axis, where
    )
    c = pixels.num_classes
    cell = labels * c + predicted
    if valid is not None:
        cell = ops.where(valid, cell, c * c)  # an extra cell, dropped below
    ones = ops.ones_like(cell)
    counts = ops.segment_sum(ones, cell, num_segments=c * c + 1)[: c * c]
    return pixels.checked(ops.reshape(counts, (c, c)), True)
