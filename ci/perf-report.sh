#!/usr/bin/env bash
# Runs the perf harness once and builds the charted report from it and the conformance results.
#   ci/perf-report.sh BUILD_DIR OUT_DIR MODE [extra stagekit-bench flags]
# Writes OUT_DIR/perf/stagekit.json (the reference), OUT_DIR/perf/<label>.json for each other
# implementation in $STAGEKIT_IMPLS ("LABEL=SPEC ...", e.g. "pytorch=torch"; one that cannot be
# made here is left out, saying why), OUT_DIR/perf/dist.json
# (stagekit-dist-bench, the replication benchmarks included: under mpirun -np $STAGEKIT_DIST_RANKS
# (default 2, the world the distributed targets are set for) when mpirun is here and the build has
# MPI, else a thread world of as many ranks; three repetitions unless the extra flags set them; only
# --benchmark_repetitions/
# --benchmark_report_aggregates_only of the extra flags reach it; replicas are written under
# $STAGEKIT_REPLICA_DIR when set, else the system temporary directory), under mpirun also
# OUT_DIR/perf/dist_np<N>.json (the same run at N = $STAGEKIT_DIST_RANKS_ALSO ranks, default 4, set
# empty to skip it; the report shows its figures next to the distributed targets, judged on the
# first run only), OUT_DIR/charts/,
# OUT_DIR/index.html and OUT_DIR/README.md. The report's headline has a row for every implementation:
# the benchmarked ones, and each conformance results file under OUT_DIR/conformance (results.json:
# the reference; examples/<name>/results.json: the example plugins, labelled <name>).
# Used by ci/report.sh and ci/nightly-perf.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
build="$1"; out="$2"; mode="$3"; shift 3
mkdir -p "$out/perf" "$out/charts"
echo "=== stagekit: perf harness ($mode mode) ==="
"$build/perf/stagekit-bench" --stagekit_mode="$mode" --benchmark_out="$out/perf/stagekit.json" \
  --benchmark_out_format=json "$@"
dist=() dist_also=()
dist_bench="$build/perf/stagekit-dist-bench"
if [ -x "$dist_bench" ]; then
  dist_flags=()
  for flag in "$@"; do
    case "$flag" in --benchmark_repetitions=*|--benchmark_report_aggregates_only=*) dist_flags+=("$flag") ;; esac
  done
  # The distributed targets are judged on medians: three repetitions unless the caller says.
  case " ${dist_flags[*]} " in *--benchmark_repetitions=*) ;; *) dist_flags+=(--benchmark_repetitions=3) ;; esac
  ranks="${STAGEKIT_DIST_RANKS:-2}"
  mpi=() launcher=()
  if command -v mpirun >/dev/null 2>&1 && "$dist_bench" --help | grep '^MPI support: yes' >/dev/null; then
    mpi=(mpirun)
    if mpirun --version 2>&1 | grep 'Open MPI' >/dev/null; then mpi+=(--allow-run-as-root --oversubscribe); fi
    launcher=("${mpi[@]}" -np "$ranks")
    echo "=== stagekit: distributed benchmarks (mpirun -np $ranks, $mode mode) ==="
  else
    dist_flags+=(--stagekit_world_size="$ranks")
    echo "=== stagekit: distributed benchmarks (thread world of $ranks ranks: no mpirun or no MPI build; $mode mode) ==="
  fi
  rc=0
  rm -f "$out/perf/dist.json"
  [ -z "${STAGEKIT_REPLICA_DIR:-}" ] || dist_flags+=(--stagekit_replica_dir="$STAGEKIT_REPLICA_DIR")
  "${launcher[@]}" "$dist_bench" --stagekit_mode="$mode" --benchmark_out="$out/perf/dist.json" \
    --benchmark_out_format=json "${dist_flags[@]}" || rc=$?
  if [ "$rc" -eq 0 ] && [ -s "$out/perf/dist.json" ]; then
    dist=(--dist "$out/perf/dist.json")
  else
    echo "ci/perf-report.sh: stagekit-dist-bench failed (exit $rc); the report goes on without it" >&2
  fi
  # The targets are judged at $ranks ranks; the report shows a second world size's figures next to them.
  also="${STAGEKIT_DIST_RANKS_ALSO-4}"
  if [ ${#launcher[@]} -gt 0 ] && [ -n "$also" ] && [ "$also" != "$ranks" ]; then
    echo "=== stagekit: distributed benchmarks again (mpirun -np $also, next to the -np $ranks targets; $mode mode) ==="
    rc=0
    also_json="$out/perf/dist_np$also.json"
    rm -f "$also_json"
    "${mpi[@]}" -np "$also" "$dist_bench" --stagekit_mode="$mode" --benchmark_out="$also_json" \
      --benchmark_out_format=json "${dist_flags[@]}" || rc=$?
    if [ "$rc" -eq 0 ] && [ -s "$also_json" ]; then
      dist_also=(--dist-also "$also_json")
    else
      echo "ci/perf-report.sh: stagekit-dist-bench under mpirun -np $also failed (exit $rc); the report goes on without it" >&2
    fi
  fi
fi
peers=()
for entry in ${STAGEKIT_IMPLS:-}; do
  label="${entry%%=*}"
  spec="${entry#*=}"
  echo "=== stagekit: perf harness for $label (--impl $spec, $mode mode) ==="
  rc=0
  "$build/perf/stagekit-bench" --impl "$spec" --stagekit_mode="$mode" --benchmark_filter='^stage/' \
    --benchmark_out="$out/perf/$label.json" --benchmark_out_format=json "$@" || rc=$?
  if [ "$rc" -eq 0 ] && [ -s "$out/perf/$label.json" ]; then
    peers+=("$out/perf/$label.json")
  else
    rm -f "$out/perf/$label.json"
    echo "ci/perf-report.sh: $label (--impl $spec) could not be benchmarked (exit $rc); the report goes on without it" >&2
  fi
done
[ ${#dist[@]} -gt 0 ] || rm -f "$out/charts/dist_bandwidth.png" "$out/charts/dist_bandwidth.svg" \
  "$out/charts/replication_bandwidth.png" "$out/charts/replication_bandwidth.svg"
history=()
if [ -n "${STAGEKIT_HISTORY:-}" ] && compgen -G "$STAGEKIT_HISTORY/*.json" >/dev/null; then
  history=(--history "$STAGEKIT_HISTORY")
fi
ci/python.sh -m stagekit_tools.plot "$out/perf/stagekit.json" "${peers[@]}" --out "$out/charts" "${history[@]}" \
  "${dist[@]}"
conformance=()
[ -f "$out/conformance/results.json" ] && conformance=(--conformance "reference=$out/conformance/results.json")
for results in "$out"/conformance/examples/*/results.json "$out"/conformance/implementations/*/results.json; do
  [ -f "$results" ] && conformance+=(--conformance "$(basename "$(dirname "$results")")=$results")
done
[ -f "$out/conformance/side_by_side.html" ] &&
  conformance+=(--link "conformance/side_by_side.html=Conformance of every implementation, side by side")
[ -f "$out/conformance/catch_table.md" ] &&
  conformance+=(--link "conformance/catch_table.md=What each case family catches: the broken variants, family by family")
peer_args=()
for p in "${peers[@]}"; do peer_args+=(--peer "$p"); done
ci/python.sh -m stagekit_tools.report --perf "$out/perf/stagekit.json" "${peer_args[@]}" "${dist[@]}" \
  "${dist_also[@]}" "${conformance[@]}" --charts "$out/charts" --out "$out"
