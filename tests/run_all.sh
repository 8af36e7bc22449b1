#!/usr/bin/env bash
# The whole test suite, as CI runs it (README, first screen): Keras 3 with two pytest-xdist
# workers and, beside it, the JAX and then the PyTorch backend's checks (one process each: they
# fill the core that Keras 3's workers leave idle, and their output is held in a log and printed
# after Keras 3's); then what depends on the Keras flavour, in tf_keras. Extra arguments go to
# the two Keras runs (e.g. -x). Exit status: 1 if any of the four runs failed.
# Run from anywhere: bash tests/run_all.sh
set -u
cd "$(dirname "$0")/.."
log=$(mktemp)
(
    KERAS_BACKEND=jax python -m pytest -m jax tests/test_jax_*.py &&
        KERAS_BACKEND=torch python -m pytest -m torch tests/test_torch_*.py
) >"$log" 2>&1 &
backends=$!
python -m pytest -n 2 "$@"
keras3=$?
wait "$backends"
other=$?
echo "=== the JAX, then the PyTorch backend's checks (KERAS_BACKEND=jax, torch) ==="
cat "$log"
rm -f "$log"
TF_USE_LEGACY_KERAS=1 python -m pytest -n 2 -m "not slow and not one_flavor" "$@"
legacy=$?
[ "$keras3" -eq 0 ] && [ "$other" -eq 0 ] && [ "$legacy" -eq 0 ]
