"""A small segmentation_models U-Net trains with pixel_softmax + pixel_cce, saves in every format
of the running Keras, and reloads in a fresh process with equal predictions and the same loss."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import segmentation_models as sm

from sm_pixel_ce import PixelBinaryCrossentropy, PixelCategoricalCrossentropy
from sm_pixel_ce.data import make_scenes
from sm_pixel_ce.flavor import IS_KERAS_3, keras

SIZE, CLASSES = 64, 7

# Runs in a fresh interpreter: `import sm_pixel_ce` is the only thing a user adds.
RELOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import sm_pixel_ce
    import tensorflow as tf
    if sm_pixel_ce.KERAS_FLAVOR == "keras3":
        import keras
        load = lambda path: keras.models.load_model(path, safe_mode=True)
    else:
        keras = tf.keras
        load = lambda path: keras.models.load_model(path)
    folder = sys.argv[1]
    spec = json.load(open(folder + "/spec.json"))
    x = np.load(folder + "/x.npy")
    out = {}
    # Called, not predict(): one traced function less per file, the same layers and weights.
    infer = lambda model: np.asarray(model(x, training=False))
    for name in spec["saved"]:
        model = load(folder + "/" + name)
        np.save(folder + "/pred_" + name.replace(".", "_") + ".npy", infer(model))
        # A string or class given to compile() comes back as given; resolve it as Keras does.
        loss = model.loss
        if not isinstance(loss, keras.losses.Loss):
            loss = keras.losses.get(loss)
        out[name] = {"loss_class": type(loss).__name__, "loss_config": loss.get_config(),
                     "activation": model.layers[-1].get_config()["activation"]}
        if name.endswith(".keras"):  # the reloaded, compiled model trains on
            step = model.train_on_batch(x, np.zeros(x.shape[:3], "uint8"))
            out[name]["step"] = float(np.ravel(step)[0])
            # ... and saves again (a loss named by a string once came back as a bare class).
            model.save(folder + "/again.keras")
            again = infer(load(folder + "/again.keras"))
            out[name]["resaved"] = float(np.max(np.abs(again - infer(model))))
    for name in spec["exported"]:
        served = tf.saved_model.load(folder + "/" + name)
        np.save(folder + "/pred_" + name + ".npy", served.serve(tf.constant(x)).numpy())
    json.dump(out, open(folder + "/reloaded.json", "w"))
    """
)


def _reload_in_fresh_process(folder, saved, exported=()):
    with open(os.path.join(folder, "spec.json"), "w") as f:
        json.dump({"saved": list(saved), "exported": list(exported)}, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("SM_FRAMEWORK", None)
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, folder], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(folder, "reloaded.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def scenes():
    images, masks = make_scenes(8, size=SIZE, seed=3)
    masks = masks.copy()
    masks[:, :2] = 255  # a void border, ignored by the loss
    return images, masks


def _train(model, loss, x, y, steps=6, optimizer=None):
    # SGD with momentum: its slots are saved and reloaded as Adam's are, and its step traces in
    # 3/4 of Adam's time (tests/conftest.py); the .h5 optimizer-state test below uses Adam.
    model.compile(optimizer or keras.optimizers.SGD(0.01, momentum=0.9), loss=loss)
    return [float(np.ravel(model.train_on_batch(x, y))[0]) for _ in range(steps)]


@pytest.mark.parametrize("variant", ["cce", "bce"])
def test_unet_trains_saves_and_reloads(tmp_path, scenes, variant):
    images, masks = scenes
    keras.utils.set_random_seed(0)
    activation = "pixel_softmax" if variant == "cce" else "sigmoid"
    model = sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=CLASSES,
        activation=activation,
        input_shape=(SIZE, SIZE, 3),
    )
    if variant == "cce":
        loss = PixelCategoricalCrossentropy(
            class_weights=[0.3] + [1.0] * 6, ignore_index=255, label_smoothing=0.05
        )
    else:
        loss = PixelBinaryCrossentropy(ignore_index=255)
    history = _train(model, loss, images[:4], masks[:4])
    assert all(np.isfinite(history))
    assert history[-1] < history[0], history

    x = images[4:6]
    np.save(tmp_path / "x.npy", x)
    expected = np.asarray(model(x, training=False))
    saved = ["model.keras", "model.h5"]
    exported = []
    model.save(tmp_path / "model.keras")
    model.save(tmp_path / "model.h5")
    if IS_KERAS_3:
        model.export(str(tmp_path / "exported"), verbose=False)
        exported.append("exported")
    else:
        model.save(str(tmp_path / "savedmodel"), save_format="tf")
        saved.append("savedmodel")

    reloaded = _reload_in_fresh_process(str(tmp_path), saved, exported)
    for name in saved:
        got = np.load(tmp_path / f"pred_{name.replace('.', '_')}.npy")
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=name)
        assert reloaded[name]["loss_class"] == type(loss).__name__, name
        assert reloaded[name]["loss_config"] == loss.get_config(), name
        assert np.isfinite(reloaded[name].get("step", 0.0)), name
    for name in exported:
        np.testing.assert_allclose(
            np.load(tmp_path / f"pred_{name}.npy"), expected, rtol=1e-5, atol=1e-6
        )


def test_string_names_compile_and_reload(tmp_path, scenes):
    images, masks = scenes
    model = sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=CLASSES,
        activation="pixel_softmax",
        input_shape=(SIZE, SIZE, 3),
    )
    model.compile("adam", loss="pixel_cce")
    assert np.isfinite(model.train_on_batch(images[:2], np.where(masks[:2] == 255, 0, masks[:2])))
    np.save(tmp_path / "x.npy", images[:2])
    expected = np.asarray(model(images[:2], training=False))
    model.save(tmp_path / "named.keras")
    reloaded = _reload_in_fresh_process(str(tmp_path), ["named.keras"])
    assert reloaded["named.keras"]["loss_class"] == "PixelCategoricalCrossentropy"
    assert reloaded["named.keras"]["loss_config"] == PixelCategoricalCrossentropy().get_config()
    assert np.isfinite(reloaded["named.keras"]["step"])
    assert reloaded["named.keras"]["resaved"] < 1e-6
    np.testing.assert_allclose(
        np.load(tmp_path / "pred_named_keras.npy"), expected, rtol=1e-5, atol=1e-6
    )


# Runs in a fresh interpreter: sm_pixel_ce.load_model of an .h5 file, then training on.
H5_TRAIN_ON = textwrap.dedent(
    """
    import sys
    import numpy as np
    import sm_pixel_ce
    folder = sys.argv[1]
    model = sm_pixel_ce.load_model(folder + "/unet.h5")
    variables = model.optimizer.variables
    variables = variables() if callable(variables) else variables
    np.savez(folder + "/restored.npz", *[np.asarray(v) for v in variables])
    x, y = np.load(folder + "/x.npy"), np.load(folder + "/y.npy")
    before = [np.asarray(w).copy() for w in model.get_weights()]
    step = float(np.ravel(model.train_on_batch(x, y))[0])
    after = model.get_weights()
    moved = max(float(np.max(np.abs(a - np.asarray(b)))) for a, b in zip(before, after))
    model.save(folder + "/again.h5")
    model.save(folder + "/again.keras")
    print(step, moved, int(np.asarray(model.optimizer.iterations)))
    """
)


def test_h5_model_trains_on_after_load_model_with_its_optimizer_state(tmp_path, scenes):
    # Keras 3 alone fails here: its .h5 loader builds the optimizer on no variables, so the
    # first fit raises "Unknown variable ... originally built with" (Keras's own losses too).
    images, masks = scenes
    x, y = images[:2, 2:34, :32], masks[:2, 2:34, :32]  # below the void border
    model = sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=CLASSES,
        activation="pixel_softmax",
        input_shape=(32, 32, 3),
    )
    _train(model, "pixel_cce", x, y, steps=2, optimizer=keras.optimizers.Adam(1e-3))
    model.save(str(tmp_path / "unet.h5"))
    saved_vars = model.optimizer.variables
    saved_vars = saved_vars() if callable(saved_vars) else saved_vars
    saved = [np.asarray(v) for v in saved_vars]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("SM_FRAMEWORK", None)
    result = subprocess.run(
        [sys.executable, "-c", H5_TRAIN_ON, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    step, moved, iterations = result.stdout.split()[-3:]
    assert np.isfinite(float(step)) and float(moved) > 0
    assert int(iterations) == 3  # two steps before saving, one after
    restored = np.load(tmp_path / "restored.npz")
    restored = [restored[f"arr_{i}"] for i in range(len(restored.files))]
    assert len(restored) == len(saved) > 2  # iteration, learning rate and Adam's slots
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(a, b)
    for name in ("again.h5", "again.keras"):  # and it saves again
        assert (tmp_path / name).stat().st_size > 0
