#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with CTest.
#   ci/test.sh          what CI runs: the `ci` preset (optimised, warnings as errors; every test but
#                       the nightly-only ones, the C++ format and Python lint checks included), then
#                       the `asan` preset (AddressSanitizer + UndefinedBehaviorSanitizer, its null and
#                       alignment checks left out: ASan reports a null dereference itself, and x86
#                       loads tolerate misalignment; a quarter less to compile) running the
#                       same tests but the Python tools', then fuzzes the replica and message readers
#                       for 30 s (ci/fuzz.sh). The asan build runs beside the ci tests, and the fuzzing
#                       beside the asan tests, at the lowest CPU priority (nice 19): they take the
#                       cycles the tests leave idle (many wait on timeouts) without slowing them
#   ci/test.sh quick    the `ci` preset only
#   ci/test.sh full     as with no argument, plus the nightly-only tests of the `ci` build (the
#                       nightly job flags an injected slowdown), the `asan-all` preset (every
#                       UndefinedBehaviorSanitizer check) running the asan tests, the `tsan` preset
#                       (ThreadSanitizer) running the tests labelled `threads` (stager, allocator,
#                       thread world, runner, cases), clang-tidy over every source (ci/tidy.sh) and a
#                       minute of fuzzing
# Exits non-zero on any build or test failure. Prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-default}"
case "$mode" in
  default|quick|full) ;;
  -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
  *) echo "usage: ci/test.sh [quick|full]" >&2; exit 2 ;;
esac

started=$(date +%s)
timed() {  # timed LABEL COMMAND...: runs COMMAND, then prints how long it took
  local label="$1" start
  shift
  start=$(date +%s)
  "$@"
  echo "=== stagekit: $label passed in $(( $(date +%s) - start )) s ==="
}
preset() {
  echo "=== stagekit: build and test, preset '$1' ==="
  timed "build ($1)" ci/build.sh "$1"
  timed "tests ($1)" ci/ctest.sh "$1"
}
# background LABEL LOG COMMAND...: starts COMMAND at the lowest CPU priority, its output in LOG.
background() {
  local label="$1" log="$2"
  shift 2
  mkdir -p "$(dirname "$log")"
  echo "=== stagekit: $label started beside the tests (nice 19; output in $log) ==="
  bg_label="$label" bg_log="$log" bg_start=$(date +%s)
  # A session of its own, so that a failure in the foreground stops the whole group (see the trap).
  setsid nice -n 19 "$@" > "$log" 2>&1 &
  bg_pid=$!
}
bg_pid=""
trap '[ -z "$bg_pid" ] || kill -TERM -- "-$bg_pid" 2>/dev/null || true' EXIT
# Waits for the background command; on failure prints the end of its output and stops.
wait_background() {
  local rc=0
  wait "$bg_pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$bg_log" >&2
    echo "=== stagekit: $bg_label FAILED (exit $rc; the whole output is in $bg_log) ===" >&2
    exit "$rc"
  fi
  bg_pid=""
  echo "=== stagekit: $bg_label passed in $(( $(date +%s) - bg_start )) s (beside the tests) ==="
}

ci/install-deps.sh
echo "=== stagekit: build and test, preset 'ci' ==="
timed "build (ci)" ci/build.sh ci
if [ "$mode" = quick ]; then
  timed "tests (ci)" ci/ctest.sh ci
  echo "=== stagekit: all passed in $(( $(date +%s) - started )) s ==="
  exit 0
fi
background "build (asan)" build/logs/asan-build.log ci/build.sh asan
timed "tests (ci)" ci/ctest.sh ci
[ "$mode" = full ] && timed "nightly-only tests (ci)" ci/ctest.sh ci-nightly
wait_background
echo "=== stagekit: tests, preset 'asan' ==="
background "fuzzing" build/logs/fuzz.log ci/fuzz.sh "$([ "$mode" = full ] && echo 60 || echo 30)"
timed "tests (asan)" ci/ctest.sh asan
wait_background
if [ "$mode" = full ]; then
  preset asan-all
  preset tsan
  timed "clang-tidy" ci/tidy.sh
fi
echo "=== stagekit: all passed in $(( $(date +%s) - started )) s ==="
