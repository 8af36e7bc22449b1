"""How fast each image format reads, and what a 4-band uint16 TIFF folder costs ``compare``.

``sm-pixel-ce bench --data-formats 200x128`` writes the same generated scenes once per format
(8-bit PNG, JPEG, BMP, WebP, 16-bit PNG, 4-band uint16 TIFF plain and zlib-compressed, 4-band
float32 TIFF), streams each folder's images through the reader ``compare`` uses
(:meth:`sm_pixel_ce.data.FolderReader.image_dataset`: decode, EXIF, bands, scaling, resize) and
reports images per second; then it runs ``sm-pixel-ce compare`` (in child processes) on the
4-band uint16 TIFF folder and on its first 3 bands as 8-bit PNG and reports each epoch's time.
"""

import json
import os
import shutil
import tempfile
import time

import numpy as np

from .output import machine, write_json
from .streaming import write_scene_folder

#: Format name -> (file suffix, what is written).
FORMATS = {
    "png": (".png", "8-bit RGB PNG"),
    "jpeg": (".jpg", "RGB JPEG, quality 90"),
    "bmp": (".bmp", "24-bit BMP"),
    "webp": (".webp", "RGB WebP, quality 90"),
    "png16": (".png", "16-bit RGB PNG"),
    "tiff": (".tif", "4-band uint16 TIFF"),
    "tiff-zlib": (".tif", "4-band uint16 TIFF, zlib"),
    "tiff-float": (".tif", "4-band float32 TIFF"),
}
#: The two folders whose ``compare`` epochs are set side by side.
COMPARED = ("tiff", "png")


def _four_bands(image):
    """A generated RGB scene in [0, 1] with a fourth band (its brightness inverted, as a
    near-infrared band might look), as uint16."""
    extra = 1.0 - image.mean(axis=-1, keepdims=True)
    return np.round(np.concatenate([image, extra], -1) * 65535).astype(np.uint16)


def write_format_folder(folder, form, count, size, seed=0, chunk=100):
    """Write ``count`` generated scenes (7 classes) in format ``form`` to ``folder/images`` with
    grey PNG masks in ``folder/masks``; a folder already holding ``count`` masks is kept.

    The 8-bit formats hold the first three bands of the uint16 images shifted to 8 bits, so the
    ``png`` and ``tiff`` folders are the same pictures.

    Returns:
        ``folder``.
    """
    import tifffile
    from PIL import Image

    suffix = FORMATS[form][0]

    def write_image(image, stem):
        path = stem + suffix
        bands = _four_bands(image)
        eight = (bands[..., :3] >> 8).astype(np.uint8)
        if form == "png16":
            import tensorflow as tf

            tf.io.write_file(path, tf.io.encode_png(bands[..., :3]))
        elif form.startswith("tiff"):
            data = bands.astype(np.float32) / 65535 if form == "tiff-float" else bands
            compression = "zlib" if form == "tiff-zlib" else None
            tifffile.imwrite(
                path,
                data,
                photometric="minisblack",
                planarconfig="contig",
                compression=compression,
            )
        else:
            save = {"jpeg": {"quality": 90}, "webp": {"quality": 90}}.get(form, {})
            Image.fromarray(eight).save(path, **save)

    return write_scene_folder(folder, count, size, seed, chunk, write_image=write_image)


def measure_decoding(folder, size, batch=8, passes=2):
    """Images per second of ``folder``'s images through ``compare``'s reader (decode, scale,
    resize to ``size``), batched as training batches them.

    The first pass warms the file cache and traces the pipeline; the best of the others counts.

    Returns:
        ``{"images_per_s", "seconds", "images", "channels", "dtype", "megabytes"}``.
    """
    from ..data import FolderReader

    reader = FolderReader()
    pairs = reader.pair(folder)[0]
    paths = [image for image, _ in pairs]
    data = reader.image_dataset(paths, size).batch(batch)
    best = None
    for _ in range(max(2, passes)):
        started = time.perf_counter()
        for _ in data:
            pass
        seconds = time.perf_counter() - started
        best = seconds if best is None else min(best, seconds)
    kind = reader.image_kind(paths)
    return {
        "images_per_s": len(paths) / best,
        "seconds": best,
        "images": len(paths),
        "channels": kind.channels,
        "dtype": kind.dtype,
        "megabytes": sum(os.path.getsize(p) for p in paths) / 2**20,
    }


def _later_epochs(out):
    """The training seconds of every epoch but the first (which traces), from a run's
    report."""
    path = os.path.join(out, "report.json")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return json.load(f)["results"][0]["epoch_seconds"][1:]


def run_format_bench(
    count=200,
    size=128,
    compare=True,
    rounds=2,
    workdir=None,
    backbone="mobilenetv2",
    epochs=1,
    batch_size=8,
    json_path=None,
    progress=None,
):
    """Measure every format's reading speed, and ``compare``'s epoch on :data:`COMPARED`.

    Args:
        count: Images per folder. Defaults to 200.
        size: Side of the images, and of ``compare``'s input. Defaults to 128.
        compare: Also run ``compare`` on the 4-band TIFF and the 8-bit PNG folders. Defaults to
            True.
        rounds: ``compare`` runs per folder, alternating between them. Defaults to 2.
        workdir: Where the folders are written and kept; None for a temporary folder removed
            afterwards. Defaults to None.
        backbone, epochs, batch_size: The ``compare`` runs (``--variants cce``). Defaults to
            ``"mobilenetv2"``, 1, 8.
        json_path: Write the returned dict here as JSON. Defaults to None.
        progress: Callable given one line of progress text. Defaults to None.

    Returns:
        ``{"config", "decoding": {format: measure_decoding(...)}, "compare": {format: [run,
        ...]}}``, each run as :func:`~sm_pixel_ce.bench.streaming.measure_compare_run` gives it
        with ``later_epochs_s``, the training seconds of its epochs after the first.

    Example:
        >>> print(format_format_bench(run_format_bench(40, 64, compare=False)))
    """
    from .streaming import measure_compare_run

    say = progress or (lambda line: None)
    root = workdir or tempfile.mkdtemp(prefix="sm-pixel-ce-formats-")
    os.makedirs(root, exist_ok=True)
    decoding, runs = {}, {}
    try:
        for form in FORMATS:
            folder = os.path.join(root, f"{form}_{count}_{size}px")
            say(f"formats: writing {count} {FORMATS[form][1]} images at {size} px to {folder}")
            write_format_folder(folder, form, count, size)
            decoding[form] = measure_decoding(folder, size, batch_size)
            say(f"  {form}: {decoding[form]['images_per_s']:.0f} images/s")
        # Alternated, so that a shared machine's load falls on both folders alike.
        for turn in range(rounds if compare else 0):
            for form in COMPARED:
                folder = os.path.join(root, f"{form}_{count}_{size}px")
                out = os.path.join(root, f"out_{form}_{count}_{size}px")
                shutil.rmtree(out, ignore_errors=True)
                say(f"formats: compare on {folder}, {backbone}, {epochs} epoch(s), run {turn + 1}")
                row = measure_compare_run(
                    folder, size, out, backbone, epochs, batch_size, ("cce",), out + ".log"
                )
                row["later_epochs_s"] = _later_epochs(out)
                runs.setdefault(form, []).append(row)
                say(f"  epoch after its first batch: {row['steady_s']} s")
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    result = {
        "config": {
            "images": count,
            "size": size,
            "backbone": backbone,
            "epochs": epochs,
            "batch_size": batch_size,
            **machine(),
        },
        "decoding": decoding,
        "compare": runs,
    }
    write_json(result, json_path)
    return result


def format_format_bench(result):
    """The figures of :func:`run_format_bench` as two Markdown tables."""
    config = result["config"]
    lines = [
        f"Reading {config['images']} images at {config['size']} px through compare's reader "
        f"(batch {config['batch_size']}, {config['cpu_count']} CPUs):",
        "",
        "| format | bands | sample type | MB on disk | images/s |",
        "|---|---:|---|---:|---:|",
    ]
    for form, row in result["decoding"].items():
        lines.append(
            f"| {FORMATS[form][1]} | {row['channels']} | {row['dtype']} | "
            f"{row['megabytes']:.1f} | {row['images_per_s']:.0f} |"
        )
    if result["compare"]:
        lines += [
            "",
            f"`compare --variants cce --backbone {config['backbone']} --epochs {config['epochs']}"
            f" --batch-size {config['batch_size']}`, each in its own process, the folders "
            "alternated:",
            "",
            "| folder | epoch 1 after its first batch | later epochs (median) | validation pass "
            "| fit | wall | peak RSS | train images | exit |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]

        def seconds(value):
            return "-" if value is None else f"{value:.1f} s"

        for form, rows in result["compare"].items():
            for row in rows:
                later = row.get("later_epochs_s") or []
                lines.append(
                    f"| {FORMATS[form][1]} | {seconds(row['steady_s'])} | "
                    f"{seconds(float(np.median(later)) if later else None)} | "
                    f"{seconds(row['validation_s'])} | {seconds(row['train_s'])} | "
                    f"{seconds(row['wall_s'])} | {row['peak_rss_mb']:.0f} MB | "
                    f"{row['train_images']} | {row['returncode']} |"
                )
    return "\n".join(lines)
