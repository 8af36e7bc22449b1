"""``pixel_jaccard``: the soft Jaccard (IoU) loss of segmentation_models_pytorch's multiclass
``JaccardLoss``."""

from .._registry import register, serializable
from . import _functional
from ._options import loss_function
from ._overlap import OVERLAP, _OverlapLoss

#: ``(α, β, γ)``: Jaccard as a Tversky loss.
JACCARD = (1.0, 1.0, 1.0)


@serializable
@loss_function(OVERLAP)
def pixel_jaccard_loss(y_true, y_pred, sample_weight, options, where):
    """Soft Jaccard (IoU) loss over the classes, from per-class sums over the whole batch.

    Per class ``c`` over the counted pixels: ``TP = Σ p_c·y_c``, ``FP = Σ p_c - TP``,
    ``FN = Σ y_c - TP``, ``iou_c = (TP + smooth) / max(TP + FP + FN + smooth, eps)``;
    ``ℓ_c = 1 - iou_c`` (``-log max(iou_c, eps)`` with ``log_loss``), and 0 for a class absent
    from the labels. Loss: ``Σ_c w_c ℓ_c / Σ_c w_c`` over ``classes`` (the plain mean without
    class weights). Equal to segmentation_models_pytorch 0.6's ``JaccardLoss("multiclass", ...)``
    with the same options (see :func:`~sm_pixel_ce.losses.tversky.pixel_tversky_loss`, of which
    this is ``α = β = 1``).

    Shapes, logits and ``tf.distribute`` as for :func:`~sm_pixel_ce.losses.dice.pixel_dice_loss`:
    an integer mask or dense labels in, a scalar out.

    {arguments}

    Example:
        >>> y_true = np.array([[[0, 2], [1, 255]]])                 # (1, 2, 2) integer mask
        >>> y_pred = sm_pixel_ce.pixel_softmax(np.random.randn(1, 2, 2, 3))
        >>> loss = pixel_jaccard_loss(y_true, y_pred, ignore_index=255, classes=[1, 2])
        >>> model.compile("adam", loss="pixel_jaccard")      # or PixelJaccardLoss(...)
    """
    return _functional.region_loss(y_true, y_pred, sample_weight, options, where, JACCARD)


@register("loss", "pixel_jaccard", "pixel_jaccard_loss")
class PixelJaccardLoss(_OverlapLoss):
    """Soft Jaccard (IoU) loss over the classes; see :func:`pixel_jaccard_loss`.

    {call}

    Example:
        >>> model.compile("adam", loss="pixel_jaccard")
        >>> model.compile("adam", loss=PixelJaccardLoss(ignore_index=255, per_image=True))
    """

    _fn = staticmethod(pixel_jaccard_loss)
    default_name = "pixel_jaccard_loss"

    def tversky_parameters(self):
        return JACCARD
