"""Peak memory and time of ``sm-pixel-ce compare`` against the number of images.

Every point is one ``compare`` run on a generated folder of PNGs (written here, never shipped),
in its own process: its peak resident set (the child's own ``VmHWM``, see
:func:`~sm_pixel_ce.bench.timing.run_command_line`) and its wall time are measured from outside,
its training time read from its ``report.json``. Streaming from disk means the peak resident set
stays flat as the folder grows, and the training time grows linearly with it.
"""

import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from .output import machine, write_json
from .timing import run_command_line

#: ``(images, side)`` of the default points: 500, 2,000 and 8,000 images at 128 px, 2,000 at 256.
DEFAULT_POINTS = ((500, 128), (2000, 128), (8000, 128), (2000, 256))


def parse_points(text, size=128):
    """``"500,2000,8000,2000x256"`` -> ``((500, 128), (2000, 128), (8000, 128), (2000, 256))``.

    Raises:
        ValueError: A point that is not ``COUNT`` or ``COUNTxSIDE`` with COUNT >= 4 and SIDE a
            positive multiple of 32.
    """
    points = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        count, separator, side = part.partition("x")
        try:
            point = (int(count), int(side) if separator else size)
        except ValueError:
            point = None
        if point is None or point[0] < 4 or point[1] < 32 or point[1] % 32:
            raise ValueError(
                "compare scaling points must be COUNT or COUNTxSIDE, COUNT >= 4 and SIDE a "
                f"multiple of 32, comma-separated, e.g. 500,2000,2000x256. Received: {text!r}"
            )
        points.append(point)
    if not points:
        raise ValueError(f"compare scaling needs at least one point. Received: {text!r}")
    return tuple(points)


def write_scene_folder(folder, count, size, seed=0, chunk=100, write_image=None):
    """Write ``count`` generated scenes as ``folder/images/NNNNN.png`` and grey
    ``folder/masks/NNNNN.png`` (7 classes), ``chunk`` at a time, so that writing takes little
    memory too. A folder already holding ``count`` pairs is kept as it is.

    Args:
        folder, count, size, seed, chunk: As above.
        write_image: ``write_image(image, path_without_suffix)`` writes one float32 ``(S, S, 3)``
            scene in [0, 1] in another format; None for 8-bit PNG. Defaults to None.

    Returns:
        ``folder``.
    """
    from PIL import Image

    from ..data.scenes import make_scenes

    images_dir, masks_dir = os.path.join(folder, "images"), os.path.join(folder, "masks")
    if os.path.isdir(masks_dir) and len(os.listdir(masks_dir)) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(images_dir)
    os.makedirs(masks_dir)
    for start in range(0, count, chunk):
        images, masks = make_scenes(min(chunk, count - start), size=size, seed=seed + start)
        for i, (image, mask) in enumerate(zip(images, masks)):
            name = f"{start + i:05d}"
            if write_image is None:
                Image.fromarray((image * 255).round().astype(np.uint8)).save(
                    os.path.join(images_dir, name + ".png")
                )
            else:
                write_image(image, os.path.join(images_dir, name))
            Image.fromarray(mask).save(os.path.join(masks_dir, name + ".png"))
    return folder


def measure_compare_run(folder, size, out, backbone, epochs, batch_size, variants, log_path):
    """Run ``sm-pixel-ce compare`` on ``folder`` in a child process and measure it.

    Returns:
        ``{"peak_rss_mb", "wall_s", "cpu_s", "train_s", "steady_s", "validation_s",
        "train_images", "val_images", "returncode"}``: ``cpu_s`` the whole run's CPU seconds,
        ``train_s`` is the first variant's ``fit`` time (training
        and its per-epoch validation passes), ``steady_s`` its first epoch's training after the
        first batch (which traces the graph), ``validation_s`` that epoch's validation pass;
        None when the run failed.
    """
    command = [
        "compare",
        "--data",
        folder,
        "--classes",
        "7",
        "--size",
        str(size),
        "--epochs",
        str(epochs),
        "--batch-size",
        str(batch_size),
        "--variants",
        ",".join(variants),
        "--backbone",
        backbone,
        "--out",
        out,
    ]
    result = {
        **run_command_line(command, log_path),
        "train_s": None,
        "steady_s": None,
        "validation_s": None,
        "train_images": None,
        "val_images": None,
    }
    report_path = os.path.join(out, "report.json")
    if result["returncode"] == 0 and os.path.isfile(report_path):
        with open(report_path) as f:
            report = json.load(f)
        first = report["results"][0]
        result["train_s"] = first["seconds"]
        # The first epoch without its first batch (tracing): what grows with the images.
        result["steady_s"] = first["epoch_seconds"][0] - first["first_batch_seconds"][0]
        result["validation_s"] = first["validation_seconds"][0]
        result["train_images"] = report["config"]["train_images"]
        result["val_images"] = report["config"]["val_images"]
    return result


def epoch_time_fit(points):
    """Least-squares line ``epoch s = intercept + per_image * training images`` through the
    successful points of the most measured side.

    A constant part (the retrace for the last, smaller batch; warm-up) sits in the intercept; a
    linear epoch time shows as small residuals.

    Returns:
        ``{"size", "ms_per_image", "intercept_s", "max_residual_pct"}``, or None with fewer than
        two such points.
    """
    ok = [p for p in points if p["returncode"] == 0 and p.get("steady_s")]
    sizes = [p["size"] for p in ok]
    if not sizes:
        return None
    size = max(set(sizes), key=sizes.count)
    same = [p for p in ok if p["size"] == size]
    if len({p["train_images"] for p in same}) < 2:
        return None
    x = np.array([p["train_images"] for p in same], float)
    y = np.array([p["steady_s"] for p in same], float)
    per_image, intercept = np.polyfit(x, y, 1)
    residual = np.max(np.abs(y - (intercept + per_image * x)) / y)
    return {
        "size": size,
        "ms_per_image": float(1000 * per_image),
        "intercept_s": float(intercept),
        "max_residual_pct": float(100 * residual),
    }


def run_compare_scaling(
    points=DEFAULT_POINTS,
    workdir=None,
    backbone="mobilenetv2",
    epochs=1,
    batch_size=8,
    variants=("cce",),
    json_path=None,
    progress=None,
):
    """Measure ``compare``'s peak resident set and time at each ``(images, side)`` point.

    Args:
        points: ``(images, side)`` pairs. Defaults to :data:`DEFAULT_POINTS`.
        workdir: Where the folders are generated and kept (reused by later calls); None for a
            temporary folder removed afterwards. Defaults to None.
        backbone, epochs, batch_size, variants: The ``compare`` runs. Defaults to
            ``"mobilenetv2"``, 1, 8, ``("cce",)``.
        json_path: Write the returned dict here as JSON. Defaults to None.
        progress: Callable given one line of progress text. Defaults to None.

    Returns:
        ``{"config", "points", "rss_growth_mb", "epoch_fit"}``: one dict per point (see
        :func:`measure_compare_run`, plus ``images``, ``size`` and ``ms_per_image``); the peak
        RSS growth from the fewest to the most images at the most measured side; and the line
        through the epoch times there (:func:`epoch_time_fit`).

    Example:
        >>> result = run_compare_scaling([(40, 64), (80, 64)], epochs=1)
        >>> print(format_compare_scaling(result))
    """
    say = progress or (lambda line: None)
    root = workdir or tempfile.mkdtemp(prefix="sm-pixel-ce-compare-scaling-")
    os.makedirs(root, exist_ok=True)
    rows = []
    started = time.perf_counter()
    try:
        for count, size in points:
            folder = os.path.join(root, f"scenes_{count}_{size}px")
            say(f"compare scaling: writing {count} scenes at {size} px to {folder}")
            write_scene_folder(folder, count, size)
            out = os.path.join(root, f"out_{count}_{size}px")
            shutil.rmtree(out, ignore_errors=True)
            say(
                f"compare scaling: {count} images at {size} px, {backbone}, {epochs} epoch(s), "
                f"batch {batch_size}"
            )
            row = {"images": count, "size": size, "load_average": os.getloadavg()[0]}
            row.update(
                measure_compare_run(
                    folder, size, out, backbone, epochs, batch_size, variants, out + ".log"
                )
            )
            row["ms_per_image"] = (
                1000 * row["steady_s"] / max(row["train_images"] - batch_size, 1)
                if row["steady_s"]
                else None
            )
            say(
                f"  peak RSS {row['peak_rss_mb']:.0f} MB, wall {row['wall_s']:.0f} s, "
                f"train {row['train_s'] or float('nan'):.0f} s, after the first batch "
                f"{row['steady_s'] or float('nan'):.0f} s (exit {row['returncode']})"
            )
            rows.append(row)
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    ok = [r for r in rows if r["returncode"] == 0]
    sizes = [r["size"] for r in ok]
    main_size = max(set(sizes), key=sizes.count) if sizes else None
    same = sorted((r for r in ok if r["size"] == main_size), key=lambda r: r["images"])
    result = {
        "config": {
            "backbone": backbone,
            "epochs": epochs,
            "batch_size": batch_size,
            "variants": list(variants),
            **machine(),
            "python": sys.executable,
        },
        "points": rows,
        "main_size": main_size,
        "rss_growth_mb": (same[-1]["peak_rss_mb"] - same[0]["peak_rss_mb"]) if same else None,
        "epoch_fit": epoch_time_fit(rows),
        "elapsed_s": time.perf_counter() - started,
    }
    write_json(result, json_path)
    return result
