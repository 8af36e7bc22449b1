"""``sm-pixel-ce compare``: categorical or binary cross-entropy? Train both, score both alike.

Trains the same segmentation_models model (same initial weights, same split, same batches, same
optimizer and epochs) once per variant, scores each on the held-out split with the same NumPy
metrics, saves and reloads each model, and writes ``report.json``, ``report.md`` and pictures.
Exit status: 0 on success, 1 for unusable data, 2 for bad arguments.
"""

import os
import sys
import time

DEFAULT_OUT = "sm-pixel-ce-compare"
# The default run: sized to finish within about 3 minutes on 2 CPU cores and still separate
# the variants.
DEFAULT_SCENES = 160
DEFAULT_EPOCHS = 10


def add_arguments(parser):
    """Add the ``compare`` options to ``parser``."""
    from ..compare.variants import DEFAULT_VARIANTS, VARIANTS
    from ..input_sizes import ARCHITECTURES

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


def _check_arguments(args):
    """The variants as a tuple, or an error message."""
    from ..compare.variants import VARIANTS

    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    unknown = [v for v in variants if v not in VARIANTS]
    if not variants or unknown:
        return (
            None,
            f"--variants must name some of {', '.join(VARIANTS)}; received {args.variants!r}.",
        )
    if len(set(variants)) != len(variants):
        return None, f"--variants lists a variant twice; received {args.variants!r}."
    # Encoders halve the image 5 times; PSPNet pools its 1/8 feature map into 6 bins.
    multiple = 48 if args.arch == "PSPNet" else 32
    checks = [
        (
            args.size >= multiple and args.size % multiple == 0,
            f"--size must be a positive multiple of {multiple} for --arch {args.arch}; "
            f"received {args.size}.",
        ),
        (
            0.0 < args.val_fraction < 1.0,
            f"--val-fraction must lie in (0, 1); received {args.val_fraction}.",
        ),
        (args.epochs >= 1, f"--epochs must be >= 1; received {args.epochs}."),
        (args.batch_size >= 1, f"--batch-size must be >= 1; received {args.batch_size}."),
        (args.lr > 0, f"--lr must be > 0; received {args.lr}."),
        (args.seeds >= 1, f"--seeds must be >= 1; received {args.seeds}."),
        (args.images >= 2, f"--images must be >= 2; received {args.images}."),
        (
            args.classes is None or args.classes >= 2,
            f"--classes must be >= 2; received {args.classes}.",
        ),
        (
            args.data is None or args.classes is not None,
            "--data needs --classes N (the number of classes in the masks).",
        ),
        (
            args.ignore_index is None or 0 <= args.ignore_index <= 255,
            f"--ignore-index must be an 8-bit mask value in [0, 255]; received {args.ignore_index}.",
        ),
    ]
    for ok, message in checks:
        if not ok:
            return None, message
    return variants, None


def run(args):
    """Run the comparison described by ``args``; returns the exit status."""
    start = time.perf_counter()
    variants, message = _check_arguments(args)
    if message:
        return _error(message)

    import segmentation_models as sm
    import tensorflow as tf

    from .. import KERAS_FLAVOR
    from ..compare import plots, report
    from ..compare.experiment import Settings, run_comparison, split
    from ..data import CLASS_NAMES, NUM_CLASSES, DataError, load_folder, make_scenes

    # Retracing warnings are expected: every variant is a new model with its own functions.
    tf.get_logger().setLevel("ERROR")
    if args.backbone not in sm.get_available_backbone_names():
        return _error(
            f"--backbone must be a segmentation_models backbone, e.g. resnet18; received {args.backbone!r}."
        )
    if args.data is None:
        classes = NUM_CLASSES if args.classes is None else args.classes
        if classes != NUM_CLASSES:
            return _error(
                f"the generated scenes have {NUM_CLASSES} classes; received --classes {classes}."
            )
        images, masks = make_scenes(args.images, size=args.size, seed=args.seed)
        class_names = list(CLASS_NAMES)
        source = (
            f"generated scenes (make_scenes({args.images}, size={args.size}, seed={args.seed}))"
        )
    else:
        classes = args.classes
        try:
            images, masks = load_folder(args.data, classes, args.size, args.ignore_index)
            if len(images) < 2:
                raise DataError(
                    f"{args.data}: need at least 2 image/mask pairs to hold some out; found {len(images)}."
                )
        except DataError as error:
            return _error(str(error), status=1)
        class_names = [f"class {c}" for c in range(classes)]
        source = os.path.abspath(args.data)

    data = split(images, masks, args.val_fraction, args.seed)
    settings = Settings(
        variants=variants,
        classes=classes,
        size=args.size,
        ignore_index=args.ignore_index,
        arch=args.arch,
        backbone=args.backbone,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        seeds=args.seeds,
    )
    os.makedirs(args.out, exist_ok=True)
    print(
        f"Comparing {', '.join(variants)}: sm.{args.arch}({args.backbone!r}) on {source}, "
        f"{len(data.train_images)} train / {len(data.val_images)} val images, {args.epochs} epochs, "
        f"{args.seeds} seed(s), Keras {KERAS_FLAVOR}",
        flush=True,
    )
    runs, predictions = run_comparison(
        data, settings, args.out, log=lambda line: print(line, flush=True)
    )
    results = report.aggregate(runs)

    pictures = [
        ("Validation mIoU per epoch", os.path.join(args.out, "compare_curves.png")),
        ("Per-class IoU", os.path.join(args.out, "compare_per_class_iou.png")),
        ("Validation predictions", os.path.join(args.out, "compare_predictions.png")),
    ]
    plots.learning_curves(pictures[0][1], results)
    plots.per_class_bars(pictures[1][1], results, class_names)
    plots.prediction_grid(
        pictures[2][1],
        data.val_images,
        data.val_masks,
        predictions,
        classes,
        args.ignore_index,
        class_names=class_names,
    )

    config = {
        "data": source,
        "classes": classes,
        "class_names": class_names,
        "ignore_index": args.ignore_index,
        "size": args.size,
        "val_fraction": args.val_fraction,
        "train_images": len(data.train_images),
        "val_images": len(data.val_images),
        "variants": list(variants),
        "arch": args.arch,
        "backbone": args.backbone,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "seeds": args.seeds,
        "seed_list": [args.seed + k for k in range(args.seeds)],
        "keras": KERAS_FLAVOR,
        "wall_seconds": time.perf_counter() - start,
    }
    report.write_json(os.path.join(args.out, "report.json"), config, results)
    report.write_markdown(
        os.path.join(args.out, "report.md"), config, results, class_names, pictures
    )
    _save_predictions(os.path.join(args.out, "predictions.npz"), data, predictions)

    print()
    print(report.table(results))
    print()
    print(report.per_class_table(results, class_names))
    print()
    reloads = ", ".join(f"{r['variant']} {r['reload_max_abs_diff']:.1e}" for r in results)
    print(
        f"Models saved as {args.out}/model_<variant>.keras and reloaded; largest output difference: {reloads}"
    )
    print(
        f"Report: {args.out}/report.md, {args.out}/report.json; wall time {config['wall_seconds']:.0f} s"
    )
    return 0


def _save_predictions(path, data, predictions):
    """Validation images, labels and each variant's argmax, for checking the report independently."""
    import numpy as np

    np.savez_compressed(
        path,
        val_images=data.val_images,
        val_masks=data.val_masks,
        **{
            f"pred_{v.replace('-', '_')}": p.argmax(-1).astype(np.uint8)
            for v, p in predictions.items()
        },
    )
