"""What ``sm-pixel-ce evaluate`` writes for people: ``report.md`` (the per-class table as
MMSegmentation's ``IoUMetric`` prints it, the means, the worst images) and its pictures (the
row-normalised confusion matrix, the reliability diagram, the worst images beside their truth and
prediction), all drawn with matplotlib's Agg backend.

Every function reads the ``evaluation`` dict that ``evaluate`` writes to ``evaluation.json``, or a
part of it, and none of them computes a score: they only format what is there.
"""

import math
import os

import numpy as np

from .palette import colorize

#: How many images the report lists in its worst-images table.
WORST_LISTED = 10
#: How many images :func:`plot_worst` draws at most.
WORST_DRAWN = 8
#: Above this many classes the confusion matrix carries no cell text.
CELL_TEXT_MAX_CLASSES = 20
#: At most this many class names on each axis of the confusion matrix (the others are thinned).
TICK_LABELS_MAX = 40

# Per-class columns: (key in ``per_class``, column title, percent?).
_CLASS_COLUMNS = (
    ("iou", "IoU", True),
    ("recall", "Acc", True),
    ("dice", "Dice", True),
    ("precision", "Precision", True),
    ("boundary_iou", "Boundary IoU", True),
    ("pixels", "Pixels", False),
)
_MULTILABEL_CLASS_COLUMNS = (
    ("iou", "IoU", True),
    ("f1", "F1", True),
    ("pixels", "Pixels", False),
)
# Summary columns: (top-level key, column title, format: "percent" or a format string).
_SUMMARY_COLUMNS = (
    ("aacc", "aAcc", "percent"),
    ("miou", "mIoU", "percent"),
    ("macc", "mAcc", "percent"),
    ("mdice", "mDice", "percent"),
    ("fwiou", "fwIoU", "percent"),
    ("ece", "ECE", "{:.4f}"),
    ("brier", "Brier", "{:.4f}"),
)
_MULTILABEL_SUMMARY_COLUMNS = (
    ("miou", "mIoU", "percent"),
    ("mf1", "mF1", "percent"),
    ("threshold", "threshold", "{:g}"),
)
# The means of the "excluding" block, in the summary's order.
_EXCLUDING_COLUMNS = (
    ("miou", "mIoU"),
    ("macc", "mAcc"),
    ("mdice", "mDice"),
    ("fwiou", "fwIoU"),
    ("mf1", "mF1"),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def percent_text(value):
    """A fraction as a percentage with 2 decimals (as MMSegmentation prints its tables), or ``-``
    when it is undefined.

    Args:
        value: A float in [0, 1], or None (or NaN) for undefined.

    Returns:
        A string.

    Example:
        >>> percent_text(0.5), percent_text(None)
        ('50.00', '-')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f}"


def _number_text(value, fmt):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return percent_text(value) if fmt == "percent" else fmt.format(value)


def _pixels_text(value):
    return "-" if value is None else f"{int(value):,}"


def _escape(text):
    """Text for a Markdown table cell (a ``|`` would end the cell)."""
    return str(text).replace("|", "\\|")


def _markdown_table(header, rows):
    """A Markdown table, its first column left-aligned and the others right-aligned."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def per_class_table(evaluation):
    """The per-class results as a Markdown table, one row per class, scores in percent.

    Single-label: Class | IoU | Acc | Dice | Precision | Boundary IoU | Pixels, where Acc is the
    class's recall (MMSegmentation's per-class "Acc"); multi-label: Class | IoU | F1 | Pixels.
    Pixels is the class's count of truth pixels.

    Args:
        evaluation: The ``evaluation`` dict (``classes``, ``per_class``, ``multilabel``).

    Returns:
        A string.

    Raises:
        ValueError: A ``per_class`` list whose length is not the number of classes.

    Example:
        >>> evaluation = {"classes": ["sky"], "multilabel": True,
        ...               "per_class": {"iou": [0.5], "f1": [None], "pixels": [12]}}
        >>> print(per_class_table(evaluation).splitlines()[-1])
        | sky | 50.00 | - | 12 |
    """
    classes = evaluation["classes"]
    per_class = evaluation["per_class"]
    columns = _MULTILABEL_CLASS_COLUMNS if evaluation.get("multilabel") else _CLASS_COLUMNS
    for key, _, _ in columns:
        if key in per_class and len(per_class[key]) != len(classes):
            raise ValueError(
                f"per_class[{key!r}] needs one value per class ({len(classes)}). "
                f"Received: len(per_class[{key!r}])={len(per_class[key])}"
            )
    rows = []
    for c, name in enumerate(classes):
        row = [_escape(name)]
        for key, _, percent in columns:
            value = per_class[key][c] if key in per_class else None
            row.append(percent_text(value) if percent else _pixels_text(value))
        rows.append(row)
    return _markdown_table(["Class"] + [title for _, title, _ in columns], rows)


def summary_table(evaluation):
    """The means as a one-row Markdown table.

    Single-label: aAcc | mIoU | mAcc | mDice | fwIoU in percent, ECE | Brier as fractions (4
    decimals); multi-label: mIoU | mF1 in percent and the threshold.

    Args:
        evaluation: The ``evaluation`` dict.

    Returns:
        A string.

    Example:
        >>> print(summary_table({"multilabel": True, "miou": 0.25, "mf1": None,
        ...                      "threshold": 0.5}).splitlines()[-1])
        | 25.00 | - | 0.5 |
    """
    columns = _MULTILABEL_SUMMARY_COLUMNS if evaluation.get("multilabel") else _SUMMARY_COLUMNS
    header = [title for _, title, _ in columns]
    row = [_number_text(evaluation.get(key), fmt) for key, _, fmt in columns]
    # Every column holds a number: right-align all of them.
    return "\n".join(
        [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---:"] * len(header)) + "|",
            "| " + " | ".join(row) + " |",
        ]
    )


def excluding_table(evaluation):
    """The means without the excluded classes (``evaluation["excluding"]``) as a Markdown table,
    or None when nothing was excluded.

    Args:
        evaluation: The ``evaluation`` dict.

    Returns:
        A string, or None.

    Example:
        >>> evaluation = {"classes": ["background", "road"],
        ...               "excluding": {"classes": [0], "miou": 0.5}}
        >>> print(excluding_table(evaluation).splitlines()[-1])
        | background | 50.00 |
    """
    excluding = evaluation.get("excluding")
    if not excluding:
        return None
    classes = evaluation.get("classes", [])
    names = [
        classes[c] if isinstance(c, int) and 0 <= c < len(classes) else str(c)
        for c in excluding.get("classes", [])
    ]
    columns = [(key, title) for key, title in _EXCLUDING_COLUMNS if key in excluding]
    row = [_escape(", ".join(names) or "-")] + [percent_text(excluding[k]) for k, _ in columns]
    return _markdown_table(["Excluding"] + [title for _, title in columns], [row])


def imagewise_table(evaluation):
    """SMP's per-image means (``evaluation["imagewise"]``) as a Markdown table, or None for an
    evaluation without them (written before they were kept).

    Rows IoU and F1; columns ``macro-imagewise`` (each image's per-class scores averaged over
    the classes, then over the images) and ``micro-imagewise`` (each image's pixels pooled over
    the classes, then averaged over the images), in percent.

    Args:
        evaluation: The ``evaluation`` dict.

    Returns:
        A string, or None.

    Example:
        >>> evaluation = {"imagewise": {"iou_macro_imagewise": 0.5, "iou_micro_imagewise": 0.75,
        ...               "f1_macro_imagewise": None, "f1_micro_imagewise": 0.8}}
        >>> print(imagewise_table(evaluation).splitlines()[-1])
        | F1 | - | 80.00 |
    """
    imagewise = evaluation.get("imagewise")
    if not imagewise:
        return None
    rows = [
        [title]
        + [percent_text(imagewise.get(f"{score}_{kind}_imagewise")) for kind in ("macro", "micro")]
        for score, title in (("iou", "IoU"), ("f1", "F1"))
    ]
    return _markdown_table(["Score", "macro-imagewise", "micro-imagewise"], rows)


def worst_images(images, count=WORST_LISTED):
    """The ``count`` images with the lowest mIoU, lowest first (images without an mIoU left out;
    ties keep the order of ``images``).

    Args:
        images: ``[{"file": str, "miou": float or None}, ...]``.
        count: How many. Defaults to ``WORST_LISTED`` (10).

    Returns:
        A list of the same dicts.

    Example:
        >>> worst_images([{"file": "a", "miou": 0.9}, {"file": "b", "miou": None},
        ...               {"file": "c", "miou": 0.1}], count=2)
        [{'file': 'c', 'miou': 0.1}, {'file': 'a', 'miou': 0.9}]
    """
    scored = [image for image in images if image.get("miou") is not None]
    return sorted(scored, key=lambda image: image["miou"])[:count]


def report_markdown(evaluation, pictures=()):
    """``report.md`` as a string: what was scored, the per-class table, the means, the means
    without the excluded classes, the worst images, the skipped files, and the pictures.

    Args:
        evaluation: The ``evaluation`` dict that ``evaluate`` writes to ``evaluation.json``.
        pictures: ``[(title, path), ...]`` to embed, ``path`` as the report should link it
            (relative to the report). Defaults to ``()``.

    Returns:
        A string (Markdown, ending with a newline).

    Example:
        >>> evaluation = {"model": "m.keras", "data": "test", "images_scored": 1,
        ...               "resolution": "original", "multilabel": True, "classes": ["sky"],
        ...               "per_class": {"iou": [0.5], "f1": [0.6], "pixels": [9]},
        ...               "miou": 0.5, "mf1": 0.6, "threshold": 0.5,
        ...               "images": [{"file": "a.png", "miou": 0.5}], "skipped": []}
        >>> "| sky | 50.00 | 60.00 | 9 |" in report_markdown(evaluation)
        True
    """
    images = evaluation.get("images") or []
    skipped = evaluation.get("skipped") or []
    scored = evaluation.get("images_scored", len(images))
    multilabel = bool(evaluation.get("multilabel"))
    lines = [
        "# sm-pixel-ce evaluate",
        "",
        f"- Model: `{evaluation.get('model', '-')}`",
        f"- Data: `{evaluation.get('data', '-')}`",
        f"- Resolution: {evaluation.get('resolution', '-')}",
        f"- Images scored: {scored}" + (f" ({len(skipped)} skipped)" if skipped else ""),
        f"- Classes: {len(evaluation['classes'])}" + (" (multi-label)" if multilabel else ""),
        "",
        "## Per class results",
        "",
        per_class_table(evaluation),
        "",
        "## Summary",
        "",
        summary_table(evaluation),
        "",
    ]
    if multilabel:
        lines += [
            "Scores in percent, from the pixel counts over the whole set; a pixel counts for "
            "a class where its probability passes the threshold. Pixels: the class's truth pixels. "
            '"-": undefined (as for a class in neither truth nor prediction).',
            "",
        ]
    else:
        lines += [
            "Scores in percent, from one confusion matrix over the whole set (as "
            "MMSegmentation's IoUMetric). Acc: the class's recall; aAcc: pixel accuracy; fwIoU: "
            "IoU weighted by truth pixels; Pixels: the class's truth pixels. ECE (15 bins of the "
            'top probability) and Brier as fractions. "-": undefined (as for a class in neither '
            "truth nor prediction).",
            "",
        ]
    imagewise = imagewise_table(evaluation)
    if imagewise is not None:
        zero_division = evaluation["imagewise"].get("zero_division", 1.0)
        lines += [
            "## Per-image means (segmentation_models_pytorch's imagewise reductions)",
            "",
            imagewise,
            "",
            "Each image scored on its own, then averaged over the images, as SMP's "
            '`iou_score` / `f1_score(*get_stats(...), reduction="macro-imagewise")` (the '
            "image's classes averaged) and `\"micro-imagewise\"` (the image's pixels of all "
            f"classes pooled); a class in neither an image's truth nor its prediction scores "
            f"{zero_division:g} there (SMP's zero_division). The tables above pool the pixels "
            "of the whole set instead.",
            "",
        ]
    excluding = excluding_table(evaluation)
    if excluding is not None:
        lines += ["## Means without the excluded classes", "", excluding, ""]
    worst = worst_images(images)
    lines += ["## Worst images (lowest mIoU)", ""]
    if worst:
        rows = [[f"`{_escape(image['file'])}`", percent_text(image["miou"])] for image in worst]
        lines += [_markdown_table(["File", "mIoU"], rows), ""]
    else:
        lines += ["No image has an mIoU.", ""]
    if skipped:
        lines += [f"## Skipped files ({len(skipped)})", ""]
        lines += [f"- `{bad.get('file', '-')}`: {bad.get('reason', '-')}" for bad in skipped]
        lines += [""]
    for title, path in pictures:
        lines += [f"## {title}", "", f"![{title}]({path})", ""]
    return "\n".join(lines)


def write_report(path, evaluation, pictures=()):
    """Write :func:`report_markdown` to ``path``, the pictures linked relative to it.

    Args:
        path: The ``report.md`` to write.
        evaluation: The ``evaluation`` dict.
        pictures: ``[(title, path), ...]``; each path absolute or relative to the current
            folder. Defaults to ``()``.

    Example:
        >>> write_report("runs/eval/report.md", evaluation,
        ...              [("Confusion matrix", "runs/eval/confusion.png")])  # doctest: +SKIP
    """
    folder = os.path.dirname(os.path.abspath(path))
    linked = [(title, os.path.relpath(os.path.abspath(p), folder)) for title, p in pictures]
    with open(path, "w") as f:
        f.write(report_markdown(evaluation, linked))


def row_shares(confusion):
    """Each row of a confusion matrix divided by its sum: the share of each truth class's pixels
    given to each predicted class. Rows without a truth pixel are masked (drawn empty), not NaN.

    Args:
        confusion: ``(C, C)`` pixel counts, rows truth, columns prediction.

    Returns:
        A float64 ``numpy.ma.MaskedArray`` ``(C, C)``: rows sum to 1, empty rows are all 0 and
        masked.

    Raises:
        ValueError: ``confusion`` is not square, or holds a negative count.

    Example:
        >>> shares = row_shares([[3, 1], [0, 0]])
        >>> shares.data.tolist(), shares.mask[:, 0].tolist()
        ([[0.75, 0.25], [0.0, 0.0]], [False, True])
    """
    counts = np.asarray(confusion, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(
            f"confusion must be a square (C, C) matrix. Received: shape={counts.shape}"
        )
    if (counts < 0).any():
        raise ValueError("confusion holds pixel counts, never negative. Received: a negative count")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    empty = np.broadcast_to(totals == 0, counts.shape)
    return np.ma.MaskedArray(shares, mask=empty.copy())


def _tick_positions(count, most=TICK_LABELS_MAX):
    """Every ``ceil(count / most)``-th index, so at most ``most`` labels."""
    return np.arange(0, count, max(1, math.ceil(count / most)))


def plot_confusion(path, confusion, class_names, dpi=100):
    """The row-normalised confusion matrix as a PNG: truth on rows, prediction on columns, each
    cell the share of the row's truth pixels (percent printed in the cells up to
    ``CELL_TEXT_MAX_CLASSES`` classes), rows without a truth pixel grey, and a colour bar.

    Past ``TICK_LABELS_MAX`` classes only every k-th class name is written, so that 150 classes
    stay readable.

    Args:
        path: The PNG to write.
        confusion: ``(C, C)`` pixel counts, rows truth (``evaluation["confusion"]``).
        class_names: C names.
        dpi: Resolution. Defaults to 100.

    Raises:
        ValueError: ``confusion`` is not square, or ``class_names`` is not C long.

    Example:
        >>> names = ["background", "road"]
        >>> plot_confusion("confusion.png", [[8, 2], [1, 9]], names)  # doctest: +SKIP
    """
    shares = row_shares(confusion)
    count = shares.shape[0]
    if len(class_names) != count:
        raise ValueError(
            f"class_names needs one name per row of the confusion matrix ({count}). "
            f"Received: len(class_names)={len(class_names)}"
        )
    plt = _pyplot()
    import matplotlib

    colour_map = matplotlib.colormaps["Blues"].with_extremes(bad="0.85")
    side = float(np.clip(2.5 + 0.35 * count, 4.5, 16.0))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    picture = ax.imshow(shares, cmap=colour_map, vmin=0.0, vmax=1.0, interpolation="nearest")
    bar = fig.colorbar(picture, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of the truth class's pixels")
    bar.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0))
    ticks = _tick_positions(count)
    font = 9 if count <= CELL_TEXT_MAX_CLASSES else 7
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels([class_names[i] for i in ticks], rotation=90, fontsize=font)
    ax.set_yticklabels([class_names[i] for i in ticks], fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    title = "Confusion matrix (rows: truth, normalised)"
    if len(ticks) < count:
        title += f", 1 class in {ticks[1] - ticks[0]} named"
    ax.set_title(title, fontsize=10)
    counts = np.asarray(confusion)
    if count <= CELL_TEXT_MAX_CLASSES:
        for (row, col), share in np.ndenumerate(shares.data):
            if shares.mask[row, col] or counts[row, col] == 0:
                continue
            text = f"{100 * share:.0f}" if share >= 0.01 else "<1"
            ax.text(
                col,
                row,
                text,
                ha="center",
                va="center",
                fontsize=8 if count <= 10 else 6,
                color="white" if share > 0.6 else "black",
            )
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def plot_reliability(path, bins, ece=None, dpi=100):
    """The reliability diagram as a PNG: above, each non-empty bin's accuracy (bar over the
    bin) and its mean confidence against its accuracy (points), with the diagonal of perfect
    calibration; below, the share of pixels in each bin.

    Args:
        path: The PNG to write.
        bins: ``[{"lower", "upper", "pixels", "accuracy", "confidence"}, ...]``
            (``evaluation["calibration_bins"]``; accuracy and confidence None in empty bins).
        ece: The expected calibration error for the title, or None for none. Defaults to None.
        dpi: Resolution. Defaults to 100.

    Example:
        >>> plot_reliability("reliability.png", evaluation["calibration_bins"],
        ...                  ece=evaluation["ece"])  # doctest: +SKIP
    """
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.0, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    filled = [b for b in bins if b.get("pixels") and b.get("accuracy") is not None]
    total = sum(int(b.get("pixels") or 0) for b in bins)
    top.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfect")
    if filled:
        lower = np.array([b["lower"] for b in filled], dtype=np.float64)
        width = np.array([b["upper"] - b["lower"] for b in filled], dtype=np.float64)
        accuracy = np.array([b["accuracy"] for b in filled], dtype=np.float64)
        top.bar(
            lower,
            accuracy,
            width,
            align="edge",
            color="tab:blue",
            alpha=0.6,
            edgecolor="tab:blue",
            label="accuracy of the bin",
        )
        confident = [b for b in filled if b.get("confidence") is not None]
        if confident:
            top.plot(
                [b["confidence"] for b in confident],
                [b["accuracy"] for b in confident],
                marker="o",
                markersize=4,
                color="tab:red",
                linewidth=1,
                label="mean confidence vs accuracy",
            )
    else:
        top.text(0.5, 0.5, "no pixel scored", ha="center", va="center", transform=top.transAxes)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="upper left")
    top.set_title("Reliability" + ("" if ece is None else f" (ECE {ece:.4f})"), fontsize=10)
    if total:
        lower = np.array([b["lower"] for b in bins], dtype=np.float64)
        width = np.array([b["upper"] - b["lower"] for b in bins], dtype=np.float64)
        share = np.array([int(b.get("pixels") or 0) for b in bins], dtype=np.float64) / total
        bottom.bar(lower, share, width, align="edge", color="0.4", edgecolor="white")
        bottom.set_ylim(0, max(float(share.max()) * 1.1, 0.01))
    bottom.set_xlabel("confidence (top probability)")
    bottom.set_ylabel("pixel share")
    bottom.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _percent_sign(value):
    text = percent_text(value)
    return text if text == "-" else f"{text}%"


def _shorten(text, most=48):
    text = str(text)
    return text if len(text) <= most else "…" + text[-(most - 1) :]


def _truth_picture(truth, num_classes, ignore_index):
    """The truth mask in VOC colours, ignored pixels white."""
    truth = np.asarray(truth)
    ignored = np.zeros(truth.shape, bool) if ignore_index is None else truth == ignore_index
    picture = colorize(np.where(ignored, 0, truth), num_classes)
    picture[ignored] = 255
    return picture


def plot_worst(path, worst, num_classes, ignore_index=None, dpi=80):
    """The worst images as a PNG, one row each: the image, its truth, the prediction (VOC
    colours, ignored truth pixels white), titled with the file name and the image's mIoU. With no
    image it still writes a small PNG that says so.

    Args:
        path: The PNG to write.
        worst: At most ``WORST_DRAWN`` (8) dicts ``{"file": str, "miou": float or None,
            "image": float (H, W, 3) in [0, 1], "truth": int (H, W), "prediction": int (H, W)}``.
        num_classes: C.
        ignore_index: The truth value drawn white, or None. Defaults to None.
        dpi: Resolution. Defaults to 80.

    Raises:
        ValueError: More than ``WORST_DRAWN`` images.

    Example:
        >>> plot_worst("worst.png", [], num_classes=3)  # doctest: +SKIP
    """
    if len(worst) > WORST_DRAWN:
        raise ValueError(
            f"plot_worst draws at most {WORST_DRAWN} images. Received: len(worst)={len(worst)}"
        )
    plt = _pyplot()
    if not worst:
        fig, ax = plt.subplots(figsize=(3.0, 1.0))
        ax.text(0.5, 0.5, "no image to show", ha="center", va="center")
        ax.axis("off")
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        return
    fig, axes = plt.subplots(len(worst), 3, figsize=(7.5, 2.6 * len(worst)), squeeze=False)
    for row, item in enumerate(worst):
        panels = (
            (np.clip(np.asarray(item["image"], np.float32), 0, 1), _shorten(item["file"])),
            (_truth_picture(item["truth"], num_classes, ignore_index), "truth"),
            (
                colorize(np.asarray(item["prediction"]), num_classes),
                f"prediction (mIoU {_percent_sign(item.get('miou'))})",
            ),
        )
        for col, (picture, title) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
