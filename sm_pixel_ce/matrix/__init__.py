"""The support matrix (``sm-pixel-ce matrix``): segmentation_models architectures x backbones.

Each cell is one architecture on one backbone in one Keras flavour: build (``encoder_weights=None``,
``activation="pixel_softmax"``), train one step with ``pixel_cce``, save as ``.keras`` and ``.h5``,
reload both in a *fresh* process with ``safe_mode=True`` and no ``custom_objects``, and compare
predictions; optionally also export it to TFLite and ONNX and check each file in its runtime. A
cell is ``ok`` only when all of that held; otherwise it carries the reason.

The flavour is fixed per process, so the work runs in worker processes (``jobs`` at a time), each
on a few cells. Results are appended to a JSON-lines file, so a matrix can be run in parts
(``resume`` skips cells already there) and the Markdown table always shows every cell: ``ok``, its
reason, or ``not run``.

* :mod:`.cells` — the architectures, backbones, flavours and formats, and each cell's input size;
* :mod:`.workers` — running a worker process in a flavour and collecting its answers;
* :mod:`.reload` — the save/reload cells (:func:`run_matrix` and its workers' bodies);
* :mod:`.export` — the export cells (:func:`run_export_matrix` and its worker's body);
* :mod:`.results` — the results files: reading, appending with a progress line;
* :mod:`.render` — the Markdown tables and page;
* :mod:`.job` — :func:`support_matrix`, what ``sm-pixel-ce matrix`` calls;
* :mod:`.__main__` — the worker processes' entry.
"""

from .cells import (
    EXPORT_FORMATS,
    FAST_EXPORT_SUBSET,
    FAST_SUBSET,
    FLAVOR_TITLES,
    FLAVORS,
    INPUT_SIZES,
    cell_size,
    choose_cells,
    list_backbones,
)
from .export import export_cell, run_export_matrix
from .job import support_matrix
from .reload import run_matrix
from .render import render_document, render_export_section, render_table
from .results import export_results_path, read_results
from .workers import UNFINISHED

__all__ = [
    "EXPORT_FORMATS",
    "FAST_EXPORT_SUBSET",
    "FAST_SUBSET",
    "FLAVORS",
    "FLAVOR_TITLES",
    "INPUT_SIZES",
    "UNFINISHED",
    "cell_size",
    "choose_cells",
    "export_cell",
    "export_results_path",
    "list_backbones",
    "read_results",
    "render_document",
    "render_export_section",
    "render_table",
    "run_export_matrix",
    "run_matrix",
    "support_matrix",
]
