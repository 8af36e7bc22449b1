"""``sm-pixel-ce compare``: train the same model with each loss set-up and score them alike.

``job`` (:func:`run_compare`) is one pipeline of five steps, each a module that the next
never calls back: ``reading`` (the data, checked) -> ``splitting`` (train/validation) ->
``counting`` (the training classes) -> ``scheduling`` (which runs, executed how: here,
``--jobs``, ``--ray``, ``--prune`` phases) -> ``reporting`` (pictures, JSON, Markdown,
predictions). Beneath them: ``options`` (:class:`CompareOptions`, every option and default),
``layout`` (the output folder's paths), ``experiment`` (one run: train, save, reload),
``training`` (one variant, streamed), ``variants`` (models and losses), ``encoders``
(pretrained encoder weights), ``evaluation`` (scores accumulated batch by batch), ``parallel``
(processes: a worker per variant that keeps its model across ``--prune`` phases; Ray),
``prune`` (``--prune``'s decisions), ``budget`` (``--budget``: a probe, then the plan of seeds,
epochs and pruning), ``statistics`` (the paired bootstrap and what a run can detect),
``report`` (tables and texts), ``plots``.
"""

from .encoders import EncoderWeightsError, load_encoder_weights
from .evaluation import StreamingScore
from .job import run_compare
from .layout import OutputFolder
from .options import CompareOptions
from .scheduling import CompareInterrupted, schedule
from .splitting import Split, split, split_indices
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
    "schedule",
    "split",
    "split_indices",
]
