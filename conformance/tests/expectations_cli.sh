#!/usr/bin/env bash
# stagekit-conform with expectations and waivers, end to end: verdicts, exit statuses and reports.
#   expectations_cli.sh STAGEKIT_CONFORM REFUSED_PLUGIN.so WORKDIR
set -euo pipefail
conform=$1 refused=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
filter='stager.views.*'
fail() { echo "FAILED: $*" >&2; exit 1; }
run() {  # run NAME EXPECTED_STATUS ARGS...: runs stagekit-conform, checks its exit status
  local name=$1 want=$2; shift 2
  local got=0
  "$conform" --quiet --filter "$filter" --out "$work/$name" "$@" > "$work/$name.log" 2>&1 || got=$?
  [ "$got" = "$want" ] || { cat "$work/$name.log"; fail "$name: exit status $got, expected $want"; }
  echo "ok: $name (exit $got)"
}
json() { printf '%s\n' "$2" > "$work/$1"; }

json pass.json '{"schema_version": 1, "expectations": {"*": "pass", "*.cuda.*": ["not_supported", "pass"]}}'
run reference_as_expected 0 --expect "$work/pass.json" --strict-expectations
grep -q '"verdict": "ok"' "$work/reference_as_expected/results.json" || fail "no ok verdicts in results.json"

json partial.json '{"schema_version": 1, "expectations": {"stager.views.cpu.*": "pass"}}'
run missing_expectations 2 --expect "$work/partial.json"
grep -q "case(s) have no expectation" "$work/missing_expectations.log" || fail "missing expectations not named"

json all_fail.json '{"schema_version": 1, "expectations": {"*": "fail"}}'
run fixes_are_not_an_error 0 --expect "$work/all_fail.json"
grep -q '"verdict": "FIX"' "$work/fixes_are_not_an_error/results.json" || fail "no FIX verdict"
run fixes_under_strict_expectations 1 --expect "$work/all_fail.json" --strict-expectations

run refused_plugin_regresses 1 --impl "$refused" --expect "$work/pass.json"
grep -q "REGRESSION" "$work/refused_plugin_regresses/summary.md" || fail "summary.md lacks REGRESSION"

json waivers.json '{"schema_version": 1, "waivers": [{"cases": "stager.views.*", "reason": "known build skew",
  "link": "https://tracker.example/SK-1"}]}'
run refused_plugin_waived 0 --impl "$refused" --waivers "$work/waivers.json"
grep -q '"link": "https://tracker.example/SK-1"' "$work/refused_plugin_waived/results.json" || fail "waiver not recorded"
grep -q '"outcome": "waived"' "$work/refused_plugin_waived/results.json" || fail "no waived outcome"
grep -q '"outcome": "fail"' "$work/refused_plugin_waived/results.json" && fail "a waived case still reads fail"

json bad_waivers.json '{"schema_version": 1, "waivers": [{"cases": "*", "reason": "no link"}]}'
run waiver_without_link 2 --waivers "$work/bad_waivers.json"
grep -q '"link" is required' "$work/waiver_without_link.log" || fail "the waiver error does not name the field"

run written_expectations_round_trip 0 --write-expectations "$work/written.json"
grep -q '"schema_version": 2' "$work/written.json" || fail "the written file is not schema_version 2"
grep -q '"\*": "pass"' "$work/written.json" || fail "the written file has no '*' key for the common outcome"
grep -q '"stager.views.cpu.pin0_share0"' "$work/written.json" && fail "a passing case is written although '*' covers it"
run written_expectations_checked 0 --expect "$work/written.json" --strict-expectations

# Keys written for 0.1 IDs keep meaning their cases, with a warning naming the current pattern.
filter='stager.dtype.bfloat16.*:stager.limit.*'
json legacy.json '{"schema_version": 1, "expectations": {"*": "fail", "stager.dtype_bfloat16.*": ["pass", "not_supported"],
  "stager.limit_*": ["pass", "not_supported", "fail"]}}'
run legacy_keys_translated 0 --expect "$work/legacy.json" --strict-expectations
grep -qF "key 'stager.dtype_bfloat16.*' uses a pre-0.2 case ID; write 'stager.dtype.bfloat16.*'" \
  "$work/legacy_keys_translated.log" || fail "no warning naming the current pattern"
grep -qF "key 'stager.limit_*' uses a pre-0.2 case ID; write 'stager.limit.*'" "$work/legacy_keys_translated.log" ||
  fail "no warning for the limit key"
filter='stager.dtype_bfloat16.*'
run legacy_filter_selects_nothing 2
grep -qF "'stager.dtype_bfloat16.*' uses a pre-0.2 case ID; write 'stager.dtype.bfloat16.*'" \
  "$work/legacy_filter_selects_nothing.log" || fail "a 0.1 --filter pattern is not explained"
echo "expectations and waivers: every verdict and exit status as documented"
