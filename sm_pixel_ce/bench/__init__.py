"""``sm-pixel-ce bench``: the losses timed against each framework's fused kernels (TensorFlow with
and without XLA, JAX, PyTorch), the jobs' memory and speed.

``cases`` (the one loss table every backend runs, and its driver), ``losses`` (that table on
TensorFlow), ``backend_losses`` (on JAX and PyTorch, in a child process), ``suite`` (one run,
every figure as a dict), ``training`` (the U-Net step and input pipeline), ``scaling`` (pixels and
classes sweeps), ``loading`` (tf_keras ``.keras`` loads), ``inference`` (``predict``'s peak memory,
tiled throughput and agreement), ``timing`` (interleaved medians, peak memory), ``streaming``
(``compare``'s peak memory and time against the number of images), ``evaluation`` (the same for
``evaluate``), ``formats`` (image formats through ``compare``'s reader), ``output`` (the machine
and the JSON file of every job), ``report`` (Markdown tables).
"""

from .backend_losses import run_backend_loss_bench
from .cases import IGNORE_INDEX, LOSS_CASES, make_inputs
from .evaluation import format_evaluate_scaling, run_evaluate_scaling
from .formats import format_format_bench, run_format_bench
from .inference import format_inference_bench, run_inference_bench
from .losses import loss_benchmark
from .report import format_compare_scaling, format_loss_bench, format_report
from .streaming import DEFAULT_POINTS, parse_points, run_compare_scaling
from .suite import DEFAULT_CLASS_COUNTS, DEFAULT_SIDES, check_bench_arguments, run_bench

__all__ = [
    "DEFAULT_CLASS_COUNTS",
    "DEFAULT_POINTS",
    "DEFAULT_SIDES",
    "IGNORE_INDEX",
    "LOSS_CASES",
    "check_bench_arguments",
    "format_compare_scaling",
    "format_evaluate_scaling",
    "format_format_bench",
    "format_inference_bench",
    "format_loss_bench",
    "format_report",
    "loss_benchmark",
    "make_inputs",
    "parse_points",
    "run_backend_loss_bench",
    "run_bench",
    "run_compare_scaling",
    "run_evaluate_scaling",
    "run_format_bench",
    "run_inference_bench",
]
