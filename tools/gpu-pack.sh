#!/usr/bin/env bash
# tools/gpu-pack.sh: prepares what the lent GPU machine needs (docs/gpu-session.md): a Release build
# with CUDA for Hopper in build-gpu/ (debug info stripped, so it fits the 64 MiB carry limit) and
# the non-CUDA shared libraries it links in .devlibs/. Then, with the device tool:
#   run(command="bash bench/gpu/run.sh", carry=["build-gpu", ".devlibs"], timeout_s=560)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-deps.sh --build-only
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DOD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
cmake --build build-gpu -j"$(nproc)" --target onnx-distill cuda_parity test_device test_train_cuda test_cuda_graphs
# only what the GPU run uses travels: the tool, the GPU test binaries, CTest's files
find build-gpu -name '*.o' -delete
find build-gpu -name '*.a' -delete
for f in build-gpu/onnx-distill build-gpu/tests/cuda_parity build-gpu/tests/test_device build-gpu/tests/test_train_cuda build-gpu/tests/test_cuda_graphs; do
  [ -f "$f" ] && strip --strip-debug "$f"
done
rm -rf build-gpu/tests/tmp/gradcheck build-gpu/tests/tmp/*big* build-gpu/emu 2>/dev/null || true
bash ../shared/device/pack-libs.sh .devlibs build-gpu/onnx-distill build-gpu/tests/cuda_parity \
  build-gpu/tests/test_device build-gpu/tests/test_train_cuda build-gpu/tests/test_cuda_graphs
grep -qx 'build-gpu' .git/info/exclude 2>/dev/null || printf 'build-gpu\n.devlibs\n' >> .git/info/exclude
du -sh build-gpu .devlibs
