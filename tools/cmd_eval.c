/* tools/cmd_eval.c: `onnx-distill eval MODEL.onnx pairs.json [--set k=v]... [--outputs a,b,c] [--size S]
 * [--batch N] [--device D] [--threads T] [--detections FILE] [--json]`: the VOC mAP of a YOLOv3
 * detector on the manifest's val list, as PaddleDetection's eval (reference/method.md 2).
 *
 * The manifest gives the data (data.format voc or synthetic, data.root, data.val, mean/std,
 * classes) and the head description (task_loss: anchors, anchor_masks, downsample, num_classes).
 * The head tensors are --outputs, else task_loss.outputs; --outputs also works for a manifest
 * without task_loss (the task_loss defaults then apply: VOC anchors and masks, strides 32/16/8).
 * The model is compiled sliced to the head tensors (its own post-processing, if any, never runs);
 * the heads are decoded, NMS-ed and scored by trainer/detect.h: yolo_box conf 0.005, NMS score
 * 0.01 / IoU 0.45 / top 1000 / keep 100, mAP@0.5 11-point and all-point, difficult boxes ignored.
 * Images are resized to S x S (bicubic; --size, else the model input's fixed side, else the
 * largest data.size), batch N (--batch, default 8, or the model's fixed batch; the last batch is
 * padded). images/s counts everything from reading the JPEGs to the metric; "network" only the
 * forward passes. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loaders/manifest.h"
#include "loaders/onnx_import.h"
#include "runtime/device.h"
#include "runtime/exec.h"
#include "runtime/pool.h"
#include "runtime/tensor.h"
#include "tools/commands.h"
#include "trainer/data.h"
#include "trainer/detect.h"
#include "trainer/evaluate.h"
#include "trainer/resolve.h"

#define EVAL_USAGE                                                                                           \
  "usage: onnx-distill eval MODEL.onnx pairs.json [options]\n"                                               \
  "  --set KEY=VALUE     manifest override (repeatable), e.g. data.val=val.txt\n"                            \
  "  --outputs A,B,C     head tensors (value names or node:NAME:out:K), stride 32 first;\n"                  \
  "                      default task_loss.outputs\n"                                                        \
  "  --size S            input side in pixels (default: the model's fixed H,W, else the largest data.size)\n" \
  "  --batch N           images per forward pass (default 8, or the model's fixed batch)\n"                  \
  "  --device SPEC       cpu (default), cuda, cuda:N\n"                                                      \
  "  --threads N         CPU worker threads (default: one per core)\n"                                       \
  "  --detections FILE   write every image's detections as JSON lines\n"                                     \
  "  --json              print the result as one JSON object\n"

#define EVAL_MAX_OUT OD_MAX_ANCHORS

struct eval_opts {
  const char *model, *manifest, *outputs, *device, *detections;
  const char **sets;
  int n_sets;
  int size, batch, threads;
  bool json;
};

static int usage_error(const char *msg, const char *arg) {
  fprintf(stderr, "onnx-distill eval: ");
  fprintf(stderr, msg, arg);
  fprintf(stderr, "\n" EVAL_USAGE);
  return 2;
}

/* 0 ok, -1 help printed, else the exit code */
static int parse_args(int argc, char **argv, struct eval_opts *o) {
  o->device = "cpu";
  o->sets = calloc((size_t)argc + 2, sizeof *o->sets);
  if (!o->sets) return 1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(EVAL_USAGE, stdout);
      return -1;
    } else if (!strcmp(a, "--set")) {
      if (!has) return usage_error("%s needs KEY=VALUE", a);
      o->sets[o->n_sets++] = argv[++i];
    } else if (!strncmp(a, "--set=", 6)) {
      o->sets[o->n_sets++] = a + 6;
    } else if (!strcmp(a, "--outputs")) {
      if (!has || !argv[i + 1][0]) return usage_error("%s needs a comma-separated list of tensors", a);
      o->outputs = argv[++i];
    } else if (!strcmp(a, "--size")) {
      if (!has || !od_arg_int(argv[++i], 1, 16384, &o->size)) return usage_error("%s needs a side in pixels", a);
    } else if (!strcmp(a, "--batch")) {
      if (!has || !od_arg_int(argv[++i], 1, 4096, &o->batch)) return usage_error("%s needs a batch size >= 1", a);
    } else if (!strcmp(a, "--threads")) {
      if (!has || !od_arg_int(argv[++i], 0, 4096, &o->threads)) return usage_error("%s needs a thread count", a);
    } else if (!strcmp(a, "--device")) {
      if (!has) return usage_error("%s needs cpu, cuda or cuda:N", a);
      o->device = argv[++i];
    } else if (!strcmp(a, "--detections")) {
      if (!has) return usage_error("%s needs a file", a);
      o->detections = argv[++i];
    } else if (!strcmp(a, "--json")) {
      o->json = true;
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown option '%s'", a);
    } else if (!o->model) {
      o->model = a;
    } else if (!o->manifest) {
      o->manifest = a;
    } else {
      return usage_error("unexpected argument '%s'", a);
    }
  }
  if (!o->model || !o->manifest) return usage_error("%s", "needs MODEL.onnx and pairs.json");
  return 0;
}

/* JSON string literal of s (quotes and backslashes escaped) appended to buf. */
static bool append_json_str(char *buf, size_t cap, size_t *len, const char *s, size_t n) {
  if (*len + 2 * n + 3 >= cap) return false;
  buf[(*len)++] = '"';
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"' || s[i] == '\\') buf[(*len)++] = '\\';
    buf[(*len)++] = s[i];
  }
  buf[(*len)++] = '"';
  buf[*len] = '\0';
  return true;
}

/* --outputs a,b,c as a manifest override: task_loss.outputs=[...] when the manifest has a
 * task_loss, else task_loss={"outputs": [...]} (the defaults fill the rest). */
static char *outputs_set(const char *list, bool has_task_loss) {
  size_t cap = 2 * strlen(list) + 64, len = 0;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  len = (size_t)snprintf(buf, cap, "%s", has_task_loss ? "task_loss.outputs=[" : "task_loss={\"outputs\": [");
  const char *p = list;
  for (bool first = true;; first = false) {
    const char *q = strchr(p, ',');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    if (!first) buf[len++] = ',';
    if (!append_json_str(buf, cap, &len, p, n)) {
      free(buf);
      return NULL;
    }
    if (!q) break;
    p = q + 1;
  }
  snprintf(buf + len, cap - len, "%s", has_task_loss ? "]" : "]}");
  return buf;
}

struct det_writer {
  FILE *f;
};

static void write_dets(void *ctx, const struct od_eval_image *im, const struct od_det *d, int n) {
  struct det_writer *w = ctx;
  fprintf(w->f, "{\"image\": ");
  if (im->path) {
    fputc('"', w->f);
    for (const char *s = im->path; *s; s++) {
      if (*s == '"' || *s == '\\') fputc('\\', w->f);
      fputc(*s, w->f);
    }
    fputc('"', w->f);
  } else {
    fputs("null", w->f);
  }
  fprintf(w->f, ", \"index\": %" PRId64 ", \"width\": %d, \"height\": %d, \"detections\": [", im->index, im->width,
          im->height);
  for (int k = 0; k < n; k++)
    fprintf(w->f, "%s[%d, %.9g, %.9g, %.9g, %.9g, %.9g]", k ? ", " : "", d[k].label, d[k].score, d[k].x1, d[k].y1,
            d[k].x2, d[k].y2);
  fprintf(w->f, "]}\n");
}

struct eval_run {
  struct od_manifest *man;
  struct od_model *model;
  struct od_device *dev;
  struct od_pool *pool;
  FILE *det_file;
};

static void eval_run_free(struct eval_run *r) {
  od_pool_destroy(r->pool);
  od_device_close(r->dev);
  od_model_destroy(r->model);
  od_manifest_destroy(r->man);
  if (r->det_file) fclose(r->det_file);
}

/* The graph input the images feed: data.input when it names one of this model's inputs, else
 * the first input. */
static enum od_status pick_input(const struct od_graph *g, const char *name, const char *model, int *out,
                                 struct od_err *err) {
  if (g->n_inputs == 0) return od_err_set(err, OD_ERR_INVALID_ARG, "%s has no inputs to feed", model);
  *out = g->inputs[0];
  if (name)
    for (int i = 0; i < g->n_inputs; i++)
      if (!strcmp(g->values[g->inputs[i]].name, name)) *out = g->inputs[i];
  const struct od_value *v = &g->values[*out];
  if (v->rank != 4 || (v->dims[1] != 3 && v->dims[1] != OD_DIM_UNKNOWN))
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: input '%s' is not an NCHW image input with 3 channels", model,
                      v->name);
  return OD_OK;
}

static void print_report(const struct eval_opts *o, const struct eval_run *r, int size, int batch, int64_t images,
                         double m11, double mall, const struct od_ap *per, double secs, double net_secs,
                         const struct od_data_stats *st) {
  const struct od_manifest *m = r->man;
  const int nc = m->task_loss.num_classes;
  double ips = secs > 0 ? images / secs : 0, net_ips = net_secs > 0 ? images / net_secs : 0;
  int valid = 0;
  for (int c = 0; c < nc; c++) valid += per[c].valid;
  if (o->json) {
    printf("{\"model\": \"%s\", \"images\": %" PRId64 ", \"skipped\": %" PRId64
           ", \"size\": %d, \"batch\": %d, \"map11\": %.10g, \"map_all\": %.10g, \"classes_with_gt\": %d, "
           "\"images_per_s\": %.6g, \"network_images_per_s\": %.6g, \"seconds\": %.6g, \"per_class\": [",
           o->model, images, st->skipped, size, batch, m11, mall, valid, ips, net_ips, secs);
    for (int c = 0; c < nc; c++)
      printf("%s{\"class\": \"%s\", \"ap11\": %.10g, \"ap_all\": %.10g, \"n_gt\": %" PRId64 ", \"n_det\": %" PRId64
             ", \"n_tp\": %" PRId64 ", \"valid\": %s}",
             c ? ", " : "", c < m->data.n_classes ? m->data.classes[c] : "?", per[c].ap11, per[c].ap_all, per[c].n_gt,
             per[c].n_det, per[c].n_tp, per[c].valid ? "true" : "false");
    printf("]}\n");
    return;
  }
  printf("%-16s %8s %8s %7s %7s\n", "class", "AP11", "AP", "gts", "dets");
  for (int c = 0; c < nc; c++) {
    const char *name = c < m->data.n_classes ? m->data.classes[c] : "?";
    if (per[c].valid)
      printf("%-16s %8.2f %8.2f %7" PRId64 " %7" PRId64 "\n", name, 100 * per[c].ap11, 100 * per[c].ap_all,
             per[c].n_gt, per[c].n_det);
    else
      printf("%-16s %8s %8s %7" PRId64 " %7" PRId64 "   (no gts: not in the mean)\n", name, "-", "-", per[c].n_gt,
             per[c].n_det);
  }
  printf("mAP@0.5: 11-point %.2f, all-point %.2f (%d classes with gts, %" PRId64 " images at %dx%d%s)\n", 100 * m11,
         100 * mall, valid, images, size, size,
         st->skipped ? ", some unreadable images skipped" : "");
  printf("images/s: %.2f end to end, %.2f network only (%.2f s, batch %d, %s)\n", ips, net_ips, secs, batch,
         r->dev->name);
}

int od_cmd_eval(int argc, char **argv) {
  struct eval_opts o;
  memset(&o, 0, sizeof o);
  int rc = parse_args(argc, argv, &o);
  if (rc) {
    free(o.sets);
    return rc < 0 ? 0 : rc;
  }
  struct eval_run r;
  memset(&r, 0, sizeof r);
  struct od_err err = {0};
  enum od_status s = OD_OK;
  char *extra = NULL;
  int head_ids[EVAL_MAX_OUT];
  uint8_t *keep = NULL;

  /* manifest (+ --outputs as an override) */
  if ((s = od_manifest_load(o.manifest, o.sets, o.n_sets, &r.man, &err)) != OD_OK) goto done;
  if (o.outputs) {
    extra = outputs_set(o.outputs, r.man->task_loss.enabled);
    if (!extra) {
      s = od_err_set(&err, OD_ERR_OOM, "out of memory");
      goto done;
    }
    o.sets[o.n_sets++] = extra;
    od_manifest_destroy(r.man);
    r.man = NULL;
    if ((s = od_manifest_load(o.manifest, o.sets, o.n_sets, &r.man, &err)) != OD_OK) {
      od_err_prefix(&err, "--outputs %s", o.outputs);
      goto done;
    }
  }
  const struct od_task_loss_cfg *tl = &r.man->task_loss;
  if (!tl->enabled || tl->n_outputs < 1) {
    s = od_err_set(&err, OD_ERR_INVALID_ARG,
                   "%s: no head tensors: give --outputs A,B,C or task_loss.outputs in the manifest", o.manifest);
    goto done;
  }
  if (tl->n_outputs > EVAL_MAX_OUT) {
    s = od_err_set(&err, OD_ERR_UNSUPPORTED, "at most %d head outputs", EVAL_MAX_OUT);
    goto done;
  }

  /* model, input, heads */
  if ((s = od_model_load(o.model, &r.model, &err)) != OD_OK) goto done;
  const struct od_graph *g = r.model->graph;
  int in_id = -1;
  if ((s = pick_input(g, r.man->data.input, o.model, &in_id, &err)) != OD_OK) goto done;
  const struct od_value *iv = &g->values[in_id];
  keep = calloc((size_t)g->n_values + 1, 1);
  if (!keep) {
    s = od_err_set(&err, OD_ERR_OOM, "out of memory");
    goto done;
  }
  for (int i = 0; i < tl->n_outputs; i++) {
    char where[64];
    snprintf(where, sizeof where, o.outputs ? "--outputs[%d]" : "task_loss.outputs[%d]", i);
    struct od_ref_binding b;
    if ((s = od_ref_resolve(g, tl->outputs[i], o.model, where, &b, &err)) != OD_OK) goto done;
    head_ids[i] = b.value;
    keep[b.value] = 1;
    if (!o.json) printf("head %d: %s -> %s\n", i, tl->outputs[i], b.how);
  }

  /* size and batch */
  int size = o.size;
  int64_t fh = iv->dims[2], fw = iv->dims[3];
  if (fh > 0 && fw > 0 && fh != fw) {
    s = od_err_set(&err, OD_ERR_UNSUPPORTED, "%s: input '%s' is %" PRId64 "x%" PRId64 "; eval uses square inputs",
                   o.model, iv->name, fh, fw);
    goto done;
  }
  if (fh > 0 && size && size != fh) {
    s = od_err_set(&err, OD_ERR_INVALID_ARG, "--size %d: input '%s' of %s is fixed at %" PRId64 "x%" PRId64, size,
                   iv->name, o.model, fh, fw);
    goto done;
  }
  if (!size) size = fh > 0 ? (int)fh : r.man->data.size_max;
  if (size <= 0) {
    s = od_err_set(&err, OD_ERR_INVALID_ARG, "%s: input '%s' has no fixed size: give --size or data.size", o.model,
                   iv->name);
    goto done;
  }
  int batch = o.batch ? o.batch : 8;
  if (iv->dims[0] > 0 && iv->dims[0] != batch) {
    if (o.batch) {
      s = od_err_set(&err, OD_ERR_INVALID_ARG, "--batch %d: input '%s' of %s has a fixed batch of %" PRId64, o.batch,
                     iv->name, o.model, iv->dims[0]);
      goto done;
    }
    batch = (int)iv->dims[0];
  }

  /* evaluate (trainer/evaluate.h: compile sliced to the heads, decode, NMS, mAP) */
  if ((s = od_device_open(o.device, &r.dev, &err)) != OD_OK) goto done;
  if ((s = od_pool_create(o.threads, &r.pool, &err)) != OD_OK) goto done;
  struct det_writer dw = {0};
  if (o.detections) {
    r.det_file = fopen(o.detections, "w");
    if (!r.det_file) {
      s = od_err_set(&err, OD_ERR_IO, "--detections %s: cannot write", o.detections);
      goto done;
    }
    dw.f = r.det_file;
  }
  if (!o.json)
    printf("eval: %s at %dx%d, batch %d, %s, %d thread%s\n", o.model, size, size, batch, r.dev->name,
           od_pool_threads(r.pool), od_pool_threads(r.pool) == 1 ? "" : "s");
  fflush(stdout);
  struct od_eval_spec spec = {.g = g, .input = in_id, .heads = head_ids, .tl = tl, .data = &r.man->data,
                              .size = size, .batch = batch, .dev = r.dev, .pool = r.pool,
                              .on_dets = o.detections ? write_dets : NULL, .ctx = &dw,
                              .progress = isatty(fileno(stderr)) != 0};
  struct od_eval_result res;
  if ((s = od_evaluate(&spec, &res, &err)) != OD_OK) {
    od_err_prefix(&err, "%s", o.model);
    goto done;
  }
  print_report(&o, &r, size, batch, res.images, res.map11, res.map_all, res.per_class, res.seconds, res.net_seconds,
               &res.stats);
  od_eval_result_free(&res);

done:
  rc = s == OD_OK ? 0 : od_cmd_fail(&err);
  eval_run_free(&r);
  free(keep);
  free(extra);
  free(o.sets);
  return rc;
}
