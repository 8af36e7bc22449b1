"""Loss + gradient of ``pixel_cce``, ``pixel_bce`` and the Dice loss on Keras's PyTorch backend,
against the same math written in plain PyTorch: the table in examples/torch_backend.md.

Each case computes the loss of ``(N, H, W, C)`` float32 logits and an integer mask and its
gradient w.r.t. the logits (``loss.backward()``), eagerly, as Keras's torch trainer does by default
(``jit_compile="auto"`` is eager on torch). The cases run interleaved call by call (one call of
each, ``--repeats`` times, after ``--warmup`` rounds), so that the machine's load falls on all of
them alike. The table gives each one's median wall time and median CPU time (this process's, all
its threads: on a shared machine the steadier of the two) and their ratios to its plain PyTorch
counterpart's.

    python examples/torch_timing.py                  # KERAS_BACKEND=torch is set if unset
    python examples/torch_timing.py --size 64 --repeats 3
"""

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import sm_pixel_ce  # noqa: E402
from sm_pixel_ce.flavor import BACKEND  # noqa: E402

EPS = 1e-7


def plain_cce(logits, labels):
    """``F.cross_entropy`` on the ``(P, C)`` logits: the mean over pixels."""
    c = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, c), labels.reshape(-1))


def plain_bce(logits, labels):
    """``F.binary_cross_entropy_with_logits`` against the one-hot mask: the mean over pixels and
    channels."""
    one_hot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, one_hot)


def plain_dice(logits, labels):
    """``1 - 2·Σ p·y / (Σ p + Σ y)`` per class from the batch's sums (SMP's multiclass Dice), 0
    for a class absent from the labels, the mean over the classes."""
    p = torch.softmax(logits, dim=-1)
    y = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    dims = tuple(range(logits.ndim - 1))
    tp, s_p, s_y = (p * y).sum(dims), p.sum(dims), y.sum(dims)
    dice = 2 * tp / (s_p + s_y).clamp_min(EPS)
    return ((1 - dice) * (s_y > 0)).mean()


def cases():
    """Case name -> (description, its plain PyTorch counterpart's name or None, fn(z, y))."""
    cce = sm_pixel_ce.PixelCategoricalCrossentropy(from_logits=True)
    cce_softmax = sm_pixel_ce.PixelCategoricalCrossentropy()
    bce = sm_pixel_ce.PixelBinaryCrossentropy(from_logits=True)
    dice = sm_pixel_ce.PixelDiceLoss(from_logits=True)
    return {
        "torch_cce": ("`F.cross_entropy` on the (P, C) logits", None, plain_cce),
        "cce_logits": ("`pixel_cce(from_logits=True)`", "torch_cce", lambda z, y: cce(y, z)),
        "cce_softmax": (
            "`pixel_cce` on `pixel_softmax` output (fused)",
            "torch_cce",
            lambda z, y: cce_softmax(y, sm_pixel_ce.pixel_softmax(z)),
        ),
        "torch_bce": ("`F.binary_cross_entropy_with_logits`, one-hot", None, plain_bce),
        "bce_logits": ("`pixel_bce(from_logits=True)`", "torch_bce", lambda z, y: bce(y, z)),
        "torch_dice": ("Dice of sums in torch (softmax, one-hot)", None, plain_dice),
        "dice_logits": ("`PixelDiceLoss(from_logits=True)`", "torch_dice", lambda z, y: dice(y, z)),
    }


def run(batch=8, size=128, classes=7, repeats=5, warmup=2, threads=None, seed=0):
    """Time every case; a dict with the setup and, per case, its loss, the medians of its wall
    and CPU (this process's, all threads) times, and their ratios to its plain counterpart's."""
    if BACKEND != "torch":
        raise SystemExit(f"run with KERAS_BACKEND=torch; this process runs Keras on {BACKEND!r}")
    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    logits = torch.tensor(rng.normal(0, 2, (batch, size, size, classes)).astype(np.float32))
    labels = torch.tensor(rng.integers(0, classes, (batch, size, size)))
    table = cases()

    def step(fn):
        z = logits.clone().requires_grad_(True)
        start, cpu = time.perf_counter(), time.process_time()
        loss = fn(z, labels)
        loss.backward()
        return float(loss.detach()), (time.perf_counter() - start, time.process_time() - cpu)

    times = {name: [] for name in table}  # (wall, CPU) seconds per call
    values = {}
    load_before = os.getloadavg()
    for round_ in range(warmup + repeats):
        for name, (_, _, fn) in table.items():
            values[name], elapsed = step(fn)
            if round_ >= warmup:
                times[name].append(elapsed)
    wall = {name: statistics.median(t[0] for t in calls) for name, calls in times.items()}
    cpu = {name: statistics.median(t[1] for t in calls) for name, calls in times.items()}
    rows = []
    for name, (description, floor, _) in table.items():
        rows.append(
            {
                "name": name,
                "description": description,
                "loss": values[name],
                "wall_ms": 1e3 * wall[name],
                "cpu_ms": 1e3 * cpu[name],
                "wall_ratio": None if floor is None else wall[name] / wall[floor],
                "cpu_ratio": None if floor is None else cpu[name] / cpu[floor],
                "floor": floor,
            }
        )
    return {
        "shape": (batch, size, size, classes),
        "repeats": repeats,
        "warmup": warmup,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load": (load_before, os.getloadavg()),
        "rows": rows,
    }


def format_table(result):
    n, h, w, c = result["shape"]
    (before, after) = result["load"]
    lines = [
        f"Loss + gradient w.r.t. the logits, {n}×{h}×{w}×{c} float32, integer mask; median of "
        f"{result['repeats']} calls after {result['warmup']} warm-up rounds, the cases "
        f"interleaved. torch {result['torch']}, {result['threads']} threads, "
        f"{result['cpus']} CPUs; load average {before[0]:.1f} before, {after[0]:.1f} after.",
        "",
        "| case | loss | wall (ms) | × plain | CPU (ms) | × plain |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        ratios = [
            "1" if row[key] is None else f"{row[key]:.2f}" for key in ("wall_ratio", "cpu_ratio")
        ]
        lines.append(
            f"| {row['description']} | {row['loss']:.6f} | {row['wall_ms']:.1f} | {ratios[0]} | "
            f"{row['cpu_ms']:.1f} | {ratios[1]} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch's intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    result = run(args.batch, args.size, args.classes, args.repeats, args.warmup, args.threads)
    print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
