/* tools/cmd_export.c: `onnx-distill export` writes a model back to ONNX.
 *
 *   onnx-distill export MODEL.onnx -o OUT.onnx [--external-data auto|always|never] [--threshold BYTES]
 *
 * The source is an ONNX file today; training checkpoints will be a second kind of source
 * (load_source picks by what the path is), exported through the same od_model_export. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loaders/onnx_export.h"
#include "loaders/onnx_import.h"
#include "runtime/status.h"
#include "tools/commands.h"
#include "trainer/trainer.h"

static const char export_usage[] =
    "usage: onnx-distill export MODEL.onnx|CHECKPOINT_DIR -o OUT.onnx [--external-data auto|always|never] [--threshold BYTES]\n"
    "  --external-data auto    keep each tensor where it was; move tensors of BYTES or more to\n"
    "                          OUT.onnx.data only if the file would pass protobuf's 2 GiB limit (default)\n"
    "  --external-data always  move every tensor of BYTES or more to OUT.onnx.data\n"
    "  --external-data never   write every tensor inline (fails past 2 GiB)\n"
    "  --threshold BYTES       size from which a tensor goes to the data file (default 1024)\n";

struct export_args {
  const char *source;
  const char *output;
  struct od_export_opts opts;
};

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "onnx-distill export: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", export_usage);
  return 2;
}

/* Parses the arguments; returns -1 to go on, else the exit code (help: 0, usage error: 2). */
static int parse_args(int argc, char **argv, struct export_args *a) {
  *a = (struct export_args){.opts = {.external = OD_EXTERNAL_AUTO}};
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    bool has_value = i + 1 < argc;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      fputs(export_usage, stdout);
      return 0;
    } else if (!strcmp(arg, "-o") || !strcmp(arg, "--output")) {
      if (!has_value) return usage_error("%s needs a file name", arg);
      a->output = argv[++i];
    } else if (!strcmp(arg, "--external-data")) {
      if (!has_value) return usage_error("%s needs auto, always or never", arg);
      const char *v = argv[++i];
      if (!strcmp(v, "auto")) a->opts.external = OD_EXTERNAL_AUTO;
      else if (!strcmp(v, "always")) a->opts.external = OD_EXTERNAL_ALWAYS;
      else if (!strcmp(v, "never")) a->opts.external = OD_EXTERNAL_NEVER;
      else return usage_error("--external-data must be auto, always or never, not '%s'", v);
    } else if (!strcmp(arg, "--threshold")) {
      if (!has_value) return usage_error("%s needs a size in bytes", arg);
      const char *v = argv[++i];
      char *end;
      errno = 0;
      unsigned long long n = strtoull(v, &end, 10);
      if (!*v || *v == '-' || *end || errno) return usage_error("--threshold must be a byte count, not '%s'", v);
      /* od_export_opts reads 0 as "the default (1024)"; on the command line 0 means every
       * non-empty tensor, which is threshold 1 (an empty tensor has nothing to move). */
      a->opts.threshold = n ? (size_t)n : 1;
    } else if (arg[0] == '-' && arg[1]) {
      return usage_error("unknown option '%s'", arg);
    } else if (!a->source) {
      a->source = arg;
    } else {
      return usage_error("unexpected argument '%s' (one model at a time)", arg);
    }
  }
  if (!a->source) return usage_error("%s", "missing the model to export");
  if (!a->output) return usage_error("%s", "missing -o OUT.onnx");
  return -1;
}

/* The model to export. Only ONNX files for now; checkpoints will be recognised here. */
/* A training checkpoint folder (or its checkpoint.bin): the student it was made from, with the
 * checkpoint's parameter block (trained weights, running statistics) in place of the file's. */
static enum od_status load_checkpoint(const char *dir, struct od_model **out, struct od_err *err) {
  char *student = NULL;
  uint8_t *data = NULL;
  size_t bytes = 0;
  OD_TRY(od_checkpoint_read_student(dir, &student, &data, &bytes, err));
  struct od_model *m = NULL;
  enum od_status st = od_model_load(student, &m, err);
  if (st == OD_OK && bytes != m->graph->param_bytes) {
    st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: the checkpoint holds %zu bytes of parameters but %s has %zu: the "
                    "student file changed since training", dir, bytes, student, m->graph->param_bytes);
  }
  if (st == OD_OK && bytes) memcpy(m->graph->param_data, data, bytes);
  free(student);
  free(data);
  if (st != OD_OK) {
    od_model_destroy(m);
    return st;
  }
  *out = m;
  return OD_OK;
}

static enum od_status load_source(const char *path, struct od_model **out, struct od_err *err) {
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return load_checkpoint(path, out, err);
  size_t n = strlen(path);
  if (n >= 14 && !strcmp(path + n - 14, "checkpoint.bin")) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(n > 15 ? n - 15 : 1), n > 15 ? path : ".");
    return load_checkpoint(dir, out, err);
  }
  return od_model_load(path, out, err);
}

static void print_summary(const struct export_args *a, const struct od_model *m) {
  const struct od_graph *g = m->graph;
  int n_init = 0, n_const = 0;
  size_t bytes = 0;
  for (int i = 0; i < g->n_values; i++) {
    const struct od_value *v = &g->values[i];
    if (v->kind == OD_VALUE_INITIALIZER) n_init++;
    else if (v->kind == OD_VALUE_CONSTANT) n_const++;
    else continue;
    bytes += v->nbytes;
  }
  struct stat sb;
  long long out_size = stat(a->output, &sb) == 0 ? (long long)sb.st_size : -1;
  printf("exported %s -> %s: %d initializers, %d constants, %.2f MB of parameters, %lld bytes written\n",
         a->source, a->output, n_init, n_const, (double)bytes / 1e6, out_size);
}

int od_cmd_export(int argc, char **argv) {
  struct export_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc >= 0) return rc;
  struct od_err err = {0};
  struct od_model *m = NULL;
  if (load_source(a.source, &m, &err) != OD_OK) return od_cmd_fail(&err);
  if (od_model_export(m, a.output, &a.opts, &err) != OD_OK) {
    od_model_destroy(m);
    return od_cmd_fail(&err);
  }
  print_summary(&a, m);
  od_model_destroy(m);
  return 0;
}
