"""What the loss tests of Keras 3's other backends (JAX, PyTorch) share: the region losses with
their float64 NumPy references (tests/reference.py) and option tables, the bad-input table, the
weighted confusion matrix, and the checks whose body does not depend on the backend. Each
backend's file passes its own ``value_and_grad(f, x) -> (value, gradient)`` where one is needed.
Imports on any backend; only the backend's own tests call it, and tests/test_metrics.py the
metric checks, which serve TensorFlow in both flavours too."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from reference import (
    numeric_gradient,
    pixel_cce,
    smp_dice,
    smp_jaccard,
    smp_lovasz_softmax,
    smp_tversky,
    softmax,
    top_k_kept,
)

from sm_pixel_ce import (
    PixelAccuracy,
    PixelCategoricalCrossentropy,
    PixelDiceLoss,
    PixelIoU,
    PixelJaccardLoss,
    PixelLovaszLoss,
    PixelMeanIoU,
    PixelTverskyLoss,
    pixel_categorical_crossentropy,
    pixel_dice_loss,
    pixel_jaccard_loss,
    pixel_lovasz_loss,
    pixel_softmax,
    pixel_tversky_loss,
)
from sm_pixel_ce.metrics import _LOW_BITS

N, H, W, C = 2, 3, 4, 4
REL = 1e-5

#: name -> (loss class, loss function, float64 reference, fixed options).
LOSSES = {
    "dice": (PixelDiceLoss, pixel_dice_loss, smp_dice, {}),
    "jaccard": (PixelJaccardLoss, pixel_jaccard_loss, smp_jaccard, {}),
    "tversky": (
        PixelTverskyLoss,
        pixel_tversky_loss,
        smp_tversky,
        {"alpha": 0.3, "beta": 0.7, "gamma": 0.75},
    ),
    "lovasz": (
        PixelLovaszLoss,
        pixel_lovasz_loss,
        lambda p, y, classes="present", per_image=False, ignore_index=None: smp_lovasz_softmax(
            p, y, classes, per_image, ignore_index
        ),
        {},
    ),
}
FUNCTIONS = [pixel_dice_loss, pixel_jaccard_loss, pixel_tversky_loss, pixel_lovasz_loss]

OVERLAP_OPTIONS = [
    ("plain", {}),
    ("ignore_index", {"ignore_index": 255}),
    ("classes_and_weights", {"classes": [0, 2], "class_weights": [3.0, 1.0, 0.5, 2.0]}),
    ("per_image", {"per_image": True, "ignore_index": 255}),
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
LOVASZ_OPTIONS = [
    ("plain", {}),
    ("ignore_index", {"ignore_index": 255}),
    ("per_image", {"per_image": True, "ignore_index": 255}),
    ("all", {"classes": "all", "ignore_index": 255}),
    ("list", {"classes": [0, 3], "ignore_index": 255}),
]
CASES = [
    pytest.param(name, options, id=f"{name}-{key}")
    for name in ("dice", "jaccard", "tversky")
    for key, options in OVERLAP_OPTIONS
] + [pytest.param("lovasz", options, id=f"lovasz-{key}") for key, options in LOVASZ_OPTIONS]

LABELS = np.zeros((2, 4, 4), np.int64)
PROBS = np.full((2, 4, 4, 3), 1 / 3, np.float32)
#: (options, labels, expected error text) of the region losses, on PROBS.
BAD_INPUT = [
    ({"classes": [3]}, LABELS, r"expected indices in \[0, 2\] for 3 predicted classes"),
    ({"ignore_index": 255}, np.full((2, 4, 4), 7), "or the ignore_index 255"),
    ({}, np.full((2, 4, 4), 0.5, np.float32), "bilinear"),
    ({}, np.full((2, 4, 4, 3), 0.5, np.float32), "summing to 1"),
    ({}, np.zeros((2, 3, 4, 4), np.float32), "look channels_first"),
]


def region_data(rng):
    """``(logits, labels)``: N(0, 2) float32 logits ``(N, H, W, C)`` and a mask with three void
    (255) pixels, for the cases with ``ignore_index``."""
    logits = rng.normal(0, 2, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, C, (N, H, W))
    labels[0, 0, :3] = 255
    return logits, labels


def without_void(labels):
    return np.where(labels == 255, 1, labels)


def check_against_reference(name, labels, logits, options, value_and_grad):
    """The value and gradient w.r.t. the logits from logits (``value_and_grad``, the backend's
    own), the eager values on pixel_softmax output (computed from the logits behind it) and on
    plain probabilities; all against the float64 reference."""
    cls, fn, reference, fixed = LOSSES[name]
    options = {**fixed, **options}
    expected = reference(softmax(logits), labels, **options)
    loss, from_logits = cls(**options), cls(**options, from_logits=True)
    value, grad = value_and_grad(lambda z: from_logits(labels, z), logits)
    np.testing.assert_allclose(value, expected, rtol=REL, atol=1e-7)
    np.testing.assert_allclose(loss(labels, pixel_softmax(logits)), expected, rtol=REL, atol=1e-7)
    plain = fn(labels, softmax(logits).astype(np.float32), **options)
    np.testing.assert_allclose(plain, expected, rtol=REL, atol=1e-7)
    numeric = numeric_gradient(lambda z: reference(softmax(z), labels, **options), logits)
    np.testing.assert_allclose(grad, numeric, atol=1e-5)


def check_label_forms_axis_and_precision(name, logits, labels):
    """Integer masks of any integer dtype, with or without a trailing 1, one-hot and soft labels
    (with an unlabelled row), channels-first, and float16 logits (a float32 loss)."""
    cls, _, reference, fixed = LOSSES[name]
    labels = without_void(labels)
    loss = cls(**fixed, from_logits=True)
    expected = reference(softmax(logits), labels, **fixed)
    one_hot = np.eye(C, dtype=np.float32)[labels]
    for y in (labels.astype(np.uint8), labels[..., None].astype(np.int16), one_hot):
        np.testing.assert_allclose(loss(y, logits), expected, rtol=REL)
    first = cls(**fixed, from_logits=True, axis=1)
    channels_first = first(np.moveaxis(one_hot, -1, 1), np.moveaxis(logits, -1, 1))
    np.testing.assert_allclose(channels_first, expected, rtol=REL)
    half = loss(labels, keras.ops.convert_to_tensor(logits, "float16"))
    assert keras.backend.standardize_dtype(half.dtype) == "float32"
    expected_half = reference(softmax(logits.astype(np.float16)), labels, **fixed)
    np.testing.assert_allclose(half, expected_half, rtol=REL)
    # Soft labels and an unlabelled (all-zero) row: the reference takes both as they are.
    soft = softmax(np.asarray(logits[::-1], np.float64)).astype(np.float32)
    soft[0, 0] = 0.0
    np.testing.assert_allclose(loss(soft, logits), reference(softmax(logits), soft, **fixed), REL)


def check_hand_checked_ideal_and_worst():
    ideal = np.eye(2, dtype=np.float32)[[[0, 1], [1, 0]]][None]  # (1, 2, 2, 2)
    labels = np.array([[[0, 1], [1, 0]]])
    for fn in FUNCTIONS:
        assert float(fn(labels, ideal)) == pytest.approx(0.0, abs=1e-7)
        assert float(fn(labels, ideal[..., ::-1])) == pytest.approx(1.0, rel=1e-6)


def check_sample_weight_weights_pixels_in_the_sums(logits, labels):
    """Dice and Jaccard: a zero image weight drops the image, zero pixel weights the pixels."""
    for cls, reference in ((PixelDiceLoss, smp_dice), (PixelJaccardLoss, smp_jaccard)):
        loss = cls(ignore_index=255, from_logits=True)
        per_image = loss(labels, logits, sample_weight=np.array([2.0, 0.0], np.float32))
        expected = reference(softmax(logits)[:1], labels[:1], ignore_index=255)
        np.testing.assert_allclose(per_image, expected, rtol=REL)
        keep = np.ones(labels.shape, np.float32)
        keep[1, :2] = 0.0
        dropped = np.where(keep > 0, labels, 255)
        per_pixel = loss(labels, logits, sample_weight=keep)
        np.testing.assert_allclose(per_pixel, reference(softmax(logits), dropped, ignore_index=255))


def check_bad_input_raises_the_tensorflow_texts(fn):
    """``fn`` (a region loss function) called eagerly on :data:`BAD_INPUT` and on logits passed
    as probabilities raises TensorFlow's ``ValueError`` texts."""
    for kwargs, y_true, match in BAD_INPUT:
        with pytest.raises(ValueError, match=match):
            fn(y_true, PROBS, **kwargs)
    logits = np.full((2, 4, 4, 3), 3.0, np.float32)
    with pytest.raises(ValueError, match="from_logits=False, but the predictions lie outside"):
        fn(LABELS, logits)


def check_class_weight_errors():
    with pytest.raises(ValueError, match="expected 3, received 2"):
        pixel_dice_loss(LABELS, PROBS, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="of the chosen `classes` are all zero"):
        pixel_dice_loss(LABELS, PROBS, class_weights=[1.0, 0.0, 0.0], classes=[1, 2])
    with pytest.raises(ValueError, match="the Lovász extension has no pixel weights"):
        pixel_lovasz_loss(LABELS, PROBS, sample_weight=np.ones(2))


def check_sum_equals_the_references_added(labels, logits, value_and_grad):
    """A sum of three terms with options, value and gradient through pixel_softmax, and the named
    ``"pixel_cce_dice"``: the float64 references added."""
    loss = (
        PixelCategoricalCrossentropy(ignore_index=255, class_weights=[1, 2, 3, 4])
        + 0.5 * PixelDiceLoss(ignore_index=255, classes=[1, 2])
        + 0.25 * PixelLovaszLoss(per_image=True, ignore_index=255)
    )

    def reference(z):
        p = softmax(z)
        return (
            pixel_cce(labels, z, [1, 2, 3, 4], 255)
            + 0.5 * smp_dice(p, labels, ignore_index=255, classes=[1, 2])
            + 0.25 * smp_lovasz_softmax(p, labels, per_image=True, ignore=255)
        )

    value, grad = value_and_grad(lambda z: loss(labels, pixel_softmax(z)), logits)
    np.testing.assert_allclose(value, reference(logits), rtol=REL)
    np.testing.assert_allclose(loss(labels, pixel_softmax(logits)), reference(logits), rtol=REL)
    np.testing.assert_allclose(grad, numeric_gradient(reference, logits), atol=1e-5)
    named = keras.losses.get("pixel_cce_dice")
    expected = pixel_cce(without_void(labels), logits) + smp_dice(
        softmax(logits), without_void(labels)
    )
    np.testing.assert_allclose(named(without_void(labels), pixel_softmax(logits)), expected, REL)


# Runs in a fresh interpreter: the saved models reload with their sums and evaluate the same.
RELOAD = textwrap.dedent(
    """
    import json, sys
    import keras
    import numpy as np
    import sm_pixel_ce
    folder = sys.argv[1]
    out = {}
    for name in ("options", "named"):
        x, y = np.load(folder + "/x.npy"), np.load(folder + f"/y_{name}.npy")
        model = sm_pixel_ce.load_model(folder + f"/{name}.keras")
        loss = model.loss
        if not isinstance(loss, sm_pixel_ce.PixelLossSum):  # a name, or its class (Keras 3)
            loss = keras.losses.get(loss) if isinstance(loss, str) else loss()
        out[name] = {"class": type(loss).__name__, "config": loss.get_config(),
                     "loss": model.evaluate(x, y, verbose=0, return_dict=True)["loss"]}
    json.dump(out, open(folder + "/reloaded.json", "w"))
    """
)


def check_sums_save_and_reload(tmp_path, rng):
    """A loss sum with options (its terms logged as metrics) and ``"pixel_cce_dice"`` evaluate
    as the references added, save, and reload in a fresh process on this backend with the same
    configuration and loss."""
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 3, (2, 8, 8)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y_named.npy", y)
    y[:, 0] = 255
    np.save(tmp_path / "y_options.npy", y)
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(3, 1, activation="pixel_softmax")(inputs)
    options = PixelCategoricalCrossentropy(ignore_index=255) + 0.5 * PixelDiceLoss(
        ignore_index=255, classes=[1, 2]
    )
    expected = {}
    for key, loss in (("options", options), ("named", "pixel_cce_dice")):
        model = keras.Model(inputs, outputs)
        metrics = options.term_metrics() if key == "options" else []
        model.compile("sgd", loss=loss, metrics=metrics)
        labels = np.load(tmp_path / f"y_{key}.npy")
        logged = model.evaluate(x, labels, verbose=0, return_dict=True)
        p = np.asarray(model.predict(x, verbose=0), np.float64)
        if key == "options":
            dice = smp_dice(p, labels, ignore_index=255, classes=[1, 2])
            np.testing.assert_allclose(logged["pixel_dice_loss"], dice, rtol=1e-4)
            np.testing.assert_allclose(
                logged["loss"], logged["pixel_categorical_crossentropy"] + 0.5 * dice, rtol=1e-4
            )
        else:
            cce = -np.mean(np.log(np.take_along_axis(p, labels[..., None], -1)))
            np.testing.assert_allclose(logged["loss"], cce + smp_dice(p, labels), rtol=1e-4)
        model.save(tmp_path / f"{key}.keras")
        config = keras.losses.get(loss).get_config() if key == "named" else loss.get_config()
        expected[key] = (json.loads(json.dumps(config)), logged["loss"])
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path)],
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend()},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = json.loads((tmp_path / "reloaded.json").read_text())
    assert reloaded["options"]["class"] == "PixelLossSum"
    assert reloaded["named"]["class"] == "PixelCategoricalCrossentropyDice"
    for key, (config, loss) in expected.items():
        assert reloaded[key]["config"] == config
        assert reloaded[key]["loss"] == pytest.approx(loss, rel=REL)


def check_top_k_matches_numpy(rng, top_k, value_and_grad):
    """``pixel_cce`` with class weights, void pixels and ``top_k``: the value (eagerly and through
    ``value_and_grad``) equals NumPy's; the gradient and the per-pixel map are non-zero exactly
    at the kept pixels (mining ranks before the class weights)."""
    logits = rng.normal(0, 3, (2, 5, 6, 7)).astype(np.float32)
    labels = rng.integers(0, 7, (2, 5, 6))
    labels[rng.uniform(size=labels.shape) < 0.3] = 255
    weights = rng.uniform(0.2, 2.0, 7)
    loss = PixelCategoricalCrossentropy(class_weights=weights, ignore_index=255, top_k=top_k)
    expected = pixel_cce(labels, logits, weights, 255, top_k=top_k)
    np.testing.assert_allclose(loss(labels, pixel_softmax(logits)), expected, rtol=REL)
    value, grad = value_and_grad(lambda z: loss(labels, pixel_softmax(z)), logits)
    np.testing.assert_allclose(value, expected, rtol=REL)
    plain = pixel_cce(labels, logits, ignore_index=255, reduction="none")
    kept = top_k_kept(plain, labels != 255, top_k)
    np.testing.assert_array_equal(np.abs(grad).sum(-1) > 0, kept)
    per_pixel = pixel_categorical_crossentropy(
        labels,
        logits,
        from_logits=True,
        class_weights=weights,
        ignore_index=255,
        top_k=top_k,
        reduction="none",
    )
    np.testing.assert_array_equal(np.asarray(per_pixel) != 0, kept)


# --- metrics with sample_weight -----------------------------------------------------------------


def weighted_confusion(labels, logits, weights, c, ignore_index=255):
    """float64 ``cm[t, p] = Σ sw`` over the counted pixels."""
    predicted = logits.argmax(-1).ravel()
    labels = labels.ravel()
    sw = np.broadcast_to(
        np.asarray(weights, np.float64).reshape(weights.shape + (1,) * (3 - weights.ndim)),
        logits.shape[:-1],
    ).ravel()
    keep = labels != ignore_index
    cm = np.zeros((c, c))
    np.add.at(cm, (labels[keep], predicted[keep]), sw[keep])
    return cm


def exact_counts(counts):
    """The exact pixel counts of a metric's two int32 words, as int64."""
    return counts.high.numpy().astype(np.int64) * 2**_LOW_BITS + counts.low.numpy()


def check_compensated_sums_keep_what_float32_drops():
    """The weighted counts' two float32 words hold 2**25 + 1000 and a thousand 0.1s exactly."""
    metric = PixelAccuracy()
    metric.counts.add(np.array([2.0**25, 0.0], np.float32))
    for _ in range(1000):  # float32 alone: 2**25 + 1 rounds back to 2**25; 0.1s drift by 1e-5
        metric.counts.add(np.array([1.0, 0.1], np.float32))
    high, low = metric.counts.weighted_high.numpy(), metric.counts.weighted_low.numpy()
    got = high.astype(np.float64) + low
    expected = [2.0**25 + 1000, 1000 * np.float64(np.float32(0.1))]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_array_equal(exact_counts(metric.counts), [0, 0])


def check_counts_exact_past_float32():
    """2**24 + 1 pixels of one class: float32 counts would stop at 2**24."""
    metric = PixelAccuracy()
    big = np.zeros((1, 4096, 4096), np.int32)
    metric.update_state(big, np.zeros((1, 4096, 4096, 2), np.float32))
    metric.update_state(np.zeros((1, 1, 1), np.int32), np.zeros((1, 1, 1, 2), np.float32))
    np.testing.assert_array_equal(exact_counts(metric.counts), [2**24 + 1] * 2)
    assert float(metric.result()) == 1.0


def check_counts_carry_past_int32():
    """Five batches of 2**30 + 1 pixels (and one of 2**31 - 1) sum exactly, past int32."""
    iou = PixelIoU(2, class_id=0)
    for _ in range(5):
        iou.counts.add(np.full((2, 2), 2**30 + 1, np.int32))
    iou.counts.add(np.full((2, 2), 2**31 - 1, np.int32))
    expected = 5 * (2**30 + 1) + 2**31 - 1
    np.testing.assert_array_equal(exact_counts(iou.counts), np.full((2, 2), expected))
    assert float(iou.counts.value()[0, 0]) == pytest.approx(expected, rel=1e-7)


def miou(cm):
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    return np.mean(tp[union > 0] / union[union > 0])


def check_metrics_accumulate_weighted_and_unweighted_batches(rng):
    """Mean IoU, accuracy and one class's IoU over four batches, every other one weighted per
    pixel, equal the float64 confusion matrix's; a reset empties them."""
    metrics = [PixelMeanIoU(3, ignore_index=255), PixelAccuracy(ignore_index=255)]
    metrics.append(PixelIoU(3, class_id=1, ignore_index=255))
    total = np.zeros((3, 3))
    for step in range(4):
        logits = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
        labels = rng.integers(0, 3, (2, 16, 16))
        labels[:, :2] = 255
        weights = rng.uniform(0.1, 5.0, (2, 16, 16)) if step % 2 else None
        for metric in metrics:
            metric.update_state(labels, logits, sample_weight=weights)
        ones = np.ones((2, 16, 16)) if weights is None else weights
        total += weighted_confusion(labels, logits, ones, 3)
    np.testing.assert_allclose(float(metrics[0].result()), miou(total), rtol=REL)
    accuracy = np.trace(total) / total.sum()
    np.testing.assert_allclose(float(metrics[1].result()), accuracy, rtol=REL)
    tp = total[1, 1]
    iou_1 = tp / (total[1].sum() + total[:, 1].sum() - tp)
    np.testing.assert_allclose(float(metrics[2].result()), iou_1, rtol=REL)
    for metric in metrics:
        metric.reset_state()
    assert float(metrics[1].result()) == 0.0


def check_weighted_metrics_in_evaluate(rng):
    """``weighted_metrics`` in ``evaluate`` with per-image weights equal NumPy's weighted mIoU."""
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(3, 1, activation="pixel_softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile("sgd", loss="pixel_cce", weighted_metrics=[PixelMeanIoU(3)])
    x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 3, (4, 8, 8))
    sw = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    logged = model.evaluate(x, y, sample_weight=sw, batch_size=2, verbose=0, return_dict=True)
    p = np.asarray(model.predict(x, verbose=0))
    expected = miou(weighted_confusion(y, p, sw, 3))
    assert logged["pixel_miou"] == pytest.approx(expected, rel=REL)
