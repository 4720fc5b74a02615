#!/usr/bin/env bash
# The main job (the README's first command): build onnx-distill, generate the synthetic VOC-format
# dataset, and distil the demo student (models/demo/student.onnx, MobileNet-like YOLOv3) from the
# demo teacher (models/demo/teacher.onnx, ResNet-like YOLOv3, trained by onnx-distill itself) with
# the reference method's L2 pairs plus the student's YOLOv3 loss; then report the mAP of the
# teacher, of the student before and of the student after. Output in out/demo/.
#   DEMO_STEPS=N   training steps (default: models/demo/pairs.json's)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-deps.sh --build-only
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
OD=build/onnx-distill
MANIFEST=models/demo/pairs.json
SETS=()
if [ -n "${DEMO_STEPS:-}" ]; then SETS+=(--set "train.steps=$DEMO_STEPS"); fi

if [ ! -f out/demo/data/trainval.txt ]; then
  echo "== generating the synthetic dataset (out/demo/data)"
  "$OD" make-data --out out/demo/data --images 2000 --size 160 --seed 0
fi

map_of() { # MODEL -> "11-point all-point" mAP in percent
  "$OD" eval "$1" "$MANIFEST" --json "${SETS[@]}" | sed -n 's/.*"map11": \([0-9.e+-]*\), "map_all": \([0-9.e+-]*\),.*/\1 \2/p' |
    awk '{printf "%.2f %.2f", 100 * $1, 100 * $2}'
}

echo "== teacher and student before training (val list, 192x192)"
teacher=$(map_of models/demo/teacher.onnx)
before=$(map_of models/demo/student.onnx)
echo "teacher: $teacher   student before: $before"

echo "== distilling (onnx-distill train $MANIFEST)"
start=$(date +%s)
"$OD" train "$MANIFEST" "${SETS[@]}"
secs=$(( $(date +%s) - start ))
after=$(map_of out/demo/student_distilled.onnx)

printf '\n%-34s %12s %12s\n' "mAP@0.5 on the val list" "11-point" "all-point"
printf '%-34s %12s %12s\n' "teacher (ResNet-like YOLOv3)" $teacher
printf '%-34s %12s %12s\n' "student before (MobileNet-like)" $before
printf '%-34s %12s %12s\n' "student distilled (${secs}s)" $after
echo "exported: out/demo/student_distilled.onnx (runs in ONNX Runtime unchanged)"
