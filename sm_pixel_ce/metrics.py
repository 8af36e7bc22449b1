"""Streaming per-pixel metrics to compare losses fairly: ``pixel_miou`` and ``pixel_accuracy``.

Both take the argmax of the predictions over the class axis and accumulate counts over every
batch (a confusion matrix, float64), so the value over an epoch is exact: the mean IoU of the
epoch's pixels, not a mean of per-batch means. Labels are dense (one-hot, argmax taken; an
all-zero pixel is unlabelled) or integer masks, flattened the same way as the losses'.
"""

import numbers

import tensorflow as tf

from . import _checks, _pixels
from ._registry import register
from .flavor import keras


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
        A ``(C, C)`` float64 tensor.

    Example:
        >>> cm = pixel_confusion_matrix(masks, model(images), num_classes=7, ignore_index=255)
    """
    where = "pixel_confusion_matrix"
    pixels = _pixels.Pixels(y_true, y_pred, axis, where, binary=False)
    if num_classes is not None and pixels.num_classes != num_classes:
        raise ValueError(
            f"{where}: the predictions have {pixels.num_classes} classes on axis {axis}; expected "
            f"num_classes={num_classes}. Received predictions of shape {tuple(pixels.pred_shape)}."
        )
    predicted = tf.argmax(pixels.flatten_scores(y_pred), axis=-1, output_type=tf.int32)
    if pixels.dense:
        labels = tf.argmax(pixels.labels, axis=-1, output_type=tf.int32)
        valid = tf.reduce_any(tf.not_equal(pixels.labels, 0.0), axis=-1)
    else:
        labels, valid = pixels.integer_labels(ignore_index)
    weights = tf.ones_like(predicted, tf.float64) if valid is None else tf.cast(valid, tf.float64)
    if sample_weight is not None:
        weights = weights * tf.cast(pixels.pixel_sample_weight(sample_weight), tf.float64)
    with tf.control_dependencies(pixels.checks):
        weights = tf.identity(weights)
    return tf.math.confusion_matrix(
        labels, predicted, num_classes=pixels.num_classes, weights=weights, dtype=tf.float64
    )


def mean_iou_from_confusion(cm):
    """Mean over classes present in labels or predictions of ``tp / (tp + fp + fn)``; 0 if none.

    Args:
        cm: A ``(C, C)`` confusion matrix (rows: labels, columns: predictions).

    Returns:
        A float64 scalar.
    """
    true_positives = tf.linalg.diag_part(cm)
    union = tf.reduce_sum(cm, axis=0) + tf.reduce_sum(cm, axis=1) - true_positives
    present = tf.cast(union > 0, cm.dtype)
    iou = tf.math.divide_no_nan(true_positives, union)
    return tf.math.divide_no_nan(tf.reduce_sum(iou * present), tf.reduce_sum(present))


def _num_classes(value, where):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(
            f"{where}: `num_classes` must be an integer >= 2, the number of predicted classes "
            f"(e.g. PixelMeanIoU(num_classes=7)). Received: num_classes={value!r}"
        )
    return int(value)


@register("metric", "pixel_miou")
class PixelMeanIoU(keras.metrics.Metric):
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
        super().__init__(name=name, dtype=dtype)
        where = type(self).__name__
        self.num_classes = _num_classes(num_classes, where)
        self.ignore_index = _checks.ignore_index(ignore_index, where)
        self.axis = _checks.axis_argument(axis, where)
        self.confusion = self.add_weight(
            name="confusion",
            shape=(self.num_classes, self.num_classes),
            initializer="zeros",
            dtype="float64",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        cm = pixel_confusion_matrix(
            y_true, y_pred, self.num_classes, self.ignore_index, self.axis, sample_weight
        )
        self.confusion.assign_add(cm)

    def result(self):
        return tf.cast(
            mean_iou_from_confusion(tf.convert_to_tensor(self.confusion)), self.dtype or "float32"
        )

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "axis": self.axis,
        }


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
        self.correct = self.add_weight(
            name="correct", shape=(), initializer="zeros", dtype="float64"
        )
        self.counted = self.add_weight(
            name="counted", shape=(), initializer="zeros", dtype="float64"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        cm = pixel_confusion_matrix(
            y_true, y_pred, None, self.ignore_index, self.axis, sample_weight
        )
        self.correct.assign_add(tf.linalg.trace(cm))
        self.counted.assign_add(tf.reduce_sum(cm))

    def result(self):
        accuracy = tf.math.divide_no_nan(
            tf.convert_to_tensor(self.correct), tf.convert_to_tensor(self.counted)
        )
        return tf.cast(accuracy, self.dtype or "float32")

    def reset_state(self):
        self.correct.assign(tf.zeros_like(self.correct))
        self.counted.assign(tf.zeros_like(self.counted))

    def get_config(self):
        return {**super().get_config(), "ignore_index": self.ignore_index, "axis": self.axis}
