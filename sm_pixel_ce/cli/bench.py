"""``sm-pixel-ce bench``: the losses timed against TensorFlow's fused kernels, with and without XLA.

Prints Markdown tables (loss + gradient per case, the U-Net train step, the input pipeline, the
scaling sweeps, and on request loading ``.keras`` files in tf_keras) and the issue's targets; ``--json`` writes every figure, ``--plot`` draws the
scaling sweeps. The measurement itself lives in :mod:`sm_pixel_ce.benchmarks`.
"""

import argparse
import json
import os
import platform
import sys
import time

DEFAULT_SIDES = (64, 128, 256, 512, 1024)
DEFAULT_CLASS_COUNTS = (2, 7, 21, 50, 150)


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


def add_arguments(parser):
    parser.add_argument("--batch", type=_positive, default=8, help="images per batch (default 8)")
    parser.add_argument(
        "--size", type=_positive, default=256, help="image side in pixels (default 256)"
    )
    parser.add_argument(
        "--classes", type=_positive, default=7, help="classes, 2 to 254 (default 7)"
    )
    parser.add_argument(
        "--repeats",
        type=_positive,
        default=20,
        help="timed loss calls per case, median taken (default 20)",
    )
    parser.add_argument(
        "--warmup", type=_non_negative, default=3, help="untimed calls first (default 3)"
    )
    parser.add_argument("--no-xla", action="store_true", help="skip the jit_compile=True timings")
    parser.add_argument(
        "--skip-train", action="store_true", help="skip the U-Net train step and input pipeline"
    )
    parser.add_argument(
        "--train-repeats",
        type=_positive,
        default=5,
        help="timed train steps per variant (default 5)",
    )
    parser.add_argument(
        "--fit-steps",
        type=_positive,
        default=3,
        help="timed fit steps per input pipeline (default 3)",
    )
    parser.add_argument(
        "--skip-scaling", action="store_true", help="skip the image-side and class-count sweeps"
    )
    parser.add_argument(
        "--scaling-sides",
        type=_int_list,
        default=DEFAULT_SIDES,
        help="image sides of the first sweep (default 64,128,256,512,1024)",
    )
    parser.add_argument(
        "--scaling-classes",
        type=_int_list,
        default=DEFAULT_CLASS_COUNTS,
        help="class counts of the second sweep (default 2,7,21,50,150)",
    )
    parser.add_argument(
        "--scaling-repeats",
        type=_positive,
        default=5,
        help="timed calls per scaling point (default 5)",
    )
    parser.add_argument(
        "--load-backbones",
        type=_name_list,
        default=(),
        metavar="NAMES",
        help="also time load_model of a .keras FPN on these backbones, e.g. resnet18,resnet50 "
        "(tf_keras: with sm_pixel_ce's copy of the weights vs from inside the zip)",
    )
    parser.add_argument(
        "--load-repeats",
        type=_positive,
        default=3,
        help="timed loads per way and backbone (default 3)",
    )
    parser.add_argument("--json", metavar="PATH", help="write every figure as JSON to PATH")
    parser.add_argument(
        "--plot", metavar="PATH", help="draw the scaling sweeps (log-log PNG) to PATH"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )


def _say(line):
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _validate(args):
    if not 2 <= args.classes <= 254:
        return f"--classes must be in [2, 254] (uint8 masks, 255 is the ignore index). Received: {args.classes}"
    counts = () if args.skip_scaling else args.scaling_classes
    if any(not 2 <= c <= 254 for c in counts):
        return f"--scaling-classes must be in [2, 254]. Received: {','.join(map(str, counts))}"
    if not args.skip_train and args.size % 32:
        return f"--size must be a multiple of 32 for the U-Net train step (or pass --skip-train). Received: {args.size}"
    if args.plot and args.skip_scaling:
        return "--plot draws the scaling sweeps; it cannot be combined with --skip-scaling."
    return None


def run(args):
    error = _validate(args)
    if error:
        print(f"sm-pixel-ce bench: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()

    import tensorflow as tf

    import sm_pixel_ce
    from sm_pixel_ce import benchmarks

    config = {
        "batch": args.batch,
        "size": args.size,
        "classes": args.classes,
        "dtype": "float32",
        "repeats": args.repeats,
        "warmup": args.warmup,
        "xla": not args.no_xla,
        "tensorflow": tf.__version__,
        "keras_flavor": sm_pixel_ce.KERAS_FLAVOR,
        "sm_pixel_ce": sm_pixel_ce.__version__,
        "cpu_count": os.cpu_count(),
        "devices": [d.device_type for d in tf.config.list_logical_devices()],
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    unknown = sorted(set(args.load_backbones) - set(sm_pixel_ce.supported_backbones()))
    if unknown:
        print(
            f"sm-pixel-ce bench: --load-backbones: unknown backbone(s) {unknown}; expected names of "
            f"segmentation_models, e.g. resnet18,resnet50. Received: {','.join(args.load_backbones)}",
            file=sys.stderr,
        )
        return 2
    result = {"config": config}
    shape = f"{args.batch}x{args.size}x{args.size}x{args.classes}"
    _say(f"loss + gradient on {shape} float32")
    result["loss"] = benchmarks.loss_benchmark(
        args.batch,
        args.size,
        args.classes,
        args.repeats,
        args.warmup,
        xla=not args.no_xla,
        progress=_say,
    )
    targets = list(result["loss"]["targets"])
    result["train"] = None
    if not args.skip_train:
        result["train"] = benchmarks.train_benchmark(
            args.batch,
            args.size,
            args.classes,
            args.train_repeats,
            1,
            args.fit_steps,
            progress=_say,
        )
        targets += result["train"]["targets"]
    result["scaling"] = None
    if not args.skip_scaling:
        result["scaling"] = benchmarks.scaling_benchmark(
            args.batch,
            args.scaling_sides,
            args.scaling_classes,
            args.size,
            args.classes,
            args.scaling_repeats,
            1,
            progress=_say,
        )
        if args.plot:
            benchmarks.plot_scaling(
                result["scaling"],
                args.plot,
                title=f"pixel_cce (pixel_softmax output, uint8 masks), loss + gradient, batch {args.batch}, "
                f"{config['cpu_count']} CPU cores",
            )
            _say(f"scaling plot written to {args.plot}")
    result["load"] = None
    if args.load_backbones:
        result["load"] = benchmarks.load_benchmark(args.load_backbones, repeats=args.load_repeats, progress=_say)
        if result["load"] is None:
            _say("--load-backbones: Keras 3 copies the weights out itself; nothing to compare (run with TF_USE_LEGACY_KERAS=1)")
    result["targets"] = targets
    result["elapsed_s"] = time.perf_counter() - started

    print(format_report(result))
    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(directory, exist_ok=True)
        with open(args.json, "w") as file:
            json.dump(result, file, indent=2)
        _say(f"figures written to {args.json}")
    _say(f"done in {result['elapsed_s']:.0f} s")
    if args.check and not all(t["met"] for t in targets):
        return 1
    return 0


def _mb(value):
    return "n/a" if value is None else f"{value / 2**20:.0f}"


def format_report(result):
    """The Markdown tables of one run."""
    config, loss = result["config"], result["loss"]
    modes = [("graph", "tf.function")] + ([("xla", "XLA")] if config["xla"] else [])
    memory = {
        "rss": "peak MB = growth of the resident set during one call (Linux VmHWM, reset before; "
        "inputs excluded)",
        "tf": "peak MB = TensorFlow allocator peak during one call above its use before the call "
        "(inputs excluded)",
        None: "peak memory not measurable here",
    }[loss["memory_method"]]
    lines = [
        f"## Loss + gradient, {config['batch']}x{config['size']}x{config['size']}x{config['classes']} float32",
        "",
        f"TensorFlow {config['tensorflow']}, {config['keras_flavor']}, {config['cpu_count']} CPU cores "
        f"({', '.join(sorted(set(config['devices'])))}); median of {config['repeats']} calls after "
        f"{config['warmup']} warm-up, cases interleaved; x floor = median / the floor's median in the "
        f"same mode; {memory}.",
        "",
        "| case | floor | "
        + " | ".join(f"{title} ms | x floor | peak MB" for _, title in modes)
        + " |",
        "|---|---|" + "---:|---:|---:|" * len(modes),
    ]
    for case in loss["cases"]:
        floor = "-" if case["floor"] == case["name"] else case["floor"].replace("floor_", "")
        cells = []
        for mode, _ in modes:
            m = case[mode]
            cells += [f"{m['ms']:.1f}", f"{m['ratio']:.2f}", _mb(m["peak_bytes"])]
        lines.append(f"| {case['description']} | {floor} | " + " | ".join(cells) + " |")
    gauge = next((c for c in loss["cases"] if c["name"] == "keras_softmax_cce"), None)
    if gauge:
        # Keras's softmax + CCE runs the floor's own kernel: its distance from 1.00 is the noise.
        lines.append(
            "\nnoise gauge: Keras softmax + CCE runs the dense floor's own kernel; its x floor here: "
            + ", ".join(f"{title} {gauge[mode]['ratio']:.2f}" for mode, title in modes)
            + " (far from 1.00 means a busy machine: rerun)."
        )

    train = result.get("train")
    if train:
        ms = train["steps"]["ms"]
        pipeline = train["pipeline"]
        lines += [
            "",
            f"## U-Net (resnet18) train step, batch {config['batch']}, {config['size']}x{config['size']}",
            "",
            "| variant | median ms | x Keras |",
            "|---|---:|---:|",
            f"| softmax + categorical_crossentropy (one-hot) | {ms['keras_cce']:.0f} | 1.00 |",
            f"| pixel_softmax + pixel_cce (one-hot) | {ms['pixel_cce']:.0f} | {train['steps']['ratio']:.3f} |",
            f"| pixel_softmax + pixel_cce (uint8 masks) | {ms['pixel_cce_uint8']:.0f} | "
            f"{train['steps']['ratio_uint8']:.3f} |",
            "",
            "| input pipeline | label MB / batch | batches/s alone | fit steps/s |",
            "|---|---:|---:|---:|",
        ]
        for name, title in (
            ("onehot_float32", "one-hot float32 masks"),
            ("uint8", "uint8 integer masks"),
        ):
            p = pipeline[name]
            lines.append(
                f"| {title} | {p['label_bytes_per_batch'] / 2**20:.2f} | {p['batches_per_s_alone']:.0f} | "
                f"{p['fit_steps_per_s']:.2f} |"
            )
        lines.append(
            f"\nlabel bytes: one-hot float32 / uint8 = {pipeline['label_bytes_ratio']:.0f}x"
        )

    scaling = result.get("scaling")
    if scaling:
        lines += [
            "",
            "## Scaling (pixel_cce on pixel_softmax output, uint8 masks; sparse floor alongside)",
            "",
        ]
        for sweep, key in (("sides", "side"), ("classes", "classes")):
            points = scaling[sweep]["points"]
            lines += [
                f"| {key} | pixels | classes | pixel_cce ms | floor ms | x floor |",
                "|---:|---:|---:|---:|---:|---:|",
            ]
            for p in points:
                a, b = p["ms"]["pixel_cce"], p["ms"]["floor_sparse"]
                lines.append(
                    f"| {p[key]} | {p['pixels']} | {p['classes']} | {a:.1f} | {b:.1f} | {a / b:.2f} |"
                )
            slope = scaling[sweep]["slope"]
            if slope:
                lines.append(
                    f"\nlog-log slope vs {'pixels' if sweep == 'sides' else 'classes'}: "
                    + ", ".join(f"{name} {value:.2f}" for name, value in slope.items())
                    + " (1 = linear)\n"
                )

    load = result.get("load")
    if load:
        lines += [
            "",
            f"## Loading a .keras {load['arch']} in tf_keras ({load['size']} px, compile=False)",
            "",
            f"median of {load['repeats']} loads per way, interleaved; copy = weights copied out of the zip "
            "first (sm_pixel_ce), zip = read from inside the zip (tf_keras alone)",
            "",
            "| backbone | file MB | copy s | zip s | x faster |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in load["rows"]:
            lines.append(
                f"| {row['backbone']} | {row['megabytes']:.0f} | {row['s']['copy']:.2f} | {row['s']['zip']:.2f} | "
                f"{row['speedup']:.1f} |"
            )

    lines += ["", "## Targets", "", "| target | measured | limit | met |", "|---|---:|---:|---|"]
    for t in result["targets"]:
        sign = "<=" if t["kind"] == "max" else ">="
        lines.append(
            f"| {t['name']} | {t['ratio']:.3f} | {sign} {t['limit']:.2f} | {'yes' if t['met'] else 'NO'} |"
        )
    lines.append(f"\nelapsed: {result['elapsed_s']:.0f} s")
    return "\n".join(lines)
