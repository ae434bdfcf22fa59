#!/usr/bin/env bash
# installed_package_consumer.sh BUILD_DIR SOURCE_DIR WORK_DIR
#
# The installed package as a vendor's CMake sees it: installs BUILD_DIR into WORK_DIR/prefix (not a
# system prefix), configures SOURCE_DIR/conformance/tests/installed_consumer against that prefix
# only, which checks that stagekit_CONFORM_EXECUTABLE and stagekit_REFERENCE_PLUGIN are files under
# the prefix (even though the package config also finds GoogleTest, whose own config sets the
# prefix variable of package configs to /usr), and builds its target that runs the installed
# stagekit-conform on the installed reference plugin with --filter 'stager.views.cpu.*': every
# selected case must pass. Also checks that no test double or tool-internal header is installed.
# Exits 1 naming the step that failed.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR WORK_DIR" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
SOURCE_DIR=$(cd "$2" && pwd)
mkdir -p "$3"
WORK_DIR=$(cd "$3" && pwd)
PREFIX="$WORK_DIR/prefix"
CONSUMER="$WORK_DIR/consumer"

rm -rf "$PREFIX" "$CONSUMER"
cmake --install "$BUILD_DIR" --prefix "$PREFIX" > "$WORK_DIR/install.log" 2>&1 || {
  cat "$WORK_DIR/install.log" >&2; echo "FAIL: cmake --install $BUILD_DIR --prefix $PREFIX failed" >&2; exit 1; }

# Only public headers are installed: no test double, and nothing of the tools' own libraries.
for private in stagekit/dist/fault_injection.h stagekit/testing stagekit/loader stagekit/adapter stagekit/probe; do
  if [[ -e "$PREFIX/include/$private" ]]; then
    echo "FAIL: the install holds $PREFIX/include/$private, which is not a public header" >&2
    exit 1
  fi
done

if ! cmake -S "$SOURCE_DIR/conformance/tests/installed_consumer" -B "$CONSUMER" -G Ninja \
    -DCMAKE_PREFIX_PATH="$PREFIX" -DSTAGEKIT_EXPECTED_PREFIX="$PREFIX" > "$WORK_DIR/configure.log" 2>&1; then
  cat "$WORK_DIR/configure.log" >&2
  echo "FAIL: the consumer project does not configure against $PREFIX" >&2
  exit 1
fi
grep -E "stagekit_(CONFORM_EXECUTABLE|REFERENCE_PLUGIN): " "$WORK_DIR/configure.log"

rc=0
cmake --build "$CONSUMER" --target run_reference_conformance > "$WORK_DIR/run.log" 2>&1 || rc=$?
grep -E "^ *(pass|fail|total) " "$WORK_DIR/run.log" || true
if [[ $rc -ne 0 ]]; then
  echo "FAIL: the installed stagekit-conform on the installed reference plugin exited with a failure (see $WORK_DIR/run.log)" >&2
  exit 1
fi
if ! grep -Eq "^ *pass +[1-9][0-9]*$" "$WORK_DIR/run.log"; then
  echo "FAIL: the run did not report its cases as passed (see $WORK_DIR/run.log)" >&2
  exit 1
fi
echo "installed_package_consumer: OK — both variables under $PREFIX, the installed runner passes the installed reference plugin"
