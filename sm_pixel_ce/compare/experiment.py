"""Run the comparison: same data split, same initial weights, same batches for every variant;
each finished (variant, seed) run written to the output folder at once, and skipped when it is
already there."""

import dataclasses
import functools
import json
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
from .variants import build_model, resolve


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

    The runs train one after another here, or in ``options.jobs`` processes, or on Ray
    (``options.ray``), see :mod:`~sm_pixel_ce.compare.parallel`; with ``options.prune`` in
    phases, see :mod:`~sm_pixel_ce.compare.prune`. Every way calls :func:`train_task`.

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
    from . import prune

    os.makedirs(folder.runs, exist_ok=True)
    _INITIAL.clear()
    finished, todo = {}, []
    for k, seed in enumerate(options.seed_list):
        for spec, variant in zip(options.variants, options.variant_list):
            done = folder.run(variant.name, seed).load_result()
            if done is not None:
                log(f"[{variant.name}] seed {seed}: already in {folder.root}, not trained again")
                finished[variant.name, seed] = done
            else:
                todo.append(Task(variant.name, seed, k == 0, spec=spec))
    if options.prune:
        finished.update(prune.run_pruned(data, options, folder, todo, finished, log))
    else:
        for task, result in zip(todo, dispatch(data, options, folder, todo, log)):
            finished[task.variant, task.seed] = result
    return {
        v.name: [finished[v.name, seed] for seed in options.seed_list] for v in options.variant_list
    }


@dataclasses.dataclass(frozen=True)
class Task:
    """One (variant, seed) run, or the phase of it that ends after epoch ``epochs[1]``
    (``epochs=(start, stop)``; None: the whole run). ``variant``: its file-safe name;
    ``first``: the first seed, whose model is saved as ``model_<variant>.keras``; ``spec``:
    the variant as ``--variants`` gave it (None: the name)."""

    variant: str
    seed: int
    first: bool
    epochs: tuple = None
    spec: str = None


def dispatch(data, options, folder, tasks, log, states=None):
    """Run :func:`train_task` for every task: here, in processes or on Ray (see
    :mod:`~sm_pixel_ce.compare.parallel`), as the options say.

    Args:
        data: A :class:`Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        folder: The :class:`~sm_pixel_ce.compare.layout.OutputFolder`.
        tasks: :class:`Task` objects.
        log: Function printing one line.
        states: Per task, the state the phase continues from, or None to read it from the
            run's checkpoint (Ray: read here and sent).

    Returns:
        The results, in the order of ``tasks``.
    """
    from . import parallel

    root = folder.root
    if options.ray is not None:
        states = states or [
            load_checkpoint(folder.run(t.variant, t.seed).checkpoint)
            if t.epochs and t.epochs[0]
            else None
            for t in tasks
        ]
        arguments = [(data, options, root, t, s, False) for t, s in zip(tasks, states)]
        return parallel.run_on_ray(
            train_task,
            arguments,
            root,
            options.ray,
            gpus_per_run=options.gpus_per_run,
            threads=options.threads_per_run,
            log=log,
            root_argument=2,
            last=lambda path: os.path.basename(path) == "result.json",
        )
    if options.jobs == 1 and options.threads_per_run is None:
        return [train_task(data, options, root, t, log=log) for t in tasks]
    arguments = [(data, options, root, t, None, False) for t in tasks]
    return parallel.run_in_processes(
        train_task, arguments, options.jobs, threads=options.threads_per_run, log=log
    )


#: Initial weights per seed, made once per process.
_INITIAL = {}


def initial_weights(data, options, seed):
    """The weights every variant of ``seed`` starts from (made once per process)."""
    if seed not in _INITIAL:
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
        _INITIAL[seed] = initial.get_weights()
        del initial
        keras.backend.clear_session()
    return _INITIAL[seed]


def train_task(data, options, root, task, state=None, progress=True, log=print):
    """Train one :class:`Task` into the output folder ``root`` and return its result: the one
    function every way of running ``compare`` calls.

    A whole run (or a phase ending at the last epoch) writes the run's files, ``result.json``
    last. A phase that ends earlier writes them too, with its result in ``phase.json``
    instead, and the checkpoint the next phase continues from.

    Args:
        data: A :class:`Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        root: The output folder.
        task: A :class:`Task`.
        state: The state a phase continues from; None to read the run's checkpoint.
        progress: tqdm's bar within each epoch (off in processes). Defaults to True.
        log: Function printing one line. Defaults to print.

    Returns:
        The run's result dict.
    """
    import tensorflow as tf

    from .layout import OutputFolder

    tf.get_logger().setLevel("ERROR")
    folder = OutputFolder(root)
    variant = resolve(task.spec or task.variant)
    name, seed = variant.name, task.seed
    if not progress:
        inner = log

        def log(line):
            inner(f"  [seed {seed}] {line[2:]}" if line.startswith("  ") else line)

    run = folder.run(name, seed)
    if task.epochs and task.epochs[0] and state is None:
        state = load_checkpoint(run.checkpoint)

    @functools.cache
    def class_counts():
        log("  counting the training masks' classes (one pass)")
        masks = data.train.masks().batch(64)
        return count_class_pixels(masks, options.classes, options.ignore_index)

    weights = initial_weights(data, options, seed)
    check_interrupt()
    first, stop = task.epochs or (0, options.epochs)
    log(
        f"[{name}] seed {seed}: training "
        + (f"epochs {first + 1}-{stop} of {options.epochs}" if task.epochs else f"{stop} epochs")
        + f" on {len(data.train)} images"
    )
    result = _train_and_save(
        variant,
        seed,
        task.first,
        data,
        options,
        weights,
        class_counts,
        folder,
        log,
        epochs=task.epochs,
        state=state,
        progress=progress,
    )
    log(
        f"[{name}] mIoU {score_text(result['miou'])}  "
        f"pixel accuracy {score_text(result['pixel_accuracy'])}"
        f"  keras accuracy {result['keras_accuracy']:.3f}  ({result['seconds']:.0f} s)"
        + (f"; saved in {run.path}" if stop == options.epochs else f" at epoch {stop}")
    )
    keras.backend.clear_session()
    return result


def _train_and_save(
    variant,
    seed,
    first,
    data,
    options,
    weights,
    class_counts,
    folder,
    log,
    epochs=None,
    state=None,
    progress=True,
):
    run = folder.run(variant.name, seed)
    os.makedirs(run.path, exist_ok=True)
    predictions_path = run.val_predictions if options.predictions == "all" else None
    writer = _PredictionWriter(len(data.val), options.size, predictions_path)
    try:
        result, model = train_variant(
            variant,
            data,
            options,
            weights,
            seed,
            class_counts,
            log,
            sink=writer,
            epochs=epochs,
            state=state,
            progress=progress,
        )
    except BaseException:
        writer.abort()
        raise
    writer.close()
    path = folder.model_of(variant.name, seed, first)
    state = result.pop("state", None)
    result.update(_save_and_reload(variant, model, data, options, path))
    np.savez_compressed(run.sample, predictions=writer.sample)
    # The report ranks classes by training pixels (its "rare classes" column).
    result["train_class_pixels"] = [int(c) for c in class_counts().pixels]
    if epochs is not None and epochs[1] < options.epochs:
        save_checkpoint(run.checkpoint, state)
        write_json(run.phase, result)
        return result
    write_json(run.result, result)
    for leftover in (run.checkpoint, run.phase):
        if os.path.exists(leftover):
            os.remove(leftover)
    return result


def save_checkpoint(path, state):
    """Write a phase's state (:func:`~sm_pixel_ce.compare.training.train_variant`'s
    ``result["state"]``) to ``path`` (``.npz``), through a temporary file."""
    arrays = {f"w{i}": w for i, w in enumerate(state["weights"])}
    arrays.update({f"o{i}": v for i, v in enumerate(state["optimizer"])})
    arrays["scores"] = np.array(json.dumps(state["scores"]))
    with open(path + ".tmp", "wb") as f:
        np.savez(f, **arrays)
    os.replace(path + ".tmp", path)


def load_checkpoint(path):
    """The state :func:`save_checkpoint` wrote."""
    with np.load(path) as saved:
        count = lambda prefix: sum(1 for k in saved.files if k.startswith(prefix))  # noqa: E731
        return {
            "weights": [saved[f"w{i}"] for i in range(count("w"))],
            "optimizer": [saved[f"o{i}"] for i in range(count("o"))],
            "scores": json.loads(str(saved["scores"])),
        }


def _save_and_reload(variant, model, data, options, path):
    # The file is for prediction and reloading: it keeps the loss with its options, but a
    # stateless SGD instead of Adam, whose two slots per weight would triple its size (and an
    # unbuilt Adam would warn on every load that its slots are missing).
    model.compile(optimizer=keras.optimizers.SGD(options.lr), loss=model.loss, metrics=["accuracy"])
    model.save(path)
    start = time.perf_counter()
    reloaded = keras.models.load_model(path)
    difference = max_output_difference(model, reloaded, variant, data.val, options.size)
    return {
        "model_path": path,
        "reload_max_abs_diff": difference,
        "reload_seconds": float(time.perf_counter() - start),
    }
