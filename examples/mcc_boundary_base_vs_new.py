"""``pixel_mcc`` and ``pixel_boundary(from_maps=True)``, loss + gradient, as a base commit had them
and as this checkout has them, against the sparse floor, timed in one process (interleaved
medians of ``sm_pixel_ce.bench.timing``, graph mode and XLA): the measurement behind
examples/losses_mcc_boundary.md's "base vs new" table. Both versions' values and gradients are
checked equal first.

    python examples/mcc_boundary_base_vs_new.py BASE N SIZE REPEATS [MODES]
    python examples/mcc_boundary_base_vs_new.py 097e9c6 8 256 31 xla,graph

The base versions of ``losses/mcc.py`` and ``losses/boundary.py`` are read with ``git show`` into
a temporary folder and imported beside today's (their name registrations left out).
"""

import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from sm_pixel_ce import pixel_softmax
from sm_pixel_ce.bench.cases import make_inputs
from sm_pixel_ce.bench.losses import floor_sparse
from sm_pixel_ce.bench.timing import loss_and_gradient, time_interleaved_spread
from sm_pixel_ce.losses import PixelBoundaryLoss, PixelMCCLoss, pixel_boundary_targets

C = 7


def base_function(base, path, name, folder):
    """``name`` from ``path`` as commit ``base`` had it."""
    source = subprocess.check_output(["git", "show", f"{base}:{path}"], text=True)
    source = re.sub(r"^@(register|serializable).*$", "", source, flags=re.M)
    module_name = "_base_" + os.path.basename(path)[:-3]
    file = os.path.join(folder, module_name + ".py")
    with open(file, "w") as out:
        out.write(source)
    spec = importlib.util.spec_from_file_location(f"sm_pixel_ce.losses.{module_name}", file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, name)


def main(base, batch, size, repeats, modes):
    folder = tempfile.mkdtemp()
    old_mcc = base_function(base, "sm_pixel_ce/losses/mcc.py", "pixel_mcc_loss", folder)
    old_boundary = base_function(
        base, "sm_pixel_ce/losses/boundary.py", "pixel_boundary_loss", folder
    )
    data = make_inputs(batch, size, C, block=32)
    logits, mask = tf.constant(data["logits"]), tf.constant(data["mask"].astype(np.int32))
    maps = tf.function(lambda y: pixel_boundary_targets(y, C))(
        tf.constant(data["blocks"].astype(np.int32))
    )
    mcc, boundary = PixelMCCLoss(), PixelBoundaryLoss(from_maps=True)
    cases = {
        "floor_sparse": (mask, floor_sparse),
        "mcc_base": (mask, lambda y, z: old_mcc(y, pixel_softmax(z))),
        "mcc_new": (mask, lambda y, z: mcc(y, pixel_softmax(z))),
        "boundary_maps_base": (
            maps,
            lambda y, z: old_boundary(y, pixel_softmax(z), from_maps=True),
        ),
        "boundary_maps_new": (maps, lambda y, z: boundary(y, pixel_softmax(z))),
    }
    for mode in modes:
        steps = {name: loss_and_gradient(fn, mode == "xla") for name, (_, fn) in cases.items()}
        for pair in ("mcc", "boundary_maps"):
            y = cases[pair + "_new"][0]
            old, new = steps[pair + "_base"](y, logits), steps[pair + "_new"](y, logits)
            np.testing.assert_allclose(new[0], old[0], rtol=1e-5)
            np.testing.assert_allclose(new[1], old[1], rtol=1e-4, atol=1e-9)
        calls = {
            name: lambda step=step, y=cases[name][0]: step(y, logits)[0].numpy()
            for name, step in steps.items()
        }
        spread = time_interleaved_spread(calls, repeats, 2)
        floor = spread["floor_sparse"][1]
        print(f"{mode} {batch}x{size}x{size}x{C}, medians of {repeats} (quartiles), ×floor:")
        for name, (low, median, high) in spread.items():
            print(f"  {name:20s} {median:8.2f} ms ({low:.1f}-{high:.1f})  x{median / floor:.2f}")


if __name__ == "__main__":
    modes = sys.argv[5].split(",") if len(sys.argv) > 5 else ["xla"]
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), modes)
