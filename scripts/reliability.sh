#!/usr/bin/env bash
# The long reliability runs, kept out of the default test command: the same tests as
# `pytest tests/reliability`, sized up. Figures are printed and written as JSON to
# runs/reliability/<date-time>/ (docs/reliability.md quotes them).
#
#   scripts/reliability.sh            20 crash rounds, 16 clients x (10 s warm-up + 60 s),
#                                     120 s of fuzzing, the whole bad-input corpus
#   CRASH_ROUNDS=50 LOAD_SECONDS=300 scripts/reliability.sh     longer still
#   SEED=1234 scripts/reliability.sh  replay a run's random kill moments and photos
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
out=${REPORT_DIR:-runs/reliability/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"

export RELIABILITY_REPORT_DIR="$out"
export RELIABILITY_CRASH_ROUNDS=${CRASH_ROUNDS:-20}
export RELIABILITY_CRASH_CLIENTS=${CRASH_CLIENTS:-4}
export RELIABILITY_LOAD_CLIENTS=${LOAD_CLIENTS:-16}
export RELIABILITY_LOAD_WARMUP_SECONDS=${LOAD_WARMUP_SECONDS:-10}
export RELIABILITY_LOAD_SECONDS=${LOAD_SECONDS:-60}
export RELIABILITY_FUZZ_SECONDS=${FUZZ_SECONDS:-120}
[ -n "${SEED:-}" ] && export RELIABILITY_SEED="$SEED"

echo "reliability run -> $out (load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs)"
status=0
"$PY" -m pytest tests/reliability -q -s -p no:cacheprovider --timeout 3600 \
  --junitxml "$out/junit.xml" "$@" 2>&1 | tee "$out/pytest.log" || status=$?
echo
echo "figures:"
for name in inputs crash load fuzz; do
  [ -f "$out/$name.json" ] && echo "  $out/$name.json"
done
exit "$status"
