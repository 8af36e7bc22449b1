"""The calls that tests/test_backend_rules.py (TensorFlow: Keras 3 and tf_keras) and
tests/test_jax_backend_rules.py (JAX) both make, and their float64 NumPy expectations: one call
gives one number on every backend (the rules of examples/backend_rules.md).

The probabilities hold what the rules are about: 1e-9, 1e-30, a subnormal (1e-40), exact 0 and
exact 1, and values just outside [0, 1] (within the tolerance the losses accept). The
expectations follow the rule for plain probabilities, ``log`` of ``p`` clipped to [smallest
normal float32, 1] (reference.probability_logits), where Keras clips to [1e-7, 1 - 1e-7] and
stops at 16.1.
"""

import numpy as np
from keras import ops
from reference import (
    TINY32,
    binary_probability_logits,
    pixel_bce,
    pixel_cce,
    probability_logits,
    smp_dice,
    smp_lovasz_softmax,
)

import sm_pixel_ce

REL, ABS = 1e-5, 1e-7
N, H, W, C = 1, 3, 4, 4
IGNORE_INDEX = 255
#: Class weights as a user gives them: float64 NumPy (and, in the tests, the same as a list).
CLASS_WEIGHTS = np.array([0.1, 0.7, 1.3, 2.9])

# (probabilities of one pixel, its label): the first pixels of the batch.
SPECIAL_PIXELS = (
    ([1e-9, 1.0 - 1e-9, 0.0, 0.0], 0),  # -log p = 20.7 (Keras: 16.1)
    ([1e-30, 0.5, 0.5, 0.0], 0),  # 69.1
    ([0.0, 1.0, 0.0, 0.0], 2),  # exact 0: 87.34, the smallest normal float32's
    ([0.0, 1.0, 0.0, 0.0], 1),  # exact 1: 0 (Keras: 1e-7)
    ([1e-40, 0.25, 0.25, 0.5], 0),  # subnormal: 87.34 as for 0
    ([-5e-4, 1.0005, 0.0, 0.0], 1),  # within the tolerance of [0, 1]: 0, never below
)


def inputs():
    """``(probabilities, mask)``: float32 ``(N, H, W, C)`` probabilities whose first pixels are
    :data:`SPECIAL_PIXELS`, the others random, and their int64 ``(N, H, W)`` mask."""
    rng = np.random.default_rng(29)
    p = rng.dirichlet(np.ones(C), size=(N, H, W))
    mask = rng.integers(0, C, (N, H, W))
    for i, (row, label) in enumerate(SPECIAL_PIXELS):
        p.reshape(-1, C)[i] = row
        mask.reshape(-1)[i] = label
    return p.astype(np.float32), mask


def labels(form, mask):
    """The labels of ``mask`` in ``form``: ``"mask"``, ``"one_hot"`` (float32), or
    ``"mask_ignored"`` (the last two pixels set to :data:`IGNORE_INDEX`)."""
    if form == "one_hot":
        return np.eye(C, dtype=np.float32)[mask]
    if form == "mask_ignored":
        ignored = mask.copy()
        ignored.reshape(-1)[-2:] = IGNORE_INDEX
        return ignored
    return mask


def _cce(**options):
    return lambda p, y: pixel_cce(y, probability_logits(p), **options)


def _bce(**options):
    return lambda p, y: pixel_bce(np.eye(C)[y], binary_probability_logits(p), **options)


#: name: (loss, label form, keyword arguments, reference ``f(float64 probabilities, mask)``).
PROBABILITY_CASES = {
    "cce_mask": ("cce", "mask", {"reduction": "none"}, _cce(reduction="none")),
    "cce_one_hot": ("cce", "one_hot", {"reduction": "none"}, _cce(reduction="none")),
    "cce_mean": ("cce", "mask", {}, _cce()),
    "cce_weighted_ignored": (
        "cce",
        "mask_ignored",
        {"class_weights": CLASS_WEIGHTS, "ignore_index": IGNORE_INDEX},
        _cce(class_weights=CLASS_WEIGHTS, ignore_index=IGNORE_INDEX),
    ),
    "cce_label_smoothing": (
        "cce",
        "mask",
        {"label_smoothing": 0.1, "reduction": "none"},
        _cce(smoothing=0.1, reduction="none"),
    ),
    "focal": (
        "cce",
        "mask",
        {"focal_gamma": 2.0, "reduction": "none"},
        _cce(gamma=2.0, reduction="none"),
    ),
    "focal_half_gamma_one_hot": (
        "cce",
        "one_hot",
        {"focal_gamma": 0.5, "reduction": "none"},
        _cce(gamma=0.5, reduction="none"),
    ),
    "top_k": ("cce", "mask", {"top_k": 0.25}, _cce(top_k=0.25)),
    "top_k_focal_weighted": (
        "cce",
        "mask_ignored",
        {
            "top_k": 0.5,
            "focal_gamma": 2.0,
            "class_weights": CLASS_WEIGHTS,
            "ignore_index": IGNORE_INDEX,
        },
        _cce(top_k=0.5, gamma=2.0, class_weights=CLASS_WEIGHTS, ignore_index=IGNORE_INDEX),
    ),
    "bce_one_hot": ("bce", "one_hot", {"reduction": "none"}, _bce(reduction="none")),
    "bce_mask": ("bce", "mask", {"reduction": "none"}, _bce(reduction="none")),
    "bce_focal": (
        "bce",
        "one_hot",
        {"focal_gamma": 2.0, "reduction": "none"},
        _bce(gamma=2.0, reduction="none"),
    ),
    "bce_top_k": ("bce", "one_hot", {"top_k": 0.25}, _bce(top_k=0.25)),
}

FUNCTIONS = {
    "cce": sm_pixel_ce.pixel_categorical_crossentropy,
    "bce": sm_pixel_ce.pixel_binary_crossentropy,
    "focal": lambda y, p, **kw: sm_pixel_ce.pixel_categorical_crossentropy(
        y, p, focal_gamma=2.0, **kw
    ),
    "top_k": lambda y, p, **kw: sm_pixel_ce.pixel_categorical_crossentropy(y, p, top_k=0.5, **kw),
    "dice": sm_pixel_ce.pixel_dice_loss,
    "lovasz": sm_pixel_ce.pixel_lovasz_loss,
}

#: loss: the dtype its value takes for float64 predictions (where the backend holds float64).
#: The cross-entropies keep float64; the region losses compute in float32 (Lovász sorts float32
#: bits) whatever the input.
FLOAT64_RESULT = {
    "cce": "float64",
    "bce": "float64",
    "focal": "float64",
    "top_k": "float64",
    "dice": "float32",
    "lovasz": "float32",
}
HALF_AND_SINGLE = ("float16", "bfloat16", "float32")


def probability_case(name):
    """``(loss function, y_true, y_pred, kwargs, expected)`` of :data:`PROBABILITY_CASES`."""
    loss, form, kwargs, reference = PROBABILITY_CASES[name]
    p, mask = inputs()
    y = labels(form, mask)
    mask = labels("mask_ignored", mask) if form == "mask_ignored" else mask
    return FUNCTIONS[loss], y, p, kwargs, reference(p.astype(np.float64), mask)


def weighted_inputs(form, label_form, dtype):
    """``(y_true, y_pred, mask)`` of the class-weight checks: ``y_pred`` of ``dtype``, random
    logits (``form="logits"``) or :func:`inputs`' probabilities, clipped to [0, 1] for a region
    loss (``"region"``: SMP's intersection ``(Σp + Σy - Σ|p - y|) / 2`` is ``Σ p·y`` only
    there); ``y_true`` the ``"mask_ignored"`` labels, or their one-hot (ignored pixels all 0)."""
    p, mask = inputs()
    mask = labels("mask_ignored", mask)
    if form == "logits":
        p = np.random.default_rng(5).normal(0.0, 3.0, p.shape).astype(np.float32)
    elif form == "region":
        p = np.clip(p, 0.0, 1.0)
    y_true = mask
    if label_form == "one_hot":
        counted = mask != IGNORE_INDEX
        y_true = np.eye(C, dtype=np.float32)[np.where(counted, mask, 0)] * counted[..., None]
    return y_true, ops.cast(p, dtype), mask


def check(value, expected):
    np.testing.assert_allclose(ops.convert_to_numpy(value), expected, rtol=REL, atol=ABS)


def as_float64(x):
    """A backend tensor of any float dtype (bfloat16 too) as float64 NumPy."""
    return ops.convert_to_numpy(ops.cast(x, "float32")).astype(np.float64)


def class_weights_expected(y_pred, mask, from_logits):
    """The reference of ``pixel_cce(..., class_weights=CLASS_WEIGHTS, ignore_index=255)`` on
    ``y_pred`` as the backend holds it (half precision rounded)."""
    x = as_float64(y_pred)
    logits = x if from_logits else probability_logits(x)
    return pixel_cce(mask, logits, class_weights=CLASS_WEIGHTS, ignore_index=IGNORE_INDEX)


def dice_expected(y_pred, mask):
    return smp_dice(
        as_float64(y_pred), mask, class_weights=CLASS_WEIGHTS, ignore_index=IGNORE_INDEX
    )


def sample_weight_expected(y_pred, mask, sample_weight):
    return pixel_cce(mask, probability_logits(as_float64(y_pred)), sample_weight=sample_weight)


def lovasz_expected(y_pred, mask):
    return smp_lovasz_softmax(as_float64(y_pred), mask, ignore=IGNORE_INDEX)


def result_dtype(value):
    return str(ops.convert_to_numpy(value).dtype)


def dtype_case(name):
    """``(fn, y_true)`` of a loss in :data:`FUNCTIONS` on :func:`inputs`."""
    _, mask = inputs()
    return FUNCTIONS[name], labels("one_hot" if name == "bce" else "mask", mask)


def cce_gradient(p, mask):
    """The gradient of the mean ``-log clip(p_y / Σp)`` w.r.t. plain probabilities ``p``:
    ``(1/Σp - [c = y]/p_y) / P`` where ``p_y / Σp`` lies in [tiny, 1], else 0 (the clip)."""
    p = np.asarray(p, np.float64).reshape(-1, C)
    y = np.asarray(mask).reshape(-1)
    total = p.sum(-1)
    p_y = p[np.arange(len(y)), y]
    inside = (p_y / total >= TINY32) & (p_y / total <= 1.0)
    g = 1.0 / total[:, None] - np.eye(C)[y] / np.where(inside, p_y, 1.0)[:, None]
    return (np.where(inside[:, None], g, 0.0) / len(y)).reshape((N, H, W, C))


def bce_gradient(p, mask):
    """The gradient of the mean over channels and pixels of ``-(y log p' + (1 - y) log q)``,
    ``p' = clip(p)``, ``q = clip(1 - p')``, w.r.t. ``p``: 0 where ``p`` is outside [tiny, 1], and
    the ``1 - y`` term's 0 where ``1 - p'`` is below tiny."""
    p = np.asarray(p, np.float64)
    y = np.eye(C)[mask]
    clipped = np.clip(p, TINY32, 1.0)
    q = 1.0 - clipped
    g = -y / clipped + (1 - y) * np.where(q >= TINY32, 1.0 / np.maximum(q, TINY32), 0.0)
    inside = (p >= TINY32) & (p <= 1.0)
    return np.where(inside, g, 0.0) / y.size


def gap_inputs():
    """``(logits, mask)``: one pixel per logit gap 20, 50, 80 and 86 against its label, where the
    label's softmax probability (2e-9 to 5e-38) is still a normal float32."""
    gaps = np.array([20.0, 50.0, 80.0, 86.0], np.float32)
    logits = np.zeros((1, 1, len(gaps), C), np.float32)
    logits[0, 0, :, 1] = gaps
    return logits, np.zeros((1, 1, len(gaps)), np.int64)


def gap_expected(logits, mask):
    return pixel_cce(mask, logits, reduction="none")
