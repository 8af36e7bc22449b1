"""segmentation_models_pytorch's scores, under its names and arguments, in NumPy.

As ``smp.metrics`` (SMP 0.5, ``metrics/functional.py``): :func:`get_stats` counts, per image and
per class, the true positive, false positive, false negative and true negative pixels; each
score function (:func:`iou_score`, :func:`f1_score`, :func:`fbeta_score`, :func:`accuracy`,
:func:`precision`, :func:`recall`, ...) takes those four ``(N, C)`` counts and a ``reduction``:

* ``"micro"``: the counts summed over images and classes, then scored;
* ``"macro"``: summed over images, scored per class, averaged over the classes;
* ``"weighted"``: as ``"macro"``, the average weighted by ``class_weights`` (normalised to sum 1);
* ``"micro-imagewise"``: summed over the classes of each image, scored per image, averaged over
  the images;
* ``"macro-imagewise"``: scored per image and class, averaged over the classes and the images;
* ``"weighted-imagewise"``: as ``"macro-imagewise"``, times the normalised ``class_weights`` (SMP's
  formula: ``mean_c(w_c · mean_n score_nc)``, so the weighted mean divided by C);
* ``"none"`` or None: the ``(N, C)`` scores.

A score whose denominator is zero (e.g. IoU of a class absent from an image's truth and
prediction) is ``zero_division`` (1.0 by default; ``"warn"``: 0 and a warning), as in SMP.

Where we differ from SMP 0.5 (examples/scores.md): layouts are channels-last (``axis=-1``; pass
``axis=1`` for SMP's ``(N, C, ...)``); ``"micro"`` applies ``zero_division`` too (SMP returns NaN
there); ``threshold`` may be one value per class; values SMP would count silently wrong (a class
index outside ``[0, num_classes)``, a non-0/1 value in binary or multilabel mode without a
threshold, a binary input with more than one channel, class weights of the wrong length) raise
``ValueError``; counts come back as NumPy int64, scores as floats or NumPy arrays.

:class:`ImagewiseMeans` keeps the imagewise IoU and F1 of a stream of images (``evaluate``).
"""

import numbers
import warnings

import numpy as np

#: :func:`get_stats`'s modes (SMP's ``constants``).
MODES = ("binary", "multiclass", "multilabel")
#: The score functions' reductions; None is ``"none"``.
REDUCTIONS = (
    "micro",
    "macro",
    "weighted",
    "micro-imagewise",
    "macro-imagewise",
    "weighted-imagewise",
    "none",
    None,
)


def get_stats(output, target, mode, ignore_index=None, threshold=None, num_classes=None, axis=-1):
    """Per image and class, the true positive, false positive, false negative and true negative
    pixels, as SMP's ``get_stats``.

    Shapes, channels-last (``axis=-1``; SMP's own layout is ``axis=1``):

    * ``"binary"``: ``(N, ..., 1)`` output and target; C = 1.
    * ``"multilabel"``: ``(N, ..., C)`` output and target, one 0/1 plane per class.
    * ``"multiclass"``: ``(N, ...)`` integer class indices (the argmax of the probabilities); no
      class axis, so ``axis`` plays no part.

    In ``"binary"`` and ``"multilabel"`` mode output and target are 0/1 (or bool), or, with
    ``threshold``, both are binarised as ``value >= threshold`` (SMP's rule, the target too).
    In ``"multiclass"`` mode the pixels whose target is ``ignore_index`` are not counted.

    Args:
        output: Predictions: integers (or bool), or probabilities with ``threshold``. A NumPy
            array or a TensorFlow, JAX or PyTorch tensor (read on the CPU).
        target: Integer truth, the shape of ``output``.
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        ignore_index: ``"multiclass"`` only: a target value outside ``[0, num_classes)`` whose
            pixels are not counted, or None. Defaults to None.
        threshold: ``"binary"``/``"multilabel"`` only: the binarisation threshold, a number or
            one per class; None for 0/1 inputs. Defaults to None.
        num_classes: ``"multiclass"`` only (required there): C. Defaults to None.
        axis: The class axis of ``"binary"``/``"multilabel"`` inputs. Defaults to -1.

    Returns:
        ``(tp, fp, fn, tn)``: four int64 ``(N, C)`` arrays; ``tp + fp + fn + tn`` is each
        image's count of counted pixels.

    Raises:
        ValueError: A mode, dtype, shape, option or value SMP rejects, or one it would count
            silently wrong (see the module).

    Example:
        >>> output = np.array([[0, 1, 1, 2]])  # one image of 4 pixels, C = 3
        >>> target = np.array([[0, 1, 2, 255]])
        >>> tp, fp, fn, tn = get_stats(output, target, "multiclass", 255, num_classes=3)
        >>> tp.tolist(), fp.tolist(), fn.tolist(), tn.tolist()
        ([[1, 1, 0]], [[0, 1, 0]], [[0, 0, 1]], [[2, 1, 2]])
    """
    output, target = _as_numpy(output), _as_numpy(target)
    floating = output.dtype.kind not in "biu"
    if mode not in MODES:
        raise ValueError(
            f"mode must be 'binary', 'multiclass' or 'multilabel' (SMP's modes). "
            f"Received: mode={mode!r}"
        )
    if target.dtype.kind not in "biu":
        raise ValueError(
            f"target must hold integers (class indices, or 0/1 planes), as SMP's get_stats "
            f"takes. Received: target.dtype={target.dtype}"
        )
    if output.shape != target.shape:
        raise ValueError(
            f"output and target must have the same shape. "
            f"Received: output.shape={output.shape}, target.shape={target.shape}"
        )
    if mode == "multiclass":
        if floating:
            raise ValueError(
                f"mode='multiclass' takes class indices as output (the argmax along the class "
                f"axis), not probabilities. Received: output.dtype={output.dtype}"
            )
        if threshold is not None:
            raise ValueError(
                f"threshold applies to 'binary' and 'multilabel' modes, not 'multiclass' (its "
                f"output is class indices). Received: threshold={threshold!r}"
            )
        return _multiclass_stats(output, target, _class_count(num_classes), ignore_index)
    if ignore_index is not None:
        raise ValueError(
            f"ignore_index is not supported in mode={mode!r} (as in SMP): leave the pixels out, "
            f"or use mode='multiclass'. Received: ignore_index={ignore_index!r}"
        )
    if floating and threshold is None:
        raise ValueError(
            f"a {output.dtype} output needs threshold= to be binarised (e.g. 0.5 on "
            f"probabilities) in mode={mode!r}. Received: threshold=None"
        )
    return _multilabel_stats(output, target, mode, threshold, axis)


def image_areas(labels, predictions, num_classes, ignore_index=None):
    """Per image (the first axis) and class: true positives, truth and predicted pixels.

    Args:
        labels: ``(N, ...)`` class indices, in ``[0, C)`` or ``ignore_index``.
        predictions: ``(N, ...)`` class indices in ``[0, C)``.
        num_classes: C.
        ignore_index: Label whose pixels are not counted, or None. Defaults to None.

    Returns:
        Three int64 ``(N, C)`` arrays: ``tp``, truth pixels (``tp + fn``), predicted pixels
        (``tp + fp``).

    Example:
        >>> hits, truth, predicted = image_areas(np.array([[0, 1]]), np.array([[1, 1]]), 2)
        >>> hits.tolist(), truth.tolist(), predicted.tolist()
        ([[0, 1]], [[1, 1]], [[0, 2]])
    """
    images = labels.shape[0] if labels.ndim else 1
    labels = labels.astype(np.int64).reshape(images, -1)
    predictions = predictions.astype(np.int64).reshape(images, -1)
    offsets = (np.arange(images) * num_classes)[:, None]
    if ignore_index is None:
        truth, predicted = (labels + offsets).ravel(), (predictions + offsets).ravel()
    else:
        keep = labels != ignore_index
        truth, predicted = (labels + offsets)[keep], (predictions + offsets)[keep]
    size = images * num_classes
    hits = np.bincount(truth[truth == predicted], minlength=size)
    return (
        hits.reshape(images, num_classes),
        np.bincount(truth, minlength=size).reshape(images, num_classes),
        np.bincount(predicted, minlength=size).reshape(images, num_classes),
    )


def multilabel_image_counts(truth, predicted, valid=None):
    """Per image (the first axis) and channel: true positive, false positive and false negative
    pixels, and each image's counted pixels.

    Args:
        truth: bool ``(N, ..., K)``.
        predicted: bool, the shape of ``truth``.
        valid: bool ``(N, ...)``: the pixels counted; None for all. Defaults to None.

    Returns:
        ``(tp, fp, fn, pixels)``: three int64 ``(N, K)`` arrays and int64 ``(N,)``.

    Example:
        >>> truth = np.array([[[True, False], [True, True]]])  # 1 image, 2 pixels, K = 2
        >>> predicted = np.array([[[True, True], [False, True]]])
        >>> [a.tolist() for a in multilabel_image_counts(truth, predicted)]
        [[[1, 1]], [[0, 1]], [[1, 0]], [2]]
    """
    images, channels = truth.shape[0], truth.shape[-1]
    if valid is None:
        pixels = np.full(images, int(np.prod(truth.shape[1:-1])), np.int64)
    else:
        truth, predicted = truth & valid[..., None], predicted & valid[..., None]
        pixels = np.count_nonzero(valid.reshape(images, -1), axis=1).astype(np.int64)
    truth = truth.reshape(images, -1, channels)
    predicted = predicted.reshape(images, -1, channels)
    return (
        np.count_nonzero(truth & predicted, axis=1).astype(np.int64),
        np.count_nonzero(predicted & ~truth, axis=1).astype(np.int64),
        np.count_nonzero(truth & ~predicted, axis=1).astype(np.int64),
        pixels,
    )


def _multiclass_stats(output, target, num_classes, ignore_index):
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index must lie outside the classes [0, {num_classes - 1}] (e.g. -1 or "
            f"255), as in SMP; with ignore_index=0, subtract 1 from target and output. "
            f"Received: ignore_index={ignore_index}"
        )
    if output.ndim < 1:
        raise ValueError(
            "mode='multiclass' takes (N, ...) class indices. Received: output.shape=()"
        )
    labels, predictions = target.astype(np.int64), output.astype(np.int64)
    counted = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    for name, values in (("target", labels), ("output", predictions)):
        kept = values[counted]
        if kept.size and (kept.min() < 0 or kept.max() >= num_classes):
            raise ValueError(
                f"{name} must hold class indices in [0, {num_classes - 1}] (or ignore_index in "
                f"target): SMP would leave the others out of tp, fp and fn and count them as "
                f"true negatives. Received: {name} min={kept.min()}, max={kept.max()}, "
                f"num_classes={num_classes}, ignore_index={ignore_index}"
            )
    tp, truth, predicted = image_areas(labels, predictions, num_classes, ignore_index)
    pixels = np.count_nonzero(counted.reshape(len(labels), -1), axis=1)[:, None]
    return tp, predicted - tp, truth - tp, pixels - truth - predicted + tp


def _multilabel_stats(output, target, mode, threshold, axis):
    if output.ndim < 2 or not isinstance(axis, numbers.Integral):
        raise ValueError(
            f"mode={mode!r} takes (N, ..., C) inputs (channels-last; axis=1 for SMP's "
            f"(N, C, ...)), the class axis not the first. "
            f"Received: output.shape={output.shape}, axis={axis!r}"
        )
    if not -output.ndim <= axis < output.ndim or axis % output.ndim == 0:
        raise ValueError(
            f"axis must name the class axis of the (N, ..., C) inputs, not the images' axis 0: "
            f"-1 (channels-last) or 1 (SMP's (N, C, ...)). "
            f"Received: axis={axis}, output.shape={output.shape}"
        )
    output, target = np.moveaxis(output, axis, -1), np.moveaxis(target, axis, -1)
    channels = output.shape[-1]
    if mode == "binary" and channels != 1:
        raise ValueError(
            f"mode='binary' takes one channel on the class axis (axis={axis}); for C > 1 "
            f"planes use mode='multilabel', for (N, H, W) masks add the axis (x[..., None]). "
            f"Received: output.shape={output.shape}"
        )
    if threshold is None:
        for name, values in (("output", output), ("target", target)):
            if values.dtype != bool and values.size and not np.isin(values, (0, 1)).all():
                raise ValueError(
                    f"mode={mode!r} counts 0/1 values; pass threshold= to binarise. "
                    f"Received: {name} values {np.unique(values)[:6].tolist()}"
                )
        truth, predicted = target.astype(bool), output.astype(bool)
    else:
        threshold = _thresholds(threshold, channels)
        if output.dtype.kind == "f" and np.isnan(output).any():
            raise ValueError(
                f"output must be numbers to threshold. Received: {np.isnan(output).sum()} NaN "
                f"values in output of shape {output.shape}"
            )
        truth, predicted = target >= threshold, output >= threshold
    tp, fp, fn, pixels = multilabel_image_counts(truth, predicted)
    return tp, fp, fn, pixels[:, None] - tp - fp - fn


def _thresholds(threshold, channels):
    values = _as_numpy(threshold)
    if values.dtype.kind not in "iuf" or values.ndim > 1 or values.size not in (1, channels):
        raise ValueError(
            f"threshold must be a number, or one number per class ({channels}). "
            f"Received: threshold={threshold!r}"
        )
    return values.astype(np.float64)


def _class_count(num_classes):
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool):
        raise ValueError(
            f"mode='multiclass' needs num_classes, a positive integer (class values in "
            f"[0, num_classes)). Received: num_classes={num_classes!r}"
        )
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1. Received: num_classes={num_classes}")
    return int(num_classes)


def _as_numpy(value):
    # A torch tensor leaves autograd and the device first; TensorFlow and JAX arrays convert.
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
    return np.asarray(value)


# --- the scores ----------------------------------------------------------------------------------


def _fbeta(tp, fp, fn, tn, beta=1.0):
    beta_tp = (1 + beta**2) * tp
    return beta_tp / (beta_tp + beta**2 * fn + fp)


def _iou(tp, fp, fn, tn):
    return tp / (tp + fp + fn)


def _accuracy(tp, fp, fn, tn):
    return (tp + tn) / (tp + fp + fn + tn)


def _sensitivity(tp, fp, fn, tn):
    return tp / (tp + fn)


def _specificity(tp, fp, fn, tn):
    return tn / (tn + fp)


def _balanced_accuracy(tp, fp, fn, tn):
    return (_sensitivity(tp, fp, fn, tn) + _specificity(tp, fp, fn, tn)) / 2


def _positive_predictive_value(tp, fp, fn, tn):
    return tp / (tp + fp)


def _negative_predictive_value(tp, fp, fn, tn):
    return tn / (tn + fn)


def _false_negative_rate(tp, fp, fn, tn):
    return 1 - _sensitivity(tp, fp, fn, tn)


def _false_positive_rate(tp, fp, fn, tn):
    return 1 - _specificity(tp, fp, fn, tn)


def _false_discovery_rate(tp, fp, fn, tn):
    return 1 - _positive_predictive_value(tp, fp, fn, tn)


def _false_omission_rate(tp, fp, fn, tn):
    return 1 - _negative_predictive_value(tp, fp, fn, tn)


def _positive_likelihood_ratio(tp, fp, fn, tn):
    return _sensitivity(tp, fp, fn, tn) / _false_positive_rate(tp, fp, fn, tn)


def _negative_likelihood_ratio(tp, fp, fn, tn):
    return _false_negative_rate(tp, fp, fn, tn) / _specificity(tp, fp, fn, tn)


def _compute(name, formula, tp, fp, fn, tn, reduction, class_weights, zero_division, **options):
    """SMP's ``_compute_metric``: ``formula`` of the counts reduced as ``reduction`` says."""
    tp, fp, fn, tn = _counts(tp, fp, fn, tn)
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}. "
            f"Received: reduction={reduction!r}"
        )
    fill = _zero_division(zero_division)
    weights = _class_weights(class_weights, reduction, tp.shape[1])

    def score(*counts):
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.asarray(formula(*counts, **options), np.float64)
        undefined = np.isnan(values)
        if undefined.any() and isinstance(zero_division, str):
            warnings.warn(
                f"{name}: a zero denominator (e.g. a class in neither truth nor prediction) "
                "scored 0 (zero_division='warn'; pass a number to choose the value).",
                stacklevel=4,
            )
        return np.where(undefined, fill, values)

    if reduction == "micro":
        return float(score(*(c.sum() for c in (tp, fp, fn, tn))))
    if reduction in ("macro", "weighted"):
        per_class = score(*(c.sum(0) for c in (tp, fp, fn, tn))) * weights
        return float(per_class.mean() if reduction == "macro" else per_class.sum())
    if reduction == "micro-imagewise":
        return float(score(*(c.sum(1) for c in (tp, fp, fn, tn))).mean())
    if reduction in ("macro-imagewise", "weighted-imagewise"):
        return float((score(tp, fp, fn, tn).mean(0) * weights).mean())
    return score(tp, fp, fn, tn)


def _counts(tp, fp, fn, tn):
    counts = [_as_numpy(c) for c in (tp, fp, fn, tn)]
    shapes = [c.shape for c in counts]
    if len(set(shapes)) != 1 or len(shapes[0]) != 2 or 0 in shapes[0]:
        raise ValueError(
            f"tp, fp, fn and tn must be (N, C) arrays of one shape, N and C at least 1 (as "
            f"get_stats gives them). Received shapes: {', '.join(map(str, shapes))}"
        )
    for name, values in zip(("tp", "fp", "fn", "tn"), counts):
        if values.dtype.kind not in "biuf":
            raise ValueError(
                f"{name} must hold pixel counts (numbers). Received: {name}.dtype={values.dtype}"
            )
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError(
                f"{name} must hold pixel counts (finite, not negative). "
                f"Received: {name} min={values.min()}, max={values.max()}"
            )
    return [c.astype(np.float64) for c in counts]


def _zero_division(zero_division):
    if isinstance(zero_division, str) and zero_division == "warn":
        return 0.0
    if isinstance(zero_division, numbers.Real) and not isinstance(zero_division, bool):
        return float(zero_division)
    raise ValueError(
        f"zero_division must be 'warn' or a number (the score of a zero denominator, e.g. 1.0 "
        f"or 0.0). Received: zero_division={zero_division!r}"
    )


def _class_weights(class_weights, reduction, num_classes):
    """The weights divided by their sum, ``(C,)``; 1 without weights."""
    if class_weights is None:
        if reduction is not None and "weighted" in reduction:
            raise ValueError(
                f"reduction={reduction!r} needs class_weights, one number per class "
                f"({num_classes}). Received: class_weights=None"
            )
        return 1.0
    weights = _as_numpy(class_weights)
    if (
        weights.dtype.kind not in "iuf"
        or weights.shape != (num_classes,)
        or not np.isfinite(weights).all()
        or (weights < 0).any()
        or weights.sum() == 0
    ):
        raise ValueError(
            f"class_weights must be {num_classes} numbers (one per class), not negative, not all "
            f"zero. Received: class_weights={class_weights!r}"
        )
    return weights.astype(np.float64) / weights.sum()


#: What every score function's docstring says after its summary.
_ARGUMENTS = """

    Args:
        tp: ``(N, C)`` true positive pixels (:func:`get_stats`), NumPy or a tensor.
        fp: ``(N, C)`` false positives.
        fn: ``(N, C)`` false negatives.
        tn: ``(N, C)`` true negatives.
        reduction: ``"micro"``, ``"macro"``, ``"weighted"``, ``"micro-imagewise"``,
            ``"macro-imagewise"``, ``"weighted-imagewise"``, ``"none"`` or None (see the
            module). Defaults to None.
        class_weights: C numbers for the ``weighted`` reductions (normalised to sum 1; also
            applied by ``"macro"`` and ``"macro-imagewise"``, as SMP does). Defaults to None.
        zero_division: The score of a zero denominator, or ``"warn"`` (0 and a warning).
            Defaults to 1.0.

    Returns:
        A float, or with ``reduction`` None or ``"none"`` the float64 ``(N, C)`` scores.

    Raises:
        ValueError: Counts of different or wrong shapes or negative, an unknown reduction, a
            ``weighted`` reduction without class weights, weights not one per class.

    Example:
        >>> tp, fp, fn, tn = get_stats(np.array([[0, 1, 1]]), np.array([[0, 1, 0]]),
        ...                            "multiclass", num_classes=2)
        >>> iou_score(tp, fp, fn, tn, reduction="macro")  # (1/2 + 1/2) / 2
        0.5
    """


def _score_function(name, formula, summary):
    """One of SMP's score functions: ``formula`` under SMP's name, arguments and reductions."""

    def score(tp, fp, fn, tn, reduction=None, class_weights=None, zero_division=1.0):
        return _compute(name, formula, tp, fp, fn, tn, reduction, class_weights, zero_division)

    score.__name__ = score.__qualname__ = name
    score.__doc__ = summary + _ARGUMENTS
    return score


def fbeta_score(tp, fp, fn, tn, beta=1.0, reduction=None, class_weights=None, zero_division=1.0):
    return _compute(
        "fbeta_score", _fbeta, tp, fp, fn, tn, reduction, class_weights, zero_division, beta=beta
    )


fbeta_score.__doc__ = (
    "F-beta score: ``(1 + β²) tp / ((1 + β²) tp + β² fn + fp)``; ``beta`` weighs recall β times "
    "as much as precision."
    + _ARGUMENTS.replace(
        "        reduction:", "        beta: β. Defaults to 1.0.\n        reduction:", 1
    )
)

f1_score = _score_function("f1_score", _fbeta, "F1 score (Dice): ``2 tp / (2 tp + fp + fn)``.")
iou_score = _score_function("iou_score", _iou, "IoU (Jaccard index): ``tp / (tp + fp + fn)``.")
accuracy = _score_function("accuracy", _accuracy, "Accuracy: ``(tp + tn) / (tp + fp + fn + tn)``.")
sensitivity = _score_function(
    "sensitivity", _sensitivity, "Sensitivity, recall, true positive rate: ``tp / (tp + fn)``."
)
specificity = _score_function(
    "specificity", _specificity, "Specificity, true negative rate: ``tn / (tn + fp)``."
)
balanced_accuracy = _score_function(
    "balanced_accuracy",
    _balanced_accuracy,
    "Balanced accuracy: ``(sensitivity + specificity) / 2``.",
)
positive_predictive_value = _score_function(
    "positive_predictive_value",
    _positive_predictive_value,
    "Precision, positive predictive value: ``tp / (tp + fp)``.",
)
negative_predictive_value = _score_function(
    "negative_predictive_value",
    _negative_predictive_value,
    "Negative predictive value: ``tn / (tn + fn)``.",
)
false_negative_rate = _score_function(
    "false_negative_rate", _false_negative_rate, "Miss rate: ``1 - sensitivity``."
)
false_positive_rate = _score_function(
    "false_positive_rate", _false_positive_rate, "Fall-out: ``1 - specificity``."
)
false_discovery_rate = _score_function(
    "false_discovery_rate", _false_discovery_rate, "False discovery rate: ``1 - precision``."
)
false_omission_rate = _score_function(
    "false_omission_rate",
    _false_omission_rate,
    "False omission rate: ``1 - negative predictive value``.",
)
positive_likelihood_ratio = _score_function(
    "positive_likelihood_ratio",
    _positive_likelihood_ratio,
    "Positive likelihood ratio: ``sensitivity / false positive rate`` (inf where the false "
    "positive rate is 0 and the sensitivity is not).",
)
negative_likelihood_ratio = _score_function(
    "negative_likelihood_ratio",
    _negative_likelihood_ratio,
    "Negative likelihood ratio: ``false negative rate / specificity`` (inf where the "
    "specificity is 0 and the false negative rate is not).",
)
#: SMP's aliases.
precision = positive_predictive_value
recall = sensitivity


class ImagewiseMeans:
    """IoU and F1 under SMP's ``"micro-imagewise"`` and ``"macro-imagewise"`` reductions, image
    by image, keeping only sums (``evaluate``'s per-image means).

    Each image's scores are added as they come: the mean over the images of its per-class
    scores' mean (macro) and of the score of its pixels pooled over the classes (micro), equal to
    :func:`iou_score` / :func:`f1_score` of all the images' counts at once.

    Args:
        zero_division: The score of a class in neither an image's truth nor its prediction
            (SMP's default 1.0). Defaults to 1.0.

    Example:
        >>> means = ImagewiseMeans()
        >>> means.update(*get_stats(np.array([[0, 1]]), np.array([[0, 0]]), "multiclass",
        ...                         num_classes=2))
        >>> means.result()["iou_macro_imagewise"]  # class 0: 1/2, class 1: 0/1
        0.25
    """

    #: :meth:`result`'s scores: (key, score function, reduction).
    SCORES = (
        ("iou_macro_imagewise", "iou", "macro"),
        ("iou_micro_imagewise", "iou", "micro"),
        ("f1_macro_imagewise", "f1", "macro"),
        ("f1_micro_imagewise", "f1", "micro"),
    )

    def __init__(self, zero_division=1.0):
        self.zero_division = zero_division
        _zero_division(zero_division)
        self.images = 0
        self.sums = {key: 0.0 for key, _, _ in self.SCORES}

    def update(self, tp, fp, fn, tn):
        """Add the ``(N, C)`` counts of N images (:func:`get_stats`)."""
        if np.ndim(tp) == 2 and np.shape(tp)[0] == 0:
            return
        counts = _counts(tp, fp, fn, tn)
        pooled = [c.sum(1, keepdims=True) for c in counts]
        functions = {"iou": iou_score, "f1": f1_score}
        for key, score, reduction in self.SCORES:
            per_image = functions[score](
                *(pooled if reduction == "micro" else counts), zero_division=self.zero_division
            )
            self.sums[key] += float(per_image.mean(1).sum())
        self.images += len(counts[0])

    def result(self):
        """``{"iou_macro_imagewise", "iou_micro_imagewise", "f1_macro_imagewise",
        "f1_micro_imagewise"}`` (floats, None before any image), ``"images"`` and
        ``"zero_division"``."""
        means = {key: (self.sums[key] / self.images if self.images else None) for key in self.sums}
        return {**means, "images": self.images, "zero_division": self.zero_division}
