"""Sample images for int8 calibration and for the check: a folder of images, or a ``--data``-style
folder (``images/`` and, optionally, ``masks/``), read as ``sm-pixel-ce compare`` reads them.

Files are listed, paired, decoded and resized by :class:`sm_pixel_ce.data.FolderReader`, as for
``--data``: images as a model takes them (pixel values divided by their type's maximum, EXIF
orientation applied, bilinearly with antialiasing); masks with nearest neighbour, so no class is
invented.
"""

import os

import numpy as np

from ..data import IMAGE_SUFFIXES, DataError, FolderReader, find_pairs, list_files

#: At most this many calibration images are read (TFLite and onnxruntime need far fewer).
MAX_IMAGES = 200


def find_calibration_files(folder, reader=None):
    """The image files of a calibration folder, and their masks when it has ``masks/``.

    Args:
        folder: A folder of images, or a folder with ``images/`` (and optionally ``masks/``).
        reader: The :class:`~sm_pixel_ce.data.FolderReader` whose pairing applies (its
            ``mask_pattern``); None for pairing by file stem. Defaults to None.

    Returns:
        ``(image_paths, mask_paths)`` in file-stem order; ``mask_paths`` is None without
        ``masks/``, else one path per image.

    Raises:
        DataError: The folder is missing, holds no images, two files share a stem, or an image
            has no mask.

    Example:
        >>> images, masks = find_calibration_files("my_data")
    """
    reader = reader if reader is not None else FolderReader()
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(
            f"calibration folder {folder!r} does not exist (expected a folder of images, or one "
            f"with images/ and masks/). Received: calibration={folder!r}"
        )
    image_folder = os.path.join(folder, "images")
    has_images_dir = os.path.isdir(image_folder)
    where = image_folder if has_images_dir else folder
    images = list_files(where, IMAGE_SUFFIXES)
    if not images:
        raise DataError(
            f"calibration folder {where!r} holds no {'/'.join(IMAGE_SUFFIXES)} images. "
            f"Received: calibration={folder!r}"
        )
    mask_folder = reader.masks_dir or os.path.join(folder, "masks")
    if not (has_images_dir and os.path.isdir(mask_folder)):
        return list(images.values()), None
    pairs, lonely, _ = find_pairs(folder, reader.masks_dir, reader.pattern)
    if lonely:
        names = [os.path.splitext(os.path.basename(p))[0] for p in lonely]
        raise DataError(
            f"{mask_folder}: no mask for image(s) {names[:3]}; pair images and masks by file "
            "stem, or remove masks/ to calibrate on the images alone."
        )
    return [image for image, _ in pairs], [mask for _, mask in pairs]


def read_calibration(folder, height, width, limit=MAX_IMAGES, reader=None):
    """Read a calibration folder, resized to ``height`` x ``width``.

    Args:
        folder: A folder of images, or one with ``images/`` and optionally ``masks/``.
        height: Output height in pixels.
        width: Output width in pixels.
        limit: Read at most this many images (in file-stem order). Defaults to ``MAX_IMAGES``.
        reader: The :class:`~sm_pixel_ce.data.FolderReader` to read with (bands, EXIF, mask
            colours); None for ``compare``'s defaults. Defaults to None.

    Returns:
        ``(images, masks)``: float32 ``(N, height, width, C)`` as a model takes them, and
        ``(N, height, width)`` class indices, or None when the folder has no masks.

    Raises:
        DataError: Missing or empty folder, unpaired or unreadable files.

    Example:
        >>> images, masks = read_calibration("my_data", 256, 256)
    """
    reader = reader if reader is not None else FolderReader()
    image_paths, mask_paths = find_calibration_files(folder, reader)
    image_paths = image_paths[:limit]
    images = None
    for i, path in enumerate(image_paths):
        image = reader.image(path, height, width).numpy()
        if images is None:
            images = np.empty((len(image_paths), *image.shape), np.float32)
        elif image.shape != images.shape[1:]:
            raise DataError(
                f"{path}: {image.shape[-1]} channel(s), but {image_paths[0]} gives "
                f"{images.shape[-1]}; every calibration image must give the same bands."
            )
        images[i] = image
    if mask_paths is None:
        return images, None
    masks = np.empty((len(image_paths), height, width), reader.label_dtype)
    for i, path in enumerate(mask_paths[:limit]):
        masks[i] = reader.mask(path, height, width).numpy()
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
