/* trainer/loss_cuda.cu: the elementwise distillation losses l2, l1, smooth_l1 on a CUDA device,
 * float32 (math and gradient of trainer/loss_basic.c; M = number of elements, d = s - t):
 *   l2         L = sum(d^2) / M          dL/ds = 2 d / M
 *   l1         L = sum(|d|) / M          dL/ds = sign(d) / M (0 where d == 0)
 *   smooth_l1  L = sum(h(d)) / M         h = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta;
 *                                        dL/ds = d / beta or sign(d) (beta = 0: plain l1)
 * One kernel reads S and T once and does both jobs: dS += (scale / M) * dL/dd per element, and the
 * value's float32 partial sum per thread, then per block (shared-memory tree), one partial per
 * block into the workspace; a one-block kernel adds the partials in double and the double comes
 * back to the host (od_cuda_loss_eval, trainer/train_cuda.cuh) or, divided by M, stays in device
 * memory (od_cuda_loss_eval_dev: the graph-safe step; the same number). Grid-stride loop over 16-byte vectors of S, T and dS
 * when all three are 16-byte aligned, the remaining elements one by one. Bandwidth-bound: 12 bytes
 * read and 4 written per element (8 read without a gradient).
 *
 * Against the CPU (double per element): d, the term and the gradient are float32 here (each within
 * a few ulp of the CPU's), and the value's sums are float32 up to a block (at most a few thousand
 * terms per block for the tensors of a detector), so the value agrees to about 1e-6 relative. */
#include "trainer/train_cuda.cuh"

extern "C" {
#include "runtime/dtype.h"
}

enum { LC_L2, LC_L1, LC_SMOOTH_L1 };

/* The loss term of one difference d, and its derivative in *dv (trainer/loss_basic.c). */
template <int K>
static __device__ __forceinline__ float lc_term(float d, float beta, float *dv) {
  float a = fabsf(d), sg = d > 0.f ? 1.f : d < 0.f ? -1.f : 0.f;
  if (K == LC_L2) {
    *dv = 2.f * d;
    return d * d;
  }
  if (K == LC_SMOOTH_L1 && a < beta) {
    *dv = d / beta;
    return 0.5f * d * d / beta;
  }
  *dv = sg;
  return K == LC_L1 ? a : a - 0.5f * beta;
}

/* Value partial sums (one per block into partial) and, when g is not NULL, g += coef * dL/dd.
 * n4 = number of 4-float vectors to take vectorised (0 when a pointer is misaligned). */
template <int K>
static __global__ void lc_kernel(const float *s, const float *t, float *g, int64_t n, int64_t n4, float coef,
                                 float beta, float *partial) {
  __shared__ float sh[OD_RED_THREADS];
  float acc = 0.f, dv;
  const tc_f4 *s4 = (const tc_f4 *)s, *t4 = (const tc_f4 *)t;
  tc_f4 *g4 = (tc_f4 *)g;
  OD_GRID_LOOP(i, n4) {
    tc_f4 a = s4[i], b = t4[i], dg;
    float v = lc_term<K>(a.x - b.x, beta, &dv);
    dg.x = coef * dv;
    v += lc_term<K>(a.y - b.y, beta, &dv);
    dg.y = coef * dv;
    v += lc_term<K>(a.z - b.z, beta, &dv);
    dg.z = coef * dv;
    v += lc_term<K>(a.w - b.w, beta, &dv);
    dg.w = coef * dv;
    acc += v;
    if (g) {
      tc_f4 o = g4[i];
      o.x += dg.x;
      o.y += dg.y;
      o.z += dg.z;
      o.w += dg.w;
      g4[i] = o;
    }
  }
  for (int64_t i = 4 * n4 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    acc += lc_term<K>(s[i] - t[i], beta, &dv);
    if (g) g[i] += coef * dv;
  }
  float sum = od_block_sum_f32(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

extern "C" bool od_cuda_loss_supported(enum od_loss_kind kind) {
  return kind == OD_LOSS_L2 || kind == OD_LOSS_L1 || kind == OD_LOSS_SMOOTH_L1;
}

/* *out = (sum of partial[0..nb) in double) * scale (one block; a separate multiply, as the host
 * scales the sum it reads back). */
static __global__ void tc_sum_finish_scaled(const float *partial, int nb, double scale, double *out) {
  __shared__ double sh[OD_RED_THREADS];
  double a = 0.0;
  for (int i = (int)threadIdx.x; i < nb; i += (int)blockDim.x) a += (double)partial[i];
  double r = od_block_sum_f64(a, sh);
  if (threadIdx.x == 0) *out = r * scale;
}

/* Checks the arguments and launches the loss kernel: the value's block partials end in sc->partial
 * (*nb of them), the value is their sum times *inv. */
static enum od_status lc_launch(struct od_device *dev, const struct od_loss_params *p, const struct od_tensor *S,
                                const struct od_tensor *T, double scale, bool has_value, struct od_tensor *dS,
                                struct tc_sum_scratch *sc, unsigned *nb_out, double *inv_out, struct od_err *err) {
  if (p && !od_cuda_loss_supported(p->kind))
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: no CUDA kernel for this loss (l2, l1, smooth_l1 have one)",
                      od_loss_name(p->kind));
  const struct od_tensor *Sv[1] = {S}, *Tv[1] = {T};
  OD_TRY(od_loss_check(p, Sv, Tv, err)); /* host metadata only: kind, dtypes, shapes, params */
  const char *name = od_loss_name(p->kind);
  if (!has_value) return od_err_set(err, OD_ERR_INVALID_ARG, "%s: value is NULL", name);
  if (S->dtype != OD_DTYPE_FLOAT)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: the CUDA loss takes float32 tensors, not %s", name,
                      od_dtype_name(S->dtype));
  if (!S->data || !T->data) return od_err_set(err, OD_ERR_INVALID_ARG, "%s: tensor without data", name);
  if (dS && (dS->dtype != S->dtype || !od_tensor_same_shape(dS, S) || !dS->data)) {
    char ss[128], gs[128];
    return od_err_set(err, OD_ERR_SHAPE, "%s: the gradient tensor (%s %s) does not match the student's (%s %s)", name,
                      od_dtype_name(dS->dtype), od_shape_str(dS->rank, dS->dims, gs, sizeof gs),
                      od_dtype_name(S->dtype), od_shape_str(S->rank, S->dims, ss, sizeof ss));
  }

  int64_t n = od_tensor_numel(S);
  const float *s = (const float *)S->data, *t = (const float *)T->data;
  float *g = dS ? (float *)dS->data : NULL;
  double inv = 1.0 / (double)n;
  float coef = (float)(scale * inv), beta = (float)p->beta;
  int64_t n4 = tc_aligned16(s) && tc_aligned16(t) && tc_aligned16(g) ? n / 4 : 0;

  OD_TRY(tc_sum_scratch_get(dev, sc, err));
  unsigned nb = tc_sum_blocks(n);
  cudaStream_t st = od_cuda_stream(dev);
  void (*kfn)(const float *, const float *, float *, int64_t, int64_t, float, float, float *) =
      p->kind == OD_LOSS_L2 ? lc_kernel<LC_L2> : p->kind == OD_LOSS_L1 ? lc_kernel<LC_L1> : lc_kernel<LC_SMOOTH_L1>;
  OD_LAUNCH(kfn, nb, OD_RED_THREADS, st)(s, t, g, n, n4, coef, beta, sc->partial);
  OD_CUDA_TRY(err, cudaGetLastError());
  *nb_out = nb;
  *inv_out = inv;
  return OD_OK;
}

extern "C" enum od_status od_cuda_loss_eval(struct od_device *dev, const struct od_loss_params *p,
                                            const struct od_tensor *S, const struct od_tensor *T, double scale,
                                            double *value, struct od_tensor *dS, struct od_err *err) {
  struct tc_sum_scratch sc;
  unsigned nb = 0;
  double inv = 0.0, sum = 0.0;
  OD_TRY(lc_launch(dev, p, S, T, scale, value != NULL, dS, &sc, &nb, &inv, err));
  OD_TRY(tc_sum_to_host(dev, &sc, nb, &sum, err));
  *value = sum * inv;
  return OD_OK;
}

extern "C" enum od_status od_cuda_loss_eval_dev(struct od_device *dev, const struct od_loss_params *p,
                                                const struct od_tensor *S, const struct od_tensor *T, double scale,
                                                double *d_value, struct od_tensor *dS, struct od_err *err) {
  struct tc_sum_scratch sc;
  unsigned nb = 0;
  double inv = 0.0;
  OD_TRY(lc_launch(dev, p, S, T, scale, d_value != NULL, dS, &sc, &nb, &inv, err));
  OD_LAUNCH(tc_sum_finish_scaled, 1, OD_RED_THREADS, od_cuda_stream(dev))(sc.partial, (int)nb, inv, d_value);
  OD_CUDA_TRY(err, cudaGetLastError());
  return OD_OK;
}
