#!/usr/bin/env bash
# Runs one CMake preset's tests with CTest (the build must exist: ci/build.sh PRESET).
#   ci/ctest.sh PRESET [extra ctest arguments]
# For the `tsan` preset, the tests run with address-space randomisation off where this kernel
# needs it: ThreadSanitizer's runtime (GCC 12) stops with "FATAL: ThreadSanitizer: unexpected
# memory mapping" when the kernel randomises mmap addresses more widely than it expects (e.g.
# vm.mmap_rnd_bits = 32; 28 works). A small program built with the preset's compiler shows which.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:?usage: ci/ctest.sh PRESET [extra ctest arguments]}"
shift
launcher=()
if [ "$preset" = tsan ]; then
  compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "build/$preset/CMakeCache.txt")
  probe_dir=$(mktemp -d)
  trap 'rm -rf "$probe_dir"' EXIT
  echo 'int main() { return 0; }' > "$probe_dir/probe.cpp"
  "$compiler" -fsanitize=thread "$probe_dir/probe.cpp" -o "$probe_dir/probe"
  if ! "$probe_dir/probe" 2> "$probe_dir/err"; then
    if setarch "$(uname -m)" -R "$probe_dir/probe"; then
      echo "ci/ctest.sh: ThreadSanitizer needs address-space randomisation off on this kernel" \
           "($(head -n 1 "$probe_dir/err")); running the tests under setarch -R"
      launcher=(setarch "$(uname -m)" -R)
    else
      echo "ci/ctest.sh: a ThreadSanitizer program does not start here, even with setarch -R:" >&2
      cat "$probe_dir/err" >&2
      exit 1
    fi
  fi
fi
"${launcher[@]}" ctest --preset "$preset" "$@"
