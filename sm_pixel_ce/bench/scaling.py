"""How ``pixel_cce`` scales with the pixels and the classes, against the sparse floor; its
picture."""

import os

import numpy as np
import tensorflow as tf

from ..activations import pixel_softmax
from ..losses import PixelCategoricalCrossentropy
from .losses import make_inputs
from .timing import loss_and_gradient, time_interleaved


def scaling_benchmark(batch, sides, class_counts, size, classes, repeats, warmup, progress=None):
    """Time of ``pixel_cce`` (pixel_softmax output, uint8 masks) against image side and classes.

    The sparse floor is timed alongside at every point. Slopes are least-squares fits of
    log(time) on log(pixels) and log(classes): 1 means linear growth.

    Args:
        batch: Images per batch.
        sides: Image sides for the first sweep (classes fixed at ``classes``).
        class_counts: Class counts for the second sweep (side fixed at ``size``).
        size, classes: The fixed side and class count.
        repeats, warmup: As for :func:`time_interleaved`.
        progress: Callable taking a line of progress text, or None. Defaults to None.

    Returns:
        A dict: ``sides`` and ``classes`` sweeps (lists of points with ``ms`` per case) and
        their ``slope`` per case.
    """
    say = progress or (lambda line: None)
    cce = PixelCategoricalCrossentropy()
    functions = {
        "pixel_cce": loss_and_gradient(lambda y, z: cce(y, pixel_softmax(z)), False),
        "floor_sparse": loss_and_gradient(
            lambda y, z: tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)
            ),
            False,
        ),
    }

    def point(side, count):
        data = make_inputs(batch, side, count)
        logits = tf.constant(data["logits"])
        labels = {
            "pixel_cce": tf.constant(data["mask"]),
            "floor_sparse": tf.constant(data["mask_int32"]),
        }
        calls = {
            name: (lambda f=f, y=labels[name]: f(y, logits)[0].numpy())
            for name, f in functions.items()
        }
        return {
            "side": side,
            "classes": count,
            "pixels": batch * side * side,
            "ms": time_interleaved(calls, repeats, warmup),
        }

    result = {}
    for sweep, values, key, to_point in (
        ("sides", sides, "pixels", lambda v: point(v, classes)),
        ("classes", class_counts, "classes", lambda v: point(size, v)),
    ):
        say(f"scaling: {sweep} {', '.join(map(str, values))}")
        points = [to_point(v) for v in values]
        slope = {}
        if len(points) >= 2:
            x = np.log([p[key] for p in points])
            for name in functions:
                slope[name] = float(np.polyfit(x, np.log([p["ms"][name] for p in points]), 1)[0])
        result[sweep] = {"points": points, "slope": slope}
    return result


def plot_scaling(scaling, path, title=""):
    """Draw the scaling sweeps log-log into a PNG at ``path``, with a linear reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    figure, axes = plt.subplots(1, 2, figsize=(8.4, 3.5), dpi=90)
    for ax, (sweep, key, label) in zip(
        axes, (("sides", "pixels", "pixels per batch"), ("classes", "classes", "classes"))
    ):
        points = scaling[sweep]["points"]
        x = np.array([p[key] for p in points], float)
        for name, style in (("pixel_cce", "o-"), ("floor_sparse", "s--")):
            y = np.array([p["ms"][name] for p in points])
            slope = scaling[sweep]["slope"].get(name)
            tag = f"{name} (slope {slope:.2f})" if slope is not None else name
            ax.plot(x, y, style, label=tag, markersize=4)
        ref = np.array([p["ms"]["pixel_cce"] for p in points])[-1] * x / x[-1]
        ax.plot(x, ref, ":", color="grey", label="linear")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.minorticks_off()
        if sweep == "sides":
            ax.set_xticks(x, [f"{p['side']}²" for p in points])
            ax.set_xlabel(f"image side ({label}: batch × side²)")
            ax.set_title(f"{points[0]['classes']} classes", fontsize=9)
        else:
            ax.set_xticks(x, [str(p["classes"]) for p in points])
            ax.set_xlabel(label)
            ax.set_title(f"{points[0]['side']}×{points[0]['side']} images", fontsize=9)
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.set_ylabel("loss + gradient, ms")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
