"""``compare``'s statistics: per-image counts, the paired bootstrap of mIoU differences (checked
by hand and by exact enumeration), its calibration on simulated runs, and the report's advice."""

import itertools
import json
import math

import numpy as np
import pytest

from sm_pixel_ce.compare import report
from sm_pixel_ce.compare.statistics import (
    MOST_SEEDS,
    Noise,
    behind_beyond_doubt,
    detectable_difference,
    paired_difference,
    seeds_needed,
    set_miou,
)
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
        # No noise: any gap would be established, and there is none to size a run for.
        "detectable_difference": 0.0,
        "seeds_needed": None,
        "seeds_needed_more_than": None,
        "noise": {"seed_spread": 0.0, "images_shared": 0.0, "images_own": 0.0},
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


# How much a run can detect: the minimum detectable difference and the seeds a gap needs.

# Student's t quantiles (97.5 %, 80 %) by degrees of freedom, from a printed table.
_T = {1: (12.7062, 1.3764), 2: (4.3027, 1.0607), 3: (3.1824, 0.9785), 4: (2.7764, 0.9410)}
_T[29] = (2.0452, 0.8542)
_Z975, _Z80, _Z95, _Z90 = 1.959964, 0.841621, 1.644854, 1.281552


@pytest.mark.parametrize(
    "noise, seeds, options, expected",
    [
        # One seed: the images only, (z_0.975 + z_0.8) σ_I; the image part does not shrink.
        (Noise(None, 0.01, 0.0), 1, {}, (_Z975 + _Z80) * 0.01),
        (Noise(None, 0.01, 0.02), 1, {}, (_Z975 + _Z80) * math.sqrt(0.01**2 + 0.02**2)),
        (Noise(None, 0.01, 0.0), 1, {"level": 0.9}, (_Z95 + _Z80) * 0.01),
        (Noise(None, 0.01, 0.0), 1, {"power": 0.9}, (_Z975 + _Z90) * 0.01),
        # No image noise: (t_0.975 + t_0.8) ŝ / √S with S - 1 degrees of freedom.
        (Noise(0.02, 0.0, 0.0), 2, {}, sum(_T[1]) * 0.02 / math.sqrt(2)),
        (Noise(0.02, 0.0, 0.0), 3, {}, sum(_T[2]) * 0.02 / math.sqrt(3)),
        (Noise(0.02, 0.0, 0.0), 5, {}, sum(_T[4]) * 0.02 / math.sqrt(5)),
        (Noise(0.02, 0.0, 0.0), 30, {}, sum(_T[29]) * 0.02 / math.sqrt(30)),
        # Both: each quantile the root sum of squares of the parts', the image part at S seeds.
        (
            Noise(0.02, 0.01, 0.01),
            4,
            {},
            math.hypot(_Z975 * math.sqrt(1.25e-4), _T[3][0] * 0.01)
            + math.hypot(_Z80 * math.sqrt(1.25e-4), _T[3][1] * 0.01),
        ),
        (Noise(0.0, 0.0, 0.0), 3, {}, 0.0),
    ],
)
def test_detectable_difference_matches_its_closed_forms(noise, seeds, options, expected):
    assert detectable_difference(noise, seeds, **options) == pytest.approx(expected, rel=1e-4)


def test_the_root_sum_of_squares_is_close_to_the_quantiles_of_the_rules_distribution(rng):
    """The claim in detectable_difference's docstring: from 2 degrees of freedom up, the root
    sum of squares of the parts' quantiles is within 3 % (97.5 %) and 8 % (80 %) of the
    quantiles of ``σ_I Z + T`` (``T`` the seeds' part), and their sum within 2.5 % (400,000
    draws)."""
    from sm_pixel_ce.compare.statistics import _sum_quantile

    z = rng.standard_normal(400_000)
    for df in (2, 4, 9):
        t = rng.standard_t(df, 400_000)
        for images in (0.5, 1.0, 2.0, 4.0):
            q_c, q_80 = np.quantile(images * z + t, [0.975, 0.8])
            rss_c, rss_80 = (_sum_quantile(p, images, 1.0, df) for p in (0.975, 0.8))
            assert rss_c == pytest.approx(q_c, rel=0.03)
            assert rss_80 == pytest.approx(q_80, rel=0.08)
            assert rss_c + rss_80 == pytest.approx(q_c + q_80, rel=0.025)
            assert _sum_quantile(0.2, images, 1.0, df) == pytest.approx(-rss_80)


def test_seeds_needed_is_the_fewest_seeds_whose_detectable_difference_is_the_gap():
    noise = Noise(0.03, 0.01, 0.02)
    six = detectable_difference(noise, 6)
    assert seeds_needed(six, noise) == 6 and seeds_needed(0.999 * six, noise) == 7
    assert [detectable_difference(noise, s) > six for s in (3, 4, 5)] == [True] * 3
    assert seeds_needed(1.0, noise) == 3  # three at least (see its docstring)
    # The image part shared by the seeds stays: below (z + z) · shared no seed count suffices.
    floor = (_Z975 + _Z80) * 0.01
    assert seeds_needed(0.99 * floor, noise) == math.inf
    assert seeds_needed(six, noise, most=5) == math.inf
    for difference, nothing in ((0.0, noise), (-0.1, noise), (0.1, Noise(None, 0.01, 0.0))):
        assert seeds_needed(difference, nothing) is None
    assert seeds_needed(0.1, Noise(0.0, 0.0, 0.0)) is None  # no noise: nothing to size
    assert Noise(0.02, 0.01, 0.02).images(4) == pytest.approx(math.sqrt(2e-4))
    for call, match in (
        (lambda: detectable_difference(noise, 0), "seeds must be a positive integer"),
        (lambda: detectable_difference(noise, 3, level=1.5), "level must lie"),
        (lambda: detectable_difference(noise, 3, power=1.0), "power must lie"),
        (lambda: seeds_needed(0.1, noise, most=2), "most_seeds must be an integer >= 3"),
        (lambda: paired_difference(_pair(_A, _B), power=0), "power must lie"),
    ):
        with pytest.raises(ValueError, match=match):
            call()


def test_the_noise_is_read_from_the_rules_own_resamples(rng):
    # Per seed, the resampled differences' covariance: the image part of the mean over S seeds
    # has the variance shared² + own² / S, the variance of the rule's image part.
    from sm_pixel_ce.compare.statistics import _noise

    common = rng.normal(0, 0.02, (5000, 1))
    per_seed = 0.1 + common + rng.normal(0, 0.03, (5000, 3))
    noise = _noise(per_seed, np.array([0.10, 0.13, 0.08]))
    assert noise.images(3) == pytest.approx(np.std(per_seed.mean(1), ddof=1), rel=1e-9)
    assert noise.images_shared == pytest.approx(0.02, rel=0.05)
    assert noise.images_own == pytest.approx(0.03, rel=0.05)
    assert noise.seed_spread == pytest.approx(np.std([0.10, 0.13, 0.08], ddof=1))
    # Seeds with the same counts: everything is shared, nothing spreads across seeds.
    row = paired_difference(_pair(_A, _B, seeds=(0, 1)), resamples=4000)["versus"]["a"]
    assert row["noise"]["seed_spread"] == 0.0 and row["noise"]["images_own"] < 1e-9
    # One seed: the rule's interval is about ± 1.96 σ_I around the difference.
    counts = simulate(np.random.default_rng(2), 0.0, seeds=1, images=200)
    row = paired_difference(counts, resamples=4000, best="b")["versus"]["a"]
    assert row["noise"]["seed_spread"] is None and row["seeds_needed"] is None
    half_width = (row["high"] - row["low"]) / 2
    assert half_width == pytest.approx(_Z975 * row["noise"]["images_shared"], rel=0.06)
    assert row["detectable_difference"] == pytest.approx(
        (_Z975 + _Z80) * row["noise"]["images_shared"]
    )


def _measured_noise(seeds, trials=150, **options):
    """The rule's noise on ``trials`` simulated comparisons without a gap, each variance
    averaged (the mean of ŝ² is unbiased): the true noise, to hand the formulas."""
    rng = np.random.default_rng(11)
    variances = []
    for _ in range(trials):
        counts = simulate(rng, 0.0, seeds=seeds, **options)
        noise = paired_difference(counts, resamples=300, best="b")["versus"]["a"]["noise"]
        variances.append([noise["seed_spread"] or 0.0, noise["images_shared"], noise["images_own"]])
    spread, shared, own = (float(v) for v in np.sqrt(np.mean(np.square(variances), 0)))
    return Noise(spread if seeds > 1 else None, shared, own)


def _comparisons(lead, seeds, trials, **options):
    """``trials`` simulated comparisons, ``b`` ahead by ``lead`` in quality: the same draws
    for every lead (the lead only shifts them)."""
    rng = np.random.default_rng(1)
    return (simulate(rng, lead, seeds=seeds, **options) for _ in range(trials))


def _mean_gap(lead, seeds, trials, **options):
    gaps = [
        np.mean([set_miou(c["b"][s].sum(0)) - set_miou(c["a"][s].sum(0)) for s in c["a"]])
        for c in _comparisons(lead, seeds, trials, **options)
    ]
    return float(np.mean(gaps))


def _power(gap, seeds, trials, **options):
    """Share of ``trials`` simulated comparisons whose mean mIoU gap is ``gap`` that the rule
    establishes. IoU is not linear in quality, so the lead is solved for on the very draws
    that are judged (three secant steps from ``gap``)."""
    lead = gap
    for _ in range(3):
        lead *= gap / _mean_gap(lead, seeds, trials, **options)
    assert _mean_gap(lead, seeds, trials, **options) == pytest.approx(gap, rel=0.01)
    return float(
        np.mean(
            [
                paired_difference(c, best="b")["versus"]["a"]["established"]
                for c in _comparisons(lead, seeds, trials, **options)
            ]
        )
    )


@pytest.mark.parametrize(
    "seeds, options",
    [
        (3, {"run_effect": 0.02}),  # the seeds' shared variation and each run's own luck
        (1, {}),  # no run-level noise: what one seed's images-only figure is about
    ],
)
def test_the_rule_establishes_the_minimum_detectable_difference_in_80_percent(seeds, options):
    noise = _measured_noise(seeds, **options)
    mdd = detectable_difference(noise, seeds)
    # 80 % and 3 standard errors of a share over 300 cases (78.7 % and 81.8 % over 600).
    assert abs(_power(mdd, seeds, 300, **options) - 0.8) <= 0.07
    # A formula off by a factor of 2 (half the noise) is far from it (35 % over 600).
    assert _power(mdd / 2, seeds, 300, **options) < 0.5


def test_the_suggested_seeds_establish_the_gap_in_80_percent():
    # The noise of 3-seed runs sizes a run of more: the seed part ŝ / √S' and the image part's
    # own-seed share shrink, its shared part stays.
    noise = _measured_noise(3, run_effect=0.02)
    gap = detectable_difference(noise, 6)
    assert seeds_needed(gap, noise) == 6 and seeds_needed(0.99 * gap, noise) == 7
    assert abs(_power(gap, 6, 300, run_effect=0.02) - 0.8) <= 0.07
    # Half the noise would have suggested 3 seeds, which establish the gap far less often.
    half = Noise(noise.seed_spread / 2, noise.images_shared / 2, noise.images_own / 2)
    assert seeds_needed(gap, half) == 3
    assert _power(gap, 3, 300, run_effect=0.02) < 0.6


@pytest.mark.slow
@pytest.mark.parametrize(
    "seeds, options, low, high",
    [
        (1, {}, 0.74, 0.88),
        (1, {"run_effect": 0.02}, 0.0, 0.78),  # one seed cannot see a run's own luck
        (2, {"run_effect": 0.02}, 0.0, 0.72),  # two seeds' spread is itself too uncertain
        (3, {"run_effect": 0.02}, 0.73, 0.87),
        (3, {}, 0.73, 0.90),  # ŝ also counts each run's image noise: wide side
        (3, {"seed_effect": 0.0, "run_effect": 0.04}, 0.70, 0.87),  # nearly a t-test
        (5, {"run_effect": 0.02}, 0.73, 0.87),
        (8, {"run_effect": 0.02}, 0.73, 0.87),
    ],
)
def test_the_minimum_detectable_difference_over_seed_counts_and_noise_structures(
    seeds, options, low, high
):
    """The figures of examples/compare_advisor.md ("How much can this run detect?")."""
    noise = _measured_noise(seeds, trials=200, **options)
    mdd = detectable_difference(noise, seeds)
    power, half = (_power(gap, seeds, 600, **options) for gap in (mdd, mdd / 2))
    print(f"seeds {seeds} {options}: {noise}, MDD {mdd:.4f}: {power:.1%}, MDD / 2: {half:.1%}")
    assert low <= power <= high and half < 0.5


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
    assert advice["detectable_difference"] is None and advice["seeds_needed"] is None
    assert advice["text"].startswith("These runs carry no per-image counts")
    assert "spread across seeds" in advice["text"]
    assert report.difference_table(advice, results) is None


def test_the_report_states_the_detectable_difference_and_the_seeds_needed(tmp_path):
    sim = simulate(np.random.default_rng(0), 0.1)
    counts = {"cce": sim["a"], "cce-dice": sim["b"]}
    results = _results(counts)
    advice = report.recommendation(results)
    row = paired_difference(counts, best="cce-dice")["versus"]["cce"]
    assert not row["established"] and row["seeds_needed"] == 9
    assert advice["differences"]["cce"] == row
    assert (advice["power"], advice["most_seeds"]) == (0.8, MOST_SEEDS)
    assert advice["detectable_difference"] == row["detectable_difference"]
    assert (advice["seeds_needed"], advice["seeds_needed_more_than"]) == (9, None)
    detectable = f"{row['detectable_difference']:.3f}"
    assert (
        f"At 80% power this run would detect a true gap of {detectable} or more (the minimum "
        "detectable difference, from the spread across seeds and the validation images); the "
        f"{row['difference']:+.3f} over cce needs 9 seeds at that power." in advice["text"]
    )
    table = report.difference_table(advice, results).splitlines()
    assert "established  detectable at 80%  seeds for 80%  stopped" in table[0]
    assert table[2].split()[-4:] == ["no", detectable, "9", "-"]
    markdown = report.difference_table(advice, results, markdown=True)
    assert f"| no | {detectable} | 9 | - |" in markdown
    path = tmp_path / "report.json"
    report.write_json(path, {"class_names": None}, results)
    saved = json.loads(path.read_text())["recommendation"]
    assert saved["differences"]["cce"] == row  # the old keys and the new
    assert (saved["seeds_needed"], saved["power"]) == (9, 0.8)

    # A gap too small for 50 seeds of this noise; two seeds; one seed.
    sim = simulate(np.random.default_rng(0), 0.05, run_effect=0.02)
    results = _results({"cce": sim["a"], "cce-dice": sim["b"]})
    advice = report.recommendation(results)
    assert (advice["seeds_needed"], advice["seeds_needed_more_than"]) == (None, 50)
    assert "over cce needs more than 50 seeds at that power." in advice["text"]
    assert report.difference_table(advice, results).splitlines()[2].split()[-3:-1] == [">", "50"]
    two = {v: {s: sim[k][s] for s in (0, 1)} for v, k in (("cce", "a"), ("cce-dice", "b"))}
    advice = report.recommendation(_results(two))
    assert "with 2 seeds the rule reaches that power less often, about 60%" in advice["text"]
    one = {v: {0: sim[k][0]} for v, k in (("cce", "a"), ("cce-dice", "b"))}
    results = _results(one)
    advice = report.recommendation(results)
    assert advice["seeds_needed"] is None and advice["seeds_needed_more_than"] is None
    assert (
        f"At 80% power this run would detect a true gap of "
        f"{advice['detectable_difference']:.3f} or more, counting the validation images only"
    ) in advice["text"]
    table = report.difference_table(advice, results).splitlines()
    assert "detectable at 80% (images only)  seeds for 80%" in table[0]
    assert table[2].split()[-2:] == ["-", "-"]
