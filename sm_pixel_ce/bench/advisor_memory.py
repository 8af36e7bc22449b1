"""Peak resident memory of ``sm-pixel-ce compare`` against the number of runs (issue #30, point 1).

Every point is one ``compare`` on the generated scenes in a child process, in one of the ways
runs execute (:data:`MODES`: all in one process, the default process per run, ``--prune``'s
phases, ``--jobs 2``). Two figures per point: the compare process's own peak resident set
(``VmHWM`` as it exits, see :func:`~sm_pixel_ce.bench.timing.run_command_line`) and the largest
peak of the processes it starts to train runs (their ``VmHWM``, read from ``/proc`` every
``poll`` seconds while they live: growth in a run's last ``poll`` seconds can be missed). Flat
memory means both stay at about one run's figure however many runs there are; trained in one
process, every run adds about the size of its model and optimizer state (see
examples/compare_advisor.md, "Memory over many runs").
"""

import os
import tempfile
import threading
import time

from ..compare.variants import expand_variants
from .output import machine, write_json
from .timing import run_command_line

#: How the runs execute: name -> the ``compare`` flags that choose it.
MODES = {
    "in-process": ("--in-process",),
    "default": (),
    "prune": ("--prune",),
    "jobs 2": ("--jobs", "2"),
}
#: ``(variants, seeds)`` of the default points: 1, 4 and 12 runs.
DEFAULT_GRIDS = (
    (("cce",), 1),
    (("cce", "bce"), 2),
    (("cce", "bce", "cce-dice", "cce-topk"), 3),
)


def _parents():
    """``{pid: parent pid}`` of every process ``/proc`` shows."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                # The name, field 2, is in parentheses and may hold spaces.
                parents[int(name)] = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
    return parents


def _depth_below(pid, root, parents):
    """How many generations ``pid`` is below ``root`` (1: a child), or None if it is not."""
    depth = 0
    while pid in parents and pid > 1:
        pid, depth = parents[pid], depth + 1
        if pid == root:
            return depth
    return None


def _peak_kb(pid):
    """A process's ``VmHWM`` in KiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def measure_compare_memory(arguments, log_path, poll=0.1):
    """Run ``sm-pixel-ce compare ARGUMENTS`` in a child process and measure its memory.

    Args:
        arguments: The flags after ``compare``.
        log_path: File for the child's output.
        poll: Seconds between two readings of the run processes' peaks. Defaults to 0.1.

    Returns:
        ``{"main_peak_mb", "run_peak_mb", "run_processes", "wall_s", "returncode"}``:
        ``run_peak_mb`` the largest peak of the processes the compare started (None when it
        trained every run itself), ``run_processes`` how many there were (Python's
        multiprocessing resource tracker, a few MB, among them with ``--jobs``).

    Example:
        >>> measure_compare_memory(["--images", "24", "--seeds", "2"], "log.txt")["returncode"]
        0
    """
    outcome = {}
    worker = threading.Thread(
        target=lambda: outcome.update(run_command_line(["compare", *arguments], log_path))
    )
    worker.start()
    me, peaks = os.getpid(), {}
    while worker.is_alive():
        parents = _parents()
        for pid in parents:
            # Depth 1 is the compare itself, measured by run_command_line as it exits.
            if (_depth_below(pid, me, parents) or 0) >= 2:
                peak = _peak_kb(pid)
                if peak is not None:
                    peaks[pid] = max(peak, peaks.get(pid, 0))
        time.sleep(poll)
    worker.join()
    return {
        "main_peak_mb": outcome["peak_rss_mb"],
        "run_peak_mb": max(peaks.values()) / 1024 if peaks else None,
        "run_processes": len(peaks),
        "wall_s": outcome["wall_s"],
        "returncode": outcome["returncode"],
    }


def peak_rss_over_runs(
    grids=DEFAULT_GRIDS,
    modes=tuple(MODES),
    size=64,
    images=24,
    epochs=2,
    batch_size=4,
    extra=(),
    workdir=None,
    json_path=None,
    progress=None,
):
    """Peak resident memory of ``compare`` against the number of runs, in each way runs execute.

    Args:
        grids: ``(variants, seeds)`` of each point (``("all",)`` for every variant: 33 runs
            with 3 seeds). Defaults to :data:`DEFAULT_GRIDS` (1, 4 and 12 runs).
        modes: Names from :data:`MODES`. Defaults to all of them.
        size, images, epochs, batch_size: The runs (``--size``, ``--images``, ...): 2 epochs,
            so that ``--prune`` scores once (at epoch 1). Defaults to 64, 24, 2, 4.
        extra: More ``compare`` flags, e.g. ``("--optimizer", "sgd")``. Defaults to ().
        workdir: Where the output folders and logs go; None for a temporary folder removed
            afterwards. Defaults to None.
        json_path: Write the returned dict here as JSON. Defaults to None.
        progress: Callable given one line per point. Defaults to None.

    Returns:
        ``{"config", "points", "growth"}``: one dict per (mode, grid) with ``mode``, ``runs``,
        ``variants``, ``seeds`` and :func:`measure_compare_memory`'s figures; and per mode
        ``{"main": ratio, "largest": ratio}``, the peaks at the most runs over those at the
        fewest (1.0: flat; ``largest`` is the larger of the two peaks of a point).

    Raises:
        ValueError: A mode not in :data:`MODES`.

    Example:
        >>> figures = peak_rss_over_runs(grids=((("cce",), 1), (("cce", "bce"), 2)))
        >>> figures["growth"]["default"]["largest"] < 1.2
        True
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(
            f"advisor memory modes must be among {', '.join(MODES)}; received {unknown}."
        )
    say = progress or (lambda line: None)
    config = {
        "size": size,
        "images": images,
        "epochs": epochs,
        "batch_size": batch_size,
        "extra": list(extra),
    }
    points = []
    with tempfile.TemporaryDirectory() as temporary:
        root = workdir or temporary
        os.makedirs(root, exist_ok=True)
        for mode in modes:
            for variants, seeds in grids:
                runs = len(expand_variants(variants)) * seeds
                name = f"{mode.replace(' ', '')}-{runs}runs"
                out = os.path.join(root, name)
                arguments = [
                    *("--images", images, "--size", size, "--epochs", epochs),
                    *("--batch-size", batch_size, "--variants", ",".join(variants)),
                    *("--seeds", seeds, "--out", out, *MODES[mode], *extra),
                ]
                point = {"mode": mode, "runs": runs, "variants": list(variants), "seeds": seeds}
                point.update(measure_compare_memory(arguments, os.path.join(root, name + ".log")))
                points.append(point)
                say(
                    f"{mode:<10} {runs:>3} runs: compare {point['main_peak_mb']:6.0f} MB, "
                    f"largest run process "
                    + (f"{point['run_peak_mb']:6.0f} MB" if point["run_peak_mb"] else "     -")
                    + f", {point['wall_s']:.0f} s"
                    + ("" if point["returncode"] == 0 else f" (exit {point['returncode']})")
                )
    result = {"config": {**config, **machine()}, "points": points, "growth": _growth(points)}
    if write_json(result, json_path):
        say(f"figures written to {json_path}")
    return result


def _growth(points):
    """Per mode, the peaks at the most runs over those at the fewest (successful points)."""
    growth = {}
    for mode in dict.fromkeys(p["mode"] for p in points):
        ok = [p for p in points if p["mode"] == mode and p["returncode"] == 0]
        if len(ok) < 2:
            continue
        few, many = min(ok, key=lambda p: p["runs"]), max(ok, key=lambda p: p["runs"])
        largest = [max(p["main_peak_mb"], p["run_peak_mb"] or 0) for p in (few, many)]
        growth[mode] = {
            "runs": [few["runs"], many["runs"]],
            "main": many["main_peak_mb"] / few["main_peak_mb"],
            "largest": largest[1] / largest[0],
        }
    return growth


def memory_table(points):
    """The points of :func:`peak_rss_over_runs` as a Markdown table: one row per number of runs,
    one column per mode, each cell "compare process / largest run process" in GB.

    Example:
        >>> print(memory_table(peak_rss_over_runs()["points"]))
    """
    modes = list(dict.fromkeys(p["mode"] for p in points))
    counts = sorted({p["runs"] for p in points})
    cells = {(p["mode"], p["runs"]): p for p in points}

    def cell(point):
        if point is None:
            return "-"
        if point["returncode"] != 0:
            return f"failed (exit {point['returncode']})"
        run = point["run_peak_mb"]
        return f"{point['main_peak_mb'] / 1024:.2f}" + (f" / {run / 1024:.2f}" if run else "")

    lines = [
        "| runs | " + " | ".join(modes) + " |",
        "|---:|" + "---:|" * len(modes),
    ]
    for runs in counts:
        lines.append(f"| {runs} | " + " | ".join(cell(cells.get((m, runs))) for m in modes) + " |")
    return "\n".join(lines)
