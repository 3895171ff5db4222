#!/usr/bin/env bash
# Run tests/ray/test_s3_sweep.py (that module only) N times and keep, for each run, under
# OUT/run-NN/: pytest's log, its temp dir (the drivers' logs, outage.txt, after_first/ and
# after_resume/ with listing.txt (key, size) and a copy of every object) and the Ray session
# (logs, Tune's local staging). OUT/summary.txt gets one line per run: exit status, seconds,
# the outcome of each test.
#   scripts/s3_outage_repeat.sh [N=20] [OUT=/tmp/s3-repro] [FIRST=1]
set -u
N=${1:-20}
OUT=${2:-/tmp/s3-repro}
FIRST=${3:-1}
cd "$(dirname "$0")/.."
REPO=$PWD
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-$REPO/.venv/bin/python}
mkdir -p "$OUT"
"$PY" -c "import mmse_model, sys; print('code from', mmse_model.__file__, file=sys.stderr)"
for i in $(seq "$FIRST" "$N"); do
    run=$(printf "%s/run-%02d" "$OUT" "$i")
    rm -rf "$run" && mkdir -p "$run"
    start=$(date +%s)
    MMSE_KEEP_RAY_SESSION="$run/ray_session" "$PY" -m pytest tests/ray/test_s3_sweep.py \
        -p no:cacheprovider --basetemp="$run/pytest" -rA -v >"$run/pytest.log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    outcomes=$(grep -E '^(PASSED|FAILED|ERROR) ' "$run/pytest.log" \
        | sed -E 's/^(PASSED|FAILED|ERROR) tests\/ray\/test_s3_sweep.py::([A-Za-z0-9_]+).*/\2=\1/' \
        | tr '\n' ' ')
    echo "$(basename "$run") rc=$rc ${secs}s $outcomes" | tee -a "$OUT/summary.txt"
done
