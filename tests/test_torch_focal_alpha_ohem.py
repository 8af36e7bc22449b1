"""Issue #31's cross-entropy options under ``KERAS_BACKEND=torch`` (values and gradients by torch
autograd) against tests/reference.py; the cases are shared with the TensorFlow and JAX files
(tests/focal_alpha_ohem_cases.py). Run with ``KERAS_BACKEND=torch python -m pytest -m torch
tests/test_torch_focal_alpha_ohem.py``."""

import numpy as np
import pytest
from focal_alpha_ohem_cases import CHECKS

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(BACKEND != "torch", reason="needs KERAS_BACKEND=torch"),
]


def value_and_grad(f, x):
    import torch

    z = torch.tensor(np.asarray(x), requires_grad=True)
    value = f(z)
    (gradient,) = torch.autograd.grad(value, z)
    return value.detach().numpy(), gradient.numpy()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_matches_the_references(check):
    check(value_and_grad)
