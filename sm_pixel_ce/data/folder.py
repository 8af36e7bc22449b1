"""Your own data: ``DIR/images/*`` and their masks, paired, checked file by file, and streamed
through ``tf.data``.

:class:`FolderReader` is the one reader of every job that reads a folder (``compare``,
``export --calibration``, and any job that predicts on one): it pairs the files
(:mod:`~sm_pixel_ce.data.pairing`), opens each pair once to check it, and decodes images
(:mod:`~sm_pixel_ce.data.images`) and masks (:mod:`~sm_pixel_ce.data.masks`) the same way
eagerly and inside ``tf.data``. The functions below it are that reader with its defaults.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from .errors import DataError, OptionsMismatch
from .images import TURNS, ImageReader, parse_bands
from .masks import MaskReader, parse_color, resize_mask
from .pairing import MaskPattern, find_pairs, unpaired


def _problem(path, error):
    """``(path, message, skippable)`` of a :class:`DataError` about ``path``."""
    return path, str(error), not isinstance(error, OptionsMismatch)


class FolderReader:
    """How a data folder's files are found, checked and read.

    Args:
        classes: Number of classes; mask values must be in ``[0, classes)`` or
            ``ignore_index``. None to read masks unchecked. Defaults to None.
        ignore_index: Mask value not counted (0 to 65535), or None. Defaults to None.
        bands: Image bands to take, 0-based (a tuple or ``"0,1,2"``), or None for RGB from
            grey and colour images and every band but alpha of a TIFF. Defaults to None.
        exif: Turn images and masks as their EXIF orientation says, as viewers do.
            Defaults to True.
        mask_colors: None for masks of class indices; the path of a JSON colour table
            (``[{"class": 1, "name": "road", "color": [128, 64, 128]}, ...]``), or
            ``"auto"`` to number the colours found in ascending (R, G, B) order. Defaults to
            None.
        ignore_color: ``(R, G, B)`` (or ``"R,G,B"``) of colour-coded masks whose pixels get
            ``ignore_index``, or None. Defaults to None.
        masks: The masks' folder, or None for ``DIR/masks``. Defaults to None.
        mask_pattern: A mask's file name from its image's stem, e.g. ``"{stem}_mask.png"``,
            or None to pair by file stem. Defaults to None.

    Raises:
        ValueError: A bad ``bands``, ``ignore_color`` or ``mask_pattern``.
        DataError: The JSON colour table cannot be used.

    Example:
        >>> reader = FolderReader(classes=11, mask_colors="auto", mask_pattern="{stem}_L.png")
        >>> pairs, skipped = reader.pair("camvid")
        >>> pairs, damaged = reader.check(pairs)
        >>> data = reader.dataset(pairs, size=128)         # streams (image, mask) elements
        >>> reader.image("camvid/images/0001TP_006690.png", 128, 128).shape
        TensorShape([128, 128, 3])
    """

    def __init__(
        self,
        classes=None,
        ignore_index=None,
        bands=None,
        exif=True,
        mask_colors=None,
        ignore_color=None,
        masks=None,
        mask_pattern=None,
    ):
        self.classes, self.ignore_index = classes, ignore_index
        self.masks_dir = masks
        self.pattern = None if mask_pattern is None else MaskPattern(mask_pattern)
        self.image_reader = ImageReader(parse_bands(bands), exif)
        self.mask_reader = MaskReader(
            classes, ignore_index, mask_colors, parse_color(ignore_color), exif
        )
        #: The :class:`~sm_pixel_ce.data.images.ImageKind` of the images, once known.
        self.kind = None
        self._first = None
        #: Images of the last :meth:`check` that their EXIF orientation turned.
        self.turned = 0

    @property
    def exif(self):
        return self.image_reader.exif

    @property
    def label_dtype(self):
        """NumPy type of the masks as streamed: uint8, or uint16 beyond 256 values."""
        return self.mask_reader.dtype

    # --- pairing and checking ---------------------------------------------------------------

    def pair(self, folder, skip_bad=False):
        """Pair ``folder/images/*`` with their masks (by stem, or by ``mask_pattern``).

        Args:
            folder: The data folder.
            skip_bad: Leave the unpaired files out instead of stopping. Defaults to False.

        Returns:
            ``(pairs, skipped)``: ``(image_path, mask_path)`` sorted by image stem, and
            ``[{"image", "mask", "file", "reason"}]`` for each file left out.

        Raises:
            DataError: A folder is missing or empty, or (without ``skip_bad``) some files are
                unpaired: how many, the first few, and what to do.
        """
        pairs, images_alone, masks_alone = find_pairs(folder, self.masks_dir, self.pattern)
        if not (images_alone or masks_alone):
            return pairs, []
        if not skip_bad:
            raise DataError(unpaired(folder, images_alone, masks_alone, self.pattern))
        masks_dir = self.masks_dir or os.path.join(folder, "masks")
        skipped = []
        for path in images_alone:
            stem = os.path.splitext(os.path.basename(path))[0]
            wanted = self.pattern.name(stem) if self.pattern else f"{stem}.png or .tif"
            reason = f"{path}: no mask ({wanted} is not in {masks_dir})."
            skipped.append({"image": path, "mask": None, "file": path, "reason": reason})
        for path in masks_alone:
            reason = f"{path}: no image of its stem in {os.path.join(folder, 'images')}."
            skipped.append({"image": None, "mask": path, "file": path, "reason": reason})
        return pairs, skipped

    def check_pair(self, image_path, mask_path):
        """Open one pair fully: the image decodes and has the bands asked for, the mask holds
        classes in range (or colours of the table), the sizes agree.

        Returns:
            None when the pair is usable, else ``(path, message, skippable)``: the file at
            fault, one line naming it and what is wrong, and whether ``--skip-bad`` may drop
            the pair (a damaged file or mismatched sizes; not a mask or image that does not
            fit the options: a mode without classes, values out of range, an unknown colour,
            a missing band).
        """
        return self._inspect(image_path, mask_path)[0]

    def _inspect(self, image_path, mask_path):
        """``(problem, image info, mask colours)`` of one pair (colours with ``auto``)."""
        images, masks = self.image_reader, self.mask_reader
        try:
            info = images.info(image_path, verify=True)
            images.bands_of(info)
        except DataError as error:
            return _problem(image_path, error), None, None
        colours = mask = None
        try:
            if masks.auto:
                shape, colours = masks.count_colors(mask_path)
            else:
                mask = masks.raw(mask_path)
                shape = mask.shape
        except DataError as error:
            return _problem(mask_path, error), info, None
        problem = self._size_problem(info, image_path, mask_path, shape)
        if problem is None and mask is not None:
            try:
                masks.check(mask_path, mask)
            except DataError as error:
                problem = _problem(mask_path, error)
        return problem, info, colours

    def _size_problem(self, info, image_path, mask_path, shape):
        mask_size = (shape[1], shape[0])
        width, height = info.size(self.exif)
        if mask_size == (width, height):
            return None
        text = f"{mask_path}: the mask is {mask_size[0]}x{mask_size[1]} px"
        turn = f"EXIF orientation {info.orientation}: {TURNS[info.orientation]}"
        if info.orientation in (5, 6, 7, 8) and mask_size == info.size(not self.exif):
            if self.exif:
                text += (
                    f", the size of its image {image_path} as stored, but the image's {turn} "
                    f"shows it as {width}x{height} px, as viewers and annotation tools do; "
                    "draw the mask on that view, or pass --no-exif to read images as stored."
                )
            else:
                text += (
                    f", the size of its image {image_path} as viewers show it ({turn}), but "
                    f"--no-exif reads the image as stored, {width}x{height} px; drop --no-exif."
                )
        else:
            text += (
                f" but its image {image_path} is {width}x{height} px"
                + (f" ({turn})" if info.orientation != 1 and self.exif else "")
                + "; a mask must have its image's size."
            )
        return mask_path, text, True

    def _kind_problem(self, info):
        kind = self.image_reader.kind_of(info)
        if self.kind is None:
            self.kind, self._first = kind, info.path
        if kind == self.kind:
            return None
        return (
            info.path,
            f"{info.path}: {kind}, but {self._first} gives {self.kind}; every image must "
            "give the same bands and sample type (choose bands with --bands).",
            False,
        )

    def check(self, pairs, skip_bad=False, workers=None):
        """Open every pair once before training (:meth:`check_pair`), a few at a time; learn
        the images' kind and, with ``mask_colors="auto"``, number the colours found.

        Args:
            pairs: ``(image_path, mask_path)`` list from :meth:`pair`.
            skip_bad: Drop damaged pairs instead of stopping. Defaults to False.
            workers: Threads (Pillow and tifffile decode outside the GIL); None for the CPU
                count. Defaults to None.

        Returns:
            ``(good_pairs, skipped)``: the usable pairs in order, and ``[{"image", "mask",
            "file", "reason"}]`` for each pair dropped under ``skip_bad``.

        Raises:
            DataError: The first bad pair in folder order (one line naming the file), when not
                ``skip_bad`` or when the fault is not one ``skip_bad`` may drop; with
                ``"auto"``, colours whose number is not ``classes``.
        """
        good, skipped, counts = [], [], {}
        self.turned = 0
        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            checks = pool.map(lambda pair: self._inspect(*pair), pairs)
            try:
                for (image_path, mask_path), (problem, info, colours) in zip(pairs, checks):
                    if problem is None:
                        problem = self._kind_problem(info)
                    if problem is None:
                        good.append((image_path, mask_path))
                        self.turned += self.exif and info.orientation != 1
                        for key, pixels in (colours or {}).items():
                            counts[key] = counts.get(key, 0) + pixels
                        continue
                    path, message, skippable = problem
                    if not (skip_bad and skippable):
                        raise (DataError if skippable else OptionsMismatch)(message)
                    skipped.append(
                        {"image": image_path, "mask": mask_path, "file": path, "reason": message}
                    )
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        if self.mask_reader.auto and good:
            self.mask_reader.learn(counts)
        return good, skipped

    # --- reading ------------------------------------------------------------------------------

    def read_image(self, path):
        """An image's pixels ``(H, W, C)`` in its own sample type, turned by its EXIF
        orientation, with the bands chosen (see :meth:`ImageReader.read`)."""
        return self.image_reader.read(path)

    def image(self, path, height, width):
        """An image as a model takes it: float32 ``(height, width, C)``, pixel values divided
        by their type's maximum (255, 65535; float data as they are), resized bilinearly with
        antialiasing."""
        return self.image_reader.decode(path, height, width)

    def read_mask(self, path):
        """A mask's classes ``(H, W)``, of :attr:`label_dtype` (colours mapped)."""
        return self.mask_reader.read(os.fspath(path))

    def mask(self, path, height, width):
        """A mask's classes resized to ``(height, width)`` with nearest neighbour."""
        return resize_mask(self.read_mask(path), height, width)

    def image_kind(self, paths=()):
        """The images' :class:`~sm_pixel_ce.data.images.ImageKind`: learnt by :meth:`check`,
        else from the first of ``paths`` that can be probed."""
        if self.kind is None:
            for path in paths:
                try:
                    info = self.image_reader.info(path)
                except DataError:
                    continue
                self.kind, self._first = self.image_reader.kind_of(info), info.path
                break
            else:
                raise DataError("no image of the folder could be read.")
        return self.kind

    def class_names(self):
        """A name per class: the colour table's, else ``"class <c>"``."""
        table = self.mask_reader.table
        if table is not None:
            return table.class_names(self.classes)
        return [f"class {c}" for c in range(self.classes)]

    def describe(self):
        """What the report records of the data: ``{"input": {...}}``, and ``"mask_colors"``
        (the table, with pixel counts for ``auto``) for colour-coded masks."""
        kind = self.kind
        bands = self.image_reader.bands
        facts = {
            "input": {
                "dtype": None if kind is None else kind.dtype,
                "channels": None if kind is None else kind.channels,
                "bands": None if bands is None else list(bands),
                "divided_by": None if kind is None else kind.scale,
                "standardised": None if kind is None else kind.standardised,
                "exif": self.exif,
                "turned_by_exif": int(self.turned),
            }
        }
        table = self.mask_reader.table
        if table is not None:
            facts["mask_colors"] = {"source": table.source, "colors": table.entries()}
        return facts

    # --- streaming ----------------------------------------------------------------------------

    def _decoder(self, paths, height, width):
        kind = self.image_kind(paths)
        routes, orientations = self.image_reader.elements(paths, kind)
        decode = self.image_reader.graph_decoder(kind, height, width, routes, orientations)
        return decode, routes, orientations

    def _mask_tensor(self, path, size):
        # Palette PNGs must keep their indices: TensorFlow's decoder expands palettes to colours.
        mask = tf.numpy_function(
            self._read_mask_for_dataset, [path], tf.as_dtype(self.label_dtype), stateful=False
        )
        mask.set_shape((None, None))
        return resize_mask(mask, size, size)

    def _read_mask_for_dataset(self, path):
        return self.read_mask(path.decode() if isinstance(path, bytes) else str(path))

    def _count_colors(self, pairs):
        """The ``auto`` pass, for pairs that were not checked."""
        if self.mask_reader.auto and self.mask_reader.table is None:
            counts = {}
            for _, mask_path in pairs:
                for key, pixels in self.mask_reader.count_colors(mask_path)[1].items():
                    counts[key] = counts.get(key, 0) + pixels
            self.mask_reader.learn(counts)

    def dataset(self, pairs, size, shuffle_seed=None):
        """A ``tf.data.Dataset`` of ``(image, mask)``: float32 ``(size, size, C)`` as
        :meth:`image` gives it, masks ``(size, size)`` of :attr:`label_dtype`, read from disk
        as it is consumed.

        Args:
            pairs: ``(image_path, mask_path)`` list.
            size: Output side in pixels.
            shuffle_seed: Shuffle the file names (before decoding, afresh every pass) with this
                seed, or None to keep the order of ``pairs``. Defaults to None.
        """
        self._count_colors(pairs)
        images = [p for p, _ in pairs]
        decode, routes, orientations = self._decoder(images, size, size)
        paths = tf.data.Dataset.from_tensor_slices(
            (
                tf.constant(images),
                tf.constant(routes, tf.int32),
                tf.constant(orientations, tf.int32),
                tf.constant([m for _, m in pairs]),
            )
        )
        if shuffle_seed is not None:
            paths = paths.shuffle(len(pairs), seed=shuffle_seed, reshuffle_each_iteration=True)
        return paths.map(
            lambda image, route, orientation, mask: (
                decode(image, route, orientation),
                self._mask_tensor(mask, size),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def image_dataset(self, paths, size):
        """The images alone, in order: float32 ``(size, size, C)`` as :meth:`image` gives
        them (for a job that predicts on a folder)."""
        paths = [os.fspath(p) for p in paths]
        decode, routes, orientations = self._decoder(paths, size, size)
        data = tf.data.Dataset.from_tensor_slices(
            (tf.constant(paths), tf.constant(routes, tf.int32), tf.constant(orientations, tf.int32))
        )
        return data.map(decode, num_parallel_calls=tf.data.AUTOTUNE)

    def mask_dataset(self, pairs, size):
        """The masks of ``pairs`` alone, as :meth:`dataset` gives them (no image decoded)."""
        self._count_colors(pairs)
        paths = tf.data.Dataset.from_tensor_slices(tf.constant([m for _, m in pairs]))
        return paths.map(
            lambda path: self._mask_tensor(path, size), num_parallel_calls=tf.data.AUTOTUNE
        )

    def locate_error(self, pairs, error):
        """The pair file behind a ``tf.data`` error met while streaming ``pairs``, as a
        :class:`DataError`, or None when no file is at fault.

        A file read in Python already names itself; an image TensorFlow cannot decode is found
        by decoding each image again (only on this error path).
        """
        message = str(getattr(error, "message", error))
        for image_path, mask_path in pairs:
            for path in (mask_path, image_path):
                if path in message:
                    line = next((x for x in message.splitlines() if path in x), path)
                    line = line.split("DataError: ", 1)[-1].split("OptionsMismatch: ", 1)[-1]
                    line = line.strip()
                    return DataError(line if line.startswith(path) else f"{path}: {line}")
        for image_path, _ in pairs:
            try:
                self.image_reader.read(image_path)
            except DataError as bad:
                return bad
        return None


def pair_files(folder, masks=None, mask_pattern=None):
    """Pair ``folder/images/*`` with ``folder/masks/<stem>.png`` (or ``.tif``), or with the masks
    of ``mask_pattern`` in ``masks``.

    Returns:
        A list of ``(image_path, mask_path)`` sorted by stem.

    Raises:
        DataError: A folder is missing or empty, a stem has no partner or two files.

    Example:
        >>> pairs = pair_files("my_data")   # my_data/images/a.jpg + my_data/masks/a.png, ...
    """
    return FolderReader(masks=masks, mask_pattern=mask_pattern).pair(folder)[0]


def check_pair(image_path, mask_path, classes, ignore_index=None):
    """:meth:`FolderReader.check_pair` of a reader of ``classes`` index masks."""
    return FolderReader(classes, ignore_index).check_pair(image_path, mask_path)


def check_pairs(pairs, classes=None, ignore_index=None, skip_bad=False, workers=None, reader=None):
    """Open every pair once before training (:meth:`FolderReader.check`).

    Args:
        pairs: ``(image_path, mask_path)`` list from :func:`pair_files`.
        classes: Number of classes (without ``reader``).
        ignore_index: Mask value not counted, or None (without ``reader``). Defaults to None.
        skip_bad: Drop damaged pairs instead of stopping. Defaults to False.
        workers: Threads; None for the CPU count. Defaults to None.
        reader: The :class:`FolderReader` to check with (it learns the images' kind and the
            ``auto`` colours); None for one of ``classes`` index masks. Defaults to None.

    Returns:
        ``(good_pairs, skipped)``, as :meth:`FolderReader.check`.

    Example:
        >>> good, skipped = check_pairs(pair_files("my_data"), classes=21, ignore_index=255)
    """
    reader = reader if reader is not None else FolderReader(classes, ignore_index)
    return reader.check(pairs, skip_bad=skip_bad, workers=workers)


def decode_image(path, height, width, bands=None, exif=True):
    """An image file as a model takes it (:meth:`FolderReader.image`): float32
    ``(height, width, C)``, pixel values divided by their type's maximum, resized bilinearly
    with antialiasing; 3 channels for grey and colour images unless ``bands`` says otherwise.

    Raises:
        DataError: The file cannot be decoded (one line naming it).

    Example:
        >>> decode_image("my_data/images/a.jpg", 128, 128).shape
        TensorShape([128, 128, 3])
    """
    return ImageReader(bands, exif).decode(os.fspath(path), height, width)


def folder_dataset(pairs, size, shuffle_seed=None, reader=None):
    """:meth:`FolderReader.dataset` of ``reader`` (a default one: 3-channel images, index
    masks)."""
    return (reader or FolderReader()).dataset(pairs, size, shuffle_seed)


def folder_masks(pairs, size, reader=None):
    """:meth:`FolderReader.mask_dataset` of ``reader`` (a default one)."""
    return (reader or FolderReader()).mask_dataset(pairs, size)


def locate_bad_file(pairs, error, reader=None):
    """:meth:`FolderReader.locate_error` of ``reader`` (a default one)."""
    return (reader or FolderReader()).locate_error(pairs, error)


def load_folder(folder, classes, size=64, ignore_index=None, **options):
    """Load and check a small data folder into memory (``compare`` streams instead: see
    :class:`~sm_pixel_ce.data.sources.FolderSource`).

    Args:
        folder: ``DIR`` with ``images/`` and ``masks/``.
        classes: Number of classes; mask values must be in ``[0, classes)`` or ``ignore_index``.
        size: Side the images and masks are resized to. Defaults to 64.
        ignore_index: Mask value that marks pixels not to count (e.g. 255), or None.
            Defaults to None.
        **options: Other :class:`FolderReader` arguments (``bands``, ``mask_colors``, ...).

    Returns:
        ``(images, masks)``: float32 ``(N, size, size, C)``, masks ``(N, size, size)``.

    Raises:
        DataError: Missing folders, unpaired files, unreadable files, mismatched sizes,
            out-of-range mask values; the message names the file.

    Example:
        >>> images, masks = load_folder("my_data", classes=7, size=128, ignore_index=255)
    """
    reader = FolderReader(classes, ignore_index, **options)
    pairs, _ = reader.check(reader.pair(folder)[0])
    images, masks = [], []
    try:
        for image, mask in reader.dataset(pairs, size).batch(32).as_numpy_iterator():
            images.append(image)
            masks.append(mask)
    except tf.errors.OpError as error:
        raise (reader.locate_error(pairs, error) or error) from None
    return np.concatenate(images), np.concatenate(masks)
