"""Run as a script: top_k (with focal_gamma, class weights, ignore_index) under a MirroredStrategy
over 2 logical CPUs against one device; prints one JSON line.

    python tests/topk_distributed_check.py
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
from reference import pixel_cce, top_k_kept  # noqa: E402

import sm_pixel_ce  # noqa: E402

N, S, C, TOP_K = 4, 6, 4, 0.3
WEIGHTS = [0.2, 1.0, 3.0, 0.5]

rng = np.random.default_rng(0)
logits = rng.normal(0, 2, (N, S, S, C)).astype(np.float32)
logits[:, 0] = 0.0  # a row of tied pixels in every image (loss ln 4 each)
labels = rng.integers(0, C, (N, S, S)).astype(np.int32)
labels[: N // 2][rng.uniform(size=labels[: N // 2].shape) < 0.8] = 255  # replica 0: mostly void
logits[N // 2 :] *= 3.0  # replica 1: harder pixels, so that a global k favours it

loss = sm_pixel_ce.PixelCategoricalCrossentropy(
    from_logits=True, class_weights=WEIGHTS, ignore_index=255, focal_gamma=1.0, top_k=TOP_K
)


def value_and_gradient(y, z):
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = loss(y, z)
    return value, tape.gradient(value, z)


single, single_grad = value_and_gradient(tf.constant(labels), tf.constant(logits))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
dataset = tf.data.Dataset.from_tensor_slices((labels, logits)).batch(N)
y, z = next(iter(strategy.experimental_distribute_dataset(dataset)))


@tf.function
def distributed_step(y, z):
    return strategy.run(value_and_gradient, args=(y, z))


values, grads = distributed_step(y, z)
# Called in a custom loop, the loss is each replica's share in either flavour: the shares add up.
shares = [float(v) for v in strategy.experimental_local_results(values)]
grad = np.concatenate([np.asarray(g) for g in strategy.experimental_local_results(grads)])
half = N // 2
per_replica = np.mean(
    [
        pixel_cce(labels[i : i + half], logits[i : i + half], WEIGHTS, 255, gamma=1.0, top_k=TOP_K)
        for i in (0, half)
    ]
)
plain = pixel_cce(labels, logits, None, 255, reduction="none", gamma=1.0)
print(
    json.dumps(
        {
            "replicas": strategy.num_replicas_in_sync,
            "single": float(single),
            "distributed": float(sum(shares)),
            "numpy": float(pixel_cce(labels, logits, WEIGHTS, 255, gamma=1.0, top_k=TOP_K)),
            "per_replica": float(per_replica),
            "max_gradient": float(np.abs(single_grad).max()),
            "max_gradient_difference": float(np.abs(grad - single_grad.numpy()).max()),
            "kept": int((np.abs(grad).sum(-1) > 0).sum()),
            "expected_kept": int(top_k_kept(plain, labels != 255, TOP_K).sum()),
        }
    )
)
