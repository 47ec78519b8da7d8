#!/usr/bin/env bash
# Runs continual under mpirun, in one of two ways:
#
#   scripts/mpirun-example.sh sweep OUT_DIR [continual flags...]
#     A sharded sweep: each of the NP ranks runs the cells whose index mod NP
#     is its rank (continual reads the shard from OMPI_COMM_WORLD_RANK/SIZE),
#     then `continual merge OUT_DIR` writes the combined reports.
#
#   scripts/mpirun-example.sh data-parallel OUT_DIR [continual flags...]
#     Data-parallel training: the NP ranks split each global batch (--batch)
#     and average gradients every step (MPI on the CPU, NCCL with --device
#     cuda). Only rank 0 writes results and checkpoints. Batch-norm statistics
#     are per rank. Needs a build with MPI (meson -Dmpi=enabled).
#
# NP (default 2) ranks; THREADS (default: cores / NP) CPU threads per rank.
# Run as root (containers, CI) adds --allow-run-as-root. Extra mpirun options
# go in MPIRUN_FLAGS (e.g. "--hostfile hosts" to span machines; the build and
# OUT_DIR must then be on a shared file system).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/mpirun-example.sh sweep|data-parallel OUT_DIR [continual flags...]"
mode=${1:?$usage}
out_dir=${2:?$usage}
shift 2
np=${NP:-2}
threads=${THREADS:-$(($(nproc) / np > 0 ? $(nproc) / np : 1))}
continual=${CONTINUAL:-build/experiments/continual}

mpirun_flags=(-np "$np" --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpirun_flags+=(--allow-run-as-root)
# Threads are set by --threads; keep OpenMP and OpenBLAS from taking every core.
mpirun_flags+=(-x OMP_NUM_THREADS="$threads" -x OPENBLAS_NUM_THREADS="$threads" --bind-to none)
read -r -a extra <<<"${MPIRUN_FLAGS:-}"
mpirun_flags+=("${extra[@]}")

case "$mode" in
  sweep)
    mpirun "${mpirun_flags[@]}" "$continual" --threads "$threads" --out "$out_dir" "$@"
    "$continual" merge "$out_dir"
    ;;
  data-parallel)
    # One GPU per rank: each rank sees only the GPU of its local rank (the
    # engine uses the first visible GPU). Harmless on the CPU.
    mpirun "${mpirun_flags[@]}" bash -c \
      'export CUDA_VISIBLE_DEVICES=${OMPI_COMM_WORLD_LOCAL_RANK:-0}; exec "$@"' _ \
      "$continual" --data-parallel --threads "$threads" --out "$out_dir" "$@"
    ;;
  *)
    echo "mpirun-example.sh: unknown mode '$mode'; $usage" >&2
    exit 2
    ;;
esac
