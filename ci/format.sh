#!/usr/bin/env bash
# Formats stagekit's C++ (every tracked *.h / *.cpp / *.cu) with clang-format and the repository's
# .clang-format.
#   ci/format.sh           rewrite the files in place
#   ci/format.sh --check   change nothing; list every file that differs and exit 1 if any does
# Uses clang-format-14 (Debian's clang-format package; ci/install-deps.sh installs it), the version
# the files were formatted with: another version may lay out a few constructs differently.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-fix}"
case "$mode" in
  fix|--check) ;;
  -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
  *) echo "usage: ci/format.sh [--check]" >&2; exit 2 ;;
esac
formatter=""
for candidate in clang-format-14 clang-format; do
  if command -v "$candidate" >/dev/null 2>&1; then formatter="$candidate"; break; fi
done
[ -n "$formatter" ] || { echo "ci/format.sh: clang-format not found (apt-get install clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.h' '*.cpp' '*.cu')
if [ "$mode" = fix ]; then
  "$formatter" -i --style=file "${files[@]}"
  exit 0
fi
differ=()
for f in "${files[@]}"; do
  if ! "$formatter" --style=file "$f" | cmp -s - "$f"; then differ+=("$f"); fi
done
if [ ${#differ[@]} -gt 0 ]; then
  printf 'not formatted: %s\n' "${differ[@]}" >&2
  echo "ci/format.sh: ${#differ[@]} file(s) differ from clang-format's layout; run ci/format.sh" >&2
  exit 1
fi
echo "ci/format.sh: ${#files[@]} files formatted"
