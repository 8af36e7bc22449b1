"""``sm-pixel-ce bench`` at a tiny size: the JSON it writes, and that every case computes the loss
it claims (the same value as TensorFlow's fused floor, or an independent NumPy reference)."""

import json

import numpy as np
import pytest
import reference

from sm_pixel_ce import bench as benchmarks
from sm_pixel_ce.bench import losses as bench_losses
from sm_pixel_ce.cli import main

BATCH, SIZE, CLASSES = 2, 16, 5
# Cases computing exactly the floor's quantity: the mean cross-entropy over every pixel.
SAME_AS_FLOOR = (
    "floor_sparse",
    "cce_softmax",
    "cce_logits",
    "cce_logits_uint8",
    "keras_softmax_cce",
    "keras_reshape_cce",
    "keras_hand_softmax",
)
MODE_KEYS = {"ms", "ms_quartiles", "ratio", "peak_bytes", "loss"}


def _bench(tmp_path, *extra, size=SIZE):
    path = tmp_path / "bench.json"
    status = main(
        [
            "bench",
            "--batch",
            str(BATCH),
            "--size",
            str(size),
            "--classes",
            str(CLASSES),
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--json",
            str(path),
            *extra,
        ]
    )
    assert status == 0
    return json.loads(path.read_text())


def test_loss_cases_agree_with_the_floor_and_references(tmp_path):
    result = _bench(tmp_path, "--skip-train", "--skip-scaling")
    assert result["config"]["batch"] == BATCH and result["config"]["classes"] == CLASSES
    assert result["train"] is None and result["scaling"] is None
    cases = {case["name"]: case for case in result["loss"]["cases"]}
    assert set(cases) == set(benchmarks.loss_cases([1.0] * CLASSES))

    data = benchmarks.make_inputs(BATCH, SIZE, CLASSES)
    logits = data["logits"]
    expected_mean = reference.pixel_cce(data["mask"], logits)
    expected_weighted = reference.pixel_cce(
        data["mask_ignore"],
        logits,
        class_weights=data["class_weights"],
        ignore_index=benchmarks.IGNORE_INDEX,
    )
    expected_bce = reference.pixel_bce(data["onehot"], logits)
    gamma, top_k = bench_losses.FOCAL_GAMMA, bench_losses.TOP_K
    expected_rare = {
        "cce_focal": reference.pixel_cce(data["mask"], logits, gamma=gamma),
        "cce_top_k": reference.pixel_cce(data["mask"], logits, top_k=top_k),
        "cce_focal_top_k_weighted": reference.pixel_cce(
            data["mask_ignore"],
            logits,
            class_weights=data["class_weights"],
            ignore_index=benchmarks.IGNORE_INDEX,
            gamma=gamma,
            top_k=top_k,
        ),
        "keras_focal": reference.pixel_cce(data["mask"], logits, gamma=gamma),
    }
    # The weighted case must differ from the plain mean, or it would check nothing.
    assert abs(expected_weighted - expected_mean) > 1e-3

    for mode in ("graph", "xla"):
        floor = cases["floor_dense"][mode]
        assert floor["ratio"] == 1.0
        np.testing.assert_allclose(floor["loss"], expected_mean, rtol=1e-5)
        for name in SAME_AS_FLOOR:
            assert cases[name]["floor"] in ("floor_dense", "floor_sparse", name)
            np.testing.assert_allclose(
                cases[name][mode]["loss"], floor["loss"], rtol=1e-5, err_msg=name
            )
        np.testing.assert_allclose(
            cases["cce_weighted_ignore"][mode]["loss"], expected_weighted, rtol=1e-5
        )
        np.testing.assert_allclose(cases["bce_sigmoid"][mode]["loss"], expected_bce, rtol=1e-5)
        for name, expected in expected_rare.items():
            np.testing.assert_allclose(cases[name][mode]["loss"], expected, rtol=1e-5, err_msg=name)
        for case in cases.values():
            figures = case[mode]
            assert set(figures) == MODE_KEYS
            low, high = figures["ms_quartiles"]
            assert 0 < low <= figures["ms"] <= high
            floor_ms = cases[case["floor"]][mode]["ms"]
            assert figures["ratio"] == pytest.approx(figures["ms"] / floor_ms)
            assert figures["peak_bytes"] is None or figures["peak_bytes"] >= 0

    targets = result["targets"]
    assert [t["name"] for t in targets] == [
        f"{case} / {floor} ({mode})"
        for mode in ("graph", "xla")
        for case, floor, _ in benchmarks.LOSS_TARGETS
    ]
    for t in targets:
        assert t["met"] == (t["ratio"] <= t["limit"])


# The bench's sections and arithmetic; tf_keras's own timing is the load section's test below.
@pytest.mark.one_flavor
def test_train_pipeline_and_scaling_sections(tmp_path):
    plot = tmp_path / "scaling.png"
    result = _bench(
        tmp_path,
        "--no-xla",
        "--train-repeats",
        "1",
        "--fit-steps",
        "1",
        "--scaling-sides",
        "8,16",
        "--scaling-classes",
        "2,3",
        "--scaling-repeats",
        "1",
        "--plot",
        str(plot),
        size=32,  # the U-Net halves the image 5 times
    )
    assert all(
        set(case) == {"name", "description", "floor", "graph"} for case in result["loss"]["cases"]
    )

    steps = result["train"]["steps"]
    assert set(steps["ms"]) == {"pixel_cce", "keras_cce", "pixel_cce_uint8"}
    assert steps["ratio"] == pytest.approx(steps["ms"]["pixel_cce"] / steps["ms"]["keras_cce"])
    pipeline = result["train"]["pipeline"]
    # float32 one-hot: 4 bytes per class per pixel; uint8 mask: 1 byte per pixel.
    assert pipeline["onehot_float32"]["label_bytes_per_batch"] == BATCH * 32 * 32 * CLASSES * 4
    assert pipeline["uint8"]["label_bytes_per_batch"] == BATCH * 32 * 32
    assert pipeline["label_bytes_ratio"] == 4 * CLASSES
    assert result["targets"][-1]["met"] is True

    sides = result["scaling"]["sides"]["points"]
    assert [(p["side"], p["classes"], p["pixels"]) for p in sides] == [
        (8, CLASSES, BATCH * 64),
        (16, CLASSES, BATCH * 256),
    ]
    assert [p["classes"] for p in result["scaling"]["classes"]["points"]] == [2, 3]
    assert set(result["scaling"]["sides"]["slope"]) == {"pixel_cce", "floor_sparse"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_section_times_both_ways_in_tf_keras(tmp_path, monkeypatch):
    import sm_pixel_ce

    copies = []
    original = sm_pixel_ce.saving.read_archive_member
    monkeypatch.setattr(
        sm_pixel_ce.saving,
        "read_archive_member",
        lambda *a, **k: copies.append(a[1]) or original(*a, **k),
    )
    result = _bench(
        tmp_path,
        "--skip-train",
        "--skip-scaling",
        "--no-xla",
        "--load-backbones",
        "resnet18",
        "--load-repeats",
        "2",
    )
    if sm_pixel_ce.KERAS_FLAVOR == "keras3":
        assert result["load"] is None and copies == []
        return
    (row,) = result["load"]["rows"]
    assert row["backbone"] == "resnet18" and row["megabytes"] > 1
    assert row["speedup"] == pytest.approx(row["s"]["zip"] / row["s"]["copy"])
    assert copies == ["model.weights.h5"] * 2  # the copy way only, once per repeat


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--classes", "300"], "classes must be in [2, 254]"),
        (["--plot", "x.png", "--skip-scaling", "--skip-train"], "plot draws the scaling sweeps"),
        (["--size", "48"], "size must be a multiple of 32"),
        (["--load-backbones", "resnet18,resnet19"], "unknown backbone(s) ['resnet19']"),
        (["--backend", "jax", "--classes", "300"], "classes must be in [2, 254]"),
    ],
)
def test_bad_arguments_give_one_line(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.slow
def test_backend_jax_runs_in_a_child_process(tmp_path, capsys):
    """From TensorFlow, ``bench --backend jax`` times the JAX path in a child with
    ``KERAS_BACKEND=jax`` (about 25 s: the child imports TensorFlow, Keras and JAX)."""
    path = tmp_path / "jax_bench.json"
    tiny = ["--batch", "2", "--size", "8", "--classes", "3", "--repeats", "2", "--warmup", "1"]
    assert main(["bench", "--backend", "jax", *tiny, "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    cases = {case["name"]: case for case in result["cases"]}
    assert result["config"]["devices"] and cases["cce_softmax"]["ratio"] > 0
    data = benchmarks.make_inputs(2, 8, 3)
    expected = reference.pixel_cce(data["mask"], data["logits"])
    assert cases["cce_softmax"]["loss"] == pytest.approx(expected, rel=1e-5)
    assert "| pixel_cce on pixel_softmax output (int32) | sparse |" in capsys.readouterr().out
