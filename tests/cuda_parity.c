/* tests/cuda_parity.c: every CUDA kernel against the CPU reference, forward and backward.
 *
 *   cuda_parity [--device SPEC] [--min-device N] DIR [PREFIX...]
 *
 * DIR holds either single-op models (DIR/<case>.onnx, e.g. tests/gen_gradcheck.py --float32) or
 * ONNX node tests (DIR/<test>/model.onnx with test_data_set_0/input_K.pb). Cases are filtered by
 * name PREFIX. For each case the model is compiled twice, on the CPU and on SPEC (default cuda:0:
 * the GPU in the real build, the host emulation in the emulated one), with the same inputs (the node
 * test's, or seeded random ones; metadata "gradcheck" as in gradcheck_runner: positive, spread=,
 * training). Both run forward; every output must agree (floats: |a - b| <= 1e-4 (1 + |b|) relative
 * to the CPU in float32, 1e-9 in double; integers and bools exactly). When the CPU program can
 * differentiate the outputs, both run backward from the same random output gradients and every
 * input gradient must agree the same way; parameters updated in place (training-mode
 * BatchNormalization running statistics) must agree too.
 *
 * Each line says how many of the case's running nodes ran on the device (the rest went through the
 * host bridge, which is correct but slow); --min-device N fails a case where fewer than N did, so a
 * kernel that silently declines shows. Exit: 0 all passed, 1 a mismatch or error, 77 no device
 * (the real build on a machine without a GPU: CTest reports it skipped). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loaders/onnx_import.h"
#include "loaders/onnx_tensor.h"
#include "loaders/pb_alloc.h"
#include "runtime/exec.h"
#include "tests/runner_util.h"

#define MAX_IO 32


struct meta {
  bool positive, training;
  double spread;
};

static void parse_meta(const struct od_model *m, struct meta *o) {
  *o = (struct meta){0};
  for (size_t i = 0; i < m->proto->n_metadata_props; i++) {
    const Onnx__StringStringEntryProto *e = m->proto->metadata_props[i];
    if (!e->key || strcmp(e->key, "gradcheck") || !e->value) continue;
    o->positive = strstr(e->value, "positive") != NULL;
    o->training = strstr(e->value, "training") != NULL;
    const char *sp = strstr(e->value, "spread=");
    if (sp) o->spread = atof(sp + 7);
  }
}


/* a and b (CPU) agree element by element; the first difference goes into msg. */
static bool agree(const char *what, const struct od_tensor *a, const struct od_tensor *b, char *msg, size_t size) {
  if (a->dtype != b->dtype || !od_tensor_same_shape(a, b)) {
    snprintf(msg, size, "%s: dtype/shape differ from the CPU", what);
    return false;
  }
  int64_t n = od_tensor_numel(a);
  bool is_float = od_dtype_is_float(a->dtype);
  double tol = a->dtype == OD_DTYPE_DOUBLE ? 1e-9 : 1e-4;
  for (int64_t k = 0; k < n; k++) {
    double x = od_tensor_get_f64(a, k), y = od_tensor_get_f64(b, k);
    if (is_float && isnan(x) && isnan(y)) continue;
    bool bad = is_float ? !(fabs(x - y) <= tol * (1 + fabs(y))) && !(isinf(x) && x == y) : x != y;
    if (bad) {
      snprintf(msg, size, "%s element %lld: device %.9g, CPU %.9g", what, (long long)k, x, y);
      return false;
    }
  }
  return true;
}

struct run_case {
  struct od_tensor in[MAX_IO];
  struct od_host_tensor host_in[MAX_IO];
  uint8_t *want;
  struct meta meta;
};

/* Inputs of a node test (test_data_set_0) or random ones. */
static bool make_inputs(const char *node_dir, const struct od_model *m, struct run_case *rc, char *msg, size_t size) {
  const struct od_graph *g = m->graph;
  struct rng rng = {0x9e3779b97f4a7c15ull ^ (uint64_t)g->n_nodes};
  struct od_err err = {0};
  for (int i = 0; i < g->n_inputs; i++) {
    const struct od_value *v = &g->values[g->inputs[i]];
    struct od_tensor *t = &rc->in[i];
    if (node_dir) {
      char path[4200];
      snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", node_dir, i);
      if (load_pb(path, &rc->host_in[i], &err) != OD_OK) {
        snprintf(msg, size, "%.900s", err.msg);
        return false;
      }
      t->dtype = rc->host_in[i].dtype;
      t->rank = rc->host_in[i].rank;
      memcpy(t->dims, rc->host_in[i].dims, sizeof t->dims);
      t->data = rc->host_in[i].data;
    } else {
      t->dtype = v->dtype;
      t->rank = v->rank;
      memcpy(t->dims, v->dims, sizeof t->dims);
      int64_t n = od_tensor_numel(t);
      t->data = calloc((size_t)(n ? n : 1), od_dtype_size(v->dtype));
      rc->host_in[i].data = t->data; /* freed with the case */
      for (int64_t k = 0; k < n; k++) {
        double x = rc->meta.positive ? 0.5 + rng_uniform(&rng) : rng_normal(&rng);
        if (rc->meta.spread > 0)
          x = rc->meta.spread * (double)((k * 7919) % (n ? n : 1)) + 0.1 * rc->meta.spread * rng_uniform(&rng) -
              rc->meta.spread * (double)n / 2;
        od_tensor_set_f64(t, k, x);
      }
    }
    if (od_dtype_is_float(t->dtype)) rc->want[g->inputs[i]] = 1;
  }
  return true;
}

static int count_device_nodes(const struct od_program *p, const struct od_graph *g, int *running) {
  int dev = 0;
  *running = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    if (!od_program_node_runs(p, i)) continue;
    (*running)++;
    if (!od_program_node_on_host(p, i, NULL)) dev++;
  }
  return dev;
}

/* Returns 1 pass, 0 fail, -1 skipped (the CPU cannot run it either). */
static int run_one(const char *model_path, const char *node_dir, struct od_device *cpu, struct od_device *gpu,
                   int min_device, char *msg, size_t size) {
  struct od_err err = {0};
  struct od_model *m = NULL;
  struct od_program *pc = NULL, *pg = NULL;
  struct run_case rc = {0};
  void *dys[MAX_IO] = {0};
  int seeds[MAX_IO], n_seeds = 0;
  int result = 0;
  if (od_model_load(model_path, &m, &err) != OD_OK) {
    snprintf(msg, size, "import: %.900s", err.msg);
    return -1;
  }
  const struct od_graph *g = m->graph;
  if (g->n_inputs > MAX_IO || g->n_outputs > MAX_IO) {
    snprintf(msg, size, "too many inputs/outputs");
    result = -1;
    goto done;
  }
  parse_meta(m, &rc.meta);
  rc.want = calloc((size_t)g->n_values + 1, 1);
  if (!make_inputs(node_dir, m, &rc, msg, size)) {
    result = -1;
    goto done;
  }
  struct od_compile_opts oc = {.dev = cpu, .grad_wanted = rc.want, .training = rc.meta.training};
  if (od_program_compile(g, rc.in, &oc, &pc, &err) != OD_OK) {
    snprintf(msg, size, "CPU compile: %.900s", err.msg);
    result = -1;
    goto done;
  }
  struct od_compile_opts og = oc;
  og.dev = gpu;
  if (od_program_compile(g, rc.in, &og, &pg, &err) != OD_OK) {
    snprintf(msg, size, "device compile: %.900s", err.msg);
    goto done;
  }
  /* the device program holds its own copy of the parameters, uploaded at compile time: the CPU
   * run may now update the graph's (running statistics) without affecting it */
  if (od_program_run(pc, rc.in, &err) != OD_OK) {
    snprintf(msg, size, "CPU run: %.900s", err.msg);
    result = -1;
    goto done;
  }
  if (od_program_run(pg, rc.in, &err) != OD_OK) {
    snprintf(msg, size, "device run: %.900s", err.msg);
    goto done;
  }
  char what[64];
  for (int o = 0; o < g->n_outputs; o++) {
    const struct od_tensor *b = od_program_output(pc, o);
    const struct od_tensor *a = od_program_host_value(pg, g->outputs[o], &err);
    if (!a) {
      snprintf(msg, size, "output %d: %.900s", o, err.msg);
      goto done;
    }
    snprintf(what, sizeof what, "output %d", o);
    if (!agree(what, a, b, msg, size)) goto done;
  }
  /* parameters updated in place */
  for (int v = 0; v < g->n_values; v++) {
    if (g->values[v].kind != OD_VALUE_INITIALIZER || !od_dtype_is_float(g->values[v].dtype)) continue;
    const struct od_tensor *b = od_program_value(pc, v), *a = od_program_value(pg, v) ? od_program_host_value(pg, v, &err) : NULL;
    if (!a || !b) continue;
    snprintf(what, sizeof what, "parameter '%.40s'", g->values[v].name);
    if (!agree(what, a, b, msg, size)) goto done;
  }
  /* backward from the same random output gradients, when the CPU can */
  struct rng rng = {12345};
  for (int o = 0; o < g->n_outputs && !od_program_missing_backward(pc, NULL, 0); o++) {
    if (!od_program_requires_grad(pc, g->outputs[o])) continue;
    struct od_tensor dy = *od_program_output(pc, o);
    int64_t n = od_tensor_numel(&dy);
    dys[n_seeds] = dy.data = calloc((size_t)(n ? n : 1), od_dtype_size(dy.dtype));
    for (int64_t k = 0; k < n; k++) od_tensor_set_f64(&dy, k, rng_normal(&rng));
    seeds[n_seeds++] = g->outputs[o];
  }
  bool backward = n_seeds > 0;
  if (backward) {
    if (od_program_backward(pc, n_seeds, seeds, (const void *const *)dys, &err) != OD_OK) {
      backward = false; /* the CPU cannot: nothing to compare against */
      od_err_clear(&err);
    } else if (od_program_backward(pg, n_seeds, seeds, (const void *const *)dys, &err) != OD_OK) {
      snprintf(msg, size, "device backward: %.900s", err.msg);
      goto done;
    }
  }
  if (backward)
    for (int i = 0; i < g->n_inputs; i++) {
      const struct od_tensor *b = od_program_grad(pc, g->inputs[i]);
      if (!b) continue;
      const struct od_tensor *a = od_program_host_grad(pg, g->inputs[i], &err);
      if (!a) {
        snprintf(msg, size, "gradient of input %d: %.900s", i, err.msg);
        goto done;
      }
      snprintf(what, sizeof what, "gradient of input %d", i);
      if (!agree(what, a, b, msg, size)) goto done;
    }
  int running = 0, on_dev = count_device_nodes(pg, g, &running);
  if (on_dev < min_device && on_dev < running) {
    const char *why = NULL;
    for (int i = 0; i < g->n_nodes && !why; i++)
      if (od_program_node_runs(pg, i) && od_program_node_on_host(pg, i, &why) && !why) why = "?";
    snprintf(msg, size, "only %d of %d nodes ran on the device (%s)", on_dev, running, why ? why : "?");
    goto done;
  }
  snprintf(msg, size, "%d/%d nodes on the device, %s", on_dev, running, backward ? "forward + backward" : "forward");
  result = 1;
done:
  for (int k = 0; k < n_seeds; k++) free(dys[k]);
  od_program_destroy(pc);
  od_program_destroy(pg);
  for (int i = 0; i < MAX_IO; i++) {
    if (node_dir) od_host_tensor_free(&rc.host_in[i]);
    else free(rc.host_in[i].data);
  }
  free(rc.want);
  od_model_destroy(m);
  return result;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  const char *spec = "cuda:0";
  int min_device = 0, a = 1;
  for (; a < argc && !strncmp(argv[a], "--", 2); a++) {
    if (!strcmp(argv[a], "--device") && a + 1 < argc) spec = argv[++a];
    else if (!strcmp(argv[a], "--min-device") && a + 1 < argc) min_device = atoi(argv[++a]);
    else {
      fprintf(stderr, "usage: cuda_parity [--device SPEC] [--min-device N] DIR [PREFIX...]\n");
      return 2;
    }
  }
  if (a >= argc) {
    fprintf(stderr, "usage: cuda_parity [--device SPEC] [--min-device N] DIR [PREFIX...]\n");
    return 2;
  }
  const char *dir = argv[a++];
  struct od_err err = {0};
  struct od_device *cpu = NULL, *gpu = NULL;
  if (od_device_open("cpu", &cpu, &err) != OD_OK) return 1;
  if (od_device_open(spec, &gpu, &err) != OD_OK) {
    printf("skipped: %s\n", err.msg);
    od_device_close(cpu);
    return err.status == OD_ERR_NO_DEVICE ? 77 : 1;
  }
  printf("device: %s\n", gpu->name);
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "%s: cannot open\n", dir);
    return 1;
  }
  char **names = NULL;
  int n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    bool match = a >= argc;
    for (int k = a; k < argc && !match; k++) match = !strncmp(e->d_name, argv[k], strlen(argv[k]));
    if (!match) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      names = realloc(names, sizeof *names * (size_t)cap);
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  int pass = 0, fail = 0, skip = 0;
  for (int i = 0; i < n; i++) {
    char path[8300], node_dir[4096], msg[1024] = "";
    struct stat st;
    snprintf(node_dir, sizeof node_dir, "%.2000s/%.2000s", dir, names[i]);
    snprintf(path, sizeof path, "%s/model.onnx", node_dir);
    bool node_test = stat(path, &st) == 0;
    if (!node_test) {
      size_t len = strlen(names[i]);
      if (len < 5 || strcmp(names[i] + len - 5, ".onnx")) {
        free(names[i]);
        continue;
      }
      snprintf(path, sizeof path, "%.2000s/%.2000s", dir, names[i]);
    }
    int r = run_one(path, node_test ? node_dir : NULL, cpu, gpu, min_device, msg, sizeof msg);
    printf("%-5s %s: %s\n", r > 0 ? "ok" : r < 0 ? "skip" : "FAIL", names[i], msg);
    if (r > 0) pass++;
    else if (r < 0) skip++;
    else fail++;
    free(names[i]);
  }
  free(names);
  printf("%d passed, %d failed, %d skipped (the CPU reference cannot run them)\n", pass, fail, skip);
  od_device_close(gpu);
  od_device_close(cpu);
  return fail ? 1 : 0;
}
