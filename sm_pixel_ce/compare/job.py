"""One ``compare`` run: check the arguments, load or generate the data, train every variant,
score, draw and write the report. :func:`run_compare` is what ``sm-pixel-ce compare`` calls."""

import os
import time

import numpy as np

from ..data import CLASS_NAMES, NUM_CLASSES, DataError, load_folder, make_scenes
from ..flavor import KERAS_FLAVOR
from . import plots, report
from .experiment import Settings, run_comparison, split
from .variants import DEFAULT_VARIANTS, VARIANTS

DEFAULT_OUT = "sm-pixel-ce-compare"
# The default run: sized to finish within about 3 minutes on 2 CPU cores and still separate
# the variants.
DEFAULT_SCENES = 160
DEFAULT_EPOCHS = 10


def check_compare_arguments(
    variants=DEFAULT_VARIANTS,
    data=None,
    classes=None,
    ignore_index=None,
    size=64,
    val_fraction=0.25,
    images=DEFAULT_SCENES,
    arch="Unet",
    epochs=DEFAULT_EPOCHS,
    batch_size=8,
    lr=1e-3,
    seeds=1,
):
    """Raise a ``ValueError`` naming the option (as spelled on the command line) that is wrong.

    Args:
        variants, data, classes, ignore_index, size, val_fraction, images, arch, epochs,
            batch_size, lr, seeds: As for :func:`run_compare`.

    Raises:
        ValueError: What the option takes and what it received.
    """
    variants = tuple(variants)
    unknown = [v for v in variants if v not in VARIANTS]
    if not variants or unknown:
        raise ValueError(
            f"--variants must name some of {', '.join(VARIANTS)}; received {','.join(variants)!r}."
        )
    if len(set(variants)) != len(variants):
        raise ValueError(f"--variants lists a variant twice; received {','.join(variants)!r}.")
    # Encoders halve the image 5 times; PSPNet pools its 1/8 feature map into 6 bins.
    multiple = 48 if arch == "PSPNet" else 32
    checks = [
        (
            size >= multiple and size % multiple == 0,
            f"--size must be a positive multiple of {multiple} for --arch {arch}; received {size}.",
        ),
        (
            0.0 < val_fraction < 1.0,
            f"--val-fraction must lie in (0, 1); received {val_fraction}.",
        ),
        (epochs >= 1, f"--epochs must be >= 1; received {epochs}."),
        (batch_size >= 1, f"--batch-size must be >= 1; received {batch_size}."),
        (lr > 0, f"--lr must be > 0; received {lr}."),
        (seeds >= 1, f"--seeds must be >= 1; received {seeds}."),
        (images >= 2, f"--images must be >= 2; received {images}."),
        (
            classes is None or classes >= 2,
            f"--classes must be >= 2; received {classes}.",
        ),
        (
            data is None or classes is not None,
            "--data needs --classes N (the number of classes in the masks).",
        ),
        (
            ignore_index is None or 0 <= ignore_index <= 255,
            f"--ignore-index must be an 8-bit mask value in [0, 255]; received {ignore_index}.",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def run_compare(
    out=DEFAULT_OUT,
    variants=DEFAULT_VARIANTS,
    data=None,
    classes=None,
    ignore_index=None,
    size=64,
    val_fraction=0.25,
    images=DEFAULT_SCENES,
    arch="Unet",
    backbone="resnet18",
    epochs=DEFAULT_EPOCHS,
    batch_size=8,
    lr=1e-3,
    seed=0,
    seeds=1,
    log=None,
):
    """Train the same model once per variant (and seed), score all alike, and write the report.

    Args:
        out: Output folder: ``report.json``, ``report.md``, pictures, ``predictions.npz``, models.
            Defaults to ``"sm-pixel-ce-compare"``.
        variants: Variant names from ``VARIANTS``, in report order. Defaults to ``("cce", "bce")``.
        data: Folder with ``images/`` and ``masks/``; None for the generated scenes.
            Defaults to None.
        classes: Number of classes (required with ``data``; 7 for the scenes). Defaults to None.
        ignore_index: Mask value not counted, or None. Defaults to None.
        size: Square input side. Defaults to 64.
        val_fraction: Held-out fraction. Defaults to 0.25.
        images: Number of generated scenes without ``data``. Defaults to 160.
        arch, backbone: segmentation_models model. Defaults to ``"Unet"``, ``"resnet18"``.
        epochs, batch_size, lr: Adam schedule. Defaults to 10, 8, 1e-3.
        seed: First seed (split, initial weights, batch order). Defaults to 0.
        seeds: Runs per variant, seeds ``seed`` .. ``seed + seeds - 1``. Defaults to 1.
        log: Callable given progress lines. Defaults to None.

    Returns:
        ``(config, results, class_names)``: the run's configuration (as in ``report.json``), one
        aggregated result dict per variant, and the class names.

    Raises:
        ValueError: A bad argument (see :func:`check_compare_arguments`) or backbone.
        DataError: The data folder cannot be used; the message names the file at fault.

    Example:
        >>> config, results, names = run_compare("results", epochs=1, images=16)
        >>> [r["variant"] for r in results]
        ['cce', 'bce']
    """
    import segmentation_models as sm
    import tensorflow as tf

    start = time.perf_counter()
    log = log or (lambda line: None)
    variants = tuple(variants)
    check_compare_arguments(
        variants,
        data,
        classes,
        ignore_index,
        size,
        val_fraction,
        images,
        arch,
        epochs,
        batch_size,
        lr,
        seeds,
    )
    # Retracing warnings are expected: every variant is a new model with its own functions.
    tf.get_logger().setLevel("ERROR")
    if backbone not in sm.get_available_backbone_names():
        raise ValueError(
            "--backbone must be a segmentation_models backbone, e.g. resnet18; "
            f"received {backbone!r}."
        )
    if data is None:
        classes = NUM_CLASSES if classes is None else classes
        if classes != NUM_CLASSES:
            raise ValueError(
                f"the generated scenes have {NUM_CLASSES} classes; received --classes {classes}."
            )
        all_images, all_masks = make_scenes(images, size=size, seed=seed)
        class_names = list(CLASS_NAMES)
        source = f"generated scenes (make_scenes({images}, size={size}, seed={seed}))"
    else:
        all_images, all_masks = load_folder(data, classes, size, ignore_index)
        if len(all_images) < 2:
            raise DataError(
                f"{data}: need at least 2 image/mask pairs to hold some out; "
                f"found {len(all_images)}."
            )
        class_names = [f"class {c}" for c in range(classes)]
        source = os.path.abspath(data)

    held_out = split(all_images, all_masks, val_fraction, seed)
    settings = Settings(
        variants=variants,
        classes=classes,
        size=size,
        ignore_index=ignore_index,
        arch=arch,
        backbone=backbone,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        seeds=seeds,
    )
    os.makedirs(out, exist_ok=True)
    log(
        f"Comparing {', '.join(variants)}: sm.{arch}({backbone!r}) on {source}, "
        f"{len(held_out.train_images)} train / {len(held_out.val_images)} val images, "
        f"{epochs} epochs, "
        f"{seeds} seed(s), Keras {KERAS_FLAVOR}"
    )
    runs, predictions = run_comparison(held_out, settings, out, log=log)
    results = report.aggregate(runs)

    pictures = [
        ("Validation mIoU per epoch", os.path.join(out, "compare_curves.png")),
        ("Per-class IoU", os.path.join(out, "compare_per_class_iou.png")),
        ("Validation predictions", os.path.join(out, "compare_predictions.png")),
    ]
    plots.learning_curves(pictures[0][1], results)
    plots.per_class_bars(pictures[1][1], results, class_names)
    plots.prediction_grid(
        pictures[2][1],
        held_out.val_images,
        held_out.val_masks,
        predictions,
        classes,
        ignore_index,
        class_names=class_names,
    )

    config = {
        "data": source,
        "classes": classes,
        "class_names": class_names,
        "ignore_index": ignore_index,
        "size": size,
        "val_fraction": val_fraction,
        "train_images": len(held_out.train_images),
        "val_images": len(held_out.val_images),
        "variants": list(variants),
        "arch": arch,
        "backbone": backbone,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "seeds": seeds,
        "seed_list": [seed + k for k in range(seeds)],
        "keras": KERAS_FLAVOR,
        "wall_seconds": time.perf_counter() - start,
    }
    report.write_json(os.path.join(out, "report.json"), config, results)
    report.write_markdown(os.path.join(out, "report.md"), config, results, class_names, pictures)
    _save_predictions(os.path.join(out, "predictions.npz"), held_out, predictions)
    return config, results, class_names


def _save_predictions(path, held_out, predictions):
    """Validation images, labels and each variant's argmax, for checking the report
    independently."""
    np.savez_compressed(
        path,
        val_images=held_out.val_images,
        val_masks=held_out.val_masks,
        **{
            f"pred_{v.replace('-', '_')}": p.argmax(-1).astype(np.uint8)
            for v, p in predictions.items()
        },
    )
