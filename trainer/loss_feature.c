/* trainer/loss_feature.c: the feature-map losses pkd, at and fsp. Tensors are [N, C, spatial...]
 * (the spatial dims are flattened into P = H*W positions), float or double; sums in double.
 *
 *   pkd  Pearson-correlation KD (Cao et al. 2022; mmrazor PKDLoss, loss_weight 1):
 *          z(F)[n,c,p] = (F[n,c,p] - mu_c) / (sd_c + 1e-6), mu_c and sd_c over the N*P values of
 *          channel c (the whole batch, as mmrazor's norm() does after permuting C first), sd the
 *          UNBIASED standard deviation (torch.std's default, divisor N*P - 1);
 *          L = 0.5 * mean over all elements of (z(s) - z(t))^2   (F.mse_loss(norm_S, norm_T) / 2).
 *        mmrazor bilinearly resizes the student when H, W differ; here the shapes must be equal
 *        (the trainer's adapters resize first). Gradient through the z-score, g = dL/dz(s), M = N*P,
 *        d = sd + 1e-6: dL/dx_j = (g_j - mean(g)) / d - (x_j - mu) sum_i g_i (x_i - mu) / (d^2 (M - 1) sd)
 *        (the second term is dropped when sd = 0, where every x_j - mu is 0 anyway).
 *   at   attention transfer (Zagoruyko & Komodakis 2017) as the authors' code, mmrazor ATLoss and
 *        torchdistill ATLoss (mode "code") compute it:
 *          a(F)[n] = normalize(v[n]), v[n,p] = mean_c F[n,c,p]^2, normalize(v) = v / max(|v|_2, 1e-12)
 *          L = mean over the N*P elements of (a(s) - a(t))^2        ((a_s - a_t).pow(2).mean())
 *        The authors' beta/2 = 500 goes into the pair weight. (torchdistill's mode "paper", the sum
 *        of per-sample L2 norms of the difference, is not offered.)
 *        Backward: ga = 2 (a_s - a_t) / (N P); gv = (ga - a_s (a_s . ga)) / |v| (ga / 1e-12 when
 *        |v| <= 1e-12); dL/dF[n,c,p] = gv[n,p] * 2 F[n,c,p] / C.
 *   fsp  flow of solution procedure (Yim et al. 2017; PaddleSlim fsp_loss, Paddle's fsp op):
 *          G(x, y)[n] = x_n y_n^T / P with x_n [C1, P], y_n [C2, P] (the two tensors of one side share
 *          N and H, W; the student's and teacher's H, W may differ, their G shapes [N, C1, C2] match)
 *          L = mean over N*C1*C2 of (G_s - G_t)^2
 *        E = 2 (G_s - G_t) / (N C1 C2): dL/dx_n = E_n y_n / P, dL/dy_n = E_n^T x_n / P.
 *        The products are double-precision GEMMs (OpenBLAS) on double copies of one sample.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "trainer/loss_internal.h"

#define OD_PKD_EPS 1e-6
#define OD_AT_EPS 1e-12

/* ---- pkd ------------------------------------------------------------------------------------------ */

/* Per-channel mean, unbiased sd and d = sd + eps of x [N, C, P]. */
static void channel_stats(const struct od_tensor *x, int64_t n, int64_t c, int64_t p, double *mu, double *sd,
                          double *d) {
  double m = (double)(n * p);
  for (int64_t k = 0; k < c; k++) mu[k] = sd[k] = 0.0;
  for (int64_t b = 0; b < n; b++)
    for (int64_t k = 0; k < c; k++)
      for (int64_t i = 0; i < p; i++) mu[k] += od_loss_x(x, (b * c + k) * p + i);
  for (int64_t k = 0; k < c; k++) mu[k] /= m;
  for (int64_t b = 0; b < n; b++)
    for (int64_t k = 0; k < c; k++)
      for (int64_t i = 0; i < p; i++) {
        double e = od_loss_x(x, (b * c + k) * p + i) - mu[k];
        sd[k] += e * e;
      }
  for (int64_t k = 0; k < c; k++) {
    sd[k] = sqrt(sd[k] / (m - 1.0));
    d[k] = sd[k] + OD_PKD_EPS;
  }
}

static enum od_status pkd(const struct od_tensor *s, const struct od_tensor *t, double scale, double *value,
                          struct od_tensor *g, struct od_err *err) {
  int64_t n = s->dims[0], c = s->dims[1], p = od_loss_prod(s, 2);
  double *buf = malloc(8 * (size_t)c * sizeof *buf);
  if (!buf) return od_err_set(err, OD_ERR_OOM, "pkd: out of memory");
  double *mus = buf, *sds = buf + c, *ds = buf + 2 * c, *mut = buf + 3 * c, *sdt = buf + 4 * c, *dt = buf + 5 * c;
  double *gsum = buf + 6 * c, *gx = buf + 7 * c; /* per channel: sum g, sum g (x - mu) */
  channel_stats(s, n, c, p, mus, sds, ds);
  channel_stats(t, n, c, p, mut, sdt, dt);
  double numel = (double)(n * c * p), m = (double)(n * p), sum = 0.0;
  for (int64_t k = 0; k < c; k++) gsum[k] = gx[k] = 0.0;
  for (int64_t b = 0; b < n; b++)
    for (int64_t k = 0; k < c; k++)
      for (int64_t i = 0; i < p; i++) {
        int64_t j = (b * c + k) * p + i;
        double es = od_loss_x(s, j) - mus[k];
        double diff = es / ds[k] - (od_loss_x(t, j) - mut[k]) / dt[k];
        sum += diff * diff;
        gsum[k] += diff / numel; /* g_j = dL/dz_j = diff / numel */
        gx[k] += diff / numel * es;
      }
  *value = 0.5 * sum / numel;
  if (g) {
    for (int64_t b = 0; b < n; b++)
      for (int64_t k = 0; k < c; k++) {
        double gbar = gsum[k] / m;
        double coef = sds[k] > 0 ? gx[k] / (ds[k] * ds[k] * (m - 1.0) * sds[k]) : 0.0;
        for (int64_t i = 0; i < p; i++) {
          int64_t j = (b * c + k) * p + i;
          double es = od_loss_x(s, j) - mus[k];
          double gj = (es / ds[k] - (od_loss_x(t, j) - mut[k]) / dt[k]) / numel;
          od_loss_g(g, j, scale * ((gj - gbar) / ds[k] - coef * es));
        }
      }
  }
  free(buf);
  return OD_OK;
}

/* ---- at ------------------------------------------------------------------------------------------- */

/* v[n*p + i] = mean_c x^2, then normalised in place per sample; norm[n] = |v[n]|. */
static void attention(const struct od_tensor *x, int64_t n, int64_t c, int64_t p, double *v, double *norm) {
  for (int64_t b = 0; b < n; b++) {
    double *vb = v + b * p;
    for (int64_t i = 0; i < p; i++) vb[i] = 0.0;
    for (int64_t k = 0; k < c; k++)
      for (int64_t i = 0; i < p; i++) {
        double e = od_loss_x(x, (b * c + k) * p + i);
        vb[i] += e * e;
      }
    double sq = 0.0;
    for (int64_t i = 0; i < p; i++) {
      vb[i] /= (double)c;
      sq += vb[i] * vb[i];
    }
    norm[b] = sqrt(sq);
    double inv = 1.0 / fmax(norm[b], OD_AT_EPS);
    for (int64_t i = 0; i < p; i++) vb[i] *= inv;
  }
}

static enum od_status at(const struct od_tensor *s, const struct od_tensor *t, double scale, double *value,
                         struct od_tensor *g, struct od_err *err) {
  int64_t n = s->dims[0], c = s->dims[1], p = od_loss_prod(s, 2);
  double *as = malloc((2 * (size_t)n * (size_t)p + 2 * (size_t)n) * sizeof *as);
  if (!as) return od_err_set(err, OD_ERR_OOM, "at: out of memory");
  double *at_ = as + n * p, *ns = at_ + n * p, *nt = ns + n;
  attention(s, n, c, p, as, ns);
  attention(t, n, c, p, at_, nt);
  double inv = 1.0 / (double)(n * p), sum = 0.0;
  for (int64_t j = 0; j < n * p; j++) sum += (as[j] - at_[j]) * (as[j] - at_[j]);
  *value = sum * inv;
  if (g) {
    for (int64_t b = 0; b < n; b++) {
      double *a = as + b * p, *a2 = at_ + b * p;
      /* ga = 2 (a - a2) inv, in place in a2; then gv in a2 */
      double dot = 0.0;
      for (int64_t i = 0; i < p; i++) {
        a2[i] = 2.0 * (a[i] - a2[i]) * inv;
        dot += a[i] * a2[i];
      }
      bool clamped = ns[b] <= OD_AT_EPS;
      double invn = 1.0 / (clamped ? OD_AT_EPS : ns[b]);
      for (int64_t i = 0; i < p; i++) a2[i] = (clamped ? a2[i] : a2[i] - a[i] * dot) * invn;
      for (int64_t k = 0; k < c; k++)
        for (int64_t i = 0; i < p; i++) {
          int64_t j = (b * c + k) * p + i;
          od_loss_g(g, j, scale * a2[i] * 2.0 * od_loss_x(s, j) / (double)c);
        }
    }
  }
  free(as);
  return OD_OK;
}

/* ---- fsp ------------------------------------------------------------------------------------------ */

static void to_double(const struct od_tensor *x, int64_t off, int64_t len, double *out) {
  for (int64_t i = 0; i < len; i++) out[i] = od_loss_x(x, off + i);
}

/* G[n] = x_n y_n^T / P for every sample; x, y scratch [C1*P], [C2*P]. */
static void fsp_matrix(const struct od_tensor *x, const struct od_tensor *y, double *xs, double *ys, double *G) {
  int64_t n = x->dims[0], c1 = x->dims[1], c2 = y->dims[1], p = od_loss_prod(x, 2);
  for (int64_t b = 0; b < n; b++) {
    to_double(x, b * c1 * p, c1 * p, xs);
    to_double(y, b * c2 * p, c2 * p, ys);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c1, (int)c2, (int)p, 1.0 / (double)p, xs, (int)p, ys,
                (int)p, 0.0, G + b * c1 * c2, (int)c2);
  }
}

static enum od_status fsp(const struct od_tensor *const *S, const struct od_tensor *const *T, double scale,
                          double *value, struct od_tensor *const *dS, struct od_err *err) {
  int64_t n = S[0]->dims[0], c1 = S[0]->dims[1], c2 = S[1]->dims[1];
  int64_t ps = od_loss_prod(S[0], 2), pt = od_loss_prod(T[0], 2), pm = ps > pt ? ps : pt;
  int64_t gsz = n * c1 * c2;
  double *buf = malloc(((size_t)(2 * gsz) + (size_t)(2 * (c1 + c2) * pm)) * sizeof *buf);
  if (!buf) return od_err_set(err, OD_ERR_OOM, "fsp: out of memory");
  double *gs = buf, *gt = buf + gsz, *xs = gt + gsz, *ys = xs + c1 * pm, *dx = ys + c2 * pm, *dy = dx + c1 * pm;
  fsp_matrix(S[0], S[1], xs, ys, gs);
  fsp_matrix(T[0], T[1], xs, ys, gt);
  double sum = 0.0;
  for (int64_t i = 0; i < gsz; i++) {
    double e = gs[i] - gt[i];
    sum += e * e;
    gt[i] = scale * 2.0 * e / (double)gsz; /* E, in place */
  }
  *value = sum / (double)gsz;
  if (dS[0] || dS[1]) {
    for (int64_t b = 0; b < n; b++) {
      const double *E = gt + b * c1 * c2;
      to_double(S[0], b * c1 * ps, c1 * ps, xs);
      to_double(S[1], b * c2 * ps, c2 * ps, ys);
      if (dS[0]) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c1, (int)ps, (int)c2, 1.0 / (double)ps, E,
                    (int)c2, ys, (int)ps, 0.0, dx, (int)ps);
        for (int64_t i = 0; i < c1 * ps; i++) od_loss_g(dS[0], b * c1 * ps + i, dx[i]);
      }
      if (dS[1]) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c2, (int)ps, (int)c1, 1.0 / (double)ps, E,
                    (int)c2, xs, (int)ps, 0.0, dy, (int)ps);
        for (int64_t i = 0; i < c2 * ps; i++) od_loss_g(dS[1], b * c2 * ps + i, dy[i]);
      }
    }
  }
  free(buf);
  return OD_OK;
}

enum od_status od_loss_eval_feature(const struct od_loss_params *p, const struct od_tensor *const *S,
                                    const struct od_tensor *const *T, double scale, double *value,
                                    struct od_tensor *const *dS, struct od_err *err) {
  switch (p->kind) {
  case OD_LOSS_PKD:
    return pkd(S[0], T[0], scale, value, dS[0], err);
  case OD_LOSS_AT:
    return at(S[0], T[0], scale, value, dS[0], err);
  default:
    return fsp(S, T, scale, value, dS, err);
  }
}
