"""Independent NumPy references (float64, written from the definitions): the pixel losses and
the segmentation scores of a whole set."""

from fractions import Fraction
from math import ceil

import numpy as np

EPS = 1e-7
#: The smallest normal float32: plain probabilities enter a log clipped to [TINY32, 1] on every
#: backend (examples/backend_rules.md), so that a float32 pixel's -log p stops at 87.34.
TINY32 = float(np.finfo(np.float32).tiny)


def softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def clipped_log(p, tiny=TINY32):
    """``log p`` in float64 of ``p`` clipped to [tiny, 1]."""
    return np.log(np.clip(np.asarray(p, np.float64), tiny, 1.0))


def probability_logits(probabilities, tiny=TINY32):
    """:func:`pixel_cce`'s logits for plain probabilities ``(..., C)``: the log of the
    probabilities renormalised along the classes and clipped to [tiny, 1], whose log-softmax is
    that log (to 1e-38: the clipped values sum to 1 + k·tiny)."""
    p = np.asarray(probabilities, np.float64)
    return clipped_log(p / p.sum(-1, keepdims=True), tiny)


def binary_probability_logits(probabilities, tiny=TINY32):
    """:func:`pixel_bce`'s logits for plain sigmoid probabilities: ``log p - log(1 - p)``, each
    of ``p`` and ``1 - p`` clipped to [tiny, 1], so that ``-log σ(z)`` and ``-log(1 - σ(z))`` are
    their clipped logs (to 1e-38)."""
    p = np.asarray(probabilities, np.float64)
    return clipped_log(p, tiny) - clipped_log(1.0 - p, tiny)


def pixel_cce(
    labels,
    logits,
    class_weights=None,
    ignore_index=None,
    smoothing=0.0,
    sample_weight=None,
    reduction="mean",
    gamma=0.0,
    top_k=None,
):
    """Channels-last logits (..., C); integer labels (...) -> Σ sw·w[y]·ℓ / Σ w[y]
    (PyTorch-style), ℓ = -Σ_c y'_c (1 - p_c)^γ log p_c; with ``top_k`` only the kept pixels
    (:func:`top_k_kept`) enter either sum."""
    logits = np.asarray(logits, np.float64)
    c = logits.shape[-1]
    labels = np.asarray(labels).astype(np.int64)
    valid = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    safe = np.where(valid, labels, 0)
    logp = log_softmax(logits)
    target = np.eye(c)[safe] * (1 - smoothing) + smoothing / c
    loss = -(target * (1 - np.exp(logp)) ** gamma * logp).sum(-1)
    w = np.ones(c) if class_weights is None else np.asarray(class_weights, np.float64)
    pw = w[safe] * valid
    if top_k is not None:
        pw = pw * top_k_kept(loss, valid, top_k)
    sw = (
        np.ones(labels.shape)
        if sample_weight is None
        else np.broadcast_to(
            np.asarray(sample_weight, np.float64).reshape(
                np.shape(sample_weight) + (1,) * (labels.ndim - np.ndim(sample_weight))
            ),
            labels.shape,
        )
    )
    terms = sw * pw * loss
    if reduction == "none":
        return terms
    if reduction == "sum":
        return terms.sum()
    den = pw.sum()
    return 0.0 if den == 0 else terms.sum() / den


def pixel_bce(
    labels_onehot, logits, valid=None, smoothing=0.0, gamma=0.0, top_k=None, reduction="mean"
):
    """Mean over channels of sigmoid BCE (times torchvision's focal term ``(1 - p_t)^γ``),
    mean over counted (and, with ``top_k``, kept) pixels; with ``reduction="none"`` each pixel's
    loss (0 where not counted or not kept)."""
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels_onehot, np.float64) * (1 - smoothing) + 0.5 * smoothing
    per = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    # torchvision.ops.sigmoid_focal_loss, alpha=-1 (none):
    p = 1 / (1 + np.exp(-z))
    p_t = p * y + (1 - p) * (1 - y)
    per = per * (1 - p_t) ** gamma
    loss = per.mean(-1)
    valid = np.ones(loss.shape, bool) if valid is None else valid
    if top_k is not None:
        valid = valid & top_k_kept(loss, valid, top_k)
    if reduction == "none":
        return loss * valid
    return 0.0 if valid.sum() == 0 else (loss * valid).sum() / valid.sum()


def top_k_kept(loss, counted, top_k):
    """DeepLab-style hard-pixel mining: of the n counted pixels, the ceil(top_k·n) with the
    largest loss (earlier pixels first among equal losses, in C order)."""
    shape = np.shape(loss)
    loss, counted = np.ravel(loss), np.ravel(np.broadcast_to(counted, shape))
    candidates = np.flatnonzero(counted)
    k = ceil(Fraction(str(top_k)) * len(candidates))
    order = np.argsort(-loss[candidates], kind="stable")
    kept = np.zeros(loss.shape, bool)
    kept[candidates[order[:k]]] = True
    return kept.reshape(shape)


# --- segmentation scores of a whole set (what the streamed numbers are checked against) ---------

ECE_BINS = 15


def _counted(probabilities, labels, ignore_index):
    probabilities = np.asarray(probabilities, np.float64)
    flat = probabilities.reshape(-1, probabilities.shape[-1])
    labels = np.asarray(labels).astype(np.int64).ravel()
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    return flat[keep], labels[keep]


def expected_calibration_error(probabilities, labels, ignore_index=None, bins=ECE_BINS):
    """``Σ_b (n_b / n) · |accuracy_b - confidence_b|`` over equal-width bins of the max
    probability, a loop over the bins; 0.0 without counted pixels."""
    flat, labels = _counted(probabilities, labels, ignore_index)
    if not labels.size:
        return 0.0
    confidence = flat.max(-1)
    correct = flat.argmax(-1) == labels
    index = np.minimum(np.floor(confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / labels.size)


def binary_accuracy(probabilities, labels, ignore_index=None, threshold=0.5):
    """Per-channel accuracy of ``probability > threshold`` against one-hot labels (Keras's
    ``binary_accuracy``); 0.0 without counted pixels."""
    flat, labels = _counted(probabilities, labels, ignore_index)
    if not labels.size:
        return 0.0
    one_hot = np.arange(flat.shape[-1]) == labels[:, None]
    return float(np.mean((flat > threshold) == one_hot))


def score(probabilities, labels, num_classes, ignore_index=None):
    """``miou``, ``pixel_accuracy``, ``per_class_iou``, ``binary_accuracy`` and ``ece`` of
    ``(N, H, W, C)`` probabilities, written from the definitions on the masks: IoU_c =
    |truth_c ∩ predicted_c| / |truth_c ∪ predicted_c|, None for an empty union; miou the mean of
    the defined ones (None if none); pixel accuracy the fraction of counted pixels right."""
    flat, truth = _counted(probabilities, labels, ignore_index)
    predicted = flat.argmax(-1)
    ious = []
    for c in range(num_classes):
        union = np.sum((truth == c) | (predicted == c))
        ious.append(float(np.sum((truth == c) & (predicted == c)) / union) if union else None)
    defined = [v for v in ious if v is not None]
    return {
        "miou": float(np.mean(defined)) if defined else None,
        "pixel_accuracy": float(np.mean(predicted == truth)) if truth.size else None,
        "per_class_iou": ious,
        "binary_accuracy": binary_accuracy(probabilities, labels, ignore_index),
        "ece": expected_calibration_error(probabilities, labels, ignore_index),
    }


# --- region losses: segmentation_models_pytorch 0.6's multiclass losses, read from its source -----


def _region_inputs(probabilities, labels, ignore_index):
    """``(p, t)`` ``(P, C)`` with the pixels that do not count zeroed (SMP multiplies by the mask):
    ``ignore_index`` in an integer mask; an all-zero row of dense labels."""
    probabilities = np.asarray(probabilities, np.float64)
    c = probabilities.shape[-1]
    p = probabilities.reshape(-1, c)
    labels = np.asarray(labels)
    if labels.shape == probabilities.shape:
        t = labels.reshape(-1, c).astype(np.float64)
        keep = t.sum(-1) > 0
    else:
        y = labels.reshape(-1).astype(np.int64)
        keep = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
        t = np.eye(c)[np.where(keep, y, 0)]
    return p * keep[:, None], t * keep[:, None], keep


def smp_tversky(
    probabilities,
    labels,
    alpha=0.5,
    beta=0.5,
    gamma=1.0,
    classes=None,
    class_weights=None,
    ignore_index=None,
    smooth=0.0,
    eps=1e-7,
    log_loss=False,
    per_image=False,
    absent_classes="zero",
):
    """SMP's ``TverskyLoss("multiclass", from_logits=False, ...)`` (``DiceLoss``: α = β = ½,
    γ = 1; ``JaccardLoss``: α = β = 1, γ = 1) on channels-last probabilities ``(..., C)`` and an
    integer mask ``(...)`` or dense labels ``(..., C)``: ``soft_tversky_score`` over dims (0, 2),
    ``1 - score`` (or ``-log(score.clamp_min(eps))``), zero where ``y_true.sum(dims) == 0``,
    ``loss[classes]``, ``(Σ w·ℓ / Σ w)`` or the mean, ``** gamma``. Not in SMP: with
    ``per_image`` the mean over the images of that loss of each image; with
    ``absent_classes="skip"`` the mean over the classes present in the labels only."""
    if per_image:
        return float(
            np.mean(
                [
                    smp_tversky(
                        probabilities[n : n + 1],
                        np.asarray(labels)[n : n + 1],
                        alpha,
                        beta,
                        gamma,
                        classes,
                        class_weights,
                        ignore_index,
                        smooth,
                        eps,
                        log_loss,
                        absent_classes=absent_classes,
                    )
                    for n in range(len(probabilities))
                ]
            )
        )
    p, t, _ = _region_inputs(probabilities, labels, ignore_index)
    output_sum, target_sum = p.sum(0), t.sum(0)
    difference = np.abs(p - t).sum(0)  # LA.vector_norm(output - target, ord=1, dim=dims)
    intersection = (output_sum + target_sum - difference) / 2
    fp, fn = output_sum - intersection, target_sum - intersection
    score = (intersection + smooth) / np.maximum(
        intersection + alpha * fp + beta * fn + smooth, eps
    )
    loss = -np.log(np.maximum(score, eps)) if log_loss else 1.0 - score
    loss = loss * (target_sum > 0)
    weights = None if class_weights is None else np.asarray(class_weights, np.float64)
    present = target_sum > 0
    if classes is not None:
        loss, present = loss[list(classes)], present[list(classes)]
        weights = None if weights is None else weights[list(classes)]
    if absent_classes == "skip":
        weights = (np.ones(loss.shape) if weights is None else weights) * present
        mean = 0.0 if not weights.sum() else (loss * weights).sum() / weights.sum()
    else:
        mean = loss.mean() if weights is None else (loss * weights).sum() / weights.sum()
    return float(mean**gamma)


def smp_dice(probabilities, labels, **options):
    """SMP's ``DiceLoss("multiclass", from_logits=False, ...)``: :func:`smp_tversky`, α = β = ½."""
    return smp_tversky(probabilities, labels, 0.5, 0.5, 1.0, **options)


def smp_jaccard(probabilities, labels, **options):
    """SMP's ``JaccardLoss("multiclass", from_logits=False, ...)``: :func:`smp_tversky` at
    α = β = 1."""
    return smp_tversky(probabilities, labels, 1.0, 1.0, 1.0, **options)


def _lovasz_grad(gt_sorted):
    """SMP's ``_lovasz_grad`` (Alg. 1 of Berman et al.)."""
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def smp_lovasz_softmax(probabilities, labels, classes="present", per_image=False, ignore=None):
    """SMP's ``_lovasz_softmax(probas, labels, classes, per_image, ignore)`` on channels-last
    probabilities ``(..., C)`` and an integer mask ``(...)`` (dense labels ``(..., C)``: the
    foreground of class c is the label itself, an all-zero pixel is left out). A batch (or image)
    without counted pixels gives 0, where SMP returns an empty tensor."""
    if per_image:
        return float(
            np.mean(
                [
                    smp_lovasz_softmax(
                        probabilities[n : n + 1],
                        np.asarray(labels)[n : n + 1],
                        classes,
                        False,
                        ignore,
                    )
                    for n in range(len(probabilities))
                ]
            )
        )
    p, t, keep = _region_inputs(probabilities, labels, ignore)
    p, t = p[keep], t[keep]
    if not len(p):
        return 0.0
    losses = []
    for c in range(p.shape[1]) if classes in ("all", "present") else classes:
        fg = t[:, c]
        if classes == "present" and fg.sum() == 0:
            continue
        errors = np.abs(fg - p[:, c])
        order = np.argsort(-errors, kind="stable")
        losses.append(np.dot(errors[order], _lovasz_grad(fg[order])))
    return float(np.mean(losses)) if losses else 0.0


def numeric_gradient(f, x, step=1e-6):
    """Central finite differences of the scalar ``f`` at ``x`` (float64)."""
    x = np.asarray(x, np.float64)
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (f(up) - f(down)) / (2 * step)
    return gradient


def region_reduction(losses, batch, reduction, per_image, weights=None):
    """A region loss under Keras's ``reduction`` (examples/loss_arguments.md), from each image's
    own loss ``losses`` ``(N,)``, the loss of the whole batch ``batch`` and the images' sample
    weights ``weights`` ``(N,)`` (None: 1): ``v_n`` is the image's loss with ``per_image``, else
    the batch's; the default is the mean of ``v``, ``"sum"`` ``Σ w·v``,
    ``"mean_with_sample_weight"`` ``Σ w·v / Σ w``, ``"none"`` ``w·ℓ`` (each image's own loss)."""
    losses = np.asarray(losses, np.float64)
    w = np.ones(len(losses)) if weights is None else np.asarray(weights, np.float64)
    values = losses if per_image else np.full(len(losses), float(batch))
    if reduction in ("none", None):
        return w * losses
    if reduction == "sum":
        return float((w * values).sum())
    if reduction == "mean_with_sample_weight":
        return float((w * values).sum() / w.sum())
    return float(values.mean())


def region_reference(tversky, probabilities, labels, reduction, per_image, weights=None, **options):
    """A region loss with ``reduction`` from the references above: :func:`smp_tversky` with
    ``tversky = (α, β, γ)`` and ``options``, or :func:`smp_lovasz_softmax` (``tversky`` None;
    ``options`` may hold ``ignore_index``), on each image alone and on the whole batch, whose
    sums integer sample ``weights`` ``(N,)`` weight as repeating each image that many times."""

    def loss(p, y):
        if tversky is None:
            return smp_lovasz_softmax(p, y, ignore=options.get("ignore_index"))
        return smp_tversky(p, y, *tversky, **options)

    images = [loss(probabilities[n : n + 1], labels[n : n + 1]) for n in range(len(labels))]
    repeat = np.ones(len(labels), int) if weights is None else np.asarray(weights).astype(int)
    batch = loss(np.repeat(probabilities, repeat, 0), np.repeat(labels, repeat, 0))
    return region_reduction(images, batch, reduction, per_image, weights)


# --- segmentation_models_pytorch 0.5's metrics (get_stats, its scores and reductions), read from --
# --- its source (metrics/functional.py), one pixel, class and image at a time: issue #31 point 6 --


def smp_get_stats(output, target, mode, ignore_index=None, threshold=None, num_classes=None):
    """SMP's ``get_stats`` in SMP's layout: ``(N, C, ...)`` for binary and multilabel (one
    threshold per class allowed here, applied to channel ``c``), ``(N, ...)`` for multiclass,
    where values outside ``[0, C)`` fall out of ``torch.histc`` (counted in no class)."""
    output, target = np.asarray(output), np.asarray(target)
    images = output.shape[0]
    if mode == "multiclass":
        tp, fp, fn, tn = (np.zeros((images, num_classes), np.int64) for _ in range(4))
        for n in range(images):
            pixels = list(zip(output[n].ravel().tolist(), target[n].ravel().tolist()))
            ignored = sum(t == ignore_index for _, t in pixels) if ignore_index is not None else 0
            for c in range(num_classes):
                for o, t in pixels:
                    if ignore_index is not None and t == ignore_index:
                        continue
                    tp[n, c] += o == c and t == c
                    fp[n, c] += o == c and t != c
                    fn[n, c] += t == c and o != c
                tn[n, c] = len(pixels) - ignored - tp[n, c] - fp[n, c] - fn[n, c]
        return tp, fp, fn, tn
    channels = output.shape[1]
    tp, fp, fn, tn = (np.zeros((images, channels), np.int64) for _ in range(4))
    for n in range(images):
        for c in range(channels):
            o, t = output[n, c].ravel().tolist(), target[n, c].ravel().tolist()
            if threshold is not None:
                cut = threshold[c] if np.ndim(threshold) else threshold
                o, t = [int(v >= cut) for v in o], [int(v >= cut) for v in t]
            tp[n, c] = sum(a * b for a, b in zip(o, t))
            fp[n, c] = sum(o) - tp[n, c]
            fn[n, c] = sum(t) - tp[n, c]
            tn[n, c] = len(o) - tp[n, c] - fp[n, c] - fn[n, c]
    return tp, fp, fn, tn


def _smp_divide(a, b):
    """torch's float division: x/0 is ±inf, 0/0 and nan/0 are nan."""
    if b == 0:
        return float("nan") if a == 0 or a != a else float("inf") if a > 0 else float("-inf")
    return a / b


def _smp_sensitivity(tp, fp, fn, tn):
    return _smp_divide(tp, tp + fn)


def _smp_specificity(tp, fp, fn, tn):
    return _smp_divide(tn, tn + fp)


def _smp_ppv(tp, fp, fn, tn):
    return _smp_divide(tp, tp + fp)


def _smp_npv(tp, fp, fn, tn):
    return _smp_divide(tn, tn + fn)


SMP_FORMULAS = {
    "fbeta_score": lambda tp, fp, fn, tn, beta=1.0: _smp_divide(
        (1 + beta**2) * tp, (1 + beta**2) * tp + beta**2 * fn + fp
    ),
    "iou_score": lambda tp, fp, fn, tn: _smp_divide(tp, tp + fp + fn),
    "accuracy": lambda tp, fp, fn, tn: _smp_divide(tp + tn, tp + fp + fn + tn),
    "sensitivity": _smp_sensitivity,
    "specificity": _smp_specificity,
    "balanced_accuracy": lambda *c: (_smp_sensitivity(*c) + _smp_specificity(*c)) / 2,
    "positive_predictive_value": _smp_ppv,
    "negative_predictive_value": _smp_npv,
    "false_negative_rate": lambda *c: 1 - _smp_sensitivity(*c),
    "false_positive_rate": lambda *c: 1 - _smp_specificity(*c),
    "false_discovery_rate": lambda *c: 1 - _smp_ppv(*c),
    "false_omission_rate": lambda *c: 1 - _smp_npv(*c),
    "positive_likelihood_ratio": lambda *c: _smp_divide(
        _smp_sensitivity(*c), 1 - _smp_specificity(*c)
    ),
    "negative_likelihood_ratio": lambda *c: _smp_divide(
        1 - _smp_sensitivity(*c), _smp_specificity(*c)
    ),
}
SMP_FORMULAS["f1_score"] = SMP_FORMULAS["fbeta_score"]
SMP_FORMULAS["precision"] = SMP_FORMULAS["positive_predictive_value"]
SMP_FORMULAS["recall"] = SMP_FORMULAS["sensitivity"]


def smp_score(name, tp, fp, fn, tn, reduction=None, class_weights=None, zero_division=1.0, **kw):
    """SMP's ``_compute_metric`` of score ``name`` on ``(N, C)`` counts. As SMP, ``"micro"``
    leaves a zero denominator NaN (it skips ``zero_division`` there)."""
    formula = SMP_FORMULAS[name]
    tp, fp, fn, tn = (np.asarray(c, np.float64).tolist() for c in (tp, fp, fn, tn))
    images, classes = len(tp), len(tp[0])
    if class_weights is None:
        weights = [1.0] * classes
    else:
        weights = [w / sum(class_weights) for w in class_weights]
    fill = 0.0 if zero_division == "warn" else zero_division

    def score(*counts):
        value = formula(*counts, **kw)
        return fill if value != value else value

    def cell(n, c):
        return score(tp[n][c], fp[n][c], fn[n][c], tn[n][c])

    def summed(over_images=None, over_classes=None):
        cells = [
            (n, c)
            for n in range(images)
            for c in range(classes)
            if over_images in (None, c) and over_classes in (None, n)
        ]
        return [sum(counts[n][c] for n, c in cells) for counts in (tp, fp, fn, tn)]

    if reduction == "micro":
        return formula(*summed(), **kw)
    if reduction in ("macro", "weighted"):
        per_class = [score(*summed(over_images=c)) * weights[c] for c in range(classes)]
        return sum(per_class) / (classes if reduction == "macro" else 1)
    if reduction == "micro-imagewise":
        return sum(score(*summed(over_classes=n)) for n in range(images)) / images
    if reduction in ("macro-imagewise", "weighted-imagewise"):
        class_means = [sum(cell(n, c) for n in range(images)) / images for c in range(classes)]
        return sum(m * w for m, w in zip(class_means, weights)) / classes
    return np.array([[cell(n, c) for c in range(classes)] for n in range(images)])


# --- multi-scale test-time augmentation (issue #31 point 7): MMSegmentation's aug test ---------
# Written from MMSegmentation's TestTimeAug (Resize(scale_factor=r, keep_ratio=True): a side s
# becomes int(s * r + 0.5)), RandomFlip, and SegTTAModel.merge_preds (the softmax probabilities of
# every augmented copy, back at the image's size, averaged); the resize is PIL's bilinear filter
# (a triangle stretched by the scale when shrinking, each output pixel's weights summing to 1),
# which is what tf.image.resize(..., antialias=True) computes.


def _triangle_weights(size_in, size_out):
    """``(size_out, size_in)``: PIL's ``BILINEAR`` weights along one side."""
    scale = size_in / size_out
    support = max(scale, 1.0)
    centres = (np.arange(size_out) + 0.5) * scale
    weights = np.maximum(0.0, 1 - np.abs((np.arange(size_in) + 0.5 - centres[:, None]) / support))
    return weights / weights.sum(1, keepdims=True)


def resize_bilinear(array, height, width):
    """``(H, W, C)`` resized bilinearly with antialiasing (PIL's ``Image.resize(BILINEAR)``), in
    float64."""
    array = np.asarray(array, np.float64)
    rows = _triangle_weights(array.shape[0], height)
    columns = _triangle_weights(array.shape[1], width)
    return np.einsum("xj,yjc->yxc", columns, np.einsum("yi,ijc->yjc", rows, array))


def conv_softmax(image, kernel, bias):
    """A ``padding="same"`` convolution of an odd ``(k, k, C, K)`` kernel, then a softmax."""
    half = kernel.shape[0] // 2
    padded = np.pad(np.asarray(image, np.float64), ((half, half), (half, half), (0, 0)))
    height, width = image.shape[:2]
    logits = np.zeros((height, width, kernel.shape[-1])) + bias
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            logits += padded[dy : dy + height, dx : dx + width] @ kernel[dy, dx]
    return softmax(logits)


def _round_up_to(value, multiple):
    return -(-value // multiple) * multiple


def aug_test(predict, image, scales, flips=((),), multiple=32, size=None):
    """MMSegmentation's multi-scale + flip test of one ``(H, W, C)`` image, whole.

    For each scale r: the image resized to ``int(H * r + 0.5)`` x ``int(W * r + 0.5)`` (kept in
    [0, 1] when it was), reflect-padded at its bottom and right to ``multiple`` (the model's
    size rule) — or, with ``size=(h, w)``, resized to ``int(h * r + 0.5)`` x ``int(w * r + 0.5)``
    rounded up to ``multiple`` — then for each flip (axes of ``(H, W)``) predicted by
    ``predict`` (``(h, w, C) -> (h, w, K)`` probabilities) and flipped back, cropped, resized
    back to ``(H, W)``; the mean over every scale and flip."""
    height, width = image.shape[:2]
    total = 0.0
    for scale in scales:
        if size is None:
            target = (int(height * scale + 0.5), int(width * scale + 0.5))
        else:
            target = tuple(_round_up_to(int(s * scale + 0.5), multiple) for s in size)
        scaled = np.asarray(image, np.float64)
        if target != (height, width):
            scaled = resize_bilinear(image, *target)
            if image.min() >= 0 and image.max() <= 1:
                scaled = np.clip(scaled, 0, 1)
        rows, columns = (_round_up_to(side, multiple) for side in target)
        padded = np.pad(
            scaled, ((0, rows - target[0]), (0, columns - target[1]), (0, 0)), mode="reflect"
        )
        for axes in flips:
            probabilities = np.flip(predict(np.flip(padded, axes)), axes)
            probabilities = probabilities[: target[0], : target[1]]
            if target != (height, width):
                probabilities = resize_bilinear(probabilities, height, width)
            total = total + probabilities
    return total / (len(scales) * len(flips))


# --- h-mccb, issue #31 points 4-5: the Matthews correlation and boundary losses -----------------


def smp_mcc(y_pred, y_true, eps=1e-5):
    """segmentation_models_pytorch 0.5's binary ``MCCLoss(eps)(y_pred, y_true)``, line by line:
    sums over the whole batch, ``eps`` added to each of tp, tn, fp, fn, ``1 - mcc``."""
    y_pred = np.asarray(y_pred, np.float64).ravel()
    y_true = np.asarray(y_true, np.float64).ravel()
    tp = np.sum(y_pred * y_true) + eps
    tn = np.sum((1 - y_pred) * (1 - y_true)) + eps
    fp = np.sum(y_pred * (1 - y_true)) + eps
    fn = np.sum((1 - y_pred) * y_true) + eps
    numerator = tp * tn - fp * fn
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 1.0 - numerator / denominator


def mcc_loss(
    probabilities,
    labels,
    classes=None,
    class_weights=None,
    ignore_index=None,
    eps=1e-5,
    per_image=False,
):
    """``pixel_mcc``: :func:`smp_mcc` of each class against the rest over the counted pixels
    (integer ``labels`` other than ``ignore_index``, or dense rows that are not all zero), the
    class-weighted mean over ``classes``; with ``per_image`` each image's, then their mean."""
    p = np.asarray(probabilities, np.float64)
    c = p.shape[-1]
    if per_image:
        return float(
            np.mean(
                [
                    mcc_loss(
                        p[n : n + 1], labels[n : n + 1], classes, class_weights, ignore_index, eps
                    )
                    for n in range(len(p))
                ]
            )
        )
    labels = np.asarray(labels)
    if labels.shape == p.shape:
        y = labels.astype(np.float64).reshape(-1, c)
        counted = y.sum(-1) > 0
    else:
        flat = labels.reshape(-1)
        counted = flat != ignore_index if ignore_index is not None else np.ones(len(flat), bool)
        y = np.eye(c)[np.where(counted, flat, 0)]
    p, y = p.reshape(-1, c)[counted], y[counted]
    classes = list(range(c)) if classes is None else list(classes)
    w = np.ones(c) if class_weights is None else np.asarray(class_weights, np.float64)
    losses = np.array([smp_mcc(p[:, k], y[:, k], eps) for k in classes])
    return float(np.sum(losses * w[classes]) / np.sum(w[classes]))


def kervadec_distance_maps(members):
    """Kervadec et al.'s ``one_hot2dist`` per image on ``(N, H, W, C)`` bool class members, with
    SciPy's ``distance_transform_edt``; 0 where an image lacks the class and (unlike theirs, where
    SciPy measures to a pixel off the image) where the class fills it."""
    from scipy.ndimage import distance_transform_edt

    members = np.asarray(members, bool)
    maps = np.zeros(members.shape, np.float64)
    for n in range(members.shape[0]):
        for k in range(members.shape[-1]):
            posmask = members[n, ..., k]
            if posmask.any() and not posmask.all():
                negmask = ~posmask
                maps[n, ..., k] = (
                    distance_transform_edt(negmask) * negmask
                    - (distance_transform_edt(posmask) - 1) * posmask
                )
    return maps


def surface_loss(probabilities, dist_maps, idc):
    """Kervadec et al.'s ``SurfaceLoss(idc)(probs, dist_maps)`` on channels-last arrays:
    ``(p[..., idc] * dist_maps[..., idc]).mean()``."""
    p = np.asarray(probabilities, np.float64)[..., idc]
    return float(np.mean(p * np.asarray(dist_maps, np.float64)[..., idc]))


def boundary_loss(
    probabilities, labels, classes=None, ignore_index=None, alpha=1.0, sample_weight=None
):
    """``pixel_boundary``: ``alpha`` times the mean over the counted pixels (weighted by
    ``sample_weight`` ``(N,)`` or ``(N, H, W)``, divided by the counted pixels, as the
    cross-entropies' default reduction) of the class-mean of ``p_c·φ_c``, with ``φ`` the
    :func:`kervadec_distance_maps` of the labels (dense: each pixel's largest label; an ignored or
    all-zero pixel belongs to no class)."""
    p = np.asarray(probabilities, np.float64)
    c = p.shape[-1]
    labels = np.asarray(labels)
    if labels.shape == p.shape:
        counted = labels.sum(-1) > 0
        hard = labels.argmax(-1)
    else:
        counted = (
            labels != ignore_index if ignore_index is not None else np.ones(labels.shape, bool)
        )
        hard = labels
    members = (hard[..., None] == np.arange(c)) & counted[..., None]
    maps = kervadec_distance_maps(members)
    idc = list(range(c)) if classes is None else list(classes)
    per_pixel = np.mean(p[..., idc] * maps[..., idc], axis=-1)
    sw = np.ones(counted.shape)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, np.float64)
        sw = sw.reshape(sw.shape + (1,) * (counted.ndim - sw.ndim)) * np.ones(counted.shape)
    return float(alpha * np.sum(per_pixel * counted * sw) / np.sum(counted))


# --- issue #31 (focal alpha, pos_weight, OHEM): read from torchvision, MONAI, SMP, MMSeg -------


def torchvision_sigmoid_focal(logits, targets, alpha=-1.0, gamma=0.0):
    """torchvision.ops.sigmoid_focal_loss(reduction="none"): BCE·(1 - p_t)^γ, times
    ``α·t + (1 - α)(1 - t)`` when ``α >= 0`` (per element; α may be per class, last axis)."""
    z, t = np.asarray(logits, np.float64), np.asarray(targets, np.float64)
    p = 1 / (1 + np.exp(-z))
    ce = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    alpha = np.asarray(alpha, np.float64)
    if np.all(alpha >= 0):
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss


def smp_focal_multiclass(logits, labels, alpha=None, gamma=2.0, ignore_index=None):
    """segmentation_models_pytorch FocalLoss("multiclass", alpha, gamma, ignore_index): per
    class a one-vs-rest sigmoid focal loss (``focal_loss_with_logits``) averaged over the
    non-ignored pixels, summed over the classes. Channels-last logits."""
    z = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    total = 0.0
    for c in range(z.shape[-1]):
        t = (labels == c).astype(np.float64)[keep]
        total += torchvision_sigmoid_focal(
            z[..., c][keep], t, -1.0 if alpha is None else alpha, gamma
        ).mean()
    return total


def monai_softmax_focal(logits, labels, gamma=2.0, alpha=None, weight=None):
    """MONAI FocalLoss(use_softmax=True, to_onehot_y=True, gamma, alpha, weight) with reduction
    "mean": ``-(1 - p)^γ·log p·t``, times ``[1 - α, α, ..., α]`` and the class ``weight``,
    averaged over every element (N·C·H·W). Channels-last logits, integer labels."""
    logp = log_softmax(logits)
    c = logp.shape[-1]
    t = np.eye(c)[np.asarray(labels)]
    loss = -((1 - np.exp(logp)) ** gamma) * logp * t
    if alpha is not None:
        loss = loss * np.array([1 - alpha] + [alpha] * (c - 1))
    if weight is not None:
        loss = loss * np.asarray(weight, np.float64)
    return loss.mean()


def torch_bce_with_logits(logits, targets, pos_weight=None):
    """torch.nn.BCEWithLogitsLoss(pos_weight, reduction="none") per element (ATen's
    ``(1 - t)·z + (1 + (pw - 1)·t)·log(1 + exp(-z))``)."""
    z, t = np.asarray(logits, np.float64), np.asarray(targets, np.float64)
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
    log_weight = 1 + (pw - 1) * t
    return (1 - t) * z + log_weight * (np.log1p(np.exp(-np.abs(z))) + np.maximum(-z, 0))


def smp_soft_bce(logits, targets, smooth_factor=None, pos_weight=None, ignore_index=None):
    """segmentation_models_pytorch SoftBCEWithLogitsLoss(reduction="none"): targets smoothed to
    ``(1 - y)·s + y·(1 - s)``, torch's BCE with ``pos_weight``, 0 where ``y == ignore_index``."""
    y = np.asarray(targets, np.float64)
    soft = y if smooth_factor is None else (1 - y) * smooth_factor + y * (1 - smooth_factor)
    loss = torch_bce_with_logits(logits, soft, pos_weight)
    return loss if ignore_index is None else loss * (y != ignore_index)


def mmseg_ohem_weight(logits, labels, thresh, min_kept, ignore_index=255):
    """MMSegmentation's OHEMPixelSampler(thresh, min_kept).sample: 1 for the kept pixels. The
    probabilities of the label class of the valid pixels sorted ascending; threshold
    ``max(sorted[min(min_kept·N, n - 1)], thresh)``; kept: valid and probability < threshold."""
    labels = np.asarray(labels)
    valid = labels != ignore_index
    prob = np.take_along_axis(
        softmax(logits), np.where(valid, labels, 0)[..., None].astype(np.int64), -1
    )[..., 0]
    batch_kept = min_kept * labels.shape[0]
    ordered = np.sort(prob[valid])
    floor = ordered[min(batch_kept, ordered.size - 1)] if ordered.size else 0.0
    return (valid & (prob < max(floor, thresh))).astype(np.float64)


def mmseg_ohem_cross_entropy(logits, labels, thresh, min_kept, class_weight=None, ignore_index=255):
    """MMSegmentation's decode-head loss with that sampler: ``F.cross_entropy(weight=class_weight,
    reduction="none", ignore_index)`` times the sampler's weight, returned as the pair
    ``(sum, number of pixels N·H·W)``: its "mean" (``avg_non_ignore=False``) is sum / N·H·W."""
    labels = np.asarray(labels)
    valid = labels != ignore_index
    safe = np.where(valid, labels, 0).astype(np.int64)
    ce = -np.take_along_axis(log_softmax(logits), safe[..., None], -1)[..., 0]
    if class_weight is not None:
        ce = ce * np.asarray(class_weight, np.float64)[safe]
    weight = mmseg_ohem_weight(logits, labels, thresh, min_kept, ignore_index)
    return (ce * valid * weight).sum(), labels.size


def pixel_cce_focal_alpha(labels, logits, alpha, gamma=0.0, smoothing=0.0, ignore_index=None):
    """Per pixel ``-Σ_c α_c y'_c (1 - p_c)^γ log p_c`` (``y'`` smoothed; MONAI's softmax focal
    loss with ``weight=α`` before its mean), averaged over the non-ignored pixels (α not in the
    denominator). Integer labels, channels-last logits."""
    logp = log_softmax(logits)
    c = logp.shape[-1]
    labels = np.asarray(labels)
    valid = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    target = np.eye(c)[np.where(valid, labels, 0)] * (1 - smoothing) + smoothing / c
    alpha = np.broadcast_to(np.asarray(alpha, np.float64), (c,))
    loss = -(alpha * target * (1 - np.exp(logp)) ** gamma * logp).sum(-1)
    return (loss * valid).sum() / valid.sum()


# --- h-bench, issue #29 point 5 / #31: what each row of the one loss bench table computes --------


def bench_expected(data, options):
    """name -> the float64 value of every row of ``sm_pixel_ce.bench.cases.LOSS_CASES`` on the
    inputs of ``make_inputs`` (``data``), from the references above; ``options``: ``gamma``,
    ``top_k``, ``alpha`` (scalar), ``alphas`` (per class), ``threshold``, ``min_kept``,
    ``pos_weight``, ``tversky`` (alpha, beta, gamma), ``ignore_index``."""
    logits, mask, onehot = data["logits"], data["mask"], data["onehot"]
    weights, ignore, ignored = data["class_weights"], options["ignore_index"], data["mask_ignore"]
    gamma, top_k = options["gamma"], options["top_k"]
    p = softmax(logits)
    cce, bce = pixel_cce(mask, logits), pixel_bce(onehot, logits)
    focal = pixel_cce(mask, logits, gamma=gamma)
    dice, lovasz = smp_dice(p, mask), smp_lovasz_softmax(p, mask)
    boundary = boundary_loss(p, data["blocks"])

    def ohem(min_kept):
        total, _ = mmseg_ohem_cross_entropy(logits, mask, options["threshold"], min_kept)
        return total / mmseg_ohem_weight(logits, mask, options["threshold"], min_kept).sum()

    c = logits.shape[-1]
    members = data["blocks"][..., None] == np.arange(c)
    return {
        **dict.fromkeys(
            (
                "floor_dense",
                "floor_sparse",
                "floor_sparse_again",
                "cce_softmax",
                "cce_logits",
                "cce_logits_uint8",
                "keras_softmax_cce",
                "keras_reshape_cce",
                "keras_hand_softmax",
            ),
            cce,
        ),
        **dict.fromkeys(("floor_bce", "bce_sigmoid", "bce_logits"), bce),
        "cce_weighted_ignore": pixel_cce(ignored, logits, weights, ignore),
        "cce_focal": focal,
        "keras_focal": focal,
        "cce_focal_alpha": pixel_cce_focal_alpha(mask, logits, options["alpha"], gamma),
        "cce_focal_alpha_classes": pixel_cce_focal_alpha(mask, logits, options["alphas"], gamma),
        "cce_top_k": pixel_cce(mask, logits, top_k=top_k),
        "cce_ohem": ohem(0),
        "cce_ohem_min_kept": ohem(options["min_kept"]),
        "cce_focal_top_k_weighted": pixel_cce(
            ignored, logits, weights, ignore, gamma=gamma, top_k=top_k
        ),
        "bce_focal_alpha": np.mean(
            torchvision_sigmoid_focal(logits, onehot, options["alpha"], gamma)
        ),
        "bce_pos_weight": torch_bce_with_logits(logits, onehot, options["pos_weight"]).mean(),
        "dice_softmax": dice,
        "jaccard_softmax": smp_jaccard(p, mask),
        "tversky_softmax": smp_tversky(p, mask, **options["tversky"]),
        "cce_dice": cce + dice,
        "lovasz_softmax": lovasz,
        "lovasz_smp_port": lovasz,
        "mcc_softmax": mcc_loss(p, mask),
        "boundary_given_maps": boundary,
        # The sum reads the blocks' mask (its region terms) and their maps (its boundary term).
        "cce_dice_boundary": pixel_cce(data["blocks"], logits)
        + smp_dice(p, data["blocks"])
        + boundary,
        "boundary_labels": boundary,
        "boundary_maps_alone": kervadec_distance_maps(members).mean(),
    }


# --- t29: hard-pixel mining's kept mask with many ties (a stable argsort) ----------------------


def largest_kept(losses, counted, count):
    """The ``count`` counted pixels of largest loss (every counted pixel when fewer), the earlier
    first among equal losses (a stable argsort; -0.0 equals 0.0, NaN ranks with +inf)."""
    losses = np.asarray(losses, np.float64)
    candidates = np.flatnonzero(np.ones(losses.shape, bool) if counted is None else counted)
    keys = np.nan_to_num(losses[candidates], nan=np.inf, posinf=np.inf)
    kept = np.zeros(losses.shape, bool)
    kept[candidates[np.argsort(-keys, kind="stable")[:count]]] = True
    return kept


def hardest_tie_cases(rng, size=64):
    """``(losses, counted, top_k, count, expected)`` of flat float32 losses drawn from a few
    values (0.0, -0.0, 0.25, 1, 1 + 1 ulp, +inf, NaN), so that most pixels tie: every pixel, a
    random half and none counted; ``top_k`` (k = ⌈top_k·n⌉) and ``count`` (OHEM's ``min_kept``,
    up to past n). ``expected`` is :func:`largest_kept`."""
    pool = np.array([0.0, -0.0, 0.25, 1.0, np.nextafter(1.0, 2.0), np.inf, np.nan], np.float32)
    cases = []
    for counted in (None, rng.uniform(size=size) < 0.5, np.zeros(size, bool)):
        for values in (pool[:2], pool[:6], pool):
            losses = rng.choice(values, size).astype(np.float32)
            n = size if counted is None else int(counted.sum())
            for top_k in (0.01, 0.3, 0.5, 1.0):
                k = ceil(Fraction(str(top_k)) * n)
                cases.append((losses, counted, top_k, None, largest_kept(losses, counted, k)))
            for count in (0, 7, 1000):
                cases.append((losses, counted, None, count, largest_kept(losses, counted, count)))
    return cases
