"""``sm-pixel-ce bench``: the losses timed against TensorFlow's fused kernels, with and without XLA.

``suite`` (one run, every figure as a dict), ``losses`` (loss + gradient cases), ``training``
(the U-Net step and input pipeline), ``scaling`` (pixels and classes sweeps), ``loading``
(tf_keras ``.keras`` loads), ``timing`` (interleaved medians, peak memory), ``report``
(Markdown tables).
"""

from .losses import IGNORE_INDEX, LOSS_TARGETS, loss_benchmark, loss_cases, make_inputs
from .report import format_report
from .suite import DEFAULT_CLASS_COUNTS, DEFAULT_SIDES, check_bench_arguments, run_bench

__all__ = [
    "DEFAULT_CLASS_COUNTS",
    "DEFAULT_SIDES",
    "IGNORE_INDEX",
    "LOSS_TARGETS",
    "check_bench_arguments",
    "format_report",
    "loss_benchmark",
    "loss_cases",
    "make_inputs",
    "run_bench",
]
