"""What the model tests of Keras 3's other backends (JAX, PyTorch) share: tiny models built from
their configuration with random weights (no download), trained on a fixed batch and saved; their
reload in one fresh process on the same backend; and the checks of both against NumPy.

Tiny models (32 px, batch 2, 2 steps): what costs is compiling (JAX) or the Python per op
(PyTorch), and the child process's imports, so each model is built once per module and all reload
in one child."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from reference import pixel_cce

from sm_pixel_ce import PixelCategoricalCrossentropy, pixel_metrics

SIZE, CLASSES = 32, 3
REL = 1e-5

# The child: the modules named in argv[2] (comma-separated) made unimportable, a bare
# ``import sm_pixel_ce`` (keras_hub only because its classes must be known), then each saved
# model reloaded, predicted, and scored by its reloaded loss and metrics.
CHILD = """
import json, sys
folder, blocked, names = sys.argv[1], sys.argv[2], sys.argv[3:]
for name in filter(None, blocked.split(",")):
    sys.modules[name] = None
import keras
import numpy as np
import sm_pixel_ce
import keras_hub  # noqa: F401  (registers keras-hub's model classes)
x, y = np.load(folder + "/x.npy"), np.load(folder + "/y.npy")
out = {}
for name in names:
    model = sm_pixel_ce.load_model(f"{folder}/{name}.keras")
    prediction = model.predict_on_batch(x)  # the one compiled call: loss and metrics run eagerly
    np.save(f"{folder}/{name}_pred.npy", keras.ops.convert_to_numpy(prediction))
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


def make_batch():
    """``(x, y)``: two N(0, 1) images ``(2, SIZE, SIZE, 3)`` and their random masks."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    y = rng.integers(0, CLASSES, (2, SIZE, SIZE))
    return x, y


def save_batch(folder, batch):
    np.save(folder / "x.npy", batch[0])
    np.save(folder / "y.npy", batch[1])
    return folder


def _train(model, loss, batch, steps=2, learning_rate=1e-3):
    """Compile with ``loss`` and the pixel metrics; the losses of ``steps`` steps on ``batch``."""
    model.compile(keras.optimizers.Adam(learning_rate), loss=loss, metrics=pixel_metrics(CLASSES))
    return [float(np.ravel(model.train_on_batch(*batch))[0]) for _ in range(steps)]


def trained(name, model, loss, batch, folder, **train):
    """Train ``model`` with ``loss`` (seeded), save it as ``folder/<name>.keras``; a dict of the
    model, its training losses, its outputs on the batch, the loss and the step count."""
    keras.utils.set_random_seed(0)
    losses = _train(model, loss, batch, **train)
    model.save(folder / f"{name}.keras")
    outputs = keras.ops.convert_to_numpy(model.predict_on_batch(batch[0]))
    return {
        "model": model,
        "losses": losses,
        "outputs": outputs,
        "loss": loss,
        "steps": len(losses),
    }


def unet(library, batch, folder, name, input_shape=(SIZE, SIZE, 3)):
    """``library.Unet`` (segmentation_models or segmodels_keras) on resnet18, random weights,
    with ``pixel_softmax``, trained with ``loss="pixel_cce"``."""
    keras.utils.set_random_seed(0)
    model = library.Unet(
        "resnet18",
        input_shape=input_shape,
        classes=CLASSES,
        activation="pixel_softmax",
        encoder_weights=None,
        decoder_filters=(16, 8, 8, 4, 4),
    )
    return trained(name, model, "pixel_cce", batch, folder)


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


def deeplab(batch, folder):
    """keras-hub's ``DeepLabV3ImageSegmenter(activation="pixel_softmax")`` on a tiny ResNet,
    trained with ``loss="pixel_cce"``."""
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
    return trained("deeplab", model, "pixel_cce", batch, folder)


def segformer(batch, folder, steps=6):
    """keras-hub's ``SegFormerImageSegmenter`` (logits) on a tiny MiT, trained with
    ``PixelCategoricalCrossentropy(from_logits=True)`` at a learning rate of 1e-2."""
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
    return trained("segformer", model, loss, batch, folder, steps=steps, learning_rate=1e-2)


def reload_in_a_fresh_process(folder, names, blocked=()):
    """Every named model's reload in one child on this process's backend, with the modules
    ``blocked`` unimportable there: ``{name: the child's result}``."""
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), ",".join(blocked), *names],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def numpy_loss(labels, outputs, from_logits):
    """The mean cross-entropy of ``outputs`` (probabilities, or logits)."""
    logits = outputs if from_logits else np.log(np.maximum(outputs, 1e-30))
    return pixel_cce(labels, logits)


def numpy_accuracy(labels, outputs):
    return float(np.mean(np.argmax(outputs, -1) == labels))


def check_pixel_softmax_model(model, batch):
    """A model trained with pixel_softmax output: probabilities, finite losses, and
    ``pixel_cce`` of its outputs equal to NumPy's."""
    outputs = model["outputs"]
    assert outputs.shape == (2, SIZE, SIZE, CLASSES)
    np.testing.assert_allclose(outputs.sum(-1), 1.0, rtol=1e-5)
    assert np.isfinite(model["losses"]).all()
    loss = keras.losses.get("pixel_cce")
    assert float(loss(batch[1], outputs)) == pytest.approx(
        numpy_loss(batch[1], outputs, False), rel=REL
    )


def check_segformer(model, batch):
    """SegFormer's logits: its loss falls by 10 % and equals NumPy's from the logits."""
    losses = model["losses"]
    assert np.isfinite(losses).all() and losses[-1] < 0.9 * losses[0], losses
    logits = model["outputs"]
    assert not np.allclose(logits.sum(-1), 1.0)  # the head outputs logits, not probabilities
    assert float(model["loss"](batch[1], logits)) == pytest.approx(
        numpy_loss(batch[1], logits, True), rel=REL
    )


def check_reloaded(name, model, child, batch, folder):
    """The child's predictions equal the trained model's; its reloaded loss (the same class and
    ``from_logits``), optimizer step count, loss and pixel accuracy are the trained ones."""
    np.testing.assert_allclose(
        np.load(folder / f"{name}_pred.npy"), model["outputs"], rtol=0, atol=1e-6
    )
    from_logits = name == "segformer"
    assert child["loss_class"] == "PixelCategoricalCrossentropy"
    assert child["loss_config"]["from_logits"] is from_logits
    assert child["steps"] == model["steps"]  # the optimizer's state came back too
    scores = child["scores"]
    assert scores["loss"] == pytest.approx(
        numpy_loss(batch[1], model["outputs"], from_logits), rel=REL
    )
    assert scores["pixel_accuracy"] == pytest.approx(
        numpy_accuracy(batch[1], model["outputs"]), rel=REL
    )
