"""``sm-pixel-ce compare``: train the same model with each loss set-up and score them alike.

``job`` (one run, :func:`run_compare`), ``variants`` (models and losses), ``training`` (one
variant), ``experiment`` (split, seeds, save/reload), ``evaluation`` (NumPy metrics), ``report``
(tables, JSON, Markdown), ``plots``.
"""

from .evaluation import confusion_matrix, expected_calibration_error, per_class_iou, score
from .experiment import Settings, Split, run_comparison, split
from .job import check_compare_arguments, run_compare
from .variants import DEFAULT_VARIANTS, VARIANTS

__all__ = [
    "DEFAULT_VARIANTS",
    "Settings",
    "Split",
    "VARIANTS",
    "check_compare_arguments",
    "confusion_matrix",
    "expected_calibration_error",
    "per_class_iou",
    "run_compare",
    "run_comparison",
    "score",
    "split",
]
