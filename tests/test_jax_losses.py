"""The region losses (Dice, Jaccard, Tversky, Lovász), loss sums, top_k and the metrics'
sample_weight under ``KERAS_BACKEND=jax``: values and gradients against the float64 NumPy ports of
segmentation_models_pytorch (tests/reference.py), eagerly and under ``jax.jit``, with the
TensorFlow path's error texts. Run with ``KERAS_BACKEND=jax python -m pytest -m jax
tests/test_jax_losses.py``; skipped on TensorFlow."""

import numpy as np
import pytest
from backend_cases import (
    CASES,
    FUNCTIONS,
    LABELS,
    PROBS,
    REL,
    C,
    check_against_reference,
    check_bad_input_raises_the_tensorflow_texts,
    check_class_weight_errors,
    check_compensated_sums_keep_what_float32_drops,
    check_hand_checked_ideal_and_worst,
    check_label_forms_axis_and_precision,
    check_metrics_accumulate_weighted_and_unweighted_batches,
    check_sample_weight_weights_pixels_in_the_sums,
    check_sum_equals_the_references_added,
    check_sums_save_and_reload,
    check_top_k_matches_numpy,
    check_weighted_metrics_in_evaluate,
    region_data,
    weighted_confusion,
    without_void,
)
from reference import hardest_tie_cases, pixel_bce, pixel_cce

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]

if BACKEND == "jax":
    import jax

    from sm_pixel_ce import PixelBinaryCrossentropy, pixel_categorical_crossentropy
    from sm_pixel_ce.metrics import pixel_confusion_matrix


@pytest.fixture
def data(rng):
    return region_data(rng)


def jitted_value_and_grad(f, x):
    return jax.jit(jax.value_and_grad(f))(x)


@pytest.mark.parametrize("name, options", CASES)
def test_region_losses_equal_smp(data, name, options):
    logits, labels = data
    labels = labels if "ignore_index" in options else without_void(labels)
    check_against_reference(name, labels, logits, options, jitted_value_and_grad)


@pytest.mark.parametrize("name", ["dice", "tversky", "lovasz"])
def test_label_forms_axis_and_precision(data, name):
    check_label_forms_axis_and_precision(name, *data)


def test_hand_checked_ideal_and_worst():
    check_hand_checked_ideal_and_worst()


def test_sample_weight_weights_pixels_in_the_sums(data):
    check_sample_weight_weights_pixels_in_the_sums(*data)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_bad_input_raises_the_tensorflow_texts_eagerly_and_in_jit(fn):
    check_bad_input_raises_the_tensorflow_texts(fn)
    logits = np.full((2, 4, 4, 3), 3.0, np.float32)
    for y_true, y_pred, match in (
        (np.full((2, 4, 4), 5), PROBS, "integer mask out of range"),
        (LABELS, logits, "from_logits=False, but the predictions lie outside"),
    ):
        with pytest.raises(Exception, match="ValueError: .*" + match):  # a JaxRuntimeError
            jax.block_until_ready(jax.jit(fn)(y_true, y_pred))


def test_class_weight_errors():
    check_class_weight_errors()


# --- loss sums ---------------------------------------------------------------------------------


def test_sum_equals_the_references_added(data):
    logits, labels = data
    check_sum_equals_the_references_added(labels, logits, jitted_value_and_grad)


def test_sums_log_terms_save_and_reload_in_a_fresh_process(tmp_path, rng):
    check_sums_save_and_reload(tmp_path, rng)


# --- top_k --------------------------------------------------------------------------------------


class TestTopK:
    @pytest.mark.parametrize("top_k", [0.05, 0.3, 0.99])
    def test_matches_numpy_eagerly_and_in_jit(self, rng, top_k):
        check_top_k_matches_numpy(rng, top_k, jitted_value_and_grad)

    def test_kept_count_is_the_ceiling_and_ties_keep_the_earliest(self, rng):
        logits = rng.normal(0, 3, (1, 2, 5, 4)).astype(np.float32)
        labels = rng.integers(0, 4, (1, 2, 5))
        per_pixel = jax.jit(
            lambda t, z: pixel_categorical_crossentropy(
                t, z, from_logits=True, top_k=0.3, reduction="none", ignore_index=255
            )
        )(labels, logits)
        assert int(np.sum(np.asarray(per_pixel) != 0)) == 3  # ⌈0.3·10⌉, not 4
        tied = np.zeros((2, 3, 3, 4), np.float32)  # every pixel's loss is ln 4
        tied_labels = np.arange(18).reshape(2, 3, 3) % 4
        for top_k in (0.25, 0.5, 0.6):
            got = pixel_categorical_crossentropy(
                tied_labels, tied, from_logits=True, class_weights=[1, 2, 3, 4], top_k=top_k
            )
            expected = pixel_cce(tied_labels, tied, [1, 2, 3, 4], top_k=top_k)
            np.testing.assert_allclose(got, expected, rtol=1e-6)

    def test_hardest_keeps_a_stable_argsorts_pixels_among_many_ties(self, rng):
        """The hook of ``top_k`` and of OHEM's ``min_kept`` (the k-th largest loss from
        ``lax.top_k``, then the earliest of the pixels equal to it), in ``jit`` (k known when
        every pixel counts, else only in the step; eagerly as the former), keeps exactly the
        pixels of a NumPy stable argsort: ties, -0.0, +inf and NaN, pixels that do not count,
        k past n, k = 0."""
        from sm_pixel_ce._backend import hooks

        jitted = jax.jit(hooks.hardest, static_argnames="top_k")
        for losses, counted, top_k, count, expected in hardest_tie_cases(rng):
            count = None if count is None else np.int32(count)
            kept = jitted(losses, counted, top_k=top_k, count=count)
            np.testing.assert_array_equal(kept, expected, err_msg=f"{top_k=} {count=}")

    def test_dense_labels_and_bce(self, data):
        logits, labels = data
        labels = without_void(labels)
        y = np.eye(C, dtype=np.float32)[labels]
        y[0, 0] = 0.0  # unlabelled pixels do not count
        masked = labels.copy()
        masked[0, 0] = 255
        got = pixel_categorical_crossentropy(y, logits, from_logits=True, top_k=0.4)
        np.testing.assert_allclose(
            got, pixel_cce(masked, logits, ignore_index=255, top_k=0.4), rtol=REL
        )
        valid = masked != 255
        expected = pixel_bce(
            np.eye(C)[np.where(valid, masked, 0)], logits, valid, gamma=2.0, top_k=0.25
        )
        bce = PixelBinaryCrossentropy(ignore_index=255, focal_gamma=2.0, top_k=0.25)
        np.testing.assert_allclose(bce(masked, jax.nn.sigmoid(logits)), expected, rtol=1e-4)
        jitted = jax.jit(lambda t, z: bce(t, jax.nn.sigmoid(z)))(masked, logits)
        np.testing.assert_allclose(jitted, expected, rtol=1e-4)


# --- metrics with sample_weight -----------------------------------------------------------------


class TestWeightedMetrics:
    def test_confusion_matrix_equals_numpy(self, rng):
        logits = rng.normal(size=(2, 40, 60, 3)).astype(np.float32)
        labels = rng.integers(0, 3, (2, 40, 60))
        labels[:, 0] = 255
        for weights in (rng.uniform(0, 3, 2), rng.uniform(0, 3, (2, 40, 60))):
            weights = weights.astype(np.float32)
            expected = weighted_confusion(labels, logits, weights, 3)
            for cm in (
                pixel_confusion_matrix(labels, logits, 3, 255, sample_weight=weights),
                jax.jit(lambda t, z, w: pixel_confusion_matrix(t, z, 3, 255, sample_weight=w))(
                    labels, logits, weights
                ),
            ):
                np.testing.assert_allclose(cm, expected, rtol=2e-6)

    def test_metrics_accumulate_weighted_and_unweighted_batches(self, rng):
        check_metrics_accumulate_weighted_and_unweighted_batches(rng)

    def test_compensated_sums_keep_what_float32_drops(self):
        check_compensated_sums_keep_what_float32_drops()

    def test_weighted_metrics_in_evaluate(self, rng):
        check_weighted_metrics_in_evaluate(rng)
