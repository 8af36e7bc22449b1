"""``keras.distribution.DataParallel`` over 2 CPU devices under ``KERAS_BACKEND=jax``: pixel_cce's
loss and gradients, the metrics' counts and a fit step equal the one-device values. The devices
exist only if ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` is set before JAX starts, so
the check runs in a child process. Run with ``KERAS_BACKEND=jax python -m pytest -m jax
tests/test_jax_distribution.py``; skipped on TensorFlow."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]

REL = 1e-5

# One device first (before any distribution is set), then the same model, weights and batch
# under DataParallel with the batch split over the 2 devices. Prints one JSON line.
CHILD = """
import json
import jax
import keras
import numpy as np
import sm_pixel_ce
from sm_pixel_ce import PixelAccuracy, PixelCategoricalCrossentropy, PixelMeanIoU

rng = np.random.default_rng(0)
x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
y = rng.integers(0, 3, (4, 8, 8))
y[:, :2] = 255  # ignored pixels
loss = PixelCategoricalCrossentropy(class_weights=[0.5, 1.0, 2.0], ignore_index=255)


def build(weights=None):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="pixel_softmax")(hidden))
    if weights is not None:
        model.set_weights(weights)
    return model


def measure(model, x, y):
    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def value(trainable):
        return loss(y, model.stateless_call(trainable, fixed, x)[0])

    value, grads = jax.jit(jax.value_and_grad(value))(trainable)
    metrics = [PixelAccuracy(ignore_index=255), PixelMeanIoU(3, ignore_index=255)]
    prediction = model(x)
    for metric in metrics:
        metric.update_state(y, prediction)
    model.compile(keras.optimizers.SGD(0.1), loss=loss)
    step = float(np.ravel(model.train_on_batch(x, y))[0])
    return {
        "loss": float(value),
        "grads": [np.asarray(g).tolist() for g in grads],
        "counts": [{v.name: np.asarray(v).tolist() for v in m.variables} for m in metrics],
        "results": [float(m.result()) for m in metrics],
        "step_loss": step,
        "weights": [w.tolist() for w in model.get_weights()],
    }


one = build()
start = one.get_weights()
single = measure(one, x, y)

devices = keras.distribution.list_devices("cpu")
distribution = keras.distribution.DataParallel(devices=devices)
keras.distribution.set_distribution(distribution)
model = build(start)
def split(array):
    return jax.device_put(array, distribution.get_data_layout(array.shape).backend_layout)


xs, ys = split(x), split(y)
shards = [s.data.shape[0] for s in xs.addressable_shards]
spread = [sorted(str(d) for d in v.value.devices()) for v in model.trainable_variables]
parallel = measure(model, xs, ys)
print("RESULT " + json.dumps({
    "devices": len(devices), "shards": shards, "spread": spread,
    "single": single, "parallel": parallel,
}))
"""


@pytest.fixture(scope="module")
def result():
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_the_batch_is_split_over_two_devices(result):
    assert result["devices"] == 2
    assert result["shards"] == [2, 2]
    assert all(len(devices) == 2 for devices in result["spread"])  # weights replicated


def test_loss_and_gradients_equal_one_device(result):
    single, parallel = result["single"], result["parallel"]
    assert np.isfinite(single["loss"]) and single["loss"] > 0
    assert parallel["loss"] == pytest.approx(single["loss"], rel=REL)
    for got, expected in zip(parallel["grads"], single["grads"]):
        expected = np.asarray(expected)
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(got, expected, rtol=REL, atol=REL * np.abs(expected).max())


def test_metric_counts_equal_one_device(result):
    single, parallel = result["single"], result["parallel"]
    assert parallel["counts"] == single["counts"]  # integer counts: exactly
    np.testing.assert_allclose(parallel["results"], single["results"], rtol=REL)
    accuracy, miou = single["counts"]
    counted = 4 * 6 * 8  # two rows of each 8x8 mask are ignored
    (correct, counted_low), high = accuracy["correct_counted_low"], accuracy["correct_counted_high"]
    assert counted_low == counted and high == [0, 0]
    assert np.sum(miou["confusion_low"]) == counted
    assert 0 < correct < counted


def test_a_fit_step_gives_the_one_device_weights(result):
    single, parallel = result["single"], result["parallel"]
    assert parallel["step_loss"] == pytest.approx(single["step_loss"], rel=REL)
    for got, expected in zip(parallel["weights"], single["weights"]):
        np.testing.assert_allclose(got, expected, rtol=REL, atol=1e-7)
