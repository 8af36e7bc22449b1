"""pixel_dice, pixel_jaccard, pixel_tversky and pixel_lovasz against NumPy ports of
segmentation_models_pytorch 0.6 (tests/reference.py): values, gradients (finite differences of the
float64 references), every option, the label forms, the fused path, mixed precision and XLA."""

import numpy as np
import pytest
import tensorflow as tf
from reference import (
    numeric_gradient,
    smp_dice,
    smp_jaccard,
    smp_lovasz_softmax,
    smp_tversky,
    softmax,
)

import sm_pixel_ce
from sm_pixel_ce import (
    PixelDiceLoss,
    PixelJaccardLoss,
    PixelLovaszLoss,
    PixelTverskyLoss,
    pixel_dice_loss,
    pixel_jaccard_loss,
    pixel_lovasz_loss,
    pixel_softmax,
    pixel_tversky_loss,
)
from sm_pixel_ce.flavor import keras

N, H, W, C = 2, 3, 4, 4
TVERSKY = {"alpha": 0.3, "beta": 0.7, "gamma": 0.75}

# name -> (class, function, reference(probabilities, labels, **options), fixed options)
LOSSES = {
    "dice": (PixelDiceLoss, pixel_dice_loss, smp_dice, {}),
    "jaccard": (PixelJaccardLoss, pixel_jaccard_loss, smp_jaccard, {}),
    "tversky": (PixelTverskyLoss, pixel_tversky_loss, smp_tversky, TVERSKY),
}
REGION = list(LOSSES)


def lovasz_reference(probabilities, labels, classes="present", per_image=False, ignore_index=None):
    return smp_lovasz_softmax(probabilities, labels, classes, per_image, ignore_index)


LOSSES["lovasz"] = (PixelLovaszLoss, pixel_lovasz_loss, lovasz_reference, {})


@pytest.fixture
def data(rng):
    logits = rng.normal(0, 2, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W))
    labels[0, 0, :3] = 255  # void, for the cases with ignore_index
    return logits, labels


def without_void(labels):
    return np.where(labels == 255, 1, labels)


def value_and_gradient(fn, logits):
    z = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = fn(z)
    return value.numpy(), tape.gradient(value, z).numpy()


def check_against_reference(name, labels, logits, options, **kwargs):
    """Value from logits, on pixel_softmax output and on plain probabilities; gradient w.r.t. the
    logits; all against the float64 reference."""
    cls, fn, reference, fixed = LOSSES[name]
    options = {**fixed, **options}
    expected = reference(softmax(logits), labels, **options)
    loss = cls(**options, **kwargs)
    from_logits = cls(**options, from_logits=True, **kwargs)
    value, grad = value_and_gradient(lambda z: loss(labels, pixel_softmax(z)), logits)
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(from_logits(labels, logits).numpy(), value, rtol=1e-6, atol=1e-7)
    plain = fn(labels, tf.constant(softmax(logits).astype(np.float32)), **options, **kwargs)
    np.testing.assert_allclose(plain.numpy(), expected, rtol=1e-5, atol=1e-7)
    numeric = numeric_gradient(lambda z: reference(softmax(z), labels, **options), logits)
    np.testing.assert_allclose(grad, numeric, atol=1e-5)
    return value


OVERLAP_OPTIONS = [
    ("plain", {}),
    ("ignore_index", {"ignore_index": 255}),
    ("class_weights", {"class_weights": [0.5, 1.0, 2.0, 0.0]}),
    ("classes", {"classes": [1, 2, 3]}),
    ("classes_and_weights", {"classes": [0, 2], "class_weights": [3.0, 1.0, 0.5, 2.0]}),
    ("per_image", {"per_image": True, "ignore_index": 255}),
    ("log_loss", {"log_loss": True}),
    ("smooth_eps", {"smooth": 1.0, "eps": 0.5}),
    (
        "absent_skip",
        {"absent_classes": "skip", "classes": [0, 1, 3], "class_weights": [1, 2, 3, 4]},
    ),
    (
        "everything",
        {
            "ignore_index": 255,
            "class_weights": [1, 2, 3, 4],
            "log_loss": True,
            "smooth": 0.5,
            "per_image": True,
        },
    ),
]


@pytest.mark.parametrize("name", REGION)
@pytest.mark.parametrize(
    "options", [o for _, o in OVERLAP_OPTIONS], ids=[i for i, _ in OVERLAP_OPTIONS]
)
def test_overlap_losses_equal_smp(data, name, options):
    logits, labels = data
    labels = labels if "ignore_index" in options else without_void(labels)
    check_against_reference(name, labels, logits, options)


LOVASZ_OPTIONS = [
    ("plain", {}),
    ("ignore_index", {"ignore_index": 255}),
    ("per_image", {"per_image": True, "ignore_index": 255}),
    ("all", {"classes": "all", "ignore_index": 255}),
    ("list", {"classes": [0, 3], "ignore_index": 255}),
]


@pytest.mark.parametrize(
    "options", [o for _, o in LOVASZ_OPTIONS], ids=[i for i, _ in LOVASZ_OPTIONS]
)
def test_lovasz_equals_smp_lovasz_softmax(data, options):
    logits, labels = data
    labels = labels if "ignore_index" in options else without_void(labels)
    check_against_reference("lovasz", labels, logits, options)


@pytest.mark.parametrize("name", list(LOSSES))
def test_absent_classes_follow_smp(data, name):
    # Class 3 in no mask, class 2 only in the second image: SMP's rule (0 for an absent class,
    # still in the mean; Lovász "present" leaves it out) per batch and per image.
    logits, labels = data
    labels = np.minimum(without_void(labels), 2)
    labels[0][labels[0] == 2] = 1
    for per_image in (False, True):
        check_against_reference(name, labels, logits, {"per_image": per_image})
        if name != "lovasz":  # the option that leaves them out of the mean
            options = {"per_image": per_image, "absent_classes": "skip"}
            check_against_reference(name, labels, logits, options)


# (loss, options, probabilities, labels, expected), hand-checked:
#   ideal: p = y, every loss 0;
#   swapped: every pixel's probability on the other class: each class TP = 0, so Dice = IoU = 0
#     and the Lovász errors are all 1: every loss 1;
#   uniform: p = 1/2 on 2 pixels of class 0 (class 1 absent): TP = 1, FP = 0, FN = 1;
#     Dice 1 - 1/(1 + 1/2) = 1/3, IoU 1 - 1/2, Tversky(0.3, 0.7) 1 - 1/1.7; the absent class
#     counts 0 in the mean of two, unless classes=[0]; Lovász: errors 1/2, J = 1 after both: 1/2.
IDEAL = np.eye(2, dtype=np.float32)[[[0, 1], [1, 0]]][None]  # (1, 2, 2, 2)
SWAPPED = IDEAL[..., ::-1].copy()
IDEAL_LABELS = np.array([[[0, 1], [1, 0]]])
UNIFORM = np.full((1, 1, 2, 2), 0.5, np.float32)
ZEROS = np.zeros((1, 1, 2), np.int64)
HAND_CHECKED = [
    ("dice", {}, IDEAL, IDEAL_LABELS, 0.0),
    ("jaccard", {}, IDEAL, IDEAL_LABELS, 0.0),
    ("tversky", TVERSKY, IDEAL, IDEAL_LABELS, 0.0),
    ("lovasz", {}, IDEAL, IDEAL_LABELS, 0.0),
    ("dice", {}, SWAPPED, IDEAL_LABELS, 1.0),
    ("jaccard", {"log_loss": True}, SWAPPED, IDEAL_LABELS, -np.log(1e-7)),
    ("tversky", TVERSKY, SWAPPED, IDEAL_LABELS, 1.0),
    ("lovasz", {}, SWAPPED, IDEAL_LABELS, 1.0),
    ("dice", {}, UNIFORM, ZEROS, 1 / 6),
    ("dice", {"classes": [0]}, UNIFORM, ZEROS, 1 / 3),
    ("dice", {"absent_classes": "skip"}, UNIFORM, ZEROS, 1 / 3),
    ("jaccard", {"absent_classes": "skip"}, UNIFORM, ZEROS, 1 / 2),
    ("jaccard", {}, UNIFORM, ZEROS, 1 / 4),
    ("tversky", {"alpha": 0.3, "beta": 0.7}, UNIFORM, ZEROS, (1 - 1 / 1.7) / 2),
    ("lovasz", {}, UNIFORM, ZEROS, 0.5),
    ("lovasz", {"classes": "all"}, UNIFORM, ZEROS, 0.5),  # class 1: errors 1/2, G = 0: J = 1
]


@pytest.mark.parametrize("name, options, probabilities, labels, expected", HAND_CHECKED)
def test_hand_checked_values(name, options, probabilities, labels, expected):
    cls = LOSSES[name][0]
    got = cls(**options)(labels, tf.constant(probabilities)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(LOSSES))
class TestLabelForms:
    def test_mask_dtypes_and_size_one_axis_equal(self, data, name):
        logits, labels = data
        loss = LOSSES[name][0](ignore_index=255)
        probs = pixel_softmax(logits)
        expected = loss(labels, probs).numpy()
        for dtype in ("uint8", "int64", "float32"):
            np.testing.assert_allclose(loss(labels.astype(dtype), probs).numpy(), expected, 1e-6)
        np.testing.assert_allclose(loss(labels[..., None], probs).numpy(), expected, rtol=1e-6)

    def test_dense_one_hot_equals_mask_and_zero_rows_are_ignored(self, data, name):
        logits, labels = data
        dense = np.eye(C, dtype=np.float32)[np.where(labels == 255, 0, labels)]
        dense[labels == 255] = 0.0
        cls = LOSSES[name][0]
        probs = pixel_softmax(logits)
        np.testing.assert_allclose(
            cls()(dense, probs).numpy(), cls(ignore_index=255)(labels, probs).numpy(), rtol=1e-6
        )

    def test_soft_labels(self, rng, data, name):
        logits, _ = data
        soft = softmax(rng.normal(0, 2, (N, H, W, C))).astype(np.float32)
        check_against_reference(name, soft, logits, {})

    def test_channels_first(self, data, name):
        logits, labels = data
        cls = LOSSES[name][0]
        last = cls(ignore_index=255)(labels, pixel_softmax(logits)).numpy()
        first_logits = np.moveaxis(logits, -1, 1)
        first = cls(axis=1, ignore_index=255)(labels, pixel_softmax(first_logits, axis=1))
        np.testing.assert_allclose(first.numpy(), last, rtol=1e-6)
        dense = np.moveaxis(np.eye(C, dtype=np.float32)[without_void(labels)], -1, 1)
        np.testing.assert_allclose(
            cls(axis=1)(dense, softmax(first_logits, 1).astype(np.float32)).numpy(),
            cls()(without_void(labels), softmax(logits).astype(np.float32)).numpy(),
            rtol=1e-5,
        )


@pytest.mark.parametrize("name", list(LOSSES))
def test_xla_and_graph_equal_eager(data, name):
    logits, labels = data
    cls = LOSSES[name][0]
    per_image = name != "tversky"  # and Tversky per batch
    loss = cls(ignore_index=255, per_image=per_image)
    eager = value_and_gradient(lambda z: loss(labels, pixel_softmax(z)), logits)

    def step(y, z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = loss(y, pixel_softmax(z))
        return value, tape.gradient(value, z)

    dynamic = [tf.TensorSpec([None, None, None], tf.int64), tf.TensorSpec([None, None, None, C])]
    for compiled in (
        tf.function(step, jit_compile=True),
        tf.function(step),
        tf.function(step, input_signature=dynamic),  # unknown batch: the row count is dynamic
    ):
        value, grad = compiled(tf.constant(labels), tf.constant(logits))
        np.testing.assert_allclose(value.numpy(), eager[0], rtol=1e-6)
        np.testing.assert_allclose(grad.numpy(), eager[1], atol=1e-7)


@pytest.mark.parametrize("name", list(LOSSES))
def test_half_precision_gives_float32(data, name):
    logits, labels = data
    cls, _, reference, fixed = LOSSES[name]
    loss = cls(ignore_index=255, **fixed)
    half = tf.cast(logits, tf.float16)
    expected = reference(
        softmax(half.numpy().astype(np.float64)), labels, ignore_index=255, **fixed
    )
    fused = loss(labels, pixel_softmax(half))
    assert fused.dtype == tf.float32
    np.testing.assert_allclose(fused.numpy(), expected, rtol=1e-5)
    from_logits = cls(ignore_index=255, from_logits=True, **fixed)(labels, half)
    np.testing.assert_allclose(from_logits.numpy(), expected, rtol=1e-5)
    for probabilities in (keras.activations.softmax(half), tf.nn.softmax(half)):
        value = loss(labels, probabilities)
        assert value.dtype == tf.float32
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-2)


@pytest.mark.parametrize("name", list(LOSSES))
def test_float64_predictions_give_the_float32_loss(data, name):
    logits, labels = data
    loss = LOSSES[name][0](ignore_index=255)
    value = loss(labels, tf.constant(softmax(logits)))  # float64 probabilities
    assert value.dtype == tf.float32
    expected = loss(labels, tf.constant(softmax(logits).astype(np.float32)))
    np.testing.assert_allclose(value.numpy(), expected.numpy(), rtol=1e-6)


def test_lovasz_float32_accuracy_at_a_larger_size(rng):
    # Many pixels per sort: the value is Σ (e_k - e_k+1)·J_k, accurate in float32.
    logits = rng.normal(0, 2, (2, 48, 48, 5)).astype(np.float32)
    labels = rng.integers(0, 5, (2, 48, 48))
    got = pixel_lovasz_loss(labels, logits, from_logits=True).numpy()
    np.testing.assert_allclose(got, smp_lovasz_softmax(softmax(logits), labels), rtol=1e-5)


def test_sample_weight_weights_pixels_in_the_sums(data):
    logits, labels = data
    labels = without_void(labels)
    keep = np.ones(labels.shape, np.float32)
    keep[1, :2] = 0.0
    dropped = np.where(keep > 0, labels, 255)
    probs = pixel_softmax(logits)
    for cls in (PixelDiceLoss, PixelJaccardLoss, PixelTverskyLoss):
        np.testing.assert_allclose(
            cls()(labels, probs, sample_weight=keep).numpy(),
            cls(ignore_index=255)(dropped, probs).numpy(),
            rtol=1e-6,
        )
    with pytest.raises(ValueError, match="no pixel weights.*sample_weight=None"):
        PixelLovaszLoss()(labels, probs, sample_weight=keep)


def test_focal_tversky_keeps_a_finite_gradient_at_a_perfect_prediction():
    labels = IDEAL_LABELS
    logits = tf.constant(IDEAL * 60.0)  # softmax rounds to exactly one-hot
    value, grad = value_and_gradient(
        lambda z: PixelTverskyLoss(gamma=0.5, from_logits=True)(labels, z), logits.numpy()
    )
    assert value == pytest.approx(0.0, abs=1e-15) and np.all(np.isfinite(grad))


def test_from_logits_on_a_softmax_output_warns_and_uses_the_logits(data):
    logits, labels = data
    with pytest.warns(UserWarning, match="from_logits=True, but the predictions come from"):
        got = PixelDiceLoss(from_logits=True)(without_void(labels), pixel_softmax(logits))
    expected = PixelDiceLoss()(without_void(labels), pixel_softmax(logits))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-7)


class TestConfig:
    @pytest.mark.parametrize(
        "loss",
        [
            PixelDiceLoss(
                axis=1,
                from_logits=True,
                classes=[1, 2],
                class_weights=[1, 2, 3],
                ignore_index=255,
                smooth=1.0,
                eps=1e-5,
                log_loss=True,
                per_image=True,
                name="my_dice",
            ),
            PixelJaccardLoss(classes=(0,), smooth=0.5),
            PixelTverskyLoss(alpha=0.2, beta=0.8, gamma=1.5, ignore_index=0),
            PixelLovaszLoss(per_image=True, classes=[0, 2], ignore_index=255, axis=1),
            PixelLovaszLoss(classes="all"),
        ],
        ids=["dice", "jaccard", "tversky", "lovasz", "lovasz_all"],
    )
    def test_round_trip(self, loss):
        config = loss.get_config()
        cls = type(loss)
        assert cls.from_config(config).get_config() == config
        restored = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(restored) is cls and restored.get_config() == config

    def test_config_is_the_constructor_arguments(self):
        assert PixelDiceLoss(classes=(1, 2), class_weights=np.ones(3)).get_config() == {
            "axis": -1,
            "from_logits": False,
            "classes": [1, 2],
            "class_weights": [1.0, 1.0, 1.0],
            "ignore_index": None,
            "smooth": 0.0,
            "eps": 1e-7,
            "log_loss": False,
            "per_image": False,
            "absent_classes": "zero",
            "reduction": "sum_over_batch_size",
            "name": "pixel_dice_loss",
            "dtype": None,
        }
        assert PixelTverskyLoss().get_config()["alpha"] == 0.5
        assert PixelLovaszLoss().get_config() == {
            "per_image": False,
            "axis": -1,
            "from_logits": False,
            "classes": "present",
            "ignore_index": None,
            "reduction": "sum_over_batch_size",
            "name": "pixel_lovasz_loss",
            "dtype": None,
        }

    @pytest.mark.parametrize(
        "names, cls",
        [
            (("pixel_dice", "pixel_dice_loss", "PixelDiceLoss"), PixelDiceLoss),
            (("pixel_jaccard", "pixel_jaccard_loss", "PixelJaccardLoss"), PixelJaccardLoss),
            (("pixel_tversky", "pixel_tversky_loss", "PixelTverskyLoss"), PixelTverskyLoss),
            (("pixel_lovasz", "pixel_lovasz_loss", "PixelLovaszLoss"), PixelLovaszLoss),
        ],
    )
    def test_string_names(self, names, cls):
        for name in names:
            loss = keras.losses.get(name)
            assert isinstance(loss, cls) and loss.get_config() == cls().get_config()
            assert name in sm_pixel_ce.list_names("loss")

    def test_model_compile_by_name_trains(self, rng):
        inputs = keras.Input((4, 4, 3))
        outputs = keras.layers.Conv2D(C, 1, activation="pixel_softmax")(inputs)
        x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
        y = rng.integers(0, C, (2, 4, 4)).astype(np.uint8)
        for name in ("pixel_dice", "pixel_jaccard", "pixel_tversky", "pixel_lovasz"):
            model = keras.Model(inputs, outputs)
            model.compile(keras.optimizers.SGD(0.1), loss=name)
            before = float(np.ravel(model.evaluate(x, y, verbose=0))[0])
            expected = LOSSES[name.split("_")[1]][2](
                model.predict(x, verbose=0).astype(np.float64), y
            )
            np.testing.assert_allclose(before, expected, rtol=1e-5)
            assert np.isfinite(float(np.ravel(model.train_on_batch(x, y))[0]))


BAD_OPTIONS = [
    (PixelDiceLoss, {"smooth": -1.0}, "`smooth` must be a finite number >= 0"),
    (PixelDiceLoss, {"eps": 0.0}, "`eps` must be a finite number > 0"),
    (PixelDiceLoss, {"log_loss": "yes"}, "`log_loss` must be True or False"),
    (PixelDiceLoss, {"classes": [1, 1]}, "distinct class indices"),
    (PixelDiceLoss, {"classes": "present"}, "distinct class indices"),
    (PixelJaccardLoss, {"class_weights": [-1.0, 1.0]}, "finite and >= 0"),
    (PixelJaccardLoss, {"per_image": 1}, "`per_image` must be True or False"),
    (PixelTverskyLoss, {"alpha": -0.1}, "`alpha` must be a finite number >= 0"),
    (PixelTverskyLoss, {"gamma": 0.0}, "`gamma` must be a finite number > 0"),
    (PixelTverskyLoss, {"absent_classes": "drop"}, r"one of \['zero', 'skip'\]"),
    (PixelLovaszLoss, {"classes": "some"}, r"or one of \['present', 'all'\]"),
    (PixelLovaszLoss, {"ignore_index": 2.5}, "integer label value"),
]


@pytest.mark.parametrize("cls, kwargs, match", BAD_OPTIONS)
def test_bad_options_raise_at_construction(cls, kwargs, match):
    with pytest.raises(ValueError, match=match + ".*Received"):
        cls(**kwargs)


LABELS = np.zeros((2, 4, 4), np.int64)
PROBS = np.full((2, 4, 4, 3), 1 / 3, np.float32)


@pytest.mark.parametrize(
    "fn", [pixel_dice_loss, pixel_jaccard_loss, pixel_tversky_loss, pixel_lovasz_loss]
)
@pytest.mark.parametrize(
    "kwargs, y_true, match",
    [
        ({"classes": [3]}, LABELS, r"expected indices in \[0, 2\] for 3 predicted classes"),
        ({"ignore_index": 255}, np.full((2, 4, 4), 7), "or the ignore_index 255"),
        ({}, np.full((2, 4, 4), 0.5, np.float32), "bilinear"),
        ({}, np.full((2, 4, 4, 3), 0.5, np.float32), "summing to 1"),
        ({}, np.zeros((2, 3, 4, 4), np.float32), "look channels_first"),
    ],
)
def test_bad_input_raises_the_clear_value_errors(fn, kwargs, y_true, match):
    with pytest.raises(ValueError, match=match):
        fn(y_true, PROBS, **kwargs)


def test_class_weight_errors():
    with pytest.raises(ValueError, match="expected 3, received 2"):
        pixel_dice_loss(LABELS, PROBS, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="of the chosen `classes` are all zero"):
        pixel_dice_loss(LABELS, PROBS, class_weights=[1.0, 0.0, 0.0], classes=[1, 2])


def test_graph_mode_checks_fail_the_step():
    for fn in (pixel_dice_loss, pixel_lovasz_loss):
        with pytest.raises(tf.errors.InvalidArgumentError, match="out of range"):
            tf.function(fn)(tf.constant(np.full((2, 4, 4), 5)), tf.constant(PROBS))
