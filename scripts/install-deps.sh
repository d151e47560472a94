#!/usr/bin/env bash
# Installs the Debian packages uttm needs to build and test, if any is missing.
# Checks with dpkg first; installs with apt-get (through sudo when not root). Says exactly what is
# missing when it cannot install it.
set -euo pipefail

packages=(
  g++ clang-14 libclang-rt-14-dev clang-format cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libxxhash-dev liburing-dev liblz4-dev libzstd-dev libssl-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libxml2-utils
  libhiredis-dev redis-server
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "uttm: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "uttm: cannot install (not root and no sudo). Please install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q "${missing[@]}"; then
  "${sudo[@]}" apt-get update -q || true
  if ! "${sudo[@]}" apt-get install -y -q "${missing[@]}"; then
    echo "uttm: apt-get could not install: ${missing[*]}" >&2
    exit 1
  fi
fi
