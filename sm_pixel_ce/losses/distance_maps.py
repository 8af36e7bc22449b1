"""Exact signed Euclidean distance maps of class masks, on ``keras.ops`` (on the device, inside the
loss): the maps of Kervadec et al.'s boundary loss (their ``one_hot2dist``, which calls SciPy's
``distance_transform_edt``), without SciPy.

The squared distance transform is separable (Felzenszwalb & Huttenlocher 2012): along the rows,
then along the columns, ``d(i) = min_j g(j) + (i - j)²``. Each pass here takes that minimum over
every offset ``k`` at once from shifted slices of ``g``: ``2(S - 1)`` elementwise minima of the
whole ``(N, H, W, K)`` tensor per pass of side ``S``, so ``O(N·H·W·K·(H + W))`` work and
``O(N·H·W·K)`` memory, exact in float32 (squared distances are integers below ``2**24``), with
no sort, scan or loop the backends would lower differently. Felzenszwalb–Huttenlocher's lower
envelope is ``O(N·H·W·K)`` but sequential along each row: a Python loop in NumPy (the input
pipeline) or a scan on the device, both slower at the sides we train at (``examples/
losses_mcc_boundary.md`` gives the timings).
"""

from keras import ops

#: Sides up to this keep every squared distance (and the "none" marker) exact in float32.
MAX_SIDE = 2048


def squared_distances(features):
    """The squared Euclidean distance of every pixel to the nearest ``True`` pixel of its image and
    channel.

    Args:
        features: ``(N, H, W, K)`` bool, static ``H`` and ``W``.

    Returns:
        ``(N, H, W, K)`` float32; at least ``(H + W)²`` in a channel with no ``True`` pixel.
    """
    height, width = int(features.shape[1]), int(features.shape[2])
    far = float((height + width) ** 2)
    g = ops.where(features, 0.0, far)
    return _lower_envelope(_lower_envelope(g, 1, height, far), 2, width, far)


def _lower_envelope(g, axis, size, far):
    """``min_j g(j) + (i - j)²`` along ``axis`` (of length ``size``) of ``g``."""
    pad = [(0, 0)] * 4
    pad[axis] = (size - 1, size - 1)
    padded = ops.pad(g, pad, constant_values=far)
    best = g
    for k in range(1, size):
        for start in (size - 1 - k, size - 1 + k):
            index = [slice(None)] * 4
            index[axis] = slice(start, start + size)
            best = ops.minimum(best, padded[tuple(index)] + float(k * k))
    return best


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
    far = float((height + width) ** 2)
    outside = ops.sqrt(ops.minimum(to_class, far))
    inside = 1.0 - ops.sqrt(ops.minimum(to_rest, far))
    maps = ops.where(members, inside, outside)
    # An image without the class has no boundary to move towards, one the class fills none to
    # move away from.
    present = ops.any(members, axis=(1, 2), keepdims=True)
    filled = ops.all(members, axis=(1, 2), keepdims=True)
    maps = ops.where(ops.logical_and(present, ops.logical_not(filled)), maps, 0.0)
    return ops.stop_gradient(maps)
