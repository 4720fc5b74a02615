/* ops/reduce.c: ONNX ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
 * ReduceSumSquare, ReduceLogSum, ReduceLogSumExp.
 *
 * Opsets: 1 through 20 (one kernel reads node->opset). What changed between versions:
 *   - `axes` is an INTS attribute before ReduceSum-13 / the others' opset 18; from then on it is an
 *     optional second input (int64, 1-D), and `noop_with_empty_axes` appears: with it set, absent
 *     or empty axes mean "reduce nothing" (the output is the input with the elementwise part of the
 *     reduction applied: x for Sum/Mean/Max, x*x for SumSquare, |x| for L1/L2, ...); otherwise
 *     absent or empty axes mean "reduce every axis".
 *   - ReduceMax/ReduceMin take int8/uint8 from 12 and bool from 20 (False < True).
 *   - keepdims (default 1) keeps the reduced dims as 1s.
 * An empty reduction (a reduced dim of size 0) gives 0 for Sum/SumSquare/L1/L2, 1 for Prod, NaN for
 * Mean, -inf for LogSum/LogSumExp, and for Max (Min) -inf (+inf) or the dtype's lowest (highest).
 *
 * dtypes: float, double, int8..int64, uint8..uint64; bool for ReduceMax/ReduceMin. Floats
 * accumulate in double, integers in int64/uint64 (cast back to the element type at the end, so a
 * sum that overflows the element type wraps as it would in the element type).
 * Backward (all ten, float and double): see reduce_backward_cpu.
 * Spec: https://onnx.ai/onnx/operators/onnx__ReduceSum.html (and the other Reduce* pages). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "ops/reduce.h"
#include "runtime/pool.h"

/* ---- attributes ------------------------------------------------------------------------------ */

static enum od_status reduce_parse(const struct od_node *node, void *attrs, struct od_err *err,
                                   enum reduce_kind kind, int64_t axes_input_since) {
  struct reduce_attrs *a = attrs;
  a->kind = kind;
  a->axes_input = node->opset >= axes_input_since;
  OD_TRY(od_attr_get_int(node, "keepdims", 1, &a->keepdims, err));
  OD_TRY(od_attr_get_int(node, "noop_with_empty_axes", 0, &a->noop_with_empty_axes, err));
  if (a->keepdims != 0 && a->keepdims != 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'keepdims' must be 0 or 1, not %lld",
                      (long long)a->keepdims);
  /* Old opsets carry axes as an attribute; accept it at any opset (some exporters keep it) when
   * no axes input is given. */
  OD_TRY(od_attr_get_ints(node, "axes", a->axes, OD_MAX_DIMS, &a->n_axes, NULL, err));
  if (!a->axes_input && node->n_inputs > 1 && node->inputs[1] >= 0)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s-%lld takes axes as an attribute, not as an input",
                      node->op_type, (long long)node->opset);
  return OD_OK;
}

#define REDUCE_PARSE_FN(sym, kind, since)                                                      \
  static enum od_status sym##_parse(const struct od_node *node, void *attrs, struct od_err *err) { \
    return reduce_parse(node, attrs, err, kind, since);                                        \
  }
REDUCE_PARSE_FN(reduce_sum, REDUCE_SUM, 13)
REDUCE_PARSE_FN(reduce_mean, REDUCE_MEAN, 18)
REDUCE_PARSE_FN(reduce_max, REDUCE_MAX, 18)
REDUCE_PARSE_FN(reduce_min, REDUCE_MIN, 18)
REDUCE_PARSE_FN(reduce_prod, REDUCE_PROD, 18)
REDUCE_PARSE_FN(reduce_l1, REDUCE_L1, 18)
REDUCE_PARSE_FN(reduce_l2, REDUCE_L2, 18)
REDUCE_PARSE_FN(reduce_sum_square, REDUCE_SUM_SQUARE, 18)
REDUCE_PARSE_FN(reduce_log_sum, REDUCE_LOG_SUM, 18)
REDUCE_PARSE_FN(reduce_log_sum_exp, REDUCE_LOG_SUM_EXP, 18)

/* ---- which axes ------------------------------------------------------------------------------ */

/* Fills mask[d] (true = reduced) for an input of the given rank. axes_in is the axes input or NULL
 * when omitted (its data must be known). */
enum od_status reduce_mask(const struct reduce_attrs *a, int rank, const struct od_tensor *axes_in, bool *mask,
                           struct od_err *err) {
  int64_t axes[OD_MAX_DIMS];
  int64_t n = 0;
  if (axes_in) {
    if (axes_in->dtype != OD_DTYPE_INT64 && axes_in->dtype != OD_DTYPE_INT32)
      return od_err_set(err, OD_ERR_SHAPE, "axes must be int64, not %s", od_dtype_name(axes_in->dtype));
    n = od_tensor_numel(axes_in);
    if (axes_in->rank > 1 || n > rank)
      return od_err_set(err, OD_ERR_SHAPE, "axes has %lld values for an input of rank %d", (long long)n, rank);
    for (int64_t i = 0; i < n; i++) axes[i] = od_tensor_get_i64(axes_in, i);
  } else {
    n = (int64_t)a->n_axes;
    memcpy(axes, a->axes, sizeof(int64_t) * (size_t)n);
  }
  bool all = n == 0 && !a->noop_with_empty_axes;
  for (int d = 0; d < rank; d++) mask[d] = all;
  for (int64_t i = 0; i < n; i++) {
    int d;
    OD_TRY(od_axis_normalize(axes[i], rank, "axes value", &d, err));
    if (mask[d]) return od_err_set(err, OD_ERR_SHAPE, "axis %d appears twice in axes", d);
    mask[d] = true;
  }
  return OD_OK;
}

static bool reduce_dtype_ok(enum reduce_kind kind, int dtype) {
  switch (dtype) {
    case OD_DTYPE_FLOAT: case OD_DTYPE_DOUBLE:
    case OD_DTYPE_INT8: case OD_DTYPE_UINT8: case OD_DTYPE_INT16: case OD_DTYPE_UINT16:
    case OD_DTYPE_INT32: case OD_DTYPE_UINT32: case OD_DTYPE_INT64: case OD_DTYPE_UINT64:
      return true;
    case OD_DTYPE_BOOL:
      return kind == REDUCE_MAX || kind == REDUCE_MIN;
    default:
      return false;
  }
}

static enum od_status reduce_infer(struct od_infer_ctx *ctx) {
  const struct reduce_attrs *a = ctx->attrs;
  const struct od_tensor *x = &ctx->in[0];
  const struct od_tensor *axes_in = NULL;
  struct od_tensor *y = &ctx->out[0];
  if (!reduce_dtype_ok(a->kind, x->dtype))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "input dtype %s is not supported", od_dtype_name(x->dtype));
  y->dtype = x->dtype;
  if (a->axes_input && ctx->n_in > 1 && ctx->in[1].dtype != OD_DTYPE_UNDEFINED) {
    axes_in = &ctx->in[1];
    if (!axes_in->data && od_tensor_numel(axes_in) != 0) { /* an empty axes tensor may have no data */
      ctx->needs_values = true;
      return OD_OK;
    }
  }
  bool mask[OD_MAX_DIMS];
  OD_TRY(reduce_mask(a, x->rank, axes_in, mask, ctx->err));
  int r = 0;
  for (int d = 0; d < x->rank; d++) {
    if (!mask[d]) y->dims[r++] = x->dims[d];
    else if (a->keepdims) y->dims[r++] = 1;
  }
  y->rank = r;
  return OD_OK;
}

/* ---- layout ---------------------------------------------------------------------------------- */

/* How the input's elements map to output elements. Output element o reduces the elements at
 *   single layout:  (o / inner) * r * inner + o % inner + j * inner,          j in [0, r)
 *   general layout: base[o] + roff[j],                                         j in [0, r)
 * The single layout covers every case where the reduced axes are adjacent once size-1 dims are
 * dropped (the usual case: last axis, channel axis, spatial axes). */
struct reduce_layout {
  int64_t n_out, r, inner;
  int64_t *base, *roff;         /* general layout only (malloc'd), else NULL */
};

static enum od_status reduce_layout_make(const struct od_tensor *x, const bool *mask, struct reduce_layout *L,
                                         struct od_err *err) {
  /* Drop size-1 dims and merge runs of dims with the same mask into groups. */
  int64_t gdim[OD_MAX_DIMS];
  bool gred[OD_MAX_DIMS];
  int g = 0;
  for (int d = 0; d < x->rank; d++) {
    if (x->dims[d] == 1) continue;
    if (g > 0 && gred[g - 1] == mask[d]) {
      gdim[g - 1] *= x->dims[d];
    } else {
      gdim[g] = x->dims[d];
      gred[g] = mask[d];
      g++;
    }
  }
  int n_red = 0;
  for (int i = 0; i < g; i++) n_red += gred[i];
  memset(L, 0, sizeof *L);
  L->n_out = 1;
  L->r = 1;
  L->inner = 1;
  for (int i = 0; i < g; i++) {
    if (gred[i]) L->r *= gdim[i];
    else L->n_out *= gdim[i];
  }
  if (n_red <= 1) {
    for (int i = g - 1; i >= 0 && !gred[i]; i--) L->inner *= gdim[i];
    return OD_OK;
  }
  /* General layout: offsets of the reduced elements, and of each output's first element. */
  int64_t stride[OD_MAX_DIMS];
  int64_t s = 1;
  for (int i = g - 1; i >= 0; i--) {
    stride[i] = s;
    s *= gdim[i];
  }
  L->base = malloc(sizeof(int64_t) * (size_t)(L->n_out ? L->n_out : 1));
  L->roff = malloc(sizeof(int64_t) * (size_t)(L->r ? L->r : 1));
  if (!L->base || !L->roff) {
    free(L->base);
    free(L->roff);
    return od_err_set(err, OD_ERR_OOM, "out of memory for a reduction's offset tables");
  }
  for (int pass = 0; pass < 2; pass++) {
    bool want_red = pass == 1;
    int64_t *dst = want_red ? L->roff : L->base;
    int64_t count = want_red ? L->r : L->n_out;
    int64_t idx[OD_MAX_DIMS] = {0};
    for (int64_t k = 0; k < count; k++) {
      int64_t off = 0;
      for (int i = 0; i < g; i++)
        if (gred[i] == want_red) off += idx[i] * stride[i];
      dst[k] = off;
      for (int i = g - 1; i >= 0; i--) { /* odometer over this pass's groups */
        if (gred[i] != want_red) continue;
        if (++idx[i] < gdim[i]) break;
        idx[i] = 0;
      }
    }
  }
  return OD_OK;
}

/* ---- kernels --------------------------------------------------------------------------------- */

/* REDUCE_DEFINE generates, for one element type T:
 *   reduce_one_<NAME>(kind, x, n, stride, roff) -> the reduction of x[j*stride] (or x[roff[j]]),
 *   reduce_task_<NAME>: the parallel_for body over output elements.
 * ACC is the accumulator (double for floats, int64/uint64 for integers); LOWEST/HIGHEST are the
 * identities of max and min; IS_FLOAT selects NaN/inf results for empty reductions; ABS(v) is
 * |v| as ACC. */
#define REDUCE_LOOP(stmt)                                                                    \
  do {                                                                                       \
    if (roff) {                                                                              \
      for (int64_t j = 0; j < n; j++) { reduce_elem v = x[roff[j]]; stmt; }                            \
    } else if (stride == 1) {                                                                \
      for (int64_t j = 0; j < n; j++) { reduce_elem v = x[j]; stmt; }                                  \
    } else {                                                                                 \
      for (int64_t j = 0; j < n; j++) { reduce_elem v = x[j * stride]; stmt; }                         \
    }                                                                                        \
  } while (0)

#define REDUCE_DEFINE(NAME, T, ACC, LOWEST, HIGHEST, IS_FLOAT, ABS)                                \
  static T reduce_one_##NAME(enum reduce_kind kind, const T *x, int64_t n, int64_t stride,     \
                             const int64_t *roff) {                                           \
    typedef T reduce_elem; /* the element type REDUCE_LOOP reads */                           \
    ACC acc = 0;                                                                              \
    switch (kind) {                                                                           \
      case REDUCE_MAX: {                                                                      \
        T m = LOWEST;                                                                         \
        REDUCE_LOOP(if (v > m || v != v) m = v);                                              \
        return m;                                                                             \
      }                                                                                       \
      case REDUCE_MIN: {                                                                      \
        T m = HIGHEST;                                                                        \
        REDUCE_LOOP(if (v < m || v != v) m = v);                                              \
        return m;                                                                             \
      }                                                                                       \
      case REDUCE_SUM:                                                                        \
        REDUCE_LOOP(acc += (ACC)v);                                                           \
        return (T)acc;                                                                        \
      case REDUCE_MEAN:                                                                       \
        REDUCE_LOOP(acc += (ACC)v);                                                           \
        if (n == 0) return IS_FLOAT ? (T)NAN : (T)0;                                          \
        return (T)(acc / (ACC)n);                                                             \
      case REDUCE_PROD:                                                                       \
        acc = 1;                                                                              \
        REDUCE_LOOP(acc *= (ACC)v);                                                           \
        return (T)acc;                                                                        \
      case REDUCE_L1:                                                                         \
        REDUCE_LOOP(acc += ABS(v));                                                           \
        return (T)acc;                                                                        \
      case REDUCE_SUM_SQUARE:                                                                 \
        REDUCE_LOOP(acc += (ACC)v * (ACC)v);                                                  \
        return (T)acc;                                                                        \
      case REDUCE_L2:                                                                         \
        REDUCE_LOOP(acc += (ACC)v * (ACC)v);                                                  \
        return (T)sqrt((double)acc);                                                          \
      case REDUCE_LOG_SUM:                                                                    \
        REDUCE_LOOP(acc += (ACC)v);                                                           \
        return (T)log((double)acc);                                                           \
      case REDUCE_LOG_SUM_EXP: {                                                              \
        /* log(sum(exp(x))) = m + log(sum(exp(x - m))) with m = max(x): no overflow. */       \
        double m = -INFINITY, s = 0;                                                          \
        REDUCE_LOOP(if ((double)v > m) m = (double)v);                                        \
        if (n == 0 || isinf(m)) return (T)m;                                                  \
        REDUCE_LOOP(s += exp((double)v - m));                                                 \
        return (T)(m + log(s));                                                               \
      }                                                                                       \
    }                                                                                         \
    return (T)0;                                                                              \
  }

#define REDUCE_ABS_SIGNED(v) ((v) < 0 ? -(double)(v) : (double)(v))
#define REDUCE_ABS_INT(v) ((v) < 0 ? -(int64_t)(v) : (int64_t)(v))
#define REDUCE_ABS_UINT(v) ((uint64_t)(v))
REDUCE_DEFINE(f32, float, double, -INFINITY, INFINITY, 1, REDUCE_ABS_SIGNED)
REDUCE_DEFINE(f64, double, double, -INFINITY, INFINITY, 1, REDUCE_ABS_SIGNED)
REDUCE_DEFINE(i8, int8_t, int64_t, INT8_MIN, INT8_MAX, 0, REDUCE_ABS_INT)
REDUCE_DEFINE(u8, uint8_t, uint64_t, 0, UINT8_MAX, 0, REDUCE_ABS_UINT)
REDUCE_DEFINE(i16, int16_t, int64_t, INT16_MIN, INT16_MAX, 0, REDUCE_ABS_INT)
REDUCE_DEFINE(u16, uint16_t, uint64_t, 0, UINT16_MAX, 0, REDUCE_ABS_UINT)
REDUCE_DEFINE(i32, int32_t, int64_t, INT32_MIN, INT32_MAX, 0, REDUCE_ABS_INT)
REDUCE_DEFINE(u32, uint32_t, uint64_t, 0, UINT32_MAX, 0, REDUCE_ABS_UINT)
REDUCE_DEFINE(i64, int64_t, int64_t, INT64_MIN, INT64_MAX, 0, REDUCE_ABS_INT)
REDUCE_DEFINE(u64, uint64_t, uint64_t, 0, UINT64_MAX, 0, REDUCE_ABS_UINT)
REDUCE_DEFINE(b8, uint8_t, uint64_t, 0, 1, 0, REDUCE_ABS_UINT) /* bool: max = any, min = all */

struct reduce_task {
  enum reduce_kind kind;
  int dtype;
  const void *x;
  void *y;
  const struct reduce_layout *L;
};

/* One output element o of element type T (NAME): its first input element and stride. */
#define REDUCE_RANGE_CASE(CODE, NAME, T)                                                        \
  case CODE: {                                                                               \
    const T *x = t->x;                                                                       \
    T *y = t->y;                                                                             \
    for (int64_t o = begin; o < end; o++) {                                                  \
      if (L->roff)                                                                           \
        y[o] = reduce_one_##NAME(t->kind, x + L->base[o], L->r, 1, L->roff);                  \
      else                                                                                   \
        y[o] = reduce_one_##NAME(t->kind, x + (o / L->inner) * L->r * L->inner + o % L->inner, \
                                 L->r, L->inner, NULL);                                      \
    }                                                                                        \
    break;                                                                                   \
  }

static void reduce_range(void *vt, int64_t begin, int64_t end) {
  const struct reduce_task *t = vt;
  const struct reduce_layout *L = t->L;
  switch (t->dtype) {
    REDUCE_RANGE_CASE(OD_DTYPE_FLOAT, f32, float)
    REDUCE_RANGE_CASE(OD_DTYPE_DOUBLE, f64, double)
    REDUCE_RANGE_CASE(OD_DTYPE_INT8, i8, int8_t)
    REDUCE_RANGE_CASE(OD_DTYPE_UINT8, u8, uint8_t)
    REDUCE_RANGE_CASE(OD_DTYPE_INT16, i16, int16_t)
    REDUCE_RANGE_CASE(OD_DTYPE_UINT16, u16, uint16_t)
    REDUCE_RANGE_CASE(OD_DTYPE_INT32, i32, int32_t)
    REDUCE_RANGE_CASE(OD_DTYPE_UINT32, u32, uint32_t)
    REDUCE_RANGE_CASE(OD_DTYPE_INT64, i64, int64_t)
    REDUCE_RANGE_CASE(OD_DTYPE_UINT64, u64, uint64_t)
    REDUCE_RANGE_CASE(OD_DTYPE_BOOL, b8, uint8_t)
    default: break;
  }
}

/* Float fast path for a reduced axis with contiguous elements after it ((outer, r, inner) with
 * inner > 1, e.g. a reduction over channels): walks the input row by row, accumulating a block
 * of outputs at once, instead of striding through memory per output. Work item = (outer index,
 * block of REDUCE_BLOCK outputs along inner). */
#define REDUCE_BLOCK 256

static void reduce_rows_f32(void *vt, int64_t begin, int64_t end) {
  const struct reduce_task *t = vt;
  const struct reduce_layout *L = t->L;
  const float *x = t->x;
  float *y = t->y;
  int64_t nblk = (L->inner + REDUCE_BLOCK - 1) / REDUCE_BLOCK, r = L->r;
  double acc[REDUCE_BLOCK];
  float m[REDUCE_BLOCK];
  for (int64_t w = begin; w < end; w++) {
    int64_t a = w / nblk, i0 = (w % nblk) * REDUCE_BLOCK;
    int64_t nb = L->inner - i0 < REDUCE_BLOCK ? L->inner - i0 : REDUCE_BLOCK;
    const float *xa = x + a * r * L->inner + i0;
    float *ya = y + a * L->inner + i0;
    if (t->kind == REDUCE_MAX || t->kind == REDUCE_MIN) {
      bool mx = t->kind == REDUCE_MAX;
      for (int64_t i = 0; i < nb; i++) m[i] = mx ? -INFINITY : INFINITY;
      for (int64_t j = 0; j < r; j++) {
        const float *row = xa + j * L->inner;
        if (mx) {
          for (int64_t i = 0; i < nb; i++) m[i] = (row[i] > m[i] || row[i] != row[i]) ? row[i] : m[i];
        } else {
          for (int64_t i = 0; i < nb; i++) m[i] = (row[i] < m[i] || row[i] != row[i]) ? row[i] : m[i];
        }
      }
      memcpy(ya, m, sizeof(float) * (size_t)nb);
      continue;
    }
    bool sq = t->kind == REDUCE_SUM_SQUARE || t->kind == REDUCE_L2;
    for (int64_t i = 0; i < nb; i++) acc[i] = 0;
    for (int64_t j = 0; j < r; j++) {
      const float *row = xa + j * L->inner;
      if (sq) {
        for (int64_t i = 0; i < nb; i++) acc[i] += (double)row[i] * row[i];
      } else {
        for (int64_t i = 0; i < nb; i++) acc[i] += row[i];
      }
    }
    for (int64_t i = 0; i < nb; i++) {
      switch (t->kind) {
        case REDUCE_MEAN: ya[i] = r ? (float)(acc[i] / (double)r) : NAN; break;
        case REDUCE_L2: ya[i] = (float)sqrt(acc[i]); break;
        default: ya[i] = (float)acc[i]; break;
      }
    }
  }
}

static enum od_status reduce_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct reduce_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  const struct od_tensor *axes_in = a->axes_input && ctx->n_in > 1 ? ctx->in[1] : NULL;
  struct od_tensor *y = ctx->out[0];
  bool mask[OD_MAX_DIMS];
  OD_TRY(reduce_mask(a, x->rank, axes_in, mask, ctx->err));
  struct reduce_layout L;
  OD_TRY(reduce_layout_make(x, mask, &L, ctx->err));
  if (L.n_out != od_tensor_numel(y)) {
    free(L.base);
    free(L.roff);
    return od_err_set(ctx->err, OD_ERR_INTERNAL, "output has %lld elements, the reduction gives %lld",
                      (long long)od_tensor_numel(y), (long long)L.n_out);
  }
  struct reduce_task t = {a->kind, x->dtype, x->data, y->data, &L};
  /* Roughly 16k input elements per chunk keeps small reductions on one thread. */
  int64_t per_out = L.r > 0 ? L.r : 1;
  bool rows = x->dtype == OD_DTYPE_FLOAT && !L.roff && L.inner >= 16 &&
              (a->kind == REDUCE_SUM || a->kind == REDUCE_MEAN || a->kind == REDUCE_MAX ||
               a->kind == REDUCE_MIN || a->kind == REDUCE_SUM_SQUARE || a->kind == REDUCE_L2);
  if (rows) {
    int64_t nblk = (L.inner + REDUCE_BLOCK - 1) / REDUCE_BLOCK;
    int64_t items = (L.n_out / L.inner) * nblk;
    int64_t work = per_out * REDUCE_BLOCK;
    od_pool_parallel_for(ctx->pool, items, (16384 + work - 1) / work, reduce_rows_f32, &t);
  } else {
    od_pool_parallel_for(ctx->pool, L.n_out, (16384 + per_out - 1) / per_out, reduce_range, &t);
  }
  free(L.base);
  free(L.roff);
  return OD_OK;
}

/* ---- backward -------------------------------------------------------------------------------- */

/* For output element o reducing x_1..x_r into y (the same layout as the forward), dY = d:
 *   Sum:        dx_j += d                      Mean:       dx_j += d / r
 *   Max, Min:   dx_j += d / t for the t elements equal to y (ties share, as torch.amax does)
 *   Prod:       dx_j += d * prod_{k != j} x_k  (no zero: y / x_j; one zero: only that element,
 *                                               by the product of the others; two or more: 0)
 *   L1:         dx_j += d * sign(x_j)          L2:         dx_j += d * x_j / y   (0 where y = 0)
 *   SumSquare:  dx_j += 2 d x_j                LogSum:     dx_j += d / sum(x) = d * exp(-y)
 *   LogSumExp:  dx_j += d * exp(x_j - y)
 * Each input element belongs to one output, so outputs run in parallel without conflicts. */
struct reduce_bwd_task {
  enum reduce_kind kind;
  const void *x, *y, *dy;
  void *dx;
  const struct reduce_layout *L;
};

#define REDUCE_BWD_DEFINE(NAME, T)                                                              \
  static void reduce_bwd_##NAME(void *vt, int64_t begin, int64_t end) {                        \
    const struct reduce_bwd_task *t = vt;                                                      \
    const struct reduce_layout *L = t->L;                                                      \
    const T *xa = t->x;                                                                        \
    T *dxa = t->dx;                                                                            \
    int64_t r = L->r;                                                                          \
    for (int64_t o = begin; o < end; o++) {                                                    \
      int64_t b = L->roff ? L->base[o] : (o / L->inner) * r * L->inner + o % L->inner;         \
      int64_t st = L->roff ? 0 : L->inner;                                                     \
      const int64_t *roff = L->roff;                                                           \
      const T *x = xa + b;                                                                     \
      T *dx = dxa + b;                                                                         \
      double d = ((const T *)t->dy)[o], y = ((const T *)t->y)[o];                              \
      switch (t->kind) {                                                                       \
        case REDUCE_SUM:                                                                       \
          for (int64_t j = 0; j < r; j++) dx[roff ? roff[j] : j * st] += (T)d;                \
          break;                                                                               \
        case REDUCE_MEAN:                                                                      \
          for (int64_t j = 0; j < r; j++) dx[roff ? roff[j] : j * st] += (T)(d / (double)r);  \
          break;                                                                               \
        case REDUCE_MAX:                                                                       \
        case REDUCE_MIN: {                                                                     \
          int64_t ties = 0;                                                                    \
          for (int64_t j = 0; j < r; j++) ties += x[roff ? roff[j] : j * st] == (T)y;          \
          for (int64_t j = 0; ties && j < r; j++) {                                            \
            int64_t e = roff ? roff[j] : j * st;                                               \
            if (x[e] == (T)y) dx[e] += (T)(d / (double)ties);                                  \
          }                                                                                    \
          break;                                                                               \
        }                                                                                      \
        case REDUCE_PROD: {                                                                    \
          int64_t zeros = 0, zero_at = -1;                                                     \
          double p = 1;                                                                        \
          for (int64_t j = 0; j < r; j++) {                                                    \
            int64_t e = roff ? roff[j] : j * st;                                               \
            if (x[e] == 0) {                                                                   \
              zeros++;                                                                         \
              zero_at = e;                                                                     \
            } else {                                                                           \
              p *= x[e];                                                                       \
            }                                                                                  \
          }                                                                                    \
          if (zeros == 1) dx[zero_at] += (T)(d * p);                                           \
          if (zeros == 0)                                                                      \
            for (int64_t j = 0; j < r; j++) {                                                  \
              int64_t e = roff ? roff[j] : j * st;                                             \
              dx[e] += (T)(d * p / (double)x[e]);                                              \
            }                                                                                  \
          break;                                                                               \
        }                                                                                      \
        case REDUCE_L1:                                                                        \
          for (int64_t j = 0; j < r; j++) {                                                    \
            int64_t e = roff ? roff[j] : j * st;                                               \
            dx[e] += (T)(x[e] > 0 ? d : x[e] < 0 ? -d : 0.0);                                  \
          }                                                                                    \
          break;                                                                               \
        case REDUCE_L2:                                                                        \
          if (y == 0) break;                                                                   \
          for (int64_t j = 0; j < r; j++) {                                                    \
            int64_t e = roff ? roff[j] : j * st;                                               \
            dx[e] += (T)(d * (double)x[e] / y);                                                \
          }                                                                                    \
          break;                                                                               \
        case REDUCE_SUM_SQUARE:                                                                \
          for (int64_t j = 0; j < r; j++) {                                                    \
            int64_t e = roff ? roff[j] : j * st;                                               \
            dx[e] += (T)(2 * d * (double)x[e]);                                                \
          }                                                                                    \
          break;                                                                               \
        case REDUCE_LOG_SUM: {                                                                 \
          double k = d * exp(-y);                                                              \
          for (int64_t j = 0; j < r; j++) dx[roff ? roff[j] : j * st] += (T)k;                \
          break;                                                                               \
        }                                                                                      \
        case REDUCE_LOG_SUM_EXP:                                                               \
          for (int64_t j = 0; j < r; j++) {                                                    \
            int64_t e = roff ? roff[j] : j * st;                                               \
            dx[e] += (T)(d * exp((double)x[e] - y));                                           \
          }                                                                                    \
          break;                                                                               \
      }                                                                                        \
    }                                                                                          \
  }

REDUCE_BWD_DEFINE(f32, float)
REDUCE_BWD_DEFINE(f64, double)

static enum od_status reduce_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct reduce_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *dy = ctx->dout[0];
  const struct od_tensor *axes_in = a->axes_input && ctx->n_in > 1 ? ctx->in[1] : NULL;
  if (!dy || !ctx->din[0]) return OD_OK;
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "backward: input dtype %s is not supported (float, double)",
                      od_dtype_name(x->dtype));
  bool mask[OD_MAX_DIMS];
  OD_TRY(reduce_mask(a, x->rank, axes_in, mask, ctx->err));
  struct reduce_layout L;
  OD_TRY(reduce_layout_make(x, mask, &L, ctx->err));
  struct reduce_bwd_task t = {a->kind, x->data, ctx->out[0]->data, dy->data, ctx->din[0]->data, &L};
  int64_t per_out = L.r > 0 ? L.r : 1;
  od_pool_parallel_for(ctx->pool, L.n_out, (16384 + per_out - 1) / per_out,
                       x->dtype == OD_DTYPE_FLOAT ? reduce_bwd_f32 : reduce_bwd_f64, &t);
  free(L.base);
  free(L.roff);
  return OD_OK;
}

/* ---- kernel tables --------------------------------------------------------------------------- */

#define REDUCE_NUMERIC "float, double, int8, uint8, int16, uint16, int32, uint32, int64, uint64"
#define REDUCE_KERNELS(sym, dtypes_str)                                    \
  const struct od_op_kernels od_kernels_##sym = {                          \
      .attrs_size = sizeof(struct reduce_attrs),                           \
      .parse = sym##_parse,                                                \
      .infer = reduce_infer,                                               \
      .forward = {[OD_DEVICE_CPU] = reduce_forward_cpu,                    \
                  [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_reduce_fwd)},  \
      .backward = {[OD_DEVICE_CPU] = reduce_backward_cpu,                  \
                   [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_reduce_bwd)}, \
      .no_grad_inputs = 1u << 1, /* axes */                                \
      .flags = OD_OP_FOLDABLE,                                             \
      .dtypes = dtypes_str,                                                \
  };
REDUCE_KERNELS(reduce_sum, REDUCE_NUMERIC)
REDUCE_KERNELS(reduce_mean, REDUCE_NUMERIC)
REDUCE_KERNELS(reduce_max, REDUCE_NUMERIC ", bool")
REDUCE_KERNELS(reduce_min, REDUCE_NUMERIC ", bool")
REDUCE_KERNELS(reduce_prod, REDUCE_NUMERIC)
REDUCE_KERNELS(reduce_l1, REDUCE_NUMERIC)
REDUCE_KERNELS(reduce_l2, REDUCE_NUMERIC)
REDUCE_KERNELS(reduce_sum_square, REDUCE_NUMERIC)
REDUCE_KERNELS(reduce_log_sum, REDUCE_NUMERIC)
REDUCE_KERNELS(reduce_log_sum_exp, REDUCE_NUMERIC)
