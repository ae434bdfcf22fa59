#!/usr/bin/env bash
# The main job: builds the release preset, runs the conformance suite against the reference
# implementation, builds the example plugins against the installed package and runs them (the
# minimal correct one and the deliberately broken ones, each against its expectations), puts every
# implementation side by side, then runs a quick perf pass and writes the report:
#   reports/latest/conformance/{results.json,results.xml,summary.md}   the reference
#   reports/latest/conformance/examples/<plugin>/...                    each example plugin
#   reports/latest/conformance/side_by_side.{html,md}                   cases x implementations
#   reports/latest/conformance/catch_table.md                           the broken variants each family catches
#   reports/latest/perf/stagekit.json (Google Benchmark JSON; pytorch.json too where torch runs),
#   dist.json and, under mpirun, dist_np4.json (the distributed benchmarks at 2 and 4 ranks)
#   reports/latest/charts/*.png|svg, reports/latest/index.html, reports/latest/README.md
#   ci/report.sh [extra stagekit-conform options, e.g. --profile upstream or --filter 'stager.views.*']
# Set STAGEKIT_PERF_MODE=smoke|quick|full (default quick) to change the perf pass, and
# STAGEKIT_IMPLS="LABEL=SPEC ..." for the other implementations tested and benchmarked next to the
# reference (any --impl spec; default where the build has the torch route: the project's correct
# Python stager and PyTorch's own, "torch-correct=torch:stagekit_torch_examples.correct:CorrectStager
# pytorch=torch"). Their results: reports/latest/conformance/implementations/<label>/ and
# reports/latest/perf/<label>.json.
# Exits non-zero when a reference case fails, crashes or times out, an example plugin does not
# behave as its expectations say, or a benchmark result is wrong.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,21p' "$0"; exit 0 ;; esac

ci/install-deps.sh
ci/build.sh release
out=reports/latest
rm -rf "$out"
mkdir -p "$out"
status=0
echo "=== stagekit: conformance suite against the reference ==="
build/release/conformance/stagekit-conform --jobs "$(nproc)" --out "$out/conformance" "$@" || status=$?

echo "=== stagekit: example plugins, built against the installed package ==="
examples=build/release-examples
conformance/tests/examples_against_installed.sh build/release . "$examples" || status=$?
side_by_side=("reference=$out/conformance/results.json")
for results in "$examples"/results/*/results.json; do
  [ -f "$results" ] || continue
  name=$(basename "$(dirname "$results")")
  mkdir -p "$out/conformance/examples/$name"
  cp "$(dirname "$results")"/* "$out/conformance/examples/$name/"
  side_by_side+=("$name=$out/conformance/examples/$name/results.json")
done
# The other configured implementations: the suite, then (in ci/perf-report.sh) the benchmarks.
export PYTHONPATH="$PWD/conformance/torch/examples${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${STAGEKIT_IMPLS+set}" ] && grep -q '^#define STAGEKIT_HAVE_PYTHON 1' build/release/generated/stagekit/config.h 2>/dev/null; then
  export STAGEKIT_IMPLS="torch-correct=torch:stagekit_torch_examples.correct:CorrectStager pytorch=torch"
fi
for entry in ${STAGEKIT_IMPLS:-}; do
  label="${entry%%=*}"
  spec="${entry#*=}"
  echo "=== stagekit: conformance suite against $label (--impl $spec) ==="
  # The project's own Python stagers are judged against their expectations files (what torch 1.13
  # cannot do is expected there), as ctest judges them.
  expect=()
  if [[ "$spec" =~ ^torch:stagekit_torch_examples\.([a-z_.]+): ]]; then
    file="conformance/torch/examples/expect/${BASH_REMATCH[1]##*.}.expect.json"
    [ -f "$file" ] && expect=(--expect "$file")
  fi
  rc=0
  build/release/conformance/stagekit-conform --impl "$spec" --jobs "$(nproc)" --quiet "${expect[@]}" \
    --out "$out/conformance/implementations/$label" "$@" || rc=$?
  # Its failures are findings about that implementation, reported side by side, not a failed job.
  [ -f "$out/conformance/implementations/$label/results.json" ] &&
    side_by_side+=("$label=$out/conformance/implementations/$label/results.json")
done
ci/python.sh -m stagekit_tools.side_by_side --title "stagekit conformance: implementations side by side" \
  --out "$out/conformance/side_by_side.html" --markdown "$out/conformance/side_by_side.md" \
  "${side_by_side[@]}" || status=1

# Which broken variants each case family catches (the table of conformance/README.md, for this build).
ci/python.sh -m stagekit_tools.catch_table --conform build/release/conformance/stagekit-conform \
  --cpp conformance/examples/broken --python conformance/torch/examples/expect \
  --reasons conformance/catch-reasons.json >"$out/conformance/catch_table.md" || status=1

ci/perf-report.sh build/release "$out" "${STAGEKIT_PERF_MODE:-quick}"
# A benchmark that failed (an error other than not_supported, or a wrong result) fails the job.
ci/python.sh -m stagekit_tools.check_perf "$out/perf/stagekit.json" || status=1

echo
echo "Report: $out/index.html and $out/README.md"
echo "        $out/conformance/summary.md (results.json, JUnit results.xml), $out/perf/stagekit.json"
echo "        $out/conformance/side_by_side.html (the reference and the example plugins)"
exit $status
