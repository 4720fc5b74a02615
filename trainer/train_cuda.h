/* trainer/train_cuda.h: the trainer's per-step math on a CUDA device, so that a distillation step
 * on the GPU never copies activations, gradients or parameters to the host:
 *   - the elementwise distillation losses (value and gradient in one pass over S and T;
 *     trainer/loss_cuda.cu),
 *   - the optimizer update of the whole parameter block in one launch, and the sum of squares of
 *     the gradient for its norm (trainer/optim_cuda.cu).
 * Same semantics as the CPU functions they mirror (trainer/loss.h, trainer/optim.h); the tests
 * (tests/test_train_cuda.c) compare them. Every tensor and array pointer here is DEVICE memory of
 * dev (float32); all work goes on od_cuda_stream(dev). Only od_cuda_loss_eval and od_cuda_sumsq
 * wait for the stream (to return a number); the optimizer step is asynchronous.
 *
 * Built into odcore when OD_CUDA is on (OD_HAVE_CUDA) and into odcore_emu (OD_CUDA_EMU); a build
 * without either has no definitions: callers guard with
 * `#if defined(OD_HAVE_CUDA) || defined(OD_CUDA_EMU)`. No CUDA types in this header. */
#ifndef OD_TRAIN_CUDA_H
#define OD_TRAIN_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/device.h"
#include "runtime/status.h"
#include "runtime/tensor.h"
#include "trainer/loss.h"
#include "trainer/optim.h"
#include "trainer/params.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- losses (trainer/loss_cuda.cu) ---- */

/* True for the kinds od_cuda_loss_eval computes on the device: l2, l1, smooth_l1. */
bool od_cuda_loss_supported(enum od_loss_kind kind);

/* od_loss_eval for one tensor per side on the device: *value = L(S, T) (host double, the loss
 * without scale); when dS is non-NULL, dS += scale * dL/dS. S, T, dS: float32 tensors of the same
 * shape whose data is device memory. The same checks and messages as od_loss_eval; a kind that
 * od_cuda_loss_supported refuses, or a dtype other than float32, gives OD_ERR_UNSUPPORTED. Waits
 * for the stream (the value is copied back). */
enum od_status od_cuda_loss_eval(struct od_device *dev, const struct od_loss_params *p, const struct od_tensor *S,
                                 const struct od_tensor *T, double scale, double *value, struct od_tensor *dS,
                                 struct od_err *err);

/* ---- optimizer (trainer/optim_cuda.cu) ---- */

/* The parameter tensors' layout (offset, n, decay of every od_param), uploaded once. */
struct od_cuda_optim;

/* Builds the device-side table of ps's parameter tensors (ps->p[i].offset, .n, .decay; the
 * parameter block itself is not read). ps must not change afterwards (rebuild after
 * od_params_add). */
enum od_status od_cuda_optim_create(struct od_device *dev, const struct od_params *ps, struct od_cuda_optim **out,
                                    struct od_err *err);

/* od_optim_update(c, lr, step, w + p.offset, g + p.offset, state + p.offset * spp, p.n, p.decay,
 * grad_scale) for every parameter tensor p, in one launch, asynchronously on the device's stream.
 * w, g, state: device arrays of the whole block (state: total * od_optim_state_per_param(c->kind)
 * floats, laid out as the CPU lays it out, so checkpoints are interchangeable; may be NULL for sgd).
 * The arithmetic is the CPU's, operation for operation and without fused multiply-adds, so the
 * results are expected to match the CPU bit for bit. */
enum od_status od_cuda_optim_step(struct od_cuda_optim *o, const struct od_optim_cfg *c, double lr, int64_t step,
                                  float *w, const float *g, float *state, double grad_scale, struct od_err *err);

/* Frees the table; NULL is a no-op. Call before closing the device. */
void od_cuda_optim_destroy(struct od_cuda_optim *o);

/* *out = sum of x[i]^2 over n device floats (float32 partial sums per block, combined in double);
 * sqrt of it is od_grad_norm. n = 0 gives 0. Waits for the stream. */
enum od_status od_cuda_sumsq(struct od_device *dev, const float *x, size_t n, double *out, struct od_err *err);

#ifdef __cplusplus
}
#endif

#endif
