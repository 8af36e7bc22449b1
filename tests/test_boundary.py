"""``sm_pixel_ce.boundary``: Boundary IoU against cases checked by hand, against the official
code's repeated 3×3 erosions and against the definition (a window loop), per class on label
maps with ignored pixels, and streamed over images of different sizes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sm_pixel_ce.boundary import (
    boundary_counts,
    boundary_dilation,
    boundary_iou,
    mask_boundary,
)
from sm_pixel_ce.scores import StreamingScore

# NumPy alone: the same in both Keras flavours, so the Keras 3 process alone runs it.
pytestmark = pytest.mark.one_flavor

# --- independent references ----------------------------------------------------------------------


def eroded_boundary(mask, dilation):
    """The official ``mask_to_boundary`` without OpenCV: pad one pixel of zeros, erode
    ``dilation`` times with a 3×3 kernel (OpenCV's erosion takes the border beyond the padded
    image as the maximum, so it never erodes), crop, subtract."""
    mask = np.asarray(mask, bool)
    height, width = mask.shape
    eroded = np.pad(mask, 1)
    for _ in range(dilation):
        padded = np.pad(eroded, 1, constant_values=True)
        eroded = np.ones_like(eroded)
        for dy in range(3):
            for dx in range(3):
                eroded &= padded[dy : dy + height + 2, dx : dx + width + 2]
    return mask & ~eroded[1 : height + 1, 1 : width + 1]


def window_boundary(mask, dilation):
    """The definition: a mask pixel is interior only if its whole (2d + 1)² window lies in the
    image and in the mask."""
    mask = np.asarray(mask, bool)
    height, width = mask.shape
    boundary = np.zeros_like(mask)
    for i, j in zip(*np.nonzero(mask)):
        top, left, bottom, right = i - dilation, j - dilation, i + dilation, j + dilation
        inside = top >= 0 and left >= 0 and bottom < height and right < width
        boundary[i, j] = not (inside and mask[top : bottom + 1, left : right + 1].all())
    return boundary


def class_boundary_counts(labels, predictions, num_classes, ignore_index=None, ratio=0.02):
    """Per class, the reference boundaries of ``labels == c`` and ``predictions == c``, counted
    on the pixels whose label is not ``ignore_index``."""
    dilation = boundary_dilation(*labels.shape, ratio)
    counted = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    intersection, union = [], []
    for c in range(num_classes):
        truth = eroded_boundary(labels == c, dilation) & counted
        predicted = eroded_boundary(predictions == c, dilation) & counted
        intersection.append(np.sum(truth & predicted))
        union.append(np.sum(truth | predicted))
    return np.array(intersection), np.array(union)


def _blocks(rng, shape, classes, block):
    rows, columns = -(-shape[0] // block), -(-shape[1] // block)
    coarse = rng.integers(0, classes, (rows, columns))
    return np.repeat(np.repeat(coarse, block, 0), block, 1)[: shape[0], : shape[1]]


# --- boundary_dilation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "height, width, ratio, dilation",
    [
        (10, 10, 0.02, 1),  # 0.02 · √200 = 0.28 rounds to 0: at least 1
        (64, 64, 0.02, 2),  # 0.02 · 90.5 = 1.81
        (512, 512, 0.02, 14),  # 0.02 · 724.1 = 14.48
        (3000, 4000, 0.02, 100),  # 0.02 · 5000
        (3000, 4000, 0.0, 1),
        (30, 40, 0.05, 2),  # 0.05 · 50 = 2.5: Python rounds half to even, as the official code
        (30, 40, 0.07, 4),  # 3.5 -> 4
    ],
)
def test_boundary_dilation(height, width, ratio, dilation):
    assert boundary_dilation(height, width, ratio) == dilation


@pytest.mark.parametrize(
    "args, message",
    [((0, 5), r"at least one pixel. Received: height=0, width=5"), ((5, 5, -0.1), "ratio=-0.1")],
)
def test_boundary_dilation_rejects(args, message):
    with pytest.raises(ValueError, match=message):
        boundary_dilation(*args)


# --- mask_boundary -------------------------------------------------------------------------------


def test_mask_boundary_hand_checked():
    # A 4×4 square at rows/cols 3..6 of a 10×10 image, d = 1: the ring of 16 - 2×2 = 12 pixels.
    mask = np.zeros((10, 10), bool)
    mask[3:7, 3:7] = True
    ring = mask.copy()
    ring[4:6, 4:6] = False
    np.testing.assert_array_equal(mask_boundary(mask, 1), ring)
    assert mask_boundary(mask, 1).sum() == 12
    # d = 2 reaches the centre of a 4×4 square: all of it is boundary.
    np.testing.assert_array_equal(mask_boundary(mask, 2), mask)
    # d = 0: the official code erodes 0 times, so no boundary.
    assert not mask_boundary(mask, 0).any()


def test_the_image_border_counts_as_outside():
    # A 10×10 square in the corner of a 64×64 image, d = 2: interior rows/cols 2..7 only (6×6),
    # so 100 - 36 = 64 boundary pixels; were the border not outside, only rows/cols 8, 9: 36.
    mask = np.zeros((64, 64), bool)
    mask[:10, :10] = True
    boundary = mask_boundary(mask, 2)
    assert boundary.sum() == 64
    assert boundary[0].sum() == 10 and boundary[:, 0].sum() == 10
    assert not boundary[2:8, 2:8].any()
    # A mask covering the whole image is all border band.
    full = mask_boundary(np.ones((64, 64), bool), 2)
    assert full.sum() == 64**2 - 60**2


def test_mask_boundary_equals_repeated_erosions_seeded():
    rng = np.random.default_rng(0)
    for _ in range(150):
        height, width = rng.integers(1, 28, 2)
        dilation = int(rng.integers(0, 9))
        if rng.random() < 0.5:
            mask = rng.random((height, width)) < rng.random()
        else:  # blobs: rectangles, some touching the border
            mask = np.zeros((height, width), bool)
            for _ in range(rng.integers(1, 4)):
                top, left = rng.integers(0, height), rng.integers(0, width)
                mask[top : top + rng.integers(1, 15), left : left + rng.integers(1, 15)] = True
        np.testing.assert_array_equal(
            mask_boundary(mask, dilation),
            eroded_boundary(mask, dilation),
            err_msg=f"{height}x{width}, d={dilation}",
        )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 16).flatmap(
        lambda h: st.tuples(
            st.lists(st.lists(st.booleans(), min_size=h, max_size=h), min_size=1, max_size=16),
            st.integers(0, 6),
        )
    )
)
def test_mask_boundary_equals_the_window_definition(case):
    rows, dilation = case
    mask = np.array(rows, bool)
    np.testing.assert_array_equal(mask_boundary(mask, dilation), window_boundary(mask, dilation))


@pytest.mark.parametrize(
    "mask, dilation, message",
    [
        (np.zeros((2, 2, 2)), 1, r"\(H, W\). Received: shape=\(2, 2, 2\)"),
        (np.zeros((4, 4)), -1, "int >= 0. Received: dilation=-1"),
        (np.zeros((4, 4)), 1.5, "dilation=1.5"),
    ],
)
def test_mask_boundary_rejects(mask, dilation, message):
    with pytest.raises(ValueError, match=message):
        mask_boundary(mask, dilation)


# --- boundary_counts / boundary_iou --------------------------------------------------------------


def test_boundary_iou_hand_checked():
    # 10×10 image, d = 1. Class 1: the 4×4 square at rows/cols 3..6, predicted one column to
    # the right (cols 4..7). Both boundaries are 12-pixel rings. They share rows 3..6 × cols
    # 4..6 (12 pixels) less the pixels inner to either square (rows 4..5 × cols 4..6, 6): 6.
    # Union 12 + 12 - 6 = 18: Boundary IoU 6 / 18 = 1 / 3.
    # Class 0, the rest: the image's border ring (36) plus the ring around the square (6×6 - 16
    # = 20) = 56 in truth and prediction alike. Shared: the border ring and rows 2 and 7 of cols
    # 3..7 (10): 46. Union 56 + 56 - 46 = 66: Boundary IoU 46 / 66 = 23 / 33.
    labels = np.zeros((10, 10), np.uint8)
    labels[3:7, 3:7] = 1
    predictions = np.zeros((10, 10), np.uint8)
    predictions[3:7, 4:8] = 1
    intersection, union = boundary_counts(labels, predictions, 3)
    assert intersection.dtype == np.int64 and union.dtype == np.int64
    np.testing.assert_array_equal(intersection, [46, 6, 0])
    np.testing.assert_array_equal(union, [66, 18, 0])
    # Class 2 is in neither: undefined, not 0.
    assert boundary_iou(intersection, union) == pytest.approx([23 / 33, 1 / 3, None])
    assert boundary_iou(intersection, union)[2] is None


def test_boundary_counts_at_dilation_two_hand_checked():
    # 64×64 (d = 2), class 1 a 10×10 square at rows/cols 20..29, predicted right: its boundary
    # is 10×10 - 6×6 = 64; class 0's is the border band (64² - 60² = 496) and the band around
    # the square (14×14 - 10×10 = 96): 592.
    labels = np.zeros((64, 64), np.int64)
    labels[20:30, 20:30] = 1
    intersection, union = boundary_counts(labels, labels, 2)
    np.testing.assert_array_equal(intersection, [592, 64])
    np.testing.assert_array_equal(union, [592, 64])
    # Predicted one row lower (rows 21..30): the squares share rows 21..29 (90 pixels), less
    # those inner to one or the other (rows 22..28 × cols 22..27: 42): 48. Union 64 + 64 - 48
    # = 80: Boundary IoU 3 / 5.
    shifted = np.roll(labels, 1, axis=0)
    intersection, union = boundary_counts(labels, shifted, 2)
    assert (intersection[1], union[1]) == (48, 80)
    np.testing.assert_array_equal((intersection, union), class_boundary_counts(labels, shifted, 2))


def test_ignored_pixels_are_not_counted_but_bound_the_classes():
    # Left half class 1, right half void (255), 16×16 (d = 1); everything predicted class 1.
    labels = np.ones((16, 16), np.uint8)
    labels[:, 8:] = 255
    predictions = np.ones((16, 16), np.uint8)
    intersection, union = boundary_counts(labels, predictions, 2, ignore_index=255)
    # Truth boundary of class 1: along the image border and along the void (col 7), as the void
    # is "not class 1": rows 0 and 15 (2·8 = 16), cols 0 and 7 of rows 1..14 (28): 44 pixels.
    # Predicted: the border band of the whole image, counted on the left half only: rows 0 and
    # 15 and col 0 (16 + 14 = 30). Shared 30, union 44. The void pixels count in neither.
    np.testing.assert_array_equal(intersection, [0, 30])
    np.testing.assert_array_equal(union, [0, 44])
    np.testing.assert_array_equal(
        (intersection, union), class_boundary_counts(labels, predictions, 2, ignore_index=255)
    )


@pytest.mark.parametrize("shape, classes", [((37, 53), 4), ((90, 70), 6), ((12, 9), 150)])
def test_boundary_counts_equal_the_per_class_reference(shape, classes):
    rng = np.random.default_rng(sum(shape))
    labels = _blocks(rng, shape, classes, 5)
    predictions = np.where(rng.random(shape) < 0.1, rng.integers(0, classes, shape), labels)
    predictions = np.roll(predictions, 2, axis=1)
    labels[rng.random(shape) < 0.05] = 255
    labels[:3] = 255
    got = boundary_counts(labels.astype(np.uint8), predictions, classes, ignore_index=255)
    expected = class_boundary_counts(labels, predictions, classes, ignore_index=255)
    np.testing.assert_array_equal(got, expected)
    for ratio in (0.0, 0.1):
        np.testing.assert_array_equal(
            boundary_counts(labels, predictions, classes, 255, ratio),
            class_boundary_counts(labels, predictions, classes, 255, ratio),
        )


def test_a_dilation_wider_than_the_image_makes_every_pixel_boundary():
    labels = np.array([[0, 0, 1], [0, 1, 1]])
    intersection, union = boundary_counts(labels, labels, 2, ratio=1.0)  # d = 4
    np.testing.assert_array_equal(intersection, [3, 3])
    np.testing.assert_array_equal(union, [3, 3])


@pytest.mark.parametrize(
    "labels, predictions, message",
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), r"one \(H, W\) image each"),
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), r"labels.shape=\(2, 4, 4\)"),
        (np.full((4, 4), 3), np.zeros((4, 4)), r"labels must lie in \[0, 2\].*max=3"),
        (np.zeros((4, 4)), np.full((4, 4), -1), r"predictions must lie in \[0, 2\].*min=-1"),
    ],
)
def test_boundary_counts_rejects(labels, predictions, message):
    with pytest.raises(ValueError, match=message):
        boundary_counts(labels, predictions, 3)


# --- streamed over images ---------------------------------------------------------------------


def test_streaming_boundary_iou_sums_each_image_at_its_own_width():
    rng = np.random.default_rng(3)
    intersection, union = np.zeros(3, np.int64), np.zeros(3, np.int64)
    scores = StreamingScore(3, ignore_index=255, boundary=True)
    for shape in ((2, 20, 30), (1, 80, 64)):  # d = 1, then d = 2
        labels = np.stack([_blocks(rng, shape[1:], 3, 6) for _ in range(shape[0])])
        labels[:, :, :2] = 255
        probabilities = rng.random(shape + (3,))
        probabilities[..., 2] = 0  # class 2 is never predicted
        scores.update(probabilities, labels)
        for truth, predicted in zip(labels, probabilities.argmax(-1)):
            i, u = class_boundary_counts(truth, predicted, 3, ignore_index=255)
            intersection += i
            union += u
    result = scores.result()
    expected = [i / u if u else None for i, u in zip(intersection, union)]
    assert result["per_class_boundary_iou"] == pytest.approx(expected, abs=1e-15)
    assert result["boundary_miou"] == pytest.approx(np.mean(expected))
    np.testing.assert_array_equal(scores.boundary_intersection, intersection)


def test_streaming_boundary_iou_needs_images():
    scores = StreamingScore(2, boundary=True)
    with pytest.raises(ValueError, match=r"\(N, H, W\) labels.*labels.shape=\(4,\)"):
        scores.update(np.full((4, 2), 0.5), np.zeros(4, int))
    assert scores.matrix.sum() == 0  # nothing was counted
