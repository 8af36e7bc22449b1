"""One (variant, seed) run of ``compare``, or one phase of it: the same initial weights for every
variant of a seed, trained, saved, reloaded and scored, its files written to the output folder
at once."""

import dataclasses
import json
import os
import time
import warnings

import numpy as np

from ..data import CLASS_NAMES, label_dtype
from ..data.contract import DataContract, contract_from_reader
from ..flavor import keras
from ..saving import save_model
from .evaluation import score_text
from .layout import OutputFolder, write_json
from .training import (
    SAMPLE,
    check_interrupt,
    max_output_difference,
    model_for,
    train_variant,
)
from .variants import loss_for, resolve


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


#: Initial weights of one seed for one model configuration (:func:`_configuration`): made once
#: per process for the runs of a seed, which follow one another; another seed or configuration
#: replaces them (a process keeps one seed's, not every seed's: 57 MB each for a ResNet-18
#: U-Net, which would add up in a ``--prune`` process that trains every seed of a variant).
_INITIAL = {"configuration": None, "weights": {}}


def _configuration(data, options):
    """What the initial model's weights depend on besides the seed: the architecture, the
    classes, the size, the encoder's weights, the bands and the input standardisation."""
    normalization = data.train.normalization()
    if normalization is not None:
        normalization = tuple(tuple(float(v) for v in part) for part in normalization)
    return (
        options.arch,
        options.backbone,
        options.classes,
        options.size,
        options.encoder_weights,
        data.train.channels,
        normalization,
    )


def initial_weights(data, options, seed):
    """The weights every variant of ``seed`` starts from: made once per process for the
    model configuration ``data`` and ``options`` give and the seed, so that the runs of a seed
    build them once, and a comparison with other data or options in the same process builds
    its own (one seed's weights of one configuration are kept at a time)."""
    configuration = _configuration(data, options)
    if _INITIAL["configuration"] != configuration:
        _INITIAL.update(configuration=configuration, weights={})
    kept = _INITIAL["weights"]
    if seed not in kept:
        kept.clear()  # before the next seed's are built
        keras.utils.set_random_seed(seed)
        initial = model_for("cce", data, options, encoder_weights=options.encoder_weights)
        kept[seed] = initial.get_weights()
        del initial
        keras.backend.clear_session()
    return kept[seed]


def train_task(
    data, options, root, task, counts, state=None, progress=True, keep=False, save=True, log=print
):
    """Train one :class:`Task` into the output folder ``root`` and return its result: the one
    function every way of running ``compare`` calls (see :mod:`~sm_pixel_ce.compare.scheduling`).

    A whole run (or a phase ending at the last epoch) writes the run's files, ``result.json``
    last. A phase that ends earlier writes them too, with its result in ``phase.json``
    instead, and the checkpoint the next phase continues from (its model is saved only if
    ``--prune`` stops the run there: :func:`save_from_checkpoints`); so does a run's last phase
    with ``save`` False, whose model another process saves. The model is loaded back with
    ``keras.models.load_model(path)`` (no ``custom_objects``), and the largest difference
    between the reloaded and the trained model's validation outputs is recorded as
    ``reload_max_abs_diff``.

    Args:
        data: A :class:`~sm_pixel_ce.compare.splitting.Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        root: The output folder.
        task: A :class:`Task`.
        counts: The training masks' :class:`~sm_pixel_ce.class_weights.ClassPixels`.
        state: The state a phase continues from; None to read the run's checkpoint.
        progress: tqdm's bar within each epoch (off in processes). Defaults to True.
        keep: Train the variant's model kept compiled in this process for its later phases
            and seeds (:func:`~sm_pixel_ce.compare.training.kept_model`). Defaults to False.
        save: Save the model of a run that ends with this phase here; False: leave its
            checkpoint, and its result in ``phase.json``, for :func:`save_from_checkpoints` in
            a fresh process, whose keys join the result before ``result.json`` is written
            (the caller's to do). Defaults to True.
        log: Function printing one line. Defaults to print.

    Returns:
        The run's result dict (without the saved model's keys when ``save`` is False).

    Example:
        >>> result = train_task(held_out, CompareOptions(), "results", Task("cce", 0, True), counts)
    """
    import tensorflow as tf

    # Retracing warnings are expected: every variant is a new model with its own functions.
    tf.get_logger().setLevel("ERROR")
    run = OutputFolder(root).run(task.variant, task.seed)
    if not progress:
        inner = log

        def log(line):
            inner(f"  [seed {task.seed}] {line[2:]}" if line.startswith("  ") else line)

    first, stop = task.epochs or (0, options.epochs)
    if first and state is None:
        state = load_checkpoint(run.checkpoint)
    # A later phase continues from its state: the initial weights are not built for it.
    weights = None if first else initial_weights(data, options, task.seed)
    check_interrupt()
    log(
        f"[{task.variant}] seed {task.seed}: training "
        + (f"epochs {first + 1}-{stop} of {options.epochs}" if task.epochs else f"{stop} epochs")
        + f" on {len(data.train)} images"
    )
    saved = save and stop == options.epochs
    result = _train_and_save(
        task, data, options, weights, counts, root, log, state, progress, keep, saved
    )
    log(
        f"[{task.variant}] mIoU {score_text(result['miou'])}  "
        f"pixel accuracy {score_text(result['pixel_accuracy'])}"
        f"  keras accuracy {result['keras_accuracy']:.3f}  ({result['seconds']:.0f} s)"
        + (f"; saved in {run.path}" if saved else f" at epoch {stop}")
    )
    if not keep:
        keras.backend.clear_session()
    return result


def _train_and_save(task, data, options, weights, counts, root, log, state, progress, keep, save):
    """Train the task's variant, write its run's files, and return its result; with ``save``,
    save its model and finish the run (``result.json``), else write its checkpoint."""
    folder = OutputFolder(root)
    variant = resolve(task.spec or task.variant)
    run = folder.run(variant.name, task.seed)
    os.makedirs(run.path, exist_ok=True)
    predictions_path = run.val_predictions if options.predictions == "all" else None
    writer = _PredictionWriter(len(data.val), options.size, predictions_path)
    try:
        result, model = train_variant(
            variant,
            data,
            options,
            weights,
            task.seed,
            lambda: counts,
            log,
            sink=writer,
            epochs=task.epochs,
            state=state,
            progress=progress,
            keep=keep,
        )
    except BaseException:
        writer.abort()
        raise
    writer.close()
    state = result.pop("state", None)
    np.savez_compressed(run.sample, predictions=writer.sample)
    # The report ranks classes by training pixels (its "rare classes" column).
    result["train_class_pixels"] = [int(c) for c in counts.pixels]
    if not save:
        save_checkpoint(run.checkpoint, state)
        write_json(run.phase, result)
        return result
    if keep:  # saving recompiles: save a copy, the kept model stays compiled for Adam
        model = _model_with(variant, model.get_weights(), data, options, counts)
    path = folder.model_of(variant.name, task.seed, task.first)
    result.update(_save_and_reload(variant, model, data, options, path))
    run.finish(result)
    return result


def save_from_checkpoints(data, options, root, tasks, counts, log=print):
    """Save the models of the runs whose phases ``tasks`` wrote their checkpoints (a run that
    ``--prune`` stopped, or one whose last phase was trained with ``save`` False), one after
    another, each as :func:`train_task` saves a finished run's.

    Args:
        data, options, root, counts: As :func:`train_task` was given them.
        tasks: The :class:`Task` of each run's last phase.
        log: Function printing one line per run (the model's path). Defaults to print.

    Returns:
        Per task, the keys :func:`train_task`'s result has for the saved model
        (``model_path``, ``reload_max_abs_diff``, ``reload_seconds``).

    Example:
        >>> stopped = [Task("bce", 0, True, (0, 1))]
        >>> save_from_checkpoints(held_out, options, "results", stopped, counts)
        [{'model_path': 'results/model_bce.keras', 'reload_max_abs_diff': 0.0, ...}]
    """
    folder = OutputFolder(root)
    saved = []
    for task in tasks:
        variant = resolve(task.spec or task.variant)
        weights = load_checkpoint(folder.run(variant.name, task.seed).checkpoint)["weights"]
        model = _model_with(variant, weights, data, options, counts)
        path = folder.model_of(variant.name, task.seed, task.first)
        saved.append(_save_and_reload(variant, model, data, options, path))
        stopped = "stopped; " if task.epochs[1] < options.epochs else ""
        log(f"[{variant.name}] seed {task.seed}: {stopped}saved in {path}")
    return saved


def _model_with(variant, weights, data, options, counts):
    """A new model of ``variant`` holding ``weights``, compiled with its loss."""
    model = model_for(variant, data, options, freeze_encoder=options.freeze_encoder)
    model.set_weights(weights)
    with warnings.catch_warnings():  # a class absent from the training masks: logged already
        warnings.simplefilter("ignore")
        loss = loss_for(variant, lambda: counts, options.classes, options.ignore_index)
    model.compile(optimizer=keras.optimizers.SGD(options.lr), loss=loss)
    return model


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


def data_contract_of(data, options):
    """The :class:`~sm_pixel_ce.data.contract.DataContract` of the models ``compare`` trains:
    the folder's reading (classes, names, colour table, bands, scaling, EXIF) or the generated
    scenes', whole images resized to ``options.size``, a fixed input size.

    Args:
        data: A :class:`~sm_pixel_ce.compare.splitting.Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.

    Returns:
        A DataContract.

    Example:
        >>> data_contract_of(held_out, CompareOptions()).describe()
        '7 classes (background, disc, ...); masks of class indices; images: default bands of
        float32, divided by 1, EXIF applied; trained at 64x64, whole images resized; fixed
        input size'
    """
    reader = getattr(data.train, "reader", None)
    if reader is not None:
        return contract_from_reader(reader, options.size, fixed_size=True, sizing="resize")
    kind = data.train.kind  # the scenes: model inputs already, float32 in [0, 1]
    return DataContract(
        classes=options.classes,
        class_names=CLASS_NAMES,
        channels=kind.channels,
        dtype=kind.dtype,
        scale=kind.scale,
        size=options.size,
        fixed_size=True,
    )


def _save_and_reload(variant, model, data, options, path):
    # The file is for prediction and reloading: it keeps the loss with its options, but a
    # stateless SGD instead of Adam, whose two slots per weight would triple its size (and an
    # unbuilt Adam would warn on every load that its slots are missing). It carries the data
    # contract, so that evaluate and predict read data as this run did.
    model.compile(optimizer=keras.optimizers.SGD(options.lr), loss=model.loss, metrics=["accuracy"])
    save_model(model, path, data_contract_of(data, options))
    start = time.perf_counter()
    reloaded = keras.models.load_model(path)
    difference = max_output_difference(model, reloaded, variant, data.val, options.size)
    return {
        "model_path": path,
        "reload_max_abs_diff": difference,
        "reload_seconds": float(time.perf_counter() - start),
    }
