"""``pixel_tversky``: the (focal) Tversky loss of segmentation_models_pytorch's multiclass
``TverskyLoss``."""

from .. import _checks
from .._registry import register, serializable
from . import _functional
from ._options import Option, Options, loss_function
from ._overlap import OVERLAP, _OverlapLoss

#: ``pixel_tversky``'s options: ``α, β, γ``, then Dice's.
TVERSKY = Options(
    Option(
        "alpha", 0.5, _checks.non_negative, "Weight of the false positives, >= 0. Defaults to 0.5."
    ),
    Option(
        "beta", 0.5, _checks.non_negative, "Weight of the false negatives, >= 0. Defaults to 0.5."
    ),
    Option(
        "gamma",
        1.0,
        _checks.positive,
        "Power of the class mean, > 0 (the focal Tversky loss for ``gamma != 1``). "
        "Defaults to 1.0.",
    ),
    *OVERLAP.options,
)


def _parameters(options):
    return options["alpha"], options["beta"], options["gamma"]


@serializable
@loss_function(TVERSKY)
def pixel_tversky_loss(y_true, y_pred, sample_weight, options, where):
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

    {arguments}

    Example:
        >>> loss = pixel_tversky_loss(y_true, y_pred, alpha=0.3, beta=0.7, gamma=0.75)
        >>> model.compile("adam", loss=PixelTverskyLoss(alpha=0.3, beta=0.7))  # or "pixel_tversky"
    """
    return _functional.region_loss(
        y_true, y_pred, sample_weight, options, where, _parameters(options)
    )


@register("loss", "pixel_tversky", "pixel_tversky_loss")
class PixelTverskyLoss(_OverlapLoss):
    """Tversky loss over the classes (focal with ``gamma``); see :func:`pixel_tversky_loss`.

    {call}

    Example:
        >>> model.compile("adam", loss=PixelTverskyLoss(alpha=0.3, beta=0.7, gamma=0.75))
        >>> model.compile("adam", loss="pixel_tversky")   # alpha = beta = 0.5: the Dice loss
    """

    _fn = staticmethod(pixel_tversky_loss)
    default_name = "pixel_tversky_loss"

    def tversky_parameters(self):
        return _parameters(self.options())
