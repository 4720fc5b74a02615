#!/usr/bin/env bash
# tools/fuzz-import.sh: builds the libFuzzer target for the ONNX importer and runs it.
#
#   tools/fuzz-import.sh [SECONDS] [libFuzzer options...]     (SECONDS defaults to 600)
#
# Builds build-fuzz/ with clang (OD_FUZZ=ON), seeds the corpus with the ONNX node-test models
# (../shared/onnx-node-tests/*/model.onnx) and runs one fuzzing process for SECONDS. The corpus
# grows in build-fuzz/fuzz/corpus/ and is reused by the next run; crashes, leaks and timeouts are
# written to build-fuzz/fuzz/crashes/ (crash-*, leak-*, timeout-*, oom-*). To replay one:
#   build-fuzz/tests/fuzz/fuzz_import build-fuzz/fuzz/crashes/crash-...
# to shrink it: add -minimize_crash=1 -runs=100000. Once fixed, copy it to tests/fuzz/regressions/.
# Environment: OD_FUZZ_BUILD (build folder), OD_NODE_TESTS (seed models folder).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
[ $# -gt 0 ] && shift
build=${OD_FUZZ_BUILD:-$root/build-fuzz}
node_tests=${OD_NODE_TESTS:-$root/../shared/onnx-node-tests}

CC=clang cmake -S "$root" -B "$build" -DOD_FUZZ=ON -DOD_CUDA=OFF -DOD_SANITIZE=OFF >/dev/null
cmake --build "$build" --target fuzz_import -j2

work=$build/fuzz
mkdir -p "$work/seeds" "$work/corpus" "$work/crashes"
# Seeds: one file per node test, named after its folder (they are all called model.onnx).
for m in "$node_tests"/*/model.onnx; do
  [ -e "$m" ] || continue
  name=$(basename "$(dirname "$m")")
  [ -e "$work/seeds/$name.onnx" ] || cp "$m" "$work/seeds/$name.onnx"
done
# Regression inputs are seeds too: the mutations near old bugs are worth trying again.
for r in "$root"/tests/fuzz/regressions/*; do
  [ -f "$r" ] && cp "$r" "$work/seeds/regression-$(basename "$r")"
done

# Leaks are reported (LeakSanitizer); UBSan stops at the first finding (built with
# -fno-sanitize-recover) and prints its stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# New inputs go to the first folder (corpus); seeds are read only.
exec "$build/tests/fuzz/fuzz_import" \
  -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix="$work/crashes/" -print_final_stats=1 \
  "$@" "$work/corpus" "$work/seeds"
