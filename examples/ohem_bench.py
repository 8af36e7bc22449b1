"""OHEM by threshold against the fused sparse floor and top_k: loss + gradient in graph mode
and under XLA, the median of interleaved runs (sm_pixel_ce.bench.timing); the figures of
examples/losses_focal_pos_weight_ohem.md.

    PYTHONPATH=$PWD python examples/ohem_bench.py [N S C]     # default 4 128 21
"""

import sys

import numpy as np
import tensorflow as tf

from sm_pixel_ce import PixelCategoricalCrossentropy
from sm_pixel_ce.bench.timing import loss_and_gradient, time_interleaved_spread

N, S, C = (int(v) for v in sys.argv[1:4]) if len(sys.argv) > 3 else (4, 128, 21)
rng = np.random.default_rng(0)
logits = tf.constant(rng.normal(0, 2, (N, S, S, C)).astype(np.float32))
labels = tf.constant(rng.integers(0, C, (N, S, S)).astype(np.int32))


def floor(y, z):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z))


cases = {
    "floor_sparse": floor,
    "cce_logits": PixelCategoricalCrossentropy(from_logits=True),
    "cce_top_k": PixelCategoricalCrossentropy(from_logits=True, top_k=0.25),
    "cce_ohem_t": PixelCategoricalCrossentropy(from_logits=True, ohem_threshold=0.7),
    "cce_ohem_t_min": PixelCategoricalCrossentropy(
        from_logits=True, ohem_threshold=0.7, min_kept=S * S // 4
    ),
}
for xla in (False, True):
    steps = {name: loss_and_gradient(fn, xla) for name, fn in cases.items()}
    calls = {n: (lambda s=s: [t.numpy() for t in s(labels, logits)]) for n, s in steps.items()}
    result = time_interleaved_spread(calls, repeats=15, warmup=3)
    base = result["floor_sparse"][1]
    print(f"xla={xla} shape=({N},{S},{S},{C})")
    for name, (_, median, _) in result.items():
        print(f"  {name:16s} {median:8.2f} ms  ratio {median / base:.2f}")
