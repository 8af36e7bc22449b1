"""``compare`` as a loss advisor: the rare-class variants, the "rare classes" column and the
recommendation, against hand-computed cases and NumPy references."""

import json
import os

import numpy as np
import pytest
from reference import pixel_cce, softmax
from test_compare import _check_report

from sm_pixel_ce import PixelCategoricalCrossentropy
from sm_pixel_ce.class_weights import ClassPixels, weights_from_counts
from sm_pixel_ce.cli import main
from sm_pixel_ce.compare import report
from sm_pixel_ce.compare.layout import OutputFolder
from sm_pixel_ce.compare.statistics import set_miou
from sm_pixel_ce.compare.variants import (
    TOP_K,
    VARIANTS,
    expand_variants,
    loss_for,
)
from sm_pixel_ce.flavor import keras

COUNTS = np.array([5000, 300, 1200, 40, 800, 90, 2000])


def test_all_stands_for_every_variant():
    assert expand_variants(["all"]) == tuple(VARIANTS)
    new = {"cce-focal", "cce-topk", "cce-balanced", "cce-dice", "cce-lovasz", "cce-tversky"}
    assert new <= set(VARIANTS)
    assert expand_variants(("cce", "bce")) == ("cce", "bce")
    with pytest.raises(ValueError, match="takes no others"):
        expand_variants(["all", "cce"])


def test_all_with_others_is_a_one_line_argument_error(tmp_path, capsys):
    status = main(["compare", "--variants", "all,cce", "--out", str(tmp_path / "out")])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--variants all" in err[0]


def test_losses_of_the_new_variants(rng):
    counted = []
    losses = {
        v: loss_for(v, lambda: counted.append(1) or ClassPixels(COUNTS, None), 7, ignore_index=255)
        for v in ("cce-focal", "cce-topk", "cce-balanced", "cce-dice")
    }
    assert counted == [1]  # only cce-balanced reads the training labels
    assert losses["cce-focal"].focal_gamma == 2.0 and losses["cce-focal"].ignore_index == 255
    assert losses["cce-topk"].top_k == TOP_K == 0.25
    expected = COUNTS.sum() / (7 * COUNTS)  # scikit-learn's "balanced"
    np.testing.assert_allclose(losses["cce-balanced"].class_weights, expected, rtol=1e-12)
    assert losses["cce-balanced"].class_weights == weights_from_counts(COUNTS, "inverse_frequency")
    logits = rng.normal(size=(2, 4, 4, 7)).astype(np.float32)
    labels = rng.integers(0, 7, (2, 4, 4))
    labels[0, 0] = 255
    np.testing.assert_allclose(
        losses["cce-balanced"](labels, softmax(logits).astype(np.float32)).numpy(),
        pixel_cce(labels, logits, expected, 255),
        rtol=1e-5,
    )


def _run(variant, seed, miou, per_class, counts=COUNTS):
    return {
        "variant": variant,
        "seed": seed,
        "miou": miou,
        "per_class_iou": per_class,
        "train_class_pixels": [int(c) for c in counts],
        "val_miou_per_epoch": [miou],
        "seconds": 1.0,
    }


def test_rare_classes_are_the_third_with_fewest_training_pixels():
    assert report.rare_classes(COUNTS) == [1, 3, 5]  # ⌈7/3⌉ = 3: 300, 40, 90 pixels
    assert report.rare_classes([10, 10, 5]) == [2]
    assert report.rare_classes([3, 1, 2, 1, 9, 9]) == [1, 3]  # ties: lower index first
    per_class = [0.9, 0.2, 0.5, None, 0.6, 0.4, 0.7]
    assert report.rare_iou(_run("cce", 0, 0.5, per_class)) == pytest.approx(0.3)
    assert report.rare_iou({"per_class_iou": per_class}) is None


def test_aggregate_averages_the_rare_column_over_seeds():
    runs = {
        "cce": [
            _run("cce", 0, 0.5, [0.9, 0.2, 0.5, 0.0, 0.6, 0.4, 0.7]),
            _run("cce", 1, 0.6, [0.9, 0.4, 0.5, 0.2, 0.6, 0.6, 0.7]),
        ]
    }
    (result,) = report.aggregate(runs)
    assert [r["rare_iou"] for r in result["runs"]] == pytest.approx([0.2, 0.4])
    assert result["rare_iou"] == pytest.approx(0.3)
    assert result["std"]["rare_iou"] == pytest.approx(0.1)
    assert "rare classes" in report.table([result]).splitlines()[0]
    assert "0.300 ± 0.100" in report.table([result])


def _results(cce, other, name="cce-focal"):
    per_class = [0.9, 0.2, 0.5, 0.1, 0.6, 0.4, 0.7]
    runs = {
        "cce": [_run("cce", s, m, per_class) for s, m in enumerate(cce)],
        name: [_run(name, s, m, [min(v + 0.1, 1) for v in per_class]) for s, m in enumerate(other)],
    }
    return report.aggregate(runs)


# _run carries no per-image counts, as runs written before them: these check the older rule,
# which the advice falls back to (the paired bootstrap: tests/test_compare_statistics.py).


def test_recommendation_established_when_margin_exceeds_the_spread():
    advice = report.recommendation(_results([0.50, 0.52, 0.51], [0.60, 0.61, 0.59]))
    assert advice["rule"] == "seed spread" and advice["differences"] is None
    assert advice["text"].startswith("These runs carry no per-image counts")
    assert advice["best"] == "cce-focal" and advice["versus"] == "cce"
    assert advice["margin"] == pytest.approx(0.09)
    assert advice["spread"] == pytest.approx(0.02)
    assert advice["established"] is True and advice["seeds"] == 3
    assert "+0.090 over cce" in advice["text"] and "use cce-focal" in advice["text"]
    assert advice["best_rare"] == "cce-focal" and advice["rare_classes"] == [1, 3, 5]


def test_recommendation_not_established_within_the_spread():
    advice = report.recommendation(_results([0.50, 0.60, 0.55], [0.58, 0.54, 0.62]))
    assert advice["best"] == "cce-focal"
    assert advice["margin"] == pytest.approx(0.03) and advice["spread"] == pytest.approx(0.10)
    assert advice["established"] is False
    assert "not established" in advice["text"] and "more seeds" in advice["text"]


def test_recommendation_with_one_seed_or_cce_best_or_alone():
    one = report.recommendation(_results([0.5], [0.7]))
    assert one["established"] is False and one["spread"] is None
    assert "--seeds 3" in one["text"]
    cce_best = report.recommendation(_results([0.70, 0.71], [0.50, 0.52], name="cce-topk"))
    assert cce_best["best"] == "cce" and cce_best["versus"] == "cce-topk"
    assert cce_best["established"] is True and "use cce." in cce_best["text"]
    alone = report.recommendation(report.aggregate({"cce": [_run("cce", 0, 0.5, [0.5] * 7)]}))
    assert alone["versus"] is None and "nothing to compare" in alone["text"]
    names = ["bg", "a", "b", "c", "d", "e", "f"]
    assert "(a, c, e:" in report.recommendation(_results([0.5], [0.7]), names)["text"]


# The advice's arithmetic and report; each flavour's training is checked by test_compare.py.
@pytest.mark.one_flavor
def test_compare_rare_class_variants_end_to_end(tmp_path, capsys, compare_argv):
    out = str(tmp_path / "out")
    variants = ("cce-balanced", "cce-dice")
    status = main(compare_argv(out, "--in-process", variants=variants))
    assert status == 0
    printed = capsys.readouterr().out
    assert "rare classes" in printed and "Best by mean mIoU over 1 seed(s)" in printed
    _check_report(out, 7, variants)
    with open(os.path.join(out, "report.json")) as f:
        saved = json.load(f)
    for r in saved["results"]:
        assert len(r["train_class_pixels"]) == 7 and sum(r["train_class_pixels"]) > 0
        assert r["rare_iou"] == pytest.approx(report.rare_iou(r))
    assert saved["recommendation"]["best"] in variants
    assert saved["recommendation"]["versus"] in variants  # no cce run: the runner-up
    # Each run keeps its validation images' counts; summed, they give its mIoU again.
    for r in saved["results"]:
        counts = np.asarray(OutputFolder(out).run(r["variant"], 0).load_result()["image_counts"])
        assert counts.shape == (saved["config"]["val_images"], 3, 7)
        assert set_miou(counts.sum(0)) == pytest.approx(r["miou"], abs=1e-12)
    advice = saved["recommendation"]
    assert advice["rule"] == "paired bootstrap" and advice["images_only"] is True
    assert "covers the validation images only" in printed
    with open(os.path.join(out, "report.md")) as f:
        assert "## Recommendation" in f.read()
    balanced = keras.models.load_model(os.path.join(out, "model_cce-balanced.keras")).loss
    balanced = getattr(balanced, "fn", balanced)
    if isinstance(balanced, PixelCategoricalCrossentropy):  # Keras 3 keeps the loss object
        counts = np.asarray(saved["results"][0]["train_class_pixels"])
        expected = weights_from_counts(counts, "inverse_frequency")
        np.testing.assert_allclose(balanced.class_weights, expected, rtol=1e-6)
