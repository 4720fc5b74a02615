/* tests/fuzz/fuzz_import.c: libFuzzer target for the ONNX importer (od_model_load_buffer).
 *
 * Any byte string must either import or fail cleanly: a status other than OD_OK, a non-empty
 * message, the out-parameter untouched, nothing leaked (LeakSanitizer), no memory error or
 * undefined behaviour (ASan, UBSan). OD_ERR_INTERNAL means a broken invariant, so it counts as a
 * crash too. A model that imports is also printed by `inspect`'s code (text and JSON, to
 * /dev/null), which walks every value, node and initializer.
 *
 * Build and run: tools/fuzz-import.sh [seconds]. libFuzzer: https://llvm.org/docs/LibFuzzer.html */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "loaders/model_info.h"
#include "loaders/onnx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct od_model *m = NULL;
  struct od_err err = {0};
  /* no folder: external data must be refused, never read from the machine running the fuzzer */
  enum od_status st = od_model_load_buffer(data, size, "<fuzz>", NULL, &m, &err);
  if (st != OD_OK) {
    if (m != NULL || err.status != st || err.msg[0] == '\0' || st == OD_ERR_INTERNAL) {
      fprintf(stderr, "fuzz_import: unclean failure: status %d (%s), out %p, message '%s'\n", (int)st,
              od_status_name(st), (void *)m, err.msg);
      __builtin_trap();
    }
    return 0;
  }
  if (m == NULL) {
    fprintf(stderr, "fuzz_import: OD_OK without a model\n");
    __builtin_trap();
  }
  FILE *devnull = fopen("/dev/null", "w");
  if (devnull) {
    od_model_info_print(m, devnull, false);
    od_model_info_print(m, devnull, true);
    fclose(devnull);
  }
  od_model_destroy(m);
  return 0;
}
