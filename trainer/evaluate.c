/* trainer/evaluate.c: the evaluation loop (see evaluate.h). */
#include "trainer/evaluate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/exec.h"

#define EVAL_MAX_OUT OD_MAX_ANCHORS

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void od_eval_result_free(struct od_eval_result *r) {
  if (!r) return;
  free(r->per_class);
  r->per_class = NULL;
}

struct eval_state {
  struct od_program *prog;
  struct od_data_eval *data;
  struct od_map *map;
  struct od_yolo_cands cands;
  struct od_tensor *ins;
  float *input_buf;
};

static void state_free(struct eval_state *s) {
  od_yolo_cands_free(&s->cands);
  od_map_destroy(s->map);
  od_data_eval_close(s->data);
  od_program_destroy(s->prog);
  free(s->ins);
  free(s->input_buf);
}

/* Host views of the kept head tensors (copies when the program ran on a device). */
static enum od_status host_heads(const struct od_eval_spec *sp, struct eval_state *s, struct od_tensor *hh,
                                 const struct od_tensor **heads, struct od_err *err) {
  for (int i = 0; i < sp->tl->n_outputs; i++) {
    const struct od_tensor *t = od_program_host_value(s->prog, sp->heads[i], err);
    if (!t) {
      od_err_prefix(err, "head %d ('%s')", i, sp->g->values[sp->heads[i]].name);
      return err->status;
    }
    hh[i] = *t;
    heads[i] = &hh[i];
  }
  return OD_OK;
}

static enum od_status run(const struct od_eval_spec *sp, struct eval_state *s, struct od_eval_result *out,
                          struct od_err *err) {
  const struct od_graph *g = sp->g;
  const struct od_task_loss_cfg *tl = sp->tl;
  int size = sp->size, batch = sp->batch;
  if (tl->n_outputs < 1 || tl->n_outputs > EVAL_MAX_OUT)
    return od_err_set(err, OD_ERR_INVALID_ARG, "eval needs 1 to %d head tensors", EVAL_MAX_OUT);
  uint8_t *keep = calloc((size_t)g->n_values + 1, 1);
  s->ins = calloc((size_t)g->n_inputs + 1, sizeof *s->ins);
  s->input_buf = calloc((size_t)batch * 3 * (size_t)size * (size_t)size, sizeof(float));
  if (!keep || !s->ins || !s->input_buf) {
    free(keep);
    return od_err_set(err, OD_ERR_OOM, "out of memory for a batch of %d at %dx%d", batch, size, size);
  }
  for (int i = 0; i < tl->n_outputs; i++) keep[sp->heads[i]] = 1;
  for (int i = 0; i < g->n_inputs; i++)
    if (g->inputs[i] == sp->input)
      s->ins[i] = (struct od_tensor){.dtype = OD_DTYPE_FLOAT, .rank = 4, .dims = {batch, 3, size, size}, .data = s->input_buf};
  struct od_compile_opts copts = {.dev = sp->dev, .pool = sp->pool, .training = false, .keep = keep};
  enum od_status st = od_program_compile(g, s->ins, &copts, &s->prog, err);
  free(keep);
  if (st != OD_OK) {
    od_err_prefix(err, "eval at %dx%d, batch %d", size, size, batch);
    return st;
  }
  OD_TRY(od_data_open_eval(sp->data, size, &s->data, err));
  struct od_map_cfg mcfg;
  od_map_cfg_default(tl->num_classes, &mcfg);
  OD_TRY(od_map_create(&mcfg, &s->map, err));
  struct od_nms_cfg nms;
  od_nms_cfg_default(&nms);
  int total = od_data_eval_count(s->data);
  double t0 = now_s(), net = 0;
  int64_t done = 0;
  for (;;) {
    struct od_eval_batch eb;
    OD_TRY(od_data_eval_next(s->data, batch, &eb, err));
    if (eb.n == 0) break;
    size_t per_image = (size_t)3 * (size_t)size * (size_t)size;
    memcpy(s->input_buf, eb.images, (size_t)eb.n * per_image * sizeof(float));
    if (eb.n < batch) /* pad the last batch */
      memset(s->input_buf + (size_t)eb.n * per_image, 0, (size_t)(batch - eb.n) * per_image * sizeof(float));
    double t1 = now_s();
    OD_TRY(od_program_run(s->prog, s->ins, err));
    OD_TRY(sp->dev->ops->sync(sp->dev, err));
    net += now_s() - t1;
    struct od_tensor hh[EVAL_MAX_OUT];
    const struct od_tensor *heads[EVAL_MAX_OUT];
    OD_TRY(host_heads(sp, s, hh, heads, err));
    OD_TRY(od_detect_eval_batch(tl, tl->n_outputs, heads, size, size, eb.info, eb.n, &nms, OD_YOLO_CONF_THRESH, s->map,
                                &s->cands, sp->on_dets, sp->ctx, err));
    done += eb.n;
    if (sp->progress) fprintf(stderr, "\reval %" PRId64 "/%d images", done, total);
  }
  if (sp->progress) fprintf(stderr, "\r%*s\r", 40, "");
  out->per_class = calloc((size_t)tl->num_classes + 1, sizeof *out->per_class);
  if (!out->per_class) return od_err_set(err, OD_ERR_OOM, "out of memory");
  OD_TRY(od_map_compute(s->map, &out->map11, &out->map_all, out->per_class, err));
  out->images = done;
  out->seconds = now_s() - t0;
  out->net_seconds = net;
  od_data_eval_stats(s->data, &out->stats);
  return OD_OK;
}

enum od_status od_evaluate(const struct od_eval_spec *spec, struct od_eval_result *out, struct od_err *err) {
  struct eval_state s;
  memset(&s, 0, sizeof s);
  struct od_eval_result r;
  memset(&r, 0, sizeof r);
  enum od_status st = run(spec, &s, &r, err);
  state_free(&s);
  if (st != OD_OK) {
    od_eval_result_free(&r);
    return st;
  }
  *out = r;
  return OD_OK;
}
