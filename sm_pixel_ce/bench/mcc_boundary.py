"""Loss + gradient of ``pixel_mcc`` and ``pixel_boundary`` against the sparse floor
(``tf.nn.sparse_softmax_cross_entropy_with_logits``), with the boundary loss's distance maps timed
apart: opt-in cases beside the loss bench's (``bench.losses``), timed the same way (interleaved
medians of ``timing``, graph mode and optionally XLA).

The boundary cases take masks of square blocks of random classes (``block`` px): regions with
boundaries, whose largest distance sets the cost of the maps (``losses.distance_maps``); the
i.i.d. masks of the other cases have no region wider than a few pixels.
"""

import numpy as np
import tensorflow as tf

from ..activations import pixel_softmax
from ..losses import PixelBoundaryLoss, PixelMCCLoss, pixel_boundary_targets
from .losses import floor_sparse, make_inputs
from .timing import loss_and_gradient, time_interleaved_spread

#: (case, floor, largest ratio): issue #31's target for the new losses (the maps apart).
MCC_BOUNDARY_TARGETS = (
    ("mcc_softmax", "floor_sparse", 1.50),
    ("boundary_given_maps", "floor_sparse", 1.50),
)
CASE_DESCRIPTIONS = {
    "floor_sparse": "tf.nn.sparse_softmax_cross_entropy_with_logits (int32)",
    "mcc_softmax": "pixel_mcc on pixel_softmax output, uint8",
    "boundary_given_maps": (
        "pixel_boundary(from_maps=True) on pixel_softmax output, maps from the input pipeline"
    ),
    "boundary_labels": "pixel_boundary on pixel_softmax output, uint8 (maps on the device)",
    "boundary_maps_alone": "pixel_boundary_targets of the batch (the maps alone, no gradient)",
}


def block_mask(batch, size, classes, block, seed=0):
    """``(batch, size, size)`` uint8: ``block``-px squares of random classes."""
    rng = np.random.default_rng(seed)
    cells = -(-size // block)
    grid = rng.integers(0, classes, (batch, cells, cells))
    return np.repeat(np.repeat(grid, block, 1), block, 2)[:, :size, :size].astype(np.uint8)


def mcc_boundary_benchmark(batch, size, classes, repeats, warmup, block=32, xla=False):
    """Time the cases of :data:`CASE_DESCRIPTIONS`.

    Args:
        batch, size, classes: Input shape ``(batch, size, size, classes)``, float32.
        repeats: Timed calls per case (median taken).
        warmup: Untimed calls per case first.
        block: Side of the boundary cases' class blocks. Defaults to 32.
        xla: Also time each case compiled with ``jit_compile=True``. Defaults to False.

    Returns:
        A dict: ``cases`` (per case: name, description, floor, and per mode ``ms``,
        ``ms_quartiles``, ``ratio`` to the floor's median in the same mode) and ``targets``.

    Example:
        >>> result = mcc_boundary_benchmark(8, 256, 7, repeats=10, warmup=2)
    """
    data = make_inputs(batch, size, classes)
    logits = tf.constant(data["logits"])
    mask = tf.constant(data["mask"])
    blocks = tf.constant(block_mask(batch, size, classes, block))
    maps = tf.function(lambda y: pixel_boundary_targets(y, classes))
    given = maps(blocks)
    mcc, boundary = PixelMCCLoss(), PixelBoundaryLoss()
    from_maps = PixelBoundaryLoss(from_maps=True)
    cases = {
        "floor_sparse": (mask, floor_sparse),
        "mcc_softmax": (mask, lambda y, z: mcc(y, pixel_softmax(z))),
        "boundary_given_maps": (given, lambda y, z: from_maps(y, pixel_softmax(z))),
        "boundary_labels": (blocks, lambda y, z: boundary(y, pixel_softmax(z))),
    }
    results = {
        name: {"name": name, "description": CASE_DESCRIPTIONS[name], "floor": "floor_sparse"}
        for name in [*cases, "boundary_maps_alone"]
    }
    modes = ("graph", "xla") if xla else ("graph",)
    for mode in modes:
        calls = {}
        for name, (labels, fn) in cases.items():
            step = loss_and_gradient(
                lambda y, z, fn=fn: fn(tf.cast(y, tf.int32) if y.dtype == tf.uint8 else y, z),
                mode == "xla",
            )
            calls[name] = lambda step=step, y=labels: step(y, logits)[0].numpy()
        alone = tf.function(lambda y: pixel_boundary_targets(y, classes), jit_compile=mode == "xla")
        calls["boundary_maps_alone"] = lambda: alone(blocks).numpy()
        spread = time_interleaved_spread(calls, repeats, warmup)
        for name in results:
            results[name][mode] = {
                "ms": spread[name][1],
                "ms_quartiles": [spread[name][0], spread[name][2]],
                "ratio": spread[name][1] / spread["floor_sparse"][1],
            }
    targets = [
        {
            "name": f"{case} / {floor} ({mode})",
            "ratio": results[case][mode]["ratio"],
            "limit": limit,
            "kind": "max",
            "met": results[case][mode]["ratio"] <= limit,
        }
        for mode in modes
        for case, floor, limit in MCC_BOUNDARY_TARGETS
    ]
    return {"cases": list(results.values()), "targets": targets}
