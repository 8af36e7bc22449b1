"""Where the (variant, seed) runs of ``compare`` train: here one after another, in up to N
processes of this machine (``--jobs``), or as tasks of a Ray cluster (``--ray``).

Every place runs the same function, :func:`~sm_pixel_ce.compare.experiment.train_task`, so there
is one training code path. A process is started with ``spawn`` (a fresh interpreter: TensorFlow's
state is not forked) for each run, or (:class:`WorkerPool`, ``--prune``) for each variant, kept
for its phases; each is pinned to one GPU (``CUDA_VISIBLE_DEVICES``) where there
are GPUs; on a CPU-only machine it uses ``--threads-per-run`` threads (TensorFlow's own number
when not given). A Ray task writes its run into a temporary folder and returns the files as
bytes, which the driver writes into ``--out``: no shared file system is needed, but the data
(``--data`` or the generated scenes, sent with the task) must be readable where the tasks run.
"""

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import tempfile
import traceback

from .training import check_interrupt

#: What a missing ``[cluster]`` extra says, in one line.
RAY_MISSING = '--ray needs Ray: pip install "sm_pixel_ce[cluster]"'
#: Object store of ``--ray local`` (Ray's minimum is 75 MiB): the runs' files pass through it.
LOCAL_OBJECT_STORE = 80 * 1024 * 1024
#: CPUs of ``--ray local``.
LOCAL_CPUS = 2


def thread_environment(threads):
    """The environment variables that give TensorFlow ``threads`` threads (None: its own)."""
    if threads is None:
        return {}
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads)}


def device_environment(slot, gpus):
    """``CUDA_VISIBLE_DEVICES`` of the process in ``slot`` (0 .. jobs - 1): one of ``gpus``
    (the visible GPU ids, in order), round robin; nothing on a machine without GPUs.

    Example:
        >>> device_environment(3, ["0", "1"])
        {'CUDA_VISIBLE_DEVICES': '1'}
    """
    if not gpus:
        return {}
    return {"CUDA_VISIBLE_DEVICES": str(gpus[slot % len(gpus)])}


def visible_gpus():
    """The ids of the GPUs this process may use (``CUDA_VISIBLE_DEVICES`` as set, else
    ``0 .. n - 1`` of those TensorFlow finds)."""
    import tensorflow as tf

    count = len(tf.config.list_physical_devices("GPU"))
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [g.strip() for g in given.split(",") if g.strip()][:count]
    return [str(i) for i in range(count)]


@contextlib.contextmanager
def _environment(values):
    """``os.environ`` with ``values`` set within the block (a spawned child inherits it)."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _serve(connection):
    """A spawned worker: run every ``(function, arguments)`` it is sent, as
    ``function(*arguments, log=...)``, sending log lines and then the result (or the exception)
    through ``connection``, until it is sent None or the parent is gone. Ctrl-C is the parent's
    to handle."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send = lambda *message: connection.send(message)  # noqa: E731
    while True:
        try:
            call = connection.recv()
        except EOFError:
            break
        if call is None:
            break
        function, arguments = call
        try:
            send("done", function(*arguments, log=lambda line: send("log", line)))
        except BaseException as error:  # noqa: BLE001 - handed to the parent, which raises it
            try:
                send("error", error)
            except Exception:  # an exception that does not pickle
                send("error", RuntimeError(traceback.format_exc()))
    connection.close()


class _Worker:
    """One spawned :func:`_serve` process, bound to ``key``, in ``slot`` (0 .. jobs - 1)."""

    def __init__(self, context, key, slot, threads, gpus):
        self.key, self.slot, self.busy = key, slot, None
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs,))
        with _environment({**thread_environment(threads), **device_environment(slot, gpus)}):
            self.process.start()
        theirs.close()

    def call(self, index, function, arguments):
        self.busy = index
        self.connection.send((function, arguments))

    def stop(self, now=False):
        """End the process: at once (``now``), or once it has read the call to stop."""
        if not now:
            try:
                self.connection.send(None)
            except OSError:  # already gone
                pass
            self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.connection.close()


class WorkerPool:
    """Up to ``jobs`` spawned processes that live across calls to :meth:`run`, each bound to
    one key: the calls of a key run in order in its process, which keeps what it built (a
    compiled model) for the key's later calls. A key without a process gets a free slot, or
    the slot of an idle process whose key has nothing left to run, which is ended first: at
    most ``jobs`` processes at any time, whatever the number of keys.

    Args:
        jobs: Processes at once, >= 1.
        threads: TensorFlow threads of each process, or None for its own number.
            Defaults to None.
        gpus: GPU ids to pin the processes to, round robin by slot; None for
            :func:`visible_gpus`.

    Example:
        >>> with WorkerPool(2) as pool:
        ...     first = pool.run(train_task, [("cce", args_0), ("bce", args_1)])
        ...     later = pool.run(train_task, [("cce", args_2)])  # in the same cce process
    """

    def __init__(self, jobs, threads=None, gpus=None):
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1; received {jobs}.")
        self.jobs, self.threads = jobs, threads
        self.gpus = visible_gpus() if gpus is None else gpus
        self.context = multiprocessing.get_context("spawn")
        self.workers = {}  # key -> _Worker
        #: Processes started so far.
        self.started = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(now=exc[0] is not None)

    def run(self, function, calls, log=print):
        """``[function(*arguments, log=...) for key, arguments in calls]``, each in the process
        of its key; results in the order of ``calls``.

        Raises:
            KeyboardInterrupt: Ctrl-C (inside :func:`~sm_pixel_ce.compare.training.stop_on_ctrl_c`):
                every process is stopped; what finished before stays finished.
            Exception: The first exception a call raised (every process is stopped).
        """
        waiting = {}  # key -> [(index, arguments)], the keys that have a process first
        for index, (key, arguments) in enumerate(calls):
            waiting.setdefault(key, []).append((index, arguments))
        waiting = dict(sorted(waiting.items(), key=lambda item: item[0] not in self.workers))
        results = [None] * len(calls)
        busy = {}  # connection -> worker
        try:
            while waiting or busy:
                for key in list(waiting):
                    worker = self.workers.get(key) or self._start(key, waiting)
                    if worker is None or worker.busy is not None:
                        continue
                    index, arguments = waiting[key].pop(0)
                    if not waiting[key]:
                        del waiting[key]
                    worker.call(index, function, arguments)
                    busy[worker.connection] = worker
                for connection in multiprocessing.connection.wait(list(busy), timeout=0.2):
                    worker = busy[connection]
                    try:
                        kind, value = connection.recv()
                    except EOFError:
                        code = worker.process.exitcode
                        raise RuntimeError(
                            f"a compare process stopped without a result (exit code {code})"
                        ) from None
                    if kind == "log":
                        log(value)
                        continue
                    del busy[connection]
                    if kind == "error":
                        raise value
                    results[worker.busy], worker.busy = value, None
                check_interrupt()
        except BaseException:
            self.close(now=True)
            raise
        return results

    def _start(self, key, waiting):
        """A new process for ``key`` in a free slot (ending an idle one that ``waiting`` has
        nothing for, when none is free), or None when every slot is taken."""
        if len(self.workers) >= self.jobs:
            idle = [w for w in self.workers.values() if w.busy is None and w.key not in waiting]
            if not idle:
                return None
            self.release([idle[0].key])
        taken = {w.slot for w in self.workers.values()}
        slot = min(set(range(self.jobs)) - taken)
        self.workers[key] = _Worker(self.context, key, slot, self.threads, self.gpus)
        self.started += 1
        return self.workers[key]

    def release(self, keys):
        """End the processes of ``keys`` (those that have one): nothing more to run there."""
        for key in keys:
            worker = self.workers.pop(key, None)
            if worker is not None:
                worker.stop()

    def close(self, now=False):
        """End every process: at once with ``now`` (Ctrl-C, an error), else when it has
        finished its call."""
        for worker in self.workers.values():
            worker.stop(now)
        self.workers.clear()


def run_in_processes(function, argument_lists, jobs, threads=None, log=print, gpus=None):
    """``[function(*arguments, log=...) for arguments in argument_lists]``, up to ``jobs`` at a
    time, each in a fresh spawned process; results in the order of ``argument_lists``.

    Args:
        function: A module-level function (it is pickled by name).
        argument_lists: One tuple of picklable arguments per call.
        jobs: Processes at once, >= 1.
        threads: TensorFlow threads of each process, or None for its own number.
            Defaults to None.
        log: Given every line a process logs. Defaults to print.
        gpus: GPU ids to pin the processes to, round robin; None for :func:`visible_gpus`.

    Returns:
        The results, in order.

    Raises:
        KeyboardInterrupt: Ctrl-C (inside :func:`~sm_pixel_ce.compare.training.stop_on_ctrl_c`):
            every process is stopped; what finished before stays finished.
        Exception: The first exception a call raised (the other processes are stopped).
    """
    # A key per call: a process per call, ended when its slot is wanted or at the end.
    with WorkerPool(jobs, threads, gpus) as pool:
        return pool.run(function, list(enumerate(argument_lists)), log)


def ray_init(address):
    """Connect to the Ray cluster at ``address``, or with ``"local"`` start one on this machine
    (:data:`LOCAL_CPUS` CPUs, a :data:`LOCAL_OBJECT_STORE` object store, no dashboard).

    Returns:
        The ``ray`` module.

    Raises:
        ImportError: Ray is not installed; the message is :data:`RAY_MISSING`.
    """
    try:
        import ray
    except ImportError:
        raise ImportError(RAY_MISSING) from None
    if not ray.is_initialized():
        if address == "local":
            # Tasks import sm_pixel_ce from where this process does, installed or not.
            here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            path = os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])
            ray.init(
                num_cpus=LOCAL_CPUS,
                object_store_memory=LOCAL_OBJECT_STORE,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
            )
        else:
            ray.init(address=address, log_to_driver=False)
    return ray


def _ray_task(function, arguments, root_arguments):
    """A Ray task: run ``function`` with its output folder in a temporary folder; return
    ``(result, files, lines)``, ``files`` being ``{relative path: bytes}``."""
    lines = []
    with tempfile.TemporaryDirectory() as root:
        result = function(
            *arguments[:root_arguments], root, *arguments[root_arguments + 1 :], log=lines.append
        )
        files = {}
        for directory, _, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, root)] = f.read()
    return result, files, lines, root


def _moved(value, before, after):
    """``value`` (a result, or a JSON file's bytes) with the task's folder ``before`` named
    ``after``."""
    if isinstance(value, bytes):
        return value.replace(before.encode(), after.encode())
    if isinstance(value, dict):
        return {k: _moved(v, before, after) for k, v in value.items()}
    if isinstance(value, str):
        return value.replace(before, after)
    return value


def run_on_ray(
    function,
    argument_lists,
    root,
    address,
    gpus_per_run=0,
    threads=None,
    log=print,
    root_argument=0,
    last=None,
):
    """Like :func:`run_in_processes`, as Ray tasks; each task's files come back through Ray and
    are written under ``root`` here (the ones that ``last(path)`` is true of after the others:
    ``result.json`` marks a run complete).

    Args:
        function: As in :func:`run_in_processes`; the argument at ``root_argument`` is the
            output folder, replaced by a temporary one where the task runs.
        argument_lists: One tuple of picklable arguments per call.
        root: The output folder here.
        address: Ray's address, or ``"local"`` (see :func:`ray_init`).
        gpus_per_run: GPUs Ray gives each task (fractions allowed). Defaults to 0.
        threads: TensorFlow threads of each task, or None for its own number.
        log: Given every line a task logged, when it ends. Defaults to print.
        root_argument: The index of the output folder in each argument tuple. Defaults to 0.
        last: ``last(relative_path) -> bool``, or None.

    Returns:
        The results, in order.

    Raises:
        KeyboardInterrupt: Ctrl-C: the tasks are cancelled; the runs written stay.
    """
    started_here = address == "local" and not _ray_running()
    ray = ray_init(address)
    # max_calls=1: a fresh worker per run, so TensorFlow's memory is freed after it.
    task = ray.remote(max_calls=1)(_ray_task).options(
        num_gpus=gpus_per_run,
        num_cpus=1,
        runtime_env={"env_vars": thread_environment(threads)} if threads else None,
    )
    pending = {
        task.remote(function, arguments, root_argument): index
        for index, arguments in enumerate(argument_lists)
    }
    results = [None] * len(pending)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            check_interrupt()
            for reference in ready:
                index = pending.pop(reference)
                result, files, lines, there = ray.get(reference)
                for line in lines:
                    log(line)
                order = sorted(files, key=lambda p: bool(last and last(p)))
                for relative in order:
                    path = os.path.join(root, relative)
                    content = files[relative]
                    if relative.endswith(".json"):
                        content = _moved(content, there, root)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path + ".tmp", "wb") as f:
                        f.write(content)
                    os.replace(path + ".tmp", path)
                results[index] = _moved(result, there, root)
    finally:
        for reference in pending:
            ray.cancel(reference, force=True)
        if started_here:  # a local instance lives as long as its compare: its processes go too
            ray.shutdown()
    return results


def _ray_running():
    """Whether this process is already connected to Ray (then a local instance is not ours)."""
    try:
        import ray
    except ImportError:  # ray_init says what to install
        return False
    return ray.is_initialized()
