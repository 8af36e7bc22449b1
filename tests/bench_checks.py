"""What every backend's loss bench test checks (tests/test_bench.py, test_jax_bench.py,
test_torch_bench.py): each row of the one case table computes the value of its independent
reference (tests/reference.py), and its figures are consistent."""

import numpy as np
import pytest
from reference import bench_expected

from sm_pixel_ce.bench import cases

BATCH, SIZE, CLASSES = 2, 16, 5
MODE_KEYS = {"ms", "ms_quartiles", "ratio", "peak_bytes", "loss"}


def expected_values():
    """name -> the reference value of every row on ``make_inputs(BATCH, SIZE, CLASSES)``."""
    data = cases.make_inputs(BATCH, SIZE, CLASSES)
    options = {
        "gamma": cases.FOCAL_GAMMA,
        "top_k": cases.TOP_K,
        "alpha": cases.FOCAL_ALPHA,
        "alphas": cases.focal_alpha(CLASSES),
        "threshold": cases.OHEM_THRESHOLD,
        "min_kept": data["min_kept"],
        "pos_weight": cases.pos_weight(CLASSES),
        "tversky": cases.TVERSKY,
        "ignore_index": cases.IGNORE_INDEX,
    }
    return bench_expected(data, options)


def check_rows(result, modes, baselines, names=None):
    """Every row chosen (``names`` and the rows they are compared with, or the whole table with
    the baselines the backend writes) ran in every mode, with its reference's value, a ratio to
    its floor's median, and well-formed figures."""
    expected = expected_values()
    assert set(expected) == set(cases.CASES)
    rows = {case["name"]: case for case in result["cases"]}
    assert list(rows) == [row.name for row in cases.select(names, baselines)]
    if names is None:
        assert set(rows) == {row.name for row in cases.LOSS_CASES}
    # The weighted and per-class rows must differ from the plain ones, or they would check nothing.
    assert abs(expected["cce_weighted_ignore"] - expected["cce_logits"]) > 1e-3
    assert abs(expected["cce_focal_alpha_classes"] - expected["cce_focal"]) > 1e-3
    assert abs(expected["bce_pos_weight"] - expected["bce_logits"]) > 1e-3
    assert expected["boundary_given_maps"] != 0
    for mode in modes:
        for name, row in rows.items():
            figures = row[mode]
            assert MODE_KEYS <= set(figures), name
            np.testing.assert_allclose(figures["loss"], expected[name], rtol=1e-5, err_msg=name)
            low, high = figures["ms_quartiles"]
            assert 0 < low <= figures["ms"] <= high, name
            floor_ms = rows[row["floor"]][mode]["ms"]
            assert figures["ratio"] == pytest.approx(figures["ms"] / floor_ms), name
            assert figures["peak_bytes"] is None or figures["peak_bytes"] >= 0, name
    for target in result["targets"]:
        assert target["met"] == (target["ratio"] <= target["limit"])
    return rows
