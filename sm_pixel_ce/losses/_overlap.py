"""What Dice, Jaccard and Tversky share: their options (declared once, for the three functions
and the three classes) and the Keras ``Loss`` on per-class overlaps."""

import functools

from .. import _checks
from ._base import _PixelLoss
from ._options import (
    AXIS,
    CLASS_WEIGHTS,
    FROM_LOGITS,
    IGNORE_INDEX,
    PER_IMAGE,
    REGION_REDUCTION,
    SAMPLE_WEIGHT,
    Option,
    Options,
)

ABSENT_CLASSES = ("zero", "skip")

#: The options of ``pixel_dice`` and ``pixel_jaccard``; ``pixel_tversky`` takes ``α, β, γ`` first.
OVERLAP = Options(
    AXIS,
    FROM_LOGITS,
    Option(
        "classes",
        None,
        _checks.class_list,
        "The class indices that count (e.g. all but the background), or None for all. "
        "Defaults to None.",
    ),
    CLASS_WEIGHTS,
    IGNORE_INDEX,
    Option(
        "smooth",
        0.0,
        _checks.non_negative,
        "Added to the numerator and denominator, >= 0. Defaults to 0.0.",
    ),
    Option(
        "eps",
        1e-7,
        _checks.positive,
        "Lower bound of the denominator (and of the score under ``log_loss``), > 0. "
        "Defaults to 1e-7.",
    ),
    Option(
        "log_loss",
        False,
        _checks.flag,
        "``-log score`` instead of ``1 - score``. Defaults to False.",
    ),
    PER_IMAGE,
    Option(
        "absent_classes",
        "zero",
        functools.partial(_checks.one_of, allowed=ABSENT_CLASSES),
        'A class absent from the labels has ``ℓ_c = 0``; ``"zero"`` keeps it in the class '
        'mean (segmentation_models_pytorch), ``"skip"`` leaves it out (the mean over the '
        'classes present, as the Lovász loss\'s ``"present"``). Defaults to "zero".',
    ),
    SAMPLE_WEIGHT._replace(
        doc="Per-image ``(N,)`` or per-pixel ``(N, H, W)`` weights of the pixels in the sums, "
        "or None. Defaults to None."
    ),
    REGION_REDUCTION,
)


class _OverlapLoss(_PixelLoss):
    """A region loss on per-class overlaps (``TP``, ``FP``, ``FN``): Dice, Jaccard, Tversky."""

    def tversky_parameters(self):
        """``(α, β, γ)``: this loss as a Tversky loss."""
        raise NotImplementedError
