"""``sm-pixel-ce bench --backend torch`` in a PyTorch process, at a tiny size: every row of the
one loss table runs eagerly (loss + gradient), computes its independent reference's value, and
equals its plain PyTorch formula (the same math written with ``F.cross_entropy``, sums, ...),
values and gradients. Run with ``KERAS_BACKEND=torch python -m pytest -m torch
tests/test_torch_bench.py``; skipped elsewhere."""

import json

import numpy as np
import pytest
from bench_checks import BATCH, CLASSES, SIZE, check_rows

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(BACKEND != "torch", reason="needs KERAS_BACKEND=torch"),
]


def test_every_loss_case_computes_its_reference_and_its_plain_formula(tmp_path, capsys):
    from sm_pixel_ce.bench.backend_losses import torch_baselines
    from sm_pixel_ce.bench.cases import PLAIN_LIMIT
    from sm_pixel_ce.cli import main

    path = tmp_path / "torch_bench.json"
    tiny = ["--batch", str(BATCH), "--size", str(SIZE), "--classes", str(CLASSES)]
    argv = ["bench", "--backend", "torch", *tiny, "--repeats", "1", "--warmup", "1"]
    assert main([*argv, "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert result["modes"] == ["eager"] and result["config"]["backend"] == "torch"
    rows = check_rows(result, ["eager"], torch_baselines())
    with_plain = {name for name, row in rows.items() if "plain_loss" in row["eager"]}
    assert with_plain == {
        "cce_softmax", "cce_logits", "cce_logits_uint8", "cce_weighted_ignore", "cce_focal",
        "cce_focal_alpha", "cce_focal_alpha_classes", "cce_top_k", "cce_ohem", "cce_ohem_min_kept",
        "cce_focal_top_k_weighted", "bce_sigmoid", "bce_logits", "bce_focal_alpha",
        "bce_pos_weight", "dice_softmax", "jaccard_softmax", "tversky_softmax", "cce_dice",
        "lovasz_softmax", "mcc_softmax", "boundary_given_maps",
    }  # fmt: skip
    for name in with_plain:
        figures = rows[name]["eager"]
        np.testing.assert_allclose(figures["plain_loss"], figures["loss"], rtol=1e-5, err_msg=name)
        # The ratios are of the CPU medians (time.process_time), beside the wall ones.
        assert figures["plain_ratio"] == pytest.approx(figures["cpu_ms"] / figures["plain_cpu_ms"])
        assert figures["wall_plain_ratio"] == pytest.approx(figures["ms"] / figures["plain_ms"])
    floor = rows["floor_sparse"]["eager"]
    assert rows["cce_logits_uint8"]["eager"]["cpu_ratio"] == pytest.approx(
        rows["cce_logits_uint8"]["eager"]["cpu_ms"] / floor["cpu_ms"]
    )
    assert result["config"]["threads"] == 1 and result["config"]["clock"] == "cpu"
    targets = {t["name"]: t for t in result["targets"]}
    assert len(targets) == len(with_plain)
    assert targets["dice_softmax / plain dice (eager)"]["limit"] == PLAIN_LIMIT
    assert "| plain ms | plain CPU ms | x plain |" in capsys.readouterr().out


def test_threads_must_be_a_count():
    from sm_pixel_ce.bench.backend_losses import run_backend_loss_bench

    with pytest.raises(ValueError, match="--threads.*Received: -1"):
        run_backend_loss_bench("torch", 1, 8, 3, 1, 1, threads=-1)


def test_the_plain_formulas_have_the_gradients_of_the_cases():
    """Same math means the same gradient w.r.t. the logits too (not only the same value)."""
    import keras
    import torch

    from sm_pixel_ce.bench import cases
    from sm_pixel_ce.bench.backend_losses import torch_plain

    data = cases.make_inputs(BATCH, SIZE, CLASSES)
    cases.add_pipeline_labels(data, {row.labels for row in cases.LOSS_CASES})
    plain = torch_plain(data)
    for row in cases.LOSS_CASES:
        if row.plain is None:
            continue
        labels = keras.ops.convert_to_tensor(data[row.labels])
        grads = []
        for fn in (row.make(data), plain[row.plain]):
            z = torch.tensor(data["logits"], requires_grad=True)
            (gradient,) = torch.autograd.grad(fn(labels, z), z)
            grads.append(gradient.numpy())
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-8, err_msg=row.name)


def test_cpu_medians_are_taken_from_each_rows_own_timed_calls():
    """Two rows sharing one plain form call it in turn within each round: each row's plain CPU
    median comes from its own calls, after the warm-up rounds and before the loss calls."""
    from sm_pixel_ce.bench.backend_losses import _cpu_figures
    from sm_pixel_ce.bench.cases import Case

    rows = [
        Case("floor", "", "sparse", "floor", None, None, None, True),
        Case("a", "", "sparse", "floor", None, "cce", None, True),
        Case("b", "", "sparse", "floor", None, "cce", None, True),
    ]
    # warmup 1, repeats 3, then one more (loss) call; seconds.
    cpu = {
        "floor": [9.0, 0.010, 0.020, 0.030, 9.0],
        "a": [9.0, 0.040, 0.050, 0.060, 9.0],
        "b": [9.0, 0.001, 0.002, 0.003, 9.0],
        # per round: a's plain call, then b's
        "plain:cce": [9.0, 9.0, 0.100, 0.300, 0.100, 0.300, 0.100, 0.300, 9.0, 9.0],
    }
    figures = {
        "floor": {"ms": 1.0, "ratio": 1.0},
        "a": {"ms": 2.0, "ratio": 2.0, "plain_ms": 4.0, "plain_ratio": 0.5},
        "b": {"ms": 3.0, "ratio": 3.0, "plain_ms": 5.0, "plain_ratio": 0.6},
    }
    _cpu_figures(figures, rows, cpu, repeats=3, warmup=1)
    assert figures["a"]["cpu_ms"] == pytest.approx(50.0)
    assert figures["a"]["cpu_ratio"] == pytest.approx(50.0 / 20.0)
    assert figures["a"]["plain_cpu_ms"] == pytest.approx(100.0)
    assert figures["b"]["plain_cpu_ms"] == pytest.approx(300.0)
    assert figures["b"]["plain_ratio"] == pytest.approx(2.0 / 300.0)
    assert figures["a"]["wall_plain_ratio"] == 0.5 and figures["a"]["ratio"] == 2.0
