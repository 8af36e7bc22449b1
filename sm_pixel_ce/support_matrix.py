"""The support matrix (``sm-pixel-ce matrix``): segmentation_models architectures x backbones.

Each cell is one architecture on one backbone in one Keras flavour: build (``encoder_weights=None``,
``activation="pixel_softmax"``), train one step with ``pixel_cce``, save as ``.keras`` and ``.h5``,
reload both in a *fresh* process with ``safe_mode=True`` and no ``custom_objects``, and compare
predictions. A cell is ``ok`` only when all of that held; otherwise it carries the reason.

The flavour is fixed per process, so the work runs in worker processes (``jobs`` at a time),
each building a few cells and then reloading all their files in one more process (one TensorFlow
import for many files). Results are appended to a JSON-lines file, so a matrix can be run in
parts (``resume`` skips cells already there) and the Markdown table always shows every cell:
``ok``, its reason, or ``not run``.
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from .input_sizes import ARCHITECTURES, MINIMUM_SIZES, size_requirement

FLAVORS = ("keras3", "tf_keras")
FLAVOR_TITLES = {"keras3": "Keras 3", "tf_keras": "tf_keras"}
#: Square input per architecture: 64 px for the encoder-decoders (multiples of 32 work); PSPNet
#: pools its /8 features into 1, 2, 3 and 6 bins, so 48 (6 * 8) is its smallest size.
INPUT_SIZES = {"Unet": 64, "FPN": 64, "Linknet": 64, "PSPNet": 48}
CLASSES = 7
BATCH = 2
#: Largest |difference| of predictions before and after a reload that still counts as equal.
TOLERANCE = 1e-5
FORMATS = (".keras", ".h5")
#: The fast subset run by the default tests (``--subset fast``).
#: In the reason of a cell whose worker process died before answering; --resume runs it again.
UNFINISHED = "not finished"

FAST_SUBSET = (
    ("Unet", "resnet18"),
    ("Unet", "seresnet18"),
    ("Unet", "resnext50"),
    ("Unet", "mobilenetv2"),
    ("Unet", "efficientnetb0"),
    ("Unet", "vgg16"),
    ("FPN", "resnet18"),
    ("Linknet", "mobilenetv2"),
    ("PSPNet", "resnet18"),
)


def choose_cells(archs=ARCHITECTURES, backbones="all", subset=None):
    """The (architecture, backbone) cells to run.

    Args:
        archs: Architecture names. Defaults to all four.
        backbones: Backbone names, or ``"all"`` for every segmentation_models backbone. Defaults to
            ``"all"``.
        subset: ``"fast"`` for :data:`FAST_SUBSET` instead of ``archs`` x ``backbones``. Defaults to
            None.

    Returns:
        A list of ``(arch, backbone)``.

    Raises:
        ValueError: An unknown architecture or backbone.

    Example:
        >>> choose_cells(["Unet"], ["resnet18"])
        [('Unet', 'resnet18')]
    """
    if subset == "fast":
        return list(FAST_SUBSET)
    if subset is not None:
        raise ValueError(f"unknown subset. Expected 'fast' or None. Received: subset={subset!r}")
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        raise ValueError(
            f"unknown architecture {unknown}. Expected some of {list(ARCHITECTURES)}. "
            f"Received: archs={list(archs)}"
        )
    known = list_backbones()
    chosen = known if backbones == "all" else list(backbones)
    unknown = [b for b in chosen if b not in known]
    if unknown:
        raise ValueError(
            f"unknown backbone(s) {unknown}. Expected some of {known}. Received: backbones={chosen}"
        )
    return [(a, b) for a in archs for b in chosen]


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
        cells: ``(arch, backbone)`` pairs, e.g. from :func:`choose_cells`.
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
            :mod:`sm_pixel_ce.exporting.matrix`; results go to the file named by
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
    done = set()
    if resume and os.path.exists(results_path):
        # A cell whose worker died (out of memory, a crash) has no answer yet: it runs again.
        done = {
            (r["flavor"], r["arch"], r["backbone"])
            for r in read_results(results_path)
            if UNFINISHED not in r["reason"]
        }
    todo = (
        []
        if table_only
        else [(f, a, b) for f in flavors for a, b in cells if (f, a, b) not in done]
    )
    if todo:
        with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_matrix_") as tmp:
            run_matrix(
                todo, workdir or tmp, results_path, jobs=jobs, chunk=chunk, progress=progress
            )
    from .exporting.matrix import export_results_path, read_export_results, run_export_matrix

    exports_path = export_results_path(results_path)
    exported = []
    if export_formats and not table_only:
        finished = {
            (r["flavor"], r["arch"], r["backbone"], r["format"])
            for r in (read_export_results(exports_path) if resume else [])
            if UNFINISHED not in r["reason"]
        }
        to_export = [
            (f, a, b)
            for f in flavors
            for a, b in cells
            if any((f, a, b, x) not in finished for x in export_formats)
        ]
        if to_export:
            exported = run_export_matrix(
                to_export, exports_path, export_formats, chunk=chunk, progress=progress
            )
    results = read_results(results_path) if os.path.exists(results_path) else []
    exports = read_export_results(exports_path)
    backbones = _all_backbones(results, cells)
    if out:
        with open(out, "w") as handle:
            handle.write(render_document(results, backbones=backbones, exports=exports))
    ran = set(todo)
    all_ok = all(
        r["status"] == "ok" for r in results if (r["flavor"], r["arch"], r["backbone"]) in ran
    ) and all(r["status"] == "ok" for r in exported)
    table = render_table(results, backbones=backbones) + _export_section(exports, backbones)
    return table, all_ok


def list_backbones():
    """``sm.Backbones.models_names()``: every backbone segmentation_models offers.

    Returns:
        The backbone names, in segmentation_models' order.
    """
    from sm_pixel_ce import supported_backbones

    return supported_backbones()


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
    chunks = []
    for flavor in FLAVORS:
        mine = [c for c in cells if c[0] == flavor]
        chunks += [mine[i : i + chunk] for i in range(0, len(mine), chunk)]
    lock = threading.Lock()
    results = []
    start = time.time()

    def record(result):
        with lock:
            results.append(result)
            with open(results_path, "a") as handle:
                handle.write(json.dumps(result) + "\n")
            shown = "ok" if result["status"] == "ok" else result["reason"][:100]
            print(
                f"[{len(results)}/{len(cells)} {time.time() - start:.0f}s] {result['flavor']} "
                f"{result['arch']} {result['backbone']}: {shown} ({result['seconds']:.1f} s)",
                file=progress,
                flush=True,
            )

    def run_chunk(index, cells_of_chunk):
        folder = os.path.join(workdir, f"chunk{index}")
        os.makedirs(folder, exist_ok=True)
        for result in _run_chunk(cells_of_chunk, folder):
            record(result)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(run_chunk, i, c) for i, c in enumerate(chunks)]:
            future.result()
    return results


def _env(flavor):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    env.pop("TF_USE_LEGACY_KERAS", None)
    if flavor == "tf_keras":
        env["TF_USE_LEGACY_KERAS"] = "1"
    return env


def _run_chunk(cells, folder):
    """Build/train/save in one process, reload in another; yield one final result per cell."""
    flavor = cells[0][0]
    spec = os.path.join(folder, "cells.json")
    with open(spec, "w") as handle:
        json.dump([{"arch": a, "backbone": b, "flavor": f} for f, a, b in cells], handle)
    built = _worker(["build", spec, folder], flavor, folder)
    finished = {}
    for cell in cells:
        key = (cell[1], cell[2])
        result = built.get(key)
        if result is None:
            finished[key] = _result(
                cell,
                "error",
                f"{UNFINISHED}: the build process exited early (crash or out of memory)",
                0.0,
            )
        elif result["status"] != "ok":
            finished[key] = result
    to_reload = [c for c in cells if (c[1], c[2]) not in finished]
    if to_reload:
        reloaded = _worker(["reload", spec, folder], flavor, folder)
        for cell in to_reload:
            key = (cell[1], cell[2])
            build, reload = built[key], reloaded.get(key)
            if reload is None:
                reload = _result(
                    cell, "error", f"reload: {UNFINISHED} (the reload process exited early)", 0.0
                )
            seconds = build["seconds"] + reload["seconds"]
            finished[key] = {**reload, "seconds": round(seconds, 1)}
    for _, arch, backbone in cells:  # the saved models: up to 1.5 GB each (senet154)
        for extension in (*FORMATS, ".npz"):
            path = os.path.join(folder, f"{arch}_{backbone}{extension}")
            if os.path.exists(path):
                os.remove(path)
    for cell in cells:
        yield finished[(cell[1], cell[2])]


def _worker(argv, flavor, folder):
    command = [sys.executable, "-m", "sm_pixel_ce.support_matrix", *argv]
    with open(os.path.join(folder, f"{argv[0]}.log"), "w") as log:
        process = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=log, text=True, env=_env(flavor)
        )
    results = {}
    for line in process.stdout.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
            results[(result["arch"], result["backbone"])] = result
    return results


def _result(cell, status, reason, seconds):
    flavor, arch, backbone = cell
    return {
        "flavor": flavor,
        "arch": arch,
        "backbone": backbone,
        "status": status,
        "reason": reason,
        "seconds": round(seconds, 1),
    }


def _short(error):
    """One line naming the error: its type and the first line of its message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(error).__name__}: {text}"[:300]


def cell_size(arch, backbone):
    """A cell's square input: :data:`INPUT_SIZES`, raised to what the backbone accepts
    (inceptionv3: 96)."""
    return max(INPUT_SIZES[arch], size_requirement(arch, backbone)[1])


def _build_cells(spec, folder):
    """Worker: build, train one step, save both formats and the reference predictions."""
    import numpy as np
    import segmentation_models as sm

    import sm_pixel_ce
    from sm_pixel_ce.data.scenes import make_scenes
    from sm_pixel_ce.flavor import KERAS_FLAVOR, keras

    for entry in spec:
        cell = (KERAS_FLAVOR, entry["arch"], entry["backbone"])
        start = time.time()
        stage = "build"
        try:
            size = cell_size(entry["arch"], entry["backbone"])
            model = getattr(sm, entry["arch"])(
                entry["backbone"],
                encoder_weights=None,
                classes=CLASSES,
                activation="pixel_softmax",
                input_shape=(size, size, 3),
            )
            stage = "train"
            # Plain SGD keeps no optimizer slots: the saved files are a third of Adam's, which is
            # most of a cell's time for the large backbones (senet154: 1.5 GB per file with Adam).
            model.compile(
                "sgd",
                loss="pixel_cce",
                metrics=[sm_pixel_ce.PixelMeanIoU(CLASSES), sm_pixel_ce.PixelAccuracy()],
            )
            images, masks = make_scenes(BATCH, size, seed=0)
            model.train_on_batch(images, masks.astype("int32"))
            predictions = model.predict(images, verbose=0)
            stage = "save"
            base = os.path.join(folder, f"{entry['arch']}_{entry['backbone']}")
            for extension in FORMATS:
                model.save(base + extension)
            np.savez(base + ".npz", images=images, predictions=predictions)
            result = _result(cell, "ok", "", time.time() - start)
        except Exception as error:  # a cell's failure is its result, never the end of the run
            result = _result(cell, "error", f"{stage}: {_short(error)}", time.time() - start)
        print(json.dumps(result), flush=True)
        keras.backend.clear_session()


def _reload_cells(spec, folder):
    """Worker (a fresh process): reload every saved file in safe mode, compare predictions."""
    import numpy as np

    import sm_pixel_ce  # noqa: F401  (what a user's fresh process does before loading)
    from sm_pixel_ce.flavor import KERAS_FLAVOR, keras

    for entry in spec:
        cell = (KERAS_FLAVOR, entry["arch"], entry["backbone"])
        base = os.path.join(folder, f"{entry['arch']}_{entry['backbone']}")
        if not os.path.exists(base + ".npz"):
            continue
        start = time.time()
        reference = np.load(base + ".npz")
        problems = []
        for extension in FORMATS:
            try:
                model = keras.models.load_model(base + extension, safe_mode=True)
                difference = float(
                    np.max(
                        np.abs(
                            model.predict(reference["images"], verbose=0) - reference["predictions"]
                        )
                    )
                )
                if not difference <= TOLERANCE:
                    problems.append(f"reload {extension}: predictions differ by {difference:.3g}")
            except Exception as error:
                problems.append(f"reload {extension}: {_short(error)}")
            keras.backend.clear_session()
        status = "error" if problems else "ok"
        print(
            json.dumps(_result(cell, status, "; ".join(problems), time.time() - start)), flush=True
        )


def read_results(path):
    """The last result of each cell in a JSON-lines results file.

    Args:
        path: The file written by :func:`run_matrix`.

    Returns:
        A list of result dicts.
    """
    latest = {}
    with open(path) as handle:
        for line in handle:
            if line.strip():
                result = json.loads(line)
                latest[(result["flavor"], result["arch"], result["backbone"])] = result
    return list(latest.values())


def _all_backbones(results, cells):
    names = []
    for _, backbone in cells:
        if backbone not in names:
            names.append(backbone)
    for result in results:
        if result["backbone"] not in names:
            names.append(result["backbone"])
    return names


def render_table(results, backbones, archs=ARCHITECTURES):
    """The support matrix as Markdown: one row per architecture x backbone, one column per flavour.

    Args:
        results: Result dicts (``flavor``, ``arch``, ``backbone``, ``status``, ``reason``,
            ``seconds``).
        backbones: Backbone names, in row order.
        archs: Architectures, in row order. Defaults to all four.

    Returns:
        The Markdown text: counts per flavour, then the table; unrun cells read ``not run``.
    """
    by_cell = {(r["flavor"], r["arch"], r["backbone"]): r for r in results}
    total = len(archs) * len(backbones)
    lines = ["| Flavour | ok | failing | not run | total |", "|---|---|---|---|---|"]
    for flavor in FLAVORS:
        cells = [by_cell.get((flavor, a, b)) for a in archs for b in backbones]
        ok = sum(1 for c in cells if c and c["status"] == "ok")
        failing = sum(1 for c in cells if c and c["status"] != "ok")
        lines.append(
            f"| {FLAVOR_TITLES[flavor]} | {ok} | {failing} | {total - ok - failing} | {total} |"
        )
    lines += [
        "",
        "| Architecture | Backbone | " + " | ".join(FLAVOR_TITLES[f] for f in FLAVORS) + " |",
    ]
    lines.append("|---|---|" + "---|" * len(FLAVORS))
    for arch in archs:
        for backbone in backbones:
            shown = []
            for flavor in FLAVORS:
                result = by_cell.get((flavor, arch, backbone))
                if result is None:
                    shown.append("not run")
                elif result["status"] == "ok":
                    shown.append(f"ok ({result['seconds']:.0f} s)")
                else:
                    reason = result["reason"].replace("|", "\\|")
                    shown.append(f"{reason} ({result['seconds']:.0f} s)")
            lines.append(f"| {arch} | {backbone} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def _versions():
    from importlib import metadata

    found = []
    for package in ("segmentation-models", "tensorflow", "keras", "tf-keras"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def render_document(results, backbones, exports=()):
    """The support matrix as a Markdown page: what a cell means, how to rerun, then the table.

    Args:
        results: Result dicts, as for :func:`render_table`.
        backbones: Backbone names, in row order.
        exports: Export result dicts, as for :func:`render_table`. Defaults to none.

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
    return header + render_table(results, backbones) + _export_section(exports, backbones)


def _export_section(exports, backbones):
    if not exports:
        return ""
    from .exporting.matrix import render_export_section

    return "\n" + render_export_section(exports, backbones)


def _main(argv):
    command, spec_path, folder = argv
    with open(spec_path) as handle:
        spec = json.load(handle)
    {"build": _build_cells, "reload": _reload_cells}[command](spec, folder)


if __name__ == "__main__":
    _main(sys.argv[1:])
