"""``pixel_lovasz``: the Lovász-softmax loss (Berman et al. 2018) of segmentation_models_pytorch's
``_lovasz_softmax``."""

import functools

from .. import _checks
from .._registry import register, serializable
from . import _functional, _options
from ._base import _PixelLoss

LOVASZ_CLASSES = ("present", "all")

#: ``pixel_lovasz``'s options.
LOVASZ = _options.Options(
    _options.PER_IMAGE._replace(
        doc="The loss of each image, then the mean over the images. Defaults to False."
    ),
    _options.AXIS,
    _options.FROM_LOGITS,
    _options.Option(
        "classes",
        "present",
        functools.partial(_checks.class_list, allowed=LOVASZ_CLASSES),
        '``"present"``, ``"all"`` or a list of class indices. Defaults to "present".',
    ),
    _options.IGNORE_INDEX,
    _options.SAMPLE_WEIGHT._replace(
        doc="Must be None: the Lovász extension has no pixel weights (leave pixels out with "
        "``ignore_index``). Defaults to None."
    ),
    _options.REGION_REDUCTION,
)


@serializable
@_options.loss_function(LOVASZ)
def pixel_lovasz_loss(y_true, y_pred, sample_weight, options, where):
    """Lovász-softmax loss: the Lovász extension of the Jaccard loss, per class, averaged.

    Per class ``c`` over the counted pixels: the errors ``e_i = |y_ic - p_ic|`` in decreasing
    order ``e_(1) >= e_(2) >= ...``; ``J_k = 1 - (G - F_k) / (G + B_k)`` with ``G = Σ_i y_ic``,
    ``F_k`` and ``B_k`` the sums of ``y_c`` and ``1 - y_c`` over the k largest errors;
    ``ℓ_c = Σ_k e_(k)·(J_k - J_(k-1))`` (``J_0 = 0``). Loss: the mean of ``ℓ_c`` over the classes
    present in the labels (``"present"``), over all classes (``"all"``) or over a list; 0 without
    counted pixels. Equal to segmentation_models_pytorch 0.6's
    ``_lovasz_softmax(probas, labels, classes, per_image, ignore)`` on the probabilities (its
    ``LovaszLoss("multiclass")`` is this with ``from_logits=True``).

    Shapes: ``y_pred`` ``(N, H, W, C)`` (``(N, C, H, W)`` with ``axis=1``), ``y_true`` an integer
    mask ``(N, H, W)`` / ``(N, H, W, 1)`` of any integer dtype, or dense labels of ``y_pred``'s
    shape (an all-zero pixel is not counted; soft labels enter ``e``, ``G``, ``F``, ``B`` as
    they are); a scalar out. The gradient is the sort's, as in PyTorch: ``±(J_k - J_(k-1))`` at
    the pixel of rank ``k``. Under ``tf.distribute`` with ``per_image=False`` the errors of every
    replica are sorted together (all-gathered): the loss and its gradients are those of the
    global batch on one device; with ``per_image`` each image is its own sort and the mean is
    over the images of the global batch.

    Args:
        y_true: Integer mask or dense labels (hard or soft), as above.
        y_pred: Softmax probabilities (or logits with ``from_logits=True``), as above.
        {options}

    Returns:
        A float32 scalar (each image's loss, ``(N,)``, for ``reduction="none"``).

    Example:
        >>> loss = pixel_lovasz_loss(y_true, sm_pixel_ce.pixel_softmax(logits), ignore_index=255)
        >>> model.compile("adam", loss="pixel_lovasz")   # or PixelLovaszLoss(per_image=True)
    """
    if sample_weight is not None:
        raise ValueError(
            f"{where}: the Lovász extension has no pixel weights; leave pixels out with "
            "`ignore_index` (or weight another term of a sum). Expected sample_weight=None. "
            f"Received: sample_weight of shape {tuple(getattr(sample_weight, 'shape', ()))}"
        )
    return _functional.lovasz_loss(y_true, y_pred, options, where)


@register("loss", "pixel_lovasz", "pixel_lovasz_loss")
class PixelLovaszLoss(_PixelLoss):
    """Lovász-softmax loss; see :func:`pixel_lovasz_loss`.

    Args:
        {options}

    Returns:
        Called as ``loss(y_true, y_pred)``: a float32 scalar
        (``(N,)`` for ``reduction="none"``, in ``dtype`` when given).

    Example:
        >>> model.compile("adam", loss="pixel_lovasz")
        >>> model.compile("adam", loss=PixelLovaszLoss(per_image=True, ignore_index=255))
    """

    _fn = staticmethod(pixel_lovasz_loss)
    default_name = "pixel_lovasz_loss"
