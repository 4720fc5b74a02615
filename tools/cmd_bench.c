/* tools/cmd_bench.c: `onnx-distill bench MODEL.onnx [--shape NAME=D,D,..] [--input NAME=FILE.npy]
 * [--iters N] [--warmup W] [--threads T] [--profile] [--json]`: inference latency of a model.
 *
 * The model is compiled once for the input shapes (fixed dims from the model, symbolic ones from
 * --shape), inputs are seeded uniform random numbers in [-1, 1) (floats) or zeros (integers) unless
 * --input gives a .npy file, then it runs W warm-up and N timed iterations, each od_program_run
 * timed alone with CLOCK_MONOTONIC. Reported: min, median (mean of the two middle values for even
 * N), p90 (nearest rank: the ceil(0.9 N)-th smallest), mean and max, in milliseconds.
 *
 * --profile runs N more iterations with the executor's per-node timing on (od_program_profile) and
 * prints where the time goes, per op type and the slowest nodes. The pool sets OpenBLAS's thread
 * count to --threads. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loaders/npy.h"
#include "loaders/onnx_import.h"
#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/exec.h"
#include "runtime/pool.h"
#include "runtime/tensor.h"
#include "tools/commands.h"

#define BENCH_USAGE                                                                                    \
  "usage: onnx-distill bench MODEL.onnx [options]\n"                                                  \
  "  --shape NAME=D,D,...  shape of an input with symbolic dims (NAME= may be left out with one input)\n" \
  "  --input NAME=FILE     take an input from a .npy file instead of random numbers\n"                \
  "  --iters N             timed runs (default 20)\n"                                                 \
  "  --warmup W            untimed runs first (default 3)\n"                                          \
  "  --threads T           CPU worker threads (default: one per core)\n"                              \
  "  --device SPEC         cpu (default), cuda, cuda:N\n"                                             \
  "  --precision P         fp32 (default), tf32 or bf16 (CUDA devices)\n"                            \
  "  --profile             then time every node (CPU): totals per op type and the slowest nodes\n"    \
  "  --json                also print two JSON lines: {\"times_ms\": [...]} (run order), then the summary\n"

#define TOP_NODES 12

struct bench_spec {
  const char *name; /* NULL: the model's only input */
  const char *text; /* the shape text or the file */
  bool is_file;
};

struct bench_opts {
  const char *model;
  struct bench_spec *specs;
  int n_specs;
  int iters, warmup, threads;
  const char *device;
  const char *precision;
  bool profile, json;
};

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "onnx-distill bench: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n" BENCH_USAGE);
  return 2;
}

/* Returns 0 on success, -1 after --help, else the exit code. */
static int parse_args(int argc, char **argv, struct bench_opts *o) {
  o->iters = 20;
  o->warmup = 3;
  o->device = "cpu";
  o->specs = calloc((size_t)argc + 1, sizeof *o->specs);
  if (!o->specs) return usage_error("%s", "out of memory");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(BENCH_USAGE, stdout);
      return -1;
    } else if (!strcmp(a, "--shape") || !strcmp(a, "--input")) {
      if (!has_value) return usage_error("%s needs a value", a);
      char *spec = argv[++i];
      struct bench_spec *s = &o->specs[o->n_specs++];
      s->is_file = !strcmp(a, "--input");
      char *eq = strchr(spec, '=');
      if (eq) {
        *eq = '\0';
        s->name = spec;
        s->text = eq + 1;
        if (!*s->name || !*s->text) return usage_error("'%s': expected NAME=VALUE", spec);
      } else {
        s->text = spec;
      }
    } else if (!strcmp(a, "--iters")) {
      if (!has_value || !od_arg_int(argv[++i], 1, 1000000, &o->iters)) return usage_error("%s", "--iters needs 1..1000000");
    } else if (!strcmp(a, "--warmup")) {
      if (!has_value || !od_arg_int(argv[++i], 0, 1000000, &o->warmup)) return usage_error("%s", "--warmup needs 0..1000000");
    } else if (!strcmp(a, "--threads")) {
      if (!has_value || !od_arg_int(argv[++i], 0, 1024, &o->threads))
        return usage_error("%s", "--threads needs a count (0..1024; 0 = one per core)");
    } else if (!strcmp(a, "--device")) {
      if (!has_value) return usage_error("%s needs cpu, cuda or cuda:N", a);
      o->device = argv[++i];
    } else if (!strcmp(a, "--precision")) {
      if (!has_value || (strcmp(argv[i + 1], "fp32") && strcmp(argv[i + 1], "tf32") && strcmp(argv[i + 1], "bf16")))
        return usage_error("%s needs fp32, tf32 or bf16", a);
      o->precision = argv[++i];
    } else if (!strcmp(a, "--profile")) {
      o->profile = true;
    } else if (!strcmp(a, "--json")) {
      o->json = true;
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown option '%s'", a);
    } else if (!o->model) {
      o->model = a;
    } else {
      return usage_error("one model at a time (extra argument '%s')", a);
    }
  }
  if (!o->model) return usage_error("%s", "no model given");
  return 0;
}

/* "1,3,320,320" (also 'x' between dims) into dims; returns the rank or -1. */
static int parse_dims(const char *s, int64_t *dims) {
  int rank = 0;
  while (*s) {
    if (rank == OD_MAX_DIMS) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0 || v > (1LL << 40)) return -1;
    dims[rank++] = v;
    if (*end == ',' || *end == 'x') {
      s = end + 1;
      if (!*s) return -1;
    } else if (*end) {
      return -1;
    } else {
      s = end;
    }
  }
  return rank;
}

/* ---- inputs ---------------------------------------------------------------------------------- */

static uint64_t next_random(uint64_t *state) { /* xorshift64* */
  *state ^= *state >> 12;
  *state ^= *state << 25;
  *state ^= *state >> 27;
  return *state * 0x2545F4914F6CDD1DULL;
}

/* Fills t (dtype, shape set) with random floats in [-1, 1) or integer zeros; data malloc'd. */
static enum od_status make_random(struct od_host_tensor *t, uint64_t seed, struct od_err *err) {
  int64_t n = 1;
  for (int d = 0; d < t->rank; d++) n *= t->dims[d];
  size_t es = od_dtype_size(t->dtype);
  if (!es) return od_err_set(err, OD_ERR_UNSUPPORTED, "cannot make random %s inputs", od_dtype_name(t->dtype));
  t->nelem = (size_t)n;
  t->nbytes = (size_t)n * es;
  t->data = t->nbytes ? calloc(t->nbytes, 1) : NULL;
  if (t->nbytes && !t->data) return od_err_set(err, OD_ERR_OOM, "out of memory for a %zu-byte input", t->nbytes);
  uint64_t st = seed * 0x9E3779B97F4A7C15ULL + 1;
  if (t->dtype == OD_DTYPE_FLOAT)
    for (int64_t i = 0; i < n; i++) ((float *)t->data)[i] = (float)((next_random(&st) >> 40) * 0x1p-23 - 1.0);
  else if (t->dtype == OD_DTYPE_DOUBLE)
    for (int64_t i = 0; i < n; i++) ((double *)t->data)[i] = (next_random(&st) >> 11) * 0x1p-52 - 1.0;
  return OD_OK;
}

/* Builds every graph input from the specs; prints what it used. */
static enum od_status gather_inputs(const struct od_graph *g, const struct bench_opts *o, struct od_host_tensor *hosts,
                                    struct od_err *err) {
  for (int k = 0; k < o->n_specs; k++) {
    const struct bench_spec *s = &o->specs[k];
    bool found = false;
    for (int i = 0; i < g->n_inputs; i++)
      found |= s->name ? !strcmp(g->values[g->inputs[i]].name, s->name) : g->n_inputs == 1;
    if (!found)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: %s", s->name ? s->name : s->text,
                        s->name ? "the model has no input of that name" : "give NAME=: the model has several inputs");
  }
  for (int i = 0; i < g->n_inputs; i++) {
    const struct od_value *v = &g->values[g->inputs[i]];
    const struct bench_spec *spec = NULL;
    for (int k = 0; k < o->n_specs; k++)
      if (o->specs[k].name ? !strcmp(o->specs[k].name, v->name) : g->n_inputs == 1) spec = &o->specs[k];
    struct od_host_tensor *t = &hosts[i];
    char shape[160];
    if (spec && spec->is_file) {
      OD_TRY(od_npy_read(spec->text, t, err));
      printf("input %s: %s %s from %s\n", v->name, od_dtype_name(t->dtype), od_shape_str(t->rank, t->dims, shape, sizeof shape),
             spec->text);
      continue;
    }
    if (v->type_kind != OD_TYPE_TENSOR || v->rank < 0 || !v->dtype)
      return od_err_set(err, OD_ERR_UNSUPPORTED, "input '%s' has no declared tensor type: give --input %s=FILE.npy",
                        v->name, v->name);
    t->dtype = v->dtype;
    t->rank = v->rank;
    if (spec) {
      int64_t dims[OD_MAX_DIMS];
      int r = parse_dims(spec->text, dims);
      if (r != v->rank)
        return od_err_set(err, OD_ERR_INVALID_ARG, "--shape %s=%s: input '%s' has rank %d", v->name, spec->text,
                          v->name, v->rank);
      for (int d = 0; d < r; d++) {
        if (v->dims[d] >= 0 && v->dims[d] != dims[d])
          return od_err_set(err, OD_ERR_INVALID_ARG, "--shape %s=%s: dim %d of '%s' is fixed at %" PRId64, v->name,
                            spec->text, d, v->name, v->dims[d]);
        t->dims[d] = dims[d];
      }
    } else {
      for (int d = 0; d < v->rank; d++) {
        if (v->dims[d] < 0)
          return od_err_set(err, OD_ERR_INVALID_ARG, "input '%s' has a symbolic dim %d (%s): give --shape %s=D,D,...",
                            v->name, d, v->dim_params[d] ? v->dim_params[d] : "?", v->name);
        t->dims[d] = v->dims[d];
      }
    }
    OD_TRY(make_random(t, (uint64_t)i + 1, err));
    printf("input %s: %s %s random\n", v->name, od_dtype_name(t->dtype), od_shape_str(t->rank, t->dims, shape, sizeof shape));
  }
  return OD_OK;
}

/* ---- statistics ------------------------------------------------------------------------------ */

struct stats {
  double min, median, p90, mean, max;
};

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static struct stats summarize(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  struct stats s = {.min = t[0], .max = t[n - 1]};
  s.median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  int r = (int)ceil(0.9 * n);
  s.p90 = t[(r < 1 ? 1 : r) - 1];
  double sum = 0;
  for (int i = 0; i < n; i++) sum += t[i];
  s.mean = sum / n;
  return s;
}

/* ---- per-node profile ------------------------------------------------------------------------ */

struct op_total {
  char op_type[48]; /* the op type; Conv split by kind: "Conv 1x1", "Conv 3x3", "Conv depthwise 3x3" */
  int nodes;
  double ms;
};

static void op_key(const struct od_program *p, const struct od_node *n, char *key, size_t size) {
  snprintf(key, size, "%s", n->op_type);
  struct od_tensor x, w;
  if (strcmp(n->op_type, "Conv") || n->n_inputs < 2 || !od_program_shape(p, n->inputs[0], &x) ||
      !od_program_shape(p, n->inputs[1], &w) || w.rank != 4 || x.rank != 4)
    return;
  bool dw = w.dims[1] == 1 && x.dims[1] > 1;
  snprintf(key, size, "Conv %s%" PRId64 "x%" PRId64, dw ? "depthwise " : "", w.dims[2], w.dims[3]);
}

static int cmp_total(const void *a, const void *b) {
  double x = ((const struct op_total *)a)->ms, y = ((const struct op_total *)b)->ms;
  return x > y ? -1 : x < y;
}

static enum od_status profile(struct od_program *p, const struct od_graph *g, const struct od_tensor *inputs,
                              int iters, double run_median, struct od_err *err) {
  double *node_ms = calloc((size_t)g->n_nodes + 1, sizeof *node_ms);
  struct op_total *tot = calloc((size_t)g->n_nodes + 1, sizeof *tot);
  int *order = calloc((size_t)g->n_nodes + 1, sizeof *order);
  if (!node_ms || !tot || !order) {
    free(node_ms), free(tot), free(order);
    return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  enum od_status s = OD_OK;
  double sum = 0;
  od_program_profile(p, node_ms);
  for (int it = 0; it < iters && s == OD_OK; it++) s = od_program_run(p, inputs, err);
  od_program_profile(p, NULL);
  int n_tot = 0, n_run = 0;
  for (int i = 0; s == OD_OK && i < g->n_nodes; i++) {
    if (!od_program_node_runs(p, i)) continue;
    node_ms[i] /= iters;
    sum += node_ms[i];
    order[n_run++] = i;
    char key[sizeof tot[0].op_type];
    op_key(p, &g->nodes[i], key, sizeof key);
    int k = 0;
    while (k < n_tot && strcmp(tot[k].op_type, key)) k++;
    if (k == n_tot) memcpy(tot[n_tot++].op_type, key, sizeof key);
    tot[k].nodes++;
    tot[k].ms += node_ms[i];
  }
  if (s == OD_OK) {
    qsort(tot, (size_t)n_tot, sizeof *tot, cmp_total);
    printf("profile: %d runs node by node, %.3f ms per run in kernels (timed runs: median %.3f ms)\n", iters, sum,
           run_median);
    printf("  %-24s %6s %11s %7s\n", "op", "nodes", "ms/run", "%");
    for (int k = 0; k < n_tot; k++)
      printf("  %-24s %6d %11.3f %6.1f%%\n", tot[k].op_type, tot[k].nodes, tot[k].ms, sum > 0 ? 100 * tot[k].ms / sum : 0);
    /* slowest nodes: selection of the top few */
    printf("  slowest nodes:\n");
    for (int r = 0; r < TOP_NODES && r < n_run; r++) {
      int best = r;
      for (int j = r + 1; j < n_run; j++)
        if (node_ms[order[j]] > node_ms[order[best]]) best = j;
      int tmp = order[r];
      order[r] = order[best];
      order[best] = tmp;
      const struct od_node *n = &g->nodes[order[r]];
      char in_shape[96] = "", w_shape[96] = "", out_shape[96] = "";
      struct od_tensor t;
      if (n->n_inputs > 0 && od_program_shape(p, n->inputs[0], &t)) od_shape_str(t.rank, t.dims, in_shape, sizeof in_shape);
      if (n->n_inputs > 1 && n->inputs[1] >= 0 && (g->values[n->inputs[1]].kind == OD_VALUE_INITIALIZER ||
                                                   g->values[n->inputs[1]].kind == OD_VALUE_CONSTANT) &&
          od_program_shape(p, n->inputs[1], &t)) { /* weights */
        w_shape[0] = 'w';
        od_shape_str(t.rank, t.dims, w_shape + 1, sizeof w_shape - 1);
      }
      if (n->n_outputs > 0 && od_program_shape(p, n->outputs[0], &t)) od_shape_str(t.rank, t.dims, out_shape, sizeof out_shape);
      printf("  %9.3f ms  %-12s %s %s -> %s  %s\n", node_ms[order[r]], n->op_type, in_shape, w_shape, out_shape,
             n->name && *n->name ? n->name : "(unnamed)");
    }
  }
  free(node_ms);
  free(tot);
  free(order);
  return s;
}

/* ---- the command ----------------------------------------------------------------------------- */

int od_cmd_bench(int argc, char **argv) {
  struct bench_opts o;
  memset(&o, 0, sizeof o);
  int rc = parse_args(argc, argv, &o);
  if (rc) {
    free(o.specs);
    return rc < 0 ? 0 : rc;
  }
  struct od_err err = {0};
  enum od_status s = OD_OK;
  struct od_model *m = NULL;
  struct od_device *dev = NULL;
  struct od_pool *pool = NULL;
  struct od_program *prog = NULL;
  struct od_host_tensor *hosts = NULL;
  struct od_tensor *ins = NULL;
  double *times = NULL;
  const struct od_graph *g = NULL;

  if ((s = od_model_load(o.model, &m, &err)) != OD_OK) goto done;
  g = m->graph;
  hosts = calloc((size_t)g->n_inputs + 1, sizeof *hosts);
  ins = calloc((size_t)g->n_inputs + 1, sizeof *ins);
  times = calloc((size_t)o.iters, sizeof *times);
  if (!hosts || !ins || !times) {
    s = od_err_set(&err, OD_ERR_OOM, "out of memory");
    goto done;
  }
  if ((s = gather_inputs(g, &o, hosts, &err)) != OD_OK) goto done;
  if ((s = od_device_open(o.device, &dev, &err)) != OD_OK) goto done;
  if (o.precision && strcmp(o.precision, "fp32")) {
    if (dev->kind == OD_DEVICE_CPU) {
      s = od_err_set(&err, OD_ERR_INVALID_ARG, "--precision %s needs a CUDA device (--device cuda)", o.precision);
      goto done;
    }
    dev->precision = !strcmp(o.precision, "tf32") ? OD_PRECISION_TF32 : OD_PRECISION_BF16;
  }
  if ((s = od_pool_create(o.threads, &pool, &err)) != OD_OK) goto done;
  for (int i = 0; i < g->n_inputs; i++) {
    ins[i].dtype = hosts[i].dtype;
    ins[i].rank = hosts[i].rank;
    memcpy(ins[i].dims, hosts[i].dims, sizeof ins[i].dims);
    ins[i].data = hosts[i].data;
  }

  double t0 = od_now_ms();
  struct od_compile_opts copts = {.dev = dev, .pool = pool, .training = false};
  if ((s = od_program_compile(g, ins, &copts, &prog, &err)) != OD_OK) goto done;
  double compile_ms = od_now_ms() - t0;
  printf("model %s: %d nodes, %s, %d thread%s\n", o.model, g->n_nodes, dev->name, od_pool_threads(pool),
         od_pool_threads(pool) == 1 ? "" : "s");
  printf("compile: %.3f ms; arena %.2f MiB; %d nodes folded\n", compile_ms,
         od_program_arena_bytes(prog) / (1024.0 * 1024.0), od_program_folded_nodes(prog));
  fflush(stdout);

  /* on a device the inputs are uploaded once: the timed runs measure the network, as a framework
   * benchmark with inputs already on the GPU does */
  if (dev->kind != OD_DEVICE_CPU && (s = od_program_run(prog, ins, &err)) != OD_OK) goto done;
  for (int it = 0; it < o.warmup + o.iters; it++) {
    double a = od_now_ms();
    if ((s = dev->kind != OD_DEVICE_CPU ? od_program_run_bound(prog, &err) : od_program_run(prog, ins, &err)) != OD_OK)
      goto done;
    if (dev->ops->sync && (s = dev->ops->sync(dev, &err)) != OD_OK) goto done;
    if (it >= o.warmup) times[it - o.warmup] = od_now_ms() - a;
  }
  if (o.json) { /* the raw times, in run order, before summarize sorts them */
    printf("{\"times_ms\": [");
    for (int i = 0; i < o.iters; i++) printf("%s%.4f", i ? ", " : "", times[i]);
    printf("]}\n");
  }
  struct stats st = summarize(times, o.iters);
  printf("latency over %d runs after %d warm-up (ms): median %.3f  p90 %.3f  min %.3f  mean %.3f  max %.3f\n", o.iters,
         o.warmup, st.median, st.p90, st.min, st.mean, st.max);
  if (o.json)
    printf("{\"model\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"iters\": %d, \"warmup\": %d, \"compile_ms\": %.4f, "
           "\"arena_bytes\": %zu, \"median_ms\": %.4f, \"p90_ms\": %.4f, \"min_ms\": %.4f, \"mean_ms\": %.4f, "
           "\"max_ms\": %.4f}\n",
           o.model, dev->name, od_pool_threads(pool), o.iters, o.warmup, compile_ms, od_program_arena_bytes(prog),
           st.median, st.p90, st.min, st.mean, st.max);
  fflush(stdout);
  if (o.profile) s = profile(prog, g, ins, o.iters, st.median, &err);
  fflush(stdout);

done:
  free(times);
  free(ins);
  od_program_destroy(prog);
  od_pool_destroy(pool);
  od_device_close(dev);
  for (int i = 0; hosts && g && i < g->n_inputs; i++) od_host_tensor_free(&hosts[i]);
  free(hosts);
  free(o.specs);
  od_model_destroy(m);
  return s == OD_OK ? 0 : od_cmd_fail(&err);
}
