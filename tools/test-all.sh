#!/usr/bin/env bash
# Builds everything and runs every test, twice: the normal build (CUDA included when nvcc is
# present; GPU tests report skipped without a device) and an AddressSanitizer + UBSan build.
# This is the README's test command and what CI (.ci/run) calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-deps.sh
jobs=$(nproc)

echo "== build (release, CUDA if available) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests =="
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build (ASan + UBSan) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DOD_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under ASan + UBSan =="
# protect_shadow_gap=0: the CUDA runtime maps memory where ASan keeps its shadow gap.
ASAN_OPTIONS=protect_shadow_gap=0:detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
