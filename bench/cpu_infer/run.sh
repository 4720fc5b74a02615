#!/usr/bin/env bash
# CPU inference benchmark: the full-size YOLOv3-MobileNetV1 student (PyTorch export, width 1.0) at
# 320x320 and 608x608, batch 1, onnx-distill vs ONNX Runtime with the same thread count, in one run.
# Writes bench/cpu_infer/results.md (see bench.py for the method).
#
# usage: bench/cpu_infer/run.sh [--threads T[,T...]] [--iters N] [--rounds R] [--warmup W] [--sizes 320,608] [--no-write]
#   Always times ORT with graph optimisations off too; on a CPU with AVX-512 also ours with
#   OPENBLAS_CORETYPE=SkylakeX (OpenBLAS 0.3.21 does not know AMD family 26 and falls back to Haswell).
# env:   OD_TOOL        onnx-distill binary (default build/onnx-distill)
#        OD_PYTHON      python with onnxruntime + numpy (default .venv/bin/python, from tools/setup-deps.sh)
#        EXPORTERS_PY   python with torch + onnx, only to make the model when it is missing (default
#                       /work/exporters-venv/bin/python, else a venv made at out/exporters-venv)
#        BENCH_MODEL    the model (default out/bench/yolov3_mbv1_torch_full.onnx, git-ignored, ~97 MB)
set -euo pipefail
cd "$(dirname "$0")/../.."

TOOL=${OD_TOOL:-build/onnx-distill}
PY=${OD_PYTHON:-.venv/bin/python}
MODEL=${BENCH_MODEL:-out/bench/yolov3_mbv1_torch_full.onnx}

if [ ! -x "$TOOL" ]; then
  echo "run.sh: $TOOL not found: build first (cmake -B build && cmake --build build)" >&2
  exit 2
fi
if [ ! -f "$MODEL" ]; then
  EXPORTERS_PY=${EXPORTERS_PY:-/work/exporters-venv/bin/python}
  if ! "$EXPORTERS_PY" -c "import torch, onnx" >/dev/null 2>&1; then
    echo "run.sh: making out/exporters-venv with torch + onnx (a few GB, once)"
    python3 -m venv out/exporters-venv
    out/exporters-venv/bin/pip install -q torch onnx onnxruntime numpy
    EXPORTERS_PY=out/exporters-venv/bin/python
  fi
  "$EXPORTERS_PY" models/yolov3_mbv1/export_torch.py --full --out "$MODEL"
fi
EXPORTER="torch.onnx.export opset 11 by models/yolov3_mbv1/export_torch.py --full"
extra=(--ort-noopt)
if grep -q '\bavx512f\b' /proc/cpuinfo; then
  extra+=(--ours-variant OPENBLAS_CORETYPE=SkylakeX)
fi
exec "$PY" bench/cpu_infer/bench.py --tool "$TOOL" --model "$MODEL" --exporter "$EXPORTER" "${extra[@]}" "$@"
