"""``compare --budget``: the plan (a pure function of the measured times, checked against a
simulation of the runs' waves) and one tiny run end to end."""

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from conftest import tiny_compare_argv, write_mask_folder

from sm_pixel_ce.cli import main
from sm_pixel_ce.compare import budget, experiment
from sm_pixel_ce.compare.budget import (
    PRUNE_MARGIN,
    REPORT_SECONDS,
    Timing,
    epoch_seconds,
    grid_seconds,
    kept_by_folder,
    plan_grid,
)
from sm_pixel_ce.compare.layout import OutputFolder, write_json
from sm_pixel_ce.compare.options import CompareOptions
from sm_pixel_ce.compare.splitting import split
from sm_pixel_ce.data import FolderSource, pair_files

# The plan is arithmetic, the same in both Keras flavours; the run end to end is the Python that
# test_compare.py checks in each.
pytestmark = pytest.mark.one_flavor


def simulated_seconds(timing, variants, seeds, epochs, points, done, continuing):
    """The grid's wall time by list scheduling: each phase's tasks taken in order by the first
    free of ``timing.jobs`` slots, every task of a phase before the next (``continuing(phase)``:
    how many runs are still training in that phase)."""
    runs = sum(variants - (done[k] if k < len(done) else 0) for k in range(seeds))
    bounds = [0, *points, epochs]
    clock = 0.0
    for phase, (start, stop) in enumerate(zip(bounds, bounds[1:])):
        overhead = timing.run_seconds if phase == 0 else timing.phase_seconds
        slots = [clock] * timing.jobs
        for _ in range(continuing(phase, runs)):
            k = int(np.argmin(slots))
            slots[k] += overhead + (stop - start) * timing.epoch_seconds
        clock = max(slots)
    return clock


@pytest.mark.parametrize(
    "variants, seeds, epochs, jobs, done",
    [
        (2, 3, 4, 1, ()),
        (3, 2, 10, 2, ()),
        (4, 3, 7, 3, (4, 1)),
        (11, 3, 10, 1, (11,)),
        (1, 1, 1, 1, ()),
    ],
)
def test_grid_seconds_equals_the_simulated_waves(variants, seeds, epochs, jobs, done):
    timing = Timing(epoch_seconds=7.0, run_seconds=23.0, phase_seconds=11.0, jobs=jobs)
    every = lambda phase, runs: runs  # noqa: E731
    best = lambda phase, runs: runs if phase == 0 else min(runs, seeds)  # noqa: E731
    points = budget.prune_epochs(epochs)
    plain = simulated_seconds(timing, variants, seeds, epochs, [], done, every)
    assert grid_seconds(timing, variants, seeds, epochs, done=done) == pytest.approx(plain)
    worst = simulated_seconds(timing, variants, seeds, epochs, points, done, every)
    assert grid_seconds(timing, variants, seeds, epochs, True, done) == pytest.approx(worst)
    pruned = simulated_seconds(timing, variants, seeds, epochs, points, done, best)
    assert grid_seconds(timing, variants, seeds, epochs, True, done, True) == pytest.approx(pruned)


def test_grid_seconds_by_hand():
    timing = Timing(epoch_seconds=10.0, run_seconds=20.0, phase_seconds=5.0)
    # 3 variants x 2 seeds, 4 epochs: 6 runs of 20 + 40 s.
    assert grid_seconds(timing, 3, 2, 4) == 6 * 60
    # --prune scores at epochs 1 and 2: phases of 1, 1 and 2 epochs, each later one 5 s more.
    assert grid_seconds(timing, 3, 2, 4, prune=True) == 6 * 30 + 6 * 15 + 6 * 25
    # ... and when all but the best variant (2 runs) stop at epoch 1.
    assert grid_seconds(timing, 3, 2, 4, True, all_but_one_stop=True) == 180 + 2 * 15 + 2 * 25
    # Two at once: 3 waves; runs finished before cost nothing.
    assert grid_seconds(Timing(10.0, 20.0, 5.0, jobs=2), 3, 2, 4) == 3 * 60
    assert grid_seconds(timing, 3, 2, 4, done=(3, 1)) == 2 * 60


def _plan(budget_seconds, variants=2, seeds=3, epochs=10, prune=False, timing=None, **keywords):
    timing = timing or Timing(epoch_seconds=10.0, run_seconds=20.0, phase_seconds=20.0)
    return plan_grid(budget_seconds, timing, variants, seeds, epochs, prune, **keywords)


def test_a_budget_that_holds_the_grid_changes_nothing():
    plan = _plan(3600)
    assert (plan.seeds, plan.epochs, plan.prune, plan.dropped) == (3, 10, False, "nothing")
    # 6 runs of 20 + 100 s, and the report.
    assert plan.predicted_seconds == plan.worst_seconds == 6 * 120 + REPORT_SECONDS
    assert not plan.prune_switched_on


def test_seeds_go_first_down_to_two():
    # 6 runs (735 s) do not fit in 600 s, 4 runs (495 s) do; --prune with 3 seeds would take
    # 645 s even if it stopped bce at epoch 3.
    plan = _plan(600)
    assert (plan.seeds, plan.epochs, plan.prune) == (2, 10, False)
    assert plan.dropped == "seeds 3 -> 2"
    assert plan.predicted_seconds == 4 * 120 + REPORT_SECONDS


def test_prune_is_switched_on_when_it_keeps_more_seeds():
    timing = Timing(epoch_seconds=10.0, run_seconds=5.0, phase_seconds=5.0)
    # Without --prune 12 runs take 1035 s; with it 525 s if only the best variant goes on past
    # epoch 2, 1155 s (within 1000 s + 20 %) if none stops.
    plan = _plan(1000, variants=4, seeds=3, epochs=8, timing=timing)
    assert (plan.seeds, plan.epochs, plan.prune) == (3, 8, True)
    assert plan.dropped == "nothing" and plan.prune_switched_on
    assert (plan.predicted_seconds, plan.worst_seconds) == (525.0, 1155.0)
    assert plan.worst_seconds <= 1000 * (1 + PRUNE_MARGIN)
    assert "--prune scoring at epoch(s) 2, 4" in plan.line(1000 / 60)
    assert "up to 19.2 min if --prune stops no variant" in plan.line(1000 / 60)


def test_then_epochs_down_to_half_with_two_seeds_then_one_seed():
    timing = Timing(epoch_seconds=10.0, run_seconds=20.0, phase_seconds=1e6)  # --prune never fits
    # 2 variants x 2 seeds of E epochs: 4 * (20 + 10 E) + 15 s; 415 s holds E = 8 (3 seeds
    # would have 4 epochs, below half of 10).
    plan = _plan(415, timing=timing)
    assert (plan.seeds, plan.epochs) == (2, 8) and plan.dropped == "seeds 3 -> 2, epochs 10 -> 8"
    # 255 s: 2 seeds reach 5 epochs (half of 10, 4 * 70 + 15 = 295 s) no longer, so one seed, of
    # the most epochs that fit: 2 * (20 + 10 E) + 15 <= 255, E = 10.
    plan = _plan(255, timing=timing)
    assert (plan.seeds, plan.epochs) == (1, 10)
    plan = _plan(215, timing=timing)
    assert (plan.seeds, plan.epochs) == (1, 8)
    # One seed asked: the epochs alone.
    plan = _plan(215, seeds=1, timing=timing)
    assert (plan.seeds, plan.epochs) == (1, 8)


def test_too_small_a_budget_names_the_budget_needed():
    # One seed of one epoch of 11 variants: 11 * 30 s, the report's 15 s and 45 s spent.
    with pytest.raises(ValueError) as raised:
        _plan(60, variants=11, spent_seconds=45.0)
    needed = (11 * 30 + REPORT_SECONDS + 45) / 60
    message = str(raised.value)
    assert "--budget 1 min cannot hold even 1 seed of 1 epoch(s) of the 11 variant(s)" in message
    assert f"Pass --budget {math.ceil(needed * 10) / 10:g} or more" in message
    assert "\n" not in message


def test_resume_counts_finished_runs_as_done_and_keeps_epochs():
    # Seeds 0 and 1 finished (2 variants each): a third seed costs 2 runs of 120 s.
    plan = _plan(300, done=(2, 2), fixed=True)
    assert (plan.seeds, plan.epochs, plan.finished) == (3, 10, 4)
    assert plan.predicted_seconds == 2 * 120 + REPORT_SECONDS
    # The folder's epochs are kept even where fewer would let more seeds fit.
    plan = _plan(160, seeds=3, epochs=10, done=(2,), fixed=True)
    assert (plan.seeds, plan.epochs) == (1, 10)


def test_the_plan_stays_within_the_budget_and_its_margin():
    rng = np.random.default_rng(0)
    for _ in range(200):
        timing = Timing(*rng.uniform(0.5, 60, 3), jobs=int(rng.integers(1, 4)))
        variants, seeds, epochs = (int(rng.integers(1, n)) for n in (12, 6, 16))
        prune = bool(rng.integers(2))
        limit = rng.uniform(60, 4000)
        try:
            plan = plan_grid(limit, timing, variants, seeds, epochs, prune)
        except ValueError:
            smallest = grid_seconds(timing, variants, 1, 1, prune) + REPORT_SECONDS
            assert smallest > limit
            continue
        assert plan.predicted_seconds <= limit
        assert plan.worst_seconds <= limit * (1 + (PRUNE_MARGIN if plan.prune else 0)) + 1e-9
        assert 1 <= plan.seeds <= seeds and 1 <= plan.epochs <= epochs
        assert plan.prune or not prune  # an asked --prune stays on
        # No grid of more epochs, or as many and more seeds, fits without --prune.
        for s, e in itertools.product(range(1, seeds + 1), range(1, epochs + 1)):
            bigger = (e > plan.epochs and s >= min(2, plan.seeds)) or (
                e == plan.epochs and s > plan.seeds
            )
            if bigger and not prune:
                assert grid_seconds(timing, variants, s, e) + REPORT_SECONDS > limit


def test_epoch_seconds_leaves_the_tracing_out():
    result = {"epoch_seconds": [12.0], "first_batch_seconds": [9.0], "validation_seconds": [1.0]}
    # 3 s for 3 batches after the first: 4 s for the 4 of an epoch, and its validation.
    assert epoch_seconds(result, steps=4) == 5.0
    assert epoch_seconds(result, steps=1) == 13.0  # one batch: the tracing cannot be told apart


def test_budget_option_checks():
    with pytest.raises(ValueError, match=r"--budget must be a number of minutes > 0; received 0"):
        CompareOptions(budget=0)
    with pytest.raises(ValueError, match="--budget plans on the time measured on this machine"):
        CompareOptions(budget=5, ray="local")
    # Not part of the runs' configuration: a resumed folder may be given another budget.
    assert "budget" not in CompareOptions(budget=5).run_config("scenes", "files")


def test_a_resumed_folder_keeps_its_epochs_and_prune(tmp_path):
    folder = OutputFolder(tmp_path)
    options = CompareOptions(epochs=10, budget=5)
    assert kept_by_folder(options, folder, True) == (options, False)
    write_json(folder.run_config, {"epochs": 6, "prune": True})
    kept, fixed = kept_by_folder(options, folder, True)
    assert (kept.epochs, kept.prune, fixed) == (6, True, True)
    assert kept_by_folder(options, folder, False) == (options, False)


def test_too_small_a_budget_stops_before_training(tmp_path, monkeypatch, capsys):
    measured = Timing(epoch_seconds=50.0, run_seconds=40.0, phase_seconds=40.0)
    monkeypatch.setattr(budget, "measure", lambda *arguments: measured)
    out = tmp_path / "out"
    assert main(tiny_compare_argv(out, "--budget", "0.5", variants=("cce", "bce"))) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("sm-pixel-ce compare: error: --budget 0.5 min cannot hold even 1 seed")
    assert len(error.splitlines()) == 1
    assert OutputFolder(out).finished_runs() == []


def test_budget_end_to_end(tmp_path, capsys, monkeypatch):
    # A comparison before in this process (another configuration) left seed 0's initial
    # weights: the in-process probe builds its own.
    monkeypatch.setitem(experiment._INITIAL, "configuration", ("another configuration",))
    monkeypatch.setitem(experiment._INITIAL, "weights", {0: [np.zeros(3, np.float32)]})
    out = tmp_path / "out"
    argv = tiny_compare_argv(out, "--budget", "30", "--in-process")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "--budget 30 min: 1 seed(s) x 1 epoch(s) (asked 1 x 1; dropped: nothing)" in printed
    folder = OutputFolder(out)
    with open(folder.report_json) as f:
        report = json.load(f)
    section = report["budget"]
    assert section["planned"] == {"seeds": 1, "epochs": 1, "prune": False, "prune_epochs": []}
    assert section["asked"] == {"seeds": 1, "epochs": 1, "prune": False}
    assert section["seconds_per_epoch"] > 0 and section["seconds_per_run"] >= 0
    assert section["predicted_seconds"] <= 30 * 60
    assert report["config"]["budget"] == 30 and report["config"]["seeds"] == 1
    # The probe trained in a temporary folder: --out holds the one run of the grid.
    assert folder.finished_runs() == [("cce", 0)]
    with open(folder.report_md) as f:
        assert "## Budget" in f.read()


def test_fit_budget_counts_the_runs_finished_before(tmp_path, monkeypatch):
    folder = OutputFolder(tmp_path)
    write_json(folder.run_config, {"epochs": 4, "prune": False})
    finished = folder.run("cce", 0)
    tmp_path.joinpath("runs", "cce-seed0").mkdir(parents=True)
    write_json(finished.result, {"variant": "cce", "seed": 0})
    probed = []

    def measure(data, options, counts, tasks, log):
        probed.extend((t.variant, t.seed) for t in tasks)
        return Timing(epoch_seconds=10.0, run_seconds=20.0, phase_seconds=20.0)

    monkeypatch.setattr(budget, "measure", measure)
    options = CompareOptions(variants="cce,bce", seeds=3, epochs=10, budget=6)
    options, kept = kept_by_folder(options, folder, resume=True)
    planned, plan = budget.fit_budget(None, options, folder, None, 0.0, True, kept, print)
    # The finished run is neither probed nor paid for: 5 runs of 20 + 40 s and the report fit in
    # 6 minutes, 6 would not; the epochs are the folder's.
    assert probed == [("bce", 0), ("cce", 1), ("bce", 1), ("cce", 2), ("bce", 2)]
    assert (planned.seeds, planned.epochs, plan.finished) == (3, 4, 1)
    assert plan.predicted_seconds == pytest.approx(5 * 60 + REPORT_SECONDS, abs=1)


def test_initial_weights_are_kept_per_seed_for_one_model_configuration(tmp_path, monkeypatch):
    """A seed's initial weights are built once for a configuration; another configuration in
    the same process (another comparison) builds its own, with no call to forget them."""
    monkeypatch.setattr(experiment, "_INITIAL", {"configuration": None, "weights": {}})
    folder = str(write_mask_folder(tmp_path / "data"))
    held_out = split(FolderSource(pair_files(folder), 32), 0.25, seed=0)
    three = CompareOptions(data=folder, classes=3, size=32, encoder_weights=None)
    first = experiment.initial_weights(held_out, three, 0)
    assert experiment.initial_weights(held_out, three, 0) is first  # built once
    four = experiment.initial_weights(held_out, dataclasses.replace(three, classes=4), 0)
    assert (first[-1].shape, four[-1].shape) == ((3,), (4,))  # the head's bias, per class
    again = experiment.initial_weights(held_out, three, 0)  # rebuilt: one configuration kept
    assert again is not first and len(again) == len(first)
    assert all(np.array_equal(a, b) for a, b in zip(again, first))  # the seed fixes them
