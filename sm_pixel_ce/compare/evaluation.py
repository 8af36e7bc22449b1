"""Evaluation of segmentation predictions in NumPy: confusion matrix, IoU, accuracy, ECE.

Every variant is scored by the same code from its probabilities ``(N, H, W, C)``: the predicted
class is the argmax over classes (for sigmoid outputs too), so no metric chosen by Keras for a loss
decides the comparison. :class:`StreamingScore` gives the numbers of :func:`score` from batches,
keeping only counts and per-bin sums: ``compare`` never holds all predictions.
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


class StreamingScore:
    """The metrics of :func:`score`, accumulated batch by batch.

    Keeps the confusion matrix, the ECE bins' pixel counts, correct counts and confidence sums,
    and the binary-accuracy match count: summed over batches they are the whole set's.

    Args:
        num_classes: C.
        ignore_index: Label value not counted, or None. Defaults to None.
        calibration: Also accumulate ECE and binary accuracy (else ``result`` has only the
            confusion-matrix metrics). Defaults to True.
        bins: ECE bins. Defaults to 15.

    Example:
        >>> scores = StreamingScore(7)
        >>> for probabilities, labels in batches:
        ...     scores.update(probabilities, labels)
        >>> scores.result()["miou"]
    """

    def __init__(self, num_classes, ignore_index=None, calibration=True, bins=ECE_BINS):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.calibration, self.bins = calibration, bins
        self.matrix = np.zeros((num_classes, num_classes), np.int64)
        self.bin_count = np.zeros(bins, np.int64)
        self.bin_correct = np.zeros(bins, np.float64)
        self.bin_confidence = np.zeros(bins, np.float64)
        self.binary_matches = 0
        self.binary_total = 0

    def update(self, probabilities, labels):
        """Add one batch: ``(..., C)`` probabilities and their integer labels."""
        probabilities = np.asarray(probabilities)
        self.matrix += confusion_matrix(
            labels, probabilities.argmax(-1), self.num_classes, self.ignore_index
        )
        if not self.calibration:
            return
        flat = probabilities.reshape(-1, probabilities.shape[-1])
        labels = np.asarray(labels).astype(np.int64).ravel()
        if self.ignore_index is not None:
            keep = labels != self.ignore_index
            flat, labels = flat[keep], labels[keep]
        if not labels.size:
            return
        one_hot = np.eye(self.num_classes, dtype=bool)[labels]
        self.binary_matches += int(np.count_nonzero((flat > 0.5) == one_hot))
        self.binary_total += one_hot.size
        flat = flat.astype(np.float64)
        confidence = flat.max(-1)
        correct = flat.argmax(-1) == labels
        index = np.minimum((confidence * self.bins).astype(np.int64), self.bins - 1)
        self.bin_count += np.bincount(index, minlength=self.bins)
        self.bin_correct += np.bincount(index, correct, self.bins)
        self.bin_confidence += np.bincount(index, confidence, self.bins)

    def result(self):
        """The dict of :func:`score` (without ``binary_accuracy`` and ``ece`` when
        ``calibration`` is off)."""
        ious = per_class_iou(self.matrix)
        result = {
            "miou": mean_iou(ious),
            "pixel_accuracy": pixel_accuracy(self.matrix),
            "per_class_iou": ious,
        }
        if self.calibration:
            total = self.bin_count.sum()
            gap = np.abs(self.bin_correct - self.bin_confidence).sum()
            result["binary_accuracy"] = (
                float(self.binary_matches / self.binary_total) if self.binary_total else 0.0
            )
            result["ece"] = float(gap / total) if total else 0.0
        return result


def epochs_to_fraction(curve, fraction=0.9):
    """First epoch (1-based) whose value reaches ``fraction`` of the curve's best, or None."""
    if not len(curve):
        return None
    best = max(curve)
    for epoch, value in enumerate(curve, start=1):
        if value >= fraction * best:
            return epoch
    return None
