#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with CTest.
#   ci/test.sh          the `ci` preset (optimised, warnings as errors), then the `asan` preset
#                       (AddressSanitizer + UndefinedBehaviorSanitizer) running the same tests
#   ci/test.sh quick    the `ci` preset only
#   ci/test.sh full     as with no argument, then the `tsan` preset (ThreadSanitizer) running the
#                       tests labelled `threads`: stager, allocator, thread world, runner, cases
#   every mode then fuzzes the replica reader for 45 s (ci/fuzz.sh)
# Exits non-zero on any build or test failure.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-default}"
case "$mode" in
  default) presets=(ci asan) ;;
  quick) presets=(ci) ;;
  full) presets=(ci asan tsan) ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "usage: ci/test.sh [quick|full]" >&2; exit 2 ;;
esac

ci/install-deps.sh
for preset in "${presets[@]}"; do
  echo "=== stagekit: build and test, preset '$preset' ==="
  start=$(date +%s)
  ci/build.sh "$preset"
  ci/ctest.sh "$preset"
  echo "=== preset '$preset' passed in $(( $(date +%s) - start )) s ==="
done
# Every mode: fuzz the replica reader for 45 s (clang-14 + libFuzzer build in build/fuzz).
ci/fuzz.sh 45
