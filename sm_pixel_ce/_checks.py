"""Argument and data checks that end in a clear ``ValueError``.

Checks on *values* (label ranges, integral masks) are data-dependent: called eagerly they raise
``ValueError``; inside a compiled graph (``model.fit``) the same message comes as
``tf.errors.InvalidArgumentError`` when the step runs. Under XLA TensorFlow drops assertions.
"""

import numbers

import numpy as np
import tensorflow as tf

try:  # TensorFlow's own test for "this graph is being compiled by XLA" (cond_v2 uses it)
    from tensorflow.python.framework import ops as _ops
    from tensorflow.python.ops import control_flow_util as _control_flow_util
except ImportError:  # another TensorFlow layout: taken as not compiling with XLA
    _control_flow_util = None


def axis_argument(axis, where, name="axis"):
    """Validate that ``axis`` is an integer (its range is checked when the input's rank is
    known)."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ValueError(f"{where}: `{name}` must be an integer. Received: {name}={axis!r}")
    return int(axis)


def class_axis(axis, rank, where, min_rank=1):
    """Validate ``axis`` against a tensor of rank ``rank`` and return it as a non-negative int."""
    axis_argument(axis, where)
    if rank is None:
        raise ValueError(
            f"{where}: the input's rank must be known. Received an input of unknown rank."
        )
    if rank < min_rank:
        raise ValueError(
            f"{where}: expected an input of rank >= {min_rank} (e.g. (N, H, W, C)). "
            f"Received rank {rank}."
        )
    if not -rank <= axis < rank:
        raise ValueError(
            f"{where}: `axis` is out of range for an input of rank {rank}; expected "
            f"-{rank} <= axis < {rank}. Received: axis={axis}"
        )
    return int(axis) % rank


def label_smoothing(value, where, name="label_smoothing"):
    """Validate a label smoothing: a number in [0, 1]."""
    return _number(
        value,
        lambda v: 0.0 <= v <= 1.0,
        f"{where}: `{name}` must be a number in [0, 1]. Received: {name}={value!r}",
    )


def ignore_index(value, where, name="ignore_index"):
    """Validate an ignored label value: an integer, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"{where}: `{name}` must be an integer label value or None. Received: {name}={value!r}"
        )
    return int(value)


def focal_gamma(value, where, name="focal_gamma"):
    """Validate the focal exponent: a finite number >= 0."""
    return _number(
        value,
        lambda v: np.isfinite(v) and v >= 0,
        f"{where}: `{name}` must be a finite number >= 0 (0 is the plain cross-entropy). "
        f"Received: {name}={value!r}",
    )


def top_k(value, where, name="top_k"):
    """Validate the hard-pixel fraction: None, or a number in (0, 1]."""
    return _fraction_or_none(
        value, where, name, "a fraction of the counted pixels in (0, 1], or None for every pixel"
    )


def focal_alpha(value, where, name="focal_alpha"):
    """Validate ``pixel_cce``'s focal alpha: None, a finite number >= 0, or one per class (a
    list of floats, as a config holds it)."""
    return _scalar_or_per_class(value, where, name, lambda v: np.isfinite(v) and v >= 0, ">= 0")


def binary_focal_alpha(value, where, name="focal_alpha"):
    """Validate ``pixel_bce``'s focal alpha (torchvision's ``alpha``): None, a number in [0, 1],
    or one per class."""
    return _scalar_or_per_class(value, where, name, lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


def pos_weight(value, where, name="pos_weight"):
    """Validate ``pixel_bce``'s positive-class weights: None, or one finite number >= 0 per
    class (PyTorch's ``BCEWithLogitsLoss(pos_weight=...)``)."""
    if value is None:
        return None
    weights = _nonnegative_per_class(value, where, name, "value", ", one per class")
    return [float(w) for w in weights]


def ohem_threshold(value, where, name="ohem_threshold"):
    """Validate the OHEM probability threshold: None (off), or a number in (0, 1]."""
    return _fraction_or_none(
        value,
        where,
        name,
        "a probability in (0, 1] (the pixels whose target-class probability is below it are "
        "kept), or None",
    )


def min_kept(value, where, name="min_kept"):
    """Validate OHEM's least number of pixels kept per image: an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"{where}: `{name}` must be an integer >= 0 (pixels kept per image at least). "
            f"Received: {name}={value!r}"
        )
    return int(value)


def _fraction_or_none(value, where, name, expected):
    """None, or ``value`` as a float in (0, 1]; else a ValueError saying it must be ``expected``."""
    message = f"{where}: `{name}` must be {expected}. Received: {name}={value!r}"
    return None if value is None else _number(value, lambda v: 0.0 < v <= 1.0, message)


def _per_class_values(value, where, name, what="value"):
    """``value`` as a 1-D float64 array of one ``what`` per class, else a ValueError."""
    try:
        values = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: `{name}` must be a sequence of numbers, one per class. "
            f"Received: {name}={value!r}"
        ) from None
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"{where}: `{name}` must be a 1-D sequence, one {what} per class. "
            f"Received shape {values.shape}."
        )
    return values


def _nonnegative_per_class(value, where, name, what, said):
    """``value`` as :func:`_per_class_values`, every entry finite and >= 0 (``said``: what the
    message adds after that rule)."""
    weights = _per_class_values(value, where, name, what)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(
            f"{where}: `{name}` must be finite and >= 0{said}. Received: {name}={weights.tolist()}"
        )
    return weights


def _scalar_or_per_class(value, where, name, within, wanted):
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return _number(
            value,
            within,
            f"{where}: `{name}` must be a number {wanted}, one per class, or None. "
            f"Received: {name}={value!r}",
        )
    values = _per_class_values(value, where, name)
    if not all(within(v) for v in values):
        raise ValueError(
            f"{where}: every `{name}` must be {wanted}. Received: {name}={values.tolist()}"
        )
    return [float(v) for v in values]


def class_weights(value, where, name="class_weights"):
    """Validate per-class weights; returns a list of floats (as a config holds it) or None."""
    if value is None:
        return None
    weights = _nonnegative_per_class(value, where, name, "weight", "")
    if not np.any(weights > 0):
        raise ValueError(
            f"{where}: `{name}` are all zero, so no pixel would count. "
            f"Received: {name}={weights.tolist()}"
        )
    return [float(w) for w in weights]


def one_weight_per_class(class_weights, num_classes, where, name="class_weights"):
    """Require one class weight per predicted class (``name``: the option's name)."""
    if len(class_weights) != num_classes:
        raise ValueError(
            f"{where}: `{name}` needs one weight per class: expected {num_classes}, "
            f"received {len(class_weights)} ({list(class_weights)})."
        )


def non_negative(value, where, name):
    """Validate a finite number >= 0 (``smooth``, Tversky's ``alpha`` and ``beta``)."""
    return _number(
        value,
        lambda v: np.isfinite(v) and v >= 0,
        f"{where}: `{name}` must be a finite number >= 0. Received: {name}={value!r}",
    )


def positive(value, where, name):
    """Validate a finite number > 0 (``eps``, Tversky's ``gamma``)."""
    return _number(
        value,
        lambda v: np.isfinite(v) and v > 0,
        f"{where}: `{name}` must be a finite number > 0. Received: {name}={value!r}",
    )


def flag(value, where, name):
    """Validate a bool option (``log_loss``, ``per_image``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{where}: `{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def truth(value, where, name):
    """Any value, as a bool (``from_logits``: Keras takes its truth value too)."""
    return bool(value)


def one_of(value, where, name, allowed):
    """Validate a word among ``allowed``."""
    if value not in allowed:
        raise ValueError(
            f"{where}: `{name}` must be one of {list(allowed)}. Received: {name}={value!r}"
        )
    return value


def class_list(value, where, name="classes", allowed=()):
    """Validate ``classes``: None, one of the words in ``allowed``, or distinct class indices.

    Returns:
        None, the word, or a list of ints (their range is checked against the predictions).
    """
    if value is None or (isinstance(value, str) and value in allowed):
        return value
    words = f" or one of {list(allowed)}" if allowed else ""
    try:
        indices = [] if isinstance(value, str) else list(np.asarray(value).ravel())
    except TypeError:
        indices = []
    if (
        isinstance(value, str)
        or not indices
        or not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in indices)
        or len(set(int(i) for i in indices)) != len(indices)
        or min(int(i) for i in indices) < 0
    ):
        raise ValueError(
            f"{where}: `{name}` must be a list of distinct class indices >= 0{words}. "
            f"Received: {name}={value!r}"
        )
    return [int(i) for i in indices]


def classes_in_range(classes, num_classes, where):
    """Require every index of a ``classes`` list to be a predicted class."""
    if isinstance(classes, list) and max(classes) >= num_classes:
        raise ValueError(
            f"{where}: `classes` names a class the predictions do not have: expected indices "
            f"in [0, {num_classes - 1}] for {num_classes} predicted classes. "
            f"Received: classes={classes}"
        )


def loss_weight(value, where):
    """Validate the weight of a term in a sum of losses: a finite real number."""
    return _number(
        value,
        np.isfinite,
        f"{where}: a loss's weight must be a finite number. Received: weight={value!r}",
    )


def loss_name(value, where, name="name"):
    """Validate a loss's ``name``: a non-empty string, or None (the class's own name)."""
    if value is None or (isinstance(value, str) and value):
        return value
    raise ValueError(
        f"{where}: `{name}` must be a non-empty string or None. Received: {name}={value!r}"
    )


#: The dtypes a loss may return (``dtype=``); Keras's policies name them too ("mixed_float16").
LOSS_DTYPES = ("float16", "bfloat16", "float32", "float64")


def loss_dtype(value, where, name="dtype"):
    """Validate a loss's ``dtype``: a float dtype (a name, NumPy or TensorFlow dtype), a Keras
    ``DTypePolicy`` / tf_keras ``Policy`` or a policy's name, whose compute dtype counts; None.

    Returns:
        None, or the dtype's name (one of :data:`LOSS_DTYPES`).
    """
    if value is None:
        return None
    dtype = getattr(value, "compute_dtype", value)
    if isinstance(dtype, str) and dtype.startswith("mixed_"):
        dtype = dtype[len("mixed_") :]
    try:
        dtype = tf.as_dtype(dtype).name
    except (TypeError, ValueError):
        dtype = None
    if dtype not in LOSS_DTYPES:
        raise ValueError(
            f"{where}: `{name}` must be a float dtype {list(LOSS_DTYPES)}, a Keras DTypePolicy "
            f"or None. Received: {name}={value!r}"
        )
    return dtype


def _number(value, within, message):
    """``value`` as a float when it is a real number (not a bool) ``within`` accepts; else a
    ValueError with ``message``."""
    real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if not real or not within(value):
        raise ValueError(message)
    return float(value)


def compiling_with_xla():
    """Whether the graph being built is compiled by XLA (``jit_compile=True``), where
    assertions are dropped."""
    return _control_flow_util is not None and _control_flow_util.GraphOrParentsInXlaContext(
        _ops.get_default_graph()
    )


def data(condition, message, *values):
    """Require a boolean tensor ``condition``; ``values`` are tensors appended to the message.

    Returns a list of control dependencies to attach (empty when checked eagerly).
    """
    if isinstance(condition, bool) or tf.executing_eagerly():
        if not bool(condition):
            shown = ", ".join(_show(v) for v in values)
            raise ValueError(message + (f" Received: {shown}" if shown else ""))
        return []
    return [tf.debugging.Assert(condition, [message, *values], summarize=8)]


def _show(value):
    array = np.asarray(value)
    return str(array.item()) if array.ndim == 0 else str(array.tolist())
