#!/usr/bin/env bash
# ci/nightly-perf.sh must flag a lasting slowdown and stay quiet without one. Six nights of smoke
# runs give the quiet history; three of them followed by three nights in which the stager sleeps
# (STAGEKIT_DEBUG_STAGE_DELAY_US) give the step.
#   perf/tests/nightly_detects_slowdown.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
build="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

night() {  # night HISTORY -> exit status of the nightly run
  local rc=0
  ci/nightly-perf.sh --build "$build" --mode smoke --repetitions 3 --history "$1" --out "$tmp/out" \
    --threshold 0.5 --min-size 3 -- --benchmark_filter='stage/cpu_to_pageable/large/warm' \
    --benchmark_min_time=0.02 >"$tmp/log" 2>&1 || rc=$?
  echo "$rc"
}

for i in 1 2 3 4 5 6; do
  rc=$(night "$tmp/quiet")
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: night $i without a slowdown exited $rc"; cat "$tmp/log"; exit 1
  fi
done
mkdir -p "$tmp/step"
ls "$tmp/quiet" | sort | head -3 | while read -r f; do cp "$tmp/quiet/$f" "$tmp/step/"; done
for i in 1 2 3; do
  rc=$(STAGEKIT_DEBUG_STAGE_DELAY_US=2000 night "$tmp/step")
  if [ "$i" -lt 3 ] && [ "$rc" -ne 0 ]; then
    echo "FAIL: slow night $i of 3 already exited $rc (a step needs 3 nights)"; cat "$tmp/log"; exit 1
  fi
done
if [ "$rc" -ne 1 ]; then
  echo "FAIL: three slow nights after three normal ones exited $rc, expected 1 (lasting regression)"
  cat "$tmp/log"; exit 1
fi
grep -q "stage/cpu_to_pageable/large/warm" "$tmp/log" || { echo "FAIL: the report does not name the benchmark"; cat "$tmp/log"; exit 1; }
echo "PASS: quiet history not flagged; the injected slowdown flagged after 3 nights"
