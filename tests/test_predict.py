"""``sm_pixel_ce.predict_image``, its predictors and ``sm-pixel-ce predict``.

Tiny hand-made Keras models, built once: a 1x1 convolution + ``pixel_softmax`` (its answer is
exactly per pixel, so any tiling must give the whole-image answer), a 3x3 one (not
flip-equivariant, for TTA) and a fixed 32 x 32 one (the resize path). The exported files are
of the 1x1 model (about 1-3 s each).
"""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import sm_pixel_ce
from sm_pixel_ce.cli import main
from sm_pixel_ce.data import FolderReader
from sm_pixel_ce.exporting.errors import ModelFileError
from sm_pixel_ce.flavor import keras
from sm_pixel_ce.inference.predict import labels, model_input, predict_files
from sm_pixel_ce.inference.predictor import Predictor, load_predictor
from sm_pixel_ce.inference.tiling import WINDOW_FLOOR, blend_window, predict_image, tile_starts

CLASSES = 4


def _model(kernel, shape=(None, None, 3), classes=CLASSES):
    inputs = keras.Input(shape)
    initializer = keras.initializers.RandomNormal(stddev=1.0, seed=kernel)
    logits = keras.layers.Conv2D(classes, kernel, padding="same", kernel_initializer=initializer)(
        inputs
    )
    return keras.Model(inputs, keras.layers.Activation("pixel_softmax")(logits))


@pytest.fixture(scope="module")
def pointwise():
    return _model(1)


@pytest.fixture(scope="module")
def spatial():
    return _model(3)


@pytest.fixture(scope="module")
def fixed():
    return _model(3, shape=(32, 32, 3))


@pytest.fixture(scope="module")
def model_file(pointwise, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "pointwise.keras")
    pointwise.save(path)
    return path


def _image(height, width, seed=0):
    return np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)


def _keras(model, image):
    return model.predict(image[None], verbose=0)[0]


@pytest.mark.parametrize(
    "length, tile, stride, expected",
    [
        (1000, 512, 384, [0, 384, 488]),
        (1100, 512, 384, [0, 384, 588]),
        (1024, 512, 512, [0, 512]),
        (512, 512, 384, [0]),
        (300, 512, 384, [0]),
        (10, 4, 3, [0, 3, 6]),
        (11, 4, 3, [0, 3, 6, 7]),
        (5, 5, 1, [0]),
    ],
)
def test_tile_starts_as_mmsegmentation(length, tile, stride, expected):
    assert tile_starts(length, tile, stride) == expected


def test_tile_starts_refuses_a_zero_stride():
    with pytest.raises(ValueError, match="stride must be an integer >= 1. Received: stride=0"):
        tile_starts(100, 32, 0)


def test_blend_window_is_positive_and_peaked_at_the_centre():
    window = blend_window(33, 20)
    assert window.shape == (33, 20) and window.dtype == np.float32
    assert window.min() >= WINDOW_FLOOR and window.max() == pytest.approx(1.0)
    assert np.unravel_index(window.argmax(), window.shape)[0] == 16
    np.testing.assert_allclose(window, window[::-1, ::-1], rtol=1e-6)
    assert np.all(np.diff(window[16, :10]) > 0) and np.all(np.diff(window[:16, 10]) > 0)
    assert window[0, 0] < window[0, 10] < window[16, 10]


@pytest.mark.parametrize(
    "height, width, tile, overlap",
    [
        (70, 99, None, 0.25),  # whole, padded to 96 x 128 and cropped
        (70, 99, 32, 0.0),
        (70, 99, 32, 0.25),
        (70, 99, 64, 0.5),
        (70, 99, 40, 0.9),  # rounded up to 64, stride 6
        (33, 65, 32, 0.75),
        (1100, 40, None, 0.25),  # longer than 1024: tiles of 512, the short side padded
    ],
)
def test_tiles_of_a_pointwise_model_equal_the_whole_image(pointwise, height, width, tile, overlap):
    image = _image(height, width)
    expected = _keras(pointwise, image)
    probabilities = predict_image(pointwise, image, tile=tile, overlap=overlap, batch_size=3)
    assert probabilities.shape == (height, width, CLASSES)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


@pytest.mark.parametrize("tta", ["hflip", "hvflip"])
def test_tta_of_a_flip_equivariant_model_changes_nothing(pointwise, tta):
    image = _image(40, 70)
    plain = predict_image(pointwise, image, tile=32, tta="none")
    np.testing.assert_allclose(predict_image(pointwise, image, tile=32, tta=tta), plain, atol=1e-6)


def test_tta_averages_the_flipped_predictions(spatial):
    image = _image(64, 64)
    flips = [(), (1,), (0,), (0, 1)]
    expected = np.mean(
        [np.flip(_keras(spatial, np.flip(image, axes)), axes) for axes in flips], axis=0
    )
    np.testing.assert_allclose(predict_image(spatial, image, tta="hvflip"), expected, atol=1e-6)
    assert np.abs(predict_image(spatial, image) - expected).max() > 1e-3


def test_a_fixed_size_model_predicts_the_image_resized(fixed):
    image = _image(50, 70)
    small = tf.clip_by_value(tf.image.resize(image, (32, 32), antialias=True), 0.0, 1.0)
    expected = tf.image.resize(_keras(fixed, small.numpy()), (50, 70), antialias=True).numpy()
    probabilities = predict_image(fixed, image)
    assert probabilities.shape == (50, 70, CLASSES)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(
        predict_image(fixed, _image(32, 32), tile=32), _keras(fixed, _image(32, 32)), atol=1e-6
    )


def test_a_fixed_size_model_sees_what_compare_reads(tmp_path):
    """The predictor's input for a file is FolderReader.image at the model's size, exactly."""
    path = tmp_path / "a.png"
    Image.fromarray((_image(45, 61) * 255).astype(np.uint8)).save(path)
    seen = []

    def run(images):
        seen.append(images)
        return np.ones(images.shape[:3] + (2,), np.float32) / 2

    predictor = Predictor(run, "keras", None, 3, (32, 32), num_classes=2)
    predict_files(predictor, [str(path)], tmp_path / "out", log=None)
    np.testing.assert_array_equal(seen[-1][0], FolderReader().image(str(path), 32, 32).numpy())


def test_a_flat_output_is_reshaped_back():
    inputs = keras.Input((32, 32, 3))
    pixels = keras.layers.Reshape((32 * 32, 3))(keras.layers.Conv2D(3, 1)(inputs))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(pixels))
    predictor = load_predictor(model)
    assert (predictor.num_classes, predictor.fixed_size, predictor.activation) == (
        3,
        (32, 32),
        "softmax",
    )
    image = _image(32, 32)
    expected = _keras(model, image).reshape(32, 32, 3)
    np.testing.assert_allclose(predict_image(predictor, image), expected, atol=1e-6)


def test_describes_a_segmentation_models_unet():
    import segmentation_models as sm

    model = sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=7,
        activation="sigmoid",
        input_shape=(None, None, 3),
        decoder_filters=(8, 8, 8, 8, 8),
    )
    predictor = load_predictor(model)
    assert predictor.describe() == {
        "kind": "keras",
        "path": None,
        "num_classes": 7,
        "channels": 3,
        "fixed_size": None,
        "multiple": 32,
        "activation": "sigmoid",
    }


def test_one_sigmoid_channel_is_thresholded():
    probabilities = np.array([[[0.2], [0.7]]], np.float32)
    np.testing.assert_array_equal(labels(probabilities), [[0, 1]])
    np.testing.assert_array_equal(labels(np.eye(3, dtype=np.float32)[None]), [[0, 1, 2]])


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(tile=32), "image is 20x10 px, smaller than --tile 32; pass a smaller --tile or none"),
        (dict(tile=20), "smaller than --tile 20 (rounded up to 32, a multiple of 32)"),
        (dict(overlap=1.0), "in [0, 1). Received: overlap=1.0"),
        (dict(overlap=-0.1), "in [0, 1). Received: overlap=-0.1"),
        (dict(tta="flip"), "tta must be one of none, hflip, hvflip. Received: tta='flip'"),
        (dict(batch_size=0), "--batch-size must be an integer >= 1. Received: batch_size=0"),
        (dict(tile=32, size=64), "pass one of them. Received: tile=32, size=64"),
    ],
)
def test_bad_options_name_what_is_expected(pointwise, kwargs, words):
    with pytest.raises(ValueError) as error:
        predict_image(pointwise, _image(10, 20), **kwargs)
    assert words in str(error.value)


def test_a_fixed_size_model_refuses_other_tiles_and_channels(fixed):
    with pytest.raises(ValueError, match="must be that size: pass --tile 32 or none"):
        predict_image(fixed, _image(64, 64), tile=64)
    with pytest.raises(ValueError, match=r"takes images of shape \(H, W, 3\)"):
        predict_image(fixed, np.zeros((64, 64, 4), np.float32))


def test_class_count_mismatch_names_the_file(model_file):
    with pytest.raises(ValueError) as error:
        load_predictor(model_file, num_classes=5)
    message = str(error.value)
    assert message.startswith("the model predicts 4 classes, but --classes is 5 (")
    assert model_file in message and "\n" not in message


@pytest.mark.parametrize("name, content", [("notes.txt", b"hello"), ("broken.keras", b"x")])
def test_an_unreadable_model_file_names_the_formats(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as error:
        load_predictor(str(path))
    assert str(path) in str(error.value) and ".tflite" in str(error.value)


@pytest.mark.parametrize("format", ["tflite", "onnx", "saved_model"])
def test_exported_files_predict_as_keras(pointwise, tmp_path, format):
    out = str(tmp_path / f"m.{format}")
    sm_pixel_ce.export(
        pointwise, out, format=format, check=False, **({"size": 32} if format == "tflite" else {})
    )
    predictor = load_predictor(out, num_classes=CLASSES)
    assert predictor.kind == format
    assert predictor.fixed_size == ((32, 32) if format == "tflite" else None)
    image = _image(50, 70)
    # 6 tiles in batches of 4: the TFLite input is resized between the batches.
    probabilities = predict_image(predictor, image, tile=32, overlap=0.25)
    np.testing.assert_allclose(probabilities, _keras(pointwise, image), atol=1e-5)


def _write_images(folder):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)).save(folder / "b.png")
    Image.fromarray(rng.integers(0, 256, (33, 50), dtype=np.uint8)).save(folder / "a.png")
    return folder


def test_predict_writes_masks_of_the_argmax(pointwise, model_file, tmp_path, capsys):
    data = tmp_path / "data"
    _write_images(data / "images")
    out = tmp_path / "out"
    argv = ["predict", model_file, str(data), "--out", str(out), "--tile", "32"]
    assert main(argv + ["--probabilities", "--overlay"]) == 0
    assert "wrote 2 mask(s)" in capsys.readouterr().out
    for stem in ("a", "b"):
        pixels = np.asarray(Image.open(data / "images" / f"{stem}.png").convert("RGB"))
        expected = _keras(pointwise, pixels.astype(np.float32) / 255).argmax(-1)
        mask = Image.open(out / f"{stem}.png")
        assert mask.mode == "P" and mask.getpalette()[3:6] == [128, 0, 0]
        np.testing.assert_array_equal(np.asarray(mask), expected)
        probabilities = np.load(out / f"{stem}_probabilities.npy")
        assert probabilities.dtype == np.float16
        assert probabilities.shape == pixels.shape[:2] + (CLASSES,)
        overlay = np.asarray(Image.open(out / f"{stem}_overlay.png"))
        assert overlay.shape == pixels.shape and overlay.dtype == np.uint8


def _error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("sm-pixel-ce predict: error: ")
    return lines[0]


def test_an_unreadable_image_is_named_or_skipped(model_file, tmp_path, capsys):
    data = _write_images(tmp_path / "data")
    bad = data / "c.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    argv = ["predict", model_file, str(data), "--out", str(tmp_path / "out")]
    assert main(argv) == 1
    assert str(bad) in _error_line(capsys)
    assert main(argv + ["--skip-bad"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 mask(s)" in printed and f"skipped 1 unreadable image(s):\n  {bad}" in printed


@pytest.mark.parametrize(
    "args, status, words",
    [
        (["{empty}"], 1, "no image files"),
        (["{image}", "--tile", "64"], 2, "image is 50x33 px, smaller than --tile 64"),
        (["{image}", "--overlap", "1"], 2, "Received: overlap=1.0"),
        (["{image}", "{image}", "--out", "{folder}"], 2, "would overwrite the input"),
        (["{image}", "--bands", "0,1"], 1, "asks for band 1, but the image has 1 band(s)"),
        (["{image}", "--tta", "flip"], 2, "invalid choice: 'flip'"),
    ],
)
def test_bad_input_is_one_line(model_file, tmp_path, capsys, args, status, words):
    data = _write_images(tmp_path / "data")
    (tmp_path / "empty").mkdir()
    places = {"empty": tmp_path / "empty", "image": data / "a.png", "folder": data}
    args = [a.format(**places) for a in args]
    argv = ["predict", model_file, *args]
    if "--out" not in args:
        argv += ["--out", str(tmp_path / "out")]
    if "invalid choice" in words:  # argparse's own error: usage, then one error line
        with pytest.raises(SystemExit) as exit:
            main(argv)
        err = capsys.readouterr().err
        assert exit.value.code == status and words in err and "Traceback" not in err
        return
    assert main(argv) == status
    assert words in _error_line(capsys)


def test_a_missing_model_is_one_line(tmp_path, capsys):
    data = _write_images(tmp_path / "data")
    missing = str(tmp_path / "none.keras")
    assert main(["predict", missing, str(data), "--out", str(tmp_path / "out")]) == 1
    assert missing in _error_line(capsys)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_pixels_are_scaled_as_compare_scales_them(dtype):
    pixels = np.random.default_rng(2).integers(0, np.iinfo(dtype).max, (9, 7, 3)).astype(dtype)
    expected = tf.image.convert_image_dtype(pixels, tf.float32).numpy()
    np.testing.assert_array_equal(model_input(pixels, np.dtype(dtype).name), expected)


@pytest.mark.parametrize("scale", [None, "1000"])
def test_a_16_bit_tiff_with_bands_and_scale(pointwise, model_file, tmp_path, scale):
    import tifffile

    pixels = np.random.default_rng(3).integers(0, 65535, (36, 45, 4)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "field.tif", pixels)
    out = tmp_path / "out"
    argv = ["predict", model_file, str(tmp_path / "field.tif"), "--out", str(out)]
    argv += ["--bands", "1,2,3"] + (["--scale", scale] if scale else [])
    assert main(argv) == 0
    image = pixels[..., 1:].astype(np.float32) / np.float32(float(scale or 65535))
    expected = _keras(pointwise, image).argmax(-1)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "field.png")), expected)


def test_two_inputs_of_one_stem_are_refused(model_file, tmp_path, capsys):
    data = _write_images(tmp_path / "one")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.jpg")
    argv = ["predict", model_file, str(data), str(tmp_path / "a.jpg")]
    assert main(argv + ["--out", str(tmp_path / "out")]) == 2
    assert "two inputs share the file stem 'a'" in _error_line(capsys)


def test_inference_bench_measures_what_it_says(pointwise, model_file, tmp_path):
    from sm_pixel_ce.bench.inference import (
        format_inference_bench,
        measure_predict_run,
        tiled_agreement,
        tiled_throughput,
        write_large_image,
    )

    throughput = tiled_throughput(pointwise, side=256, tile=128, repeats=1)
    tiles = {row["case"]: (row["tiles"], row["network_pixels"]) for row in throughput["cases"]}
    assert tiles == {
        "whole": (1, 256 * 256),
        "tiles 128, overlap 0": (4, 4 * 128 * 128),
        "tiles 128, overlap 0.25": (9, 9 * 128 * 128),  # stride 96: starts 0, 96, 128
    }
    agreement = tiled_agreement(pointwise, grid=2, side=64, cases=((64, 0.25),))
    assert agreement["cases"][0]["agreement"] == 1.0
    assert agreement["cases"][0]["max_difference"] < 1e-6
    image = write_large_image(str(tmp_path / "big.png"), 70, 90, side=32)
    run = measure_predict_run(
        model_file, image, str(tmp_path / "out"), str(tmp_path / "log"), ["--tile", "32"]
    )
    assert run["returncode"] == 0 and run["job_s"] > 0 and run["peak_rss_mb"] > 100
    assert Image.open(tmp_path / "out" / "big.png").size == (90, 70)
    agreement.update(train_s=0.0, epochs=0)
    result = {
        "config": {"model": "1x1 conv", "flavor": "x", "cpu_count": 2},
        "memory": {"baseline": run, "large": run, "height": 70, "width": 90},
        "throughput": throughput,
        "agreement": agreement,
        "targets": [{"name": "t", "value": 1.0, "target": ">= 0.8", "met": True}],
    }
    text = format_inference_bench(result)
    assert "| 90x70 |" in text and "| tiles 128, overlap 0.25 | 9 | 2.25x |" in text
