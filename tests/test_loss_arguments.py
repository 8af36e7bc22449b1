"""Keras's loss arguments on every pixel loss: ``reduction``, ``name`` and ``dtype``.

Every reduction of every region loss against the float64 NumPy references of tests/reference.py
(each image's loss from ``smp_tversky`` / ``smp_lovasz_softmax`` on that image alone, reduced by
``region_reduction``), the dtype of the value, ``get_config``/``from_config`` and saved models, and
the errors for bad values. Runs in Keras 3 and tf_keras; tests/test_jax_loss_arguments.py runs the
reductions under ``KERAS_BACKEND=jax``.
"""

import numpy as np
import pytest
import reference
from reference import pixel_cce, softmax

import sm_pixel_ce
from sm_pixel_ce import (
    PixelBinaryCrossentropy,
    PixelCategoricalCrossentropy,
    PixelCategoricalCrossentropyDice,
    PixelCategoricalFocalCrossentropy,
    PixelDiceLoss,
    PixelJaccardLoss,
    PixelLossSum,
    PixelLovaszLoss,
    PixelTverskyLoss,
    pixel_dice_loss,
    pixel_lovasz_loss,
    pixel_softmax,
    pixel_tversky_loss,
)
from sm_pixel_ce.flavor import IS_KERAS_3, IS_TENSORFLOW, keras

pytestmark = pytest.mark.skipif(not IS_TENSORFLOW, reason="the JAX run: test_jax_loss_arguments")

N, H, W, C = 3, 4, 8, 4
REDUCTIONS = ["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none"]
#: Integer sample weights: a batch's sums weighted so are those of its images repeated.
SAMPLE_WEIGHTS = np.array([1.0, 2.0, 3.0], np.float32)

#: name -> (class, plain function, its options, (α, β, γ) or None for Lovász).
REGION_LOSSES = {
    "dice": (PixelDiceLoss, pixel_dice_loss, {}, (0.5, 0.5, 1.0)),
    "jaccard": (PixelJaccardLoss, None, {"classes": [1, 2, 3]}, (1.0, 1.0, 1.0)),
    "tversky": (
        PixelTverskyLoss,
        pixel_tversky_loss,
        {"alpha": 0.3, "beta": 0.7, "gamma": 0.75, "log_loss": True},
        (0.3, 0.7, 0.75),
    ),
    "lovasz": (PixelLovaszLoss, pixel_lovasz_loss, {}, None),
}
EVERY_CLASS = [
    PixelCategoricalCrossentropy,
    PixelBinaryCrossentropy,
    PixelCategoricalFocalCrossentropy,
    PixelDiceLoss,
    PixelJaccardLoss,
    PixelTverskyLoss,
    PixelLovaszLoss,
    PixelCategoricalCrossentropyDice,
]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 2, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W)).astype(np.uint8)
    labels[0, :2] = 255  # half of image 0 void
    labels[1][labels[1] == 3] = 2  # class 3 absent from image 1
    return labels, logits


def region_reference(name, labels, probabilities, reduction, per_image, weights=None):
    """The NumPy value of region loss ``name`` with ``ignore_index=255``."""
    _, _, options, tversky = REGION_LOSSES[name]
    options = {k: v for k, v in options.items() if k not in ("alpha", "beta", "gamma")}
    return reference.region_reference(
        tversky, probabilities, labels, reduction, per_image, weights, ignore_index=255, **options
    )


def _cases():
    for name in REGION_LOSSES:
        for per_image in (False, True):
            for reduction in REDUCTIONS:
                weighted = [False] if name == "lovasz" else [False, True]
                for weights in weighted:
                    yield pytest.param(
                        name,
                        per_image,
                        reduction,
                        weights,
                        id=f"{name}-{'per_image' if per_image else 'batch'}-{reduction}"
                        + ("-weighted" if weights else ""),
                    )


class TestRegionReductions:
    @pytest.mark.parametrize("name, per_image, reduction, weighted", list(_cases()))
    def test_against_numpy(self, data, name, per_image, reduction, weighted):
        labels, logits = data
        cls, _, options, _ = REGION_LOSSES[name]
        sw = SAMPLE_WEIGHTS if weighted else None
        loss = cls(ignore_index=255, per_image=per_image, reduction=reduction, **options)
        value = np.asarray(loss(labels, pixel_softmax(logits), sample_weight=sw))
        expected = region_reference(name, labels, softmax(logits), reduction, per_image, sw)
        assert value.dtype == np.float32
        assert value.shape == ((N,) if reduction == "none" else ())
        np.testing.assert_allclose(value, expected, rtol=2e-5, atol=1e-6)

    @pytest.mark.parametrize("name", ["dice", "tversky", "lovasz"])
    @pytest.mark.parametrize("reduction", ["sum", "none"])
    def test_plain_function_takes_the_reduction(self, data, name, reduction):
        labels, logits = data
        _, function, options, _ = REGION_LOSSES[name]
        value = function(
            labels, pixel_softmax(logits), ignore_index=255, reduction=reduction, **options
        )
        expected = region_reference(name, labels, softmax(logits), reduction, False)
        np.testing.assert_allclose(np.asarray(value), expected, rtol=2e-5, atol=1e-6)

    def test_default_is_unchanged_and_sum_is_it_times_the_images(self, data):
        labels, logits = data
        p = pixel_softmax(logits)
        for per_image in (False, True):
            default = float(PixelDiceLoss(ignore_index=255, per_image=per_image)(labels, p))
            assert default == float(
                PixelDiceLoss(ignore_index=255, per_image=per_image, reduction="mean")(labels, p)
            )
            total = PixelDiceLoss(ignore_index=255, per_image=per_image, reduction="sum")
            np.testing.assert_allclose(float(total(labels, p)), N * default, rtol=1e-6)

    def test_none_lists_each_images_loss_whatever_per_image(self, data):
        labels, logits = data
        p = pixel_softmax(logits)
        batch = np.asarray(PixelDiceLoss(ignore_index=255, reduction="none")(labels, p))
        images = np.asarray(
            PixelDiceLoss(ignore_index=255, per_image=True, reduction="none")(labels, p)
        )
        np.testing.assert_array_equal(batch, images)
        single = [
            float(PixelDiceLoss(ignore_index=255)(labels[n : n + 1], p[n : n + 1]))
            for n in range(N)
        ]
        np.testing.assert_allclose(batch, single, rtol=1e-6)

    def test_a_sum_refuses_none_terms_and_other_reductions(self):
        with pytest.raises(ValueError, match="reduction other than 'none'"):
            PixelCategoricalCrossentropy() + PixelDiceLoss(reduction="none")
        with pytest.raises(ValueError, match="give `reduction` to the terms"):
            PixelLossSum([PixelDiceLoss()], reduction="sum")
        with pytest.raises(ValueError, match="give `reduction` to the terms"):
            PixelCategoricalCrossentropyDice(reduction="none")

    def test_a_sum_of_summed_terms(self, data):
        labels, logits = data
        dice = PixelDiceLoss(ignore_index=255, reduction="sum")
        total = PixelCategoricalCrossentropy(ignore_index=255) + 0.5 * dice
        value = float(total(labels, pixel_softmax(logits)))
        expected = pixel_cce(labels, logits, ignore_index=255) + 0.5 * region_reference(
            "dice", labels, softmax(logits), "sum", False
        )
        np.testing.assert_allclose(value, expected, rtol=1e-5)


class TestName:
    @pytest.mark.parametrize("cls", EVERY_CLASS)
    def test_name_and_default(self, cls):
        default = cls()
        assert default.name == default.get_config()["name"] and default.name
        named = cls(name="my_loss")
        assert named.name == "my_loss" and named.get_config()["name"] == "my_loss"
        assert cls(name=None).name == default.name

    @pytest.mark.parametrize("value", ["", 3])
    def test_bad_name(self, value):
        with pytest.raises(ValueError, match=r"PixelDiceLoss: `name` must be a non-empty string"):
            PixelDiceLoss(name=value)


class TestDtype:
    @pytest.mark.parametrize(
        "name", ["dice", "jaccard", "tversky", "lovasz"], ids=lambda n: f"region-{n}"
    )
    def test_float16_predictions_give_a_float32_loss_equal_to_the_reference(self, data, name):
        labels, logits = data
        cls, _, options, _ = REGION_LOSSES[name]
        half = softmax(logits).astype(np.float16)
        value = cls(ignore_index=255, dtype="float32", **options)(labels, half)
        assert value.dtype == "float32"
        expected = region_reference(name, labels, half.astype(np.float64), "mean", False)
        np.testing.assert_allclose(float(value), expected, rtol=2e-5)

    def test_float16_predictions_cross_entropy(self, data):
        labels, logits = data
        half = softmax(logits).astype(np.float16)
        loss = PixelCategoricalCrossentropy(ignore_index=255, dtype="float32")
        value = loss(labels, half)
        assert value.dtype == "float32" and loss.dtype == "float32"
        # log of the half-precision probabilities as logits: their softmax is them, renormalised.
        expected = pixel_cce(labels, np.log(half.astype(np.float64)), ignore_index=255)
        np.testing.assert_allclose(float(value), expected, rtol=1e-5)

    @pytest.mark.parametrize(
        "dtype, expected",
        [
            ("float64", "float64"),
            ("float16", "float16"),
            ("bfloat16", "bfloat16"),
            (np.float64, "float64"),
            ("mixed_float16", "float16"),
            (None, "float32"),
        ],
    )
    @pytest.mark.parametrize("cls", EVERY_CLASS)
    def test_value_dtype(self, data, cls, dtype, expected):
        labels, logits = data
        kwargs = {} if cls is PixelCategoricalCrossentropyDice else {"ignore_index": 255}
        if cls is PixelCategoricalCrossentropyDice:
            labels = np.where(labels == 255, 0, labels)
        loss = cls(dtype=dtype, **kwargs)
        predictions = (
            keras.activations.sigmoid(logits)
            if cls is PixelBinaryCrossentropy
            else (pixel_softmax(logits))
        )
        value = loss(labels, predictions)
        assert value.dtype == expected and loss.dtype == expected
        assert loss.get_config()["dtype"] == (None if dtype is None else expected)
        reference = cls(**kwargs)(labels, predictions)
        np.testing.assert_allclose(
            float(value),
            float(reference),
            rtol={"float16": 1e-3, "bfloat16": 1e-2}.get(expected, 1e-6),
        )

    def test_keras_dtype_policy(self):
        policy = (
            keras.DTypePolicy("mixed_bfloat16")
            if IS_KERAS_3
            else keras.mixed_precision.Policy("mixed_bfloat16")
        )
        loss = PixelDiceLoss(dtype=policy)
        assert loss.dtype == "bfloat16" and loss.get_config()["dtype"] == "bfloat16"

    @pytest.mark.parametrize("value", ["int32", "float33", 3])
    def test_bad_dtype(self, value):
        with pytest.raises(ValueError, match=r"PixelLovaszLoss: `dtype` must be a float dtype"):
            PixelLovaszLoss(dtype=value)


class TestReductionValues:
    @pytest.mark.parametrize("cls", EVERY_CLASS[:-1])
    def test_bad_reduction_names_the_accepted_values(self, cls):
        with pytest.raises(
            ValueError,
            match=r"unknown `reduction`.*'sum_over_batch_size'.*"
            r"'mean_with_sample_weight'.*'sum'.*'none'.*Received: reduction='avg'",
        ):
            cls(reduction="avg")

    @pytest.mark.parametrize("function", [pixel_dice_loss, pixel_lovasz_loss])
    def test_bad_reduction_of_a_function(self, data, function):
        labels, logits = data
        with pytest.raises(ValueError, match=r"pixel_\w+_loss: unknown `reduction`"):
            function(labels, pixel_softmax(logits), ignore_index=255, reduction="avg")


class TestConfig:
    @pytest.mark.parametrize("cls", EVERY_CLASS)
    def test_round_trip(self, cls):
        if cls is PixelCategoricalCrossentropyDice:
            loss = cls(name="d", dtype="float64")
        else:
            loss = cls(reduction="sum", name="d", dtype="float64")
        config = loss.get_config()
        assert config["name"] == "d" and config["dtype"] == "float64"
        assert list(config)[-3:] == ["reduction", "name", "dtype"]
        restored = cls.from_config(config)
        assert type(restored) is cls and restored.get_config() == config
        assert restored.dtype == "float64" and restored.name == "d"
        revived = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(revived) is cls and revived.get_config() == config

    def test_a_sum_keeps_its_arguments_and_its_terms(self):
        total = PixelCategoricalCrossentropy(reduction="sum") + PixelDiceLoss(dtype="float16")
        total = PixelLossSum(
            [t for _, t in total.terms()], reduction="mean", name="both", dtype="float32"
        )
        config = total.get_config()
        restored = PixelLossSum.from_config(config)
        assert restored.get_config() == config and restored.name == "both"
        (_, cce), (_, dice) = restored.terms()
        assert cce.pixel_reduction == "sum" and dice.dtype == "float16"

    @pytest.mark.parametrize("cls", [PixelDiceLoss, PixelLovaszLoss, PixelCategoricalCrossentropy])
    def test_configs_of_earlier_versions_load(self, cls):
        # Saved before reduction (region losses) and dtype were arguments: the defaults.
        old = {k: v for k, v in cls().get_config().items() if k not in ("reduction", "dtype")}
        loss = cls.from_config(old)
        assert loss.pixel_reduction == "sum_over_batch_size" and loss.get_config()["dtype"] is None

    def test_signature_ends_in_kerass_arguments(self):
        import inspect

        for cls in EVERY_CLASS + [PixelLossSum]:
            names = list(inspect.signature(cls).parameters)
            assert names[-3:] == ["reduction", "name", "dtype"], cls


def test_model_compiles_saves_and_reloads_with_reduction_and_name(tmp_path, data):
    labels, _ = data
    x = np.random.default_rng(1).normal(size=(N, H, W, 3)).astype(np.float32)
    inputs = keras.Input((H, W, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(C, 1, activation="pixel_softmax")(inputs))
    loss = PixelDiceLoss(reduction="sum", name="d", ignore_index=255)
    model.compile("sgd", loss=loss)
    logged = float(np.ravel(model.evaluate(x, labels, batch_size=N, verbose=0))[0])
    p = model.predict(x, verbose=0)
    expected = region_reference("dice", labels, p, "sum", False)
    np.testing.assert_allclose(logged, expected, rtol=1e-5)
    for file in ["model.keras", "model.h5"]:
        model.save(tmp_path / file)
        reloaded = sm_pixel_ce.load_model(tmp_path / file)
        restored = getattr(reloaded.loss, "fn", reloaded.loss)
        if not isinstance(restored, keras.losses.Loss):  # tf_keras's container of its losses
            restored = reloaded.compiled_loss._losses[0]
        assert type(restored) is PixelDiceLoss, file
        assert restored.get_config() == loss.get_config(), file
        again = float(np.ravel(reloaded.evaluate(x, labels, batch_size=N, verbose=0))[0])
        np.testing.assert_allclose(again, expected, rtol=1e-5, err_msg=file)
