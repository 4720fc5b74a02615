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
 * Spec: https://onnx.ai/onnx/operators/onnx__Softmax.html, onnx__LogSoftmax.html */
#include <math.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "runtime/pool.h"

struct softmax_attrs {
  int64_t axis;
  bool log;                     /* LogSoftmax */
  bool coerce_2d;               /* opset < 13 */
};

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
static enum od_status softmax_view(const struct softmax_attrs *a, const struct od_tensor *x, int64_t *outer,
                                   int64_t *n, int64_t *inner, struct od_err *err) {
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
  int64_t outer, n, inner;
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

/* exp for float softmax, written so that loops over it vectorise (no libm call): exp(x) =
 * 2^n * exp(r), n = round(x / ln 2) (by the 1.5 * 2^23 rounding trick), r = x - n ln 2 in
 * [-ln2/2, ln2/2] (ln 2 split in two for precision), exp(r) by the degree-7 Taylor-like minimax
 * polynomial of Cephes' expf (relative error ~1e-7). Inputs below -87.33 (where 2^n would leave
 * the normal range; -inf from attention masks) give exactly 0; inputs are <= 0 in softmax. */
static inline float softmax_expf(float x) {
  float xc = x < -87.33654f ? -87.33654f : (x > 88.37626f ? 88.37626f : x);
  float t = xc * 1.44269504088896341f + 12582912.0f;
  float n = t - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits;
  memcpy(&bits, &t, sizeof bits);
  int32_t e = ((bits - 0x4B400000) + 127) << 23; /* bits(t) = bits(1.5 * 2^23) + n */
  float scale;
  memcpy(&scale, &e, sizeof scale);
  return x < -87.33654f ? 0.0f : p * scale;
}

static inline double softmax_exp(double x) { return exp(x); }

/* SOFTMAX_DEFINE(NAME, T, EXP) generates:
 *   softmax_rows_<NAME>: work items are rows (inner == 1): contiguous max, exp, sum, scale, each
 *                        a simple loop (four partial max/sum accumulators break the dependency
 *                        chains; sums in double).
 *   softmax_cols_<NAME>: work items are (outer index, block of SOFTMAX_BLOCK inner positions)
 *                        (inner > 1): the same passes done for a block of inner positions at
 *                        once, walking the n rows in memory order. */
#define SOFTMAX_BLOCK 256
#define SOFTMAX_DEFINE(NAME, T, EXP)                                                          \
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
      int64_t n8 = n & ~(int64_t)7; /* fixed-size blocks: unrolled and vectorised at -O2 */   \
      for (int64_t j = 0; j < n8; j += 8)                                                     \
        for (int q = 0; q < 8; q++) y[j + q] = EXP(x[j + q] - m);                             \
      for (int64_t j = n8; j < n; j++) y[j] = EXP(x[j] - m);                                  \
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
      for (int64_t j = 0; j < n; j++)                                                         \
        for (int64_t i = 0; i < nb; i++) {                                                    \
          T e = EXP(x[j * inner + i] - m[i]);                                                 \
          if (!t->log) y[j * inner + i] = e;                                                  \
          s[i] += e;                                                                          \
        }                                                                                     \
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

SOFTMAX_DEFINE(f32, float, softmax_expf)
SOFTMAX_DEFINE(f64, double, softmax_exp)

static enum od_status softmax_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct softmax_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  int64_t outer, n, inner;
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

const struct od_op_kernels od_kernels_softmax = {
    .attrs_size = sizeof(struct softmax_attrs),
    .parse = softmax_parse,
    .infer = softmax_infer,
    .forward = {[OD_DEVICE_CPU] = softmax_forward_cpu},
    .dtypes = "float, double",
};

const struct od_op_kernels od_kernels_log_softmax = {
    .attrs_size = sizeof(struct softmax_attrs),
    .parse = log_softmax_parse,
    .infer = softmax_infer,
    .forward = {[OD_DEVICE_CPU] = softmax_forward_cpu},
    .dtypes = "float, double",
};
