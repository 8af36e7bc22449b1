"""sm_pixel_ce: per-pixel softmax and losses for segmentation_models, by string name.

Importing the package registers ``"pixel_softmax"``, the losses ``"pixel_cce"``, ``"pixel_bce"``,
``"pixel_focal"``, ``"pixel_dice"``, ``"pixel_jaccard"``, ``"pixel_tversky"``, ``"pixel_lovasz"``,
``"pixel_cce_dice"`` (and the class names) with the running Keras, Keras 3 or tf_keras.
"""

from ._quiet import quiet_imports

# The command line opens quietly: TensorFlow and segmentation_models print on import (see _quiet).
with quiet_imports():
    from . import flavor, sm_support  # noqa: F401

from ._registry import get, list_names
from ._version import __version__
from .activations import PixelSoftmax, pixel_softmax
from .class_weights import class_weights
from .data.contract import DataContract
from .exporting import export
from .flavor import KERAS_FLAVOR
from .inference import evaluate, load_predictor, predict_image
from .losses import (
    BoundaryAlphaSchedule,
    PixelBinaryCrossentropy,
    PixelBoundaryLoss,
    PixelCategoricalCrossentropy,
    PixelCategoricalCrossentropyDice,
    PixelCategoricalFocalCrossentropy,
    PixelDiceLoss,
    PixelJaccardLoss,
    PixelLossSum,
    PixelLossTerm,
    PixelLovaszLoss,
    PixelMCCLoss,
    PixelTverskyLoss,
    pixel_binary_crossentropy,
    pixel_boundary_loss,
    pixel_boundary_targets,
    pixel_categorical_crossentropy,
    pixel_dice_loss,
    pixel_jaccard_loss,
    pixel_lovasz_loss,
    pixel_mcc_loss,
    pixel_tversky_loss,
)
from .metrics import PixelAccuracy, PixelIoU, PixelMeanIoU, pixel_metrics
from .saving import data_contract, load_model, save_model, set_data_contract
from .sm_support import supported_backbones

__all__ = [
    "BoundaryAlphaSchedule",
    "DataContract",
    "KERAS_FLAVOR",
    "PixelAccuracy",
    "PixelBinaryCrossentropy",
    "PixelBoundaryLoss",
    "PixelCategoricalCrossentropy",
    "PixelCategoricalCrossentropyDice",
    "PixelCategoricalFocalCrossentropy",
    "PixelDiceLoss",
    "PixelIoU",
    "PixelJaccardLoss",
    "PixelLossSum",
    "PixelLossTerm",
    "PixelLovaszLoss",
    "PixelMCCLoss",
    "PixelMeanIoU",
    "PixelSoftmax",
    "PixelTverskyLoss",
    "__version__",
    "class_weights",
    "data_contract",
    "evaluate",
    "export",
    "get",
    "list_names",
    "load_model",
    "load_predictor",
    "pixel_binary_crossentropy",
    "pixel_boundary_loss",
    "pixel_boundary_targets",
    "pixel_categorical_crossentropy",
    "pixel_dice_loss",
    "pixel_jaccard_loss",
    "pixel_lovasz_loss",
    "pixel_mcc_loss",
    "pixel_metrics",
    "predict_image",
    "pixel_softmax",
    "pixel_tversky_loss",
    "save_model",
    "set_data_contract",
    "supported_backbones",
]
