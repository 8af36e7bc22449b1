"""``sm-pixel-ce scenes``: the generated scenes written as a data folder (images/, palette masks,
colors.json), read back pixel for pixel by the folder reader every job uses; the journey
scenes -> compare -> evaluate -> predict -> export on it; and the one wording of a model file a
job cannot use, through each job's command line.
"""

import inspect
import json
import re

import numpy as np
import pytest
from PIL import Image

from sm_pixel_ce.cli import main
from sm_pixel_ce.compare.options import CompareOptions
from sm_pixel_ce.data import CLASS_NAMES, FolderReader, make_scenes
from sm_pixel_ce.data.scenes import MASK_COLORS
from sm_pixel_ce.data.writing import COLORS_FILE, write_folder, write_scenes
from sm_pixel_ce.inference.predictor import FORMATS
from sm_pixel_ce.saving import KERAS_FILES, model_file_error

COUNT, SIZE, SEED = 3, 32, 5


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "scenes"
    assert main(["scenes", str(folder), "--count", str(COUNT), "--size", str(SIZE),
                 "--seed", str(SEED)]) == 0  # fmt: skip
    return folder


def _pairs(folder, **options):
    reader = FolderReader(classes=len(CLASS_NAMES), **options)
    pairs, _ = reader.check(reader.pair(str(folder))[0])
    return reader, pairs


@pytest.mark.one_flavor
@pytest.mark.parametrize("colors", [None, "table"], ids=["index-masks", "mask-colors"])
def test_the_folder_reads_back_as_the_embedded_scenes(scenes, colors):
    images, masks = make_scenes(COUNT, size=SIZE, seed=SEED)
    options = {} if colors is None else {"mask_colors": str(scenes / COLORS_FILE)}
    reader, pairs = _pairs(scenes, **options)
    assert len(pairs) == COUNT
    for i, (image_path, mask_path) in enumerate(pairs):
        # 8-bit PNGs: the scene's [0, 1] floats rounded to 255ths, exactly.
        expected = np.round(np.clip(images[i], 0, 1) * 255).astype(np.uint8)
        np.testing.assert_array_equal(reader.image_reader.read(image_path), expected)
        np.testing.assert_array_equal(reader.read_mask(mask_path), masks[i])
    streamed = list(reader.dataset(pairs, SIZE).as_numpy_iterator())
    np.testing.assert_allclose(
        np.stack([image for image, _ in streamed]),
        np.round(np.clip(images, 0, 1) * 255) / 255,
        atol=1e-7,
    )
    np.testing.assert_array_equal(np.stack([mask for _, mask in streamed]), masks)


@pytest.mark.one_flavor
def test_masks_show_the_class_colours_and_the_table_names_them(scenes):
    _, masks = make_scenes(COUNT, size=SIZE, seed=SEED)
    with Image.open(scenes / "masks" / "scene_0000.png") as picture:
        assert picture.mode == "P"
        rgb = np.asarray(picture.convert("RGB"))
    np.testing.assert_array_equal(rgb, np.array(MASK_COLORS, np.uint8)[masks[0]])
    table = json.loads((scenes / COLORS_FILE).read_text())
    assert table == [
        {"class": c, "name": name, "color": list(MASK_COLORS[c])}
        for c, name in enumerate(CLASS_NAMES)
    ]
    reader, _ = _pairs(scenes, mask_colors=str(scenes / COLORS_FILE))
    assert reader.mask_reader.table.class_names(len(CLASS_NAMES)) == list(CLASS_NAMES)
    assert len(set(MASK_COLORS)) == len(CLASS_NAMES)


@pytest.mark.one_flavor
def test_a_folder_with_files_or_a_bad_count_is_one_line(scenes, tmp_path, capsys):
    assert main(["scenes", str(scenes)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sm-pixel-ce scenes: error: {scenes / 'images'} already holds files")
    assert "choose a new or empty folder" in err and len(err.splitlines()) == 1
    assert main(["scenes", str(tmp_path / "new"), "--count", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--count must be an integer >= 1" in err and "Received: count=0" in err
    assert not (tmp_path / "new").exists()


@pytest.mark.one_flavor
def test_write_folder_refuses_masks_without_a_class(tmp_path):
    images, masks = make_scenes(1, size=SIZE)
    with pytest.raises(ValueError, match=r"mask values must be classes in \[0, 1\]"):
        write_folder(tmp_path, images, masks.clip(0, 2), ("a", "b"), ((0, 0, 0), (9, 9, 9)))
    with pytest.raises(ValueError, match="a colour per class: 2 class names but 1"):
        write_folder(tmp_path, images, masks, ("a", "b"), ((0, 0, 0),))


@pytest.mark.one_flavor
def test_the_defaults_are_compares_scenes():
    # compare without --data trains on make_scenes(--images, size=--size, seed=--seed).
    defaults = inspect.signature(write_scenes).parameters
    compare = CompareOptions()
    assert defaults["count"].default == compare.images
    assert defaults["size"].default == compare.size
    assert defaults["seed"].default == compare.seed


def _body(err, job):
    """The message without the job's prefix (``sm-pixel-ce JOB: [error: ]``), on one line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return re.sub(rf"^sm-pixel-ce {job}: (error: )?", "", lines[0])


@pytest.mark.one_flavor
@pytest.mark.parametrize("job", ["evaluate", "predict", "export"])
@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_every_job_words_an_unusable_model_file_alike(scenes, tmp_path, capsys, job, kind):
    model = tmp_path / "model.keras"
    if kind == "corrupt":
        model.write_bytes(b"not a zip archive")
    argv = {
        "evaluate": ["--data", str(scenes), "--out", str(tmp_path / "e")],
        "predict": [str(scenes / "images"), "--out", str(tmp_path / "p")],
        "export": ["--out", str(tmp_path / "m.onnx"), "--format", "onnx"],
    }[job]
    assert main([job, str(model), *argv]) == 1
    found = None if kind == "missing" else (
        "a .keras file that is not a zip archive (truncated or corrupted)"
    )  # fmt: skip
    expected = KERAS_FILES if job == "export" else FORMATS  # evaluate and predict run exports too
    assert _body(capsys.readouterr().err, job) == str(model_file_error(model, found, expected))


@pytest.mark.slow  # three commands train, load and convert a resnet18 U-Net: ~2 min on 2 cores
def test_the_journey_runs_on_the_written_scenes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    journey = [
        "scenes scenes --count 24",
        "scenes test --count 4 --seed 1",
        "compare --data scenes --classes 7 --mask-colors scenes/colors.json --variants cce "
        "--epochs 1 --out runs/compare",
        "evaluate runs/compare/model_cce.keras --data test --out runs/evaluate",
        "predict runs/compare/model_cce.keras test/images --out runs/predict",
        "export runs/compare/model_cce.keras --format onnx --out runs/unet.onnx",
    ]
    for command in journey:
        assert main(command.split()) == 0, command
    out = capsys.readouterr().out
    assert "| background |" in out and "| cross |" in out  # evaluate names the classes
    assert sorted(p.name for p in (tmp_path / "runs" / "predict").glob("*.png")) == [
        f"scene_{i:04d}.png" for i in range(4)
    ]
    assert "argmax agreement 100.00%" in out
