"""PixelCategoricalCrossentropy / pixel_categorical_crossentropy against NumPy and Keras."""

import numpy as np
import pytest
import tensorflow as tf
from reference import log_softmax, pixel_cce, probability_logits, softmax

import sm_pixel_ce
from sm_pixel_ce import PixelCategoricalCrossentropy, pixel_categorical_crossentropy, pixel_softmax
from sm_pixel_ce.flavor import keras

N, H, W, C = 2, 5, 6, 7


@pytest.fixture
def data(rng):
    logits = rng.normal(0, 3, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W))
    return logits, labels


def one_hot(labels, c=C):
    return np.eye(c, dtype=np.float32)[labels]


class TestValues:
    def test_unweighted_matches_numpy_and_keras(self, data):
        logits, labels = data
        probs = pixel_softmax(logits)
        got = pixel_categorical_crossentropy(labels, probs).numpy()
        np.testing.assert_allclose(got, pixel_cce(labels, logits), rtol=1e-5)
        keras_value = keras.losses.CategoricalCrossentropy()(
            one_hot(labels), tf.nn.softmax(logits)
        ).numpy()
        np.testing.assert_allclose(got, keras_value, rtol=1e-5)

    def test_probabilities_not_from_softmax(self, rng):
        # Unnormalised probabilities: renormalised as Keras does, then -log of p clipped to
        # [smallest normal float32, 1], where Keras clips to [1e-7, 1 - 1e-7]. Without a
        # probability below 1e-7 that is Keras's value; a zero counts 87.34 here, 16.1 in Keras.
        p = rng.uniform(0.01, 1, (N, H, W, C)).astype(np.float32)
        labels = rng.integers(0, C, (N, H, W))
        keras_value = keras.losses.CategoricalCrossentropy()(one_hot(labels), tf.constant(p))
        for y_true in (one_hot(labels), labels):
            got = pixel_categorical_crossentropy(y_true, tf.constant(p)).numpy()
            np.testing.assert_allclose(got, keras_value.numpy(), rtol=1e-5)
        p[0, 0, 0] = 0.0
        p[0, 0, 0, 3] = 1.0
        labels[0, 0, 0] = 0
        expected = pixel_cce(labels, probability_logits(p))
        for y_true in (one_hot(labels), labels):
            got = pixel_categorical_crossentropy(y_true, tf.constant(p)).numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-5)

    def test_from_logits(self, data):
        logits, labels = data
        got = pixel_categorical_crossentropy(labels, logits, from_logits=True).numpy()
        np.testing.assert_allclose(got, pixel_cce(labels, logits), rtol=1e-5)
        dense = pixel_categorical_crossentropy(one_hot(labels), logits, from_logits=True).numpy()
        np.testing.assert_allclose(dense, got, rtol=1e-6)

    @pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64", "float32", "float16"])
    def test_integer_mask_dtypes_equal_one_hot(self, data, dtype):
        logits, labels = data
        probs = pixel_softmax(logits)
        expected = pixel_categorical_crossentropy(one_hot(labels), probs).numpy()
        got = pixel_categorical_crossentropy(labels.astype(dtype), probs).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        with_axis = pixel_categorical_crossentropy(labels[..., None].astype(dtype), probs).numpy()
        np.testing.assert_allclose(with_axis, expected, rtol=1e-6)

    @pytest.mark.parametrize("kind", ["integer", "one_hot"])
    def test_channels_first_equals_channels_last(self, data, kind):
        logits, labels = data
        loss_last = PixelCategoricalCrossentropy(class_weights=np.arange(1, C + 1), ignore_index=2)
        loss_first = PixelCategoricalCrossentropy(
            axis=1, class_weights=np.arange(1, C + 1), ignore_index=2
        )
        logits_first = np.moveaxis(logits, -1, 1)
        y_last = labels if kind == "integer" else one_hot(labels)
        y_first = labels if kind == "integer" else np.moveaxis(one_hot(labels), -1, 1)
        expected = loss_last(y_last, pixel_softmax(logits)).numpy()
        got = loss_first(y_first, pixel_softmax(logits_first, axis=1)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        if kind == "integer":
            np.testing.assert_allclose(
                got,
                pixel_cce(labels, logits, class_weights=np.arange(1, C + 1), ignore_index=2),
                rtol=1e-5,
            )

    def test_channels_first_per_pixel_map_keeps_pixel_order(self, data):
        logits, labels = data
        per_pixel = PixelCategoricalCrossentropy(axis=1, reduction="none")(
            labels, pixel_softmax(np.moveaxis(logits, -1, 1), axis=1)
        ).numpy()
        assert per_pixel.shape == (N, H, W)
        np.testing.assert_allclose(
            per_pixel, pixel_cce(labels, logits, reduction="none"), rtol=1e-5
        )

    def test_class_weights_and_ignore_index(self, rng, data):
        logits, labels = data
        labels = labels.copy()
        labels[rng.uniform(size=labels.shape) < 0.3] = 255
        weights = rng.uniform(0.1, 3.0, C)
        loss = PixelCategoricalCrossentropy(class_weights=weights, ignore_index=255)
        got = loss(labels, pixel_softmax(logits)).numpy()
        np.testing.assert_allclose(got, pixel_cce(labels, logits, weights, 255), rtol=1e-5)
        # The same weighted mean, written out: Σ w[y]·ℓ / Σ w[y] over counted pixels.
        counted = labels != 255
        ell = -log_softmax(logits)[counted, labels[counted]]
        w = weights[labels[counted]]
        np.testing.assert_allclose(got, (w * ell).sum() / w.sum(), rtol=1e-5)

    def test_ignore_index_may_be_a_class(self, data):
        logits, labels = data
        got = PixelCategoricalCrossentropy(ignore_index=0)(labels, pixel_softmax(logits)).numpy()
        np.testing.assert_allclose(got, pixel_cce(labels, logits, ignore_index=0), rtol=1e-5)

    def test_dense_unlabelled_pixels_are_not_counted(self, data):
        logits, labels = data
        y = one_hot(labels)
        y[0, :2] = 0.0  # unlabelled rows
        ignored = labels.copy()
        ignored[0, :2] = 255
        got = pixel_categorical_crossentropy(y, pixel_softmax(logits)).numpy()
        np.testing.assert_allclose(got, pixel_cce(ignored, logits, ignore_index=255), rtol=1e-5)

    def test_soft_labels(self, rng, data):
        logits, _ = data
        y = softmax(rng.normal(size=(N, H, W, C))).astype(np.float32)
        got = pixel_categorical_crossentropy(y, pixel_softmax(logits)).numpy()
        np.testing.assert_allclose(got, -(y * log_softmax(logits)).sum(-1).mean(), rtol=1e-5)

    def test_all_ignored_gives_zero_not_nan(self, data):
        logits, _ = data
        labels = np.full((N, H, W), 255)
        got = PixelCategoricalCrossentropy(ignore_index=255)(labels, pixel_softmax(logits)).numpy()
        assert got == 0.0

    @pytest.mark.parametrize("smoothing", [0.1, 0.5, 1.0])
    def test_label_smoothing(self, data, smoothing):
        logits, labels = data
        expected = pixel_cce(labels, logits, smoothing=smoothing)
        loss = PixelCategoricalCrossentropy(label_smoothing=smoothing)
        for y in (labels, one_hot(labels)):
            np.testing.assert_allclose(loss(y, pixel_softmax(logits)).numpy(), expected, rtol=1e-5)
            np.testing.assert_allclose(
                PixelCategoricalCrossentropy(label_smoothing=smoothing, from_logits=True)(
                    y, logits
                ).numpy(),
                expected,
                rtol=1e-5,
            )
        keras_value = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)(
            one_hot(labels), tf.nn.softmax(logits)
        ).numpy()
        np.testing.assert_allclose(expected, keras_value, rtol=1e-5)

    def test_label_smoothing_on_probabilities(self, data):
        logits, labels = data
        p = tf.constant(softmax(logits).astype(np.float32))  # plain tensor: no logits behind it
        got = PixelCategoricalCrossentropy(label_smoothing=0.2)(labels, p).numpy()
        np.testing.assert_allclose(got, pixel_cce(labels, logits, smoothing=0.2), rtol=1e-4)

    def test_sample_weight_per_image_and_per_pixel(self, rng, data):
        logits, labels = data
        probs = pixel_softmax(logits)
        loss = PixelCategoricalCrossentropy(class_weights=np.linspace(0.5, 2, C), ignore_index=3)
        per_image = np.array([0.25, 2.0])
        got = loss(labels, probs, sample_weight=per_image).numpy()
        ref = pixel_cce(labels, logits, np.linspace(0.5, 2, C), 3, sample_weight=per_image)
        np.testing.assert_allclose(got, ref, rtol=1e-5)
        per_pixel = rng.uniform(0, 2, (N, H, W))
        ref = pixel_cce(labels, logits, np.linspace(0.5, 2, C), 3, sample_weight=per_pixel)
        np.testing.assert_allclose(
            loss(labels, probs, sample_weight=per_pixel).numpy(), ref, rtol=1e-5
        )
        np.testing.assert_allclose(
            loss(labels, probs, sample_weight=per_pixel[..., None]).numpy(), ref, rtol=1e-5
        )

    def test_sample_weight_matches_keras_with_neutral_options(self, data):
        logits, labels = data
        sw = np.array([0.5, 1.5])
        got = PixelCategoricalCrossentropy()(
            labels, pixel_softmax(logits), sample_weight=sw
        ).numpy()
        expected = keras.losses.CategoricalCrossentropy()(
            one_hot(labels), tf.nn.softmax(logits), sample_weight=sw[:, None, None]
        )
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5)

    def test_reductions(self, data):
        logits, labels = data
        weights = np.linspace(1, 2, C)
        sw = np.array([0.5, 2.0])
        probs = pixel_softmax(logits)
        per_pixel = pixel_cce(labels, logits, weights, 1, sample_weight=sw, reduction="none")
        none = PixelCategoricalCrossentropy(class_weights=weights, ignore_index=1, reduction="none")
        np.testing.assert_allclose(
            none(labels, probs, sample_weight=sw).numpy(), per_pixel, rtol=1e-5
        )
        total = PixelCategoricalCrossentropy(class_weights=weights, ignore_index=1, reduction="sum")
        np.testing.assert_allclose(
            total(labels, probs, sample_weight=sw).numpy(), per_pixel.sum(), rtol=1e-5
        )
        counted = (labels != 1) * weights[np.where(labels != 1, labels, 0)] * sw[:, None, None]
        mws = PixelCategoricalCrossentropy(
            class_weights=weights, ignore_index=1, reduction="mean_with_sample_weight"
        )
        np.testing.assert_allclose(
            mws(labels, probs, sample_weight=sw).numpy(), per_pixel.sum() / counted.sum(), rtol=1e-5
        )

    def test_stable_for_huge_logits(self, rng):
        logits = rng.choice([-1e4, 0.0, 1e4], size=(N, H, W, C)).astype(np.float32)
        labels = rng.integers(0, C, (N, H, W))
        got = pixel_categorical_crossentropy(labels, pixel_softmax(logits)).numpy()
        assert np.isfinite(got)
        np.testing.assert_allclose(got, pixel_cce(labels, logits), rtol=1e-5)

    def test_half_precision_predictions_give_float32(self, data):
        logits, labels = data
        for dtype in (tf.float16, tf.bfloat16):
            probs = pixel_softmax(tf.cast(logits, dtype))
            assert probs.dtype == tf.float32
            value = pixel_categorical_crossentropy(labels, probs)
            assert value.dtype == tf.float32
            np.testing.assert_allclose(
                value.numpy(), pixel_cce(labels, tf.cast(logits, dtype).numpy()), rtol=1e-4
            )
            plain = pixel_categorical_crossentropy(labels, tf.cast(tf.nn.softmax(logits), dtype))
            assert plain.dtype == tf.float32 and np.isfinite(plain.numpy())


class TestFusedGradient:
    """A confidently wrong pixel (logit gap 50) keeps the gradient p - y w.r.t. the logits."""

    logits = np.array([[[[50.0, 0.0, 0.0]]]], np.float32)  # predicts class 0
    labels = np.array([[[1]]])  # truth: class 1

    def expected(self):
        return softmax(self.logits) - np.eye(3)[self.labels]

    def test_compiled_step_keeps_gradient(self):
        z = tf.Variable(self.logits)

        @tf.function
        def gradient():
            with tf.GradientTape() as tape:
                loss = pixel_categorical_crossentropy(self.labels, pixel_softmax(z))
            return tape.gradient(loss, z)

        np.testing.assert_allclose(gradient().numpy(), self.expected(), atol=1e-6)

    def test_clipped_probabilities_keep_it_up_to_a_gap_of_87(self):
        # Without the logits (tf.identity hides them) -log p is clipped at the smallest normal
        # float32: the gradient is p - y while p_y is one (gap 50: 2e-22), and vanishes past a
        # gap of 87.3, where only the fused path keeps it.
        z = tf.Variable(self.logits)
        with tf.GradientTape() as tape:
            loss = pixel_categorical_crossentropy(self.labels, tf.identity(tf.nn.softmax(z)))
        np.testing.assert_allclose(tape.gradient(loss, z).numpy(), self.expected(), atol=1e-6)
        far = tf.Variable(self.logits * 2)  # gap 100: p_y = 4e-44, below every normal float32
        with tf.GradientTape() as tape:
            loss = pixel_categorical_crossentropy(self.labels, tf.identity(tf.nn.softmax(far)))
        assert abs(tape.gradient(loss, far).numpy()[0, 0, 0, 1]) < 1e-6

    def test_model_fit_step_through_activation_layer(self):
        # One pixel, a bias as the only weight: after one SGD step (lr 1), bias -= (p - y).
        inputs = keras.Input((1, 1, 1))
        dense = keras.layers.Dense(
            3,
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(self.logits.ravel()),
        )
        outputs = keras.layers.Activation("pixel_softmax")(dense(inputs))
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.SGD(1.0), loss="pixel_cce")
        model.train_on_batch(np.zeros((1, 1, 1, 1), np.float32), self.labels)
        step = dense.get_weights()[1] - self.logits.ravel()
        np.testing.assert_allclose(step, -self.expected().ravel(), atol=1e-5)


class TestConfig:
    def test_config_round_trip(self):
        loss = PixelCategoricalCrossentropy(
            axis=1,
            from_logits=True,
            label_smoothing=0.1,
            class_weights=np.array([0.5, 1, 2]),
            ignore_index=255,
            reduction="sum",
            name="my_cce",
        )
        config = loss.get_config()
        assert config == {
            "axis": 1,
            "from_logits": True,
            "label_smoothing": 0.1,
            "class_weights": [0.5, 1.0, 2.0],
            "ignore_index": 255,
            "focal_gamma": 0.0,
            "focal_alpha": None,
            "top_k": None,
            "ohem_threshold": None,
            "min_kept": 0,
            "reduction": "sum",
            "name": "my_cce",
            "dtype": None,
        }
        assert PixelCategoricalCrossentropy.from_config(config).get_config() == config
        restored = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(restored) is PixelCategoricalCrossentropy and restored.get_config() == config

    @pytest.mark.parametrize(
        "name", ["pixel_cce", "pixel_categorical_crossentropy", "PixelCategoricalCrossentropy"]
    )
    def test_string_names(self, name):
        loss = keras.losses.get(name)
        assert isinstance(loss, PixelCategoricalCrossentropy)
        assert loss.get_config() == PixelCategoricalCrossentropy().get_config()

    def test_default_name(self):
        assert PixelCategoricalCrossentropy().name == "pixel_categorical_crossentropy"
        assert "pixel_cce" in sm_pixel_ce.list_names("loss")


LABELS = np.zeros((2, 4, 4), np.int64)
PROBS = np.full((2, 4, 4, 3), 1 / 3, np.float32)


# Shared with the JAX backend's tests (test_jax_backend.py): the same inputs, the same texts.
BAD_INPUT_CASES = [
    ({}, np.zeros((2, 3, 4, 4), np.float32), PROBS, "look channels_first"),
    ({}, np.zeros((2, 4, 5)), PROBS, r"Received labels of shape \(2, 4, 5\)"),
    (
        {},
        np.zeros((2, 4, 4, 5), np.float32),
        PROBS,
        "class counts differ: labels have 5, predictions 3",
    ),
    ({}, np.zeros((4, 4)), PROBS, "integer mask of shape"),
    (
        {"axis": 1},
        np.zeros((2, 4, 4, 3), np.float32),
        np.full((2, 3, 4, 4), 1 / 3, np.float32),
        "look channels_last",
    ),
    ({}, np.full((2, 4, 4), 3), PROBS, r"expected values in \[0, 2\].*Received: 3, 3"),
    ({}, np.full((2, 4, 4), -1), PROBS, "out of range"),
    ({"ignore_index": 255}, np.full((2, 4, 4), 7), PROBS, "or the ignore_index 255"),
    ({}, np.full((2, 4, 4), 0.5, np.float32), PROBS, "bilinear"),
    ({}, np.full((2, 4, 4, 3), 0.5, np.float32), PROBS, "summing to 1"),
    ({"class_weights": [1.0, 2.0]}, LABELS, PROBS, "expected 3, received 2"),
    ({"axis": 4}, LABELS, PROBS, "out of range for an input of rank 4"),
    ({}, np.zeros((2, 4), np.int64), np.full((2, 4, 1), 1.0, np.float32), "at least 2 classes"),
    ({}, LABELS, np.zeros((4,), np.float32), "rank >= 2"),
    ({}, LABELS, PROBS, None),
]


@pytest.mark.parametrize("kwargs, y_true, y_pred, match", BAD_INPUT_CASES)
def test_bad_input_raises_clear_value_error(kwargs, y_true, y_pred, match):
    if match is None:  # the control row: valid input passes
        assert np.isfinite(pixel_categorical_crossentropy(y_true, y_pred, **kwargs).numpy())
        return
    with pytest.raises(ValueError, match=match):
        pixel_categorical_crossentropy(y_true, y_pred, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"class_weights": [1.0, -1.0, 1.0]}, "finite and >= 0"),
        ({"class_weights": [0.0, 0.0, 0.0]}, "all zero"),
        ({"class_weights": [[1.0, 2.0]]}, "1-D"),
        ({"label_smoothing": 1.5}, r"\[0, 1\]"),
        ({"label_smoothing": -0.1}, r"\[0, 1\]"),
        ({"ignore_index": 2.5}, "integer label value"),
        ({"axis": "last"}, "must be an integer"),
        ({"reduction": "average"}, "unknown `reduction`"),
    ],
)
def test_bad_options_raise_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PixelCategoricalCrossentropy(**kwargs)


def test_graph_mode_checks_fail_the_step():
    # Inside a compiled function the data checks raise when the step runs.
    fn = tf.function(lambda y, p: pixel_categorical_crossentropy(y, p))
    with pytest.raises(tf.errors.InvalidArgumentError, match="out of range"):
        fn(tf.constant(np.full((2, 4, 4), 5)), tf.constant(PROBS))


def test_dynamic_shapes_mismatch_is_caught_in_graph():
    fn = tf.function(
        lambda y, p: pixel_categorical_crossentropy(y, p),
        input_signature=[
            tf.TensorSpec([None, None, None], tf.int64),
            tf.TensorSpec([None, None, None, 3]),
        ],
    )
    np.testing.assert_allclose(fn(LABELS, PROBS).numpy(), np.log(3), rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="differ in shape"):
        fn(np.zeros((2, 4, 5), np.int64), PROBS)


def test_unlabelled_pixel_does_not_hide_a_half_labelled_one():
    # One all-zero (unlabelled) row and one row summing to 0.5: the second must still be caught.
    y = np.zeros((1, 1, 2, 3), np.float32)
    y[0, 0, 1, 0] = 0.5
    p = np.full((1, 1, 2, 3), 1 / 3, np.float32)
    with pytest.raises(ValueError, match="summing to 1"):
        pixel_categorical_crossentropy(y, p)
    with pytest.raises(tf.errors.InvalidArgumentError, match="summing to 1"):
        tf.function(pixel_categorical_crossentropy)(tf.constant(y), tf.constant(p))
