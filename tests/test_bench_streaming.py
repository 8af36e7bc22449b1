"""``sm-pixel-ce bench --compare-scaling``: the points, the generated folders, the table, and
(slow) one real measured run."""

import numpy as np
import pytest
from PIL import Image

from sm_pixel_ce.bench import format_compare_scaling, parse_points, run_compare_scaling
from sm_pixel_ce.bench.streaming import epoch_time_fit, write_scene_folder
from sm_pixel_ce.data import check_pairs, make_scenes, pair_files


def test_parse_points():
    assert parse_points("500,2000, 8000,2000x256") == (
        (500, 128),
        (2000, 128),
        (8000, 128),
        (2000, 256),
    )
    for bad in ("500x100", "2", "ten", "500x"):
        with pytest.raises(ValueError, match="COUNT or COUNTxSIDE"):
            parse_points(bad)
    with pytest.raises(ValueError, match="at least one point"):
        parse_points(",")


def test_write_scene_folder_is_a_valid_compare_folder(tmp_path):
    folder = write_scene_folder(str(tmp_path / "f"), 7, 32, chunk=3)
    pairs = pair_files(folder)
    assert len(pairs) == 7
    good, skipped = check_pairs(pairs, 7)
    assert len(good) == 7 and not skipped
    # Chunk k is make_scenes(chunk, seed=start): the masks are the generated ones.
    _, masks = make_scenes(3, size=32, seed=3)
    np.testing.assert_array_equal(np.asarray(Image.open(pairs[4][1])), masks[1])


def test_format_compare_scaling():
    row = {
        "images": 500,
        "size": 128,
        "train_images": 375,
        "val_images": 125,
        "peak_rss_mb": 2100.4,
        "wall_s": 90.2,
        "train_s": 60.0,
        "steady_s": 40.0,
        "validation_s": 5.0,
        "ms_per_image": 40000 / 367,
        "returncode": 0,
    }
    result = {
        "config": {
            "variants": ["cce"],
            "backbone": "mobilenetv2",
            "epochs": 1,
            "batch_size": 8,
            "cpu_count": 2,
        },
        "points": [row, {**row, "images": 1000, "train_images": 750, "peak_rss_mb": 2150.4}],
        "main_size": 128,
        "rss_growth_mb": 50.0,
        "epoch_fit": epoch_time_fit(
            [row, {**row, "images": 1000, "train_images": 750, "steady_s": 78.3}]
        ),
        "elapsed_s": 300,
    }
    text = format_compare_scaling(result)
    assert "| 500 | 128 | 375 / 125 | 2100 | 90 | - | 60 | 40 | 5 | 109.0 |" in text
    assert "peak RSS +50 MB." in text
    # Two points: the line passes through both, 38.3 s for 375 more images.
    assert "= 2 s + 102.1 ms x training images" in text and "residual 0 %" in text


@pytest.mark.slow
def test_compare_scaling_measures_real_runs(tmp_path):
    result = run_compare_scaling([(12, 32), (24, 32)], workdir=str(tmp_path), epochs=1)
    assert [r["returncode"] for r in result["points"]] == [0, 0]
    for row in result["points"]:
        assert row["train_images"] + row["val_images"] == row["images"]
        assert 200 < row["peak_rss_mb"] < 20000 and row["wall_s"] > row["train_s"] > 0
    assert result["rss_growth_mb"] == pytest.approx(
        result["points"][1]["peak_rss_mb"] - result["points"][0]["peak_rss_mb"]
    )
