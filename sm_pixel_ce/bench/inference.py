"""``predict`` measured: peak memory on a large image, tiled throughput against one whole-image
call, and how often tiled and whole-image predictions agree.

* :func:`measure_predict_run` — ``sm-pixel-ce predict`` in a child process on one generated
  image: its peak resident set (the child's own ``VmHWM``, see
  :func:`~sm_pixel_ce.bench.timing.run_command_line`) and wall time,
  and the job's own time (model loading included) from its last line;
* :func:`tiled_throughput` — :func:`~sm_pixel_ce.inference.tiling.predict_image` on one image,
  whole and in tiles, interleaved (whole, tiles, tiles, whole, ...), as medians;
* :func:`tiled_agreement` — the fraction of pixels whose argmax is the same in tiled and
  whole-image predictions of a model trained a little (:func:`train_scene_model`), on a mosaic
  of generated scenes at the scale it was trained on;
* :func:`run_inference_bench` — all three, :func:`format_inference_bench` — Markdown tables.

Every model is a Unet resnet18 of 7 classes built with ``input_shape=(None, None, 3)`` and
``encoder_weights=None``.
"""

import os
import re
import statistics
import tempfile
import time

import numpy as np

from .output import machine, write_json
from .timing import run_command_line

#: ``(height, width)`` of the large image whose peak memory is measured.
LARGE_IMAGE = (3000, 4000)
#: Its peak resident set must stay under this (MB).
RSS_TARGET_MB = 2048
#: Tiled throughput at equal pixels (overlap 0) against one whole-image call, at least.
THROUGHPUT_TARGET = 0.8
#: Fraction of pixels whose class agrees between tiled and whole-image predictions, at least.
AGREEMENT_TARGET = 0.99
CLASSES = 7


def _unet(classes=CLASSES):
    import segmentation_models as sm

    return sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=classes,
        activation="pixel_softmax",
        input_shape=(None, None, 3),
    )


def scene_mosaic(rows, columns, side=128, seed=99):
    """``rows`` x ``columns`` generated scenes of ``side`` px side by side: ``(image, mask)``,
    float32 ``(rows*side, columns*side, 3)`` and uint8 ``(rows*side, columns*side)``; shapes keep
    the scale of ``side`` px scenes however large the mosaic."""
    from ..data.scenes import make_scenes

    images, masks = make_scenes(rows * columns, side, seed=seed)
    image = images.reshape(rows, columns, side, side, 3).transpose(0, 2, 1, 3, 4)
    mask = masks.reshape(rows, columns, side, side).transpose(0, 2, 1, 3)
    return (
        np.ascontiguousarray(image.reshape(rows * side, columns * side, 3)),
        np.ascontiguousarray(mask.reshape(rows * side, columns * side)),
    )


def write_large_image(path, height, width, side=200):
    """Write an 8-bit RGB PNG of ``height`` x ``width`` px: generated scenes of ``side`` px,
    made a row at a time so that writing it takes little memory."""
    from PIL import Image

    columns = -(-width // side)
    rows = []
    for row in range(-(-height // side)):
        image, _ = scene_mosaic(1, columns, side, seed=row)
        rows.append((image[:, :width] * 255).round().astype(np.uint8))
    Image.fromarray(np.concatenate(rows)[:height]).save(path)
    return path


def measure_predict_run(model_path, image_path, out, log_path, extra=()):
    """Run ``sm-pixel-ce predict MODEL IMAGE --out OUT`` in a child process and measure it.

    Returns:
        ``{"peak_rss_mb", "wall_s", "cpu_s", "job_s", "returncode"}``: ``job_s`` is the time the
        job reports (model loading, reading, predicting and writing; not Python's start and
        TensorFlow's import), None when the run failed.
    """
    command = ["predict", model_path, image_path]
    command += ["--out", out, *extra]
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    result = run_command_line(command, log_path, env={"PYTHONPATH": path})
    with open(log_path) as log:
        found = re.findall(r"wrote \d+ mask\(s\) to .* in ([\d.]+) s", log.read())
    return {**result, "job_s": float(found[-1]) if found else None}


def predict_memory(workdir, size=LARGE_IMAGE, progress=None):
    """Peak RSS and time of ``predict`` on a generated ``size`` image and, for the baseline,
    on a 256 x 256 one (TensorFlow, the model, one small call).

    Returns:
        ``{"baseline": run, "large": run, "height", "width"}``, runs as
        :func:`measure_predict_run`.
    """
    say = progress or (lambda line: None)
    height, width = size
    model_path = os.path.join(workdir, "unet_resnet18.keras")
    if not os.path.isfile(model_path):
        _unet().save(model_path)
    small = write_large_image(os.path.join(workdir, "small.png"), 256, 256)
    large = os.path.join(workdir, f"large_{width}x{height}.png")
    if not os.path.isfile(large):
        say(f"inference: writing a {width}x{height} image to {large}")
        write_large_image(large, height, width)
    runs = {}
    for name, image in (("baseline", small), ("large", large)):
        out = os.path.join(workdir, f"out_{name}")
        runs[name] = measure_predict_run(model_path, image, out, out + ".log")
        run = runs[name]
        say(
            f"inference: predict {name}: peak RSS {run['peak_rss_mb']:.0f} MB, wall "
            f"{run['wall_s']:.1f} s, job {run['job_s'] or float('nan'):.1f} s "
            f"(exit {run['returncode']})"
        )
    return {"baseline": runs["baseline"], "large": runs["large"], "height": height, "width": width}


def _network_pixels(predictor, height, width, tile, overlap):
    from ..inference.tiling import plan, tile_starts

    how, detail = plan(predictor, height, width, tile, overlap)
    if how == "whole":
        multiple = predictor.multiple
        return (-(-height // multiple) * multiple) * (-(-width // multiple) * multiple), 1
    side, stride = detail
    tiles = len(tile_starts(height, side, stride)) * len(tile_starts(width, side, stride))
    return tiles * side * side, tiles


def tiled_throughput(
    model=None, side=1024, tile=512, overlaps=(0.0, 0.25), repeats=5, batch_size=4
):
    """Pixels per second of one ``side`` x ``side`` image predicted whole and in tiles.

    The calls are interleaved (whole, tiles at each overlap, whole, ...) after one untimed
    round; each figure is a median over ``repeats`` rounds, and each ratio the median of the
    rounds' ratios (tiled pixels/s over whole pixels/s).

    Args:
        model: A Keras model or predictor; None for an untrained Unet resnet18. Defaults to None.
        side, tile, overlaps, repeats, batch_size: As above. Defaults to 1024, 512,
            ``(0.0, 0.25)``, 5, 4.

    Returns:
        ``{"side", "tile", "batch_size", "repeats", "cases": [{"case", "overlap", "tiles",
        "network_pixels", "seconds", "image_mpx_s", "network_mpx_s", "ratio"}]}``, the whole
        image first (ratio 1).
    """
    from ..inference.predictor import load_predictor
    from ..inference.tiling import predict_image

    predictor = load_predictor(model if model is not None else _unet())
    image, _ = scene_mosaic(side // 128 + 1, side // 128 + 1)
    image = np.ascontiguousarray(image[:side, :side])
    cases = {"whole": dict(tile=None, overlap=0.25)}
    for overlap in overlaps:
        cases[f"tiles {tile}, overlap {overlap:g}"] = dict(tile=tile, overlap=overlap)
    times = {name: [] for name in cases}
    for round_ in range(repeats + 1):
        for name, kwargs in cases.items():
            started = time.perf_counter()
            predict_image(predictor, image, batch_size=batch_size, **kwargs)
            if round_:
                times[name].append(time.perf_counter() - started)
    rows = []
    for name, kwargs in cases.items():
        network, tiles = _network_pixels(predictor, side, side, kwargs["tile"], kwargs["overlap"])
        seconds = statistics.median(times[name])
        ratios = [w / t for w, t in zip(times["whole"], times[name])]
        rows.append(
            {
                "case": name,
                "overlap": None if kwargs["tile"] is None else kwargs["overlap"],
                "tiles": tiles,
                "network_pixels": network,
                "seconds": seconds,
                "image_mpx_s": side * side / seconds / 1e6,
                "network_mpx_s": network / seconds / 1e6,
                "ratio": statistics.median(ratios),
            }
        )
    return {"side": side, "tile": tile, "batch_size": batch_size, "repeats": repeats, "cases": rows}


def train_scene_model(epochs=4, images=256, size=128, batch_size=8, seed=0):
    """A Unet resnet18 (``None`` sizes, random initial weights) trained ``epochs`` epochs on
    ``images`` generated scenes of ``size`` px with ``pixel_cce``; BatchNormalization momentum
    0.9 as ``compare`` trains, so that its moving statistics settle within a few epochs.

    Returns:
        ``(model, seconds)``.
    """
    from ..compare.variants import BN_MOMENTUM
    from ..data.scenes import make_scenes
    from ..flavor import keras

    keras.utils.set_random_seed(seed)
    model = _unet()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    model.compile(keras.optimizers.Adam(1e-3), loss="pixel_cce")
    x, y = make_scenes(images, size, seed=seed)
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return model, time.perf_counter() - started


def tiled_agreement(model, grid=4, side=128, cases=((256, 0.25), (256, 0.0), (128, 0.25))):
    """How often tiled and whole-image predictions give the same class.

    The image is a ``grid`` x ``grid`` mosaic of generated scenes of ``side`` px (512 x 512 by
    default: predicted whole), unseen in training (another seed).

    Returns:
        ``{"height", "width", "whole_accuracy", "cases": [{"tile", "overlap", "agreement",
        "accuracy", "max_difference"}]}``: agreement with the whole-image argmax, pixel accuracy
        against the mosaic's masks, largest |probability difference|.
    """
    from ..inference.tiling import predict_image

    image, truth = scene_mosaic(grid, grid, side)
    whole = predict_image(model, image)
    labels = whole.argmax(-1)
    rows = []
    for tile, overlap in cases:
        tiled = predict_image(model, image, tile=tile, overlap=overlap)
        rows.append(
            {
                "tile": tile,
                "overlap": overlap,
                "agreement": float(np.mean(tiled.argmax(-1) == labels)),
                "accuracy": float(np.mean(tiled.argmax(-1) == truth)),
                "max_difference": float(np.max(np.abs(tiled - whole))),
            }
        )
    return {
        "height": image.shape[0],
        "width": image.shape[1],
        "whole_accuracy": float(np.mean(labels == truth)),
        "cases": rows,
    }


def run_inference_bench(
    workdir=None, epochs=4, repeats=5, large=LARGE_IMAGE, json_path=None, progress=None
):
    """Measure ``predict``: memory on a large image, tiled throughput, tiled agreement.

    Args:
        workdir: Where the model file, the images and the outputs go (kept); None for a
            temporary folder removed afterwards. Defaults to None.
        epochs: Training epochs of the agreement model. Defaults to 4.
        repeats: Timed rounds of the throughput. Defaults to 5.
        large: ``(height, width)`` of the memory run. Defaults to ``(3000, 4000)``.
        json_path: Write the returned dict here as JSON. Defaults to None.
        progress: Callable given one line of progress text. Defaults to None.

    Returns:
        ``{"config", "memory", "throughput", "agreement", "targets", "elapsed_s"}``; ``targets``
        lists ``{"name", "value", "target", "met"}``.

    Example:
        >>> result = run_inference_bench()
        >>> print(format_inference_bench(result))
    """
    import shutil

    from ..flavor import KERAS_FLAVOR

    say = progress or (lambda line: None)
    started = time.perf_counter()
    root = workdir or tempfile.mkdtemp(prefix="sm-pixel-ce-inference-")
    os.makedirs(root, exist_ok=True)
    try:
        memory = predict_memory(root, large, say)
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    say(f"inference: throughput, {repeats} interleaved rounds")
    throughput = tiled_throughput(repeats=repeats)
    for row in throughput["cases"]:
        say(
            f"  {row['case']}: {row['seconds']:.2f} s, {row['image_mpx_s']:.2f} Mpx/s of the "
            f"image, ratio {row['ratio']:.2f}"
        )
    say(f"inference: training a Unet resnet18 {epochs} epoch(s) on generated scenes")
    model, train_s = train_scene_model(epochs)
    agreement = tiled_agreement(model)
    agreement["train_s"], agreement["epochs"] = train_s, epochs
    for row in agreement["cases"]:
        say(f"  tiles {row['tile']}, overlap {row['overlap']:g}: agreement {row['agreement']:.5f}")
    equal = next(r for r in throughput["cases"] if r["overlap"] == 0.0)
    peak = memory["large"]["peak_rss_mb"]
    targets = [
        {
            "name": f"predict peak RSS on {large[1]}x{large[0]} (MB)",
            "value": peak,
            "target": f"<= {RSS_TARGET_MB}",
            "met": memory["large"]["returncode"] == 0 and peak <= RSS_TARGET_MB,
        },
        {
            "name": "tiled/whole throughput at equal pixels",
            "value": equal["ratio"],
            "target": f">= {THROUGHPUT_TARGET}",
            "met": equal["ratio"] >= THROUGHPUT_TARGET,
        },
        {
            "name": "tiled vs whole argmax agreement (worst case)",
            "value": min(r["agreement"] for r in agreement["cases"]),
            "target": f">= {AGREEMENT_TARGET}",
            "met": min(r["agreement"] for r in agreement["cases"]) >= AGREEMENT_TARGET,
        },
    ]
    result = {
        "config": {
            "model": "Unet resnet18, 7 classes, input_shape=(None, None, 3), random init",
            "flavor": KERAS_FLAVOR,
            **machine(),
        },
        "memory": memory,
        "throughput": throughput,
        "agreement": agreement,
        "targets": targets,
        "elapsed_s": time.perf_counter() - started,
    }
    write_json(result, json_path)
    return result


def format_inference_bench(result):
    """The figures of :func:`run_inference_bench` as Markdown tables."""
    memory, throughput, agreement = result["memory"], result["throughput"], result["agreement"]
    config = result["config"]
    lines = [
        f"`sm-pixel-ce predict` ({config['model']}; {config['flavor']}, "
        f"{config['cpu_count']} CPU cores)",
        "",
        "| image | peak RSS | wall time | job time | exit |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in (
        ("baseline", "256x256"),
        ("large", f"{memory['width']}x{memory['height']}"),
    ):
        run = memory[name]
        job = "n/a" if run["job_s"] is None else f"{run['job_s']:.1f} s"
        lines.append(
            f"| {label} | {run['peak_rss_mb']:.0f} MB | {run['wall_s']:.1f} s | {job} | "
            f"{run['returncode']} |"
        )
    side = throughput["side"]
    lines += [
        "",
        f"One {side}x{side} image, whole and in tiles (batch {throughput['batch_size']}), "
        f"medians of {throughput['repeats']} interleaved rounds:",
        "",
        "| prediction | tiles | network pixels | time | image Mpx/s | network Mpx/s | vs whole |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in throughput["cases"]:
        lines.append(
            f"| {row['case']} | {row['tiles']} | {row['network_pixels'] / side / side:.2f}x | "
            f"{row['seconds']:.2f} s | {row['image_mpx_s']:.2f} | {row['network_mpx_s']:.2f} | "
            f"{row['ratio']:.2f}x |"
        )
    lines += [
        "",
        f"Tiled vs whole-image prediction, {agreement['width']}x{agreement['height']} mosaic of "
        f"unseen 128 px scenes, model trained {agreement['epochs']} epochs "
        f"({agreement['train_s']:.0f} s); whole-image pixel accuracy "
        f"{agreement['whole_accuracy']:.4f}:",
        "",
        "| tiles | overlap | argmax agreement | pixel accuracy | largest prob. difference |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in agreement["cases"]:
        lines.append(
            f"| {row['tile']} | {row['overlap']:g} | {100 * row['agreement']:.3f} % | "
            f"{row['accuracy']:.4f} | {row['max_difference']:.3f} |"
        )
    lines += ["", "| target | value | wanted | met |", "|---|---:|---:|---|"]
    for target in result["targets"]:
        lines.append(
            f"| {target['name']} | {target['value']:.4g} | {target['target']} | "
            f"{'yes' if target['met'] else 'no'} |"
        )
    return "\n".join(lines)
