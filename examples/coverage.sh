#!/usr/bin/env bash
# Line coverage of the whole test suite, every process combined: the four pytest processes of the
# README's test command (Keras 3 and tf_keras with their xdist workers, JAX, PyTorch) and the
# processes they start (fresh-process reloads, compare's runs, export children).
# Run from the repository root: bash examples/coverage.sh   (about 40 minutes on 2 cores)
set -euo pipefail
rc=$(mktemp --suffix=.coveragerc)
data=$(mktemp -d)
cat > "$rc" <<RC
[run]
source = sm_pixel_ce
parallel = true
patch = subprocess
data_file = $data/.coverage
RC
export COVERAGE_RCFILE=$rc
cov=(--cov --cov-config="$rc" --cov-report= --cov-append)
python -m pytest -q -n 2 "${cov[@]}" || true
TF_USE_LEGACY_KERAS=1 python -m pytest -q -n 2 -m "not slow and not one_flavor" "${cov[@]}" || true
KERAS_BACKEND=jax python -m pytest -q -m jax tests/test_jax_*.py "${cov[@]}" || true
KERAS_BACKEND=torch python -m pytest -q -m torch tests/test_torch_*.py "${cov[@]}" || true
# pytest-cov has combined its workers' and their subprocesses' files already ("No data to combine").
coverage combine -q --rcfile="$rc" "$data" || true
coverage report --rcfile="$rc" --data-file="$data/.coverage" | tail -1
