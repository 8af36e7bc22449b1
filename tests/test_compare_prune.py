"""``--prune`` stops a variant that is clearly behind and continues the others, each variant's
model compiled once for all its phases and seeds, with the numbers of a run without
``--prune``."""

import json
import os

import pytest
from conftest import tiny_compare_argv

from sm_pixel_ce.cli import main
from sm_pixel_ce.compare.layout import OutputFolder
from sm_pixel_ce.compare.prune import prune_epochs

# Scheduling is the same Python in both Keras flavours (test_compare.py checks each flavour's
# training): the Keras 3 process alone runs these.
pytestmark = pytest.mark.one_flavor

#: pixel_cce scaled by 1e-6 learns next to nothing (plain SGD's steps shrink a million-fold).
SLOW = "1e-06xpixel_cce"
#: SGD with momentum: an optimizer state that a run's phases must carry on.
SETTINGS = ("--images", "32", "--batch-size", "2", "--epochs", "2", "--momentum", "0.5")


def test_prune_epochs():
    assert prune_epochs(10) == [3, 5]
    assert prune_epochs(30) == [8, 15]
    assert prune_epochs(4) == [1, 2]
    assert prune_epochs(2) == [1]
    assert prune_epochs(1) == []


def test_prune_stops_a_variant_far_behind_and_the_survivor_is_unchanged(tmp_path, capsys):
    plain = tmp_path / "plain"
    assert main(tiny_compare_argv(plain, *SETTINGS, variants=("cce",))) == 0
    capsys.readouterr()
    pruned = tmp_path / "pruned"
    variants = ("cce", "1e-06*pixel_cce")
    argv = tiny_compare_argv(pruned, *SETTINGS, "--prune", "--jobs", "2", variants=variants)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    folder = OutputFolder(pruned)
    with open(folder.prune) as f:
        decisions = json.load(f)["decisions"]
    # Scored at epoch 1 of 2 (ceil(2/4) = ceil(2/2) = 1).
    assert [d["epoch"] for d in decisions] == [1] and decisions[0]["stopped"] == [SLOW]
    assert f"--prune: {SLOW} stops at epoch 1 of 2" in printed
    # A process per variant, its model compiled once: cce's 2 phases in one.
    assert printed.count("compiled once for its phases and seeds") == 2, printed
    for seed in (0,):
        stopped = folder.run(SLOW, seed).load_result()
        assert stopped["stopped_at"] == 1 and stopped["epochs_planned"] == 2
        because = stopped["stopped_because"]
        assert because["best"] == "cce" and 0 < because["low"] <= because["difference"]
        assert because["difference"] == decisions[0]["versus"][SLOW]["difference"]
        assert stopped["val_miou_per_epoch"] == [stopped["miou"]]
        assert len(stopped["image_counts"]) == 8  # 8 validation images
        # Its model, saved from the checkpoint of the epoch it stopped at, reloads the same.
        assert os.path.isfile(stopped["model_path"]) and stopped["reload_max_abs_diff"] < 1e-5
        # The survivor, trained in two phases, has the numbers of the run without --prune.
        alone = OutputFolder(plain).run("cce", seed).load_result()
        survivor = folder.run("cce", seed).load_result()
        for key in ("miou", "per_class_iou", "val_loss", "train_loss", "val_miou_per_epoch"):
            assert survivor[key] == alone[key], (key, seed)
        assert survivor["image_counts"] == alone["image_counts"]
        # Its model, saved from its last checkpoint in a fresh process (not in cce's kept one).
        assert f"[cce] seed {seed}: saved in {survivor['model_path']}" in printed
        assert os.path.isfile(survivor["model_path"]) and survivor["reload_max_abs_diff"] < 1e-5
        assert survivor["image_counts_at"]["1"] != survivor["image_counts"]
        for run in (folder.run(SLOW, seed), folder.run("cce", seed)):
            assert not os.path.exists(run.checkpoint) and not os.path.exists(run.phase)
    # --resume needs --prune (it is part of the run configuration) and trains nothing more.
    capsys.readouterr()
    no_prune = [a for a in argv if a != "--prune"]
    assert main(no_prune + ["--resume"]) == 2
    assert "--prune True there, False here" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"[{SLOW}] seed 0: already in" in printed and "seed 0: training" not in printed
