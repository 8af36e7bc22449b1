"""Worker processes: the flavour is fixed per process, so every cell runs in a child process.

A worker is ``python -m sm_pixel_ce.matrix STAGE SPEC FOLDER`` (see :mod:`.__main__`) in the
flavour's environment; it prints one JSON result per line on stdout as each cell finishes and
logs everything else next to its files. A cell the worker never answered (it crashed or ran out of
memory) gets a :data:`UNFINISHED` result, which ``resume`` runs again.
"""

import concurrent.futures
import json
import os
import subprocess
import sys

from .._messages import first_line
from .cells import FLAVORS
from .results import cell_result, latest_results

#: In the reason of a cell whose worker process died before answering; --resume runs it again.
UNFINISHED = "not finished"


def worker_env(flavor):
    """The environment of a worker process in ``flavor`` (``"keras3"`` or ``"tf_keras"``)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    env.pop("TF_USE_LEGACY_KERAS", None)
    if flavor == "tf_keras":
        env["TF_USE_LEGACY_KERAS"] = "1"
    return env


def short_error(error):
    """One line naming the error: its type and the first line of its message."""
    text = first_line(error) if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300]


def not_finished(cell, stage):
    """The result of a cell whose ``stage`` worker exited before answering for it."""
    reason = f"{UNFINISHED}: the {stage} process exited early (crash or out of memory)"
    return cell_result(cell, "error", reason, 0.0)


def run_worker(stage, cells, folder):
    """Run one worker process on ``cells`` (all of one flavour) and collect its answers.

    Args:
        stage: ``"build"``, ``"reload"`` or ``"export"`` (see :mod:`.__main__`).
        cells: Result keys to answer: ``(flavor, arch, backbone)``, plus ``format`` for
            ``"export"``.
        folder: Where the worker's spec, log (``STAGE.log``) and files go.

    Returns:
        One result per cell, in order: the worker's, or :func:`not_finished`.
    """
    pairs = list(dict.fromkeys(cell[1:3] for cell in cells))
    formats = list(dict.fromkeys(cell[3] for cell in cells)) if stage == "export" else []
    spec = os.path.join(folder, f"{stage}_cells.json")
    with open(spec, "w") as handle:
        json.dump({"cells": pairs, "formats": formats}, handle)
    command = [sys.executable, "-m", __package__, stage, spec, folder]
    with open(os.path.join(folder, f"{stage}.log"), "a") as log:
        process = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=log, text=True, env=worker_env(cells[0][0])
        )
    answered = latest_results(process.stdout.splitlines())
    return [answered.get(tuple(cell)) or not_finished(cell, stage) for cell in cells]


def run_in_chunks(cells, run_chunk, append, chunk=4, jobs=1):
    """Split ``cells`` into chunks of one flavour and run them, ``jobs`` at a time.

    Args:
        cells: Result keys, their flavour first.
        run_chunk: ``run_chunk(index, chunk_cells)`` yields the chunk's results.
        append: Called with each result as it comes.
        chunk: Cells per chunk. Defaults to 4.
        jobs: Chunks at a time (threads, each waiting on its worker processes). Defaults to 1.
    """
    chunks = []
    for flavor in FLAVORS:
        mine = [c for c in cells if c[0] == flavor]
        chunks += [mine[i : i + chunk] for i in range(0, len(mine), chunk)]

    def run(index, chunk_cells):
        for result in run_chunk(index, chunk_cells):
            append(result)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(run, i, c) for i, c in enumerate(chunks)]:
            future.result()
