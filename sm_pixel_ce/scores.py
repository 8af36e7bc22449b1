"""Segmentation scores in NumPy: one confusion matrix, and every score derived from it in one place.

As MMSegmentation's ``IoUMetric`` (``total_area_to_metrics``): the pixels of the whole set are
counted into one ``(C, C)`` confusion matrix, then :func:`scores_from_confusion` derives per-class
IoU, Dice, precision and recall, the pixel accuracy (aAcc) and the means mIoU, mDice, mAcc and
the frequency-weighted IoU. A ratio whose denominator is zero is undefined (None,
MMSegmentation's NaN) and left out of the means; a mean over no defined class is None too,
never 0. :func:`class_means` recomputes the means over a subset of the classes. Every job that
scores (``compare``, ``evaluate``, the demo, the export check) calls these functions.

:class:`StreamingScore` accumulates them batch by batch, keeping only counts (the confusion
matrix, calibration bins, Boundary IoU counts of :mod:`sm_pixel_ce.boundary`);
:func:`multilabel_counts`, :func:`multilabel_scores` and :class:`MultilabelScore` score K
independent binary channels (sigmoid outputs against multi-label masks). Both streams also keep
the per-image means of segmentation_models_pytorch (``imagewise()``).

segmentation_models_pytorch's ``get_stats`` and score functions (``iou_score``, ``f1_score``,
..., with its reductions ``micro``, ``macro``, ``weighted``, ``micro-imagewise``, ...) are
importable from here under SMP's names; they live in :mod:`sm_pixel_ce.smp_scores`.
"""

import numpy as np

from .boundary import BOUNDARY_RATIO, boundary_counts, boundary_iou
from .smp_scores import (  # noqa: F401  (SMP's names, importable from sm_pixel_ce.scores)
    ImagewiseMeans,
    accuracy,
    balanced_accuracy,
    f1_score,
    false_discovery_rate,
    false_negative_rate,
    false_omission_rate,
    false_positive_rate,
    fbeta_score,
    get_stats,
    image_areas,
    iou_score,
    multilabel_image_counts,
    negative_likelihood_ratio,
    negative_predictive_value,
    positive_likelihood_ratio,
    positive_predictive_value,
    precision,
    recall,
    sensitivity,
    specificity,
)

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
        fwIoU = Σ_c (label_c / Σ label) · IoU_c       (over the classes whose IoU is defined)

    A ratio with a zero denominator is None: IoU and Dice of a class absent from both labels and
    predictions, precision of a class never predicted, recall of a class absent from the labels.
    Means are over the classes whose value is defined, and None when there is none; fwIoU is
    None without a label pixel (a class whose IoU is undefined has no label pixel, so no share).

    Args:
        matrix: ``(C, C)`` confusion matrix, rows true and columns predicted (counts or weights).

    Returns:
        A dict: ``per_class_iou``, ``per_class_dice``, ``per_class_precision``,
        ``per_class_recall`` (lists of C floats or None), ``per_class_pixels`` (the row sums:
        ints for an integer matrix), ``pixel_accuracy`` (aAcc), ``miou``, ``mdice``, ``macc``,
        ``fwiou`` (floats, or None when undefined).

    Raises:
        ValueError: ``matrix`` is not square or has a negative entry.

    Example:
        >>> matrix = confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 3)
        >>> scores = scores_from_confusion(matrix)
        >>> scores["per_class_iou"], scores["miou"], scores["fwiou"]
        ([0.5, 0.5, None], 0.5, 0.5)
    """
    counts = np.asarray(matrix)
    matrix = counts.astype(np.float64)
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
    recalls = _ratios(true_positives, label_area)
    pixels = counts.sum(1).tolist() if counts.dtype.kind in "iub" else label_area.tolist()
    return {
        "per_class_iou": iou,
        "per_class_dice": dice,
        "per_class_precision": _ratios(true_positives, predicted_area),
        "per_class_recall": recalls,
        "per_class_pixels": pixels,
        "pixel_accuracy": _ratio(np.trace(matrix), matrix.sum()),
        "miou": _mean(iou),
        "mdice": _mean(dice),
        "macc": _mean(recalls),
        "fwiou": _frequency_weighted(iou, pixels),
    }


#: :func:`class_means`: each mean and the per-class list it averages.
_CLASS_MEANS = {
    "miou": "per_class_iou",
    "mdice": "per_class_dice",
    "macc": "per_class_recall",
    "mf1": "per_class_f1",
    "boundary_miou": "per_class_boundary_iou",
}


def class_means(scores, classes):
    """The means of ``scores`` recomputed over some classes only (e.g. all but the background).

    Each mean is over the kept classes whose value is defined, None if none is; fwIoU's shares
    are renormalised over the kept classes: ``Σ_{c kept} label_c · IoU_c / Σ_{c kept} label_c``.
    A mean is given for each per-class list ``scores`` holds: ``miou`` (``per_class_iou``),
    ``mdice`` (``per_class_dice``), ``macc`` (``per_class_recall``), ``mf1`` (``per_class_f1``),
    ``boundary_miou`` (``per_class_boundary_iou``), and ``fwiou`` (``per_class_iou`` with
    ``per_class_pixels``). With every class kept the means are the ones ``scores`` holds.

    Args:
        scores: A dict of per-class lists: :func:`scores_from_confusion`,
            :meth:`StreamingScore.result` with ``full=True``, :meth:`MultilabelScore.result`,
            or the same read back from JSON.
        classes: The class indices to keep (any iterable of ints in ``[0, C)``).

    Returns:
        A dict of the means named above (floats, or None when undefined).

    Raises:
        ValueError: ``scores`` has no ``per_class_iou``, or a class is not in ``[0, C)``.

    Example:
        >>> scores = scores_from_confusion([[2, 0], [1, 1]])  # IoU (2 / 3, 1 / 2)
        >>> class_means(scores, [1])["miou"]  # without class 0
        0.5
    """
    if "per_class_iou" not in scores:
        raise ValueError(
            f"scores must hold per-class lists (per_class_iou, ...). "
            f"Received: keys={sorted(scores)}"
        )
    count = len(scores["per_class_iou"])
    classes = list(classes)
    wrong = [c for c in classes if not _is_index(c, count)]
    if wrong:
        raise ValueError(
            f"classes must be class indices in [0, {count - 1}]. Received: classes={classes}"
        )
    kept = sorted(set(int(c) for c in classes))
    means = {
        mean: _mean([scores[per_class][c] for c in kept])
        for mean, per_class in _CLASS_MEANS.items()
        if per_class in scores
    }
    if "per_class_pixels" in scores:
        means["fwiou"] = _frequency_weighted(
            [scores["per_class_iou"][c] for c in kept],
            [scores["per_class_pixels"][c] for c in kept],
        )
    return means


class StreamingScore:
    """Every score of a set of predictions, batch by batch, keeping only counts.

    Keeps the confusion matrix of the argmax, the calibration bins' pixel counts, correct
    counts and confidence sums, the Brier and binary-accuracy sums and, with ``boundary``, the
    Boundary IoU counts: summed over batches they are the whole set's, so memory stays flat.

    * ``miou``, ``pixel_accuracy``, ``per_class_iou`` and, with ``full=True``, every other
      score of :func:`scores_from_confusion` (None where undefined: a class absent from labels
      and predictions; ``miou`` and ``pixel_accuracy`` when no pixel was counted).
    * ``ece``: ``Σ_b (n_b / n) · |accuracy_b - confidence_b|`` over ``bins`` equal-width bins of
      the confidence, the largest probability (for sigmoid outputs the largest sigmoid).
    * ``binary_accuracy``: per-channel accuracy of ``probability > 0.5`` against one-hot labels,
      what Keras <= 2.2 reported as ``"accuracy"`` for ``loss="binary_crossentropy"``: with C
      classes, predicting "no class" everywhere already scores ``(C - 1) / C``.
    * ``brier`` (``full=True``): the mean over counted pixels of ``Σ_c (p_c - y_c)²``, ``y`` the
      one-hot label (from 0, perfect and certain, to 2, certain and wrong).
    * ``per_class_boundary_iou``, ``boundary_miou`` (with ``boundary``): Boundary IoU of the
      counts summed over images, each image's boundaries drawn at its own width
      (:func:`sm_pixel_ce.boundary.boundary_counts`).

    ECE and binary accuracy are 0.0 when no pixel was counted (as ``compare`` reports them);
    the Brier score is then None.

    Args:
        num_classes: C.
        ignore_index: Label value not counted, or None. Defaults to None.
        calibration: Also accumulate ECE, binary accuracy and the Brier score (else ``result``
            has only the confusion-matrix and boundary scores). Defaults to True.
        bins: ECE bins. Defaults to 15.
        boundary: Also accumulate Boundary IoU; the labels must then be ``(N, H, W)``.
            Defaults to False.
        boundary_ratio: Boundary width as a fraction of each image's diagonal. Defaults to 0.02.
        image_counts: Also keep, for every image, its per-class true positive, false positive
            and false negative pixels (:meth:`image_counts`; ``3 C`` integers an image, for the
            paired bootstrap of :mod:`sm_pixel_ce.compare.statistics`). Defaults to False.

    Example:
        >>> scores = StreamingScore(7, ignore_index=255, boundary=True)
        >>> for probabilities, labels in batches:
        ...     per_image_miou = scores.update(probabilities, labels)
        >>> scores.result()["miou"], scores.result(full=True)["fwiou"]
    """

    def __init__(
        self,
        num_classes,
        ignore_index=None,
        calibration=True,
        bins=ECE_BINS,
        boundary=False,
        boundary_ratio=BOUNDARY_RATIO,
        image_counts=False,
    ):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.keep_image_counts = image_counts
        self._image_counts = []
        self.calibration, self.bins = calibration, bins
        self.boundary, self.boundary_ratio = boundary, boundary_ratio
        self.matrix = np.zeros((num_classes, num_classes), np.int64)
        self.bin_count = np.zeros(bins, np.int64)
        self.bin_correct = np.zeros(bins, np.float64)
        self.bin_confidence = np.zeros(bins, np.float64)
        self.binary_matches = 0
        self.binary_total = 0
        self.brier_sum = 0.0
        self.boundary_intersection = np.zeros(num_classes, np.int64)
        self.boundary_union = np.zeros(num_classes, np.int64)
        self._imagewise = ImagewiseMeans()

    def update(self, probabilities, labels):
        """Add one batch: ``(N, ..., C)`` probabilities and their ``(N, ...)`` integer labels.

        The first axis indexes the images (``(N, H, W)`` labels for Boundary IoU).

        Returns:
            The mIoU of each of the N images on its own (a list of floats, None for an image
            whose classes are all undefined, e.g. only ignored pixels).
        """
        probabilities = np.asarray(probabilities)
        labels = np.asarray(labels)
        if probabilities.ndim < 1 or probabilities.shape[-1] != self.num_classes:
            raise ValueError(
                f"probabilities must be (N, ..., {self.num_classes}). "
                f"Received: probabilities.shape={probabilities.shape}"
            )
        if self.boundary and (labels.ndim != 3 or labels.shape != probabilities.shape[:-1]):
            raise ValueError(
                f"Boundary IoU needs (N, H, W) labels and (N, H, W, C) probabilities. Received: "
                f"labels.shape={labels.shape}, probabilities.shape={probabilities.shape}"
            )
        predictions = probabilities.argmax(-1)
        self.matrix += confusion_matrix(labels, predictions, self.num_classes, self.ignore_index)
        hits, label_area, predicted_area = image_areas(
            labels, predictions, self.num_classes, self.ignore_index
        )
        per_image = _image_miou(hits, label_area, predicted_area)
        counted = label_area.sum(1, keepdims=True)
        self._imagewise.update(
            hits,
            predicted_area - hits,
            label_area - hits,
            counted - label_area - predicted_area + hits,
        )
        if self.keep_image_counts:
            self._image_counts.append(
                np.stack([hits, predicted_area - hits, label_area - hits], axis=1)
            )
        if self.boundary:
            self._add_boundaries(labels, predictions)
        if self.calibration:
            self._add_calibration(probabilities, labels, predictions)
        return per_image

    def result(self, full=False):
        """The scores of every batch so far.

        Args:
            full: Every score (see the class), else ``compare``'s summary: ``miou``,
                ``pixel_accuracy``, ``per_class_iou``, ``binary_accuracy`` and ``ece``.
                Either way the Boundary IoU scores when ``boundary`` is on. Defaults to False.

        Returns:
            A dict: the confusion-matrix scores (:func:`scores_from_confusion`: all of them with
            ``full``, ``per_class_pixels`` the truth pixels of each class), with ``calibration``
            ``binary_accuracy``, ``ece`` (and ``brier`` with ``full``), with ``boundary``
            ``per_class_boundary_iou`` and ``boundary_miou``.
        """
        scores = scores_from_confusion(self.matrix)
        if full:
            result = scores
        else:
            result = {k: scores[k] for k in ("miou", "pixel_accuracy", "per_class_iou")}
        if self.calibration:
            total = self.bin_count.sum()
            gap = np.abs(self.bin_correct - self.bin_confidence).sum()
            result["binary_accuracy"] = (
                float(self.binary_matches / self.binary_total) if self.binary_total else 0.0
            )
            result["ece"] = float(gap / total) if total else 0.0
            if full:
                result["brier"] = float(self.brier_sum / total) if total else None
        if self.boundary:
            iou = boundary_iou(self.boundary_intersection, self.boundary_union)
            result["per_class_boundary_iou"] = iou
            result["boundary_miou"] = _mean(iou)
        return result

    def imagewise(self):
        """segmentation_models_pytorch's per-image means of every image so far: IoU and F1 under
        its ``"macro-imagewise"`` and ``"micro-imagewise"`` reductions, each image's scores
        averaged over the images (:class:`~sm_pixel_ce.smp_scores.ImagewiseMeans`, SMP's
        default ``zero_division=1.0``: a class in neither an image's truth nor its prediction
        scores 1).

        Returns:
            ``{"iou_macro_imagewise", "iou_micro_imagewise", "f1_macro_imagewise",
            "f1_micro_imagewise", "images", "zero_division"}`` (None before any image).
        """
        return self._imagewise.result()

    def image_counts(self):
        """Per image, in the order of the batches: per class ``[tp, fp, fn]`` over the counted
        (non-ignored) pixels of the argmax.

        Returns:
            int64 ``(n_images, 3, C)``: ``[:, 0]`` true positives, ``[:, 1]`` false positives
            (predicted as the class, another true class), ``[:, 2]`` false negatives. Summed
            over the images, ``tp + fn`` and ``tp + fp`` are the confusion matrix's row and
            column sums.

        Raises:
            ValueError: the score was made without ``image_counts=True``.

        Example:
            >>> scores = StreamingScore(2, image_counts=True)
            >>> _ = scores.update(np.eye(2)[[[0, 1], [1, 1]]], np.array([[0, 0], [1, 1]]))
            >>> scores.image_counts()[0].tolist()  # image 0: tp, fp, fn of classes 0 and 1
            [[1, 0], [0, 1], [1, 0]]
        """
        if not self.keep_image_counts:
            raise ValueError(
                "image_counts needs StreamingScore(..., image_counts=True). "
                "Received: image_counts=False"
            )
        if not self._image_counts:
            return np.zeros((0, 3, self.num_classes), np.int64)
        return np.concatenate(self._image_counts).astype(np.int64)

    def calibration_bins(self):
        """The reliability diagram's bins: ``bins`` equal-width bins of the confidence.

        Returns:
            A list of ``{"lower", "upper", "pixels", "accuracy", "confidence"}``: the bin's
            confidence range, its counted pixels, the fraction of them predicted right and
            their mean confidence (None for an empty bin). The pixels sum to the counted pixels.

        Raises:
            ValueError: ``calibration`` is off (nothing was accumulated).
        """
        if not self.calibration:
            raise ValueError(
                "calibration_bins needs the calibration counts. Received: calibration=False"
            )
        return [
            {
                "lower": b / self.bins,
                "upper": (b + 1) / self.bins,
                "pixels": int(count),
                "accuracy": _ratio(correct, count),
                "confidence": _ratio(confidence, count),
            }
            for b, (count, correct, confidence) in enumerate(
                zip(self.bin_count, self.bin_correct, self.bin_confidence)
            )
        ]

    def _add_boundaries(self, labels, predictions):
        compact = predictions.astype(_smallest_uint(self.num_classes))
        for truth, predicted in zip(labels, compact):
            intersection, union = boundary_counts(
                truth, predicted, self.num_classes, self.ignore_index, self.boundary_ratio
            )
            self.boundary_intersection += intersection
            self.boundary_union += union

    def _add_calibration(self, probabilities, labels, predictions):
        flat = probabilities.reshape(-1, probabilities.shape[-1])
        labels, predictions = labels.astype(np.int64).ravel(), predictions.ravel()
        if not labels.size:
            return
        keep = None if self.ignore_index is None else labels != self.ignore_index
        confidence, correct = [], []
        # A slice of pixels at a time, so that the copies stay small for large images; the
        # per-pixel confidences are binned over the whole batch at once.
        step = max(1, _SLICE // self.num_classes)
        for start in range(0, len(labels), step):
            rows = slice(start, start + step)
            part, truth, predicted = flat[rows], labels[rows], predictions[rows]
            if keep is not None:
                part, truth, predicted = part[keep[rows]], truth[keep[rows]], predicted[keep[rows]]
            pixels = np.arange(len(truth))
            true_probability = part[pixels, truth].astype(np.float64)
            # (p > 0.5) == one_hot(y) holds on the channels c != y where p_c <= 0.5 and on y
            # where p_y > 0.5: C - 1 - above + 2·[p_y > 0.5] per pixel, with no one-hot array.
            above = np.count_nonzero(part > 0.5)
            true_above = np.count_nonzero(true_probability > 0.5)
            self.binary_matches += part.size - len(truth) - above + 2 * true_above
            self.binary_total += part.size
            # Σ_c (p_c - y_c)² = Σ_c p_c² - 2 p_y + 1
            squares = part.astype(np.float64).ravel()
            self.brier_sum += float(squares @ squares - 2 * true_probability.sum() + len(truth))
            confidence.append(part[pixels, predicted].astype(np.float64))
            correct.append(predicted == truth)
        confidence, correct = np.concatenate(confidence), np.concatenate(correct)
        index = np.minimum((confidence * self.bins).astype(np.int64), self.bins - 1)
        self.bin_count += np.bincount(index, minlength=self.bins)
        self.bin_correct += np.bincount(index, correct, self.bins)
        self.bin_confidence += np.bincount(index, confidence, self.bins)


#: Probabilities converted to float64 at a time by :class:`StreamingScore` (32 MiB).
_SLICE = 1 << 22


def multilabel_counts(truth, predicted, valid=None):
    """Per channel, the true positive, false positive and false negative pixels.

    Args:
        truth: bool ``(..., K)``: which of the K labels each pixel has.
        predicted: bool ``(..., K)``, the shape of ``truth``.
        valid: bool ``(...)`` (or broadcastable to it): the pixels counted; None for all.
            Defaults to None.

    Returns:
        ``(tp, fp, fn)``, three int64 ``(K,)`` arrays.

    Raises:
        ValueError: the shapes differ, or ``valid`` does not fit them.

    Example:
        >>> truth = np.array([[True, False], [True, True]])
        >>> multilabel_counts(truth, np.array([[True, True], [False, True]]))
        (array([1, 1]), array([0, 1]), array([1, 0]))
    """
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    if truth.shape != predicted.shape or truth.ndim < 1:
        raise ValueError(
            f"truth and predicted must both be (..., K). "
            f"Received: truth.shape={truth.shape}, predicted.shape={predicted.shape}"
        )
    if valid is not None:
        valid = np.asarray(valid, bool)
        try:
            valid = np.broadcast_to(valid, truth.shape[:-1])
        except ValueError:
            raise ValueError(
                f"valid must be (...) of truth's (..., K). "
                f"Received: valid.shape={valid.shape}, truth.shape={truth.shape}"
            ) from None
        valid = valid[None]
    tp, fp, fn, _ = multilabel_image_counts(truth[None], predicted[None], valid)
    return tp[0], fp[0], fn[0]


def multilabel_scores(tp, fp, fn):
    """Per-channel IoU and F1 of multi-label counts, and their means.

    ``IoU_k = tp_k / (tp_k + fp_k + fn_k)`` and ``F1_k = 2 tp_k / (2 tp_k + fp_k + fn_k)``
    (the Dice of the channel), None for a channel neither true nor predicted anywhere
    (``tp + fp + fn = 0``) and left out of ``miou`` and ``mf1`` (None if no channel is defined).

    Args:
        tp: ``(K,)`` true positive counts (:func:`multilabel_counts`).
        fp: ``(K,)`` false positive counts.
        fn: ``(K,)`` false negative counts.

    Returns:
        ``{"per_class_iou", "per_class_f1", "miou", "mf1"}``.

    Example:
        >>> multilabel_scores(np.array([1, 0]), np.array([1, 0]), np.array([0, 0]))["per_class_iou"]
        [0.5, None]
    """
    tp, fp, fn = (np.asarray(v, np.float64) for v in (tp, fp, fn))
    iou = _ratios(tp, tp + fp + fn)
    f1 = _ratios(2 * tp, 2 * tp + fp + fn)
    return {"per_class_iou": iou, "per_class_f1": f1, "miou": _mean(iou), "mf1": _mean(f1)}


class MultilabelScore:
    """Per-channel IoU and F1 of multi-label predictions, batch by batch, keeping only counts.

    A channel is predicted where its probability is above ``threshold``; the counts of every
    batch are summed (:func:`multilabel_counts`) and scored by :func:`multilabel_scores`.

    Args:
        num_classes: K, the channels.
        threshold: A channel is predicted where its probability is > ``threshold``.
            Defaults to 0.5.

    Example:
        >>> scores = MultilabelScore(3)
        >>> for probabilities, truth in batches:  # (N, H, W, 3) floats and bools
        ...     per_image_miou = scores.update(probabilities, truth)
        >>> scores.result()["mf1"]
    """

    def __init__(self, num_classes, threshold=0.5):
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must lie in [0, 1]. Received: threshold={threshold}")
        self.num_classes, self.threshold = num_classes, threshold
        self.tp = np.zeros(num_classes, np.int64)
        self.fp = np.zeros(num_classes, np.int64)
        self.fn = np.zeros(num_classes, np.int64)
        self._imagewise = ImagewiseMeans()

    def update(self, probabilities, truth, valid=None):
        """Add one batch.

        Args:
            probabilities: ``(N, H, W, K)`` (any ``(N, ..., K)``) per-channel probabilities.
            truth: bool, the shape of ``probabilities``.
            valid: bool ``(N, H, W)``: the pixels counted; None for all. Defaults to None.

        Returns:
            The mIoU of each of the N images on its own (a list of floats or None).
        """
        probabilities, truth = np.asarray(probabilities), np.asarray(truth, bool)
        if probabilities.shape[-1:] != (self.num_classes,) or truth.shape != probabilities.shape:
            raise ValueError(
                f"probabilities and truth must be (N, ..., {self.num_classes}). Received: "
                f"probabilities.shape={probabilities.shape}, truth.shape={truth.shape}"
            )
        if valid is not None and np.shape(valid) != truth.shape[:-1]:
            raise ValueError(
                f"valid must be (N, ...) of truth's (N, ..., K). "
                f"Received: valid.shape={np.shape(valid)}, truth.shape={truth.shape}"
            )
        predicted = probabilities > self.threshold
        valid = None if valid is None else np.asarray(valid, bool)
        tp, fp, fn, pixels = multilabel_image_counts(truth, predicted, valid)
        self.tp += tp.sum(0)
        self.fp += fp.sum(0)
        self.fn += fn.sum(0)
        self._imagewise.update(tp, fp, fn, pixels[:, None] - tp - fp - fn)
        return [multilabel_scores(*counts)["miou"] for counts in zip(tp, fp, fn)]

    def imagewise(self):
        """:meth:`StreamingScore.imagewise` of the channels: SMP's ``"macro-imagewise"`` and
        ``"micro-imagewise"`` IoU and F1 of every image so far (``mode="multilabel"``)."""
        return self._imagewise.result()

    def result(self):
        """``{"per_class_iou", "per_class_f1", "miou", "mf1", "per_class_pixels"}`` of every
        batch so far, ``per_class_pixels`` the truth pixels of each channel (``tp + fn``)."""
        scores = multilabel_scores(self.tp, self.fp, self.fn)
        scores["per_class_pixels"] = (self.tp + self.fn).tolist()
        return scores


def _image_miou(true_positives, label_area, predicted_area):
    return [
        _mean(_ratios(tp, union))
        for tp, union in zip(true_positives, label_area + predicted_area - true_positives)
    ]


def _smallest_uint(num_classes):
    return np.uint8 if num_classes <= 256 else np.uint16 if num_classes <= 65536 else np.int64


def _ratio(numerator, denominator):
    return None if denominator == 0 else float(numerator / denominator)


def _ratios(numerators, denominators):
    return [_ratio(n, d) for n, d in zip(numerators, denominators)]


def _mean(values):
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _frequency_weighted(values, pixels):
    total = sum(pixels)
    if total == 0:
        return None
    return float(sum(p * v for p, v in zip(pixels, values) if v is not None) / total)


def _is_index(value, count):
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and (0 <= value < count)
    )
