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

# Runs in ONE fresh interpreter for the whole module (one TensorFlow import, not one per test):
# `import sm_pixel_ce` is the only thing a user adds. Each folder's spec.json names its job.
FRESH = textwrap.dedent(
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


    def reload(folder, spec):
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


    def train_on(folder, spec):  # sm_pixel_ce.load_model of an .h5 file, then training on
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
        iterations = int(np.asarray(model.optimizer.iterations))
        json.dump({"step": step, "moved": moved, "iterations": iterations},
                  open(folder + "/reloaded.json", "w"))


    for folder in sys.argv[1:]:
        spec = json.load(open(folder + "/spec.json"))
        {"reload": reload, "train_on": train_on}[spec["job"]](folder, spec)
        keras.backend.clear_session()
    """
)


def _in_one_fresh_process(jobs):
    """Run every ``(folder, spec)`` of ``jobs`` in one fresh interpreter; each folder's
    ``reloaded.json``, by folder."""
    for folder, spec in jobs:
        with open(os.path.join(folder, "spec.json"), "w") as f:
            json.dump(spec, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("SM_FRAMEWORK", None)
    folders = [str(folder) for folder, _ in jobs]
    result = subprocess.run(
        [sys.executable, "-c", FRESH, *folders],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = {}
    for folder in folders:
        with open(os.path.join(folder, "reloaded.json")) as f:
            reloaded[folder] = json.load(f)
    return reloaded


def _reload_job(folder, saved, exported=()):
    return folder, {"job": "reload", "saved": list(saved), "exported": list(exported)}


def _scenes():
    images, masks = make_scenes(8, size=SIZE, seed=3)
    masks = masks.copy()
    masks[:, :2] = 255  # a void border, ignored by the loss
    return images, masks


def _train(model, loss, x, y, steps=6, optimizer=None):
    # SGD with momentum: its slots are saved and reloaded as Adam's are, and its step traces in
    # 3/4 of Adam's time (tests/conftest.py); the .h5 optimizer-state test below uses Adam.
    model.compile(optimizer or keras.optimizers.SGD(0.01, momentum=0.9), loss=loss)
    return [float(np.ravel(model.train_on_batch(x, y))[0]) for _ in range(steps)]


def _unet(activation="pixel_softmax", size=SIZE):
    return sm.Unet(
        "resnet18",
        encoder_weights=None,
        classes=CLASSES,
        activation=activation,
        input_shape=(size, size, 3),
    )


def _round_trip(folder, scenes, variant):
    """Train a U-Net with ``variant``'s loss, save it in every format of this Keras: what the
    round-trip test checks, and the fresh process's job."""
    images, masks = scenes
    keras.utils.set_random_seed(0)
    model = _unet("pixel_softmax" if variant == "cce" else "sigmoid")
    if variant == "cce":
        loss = PixelCategoricalCrossentropy(
            class_weights=[0.3] + [1.0] * 6, ignore_index=255, label_smoothing=0.05
        )
    else:
        loss = PixelBinaryCrossentropy(ignore_index=255)
    # cce's SGD keeps momentum slots (saved and reloaded with the model); bce's is plain: its
    # first step traces in half the time.
    optimizer = None if variant == "cce" else keras.optimizers.SGD(0.05)
    history = _train(model, loss, images[:4], masks[:4], optimizer=optimizer)
    x = images[4:6]
    np.save(folder / "x.npy", x)
    expected = np.asarray(model(x, training=False))
    saved = ["model.keras", "model.h5"]
    exported = []
    model.save(folder / "model.keras")
    model.save(folder / "model.h5")
    if IS_KERAS_3:
        model.export(str(folder / "exported"), verbose=False)
        exported.append("exported")
    else:
        model.save(str(folder / "savedmodel"), save_format="tf")
        saved.append("savedmodel")
    case = {"folder": folder, "history": history, "loss": loss, "expected": expected}
    return case, _reload_job(folder, saved, exported)


def _named(folder, scenes):
    """A U-Net compiled with ``loss="pixel_cce"`` by name, trained a step and saved."""
    images, masks = scenes
    model = _unet()
    # Plain SGD: the name is what is checked (Adam's first step traces in 3-4x SGD's time on
    # Keras 3; the .h5 test below checks an Adam state).
    model.compile("sgd", loss="pixel_cce")
    step = model.train_on_batch(images[:2], np.where(masks[:2] == 255, 0, masks[:2]))
    np.save(folder / "x.npy", images[:2])
    expected = np.asarray(model(images[:2], training=False))
    model.save(folder / "named.keras")
    case = {"folder": folder, "step": float(np.ravel(step)[0]), "expected": expected}
    return case, _reload_job(folder, ["named.keras"])


def _h5_with_adam(folder, scenes):
    """A 32 px U-Net trained two Adam steps and saved as .h5, with its optimizer's state."""
    images, masks = scenes
    x, y = images[:2, 2:34, :32], masks[:2, 2:34, :32]  # below the void border
    model = _unet(size=32)
    _train(model, "pixel_cce", x, y, steps=2, optimizer=keras.optimizers.Adam(1e-3))
    model.save(str(folder / "unet.h5"))
    saved_vars = model.optimizer.variables
    saved_vars = saved_vars() if callable(saved_vars) else saved_vars
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    case = {"folder": folder, "saved": [np.asarray(v) for v in saved_vars]}
    return case, (folder, {"job": "train_on"})


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Every model of this module trained and saved here, then reloaded (or trained on) in one
    fresh process; ``{name: case}``, each case with its ``reloaded`` results."""
    scenes = _scenes()
    built = {
        # The string name first: a fresh process that has loaded nothing yet.
        "named": _named(tmp_path_factory.mktemp("named"), scenes),
        "cce": _round_trip(tmp_path_factory.mktemp("cce"), scenes, "cce"),
        "bce": _round_trip(tmp_path_factory.mktemp("bce"), scenes, "bce"),
        "h5": _h5_with_adam(tmp_path_factory.mktemp("h5"), scenes),
    }
    reloaded = _in_one_fresh_process([job for _, job in built.values()])
    return {
        name: {**case, "reloaded": reloaded[str(case["folder"])]}
        for name, (case, _) in built.items()
    }


# The module's tests share `cases` (one fresh process): one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("test_models")


@pytest.mark.parametrize("variant", ["cce", "bce"])
def test_unet_trains_saves_and_reloads(cases, variant):
    case = cases[variant]
    history, loss, expected = case["history"], case["loss"], case["expected"]
    folder = case["folder"]
    assert all(np.isfinite(history))
    assert history[-1] < history[0], history
    reloaded = case["reloaded"]
    saved = [name for name in reloaded]
    assert saved == ["model.keras", "model.h5"] + ([] if IS_KERAS_3 else ["savedmodel"])
    for name in saved:
        got = np.load(folder / f"pred_{name.replace('.', '_')}.npy")
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=name)
        assert reloaded[name]["loss_class"] == type(loss).__name__, name
        assert reloaded[name]["loss_config"] == loss.get_config(), name
        assert np.isfinite(reloaded[name].get("step", 0.0)), name
    if IS_KERAS_3:
        np.testing.assert_allclose(
            np.load(folder / "pred_exported.npy"), expected, rtol=1e-5, atol=1e-6
        )


def test_string_names_compile_and_reload(cases):
    case = cases["named"]
    assert np.isfinite(case["step"])
    reloaded = case["reloaded"]["named.keras"]
    assert reloaded["loss_class"] == "PixelCategoricalCrossentropy"
    assert reloaded["loss_config"] == PixelCategoricalCrossentropy().get_config()
    assert np.isfinite(reloaded["step"])
    assert reloaded["resaved"] < 1e-6
    np.testing.assert_allclose(
        np.load(case["folder"] / "pred_named_keras.npy"), case["expected"], rtol=1e-5, atol=1e-6
    )


def test_h5_model_trains_on_after_load_model_with_its_optimizer_state(cases):
    # Keras 3 alone fails here: its .h5 loader builds the optimizer on no variables, so the
    # first fit raises "Unknown variable ... originally built with" (Keras's own losses too).
    case = cases["h5"]
    reloaded, folder, saved = case["reloaded"], case["folder"], case["saved"]
    assert np.isfinite(reloaded["step"]) and reloaded["moved"] > 0
    assert reloaded["iterations"] == 3  # two steps before saving, one after
    restored = np.load(folder / "restored.npz")
    restored = [restored[f"arr_{i}"] for i in range(len(restored.files))]
    assert len(restored) == len(saved) > 2  # iteration, learning rate and Adam's slots
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(a, b)
    for name in ("again.h5", "again.keras"):  # and it saves again
        assert (folder / name).stat().st_size > 0
