"""The tests of ``pixel_mcc`` and ``pixel_boundary`` on every backend (TensorFlow in both Keras
flavours, JAX, PyTorch): values and gradients against the float64 NumPy references of
tests/reference.py (segmentation_models_pytorch's ``MCCLoss``, Kervadec et al.'s ``one_hot2dist``
with SciPy and ``SurfaceLoss``), the label forms, bad input, the ``alpha`` ramp in ``fit``, the
maps from the input pipeline and save/reload by name.

Each backend's file (tests/test_mcc_boundary.py, test_jax_mcc_boundary.py,
test_torch_mcc_boundary.py) imports :data:`TESTS` and defines the fixture ``value_and_grad``:
``value_and_grad(f, x) -> (value, gradient)`` of a scalar ``f`` at the logits ``x``, by its own
autodiff. The option cases beyond the first run in the Keras 3 process only (``one_flavor``): on
TensorFlow both flavours run the same ``keras.ops`` math."""

import numpy as np
import pytest
from reference import (
    boundary_loss,
    kervadec_distance_maps,
    mcc_loss,
    numeric_gradient,
    pixel_cce,
    smp_mcc,
    smp_tversky,
    softmax,
    surface_loss,
)

from sm_pixel_ce import pixel_softmax
from sm_pixel_ce.flavor import keras
from sm_pixel_ce.losses import (
    BoundaryAlphaSchedule,
    PixelBoundaryLoss,
    PixelCategoricalCrossentropy,
    PixelDiceLoss,
    PixelMCCLoss,
    pixel_boundary_loss,
    pixel_boundary_targets,
    pixel_mcc_loss,
)
from sm_pixel_ce.losses.distance_maps import signed_distance_maps

N, H, W, C = 2, 5, 6, 3
REL = 1e-5

MCC_CASES = [
    ("plain", {}),
    ("ignore_index", {"ignore_index": 255}),
    ("classes_and_weights", {"classes": [0, 2], "class_weights": [3.0, 1.0, 0.5]}),
    ("per_image", {"per_image": True, "ignore_index": 255}),
    ("eps", {"eps": 0.5}),
]
BOUNDARY_CASES = [
    ("plain", {}),
    ("ignore_index", {"ignore_index": 255}),
    ("classes_alpha", {"classes": [1, 2], "alpha": 0.25, "ignore_index": 255}),
]


def data(rng, classes=C):
    """``(logits, labels)``: N(0, 2) float32 logits ``(N, H, W, C)`` and a mask of 2-px blocks
    (regions with boundaries) with three void (255) pixels."""
    logits = rng.normal(0, 2, (N, H, W, classes)).astype(np.float32)
    blocks = rng.integers(0, classes, (N, (H + 1) // 2, (W + 1) // 2))
    labels = np.repeat(np.repeat(blocks, 2, 1), 2, 2)[:, :H, :W]
    labels[0, 0, :3] = 255
    return logits, labels


def without_void(labels):
    return np.where(labels == 255, 1, labels)


def _check(cls, fn, reference, labels, logits, options, value_and_grad):
    expected = reference(softmax(logits), labels, **options)
    value, grad = value_and_grad(lambda z: cls(**options, from_logits=True)(labels, z), logits)
    np.testing.assert_allclose(value, expected, rtol=REL, atol=1e-7)
    on_softmax = cls(**options)(labels, pixel_softmax(logits))
    np.testing.assert_allclose(on_softmax, expected, rtol=REL, atol=1e-7)
    plain = fn(labels, softmax(logits).astype(np.float32), **options)
    np.testing.assert_allclose(plain, expected, rtol=REL, atol=1e-7)
    numeric = numeric_gradient(lambda z: reference(softmax(z), labels, **options), logits)
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


def check_mcc(rng, options, value_and_grad):
    logits, labels = data(rng)
    labels = labels if "ignore_index" in options else without_void(labels)
    _check(PixelMCCLoss, pixel_mcc_loss, mcc_loss, labels, logits, options, value_and_grad)


def check_boundary(rng, options, value_and_grad):
    logits, labels = data(rng)
    labels = labels if "ignore_index" in options else without_void(labels)
    _check(
        PixelBoundaryLoss,
        pixel_boundary_loss,
        boundary_loss,
        labels,
        logits,
        options,
        value_and_grad,
    )


def check_binary_mcc_is_smp(rng):
    """Two classes: the mean over both equals SMP's binary MCCLoss on ``p_1`` (MCC is symmetric
    in the two classes), and so does class 1 alone."""
    logits, labels = data(rng, classes=2)
    labels = without_void(labels)
    p = softmax(logits)
    expected = smp_mcc(p[..., 1], labels)
    for options in ({}, {"classes": [1]}, {"classes": [0]}):
        np.testing.assert_allclose(
            PixelMCCLoss(**options, from_logits=True)(labels, logits), expected, rtol=REL
        )


def check_perfect_and_inverted_mcc():
    """Hard predictions: equal to the labels, MCC = 1 (loss ≈ 0); swapped, MCC = -1 (loss ≈ 2)."""
    labels = np.array([[[0, 1], [1, 0]]])
    one_hot = np.eye(2, dtype=np.float32)[labels]
    np.testing.assert_allclose(pixel_mcc_loss(labels, one_hot, eps=1e-9), 0.0, atol=1e-6)
    np.testing.assert_allclose(pixel_mcc_loss(labels, one_hot[..., ::-1], eps=1e-9), 2.0, 1e-6)


def check_sample_weight_as_ignore(rng):
    """0/1 pixel sample weights count the pixels as ``ignore_index`` does, in both losses."""
    logits, labels = data(rng)
    weights = (labels != 255).astype(np.float32)
    clean = without_void(labels)
    for cls in (PixelMCCLoss, PixelBoundaryLoss):
        ignored = cls(ignore_index=255, from_logits=True)(labels, logits)
        weighted = cls(from_logits=True, reduction="mean_with_sample_weight")
        if cls is PixelMCCLoss:
            weighted = cls(from_logits=True)
        value = weighted(clean, logits, sample_weight=weights)
        if cls is PixelBoundaryLoss:  # the void pixels stay in their classes' maps here
            expected = boundary_loss(softmax(logits), clean, sample_weight=weights) * (
                weights.size / weights.sum()
            )
            np.testing.assert_allclose(value, expected, rtol=REL)
        else:
            np.testing.assert_allclose(value, ignored, rtol=REL)


def check_label_forms(rng):
    """One-hot and uint8 masks, a trailing 1, channels-first: the same value."""
    logits, labels = data(rng)
    labels = without_void(labels)
    one_hot = np.eye(C, dtype=np.float32)[labels]
    for cls, reference in ((PixelMCCLoss, mcc_loss), (PixelBoundaryLoss, boundary_loss)):
        expected = reference(softmax(logits), labels)
        loss = cls(from_logits=True)
        for y in (labels.astype(np.uint8), labels[..., None].astype(np.int16), one_hot):
            np.testing.assert_allclose(loss(y, logits), expected, rtol=REL)
        first = cls(from_logits=True, axis=1)(
            np.moveaxis(one_hot, -1, 1), np.moveaxis(logits, -1, 1)
        )
        np.testing.assert_allclose(first, expected, rtol=REL)


def check_kervadec_surface_loss(rng):
    """Every pixel counted, ``classes=[1]``: Kervadec et al.'s ``SurfaceLoss(idc=[1])`` on their
    maps; the maps themselves equal SciPy's (an absent and a filling class included)."""
    logits, labels = data(rng)
    labels = without_void(labels)
    labels[1] = np.where(labels[1] == 2, 0, labels[1])  # class 2 absent from image 1
    members = labels[..., None] == np.arange(C)
    maps = kervadec_distance_maps(members)
    np.testing.assert_allclose(signed_distance_maps(members), maps, atol=1e-5)
    filled = np.zeros((1, 4, 7, 2), bool)
    filled[..., 0] = True
    np.testing.assert_array_equal(signed_distance_maps(filled), 0.0)
    p = softmax(logits)
    expected = surface_loss(p, maps, [1])
    value = pixel_boundary_loss(labels, p.astype(np.float32), classes=[1])
    np.testing.assert_allclose(value, expected, rtol=REL)


def check_reduction_none_and_dtype(rng):
    logits, labels = data(rng)
    labels = without_void(labels)
    per_pixel = PixelBoundaryLoss(from_logits=True, reduction="none")(labels, logits)
    assert tuple(per_pixel.shape) == (N, H, W)
    np.testing.assert_allclose(
        np.mean(np.asarray(per_pixel)), boundary_loss(softmax(logits), labels), rtol=REL, atol=1e-7
    )
    per_image = PixelMCCLoss(from_logits=True, reduction="none")(labels, logits)
    expected = [mcc_loss(softmax(logits[n : n + 1]), labels[n : n + 1]) for n in range(N)]
    np.testing.assert_allclose(per_image, expected, rtol=REL)
    for cls, name in ((PixelMCCLoss, "pixel_mcc_loss"), (PixelBoundaryLoss, "pixel_boundary_loss")):
        value = cls(from_logits=True, dtype="float16")(labels, logits)
        assert "float16" in str(value.dtype)
        assert cls().name == name and cls(name="mine").name == "mine"
        loss = cls(classes=[1], ignore_index=255, reduction="sum", name="mine")
        config = loss.get_config()
        assert cls.from_config(config).get_config() == config
        assert config["reduction"] == "sum" and config["classes"] == [1]


BAD_INPUT = [
    (PixelMCCLoss, {"eps": 0}, "`eps` must be a finite number > 0"),
    (PixelMCCLoss, {"classes": [3]}, "`classes` names a class the predictions do not have"),
    (PixelMCCLoss, {"class_weights": [1, 2]}, "`class_weights` needs one weight per class"),
    (PixelBoundaryLoss, {"alpha": -1}, "`alpha` must be a finite number >= 0"),
    (PixelBoundaryLoss, {"classes": [5]}, "`classes` names a class the predictions do not have"),
    (PixelBoundaryLoss, {"classes": "all"}, "`classes` must be a list of distinct class indices"),
]


def check_bad_input():
    labels, probs = np.zeros((2, 4, 4), np.int64), np.full((2, 4, 4, 3), 1 / 3, np.float32)
    for cls, options, message in BAD_INPUT:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
            cls(**options)(labels, probs)
    with pytest.raises(ValueError, match="distance maps are those of 2-D images"):
        pixel_boundary_loss(labels[:, 0], probs[:, 0])
    with pytest.raises(ValueError, match="mask values must lie in|out of range|expected"):
        pixel_boundary_loss(np.full((2, 4, 4), 7), probs)
    with pytest.raises(ValueError, match="must be a PixelBoundaryLoss or a sum with one"):
        BoundaryAlphaSchedule(PixelDiceLoss())


def tiny_model():
    inputs = keras.Input((8, 8, 2))
    return keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="pixel_softmax")(inputs))


def batch(rng):
    x = rng.normal(size=(2, 8, 8, 2)).astype(np.float32)
    y = np.zeros((2, 8, 8), np.int32)
    y[:, 2:6, 3:7] = 1
    return x, y


def check_alpha_ramp_in_fit(rng):
    """``BoundaryAlphaSchedule`` sets ``alpha`` each epoch and the compiled step sees it: with a
    frozen model (learning rate 0) each epoch's logged loss is ``α(epoch)`` times the same value."""
    x, y = batch(rng)
    model = tiny_model()
    boundary = PixelBoundaryLoss(classes=[1], alpha=0.0)
    loss = PixelDiceLoss() * 0.0 + boundary
    model.compile(keras.optimizers.SGD(0.0), loss=loss)
    schedule = BoundaryAlphaSchedule(loss, start=1.0, step=1.0, stop=1.5)
    history = model.fit(x, y, epochs=3, batch_size=2, verbose=0, callbacks=[schedule])
    assert boundary.alpha == 1.5
    plain = float(pixel_boundary_loss(y, model.predict(x, verbose=0), classes=[1]))
    assert abs(plain) > 1e-3
    np.testing.assert_allclose(
        history.history["loss"], [plain, 1.5 * plain, 1.5 * plain], rtol=1e-4
    )
    assert [schedule.alpha(e) for e in range(3)] == [1.0, 1.5, 1.5]
    down = BoundaryAlphaSchedule(boundary, start=1.0, step=-0.5, stop=0.2)
    assert [down.alpha(e) for e in range(4)] == [1.0, 0.5, 0.2, 0.2]
    assert BoundaryAlphaSchedule(boundary, schedule=lambda e: 0.1 * e).alpha(3) == pytest.approx(
        0.3
    )


def check_names_save_and_reload(tmp_path, rng):
    """``"pixel_mcc"`` and ``"pixel_boundary"`` compile and train by name, and a model compiled
    with their objects (and options) saves and reloads with them."""
    x, y = batch(rng)
    for name, cls in (("pixel_mcc", PixelMCCLoss), ("pixel_boundary", PixelBoundaryLoss)):
        assert isinstance(keras.losses.get(name), cls)
    model = tiny_model()
    model.compile("sgd", loss="pixel_mcc")
    assert np.isfinite(np.ravel(model.train_on_batch(x, y))[0])
    model = tiny_model()
    loss = PixelMCCLoss(eps=0.5, ignore_index=255) + PixelBoundaryLoss(classes=[1], alpha=0.3)
    model.compile("sgd", loss=loss)
    model.train_on_batch(x, y)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    terms = [term for _, term in reloaded.loss.terms()]
    assert [type(t) for t in terms] == [PixelMCCLoss, PixelBoundaryLoss]
    assert terms[0].eps == 0.5 and terms[0].ignore_index == 255
    assert terms[1].classes == [1] and terms[1].alpha == 0.3
    np.testing.assert_allclose(
        reloaded.loss(y, reloaded.predict(x, verbose=0)),
        loss(y, model.predict(x, verbose=0)),
        rtol=1e-5,
    )


def check_maps_from_the_pipeline(rng, value_and_grad):
    """``pixel_boundary_targets`` then ``from_maps=True``: the value and gradient of the maps
    computed from the labels, with and without ignored pixels, channels-last and -first."""
    logits, labels = data(rng)
    for ignore_index in (None, 255):
        y = labels if ignore_index else without_void(labels)
        maps = pixel_boundary_targets(y, C, ignore_index=ignore_index)
        assert np.isnan(np.asarray(maps)).any() == bool(ignore_index)
        options = {"ignore_index": ignore_index, "classes": [0, 2], "from_logits": True}
        expected = value_and_grad(lambda z: PixelBoundaryLoss(**options)(y, z), logits)
        given = PixelBoundaryLoss(**options, from_maps=True)
        value = value_and_grad(lambda z: given(maps, z), logits)
        np.testing.assert_allclose(value[0], expected[0], rtol=REL)
        np.testing.assert_allclose(value[1], expected[1], rtol=REL, atol=1e-9)
        one = pixel_boundary_targets(y[1][..., None], C, ignore_index=ignore_index, axis=0)
        np.testing.assert_allclose(one, np.moveaxis(np.asarray(maps)[1], -1, 0))
    first = PixelBoundaryLoss(from_maps=True, from_logits=True, axis=1)
    np.testing.assert_allclose(
        first(np.moveaxis(np.asarray(maps), -1, 1), np.moveaxis(logits, -1, 1)),
        PixelBoundaryLoss(from_logits=True, ignore_index=255)(labels, logits),
        rtol=REL,
    )
    with pytest.raises(ValueError, match="with from_maps=True, y_true holds the signed distance"):
        given(labels, logits)
    with pytest.raises(ValueError, match="expected an integer mask"):
        pixel_boundary_targets(logits, C)


def check_labels_and_maps_in_a_sum(rng, value_and_grad):
    """``pixel_boundary_targets(..., with_labels=True)``: one ``y_true``, the mask then the maps,
    whose cross-entropy and Dice terms read the mask and whose boundary term the maps: the value
    and gradient of the NumPy/SciPy references summed. A term given the wrong kind raises."""
    logits, labels = data(rng)
    targets = pixel_boundary_targets(labels, C, ignore_index=255, with_labels=True)
    assert tuple(targets.shape) == (N, H, W, 1 + C)
    np.testing.assert_array_equal(np.asarray(targets)[..., 0], labels)
    options = {"ignore_index": 255, "from_logits": True}
    boundary = {"classes": [1, 2], "alpha": 0.3}
    loss = (
        PixelCategoricalCrossentropy(**options)
        + 0.5 * PixelDiceLoss(**options)
        + PixelBoundaryLoss(**boundary, from_maps=True, from_logits=True)
    )

    def reference(z):
        p = softmax(z)
        return (
            pixel_cce(labels, z, ignore_index=255)
            + 0.5 * smp_tversky(p, labels, ignore_index=255)
            + boundary_loss(p, labels, **boundary, ignore_index=255)
        )

    value, grad = value_and_grad(lambda z: loss(targets, z), logits)
    np.testing.assert_allclose(value, reference(logits), rtol=REL)
    np.testing.assert_allclose(grad, numeric_gradient(reference, logits), atol=1e-6)
    channels_first = PixelDiceLoss(ignore_index=255, axis=1) + PixelBoundaryLoss(
        from_maps=True, axis=1
    )
    np.testing.assert_allclose(
        channels_first(
            pixel_boundary_targets(labels, C, 255, axis=1, with_labels=True),
            np.moveaxis(softmax(logits), -1, 1).astype(np.float32),
        ),
        smp_tversky(softmax(logits), labels, ignore_index=255)
        + boundary_loss(softmax(logits), labels, ignore_index=255),
        rtol=REL,
    )
    maps = pixel_boundary_targets(labels, C, ignore_index=255)
    with pytest.raises(ValueError, match="reads distance maps .* give both"):
        loss(maps, logits)  # the Dice term would read the maps as labels
    with pytest.raises(ValueError, match="Set PixelBoundaryLoss\\(from_maps=True\\)"):
        PixelBoundaryLoss(**options)(targets, logits)
    with pytest.raises(ValueError, match="class counts differ: labels have 4, predictions 3"):
        PixelDiceLoss(**options)(targets, logits)  # alone, the mask and maps are not its labels


def check_labels_and_maps_in_fit(tmp_path, rng):
    """``fit`` on the mask and maps with the ``alpha`` ramp and the terms logged, then save and
    reload: each epoch's loss and terms are the references' (a frozen model), and so is the
    reloaded model's."""
    x, y = batch(rng)
    y[0, 0, :3] = 255
    targets = np.asarray(pixel_boundary_targets(y, 2, ignore_index=255, with_labels=True))
    model = tiny_model()
    loss = PixelDiceLoss(ignore_index=255) + PixelBoundaryLoss(from_maps=True, classes=[1])
    model.compile(keras.optimizers.SGD(0.0), loss=loss, metrics=loss.term_metrics())
    schedule = BoundaryAlphaSchedule(loss, start=0.5, step=0.5)
    history = model.fit(x, targets, epochs=2, batch_size=2, verbose=0, callbacks=[schedule])
    p = np.asarray(model.predict(x, verbose=0), np.float64)
    dice = smp_tversky(p, y, ignore_index=255)
    surface = boundary_loss(p, y, classes=[1], ignore_index=255)
    assert abs(surface) > 1e-3
    np.testing.assert_allclose(history.history["pixel_dice_loss"], [dice, dice], rtol=1e-4)
    np.testing.assert_allclose(
        history.history["pixel_boundary_loss"], [0.5 * surface, surface], rtol=1e-4
    )
    np.testing.assert_allclose(
        history.history["loss"], [dice + 0.5 * surface, dice + surface], rtol=1e-4
    )
    path = str(tmp_path / "labels_and_maps.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    terms = [term for _, term in reloaded.loss.terms()]
    assert terms[1].from_maps and terms[1].alpha == 1.0
    value = reloaded.loss(targets, reloaded.predict(x, verbose=0))
    np.testing.assert_allclose(value, dice + surface, rtol=1e-4)


# --- The tests each backend's file collects (``from mcc_boundary_cases import *``) -------------


def _first_in_both_flavors(cases):
    return [cases[0]] + [pytest.param(*case, marks=pytest.mark.one_flavor) for case in cases[1:]]


@pytest.mark.parametrize("case, options", _first_in_both_flavors(MCC_CASES))
def test_mcc_equals_reference(rng, value_and_grad, case, options):
    check_mcc(rng, options, value_and_grad)


@pytest.mark.parametrize("case, options", _first_in_both_flavors(BOUNDARY_CASES))
def test_boundary_equals_reference(rng, value_and_grad, case, options):
    check_boundary(rng, options, value_and_grad)


def test_binary_mcc_sample_weight_and_label_forms(rng):
    check_binary_mcc_is_smp(rng)
    check_perfect_and_inverted_mcc()
    check_sample_weight_as_ignore(rng)
    check_label_forms(rng)


def test_kervadec_surface_loss_and_reductions(rng):
    check_kervadec_surface_loss(rng)
    check_reduction_none_and_dtype(rng)


def test_bad_input():
    check_bad_input()


def test_maps_from_the_pipeline(rng, value_and_grad):
    check_maps_from_the_pipeline(rng, value_and_grad)


def test_labels_and_maps_in_a_sum(rng, value_and_grad):
    check_labels_and_maps_in_a_sum(rng, value_and_grad)


def test_labels_and_maps_in_fit(tmp_path, rng):
    check_labels_and_maps_in_fit(tmp_path, rng)


def test_alpha_ramp_in_fit(rng):
    check_alpha_ramp_in_fit(rng)


def test_names_save_and_reload(tmp_path, rng):
    check_names_save_and_reload(tmp_path, rng)


TESTS = [name for name in dir() if name.startswith("test_")]
__all__ = TESTS
