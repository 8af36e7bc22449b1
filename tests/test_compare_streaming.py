"""``compare`` on real-sized data: streamed metrics equal the in-memory ones, bad files are named,
runs are saved as they finish and resumed after Ctrl-C, encoders start from a weights file."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import reference
import tensorflow as tf
from conftest import tiny_compare_argv, write_mask_folder
from PIL import Image

from sm_pixel_ce.class_weights import count_class_pixels
from sm_pixel_ce.cli import main
from sm_pixel_ce.compare import evaluation
from sm_pixel_ce.compare.encoders import build_encoder
from sm_pixel_ce.compare.options import CompareOptions
from sm_pixel_ce.compare.splitting import split, split_indices
from sm_pixel_ce.compare.training import augment, train_variant, training_dataset
from sm_pixel_ce.compare.variants import build_model, loss_for, targets_for
from sm_pixel_ce.data import FolderSource, load_folder, pair_files
from sm_pixel_ce.flavor import IS_KERAS_3, keras


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


# --- streamed metrics ----------------------------------------------------------------------------


def test_streaming_score_equals_the_whole_set_score(rng):
    logits = rng.normal(size=(13, 8, 8, 4)) * 3
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, 4, (13, 8, 8))
    labels[:, 0] = 255
    whole = reference.score(probabilities, labels, 4, ignore_index=255)
    scores = evaluation.StreamingScore(4, ignore_index=255)
    for start, stop in ((0, 1), (1, 6), (6, 13)):
        scores.update(probabilities[start:stop], labels[start:stop])
    streamed = scores.result()
    assert set(streamed) == set(whole)
    for key in ("miou", "pixel_accuracy", "binary_accuracy", "ece"):
        assert streamed[key] == pytest.approx(whole[key], abs=1e-12), key
    assert streamed["per_class_iou"] == pytest.approx(whole["per_class_iou"], abs=1e-12)


def test_streaming_score_of_no_counted_pixel_is_undefined():
    scores = evaluation.StreamingScore(3, ignore_index=255)
    scores.update(np.full((1, 2, 2, 3), 1 / 3), np.full((1, 2, 2), 255))
    result = scores.result()
    assert result["miou"] is None and result["pixel_accuracy"] is None
    assert result["per_class_iou"] == [None, None, None]
    assert result == reference.score(np.full((1, 3), 1 / 3), [255], 3, 255)


# Streaming the scores over a folder: the same NumPy counting in both flavours.
@pytest.mark.one_flavor
@pytest.mark.parametrize(
    "variant", ["reshape", pytest.param("cce-weighted", marks=pytest.mark.slow)]
)
def test_streamed_metrics_equal_in_memory_ones_on_a_folder(tmp_path, variant):
    folder = str(write_mask_folder(tmp_path / "data"))
    options = CompareOptions(
        variants=(variant,),
        data=folder,
        classes=3,
        size=32,
        ignore_index=255,
        epochs=1,
        batch_size=4,
    )
    held_out = split(FolderSource(pair_files(folder), 32), 0.25, seed=0)
    # In memory, as compare did before it streamed: the whole folder loaded, split by index.
    images, masks = load_folder(folder, classes=3, size=32, ignore_index=255)
    train, val = split_indices(len(images), 0.25, seed=0)
    assert held_out.val.names == [pair_files(folder)[i][0] for i in val]
    # The training batches are the in-memory ones: same files, same shuffled order.
    streamed = [m for _, m in training_dataset("cce", held_out.train, options, 0)]
    in_memory = tf.data.Dataset.from_tensor_slices((images[train], masks[train]))
    in_memory = in_memory.shuffle(len(train), seed=0, reshuffle_each_iteration=True).batch(4)
    for a, (_, b) in zip(streamed, in_memory):
        np.testing.assert_array_equal(a, b)

    keras.utils.set_random_seed(0)
    initial = build_model("cce", "Unet", "resnet18", 3, 32).get_weights()
    counted = []

    def class_counts():
        counted.append(1)
        return count_class_pixels(masks[train], 3, 255)

    result, model = train_variant(variant, held_out, options, initial, 0, class_counts, print)
    assert len(counted) == (variant == "cce-weighted")
    outputs = np.asarray(model(images[val], training=False))
    probabilities = outputs.reshape(len(val), 32, 32, 3)
    whole = reference.score(probabilities, masks[val], 3, ignore_index=255)
    for key in ("miou", "pixel_accuracy", "binary_accuracy", "ece"):
        assert result[key] == pytest.approx(whole[key], abs=1e-6), key
    assert result["per_class_iou"] == pytest.approx(whole["per_class_iou"], abs=1e-6)
    model.compile(loss=loss_for(variant, class_counts, 3, 255), metrics=["accuracy"])
    targets = targets_for(variant, masks[val], 3, 255)
    evaluated = model.evaluate(images[val], targets, verbose=0, return_dict=True)
    assert result["keras_accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-6)
    assert result["val_loss"] == pytest.approx(evaluated["loss"], rel=1e-5, abs=1e-6)


def test_augment_moves_image_and_mask_together():
    # Left half class 1 (red), right half class 2 (blue): a flip or crop must move both alike.
    mask = np.ones((32, 32), np.uint8)
    mask[:, 16:] = 2
    image = np.zeros((32, 32, 3), np.float32)
    image[mask == 1, 0] = 1.0
    image[mask == 2, 2] = 1.0
    data = tf.data.Dataset.from_tensors((image, mask)).repeat(24)
    flipped = 0
    augmented = augment(data, seed=5, size=32)
    for epoch in range(2):  # one dataset, two passes: as fit's epochs
        pairs = list(augmented.as_numpy_iterator())
        if epoch == 0:
            first = pairs
        for out_image, out_mask in pairs:
            assert set(np.unique(out_mask)) <= {1, 2}  # nearest neighbour: no new values
            colour = np.where(out_image[..., 0] > out_image[..., 2], 1, 2)
            assert np.mean(colour == out_mask) > 0.95
            flipped += out_mask[0, 0] == 2
    assert 0 < flipped < 48
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, pairs))  # redrawn per pass


# --- bad files through the command ---------------------------------------------------------------


def _compare(tmp_path, folder, *extra):
    return tiny_compare_argv(tmp_path / "out", *extra, data=folder)


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sm-pixel-ce compare: error: "), err
    return err[0]


@pytest.mark.one_flavor  # reading, --skip-bad and --resume checks; training is the same code
def test_bad_files_stop_the_command_naming_the_file(tmp_path, capsys):
    folder = write_mask_folder(tmp_path / "data")
    data = (folder / "images" / "003.png").read_bytes()
    (folder / "images" / "003.png").write_bytes(data[: len(data) // 2])
    assert main(_compare(tmp_path, folder)) == 1
    line = _one_error_line(capsys)
    assert f"{folder}/images/003.png: cannot decode the image" in line
    Image.fromarray(np.zeros((40, 32), np.uint8)).save(folder / "masks" / "005.png")
    assert main(_compare(tmp_path, folder, "--skip-bad")) == 0
    with open(tmp_path / "out" / "report.json") as f:
        config = json.load(f)["config"]
    assert [s["file"] for s in config["skipped"]] == [
        f"{folder}/images/003.png",
        f"{folder}/masks/005.png",
    ]
    assert "the mask is 32x40 px but its image" in config["skipped"][1]["reason"]
    assert config["train_images"] + config["val_images"] == 6
    with open(tmp_path / "out" / "report.md") as f:
        markdown = f.read()
    assert "Skipped 2 damaged pair(s)" in markdown and f"{folder}/masks/005.png" in markdown

    # Resume: the finished run is kept, never retrained; other options are refused by name.
    argv = _compare(tmp_path, folder, "--skip-bad")
    assert main(argv) == 2
    assert "already holds 1 finished run(s); pass --resume" in _one_error_line(capsys)
    assert main(argv + ["--resume", "--epochs", "2", "--lr", "0.01"]) == 2
    line = _one_error_line(capsys)
    assert "--epochs 1 there, 2 here" in line and "--lr 0.05 there, 0.01 here" in line
    with open(tmp_path / "out" / "runs" / "cce-seed0" / "result.json") as f:
        saved = json.load(f)
    assert main(argv + ["--resume"]) == 0
    printed = capsys.readouterr().out
    assert "[cce] seed 0: already in" in printed and "[cce] seed 0: training" not in printed
    with open(tmp_path / "out" / "report.json") as f:
        assert json.load(f)["results"][0]["seconds"] == saved["seconds"]


def test_a_bad_file_found_during_training_is_named(tmp_path, capsys, monkeypatch):
    folder = write_mask_folder(tmp_path / "data")
    data = (folder / "images" / "006.png").read_bytes()
    (folder / "images" / "006.png").write_bytes(data[: len(data) // 2])
    # As if the file were damaged after the check: the check lets every pair through.
    monkeypatch.setattr(
        "sm_pixel_ce.compare.reading.check_pairs", lambda pairs, *a, **k: (pairs, [])
    )
    assert main(_compare(tmp_path, folder)) == 1
    line = _one_error_line(capsys)
    assert f"{folder}/images/006.png: cannot decode the image" in line


# --- resume --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs_and_resume_skips_them(tmp_path, capsys):
    folder = write_mask_folder(tmp_path / "data")
    argv = _compare(tmp_path, folder)
    argv[argv.index("--epochs") + 1] = "3"
    argv[argv.index("--variants") + 1] = "cce,bce"
    process = subprocess.Popen(
        [sys.executable, "-m", "sm_pixel_ce", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("[bce] seed 0: training"):
            time.sleep(1.0)  # inside bce's training
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(lines) + out + err
    assert "finished runs saved in" in err and "cce seed 0" in err
    assert "Not finished: bce seed 0" in err
    assert "Traceback" not in err
    resume = err.strip().splitlines()[-1].strip()
    assert resume.startswith("sm-pixel-ce compare ") and resume.endswith("--resume")
    assert "--epochs 3" in resume and "--ignore-index 255" in resume
    runs = tmp_path / "out" / "runs"
    assert (runs / "cce-seed0" / "result.json").is_file()
    assert not (runs / "bce-seed0" / "result.json").exists()
    with open(runs / "cce-seed0" / "result.json") as f:
        cce = json.load(f)

    # The same folder without --resume, or with another configuration, is refused.
    assert main(argv) == 2
    assert "already holds 1 finished run(s); pass --resume" in _one_error_line(capsys)
    other = argv + ["--resume"]
    other[other.index("--epochs") + 1] = "2"
    other[other.index("--size") + 1] = "64"
    assert main(other) == 2
    line = _one_error_line(capsys)
    assert "--epochs 3 there, 2 here" in line and "--size 32 there, 64 here" in line

    capsys.readouterr()
    assert main(argv + ["--resume"]) == 0
    printed = capsys.readouterr().out
    assert "[cce] seed 0: already in" in printed and "[cce] seed 0: training" not in printed
    assert "[bce] seed 0: training" in printed
    with open(tmp_path / "out" / "report.json") as f:
        results = json.load(f)["results"]
    assert [r["variant"] for r in results] == ["cce", "bce"]
    assert results[0]["miou"] == cce["miou"] and results[0]["seconds"] == cce["seconds"]


# --- encoder weights -----------------------------------------------------------------------------


def _encoder_file(tmp_path, backbone="resnet18", size=32):
    keras.utils.set_random_seed(7)
    encoder = build_encoder(backbone, size)
    for layer in encoder.layers:  # recognisable values, unlike a fresh initialisation
        layer.set_weights([w * 1.5 + 0.01 for w in layer.get_weights()])
    path = str(tmp_path / ("encoder.weights.h5" if IS_KERAS_3 else "encoder.h5"))
    encoder.save_weights(path)
    return path, {layer.name: layer.get_weights() for layer in encoder.layers if layer.weights}


def test_encoder_weights_from_a_file_are_in_the_encoder(tmp_path):
    path, expected = _encoder_file(tmp_path)
    for arch, size in (("Unet", 32), ("PSPNet", 48)):
        model = build_model("cce", arch, "resnet18", 3, size, encoder_weights=path)
        found = 0
        for name, weights in expected.items():
            if arch == "PSPNet" and name not in {layer.name for layer in model.layers}:
                continue
            for a, b in zip(model.get_layer(name).get_weights(), weights):
                np.testing.assert_array_equal(a, b)
            found += 1
        assert found == len(expected) if arch == "Unet" else 0 < found < len(expected)
    with pytest.raises(ValueError, match="is not a file"):
        build_model("cce", "Unet", "resnet18", 3, 32, encoder_weights=str(tmp_path / "no.h5"))
    (tmp_path / "other").mkdir()
    other, _ = _encoder_file(tmp_path / "other", "mobilenetv2")
    with pytest.raises(ValueError, match="cannot load it as resnet18 encoder weights"):
        build_model("cce", "Unet", "resnet18", 3, 32, encoder_weights=other)


@pytest.mark.slow
def test_frozen_pretrained_encoder_augment_and_steps_end_to_end(tmp_path, capsys):
    path, expected = _encoder_file(tmp_path)
    folder = write_mask_folder(tmp_path / "data")
    argv = _compare(tmp_path, folder, "--encoder-weights", path, "--freeze-encoder", "--augment")
    argv += ["--steps-per-epoch", "3", "--predictions", "all"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"encoder_weights='{path}'" in printed
    with open(tmp_path / "out" / "report.json") as f:
        report = json.load(f)
    config = report["config"]
    assert config["encoder_weights"] == path and config["freeze_encoder"] and config["augment"]
    model = keras.models.load_model(str(tmp_path / "out" / "model_cce.keras"))
    # Frozen: every encoder kernel is still the file's after training (sm keeps BatchNorm
    # trainable, so only those may move).
    checked = 0
    for name, weights in expected.items():
        if "bn" in name:
            continue
        for a, b in zip(model.get_layer(name).get_weights(), weights):
            np.testing.assert_array_equal(a, b)
        checked += 1
    assert checked > 10
    saved = np.load(tmp_path / "out" / "predictions.npz")
    assert len(saved["val_images"]) == len(saved["pred_cce"]) == config["val_images"] == 2


def test_imagenet_offline_says_which_file_is_missing(tmp_path):
    env = {
        **_env(),
        "HOME": str(tmp_path),
        "KERAS_HOME": str(tmp_path / ".keras"),
        # Nothing listens there: the download fails at once, and nothing is ever fetched.
        "https_proxy": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    argv = ["compare", "--size", "32", "--images", "4", "--epochs", "1", "--variants", "cce"]
    argv += ["--encoder-weights", "imagenet", "--out", str(tmp_path / "out")]
    process = subprocess.run(
        [sys.executable, "-m", "sm_pixel_ce", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert process.returncode == 1, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    cache = os.path.join(str(tmp_path / ".keras"), "models")
    assert "resnet18_imagenet_1000_no_top.h5 is not in " + cache in lines[0]
    assert "--encoder-weights PATH" in lines[0]
