/* tools/cmd_inspect.c: `onnx-distill inspect MODEL.onnx [--json]`. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "loaders/model_info.h"
#include "loaders/onnx_import.h"
#include "tools/commands.h"

int od_cmd_inspect(int argc, char **argv) {
  const char *path = NULL;
  bool json = false;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      json = true;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "onnx-distill inspect: unknown option '%s'\nusage: onnx-distill inspect MODEL.onnx [--json]\n",
              argv[i]);
      return 2;
    } else if (!path) {
      path = argv[i];
    } else {
      fprintf(stderr, "onnx-distill inspect: one model at a time (got '%s' and '%s')\n", path, argv[i]);
      return 2;
    }
  }
  if (!path) {
    fprintf(stderr, "usage: onnx-distill inspect MODEL.onnx [--json]\n");
    return 2;
  }
  struct od_err err = {0};
  struct od_model *m = NULL;
  if (od_model_load(path, &m, &err) != OD_OK) return od_cmd_fail(&err);
  od_model_info_print(m, stdout, json);
  od_model_destroy(m);
  return 0;
}
