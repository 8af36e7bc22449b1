"""The support matrix as Markdown: per half (save/reload, export) a counts table and a cell
table, and the page around them (``examples/support_matrix.md``)."""

from importlib import metadata

from ..input_sizes import ARCHITECTURES, MINIMUM_SIZES
from .cells import FLAVOR_TITLES, FLAVORS, FORMAT_TITLES, INPUT_SIZES, cell_size
from .reload import TOLERANCE
from .results import cell_key

EXPORT_INTRO = (
    "Each cell built with `input_shape=(None, None, 3)` (PSPNet at its size) and exported with "
    "`sm_pixel_ce.export`: TFLite traced at the cell's size, ONNX with H and W dynamic (`fixed "
    "size`: the model cannot be traced with unknown H and W, so ONNX at the cell's size too); "
    "`ok (d)`: the file ran in ai_edge_litert / onnxruntime within 1e-4 of Keras `predict` "
    "(d: the largest probability difference). Run with `sm-pixel-ce matrix --export-formats "
    "tflite,onnx`; results in `examples/support_matrix_export_results.jsonl`."
)


def render_cells(results, heads, columns, show, backbones, archs=ARCHITECTURES, every_row=True):
    """Counts per column, then one row per architecture x backbone.

    Args:
        results: Result dicts.
        heads: What names a column: ``("Flavour",)`` or ``("Flavour", "Format")``.
        columns: The table's columns, one value per head: ``(flavor,)`` or ``(flavor, format)``.
        show: What a cell with a result reads (``show(result)``); one without reads ``not run``.
        backbones: Backbone names, in row order.
        archs: Architectures, in row order. Defaults to all four.
        every_row: Show rows without any result too. Defaults to True.

    Returns:
        The Markdown text.
    """
    by_cell = {cell_key(r): r for r in results}
    titles = {c: (FLAVOR_TITLES[c[0]], *(FORMAT_TITLES[x] for x in c[1:])) for c in columns}

    def found(column, arch, backbone):
        return by_cell.get((column[0], arch, backbone, *column[1:]))

    total = len(archs) * len(backbones)
    lines = [_row(*heads, "ok", "failing", "not run", "total"), "|" + "---|" * (len(heads) + 4)]
    for column in columns:
        cells = [found(column, a, b) for a in archs for b in backbones]
        ok = sum(1 for c in cells if c and c["status"] == "ok")
        failing = sum(1 for c in cells if c and c["status"] != "ok")
        lines.append(_row(*titles[column], ok, failing, total - ok - failing, total))
    lines += ["", _row("Architecture", "Backbone", *(" ".join(titles[c]) for c in columns))]
    lines.append("|---|---|" + "---|" * len(columns))
    for arch in archs:
        for backbone in backbones:
            row = [found(column, arch, backbone) for column in columns]
            if every_row or any(row):
                lines.append(
                    _row(arch, backbone, *("not run" if r is None else show(r) for r in row))
                )
    return "\n".join(lines) + "\n"


def _row(*cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _escaped(reason):
    return reason.replace("|", "\\|")


def _show_reload(result):
    shown = "ok" if result["status"] == "ok" else _escaped(result["reason"])
    return f"{shown} ({result['seconds']:.0f} s)"


def _show_export(result):
    if result["status"] != "ok":
        return _escaped(result["reason"])
    note = f"{result['reason']}, " if result["reason"] else ""
    return f"ok ({note}{result['max_difference']:.0e})"


def render_table(results, backbones, archs=ARCHITECTURES):
    """The save/reload matrix as Markdown: one row per architecture x backbone, one column per
    flavour.

    Args:
        results: Result dicts (``flavor``, ``arch``, ``backbone``, ``status``, ``reason``,
            ``seconds``).
        backbones: Backbone names, in row order.
        archs: Architectures, in row order. Defaults to all four.

    Returns:
        The Markdown text: counts per flavour, then the table; unrun cells read ``not run``.
    """
    columns = [(flavor,) for flavor in FLAVORS]
    return render_cells(results, ("Flavour",), columns, _show_reload, backbones, archs)


def render_export_section(exports, backbones, archs=ARCHITECTURES):
    """The export columns as Markdown: counts per flavour and format, then one row per cell run.

    Args:
        exports: Export result dicts (``flavor``, ``arch``, ``backbone``, ``format``, ``status``,
            ``reason``, ``max_difference``).
        backbones: Backbone names, in row order.
        archs: Architectures, in row order. Defaults to all four.

    Returns:
        The Markdown text; cells with no export result are counted as ``not run`` and left out
        of the rows.
    """
    keys = {cell_key(r) for r in exports}
    columns = [
        (flavor, format)
        for flavor in FLAVORS
        for format in FORMAT_TITLES
        if any(key[0] == flavor and key[3] == format for key in keys)
    ]
    table = render_cells(
        exports, ("Flavour", "Format"), columns, _show_export, backbones, archs, every_row=False
    )
    return f"## Export to TFLite and ONNX (float32)\n\n{EXPORT_INTRO}\n\n{table}"


def render_tables(results, exports, backbones):
    """The save/reload table, then the export section when there are export results."""
    if not exports:
        return render_table(results, backbones)
    return render_table(results, backbones) + "\n" + render_export_section(exports, backbones)


def render_document(results, backbones, exports=()):
    """The support matrix as a Markdown page: what a cell means, how to rerun, then the tables.

    Args:
        results: Result dicts, as for :func:`render_table`.
        backbones: Backbone names, in row order.
        exports: Export result dicts, as for :func:`render_export_section`. Defaults to none.

    Returns:
        The page's Markdown text.
    """
    sizes = ", ".join(f"{size} px ({arch})" for arch, size in INPUT_SIZES.items())
    larger = ", ".join(
        f"{cell_size('Unet', backbone)} px on {backbone}" for backbone in MINIMUM_SIZES
    )
    header = f"""# segmentation_models support matrix (sm_pixel_ce)

Generated with `sm-pixel-ce matrix` ({_versions()}; CPU). Each cell: built with
`encoder_weights=None` and `activation="pixel_softmax"`, one training step (SGD) with `pixel_cce`,
saved as `.keras` and `.h5`, reloaded in a fresh process with `safe_mode=True` and no
`custom_objects`, predictions equal within {TOLERANCE:g}. Input: {sizes}; {larger}.
`ok (N s)`: all of that held (N: build + train + save + reload seconds on a shared 2-core machine,
a measure of a cell's cost, not of speed); otherwise the reason; `not run`: not run in this pass
(neither a failure nor a success).

Rerun or fill it: `sm-pixel-ce matrix --jobs 2 --resume --results
examples/support_matrix_results.jsonl --out examples/support_matrix.md` (cells already in the \
results file are kept).

"""
    return header + render_tables(results, exports, backbones)


def backbone_rows(cells, results):
    """The backbones in row order: those of ``cells``, then any other with a result."""
    names = [backbone for _, backbone in cells] + [r["backbone"] for r in results]
    return list(dict.fromkeys(names))


def _versions():
    found = []
    for package in ("segmentation-models", "tensorflow", "keras", "tf-keras"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)
