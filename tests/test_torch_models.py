"""Real models under ``KERAS_BACKEND=torch``: a segmodels_keras U-Net and keras-hub's DeepLabV3
with ``activation="pixel_softmax"`` and ``loss="pixel_cce"``, keras-hub's SegFormer (logits) with
``from_logits=True``, built tiny from their configuration with random weights. Each trains on a
fixed batch, saves as ``.keras``, and reloads in a fresh process in which segmentation_models
cannot be imported, after a bare ``import sm_pixel_ce``: the same predictions, and a loss and pixel
accuracy equal to NumPy's on them. Run with ``KERAS_BACKEND=torch python -m pytest -m torch
tests/test_torch_*.py``; skipped on the other backends.

The models, their training and the checks are the JAX tests' (tests/backend_models.py)."""

import pytest
from backend_models import (
    check_pixel_softmax_model,
    check_reloaded,
    check_segformer,
    deeplab,
    make_batch,
    reload_in_a_fresh_process,
    save_batch,
    segformer,
    unet,
)

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(BACKEND != "torch", reason="needs KERAS_BACKEND=torch"),
]

MODELS = ("segmodels_unet", "deeplab", "segformer")


@pytest.fixture(scope="module")
def batch():
    return make_batch()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, batch):
    return save_batch(tmp_path_factory.mktemp("torch_models"), batch)


@pytest.fixture(scope="module")
def segmodels_unet(batch, folder):
    import segmodels_keras

    return unet(segmodels_keras, batch, folder, "segmodels_unet")


@pytest.fixture(scope="module", name="deeplab")
def deeplab_fixture(batch, folder):
    return deeplab(batch, folder)


@pytest.fixture(scope="module", name="segformer")
def segformer_fixture(batch, folder):
    return segformer(batch, folder, steps=10)


@pytest.fixture(scope="module")
def reloaded(request, folder):
    """Every model's reload in one fresh process without segmentation_models:
    ``{name: (trained, child's result)}``."""
    trained = {name: request.getfixturevalue(name) for name in MODELS}
    results = reload_in_a_fresh_process(folder, MODELS, blocked=("segmentation_models",))
    return {name: (trained[name], results[name]) for name in MODELS}


@pytest.mark.parametrize("name", ["segmodels_unet", "deeplab"])
def test_pixel_softmax_models_train_and_match_numpy(request, batch, name):
    check_pixel_softmax_model(request.getfixturevalue(name), batch)


def test_segformer_logits_loss_goes_down_and_matches_numpy(segformer, batch):
    check_segformer(segformer, batch)


@pytest.mark.parametrize("name", MODELS)
def test_reloads_in_a_fresh_process_with_the_same_numbers(reloaded, batch, folder, name):
    check_reloaded(name, *reloaded[name], batch, folder)
