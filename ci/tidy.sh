#!/usr/bin/env bash
# Runs clang-tidy (the repository's .clang-tidy) over every stagekit C++ source of a build's
# compile_commands.json; prints each finding and exits 1 if there is any.
#   ci/tidy.sh [BUILD_DIR]     default: build/tidy, configured (not built) like the `ci` preset but
#                              file by file: unity builds list their batches, not the sources, in
#                              compile_commands.json
# Slow (about as long as a build: clang parses every file), so it is not part of the default test
# run: `ci/test.sh full` runs it.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,8p' "$0"; exit 0 ;; esac
build="${1:-build/tidy}"
if [ -z "${1:-}" ]; then
  cmake --preset ci -B "$build" -DCMAKE_UNITY_BUILD=OFF >/dev/null || exit 2
fi
[ -f "$build/compile_commands.json" ] || { echo "ci/tidy.sh: no $build/compile_commands.json" >&2; exit 2; }
tidy=""
for candidate in run-clang-tidy-14 run-clang-tidy; do
  if command -v "$candidate" >/dev/null 2>&1; then tidy="$candidate"; break; fi
done
[ -n "$tidy" ] || { echo "ci/tidy.sh: run-clang-tidy not found (apt-get install clang-tidy)" >&2; exit 2; }
# This repository's sources only, matched against the absolute paths in compile_commands.json.
sources="^$PWD/(reference|conformance|perf|testing|fuzz)/.*\\.cpp\$"
log="$build/clang-tidy.log"
echo "=== stagekit: clang-tidy over $build ($(nproc) jobs), log in $log"
"$tidy" -p "$build" -quiet -j "$(nproc)" "$sources" >"$log" 2>&1
rc=$?
grep -E '(error|warning): ' "$log" | sort -u
if [ "$rc" -ne 0 ]; then
  echo "ci/tidy.sh: clang-tidy reported findings (exit $rc); see $log" >&2
  exit 1
fi
echo "ci/tidy.sh: no findings"
