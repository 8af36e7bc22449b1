"""sm_pixel_ce.class_weights against NumPy references written from the papers' definitions."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from reference import pixel_cce

import sm_pixel_ce
from sm_pixel_ce import PixelCategoricalCrossentropy, class_weights

C = 5


@pytest.fixture
def masks(rng):
    # Class 4 is rare and in only two images; 255 is void.
    m = rng.choice(4, size=(6, 8, 8), p=[0.6, 0.2, 0.15, 0.05]).astype(np.uint8)
    m[1, :2, :3] = 4
    m[4, 5:, 5:] = 4
    m[rng.uniform(size=m.shape) < 0.1] = 255
    return m


def reference(masks, num_classes, method, ignore_index=None):
    """Straight from the definitions, one image and one class at a time."""
    masks = np.asarray(masks).reshape(len(masks), -1).astype(np.int64)
    counted = [m[m != ignore_index] if ignore_index is not None else m for m in masks]
    n_c = np.array([sum((m == c).sum() for m in counted) for c in range(num_classes)], float)
    n = n_c.sum()
    present = n_c > 0
    weights = np.zeros(num_classes)
    if method == "median_frequency":
        freq = np.array(
            [
                n_c[c] / sum(m.size for m in counted if (m == c).any()) if present[c] else 0.0
                for c in range(num_classes)
            ]
        )
        weights[present] = np.median(freq[present]) / freq[present]
    elif method == "inverse_frequency":
        weights[present] = n / (present.sum() * n_c[present])
    else:
        weights[present] = 1 / np.log(1.02 + n_c[present] / n)
    return weights


@pytest.mark.parametrize("method", ["median_frequency", "inverse_frequency", "enet"])
def test_methods_match_their_definitions(masks, method):
    got = class_weights(masks, C, method=method, ignore_index=255)
    np.testing.assert_allclose(got, reference(masks, C, method, 255), rtol=1e-12)
    assert isinstance(got, list) and all(isinstance(w, float) for w in got)


def test_inverse_frequency_is_scikit_learn_balanced(masks):
    labels = masks[masks != 255].astype(int)
    # sklearn.utils.class_weight.compute_class_weight("balanced"): n / (K · bincount).
    expected = len(labels) / (len(np.unique(labels)) * np.bincount(labels))
    np.testing.assert_allclose(
        class_weights(masks, C, "inverse_frequency", 255), expected, rtol=1e-12
    )


def test_median_frequency_counts_only_images_with_the_class():
    # Class 1 fills half of image 0 and is absent from image 1: freq(1) = 8 / 16, not 8 / 32.
    masks = np.zeros((2, 4, 4), np.int32)
    masks[0, :2] = 1
    got = class_weights(masks, 2)
    freq = np.array([24 / 32, 8 / 16])
    np.testing.assert_allclose(got, np.median(freq) / freq)


def test_every_input_form_gives_the_same_weights(masks):
    expected = class_weights(masks, C, ignore_index=255)
    images = np.zeros(masks.shape + (3,), np.float32)
    forms = {
        "(N, H, W, 1)": masks[..., None],
        "tensor": tf.constant(masks),
        "int64 list": masks.astype(np.int64).tolist(),
        "dataset of batched masks": tf.data.Dataset.from_tensor_slices(masks).batch(4),
        "dataset of single masks": tf.data.Dataset.from_tensor_slices(masks[..., None]),
        "dataset of (image, mask) batches": tf.data.Dataset.from_tensor_slices(
            (images, masks[..., None])
        ).batch(4),
        "dataset of (image, mask, weight)": tf.data.Dataset.from_tensor_slices(
            (images, masks, np.ones(len(masks)))
        ),
    }
    for name, form in forms.items():
        np.testing.assert_allclose(
            class_weights(form, C, ignore_index=255), expected, rtol=1e-12, err_msg=name
        )


def test_large_array_is_counted_in_chunks(rng):
    masks = rng.integers(0, 3, (150, 4, 4))  # more images than one chunk
    for method in ("median_frequency", "enet"):
        np.testing.assert_allclose(
            class_weights(masks, 3, method), reference(masks, 3, method), rtol=1e-12
        )


def test_absent_class_gets_zero_with_a_warning(masks):
    with pytest.warns(UserWarning, match=r"class\(es\) \[5, 6\] appear in no mask"):
        got = class_weights(masks, C + 2, ignore_index=255)
    assert got[5] == got[6] == 0.0
    np.testing.assert_allclose(got[:C], class_weights(masks, C, ignore_index=255))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        class_weights(masks, C, ignore_index=255)  # nothing absent: no warning


def test_result_goes_straight_to_the_loss(rng, masks):
    weights = class_weights(masks, C, ignore_index=255)
    logits = rng.normal(size=masks.shape + (C,)).astype(np.float32)
    loss = PixelCategoricalCrossentropy(class_weights=weights, ignore_index=255, from_logits=True)
    np.testing.assert_allclose(
        loss(masks, logits).numpy(), pixel_cce(masks, logits, weights, 255), rtol=1e-5
    )


@pytest.mark.parametrize(
    "bad, value",
    [(5, "5"), (7, "7"), (-1, "-1")],
)
def test_value_out_of_range_is_named(masks, bad, value):
    masks = masks.astype(np.int16)
    masks[3, 2, 2] = bad
    with pytest.raises(ValueError, match=rf"mask value {value} is out of range"):
        class_weights(masks, C, ignore_index=255)
    with pytest.raises(ValueError, match=rf"mask value {value} is out of range"):
        class_weights(tf.data.Dataset.from_tensor_slices(masks).batch(2), C, ignore_index=255)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "median"}, "unknown `method`.*Received: method='median'"),
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 2.5}, "num_classes"),
        ({"ignore_index": "void"}, "ignore_index"),
    ],
)
def test_bad_arguments(masks, kwargs, match):
    arguments = {"num_classes": C, "ignore_index": 255, **kwargs}
    with pytest.raises(ValueError, match=match):
        class_weights(masks, **arguments)


def test_bad_masks():
    with pytest.raises(ValueError, match="no counted pixel"):
        class_weights(np.full((2, 3, 3), 255), 3, ignore_index=255)
    with pytest.raises(ValueError, match=r"Received shape \(4, 4\)"):
        class_weights(np.zeros((4, 4), int), 3)
    with pytest.raises(ValueError, match="integer values"):
        class_weights(np.full((1, 2, 2), 0.5), 3)
    with pytest.raises(ValueError, match=r"without ignore_index|out of range"):
        class_weights(np.full((1, 2, 2), 255), 3)


def test_public_name():
    assert sm_pixel_ce.class_weights is class_weights
    assert "class_weights" in sm_pixel_ce.__all__


def test_weights_from_counts_equal_the_masks_path(masks):
    from sm_pixel_ce.class_weights import weights_from_counts

    counted = masks[masks != 255].astype(int)
    pixels = np.bincount(counted, minlength=C)
    for method in ("inverse_frequency", "enet"):
        np.testing.assert_allclose(
            weights_from_counts(pixels, method), reference(masks, C, method, 255), rtol=1e-12
        )
    with pytest.raises(ValueError, match="needs `image_pixels`"):
        weights_from_counts(pixels)
    with pytest.raises(ValueError, match="not all 0"):
        weights_from_counts([0, 0], "enet")
    with pytest.warns(UserWarning, match=r"\[1\]") as caught:
        weights_from_counts([5, 0], "enet")
    assert caught[0].filename == __file__
    with pytest.warns(UserWarning) as caught:
        class_weights(np.zeros((1, 2, 2), int), 2)
    assert caught[0].filename == __file__
