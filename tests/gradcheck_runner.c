/* tests/gradcheck_runner.c: gradient checks of op backward passes against central finite
 * differences, on single-op models written by tests/gen_gradcheck.py.
 *
 *   gradcheck_runner DIR [PREFIX...]
 *
 * For each DIR/<case>.onnx: every floating graph input gets seeded random values (the model's
 * metadata "gradcheck" may ask for positive inputs, e.g. for Log or Sqrt, and "training" compiles
 * with od_compile_opts.training, e.g. for BatchNormalization's batch statistics), the scalar
 * L = sum_o sum(Y_o * R_o) is formed with fixed random R_o, the program's backward gives dL/dX for
 * every input, and each checked element is compared with (L(x+h) - L(x-h)) / 2h.
 *
 * Precision: the generator writes double models, so with h = 1e-6 the central difference has
 * truncation error O(h^2 |f'''|) ~ 1e-12 and rounding error ~ 1e-16 * |L| / h ~ 1e-10 * |L|;
 * |analytic - numeric| <= atol + rtol * |numeric| with rtol = 1e-5 and atol = 1e-7 * (1 + |L|)
 * leaves two orders of margin and still fails any real mistake (a wrong term is O(1)).
 * A case's metadata may loosen this with a stated reason (non-smooth ops near ties). A passing case
 * prints the largest |analytic - numeric| seen and the largest |analytic - numeric| / (1 + |numeric|). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_import.h"
#include "runtime/exec.h"
#include "tests/runner_util.h"

#define MAX_IO 16
#define MAX_CHECKED 64 /* elements checked per input (all when fewer) */


struct opts {
  bool positive;   /* inputs in [0.5, 1.5] (Log, Sqrt, Pow bases) */
  double rtol, atol;
  double spread;   /* inputs drawn so that no two are closer than this (max/min ties) */
  bool training;   /* compile with od_compile_opts.training (BatchNormalization batch statistics) */
};

static void parse_meta(const struct od_model *m, struct opts *o) {
  *o = (struct opts){.rtol = 1e-5, .atol = 1e-7, .spread = 0};
  for (size_t i = 0; i < m->proto->n_metadata_props; i++) {
    const Onnx__StringStringEntryProto *e = m->proto->metadata_props[i];
    if (!e->key || strcmp(e->key, "gradcheck") || !e->value) continue;
    const char *s = e->value;
    o->positive = strstr(s, "positive") != NULL;
    o->training = strstr(s, "training") != NULL;
    const char *r = strstr(s, "rtol=");
    if (r) o->rtol = atof(r + 5);
    const char *a = strstr(s, "atol=");
    if (a) o->atol = atof(a + 5);
    const char *sp = strstr(s, "spread=");
    if (sp) o->spread = atof(sp + 7);
  }
}

/* L = sum_o sum(Y_o * R_o) after a forward run. */
static enum od_status loss(struct od_program *p, const struct od_graph *g, struct od_tensor *in, double **R,
                           double *out, struct od_err *err) {
  OD_TRY(od_program_run(p, in, err));
  double L = 0;
  for (int o = 0; o < g->n_outputs; o++) {
    const struct od_tensor *y = od_program_output(p, o);
    if (!od_dtype_is_float(y->dtype)) continue;
    int64_t n = od_tensor_numel(y);
    for (int64_t k = 0; k < n; k++) L += od_tensor_get_f64(y, k) * R[o][k];
  }
  *out = L;
  return OD_OK;
}

static bool check_case(const char *path, char *msg, size_t size) {
  struct od_err err = {0};
  struct od_model *m = NULL;
  struct od_device *dev = NULL;
  struct od_program *p = NULL;
  struct od_tensor in[MAX_IO] = {0};
  double *R[MAX_IO] = {0};
  uint8_t *want = NULL;
  bool ok = false;
  if (od_model_load(path, &m, &err) != OD_OK) {
    snprintf(msg, size, "%s", err.msg);
    return false;
  }
  const struct od_graph *g = m->graph;
  struct opts o;
  parse_meta(m, &o);
  struct rng rng = {0x9e3779b97f4a7c15ull ^ (uint64_t)strlen(path)};
  if (g->n_inputs > MAX_IO || g->n_outputs > MAX_IO) {
    snprintf(msg, size, "too many inputs/outputs");
    goto done;
  }
  want = calloc((size_t)g->n_values, 1);
  for (int i = 0; i < g->n_inputs; i++) {
    const struct od_value *v = &g->values[g->inputs[i]];
    in[i].dtype = v->dtype;
    in[i].rank = v->rank;
    memcpy(in[i].dims, v->dims, sizeof in[i].dims);
    int64_t n = od_tensor_numel(&in[i]);
    in[i].data = calloc((size_t)(n ? n : 1), od_dtype_size(v->dtype));
    for (int64_t k = 0; k < n; k++) {
      double x = o.positive ? 0.5 + rng_uniform(&rng) : rng_normal(&rng);
      if (o.spread > 0) /* distinct values: a shuffled ramp plus small noise */
        x = o.spread * (double)((k * 7919) % (n ? n : 1)) + 0.1 * o.spread * rng_uniform(&rng) - o.spread * (double)n / 2;
      od_tensor_set_f64(&in[i], k, x);
    }
    if (od_dtype_is_float(v->dtype)) want[g->inputs[i]] = 1;
  }
  od_device_open("cpu", &dev, &err);
  struct od_compile_opts copts = {.dev = dev, .grad_wanted = want, .training = o.training};
  if (od_program_compile(g, in, &copts, &p, &err) != OD_OK || od_program_run(p, in, &err) != OD_OK) {
    snprintf(msg, size, "%s", err.msg);
    goto done;
  }
  int seeds[MAX_IO], n_seeds = 0;
  const void *dys[MAX_IO];
  for (int oi = 0; oi < g->n_outputs; oi++) {
    const struct od_tensor *y = od_program_output(p, oi);
    int64_t n = od_tensor_numel(y);
    R[oi] = calloc((size_t)(n ? n : 1), sizeof(double));
    for (int64_t k = 0; k < n; k++) R[oi][k] = rng_normal(&rng);
    if (!od_program_requires_grad(p, g->outputs[oi])) continue;
    /* dy in the output's dtype */
    struct od_tensor dy = *y;
    dy.data = calloc((size_t)(n ? n : 1), od_dtype_size(y->dtype));
    for (int64_t k = 0; k < n; k++) od_tensor_set_f64(&dy, k, R[oi][k]);
    seeds[n_seeds] = g->outputs[oi];
    dys[n_seeds++] = dy.data;
  }
  enum od_status st = n_seeds ? od_program_backward(p, n_seeds, seeds, dys, &err) : OD_OK;
  for (int k = 0; k < n_seeds; k++) free((void *)dys[k]);
  if (!n_seeds) {
    snprintf(msg, size, "no output depends on the inputs");
    goto done;
  }
  if (st != OD_OK) {
    snprintf(msg, size, "%s", err.msg);
    goto done;
  }
  double L0;
  if (loss(p, g, in, R, &L0, &err) != OD_OK) {
    snprintf(msg, size, "%s", err.msg);
    goto done;
  }
  double worst = 0, max_abs = 0, max_rel = 0; /* max_*: |analytic - numeric|, and over 1 + |numeric| */
  char worst_msg[512] = "";
  for (int i = 0; i < g->n_inputs; i++) {
    if (!want[g->inputs[i]]) continue;
    const struct od_tensor *gx = od_program_grad(p, g->inputs[i]);
    int64_t n = od_tensor_numel(&in[i]);
    if (!gx) {
      snprintf(msg, size, "input %d got no gradient", i);
      goto done;
    }
    double *grad = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t k = 0; k < n; k++) grad[k] = od_tensor_get_f64(gx, k); /* copy: reruns reuse buffers */
    int64_t step = n > MAX_CHECKED ? n / MAX_CHECKED : 1;
    for (int64_t k = 0; k < n; k += step) {
      double x = od_tensor_get_f64(&in[i], k), h = 1e-6 * (1 + fabs(x)), lp, lm;
      od_tensor_set_f64(&in[i], k, x + h);
      st = loss(p, g, in, R, &lp, &err);
      od_tensor_set_f64(&in[i], k, x - h);
      if (st == OD_OK) st = loss(p, g, in, R, &lm, &err);
      od_tensor_set_f64(&in[i], k, x);
      if (st != OD_OK) {
        free(grad);
        snprintf(msg, size, "%s", err.msg);
        goto done;
      }
      double num = (lp - lm) / (2 * h), ana = grad[k];
      if (fabs(ana - num) > max_abs) max_abs = fabs(ana - num);
      if (fabs(ana - num) / (1 + fabs(num)) > max_rel) max_rel = fabs(ana - num) / (1 + fabs(num));
      double excess = fabs(ana - num) - (o.atol * (1 + fabs(L0)) + o.rtol * fabs(num));
      if (excess > worst || isnan(ana)) {
        worst = isnan(ana) ? INFINITY : excess;
        snprintf(worst_msg, sizeof worst_msg, "input %d element %lld: analytic %.10g, numeric %.10g", i,
                 (long long)k, ana, num);
      }
    }
    free(grad);
  }
  if (worst > 0) {
    snprintf(msg, size, "%s", worst_msg);
    goto done;
  }
  ok = true;
  snprintf(msg, size, "max |analytic - numeric| %.2g (relative %.2g)", max_abs, max_rel);
done:
  od_program_destroy(p);
  od_device_close(dev);
  for (int i = 0; i < MAX_IO; i++) {
    free(in[i].data);
    free(R[i]);
  }
  free(want);
  od_model_destroy(m);
  return ok;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: gradcheck_runner DIR [PREFIX...]\n");
    return 2;
  }
  DIR *d = opendir(argv[1]);
  if (!d) {
    fprintf(stderr, "gradcheck_runner: cannot open %s\n", argv[1]);
    return 2;
  }
  char **names = NULL;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".onnx")) continue;
    bool match = argc == 2;
    for (int k = 2; k < argc && !match; k++) match = !strncmp(e->d_name, argv[k], strlen(argv[k]));
    if (!match) continue;
    names = realloc(names, sizeof(char *) * (size_t)(n + 1));
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  int passed = 0, failed = 0;
  for (int i = 0; i < n; i++) {
    char path[4096], msg[1200];
    snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
    bool ok = check_case(path, msg, sizeof msg);
    printf("%-6s %s%s%s\n", ok ? "pass" : "FAIL", names[i], ok ? "  " : ": ", msg);
    passed += ok;
    failed += !ok;
    free(names[i]);
  }
  free(names);
  printf("%d passed, %d failed\n", passed, failed);
  return failed || !passed ? 1 : 0;
}
