"""``sm-pixel-ce bench --backend jax`` in a JAX process, at a tiny size: issue #31's rows of the
one loss table (and the cross-entropies and the rows they are compared with) run under
``jax.jit`` (loss + gradient) and compute their independent references' values; the table prints
each ratio (no timing asserted). The whole table runs in tests/test_bench.py's slow child-process
test. Run with ``KERAS_BACKEND=jax python -m pytest -m jax tests/test_jax_bench.py``; skipped on
TensorFlow."""

import pytest
from bench_checks import BATCH, CLASSES, SIZE, check_rows

from sm_pixel_ce.flavor import BACKEND

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(BACKEND != "jax", reason="needs KERAS_BACKEND=jax"),
]

#: The new losses' rows and the fused cross-entropies (every compiled row costs about a second).
NAMES = [
    "cce_softmax",
    "cce_logits_uint8",
    "cce_focal_alpha_classes",
    "cce_ohem_min_kept",
    "bce_focal_alpha",
    "bce_pos_weight",
    "mcc_softmax",
    "boundary_given_maps",
]


def test_the_new_loss_cases_compute_their_references():
    from sm_pixel_ce.bench import format_loss_bench
    from sm_pixel_ce.bench.backend_losses import backend_loss_benchmark, jax_baselines

    result = backend_loss_benchmark(BATCH, SIZE, CLASSES, repeats=1, warmup=1, names=NAMES)
    assert result["modes"] == ["jit"] and result["config"]["backend"] == "jax"
    rows = check_rows(result, ["jit"], jax_baselines(), NAMES)
    assert "plain_ms" not in rows["cce_softmax"]["jit"]
    table = format_loss_bench(result)
    ratio = rows["mcc_softmax"]["jit"]["ratio"]
    assert "| pixel_mcc on pixel_softmax output, uint8 | sparse | " in table
    assert f"| {ratio:.2f} |" in table
    assert "| mcc_softmax / floor_sparse (jit) |" in table
