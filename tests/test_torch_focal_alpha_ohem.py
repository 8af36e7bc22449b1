"""Issue #31's cross-entropy options under ``KERAS_BACKEND=torch`` (values and gradients by torch
autograd) against tests/reference.py; the cases are shared with the TensorFlow and JAX files
(tests/focal_alpha_ohem_cases.py). Run with ``KERAS_BACKEND=torch python -m pytest -m torch
tests/test_torch_focal_alpha_ohem.py``."""

import numpy as np
import pytest
from focal_alpha_ohem_cases import (
    check_focal_alpha_bce,
    check_focal_alpha_cce,
    check_ohem,
    check_pos_weight,
)

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


def test_focal_alpha_cce():
    check_focal_alpha_cce(value_and_grad)


def test_focal_alpha_bce():
    check_focal_alpha_bce(value_and_grad)


def test_pos_weight():
    check_pos_weight(value_and_grad)


def test_ohem():
    check_ohem(value_and_grad)
