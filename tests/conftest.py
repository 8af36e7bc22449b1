import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import sm_pixel_ce  # noqa: E402,F401  (registers the names before any test builds a model)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
