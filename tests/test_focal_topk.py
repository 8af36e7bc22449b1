"""focal_gamma and top_k on pixel_cce / pixel_bce, and the "pixel_focal" loss: against NumPy
references (tests/reference.py), Keras's CategoricalFocalCrossentropy, and under tf.distribute."""

import numpy as np
import pytest
import tensorflow as tf
from reference import pixel_bce, pixel_cce, top_k_kept

import sm_pixel_ce
from sm_pixel_ce import (
    PixelBinaryCrossentropy,
    PixelCategoricalCrossentropy,
    PixelCategoricalFocalCrossentropy,
    pixel_binary_crossentropy,
    pixel_categorical_crossentropy,
    pixel_softmax,
)
from sm_pixel_ce.flavor import keras

N, H, W, C = 2, 5, 6, 7


@pytest.fixture
def data(rng):
    logits = rng.normal(0, 3, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W))
    return logits, labels


def one_hot(labels, c=C):
    return np.eye(c, dtype=np.float32)[labels]


def gradient(fn, logits):
    z = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = fn(z)
    return value.numpy(), tape.gradient(value, z).numpy()


class TestFocal:
    @pytest.mark.parametrize("gamma", [0.5, 2.0, 3.5])
    @pytest.mark.parametrize("smoothing", [0.0, 0.2])
    def test_probabilities_equal_keras_categorical_focal(self, data, gamma, smoothing):
        logits, labels = data
        p = tf.nn.softmax(logits)  # plain probabilities: no logits behind them
        expected = keras.losses.CategoricalFocalCrossentropy(
            alpha=1.0, gamma=gamma, label_smoothing=smoothing
        )(one_hot(labels), p).numpy()
        for y in (one_hot(labels), labels):
            got = pixel_categorical_crossentropy(
                y, p, focal_gamma=gamma, label_smoothing=smoothing
            ).numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-5)

    @pytest.mark.parametrize("smoothing", [0.0, 0.1])
    @pytest.mark.parametrize("kind", ["integer", "one_hot", "softmax_output"])
    @pytest.mark.parametrize("gamma", [0.5, 2.0])
    def test_logits_with_every_option_match_numpy(self, rng, data, smoothing, kind, gamma):
        logits, labels = data
        labels = labels.copy()
        labels[0, :2] = 255
        weights = rng.uniform(0.2, 2.0, C)
        sw = rng.uniform(0, 2, (N, H, W))
        loss = PixelCategoricalCrossentropy(
            from_logits=kind != "softmax_output",
            label_smoothing=smoothing,
            class_weights=weights,
            ignore_index=255,
            focal_gamma=gamma,
        )
        y_pred = pixel_softmax(logits) if kind == "softmax_output" else logits
        y = labels
        if kind == "one_hot":  # ignored pixels: all-zero rows
            y = np.where(
                (labels == 255)[..., None], 0.0, one_hot(np.where(labels == 255, 0, labels))
            )
        got = loss(y, y_pred, sample_weight=sw).numpy()
        expected = pixel_cce(labels, logits, weights, 255, smoothing, sample_weight=sw, gamma=gamma)
        np.testing.assert_allclose(got, expected, rtol=1e-5)

    @pytest.mark.parametrize("reduction", ["sum", "none", "mean_with_sample_weight"])
    def test_reductions(self, data, reduction):
        logits, labels = data
        sw = np.linspace(0.5, 1.5, N)
        got = pixel_categorical_crossentropy(
            labels,
            logits,
            from_logits=True,
            focal_gamma=2.0,
            sample_weight=sw,
            reduction=reduction,
        ).numpy()
        terms = pixel_cce(labels, logits, sample_weight=sw, reduction="none", gamma=2.0)
        expected = {
            "sum": terms.sum(),
            "none": terms,
            "mean_with_sample_weight": terms.sum() / (sw[:, None, None] * np.ones((N, H, W))).sum(),
        }[reduction]
        np.testing.assert_allclose(got, expected, rtol=1e-5)

    def test_gamma_zero_is_the_plain_loss_exactly(self, data):
        logits, labels = data
        for y_pred, from_logits in ((logits, True), (pixel_softmax(logits), False)):
            plain = pixel_categorical_crossentropy(labels, y_pred, from_logits=from_logits)
            zero = pixel_categorical_crossentropy(
                labels, y_pred, from_logits=from_logits, focal_gamma=0
            )
            assert plain.numpy() == zero.numpy()

    @pytest.mark.parametrize("gamma", [0.5, 2.0])
    @pytest.mark.parametrize("kind", ["integer", "one_hot", "smoothed"])
    def test_confidently_wrong_pixel_keeps_its_gradient(self, gamma, kind):
        logits = np.zeros((1, 1, 2, 3), np.float32)
        logits[0, 0, :, 0] = 50.0  # both pixels say class 0 with a logit gap of 50
        labels = np.array([[[2, 0]]])  # pixel 0 is confidently wrong, pixel 1 confidently right
        y = one_hot(labels, 3) if kind == "one_hot" else labels
        smoothing = 0.1 if kind == "smoothed" else 0.0

        def loss(z):
            return pixel_categorical_crossentropy(
                y, pixel_softmax(z), focal_gamma=gamma, label_smoothing=smoothing
            )

        value, grad = gradient(loss, logits)
        assert np.all(np.isfinite(grad)) and np.isfinite(value)
        # The wrong pixel: ℓ ≈ 50·(1 - e^-50)^γ, its gradient ≈ (p - y)/2 pixels = ±0.5.
        np.testing.assert_allclose(grad[0, 0, 0, [0, 2]], [0.5, -0.5], atol=0.06)
        expected = pixel_cce(labels, logits, smoothing=smoothing, gamma=gamma)
        np.testing.assert_allclose(value, expected, rtol=1e-5)

    def test_jit_compiled_matches_eager(self, data):
        logits, labels = data

        @tf.function(jit_compile=True)
        def step(z):
            return pixel_categorical_crossentropy(
                labels, pixel_softmax(z), focal_gamma=2.0, top_k=0.3, ignore_index=3
            )

        expected = pixel_cce(labels, logits, ignore_index=3, gamma=2.0, top_k=0.3)
        np.testing.assert_allclose(step(tf.constant(logits)).numpy(), expected, rtol=1e-5)


class TestSigmoidFocal:
    @pytest.mark.parametrize("gamma", [0.5, 2.0])
    @pytest.mark.parametrize("smoothing", [0.0, 0.1])
    def test_matches_torchvision_formula(self, data, gamma, smoothing):
        logits, labels = data
        labels = labels.copy()
        labels[1, 0] = 255
        valid = labels != 255
        y = one_hot(np.where(valid, labels, 0))
        expected = pixel_bce(y, logits, valid, smoothing, gamma=gamma)
        for y_pred, from_logits in ((logits, True), (tf.sigmoid(logits), False)):
            got = pixel_binary_crossentropy(
                labels,
                y_pred,
                from_logits=from_logits,
                ignore_index=255,
                label_smoothing=smoothing,
                focal_gamma=gamma,
            ).numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-4)

    def test_confident_pixels_keep_finite_gradients(self):
        logits = np.array([[[[50.0, -50.0]]]], np.float32)
        labels = np.array([[[[0.0, 1.0]]]], np.float32)  # both channels confidently wrong

        for gamma in (0.5, 2.0):
            value, grad = gradient(
                lambda z, g=gamma: pixel_binary_crossentropy(
                    labels, z, from_logits=True, focal_gamma=g
                ),
                logits,
            )
            np.testing.assert_allclose(value, 50.0, rtol=1e-4)
            np.testing.assert_allclose(grad[0, 0, 0], [0.5, -0.5], rtol=1e-3)
        right = 1.0 - labels  # both confidently right: the gradient must not be NaN for γ < 1
        value, grad = gradient(
            lambda z: pixel_binary_crossentropy(right, z, from_logits=True, focal_gamma=0.5),
            logits,
        )
        assert np.isfinite(value) and np.all(np.isfinite(grad))


class TestTopK:
    @pytest.mark.parametrize("top_k", [0.05, 0.3, 0.5, 0.99])
    def test_matches_numpy_with_weights_and_ignore_index(self, rng, data, top_k):
        logits, labels = data
        labels = labels.copy()
        labels[rng.uniform(size=labels.shape) < 0.3] = 255
        weights = rng.uniform(0.2, 2.0, C)
        got = pixel_categorical_crossentropy(
            labels, pixel_softmax(logits), class_weights=weights, ignore_index=255, top_k=top_k
        ).numpy()
        expected = pixel_cce(labels, logits, weights, 255, top_k=top_k)
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        # Mining ranks before the class weights: the kept pixels are those of the plain losses.
        per_pixel = pixel_categorical_crossentropy(
            labels,
            logits,
            from_logits=True,
            class_weights=weights,
            ignore_index=255,
            top_k=top_k,
            reduction="none",
        ).numpy()
        plain = pixel_cce(labels, logits, ignore_index=255, reduction="none")
        np.testing.assert_array_equal(per_pixel != 0, top_k_kept(plain, labels != 255, top_k))

    def test_kept_count_is_the_ceiling_and_pixels_are_the_hardest(self, rng):
        logits = rng.normal(0, 3, (1, 2, 5, C)).astype(np.float32)
        labels = rng.integers(0, C, (1, 2, 5))
        per_pixel = pixel_categorical_crossentropy(
            labels, logits, from_logits=True, top_k=0.3, reduction="none"
        ).numpy()
        plain = pixel_cce(labels, logits, reduction="none")
        kept = per_pixel != 0
        assert kept.sum() == 3  # ⌈0.3·10⌉ = 3, not 4 from 0.3·10 = 3.0000000000000004
        assert set(plain[kept]) <= set(np.sort(plain.ravel())[-3:].tolist())
        np.testing.assert_allclose(per_pixel[kept], plain[kept], rtol=1e-5)

    def test_ties_keep_exactly_k_earliest_pixels(self):
        logits = np.zeros((2, 3, 3, 4), np.float32)  # every pixel has the same loss ln 4
        labels = np.arange(18).reshape(2, 3, 3) % 4
        weights = [1.0, 2.0, 3.0, 4.0]
        for top_k in (0.25, 0.5, 0.6):
            got = pixel_categorical_crossentropy(
                labels, logits, from_logits=True, class_weights=weights, top_k=top_k
            ).numpy()
            expected = pixel_cce(labels, logits, weights, top_k=top_k)
            np.testing.assert_allclose(got, expected, rtol=1e-6)
            assert top_k_kept(np.ones(18), np.ones(18, bool), top_k).sum() == np.ceil(18 * top_k)

    def test_top_k_one_is_no_mining_exactly(self, data):
        logits, labels = data
        for fn in (pixel_categorical_crossentropy, pixel_binary_crossentropy):
            plain = fn(labels, logits, from_logits=True, ignore_index=2).numpy()
            assert fn(labels, logits, from_logits=True, ignore_index=2, top_k=1).numpy() == plain

    def test_gradient_only_on_kept_pixels(self, data):
        logits, labels = data
        value, grad = gradient(
            lambda z: pixel_categorical_crossentropy(
                labels, z, from_logits=True, focal_gamma=2.0, top_k=0.2
            ),
            logits,
        )
        kept = top_k_kept(pixel_cce(labels, logits, reduction="none", gamma=2.0), True, 0.2)
        moved = np.abs(grad).sum(-1) > 0
        np.testing.assert_array_equal(moved, kept)
        # Finite differences of the NumPy reference on one kept logit.
        index = tuple(np.argwhere(kept)[0]) + (1,)
        step = np.zeros_like(logits, np.float64)
        step[index] = 1e-4
        numeric = (
            pixel_cce(labels, logits + step, gamma=2.0, top_k=0.2)
            - pixel_cce(labels, logits - step, gamma=2.0, top_k=0.2)
        ) / 2e-4
        np.testing.assert_allclose(grad[index], numeric, rtol=1e-3)

    def test_dense_unlabelled_pixels_do_not_count(self, data):
        logits, labels = data
        y = one_hot(labels)
        y[0, 0] = 0.0  # a row of unlabelled pixels
        got = pixel_categorical_crossentropy(y, logits, from_logits=True, top_k=0.4).numpy()
        masked = labels.copy()
        masked[0, 0] = 255
        np.testing.assert_allclose(
            got, pixel_cce(masked, logits, ignore_index=255, top_k=0.4), rtol=1e-5
        )

    def test_all_ignored_gives_zero(self, data):
        logits, _ = data
        labels = np.full((N, H, W), 255)
        got = pixel_categorical_crossentropy(
            labels, logits, from_logits=True, ignore_index=255, top_k=0.5
        )
        assert float(got) == 0.0

    @pytest.mark.parametrize("gamma", [0.0, 2.0])
    def test_bce_top_k_matches_numpy(self, data, gamma):
        logits, labels = data
        labels = labels.copy()
        labels[0, 1] = 255
        valid = labels != 255
        expected = pixel_bce(
            one_hot(np.where(valid, labels, 0)), logits, valid, gamma=gamma, top_k=0.25
        )
        got = PixelBinaryCrossentropy(ignore_index=255, focal_gamma=gamma, top_k=0.25)(
            labels, tf.sigmoid(logits)
        ).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4)

    def test_model_fit_step_with_focal_and_top_k(self, rng):
        inputs = keras.Input((8, 8, 3))
        outputs = keras.layers.Conv2D(C, 1, activation="pixel_softmax")(inputs)
        model = keras.Model(inputs, outputs)
        model.compile(
            keras.optimizers.SGD(0.1),
            loss=PixelCategoricalCrossentropy(focal_gamma=2.0, top_k=0.25, ignore_index=255),
        )
        x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
        y = rng.integers(0, C, (4, 8, 8)).astype(np.uint8)
        expected = pixel_cce(y, _logits_of(model, x), ignore_index=255, gamma=2.0, top_k=0.25)
        loss = model.train_on_batch(x, y)
        loss = loss[0] if isinstance(loss, (list, tuple)) else loss
        np.testing.assert_allclose(loss, expected, rtol=1e-4)


def _logits_of(model, x):
    """The logits of a Conv2D(activation=...) output layer, in NumPy."""
    layer = model.layers[-1]
    kernel, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    return np.einsum("nhwc,ck->nhwk", x, kernel[0, 0]) + bias


class TestConfig:
    def test_config_round_trip_and_serialization(self):
        loss = PixelCategoricalCrossentropy(focal_gamma=1.5, top_k=0.25, ignore_index=255)
        config = loss.get_config()
        assert config["focal_gamma"] == 1.5 and config["top_k"] == 0.25
        again = PixelCategoricalCrossentropy.from_config(config)
        assert again.get_config() == config
        revived = keras.losses.deserialize(keras.losses.serialize(loss))
        assert isinstance(revived, PixelCategoricalCrossentropy)
        assert revived.get_config() == config
        bce = PixelBinaryCrossentropy(focal_gamma=2.0, top_k=0.5)
        assert keras.losses.deserialize(keras.losses.serialize(bce)).get_config() == (
            bce.get_config()
        )

    def test_config_saved_before_the_options_loads(self):
        # Exactly what PixelCategoricalCrossentropy.get_config() gave before focal_gamma/top_k.
        old = {
            "axis": -1,
            "from_logits": False,
            "label_smoothing": 0.1,
            "class_weights": [1.0, 2.0],
            "ignore_index": 255,
            "reduction": "sum_over_batch_size",
            "name": "pixel_categorical_crossentropy",
        }
        loss = PixelCategoricalCrossentropy.from_config(old)
        assert loss.focal_gamma == 0.0 and loss.top_k is None and loss.label_smoothing == 0.1
        old_bce = {k: v for k, v in old.items() if k != "class_weights"}
        assert PixelBinaryCrossentropy.from_config(old_bce).top_k is None
        revived = keras.losses.deserialize(
            {"class_name": "sm_pixel_ce>PixelCategoricalCrossentropy", "config": old}
        )
        assert revived.ignore_index == 255 and revived.focal_gamma == 0.0

    def test_pixel_focal_is_focal_gamma_two(self, data):
        logits, labels = data
        for name in ("pixel_focal", "pixel_categorical_focal_crossentropy"):
            loss = keras.losses.get(name)
            assert isinstance(loss, PixelCategoricalCrossentropy)
            assert loss.focal_gamma == 2.0
            np.testing.assert_allclose(
                loss(labels, pixel_softmax(logits)).numpy(),
                pixel_cce(labels, logits, gamma=2.0),
                rtol=1e-5,
            )
        assert "pixel_focal" in sm_pixel_ce.list_names("loss")
        assert PixelCategoricalFocalCrossentropy(focal_gamma=0.5).focal_gamma == 0.5

    @pytest.mark.parametrize("loss", ["pixel_focal", "options"])
    def test_saved_model_reloads_with_the_options(self, tmp_path, rng, loss):
        inputs = keras.Input((8, 8, 3))
        outputs = keras.layers.Conv2D(C, 1, activation="pixel_softmax")(inputs)
        model = keras.Model(inputs, outputs)
        if loss == "options":
            loss = PixelCategoricalCrossentropy(
                focal_gamma=1.5, top_k=0.4, ignore_index=255, class_weights=[1.0] * C
            )
        model.compile("sgd", loss=loss)
        x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
        y = rng.integers(0, C, (2, 8, 8)).astype(np.uint8)
        before = model.evaluate(x, y, verbose=0)
        path = str(tmp_path / "model.keras")
        model.save(path)
        again = sm_pixel_ce.load_model(path)
        restored = again.loss
        restored = getattr(restored, "fn", restored)  # tf_keras wraps in LossesContainer
        after = again.evaluate(x, y, verbose=0)
        np.testing.assert_allclose(after, before, rtol=1e-5)
        expected_gamma, expected_k = (2.0, None) if loss == "pixel_focal" else (1.5, 0.4)
        expected = pixel_cce(y, _logits_of(model, x), gamma=expected_gamma, top_k=expected_k)
        np.testing.assert_allclose(after, expected, rtol=1e-4)


BAD = [
    ({"focal_gamma": -1.0}, "focal_gamma"),
    ({"focal_gamma": float("nan")}, "focal_gamma"),
    ({"focal_gamma": float("inf")}, "focal_gamma"),
    ({"focal_gamma": "2"}, "focal_gamma"),
    ({"focal_gamma": True}, "focal_gamma"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": 1.5}, "top_k"),
    ({"top_k": -0.2}, "top_k"),
    ({"top_k": True}, "top_k"),
    ({"top_k": "0.5"}, "top_k"),
]


@pytest.mark.parametrize("kwargs, match", BAD)
def test_bad_options_raise_clear_errors(data, kwargs, match):
    logits, labels = data
    value = next(iter(kwargs.values()))
    pattern = rf"`{match}`.*Received: {match}={value!r}".replace("(", r"\(").replace(")", r"\)")
    for fn in (pixel_categorical_crossentropy, pixel_binary_crossentropy):
        with pytest.raises(ValueError, match=pattern):
            fn(labels, logits, from_logits=True, **kwargs)
    for cls in (PixelCategoricalCrossentropy, PixelBinaryCrossentropy):
        with pytest.raises(ValueError, match=pattern):
            cls(**kwargs)


@pytest.mark.xdist_group("mirrored")  # one worker runs the 2-CPU checks' process
def test_top_k_is_global_under_mirrored_strategy(mirrored_reports):
    # tests/topk_distributed_check.py, in the 2-CPU checks' fresh process (tests/conftest.py).
    report = mirrored_reports["topk"]
    assert report["replicas"] == 2
    np.testing.assert_allclose(report["distributed"], report["single"], rtol=1e-5)
    np.testing.assert_allclose(report["numpy"], report["single"], rtol=1e-5)
    assert report["max_gradient_difference"] <= 1e-6 * report["max_gradient"]
    # Choosing k per replica would give another value on these data.
    assert abs(report["per_replica"] - report["single"]) > 0.05
    assert report["kept"] == report["expected_kept"]
    # OHEM by threshold (tests/test_focal_alpha_ohem.py), through the same hook in the same run:
    # min_kept·N of the global batch kept, as one device and MMSegmentation's sampler keep them.
    ohem = report["ohem"]
    np.testing.assert_allclose(ohem["distributed"], ohem["single"], rtol=1e-5)
    np.testing.assert_allclose(ohem["mmseg"], ohem["single"], rtol=1e-5)
    assert ohem["max_gradient_difference"] <= 1e-6 * ohem["max_gradient"]
    assert abs(ohem["per_replica"] - ohem["single"]) > 0.05
    assert ohem["below_threshold"] < ohem["kept"] == ohem["expected_kept"] == ohem["min_kept_total"]
