"""Train one variant from given initial weights, scoring the validation split after every epoch."""

import sys
import time

import numpy as np
import tensorflow as tf

from ..flavor import keras
from . import evaluation
from .variants import build_model, loss_for, probabilities_of, targets_for


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


# Validation images per eager forward pass.
_EVAL_BATCH = 32


def _counted(masks, ignore_index, variant):
    """Pixels a loss averages over in ``masks``: the weight of one chunk's mean loss."""
    if ignore_index is None or variant == "reshape":
        return int(np.size(masks))
    return int(np.sum(np.asarray(masks) != ignore_index))


def predict(model, images):
    """Outputs of ``model`` on ``images``, computed eagerly in chunks (no function to trace)."""
    return np.concatenate(
        [
            np.asarray(model(images[i : i + _EVAL_BATCH], training=False))
            for i in range(0, len(images), _EVAL_BATCH)
        ]
    )


class _EpochScores(keras.callbacks.Callback):
    """After each epoch: predict the validation images once; record mIoU, loss, Keras accuracy.

    One eager pass serves all three, instead of Keras's validation pass plus a prediction (each
    traced anew for every variant). Called eagerly, the outputs keep the logits behind their
    softmax/sigmoid, so the loss is the fused one Keras's own validation would report.
    """

    def __init__(self, variant, images, masks, targets, loss, settings, log):
        super().__init__()
        self.variant, self.images, self.masks, self.targets = variant, images, masks, targets
        self.loss, self.settings, self.log = loss, settings, log
        self.curve, self.val_loss, self.keras_accuracy = [], [], []
        self.probabilities = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        settings = self.settings
        metric = None
        losses, weights, chunks = [], [], []
        for start in range(0, len(self.images), _EVAL_BATCH):
            part = slice(start, start + _EVAL_BATCH)
            outputs = self.model(self.images[part], training=False)
            metric = metric or keras_accuracy_metric(self.targets[part], outputs)
            metric.update_state(self.targets[part], outputs)
            losses.append(float(self.loss(self.targets[part], outputs)))
            weights.append(_counted(self.masks[part], settings.ignore_index, self.variant))
            chunks.append(np.asarray(outputs))
        outputs = np.concatenate(chunks)
        self.keras_accuracy.append(float(metric.result()))
        self.val_loss.append(float(np.average(losses, weights=weights)) if sum(weights) else 0.0)
        self.probabilities = probabilities_of(self.variant, outputs, settings.size)
        matrix = evaluation.confusion_matrix(
            self.masks, self.probabilities.argmax(-1), settings.classes, settings.ignore_index
        )
        self.curve.append(evaluation.mean_iou(evaluation.per_class_iou(matrix)))
        self.log(
            f"  {self.variant:<13} epoch {epoch + 1:>3}/{settings.epochs}  "
            f"loss {logs.get('loss', np.nan):.4f}"
            f"  val_loss {self.val_loss[-1]:.4f}  val keras accuracy {self.keras_accuracy[-1]:.3f}"
            f"  val mIoU {self.curve[-1]:.3f}"
        )


def train_variant(variant, data, settings, initial_weights, seed, log=print):
    """Train ``variant`` and score it on the validation split.

    Args:
        variant: A key of :data:`~sm_pixel_ce.compare.variants.VARIANTS`.
        data: A :class:`~sm_pixel_ce.compare.experiment.Split`.
        settings: A :class:`~sm_pixel_ce.compare.experiment.Settings`.
        initial_weights: The weights every variant starts from (``model.get_weights()``).
        seed: Seed of this run: shuffling order and any randomness in training.
        log: Function printing one line. Defaults to print.

    Returns:
        ``(result, model, probabilities)``: the metrics dict, the trained model and the validation
        probabilities ``(N, H, W, C)``.
    """
    num_classes, ignore_index = settings.classes, settings.ignore_index
    keras.utils.set_random_seed(seed)
    model = build_model(variant, settings.arch, settings.backbone, num_classes, settings.size)
    model.set_weights(initial_weights)
    loss = loss_for(variant, data.train_masks, num_classes, ignore_index)
    model.compile(optimizer=keras.optimizers.Adam(settings.lr), loss=loss, metrics=["accuracy"])
    train = tf.data.Dataset.from_tensor_slices(
        (data.train_images, targets_for(variant, data.train_masks, num_classes, ignore_index))
    )
    # The same seed gives every variant the same batches in the same order.
    train = train.shuffle(len(data.train_images), seed=seed, reshuffle_each_iteration=True)
    train = train.batch(settings.batch_size)
    val_targets = targets_for(variant, data.val_masks, num_classes, ignore_index)
    scores = _EpochScores(
        variant, data.val_images, data.val_masks, val_targets, loss, settings, log
    )
    start = time.perf_counter()
    history = model.fit(
        train,
        epochs=settings.epochs,
        shuffle=False,  # the dataset shuffles, seeded
        callbacks=[scores],
        verbose=1 if sys.stdout.isatty() else 0,
    ).history
    seconds = time.perf_counter() - start
    probabilities = scores.probabilities
    result = {
        "variant": variant,
        "seed": seed,
        **evaluation.score(probabilities, data.val_masks, num_classes, ignore_index),
        "keras_accuracy": scores.keras_accuracy[-1],
        "train_loss": float(history["loss"][-1]),
        "val_loss": scores.val_loss[-1],
        "epochs_to_90": evaluation.epochs_to_fraction(scores.curve, 0.9),
        "val_miou_per_epoch": [float(v) for v in scores.curve],
        "seconds": float(seconds),
    }
    return result, model, probabilities
