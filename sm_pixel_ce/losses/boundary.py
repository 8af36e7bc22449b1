"""``pixel_boundary``: the boundary loss of Kervadec et al. (MIDL 2019, MedIA 2021; their
``SurfaceLoss`` on ``one_hot2dist`` maps), and :class:`BoundaryAlphaSchedule`, the callback that
ramps its weight ``alpha`` as they do. (``sm_pixel_ce.boundary`` is the Boundary IoU metric.)"""

import numbers

import numpy as np
from keras import ops

from .. import _checks, _pixels
from .._registry import register, serializable
from ..flavor import BACKEND, keras
from . import _options
from ._base import _PixelLoss
from ._functional import RegionInputs
from ._overlap import OVERLAP
from .distance_maps import signed_distance_maps

#: ``pixel_boundary``'s options.
BOUNDARY = _options.Options(
    _options.AXIS,
    _options.FROM_LOGITS,
    {o.name: o for o in OVERLAP.options}["classes"]._replace(
        doc="The class indices whose maps count (Kervadec et al.'s ``idc``; ``[1]`` for their "
        "binary setting), or None for all. Defaults to None."
    ),
    _options.IGNORE_INDEX,
    _options.Option(
        "from_maps",
        False,
        _checks.flag,
        "Whether ``y_true`` holds the signed distance maps (from :func:`pixel_boundary_targets`, "
        "in the input pipeline: NaN where a pixel does not count), alone or after the mask "
        "(``with_labels=True``, for a sum with region losses), instead of labels. Defaults "
        "to False.",
    ),
    _options.Option(
        "alpha",
        1.0,
        _checks.non_negative,
        "The loss's weight, a finite number >= 0, which :class:`BoundaryAlphaSchedule` ramps "
        "during training. Defaults to 1.0.",
    ),
    _options.SAMPLE_WEIGHT,
    _options.REDUCTION,
)


@serializable
@_options.loss_function(BOUNDARY)
def pixel_boundary_loss(y_true, y_pred, sample_weight, options, where):
    """Boundary loss: the mean over pixels of softmax probability times signed distance map.

    Per image and class ``c``, ``φ_c`` is the signed Euclidean distance map of the labels
    (``losses.distance_maps.signed_distance_maps``): the distance to the class outside it, minus
    the distance to the rest plus 1 inside it (0 on its inner edge), 0 for an image without the
    class. Each pixel's loss is ``α · mean_{c ∈ classes} p_c·φ_c``, the loss their weighted mean
    over the counted pixels. Equal to Kervadec et al.'s ``SurfaceLoss(idc=classes)`` on
    ``one_hot2dist`` maps (``multipled.mean()``) times ``alpha``, when every pixel counts.
    The maps are computed exactly on the device from the labels at each call, or once per
    example in the input pipeline by :func:`pixel_boundary_targets` and handed over as ``y_true``
    with ``from_maps=True``, alone or after the mask (``with_labels=True``, for a sum whose other
    terms read the mask): the same values (what each costs: ``examples/
    losses_mcc_boundary.md``). They carry no gradient: the gradient is ``α·φ_c / (|classes|·P)``
    with respect to ``p_c``.

    It is meant to be added to a region loss (``PixelDiceLoss() + PixelBoundaryLoss(alpha=0.01)``)
    with ``alpha`` ramped up during training by :class:`BoundaryAlphaSchedule`: alone it is
    minimised by predicting nothing.

    Shapes: ``y_pred`` ``(N, H, W, C)`` (``(N, C, H, W)`` with ``axis=1``), static ``H`` and ``W``;
    ``y_true`` an integer mask ``(N, H, W)`` / ``(N, H, W, 1)`` of any integer dtype, or dense
    labels of ``y_pred``'s shape (each pixel of its largest label's class; an all-zero pixel is not
    counted). An ignored or uncounted pixel is outside every class in the maps and adds no term.
    A scalar out.

    Args:
        y_true: Integer mask or dense labels, as above.
        y_pred: Softmax probabilities (or logits with ``from_logits=True``).
        {options}

    Returns:
        A float32 scalar (the per-pixel losses ``(N, H, W)`` for ``reduction="none"``).

    Example:
        >>> y_true = np.zeros((1, 8, 8), "int32"); y_true[:, 2:5, 2:6] = 1
        >>> y_pred = sm_pixel_ce.pixel_softmax(np.random.randn(1, 8, 8, 2))
        >>> loss = pixel_boundary_loss(y_true, y_pred, classes=[1])
        >>> model.compile("adam", loss=PixelDiceLoss() + PixelBoundaryLoss(alpha=0.01))
    """
    image = image_shape(y_pred, options["axis"], where)
    grouped = {**options, "per_image": True, "reduction": "none"}
    if not options["from_maps"] and boundary_parts(y_true, y_pred, options["axis"]) is not None:
        raise ValueError(
            f"{where}: y_true holds a mask and its distance maps (pixel_boundary_targets(..., "
            "with_labels=True)), which the loss reads with from_maps=True; without it the loss "
            "computes the maps from labels. Set PixelBoundaryLoss(from_maps=True). Received "
            f"y_true of shape {tuple(y_true.shape)} for predictions of shape "
            f"{tuple(y_pred.shape)}."
        )
    given = None
    if options["from_maps"]:
        # The maps stand in for the labels: RegionInputs reads the predictions (the logits behind
        # a softmax, their checks) beside an all-zero mask of the images' shape.
        given = _maps_of(y_true, y_pred, options["axis"], where)
        zeros = ops.zeros(ops.shape(given)[:-1], "int32")
        inputs = RegionInputs(zeros, y_pred, {**grouped, "ignore_index": None}, None, where)
    else:
        inputs = RegionInputs(y_true, y_pred, grouped, None, where)
    maps, weights = boundary_maps(inputs, image, given)
    num_classes, classes = inputs.num_classes, options["classes"]
    _checks.classes_in_range(classes, num_classes, where)
    terms = ops.reshape(inputs.probabilities(), (-1, *image, num_classes)) * maps
    if classes is not None:
        terms = ops.take(terms, classes, axis=-1)
    losses = options["alpha"] * ops.reshape(ops.mean(terms, axis=-1), (-1,))
    return _pixels.reduce(inputs.pixels, losses, weights, sample_weight, options["reduction"])


def boundary_maps(inputs, image, given=None):
    """``(maps, weights)`` of a boundary term: the ``given`` maps (``from_maps=True``; see
    :func:`counted_maps`), or the signed distance maps of the labels of ``inputs``
    (:func:`label_maps`) with :func:`counted_weights`; one home for :func:`pixel_boundary_loss`
    and a sum's shared softmax (``losses.sums``)."""
    if given is not None:
        return counted_maps(given)
    return label_maps(inputs, image), counted_weights(inputs)


def counted_maps(maps):
    """``(maps, weights)``: given maps with their uncounted pixels 0, and the ``(P,)`` float32
    weights of the pixels (0: not counted).

    NaN in every channel marks an uncounted pixel: the first tells, elementwise (XLA fuses it
    into the passes that read the maps); a NaN elsewhere in a class that counts makes the loss
    NaN, an error.
    """
    counted = ops.logical_not(ops.isnan(maps[..., 0]))
    weights = ops.reshape(ops.cast(counted, "float32"), (-1,))
    return ops.where(counted[..., None], maps, 0.0), weights


def counted_weights(inputs):
    """The ``(P,)`` float32 weights of the pixels the labels of ``inputs`` count (ignored: 0;
    the sample weights apart), or None for all."""
    return None if inputs.flat_valid is None else ops.cast(inputs.flat_valid, "float32")


def weighted_maps(maps, options, where):
    """The maps ``(..., C)`` times each class's weight in a pixel's loss, ``α/|classes|`` for a
    class of ``classes`` and 0 for the others (a NaN there too), so that a pixel's loss is
    ``Σ_c p_c·φ'_c`` (the form a sum's shared softmax takes, ``losses.sums``)."""
    num_classes, classes = maps.shape[-1], options["classes"]
    _checks.classes_in_range(classes, num_classes, where)
    if classes is None:
        return maps * (options["alpha"] / num_classes)
    chosen = ops.convert_to_tensor(np.isin(np.arange(num_classes), classes))
    return ops.where(chosen, maps * (options["alpha"] / len(classes)), 0.0)


def label_maps(inputs, image):
    """The ``(N, H, W, C)`` signed distance maps of the labels of ``inputs``: an integer mask's
    classes, dense labels' largest; the pixels the labels do not count (``ignore_index``, an
    all-zero dense label; sample weights apart) of no class."""
    num_classes = inputs.num_classes
    labels = ops.argmax(inputs.labels, axis=-1) if inputs.dense else inputs.labels
    members = ops.equal(labels[..., None], ops.arange(num_classes, dtype=labels.dtype))
    members = ops.reshape(members, (-1, *image, num_classes))
    if inputs.flat_valid is not None:
        members = ops.logical_and(members, ops.reshape(inputs.flat_valid, (-1, *image, 1)))
    return signed_distance_maps(members)


def _maps_of(y_true, y_pred, axis, where):
    """The maps of ``y_true`` (alone, or after the mask), channels-last, float32."""
    parts = boundary_parts(y_true, y_pred, axis)
    if parts is not None:
        return parts[1]
    maps = ops.convert_to_tensor(y_true)
    if tuple(maps.shape) != tuple(y_pred.shape) or "float" not in str(maps.dtype):
        channels = list(y_pred.shape)
        channels[axis] = f"1 + {channels[axis]}"
        raise ValueError(
            f"{where}: with from_maps=True, y_true holds the signed distance maps of the labels "
            "(pixel_boundary_targets), floats of the predictions' shape "
            f"{tuple(y_pred.shape)}, or the mask and the maps (with_labels=True), of shape "
            f"({', '.join(map(str, channels))}). Received y_true of shape "
            f"{tuple(maps.shape)} and dtype {maps.dtype}; for labels, leave from_maps False."
        )
    return ops.moveaxis(ops.cast(maps, "float32"), axis, -1)


def boundary_parts(y_true, y_pred, axis):
    """``(mask, maps)`` of a ``y_true`` from ``pixel_boundary_targets(..., with_labels=True)``, or
    None for any other ``y_true``.

    Such a ``y_true`` has the predictions' rank and ``1 + C`` floats on the class axis (the mask,
    then the C maps); no labels of any loss have that shape, so the shape tells it apart.

    Args:
        y_true: The loss's labels.
        y_pred: The predictions, ``C`` classes on ``axis``.
        axis: The class axis.

    Returns:
        ``(mask, maps)``: the int32 mask of the predictions' shape without its class axis (the
        ignored pixels keep their value) and the float32 maps ``(..., C)`` channels-last; or None.
    """
    pred_shape = tuple(y_pred.shape)
    true = ops.convert_to_tensor(y_true)
    rank = len(pred_shape)
    if len(true.shape) != rank or "float" not in str(true.dtype):
        return None
    axis = axis % rank
    classes = pred_shape[axis]
    if classes is None or true.shape[axis] != classes + 1:
        return None
    if axis != rank - 1:
        true = ops.moveaxis(true, axis, -1)
    return ops.cast(true[..., 0], "int32"), ops.cast(true[..., 1:], "float32")


def pixel_boundary_targets(y_true, num_classes, ignore_index=None, axis=-1, with_labels=False):
    """The signed distance maps of integer masks, for ``PixelBoundaryLoss(from_maps=True)``: what
    the loss computes from labels at each step, computed once per example in the input pipeline.

    With ``with_labels=True`` the mask comes first, then its maps, in one tensor: the ``y_true``
    of a sum of region losses and a boundary loss (``PixelDiceLoss() +
    PixelBoundaryLoss(from_maps=True)``), whose region terms read the mask and whose boundary
    terms read the maps. (Keras gives every term of a loss the same ``y_true``.)

    Args:
        y_true: An integer mask ``(H, W)`` or a batch ``(N, H, W)`` (a trailing 1 allowed), static
            ``H`` and ``W``.
        num_classes: The predictions' classes, C.
        ignore_index: Mask value of the pixels that do not count, or None. Defaults to None.
        axis: Where the class axis of the maps goes (``1``, or ``0`` for one image, for
            channels-first predictions). Defaults to -1.
        with_labels: Put the mask (as float32, ``ignore_index`` kept) before the maps on the
            class axis. Defaults to False.

    Returns:
        float32 maps ``(H, W, C)`` / ``(N, H, W, C)`` (``axis`` moved), NaN at the ignored pixels;
        with ``with_labels``, ``(H, W, 1 + C)`` / ``(N, H, W, 1 + C)``: the mask, then the maps.

    Example:
        >>> targets = lambda x, y: (x, pixel_boundary_targets(y, 7, 255, with_labels=True))
        >>> dataset = dataset.map(targets, num_parallel_calls=tf.data.AUTOTUNE)
        >>> loss = PixelDiceLoss(ignore_index=255) + PixelBoundaryLoss(from_maps=True)
        >>> model.compile("adam", loss=loss)
    """
    where = "pixel_boundary_targets"
    labels = ops.convert_to_tensor(y_true)
    single = len(labels.shape) == 2 or (len(labels.shape) == 3 and labels.shape[-1] == 1)
    if len(labels.shape) in (3, 4) and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if single:
        labels = labels[None]
    if len(labels.shape) != 3 or "int" not in str(labels.dtype):
        raise ValueError(
            f"{where}: expected an integer mask (H, W) or (N, H, W), a trailing 1 allowed. "
            f"Received shape {tuple(ops.convert_to_tensor(y_true).shape)} and dtype "
            f"{labels.dtype}."
        )
    labels = ops.cast(labels, "int32")
    counted = ops.ones_like(labels, "bool")
    if ignore_index is not None:
        counted = ops.not_equal(labels, int(_checks.ignore_index(ignore_index, where)))
    members = ops.logical_and(
        ops.equal(labels[..., None], ops.arange(int(num_classes), dtype="int32")),
        counted[..., None],
    )
    maps = ops.where(counted[..., None], signed_distance_maps(members), float("nan"))
    if _checks.flag(with_labels, where, "with_labels"):
        maps = ops.concatenate([ops.cast(labels, "float32")[..., None], maps], axis=-1)
    maps = maps[0] if single else maps
    return ops.moveaxis(maps, -1, axis)


def image_shape(y_pred, axis, where):
    """``(H, W)`` of 2-D predictions ``(N, H, W, C)`` (``(N, C, H, W)`` with ``axis=1``)."""
    shape = tuple(y_pred.shape)
    if len(shape) != 4:
        raise ValueError(
            f"{where}: the distance maps are those of 2-D images: expected predictions "
            f"(N, H, W, C) (or (N, C, H, W) with axis=1). Received shape {shape}."
        )
    spatial = [d for i, d in enumerate(shape) if i != axis % 4][1:]
    return tuple(None if d is None else int(d) for d in spatial)


@register("loss", "pixel_boundary", "pixel_boundary_loss")
class PixelBoundaryLoss(_PixelLoss):
    """Kervadec et al.'s boundary loss; see :func:`pixel_boundary_loss`.

    {call}

    Example:
        >>> boundary = PixelBoundaryLoss(classes=[1], alpha=0.01)
        >>> model.compile("adam", loss=PixelDiceLoss() + boundary)
        >>> model.fit(..., callbacks=[BoundaryAlphaSchedule(boundary)])
    """

    _fn = staticmethod(pixel_boundary_loss)
    default_name = "pixel_boundary_loss"
    none_shape = "(N, H, W)"


class BoundaryAlphaSchedule(keras.callbacks.Callback):
    """Set the ``alpha`` of boundary losses at the start of each epoch: Kervadec et al.'s ramp.

    ``alpha = start + step·epoch``, held at ``stop`` once reached (their "increase" strategy:
    ``L_region + α·L_boundary``, α from 0.01 up by 0.01 per epoch), or ``schedule(epoch)``.
    Their "rebalance" strategy ``(1 - α)·L_region + α·L_boundary`` is this with
    ``schedule=lambda e: a(e) / (1 - a(e))`` and the whole loss scaled by ``1 - a(e)``, which Adam
    nearly ignores (it normalises the gradient's size). The losses' ``alpha`` enters the
    compiled step as a constant: the callback rebuilds the step (one retrace) when it changes.
    ``alpha`` is saved with the loss, so a reloaded model resumes at the last epoch's value.

    Args:
        loss: A :class:`PixelBoundaryLoss` or a sum holding some (every boundary term is set).
        start: ``alpha`` at epoch 0, >= 0. Defaults to 0.01.
        step: Added per epoch (negative: a decreasing ramp). Defaults to 0.01.
        stop: The value where the ramp stops, >= 0. Defaults to 1.0.
        schedule: ``epoch -> alpha`` instead of the ramp, or None. Defaults to None.

    Example:
        >>> boundary = PixelBoundaryLoss(ignore_index=255)
        >>> loss = PixelDiceLoss(ignore_index=255) + boundary
        >>> model.compile("adam", loss=loss)
        >>> model.fit(data, epochs=100, callbacks=[BoundaryAlphaSchedule(loss)])
    """

    def __init__(self, loss, start=0.01, step=0.01, stop=1.0, schedule=None):
        super().__init__()
        where = type(self).__name__
        terms = loss.terms() if isinstance(loss, _PixelLoss) else []
        self.losses = [term for _, term in terms if isinstance(term, PixelBoundaryLoss)]
        if not self.losses:
            raise ValueError(
                f"{where}: `loss` must be a PixelBoundaryLoss or a sum with one, the object "
                f"given to compile (not its name). Received: loss={loss!r}"
            )
        if schedule is not None and not callable(schedule):
            raise ValueError(
                f"{where}: `schedule` must be a function epoch -> alpha, or None. "
                f"Received: schedule={schedule!r}"
            )
        self.start = _checks.non_negative(start, where, "start")
        self.stop = _checks.non_negative(stop, where, "stop")
        if not isinstance(step, numbers.Real) or isinstance(step, bool):
            raise ValueError(f"{where}: `step` must be a number. Received: step={step!r}")
        self.step, self.schedule = float(step), schedule

    def alpha(self, epoch):
        """``alpha`` at ``epoch`` (from 0)."""
        if self.schedule is not None:
            return _checks.non_negative(self.schedule(epoch), type(self).__name__, "alpha")
        value = self.start + self.step * epoch
        return min(value, self.stop) if self.step >= 0 else max(value, self.stop)

    def on_epoch_begin(self, epoch, logs=None):
        alpha = self.alpha(epoch)
        if all(loss.alpha == alpha for loss in self.losses):
            return
        for loss in self.losses:
            loss.alpha = alpha
        # PyTorch's step reads the loss at each call; the compiled ones took alpha as a constant.
        if BACKEND != "torch" and getattr(self.model, "train_function", None) is not None:
            self.model.make_train_function(force=True)
