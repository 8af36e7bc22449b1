"""``compare`` on many devices: ``--jobs N`` processes and ``--ray local`` give the sequential
run's numbers, ``--resume`` and Ctrl-C work per run (``--prune``: tests/test_compare_prune.py)."""

import builtins
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import tiny_compare_argv

from sm_pixel_ce.cli import main
from sm_pixel_ce.compare import parallel
from sm_pixel_ce.compare.layout import OutputFolder

# How runs are executed (processes, Ray, Ctrl-C, --resume, pruned phases) is the same Python in both
# Keras flavours, and each flavour's training is checked by test_compare.py: the Keras 3 process
# alone runs these.
pytestmark = pytest.mark.one_flavor

#: What may differ between two runs of the same configuration: clocks, paths, and how it ran.
TIMING = {
    "seconds",
    "epoch_seconds",
    "first_batch_seconds",
    "validation_seconds",
    "reload_seconds",
    "model_path",
    "wall_seconds",
}
#: Options of the configuration that say where the runs trained.
WHERE = {"jobs", "in_process", "ray", "gpus_per_run", "threads_per_run"}
#: Two variants whose runs differ.
VARIANTS = ("cce", "bce")


def _numbers(out):
    """report.json without what may differ between equal runs."""
    with open(OutputFolder(out).report_json) as f:
        report = json.load(f)
    config = {k: v for k, v in report["config"].items() if k not in TIMING | WHERE}
    results = [{k: v for k, v in r.items() if k not in TIMING} for r in report["results"]]
    return config, results, report


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The tiny two-variant run, one after another in this process: what every other way (a
    fresh process per run, the default for more than one run) must equal."""
    out = tmp_path_factory.mktemp("sequential") / "out"
    argv = tiny_compare_argv(out, "--images", "12", "--in-process", variants=VARIANTS)
    assert main(argv) == 0
    return out


@pytest.mark.xdist_group("compare_sequential")  # one worker builds `sequential` once
def test_jobs_2_report_equals_the_sequential_one(sequential, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(tiny_compare_argv(out, "--images", "12", "--jobs", "2", variants=VARIANTS)) == 0
    printed = capsys.readouterr().out
    assert "[seed 0] cce" in printed and "[seed 0] bce" in printed  # one line per run per epoch
    config, results, report = _numbers(out)
    config_1, results_1, _ = _numbers(sequential)
    assert report["config"]["jobs"] == 2
    assert config == config_1
    assert results == results_1
    assert [r["miou"] for r in results] == [r["miou"] for r in results_1]


@pytest.mark.xdist_group("compare_sequential")  # one worker builds `sequential` once
def test_jobs_resume_trains_only_the_missing_run(sequential, tmp_path, capsys):
    out = tmp_path / "out"
    argv = tiny_compare_argv(out, "--images", "12", "--jobs", "2", variants=VARIANTS)
    # A copy of the sequential folder without bce's run: --resume --jobs trains bce alone.
    shutil.copytree(sequential, out)
    shutil.rmtree(OutputFolder(out).run("bce", 0).path)
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 0
    printed = capsys.readouterr().out
    assert "[cce] seed 0: already in" in printed and "[cce] seed 0: training" not in printed
    assert "[bce] seed 0: training" in printed
    assert _numbers(out)[1] == _numbers(sequential)[1]


def test_ctrl_c_stops_every_process_and_keeps_the_finished_runs(tmp_path):
    variants = ("cce", "bce", "cce-dice")
    argv = tiny_compare_argv(tmp_path / "out", "--images", "12", "--jobs", "2", variants=variants)
    argv[argv.index("--epochs") + 1] = "3"
    process = subprocess.Popen(
        [sys.executable, "-m", "sm_pixel_ce", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    for line in process.stdout:
        if line.startswith("[cce-dice] seed 0: training"):  # cce or bce has just finished
            time.sleep(0.5)
            process.send_signal(signal.SIGINT)  # to the parent only
            break
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    assert "Not finished:" in err and "cce-dice seed 0" in err.split("Not finished:")[1]
    # The runs that had finished are kept (one or both of cce and bce, which trained side by
    # side); cce-dice, which was training, is stopped unwritten.
    finished = OutputFolder(tmp_path / "out").finished_runs()
    assert 1 <= len(finished) <= 2 and ("cce-dice", 0) not in finished, finished
    assert "finished runs saved in" in err and f"{finished[0][0]} seed 0" in err
    time.sleep(1.0)
    assert not _children_alive(process.pid)


def _children_alive(pid):
    """Whether a process that ``pid`` started is still running (Linux /proc)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        return True
            except (OSError, ValueError, IndexError):
                continue
    return False


@pytest.mark.xdist_group("compare_sequential")  # one worker builds `sequential` once
def test_ray_local_equals_sequential(sequential, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    start = time.perf_counter()
    # Its own process: Ray's local instance started from a pytest-xdist worker ran 2.6x slower.
    argv = tiny_compare_argv(out, "--images", "12", "--ray", "local", variants=VARIANTS)
    # Ray starts its workers at nice 15 (its worker_niceness): beside the suite's other lane
    # (tests/run_all.sh: tf_keras at nice 10) they would wait for it; here they run at 0.
    env = dict(os.environ, RAY_worker_niceness="0")
    child = subprocess.run(
        [sys.executable, "-m", "sm_pixel_ce", *argv],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    print(f"--ray local: {time.perf_counter() - start:.1f} s")
    assert _numbers(out)[1] == _numbers(sequential)[1]
    assert _numbers(out)[0] == _numbers(sequential)[0]
    model = OutputFolder(out).model("cce")
    assert os.path.isfile(model)
    assert _numbers(out)[2]["results"][0]["model_path"] == model


def test_missing_ray_is_one_line(tmp_path, capsys, monkeypatch):
    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert main(tiny_compare_argv(tmp_path / "out", "--ray", "local")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sm-pixel-ce compare: error: {parallel.RAY_MISSING}"]
    assert parallel.RAY_MISSING == '--ray needs Ray: pip install "sm_pixel_ce[cluster]"'


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--jobs", "0"], "--jobs must be >= 1; received 0."),
        (["--jobs", "2", "--ray", "local"], "--ray sends the runs to Ray"),
        (["--gpus-per-run", "1"], "--gpus-per-run is for --ray"),
        (["--threads-per-run", "0"], "--threads-per-run must be >= 1; received 0."),
        (["--in-process", "--jobs", "2"], "--in-process trains the runs here"),
    ],
)
def test_bad_device_options_are_one_line(tmp_path, capsys, extra, message):
    assert main(tiny_compare_argv(tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_device_environment_round_robin():
    assert parallel.device_environment(0, []) == {}
    assert [parallel.device_environment(k, ["2", "5"]) for k in range(3)] == [
        {"CUDA_VISIBLE_DEVICES": "2"},
        {"CUDA_VISIBLE_DEVICES": "5"},
        {"CUDA_VISIBLE_DEVICES": "2"},
    ]
    assert parallel.thread_environment(None) == {}
    assert parallel.thread_environment(1)["TF_NUM_INTRAOP_THREADS"] == "1"
    assert parallel.LOCAL_OBJECT_STORE >= 75 * 1024 * 1024  # Ray's minimum


def test_more_than_one_run_trains_each_in_a_fresh_process(monkeypatch):
    # TensorFlow keeps about a model's size of memory for every model trained in a process
    # (examples/compare_advisor.md, "Memory"): a second run here would add to the first.
    from sm_pixel_ce.compare import scheduling
    from sm_pixel_ce.compare.options import CompareOptions

    default = CompareOptions()
    assert scheduling.in_this_process(default, 1)
    assert not scheduling.in_this_process(default, 2)
    assert scheduling.in_this_process(CompareOptions(in_process=True), 5)
    assert not scheduling.in_this_process(CompareOptions(threads_per_run=1), 1)
    calls = []

    def processes(function, argument_lists, jobs, threads=None, log=print):
        calls.append((function, [a[3] for a in argument_lists], jobs))
        return ["result"] * len(argument_lists)

    monkeypatch.setattr(parallel, "run_in_processes", processes)
    tasks = [scheduling.Task("cce", 0, True), scheduling.Task("bce", 0, True)]
    folder = OutputFolder("unused")
    executor = scheduling.Executor(None, default, folder, None, len(tasks), print)
    assert executor.how == "processes" and executor.run(tasks) == ["result"] * 2
    assert calls == [(scheduling.train_task, tasks, 1)]

    # --prune keeps a process per variant; one run, or --in-process, trains here; --ray on Ray.
    def how(options, runs, keep):
        return scheduling.Executor(None, options, folder, None, runs, print, keep).how

    assert how(CompareOptions(in_process=True), 5, True) == "here"
    assert how(default, 1, False) == how(default, 1, True) == "here"
    assert how(CompareOptions(ray="local"), 2, True) == "ray" and how(default, 2, True) == "pool"


@pytest.mark.slow
def test_runs_in_their_own_processes_leave_this_process_flat(tmp_path):
    # Trained here, each run of this 32 px ResNet-18 U-Net would leave about 280 MB behind
    # (examples/compare_advisor.md, "Memory over many runs"): 3 runs, over 0.8 GB.
    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    argv = tiny_compare_argv(tmp_path / "warm", "--images", "12")
    assert main(argv) == 0  # one run, here: what this process holds anyway
    before = rss_mb()
    argv = tiny_compare_argv(tmp_path / "out", "--images", "12", "--seeds", "3")
    assert main(argv) == 0
    assert rss_mb() - before < 150
