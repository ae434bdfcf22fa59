#!/usr/bin/env bash
# Configures and builds one CMake preset (default: ci) with Ninja and ccache.
#   ci/build.sh [preset]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-ci}"
# Paths relative to the checkout in ccache's keys: a fresh clone anywhere reuses earlier builds.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
