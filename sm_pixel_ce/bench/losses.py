"""The loss table (:mod:`sm_pixel_ce.bench.cases`) on TensorFlow: loss + gradient of every row
compiled by ``tf.function``, in graph mode and under XLA, against TensorFlow's fused
cross-entropy kernels (the floors)."""

import tensorflow as tf

from .cases import (
    add_pipeline_labels,
    baselines,
    loss_targets,
    make_inputs,
    run_cases,
    select,
)
from .timing import loss_and_gradient, memory_method, peak_memory


def floor_dense(labels, logits):
    """The dense floor: ``tf.nn.softmax_cross_entropy_with_logits`` on one-hot labels, mean."""
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def floor_sparse(labels, logits):
    """The sparse floor: ``tf.nn.sparse_softmax_cross_entropy_with_logits`` on int32 labels."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )


def floor_bce(labels, logits):
    """The sigmoid floor: ``tf.nn.sigmoid_cross_entropy_with_logits``, mean over every value."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


#: The baseline rows in TensorFlow: name -> (what it times, fn).
BASELINES = baselines(
    floor_dense,
    floor_sparse,
    floor_bce,
    {
        "floor_dense": "tf.nn.softmax_cross_entropy_with_logits (one-hot)",
        "floor_sparse": "tf.nn.sparse_softmax_cross_entropy_with_logits (int32)",
        "floor_bce": "tf.nn.sigmoid_cross_entropy_with_logits (one-hot)",
    },
)


def loss_benchmark(batch, size, classes, repeats, warmup, xla=True, progress=None, names=None):
    """Loss + gradient of every row of the table, with and without XLA.

    Args:
        batch, size, classes: Input shape ``(batch, size, size, classes)``, float32.
        repeats: Timed calls per case (median taken).
        warmup: Untimed calls per case first.
        xla: Also time each case compiled with ``jit_compile=True``. Defaults to True.
        progress: Callable taking a line of progress text, or None. Defaults to None.
        names: Only these cases (with the rows they are compared with), or None for all.
            Defaults to None.

    Returns:
        A dict: ``cases`` (list of per-case dicts: name, description, floor, and per mode
        ``"graph"``/``"xla"``: ``ms``, ``ms_quartiles``, ``ratio`` (to the floor's median in the
        same mode), ``peak_bytes``, ``loss``), ``modes``, ``memory_method`` and ``targets``.

    Raises:
        ValueError: ``classes`` is out of range, or a name is not in the table.

    Example:
        >>> result = loss_benchmark(2, 64, 7, repeats=3, warmup=1, names=["dice_softmax"])
    """
    say = progress or (lambda line: None)
    data = make_inputs(batch, size, classes)
    rows = select(names, BASELINES)
    functions = {
        row.name: BASELINES[row.name][1] if row.make is None else row.make(data) for row in rows
    }
    logits = tf.constant(data["logits"])
    keys = {row.labels for row in rows}
    add_pipeline_labels(data, keys)
    labels = {key: tf.constant(data[key]) for key in keys}
    method = memory_method()
    modes = ("graph", "xla") if xla else ("graph",)
    results = {
        row.name: {
            "name": row.name,
            "description": BASELINES[row.name][0] if row.make is None else row.description,
            "floor": row.floor,
        }
        for row in rows
    }
    for mode in modes:
        say(
            f"loss + gradient ({mode}): tracing {len(rows)} cases, {warmup} warm-up + "
            f"{repeats} timed calls each"
        )
        steps = {row.name: _step(functions[row.name], row.gradient, mode == "xla") for row in rows}
        figures = run_cases(
            rows, steps, labels, logits, repeats, warmup, lambda call: peak_memory(call, method)
        )
        for name, figure in figures.items():
            results[name][mode] = figure
    return {
        "cases": list(results.values()),
        "modes": list(modes),
        "memory_method": method,
        "targets": loss_targets(rows, results, modes),
    }


def _step(fn, gradient, jit_compile):
    # Fetching the loss (or the maps) waits for the whole call; the gradient stays a tensor.
    if gradient:
        step = loss_and_gradient(fn, jit_compile)
        return lambda labels, logits: step(labels, logits)[0].numpy()
    step = tf.function(fn, jit_compile=jit_compile)
    return lambda labels, logits: step(labels, logits).numpy()
