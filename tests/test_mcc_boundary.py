"""``pixel_mcc`` and ``pixel_boundary`` on TensorFlow (Keras 3 and tf_keras): the tests of
tests/mcc_boundary_cases.py with ``tf.GradientTape``, and TensorFlow's own: graph mode and XLA,
the maps in ``tf.data``, ``tf.distribute``, the opt-in bench cases and the loss specs of
``compare``."""

import numpy as np
import pytest
import tensorflow as tf
from mcc_boundary_cases import *  # noqa: F403  (the tests)
from mcc_boundary_cases import data
from reference import boundary_loss, mcc_loss, softmax

from sm_pixel_ce.flavor import IS_TENSORFLOW, KERAS_FLAVOR
from sm_pixel_ce.losses import PixelBoundaryLoss, PixelMCCLoss, pixel_boundary_targets

pytestmark = pytest.mark.skipif(not IS_TENSORFLOW, reason="the TensorFlow backend's tests")


@pytest.fixture
def value_and_grad():
    def gradient_tape(f, x):
        z = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = f(z)
        return value.numpy(), tape.gradient(value, z).numpy()

    return gradient_tape


@pytest.mark.parametrize(
    "jit", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["graph", "xla"]
)
def test_graph_and_xla(rng, jit):
    """Inside ``tf.function`` (and under XLA: slow, its compile takes 10 s here) the values are
    the eager ones."""
    logits, labels = data(rng)
    mcc, boundary = PixelMCCLoss(ignore_index=255), PixelBoundaryLoss(ignore_index=255)
    expected = mcc_loss(softmax(logits), labels, ignore_index=255) + boundary_loss(
        softmax(logits), labels, ignore_index=255
    )
    step = tf.function(
        lambda y, z: mcc(y, tf.nn.softmax(z)) + boundary(y, tf.nn.softmax(z)), jit_compile=jit
    )
    np.testing.assert_allclose(step(labels, logits), expected, rtol=1e-5)


@pytest.mark.one_flavor
def test_compare_specs_take_them_and_all_does_not_grow():
    from sm_pixel_ce.compare.specs import parse_spec
    from sm_pixel_ce.compare.variants import VARIANTS, expand_variants

    spec = parse_spec("pixel_dice+0.5*pixel_boundary(classes=[1],alpha=0.1)+pixel_mcc(eps=0.01)")
    assert [t.name for t in spec.terms] == ["pixel_dice", "pixel_boundary", "pixel_mcc"]
    assert spec.terms[1].weight == 0.5 and dict(spec.terms[1].options)["classes"] == [1]
    everything = " ".join(expand_variants(("all",)))
    assert "mcc" not in everything and "boundary" not in everything
    assert not any("mcc" in v or "boundary" in v for v in VARIANTS)
    with pytest.raises(ValueError, match="alpha"):
        parse_spec("pixel_boundary(alpha=-1)")


def test_targets_in_tf_data(rng):
    """``pixel_boundary_targets`` maps a ``tf.data`` pipeline of single masks, as the loss wants."""
    _, labels = data(rng)
    dataset = tf.data.Dataset.from_tensor_slices(labels).map(
        lambda y: pixel_boundary_targets(y, 3, ignore_index=255)
    )
    maps = np.stack(list(dataset.as_numpy_iterator()))
    np.testing.assert_array_equal(
        np.isnan(maps), np.isnan(pixel_boundary_targets(labels, 3, ignore_index=255))
    )
    np.testing.assert_allclose(
        np.nan_to_num(maps), np.nan_to_num(pixel_boundary_targets(labels, 3, ignore_index=255))
    )


@pytest.mark.xdist_group("mirrored")  # one worker runs the 2-CPU checks' process
def test_boundary_and_mcc_are_global_under_mirrored_strategy(mirrored_reports):
    """tests/boundary_distributed_check.py, in the 2-CPU checks' fresh process (the logical
    devices are set before TensorFlow starts; tests/conftest.py): on 2 replicas that count very
    different pixels, the custom loop's summed values and the gradients, and ``fit``'s losses and
    weights, are one device's, in either flavour (the process inherits TF_USE_LEGACY_KERAS)."""
    report = mirrored_reports["boundary"]
    assert report["replicas"] == 2 and report["flavor"] == KERAS_FLAVOR
    for name in ("boundary", "dice_boundary_from_maps", "mcc"):
        entry = report[name]
        np.testing.assert_allclose(entry["custom_loop"], entry["single"], rtol=1e-5, err_msg=name)
        assert entry["max_gradient_difference"] <= 1e-5 * entry["max_gradient"], name
        # Averaging the replicas' own losses would give another value on these data.
        assert abs(entry["per_replica_mean"] - entry["single"]) > 0.01, name
    for name in ("boundary", "dice_boundary_from_maps"):
        entry = report[name]
        np.testing.assert_allclose(entry["fit_distributed"], entry["fit_single"], rtol=1e-5)
        assert entry["max_relative_weight_difference"] <= 1e-5, name
