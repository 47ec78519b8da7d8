#!/usr/bin/env bash
# The study's setting in miniature on the CPU, with CIFAR-10 (the JPEG copy in
# ../shared/data, packed by cifar-pack): a sena32 backbone is pretrained by the
# engine on classes 6-9, then classes 0-5 are learnt as 3 tasks of 2 classes by
# `lora --adapt-first-task` over that frozen backbone, by `separate` (every
# layer fine-tuned per task from it: the paper's upper bound), and by both from
# scratch; last, a rank calibration (one task, r = 1, 3, 9) over the backbone.
# Usage: scripts/cifar10_backbone_study.sh [OUT_DIR]   (default runs/cifar10-backbone)
# Extra continual flags can be given in STUDY_FLAGS (e.g. "--seeds 0,1,2").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/cifar10-backbone}
continual=build/experiments/continual
shared=../shared/data/cifar10-train-jpeg.tar.xz
[ -f "$shared" ] || { echo "cifar10_backbone_study: $shared is missing" >&2; exit 1; }
[ -x "$continual" ] || { echo "cifar10_backbone_study: build first (scripts/build.sh)" >&2; exit 1; }

data=$out/data
if [ ! -f "$data/bin/batches.meta.txt" ]; then
  mkdir -p "$data"
  tar -xJf "$shared" -C "$data"
  build/experiments/cifar-pack "$data/train" "$data/bin"
  rm -rf "$data/train"
fi
common=(--dataset cifar10 --data-dir "$data/bin" --eval-limit 500 --epochs 4 --patience 2)
read -r -a extra <<<"${STUDY_FLAGS:-}"

# 1. The backbone: one task of classes 6-9, every layer trained; its kept model
#    (the plain network) is what --init reads (the head of 4 classes is skipped).
"$continual" "${common[@]}" "${extra[@]}" --class-order 6,7,8,9 --tasks 1 --method separate \
  --train-limit 4000 --out "$out/pretrain"
backbone=$out/pretrain/models/separate-seed0/task-1.npz

# 2. Classes 0-5 in 3 tasks over the pretrained backbone, and from scratch.
"$continual" "${common[@]}" "${extra[@]}" --class-order 0,1,2,3,4,5 --tasks 3 --train-limit 1000 \
  --method lora,separate --adapt-first-task --init "$backbone" --out "$out/pretrained"
"$continual" "${common[@]}" "${extra[@]}" --class-order 0,1,2,3,4,5 --tasks 3 --train-limit 1000 \
  --method lora,separate --out "$out/scratch"

# 3. Rank calibration over the backbone: one task of the 6 classes.
"$continual" "${common[@]}" "${extra[@]}" --class-order 0,1,2,3,4,5 --tasks 1 --train-limit 1000 \
  --method lora --adapt-first-task --init "$backbone" --rank 1,3,9 --out "$out/ranks"
