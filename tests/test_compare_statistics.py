"""``compare``'s statistics: per-image counts, the paired bootstrap of mIoU differences (checked
by hand and by exact enumeration), its calibration on simulated runs, and the report's advice."""

import itertools
import json

import numpy as np
import pytest

from sm_pixel_ce.compare import report
from sm_pixel_ce.compare.statistics import behind_beyond_doubt, paired_difference, set_miou
from sm_pixel_ce.scores import StreamingScore

# NumPy alone: the same in both Keras flavours, so the Keras 3 process alone runs it.
pytestmark = pytest.mark.one_flavor


def _reference_miou(counts):
    """MMSegmentation's mIoU of one set, ``(3, C)`` summed counts, with a loop over classes."""
    ious = []
    for tp, fp, fn in np.asarray(counts).T:
        if tp + fp + fn:
            ious.append(tp / (tp + fp + fn))
    return float(np.mean(ious)) if ious else float("nan")


def test_set_miou_matches_a_reference_and_leaves_absent_classes_out(rng):
    counts = rng.integers(0, 20, (5, 3, 4))
    counts[1, :, 2] = 0  # class 2 absent from set 1
    np.testing.assert_allclose(set_miou(counts), [_reference_miou(c) for c in counts], rtol=1e-12)
    assert set_miou(np.array([[2, 1, 0], [0, 1, 0], [0, 0, 0]])) == pytest.approx(0.75)
    assert np.isnan(set_miou(np.zeros((3, 2), int)))


def test_image_counts_equal_a_numpy_confusion_per_image(rng):
    classes, ignore = 4, 255
    scores = StreamingScore(classes, ignore_index=ignore, calibration=False, image_counts=True)
    labels, predictions = [], []
    for batch in (3, 2):
        label = rng.integers(0, classes, (batch, 6, 5))
        label[0, :2] = ignore
        probabilities = rng.random((batch, 6, 5, classes))
        scores.update(probabilities, label)
        labels += list(label)
        predictions += list(probabilities.argmax(-1))
    counts = scores.image_counts()
    assert counts.dtype == np.int64 and counts.shape == (5, 3, classes)
    for image, (label, predicted) in enumerate(zip(labels, predictions)):
        matrix = np.zeros((classes, classes), np.int64)
        keep = label != ignore
        np.add.at(matrix, (label[keep], predicted[keep]), 1)
        tp = np.diag(matrix)
        np.testing.assert_array_equal(counts[image, 0], tp)
        np.testing.assert_array_equal(counts[image, 1], matrix.sum(0) - tp)
        np.testing.assert_array_equal(counts[image, 2], matrix.sum(1) - tp)
    summed = counts.sum(0)
    np.testing.assert_array_equal(summed[0] + summed[2], scores.matrix.sum(1))
    assert set_miou(summed) == pytest.approx(scores.result()["miou"], abs=1e-12)
    with pytest.raises(ValueError, match="image_counts=True"):
        StreamingScore(classes).image_counts()


def _pair(a, b, seeds=(0,)):
    return {"a": {s: np.asarray(a) for s in seeds}, "b": {s: np.asarray(b) for s in seeds}}


def test_identical_variants_differ_by_zero_and_a_better_one_wins_every_resample(rng):
    counts = rng.integers(0, 50, (30, 3, 3))
    same = paired_difference(_pair(counts, counts, seeds=(0, 1, 2)))
    assert same["best"] == "a"  # the first on a tie
    assert same["versus"]["b"] == {
        "difference": 0.0,
        "low": 0.0,
        "high": 0.0,
        "win_share": 0.0,
        "established": False,
    }
    better = counts.copy()
    better[:, 0] += 10  # more true positives on every image and class, the same errors
    stats = paired_difference(_pair(counts, better))
    assert stats["best"] == "b" and stats["images_only"] is True and stats["images"] == {0: 30}
    row = stats["versus"]["a"]
    assert row["win_share"] == 1.0 and row["established"] is True and row["low"] > 0
    assert row["difference"] == pytest.approx(set_miou(better.sum(0)) - set_miou(counts.sum(0)))
    assert behind_beyond_doubt(_pair(counts, better)) == ["a"]
    assert behind_beyond_doubt(_pair(counts, counts)) == []


# One class, three images: [tp, fp, fn] of each image.
_A = [[[9], [1], [0]], [[1], [0], [4]], [[5], [0], [0]]]
_B = [[[8], [0], [2]], [[3], [1], [1]], [[5], [0], [0]]]


def _exact(draws):
    """Exact bootstrap distribution of ``mean over seeds of miou(b) - miou(a)``: every ordered
    draw of the images equally likely; ``draws`` lists, per seed, which draw it uses."""
    a, b = np.asarray(_A), np.asarray(_B)
    values = []
    for combo in draws:
        values.append(
            np.mean([set_miou(b[list(d)].sum(0)) - set_miou(a[list(d)].sum(0)) for d in combo])
        )
    return np.sort(values)


def _quantile(values, p):
    return values[int(np.ceil(p * len(values))) - 1]


def test_bootstrap_matches_exact_enumeration_and_shares_the_image_draw_across_seeds():
    ordered = list(itertools.product(range(3), repeat=3))
    single = _exact([(d,) for d in ordered])
    # Two seeds with the same counts (no spread between seeds): one shared draw per resample
    # gives the one-seed distribution; a draw per seed would average two independent ones.
    independent = _exact(list(itertools.product(ordered, repeat=2)))
    assert abs(np.mean(single > 0) - np.mean(independent > 0)) > 0.1  # the test can tell them
    for seeds in ((0,), (0, 1)):
        stats = paired_difference(_pair(_A, _B, seeds), resamples=20000, seed=3)
        row = stats["versus"]["a"]
        assert stats["best"] == "b" and stats["images_only"] is (len(seeds) == 1)
        assert row["win_share"] == pytest.approx(np.mean(single > 0), abs=0.012)
        assert _quantile(single, 0.02) <= row["low"] <= _quantile(single, 0.03)
        assert _quantile(single, 0.97) <= row["high"] <= _quantile(single, 0.98)


def test_seed_spread_widens_the_interval_by_students_t():
    counts = np.asarray(_A)
    plus = counts.copy()
    plus[:, 0] += 1
    # c gains on seed 0 and ties on seed 1: the seeds disagree.
    stats = paired_difference({"a": {0: counts, 1: plus}, "c": {0: plus, 1: plus}}, 4000)
    one = paired_difference({"a": {0: counts}, "c": {0: plus}}, 4000)
    assert stats["best"] == "c" and stats["images_only"] is False
    row, alone = stats["versus"]["a"], one["versus"]["a"]
    assert row["difference"] == pytest.approx(alone["difference"] / 2)
    # The t part: t(1 degree of freedom)'s 97.5 % quantile, 12.706, times ŝ / √2 = δ / 2 (ŝ the
    # standard deviation of [δ, 0]) around the difference; the images add a little.
    half = 12.706 * alone["difference"] / 2
    assert row["low"] == pytest.approx(row["difference"] - half, abs=0.03)
    assert row["high"] == pytest.approx(row["difference"] + half, abs=0.03)
    assert row["high"] - row["low"] > 3 * (alone["high"] - alone["low"])


def test_paired_difference_errors_name_what_was_expected():
    counts = np.ones((4, 3, 2), int)
    with pytest.raises(ValueError, match="two variants or more"):
        paired_difference({"a": {0: counts}})
    with pytest.raises(ValueError, match="no seed is common"):
        paired_difference({"a": {0: counts}, "b": {1: counts}})
    with pytest.raises(ValueError, match="same images and classes"):
        paired_difference({"a": {0: counts}, "b": {0: counts[:3]}})
    with pytest.raises(ValueError, match=r"\(n_images, 3, C\)"):
        paired_difference({"a": {0: counts[:, :2]}, "b": {0: counts[:, :2]}})
    with pytest.raises(ValueError, match="non-negative integers"):
        paired_difference({"a": {0: -counts}, "b": {0: counts}})
    with pytest.raises(ValueError, match="counted pixel"):
        paired_difference({"a": {0: 0 * counts}, "b": {0: counts}})
    with pytest.raises(ValueError, match="best must be one of"):
        paired_difference({"a": {0: counts}, "b": {0: counts}}, best="c")
    with pytest.raises(ValueError, match="level"):
        paired_difference({"a": {0: counts}, "b": {0: counts}}, level=95)


def simulate(rng, gap, seeds=3, images=40, classes=4, seed_effect=0.04, run_effect=0.0):
    """Per-image counts of two variants ``a`` and ``b`` (``b`` better by ``gap`` in quality).

    Each image has its class pixels; a run labels a share ``q`` of each class's pixels right,
    ``q = 0.6 + gap (b only) + seed effect (shared by the variants of a seed: the initial
    weights) + run effect (its own luck) + variant-image effect (the same for every seed)
    + noise per image and class``, the rest going to other classes (as many false positives as
    false negatives). The noise of the advice is the standard deviation of one variant's set
    mIoU from run to run, measured by :func:`_noise`.
    """
    truth = rng.multinomial(400, rng.dirichlet(np.ones(classes)), images)
    shared = rng.normal(0, seed_effect, seeds)
    counts = {}
    for name, lead in (("a", 0.0), ("b", gap)):
        variant_image = rng.normal(0, 0.05, (images, 1))
        counts[name] = {}
        for s in range(seeds):
            luck = rng.normal(0, run_effect)
            noise = rng.normal(0, 0.15, (images, classes))
            q = np.clip(0.6 + lead + shared[s] + luck + variant_image + noise, 0.02, 0.98)
            tp = np.round(q * truth).astype(np.int64)
            counts[name][s] = np.stack([tp, truth - tp, truth - tp], 1)
    return counts


def _noise_and_gap(gap, trials=60, **options):
    rng = np.random.default_rng(7)
    a, gaps = [], []
    for _ in range(trials):
        counts = simulate(rng, gap, **options)
        miou = {v: [set_miou(c.sum(0)) for c in counts[v].values()] for v in counts}
        a += miou["a"]
        gaps.append(np.mean(miou["b"]) - np.mean(miou["a"]))
    return float(np.std(a)), float(np.mean(gaps))


def _claims(gap, trials, **options):
    """Share of simulated comparisons where a winner is claimed, and where it is ``b``."""
    rng = np.random.default_rng(1)
    claims = right = 0
    for _ in range(trials):
        stats = paired_difference(simulate(rng, gap, **options))
        claimed = any(row["established"] for row in stats["versus"].values())
        claims += claimed
        right += claimed and stats["best"] == "b"
    return claims / trials, right / trials


@pytest.mark.parametrize(
    "options",
    [
        {},  # the seeds' variation shared by the variants of a seed, which the pairing cancels
        {"seed_effect": 0.0, "run_effect": 0.04},  # every run its own luck, nothing shared
    ],
)
def test_equal_variants_claim_a_winner_in_at_most_about_5_percent(options):
    claims, _ = _claims(0.0, 300, **options)
    assert claims <= 0.07  # 5 % and about 1.5 standard errors of a share over 300 cases


@pytest.mark.parametrize(
    "options, share",
    [
        ({}, 0.85),  # the seeds' variation shared by the variants of a seed: pairing cancels it
        # With every run's own luck too, 3 seeds tell it apart about half the time only: a
        # mean of 3 seeds is Student's t with 2 degrees of freedom (97.5 % quantile 4.3).
        ({"run_effect": 0.02}, 0.5),
    ],
)
def test_a_gap_of_twice_the_noise_finds_the_winner_most_of_the_time(options, share):
    noise, _ = _noise_and_gap(0.0, **options)
    # The gap in q that makes an mIoU gap of twice the noise (IoU is not linear in q).
    _, first = _noise_and_gap(2 * noise, **options)
    lead = 2 * noise * (2 * noise / first)
    _, gap = _noise_and_gap(lead, **options)
    assert 1.9 <= gap / noise <= 2.1
    claims, right = _claims(lead, 150, **options)
    assert right > share and right == claims  # never the wrong winner


# The report's advice.


def _run(variant, seed, counts, **extra):
    counts = np.asarray(counts)
    summed = counts.sum(0)
    union = summed.sum(0)
    per_class = [float(t / u) if u else None for t, u in zip(summed[0], union)]
    miou = float(set_miou(summed))
    return {
        "variant": variant,
        "seed": seed,
        "miou": miou,
        "per_class_iou": per_class,
        "val_miou_per_epoch": [miou],
        "seconds": 1.0,
        "image_counts": counts.tolist(),
        **extra,
    }


def _results(counts, **stopped):
    return report.aggregate(
        {
            v: [_run(v, s, c, **stopped.get(v, {})) for s, c in by_seed.items()]
            for v, by_seed in counts.items()
        }
    )


def test_recommendation_gives_the_paired_interval_of_every_difference():
    counts = simulate(np.random.default_rng(0), 0.3)
    counts = {"cce": counts["a"], "cce-dice": counts["b"], "bce": counts["a"]}
    results = _results(counts)
    advice = report.recommendation(results)
    stats = paired_difference(counts, best="cce-dice")
    assert advice["best"] == "cce-dice" and advice["versus"] == "cce"
    assert advice["rule"] == "paired bootstrap" and advice["images_only"] is False
    row = stats["versus"]["cce"]
    assert advice["margin"] == pytest.approx(results[1]["miou"] - results[0]["miou"], abs=0.02)
    assert (advice["margin"], advice["low"], advice["high"], advice["win_share"]) == (
        row["difference"],
        row["low"],
        row["high"],
        row["win_share"],
    )
    assert advice["established"] is True and set(advice["differences"]) == {"cce", "bce"}
    text = advice["text"]
    assert f"{row['difference']:+.3f} over cce" in text
    assert f"95% interval [{row['low']:+.3f}, {row['high']:+.3f}]" in text
    assert "1000 resamples" in text and "use cce-dice" in text
    assert "validation images only" not in text
    table = report.difference_table(advice, results, markdown=True).splitlines()
    assert table[0].startswith("| variant | mIoU | cce-dice - variant | 95% interval")
    assert table[2].startswith(f"| cce | {results[0]['miou']:.3f} | {row['difference']:+.3f}")


def test_recommendation_not_established_and_with_one_seed():
    counts = simulate(np.random.default_rng(0), 0.0)
    same = {"cce": counts["a"], "cce-focal": counts["a"], "bce": counts["a"]}
    equal = report.recommendation(_results(same))
    assert equal["best"] == "cce" and equal["versus"] == "cce-focal"  # ties: the first
    assert equal["established"] is False and equal["margin"] == 0.0
    assert "interval includes 0, so the difference is not established" in equal["text"]
    assert "Not behind cce beyond doubt either: bce (+0.000, [+0.000, +0.000])." in equal["text"]
    one = {v: {0: counts[k][0]} for v, k in (("cce", "a"), ("cce-lovasz", "b"))}
    advice = report.recommendation(_results(one))
    assert advice["images_only"] is True and advice["seeds"] == 1
    assert "covers the validation images only" in advice["text"]
    assert "--seeds 3" in advice["text"]


def test_a_stopped_variant_is_never_best_and_the_report_says_when_it_stopped(tmp_path):
    counts = simulate(np.random.default_rng(0), 0.15)
    because = {"best": "cce", "difference": 0.2, "low": 0.1, "high": 0.3}
    stop = {"stopped_at": 1, "epochs_planned": 4, "stopped_because": because}
    stop["image_counts_at"] = {"1": counts["b"][0].tolist()}
    results = _results({"cce": counts["a"], "bce": counts["b"]}, bce=stop)
    assert results[1]["stopped_at"] == 1 and results[1]["stopped_because"] == because
    advice = report.recommendation(results)
    assert advice["best"] == "cce"  # bce has the higher mIoU, but was stopped
    assert advice["stopped"] == [{"variant": "bce", "stopped_at": 1, "epochs_planned": 4}]
    assert "Not behind" not in advice["text"]  # a stopped variant is not a tie
    assert (
        "Stopped by --prune, behind the best beyond doubt: bce after epoch 1 of 4 "
        "(cce ahead by +0.200, [+0.100, +0.300])." in advice["text"]
    )
    assert "| epoch 1 of 4 |" in report.difference_table(advice, results, markdown=True)
    path = tmp_path / "report.json"
    report.write_json(path, {"class_names": None}, results)
    saved = json.loads(path.read_text())
    assert "image_counts" not in json.dumps(saved["results"])  # they stay in each result.json
    assert saved["results"][1]["stopped_at"] == 1
    assert (
        saved["recommendation"]["differences"]["bce"]["low"] == advice["differences"]["bce"]["low"]
    )


def test_runs_without_image_counts_fall_back_to_the_spread_rule():
    counts = simulate(np.random.default_rng(0), 0.15)
    results = _results({"cce": counts["a"], "cce-dice": counts["b"]})
    for run in results[0]["runs"]:
        del run["image_counts"]
    advice = report.recommendation(results)
    assert advice["rule"] == "seed spread" and advice["differences"] is None
    assert advice["text"].startswith("These runs carry no per-image counts")
    assert "spread across seeds" in advice["text"]
    assert report.difference_table(advice, results) is None
