"""Run the comparison: same data split, same initial weights, same batches for every variant;
each finished (variant, seed) run written to the output folder at once, and skipped when it is
already there."""

import dataclasses
import functools
import json
import os
import time

import numpy as np

from ..flavor import keras
from .training import (
    SAMPLE,
    check_interrupt,
    max_output_difference,
    stop_on_ctrl_c,
    train_variant,
)
from .variants import build_model, count_classes

#: Subfolder of the output folder holding one folder per finished (variant, seed) run.
RUNS = "runs"


@dataclasses.dataclass
class Settings:
    """What every variant is trained with.

    Attributes:
        variants: Variant names, in report order.
        classes: Number of classes C.
        size: Input side in pixels (a multiple of 32).
        ignore_index: Label value not counted, or None.
        arch: segmentation_models architecture name.
        backbone: segmentation_models backbone name.
        epochs, batch_size, lr: Training schedule (Adam).
        seed: First seed; run ``k`` of ``seeds`` uses ``seed + k``.
        seeds: Number of repeated runs.
        encoder_weights: None, ``"imagenet"`` or the path of a backbone weights file.
        freeze_encoder: segmentation_models' ``encoder_freeze``.
        augment: Random flip and crop/scale of the training images.
        steps_per_epoch: Batches per epoch, or None for one pass over the training images.
        predictions: ``"sample"`` (the first :data:`SAMPLE` validation images) or ``"all"``:
            which validation predictions are written.
    """

    variants: tuple
    classes: int
    size: int
    ignore_index: int = None
    arch: str = "Unet"
    backbone: str = "resnet18"
    epochs: int = 12
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    seeds: int = 1
    encoder_weights: str = None
    freeze_encoder: bool = False
    augment: bool = False
    steps_per_epoch: int = None
    predictions: str = "sample"


@dataclasses.dataclass
class Split:
    """Training and validation data sources (``FolderSource`` or ``ArraySource``)."""

    train: object
    val: object


def split_indices(count, val_fraction, seed):
    """Shuffle ``range(count)`` with ``seed`` and hold out ``val_fraction`` (at least one each
    side).

    Args:
        count: Number of items (image/mask pairs, by file name).
        val_fraction: Fraction held out, in (0, 1).
        seed: Seed of the shuffle.

    Returns:
        ``(train, val)`` index arrays.
    """
    if count < 2:
        raise ValueError(
            f"Need at least 2 images to split into training and validation. Received {count}."
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1). Received: val_fraction={val_fraction}")
    order = np.random.default_rng(seed).permutation(count)
    held = min(max(1, int(round(count * val_fraction))), count - 1)
    return order[held:], order[:held]


def split(source, val_fraction, seed):
    """Split a data source over its items (file names for a folder): a :class:`Split`.

    Example:
        >>> held_out = split(FolderSource(pair_files("my_data"), 128), 0.25, seed=0)
    """
    train, val = split_indices(len(source), val_fraction, seed)
    return Split(source.subset(train), source.subset(val))


def run_name(variant, seed):
    """The folder name of one run under ``out/runs``."""
    return f"{variant}-seed{seed}"


def load_run(out_dir, variant, seed):
    """The saved result dict of a finished run, or None."""
    path = os.path.join(out_dir, RUNS, run_name(variant, seed), "result.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def finished_runs(out_dir):
    """``(variant, seed)`` of every finished run in ``out_dir``, sorted."""
    folder = os.path.join(out_dir, RUNS)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name, "result.json")
        if os.path.isfile(path):
            with open(path) as f:
                result = json.load(f)
            found.append((result["variant"], result["seed"]))
    return found


def _write_json(path, value):
    """Write JSON through a temporary file, so that a file present is a file complete."""
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(temporary, path)


class _PredictionWriter:
    """Keeps the argmax of the first :data:`SAMPLE` validation images; with ``path``, also
    streams the argmax of every image into a ``.npy`` file (never held whole)."""

    def __init__(self, count, size, path=None):
        self.sample = None
        self.count, self.size, self.path = count, size, path
        self.file = None

    def __call__(self, start, images, masks, probabilities):
        labels = probabilities.argmax(-1).astype(np.uint8)
        if start < SAMPLE:
            part = labels[: SAMPLE - start]
            self.sample = part if self.sample is None else np.concatenate([self.sample, part])
        if self.path is None:
            return
        if self.file is None:
            self.file = open(self.path + ".tmp", "wb")
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                "fortran_order": False,
                "shape": (self.count, self.size, self.size),
            }
            np.lib.format.write_array_header_2_0(self.file, header)
        self.file.write(np.ascontiguousarray(labels).tobytes())

    def close(self):
        if self.file is not None:
            self.file.close()
            os.replace(self.path + ".tmp", self.path)

    def abort(self):
        if self.file is not None:
            self.file.close()
            os.remove(self.path + ".tmp")


def run_comparison(data, settings, out_dir, log=print):
    """Train every variant ``settings.seeds`` times, save, reload and score each run.

    Each finished run is written at once to ``out_dir/runs/<variant>-seed<seed>/``:
    ``result.json`` (metrics and curve; written last, so its presence means the run is
    complete), ``sample.npz`` (the argmax of the first validation images) and, with
    ``predictions="all"``, ``val_predictions.npy``. Its model is ``out_dir/model_<variant>.keras``
    for the first seed and ``model.keras`` in its run folder for the others; it is loaded back
    with ``keras.models.load_model(path)`` (no ``custom_objects``), and the largest difference
    between the reloaded and the trained model's validation outputs is recorded as
    ``reload_max_abs_diff``. Runs already finished in ``out_dir`` are not trained again.

    Args:
        data: A :class:`Split`.
        settings: :class:`Settings`.
        out_dir: The output folder.
        log: Function printing one line. Defaults to print.

    Returns:
        ``runs``: ``runs[variant]`` is the list of per-seed result dicts, in seed order.

    Raises:
        KeyboardInterrupt: Ctrl-C, at the next batch; the runs finished before are saved.
    """
    with stop_on_ctrl_c():
        return _run_all(data, settings, out_dir, log)


def _run_all(data, settings, out_dir, log):
    os.makedirs(os.path.join(out_dir, RUNS), exist_ok=True)
    runs = {variant: [] for variant in settings.variants}

    @functools.cache
    def class_counts():
        log("  counting the training masks' classes (one pass)")
        counts = np.zeros(settings.classes, np.int64)
        for masks in data.train.masks().batch(64):
            counts += count_classes(masks.numpy(), settings.classes, settings.ignore_index)
        return counts

    for k in range(settings.seeds):
        seed = settings.seed + k
        todo = [v for v in settings.variants if load_run(out_dir, v, seed) is None]
        if todo:
            keras.utils.set_random_seed(seed)
            initial = build_model(
                "cce",
                settings.arch,
                settings.backbone,
                settings.classes,
                settings.size,
                encoder_weights=settings.encoder_weights,
            )
            initial_weights = initial.get_weights()
            del initial
            keras.backend.clear_session()
        for variant in settings.variants:
            done = load_run(out_dir, variant, seed)
            if done is not None:
                log(f"[{variant}] seed {seed}: already in {out_dir}, not trained again")
                runs[variant].append(done)
                continue
            check_interrupt()
            log(
                f"[{variant}] seed {seed}: training {settings.epochs} epochs on "
                f"{len(data.train)} images"
            )
            result = _train_and_save(
                variant, seed, k == 0, data, settings, initial_weights, class_counts, out_dir, log
            )
            runs[variant].append(result)
            log(
                f"[{variant}] mIoU {result['miou']:.3f}  "
                f"pixel accuracy {result['pixel_accuracy']:.3f}"
                f"  keras accuracy {result['keras_accuracy']:.3f}  ({result['seconds']:.0f} s)"
                f"; saved in {os.path.join(out_dir, RUNS, run_name(variant, seed))}"
            )
            keras.backend.clear_session()
    return runs


def _train_and_save(variant, seed, first, data, settings, weights, class_counts, out_dir, log):
    folder = os.path.join(out_dir, RUNS, run_name(variant, seed))
    os.makedirs(folder, exist_ok=True)
    predictions_path = (
        os.path.join(folder, "val_predictions.npy") if settings.predictions == "all" else None
    )
    writer = _PredictionWriter(len(data.val), settings.size, predictions_path)
    try:
        result, model = train_variant(
            variant, data, settings, weights, seed, class_counts, log, sink=writer
        )
    except BaseException:
        writer.abort()
        raise
    writer.close()
    path = (
        os.path.join(out_dir, f"model_{variant}.keras")
        if first
        else os.path.join(folder, "model.keras")
    )
    result.update(_save_and_reload(variant, model, data, settings, path))
    np.savez_compressed(os.path.join(folder, "sample.npz"), predictions=writer.sample)
    # The report ranks classes by training pixels (its "rare classes" column).
    result["train_class_pixels"] = [int(c) for c in class_counts()]
    _write_json(os.path.join(folder, "result.json"), result)
    return result


def _save_and_reload(variant, model, data, settings, path):
    # The file is for prediction and reloading: it keeps the loss with its options, but a
    # stateless SGD instead of Adam, whose two slots per weight would triple its size (and an
    # unbuilt Adam would warn on every load that its slots are missing).
    model.compile(
        optimizer=keras.optimizers.SGD(settings.lr), loss=model.loss, metrics=["accuracy"]
    )
    model.save(path)
    start = time.perf_counter()
    reloaded = keras.models.load_model(path)
    difference = max_output_difference(model, reloaded, variant, data.val, settings.size)
    return {
        "model_path": path,
        "reload_max_abs_diff": difference,
        "reload_seconds": float(time.perf_counter() - start),
    }
