"""Exact under tf.distribute: the weighted mean is global across replicas and workers.

Each run is a fresh process (logical devices and TF_CONFIG must be set before TensorFlow starts);
tests/distributed_check.py does the training and prints JSON.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import checkout_env

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_check.py")


def _last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.xdist_group("mirrored")  # one worker runs the 2-CPU checks' process
def test_mirrored_strategy_equals_single_device(mirrored_reports):
    report = mirrored_reports["mirrored"]
    assert report["replicas"] == 2
    np.testing.assert_allclose(report["distributed_loss"], report["single_loss"], rtol=1e-5)
    assert report["max_relative_weight_difference"] <= 1e-5
    # The data make replicas count very different pixels: averaging per replica would be wrong.
    assert abs(report["first_batch_per_replica_mean"] - report["first_batch_global_mean"]) > 0.02
    np.testing.assert_allclose(
        report["single_loss"][0], report["first_batch_global_mean"], rtol=1e-5
    )


@pytest.mark.xdist_group("mirrored")  # one worker runs the 2-CPU checks' process
def test_region_losses_and_sums_are_global_under_mirrored_strategy(mirrored_reports):
    # Replica 0 holds 3 mostly void images, replica 1 the other 5, and class 3 is only in
    # replica 0's: Dice of per-replica sums, or a per-replica Lovász sort, would be wrong.
    report = mirrored_reports["regions"]
    assert report["replicas"] == 2
    for name, entry in report["losses"].items():
        np.testing.assert_allclose(sum(entry["shares"]), entry["single"], rtol=1e-6, err_msg=name)
        assert abs(entry["per_replica_mean"] - entry["single"]) > 5e-4, name
        assert entry["max_gradient_difference"] <= 1e-6 * entry["max_gradient"], name
        if "fit_single" in entry:  # model.fit: the same losses and weights as one device
            np.testing.assert_allclose(entry["fit_distributed"], entry["fit_single"], rtol=1e-5)
            assert entry["max_relative_weight_difference"] <= 1e-5, name
    # The metrics: each replica counts its own images, and the counts read are the global ones.
    single, distributed = report["metrics"]["single"], report["metrics"]["distributed"]
    assert single["counts"][1] == report["metrics"]["correct_and_counted"]
    assert distributed["counts"] == single["counts"]  # exact integers
    np.testing.assert_allclose(distributed["results"], single["results"], rtol=1e-6)


@pytest.mark.xdist_group("mirrored")  # one worker runs the 2-CPU checks' process
def test_custom_loops_add_the_replicas_values_up_to_the_global_loss(mirrored_reports):
    # loss(y, p) inside strategy.run, the replicas' values summed (strategy.reduce("SUM")): the
    # one-device value in Keras 3 and tf_keras alike, for every reduction (tf_keras's compile
    # alone divides by the replica count; a custom loop once got twice Dice on 2 replicas).
    report = mirrored_reports["custom"]
    assert report["replicas"] == 2
    for name, entry in report["losses"].items():
        np.testing.assert_allclose(entry["custom_loop"], entry["single"], rtol=1e-5, err_msg=name)
    assert np.shape(report["losses"]["dice_none"]["single"]) == (8,)
    assert np.shape(report["losses"]["cce_none"]["single"]) == (8, 16, 16)
    for name, entry in report["training"].items():
        np.testing.assert_allclose(entry["custom_loop"], entry["single"], rtol=1e-5, err_msg=name)
        assert entry["max_relative_weight_difference"] <= 1e-5, name


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_strategy_two_processes(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        config = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, SCRIPT, "worker", str(tmp_path / f"worker{index}.npz")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=checkout_env(TF_CONFIG=config),
            )
        )
    single = subprocess.run(
        [sys.executable, SCRIPT, "single", str(tmp_path / "single.npz")],
        capture_output=True,
        text=True,
        env=checkout_env(),
        timeout=600,
    )
    outputs = [p.communicate(timeout=600) for p in processes]
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]
    w0, w1, ref = (np.load(tmp_path / f"{name}.npz") for name in ("worker0", "worker1", "single"))
    # The two workers formed one cluster (TF_CONFIG reached them): two replicas in sync.
    assert int(w0["replicas"]) == int(w1["replicas"]) == 2 and int(ref["replicas"]) == 1
    names = [k for k in ref.files if k not in ("loss", "replicas")]
    assert len(names) > 50  # every weight of the U-Net
    for k in names:
        np.testing.assert_array_equal(w0[k], w1[k])  # both workers hold identical weights
        scale = np.abs(ref[k]).max() + 1e-12
        assert np.abs(w0[k] - ref[k]).max() / scale <= 1e-5, k
    np.testing.assert_allclose(w0["loss"], ref["loss"], rtol=1e-5)
