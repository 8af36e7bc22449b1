"""One ``compare`` run: check the arguments, check the data folder file by file, stream every
variant's training and scoring from disk, write each finished run at once, and draw and write the
report. :func:`run_compare` is what ``sm-pixel-ce compare`` calls."""

import json
import os
import time
import zipfile

import numpy as np

from ..data import (
    CLASS_NAMES,
    NUM_CLASSES,
    ArraySource,
    DataError,
    FolderSource,
    check_pairs,
    fingerprint,
    make_scenes,
    pair_files,
)
from ..flavor import KERAS_FLAVOR
from . import plots, report
from .experiment import RUNS, Settings, finished_runs, run_comparison, run_name, split
from .training import SAMPLE
from .variants import DEFAULT_VARIANTS, VARIANTS, expand_variants

DEFAULT_OUT = "sm-pixel-ce-compare"
# The default run: sized to finish within about 3 minutes on 2 CPU cores and still separate
# the variants.
DEFAULT_SCENES = 160
DEFAULT_EPOCHS = 10
#: The file in the output folder holding the configuration its runs were trained with.
RUN_CONFIG = "run_config.json"
# run_config key -> how the difference is named when --resume meets another configuration.
_CONFIG_NAMES = {
    "data": "--data",
    "files": "the image/mask pairs used (names, order or count)",
    "keras": "the Keras flavour (TF_USE_LEGACY_KERAS)",
}


class CompareInterrupted(Exception):
    """Ctrl-C stopped :func:`run_compare`; every run finished before it is saved.

    Attributes:
        out: The output folder.
        finished: ``(variant, seed)`` of the runs saved there.
        missing: ``(variant, seed)`` of the runs asked for and not finished.
    """

    def __init__(self, out, finished, missing):
        self.out, self.finished, self.missing = out, finished, missing
        saved = ", ".join(f"{v} seed {s}" for v, s in finished) or "none"
        super().__init__(f"interrupted; finished runs saved in {out}/{RUNS}: {saved}")


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
    steps_per_epoch=None,
    predictions="sample",
    encoder_weights=None,
):
    """Raise a ``ValueError`` naming the option (as spelled on the command line) that is wrong.

    Args:
        variants, data, classes, ignore_index, size, val_fraction, images, arch, epochs,
            batch_size, lr, seeds, steps_per_epoch, predictions, encoder_weights: As for
            :func:`run_compare`.

    Raises:
        ValueError: What the option takes and what it received.
    """
    variants = expand_variants(variants)
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
        (
            steps_per_epoch is None or steps_per_epoch >= 1,
            f"--steps-per-epoch must be >= 1; received {steps_per_epoch}.",
        ),
        (
            predictions in ("sample", "all"),
            f"--predictions must be sample or all; received {predictions!r}.",
        ),
        (
            encoder_weights is None or bool(str(encoder_weights).strip()),
            "--encoder-weights must be none, imagenet or a file path; received an empty value.",
        ),
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
    encoder_weights=None,
    freeze_encoder=False,
    augment=False,
    steps_per_epoch=None,
    skip_bad=False,
    resume=False,
    predictions="sample",
    log=None,
):
    """Train the same model once per variant (and seed), score all alike, and write the report.

    The data stream from disk through ``tf.data`` (decode, resize, batch, prefetch) and every
    metric is accumulated batch by batch, so memory does not grow with the folder. Each
    finished (variant, seed) run is written to ``out/runs/`` at once; with ``resume`` the runs
    already there are not trained again.

    Args:
        out: Output folder: ``report.json``, ``report.md``, pictures, ``predictions.npz``, models,
            ``runs/``. Defaults to ``"sm-pixel-ce-compare"``.
        variants: Variant names from ``VARIANTS``, in report order. Defaults to ``("cce", "bce")``.
        data: Folder with ``images/`` and ``masks/``; None for the generated scenes.
            Defaults to None.
        classes: Number of classes (required with ``data``; 7 for the scenes). Defaults to None.
        ignore_index: Mask value not counted, or None. Defaults to None.
        size: Square input side. Defaults to 64.
        val_fraction: Held-out fraction, drawn over the file names. Defaults to 0.25.
        images: Number of generated scenes without ``data``. Defaults to 160.
        arch, backbone: segmentation_models model. Defaults to ``"Unet"``, ``"resnet18"``.
        epochs, batch_size, lr: Adam schedule. Defaults to 10, 8, 1e-3.
        seed: First seed (split, initial weights, batch order). Defaults to 0.
        seeds: Runs per variant, seeds ``seed`` .. ``seed + seeds - 1``. Defaults to 1.
        encoder_weights: None, ``"imagenet"`` or the path of a backbone weights file.
            Defaults to None.
        freeze_encoder: segmentation_models' ``encoder_freeze``. Defaults to False.
        augment: Random horizontal flip and crop/scale of the training pairs. Defaults to False.
        steps_per_epoch: Batches per epoch, or None for one pass. Defaults to None.
        skip_bad: Skip damaged pairs (listed in the report) instead of stopping.
            Defaults to False.
        resume: Keep the runs already in ``out`` (same configuration required).
            Defaults to False.
        predictions: ``"sample"`` (the first validation images) or ``"all"``: what
            ``predictions.npz`` holds. Defaults to ``"sample"``.
        log: Callable given progress lines. Defaults to None.

    Returns:
        ``(config, results, class_names)``: the run's configuration (as in ``report.json``), one
        aggregated result dict per variant, and the class names.

    Raises:
        ValueError: A bad argument (see :func:`check_compare_arguments`) or backbone, or an
            output folder that holds runs of another configuration (or any, without
            ``resume``).
        DataError: The data folder cannot be used; the message names the file at fault.
        EncoderWeightsError: The encoder weights are missing or do not fit.
        CompareInterrupted: Ctrl-C; the finished runs are saved.

    Example:
        >>> config, results, names = run_compare("results", epochs=1, images=16)
        >>> [r["variant"] for r in results]
        ['cce', 'bce']
    """
    import segmentation_models as sm
    import tensorflow as tf

    start = time.perf_counter()
    log = log or (lambda line: None)
    variants = expand_variants(variants)
    if encoder_weights is not None and str(encoder_weights).lower() in ("none", "imagenet"):
        encoder_weights = None if str(encoder_weights).lower() == "none" else "imagenet"
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
        steps_per_epoch,
        predictions,
        encoder_weights,
    )
    # Retracing warnings are expected: every variant is a new model with its own functions.
    tf.get_logger().setLevel("ERROR")
    if backbone not in sm.get_available_backbone_names():
        raise ValueError(
            "--backbone must be a segmentation_models backbone, e.g. resnet18; "
            f"received {backbone!r}."
        )
    skipped = []
    if data is None:
        classes = NUM_CLASSES if classes is None else classes
        if classes != NUM_CLASSES:
            raise ValueError(
                f"the generated scenes have {NUM_CLASSES} classes; received --classes {classes}."
            )
        # The scenes stay in memory, but flow through the same tf.data pipeline.
        source = ArraySource(*make_scenes(images, size=size, seed=seed))
        class_names = list(CLASS_NAMES)
        description = f"generated scenes (make_scenes({images}, size={size}, seed={seed}))"
    else:
        pairs = pair_files(data)
        log(f"Checking {len(pairs)} image/mask pairs in {data}")
        pairs, skipped = check_pairs(pairs, classes, ignore_index, skip_bad=skip_bad)
        for bad in skipped:
            log(f"  skipped: {bad['reason']}")
        if len(pairs) < 2:
            raise DataError(
                f"{data}: need at least 2 usable image/mask pairs to hold some out; "
                f"found {len(pairs)}."
            )
        source = FolderSource(pairs, size)
        class_names = [f"class {c}" for c in range(classes)]
        description = os.path.abspath(data)

    held_out = split(source, val_fraction, seed)
    weights_name = encoder_weights
    if encoder_weights not in (None, "imagenet"):
        weights_name = os.path.abspath(encoder_weights)
    run_config = {
        "data": description,
        "files": f"{len(source)} pairs, sha256 {fingerprint(source.names)}",
        "classes": classes,
        "ignore_index": ignore_index,
        "size": size,
        "val_fraction": val_fraction,
        "arch": arch,
        "backbone": backbone,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "encoder_weights": weights_name,
        "freeze_encoder": freeze_encoder,
        "augment": augment,
        "steps_per_epoch": steps_per_epoch,
        "predictions": predictions,
        "keras": KERAS_FLAVOR,
    }
    _claim_output_folder(out, run_config, resume)
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
        encoder_weights=encoder_weights,
        freeze_encoder=freeze_encoder,
        augment=augment,
        steps_per_epoch=steps_per_epoch,
        predictions=predictions,
    )
    log(
        f"Comparing {', '.join(variants)}: sm.{arch}({backbone!r}, "
        f"encoder_weights={weights_name!r}) on {description}, "
        f"{len(held_out.train)} train / {len(held_out.val)} val images, "
        f"{epochs} epochs, "
        f"{seeds} seed(s), Keras {KERAS_FLAVOR}"
    )
    try:
        runs = run_comparison(held_out, settings, out, log=log)
    except KeyboardInterrupt:
        done = finished_runs(out)
        wanted = [(v, seed + k) for k in range(seeds) for v in variants]
        raise CompareInterrupted(out, done, [r for r in wanted if r not in done]) from None
    results = report.aggregate(runs)

    sample_images, sample_masks = _first(held_out.val, SAMPLE)
    samples = {}
    for v in variants:
        with np.load(os.path.join(out, RUNS, run_name(v, seed), "sample.npz")) as saved:
            samples[v] = saved["predictions"]
    pictures = [
        ("Validation mIoU per epoch", os.path.join(out, "compare_curves.png")),
        ("Per-class IoU", os.path.join(out, "compare_per_class_iou.png")),
        ("Validation predictions", os.path.join(out, "compare_predictions.png")),
    ]
    plots.learning_curves(pictures[0][1], results)
    plots.per_class_bars(pictures[1][1], results, class_names)
    plots.prediction_grid(
        pictures[2][1],
        sample_images,
        sample_masks,
        samples,
        classes,
        ignore_index,
        class_names=class_names,
    )

    config = {
        "data": description,
        "classes": classes,
        "class_names": class_names,
        "ignore_index": ignore_index,
        "size": size,
        "val_fraction": val_fraction,
        "train_images": len(held_out.train),
        "val_images": len(held_out.val),
        "variants": list(variants),
        "arch": arch,
        "backbone": backbone,
        "encoder_weights": weights_name,
        "freeze_encoder": freeze_encoder,
        "augment": augment,
        "steps_per_epoch": steps_per_epoch,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "seeds": seeds,
        "seed_list": [seed + k for k in range(seeds)],
        "keras": KERAS_FLAVOR,
        "skipped": skipped,
        "predictions": predictions,
        "wall_seconds": time.perf_counter() - start,
    }
    report.write_json(os.path.join(out, "report.json"), config, results)
    report.write_markdown(os.path.join(out, "report.md"), config, results, class_names, pictures)
    _save_predictions(
        os.path.join(out, "predictions.npz"), held_out.val, out, variants, seed, predictions
    )
    return config, results, class_names


def _claim_output_folder(out, run_config, resume):
    """Refuse a folder whose finished runs would be lost or mixed with another configuration;
    then record this run's configuration there."""
    path = os.path.join(out, RUN_CONFIG)
    done = finished_runs(out)
    if done and not resume:
        raise ValueError(
            f"--out {out} already holds {len(done)} finished run(s); pass --resume to keep them "
            "and train only the missing ones, or choose another --out."
        )
    if resume and os.path.isfile(path):
        with open(path) as f:
            before = json.load(f)
        differences = [
            f"{_CONFIG_NAMES.get(key, '--' + key.replace('_', '-'))} "
            f"{before.get(key)!r} there, {value!r} here"
            for key, value in run_config.items()
            if before.get(key) != value
        ]
        if differences:
            raise ValueError(
                f"--resume: {out} was run with another configuration: "
                + "; ".join(differences)
                + ". Resume with the same options, or choose another --out."
            )
    os.makedirs(out, exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(run_config, f, indent=2)
        f.write("\n")
    os.replace(temporary, path)


def _first(source, count):
    """The first ``count`` images and masks of a source, as arrays."""
    images, masks = next(iter(source.dataset().batch(count)))
    return images.numpy(), masks.numpy()


def _save_predictions(path, val, out, variants, seed, mode):
    """``predictions.npz``: validation images, labels and each variant's argmax (first seed), for
    checking the report independently; the first :data:`SAMPLE` images, or all of them
    (``mode="all"``), written batch by batch."""
    count = len(val) if mode == "all" else min(SAMPLE, len(val))

    def batches(index):
        for pair in val.dataset().take(count).batch(64):
            yield pair[index].numpy()

    def predictions(variant):
        folder = os.path.join(out, RUNS, run_name(variant, seed))
        if mode != "all":
            with np.load(os.path.join(folder, "sample.npz")) as saved:
                yield saved["predictions"][:count]
            return
        array = np.load(os.path.join(folder, "val_predictions.npy"), mmap_mode="r")
        for i in range(0, count, 64):
            yield np.array(array[i : i + 64])

    size = val.size
    members = [
        ("val_images", (count, size, size, 3), np.float32, batches(0)),
        ("val_masks", (count, size, size), np.uint8, batches(1)),
    ] + [
        (f"pred_{v.replace('-', '_')}", (count, size, size), np.uint8, predictions(v))
        for v in variants
    ]
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, shape, dtype, chunks in members:
            with archive.open(name + ".npy", "w", force_zip64=True) as f:
                header = {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                    "fortran_order": False,
                    "shape": shape,
                }
                np.lib.format.write_array_header_2_0(f, header)
                for chunk in chunks:
                    f.write(np.ascontiguousarray(chunk, dtype).tobytes())
    os.replace(path + ".tmp", path)
