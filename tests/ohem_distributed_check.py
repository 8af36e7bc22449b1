"""Run as a script: OHEM by threshold (ohem_threshold, min_kept, class weights, ignore_index)
under a MirroredStrategy over 2 logical CPUs against one device and MMSegmentation's sampler
(tests/reference.py); prints one JSON line.

    python tests/ohem_distributed_check.py
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, os.path.dirname(__file__))
from reference import mmseg_ohem_cross_entropy, mmseg_ohem_weight  # noqa: E402

import sm_pixel_ce  # noqa: E402

N, S, C, THRESHOLD, MIN_KEPT = 4, 6, 4, 0.002, 10
WEIGHTS = [0.2, 1.0, 3.0, 0.5]

rng = np.random.default_rng(0)
logits = rng.normal(0, 2, (N, S, S, C)).astype(np.float32)
labels = rng.integers(0, C, (N, S, S)).astype(np.int32)
labels[: N // 2][rng.uniform(size=labels[: N // 2].shape) < 0.8] = 255  # replica 0: mostly void
logits[N // 2 :] *= 3.0  # replica 1: less probable labels, so that a global choice favours it

loss = sm_pixel_ce.PixelCategoricalCrossentropy(
    from_logits=True,
    class_weights=WEIGHTS,
    ignore_index=255,
    ohem_threshold=THRESHOLD,
    min_kept=MIN_KEPT,
)


def value_and_gradient(y, z):
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = loss(y, z)
    return value, tape.gradient(value, z)


def mmseg_mean(y, z):
    kept = mmseg_ohem_weight(z, y, THRESHOLD, MIN_KEPT) > 0
    total, _ = mmseg_ohem_cross_entropy(z, y, THRESHOLD, MIN_KEPT, WEIGHTS)
    return total / np.asarray(WEIGHTS)[np.where(kept, y, 0)][kept].sum(), kept


single, single_grad = value_and_gradient(tf.constant(labels), tf.constant(logits))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
dataset = tf.data.Dataset.from_tensor_slices((labels, logits)).batch(N)
y, z = next(iter(strategy.experimental_distribute_dataset(dataset)))


@tf.function
def distributed_step(y, z):
    return strategy.run(value_and_gradient, args=(y, z))


values, grads = distributed_step(y, z)
shares = [float(v) for v in strategy.experimental_local_results(values)]
grad = np.concatenate([np.asarray(g) for g in strategy.experimental_local_results(grads)])
half = N // 2
expected, kept = mmseg_mean(labels, logits)
per_replica = np.mean(
    [mmseg_mean(labels[i : i + half], logits[i : i + half])[0] for i in (0, half)]
)
print(
    json.dumps(
        {
            "replicas": strategy.num_replicas_in_sync,
            "single": float(single),
            "distributed": float(sum(shares)),
            "mmseg": float(expected),
            "per_replica": float(per_replica),
            "max_gradient": float(np.abs(single_grad).max()),
            "max_gradient_difference": float(np.abs(grad - single_grad.numpy()).max()),
            "kept": int((np.abs(grad).sum(-1) > 0).sum()),
            "expected_kept": int(kept.sum()),
            "below_threshold": int((mmseg_ohem_weight(logits, labels, THRESHOLD, 0) > 0).sum()),
        }
    )
)
