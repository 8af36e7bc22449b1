"""Multi-scale test-time augmentation (``--tta-scales``, with ``--tta`` flips) in ``predict_image``,
``sm-pixel-ce predict`` and ``sm-pixel-ce evaluate``, against MMSegmentation's aug test written in
NumPy (tests/reference.py: the resize, the convolution, the padding and the mean all written
there), on tiny 3x3- and 1x1-convolution models built once."""

import numpy as np
import pytest
from PIL import Image
from reference import aug_test, conv_softmax, resize_bilinear, softmax
from test_evaluate import IGNORE, read_folder, reference_scores

from sm_pixel_ce.cli import main
from sm_pixel_ce.flavor import keras
from sm_pixel_ce.inference.evaluation import evaluate
from sm_pixel_ce.inference.predict import PredictOptions, predict_files
from sm_pixel_ce.inference.predictor import load_predictor
from sm_pixel_ce.inference.tiling import (
    _resize,
    parse_scales,
    predict_batch_scaled,
    predict_image,
)

CLASSES = 3
SCALES = (0.75, 1.0, 1.25)
HFLIP = ((), (1,))
#: tf.image.resize's float32 kernel against the float64 reference (measured: 6e-6 on images).
TOLERANCE = 2e-5


def _weights(kernel_size, seed):
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 2.0, (kernel_size, kernel_size, 3, CLASSES))
    return kernel, rng.normal(0, 0.5, CLASSES)


def _model(kernel, bias, size=None):
    inputs = keras.Input((size, size, 3))
    layer = keras.layers.Conv2D(CLASSES, kernel.shape[0], padding="same")
    model = keras.Model(inputs, keras.layers.Activation("softmax")(layer(inputs)))
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


def _pair(kernel_size, seed):
    """The model's predictor (one trace for every call) and its NumPy twin."""
    kernel, bias = _weights(kernel_size, seed)
    return load_predictor(_model(kernel, bias)), lambda image: conv_softmax(image, kernel, bias)


@pytest.fixture(scope="module")
def spatial():
    """A 3x3 convolution: neither flip- nor scale-equivariant, so every augmentation counts."""
    return _pair(3, 0)


@pytest.fixture(scope="module")
def pointwise():
    """A 1x1 convolution: its answer at a pixel is that pixel's, so tiles give the whole."""
    return _pair(1, 1)


@pytest.fixture(scope="module")
def spatial_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "spatial.keras")
    _model(*_weights(3, 0)).save(path)
    return path


def _image(height, width, seed=0):
    return np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)


@pytest.mark.one_flavor
@pytest.mark.parametrize(
    "given, expected",
    [
        ("0.75,1,1.25", (0.75, 1.0, 1.25)),
        (" 0.5, 1.75 ", (0.5, 1.75)),
        ([1, 0.5], (1.0, 0.5)),
        (2, (2.0,)),
        (None, (1.0,)),
    ],
)
def test_scales_are_parsed(given, expected):
    assert parse_scales(given) == expected


@pytest.mark.one_flavor
@pytest.mark.parametrize(
    "given", ["0", "-1", "0.5,0", "a", "", "1,,2", "nan", "inf", [True], 0, [], "1;2"]
)
def test_bad_scales_name_the_flag(given):
    with pytest.raises(ValueError, match=r"--tta-scales takes positive numbers.*Received"):
        parse_scales(given)


@pytest.mark.one_flavor
@pytest.mark.parametrize("size", [(30, 53), (50, 88), (17, 91), (40, 70)])
def test_the_reference_resize_is_pils_and_tensorflows(size):
    image = _image(40, 70)
    expected = resize_bilinear(image, *size)
    pil = np.stack(
        [
            np.asarray(Image.fromarray(image[..., c]).resize(size[::-1], Image.BILINEAR))
            for c in range(3)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(pil, expected, atol=1e-6)
    np.testing.assert_allclose(_resize(image, *size), expected, atol=TOLERANCE)


@pytest.mark.parametrize("tta, flips", [("none", ((),)), ("hflip", HFLIP)])
def test_whole_image_matches_mmsegmentations_aug_test(spatial, tta, flips):
    model, numpy_model = spatial
    image = _image(42, 58)  # 0.75: 32x44 (31.5 rounds up) padded to 32x64; 1.25: 53x73 to 64x96
    expected = aug_test(numpy_model, image, SCALES, flips)
    probabilities = predict_image(model, image, tta=tta, tta_scales="0.75,1,1.25")
    assert probabilities.shape == (42, 58, CLASSES) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, expected, atol=TOLERANCE)
    # The scales matter, and the probabilities are averaged, not the logits.
    assert np.abs(predict_image(model, image, tta=tta) - expected).max() > 1e-2
    logits = [np.log(aug_test(numpy_model, image, (s,), flips)) for s in SCALES]
    assert np.abs(softmax(np.mean(logits, axis=0)) - expected).max() > 1e-3


def test_one_scale_of_one_is_no_augmentation(spatial):
    model, _ = spatial
    image = _image(40, 56)
    np.testing.assert_array_equal(
        predict_image(model, image, tta_scales="1"), predict_image(model, image)
    )


def test_images_resized_to_a_size_scale_that_size(spatial):
    model, numpy_model = spatial
    image = _image(45, 50, seed=1)
    # --size 32: 0.5 -> 16 -> 32 (the multiple), 1.5 -> 48 -> 64.
    expected = aug_test(numpy_model, image, (0.5, 1.5), HFLIP, size=(32, 32))
    probabilities = predict_image(model, image, size=32, tta="hflip", tta_scales=(0.5, 1.5))
    np.testing.assert_allclose(probabilities, expected, atol=TOLERANCE)


def test_a_batch_at_evaluates_size_is_scaled_alike(spatial):
    model, numpy_model = spatial
    images = np.stack([_image(32, 32, seed) for seed in (2, 3)])
    expected = [aug_test(numpy_model, i, (0.5, 1.5), HFLIP, size=(32, 32)) for i in images]
    probabilities = predict_batch_scaled(model, images, "hflip", "0.5,1.5")
    np.testing.assert_allclose(probabilities, np.stack(expected), atol=TOLERANCE)


@pytest.mark.parametrize(
    "height, width, tile, overlap",
    [
        (40, 70, 32, 0.25),  # 0.5: 20x35, smaller than a tile: reflect-padded to 32x35
        (64, 64, 32, 0.5),
        (70, 65, 64, 0.0),  # 0.5: 35x33, padded to 64x64
    ],
)
def test_tiles_equal_the_whole_image_at_every_scale(pointwise, height, width, tile, overlap):
    model, numpy_model = pointwise
    image = _image(height, width, seed=4)
    scales = (0.5, 1.0, 1.5)
    expected = aug_test(numpy_model, image, scales, HFLIP)
    tiled = predict_image(model, image, tile=tile, overlap=overlap, tta="hflip", tta_scales=scales)
    whole = predict_image(model, image, tta="hflip", tta_scales=scales)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    np.testing.assert_allclose(tiled, expected, atol=TOLERANCE)


def test_a_fixed_size_model_scales_only_in_tiles(pointwise):
    _, numpy_model = pointwise
    kernel, bias = _weights(1, 1)
    fixed = _model(kernel, bias, size=32)
    image = _image(40, 48, seed=5)
    with pytest.raises(ValueError, match=r"32x32 \(HxW\) inputs only.*pass --tile 32.*0.5,1"):
        predict_image(fixed, image, tta_scales="0.5,1")
    tiled = predict_image(fixed, image, tile=32, tta_scales="0.5,1")
    np.testing.assert_allclose(tiled, aug_test(numpy_model, image, (0.5, 1.0)), atol=TOLERANCE)


def test_predict_writes_the_augmented_probabilities(spatial, spatial_file, tmp_path):
    model, numpy_model = spatial
    pixels = np.random.default_rng(6).integers(0, 256, (36, 44, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = tmp_path / "out"
    argv = ["predict", spatial_file, str(tmp_path / "a.png"), "--out", str(out), "--probabilities"]
    assert main([*argv, "--tta", "hflip", "--tta-scales", "0.75,1.25"]) == 0
    expected = aug_test(numpy_model, pixels / 255.0, (0.75, 1.25), HFLIP)
    saved = np.load(out / "a_probabilities.npy")
    np.testing.assert_allclose(saved, expected, atol=2e-3)  # float16 on disk
    mask = np.asarray(Image.open(out / "a.png"))
    decided = np.sort(expected, -1)[..., -1] - np.sort(expected, -1)[..., -2] > 1e-3
    np.testing.assert_array_equal(mask[decided], expected.argmax(-1)[decided])
    result = predict_files(model, [tmp_path / "a.png"], tmp_path / "o2", tta_scales=[0.75, 1.25])
    assert result["options"]["tta_scales"] == "0.75,1.25"


@pytest.mark.one_flavor
def test_predict_options_refuse_bad_scales():
    with pytest.raises(ValueError, match=r"--tta-scales takes .* Received: --tta-scales '1,0'"):
        PredictOptions(tta_scales="1,0")
    assert PredictOptions(tta_scales=(1, 0.5)).tta_scales == "1,0.5"


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_bad_flag_is_one_line(command, spatial_file, tmp_path, capsys):
    path = spatial_file
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    where = ["--out", str(tmp_path / "o")]
    argv = [command, path, str(tmp_path / "a.png"), *where]
    if command == "evaluate":
        argv = [command, path, "--data", str(tmp_path), *where]
    assert main([*argv, "--tta-scales", "0.5,-1"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "--tta-scales takes positive numbers" in error and "'0.5,-1'" in error


def test_evaluate_scores_the_augmented_probabilities(pointwise, tmp_path, mask_folder):
    model, numpy_model = pointwise
    root = mask_folder(tmp_path / "data", count=3, side=40, classes=CLASSES)
    result = evaluate(model, root, ignore_index=IGNORE, tile=32, tta="hflip", tta_scales="0.5,1.5")
    _, images, masks = read_folder(root)
    probabilities = [aug_test(numpy_model, i, (0.5, 1.5), HFLIP) for i in images]
    expected = reference_scores(probabilities, masks)
    np.testing.assert_array_equal(result["confusion"], expected["confusion"])
    for key in ("miou", "aacc", "ece", "brier"):
        assert result[key] == pytest.approx(expected[key], abs=1e-4), key
    assert result["resolution"] == (
        "original (tiles of 32, overlap 0.25), test-time augmentation: hflip and scales 0.5,1.5"
    )
    plain = evaluate(model, root, ignore_index=IGNORE, tile=32)
    assert plain["brier"] != pytest.approx(result["brier"], abs=1e-4)


def test_evaluate_refuses_scales_a_fixed_size_model_cannot_take(tmp_path, mask_folder):
    kernel, bias = _weights(1, 1)
    root = mask_folder(tmp_path / "data", count=1, side=32, classes=CLASSES)
    with pytest.raises(ValueError, match=r"32x32 \(HxW\) inputs only.*--tile 32"):
        evaluate(
            load_predictor(_model(kernel, bias, size=32)), root, ignore_index=IGNORE, tta_scales="2"
        )


def test_large_images_are_resized_a_few_channels_at_a_time(spatial, monkeypatch):
    from sm_pixel_ce.inference import tiling

    model, numpy_model = spatial
    image = _image(42, 58, seed=7)
    monkeypatch.setattr(tiling, "RESIZE_BLOCK", 2 * 42 * 58)  # two channels per call
    expected = aug_test(numpy_model, image, (0.75, 1.25), HFLIP)
    probabilities = predict_image(model, image, tta="hflip", tta_scales="0.75,1.25")
    np.testing.assert_allclose(probabilities, expected, atol=TOLERANCE)


def test_evaluate_at_a_size_scales_each_resized_image(spatial, tmp_path, mask_folder):
    model, numpy_model = spatial
    root = mask_folder(tmp_path / "data", count=3, side=32, classes=CLASSES)
    result = evaluate(model, root, ignore_index=IGNORE, size=32, tta="hflip", tta_scales="0.5,1.5")
    _, images, masks = read_folder(root)
    probabilities = [aug_test(numpy_model, i, (0.5, 1.5), HFLIP, size=(32, 32)) for i in images]
    expected = reference_scores(probabilities, masks)
    np.testing.assert_array_equal(result["confusion"], expected["confusion"])
    for key in ("miou", "ece", "brier"):
        assert result[key] == pytest.approx(expected[key], abs=1e-4), key
    assert result["resolution"].startswith("32x32 (whole images resized), test-time")
