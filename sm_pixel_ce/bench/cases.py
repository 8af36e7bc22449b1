"""The one table of loss + gradient cases that every backend's bench runs (``sm-pixel-ce bench``
on TensorFlow, graph mode and XLA; ``--backend jax`` under ``jax.jit``; ``--backend torch``
eagerly), and the driver that times them: interleaved medians, each case's ratio to the row it is
compared with, peak memory where the backend allows, the targets.

A case is built from the public API (``fn(labels, logits) -> scalar``, the activation included:
each starts from the logits a model's last layer hands over), so that the same row is the same
call on every backend. A row without a builder is a baseline that each backend writes in its own
terms (:data:`BASELINE_ROWS`: TensorFlow's fused kernels, ``jax.nn``, ``F.cross_entropy``); a
backend may give, beside a case, the same math in its plain form (``plain``: PyTorch's formulas,
``bench.backend_losses``), timed in the same rounds.
"""

from collections import namedtuple

import numpy as np
from keras import ops

from ..activations import pixel_softmax
from ..flavor import keras
from ..losses import (
    PixelBinaryCrossentropy,
    PixelBoundaryLoss,
    PixelCategoricalCrossentropy,
    PixelDiceLoss,
    PixelJaccardLoss,
    PixelLovaszLoss,
    PixelMCCLoss,
    PixelTverskyLoss,
    pixel_boundary_targets,
)
from .timing import time_interleaved_spread

#: Label value of the ignored pixels in the "ignore index" cases.
IGNORE_INDEX = 255
#: Share of pixels set to IGNORE_INDEX in those cases.
IGNORED_SHARE = 0.05
#: focal_gamma and top_k of the rare-class cases.
FOCAL_GAMMA = 2.0
TOP_K = 0.25
#: The scalar focal alpha (torchvision's default); the per-class one is ``focal_alpha(classes)``.
FOCAL_ALPHA = 0.25
#: OHEM's probability threshold (MMSegmentation's usual 0.7); min_kept is a quarter of an image.
OHEM_THRESHOLD = 0.7
#: alpha, beta and gamma of the Tversky case (a focal Tversky loss).
TVERSKY = {"alpha": 0.3, "beta": 0.7, "gamma": 0.75}
#: Side of the class blocks of the boundary cases' masks.
BLOCK = 32
#: The most a case may cost against its plain PyTorch formula (issue #29's torch target).
PLAIN_LIMIT = 1.5

#: The baselines each backend writes in its own terms: name -> (labels, what it is).
BASELINE_ROWS = {
    "floor_dense": ("onehot", "fused softmax cross-entropy, one-hot labels"),
    "floor_sparse": ("mask_int32", "fused sparse softmax cross-entropy, int32 labels"),
    "floor_sparse_again": ("mask_int32", "the sparse floor compiled again (noise gauge)"),
    "floor_bce": ("onehot", "fused sigmoid cross-entropy, one-hot labels"),
}


def baselines(floor_dense, floor_sparse, floor_bce, descriptions):
    """A backend's :data:`BASELINE_ROWS`: name -> (what it times, ``fn(labels, logits)``).

    Args:
        floor_dense, floor_sparse, floor_bce: The backend's fused cross-entropies, each a mean.
        descriptions: name -> what each of the three times, in the backend's terms.

    Returns:
        The four rows; the noise gauge is a second function object over ``floor_sparse``, so
        that the backend compiles (traces) it a second time.
    """
    gauge = ("the same sparse floor, compiled again (noise gauge)", lambda y, z: floor_sparse(y, z))
    return {
        "floor_dense": (descriptions["floor_dense"], floor_dense),
        "floor_sparse": (descriptions["floor_sparse"], floor_sparse),
        "floor_sparse_again": gauge,
        "floor_bce": (descriptions["floor_bce"], floor_bce),
    }


#: One row: ``labels`` names the input (:func:`make_inputs`); ``floor`` the row its ratio is
#: taken to; ``limit`` the target on that ratio (None: no target); ``plain`` the name of the
#: same math in plain form where a backend has it; ``make(data) -> fn(labels, logits)`` (None for
#: a baseline); ``gradient``: time loss + gradient (False: the call alone).
Case = namedtuple("Case", "name description labels floor limit plain make gradient")


def focal_alpha(classes):
    """The per-class focal alpha of the bench: 0.25 for class 0 (background), 1 for the others."""
    return [0.25] + [1.0] * (classes - 1)


def pos_weight(classes):
    """The per-class pos_weight of the bench: 1 to 3 across the classes."""
    return np.linspace(1.0, 3.0, classes).round(3).tolist()


def _softmax(loss):
    return lambda labels, logits: loss(labels, pixel_softmax(logits))


def _logits(loss):
    return lambda labels, logits: loss(labels, logits)


def _keras_cce(labels, probabilities):
    return ops.mean(keras.losses.categorical_crossentropy(labels, probabilities))


def _keras_softmax_cce(data):
    return lambda labels, logits: _keras_cce(labels, keras.activations.softmax(logits))


def _keras_reshape_cce(data):
    # The model ends in a softmax; the loss reshapes to (N, H*W, C), which hides the logits from
    # Keras, so it takes the log of clipped probabilities.
    def flattened(labels, logits):
        classes = logits.shape[-1]
        probabilities = ops.reshape(keras.activations.softmax(logits), (len(logits), -1, classes))
        return _keras_cce(ops.reshape(labels, probabilities.shape), probabilities)

    return flattened


def _keras_hand_softmax(data):
    def hand_softmax(labels, logits):
        e = ops.exp(logits)
        return _keras_cce(labels, e / ops.sum(e, axis=-1, keepdims=True))

    return hand_softmax


def _keras_focal(data):
    focal = keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=FOCAL_GAMMA)
    return lambda labels, logits: focal(labels, keras.activations.softmax(logits))


def lovasz_smp_port(labels, logits):
    """segmentation_models_pytorch's ``LovaszLoss("multiclass")``: softmax, then
    ``_lovasz_softmax_flat(probas, labels, classes="present")`` written line by line on
    ``keras.ops``, the baseline of ``pixel_lovasz``: a Python loop over the classes with one sort
    each (``ops.argsort`` of the negated errors, as ``torch.sort(descending=True)``'s
    permutation); the ``continue`` on an absent class becomes a 0/1 weight in the mean."""
    classes = logits.shape[-1]
    probas = ops.reshape(ops.softmax(logits, axis=-1), (-1, classes))
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    losses, present = [], []
    for c in range(classes):
        fg = ops.cast(ops.equal(labels, c), probas.dtype)  # foreground for class c
        errors = ops.abs(fg - probas[:, c])
        perm = ops.argsort(-errors)
        losses.append(ops.sum(ops.take(errors, perm) * _lovasz_grad(ops.take(fg, perm))))
        present.append(ops.cast(ops.sum(fg) > 0, probas.dtype))
    present = ops.stack(present)
    return ops.sum(ops.stack(losses) * present) / ops.sum(present)


def _lovasz_grad(gt_sorted):
    """SMP's ``_lovasz_grad``: the gradient of the Lovász extension w.r.t. sorted errors."""
    gts = ops.sum(gt_sorted)
    intersection = gts - ops.cumsum(gt_sorted)
    union = gts + ops.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    return ops.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]], axis=0)


def _maps_alone(data):
    classes = data["classes"]
    return lambda labels, logits: pixel_boundary_targets(labels, classes)


def _cce(**options):
    return lambda data: _logits(PixelCategoricalCrossentropy(from_logits=True, **options))


def _weighted(**options):
    def make(data):
        return _logits(
            PixelCategoricalCrossentropy(
                from_logits=True,
                class_weights=list(data["class_weights"]),
                ignore_index=IGNORE_INDEX,
                **options,
            )
        )

    return make


def _on_softmax(loss_class, **options):
    return lambda data: _softmax(loss_class(**options))


def _case(name, description, labels, floor, limit=None, plain=None, make=None, gradient=True):
    return Case(name, description, labels, floor, limit, plain, make, gradient)


#: Every row, in the order the tables print them.
LOSS_CASES = (
    *(_case(name, text, labels, name) for name, (labels, text) in BASELINE_ROWS.items()),
    _case(
        "cce_softmax",
        "pixel_cce on pixel_softmax output (one-hot)",
        "onehot",
        "floor_dense",
        1.10,
        "cce",
        _on_softmax(PixelCategoricalCrossentropy),
    ),
    _case(
        "cce_logits",
        "pixel_cce(from_logits=True) (one-hot)",
        "onehot",
        "floor_dense",
        None,
        "cce",
        _cce(),
    ),
    _case(
        "cce_logits_uint8",
        "pixel_cce(from_logits=True), uint8 masks",
        "mask",
        "floor_sparse",
        1.10,
        "cce",
        _cce(),
    ),
    _case(
        "cce_weighted_ignore",
        "pixel_cce, class weights + ignore_index, uint8",
        "mask_ignore",
        "floor_sparse",
        1.40,
        "cce_weighted",
        _weighted(),
    ),
    _case(
        "cce_focal",
        f"pixel_cce(focal_gamma={FOCAL_GAMMA:g}), uint8",
        "mask",
        "floor_sparse",
        1.50,
        "cce_focal",
        _cce(focal_gamma=FOCAL_GAMMA),
    ),
    _case(
        "cce_focal_alpha",
        f"pixel_cce(focal_gamma={FOCAL_GAMMA:g}, focal_alpha={FOCAL_ALPHA:g}), uint8",
        "mask",
        "floor_sparse",
        1.50,
        "cce_focal_alpha",
        _cce(focal_gamma=FOCAL_GAMMA, focal_alpha=FOCAL_ALPHA),
    ),
    _case(
        "cce_focal_alpha_classes",
        f"pixel_cce(focal_gamma={FOCAL_GAMMA:g}, focal_alpha=[0.25, 1, ...]), uint8",
        "mask",
        "floor_sparse",
        1.50,
        "cce_focal_alpha_classes",
        lambda data: _cce(focal_gamma=FOCAL_GAMMA, focal_alpha=focal_alpha(data["classes"]))(data),
    ),
    _case(
        "cce_top_k",
        f"pixel_cce(top_k={TOP_K:g}), uint8",
        "mask",
        "floor_sparse",
        1.50,
        "cce_top_k",
        _cce(top_k=TOP_K),
    ),
    _case(
        "cce_ohem",
        f"pixel_cce(ohem_threshold={OHEM_THRESHOLD:g}), uint8",
        "mask",
        "floor_sparse",
        1.50,
        "cce_ohem",
        _cce(ohem_threshold=OHEM_THRESHOLD),
    ),
    _case(
        "cce_ohem_min_kept",
        f"pixel_cce(ohem_threshold={OHEM_THRESHOLD:g}, min_kept=a quarter image), uint8",
        "mask",
        "floor_sparse",
        1.50,
        "cce_ohem_min_kept",
        lambda data: _cce(ohem_threshold=OHEM_THRESHOLD, min_kept=data["min_kept"])(data),
    ),
    _case(
        "cce_focal_top_k_weighted",
        "pixel_cce, focal + top_k + class weights + ignore_index, uint8",
        "mask_ignore",
        "floor_sparse",
        None,
        "cce_focal_top_k_weighted",
        _weighted(focal_gamma=FOCAL_GAMMA, top_k=TOP_K),
    ),
    _case(
        "keras_focal",
        f"Keras softmax + CategoricalFocalCrossentropy(gamma={FOCAL_GAMMA:g}) (one-hot)",
        "onehot",
        "floor_dense",
        make=_keras_focal,
    ),
    _case(
        "bce_sigmoid",
        "pixel_bce on sigmoid output (one-hot)",
        "onehot",
        "floor_bce",
        None,
        "bce",
        lambda data: lambda y, z: PixelBinaryCrossentropy()(y, ops.sigmoid(z)),
    ),
    _case(
        "bce_logits",
        "pixel_bce(from_logits=True) (one-hot)",
        "onehot",
        "floor_bce",
        None,
        "bce",
        lambda data: _logits(PixelBinaryCrossentropy(from_logits=True)),
    ),
    _case(
        "bce_focal_alpha",
        f"pixel_bce(from_logits=True, focal_gamma={FOCAL_GAMMA:g}, "
        f"focal_alpha={FOCAL_ALPHA:g}) (one-hot)",
        "onehot",
        "floor_bce",
        1.50,
        "bce_focal_alpha",
        lambda data: _logits(
            PixelBinaryCrossentropy(
                from_logits=True, focal_gamma=FOCAL_GAMMA, focal_alpha=FOCAL_ALPHA
            )
        ),
    ),
    _case(
        "bce_pos_weight",
        "pixel_bce(from_logits=True, pos_weight=[1 .. 3]) (one-hot)",
        "onehot",
        "floor_bce",
        1.50,
        "bce_pos_weight",
        lambda data: _logits(
            PixelBinaryCrossentropy(from_logits=True, pos_weight=pos_weight(data["classes"]))
        ),
    ),
    _case(
        "keras_softmax_cce",
        "Keras softmax + categorical_crossentropy (one-hot)",
        "onehot",
        "floor_dense",
        make=_keras_softmax_cce,
    ),
    _case(
        "keras_reshape_cce",
        "softmax -> reshape (N, H*W, C) -> Keras CCE",
        "onehot",
        "floor_dense",
        make=_keras_reshape_cce,
    ),
    _case(
        "keras_hand_softmax",
        "exp / sum(exp) softmax + Keras CCE",
        "onehot",
        "floor_dense",
        make=_keras_hand_softmax,
    ),
    _case(
        "dice_softmax",
        "pixel_dice on pixel_softmax output, uint8",
        "mask",
        "floor_sparse",
        1.30,
        "dice",
        _on_softmax(PixelDiceLoss),
    ),
    _case(
        "jaccard_softmax",
        "pixel_jaccard on pixel_softmax output, uint8",
        "mask",
        "floor_sparse",
        1.30,
        "jaccard",
        _on_softmax(PixelJaccardLoss),
    ),
    _case(
        "tversky_softmax",
        "pixel_tversky(alpha={alpha:g}, beta={beta:g}, gamma={gamma:g}) on "
        "pixel_softmax output, uint8".format(**TVERSKY),
        "mask",
        "floor_sparse",
        1.30,
        "tversky",
        _on_softmax(PixelTverskyLoss, **TVERSKY),
    ),
    _case(
        "cce_dice",
        "pixel_cce + pixel_dice on pixel_softmax output, uint8",
        "mask",
        "floor_sparse",
        1.50,
        "cce_dice",
        lambda data: _softmax(PixelCategoricalCrossentropy() + PixelDiceLoss()),
    ),
    _case(
        "lovasz_softmax",
        "pixel_lovasz on pixel_softmax output, uint8",
        "mask",
        "lovasz_smp_port",
        0.70,
        "lovasz",
        _on_softmax(PixelLovaszLoss),
    ),
    _case(
        "lovasz_smp_port",
        "SMP's _lovasz_softmax_flat ported line by line on keras.ops (an argsort per class), uint8",
        "mask",
        "floor_sparse",
        make=lambda data: lovasz_smp_port,
    ),
    _case(
        "mcc_softmax",
        "pixel_mcc on pixel_softmax output, uint8",
        "mask",
        "floor_sparse",
        1.50,
        "mcc",
        _on_softmax(PixelMCCLoss),
    ),
    _case(
        "boundary_given_maps",
        "pixel_boundary(from_maps=True) on pixel_softmax output, maps "
        f"of {BLOCK}-px blocks from the input pipeline",
        "maps",
        "floor_sparse",
        1.50,
        "boundary_maps",
        _on_softmax(PixelBoundaryLoss, from_maps=True),
    ),
    _case(
        "cce_dice_boundary",
        "pixel_cce + pixel_dice + pixel_boundary(from_maps=True) on pixel_softmax output, the "
        f"{BLOCK}-px blocks' mask + maps (pixel_boundary_targets(with_labels=True))",
        "blocks_maps",
        "floor_sparse",
        make=lambda data: _softmax(
            PixelCategoricalCrossentropy() + PixelDiceLoss() + PixelBoundaryLoss(from_maps=True)
        ),
    ),
    _case(
        "boundary_labels",
        f"pixel_boundary on pixel_softmax output, {BLOCK}-px blocks, uint8 (maps on the device)",
        "blocks",
        "floor_sparse",
        None,
        None,
        _on_softmax(PixelBoundaryLoss),
    ),
    _case(
        "boundary_maps_alone",
        f"pixel_boundary_targets of the {BLOCK}-px blocks (the maps alone, no gradient)",
        "blocks",
        "floor_sparse",
        make=_maps_alone,
        gradient=False,
    ),
)
CASES = {case.name: case for case in LOSS_CASES}


def make_inputs(batch, size, classes, seed=0, block=BLOCK):
    """Logits and the same labels in every form the cases take.

    Args:
        batch: Images per batch.
        size: Side of the square images.
        classes: Number of classes, 2 to 254 (uint8 masks, 255 kept for the ignore index).
        seed: Seed of the random logits and labels. Defaults to 0.
        block: Side of the class blocks of ``blocks``, at most a quarter of ``size`` (so that a
            small image has boundaries too). Defaults to :data:`BLOCK`.

    Returns:
        A dict of NumPy arrays: ``logits`` float32 ``(N, S, S, C)``; ``mask`` uint8 ``(N, S, S)``;
        ``mask_int32``; ``onehot`` float32 ``(N, S, S, C)``; ``mask_ignore`` uint8 with
        ``IGNORED_SHARE`` of the pixels set to ``IGNORE_INDEX``; ``blocks`` uint8 ``(N, S, S)``,
        ``block``-px squares of random classes (regions with boundaries, for the boundary loss);
        ``class_weights`` ``(C,)``; and the ints ``classes`` and ``min_kept``.

    Raises:
        ValueError: ``classes`` is out of range.

    Example:
        >>> data = make_inputs(2, 64, 7)
        >>> data["logits"].shape
        (2, 64, 64, 7)
    """
    if not 2 <= classes < IGNORE_INDEX:
        raise ValueError(
            f"bench: classes must be in [2, {IGNORE_INDEX - 1}]. Received: classes={classes}"
        )
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (batch, size, size, classes)).astype(np.float32)
    mask = rng.integers(0, classes, (batch, size, size)).astype(np.uint8)
    ignored = rng.random(mask.shape) < IGNORED_SHARE
    block = max(1, min(block, size // 4))
    cells = -(-size // block)
    grid = rng.integers(0, classes, (batch, cells, cells))
    blocks = np.repeat(np.repeat(grid, block, 1), block, 2)[:, :size, :size].astype(np.uint8)
    return {
        "logits": logits,
        "mask": mask,
        "mask_int32": mask.astype(np.int32),
        "onehot": np.eye(classes, dtype=np.float32)[mask],
        "mask_ignore": np.where(ignored, IGNORE_INDEX, mask).astype(np.uint8),
        "blocks": blocks,
        "class_weights": np.linspace(0.5, 1.5, classes).round(3),
        "classes": classes,
        "min_kept": size * size // 4,
    }


def boundary_maps(blocks, classes, with_labels=False):
    """``pixel_boundary_targets`` of the block masks as a float32 NumPy array (what an input
    pipeline hands the ``from_maps`` cases); with ``with_labels``, the mask first (a sum's)."""
    return ops.convert_to_numpy(
        pixel_boundary_targets(np.asarray(blocks), classes, with_labels=with_labels)
    )


#: The labels an input pipeline computes, by the ``labels`` key of the rows that read them.
PIPELINE_LABELS = {"maps": False, "blocks_maps": True}


def add_pipeline_labels(data, keys):
    """Add to ``data`` (from :func:`make_inputs`) the labels of ``keys`` that an input pipeline
    would compute: ``"maps"``, the blocks' signed distance maps, and ``"blocks_maps"``, the
    blocks' mask then its maps (``y_true`` of a sum with a ``from_maps`` boundary term).

    Args:
        data: The inputs' dict; changed in place.
        keys: The ``labels`` keys of the rows to run.

    Returns:
        ``data``.

    Example:
        >>> data = add_pipeline_labels(make_inputs(2, 64, 7), {"maps"})
    """
    for key, with_labels in PIPELINE_LABELS.items():
        if key in keys:
            data[key] = boundary_maps(data["blocks"], data["classes"], with_labels)
    return data


def select(names=None, available=()):
    """The rows to run: ``names`` with every row they are compared with, or all; a baseline row
    only where its backend writes it (its name in ``available``), a case only where the row it is
    compared with runs.

    Args:
        names: Case names, or None for every row. Defaults to None.
        available: The baseline rows the backend writes. Defaults to ().

    Returns:
        The chosen :class:`Case` rows, in table order.

    Raises:
        ValueError: A name is not in the table.
    """
    if names is not None:
        unknown = sorted(set(names) - set(CASES))
        if unknown:
            raise ValueError(
                f"bench: unknown loss case(s) {unknown}. Expected names among {sorted(CASES)}."
            )
        wanted = set(names)
        while True:
            more = wanted | {CASES[name].floor for name in wanted}
            if more == wanted:
                break
            wanted = more
    else:
        wanted = set(CASES)
    rows = [
        case
        for case in LOSS_CASES
        if case.name in wanted and (case.make is not None or case.name in available)
    ]
    running = {case.name for case in rows}
    return [case for case in rows if case.floor in running]


def run_cases(rows, steps, labels, logits, repeats, warmup, peak=None, plain=None):
    """Time the rows' compiled steps interleaved, with their plain forms when given.

    Args:
        rows: The :class:`Case` rows (:func:`select`).
        steps: name -> ``step(labels, logits)``, returning the loss (and gradient) once computed.
        labels: label key -> the backend's tensor.
        logits: The backend's logits tensor.
        repeats, warmup: Timed and untimed rounds.
        peak: ``peak(call) -> bytes or None`` for one call's peak memory, or None. Defaults to
            None.
        plain: name of a plain form -> its step, for the rows whose ``plain`` names one. Defaults
            to None.

    Returns:
        name -> ``{"ms", "ms_quartiles", "ratio", "peak_bytes", "loss"}``, with ``"plain_ms"``,
        ``"plain_ratio"`` (the row's median over its plain form's) and ``"plain_loss"`` where a
        plain form ran.
    """
    plain = plain or {}
    calls = {row.name: _call(steps[row.name], labels[row.labels], logits) for row in rows}
    twins = {row.name: row for row in rows if row.plain in plain}
    for name, row in twins.items():
        calls["plain:" + name] = _call(plain[row.plain], labels[row.labels], logits)
    spread = time_interleaved_spread(calls, repeats, warmup)
    results = {}
    for row in rows:
        low, ms, high = spread[row.name]
        results[row.name] = {
            "ms": ms,
            "ms_quartiles": [low, high],
            "ratio": ms / spread[row.floor][1],
            "peak_bytes": peak(calls[row.name]) if peak else None,
            "loss": _scalar(calls[row.name]()),
        }
        if row.name in twins:
            twin = spread["plain:" + row.name][1]
            results[row.name].update(
                plain_ms=twin,
                plain_ratio=ms / twin,
                plain_loss=_scalar(calls["plain:" + row.name]()),
            )
    return results


def _call(step, labels, logits):
    return lambda: step(labels, logits)


def _scalar(output):
    value = output[0] if isinstance(output, (tuple, list)) else output
    value = np.asarray(ops.convert_to_numpy(value), np.float64)
    return float(value.mean()) if value.ndim else float(value)


def loss_targets(rows, results, modes, plain_limit=None):
    """The targets on the rows that ran.

    Args:
        rows: The :class:`Case` rows that ran.
        results: name -> mode -> the figures of :func:`run_cases`.
        modes: The modes timed (``"graph"``, ``"xla"``, ``"jit"``, ``"eager"``).
        plain_limit: Check every row's plain ratio against this, instead of the rows' limits on
            their floor ratios; None for the latter. Defaults to None.

    Returns:
        A list of ``{"name", "ratio", "limit", "kind": "max", "met"}``.
    """
    targets = []
    for mode in modes:
        for row in rows:
            figures = results[row.name][mode]
            if plain_limit is not None:
                if "plain_ratio" not in figures:
                    continue
                name, ratio, limit = (
                    f"{row.name} / plain {row.plain} ({mode})",
                    "plain_ratio",
                    (plain_limit),
                )
            elif row.limit is not None:
                name, ratio, limit = f"{row.name} / {row.floor} ({mode})", "ratio", row.limit
            else:
                continue
            targets.append(
                {
                    "name": name,
                    "ratio": figures[ratio],
                    "limit": limit,
                    "kind": "max",
                    "met": figures[ratio] <= limit,
                }
            )
    return targets
