"""Streaming per-pixel metrics to compare losses fairly: ``pixel_miou``, ``pixel_accuracy`` and
the per-class ``pixel_iou``; :func:`pixel_metrics` gives all of them for ``compile``.

All take the argmax of the predictions over the class axis and accumulate counts over every
batch (a confusion matrix), so the value over an epoch is exact: the mean IoU of the epoch's
pixels, not a mean of per-batch means. One rule on every backend (TensorFlow in both flavours,
JAX, PyTorch): pixel counts are integers kept as two int32 words, exact up to 2**51 pixels;
weighted counts (``sample_weight``) as two float32 words added with TwoSum (see
:class:`_Counts`). Labels are dense (one-hot, argmax taken; an all-zero pixel is unlabelled) or
integer masks, flattened the same way as the losses'.
"""

import numbers
import re

from keras import ops

from . import _checks, _pixels
from ._registry import register
from .flavor import keras

# Pixels per partial sum of the weighted counts: each cell's float32 sum runs over at most this
# many pixels, then the partial sums are added by a (pairwise) reduction.
_CHUNK = 1024


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
        A ``(C, C)`` tensor, on every backend: int32 pixel counts, or with ``sample_weight``
        float32 weighted counts, each cell summed over chunks of 1,024 pixels and then over the
        chunks (its rounding error grows with the chunk count's log, not with the pixel count).

    Example:
        >>> cm = pixel_confusion_matrix(masks, model(images), num_classes=7, ignore_index=255)
    """
    where = "pixel_confusion_matrix"
    pixels = _pixels.Pixels(y_true, y_pred, axis, where, binary=False)
    c = pixels.num_classes
    if num_classes is not None and c != num_classes:
        raise ValueError(
            f"{where}: the predictions have {c} classes on axis {axis}; expected "
            f"num_classes={num_classes}. Received predictions of shape {pixels.pred_shape}."
        )
    predicted = ops.cast(ops.argmax(pixels.scores, axis=-1), "int32")
    if pixels.dense:
        labels = ops.cast(ops.argmax(pixels.labels, axis=-1), "int32")
        valid = ops.any(ops.not_equal(pixels.labels, 0), axis=-1)
    else:
        labels, valid = pixels.integer_labels(ignore_index)
    cell = labels * c + predicted
    if sample_weight is None:
        if valid is not None:
            cell = ops.where(valid, cell, c * c)  # an extra cell, dropped below
        counts = ops.segment_sum(ops.ones_like(cell), cell, num_segments=c * c + 1)[: c * c]
    else:
        weights = ops.cast(pixels.pixel_sample_weight(sample_weight), "float32")
        if valid is not None:
            weights = ops.where(valid, weights, 0.0)
        size = ops.shape(cell)[0]  # a scalar tensor where TensorFlow knows it only when run
        chunk = ops.arange(size, dtype="int32") // _CHUNK
        chunks = (size + _CHUNK - 1) // _CHUNK
        partial = ops.segment_sum(weights, cell + chunk * (c * c), num_segments=chunks * c * c)
        counts = ops.sum(ops.reshape(partial, (-1, c * c)), axis=0)
    return pixels.checked(ops.reshape(counts, (c, c)), True)


def iou_from_confusion(cm):
    """Per-class ``tp / (tp + fp + fn)``; 0 for a class absent from labels and predictions.

    Args:
        cm: A ``(C, C)`` confusion matrix (rows: labels, columns: predictions).

    Returns:
        A ``(C,)`` float tensor: float64 for a float64 matrix, else float32.

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
        A float scalar: float64 for a float64 matrix, else float32.
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


# The low word of an exact count holds its last 20 bits, the high word the rest: exact up to
# 2**51 pixels, and under tf.distribute (where a metric's variables are read as the sum of the
# replicas' copies) the low words of up to 2,047 replicas still add up within an int32.
_LOW_BITS = 20
_LOW_MASK = (1 << _LOW_BITS) - 1


class _Counts:
    """A metric's counts summed since the last reset, the same four variables of ``shape`` on
    every backend (float64 is float32 on JAX without x64, and the counts must stay exact):

    * ``{name}_high``, ``{name}_low`` (int32): pixel counts, ``high·2**20 + low``, exact up to
      2**51 pixels;
    * ``{name}_weighted_high``, ``{name}_weighted_low`` (float32): weighted counts (batches with
      ``sample_weight``), ``high + low`` added with Knuth's TwoSum so that ``low`` keeps what
      rounding ``high`` drops: about 48 bits over an epoch (float64 keeps 53), each batch's
      float32 counts entering it with no further rounding until the total passes ~2**48 times
      their error.

    Args:
        metric: The metric that owns the variables.
        name: Their name's stem.
        shape: The counts' shape.
    """

    def __init__(self, metric, name, shape):
        self.variables = [
            metric.add_weight(name=f"{name}_{part}", shape=shape, initializer="zeros", dtype=dtype)
            for part, dtype in (
                ("high", "int32"),
                ("low", "int32"),
                ("weighted_high", "float32"),
                ("weighted_low", "float32"),
            )
        ]
        self.high, self.low, self.weighted_high, self.weighted_low = self.variables

    def add(self, counts):
        """Add a batch's counts: int32 pixel counts (the exact words), or float weighted ones."""
        if "int" in _pixels.dtype_name(counts):
            counts = ops.cast(counts, "int32")
            # Split before adding: the words stay within an int32 for any int32 counts.
            high = self.high + ops.right_shift(counts, _LOW_BITS)
            low = self.low + ops.bitwise_and(counts, _LOW_MASK)
            self.high.assign(high + ops.right_shift(low, _LOW_BITS))
            self.low.assign(ops.bitwise_and(low, _LOW_MASK))
            return
        values = ops.cast(counts, "float32")
        high = ops.convert_to_tensor(self.weighted_high)
        total = high + values
        virtual = total - high
        error = (high - (total - virtual)) + (values - virtual)
        low = ops.convert_to_tensor(self.weighted_low) + error
        renormalised = total + low
        self.weighted_high.assign(renormalised)
        self.weighted_low.assign(low - (renormalised - total))

    def value(self):
        """Every count as float32 (exact up to 2**24, then to float32's precision)."""
        high, low, weighted_high, weighted_low = (
            ops.cast(ops.convert_to_tensor(v), "float32") for v in self.variables
        )
        return (high * float(1 << _LOW_BITS) + low) + (weighted_high + weighted_low)

    def reset(self):
        for variable in self.variables:
            variable.assign(ops.zeros(variable.shape, variable.dtype))


class _CountingMetric(keras.metrics.Metric):
    """A metric of counts summed over batches (:class:`_Counts`), its state ``self.counts``."""

    def __init__(self, name, dtype, counts, shape):
        super().__init__(name=name, dtype=dtype)
        self.counts = _Counts(self, counts, shape)

    def reset_state(self):
        self.counts.reset()

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        """tf_keras's SavedModels and TensorFlow checkpoints: the metric without its counts
        (Keras 3 saves no metric state either; fit and evaluate start from zero), so that files
        of every earlier layout load (one float64 variable per count until this one)."""
        children = super()._trackable_children(save_type, **kwargs)
        counts = self.counts.variables
        return {k: v for k, v in children.items() if not any(v is c for c in counts)}

    def _cast(self, value):
        return ops.cast(value, self.dtype or "float32")


class _ConfusionMetric(_CountingMetric):
    """Accumulates :func:`pixel_confusion_matrix` over batches; subclasses derive ``result``."""

    def __init__(self, num_classes, ignore_index, axis, name, dtype):
        where = type(self).__name__
        num_classes = _num_classes(num_classes, where)
        super().__init__(name, dtype, "confusion", (num_classes, num_classes))
        self.num_classes = num_classes
        self.ignore_index = _checks.ignore_index(ignore_index, where)
        self.axis = _checks.axis_argument(axis, where)

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.counts.add(
            pixel_confusion_matrix(
                y_true, y_pred, self.num_classes, self.ignore_index, self.axis, sample_weight
            )
        )

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "axis": self.axis,
        }


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
        return self._cast(mean_iou_from_confusion(self.counts.value()))


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
        iou = iou_from_confusion(self.counts.value())
        return self._cast(iou[self.class_id])

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


@register("metric", "pixel_accuracy")
class PixelAccuracy(_CountingMetric):
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
        super().__init__(name, dtype, "correct_counted", (2,))
        where = type(self).__name__
        self.ignore_index = _checks.ignore_index(ignore_index, where)
        self.axis = _checks.axis_argument(axis, where)

    def update_state(self, y_true, y_pred, sample_weight=None):
        cm = pixel_confusion_matrix(
            y_true, y_pred, None, self.ignore_index, self.axis, sample_weight
        )
        self.counts.add(ops.stack([ops.trace(cm), ops.sum(cm)]))

    def result(self):
        correct, counted = ops.unstack(self.counts.value())
        return self._cast(ops.divide_no_nan(correct, counted))

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
