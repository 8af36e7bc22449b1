"""Export columns of the support matrix: every architecture x backbone exported to TFLite and ONNX
(float32) in each Keras flavour, each file checked in its runtime against Keras ``predict``.

A cell builds the model as a user would (``encoder_weights=None``, ``activation="pixel_softmax"``,
``input_shape=(None, None, 3)``; PSPNet at its fixed size) and calls :func:`sm_pixel_ce.export`
at the support matrix's cell size: TFLite traced at that size, ONNX with H and W left dynamic
(at the cell size too, noted ``fixed size``, when the model cannot be traced with unknown H and W:
Keras 3's bilinear ``UpSampling2D`` in FPN).
A cell's format is ``ok`` when the export ran and its check passed (within 1e-4 of Keras).

Like the save/reload matrix, the work runs in worker processes (the flavour is fixed per
process), and results are appended to a JSON-lines file, one line per cell and format.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from ..input_sizes import ARCHITECTURES
from ..support_matrix import FLAVOR_TITLES, FLAVORS, UNFINISHED, _env, _short, cell_size

EXPORT_FORMATS = ("tflite", "onnx")
FORMAT_TITLES = {"tflite": "TFLite", "onnx": "ONNX"}
#: The export cells run by the default tests (efficientnet's FixedDropout and swish, the
#: inception-resnet Lambda layers, PSPNet's fixed-size pooling).
FAST_EXPORT_SUBSET = (("Unet", "efficientnetb0"), ("PSPNet", "mobilenetv2"))
CLASSES = 7


def export_results_path(results_path):
    """The export results file next to a support matrix results file
    (``x_results.jsonl`` -> ``x_export_results.jsonl``)."""
    base, extension = os.path.splitext(results_path)
    if base.endswith("_results"):
        return base[: -len("_results")] + "_export_results" + extension
    return base + "_export" + extension


def run_export_matrix(
    cells, results_path, formats=EXPORT_FORMATS, chunk=4, workdir=None, progress=sys.stderr
):
    """Export ``cells`` (``(flavor, arch, backbone)``) to ``formats``; append results as they come.

    Args:
        cells: The cells to run.
        results_path: JSON-lines file the results are appended to.
        formats: Export formats. Defaults to TFLite and ONNX.
        chunk: Cells per worker process. Defaults to 4.
        workdir: Folder for exported files; a temporary folder when None. Defaults to None.
        progress: Where a line per finished cell and format goes. Defaults to stderr.

    Returns:
        The list of result dicts (one per cell and format).
    """
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(
            f"the matrix exports to {list(EXPORT_FORMATS)}. Received: formats={list(formats)}"
        )
    results = []
    start = time.time()
    total = len(cells) * len(formats)
    with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_export_matrix_") as tmp:
        folder = workdir or tmp
        os.makedirs(folder, exist_ok=True)
        for flavor in FLAVORS:
            mine = [c for c in cells if c[0] == flavor]
            for i in range(0, len(mine), chunk):
                for result in _run_chunk(mine[i : i + chunk], formats, folder):
                    results.append(result)
                    with open(results_path, "a") as handle:
                        handle.write(json.dumps(result) + "\n")
                    shown = "ok" if result["status"] == "ok" else result["reason"][:100]
                    print(
                        f"[export {len(results)}/{total} {time.time() - start:.0f}s] "
                        f"{result['flavor']} {result['arch']} {result['backbone']} "
                        f"{result['format']}: {shown} ({result['seconds']:.1f} s)",
                        file=progress,
                        flush=True,
                    )
    return results


def _run_chunk(cells, formats, folder):
    flavor = cells[0][0]
    spec = os.path.join(folder, "export_cells.json")
    with open(spec, "w") as handle:
        json.dump({"cells": [[a, b] for _, a, b in cells], "formats": list(formats)}, handle)
    command = [sys.executable, "-m", "sm_pixel_ce.exporting.matrix", spec, folder]
    with open(os.path.join(folder, "export.log"), "a") as log:
        process = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=log, text=True, env=_env(flavor)
        )
    answered = {}
    for line in process.stdout.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
            answered[(result["arch"], result["backbone"], result["format"])] = result
    for _, arch, backbone in cells:
        for format in formats:
            yield answered.get((arch, backbone, format)) or _result(
                flavor,
                arch,
                backbone,
                format,
                "error",
                f"{UNFINISHED}: the export process exited early (crash or out of memory)",
                0.0,
            )


def _result(flavor, arch, backbone, format, status, reason, seconds, difference=None):
    return {
        "flavor": flavor,
        "arch": arch,
        "backbone": backbone,
        "format": format,
        "status": status,
        "reason": reason,
        "max_difference": difference,
        "seconds": round(seconds, 1),
    }


def export_cell(arch, backbone, formats, folder):
    """Build one cell's model and export it to each format.

    Returns:
        One result dict per format (``status`` ``ok`` or ``error`` with the reason; ``seconds``:
        that format's export and check, plus the build for the first).
    """
    import segmentation_models as sm

    from ..flavor import KERAS_FLAVOR
    from .job import export
    from .tracing import DynamicSizeError

    start = time.time()
    size = cell_size(arch, backbone)
    try:
        model = getattr(sm, arch)(
            backbone,
            encoder_weights=None,
            classes=CLASSES,
            activation="pixel_softmax",
            input_shape=(size, size, 3) if arch == "PSPNet" else (None, None, 3),
        )
    except Exception as error:  # a cell's failure is its result, never the end of the run
        reason = f"build: {_short(error)}"
        seconds = time.time() - start
        return [_result(KERAS_FLAVOR, arch, backbone, f, "error", reason, seconds) for f in formats]
    results = []
    for format in formats:
        out = os.path.join(folder, f"{arch}_{backbone}.{format}")
        try:
            note = ""
            traced = size if format == "tflite" else None
            try:
                report = export(model, out, format=format, size=traced)
            except DynamicSizeError:  # ONNX keeps H and W dynamic when the model can be traced so
                note = "fixed size"
                report = export(model, out, format=format, size=size)
            status = "ok" if report.passed else "error"
            reason = note if report.passed else f"check: differs by {report.max_difference:.3g}"
            difference = report.max_difference
        except Exception as error:
            status, reason, difference = "error", f"export: {_short(error)}", None
        if os.path.exists(out):
            os.remove(out)
        results.append(
            _result(
                KERAS_FLAVOR,
                arch,
                backbone,
                format,
                status,
                reason,
                time.time() - start,
                difference,
            )
        )
        start = time.time()
    return results


def read_export_results(path):
    """The last result of each (flavor, arch, backbone, format) in an export results file."""
    latest = {}
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        for line in handle:
            if line.strip():
                r = json.loads(line)
                latest[(r["flavor"], r["arch"], r["backbone"], r["format"])] = r
    return list(latest.values())


def render_export_section(exports, backbones, archs=ARCHITECTURES):
    """The export columns as Markdown: counts per flavour and format, then one row per cell run.

    Args:
        exports: Result dicts from :func:`run_export_matrix` (``flavor``, ``arch``, ``backbone``,
            ``format``, ``status``, ``reason``, ``max_difference``).
        backbones: Backbone names, in row order.
        archs: Architectures, in row order. Defaults to all four.

    Returns:
        The Markdown text; cells with no export result are counted as ``not run`` and left out
        of the rows.
    """
    by_cell = {(r["flavor"], r["arch"], r["backbone"], r["format"]): r for r in exports}
    columns = [
        (flavor, format)
        for flavor in FLAVORS
        for format in FORMAT_TITLES
        if any(key[0] == flavor and key[3] == format for key in by_cell)
    ]
    total = len(archs) * len(backbones)
    lines = [
        "## Export to TFLite and ONNX (float32)",
        "",
        "Each cell built with `input_shape=(None, None, 3)` (PSPNet at its size) and exported with "
        "`sm_pixel_ce.export`: TFLite traced at the cell's size, ONNX with H and W dynamic (`fixed "
        "size`: the model cannot be traced with unknown H and W, so ONNX at the cell's size too); "
        "`ok (d)`: the file ran in ai_edge_litert / onnxruntime within 1e-4 of Keras `predict` "
        "(d: the largest probability difference). Run with `sm-pixel-ce matrix --export-formats "
        "tflite,onnx`; results in `examples/support_matrix_export_results.jsonl`.",
        "",
        "| Flavour | Format | ok | failing | not run | total |",
        "|---|---|---|---|---|---|",
    ]
    for flavor, format in columns:
        cells = [by_cell.get((flavor, a, b, format)) for a in archs for b in backbones]
        ok = sum(1 for c in cells if c and c["status"] == "ok")
        failing = sum(1 for c in cells if c and c["status"] != "ok")
        lines.append(
            f"| {FLAVOR_TITLES[flavor]} | {FORMAT_TITLES[format]} | {ok} | {failing} | "
            f"{total - ok - failing} | {total} |"
        )
    titles = [f"{FLAVOR_TITLES[f]} {FORMAT_TITLES[x]}" for f, x in columns]
    lines += ["", "| Architecture | Backbone | " + " | ".join(titles) + " |"]
    lines.append("|---|---|" + "---|" * len(titles))
    for arch in archs:
        for backbone in backbones:
            found = [by_cell.get((f, arch, backbone, x)) for f, x in columns]
            if not any(found):
                continue
            shown = []
            for result in found:
                if result is None:
                    shown.append("not run")
                elif result["status"] == "ok":
                    note = f"{result['reason']}, " if result["reason"] else ""
                    shown.append(f"ok ({note}{result['max_difference']:.0e})")
                else:
                    shown.append(result["reason"].replace("|", "\\|"))
            lines.append(f"| {arch} | {backbone} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def _main(argv):
    spec_path, folder = argv
    with open(spec_path) as handle:
        spec = json.load(handle)
    import sm_pixel_ce  # noqa: F401
    from sm_pixel_ce.flavor import keras

    for arch, backbone in spec["cells"]:
        for result in export_cell(arch, backbone, spec["formats"], folder):
            print(json.dumps(result), flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    _main(sys.argv[1:])
