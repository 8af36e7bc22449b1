"""One ``sm-pixel-ce bench`` run: the loss cases, the U-Net step, the scaling sweeps and (tf_keras)
loading, with the run's configuration and the targets, as one dict of numbers."""

import os
import platform
import time

import tensorflow as tf

from .._version import __version__
from ..flavor import KERAS_FLAVOR
from ..sm_support import supported_backbones
from .loading import load_benchmark
from .losses import loss_benchmark
from .output import write_json
from .scaling import plot_scaling, scaling_benchmark
from .training import train_benchmark

DEFAULT_SIDES = (64, 128, 256, 512, 1024)
DEFAULT_CLASS_COUNTS = (2, 7, 21, 50, 150)


def check_bench_arguments(
    classes=7,
    size=256,
    train=True,
    scaling=True,
    scaling_classes=DEFAULT_CLASS_COUNTS,
    plot=None,
    load_backbones=(),
):
    """Raise a ``ValueError`` for a combination :func:`run_bench` cannot measure.

    Args:
        classes, size, train, scaling, scaling_classes, plot, load_backbones: As for
            :func:`run_bench`.

    Raises:
        ValueError: Naming the argument, what it takes and what it received.
    """
    if not 2 <= classes <= 254:
        raise ValueError(
            "classes must be in [2, 254] (uint8 masks, 255 is the ignore index). "
            f"Received: {classes}"
        )
    if scaling and any(not 2 <= c <= 254 for c in scaling_classes):
        raise ValueError(
            f"scaling classes must be in [2, 254]. Received: {','.join(map(str, scaling_classes))}"
        )
    if train and size % 32:
        raise ValueError(
            f"size must be a multiple of 32 for the U-Net train step (or skip the train step). "
            f"Received: {size}"
        )
    if plot and not scaling:
        raise ValueError(
            "the plot draws the scaling sweeps; it cannot be combined with skipping them."
        )
    unknown = sorted(set(load_backbones) - set(supported_backbones()))
    if unknown:
        raise ValueError(
            f"load backbones: unknown backbone(s) {unknown}; "
            "expected names of segmentation_models, "
            f"e.g. resnet18,resnet50. Received: {','.join(load_backbones)}"
        )


def run_bench(
    batch=8,
    size=256,
    classes=7,
    repeats=20,
    warmup=3,
    xla=True,
    train=True,
    train_repeats=5,
    fit_steps=3,
    scaling=True,
    scaling_sides=DEFAULT_SIDES,
    scaling_classes=DEFAULT_CLASS_COUNTS,
    scaling_repeats=5,
    plot=None,
    load_backbones=(),
    load_repeats=3,
    cases=None,
    json_path=None,
    progress=None,
):
    """Measure the losses, the train step, scaling and loading; return every figure.

    Args:
        batch, size, classes: The shape of the loss cases and the train step. Default 8, 256, 7.
        repeats, warmup: Timed and untimed calls per loss case. Default 20 and 3.
        xla: Also time under ``jit_compile=True``. Defaults to True.
        train: Time the U-Net train step and the input pipeline. Defaults to True.
        train_repeats, fit_steps: Timed train steps per variant, fit steps per pipeline.
            Default 5, 3.
        scaling: Run the image-side and class-count sweeps. Defaults to True.
        scaling_sides, scaling_classes, scaling_repeats: The sweeps. Defaults to
            ``DEFAULT_SIDES``, ``DEFAULT_CLASS_COUNTS`` and 5.
        plot: Draw the scaling sweeps to this PNG path. Defaults to None.
        load_backbones: Backbones whose ``.keras`` FPN load is timed (tf_keras). Defaults to ().
        load_repeats: Timed loads per way and backbone. Defaults to 3.
        cases: Only these loss cases (with the rows they are compared with), or None for the
            whole table (:data:`sm_pixel_ce.bench.cases.LOSS_CASES`). Defaults to None.
        json_path: Write the returned dict here as JSON. Defaults to None.
        progress: Callable given one line of progress text. Defaults to None.

    Returns:
        ``{"config", "loss", "train", "scaling", "load", "targets", "elapsed_s"}``; sections not
        run are None. :func:`sm_pixel_ce.bench.format_report` turns it into Markdown.

    Raises:
        ValueError: As :func:`check_bench_arguments`.

    Example:
        >>> result = run_bench(batch=2, size=64, train=False, scaling=False)
        >>> all(t["met"] for t in result["targets"])
    """
    check_bench_arguments(classes, size, train, scaling, scaling_classes, plot, load_backbones)
    say = progress or (lambda line: None)
    started = time.perf_counter()
    result = {"config": _config(batch, size, classes, repeats, warmup, xla)}
    say(f"loss + gradient on {batch}x{size}x{size}x{classes} float32")
    result["loss"] = loss_benchmark(
        batch, size, classes, repeats, warmup, xla=xla, progress=say, names=cases
    )
    targets = list(result["loss"]["targets"])
    result["train"] = None
    if train:
        result["train"] = train_benchmark(
            batch, size, classes, train_repeats, 1, fit_steps, progress=say
        )
        targets += result["train"]["targets"]
    result["scaling"] = None
    if scaling:
        result["scaling"] = scaling_benchmark(
            batch, scaling_sides, scaling_classes, size, classes, scaling_repeats, 1, progress=say
        )
        if plot:
            _plot(result["scaling"], plot, batch, result["config"]["cpu_count"], say)
    result["load"] = None
    if load_backbones:
        result["load"] = load_benchmark(load_backbones, repeats=load_repeats, progress=say)
        if result["load"] is None:
            say(
                "load: Keras 3 copies the weights out itself; nothing to compare "
                "(run with TF_USE_LEGACY_KERAS=1)"
            )
    result["targets"] = targets
    result["elapsed_s"] = time.perf_counter() - started
    if write_json(result, json_path):
        say(f"figures written to {json_path}")
    return result


def _config(batch, size, classes, repeats, warmup, xla):
    """The run's shape and the software and machine it ran on."""
    return {
        "batch": batch,
        "size": size,
        "classes": classes,
        "dtype": "float32",
        "repeats": repeats,
        "warmup": warmup,
        "xla": xla,
        "tensorflow": tf.__version__,
        "keras_flavor": KERAS_FLAVOR,
        "sm_pixel_ce": __version__,
        "cpu_count": os.cpu_count(),
        "devices": [d.device_type for d in tf.config.list_logical_devices()],
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def _plot(scaling, path, batch, cpu_count, say):
    plot_scaling(
        scaling,
        path,
        title="pixel_cce (pixel_softmax output, uint8 masks), loss + gradient, "
        f"batch {batch}, "
        f"{cpu_count} CPU cores",
    )
    say(f"scaling plot written to {path}")
