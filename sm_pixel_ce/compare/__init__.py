"""``sm-pixel-ce compare``: train the same model with each loss set-up and score them alike.

``options`` (:class:`CompareOptions`, every option and default), ``job`` (one run,
:func:`run_compare`), ``layout`` (the output folder's paths), ``variants`` (models and losses),
``encoders`` (pretrained encoder weights), ``training`` (one variant, streamed), ``experiment``
(split, seeds, save/reload, resume), ``evaluation`` (scores accumulated batch by batch),
``report`` (tables, JSON, Markdown), ``statistics`` (the paired bootstrap behind the advice and
``--prune``), ``parallel`` (``--jobs``, ``--ray``), ``prune`` (``--prune``'s schedule), ``plots``.
"""

from .encoders import EncoderWeightsError, load_encoder_weights
from .evaluation import StreamingScore
from .experiment import Split, run_comparison, split, split_indices
from .job import CompareInterrupted, run_compare
from .layout import OutputFolder
from .options import CompareOptions
from .variants import DEFAULT_VARIANTS, VARIANTS

__all__ = [
    "CompareInterrupted",
    "CompareOptions",
    "DEFAULT_VARIANTS",
    "EncoderWeightsError",
    "Split",
    "StreamingScore",
    "VARIANTS",
    "OutputFolder",
    "load_encoder_weights",
    "run_compare",
    "run_comparison",
    "split",
    "split_indices",
]
