/* tools/onnx-distill.c: the command-line program. Dispatches to the subcommands in cmd_*.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "runtime/status.h"
#include "tools/commands.h"

struct subcommand {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *usage;
};

static const struct subcommand subcommands[] = {
    {"train", od_cmd_train, "train pairs.json [--set key=value]... [--resume DIR] [--dry-run]   distil the student"},
    {"inspect", od_cmd_inspect, "inspect MODEL.onnx [--json]      IR, opsets, inputs/outputs, ops, parameters"},
    {"export", od_cmd_export,
     "export MODEL.onnx -o OUT.onnx [--external-data auto|always|never] [--threshold BYTES]"},
    {"run", od_cmd_run,
     "run MODEL.onnx --input NAME=FILE.npy|IMAGE.jpg ... [--output DIR] [--device cpu] [--threads N]\n"
     "      [--size S --mean R,G,B --std R,G,B]    run once; print outputs, write DIR/<output>.npy"},
    {"ops", od_cmd_ops, "ops [--markdown]                  the supported operators, versions, dtypes, devices"},
    {"bench", od_cmd_bench,
     "bench MODEL.onnx [--shape NAME=1,3,320,320] [--input NAME=FILE.npy] [--iters N] [--warmup W] [--threads T]\n"
     "      [--profile] [--json]      inference latency: median/p90 over N runs, per-op profile"},
    {"make-data", od_cmd_make_data,
     "make-data --out DIR --images N [--seed S] [--size 320] [--val-fraction 0.2] [--classes 4]\n"
     "      synthetic VOC-format detection dataset (shapes on textures): JPEG, XML, list files"},
    {"eval", od_cmd_eval,
     "eval MODEL.onnx pairs.json [--set key=value]... [--outputs A,B,C] [--size S] [--batch N] [--json]\n"
     "      VOC mAP@0.5 (11-point and all-point) of a YOLOv3 detector on the manifest's val list, images/s"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: onnx-distill COMMAND [ARGS]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
    fprintf(f, "  %s\n", subcommands[i].usage);
  fprintf(f, "\nexit codes: 0 ok, 1 runtime failure, 2 bad usage or bad input\n");
}

bool od_arg_int(const char *s, long lo, long hi, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end || errno || v < lo || v > hi) return false;
  *out = (int)v;
  return true;
}

double od_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int od_cmd_fail(const struct od_err *err) {
  fprintf(stderr, "onnx-distill: %s: %s\n", od_status_name(err->status), err->msg);
  return od_status_exit_code(err->status);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  od_tool_tune_blas(argv);
  for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
    if (!strcmp(argv[1], subcommands[i].name)) return subcommands[i].run(argc - 2, argv + 2);
  fprintf(stderr, "onnx-distill: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
