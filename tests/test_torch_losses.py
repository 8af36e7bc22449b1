"""Every public object under ``KERAS_BACKEND=torch``: pixel_softmax, pixel_cce and pixel_bce (every
option), Dice, Jaccard, Tversky, Lovász, loss sums, the metrics (with sample_weight) and
class_weights. Values and gradients (torch autograd through ``keras.ops``) against the float64
NumPy references (tests/reference.py) at 1e-5, with the TensorFlow path's error texts; the fused
route behind pixel_softmax; exact counts past 2**24. Run with ``KERAS_BACKEND=torch python -m
pytest -m torch tests/test_torch_*.py``; skipped on the other backends.

The backend-neutral checks are shared with the JAX tests (tests/backend_cases.py); here each gets
torch's ``value_and_grad``. That ``import sm_pixel_ce`` needs no segmentation_models on torch is
checked by the model tests' child process (tests/test_torch_models.py)."""

import gc

import keras
import numpy as np
import pytest
from backend_cases import (
    CASES,
    FUNCTIONS,
    LOSSES,
    REL,
    C,
    check_against_reference,
    check_bad_input_raises_the_tensorflow_texts,
    check_class_weight_errors,
    check_compensated_sums_keep_what_float32_drops,
    check_counts_carry_past_int32,
    check_counts_exact_past_float32,
    check_hand_checked_ideal_and_worst,
    check_label_forms_axis_and_precision,
    check_metrics_accumulate_weighted_and_unweighted_batches,
    check_sample_weight_weights_pixels_in_the_sums,
    check_sum_equals_the_references_added,
    check_sums_save_and_reload,
    check_top_k_matches_numpy,
    check_weighted_metrics_in_evaluate,
    miou,
    region_data,
    weighted_confusion,
    without_void,
)
from reference import (
    hardest_tie_cases,
    log_softmax,
    numeric_gradient,
    pixel_bce,
    pixel_cce,
    softmax,
    top_k_kept,
)

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(BACKEND != "torch", reason="needs KERAS_BACKEND=torch"),
]

if BACKEND == "torch":
    import torch
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
    from sm_pixel_ce.metrics import pixel_confusion_matrix
else:
    BAD_INPUT_CASES = []

WEIGHTS = [0.5, 1.0, 2.0, 3.0]
WEIGHTED = {"class_weights": WEIGHTS}


@pytest.fixture
def data(rng):
    return region_data(rng)


def autograd(f, x):
    """``(value, gradient)`` of the scalar ``f`` at ``x`` by torch autograd, as NumPy."""
    z = torch.tensor(np.asarray(x), requires_grad=True)
    value = f(z)
    (gradient,) = torch.autograd.grad(value, z)
    return value.detach().numpy(), gradient.numpy()


@pytest.mark.parametrize("axis", [-1, 1])
def test_pixel_softmax_matches_numpy_and_differentiates(data, axis):
    logits = data[0] if axis == -1 else np.moveaxis(data[0], -1, 1)
    out = pixel_softmax(logits, axis=axis)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out, softmax(logits, axis=axis), rtol=REL, atol=1e-7)
    half = pixel_softmax(torch.tensor(logits, dtype=torch.float16), axis=axis)
    assert half.dtype == torch.float32
    # Σ_c p_c·c: a scalar whose gradient goes through the softmax itself.
    ramp = np.arange(C, dtype=np.float32).reshape((C, 1, 1) if axis == 1 else (C,))
    _, gradient = autograd(
        lambda z: (pixel_softmax(z, axis=axis) * torch.from_numpy(ramp)).sum(), logits
    )
    expected = numeric_gradient(lambda z: (softmax(z, axis=axis) * ramp).sum(), logits)
    np.testing.assert_allclose(gradient, expected, atol=1e-5)


# --- pixel_cce ----------------------------------------------------------------------------------

#: (id, loss options, reference options); every case with the void pixels and ignore_index but
#: the first (without_void there).
CCE_OPTIONS = [
    ("plain", {}, {}),
    ("weights_ignore", WEIGHTED, WEIGHTED),
    ("smoothing", {"label_smoothing": 0.2}, {"smoothing": 0.2}),
    ("focal", {"focal_gamma": 2.0, **WEIGHTED}, {"gamma": 2.0, **WEIGHTED}),
    ("top_k", {"top_k": 0.3, **WEIGHTED}, {"top_k": 0.3, **WEIGHTED}),
    ("sum", {"reduction": "sum"}, {"reduction": "sum"}),
    (
        "everything",
        {"label_smoothing": 0.1, "focal_gamma": 1.5, "top_k": 0.6, **WEIGHTED},
        {"smoothing": 0.1, "gamma": 1.5, "top_k": 0.6, **WEIGHTED},
    ),
]


def _cce_case(data, key, options, reference):
    logits, labels = data
    if key == "plain":
        return logits, without_void(labels), options, reference
    return logits, labels, {**options, "ignore_index": 255}, {**reference, "ignore_index": 255}


@pytest.mark.parametrize("route", ["logits", "pixel_softmax", "probabilities"])
@pytest.mark.parametrize("dense", [False, True], ids=["mask", "dense"])
@pytest.mark.parametrize("key, options, reference", CCE_OPTIONS, ids=[c[0] for c in CCE_OPTIONS])
def test_pixel_cce_value_and_gradient(data, key, options, reference, dense, route):
    """From logits, through pixel_softmax (the fused route) and on plain probabilities (value
    only); integer masks and one-hot labels (void pixels all zero)."""
    logits, labels, options, reference = _cce_case(data, key, options, reference)
    y_true = labels
    if dense:
        valid = labels != 255
        y_true = np.eye(C, dtype=np.float32)[np.where(valid, labels, 0)] * valid[..., None]
    expected = pixel_cce(labels, logits, **reference)
    if route == "probabilities":
        loss = PixelCategoricalCrossentropy(**options)
        value = loss(y_true, softmax(logits).astype(np.float32))
        np.testing.assert_allclose(value, expected, rtol=REL)
        return
    loss = PixelCategoricalCrossentropy(from_logits=route == "logits", **options)
    activation = pixel_softmax if route == "pixel_softmax" else (lambda z: z)
    value, gradient = autograd(lambda z: loss(y_true, activation(z)), logits)
    np.testing.assert_allclose(value, expected, rtol=REL)
    numeric = numeric_gradient(lambda z: pixel_cce(labels, z, **reference), logits)
    np.testing.assert_allclose(gradient, numeric, atol=1e-5)


def test_pixel_cce_channels_first(data):
    logits, labels = data
    first = np.moveaxis(logits, -1, 1)
    expected = pixel_cce(labels, logits, WEIGHTS, 255)
    numeric = numeric_gradient(lambda z: pixel_cce(labels, z, WEIGHTS, 255), logits)
    for from_logits in (False, True):
        loss = PixelCategoricalCrossentropy(
            axis=1, from_logits=from_logits, class_weights=WEIGHTS, ignore_index=255
        )
        activation = (lambda z: z) if from_logits else (lambda z: pixel_softmax(z, axis=1))
        value, gradient = autograd(lambda z: loss(labels, activation(z)), first)
        np.testing.assert_allclose(value, expected, rtol=REL)
        np.testing.assert_allclose(np.moveaxis(gradient, 1, -1), numeric, atol=1e-5)


@pytest.mark.parametrize("per", ["image", "pixel"])
def test_pixel_cce_sample_weight_and_reductions(data, rng, per):
    logits, labels = data
    shape = labels.shape[:1] if per == "image" else labels.shape
    sw = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    options = {"class_weights": WEIGHTS, "ignore_index": 255, "sample_weight": sw}
    terms = pixel_cce(labels, logits, **options, reduction="none")
    pixel_weight = np.asarray(WEIGHTS)[np.where(labels == 255, 0, labels)] * (labels != 255)
    sw_pixels = sw.reshape(shape + (1,) * (3 - sw.ndim)) * np.ones(labels.shape)
    expected = {
        "sum_over_batch_size": terms.sum() / pixel_weight.sum(),
        "mean": terms.sum() / pixel_weight.sum(),
        "mean_with_sample_weight": terms.sum() / (pixel_weight * sw_pixels).sum(),
        "sum": terms.sum(),
        "none": terms,
    }
    for reduction, value in expected.items():
        loss = PixelCategoricalCrossentropy(
            from_logits=True, class_weights=WEIGHTS, ignore_index=255, reduction=reduction
        )
        np.testing.assert_allclose(loss(labels, logits, sample_weight=sw), value, rtol=REL)
    loss = PixelCategoricalCrossentropy(from_logits=True, class_weights=WEIGHTS, ignore_index=255)
    _, gradient = autograd(lambda z: loss(labels, z, sample_weight=sw), logits)
    numeric = numeric_gradient(lambda z: pixel_cce(labels, z, **options), logits)
    np.testing.assert_allclose(gradient, numeric, atol=1e-5)


@pytest.mark.parametrize("gap", [50.0, 200.0])
def test_fused_route_keeps_gradient_p_minus_y(gap):
    """A confidently wrong pixel: the logits behind pixel_softmax give the loss ``gap`` and the
    gradient p - y w.r.t. the logits, where log p would stop at 87.3 and give none."""
    logits = np.array([[[[gap, 0.0, 0.0]]]], np.float32)
    labels = np.array([[[1]]])
    loss = PixelCategoricalCrossentropy()
    value, gradient = autograd(lambda z: loss(labels, pixel_softmax(z)), logits)
    assert float(value) == pytest.approx(-log_softmax(logits)[0, 0, 0, 1], rel=REL)
    expected = softmax(logits) - np.eye(3)[labels]
    np.testing.assert_allclose(gradient, expected, rtol=REL, atol=1e-7)


def test_fused_route_leaves_nothing_behind():
    """The side table holds an output's logits while the output lives, and nothing after, also
    once autograd has run through it. A copy of the probabilities takes the floored log."""
    from sm_pixel_ce._backend import generic as _neutral

    gc.collect()
    before = len(_neutral._LOGITS)
    logits = np.array([[[[200.0, 0.0, 0.0]]]], np.float32)
    labels = np.array([[[1]]])
    loss = PixelCategoricalCrossentropy()
    autograd(lambda z: loss(labels, pixel_softmax(z)), logits)
    gc.collect()
    assert len(_neutral._LOGITS) == before
    output = pixel_softmax(logits)
    assert len(_neutral._LOGITS) == before + 1
    assert float(loss(labels, output)) == pytest.approx(200.0, rel=REL)
    assert float(loss(labels, output.clone())) == pytest.approx(87.3365, rel=1e-4)
    del output
    assert len(_neutral._LOGITS) == before


def test_from_logits_on_a_softmax_output_warns_and_uses_the_logits():
    logits = np.array([[[[200.0, 0.0, 0.0]]]], np.float32)
    loss = PixelCategoricalCrossentropy(from_logits=True)
    with pytest.warns(UserWarning, match="from_logits=True, but the predictions come from"):
        value = loss(np.array([[[1]]]), pixel_softmax(logits))
    assert float(value) == pytest.approx(200.0, rel=REL)


@pytest.mark.parametrize("policy, layer", [(None, False), ("mixed_bfloat16", True)])
def test_keras_hands_the_softmax_output_to_the_loss(policy, layer):
    """evaluate, fit and compute_loss reach the logits (mixed precision too): at a gap of 200
    the loss is 200, not 87.3, and one SGD step moves the biases by lr·(p - y)."""
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
    loss = model.compute_loss(x, y, model(x))
    assert float(loss.detach()) == pytest.approx(199.98, rel=1e-4)


@pytest.mark.parametrize("kwargs, y_true, y_pred, match", BAD_INPUT_CASES)
def test_pixel_cce_bad_input_same_text_as_tensorflow(kwargs, y_true, y_pred, match):
    if match is None:
        assert np.isfinite(float(pixel_categorical_crossentropy(y_true, y_pred, **kwargs)))
        return
    with pytest.raises(ValueError, match=match):
        pixel_categorical_crossentropy(y_true, y_pred, **kwargs)


def test_logits_as_probabilities_raise_the_value_error_in_training(data, rng):
    """Predictions that require grad (as in training) reach the same ``ValueError`` texts, from
    every loss and from ``fit``: the checks leave autograd before reading the values."""
    logits, labels = data
    labels = without_void(labels)
    z = torch.tensor(logits, requires_grad=True)
    losses = [PixelCategoricalCrossentropy(), PixelBinaryCrossentropy()]
    losses += [cls(**fixed) for cls, _, _, fixed in LOSSES.values()]
    for loss in losses:
        with pytest.raises(ValueError, match="not probabilities"):
            loss(labels, z)
    with pytest.raises(ValueError, match="integer mask out of range"):
        PixelCategoricalCrossentropy(from_logits=True)(torch.tensor(labels + C), z)
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, bias_initializer="ones")(inputs))
    model.compile("sgd", loss="pixel_cce")
    x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="pixel_categorical_crossentropy: from_logits=False"):
        model.fit(x, rng.integers(0, 3, (2, 4, 4)), verbose=0)


# --- pixel_bce ----------------------------------------------------------------------------------

BCE_OPTIONS = [
    ("plain", {}, {}),
    ("smoothing", {"label_smoothing": 0.1}, {"smoothing": 0.1}),
    ("focal", {"focal_gamma": 2.0}, {"gamma": 2.0}),
    ("top_k", {"top_k": 0.25, "focal_gamma": 2.0}, {"top_k": 0.25, "gamma": 2.0}),
]


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "sigmoid"])
@pytest.mark.parametrize("key, options, reference", BCE_OPTIONS, ids=[c[0] for c in BCE_OPTIONS])
def test_pixel_bce_value_and_gradient(data, key, options, reference, from_logits):
    logits, labels = data
    valid = labels != 255
    onehot = np.eye(C)[np.where(valid, labels, 0)]
    loss = PixelBinaryCrossentropy(from_logits=from_logits, ignore_index=255, **options)
    activation = (lambda z: z) if from_logits else keras.ops.sigmoid
    value, gradient = autograd(lambda z: loss(labels, activation(z)), logits)

    def expected(z):
        return pixel_bce(onehot, z, valid, **reference)

    # Probabilities are clipped at 1e-7, as in TensorFlow: logits of N(0, 2) stay inside.
    np.testing.assert_allclose(value, expected(logits), rtol=REL)
    np.testing.assert_allclose(gradient, numeric_gradient(expected, logits), atol=1e-5)


def test_pixel_bce_dense_labels_reductions_and_errors(data, rng):
    logits, labels = data
    labels = without_void(labels)
    onehot = np.eye(C, dtype=np.float32)[labels]
    expected = pixel_bce(onehot, logits)
    loss = PixelBinaryCrossentropy(from_logits=True)
    np.testing.assert_allclose(loss(onehot, logits), expected, rtol=REL)
    total = PixelBinaryCrossentropy(from_logits=True, reduction="sum")(onehot, logits)
    np.testing.assert_allclose(total, expected * labels.size, rtol=REL)
    sw = rng.uniform(0.5, 2.0, labels.shape[:1]).astype(np.float32)
    per_image = [pixel_bce(onehot[n], logits[n]) for n in range(len(sw))]
    np.testing.assert_allclose(loss(onehot, logits, sample_weight=sw), np.mean(sw * per_image), REL)
    with pytest.raises(ValueError, match=r"dense labels must lie in \[0, 1\]"):
        loss(np.full(logits.shape, 2.0), logits)


# --- region losses (Dice, Jaccard, Tversky, Lovász) ---------------------------------------------


@pytest.mark.parametrize("name, options", CASES)
def test_region_losses_equal_smp(data, name, options):
    logits, labels = data
    labels = labels if "ignore_index" in options else without_void(labels)
    check_against_reference(name, labels, logits, options, autograd)


@pytest.mark.parametrize("name", ["dice", "tversky", "lovasz"])
def test_label_forms_axis_and_precision(data, name):
    check_label_forms_axis_and_precision(name, *data)


def test_hand_checked_ideal_and_worst():
    check_hand_checked_ideal_and_worst()


def test_sample_weight_weights_pixels_in_the_sums(data):
    check_sample_weight_weights_pixels_in_the_sums(*data)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_region_bad_input_raises_the_tensorflow_texts(fn):
    check_bad_input_raises_the_tensorflow_texts(fn)


def test_class_weight_errors():
    check_class_weight_errors()


# --- loss sums ----------------------------------------------------------------------------------


def test_sum_equals_the_references_added(data):
    logits, labels = data
    check_sum_equals_the_references_added(labels, logits, autograd)


def test_sums_log_terms_save_and_reload_in_a_fresh_process(tmp_path, rng):
    check_sums_save_and_reload(tmp_path, rng)


# --- top_k --------------------------------------------------------------------------------------


@pytest.mark.parametrize("top_k", [0.05, 0.3, 0.99])
def test_top_k_matches_numpy(rng, top_k):
    check_top_k_matches_numpy(rng, top_k, autograd)


def test_top_k_kept_count_is_the_ceiling_and_ties_keep_the_earliest(rng):
    logits = rng.normal(0, 3, (1, 2, 5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, (1, 2, 5))
    per_pixel = pixel_categorical_crossentropy(
        labels, logits, from_logits=True, top_k=0.3, reduction="none", ignore_index=255
    )
    assert int(np.sum(np.asarray(per_pixel) != 0)) == 3  # ⌈0.3·10⌉, not 4
    tied = np.zeros((2, 3, 3, 4), np.float32)  # every pixel's loss is ln 4
    tied_labels = np.arange(18).reshape(2, 3, 3) % 4
    for top_k in (0.25, 0.5, 0.6):
        got = pixel_categorical_crossentropy(
            tied_labels, tied, from_logits=True, class_weights=[1, 2, 3, 4], top_k=top_k
        )
        per_pixel = pixel_categorical_crossentropy(
            tied_labels, tied, from_logits=True, top_k=top_k, reduction="none"
        )
        kept = top_k_kept(np.full(tied_labels.shape, np.log(4)), True, top_k)
        np.testing.assert_array_equal(np.asarray(per_pixel) != 0, kept)
        expected = pixel_cce(tied_labels, tied, [1, 2, 3, 4], top_k=top_k)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_hardest_keeps_a_stable_argsorts_pixels_among_many_ties(rng):
    """The hook of ``top_k`` and of OHEM's ``min_kept`` (the k-th largest loss from
    ``torch.topk``, then the earliest of the pixels equal to it) keeps exactly the pixels of a
    NumPy stable argsort: ties, -0.0, +inf and NaN, pixels that do not count, k past n, k = 0."""
    from sm_pixel_ce._backend import hooks

    for losses, counted, top_k, count, expected in hardest_tie_cases(rng):
        kept = hooks.hardest(
            torch.tensor(losses),
            None if counted is None else torch.tensor(counted),
            top_k=top_k,
            count=None if count is None else torch.tensor(count, dtype=torch.int32),
        )
        np.testing.assert_array_equal(kept.numpy(), expected, err_msg=f"{top_k=} {count=}")


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_match_numpy(rng):
    logits = rng.normal(size=(2, 8, 8, 4)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 8, 8))
    labels[:, 0] = 255
    cm = weighted_confusion(labels, logits, np.ones(2), 4)
    metric, accuracy = PixelMeanIoU(4, ignore_index=255), PixelAccuracy(ignore_index=255)
    metric.update_state(labels, torch.tensor(logits))
    accuracy.update_state(labels, logits)
    assert float(metric.result()) == pytest.approx(miou(cm), rel=REL)
    assert float(accuracy.result()) == pytest.approx(np.trace(cm) / cm.sum(), rel=REL)
    np.testing.assert_array_equal(pixel_confusion_matrix(labels, logits, 4, 255), cm)


def test_weighted_confusion_matrix_equals_numpy(rng):
    logits = rng.normal(size=(2, 40, 60, 3)).astype(np.float32)
    labels = rng.integers(0, 3, (2, 40, 60))
    labels[:, 0] = 255
    for weights in (rng.uniform(0, 3, 2), rng.uniform(0, 3, (2, 40, 60))):
        weights = weights.astype(np.float32)
        cm = pixel_confusion_matrix(labels, logits, 3, 255, sample_weight=weights)
        np.testing.assert_allclose(cm, weighted_confusion(labels, logits, weights, 3), rtol=2e-6)


def test_metrics_accumulate_weighted_and_unweighted_batches(rng):
    check_metrics_accumulate_weighted_and_unweighted_batches(rng)


def test_compensated_sums_keep_what_float32_drops():
    check_compensated_sums_keep_what_float32_drops()


def test_weighted_metrics_in_evaluate(rng):
    check_weighted_metrics_in_evaluate(rng)


def test_counts_exact_past_float32():
    check_counts_exact_past_float32()


def test_counts_carry_past_int32():
    check_counts_carry_past_int32()


# --- class_weights and the command line -----------------------------------------------------------


def test_class_weights_of_arrays_and_tensors(data):
    _, labels = data
    labels = without_void(labels)
    counts = np.bincount(labels.ravel(), minlength=C)
    for masks in (labels, torch.tensor(labels)):
        weights = sm_pixel_ce.class_weights(masks, C, method="inverse_frequency")
        np.testing.assert_allclose(weights, counts.sum() / (C * counts), rtol=1e-6)


def test_the_jobs_say_in_one_line_that_they_need_tensorflow(capsys):
    from sm_pixel_ce.cli import main

    assert main(["evaluate", "m.keras", "--data", "d"]) == 2
    err = capsys.readouterr().err
    assert "runs on the TensorFlow backend" in err and "'torch'" in err, err
    assert len(err.strip().splitlines()) == 1, err
