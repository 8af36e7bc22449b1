"""Is the best variant's lead real? A paired bootstrap over validation images and seeds.

``compare`` trains every variant from the same initial weights for a seed, and scores every run
on the same validation images (one split for all seeds). Runs are therefore **paired**: the
difference between two variants is measured seed by seed, on the same images, so whatever the
seed and the images do to both cancels out.

The runs hand over their per-image counts, ``(n_images, 3, C)``: for each validation image and
class the true positive, false positive and false negative pixels (see
:class:`~sm_pixel_ce.scores.StreamingScore`). The mIoU of a set of images is MMSegmentation's:
per class ``IoU = Σ tp / (Σ tp + Σ fp + Σ fn)`` summed over the images, classes with a zero
union left out of the mean (:func:`set_miou`).

How the seeds are combined. A variant's score is the mean over the S seeds of its set mIoU, and
the difference to the best is ``D = mean_s d_s``, ``d_s = set mIoU(best, s) - set mIoU(other, s)``.
Each resample is the sum of two parts:

1. **The validation images**, drawn with replacement: the **same image indices for every variant
   and every seed** of the resample (they are the same images; a seed with a different number of
   images, which ``compare`` never makes, gets its own draw). The part is the mean over the S
   seeds of ``d_s`` on the drawn images.
2. **The seeds** (S >= 2): ``t · ŝ / √S``, ``t`` drawn from Student's t with ``S - 1`` degrees of
   freedom and ``ŝ`` the standard deviation over the seeds of ``d_s`` on all the images: the
   small-sample distribution of a mean of S seeds, the parametric form of drawing the seeds with
   replacement.

Why not draw the seeds with replacement: with 3 seeds the mean of 3 values drawn from 3 has
short tails (its 2.5 % quantile is the smallest ``d_s``), so when each run has its own luck
(a run-level effect not shared by the variants of its seed) that rule claimed a winner between
equal variants in 16 % of simulated cases (27 % with 2 seeds, 12 % with 5); with the t part it
stays under 5 % (tests/test_compare_statistics.py). ``ŝ`` also holds each run's image-level noise,
which part 1 counts already, so the interval errs on the wide side.

So with several seeds the interval covers both the seed-to-seed variation (training noise) and
the finite validation set; with **one seed it covers the images only** (``images_only``). The
interval is the percentile interval of the resampled differences, ``win_share`` the share of
resamples above 0, and the lead of the best over a variant is **established when the interval
lies above 0**.

How much a run can detect (:func:`detectable_difference`, :func:`seeds_needed`). The rule's
resamples are ``D + W``: ``W`` the image part's spread (about normal, standard deviation
``σ_I``, measured from the resamples) plus ``t · ŝ / √S``. The lead is established when
``D > q_c(W)``, ``q_c`` the ``(1 + level) / 2`` quantile. Read ``D + W`` as what a rerun would
measure of a true gap ``Δ`` (that is what the interval claims): the rerun establishes it with
probability ``P(W > q_c - Δ)``, which is ``power`` when ``Δ = q_c(W) + q_power(W)``: the
**minimum detectable difference**, the textbook ``(z_{1-α/2} + z_{1-β}) · SE`` with the rule's
own distribution in place of the normal. The **seeds needed** for an observed ``D`` are the
fewest ``S'`` whose detectable difference is at most ``D``, the noise as measured (``ŝ`` the
same, the image part's own-seed share averaging out over ``S'`` seeds; see :class:`Noise`).
"""

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist  # the standard library's, not this module

import numpy as np

__all__ = [
    "MOST_SEEDS",
    "POWER",
    "Noise",
    "behind_beyond_doubt",
    "detectable_difference",
    "paired_difference",
    "seeds_needed",
    "set_miou",
]

#: The power at which the detectable difference and the seeds needed are stated.
POWER = 0.8
#: The most seeds :func:`seeds_needed` considers; a gap that needs more is "more than" it.
MOST_SEEDS = 50


def set_miou(counts):
    """MMSegmentation's mIoU of sets of images from their per-image counts, vectorised.

    Args:
        counts: ``(..., 3, C)`` summed counts ``[tp, fp, fn]`` per class (any leading axes: one
            set per entry).

    Returns:
        float64 ``(...)``: the mean over the classes with a non-zero union of
        ``tp / (tp + fp + fn)``; NaN where no class has a union.

    Example:
        >>> float(set_miou(np.array([[2, 0, 0], [1, 1, 0], [0, 0, 0]]).T))  # 1, 1/2, absent
        0.75
    """
    counts = np.asarray(counts, np.float64)
    return _miou(counts[..., 0, :], counts.sum(-2))


def _miou(tp, union):
    """Mean over the classes (last axis) with a non-zero union of ``tp / union``, else NaN."""
    defined = union > 0
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=defined)
    classes = defined.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(classes > 0, iou.sum(-1) / classes, np.nan)


def paired_difference(
    counts, resamples=1000, seed=0, level=0.95, best=None, power=POWER, most_seeds=MOST_SEEDS
):
    """The best variant's mIoU lead over every other one, with a paired bootstrap interval.

    See the module's docstring for the resampling: the validation images drawn with replacement
    (the same for every variant and seed of a resample) plus, with several seeds, a Student's t
    term for the seed-to-seed variation of the paired differences.

    Args:
        counts: ``{variant: {seed: array-like (n_images, 3, C)}}``, per-image ``[tp, fp, fn]``
            of each run. Only the seeds that every variant has are used; the runs of a seed
            must have the same images (same count and classes).
        resamples: Bootstrap resamples. Defaults to 1000.
        seed: Seed of the resampling. Defaults to 0.
        level: Coverage of the interval. Defaults to 0.95.
        best: The variant the others are measured against, or None for the one with the
            highest mean set mIoU over the seeds (the first in ``counts`` on a tie).
            Defaults to None.
        power: The power at which ``detectable_difference`` and ``seeds_needed`` are stated.
            Defaults to :data:`POWER` (0.8).
        most_seeds: The most seeds ``seeds_needed`` considers. Defaults to :data:`MOST_SEEDS`
            (50).

    Returns:
        A dict: ``best``; ``seeds`` (used); ``images`` (``{seed: n}``); ``resamples``;
        ``images_only`` (one seed: the interval covers the images only); ``power``;
        ``most_seeds``; ``miou`` (``{variant: mean set mIoU over the seeds}``); ``versus``
        (``{other: {"difference", "low", "high", "win_share", "established",
        "detectable_difference", "seeds_needed", "seeds_needed_more_than", "noise"}}``): the
        mean over seeds of ``set mIoU(best) - set mIoU(other)``, its ``level`` percentile
        interval, the share of resamples in which the best is ahead (difference > 0), whether
        the interval lies above 0, the smallest gap this run establishes with probability
        ``power`` (:func:`detectable_difference`; with one seed, of the images only), the seeds
        that would establish ``difference`` so (:func:`seeds_needed`: an int, or None with
        ``seeds_needed_more_than`` = ``most_seeds`` when more are needed, or None with it None
        when nothing can be said: a difference of 0 or less, no noise, or one seed), and the
        measured :class:`Noise` as a dict.

    Raises:
        ValueError: fewer than two variants, no seed common to all, runs of a seed whose shapes
            differ, a run with no counted pixel, or an option out of range.

    Example:
        >>> stats = paired_difference({"cce": {0: cce_0, 1: cce_1}, "cce-dice": {0: d_0, 1: d_1}})
        >>> stats["best"], stats["versus"]["cce"]["low"] > 0
        ('cce-dice', True)
    """
    names, seeds, runs, full = _paired_runs(counts, resamples, level, best)
    _check_power(power, most_seeds)
    mean = {v: float(full[v].mean()) for v in names}
    if best is None:
        best = max(names, key=lambda v: mean[v])
    rng = np.random.default_rng(seed)
    sizes = [runs[best][k].shape[0] for k in range(len(seeds))]
    resampled = _resample(rng, sizes, runs, resamples)
    # The seeds' part: one t draw per resample, shared by the variants (None with one seed).
    t = rng.standard_t(len(seeds) - 1, resamples) if len(seeds) > 1 else None
    tail = (1 - level) / 2 * 100
    versus = {}
    for other in names:
        if other == best:
            continue
        per_seed = resampled[best] - resampled[other]
        differences = per_seed.mean(1)
        if t is not None:
            spread = np.std(full[best] - full[other], ddof=1)
            differences = differences + t * spread / np.sqrt(len(seeds))
        finite = differences[np.isfinite(differences)]
        low, high = np.percentile(finite, [tail, 100 - tail])
        difference = mean[best] - mean[other]
        noise = _noise(per_seed, full[best] - full[other])
        needed = seeds_needed(difference, noise, level, power, most_seeds)
        versus[other] = {
            "difference": difference,
            "low": float(low),
            "high": float(high),
            "win_share": float(np.mean(finite > 0)),
            "established": bool(low > 0),
            "detectable_difference": detectable_difference(noise, len(seeds), level, power),
            "seeds_needed": None if needed in (None, math.inf) else needed,
            "seeds_needed_more_than": most_seeds if needed == math.inf else None,
            "noise": asdict(noise),
        }
    return {
        "best": best,
        "seeds": list(seeds),
        "images": {s: n for s, n in zip(seeds, sizes)},
        "resamples": int(resamples),
        "images_only": len(seeds) == 1,
        "power": power,
        "most_seeds": most_seeds,
        "miou": mean,
        "versus": versus,
    }


def _paired_runs(counts, resamples, level, best):
    """Check :func:`paired_difference`'s arguments; return ``(names, seeds, runs, full)``:
    the variants, the seeds they all have, per variant and seed the ``(n, 2, C)`` float64
    ``[tp, union]`` of each image, and per variant the set mIoU of each seed on all images."""
    if not isinstance(counts, dict) or len(counts) < 2:
        raise ValueError(
            f"paired_difference needs {{variant: {{seed: counts}}}} with two variants or more. "
            f"Received: {_describe(counts)}"
        )
    if not (isinstance(resamples, (int, np.integer)) and resamples >= 1):
        raise ValueError(f"resamples must be a positive integer. Received: resamples={resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1). Received: level={level}")
    names = list(counts)
    if best is not None and best not in counts:
        raise ValueError(f"best must be one of the variants {names}. Received: best={best!r}")
    seeds = [s for s in counts[names[0]] if all(s in counts[v] for v in names[1:])]
    if not seeds:
        raise ValueError(
            "paired_difference: no seed is common to every variant. Received: "
            + ", ".join(f"{v}: seeds {list(counts[v])}" for v in names)
        )
    # runs[v][k]: (n, 2, C) [tp, union] of variant v, seed seeds[k], float64 (exact below 2**53).
    runs = {v: [_counts(counts[v][s], v, s) for s in seeds] for v in names}
    for k, s in enumerate(seeds):
        shapes = {v: np.shape(counts[v][s]) for v in names}
        if len(set(shapes.values())) > 1:
            raise ValueError(
                f"the runs of seed {s} must score the same images and classes. "
                f"Received: shapes {shapes}"
            )
    full = {v: np.array([_miou(*r.sum(0)) for r in runs[v]]) for v in names}
    for v in names:
        if np.isnan(full[v]).any():
            raise ValueError(
                f"every run needs a counted pixel. Received: variant {v!r} has none at seed(s) "
                f"{[s for s, m in zip(seeds, full[v]) if np.isnan(m)]}"
            )
    return names, seeds, runs, full


def _resample(rng, sizes, runs, resamples):
    """Per variant, ``(R, S)`` set mIoU on each seed's drawn images: the same image indices
    for every variant, and for every seed when the seeds have the same number of images."""
    shared = len(set(sizes)) == 1
    image_draws = {}
    for k in range(len(sizes)):
        if k and shared:
            image_draws[k] = image_draws[0]
        else:
            image_draws[k] = _multiplicities(rng, sizes[k], resamples)
    return {
        v: np.stack([_resampled_miou(image_draws[k], r[k]) for k in range(len(sizes))], axis=1)
        for v, r in runs.items()
    }


def behind_beyond_doubt(counts, **options):
    """The variants whose gap to the best is established (the interval of
    :func:`paired_difference` lies above 0): the ones pruning stops.

    Args:
        counts: As :func:`paired_difference`.
        **options: ``resamples``, ``seed``, ``level``, ``best``: as :func:`paired_difference`.

    Returns:
        A list of variant names, in the order of ``counts``.

    Example:
        >>> behind_beyond_doubt({"cce": {0: cce_counts}, "bce": {0: bce_counts}})
        ['bce']
    """
    versus = paired_difference(counts, **options)["versus"]
    return [v for v in counts if v in versus and versus[v]["established"]]


@dataclass(frozen=True)
class Noise:
    """The noise of one paired difference, as :func:`paired_difference` measures it.

    The rule's image part is the mean over the ``S`` seeds of each seed's resampled difference
    ``d*_s``. Part of its spread is **shared** by the seeds (they score the same validation
    images: an image one variant finds hard is hard at every seed), part is each seed's **own**
    (its model's luck on each image), which averages out over seeds. From the resamples, with
    ``V`` the mean variance of one seed's ``d*_s`` and ``C`` the mean covariance of two seeds'
    (clipped to ``[0, V]``): ``images_shared = √C``, ``images_own = √(V - C)``, so that the
    image part's variance with ``S'`` seeds is ``images_shared² + images_own² / S'`` (with
    ``S' = S`` exactly the variance of the rule's image part). One seed cannot tell the two
    apart: all of it counts as shared (it does not shrink with more seeds), and
    ``seed_spread`` is None.

    Attributes:
        seed_spread: ``ŝ``, the standard deviation over the seeds of ``d_s`` on all the images
            (the rule's Student's t part), or None with one seed (not measured).
        images_shared: Standard deviation of the image part shared by every seed.
        images_own: Standard deviation of one seed's own image part.

    Example:
        >>> Noise(seed_spread=0.02, images_shared=0.01, images_own=0.02).images(4)
        0.01414...
    """

    seed_spread: float | None
    images_shared: float
    images_own: float

    def images(self, seeds):
        """Standard deviation of the rule's image part with ``seeds`` seeds."""
        return math.sqrt(self.images_shared**2 + self.images_own**2 / seeds)


def detectable_difference(noise, seeds, level=0.95, power=POWER):
    """The smallest true mIoU gap the paired rule establishes with probability ``power``.

    The rule (:func:`paired_difference`) resamples the difference as ``D + W``,
    ``W = σ_I · Z + (ŝ / √S) · T``: ``Z`` standard normal (the images, ``σ_I`` =
    ``noise.images(S)``), ``T`` Student's t with ``S - 1`` degrees of freedom (the seeds; absent
    with one seed), and establishes the lead when ``D > q_c(W)``, ``c = (1 + level) / 2``. A
    rerun measuring ``Δ + W`` establishes a true gap ``Δ`` with probability ``power`` when::

        MDD = q_c(W) + q_power(W),
        q_p(W) ≈ √((z_p · σ_I)² + (t_{p, S-1} · ŝ / √S)²)

    the quantile of the sum taken as the root sum of squares of its parts' quantiles: exact
    when either part is 0; in between, with 2 degrees of freedom, ``q_c`` within 2.6 % and
    ``q_power`` within 8 % of the sum's own quantiles, and the ``MDD`` within 2 % (1 degree of
    freedom: 5 %, 15 % and 4 %; less with more). One seed: ``MDD = (z_c + z_power) · σ_I``
    = 2.80 ``σ_I`` (level 0.95, power 0.8), the images only. No image noise: ``(t_c + t_power) ·
    ŝ / √S`` = 5.36 ``ŝ / √3`` with 3 seeds. The rule's ``ŝ`` is itself uncertain, so with few
    seeds it establishes that gap a little less often than ``power`` (Student's noncentral t:
    77 % with 3 seeds, 73 % with 2), while ``ŝ`` also counting each run's image noise errs the
    other way. On simulated runs (tests/test_compare_statistics.py) the rule establishes the
    ``MDD`` in 75-85 % of cases from 3 seeds up, in 82 % with one seed when training adds no
    noise of its own (with run-level noise, which one seed cannot see, 74 %), and in 62 % with
    2 seeds.

    Args:
        noise: The :class:`Noise` of the difference.
        seeds: The number of seeds ``S`` of the run (its seed part counts when ``S >= 2`` and
            ``noise.seed_spread`` is not None).
        level: The rule's interval coverage. Defaults to 0.95.
        power: The probability of establishing the gap. Defaults to :data:`POWER` (0.8).

    Returns:
        A float, the gap in mIoU (0 when there is no noise).

    Example:
        >>> round(detectable_difference(Noise(None, 0.01, 0.0), seeds=1), 4)  # 2.80 · 0.01
        0.028
        >>> round(detectable_difference(Noise(0.02, 0.0, 0.0), seeds=3), 4)  # 5.36 · 0.02 / √3
        0.0619
    """
    if not (isinstance(seeds, (int, np.integer)) and seeds >= 1):
        raise ValueError(f"seeds must be a positive integer. Received: seeds={seeds}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1). Received: level={level}")
    _check_power(power)
    images = noise.images(seeds)
    spread = 0.0
    if noise.seed_spread is not None and seeds > 1:
        spread = noise.seed_spread / math.sqrt(seeds)
    return float(
        _sum_quantile((1 + level) / 2, images, spread, seeds - 1)
        + _sum_quantile(power, images, spread, seeds - 1)
    )


def seeds_needed(difference, noise, level=0.95, power=POWER, most=MOST_SEEDS):
    """The fewest seeds with which the paired rule establishes ``difference`` with probability
    ``power``.

    The smallest ``S'`` in ``3 .. most`` with ``detectable_difference(noise, S') <= difference``
    (:func:`detectable_difference`), the noise as measured: ``ŝ`` the same, the image part's
    variance ``images_shared² + images_own² / S'`` (:class:`Noise`), the validation images the
    same. Three seeds at least: with one the rule leaves the seeds' variation out, and the
    spread of two is itself so uncertain that the rule establishes the stated gap in about
    62 % of simulated cases, not 80 %. The shared image part does not shrink with seeds: a gap
    below ``(z_c + z_power) · images_shared`` needs more validation images, not more seeds.

    Args:
        difference: The gap to establish (the observed one), mIoU.
        noise: The :class:`Noise` measured with two seeds or more.
        level: The rule's interval coverage. Defaults to 0.95.
        power: The probability of establishing the gap. Defaults to :data:`POWER` (0.8).
        most: The most seeds considered. Defaults to :data:`MOST_SEEDS` (50).

    Returns:
        An int; ``math.inf`` when more than ``most`` seeds are needed; None when nothing can be
        said: ``difference`` is 0 or less, there is no noise (any gap is established), or
        ``noise.seed_spread`` is None (one seed measures no seed-to-seed spread).

    Example:
        >>> seeds_needed(0.03, Noise(seed_spread=0.02, images_shared=0.005, images_own=0.01))
        8
    """
    _check_power(power, most)
    if noise.seed_spread is None or not difference > 0:
        return None
    if noise.seed_spread == 0 and noise.images_shared == 0 and noise.images_own == 0:
        return None
    for count in range(3, most + 1):
        if detectable_difference(noise, count, level, power) <= difference:
            return count
    return math.inf


def _check_power(power, most=MOST_SEEDS):
    if not 0 < power < 1:
        raise ValueError(f"power must lie in (0, 1). Received: power={power}")
    if not (isinstance(most, (int, np.integer)) and most >= 3):
        raise ValueError(f"most_seeds must be an integer >= 3. Received: most_seeds={most}")


def _noise(per_seed, full):
    """The :class:`Noise` of one difference: ``per_seed`` its ``(R, S)`` resampled per-seed
    values, ``full`` its ``(S,)`` values on all the images."""
    per_seed = per_seed[np.isfinite(per_seed).all(1)]
    covariance = np.atleast_2d(np.cov(per_seed, rowvar=False))
    own = float(np.mean(np.diag(covariance)))
    if full.size == 1:
        return Noise(None, math.sqrt(own), 0.0)
    off = ~np.eye(full.size, dtype=bool)
    shared = float(np.clip(np.mean(covariance[off]), 0.0, own))
    return Noise(float(np.std(full, ddof=1)), math.sqrt(shared), math.sqrt(own - shared))


def _sum_quantile(p, images, spread, df):
    """The ``p`` quantile of ``images · Z + spread · T(df)`` as the root sum of squares of the
    parts' quantiles (signed: the parts are symmetric)."""
    size = math.hypot(images * _normal_quantile(p), spread * _t_quantile(p, df) if spread else 0)
    return math.copysign(size, p - 0.5)


@lru_cache(maxsize=None)
def _normal_quantile(p):
    """The standard normal's ``p`` quantile (the standard library's ``NormalDist``)."""
    return NormalDist().inv_cdf(p)


@lru_cache(maxsize=None)
def _t_quantile(p, df):
    """Student's t's ``p`` quantile with ``df`` (a positive integer) degrees of freedom, by
    bisection on the closed form of its distribution function in ``θ = atan(x / √df)``."""
    theta = _bisect(lambda angle: _t_cdf_angle(angle, df), p, -math.pi / 2, math.pi / 2)
    return math.sqrt(df) * math.tan(theta)


def _t_cdf_angle(theta, df):
    """``P(T <= √df · tan θ)``, T Student's t with ``df`` degrees of freedom (Abramowitz and
    Stegun 26.7.3 and 26.7.4: a finite series in ``cos² θ`` for an integer ``df``)."""
    sin, cos = math.sin(theta), math.cos(theta)
    if df % 2:
        term, series = cos, 0.0
        for k in range(1, (df - 1) // 2 + 1):
            series += term
            term *= cos * cos * (2 * k) / (2 * k + 1)
        inside = 2 / math.pi * (theta + sin * series)
    else:
        term, series = 1.0, 0.0
        for k in range(1, df // 2 + 1):
            series += term
            term *= cos * cos * (2 * k - 1) / (2 * k)
        inside = sin * series
    return (1 + inside) / 2


def _bisect(cdf, p, low, high):
    """The point where the increasing ``cdf`` reaches ``p`` in ``[low, high]``."""
    for _ in range(100):
        middle = (low + high) / 2
        if cdf(middle) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _multiplicities(rng, images, resamples):
    """How many times each image is drawn, per resample: float64 ``(R, n)`` (rows sum to n)."""
    draws = rng.integers(0, images, (resamples, images))
    offsets = (np.arange(resamples) * images)[:, None]
    flat = np.bincount((draws + offsets).ravel(), minlength=resamples * images)
    return flat.reshape(resamples, images).astype(np.float64)


def _resampled_miou(multiplicities, runs):
    """Set mIoU of each resample: ``(R, n) @ (n, 2C)`` sums of ``[tp, union]``, then the mean
    IoU."""
    sums = (multiplicities @ runs.reshape(runs.shape[0], -1)).reshape(-1, *runs.shape[1:])
    return _miou(sums[:, 0], sums[:, 1])


def _counts(values, variant, seed):
    array = np.asarray(values)
    if array.ndim != 3 or array.shape[1] != 3 or array.shape[0] < 1:
        raise ValueError(
            f"per-image counts must be (n_images, 3, C) with n_images >= 1. "
            f"Received: variant {variant!r}, seed {seed}: shape {array.shape}"
        )
    if array.dtype.kind not in "iu" or (array < 0).any():
        raise ValueError(
            f"per-image counts must be non-negative integers. Received: variant {variant!r}, "
            f"seed {seed}: dtype {array.dtype}, min {array.min()}"
        )
    array = array.astype(np.float64)
    return np.stack([array[:, 0], array.sum(1)], axis=1)


def _describe(counts):
    if isinstance(counts, dict):
        return f"variants {list(counts)}"
    return f"{type(counts).__name__}"
