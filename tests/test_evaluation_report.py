"""The human-readable outputs of ``evaluate``: report.md and its pictures."""

import numpy as np
import pytest
from PIL import Image

from sm_pixel_ce.inference.evaluation_report import (
    excluding_table,
    imagewise_table,
    per_class_table,
    percent_text,
    plot_confusion,
    plot_reliability,
    plot_worst,
    report_markdown,
    row_shares,
    summary_table,
    worst_images,
    write_report,
)

# Report text from plain dicts: the same in both Keras flavours, so the Keras 3 process alone
# runs it.
pytestmark = pytest.mark.one_flavor

CLASSES = ["background", "road", "car"]


def _bins(count=15):
    """15 calibration bins, the first two empty."""
    edges = np.linspace(0, 1, count + 1)
    bins = []
    for i in range(count):
        empty = i < 2
        bins.append(
            {
                "lower": float(edges[i]),
                "upper": float(edges[i + 1]),
                "pixels": 0 if empty else 10 * i,
                "accuracy": None if empty else float(edges[i] * 0.9),
                "confidence": None if empty else float((edges[i] + edges[i + 1]) / 2),
            }
        )
    return bins


def _evaluation(**changes):
    evaluation = {
        "model": "runs/cce.keras",
        "data": "test_folder",
        "images_scored": 12,
        "resolution": "64x64 (--size)",
        "multilabel": False,
        "classes": CLASSES,
        "per_class": {
            "iou": [0.5, 0.123456, None],
            "dice": [0.6667, 0.25, None],
            "precision": [0.75, 1.0, None],
            "recall": [0.6, 0.125, None],
            "boundary_iou": [0.4, None, None],
            "pixels": [1200, 34, 0],
        },
        "miou": 0.61,
        "mdice": 0.45835,
        "aacc": 0.9,
        "macc": 0.3625,
        "fwiou": 0.49,
        "imagewise": {
            "iou_macro_imagewise": 0.7123,
            "iou_micro_imagewise": 0.8,
            "f1_macro_imagewise": 0.81,
            "f1_micro_imagewise": None,
            "images": 12,
            "zero_division": 1.0,
        },
        "ece": 0.04,
        "brier": 0.2,
        "excluding": {"classes": [0], "miou": 0.123456, "mdice": 0.25, "macc": 0.125, "fwiou": 0.1},
        "confusion": [[10, 2, 0], [1, 3, 0], [0, 0, 0]],
        "calibration_bins": _bins(),
        "images": [{"file": f"images/{i:02d}.png", "miou": (i * 7 % 12) / 12} for i in range(12)]
        + [{"file": "images/empty.png", "miou": None}],
        "skipped": [{"file": "images/bad.png", "reason": "cannot read images/bad.png"}],
    }
    evaluation.update(changes)
    return evaluation


def _multilabel():
    return {
        "model": "runs/bce.keras",
        "data": "test_folder",
        "images_scored": 2,
        "resolution": "original (tiles of 512, overlap 0.25)",
        "multilabel": True,
        "classes": ["building", "tree"],
        "per_class": {"iou": [0.25, None], "f1": [0.4, None], "pixels": [5000, 0]},
        "miou": 0.25,
        "mf1": 0.4,
        "threshold": 0.5,
        "excluding": None,
        "images": [{"file": "a.png", "miou": 0.25}, {"file": "b.png", "miou": None}],
        "skipped": [],
    }


def _row(table, first_cell):
    return next(line for line in table.splitlines() if line.startswith(f"| {first_cell} |"))


def _png(path, min_side=50):
    assert path.stat().st_size > 1000
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        picture.verify()
    with Image.open(path) as picture:
        assert min(picture.size) >= min_side
        return picture.size


@pytest.mark.parametrize(
    "value, expected",
    [(0.5, "50.00"), (None, "-"), (float("nan"), "-"), (0.123456, "12.35"), (1, "100.00")],
)
def test_percent_text(value, expected):
    assert percent_text(value) == expected


def test_per_class_table_is_mmsegmentation_layout_in_percent():
    table = per_class_table(_evaluation())
    lines = table.splitlines()
    assert lines[0] == "| Class | IoU | Acc | Dice | Precision | Boundary IoU | Pixels |"
    assert lines[1] == "|---|---:|---:|---:|---:|---:|---:|"
    assert (
        _row(table, "background")
        == "| background | 50.00 | 60.00 | 66.67 | 75.00 | 40.00 | 1,200 |"
    )
    assert _row(table, "road") == "| road | 12.35 | 12.50 | 25.00 | 100.00 | - | 34 |"
    assert _row(table, "car") == "| car | - | - | - | - | - | 0 |"


def test_per_class_table_rejects_a_list_of_the_wrong_length():
    evaluation = _evaluation()
    evaluation["per_class"] = dict(evaluation["per_class"], iou=[0.5])
    with pytest.raises(ValueError, match="Received: len"):
        per_class_table(evaluation)


def test_summary_and_excluding_tables():
    summary = summary_table(_evaluation()).splitlines()
    assert summary[0] == "| aAcc | mIoU | mAcc | mDice | fwIoU | ECE | Brier |"
    assert summary[2] == "| 90.00 | 61.00 | 36.25 | 45.84 | 49.00 | 0.0400 | 0.2000 |"
    undefined = summary_table(_evaluation(ece=None, brier=None, fwiou=None)).splitlines()[2]
    assert undefined.endswith("| - | - | - |")
    excluding = excluding_table(_evaluation()).splitlines()
    assert excluding[0] == "| Excluding | mIoU | mAcc | mDice | fwIoU |"
    assert excluding[2] == "| background | 12.35 | 12.50 | 25.00 | 10.00 |"
    assert excluding_table(_evaluation(excluding=None)) is None


def test_worst_images_lowest_first_without_unscored():
    images = _evaluation()["images"]
    worst = worst_images(images)
    assert len(worst) == 10
    assert [w["miou"] for w in worst] == sorted(w["miou"] for w in worst)
    assert worst[0]["file"] == "images/00.png"
    assert all(w["miou"] is not None for w in worst)
    assert worst_images([{"file": "a", "miou": None}]) == []


def test_report_markdown_sections(tmp_path):
    text = report_markdown(_evaluation())
    assert "- Model: `runs/cce.keras`" in text
    assert "- Data: `test_folder`" in text
    assert "- Resolution: 64x64 (--size)" in text
    assert "- Images scored: 12 (1 skipped)" in text
    assert "| background | 50.00 | 60.00 | 66.67 | 75.00 | 40.00 | 1,200 |" in text
    assert "| 90.00 | 61.00 | 36.25 | 45.84 | 49.00 | 0.0400 | 0.2000 |" in text
    assert "## Means without the excluded classes" in text
    assert "| `images/00.png` | 0.00 |\n| `images/07.png` | 8.33 |" in text
    assert "empty.png" not in text
    assert "- `images/bad.png`: cannot read images/bad.png" in text
    assert text.index("## Per class results") < text.index("## Summary")
    assert text.index("## Summary") < text.index("## Per-image means")
    assert text.index("## Per-image means") < text.index("## Worst images")

    (tmp_path / "eval").mkdir()
    report = tmp_path / "eval" / "report.md"
    write_report(report, _evaluation(), [("Confusion matrix", tmp_path / "eval" / "confusion.png")])
    written = report.read_text()
    assert written.startswith("# sm-pixel-ce evaluate")
    assert "![Confusion matrix](confusion.png)" in written


def test_imagewise_table_is_smp_reductions_in_percent():
    lines = imagewise_table(_evaluation()).splitlines()
    assert lines[0] == "| Score | macro-imagewise | micro-imagewise |"
    assert lines[2:] == ["| IoU | 71.23 | 80.00 |", "| F1 | 81.00 | - |"]
    assert imagewise_table(_evaluation(imagewise=None)) is None
    text = report_markdown(_evaluation(imagewise=dict(_evaluation()["imagewise"], zero_division=0)))
    assert "scores 0 there (SMP's zero_division)" in text
    assert 'reduction="macro-imagewise"' in text


def test_report_escapes_pipes_in_names():
    evaluation = _evaluation(classes=["a|b", "road", "car"])
    assert "| a\\|b | 50.00 |" in report_markdown(evaluation)


def test_multilabel_report():
    text = report_markdown(_multilabel())
    assert "| Class | IoU | F1 | Pixels |" in text
    assert "| building | 25.00 | 40.00 | 5,000 |" in text
    assert "| tree | - | - | 0 |" in text
    assert "| mIoU | mF1 | threshold |" in text
    assert "| 25.00 | 40.00 | 0.5 |" in text
    assert "aAcc" not in text and "ECE" not in text and "Dice" not in text
    assert "Means without the excluded classes" not in text
    assert "Per-image means" not in text  # an evaluation.json written before they were kept
    assert "Skipped" not in text
    assert "| `a.png` | 25.00 |" in text


def test_row_shares_normalises_rows_and_masks_empty_ones():
    shares = row_shares([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    assert not np.isnan(shares.data).any()
    np.testing.assert_allclose(shares.data[0], [0.75, 0.25, 0.0])
    np.testing.assert_allclose(shares.data[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(shares.data[2], [0.25, 0.25, 0.5])
    assert shares.mask.tolist() == [[False] * 3, [True] * 3, [False] * 3]
    np.testing.assert_allclose(shares.sum(axis=1).filled(0), [1.0, 0.0, 1.0])


@pytest.mark.parametrize("confusion", [[[1, 2]], [[1, -1], [0, 1]], [1, 2, 3]])
def test_row_shares_rejects_bad_matrices(confusion):
    with pytest.raises(ValueError, match="Received"):
        row_shares(confusion)


@pytest.mark.filterwarnings("error")
def test_plot_confusion_small(tmp_path):
    path = tmp_path / "confusion.png"
    plot_confusion(path, _evaluation()["confusion"], CLASSES)
    _png(path, min_side=300)


@pytest.mark.filterwarnings("error")
def test_plot_confusion_150_classes(tmp_path):
    rng = np.random.default_rng(0)
    count = 150
    confusion = rng.integers(0, 50, (count, count)) + np.eye(count, dtype=np.int64) * 2000
    confusion[7] = 0
    path = tmp_path / "confusion.png"
    plot_confusion(path, confusion, [f"class {c}" for c in range(count)])
    _png(path, min_side=1000)


def test_plot_confusion_rejects_wrong_names(tmp_path):
    with pytest.raises(ValueError, match="class_names"):
        plot_confusion(tmp_path / "c.png", [[1, 0], [0, 1]], ["one"])


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("ece", [0.0421, None])
def test_plot_reliability(tmp_path, ece):
    path = tmp_path / "reliability.png"
    plot_reliability(path, _bins(), ece=ece)
    _png(path, min_side=300)


@pytest.mark.filterwarnings("error")
def test_plot_reliability_all_bins_empty(tmp_path):
    bins = [dict(b, pixels=0, accuracy=None, confidence=None) for b in _bins()]
    path = tmp_path / "reliability.png"
    plot_reliability(path, bins)
    _png(path, min_side=300)


def _worst(count, rng, side=24):
    items = []
    for i in range(count):
        truth = rng.integers(0, 3, (side, side))
        truth[:, :2] = 255
        items.append(
            {
                "file": f"images/{i:03d}.png",
                "miou": None if i == 2 else 0.1 * i,
                "image": rng.random((side, side, 3)).astype(np.float32),
                "truth": truth,
                "prediction": rng.integers(0, 3, (side, side)),
            }
        )
    return items


@pytest.mark.filterwarnings("error")
def test_plot_worst_three_images(tmp_path, rng):
    path = tmp_path / "worst.png"
    plot_worst(path, _worst(3, rng), num_classes=3, ignore_index=255)
    width, height = _png(path, min_side=200)
    assert height > width  # one row per image


@pytest.mark.filterwarnings("error")
def test_plot_worst_no_image(tmp_path):
    path = tmp_path / "worst.png"
    plot_worst(path, [], num_classes=3)
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        assert picture.size[0] > 50


def test_plot_worst_rejects_too_many(tmp_path, rng):
    with pytest.raises(ValueError, match="at most 8"):
        plot_worst(tmp_path / "w.png", _worst(9, rng, side=4), num_classes=3)


def test_truth_ignored_pixels_are_white():
    from sm_pixel_ce.inference.evaluation_report import _truth_picture

    truth = np.array([[0, 1], [255, 2]])
    picture = _truth_picture(truth, 3, 255)
    assert picture[1, 0].tolist() == [255, 255, 255]
    assert picture[0, 0].tolist() == [0, 0, 0]
    assert picture[0, 1].tolist() == [128, 0, 0]
