/* trainer/optim.c: SGD, momentum (and Nesterov), Adam, AdamW; learning-rate schedules.
 *
 * Update rules (g already scaled by grad_scale for clipping; wd = weight decay when enabled):
 *   sgd       g' = g + wd w;  w -= lr g'
 *   momentum  g' = g + wd w;  v = mu v + g';  w -= lr v                  (PaddlePaddle/PyTorch form)
 *   nesterov  g' = g + wd w;  v = mu v + g';  w -= lr (g' + mu v)
 *   adam      g' = g + wd w;  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;
 *             w -= lr m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
 *   adamw     as adam on g, then w -= lr wd w  (decoupled, Loshchilov & Hutter)
 * Schedules: linear warmup from warmup_factor * lr over warmup_steps (PaddleDetection's
 * LinearWarmup), then constant, piecewise (lr * gamma^k after k milestones) or cosine
 * (min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2 over the steps after warmup). */
#include "trainer/optim.h"

#include <math.h>

void od_optim_cfg_default(struct od_optim_cfg *c) {
  *c = (struct od_optim_cfg){.kind = OD_OPTIM_MOMENTUM, .lr = 0.001, .momentum = 0.9, .beta1 = 0.9,
                             .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0, .clip_norm = 0};
}

void od_schedule_cfg_default(struct od_schedule_cfg *s) {
  *s = (struct od_schedule_cfg){.kind = OD_SCHED_CONSTANT, .warmup_factor = 0.0, .gamma = 0.1};
}

double od_schedule_lr(const struct od_schedule_cfg *s, double base_lr, int64_t step) {
  double lr = base_lr;
  switch (s->kind) {
    case OD_SCHED_CONSTANT: break;
    case OD_SCHED_PIECEWISE:
      for (int i = 0; i < s->n_milestones; i++)
        if (step >= s->milestones[i]) lr *= s->gamma;
      break;
    case OD_SCHED_COSINE: {
      int64_t span = s->total_steps - s->warmup_steps;
      double t = span > 0 ? (double)(step - s->warmup_steps) / (double)span : 1.0;
      if (t < 0) t = 0;
      if (t > 1) t = 1;
      lr = s->min_lr + (base_lr - s->min_lr) * 0.5 * (1 + cos(M_PI * t));
      break;
    }
  }
  if (step < s->warmup_steps && s->warmup_steps > 0) {
    double a = (double)step / (double)s->warmup_steps;
    lr *= s->warmup_factor + (1 - s->warmup_factor) * a;
  }
  return lr;
}

int od_optim_state_per_param(enum od_optim_kind kind) {
  switch (kind) {
    case OD_OPTIM_SGD: return 0;
    case OD_OPTIM_MOMENTUM: return 1;
    default: return 2;
  }
}

double od_grad_norm(const float *g, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
  return sqrt(s);
}

void od_optim_update(const struct od_optim_cfg *c, double lr, int64_t step, float *w, const float *g,
                     float *state, size_t n, bool decay, double grad_scale) {
  double wd = decay ? c->weight_decay : 0;
  float flr = (float)lr, fs = (float)grad_scale;
  switch (c->kind) {
    case OD_OPTIM_SGD:
      for (size_t i = 0; i < n; i++) w[i] -= flr * (fs * g[i] + (float)wd * w[i]);
      break;
    case OD_OPTIM_MOMENTUM: {
      float mu = (float)c->momentum;
      for (size_t i = 0; i < n; i++) {
        float gi = fs * g[i] + (float)wd * w[i];
        float v = mu * state[i] + gi;
        state[i] = v;
        w[i] -= flr * (c->nesterov ? gi + mu * v : v);
      }
      break;
    }
    case OD_OPTIM_ADAM:
    case OD_OPTIM_ADAMW: {
      bool decoupled = c->kind == OD_OPTIM_ADAMW;
      double b1 = c->beta1, b2 = c->beta2;
      double c1 = 1 - pow(b1, (double)step), c2 = 1 - pow(b2, (double)step);
      float *m = state, *v = state + n;
      for (size_t i = 0; i < n; i++) {
        float gi = fs * g[i] + (decoupled ? 0.0f : (float)wd * w[i]);
        m[i] = (float)(b1 * m[i] + (1 - b1) * gi);
        v[i] = (float)(b2 * v[i] + (1 - b2) * (double)gi * gi);
        double mh = m[i] / c1, vh = v[i] / c2;
        w[i] -= (float)(lr * mh / (sqrt(vh) + c->eps));
        if (decoupled) w[i] -= (float)(lr * wd) * w[i];
      }
      break;
    }
  }
}
