"""The first step of ``compare``: read the data the options name, the generated scenes or a
folder checked file by file, into one streaming source and the facts the report states."""

import dataclasses
import os

from ..data import (
    CLASS_NAMES,
    ArraySource,
    DataError,
    FolderSource,
    check_pairs,
    fingerprint,
    make_scenes,
)
from .encoders import check_encoder_bands


@dataclasses.dataclass
class Data:
    """What :func:`read` found.

    Attributes:
        source: The image/mask pairs (``FolderSource`` or ``ArraySource``), streamed by
            ``tf.data``.
        class_names: One name per class.
        description: The data as the report names it (a folder's absolute path).
        files: ``"N pairs, sha256 ..."``: which pairs were used (``--resume`` compares it).
        facts: What the reader tells of the folder (bands, scaling, colour table); ``{}`` for
            the scenes.
        skipped: ``[{"path", "reason"}]`` of the pairs left out (``--skip-bad``).
    """

    source: object
    class_names: list
    description: str
    files: str
    facts: dict
    skipped: list


def read(options, log):
    """The data of ``options``: the generated scenes without ``options.data``, else the folder's
    image/mask pairs, each checked (and skipped with ``skip_bad``) before any training.

    Args:
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        log: Function given one progress line at a time.

    Returns:
        A :class:`Data`.

    Raises:
        DataError: The folder cannot be used (fewer than 2 usable pairs, a damaged file); the
            message names the file at fault.
        EncoderWeightsError: The encoder weights do not take the images' bands.

    Example:
        >>> data = read(CompareOptions(images=16), log=print)
        >>> len(data.source), data.class_names[0]
        (16, 'background')
    """
    if options.data is None:
        # The scenes stay in memory, but flow through the same tf.data pipeline.
        images, size, seed = options.images, options.size, options.seed
        source = ArraySource(*make_scenes(images, size=size, seed=seed))
        description = f"generated scenes (make_scenes({images}, size={size}, seed={seed}))"
        return Data(source, list(CLASS_NAMES), description, _files(source), {}, [])
    reader = options.read.reader(options.classes)
    pairs, skipped = reader.pair(options.data, skip_bad=options.skip_bad)
    log(f"Checking {len(pairs)} image/mask pairs in {options.data}")
    pairs, damaged = check_pairs(pairs, skip_bad=options.skip_bad, reader=reader)
    skipped += damaged
    for bad in skipped:
        log(f"  skipped: {bad['reason']}")
    if len(pairs) < 2:
        raise DataError(
            f"{options.data}: need at least 2 usable image/mask pairs to hold some out; "
            f"found {len(pairs)}."
        )
    source = FolderSource(pairs, options.size, reader)
    check_encoder_bands(options.encoder_weights, source.channels)
    facts = reader.describe()
    _log_folder(reader, source.kind, facts, options.ignore_index, log)
    description = os.path.abspath(options.data)
    return Data(source, reader.class_names(), description, _files(source), facts, skipped)


def _files(source):
    return f"{len(source)} pairs, sha256 {fingerprint(source.names)}"


def _log_folder(reader, kind, facts, ignore_index, log):
    """How the folder's images are scaled and its mask colours read, one line each."""
    log(
        f"  images: {kind}, divided by {kind.scale}"
        + (", standardised per band by the model's first layer" if kind.standardised else "")
        + (f"; {reader.turned} turned by their EXIF orientation" if reader.turned else "")
    )
    for row in facts.get("mask_colors", {}).get("colors", []):
        ignored = row["class"] == ignore_index
        log(
            f"  colour {tuple(row['color'])} -> "
            + (f"ignored ({row['class']})" if ignored else f"class {row['class']}")
            + (f" {row['name']}" if row["name"] else "")
            + (f", {row['pixels']} px" if "pixels" in row else "")
        )
