"""Timing and peak memory of compiled calls: interleaved medians, the resident-set or allocator
peak.

Every timing is a median over calls of one compiled ``tf.function`` (with or without XLA), the
cases interleaved call by call (A B C A B C ...), so that a slow moment of the machine falls on
every case alike.

Peak memory of a call is what it allocates above what was allocated before it (the inputs,
already in memory, are not counted). Where TensorFlow's allocator keeps statistics
(``get_memory_info``: accelerators, and the CPU allocator in recent TensorFlow once it has
allocated) that is its peak minus its current use before the call. Otherwise we measure the
growth of the process's resident set during one call: Linux's high-water mark ``VmHWM`` is reset
(``/proc/self/clear_refs``) just before the call and compared with the resident size just before
it; large buffers are made to come from ``mmap`` (``mallopt``) so that freed tensors leave the
resident set and each call starts level. Where neither is available the figure is None.
"""

import ctypes
import ctypes.util
import os
import statistics
import time

import tensorflow as tf


def loss_and_gradient(fn, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def step(labels, logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = fn(labels, logits)
        return loss, tape.gradient(loss, logits)

    return step


def time_interleaved(calls, repeats, warmup):
    """Median wall time in ms of each zero-argument callable, called in turn ``repeats`` times.

    Args:
        calls: name -> callable; each call must finish its work before returning.
        repeats: Timed rounds.
        warmup: Untimed rounds first (tracing, compilation, caches).

    Returns:
        name -> median milliseconds (see :func:`time_interleaved_spread` for the quartiles).
    """
    return {
        name: spread[1] for name, spread in time_interleaved_spread(calls, repeats, warmup).items()
    }


def time_interleaved_spread(calls, repeats, warmup):
    """As :func:`time_interleaved`, returning name -> (25th percentile, median, 75th percentile)
    ms."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: _quartiles(values) for name, values in times.items()}


def _quartiles(values):
    if len(values) < 2:
        return (values[0],) * 3
    low, median, high = statistics.quantiles(values, n=4, method="inclusive")
    return (low, median, high)


def _libc():
    path = ctypes.util.find_library("c")
    return ctypes.CDLL(path) if path else None


def _status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def memory_method(tensorflow=True):
    """How peak memory is measured here: ``"tf"``, ``"rss"`` or None (see the module docstring).

    Args:
        tensorflow: Whether the calls run TensorFlow (whose allocator is asked first); False for
            another framework's calls on CPU, whose peak is the resident set's. Defaults to True.
    """
    try:
        # Zero until the allocator has served something: call after the inputs exist.
        info = tf.config.experimental.get_memory_info("CPU:0")
        if tensorflow and info.get("peak", 0) > 0:
            return "tf"
    except (ValueError, RuntimeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        _status_kb("VmHWM")
    except OSError:
        return None
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        # M_MMAP_THRESHOLD (-3) at 128 KiB, fixed: every tensor buffer is mmapped and returned
        # to the system when freed, so one call's peak is not hidden by memory kept from before.
        libc.mallopt(-3, 128 * 1024)
    return "rss"


def peak_memory(call, method):
    """Peak memory of one call in bytes, by ``method`` (``memory_method()``), or None."""
    if method == "tf":
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        tf.config.experimental.reset_memory_stats("CPU:0")
        call()
        return max(0, int(tf.config.experimental.get_memory_info("CPU:0")["peak"]) - before)
    if method == "rss":
        libc = _libc()
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
        before = _status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        call()
        return max(0, _status_kb("VmHWM") - before) * 1024
    return None


#: Runs ``sm_pixel_ce``'s command line and, at exit, writes the process's own peak resident set
#: (``VmHWM`` of ``/proc/self/status``, KiB) to the file named by its first argument.
_PEAK_WRAPPER = """
import atexit, runpy, sys
peak_file = sys.argv.pop(1)
def write_peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(peak_file, "w") as out:
                    out.write(line.split()[1])
atexit.register(write_peak)
sys.argv[0] = "sm-pixel-ce"
runpy.run_module("sm_pixel_ce", run_name="__main__", alter_sys=True)
"""


def run_command_line(arguments, log_path, env=None):
    """Run ``sm-pixel-ce ARGUMENTS`` in a child process, its output to ``log_path``, and
    measure it: ``{"peak_rss_mb", "wall_s", "cpu_s", "returncode"}``.

    The peak is the child's own high-water mark (``VmHWM``, written by the child as it exits),
    not ``ru_maxrss`` from ``os.wait4``: Linux carries the parent's high-water mark into a child
    across ``fork`` and ``exec``, so a large parent (a test run) would show as the child's peak.
    CPU seconds are the child's user + system time.

    Args:
        arguments: The command line after ``sm-pixel-ce``, e.g. ``["evaluate", "m.keras"]``.
        log_path: File for the child's stdout and stderr.
        env: Extra environment variables; ``TF_CPP_MIN_LOG_LEVEL=3`` is set. Defaults to None.
    """
    import subprocess
    import sys

    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    peak_file = log_path + ".peak_kb"
    if os.path.exists(peak_file):
        os.remove(peak_file)
    command = [sys.executable, "-c", _PEAK_WRAPPER, peak_file, *map(str, arguments)]
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        _, status, usage = os.wait4(process.pid, 0)
    peak_kb = usage.ru_maxrss  # Linux reports KiB; the fallback when the child wrote nothing
    if os.path.exists(peak_file):
        with open(peak_file) as handle:
            peak_kb = int(handle.read().strip() or peak_kb)
    return {
        "peak_rss_mb": peak_kb / 1024,
        "wall_s": time.perf_counter() - started,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "returncode": os.waitstatus_to_exitcode(status),
    }
