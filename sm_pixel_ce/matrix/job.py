"""``support_matrix``: run the cells not yet in the results file (or none), then render them."""

import sys
import tempfile

from .cells import FLAVORS
from .export import run_export_matrix
from .reload import run_matrix
from .render import backbone_rows, render_document, render_tables
from .results import cell_key, export_results_path, read_results
from .workers import UNFINISHED


def support_matrix(
    cells,
    results_path,
    flavors=FLAVORS,
    resume=False,
    table_only=False,
    out=None,
    workdir=None,
    jobs=1,
    chunk=4,
    progress=sys.stderr,
    export_formats=(),
):
    """Run the support matrix (or only render it) and return its table.

    Args:
        cells: ``(arch, backbone)`` pairs, e.g. from :func:`~sm_pixel_ce.matrix.choose_cells`.
        results_path: JSON-lines file of cell results, appended to as cells finish.
        flavors: Keras flavours to run. Defaults to both.
        resume: Skip cells already in ``results_path`` (except unfinished ones). Defaults to False.
        table_only: Run nothing; only render what ``results_path`` holds. Defaults to False.
        out: Write the whole Markdown page here. Defaults to None.
        workdir: Folder for saved models; a temporary folder when None. Defaults to None.
        jobs: Worker processes at a time. Defaults to 1.
        chunk: Cells per worker process. Defaults to 4.
        progress: Stream for one line per finished cell. Defaults to stderr.
        export_formats: Also export each cell to these formats (``"tflite"``, ``"onnx"``) with
            :mod:`sm_pixel_ce.matrix.export`; results go to the file named by
            ``export_results_path(results_path)`` and show as one column per flavour and format.
            Defaults to none.

    Returns:
        ``(table, all_ok)``: the Markdown table of every cell, and whether every cell run in this
        call is ``ok``.

    Raises:
        ValueError: ``jobs`` or ``chunk`` below 1.

    Example:
        >>> table, ok = support_matrix([("Unet", "resnet18")], "results.jsonl", flavors=("keras3",))
    """
    if jobs < 1 or chunk < 1:
        raise ValueError(f"jobs and chunk must be >= 1. Received: jobs={jobs}, chunk={chunk}")
    todo = [] if table_only else _not_done(results_path, resume, flavors, cells)
    if todo:
        with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_matrix_") as tmp:
            run_matrix(
                todo, workdir or tmp, results_path, jobs=jobs, chunk=chunk, progress=progress
            )
    exports_path = export_results_path(results_path)
    exported = []
    if export_formats and not table_only:
        to_export = _not_done(exports_path, resume, flavors, cells, export_formats)
        if to_export:
            exported = run_export_matrix(
                to_export, exports_path, export_formats, chunk=chunk, progress=progress
            )
    results = read_results(results_path)
    exports = read_results(exports_path)
    backbones = backbone_rows(cells, results)
    if out:
        with open(out, "w") as handle:
            handle.write(render_document(results, backbones=backbones, exports=exports))
    ran = set(todo)
    all_ok = all(r["status"] == "ok" for r in results if cell_key(r) in ran) and all(
        r["status"] == "ok" for r in exported
    )
    return render_tables(results, exports, backbones), all_ok


def _not_done(path, resume, flavors, cells, formats=()):
    """The ``(flavor, arch, backbone)`` cells to run: all, or with ``resume`` those not in ``path``
    (in any of ``formats``, for exports)."""
    # A cell whose worker died (out of memory, a crash) has no answer yet: it runs again.
    done = {
        cell_key(r) for r in (read_results(path) if resume else []) if UNFINISHED not in r["reason"]
    }
    wanted = [(f, a, b) for f in flavors for a, b in cells]
    if not formats:
        return [cell for cell in wanted if cell not in done]
    return [cell for cell in wanted if any((*cell, x) not in done for x in formats)]
