"""``sm-pixel-ce bench``: parse, call the :mod:`sm_pixel_ce.bench` job the flags choose
(:func:`~sm_pixel_ce.bench.run_bench` unless one of ``--backend jax|torch``, ``--evaluate-scaling``,
``--inference``, ``--data-formats``, ``--compare-scaling`` or ``--compare-memory`` picks
another), print its tables."""

import argparse
import inspect
import sys
import time

from ..bench import (
    DEFAULT_CLASS_COUNTS,
    DEFAULT_SIDES,
    format_compare_scaling,
    format_evaluate_scaling,
    format_format_bench,
    format_inference_bench,
    format_loss_bench,
    format_report,
    parse_points,
    run_backend_loss_bench,
    run_bench,
    run_compare_scaling,
    run_evaluate_scaling,
    run_format_bench,
    run_inference_bench,
)
from ..bench.advisor_memory import memory_table, peak_rss_over_runs


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, received {text}")
    return value


def _non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, received {text}")
    return value


def _int_list(text):
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, received {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers >= 1, received {text!r}"
        )
    return values


def _name_list(text):
    return tuple(name.strip() for name in text.split(",") if name.strip())


#: (flag, type or "switch", default, help, extra argparse keywords) of every option, in --help
#: order.
_OPTIONS = (
    (
        "--backend",
        str,
        "tensorflow",
        "tensorflow (default): every timing below; jax or torch: the same loss + gradient cases "
        "(under jax.jit; eagerly on PyTorch, beside each loss's math in plain PyTorch) in a "
        "child process with KERAS_BACKEND set (takes --batch, --size, --classes, --repeats, "
        "--warmup, --threads, --json, --check)",
        {"choices": ("tensorflow", "jax", "torch")},
    ),
    (
        "--threads",
        _non_negative,
        1,
        "--backend torch: PyTorch's intra-op threads (default 1; 0 = PyTorch's default, one per "
        "core: on shared cores its calls swing tenfold)",
        {},
    ),
    ("--batch", _positive, 8, "images per batch (default 8)", {}),
    ("--size", _positive, 256, "image side in pixels (default 256)", {}),
    ("--classes", _positive, 7, "classes, 2 to 254 (default 7)", {}),
    ("--repeats", _positive, 20, "timed loss calls per case, median taken (default 20)", {}),
    ("--warmup", _non_negative, 3, "untimed calls first (default 3)", {}),
    (
        "--cases",
        _name_list,
        None,
        "time only these loss cases (with the rows they are compared with), e.g. "
        "dice_softmax,mcc_softmax (default: the whole table; names in examples/benchmarks.md)",
        {"metavar": "NAMES"},
    ),
    ("--no-xla", "switch", False, "skip the jit_compile=True timings", {}),
    ("--skip-train", "switch", False, "skip the U-Net train step and input pipeline", {}),
    ("--train-repeats", _positive, 5, "timed train steps per variant (default 5)", {}),
    ("--fit-steps", _positive, 3, "timed fit steps per input pipeline (default 3)", {}),
    ("--skip-scaling", "switch", False, "skip the image-side and class-count sweeps", {}),
    (
        "--scaling-sides",
        _int_list,
        DEFAULT_SIDES,
        "image sides of the first sweep (default 64,128,256,512,1024)",
        {},
    ),
    (
        "--scaling-classes",
        _int_list,
        DEFAULT_CLASS_COUNTS,
        "class counts of the second sweep (default 2,7,21,50,150)",
        {},
    ),
    ("--scaling-repeats", _positive, 5, "timed calls per scaling point (default 5)", {}),
    (
        "--load-backbones",
        _name_list,
        (),
        "also time load_model of a .keras FPN on these backbones, e.g. resnet18,resnet50 "
        "(tf_keras: with sm_pixel_ce's copy of the weights vs from inside the zip)",
        {"metavar": "NAMES"},
    ),
    ("--load-repeats", _positive, 3, "timed loads per way and backbone (default 3)", {}),
    (
        "--compare-scaling",
        str,
        None,
        "instead of the loss timings: peak RSS and time of `sm-pixel-ce compare` runs on "
        "generated folders, each in its own process; POINTS = COUNT or COUNTxSIDE "
        "(side 128 when omitted), e.g. 500,2000,8000,2000x256",
        {"metavar": "POINTS"},
    ),
    (
        "--compare-memory",
        "switch",
        False,
        "instead of the loss timings: peak RSS of `sm-pixel-ce compare` against the number of "
        "runs (1, 4, 12) in each way runs execute (in-process, a process per run, --prune, "
        "--jobs 2); the compare process's own and its largest run process's",
        {},
    ),
    (
        "--data-formats",
        str,
        None,
        "instead of the loss timings: images/s of every image format through compare's reader, "
        "and compare's epoch on a 4-band uint16 TIFF folder against its first 3 bands as 8-bit "
        "PNG (with the --compare-* options); POINT = COUNTxSIDE, e.g. 200x128",
        {"metavar": "POINT"},
    ),
    (
        "--inference",
        "switch",
        False,
        "instead of the loss timings: `sm-pixel-ce predict`'s peak RSS on a 4000x3000 image, "
        "tiled against whole-image throughput, and tiled against whole-image agreement of a "
        "model trained a little (about 2 minutes on 2 cores)",
        {},
    ),
    (
        "--evaluate-scaling",
        _int_list,
        None,
        "instead of the loss timings: peak RSS and time of `sm-pixel-ce evaluate` on generated "
        "folders of these many 64-px images, each run in its own process, e.g. 500,4000 (kept "
        "in --compare-workdir when given)",
        {"metavar": "COUNTS"},
    ),
    (
        "--compare-backbone",
        str,
        "mobilenetv2",
        "backbone of the compare scaling runs (default mobilenetv2)",
        {},
    ),
    ("--compare-epochs", _positive, 1, "compare scaling epochs (default 1)", {}),
    ("--compare-batch", _positive, 8, "compare scaling batch (default 8)", {}),
    (
        "--compare-workdir",
        str,
        None,
        "generate (and keep) the compare scaling folders here (default: a temporary folder, "
        "removed afterwards)",
        {"metavar": "DIR"},
    ),
    ("--json", str, None, "write every figure as JSON to PATH", {"metavar": "PATH"}),
    ("--plot", str, None, "draw the scaling sweeps (log-log PNG) to PATH", {"metavar": "PATH"}),
    ("--check", "switch", False, "exit with status 1 when a target is missed", {}),
)


def add_arguments(parser):
    """Add every flag of :data:`_OPTIONS` to ``parser``, in that order."""
    for flag, kind, default, help, extra in _OPTIONS:
        if kind == "switch":
            parser.add_argument(flag, action="store_true", help=help)
        else:
            parser.add_argument(flag, type=kind, default=default, help=help, **extra)


def _say(line):
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _matching(function, args, **more):
    """The keyword arguments of ``function`` that are flags of the same name, and ``more``."""
    names = inspect.signature(function).parameters
    return {**{name: value for name, value in vars(args).items() if name in names}, **more}


def _compare_runs(args):
    """The ``compare`` runs' options, as the format bench and the compare sweep take them."""
    return {
        "workdir": args.compare_workdir,
        "backbone": args.compare_backbone,
        "epochs": args.compare_epochs,
        "batch_size": args.compare_batch,
        "json_path": args.json,
        "progress": _say,
    }


def _targets_met(args, result):
    return not args.check or all(target["met"] for target in result["targets"])


def _evaluate_scaling(args):
    points = run_evaluate_scaling(
        args.evaluate_scaling, workdir=args.compare_workdir, progress=_say, json_path=args.json
    )
    print(format_evaluate_scaling(points))
    return all(point["returncode"] == 0 for point in points)


def _inference(args):
    result = run_inference_bench(json_path=args.json, progress=_say)
    print(format_inference_bench(result))
    _say(f"done in {result['elapsed_s']:.0f} s")
    return _targets_met(args, result) and result["memory"]["large"]["returncode"] == 0


def _data_formats(args):
    count, size = parse_points(args.data_formats)[0]
    result = run_format_bench(count, size, **_compare_runs(args))
    print(format_format_bench(result))
    runs = [run for rows in result["compare"].values() for run in rows]
    return all(run["returncode"] == 0 for run in runs)


def _compare_scaling(args):
    result = run_compare_scaling(parse_points(args.compare_scaling), **_compare_runs(args))
    print(format_compare_scaling(result))
    return all(row["returncode"] == 0 for row in result["points"])


def _compare_memory(args):
    result = peak_rss_over_runs(workdir=args.compare_workdir, json_path=args.json, progress=_say)
    print(memory_table(result["points"]))
    return all(point["returncode"] == 0 for point in result["points"])


def _losses(args):
    result = run_bench(
        **_matching(
            run_bench,
            args,
            xla=not args.no_xla,
            train=not args.skip_train,
            scaling=not args.skip_scaling,
            json_path=args.json,
            progress=_say,
        )
    )
    print(format_report(result))
    _say(f"done in {result['elapsed_s']:.0f} s")
    return _targets_met(args, result)


def _backend(args):
    result = run_backend_loss_bench(
        **_matching(run_backend_loss_bench, args, progress=_say, json_path=args.json)
    )
    print(format_loss_bench(result))
    return _targets_met(args, result)


def run(args):
    """Run the bench job the flags chose and print its tables.

    Args:
        args: The parsed flags of :func:`add_arguments`.

    Returns:
        The exit status: 2 for arguments the job cannot take, 1 for a failed run or (with
        ``--check``) a missed target, else 0.
    """
    if args.backend != "tensorflow":
        job = _backend
    else:
        chosen = (
            (args.evaluate_scaling, _evaluate_scaling),
            (args.inference, _inference),
            (args.data_formats, _data_formats),
            (args.compare_scaling, _compare_scaling),
            (args.compare_memory, _compare_memory),
        )
        job = next((job for flag, job in chosen if flag), _losses)
    try:
        return 0 if job(args) else 1
    except ValueError as error:
        print(f"sm-pixel-ce bench: {error}", file=sys.stderr)
        return 2
