/* trainer/step_device.c: the training step on a CUDA device without round trips to the host.
 *
 * Used when the trainer runs on a device and no adapter has parameters (the usual case: paired
 * tensors of equal shape). Per step, after the forward passes:
 *   1. losses the device supports (trainer/train_cuda.h: l2, l1, smooth_l1) read the paired
 *      tensors where they are and accumulate their gradients into device seed buffers; other
 *      losses and the YOLOv3 task loss run on the host as before, and their seed gradients are
 *      uploaded first (the device losses then add to them);
 *   2. backward from the device seeds into the device gradient block;
 *   3. the gradient norm (for clipping and the log) and the optimizer update run on the device.
 * The host copies of the weights and optimizer state fall behind (host_stale) and are brought back
 * by od_trainer_device_download before a checkpoint, an export or an eval. The value of each loss
 * comes back as one float per pair (a small synchronising copy). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/trainer_internal.h"

#if defined(OD_HAVE_CUDA) || defined(OD_CUDA_EMU)
#include "trainer/train_cuda.h"

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
  for (int i = 0; i < t->n_pairs; i++) t->pairs[i].dev_loss = od_cuda_loss_supported(t->pairs[i].cfg->loss.kind);
  t->dev_step = true;
  return dev->ops->sync(dev, err);
}

void od_trainer_device_free(struct od_trainer *t) {
  if (!t->dev) return;
  if (t->dopt) od_cuda_optim_destroy(t->dopt);
  if (t->dstate) t->dev->ops->free(t->dev, t->dstate);
  for (int s = 0; s < OD_TRAIN_MAX_SEEDS; s++)
    if (t->dseed[s]) t->dev->ops->free(t->dev, t->dseed[s]);
  t->dopt = NULL;
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

/* Device seed buffers for the current sizes: the host losses' part uploaded, zero elsewhere. */
static enum od_status device_seeds(struct od_trainer *t, struct size_prog *sp, struct od_err *err) {
  struct od_device *dev = t->dev;
  for (int s = 0; s < t->n_seeds; s++) {
    struct od_tensor shape;
    if (!od_program_shape(sp->student, t->seeds[s], &shape))
      return od_err_set(err, OD_ERR_INTERNAL, "seed %d is not part of the student program", s);
    size_t bytes = od_tensor_nbytes(&shape);
    if (bytes > t->dseed_bytes[s]) {
      if (t->dseed[s]) dev->ops->free(dev, t->dseed[s]);
      t->dseed[s] = NULL;
      t->dseed_bytes[s] = 0;
      OD_TRY(dev->ops->alloc(dev, bytes, &t->dseed[s], err));
      t->dseed_bytes[s] = bytes;
    }
    if (t->seed_host_used[s]) OD_TRY(dev->ops->to_device(dev, t->dseed[s], t->seed_grads[s], bytes, err));
    else OD_TRY(dev->ops->zero(dev, t->dseed[s], bytes, err));
  }
  return OD_OK;
}

static enum od_status device_losses(struct od_trainer *t, struct size_prog *sp, double *total, struct od_err *err) {
  for (int i = 0; i < t->n_pairs; i++) {
    struct pair_rt *pr = &t->pairs[i];
    if (!pr->dev_loss) continue;
    const struct od_tensor *S = od_program_value(sp->student, pr->sb[0].value);
    const struct od_tensor *T = od_program_value(sp->teacher, pr->tb[0].value);
    if (!S || !T) return od_err_set(err, OD_ERR_INTERNAL, "pairs[%d]: paired tensors not kept", i);
    struct od_tensor dS = *S;
    dS.data = t->dseed[pr->seed_index[0]];
    double value = 0;
    if (od_cuda_loss_eval(t->dev, &pr->cfg->loss, S, T, pr->cfg->weight, &value, &dS, err) != OD_OK) {
      od_err_prefix(err, "pairs[%d] (%s) on %s", i, od_loss_name(pr->cfg->loss.kind), t->dev->name);
      return err->status;
    }
    pr->last_value = value;
    *total += pr->cfg->weight * value;
  }
  return OD_OK;
}

enum od_status od_trainer_device_step(struct od_trainer *t, struct size_prog *sp, const struct od_batch *b,
                                      double *total, struct od_err *err) {
  const struct od_manifest *m = t->m;
  struct od_device *dev = t->dev;
  *total = 0;
  OD_TRY(od_trainer_host_losses(t, sp, b, total, err));
  OD_TRY(device_seeds(t, sp, err));
  OD_TRY(device_losses(t, sp, total, err));
  if (!isfinite(*total))
    return od_err_set(err, OD_ERR_INTERNAL, "step %lld: the loss is %g (diverged); lower train.optimizer.lr",
                      (long long)t->step, *total);
  OD_TRY(dev->ops->zero(dev, t->dg, t->params.total * sizeof(float), err));
  if (od_program_backward_device(sp->student, t->n_seeds, t->seeds, (const void *const *)t->dseed, err) != OD_OK) {
    od_err_prefix(err, "student backward");
    return err->status;
  }
  double sumsq = 0;
  OD_TRY(od_cuda_sumsq(dev, t->dg, t->params.total, &sumsq, err));
  double norm = sqrt(sumsq);
  double scale = m->train.optim.clip_norm > 0 && norm > m->train.optim.clip_norm ? m->train.optim.clip_norm / norm : 1;
  double lr = od_schedule_lr(&m->train.schedule, m->train.optim.lr, t->step);
  OD_TRY(od_cuda_optim_step(t->dopt, &m->train.optim, lr, t->step + 1, t->dw, t->dg, t->dstate, scale, err));
  t->host_stale = true;
  t->last_lr = lr;
  t->last_grad_norm = norm;
  return OD_OK;
}

#else /* a build without CUDA: no device can be opened, so none of this runs */

bool od_trainer_device_step_possible(const struct od_trainer *t) { return false; }
enum od_status od_trainer_device_setup(struct od_trainer *t, struct od_err *err) {
  return od_err_set(err, OD_ERR_NO_DEVICE, "this build has no CUDA support");
}
enum od_status od_trainer_device_step(struct od_trainer *t, struct size_prog *sp, const struct od_batch *b,
                                      double *total, struct od_err *err) {
  return od_err_set(err, OD_ERR_NO_DEVICE, "this build has no CUDA support");
}
enum od_status od_trainer_device_download(struct od_trainer *t, struct od_err *err) { return OD_OK; }
void od_trainer_device_free(struct od_trainer *t) {}

#endif
