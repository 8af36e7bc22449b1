"""``pixel_mcc`` and ``pixel_boundary`` under ``KERAS_BACKEND=jax``: values and gradients (eager
and under ``jax.jit``) against tests/reference.py, the label forms, bad input, the ``alpha`` ramp in
``fit``, the names and save/reload (tests/mcc_boundary_cases.py). Run with
``KERAS_BACKEND=jax python -m pytest -m jax tests/test_jax_mcc_boundary.py``."""

import pytest
from mcc_boundary_cases import (
    BOUNDARY_CASES,
    MCC_CASES,
    check_alpha_ramp_in_fit,
    check_bad_input,
    check_binary_mcc_is_smp,
    check_boundary,
    check_kervadec_surface_loss,
    check_label_forms,
    check_maps_from_the_pipeline,
    check_mcc,
    check_names_save_and_reload,
    check_reduction_none_and_dtype,
    check_sample_weight_as_ignore,
)

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]

if BACKEND == "jax":
    import jax


def jitted_value_and_grad(f, x):
    return jax.jit(jax.value_and_grad(f))(x)


@pytest.mark.parametrize("case, options", MCC_CASES)
def test_mcc_equals_reference(rng, case, options):
    check_mcc(rng, options, jitted_value_and_grad)


@pytest.mark.parametrize("case, options", BOUNDARY_CASES)
def test_boundary_equals_reference(rng, case, options):
    check_boundary(rng, options, jitted_value_and_grad)


def test_binary_mcc_sample_weight_and_label_forms(rng):
    check_binary_mcc_is_smp(rng)
    check_sample_weight_as_ignore(rng)
    check_label_forms(rng)


def test_kervadec_surface_loss_and_reductions(rng):
    check_kervadec_surface_loss(rng)
    check_reduction_none_and_dtype(rng)


def test_bad_input():
    check_bad_input()


def test_alpha_ramp_in_fit(rng):
    check_alpha_ramp_in_fit(rng)


def test_names_save_and_reload(tmp_path, rng):
    check_names_save_and_reload(tmp_path, rng)


def test_maps_from_the_pipeline(rng):
    # Eager: the same values as under jit (the cases above), without four more compiles.
    check_maps_from_the_pipeline(rng, lambda f, x: jax.value_and_grad(f)(x))
