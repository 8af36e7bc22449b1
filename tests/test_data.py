"""The --data folder loader (tf.data, palette masks, nearest resize, clear errors) and the
scenes."""

import numpy as np
import pytest
from PIL import Image

from sm_pixel_ce.data import (
    CLASS_NAMES,
    NUM_CLASSES,
    DataError,
    load_folder,
    make_scenes,
    pair_files,
)

# A palette whose colours are not their indices, so only index-preserving decoding passes.
_PALETTE = [200, 10, 10, 10, 200, 10, 10, 10, 200] + [0, 0, 0] * 252 + [255, 255, 255]


def _mask(seed, side, classes=3):
    rng = np.random.default_rng(seed)
    mask = np.repeat(
        np.repeat(rng.integers(0, classes, (side // 8, side // 8)), 8, 0), 8, 1
    ).astype(np.uint8)
    mask[:2] = 255  # void border
    return mask


def _write_folder(root, count=4, side=32, palette_at=(1,), jpeg_at=(2,)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    masks = []
    for i in range(count):
        mask = _mask(i, side)
        m = mask.astype(np.int32)
        image = np.stack([m * 60 % 256, np.full_like(m, 90), 255 - m * 40 % 256], -1).astype(
            np.uint8
        )
        suffix = ".jpg" if i in jpeg_at else ".png"
        Image.fromarray(image).save(root / "images" / f"img{i}{suffix}")
        m = Image.fromarray(mask)
        if i in palette_at:
            m = m.convert("P")
            m.putpalette(_PALETTE)
            m.putdata(mask.ravel().tolist())
        m.save(root / "masks" / f"img{i}.png")
        masks.append(mask)
    return np.stack(masks)


def test_scenes_are_deterministic_and_in_range():
    a_images, a_masks = make_scenes(4, size=32, seed=3)
    b_images, b_masks = make_scenes(4, size=32, seed=3)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_masks, b_masks)
    assert a_images.dtype == np.float32 and a_masks.dtype == np.uint8
    assert 0.0 <= a_images.min() and a_images.max() <= 1.0
    assert a_masks.max() < NUM_CLASSES == len(CLASS_NAMES) == 7
    assert not np.array_equal(a_masks, make_scenes(4, size=32, seed=4)[1])


def test_load_folder_keeps_palette_indices_and_ignore_value(tmp_path):
    expected = _write_folder(tmp_path)
    palette = Image.open(tmp_path / "masks" / "img1.png")
    assert palette.mode == "P"  # the file really is a palette PNG
    images, masks = load_folder(str(tmp_path), classes=3, size=32, ignore_index=255)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    # Same size: nearest neighbour must reproduce every class index, palette file included.
    np.testing.assert_array_equal(masks, expected)


def test_masks_are_resized_with_nearest_neighbour(tmp_path):
    expected = _write_folder(tmp_path, side=64)
    _, masks = load_folder(str(tmp_path), classes=3, size=32, ignore_index=255)
    assert masks.shape == (4, 32, 32)
    # Halving 8x8 blocks with nearest neighbour keeps exact values, no blends between classes.
    assert set(np.unique(masks)) <= {0, 1, 2, 255}
    np.testing.assert_array_equal(masks, expected[:, ::2, ::2])


def test_pairs_by_stem(tmp_path):
    _write_folder(tmp_path)
    pairs = pair_files(str(tmp_path))
    assert [p.split("/")[-1] for p, _ in pairs] == ["img0.png", "img1.png", "img2.jpg", "img3.png"]
    assert all(m.endswith(p.split("/")[-1].rsplit(".", 1)[0] + ".png") for p, m in pairs)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no_masks", "masks/ (layout"),
        ("unpaired", "unpaired files (images without a mask: img3.png"),
        (
            "out_of_range",
            "mask value(s) [7] out of range; expected values in [0, 2] or the ignore value 255",
        ),
        ("rgb_mask", "Received mode RGB"),
    ],
)
def test_bad_folders_raise_clear_errors(tmp_path, damage, message):
    _write_folder(tmp_path)
    if damage == "no_masks":
        for f in (tmp_path / "masks").iterdir():
            f.unlink()
        (tmp_path / "masks").rmdir()
    elif damage == "unpaired":
        (tmp_path / "masks" / "img3.png").unlink()
    elif damage == "out_of_range":
        mask = _mask(0, 32)
        mask[5, 5] = 7
        Image.fromarray(mask).save(tmp_path / "masks" / "img0.png")
    else:
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "masks" / "img0.png")
    with pytest.raises(DataError) as info:
        load_folder(str(tmp_path), classes=3, size=32, ignore_index=255)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_value_255_without_ignore_index_is_an_error(tmp_path):
    _write_folder(tmp_path)
    with pytest.raises(DataError, match=r"\[255\] out of range.*no --ignore-index set"):
        load_folder(str(tmp_path), classes=3, size=32)
