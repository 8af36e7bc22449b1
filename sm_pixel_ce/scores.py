"""Segmentation scores in NumPy: one confusion matrix, and every score derived from it in one place.

As MMSegmentation's ``IoUMetric`` (``total_area_to_metrics``): the pixels of the whole set are
counted into one ``(C, C)`` confusion matrix, then :func:`scores_from_confusion` derives per-class
IoU, Dice, precision and recall, the pixel accuracy (aAcc) and the means mIoU, mDice and mAcc.
A ratio whose denominator is zero is undefined (None, MMSegmentation's NaN) and left out of the
means; a mean over no defined class is None too, never 0. Every job that scores (``compare``,
the demo, the export check) calls these two functions.
"""

import numpy as np


def confusion_matrix(labels, predictions, num_classes, ignore_index=None):
    """Count pixels per (true class, predicted class).

    Args:
        labels: Integer class indices, any shape.
        predictions: Predicted class indices, the shape of ``labels``.
        num_classes: C.
        ignore_index: Label value whose pixels are not counted, or None. Defaults to None.

    Returns:
        int64 ``(C, C)``: ``matrix[t, p]`` pixels of true class ``t`` predicted as ``p``.

    Raises:
        ValueError: ``labels`` and ``predictions`` differ in size, or a counted label is not in
            ``[0, C)``.

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


def scores_from_confusion(matrix):
    """Every segmentation score of a confusion matrix, as MMSegmentation's ``IoUMetric``.

    With ``tp_c`` the diagonal, ``label_c`` the row sums and ``pred_c`` the column sums::

        IoU_c = tp_c / (label_c + pred_c - tp_c)      Dice_c = 2 tp_c / (label_c + pred_c)
        precision_c = tp_c / pred_c                   recall_c = tp_c / label_c  (per-class Acc)
        aAcc = Σ tp_c / Σ label_c       mIoU, mDice, mAcc = means of the defined IoU, Dice, recall

    A ratio with a zero denominator is None: IoU and Dice of a class absent from both labels and
    predictions, precision of a class never predicted, recall of a class absent from the labels.
    Means are over the classes whose value is defined, and None when there is none.

    Args:
        matrix: ``(C, C)`` confusion matrix, rows true and columns predicted (counts or weights).

    Returns:
        A dict: ``per_class_iou``, ``per_class_dice``, ``per_class_precision``,
        ``per_class_recall`` (lists of C floats or None), ``pixel_accuracy`` (aAcc), ``miou``,
        ``mdice``, ``macc`` (floats, or None when undefined).

    Raises:
        ValueError: ``matrix`` is not square or has a negative entry.

    Example:
        >>> matrix = confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 3)
        >>> scores = scores_from_confusion(matrix)
        >>> scores["per_class_iou"], scores["miou"]
        ([0.5, 0.5, None], 0.5)
    """
    matrix = np.asarray(matrix, np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"the confusion matrix must be square, (C, C). Received: shape={matrix.shape}"
        )
    if (matrix < 0).any():
        raise ValueError(
            f"the confusion matrix must count pixels (no negative entry). "
            f"Received: min={matrix.min()}"
        )
    true_positives = np.diag(matrix)
    label_area, predicted_area = matrix.sum(1), matrix.sum(0)
    iou = _ratios(true_positives, label_area + predicted_area - true_positives)
    dice = _ratios(2 * true_positives, label_area + predicted_area)
    recall = _ratios(true_positives, label_area)
    return {
        "per_class_iou": iou,
        "per_class_dice": dice,
        "per_class_precision": _ratios(true_positives, predicted_area),
        "per_class_recall": recall,
        "pixel_accuracy": _ratio(np.trace(matrix), matrix.sum()),
        "miou": _mean(iou),
        "mdice": _mean(dice),
        "macc": _mean(recall),
    }


def _ratio(numerator, denominator):
    return None if denominator == 0 else float(numerator / denominator)


def _ratios(numerators, denominators):
    return [_ratio(n, d) for n, d in zip(numerators, denominators)]


def _mean(values):
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None
