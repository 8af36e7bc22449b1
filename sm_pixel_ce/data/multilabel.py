"""Masks of multi-label data, where a pixel may hold several classes at once (a sigmoid per
class): one multi-channel mask per image, or one binary mask per class.

* ``masks/{stem}.png`` or ``.tif`` with K channels (a K-band TIFF, or an RGB(A) PNG for K = 3
  or 4): channel k is class k, any value above 0 is "present";
* ``masks/{stem}_{class}.png`` (or ``.tif``), one binary file per class, ``{class}`` the class's
  name (``--class-names``) or its index: any value above 0 is "present".

Masks are turned by their EXIF orientation as index masks are (see
:mod:`~sm_pixel_ce.data.masks`).
"""

import os

import numpy as np

from .._messages import first_line
from .errors import DataError
from .images import IMAGE_SUFFIXES
from .masks import MASK_SUFFIXES, open_mask
from .pairing import list_files


def multilabel_pairs(folder, class_names, masks=None):
    """Pair ``folder/images/*`` with their multi-label masks.

    Args:
        folder: The data folder.
        class_names: A name per class (K); per-class files are ``{stem}_{name}.png``, or
            ``{stem}_{index}.png``.
        masks: The masks' folder; None for ``folder/masks``. Defaults to None.

    Returns:
        ``[(image_path, mask)]`` sorted by stem, ``mask`` a path (one multi-channel file) or a
        tuple of K paths (one file per class).

    Raises:
        DataError: A folder is missing or holds no image, or an image has no mask (naming the
            files looked for).
    """
    images_dir = os.path.join(folder, "images")
    masks_dir = masks or os.path.join(folder, "masks")
    for path in (images_dir, masks_dir):
        if not os.path.isdir(path):
            raise DataError(f"{path}: no such folder; a data folder holds images/ and masks/.")
    images = list_files(images_dir, IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"{images_dir}: no image files ({', '.join(IMAGE_SUFFIXES)}).")
    files = list_files(masks_dir, MASK_SUFFIXES)
    pairs = []
    for stem, image in images.items():
        if stem in files:
            pairs.append((image, files[stem]))
            continue
        per_class = []
        for index, name in enumerate(class_names):
            path = files.get(f"{stem}_{name}", files.get(f"{stem}_{index}"))
            if path is None:
                raise DataError(
                    f"{image}: no multi-label mask: neither {stem}.png (K channels) nor "
                    f"{stem}_{name}.png (or {stem}_{index}.png) is in {masks_dir}."
                )
            per_class.append(path)
        pairs.append((image, tuple(per_class)))
    return pairs


def read_multilabel_mask(mask, num_classes, exif=True):
    """A multi-label mask as booleans ``(H, W, K)``.

    Args:
        mask: One multi-channel file's path, or a tuple of K binary files.
        num_classes: K.
        exif: Turn the masks by their EXIF orientation. Defaults to True.

    Returns:
        bool ``(H, W, K)``.

    Raises:
        DataError: A file cannot be read, has not K channels, or the per-class files differ in
            size (naming the file).
    """
    paths = (mask,) if isinstance(mask, (str, os.PathLike)) else tuple(mask)
    planes = []
    for path in paths:
        try:
            array, _ = open_mask(os.fspath(path), exif, colored=False)
        except Exception as error:  # Pillow and tifffile raise many types for a damaged file
            raise DataError(f"{path}: cannot read the mask ({first_line(error)}).") from None
        array = np.asarray(array)
        if len(paths) > 1:
            if array.ndim == 3:
                array = array.max(-1)
            if planes and array.shape != planes[0].shape:
                raise DataError(
                    f"{path}: {array.shape[1]}x{array.shape[0]} px, but "
                    f"{paths[0]} is {planes[0].shape[1]}x{planes[0].shape[0]} px; the "
                    "per-class masks of an image must have its size."
                )
            planes.append(array > 0)
            continue
        channels = 1 if array.ndim == 2 else array.shape[-1]
        if channels != num_classes:
            raise DataError(
                f"{path}: {channels} channel(s), expected {num_classes} (one per class of the "
                "multi-label model), or one binary file per class, {stem}_{class}.png."
            )
        return (array > 0).reshape(array.shape[0], array.shape[1], num_classes)
    return np.stack(planes, axis=-1)
