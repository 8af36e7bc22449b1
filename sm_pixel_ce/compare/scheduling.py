"""The fourth step of ``compare``: decide which runs are left to train, and how each executes.

Every (variant, seed) run not finished in the output folder becomes a
:class:`~sm_pixel_ce.compare.experiment.Task`; :func:`schedule` runs them through one call path,
:func:`_execute`, which calls :func:`~sm_pixel_ce.compare.experiment.train_task` in a fresh process
per run (one at a time, or ``--jobs`` at once; here for a single run or with ``--in-process``),
or as Ray tasks (``--ray``), see
:mod:`~sm_pixel_ce.compare.parallel`. With ``--prune`` the tasks are cut into phases that end at
the scoring epochs, each variant's model compiled once for all its phases and seeds (in a
process per variant, or here; :class:`_Phases`), and the variants behind beyond doubt stop
(:mod:`~sm_pixel_ce.compare.prune` decides which).
"""

import json
import os

from . import parallel
from .experiment import (
    Task,
    forget_initial_weights,
    load_checkpoint,
    save_stopped,
    train_task,
)
from .layout import OutputFolder, write_json
from .options import option_defaults
from .prune import counts_at, decide, prune_epochs
from .training import forget_models, stop_on_ctrl_c

# run_config key -> how the difference is named when --resume meets another configuration.
_CONFIG_NAMES = {
    "data": "--data",
    "files": "the image/mask pairs used (names, order or count)",
    "keras": "the Keras flavour (TF_USE_LEGACY_KERAS)",
}


class CompareInterrupted(Exception):
    """Ctrl-C stopped :func:`~sm_pixel_ce.compare.job.run_compare`; every run finished before
    it is saved.

    Attributes:
        out: The output folder.
        finished: ``(variant, seed)`` of the runs saved there.
        missing: ``(variant, seed)`` of the runs asked for and not finished.
    """

    def __init__(self, out, finished, missing):
        self.out, self.finished, self.missing = out, finished, missing
        saved = ", ".join(f"{v} seed {s}" for v, s in finished) or "none"
        super().__init__(f"interrupted; finished runs saved in {OutputFolder(out).runs}: {saved}")


def claim(folder, run_config, resume):
    """Refuse a folder whose finished runs would be lost or mixed with another configuration;
    then record this run's configuration there.

    Args:
        folder: The :class:`~sm_pixel_ce.compare.layout.OutputFolder`.
        run_config: :meth:`~sm_pixel_ce.compare.options.CompareOptions.run_config` of this run.
        resume: Keep the finished runs (``--resume``).

    Raises:
        ValueError: Finished runs without ``resume``, or of another configuration.

    Example:
        >>> claim(OutputFolder("results"), options.run_config(description, files), False)
    """
    out = folder.root
    done = folder.finished_runs()
    if done and not resume:
        raise ValueError(
            f"--out {out} already holds {len(done)} finished run(s); pass --resume to keep them "
            "and train only the missing ones, or choose another --out."
        )
    if resume and os.path.isfile(folder.run_config):
        with open(folder.run_config) as f:
            # An option added since the folder was written had its default there.
            before = {**option_defaults(), **json.load(f)}
        differences = [
            f"{_CONFIG_NAMES.get(key, '--' + key.replace('_', '-'))} "
            f"{before.get(key)!r} there, {value!r} here"
            for key, value in run_config.items()
            if before.get(key) != value
        ]
        if differences:
            raise ValueError(
                f"--resume: {out} was run with another configuration: "
                + "; ".join(differences)
                + ". Resume with the same options, or choose another --out."
            )
    os.makedirs(out, exist_ok=True)
    write_json(folder.run_config, run_config)


def schedule(data, options, folder, counts, log=print):
    """Train every variant ``options.seeds`` times, each finished run written to its
    :class:`~sm_pixel_ce.compare.layout.RunFolder` at once; runs already finished in ``folder``
    are not trained again.

    Args:
        data: A :class:`~sm_pixel_ce.compare.splitting.Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        folder: The :class:`~sm_pixel_ce.compare.layout.OutputFolder`.
        counts: The training masks' :class:`~sm_pixel_ce.class_weights.ClassPixels`.
        log: Function printing one line. Defaults to print.

    Returns:
        ``runs``: ``runs[name]`` (a variant's file-safe name) is the list of per-seed result
        dicts, in seed order.

    Raises:
        CompareInterrupted: Ctrl-C, at the next batch; the runs finished before are saved.

    Example:
        >>> runs = schedule(held_out, CompareOptions(), OutputFolder("results"), counts)
        >>> list(runs)
        ['cce', 'bce']
    """
    try:
        with stop_on_ctrl_c():
            finished = _run_all(data, options, folder, counts, log)
    except KeyboardInterrupt:
        done = folder.finished_runs()
        wanted = [(v.name, s) for s in options.seed_list for v in options.variant_list]
        missing = [r for r in wanted if r not in done]
        raise CompareInterrupted(folder.root, done, missing) from None
    return {
        v.name: [finished[v.name, seed] for seed in options.seed_list] for v in options.variant_list
    }


def _run_all(data, options, folder, counts, log):
    """``{(variant, seed): result}`` of every run, those finished before read back."""
    os.makedirs(folder.runs, exist_ok=True)
    forget_initial_weights()
    finished, todo = {}, []
    for k, seed in enumerate(options.seed_list):
        for spec, variant in zip(options.variants, options.variant_list):
            done = folder.run(variant.name, seed).load_result()
            if done is not None:
                log(f"[{variant.name}] seed {seed}: already in {folder.root}, not trained again")
                finished[variant.name, seed] = done
            else:
                todo.append(Task(variant.name, seed, k == 0, spec=spec))
    if options.prune:
        finished.update(_run_pruned(data, options, folder, counts, todo, finished, log))
    else:
        results = _execute(data, options, folder, counts, todo, log)
        finished.update(((t.variant, t.seed), r) for t, r in zip(todo, results))
    return finished


def _execute(data, options, folder, counts, tasks, log):
    """Run :func:`~sm_pixel_ce.compare.experiment.train_task` for every task: here, in
    processes or on Ray, as the options say; the results in the order of ``tasks``."""
    root = folder.root
    if options.ray is not None:
        # A phase's state is read here and sent: the task's folder is not this one.
        states = [
            load_checkpoint(folder.run(t.variant, t.seed).checkpoint)
            if t.epochs and t.epochs[0]
            else None
            for t in tasks
        ]
        return parallel.run_on_ray(
            train_task,
            [(data, options, root, t, counts, s, False) for t, s in zip(tasks, states)],
            root,
            options.ray,
            gpus_per_run=options.gpus_per_run,
            threads=options.threads_per_run,
            log=log,
            root_argument=2,
            last=lambda path: os.path.basename(path) == "result.json",
        )
    if in_this_process(options, len(tasks)):
        return [train_task(data, options, root, t, counts, log=log) for t in tasks]
    return parallel.run_in_processes(
        train_task,
        [(data, options, root, t, counts, None, False) for t in tasks],
        options.jobs,
        threads=options.threads_per_run,
        log=log,
    )


def in_this_process(options, count):
    """Whether ``count`` tasks train in this process, one after another: with ``--in-process``,
    or when there is one (with ``--jobs 1``, no ``--threads-per-run``). Otherwise each task
    trains in a fresh process (:func:`~sm_pixel_ce.compare.parallel.run_in_processes`), which
    keeps memory flat over any number of runs: TensorFlow holds on to about the size of a
    trained model and its optimizer (0.3 GB for a ResNet-18 U-Net with Adam) for every model it
    has trained with ``fit``, until its process ends, even after ``keras.backend.clear_session()``
    and with no Python object left.

    Example:
        >>> in_this_process(CompareOptions(), 1), in_this_process(CompareOptions(), 2)
        (True, False)
    """
    if options.in_process:
        return True
    return options.jobs == 1 and options.threads_per_run is None and count <= 1


class _Phases:
    """Executes ``--prune``'s phases. Each variant's model is built, compiled and traced once
    and kept for all its phases and seeds (a phase sets the seed's weights, optimizer state
    and data order into it: :func:`~sm_pixel_ce.compare.training.kept_model`): here (with
    ``--in-process``, or for a single run), or in a process per variant, up to ``--jobs`` at
    once (:class:`~sm_pixel_ce.compare.parallel.WorkerPool`: a variant without a process
    takes the slot of one whose variant has nothing left in the phase, which ends). With
    ``--ray`` every phase is a task of its own, as :func:`_execute` runs it."""

    def __init__(self, data, options, folder, counts, runs, log):
        self.data, self.options, self.root, self.counts = data, options, folder.root, counts
        self.log = log
        self.here = options.ray is None and in_this_process(options, runs)
        self.pool = None
        if options.ray is None and not self.here:
            self.pool = parallel.WorkerPool(options.jobs, threads=options.threads_per_run)
        self.folder = folder

    def run(self, tasks):
        """The results of ``tasks``, in their order."""
        data, options, root, counts = self.data, self.options, self.root, self.counts
        if self.here:
            return [
                train_task(data, options, root, t, counts, keep=True, log=self.log) for t in tasks
            ]
        if self.pool is None:
            return _execute(data, options, self.folder, counts, tasks, self.log)
        calls = [(t.variant, (data, options, root, t, counts, None, False, True)) for t in tasks]
        return self.pool.run(train_task, calls, self.log)

    def release(self, variants):
        """Nothing more to train for ``variants``: their processes end."""
        if self.pool is not None:
            self.pool.release(variants)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.close(now=exc[0] is not None)
        forget_models()


def _run_pruned(data, options, folder, counts, todo, finished, log):
    """Train the runs ``todo`` in phases, stopping the variants behind beyond doubt (see
    :mod:`~sm_pixel_ce.compare.prune`); ``finished``: the runs finished before (``--resume``),
    whose ``image_counts_at`` take part in the decisions. Returns ``{(variant, seed): result}``
    of the runs in ``todo``."""
    epochs = options.epochs
    active = list(todo)
    results, decisions, start = {}, [], 0
    with _Phases(data, options, folder, counts, len(todo), log) as phases:
        for stop in prune_epochs(epochs) + [epochs]:
            if not active:
                break
            tasks = [Task(t.variant, t.seed, t.first, (start, stop), t.spec) for t in active]
            for task, result in zip(tasks, phases.run(tasks)):
                before = results.get((task.variant, task.seed), {}).get("image_counts_at")
                if before:
                    result["image_counts_at"] = before
                results[task.variant, task.seed] = result
            if stop == epochs:  # the counts of the scoring epochs join result.json
                for task in active:
                    folder.run(task.variant, task.seed).finish(results[task.variant, task.seed])
                break
            for task in active:
                result = results[task.variant, task.seed]
                result["image_counts_at"] = {
                    **result.get("image_counts_at", {}),
                    str(stop): result.get("image_counts"),
                }
            at_stop = counts_at(stop, options, {**finished, **results})
            if at_stop is None:
                log(f"  --prune: epoch {stop}: some runs have no per-image counts; none stopped")
                start = stop
                continue
            decision = decide(at_stop, stop)
            decisions.append(decision)
            write_json(folder.prune, {"epochs": epochs, "decisions": decisions})
            phases.release(decision["stopped"])
            active = _stop_behind(decision, active, results, (data, options, folder, counts), log)
            start = stop
    return results


def _stop_behind(decision, active, results, run, log):
    """Finish the runs of the variants ``decision`` stops, with why (their models saved from
    their checkpoints, ``run``: ``(data, options, folder, counts)``); return the others."""
    data, options, folder, counts = run
    stop, epochs = decision["epoch"], options.epochs
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
        result.update(save_stopped(data, options, folder.root, task, counts))
        result.update(
            stopped_at=stop,
            epochs_planned=epochs,
            stopped_because={
                "best": decision["best"],
                **{key: row[key] for key in ("difference", "low", "high")},
            },
        )
        folder.run(task.variant, task.seed).finish(result)
    return survivors
