/* trainer/optim.h: optimizers and learning-rate schedules over the parameter block.
 *
 * The trainer keeps every trainable parameter in one float block, with gradients and optimizer
 * state in the same layout (llm.c's params_memory), so each update is one loop per parameter
 * tensor. Weight decay is per tensor: the reference method excludes BatchNormalization scale and
 * bias and conv/linear biases (decay = false for those). */
#ifndef OD_OPTIM_H
#define OD_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/status.h"

enum od_optim_kind { OD_OPTIM_SGD, OD_OPTIM_MOMENTUM, OD_OPTIM_ADAM, OD_OPTIM_ADAMW };

struct od_optim_cfg {
  enum od_optim_kind kind;
  double lr;            /* base learning rate */
  double momentum;      /* momentum: 0.9 */
  bool nesterov;
  double beta1, beta2, eps; /* adam/adamw: 0.9, 0.999, 1e-8 */
  double weight_decay;  /* sgd/momentum/adam: L2 added to the gradient; adamw: decoupled */
  double clip_norm;     /* global gradient-norm clipping; 0 = off */
};

enum od_schedule_kind { OD_SCHED_CONSTANT, OD_SCHED_PIECEWISE, OD_SCHED_COSINE };

#define OD_MAX_MILESTONES 16

struct od_schedule_cfg {
  enum od_schedule_kind kind;
  int64_t warmup_steps;      /* linear warmup from warmup_factor * lr to lr */
  double warmup_factor;      /* PaddleDetection's LinearWarmup start_factor: 0.0 */
  int64_t milestones[OD_MAX_MILESTONES]; /* piecewise: lr *= gamma at each */
  int n_milestones;
  double gamma;              /* 0.1 */
  int64_t total_steps;       /* cosine: decays to min_lr at total_steps */
  double min_lr;
};

/* Defaults above (momentum SGD, lr 0.001, constant schedule). */
void od_optim_cfg_default(struct od_optim_cfg *c);
void od_schedule_cfg_default(struct od_schedule_cfg *s);

/* Learning rate at step (0-based) for base lr. */
double od_schedule_lr(const struct od_schedule_cfg *s, double base_lr, int64_t step);

/* Floats of optimizer state per parameter element (0 sgd, 1 momentum, 2 adam/adamw). */
int od_optim_state_per_param(enum od_optim_kind kind);

/* sqrt(sum g^2) over n floats (double accumulation). */
double od_grad_norm(const float *g, size_t n);

/* One update of n parameters w with gradient g and state (n * state_per_param floats, zero at
 * start) at learning rate lr; step is the 1-based update count (Adam bias correction). decay says
 * whether weight decay applies to this tensor. grad_scale multiplies g first (clipping). */
void od_optim_update(const struct od_optim_cfg *c, double lr, int64_t step, float *w, const float *g,
                     float *state, size_t n, bool decay, double grad_scale);

#endif
