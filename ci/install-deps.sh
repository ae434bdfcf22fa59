#!/usr/bin/env bash
# Installs the Debian packages stagekit builds and runs with, if any is missing (needs root or sudo).
# Idempotent and quiet when everything is present.
set -euo pipefail

packages=(
  cmake ninja-build ccache g++ git
  libgtest-dev libgmock-dev libbenchmark-dev libabsl-dev libfmt-dev nlohmann-json3-dev libcli11-dev libxxhash-dev
  clang-14 libclang-rt-14-dev clang-format clang-tidy
  openmpi-bin libopenmpi-dev
  python3 python3-pandas python3-matplotlib python3-scipy python3-pytest
  python3-venv python3-setuptools flake8 chromium
  python3-dev pybind11-dev python3-torch
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "stagekit: installing missing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "stagekit: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
