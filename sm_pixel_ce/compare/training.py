"""Train one variant from given initial weights, streaming the data from its source, and score
the validation split after every epoch, batch by batch."""

import contextlib
import copy
import math
import signal
import sys
import threading
import time
import warnings

import numpy as np
import tensorflow as tf
import tqdm

from ..flavor import IS_KERAS_3, keras
from . import evaluation
from .evaluation import score_text
from .recipe import compile_line, loss_code, make_optimizer
from .variants import (
    build_model,
    loss_for,
    loss_settings,
    probabilities_of,
    resolve,
    targets_for,
)


def keras_accuracy_metric(y_true, y_pred):
    """The metric that Keras 3 and tf_keras pick for ``metrics=["accuracy"]`` from these shapes.

    Both choose by shape alone: one output channel -> binary accuracy; labels of lower rank than
    the predictions (integer masks) -> sparse categorical accuracy; else categorical accuracy.
    """
    if y_pred.shape[-1] == 1:
        return keras.metrics.BinaryAccuracy()
    if np.ndim(y_true) < np.ndim(y_pred) or np.shape(y_true)[-1] == 1:
        return keras.metrics.SparseCategoricalAccuracy()
    return keras.metrics.CategoricalAccuracy()


#: Pixels per eager validation forward pass: 32 images of 64 x 64. An eager pass keeps every
#: layer's output of the whole batch; 32 images of 256 x 256 took 7 GB on a mobilenetv2 U-Net.
EVAL_PIXELS = 32 * 64 * 64


def eval_batch(size):
    """Validation images per eager forward pass at side ``size`` (32 at 64 px, 8 at 128 px)."""
    return max(1, min(32, EVAL_PIXELS // (size * size)))


#: Validation images whose predictions are kept for the pictures and ``predictions.npz``.
SAMPLE = 16
#: Largest scale change of ``--augment``'s random crop: a square of 60 % to 100 % of the side.
AUGMENT_MIN_SCALE = 0.6


_interrupt = {"requested": False}


@contextlib.contextmanager
def stop_on_ctrl_c():
    """Within this block, Ctrl-C (SIGINT) stops training at the next batch with
    ``KeyboardInterrupt``; a second Ctrl-C stops at once.

    Python's own handler can raise ``KeyboardInterrupt`` anywhere, even inside a garbage
    collector callback, where it is printed and ignored and training goes on; the flag is
    checked instead where raising is safe (after each batch, between runs).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if _interrupt["requested"]:
            raise KeyboardInterrupt
        _interrupt["requested"] = True

    _interrupt["requested"] = False
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _interrupt["requested"] = False


def check_interrupt():
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed inside :func:`stop_on_ctrl_c`."""
    if _interrupt["requested"]:
        raise KeyboardInterrupt


def _counted(masks, ignore_index, variant):
    """Pixels a loss averages over in ``masks``: the weight of one chunk's mean loss."""
    if ignore_index is None or resolve(variant).reshape:
        return int(np.size(masks))
    return int(np.sum(np.asarray(masks) != ignore_index))


def augment(dataset, seed, size):
    """A random horizontal flip and a random square crop (60-100 % of the side) resized back to
    ``size``, the same for an image and its mask (bilinear for the image, nearest neighbour for
    the mask, so no class value is invented). Drawn afresh every pass, from ``seed``.

    Images keep their range (any number of bands: [0, 1], or float data as they are) and masks
    their integer type (uint16 beyond 256 values).

    Args:
        dataset: ``(image, mask)`` elements.
        seed: Seed of the random draws.
        size: Side of the elements.

    Returns:
        The augmented dataset.
    """
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def transform(pair, draw):
        image, mask = pair
        labels = mask.dtype
        # [0, 1] as always, or the range of float data (bilinear never leaves it).
        low = tf.minimum(tf.reduce_min(image), 0.0)
        high = tf.maximum(tf.reduce_max(image), 1.0)
        u = tf.random.stateless_uniform([4], seed=tf.stack([draw, tf.constant(seed, tf.int64)]))
        scale = AUGMENT_MIN_SCALE + u[1] * (1.0 - AUGMENT_MIN_SCALE)
        top, left = u[2] * (1.0 - scale), u[3] * (1.0 - scale)
        box = tf.stack([top, left, top + scale, left + scale])[None]
        image = tf.image.crop_and_resize(image[None], box, [0], (size, size))[0]
        mask = tf.image.crop_and_resize(
            tf.cast(mask, tf.float32)[None, ..., None], box, [0], (size, size), method="nearest"
        )[0, ..., 0]
        flip = u[0] < 0.5
        image = tf.where(flip, image[:, ::-1], image)
        mask = tf.where(flip, mask[:, ::-1], mask)
        return tf.clip_by_value(image, low, high), tf.cast(mask, labels)

    return tf.data.Dataset.zip((dataset, draws)).map(transform, num_parallel_calls=tf.data.AUTOTUNE)


def training_dataset(variant, source, options, seed):
    """Batches of ``source`` for ``variant``: shuffled with ``seed`` afresh every epoch (the
    same order for every variant), optionally augmented, prefetched; repeated when
    ``options.steps_per_epoch`` is set."""
    data = source.dataset(shuffle_seed=seed)
    if options.augment:
        data = augment(data, seed, options.size)
    data = data.batch(options.batch_size)
    if resolve(variant).reshape:
        data = data.map(
            lambda x, y: (x, targets_for(variant, y, options.classes, options.ignore_index))
        )
    if options.steps_per_epoch:
        data = data.repeat()
    return data.prefetch(tf.data.AUTOTUNE)


def evaluate(model, variant, source, loss, options, calibration=True, sink=None):
    """One streamed pass over ``source``: scores, Keras's ``"accuracy"`` and the loss.

    Called eagerly, the outputs keep the logits behind their softmax/sigmoid, so the loss is the
    fused one Keras's own validation would report.

    Args:
        model: The model.
        variant: Its :class:`~sm_pixel_ce.compare.variants.Variant`.
        source: A data source (``FolderSource``/``ArraySource``).
        loss: The variant's loss.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        calibration: Also accumulate ECE and binary accuracy. Defaults to True.
        sink: Called with ``(start, images, masks, probabilities)`` for every batch, or None.

    Returns:
        The :class:`~sm_pixel_ce.compare.evaluation.StreamingScore` result, with
        ``keras_accuracy``, ``val_loss`` and ``image_counts`` (per validation image in the
        source's order, per class ``[tp, fp, fn]``: nested lists of ints ``(n_images, 3, C)``,
        for :func:`~sm_pixel_ce.compare.statistics.paired_difference`).
    """
    scores = evaluation.StreamingScore(
        options.classes, options.ignore_index, calibration, image_counts=True
    )
    metric, losses, weights, start = None, [], [], 0
    for images, masks in source.dataset().batch(eval_batch(options.size)):
        check_interrupt()
        targets = targets_for(variant, masks, options.classes, options.ignore_index)
        outputs = model(images, training=False)
        metric = metric or keras_accuracy_metric(targets, outputs)
        metric.update_state(targets, outputs)
        losses.append(float(loss(targets, outputs)))
        weights.append(_counted(masks, options.ignore_index, variant))
        probabilities = probabilities_of(variant, outputs, options.size)
        scores.update(probabilities, masks.numpy())
        if sink is not None:
            sink(start, images.numpy(), masks.numpy(), probabilities)
        start += len(masks)
    result = scores.result()
    result["keras_accuracy"] = float(metric.result())
    result["val_loss"] = float(np.average(losses, weights=weights)) if sum(weights) else 0.0
    result["image_counts"] = scores.image_counts().tolist()
    return result


class _EpochScores(keras.callbacks.Callback):
    """After each epoch: one streamed pass over the validation images (mIoU, loss, Keras
    accuracy; all metrics after the last epoch, handing each batch to ``sink``). Also times each
    epoch's training, its first batch (which includes tracing) and its validation pass."""

    def __init__(self, variant, source, loss, options, log, sink=None, stop=None, state=None):
        super().__init__()
        self.variant, self.source, self.loss = variant, source, loss
        self.options, self.log, self.sink = options, log, sink
        #: The epoch (1-based) whose pass is the final one: all metrics, handed to ``sink``.
        self.stop = options.epochs if stop is None else stop
        self.curve, self.val_loss, self.keras_accuracy = [], [], []
        #: Per epoch: the pass's per-image ``[tp, fp, fn]`` counts (``None`` where not given).
        self.image_counts = []
        self.final = None
        self.times = {"train": [], "first_batch": [], "validation": []}
        if state is not None:
            for key in ("curve", "val_loss", "keras_accuracy", "image_counts", "times"):
                setattr(self, key, copy.deepcopy(state[key]))

    def state(self):
        """What a later phase of the same run continues from: every epoch's scores so far."""
        keys = ("curve", "val_loss", "keras_accuracy", "image_counts", "times")
        return {key: getattr(self, key) for key in keys}

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        check_interrupt()
        if batch == 0:
            self.times["first_batch"].append(time.perf_counter() - self.began)

    def on_epoch_end(self, epoch, logs=None):
        trained = time.perf_counter()
        self.times["train"].append(trained - self.began)
        logs = logs or {}
        options = self.options
        last = epoch + 1 == self.stop
        result = evaluate(
            self.model,
            self.variant,
            self.source,
            self.loss,
            options,
            calibration=last,
            sink=self.sink if last else None,
        )
        if last:
            self.final = result
        self.times["validation"].append(time.perf_counter() - trained)
        self.keras_accuracy.append(result["keras_accuracy"])
        self.val_loss.append(result["val_loss"])
        self.curve.append(result["miou"])
        self.image_counts.append(result.get("image_counts"))
        self.log(
            f"  {self.variant.name:<13} epoch {epoch + 1:>3}/{options.epochs}  "
            f"loss {logs.get('loss', np.nan):.4f}"
            f"  val_loss {self.val_loss[-1]:.4f}  val keras accuracy {self.keras_accuracy[-1]:.3f}"
            f"  val mIoU {score_text(self.curve[-1])}"
        )


class _Progress(keras.callbacks.Callback):
    """tqdm's bar within an epoch, on stderr (stdout keeps one summary line per epoch).

    On a terminal it is redrawn in place and erased at the epoch's end. Elsewhere (a log file)
    it shows only in an epoch longer than ``interval`` seconds, then every ``interval`` seconds,
    so a short run writes nothing there.
    """

    def __init__(self, variant, epochs, steps, stream=None, interval=60.0):
        super().__init__()
        self.variant, self.epochs, self.steps = variant, epochs, steps
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.bar = epoch, None
        if self.tty:
            self._open(0)

    def _open(self, done):
        self.bar = tqdm.tqdm(
            total=self.steps,
            initial=done,
            desc=f"  {self.variant:<13} epoch {self.epoch + 1:>3}/{self.epochs}",
            file=self.stream,
            leave=False,
            delay=0.0 if self.tty else self.interval,
            mininterval=0.2 if self.tty else self.interval,
            unit="batch",
        )

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is None:
            # Off a terminal the clock starts after the first batch, which traces the model:
            # tracing is not a sign of a long epoch.
            self._open(1)
            return
        loss = (logs or {}).get("loss")
        if loss is not None:
            self.bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
        self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.close()


def _phase_model(
    variant, data, options, initial_weights, seed, class_counts, log, keep, first, state
):
    """``(model, loss, callbacks)`` of a phase that starts after epoch ``first``: a new compiled
    model, or with ``keep`` the variant's kept one (:func:`kept_model`) set to this seed's start;
    from ``state`` (its weights, and a callback restoring its optimizer) when ``first`` > 0."""
    callbacks = []
    if keep:
        model, loss, fresh = kept_model(
            variant, data, options, initial_weights, seed, class_counts, log
        )
        keras.utils.set_random_seed(seed)  # as before a build: the seed's random state
        if not first:  # this seed's start: its initial weights, a fresh optimizer
            model.set_weights(initial_weights)
            callbacks.append(_RestoreOptimizer(fresh))
    else:
        model, loss = _compiled_model(
            variant, data, options, initial_weights, seed, class_counts, log
        )
    if first:
        # Taken out of the state: a process that trains many phases would hold a copy of the
        # weights and the optimizer's slots through training, at its peak.
        model.set_weights(state.pop("weights"))
        callbacks.append(_RestoreOptimizer(state.pop("optimizer")))
    return model, loss, callbacks


def train_variant(
    variant,
    data,
    options,
    initial_weights,
    seed,
    class_counts,
    log=print,
    sink=None,
    epochs=None,
    state=None,
    progress=True,
    keep=False,
):
    """Train ``variant`` and score it on the validation split, streaming both from disk.

    A run can be trained in phases (``--prune``): ``epochs=(start, stop)`` trains epochs
    ``start + 1`` .. ``stop`` from the ``state`` that the phase before returned
    (``result["state"]``: the weights, Adam's variables, every epoch's scores). The data order
    goes on where it stopped (the shuffle is advanced by ``start`` passes without reading a
    file), so phases give the numbers of one run without phases (without
    ``--steps-per-epoch``, whose batches are drawn from one endless pass).

    Args:
        variant: A :class:`~sm_pixel_ce.compare.variants.Variant`, a key of
            :data:`~sm_pixel_ce.compare.variants.VARIANTS` or a loss spec.
        data: A :class:`~sm_pixel_ce.compare.experiment.Split`.
        options: A :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        initial_weights: The weights every variant starts from (``model.get_weights()``);
            None for a phase that continues a run (``start`` > 0), which sets its state's.
        seed: Seed of this run: shuffling order and any randomness in training.
        class_counts: Function returning the training masks' per-class pixel counts (see
            :func:`~sm_pixel_ce.compare.variants.loss_for`).
        log: Function printing one line. Defaults to print.
        sink: Given every validation batch after the last epoch (see :func:`evaluate`).
        epochs: ``(start, stop)``: the epochs of this phase; None for all of them.
            Defaults to None.
        state: ``result["state"]`` of the phase before (``start`` > 0), or None; its
            weights and optimizer values are taken out of it once set.
        progress: Show tqdm's bar within each epoch. Defaults to True.
        keep: Train the variant's model kept compiled in this process (:func:`kept_model`),
            its weights and optimizer state set to this seed's, instead of building and
            compiling (and so tracing) a new one. Defaults to False.

    Returns:
        ``(result, model)``: the metrics dict and the trained model; the scores are those of
        epoch ``stop``, and with ``epochs`` given ``result["state"]`` is what the next phase
        continues from.

    Raises:
        DataError: A file that cannot be read turned up while streaming; it is named.
    """
    variant = resolve(variant)
    first, stop = (0, options.epochs) if epochs is None else epochs
    if first and state is None:
        raise ValueError(f"epochs={epochs} continues a run: it needs its state; received None.")
    model, loss, callbacks = _phase_model(
        variant, data, options, initial_weights, seed, class_counts, log, keep, first, state
    )
    train = training_dataset(variant, data.train, options, seed)
    # Each new iterator draws the next pass's order and augmentation: skip the passes that fit
    # drew for the epochs done.
    for _ in range(first * passes_per_epoch(train, options)):
        iter(train)
    steps = options.steps_per_epoch or math.ceil(len(data.train) / options.batch_size)
    scores = _EpochScores(
        variant, data.val, loss, options, log, sink, stop, state and state["scores"]
    )
    if progress:
        callbacks.append(_Progress(variant.name, options.epochs, steps))
    callbacks.append(scores)
    start = time.perf_counter()
    try:
        history = model.fit(
            train,
            epochs=stop,
            initial_epoch=first,
            steps_per_epoch=options.steps_per_epoch,
            shuffle=False,  # the dataset shuffles, seeded
            callbacks=callbacks,
            verbose=0,
        ).history
    except tf.errors.OpError as error:
        bad = data.train.locate_error(error) or data.val.locate_error(error)
        if bad is None:
            raise
        raise bad from None
    result = _result(variant, seed, loss, options, history, scores, time.perf_counter() - start)
    if epochs is not None:
        result["state"] = {
            "weights": model.get_weights(),
            "optimizer": [np.array(v) for v in model.optimizer.variables],
            "scores": scores.state(),
        }
    return result, model


def model_for(variant, data, options, **settings):
    """The model of ``variant`` as ``options`` describe it, for the bands and the input
    standardisation of the training data ``data.train``.

    Args:
        variant: A :class:`~sm_pixel_ce.compare.variants.Variant` or its name.
        data: A :class:`~sm_pixel_ce.compare.splitting.Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        **settings: More keywords of :func:`~sm_pixel_ce.compare.variants.build_model`.

    Returns:
        The Keras model (not compiled).

    Example:
        >>> model = model_for("cce", held_out, CompareOptions(), encoder_weights=None)
    """
    return build_model(
        variant,
        options.arch,
        options.backbone,
        options.classes,
        options.size,
        channels=data.train.channels,
        normalization=data.train.normalization(),
        **settings,
    )


#: :func:`kept_model`'s models: ``{variant name: (model, loss, fresh optimizer state)}``.
_KEPT = {}


def kept_model(variant, data, options, initial_weights, seed, class_counts, log=print):
    """``(model, loss, fresh)``: the variant's model, compiled once in this process and kept
    (until :func:`forget_models`) for every later phase and seed of it, so that its training
    step is traced once; ``fresh`` is its optimizer's state before any step, which a seed's
    first phase starts from. The arguments are :func:`train_variant`'s; the first call's
    ``initial_weights`` and ``seed`` build it.

    TensorFlow keeps about a model's weights and optimizer state for every model trained with
    ``fit`` until its process ends (see :func:`~sm_pixel_ce.compare.scheduling.in_this_process`):
    one kept model per variant costs that once per variant instead of once per phase of every
    run.

    Example:
        >>> model, loss, fresh = kept_model(resolve("cce"), held_out, options, weights, 0, counts)
    """
    if variant.name not in _KEPT:
        model, loss = _compiled_model(
            variant, data, options, initial_weights, seed, class_counts, log
        )
        model.optimizer.build(model.trainable_variables)
        log(f"  {variant.name}: model compiled once for its phases and seeds in this process")
        _KEPT[variant.name] = model, loss, [np.array(v) for v in model.optimizer.variables]
    return _KEPT[variant.name]


def forget_models():
    """Drop :func:`kept_model`'s models: a new comparison may use other data or options."""
    _KEPT.clear()


def _compiled_model(variant, data, options, initial_weights, seed, class_counts, log):
    """``(model, loss)``: the variant's model from the initial weights (None: a phase that
    sets its state's), compiled with the run's optimizer (``--optimizer``, Adam by default)."""
    keras.utils.set_random_seed(seed)
    model = model_for(variant, data, options, freeze_encoder=options.freeze_encoder)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = loss_for(variant, class_counts, options.classes, options.ignore_index)
    for warning in caught:  # a class absent from the training masks: a line of the run's log
        log(f"  {variant.name}: {warning.message}")
    optimizer = make_optimizer(keras, options.optimizer, options.lr, options.momentum)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model, loss


def _result(variant, seed, loss, options, history, scores, seconds):
    """A run's result dict: its set-up, the scores of its last epoch, its curve and times."""
    final = scores.final
    result = {
        "variant": variant.name,
        "setup": variant.setup,
        "seed": seed,
        "loss": loss_settings(loss),
        "loss_code": loss_code(loss),
        "activation": variant.activation,
        "compile": compile_line(loss, options.lr, options.optimizer, options.momentum),
        **{k: final[k] for k in ("miou", "pixel_accuracy", "per_class_iou")},
        "binary_accuracy": final["binary_accuracy"],
        "ece": final["ece"],
        "keras_accuracy": final["keras_accuracy"],
        "train_loss": float(history["loss"][-1]),
        "val_loss": final["val_loss"],
        "epochs_to_90": evaluation.epochs_to_fraction(scores.curve, 0.9),
        "val_miou_per_epoch": scores.curve,
        "seconds": float(seconds),
        # Per epoch: training (first batch, with tracing, included) and the validation pass.
        "epoch_seconds": scores.times["train"],
        "first_batch_seconds": scores.times["first_batch"],
        "validation_seconds": scores.times["validation"],
    }
    if final.get("image_counts") is not None:
        result["image_counts"] = final["image_counts"]
    return result


def passes_per_epoch(dataset, options):
    """How many iterators over ``dataset`` ``model.fit`` makes per epoch: Keras 3 makes the next
    epoch's at the end of each epoch of known length and a new one at its start anyway (2);
    tf_keras one per epoch and one more at the start of fit, the same in every phase (1).
    (With ``--steps-per-epoch`` one iterator runs through every epoch.)"""
    known = int(tf.data.experimental.cardinality(dataset)) >= 0
    return 2 if IS_KERAS_3 and known and not options.steps_per_epoch else 1


class _RestoreOptimizer(keras.callbacks.Callback):
    """At the start of training, set the optimizer's variables (step count, Adam's moments or
    SGD's momentum) to ``values``."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if len(optimizer.variables) != len(self.values):  # tf_keras builds it at its first step
            optimizer.build(self.model.trainable_variables)
        variables = optimizer.variables
        if len(variables) != len(self.values):
            raise ValueError(
                f"the saved optimizer state has {len(self.values)} variables; this model's "
                f"optimizer has {len(variables)}."
            )
        for variable, value in zip(variables, self.values):
            variable.assign(value)
        self.values = None  # not held through training


def max_output_difference(model, other, variant, source, size):
    """Largest absolute difference between two models' probabilities over ``source``,
    streamed."""
    largest = 0.0
    for images, _ in source.dataset().batch(eval_batch(size)):
        a = probabilities_of(variant, model(images, training=False), size)
        b = probabilities_of(variant, other(images, training=False), size)
        largest = max(largest, float(np.max(np.abs(a - b))))
    return largest
