"""Boundary IoU in NumPy (Cheng et al., CVPR 2021), as the official ``boundary-iou-api``.

The boundary of a binary mask is the set of its pixels within Chebyshev distance ``d`` of a
pixel outside it, the outside of the image counting as outside the mask: what the official
``mask_to_boundary`` computes by padding one pixel of zeros, eroding ``d`` times with a 3×3
kernel (OpenCV) and subtracting. ``d`` is 2 % of the image diagonal, at least one pixel. The
Boundary IoU of a class is ``|B(truth) ∩ B(predicted)| / |B(truth) ∪ B(predicted)|``.

No OpenCV: a pixel is interior when its ``(2d + 1)²`` window holds no pair of neighbours of
different values, which sliding "any" filters of the horizontal and the vertical changes answer
for every pixel at once, in O(H·W·log d) boolean operations. On a label map that gives the
boundaries of every class in one pass, so :func:`boundary_counts` costs the same for 2 classes
as for 150.
"""

import math

import numpy as np

#: The paper's dilation ratio: the boundary width is 2 % of the image diagonal.
BOUNDARY_RATIO = 0.02


def boundary_dilation(height, width, ratio=BOUNDARY_RATIO):
    """The boundary width ``d`` of an image, as the official code: ``round(ratio · diagonal)``.

    ``d = max(1, int(round(ratio · sqrt(height² + width²))))``, Python's rounding (half to even).

    Args:
        height: H, in pixels.
        width: W, in pixels.
        ratio: Fraction of the diagonal. Defaults to 0.02.

    Returns:
        An int, at least 1.

    Raises:
        ValueError: a size is not positive or ``ratio`` is negative.

    Example:
        >>> boundary_dilation(512, 512), boundary_dilation(10, 10)
        (14, 1)
    """
    if height < 1 or width < 1:
        raise ValueError(
            f"the image must have at least one pixel. Received: height={height}, width={width}"
        )
    if not ratio >= 0:
        raise ValueError(f"ratio must be >= 0. Received: ratio={ratio}")
    return max(1, int(round(ratio * math.sqrt(height**2 + width**2))))


def mask_boundary(mask, dilation):
    """The boundary of one binary mask: its pixels within ``dilation`` of a pixel outside it.

    A mask pixel stays interior only if every pixel within Chebyshev distance ``dilation``
    (its ``(2·dilation + 1)²`` window) is in the mask, pixels outside the image counting as not
    in it, so a mask that touches the image border has a boundary there. Equal to the official
    ``mask - erode(pad(mask, 1), 3×3, iterations=dilation)``; ``dilation=0`` gives no boundary.

    Args:
        mask: ``(H, W)`` bool (or 0/1) mask.
        dilation: ``d``, an int >= 0 (see :func:`boundary_dilation`).

    Returns:
        ``(H, W)`` bool.

    Raises:
        ValueError: ``mask`` is not 2-D or ``dilation`` is not an int >= 0.

    Example:
        >>> mask = np.zeros((5, 5), bool)
        >>> mask[1:4, 1:4] = True
        >>> int(mask_boundary(mask, 1).sum())  # the ring of 8 around the centre pixel
        8
    """
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W). Received: shape={mask.shape}")
    return mask & _mixed_windows(mask, _checked_dilation(dilation))


def boundary_counts(labels, predictions, num_classes, ignore_index=None, ratio=BOUNDARY_RATIO):
    """Per class, the boundary intersection and union of one image's truth and prediction.

    For each class ``c``, with ``B`` :func:`mask_boundary` at the image's own
    ``d = boundary_dilation(H, W, ratio)``::

        intersection_c = |B(labels == c) ∩ B(predictions == c)|
        union_c        = |B(labels == c) ∪ B(predictions == c)|

    Pixels labelled ``ignore_index`` are counted in neither, but they still are "not class c"
    where the boundaries are drawn: a class next to a void region has a boundary along it, as
    next to any other class (the official code, fed the ``labels == c`` mask, does the same).
    Summed over images, the counts give the dataset's Boundary IoU (:func:`boundary_iou`).

    Args:
        labels: ``(H, W)`` integer class indices.
        predictions: ``(H, W)`` predicted class indices.
        num_classes: C.
        ignore_index: Label value whose pixels are not counted, or None. Defaults to None.
        ratio: Boundary width as a fraction of the image diagonal. Defaults to 0.02.

    Returns:
        ``(intersection, union)``, two int64 ``(C,)`` arrays.

    Raises:
        ValueError: the shapes differ or are not 2-D, or a counted label or prediction is not
            in ``[0, C)``.

    Example:
        >>> labels = np.zeros((10, 10), np.uint8)
        >>> labels[3:7, 3:7] = 1
        >>> intersection, union = boundary_counts(labels, np.roll(labels, 1, axis=1), 2)
        >>> boundary_iou(intersection, union)[1]  # 6 / 18
        0.3333333333333333
    """
    labels, predictions = _class_map(labels), _class_map(predictions)
    if labels.ndim != 2 or labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions must be one (H, W) image each. "
            f"Received: labels.shape={labels.shape}, predictions.shape={predictions.shape}"
        )
    counted = None if ignore_index is None else labels != ignore_index
    for name, values in (("labels", labels), ("predictions", predictions)):
        kept = values if counted is None else values[counted]
        if kept.size and (kept.min() < 0 or kept.max() >= num_classes):
            raise ValueError(
                f"{name} must lie in [0, {num_classes - 1}] (labels may equal ignore_index). "
                f"Received: min={kept.min()}, max={kept.max()}, ignore_index={ignore_index}."
            )
    dilation = boundary_dilation(*labels.shape, ratio)
    truth_edge = _mixed_windows(labels, dilation)
    predicted_edge = _mixed_windows(predictions, dilation)
    if counted is not None:
        truth_edge &= counted
        predicted_edge &= counted
    both = truth_edge & predicted_edge & (labels == predictions)
    intersection = np.bincount(labels[both], minlength=num_classes).astype(np.int64)
    truth = np.bincount(labels[truth_edge], minlength=num_classes)
    predicted = np.bincount(predictions[predicted_edge], minlength=num_classes)
    return intersection, (truth + predicted - intersection).astype(np.int64)


def boundary_iou(intersection, union):
    """Boundary IoU per class from summed counts: ``intersection / union``, None where 0 / 0.

    Args:
        intersection: ``(C,)`` counts (:func:`boundary_counts`, summed over images).
        union: ``(C,)`` counts.

    Returns:
        A list of C floats or None (a class absent from truth and prediction of every image).

    Example:
        >>> boundary_iou(np.array([6, 0]), np.array([18, 0]))
        [0.3333333333333333, None]
    """
    return [None if u == 0 else float(i / u) for i, u in zip(intersection, union)]


def _checked_dilation(dilation):
    if isinstance(dilation, bool) or not isinstance(dilation, (int, np.integer)) or dilation < 0:
        raise ValueError(f"dilation must be an int >= 0. Received: dilation={dilation!r}")
    return int(dilation)


def _class_map(values):
    values = np.asarray(values)
    return values if values.dtype.kind in "iu" else values.astype(np.int64)


def _mixed_windows(values, dilation):
    """``(H, W)`` bool: where the ``(2d + 1)²`` window of a pixel leaves the image or holds a
    value other than the pixel's own (so, on a mask, outside or mask boundary pixels).

    A window holds two different values exactly when it holds two neighbours that differ (walk
    from one to the other inside the window), so the test looks, per window, for a horizontal
    or a vertical change lying wholly inside it. Only windows inside the image are searched:
    the others are mixed anyway."""
    height, width = values.shape
    if dilation == 0:
        return np.zeros((height, width), bool)
    mixed = np.ones((height, width), bool)
    if 2 * dilation >= height or 2 * dilation >= width:
        return mixed
    side = 2 * dilation + 1
    across = values[:, 1:] != values[:, :-1]
    down = values[1:] != values[:-1]
    mixed[dilation : height - dilation, dilation : width - dilation] = _sliding_any(
        _sliding_any(across, side, 0), side - 1, 1
    ) | _sliding_any(_sliding_any(down, side - 1, 0), side, 1)
    return mixed


def _sliding_any(flags, length, axis):
    """``out[i] = any(flags[i : i + length])`` along ``axis`` (``length - 1`` shorter there), by
    doubling: windows of 1, 2, 4, ... then two overlapping ones, O(log length) passes."""
    flags = np.moveaxis(flags, axis, 0)
    covered = 1
    while 2 * covered <= length:
        flags = flags[:-covered] | flags[covered:]
        covered *= 2
    if length > covered:
        rest = length - covered
        flags = flags[: len(flags) - rest] | flags[rest:]
    return np.moveaxis(flags, 0, axis)
