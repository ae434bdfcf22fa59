#!/usr/bin/env bash
# Runs Python with an interpreter that can import pandas, matplotlib and scipy (Debian's
# /usr/bin/python3 normally; the first python3 on PATH may be another one without them), with the
# tools package of this checkout (tools/stagekit_tools) first on the import path.
#   ci/python.sh -m stagekit_tools.TOOL ARGS...     e.g. ci/python.sh -m stagekit_tools.report --help
#   ci/python.sh SCRIPT ARGS...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$root/tools${PYTHONPATH:+:$PYTHONPATH}"
for candidate in "${STAGEKIT_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$candidate" ] || continue
  command -v "$candidate" >/dev/null 2>&1 || continue
  if "$candidate" -c 'import pandas, matplotlib, scipy' >/dev/null 2>&1; then
    exec "$candidate" "$@"
  fi
done
echo "ci/python.sh: no Python interpreter here can import pandas, matplotlib and scipy;" \
     "install Debian's python3-pandas python3-matplotlib python3-scipy (ci/install-deps.sh does)" >&2
exit 1
