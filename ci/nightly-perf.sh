#!/usr/bin/env bash
# Nightly perf: runs the benchmarks with repetitions, appends the result to the history, looks for
# lasting regressions over the whole history, redraws the charts and the report.
#   ci/nightly-perf.sh [--mode full|quick|smoke] [--repetitions N] [--history DIR] [--out DIR]
#                      [--threshold FRACTION] [--min-size NIGHTS] [--build DIR]
#                      [-- extra stagekit-bench flags]
# Defaults: full mode, 9 repetitions, reports/history, reports/nightly, threshold 0.10, 3 nights,
# build/release (built first unless --build names an existing build).
# Exit status: 0 no lasting regression, 1 a lasting regression (the table of stagekit_tools.detect
# says which), 2 bad usage or a failed run.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=full repetitions=9 history=reports/history out=reports/nightly threshold=0.10 min_size=3 build=
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) mode="$2"; shift 2 ;;
    --repetitions) repetitions="$2"; shift 2 ;;
    --history) history="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --threshold) threshold="$2"; shift 2 ;;
    --min-size) min_size="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "ci/nightly-perf.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

if [ -z "$build" ]; then
  ci/install-deps.sh
  ci/build.sh release
  build=build/release
fi
mkdir -p "$history" "$out"
STAGEKIT_HISTORY="$history" ci/perf-report.sh "$build" "$out" "$mode" \
  --benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=false "${extra[@]}"
night="$(date -u +%Y%m%dT%H%M%S.%NZ)_$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
cp "$out/perf/stagekit.json" "$history/$night.json"
echo "=== stagekit: lasting steps over $(ls "$history" | wc -l) night(s) in $history ==="
status=0
ci/python.sh -m stagekit_tools.detect "$history" --threshold "$threshold" --min-size "$min_size" || status=$?
# Redraw with tonight included.
ci/python.sh -m stagekit_tools.plot "$out/perf/stagekit.json" --out "$out/charts" --history "$history" >/dev/null
exit $status
