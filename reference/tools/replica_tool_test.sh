#!/usr/bin/env bash
# stagekit-replica end to end: a sample replica verifies and shows its tree; one changed byte and a
# truncation make `verify` exit 1 naming the damage; --help and bad usage behave.
#   replica_tool_test.sh PATH/TO/stagekit-replica
set -uo pipefail
tool=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/stagekit-replica-tool-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }

"$tool" --help | grep -q 'verify' || fail "--help does not list verify"
"$tool" write-sample "$dir/good.replica" || fail "write-sample failed"
out=$("$tool" verify "$dir/good.replica") || fail "a valid replica does not verify: $out"
grep -q 'OK: format 1\.2, the state dict of rank 1 kept by rank 0' <<<"$out" || fail "unexpected verify line: $out"
out=$("$tool" show "$dir/good.replica") || fail "show failed: $out"
grep -q '^layer1.weight_t: tensor float32\[32, 64\]' <<<"$out" || fail "show does not list the transposed view: $out"
grep -q '^optimizer.step: int 1000$' <<<"$out" || fail "show does not list optimizer.step: $out"

cp "$dir/good.replica" "$dir/flipped.replica"
size=$(stat -c %s "$dir/flipped.replica")
printf '\x55' | dd of="$dir/flipped.replica" bs=1 seek=$((size - 100)) conv=notrunc status=none
out=$("$tool" verify "$dir/good.replica" "$dir/flipped.replica"); rc=$?
[ $rc = 1 ] || fail "a changed byte: exit $rc, expected 1 ($out)"
grep -q "flipped.replica: BAD (corruption): .*blob" <<<"$out" || fail "the changed byte is not named: $out"
grep -q "good.replica: OK" <<<"$out" || fail "the good file is not reported OK next to a bad one: $out"

head -c $((size / 2)) "$dir/good.replica" > "$dir/cut.replica"
out=$("$tool" verify "$dir/cut.replica"); rc=$?
[ $rc = 1 ] && grep -q 'truncated' <<<"$out" || fail "a truncated file: exit $rc, output: $out"
"$tool" show "$dir/cut.replica" 2>/dev/null && fail "show accepted a truncated file"

"$tool" verify "$dir/missing.replica" >/dev/null 2>&1; rc=$?
[ $rc = 2 ] || fail "a missing file: exit $rc, expected 2 (bad usage)"
echo "stagekit-replica: verify, show and write-sample behave; damage is reported with exit 1"
