"""``sm-pixel-ce compare``: parse, call :func:`sm_pixel_ce.compare.run_compare`, print the tables.

Exit status: 0 on success, 1 for unusable data, 2 for bad arguments.
"""

import sys

from ..compare import report
from ..compare.job import DEFAULT_EPOCHS, DEFAULT_OUT, DEFAULT_SCENES, run_compare
from ..compare.variants import DEFAULT_VARIANTS, VARIANTS
from ..data import DataError
from ..input_sizes import ARCHITECTURES


def add_arguments(parser):
    """Add the ``compare`` options to ``parser``."""
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from {', '.join(VARIANTS)} (default: %(default)s)",
    )
    data = parser.add_argument_group("data (default: generated 7-class scenes)")
    data.add_argument(
        "--data", metavar="DIR", help="folder with images/* and masks/* paired by file stem"
    )
    data.add_argument(
        "--classes", type=int, help="number of classes (required with --data; 7 for the scenes)"
    )
    data.add_argument(
        "--ignore-index",
        type=int,
        metavar="V",
        help="mask value not counted, e.g. 255 (void borders)",
    )
    data.add_argument(
        "--size",
        type=int,
        default=64,
        help="images and masks are resized to SIZE x SIZE, a multiple of 32 (of 48 for PSPNet) "
        "(default: %(default)s)",
    )
    data.add_argument(
        "--val-fraction", type=float, default=0.25, help="held-out fraction (default: %(default)s)"
    )
    data.add_argument(
        "--images",
        type=int,
        default=DEFAULT_SCENES,
        help="number of generated scenes without --data (default: %(default)s)",
    )
    train = parser.add_argument_group("training")
    train.add_argument(
        "--arch",
        default="Unet",
        choices=ARCHITECTURES,
        help="segmentation_models architecture (default: %(default)s)",
    )
    train.add_argument(
        "--backbone",
        default="resnet18",
        help="segmentation_models backbone, encoder_weights=None (default: %(default)s)",
    )
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="(default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=8, help="(default: %(default)s)")
    train.add_argument(
        "--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)"
    )
    train.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the split, initial weights and batch order (default: %(default)s)",
    )
    train.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="K",
        help="repeat with K seeds and report mean ± std (default: %(default)s)",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help="output folder (default: %(default)s)"
    )


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
            log=lambda line: print(line, flush=True),
        )
    except DataError as error:
        return _error(str(error), status=1)
    except ValueError as error:
        return _error(str(error))
    out = args.out
    print()
    print(report.table(results))
    print()
    print(report.per_class_table(results, class_names))
    print()
    reloads = ", ".join(f"{r['variant']} {r['reload_max_abs_diff']:.1e}" for r in results)
    print(
        f"Models saved as {out}/model_<variant>.keras and reloaded; "
        f"largest output difference: {reloads}"
    )
    print(f"Report: {out}/report.md, {out}/report.json; wall time {config['wall_seconds']:.0f} s")
    return 0
