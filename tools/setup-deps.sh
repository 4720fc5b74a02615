#!/usr/bin/env bash
# Installs what onnx-distill needs to build and test, on Debian 12 as root (idempotent):
# Debian packages for the build, and a Python venv (.venv, git-ignored) with the reference
# packages the tests compare against (onnx, onnxruntime, numpy, Pillow). The runtime itself needs
# no Python.
#   --build-only   only the Debian packages the build needs, no venv (what tools/demo.sh uses)
set -euo pipefail
build_only=false
[ "${1:-}" = "--build-only" ] && build_only=true
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config git protobuf-c-compiler libprotobuf-c-dev libonnx-dev check
      libcjson-dev libopenblas-dev libjpeg62-turbo-dev libxml2-dev python3 python3-venv python3-pip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The CUDA toolkit (nvcc, cuDNN, cuBLAS) is optional: without it the build is CPU-only.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "setup-deps: nvcc is at /usr/local/cuda/bin; CMake finds it there"
fi

if $build_only; then exit 0; fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import onnx, onnxruntime, numpy, PIL" >/dev/null 2>&1; then
  echo "setup-deps: installing the Python reference packages into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r tools/requirements-test.txt
fi
