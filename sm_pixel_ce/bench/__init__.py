"""``sm-pixel-ce bench``: the losses timed against TensorFlow's fused kernels, with and without XLA.

``suite`` (one run, every figure as a dict), ``losses`` (loss + gradient cases), ``training``
(the U-Net step and input pipeline), ``scaling`` (pixels and classes sweeps), ``loading``
(tf_keras ``.keras`` loads), ``inference`` (``predict``'s peak memory, tiled throughput and
agreement), ``timing`` (interleaved medians, peak memory), ``streaming``
(``compare``'s peak memory and time against the number of images), ``report`` (Markdown tables).
"""

from .inference import format_inference_bench, run_inference_bench
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
    "format_inference_bench",
    "format_report",
    "loss_benchmark",
    "loss_cases",
    "make_inputs",
    "parse_points",
    "run_compare_scaling",
    "run_inference_bench",
    "run_bench",
]
