#!/usr/bin/env bash
# Submits a sharded continual sweep to Slurm: a job array of SHARDS tasks
# (sweep.sbatch), then the merge step (merge.sbatch), which waits for every
# task of the array to succeed (--dependency=afterok).
#
#   scripts/slurm/submit.sh SHARDS OUT_DIR [continual flags...]
#   e.g. scripts/slurm/submit.sh 8 runs/vgg19 --arch vgg19 --dataset cifar100 \
#          --method lora,cp-lora,finetune --seeds 1,2,3,4,5,6,7,8
#
# Extra sbatch options (partition, account, GPUs) go in SBATCH_* environment
# variables, e.g. SBATCH_PARTITION=gpu, or edit the #SBATCH lines. A failed
# shard can be resubmitted alone (sbatch --array=I ...); it skips its finished
# cells and resumes the unfinished one from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."

shards=${1:?usage: scripts/slurm/submit.sh SHARDS OUT_DIR [continual flags...]}
out_dir=${2:?usage: scripts/slurm/submit.sh SHARDS OUT_DIR [continual flags...]}
shift 2
if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]]; then
  echo "submit.sh: SHARDS must be a positive integer, got '$shards'" >&2
  exit 2
fi
mkdir -p "$out_dir"

array_job=$(sbatch --parsable --array="0-$((shards - 1))" scripts/slurm/sweep.sbatch "$out_dir" "$@")
merge_job=$(sbatch --parsable --dependency="afterok:${array_job}" scripts/slurm/merge.sbatch "$out_dir")
echo "submitted sweep array ${array_job} (${shards} shards) and merge ${merge_job} -> ${out_dir}"
