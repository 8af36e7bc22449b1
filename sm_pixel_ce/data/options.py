"""How a job reads its images and masks: :class:`ReadOptions`, every reading option once (its
default, its type, its help and its check), and :func:`reads`, which embeds it in a job's options.

``compare``, ``evaluate``, ``predict`` and ``export --calibration`` each take the reading options
that apply to them; their command lines are built from these fields (see
:mod:`sm_pixel_ce.cli._fields`), so a flag has one help text and one error text wherever it is
offered. A field left unset is None: what it then means is applied in one place
(:meth:`ReadOptions.effective`, or a job's own default such as ``compare``'s size), so that a
model's data contract can fill in what the user did not give (:meth:`ReadOptions.filled`).
"""

import dataclasses
import numbers
import os

from .folder import FolderReader
from .images import SCALES, ImageReader, parse_bands
from .masks import AUTO, ColorTable, color_text, default_ignore_index, parse_color
from .pairing import MaskPattern

#: The side a job that trains resizes images to when not told (``compare --size``).
TRAINING_SIZE = 64
#: Where a colour table taken from a model's data contract came from, for messages.
CONTRACT_TABLE = "the model's colour table (data contract)"
#: What an unset switch means.
_UNSET_SWITCHES = {"no_exif": False, "skip_bad": False}


def option(default, help, type=None, group=None, **cli):
    """A dataclass field with its command-line spelling, as :mod:`sm_pixel_ce.cli._fields` reads
    it: ``help``, the ``type`` that parses its text (None for a switch), the argparse ``group``
    (None for none) and other argparse keywords."""
    metadata = {"help": help, "group": group, "type": type, "cli": cli}
    return dataclasses.field(default=default, metadata=metadata)


def _reading(help, type=None, **cli):
    return option(None, help, type, group="data", **cli)


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How images and masks are read, every option None when not given.

    Normalised and checked when made: ``bands`` and ``ignore_color`` as ``"0,1,2"``,
    ``mask_colors`` ``"auto"`` in lower case, ``class_names`` as a tuple.

    Attributes:
        size: Side images (and masks, with nearest neighbour) are resized to.
        ignore_index: Mask value not counted (0 to 65535).
        class_names: A name per class (a sequence or ``"a,b,..."``).
        mask_colors: A JSON colour table's path, or ``"auto"``, for colour-coded masks; or the
            table itself, rows ``{"class", "name", "color"}`` (a model's data contract's,
            :func:`options_from_contract`).
        ignore_color: ``"R,G,B"`` of colour-coded masks that is not a class; its pixels get
            :meth:`ignore_value`.
        masks: The masks' folder (``DIR/masks`` when None).
        mask_pattern: A mask's file name from its image's stem, e.g. ``"{stem}_mask.png"``.
        bands: Image bands, 0-based, as ``"0,1,2"`` (or a sequence); None for RGB (every band
            of a TIFF but alpha).
        scale: What pixel values are divided by instead of their type's maximum.
        no_exif: Read images and masks as stored, not turned by their EXIF orientation.
        skip_bad: Skip damaged, unreadable or unpaired files instead of stopping.

    Raises:
        ValueError: One line naming the flag, what it takes, what it received and the usual fix.

    Example:
        >>> ReadOptions(bands=[0, 1, 2], scale=4095).reader(classes=3).image_reader.bands
        (0, 1, 2)
    """

    size: int = _reading(
        "images (and masks, with nearest neighbour) resized to S x S; to train, a multiple of 32 "
        f"(48 for PSPNet) (default: {TRAINING_SIZE} for compare; evaluate and predict: a "
        "fixed-size model's size, else the images' own size)",
        int,
        metavar="S",
    )
    ignore_index: int = _reading(
        "mask value not counted, e.g. 255 (void borders)", int, metavar="V"
    )
    class_names: tuple = _reading(
        "a name per class, comma-separated (default: the colour table's names, else class <c>)",
        str,
        metavar="A,B,...",
    )
    mask_colors: str = _reading(
        'colour-coded masks: a JSON list of {"class": 1, "name": "road", "color": '
        "[128, 64, 128]}, or auto to number the colours found in ascending (R, G, B) order",
        str,
        metavar="FILE|auto",
    )
    ignore_color: str = _reading(
        "with --mask-colors: the colour that is not a class (its pixels get --ignore-index, "
        "255 by default)",
        str,
        metavar="R,G,B",
    )
    masks: str = _reading(
        "folder of the masks (default: the data folder's masks/)", str, metavar="DIR"
    )
    mask_pattern: str = _reading(
        "a mask's file name made from its image's file stem, e.g. '{stem}_mask.png' "
        "(default: the image's stem, .png or .tif)",
        str,
        metavar="PATTERN",
    )
    bands: str = _reading(
        "image bands to read, 0-based, e.g. 0,1,2,3; the model takes as many channels (default: "
        "RGB, grey repeated; every band of a TIFF but alpha)",
        str,
        metavar="LIST",
    )
    scale: float = _reading(
        "divide pixel values by V instead of their type's maximum, for a model trained so, e.g. "
        "4095 for 12-bit data (default: 255 for 8-bit, 65535 for 16-bit, 1 for float data)",
        float,
        metavar="V",
    )
    no_exif: bool = _reading(
        "read images and masks as stored, ignoring their EXIF orientation (default: turned as "
        "viewers show them)"
    )
    skip_bad: bool = _reading(
        "skip damaged, unreadable or unpaired files (listed in the output) instead of stopping"
    )

    def __post_init__(self):
        bands = parse_bands(self.bands)
        self._set("bands", None if bands is None else ",".join(map(str, bands)))
        color = parse_color(self.ignore_color)
        self._set("ignore_color", None if color is None else ",".join(map(str, color)))
        if _is_table(self.mask_colors):
            self._set("mask_colors", tuple(dict(row) for row in self.mask_colors))
        elif self.mask_colors is not None:
            colors = os.fspath(self.mask_colors)
            self._set("mask_colors", AUTO if colors.strip().lower() == AUTO else colors)
        if self.masks is not None:
            self._set("masks", os.fspath(self.masks))
        names = self.class_names
        if names is not None:
            names = names.split(",") if isinstance(names, str) else names
            self._set("class_names", tuple(str(name).strip() for name in names))
        if self.mask_pattern is not None:
            MaskPattern(self.mask_pattern)  # its ValueError names --mask-pattern
        for ok, message in self._checks():
            if not ok:
                raise ValueError(message)

    def _set(self, name, value):
        object.__setattr__(self, name, value)

    def _checks(self):
        """``(ok, message)`` of each option: one message per flag."""
        size, ignore_index, scale = self.size, self.ignore_index, self.scale
        return [
            (
                size is None or (_is_integer(size) and size >= 1),
                f"--size must be an integer >= 1, e.g. 256; received {size!r}.",
            ),
            (
                ignore_index is None or (_is_integer(ignore_index) and 0 <= ignore_index <= 65535),
                "--ignore-index must be a mask value in [0, 65535] (16-bit masks), e.g. 255; "
                f"received {ignore_index!r}.",
            ),
            (
                self.class_names is None or all(self.class_names),
                "--class-names must be a name per class, comma-separated, e.g. sky,road,car; "
                f"received {','.join(self.class_names or ())!r}.",
            ),
            (
                _is_table(self.mask_colors)
                or self.mask_colors in (None, AUTO)
                or os.path.isfile(self.mask_colors),
                "--mask-colors must be auto or a JSON file of colours; received "
                f"{self.mask_colors!r} (no such file).",
            ),
            (
                self.ignore_color is None or self.mask_colors is not None,
                "--ignore-color marks a colour of colour-coded masks; it needs --mask-colors FILE "
                f"or --mask-colors auto; received --ignore-color {self.ignore_color} alone.",
            ),
            (
                scale is None or (_is_number(scale) and scale > 0),
                "--scale must be a positive number, e.g. 4095 for 12-bit data; received "
                f"{scale!r}.",
            ),
            *(
                (
                    getattr(self, name) in (None, True, False),
                    f"--{name.replace('_', '-')} is a switch: True, False or None (not given); "
                    f"received {getattr(self, name)!r}.",
                )
                for name in _UNSET_SWITCHES
            ),
        ]

    @property
    def exif(self):
        """Whether images and masks are turned by their EXIF orientation."""
        return not self.no_exif

    def filled(self, **values):
        """A copy whose unset (None) options take ``values`` (None values are skipped); the
        options given are kept."""
        unset = {k: v for k, v in values.items() if getattr(self, k) is None and v is not None}
        return dataclasses.replace(self, **unset) if unset else self

    def effective(self):
        """A copy with every unset switch as it acts (``no_exif`` and ``skip_bad`` False)."""
        return self.filled(**_UNSET_SWITCHES)

    def ignore_value(self, classes):
        """The ignore index of masks of ``classes`` classes: ``ignore_index``, else with
        ``ignore_color`` 255 (65535 beyond 255 classes), else None."""
        if self.ignore_index is None and self.ignore_color is not None:
            return default_ignore_index(classes)
        return self.ignore_index

    def reader(self, classes=None):
        """The :class:`~sm_pixel_ce.data.FolderReader` of these options, for masks of
        ``classes`` classes (None to read masks unchecked)."""
        return FolderReader(
            classes,
            self.ignore_value(classes),
            bands=self.bands,
            exif=self.exif,
            mask_colors=self.color_table(),
            ignore_color=self.ignore_color,
            masks=self.masks,
            mask_pattern=self.mask_pattern,
        )

    def color_table(self):
        """``mask_colors`` as :class:`~sm_pixel_ce.data.FolderReader` takes it: None, ``"auto"``,
        a JSON file's path, or a :class:`~sm_pixel_ce.data.masks.ColorTable` of a table given
        as rows."""
        if not _is_table(self.mask_colors):
            return self.mask_colors
        rows = self.mask_colors
        return ColorTable(
            [row["color"] for row in rows],
            [row["class"] for row in rows],
            [row.get("name") for row in rows],
            source=CONTRACT_TABLE,
        )

    def image_reader(self):
        """The :class:`~sm_pixel_ce.data.ImageReader` of these options, for images alone."""
        return ImageReader(parse_bands(self.bands), self.exif)


def _is_table(value):
    return isinstance(value, (list, tuple))


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


_READ_FIELDS = {field.name: field for field in dataclasses.fields(ReadOptions)}


def reads(*names, **defaults):
    """Embed :class:`ReadOptions` in a job's frozen options dataclass, whose field ``read``
    holds it.

    The job takes the reading options ``names`` (and no other): its constructor also takes
    them as flat keywords (``exif=`` too, the opposite of ``no_exif``) into ``read``, its
    objects answer them as attributes (``options.size`` is ``options.read.size``), and
    :meth:`flat` writes them in ``read``'s place. ``defaults`` are the job's own values of
    reading options left unset (``compare``: ``size=64``).

    Example:
        >>> @reads("size", "bands")
        ... @dataclasses.dataclass(frozen=True)
        ... class Job:
        ...     tile: int = None
        ...     read: ReadOptions = dataclasses.field(default_factory=ReadOptions)
        >>> Job(tile=512, bands="0,1,2").read.bands
        '0,1,2'
    """
    unknown = set(names) - set(_READ_FIELDS)
    if unknown:
        raise ValueError(f"not reading options: {sorted(unknown)}")

    def embed(cls):
        generated = cls.__init__

        def __init__(self, *args, read=None, **options):
            given = {name: options.pop(name) for name in names if name in options}
            if "exif" in options and "no_exif" in names:
                exif = options.pop("exif")
                given["no_exif"] = None if exif is None else not exif
            read = ReadOptions() if read is None else read
            for name in _READ_FIELDS:
                if name not in names and getattr(read, name) is not None:
                    raise ValueError(
                        f"{cls.__name__} does not take --{name.replace('_', '-')}; received "
                        f"{name}={getattr(read, name)!r}."
                    )
            read = dataclasses.replace(read, **given) if given else read
            generated(self, *args, read=read.filled(**defaults), **options)

        def __getattr__(self, name):
            # Only for what normal lookup did not find; "read" is a field, not delegated.
            if name in names:
                return getattr(self.read, name)
            raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}")

        def flat(self):
            """The options as one ``{name: value}`` (as ``dataclasses.asdict``), the reading
            options in ``read``'s place as they act."""
            read = self.read.effective()
            values = {}
            for name, value in dataclasses.asdict(self).items():
                if name == "read":
                    values.update((field, getattr(read, field)) for field in _in_order(names))
                else:
                    values[name] = value
            return values

        cls.__init__, cls.__getattr__, cls.flat = __init__, __getattr__, flat
        cls.READS, cls.READ_DEFAULTS = _in_order(names), dict(defaults)
        return cls

    return embed


def _in_order(names):
    """``names`` in :class:`ReadOptions`' field order."""
    return tuple(name for name in _READ_FIELDS if name in names)


def flat_fields(cls):
    """The fields a job's options class offers, ``read`` replaced by the :class:`ReadOptions`
    fields the job takes (see :func:`reads`), in order: what its command line offers."""
    fields = []
    for field in dataclasses.fields(cls):
        if field.name == "read":
            fields += [_READ_FIELDS[name] for name in cls.READS]
        else:
            fields.append(field)
    return fields


def flat_defaults(cls):
    """``{name: default}`` of every option of a job's options class, as :meth:`flat` writes
    them (reading options unset, as they act)."""
    read = ReadOptions().filled(**cls.READ_DEFAULTS).effective()
    return {
        field.name: getattr(read, field.name) if field.name in cls.READS else field.default
        for field in flat_fields(cls)
    }


#: The reading options a data contract fills in (``size`` is the job's sizing, see
#: :func:`sm_pixel_ce.inference.tiling.sizing`).
CONTRACT_FIELDS = (
    "ignore_index",
    "class_names",
    "mask_colors",
    "ignore_color",
    "bands",
    "scale",
    "no_exif",
)


def options_from_contract(read, contract, names=CONTRACT_FIELDS):
    """``read`` with what the user left unset taken from a model's data contract.

    The one place where a job (``evaluate``, ``predict``, ``export --calibration``) meets a
    model's :class:`~sm_pixel_ce.data.contract.DataContract`: an option not given becomes the
    contract's (class names, ignore index, colour table and ignore colour, bands, scale, EXIF);
    an option given that says otherwise is an error, never obeyed or dropped in silence.
    ``mask_colors="auto"`` means the model's own table when it has one (auto numbering, in
    ascending (R, G, B) order, is for a model without one). A contract's scale equal to its
    sample type's maximum stays unset (each image divided by its own type's maximum, as
    training did); a model that scales itself (``scale`` None) gets its pixels as they are.

    Args:
        read: The :class:`ReadOptions` given (None for not given).
        contract: The model's data contract, or None (``read`` is returned as it is).
        names: The options to fill, those the job takes. Defaults to :data:`CONTRACT_FIELDS`.

    Returns:
        A :class:`ReadOptions`.

    Raises:
        ValueError: An option given that contradicts the contract, in one line naming the flag,
            both values and the fix.

    Example:
        >>> contract = DataContract(3, ("sky", "road", "car"), ignore_index=255)
        >>> options_from_contract(ReadOptions(), contract).ignore_index
        255
        >>> options_from_contract(ReadOptions(ignore_index=0), contract)
        ValueError: --ignore-index 0 contradicts the model's data contract (ignore_index=255): ...
    """
    if contract is None:
        return read
    names = [name for name in names if name in CONTRACT_FIELDS]
    for name in names:
        given = getattr(read, name)
        if given is not None and given != AUTO:
            _check_given(name, given, contract)
    values = _contract_values(contract)
    if "mask_colors" in names and read.mask_colors == AUTO and values["mask_colors"]:
        read = dataclasses.replace(read, mask_colors=values["mask_colors"])
    return read.filled(**{name: values[name] for name in names})


def _contract_values(contract):
    """The contract's reading options, as :class:`ReadOptions` holds them."""
    scale = contract.scale
    if scale is None:
        scale = 1  # the model scales its inputs itself
    elif scale == SCALES.get(contract.dtype) or (contract.dtype is None and scale == 255):
        scale = None  # each image's type's maximum, as training divided them
    table = contract.color_table()
    return {
        "ignore_index": contract.ignore_index,
        "class_names": None if _default_names(contract) else contract.class_names,
        "mask_colors": None if table is None else tuple(table),
        "ignore_color": None if contract.ignore_color is None else _csv(contract.ignore_color),
        "bands": None if contract.bands is None else _csv(contract.bands),
        "scale": scale,
        "no_exif": None if contract.exif else True,
    }


def _default_names(contract):
    return contract.class_names == tuple(f"class {c}" for c in range(contract.classes))


def _csv(values):
    return ",".join(str(v) for v in values)


def _check_given(name, given, contract):
    """Raise when the option ``name`` given as ``given`` says otherwise than ``contract``."""
    flag = "--" + name.replace("_", "-")
    text = given
    if name == "ignore_index":
        said = contract.ignore_index
        clash = said is not None and given != said
    elif name == "class_names":
        said = contract.class_names
        clash = not _default_names(contract) and tuple(given) != said
        text, said = ",".join(given), ",".join(said)
    elif name == "mask_colors":
        said = contract.colors
        clash = said is not None and _table_of(given, contract) != _classes_of(said, contract)
        text = "(a table)" if _is_table(given) else given
        said = None if said is None else _colors_text(said)
    elif name == "ignore_color":
        said = contract.ignore_color
        clash = said is not None and parse_color(given) != said
        said = None if said is None else _csv(said)
    elif name == "bands":
        said = contract.bands
        clash = said is not None and tuple(parse_bands(given)) != said
        said = None if said is None else _csv(said)
    elif name == "scale":
        said = contract.scale
        clash = given != (1 if said is None else said)
        text = f"{given:g}"
        said = "None (the model scales its inputs)" if said is None else said
    else:  # no_exif: given True is --no-exif, given False is exif=True
        name, said, clash = "exif", contract.exif, bool(given) == contract.exif
        flag, text = ("--no-exif", "") if given else ("exif=True", "")
    if clash:
        received = f"{flag} {text}".strip()
        raise ValueError(
            f"{received} contradicts the model's data contract ({name}={said}): drop the flag "
            "to read the data as the model was trained, or save the model with the contract "
            "you mean (sm_pixel_ce.save_model(model, path, contract=...))."
        )


def _classes_of(colors, contract):
    """``{(R, G, B): class}`` of a contract's colour entries that are classes."""
    return {tuple(color): c for c, color in colors if 0 <= c < contract.classes}


def _table_of(given, contract):
    """``{(R, G, B): class}`` of the classes of a ``--mask-colors`` file (or table)."""
    if _is_table(given):
        rows = [(row["class"], row["color"]) for row in given]
    else:
        table = ColorTable.from_json(given, contract.classes, contract.ignore_index)
        rows = list(zip(table.classes, table.colors))
    return _classes_of(rows, contract)


def _colors_text(colors, limit=6):
    pairs = [f"{color_text(color)}={c}" for c, color in colors[:limit]]
    return " ".join(pairs) + (" ..." if len(colors) > limit else "")
