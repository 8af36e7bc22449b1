"""Run the comparison: same data split, same initial weights, same batches for every variant;
each finished (variant, seed) run written to the output folder at once, and skipped when it is
already there."""

import dataclasses
import functools
import os
import time

import numpy as np

from ..class_weights import count_class_pixels
from ..data import label_dtype
from ..flavor import keras
from .layout import write_json
from .report import score_text
from .training import (
    SAMPLE,
    check_interrupt,
    max_output_difference,
    stop_on_ctrl_c,
    train_variant,
)
from .variants import build_model


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


class _PredictionWriter:
    """Keeps the argmax of the first :data:`SAMPLE` validation images; with ``path``, also
    streams the argmax of every image into a ``.npy`` file (never held whole)."""

    def __init__(self, count, size, path=None):
        self.sample = None
        self.count, self.size, self.path = count, size, path
        self.file = None

    def __call__(self, start, images, masks, probabilities):
        labels = probabilities.argmax(-1).astype(label_dtype(probabilities.shape[-1]))
        if start < SAMPLE:
            part = labels[: SAMPLE - start]
            self.sample = part if self.sample is None else np.concatenate([self.sample, part])
        if self.path is None:
            return
        if self.file is None:
            self.file = open(self.path + ".tmp", "wb")
            header = {
                "descr": np.lib.format.dtype_to_descr(labels.dtype),
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


def run_comparison(data, options, folder, log=print):
    """Train every variant ``options.seeds`` times, save, reload and score each run.

    Each finished run is written at once to its :class:`~sm_pixel_ce.compare.layout.RunFolder`:
    the result (metrics and curve; written last, so its presence means the run is complete),
    the argmax of the first validation images and, with ``predictions="all"``, of all of them.
    Its model is :meth:`~sm_pixel_ce.compare.layout.OutputFolder.model_of` the run; it is loaded
    back with ``keras.models.load_model(path)`` (no ``custom_objects``), and the largest
    difference between the reloaded and the trained model's validation outputs is recorded as
    ``reload_max_abs_diff``. Runs already finished in ``folder`` are not trained again.

    Args:
        data: A :class:`Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        folder: The :class:`~sm_pixel_ce.compare.layout.OutputFolder`.
        log: Function printing one line. Defaults to print.

    Returns:
        ``runs``: ``runs[name]`` (a variant's file-safe name) is the list of per-seed result
        dicts, in seed order.

    Raises:
        KeyboardInterrupt: Ctrl-C, at the next batch; the runs finished before are saved.
    """
    with stop_on_ctrl_c():
        return _run_all(data, options, folder, log)


def _run_all(data, options, folder, log):
    os.makedirs(folder.runs, exist_ok=True)
    variants = options.variant_list
    runs = {variant.name: [] for variant in variants}

    @functools.cache
    def class_counts():
        log("  counting the training masks' classes (one pass)")
        masks = data.train.masks().batch(64)
        return count_class_pixels(masks, options.classes, options.ignore_index)

    for k, seed in enumerate(options.seed_list):
        todo = [v for v in variants if folder.run(v.name, seed).load_result() is None]
        if todo:
            keras.utils.set_random_seed(seed)
            initial = build_model(
                "cce",
                options.arch,
                options.backbone,
                options.classes,
                options.size,
                encoder_weights=options.encoder_weights,
                channels=data.train.channels,
                normalization=data.train.normalization(),
            )
            initial_weights = initial.get_weights()
            del initial
            keras.backend.clear_session()
        for variant in variants:
            name = variant.name
            run = folder.run(name, seed)
            done = run.load_result()
            if done is not None:
                log(f"[{name}] seed {seed}: already in {folder.root}, not trained again")
                runs[name].append(done)
                continue
            check_interrupt()
            log(
                f"[{name}] seed {seed}: training {options.epochs} epochs on "
                f"{len(data.train)} images"
            )
            result = _train_and_save(
                variant, seed, k == 0, data, options, initial_weights, class_counts, folder, log
            )
            runs[name].append(result)
            log(
                f"[{name}] mIoU {score_text(result['miou'])}  "
                f"pixel accuracy {score_text(result['pixel_accuracy'])}"
                f"  keras accuracy {result['keras_accuracy']:.3f}  ({result['seconds']:.0f} s)"
                f"; saved in {run.path}"
            )
            keras.backend.clear_session()
    return runs


def _train_and_save(variant, seed, first, data, options, weights, class_counts, folder, log):
    run = folder.run(variant.name, seed)
    os.makedirs(run.path, exist_ok=True)
    predictions_path = run.val_predictions if options.predictions == "all" else None
    writer = _PredictionWriter(len(data.val), options.size, predictions_path)
    try:
        result, model = train_variant(
            variant, data, options, weights, seed, class_counts, log, sink=writer
        )
    except BaseException:
        writer.abort()
        raise
    writer.close()
    path = folder.model_of(variant.name, seed, first)
    result.update(_save_and_reload(variant, model, data, options, path))
    np.savez_compressed(run.sample, predictions=writer.sample)
    # The report ranks classes by training pixels (its "rare classes" column).
    result["train_class_pixels"] = [int(c) for c in class_counts().pixels]
    write_json(run.result, result)
    return result


def _save_and_reload(variant, model, data, options, path):
    # The file is for prediction and reloading: it keeps the loss with its options, but a
    # stateless SGD instead of Adam, whose two slots per weight would triple its size (and an
    # unbuilt Adam would warn on every load that its slots are missing).
    model.compile(
        optimizer=keras.optimizers.SGD(options.lr), loss=model.loss, metrics=["accuracy"]
    )
    model.save(path)
    start = time.perf_counter()
    reloaded = keras.models.load_model(path)
    difference = max_output_difference(model, reloaded, variant, data.val, options.size)
    return {
        "model_path": path,
        "reload_max_abs_diff": difference,
        "reload_seconds": float(time.perf_counter() - start),
    }
