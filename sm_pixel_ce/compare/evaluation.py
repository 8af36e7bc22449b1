"""Evaluation of segmentation predictions in NumPy: confusion matrix, IoU, accuracy, ECE.

Every variant is scored by the same code from its probabilities ``(N, H, W, C)``: the predicted
class is the argmax over classes (for sigmoid outputs too), so no metric chosen by Keras for a loss
decides the comparison.
"""

import numpy as np

#: Equal-width confidence bins of the expected calibration error.
ECE_BINS = 15


def confusion_matrix(labels, predictions, num_classes, ignore_index=None):
    """Count pixels per (true class, predicted class).

    Args:
        labels: Integer class indices, any shape.
        predictions: Predicted class indices, the shape of ``labels``.
        num_classes: C.
        ignore_index: Label value whose pixels are not counted, or None. Defaults to None.

    Returns:
        int64 ``(C, C)``: ``matrix[t, p]`` pixels of true class ``t`` predicted as ``p``.

    Example:
        >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
        array([[1, 0],
               [1, 1]])
    """
    labels = np.asarray(labels).astype(np.int64).ravel()
    predictions = np.asarray(predictions).astype(np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions must have the same number of pixels. "
            f"Received: {labels.size} labels and {predictions.size} predictions."
        )
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    labels, predictions = labels[keep], predictions[keep]
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes - 1}] (or equal ignore_index). "
            f"Received: min={labels.min()}, max={labels.max()}, ignore_index={ignore_index}."
        )
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def per_class_iou(matrix):
    """IoU of each class from a confusion matrix; None for a class absent from labels and
    predictions.

    Args:
        matrix: ``(C, C)`` confusion matrix (rows true, columns predicted).

    Returns:
        A list of C floats or None.
    """
    matrix = np.asarray(matrix, np.float64)
    intersection = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - intersection
    return [None if u == 0 else float(i / u) for i, u in zip(intersection, union)]


def mean_iou(ious):
    """Mean of the non-None per-class IoUs (0.0 when all are None)."""
    present = [v for v in ious if v is not None]
    return float(np.mean(present)) if present else 0.0


def pixel_accuracy(matrix):
    """Fraction of counted pixels whose argmax class is the true class."""
    matrix = np.asarray(matrix)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else 0.0


def expected_calibration_error(probabilities, labels, ignore_index=None, bins=ECE_BINS):
    """Expected calibration error of the max probability (the confidence in the predicted class).

    ``ECE = Σ_b (n_b / n) · |accuracy_b - confidence_b|`` over ``bins`` equal-width bins of the
    confidence. For sigmoid outputs the confidence is the largest sigmoid, the probability the
    model itself gives to its predicted class.

    Args:
        probabilities: ``(..., C)`` per-pixel probabilities.
        labels: Integer labels of ``probabilities``' shape without the class axis.
        ignore_index: Label value not counted, or None. Defaults to None.
        bins: Number of bins. Defaults to 15.

    Returns:
        A float in [0, 1].
    """
    probabilities = np.asarray(probabilities, np.float64)
    flat = probabilities.reshape(-1, probabilities.shape[-1])
    labels = np.asarray(labels).astype(np.int64).ravel()
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    flat, labels = flat[keep], labels[keep]
    if not labels.size:
        return 0.0
    confidence = flat.max(-1)
    correct = flat.argmax(-1) == labels
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    gap = np.abs(np.bincount(index, correct, bins) - np.bincount(index, confidence, bins))
    return float(gap.sum() / count.sum())


def binary_accuracy(probabilities, labels, ignore_index=None, threshold=0.5):
    """Per-channel accuracy of ``probability > threshold`` against one-hot labels.

    What Keras's ``binary_accuracy`` computes, and what Keras <= 2.2 reported as ``"accuracy"``
    for ``loss="binary_crossentropy"``: with C classes, a model that predicts "no class" everywhere
    already scores ``(C - 1) / C``.

    Args:
        probabilities: ``(..., C)`` probabilities.
        labels: Integer labels without the class axis.
        ignore_index: Label value not counted, or None. Defaults to None.
        threshold: Decision threshold. Defaults to 0.5.

    Returns:
        A float in [0, 1].
    """
    probabilities = np.asarray(probabilities)
    num_classes = probabilities.shape[-1]
    flat = probabilities.reshape(-1, num_classes)
    labels = np.asarray(labels).astype(np.int64).ravel()
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    flat, labels = flat[keep], labels[keep]
    if not labels.size:
        return 0.0
    one_hot = np.eye(num_classes, dtype=bool)[labels]
    return float(np.mean((flat > threshold) == one_hot))


def score(probabilities, labels, num_classes, ignore_index=None):
    """All metrics of one set of predictions.

    Args:
        probabilities: ``(N, H, W, C)`` probabilities (softmax or sigmoid).
        labels: ``(N, H, W)`` integer labels.
        num_classes: C.
        ignore_index: Label value not counted, or None. Defaults to None.

    Returns:
        A dict with ``miou``, ``pixel_accuracy``, ``per_class_iou``, ``binary_accuracy``, ``ece``.
    """
    predictions = np.asarray(probabilities).argmax(-1)
    matrix = confusion_matrix(labels, predictions, num_classes, ignore_index)
    ious = per_class_iou(matrix)
    return {
        "miou": mean_iou(ious),
        "pixel_accuracy": pixel_accuracy(matrix),
        "per_class_iou": ious,
        "binary_accuracy": binary_accuracy(probabilities, labels, ignore_index),
        "ece": expected_calibration_error(probabilities, labels, ignore_index),
    }


def epochs_to_fraction(curve, fraction=0.9):
    """First epoch (1-based) whose value reaches ``fraction`` of the curve's best, or None."""
    if not len(curve):
        return None
    best = max(curve)
    for epoch, value in enumerate(curve, start=1):
        if value >= fraction * best:
            return epoch
    return None
