"""The data contract: what a model was trained on, saved inside the model file and its exports.

A :class:`DataContract` holds how training read the data: the classes (their number, names, and
for colour-coded masks the resolved colour table and the ignore colour), the ignore index, the
image bands, the scaling, the EXIF handling and the input size. :func:`sm_pixel_ce.save_model`
writes it into ``.keras``, ``.h5`` and SavedModel files, ``sm-pixel-ce export`` into ONNX, TFLite
and SavedModel exports, and :func:`sm_pixel_ce.data_contract` reads it back, so that a job that
loads the model reads the data as training did (as a Hugging Face ``config.json`` carries
``id2label``, and a keras-hub preset its preprocessor).

The JSON form (:meth:`DataContract.to_json`) is versioned by its ``"format"`` key::

    {"format": "sm_pixel_ce.data_contract/1", "classes": 3,
     "class_names": ["sky", "road", "car"], "ignore_index": 255,
     "colors": [{"class": 0, "name": "sky", "color": [0, 0, 255]}, ...,
                {"class": 255, "name": null, "color": [0, 0, 0]}],
     "ignore_color": [0, 0, 0], "bands": null, "channels": 3, "dtype": "uint8", "scale": 255,
     "model_standardises": false, "exif": true, "size": [128, 128], "fixed_size": true,
     "sizing": "resize"}
"""

import dataclasses
import json
import numbers

#: The ``"format"`` of the JSON this module writes and reads.
FORMAT = "sm_pixel_ce.data_contract/1"
#: How training met the images' size: whole images resized to the model's size, or crops taken
#: at the images' own scale.
SIZINGS = ("resize", "crop")
#: The images' sample types (:data:`sm_pixel_ce.data.SCALES`).
DTYPES = ("uint8", "uint16", "float32")


def _fail(field, expected, value):
    raise ValueError(f"DataContract {field} must be {expected}. Received: {field}={value!r}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _color(field, value):
    """``value`` as an ``(R, G, B)`` tuple of ints in [0, 255]."""
    try:
        color = tuple(value)
    except TypeError:
        color = ()
    if len(color) != 3 or not all(_is_int(c) and 0 <= c <= 255 for c in color):
        _fail(field, "(R, G, B) with values in [0, 255]", value)
    return tuple(int(c) for c in color)


def _pair(field, value):
    """``value`` (a side, or ``(height, width)``) as ``(height, width)`` of positive ints."""
    pair = (value, value) if _is_int(value) else value
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) and v > 0 for v in pair):
        _fail(field, "a positive side or (height, width)", value)
    return tuple(int(v) for v in pair)


@dataclasses.dataclass(frozen=True)
class DataContract:
    """How a model's training data were read, to read any other data the same way.

    Attributes:
        classes: Number of classes the model predicts (>= 1).
        class_names: A name per class; None for ``"class <c>"``. Defaults to None.
        ignore_index: The mask value not counted (0 to 65535), or None. Defaults to None.
        colors: The colour table of colour-coded masks, resolved (``--mask-colors auto`` numbered
            as training numbered it): ``((class, (R, G, B)), ...)``, a class in
            ``[0, classes)`` or ``ignore_index``, no colour twice; None for masks of class
            indices. Defaults to None.
        ignore_color: ``(R, G, B)`` of colour-coded masks whose pixels get ``ignore_index``
            (added to ``colors`` when not listed there), or None. Defaults to None.
        bands: Image bands taken, 0-based, or None for the default (RGB from grey and colour
            images; every band but alpha of a TIFF). Defaults to None.
        channels: The model's input channels, or None when unknown. Defaults to None.
        dtype: The training images' sample type, ``"uint8"``, ``"uint16"`` or ``"float32"``,
            or None when unknown. Defaults to None.
        scale: What pixel values are divided by before the model (255, 65535, 1, or a user's
            ``--scale`` such as 4095); None when the model takes the raw values and scales
            them itself. Defaults to 255.
        model_standardises: The model's first layer standardises each band (``compare`` with
            uint16 and float data): after ``scale``, nothing more is done to the pixels.
            Defaults to False.
        exif: Images and masks were turned by their EXIF orientation. Defaults to True.
        size: ``(height, width)`` (or one side) the model was trained at, or None. Defaults to
            None.
        fixed_size: The model takes only its own input size (True), any size (False), or
            unknown (None). Defaults to None.
        sizing: How training met the images' size: ``"resize"`` (whole images resized to
            ``size``) or ``"crop"`` (crops at the images' own scale). Defaults to ``"resize"``.

    Raises:
        ValueError: A field that does not fit, in one line naming the field, what it must be
            and what it received.

    Example:
        >>> contract = DataContract(3, ("sky", "road", "car"), ignore_index=255, size=128)
        >>> DataContract.from_json(contract.to_json()) == contract
        True
        >>> contract.describe()
        '3 classes (sky, road, car), ignore index 255; masks of class indices; images: default
        bands, divided by 255, EXIF applied; trained at 128x128, whole images resized'
    """

    classes: int
    class_names: tuple = None
    ignore_index: int = None
    colors: tuple = None
    ignore_color: tuple = None
    bands: tuple = None
    channels: int = None
    dtype: str = None
    scale: float = 255
    model_standardises: bool = False
    exif: bool = True
    size: tuple = None
    fixed_size: bool = None
    sizing: str = "resize"

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if not _is_int(self.classes) or self.classes < 1:
            _fail("classes", "an int >= 1", self.classes)
        set_("classes", int(self.classes))
        if self.ignore_index is not None:
            if not _is_int(self.ignore_index) or not 0 <= self.ignore_index <= 65535:
                _fail("ignore_index", "None or a mask value in [0, 65535]", self.ignore_index)
            set_("ignore_index", int(self.ignore_index))
        set_("class_names", self._names())
        set_(
            "ignore_color",
            None if self.ignore_color is None else _color("ignore_color", self.ignore_color),
        )
        set_("colors", self._colors())
        if self.bands is not None:
            bands = tuple(self.bands) if not isinstance(self.bands, str) else ()
            if not bands or not all(_is_int(b) and b >= 0 for b in bands):
                _fail("bands", "None or band indices >= 0, e.g. (0, 1, 2)", self.bands)
            set_("bands", tuple(int(b) for b in bands))
        if self.channels is not None:
            if not _is_int(self.channels) or self.channels < 1:
                _fail("channels", "None or an int >= 1", self.channels)
            set_("channels", int(self.channels))
            if self.bands is not None and len(self.bands) != self.channels:
                _fail(
                    "channels", f"None or {len(self.bands)} (one per band of bands)", self.channels
                )
        if self.dtype is not None and self.dtype not in DTYPES:
            _fail("dtype", f"None or one of {list(DTYPES)}", self.dtype)
        if self.scale is not None:
            if (
                not isinstance(self.scale, numbers.Real)
                or isinstance(self.scale, bool)
                or not (self.scale > 0)
            ):
                _fail("scale", "None (the model scales) or a number > 0, e.g. 255", self.scale)
            set_("scale", int(self.scale) if float(self.scale).is_integer() else float(self.scale))
        for name in ("model_standardises", "exif"):
            if not isinstance(getattr(self, name), bool):
                _fail(name, "True or False", getattr(self, name))
        if self.fixed_size is not None and not isinstance(self.fixed_size, bool):
            _fail("fixed_size", "None, True or False", self.fixed_size)
        if self.size is not None:
            set_("size", _pair("size", self.size))
        if self.sizing not in SIZINGS:
            _fail("sizing", f"one of {list(SIZINGS)}", self.sizing)

    def _names(self):
        if self.class_names is None:
            return tuple(f"class {c}" for c in range(self.classes))
        names = tuple(self.class_names) if not isinstance(self.class_names, str) else ()
        if len(names) != self.classes:
            _fail("class_names", f"{self.classes} names (one per class)", self.class_names)
        if not all(isinstance(n, str) and n for n in names):
            _fail("class_names", "non-empty strings", self.class_names)
        return names

    def _colors(self):
        if self.colors is None:
            if self.ignore_color is not None:
                _fail(
                    "ignore_color",
                    "None without colors (masks of class indices)",
                    self.ignore_color,
                )
            return None
        entries = []
        for entry in self.colors:
            try:
                number, color = entry
            except (TypeError, ValueError):
                number, color = None, None
            if not _is_int(number) or not (
                0 <= number < self.classes or number == self.ignore_index
            ):
                _fail(
                    "colors",
                    f"(class, (R, G, B)) pairs, a class in [0, {self.classes}) or "
                    f"the ignore index {self.ignore_index}",
                    entry,
                )
            entries.append((int(number), _color("colors", color)))
        if self.ignore_color is not None:
            if self.ignore_index is None:
                _fail(
                    "ignore_color",
                    "None without ignore_index (the value its pixels get)",
                    self.ignore_color,
                )
            listed = [number for number, color in entries if color == self.ignore_color]
            if not listed:
                entries.append((self.ignore_index, self.ignore_color))
            elif listed[0] != self.ignore_index:
                _fail(
                    "ignore_color",
                    f"a colour not of class {listed[0]} in colors",
                    self.ignore_color,
                )
        seen = set()
        for _, color in entries:
            if color in seen:
                _fail("colors", "a table with each colour once", f"{color} twice")
            seen.add(color)
        if not entries:
            _fail("colors", "None or at least one (class, (R, G, B))", self.colors)
        return tuple(entries)

    # --- JSON -------------------------------------------------------------------------------

    def color_table(self):
        """The colour table as ``--mask-colors`` reads it, or None for masks of class indices.

        Returns:
            ``[{"class": 1, "name": "road", "color": [128, 64, 128]}, ...]`` (name None for the
            ignore index).
        """
        if self.colors is None:
            return None
        return [
            {
                "class": number,
                "name": self.class_names[number] if number < self.classes else None,
                "color": list(color),
            }
            for number, color in self.colors
        ]

    def to_dict(self):
        """The contract as JSON values, ``"format"`` first (see :meth:`to_json`)."""
        values = {"format": FORMAT}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            values[field.name] = list(value) if isinstance(value, tuple) else value
        values["colors"] = self.color_table()
        return values

    def to_json(self, indent=None):
        """The contract as a JSON text with its ``"format"`` key.

        Args:
            indent: ``json.dumps``'s indent. Defaults to None (one line).

        Returns:
            A str.

        Example:
            >>> DataContract(2).to_json()[:46]
            '{"format": "sm_pixel_ce.data_contract/1", "cla'
        """
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, values):
        """The contract of :meth:`to_dict`'s values.

        Raises:
            ValueError: Another ``"format"`` (a newer sm_pixel_ce wrote it), an unknown or
                missing key, or a field that does not fit.
        """
        if not isinstance(values, dict):
            raise ValueError(f"a data contract is a JSON object. Received: {type(values).__name__}")
        if values.get("format") != FORMAT:
            raise ValueError(
                f"unknown data contract format (written by another version of sm_pixel_ce?); "
                f"expected {FORMAT!r}. Received: format={values.get('format')!r}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names - {"format"})
        if unknown:
            raise ValueError(
                f"unknown data contract key(s) for {FORMAT!r}. Received: {', '.join(unknown)}"
            )
        if "classes" not in values:
            raise ValueError("a data contract needs classes. Received: no 'classes' key")
        fields = {k: v for k, v in values.items() if k != "format"}
        rows = fields.get("colors")
        if rows is not None:
            fields["colors"] = tuple(_entry(row) for row in rows)
        contract = cls(**fields)
        for row, named in zip(rows or (), contract.color_table() or ()):
            if row.get("name") not in (None, named["name"]):
                _fail("colors", f"rows named as class_names ({named['name']!r})", row)
        return contract

    @classmethod
    def from_json(cls, text):
        """The contract of a JSON text from :meth:`to_json`.

        Args:
            text: The JSON (str or bytes).

        Returns:
            A :class:`DataContract`.

        Raises:
            ValueError: Not JSON, another ``"format"``, or a field that does not fit (one line).

        Example:
            >>> DataContract.from_json('{"format": "sm_pixel_ce.data_contract/1", "classes": 2}')
            DataContract(classes=2, class_names=('class 0', 'class 1'), ...)
        """
        try:
            values = json.loads(text)
        except ValueError as error:
            raise ValueError(f"a data contract must be JSON. Received: {error}") from None
        return cls.from_dict(values)

    # --- text -------------------------------------------------------------------------------

    def describe(self):
        """The contract in one line, for a job to print.

        Example:
            >>> DataContract(2, ("land", "water"), size=(64, 96), fixed_size=True).describe()
            '2 classes (land, water); masks of class indices; images: default bands, divided
            by 255, EXIF applied; trained at 64x96, whole images resized; fixed input size'
        """
        names = ", ".join(self.class_names[:8]) + (", ..." if self.classes > 8 else "")
        parts = [
            f"{self.classes} classes ({names})"
            + (f", ignore index {self.ignore_index}" if self.ignore_index is not None else "")
        ]
        if self.colors is None:
            parts.append("masks of class indices")
        else:
            parts.append(
                f"colour-coded masks ({len(self.colors)} colours"
                + (f", {_text(self.ignore_color)} ignored" if self.ignore_color else "")
                + ")"
            )
        bands = "default bands" if self.bands is None else f"bands {_text(self.bands)}"
        kind = "" if self.dtype is None else f" of {self.dtype}"
        scale = (
            "as they are (the model scales)" if self.scale is None else f"divided by {self.scale}"
        )
        standardised = ", standardised by the model" if self.model_standardises else ""
        exif = "EXIF applied" if self.exif else "EXIF ignored"
        parts.append(f"images: {bands}{kind}, {scale}{standardised}, {exif}")
        sizing = "whole images resized" if self.sizing == "resize" else "crops at the images' scale"
        size = "" if self.size is None else f"trained at {self.size[0]}x{self.size[1]}, "
        fixed = {True: "; fixed input size", False: "; any input size", None: ""}[self.fixed_size]
        parts.append(f"{size}{sizing}{fixed}")
        return "; ".join(parts)

    def __str__(self):
        return self.describe()


def _entry(row):
    """``(class, (R, G, B))`` of one ``{"class", "name", "color"}`` row of the JSON table."""
    if not isinstance(row, dict) or set(row) - {"class", "name", "color"}:
        _fail("colors", '{"class": c, "name": n, "color": [R, G, B]} rows', row)
    return row.get("class"), row.get("color")


def _text(values):
    return "(" + ",".join(str(v) for v in values) + ")"


def contract_from_reader(reader, size=None, fixed_size=None, sizing="resize", scale=None):
    """The contract of a checked :class:`~sm_pixel_ce.data.FolderReader`: its classes, names,
    colour table (``auto`` resolved), ignore index and colour, bands, sample type and scaling,
    and EXIF handling.

    Args:
        reader: A ``FolderReader`` after :meth:`~sm_pixel_ce.data.FolderReader.check` (which
            learns the images' kind and numbers ``auto`` colours).
        size: ``(height, width)`` or the side trained at, or None. Defaults to None.
        fixed_size: Whether the model takes only that size; None if unknown. Defaults to None.
        sizing: ``"resize"`` or ``"crop"``. Defaults to ``"resize"``.
        scale: What pixel values were divided by, when not their type's maximum. Defaults to
            None (the type's maximum: 255, 65535, 1).

    Returns:
        A :class:`DataContract`.

    Example:
        >>> reader = FolderReader(classes=11, mask_colors="auto")
        >>> reader.check(reader.pair("camvid")[0])
        >>> contract_from_reader(reader, size=128, fixed_size=True).describe()
    """
    facts = reader.describe()
    data = facts["input"]
    table = facts.get("mask_colors")
    colors = (
        None if table is None else tuple((row["class"], row["color"]) for row in table["colors"])
    )
    ignore_color = getattr(getattr(reader, "mask_reader", None), "ignore_color", None)
    return DataContract(
        classes=reader.classes,
        class_names=tuple(reader.class_names()),
        ignore_index=reader.ignore_index,
        colors=colors,
        ignore_color=ignore_color,
        bands=data["bands"],
        channels=data["channels"],
        dtype=data["dtype"],
        scale=scale if scale is not None else data["divided_by"],
        model_standardises=bool(data["standardised"]),
        exif=bool(data["exif"]),
        size=size,
        fixed_size=fixed_size,
        sizing=sizing,
    )
