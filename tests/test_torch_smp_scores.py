"""``sm_pixel_ce.scores.get_stats`` of PyTorch tensors (SMP's own inputs: ``(N, H, W)`` class
indices, ``(N, C, H, W)`` probabilities that require grad, read with ``axis=1``) against the
counts written here in torch. Run with ``KERAS_BACKEND=torch python -m pytest -m torch
tests/test_torch_*.py``, where torch is imported already; skipped on the other backends."""

import pytest

from sm_pixel_ce.flavor import BACKEND
from sm_pixel_ce.scores import get_stats

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(BACKEND != "torch", reason="needs KERAS_BACKEND=torch"),
]

if BACKEND == "torch":
    import torch


def assert_counts(actual, expected):
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype.name == "int64"
        assert a.tolist() == e.tolist()


def test_multiclass_counts_of_torch_tensors():
    generator = torch.Generator().manual_seed(0)
    output = torch.randint(0, 4, (3, 5, 6), generator=generator)
    target = torch.randint(0, 4, (3, 5, 6), generator=generator)
    target[:, :, 0] = 255
    valid = (target != 255)[..., None]
    predicted = torch.nn.functional.one_hot(output, 4).bool() & valid
    truth = torch.nn.functional.one_hot(torch.where(valid[..., 0], target, 0), 4).bool() & valid
    expected = [
        (predicted & truth).sum((1, 2)),
        (predicted & ~truth).sum((1, 2)),
        (~predicted & truth).sum((1, 2)),
        (~predicted & ~truth & valid).sum((1, 2)),
    ]
    assert_counts(get_stats(output, target, "multiclass", 255, num_classes=4), expected)


def test_multilabel_counts_of_smp_layout_tensors_that_require_grad():
    generator = torch.Generator().manual_seed(1)
    probabilities = torch.rand(2, 3, 4, 5, generator=generator, requires_grad=True)
    planes = torch.rand(2, 3, 4, 5, generator=generator).round().long()
    above, truth = probabilities.detach() >= 0.5, planes == 1
    expected = [
        (above & truth).sum((2, 3)),
        (above & ~truth).sum((2, 3)),
        (~above & truth).sum((2, 3)),
        (~above & ~truth).sum((2, 3)),
    ]
    counts = get_stats(probabilities, planes, "multilabel", threshold=0.5, axis=1)
    assert_counts(counts, expected)
