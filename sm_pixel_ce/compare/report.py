"""Aggregate runs over seeds and write the comparison as a table, ``report.json`` and
``report.md``."""

import json
import os

import numpy as np

from .variants import VARIANTS

#: Scalar metrics averaged over seeds (mean ± std when there are several).
SCALARS = (
    "miou",
    "pixel_accuracy",
    "keras_accuracy",
    "binary_accuracy",
    "ece",
    "train_loss",
    "val_loss",
    "epochs_to_90",
    "seconds",
)
# Column title and format of the table.
_COLUMNS = (
    ("miou", "mIoU", "{:.3f}"),
    ("pixel_accuracy", "pixel acc", "{:.3f}"),
    ("keras_accuracy", "Keras 'accuracy'", "{:.3f}"),
    ("binary_accuracy", "binary_accuracy", "{:.3f}"),
    ("ece", "ECE", "{:.3f}"),
    ("train_loss", "train loss", "{:.3f}"),
    ("val_loss", "val loss", "{:.3f}"),
    ("epochs_to_90", "epochs to 90%", "{:.1f}"),
    ("seconds", "seconds", "{:.0f}"),
)


def aggregate(runs):
    """One result per variant: the run itself for one seed, else means with ``std`` and ``runs``.

    ``per_class_iou`` is averaged over the runs where the class is not None, and ``miou`` is the
    mean of the non-None ``per_class_iou`` in every case.

    Args:
        runs: ``{variant: [result dict per seed]}``.

    Returns:
        A list of result dicts, in the order of ``runs``.
    """
    results = []
    for variant, items in runs.items():
        if len(items) == 1:
            results.append(dict(items[0]))
            continue
        result = {"variant": variant, "seeds": [r["seed"] for r in items]}
        per_class = []
        for values in zip(*(r["per_class_iou"] for r in items)):
            present = [v for v in values if v is not None]
            per_class.append(float(np.mean(present)) if present else None)
        present = [v for v in per_class if v is not None]
        result["per_class_iou"] = per_class
        std = {}
        for key in SCALARS:
            values = [r[key] for r in items if r.get(key) is not None]
            if values:
                result[key] = float(np.mean(values))
                std[key] = float(np.std(values))
            else:
                result[key] = None
        result["miou"] = float(np.mean(present)) if present else 0.0
        result["std"] = std
        curves = np.array([r["val_miou_per_epoch"] for r in items])
        result["val_miou_per_epoch"] = [float(v) for v in curves.mean(0)]
        result.update(
            {k: items[0][k] for k in ("model_path", "reload_max_abs_diff") if k in items[0]}
        )
        result["runs"] = items
        results.append(result)
    return results


def _cell(result, key, fmt):
    value = result.get(key)
    if value is None:
        return "-"
    text = fmt.format(value)
    std = result.get("std", {}).get(key)
    return text if std is None else f"{text} ± {fmt.format(std)}"


def table(results, markdown=False):
    """The results as an aligned text table, or a Markdown table."""
    header = ["variant"] + [title for _, title, _ in _COLUMNS]
    rows = [[r["variant"]] + [_cell(r, key, fmt) for key, _, fmt in _COLUMNS] for r in results]
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * len(_COLUMNS)) + "|",
        ]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in [header] + rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def per_class_table(results, class_names, markdown=False):
    """Per-class IoU, one row per class and one column per variant."""
    header = ["class"] + [r["variant"] for r in results]
    rows = []
    for c, name in enumerate(class_names):
        cells = [r["per_class_iou"][c] for r in results]
        rows.append([f"{c} {name}"] + ["-" if v is None else f"{v:.3f}" for v in cells])
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * len(results)) + "|",
        ]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in [header] + rows
    )


def write_json(path, config, results):
    """Write ``{"config": ..., "results": [...]}``."""
    with open(path, "w") as f:
        json.dump({"config": config, "results": results}, f, indent=2)
        f.write("\n")


def write_markdown(path, config, results, class_names, images):
    """Write ``report.md``: configuration, the two tables, and the pictures (paths relative to
    it)."""
    folder = os.path.dirname(os.path.abspath(path))
    lines = [
        "# sm-pixel-ce compare",
        "",
        f"Data: {config['data']}; {config['train_images']} training / "
        f"{config['val_images']} validation "
        f"images of {config['size']}x{config['size']} px, {config['classes']} classes"
        + (f", ignore value {config['ignore_index']}" if config["ignore_index"] is not None else "")
        + ".",
        f"Model: sm.{config['arch']}({config['backbone']!r}, "
        f"encoder_weights={config.get('encoder_weights')!r}"
        + (", encoder_freeze=True" if config.get("freeze_encoder") else "")
        + "); "
        + ("augmented (flip, crop/scale); " if config.get("augment") else "")
        + (
            f"{config['steps_per_epoch']} steps per epoch; "
            if config.get("steps_per_epoch")
            else ""
        )
        + f"Adam lr={config['lr']}, "
        f"{config['epochs']} epochs, batch {config['batch_size']}, seeds {config['seed_list']}; "
        f"Keras flavour {config['keras']}; wall time {config['wall_seconds']:.0f} s.",
        "",
        "| variant | set-up |",
        "|---|---|",
        *[f"| {r['variant']} | {VARIANTS[r['variant']]} |" for r in results],
        "",
        table(results, markdown=True),
        "",
        "mIoU, pixel acc (argmax) and ECE (max probability, 15 bins) are computed in NumPy on the "
        "validation split. Keras 'accuracy' is what `metrics=[\"accuracy\"]` reported on the "
        "same split; binary_accuracy is the per-channel `p > 0.5` accuracy that Keras <= 2.2 "
        "reported as 'accuracy' with `loss=\"binary_crossentropy\"`. Losses differ per variant "
        "and are not comparable across rows. Epochs to 90%: first epoch reaching 90% of the "
        "variant's best val mIoU.",
        "",
        *(
            [
                f"Skipped {len(config['skipped'])} damaged pair(s) (--skip-bad):",
                "",
                *[f"- {bad['reason']}" for bad in config["skipped"]],
                "",
            ]
            if config.get("skipped")
            else []
        ),
        "## Per-class IoU",
        "",
        per_class_table(results, class_names, markdown=True),
        "",
    ]
    for title, image in images:
        lines += [f"## {title}", "", f"![{title}]({os.path.relpath(image, folder)})", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
