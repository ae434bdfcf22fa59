#!/usr/bin/env bash
# A plugin with another build tag is refused: every selected case fails with a reason naming each
# differing field, the run still writes its reports, and the exit status is 1.
#   refused_plugin_fails_every_case.sh STAGEKIT_CONFORM PLUGIN.so WORKDIR
set -euo pipefail
conform=$1 plugin=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
status=0
STAGEKIT_IMPL="$plugin" "$conform" --quiet --filter 'stager.views.*' --out "$work" > "$work/log" 2>&1 || status=$?
cat "$work/log"
[ "$status" = 1 ] || { echo "expected exit status 1, got $status" >&2; exit 1; }
/usr/bin/python3 - "$work/results.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
results = doc["results"]
assert len(results) == 8, f"expected 8 stager.views cases, got {len(results)}"
for r in results:
    assert r["outcome"] == "fail", r
    for needle in ("refused", "build tag differs", "compiler: plugin 'othercc-99'", "stagekit: plugin '0.0.1'"):
        assert needle in r["reason"], (needle, r["reason"])
print("refused plugin: every case failed with the build-tag differences")
PY
