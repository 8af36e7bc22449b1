"""What one ``compare`` run is asked for: :class:`CompareOptions`, every option with its default
and its help in one place (the reading options' in :mod:`sm_pixel_ce.data.options`), normalised
and checked once when the object is made.

The command line is built from these fields (``--<name-with-dashes>``, their help and groups),
the run configuration that ``--resume`` checks and the report's configuration are derived from
them, and the training code reads them.
"""

import dataclasses
import difflib
import functools
import math
import os
import re

from .._registry import list_names
from ..data import NUM_CLASSES, parse_bands
from ..data.options import TRAINING_SIZE, ReadOptions, flat_defaults, flat_fields, option, reads
from ..flavor import KERAS_FLAVOR
from ..input_sizes import ARCHITECTURES, size_requirement
from .recipe import OPTIMIZERS, optimizer_parts
from .specs import UnknownNameError, split_variants
from .variants import DEFAULT_VARIANTS, VARIANTS, expand_variants, resolve

#: Generated scenes without ``--data``: sized so that the default run finishes within about
#: 3 minutes on 2 CPU cores and still separates the variants.
DEFAULT_SCENES = 160
#: Options that do not change what a finished run holds: ``--resume`` may differ in them.
_NOT_IN_RUN_CONFIG = (
    "variants",
    "seeds",
    "images",
    "skip_bad",
    "jobs",
    "in_process",
    "ray",
    "gpus_per_run",
    "budget",
)


#: A field with its command-line spelling, in the training group unless told.
_option = functools.partial(option, group="training")


@reads(
    "size",
    "ignore_index",
    "mask_colors",
    "ignore_color",
    "masks",
    "mask_pattern",
    "bands",
    "no_exif",
    "skip_bad",
    size=TRAINING_SIZE,
)
@dataclasses.dataclass(frozen=True)
class CompareOptions:
    """Every option of one ``compare`` run.

    Made once, from keywords or from the command line; normalised (``variants`` as a tuple with
    ``"all"`` expanded, ``encoder_weights="none"`` as None, the scenes' class count and the
    ignore value of ``ignore_color`` filled in) and checked when made. The reading options it
    takes (``CompareOptions.READS``) are those of :class:`~sm_pixel_ce.data.options.ReadOptions`,
    held in ``read``, given and read as flat keywords and attributes (``size`` defaults to 64).

    Attributes:
        variants: Variant names from ``VARIANTS`` or loss specs (``"pixel_cce+0.5*pixel_dice"``,
            see :mod:`~sm_pixel_ce.compare.specs`), in report order, or ``("all",)``; a string
            is split on the commas outside parentheses. Defaults to ``("cce", "bce")``.
        data: Folder with ``images/`` and ``masks/``; None for the generated scenes.
        classes: Number of classes (required with ``data``; 7 for the scenes).
        val_fraction: Held-out fraction, drawn over the file names. Defaults to 0.25.
        images: Number of generated scenes without ``data``. Defaults to 160.
        read: How the folder is read (:class:`~sm_pixel_ce.data.options.ReadOptions`).
        arch, backbone: segmentation_models model. Defaults to ``"Unet"``, ``"resnet18"``.
        epochs, batch_size, lr: the schedule. Defaults to 10, 8, 1e-3.
        optimizer, momentum: ``adam``, ``adamw`` or ``sgd`` (with ``momentum``, 0.9). Defaults
            to ``adam``.
        seed: First seed (split, initial weights, batch order). Defaults to 0.
        seeds: Runs per variant, seeds ``seed`` .. ``seed + seeds - 1``. Defaults to 1.
        encoder_weights: None (or ``"none"``), ``"imagenet"`` or the path of a backbone weights
            file.
        freeze_encoder: segmentation_models' ``encoder_freeze``.
        augment: Random horizontal flip and crop/scale of the training pairs.
        steps_per_epoch: Batches per epoch, or None for one pass.
        jobs: Runs at once, each in its own process (see :mod:`~sm_pixel_ce.compare.parallel`).
            Defaults to 1.
        in_process: With ``jobs`` 1, train every run in this process instead of a fresh process
            per run (see :mod:`~sm_pixel_ce.compare.parallel`: TensorFlow keeps memory of every
            model it trained until its process ends).
        threads_per_run: TensorFlow threads of each run, alone or in parallel; None for
            TensorFlow's own number.
        ray: A Ray address or ``"local"``: run the runs as Ray tasks; None for this machine.
        gpus_per_run: GPUs of each Ray task. Defaults to 0.
        prune: Successive halving (see :mod:`~sm_pixel_ce.compare.prune`).
        budget: Minutes the whole comparison may take: the seeds, epochs and ``prune`` are
            planned to fit, on the time per epoch measured first (see
            :mod:`~sm_pixel_ce.compare.budget`); None for the grid as asked.
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
    read: ReadOptions = dataclasses.field(default_factory=ReadOptions)
    val_fraction: float = _option(
        0.25, "held-out fraction (default: %(default)s)", group="data", type=float
    )
    images: int = _option(
        DEFAULT_SCENES,
        "number of generated scenes without --data (default: %(default)s)",
        group="data",
        type=int,
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
    lr: float = _option(1e-3, "learning rate (default: %(default)s)", type=float)
    optimizer: str = _option(
        "adam",
        "adam, adamw or sgd, Keras's with their defaults (default: %(default)s)",
        type=str,
        choices=tuple(OPTIMIZERS),
    )
    momentum: float = _option(
        0.9, "SGD's momentum; 0: plain SGD (default: %(default)s)", type=float
    )
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
    in_process: bool = _option(
        False,
        "with --jobs 1, train every run in this process: saves importing TensorFlow per run "
        "(about 6 s), but TensorFlow keeps about 0.3 GB per trained run until the process ends "
        "(default: more than one run to train: each in a fresh process, one at a time)",
        group="devices",
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
    budget: float = _option(
        None,
        "plan the grid to end within MINUTES on the time per epoch measured first: fewer "
        "seeds (down to 2), --prune, then fewer epochs; says what it dropped "
        "(default: the grid as asked)",
        group="devices",
        type=float,
        metavar="MINUTES",
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
        if self.classes is not None:  # --ignore-color's pixels get their value
            ignore_index = self.read.ignore_value(self.classes)
            self._set("read", dataclasses.replace(self.read, ignore_index=ignore_index))
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
        defaults = option_defaults()
        return {name: value for name, value in self.flat().items() if value != defaults[name]}

    def run_config(self, description, fingerprint):
        """What the finished runs in an output folder depend on; ``--resume`` requires it equal.

        Args:
            description: The data, as the report names it.
            fingerprint: What the file names' fingerprint says
                (``"<N> pairs, sha256 <hash>"``).

        Returns:
            A JSON-ready dict.
        """
        config = self.flat()
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
            **self.flat(),
            "variants": list(self.variants),
            "data": description,
            "encoder_weights": self.encoder_weights_name,
            "seed_list": self.seed_list,
            "keras": KERAS_FLAVOR,
            **facts,
        }


def option_fields():
    """The fields of :class:`CompareOptions`, the reading options in ``read``'s place, in
    order: what the command line offers."""
    return flat_fields(CompareOptions)


def option_defaults():
    """``{name: default}`` of every option of :class:`CompareOptions`, as
    :meth:`CompareOptions.flat` writes them."""
    return flat_defaults(CompareOptions)


def _data_checks(options):
    """``(ok, message)`` of the options that say how a ``--data`` folder is read (each on its own
    value is checked by :class:`~sm_pixel_ce.data.options.ReadOptions`)."""
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
    optimizer_parts(options.optimizer, options.momentum)
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
            raise ValueError(f"--variants: {_closest_variant(variant) or error}") from None
    if len(set(names)) != len(names):
        raise ValueError(f"--variants lists a variant twice; received {','.join(variants)!r}.")


def _closest_variant(text):
    """For a ``--variants`` entry written as one name (``cce-dise``): a line giving the closest
    built-in variant or registered loss and the built-ins; None for anything else."""
    if not re.fullmatch(r"[\w.-]+", text):
        return None
    losses = [name for name in list_names("loss") if name.islower()]
    close = difflib.get_close_matches(text, [*VARIANTS, *losses], n=1, cutoff=0.6)
    return (
        f"{text!r} is neither a built-in variant nor a loss spec"
        + (f"; did you mean {close[0]!r}?" if close else ".")
        + f" Built-in variants: {', '.join(VARIANTS)}; or registered losses joined by +, with "
        "options, e.g. pixel_cce+0.5*pixel_lovasz."
    )


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
    size, classes = options.size, options.classes
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
        (
            0.0 <= options.momentum < 1.0,
            f"--momentum must lie in [0, 1); received {options.momentum}.",
        ),
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
            not options.in_process or (options.jobs == 1 and options.ray is None),
            "--in-process trains the runs here, one after another; received it with "
            f"--jobs {options.jobs}"
            + (f" --ray {options.ray}" if options.ray else "")
            + ". Drop --in-process, or pass --jobs 1 without --ray.",
        ),
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
            options.budget is None or (math.isfinite(options.budget) and options.budget > 0),
            f"--budget must be a number of minutes > 0; received {options.budget}.",
        ),
        (
            options.budget is None or options.ray is None,
            "--budget plans on the time measured on this machine, and Ray tasks run elsewhere; "
            f"received --budget {options.budget} with --ray {options.ray}. Drop one of them.",
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
            classes is None or classes <= 65535,
            f"--classes must be at most 65535 (16-bit masks); received {classes}.",
        ),
    ]
