"""Sample images for int8 calibration and for the check: a folder of images, or a ``--data``-style
folder (``images/`` and, optionally, ``masks/``), resized as ``sm-pixel-ce compare`` does.

Files are listed, paired, decoded and resized by :mod:`sm_pixel_ce.data.folder`, as for
``--data``: images to RGB in [0, 1], bilinearly with antialiasing; masks (8-bit greyscale or
palette PNGs of class indices) with nearest neighbour, so no class is invented.
"""

import os

import numpy as np
import tensorflow as tf

from ..data.folder import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    DataError,
    decode_image,
    list_files,
    pair_by_stem,
    read_mask,
    resize_mask,
)

#: At most this many calibration images are read (TFLite and onnxruntime need far fewer).
MAX_IMAGES = 200


def find_calibration_files(folder):
    """The image files of a calibration folder, and their masks when it has ``masks/``.

    Args:
        folder: A folder of images, or a folder with ``images/`` (and optionally ``masks/``).

    Returns:
        ``(image_paths, mask_paths)`` in file-stem order; ``mask_paths`` is None without
        ``masks/``, else one path per image (paired by file stem).

    Raises:
        DataError: The folder is missing, holds no images, two files share a stem, or an image
            has no mask.

    Example:
        >>> images, masks = find_calibration_files("my_data")
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(
            f"calibration folder {folder!r} does not exist (expected a folder of images, or one "
            f"with images/ and masks/). Received: calibration={folder!r}"
        )
    image_folder = os.path.join(folder, "images")
    has_images_dir = os.path.isdir(image_folder)
    images = list_files(image_folder if has_images_dir else folder, IMAGE_SUFFIXES)
    if not images:
        where = image_folder if has_images_dir else folder
        raise DataError(
            f"calibration folder {where!r} holds no {'/'.join(IMAGE_SUFFIXES)} images. "
            f"Received: calibration={folder!r}"
        )
    mask_folder = os.path.join(folder, "masks")
    if not (has_images_dir and os.path.isdir(mask_folder)):
        return list(images.values()), None
    pairs, lonely, _ = pair_by_stem(images, list_files(mask_folder, MASK_SUFFIXES))
    if lonely:
        raise DataError(
            f"{mask_folder}: no mask for image(s) {lonely[:3]}; pair images and masks by file "
            "stem, or remove masks/ to calibrate on the images alone."
        )
    return [image for image, _ in pairs], [mask for _, mask in pairs]


def read_calibration(folder, height, width, limit=MAX_IMAGES):
    """Read a calibration folder, resized to ``height`` x ``width``.

    Args:
        folder: A folder of images, or one with ``images/`` and optionally ``masks/``.
        height: Output height in pixels.
        width: Output width in pixels.
        limit: Read at most this many images (in file-stem order). Defaults to ``MAX_IMAGES``.

    Returns:
        ``(images, masks)``: float32 ``(N, height, width, 3)`` in [0, 1], and uint8
        ``(N, height, width)`` class indices, or None when the folder has no masks.

    Raises:
        DataError: Missing or empty folder, unpaired or unreadable files.

    Example:
        >>> images, masks = read_calibration("my_data", 256, 256)
    """
    image_paths, mask_paths = find_calibration_files(folder)
    image_paths = image_paths[:limit]
    images = np.empty((len(image_paths), height, width, 3), np.float32)
    for i, path in enumerate(image_paths):
        try:
            images[i] = decode_image(path, height, width).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
            first = str(getattr(error, "message", error)).strip().splitlines()[0]
            raise DataError(f"{path}: cannot decode the calibration image ({first}).") from None
    if mask_paths is None:
        return images, None
    masks = np.empty((len(image_paths), height, width), np.uint8)
    for i, path in enumerate(mask_paths[:limit]):
        masks[i] = resize_mask(read_mask(path), height, width).numpy()
    return images, masks


def representative_dataset(images):
    """A TFLite ``representative_dataset``: one float32 image (batch 1) at a time.

    Args:
        images: float32 ``(N, H, W, C)``.

    Returns:
        A function that returns a generator of ``[image[None]]``.
    """

    def generate():
        for image in images:
            yield [image[None].astype(np.float32)]

    return generate
