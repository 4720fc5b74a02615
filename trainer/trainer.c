/* trainer/trainer.c: setting up a distillation run and one training step (see trainer.h). The
 * loop, logging and progress are in trainer/loop.c; checkpoints in trainer/checkpoint.c. */
#include "trainer/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_export.h"
#include "loaders/onnx_import.h"
#include "runtime/exec.h"
#include "trainer/adapter.h"
#include "trainer/data.h"
#include "trainer/params.h"
#include "trainer/resolve.h"
#include "trainer/trainer_internal.h"
#include "trainer/untie.h"
#include "trainer/yolo_loss.h"

/* ---- programs per input size ------------------------------------------------------------------ */

static void size_prog_free(struct size_prog *sp) {
  od_trainer_graph_free(sp->graph);
  od_program_destroy(sp->teacher);
  od_program_destroy(sp->student);
  memset(sp, 0, sizeof *sp);
}

/* Input tensors for a graph: only the fed input is given (others are sliced away or an error). */
static enum od_status graph_inputs(const struct od_graph *g, int fed, const struct od_tensor *x, struct od_tensor *in,
                                   const char *model, struct od_err *err) {
  if (g->n_inputs > OD_TRAIN_MAX_INPUTS)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s has more than %d inputs", model, OD_TRAIN_MAX_INPUTS);
  memset(in, 0, sizeof(struct od_tensor) * (size_t)g->n_inputs);
  for (int i = 0; i < g->n_inputs; i++)
    if (g->inputs[i] == fed) in[i] = *x;
  return OD_OK;
}

/* Device copies of the graphs' parameter blocks (once) and of the trainer's block (again when
 * adapters changed its size). */
static enum od_status device_buffers(struct od_trainer *t, struct od_err *err) {
  struct od_device *dev = t->dev;
  if (!t->s_mirror) OD_TRY(od_graph_param_upload(t->student->graph, dev, &t->s_mirror, err));
  if (t->teacher && !t->t_mirror) OD_TRY(od_graph_param_upload(t->teacher->graph, dev, &t->t_mirror, err));
  if (t->dw && t->d_total == t->params.total) return OD_OK;
  if (t->dw) dev->ops->free(dev, t->dw);
  if (t->dg) dev->ops->free(dev, t->dg);
  free(t->g_host);
  t->dw = t->dg = t->g_host = NULL;
  size_t bytes = (t->params.total ? t->params.total : 1) * sizeof(float);
  OD_TRY(dev->ops->alloc(dev, bytes, (void **)&t->dw, err));
  OD_TRY(dev->ops->alloc(dev, bytes, (void **)&t->dg, err));
  t->g_host = malloc(bytes);
  if (!t->g_host) return od_err_set(err, OD_ERR_OOM, "out of memory");
  t->d_total = t->params.total;
  OD_TRY(dev->ops->to_device(dev, t->dw, t->params.w, t->params.total * sizeof(float), err));
  return dev->ops->sync(dev, err);
}

enum od_status od_trainer_upload(struct od_trainer *t, struct od_err *err) {
  if (!t->on_device) return OD_OK;
  struct od_device *dev = t->dev;
  const struct od_graph *sg = t->student->graph;
  if (t->s_mirror && sg->param_bytes) OD_TRY(dev->ops->to_device(dev, t->s_mirror, sg->param_data, sg->param_bytes, err));
  if (t->dw) OD_TRY(dev->ops->to_device(dev, t->dw, t->params.w, t->params.total * sizeof(float), err));
  if (t->dstate)
    OD_TRY(dev->ops->to_device(dev, t->dstate, t->params.state,
                               t->params.total * (size_t)t->params.state_per_param * sizeof(float), err));
  t->host_stale = false;
  return dev->ops->sync(dev, err);
}

enum od_status od_trainer_sync_graph(struct od_trainer *t, struct od_err *err) {
  OD_TRY(od_trainer_device_download(t, err));
  if (t->on_device && t->s_mirror) OD_TRY(od_graph_param_download(t->student->graph, t->dev, t->s_mirror, err));
  od_params_to_graph(&t->params, t->student->graph);
  return OD_OK;
}

static enum od_status compile_size(struct od_trainer *t, int h, int w, struct size_prog *sp, struct od_err *err) {
  const struct od_graph *tg = t->teacher ? t->teacher->graph : NULL, *sg = t->student->graph;
  if (t->on_device) OD_TRY(device_buffers(t, err));
  struct od_tensor x = {.dtype = OD_DTYPE_FLOAT, .rank = 4, .dims = {t->m->train.batch_size, t->channels, h, w}};
  struct od_tensor in[OD_TRAIN_MAX_INPUTS];
  memset(sp, 0, sizeof *sp);
  sp->h = h;
  sp->w = w;
  if (tg) {
    struct od_compile_opts topts = {.dev = t->dev, .pool = t->pool, .keep = t->t_keep, .param_mirror = t->t_mirror};
    OD_TRY(graph_inputs(tg, t->t_input, &x, in, "the teacher", err));
    if (od_program_compile(tg, in, &topts, &sp->teacher, err) != OD_OK) {
      od_err_prefix(err, "teacher %s at %dx%d", t->m->teacher_model, h, w);
      return err->status;
    }
  }
  struct od_compile_opts sopts = {.dev = t->dev, .pool = t->pool, .training = true, .trainable = t->trainable,
                                  .keep = t->s_keep, .param_mirror = t->s_mirror};
  float *w_base = t->on_device ? t->dw : t->params.w, *g_base = t->on_device ? t->dg : t->params.g;
  enum od_status st = graph_inputs(sg, t->s_input, &x, in, "the student", err);
  if (st == OD_OK && od_program_compile(sg, in, &sopts, &sp->student, err) != OD_OK) {
    od_err_prefix(err, "student %s at %dx%d", t->m->student_model, h, w);
    st = err->status;
  }
  for (int i = 0; i < t->params.n && st == OD_OK; i++) {
    const struct od_param *p = &t->params.p[i];
    if (p->value < 0) continue;
    st = od_program_bind_value(sp->student, p->value, w_base + p->offset, err);
    if (st == OD_OK && od_program_requires_grad(sp->student, p->value))
      st = od_program_bind_grad(sp->student, p->value, g_base + p->offset, err);
  }
  if (st != OD_OK) size_prog_free(sp);
  return st;
}

enum od_status od_trainer_program(struct od_trainer *t, int h, int w, struct size_prog **out, struct od_err *err) {
  for (int i = 0; i < t->n_progs; i++)
    if (t->progs[i].h == h && t->progs[i].w == w) {
      *out = &t->progs[i];
      return OD_OK;
    }
  if (t->n_progs == OD_TRAIN_MAX_SIZES) { /* evict the oldest */
    size_prog_free(&t->progs[0]);
    memmove(&t->progs[0], &t->progs[1], sizeof t->progs[0] * (OD_TRAIN_MAX_SIZES - 1));
    t->n_progs--;
  }
  OD_TRY(compile_size(t, h, w, &t->progs[t->n_progs], err));
  *out = &t->progs[t->n_progs++];
  return OD_OK;
}

/* ---- setup -------------------------------------------------------------------------------------- */

/* The graph input the data feeds: data.input when given, else the first input. */
static enum od_status pick_input(const struct od_graph *g, const char *name, const char *model, int *out,
                                 struct od_err *err) {
  if (g->n_inputs == 0) return od_err_set(err, OD_ERR_INVALID_ARG, "%s has no inputs to feed", model);
  if (!name) {
    *out = g->inputs[0];
    return OD_OK;
  }
  int v = od_graph_find_value(g, name);
  for (int i = 0; i < g->n_inputs; i++)
    if (g->inputs[i] == v) {
      *out = v;
      return OD_OK;
    }
  return od_err_set(err, OD_ERR_INVALID_ARG, "data.input: '%s' is not an input of %s (its first input is '%s')", name,
                    model, g->values[g->inputs[0]].name);
}

/* Input H, W: data.size when given (the largest of a multi-scale range), else the student's
 * declared dims. */
static enum od_status input_geometry(struct od_trainer *t, struct od_err *err) {
  const struct od_value *v = &t->student->graph->values[t->s_input];
  if (v->rank != 4)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "student input '%s' is not 4-D NCHW (rank %d): images cannot feed it",
                      v->name, v->rank);
  t->channels = v->dims[1] > 0 ? (int)v->dims[1] : 3;
  if (t->m->data.size_max > 0) {
    t->h = t->w = t->m->data.size_max;
  } else if (v->dims[2] > 0 && v->dims[3] > 0) {
    t->h = (int)v->dims[2];
    t->w = (int)v->dims[3];
  } else {
    return od_err_set(err, OD_ERR_INVALID_ARG,
                      "data.size: the student input '%s' has symbolic H, W; give the training size (e.g. \"size\": 320)",
                      v->name);
  }
  return OD_OK;
}

/* One gradient seed per distinct student value. */
static enum od_status add_seed(struct od_trainer *t, int value, int *index, struct od_err *err) {
  int s = 0;
  while (s < t->n_seeds && t->seeds[s] != value) s++;
  if (s == t->n_seeds) {
    if (t->n_seeds == OD_TRAIN_MAX_SEEDS)
      return od_err_set(err, OD_ERR_UNSUPPORTED, "more than %d distinct student tensors receive a loss",
                        OD_TRAIN_MAX_SEEDS);
    t->seeds[t->n_seeds++] = value;
  }
  t->s_keep[value] = 1;
  *index = s;
  return OD_OK;
}

/* task_loss.outputs: the student's head maps the detection loss reads. */
static enum od_status bind_task(struct od_trainer *t, struct od_err *err) {
  const struct od_task_loss_cfg *tl = &t->m->task_loss;
  if (!tl->enabled) return OD_OK;
  if (tl->n_outputs > OD_TRAIN_MAX_HEADS)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "task_loss.outputs: at most %d outputs", OD_TRAIN_MAX_HEADS);
  for (int i = 0; i < tl->n_outputs; i++) {
    char where[64];
    snprintf(where, sizeof where, "task_loss.outputs[%d]", i);
    OD_TRY(od_ref_resolve(t->student->graph, tl->outputs[i], t->m->student_model, where, &t->heads[i], err));
    OD_TRY(add_seed(t, t->heads[i].value, &t->head_seed[i], err));
  }
  t->n_heads = tl->n_outputs;
  return OD_OK;
}

static enum od_status bind_pairs(struct od_trainer *t, struct od_err *err) {
  const struct od_manifest *m = t->m;
  const struct od_graph *tg = t->teacher ? t->teacher->graph : NULL, *sg = t->student->graph;
  t->pairs = calloc((size_t)m->n_pairs + 1, sizeof *t->pairs);
  t->t_keep = calloc((size_t)(tg ? tg->n_values : 0) + 1, 1);
  t->s_keep = calloc((size_t)sg->n_values + 1, 1);
  if (!t->pairs || !t->t_keep || !t->s_keep) return od_err_set(err, OD_ERR_OOM, "out of memory");
  t->n_pairs = m->n_pairs;
  for (int i = 0; i < m->n_pairs; i++) {
    struct pair_rt *pr = &t->pairs[i];
    pr->cfg = &m->pairs[i];
    pr->arity = od_loss_arity(pr->cfg->loss.kind);
    for (int k = 0; k < pr->arity; k++) {
      char where[64];
      snprintf(where, sizeof where, "pairs[%d].teacher%s", i, k ? "2" : "");
      OD_TRY(od_ref_resolve(tg, pr->cfg->teacher[k], m->teacher_model, where, &pr->tb[k], err));
      snprintf(where, sizeof where, "pairs[%d].student%s", i, k ? "2" : "");
      OD_TRY(od_ref_resolve(sg, pr->cfg->student[k], m->student_model, where, &pr->sb[k], err));
      t->t_keep[pr->tb[k].value] = 1;
      OD_TRY(add_seed(t, pr->sb[k].value, &pr->seed_index[k], err));
    }
  }
  return OD_OK;
}

/* Shapes of the paired tensors at the first size: adapters, and loss shape checks. */
static enum od_status plan_pairs(struct od_trainer *t, struct size_prog *sp, struct od_err *err) {
  if (t->n_heads) {
    const struct od_tensor *X[OD_TRAIN_MAX_HEADS];
    for (int i = 0; i < t->n_heads; i++) {
      X[i] = od_program_value(sp->student, t->heads[i].value);
      if (!od_program_requires_grad(sp->student, t->heads[i].value))
        return od_err_set(err, OD_ERR_INVALID_ARG, "task_loss.outputs[%d]: '%s' does not depend on any trainable parameter",
                          i, t->student->graph->values[t->heads[i].value].name);
    }
    if (od_yolov3_check(&t->m->task_loss, t->n_heads, X, err) != OD_OK) {
      od_err_prefix(err, "task_loss");
      return err->status;
    }
  }
  for (int i = 0; i < t->n_pairs; i++) {
    struct pair_rt *pr = &t->pairs[i];
    const struct od_tensor *S[2], *T[2];
    for (int k = 0; k < pr->arity; k++) {
      S[k] = od_program_value(sp->student, pr->sb[k].value);
      T[k] = od_program_value(sp->teacher, pr->tb[k].value);
      if (!S[k] || !T[k] || !S[k]->dtype || !T[k]->dtype)
        return od_err_set(err, OD_ERR_UNSUPPORTED, "pairs[%d]: the paired tensors' shapes are only known at run time", i);
      if (!od_program_requires_grad(sp->student, pr->sb[k].value))
        return od_err_set(err, OD_ERR_INVALID_ARG,
                          "pairs[%d].student: '%s' does not depend on any trainable parameter (frozen or an input?)", i,
                          t->student->graph->values[pr->sb[k].value].name);
      char prefix[64];
      snprintf(prefix, sizeof prefix, "adapter.pairs[%d]%s", i, k ? ".2" : "");
      enum od_status st = od_adapter_plan(S[k], T[k], pr->cfg->adapter, prefix, t->m->train.seed + (uint64_t)i, &t->params,
                                          &pr->ad[k], err);
      if (st != OD_OK) {
        od_err_prefix(err, "pairs[%d] ('%s' vs '%s')", i, pr->cfg->student[k], pr->cfg->teacher[k]);
        return st;
      }
      pr->s_shape[k] = *S[k];
      pr->t_shape[k] = *T[k];
    }
    /* the loss sees the adapted student shape */
    struct od_tensor A[2];
    const struct od_tensor *Ap[2];
    for (int k = 0; k < pr->arity; k++) {
      A[k] = *T[k];
      A[k].dtype = S[k]->dtype;
      Ap[k] = &A[k];
    }
    if (od_loss_check(&pr->cfg->loss, Ap, T, err) != OD_OK) {
      od_err_prefix(err, "pairs[%d] (%s)", i, od_loss_name(pr->cfg->loss.kind));
      return err->status;
    }
  }
  return OD_OK;
}

enum od_status od_trainer_create(const struct od_manifest *m, const char *resume_dir, struct od_trainer **out,
                                 struct od_err *err) {
  struct od_trainer *t = calloc(1, sizeof *t);
  if (!t) return od_err_set(err, OD_ERR_OOM, "out of memory");
  t->m = m;
  t->best_map = -1;
  enum od_status st = m->teacher_model ? od_model_load(m->teacher_model, &t->teacher, err) : OD_OK;
  if (st == OD_OK) st = od_model_load(m->student_model, &t->student, err);
  if (st == OD_OK) st = od_untie_shared(t->student, m->train.untie_shared, &t->n_untied, err);
  if (st == OD_OK) st = od_device_open(m->train.device, &t->dev, err);
  if (st == OD_OK) {
    t->on_device = t->dev->kind != OD_DEVICE_CPU;
    const char *pr = m->train.precision ? m->train.precision : "fp32";
    t->dev->precision = !strcmp(pr, "tf32") ? OD_PRECISION_TF32 : !strcmp(pr, "bf16") ? OD_PRECISION_BF16 : OD_PRECISION_FP32;
    if (!t->on_device && t->dev->precision != OD_PRECISION_FP32)
      st = od_err_set(err, OD_ERR_INVALID_ARG, "train.precision: \"%s\" needs a CUDA device (train.device is \"%s\")",
                      pr, m->train.device);
  }
  if (st == OD_OK) st = od_pool_create(m->train.threads, &t->pool, err);
  if (st == OD_OK && t->teacher) st = pick_input(t->teacher->graph, m->data.input, m->teacher_model, &t->t_input, err);
  if (st == OD_OK) st = pick_input(t->student->graph, m->data.input, m->student_model, &t->s_input, err);
  if (st == OD_OK) st = input_geometry(t, err);
  if (st == OD_OK) st = bind_pairs(t, err);
  if (st == OD_OK) st = bind_task(t, err);
  if (st == OD_OK)
    st = od_params_from_graph(t->student->graph, (const char *const *)m->train.freeze, m->train.n_freeze,
                              od_optim_state_per_param(m->train.optim.kind), &t->params, err);
  if (st == OD_OK) {
    const struct od_graph *sg = t->student->graph;
    t->trainable = calloc((size_t)sg->n_values + 1, 1);
    if (!t->trainable) st = od_err_set(err, OD_ERR_OOM, "out of memory");
    for (int i = 0; st == OD_OK && i < t->params.n; i++) t->trainable[t->params.p[i].value] = 1;
  }
  /* The first program gives the paired shapes; adapters add parameters, which reallocates the
   * block, so programs are compiled again after planning them. */
  struct size_prog *sp = NULL;
  if (st == OD_OK) st = od_trainer_program(t, t->h, t->w, &sp, err);
  if (st == OD_OK) st = plan_pairs(t, sp, err);
  for (int i = 0; i < t->n_progs; i++) size_prog_free(&t->progs[i]);
  t->n_progs = 0;
  if (st == OD_OK) st = od_trainer_program(t, t->h, t->w, &sp, err);
  if (st == OD_OK && t->on_device && od_trainer_device_step_possible(t)) st = od_trainer_device_setup(t, err);
  if (st == OD_OK)
    st = od_data_open(&m->data, m->train.batch_size, t->channels, t->h, t->w, m->train.seed, &t->data, err);
  if (st == OD_OK && resume_dir) st = od_trainer_load(t, resume_dir, err);
  if (st == OD_OK && resume_dir) st = od_trainer_upload(t, err);
  if (st != OD_OK) {
    od_trainer_destroy(t);
    return st;
  }
  *out = t;
  return OD_OK;
}

/* ---- one step ------------------------------------------------------------------------------------- */

/* Gradient seed buffers sized for the current program's student tensors. */
static enum od_status seed_buffers(struct od_trainer *t, struct size_prog *sp, struct od_err *err) {
  for (int s = 0; s < t->n_seeds; s++) {
    const struct od_tensor *S = od_program_value(sp->student, t->seeds[s]);
    size_t bytes = od_tensor_nbytes(S);
    if (bytes > t->seed_bytes[s]) {
      void *b = realloc(t->seed_grads[s], bytes);
      if (!b) return od_err_set(err, OD_ERR_OOM, "out of memory for gradients");
      t->seed_grads[s] = b;
      t->seed_bytes[s] = bytes;
    }
    memset(t->seed_grads[s], 0, bytes);
  }
  return OD_OK;
}

/* Losses of every pair; gradients go into the seed buffers. */
static enum od_status pair_losses(struct od_trainer *t, struct size_prog *sp, double *total, struct od_err *err) {
  for (int i = 0; i < t->n_pairs; i++) {
    struct pair_rt *pr = &t->pairs[i];
    if (t->dev_step && pr->dev_loss) continue;
    for (int k = 0; k < pr->arity; k++) t->seed_host_used[pr->seed_index[k]] = true;
    struct od_tensor A[2], dA[2];
    const struct od_tensor *Ap[2], *Tp[2];
    struct od_tensor *dAp[2];
    for (int k = 0; k < pr->arity; k++) {
      const struct od_tensor *S = od_program_host_value(sp->student, pr->sb[k].value, err);
      Tp[k] = S ? od_program_host_value(sp->teacher, pr->tb[k].value, err) : NULL;
      if (!S || !Tp[k]) return err->status;
      if (od_adapter_forward(&pr->ad[k], &t->params, S, Tp[k], &A[k], err) != OD_OK) {
        od_err_prefix(err, "pairs[%d] at input %dx%d", i, sp->h, sp->w);
        return err->status;
      }
      Ap[k] = &A[k];
      dA[k] = A[k];
      if (od_adapter_identity(&pr->ad[k])) {
        dA[k].data = t->seed_grads[pr->seed_index[k]];
      } else {
        size_t bytes = od_tensor_nbytes(&A[k]);
        if (bytes > pr->dA_bytes[k]) {
          void *b = realloc(pr->dA[k], bytes);
          if (!b) return od_err_set(err, OD_ERR_OOM, "out of memory");
          pr->dA[k] = b;
          pr->dA_bytes[k] = bytes;
        }
        memset(pr->dA[k], 0, bytes);
        dA[k].data = pr->dA[k];
      }
      dAp[k] = &dA[k];
    }
    double value = 0;
    if (od_loss_eval(&pr->cfg->loss, Ap, Tp, pr->cfg->weight, &value, dAp, err) != OD_OK) {
      od_err_prefix(err, "pairs[%d] (%s)", i, od_loss_name(pr->cfg->loss.kind));
      return err->status;
    }
    for (int k = 0; k < pr->arity; k++)
      if (!od_adapter_identity(&pr->ad[k]))
        od_adapter_backward(&pr->ad[k], &t->params, od_program_host_value(sp->student, pr->sb[k].value, err),
                            pr->dA[k], t->seed_grads[pr->seed_index[k]]);
    pr->last_value = value;
    *total += pr->cfg->weight * value;
  }
  return OD_OK;
}

/* The student's own detection loss on the batch's ground truth. */
static enum od_status task_loss(struct od_trainer *t, struct size_prog *sp, const struct od_batch *b, double *total,
                                struct od_err *err) {
  if (!t->n_heads) return OD_OK;
  const struct od_tensor *X[OD_TRAIN_MAX_HEADS];
  struct od_tensor dX[OD_TRAIN_MAX_HEADS], *dXp[OD_TRAIN_MAX_HEADS];
  for (int i = 0; i < t->n_heads; i++) {
    X[i] = od_program_host_value(sp->student, t->heads[i].value, err);
    if (!X[i]) return err->status;
    dX[i] = *X[i];
    dX[i].data = t->seed_grads[t->head_seed[i]];
    dXp[i] = &dX[i];
  }
  for (int i = 0; i < t->n_heads; i++) t->seed_host_used[t->head_seed[i]] = true;
  double w = t->m->task_loss.weight, value = 0;
  if (od_yolov3_loss_pool(&t->m->task_loss, t->n_heads, X, b, w, &value, dXp, t->pool, err) != OD_OK) {
    od_err_prefix(err, "task_loss (yolov3)");
    return err->status;
  }
  t->task_value = value;
  *total += w * value;
  return OD_OK;
}

enum od_status od_trainer_host_losses(struct od_trainer *t, struct size_prog *sp, const struct od_batch *b,
                                      double *total, struct od_err *err) {
  memset(t->seed_host_used, 0, sizeof t->seed_host_used);
  bool any = t->n_heads > 0;
  for (int i = 0; i < t->n_pairs; i++) any |= !(t->dev_step && t->pairs[i].dev_loss);
  if (!any) return OD_OK; /* every loss runs on the device */
  OD_TRY(seed_buffers(t, sp, err));
  OD_TRY(pair_losses(t, sp, total, err));
  return task_loss(t, sp, b, total, err);
}

/* Teacher and student forward on batch x: on a device the batch is uploaded once and bound to
 * both programs. */
static enum od_status run_forward(struct od_trainer *t, struct size_prog *sp, const struct od_tensor *x,
                                  struct od_err *err) {
  struct od_tensor in[OD_TRAIN_MAX_INPUTS];
  if (t->on_device) {
    size_t bytes = od_tensor_nbytes(x);
    if (bytes > t->dx_bytes) {
      if (t->dx) t->dev->ops->free(t->dev, t->dx);
      t->dx = NULL;
      t->dx_bytes = 0;
      OD_TRY(t->dev->ops->alloc(t->dev, bytes, (void **)&t->dx, err));
      t->dx_bytes = bytes;
    }
    OD_TRY(t->dev->ops->to_device(t->dev, t->dx, x->data, bytes, err));
    if (sp->teacher) OD_TRY(od_program_bind_value(sp->teacher, t->t_input, t->dx, err));
    OD_TRY(od_program_bind_value(sp->student, t->s_input, t->dx, err));
  }
  if (t->teacher) {
    OD_TRY(graph_inputs(t->teacher->graph, t->t_input, x, in, "the teacher", err));
    if ((t->on_device ? od_program_run_bound(sp->teacher, err) : od_program_run(sp->teacher, in, err)) != OD_OK) {
      od_err_prefix(err, "teacher");
      return err->status;
    }
  }
  OD_TRY(graph_inputs(t->student->graph, t->s_input, x, in, "the student", err));
  if ((t->on_device ? od_program_run_bound(sp->student, err) : od_program_run(sp->student, in, err)) != OD_OK) {
    od_err_prefix(err, "student");
    return err->status;
  }
  return OD_OK;
}

/* The student's parameter gradients from the device into the host block (adapter gradients,
 * computed on the host, stay). */
static enum od_status download_grads(struct od_trainer *t, struct od_err *err) {
  OD_TRY(t->dev->ops->to_host(t->dev, t->g_host, t->dg, t->params.total * sizeof(float), err));
  for (int i = 0; i < t->params.n; i++) {
    const struct od_param *p = &t->params.p[i];
    if (p->value >= 0) memcpy(t->params.g + p->offset, t->g_host + p->offset, p->n * sizeof(float));
  }
  return OD_OK;
}

/* Page-locks the data source's batch buffer the first time it is handed out (sources cycle through
 * a few buffers), so the upload is a fast DMA; again when a larger batch size uses more of it. */
static enum od_status pin_batch(struct od_trainer *t, void *images, size_t bytes, struct od_err *err) {
  struct od_device *dev = t->dev;
  if (!t->on_device || !dev->ops->pin || !images) return OD_OK;
  int i = 0;
  while (i < t->n_pinned && t->pinned[i] != images) i++;
  if (i < t->n_pinned && t->pinned_bytes[i] >= bytes) return OD_OK;
  if (i < t->n_pinned) {
    dev->ops->unpin(dev, images);
  } else {
    if (t->n_pinned == 8) return OD_OK; /* more buffers than expected: the rest are copied unpinned */
    t->n_pinned++;
  }
  t->pinned[i] = images;
  t->pinned_bytes[i] = bytes;
  return dev->ops->pin(dev, images, bytes, err);
}

static void unpin_batches(struct od_trainer *t) {
  for (int i = 0; i < t->n_pinned; i++) t->dev->ops->unpin(t->dev, t->pinned[i]);
  t->n_pinned = 0;
}

enum od_status od_trainer_step(struct od_trainer *t, double *loss, struct od_err *err) {
  const struct od_manifest *m = t->m;
  struct od_batch batch;
  OD_TRY(od_data_batch(t->data, t->step, &batch, err));
  OD_TRY(pin_batch(t, batch.images, (size_t)batch.n * batch.c * batch.h * batch.w * sizeof(float), err));
  struct size_prog *sp = NULL;
  OD_TRY(od_trainer_program(t, batch.h, batch.w, &sp, err));
  struct od_tensor x = {.dtype = OD_DTYPE_FLOAT, .rank = 4, .dims = {batch.n, batch.c, batch.h, batch.w},
                        .data = batch.images};
  if (t->dev_step) { /* uploads the batch and runs the forward passes itself (perhaps in a CUDA graph) */
    double total = 0;
    OD_TRY(od_trainer_device_step(t, sp, &x, &batch, &total, err));
    t->last_loss = total;
    t->step++;
    *loss = total;
    return OD_OK;
  }
  OD_TRY(run_forward(t, sp, &x, err));
  memset(t->params.g, 0, t->params.total * sizeof(float));
  if (t->on_device) OD_TRY(t->dev->ops->zero(t->dev, t->dg, t->params.total * sizeof(float), err));
  OD_TRY(seed_buffers(t, sp, err));
  double total = 0;
  OD_TRY(pair_losses(t, sp, &total, err));
  OD_TRY(task_loss(t, sp, &batch, &total, err));
  if (!isfinite(total))
    return od_err_set(err, OD_ERR_INTERNAL, "step %lld: the loss is %g (diverged); lower train.optimizer.lr",
                      (long long)t->step, total);
  if (od_program_backward(sp->student, t->n_seeds, t->seeds, (const void *const *)t->seed_grads, err) != OD_OK) {
    od_err_prefix(err, "student backward");
    return err->status;
  }
  if (t->on_device) OD_TRY(download_grads(t, err));
  double norm = od_grad_norm(t->params.g, t->params.total);
  double scale = m->train.optim.clip_norm > 0 && norm > m->train.optim.clip_norm ? m->train.optim.clip_norm / norm : 1;
  double lr = od_schedule_lr(&m->train.schedule, m->train.optim.lr, t->step);
  int spp = t->params.state_per_param;
  for (int i = 0; i < t->params.n; i++) {
    const struct od_param *p = &t->params.p[i];
    od_optim_update(&m->train.optim, lr, t->step + 1, t->params.w + p->offset, t->params.g + p->offset,
                    t->params.state + p->offset * (size_t)spp, p->n, p->decay, scale);
  }
  if (t->on_device) OD_TRY(t->dev->ops->to_device(t->dev, t->dw, t->params.w, t->params.total * sizeof(float), err));
  t->last_lr = lr;
  t->last_grad_norm = norm;
  t->last_loss = total;
  t->step++;
  *loss = total;
  return OD_OK;
}

/* ---- export and teardown --------------------------------------------------------------------------- */

enum od_status od_trainer_export(struct od_trainer *t, const char *path, struct od_err *err) {
  OD_TRY(od_trainer_sync_graph(t, err));
  return od_model_export(t->student, path, NULL, err);
}

int64_t od_trainer_step_count(const struct od_trainer *t) { return t->step; }

void od_trainer_destroy(struct od_trainer *t) {
  if (!t) return;
  for (int i = 0; i < t->n_progs; i++) size_prog_free(&t->progs[i]);
  for (int i = 0; i < t->n_pairs; i++)
    for (int k = 0; k < 2; k++) {
      od_adapter_free(&t->pairs[i].ad[k]);
      free(t->pairs[i].dA[k]);
    }
  for (int s = 0; s < t->n_seeds; s++) free(t->seed_grads[s]);
  od_trainer_device_free(t);
  if (t->dev && t->n_pinned) unpin_batches(t); /* before the data source frees its buffers */
  if (t->dev) {
    void *dbuf[] = {t->s_mirror, t->t_mirror, t->dw, t->dg, t->dx};
    for (size_t k = 0; k < sizeof dbuf / sizeof dbuf[0]; k++)
      if (dbuf[k]) t->dev->ops->free(t->dev, dbuf[k]);
  }
  free(t->g_host);
  free(t->pairs);
  free(t->t_keep);
  free(t->s_keep);
  free(t->trainable);
  od_params_free(&t->params);
  od_data_close(t->data);
  od_pool_destroy(t->pool);
  od_device_close(t->dev);
  od_model_destroy(t->teacher);
  od_model_destroy(t->student);
  free(t);
}
