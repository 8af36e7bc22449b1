"""Peak memory and time of ``sm-pixel-ce evaluate`` against the number of images.

Every point is one ``evaluate`` run, in its own process, on a generated folder of PNG scenes
(:func:`~sm_pixel_ce.bench.streaming.write_scene_folder`, written here, never shipped) with the
same saved model: its peak resident set (the child's own ``VmHWM``, see
:func:`~sm_pixel_ce.bench.timing.run_command_line`) and its wall time, measured from outside.
``evaluate`` keeps only counts, so the peak stays flat as the folder grows and the time grows
linearly.
"""

import json
import os
import tempfile

from .output import write_json
from .streaming import write_scene_folder
from .timing import run_command_line

#: Images per point of the default run.
DEFAULT_COUNTS = (500, 4000)


def save_bench_model(path, size, backbone="resnet18"):
    """A 7-class Unet of ``backbone`` (random weights) saved to ``path`` for ``size`` px."""
    import segmentation_models as sm

    model = sm.Unet(
        backbone,
        encoder_weights=None,
        classes=7,
        activation="pixel_softmax",
        input_shape=(size, size, 3),
    )
    model.save(path)
    return path


def measure_evaluate_run(model, folder, out, log_path):
    """Run ``sm-pixel-ce evaluate`` in a child process: ``{"peak_rss_mb", "wall_s", "cpu_s",
    "images", "returncode"}``."""
    command = [
        "evaluate", model,
        "--data", folder, "--classes", "7", "--batch-size", "16", "--out", out,
    ]  # fmt: skip
    result = run_command_line(command, log_path)
    images = None
    report = os.path.join(out, "evaluation.json")
    if result["returncode"] == 0 and os.path.isfile(report):
        with open(report) as handle:
            images = json.load(handle)["images_scored"]
    return {**result, "images": images}


def run_evaluate_scaling(
    counts=DEFAULT_COUNTS, size=64, workdir=None, progress=None, json_path=None
):
    """Measure ``evaluate``'s peak resident set and time on folders of ``counts`` images.

    Args:
        counts: Images per point. Defaults to :data:`DEFAULT_COUNTS`.
        size: Side of the scenes and of the model's input. Defaults to 64.
        workdir: Where the folders and model are kept (reused by later calls); None for a
            temporary folder. Defaults to None.
        progress: ``progress(line)`` after each point, or None. Defaults to None.
        json_path: Write the returned list here as JSON. Defaults to None.

    Returns:
        ``[{"images", "size", "peak_rss_mb", "wall_s", "cpu_s", "ms_per_image",
        "returncode"}]``.

    Example:
        >>> for point in run_evaluate_scaling((500, 4000)):
        ...     print(point["images"], point["peak_rss_mb"])
    """
    with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_eval_") as scratch:
        root = workdir or scratch
        os.makedirs(root, exist_ok=True)
        model = os.path.join(root, f"unet_{size}.keras")
        if not os.path.isfile(model):
            save_bench_model(model, size)
        points = []
        for count in counts:
            folder = write_scene_folder(os.path.join(root, f"scenes_{count}x{size}"), count, size)
            out = os.path.join(root, f"evaluation_{count}x{size}")
            point = measure_evaluate_run(model, folder, out, out + ".log")
            point.update(size=size, requested=count)
            point["ms_per_image"] = 1000 * point["wall_s"] / count
            points.append(point)
            if progress is not None:
                progress(
                    f"  evaluate {count} images at {size} px: peak RSS "
                    f"{point['peak_rss_mb']:.0f} MB, {point['wall_s']:.1f} s"
                )
    write_json(points, json_path)
    return points


def format_evaluate_scaling(points):
    """The points as a Markdown table."""
    rows = [
        "| images | side | peak RSS (MB) | wall (s) | ms / image |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        status = "" if p["returncode"] == 0 else f" (failed: exit {p['returncode']})"
        rows.append(
            f"| {p['requested']} | {p['size']} | {p['peak_rss_mb']:.0f} | {p['wall_s']:.1f} | "
            f"{p['ms_per_image']:.1f}{status} |"
        )
    return "\n".join(rows)
