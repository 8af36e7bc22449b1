import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# JAX compiles each jitted function (even a weight initialiser, per shape) in ~0.3 s on these CPUs
# and the JAX tests reload models in fresh processes: its persistent cache lets a child process
# reuse what the test process compiled (the same executables, so the same numbers).
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "sm_pixel_ce-jax-cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# The JAX process compiles hundreds of small programs once each (a fresh machine has no cache):
# XLA's CPU backend without LLVM's optimisation passes compiles them in a quarter less CPU (the
# JAX checks: 259 -> 199 CPU-s, cold cache). The programs (HLO) are the same; what is checked is
# their values against NumPy, not their speed (the bench times the default). TensorFlow's
# processes keep the default: XLA's compiles are a small share of their time.
if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import sm_pixel_ce  # noqa: E402,F401  (registers the names before any test builds a model)

#: The test modules that take longest (``--durations``, both flavours), in that order. Under
#: ``--dist loadgroup`` (pyproject's addopts) pytest-xdist hands a worker its next test when it has
#: two left, so starting with the longest ones lets the two workers finish together instead of
#: one waiting out another's 2-minute test at the end.
LONGEST_FIRST = (
    "test_compare_parallel",
    "test_sm_support",
    "test_models",
    "test_export",
    "test_command_line",
    "test_bench",
    "test_specs",
    "test_advisor",
    "test_compare",
    "test_compare_streaming",
    "test_reliability",
    "test_distribute",
    "test_loss_sums",
    "test_folders",
    "test_jobs_contract",
    "test_contract",
)


def pytest_collection_modifyitems(config, items):
    """Run the modules of :data:`LONGEST_FIRST` first, in its order; the rest keep theirs."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def module(item):
        return os.path.splitext(os.path.basename(item.nodeid.split("::")[0]))[0]

    items.sort(key=lambda item: rank.get(module(item), len(rank)))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def write_mask_folder(root, count=8, side=32, classes=3, palette=False):
    """``root/images/NNN.png`` and ``root/masks/NNN.png``: 8-px blocks of random classes with a
    2-px void border (255) on the left, and images coloured by class with noise; with
    ``palette``, every odd mask is a palette PNG whose colours are not its indices."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    blocks = side // 8
    for i in range(count):
        mask = np.repeat(np.repeat(rng.integers(0, classes, (blocks, blocks)), 8, 0), 8, 1)
        mask = mask.astype(np.uint8)
        mask[:, :2] = 255
        image = (
            np.eye(3)[np.minimum(mask, 2)] * 200 + rng.integers(0, 40, (side, side, 3))
        ).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"{i:03d}.png")
        m = Image.fromarray(mask)
        if palette and i % 2:
            m = m.convert("P")
            m.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [9, 9, 9] * 252 + [255, 255, 255])
            m.putdata(mask.ravel().tolist())
        m.save(root / "masks" / f"{i:03d}.png")
    return root


@pytest.fixture
def mask_folder():
    """:func:`write_mask_folder`, for a test to call with its own root and sizes."""
    return write_mask_folder


#: Plain SGD for the tests' tiny runs: what they check does not depend on the optimizer, and
#: Keras 3's Adam triples the train step's graph (11 s of CPU to trace and optimise a resnet18
#: U-Net's step against 3.6 s for SGD; tf_keras 5.1 s against 2.5 s). Tests of Adam itself pass
#: ``--optimizer adam`` after it.
FAST_OPTIMIZER = ("--optimizer", "sgd", "--momentum", "0", "--lr", "0.05")

#: The tests' tiny training, in ``compare``'s flags: 32 px, 1 epoch, batch 4, plain SGD.
TINY_TRAINING = ("--size", "32", "--epochs", "1", "--batch-size", "4", *FAST_OPTIMIZER)


def tiny_compare_argv(out, *extra, variants=("cce",), data=None, images=8):
    """The argv of the tiny ``compare`` run the tests share (:data:`TINY_TRAINING`); on the
    generated scenes (``images`` of them), or on ``data`` (3 classes, 255 ignored)."""
    source = (
        ["--data", str(data), "--classes", "3", "--ignore-index", "255"]
        if data is not None
        else ["--images", str(images)]
    )
    return [
        "compare",
        *source,
        *TINY_TRAINING,
        "--variants",
        ",".join(variants),
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture
def compare_argv():
    """:func:`tiny_compare_argv`."""
    return tiny_compare_argv


def checkout_env(**extra):
    """The environment of a child process that runs a script of tests/: this checkout's
    sm_pixel_ce first on PYTHONPATH (whatever is installed), TensorFlow's log quiet, no
    ``TF_CONFIG`` but what ``extra`` sets (a multi-worker check's)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=root)
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


#: The tf.distribute checks on 2 logical CPUs that :func:`mirrored_reports` runs.
MIRRORED_CHECKS = ("mirrored", "regions", "custom", "boundary", "topk")


@pytest.fixture(scope="session")
def mirrored_reports():
    """``{check: report}`` of tests/distributed_check.py's checks on a ``MirroredStrategy`` over 2
    logical CPUs (with boundary_distributed_check.py's and topk_distributed_check.py's), all in
    ONE fresh process (the logical devices are set before TensorFlow starts; one TensorFlow
    import for five checks). The process inherits the Keras flavour. The tests using it share
    the ``mirrored`` xdist group: one worker runs it once."""
    tests = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(
        [sys.executable, os.path.join(tests, "distributed_check.py"), *MIRRORED_CHECKS],
        capture_output=True,
        text=True,
        env=checkout_env(),
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"mode"')]
    return {line["mode"]: line["report"] for line in lines}
