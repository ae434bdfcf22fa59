#!/usr/bin/env bash
# Packs a CUDA build of stagekit into a self-contained folder for a GPU machine that has the CUDA
# driver but none of stagekit's build dependencies (Debian's fmt, abseil, Google Benchmark, ...):
#   ci/gpu-bundle.sh [BUILD_DIR] [BUNDLE_DIR]      default: build/gpu  .gpu-bundle
# BUILD_DIR is configured here when missing (Release, CUDA on, MPI and NCCL off: a single GPU cannot
# host a multi-rank NCCL world; Python off: the torch route embeds the Python it was built with,
# and the GPU machine's torch lives in its own) and built. The bundle holds bin/ (stagekit-conform, the benchmarks,
# the unit-test executables, stripped), lib/ (stagekit's libraries and every shared library they
# need except the C library and the CUDA driver, which the GPU machine provides; the C++ runtime
# in lib/cxx/, used only where the machine's own is older) and ci/gpu-check.sh
# runs from it: `ci/gpu-check.sh BUNDLE_DIR OUT_DIR`.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,9p' "$0"; exit 0 ;; esac
build="${1:-build/gpu}"
bundle="${2:-.gpu-bundle}"

if [ ! -f "$build/build.ninja" ]; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER_LAUNCHER=ccache \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DSTAGEKIT_WITH_CUDA=ON -DSTAGEKIT_WITH_MPI=OFF \
    -DSTAGEKIT_WITH_NCCL=OFF -DSTAGEKIT_WITH_PYTHON=OFF >/dev/null
fi
cmake --build "$build"

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
is_elf() { head -c 4 "$1" 2>/dev/null | grep -q 'ELF'; }
# The executables: tools and every unit-test binary (gtest executables named stagekit_*_tests).
while IFS= read -r exe; do
  is_elf "$exe" || continue
  cp "$exe" "$bundle/bin/"
done < <(find "$build" -type f -executable \( -name 'stagekit-*' -o -name 'stagekit_*tests' \) \
           -not -path '*/CMakeFiles/*' -not -name '*.so*' | sort)
# stagekit's own shared libraries and plugins.
find "$build" -type f \( -name 'libstagekit*.so*' -o -name 'libstagekit*plugin*.so' \) -not -path '*/CMakeFiles/*' \
  -exec cp {} "$bundle/lib/" \;
# Symlink names the executables ask for (libstagekit_core.so.0.2 -> the versioned file).
for f in "$bundle"/lib/libstagekit*.so.*.*.*; do
  [ -e "$f" ] || continue
  base=$(basename "$f"); soname=$(objdump -p "$f" | awk '/SONAME/{print $2}')
  [ -n "$soname" ] && [ "$soname" != "$base" ] && cp "$f" "$bundle/lib/$soname"
done
# Every other shared library they load, except the C library family and the CUDA driver.
for f in "$bundle"/bin/* "$bundle"/lib/*; do
  ldd "$f" 2>/dev/null | awk '/=> \//{print $3}'
done | sort -u | while IFS= read -r dep; do
  case "$(basename "$dep")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*|libstagekit*) continue ;;
  esac
  case "$(basename "$dep")" in
    # The C++ runtime only where the GPU machine's own is older (ci/gpu-check.sh decides).
    libstdc++.so*|libgcc_s.so*) mkdir -p "$bundle/lib/cxx"; cp -L "$dep" "$bundle/lib/cxx/" ;;
    *) cp -L "$dep" "$bundle/lib/" ;;
  esac
done
strip --strip-unneeded "$bundle"/bin/* "$bundle"/lib/*.so* 2>/dev/null || true
echo "ci/gpu-bundle.sh: $bundle ($(du -sh "$bundle" | cut -f1)): $(ls "$bundle/bin" | wc -l) executables, $(ls "$bundle/lib" | wc -l) libraries"
