"""Issue #31's cross-entropy options under ``KERAS_BACKEND=jax`` (values and gradients through
``jax.jit(jax.value_and_grad)``) against tests/reference.py; the cases are shared with the
TensorFlow and torch files (tests/focal_alpha_ohem_cases.py). Run with ``KERAS_BACKEND=jax
python -m pytest -m jax tests/test_jax_focal_alpha_ohem.py``."""

import pytest
from focal_alpha_ohem_cases import (
    check_focal_alpha_bce,
    check_focal_alpha_cce,
    check_ohem,
    check_pos_weight,
)

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]


def value_and_grad(f, x):
    import jax

    return jax.jit(jax.value_and_grad(f))(x)


def test_focal_alpha_cce():
    check_focal_alpha_cce(value_and_grad)


def test_focal_alpha_bce():
    check_focal_alpha_bce(value_and_grad)


def test_pos_weight():
    check_pos_weight(value_and_grad)


def test_ohem():
    check_ohem(value_and_grad)
