/* tools/cmd_run.c: `onnx-distill run MODEL.onnx --input NAME=FILE ... [--output DIR]`: runs a model
 * once on inputs from .npy files (loaders/npy.h) or JPEG images (loaders/image.h), prints each
 * output (dtype, shape, a summary) and the time taken, and with --output writes DIR/<name>.npy.
 *
 * Inputs are checked against the model's declared inputs before anything is compiled, so a wrong
 * file gets a message naming the file, the input and what the model expects rather than a shape
 * error from the middle of the graph. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "loaders/image.h"
#include "loaders/npy.h"
#include "loaders/onnx_import.h"
#include "runtime/device.h"
#include "runtime/exec.h"
#include "runtime/pool.h"
#include "runtime/tensor.h"
#include "tools/commands.h"

#define RUN_USAGE                                                                                       \
  "usage: onnx-distill run MODEL.onnx --input NAME=FILE [--input NAME=FILE ...] [options]\n"           \
  "  --input NAME=FILE   a .npy file, or a JPEG image (resized and normalised to float [1,3,S,S]);\n"  \
  "                      NAME= may be left out when the model has one input\n"                         \
  "  --size S            image side in pixels (default: the model input's H and W)\n"                  \
  "  --mean R,G,B        image mean in [0,1] units (default 0,0,0; ImageNet: 0.485,0.456,0.406)\n"     \
  "  --std R,G,B         image std (default 1,1,1; ImageNet: 0.229,0.224,0.225)\n"                     \
  "  --output DIR        write each output to DIR/<output name>.npy (DIR is created)\n"                \
  "  --device SPEC       cpu (default), cuda, cuda:N\n"                                               \
  "  --threads N         CPU worker threads (default: one per core)\n"

#define MAX_SHOWN 6 /* values printed per output */

struct run_input {
  const char *name;     /* NULL: the model's only input */
  const char *file;
  int value_id;         /* resolved */
  struct od_host_tensor t;
};

struct run_opts {
  const char *model;
  struct run_input *inputs;
  int n_inputs;
  const char *output_dir;
  const char *device;
  int threads;
  int size;             /* 0: from the model */
  float mean[3], std[3];
};

/* ---- argument parsing ------------------------------------------------------------------------ */

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "onnx-distill run: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n" RUN_USAGE);
  return 2;
}

/* "a,b,c" or a single "a" (used for all three channels). */
static bool parse_triple(const char *s, float *v) {
  char *end;
  for (int c = 0; c < 3; c++) {
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || errno || !isfinite(x)) return false;
    v[c] = (float)x;
    if (c == 0 && *end == '\0') {
      v[1] = v[2] = v[0];
      return true;
    }
    if (c < 2 && *end != ',') return false;
    s = end + 1;
  }
  return *end == '\0';
}

/* Returns 0 on success, else the exit code. */
static int parse_args(int argc, char **argv, struct run_opts *o) {
  o->device = "cpu";
  for (int c = 0; c < 3; c++) o->std[c] = 1.0f;
  o->inputs = calloc((size_t)argc + 1, sizeof *o->inputs);
  if (!o->inputs) return usage_error("%s", "out of memory");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(RUN_USAGE, stdout);
      return -1;
    } else if (!strcmp(a, "--input") || !strcmp(a, "-i")) {
      if (!has_value) return usage_error("%s needs NAME=FILE", a);
      char *spec = argv[++i];
      struct run_input *in = &o->inputs[o->n_inputs++];
      char *eq = strchr(spec, '=');
      if (eq) {
        *eq = '\0';
        in->name = spec;
        in->file = eq + 1;
        if (!*in->name || !*in->file) return usage_error("--input '%s': expected NAME=FILE", spec);
      } else {
        in->file = spec;
      }
    } else if (!strcmp(a, "--size")) {
      if (!has_value || !od_arg_int(argv[++i], 1, 16384, &o->size))
        return usage_error("--size needs a side in pixels (1..16384)%s", "");
    } else if (!strcmp(a, "--mean") || !strcmp(a, "--std")) {
      bool mean = !strcmp(a, "--mean");
      if (!has_value || !parse_triple(argv[++i], mean ? o->mean : o->std))
        return usage_error("%s needs three comma-separated numbers, e.g. 0.485,0.456,0.406", a);
      if (!mean)
        for (int c = 0; c < 3; c++)
          if (o->std[c] == 0) return usage_error("%s", "--std values must be non-zero");
    } else if (!strcmp(a, "--output") || !strcmp(a, "-o")) {
      if (!has_value) return usage_error("%s needs a folder", a);
      o->output_dir = argv[++i];
    } else if (!strcmp(a, "--device")) {
      if (!has_value) return usage_error("%s needs cpu, cuda or cuda:N", a);
      o->device = argv[++i];
    } else if (!strcmp(a, "--threads")) {
      if (!has_value || !od_arg_int(argv[++i], 0, 1024, &o->threads))
        return usage_error("--threads needs a count (0..1024; 0 = one per core)%s", "");
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

/* ---- model inputs ---------------------------------------------------------------------------- */

static void print_value_type(FILE *f, const struct od_value *v) {
  fputs(v->dtype ? od_dtype_name(v->dtype) : "?", f);
  if (v->type_kind != OD_TYPE_TENSOR || v->rank < 0) {
    fputs(" [?]", f);
    return;
  }
  fputs(" [", f);
  for (int d = 0; d < v->rank; d++) {
    if (d) fputs(", ", f);
    if (v->dim_params[d]) fputs(v->dim_params[d], f);
    else if (v->dims[d] >= 0) fprintf(f, "%" PRId64, v->dims[d]);
    else fputc('?', f);
  }
  fputc(']', f);
}

static void list_expected(FILE *f, const struct od_model *m) {
  const struct od_graph *g = m->graph;
  fprintf(f, "%s expects %d input%s:\n", m->path, g->n_inputs, g->n_inputs == 1 ? "" : "s");
  for (int i = 0; i < g->n_inputs; i++) {
    const struct od_value *v = &g->values[g->inputs[i]];
    fprintf(f, "  %s: ", v->name);
    print_value_type(f, v);
    fputc('\n', f);
  }
}

/* The input's type as text, for one-line messages. */
static const char *value_type_str(const struct od_value *v, char *buf, size_t size) {
  FILE *f = fmemopen(buf, size, "w");
  if (!f) return "?";
  print_value_type(f, v);
  fclose(f);
  return buf;
}

/* Does the tensor read from a file fit the declared input? */
static enum od_status check_input(const struct od_model *m, const struct od_value *v, const struct run_input *in,
                                  struct od_err *err) {
  char want[256], got[160];
  od_shape_str(in->t.rank, in->t.dims, got, sizeof got);
  if (v->dtype && in->t.dtype != v->dtype)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: %s %s, but input '%s' of %s is %s", in->file,
                      od_dtype_name(in->t.dtype), got, v->name, m->path, value_type_str(v, want, sizeof want));
  if (v->type_kind == OD_TYPE_TENSOR && v->rank >= 0) {
    bool ok = v->rank == in->t.rank;
    for (int d = 0; ok && d < v->rank; d++)
      if (v->dims[d] >= 0 && v->dims[d] != in->t.dims[d]) ok = false;
    if (!ok)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: shape %s does not fit input '%s' of %s: %s", in->file, got,
                        v->name, m->path, value_type_str(v, want, sizeof want));
  }
  return OD_OK;
}

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcasecmp(s + n - k, suffix);
}

/* .npy or JPEG, by extension, else by the first bytes. */
static bool looks_like_jpeg(const char *path) {
  if (has_suffix(path, ".npy")) return false;
  if (has_suffix(path, ".jpg") || has_suffix(path, ".jpeg") || has_suffix(path, ".jfif")) return true;
  FILE *f = fopen(path, "rb");
  if (!f) return false; /* the npy reader reports the open error */
  unsigned char b[3] = {0};
  size_t n = fread(b, 1, 3, f);
  fclose(f);
  return n == 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff;
}

static enum od_status read_input(const struct od_model *m, const struct run_opts *o, struct run_input *in,
                                 struct od_err *err) {
  const struct od_value *v = &m->graph->values[in->value_id];
  if (!looks_like_jpeg(in->file)) return od_npy_read(in->file, &in->t, err);
  /* an image: the input must be an NCHW float tensor with 3 channels */
  bool rank_known = v->type_kind == OD_TYPE_TENSOR && v->rank >= 0;
  char want[256];
  if ((v->dtype && v->dtype != OD_DTYPE_FLOAT) || (rank_known && (v->rank != 4 || (v->dims[1] >= 0 && v->dims[1] != 3))))
    return od_err_set(err, OD_ERR_INVALID_ARG,
                      "%s: an image gives float [1, 3, H, W], but input '%s' of %s is %s", in->file, v->name,
                      m->path, value_type_str(v, want, sizeof want));
  struct od_image_opts io;
  memcpy(io.mean, o->mean, sizeof io.mean);
  memcpy(io.std, o->std, sizeof io.std);
  io.height = io.width = o->size;
  if (!o->size) {
    if (!rank_known || v->dims[2] < 1 || v->dims[3] < 1)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: input '%s' of %s has no fixed height and width (%s): give --size",
                        in->file, v->name, m->path, value_type_str(v, want, sizeof want));
    if (v->dims[2] > 16384 || v->dims[3] > 16384)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: input '%s' of %s is too large for an image (%s)", in->file,
                        v->name, m->path, value_type_str(v, want, sizeof want));
    io.height = (int)v->dims[2];
    io.width = (int)v->dims[3];
  }
  return od_image_load(in->file, &io, &in->t, err);
}

/* Resolves names, reads every file, checks each against the model. Sets *list when the message
 * should be followed by the list of the model's inputs. */
static enum od_status gather_inputs(const struct od_model *m, struct run_opts *o, bool *list, struct od_err *err) {
  const struct od_graph *g = m->graph;
  for (int k = 0; k < o->n_inputs; k++) {
    struct run_input *in = &o->inputs[k];
    int id = -1;
    if (!in->name) {
      if (g->n_inputs != 1) {
        od_err_set(err, OD_ERR_INVALID_ARG, "--input %s: give it as NAME=%s: the model has %d inputs", in->file,
                   in->file, g->n_inputs);
        *list = true;
        return OD_ERR_INVALID_ARG;
      }
      id = g->inputs[0];
      in->name = g->values[id].name;
    } else {
      for (int i = 0; i < g->n_inputs; i++)
        if (!strcmp(g->values[g->inputs[i]].name, in->name)) id = g->inputs[i];
      if (id < 0) {
        int vid = od_graph_find_value(g, in->name);
        bool init = vid >= 0 && (g->values[vid].kind == OD_VALUE_INITIALIZER || g->values[vid].kind == OD_VALUE_CONSTANT);
        od_err_set(err, OD_ERR_INVALID_ARG, "--input %s=%s: %s has no input named '%s'%s", in->name, in->file,
                   m->path, in->name, init ? " (that name is a weight, which cannot be replaced here)" : "");
        *list = true;
        return OD_ERR_INVALID_ARG;
      }
    }
    for (int j = 0; j < k; j++)
      if (o->inputs[j].value_id == id)
        return od_err_set(err, OD_ERR_INVALID_ARG, "input '%s' is given twice (%s and %s)", in->name,
                          o->inputs[j].file, in->file);
    in->value_id = id;
  }
  for (int i = 0; i < g->n_inputs; i++) {
    bool given = false;
    for (int k = 0; k < o->n_inputs; k++) given |= o->inputs[k].value_id == g->inputs[i];
    if (!given) {
      const struct od_value *v = &g->values[g->inputs[i]];
      char want[256];
      od_err_set(err, OD_ERR_INVALID_ARG, "input '%s' (%s) of %s is not given: add --input %s=FILE.npy", v->name,
                 value_type_str(v, want, sizeof want), m->path, v->name);
      *list = true;
      return OD_ERR_INVALID_ARG;
    }
  }
  for (int k = 0; k < o->n_inputs; k++) {
    struct run_input *in = &o->inputs[k];
    OD_TRY(read_input(m, o, in, err));
    OD_TRY(check_input(m, &g->values[in->value_id], in, err));
  }
  return OD_OK;
}

/* ---- outputs --------------------------------------------------------------------------------- */

static void print_summary(FILE *f, const char *name, const struct od_tensor *t) {
  char shape[160];
  fprintf(f, "%s: %s %s", name, od_dtype_name(t->dtype), od_shape_str(t->rank, t->dims, shape, sizeof shape));
  int64_t n = od_tensor_numel(t);
  if (n == 0) {
    fputs("  (empty)\n", f);
    return;
  }
  if (!od_dtype_is_supported(t->dtype) || !t->data) {
    fputc('\n', f);
    return;
  }
  if (t->dtype == OD_DTYPE_BOOL) {
    int64_t on = 0;
    for (int64_t i = 0; i < n; i++) on += ((const uint8_t *)t->data)[i] != 0;
    fprintf(f, "  true %" PRId64 " of %" PRId64 "  ", on, n);
  } else if (od_dtype_is_float(t->dtype)) {
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int64_t nan = 0, finite = 0;
    for (int64_t i = 0; i < n; i++) {
      double x = od_tensor_get_f64(t, i);
      if (isnan(x)) {
        nan++;
        continue;
      }
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
      if (isfinite(x)) {
        sum += x;
        finite++;
      }
    }
    if (nan == n) fputs("  all NaN  ", f);
    else fprintf(f, "  min %.6g  max %.6g  mean %.6g  ", lo, hi, finite ? sum / finite : NAN);
    if (nan && nan != n) fprintf(f, "NaN %" PRId64 "  ", nan);
  } else if (t->dtype == OD_DTYPE_UINT64) {
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int64_t i = 0; i < n; i++) {
      uint64_t x = ((const uint64_t *)t->data)[i];
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
    }
    fprintf(f, "  min %" PRIu64 "  max %" PRIu64 "  ", lo, hi);
  } else {
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int64_t i = 0; i < n; i++) {
      int64_t x = od_tensor_get_i64(t, i);
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
    }
    fprintf(f, "  min %" PRId64 "  max %" PRId64 "  ", lo, hi);
  }
  fputc('[', f);
  for (int64_t i = 0; i < n && i < MAX_SHOWN; i++) {
    if (i) fputs(", ", f);
    if (od_dtype_is_float(t->dtype)) fprintf(f, "%.6g", od_tensor_get_f64(t, i));
    else if (t->dtype == OD_DTYPE_UINT64) fprintf(f, "%" PRIu64, ((const uint64_t *)t->data)[i]);
    else fprintf(f, "%" PRId64, od_tensor_get_i64(t, i));
  }
  fputs(n > MAX_SHOWN ? ", ...]\n" : "]\n", f);
}

/* A file name from an output name: '/', '\\', ':' and control characters become '_', and so does
 * a leading '.' (no hidden files, no "." or ".."); empty names become "output_<i>". */
static void output_file_name(const char *name, int i, char *buf, size_t size) {
  size_t k = 0;
  for (const char *p = name; *p && k + 1 < size && k < 200; p++) {
    unsigned char c = (unsigned char)*p;
    bool bad = c == '/' || c == '\\' || c == ':' || c < 0x20 || (k == 0 && c == '.');
    buf[k++] = bad ? '_' : (char)c;
  }
  buf[k] = '\0';
  if (!k) snprintf(buf, size, "output_%d", i);
}

/* mkdir -p */
static enum od_status make_dirs(const char *dir, struct od_err *err) {
  size_t n = strlen(dir);
  char *p = malloc(n + 1);
  if (!p) return od_err_set(err, OD_ERR_OOM, "out of memory");
  memcpy(p, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char keep = p[i];
    p[i] = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      int e = errno;
      od_err_set(err, OD_ERR_IO, "--output %s: cannot create %s: %s", dir, p, strerror(e));
      free(p);
      return OD_ERR_IO;
    }
    p[i] = keep;
  }
  free(p);
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return od_err_set(err, OD_ERR_IO, "--output %s: not a folder", dir);
  return OD_OK;
}

static enum od_status write_outputs(const struct od_graph *g, const struct od_tensor *outs, const char *dir,
                                    struct od_err *err) {
  OD_TRY(make_dirs(dir, err));
  char(*names)[256] = calloc((size_t)g->n_outputs + 1, sizeof *names);
  if (!names) return od_err_set(err, OD_ERR_OOM, "out of memory");
  enum od_status s = OD_OK;
  for (int i = 0; i < g->n_outputs && s == OD_OK; i++) {
    output_file_name(g->values[g->outputs[i]].name, i, names[i], sizeof names[i] - 16);
    for (int j = 0; j < i; j++) /* two names that map to one file: number the later one */
      if (!strcmp(names[i], names[j])) {
        size_t k = strlen(names[i]);
        snprintf(names[i] + k, sizeof names[i] - k, "_%d", i);
        break;
      }
    size_t plen = strlen(dir) + strlen(names[i]) + 8;
    char *path = malloc(plen);
    if (!path) {
      s = od_err_set(err, OD_ERR_OOM, "out of memory");
      break;
    }
    snprintf(path, plen, "%s/%s.npy", dir, names[i]);
    const struct od_tensor *t = &outs[i];
    s = od_npy_write(path, t->dtype, t->rank, t->dims, t->data, err);
    if (s == OD_OK) printf("wrote %s\n", path);
    free(path);
  }
  free(names);
  return s;
}

/* ---- the command ----------------------------------------------------------------------------- */

int od_cmd_run(int argc, char **argv) {
  struct run_opts o;
  memset(&o, 0, sizeof o);
  int rc = parse_args(argc, argv, &o);
  if (rc) {
    free(o.inputs);
    return rc < 0 ? 0 : rc;
  }
  struct od_err err = {0};
  enum od_status s = OD_OK;
  struct od_model *m = NULL;
  struct od_device *dev = NULL;
  struct od_pool *pool = NULL;
  struct od_program *prog = NULL;
  struct od_tensor *ins = NULL, *outs = NULL;
  void **host_copies = NULL;
  const struct od_graph *g = NULL;
  bool list_inputs = false;

  double t0 = od_now_ms();
  if ((s = od_model_load(o.model, &m, &err)) != OD_OK) goto done;
  g = m->graph;
  for (int i = 0; i < g->n_inputs; i++) {
    const struct od_value *v = &g->values[g->inputs[i]];
    if (v->type_kind != OD_TYPE_TENSOR && v->type_kind != OD_TYPE_UNKNOWN) {
      s = od_err_set(&err, OD_ERR_UNSUPPORTED, "%s: input '%s' is not a tensor; only tensor inputs can be given",
                     o.model, v->name);
      goto done;
    }
  }
  if ((s = gather_inputs(m, &o, &list_inputs, &err)) != OD_OK) goto done;
  double t_load = od_now_ms();

  if ((s = od_device_open(o.device, &dev, &err)) != OD_OK) goto done;
  if ((s = od_pool_create(o.threads, &pool, &err)) != OD_OK) goto done;
  ins = calloc((size_t)g->n_inputs + 1, sizeof *ins);
  outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
  host_copies = calloc((size_t)g->n_outputs + 1, sizeof *host_copies);
  if (!ins || !outs || !host_copies) {
    s = od_err_set(&err, OD_ERR_OOM, "out of memory");
    goto done;
  }
  for (int i = 0; i < g->n_inputs; i++)
    for (int k = 0; k < o.n_inputs; k++)
      if (o.inputs[k].value_id == g->inputs[i]) {
        const struct od_host_tensor *h = &o.inputs[k].t;
        ins[i].dtype = h->dtype;
        ins[i].rank = h->rank;
        memcpy(ins[i].dims, h->dims, sizeof ins[i].dims);
        ins[i].data = h->data;
      }
  struct od_compile_opts copts = {.dev = dev, .pool = pool, .training = false};
  if ((s = od_program_compile(g, ins, &copts, &prog, &err)) != OD_OK) goto done;
  double t_compile = od_now_ms();
  if ((s = od_program_run(prog, ins, &err)) != OD_OK) goto done;
  if (dev->ops->sync && (s = dev->ops->sync(dev, &err)) != OD_OK) goto done;
  double t_run = od_now_ms();

  /* outputs in host memory (copies on a device; values shaped at run time already live on the host) */
  for (int i = 0; i < g->n_outputs; i++) {
    const struct od_tensor *t = od_program_host_value(prog, g->outputs[i], &err);
    if (!t) {
      od_err_prefix(&err, "output %d ('%s')", i, g->values[g->outputs[i]].name);
      s = err.status;
      goto done;
    }
    outs[i] = *t;
    size_t nbytes = od_tensor_nbytes(t);
    if (dev->kind != OD_DEVICE_CPU && nbytes) { /* the program's view is reused: keep our own copy */
      if (!(host_copies[i] = malloc(nbytes))) {
        s = od_err_set(&err, OD_ERR_OOM, "out of memory copying output '%s'", g->values[g->outputs[i]].name);
        goto done;
      }
      memcpy(host_copies[i], t->data, nbytes);
      outs[i].data = host_copies[i];
    }
  }
  if (dev->kind != OD_DEVICE_CPU && (s = dev->ops->sync(dev, &err)) != OD_OK) goto done;

  for (int i = 0; i < g->n_outputs; i++) print_summary(stdout, g->values[g->outputs[i]].name, &outs[i]);
  printf("time: load %.3f ms, compile %.3f ms, run %.3f ms (%s, %d thread%s)\n", t_load - t0, t_compile - t_load,
         t_run - t_compile, dev->name, od_pool_threads(pool), od_pool_threads(pool) == 1 ? "" : "s");
  printf("memory: %.1f KiB activation arena (planned peak, buffers reused after their last use), %d node%s folded at "
         "compile time\n", (double)od_program_arena_bytes(prog) / 1024.0, od_program_folded_nodes(prog),
         od_program_folded_nodes(prog) == 1 ? "" : "s");
  if (o.output_dir) s = write_outputs(g, outs, o.output_dir, &err);
  fflush(stdout);

done:
  if (host_copies)
    for (int i = 0; g && i < g->n_outputs; i++) free(host_copies[i]);
  free(host_copies);
  free(outs);
  free(ins);
  od_program_destroy(prog);
  od_pool_destroy(pool);
  od_device_close(dev);
  for (int k = 0; k < o.n_inputs; k++) od_host_tensor_free(&o.inputs[k].t);
  free(o.inputs);
  rc = s == OD_OK ? 0 : od_cmd_fail(&err);
  if (list_inputs) list_expected(stderr, m);
  od_model_destroy(m);
  return rc;
}
