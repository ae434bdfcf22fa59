#!/usr/bin/env bash
# The main job: builds the release preset, runs the conformance suite against the reference
# implementation, then a quick perf pass, and writes the report:
#   reports/latest/conformance/{results.json,results.xml,summary.md}
#   reports/latest/perf/stagekit.json (Google Benchmark JSON; pytorch.json too where torch runs)
#   reports/latest/charts/*.png|svg, reports/latest/index.html, reports/latest/README.md
#   ci/report.sh [extra stagekit-conform options, e.g. --profile upstream or --filter 'stager.views.*']
# Set STAGEKIT_PERF_MODE=smoke|quick|full (default quick) to change the perf pass.
# Exits non-zero when a conformance case fails, crashes or times out, or a benchmark result is wrong.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,10p' "$0"; exit 0 ;; esac

ci/install-deps.sh
ci/build.sh release
out=reports/latest
rm -rf "$out"
mkdir -p "$out"
status=0
echo "=== stagekit: conformance suite against the reference ==="
build/release/conformance/stagekit-conform --out "$out/conformance" "$@" || status=$?

ci/perf-report.sh build/release "$out" "${STAGEKIT_PERF_MODE:-quick}"
ci/python.sh - "$out/perf/stagekit.json" <<'PY' || status=1
import json, sys
errors = [b for b in json.load(open(sys.argv[1]))["benchmarks"]
          if b.get("error_occurred") and not b.get("error_message", "").startswith("not_supported:")]
for b in errors:
    print(f"perf error: {b['name']}: {b['error_message']}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY

echo
echo "Report: $out/index.html and $out/README.md"
echo "        $out/conformance/summary.md (results.json, JUnit results.xml), $out/perf/stagekit.json"
exit $status
