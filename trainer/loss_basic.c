/* trainer/loss_basic.c: the elementwise losses l2, l1, smooth_l1 and the cosine feature loss.
 * Float or double tensors; sums in double. M = number of elements, d = s - t.
 *
 *   l2         L = sum(d^2) / M                    dL/ds = 2 d / M
 *              (PaddleSlim l2_loss = paddle.mean(square_error_cost(s, t)); no 1/2, no channel
 *              normalisation; PaddleDetection weights it with 100 per pair)
 *   l1         L = sum(|d|) / M                    dL/ds = sign(d) / M, 0 where d == 0
 *   smooth_l1  L = sum(h(d)) / M, h(d) = 0.5 d^2 / beta if |d| < beta, else |d| - 0.5 beta
 *              (PyTorch SmoothL1Loss, reduction mean)  dL/ds = h'(d) / M: d / beta or sign(d);
 *              beta = 0 is plain l1
 *   cosine     vectors along axis 1 of [N, C, ...]; P = M / C positions (n, h, w, ...):
 *              L = sum_pos (1 - cos) / P,  cos = s.t / (max(|s|, eps) max(|t|, eps)), eps = 1e-8
 *              (torch.nn.functional.cosine_similarity, as Ultralytics' KD and modelopt use it)
 *              dcos/ds = t / (max(|s|,eps) max(|t|,eps)) - cos s / |s|^2  (second term only when |s| > eps)
 */
#include <math.h>
#include <stdlib.h>

#include "trainer/loss_internal.h"

static double elementwise(const struct od_loss_params *p, const struct od_tensor *s, const struct od_tensor *t,
                          double scale, struct od_tensor *g) {
  int64_t m = od_tensor_numel(s);
  double inv = 1.0 / (double)m, sum = 0.0, beta = p->beta;
  for (int64_t i = 0; i < m; i++) {
    double d = od_loss_x(s, i) - od_loss_x(t, i), v, dv;
    switch (p->kind) {
    case OD_LOSS_L2:
      v = d * d;
      dv = 2.0 * d;
      break;
    case OD_LOSS_L1:
      v = fabs(d);
      dv = od_loss_sign(d);
      break;
    default: /* smooth_l1 */
      if (fabs(d) < beta) {
        v = 0.5 * d * d / beta;
        dv = d / beta;
      } else {
        v = fabs(d) - 0.5 * beta;
        dv = od_loss_sign(d);
      }
      break;
    }
    sum += v;
    if (g) od_loss_g(g, i, scale * dv * inv);
  }
  return sum * inv;
}

#define OD_COS_EPS 1e-8

/* The running sums per position are kept for one sample at a time (inner = prod(dims[2..])), so the
 * channel loop reads each plane contiguously. */
static enum od_status cosine(const struct od_tensor *s, const struct od_tensor *t, double scale, double *value,
                             struct od_tensor *g, struct od_err *err) {
  int64_t n = s->dims[0], c = s->dims[1], inner = od_loss_prod(s, 2);
  double *acc = malloc(3 * (size_t)inner * sizeof *acc);
  if (!acc) return od_err_set(err, OD_ERR_OOM, "cosine: out of memory");
  double *st = acc, *ss = acc + inner, *tt = acc + 2 * inner;
  double inv_p = 1.0 / (double)(n * inner), sum = 0.0;
  for (int64_t b = 0; b < n; b++) {
    int64_t base = b * c * inner;
    for (int64_t i = 0; i < 3 * inner; i++) acc[i] = 0.0;
    for (int64_t k = 0; k < c; k++)
      for (int64_t i = 0; i < inner; i++) {
        double x = od_loss_x(s, base + k * inner + i), y = od_loss_x(t, base + k * inner + i);
        st[i] += x * y;
        ss[i] += x * x;
        tt[i] += y * y;
      }
    for (int64_t i = 0; i < inner; i++) {
      double ns = sqrt(ss[i]), nt = sqrt(tt[i]);
      double den = fmax(ns, OD_COS_EPS) * fmax(nt, OD_COS_EPS);
      double cs = st[i] / den;
      sum += 1.0 - cs;
      /* reuse the buffers: a = -scale/P / den (coefficient of t), b = scale/P * cos / |s|^2 (of s) */
      st[i] = -scale * inv_p / den;
      ss[i] = ns > OD_COS_EPS ? scale * inv_p * cs / (ns * ns) : 0.0;
    }
    if (!g) continue;
    for (int64_t k = 0; k < c; k++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t j = base + k * inner + i;
        od_loss_g(g, j, st[i] * od_loss_x(t, j) + ss[i] * od_loss_x(s, j));
      }
  }
  free(acc);
  *value = sum * inv_p;
  return OD_OK;
}

enum od_status od_loss_eval_basic(const struct od_loss_params *p, const struct od_tensor *const *S,
                                  const struct od_tensor *const *T, double scale, double *value,
                                  struct od_tensor *const *dS, struct od_err *err) {
  if (p->kind == OD_LOSS_COSINE) return cosine(S[0], T[0], scale, value, dS[0], err);
  *value = elementwise(p, S[0], T[0], scale, dS[0]);
  return OD_OK;
}
