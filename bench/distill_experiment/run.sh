#!/usr/bin/env bash
# The distillation experiment on the synthetic set (the detection issue's table): with the same
# step budget, the mAP of the teacher; the student trained alone; distilled with the reference
# method's L2 pairs; with yolo_split (the fine-grained loss, weight 1000 as in distill.py); with
# yolo_split + FM-NMS. All runs add the student's YOLOv3 loss. Writes results.md beside this file.
#   STEPS=N (default 4000)   SEED=S (default 0)   REUSE=1: keep runs whose model already exists
set -euo pipefail
cd "$(dirname "$0")/../.."
OD=${OD:-build/onnx-distill}
STEPS=${STEPS:-4000}
SEED=${SEED:-0}
OUT=out/experiment
mkdir -p "$OUT"
[ -x "$OD" ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)"; }
[ -f out/demo/data/trainval.txt ] || "$OD" make-data --out out/demo/data --images 2000 --size 160 --seed 0

map_of() { "$OD" eval "$1" models/demo/pairs.json --json | sed -n 's/.*"map11": \([0-9.e+-]*\), "map_all": \([0-9.e+-]*\),.*/\1 \2/p'; }

run() { # NAME MANIFEST [--set ...]
  local name=$1 manifest=$2; shift 2
  echo "== $name" >&2
  if [ -n "${REUSE:-}" ] && [ -f "$OUT/$name.onnx" ]; then
    echo "$name $(map_of "$OUT/$name.onnx") $(cat "$OUT/$name.secs" 2>/dev/null || echo '?')"
    return
  fi
  local t0; t0=$(date +%s)
  "$OD" train "$manifest" --set "train.steps=$STEPS" --set "train.seed=$SEED" --set "train.out_dir=../../$OUT/$name" \
    --set "student.export=../../$OUT/$name.onnx" --set train.checkpoint_every=0 "$@" >"$OUT/$name.log" 2>&1
  local secs=$(( $(date +%s) - t0 ))
  echo "$secs" > "$OUT/$name.secs"
  echo "$name $(map_of "$OUT/$name.onnx") $secs"
}

teacher=$(map_of models/demo/teacher.onnx)
rows=()
rows+=("$(run alone models/demo/student_alone.json)")
rows+=("$(run l2 models/demo/pairs.json)")
split=(--set pairs[0].loss=yolo_split --set pairs[1].loss=yolo_split --set pairs[2].loss=yolo_split
       --set pairs[0].weight=1000 --set pairs[1].weight=1000 --set pairs[2].weight=1000)
rows+=("$(run yolo_split models/demo/pairs.json "${split[@]}")")
fmnms=(--set pairs[0].fm_nms=true --set pairs[1].fm_nms=true --set pairs[2].fm_nms=true)
rows+=("$(run yolo_split_fmnms models/demo/pairs.json "${split[@]}" "${fmnms[@]}")")

{
  echo "# Distillation experiment on the synthetic set"
  echo
  echo "Written by \`bench/distill_experiment/run.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, onnx-distill $(git rev-parse --short HEAD))."
  echo "Student: models/demo/student.onnx (MobileNet-like YOLOv3, 0.11 M parameters); teacher: models/demo/teacher.onnx"
  echo "(ResNet-like YOLOv3, 1.05 M parameters, trained by onnx-distill on the same data). $STEPS steps, batch 8,"
  echo "multi-scale 128..192, Adam + cosine, seed $SEED; every run adds the student's YOLOv3 loss. mAP@0.5 on the"
  echo "400-image val list at 192x192."
  echo
  echo "| run | mAP 11-point | mAP all-point | train time (s) |"
  echo "|---|---|---|---|"
  awk '{printf "| teacher | %.2f | %.2f | - |\n", 100 * $1, 100 * $2}' <<<"$teacher"
  for r in "${rows[@]}"; do awk '{printf "| %s | %.2f | %.2f | %s |\n", $1, 100 * $2, 100 * $3, $4}' <<<"$r"; done
} | tee bench/distill_experiment/results.md
