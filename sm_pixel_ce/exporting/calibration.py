"""Sample images for int8 calibration and for the check: a folder of images, or a ``--data``-style
folder (``images/`` and, optionally, ``masks/``), read as ``sm-pixel-ce compare`` reads them.

Files are listed, paired, decoded and resized by :class:`sm_pixel_ce.data.FolderReader`, as for
``--data``: images as a model takes them (pixel values divided by their type's maximum, EXIF
orientation applied, bilinearly with antialiasing); masks with nearest neighbour, so no class is
invented. :class:`CalibrationOptions` holds the reading options that apply to such a folder.
"""

import dataclasses
import os

import numpy as np

from ..data import IMAGE_SUFFIXES, DataError, FolderReader, find_pairs, list_files
from ..data.options import CONTRACT_FIELDS, ReadOptions, options_from_contract, reads

#: At most this many calibration images are read (TFLite and onnxruntime need far fewer).
MAX_IMAGES = 200


@reads("masks", "mask_pattern", "bands", "scale", "no_exif")
@dataclasses.dataclass(frozen=True)
class CalibrationOptions:
    """How ``export`` reads its calibration folder, checked when made.

    Attributes:
        folder: A folder of images, or one with ``images/`` (and optionally ``masks/``); None
            for none. Defaults to None.
        read: The reading options that apply to it (``masks``, ``mask_pattern``, ``bands``,
            ``scale``, ``no_exif`` of :class:`~sm_pixel_ce.data.options.ReadOptions`), given
            and read as flat keywords and attributes.

    Raises:
        ValueError: A bad reading option, or one given without ``folder``.

    Example:
        >>> CalibrationOptions(folder="my_data", bands="0,1,2").read.bands
        '0,1,2'
    """

    folder: str = None
    read: ReadOptions = dataclasses.field(default_factory=ReadOptions)

    def __post_init__(self):
        given = [name for name in self.READS if getattr(self.read, name) is not None]
        if self.folder is None and given:
            raise ValueError(
                f"--{given[0].replace('_', '-')} says how the --calibration folder is read; "
                f"pass --calibration DIR. Received: {given[0]}={getattr(self.read, given[0])!r}"
            )


def calibration_reader(options, contract):
    """The :class:`~sm_pixel_ce.data.FolderReader` of a calibration folder and the scale its
    pixels are divided by (None for their type's maximum): the options given, the rest as the
    model's data contract says (bands, scale, EXIF; its masks' classes, colours and ignore
    index).

    Args:
        options: :class:`CalibrationOptions`.
        contract: The model's :class:`~sm_pixel_ce.data.contract.DataContract`, or None.

    Returns:
        ``(reader, scale)``.

    Raises:
        ValueError: A reading option that contradicts the contract (one line, both values).
    """
    read = options_from_contract(options.read, contract, CONTRACT_FIELDS)
    return read.reader(None if contract is None else contract.classes), read.scale


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


def read_calibration(folder, height, width, limit=MAX_IMAGES, reader=None, scale=None):
    """Read a calibration folder, resized to ``height`` x ``width``.

    Args:
        folder: A folder of images, or one with ``images/`` and optionally ``masks/``.
        height: Output height in pixels.
        width: Output width in pixels.
        limit: Read at most this many images (in file-stem order). Defaults to ``MAX_IMAGES``.
        reader: The :class:`~sm_pixel_ce.data.FolderReader` to read with (bands, EXIF, mask
            colours); None for ``compare``'s defaults. Defaults to None.
        scale: Divide pixel values by this instead of their type's maximum (``--scale``); None
            for the maximum. Defaults to None.

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
    factor = None if scale is None else reader.image_kind(image_paths).scale / float(scale)
    images = None
    for i, path in enumerate(image_paths):
        image = reader.image(path, height, width).numpy()
        if factor is not None:
            image *= np.float32(factor)
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
