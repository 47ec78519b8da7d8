#!/usr/bin/env bash
# Installs what the project needs from Debian's packages; quiet and quick when
# everything is already there. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  meson ninja-build g++ pkg-config
  libopenblas-dev libboost-test-dev libstb-dev zlib1g-dev libzip-dev
  libcli11-dev nlohmann-json3-dev
  libcairo2-dev fonts-dejavu-core
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The CUDA toolkit, where present, lives outside PATH on these machines.
if [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  echo "setup: CUDA found at /usr/local/cuda (scripts/build.sh puts it on PATH)"
fi
