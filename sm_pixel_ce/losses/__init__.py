"""The pixel losses, one module each, all on the contract of ``pixel_cce`` (integer masks or dense
labels, ``axis`` -1 or 1, ``ignore_index``, float32 math, fused on softmax outputs):

* ``cross_entropy``: ``pixel_cce``, ``pixel_bce``, ``pixel_focal`` (weighted means over pixels);
* ``dice``, ``jaccard``, ``tversky``: region losses from per-class sums (those of
  segmentation_models_pytorch's ``DiceLoss``, ``JaccardLoss``, ``TverskyLoss``), the shared math
  in ``_functional``;
* ``lovasz``: the Lovász-softmax loss (Berman et al. 2018);
* ``mcc``: ``pixel_mcc``, the Matthews correlation loss per class (segmentation_models_pytorch's
  ``MCCLoss``); ``boundary``: ``pixel_boundary``, Kervadec et al.'s boundary loss on signed
  distance maps (``distance_maps``) and its ``alpha`` ramp (``BoundaryAlphaSchedule``), both on
  ``keras.ops`` over the region losses' flattening (``_functional``);
* ``sums``: ``a + b``, ``w * a`` of any of them, and ``"pixel_cce_dice"``.

``_options`` declares a loss's options once (its function's signature, its class's constructor and
``get_config``, the checks come from there); ``_base`` holds the Keras ``Loss`` they all derive
from, ``_overlap`` the options Dice, Jaccard and Tversky share. ``sums`` gives every pixel loss its
``+`` and ``*``.
"""

from . import legacy  # noqa: F401  (older files' loss names load as today's losses)
from .boundary import (
    BoundaryAlphaSchedule,
    PixelBoundaryLoss,
    pixel_boundary_loss,
    pixel_boundary_targets,
)
from .cross_entropy import (
    PixelBinaryCrossentropy,
    PixelCategoricalCrossentropy,
    PixelCategoricalFocalCrossentropy,
    pixel_binary_crossentropy,
    pixel_categorical_crossentropy,
)
from .dice import PixelDiceLoss, pixel_dice_loss
from .jaccard import PixelJaccardLoss, pixel_jaccard_loss
from .lovasz import PixelLovaszLoss, pixel_lovasz_loss
from .mcc import PixelMCCLoss, pixel_mcc_loss
from .sums import PixelCategoricalCrossentropyDice, PixelLossSum, PixelLossTerm
from .tversky import PixelTverskyLoss, pixel_tversky_loss

__all__ = [
    "BoundaryAlphaSchedule",
    "PixelBoundaryLoss",
    "PixelMCCLoss",
    "pixel_boundary_loss",
    "pixel_boundary_targets",
    "pixel_mcc_loss",
    "PixelBinaryCrossentropy",
    "PixelCategoricalCrossentropy",
    "PixelCategoricalCrossentropyDice",
    "PixelCategoricalFocalCrossentropy",
    "PixelDiceLoss",
    "PixelJaccardLoss",
    "PixelLossSum",
    "PixelLossTerm",
    "PixelLovaszLoss",
    "PixelTverskyLoss",
    "pixel_binary_crossentropy",
    "pixel_categorical_crossentropy",
    "pixel_dice_loss",
    "pixel_jaccard_loss",
    "pixel_lovasz_loss",
    "pixel_tversky_loss",
]
