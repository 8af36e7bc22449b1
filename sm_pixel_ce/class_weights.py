"""Class weights from the label frequencies of a set of masks, streamed batch by batch.

Three classic recipes for rare classes, each returning one weight per class that can be passed
straight to ``class_weights=`` of ``pixel_cce``:

* ``"median_frequency"``: SegNet's median-frequency balancing (Eigen & Fergus);
* ``"inverse_frequency"``: scikit-learn's ``"balanced"``, ``n / (K·n_c)``;
* ``"enet"``: ENet's ``1 / ln(1.02 + n_c / n)``.
"""

import typing
import warnings

import numpy as np
import tensorflow as tf

METHODS = ("median_frequency", "inverse_frequency", "enet")
# Images counted at once from an array: bounds the temporary arrays, whatever the data's size.
_CHUNK_IMAGES = 64


def class_weights(masks, num_classes, method="median_frequency", ignore_index=None):
    """One weight per class from how often each class appears in ``masks``.

    "Counted" pixels are those not equal to ``ignore_index``; ``n_c`` is the number of counted
    pixels of class ``c`` and ``n`` of all classes. Methods:

    * ``"median_frequency"``: ``freq(c) = n_c / (counted pixels of the images in which c
      appears)`` and ``w_c = median(freq over present classes) / freq(c)``;
    * ``"inverse_frequency"``: ``w_c = n / (K·n_c)``, ``K`` the number of classes present;
    * ``"enet"``: ``w_c = 1 / ln(1.02 + n_c / n)``.

    A class absent from every mask gets weight 0 (with a warning that names it): it has nothing
    to weigh, and a made-up weight would only matter once it appears.

    Args:
        masks: Integer masks ``(N, H, W)`` or ``(N, H, W, 1)`` (NumPy or tensor), or a
            ``tf.data.Dataset`` yielding masks or ``(image, mask[, ...])`` tuples, batched
            (``(N, H, W)``, ``(N, H, W, 1)``) or not (``(H, W)``, ``(H, W, 1)``). Read one batch
            at a time, never held whole.
        num_classes: Number of classes ``C``; every counted mask value must be in [0, C).
        method: One of ``"median_frequency"``, ``"inverse_frequency"``, ``"enet"``.
            Defaults to "median_frequency".
        ignore_index: Mask value not counted, or None. Defaults to None.

    Returns:
        A list of ``C`` floats ``>= 0``.

    Raises:
        ValueError: For an unknown method, a mask value out of range (named in the message), or
            masks with no counted pixel.

    Example:
        >>> weights = sm_pixel_ce.class_weights(train_masks, 7, ignore_index=255)
        >>> model.compile("adam", loss=sm_pixel_ce.PixelCategoricalCrossentropy(
        ...     class_weights=weights, ignore_index=255))
    """
    where = "class_weights"
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(
            f"{where}: `num_classes` must be an integer >= 1. Received: num_classes={num_classes!r}"
        )
    if num_classes < 1:
        raise ValueError(
            f"{where}: `num_classes` must be an integer >= 1. Received: num_classes={num_classes}"
        )
    if method not in METHODS:
        raise ValueError(
            f"{where}: unknown `method`. Expected one of {METHODS}. Received: method={method!r}"
        )
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
    ):
        raise ValueError(
            f"{where}: `ignore_index` must be an integer or None. "
            f"Received: ignore_index={ignore_index!r}"
        )

    counts = count_class_pixels(masks, num_classes, ignore_index)
    if counts.pixels.sum() == 0:
        raise ValueError(
            f"{where}: the masks hold no counted pixel (empty, or every pixel equals "
            f"ignore_index={ignore_index}). Received: {num_classes} classes."
        )
    return weights_from_counts(counts.pixels, method, counts.image_pixels, stacklevel=3)


class ClassPixels(typing.NamedTuple):
    """What every method of :func:`class_weights` needs from the masks, summed over images.

    Attributes:
        pixels: int64 ``(C,)``, counted pixels of each class ``n_c``.
        image_pixels: int64 ``(C,)``, per class, the counted pixels of the images in which the
            class appears (median frequency's denominator).
    """

    pixels: np.ndarray
    image_pixels: np.ndarray


def count_class_pixels(masks, num_classes, ignore_index=None):
    """One streamed pass over ``masks``: the counts :func:`weights_from_counts` takes.

    Args:
        masks: As for :func:`class_weights` (arrays, or a ``tf.data.Dataset``, read a batch at a
            time).
        num_classes: C; every counted mask value must be in [0, C).
        ignore_index: Mask value not counted, or None. Defaults to None.

    Returns:
        A :class:`ClassPixels`.

    Raises:
        ValueError: A mask value out of range, or masks that are not integer ``(N, H, W)``.

    Example:
        >>> counts = count_class_pixels(train_masks, 7, ignore_index=255)
        >>> weights_from_counts(counts.pixels, "median_frequency", counts.image_pixels)
    """
    pixels = np.zeros(num_classes, np.int64)
    image_pixels = np.zeros(num_classes, np.int64)
    for batch in _batches(masks):
        counts = _count(batch, num_classes, ignore_index)  # (images, C)
        pixels += counts.sum(axis=0)
        image_pixels += ((counts > 0) * counts.sum(axis=1, keepdims=True)).sum(axis=0)
    return ClassPixels(pixels, image_pixels)


def weights_from_counts(pixels, method="median_frequency", image_pixels=None, stacklevel=2):
    """The weights of :func:`class_weights` from pixel counts already made.

    Args:
        pixels: Counted pixels per class ``n_c``, ``(C,)``.
        method: As for :func:`class_weights`. Defaults to "median_frequency".
        image_pixels: For ``"median_frequency"`` only: per class, the counted pixels of the
            images in which the class appears, ``(C,)``. Defaults to None.
        stacklevel: Of the warning about absent classes. Defaults to 2.

    Returns:
        A list of ``C`` floats ``>= 0`` (0 for absent classes, with a warning).

    Example:
        >>> weights_from_counts([600, 300, 100], "inverse_frequency")
        [0.5555555555555556, 1.1111111111111112, 3.3333333333333335]
    """
    where = "class_weights"
    if method not in METHODS:
        raise ValueError(
            f"{where}: unknown `method`. Expected one of {METHODS}. Received: method={method!r}"
        )
    pixels = np.asarray(pixels, np.int64)
    if pixels.ndim != 1 or pixels.sum() <= 0 or np.any(pixels < 0):
        raise ValueError(
            f"{where}: expected pixel counts per class, >= 0 and not all 0. "
            f"Received: {pixels.tolist()}"
        )
    if method == "median_frequency" and image_pixels is None:
        raise ValueError(
            f"{where}: method='median_frequency' needs `image_pixels` (the pixels of the images "
            "holding each class); pass the masks to class_weights() instead. Received: None"
        )
    num_classes = len(pixels)
    total = pixels.sum()
    present = pixels > 0
    absent = np.flatnonzero(~present).tolist()
    if absent:
        warnings.warn(
            f"{where}: class(es) {absent} appear in no mask; their weight is 0.",
            stacklevel=stacklevel,
        )
    weights = np.zeros(num_classes)
    n_c = pixels[present].astype(np.float64)
    if method == "median_frequency":
        frequency = n_c / np.asarray(image_pixels, np.float64)[present]
        weights[present] = np.median(frequency) / frequency
    elif method == "inverse_frequency":
        weights[present] = total / (present.sum() * n_c)
    else:
        weights[present] = 1.0 / np.log(1.02 + n_c / total)
    return [float(w) for w in weights]


def _batches(masks):
    """Masks as NumPy batches ``(images, H, W)``, one at a time."""
    if isinstance(masks, tf.data.Dataset):
        for element in masks:
            if isinstance(element, dict):
                raise ValueError(
                    "class_weights: a dataset of dicts is not supported; map it to masks or "
                    f"(image, mask) first. Received an element with keys {sorted(element)}."
                )
            if isinstance(element, (tuple, list)):
                if len(element) < 2:
                    raise ValueError(
                        "class_weights: a dataset of tuples must yield (image, mask, ...). "
                        f"Received a tuple of {len(element)}."
                    )
                element = element[1]
            mask = np.asarray(element)
            if mask.ndim == 2 or (mask.ndim == 3 and mask.shape[-1] == 1):
                mask = mask[None]  # one image, (H, W) or (H, W, 1)
            yield _images(mask)
        return
    array = masks if isinstance(masks, np.ndarray) else np.asarray(masks)
    images = _images(array)
    for start in range(0, len(images), _CHUNK_IMAGES):
        yield images[start : start + _CHUNK_IMAGES]


def _images(mask):
    if mask.ndim == 4 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 3:
        raise ValueError(
            "class_weights: expected integer masks (N, H, W) or (N, H, W, 1). "
            f"Received shape {mask.shape}."
        )
    if not (np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)):
        raise ValueError(f"class_weights: expected integer masks. Received dtype {mask.dtype}.")
    return mask


def _count(images, num_classes, ignore_index):
    """Counted pixels per image and class, ``(images, C)``, after checking the values."""
    flat = images.reshape(len(images), -1)
    if np.issubdtype(flat.dtype, np.floating):
        if not np.all(flat == np.round(flat)):
            bad = flat[flat != np.round(flat)][0]
            raise ValueError(
                f"class_weights: masks must hold integer values (resize them with "
                f"nearest-neighbour). Received: value {bad}."
            )
    flat = flat.astype(np.int64)
    counted = np.ones(flat.shape, bool) if ignore_index is None else flat != ignore_index
    bad = counted & ((flat < 0) | (flat >= num_classes))
    if bad.any():
        value = int(flat[bad][0])
        raise ValueError(
            f"class_weights: mask value {value} is out of range; expected values in "
            f"[0, {num_classes - 1}]"
            + (f" or ignore_index {ignore_index}" if ignore_index is not None else "")
            + f" for num_classes={num_classes}. Received: value {value}."
        )
    rows = np.broadcast_to(np.arange(len(flat))[:, None], flat.shape)
    codes = rows[counted] * num_classes + flat[counted]
    return np.bincount(codes, minlength=len(flat) * num_classes).reshape(len(flat), num_classes)
