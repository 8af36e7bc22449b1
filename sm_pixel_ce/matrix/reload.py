"""Save and reload: each cell built (``encoder_weights=None``, ``activation="pixel_softmax"``),
trained one step with ``pixel_cce``, saved as ``.keras`` and ``.h5``, and reloaded in a *fresh*
process with ``safe_mode=True`` and no ``custom_objects``, its predictions compared.

A chunk of cells is built in one worker process and reloaded in one more (one TensorFlow import
for many files); :func:`build_cells` and :func:`reload_cells` are those workers' bodies.
"""

import os
import sys
import time

from .cells import CLASSES, cell_size
from .results import ResultsFile, cell_result
from .workers import run_in_chunks, run_worker, short_error

BATCH = 2
#: Largest |difference| of predictions before and after a reload that still counts as equal.
TOLERANCE = 1e-5
FORMATS = (".keras", ".h5")


def run_matrix(cells, workdir, results_path, jobs=1, chunk=4, progress=sys.stderr):
    """Run ``cells`` (``(flavor, arch, backbone)``) in worker processes; append results as they
    come.

    Args:
        cells: The cells to run.
        workdir: Folder for saved models.
        results_path: JSON-lines file the results are appended to.
        jobs: Worker processes at a time. Defaults to 1.
        chunk: Cells per worker. Defaults to 4.
        progress: Where a line per finished cell goes. Defaults to stderr.

    Returns:
        The list of result dicts of these cells.
    """

    def run_chunk(index, chunk_cells):
        folder = os.path.join(workdir, f"chunk{index}")
        os.makedirs(folder, exist_ok=True)
        return _build_and_reload(chunk_cells, folder)

    results = ResultsFile(results_path, len(cells), progress)
    run_in_chunks(cells, run_chunk, results.append, chunk=chunk, jobs=jobs)
    return results.results


def _build_and_reload(cells, folder):
    """Build/train/save in one process, reload in another; one final result per cell."""
    built = dict(zip(cells, run_worker("build", cells, folder)))
    to_reload = [cell for cell in cells if built[cell]["status"] == "ok"]
    finished = {cell: built[cell] for cell in cells if cell not in to_reload}
    if to_reload:
        for cell, reload in zip(to_reload, run_worker("reload", to_reload, folder)):
            seconds = built[cell]["seconds"] + reload["seconds"]
            finished[cell] = {**reload, "seconds": round(seconds, 1)}
    for _, arch, backbone in cells:  # the saved models: up to 1.5 GB each (senet154)
        for extension in (*FORMATS, ".npz"):
            path = os.path.join(folder, f"{arch}_{backbone}{extension}")
            if os.path.exists(path):
                os.remove(path)
    return [finished[cell] for cell in cells]


def build_cells(spec, folder):
    """Worker: build, train one step, save both formats and the reference predictions.

    Args:
        spec: ``{"cells": [[arch, backbone], ...]}``.
        folder: Where the files go (``ARCH_BACKBONE.keras``, ``.h5``, ``.npz``).

    Yields:
        One result per cell.
    """
    import numpy as np
    import segmentation_models as sm

    from ..data.scenes import make_scenes
    from ..flavor import KERAS_FLAVOR, keras
    from ..metrics import PixelAccuracy, PixelMeanIoU

    for arch, backbone in spec["cells"]:
        cell = (KERAS_FLAVOR, arch, backbone)
        start = time.time()
        stage = "build"
        try:
            size = cell_size(arch, backbone)
            model = getattr(sm, arch)(
                backbone,
                encoder_weights=None,
                classes=CLASSES,
                activation="pixel_softmax",
                input_shape=(size, size, 3),
            )
            stage = "train"
            # Plain SGD keeps no optimizer slots: the saved files are a third of Adam's, which is
            # most of a cell's time for the large backbones (senet154: 1.5 GB per file with Adam).
            model.compile("sgd", loss="pixel_cce", metrics=[PixelMeanIoU(CLASSES), PixelAccuracy()])
            images, masks = make_scenes(BATCH, size, seed=0)
            model.train_on_batch(images, masks.astype("int32"))
            # The model called on the batch (inference mode): predict() would trace a function
            # for one batch, several seconds of CPU for the large backbones.
            predictions = np.asarray(model(images, training=False))
            stage = "save"
            base = os.path.join(folder, f"{arch}_{backbone}")
            for extension in FORMATS:
                model.save(base + extension)
            np.savez(base + ".npz", images=images, predictions=predictions)
            result = cell_result(cell, "ok", "", time.time() - start)
        except Exception as error:  # a cell's failure is its result, never the end of the run
            result = cell_result(
                cell, "error", f"{stage}: {short_error(error)}", time.time() - start
            )
        yield result
        keras.backend.clear_session()


def reload_cells(spec, folder):
    """Worker (a fresh process): reload every saved file in safe mode, compare predictions.

    Args:
        spec: ``{"cells": [[arch, backbone], ...]}``, as built by :func:`build_cells`.
        folder: Where :func:`build_cells` saved them.

    Yields:
        One result per cell that has its files.
    """
    import numpy as np

    from ..flavor import KERAS_FLAVOR, keras

    for arch, backbone in spec["cells"]:
        cell = (KERAS_FLAVOR, arch, backbone)
        base = os.path.join(folder, f"{arch}_{backbone}")
        if not os.path.exists(base + ".npz"):
            continue
        start = time.time()
        reference = np.load(base + ".npz")
        problems = []
        for extension in FORMATS:
            try:
                model = keras.models.load_model(base + extension, safe_mode=True)
                predictions = np.asarray(model(reference["images"], training=False))
                difference = float(np.max(np.abs(predictions - reference["predictions"])))
                if not difference <= TOLERANCE:
                    problems.append(f"reload {extension}: predictions differ by {difference:.3g}")
            except Exception as error:
                problems.append(f"reload {extension}: {short_error(error)}")
            keras.backend.clear_session()
        status = "error" if problems else "ok"
        yield cell_result(cell, status, "; ".join(problems), time.time() - start)
