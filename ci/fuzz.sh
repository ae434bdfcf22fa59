#!/usr/bin/env bash
# Builds the fuzz configuration (clang-14, libFuzzer, ASan+UBSan) in build/fuzz and fuzzes the
# readers of the replica format for a bounded time: the replica file and the message head.
#   ci/fuzz.sh [SECONDS]    fuzz for SECONDS in all (default 45, at most 60), half per target
#   ci/fuzz.sh --help
# Steps: configure build/fuzz (-DSTAGEKIT_FUZZING=ON), build stagekit_replica_fuzz,
# stagekit_message_fuzz and stagekit_replica_seeds, write the seed corpora to build/fuzz/seeds/
# {replica,message}, then run libFuzzer on each target with a fresh build/fuzz/corpus/<target> and
# its seeds; crash inputs land in build/fuzz/artifacts/, the full logs in build/fuzz/fuzz-<target>.log.
# Exits non-zero when the build fails or libFuzzer reports a crash, a leak, a timeout or an
# out-of-memory (libFuzzer's exit code). Installs nothing: ci/install-deps.sh provides clang-14 and
# libclang-rt-14-dev. Reproduce a finding: fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac
if [[ $# -gt 1 ]]; then usage >&2; exit 2; fi
seconds="${1:-45}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || (( seconds < 1 || seconds > 60 )); then
  echo "ci/fuzz.sh: SECONDS must be an integer from 1 to 60 (got '$seconds')" >&2
  exit 2
fi

if ! command -v clang++-14 >/dev/null || ! command -v clang-14 >/dev/null; then
  echo "ci/fuzz.sh: clang-14/clang++-14 not found: run ci/install-deps.sh (clang-14, libclang-rt-14-dev)" >&2
  exit 1
fi
if [[ ! -f "$(clang++-14 --print-runtime-dir)/libclang_rt.fuzzer-x86_64.a" ]]; then
  echo "ci/fuzz.sh: libFuzzer not found for clang-14: run ci/install-deps.sh (libclang-rt-14-dev)" >&2
  exit 1
fi

build=build/fuzz
launcher=()
if command -v ccache >/dev/null; then
  # As ci/build.sh: paths relative to the checkout in ccache's keys.
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

echo "=== stagekit: fuzz build ($build) ==="
start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DSTAGEKIT_FUZZING=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1" -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=8 \
  "${launcher[@]}" >/dev/null
cmake --build "$build" --target stagekit_replica_fuzz stagekit_message_fuzz stagekit_replica_seeds
build_s=$(( $(date +%s) - start ))

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
rm -rf "$build/seeds" "$build/corpus" "$build/artifacts"
mkdir -p "$build/artifacts"
if ! "$build/fuzz/stagekit_replica_seeds" "$build/seeds"; then
  echo "fuzz: FAILED: the seed generator (pack_state_dict/encode_replica/message_head and their readers on" \
    "valid trees) failed under ASan/UBSan, see above" >&2
  exit 1
fi

# fuzz TARGET SEEDS SECONDS: one libFuzzer run; prints its summary, returns libFuzzer's exit code.
fuzz() {
  local target=$1 seeds=$2 budget=$3
  local log="$build/fuzz-$target.log" corpus="$build/corpus/$target" rc
  mkdir -p "$corpus"
  echo "=== stagekit: fuzzing $target for ${budget} s ==="
  set +e
  "$build/fuzz/stagekit_${target}_fuzz" -max_total_time="$budget" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" \
    "$corpus" "$seeds" >"$log" 2>&1
  rc=$?
  set -e
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
  local cov summary artifacts
  cov=$( (grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' "$log" || true) | tail -n 1)
  summary="execs=$(stat number_of_executed_units) exec/s=$(stat average_exec_per_sec)"
  summary+=" new_units=$(stat new_units_added) peak_rss_mb=$(stat peak_rss_mb) ${cov:-cov: ?}"
  if (( rc != 0 )); then
    echo "--- last lines of $log ---"
    tail -n 150 "$log"
    echo "---"
    artifacts=$(find "$build/artifacts" -type f -name "$target-*" | tr '\n' ' ')
    echo "fuzz: FAILED: $target (libFuzzer exit $rc, budget ${budget} s): $summary; artifacts: ${artifacts:-none}" \
      "(reproduce: $build/fuzz/stagekit_${target}_fuzz <artifact>)"
    return "$rc"
  fi
  echo "fuzz: $target passed ${budget} s: $summary"
}

message_s=$(( seconds / 2 ))
replica_s=$(( seconds - message_s ))
rc=0
fuzz replica "$build/seeds/replica" "$replica_s" || rc=$?
if (( message_s > 0 )); then
  fuzz message "$build/seeds/message" "$message_s" || rc=$?
fi
if (( rc != 0 )); then exit "$rc"; fi
echo "fuzz: passed ${seconds} s of fuzzing (decode_replica ${replica_s} s, message heads ${message_s} s;" \
  "build ${build_s} s)"
