"""Independent NumPy references (float64, written from the definitions): the pixel losses and
the segmentation scores of a whole set."""

from fractions import Fraction
from math import ceil

import numpy as np

EPS = 1e-7


def softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


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


def pixel_bce(labels_onehot, logits, valid=None, smoothing=0.0, gamma=0.0, top_k=None):
    """Mean over channels of sigmoid BCE (times torchvision's focal term ``(1 - p_t)^γ``),
    mean over counted (and, with ``top_k``, kept) pixels."""
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
