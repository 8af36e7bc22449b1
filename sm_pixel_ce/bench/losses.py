"""Loss + gradient of the pixel losses against TensorFlow's fused kernels (the floor) and against
what people write instead, in graph mode and under XLA. The region losses (Dice, Jaccard, Tversky,
``pixel_cce + pixel_dice``) are timed against the sparse floor, and the Lovász loss against a
line-by-line port of segmentation_models_pytorch's ``_lovasz_softmax_flat``."""

import numpy as np
import tensorflow as tf

from ..activations import pixel_softmax
from ..flavor import keras
from ..losses import (
    PixelBinaryCrossentropy,
    PixelCategoricalCrossentropy,
    PixelDiceLoss,
    PixelJaccardLoss,
    PixelLovaszLoss,
    PixelTverskyLoss,
)
from .timing import loss_and_gradient, memory_method, peak_memory, time_interleaved_spread

#: Label value of the ignored pixels in the "ignore index" case.
IGNORE_INDEX = 255
#: Share of pixels set to IGNORE_INDEX in that case.
IGNORED_SHARE = 0.05

# Targets of the issue: (case, floor it is compared with, largest ratio).
LOSS_TARGETS = (
    ("cce_softmax", "floor_dense", 1.10),
    ("cce_logits_uint8", "floor_sparse", 1.10),
    ("cce_weighted_ignore", "floor_sparse", 1.40),
    ("cce_focal", "floor_sparse", 1.50),
    ("cce_top_k", "floor_sparse", 1.50),
    ("dice_softmax", "floor_sparse", 1.30),
    ("jaccard_softmax", "floor_sparse", 1.30),
    ("tversky_softmax", "floor_sparse", 1.30),
    ("cce_dice", "floor_sparse", 1.50),
    ("lovasz_softmax", "lovasz_smp_port", 0.70),
)
#: focal_gamma and top_k of the rare-class cases.
FOCAL_GAMMA = 2.0
TOP_K = 0.25
#: alpha, beta and gamma of the Tversky case (a focal Tversky loss).
TVERSKY = {"alpha": 0.3, "beta": 0.7, "gamma": 0.75}


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


def floor_dense(labels, logits):
    """The dense floor: ``tf.nn.softmax_cross_entropy_with_logits`` on one-hot labels, mean."""
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def floor_sparse(labels, logits):
    """The sparse floor: ``tf.nn.sparse_softmax_cross_entropy_with_logits`` on int32 labels."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )


def _on_softmax(loss):
    return lambda labels, logits: loss(labels, pixel_softmax(logits))


def _on_keras_softmax(loss):
    return lambda labels, logits: loss(labels, keras.activations.softmax(logits))


#: Case -> what it times, as the report prints it; :func:`loss_cases` gives their functions.
CASE_DESCRIPTIONS = {
    "floor_dense": "tf.nn.softmax_cross_entropy_with_logits (one-hot)",
    "floor_sparse": "tf.nn.sparse_softmax_cross_entropy_with_logits (int32)",
    "cce_softmax": "pixel_cce on pixel_softmax output (one-hot)",
    "cce_logits": "pixel_cce(from_logits=True) (one-hot)",
    "cce_logits_uint8": "pixel_cce(from_logits=True), uint8 masks",
    "cce_weighted_ignore": "pixel_cce, class weights + ignore_index, uint8",
    "cce_focal": f"pixel_cce(from_logits=True, focal_gamma={FOCAL_GAMMA:g}), uint8",
    "cce_top_k": f"pixel_cce(from_logits=True, top_k={TOP_K:g}), uint8",
    "cce_focal_top_k_weighted": "pixel_cce, focal + top_k + class weights + ignore_index, uint8",
    "keras_focal": (
        f"Keras softmax + CategoricalFocalCrossentropy(gamma={FOCAL_GAMMA:g}) (one-hot)"
    ),
    "bce_sigmoid": "pixel_bce on sigmoid output (one-hot)",
    "keras_softmax_cce": "Keras softmax + categorical_crossentropy",
    "keras_reshape_cce": "softmax -> reshape (N, H*W, C) -> Keras CCE",
    "keras_hand_softmax": "exp / sum(exp) softmax + Keras CCE",
    "dice_softmax": "pixel_dice on pixel_softmax output, uint8",
    "jaccard_softmax": "pixel_jaccard on pixel_softmax output, uint8",
    "tversky_softmax": (
        "pixel_tversky(alpha={alpha:g}, beta={beta:g}, gamma={gamma:g}) on pixel_softmax "
        "output, uint8".format(**TVERSKY)
    ),
    "cce_dice": "pixel_cce + pixel_dice on pixel_softmax output, uint8",
    "lovasz_softmax": "pixel_lovasz on pixel_softmax output, uint8",
    "lovasz_smp_port": (
        "SMP's _lovasz_softmax_flat ported line by line (a tf.argsort per class), uint8"
    ),
}


def loss_cases(class_weights):
    """The cases: name -> (description, floor, label key, ``fn(labels, logits) -> scalar``).

    A floor's own floor is itself. Each ``fn`` starts from the logits, as a model's last layer
    would hand them over, so that every case includes its own activation. The cases are timed
    and printed in this order.

    Args:
        class_weights: The per-class weights of the weighted cases, one per class.

    Returns:
        A dict keyed like :data:`CASE_DESCRIPTIONS`.

    Example:
        >>> description, floor, key, fn = loss_cases([1.0] * 7)["cce_softmax"]
    """
    cce = PixelCategoricalCrossentropy()
    cce_logits = PixelCategoricalCrossentropy(from_logits=True)
    cce_weighted = PixelCategoricalCrossentropy(
        from_logits=True, class_weights=list(class_weights), ignore_index=IGNORE_INDEX
    )
    bce = PixelBinaryCrossentropy()
    focal = PixelCategoricalCrossentropy(from_logits=True, focal_gamma=FOCAL_GAMMA)
    top_k = PixelCategoricalCrossentropy(from_logits=True, top_k=TOP_K)
    rare = PixelCategoricalCrossentropy(
        from_logits=True,
        class_weights=list(class_weights),
        ignore_index=IGNORE_INDEX,
        focal_gamma=FOCAL_GAMMA,
        top_k=TOP_K,
    )
    keras_focal = keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=FOCAL_GAMMA)
    dice, jaccard = PixelDiceLoss(), PixelJaccardLoss()
    tversky = PixelTverskyLoss(**TVERSKY)
    cce_dice = PixelCategoricalCrossentropy() + PixelDiceLoss()
    lovasz = PixelLovaszLoss()

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

    # name: (floor, label key, fn)
    cases = {
        "floor_dense": ("floor_dense", "onehot", floor_dense),
        "floor_sparse": ("floor_sparse", "mask_int32", floor_sparse),
        "cce_softmax": ("floor_dense", "onehot", _on_softmax(cce)),
        "cce_logits": ("floor_dense", "onehot", cce_logits),
        "cce_logits_uint8": ("floor_sparse", "mask", cce_logits),
        "cce_weighted_ignore": ("floor_sparse", "mask_ignore", cce_weighted),
        "cce_focal": ("floor_sparse", "mask", focal),
        "cce_top_k": ("floor_sparse", "mask", top_k),
        "cce_focal_top_k_weighted": ("floor_sparse", "mask_ignore", rare),
        "keras_focal": ("floor_dense", "onehot", _on_keras_softmax(keras_focal)),
        "bce_sigmoid": ("floor_dense", "onehot", lambda y, z: bce(y, tf.sigmoid(z))),
        "keras_softmax_cce": ("floor_dense", "onehot", _on_keras_softmax(_keras_cce)),
        "keras_reshape_cce": ("floor_dense", "onehot", flattened),
        "keras_hand_softmax": ("floor_dense", "onehot", hand_softmax),
        "dice_softmax": ("floor_sparse", "mask", _on_softmax(dice)),
        "jaccard_softmax": ("floor_sparse", "mask", _on_softmax(jaccard)),
        "tversky_softmax": ("floor_sparse", "mask", _on_softmax(tversky)),
        "cce_dice": ("floor_sparse", "mask", _on_softmax(cce_dice)),
        "lovasz_softmax": ("floor_sparse", "mask", _on_softmax(lovasz)),
        "lovasz_smp_port": ("floor_sparse", "mask", lovasz_smp_port),
    }
    return {name: (CASE_DESCRIPTIONS[name], *case) for name, case in cases.items()}


def lovasz_smp_port(labels, logits):
    """segmentation_models_pytorch's ``LovaszLoss("multiclass")``: softmax, then
    ``_lovasz_softmax_flat(probas, labels, classes="present")`` written line by line in
    TensorFlow, the baseline of ``pixel_lovasz``: a Python loop over the classes with one sort
    (``tf.argsort``, as ``torch.sort``'s permutation) each; the ``continue`` on an absent class
    becomes a 0/1 weight in the mean."""
    classes = logits.shape[-1]
    probas = tf.reshape(tf.nn.softmax(logits), [-1, classes])
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    losses, present = [], []
    for c in range(classes):
        fg = tf.cast(tf.equal(labels, c), probas.dtype)  # foreground for class c
        class_pred = probas[:, c]
        errors = tf.abs(fg - class_pred)
        perm = tf.argsort(errors, direction="DESCENDING")
        errors_sorted = tf.gather(errors, perm)
        fg_sorted = tf.gather(fg, perm)
        losses.append(tf.tensordot(errors_sorted, _lovasz_grad(fg_sorted), 1))
        present.append(tf.cast(tf.reduce_sum(fg) > 0, probas.dtype))
    present = tf.stack(present)
    return tf.reduce_sum(tf.stack(losses) * present) / tf.reduce_sum(present)


def _lovasz_grad(gt_sorted):
    """SMP's ``_lovasz_grad``: the gradient of the Lovász extension w.r.t. sorted errors."""
    gts = tf.reduce_sum(gt_sorted)
    intersection = gts - tf.cumsum(gt_sorted)
    union = gts + tf.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    return tf.concat([jaccard[:1], jaccard[1:] - jaccard[:-1]], 0)


def loss_benchmark(batch, size, classes, repeats, warmup, xla=True, progress=None, names=None):
    """Loss + gradient of every case, with and without XLA.

    Args:
        batch, size, classes: Input shape ``(batch, size, size, classes)``, float32.
        repeats: Timed calls per case (median taken).
        warmup: Untimed calls per case first.
        xla: Also time each case compiled with ``jit_compile=True``. Defaults to True.
        progress: Callable taking a line of progress text, or None. Defaults to None.
        names: Only these cases (with the floors and baselines they are compared with), or None
            for all. Defaults to None.

    Returns:
        A dict: ``cases`` (list of per-case dicts: name, description, floor, and per mode
        ``"graph"``/``"xla"``: ``ms``, ``ratio`` (to the floor's median in the same mode),
        ``peak_bytes``, ``loss``), ``memory_method`` and ``targets`` (list of dicts).
    """
    say = progress or (lambda line: None)
    data = make_inputs(batch, size, classes)
    cases = loss_cases(data["class_weights"])
    if names is not None:
        unknown = sorted(set(names) - set(cases))
        if unknown:
            raise ValueError(
                f"bench: unknown loss case(s) {unknown}. Expected names among {sorted(cases)}."
            )
        wanted = set(names) | {cases[name][1] for name in names}
        wanted |= {floor for case, floor, _ in LOSS_TARGETS if case in wanted}
        cases = {name: case for name, case in cases.items() if name in wanted}
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
            f"loss + gradient ({mode}): tracing {len(cases)} cases, {warmup} warm-up + "
            f"{repeats} timed calls each"
        )
        steps = {
            name: loss_and_gradient(fn, mode == "xla") for name, (_, _, _, fn) in cases.items()
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
            if case not in results:
                continue
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
