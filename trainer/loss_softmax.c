/* trainer/loss_softmax.c: the softmax losses kd, soft_label and cwd. Float or double tensors; sums
 * in double; log-softmax as x - max - log(sum(exp(x - max))).
 *
 * A "row" is one softmax: the K elements along the softmax axis at one position of the other dims.
 * R = number of rows. p_s = softmax(s / tau_s), p_t = softmax(t / tau_t) along the row.
 *
 *   kd          L = tau^2 / R * sum_rows sum_k p_t (log p_t - log p_s),  tau_s = tau_t = temperature
 *               dL/ds_k = tau / R * (p_s,k sum(p_t) - p_t,k)
 *     The axis is `axis` (default -1; negatives count from the end; NCHW maps: axis = 1).
 *     Reduction: KL summed over the classes, averaged over every other position (R = product of the
 *     non-axis dims). For [N, C] logits R = N, which is exactly torchdistill KDLoss /
 *     mmrazor KLDivergence (F.kl_div(..., reduction="batchmean") * tau^2, Hinton et al. 2015).
 *     For maps ([N, C, H, W] with axis = 1) PyTorch's batchmean would divide by N only; we divide by
 *     N*H*W so the value does not grow with the map size and matches soft_label's row mean (multiply
 *     the pair weight by H*W for the batchmean scale).
 *   soft_label  L = 1 / R * sum_rows -sum_k p_t,k log p_s,k,  tau_s = temperature,
 *               tau_t = teacher_temperature (0: temperature); no tau^2 factor
 *               (PaddleSlim soft_label_loss: mean(cross_entropy(softmax(s/T_s), softmax(t/T_t),
 *               soft_label=True)); Paddle uses the last axis, here `axis`, default -1 = the same)
 *               dL/ds_k = 1 / (R tau_s) * (p_s,k sum(p_t) - p_t,k)
 *   cwd         channel-wise distillation (Shu et al. 2021; mmrazor ChannelWiseDivergence):
 *               rows are the N*C channels of [N, C, H, W...], softmax over the H*W positions,
 *               L = tau^2 / (N C) * sum_{n,c} KL(p_t || p_s): kd with R = N*C, K = H*W.
 */
#include <math.h>
#include <stdlib.h>

#include "trainer/loss_internal.h"

/* Log-softmax of x[0..k) / tau into lp and softmax into pr (x read with stride `stride` from t at
 * `base`). */
static void log_softmax(const struct od_tensor *t, int64_t base, int64_t stride, int64_t k, double tau, double *lp,
                        double *pr) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < k; j++) {
    lp[j] = od_loss_x(t, base + j * stride) / tau;
    if (lp[j] > mx) mx = lp[j];
  }
  double z = 0.0;
  for (int64_t j = 0; j < k; j++) {
    lp[j] -= mx;
    pr[j] = exp(lp[j]);
    z += pr[j];
  }
  double lz = log(z), iz = 1.0 / z;
  for (int64_t j = 0; j < k; j++) {
    lp[j] -= lz;
    pr[j] *= iz;
  }
}

/* Rows are (o, i) for o < outer, i < inner; the row's K elements are at (o*K + j)*inner + i. */
static enum od_status softmax_rows(const struct od_loss_params *p, const struct od_tensor *s,
                                   const struct od_tensor *t, int64_t outer, int64_t k, int64_t inner,
                                   double scale, double *value, struct od_tensor *g, struct od_err *err) {
  bool kl = p->kind != OD_LOSS_SOFT_LABEL;
  double tau_s = p->temperature;
  double tau_t = kl || p->teacher_temperature == 0 ? p->temperature : p->teacher_temperature;
  double rows = (double)(outer * inner);
  /* value factor and gradient factor (see the header) */
  double fv = kl ? tau_s * tau_s / rows : 1.0 / rows;
  double fg = scale * (kl ? tau_s / rows : 1.0 / (rows * tau_s));
  double *ls = malloc(4 * (size_t)k * sizeof *ls);
  if (!ls) return od_err_set(err, OD_ERR_OOM, "%s: out of memory", od_loss_name(p->kind));
  double *lt = ls + k, *ps = ls + 2 * k, *pt = ls + 3 * k, sum = 0.0;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * k * inner + i;
      log_softmax(s, base, inner, k, tau_s, ls, ps);
      log_softmax(t, base, inner, k, tau_t, lt, pt);
      double row = 0.0, sum_pt = 0.0;
      for (int64_t j = 0; j < k; j++) {
        sum_pt += pt[j];
        row += kl ? pt[j] * (lt[j] - ls[j]) : -pt[j] * ls[j];
      }
      sum += row;
      if (!g) continue;
      for (int64_t j = 0; j < k; j++)
        od_loss_g(g, base + j * inner, fg * (ps[j] * sum_pt - pt[j]));
    }
  free(ls);
  *value = fv * sum;
  return OD_OK;
}

enum od_status od_loss_eval_softmax(const struct od_loss_params *p, const struct od_tensor *const *S,
                                    const struct od_tensor *const *T, double scale, double *value,
                                    struct od_tensor *const *dS, struct od_err *err) {
  const struct od_tensor *s = S[0];
  if (p->kind == OD_LOSS_CWD)
    return softmax_rows(p, s, T[0], s->dims[0] * s->dims[1], od_loss_prod(s, 2), 1, scale, value, dS[0], err);
  int axis = p->axis < 0 ? p->axis + s->rank : p->axis;
  int64_t outer = 1;
  for (int d = 0; d < axis; d++) outer *= s->dims[d];
  return softmax_rows(p, s, T[0], outer, s->dims[axis], od_loss_prod(s, axis + 1), scale, value, dS[0], err);
}
