#!/bin/bash
# continual --data-parallel on 2 MPI ranks of one thread each must give what one
# process gives with the same global batch: the same accuracy matrix, and each
# epoch's training loss within 1e-5 relative (float32 reduction order). The
# network has neither batch norm nor dropout (both work per rank), and batch
# 23 over 300 images splits unevenly (11 + 12) and ends with a batch of one
# image, so that one rank trains on nothing in the last step.
#
#   data_parallel.sh CONTINUAL MPIRUN JUNIT_FILE
# MPIRUN is empty where the build has no MPI or no mpirun: the test is skipped
# (exit code 77), as it is without Fashion-MNIST. The outcome is also written
# to JUNIT_FILE as one case (tests/junit.sh).
set -euo pipefail
continual=$1
mpirun=${2:-}
junit_file=$3
fashion=/usr/share/datasets/fashion-mnist
source "$(dirname "$0")/junit.sh"
work=$(mktemp -d)
trap 'status=$?; rm -rf "$work"; junit_finish "$junit_file" data_parallel two_ranks_match_one_process $status' EXIT
if [[ -z $mpirun ]]; then
  echo "SKIPPED: needs a build with MPI (the mpi Meson option, libopenmpi-dev) and mpirun"
  exit 77
fi
if [[ ! -f $fashion/train-images-idx3-ubyte.gz ]]; then
  echo "SKIPPED: needs Fashion-MNIST in $fashion (apt-get install dataset-fashion-mnist)"
  exit 77
fi

args=(--dataset fashion-mnist --arch '8,M,16,M:fc=32:dropout=0' --tasks 2 --train-limit 300 --eval-limit 100
      --epochs 1 --batch 23 --method naive,lora --threads 1)

"$continual" "${args[@]}" --out "$work/one" > "$work/one.log" 2>&1 ||
  { cat "$work/one.log"; echo "FAILED: the single-process run"; exit 1; }
# Root in CI; containers often forbid the cross-process memory reads (CMA)
# that Open MPI's shared-memory transport tries first.
OMPI_MCA_btl_vader_single_copy_mechanism=none \
  "$mpirun" --allow-run-as-root --oversubscribe -np 2 "$continual" "${args[@]}" --data-parallel --out "$work/two" \
  > "$work/two.log" 2>&1 || { cat "$work/two.log"; echo "FAILED: the 2-rank run"; exit 1; }
grep -q "MPI (rank 0 of 2)" "$work/two.log" || { cat "$work/two.log"; echo "FAILED: not 2 MPI ranks"; exit 1; }

if ! diff "$work/one/accuracy_matrix.csv" "$work/two/accuracy_matrix.csv"; then
  echo "FAILED: the accuracy matrices differ (above: < one process, > two ranks)"
  exit 1
fi
cat "$work/one/accuracy_matrix.csv"

# The numbers of every "train_loss" list of a cell file, one a line.
train_losses() {
  awk '/"train_loss"/ { inside = 1; next } inside && /\]/ { inside = 0 } inside { gsub(/[ ,]/, ""); print }' "$1"
}
for cell in naive-seed0 lora-seed0; do
  paste <(train_losses "$work/one/cells/$cell.json") <(train_losses "$work/two/cells/$cell.json") |
    awk -v cell="$cell" '
      { n++; d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1)
        printf "%s epoch loss: one process %.9f, two ranks %.9f, relative difference %.2e\n", cell, $1, $2, r
        if (NF != 2 || r > 1e-5) bad = 1 }
      END { if (n == 0) { print cell ": no training losses"; exit 1 } exit bad }' ||
    { echo "FAILED: $cell training losses differ by more than 1e-5 relative"; exit 1; }
done
echo "PASSED: 2 data-parallel ranks match one process"
