"""The fourth step of ``compare``: decide which runs are left to train, and how each executes.

Every (variant, seed) run not finished in the output folder becomes a
:class:`~sm_pixel_ce.compare.experiment.Task`; :func:`schedule` runs them through one
:class:`Executor`, the one place that decides where
:func:`~sm_pixel_ce.compare.experiment.train_task` runs: in a fresh process per run (one at a
time, or ``--jobs`` at once; here for a single run or with ``--in-process``), or as Ray tasks
(``--ray``), see :mod:`~sm_pixel_ce.compare.parallel`. With ``--prune`` the same executor runs the
tasks cut into phases that end at the scoring epochs, each variant's model compiled once for all
its phases and seeds (in a process per variant, or here), and the variants behind beyond doubt
stop (:mod:`~sm_pixel_ce.compare.prune` decides which).
"""

import json
import os

from . import parallel
from .experiment import (
    Task,
    load_checkpoint,
    save_from_checkpoints,
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
    finished, todo = {}, []
    for k, seed in enumerate(options.seed_list):
        for spec, variant in zip(options.variants, options.variant_list):
            done = folder.run(variant.name, seed).load_result()
            if done is not None:
                log(f"[{variant.name}] seed {seed}: already in {folder.root}, not trained again")
                finished[variant.name, seed] = done
            else:
                todo.append(Task(variant.name, seed, k == 0, spec=spec))
    with Executor(data, options, folder, counts, len(todo), log, keep=options.prune) as runs:
        if options.prune:
            finished.update(_run_pruned(runs, options, folder, todo, finished, log))
        else:
            finished.update(((t.variant, t.seed), r) for t, r in zip(todo, runs.run(todo)))
    return finished


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


class Executor:
    """The one place that decides where :func:`~sm_pixel_ce.compare.experiment.train_task`
    runs, for whole runs and for ``--prune``'s phases alike:

    - ``"ray"``: each task is a Ray task (``--ray``);
    - ``"here"``: in this process, one after another (:func:`in_this_process`);
    - ``"pool"`` (``keep``, i.e. ``--prune``): a process per variant, up to ``--jobs`` at once,
      that keeps the variant's model compiled and traced for all its phases and seeds
      (:class:`~sm_pixel_ce.compare.parallel.WorkerPool`,
      :func:`~sm_pixel_ce.compare.training.kept_model`; a variant without a process takes the
      slot of one whose variant has nothing left in the phase, which ends); the models of the
      runs it ends are saved from their checkpoints in fresh processes (:meth:`save`);
    - ``"processes"``: a fresh process per task, up to ``--jobs`` at once.

    Args:
        data: A :class:`~sm_pixel_ce.compare.splitting.Split`.
        options: :class:`~sm_pixel_ce.compare.options.CompareOptions`.
        folder: The :class:`~sm_pixel_ce.compare.layout.OutputFolder`.
        counts: The training masks' :class:`~sm_pixel_ce.class_weights.ClassPixels`.
        runs: How many runs the grid has left (one trains here).
        log: Function printing one line.
        keep: Keep each variant's model for its later phases and seeds (``--prune``).
            Defaults to False.
        progress: tqdm's bar within each epoch of a run trained here. Defaults to True.

    Example:
        >>> with Executor(held_out, options, OutputFolder("results"), counts, 4, print) as runs:
        ...     results = runs.run(tasks)
    """

    def __init__(self, data, options, folder, counts, runs, log, keep=False, progress=True):
        self.data, self.options, self.folder, self.counts = data, options, folder, counts
        self.log, self.keep, self.progress = log, keep, progress
        if options.ray is not None:
            self.how = "ray"
        elif in_this_process(options, runs):
            self.how = "here"
        else:
            self.how = "pool" if keep else "processes"
        self.pool = None
        if self.how == "pool":
            self.pool = parallel.WorkerPool(options.jobs, threads=options.threads_per_run)

    def _arguments(self, task, state=None):
        """``train_task``'s arguments for ``task`` in another process (no progress bar)."""
        return (self.data, self.options, self.folder.root, task, self.counts, state, False)

    def run(self, tasks):
        """The results of ``train_task`` for ``tasks``, in their order."""
        options, log = self.options, self.log
        if self.how == "here":
            root = self.folder.root
            keywords = {"progress": self.progress, "keep": self.keep, "log": log}
            return [train_task(self.data, options, root, t, self.counts, **keywords) for t in tasks]
        if self.how == "pool":
            calls = [(t.variant, (*self._arguments(t), True, False)) for t in tasks]
            results = self.pool.run(train_task, calls, log)
            ended = [i for i, t in enumerate(tasks) if t.epochs[1] == options.epochs]
            self.release(sorted({tasks[i].variant for i in ended}))
            for i, keys in zip(ended, self.save([tasks[i] for i in ended])):
                results[i].update(keys)
            return results
        if self.how == "processes":
            calls = [self._arguments(t) for t in tasks]
            threads = options.threads_per_run
            return parallel.run_in_processes(train_task, calls, options.jobs, threads, log=log)
        # A phase's state is read here and sent: the task's folder is not this one.
        states = [
            load_checkpoint(self.folder.run(t.variant, t.seed).checkpoint)
            if t.epochs and t.epochs[0]
            else None
            for t in tasks
        ]
        return parallel.run_on_ray(
            train_task,
            [self._arguments(t, s) for t, s in zip(tasks, states)],
            self.folder.root,
            options.ray,
            gpus_per_run=options.gpus_per_run,
            threads=options.threads_per_run,
            log=log,
            root_argument=2,
            last=lambda path: os.path.basename(path) == "result.json",
        )

    def _saving(self, tasks):
        """``save_from_checkpoints``'s arguments for ``tasks``."""
        return (self.data, self.options, self.folder.root, tasks, self.counts)

    def save(self, tasks):
        """Save the models of the runs whose phases ``tasks`` left their checkpoints (the runs
        ``--prune`` stopped; with a process per variant, every run, whose last phase is
        trained there with ``save`` False): their results' keys for the saved models
        (:func:`~sm_pixel_ce.compare.experiment.save_from_checkpoints`), in the order of
        ``tasks``. With a process per variant, in a fresh process per variant (up to ``--jobs``
        at once), so that neither this process nor a variant's kept one grows by the models
        built to save and reload them (TensorFlow keeps what a process has traced); else here."""
        if self.how != "pool" or not tasks:
            return save_from_checkpoints(*self._saving(tasks), log=self.log)
        groups = {}
        for task in tasks:
            groups.setdefault(task.variant, []).append(task)
        jobs, threads = self.options.jobs, self.options.threads_per_run
        calls = [self._saving(group) for group in groups.values()]
        saved = parallel.run_in_processes(save_from_checkpoints, calls, jobs, threads, self.log)
        keys = {}
        for group, group_keys in zip(groups.values(), saved):
            keys.update(((t.variant, t.seed), k) for t, k in zip(group, group_keys))
        return [keys[t.variant, t.seed] for t in tasks]

    def release(self, variants):
        """Nothing more to train for ``variants``: their processes end."""
        if self.pool is not None:
            self.pool.release(variants)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.close(now=exc[0] is not None)
        if self.keep:
            forget_models()


def _run_pruned(runs, options, folder, todo, finished, log):
    """Train the runs ``todo`` in phases through the :class:`Executor` ``runs``, stopping the
    variants behind beyond doubt (see :mod:`~sm_pixel_ce.compare.prune`); ``finished``: the runs
    finished before (``--resume``), whose ``image_counts_at`` take part in the decisions.
    Returns ``{(variant, seed): result}`` of the runs in ``todo``."""
    epochs = options.epochs
    active = list(todo)
    results, decisions, start = {}, [], 0
    for stop in prune_epochs(epochs) + [epochs]:
        if not active:
            break
        tasks = [Task(t.variant, t.seed, t.first, (start, stop), t.spec) for t in active]
        for task, result in zip(tasks, runs.run(tasks)):
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
        stopped = [t for t in tasks if t.variant in decision["stopped"]]
        _stop_behind(decision, stopped, runs.save(stopped), results, options, folder, log)
        runs.release(decision["stopped"])
        active = [t for t in active if t.variant not in decision["stopped"]]
        start = stop
    return results


def _stop_behind(decision, stopped, saved, results, options, folder, log):
    """Finish the runs ``stopped`` of the variants ``decision`` stops, with why (``saved``:
    their models' keys, saved from their checkpoints)."""
    stop, epochs = decision["epoch"], options.epochs
    for name in decision["stopped"]:
        row = decision["versus"][name]
        log(
            f"  --prune: {name} stops at epoch {stop} of {epochs}: behind {decision['best']} "
            f"by {row['difference']:.3f} mIoU (95 % interval {row['low']:.3f} .. "
            f"{row['high']:.3f})"
        )
    for task, keys in zip(stopped, saved):
        row = decision["versus"][task.variant]
        result = results[task.variant, task.seed]
        result.update(keys)
        result.update(
            stopped_at=stop,
            epochs_planned=epochs,
            stopped_because={
                "best": decision["best"],
                **{key: row[key] for key in ("difference", "low", "high")},
            },
        )
        folder.run(task.variant, task.seed).finish(result)
