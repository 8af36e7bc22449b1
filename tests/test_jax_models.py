"""Real models under ``KERAS_BACKEND=jax``: segmentation_models 1.0.1, segmodels_keras and
keras-hub's DeepLabV3 with ``activation="pixel_softmax"`` and ``loss="pixel_cce"``, keras-hub's
SegFormer (logits) with ``from_logits=True``. Each trains on a fixed batch, saves as ``.keras``,
and reloads in a fresh process after a bare ``import sm_pixel_ce``: the same predictions, and a
loss and pixel accuracy equal to NumPy's on them. Run with ``KERAS_BACKEND=jax python -m pytest
-m jax tests/test_jax_models.py``; skipped on TensorFlow.

Tiny models (32 px, batch 2, 2 steps): JIT-compiling a U-Net on the CPU is what costs here, so
each model is built and trained once per module and all four reload in one child process."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from reference import pixel_cce

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]

if BACKEND == "jax":
    from sm_pixel_ce import PixelCategoricalCrossentropy, pixel_metrics

SIZE, CLASSES = 32, 3
REL = 1e-5

# The child: a bare ``import sm_pixel_ce`` (keras_hub only because its classes must be known),
# then each saved model reloaded, predicted, and scored by its reloaded loss and metrics.
CHILD = """
import json, sys
import keras
import numpy as np
import sm_pixel_ce
import keras_hub  # noqa: F401  (registers keras-hub's model classes)
folder, names = sys.argv[1], sys.argv[2:]
x, y = np.load(folder + "/x.npy"), np.load(folder + "/y.npy")
out = {}
for name in names:
    model = sm_pixel_ce.load_model(f"{folder}/{name}.keras")
    prediction = model.predict_on_batch(x)  # the one compiled call: loss and metrics run eagerly
    np.save(f"{folder}/{name}_pred.npy", np.asarray(prediction))
    loss = keras.losses.get(model.loss)  # a loss compiled by name reloads as its name
    model.compute_metrics(x, y, prediction, sample_weight=None)
    scores = {**model.get_metrics_result(), "loss": loss(y, prediction)}
    out[name] = {
        "scores": {k: float(v) for k, v in scores.items()},
        "loss_class": type(loss).__name__,
        "loss_config": loss.get_config(),
        "steps": int(model.optimizer.iterations),
    }
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    y = rng.integers(0, CLASSES, (2, SIZE, SIZE))
    return x, y


@pytest.fixture(scope="module")
def folder(tmp_path_factory, batch):
    path = tmp_path_factory.mktemp("jax_models")
    np.save(path / "x.npy", batch[0])
    np.save(path / "y.npy", batch[1])
    return path


def _train(model, loss, batch, steps=2, learning_rate=1e-3):
    """Compile with ``loss`` and the pixel metrics; the losses of ``steps`` steps on ``batch``."""
    model.compile(keras.optimizers.Adam(learning_rate), loss=loss, metrics=pixel_metrics(CLASSES))
    return [float(np.ravel(model.train_on_batch(*batch))[0]) for _ in range(steps)]


def _trained(name, model, loss, batch, folder, **train):
    keras.utils.set_random_seed(0)
    losses = _train(model, loss, batch, **train)
    model.save(folder / f"{name}.keras")
    outputs = np.asarray(model.predict_on_batch(batch[0]))
    return {
        "model": model,
        "losses": losses,
        "outputs": outputs,
        "loss": loss,
        "steps": len(losses),
    }


def _unet(library, batch, folder, name, input_shape=(SIZE, SIZE, 3)):
    keras.utils.set_random_seed(0)
    model = library.Unet(
        "resnet18",
        input_shape=input_shape,
        classes=CLASSES,
        activation="pixel_softmax",
        encoder_weights=None,
        decoder_filters=(16, 8, 8, 4, 4),
    )
    return _trained(name, model, "pixel_cce", batch, folder)


@pytest.fixture(scope="module")
def sm_unet(batch, folder):
    import segmentation_models as sm  # SM_FRAMEWORK=tf.keras, set by sm_pixel_ce.flavor

    # sm's default, any size: sm_pixel_ce's size check is TensorFlow code, left out under JAX.
    return _unet(sm, batch, folder, "sm_unet", input_shape=(None, None, 3))


@pytest.fixture(scope="module")
def segmodels_unet(batch, folder):
    import segmodels_keras

    return _unet(segmodels_keras, batch, folder, "segmodels_unet")


def _resnet(keras_hub):
    """A tiny ResNet from its configuration (keras-hub asks 64 filters in the stem and first
    stage; the rest are 16)."""
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16, 16, 16],
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
        image_shape=(SIZE, SIZE, 3),
    )


@pytest.fixture(scope="module")
def deeplab(batch, folder):
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=_resnet(keras_hub),
        spatial_pyramid_pooling_key="P4",
        upsampling_size=4,
        dilation_rates=[1, 2],
        low_level_feature_key="P2",
        projection_filters=8,
        image_shape=(SIZE, SIZE, 3),
    )
    model = keras_hub.models.DeepLabV3ImageSegmenter(
        backbone=backbone, num_classes=CLASSES, activation="pixel_softmax"
    )
    return _trained("deeplab", model, "pixel_cce", batch, folder)


@pytest.fixture(scope="module")
def segformer(batch, folder):
    import keras_hub

    keras.utils.set_random_seed(0)
    encoder = keras_hub.models.MiTBackbone(
        layerwise_depths=[1, 1],
        num_layers=2,
        layerwise_num_heads=[1, 1],
        layerwise_sr_ratios=[2, 1],
        max_drop_path_rate=0.0,
        layerwise_patch_sizes=[7, 3],
        layerwise_strides=[4, 2],
        image_shape=(SIZE, SIZE, 3),
        hidden_dims=[8, 16],
    )
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=encoder, projection_filters=8)
    model = keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=CLASSES)
    loss = PixelCategoricalCrossentropy(from_logits=True)
    return _trained("segformer", model, loss, batch, folder, steps=6, learning_rate=1e-2)


MODELS = ("sm_unet", "segmodels_unet", "deeplab", "segformer")


@pytest.fixture(scope="module")
def reloaded(request, folder):
    """Every model's reload in one fresh process: ``{name: (trained, child's result)}``."""
    trained = {name: request.getfixturevalue(name) for name in MODELS}
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), *MODELS],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    results = json.loads(lines[-1][len("RESULT ") :])
    return {name: (trained[name], results[name]) for name in MODELS}


def _numpy_loss(labels, outputs, from_logits):
    """The mean cross-entropy of ``outputs`` (probabilities, or logits)."""
    logits = outputs if from_logits else np.log(np.maximum(outputs, 1e-30))
    return pixel_cce(labels, logits)


def _numpy_accuracy(labels, outputs):
    return float(np.mean(np.argmax(outputs, -1) == labels))


@pytest.mark.parametrize("name", ["sm_unet", "segmodels_unet", "deeplab"])
def test_pixel_softmax_models_train_and_match_numpy(request, batch, name):
    trained = request.getfixturevalue(name)
    outputs = trained["outputs"]
    assert outputs.shape == (2, SIZE, SIZE, CLASSES)
    np.testing.assert_allclose(outputs.sum(-1), 1.0, rtol=1e-5)
    assert np.isfinite(trained["losses"]).all()
    loss = keras.losses.get("pixel_cce")
    assert float(loss(batch[1], outputs)) == pytest.approx(
        _numpy_loss(batch[1], outputs, False), rel=REL
    )


def test_segformer_logits_loss_goes_down_and_matches_numpy(segformer, batch):
    losses = segformer["losses"]
    assert np.isfinite(losses).all() and losses[-1] < 0.9 * losses[0], losses
    logits = segformer["outputs"]
    assert not np.allclose(logits.sum(-1), 1.0)  # the head outputs logits, not probabilities
    assert float(segformer["loss"](batch[1], logits)) == pytest.approx(
        _numpy_loss(batch[1], logits, True), rel=REL
    )


@pytest.mark.parametrize("name", MODELS)
def test_reloads_in_a_fresh_process_with_the_same_numbers(reloaded, batch, folder, name):
    trained, child = reloaded[name]
    np.testing.assert_allclose(
        np.load(folder / f"{name}_pred.npy"), trained["outputs"], rtol=0, atol=1e-6
    )
    from_logits = name == "segformer"
    assert child["loss_class"] == "PixelCategoricalCrossentropy"
    assert child["loss_config"]["from_logits"] is from_logits
    assert child["steps"] == trained["steps"]  # the optimizer's state came back too
    scores = child["scores"]
    assert scores["loss"] == pytest.approx(
        _numpy_loss(batch[1], trained["outputs"], from_logits), rel=REL
    )
    assert scores["pixel_accuracy"] == pytest.approx(
        _numpy_accuracy(batch[1], trained["outputs"]), rel=REL
    )
