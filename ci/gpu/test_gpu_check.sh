#!/usr/bin/env bash
# The paths of ci/gpu-check.sh that run without a GPU (ctest ci.gpu_check): no nvidia-smi, or one
# that lists no GPU, is one line saying so and exit 0 with nothing written; with a GPU listed (a
# stand-in nvidia-smi) and no step selected, it goes on to write OUT_DIR/summary.md naming the GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

check_no_gpu() {
  local what="$1" smi="$2" output rc
  output=$(STAGEKIT_NVIDIA_SMI="$smi" ci/gpu-check.sh "$tmp/none" "$tmp/out-$what" 2>&1)
  rc=$?
  [ "$rc" -eq 0 ] || fail "$what: exit $rc, not 0: $output"
  [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ] || fail "$what: more than one line: $output"
  case "$output" in "gpu-check: no NVIDIA GPU here ("*"): nothing to check") ;; *) fail "$what: '$output'" ;; esac
  [ ! -e "$tmp/out-$what" ] || fail "$what: wrote $tmp/out-$what"
  echo "ok: $what: $output"
}

check_no_gpu "no-nvidia-smi" "$tmp/missing-nvidia-smi"
cat >"$tmp/smi-none" <<'SH'
#!/bin/sh
echo "No devices were found"
exit 6
SH
chmod +x "$tmp/smi-none"
check_no_gpu "no-devices" "$tmp/smi-none"

cat >"$tmp/smi-one" <<'SH'
#!/bin/sh
case "$*" in
  -L) echo "GPU 0: Stand-in GPU (UUID: GPU-0)" ;;
  *query-gpu*) echo "Stand-in GPU, 1.0, 1 MiB" ;;
esac
SH
chmod +x "$tmp/smi-one"
mkdir -p "$tmp/bundle/bin"
output=$(STAGEKIT_NVIDIA_SMI="$tmp/smi-one" STAGEKIT_GPU_STEPS=device ci/gpu-check.sh "$tmp/bundle" "$tmp/out" 2>&1)
rc=$?
# The stand-in bundle has no executables: the device step fails, and the run says so.
[ "$rc" -eq 1 ] || fail "one GPU, empty bundle: exit $rc, not 1: $output"
grep -q 'failed steps: device' <<<"$output" || fail "one GPU, empty bundle: no failed device step: $output"
grep -q 'GPU 0: Stand-in GPU, 1.0, 1 MiB' "$tmp/out/summary.md" || fail "summary.md lacks the GPU: $(cat "$tmp/out/summary.md")"
grep -q 'nccl not run: 1 GPU' "$tmp/out/nccl.log" || fail "nccl.log: $(cat "$tmp/out/nccl.log")"
[ -f "$tmp/out.tar.gz" ] || fail "no $tmp/out.tar.gz"
echo "ok: one GPU listed: summary.md names it, the failed step is reported"
