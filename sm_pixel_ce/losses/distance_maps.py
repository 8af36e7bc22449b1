"""Exact signed Euclidean distance maps of class masks, on ``keras.ops`` (on the device, inside the
loss): the maps of Kervadec et al.'s boundary loss (their ``one_hot2dist``, which calls SciPy's
``distance_transform_edt``), without SciPy.

The squared distance transform is separable (Felzenszwalb & Huttenlocher 2012): first along the
columns, the distance to the nearest class pixel of the column, then along the rows,
``d(i) = min_j g(j) + (i - j)²``. Both passes are exact, elementwise over the whole
``(N, H, W, K)`` tensor, with no sort or scan the backends would lower differently:

* the column pass doubles its reach at each step (``d ← min(d, d(i ± s) + s)`` for
  ``s = 1, 2, 4, ...``): ``⌈log2 H⌉`` steps;
* the row pass takes the minimum over the offsets ``k = 1, 2, ...`` in a ``while`` loop that
  stops once ``k²`` passes every pixel's current best (no farther offset can lower it): as many
  steps as the largest distance of the batch (of the classes present), at most ``W - 1``.

So the work is ``O(N·H·W·K·(log H + D))`` for a largest distance ``D``, the memory
``O(N·H·W·K)``, and the values exact in float32 (squared distances are integers below
``2**24``). Felzenszwalb–Huttenlocher's lower envelope is ``O(N·H·W·K)`` but sequential along
each row (a Python loop in NumPy, a scan on the device); ``examples/losses_mcc_boundary.md``
gives the timings.
"""

from keras import ops

#: Offsets of the row pass per trip of its loop.
_UNROLL = 8
#: Sides up to this keep every squared distance (and the "none" marker) exact in float32.
MAX_SIDE = 2048


def squared_distances(features):
    """The squared Euclidean distance of every pixel to the nearest ``True`` pixel of its image and
    channel.

    Args:
        features: ``(N, H, W, K)`` bool, static ``H`` and ``W``.

    Returns:
        ``(N, H, W, K)`` float32; 0 in a channel with no ``True`` pixel.
    """
    height, width = int(features.shape[1]), int(features.shape[2])
    far = float(height + width)  # beyond any distance along a column
    d = ops.where(features, 0.0, far)
    step = 1
    while step < height:
        d = ops.minimum(d, _shifted(d, step, far) + step)
        d = ops.minimum(d, _shifted(d, -step, far) + step)
        step *= 2
    # A column without a class pixel is far from it along the column; a channel without any,
    # everywhere (0 here: its distances are not used, and they would keep the loop going).
    present = ops.any(features, axis=(1, 2), keepdims=True)
    g = ops.where(present, ops.where(d >= far, far * far, ops.square(d)), 0.0)
    padded = ops.pad(g, [(0, 0), (0, 0), (width - 1, width - 1), (0, 0)], constant_values=far * far)
    shape = (ops.shape(g)[0], height, width, int(g.shape[3]))

    def more(k, best):
        return ops.logical_and(k < width, ops.cast(k * k, best.dtype) < ops.max(best))

    def lower(k, best):
        # _UNROLL offsets per trip: the loop's own cost (a trip, a max) amortised.
        for offset in range(_UNROLL):
            square = ops.cast((k + offset) * (k + offset), best.dtype)
            for start in (width - 1 - k - offset, width - 1 + k + offset):
                start = ops.clip(start, 0, 2 * width - 2)  # past the last offset: padding
                best = ops.minimum(best, ops.slice(padded, (0, 0, start, 0), shape) + square)
        return k + _UNROLL, best

    _, best = ops.while_loop(more, lower, (ops.convert_to_tensor(1, "int32"), g))
    return best


def _shifted(x, step, fill):
    """``x`` moved by ``step`` rows along axis 1 (``x[i - step]`` at ``i``), ``fill`` coming in."""
    height = x.shape[1]
    if step > 0:
        return ops.pad(
            x[:, : height - step], [(0, 0), (step, 0), (0, 0), (0, 0)], constant_values=fill
        )
    return ops.pad(x[:, -step:], [(0, 0), (0, -step), (0, 0), (0, 0)], constant_values=fill)


def signed_distance_maps(members):
    """Kervadec et al.'s signed distance map of each class: outside the class the distance to it,
    inside minus the distance to the nearest pixel outside it, plus 1 (0 on its inner edge).

    ``φ = d(x, class)`` outside, ``-(d(x, rest) - 1)`` inside; 0 in an image that lacks the class
    (as their ``one_hot2dist``) or that it fills (where SciPy measures to a pixel off the image,
    an artefact this does not copy).

    Args:
        members: ``(N, H, W, C)`` bool, whether each pixel is of each class (an ignored pixel is
            of none: outside every class).

    Returns:
        ``(N, H, W, C)`` float32 maps, no gradient.
    """
    height, width = members.shape[1], members.shape[2]
    if height is None or width is None or max(height, width) > MAX_SIDE:
        raise ValueError(
            "pixel_boundary_loss: the distance maps need images of static height and width up "
            f"to {MAX_SIDE} pixels. Received a mask of shape {tuple(members.shape)}; crop or "
            "resize the training images, or build the model with a fixed input size."
        )
    members = ops.convert_to_tensor(members)
    classes = members.shape[-1]
    both = squared_distances(ops.concatenate([members, ops.logical_not(members)], axis=-1))
    to_class, to_rest = both[..., :classes], both[..., classes:]
    outside, inside = ops.sqrt(to_class), 1.0 - ops.sqrt(to_rest)
    maps = ops.where(members, inside, outside)
    # An image without the class has no boundary to move towards, one the class fills none to
    # move away from.
    present = ops.any(members, axis=(1, 2), keepdims=True)
    filled = ops.all(members, axis=(1, 2), keepdims=True)
    maps = ops.where(ops.logical_and(present, ops.logical_not(filled)), maps, 0.0)
    return ops.stop_gradient(maps)
