"""Pictures of the comparison (matplotlib, Agg backend): learning curves, per-class IoU,
predictions."""

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def class_colours(num_classes):
    """One RGB colour per class (background grey), plus white for ignored pixels at the end."""
    import matplotlib

    base = matplotlib.colormaps["tab10"](np.arange(10))[:, :3]
    colours = [np.array([0.2, 0.2, 0.2])] + [base[i % 10] for i in range(num_classes - 1)]
    return np.array(colours + [np.ones(3)])


def colourise(mask, num_classes, ignore_index=None):
    """Integer mask ``(H, W)`` -> RGB image; ignored pixels white."""
    mask = np.asarray(mask).astype(np.int64)
    index = np.where(mask < num_classes, mask, num_classes)
    if ignore_index is not None:
        index = np.where(mask == ignore_index, num_classes, index)
    return class_colours(num_classes)[index]


def learning_curves(path, results, dpi=80):
    """Validation mIoU per epoch of every variant on one figure."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for r in results:
        curve = r["val_miou_per_epoch"]
        ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=r["variant"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation mIoU")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def per_class_bars(path, results, class_names, dpi=80):
    """Per-class IoU of every variant, bars side by side (absent classes left empty)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    width = 0.8 / len(results)
    x = np.arange(len(class_names))
    for i, r in enumerate(results):
        values = [np.nan if v is None else v for v in r["per_class_iou"]]
        ax.bar(x + (i - (len(results) - 1) / 2) * width, values, width, label=r["variant"])
    ax.set_xticks(x)
    ax.set_xticklabels(class_names, rotation=30, ha="right")
    ax.set_ylabel("IoU")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def prediction_grid(
    path,
    images,
    masks,
    predictions,
    num_classes,
    ignore_index=None,
    count=4,
    dpi=60,
    class_names=None,
):
    """Rows of input / ground truth / each variant's argmax prediction for ``count`` images.

    Args:
        path: PNG path.
        images: ``(N, S, S, 3)`` validation images in [0, 1].
        masks: ``(N, S, S)`` ground truth.
        predictions: ``{variant: (N, S, S) predicted classes}`` (the argmax).
        num_classes: C.
        ignore_index: Label value drawn white, or None. Defaults to None.
        count: Number of images. Defaults to 4.
        dpi: Resolution. Defaults to 60.
        class_names: Names for a colour legend, or None for none. Defaults to None.
    """
    plt = _pyplot()
    count = min(count, len(images))
    columns = ["input", "ground truth"] + list(predictions)
    fig, axes = plt.subplots(
        count, len(columns), figsize=(1.6 * len(columns), 1.6 * count), squeeze=False
    )
    for row in range(count):
        panels = [np.clip(images[row], 0, 1), colourise(masks[row], num_classes, ignore_index)]
        panels += [colourise(p[row], num_classes) for p in predictions.values()]
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
    if class_names is not None:
        from matplotlib.patches import Patch

        colours = class_colours(num_classes)
        handles = [Patch(color=colours[c], label=name) for c, name in enumerate(class_names)]
        if ignore_index is not None:
            handles.append(Patch(facecolor=colours[-1], edgecolor="black", label="ignored"))
        rows = -(-len(handles) // 4)
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8)
        fig.tight_layout(rect=(0, 0.045 * rows * 4 / count, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
