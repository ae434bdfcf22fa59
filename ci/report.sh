#!/usr/bin/env bash
# The main job: builds the release preset, runs the conformance suite against the reference
# implementation and writes reports/latest/conformance/{results.json,results.xml,summary.md}.
#   ci/report.sh [extra stagekit-conform options, e.g. --profile upstream or --filter 'stager.views.*']
# Exits non-zero when a case fails, crashes or times out.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,5p' "$0"; exit 0 ;; esac

ci/install-deps.sh
ci/build.sh release
out=reports/latest/conformance
rm -rf "$out"
status=0
build/release/conformance/stagekit-conform --out "$out" "$@" || status=$?
echo
echo "Report: $out/summary.md (also results.json and JUnit results.xml)"
exit $status
