"""PixelMeanIoU, PixelAccuracy, PixelIoU and pixel_metrics against NumPy confusion-matrix
references."""

import os
import warnings

import numpy as np
import pytest
import tensorflow as tf
from backend_cases import (
    check_compensated_sums_keep_what_float32_drops,
    check_counts_carry_past_int32,
    check_counts_exact_past_float32,
    check_metrics_accumulate_weighted_and_unweighted_batches,
)

import sm_pixel_ce
from sm_pixel_ce import PixelAccuracy, PixelIoU, PixelMeanIoU, pixel_metrics
from sm_pixel_ce.flavor import IS_KERAS_3, keras
from sm_pixel_ce.metrics import pixel_confusion_matrix
from sm_pixel_ce.scores import confusion_matrix, scores_from_confusion


def np_confusion(labels, predicted, num_classes, ignore_index=None, weights=None):
    """cm[t, p] written from the definition: a loop over counted pixels."""
    labels, predicted = np.ravel(labels), np.ravel(predicted)
    weights = np.ones(labels.shape) if weights is None else np.ravel(weights).astype(np.float64)
    cm = np.zeros((num_classes, num_classes))
    for t, p, w in zip(labels, predicted, weights):
        if ignore_index is not None and t == ignore_index:
            continue
        cm[t, p] += w
    return cm


def np_mean_iou(cm):
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean()) if present.any() else 0.0


def np_class_iou(cm, k):
    """tp / (tp + fp + fn) of class k; 0 when k is in neither labels nor predictions."""
    tp, fp, fn = cm[k, k], cm[:, k].sum() - cm[k, k], cm[k, :].sum() - cm[k, k]
    return float(tp / (tp + fp + fn)) if tp + fp + fn else 0.0


def np_accuracy(cm):
    return float(np.trace(cm) / cm.sum()) if cm.sum() else 0.0


def batch(rng, n=2, size=5, classes=4, ignore_index=None):
    scores = rng.normal(size=(n, size, size, classes)).astype("float32")
    labels = rng.integers(0, classes, size=(n, size, size))
    if ignore_index is not None:
        labels[rng.random(labels.shape) < 0.2] = ignore_index
    return labels, scores


class TestPixelConfusionMatrix:
    def test_integer_mask_with_ignore_index(self, rng):
        labels, scores = batch(rng, ignore_index=255)
        cm = pixel_confusion_matrix(labels, scores, num_classes=4, ignore_index=255)
        expected = np_confusion(labels, scores.argmax(-1), 4, ignore_index=255)
        np.testing.assert_array_equal(cm.numpy(), expected)

    def test_one_hot_labels_and_unlabelled_pixels(self, rng):
        labels, scores = batch(rng)
        one_hot = np.eye(4, dtype="float32")[labels]
        one_hot[0, 0, :3] = 0.0  # unlabelled pixels: not counted
        cm = pixel_confusion_matrix(one_hot, scores)
        expected = np_confusion(labels, scores.argmax(-1), 4, weights=one_hot.sum(-1))
        np.testing.assert_array_equal(cm.numpy(), expected)

    def test_channels_first(self, rng):
        labels, scores = batch(rng)
        cm = pixel_confusion_matrix(labels, np.moveaxis(scores, -1, 1), axis=1)
        np.testing.assert_array_equal(cm.numpy(), np_confusion(labels, scores.argmax(-1), 4))

    def test_class_count_mismatch(self, rng):
        labels, scores = batch(rng)
        with pytest.raises(ValueError, match="expected num_classes=5"):
            pixel_confusion_matrix(labels, scores, num_classes=5)

    def test_out_of_range_mask(self, rng):
        labels, scores = batch(rng)
        labels[0, 0, 0] = 9
        with pytest.raises(ValueError, match="out of range"):
            pixel_confusion_matrix(labels, scores)


class TestPixelMeanIoU:
    def test_streaming_is_exact_over_batches(self, rng):
        metric = PixelMeanIoU(num_classes=4, ignore_index=255)
        everything = []
        for size in (5, 3):
            labels, scores = batch(rng, size=size, ignore_index=255)
            metric.update_state(labels, scores)
            everything.append((labels.ravel(), scores.argmax(-1).ravel()))
        labels = np.concatenate([e[0] for e in everything])
        predicted = np.concatenate([e[1] for e in everything])
        expected = np_mean_iou(np_confusion(labels, predicted, 4, ignore_index=255))
        assert float(metric.result()) == pytest.approx(expected, abs=1e-6)

    def test_hand_checked(self):
        # labels [0 0 1 1], predicted [0 1 1 1]: IoU0 = 1/2, IoU1 = 2/3; class 2 absent -> skipped.
        labels = np.array([[[0, 0, 1, 1]]])
        scores = np.eye(3, dtype="float32")[[[[0, 1, 1, 1]]]]
        metric = PixelMeanIoU(num_classes=3)
        metric.update_state(labels, scores)
        assert float(metric.result()) == pytest.approx((1 / 2 + 2 / 3) / 2)

    def test_equals_keras_mean_iou(self, rng):
        labels, scores = batch(rng, size=8, classes=5)
        ours = PixelMeanIoU(num_classes=5)
        ours.update_state(labels, scores)
        oracle = keras.metrics.MeanIoU(num_classes=5)
        oracle.update_state(labels.ravel(), scores.argmax(-1).ravel())
        assert float(ours.result()) == pytest.approx(float(oracle.result()), abs=1e-6)

    def test_sample_weighted(self, rng):
        labels, scores = batch(rng)
        weights = np.array([1.0, 3.0])
        metric = PixelMeanIoU(num_classes=4)
        metric.update_state(labels, scores, sample_weight=weights)
        pixel_weights = np.broadcast_to(weights[:, None, None], labels.shape)
        expected = np_mean_iou(np_confusion(labels, scores.argmax(-1), 4, weights=pixel_weights))
        assert float(metric.result()) == pytest.approx(expected, abs=1e-6)

    def test_reset_and_empty(self, rng):
        metric = PixelMeanIoU(num_classes=4, ignore_index=255)
        metric.update_state(*batch(rng))
        metric.reset_state()
        assert float(metric.result()) == 0.0
        metric.update_state(np.full((1, 2, 2), 255), np.zeros((1, 2, 2, 4), "float32"))
        assert float(metric.result()) == 0.0

    def test_config(self):
        metric = PixelMeanIoU(num_classes=7, ignore_index=255, axis=1, name="miou")
        config = metric.get_config()
        assert {k: config[k] for k in ("num_classes", "ignore_index", "axis", "name")} == {
            "num_classes": 7,
            "ignore_index": 255,
            "axis": 1,
            "name": "miou",
        }
        clone = keras.metrics.deserialize(keras.metrics.serialize(metric))
        assert isinstance(clone, PixelMeanIoU)
        assert (clone.num_classes, clone.ignore_index, clone.axis, clone.name) == (
            7,
            255,
            1,
            "miou",
        )

    def test_default_name(self):
        assert PixelMeanIoU(num_classes=3).name == "pixel_miou"

    @pytest.mark.parametrize("bad", [None, 1, 2.5, True])
    def test_bad_num_classes(self, bad):
        with pytest.raises(ValueError, match="num_classes"):
            PixelMeanIoU(num_classes=bad)


class TestPixelAccuracy:
    def test_streaming_is_exact_over_batches(self, rng):
        metric = PixelAccuracy(ignore_index=255)
        total = np.zeros((4, 4))
        for size in (6, 2):
            labels, scores = batch(rng, size=size, ignore_index=255)
            metric.update_state(labels, scores)
            total += np_confusion(labels, scores.argmax(-1), 4, ignore_index=255)
        assert float(metric.result()) == pytest.approx(np_accuracy(total), abs=1e-6)

    def test_one_hot_equals_keras_categorical_accuracy(self, rng):
        labels, scores = batch(rng, size=6)
        metric = PixelAccuracy()
        metric.update_state(np.eye(4, dtype="float32")[labels], scores)
        oracle = keras.metrics.CategoricalAccuracy()
        oracle.update_state(np.eye(4, dtype="float32")[labels.ravel()], scores.reshape(-1, 4))
        assert float(metric.result()) == pytest.approx(float(oracle.result()), abs=1e-6)

    def test_default_name_and_config(self):
        metric = PixelAccuracy(ignore_index=0)
        assert metric.name == "pixel_accuracy"
        clone = PixelAccuracy.from_config(metric.get_config())
        assert (clone.ignore_index, clone.axis, clone.name) == (0, -1, "pixel_accuracy")


@pytest.mark.skipif(
    not IS_KERAS_3, reason="tf_keras wraps a metric class given by string as a function"
)
def test_string_names_in_keras3():
    assert isinstance(keras.metrics.get("pixel_accuracy"), PixelAccuracy)


@pytest.mark.parametrize("extension", [".keras", ".h5"])
def test_model_reloads_with_metrics(tmp_path, rng, extension):
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(4, 1, activation="pixel_softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        "adam", loss="pixel_cce", metrics=[PixelMeanIoU(4, ignore_index=255), PixelAccuracy()]
    )
    images = rng.random((2, 8, 8, 3)).astype("float32")
    masks = rng.integers(0, 4, (2, 8, 8))
    model.fit(images, masks, epochs=1, verbose=0)
    path = str(tmp_path / f"model{extension}")
    model.save(path)
    reloaded = keras.models.load_model(path)
    logs = reloaded.evaluate(images, masks, verbose=0, return_dict=True)
    cm = np_confusion(masks, model.predict(images, verbose=0).argmax(-1), 4)
    assert logs["pixel_miou"] == pytest.approx(np_mean_iou(cm), abs=1e-5)
    assert logs["pixel_accuracy"] == pytest.approx(np_accuracy(cm), abs=1e-5)


class TestPixelIoU:
    @pytest.mark.parametrize("labels_as", ["integer", "integer_with_channel", "one_hot"])
    def test_streaming_over_batches(self, rng, labels_as):
        metrics = [PixelIoU(4, k, ignore_index=255) for k in range(4)]
        total = np.zeros((4, 4))
        for size in (5, 3, 4):
            labels, scores = batch(rng, size=size, ignore_index=255)
            if labels_as == "one_hot":  # an ignored pixel is an all-zero (unlabelled) row
                y_true = np.vstack([np.eye(4, dtype="float32"), np.zeros((252, 4), "float32")])
                y_true = y_true[labels]
            elif labels_as == "integer_with_channel":
                y_true = labels[..., None]
            else:
                y_true = labels
            for metric in metrics:
                metric.update_state(y_true, scores)
            total += np_confusion(labels, scores.argmax(-1), 4, ignore_index=255)
        for k, metric in enumerate(metrics):
            assert float(metric.result()) == pytest.approx(np_class_iou(total, k), abs=1e-6)

    def test_ignore_index_is_not_counted(self):
        # Ignored pixels predicted as class 1 would add false positives to class 1 if counted.
        labels = np.array([[[0, 1, 255, 255]]])
        scores = np.eye(2, dtype="float32")[[[[0, 1, 1, 1]]]]
        metric = PixelIoU(2, 1, ignore_index=255)
        metric.update_state(labels, scores)
        assert float(metric.result()) == 1.0

    def test_hand_checked_and_absent_class(self):
        # labels [0 0 1 1], predicted [0 1 1 1]: IoU0 = 1/2, IoU1 = 2/3, class 2 absent -> 0.
        labels = np.array([[[0, 0, 1, 1]]])
        scores = np.eye(3, dtype="float32")[[[[0, 1, 1, 1]]]]
        results = []
        for k in range(3):
            metric = PixelIoU(num_classes=3, class_id=k)
            metric.update_state(labels, scores)
            results.append(float(metric.result()))
        assert results == pytest.approx([1 / 2, 2 / 3, 0.0])

    def test_equals_keras_iou(self, rng):
        labels, scores = batch(rng, size=8, classes=5)
        ours = PixelIoU(num_classes=5, class_id=2)
        ours.update_state(labels, scores)
        oracle = keras.metrics.IoU(num_classes=5, target_class_ids=[2])
        oracle.update_state(labels.ravel(), scores.argmax(-1).ravel())
        assert float(ours.result()) == pytest.approx(float(oracle.result()), abs=1e-6)

    def test_sample_weighted_channels_first(self, rng):
        labels, scores = batch(rng)
        weights = np.array([1.0, 3.0])
        metric = PixelIoU(4, 1, axis=1)
        metric.update_state(labels, np.moveaxis(scores, -1, 1), sample_weight=weights)
        pixel_weights = np.broadcast_to(weights[:, None, None], labels.shape)
        cm = np_confusion(labels, scores.argmax(-1), 4, weights=pixel_weights)
        assert float(metric.result()) == pytest.approx(np_class_iou(cm, 1), abs=1e-6)

    def test_reset(self, rng):
        metric = PixelIoU(4, 0)
        metric.update_state(*batch(rng))
        metric.reset_state()
        assert float(metric.result()) == 0.0

    def test_default_name_and_config(self):
        metric = PixelIoU(7, 3, ignore_index=255, axis=1)
        assert metric.name == "iou_3"
        config = metric.get_config()
        assert {k: config[k] for k in ("num_classes", "class_id", "ignore_index", "axis")} == {
            "num_classes": 7,
            "class_id": 3,
            "ignore_index": 255,
            "axis": 1,
        }
        for clone in (
            PixelIoU.from_config(config),
            keras.metrics.deserialize(keras.metrics.serialize(metric)),
        ):
            assert isinstance(clone, PixelIoU)
            assert clone.get_config() == config

    def test_registered(self):
        assert sm_pixel_ce.get("pixel_iou") is PixelIoU

    @pytest.mark.parametrize("bad", [-1, 4, 2.0, True, None, "1"])
    def test_bad_class_id(self, bad):
        with pytest.raises(ValueError, match=r"class_id` must be an integer in \[0, 4\)") as error:
            PixelIoU(num_classes=4, class_id=bad)
        assert f"Received: class_id={bad!r}" in str(error.value)

    def test_bad_num_classes(self):
        with pytest.raises(ValueError, match="num_classes"):
            PixelIoU(num_classes=1, class_id=0)


class TestPixelMetrics:
    def test_contents(self):
        metrics = pixel_metrics(3, ignore_index=255, axis=1)
        assert [type(m) for m in metrics] == [PixelMeanIoU, PixelAccuracy, *[PixelIoU] * 3]
        assert [m.name for m in metrics] == [
            "pixel_miou",
            "pixel_accuracy",
            "iou_0",
            "iou_1",
            "iou_2",
        ]
        assert [m.class_id for m in metrics[2:]] == [0, 1, 2]
        assert all((m.ignore_index, m.axis) == (255, 1) for m in metrics)

    @pytest.mark.parametrize(
        "class_name, expected",
        [
            ("Traffic sign", "iou_traffic_sign"),
            ("road", "iou_road"),
            ("(void)", "iou_void"),
            ("Sky / cloud", "iou_sky_cloud"),
            ("Café-2", "iou_caf_2"),
            (" 7 ", "iou_7"),
        ],
    )
    def test_names_are_sanitised(self, class_name, expected):
        metrics = pixel_metrics(2, class_names=[class_name, "other"])
        assert metrics[2].name == expected

    def test_duplicate_names(self):
        with pytest.raises(ValueError, match="'Car'.*'car '.*'iou_car'"):
            pixel_metrics(3, class_names=["Car", "road", "car "])

    @pytest.mark.parametrize(
        "class_names, message",
        [
            (["a", "b"], "Received 2 names"),
            ("abc", "must be a list of 3 strings"),
            (["a", "b", 3], r"class_names\[2\]=3"),
            (["a", "!!", "c"], "ASCII letter or digit"),
        ],
    )
    def test_bad_class_names(self, class_names, message):
        with pytest.raises(ValueError, match=message):
            pixel_metrics(3, class_names=class_names)


CLASS_NAMES = ["Background", "Traffic sign", "car"]
IOU_NAMES = ["iou_background", "iou_traffic_sign", "iou_car"]


def tiny_model(rng, ignore_index=255):
    """A 1x1 Conv2D + pixel_softmax on 16 px, compiled with pixel_metrics, and 3 batches of data
    with void pixels."""
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Conv2D(3, 1, activation="pixel_softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        "adam",
        loss=sm_pixel_ce.PixelCategoricalCrossentropy(ignore_index=ignore_index),
        metrics=pixel_metrics(3, ignore_index=ignore_index, class_names=CLASS_NAMES),
    )
    images = rng.random((6, 16, 16, 3)).astype("float32")
    masks = rng.integers(0, 3, (6, 16, 16))
    masks[:, :, :2] = ignore_index
    return model, images, masks


def compiled_metrics(model):
    """name -> config of the sm_pixel_ce metrics a (used) model was compiled with."""
    flat = [leaf for m in model.metrics for leaf in (getattr(m, "metrics", None) or [m])]
    return {
        m.name: m.get_config()
        for m in flat
        if isinstance(m, (PixelIoU, PixelMeanIoU, PixelAccuracy))
    }


def test_per_class_iou_in_fit_and_evaluate_logs(rng):
    model, images, masks = tiny_model(rng)
    history = model.fit(
        images, masks, batch_size=2, epochs=1, verbose=0, validation_data=(images, masks)
    ).history
    for name in ["pixel_miou", "pixel_accuracy", *IOU_NAMES]:
        assert name in history and f"val_{name}" in history
    logs = model.evaluate(images, masks, batch_size=2, verbose=0, return_dict=True)
    cm = np_confusion(masks, model.predict(images, verbose=0).argmax(-1), 3, ignore_index=255)
    for k, name in enumerate(IOU_NAMES):
        assert logs[name] == pytest.approx(np_class_iou(cm, k), abs=1e-5)
    assert logs["pixel_miou"] == pytest.approx(np_mean_iou(cm), abs=1e-5)
    assert logs["pixel_accuracy"] == pytest.approx(np_accuracy(cm), abs=1e-5)


@pytest.mark.parametrize("extension", [".keras", ".h5"])
@pytest.mark.parametrize("loader", ["sm_pixel_ce", "keras"])
def test_pixel_metrics_survive_reload(tmp_path, rng, extension, loader):
    model, images, masks = tiny_model(rng)
    model.fit(images, masks, batch_size=2, epochs=1, verbose=0)
    before = model.evaluate(images, masks, batch_size=2, verbose=0, return_dict=True)
    path = tmp_path / f"model{extension}"
    model.save(str(path))
    load = sm_pixel_ce.load_model if loader == "sm_pixel_ce" else keras.models.load_model
    reloaded = load(str(path))
    after = reloaded.evaluate(images, masks, batch_size=2, verbose=0, return_dict=True)
    assert set(IOU_NAMES) <= set(after)
    assert after == pytest.approx(before, abs=1e-5)
    assert compiled_metrics(reloaded) == compiled_metrics(model)
    assert [
        config["class_id"] for config in compiled_metrics(reloaded).values() if "class_id" in config
    ] == [0, 1, 2]


def test_keras_pixel_miou_agrees_where_defined(rng):
    # The streaming Keras metric (tensors) and the NumPy scores give one mIoU.
    labels = rng.integers(0, 4, (2, 6, 6))
    labels[0, 0] = 255
    logits = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    metric = PixelMeanIoU(num_classes=4, ignore_index=255)
    metric.update_state(labels, logits)
    expected = scores_from_confusion(confusion_matrix(labels, logits.argmax(-1), 4, 255))["miou"]
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


# --- the counts: one rule on every backend (tests/backend_cases.py runs them on JAX and torch) ---


def test_counts_exact_past_float32():
    check_counts_exact_past_float32()


def test_counts_carry_past_int32():
    check_counts_carry_past_int32()


def test_compensated_sums_keep_what_float32_drops():
    check_compensated_sums_keep_what_float32_drops()


def test_metrics_accumulate_weighted_and_unweighted_batches(rng):
    check_metrics_accumulate_weighted_and_unweighted_batches(rng)


def test_weighted_counts_in_a_graph_of_unknown_batch_size(rng):
    # Where TensorFlow knows the pixel count only when the graph runs: 3 chunks of 1,024 pixels.
    labels, scores = batch(rng, n=3, size=32, ignore_index=255)
    weights = rng.uniform(0.5, 2.0, labels.shape).astype("float32")
    spec = [tf.TensorSpec((None, 32, 32), tf.int64), tf.TensorSpec((None, 32, 32, 4))]
    confusion = tf.function(
        lambda y, z, w: pixel_confusion_matrix(y, z, 4, 255, sample_weight=w),
        input_signature=[*spec, tf.TensorSpec((None, 32, 32))],
    )
    expected = np_confusion(labels, scores.argmax(-1), 4, ignore_index=255, weights=weights)
    np.testing.assert_allclose(confusion(labels, scores, weights), expected, rtol=1e-6)
    counts = tf.function(lambda y, z: pixel_confusion_matrix(y, z, 4, 255), input_signature=spec)
    np.testing.assert_array_equal(
        counts(labels, scores), np_confusion(labels, scores.argmax(-1), 4, ignore_index=255)
    )


# A SavedModel of tf_keras whose checkpoint holds each count of a metric as one float64 variable
# (``confusion``; ``correct`` and ``counted``), the layout until the counts took one rule on every
# backend: a model (a 1x1 Conv2D + pixel_softmax, 8x8x3 inputs, compiled with
# PixelMeanIoU(3, ignore_index=255), PixelAccuracy(), PixelIoU(3, 1), fitted one step on
# default_rng(0)'s data) saved by tf_keras at commit 097e9c6.
LEGACY_SAVEDMODEL = os.path.join(os.path.dirname(__file__), "data", "metrics_097e9c6_savedmodel")


@pytest.mark.skipif(IS_KERAS_3, reason="Keras 3 reads no SavedModel")
def test_earlier_tf_keras_savedmodel_loads(rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = sm_pixel_ce.load_model(LEGACY_SAVEDMODEL)  # keras.models.load_model underneath
    images = rng.random((2, 8, 8, 3)).astype("float32")
    masks = rng.integers(0, 3, (2, 8, 8))
    logs = model.evaluate(images, masks, verbose=0, return_dict=True)
    cm = np_confusion(masks, model.predict(images, verbose=0).argmax(-1), 3)
    assert logs["pixel_miou"] == pytest.approx(np_mean_iou(cm), abs=1e-6)
    assert logs["pixel_accuracy"] == pytest.approx(np_accuracy(cm), abs=1e-6)
