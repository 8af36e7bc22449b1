"""Peak and current RSS of one in-process ``compare`` as the runs add up (issue #30, point 1).

Runs :func:`sm_pixel_ce.compare.run_compare` on tiny settings and prints, after every finished
run (or phase), the process's current RSS (``/proc/self/status`` VmRSS) and its peak
(``resource.getrusage``'s ``ru_maxrss``); the last line is one JSON object with the figures,
with the largest peak of the processes that trained runs (``children_peak_mb``).

    PYTHONPATH=$PWD python examples/compare_memory.py --variants cce,bce --seeds 4 --images 24

Every option after the script's own (``--out``) is a ``sm-pixel-ce compare`` flag.

With ``--over-runs`` first, it measures instead each way runs execute (``--in-process``, the
default process per run, ``--prune``, ``--jobs 2``) at 1, 4 and 12 runs, each ``compare`` in a
child process (:func:`sm_pixel_ce.bench.advisor_memory.peak_rss_over_runs`), and prints the
table of examples/compare_advisor.md's "Memory over many runs"; the flags after it go to every
``compare`` (plain SGD for the figures there):

    PYTHONPATH=$PWD python examples/compare_memory.py --over-runs \
        --optimizer sgd --momentum 0 --lr 0.05
"""

import argparse
import json
import resource
import tempfile
import time


def rss_mb():
    """``(current, peak)`` resident memory of this process in MB."""
    with open("/proc/self/status") as f:
        current = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return current / 1024, peak / 1024


def children_peak_mb():
    """The largest peak resident memory of a finished child process (a run's process), MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def over_runs(extra):
    """Print the peak resident memory of ``compare`` at 1, 4 and 12 runs in every mode."""
    from sm_pixel_ce.bench.advisor_memory import memory_table, peak_rss_over_runs

    figures = peak_rss_over_runs(extra=extra, progress=lambda line: print(line, flush=True))
    print(memory_table(figures["points"]))
    print(json.dumps(figures))


def main(argv=None):
    from sm_pixel_ce.cli.compare import add_arguments, options_from
    from sm_pixel_ce.compare import run_compare

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    options = options_from(args)
    rows, start = [], time.perf_counter()

    def log(line):
        if "] mIoU" in line:  # one run (or one phase) finished
            current, peak = rss_mb()
            rows.append({"after": line.split("]")[0][1:], "rss_mb": current, "peak_mb": peak})
            after = rows[-1]["after"]
            line = f"{len(rows):>3} {after:<14} rss {current:6.0f} MB  peak {peak:6.0f} MB"
            print(line, flush=True)

    out = args.out if args.out != "sm-pixel-ce-compare" else tempfile.mkdtemp()
    before = rss_mb()
    run_compare(options, out, log=log)
    print(
        json.dumps(
            {
                "variants": list(options.variants),
                "seeds": options.seeds,
                "runs": len(options.variants) * options.seeds,
                "prune": options.prune,
                "jobs": options.jobs,
                "rss_before_mb": round(before[0]),
                "rss_after_runs_mb": [round(r["rss_mb"]) for r in rows],
                "peak_mb": round(rss_mb()[1]),
                "children_peak_mb": round(children_peak_mb()),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--over-runs"]:
        over_runs(sys.argv[2:])
    else:
        main()
