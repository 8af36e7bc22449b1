"""``pixel_dice``: the soft Dice loss of segmentation_models_pytorch's multiclass ``DiceLoss``."""

from .._registry import register, serializable
from . import _functional
from ._options import loss_function
from ._overlap import OVERLAP, _OverlapLoss

#: ``(α, β, γ)``: Dice as a Tversky loss.
DICE = (0.5, 0.5, 1.0)


@serializable
@loss_function(OVERLAP)
def pixel_dice_loss(y_true, y_pred, sample_weight, options, where):
    """Soft Dice loss over the classes, from per-class sums over the whole batch.

    Per class ``c`` over the counted pixels: ``TP = Σ p_c·y_c``, ``FP = Σ p_c - TP``,
    ``FN = Σ y_c - TP``, ``dice_c = (TP + smooth) / max(TP + (FP + FN)/2 + smooth, eps)``;
    ``ℓ_c = 1 - dice_c`` (``-log max(dice_c, eps)`` with ``log_loss``), and 0 for a class absent
    from the labels. Loss: ``Σ_c w_c ℓ_c / Σ_c w_c`` over ``classes`` (the plain mean without
    class weights). Equal to segmentation_models_pytorch 0.6's ``DiceLoss("multiclass", ...)``
    with the same options (see :func:`~sm_pixel_ce.losses.tversky.pixel_tversky_loss`, of which
    this is ``α = β = 1/2``).

    Shapes: ``y_pred`` ``(N, H, W, C)`` (``(N, C, H, W)`` with ``axis=1``), ``y_true`` an integer
    mask ``(N, H, W)`` / ``(N, H, W, 1)`` of any integer dtype, or dense labels of ``y_pred``'s
    shape (one-hot or soft; an all-zero pixel is not counted); a scalar out. On the output of
    ``pixel_softmax`` (or Keras's softmax) it computes from the logits behind it. Under
    ``tf.distribute`` the per-class sums are those of the global batch.

    {arguments}

    Example:
        >>> y_true = np.array([[[0, 2], [1, 255]]])                 # (1, 2, 2) integer mask
        >>> y_pred = sm_pixel_ce.pixel_softmax(np.random.randn(1, 2, 2, 3))
        >>> loss = pixel_dice_loss(y_true, y_pred, ignore_index=255, classes=[1, 2])
        >>> model.compile("adam", loss="pixel_dice")      # or PixelDiceLoss(...)
    """
    return _functional.region_loss(y_true, y_pred, sample_weight, options, where, DICE)


@register("loss", "pixel_dice", "pixel_dice_loss")
class PixelDiceLoss(_OverlapLoss):
    """Soft Dice loss over the classes; see :func:`pixel_dice_loss`.

    {call}

    Example:
        >>> model.compile("adam", loss="pixel_dice")
        >>> loss = PixelCategoricalCrossentropy(ignore_index=255) + PixelDiceLoss(
        ...     ignore_index=255, classes=list(range(1, 7)))
        >>> model.compile("adam", loss=loss, metrics=loss.term_metrics())
    """

    _fn = staticmethod(pixel_dice_loss)
    default_name = "pixel_dice_loss"

    def tversky_parameters(self):
        return DICE
