"""The hooks of every other Keras backend (JAX, PyTorch): ``keras.ops`` formulas, eager or host
checks, a side table of logits, sorts.

* **Logits behind a softmax in a side table.** A JAX array (or tracer) takes no attributes, so
  ``pixel_softmax`` records ``id(output) -> (weak reference to output, logits, class axis)`` in
  ``_LOGITS``; a loss of that very output (same object, same class axis) computes from the
  logits, fused. The entry goes when the output dies (the weak reference's callback), so tracing
  leaves nothing behind. Probabilities not found there take the clipped log, as on TensorFlow.
* **Data checks inside ``jit``** run on the host through one ``jax.debug.callback`` per loss, fed
  a few scalars that XLA fuses into the loss's own passes: the step raises the same
  ``ValueError`` text, wrapped by JAX in a ``JaxRuntimeError`` (as TensorFlow's graph wraps it in
  an ``InvalidArgumentError``). Called eagerly (and always on PyTorch) they raise at once.
* **No replica context.** Keras's JAX distribution computes the loss on the global batch (one
  program over sharded arrays), so every sum, count and sort is global already.
"""

import functools
import math
import weakref

import numpy as np
from keras import ops

from ..flavor import BACKEND

# Smallest normal float32: logs and powers are floored here (p^γ keeps a finite gradient for
# γ < 1, log p a finite value), so a pixel's loss stops at 87.3.
TINY = float(np.finfo(np.float32).tiny)  # 1.1754944e-38
#: The ⌈top_k·n⌉ of hard-pixel mining is taken with this relative margin (0.3·10 gives 3).
KEPT_MARGIN = 1.0 - 1e-12

#: id(softmax output) -> (weak reference to it, its logits, its class axis >= 0). Keyed by id:
#: JAX arrays and tracers are weakly referenceable but not hashable.
_LOGITS = {}


def _forget(key, ref):
    """The weak reference's callback: drop the entry of a dead output (and only its own)."""
    entry = _LOGITS.get(key)
    if entry is not None and entry[0] is ref:
        _LOGITS.pop(key, None)


def remember(output, logits, axis):
    """Record the ``logits`` behind the softmax ``output`` over the class axis ``axis``."""
    key = id(output)
    try:
        ref = weakref.ref(output, functools.partial(_forget, key))
    except TypeError:  # not weakly referenceable: no fused route, the clipped log instead
        return
    _LOGITS[key] = (ref, logits, axis)


def logits_behind(y_pred, axis, op_type):
    """The logits behind ``y_pred`` when it is a live ``pixel_softmax`` output over the class
    axis ``axis`` (``op_type`` "Softmax"), else None."""
    entry = _LOGITS.get(id(y_pred))
    if op_type != "Softmax" or entry is None or entry[0]() is not y_pred:
        return None
    _, logits, softmax_axis = entry
    return logits if axis % len(logits.shape) == softmax_axis else None


def traced(value):
    """Whether ``value`` is an abstract value being traced (inside ``jax.jit``)."""
    if BACKEND != "jax":
        return False
    import jax

    return isinstance(value, jax.core.Tracer)


def _raise_unless(message, condition, *values):
    # ops.convert_to_numpy, not np.asarray: a torch tensor must leave autograd and its device.
    if not bool(ops.convert_to_numpy(condition)):
        shown = ", ".join(_show(ops.convert_to_numpy(v)) for v in values)
        raise ValueError(message + (f" Received: {shown}" if shown else ""))


def _show(value):
    array = np.asarray(value)
    return str(array.item()) if array.ndim == 0 else str(array.tolist())


def require(checks, condition, message, *values):
    """Raise now when ``condition`` is concrete, else stage it in ``checks`` (inside ``jit``)."""
    if traced(condition):
        checks.append((condition, message, values))
    else:
        _raise_unless(message, condition, *values)


#: Whether the region losses (Dice, Jaccard, Tversky, MCC) compute from the logits behind a
#: ``pixel_softmax`` output. Here not: they need only the probabilities, which the output is,
#: and its own gradient is the cheapest (JAX Dice on pixel_softmax output: 58 ms from the
#: logits, 40 ms from the output, 8x256x256x7 on 2 cores; examples/benchmarks.md).
REGION_LOGITS = False


def drops_assertions():
    return False


def attach(checks, poison, value):
    """``value``, with the staged checks run on the host: one callback, which raises the first
    that fails."""
    if checks:
        import jax

        jax.debug.callback(
            functools.partial(_raise_first, [(m, len(v)) for _, m, v in checks]),
            *[part for condition, _, values in checks for part in (condition, *values)],
        )
    return value


def _raise_first(layout, *parts):
    at = 0
    for message, count in layout:
        _raise_unless(message, *parts[at : at + 1 + count])
        at += 1 + count


def depend(value, checks):
    return value


def extremes(x):
    """``(min, max)`` of ``x``."""
    return ops.min(x), ops.max(x)


def softmax_cross_entropy(target, logits):
    """``-Σ t·log_softmax(z) = lse(z)·Σt - Σ t·z``: the log-softmax is never formed."""
    lse = ops.logsumexp(logits, axis=-1)
    return lse * ops.sum(target, axis=-1) - ops.sum(target * logits, axis=-1)


def sparse_softmax_cross_entropy(labels, logits):
    """``lse(z) - z_y``: the label picked with a compare, not a gather (whose gradient is a
    scatter); under ``jax.jit`` faster than ``take_along_axis`` alone."""
    return ops.logsumexp(logits, axis=-1) - pick(logits, labels)


def sigmoid_cross_entropy(labels, logits):
    """``softplus(z) - z·y``: TensorFlow's ``sigmoid_cross_entropy_with_logits`` in one op
    fewer."""
    return ops.softplus(logits) - logits * labels


def written_gradient(function, x):
    """The value of ``function(x) -> (value, gradient)``, differentiated by the backend's
    autodiff (TensorFlow's hook takes the written-out ``gradient(upstream)`` instead)."""
    return function(x)[0]


def pick(values, labels):
    """Each row's value at its label: ``values`` ``(P, C)``, ``labels`` ``(P,)`` int32."""
    hit = ops.equal(labels[:, None], ops.arange(values.shape[-1], dtype=labels.dtype))
    return ops.sum(ops.where(hit, values, 0.0), axis=-1)


def gather(table, indices):
    """``table[indices]`` of a ``(C,)`` table and int32 indices in range."""
    return ops.take(table, indices)


def replicas():
    return 1


def global_sum(value):
    return value


def global_sums(local):
    return local


def gather_pixels(values, axis):
    return values, 0


def hardest(losses, counted, top_k=None, count=None):
    """Which pixels hard-pixel mining keeps: the ⌈top_k·n⌉ largest losses, or the ``count``
    largest (an int or an int32 scalar; all counted pixels when fewer), the earlier pixels first
    among equal losses. No sort and no scatter: the k-th largest loss is the threshold, every
    pixel above it is kept and, of the pixels equal to it, the first ``k - (number above)`` in
    pixel order (a cumulative sum), the mask a stable argsort would give. PyTorch takes the
    threshold from ``ops.top_k``; JAX, where ``top_k`` sorts on CPU and k may be known only in
    the step, from the float's bits (:func:`_kth_largest_key`). -0.0 equals 0.0; a NaN loss
    ranks with +inf, above every finite loss (as in TensorFlow's bit search), so the loss's
    finite check sees it."""
    size = int(losses.shape[0])
    if size == 0:
        return ops.zeros((0,), "bool")
    n = size if counted is None else ops.sum(ops.cast(counted, "int32"))
    if count is not None:
        k = ops.minimum(count, n)
    elif counted is None:
        k = _kept_count(top_k, size)
    else:
        k = _traced_kept_count(top_k, n)
    values = ops.stop_gradient(ops.cast(losses, "float32"))
    if BACKEND == "jax":
        keys = _ordered_bits(values, counted)
        threshold = _kth_largest_key(keys, k)
    else:
        keys = ops.where(ops.isnan(values), np.inf, values)
        if counted is not None:
            keys = ops.where(counted, keys, -np.inf)  # below every loss, never kept: k <= n
        k = int(ops.convert_to_numpy(k))  # k = 0 keeps none: no pixel is needed at the largest
        threshold = ops.min(ops.top_k(keys, max(k, 1), sorted=False)[0])
    above = keys > threshold
    ties = ops.cast(keys == threshold, "int32")
    needed = k - ops.sum(ops.cast(above, "int32"))
    return ops.logical_or(above, ops.logical_and(ties > 0, ops.cumsum(ties) <= needed))


def _ordered_bits(values, counted):
    """float32 ``values`` as uint32 keys in the same order (NaN as +inf, -0.0 as 0.0), 0 for the
    pixels that do not count (below every loss, never kept: k <= n)."""
    import jax.numpy as jnp
    from jax import lax

    bits = lax.bitcast_convert_type(values, jnp.int32)
    magnitude = bits & 0x7FFFFFFF
    bits = jnp.where(magnitude > 0x7F800000, 0x7F800000, bits)
    bits = jnp.where(magnitude == 0, 0, bits)  # on the bits: XLA may drop a float select of 0
    ordered = jnp.where(bits < 0, ~bits, bits | jnp.int32(-(2**31)))  # negatives reversed, below
    keys = lax.bitcast_convert_type(ordered, jnp.uint32)
    return keys if counted is None else jnp.where(counted, keys, jnp.uint32(0))


def _kth_largest_key(keys, k):
    """The k-th largest uint32 key (``k`` an int or an int32 scalar, traced or not), bit by bit
    from the top: the largest t with at least k keys >= t, in 32 passes of compare-and-count
    (on CPU ~10 ms for 0.5 M pixels where ``lax.top_k`` takes ~120). With k = 0 it is 2**32 - 1,
    above every key (NaN is +inf's key, 0xFF800000), so no pixel is kept."""
    import jax.numpy as jnp
    from jax import lax

    def step(bit, prefix):
        candidate = prefix | lax.shift_left(jnp.uint32(1), (31 - bit).astype(jnp.uint32))
        return jnp.where(jnp.sum(keys >= candidate, dtype=jnp.int32) >= k, candidate, prefix)

    return lax.fori_loop(0, 32, step, jnp.uint32(0))


def _kept_count(top_k, n):
    return int(math.ceil(top_k * KEPT_MARGIN * float(n)))


def _traced_kept_count(top_k, n):
    """:func:`_kept_count` of a count tensor: on the host inside ``jit`` (float64 is not at hand
    on the device without x64), at once otherwise."""
    if not traced(n):
        return _kept_count(top_k, int(ops.convert_to_numpy(n)))
    import jax

    return jax.pure_callback(
        lambda count: np.int32(_kept_count(top_k, int(count))),
        jax.ShapeDtypeStruct((), "int32"),
        n,
    )


#: Pixels summed side by side by :func:`lane_sums`.
LANES = 8


def lane_sums(x):
    """The sums over the pixels of ``x`` ``(G, n, C)``: ``(G, C)``.

    ``LANES`` pixels side by side first where ``n`` is a static multiple of it: XLA on CPU
    reduces a short minor axis (C, a few classes) slowly, and ``(G, n/8, 8·C)`` summed over its
    middle axis, then its 8 lanes, takes a third of the time or less (examples/benchmarks.md).
    The one home of this sum: region losses' class sums on every backend, ``pixel_mcc``'s.

    Args:
        x: A ``(G, n, C)`` tensor.

    Returns:
        ``(G, C)``: ``ops.sum(x, axis=1)``, up to float32 round-off of the order of the sums.

    Example:
        >>> lane_sums(ops.ones((2, 64, 7)))[0, 0]  # 64.0
    """
    n, width = x.shape[1], x.shape[2]
    if not (isinstance(n, int) and isinstance(width, int) and n % LANES == 0):
        return ops.sum(x, axis=1)
    x = ops.reshape(x, (-1, n // LANES, LANES * width))
    return ops.sum(ops.reshape(ops.sum(x, axis=1), (-1, LANES, width)), axis=1)


def class_sums(inputs):
    """``(Σp, Σy, TP)`` of a region loss, each ``(G, C)`` (``losses._functional.region_loss``),
    summed by :func:`lane_sums`."""
    weights, p = inputs.weights, inputs.probabilities()
    if inputs.dense:
        y = inputs.labels
        if weights is not None:
            p, y = p * weights[..., None], y * weights[..., None]
        s_p, s_y = lane_sums(p), lane_sums(y)
        return s_p, s_y, (s_p + s_y - lane_sums(ops.abs(p - y))) / 2
    hit = ops.one_hot(inputs.labels, inputs.num_classes, dtype="float32")
    if weights is not None:
        p = p * weights[..., None]
    y = hit if weights is None else hit * weights[..., None]
    return lane_sums(p), lane_sums(y), lane_sums(p * hit)


def lovasz_rows(errors, labels, valid, hard, gather, extension):
    """``(ℓ, Σ labels)`` of each row of ``errors`` ``(R, n)``: the errors in decreasing order by
    a stable argsort (the pixels that do not count last), ``extension`` of them; the gradient is
    the backend's, the sort's subgradient."""
    keys = -errors
    if valid is not None:
        keys = ops.where(valid, keys, np.inf)  # not counted: after every error
    order = ops.stop_gradient(ops.argsort(keys, axis=-1))
    e = ops.take_along_axis(errors, order, axis=-1)
    y = ops.take_along_axis(labels, order, axis=-1)
    if valid is None:
        ones = ops.ones_like(y)
    else:
        counted = ops.take_along_axis(valid, order, axis=-1)
        e = ops.where(counted, e, 0.0)
        ones = ops.cast(counted, y.dtype)
    losses, label_sums, _ = extension(e, y, ones)
    return losses, label_sums
