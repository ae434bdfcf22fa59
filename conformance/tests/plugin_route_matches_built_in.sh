#!/usr/bin/env bash
# The reference reached through the plugin route gives exactly the outcomes of the built-in one.
#   plugin_route_matches_built_in.sh STAGEKIT_CONFORM PLUGIN.so WORKDIR [FILTER]
# FILTER (stagekit-conform --filter) narrows the cases both routes run; every case without it.
set -euo pipefail
conform=$1 plugin=$2 work=$3
filter=(--filter "${4:-*}")
rm -rf "$work" && mkdir -p "$work"
"$conform" --quiet --jobs 2 "${filter[@]}" --out "$work/built-in" --write-expectations "$work/built-in.expect.json"
"$conform" --quiet --jobs 2 "${filter[@]}" --impl "$plugin" --out "$work/plugin" \
  --expect "$work/built-in.expect.json" --strict-expectations
grep -q '"path": ".*libstagekit_reference_plugin.so"' "$work/plugin/results.json" \
  || { echo "results.json does not name the plugin" >&2; exit 1; }
echo "plugin route: same outcomes as the built-in reference"
