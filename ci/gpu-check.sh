#!/usr/bin/env bash
# The checks that need a GPU, as one short run for a machine lent for a few minutes:
#   ci/gpu-check.sh [BUNDLE_OR_BUILD_DIR] [OUT_DIR]     default: .gpu-bundle  reports/gpu-check
# BUNDLE_OR_BUILD_DIR is a bundle made by ci/gpu-bundle.sh (bin/, lib/: for a machine without
# stagekit's build dependencies) or a CUDA build tree. Steps, each bounded in time, each logged to
# OUT_DIR/<step>.log, a failed step does not stop the others:
#   device   nvidia-smi, the libraries the executables resolve
#   unit     every unit-test executable (their CUDA tests run where a device is present)
#   conform  stagekit-conform on the reference: every case, the *.cuda.* ones included
#   bench    stagekit-bench quick, 3 repetitions: the CUDA stage benchmarks and every limit
#   torch    ci/gpu/torch_probe.py: PyTorch's own StateDictStager on this GPU (where torch is)
# then prints every figure (ci/gpu/summary.py) and packs OUT_DIR into OUT_DIR.tar.gz. The most
# telling steps come first and the time limits add up to under 9 minutes, so that one call on a
# lent machine returns whatever finished. Exits 1 when a step failed. To rerun a part:
#   STAGEKIT_GPU_CONFORM_FILTER  stagekit-conform --filter (default: every case)
#   STAGEKIT_GPU_BENCH_FILTER    stagekit-bench --benchmark_filter (default: ^stage/cuda)
#   STAGEKIT_GPU_UNIT_FILTER     --gtest_filter for every unit-test executable (default: all tests)
#   STAGEKIT_GPU_STEPS           the steps to run (default: "device conform bench unit torch")
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,19p' "$0"; exit 0 ;; esac
src="${1:-.gpu-bundle}"
out="${2:-reports/gpu-check}"
mkdir -p "$out"
failed=()

if [ -d "$src/bin" ]; then
  bin="$src/bin"
  export LD_LIBRARY_PATH="$PWD/$src/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  unit_tests=$(ls "$bin"/stagekit_*tests 2>/dev/null)
  conform="$bin/stagekit-conform" bench="$bin/stagekit-bench"
else
  unit_tests=$(find "$src" -type f -executable -name 'stagekit_*tests' -not -path '*/CMakeFiles/*' | sort)
  conform=$(find "$src" -type f -name stagekit-conform -not -path '*/CMakeFiles/*' | head -1)
  bench=$(find "$src" -type f -name stagekit-bench -not -path '*/CMakeFiles/*' | head -1)
fi
unit_filter="${STAGEKIT_GPU_UNIT_FILTER:-}"
export out conform bench unit_tests unit_filter
if [ -d "$src/lib/cxx" ] && ! "$conform" --help >/dev/null 2>&1; then
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$PWD/$src/lib/cxx"  # this machine's C++ runtime is older
fi
python=python3
command -v "$python" >/dev/null || python=/usr/bin/python3

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, output to OUT/NAME.log and the terminal's tail.
step() {
  local name="$1" limit="$2"; shift 2
  case " ${STAGEKIT_GPU_STEPS:-device conform bench unit torch} " in *" $name "*) ;; *) return 0 ;; esac
  local start rc
  start=$(date +%s)
  echo "=== gpu-check: $name ($*)"
  # Functions of this script run in a child bash (timeout runs programs, not functions).
  timeout --kill-after=10 "$limit" bash -c '"$@"' "$name" "$@" >"$out/$name.log" 2>&1
  rc=$?
  tail -n 25 "$out/$name.log"
  echo "=== gpu-check: $name exit $rc in $(( $(date +%s) - start )) s"
  [ "$rc" -eq 0 ] || failed+=("$name(exit $rc)")
  return 0
}

device() {
  nvidia-smi || echo "nvidia-smi failed"
  uname -a; nproc; free -g; pwd
  echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null) shmem: $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null)"
  ldd "$conform" | grep -E 'not found|cuda|stagekit'
  ! ldd "$conform" "$bench" | grep -q 'not found'
}

unit() {
  local rc=0 t
  for t in $unit_tests; do
    echo "--- $(basename "$t")"
    local filter=()
    # The harness tests reach plugins and data files through paths of the build machine; here only
    # the probe, verifier and child-process tests are meaningful.
    case "$(basename "$t")" in
      stagekit_harness_tests) filter=(--gtest_filter='MemoryProbe*:Verifiers*:ChildProcess*') ;;
      stagekit_conformance_reference_tests) continue ;;  # the same cases as the conform step
    esac
    [ -z "$unit_filter" ] || filter=(--gtest_filter="$unit_filter")
    "$t" --gtest_brief=1 "${filter[@]}" 2>&1 | grep -vE '^\[ +(OK|RUN) +\]' | tail -n 40 || rc=1
  done
  return $rc
}

export -f device unit
step device 30 device
step conform 100 "$conform" --jobs "$(nproc)" --out "$out/conformance" --filter "${STAGEKIT_GPU_CONFORM_FILTER:-*}"
step bench 220 "$bench" --stagekit_mode=quick --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_filter="${STAGEKIT_GPU_BENCH_FILTER:-^stage/cuda}" \
  --benchmark_out="$out/bench.json" --benchmark_out_format=json
step unit 80 unit
# torch loads its own C++ runtime: not the bundle's libraries.
step torch 80 env -u LD_LIBRARY_PATH "$python" ci/gpu/torch_probe.py --out "$out/torch.json"

echo "=== gpu-check: figures"
"$python" ci/gpu/summary.py "$out" | tee "$out/summary.txt"
tar czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu-check: failed steps: ${failed[*]}"
  exit 1
fi
echo "gpu-check: every step passed"
