#!/usr/bin/env bash
# The checks that need a GPU, as one short run for a machine lent for a few minutes:
#   ci/gpu-check.sh [BUNDLE_OR_BUILD_DIR] [OUT_DIR]     default: see below   reports/gpu
# Without an NVIDIA GPU it says so in one line and exits 0. With one, what it runs comes from:
#   BUNDLE_OR_BUILD_DIR  a bundle made by ci/gpu-bundle.sh (bin/, lib/: for a machine without
#                        stagekit's build dependencies) or a CUDA build tree;
#   no argument          .gpu-bundle when there is one, else build/gpu, configured (Release, CUDA
#                        and NCCL on, MPI where found, Python off) and built here first (step
#                        "build"; it needs the build dependencies of ci/install-deps.sh).
# Steps, each bounded in time, each logged to OUT_DIR/<step>.log, a failed step does not stop the
# others:
#   device   nvidia-smi (GPU model, driver, memory into OUT_DIR/gpu.csv), the libraries resolved
#   conform  stagekit-conform on the reference: every case, the *.cuda.* ones included
#            (OUT_DIR/results.json)
#   bench    stagekit-bench quick, 3 repetitions: the CUDA stage benchmarks and every limit, among
#            them cudaMemcpyAsync's (OUT_DIR/bench.json)
#   unit     every unit-test executable (their CUDA tests run where a device is present)
#   ncclbench  stagekit-dist-bench quick under mpirun, one rank per GPU: NCCL's own all-gather,
#            broadcast and send/recv next to stagekit's NCCL communicator and gather_state_dict of
#            CUDA DTensors (OUT_DIR/nccl_bench.json; with one GPU a one-rank world: no send/recv)
#   nccl     with two GPUs or more: the NCCL communicator tests, one rank per GPU under mpirun
#   torch    ci/gpu/torch_probe.py: PyTorch's own StateDictStager on this GPU (where torch is)
# then writes every figure to OUT_DIR/summary.md (ci/gpu/summary.py: the GPU, the driver, the
# conformance counts, every benchmark ratio) and packs OUT_DIR into OUT_DIR.tar.gz. The most telling
# steps come first and the time limits add up to under 8 minutes once built, so that one call on a
# lent machine returns whatever finished. Exits 1 when a step failed. To rerun a part:
#   STAGEKIT_GPU_CONFORM_FILTER  stagekit-conform --filter (default: every case)
#   STAGEKIT_GPU_BENCH_FILTER    stagekit-bench --benchmark_filter (default: ^stage/cuda)
#   STAGEKIT_GPU_UNIT_FILTER     --gtest_filter for every unit-test executable (default: all tests)
#   STAGEKIT_GPU_STEPS           the steps to run (default: "device conform bench unit ncclbench nccl torch")
#   STAGEKIT_NVIDIA_SMI          the nvidia-smi to ask for GPUs (default: nvidia-smi)
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,30p' "$0"; exit 0 ;; esac

# No GPU: one line, nothing else.
smi="${STAGEKIT_NVIDIA_SMI:-nvidia-smi}"
if ! command -v "$smi" >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU here ($smi not found): nothing to check"
  exit 0
fi
gpus=$("$smi" -L 2>/dev/null | grep -c '^GPU ' || true)
if [ "${gpus:-0}" -eq 0 ]; then
  echo "gpu-check: no NVIDIA GPU here ($smi -L lists none: $("$smi" -L 2>&1 | head -n 1)): nothing to check"
  exit 0
fi

out="${2:-reports/gpu}"
rm -rf "$out"
mkdir -p "$out"
failed=()
src="${1:-}"
if [ -z "$src" ]; then
  if [ -d .gpu-bundle/bin ]; then
    src=.gpu-bundle
  else
    src=build/gpu
    echo "=== gpu-check: build (CUDA, NCCL, MPI where found) into $src"
    start=$(date +%s)
    if ! {
      if [ ! -f "$src/build.ninja" ]; then
        launcher=()
        command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
        cmake -S . -B "$src" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" -DSTAGEKIT_WITH_CUDA=ON \
          -DSTAGEKIT_WITH_NCCL=ON -DSTAGEKIT_WITH_MPI=AUTO -DSTAGEKIT_WITH_PYTHON=OFF
      fi && timeout 360 cmake --build "$src"
    } >"$out/build.log" 2>&1; then
      tail -n 25 "$out/build.log"
      echo "gpu-check: cannot build stagekit here (see $out/build.log); make a bundle with ci/gpu-bundle.sh on a"
      echo "machine with the build dependencies and pass it: ci/gpu-check.sh BUNDLE_DIR"
      exit 1
    fi
    echo "=== gpu-check: build done in $(( $(date +%s) - start )) s"
  fi
fi
if [ -d "$src/bin" ]; then
  bin="$src/bin"
  export LD_LIBRARY_PATH="$PWD/$src/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  unit_tests=$(ls "$bin"/stagekit_*tests 2>/dev/null)
  conform="$bin/stagekit-conform" bench="$bin/stagekit-bench" dist_bench="$bin/stagekit-dist-bench"
else
  unit_tests=$(find "$src" -type f -executable -name 'stagekit_*tests' -not -path '*/CMakeFiles/*' | sort)
  conform=$(find "$src" -type f -name stagekit-conform -not -path '*/CMakeFiles/*' | head -1)
  bench=$(find "$src" -type f -name stagekit-bench -not -path '*/CMakeFiles/*' | head -1)
  dist_bench=$(find "$src" -type f -name stagekit-dist-bench -not -path '*/CMakeFiles/*' | head -1)
fi
nccl_tests=$(printf '%s\n' $unit_tests | grep '/stagekit_dist_nccl_tests$' || true)
unit_filter="${STAGEKIT_GPU_UNIT_FILTER:-}"
export out conform bench dist_bench unit_tests unit_filter smi gpus nccl_tests
if [ -d "$src/lib/cxx" ] && ! "$conform" --help >/dev/null 2>&1; then
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$PWD/$src/lib/cxx"  # this machine's C++ runtime is older
fi
python=python3
command -v "$python" >/dev/null || python=/usr/bin/python3

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, output to OUT/NAME.log and the terminal's tail.
step() {
  local name="$1" limit="$2"; shift 2
  case " ${STAGEKIT_GPU_STEPS:-device conform bench unit ncclbench nccl torch} " in *" $name "*) ;; *) return 0 ;; esac
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
  "$smi" --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.csv"
  "$smi" || echo "nvidia-smi failed"
  uname -a; nproc; free -g; pwd
  echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null) shmem: $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null)"
  local exe
  for exe in "$conform" "$bench"; do
    [ -n "$exe" ] && [ -x "$exe" ] || { echo "no stagekit-conform or stagekit-bench in the bundle or build (got '$exe')"; return 1; }
  done
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

# The NCCL communicator over MPI, one rank per GPU.
nccl() {
  [ -n "$nccl_tests" ] || { echo "this build has no NCCL tests (stagekit_dist_nccl_tests)"; return 1; }
  command -v mpirun >/dev/null || { echo "no mpirun here"; return 1; }
  local flags=()
  mpirun --version 2>&1 | grep -q 'Open MPI' && flags=(--allow-run-as-root)
  mpirun "${flags[@]}" -np "$gpus" "$nccl_tests" --gtest_brief=1
}

# The NCCL benchmarks (and, with them, every limit: the filter is widened to ^limit/), one rank per GPU.
ncclbench() {
  [ -n "$dist_bench" ] && [ -x "$dist_bench" ] || { echo "no stagekit-dist-bench in the bundle or build"; return 1; }
  command -v mpirun >/dev/null || { echo "no mpirun here: the NCCL benchmarks run one rank per GPU under it"; return 1; }
  local flags=()
  mpirun --version 2>&1 | grep -q 'Open MPI' && flags=(--allow-run-as-root)
  mpirun "${flags[@]}" -np "$gpus" "$dist_bench" --stagekit_mode=quick --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_filter='nccl|_cuda' \
    --benchmark_out="$out/nccl_bench.json" --benchmark_out_format=json
}

export -f device unit nccl ncclbench
step device 30 device
step conform 90 "$conform" --jobs "$(nproc)" --out "$out/conformance" --filter "${STAGEKIT_GPU_CONFORM_FILTER:-*}"
[ -f "$out/conformance/results.json" ] && cp "$out/conformance/results.json" "$out/results.json"
step bench 130 "$bench" --stagekit_mode=quick --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_filter="${STAGEKIT_GPU_BENCH_FILTER:-^stage/cuda}" \
  --benchmark_out="$out/bench.json" --benchmark_out_format=json
step unit 70 unit
step ncclbench 60 ncclbench
if [ "$gpus" -ge 2 ]; then
  step nccl 45 nccl
else
  echo "=== gpu-check: nccl not run: $gpus GPU (an NCCL world needs two)" | tee "$out/nccl.log"
fi
# torch loads its own C++ runtime: not the bundle's libraries.
step torch 45 env -u LD_LIBRARY_PATH "$python" ci/gpu/torch_probe.py --out "$out/torch.json"

echo "=== gpu-check: figures"
"$python" ci/gpu/summary.py "$out" | tee "$out/summary.md"
tar czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu-check: failed steps: ${failed[*]}"
  exit 1
fi
echo "gpu-check: every step passed"
