"""Aggregate runs over seeds and write the comparison as a table, ``report.json`` and
``report.md``."""

import json
import math
import os

import numpy as np

from .evaluation import score_text
from .recipe import IMPORTS, MODEL_LINE, optimizer_code
from .statistics import MOST_SEEDS, POWER, paired_difference
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


#: The variant the recommendation measures margins against.
BASELINE = "cce"
#: Bootstrap resamples and coverage of the recommendation's intervals.
RESAMPLES = 1000
LEVEL = 0.95
#: The power figures of the margin's row that the advice repeats beside ``margin``.
_POWER_KEYS = ("detectable_difference", "seeds_needed", "seeds_needed_more_than")
#: What a pruned run carries over to its variant's row.
_STOPPED = ("stopped_at", "epochs_planned", "stopped_because")


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
    mean of the non-None ``per_class_iou`` in every case. A variant stopped by ``--prune`` keeps
    its first run's ``stopped_at``, ``epochs_planned`` and ``stopped_because``; its per-epoch
    curve is averaged over the epochs every run has.

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
        common = min(len(r["val_miou_per_epoch"]) for r in items)
        curves = np.array([r["val_miou_per_epoch"][:common] for r in items], np.float64)
        result["val_miou_per_epoch"] = [float(v) for v in curves.mean(0)]
        stopped = next((r for r in items if r.get("stopped_at") is not None), None)
        if stopped is not None:
            result.update({k: stopped[k] for k in _STOPPED if k in stopped})
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


def recommendation(
    results, class_names=None, baseline=BASELINE, config=None, resamples=RESAMPLES, level=LEVEL
):
    """The advisor's reading of the results: the best variant and whether its lead is real.

    The best variant has the highest mean mIoU over seeds among the variants not stopped by
    ``--prune`` (a stopped variant is behind beyond doubt, so never the best); its margin is
    taken over ``baseline`` (or, when the best is the baseline or the baseline was not run, over
    the runner-up). Whether a lead is real is judged by
    :func:`~sm_pixel_ce.compare.statistics.paired_difference` on the runs' per-image counts:
    runs paired by seed, the validation images resampled and, with several seeds, the spread of
    the paired differences across seeds added by Student's t; the lead is established when its
    ``level`` interval lies above 0. With one seed the interval
    covers the validation images only, and the text says so. The text and the table also say
    what gap the run could detect at :data:`~sm_pixel_ce.compare.statistics.POWER` and how many
    seeds the observed margin needs (:func:`~sm_pixel_ce.compare.statistics.detectable_difference`,
    :func:`~sm_pixel_ce.compare.statistics.seeds_needed`). Runs written before per-image
    counts existed (an older ``--resume`` folder) fall back to the older rule, with a sentence
    saying so: established with 2 seeds or more and a margin above the larger max - min of
    per-seed mIoU of the two.

    Args:
        results: What :func:`aggregate` returns.
        class_names: Names of the classes, for the rare-class line. Defaults to None.
        baseline: Variant the margin is measured over. Defaults to "cce".
        config: The report's configuration, for the lines that build and compile the best
            variant's model. Defaults to None (no such lines).
        resamples: Bootstrap resamples. Defaults to 1000.
        level: Coverage of the intervals. Defaults to 0.95.

    Returns:
        A dict: ``best``, ``versus``, ``margin`` (best - versus, mean mIoU over seeds),
        ``low``, ``high`` (its interval), ``win_share`` (share of resamples in which the best is
        ahead), ``established``, ``rule`` (``"paired bootstrap"``, or ``"seed spread"`` for old
        runs), ``images_only`` (one seed: the interval covers the images only), ``resamples``,
        ``level``, ``differences`` (``{other: {"difference", "low", "high", "win_share",
        "established", "detectable_difference", "seeds_needed", "seeds_needed_more_than",
        "noise"}}`` for every other variant, None under the old rule: see
        :func:`~sm_pixel_ce.compare.statistics.paired_difference`), ``spread`` (the old
        rule's, else None), ``seeds``, ``power`` and ``most_seeds`` (what the power figures
        are stated at), ``detectable_difference``, ``seeds_needed`` and
        ``seeds_needed_more_than`` (those of ``versus``; None under the old rule), ``stopped``
        (``[{"variant", "stopped_at", "epochs_planned"}]`` of the pruned variants),
        ``best_rare`` (variant with the best rare-class IoU, or None), ``rare_classes``,
        ``code`` (the lines that build and compile the best variant's model with its options,
        ``ignore_index`` and class weights filled in, or None) and ``text`` (the sentences of
        the report).

    Example:
        >>> advice = recommendation(aggregate(runs))  # runs: {variant: [result per seed]}
        >>> advice["best"], advice["low"] > 0, advice["established"]
        ('cce-dice', True, True)
    """
    if not results:
        raise ValueError("recommendation: no results. Received: results=[]")
    mean = {r["variant"]: float(np.mean(_seed_mious(r))) for r in results}
    stopped = [r for r in results if r.get("stopped_at") is not None]
    running = [r for r in results if r.get("stopped_at") is None] or results
    ranked = sorted(running, key=lambda r: -mean[r["variant"]])
    kept = {r["variant"] for r in running}
    ranked += sorted(
        (r for r in results if r["variant"] not in kept), key=lambda r: -mean[r["variant"]]
    )
    best = ranked[0]
    others = ranked[1:]
    versus = next((r for r in others if r["variant"] == baseline), others[0] if others else None)
    seeds = len(best.get("runs", [best]))
    rare_ranked = sorted(  # a stopped variant's rare-class IoU is of an earlier epoch
        (r for r in running if r.get("rare_iou") is not None), key=lambda r: -r["rare_iou"]
    )
    rare = rare_classes(best["train_class_pixels"]) if "train_class_pixels" in best else None
    advice = _blank_advice(best, versus, config, seeds, level, stopped, rare_ranked, rare)
    if versus is None:
        advice["text"] = f"Only {best['variant']} was run: there is nothing to compare it with."
        return advice
    counts = _image_counts(results)
    if counts is None:
        lines = _spread_rule(advice, best, versus, mean, seeds)
    else:
        stopped_names = {r["variant"] for r in stopped}
        lines = _paired_rule(advice, best, versus, counts, seeds, resamples, level, stopped_names)
    lines += _stopped_lines(stopped)
    if rare_ranked and rare is not None:
        lines.append(_rare_line(rare, class_names, rare_ranked[0], versus))
    advice["text"] = " ".join(lines)
    return advice


def _rare_line(rare, class_names, top, versus):
    """The sentence naming the best variant on the rare classes (``top``)."""
    names = [class_names[c] if class_names else str(c) for c in rare]
    return (
        f"On the rare classes ({', '.join(names)}: the third with the fewest training "
        f"pixels) the best is {top['variant']} with IoU {top['rare_iou']:.3f}"
        + (
            f" ({versus['variant']}: {versus['rare_iou']:.3f})."
            if versus.get("rare_iou") is not None and versus is not top
            else "."
        )
    )


def _blank_advice(best, versus, config, seeds, level, stopped, rare_ranked, rare):
    """The recommendation's dict before a rule has judged the lead (see :func:`recommendation`)."""
    return {
        "code": _code(best, config),
        "best": best["variant"],
        "versus": None if versus is None else versus["variant"],
        "margin": None,
        "low": None,
        "high": None,
        "win_share": None,
        "established": False,
        "rule": None,
        "images_only": seeds < 2,
        "resamples": None,
        "level": level,
        "differences": None,
        "spread": None,
        "seeds": seeds,
        "power": POWER,
        "most_seeds": MOST_SEEDS,
        "detectable_difference": None,
        "seeds_needed": None,
        "seeds_needed_more_than": None,
        "stopped": [
            {"variant": r["variant"], **{k: r.get(k) for k in ("stopped_at", "epochs_planned")}}
            for r in stopped
        ],
        "best_rare": rare_ranked[0]["variant"] if rare_ranked else None,
        "rare_classes": rare,
    }


def _paired_rule(advice, best, versus, counts, seeds, resamples, level, stopped):
    """The paired bootstrap's sentences (``stopped``: names of the pruned variants); fills
    ``advice`` in."""
    stats = paired_difference(counts, resamples=resamples, level=level, best=best["variant"])
    row = stats["versus"][versus["variant"]]
    advice.update(
        margin=row["difference"],
        low=row["low"],
        high=row["high"],
        win_share=row["win_share"],
        established=row["established"],
        rule="paired bootstrap",
        images_only=stats["images_only"],
        resamples=stats["resamples"],
        differences=stats["versus"],
        power=stats["power"],
        most_seeds=stats["most_seeds"],
        **{key: row[key] for key in _POWER_KEYS},
    )
    name, other = best["variant"], versus["variant"]
    resampled = (
        "the validation images resampled"
        if stats["images_only"]
        else "the validation images resampled and the spread across seeds added by Student's t"
    )
    lines = [
        f"Best by mean mIoU over {seeds} seed(s): {name} ({stats['miou'][name]:.3f}), "
        f"{row['difference']:+.3f} over {other} ({stats['miou'][other]:.3f}); "
        f"{level:.0%} interval [{row['low']:+.3f}, {row['high']:+.3f}], {name} ahead in "
        f"{row['win_share']:.1%} of {stats['resamples']} resamples (paired by seed, "
        f"{resampled}).",
        f"The interval excludes 0: use {name}."
        if row["established"]
        else "The interval includes 0, so the difference is not established: try more seeds "
        "(--seeds 5), more validation images or more epochs before choosing.",
        _power_line(row, other, seeds, stats["power"]),
    ]
    if stats["images_only"]:
        lines.append(
            "With one seed the interval covers the validation images only, not the variation "
            "of training from seed to seed: rerun with --seeds 3 or more to cover it too."
        )
    # Stopped variants were behind beyond doubt when --prune stopped them: not "tied".
    tied = [
        v
        for v, d in stats["versus"].items()
        if v != other and not d["established"] and v not in stopped
    ]
    if tied:
        lines.append(
            f"Not behind {name} beyond doubt either: "
            + ", ".join(
                f"{v} ({stats['versus'][v]['difference']:+.3f}, "
                f"[{stats['versus'][v]['low']:+.3f}, {stats['versus'][v]['high']:+.3f}])"
                for v in tied
            )
            + "."
        )
    return lines


def _power_line(row, other, seeds, power):
    """The sentence saying what gap this run could detect and how many seeds the observed one
    needs (:func:`~sm_pixel_ce.compare.statistics.detectable_difference`, ``seeds_needed``)."""
    detectable = row["detectable_difference"]
    if seeds < 2:
        return (
            f"At {power:.0%} power this run would detect a true gap of {detectable:.3f} or more, "
            "counting the validation images only (one seed measures no variation from seed to "
            "seed, so how many seeds a gap needs is unknown)."
        )
    source = "from the spread across seeds and the validation images"
    if seeds == 2:
        source += "; with 2 seeds the rule reaches that power less often, about 60%"
    line = (
        f"At {power:.0%} power this run would detect a true gap of {detectable:.3f} or more "
        f"(the minimum detectable difference, {source})"
    )
    if row["seeds_needed"] is not None:
        needs = f"{row['seeds_needed']} seeds"
    elif row["seeds_needed_more_than"] is not None:
        needs = f"more than {row['seeds_needed_more_than']} seeds"
    else:
        return line + "."
    return line + f"; the {row['difference']:+.3f} over {other} needs {needs} at that power."


def _seeds_cell(row):
    """The table's seeds-needed cell: a number, "> 50", or "-" when nothing can be said."""
    if row["seeds_needed"] is not None:
        return str(row["seeds_needed"])
    if row["seeds_needed_more_than"] is not None:
        return f"> {row['seeds_needed_more_than']}"
    return "-"


def _spread_rule(advice, best, versus, mean, seeds):
    """The older rule's sentences (runs without per-image counts); fills ``advice`` in."""
    margin = mean[best["variant"]] - mean[versus["variant"]]
    advice.update(margin=float(margin), rule="seed spread")
    lines = [
        "These runs carry no per-image counts (they were written by an older version, e.g. "
        "an older --resume folder), so the lead is judged by the older rule, the spread "
        "across seeds, which ignores the pairing by seed and the finite validation set.",
        f"Best by mean mIoU over {seeds} seed(s): {best['variant']} "
        f"({mean[best['variant']]:.3f}), {margin:+.3f} over {versus['variant']} "
        f"({mean[versus['variant']]:.3f}).",
    ]
    if seeds < 2:
        lines.append(
            "One seed gives no spread to compare that margin with, so the difference is not "
            "established: rerun with --seeds 3 or more."
        )
        return lines
    spread = max(_range(_seed_mious(r)) for r in (best, versus))
    advice["spread"] = float(spread)
    advice["established"] = bool(margin > spread)
    if advice["established"]:
        lines.append(
            f"The margin is larger than the spread across seeds ({spread:.3f}, the larger "
            f"max - min of the two): use {best['variant']}."
        )
    else:
        lines.append(
            f"The margin is within the spread across seeds ({spread:.3f}, the larger max - "
            "min of the two), so the difference is not established: try more seeds "
            "(--seeds 5) or more epochs before choosing."
        )
    return lines


def _stopped_lines(stopped):
    """One sentence naming the variants ``--prune`` stopped, and when."""
    if not stopped:
        return []
    parts = []
    for r in stopped:
        why = r.get("stopped_because") or {}
        part = f"{r['variant']} after epoch {r['stopped_at']}"
        if r.get("epochs_planned") is not None:
            part += f" of {r['epochs_planned']}"
        if why.get("difference") is not None:
            part += (
                f" ({why.get('best')} ahead by {why['difference']:+.3f}, "
                f"[{why['low']:+.3f}, {why['high']:+.3f}])"
            )
        parts.append(part)
    return ["Stopped by --prune, behind the best beyond doubt: " + "; ".join(parts) + "."]


def _image_counts(results):
    """``{variant: {seed: image_counts}}`` of every run, or None if a run has none (an older
    run)."""
    counts = {}
    for result in results:
        runs = result.get("runs", [result])
        if any(run.get("image_counts") is None for run in runs):
            return None
        counts[result["variant"]] = {run["seed"]: run["image_counts"] for run in runs}
    return counts


def difference_table(advice, results, markdown=False):
    """The best variant against each other one: mean mIoU, the difference with its interval,
    the share of resamples the best wins, whether that is established, the smallest difference
    the run detects at ``advice["power"]`` (the images only with one seed), the seeds that
    would establish the difference at that power ("> 50" beyond the cap, "-" when nothing can
    be said), and when ``--prune`` stopped the variant. None under the older rule (no per-image
    counts)."""
    if not advice.get("differences"):
        return None
    mean = {r["variant"]: float(np.mean(_seed_mious(r))) for r in results}
    rows = {r["variant"]: r for r in results}
    only = " (images only)" if advice["images_only"] else ""
    header = [
        "variant",
        "mIoU",
        f"{advice['best']} - variant",
        f"{advice['level']:.0%} interval",
        f"{advice['best']} ahead in",
        "established",
        f"detectable at {advice['power']:.0%}{only}",
        f"seeds for {advice['power']:.0%}",
        "stopped",
    ]
    body = []
    for name, d in advice["differences"].items():
        row = rows[name]
        stop = row.get("stopped_at")
        body.append(
            [
                name,
                f"{mean[name]:.3f}",
                f"{d['difference']:+.3f}",
                f"[{d['low']:+.3f}, {d['high']:+.3f}]",
                f"{d['win_share']:.1%}",
                "yes" if d["established"] else "no",
                f"{d['detectable_difference']:.3f}",
                _seeds_cell(d),
                "-"
                if stop is None
                else f"epoch {stop}"
                + (f" of {row['epochs_planned']}" if row.get("epochs_planned") else ""),
            ]
        )
    return _render(header, body, markdown, rule=True)


def _advice_lines(advice, results):
    """The recommendation in Markdown: its sentences, the differences' table, then its code
    block."""
    lines = [advice["text"]]
    differences = difference_table(advice, results, markdown=True)
    if differences:
        lines += ["", differences]
    if not advice["code"]:
        return lines
    return [
        *lines,
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


def write_json(path, config, results, budget=None):
    """Write ``{"config": ..., "results": [...], "recommendation": {...}}``, and ``"budget"``
    (what ``--budget`` planned: :meth:`~sm_pixel_ce.compare.budget.Plan.as_dict`) when given.

    The runs' per-image counts (and ``--prune``'s per-epoch ones) stay in their own
    ``result.json`` (they are many numbers); the recommendation's differences and intervals
    computed from them are in ``recommendation``.
    """
    advice = recommendation(results, config.get("class_names"), config=config)
    results = [_without_image_counts(r) for r in results]
    content = {"config": config, "results": results, "recommendation": advice}
    if budget is not None:
        content["budget"] = budget
    with open(path, "w") as f:
        json.dump(content, f, indent=2)
        f.write("\n")


def budget_lines(budget, wall_seconds):
    """The report's ``## Budget`` section (Markdown lines, a blank one last), or none."""
    if budget is None:
        return []
    asked, planned = budget["asked"], budget["planned"]
    points = planned["prune_epochs"]
    worst = budget["worst_seconds"]
    return [
        "## Budget",
        "",
        f"`--budget {budget['minutes']:g}` (minutes): planned {planned['seeds']} seed(s) x "
        f"{planned['epochs']} epoch(s)"
        + (f", `--prune` scoring at epoch(s) {', '.join(map(str, points))}" if points else "")
        + f"; asked {asked['seeds']} x {asked['epochs']}"
        + (", `--prune`" if asked["prune"] else "")
        + f". Dropped: {budget['dropped']}"
        + ("; `--prune` switched on." if budget["prune_switched_on"] else "."),
        "",
        f"Measured before the runs: {budget['seconds_per_epoch']:.1f} s per epoch, "
        f"{budget['seconds_per_run']:.0f} s per run besides its epochs"
        + (f" ({budget['jobs']} runs at once)" if budget["jobs"] > 1 else "")
        + f"; {budget['spent_seconds']:.0f} s spent before the runs"
        + (
            f", {budget['finished_before']} run(s) finished before (--resume)"
            if budget["finished_before"]
            else ""
        )
        + f". Predicted {budget['predicted_seconds'] / 60:.1f} min"
        + (
            f" if `--prune` stops every variant but the best at its first scoring epoch, up to "
            f"{worst / 60:.1f} min if it stops none"
            if worst > budget["predicted_seconds"]
            else ""
        )
        + f"; took {wall_seconds / 60:.1f} min.",
        "",
    ]


def _without_image_counts(result):
    """``result`` without its per-image counts (``image_counts``, ``--prune``'s
    ``image_counts_at``)."""
    result = {k: v for k, v in result.items() if not k.startswith("image_counts")}
    if "runs" in result:
        result["runs"] = [_without_image_counts(r) for r in result["runs"]]
    return result


def write_markdown(path, config, results, class_names, images, budget=None):
    """Write ``report.md``: configuration, what ``--budget`` planned (``budget``, see
    :func:`write_json`), the two tables, and the pictures (paths relative to it)."""
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
        + optimizer_code(config["optimizer"], config["lr"], config["momentum"])
        + ", "
        f"{config['epochs']} epochs, batch {config['batch_size']}, seeds {config['seed_list']}; "
        f"Keras flavour {config['keras']}; wall time {config['wall_seconds']:.0f} s.",
        "",
        *budget_lines(budget, config["wall_seconds"]),
        "| variant | set-up | loss |",
        "|---|---|---|",
        *[f"| {r['variant']} | {_setup(r)} | `{r.get('loss_code', '-')}` |" for r in results],
        "",
        table(results, markdown=True),
        "",
        "## Recommendation",
        "",
        *_advice_lines(recommendation(results, class_names, config=config), results),
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
