"""The support matrix's results: one JSON object per line, appended as cells finish.

A save/reload result names its cell (``flavor``, ``arch``, ``backbone``); an export result adds
its ``format``. Both then carry ``status`` (``ok`` or ``error``), ``reason`` and ``seconds``. A
file can hold a cell more than once (a run resumed or redone): the last line counts.
"""

import json
import os
import threading
import time

#: The fields that name a result's cell, in the order they are written.
CELL_FIELDS = ("flavor", "arch", "backbone", "format")


def cell_result(cell, status, reason, seconds, **measured):
    """A result: the cell's fields, ``status``, ``reason``, what was ``measured``, ``seconds``.

    Args:
        cell: ``(flavor, arch, backbone)``, or ``(flavor, arch, backbone, format)`` for an export.
        status: ``"ok"`` or ``"error"``.
        reason: Why it is not ok (or a note); empty when there is nothing to say.
        seconds: What the cell took.
        **measured: More fields (an export's ``max_difference``).

    Returns:
        The result dict, as written to a results file.
    """
    fields = dict(zip(CELL_FIELDS, cell))
    return {
        **fields,
        "status": status,
        "reason": reason,
        **measured,
        "seconds": round(seconds, 1),
    }


def cell_key(result):
    """The cell a result is for: ``(flavor, arch, backbone)``, plus ``format`` for an export."""
    return tuple(result[field] for field in CELL_FIELDS if field in result)


def latest_results(lines):
    """The last result of each cell among JSON lines (other lines, a worker's noise, are skipped).

    Returns:
        A dict from :func:`cell_key` to the result.
    """
    latest = {}
    for line in lines:
        if line.startswith("{"):
            result = json.loads(line)
            latest[cell_key(result)] = result
    return latest


def read_results(path):
    """The last result of each cell in a JSON-lines results file.

    Args:
        path: A file written by :class:`ResultsFile`; none yet reads as no results.

    Returns:
        A list of result dicts.
    """
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return list(latest_results(handle).values())


def export_results_path(results_path):
    """The export results file next to a support matrix results file
    (``x_results.jsonl`` -> ``x_export_results.jsonl``)."""
    base, extension = os.path.splitext(results_path)
    if base.endswith("_results"):
        return base[: -len("_results")] + "_export_results" + extension
    return base + "_export" + extension


class ResultsFile:
    """Appends results to a JSON-lines file as they come, with one progress line each.

    Safe to call from several threads (one per worker process).

    Args:
        path: The results file, appended to.
        total: How many results this run expects (the ``N`` of ``[n/N ...]``).
        progress: The stream of progress lines.
        label: Before the count in each progress line (``"export "``). Defaults to none.
    """

    def __init__(self, path, total, progress, label=""):
        self.path = path
        self.total = total
        self.progress = progress
        self.label = label
        self.results = []
        self._lock = threading.Lock()
        self._start = time.time()

    def append(self, result):
        """Write one result and its progress line."""
        with self._lock:
            self.results.append(result)
            with open(self.path, "a") as handle:
                handle.write(json.dumps(result) + "\n")
            shown = "ok" if result["status"] == "ok" else result["reason"][:100]
            print(
                f"[{self.label}{len(self.results)}/{self.total} {time.time() - self._start:.0f}s] "
                f"{' '.join(cell_key(result))}: {shown} ({result['seconds']:.1f} s)",
                file=self.progress,
                flush=True,
            )
