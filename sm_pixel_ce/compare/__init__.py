"""``sm-pixel-ce compare``: train the same model with each loss set-up and score them alike.

``variants`` (models and losses), ``training`` (one variant), ``experiment`` (split, seeds,
save/reload), ``evaluation`` (NumPy metrics), ``report`` (tables, JSON, Markdown), ``plots``.
"""

from .evaluation import confusion_matrix, expected_calibration_error, per_class_iou, score
from .experiment import Settings, Split, run_comparison, split
from .variants import DEFAULT_VARIANTS, VARIANTS

__all__ = [
    "DEFAULT_VARIANTS",
    "Settings",
    "Split",
    "VARIANTS",
    "confusion_matrix",
    "expected_calibration_error",
    "per_class_iou",
    "run_comparison",
    "score",
    "split",
]
