"""The Markdown tables of one ``sm-pixel-ce bench`` run, from the dict :func:`run_bench` returns."""


def _mb(value):
    return "n/a" if value is None else f"{value / 2**20:.0f}"


def format_report(result):
    """The Markdown tables of one run.

    Args:
        result: The dict :func:`sm_pixel_ce.bench.run_bench` returns.

    Returns:
        The loss table, then those of the sections that ran (train step, scaling, loading), then
        the targets, as one string.

    Example:
        >>> print(format_report(run_bench(batch=2, size=64, train=False, scaling=False)))
    """
    config = result["config"]
    lines = _loss_lines(config, result["loss"])
    if result.get("train"):
        lines += _train_lines(config, result["train"])
    if result.get("scaling"):
        lines += _scaling_lines(result["scaling"])
    if result.get("load"):
        lines += _load_lines(result["load"])
    lines += ["", "## Targets", "", "| target | measured | limit | met |", "|---|---:|---:|---|"]
    for t in result["targets"]:
        sign = "<=" if t["kind"] == "max" else ">="
        lines.append(
            f"| {t['name']} | {t['ratio']:.3f} | {sign} {t['limit']:.2f} | "
            f"{'yes' if t['met'] else 'NO'} |"
        )
    lines.append(f"\nelapsed: {result['elapsed_s']:.0f} s")
    return "\n".join(lines)


def _loss_lines(config, loss):
    modes = [("graph", "tf.function")] + ([("xla", "XLA")] if config["xla"] else [])
    memory = {
        "rss": "peak MB = growth of the resident set during one call (Linux VmHWM, reset before; "
        "inputs excluded)",
        "tf": "peak MB = TensorFlow allocator peak during one call above its use before the call "
        "(inputs excluded)",
        None: "peak memory not measurable here",
    }[loss["memory_method"]]
    lines = [
        f"## Loss + gradient, {config['batch']}x{config['size']}x{config['size']}"
        f"x{config['classes']} float32",
        "",
        f"TensorFlow {config['tensorflow']}, {config['keras_flavor']}, "
        f"{config['cpu_count']} CPU cores "
        f"({', '.join(sorted(set(config['devices'])))}); "
        f"median of {config['repeats']} calls after "
        f"{config['warmup']} warm-up, cases interleaved; x floor = median / the floor's median "
        f"in the same mode; {memory}.",
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
            "\nnoise gauge: Keras softmax + CCE runs the dense floor's own kernel; "
            "its x floor here: "
            + ", ".join(f"{title} {gauge[mode]['ratio']:.2f}" for mode, title in modes)
            + " (far from 1.00 means a busy machine: rerun)."
        )
    return lines


def _train_lines(config, train):
    ms = train["steps"]["ms"]
    pipeline = train["pipeline"]
    lines = [
        "",
        f"## U-Net (resnet18) train step, batch {config['batch']}, "
        f"{config['size']}x{config['size']}",
        "",
        "| variant | median ms | x Keras |",
        "|---|---:|---:|",
        f"| softmax + categorical_crossentropy (one-hot) | {ms['keras_cce']:.0f} | 1.00 |",
        f"| pixel_softmax + pixel_cce (one-hot) | {ms['pixel_cce']:.0f} | "
        f"{train['steps']['ratio']:.3f} |",
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
            f"| {title} | {p['label_bytes_per_batch'] / 2**20:.2f} | "
            f"{p['batches_per_s_alone']:.0f} | "
            f"{p['fit_steps_per_s']:.2f} |"
        )
    lines.append(f"\nlabel bytes: one-hot float32 / uint8 = {pipeline['label_bytes_ratio']:.0f}x")
    return lines


def _scaling_lines(scaling):
    lines = [
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
    return lines


def _load_lines(load):
    lines = [
        "",
        f"## Loading a .keras {load['arch']} in tf_keras ({load['size']} px, compile=False)",
        "",
        f"median of {load['repeats']} loads per way, interleaved; "
        "copy = weights copied out of the zip "
        "first (sm_pixel_ce), zip = read from inside the zip (tf_keras alone)",
        "",
        "| backbone | file MB | copy s | zip s | x faster |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in load["rows"]:
        lines.append(
            f"| {row['backbone']} | {row['megabytes']:.0f} | {row['s']['copy']:.2f} | "
            f"{row['s']['zip']:.2f} | "
            f"{row['speedup']:.1f} |"
        )
    return lines


def format_compare_scaling(result):
    """The Markdown table of :func:`sm_pixel_ce.bench.streaming.run_compare_scaling`."""
    config = result["config"]
    lines = [
        "## sm-pixel-ce compare: peak memory and time against the number of images",
        "",
        f"`compare --variants {','.join(config['variants'])} --backbone {config['backbone']} "
        f"--epochs {config['epochs']} --batch-size {config['batch_size']}` on generated 7-class "
        f"folders, each run in its own process; {config['cpu_count']} CPU cores. Peak RSS = "
        "the process's own high-water mark (`VmHWM`); fit = `fit` time (training and "
        "validation); epoch = the "
        "epoch's training after its first batch (which traces the graph); val = its validation "
        "pass.",
        "",
        "| images | side | train / val | peak RSS MB | wall s | CPU s | fit s | epoch s | val s "
        "| epoch ms / image |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["points"]:
        if row["returncode"]:
            lines.append(
                f"| {row['images']} | {row['size']} | failed (exit {row['returncode']}) | "
                f"{row['peak_rss_mb']:.0f} | {row['wall_s']:.0f} | - | - | - | - | - |"
            )
            continue
        lines.append(
            f"| {row['images']} | {row['size']} | {row['train_images']} / {row['val_images']} | "
            f"{row['peak_rss_mb']:.0f} | {row['wall_s']:.0f} | "
            + (f"{row['cpu_s']:.0f}" if row.get("cpu_s") is not None else "-")
            + f" | {row['train_s']:.0f} | "
            f"{row['steady_s']:.0f} | {row['validation_s']:.0f} | {row['ms_per_image']:.1f} |"
        )
    if result["rss_growth_mb"] is not None:
        lines.append(
            f"\nAt {result['main_size']} px, the fewest to the most images: peak RSS "
            f"{result['rss_growth_mb']:+.0f} MB."
        )
    fit = result.get("epoch_fit")
    if fit:
        lines.append(
            f"Epoch time at {fit['size']} px = {fit['intercept_s']:.0f} s + "
            f"{fit['ms_per_image']:.1f} ms x training images (least squares; largest "
            f"residual {fit['max_residual_pct']:.0f} %)."
        )
    lines.append(f"\nelapsed: {result['elapsed_s']:.0f} s")
    return "\n".join(lines)
