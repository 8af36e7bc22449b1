"""Masks as pictures: the PASCAL VOC colour map, palette PNGs and overlays.

The VOC map gives class ``c`` the colour whose bits interleave those of ``c`` (black for 0, dark
red for 1, dark green for 2, ...), as the VOC devkit's ``labelcolormap`` and MMSegmentation's
palettes do; it repeats after 256 classes.
"""

import numpy as np
from PIL import Image


def voc_palette(num_classes=256):
    """The VOC colour of each class.

    Args:
        num_classes: How many colours. Defaults to 256.

    Returns:
        uint8 ``(num_classes, 3)``.

    Example:
        >>> voc_palette(3).tolist()
        [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    classes = np.arange(num_classes) % 256
    colours = np.zeros((num_classes, 3), np.int64)
    # The devkit's loop: bit planes 7 down to 0 take bits 0, 1, 2 of the class index, then the
    # next three bits, and so on.
    index = classes.copy()
    for shift in range(7, -1, -1):
        colours[:, 0] |= (index & 1) << shift
        colours[:, 1] |= ((index >> 1) & 1) << shift
        colours[:, 2] |= ((index >> 2) & 1) << shift
        index >>= 3
    return colours.astype(np.uint8)


def class_colors(num_classes=256, table=None):
    """The colour of each class: a model's colour table's, the VOC colour of the others.

    Args:
        num_classes: How many colours. Defaults to 256.
        table: ``[{"class", "color", ...}]`` rows (a data contract's
            :meth:`~sm_pixel_ce.data.contract.DataContract.color_table`), or None. Defaults to
            None.

    Returns:
        uint8 ``(num_classes, 3)``.

    Example:
        >>> class_colors(3, [{"class": 1, "name": "sky", "color": [0, 0, 255]}]).tolist()
        [[0, 0, 0], [0, 0, 255], [0, 128, 0]]
    """
    colours = voc_palette(num_classes)
    for row in table or ():
        if 0 <= row["class"] < num_classes:
            colours[row["class"]] = row["color"]
    return colours


def _extended(colors, count):
    """``colors`` (uint8 ``(K, 3)``, or None for VOC's) with VOC colours up to ``count``."""
    if colors is None:
        return voc_palette(count)
    colors = np.asarray(colors, np.uint8)
    if len(colors) >= count:
        return colors
    return np.concatenate([colors, voc_palette(count)[len(colors) :]])


def colorize(mask, num_classes=None, colors=None):
    """A mask of class indices as an RGB picture in ``colors`` (the VOC colours).

    Args:
        mask: Integer ``(H, W)``.
        num_classes: Colours to make; None for ``mask.max() + 1``. Defaults to None.
        colors: uint8 ``(K, 3)``, the colour of each class (see :func:`class_colors`); None
            for the VOC colours. Defaults to None.

    Returns:
        uint8 ``(H, W, 3)``.
    """
    mask = np.asarray(mask)
    count = max(int(num_classes or 0), int(mask.max(initial=0)) + 1)
    return _extended(colors, count)[mask.astype(np.int64)]


def save_mask(path, mask, colors=None):
    """Write a mask of class indices as a PNG: a palette PNG in ``colors`` (its pixel values
    stay the class indices, as VOC's ``SegmentationClass`` files), 16-bit grey beyond 256 classes.

    Args:
        path: The ``.png`` to write.
        mask: Integer ``(H, W)``, values in ``[0, 65535]``.
        colors: uint8 ``(K, 3)``, the colour of each class (see :func:`class_colors`), the VOC
            colours beyond; None for the VOC colours. Defaults to None.

    Raises:
        ValueError: A value outside ``[0, 65535]``.
    """
    mask = np.asarray(mask)
    if mask.size and (mask.min() < 0 or mask.max() > 65535):
        raise ValueError(
            f"a mask PNG holds class indices 0 to 65535. Received: min={mask.min()}, "
            f"max={mask.max()}"
        )
    if mask.max(initial=0) < 256:
        picture = Image.fromarray(mask.astype(np.uint8), mode="P")
        picture.putpalette(_extended(colors, 256)[:256].ravel().tolist())
    else:
        picture = Image.fromarray(mask.astype(np.uint16))
    picture.save(path)


def overlay(image, mask, alpha=0.5, num_classes=None, colors=None):
    """An RGB picture with the mask's colours blended over it (class 0 left uncoloured).

    Args:
        image: ``(H, W, 3)`` RGB, uint8 or float in [0, 1].
        mask: Integer ``(H, W)``.
        alpha: Weight of the mask's colours. Defaults to 0.5.
        num_classes: As :func:`colorize`. Defaults to None.
        colors: As :func:`colorize`. Defaults to None.

    Returns:
        uint8 ``(H, W, 3)``.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.round(np.asarray(image, np.float32) * 255), 0, 255).astype(np.uint8)
    colours = colorize(mask, num_classes, colors).astype(np.float32)
    blended = image.astype(np.float32)
    coloured = np.asarray(mask) != 0
    blended[coloured] = (1 - alpha) * blended[coloured] + alpha * colours[coloured]
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)
