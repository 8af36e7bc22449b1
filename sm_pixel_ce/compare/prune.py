"""``--prune``: successive halving over the variants of ``compare``.

Every run is trained in phases that end at the scoring epochs, ``ceil(E/4)`` and ``ceil(E/2)``
of ``E`` (those below ``E``; ``E`` = 10: 3 and 5). After a phase, when every seed of every
variant has reached the epoch, the variants behind the best beyond doubt
(:func:`~sm_pixel_ce.compare.statistics.behind_beyond_doubt`: the paired bootstrap interval of
the mIoU difference excludes 0) stop there; the others continue from their checkpoint (the
weights, Adam's state and the data order: a survivor's numbers equal those of a run without
``--prune``). A stopped run's ``result.json`` holds the scores of the epoch it stopped at, with
``stopped_at``, ``epochs_planned`` and ``stopped_because``; ``prune.json`` holds every decision.

This module decides; :mod:`~sm_pixel_ce.compare.scheduling` trains the phases.
"""

import math

from .statistics import paired_difference


def prune_epochs(epochs):
    """The scoring epochs (1-based) of a run of ``epochs`` epochs: ``ceil(E/4)`` and
    ``ceil(E/2)``, those below ``E``, in order.

    Example:
        >>> prune_epochs(10), prune_epochs(2), prune_epochs(1)
        ([3, 5], [1], [])
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; received {epochs}.")
    return sorted({math.ceil(epochs / 4), math.ceil(epochs / 2)} - {epochs})


def decide(counts, epoch):
    """The decision at ``epoch``: which variants stop, against which best.

    Args:
        counts: ``{variant: {seed: (n_images, 3, C) counts}}`` of every run at ``epoch``.
        epoch: The scoring epoch (1-based).

    Returns:
        ``{"epoch", "best", "stopped": [names], "versus": paired_difference's "versus"}``.
    """
    if len(counts) < 2:
        return {"epoch": epoch, "best": next(iter(counts), None), "stopped": [], "versus": {}}
    compared = paired_difference(counts)
    versus = compared["versus"]
    stopped = [v for v in counts if v in versus and versus[v]["established"]]
    return {"epoch": epoch, "best": compared["best"], "stopped": stopped, "versus": versus}


def counts_at(epoch, options, results):
    """``{variant: {seed: counts at epoch}}`` of the variants not stopped before ``epoch``, or
    None when one of their runs lacks them (a run written before per-image counts)."""
    counts = {}
    for variant in options.variant_list:
        runs = [results.get((variant.name, seed)) for seed in options.seed_list]
        if any(r and r.get("stopped_at", epoch) < epoch for r in runs):
            continue
        values = [r and r.get("image_counts_at", {}).get(str(epoch)) for r in runs]
        if any(v is None for v in values):
            return None
        counts[variant.name] = dict(zip(options.seed_list, values))
    return counts
