"""``sm-pixel-ce compare``: train the same model with each loss set-up and score them alike.

``job`` (one run, :func:`run_compare`), ``variants`` (models and losses), ``encoders``
(pretrained encoder weights), ``training`` (one variant, streamed), ``experiment`` (split, seeds,
save/reload, resume), ``evaluation`` (NumPy metrics, whole or batch by batch), ``report``
(tables, JSON, Markdown), ``plots``.
"""

from .encoders import EncoderWeightsError, load_encoder_weights
from .evaluation import (
    StreamingScore,
    confusion_matrix,
    expected_calibration_error,
    per_class_iou,
    score,
)
from .experiment import Settings, Split, run_comparison, split, split_indices
from .job import CompareInterrupted, check_compare_arguments, run_compare
from .variants import DEFAULT_VARIANTS, VARIANTS

__all__ = [
    "CompareInterrupted",
    "DEFAULT_VARIANTS",
    "EncoderWeightsError",
    "Settings",
    "Split",
    "StreamingScore",
    "VARIANTS",
    "check_compare_arguments",
    "confusion_matrix",
    "expected_calibration_error",
    "load_encoder_weights",
    "per_class_iou",
    "run_compare",
    "run_comparison",
    "score",
    "split",
    "split_indices",
]
