"""``sm-pixel-ce compare``: parse, call :func:`sm_pixel_ce.compare.run_compare`, print the tables.

Exit status: 0 on success, 1 for unusable data or weights files, 2 for bad arguments, 130 when
interrupted (Ctrl-C; finished runs are kept and the command that resumes is printed).
"""

import shlex
import sys

from ..compare import report
from ..compare.encoders import EncoderWeightsError
from ..compare.job import (
    DEFAULT_EPOCHS,
    DEFAULT_OUT,
    DEFAULT_SCENES,
    CompareInterrupted,
    run_compare,
)
from ..compare.variants import DEFAULT_VARIANTS, VARIANTS
from ..data import DataError
from ..input_sizes import ARCHITECTURES

# (flag, dest, default, is a switch) of every option, for the command that resumes a run.
_OPTIONS = []


def _add(group, flag, **kwargs):
    action = group.add_argument(flag, **kwargs)
    _OPTIONS.append((flag, action.dest, action.default, kwargs.get("action") == "store_true"))
    return action


def add_arguments(parser):
    """Add the ``compare`` options to ``parser``."""
    _add(
        parser,
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from {', '.join(VARIANTS)}, or all (default: %(default)s)",
    )
    data = parser.add_argument_group("data (default: generated 7-class scenes)")
    _add(data, "--data", metavar="DIR", help="folder with images/* and masks/* paired by file stem")
    _add(
        data,
        "--classes",
        type=int,
        help="number of classes (required with --data; 7 for the scenes)",
    )
    _add(
        data,
        "--ignore-index",
        type=int,
        metavar="V",
        help="mask value not counted, e.g. 255 (void borders)",
    )
    _add(
        data,
        "--size",
        type=int,
        default=64,
        help="images and masks are resized to SIZE x SIZE, a multiple of 32 (of 48 for PSPNet) "
        "(default: %(default)s)",
    )
    _add(
        data,
        "--val-fraction",
        type=float,
        default=0.25,
        help="held-out fraction (default: %(default)s)",
    )
    _add(
        data,
        "--images",
        type=int,
        default=DEFAULT_SCENES,
        help="number of generated scenes without --data (default: %(default)s)",
    )
    train = parser.add_argument_group("training")
    _add(
        train,
        "--arch",
        default="Unet",
        choices=ARCHITECTURES,
        help="segmentation_models architecture (default: %(default)s)",
    )
    _add(
        train,
        "--backbone",
        default="resnet18",
        help="segmentation_models backbone (default: %(default)s)",
    )
    _add(train, "--epochs", type=int, default=DEFAULT_EPOCHS, help="(default: %(default)s)")
    _add(train, "--batch-size", type=int, default=8, help="(default: %(default)s)")
    _add(train, "--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    _add(
        train,
        "--seed",
        type=int,
        default=0,
        help="seed of the split, initial weights and batch order (default: %(default)s)",
    )
    _add(
        train,
        "--seeds",
        type=int,
        default=1,
        metavar="K",
        help="repeat with K seeds and report mean ± std (default: %(default)s)",
    )
    _add(
        train,
        "--encoder-weights",
        default="none",
        metavar="none|imagenet|PATH",
        help="encoder start: random (none), segmentation_models' ImageNet download (cached in "
        "~/.keras/models), or a local weights file of the backbone (default: %(default)s)",
    )
    _add(
        train,
        "--freeze-encoder",
        action="store_true",
        help="train the decoder only (segmentation_models' encoder_freeze)",
    )
    _add(
        train,
        "--augment",
        action="store_true",
        help="random horizontal flip and crop/scale, the same on image and mask",
    )
    _add(
        train,
        "--steps-per-epoch",
        type=int,
        metavar="N",
        help="batches per epoch (default: one pass over the training images)",
    )
    _add(
        data,
        "--skip-bad",
        action="store_true",
        help="skip damaged image/mask pairs (listed in the report) instead of stopping",
    )
    out = parser.add_argument_group("output")
    _add(
        out,
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    _add(
        out,
        "--resume",
        action="store_true",
        help="keep the finished runs in --out (same configuration) and train only the others",
    )
    _add(
        out,
        "--predictions",
        choices=("sample", "all"),
        default="sample",
        help="validation predictions in predictions.npz: the first 16 images, or all "
        "(default: %(default)s)",
    )


def resume_command(args):
    """The command line that resumes the run ``args`` describes."""
    words = ["sm-pixel-ce", "compare"]
    for flag, dest, default, switch in _OPTIONS:
        value = getattr(args, dest, default)
        if flag == "--resume" or value == default or value is None:
            continue
        words += [flag] if switch else [flag, str(value)]
    return shlex.join(words + ["--resume"])


def _error(message, status=2):
    print(f"sm-pixel-ce compare: error: {message}", file=sys.stderr)
    return status


def run(args):
    """Run the comparison described by ``args``; returns the exit status."""
    try:
        config, results, class_names = run_compare(
            out=args.out,
            variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
            data=args.data,
            classes=args.classes,
            ignore_index=args.ignore_index,
            size=args.size,
            val_fraction=args.val_fraction,
            images=args.images,
            arch=args.arch,
            backbone=args.backbone,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            seeds=args.seeds,
            encoder_weights=args.encoder_weights,
            freeze_encoder=args.freeze_encoder,
            augment=args.augment,
            steps_per_epoch=args.steps_per_epoch,
            skip_bad=args.skip_bad,
            resume=args.resume,
            predictions=args.predictions,
            log=lambda line: print(line, flush=True),
        )
    except CompareInterrupted as stopped:
        print(f"sm-pixel-ce compare: {stopped}.", file=sys.stderr)
        left = ", ".join(f"{v} seed {s}" for v, s in stopped.missing) or "none"
        print(f"Not finished: {left}. Resume with:", file=sys.stderr)
        print(f"  {resume_command(args)}", file=sys.stderr)
        return 130
    except (DataError, EncoderWeightsError) as error:
        return _error(str(error), status=1)
    except ValueError as error:
        return _error(str(error))
    out = args.out
    print()
    print(report.table(results))
    print()
    print(report.per_class_table(results, class_names))
    print()
    print(report.recommendation(results, class_names)["text"])
    print()
    reloads = ", ".join(f"{r['variant']} {r['reload_max_abs_diff']:.1e}" for r in results)
    print(
        f"Models saved as {out}/model_<variant>.keras and reloaded; "
        f"largest output difference: {reloads}"
    )
    if config["skipped"]:
        print(f"Skipped {len(config['skipped'])} damaged pair(s), listed in {out}/report.md")
    print(f"Report: {out}/report.md, {out}/report.json; wall time {config['wall_seconds']:.0f} s")
    return 0
