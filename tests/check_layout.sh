#!/usr/bin/env bash
# The layering of the source tree (issue 14, item 23): engine/ knows device
# backends only through its registry (engine/backend.h), so nothing under
# engine/ includes a CUDA, cuBLAS or NCCL header or a cuda/ file, holds a
# .cu/.cuh file, or compiles CUDA sources (its meson.build files mention
# neither cuda_sources, .cu files nor cuda dependencies outside comments).
# Each rule also runs on a fixture that breaks it, so the check can fail.
#
#   check_layout.sh SOURCE_ROOT JUNIT_FILE
set -uo pipefail
root=$1
junit_file=$2
source "$(dirname "$0")/junit.sh"

# violations ROOT: one line per breach of the rules under ROOT/engine.
violations() {
  local engine=$1/engine
  grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](cuda/|cuda[_.a-z]*\.h|cublas|curand|cudnn|nccl)' \
    "$engine" --include='*.h' --include='*.cpp' --include='*.cc' --include='*.hpp' \
    | sed 's/^/includes a CUDA header: /'
  find "$engine" -name '*.cu' -o -name '*.cuh' | sed 's/^/a CUDA source in engine: /'
  find "$engine" -name meson.build -print0 | while IFS= read -r -d '' file; do
    sed 's/#.*//' "$file" | grep -nE "cuda|nccl|\.cu'|\.cuh'" | sed "s|^|$file mentions CUDA: |"
  done
}

# expect_clean NAME ROOT / expect_caught NAME ROOT
expect_clean() {
  local found
  found=$(violations "$2")
  if [[ -z $found ]]; then
    junit_case "$1" passed
    echo "ok: $1"
  else
    junit_case "$1" failed "$found"
    printf 'FAILED: %s:\n%s\n' "$1" "$found"
  fi
}
expect_caught() {
  if [[ -n $(violations "$2") ]]; then
    junit_case "$1" passed
    echo "ok: $1"
  else
    junit_case "$1" failed "the breach went unnoticed"
    echo "FAILED: $1: the breach went unnoticed"
  fi
}

expect_clean "engine/ does not depend on cuda/" "$root"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fixture() {
  rm -rf "$work/tree"
  mkdir -p "$work/tree/engine/distributed"
  printf '#include "engine/tensor.h"\n' >"$work/tree/engine/ok.cpp"
  printf "# Comments may name cuda/ and nccl.\nengine_sources = files('ok.cpp')\n" >"$work/tree/engine/meson.build"
}
fixture
expect_clean "the fixture itself is clean" "$work/tree"
fixture
printf '#include <cstdint>\n  #  include "cuda/cuda_backend.h"\n' >"$work/tree/engine/ok.cpp"
expect_caught "an include of a cuda/ header is caught" "$work/tree"
fixture
printf '#include <nccl.h>\n' >"$work/tree/engine/distributed/comm.cpp"
expect_caught "an include of nccl.h is caught" "$work/tree"
fixture
touch "$work/tree/engine/kernels.cu"
expect_caught "a .cu file under engine/ is caught" "$work/tree"
fixture
printf "engine_sources += cuda_sources  # the backend\n" >>"$work/tree/engine/meson.build"
expect_caught "cuda sources in engine/meson.build are caught" "$work/tree"
fixture
printf "deps = [nccl_dep]\n" >"$work/tree/engine/distributed/meson.build"
expect_caught "an NCCL dependency in engine/distributed/meson.build is caught" "$work/tree"

junit_write "$junit_file" layout
! grep -q '<failure' "$junit_file"
