#!/usr/bin/env bash
# Configures and builds one CMake preset (default: ci) with Ninja and ccache.
#   ci/build.sh [preset]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-ci}"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
