#!/usr/bin/env bash
# examples_against_installed.sh BUILD_DIR SOURCE_DIR WORK_DIR [--setup | --part K/N]
#
# Proves that a vendor can validate a stager against an INSTALLED stagekit, and that the suite bites:
#   1. installs BUILD_DIR into WORK_DIR/prefix (cmake --install);
#   2. configures and builds SOURCE_DIR/conformance/examples into WORK_DIR/build against that prefix
#      only (find_package(stagekit) through CMAKE_PREFIX_PATH; Ninja, ccache when available);
#   3. runs the installed WORK_DIR/prefix/bin/stagekit-conform on the minimal plugin: exit 0, no
#      fail/crash/timeout, not_supported only for CUDA or undeclared capabilities;
#   4. runs the minimal stager's GoogleTest binary (the link-time route) when stagekit has one;
#   5. runs every broken plugin with broken/<name>.expect.json under --strict-expectations: the
#      expected cases fail (or crash, or time out) for the expected reason and nothing else differs;
#      the crash plugin must produce a crash naming a signal, the hang plugin a timeout, and both runs
#      must go on to the cases after it.
# STAGEKIT_EXAMPLE_FILTER, when set, is passed as --filter to the broken plugins' runs (step 5).
# STAGEKIT_EXAMPLE_FOCUS=1 narrows each broken plugin's run further, to the cases (of that filter)
# its expectations allow to fail, crash or time out, plus six cases they expect to pass (the first
# and last three others): every expected catch is checked, and the plugin is shown not to fail
# everything; a run without it (the nightly one) checks that no other case differs.
# --setup does steps 1-4 only; --part K/N does step 5 only, for the K-th of N slices of the broken
# plugins (in name order), in a WORK_DIR a --setup run has prepared. ctest runs one setup and three
# parts, so that the parts use whatever cores the other tests leave idle.
# Prints one verdict line per plugin and a summary; exits 1 on any problem, naming the plugin.
# Results: WORK_DIR/results/<minimal|broken_NAME>/{results.json,results.xml,summary.md} and *.log.
set -euo pipefail

usage() {
  echo "usage: $0 BUILD_DIR SOURCE_DIR WORK_DIR [--setup | --part K/N]" >&2
  exit 2
}
MODE=all
PART=1
PARTS=1
if [[ $# -eq 4 && $4 == --setup ]]; then
  MODE=setup
elif [[ $# -eq 5 && $4 == --part && $5 =~ ^([0-9]+)/([0-9]+)$ ]]; then
  MODE=part
  PART=${BASH_REMATCH[1]}
  PARTS=${BASH_REMATCH[2]}
  [[ $PART -ge 1 && $PART -le $PARTS ]] || usage
elif [[ $# -ne 3 ]]; then
  usage
fi
BUILD_DIR=$(cd "$1" && pwd)
SOURCE_DIR=$(cd "$2" && pwd)
mkdir -p "$3"
WORK_DIR=$(cd "$3" && pwd)
PY=/usr/bin/python3
JOBS=${STAGEKIT_EXAMPLE_JOBS:-2}  # cases at once (ctest runs it with 1, beside the other tests)
EXAMPLES="$SOURCE_DIR/conformance/examples"
PREFIX="$WORK_DIR/prefix"
EXBUILD="$WORK_DIR/build"
RESULTS="$WORK_DIR/results"
CONFORM="$PREFIX/bin/stagekit-conform"

[[ -x "$PY" ]] || { echo "FAIL: $PY is needed to read results.json" >&2; exit 1; }

start=$(date +%s)
problems=()
problem() { problems+=("$1"); echo "FAIL $1"; }

if [[ $MODE == part ]]; then
  [[ -x "$CONFORM" && -f "$EXBUILD/CMakeCache.txt" ]] || {
    echo "FAIL: $WORK_DIR holds no installed stagekit and built examples: run with --setup first" >&2; exit 1; }
  mkdir -p "$RESULTS"
else
  # ---- 1. install ---------------------------------------------------------------------------------
  rm -rf "$RESULTS"
  mkdir -p "$RESULTS"
  cmake --install "$BUILD_DIR" --prefix "$PREFIX" > "$WORK_DIR/install.log" 2>&1 || {
    cat "$WORK_DIR/install.log" >&2; echo "FAIL: cmake --install $BUILD_DIR failed" >&2; exit 1; }
  [[ -x "$CONFORM" ]] || { echo "FAIL: the install has no $CONFORM" >&2; exit 1; }

  # ---- 2. configure and build the examples against the prefix ---------------------------------------
  launcher=()
  if command -v ccache > /dev/null 2>&1; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    # The broken variants share a precompiled header: ccache caches its uses only with these.
    export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  fi
  rm -f "$EXBUILD/CMakeCache.txt"  # find stagekit afresh in this prefix (objects stay up to date)
  if ! cmake -S "$EXAMPLES" -B "$EXBUILD" -G Ninja -DCMAKE_PREFIX_PATH="$PREFIX" "${launcher[@]}" \
      > "$WORK_DIR/configure.log" 2>&1; then
    cat "$WORK_DIR/configure.log" >&2; echo "FAIL: configuring $EXAMPLES against $PREFIX failed" >&2; exit 1
  fi
  found_dir=$(sed -n 's/^stagekit_DIR:[A-Z]*=//p' "$EXBUILD/CMakeCache.txt")
  if [[ "$found_dir" != "$PREFIX"/* ]]; then
    echo "FAIL: find_package(stagekit) found '$found_dir', not the package installed in $PREFIX" >&2; exit 1
  fi
  if ! cmake --build "$EXBUILD" -j "$JOBS" > "$WORK_DIR/build.log" 2>&1; then
    tail -50 "$WORK_DIR/build.log" >&2; echo "FAIL: building the examples failed (see $WORK_DIR/build.log)" >&2; exit 1
  fi
  echo "built the examples against $PREFIX ($(($(date +%s) - start)) s)"
fi

# Reads WORK_DIR/results/<dir>/results.json and checks it; prints details, returns non-zero on a problem.
# check_results DIR MODE [EXPECTED_IMPLEMENTATION]   MODE: minimal | broken | crash | hang
check_results() {
  "$PY" - "$@" <<'PYEOF'
import json, re, sys
path, mode, impl = sys.argv[1] + "/results.json", sys.argv[2], sys.argv[3]
try:
    doc = json.load(open(path))
except Exception as e:
    print(f"cannot read {path}: {e}"); sys.exit(1)
results = doc.get("results", [])
counts = doc.get("counts", {})
errors = []
name = doc.get("implementation", {}).get("name")
if name != impl:
    errors.append(f"the run tested '{name}', not '{impl}' (was the plugin loaded?)")
if not results:
    errors.append("no results")
bad = [r for r in results if r["outcome"] in ("fail", "crash", "timeout")]
if mode == "minimal":
    for r in bad:
        errors.append(f"{r['id']}: {r['outcome']}: {r['reason'][:300]}")
    for r in results:
        if r["outcome"] == "not_supported" and not re.search(r"does not declare the \w+ capability", r["reason"]):
            errors.append(f"{r['id']}: not_supported for another reason than CUDA or a capability: {r['reason'][:200]}")
    if counts.get("pass", 0) == 0:
        errors.append("no case passed")
    summary = f"{counts.get('pass', 0)} pass, {counts.get('not_supported', 0)} not_supported, 0 fail/crash/timeout"
else:
    verdicts = doc.get("comparison", {}).get("counts", {})
    others = {v: n for v, n in verdicts.items() if v != "ok"}
    if others:
        errors.append(f"verdicts other than ok: {others}")
    for r in results:
        if r.get("verdict", "ok") != "ok":
            errors.append(f"{r['id']}: {r.get('verdict')}: expected {r.get('expected_text', '?')}, got "
                          f"{r['outcome']}: {r['reason'][:300]}")
    if not bad:
        errors.append("no case failed: the suite did not catch this plugin")
    ids = [r["id"] for r in results]
    if mode in ("crash", "hang"):
        want = "crash" if mode == "crash" else "timeout"
        hits = [r for r in results if r["outcome"] == want]
        if mode == "crash":
            hits = [r for r in hits if re.search(r"signal \d+|SIG[A-Z]+", r["reason"])]
        if not hits:
            errors.append(f"no {want} outcome" + (" whose reason names a signal" if mode == "crash" else ""))
        else:
            first = ids.index(hits[0]["id"])
            later = [r for r in results[first + 1:] if r["outcome"] == "pass"]
            if not later:
                errors.append(f"the run did not go on after {hits[0]['id']} (no later case passed)")
    kinds = sorted({r["outcome"] for r in bad})
    summary = (f"{len(bad)} case(s) caught it ({'/'.join(kinds)}), all as expected; "
               f"{counts.get('pass', 0)} pass, {counts.get('not_supported', 0)} not_supported")
total = int(sys.argv[4]) if len(sys.argv) > 4 else None
if total is not None and len(results) != total:
    errors.append(f"{len(results)} results for {total} cases")
if errors:
    for e in errors[:20]:
        print("    " + e)
    if len(errors) > 20:
        print(f"    ... and {len(errors) - 20} more")
    sys.exit(1)
print(summary)
PYEOF
}

total_cases=$("$CONFORM" --list | sed -n 's/^\([0-9][0-9]*\) case(s)$/\1/p')
# STAGEKIT_EXAMPLE_FILTER (a --filter) narrows the broken plugins' runs to the cases it selects.
broken_filter=()
broken_cases=$total_cases
if [[ -n "${STAGEKIT_EXAMPLE_FILTER:-}" ]]; then
  broken_filter=(--filter "$STAGEKIT_EXAMPLE_FILTER")
  broken_cases=$("$CONFORM" --list "${broken_filter[@]}" | sed -n 's/^\([0-9][0-9]*\) case(s)$/\1/p')
fi
[[ -n "$total_cases" ]] || { echo "FAIL: stagekit-conform --list did not report a case count" >&2; exit 1; }

# focus_cases EXPECT_FILE: the IDs (':'-separated) of the broken plugins' cases that EXPECT_FILE allows
# to fail, crash or time out, and the first and last three of the others that the minimal plugin
# passed in this work directory (STAGEKIT_EXAMPLE_FOCUS).
focus_cases() {
  "$CONFORM" --list "${broken_filter[@]}" | "$PY" -c '
import fnmatch, json, os, sys
doc = json.load(open(sys.argv[1]))
ids = [line.split()[0] for line in sys.stdin if line[:1].isalpha() and " case(s)" not in line]
def outcomes(value):
    value = value.get("outcome") if isinstance(value, dict) else value
    return set(value if isinstance(value, list) else [value])
failing = [p for p, v in doc["expectations"].items() if outcomes(v) & {"fail", "crash", "timeout"}]
caught = [i for i in ids if any(fnmatch.fnmatchcase(i, p) for p in failing)]
others = [i for i in ids if i not in caught]
minimal = os.path.join(sys.argv[2], "minimal", "results.json")
if os.path.exists(minimal):
    passed = {r["id"] for r in json.load(open(minimal))["results"] if r["outcome"] == "pass"}
    others = [i for i in others if i in passed]
print(":".join(caught + others[:3] + others[-3:]))
' "$1" "$RESULTS"
}

if [[ $MODE != part ]]; then
  # ---- 3. the minimal plugin (run-time route) --------------------------------------------------------
  minimal="$EXBUILD/libexample_minimal_plugin.so"
  rc=0
  "$CONFORM" --impl "$minimal" --jobs "$JOBS" --out "$RESULTS/minimal" > "$RESULTS/minimal.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    problem "minimal: stagekit-conform exited $rc (see $RESULTS/minimal.log)"
    check_results "$RESULTS/minimal" minimal example-minimal "$total_cases" || true
  elif detail=$(check_results "$RESULTS/minimal" minimal example-minimal "$total_cases"); then
    echo "PASS minimal: $detail"
  else
    problem "minimal: $(printf '%s' "$detail" | head -c 2000)"
  fi

  # ---- 4. the minimal stager through GoogleTest (link-time route) -----------------------------------
  gtest_bin="$EXBUILD/example_minimal_gtest"
  if [[ -x "$gtest_bin" ]]; then
    rc=0
    "$gtest_bin" --gtest_brief=1 --gtest_output="xml:$RESULTS/minimal_gtest.xml" > "$RESULTS/minimal_gtest.log" 2>&1 || rc=$?
    passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$RESULTS/minimal_gtest.log")
    skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$RESULTS/minimal_gtest.log")
    if [[ $rc -ne 0 ]]; then
      problem "minimal_gtest: exited $rc: $(grep -E '^\[  FAILED  \]' "$RESULTS/minimal_gtest.log" | head -5 | tr '\n' ' ')"
    elif [[ -z "$passed" || "$passed" -eq 0 ]]; then
      problem "minimal_gtest: no test passed (see $RESULTS/minimal_gtest.log)"
    else
      echo "PASS minimal_gtest: $passed passed, ${skipped:-0} skipped (not_supported)"
    fi
  elif [[ -e "$PREFIX/lib/libstagekit_conformance_gtest.a" ]]; then
    problem "minimal_gtest: stagekit has stagekit::conformance_gtest but example_minimal_gtest was not built"
  else
    echo "SKIP minimal_gtest: this stagekit was built without GoogleTest"
  fi
fi

# ---- 5. the broken plugins, each against its expectations ----------------------------------------
shopt -s nullglob
expect_files=("$EXAMPLES"/broken/*.expect.json)
[[ ${#expect_files[@]} -gt 0 ]] || problem "broken: no broken/*.expect.json in $EXAMPLES"
if [[ $MODE != part ]]; then
  for so in "$EXBUILD"/libexample_broken_*_plugin.so; do
    name=${so##*/libexample_broken_}
    name=${name%_plugin.so}
    [[ -f "$EXAMPLES/broken/$name.expect.json" ]] || problem "broken_$name: built, but broken/$name.expect.json is missing"
  done
fi
[[ $MODE == setup ]] && expect_files=()
checked=0
index=0
for expect in "${expect_files[@]}"; do
  index=$((index + 1))
  (((index - 1) % PARTS == PART - 1)) || continue
  checked=$((checked + 1))
  name=$(basename "$expect" .expect.json)
  so="$EXBUILD/libexample_broken_${name}_plugin.so"
  if [[ ! -f "$so" ]]; then
    problem "broken_$name: $expect exists but $so was not built"
    continue
  fi
  mode=broken
  [[ $name == crashes ]] && mode=crash
  [[ $name == hangs ]] && mode=hang
  out="$RESULTS/broken_$name"
  # The hanging variant waits out its limit once: 3 s is ample for any case of the minimal stager.
  limit=10
  [[ $mode == hang ]] && limit=3
  plugin_filter=("${broken_filter[@]}")
  plugin_cases=$broken_cases
  if [[ "${STAGEKIT_EXAMPLE_FOCUS:-0}" == 1 ]]; then
    focus=$(focus_cases "$expect") || { problem "broken_$name: cannot read $expect"; continue; }
    plugin_filter=(--filter "$focus")
    plugin_cases=$(tr ':' '\n' <<< "$focus" | grep -c .)
  fi
  rc=0
  "$CONFORM" --impl "$so" --expect "$expect" --strict-expectations --jobs "$JOBS" --timeout "$limit" --out "$out" \
    "${plugin_filter[@]}" > "$out.log" 2>&1 || rc=$?
  # This variant leaves its shared-memory objects in /dev/shm on purpose (that is its flaw): remove them.
  [[ $name == leaves_shm_names ]] && rm -f /dev/shm/example-staged-*
  impl="example-broken-${name//_/-}"
  if [[ $rc -ne 0 ]]; then
    detail=$(check_results "$out" "$mode" "$impl" "$plugin_cases" || true)
    problem "broken_$name: stagekit-conform exited $rc (see $out.log)
$detail"
  elif detail=$(check_results "$out" "$mode" "$impl" "$plugin_cases"); then
    echo "PASS broken_$name: $detail"
  else
    problem "broken_$name:
$detail"
  fi
done

# ---- summary ----------------------------------------------------------------------------------------
elapsed=$(($(date +%s) - start))
what="minimal passes, $checked broken plugins caught exactly as expected"
[[ $MODE == setup ]] && what="installed, examples built, minimal passes"
[[ $MODE == part ]] && what="part $PART/$PARTS: $checked broken plugins caught exactly as expected"
echo
if [[ ${#problems[@]} -eq 0 ]]; then
  echo "examples_against_installed: OK — $what (${elapsed} s)"
  exit 0
fi
echo "examples_against_installed: ${#problems[@]} problem(s) (${elapsed} s):"
for p in "${problems[@]}"; do echo "  - ${p%%$'\n'*}"; done
exit 1
