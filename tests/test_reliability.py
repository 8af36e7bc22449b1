"""Mixed precision, XLA, dynamic shapes and damaged files: the losses stay right and errors
stay clear."""

import io
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import segmentation_models as sm
import tensorflow as tf

import sm_pixel_ce
from sm_pixel_ce import PixelCategoricalCrossentropy
from sm_pixel_ce.data import make_scenes
from sm_pixel_ce.flavor import IS_KERAS_3, keras

SIZE, CLASSES = 64, 7


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(4, size=SIZE, seed=5)


def _unet(**kwargs):
    keras.utils.set_random_seed(0)
    kwargs.setdefault("input_shape", (SIZE, SIZE, 3))
    return sm.Unet(
        "resnet18", encoder_weights=None, classes=CLASSES, activation="pixel_softmax", **kwargs
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_unet_trains_under_mixed_precision(scenes, policy):
    images, masks = scenes
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = _unet()
        # Plain SGD (Keras wraps it in a LossScaleOptimizer under mixed_float16 as it would Adam):
        # Adam's first step traces in 3-4x SGD's time on Keras 3.
        model.compile(
            keras.optimizers.SGD(1e-2), loss=PixelCategoricalCrossentropy(ignore_index=255)
        )
        losses = [float(np.ravel(model.train_on_batch(images, masks))[0]) for _ in range(3)]
        probabilities = model(images[:2])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(np.isfinite(losses)), losses
    assert probabilities.dtype == tf.float32
    np.testing.assert_allclose(probabilities.numpy().sum(-1), 1.0, rtol=1e-5)


def _conv_net():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    hidden = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    return keras.Model(
        inputs, keras.layers.Activation("pixel_softmax")(keras.layers.Conv2D(CLASSES, 1)(hidden))
    )


@pytest.mark.parametrize("build", ["unet", "conv"])
def test_trains_with_xla_and_matches_plain_graph(scenes, build):
    if build == "unet" and not sm_pixel_ce.flavor.IS_KERAS_3:
        pytest.skip(
            "tf_keras's UpSampling2D gradient (ResizeNearestNeighborGrad) has no XLA CPU kernel "
            "in TF 2.21: segmentation_models' decoder cannot train under XLA there, "
            "whatever the loss"
        )
    images, masks = scenes
    values = {}
    for jit in (False, True):
        model = _unet() if build == "unet" else _conv_net()
        model.compile(
            keras.optimizers.SGD(1e-2),
            loss=PixelCategoricalCrossentropy(class_weights=[0.5] + [1.0] * 6),
            jit_compile=jit,
        )
        values[jit] = [float(np.ravel(model.train_on_batch(images, masks))[0]) for _ in range(3)]
    assert all(np.isfinite(values[True]))
    np.testing.assert_allclose(values[True], values[False], rtol=1e-3)


def test_dynamic_input_shape_trains_small_predicts_large(scenes):
    images, masks = scenes
    model = _unet(input_shape=(None, None, 3))
    model.compile("sgd", loss="pixel_cce")
    assert np.isfinite(np.ravel(model.train_on_batch(images, masks))[0])
    big = np.random.default_rng(0).uniform(size=(1, 96, 128, 3)).astype(np.float32)
    probabilities = model.predict(big, verbose=0)
    assert probabilities.shape == (1, 96, 128, CLASSES)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, scenes):
    folder = tmp_path_factory.mktemp("saved")
    model = _unet()
    model.compile(
        "adam", loss=PixelCategoricalCrossentropy(class_weights=[0.5] + [1.0] * 6, ignore_index=255)
    )
    model.save(folder / "good.keras")
    model.save(folder / "good.h5")
    return folder, model


def test_load_model_helper_round_trip(saved, scenes):
    folder, model = saved
    for name in ("good.keras", "good.h5"):
        reloaded = sm_pixel_ce.load_model(folder / name)
        np.testing.assert_allclose(
            reloaded.predict(scenes[0], verbose=0), model.predict(scenes[0], verbose=0), atol=1e-6
        )
        assert reloaded.loss.get_config() == model.loss.get_config()


def test_keras_file_weights_are_read_from_a_copy_in_tf_keras(saved, scenes, monkeypatch):
    # tf_keras hands h5py the zip member itself, and loading is quadratic in the model's size;
    # sm_pixel_ce copies the member out first. Keras 3 does that itself, so nothing is patched
    # there.
    folder, model = saved
    calls = []
    original = sm_pixel_ce.saving.read_archive_member

    def spy(archive, name, *args, **kwargs):
        calls.append(name)
        return original(archive, name, *args, **kwargs)

    monkeypatch.setattr(sm_pixel_ce.saving, "read_archive_member", spy)
    reloaded = keras.models.load_model(folder / "good.keras")
    fresh = _unet()
    fresh.load_weights(folder / "good.keras")
    expected = model.predict(scenes[0], verbose=0)
    for other in (reloaded, fresh):
        np.testing.assert_allclose(other.predict(scenes[0], verbose=0), expected, atol=1e-6)
    assert calls == ([] if IS_KERAS_3 else ["model.weights.h5", "model.weights.h5"])


@pytest.mark.parametrize("limit, in_memory", [(1 << 30, True), (1000, False)])
@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_read_archive_member_copies_exactly(tmp_path, limit, in_memory, compression):
    import h5py

    values = np.random.default_rng(1).normal(size=(300, 100)).astype("float32")
    h5_bytes = io.BytesIO()
    with h5py.File(h5_bytes, "w") as h5:
        h5.create_dataset("vars/0", data=values)
    data = h5_bytes.getvalue()
    with zipfile.ZipFile(tmp_path / "a.zip", "w", compression=compression) as archive:
        archive.writestr("other.txt", b"x" * 10)
        archive.writestr("model.weights.h5", data)
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        copy = sm_pixel_ce.saving.read_archive_member(
            archive, "model.weights.h5", in_memory_limit=limit
        )
    with copy:
        assert isinstance(copy, io.BytesIO) == in_memory
        assert copy.tell() == 0 and copy.read() == data
        copy.seek(0)
        with h5py.File(copy, "r") as h5:  # what tf_keras then does with it
            np.testing.assert_array_equal(h5["vars/0"][...], values)


@pytest.mark.parametrize("name", ["good.keras", "good.h5"])
def test_truncated_file_gives_clear_error(saved, tmp_path, name):
    folder, _ = saved
    data = (folder / name).read_bytes()
    broken = tmp_path / name
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        sm_pixel_ce.load_model(broken)


def test_keras_file_with_damaged_weights_gives_clear_error(saved, tmp_path):
    folder, _ = saved
    broken = tmp_path / "damaged.keras"
    with zipfile.ZipFile(folder / "good.keras") as source, zipfile.ZipFile(broken, "w") as target:
        for name in source.namelist():
            target.writestr(name, b"not hdf5" * 100 if name.endswith(".h5") else source.read(name))
    with pytest.raises(ValueError, match="truncated or corrupted"):
        sm_pixel_ce.load_model(broken)


@pytest.mark.parametrize("name", ["junk.keras", "junk.h5"])
def test_corrupted_file_gives_clear_error(tmp_path, name):
    (tmp_path / name).write_bytes(b"not a model at all" * 100)
    with pytest.raises(ValueError, match="truncated or corrupted"):
        sm_pixel_ce.load_model(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="found no file or folder there"):
        sm_pixel_ce.load_model(tmp_path / "nothing.keras")


def test_unknown_future_option_in_config():
    config = PixelCategoricalCrossentropy(ignore_index=255).get_config()
    config["boundary_weight"] = 2.0  # an option a later version might add
    with pytest.raises(ValueError, match=r"option\(s\) \['boundary_weight'\].*upgrade sm_pixel_ce"):
        PixelCategoricalCrossentropy.from_config(config)


def test_loading_without_import_names_the_package(saved):
    folder, _ = saved
    code = (
        "import tensorflow as tf\n"
        "try:\n"
        f"    tf.keras.models.load_model({str(folder / 'good.keras')!r})\n"
        "except Exception as e:\n"
        "    print('ERROR', e)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert "ERROR" in result.stdout and "sm_pixel_ce" in result.stdout.split("ERROR", 1)[1]
