"""Loss + gradient of ``pixel_cce`` / ``pixel_bce`` on Keras's JAX backend under ``jax.jit``,
against the plain JAX cross-entropy (``jax.nn.log_softmax`` + ``take_along_axis``, what optax
computes): ``sm-pixel-ce bench --backend jax``.

The JAX backend is chosen when Keras is imported, so from a TensorFlow process
:func:`run_jax_loss_bench` times the cases in a child process started with ``KERAS_BACKEND=jax``
(and in this process when it already runs on JAX). Every case is a ``jax.jit`` of
``jax.value_and_grad`` with respect to the logits, the cases interleaved call by call
(``timing.time_interleaved_spread``); a second, separately compiled copy of the floor shows the
machine's noise (its x floor should read 1.00).
"""

import json
import os
import subprocess
import sys
import tempfile

from .losses import make_inputs
from .output import write_json
from .timing import time_interleaved_spread

#: The issue's targets: (case, floor it is compared with, largest ratio).
JAX_LOSS_TARGETS = (
    ("cce_logits", "floor_sparse", 1.10),
    ("cce_softmax", "floor_sparse", 1.10),
)


#: Floor -> the labels it, and every case compared with it, takes.
_FLOOR_LABELS = {"floor_sparse": "mask_int32", "floor_dense": "onehot", "floor_bce": "onehot"}
#: Case -> what it times, as the report prints it; :func:`jax_loss_cases` gives their functions.
JAX_CASE_DESCRIPTIONS = {
    "floor_sparse": "jax.nn.log_softmax + take_along_axis (int32)",
    "floor_sparse_again": "the same floor, compiled again (noise gauge)",
    "hand_lse": "logsumexp - z_y picked by a compare, by hand (int32; no gather, no scatter)",
    "floor_dense": "jax.nn.log_softmax, sum over one-hot labels",
    "cce_logits": "pixel_cce(from_logits=True) (int32)",
    "cce_logits_onehot": "pixel_cce(from_logits=True) (one-hot)",
    "cce_softmax": "pixel_cce on pixel_softmax output (int32)",
    "cce_softmax_onehot": "pixel_cce on pixel_softmax output (one-hot)",
    "floor_bce": "softplus(z) - y z, mean (optax's sigmoid cross-entropy, one-hot)",
    "bce_logits": "pixel_bce(from_logits=True) (one-hot)",
    "keras_softmax_cce": "Keras softmax + categorical_crossentropy (one-hot; clipped at 1e-7)",
}


def jax_loss_cases():
    """The cases: name -> (description, floor, label key, ``fn(labels, logits) -> scalar``).

    Must run under ``KERAS_BACKEND=jax``. Each ``fn`` starts from the logits, so that the softmax
    cases include their activation (the gradient is taken through it). The cases are timed and
    printed in this order.

    Returns:
        A dict keyed like :data:`JAX_CASE_DESCRIPTIONS`.

    Example:
        >>> # KERAS_BACKEND=jax python -c "..."
        >>> description, floor, key, fn = jax_loss_cases()["cce_softmax"]
    """
    import jax
    import jax.numpy as jnp
    import keras

    from ..activations import pixel_softmax
    from ..losses import PixelBinaryCrossentropy, PixelCategoricalCrossentropy

    cce = PixelCategoricalCrossentropy()
    cce_logits = PixelCategoricalCrossentropy(from_logits=True)
    bce_logits = PixelBinaryCrossentropy(from_logits=True)

    def floor_sparse(labels, logits):
        log_p = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_p, labels[..., None], axis=-1))

    def picked_lse(labels, logits):
        picked = labels[..., None] == jnp.arange(logits.shape[-1])
        z_y = jnp.sum(jnp.where(picked, logits, 0.0), axis=-1)
        return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - z_y)

    def floor_dense(labels, logits):
        return -jnp.mean(jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1))

    def floor_bce(labels, logits):
        # optax.sigmoid_binary_cross_entropy's formula, averaged over pixels and classes.
        return jnp.mean(jax.nn.softplus(logits) - labels * logits)

    def on_softmax(labels, logits):
        return cce(labels, pixel_softmax(logits))

    def keras_softmax_cce(labels, logits):
        probabilities = keras.activations.softmax(logits)
        return jnp.mean(keras.losses.categorical_crossentropy(labels, probabilities))

    # name: (floor, fn); every case takes the labels its floor takes.
    cases = {
        "floor_sparse": ("floor_sparse", floor_sparse),
        # A second function object, so that jax.jit compiles the floor a second time.
        "floor_sparse_again": ("floor_sparse", lambda y, z: floor_sparse(y, z)),
        "hand_lse": ("floor_sparse", picked_lse),
        "floor_dense": ("floor_dense", floor_dense),
        "cce_logits": ("floor_sparse", cce_logits),
        "cce_logits_onehot": ("floor_dense", cce_logits),
        "cce_softmax": ("floor_sparse", on_softmax),
        "cce_softmax_onehot": ("floor_dense", on_softmax),
        "floor_bce": ("floor_bce", floor_bce),
        "bce_logits": ("floor_bce", bce_logits),
        "keras_softmax_cce": ("floor_dense", keras_softmax_cce),
    }
    return {
        name: (JAX_CASE_DESCRIPTIONS[name], floor, _FLOOR_LABELS[floor], fn)
        for name, (floor, fn) in cases.items()
    }


def jax_loss_benchmark(batch, size, classes, repeats, warmup, progress=None):
    """Time every case of :func:`jax_loss_cases` in this process, which must run Keras on JAX.

    Args:
        batch, size, classes: Input shape ``(batch, size, size, classes)``, float32.
        repeats: Timed calls per case (median taken).
        warmup: Untimed calls per case first (the first one compiles).
        progress: Callable taking a line of progress text, or None. Defaults to None.

    Returns:
        A dict: ``config`` (shape, repeats, versions, devices), ``cases`` (list of dicts: name,
        description, floor, ``ms``, ``ms_quartiles``, ``ratio`` to the floor's median, ``loss``)
        and ``targets`` (list of dicts: name, ratio, limit, met).

    Raises:
        ValueError: Keras does not run on JAX here, or ``classes`` is out of range.

    Example:
        >>> # KERAS_BACKEND=jax python -c "..."
        >>> result = jax_loss_benchmark(8, 256, 7, repeats=20, warmup=3)
        >>> result["targets"][0]["ratio"]
    """
    import jax
    import keras

    from ..flavor import BACKEND

    if BACKEND != "jax":
        raise ValueError(
            "bench --backend jax: jax_loss_benchmark needs KERAS_BACKEND=jax; this process runs "
            f"Keras on {BACKEND!r}. Use run_jax_loss_bench, which starts a child."
        )
    say = progress or (lambda line: None)
    data = make_inputs(batch, size, classes)
    logits = jax.numpy.asarray(data["logits"])
    labels = {key: jax.numpy.asarray(data[key]) for key in ("mask_int32", "onehot")}
    cases = jax_loss_cases()
    say(f"jax.jit loss + gradient: {len(cases)} cases, {warmup} warm-up + {repeats} timed calls")
    steps = {
        name: jax.jit(jax.value_and_grad(fn, argnums=1)) for name, (_, _, _, fn) in cases.items()
    }
    calls = {
        name: (lambda step=step, y=labels[key]: jax.block_until_ready(step(y, logits)))
        for (name, step), (_, _, key, _) in zip(steps.items(), cases.values())
    }
    spread = time_interleaved_spread(calls, repeats, max(warmup, 1))
    results = {}
    for name, (description, floor, _, _) in cases.items():
        results[name] = {
            "name": name,
            "description": description,
            "floor": floor,
            "ms": spread[name][1],
            "ms_quartiles": [spread[name][0], spread[name][2]],
            "ratio": spread[name][1] / spread[floor][1],
            "loss": float(calls[name]()[0]),
        }
    targets = [
        {
            "name": f"{case} / {floor}",
            "ratio": results[case]["ratio"],
            "limit": limit,
            "met": results[case]["ratio"] <= limit,
        }
        for case, floor, limit in JAX_LOSS_TARGETS
    ]
    config = {
        "batch": batch,
        "size": size,
        "classes": classes,
        "repeats": repeats,
        "warmup": max(warmup, 1),
        "jax": jax.__version__,
        "keras": keras.__version__,
        "cpu_count": os.cpu_count(),
        "devices": sorted({d.platform for d in jax.devices()}),
    }
    return {"config": config, "cases": list(results.values()), "targets": targets}


def run_jax_loss_bench(batch, size, classes, repeats, warmup, progress=None, json_path=None):
    """:func:`jax_loss_benchmark`, in a child process with ``KERAS_BACKEND=jax`` unless this one
    already runs Keras on JAX.

    Args:
        batch, size, classes, repeats, warmup, progress: As :func:`jax_loss_benchmark`; the
            child's progress lines go to this process's stderr.
        json_path: Write the returned dict here as JSON. Defaults to None.

    Returns:
        The dict of :func:`jax_loss_benchmark`.

    Raises:
        ValueError: ``classes`` is out of range, or the child failed (its last line of error).

    Example:
        >>> result = run_jax_loss_bench(8, 256, 7, repeats=20, warmup=3)
        >>> print(format_jax_bench(result))
    """
    from ..flavor import BACKEND

    make_inputs(1, 1, classes)  # the argument checks, here rather than in the child
    if BACKEND == "jax":
        result = jax_loss_benchmark(batch, size, classes, repeats, warmup, progress)
    else:
        result = _in_child(batch, size, classes, repeats, warmup, progress)
    write_json(result, json_path)
    return result


_CHILD = """
import json, sys
from sm_pixel_ce.bench.jax_losses import jax_loss_benchmark
out, *shape = sys.argv[1:]
say = lambda line: print(line, file=sys.stderr, flush=True)
with open(out, "w") as file:
    json.dump(jax_loss_benchmark(*map(int, shape), progress=say), file)
"""


def _in_child(batch, size, classes, repeats, warmup, progress):
    say = progress or (lambda line: None)
    say("starting a child process with KERAS_BACKEND=jax")
    # The child imports the very sm_pixel_ce this process runs, installed or not.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path}
    env.pop("TF_USE_LEGACY_KERAS", None)  # tf_keras runs on TensorFlow only
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "jax_bench.json")
        arguments = [out, batch, size, classes, repeats, warmup]
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, *map(str, arguments)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in child.stderr.splitlines():
            if not line.startswith(("Segmentation Models", "WARNING", "I0000", "W0000")):
                say(line)
        if child.returncode != 0 or not os.path.exists(out):
            lines = [line for line in child.stderr.splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit status {child.returncode}"
            raise ValueError(f"bench --backend jax: the JAX child process failed: {last}")
        with open(out) as file:
            return json.load(file)


def format_jax_bench(result):
    """The Markdown table of one :func:`run_jax_loss_bench` result."""
    config = result["config"]
    cases = {case["name"]: case for case in result["cases"]}
    lines = [
        f"## Loss + gradient under jax.jit (Keras JAX backend), {config['batch']}x{config['size']}"
        f"x{config['size']}x{config['classes']} float32",
        "",
        f"JAX {config['jax']}, Keras {config['keras']}, {config['cpu_count']} CPU cores "
        f"({', '.join(config['devices'])}); median of {config['repeats']} calls after "
        f"{config['warmup']} warm-up, cases interleaved; x floor = median / the floor's median; "
        "spread = 25th-75th percentile.",
        "",
        "| case | floor | ms | spread ms | x floor | loss |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for case in result["cases"]:
        floor = "-" if case["floor"] == case["name"] else case["floor"].replace("floor_", "")
        low, high = case["ms_quartiles"]
        lines.append(
            f"| {case['description']} | {floor} | {case['ms']:.2f} | {low:.2f}-{high:.2f} | "
            f"{case['ratio']:.2f} | {case['loss']:.4f} |"
        )
    gauge = cases.get("floor_sparse_again")
    if gauge:
        lines.append(
            f"\nnoise gauge: the floor compiled again reads {gauge['ratio']:.2f} x floor "
            "(far from 1.00 means a busy machine: rerun)."
        )
    lines.append("")
    for target in result["targets"]:
        verdict = "met" if target["met"] else "MISSED"
        lines.append(
            f"- target {target['name']} <= {target['limit']:.2f}: {target['ratio']:.2f} ({verdict})"
        )
    return "\n".join(lines)
