#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with CTest.
#   ci/test.sh          the `ci` preset (optimised, warnings as errors), then the `asan` preset
#                       (AddressSanitizer + UndefinedBehaviorSanitizer) running the same tests
#   ci/test.sh quick    the `ci` preset only
#   both modes then fuzz the replica reader for 45 s (ci/fuzz.sh)
# Exits non-zero on any build or test failure.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-full}"
case "$mode" in
  full) presets=(ci asan) ;;
  quick) presets=(ci) ;;
  -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
  *) echo "usage: ci/test.sh [full|quick]" >&2; exit 2 ;;
esac

ci/install-deps.sh
for preset in "${presets[@]}"; do
  echo "=== stagekit: build and test, preset '$preset' ==="
  start=$(date +%s)
  ci/build.sh "$preset"
  ctest --preset "$preset"
  echo "=== preset '$preset' passed in $(( $(date +%s) - start )) s ==="
done
# Both modes: fuzz the replica reader for 45 s (clang-14 + libFuzzer build in build/fuzz).
ci/fuzz.sh 45
