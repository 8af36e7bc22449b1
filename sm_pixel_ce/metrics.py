"""Streaming per-pixel metrics to compare losses fairly: ``pixel_miou``, ``pixel_accuracy`` and
the per-class ``pixel_iou``; :func:`pixel_metrics` gives all of them for ``compile``.

All take the argmax of the predictions over the class axis and accumulate counts over every
batch (a confusion matrix, float64), so the value over an epoch is exact: the mean IoU of the
epoch's pixels, not a mean of per-batch means. On a backend other than TensorFlow (JAX, where
float64 is float32 unless x64 is on) the counts are integers, kept as two int32 words (see
:class:`_ExactCounts`), exact up to 2**61 pixels; weighted counts (``sample_weight``) are kept
as two float32 words (:class:`_CompensatedSums`). Labels are dense (one-hot, argmax taken; an
all-zero pixel is unlabelled) or integer masks, flattened the same way as the losses'.
"""

import numbers
import re

import tensorflow as tf
from keras import ops

from . import _checks, _pixels
from ._backend import hooks
from ._registry import register
from .flavor import IS_TENSORFLOW, keras


def pixel_confusion_matrix(
    y_true, y_pred, num_classes=None, ignore_index=None, axis=-1, sample_weight=None
):
    """Confusion matrix of per-pixel argmax predictions: ``cm[t, p]`` counts pixels of class ``t``
    predicted as ``p``.

    Args:
        y_true: Dense labels of ``y_pred``'s shape, or an integer mask ``(N, H, W)`` /
            ``(N, H, W, 1)``.
        y_pred: Scores (probabilities or logits), e.g. ``(N, H, W, C)``.
        num_classes: C; checked against the predictions when given. Defaults to None.
        ignore_index: Integer-mask value not counted, or None. Defaults to None.
        axis: Class axis of ``y_pred``. Defaults to -1.
        sample_weight: Per image ``(N,)`` or per pixel ``(N, H, W)`` weights, or None.
            Defaults to None.

    Returns:
        A ``(C, C)`` float64 tensor; on another backend than TensorFlow, int32 counts, or
        float32 weighted counts with ``sample_weight``.

    Example:
        >>> cm = pixel_confusion_matrix(masks, model(images), num_classes=7, ignore_index=255)
    """
    where = "pixel_confusion_matrix"
    if not IS_TENSORFLOW:
        if sample_weight is not None:
            return _weighted_confusion(
                y_true, y_pred, num_classes, ignore_index, axis, sample_weight, where
            )
        return _confusion_counts(y_true, y_pred, num_classes, ignore_index, axis, where)
    pixels = _pixels.Pixels(y_true, y_pred, axis, where, binary=False)
    if num_classes is not None and pixels.num_classes != num_classes:
        raise ValueError(
            f"{where}: the predictions have {pixels.num_classes} classes on axis {axis}; expected "
            f"num_classes={num_classes}. Received predictions of shape {tuple(pixels.pred_shape)}."
        )
    predicted = tf.argmax(pixels.scores, axis=-1, output_type=tf.int32)
    if pixels.dense:
        labels = tf.argmax(pixels.labels, axis=-1, output_type=tf.int32)
        valid = tf.reduce_any(tf.not_equal(pixels.labels, 0.0), axis=-1)
    else:
        labels, valid = pixels.integer_labels(ignore_index)
    weights = tf.ones_like(predicted, tf.float64) if valid is None else tf.cast(valid, tf.float64)
    if sample_weight is not None:
        weights = weights * tf.cast(pixels.pixel_sample_weight(sample_weight), tf.float64)
    weights = hooks.depend(weights, pixels.checks)
    return tf.math.confusion_matrix(
        labels, predicted, num_classes=pixels.num_classes, weights=weights, dtype=tf.float64
    )


# Pixels per partial sum of the weighted counts on another backend: each cell's float32 sum runs
# over at most this many pixels, then the partial sums are added by a (pairwise) reduction.
_CHUNK = 1024


def _weighted_confusion(y_true, y_pred, num_classes, ignore_index, axis, sample_weight, where):
    """The ``(C, C)`` float32 weighted confusion counts on ``keras.ops`` (another backend than
    TensorFlow): the weights summed in float32 per chunk of ``_CHUNK`` pixels, then over the
    chunks, so that a cell's rounding error grows with ``_CHUNK`` and the chunk count's log,
    not with the pixel count."""
    pixels, labels, predicted, valid = _argmax_pairs(
        y_true, y_pred, num_classes, ignore_index, axis, where
    )
    c = pixels.num_classes
    weights = ops.cast(pixels.pixel_sample_weight(sample_weight), "float32")
    if valid is not None:
        weights = ops.where(valid, weights, 0.0)
    size = int(weights.shape[0])
    chunks = -(-size // _CHUNK)
    cell = labels * c + predicted + (ops.arange(size, dtype="int32") // _CHUNK) * (c * c)
    partial = ops.segment_sum(weights, cell, num_segments=chunks * c * c)
    counts = ops.sum(ops.reshape(partial, (chunks, c, c)), axis=0)
    return pixels.checked(counts, True)


def _argmax_pairs(y_true, y_pred, num_classes, ignore_index, axis, where):
    """The checked pixels of a confusion count: ``(pixels, labels, predicted, valid)``, the
    ``(P,)`` int32 labels and argmax predictions and the bool ``(P,)`` of counted pixels (None:
    all)."""
    pixels = _pixels.Pixels(y_true, y_pred, axis, where, binary=False)
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


def _confusion_counts(y_true, y_pred, num_classes, ignore_index, axis, where):
    """The ``(C, C)`` int32 confusion counts of per-pixel argmax predictions (rows: labels), as
    ``metrics.pixel_confusion_matrix`` without sample weights."""
    pixels, labels, predicted, valid = _argmax_pairs(
        y_true, y_pred, num_classes, ignore_index, axis, where
    )
    c = pixels.num_classes
    cell = labels * c + predicted
    if valid is not None:
        cell = ops.where(valid, cell, c * c)  # an extra cell, dropped below
    ones = ops.ones_like(cell)
    counts = ops.segment_sum(ones, cell, num_segments=c * c + 1)[: c * c]
    return pixels.checked(ops.reshape(counts, (c, c)), True)


def iou_from_confusion(cm):
    """Per-class ``tp / (tp + fp + fn)``; 0 for a class absent from labels and predictions.

    Args:
        cm: A ``(C, C)`` confusion matrix (rows: labels, columns: predictions).

    Returns:
        A ``(C,)`` tensor of ``cm``'s dtype.

    Example:
        >>> iou_from_confusion(pixel_confusion_matrix(masks, model(images), num_classes=7))[3]
    """
    iou, _ = _iou_and_presence(cm)
    return iou


def mean_iou_from_confusion(cm):
    """Mean over classes present in labels or predictions of ``tp / (tp + fp + fn)``; 0 if none.

    Args:
        cm: A ``(C, C)`` confusion matrix (rows: labels, columns: predictions).

    Returns:
        A float64 scalar.
    """
    iou, present = _iou_and_presence(cm)
    return ops.divide_no_nan(ops.sum(iou * present), ops.sum(present))


def _iou_and_presence(cm):
    """Per-class IoU (0 where undefined) and 1.0 for the classes seen in labels or predictions."""
    cm = _pixels.to_float(ops.convert_to_tensor(cm))  # float64 stays, int32 counts: float32
    true_positives = ops.diagonal(cm)
    union = ops.sum(cm, axis=0) + ops.sum(cm, axis=1) - true_positives
    return ops.divide_no_nan(true_positives, union), ops.cast(union > 0, cm.dtype)


def _num_classes(value, where):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(
            f"{where}: `num_classes` must be an integer >= 2, the number of predicted classes "
            f"(e.g. PixelMeanIoU(num_classes=7)). Received: num_classes={value!r}"
        )
    return int(value)


# Base of the low word of :class:`_ExactCounts`: a batch adds less than 2**30 to a count (at most
# 2**30 pixels), so the low word never passes 2**31 before its carry goes to the high word.
_LOW_BITS = 30


class _TwoWords:
    """Two variables per count, ``high`` and ``low``, of the subclass's ``dtype``, named
    ``{name}_high`` / ``{name}_low``: what :class:`_ExactCounts` and :class:`_CompensatedSums`
    share (they differ in how ``add`` splits a sum between the two words).

    Args:
        metric: The metric that owns the variables.
        name: Their name's stem.
        shape: The counts' shape.
    """

    dtype = None

    def __init__(self, metric, name, shape):
        self.high = metric.add_weight(
            name=f"{name}_high", shape=shape, initializer="zeros", dtype=self.dtype
        )
        self.low = metric.add_weight(
            name=f"{name}_low", shape=shape, initializer="zeros", dtype=self.dtype
        )

    def reset(self):
        self.high.assign(ops.zeros(self.high.shape, self.dtype))
        self.low.assign(ops.zeros(self.low.shape, self.dtype))


class _ExactCounts(_TwoWords):
    """Counts of a metric that stay exact over an epoch where float64 is not at hand: two int32
    variables per count, ``high·2**30 + low``."""

    dtype = "int32"

    def add(self, counts):
        low = self.low + ops.cast(counts, "int32")
        self.high.assign_add(ops.right_shift(low, _LOW_BITS))
        self.low.assign(ops.bitwise_and(low, (1 << _LOW_BITS) - 1))

    def value(self):
        """The counts as float32 (exact up to 2**24, then to float32's precision)."""
        high = ops.cast(self.high, "float32")
        return high * float(1 << _LOW_BITS) + ops.cast(self.low, "float32")


class _CompensatedSums(_TwoWords):
    """Weighted counts of a metric where float64 is not at hand: two float32 variables per count
    (``{name}_weighted_high`` / ``_low``), ``high + low``, added with Knuth's TwoSum so that
    ``low`` keeps what rounding ``high`` drops. Over an epoch the sum keeps about 48 bits (float64
    keeps 53): each batch's float32 counts enter it with no further rounding until the total
    passes ~2**48 times their error."""

    dtype = "float32"

    def __init__(self, metric, name, shape):
        super().__init__(metric, f"{name}_weighted", shape)

    def add(self, values):
        values = ops.cast(values, "float32")
        high = ops.convert_to_tensor(self.high)
        total = high + values
        virtual = total - high
        error = (high - (total - virtual)) + (values - virtual)
        low = ops.convert_to_tensor(self.low) + error
        renormalised = total + low
        self.high.assign(renormalised)
        self.low.assign(low - (renormalised - total))

    def value(self):
        return ops.convert_to_tensor(self.high) + ops.convert_to_tensor(self.low)


class _ConfusionMetric(keras.metrics.Metric):
    """Accumulates :func:`pixel_confusion_matrix` over batches; subclasses derive ``result``."""

    def __init__(self, num_classes, ignore_index, axis, name, dtype):
        super().__init__(name=name, dtype=dtype)
        where = type(self).__name__
        self.num_classes = _num_classes(num_classes, where)
        self.ignore_index = _checks.ignore_index(ignore_index, where)
        self.axis = _checks.axis_argument(axis, where)
        shape = (self.num_classes, self.num_classes)
        if IS_TENSORFLOW:
            self.confusion = self.add_weight(
                name="confusion", shape=shape, initializer="zeros", dtype="float64"
            )
        else:  # pixel counts exact; weighted counts (sample_weight) kept apart
            self._counts = _ExactCounts(self, "confusion", shape)
            self._weighted = _CompensatedSums(self, "confusion", shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        cm = pixel_confusion_matrix(
            y_true, y_pred, self.num_classes, self.ignore_index, self.axis, sample_weight
        )
        if IS_TENSORFLOW:
            self.confusion.assign_add(cm)
        elif sample_weight is None:
            self._counts.add(cm)
        else:
            self._weighted.add(cm)

    def reset_state(self):
        if IS_TENSORFLOW:
            self.confusion.assign(tf.zeros_like(self.confusion))
        else:
            self._counts.reset()
            self._weighted.reset()

    def _confusion(self):
        if IS_TENSORFLOW:
            return tf.convert_to_tensor(self.confusion)
        return self._counts.value() + self._weighted.value()

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "axis": self.axis,
        }

    def _cast(self, value):
        return ops.cast(value, self.dtype or "float32")


@register("metric", "pixel_miou")
class PixelMeanIoU(_ConfusionMetric):
    """Mean IoU of per-pixel argmax predictions, streaming over a confusion matrix.

    ``IoU_c = tp_c / (tp_c + fp_c + fn_c)``, averaged over the classes present in the labels or
    the predictions of everything seen since the last reset (an epoch in ``fit``).

    Args:
        num_classes: C, the number of predicted classes. Required.
        ignore_index: Integer-mask value not counted, or None. Defaults to None.
        axis: Class axis of the predictions (``1`` for channels_first). Defaults to -1.
        name: Defaults to "pixel_miou".
        dtype: Dtype of the result. Defaults to None (float32).

    Returns:
        ``result()``: the mean IoU, a float scalar in [0, 1].

    Example:
        >>> model.compile("adam", loss="pixel_cce",
        ...               metrics=[PixelMeanIoU(num_classes=7, ignore_index=255), "pixel_accuracy"])
    """

    def __init__(self, num_classes, ignore_index=None, axis=-1, name="pixel_miou", dtype=None):
        super().__init__(num_classes, ignore_index, axis, name, dtype)

    def result(self):
        return self._cast(mean_iou_from_confusion(self._confusion()))


@register("metric", "pixel_iou")
class PixelIoU(_ConfusionMetric):
    """IoU of one class of per-pixel argmax predictions, streaming over a confusion matrix.

    ``IoU_k = tp_k / (tp_k + fp_k + fn_k)`` over everything seen since the last reset (an epoch in
    ``fit``), so that the training logs show each class's number beside the mean IoU. A class
    absent from both the labels and the predictions gives 0, not undefined: a Keras metric must be
    a number (``sm_pixel_ce.scores.scores_from_confusion`` reports such a class as None).

    Args:
        num_classes: C, the number of predicted classes. Required.
        class_id: k, the class scored, an integer in ``[0, num_classes)``. Required.
        ignore_index: Integer-mask value not counted, or None. Defaults to None.
        axis: Class axis of the predictions (``1`` for channels_first). Defaults to -1.
        name: Defaults to None, which names it ``"iou_<class_id>"`` (e.g. "iou_3").
        dtype: Dtype of the result. Defaults to None (float32).

    Returns:
        ``result()``: the IoU of class k, a float scalar in [0, 1].

    Example:
        >>> model.compile("adam", loss="pixel_cce",
        ...               metrics=[PixelIoU(num_classes=7, class_id=3, ignore_index=255)])
        >>> model.fit(images, masks).history["iou_3"]
    """

    def __init__(self, num_classes, class_id, ignore_index=None, axis=-1, name=None, dtype=None):
        where = type(self).__name__
        num_classes = _num_classes(num_classes, where)
        if (
            isinstance(class_id, bool)
            or not isinstance(class_id, numbers.Integral)
            or not 0 <= class_id < num_classes
        ):
            raise ValueError(
                f"{where}: `class_id` must be an integer in [0, {num_classes}), the index of the "
                f"class scored among num_classes={num_classes}. Received: class_id={class_id!r}"
            )
        class_id = int(class_id)
        name = f"iou_{class_id}" if name is None else name
        super().__init__(num_classes, ignore_index, axis, name, dtype)
        self.class_id = class_id

    def result(self):
        iou = iou_from_confusion(self._confusion())
        return self._cast(iou[self.class_id])

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


@register("metric", "pixel_accuracy")
class PixelAccuracy(keras.metrics.Metric):
    """Fraction of counted pixels whose argmax prediction is their label, streaming.

    The trace of the confusion matrix over its total, over everything seen since the last reset;
    0 when no pixel was counted.

    Args:
        ignore_index: Integer-mask value not counted, or None. Defaults to None.
        axis: Class axis of the predictions (``1`` for channels_first). Defaults to -1.
        name: Defaults to "pixel_accuracy".
        dtype: Dtype of the result. Defaults to None (float32).

    Returns:
        ``result()``: the accuracy, a float scalar in [0, 1].

    Example:
        >>> model.compile("adam", loss="pixel_cce", metrics=["pixel_accuracy"])
    """

    def __init__(self, ignore_index=None, axis=-1, name="pixel_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        where = type(self).__name__
        self.ignore_index = _checks.ignore_index(ignore_index, where)
        self.axis = _checks.axis_argument(axis, where)
        if IS_TENSORFLOW:
            self.correct = self.add_weight(
                name="correct", shape=(), initializer="zeros", dtype="float64"
            )
            self.counted = self.add_weight(
                name="counted", shape=(), initializer="zeros", dtype="float64"
            )
        else:  # pixel counts exact; weighted counts (sample_weight) kept apart
            self._correct = _ExactCounts(self, "correct", ())
            self._counted = _ExactCounts(self, "counted", ())
            self._weighted = _CompensatedSums(self, "correct_counted", (2,))

    def update_state(self, y_true, y_pred, sample_weight=None):
        cm = pixel_confusion_matrix(
            y_true, y_pred, None, self.ignore_index, self.axis, sample_weight
        )
        if IS_TENSORFLOW:
            self.correct.assign_add(tf.linalg.trace(cm))
            self.counted.assign_add(tf.reduce_sum(cm))
        elif sample_weight is None:
            self._correct.add(ops.trace(cm))
            self._counted.add(ops.sum(cm))
        else:
            self._weighted.add(ops.stack([ops.trace(cm), ops.sum(cm)]))

    def result(self):
        if IS_TENSORFLOW:
            accuracy = tf.math.divide_no_nan(
                tf.convert_to_tensor(self.correct), tf.convert_to_tensor(self.counted)
            )
            return tf.cast(accuracy, self.dtype or "float32")
        weighted = self._weighted.value()
        correct = self._correct.value() + weighted[0]
        counted = self._counted.value() + weighted[1]
        return ops.cast(ops.divide_no_nan(correct, counted), self.dtype or "float32")

    def reset_state(self):
        if IS_TENSORFLOW:
            self.correct.assign(tf.zeros_like(self.correct))
            self.counted.assign(tf.zeros_like(self.counted))
        else:
            self._correct.reset()
            self._counted.reset()
            self._weighted.reset()

    def get_config(self):
        return {**super().get_config(), "ignore_index": self.ignore_index, "axis": self.axis}


def pixel_metrics(num_classes, ignore_index=None, class_names=None, axis=-1):
    """The metrics to pass to ``compile``: mean IoU, pixel accuracy and every class's IoU.

    The per-class metrics are named ``"iou_<class name>"``, the name made safe for Keras's logs:
    lowercased, every run of characters other than ASCII letters and digits turned into one
    ``"_"``, and ``"_"`` stripped from the ends (``"Traffic sign"`` -> ``"iou_traffic_sign"``,
    ``"(void)"`` -> ``"iou_void"``). Two class names that become the same (``"Car"`` and ``"car"``)
    are a ValueError rather than made unique: a log's name must say which class it is.

    Args:
        num_classes: C, the number of predicted classes. Required.
        ignore_index: Integer-mask value not counted, or None. Defaults to None.
        class_names: C strings, the names of classes 0 to C-1, or None for ``"iou_0"``,
            ``"iou_1"``... Defaults to None.
        axis: Class axis of the predictions (``1`` for channels_first). Defaults to -1.

    Returns:
        A list: ``PixelMeanIoU`` ("pixel_miou"), ``PixelAccuracy`` ("pixel_accuracy"), then one
        ``PixelIoU`` per class, in class order.

    Example:
        >>> model.compile("adam", loss="pixel_cce", metrics=pixel_metrics(
        ...     3, ignore_index=255, class_names=["road", "Traffic sign", "car"]))
        >>> sorted(model.fit(images, masks).history)
        ['iou_car', 'iou_road', 'iou_traffic_sign', 'loss', 'pixel_accuracy', 'pixel_miou']
    """
    where = "pixel_metrics"
    num_classes = _num_classes(num_classes, where)
    names = _iou_names(class_names, num_classes, where)
    return [
        PixelMeanIoU(num_classes, ignore_index=ignore_index, axis=axis),
        PixelAccuracy(ignore_index=ignore_index, axis=axis),
        *(
            PixelIoU(num_classes, k, ignore_index=ignore_index, axis=axis, name=name)
            for k, name in enumerate(names)
        ),
    ]


def _iou_names(class_names, num_classes, where):
    """``"iou_<sanitised name>"`` for each class, checked for count, type and uniqueness."""
    if class_names is None:
        return [f"iou_{k}" for k in range(num_classes)]
    if isinstance(class_names, str) or not hasattr(class_names, "__len__"):
        raise ValueError(
            f"{where}: `class_names` must be a list of {num_classes} strings or None. "
            f"Received: class_names={class_names!r}"
        )
    class_names = list(class_names)
    if len(class_names) != num_classes:
        raise ValueError(
            f"{where}: `class_names` must name each of the num_classes={num_classes} classes. "
            f"Received {len(class_names)} names: class_names={class_names!r}"
        )
    names, first = [], {}
    for k, class_name in enumerate(class_names):
        if not isinstance(class_name, str):
            raise ValueError(
                f"{where}: every class name must be a string. "
                f"Received: class_names[{k}]={class_name!r}"
            )
        sanitised = re.sub(r"[^a-z0-9]+", "_", class_name.lower()).strip("_")
        if not sanitised:
            raise ValueError(
                f"{where}: a class name must contain an ASCII letter or digit to name its metric. "
                f"Received: class_names[{k}]={class_name!r}"
            )
        name = f"iou_{sanitised}"
        if name in first:
            j = first[name]
            raise ValueError(
                f"{where}: class names must stay distinct once made metric names; "
                f"class_names[{j}]={class_names[j]!r} and class_names[{k}]={class_name!r} are "
                f"both {name!r}. Rename one."
            )
        first[name] = k
        names.append(name)
    return names
