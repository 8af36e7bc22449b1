"""Real models under ``KERAS_BACKEND=jax``: segmentation_models 1.0.1, segmodels_keras and
keras-hub's DeepLabV3 with ``activation="pixel_softmax"`` and ``loss="pixel_cce"``, keras-hub's
SegFormer (logits) with ``from_logits=True``. Each trains on a fixed batch, saves as ``.keras``,
and reloads in a fresh process after a bare ``import sm_pixel_ce``: the same predictions, and a
loss and pixel accuracy equal to NumPy's on them. Run with ``KERAS_BACKEND=jax python -m pytest
-m jax tests/test_jax_models.py``; skipped on TensorFlow.

The models, their training and the checks are shared with the PyTorch tests
(tests/backend_models.py): each model is built and trained once per module, and all four reload
in one child process."""

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
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]

MODELS = ("sm_unet", "segmodels_unet", "deeplab", "segformer")


@pytest.fixture(scope="module")
def batch():
    return make_batch()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, batch):
    return save_batch(tmp_path_factory.mktemp("jax_models"), batch)


@pytest.fixture(scope="module")
def sm_unet(batch, folder):
    import segmentation_models as sm  # SM_FRAMEWORK=tf.keras, set by sm_pixel_ce.flavor

    # sm's default, any size: sm_pixel_ce's size check is TensorFlow code, left out under JAX.
    return unet(sm, batch, folder, "sm_unet", input_shape=(None, None, 3))


@pytest.fixture(scope="module")
def segmodels_unet(batch, folder):
    import segmodels_keras

    return unet(segmodels_keras, batch, folder, "segmodels_unet")


@pytest.fixture(scope="module", name="deeplab")
def deeplab_fixture(batch, folder):
    return deeplab(batch, folder)


@pytest.fixture(scope="module", name="segformer")
def segformer_fixture(batch, folder):
    return segformer(batch, folder)


@pytest.fixture(scope="module")
def reloaded(request, folder):
    """Every model's reload in one fresh process: ``{name: (trained, child's result)}``."""
    trained = {name: request.getfixturevalue(name) for name in MODELS}
    results = reload_in_a_fresh_process(folder, MODELS)
    return {name: (trained[name], results[name]) for name in MODELS}


@pytest.mark.parametrize("name", ["sm_unet", "segmodels_unet", "deeplab"])
def test_pixel_softmax_models_train_and_match_numpy(request, batch, name):
    check_pixel_softmax_model(request.getfixturevalue(name), batch)


def test_segformer_logits_loss_goes_down_and_matches_numpy(segformer, batch):
    check_segformer(segformer, batch)


@pytest.mark.parametrize("name", MODELS)
def test_reloads_in_a_fresh_process_with_the_same_numbers(reloaded, batch, folder, name):
    check_reloaded(name, *reloaded[name], batch, folder)
