"""``pixel_mcc`` and ``pixel_boundary`` under ``KERAS_BACKEND=torch``: the tests of
tests/mcc_boundary_cases.py with torch autograd. Run with
``KERAS_BACKEND=torch python -m pytest -m torch tests/test_torch_mcc_boundary.py``."""

import numpy as np
import pytest
from mcc_boundary_cases import *  # noqa: F403  (the tests)

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(BACKEND != "torch", reason="needs KERAS_BACKEND=torch"),
]


@pytest.fixture
def value_and_grad():
    import torch

    def autograd(f, x):
        z = torch.tensor(np.asarray(x), requires_grad=True)
        value = f(z)
        (gradient,) = torch.autograd.grad(value, z)
        return value.detach().numpy(), gradient.numpy()

    return autograd
