"""``pixel_dice``: the soft Dice loss of segmentation_models_pytorch's multiclass ``DiceLoss``."""

from .._registry import register, serializable
from . import _functional
from ._overlap import _OverlapLoss


@serializable
def pixel_dice_loss(
    y_true,
    y_pred,
    axis=-1,
    from_logits=False,
    classes=None,
    class_weights=None,
    ignore_index=None,
    smooth=0.0,
    eps=1e-7,
    log_loss=False,
    per_image=False,
    absent_classes="zero",
    sample_weight=None,
):
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

    Args:
        y_true: Integer mask or dense labels, as above.
        y_pred: Softmax probabilities (or logits with ``from_logits=True``).
        axis: Class axis of ``y_pred``. Defaults to -1.
        from_logits: Whether ``y_pred`` holds logits. Defaults to False.
        classes: The class indices that count (e.g. all but the background), or None for all.
            Defaults to None.
        class_weights: One weight ``w_c >= 0`` per class, or None for all 1. Defaults to None.
        ignore_index: Integer-mask value whose pixels are not counted, or None. Defaults to None.
        smooth: Added to the numerator and denominator, >= 0. Defaults to 0.0.
        eps: Lower bound of the denominator (and of the score under ``log_loss``), > 0.
            Defaults to 1e-7.
        log_loss: ``-log dice`` instead of ``1 - dice``. Defaults to False.
        per_image: The loss of each image, then the mean over the images (segmentation_models'
            ``per_image``). Defaults to False.
        absent_classes: A class absent from the labels has ``ℓ_c = 0``; ``"zero"`` keeps it in
            the class mean (segmentation_models_pytorch), ``"skip"`` leaves it out (the mean over
            the classes present, as the Lovász loss's ``"present"``). Defaults to "zero".
        sample_weight: Per-image ``(N,)`` or per-pixel ``(N, H, W)`` weights of the pixels in the
            sums, or None. Defaults to None.

    Returns:
        A float32 scalar.

    Example:
        >>> y_true = np.array([[[0, 2], [1, 255]]])                 # (1, 2, 2) integer mask
        >>> y_pred = sm_pixel_ce.pixel_softmax(np.random.randn(1, 2, 2, 3))
        >>> loss = pixel_dice_loss(y_true, y_pred, ignore_index=255, classes=[1, 2])
        >>> model.compile("adam", loss="pixel_dice")      # or PixelDiceLoss(...)
    """
    return _functional.region_loss(
        y_true,
        y_pred,
        "pixel_dice_loss",
        (0.5, 0.5, 1.0),
        axis,
        from_logits,
        {
            "classes": classes,
            "class_weights": class_weights,
            "ignore_index": ignore_index,
            "smooth": smooth,
            "eps": eps,
            "log_loss": log_loss,
            "per_image": per_image,
            "absent_classes": absent_classes,
        },
        sample_weight,
    )


@register("loss", "pixel_dice", "pixel_dice_loss")
class PixelDiceLoss(_OverlapLoss):
    """Soft Dice loss over the classes; see :func:`pixel_dice_loss`.

    Args:
        axis: Class axis of the predictions (``1`` for channels_first). Defaults to -1.
        from_logits: Whether predictions are logits. Defaults to False.
        classes: The class indices that count, or None for all. Defaults to None.
        class_weights: One weight per class, or None. Defaults to None.
        ignore_index: Integer-mask value not counted, or None. Defaults to None.
        smooth: Smoothing constant >= 0. Defaults to 0.0.
        eps: Lower bound of the denominator, > 0. Defaults to 1e-7.
        log_loss: ``-log dice`` instead of ``1 - dice``. Defaults to False.
        per_image: The mean over the images of each image's loss. Defaults to False.
        absent_classes: ``"zero"`` (an absent class counts 0 in the mean, as in
            segmentation_models_pytorch) or ``"skip"`` (left out of the mean). Defaults to "zero".
        name: Defaults to "pixel_dice_loss" (None: that).

    Returns:
        Called as ``loss(y_true, y_pred, sample_weight=None)``: a float32 scalar.

    Example:
        >>> model.compile("adam", loss="pixel_dice")
        >>> loss = PixelCategoricalCrossentropy(ignore_index=255) + PixelDiceLoss(
        ...     ignore_index=255, classes=list(range(1, 7)))
        >>> model.compile("adam", loss=loss, metrics=loss.term_metrics())
    """

    _fn = staticmethod(pixel_dice_loss)
    default_name = "pixel_dice_loss"

    def tversky_parameters(self):
        return 0.5, 0.5, 1.0
