/* tools/blas_tune.c: makes OpenBLAS use its best kernels on CPUs its dispatcher does not know.
 *
 * Debian 12's OpenBLAS 0.3.21 picks its kernel set when the library loads, from the CPU model.
 * It does not recognise AMD Zen 4 (and other recent AVX-512 parts) and falls back to the Haswell
 * (AVX2) kernels, which made our GEMM-bound convolutions 1.4-1.6x slower than with its SkylakeX
 * (AVX-512) kernels on the benchmark machine (bench/cpu_infer/results.md). The choice can only be
 * changed through OPENBLAS_CORETYPE before the library loads, so when the CPU has every AVX-512
 * subset SkylakeX needs and OpenBLAS chose an AVX2 set, the program re-executes itself once with
 * that variable set. A user's own OPENBLAS_CORETYPE is always respected. Only tools/ may exec. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/commands.h"

void od_tool_tune_blas(char **argv) {
  if (getenv("OPENBLAS_CORETYPE") || getenv("OD_BLAS_TUNED")) return;
  const char *core = openblas_get_corename();
  bool avx2_set = core && (!strcmp(core, "Haswell") || !strcmp(core, "Zen"));
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512vl");
  if (!avx2_set || !avx512) return;
  setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  setenv("OD_BLAS_TUNED", "1", 1);
  execv("/proc/self/exe", argv); /* on failure: carry on with the kernels we have */
  unsetenv("OPENBLAS_CORETYPE");
}
