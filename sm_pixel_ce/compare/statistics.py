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
"""

import numpy as np

__all__ = ["behind_beyond_doubt", "paired_difference", "set_miou"]


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


def paired_difference(counts, resamples=1000, seed=0, level=0.95, best=None):
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

    Returns:
        A dict: ``best``; ``seeds`` (used); ``images`` (``{seed: n}``); ``resamples``;
        ``images_only`` (one seed: the interval covers the images only); ``miou``
        (``{variant: mean set mIoU over the seeds}``); ``versus``
        (``{other: {"difference", "low", "high", "win_share", "established"}}``): the mean over
        seeds of ``set mIoU(best) - set mIoU(other)``, its ``level`` percentile interval, the
        share of resamples in which the best is ahead (difference > 0), and whether the
        interval lies above 0.

    Raises:
        ValueError: fewer than two variants, no seed common to all, runs of a seed whose shapes
            differ, a run with no counted pixel, or an option out of range.

    Example:
        >>> stats = paired_difference({"cce": {0: cce_0, 1: cce_1}, "cce-dice": {0: d_0, 1: d_1}})
        >>> stats["best"], stats["versus"]["cce"]["low"] > 0
        ('cce-dice', True)
    """
    names, seeds, runs, full = _paired_runs(counts, resamples, level, best)
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
        differences = (resampled[best] - resampled[other]).mean(1)
        if t is not None:
            spread = np.std(full[best] - full[other], ddof=1)
            differences = differences + t * spread / np.sqrt(len(seeds))
        finite = differences[np.isfinite(differences)]
        low, high = np.percentile(finite, [tail, 100 - tail])
        versus[other] = {
            "difference": mean[best] - mean[other],
            "low": float(low),
            "high": float(high),
            "win_share": float(np.mean(finite > 0)),
            "established": bool(low > 0),
        }
    return {
        "best": best,
        "seeds": list(seeds),
        "images": {s: n for s, n in zip(seeds, sizes)},
        "resamples": int(resamples),
        "images_only": len(seeds) == 1,
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
