"""Export columns: every architecture x backbone exported to TFLite and ONNX (float32) in each
Keras flavour, each file checked in its runtime against Keras ``predict``.

A cell builds the model as a user would (``encoder_weights=None``, ``activation="pixel_softmax"``,
``input_shape=(None, None, 3)``; PSPNet at its fixed size) and calls :func:`sm_pixel_ce.export`
at the support matrix's cell size: TFLite traced at that size, ONNX with H and W left dynamic
(at the cell size too, noted ``fixed size``, when the model cannot be traced with unknown H and W:
Keras 3's bilinear ``UpSampling2D`` in FPN).
A cell's format is ``ok`` when the export ran and its check passed (within 1e-4 of Keras).
Results are one line per cell and format; :func:`export_cells` is the worker's body.
"""

import os
import sys
import tempfile
import time

from .cells import CLASSES, EXPORT_FORMATS, cell_size
from .results import ResultsFile, cell_result
from .workers import run_in_chunks, run_worker, short_error


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

    Raises:
        ValueError: A format the matrix does not export to.
    """
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(
            f"the matrix exports to {list(EXPORT_FORMATS)}. Received: formats={list(formats)}"
        )
    keys = [(*cell, format) for cell in cells for format in formats]
    results = ResultsFile(results_path, len(keys), progress, label="export ")
    with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_export_matrix_") as tmp:
        folder = workdir or tmp
        os.makedirs(folder, exist_ok=True)
        run_in_chunks(
            keys,
            lambda index, chunk_keys: run_worker("export", chunk_keys, folder),
            results.append,
            chunk=chunk * len(formats),
        )
    return results.results


def export_cell(arch, backbone, formats, folder):
    """Build one cell's model and export it to each format.

    Returns:
        One result dict per format (``status`` ``ok`` or ``error`` with the reason; ``seconds``:
        that format's export and check, plus the build for the first).
    """
    import segmentation_models as sm

    from ..exporting import export
    from ..exporting.tracing import DynamicSizeError
    from ..flavor import KERAS_FLAVOR

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
        reason = f"build: {short_error(error)}"
        seconds = time.time() - start
        return [
            cell_result(
                (KERAS_FLAVOR, arch, backbone, f), "error", reason, seconds, max_difference=None
            )
            for f in formats
        ]
    results = []
    # The cell already runs in its own worker process, which ends after its chunk: a converter
    # child per format (export's default above 16 MiB of weights) would only add a TensorFlow
    # start-up to every format.
    for format in formats:
        out = os.path.join(folder, f"{arch}_{backbone}.{format}")
        try:
            note = ""
            traced = size if format == "tflite" else None
            try:
                report = export(model, out, format=format, size=traced, isolate=False)
            except DynamicSizeError:  # ONNX keeps H and W dynamic when the model can be traced so
                note = "fixed size"
                report = export(model, out, format=format, size=size, isolate=False)
            status = "ok" if report.passed else "error"
            reason = note if report.passed else f"check: differs by {report.max_difference:.3g}"
            difference = report.max_difference
        except Exception as error:
            status, reason, difference = "error", f"export: {short_error(error)}", None
        if os.path.exists(out):
            os.remove(out)
        cell = (KERAS_FLAVOR, arch, backbone, format)
        seconds = time.time() - start
        results.append(cell_result(cell, status, reason, seconds, max_difference=difference))
        start = time.time()
    return results


def export_cells(spec, folder):
    """Worker: :func:`export_cell` for every cell of ``spec``.

    Args:
        spec: ``{"cells": [[arch, backbone], ...], "formats": [...]}``.
        folder: Where the exported files go (each removed once checked).

    Yields:
        One result per cell and format.
    """
    from ..flavor import keras

    for arch, backbone in spec["cells"]:
        yield from export_cell(arch, backbone, spec["formats"], folder)
        keras.backend.clear_session()
