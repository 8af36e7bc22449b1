"""Loss arithmetic: a + b, w * a, a * w of every pixel loss give a PixelLossSum that keeps each
term's options, computes the same as the terms added one by one (also when cross-entropy and Dice
share one softmax), logs each term with term_metrics(), and saves and reloads in a fresh process
(.keras, .h5 and, in tf_keras, SavedModel); "pixel_cce_dice" is pixel_cce + pixel_dice by name."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from conftest import checkout_env
from reference import boundary_loss, pixel_cce, smp_dice, softmax

import sm_pixel_ce
from sm_pixel_ce import (
    PixelBinaryCrossentropy,
    PixelBoundaryLoss,
    PixelCategoricalCrossentropy,
    PixelCategoricalCrossentropyDice,
    PixelCategoricalFocalCrossentropy,
    PixelDiceLoss,
    PixelJaccardLoss,
    PixelLossSum,
    PixelLossTerm,
    PixelLovaszLoss,
    PixelTverskyLoss,
    pixel_boundary_targets,
    pixel_softmax,
)
from sm_pixel_ce.flavor import IS_KERAS_3, keras
from sm_pixel_ce.losses.sums import term_targets

N, H, W, C = 2, 4, 4, 3


@pytest.fixture
def data(rng):
    logits = rng.normal(0, 2, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W))
    labels[0, 0] = 255
    return logits, labels


def value_and_gradient(fn, logits):
    z = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = fn(z)
    return value.numpy(), tape.gradient(value, z).numpy()


class TestArithmetic:
    def test_add_and_scale_build_weighted_terms(self):
        cce, dice = PixelCategoricalCrossentropy(), PixelDiceLoss(classes=[1, 2])
        total = cce + 0.5 * dice
        assert isinstance(total, PixelLossSum)
        assert total.terms() == [(1.0, cce), (0.5, dice)]
        assert (dice * 2).terms() == [(2.0, dice)]
        nested = 2 * (cce + dice) + PixelLovaszLoss()
        assert [w for w, _ in nested.terms()] == [2.0, 2.0, 1.0]
        assert sum([cce, dice]).terms() == [(1.0, cce), (1.0, dice)]

    @pytest.mark.parametrize(
        "make", [lambda a: a + 3, lambda a: a * "2", lambda a: a + "pixel_dice", lambda a: a * a]
    )
    def test_other_operands_are_type_errors(self, make):
        with pytest.raises(TypeError):
            make(PixelDiceLoss())

    def test_bad_terms_and_weights(self):
        dice = PixelDiceLoss()
        with pytest.raises(ValueError, match="finite number. Received: weight=nan"):
            float("nan") * dice
        with pytest.raises(ValueError, match="sm_pixel_ce pixel loss"):
            PixelLossSum([dice, keras.losses.MeanSquaredError()])
        with pytest.raises(ValueError, match="expected 2, received 1"):
            PixelLossSum([dice, dice], weights=[1.0])
        with pytest.raises(ValueError, match="reduce to a number"):
            dice + PixelCategoricalCrossentropy(reduction="none")
        with pytest.raises(ValueError, match="list of pixel losses"):
            PixelLossSum(dice)


# Sums computed by the shared softmax (the first two) and term by term (the others).
SUMS = {
    "cce_dice_fused": lambda: (
        PixelCategoricalCrossentropy(ignore_index=255, class_weights=[1, 2, 0.5])
        + 0.5 * PixelDiceLoss(ignore_index=255, classes=[1, 2])
    ),
    "focal_tversky_jaccard_fused": lambda: (
        PixelCategoricalFocalCrossentropy(ignore_index=255, top_k=0.5)
        + PixelTverskyLoss(0.3, 0.7, 0.75, ignore_index=255, per_image=True)
        + 2
        * PixelJaccardLoss(ignore_index=255, per_image=True, log_loss=True, absent_classes="skip")
    ),
    "smoothed_cce_dice": lambda: (
        PixelCategoricalCrossentropy(ignore_index=255, label_smoothing=0.1)
        + PixelDiceLoss(ignore_index=255)
    ),
    "bce_lovasz": lambda: (
        PixelBinaryCrossentropy(ignore_index=255) + 0.25 * PixelLovaszLoss(ignore_index=255)
    ),
    "different_ignore": lambda: (
        PixelCategoricalCrossentropy(ignore_index=255) + PixelDiceLoss(ignore_index=0)
    ),
    # A boundary term shares the softmax too: maps from the mask on the device, or given.
    "cce_dice_boundary_fused": lambda: (
        PixelCategoricalCrossentropy(ignore_index=255)
        + PixelDiceLoss(ignore_index=255)
        + 0.3 * PixelBoundaryLoss(ignore_index=255, classes=[1, 2], alpha=0.5)
    ),
    "dice_boundary_maps_fused": lambda: (
        PixelDiceLoss(ignore_index=255, per_image=True) + PixelBoundaryLoss(from_maps=True)
    ),
}


@pytest.mark.parametrize("name", list(SUMS))
def test_sum_equals_its_terms_added(data, name):
    logits, labels = data
    if name == "different_ignore":
        labels = np.where(labels == 255, 0, labels)
    total = SUMS[name]()
    y_true, weights = labels, None
    if "boundary" in name:  # per-pixel sample weights: they weight the terms, not the maps
        weights = np.random.default_rng(5).uniform(0.0, 2.0, labels.shape).astype(np.float32)
        weights[1, 0] = 0.0
    if "_maps" in name:
        y_true = pixel_boundary_targets(labels, C, 255, with_labels=True)

    def one_by_one(z):
        p = pixel_softmax(z)
        return sum(
            w * term(term_targets(term, y_true, p), p, sample_weight=weights)
            for w, term in total.terms()
        )

    expected = value_and_gradient(one_by_one, logits)
    for mode in (None, False, True):
        fn = lambda z: total(y_true, pixel_softmax(z), sample_weight=weights)  # noqa: E731
        if mode is not None:
            compiled = tf.function(fn, jit_compile=mode)
            fn = lambda z: compiled(z)  # noqa: E731
        value, grad = value_and_gradient(fn, logits)
        np.testing.assert_allclose(value, expected[0], rtol=1e-6)
        np.testing.assert_allclose(grad, expected[1], atol=1e-7)


def test_fused_sum_equals_numpy(data):
    logits, labels = data
    weights = [1.0, 2.0, 0.5]
    total = PixelCategoricalCrossentropy(ignore_index=255, class_weights=weights) + 0.5 * (
        PixelDiceLoss(ignore_index=255, classes=[1, 2])
    )
    expected = pixel_cce(labels, logits, weights, 255) + 0.5 * smp_dice(
        softmax(logits), labels, ignore_index=255, classes=[1, 2]
    )
    for predictions, from_logits in ((pixel_softmax(logits), False), (logits, True)):
        total = PixelLossSum(
            [
                PixelCategoricalCrossentropy(
                    ignore_index=255, class_weights=weights, from_logits=from_logits
                ),
                PixelDiceLoss(ignore_index=255, classes=[1, 2], from_logits=from_logits),
            ],
            weights=[1.0, 0.5],
        )
        np.testing.assert_allclose(total(labels, predictions).numpy(), expected, rtol=1e-5)
    boundary = PixelBoundaryLoss(ignore_index=255, classes=[1, 2], alpha=0.5, from_logits=True)
    with_boundary = total + boundary
    expected += boundary_loss(softmax(logits), labels, [1, 2], ignore_index=255, alpha=0.5)
    np.testing.assert_allclose(with_boundary(labels, logits).numpy(), expected, rtol=1e-5)


class TestNamesAndConfig:
    def test_pixel_cce_dice_by_name(self, data):
        logits, labels = data
        labels = np.where(labels == 255, 0, labels)
        for name in ("pixel_cce_dice", "pixel_categorical_crossentropy_dice"):
            loss = keras.losses.get(name)
            assert isinstance(loss, PixelCategoricalCrossentropyDice)
            assert [type(t) for _, t in loss.terms()] == [
                PixelCategoricalCrossentropy,
                PixelDiceLoss,
            ]
            assert name in sm_pixel_ce.list_names("loss")
            expected = (PixelCategoricalCrossentropy() + PixelDiceLoss())(
                labels, pixel_softmax(logits)
            )
            np.testing.assert_allclose(
                loss(labels, pixel_softmax(logits)).numpy(), expected.numpy(), rtol=1e-7
            )

    def test_config_keeps_every_term_and_option(self):
        total = PixelCategoricalCrossentropy(focal_gamma=1.5, ignore_index=255) + 0.3 * (
            PixelTverskyLoss(alpha=0.2, beta=0.8, classes=[1])
        )
        config = total.get_config()
        assert config["weights"] == [1.0, 0.3] and config["name"] == "pixel_loss_sum"
        for restored in (
            PixelLossSum.from_config(config),
            keras.losses.deserialize(keras.losses.serialize(total)),
        ):
            assert type(restored) is PixelLossSum
            assert restored.get_config() == config
            (_, cce), (_, tversky) = restored.terms()
            assert cce.focal_gamma == 1.5 and cce.ignore_index == 255
            assert tversky.alpha == 0.2 and tversky.classes == [1]
        named = keras.losses.deserialize(keras.losses.serialize(PixelCategoricalCrossentropyDice()))
        assert type(named) is PixelCategoricalCrossentropyDice

    def test_term_metrics_log_each_term(self, rng):
        inputs = keras.Input((H, W, 3))
        model = keras.Model(inputs, keras.layers.Conv2D(C, 1, activation="pixel_softmax")(inputs))
        loss = PixelCategoricalCrossentropy() + 0.5 * PixelDiceLoss() + PixelDiceLoss(smooth=1.0)
        metrics = loss.term_metrics()
        assert [m.name for m in metrics] == [
            "pixel_categorical_crossentropy",
            "pixel_dice_loss",
            "pixel_dice_loss_2",
        ]
        model.compile(keras.optimizers.SGD(0.0), loss=loss, metrics=metrics)
        x = rng.normal(size=(4, H, W, 3)).astype(np.float32)
        y = rng.integers(0, C, (4, H, W)).astype(np.uint8)
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
        logged = {k: v[0] for k, v in history.items()}
        p = model.predict(x, verbose=0)
        terms = [w * t(y, p).numpy() for w, t in loss.terms()]
        np.testing.assert_allclose(logged["loss"], sum(terms), rtol=1e-5)
        np.testing.assert_allclose(logged["pixel_categorical_crossentropy"], terms[0], rtol=1e-5)
        np.testing.assert_allclose(logged["pixel_dice_loss"], terms[1] / 0.5, rtol=1e-5)
        metric = PixelLossTerm(PixelDiceLoss(per_image=True))
        restored = PixelLossTerm.from_config(metric.get_config())
        assert restored.name == "pixel_dice_loss" and restored._loss.per_image


# Runs in a fresh interpreter: every saved file reloads with its sum, evaluates to the same numbers.
RELOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import sm_pixel_ce
    folder = sys.argv[1]
    spec = json.load(open(folder + "/spec.json"))
    x, y = np.load(folder + "/x.npy"), np.load(folder + "/y.npy")
    out = {}
    for name in spec["saved"]:
        model = sm_pixel_ce.load_model(folder + "/" + name)
        loss = getattr(model.loss, "fn", model.loss)  # tf_keras wraps it in a LossesContainer
        if not isinstance(loss, sm_pixel_ce.PixelLossSum):  # a name, or its class (Keras 3)
            loss = sm_pixel_ce.get(loss)() if isinstance(loss, str) else loss()
        out[name] = {"class": type(loss).__name__, "config": loss.get_config(),
                     "evaluate": [float(v) for v in np.ravel(model.evaluate(x, y, verbose=0))],
                     "step": float(np.ravel(model.train_on_batch(x, y))[0])}
    json.dump(out, open(folder + "/reloaded.json", "w"))
    """
)


def test_sums_save_and_reload_in_a_fresh_process(tmp_path, rng):
    x = rng.normal(size=(2, H, W, 3)).astype(np.float32)
    y = rng.integers(0, C, (2, H, W)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    inputs = keras.Input((H, W, 3))
    outputs = keras.layers.Conv2D(C, 1, activation="pixel_softmax")(inputs)
    options = (
        PixelCategoricalCrossentropy(ignore_index=255, class_weights=[1, 2, 3])
        + 0.5 * PixelDiceLoss(ignore_index=255, classes=[1, 2])
        + 0.25 * PixelLovaszLoss(per_image=True, ignore_index=255)
    )
    saved, expected = [], {}
    for key, loss, metrics in (
        ("options", options, options.term_metrics()),
        ("named", "pixel_cce_dice", []),
    ):
        model = keras.Model(inputs, outputs)
        model.compile("sgd", loss=loss, metrics=metrics)
        values = [float(v) for v in np.ravel(model.evaluate(x, y, verbose=0))]
        assert len(values) == 1 + len(metrics)
        compiled = keras.losses.get(loss) if isinstance(loss, str) else loss
        for suffix in [".keras", ".h5"] + ([] if IS_KERAS_3 else ["_savedmodel"]):
            name = key + suffix
            if suffix == "_savedmodel":
                model.save(str(tmp_path / name), save_format="tf")
            else:
                model.save(tmp_path / name)
            saved.append(name)
            expected[name] = (type(compiled).__name__, compiled.get_config(), values)
    with open(tmp_path / "spec.json", "w") as f:
        json.dump({"saved": saved}, f)
    env = checkout_env()
    env.pop("SM_FRAMEWORK", None)
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = json.loads((tmp_path / "reloaded.json").read_text())
    for name in saved:
        cls, config, values = expected[name]
        assert reloaded[name]["class"] == cls, name
        assert reloaded[name]["config"] == config, name
        np.testing.assert_allclose(reloaded[name]["evaluate"], values, rtol=1e-5, err_msg=name)
        assert np.isfinite(reloaded[name]["step"]), name
