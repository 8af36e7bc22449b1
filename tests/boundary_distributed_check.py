"""Run as a script: ``pixel_boundary`` (labels, and the mask and maps of
``pixel_boundary_targets(..., with_labels=True)`` in a sum with Dice) and ``pixel_mcc`` under a
MirroredStrategy over 2 logical CPUs against one device, in a custom loop (the replicas' values
summed, their gradients side by side) and in ``fit``; prints one JSON line.

    python tests/boundary_distributed_check.py
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import two_cpus  # noqa: E402

two_cpus.configure()

import sm_pixel_ce  # noqa: E402
from sm_pixel_ce.flavor import keras  # noqa: E402
from sm_pixel_ce.losses import (  # noqa: E402
    PixelBoundaryLoss,
    PixelDiceLoss,
    PixelMCCLoss,
    pixel_boundary_targets,
)

N, S, C, SPLIT = 4, 12, 3, 1

rng = np.random.default_rng(0)
logits = rng.normal(0, 2, (N, S, S, C)).astype(np.float32)
labels = np.repeat(np.repeat(rng.integers(0, C, (N, S // 3, S // 3)), 3, 1), 3, 2)
# Replica 0 gets 1 image, most of it void: the replicas count very different pixels.
labels[:SPLIT][rng.uniform(size=labels[:SPLIT].shape) < 0.7] = 255
targets = np.asarray(pixel_boundary_targets(labels, C, ignore_index=255, with_labels=True))

LOSSES = {
    "boundary": (lambda: PixelBoundaryLoss(ignore_index=255, classes=[1, 2]), labels),
    "dice_boundary_from_maps": (
        lambda: PixelDiceLoss(ignore_index=255) + PixelBoundaryLoss(from_maps=True, alpha=0.5),
        targets,
    ),
    "mcc": (lambda: PixelMCCLoss(ignore_index=255), labels),
}
FIT = ("boundary", "dice_boundary_from_maps")
strategy = two_cpus.strategy()


def per_replica(*arrays):
    """Replica 0 the first ``SPLIT`` images of each array, replica 1 the rest."""
    parts = [tuple(a[:SPLIT] for a in arrays), tuple(a[SPLIT:] for a in arrays)]
    return strategy.experimental_distribute_values_from_function(
        lambda context: tuple(tf.constant(a) for a in parts[context.replica_id_in_sync_group])
    )


def value_and_gradient(loss, y, z):
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = loss(y, sm_pixel_ce.pixel_softmax(z))
    return value, tape.gradient(value, z)


def custom_loop(loss, y):
    """One device's value and gradient, and the replicas' summed values and gradients."""
    single, single_grad = value_and_gradient(loss, tf.constant(y), tf.constant(logits))
    step = tf.function(
        lambda a, b: strategy.run(lambda y, z: value_and_gradient(loss, y, z), (a, b))
    )
    values, grads = step(*per_replica(y, logits))
    grads = np.concatenate([g.numpy() for g in strategy.experimental_local_results(grads)])
    return {
        "single": float(single),
        "custom_loop": float(sum(strategy.experimental_local_results(values))),
        "max_gradient": float(np.abs(single_grad.numpy()).max()),
        "max_gradient_difference": float(np.abs(grads - single_grad.numpy()).max()),
    }


def fit(build_loss, y, use_strategy):
    """Two steps of ``fit`` on the whole batch: the logged losses and the final weights."""
    x = np.random.default_rng(1).normal(size=(N, S, S, 2)).astype(np.float32)
    scope = strategy.scope() if use_strategy else tf.distribute.get_strategy().scope()
    with scope:
        keras.utils.set_random_seed(1)
        inputs = keras.Input((S, S, 2))
        model = keras.Model(inputs, keras.layers.Conv2D(C, 3, padding="same")(inputs))
        model = keras.Sequential([model, keras.layers.Activation("pixel_softmax")])
        model.compile(keras.optimizers.SGD(0.5), loss=build_loss())
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(N).repeat()
    history = model.fit(dataset, epochs=2, steps_per_epoch=1, verbose=0, shuffle=False)
    return history.history["loss"], [np.asarray(w) for w in model.get_weights()]


def main():
    """The report (printed as one JSON line when run as a script)."""
    report = {"replicas": strategy.num_replicas_in_sync, "flavor": sm_pixel_ce.KERAS_FLAVOR}
    for name, (build, y) in LOSSES.items():
        entry = custom_loop(build(), y)
        halves = (slice(None, SPLIT), slice(SPLIT, None))
        half = [float(build()(y[h], sm_pixel_ce.pixel_softmax(logits[h]))) for h in halves]
        entry["per_replica_mean"] = float(np.mean(half))
        if name in FIT:
            (single_loss, single_w), (dist_loss, dist_w) = fit(build, y, False), fit(build, y, True)
            entry["fit_single"], entry["fit_distributed"] = single_loss, dist_loss
            entry["max_relative_weight_difference"] = max(
                float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12))
                for a, b in zip(single_w, dist_w)
            )
        report[name] = entry
    return report


if __name__ == "__main__":
    print(json.dumps(main()))
