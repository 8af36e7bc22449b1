"""Using a trained model: ``evaluate`` (per-class scores on a folder) and ``predict`` (masks of
images of any size, in tiles).

``predictor.py`` runs a model in any runtime (Keras, TFLite, ONNX, a TF Serving SavedModel)
behind one call; ``tiling.py`` predicts an image of any size (whole, resized, or in blended
tiles); ``predict.py`` and ``evaluation.py`` are the two jobs; ``evaluation_report.py`` writes
``report.md`` and the pictures; ``palette.py`` colours masks.
"""

from .evaluation import evaluate
from .predict import PredictOptions, find_inputs, predict_files
from .predictor import Predictor, load_predictor
from .tiling import blend_window, predict_image, tile_starts

__all__ = [
    "PredictOptions",
    "Predictor",
    "blend_window",
    "evaluate",
    "find_inputs",
    "load_predictor",
    "predict_files",
    "predict_image",
    "tile_starts",
]
