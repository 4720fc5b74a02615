#!/usr/bin/env bash
# bench/gpu/run.sh: the GPU check and benchmark, one command for the lent GPU machine
# (docs/gpu-session.md says how to build here and send it). It runs, in order:
#   1. the GPU tests (CTest label gpu: CUDA kernels against the CPU, the trainer's device math, the
#      CPU-vs-GPU loss curves), output in $OUT/gpu-tests.txt;
#   2. the reference networks written by PyTorch (torch_peer_yolov3.py --export: YOLOv3-MobileNetV1
#      student, YOLOv3-ResNet34 teacher, random weights);
#   3. our distillation step (batch 8, 608x608, L2 on the three head outputs, momentum SGD) in fp32,
#      tf32 and bf16, and the student's batch-1 inference latency;
#   4. PyTorch's same step on the same card (torch_peer_yolov3.py), in the same call;
#   5. a table with images/s side by side, the ratio, and peak device memory (nvidia-smi, sampled
#      every 100 ms during each run, CUDA context included for both), into $OUT/summary.md.
# Usage: bash bench/gpu/run.sh [PHASE...]   phases: tests, bench (ours + PyTorch, fp32/tf32/bf16),
# ablations (fp32 with OD_CUDA_GRAPHS=0 and with OD_CUDA_DEPTHWISE=0: what graphs and our depthwise
# kernels buy); default "tests bench" (about 7-9 minutes on an H100: fits one 560 s call).
# Environment: BUILD (default build-gpu), OUT (default /tmp/od-gpu), STEPS (default 30);
# SIZE, BATCH (608, 8), LOG_EVERY (10) and MODELS (a folder with teacher.onnx and student.onnx
# instead of the PyTorch export) only to try the script out.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-gpu}
OUT=${OUT:-/tmp/od-gpu}
STEPS=${STEPS:-30}
SIZE=${SIZE:-608}
BATCH=${BATCH:-8}
PHASES=${*:-tests bench}
has() { case " $PHASES " in *" $1 "*) return 0;; esac; return 1; }
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.devlibs:${LD_LIBRARY_PATH:-}
TOOL=$(cd "$BUILD" && pwd)/onnx-distill
PY=${PY:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt" || true

# peak memory of a command: nvidia-smi sampled in the background
with_mem() { # with_mem LABEL CMD...
  local label=$1; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$OUT/mem_$label.txt" 2>/dev/null &
  local smi=$!
  "$@"
  local rc=$?
  kill $smi 2>/dev/null; wait $smi 2>/dev/null
  return $rc
}

if has tests; then
  # the test binaries directly (CTest's files name this machine's paths, not the GPU machine's)
  echo "== GPU tests =="
  {
    $PY tests/gen_gradcheck.py "$OUT/gradcheck32" --float32 > /dev/null
    for t in test_device test_train_cuda test_cuda_graphs; do
      [ -x "$BUILD/tests/$t" ] && { CK_FORK=no timeout 120 "$BUILD/tests/$t"; echo "$t: exit $?"; }
    done
    timeout 240 "$BUILD/tests/cuda_parity" --device cuda:0 "$OUT/gradcheck32" > "$OUT/parity.txt" 2>&1
    echo "cuda_parity (float32 gradcheck models): exit $?"; grep -v '^ok' "$OUT/parity.txt" | head -40
    # the fast-path cases (tests/gen_cuda_cases.py; no node tests here: only its fixed-input ones in nodes/)
    $PY tests/gen_cuda_cases.py "$OUT/cuda_cases" > /dev/null
    n=$(wc -l < "$OUT/parity.txt")
    timeout 240 "$BUILD/tests/cuda_parity" --device cuda:0 "$OUT/cuda_cases" >> "$OUT/parity.txt" 2>&1
    echo "cuda_parity (extra cases, tests/gen_cuda_cases.py): exit $?"
    timeout 120 "$BUILD/tests/cuda_parity" --device cuda:0 "$OUT/cuda_cases/nodes" >> "$OUT/parity.txt" 2>&1
    echo "cuda_parity (extra cases on fixed inputs): exit $?"; tail -n +$((n + 1)) "$OUT/parity.txt" | grep -v '^ok' | head -40
    # our depthwise kernels, and the cuDNN path they replace (OD_CUDA_DEPTHWISE=0)
    $PY tests/gen_depthwise_cases.py "$OUT/dw" > /dev/null
    timeout 120 "$BUILD/tests/cuda_parity" --min-device 1 "$OUT/dw" > "$OUT/parity_dw.txt" 2>&1
    echo "cuda_parity (depthwise): exit $?"; grep -v '^ok' "$OUT/parity_dw.txt" | head -20
    OD_CUDA_DEPTHWISE=0 timeout 120 "$BUILD/tests/cuda_parity" --min-device 1 "$OUT/dw" > "$OUT/parity_dw_cudnn.txt" 2>&1
    echo "cuda_parity (depthwise through cuDNN): exit $?"; grep -v '^ok' "$OUT/parity_dw_cudnn.txt" | head -20
    for prec in fp32 tf32; do
      timeout 300 $PY tests/train_cuda.py "$TOOL" models/tiny "$OUT/tmp" $prec; echo "train_cuda $prec: exit $?"
    done
    timeout 300 $PY tests/train_cuda_graphs.py "$TOOL" models/tiny "$OUT/tmp"; echo "train_cuda_graphs: exit $?"
  } 2>&1 | tee "$OUT/gpu-tests.txt"
fi

if has bench || has ablations; then
echo "== reference networks =="
if [ -n "${MODELS:-}" ]; then # a folder with teacher.onnx and student.onnx (outputs out_s32, out_s16, out_s8)
  mkdir -p "$OUT/models" && cp "$MODELS/teacher.onnx" "$MODELS/student.onnx" "$OUT/models/"
else
  $PY bench/gpu/torch_peer_yolov3.py --export "$OUT/models" 2>&1 | tail -3
fi
cat > "$OUT/models/pairs.json" <<JSON
{
  "teacher": {"model": "teacher.onnx"},
  "student": {"model": "student.onnx"},
  "data": {"format": "random", "size": $SIZE},
  "pairs": [
    {"teacher": "out_s32", "student": "out_s32", "loss": "l2"},
    {"teacher": "out_s16", "student": "out_s16", "loss": "l2"},
    {"teacher": "out_s8", "student": "out_s8", "loss": "l2"}
  ],
  "train": {"batch_size": $BATCH, "steps": $STEPS, "device": "cuda", "seed": 0, "log_every": ${LOG_EVERY:-10},
            "checkpoint_every": 0, "out_dir": "/tmp/od-bench-train",
            "optimizer": {"type": "momentum", "lr": 0.001, "momentum": 0.9, "weight_decay": 0.0005}}
}
JSON
fi

if has bench; then
  echo "== ours =="
  for prec in fp32 tf32 bf16; do
    with_mem "ours_$prec" timeout 240 "$TOOL" train "$OUT/models/pairs.json" --set train.precision=$prec \
      --set train.log="$OUT/ours_$prec.jsonl" > "$OUT/ours_$prec.txt" 2>&1
    echo "train $prec: exit $?"; tail -2 "$OUT/ours_$prec.txt"
    timeout 120 "$TOOL" bench "$OUT/models/student.onnx" --device cuda --precision $prec \
      --shape image=1x3x${SIZE}x${SIZE} --iters 50 --warmup 10 --json > "$OUT/ours_infer_$prec.txt" 2>&1
    echo "infer $prec: exit $?"; grep latency "$OUT/ours_infer_$prec.txt"
  done
  echo "== PyTorch =="
  with_mem torch env OUT="$OUT" timeout 300 $PY bench/gpu/torch_peer_yolov3.py > "$OUT/torch.txt" 2>&1
  echo "torch: exit $?"; tail -5 "$OUT/torch.txt"
fi

if has ablations; then
  echo "== ablations (fp32) =="
  for knob in OD_CUDA_GRAPHS=0 OD_CUDA_DEPTHWISE=0; do
    label=ours_fp32_${knob%%=*}
    with_mem "$label" env $knob timeout 240 "$TOOL" train "$OUT/models/pairs.json" --set train.precision=fp32 \
      --set train.log="$OUT/$label.jsonl" > "$OUT/$label.txt" 2>&1
    echo "$knob: exit $?"; tail -1 "$OUT/$label.txt"
  done
fi

BATCH=$BATCH $PY bench/gpu/summary.py "$OUT" | tee "$OUT/summary.md"
