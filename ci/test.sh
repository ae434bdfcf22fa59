#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with CTest.
#   ci/test.sh          what CI runs: the `ci` preset (optimised, warnings as errors; every test but
#                       the nightly-only ones, the C++ format and Python lint checks included), then
#                       the `asan` preset (AddressSanitizer + UndefinedBehaviorSanitizer) running the
#                       same tests but the Python tools', then fuzzes the replica and message readers
#                       for 30 s (ci/fuzz.sh)
#   ci/test.sh quick    the `ci` preset only
#   ci/test.sh full     as with no argument, plus the nightly-only tests of the `ci` build (the
#                       nightly job flags an injected slowdown), the `tsan` preset (ThreadSanitizer)
#                       running the tests labelled `threads` (stager, allocator, thread world, runner,
#                       cases), clang-tidy over every source (ci/tidy.sh) and 5 minutes of fuzzing
# Exits non-zero on any build or test failure. Prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-default}"
case "$mode" in
  default|quick|full) ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
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

ci/install-deps.sh
preset ci
[ "$mode" = quick ] && { echo "=== stagekit: all passed in $(( $(date +%s) - started )) s ==="; exit 0; }
[ "$mode" = full ] && timed "nightly-only tests (ci)" ci/ctest.sh ci-nightly
preset asan
if [ "$mode" = full ]; then
  preset tsan
  timed "clang-tidy" ci/tidy.sh
  timed "fuzzing" ci/fuzz.sh 300
else
  timed "fuzzing" ci/fuzz.sh 30
fi
echo "=== stagekit: all passed in $(( $(date +%s) - started )) s ==="
