#!/usr/bin/env bash
# The whole test suite, as CI runs it (README, first screen). Two lanes fill the 2 cores:
# - Keras 3 with two pytest-xdist workers, in the foreground;
# - beside it, the JAX and then the PyTorch backend's checks (one process each), then what
#   depends on the Keras flavour, in tf_keras (two workers) at a lower priority (nice): it takes
#   the CPU time Keras 3's workers leave idle (a test waiting on a child process, a worker's
#   last test) and the whole machine once Keras 3 is done.
# The second lane's output is held in logs: printed after Keras 3's, tf_keras's followed live
# until it ends. Extra arguments go to the two Keras runs (e.g. -x). Exit status: 1 if any of
# the four runs failed.
# Run from anywhere: bash tests/run_all.sh
set -u
cd "$(dirname "$0")/.."
held=$(mktemp -d)
(
    (
        KERAS_BACKEND=jax python -m pytest -m jax tests/test_jax_*.py &&
            KERAS_BACKEND=torch python -m pytest -m torch tests/test_torch_*.py
    ) >"$held/backends.log" 2>&1
    echo $? >"$held/backends.status"
    TF_USE_LEGACY_KERAS=1 nice -n 10 python -m pytest -n 2 -m "not slow and not one_flavor" "$@" \
        >"$held/tf_keras.log" 2>&1
    echo $? >"$held/tf_keras.status"
) &
lane=$!
python -m pytest -n 2 "$@"
keras3=$?
while [ ! -e "$held/backends.status" ] && kill -0 "$lane" 2>/dev/null; do sleep 1; done
echo "=== the JAX, then the PyTorch backend's checks (KERAS_BACKEND=jax, torch) ==="
cat "$held/backends.log"
echo "=== what depends on the Keras flavour, in tf_keras (TF_USE_LEGACY_KERAS=1) ==="
touch "$held/tf_keras.log"
tail -n +1 -f --pid="$lane" "$held/tf_keras.log"
wait "$lane"
other=$(cat "$held/backends.status" 2>/dev/null || echo 1)
legacy=$(cat "$held/tf_keras.status" 2>/dev/null || echo 1)
rm -rf "$held"
[ "$keras3" -eq 0 ] && [ "$other" -eq 0 ] && [ "$legacy" -eq 0 ]
