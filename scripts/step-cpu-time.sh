#!/usr/bin/env bash
# Builds scripts/step_cpu_time.cpp against a build directory's engine and
# layers libraries (of this checkout or another, e.g. an older commit's
# worktree) and runs it on one thread, or on STEP_THREADS threads:
#
#   scripts/step-cpu-time.sh BUILD_DIR ARCH [STEPS] [BATCH]
#   OPENBLAS_CORETYPE=Haswell scripts/step-cpu-time.sh build sena32 10
#   OPENBLAS_CORETYPE=Haswell scripts/step-cpu-time.sh build conv:512:2 10   (one conv layer)
#   STEP_THREADS=2 scripts/step-cpu-time.sh build sena32 20   (2 threads, by the wall clock)
#
# The source tree is the one BUILD_DIR belongs to (its parent directory), so
# the headers match the libraries.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR ARCH|conv:C:S [STEPS] [BATCH]" >&2
  exit 2
fi
build=$(realpath "$1")
shift
tree=$(dirname "$build")
for lib in "$build/layers/liblayers.a" "$build/engine/libengine.a"; do
  [ -f "$lib" ] || { echo "$0: $lib not found: build $tree first (scripts/build.sh)" >&2; exit 2; }
done
binary=$(mktemp /tmp/step_cpu_time.XXXXXX)
trap 'rm -f "$binary"' EXIT
g++ -std=c++20 -O3 -fopenmp -DNDEBUG -I"$tree" "$(dirname "$0")/step_cpu_time.cpp" \
  "$build/layers/liblayers.a" "$build/engine/libengine.a" -lopenblas -lz -lzip -o "$binary"
OMP_NUM_THREADS=${STEP_THREADS:-1} "$binary" "$@"
