#!/usr/bin/env bash
# Installs the Debian 12 packages ffn.cpp needs to build and test.
# Runs apt-get as root (through sudo when not root); does nothing when every
# package is already installed.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ ccache pkg-config
  libhwy-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-numpy
  clang libclang-rt-14-dev   # libFuzzer targets and sanitizer runtime
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
