#!/usr/bin/env bash
# Configures (once) and builds the project in build/. The CUDA backend is
# built when nvcc and cuBLAS are found (/usr/local/cuda is searched too).
# Extra arguments go to `meson setup` on the first run, e.g. -Dcuda=disabled.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d /usr/local/cuda/bin ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
  export CUDA_PATH="${CUDA_PATH:-/usr/local/cuda}"
fi
if [ ! -f build/build.ninja ]; then
  meson setup build "$@" >build-setup.log 2>&1 || { cat build-setup.log; exit 1; }
  grep -A3 "Configuration" build-setup.log || true
  rm -f build-setup.log
fi
ninja -C build
