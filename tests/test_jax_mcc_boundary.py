"""``pixel_mcc`` and ``pixel_boundary`` under ``KERAS_BACKEND=jax``: the tests of
tests/mcc_boundary_cases.py with ``jax.value_and_grad`` under ``jax.jit``. Run with
``KERAS_BACKEND=jax python -m pytest -m jax tests/test_jax_mcc_boundary.py``."""

import pytest
from mcc_boundary_cases import *  # noqa: F403  (the tests)

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]


@pytest.fixture
def value_and_grad():
    import jax

    return lambda f, x: jax.jit(jax.value_and_grad(f))(x)
