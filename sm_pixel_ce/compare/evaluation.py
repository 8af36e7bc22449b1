"""Evaluation of ``compare``'s predictions, batch by batch: IoU, accuracy, ECE.

Every variant is scored by the same code from its probabilities ``(N, H, W, C)``: the predicted
class is the argmax over classes (for sigmoid outputs too), so no metric chosen by Keras for a loss
decides the comparison. :class:`StreamingScore` keeps only counts and per-bin sums (``compare``
never holds all predictions) and derives IoU and accuracy with :mod:`sm_pixel_ce.scores`.
"""

import numpy as np

from ..scores import confusion_matrix, scores_from_confusion

#: Equal-width confidence bins of the expected calibration error.
ECE_BINS = 15


class StreamingScore:
    """IoU, pixel accuracy, ECE and binary accuracy of a set of predictions, batch by batch.

    Keeps the confusion matrix, the ECE bins' pixel counts, correct counts and confidence sums,
    and the binary-accuracy match count: summed over batches they are the whole set's.

    * ``miou``, ``pixel_accuracy``, ``per_class_iou``: from the confusion matrix of the argmax
      by :func:`sm_pixel_ce.scores.scores_from_confusion` (None where undefined: a class absent
      from labels and predictions; ``miou`` and ``pixel_accuracy`` when no pixel was counted).
    * ``ece``: ``Σ_b (n_b / n) · |accuracy_b - confidence_b|`` over ``bins`` equal-width bins of
      the confidence, the largest probability (for sigmoid outputs the largest sigmoid).
    * ``binary_accuracy``: per-channel accuracy of ``probability > 0.5`` against one-hot labels,
      what Keras <= 2.2 reported as ``"accuracy"`` for ``loss="binary_crossentropy"``: with C
      classes, predicting "no class" everywhere already scores ``(C - 1) / C``.

    ECE and binary accuracy are 0.0 when no pixel was counted.

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
        """``{"miou", "pixel_accuracy", "per_class_iou", "binary_accuracy", "ece"}`` of every
        batch so far (without ``binary_accuracy`` and ``ece`` when ``calibration`` is off)."""
        scores = scores_from_confusion(self.matrix)
        result = {k: scores[k] for k in ("miou", "pixel_accuracy", "per_class_iou")}
        if self.calibration:
            total = self.bin_count.sum()
            gap = np.abs(self.bin_correct - self.bin_confidence).sum()
            result["binary_accuracy"] = (
                float(self.binary_matches / self.binary_total) if self.binary_total else 0.0
            )
            result["ece"] = float(gap / total) if total else 0.0
        return result


def epochs_to_fraction(curve, fraction=0.9):
    """First epoch (1-based) whose value reaches ``fraction`` of the curve's best, or None.

    An undefined value (None, e.g. an mIoU with no class present) reaches nothing; a curve with
    no defined value gives None.

    Args:
        curve: Values per epoch (floats or None).
        fraction: Fraction of the best value to reach. Defaults to 0.9.

    Returns:
        An int, or None.

    Example:
        >>> epochs_to_fraction([0.1, 0.5, 0.91, 1.0])
        3
    """
    defined = [v for v in curve if v is not None]
    if not defined:
        return None
    best = max(defined)
    for epoch, value in enumerate(curve, start=1):
        if value is not None and value >= fraction * best:
            return epoch
    return None
