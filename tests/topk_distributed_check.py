"""Run as a script: top_k (with focal_gamma, class weights, ignore_index), and OHEM by threshold
(ohem_threshold, min_kept: the same hook), under a MirroredStrategy over 2 logical CPUs against
one device, NumPy and MMSegmentation's sampler (tests/reference.py); prints one JSON line.

    python tests/topk_distributed_check.py
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

from reference import (  # noqa: E402
    mmseg_ohem_cross_entropy,
    mmseg_ohem_weight,
    pixel_cce,
    top_k_kept,
)

import sm_pixel_ce  # noqa: E402

N, S, C, TOP_K = 4, 6, 4, 0.3
#: Fewer pixels than MIN_KEPT·N lie below THRESHOLD here: the min_kept choice is global.
THRESHOLD, MIN_KEPT = 0.002, 10
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


ohem = sm_pixel_ce.PixelCategoricalCrossentropy(
    from_logits=True,
    class_weights=WEIGHTS,
    ignore_index=255,
    ohem_threshold=THRESHOLD,
    min_kept=MIN_KEPT,
)
strategy = two_cpus.strategy()
dataset = tf.data.Dataset.from_tensor_slices((labels, logits)).batch(N)
y, z = next(iter(strategy.experimental_distribute_dataset(dataset)))


def single_and_distributed(loss):
    """``(value, gradient)`` on one device and ``(sum of the shares, gradient)`` on two."""

    def value_and_gradient(y, z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = loss(y, z)
        return value, tape.gradient(value, z)

    single, single_grad = value_and_gradient(tf.constant(labels), tf.constant(logits))
    values, grads = tf.function(lambda y, z: strategy.run(value_and_gradient, args=(y, z)))(y, z)
    # Called in a custom loop, the loss is each replica's share in either flavour: they add up.
    shares = [float(v) for v in strategy.experimental_local_results(values)]
    grad = np.concatenate([np.asarray(g) for g in strategy.experimental_local_results(grads)])
    return float(single), single_grad.numpy(), sum(shares), grad


def mmseg_mean(y, z):
    """MMSegmentation's OHEM cross-entropy sum over its kept pixels / their class weights."""
    kept = mmseg_ohem_weight(z, y, THRESHOLD, MIN_KEPT) > 0
    total, _ = mmseg_ohem_cross_entropy(z, y, THRESHOLD, MIN_KEPT, WEIGHTS)
    return total / np.asarray(WEIGHTS)[np.where(kept, y, 0)][kept].sum(), kept


def main():
    """The report (printed as one JSON line when run as a script)."""
    single, single_grad, distributed, grad = single_and_distributed(loss)
    ohem_single, ohem_single_grad, ohem_distributed, ohem_grad = single_and_distributed(ohem)
    ohem_expected, ohem_kept = mmseg_mean(labels, logits)
    half = N // 2
    per_replica = np.mean(
        [
            pixel_cce(
                labels[i : i + half], logits[i : i + half], WEIGHTS, 255, gamma=1.0, top_k=TOP_K
            )
            for i in (0, half)
        ]
    )
    plain = pixel_cce(labels, logits, None, 255, reduction="none", gamma=1.0)
    return {
        "replicas": strategy.num_replicas_in_sync,
        "single": single,
        "distributed": distributed,
        "numpy": float(pixel_cce(labels, logits, WEIGHTS, 255, gamma=1.0, top_k=TOP_K)),
        "per_replica": float(per_replica),
        "max_gradient": float(np.abs(single_grad).max()),
        "max_gradient_difference": float(np.abs(grad - single_grad).max()),
        "kept": int((np.abs(grad).sum(-1) > 0).sum()),
        "expected_kept": int(top_k_kept(plain, labels != 255, TOP_K).sum()),
        "ohem": {
            "single": ohem_single,
            "distributed": ohem_distributed,
            "mmseg": float(ohem_expected),
            "per_replica": float(
                np.mean(
                    [mmseg_mean(labels[i : i + half], logits[i : i + half])[0] for i in (0, half)]
                )
            ),
            "max_gradient": float(np.abs(ohem_single_grad).max()),
            "max_gradient_difference": float(np.abs(ohem_grad - ohem_single_grad).max()),
            "kept": int((np.abs(ohem_grad).sum(-1) > 0).sum()),
            "expected_kept": int(ohem_kept.sum()),
            "below_threshold": int((mmseg_ohem_weight(logits, labels, THRESHOLD, 0) > 0).sum()),
            "min_kept_total": MIN_KEPT * N,
        },
    }


if __name__ == "__main__":
    print(json.dumps(main()))
