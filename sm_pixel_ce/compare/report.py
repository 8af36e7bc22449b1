"""Aggregate runs over seeds and write the comparison as a table, ``report.json`` and
``report.md``."""

import json
import math
import os

import numpy as np

from .recipe import IMPORTS, MODEL_LINE
from .variants import VARIANTS

#: Scalar metrics averaged over seeds (mean ± std when there are several).
SCALARS = (
    "miou",
    "rare_iou",
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
    ("rare_iou", "rare classes", "{:.3f}"),
    ("pixel_accuracy", "pixel acc", "{:.3f}"),
    ("keras_accuracy", "Keras 'accuracy'", "{:.3f}"),
    ("binary_accuracy", "binary_accuracy", "{:.3f}"),
    ("ece", "ECE", "{:.3f}"),
    ("train_loss", "train loss", "{:.3f}"),
    ("val_loss", "val loss", "{:.3f}"),
    ("epochs_to_90", "epochs to 90%", "{:.1f}"),
    ("seconds", "seconds", "{:.0f}"),
)


def score_text(value):
    """A score to 3 decimals, or ``-`` when it is undefined (None)."""
    return "-" if value is None else f"{value:.3f}"


#: The variant the recommendation measures margins against.
BASELINE = "cce"


def rare_classes(train_class_pixels):
    """The third of the classes (⌈C/3⌉) with the fewest training pixels, in class order.

    Args:
        train_class_pixels: Training pixels per class, ``(C,)``.

    Returns:
        A sorted list of class indices (ties broken by the lower index).

    Example:
        >>> rare_classes([900, 40, 300, 10, 500, 60, 700])
        [1, 3, 5]
    """
    counts = np.asarray(train_class_pixels)
    share = math.ceil(len(counts) / 3)
    return sorted(int(c) for c in np.argsort(counts, kind="stable")[:share])


def rare_iou(result):
    """Mean IoU over :func:`rare_classes` of one run (classes without an IoU left out), or None
    when the run does not carry ``train_class_pixels``."""
    pixels = result.get("train_class_pixels")
    if pixels is None:
        return None
    values = [result["per_class_iou"][c] for c in rare_classes(pixels)]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


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
        items = [dict(r, rare_iou=rare_iou(r)) for r in items]
        if len(items) == 1:
            results.append(items[0])
            continue
        result = {"variant": variant, "seeds": [r["seed"] for r in items]}
        if "train_class_pixels" in items[0]:
            result["train_class_pixels"] = items[0]["train_class_pixels"]
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
        result["miou"] = float(np.mean(present)) if present else None
        result["std"] = std
        curves = np.array([r["val_miou_per_epoch"] for r in items])
        result["val_miou_per_epoch"] = [float(v) for v in curves.mean(0)]
        # Every seed trains on the same split, so the same class weights.
        result.update(
            {
                k: items[0][k]
                for k in (
                    "setup",
                    "loss",
                    "loss_code",
                    "activation",
                    "compile",
                    "model_path",
                    "reload_max_abs_diff",
                )
                if k in items[0]
            }
        )
        result["runs"] = items
        results.append(result)
    return results


def recommendation(results, class_names=None, baseline=BASELINE, config=None):
    """The advisor's reading of the results: the best variant and whether its lead is real.

    The best variant has the highest mean mIoU over seeds; its margin is taken over
    ``baseline`` (or, when the best is the baseline or the baseline was not run, over the
    runner-up). The spread across seeds is the larger range (max - min) of per-seed mIoU of the
    two; the difference is established only with 2 seeds or more and a margin above that spread.

    Args:
        results: What :func:`aggregate` returns.
        class_names: Names of the classes, for the rare-class line. Defaults to None.
        baseline: Variant the margin is measured over. Defaults to "cce".
        config: The report's configuration, for the lines that build and compile the best
            variant's model. Defaults to None (no such lines).

    Returns:
        A dict: ``best``, ``versus``, ``margin``, ``spread`` (None with one seed), ``seeds``,
        ``established``, ``best_rare`` (variant with the best rare-class IoU, or None),
        ``rare_classes``, ``code`` (the lines that build and compile the best variant's model
        with its options, ``ignore_index`` and class weights filled in, or None) and ``text``
        (the sentences of the report).
    """
    if not results:
        raise ValueError("recommendation: no results. Received: results=[]")
    mean = {r["variant"]: float(np.mean(_seed_mious(r))) for r in results}
    ranked = sorted(results, key=lambda r: -mean[r["variant"]])
    best = ranked[0]
    others = ranked[1:]
    versus = next((r for r in others if r["variant"] == baseline), others[0] if others else None)
    seeds = len(best.get("runs", [best]))
    rare_ranked = sorted(
        (r for r in results if r.get("rare_iou") is not None), key=lambda r: -r["rare_iou"]
    )
    rare = rare_classes(best["train_class_pixels"]) if "train_class_pixels" in best else None
    advice = {
        "code": _code(best, config),
        "best": best["variant"],
        "versus": None if versus is None else versus["variant"],
        "margin": None,
        "spread": None,
        "seeds": seeds,
        "established": False,
        "best_rare": rare_ranked[0]["variant"] if rare_ranked else None,
        "rare_classes": rare,
    }
    if versus is None:
        advice["text"] = f"Only {best['variant']} was run: there is nothing to compare it with."
        return advice
    margin = mean[best["variant"]] - mean[versus["variant"]]
    advice["margin"] = float(margin)
    lead = (
        f"Best by mean mIoU over {seeds} seed(s): {best['variant']} "
        f"({mean[best['variant']]:.3f}), {margin:+.3f} over {versus['variant']} "
        f"({mean[versus['variant']]:.3f})."
    )
    if seeds < 2:
        verdict = (
            "One seed gives no spread to compare that margin with, so the difference is not "
            "established: rerun with --seeds 3 or more."
        )
    else:
        spread = max(_range(_seed_mious(r)) for r in (best, versus))
        advice["spread"] = float(spread)
        advice["established"] = bool(margin > spread)
        if advice["established"]:
            verdict = (
                f"The margin is larger than the spread across seeds ({spread:.3f}, the larger "
                f"max - min of the two): use {best['variant']}."
            )
        else:
            verdict = (
                f"The margin is within the spread across seeds ({spread:.3f}, the larger max - "
                "min of the two), so the difference is not established: try more seeds "
                "(--seeds 5) or more epochs before choosing."
            )
    lines = [lead, verdict]
    if rare_ranked and rare is not None:
        names = [class_names[c] if class_names else str(c) for c in rare]
        top = rare_ranked[0]
        lines.append(
            f"On the rare classes ({', '.join(names)}: the third with the fewest training "
            f"pixels) the best is {top['variant']} with IoU {top['rare_iou']:.3f}"
            + (
                f" ({versus['variant']}: {versus['rare_iou']:.3f})."
                if versus.get("rare_iou") is not None and versus is not top
                else "."
            )
        )
    advice["text"] = " ".join(lines)
    return advice


def _advice_lines(advice):
    """The recommendation in Markdown: its sentences, then its code block."""
    if not advice["code"]:
        return [advice["text"]]
    return [
        advice["text"],
        "",
        f"To train with {advice['best']}:",
        "",
        "```python",
        *advice["code"],
        "```",
    ]


def _code(result, config):
    """The lines that train with ``result``'s set-up (after the imports of
    :data:`~sm_pixel_ce.compare.recipe.IMPORTS`), or None for an older run or the reshape recipe."""
    if config is None or not result.get("compile") or result.get("activation") == "linear":
        return None
    model = MODEL_LINE.format(
        arch=config["arch"],
        backbone=config["backbone"],
        classes=config["classes"],
        activation=result["activation"],
        encoder_weights=config.get("encoder_weights"),
    )
    return [*IMPORTS, model, result["compile"]]


def _seed_mious(result):
    return [run["miou"] for run in result.get("runs", [result])]


def _range(values):
    return float(max(values) - min(values))


def _cell(result, key, fmt):
    value = result.get(key)
    if value is None:
        return "-"
    text = fmt.format(value)
    std = result.get("std", {}).get(key)
    return text if std is None else f"{text} ± {fmt.format(std)}"


def _render(header, rows, markdown, rule):
    """Rows as a Markdown table, or as text with the first column left-aligned, the others
    right-aligned, and (``rule``) a dashed line under the header."""
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
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
    if rule:
        lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def table(results, markdown=False):
    """The results as an aligned text table, or a Markdown table."""
    header = ["variant"] + [title for _, title, _ in _COLUMNS]
    rows = [[r["variant"]] + [_cell(r, key, fmt) for key, _, fmt in _COLUMNS] for r in results]
    return _render(header, rows, markdown, rule=True)


def per_class_table(results, class_names, markdown=False):
    """Per-class IoU, one row per class and one column per variant."""
    header = ["class"] + [r["variant"] for r in results]
    rows = [
        [f"{c} {name}"] + [score_text(r["per_class_iou"][c]) for r in results]
        for c, name in enumerate(class_names)
    ]
    return _render(header, rows, markdown, rule=False)


def _setup(result):
    """The variant's one-line set-up (older runs did not store it: a built-in's)."""
    return result.get("setup") or VARIANTS.get(result["variant"], result["variant"])


def write_json(path, config, results):
    """Write ``{"config": ..., "results": [...], "recommendation": {...}}``."""
    advice = recommendation(results, config.get("class_names"), config=config)
    with open(path, "w") as f:
        json.dump({"config": config, "results": results, "recommendation": advice}, f, indent=2)
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
        "| variant | set-up | loss |",
        "|---|---|---|",
        *[
            f"| {r['variant']} | {_setup(r)} | `{r.get('loss_code', '-')}` |"
            for r in results
        ],
        "",
        table(results, markdown=True),
        "",
        "## Recommendation",
        "",
        *_advice_lines(recommendation(results, class_names, config=config)),
        "",
        "mIoU, pixel acc (argmax) and ECE (max probability, 15 bins) are computed in NumPy on the "
        "validation split. Keras 'accuracy' is what `metrics=[\"accuracy\"]` reported on the "
        "same split; binary_accuracy is the per-channel `p > 0.5` accuracy that Keras <= 2.2 "
        "reported as 'accuracy' with `loss=\"binary_crossentropy\"`. Losses differ per variant "
        "and are not comparable across rows. Epochs to 90%: first epoch reaching 90% of the "
        "variant's best val mIoU. Rare classes: mean IoU over the third of the classes with the "
        "fewest training pixels.",
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
