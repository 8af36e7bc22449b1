"""``--prune``: successive halving over the variants of ``compare``.

Every run is trained in phases that end at the scoring epochs, ``ceil(E/4)`` and ``ceil(E/2)``
of ``E`` (those below ``E``; ``E`` = 10: 3 and 5). After a phase, when every seed of every
variant has reached the epoch, the variants behind the best beyond doubt
(:func:`~sm_pixel_ce.compare.statistics.behind_beyond_doubt`: the paired bootstrap interval of
the mIoU difference excludes 0) stop there; the others continue from their checkpoint (the
weights, Adam's state and the data order: a survivor's numbers equal those of a run without
``--prune``). A stopped run's ``result.json`` holds the scores of the epoch it stopped at, with
``stopped_at``, ``epochs_planned`` and ``stopped_because``; ``prune.json`` holds every decision.
"""

import math
import os

from .experiment import Task, dispatch
from .layout import write_json
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


def run_pruned(data, options, folder, todo, finished, log):
    """Train the runs ``todo`` in phases, stopping the variants behind beyond doubt.

    Args:
        data: A :class:`~sm_pixel_ce.compare.experiment.Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions` (``prune`` set).
        folder: The :class:`~sm_pixel_ce.compare.layout.OutputFolder`.
        todo: :class:`~sm_pixel_ce.compare.experiment.Task` of the runs not finished.
        finished: ``{(variant, seed): result}`` of the runs finished before (``--resume``);
            their ``image_counts_at`` take part in the decisions.
        log: Function printing one line.

    Returns:
        ``{(variant, seed): result}`` of the runs in ``todo``.
    """
    epochs = options.epochs
    active = list(todo)
    results, decisions, start = {}, [], 0
    for stop in prune_epochs(epochs) + [epochs]:
        if not active:
            break
        tasks = [Task(t.variant, t.seed, t.first, (start, stop), t.spec) for t in active]
        for task, result in zip(tasks, dispatch(data, options, folder, tasks, log)):
            before = results.get((task.variant, task.seed), {}).get("image_counts_at")
            if before:
                result["image_counts_at"] = before
            results[task.variant, task.seed] = result
        if stop == epochs:  # the counts of the scoring epochs join result.json
            for task in active:
                _finish(folder.run(task.variant, task.seed), results[task.variant, task.seed])
            break
        for task in active:
            result = results[task.variant, task.seed]
            result["image_counts_at"] = {
                **result.get("image_counts_at", {}),
                str(stop): result.get("image_counts"),
            }
        counts = _counts_at(stop, options, {**finished, **results})
        if counts is None:
            log(f"  --prune: epoch {stop}: some runs have no per-image counts; none stopped")
            start = stop
            continue
        decision = decide(counts, stop)
        decisions.append(decision)
        write_json(folder.prune, {"epochs": epochs, "decisions": decisions})
        for name in decision["stopped"]:
            row = decision["versus"][name]
            log(
                f"  --prune: {name} stops at epoch {stop} of {epochs}: behind {decision['best']} "
                f"by {row['difference']:.3f} mIoU (95 % interval {row['low']:.3f} .. "
                f"{row['high']:.3f})"
            )
        survivors = []
        for task in active:
            if task.variant not in decision["stopped"]:
                survivors.append(task)
                continue
            row = decision["versus"][task.variant]
            result = results[task.variant, task.seed]
            result.update(
                stopped_at=stop,
                epochs_planned=epochs,
                stopped_because={
                    "best": decision["best"],
                    **{key: row[key] for key in ("difference", "low", "high")},
                },
            )
            _finish(folder.run(task.variant, task.seed), result)
        active, start = survivors, stop
    return results


def _counts_at(epoch, options, results):
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


def _finish(run, result):
    """A run stopped or trained to the end: its result written as finished, its checkpoint
    removed (a Ray task's comes back with its files)."""
    write_json(run.result, result)
    for leftover in (run.checkpoint, run.phase):
        if os.path.exists(leftover):
            os.remove(leftover)
