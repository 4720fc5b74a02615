/* ops/softmax.c: ONNX Softmax and LogSoftmax, opsets 1, 11 and 13.
 *
 *   Softmax(x)    = exp(x - max) / sum(exp(x - max))
 *   LogSoftmax(x) = x - max - log(sum(exp(x - max)))
 *
 * The two semantics (one kernel reads node->opset):
 *   opset < 13: the input is coerced to 2-D at `axis` (default 1): (prod(dims[:axis]),
 *               prod(dims[axis:])), and each row of that matrix is normalised, i.e. over all the
 *               trailing dims together. (Opset 11 only widened axis to negative values.)
 *   opset 13+:  normalised along the one axis `axis` (default -1).
 * Both are the same computation on an (outer, n, inner) view: old form = (outer, prod(dims[axis:]),
 * 1), new form = (prod(dims[:axis]), dims[axis], prod(dims[axis+1:])).
 *
 * dtypes: float, double (float16/bfloat16 are not stored by this runtime's kernels).
 * Backward: float, double, from the saved output (see softmax_backward_cpu).
 * Spec: https://onnx.ai/onnx/operators/onnx__Softmax.html, onnx__LogSoftmax.html */
#include <math.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "ops/softmax.h"
#include "runtime/pool.h"

static enum od_status softmax_parse_common(const struct od_node *node, struct softmax_attrs *a, bool log,
                                           struct od_err *err) {
  a->log = log;
  a->coerce_2d = node->opset < 13;
  return od_attr_get_int(node, "axis", a->coerce_2d ? 1 : -1, &a->axis, err);
}

static enum od_status softmax_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  return softmax_parse_common(node, attrs, false, err);
}

static enum od_status log_softmax_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  return softmax_parse_common(node, attrs, true, err);
}

/* The (outer, n, inner) view of x for the attributes. */
enum od_status softmax_view(const struct softmax_attrs *a, const struct od_tensor *x, int64_t *outer, int64_t *n,
                            int64_t *inner, struct od_err *err) {
  int axis;
  /* A scalar has one element: treat it as rank 1 so axis 0 / -1 are accepted. */
  int rank = x->rank ? x->rank : 1;
  if (a->coerce_2d) {
    /* Old form: axis in [-r, r]; axis == r makes rows of one element. */
    if (a->axis < -rank || a->axis > rank)
      return od_err_set(err, OD_ERR_SHAPE, "axis %lld is out of range for rank %d", (long long)a->axis, rank);
    axis = (int)(a->axis < 0 ? a->axis + rank : a->axis);
  } else {
    OD_TRY(od_axis_normalize(a->axis, rank, "axis", &axis, err));
  }
  *outer = *n = *inner = 1;
  for (int d = 0; d < x->rank; d++) {
    if (d < axis) *outer *= x->dims[d];
    else if (d == axis || a->coerce_2d) *n *= x->dims[d];
    else *inner *= x->dims[d];
  }
  return OD_OK;
}

static enum od_status softmax_infer(struct od_infer_ctx *ctx) {
  const struct softmax_attrs *a = ctx->attrs;
  const struct od_tensor *x = &ctx->in[0];
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "input dtype %s is not supported (float, double)",
                      od_dtype_name(x->dtype));
  int64_t outer = 0, n = 0, inner = 0;
  OD_TRY(softmax_view(a, x, &outer, &n, &inner, ctx->err));
  ctx->out[0] = *x;
  ctx->out[0].data = NULL;
  return OD_OK;
}

struct softmax_task {
  const void *x;
  void *y;
  int64_t n, inner;
  bool log;
};

/* ---- exp ------------------------------------------------------------------------------------ */

/* exp for float softmax, four lanes at a time with GCC/Clang vector extensions (plain C loops with
 * selects do not vectorise at -O2): exp(x) = 2^n * exp(r), n = round(x / ln 2) by the 1.5 * 2^23
 * rounding trick, r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 split in two for precision), exp(r) by
 * the degree-7 polynomial of Cephes' expf (relative error ~1e-7), 2^n built in the exponent bits.
 * Inputs below -87.33 (where 2^n leaves the normal range; -inf from attention masks) give exactly
 * 0; softmax only passes x - max <= 0. NaN inputs are not propagated (the max would be NaN). */
typedef float softmax_v4f __attribute__((vector_size(16)));
typedef int32_t softmax_v4i __attribute__((vector_size(16)));

#define SOFTMAX_SPLAT(a) ((softmax_v4f){(a), (a), (a), (a)})
#define SOFTMAX_EXP_LO (-87.33654f)
#define SOFTMAX_EXP_HI 88.37626f

static inline softmax_v4f softmax_vsel(softmax_v4i mask, softmax_v4f a, softmax_v4f b) {
  return (softmax_v4f)((mask & (softmax_v4i)a) | (~mask & (softmax_v4i)b));
}

static inline softmax_v4f softmax_exp4(softmax_v4f x) {
  softmax_v4f lo = SOFTMAX_SPLAT(SOFTMAX_EXP_LO), hi = SOFTMAX_SPLAT(SOFTMAX_EXP_HI);
  softmax_v4f xc = softmax_vsel(x < lo, lo, x);
  xc = softmax_vsel(xc > hi, hi, xc);
  softmax_v4f magic = SOFTMAX_SPLAT(12582912.0f); /* 1.5 * 2^23 */
  softmax_v4f t = xc * SOFTMAX_SPLAT(1.44269504088896341f) + magic;
  softmax_v4f n = t - magic;
  softmax_v4f r = xc - n * SOFTMAX_SPLAT(0.693359375f);
  r = r + n * SOFTMAX_SPLAT(2.12194440e-4f);
  softmax_v4f p = SOFTMAX_SPLAT(1.9875691500e-4f);
  p = p * r + SOFTMAX_SPLAT(1.3981999507e-3f);
  p = p * r + SOFTMAX_SPLAT(8.3334519073e-3f);
  p = p * r + SOFTMAX_SPLAT(4.1665795894e-2f);
  p = p * r + SOFTMAX_SPLAT(1.6666665459e-1f);
  p = p * r + SOFTMAX_SPLAT(5.0000001201e-1f);
  p = p * r * r + r + SOFTMAX_SPLAT(1.0f);
  softmax_v4i e = (((softmax_v4i)t - 0x4B400000) + 127) << 23; /* bits(t) = bits(1.5 * 2^23) + n */
  softmax_v4f res = p * (softmax_v4f)e;
  return (softmax_v4f)((softmax_v4i)res & (x >= lo));
}

/* y[i] = exp(x[i] - (m ? m[i] : m0)), i in [0, n); the tail goes through the same 4-lane code. */
static void softmax_exp_sub_f32(const float *x, const float *m, float m0, float *y, int64_t n) {
  int64_t n4 = n & ~(int64_t)3;
  softmax_v4f v, mv = SOFTMAX_SPLAT(m0);
  for (int64_t i = 0; i < n4; i += 4) {
    memcpy(&v, x + i, sizeof v);
    if (m) memcpy(&mv, m + i, sizeof mv);
    v = softmax_exp4(v - mv);
    memcpy(y + i, &v, sizeof v);
  }
  if (n4 < n) {
    float xt[4] = {0, 0, 0, 0}, mt[4] = {m0, m0, m0, m0}, yt[4];
    for (int64_t i = n4; i < n; i++) {
      xt[i - n4] = x[i];
      if (m) mt[i - n4] = m[i];
    }
    memcpy(&v, xt, sizeof v);
    memcpy(&mv, mt, sizeof mv);
    v = softmax_exp4(v - mv);
    memcpy(yt, &v, sizeof v);
    for (int64_t i = n4; i < n; i++) y[i] = yt[i - n4];
  }
}

static void softmax_exp_sub_f64(const double *x, const double *m, double m0, double *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = exp(x[i] - (m ? m[i] : m0));
}

/* ---- kernels ---------------------------------------------------------------------------------- */

/* SOFTMAX_DEFINE(NAME, T) generates:
 *   softmax_rows_<NAME>: work items are rows (inner == 1): max (four partial maxima), exp into y,
 *                        sum (in double, four partial sums), then scale (or x - max - log sum).
 *   softmax_cols_<NAME>: work items are (outer index, block of SOFTMAX_BLOCK inner positions)
 *                        (inner > 1): the same passes for a block of inner positions at once,
 *                        walking the n rows in memory order. */
#define SOFTMAX_BLOCK 256
#define SOFTMAX_DEFINE(NAME, T)                                                               \
  static void softmax_rows_##NAME(void *vt, int64_t begin, int64_t end) {                     \
    const struct softmax_task *t = vt;                                                        \
    int64_t n = t->n, n4 = n & ~(int64_t)3;                                                   \
    for (int64_t row = begin; row < end; row++) {                                             \
      const T *x = (const T *)t->x + row * n;                                                 \
      T *y = (T *)t->y + row * n;                                                             \
      T mm[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};                                 \
      for (int64_t j = 0; j < n4; j += 4)                                                     \
        for (int q = 0; q < 4; q++) mm[q] = x[j + q] > mm[q] ? x[j + q] : mm[q];              \
      for (int64_t j = n4; j < n; j++) mm[0] = x[j] > mm[0] ? x[j] : mm[0];                   \
      T m = mm[0];                                                                            \
      for (int q = 1; q < 4; q++) m = mm[q] > m ? mm[q] : m;                                  \
      softmax_exp_sub_##NAME(x, NULL, m, y, n);                                               \
      double ss[4] = {0, 0, 0, 0};                                                            \
      for (int64_t j = 0; j < n4; j += 4)                                                     \
        for (int q = 0; q < 4; q++) ss[q] += y[j + q];                                        \
      for (int64_t j = n4; j < n; j++) ss[0] += y[j];                                         \
      double s = (ss[0] + ss[1]) + (ss[2] + ss[3]);                                           \
      if (t->log) {                                                                           \
        T ml = m + (T)log(s);                                                                 \
        for (int64_t j = 0; j < n; j++) y[j] = x[j] - ml;                                     \
      } else {                                                                                \
        T inv = (T)(1.0 / s);                                                                 \
        for (int64_t j = 0; j < n; j++) y[j] *= inv;                                          \
      }                                                                                       \
    }                                                                                         \
  }                                                                                           \
  static void softmax_cols_##NAME(void *vt, int64_t begin, int64_t end) {                     \
    const struct softmax_task *t = vt;                                                        \
    int64_t n = t->n, inner = t->inner;                                                       \
    int64_t nblk = (inner + SOFTMAX_BLOCK - 1) / SOFTMAX_BLOCK;                               \
    T m[SOFTMAX_BLOCK];                                                                       \
    double s[SOFTMAX_BLOCK];                                                                  \
    for (int64_t w = begin; w < end; w++) {                                                   \
      int64_t o = w / nblk, i0 = (w % nblk) * SOFTMAX_BLOCK;                                  \
      int64_t nb = inner - i0 < SOFTMAX_BLOCK ? inner - i0 : SOFTMAX_BLOCK;                   \
      const T *x = (const T *)t->x + o * n * inner + i0;                                      \
      T *y = (T *)t->y + o * n * inner + i0;                                                  \
      for (int64_t i = 0; i < nb; i++) {                                                      \
        m[i] = -INFINITY;                                                                     \
        s[i] = 0;                                                                             \
      }                                                                                       \
      for (int64_t j = 0; j < n; j++)                                                         \
        for (int64_t i = 0; i < nb; i++) m[i] = x[j * inner + i] > m[i] ? x[j * inner + i] : m[i]; \
      for (int64_t j = 0; j < n; j++) {                                                       \
        softmax_exp_sub_##NAME(x + j * inner, m, 0, y + j * inner, nb);                       \
        for (int64_t i = 0; i < nb; i++) s[i] += y[j * inner + i];                            \
      }                                                                                       \
      if (t->log) {                                                                           \
        for (int64_t i = 0; i < nb; i++) m[i] += (T)log(s[i]);                                \
        for (int64_t j = 0; j < n; j++)                                                       \
          for (int64_t i = 0; i < nb; i++) y[j * inner + i] = x[j * inner + i] - m[i];        \
      } else {                                                                                \
        for (int64_t i = 0; i < nb; i++) s[i] = 1.0 / s[i];                                   \
        for (int64_t j = 0; j < n; j++)                                                       \
          for (int64_t i = 0; i < nb; i++) y[j * inner + i] = (T)(y[j * inner + i] * s[i]);   \
      }                                                                                       \
    }                                                                                         \
  }

SOFTMAX_DEFINE(f32, float)
SOFTMAX_DEFINE(f64, double)

static enum od_status softmax_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct softmax_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  int64_t outer = 0, n = 0, inner = 0;
  OD_TRY(softmax_view(a, x, &outer, &n, &inner, ctx->err));
  if (outer * n * inner == 0) return OD_OK;
  struct softmax_task t = {x->data, ctx->out[0]->data, n, inner, a->log};
  bool f32 = x->dtype == OD_DTYPE_FLOAT;
  if (inner == 1) {
    od_pool_parallel_for(ctx->pool, outer, (8192 + n - 1) / n, f32 ? softmax_rows_f32 : softmax_rows_f64, &t);
    return OD_OK;
  }
  int64_t nblk = (inner + SOFTMAX_BLOCK - 1) / SOFTMAX_BLOCK;
  int64_t per = n * (inner < SOFTMAX_BLOCK ? inner : SOFTMAX_BLOCK);
  od_pool_parallel_for(ctx->pool, outer * nblk, (8192 + per - 1) / per, f32 ? softmax_cols_f32 : softmax_cols_f64,
                       &t);
  return OD_OK;
}

/* ---- backward ---------------------------------------------------------------------------------- */

/* Along each normalised line (the same (outer, n, inner) view as the forward), from the saved
 * output Y:
 *   Softmax:    dX_j += Y_j * (dY_j - sum_k dY_k Y_k)          (Jacobian diag(Y) - Y Y^T)
 *   LogSoftmax: dX_j += dY_j - exp(Y_j) * sum_k dY_k           (exp(Y) is the softmax)
 * Work items as in the forward: rows when inner == 1, else (outer index, block of inner
 * positions); sums in double. */
struct softmax_bwd_task {
  const void *y, *dy;
  void *dx;
  int64_t n, inner;
  bool log;
};

#define SOFTMAX_BWD_DEFINE(NAME, T)                                                           \
  static void softmax_bwd_##NAME(void *vt, int64_t begin, int64_t end) {                      \
    const struct softmax_bwd_task *t = vt;                                                    \
    int64_t n = t->n, inner = t->inner;                                                       \
    int64_t nblk = (inner + SOFTMAX_BLOCK - 1) / SOFTMAX_BLOCK;                               \
    double s[SOFTMAX_BLOCK];                                                                  \
    for (int64_t w = begin; w < end; w++) {                                                   \
      int64_t o = w / nblk, i0 = (w % nblk) * SOFTMAX_BLOCK;                                  \
      int64_t nb = inner - i0 < SOFTMAX_BLOCK ? inner - i0 : SOFTMAX_BLOCK;                   \
      size_t base = (size_t)(o * n * inner + i0);                                             \
      const T *y = (const T *)t->y + base, *dy = (const T *)t->dy + base;                     \
      T *dx = (T *)t->dx + base;                                                              \
      for (int64_t i = 0; i < nb; i++) s[i] = 0;                                              \
      for (int64_t j = 0; j < n; j++) {                                                       \
        const T *yr = y + j * inner, *dr = dy + j * inner;                                    \
        if (t->log)                                                                           \
          for (int64_t i = 0; i < nb; i++) s[i] += dr[i];                                     \
        else                                                                                  \
          for (int64_t i = 0; i < nb; i++) s[i] += (double)dr[i] * yr[i];                     \
      }                                                                                       \
      for (int64_t j = 0; j < n; j++) {                                                       \
        const T *yr = y + j * inner, *dr = dy + j * inner;                                    \
        T *xr = dx + j * inner;                                                               \
        if (t->log)                                                                           \
          for (int64_t i = 0; i < nb; i++) xr[i] += (T)(dr[i] - exp((double)yr[i]) * s[i]);   \
        else                                                                                  \
          for (int64_t i = 0; i < nb; i++) xr[i] += (T)(yr[i] * (dr[i] - s[i]));              \
      }                                                                                       \
    }                                                                                         \
  }

SOFTMAX_BWD_DEFINE(f32, float)
SOFTMAX_BWD_DEFINE(f64, double)

static enum od_status softmax_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct softmax_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *dy = ctx->dout[0];
  if (!dy || !ctx->din[0]) return OD_OK;
  int64_t outer = 0, n = 0, inner = 0;
  OD_TRY(softmax_view(a, x, &outer, &n, &inner, ctx->err));
  if (outer * n * inner == 0) return OD_OK;
  struct softmax_bwd_task t = {ctx->out[0]->data, dy->data, ctx->din[0]->data, n, inner, a->log};
  int64_t nblk = (inner + SOFTMAX_BLOCK - 1) / SOFTMAX_BLOCK;
  int64_t per = n * (inner < SOFTMAX_BLOCK ? inner : SOFTMAX_BLOCK);
  od_pool_parallel_for(ctx->pool, outer * nblk, (8192 + per - 1) / per,
                       x->dtype == OD_DTYPE_FLOAT ? softmax_bwd_f32 : softmax_bwd_f64, &t);
  return OD_OK;
}

const struct od_op_kernels od_kernels_softmax = {
    .attrs_size = sizeof(struct softmax_attrs),
    .parse = softmax_parse,
    .infer = softmax_infer,
    .forward = {[OD_DEVICE_CPU] = softmax_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_softmax_fwd)},
    .backward = {[OD_DEVICE_CPU] = softmax_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_softmax_bwd)},
    .dtypes = "float, double",
};

const struct od_op_kernels od_kernels_log_softmax = {
    .attrs_size = sizeof(struct softmax_attrs),
    .parse = log_softmax_parse,
    .infer = softmax_infer,
    .forward = {[OD_DEVICE_CPU] = softmax_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_softmax_fwd)},
    .backward = {[OD_DEVICE_CPU] = softmax_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_softmax_bwd)},
    .dtypes = "float, double",
};
