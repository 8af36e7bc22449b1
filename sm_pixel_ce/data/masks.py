"""Masks as every job reads them: class indices, or colours mapped to classes.

* **Index masks**: 8-bit greyscale (``L``) or palette (``P``) PNGs, whose *indices* are the
  classes (as in PASCAL VOC, where 255 marks void borders); 16-bit greyscale PNGs and
  single-band TIFFs (uint8 or uint16), for up to 65535 classes.
* **Colour-coded masks** (CamVid, Cityscapes' colour PNGs): RGB (or any Pillow mode, converted
  to RGB), with a :class:`ColorTable` from a JSON file, or numbered from the colours found
  (``"auto"``: ascending (R, G, B) order).

Masks are turned by their EXIF orientation like images, and resized with nearest neighbour
only, so no value between two classes is ever invented.
"""

import json
import os

import numpy as np
import tensorflow as tf

from .._messages import first_line
from .errors import DataError, OptionsMismatch, some
from .images import EXIF_ORIENTATION, TIFF_SUFFIXES, orient

MASK_SUFFIXES = (".png", ".tif", ".tiff")
#: Pillow modes whose pixel values are the class indices themselves.
INDEX_MODES = ("1", "L", "P", "I;16", "I;16L", "I;16B", "I;16N", "I")
#: ``--mask-colors`` value that numbers the colours found in the masks.
AUTO = "auto"


def label_dtype(classes, ignore_index=None):
    """The smallest unsigned type that holds every class index and the ignore value: uint8
    up to 256 classes (ignore value <= 255), else uint16.

    Example:
        >>> label_dtype(21, 255), label_dtype(300), label_dtype(3, 65535)
        (<class 'numpy.uint8'>, <class 'numpy.uint16'>, <class 'numpy.uint16'>)
    """
    top = max((classes or 1) - 1, -1 if ignore_index is None else int(ignore_index))
    return np.uint8 if top <= 255 else np.uint16


def default_ignore_index(classes):
    """The value ``--ignore-color`` pixels get without ``--ignore-index``: 255, or 65535 with
    more than 255 classes."""
    return 255 if classes is None or classes <= 255 else 65535


def parse_color(text):
    """``"128,64,128"`` (or a sequence) -> ``(128, 64, 128)``; None -> None.

    Raises:
        ValueError: Not three integers in [0, 255].
    """
    if text is None:
        return None
    try:
        values = (
            tuple(int(v) for v in text.split(","))
            if isinstance(text, str)
            else tuple(int(v) for v in text)
        )
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise ValueError(
            f"--ignore-color must be R,G,B with values in [0, 255], e.g. 0,0,0; received {text!r}."
        )
    return values


def color_text(color):
    """``(128, 64, 128)`` -> ``"(128,64,128)"``."""
    return "(" + ",".join(str(int(c)) for c in color) + ")"


def _keys(rgb):
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _color(key):
    key = int(key)
    return key >> 16, (key >> 8) & 255, key & 255


class ColorTable:
    """Colour -> class of colour-coded masks, and the classes' names.

    Args:
        colors: ``(R, G, B)`` per entry.
        classes: The class of each entry (the ignore value for the colour not counted).
        names: A name per entry, or None. Defaults to None.
        pixels: Pixels of each colour in the folder (``auto``), or None. Defaults to None.
        source: Where the table came from: a JSON file's path, or ``"auto"``. Defaults to
            ``"auto"``.

    Raises:
        DataError: Two entries have the same colour.

    Example:
        >>> table = ColorTable.from_json("colors.json", classes=3)
        >>> table.lookup(np.array([[[128, 64, 128]]], np.uint8), "a.png")
        array([[1]])
    """

    def __init__(self, colors, classes, names=None, pixels=None, source=AUTO):
        self.colors = [tuple(int(v) for v in c) for c in colors]
        self.classes = [int(c) for c in classes]
        self.names = list(names) if names is not None else [None] * len(self.colors)
        self.pixels = None if pixels is None else [int(p) for p in pixels]
        self.source = source
        keys = _keys(np.array(self.colors, np.int32).reshape(-1, 3))
        order = np.argsort(keys, kind="stable")
        self._keys, self._classes = keys[order], np.array(self.classes, np.int64)[order]
        if len(np.unique(keys)) != len(keys):
            twice = next(c for i, c in enumerate(self.colors) if c in self.colors[:i])
            raise DataError(f"{source}: the colour {color_text(twice)} is listed twice.")

    @classmethod
    def from_json(cls, path, classes=None, ignore_index=None, ignore_color=None):
        """Read ``[{"class": 1, "name": "road", "color": [128, 64, 128]}, ...]``.

        Args:
            path: The JSON file.
            classes: Number of classes; every entry's class must be below it (or the ignore
                value). None to skip the check. Defaults to None.
            ignore_index: Value of the pixels not counted, or None. Defaults to None.
            ignore_color: ``(R, G, B)`` whose pixels get ``ignore_index``, or None. Defaults
                to None.

        Raises:
            DataError: The file is missing, is not such a list, or an entry does not fit
                (one line naming the file and the entry).
        """
        example = '[{"class": 1, "name": "road", "color": [128, 64, 128]}, ...]'
        try:
            with open(path) as f:
                entries = json.load(f)
        except (OSError, ValueError) as error:
            raise DataError(
                f"{path}: cannot read the --mask-colors table ({first_line(error)})."
            ) from None
        if not isinstance(entries, list) or not entries:
            raise DataError(f"{path}: --mask-colors expects a JSON list such as {example}.")
        colors, numbers, names = [], [], []
        for i, entry in enumerate(entries):
            try:
                number = entry["class"]
                color = parse_color(entry["color"])
                name = entry.get("name")
                if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                    raise ValueError
            except (TypeError, KeyError, ValueError, AttributeError):
                raise DataError(
                    f"{path}: entry {i} ({json.dumps(entry)[:80]}) is not "
                    '{"class": <int >= 0>, "name": <text>, "color": [R, G, B]} '
                    "with R, G, B in [0, 255]."
                ) from None
            if classes is not None and number >= classes and number != ignore_index:
                raise DataError(
                    f"{path}: entry {i} has class {number}, out of range for --classes "
                    f"{classes}"
                    + (f" (ignore value {ignore_index})" if ignore_index is not None else "")
                    + "."
                )
            colors.append(color)
            numbers.append(number)
            names.append(None if name is None else str(name))
        if ignore_color is not None and tuple(ignore_color) not in colors:
            colors.append(tuple(ignore_color))
            numbers.append(ignore_index)
            names.append(None)
        return cls(colors, numbers, names, source=os.fspath(path))

    @classmethod
    def from_counts(cls, counts, classes, ignore_index=None, ignore_color=None):
        """Number the colours found in the masks in ascending (R, G, B) order.

        Args:
            counts: ``{colour key: pixels}`` over the folder (see
                :meth:`MaskReader.count_colors`).
            classes: Number of classes: the colours found, ``ignore_color`` apart.
            ignore_index: Value of the ``ignore_color`` pixels. Defaults to None.
            ignore_color: ``(R, G, B)`` that is not a class, or None. Defaults to None.

        Raises:
            DataError: The number of colours is not ``classes`` (the message lists them with
                their pixel counts).
        """
        ignored = None if ignore_color is None else int(_keys(np.array(ignore_color)))
        keys = sorted(k for k in counts if k != ignored)
        if len(keys) != classes:
            listed = some(
                (f"{color_text(_color(k))} {counts[k]} px" for k in keys),
                limit=12,
            )
            hint = (
                "; masks saved with smoothing or as JPEG blend colours: save them without"
                if len(keys) > max(2 * classes, 64)
                else ""
            )
            raise DataError(
                f"--mask-colors auto: the masks hold {len(keys)} colour(s)"
                + (f" besides --ignore-color {color_text(ignore_color)}" if ignored else "")
                + f" but --classes is {classes}: {listed}{hint}. Pass --classes {len(keys)}"
                + ", or --ignore-color R,G,B for a colour that is not a class."
            )
        colors = [_color(k) for k in keys]
        numbers, pixels = list(range(len(keys))), [counts[k] for k in keys]
        if ignored is not None:
            colors.append(tuple(ignore_color))
            numbers.append(ignore_index)
            pixels.append(counts.get(ignored, 0))
        return cls(colors, numbers, [None] * len(colors), pixels, AUTO)

    def lookup(self, rgb, path):
        """Classes ``(H, W)`` int64 of an RGB mask ``(H, W, 3)``.

        Raises:
            OptionsMismatch: A colour of the mask is not in the table (named, with the file).
        """
        keys = _keys(rgb)
        where = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        known = self._keys[where] == keys
        if not known.all():
            unknown, pixels = np.unique(keys[~known], return_counts=True)
            listed = some(
                (f"{color_text(_color(k))} ({n} px)" for k, n in zip(unknown, pixels)), limit=5
            )
            raise OptionsMismatch(
                f"{path}: colour(s) {listed} not in --mask-colors {self.source}; add them to "
                "the table (or mark one with --ignore-color R,G,B)."
            )
        return self._classes[where]

    def class_names(self, classes):
        """A name per class in ``range(classes)``: the table's, else the colour's, else
        ``"class <c>"``."""
        names = [f"class {c}" for c in range(classes)]
        given = [False] * classes
        for color, number, name in zip(self.colors, self.classes, self.names):
            if 0 <= number < classes and not given[number]:
                names[number] = name if name else color_text(color)
                given[number] = name is not None or self.source == AUTO
        return names

    def entries(self):
        """The table as the report lists it: ``[{"class", "name", "color", "pixels"?}]``."""
        rows = []
        for i, (color, number, name) in enumerate(zip(self.colors, self.classes, self.names)):
            row = {"class": number, "name": name, "color": list(color)}
            if self.pixels is not None:
                row["pixels"] = self.pixels[i]
            rows.append(row)
        return rows


#: Pillow modes whose pixels are values, never colours.
_VALUE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def open_mask(path, exif, colored):
    """``(array, mode)``: a mask file's pixels, turned by its orientation with ``exif``, and
    what the file holds (a Pillow mode, ``"L"``, ``"I;16"`` or ``"RGB"`` for a TIFF, or a
    description of another TIFF). With ``colored``, colour and grey files come as RGB."""
    if os.path.splitext(path)[1].lower() in TIFF_SUFFIXES:
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            array = np.asarray(tiff.series[0].asarray())
            tag = tiff.pages[0].tags.get("Orientation")
        array = np.squeeze(array) if array.ndim > 2 else array
        orientation = int(tag.value) if tag is not None else 1
        bands = 1 if array.ndim == 2 else array.shape[-1]
        mode = f"TIFF of {bands} band(s) of {array.dtype}"
        if array.ndim == 2 and array.dtype in (np.uint8, np.uint16):
            mode = "I;16" if array.dtype == np.uint16 else "L"
            if colored and mode == "L":
                array = np.repeat(array[..., None], 3, axis=-1)
        elif array.ndim == 3 and bands in (3, 4) and array.dtype == np.uint8:
            mode, array = "RGB", array[..., :3]
    else:
        from PIL import Image

        with Image.open(path) as image:
            image.load()
            mode = image.mode
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            if colored and mode not in _VALUE_MODES:
                image = image.convert("RGB")
            array = np.asarray(image)
    return (orient(array, orientation) if exif else array), mode


class MaskReader:
    """How masks are read: index masks, or colours mapped by a :class:`ColorTable`.

    Args:
        classes: Number of classes, or None (then values are not checked). Defaults to None.
        ignore_index: Value of the pixels not counted, or None. Defaults to None.
        colors: None (index masks), ``"auto"``, the path of a JSON colour table, or a
            :class:`ColorTable`. Defaults to None.
        ignore_color: ``(R, G, B)`` whose pixels get ``ignore_index``, or None. Defaults to
            None.
        exif: Turn masks by their EXIF orientation, as images. Defaults to True.

    Raises:
        ValueError: ``ignore_color`` without ``colors`` or without ``ignore_index``.
        DataError: The JSON colour table cannot be used.
    """

    def __init__(self, classes=None, ignore_index=None, colors=None, ignore_color=None, exif=True):
        self.classes, self.ignore_index, self.exif = classes, ignore_index, bool(exif)
        self.ignore_color = parse_color(ignore_color)
        if self.ignore_color is not None and (colors is None or ignore_index is None):
            raise ValueError(
                "--ignore-color needs --mask-colors and the value its pixels get "
                f"(--ignore-index). Received: ignore_color={ignore_color!r}, "
                f"colors={colors!r}, ignore_index={ignore_index!r}"
            )
        self.colored = colors is not None
        self.auto = colors == AUTO
        self.table = colors if isinstance(colors, ColorTable) else None
        if self.colored and not self.auto and self.table is None:
            self.table = ColorTable.from_json(colors, classes, ignore_index, self.ignore_color)
        self.dtype = label_dtype(classes, ignore_index)

    def _open(self, path):
        try:
            return open_mask(path, self.exif, self.colored)
        except Exception as error:  # Pillow and tifffile raise many types for a damaged file
            raise DataError(f"{path}: cannot read the mask ({first_line(error)}).") from None

    def _rgb(self, path):
        array, mode = self._open(path)
        if array.ndim != 3 or array.shape[-1] != 3:
            raise OptionsMismatch(
                f"{path}: --mask-colors reads colour-coded masks, but this mask holds values, "
                f"not colours; drop --mask-colors for masks of class indices. Received mode "
                f"{mode}."
            )
        return array

    def count_colors(self, path):
        """``(shape, {colour key: pixels})`` of a colour-coded mask (the ``auto`` pass)."""
        rgb = self._rgb(path)
        keys, counts = np.unique(_keys(rgb), return_counts=True)
        return rgb.shape[:2], dict(zip(keys.tolist(), counts.tolist()))

    def learn(self, counts):
        """Number the colours of ``counts`` (``auto``), once the whole folder is counted."""
        self.table = ColorTable.from_counts(
            counts, self.classes, self.ignore_index, self.ignore_color
        )

    def raw(self, path):
        """A mask's class values ``(H, W)`` before the check: index masks in their own
        integer type, colour-coded ones mapped to int64.

        Raises:
            DataError: The file cannot be read (skippable).
            OptionsMismatch: A mode that does not hold classes, or an unknown colour.
        """
        if self.colored:
            if self.table is None:
                raise DataError(
                    f"{path}: --mask-colors auto numbers the colours of the whole folder; "
                    "check the folder first (FolderReader.check)."
                )
            return self.table.lookup(self._rgb(path), path)
        array, mode = self._open(path)
        if mode not in INDEX_MODES:
            raise OptionsMismatch(
                f"{path}: masks must hold class indices: 8-bit greyscale (L) or palette (P) "
                "PNGs, 16-bit greyscale PNGs or single-band TIFFs; for colour-coded masks "
                f"pass --mask-colors FILE or --mask-colors auto. Received mode {mode}."
            )
        if array.dtype == np.bool_:
            array = array.astype(np.uint8)
        return array

    def check(self, path, mask):
        """Require every value of ``mask`` to be a class in ``[0, classes)`` or the ignore
        value (nothing to check without ``classes``).

        Raises:
            OptionsMismatch: naming the file, the bad values and what was expected.
        """
        if self.classes is not None:
            check_mask(path, mask, self.classes, self.ignore_index)

    def read(self, path):
        """A mask's classes ``(H, W)`` as :func:`label_dtype` of the classes.

        Raises:
            DataError: The file cannot be read, its mode holds no classes, a colour is not in
                the table, or a value does not fit.
        """
        mask = self.raw(path)
        if mask.dtype == self.dtype or self.colored:  # a table's classes fit by construction
            return mask.astype(self.dtype, copy=False)
        if self.classes is not None:
            self.check(path, mask)
        elif mask.size and (mask.min() < 0 or mask.max() > np.iinfo(self.dtype).max):
            raise OptionsMismatch(
                f"{path}: mask values up to {mask.max()} do not fit {np.dtype(self.dtype).name}; "
                "give the number of classes (--classes) to read 16-bit masks."
            )
        return mask.astype(self.dtype)


def check_mask(path, mask, classes, ignore_index=None):
    """Require every value of ``mask`` to be a class in ``[0, classes)`` or ``ignore_index``.

    Raises:
        OptionsMismatch: naming the file, the bad values and what was expected.
    """
    values = np.unique(mask)
    bad = values[
        ((values < 0) | (values >= classes))
        & (values != (-1 if ignore_index is None else ignore_index))
    ]
    if bad.size:
        expected = f"values in [0, {classes - 1}]" + (
            f" or the ignore value {ignore_index}"
            if ignore_index is not None
            else " (no --ignore-index set)"
        )
        raise OptionsMismatch(
            f"{path}: mask value(s) {bad.tolist()[:5]} out of range; "
            f"expected {expected} for --classes {classes}."
        )


def read_mask(path, exif=True):
    """Class indices of an index mask, ``(H, W)``: uint8 for 8-bit and palette PNGs, uint16
    for 16-bit PNGs and TIFFs.

    Raises:
        DataError: The file cannot be read, or is not a mask of class indices.

    Example:
        >>> read_mask("my_data/masks/a.png").dtype
        dtype('uint8')
    """
    return MaskReader(exif=exif).raw(os.fspath(path))


def resize_mask(mask, height, width):
    """Class indices ``(H, W)`` resized to ``(height, width)`` with nearest neighbour, so that no
    value between two classes is invented. Eager, or inside ``tf.data``.

    Args:
        mask: ``(H, W)`` integer array or tensor, e.g. from :func:`read_mask`.
        height: Output height in pixels.
        width: Output width in pixels.

    Returns:
        A ``(height, width)`` tensor of ``mask``'s dtype.

    Example:
        >>> resize_mask(read_mask("my_data/masks/a.png"), 128, 128).numpy()
    """
    mask = tf.image.resize(
        tf.convert_to_tensor(mask)[..., None], (height, width), method="nearest"
    )[..., 0]
    mask.set_shape((height, width))
    return mask
