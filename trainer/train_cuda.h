/* trainer/train_cuda.h: the trainer's per-step math on a CUDA device, so that a distillation step
 * on the GPU never copies activations, gradients or parameters to the host:
 *   - the elementwise distillation losses (value and gradient in one pass over S and T;
 *     trainer/loss_cuda.cu),
 *   - the optimizer update of the whole parameter block in one launch, and the sum of squares of
 *     the gradient for its norm (trainer/optim_cuda.cu),
 *   - graph-safe variants of all three that keep every per-step number on the device (the step's
 *     scalars, struct od_cuda_step), and the capture of a step as a CUDA graph
 *     (trainer/graph_cuda.cu), so that a step with fixed shapes is one cudaGraphLaunch.
 * Same semantics as the CPU functions they mirror (trainer/loss.h, trainer/optim.h); the tests
 * (tests/test_train_cuda.c, tests/test_cuda_graphs.c) compare them. Every tensor and array pointer
 * here is DEVICE memory of dev (float32); all work goes on od_cuda_stream(dev). Only
 * od_cuda_loss_eval, od_cuda_sumsq and od_cuda_step_read wait for the stream (to return a number);
 * everything else is asynchronous, and the _dev functions and od_cuda_step_reduce neither wait nor
 * pass per-step values as kernel arguments: they can be captured in a graph and replayed.
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

/* ---- the graph-safe step: every per-step number stays on the device ---- */

/* od_cuda_loss_eval without the wait: the value (a double, the same number od_cuda_loss_eval
 * returns) is written to *d_value, device memory. Same checks and errors. */
enum od_status od_cuda_loss_eval_dev(struct od_device *dev, const struct od_loss_params *p, const struct od_tensor *S,
                                     const struct od_tensor *T, double scale, double *d_value, struct od_tensor *dS,
                                     struct od_err *err);

/* od_cuda_sumsq without the wait: the sum goes to *d_out (device memory; n = 0 writes 0). */
enum od_status od_cuda_sumsq_dev(struct od_device *dev, const float *x, size_t n, double *d_out, struct od_err *err);

/* The scalars of one training step in device memory (trainer/optim_cuda.cu): the values of
 * n_losses device losses, their weights, the host's part of the loss, the optimizer's per-step
 * numbers (lr, bias corrections), the gradient's sum of squares, norm and clip scale. */
struct od_cuda_step;

/* For n_losses device losses weighted weights[i] (uploaded once), the gradient clipped to norm
 * clip_norm (<= 0: not clipped). Allocates device and pinned host memory (call outside captures). */
enum od_status od_cuda_step_create(struct od_device *dev, int n_losses, const double *weights, double clip_norm,
                                   struct od_cuda_step **out, struct od_err *err);

/* Frees it; NULL is a no-op. */
void od_cuda_step_destroy(struct od_cuda_step *s);

/* Where loss i writes its value (od_cuda_loss_eval_dev's d_value), 0 <= i < n_losses. */
double *od_cuda_step_loss_slot(struct od_cuda_step *s, int i);

/* The host's numbers of this step: lr and step (1-based, for Adam's bias corrections; computed on
 * the host exactly as od_cuda_optim_step computes them) and host_total (the sum of the weighted
 * losses computed on the host, 0 when none). Staged in pinned memory and copied to the device on
 * the stream, so they reach whatever is enqueued next (a graph launch included). Waits only for
 * the previous step's copy. Not inside a capture. */
enum od_status od_cuda_step_set(struct od_cuda_step *s, const struct od_optim_cfg *c, double lr, int64_t step,
                                double host_total, struct od_err *err);

/* After the backward pass, on the device: the sum of squares of the gradient g (n floats), its
 * norm, the clip scale (clip_norm / norm when the norm exceeds clip_norm, else 1), and the total
 * loss host_total + sum weights[i] * value[i] in that order (as the host adds them) and whether
 * it is finite. Graph-safe. */
enum od_status od_cuda_step_reduce(struct od_cuda_step *s, const float *g, size_t n, struct od_err *err);

/* od_cuda_optim_step with lr, step and grad_scale read on the device from s (od_cuda_step_set,
 * od_cuda_step_reduce); the update is skipped when the total loss is not finite (a diverged step
 * leaves the weights as they were, as the host step does). Graph-safe. */
enum od_status od_cuda_optim_step_dev(struct od_cuda_optim *o, const struct od_optim_cfg *c, float *w, const float *g,
                                      float *state, const struct od_cuda_step *s, struct od_err *err);

/* The numbers of the step just run, with one small copy (waits for the stream). values: n_losses
 * doubles, or NULL. */
struct od_cuda_step_result {
  double total;      /* host_total + sum of the weighted device losses */
  double norm;       /* of the gradient, before clipping */
  double grad_scale; /* the clip scale applied */
  bool finite;       /* total is finite (else the update was skipped) */
};
enum od_status od_cuda_step_read(struct od_cuda_step *s, double *values, struct od_cuda_step_result *r,
                                 struct od_err *err);

/* ---- CUDA graphs of a step (trainer/graph_cuda.cu) ---- */

/* An instantiated graph (cudaGraphExec_t) of work captured on a device's stream. */
struct od_cuda_graph;

/* Starts capturing dev's stream (cudaStreamCaptureModeThreadLocal): from here until
 * od_cuda_capture_end, the work enqueued on the stream is recorded, not run, and calls that
 * would synchronise or allocate on this thread fail (the capture is then invalid). */
enum od_status od_cuda_capture_begin(struct od_device *dev, struct od_err *err);

/* Ends the capture. ok: whether everything enqueued since the begin succeeded (false: the capture
 * is discarded). *out: the instantiated graph, or NULL when !ok or the capture failed (then err
 * says why and the status is OD_ERR_CUDA). Always leaves the stream out of capture mode and clears
 * the CUDA error state, so the caller can run the same work again without a graph. */
enum od_status od_cuda_capture_end(struct od_device *dev, bool ok, struct od_cuda_graph **out, struct od_err *err);

/* Runs the graph on its device's stream (asynchronously). A launch that fails enqueues nothing and
 * leaves no CUDA error behind. */
enum od_status od_cuda_graph_launch(struct od_cuda_graph *g, struct od_err *err);

/* Whether the device workspace (od_cuda_workspace) is still the one the graph was captured with
 * (false: it grew since, and the graph's kernels would use freed memory: capture again). */
bool od_cuda_graph_current(const struct od_cuda_graph *g);

/* Operations recorded in the graph (kernels, copies, memsets, library calls). */
size_t od_cuda_graph_size(const struct od_cuda_graph *g);

/* Destroys it; NULL is a no-op. */
void od_cuda_graph_destroy(struct od_cuda_graph *g);

#ifdef __cplusplus
}
#endif

#endif
