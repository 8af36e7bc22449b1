"""``sm-pixel-ce bench``: the losses timed against TensorFlow's fused kernels, with and without XLA.

``suite`` (one run, every figure as a dict), ``losses`` (loss + gradient cases), ``jax_losses``
(the same under ``jax.jit``), ``training`` (the U-Net step and input pipeline), ``scaling``
(pixels and classes sweeps), ``loading`` (tf_keras ``.keras`` loads), ``inference``
(``predict``'s peak memory, tiled throughput and agreement), ``timing`` (interleaved medians,
peak memory), ``streaming`` (``compare``'s peak memory and time against the number of images),
``evaluation`` (the same for ``evaluate``), ``formats`` (image formats through ``compare``'s
reader), ``output`` (the machine and the JSON file of every job), ``report`` (Markdown tables).
"""

from .evaluation import format_evaluate_scaling, run_evaluate_scaling
from .formats import format_format_bench, run_format_bench
from .inference import format_inference_bench, run_inference_bench
from .jax_losses import format_jax_bench, run_jax_loss_bench
from .losses import IGNORE_INDEX, LOSS_TARGETS, loss_benchmark, loss_cases, make_inputs
from .report import format_compare_scaling, format_report
from .streaming import DEFAULT_POINTS, parse_points, run_compare_scaling
from .suite import DEFAULT_CLASS_COUNTS, DEFAULT_SIDES, check_bench_arguments, run_bench

__all__ = [
    "DEFAULT_CLASS_COUNTS",
    "DEFAULT_POINTS",
    "DEFAULT_SIDES",
    "IGNORE_INDEX",
    "LOSS_TARGETS",
    "check_bench_arguments",
    "format_compare_scaling",
    "format_evaluate_scaling",
    "format_format_bench",
    "format_inference_bench",
    "format_jax_bench",
    "format_report",
    "loss_benchmark",
    "loss_cases",
    "make_inputs",
    "parse_points",
    "run_bench",
    "run_compare_scaling",
    "run_evaluate_scaling",
    "run_format_bench",
    "run_inference_bench",
    "run_jax_loss_bench",
]
