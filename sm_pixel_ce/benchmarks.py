"""Measurements behind ``sm-pixel-ce bench``: the losses against TensorFlow's fused kernels, and
loading ``.keras`` files in tf_keras with and without sm_pixel_ce's copy of the weights.

Plain functions, no printing: each returns dicts of numbers that the command line formats and
writes as JSON. Every timing is a median over calls of one compiled ``tf.function`` (with or
without XLA), the cases interleaved call by call (A B C A B C ...), so that a slow moment of the
machine falls on every case alike.

Peak memory of a call is what it allocates above what was allocated before it (the inputs,
already in memory, are not counted). Where TensorFlow's allocator keeps statistics
(``get_memory_info``: accelerators, and the CPU allocator in recent TensorFlow once it has
allocated) that is its peak minus its current use before the call. Otherwise we measure the
growth of the process's resident set during one call: Linux's high-water mark ``VmHWM`` is reset
(``/proc/self/clear_refs``) just before the call and compared with the resident size just before
it; large buffers are made to come from ``mmap`` (``mallopt``) so that freed tensors leave the
resident set and each call starts level. Where neither is available the figure is None.
"""

import ctypes
import ctypes.util
import gc
import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from .activations import pixel_softmax
from .compat import IS_KERAS_3, keras
from .losses import PixelBinaryCrossentropy, PixelCategoricalCrossentropy
from .saving import tf_keras_archive_reads

#: Label value of the ignored pixels in the "ignore index" case.
IGNORE_INDEX = 255
#: Share of pixels set to IGNORE_INDEX in that case.
IGNORED_SHARE = 0.05

# Targets of the issue: (case, floor it is compared with, largest ratio).
LOSS_TARGETS = (
    ("cce_softmax", "floor_dense", 1.10),
    ("cce_logits_uint8", "floor_sparse", 1.10),
    ("cce_weighted_ignore", "floor_sparse", 1.40),
)
TRAIN_TARGET = 1.02
# float32 one-hot holds 4 bytes per class per pixel, a uint8 mask 1 byte per pixel: 28x at 7 classes.
LABEL_BYTES_PER_CLASS_TARGET = 4.0


def make_inputs(batch, size, classes, seed=0):
    """Logits and the same labels in every form the cases take.

    Args:
        batch: Images per batch.
        size: Side of the square images.
        classes: Number of classes, 2 to 255 (uint8 masks, 255 kept for the ignore index).
        seed: Seed of the random logits and labels. Defaults to 0.

    Returns:
        A dict of NumPy arrays: ``logits`` float32 ``(N, S, S, C)``; ``mask`` uint8 ``(N, S, S)``;
        ``mask_int32``; ``onehot`` float32 ``(N, S, S, C)``; ``mask_ignore`` uint8 with
        ``IGNORED_SHARE`` of the pixels set to ``IGNORE_INDEX``; ``class_weights`` ``(C,)``.
    """
    if not 2 <= classes < IGNORE_INDEX:
        raise ValueError(
            f"bench: classes must be in [2, {IGNORE_INDEX - 1}]. Received: classes={classes}"
        )
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (batch, size, size, classes)).astype(np.float32)
    mask = rng.integers(0, classes, (batch, size, size)).astype(np.uint8)
    ignored = rng.random(mask.shape) < IGNORED_SHARE
    return {
        "logits": logits,
        "mask": mask,
        "mask_int32": mask.astype(np.int32),
        "onehot": np.eye(classes, dtype=np.float32)[mask],
        "mask_ignore": np.where(ignored, IGNORE_INDEX, mask).astype(np.uint8),
        "class_weights": np.linspace(0.5, 1.5, classes).round(3),
    }


def _keras_cce(labels, probabilities):
    return tf.reduce_mean(keras.losses.categorical_crossentropy(labels, probabilities))


def loss_cases(class_weights):
    """The cases: name -> (description, floor, label key, ``fn(labels, logits) -> scalar``).

    A floor's own floor is itself. Each ``fn`` starts from the logits, as a model's last layer
    would hand them over, so that every case includes its own activation.
    """
    cce = PixelCategoricalCrossentropy()
    cce_logits = PixelCategoricalCrossentropy(from_logits=True)
    cce_weighted = PixelCategoricalCrossentropy(
        from_logits=True, class_weights=list(class_weights), ignore_index=IGNORE_INDEX
    )
    bce = PixelBinaryCrossentropy()

    def flattened(labels, logits):
        # The model ends in a softmax; the loss reshapes to (N, H*W, C), which hides the logits
        # from Keras, so it takes the log of clipped probabilities.
        classes = logits.shape[-1]
        probabilities = tf.reshape(
            keras.activations.softmax(logits), [tf.shape(logits)[0], -1, classes]
        )
        return _keras_cce(tf.reshape(labels, tf.shape(probabilities)), probabilities)

    def hand_softmax(labels, logits):
        e = tf.exp(logits)
        return _keras_cce(labels, e / tf.reduce_sum(e, axis=-1, keepdims=True))

    return {
        "floor_dense": (
            "tf.nn.softmax_cross_entropy_with_logits (one-hot)",
            "floor_dense",
            "onehot",
            lambda y, z: tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)
            ),
        ),
        "floor_sparse": (
            "tf.nn.sparse_softmax_cross_entropy_with_logits (int32)",
            "floor_sparse",
            "mask_int32",
            lambda y, z: tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)
            ),
        ),
        "cce_softmax": (
            "pixel_cce on pixel_softmax output (one-hot)",
            "floor_dense",
            "onehot",
            lambda y, z: cce(y, pixel_softmax(z)),
        ),
        "cce_logits": (
            "pixel_cce(from_logits=True) (one-hot)",
            "floor_dense",
            "onehot",
            lambda y, z: cce_logits(y, z),
        ),
        "cce_logits_uint8": (
            "pixel_cce(from_logits=True), uint8 masks",
            "floor_sparse",
            "mask",
            lambda y, z: cce_logits(y, z),
        ),
        "cce_weighted_ignore": (
            "pixel_cce, class weights + ignore_index, uint8",
            "floor_sparse",
            "mask_ignore",
            lambda y, z: cce_weighted(y, z),
        ),
        "bce_sigmoid": (
            "pixel_bce on sigmoid output (one-hot)",
            "floor_dense",
            "onehot",
            lambda y, z: bce(y, tf.sigmoid(z)),
        ),
        "keras_softmax_cce": (
            "Keras softmax + categorical_crossentropy",
            "floor_dense",
            "onehot",
            lambda y, z: _keras_cce(y, keras.activations.softmax(z)),
        ),
        "keras_reshape_cce": (
            "softmax -> reshape (N, H*W, C) -> Keras CCE",
            "floor_dense",
            "onehot",
            flattened,
        ),
        "keras_hand_softmax": (
            "exp / sum(exp) softmax + Keras CCE",
            "floor_dense",
            "onehot",
            hand_softmax,
        ),
    }


def _loss_and_gradient(fn, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def step(labels, logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = fn(labels, logits)
        return loss, tape.gradient(loss, logits)

    return step


def time_interleaved(calls, repeats, warmup):
    """Median wall time in ms of each zero-argument callable, called in turn ``repeats`` times.

    Args:
        calls: name -> callable; each call must finish its work before returning.
        repeats: Timed rounds.
        warmup: Untimed rounds first (tracing, compilation, caches).

    Returns:
        name -> median milliseconds (see :func:`time_interleaved_spread` for the quartiles).
    """
    return {
        name: spread[1] for name, spread in time_interleaved_spread(calls, repeats, warmup).items()
    }


def time_interleaved_spread(calls, repeats, warmup):
    """As :func:`time_interleaved`, returning name -> (25th percentile, median, 75th percentile) ms."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: _quartiles(values) for name, values in times.items()}


def _quartiles(values):
    if len(values) < 2:
        return (values[0],) * 3
    low, median, high = statistics.quantiles(values, n=4, method="inclusive")
    return (low, median, high)


def _libc():
    path = ctypes.util.find_library("c")
    return ctypes.CDLL(path) if path else None


def _status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def memory_method():
    """How peak memory is measured here: ``"tf"``, ``"rss"`` or None (see the module docstring)."""
    try:
        # Zero until the allocator has served something: call after the inputs exist.
        info = tf.config.experimental.get_memory_info("CPU:0")
        if info.get("peak", 0) > 0:
            return "tf"
    except (ValueError, RuntimeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        _status_kb("VmHWM")
    except OSError:
        return None
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        # M_MMAP_THRESHOLD (-3) at 128 KiB, fixed: every tensor buffer is mmapped and returned
        # to the system when freed, so one call's peak is not hidden by memory kept from before.
        libc.mallopt(-3, 128 * 1024)
    return "rss"


def peak_memory(call, method):
    """Peak memory of one call in bytes, by ``method`` (``memory_method()``), or None."""
    if method == "tf":
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        tf.config.experimental.reset_memory_stats("CPU:0")
        call()
        return max(0, int(tf.config.experimental.get_memory_info("CPU:0")["peak"]) - before)
    if method == "rss":
        libc = _libc()
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
        before = _status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        call()
        return max(0, _status_kb("VmHWM") - before) * 1024
    return None


def loss_benchmark(batch, size, classes, repeats, warmup, xla=True, progress=None):
    """Loss + gradient of every case, with and without XLA.

    Args:
        batch, size, classes: Input shape ``(batch, size, size, classes)``, float32.
        repeats: Timed calls per case (median taken).
        warmup: Untimed calls per case first.
        xla: Also time each case compiled with ``jit_compile=True``. Defaults to True.
        progress: Callable taking a line of progress text, or None. Defaults to None.

    Returns:
        A dict: ``cases`` (list of per-case dicts: name, description, floor, and per mode
        ``"graph"``/``"xla"``: ``ms``, ``ratio`` (to the floor's median in the same mode),
        ``peak_bytes``, ``loss``), ``memory_method`` and ``targets`` (list of dicts).
    """
    say = progress or (lambda line: None)
    data = make_inputs(batch, size, classes)
    cases = loss_cases(data["class_weights"])
    logits = tf.constant(data["logits"])
    labels = {
        key: tf.constant(data[key]) for key in ("onehot", "mask", "mask_int32", "mask_ignore")
    }
    method = memory_method()
    modes = ("graph", "xla") if xla else ("graph",)
    results = {
        name: {"name": name, "description": d, "floor": f} for name, (d, f, _, _) in cases.items()
    }
    for mode in modes:
        say(
            f"loss + gradient ({mode}): tracing {len(cases)} cases, {warmup} warm-up + {repeats} timed calls each"
        )
        steps = {
            name: _loss_and_gradient(fn, mode == "xla") for name, (_, _, _, fn) in cases.items()
        }
        calls = {
            name: (lambda step=step, y=labels[key]: step(y, logits)[0].numpy())
            for (name, step), (_, _, key, _) in zip(steps.items(), cases.values())
        }
        spread = time_interleaved_spread(calls, repeats, warmup)
        for name, (_, floor, _, _) in cases.items():
            results[name][mode] = {
                "ms": spread[name][1],
                "ms_quartiles": [spread[name][0], spread[name][2]],
                "ratio": spread[name][1] / spread[floor][1],
                "peak_bytes": peak_memory(calls[name], method),
                "loss": float(calls[name]()),
            }
    return {
        "cases": list(results.values()),
        "memory_method": method,
        "targets": loss_targets(results, modes),
    }


def loss_targets(results, modes):
    """The issue's ratio targets, checked on ``results`` (name -> case dict)."""
    targets = []
    for mode in modes:
        for case, floor, limit in LOSS_TARGETS:
            ratio = results[case][mode]["ms"] / results[floor][mode]["ms"]
            targets.append(
                {
                    "name": f"{case} / {floor} ({mode})",
                    "ratio": ratio,
                    "limit": limit,
                    "kind": "max",
                    "met": ratio <= limit,
                }
            )
    return targets


def _unet(classes, size, activation, loss, labels_are):
    import segmentation_models as sm

    model = sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=classes,
        input_shape=(size, size, 3),
        activation=activation,
    )
    model.compile(keras.optimizers.Adam(1e-4), loss=loss)
    model.labels_are = labels_are
    return model


def train_benchmark(batch, size, classes, repeats, warmup, fit_steps=3, progress=None):
    """U-Net (resnet18) train steps: pixel_softmax + pixel_cce against softmax + Keras CCE.

    Both models start from the same weights and run ``train_on_batch`` on the same batch, steps
    interleaved. A third variant feeds ``pixel_cce`` uint8 masks instead of one-hot labels. Then
    the input pipeline: a ``tf.data`` pipeline of generated scenes with float32 one-hot masks
    against one with uint8 masks, measured alone (batches/s) and feeding ``fit`` (steps/s).

    Args:
        batch, size, classes: Batch size, image side, classes.
        repeats: Timed steps per variant.
        warmup: Untimed steps per variant first (at least 1: tracing).
        fit_steps: Timed ``fit`` steps per pipeline. Defaults to 3.
        progress: Callable taking a line of progress text, or None. Defaults to None.

    Returns:
        A dict with ``steps`` (median ms per variant and ratios), ``pipeline`` and ``targets``.
    """
    from .data.scenes import make_scenes

    say = progress or (lambda line: None)
    say(f"train step: building 2 U-Nets (resnet18, {size}x{size}, {classes} classes)")
    keras.utils.set_random_seed(0)
    ours = _unet(classes, size, "pixel_softmax", "pixel_cce", "onehot")
    theirs = _unet(classes, size, "softmax", "categorical_crossentropy", "onehot")
    theirs.set_weights(ours.get_weights())

    images, masks = make_scenes(2 * batch, size, seed=0)
    masks = masks % classes
    onehot = np.eye(classes, dtype=np.float32)[masks]
    x = tf.constant(images[:batch])
    y_onehot = tf.constant(onehot[:batch])
    y_mask = tf.constant(masks[:batch])

    def step(model, y):
        return lambda: model.train_on_batch(x, y)

    say(f"train step: {max(warmup, 1)} warm-up + {repeats} timed steps per variant, interleaved")
    medians = time_interleaved(
        {
            "pixel_cce": step(ours, y_onehot),
            "keras_cce": step(theirs, y_onehot),
            "pixel_cce_uint8": step(ours, y_mask),
        },
        repeats,
        max(warmup, 1),
    )
    steps = {
        "ms": medians,
        "ratio": medians["pixel_cce"] / medians["keras_cce"],
        "ratio_uint8": medians["pixel_cce_uint8"] / medians["keras_cce"],
    }

    say(
        f"input pipeline: one-hot float32 vs uint8 masks, alone and feeding fit ({fit_steps} steps each)"
    )
    pipelines = {
        "onehot_float32": tf.data.Dataset.from_tensor_slices((images, onehot)),
        "uint8": tf.data.Dataset.from_tensor_slices((images, masks)),
    }
    pipeline = {}
    for name, dataset in pipelines.items():
        dataset = dataset.repeat().batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        first = next(iter(dataset))
        label_bytes = int(first[1].numpy().nbytes)
        iterator = iter(dataset)
        next(iterator)
        start = time.perf_counter()
        count = 50
        for _ in range(count):
            next(iterator)
        alone = count / (time.perf_counter() - start)
        ours.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
        start = time.perf_counter()
        ours.fit(dataset, steps_per_epoch=fit_steps, epochs=1, verbose=0, shuffle=False)
        fed = fit_steps / (time.perf_counter() - start)
        pipeline[name] = {
            "label_bytes_per_batch": label_bytes,
            "image_bytes_per_batch": int(first[0].numpy().nbytes),
            "batches_per_s_alone": alone,
            "fit_steps_per_s": fed,
        }
    bytes_ratio = (
        pipeline["onehot_float32"]["label_bytes_per_batch"]
        / pipeline["uint8"]["label_bytes_per_batch"]
    )
    pipeline["label_bytes_ratio"] = bytes_ratio
    targets = [
        {
            "name": "U-Net train step, pixel_cce / Keras CCE",
            "ratio": steps["ratio"],
            "limit": TRAIN_TARGET,
            "kind": "max",
            "met": steps["ratio"] <= TRAIN_TARGET,
        },
        {
            "name": f"label bytes, one-hot float32 / uint8 ({classes} classes)",
            "ratio": bytes_ratio,
            "limit": LABEL_BYTES_PER_CLASS_TARGET * classes,
            "kind": "min",
            "met": bytes_ratio >= LABEL_BYTES_PER_CLASS_TARGET * classes,
        },
    ]
    return {"steps": steps, "pipeline": pipeline, "targets": targets}


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
        "pixel_cce": _loss_and_gradient(lambda y, z: cce(y, pixel_softmax(z)), False),
        "floor_sparse": _loss_and_gradient(
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


def load_benchmark(backbones, arch="FPN", size=64, repeats=3, progress=None):
    """Time ``load_model`` of ``.keras`` files in tf_keras: weights read from sm_pixel_ce's copy,
    against tf_keras's own reads from inside the zip, interleaved load by load.

    Args:
        backbones: segmentation_models backbone names, e.g. ``("resnet18", "resnet50")``.
        arch: The architecture built on each. Defaults to ``"FPN"``.
        size: Input side in pixels. Defaults to 64.
        repeats: Timed loads per way and backbone (median taken). Defaults to 3.
        progress: Callable given one line per finished load. Defaults to None.

    Returns:
        ``None`` in Keras 3 (which copies the weights out itself, so there is nothing to compare);
        otherwise ``{"arch", "size", "repeats", "rows"}``, a row per backbone with the file's
        ``megabytes``, median seconds ``s`` per way (``"copy"``, ``"zip"``) and ``speedup``
        (zip / copy).

    Example:
        >>> load_benchmark(["resnet101"])["rows"][0]["speedup"]  # tf_keras, 177 MB, 2 cores: about 4.5
    """
    if IS_KERAS_3:
        return None
    import segmentation_models as sm

    rows = []
    with tempfile.TemporaryDirectory(prefix="sm_pixel_ce_bench_") as folder:
        for backbone in backbones:
            model = getattr(sm, arch)(
                backbone, encoder_weights=None, classes=3, activation="pixel_softmax", input_shape=(size, size, 3)
            )
            path = os.path.join(folder, f"{arch}_{backbone}.keras")
            model.save(path)
            del model
            seconds = {"copy": [], "zip": []}
            for repeat in range(repeats):
                for way in seconds:
                    keras.backend.clear_session()
                    gc.collect()
                    with tf_keras_archive_reads(copy=way == "copy"):
                        started = time.perf_counter()
                        keras.models.load_model(path, compile=False)
                        seconds[way].append(time.perf_counter() - started)
                    if progress:
                        progress(f"load {arch} {backbone}: {way} {seconds[way][-1]:.1f} s ({repeat + 1}/{repeats})")
            medians = {way: statistics.median(values) for way, values in seconds.items()}
            rows.append(
                {
                    "backbone": backbone,
                    "megabytes": os.path.getsize(path) / 2**20,
                    "s": medians,
                    "speedup": medians["zip"] / medians["copy"],
                }
            )
            os.remove(path)
    keras.backend.clear_session()
    return {"arch": arch, "size": size, "repeats": repeats, "rows": rows}
