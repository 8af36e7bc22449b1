"""``pixel_lovasz``: the Lovász-softmax loss (Berman et al. 2018) of segmentation_models_pytorch's
``_lovasz_softmax``."""

from .. import _checks, _neutral_regions
from .._registry import register, serializable
from ..flavor import IS_TENSORFLOW
from . import _functional
from ._base import _RegionLoss

LOVASZ_CLASSES = ("present", "all")


@serializable
def pixel_lovasz_loss(
    y_true,
    y_pred,
    per_image=False,
    axis=-1,
    from_logits=False,
    classes="present",
    ignore_index=None,
    sample_weight=None,
):
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
        y_true: Integer mask or dense labels, as above.
        y_pred: Softmax probabilities (or logits with ``from_logits=True``).
        per_image: The loss of each image, then the mean over the images. Defaults to False.
        axis: Class axis of ``y_pred``. Defaults to -1.
        from_logits: Whether ``y_pred`` holds logits. Defaults to False.
        classes: ``"present"``, ``"all"`` or a list of class indices. Defaults to "present".
        ignore_index: Integer-mask value whose pixels are not counted, or None. Defaults to None.
        sample_weight: Must be None: the Lovász extension has no pixel weights (leave pixels
            out with ``ignore_index``). Defaults to None.

    Returns:
        A float32 scalar.

    Example:
        >>> loss = pixel_lovasz_loss(y_true, sm_pixel_ce.pixel_softmax(logits), ignore_index=255)
        >>> model.compile("adam", loss="pixel_lovasz")   # or PixelLovaszLoss(per_image=True)
    """
    where = "pixel_lovasz_loss"
    per_image = _checks.flag(per_image, "per_image", where)
    classes = _checks.class_list(classes, where, allowed=LOVASZ_CLASSES)
    ignore_index = _checks.ignore_index(ignore_index, where)
    if sample_weight is not None:
        raise ValueError(
            f"{where}: the Lovász extension has no pixel weights; leave pixels out with "
            "`ignore_index` (or weight another term of a sum). Expected sample_weight=None. "
            f"Received: sample_weight of shape {tuple(getattr(sample_weight, 'shape', ()))}"
        )
    if not IS_TENSORFLOW:
        return _neutral_regions.lovasz_loss(
            y_true, y_pred, axis, from_logits, classes, ignore_index, per_image, where
        )
    inputs = _functional.RegionInputs(
        y_true, y_pred, axis, bool(from_logits), ignore_index, None, per_image, where
    )
    return _functional.lovasz_loss(inputs, classes, per_image, where)


@register("loss", "pixel_lovasz", "pixel_lovasz_loss")
class PixelLovaszLoss(_RegionLoss):
    """Lovász-softmax loss; see :func:`pixel_lovasz_loss`.

    Args:
        per_image: The mean over the images of each image's loss. Defaults to False.
        axis: Class axis of the predictions (``1`` for channels_first). Defaults to -1.
        from_logits: Whether predictions are logits. Defaults to False.
        classes: ``"present"``, ``"all"`` or a list of class indices. Defaults to "present".
        ignore_index: Integer-mask value not counted, or None. Defaults to None.
        name: Defaults to "pixel_lovasz_loss".

    Returns:
        Called as ``loss(y_true, y_pred)``: a float32 scalar.

    Example:
        >>> model.compile("adam", loss="pixel_lovasz")
        >>> model.compile("adam", loss=PixelLovaszLoss(per_image=True, ignore_index=255))
    """

    _fn = staticmethod(pixel_lovasz_loss)

    def __init__(
        self,
        per_image=False,
        axis=-1,
        from_logits=False,
        classes="present",
        ignore_index=None,
        name="pixel_lovasz_loss",
    ):
        where = type(self).__name__
        super().__init__(name=name)
        self.per_image = _checks.flag(per_image, "per_image", where)
        self.axis = _checks.axis_argument(axis, where)
        self.from_logits = bool(from_logits)
        self.classes = _checks.class_list(classes, where, allowed=LOVASZ_CLASSES)
        self.ignore_index = _checks.ignore_index(ignore_index, where)

    def get_config(self):
        return {
            "per_image": self.per_image,
            "axis": self.axis,
            "from_logits": self.from_logits,
            "classes": self.classes,
            "ignore_index": self.ignore_index,
            "name": self.name,
        }
