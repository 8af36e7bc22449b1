"""``sm-pixel-ce bench`` at a tiny size: the JSON it writes, and that every row of the one loss
table computes the loss it claims (the value of an independent NumPy reference, tests/reference.py)
in graph mode and under XLA."""

import json

import pytest
from bench_checks import BATCH, CLASSES, SIZE, check_rows

from sm_pixel_ce import KERAS_FLAVOR
from sm_pixel_ce.bench import cases
from sm_pixel_ce.bench.losses import BASELINES
from sm_pixel_ce.cli import main


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
            "1",
            "--warmup",
            "0",
            "--json",
            str(path),
            *extra,
        ]
    )
    assert status == 0
    return json.loads(path.read_text())


#: The rows whose path under XLA (or in tf_keras) is not Keras 3's graph path run again there: the
#: fused route on pixel_softmax output, the top-k and OHEM selections, the Lovasz sort, MCC's and
#: the boundary loss's sums, a region loss. Every loss's value in each flavour, graph and XLA, is
#: the loss tests' business (tests/test_*losses*.py, test_focal_topk.py, test_mcc_boundary.py).
OTHER_PATHS = [
    "cce_softmax",
    "cce_top_k",
    "cce_ohem_min_kept",
    "bce_pos_weight",
    "dice_softmax",
    "lovasz_softmax",
    "mcc_softmax",
    "boundary_labels",
]


@pytest.mark.one_flavor
def test_every_loss_case_computes_its_reference(tmp_path, capsys):
    result = _bench(tmp_path, "--skip-train", "--skip-scaling", "--no-xla")
    assert result["config"]["batch"] == BATCH and result["config"]["classes"] == CLASSES
    assert result["train"] is None and result["scaling"] is None
    assert result["loss"]["modes"] == ["graph"] and set(BASELINES) == set(cases.BASELINE_ROWS)
    check_rows(result["loss"], ["graph"], BASELINES)
    targets = [t["name"] for t in result["targets"]]
    assert targets == [f"{row.name} / {row.floor} (graph)" for row in cases.LOSS_CASES if row.limit]
    assert "lovasz_softmax / lovasz_smp_port (graph)" in targets
    table = capsys.readouterr().out
    assert "| pixel_mcc on pixel_softmax output, uint8 | sparse | " in table
    assert "noise gauge: the sparse floor compiled a second time" in table


def test_rows_of_other_paths_compute_their_reference_under_xla_and_in_tf_keras(tmp_path):
    # XLA compiles the same graphs in either flavour: tf_keras runs the rows in graph mode only.
    modes = ["graph", "xla"] if KERAS_FLAVOR == "keras3" else ["graph"]
    extra = [] if "xla" in modes else ["--no-xla"]
    names = ",".join(OTHER_PATHS)
    result = _bench(tmp_path, "--skip-train", "--skip-scaling", "--cases", names, *extra)
    assert result["loss"]["modes"] == modes
    rows = check_rows(result["loss"], modes, BASELINES, names=OTHER_PATHS)
    assert set(OTHER_PATHS) < set(rows)  # with their floors and the rows they are compared with
    chosen = [row for row in cases.LOSS_CASES if row.name in rows and row.limit]
    assert [t["name"] for t in result["targets"]] == [
        f"{row.name} / {row.floor} ({mode})" for mode in modes for row in chosen
    ]


def test_names_select_a_case_and_the_rows_it_is_compared_with():
    from sm_pixel_ce.bench.losses import loss_benchmark

    result = loss_benchmark(1, 8, 3, repeats=1, warmup=0, xla=False, names=["lovasz_softmax"])
    assert [case["name"] for case in result["cases"]] == [
        "floor_sparse",
        "lovasz_softmax",
        "lovasz_smp_port",
    ]
    with pytest.raises(ValueError, match=r"unknown loss case\(s\) \['dice'\]"):
        cases.select(["dice"])


# The bench's sections and arithmetic; tf_keras's own timing is the load section's test below.
@pytest.mark.one_flavor
def test_train_pipeline_and_scaling_sections(tmp_path):
    plot = tmp_path / "scaling.png"
    result = _bench(
        tmp_path,
        "--cases",
        "cce_softmax",
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
    loss_rows = result["loss"]["cases"]
    assert [case["name"] for case in loss_rows] == ["floor_dense", "cce_softmax"]
    assert all(set(case) == {"name", "description", "floor", "graph"} for case in loss_rows)

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
        "--cases",
        "floor_sparse",
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
        (["--backend", "torch", "--classes", "1"], "classes must be in [2, 254]"),
        (["--backend", "torch", "--cases", "dice"], "unknown loss case(s) ['dice']"),
    ],
)
def test_bad_arguments_give_one_line(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_run_the_whole_table_in_a_child_process(tmp_path, capsys, backend):
    """From TensorFlow, ``bench --backend jax|torch`` times the whole table in a child with
    ``KERAS_BACKEND`` set, every row with its reference's value (about 40 s on PyTorch, 70 s on
    JAX: the child imports TensorFlow, Keras and the backend, and JAX compiles every row)."""
    path = tmp_path / "backend_bench.json"
    tiny = ["--batch", str(BATCH), "--size", str(SIZE), "--classes", str(CLASSES)]
    argv = ["bench", "--backend", backend, *tiny, "--repeats", "1", "--warmup", "1"]
    assert main([*argv, "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert result["config"]["backend"] == backend
    mode = {"jax": "jit", "torch": "eager"}[backend]
    check_rows(result, [mode], cases.BASELINE_ROWS)  # every backend writes every baseline
    assert "| pixel_cce on pixel_softmax output (one-hot) | dense |" in capsys.readouterr().out
