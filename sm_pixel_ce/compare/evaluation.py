"""Evaluation of ``compare``'s predictions, batch by batch: IoU, accuracy, ECE.

Every variant is scored by the same code from its probabilities ``(N, H, W, C)``: the predicted
class is the argmax over classes (for sigmoid outputs too), so no metric chosen by Keras for a loss
decides the comparison. :class:`~sm_pixel_ce.scores.StreamingScore` (defined in
:mod:`sm_pixel_ce.scores`, where ``evaluate`` uses it too, and importable from here) keeps only
counts and per-bin sums: ``compare`` never holds all predictions, and reports its ``result()``.
"""

from ..scores import ECE_BINS, StreamingScore

__all__ = ["ECE_BINS", "StreamingScore", "epochs_to_fraction", "score_text"]


def epochs_to_fraction(curve, fraction=0.9):
    """First epoch (1-based) whose value reaches ``fraction`` of the curve's best, or None.

    An undefined value (None, e.g. an mIoU with no class present) reaches nothing; a curve with
    no defined value gives None.

    Args:
        curve: Values per epoch (floats or None).
        fraction: Fraction of the best value to reach. Defaults to 0.9.

    Returns:
        An int, or None.

    Example:
        >>> epochs_to_fraction([0.1, 0.5, 0.91, 1.0])
        3
    """
    defined = [v for v in curve if v is not None]
    if not defined:
        return None
    best = max(defined)
    for epoch, value in enumerate(curve, start=1):
        if value is not None and value >= fraction * best:
            return epoch
    return None


def score_text(value):
    """A score to 3 decimals, or ``-`` when it is undefined (None).

    Args:
        value: A float, or None.

    Returns:
        The text every table and log line shows.

    Example:
        >>> score_text(0.59321), score_text(None)
        ('0.593', '-')
    """
    return "-" if value is None else f"{value:.3f}"
