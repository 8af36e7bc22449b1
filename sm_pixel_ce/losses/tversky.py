"""``pixel_tversky``: the (focal) Tversky loss of segmentation_models_pytorch's multiclass
``TverskyLoss``."""

from .._registry import register, serializable
from . import _functional
from ._overlap import _OverlapLoss


@serializable
def pixel_tversky_loss(
    y_true,
    y_pred,
    alpha=0.5,
    beta=0.5,
    gamma=1.0,
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
    """Tversky loss over the classes (focal with ``gamma``), from per-class sums over the batch.

    Per class ``c`` over the counted pixels (weights ``m``: 0 for ignored and unlabelled pixels,
    else 1, times ``sample_weight``): ``Σp = Σ m·p_c``, ``Σy = Σ m·y_c``,
    ``TP = (Σp + Σy - Σ m·|p_c - y_c|) / 2`` (``= Σ m·p_c·y_c`` for one-hot labels),
    ``FP = Σp - TP``, ``FN = Σy - TP``;
    ``tversky_c = (TP + smooth) / max(TP + α·FP + β·FN + smooth, eps)``;
    ``ℓ_c = 1 - tversky_c`` (``-log max(tversky_c, eps)`` with ``log_loss``), 0 for a class
    absent from the labels (``Σy = 0``, as in segmentation_models_pytorch: it still counts in the
    mean). Loss: ``(Σ_c w_c ℓ_c / Σ_c w_c)^γ`` over ``classes``, the power of the class mean as in
    segmentation_models_pytorch 0.6's ``TverskyLoss("multiclass", ...)``, which it equals with the
    same options. ``α = β = 1/2`` is :func:`~sm_pixel_ce.losses.dice.pixel_dice_loss`,
    ``α = β = 1`` :func:`~sm_pixel_ce.losses.jaccard.pixel_jaccard_loss`.

    Shapes: ``y_pred`` ``(N, H, W, C)`` (``(N, C, H, W)`` with ``axis=1``), ``y_true`` an integer
    mask ``(N, H, W)`` / ``(N, H, W, 1)`` or dense labels of ``y_pred``'s shape; a scalar out.
    With ``per_image``: the loss (power included) of each image, then the mean over the images.

    Args:
        y_true: Integer mask or dense labels (one-hot or soft; an all-zero pixel is not counted).
        y_pred: Softmax probabilities (or logits with ``from_logits=True``).
        alpha: Weight of the false positives, >= 0. Defaults to 0.5.
        beta: Weight of the false negatives, >= 0. Defaults to 0.5.
        gamma: Power of the class mean, > 0 (the focal Tversky loss for ``gamma != 1``).
            Defaults to 1.0.
        axis: Class axis of ``y_pred``. Defaults to -1.
        from_logits: Whether ``y_pred`` holds logits. Defaults to False.
        classes: The class indices that count, or None for all. Defaults to None.
        class_weights: One weight ``w_c >= 0`` per class, or None for all 1. Defaults to None.
        ignore_index: Integer-mask value whose pixels are not counted, or None. Defaults to None.
        smooth: Added to the numerator and denominator, >= 0. Defaults to 0.0.
        eps: Lower bound of the denominator (and of the score under ``log_loss``), > 0.
            Defaults to 1e-7.
        log_loss: ``-log tversky`` instead of ``1 - tversky``. Defaults to False.
        per_image: The loss of each image, then the mean over the images. Defaults to False.
        absent_classes: A class absent from the labels has ``ℓ_c = 0``; ``"zero"`` keeps it in
            the class mean (segmentation_models_pytorch), ``"skip"`` leaves it out (the mean over
            the classes present, as the Lovász loss's ``"present"``). Defaults to "zero".
        sample_weight: Per-image ``(N,)`` or per-pixel ``(N, H, W)`` weights of the pixels in the
            sums, or None. Defaults to None.

    Returns:
        A float32 scalar.

    Example:
        >>> loss = pixel_tversky_loss(y_true, y_pred, alpha=0.3, beta=0.7, gamma=0.75)
        >>> model.compile("adam", loss=PixelTverskyLoss(alpha=0.3, beta=0.7))  # or "pixel_tversky"
    """
    where = "pixel_tversky_loss"
    return _functional.region_loss(
        y_true,
        y_pred,
        where,
        _functional.tversky_options(where, alpha, beta, gamma),
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


@register("loss", "pixel_tversky", "pixel_tversky_loss")
class PixelTverskyLoss(_OverlapLoss):
    """Tversky loss over the classes (focal with ``gamma``); see :func:`pixel_tversky_loss`.

    Args:
        alpha: Weight of the false positives, >= 0. Defaults to 0.5.
        beta: Weight of the false negatives, >= 0. Defaults to 0.5.
        gamma: Power of the class mean, > 0. Defaults to 1.0.
        axis: Class axis of the predictions (``1`` for channels_first). Defaults to -1.
        from_logits: Whether predictions are logits. Defaults to False.
        classes: The class indices that count, or None for all. Defaults to None.
        class_weights: One weight per class, or None. Defaults to None.
        ignore_index: Integer-mask value not counted, or None. Defaults to None.
        smooth: Smoothing constant >= 0. Defaults to 0.0.
        eps: Lower bound of the denominator, > 0. Defaults to 1e-7.
        log_loss: ``-log tversky`` instead of ``1 - tversky``. Defaults to False.
        per_image: The mean over the images of each image's loss. Defaults to False.
        absent_classes: ``"zero"`` (an absent class counts 0 in the mean, as in
            segmentation_models_pytorch) or ``"skip"`` (left out of the mean). Defaults to "zero".
        name: Defaults to "pixel_tversky_loss" (None: that).

    Returns:
        Called as ``loss(y_true, y_pred, sample_weight=None)``: a float32 scalar.

    Example:
        >>> model.compile("adam", loss=PixelTverskyLoss(alpha=0.3, beta=0.7, gamma=0.75))
        >>> model.compile("adam", loss="pixel_tversky")   # alpha = beta = 0.5: the Dice loss
    """

    _fn = staticmethod(pixel_tversky_loss)

    default_name = "pixel_tversky_loss"

    def __init__(
        self,
        alpha=0.5,
        beta=0.5,
        gamma=1.0,
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
        name=None,
    ):
        options = dict(locals())
        for key in ("self", "alpha", "beta", "gamma", "__class__"):
            options.pop(key, None)
        super().__init__(**options)
        self.alpha, self.beta, self.gamma = _functional.tversky_options(
            type(self).__name__, alpha, beta, gamma
        )

    def tversky_parameters(self):
        return self.alpha, self.beta, self.gamma

    def get_config(self):
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, **super().get_config()}
