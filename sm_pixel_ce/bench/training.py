"""A segmentation_models U-Net train step with ``pixel_cce`` against Keras's own CCE, and the input
pipeline with uint8 masks against one-hot float32 masks."""

import time

import numpy as np
import tensorflow as tf

from ..flavor import keras
from .timing import time_interleaved

TRAIN_TARGET = 1.02
# float32 one-hot holds 4 bytes per class per pixel, a uint8 mask 1 byte per pixel:
# 28x at 7 classes.
LABEL_BYTES_PER_CLASS_TARGET = 4.0


def _unet(classes, size, activation, loss, labels_are):
    import segmentation_models as sm

    model = sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=classes,
        input_shape=(size, size, 3),
        activation=activation,
    )
    model.compile(keras.optimizers.Adam(1e-4), loss=loss)
    model.labels_are = labels_are
    return model


def train_benchmark(batch, size, classes, repeats, warmup, fit_steps=3, progress=None):
    """U-Net (resnet18) train steps: pixel_softmax + pixel_cce against softmax + Keras CCE.

    Both models start from the same weights and run ``train_on_batch`` on the same batch, steps
    interleaved. A third variant feeds ``pixel_cce`` uint8 masks instead of one-hot labels. Then
    the input pipeline: a ``tf.data`` pipeline of generated scenes with float32 one-hot masks
    against one with uint8 masks, measured alone (batches/s) and feeding ``fit`` (steps/s).

    Args:
        batch, size, classes: Batch size, image side, classes.
        repeats: Timed steps per variant.
        warmup: Untimed steps per variant first (at least 1: tracing).
        fit_steps: Timed ``fit`` steps per pipeline. Defaults to 3.
        progress: Callable taking a line of progress text, or None. Defaults to None.

    Returns:
        A dict with ``steps`` (median ms per variant and ratios), ``pipeline`` and ``targets``.
    """
    from ..data.scenes import make_scenes

    say = progress or (lambda line: None)
    say(f"train step: building 2 U-Nets (resnet18, {size}x{size}, {classes} classes)")
    keras.utils.set_random_seed(0)
    ours = _unet(classes, size, "pixel_softmax", "pixel_cce", "onehot")
    theirs = _unet(classes, size, "softmax", "categorical_crossentropy", "onehot")
    theirs.set_weights(ours.get_weights())

    images, masks = make_scenes(2 * batch, size, seed=0)
    masks = masks % classes
    onehot = np.eye(classes, dtype=np.float32)[masks]
    x = tf.constant(images[:batch])
    y_onehot = tf.constant(onehot[:batch])
    y_mask = tf.constant(masks[:batch])

    def step(model, y):
        return lambda: model.train_on_batch(x, y)

    say(f"train step: {max(warmup, 1)} warm-up + {repeats} timed steps per variant, interleaved")
    medians = time_interleaved(
        {
            "pixel_cce": step(ours, y_onehot),
            "keras_cce": step(theirs, y_onehot),
            "pixel_cce_uint8": step(ours, y_mask),
        },
        repeats,
        max(warmup, 1),
    )
    steps = {
        "ms": medians,
        "ratio": medians["pixel_cce"] / medians["keras_cce"],
        "ratio_uint8": medians["pixel_cce_uint8"] / medians["keras_cce"],
    }

    say(
        "input pipeline: one-hot float32 vs uint8 masks, alone and feeding fit "
        f"({fit_steps} steps each)"
    )
    pipelines = {
        "onehot_float32": tf.data.Dataset.from_tensor_slices((images, onehot)),
        "uint8": tf.data.Dataset.from_tensor_slices((images, masks)),
    }
    pipeline = {
        name: _pipeline_speed(ours, dataset, batch, fit_steps)
        for name, dataset in pipelines.items()
    }
    bytes_ratio = (
        pipeline["onehot_float32"]["label_bytes_per_batch"]
        / pipeline["uint8"]["label_bytes_per_batch"]
    )
    pipeline["label_bytes_ratio"] = bytes_ratio
    targets = [
        {
            "name": "U-Net train step, pixel_cce / Keras CCE",
            "ratio": steps["ratio"],
            "limit": TRAIN_TARGET,
            "kind": "max",
            "met": steps["ratio"] <= TRAIN_TARGET,
        },
        {
            "name": f"label bytes, one-hot float32 / uint8 ({classes} classes)",
            "ratio": bytes_ratio,
            "limit": LABEL_BYTES_PER_CLASS_TARGET * classes,
            "kind": "min",
            "met": bytes_ratio >= LABEL_BYTES_PER_CLASS_TARGET * classes,
        },
    ]
    return {"steps": steps, "pipeline": pipeline, "targets": targets}


def _pipeline_speed(model, dataset, batch, fit_steps):
    """Batches/s of ``dataset`` alone, and ``model.fit`` steps/s fed by it."""
    dataset = dataset.repeat().batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    first = next(iter(dataset))
    label_bytes = int(first[1].numpy().nbytes)
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    count = 50
    for _ in range(count):
        next(iterator)
    alone = count / (time.perf_counter() - start)
    # One untimed step first: it traces the train function.
    model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=fit_steps, epochs=1, verbose=0, shuffle=False)
    fed = fit_steps / (time.perf_counter() - start)
    return {
        "label_bytes_per_batch": label_bytes,
        "image_bytes_per_batch": int(first[0].numpy().nbytes),
        "batches_per_s_alone": alone,
        "fit_steps_per_s": fed,
    }
