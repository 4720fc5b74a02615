/* trainer/step_device.c: the training step on a CUDA device without round trips to the host, and
 * its capture as a CUDA graph.
 *
 * Used when the trainer runs on a device and no adapter has parameters (the usual case: paired
 * tensors of equal shape). Per step, after uploading the batch into the input buffer that both
 * programs are bound to:
 *   1. the teacher and student forward passes;
 *   2. losses the device supports (trainer/train_cuda.h: l2, l1, smooth_l1) read the paired
 *      tensors where they are, write their values into device memory and accumulate their
 *      gradients into device seed buffers; other losses and the YOLOv3 task loss run on the host
 *      (after the forward, reading the tensors back), and their seed gradients are uploaded first
 *      (the device losses then add to them);
 *   3. backward from the device seeds into the device gradient block;
 *   4. the gradient's norm, the clip scale and the total loss, then the optimizer update, on the
 *      device (struct od_cuda_step: lr and the step count reach the kernels through device memory,
 *      the update is skipped when the loss is not finite);
 *   5. one small copy brings the loss values and the norm back for the log.
 * The host copies of the weights and optimizer state fall behind (host_stale) and are brought back
 * by od_trainer_device_download before a checkpoint, an export or an eval.
 *
 * CUDA graphs: when every loss runs on the device (no host loss, no task loss) and every node of
 * both programs runs on the device (od_program_all_on_device), steps 1-4 enqueue the same work
 * with the same arguments every step of a given input size. The first step at a size runs
 * normally (it builds cuDNN's algorithm choice, workspaces and the nodes' state); the second is
 * captured (cudaStreamBeginCapture .. EndCapture, trainer/graph_cuda.cu) and every later one is a
 * single cudaGraphLaunch. One graph per input size (struct od_step_graph in struct size_prog:
 * multi-scale training keeps one per size), destroyed with its programs. A graph bakes in device
 * pointers: the trainer's buffers (batch, seeds, weights, gradients, optimizer state) and the
 * device workspace are compared before each launch, and a graph whose pointers moved is captured
 * again. A capture that fails (a kernel that synchronises or allocates, a status not OK) is
 * discarded, the step runs without it, and that size stays without a graph (one note on stderr):
 * capture never fails a step. OD_CUDA_GRAPHS=0 in the environment turns graphs off. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/trainer_internal.h"

#if defined(OD_HAVE_CUDA) || defined(OD_CUDA_EMU)
#include "trainer/train_cuda.h"

/* The captured step of one input size, and the device pointers it baked in besides its programs'
 * own (a change means capturing again). */
struct od_step_graph {
  struct od_cuda_graph *g;
  int warm;    /* steps run at this size without a graph */
  bool broken; /* a capture failed at this size: no more tries */
  const void *dx, *dw, *dg, *dstate;
  const void *dseed[OD_TRAIN_MAX_SEEDS];
};

bool od_trainer_device_step_possible(const struct od_trainer *t) {
  for (int i = 0; i < t->params.n; i++)
    if (t->params.p[i].value < 0) return false; /* adapter weights live on the host */
  for (int i = 0; i < t->n_pairs; i++)
    for (int k = 0; k < t->pairs[i].arity; k++)
      if (!od_adapter_identity(&t->pairs[i].ad[k])) return false;
  return true;
}

enum od_status od_trainer_device_setup(struct od_trainer *t, struct od_err *err) {
  struct od_device *dev = t->dev;
  size_t state_floats = t->params.total * (size_t)t->params.state_per_param;
  if (state_floats) {
    OD_TRY(dev->ops->alloc(dev, state_floats * sizeof(float), (void **)&t->dstate, err));
    OD_TRY(dev->ops->to_device(dev, t->dstate, t->params.state, state_floats * sizeof(float), err));
  }
  OD_TRY(od_cuda_optim_create(dev, &t->params, &t->dopt, err));
  double weights[OD_TRAIN_MAX_SEEDS];
  int n_dev = 0;
  t->dev_only = t->n_heads == 0;
  for (int i = 0; i < t->n_pairs; i++) {
    struct pair_rt *pr = &t->pairs[i];
    pr->dev_loss = od_cuda_loss_supported(pr->cfg->loss.kind) && n_dev < OD_TRAIN_MAX_SEEDS;
    if (pr->dev_loss) weights[n_dev++] = pr->cfg->weight;
    t->dev_only &= pr->dev_loss;
  }
  OD_TRY(od_cuda_step_create(dev, n_dev, weights, t->m->train.optim.clip_norm, &t->dscal, err));
  const char *e = getenv("OD_CUDA_GRAPHS");
  t->graphs = !(e && e[0] == '0');
  t->dev_step = true;
  return dev->ops->sync(dev, err);
}

void od_trainer_graph_free(struct od_step_graph *sg) {
  if (!sg) return;
  od_cuda_graph_destroy(sg->g);
  free(sg);
}

void od_trainer_device_free(struct od_trainer *t) {
  if (!t->dev) return;
  if (t->dopt) od_cuda_optim_destroy(t->dopt);
  od_cuda_step_destroy(t->dscal);
  if (t->dstate) t->dev->ops->free(t->dev, t->dstate);
  for (int s = 0; s < OD_TRAIN_MAX_SEEDS; s++)
    if (t->dseed[s]) t->dev->ops->free(t->dev, t->dseed[s]);
  t->dopt = NULL;
  t->dscal = NULL;
  t->dstate = NULL;
}

enum od_status od_trainer_device_download(struct od_trainer *t, struct od_err *err) {
  if (!t->dev_step || !t->host_stale) return OD_OK;
  struct od_device *dev = t->dev;
  OD_TRY(dev->ops->to_host(dev, t->params.w, t->dw, t->params.total * sizeof(float), err));
  size_t state_floats = t->params.total * (size_t)t->params.state_per_param;
  if (state_floats) OD_TRY(dev->ops->to_host(dev, t->params.state, t->dstate, state_floats * sizeof(float), err));
  t->host_stale = false;
  return OD_OK;
}

/* ---- the step's parts --------------------------------------------------------------------------- */

/* The batch into the device input buffer (grown when needed), bound to both programs. */
static enum od_status upload_batch(struct od_trainer *t, struct size_prog *sp, const struct od_tensor *x,
                                   struct od_err *err) {
  struct od_device *dev = t->dev;
  size_t bytes = od_tensor_nbytes(x);
  if (bytes > t->dx_bytes) {
    if (t->dx) dev->ops->free(dev, t->dx);
    t->dx = NULL;
    t->dx_bytes = 0;
    OD_TRY(dev->ops->alloc(dev, bytes, (void **)&t->dx, err));
    t->dx_bytes = bytes;
  }
  OD_TRY(dev->ops->to_device(dev, t->dx, x->data, bytes, err));
  if (sp->teacher) OD_TRY(od_program_bind_value(sp->teacher, t->t_input, t->dx, err));
  return od_program_bind_value(sp->student, t->s_input, t->dx, err);
}

static enum od_status forward(struct od_trainer *t, struct size_prog *sp, struct od_err *err) {
  if (sp->teacher && od_program_run_bound(sp->teacher, err) != OD_OK) {
    od_err_prefix(err, "teacher");
    return err->status;
  }
  if (od_program_run_bound(sp->student, err) != OD_OK) {
    od_err_prefix(err, "student");
    return err->status;
  }
  return OD_OK;
}

/* Bytes of seed s at the program's sizes. */
static enum od_status seed_bytes(struct od_trainer *t, struct size_prog *sp, int s, size_t *bytes, struct od_err *err) {
  struct od_tensor shape;
  if (!od_program_shape(sp->student, t->seeds[s], &shape))
    return od_err_set(err, OD_ERR_INTERNAL, "seed %d is not part of the student program", s);
  *bytes = od_tensor_nbytes(&shape);
  return OD_OK;
}

/* Device seed buffers big enough for the current sizes (allocation: never inside a capture). */
static enum od_status seed_buffers(struct od_trainer *t, struct size_prog *sp, struct od_err *err) {
  struct od_device *dev = t->dev;
  for (int s = 0; s < t->n_seeds; s++) {
    size_t bytes = 0;
    OD_TRY(seed_bytes(t, sp, s, &bytes, err));
    if (bytes > t->dseed_bytes[s]) {
      if (t->dseed[s]) dev->ops->free(dev, t->dseed[s]);
      t->dseed[s] = NULL;
      t->dseed_bytes[s] = 0;
      OD_TRY(dev->ops->alloc(dev, bytes, &t->dseed[s], err));
      t->dseed_bytes[s] = bytes;
    }
  }
  return OD_OK;
}

/* The seeds for this step: the host losses' part uploaded, zero elsewhere. */
static enum od_status seeds_init(struct od_trainer *t, struct size_prog *sp, struct od_err *err) {
  struct od_device *dev = t->dev;
  for (int s = 0; s < t->n_seeds; s++) {
    size_t bytes = 0;
    OD_TRY(seed_bytes(t, sp, s, &bytes, err));
    if (t->seed_host_used[s]) OD_TRY(dev->ops->to_device(dev, t->dseed[s], t->seed_grads[s], bytes, err));
    else OD_TRY(dev->ops->zero(dev, t->dseed[s], bytes, err));
  }
  return OD_OK;
}

/* Losses of the pairs that run on the device: values into the step's slots (pair order), gradients
 * into the seeds. */
static enum od_status device_losses(struct od_trainer *t, struct size_prog *sp, struct od_err *err) {
  int slot = 0;
  for (int i = 0; i < t->n_pairs; i++) {
    struct pair_rt *pr = &t->pairs[i];
    if (!pr->dev_loss) continue;
    const struct od_tensor *S = od_program_value(sp->student, pr->sb[0].value);
    const struct od_tensor *T = od_program_value(sp->teacher, pr->tb[0].value);
    if (!S || !T) return od_err_set(err, OD_ERR_INTERNAL, "pairs[%d]: paired tensors not kept", i);
    struct od_tensor dS = *S;
    dS.data = t->dseed[pr->seed_index[0]];
    if (od_cuda_loss_eval_dev(t->dev, &pr->cfg->loss, S, T, pr->cfg->weight, od_cuda_step_loss_slot(t->dscal, slot++),
                              &dS, err) != OD_OK) {
      od_err_prefix(err, "pairs[%d] (%s) on %s", i, od_loss_name(pr->cfg->loss.kind), t->dev->name);
      return err->status;
    }
  }
  return OD_OK;
}

/* Everything after the host losses: seeds, device losses, backward, norm and clip, update. No
 * synchronisation and no allocation when every loss is on the device (seeds are then zeroed). */
static enum od_status after_losses(struct od_trainer *t, struct size_prog *sp, struct od_err *err) {
  struct od_device *dev = t->dev;
  OD_TRY(seeds_init(t, sp, err));
  OD_TRY(device_losses(t, sp, err));
  OD_TRY(dev->ops->zero(dev, t->dg, t->params.total * sizeof(float), err));
  if (od_program_backward_device(sp->student, t->n_seeds, t->seeds, (const void *const *)t->dseed, err) != OD_OK) {
    od_err_prefix(err, "student backward");
    return err->status;
  }
  OD_TRY(od_cuda_step_reduce(t->dscal, t->dg, t->params.total, err));
  return od_cuda_optim_step_dev(t->dopt, &t->m->train.optim, t->dw, t->dg, t->dstate, t->dscal, err);
}

/* The whole step for a device-only step: what a graph captures. */
static enum od_status whole_step(struct od_trainer *t, struct size_prog *sp, struct od_err *err) {
  OD_TRY(forward(t, sp, err));
  return after_losses(t, sp, err);
}

/* ---- graphs ------------------------------------------------------------------------------------------ */

static void graph_snapshot(const struct od_trainer *t, struct od_step_graph *sg) {
  sg->dx = t->dx;
  sg->dw = t->dw;
  sg->dg = t->dg;
  sg->dstate = t->dstate;
  for (int s = 0; s < t->n_seeds; s++) sg->dseed[s] = t->dseed[s];
}

/* Whether sg's graph still addresses the buffers it was captured with. */
static bool graph_current(const struct od_trainer *t, const struct od_step_graph *sg) {
  if (sg->dx != t->dx || sg->dw != t->dw || sg->dg != t->dg || sg->dstate != t->dstate) return false;
  for (int s = 0; s < t->n_seeds; s++)
    if (sg->dseed[s] != t->dseed[s]) return false;
  return od_cuda_graph_current(sg->g);
}

/* Captures the step at sp's size into sg->g; false (sg->broken, a note on stderr) when it fails.
 * Nothing of the captured work has run either way. */
static bool capture(struct od_trainer *t, struct size_prog *sp, struct od_step_graph *sg) {
  struct od_err cerr = {0}, eerr = {0};
  enum od_status st = od_cuda_capture_begin(t->dev, &cerr);
  if (st == OD_OK) {
    st = whole_step(t, sp, &cerr);
    if (od_cuda_capture_end(t->dev, st == OD_OK, &sg->g, &eerr) != OD_OK && st == OD_OK) cerr = eerr;
  }
  if (sg->g) {
    graph_snapshot(t, sg);
    return true;
  }
  sg->broken = true;
  fprintf(stderr, "note: no CUDA graph for the training step at %dx%d (%s); that size runs without one\n", sp->h,
          sp->w, cerr.msg[0] ? cerr.msg : "the capture failed");
  return false;
}

/* Runs the device-only step at sp's size as a graph when it can: true when it did (the work is
 * enqueued), false when the caller must enqueue it normally. */
static bool graph_step(struct od_trainer *t, struct size_prog *sp) {
  if (!t->graphs || !t->dev_only) return false;
  struct od_step_graph *sg = sp->graph;
  if (!sg) {
    sg = sp->graph = calloc(1, sizeof *sg);
    if (!sg) return false;
  }
  if (sg->broken) return false;
  if (sg->g && !graph_current(t, sg)) { /* a buffer moved (grew for another size): capture again */
    od_cuda_graph_destroy(sg->g);
    sg->g = NULL;
  }
  if (!sg->g) {
    if (sg->warm < 1 || !od_program_all_on_device(sp->student) ||
        (sp->teacher && !od_program_all_on_device(sp->teacher))) {
      sg->warm++;
      return false;
    }
    if (!capture(t, sp, sg)) return false;
  }
  struct od_err lerr = {0};
  if (od_cuda_graph_launch(sg->g, &lerr) == OD_OK) return true;
  fprintf(stderr, "note: the CUDA graph of the training step at %dx%d did not launch (%s); that size runs without one\n",
          sp->h, sp->w, lerr.msg);
  od_cuda_graph_destroy(sg->g);
  sg->g = NULL;
  sg->broken = true;
  return false;
}

/* ---- the step ------------------------------------------------------------------------------------------ */

enum od_status od_trainer_device_step(struct od_trainer *t, struct size_prog *sp, const struct od_tensor *x,
                                      const struct od_batch *b, double *total, struct od_err *err) {
  const struct od_manifest *m = t->m;
  *total = 0;
  t->last_graph = false;
  OD_TRY(upload_batch(t, sp, x, err));
  OD_TRY(seed_buffers(t, sp, err));
  double lr = od_schedule_lr(&m->train.schedule, m->train.optim.lr, t->step), host_total = 0;
  memset(t->seed_host_used, 0, sizeof t->seed_host_used);
  if (t->dev_only) {
    OD_TRY(od_cuda_step_set(t->dscal, &m->train.optim, lr, t->step + 1, 0, err));
    if (graph_step(t, sp)) t->last_graph = true;
    else OD_TRY(whole_step(t, sp, err));
  } else {
    OD_TRY(forward(t, sp, err));
    OD_TRY(od_trainer_host_losses(t, sp, b, &host_total, err));
    OD_TRY(od_cuda_step_set(t->dscal, &m->train.optim, lr, t->step + 1, host_total, err));
    OD_TRY(after_losses(t, sp, err));
  }
  double values[OD_TRAIN_MAX_SEEDS];
  struct od_cuda_step_result r;
  OD_TRY(od_cuda_step_read(t->dscal, values, &r, err));
  for (int i = 0, slot = 0; i < t->n_pairs; i++)
    if (t->pairs[i].dev_loss) t->pairs[i].last_value = values[slot++];
  *total = r.total;
  if (!r.finite) /* the device skipped the update */
    return od_err_set(err, OD_ERR_INTERNAL, "step %lld: the loss is %g (diverged); lower train.optimizer.lr",
                      (long long)t->step, r.total);
  t->host_stale = true;
  t->last_lr = lr;
  t->last_grad_norm = r.norm;
  return OD_OK;
}

#else /* a build without CUDA: no device can be opened, so none of this runs */

bool od_trainer_device_step_possible(const struct od_trainer *t) { return false; }
enum od_status od_trainer_device_setup(struct od_trainer *t, struct od_err *err) {
  return od_err_set(err, OD_ERR_NO_DEVICE, "this build has no CUDA support");
}
enum od_status od_trainer_device_step(struct od_trainer *t, struct size_prog *sp, const struct od_tensor *x,
                                      const struct od_batch *b, double *total, struct od_err *err) {
  return od_err_set(err, OD_ERR_NO_DEVICE, "this build has no CUDA support");
}
enum od_status od_trainer_device_download(struct od_trainer *t, struct od_err *err) { return OD_OK; }
void od_trainer_device_free(struct od_trainer *t) {}
void od_trainer_graph_free(struct od_step_graph *sg) {}

#endif
