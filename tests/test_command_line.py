"""The command line opens quietly, repeats itself exactly, and every job's library function works
without it (the demo here; compare, bench and the support matrix in their own test files)."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_TRAINING

from sm_pixel_ce._quiet import is_command_line, verbose_requested
from sm_pixel_ce.data import CLASS_NAMES, make_scenes
from sm_pixel_ce.demo import run_demo
from sm_pixel_ce.flavor import keras

#: A line of TensorFlow's C++ log (I0000 00:00:... port.cc:153] ...) or absl's start-up notice.
TF_LOG_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d|WARNING: All log messages before absl)", re.M)


def _user_env():
    """The environment of a user's shell: no log level set by CI, no framework chosen."""
    env = dict(os.environ)
    for name in ("TF_CPP_MIN_LOG_LEVEL", "SM_FRAMEWORK", "SM_PIXEL_CE_VERBOSE"):
        env.pop(name, None)
    return env


def _command(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "sm_pixel_ce", *args],
        capture_output=True,
        text=True,
        env=_user_env(),
        cwd=cwd,
        timeout=600,
    )


@pytest.mark.parametrize(
    "argv, orig_argv, expected",
    [
        (["/usr/bin/sm-pixel-ce", "compare"], ["python", "/usr/bin/sm-pixel-ce", "compare"], True),
        (["-m", "compare"], ["python", "-m", "sm_pixel_ce", "compare"], True),
        (["-m"], ["python3", "-m", "sm_pixel_ce.__main__"], True),
        (["-m"], ["python", "-m", "sm_pixel_ce.matrix", "build"], False),
        (["-m", "tests"], ["python", "-m", "pytest", "tests"], False),
        (["script.py"], ["python", "script.py"], False),
        (["-c"], ["python", "-c", "import sm_pixel_ce"], False),
    ],
)
def test_only_the_command_line_is_quieted(argv, orig_argv, expected):
    assert is_command_line(argv, orig_argv) is expected


def test_verbose_is_asked_by_flag_or_environment(monkeypatch):
    monkeypatch.delenv("SM_PIXEL_CE_VERBOSE", raising=False)
    assert not verbose_requested(["sm-pixel-ce", "compare"])
    assert verbose_requested(["sm-pixel-ce", "compare", "--verbose"])
    monkeypatch.setenv("SM_PIXEL_CE_VERBOSE", "1")
    assert verbose_requested(["sm-pixel-ce", "compare"])


def test_help_is_quiet_and_verbose_brings_the_logs_back(tmp_path):
    quiet = _command("--help", cwd=tmp_path)
    assert quiet.returncode == 0 and "compare" in quiet.stdout
    assert quiet.stderr == ""
    assert "Segmentation Models: using" not in quiet.stdout
    verbose = _command("--verbose", "--help", cwd=tmp_path)
    assert verbose.returncode == 0
    # What TensorFlow prints depends on the machine; where it prints anything, --verbose shows it.
    assert TF_LOG_LINE.search(verbose.stderr) or verbose.stderr == ""


# Argument checking before any Keras object: the Keras 3 process alone runs it.
@pytest.mark.one_flavor
def test_a_real_error_still_reaches_stderr_in_one_line(tmp_path):
    result = _command("compare", "--size", "50", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "sm-pixel-ce compare: error: --size must be a positive multiple of 32 for --arch Unet; "
        "received 50."
    ]


# Two whole runs: the seeding and the ops are the same code in both flavours; each flavour's
# training is checked by test_compare.py (and tf_keras's quiet logs by the --help test above).
@pytest.mark.one_flavor
def test_compare_is_quiet_and_repeats_to_the_last_digit(tmp_path):
    # Same machine, same versions, same thread count: identical numbers (only seconds differ).
    # One variant: each run is its own process either way, and that is what could differ.
    args = ("--images", "8", *TINY_TRAINING, "--variants", "cce")
    reports = []
    for run in ("a", "b"):
        result = _command("compare", *args, "--out", str(tmp_path / run), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert not TF_LOG_LINE.search(result.stderr), result.stderr[:2000]
        with open(tmp_path / run / "report.json") as file:
            reports.append(json.load(file)["results"])
    timing = re.compile(r"seconds|wall|path")  # what may differ: time, and the output folder
    for first, second in zip(*reports):
        numbers = {k: v for k, v in first.items() if not timing.search(k)}
        assert numbers == {k: v for k, v in second.items() if not timing.search(k)}
        assert 0 < first["miou"] <= 1


def test_run_demo_reports_the_iou_of_its_saved_model(tmp_path):
    result = run_demo(images=8, size=32, epochs=1, batch_size=4, out=str(tmp_path))
    assert os.path.exists(result["path"]) and list(result["per_class_iou"]) == list(CLASS_NAMES)
    # Independently: the saved model's predictions on the held-out scenes, scored in NumPy.
    images, masks = make_scenes(8, size=32, seed=0)
    predicted = keras.models.load_model(result["path"]).predict(images[:2], verbose=0).argmax(-1)
    labels = masks[:2]
    ious = []
    for c in range(len(CLASS_NAMES)):
        union = np.sum((predicted == c) | (labels == c))
        ious.append(np.sum((predicted == c) & (labels == c)) / union if union else None)
    assert result["per_class_iou"] == pytest.approx(dict(zip(CLASS_NAMES, ious)), abs=1e-12)
    assert result["pixel_accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-12)
    with pytest.raises(ValueError, match="multiple of 32"):
        run_demo(size=48)


def test_the_example_script_runs_in_a_fresh_process(tmp_path):
    # Fresh: the import order is what is tested (sm_pixel_ce first chooses tf.keras for sm).
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "examples", "train_unet.py")) as file:
        script = file.read()
    # 32 scenes: the script holds out 24, so 8 train (tf_keras refuses an empty training set).
    # Plain SGD at 32 px: what is tested is the import order and the reload, not the training.
    assert all(part in script for part in ("make_scenes(96, size=64", "epochs=6", '"adam"'))
    script = (
        script.replace("make_scenes(96, size=64", "make_scenes(32, size=32")
        .replace("epochs=6", "epochs=1")
        .replace('"adam"', '"sgd"')
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=_user_env(),
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    accuracy = float(result.stdout.strip().splitlines()[-1].split(":")[1])
    assert 0 <= accuracy <= 1 and (tmp_path / "unet_7_classes.keras").exists()
