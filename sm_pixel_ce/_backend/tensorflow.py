"""TensorFlow's hooks (``KERAS_BACKEND=tensorflow`` and tf_keras): fused kernels, graph
assertions, ``tf.distribute``.

* **Fused cross-entropies**: ``tf.nn.*_cross_entropy_with_logits`` (one kernel, exact gradient).
* **Checks** are ``tf.debugging.Assert`` ops attached as control dependencies in a graph, raised
  at once eagerly (``_checks.data``). XLA drops assertions: a check that would pass a wrong,
  finite loss there (probabilities outside [0, 1]) makes the loss NaN instead (``poison``).
* **Distribution**: under a ``tf.distribute`` strategy the sums, counts, sorts and the pixels
  hard-pixel mining keeps are those of the global batch (all-reduce, all-gather), so that the
  replicas' shares add up to the one-device loss and gradient.
"""

import tensorflow as tf

from .. import _checks
from .generic import KEPT_MARGIN


def logits_behind(y_pred, axis, op_type):
    """The logits behind a softmax/sigmoid output (Keras's ``_keras_logits`` or the graph op
    ``op_type``), else None."""
    logits = getattr(y_pred, "_keras_logits", None)
    if logits is not None:
        return logits
    if (
        hasattr(y_pred, "op")
        and not isinstance(y_pred, (tf.__internal__.EagerTensor, tf.Variable))
        and y_pred.op.type == op_type
    ):
        return y_pred.op.inputs[0]
    return None


def remember(output, logits, axis):
    """Keep ``logits`` on the softmax ``output`` (as Keras's own softmax does)."""
    try:
        output._keras_logits = logits
    except AttributeError:  # a C-level tensor type that takes no attributes
        pass


def require(checks, condition, message, *values):
    """Raise now (eagerly), or add an assertion to ``checks`` (a graph)."""
    checks += _checks.data(condition, message, *values)


def drops_assertions():
    """Whether the graph being built drops assertions (XLA)."""
    return _checks.compiling_with_xla()


def attach(checks, poison, value):
    """``value`` after the assertions ``checks``; NaN where a ``poison`` condition is false."""
    if poison:
        value = tf.where(tf.reduce_all(tf.stack(poison)), value, float("nan"))
    return depend(value, checks)


def depend(value, checks):
    """``value`` computed only once the assertions ``checks`` passed (a graph)."""
    if not checks:
        return value
    with tf.control_dependencies(checks):
        return tf.identity(value)


def extremes(x):
    """``(min, max)`` of ``x``: ``(inf, -inf)`` for an empty batch, where Keras's ops raise."""
    return tf.reduce_min(x), tf.reduce_max(x)


def softmax_cross_entropy(target, logits):
    """``-Σ_c t_c·log softmax(z)_c`` per row of ``(P, C)``: TensorFlow's fused kernel."""
    return tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=logits)


def sparse_softmax_cross_entropy(labels, logits):
    """``-log softmax(z)_y`` per row: TensorFlow's fused kernel (``labels`` ``(P,)`` int32)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def sigmoid_cross_entropy(labels, logits):
    """The elementwise sigmoid cross-entropy: TensorFlow's fused kernel."""
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def pick(values, labels):
    """Each row's value at its label: ``values`` ``(P, C)``, ``labels`` ``(P,)`` int32."""
    return tf.gather(values, labels[:, None], batch_dims=1)[:, 0]


def replicas():
    """Number of replicas whose losses are summed (1 outside a distribution strategy)."""
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def _context():
    context = tf.distribute.get_replica_context()
    return None if context is None or context.num_replicas_in_sync == 1 else context


def global_sum(value):
    """``value`` (a count or denominator, no gradient) summed over the replicas."""
    context = _context()
    if context is None:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(value))


def global_sums(local):
    """Sums over the pixels of every replica, from this replica's sums ``local``.

    The value is the global sum; the gradient is ``replicas()`` times that of ``local``. A loss
    ``f(S)`` of global sums ``S`` then returns the share ``f(global_sums(s)) / replicas()``: the
    replicas' shares add up to ``f(S)``, and their gradients, summed as Keras sums them, to the
    gradient of ``f(S)`` on one device (``f'(S)·Σ_r ∂s_r``). Outside a strategy: ``local``.
    """
    context = _context()
    if context is None:
        return local
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(local))
    # local - stop_gradient(local) is exactly 0: it only carries the gradient.
    return total + context.num_replicas_in_sync * (local - tf.stop_gradient(local))


def gather_pixels(values, axis):
    """Every replica's ``values`` concatenated along ``axis`` in replica order, and where this
    replica's own start: ``(gathered, offset)``. Outside a strategy: ``(values, 0)``."""
    context = _context()
    if context is None:
        return values, 0
    gathered = [context.all_gather(tf.stop_gradient(v), axis=axis) for v in values]
    sizes = context.all_gather(tf.shape(values[0])[axis : axis + 1], axis=0)
    offset = tf.reduce_sum(sizes[: tf.cast(context.replica_id_in_sync_group, tf.int32)])
    return gathered, offset


def hardest(losses, counted, top_k=None, count=None):
    """Which pixels hard-pixel mining keeps (``_pixels.hardest``), by a binary search on the
    float's bits (31 passes of compare-and-count, no sort), which costs less than the loss
    itself on CPU and GPU. Under ``tf.distribute`` ``n``, the counts of the search and the order
    of ties are taken across all replicas (in replica order, the order of the global batch).
    With ``count`` (an int32 scalar, global already: OHEM's ``min_kept``) the ``count`` largest
    are kept instead of ⌈top_k·n⌉ (every counted pixel when fewer)."""
    # A float >= 0 orders as its bits read as an int32 (cross-entropies are >= 0; the max()
    # only turns a -0.0 into 0). Pixels that do not count get -1, below every loss.
    keys = tf.bitcast(tf.maximum(tf.stop_gradient(tf.cast(losses, tf.float32)), 0.0), tf.int32)
    if counted is None:
        n = tf.size(losses)
    else:
        keys = tf.where(counted, keys, -1)
        n = tf.reduce_sum(tf.cast(counted, tf.int32))
    if count is not None:
        k = tf.cast(count, tf.int32)
    else:
        n = _global_total(n)
        k = tf.cast(tf.math.ceil(top_k * KEPT_MARGIN * tf.cast(n, tf.float64)), tf.int32)
    # Largest threshold t with at least k keys >= t: the k-th largest key.
    low = tf.constant(0, tf.int32)
    high = tf.constant(2**31 - 1, tf.int32)
    for _ in range(31):
        middle = high - (high - low) // 2  # the upper middle, without overflow
        enough = _global_total(tf.reduce_sum(tf.cast(keys >= middle, tf.int32))) >= k
        low = tf.where(enough, middle, low)
        high = tf.where(enough, high, middle - 1)
    above = keys > low
    ties = tf.cast(tf.equal(keys, low), tf.int32)
    needed = k - _global_total(tf.reduce_sum(tf.cast(above, tf.int32)))
    tie_rank = tf.cumsum(ties) + _ties_before_this_replica(tf.reduce_sum(ties))
    return tf.logical_or(above, tf.logical_and(ties > 0, tie_rank <= needed))


def _global_total(value):
    context = _context()
    return value if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _ties_before_this_replica(local_ties):
    """How many tied pixels the replicas before this one hold (0 outside a strategy)."""
    context = _context()
    if context is None:
        return tf.constant(0, tf.int32)
    replicas = context.num_replicas_in_sync
    own = tf.one_hot(context.replica_id_in_sync_group, replicas, dtype=tf.int32) * local_ties
    every = context.all_reduce(tf.distribute.ReduceOp.SUM, own)
    return tf.reduce_sum(every[: tf.cast(context.replica_id_in_sync_group, tf.int32)])


def gather(table, indices):
    """``table[indices]`` of a ``(C,)`` table and int32 indices in range."""
    return tf.gather(table, indices)
