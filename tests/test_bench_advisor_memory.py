"""``sm_pixel_ce.bench.advisor_memory``: the peaks it reads are the processes' own, and the
table and growth it derives from them are right."""

import sys

import pytest

from sm_pixel_ce.bench import advisor_memory
from sm_pixel_ce.bench.advisor_memory import _growth, memory_table, peak_rss_over_runs

# Process bookkeeping, no Keras: the Keras 3 process alone runs it.
pytestmark = pytest.mark.one_flavor


def test_the_peaks_are_each_process_own(tmp_path, monkeypatch):
    # A stand-in for sm-pixel-ce: the "compare" holds ~40 MB, the process it starts ~200 MB.
    child = (
        "b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(1)"
    )
    parent = (
        "import subprocess, sys\n"
        "a = bytearray(40 << 20); a[::4096] = b'x' * len(a[::4096])\n"
        f"subprocess.run([sys.executable, '-c', {child!r}], check=True)\n"
    )

    def fake(arguments, log_path):
        import subprocess
        import time

        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", parent])
        status = process.wait()
        return {"peak_rss_mb": 55.0, "wall_s": time.perf_counter() - started, "returncode": status}

    monkeypatch.setattr(advisor_memory, "run_command_line", fake)
    figures = advisor_memory.measure_compare_memory([], str(tmp_path / "log"), poll=0.05)
    assert figures["returncode"] == 0 and figures["main_peak_mb"] == 55.0
    assert figures["run_processes"] == 1
    # The 200 MB touched, and the interpreter: not the parent's 40 MB added in.
    assert 200 < figures["run_peak_mb"] < 200 + 40


def test_table_and_growth():
    points = [
        {
            "mode": "default",
            "runs": 1,
            "main_peak_mb": 1536.0,
            "run_peak_mb": None,
            "returncode": 0,
        },
        {
            "mode": "default",
            "runs": 12,
            "main_peak_mb": 800.0,
            "run_peak_mb": 1600.0,
            "returncode": 0,
        },
        {
            "mode": "in-process",
            "runs": 1,
            "main_peak_mb": 1536.0,
            "run_peak_mb": None,
            "returncode": 0,
        },
        {
            "mode": "in-process",
            "runs": 12,
            "main_peak_mb": 4608.0,
            "run_peak_mb": None,
            "returncode": 0,
        },
    ]
    assert memory_table(points).splitlines() == [
        "| runs | default | in-process |",
        "|---:|---:|---:|",
        "| 1 | 1.50 | 1.50 |",
        "| 12 | 0.78 / 1.56 | 4.50 |",
    ]
    growth = _growth(points)
    assert growth["default"]["largest"] == pytest.approx(1600 / 1536)
    assert growth["in-process"]["main"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="advisor memory modes must be among in-process"):
        peak_rss_over_runs(modes=("threads",))


def test_the_bench_command_prints_the_table(monkeypatch, capsys):
    # `sm-pixel-ce bench --compare-memory` runs peak_rss_over_runs and prints memory_table.
    from sm_pixel_ce.cli import bench as bench_cli
    from sm_pixel_ce.cli import main

    point = {"mode": "default", "runs": 4, "main_peak_mb": 768.0, "run_peak_mb": 1280.0}
    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return {"points": [{**point, "returncode": len(calls) - 1}]}

    monkeypatch.setattr(bench_cli, "peak_rss_over_runs", fake)
    assert main(["bench", "--compare-memory"]) == 0
    assert "| 4 | 0.75 / 1.25 |" in capsys.readouterr().out
    assert main(["bench", "--compare-memory"]) == 1  # a compare that failed
