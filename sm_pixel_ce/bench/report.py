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
    lines += _target_lines(result["targets"])
    lines.append(f"\nelapsed: {result['elapsed_s']:.0f} s")
    return "\n".join(lines)


#: How each backend's mode is titled in the tables.
MODE_TITLES = {"graph": "tf.function", "xla": "XLA", "jit": "jax.jit", "eager": "eager"}
#: How peak memory was measured, as the tables say it.
MEMORY_METHODS = {
    "rss": "peak MB = growth of the resident set during one call (Linux VmHWM, reset before; "
    "inputs excluded)",
    "tf": "peak MB = TensorFlow allocator peak during one call above its use before the call "
    "(inputs excluded)",
    "torch_cuda": "peak MB = torch.cuda.max_memory_allocated during one call above the memory "
    "allocated before it",
    None: "peak memory not measured here (n/a)",
}


def _loss_lines(config, loss):
    versions = f"TensorFlow {config['tensorflow']}, {config['keras_flavor']}"
    return _loss_table(config, loss, versions)


def _loss_table(config, loss, versions):
    """The heading and table of one backend's loss cases (``loss``: cases, modes,
    memory_method)."""
    modes = loss["modes"]
    plain = any("plain_ms" in case[mode] for case in loss["cases"] for mode in modes)
    cpu = config.get("clock") == "cpu"  # PyTorch: CPU ms beside wall ms, ratios of CPU medians
    columns = [f"{MODE_TITLES[mode]} ms |{' CPU ms |' * cpu} x floor | peak MB" for mode in modes]
    if plain:
        columns.append(f"plain ms |{' plain CPU ms |' * cpu} x plain")
    median = "CPU median" if cpu else "median"
    lines = [
        f"## Loss + gradient, {config['batch']}x{config['size']}x{config['size']}"
        f"x{config['classes']} float32",
        "",
        f"{versions}, {config['cpu_count']} CPU cores "
        f"({', '.join(sorted(set(config['devices'])))}); "
        f"median of {config['repeats']} calls after "
        f"{config['warmup']} warm-up, cases interleaved"
        + (f", {config['threads']} torch thread(s); CPU = this process's time" if cpu else "")
        + f"; x floor = {median} / the floor's {median} in the same mode"
        + (f"; x plain = {median} / the {median} of the same math in plain PyTorch" * plain)
        + f"; {MEMORY_METHODS[loss['memory_method']]}.",
        "",
        "| case | floor | " + " | ".join(columns) + " | loss |",
        "|---|---|" + "---:|" * ((3 + cpu) * len(modes) + (2 + cpu) * plain + 1),
    ]
    for case in loss["cases"]:
        floor = "-" if case["floor"] == case["name"] else case["floor"].replace("floor_", "")
        cells = []
        for mode in modes:
            m = case[mode]
            cells += [f"{m['ms']:.1f}"] + ([f"{m['cpu_ms']:.1f}"] if cpu else [])
            cells += [f"{m['cpu_ratio' if cpu else 'ratio']:.2f}", _mb(m["peak_bytes"])]
        if plain:
            m = case[modes[0]]
            if "plain_ms" in m:
                cells += [f"{m['plain_ms']:.1f}"] + ([f"{m['plain_cpu_ms']:.1f}"] if cpu else [])
                cells.append(f"{m['plain_ratio']:.2f}")
            else:
                cells += ["-"] * (2 + cpu)
        cells.append(f"{case[modes[0]]['loss']:.4f}")
        lines.append(f"| {case['description']} | {floor} | " + " | ".join(cells) + " |")
    gauge = next((c for c in loss["cases"] if c["name"] == "floor_sparse_again"), None)
    if gauge:
        lines.append(
            "\nnoise gauge: the sparse floor compiled a second time reads "
            + ", ".join(
                f"{MODE_TITLES[mode]} {gauge[mode]['cpu_ratio' if cpu else 'ratio']:.2f}"
                for mode in modes
            )
            + " x floor (far from 1.00 means a busy machine: rerun)."
        )
    return lines


def _target_lines(targets):
    lines = ["", "## Targets", "", "| target | measured | limit | met |", "|---|---:|---:|---|"]
    for t in targets:
        sign = "<=" if t["kind"] == "max" else ">="
        lines.append(
            f"| {t['name']} | {t['ratio']:.3f} | {sign} {t['limit']:.2f} | "
            f"{'yes' if t['met'] else 'NO'} |"
        )
    return lines


def format_loss_bench(result):
    """The Markdown tables of one :func:`~sm_pixel_ce.bench.run_backend_loss_bench` result
    (JAX or PyTorch): the loss table, then its targets.

    Args:
        result: The dict ``run_backend_loss_bench`` returns.

    Returns:
        The tables as one string.

    Example:
        >>> print(format_loss_bench(run_backend_loss_bench("jax", 2, 64, 7, 3, 1)))
    """
    config = result["config"]
    backend = config["backend"]
    name = {"jax": "JAX", "torch": "PyTorch"}[backend]
    versions = f"{name} {config[backend]}, Keras {config['keras']} ({backend} backend)"
    lines = _loss_table(config, result, versions)
    return "\n".join(lines + _target_lines(result["targets"]))


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
