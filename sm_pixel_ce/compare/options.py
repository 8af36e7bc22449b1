"""What one ``compare`` run is asked for: :class:`CompareOptions`, every option with its default
and its help in one place, normalised and checked once when the object is made.

The command line is built from these fields (``--<name-with-dashes>``, their help and groups),
the run configuration that ``--resume`` checks and the report's configuration are derived from
them, and the training code reads them.
"""

import dataclasses
import os

from ..data import (
    NUM_CLASSES,
    MaskPattern,
    default_ignore_index,
    parse_bands,
    parse_color,
)
from ..data.masks import AUTO
from ..flavor import KERAS_FLAVOR
from ..input_sizes import ARCHITECTURES, size_requirement
from .specs import UnknownNameError, split_variants
from .variants import DEFAULT_VARIANTS, VARIANTS, expand_variants, resolve

#: Generated scenes without ``--data``: sized so that the default run finishes within about
#: 3 minutes on 2 CPU cores and still separates the variants.
DEFAULT_SCENES = 160
#: Options that do not change what a finished run holds: ``--resume`` may differ in them.
_NOT_IN_RUN_CONFIG = ("variants", "seeds", "images", "skip_bad", "jobs", "ray", "gpus_per_run")


def _option(default, help, group="training", type=None, **cli):
    """A field with its command-line spelling: ``help`` (``%(default)s`` allowed), the argparse
    ``group``, the ``type`` that parses its text, and other argparse keywords."""
    metadata = {"help": help, "group": group, "type": type, "cli": cli}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class CompareOptions:
    """Every option of one ``compare`` run.

    Made once, from keywords or from the command line; normalised (``variants`` as a tuple with
    ``"all"`` expanded, ``encoder_weights="none"`` as None, the scenes' class count filled in)
    and checked when made.

    Attributes:
        variants: Variant names from ``VARIANTS`` or loss specs (``"pixel_cce+0.5*pixel_dice"``,
            see :mod:`~sm_pixel_ce.compare.specs`), in report order, or ``("all",)``; a string
            is split on the commas outside parentheses. Defaults to ``("cce", "bce")``.
        data: Folder with ``images/`` and ``masks/``; None for the generated scenes.
        classes: Number of classes (required with ``data``; 7 for the scenes).
        ignore_index: Mask value not counted, or None.
        size: Square input side. Defaults to 64.
        val_fraction: Held-out fraction, drawn over the file names. Defaults to 0.25.
        images: Number of generated scenes without ``data``. Defaults to 160.
        skip_bad: Skip damaged pairs (listed in the report) instead of stopping.
        masks: The masks' folder; None for ``data/masks``.
        mask_pattern: A mask's file name from its image's stem (``"{stem}_mask.png"``); None
            to pair by stem.
        mask_colors: None (masks of class indices), a JSON colour table's path, or ``"auto"``.
        ignore_color: ``"R,G,B"`` of colour-coded masks that is not counted; its pixels get
            ``ignore_index`` (255, or 65535 beyond 255 classes, when not given).
        bands: Image bands as ``"0,1,2"`` (0-based); None for RGB (every band of a TIFF but
            alpha).
        no_exif: Read images and masks as stored, not turned by their EXIF orientation.
        arch, backbone: segmentation_models model. Defaults to ``"Unet"``, ``"resnet18"``.
        epochs, batch_size, lr: Adam schedule. Defaults to 10, 8, 1e-3.
        seed: First seed (split, initial weights, batch order). Defaults to 0.
        seeds: Runs per variant, seeds ``seed`` .. ``seed + seeds - 1``. Defaults to 1.
        encoder_weights: None (or ``"none"``), ``"imagenet"`` or the path of a backbone weights
            file.
        freeze_encoder: segmentation_models' ``encoder_freeze``.
        augment: Random horizontal flip and crop/scale of the training pairs.
        steps_per_epoch: Batches per epoch, or None for one pass.
        jobs: Runs at once, each in its own process (see :mod:`~sm_pixel_ce.compare.parallel`).
            Defaults to 1.
        threads_per_run: TensorFlow threads of each run, alone or in parallel; None for
            TensorFlow's own number.
        ray: A Ray address or ``"local"``: run the runs as Ray tasks; None for this machine.
        gpus_per_run: GPUs of each Ray task. Defaults to 0.
        prune: Successive halving (see :mod:`~sm_pixel_ce.compare.prune`).
        predictions: What ``predictions.npz`` holds: ``"sample"`` (the first validation images)
            or ``"all"``.

    Raises:
        ValueError: The option that is wrong, as spelled on the command line, what it takes and
            what it received.

    Example:
        >>> options = CompareOptions(variants="cce,cce-dice", epochs=3)
        >>> options.variants, options.classes
        (('cce', 'cce-dice'), 7)
    """

    variants: tuple = _option(
        DEFAULT_VARIANTS,
        f"comma-separated, from {', '.join(VARIANTS)}, or all, or loss specs such as "
        "'pixel_cce+0.5*pixel_lovasz' or 'pixel_tversky(alpha=0.3,beta=0.7)' "
        "(default: %(default)s)",
        group=None,
        type=str,
    )
    data: str = _option(
        None,
        "folder with images/* and masks/* paired by file stem",
        group="data",
        type=str,
        metavar="DIR",
    )
    classes: int = _option(
        None, "number of classes (required with --data; 7 for the scenes)", group="data", type=int
    )
    ignore_index: int = _option(
        None,
        "mask value not counted, e.g. 255 (void borders)",
        group="data",
        type=int,
        metavar="V",
    )
    size: int = _option(
        64,
        "images and masks are resized to SIZE x SIZE, a multiple of 32 (of 48 for PSPNet) "
        "(default: %(default)s)",
        group="data",
        type=int,
    )
    val_fraction: float = _option(
        0.25, "held-out fraction (default: %(default)s)", group="data", type=float
    )
    images: int = _option(
        DEFAULT_SCENES,
        "number of generated scenes without --data (default: %(default)s)",
        group="data",
        type=int,
    )
    skip_bad: bool = _option(
        False,
        "skip damaged or unpaired files (listed in the report) instead of stopping",
        group="data",
    )
    masks: str = _option(
        None, "folder of the masks (default: DATA/masks)", group="data", type=str, metavar="DIR"
    )
    mask_pattern: str = _option(
        None,
        "a mask's file name made from its image's file stem, e.g. '{stem}_mask.png' "
        "(default: the image's stem, .png or .tif)",
        group="data",
        type=str,
        metavar="PATTERN",
    )
    mask_colors: str = _option(
        None,
        'colour-coded masks: a JSON list of {"class": 1, "name": "road", "color": '
        "[128, 64, 128]}, or auto to number the colours found in ascending (R, G, B) order",
        group="data",
        type=str,
        metavar="FILE|auto",
    )
    ignore_color: str = _option(
        None,
        "with --mask-colors: the colour that is not a class (its pixels get --ignore-index, "
        "255 by default)",
        group="data",
        type=str,
        metavar="R,G,B",
    )
    bands: str = _option(
        None,
        "image bands to use, 0-based, e.g. 0,1,2,3; the model takes as many channels (default: "
        "RGB, grey repeated; every band of a TIFF but alpha)",
        group="data",
        type=str,
        metavar="LIST",
    )
    no_exif: bool = _option(
        False,
        "read images and masks as stored, ignoring their EXIF orientation (default: turned as "
        "viewers show them)",
        group="data",
    )
    arch: str = _option(
        "Unet",
        "segmentation_models architecture (default: %(default)s)",
        type=str,
        choices=ARCHITECTURES,
    )
    backbone: str = _option(
        "resnet18", "segmentation_models backbone (default: %(default)s)", type=str
    )
    epochs: int = _option(10, "(default: %(default)s)", type=int)
    batch_size: int = _option(8, "(default: %(default)s)", type=int)
    lr: float = _option(1e-3, "Adam learning rate (default: %(default)s)", type=float)
    seed: int = _option(
        0, "seed of the split, initial weights and batch order (default: %(default)s)", type=int
    )
    seeds: int = _option(
        1, "repeat with K seeds and report mean ± std (default: %(default)s)", type=int, metavar="K"
    )
    encoder_weights: str = _option(
        None,
        "encoder start: random (none), segmentation_models' ImageNet download (cached in "
        "~/.keras/models), or a local weights file of the backbone (default: none)",
        type=str,
        metavar="none|imagenet|PATH",
    )
    freeze_encoder: bool = _option(
        False, "train the decoder only (segmentation_models' encoder_freeze)"
    )
    augment: bool = _option(
        False, "random horizontal flip and crop/scale, the same on image and mask"
    )
    steps_per_epoch: int = _option(
        None,
        "batches per epoch (default: one pass over the training images)",
        type=int,
        metavar="N",
    )
    jobs: int = _option(
        1,
        "train up to N (variant, seed) runs at once, each in its own process, pinned to one GPU "
        "(round robin) where there are GPUs (default: %(default)s, one after another here)",
        group="devices",
        type=int,
        metavar="N",
    )
    threads_per_run: int = _option(
        None,
        "CPU threads of each run's TensorFlow, alone or in parallel, so --jobs does not change "
        "the numbers; e.g. cores / --jobs (default: TensorFlow's own, all cores)",
        group="devices",
        type=int,
        metavar="T",
    )
    ray: str = _option(
        None,
        "run the runs as tasks of the Ray cluster at ADDRESS, or of one started here (local); "
        "their files come back through Ray into --out, but --data must be readable where the "
        'tasks run (pip install "sm_pixel_ce[cluster]")',
        group="devices",
        type=str,
        metavar="ADDRESS|local",
    )
    gpus_per_run: float = _option(
        0.0,
        "with --ray: GPUs of each task, fractions allowed (default: %(default)s)",
        group="devices",
        type=float,
        metavar="G",
    )
    prune: bool = _option(
        False,
        "successive halving: score every run at epochs ceil(E/4) and ceil(E/2), and stop the "
        "variants behind the best beyond doubt (paired bootstrap over the validation images)",
        group="devices",
    )
    predictions: str = _option(
        "sample",
        "validation predictions in predictions.npz: the first 16 images, or all "
        "(default: %(default)s)",
        group="output",
        type=str,
        choices=("sample", "all"),
    )

    def __post_init__(self):
        variants = self.variants
        if isinstance(variants, str):
            try:
                variants = split_variants(variants)
            except ValueError as error:
                raise ValueError(f"--variants: {error}") from None
        self._set("variants", expand_variants(variants))
        weights = self.encoder_weights
        if weights is not None and str(weights).strip().lower() in ("none", "imagenet"):
            weights = None if str(weights).strip().lower() == "none" else "imagenet"
        self._set("encoder_weights", weights)
        _normalise_data(self)
        _check(self)
        if self.data is None and self.classes is None:
            self._set("classes", NUM_CLASSES)

    def _set(self, name, value):
        object.__setattr__(self, name, value)

    @property
    def encoder_weights_name(self):
        """``encoder_weights`` as the report shows it: an absolute path for a file."""
        if self.encoder_weights in (None, "imagenet"):
            return self.encoder_weights
        return os.path.abspath(self.encoder_weights)

    @property
    def variant_list(self):
        """The variants as :class:`~sm_pixel_ce.compare.variants.Variant` objects, in order."""
        return tuple(resolve(v) for v in self.variants)

    @property
    def seed_list(self):
        """The seeds of the runs: ``seed`` .. ``seed + seeds - 1``."""
        return [self.seed + k for k in range(self.seeds)]

    def changed(self):
        """``{name: value}`` of the options that differ from their defaults, in field order."""
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if getattr(self, field.name) != field.default
        }

    def run_config(self, description, fingerprint):
        """What the finished runs in an output folder depend on; ``--resume`` requires it equal.

        Args:
            description: The data, as the report names it.
            fingerprint: What the file names' fingerprint says
                (``"<N> pairs, sha256 <hash>"``).

        Returns:
            A JSON-ready dict.
        """
        config = dataclasses.asdict(self)
        for name in _NOT_IN_RUN_CONFIG:
            del config[name]
        config.update(
            data=description,
            files=fingerprint,
            encoder_weights=self.encoder_weights_name,
            keras=KERAS_FLAVOR,
        )
        return config

    def report_config(self, description, **facts):
        """The report's configuration: every option, the data as described, and ``facts`` of
        the run (class names, split sizes, skipped pairs, wall time ...)."""
        return {
            **dataclasses.asdict(self),
            "variants": list(self.variants),
            "data": description,
            "encoder_weights": self.encoder_weights_name,
            "seed_list": self.seed_list,
            "keras": KERAS_FLAVOR,
            **facts,
        }


def option_fields():
    """The fields of :class:`CompareOptions`, in order: what the command line offers."""
    return dataclasses.fields(CompareOptions)


def option_defaults():
    """``{name: default}`` of every option of :class:`CompareOptions`."""
    return {field.name: field.default for field in option_fields()}


def _normalise_data(options):
    """The data options in one spelling (``--bands 0,1,2``, ``--ignore-color 0,0,0``,
    ``--mask-colors auto``), and the ignore value that ``--ignore-color`` gives its pixels."""
    bands = parse_bands(options.bands)
    options._set("bands", None if bands is None else ",".join(map(str, bands)))
    color = parse_color(options.ignore_color)
    options._set("ignore_color", None if color is None else ",".join(map(str, color)))
    if options.mask_colors is not None:
        colors = os.fspath(options.mask_colors)
        options._set("mask_colors", AUTO if colors.strip().lower() == AUTO else colors)
    if color is not None and options.ignore_index is None and options.classes is not None:
        options._set("ignore_index", default_ignore_index(options.classes))


def _data_checks(options):
    """``(ok, message)`` of the options that say how a ``--data`` folder is read."""
    pattern_error = None
    if options.mask_pattern is not None:
        try:
            MaskPattern(options.mask_pattern)
        except ValueError as error:
            pattern_error = str(error)
    folder_only = [
        name
        for name in ("masks", "mask_pattern", "mask_colors", "ignore_color", "bands", "no_exif")
        if getattr(options, name) not in (None, False)
    ]
    bands = parse_bands(options.bands)
    return [
        (
            options.data is not None or not folder_only,
            f"--{folder_only[0].replace('_', '-') if folder_only else ''} says how a --data "
            "folder is read; pass --data DIR.",
        ),
        (pattern_error is None, pattern_error),
        (
            options.mask_colors in (None, AUTO) or os.path.isfile(options.mask_colors),
            "--mask-colors must be auto or a JSON file of colours; received "
            f"{options.mask_colors!r} (no such file).",
        ),
        (
            options.ignore_color is None or options.mask_colors is not None,
            "--ignore-color marks a colour of colour-coded masks; it needs --mask-colors FILE "
            "or --mask-colors auto.",
        ),
        (
            bands is None or options.encoder_weights is None or len(bands) == 3,
            f"--encoder-weights {options.encoder_weights} takes 3 bands (its encoder was "
            f"trained on RGB); --bands {options.bands} gives {len(bands or ())}: choose 3 "
            "bands, or --encoder-weights none.",
        ),
    ]


def _check(options):
    """Raise a ``ValueError`` naming the first option (as spelled on the command line) that is
    wrong."""
    _check_variants(options.variants)
    _check_model(options)
    for ok, message in [*_value_checks(options), *_data_checks(options)]:
        if not ok:
            raise ValueError(message)


def _check_variants(variants):
    """The variants are known names or loss specs, none twice."""
    if not variants:
        raise ValueError(
            f"--variants must name some of {', '.join(VARIANTS)} or loss specs; received none."
        )
    names = []
    for variant in variants:
        try:
            names.append(resolve(variant).name)
        except UnknownNameError as error:
            raise ValueError(
                f"--variants must name some of {', '.join(VARIANTS)}, or loss specs; {error}"
            ) from None
        except ValueError as error:
            raise ValueError(f"--variants: {error}") from None
    if len(set(names)) != len(names):
        raise ValueError(f"--variants lists a variant twice; received {','.join(variants)!r}.")


def _check_model(options):
    """``--arch`` and ``--backbone`` are segmentation_models'."""
    from ..sm_support import supported_backbones

    if options.arch not in ARCHITECTURES:
        raise ValueError(
            f"--arch must be one of {', '.join(ARCHITECTURES)}; received {options.arch!r}."
        )
    if options.backbone not in supported_backbones():
        raise ValueError(
            "--backbone must be a segmentation_models backbone, e.g. resnet18; "
            f"received {options.backbone!r}."
        )


def _value_checks(options):
    """``(ok, message)`` of every option checked on its own value (after ``--arch`` and
    ``--backbone``, which ``--size`` depends on)."""
    multiple, minimum, reason = size_requirement(options.arch, options.backbone)
    size, classes, ignore_index = options.size, options.classes, options.ignore_index
    return [
        (
            size >= minimum and size % multiple == 0,
            f"--size must be a positive multiple of {multiple} for --arch {options.arch}"
            + (
                f" and at least {minimum} on --backbone {options.backbone} ({reason})"
                if minimum > multiple
                else ""
            )
            + f"; received {size}.",
        ),
        (
            0.0 < options.val_fraction < 1.0,
            f"--val-fraction must lie in (0, 1); received {options.val_fraction}.",
        ),
        (options.epochs >= 1, f"--epochs must be >= 1; received {options.epochs}."),
        (options.batch_size >= 1, f"--batch-size must be >= 1; received {options.batch_size}."),
        (options.lr > 0, f"--lr must be > 0; received {options.lr}."),
        (options.seeds >= 1, f"--seeds must be >= 1; received {options.seeds}."),
        (
            options.steps_per_epoch is None or options.steps_per_epoch >= 1,
            f"--steps-per-epoch must be >= 1; received {options.steps_per_epoch}.",
        ),
        (
            options.predictions in ("sample", "all"),
            f"--predictions must be sample or all; received {options.predictions!r}.",
        ),
        (
            options.encoder_weights is None or bool(str(options.encoder_weights).strip()),
            "--encoder-weights must be none, imagenet or a file path; received an empty value.",
        ),
        (options.images >= 2, f"--images must be >= 2; received {options.images}."),
        (options.jobs >= 1, f"--jobs must be >= 1; received {options.jobs}."),
        (
            options.threads_per_run is None or options.threads_per_run >= 1,
            f"--threads-per-run must be >= 1; received {options.threads_per_run}.",
        ),
        (
            options.ray is None or options.jobs == 1,
            "--ray sends the runs to Ray, which schedules them; --jobs runs processes here: "
            f"pass one of them; received --jobs {options.jobs} with --ray {options.ray}.",
        ),
        (
            options.ray is None or bool(str(options.ray).strip()),
            "--ray must be a Ray address or local; received an empty value.",
        ),
        (
            options.gpus_per_run >= 0 and (options.ray is not None or not options.gpus_per_run),
            f"--gpus-per-run is for --ray and must be >= 0; received {options.gpus_per_run}"
            + ("" if options.ray is not None else " without --ray")
            + ".",
        ),
        (classes is None or classes >= 2, f"--classes must be >= 2; received {classes}."),
        (
            options.data is None or classes is not None,
            "--data needs --classes N (the number of classes in the masks).",
        ),
        (
            options.data is not None or classes in (None, NUM_CLASSES),
            f"the generated scenes have {NUM_CLASSES} classes; received --classes {classes}.",
        ),
        (
            ignore_index is None or 0 <= ignore_index <= 65535,
            "--ignore-index must be a mask value in [0, 65535] (16-bit masks); received "
            f"{ignore_index}.",
        ),
        (
            classes is None or classes <= 65535,
            f"--classes must be at most 65535 (16-bit masks); received {classes}.",
        ),
    ]
