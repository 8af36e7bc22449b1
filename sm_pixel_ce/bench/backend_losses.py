"""The loss table (:mod:`sm_pixel_ce.bench.cases`) on Keras's JAX and PyTorch backends:
``sm-pixel-ce bench --backend jax`` (loss + gradient under ``jax.jit``) and ``--backend torch``
(eagerly, as Keras's torch trainer runs by default), each against the fused cross-entropy of its
framework (``jax.nn.log_softmax``, ``F.cross_entropy``: the floors) and, on PyTorch, against each
loss's own math written in plain PyTorch (``F.cross_entropy(weight=..., ignore_index=...)``, a
Dice of sums, SMP's Lovász loop, ...) on the same tensors.

The backend is chosen when Keras is imported, so from a TensorFlow process
:func:`run_backend_loss_bench` times the cases in a child process started with ``KERAS_BACKEND``
set (and in this process when it already runs on that backend). On PyTorch every call's CPU time
(``time.process_time``: this process, all its threads) is taken beside its wall time, and the
ratios shown ("x floor", "x plain") are of the CPU medians: on a shared machine wall time counts the
other processes' turns on the cores, CPU time only this one's work. PyTorch runs one intra-op
thread by default (``threads=1``): with its default of one thread per core, on cores that other
processes share, its threads wait for each other and single calls swing tenfold. Peak memory is
the resident set's growth during one call on CPU (``timing.peak_memory``),
``torch.cuda.max_memory_allocated`` on a CUDA device, and not measured on a JAX accelerator (its
allocator keeps no resettable peak).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from math import ceil

import numpy as np

from .cases import (
    FOCAL_ALPHA,
    FOCAL_GAMMA,
    IGNORE_INDEX,
    OHEM_THRESHOLD,
    PLAIN_LIMIT,
    TOP_K,
    TVERSKY,
    add_pipeline_labels,
    baselines,
    focal_alpha,
    loss_targets,
    make_inputs,
    pos_weight,
    run_cases,
    select,
)
from .output import write_json
from .timing import memory_method, peak_memory

#: The backends this module times, and each one's mode name.
BACKEND_MODES = {"jax": "jit", "torch": "eager"}


def jax_baselines():
    """The baseline rows in JAX: name -> (what it times, fn(labels, logits))."""
    import jax
    import jax.numpy as jnp

    def floor_sparse(labels, logits):
        log_p = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_p, labels[..., None], axis=-1))

    def floor_dense(labels, logits):
        return -jnp.mean(jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1))

    def floor_bce(labels, logits):
        # optax.sigmoid_binary_cross_entropy's formula, averaged over pixels and classes.
        return jnp.mean(jax.nn.softplus(logits) - labels * logits)

    return baselines(
        floor_dense,
        floor_sparse,
        floor_bce,
        {
            "floor_dense": "jax.nn.log_softmax, sum over one-hot labels",
            "floor_sparse": "jax.nn.log_softmax + take_along_axis (int32)",
            "floor_bce": "softplus(z) - y z, mean (optax's sigmoid cross-entropy)",
        },
    )


def torch_baselines():
    """The baseline rows in PyTorch: name -> (what it times, fn(labels, logits))."""
    import torch.nn.functional as F

    def floor_sparse(labels, logits):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long())

    def floor_dense(labels, logits):
        classes = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, classes), labels.reshape(-1, classes))

    def floor_bce(labels, logits):
        return F.binary_cross_entropy_with_logits(logits, labels)

    return baselines(
        floor_dense,
        floor_sparse,
        floor_bce,
        {
            "floor_dense": "F.cross_entropy on one-hot (probability) targets",
            "floor_sparse": "F.cross_entropy on int32 labels",
            "floor_bce": "F.binary_cross_entropy_with_logits (one-hot)",
        },
    )


def torch_plain(data):
    """Each case's math in plain PyTorch, on the same channels-last tensors: plain name ->
    fn(labels, logits). Written from PyTorch's own losses, torchvision's ``sigmoid_focal_loss``,
    segmentation_models_pytorch's Dice/Jaccard/Tversky/Lovász/MCC losses, MMSegmentation's
    ``OHEMPixelSampler`` and Kervadec et al.'s ``SurfaceLoss``, to the definitions the losses
    document (examples/losses.md)."""
    import torch
    import torch.nn.functional as F

    classes = data["classes"]
    weights = torch.tensor(data["class_weights"], dtype=torch.float32)
    alphas = torch.tensor(focal_alpha(classes))
    eps = 1e-7

    def flat(labels, logits):
        return labels.reshape(-1).long(), logits.reshape(-1, classes)

    def cce(labels, logits):
        if labels.shape == logits.shape:  # one-hot: F.cross_entropy's probability targets
            return F.cross_entropy(logits.reshape(-1, classes), labels.reshape(-1, classes))
        return F.cross_entropy(*reversed(flat(labels, logits)))

    def cce_weighted(labels, logits):
        y, z = flat(labels, logits)
        return F.cross_entropy(z, y, weight=weights.to(z.device), ignore_index=IGNORE_INDEX)

    def picked_log_p(labels, logits):
        y, z = flat(labels, logits)
        return y, torch.log_softmax(z, -1).gather(1, y[:, None])[:, 0]

    def cce_focal(labels, logits, alpha=None):
        y, log_p = picked_log_p(labels, logits)
        loss = -((1 - log_p.exp()) ** FOCAL_GAMMA) * log_p
        return loss.mean() if alpha is None else (alpha.to(loss.device)[y] * loss).mean()

    def cce_top_k(labels, logits):
        loss = F.cross_entropy(*reversed(flat(labels, logits)), reduction="none")
        return torch.topk(loss, ceil(TOP_K * loss.numel())).values.mean()

    def cce_ohem(labels, logits, min_kept=0):
        # MMSegmentation's OHEMPixelSampler: the label's probability below
        # max(the (min_kept * N)-th smallest, the threshold), then the mean cross-entropy there.
        y, log_p = picked_log_p(labels, logits)
        p = log_p.detach().exp()
        ordered = torch.sort(p).values
        floor = ordered[min(min_kept * len(labels), len(ordered) - 1)]
        kept = p < torch.clamp(floor, min=OHEM_THRESHOLD)
        return -(log_p * kept).sum() / kept.sum()

    def cce_focal_top_k_weighted(labels, logits):
        y, z = flat(labels, logits)
        valid = y != IGNORE_INDEX
        y = torch.where(valid, y, 0)
        log_p = torch.log_softmax(z, -1).gather(1, y[:, None])[:, 0]
        loss = -((1 - log_p.exp()) ** FOCAL_GAMMA) * log_p
        kept = torch.topk(torch.where(valid, loss, -1.0), ceil(TOP_K * int(valid.sum()))).indices
        w = weights.to(z.device)[y[kept]]
        return (w * loss[kept]).sum() / w.sum()

    def bce(labels, logits):
        return F.binary_cross_entropy_with_logits(logits, labels)

    def bce_focal_alpha(labels, logits):
        # torchvision.ops.sigmoid_focal_loss(alpha, gamma), mean.
        p = torch.sigmoid(logits)
        ce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        p_t = p * labels + (1 - p) * (1 - labels)
        alpha_t = FOCAL_ALPHA * labels + (1 - FOCAL_ALPHA) * (1 - labels)
        return (alpha_t * ce * (1 - p_t) ** FOCAL_GAMMA).mean()

    def bce_pos_weight(labels, logits):
        weight = torch.tensor(pos_weight(classes), device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight)

    def sums(labels, logits):
        """SMP's multiclass region sums: softmax, one-hot, sums over the pixels per class."""
        p = torch.softmax(logits, -1).reshape(-1, classes)
        y = F.one_hot(labels.reshape(-1).long(), classes).to(p.dtype)
        return p, y, (p * y).sum(0), p.sum(0), y.sum(0)

    def tversky(labels, logits, alpha=0.5, beta=0.5, gamma=1.0):
        _, _, tp, s_p, s_y = sums(labels, logits)
        score = tp / (tp + alpha * (s_p - tp) + beta * (s_y - tp)).clamp_min(eps)
        return (((1 - score) * (s_y > 0)).mean()) ** gamma

    def lovasz(labels, logits):
        # SMP's _lovasz_softmax_flat(classes="present"): a sort per class present.
        p = torch.softmax(logits, -1).reshape(-1, classes)
        y = labels.reshape(-1).long()
        losses = []
        for c in range(classes):
            fg = (y == c).to(p.dtype)
            if fg.sum() == 0:
                continue
            errors_sorted, perm = torch.sort((fg - p[:, c]).abs(), 0, descending=True)
            fg_sorted = fg[perm]
            gts = fg_sorted.sum()
            jaccard = 1 - (gts - fg_sorted.cumsum(0)) / (gts + (1 - fg_sorted).cumsum(0))
            jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
            losses.append(torch.dot(errors_sorted, jaccard))
        return torch.stack(losses).mean()

    def mcc(labels, logits, mcc_eps=1e-5):
        # SMP's MCCLoss per class, one against the rest, then the mean over the classes.
        p, y, _, _, _ = sums(labels, logits)
        tp = (p * y).sum(0) + mcc_eps
        tn = ((1 - p) * (1 - y)).sum(0) + mcc_eps
        fp = (p * (1 - y)).sum(0) + mcc_eps
        fn = ((1 - p) * y).sum(0) + mcc_eps
        score = (tp * tn - fp * fn) / torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return (1 - score).mean()

    return {
        "cce": cce,
        "cce_weighted": cce_weighted,
        "cce_focal": cce_focal,
        "cce_focal_alpha": lambda y, z: cce_focal(y, z, torch.full((classes,), FOCAL_ALPHA)),
        "cce_focal_alpha_classes": lambda y, z: cce_focal(y, z, alphas),
        "cce_top_k": cce_top_k,
        "cce_ohem": cce_ohem,
        "cce_ohem_min_kept": lambda y, z: cce_ohem(y, z, data["min_kept"]),
        "cce_focal_top_k_weighted": cce_focal_top_k_weighted,
        "bce": bce,
        "bce_focal_alpha": bce_focal_alpha,
        "bce_pos_weight": bce_pos_weight,
        "dice": tversky,
        "jaccard": lambda y, z: tversky(y, z, 1.0, 1.0),
        "tversky": lambda y, z: tversky(y, z, **TVERSKY),
        "cce_dice": lambda y, z: cce(y, z) + tversky(y, z),
        "lovasz": lovasz,
        "mcc": mcc,
        "boundary_maps": lambda maps, z: (torch.softmax(z, -1) * maps).mean(),
    }


def _jax_step(fn, gradient):
    import jax

    step = jax.jit(jax.value_and_grad(fn, argnums=1) if gradient else fn)
    return lambda labels, logits: jax.block_until_ready(step(labels, logits))


def _torch_step(fn, gradient):
    import torch

    def step(labels, logits):
        if not gradient:
            with torch.no_grad():
                out = fn(labels, logits)
        else:
            z = logits.detach().requires_grad_(True)
            loss = fn(labels, z)
            out = (loss, torch.autograd.grad(loss, z)[0])
        if logits.is_cuda:
            torch.cuda.synchronize()
        return out

    return step


def _cpu_clocked(step, log):
    """``step``, appending each call's CPU seconds (``time.process_time``) to ``log``."""

    def clocked(labels, logits):
        start = time.process_time()
        out = step(labels, logits)
        log.append(time.process_time() - start)
        return out

    return clocked


def _cpu_figures(figures, rows, cpu, repeats, warmup):
    """Add each row's median CPU ms and its ratio to its floor's (``cpu_ms``, ``cpu_ratio``) to
    its wall ``figures``, and make its ``plain_ratio`` (the target's) the CPU medians' ratio (the
    wall one kept as ``wall_plain_ratio``).

    ``cpu[name]`` holds the CPU seconds of every call of a row's step, and ``cpu["plain:" +
    form]`` of a plain form's, in order: ``warmup`` untimed rounds, then the ``repeats`` timed
    ones (then the peak-memory and loss calls, not counted). Rows that share a plain form call it
    in turn, in row order, within each round.
    """

    def median_ms(calls):
        return 1e3 * statistics.median(calls)

    def timed(key, each=1, nth=0):
        return cpu[key][warmup * each : (warmup + repeats) * each][nth::each]

    sharing = {}
    for row in rows:
        if "plain_ms" in figures[row.name]:
            sharing.setdefault(row.plain, []).append(row.name)
    for row in rows:
        m = figures[row.name]
        m["cpu_ms"] = median_ms(timed(row.name))
        m["cpu_ratio"] = m["cpu_ms"] / median_ms(timed(row.floor))
        if "plain_ms" in m:
            twins = sharing[row.plain]
            calls = timed("plain:" + row.plain, len(twins), twins.index(row.name))
            m["wall_plain_ratio"] = m["plain_ratio"]
            m["plain_cpu_ms"] = median_ms(calls)
            m["plain_ratio"] = m["cpu_ms"] / m["plain_cpu_ms"]


def _check_threads(threads):
    if not isinstance(threads, int) or threads < 0:
        raise ValueError(
            f"bench --threads: expected PyTorch's intra-op thread count, an integer >= 0 (0: "
            f"PyTorch's default, one per core). Received: {threads!r}. The usual value is 1."
        )


def _rss_peak(call):
    # memory_method makes malloc map every large buffer apart, so that one call's peak shows in
    # the resident set; that slows every allocation, so it is set here, after the timings
    # (run_cases measures the peaks last).
    return peak_memory(call, memory_method(tensorflow=False))


def _torch_cuda_peak(call):
    import torch

    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    call()
    return max(0, torch.cuda.max_memory_allocated() - before)


def _backend_parts(data, threads):
    """``(baselines, make_step, version, devices, plain)`` of this process's backend: its
    floors, how a loss becomes a timed step, its version and devices, and (PyTorch) the plain
    PyTorch form of each case, as steps."""
    import keras

    from ..flavor import BACKEND

    if BACKEND == "jax":
        import jax

        devices = sorted({d.platform for d in jax.devices()})
        return jax_baselines(), _jax_step, jax.__version__, devices, {}
    import torch

    if threads:
        torch.set_num_threads(threads)
    devices = [str(keras.ops.convert_to_tensor(np.zeros(1)).device)]
    plain = {name: _torch_step(fn, True) for name, fn in torch_plain(data).items()}
    return torch_baselines(), _torch_step, torch.__version__, devices, plain


def _peak_reader(devices):
    """``(method, function)`` measuring a call's peak memory: the resident-set growth on a CPU,
    PyTorch's CUDA allocator on a GPU, ``(None, None)`` where there is none (JAX on a GPU)."""
    from ..flavor import BACKEND

    if devices == ["cpu"]:
        return "rss", _rss_peak
    if BACKEND == "torch":
        return "torch_cuda", _torch_cuda_peak
    return None, None


def _machine(version, devices):
    """The backend, its version and the machine, for a result's ``config``."""
    import keras

    from ..flavor import BACKEND

    threads = None
    if BACKEND == "torch":
        import torch

        threads = torch.get_num_threads()
    return {
        "backend": BACKEND,
        BACKEND: version,
        "keras": keras.__version__,
        "cpu_count": os.cpu_count(),
        "devices": devices,
        "threads": threads,
    }


def backend_loss_benchmark(
    batch, size, classes, repeats, warmup, progress=None, names=None, threads=1
):
    """Time the loss table in this process, which must run Keras on JAX or PyTorch.

    Args:
        batch, size, classes: Input shape ``(batch, size, size, classes)``, float32.
        repeats: Timed calls per case (median taken).
        warmup: Untimed calls per case first (at least 1: the first call compiles on JAX).
        progress: Callable taking a line of progress text, or None. Defaults to None.
        names: Only these cases (with the rows they are compared with), or None for all.
            Defaults to None.
        threads: PyTorch's intra-op threads (``torch.set_num_threads``); 0 keeps PyTorch's
            default (one per core). Ignored on JAX. Defaults to 1.

    Returns:
        A dict: ``config`` (shape, repeats, backend, versions, devices), ``modes`` (``["jit"]``
        or ``["eager"]``), ``memory_method``, ``cases`` (per case: name, description, floor and
        under its mode ``ms`` (wall), ``ms_quartiles``, ``ratio`` (of the wall medians),
        ``peak_bytes``, ``loss``; on PyTorch also ``cpu_ms``, ``cpu_ratio`` and, where the case
        has a plain form, ``plain_ms``, ``plain_cpu_ms``, ``plain_ratio`` (of the CPU medians),
        ``wall_plain_ratio``, ``plain_loss``) and
        ``targets`` (JAX: each case's limit on its floor ratio; PyTorch: ``PLAIN_LIMIT`` on the
        plain ratio).

    Raises:
        ValueError: Keras runs on TensorFlow here, ``classes`` is out of range, a name is
            not in the table, or ``threads`` is negative.

    Example:
        >>> # KERAS_BACKEND=torch python -c "..."
        >>> result = backend_loss_benchmark(8, 128, 7, repeats=10, warmup=2)
    """
    import keras

    from ..flavor import BACKEND

    if BACKEND not in BACKEND_MODES:
        raise ValueError(
            f"bench --backend: backend_loss_benchmark needs KERAS_BACKEND=jax or torch; this "
            f"process runs Keras on {BACKEND!r}. Use run_backend_loss_bench, which starts a child."
        )
    _check_threads(threads)
    say = progress or (lambda line: None)
    mode = BACKEND_MODES[BACKEND]
    data = make_inputs(batch, size, classes)
    baselines, make_step, version, devices, plain = _backend_parts(data, threads)
    machine = _machine(version, devices)
    rows = select(names, baselines)
    keys = {row.labels for row in rows}
    add_pipeline_labels(data, keys)
    labels = {key: keras.ops.convert_to_tensor(data[key]) for key in keys}
    logits = keras.ops.convert_to_tensor(data["logits"])
    method, peak = _peak_reader(devices)
    steps = {
        row.name: make_step(
            baselines[row.name][1] if row.make is None else row.make(data), row.gradient
        )
        for row in rows
    }
    cpu = {}
    if BACKEND == "torch":
        steps = {name: _cpu_clocked(step, cpu.setdefault(name, [])) for name, step in steps.items()}
        plain = {
            form: _cpu_clocked(step, cpu.setdefault("plain:" + form, []))
            for form, step in plain.items()
        }
    say(
        f"{BACKEND} loss + gradient ({mode}): {len(rows)} cases, {max(warmup, 1)} warm-up + "
        f"{repeats} timed calls each"
        + (f", {machine['threads']} torch thread(s)" if BACKEND == "torch" else "")
    )
    figures = run_cases(rows, steps, labels, logits, repeats, max(warmup, 1), peak, plain)
    if cpu:
        _cpu_figures(figures, rows, cpu, repeats, max(warmup, 1))
    cases = [
        {
            "name": row.name,
            "description": baselines[row.name][0] if row.make is None else row.description,
            "floor": row.floor,
            mode: figures[row.name],
        }
        for row in rows
    ]
    results = {case["name"]: case for case in cases}
    if all(figures[name]["peak_bytes"] is None for name in figures):
        method = None
    config = {"batch": batch, "size": size, "classes": classes, "dtype": "float32"}
    config.update(repeats=repeats, warmup=max(warmup, 1), clock="cpu" if cpu else "wall")
    return {
        "config": {**config, **machine, "load_average_at_end": list(os.getloadavg())},
        "modes": [mode],
        "memory_method": method,
        "cases": cases,
        "targets": loss_targets(rows, results, [mode], PLAIN_LIMIT if BACKEND == "torch" else None),
    }


def run_backend_loss_bench(
    backend,
    batch,
    size,
    classes,
    repeats,
    warmup,
    cases=None,
    progress=None,
    json_path=None,
    threads=1,
):
    """:func:`backend_loss_benchmark`, in a child process with ``KERAS_BACKEND=backend`` unless
    this one already runs Keras on it.

    Args:
        backend: ``"jax"`` or ``"torch"``.
        batch, size, classes, repeats, warmup, progress: As :func:`backend_loss_benchmark`; the
            child's progress lines go to ``progress``.
        cases: Only these cases (``names`` of :func:`backend_loss_benchmark`), or None for all.
            Defaults to None.
        json_path: Write the returned dict here as JSON. Defaults to None.
        threads: PyTorch's intra-op threads, as :func:`backend_loss_benchmark`. Defaults to 1.

    Returns:
        The dict of :func:`backend_loss_benchmark`.

    Raises:
        ValueError: An unknown backend, ``classes`` or ``threads`` out of range, or the child
            failed (its last line of error).

    Example:
        >>> result = run_backend_loss_bench("torch", 8, 128, 7, repeats=10, warmup=2)
        >>> print(format_loss_bench(result))
    """
    from ..flavor import BACKEND

    if backend not in BACKEND_MODES:
        raise ValueError(
            f"bench --backend: expected one of {sorted(BACKEND_MODES)} for the loss table of "
            f"another backend. Received: {backend!r}"
        )
    make_inputs(1, 1, classes)  # the argument checks, here rather than in the child
    select(cases)
    _check_threads(threads)
    if BACKEND == backend:
        result = backend_loss_benchmark(
            batch, size, classes, repeats, warmup, progress, cases, threads
        )
    else:
        names = ",".join(cases or ())
        shape = [batch, size, classes, repeats, warmup]
        result = _in_child(backend, [names, threads, *shape], progress)
    write_json(result, json_path)
    return result


_CHILD = """
import json, sys
from sm_pixel_ce.bench.backend_losses import backend_loss_benchmark
out, names, threads, *shape = sys.argv[1:]
say = lambda line: print(line, file=sys.stderr, flush=True)
names = names.split(",") if names else None
result = backend_loss_benchmark(*map(int, shape), say, names, int(threads))
with open(out, "w") as file:
    json.dump(result, file)
"""


def _in_child(backend, arguments, progress):
    say = progress or (lambda line: None)
    say(f"starting a child process with KERAS_BACKEND={backend}")
    # The child imports the very sm_pixel_ce this process runs, installed or not.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path}
    env.pop("TF_USE_LEGACY_KERAS", None)  # tf_keras runs on TensorFlow only
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "backend_bench.json")
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, out, *map(str, arguments)],
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
            raise ValueError(f"bench --backend {backend}: the child process failed: {last}")
        with open(out) as file:
            return json.load(file)
