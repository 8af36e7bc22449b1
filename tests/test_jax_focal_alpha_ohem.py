"""Issue #31's cross-entropy options under ``KERAS_BACKEND=jax`` (values and gradients through
``jax.jit(jax.value_and_grad)``) against tests/reference.py; the cases are shared with the
TensorFlow and torch files (tests/focal_alpha_ohem_cases.py). Run with ``KERAS_BACKEND=jax
python -m pytest -m jax tests/test_jax_focal_alpha_ohem.py``."""

import pytest
from focal_alpha_ohem_cases import CHECKS

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]


def value_and_grad(f, x):
    import jax

    return jax.jit(jax.value_and_grad(f))(x)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_matches_the_references(check):
    check(value_and_grad)
