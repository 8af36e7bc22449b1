"""The backend-neutral path under ``KERAS_BACKEND=jax``: pixel_softmax, pixel_cce, pixel_bce and the
metrics against NumPy, under ``jax.jit``, with the TensorFlow path's error texts; the fused route
behind pixel_softmax (exact gradients at any logit gap, no leak) and ``bench --backend jax``.
Run with ``KERAS_BACKEND=jax python -m pytest -m jax tests/test_jax_backend.py``; skipped on
TensorFlow."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from backend_cases import check_counts_carry_past_int32, check_counts_exact_past_float32
from reference import log_softmax, pixel_bce, pixel_cce, softmax

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]

if BACKEND == "jax":
    import jax
    import jax.numpy as jnp
    from test_pixel_cce import BAD_INPUT_CASES

    import sm_pixel_ce
    from sm_pixel_ce import (
        PixelAccuracy,
        PixelBinaryCrossentropy,
        PixelCategoricalCrossentropy,
        PixelMeanIoU,
        pixel_categorical_crossentropy,
        pixel_softmax,
    )
else:
    BAD_INPUT_CASES = []

N, H, W, C = 2, 5, 6, 4
REL = 1e-5


@pytest.fixture
def data(rng):
    logits = rng.normal(0, 3, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W))
    return logits, labels


def jitted(loss, y_true, y_pred, sample_weight=None):
    return float(jax.jit(lambda t, p: loss(t, p, sample_weight=sample_weight))(y_true, y_pred))


def test_import_needs_no_segmentation_models():
    code = (
        "import sys; sys.modules['segmentation_models'] = None\n"
        "import sm_pixel_ce, numpy as np\n"
        "print(float(sm_pixel_ce.PixelCategoricalCrossentropy()("
        "np.zeros((1, 2, 2)), sm_pixel_ce.pixel_softmax(np.zeros((1, 2, 2, 3))))))"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert abs(float(out.stdout.split()[-1]) - np.log(3)) < 1e-6


@pytest.mark.parametrize("axis", [-1, 1])
def test_pixel_softmax_matches_numpy(data, axis):
    logits = data[0] if axis == -1 else np.moveaxis(data[0], -1, 1)
    out = jax.jit(lambda z: pixel_softmax(z, axis=axis))(logits)
    np.testing.assert_allclose(out, softmax(logits, axis=axis), rtol=REL, atol=1e-7)
    half = pixel_softmax(jnp.asarray(logits, jnp.float16), axis=axis)
    assert half.dtype == jnp.float32


class TestPixelCCE:
    @pytest.mark.parametrize("from_logits", [False, True])
    @pytest.mark.parametrize("dense", [False, True])
    def test_matches_numpy(self, data, from_logits, dense):
        logits, labels = data
        y_pred = logits if from_logits else pixel_softmax(logits)
        y_true = np.eye(C, dtype=np.float32)[labels] if dense else labels
        loss = PixelCategoricalCrossentropy(from_logits=from_logits)
        assert jitted(loss, y_true, y_pred) == pytest.approx(pixel_cce(labels, logits), rel=REL)

    @pytest.mark.parametrize("from_logits", [False, True])
    def test_options_match_numpy(self, data, from_logits):
        logits, labels = data
        labels = labels.copy()
        labels[0, 0] = 255
        options = dict(class_weights=[0.5, 1.0, 2.0, 3.0], ignore_index=255)
        y_pred = logits if from_logits else pixel_softmax(logits)
        for extra, reference in [
            ({}, {}),
            ({"label_smoothing": 0.2}, {"smoothing": 0.2}),
            ({"focal_gamma": 2.0}, {"gamma": 2.0}),
        ]:
            loss = PixelCategoricalCrossentropy(from_logits=from_logits, **options, **extra)
            expected = pixel_cce(labels, logits, **options, **reference)
            assert jitted(loss, labels, y_pred) == pytest.approx(expected, rel=REL)

    def test_sample_weight_and_reductions(self, data, rng):
        logits, labels = data
        sw = rng.uniform(0.5, 2.0, (N,)).astype(np.float32)
        loss = PixelCategoricalCrossentropy(from_logits=True)
        assert jitted(loss, labels, logits, sw) == pytest.approx(
            pixel_cce(labels, logits, sample_weight=sw), rel=REL
        )
        per_pixel = PixelCategoricalCrossentropy(from_logits=True, reduction="none")(labels, logits)
        np.testing.assert_allclose(per_pixel, pixel_cce(labels, logits, reduction="none"), REL)
        total = PixelCategoricalCrossentropy(from_logits=True, reduction="sum")(labels, logits)
        assert float(total) == pytest.approx(pixel_cce(labels, logits, reduction="sum"), rel=REL)

    def test_channels_first(self, data):
        logits, labels = data
        loss = PixelCategoricalCrossentropy(axis=1)
        value = jitted(loss, labels, pixel_softmax(np.moveaxis(logits, -1, 1), axis=1))
        assert value == pytest.approx(pixel_cce(labels, logits), rel=REL)

    @pytest.mark.parametrize("gap", [50.0, 200.0])
    def test_large_gap_keeps_gradient_p_minus_y(self, gap):
        """A confidently wrong pixel: Keras's clipped log gives it no gradient past a gap of 16,
        the floored log none past 87; the logits behind pixel_softmax give p - y at any gap."""
        logits = np.array([[[[gap, 0.0, 0.0]]]], np.float32)
        labels = np.array([[[1]]])
        loss = PixelCategoricalCrossentropy()

        def of_logits(z):
            return loss(labels, pixel_softmax(z))

        for step in (jax.jit(jax.value_and_grad(of_logits)), jax.value_and_grad(of_logits)):
            value, gradient = step(logits)
            assert float(value) == pytest.approx(-log_softmax(logits)[0, 0, 0, 1], rel=REL)
            expected = softmax(logits) - np.eye(3)[labels]
            np.testing.assert_allclose(gradient, expected, rtol=REL, atol=1e-7)

    @pytest.mark.parametrize("dense", [False, True])
    def test_fused_value_and_gradient_match_numpy(self, data, dense):
        """Through pixel_softmax, with class weights and an ignored pixel: the value and the
        gradient w.r.t. the logits, w·(p - y) / Σw, as NumPy computes them."""
        logits, labels = data
        labels = labels.copy()
        labels[0, 0, :2] = 255
        cw = np.array([0.5, 1.0, 2.0, 3.0])
        valid = labels != 255
        onehot = np.eye(C)[np.where(valid, labels, 0)] * valid[..., None]
        y_true = onehot.astype(np.float32) if dense else labels
        loss = PixelCategoricalCrossentropy(class_weights=list(cw), ignore_index=255)
        step = jax.jit(jax.value_and_grad(lambda z: loss(y_true, pixel_softmax(z))))
        value, gradient = step(logits)
        w = onehot @ cw
        expected = -np.sum(w * np.sum(onehot * log_softmax(logits), -1)) / w.sum()
        assert float(value) == pytest.approx(expected, rel=REL)
        expected_gradient = w[..., None] * (softmax(logits) - onehot) / w.sum()
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-7)

    def test_side_table_does_not_leak(self):
        """The table holds an output's logits while the output lives, and nothing after: not
        after tracing, not after the array dies. A copy of the probabilities is not found there
        (the floored log: 87.3 at a gap of 200)."""
        import gc

        from sm_pixel_ce._backend import generic as _neutral

        gc.collect()
        before = len(_neutral._LOGITS)
        logits = np.array([[[[200.0, 0.0, 0.0]]]], np.float32)
        labels = np.array([[[1]]])
        loss = PixelCategoricalCrossentropy()
        jax.jit(jax.grad(lambda z: loss(labels, pixel_softmax(z))))(logits)
        gc.collect()
        assert len(_neutral._LOGITS) == before
        output = pixel_softmax(logits)
        assert len(_neutral._LOGITS) == before + 1
        assert float(loss(labels, output)) == pytest.approx(200.0, rel=REL)
        assert float(loss(labels, jnp.array(output))) == pytest.approx(87.3365, rel=1e-4)
        del output
        assert len(_neutral._LOGITS) == before

    def test_from_logits_on_a_softmax_output_warns_and_uses_the_logits(self):
        logits = np.array([[[[200.0, 0.0, 0.0]]]], np.float32)
        loss = PixelCategoricalCrossentropy(from_logits=True)
        with pytest.warns(UserWarning, match="from_logits=True, but the predictions come from"):
            value = loss(np.array([[[1]]]), pixel_softmax(logits))
        assert float(value) == pytest.approx(200.0, rel=REL)

    @pytest.mark.parametrize("policy, layer", [(None, False), ("mixed_bfloat16", True)])
    def test_keras_hands_the_softmax_output_to_the_loss(self, policy, layer):
        """fit, evaluate and compute_loss reach the logits (mixed precision too): at a gap of
        200 the loss is 200, not 87.3, and one SGD step moves the biases by lr·(p - y)."""
        inputs = keras.Input((1, 1, 1))
        conv = keras.layers.Conv2D(
            3,
            1,
            activation=None if layer else "pixel_softmax",
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant([200.0, 0.0, 0.0]),
            dtype=policy,
        )
        outputs = conv(inputs)
        if layer:
            outputs = sm_pixel_ce.PixelSoftmax(dtype=policy)(outputs)
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.SGD(0.01), loss=PixelCategoricalCrossentropy())
        x, y = np.zeros((1, 1, 1, 1), np.float32), np.array([[[1]]])
        assert model.evaluate(x, y, verbose=0) == pytest.approx(200.0, rel=REL)
        model.fit(x, y, epochs=1, verbose=0)
        np.testing.assert_allclose(conv.bias.numpy(), [199.99, 0.01, 0.0], rtol=1e-4, atol=1e-6)
        assert float(model.compute_loss(x, y, model(x))) == pytest.approx(199.98, rel=1e-4)

    @pytest.mark.parametrize("kwargs, y_true, y_pred, match", BAD_INPUT_CASES)
    def test_bad_input_same_text_as_tensorflow(self, kwargs, y_true, y_pred, match):
        if match is None:
            assert np.isfinite(float(pixel_categorical_crossentropy(y_true, y_pred, **kwargs)))
            return
        with pytest.raises(ValueError, match=match):
            pixel_categorical_crossentropy(y_true, y_pred, **kwargs)

    def test_data_check_inside_jit_keeps_the_text(self, data):
        logits, labels = data
        step = jax.jit(lambda t, p: PixelCategoricalCrossentropy(from_logits=True)(t, p))
        with pytest.raises(Exception, match=r"ValueError: .*integer mask out of range"):
            jax.block_until_ready(step(labels + C, logits))
        with pytest.raises(Exception, match=r"ValueError: .*not probabilities"):
            jax.block_until_ready(
                jax.jit(lambda t, p: PixelCategoricalCrossentropy()(t, p))(labels, logits)
            )


class TestPixelBCE:
    @pytest.mark.parametrize("from_logits", [False, True])
    def test_matches_numpy(self, data, from_logits):
        logits, labels = data
        labels = labels.copy()
        labels[0, 0] = 255
        onehot = np.eye(C, dtype=np.float32)[np.where(labels == 255, 0, labels)]
        y_pred = logits if from_logits else jax.nn.sigmoid(logits)
        expected = pixel_bce(onehot, logits, valid=labels != 255, smoothing=0.1, gamma=2.0)
        loss = PixelBinaryCrossentropy(
            from_logits=from_logits, ignore_index=255, label_smoothing=0.1, focal_gamma=2.0
        )
        # Float32 sigmoid probabilities round 1 - p near 1: logits of N(0, 3) keep it.
        assert jitted(loss, labels, y_pred) == pytest.approx(expected, rel=1e-4)

    def test_dense_labels_out_of_range(self, data):
        logits, _ = data
        with pytest.raises(ValueError, match=r"dense labels must lie in \[0, 1\]"):
            PixelBinaryCrossentropy(from_logits=True)(np.full(logits.shape, 2.0), logits)


class TestMetrics:
    def test_match_numpy_under_jit(self, data):
        logits, labels = data
        metric = PixelMeanIoU(C)
        metric.update_state(labels, logits)
        predicted = logits.argmax(-1)
        ious = []
        for c in range(C):
            union = np.sum((labels == c) | (predicted == c))
            if union:
                ious.append(np.sum((labels == c) & (predicted == c)) / union)
        assert float(metric.result()) == pytest.approx(np.mean(ious), rel=REL)
        accuracy = PixelAccuracy()
        accuracy.update_state(labels, logits)
        assert float(accuracy.result()) == pytest.approx(np.mean(predicted == labels), rel=REL)

    def test_counts_exact_past_float32(self):
        check_counts_exact_past_float32()

    def test_counts_carry_past_int32(self):
        check_counts_carry_past_int32()


def test_class_weights(data):
    _, labels = data
    weights = sm_pixel_ce.class_weights(labels, C, method="inverse_frequency")
    counts = np.bincount(labels.ravel(), minlength=C)
    np.testing.assert_allclose(weights, counts.sum() / (C * counts), rtol=1e-6)


def test_model_fits_saves_and_reloads(tmp_path, rng):
    inputs = keras.Input((16, 16, 3))
    hidden = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(3, 1, activation="pixel_softmax")(hidden)
    model = keras.Model(inputs, outputs)
    images = rng.normal(size=(8, 16, 16, 3)).astype(np.float32)
    masks = rng.integers(0, 3, (8, 16, 16))
    masks[:, 0] = 255
    model.compile(
        "adam",
        loss=PixelCategoricalCrossentropy(ignore_index=255),
        metrics=[PixelAccuracy(ignore_index=255), PixelMeanIoU(3, ignore_index=255)],
    )
    history = model.fit(images, masks, batch_size=4, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )
    assert reloaded.evaluate(images, masks, verbose=0, return_dict=True)["loss"] == pytest.approx(
        model.evaluate(images, masks, verbose=0, return_dict=True)["loss"], rel=REL
    )


def test_string_names_compile_and_fit(rng):
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(3, 1, activation="pixel_softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile("adam", loss="pixel_cce", metrics=["pixel_accuracy"])
    images = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    history = model.fit(images, rng.integers(0, 3, (4, 8, 8)), verbose=0).history
    assert np.isfinite(history["loss"][0]) and 0 <= history["pixel_accuracy"][0] <= 1


@pytest.mark.parametrize("command", ["compare", "evaluate", "predict", "export", "bench"])
def test_the_jobs_say_in_one_line_that_they_need_tensorflow(command, capsys):
    from sm_pixel_ce.cli import main

    argv = {"evaluate": ["m.keras", "--data", "d"], "predict": ["m.keras", "a.png", "--out", "o"]}
    argv["export"] = ["m.keras", "--out", "m.onnx", "--format", "onnx"]
    assert main([command, *argv.get(command, [])]) == 2
    err = capsys.readouterr().err
    assert "runs on the TensorFlow backend" in err and len(err.strip().splitlines()) == 1, err
