#!/usr/bin/env bash
# bad_impl_exits_2.sh TOOL REFUSED_PLUGIN WORK_DIR
#
# A bench tool (stagekit-bench, stagekit-dist-bench) given an implementation it cannot measure stops
# before any benchmark: exit status 2, a message naming the spec and why, and no result file. Tried:
# a spec of no known kind (--impl and $STAGEKIT_IMPL), a Python module that does not import (torch
# kind), a missing plugin file, a plugin refused for its build tag, and --impl without a value.
set -uo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 TOOL REFUSED_PLUGIN WORK_DIR" >&2
  exit 2
fi
tool=$1
refused=$2
work=$3
mkdir -p "$work"
name=$(basename "$tool")
problems=0

# expect_refusal LABEL PATTERN [ENV=VALUE] -- ARGS...
expect_refusal() {
  local label=$1 pattern=$2
  shift 2
  local env=()
  while [[ $1 != -- ]]; do env+=("$1"); shift; done
  shift
  local out="$work/$label.json"
  rm -f "$out"
  local log rc
  log=$(env "${env[@]}" "$tool" "$@" --stagekit_mode=smoke --benchmark_out="$out" --benchmark_out_format=json 2>&1)
  rc=$?
  if [[ $rc -ne 2 ]]; then
    echo "FAIL $label: exit status $rc, expected 2; output: ${log:0:500}"
    problems=$((problems + 1))
  elif ! grep -Eq -- "$pattern" <<< "$log"; then
    echo "FAIL $label: the message does not match '$pattern': ${log:0:500}"
    problems=$((problems + 1))
  elif [[ -e "$out" ]]; then
    echo "FAIL $label: a result file was written"
    problems=$((problems + 1))
  else
    echo "PASS $label: $(head -1 <<< "$log")"
  fi
}

expect_refusal unknown_kind "^$name: --impl no-such-kind: unknown implementation 'no-such-kind': expected one of 'reference'" \
  -- --impl no-such-kind
expect_refusal unknown_kind_from_environment "^$name: --impl pytorch: unknown implementation 'pytorch'" \
  STAGEKIT_IMPL=pytorch --
expect_refusal torch_module_missing \
  "^$name: --impl torch:no_such_module:F: .*(module 'no_such_module' does not import|built without the torch route)" \
  -- --impl torch:no_such_module:F
expect_refusal missing_plugin "^$name: --impl /nonexistent/libvendor.so: plugin '/nonexistent/libvendor.so' refused: no such file" \
  -- --impl=/nonexistent/libvendor.so
expect_refusal refused_plugin "^$name: --impl .*: plugin '.*' refused: build tag differs: .*compiler: plugin 'othercc-99', $name '" \
  -- --impl "$refused"
expect_refusal impl_without_value "^$name: --impl needs a value" -- --impl

if [[ $problems -ne 0 ]]; then
  echo "$name: $problems problem(s)"
  exit 1
fi
echo "$name: every bad --impl exits 2 with its reason"
