"""``--budget MINUTES``: the grid of ``compare`` (seeds, epochs, ``--prune``) planned to end within
a time budget, on the time per epoch measured on this data, model and machine.

Before the runs, a probe trains the first run (``--jobs N``: the first N, at once) for one epoch,
the way the runs will execute (in a fresh process each by default), in a temporary folder that
is then removed: its wall time gives the cost of a run besides its epochs (a process start,
importing TensorFlow, building the model, tracing the step, saving and reloading the model), and
its epoch, without the first batch's tracing, the seconds per epoch. :func:`plan_grid` (pure: no
training, no clock) then chooses the largest grid whose predicted time fits, in this order:

1. every epoch asked, the most seeds that fit, at least 2 (the paired statistics measure the
   spread across seeds from 2 seeds up), ``--prune`` switched on if that lets more seeds fit;
2. still 2 seeds and at least half the epochs asked: the most epochs that fit (``--prune`` on if
   it lets more fit);
3. one seed, the most epochs that fit: a run cut below half its epochs compares early learning,
   not the losses, so one seed of more epochs beats two of fewer.

The variants are never dropped: which of them to compare is the question asked. When not even
one seed of one epoch fits, ``compare`` stops before training with one line naming the budget
that would. With ``--resume`` the runs finished in the folder count as done (they cost nothing),
and the epochs and ``--prune`` are those of the folder's runs (they are part of what a finished
run holds): only the seeds are planned.

How much ``--prune`` saves depends on results not yet seen, so the plan bounds both ends: with
``--prune`` on, the grid fits the budget if every variant but the best stops at the first
scoring epoch, and runs at most :data:`PRUNE_MARGIN` (20 %) past the budget if none stops.
Without ``--prune`` the prediction fits the budget. Predictions rest on one probe on a machine
whose load may change, and variants differ in speed a little (Lovász sorts every image's
errors): the log and the report give the prediction, so that a reader can compare it with the
wall time.
"""

import dataclasses
import json
import math
import os
import tempfile
import time

from .experiment import Task
from .layout import OutputFolder
from .prune import prune_epochs
from .scheduling import CompareInterrupted, Executor
from .training import stop_on_ctrl_c

#: With ``--prune``, how far past the budget the grid may run if ``--prune`` stops no variant.
PRUNE_MARGIN = 0.2
#: The cost of a ``--prune`` phase after a run's first, besides its epochs, as a share of a
#: run's. A variant's process keeps its traced model across phases (``parallel.WorkerPool``), so
#: a later phase costs a weight swap and a new dataset (about 3 s) unless its process had to end
#: (more variants than ``--jobs``); 1.0, a whole run's start, errs on the safe side of the budget.
PHASE_SHARE = 1.0
#: Seconds left for the report at the end (pictures, ``predictions.npz``, ``report.md``).
REPORT_SECONDS = 15.0


@dataclasses.dataclass(frozen=True)
class Timing:
    """What a run costs, as measured by :func:`measure`.

    Attributes:
        epoch_seconds: One epoch of one run: its training and its validation pass.
        run_seconds: What a run costs besides its epochs (process start, model, tracing,
            saving and reloading).
        phase_seconds: What each ``--prune`` phase after a run's first costs besides its epochs.
        jobs: Runs that train at once (``--jobs``); the times above are each run's while they do.
    """

    epoch_seconds: float
    run_seconds: float
    phase_seconds: float
    jobs: int = 1


@dataclasses.dataclass(frozen=True)
class Plan:
    """The grid :func:`plan_grid` chose, and why.

    Attributes:
        seeds, epochs, prune: The grid to run.
        asked: ``{"seeds", "epochs", "prune"}`` as asked.
        budget_seconds: The budget.
        spent_seconds: Spent before the runs (reading, counting, the probe).
        predicted_seconds: The whole ``compare``'s predicted wall time; with ``--prune``, if
            every variant but the best stops at the first scoring epoch.
        worst_seconds: With ``--prune``, the predicted wall time if it stops none; else equal
            to ``predicted_seconds``.
        timing: The :class:`Timing` it was planned on.
        finished: Runs of the grid finished before (``--resume``), which cost nothing.
    """

    seeds: int
    epochs: int
    prune: bool
    asked: dict
    budget_seconds: float
    spent_seconds: float
    predicted_seconds: float
    worst_seconds: float
    timing: Timing
    finished: int = 0

    @property
    def dropped(self):
        """The seeds and epochs the plan dropped, in words ("nothing" when it kept them)."""
        changes = [
            f"{key} {self.asked[key]} -> {value}"
            for key, value in (("seeds", self.seeds), ("epochs", self.epochs))
            if value != self.asked[key]
        ]
        return ", ".join(changes) or "nothing"

    @property
    def prune_switched_on(self):
        """Whether the plan turned ``--prune`` on (it was not asked)."""
        return self.prune and not self.asked["prune"]

    def line(self, minutes):
        """The log's line: the grid, what was dropped, the measured times and the prediction."""
        timing, asked = self.timing, self.asked
        points = prune_epochs(self.epochs) if self.prune else []
        return (
            f"--budget {minutes:g} min: {self.seeds} seed(s) x {self.epochs} epoch(s)"
            + (f", --prune scoring at epoch(s) {', '.join(map(str, points))}" if points else "")
            + f" (asked {asked['seeds']} x {asked['epochs']}; dropped: {self.dropped}"
            + ("; --prune switched on" if self.prune_switched_on else "")
            + f"); measured {timing.epoch_seconds:.1f} s per epoch and "
            f"{timing.run_seconds:.0f} s per run besides"
            + (f", {timing.jobs} at once" if timing.jobs > 1 else "")
            + f"; predicted {self.predicted_seconds / 60:.1f} min"
            + (
                f" (up to {self.worst_seconds / 60:.1f} min if --prune stops no variant)"
                if self.worst_seconds > self.predicted_seconds
                else ""
            )
        )

    def as_dict(self, minutes):
        """The report's ``budget`` section (JSON-ready)."""
        return {
            "minutes": minutes,
            "asked": dict(self.asked),
            "planned": {
                "seeds": self.seeds,
                "epochs": self.epochs,
                "prune": self.prune,
                "prune_epochs": prune_epochs(self.epochs) if self.prune else [],
            },
            "dropped": self.dropped,
            "prune_switched_on": self.prune_switched_on,
            "seconds_per_epoch": self.timing.epoch_seconds,
            "seconds_per_run": self.timing.run_seconds,
            "seconds_per_prune_phase": self.timing.phase_seconds,
            "jobs": self.timing.jobs,
            "spent_seconds": self.spent_seconds,
            "predicted_seconds": self.predicted_seconds,
            "worst_seconds": self.worst_seconds,
            "prune_margin": PRUNE_MARGIN if self.prune else 0.0,
            "finished_before": self.finished,
        }


def grid_seconds(timing, variants, seeds, epochs, prune=False, done=(), all_but_one_stop=False):
    """Predicted seconds to train a grid of ``variants`` x ``seeds`` runs of ``epochs`` epochs.

    Runs train ``timing.jobs`` at a time; with ``prune``, in phases that end at
    :func:`~sm_pixel_ce.compare.prune.prune_epochs`, every run of a phase before the next.

    Args:
        timing: A :class:`Timing`.
        variants: Number of variants.
        seeds: Seeds per variant.
        epochs: Epochs per run.
        prune: Train in ``--prune``'s phases. Defaults to False.
        done: Runs already finished per seed, ``done[k]`` of the k-th seed (``--resume``).
            Defaults to none.
        all_but_one_stop: With ``prune``, after the first phase only the best variant's runs
            continue; else every run does (``--prune`` stops none). Defaults to False.

    Returns:
        Seconds.

    Example:
        >>> grid_seconds(Timing(10.0, 20.0, 20.0), variants=2, seeds=3, epochs=4)
        360.0
    """
    todo = sum(variants - (done[k] if k < len(done) else 0) for k in range(seeds))
    bounds = [0, *(prune_epochs(epochs) if prune else []), epochs]
    total = 0.0
    for phase, (start, stop) in enumerate(zip(bounds, bounds[1:])):
        active = todo if phase == 0 or not all_but_one_stop else min(todo, seeds)
        overhead = timing.run_seconds if phase == 0 else timing.phase_seconds
        total += math.ceil(active / timing.jobs) * (
            overhead + (stop - start) * timing.epoch_seconds
        )
    return total


def plan_grid(
    budget_seconds,
    timing,
    variants,
    seeds,
    epochs,
    prune=False,
    spent_seconds=0.0,
    done=(),
    fixed=False,
):
    """The largest grid that ends within ``budget_seconds`` (see the module's policy).

    Args:
        budget_seconds: The whole ``compare``'s budget.
        timing: The measured :class:`Timing`.
        variants: Number of variants (never dropped).
        seeds, epochs, prune: The grid asked.
        spent_seconds: Spent before the runs (reading, counting, the probe). Defaults to 0.
        done: Runs finished per seed (``--resume``), which cost nothing. Defaults to none.
        fixed: Keep ``epochs`` and ``prune`` (a ``--resume`` folder's); plan the seeds only.
            Defaults to False.

    Returns:
        A :class:`Plan`.

    Raises:
        ValueError: Not even one seed of one epoch (of ``epochs`` when ``fixed``) fits; the
            message names the budget that would.

    Example:
        >>> plan = plan_grid(600, Timing(10.0, 20.0, 20.0), variants=2, seeds=3, epochs=10)
        >>> plan.seeds, plan.epochs, plan.prune
        (2, 10, False)
    """
    fixed_cost = spent_seconds + REPORT_SECONDS
    asked = {"seeds": seeds, "epochs": epochs, "prune": bool(prune)}
    epoch_choices = [epochs] if fixed else range(1, epochs + 1)
    candidates = []
    for e in epoch_choices:
        can_prune = variants >= 2 and bool(prune_epochs(e))
        for p in {bool(prune)} if fixed or not can_prune else {bool(prune), True}:
            for s in range(1, seeds + 1):
                best = fixed_cost + grid_seconds(timing, variants, s, e, p, done, p and can_prune)
                worst = fixed_cost + grid_seconds(timing, variants, s, e, p, done)
                limit = budget_seconds * (1 + PRUNE_MARGIN) if p and can_prune else budget_seconds
                if best <= budget_seconds and worst <= limit:
                    candidates.append((s, e, p, best, worst))
    if not candidates:
        e = epochs if fixed else 1
        seconds = fixed_cost + grid_seconds(timing, variants, 1, e, prune, done)
        needed = math.ceil(seconds / 6) / 10  # minutes, rounded up to a tenth
        raise ValueError(
            f"--budget {budget_seconds / 60:g} min cannot hold even 1 seed of {e} epoch(s) of "
            f"the {variants} variant(s): that takes about {needed:g} min here "
            f"({timing.epoch_seconds:.1f} s per epoch and {timing.run_seconds:.0f} s per run "
            f"besides, measured; {spent_seconds:.0f} s spent before the runs). Pass --budget "
            f"{needed:g} or more, or fewer --variants."
        )
    two = min(2, seeds)
    half = math.ceil(epochs / 2)

    def preference(candidate):
        s, e, p, _, _ = candidate
        return (s >= two and e >= half, e == epochs, e, s, p == bool(prune))

    s, e, p, best, worst = max(candidates, key=preference)
    return Plan(
        seeds=s,
        epochs=e,
        prune=p,
        asked=asked,
        budget_seconds=float(budget_seconds),
        spent_seconds=float(spent_seconds),
        predicted_seconds=best,
        worst_seconds=worst,
        timing=timing,
        finished=sum(done[:s]),
    )


def kept_by_folder(options, folder, resume):
    """``options`` with the epochs and ``--prune`` of the runs a ``--resume`` folder holds
    (they are part of its run configuration, so the plan keeps them); ``(options, kept)``."""
    if not resume or not os.path.isfile(folder.run_config):
        return options, False
    with open(folder.run_config) as f:
        before = json.load(f)
    kept = {k: before[k] for k in ("epochs", "prune") if k in before}
    return dataclasses.replace(options, **kept), True


def measure(data, options, counts, tasks, log):
    """Train the first run of ``tasks`` (the first ``options.jobs``, at once) for one epoch, as
    the runs will train, in a temporary folder; return the :class:`Timing` it shows.

    Args:
        data: A :class:`~sm_pixel_ce.compare.splitting.Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        counts: The training masks' :class:`~sm_pixel_ce.class_weights.ClassPixels`.
        tasks: The :class:`~sm_pixel_ce.compare.experiment.Task` objects left to train.
        log: Function printing one line.

    Returns:
        A :class:`Timing`.
    """
    probe = dataclasses.replace(
        options, epochs=1, prune=False, budget=None, predictions="sample", ray=None
    )
    first = tasks[: options.jobs]
    log(
        "  --budget: timing one epoch of "
        + ", ".join(f"{t.variant} seed {t.seed}" for t in first)
        + (" at once" if len(first) > 1 else "")
    )
    quiet = lambda line: None  # noqa: E731 - the probe's own lines would read as the runs'
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        # Where the grid's runs will train (here, or in processes), the probe trains; not on Ray.
        where = Executor(data, probe, OutputFolder(root), counts, len(tasks), quiet, progress=False)
        with where:
            results = where.run(first)
        wall = time.perf_counter() - started  # one wave: the probes train at once
    steps = options.steps_per_epoch or math.ceil(len(data.train) / options.batch_size)
    epoch = max(epoch_seconds(r, steps) for r in results)
    run = max(0.0, wall - epoch)
    return Timing(epoch, run, PHASE_SHARE * run, options.jobs)


def epoch_seconds(result, steps):
    """One epoch's seconds from a one-epoch run's result: its training without the first
    batch's tracing, scaled back to ``steps`` batches, and its validation pass.

    Example:
        >>> epoch_seconds({"epoch_seconds": [12.0], "first_batch_seconds": [9.0],
        ...                "validation_seconds": [1.0]}, steps=4)
        5.0
    """
    train, first = result["epoch_seconds"][0], result["first_batch_seconds"][0]
    steady = (train - first) * steps / (steps - 1) if steps > 1 else train
    return steady + result["validation_seconds"][0]


def fit_budget(data, options, folder, counts, spent_seconds, resume, kept, log):
    """Measure, plan, and return ``(options of the planned grid, Plan)``.

    Args:
        data: A :class:`~sm_pixel_ce.compare.splitting.Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions` with ``budget``.
        folder: The :class:`~sm_pixel_ce.compare.layout.OutputFolder`.
        counts: The training masks' :class:`~sm_pixel_ce.class_weights.ClassPixels`.
        spent_seconds: Seconds the ``compare`` has taken so far.
        resume: ``--resume``: the runs finished in ``folder`` count as done.
        kept: The epochs and ``--prune`` are a resumed folder's (see :func:`kept_by_folder`).
        log: Function printing one line.

    Returns:
        ``(options, plan)``.

    Raises:
        ValueError: Not even the smallest grid fits (:func:`plan_grid`).
        CompareInterrupted: Ctrl-C during the probe.
    """
    finished = set(folder.finished_runs()) if resume else set()
    names = [v.name for v in options.variant_list]
    done = [sum((n, s) in finished for n in names) for s in options.seed_list]
    tasks = [
        Task(v.name, s, k == 0, spec=spec)
        for k, s in enumerate(options.seed_list)
        for spec, v in zip(options.variants, options.variant_list)
        if (v.name, s) not in finished
    ]
    started = time.perf_counter()
    if tasks:
        try:
            with stop_on_ctrl_c():
                timing = measure(data, options, counts, tasks, log)
        except KeyboardInterrupt:
            missing = [(t.variant, t.seed) for t in tasks]
            raise CompareInterrupted(folder.root, sorted(finished), missing) from None
    else:
        timing = Timing(0.0, 0.0, 0.0, options.jobs)
    plan = plan_grid(
        options.budget * 60,
        timing,
        len(names),
        options.seeds,
        options.epochs,
        options.prune,
        spent_seconds + time.perf_counter() - started,
        done,
        fixed=kept,
    )
    log(plan.line(options.budget))
    planned = dataclasses.replace(options, seeds=plan.seeds, epochs=plan.epochs, prune=plan.prune)
    return planned, plan
