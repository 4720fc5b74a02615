/* ops/variadic.c: elementwise ops over 1..N inputs (Min, Max, Sum, Mean) and Where.
 *
 * ONNX ops (spec: https://onnx.ai/onnx/operators/onnx__<Op>.html):
 *   Min, Max    since 1: opsets 1 and 6 required equal shapes (a subset of what we do), 8+ numpy
 *               broadcasting, 12 added integer dtypes. NaN propagates (like numpy's minimum).
 *   Sum, Mean   since 1 (same history, float dtypes only in the spec; Sum here takes integers too).
 *   Where       since 9 (16 added bfloat16): Y = condition ? X : Y, all three broadcast.
 * opset 1's consumed_inputs attribute (an in-place hint) is ignored.
 * dtypes: Min, Max, Sum: float, double, int8..int64, uint8..uint64; Mean: float, double;
 *   float16/bfloat16 computed in float32. Where: any dtype (copied by element size).
 *
 * The N-input ops fold pairwise into the output: y = f(x0, x1), then y = f(y, xi) for i >= 2
 * (each step broadcasting xi to y's final shape), and Mean divides by N at the end.
 *
 * Backward (float and double), each input's gradient summed over the dims it was broadcast along
 * (ew_reduce_grad):
 *   Sum    dXi += dY
 *   Mean   dXi += dY / N
 *   Min, Max  dXi += dY where input i is the one selected, else 0. Ties go to the FIRST input
 *          holding the result (lowest index; deterministic, and the whole gradient goes to one
 *          input, unlike PyTorch's maximum/minimum which split a two-way tie in halves); when the
 *          result is NaN, the first NaN input takes it. With two inputs the test is direct
 *          (x0 holds the result, or not); with more, a selection of one int32 index per output
 *          element is built first.
 *   Where  dX += condition ? dY : 0,  dY_in += condition ? 0 : dY; the condition takes none. */
/* GCC 12's -O2 vectorises only loops whose trip count is a multiple of the vector width
 * ("very-cheap" cost model), and with -ftrapping-math (its default; clang's is off) it keeps the
 * compares of `x < 0 ? a : b` as branches. Nothing here reads floating-point exception flags, and
 * these elementwise loops are where vectorising pays (4-10x on cache-resident tensors). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic", "no-trapping-math")
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/elementwise.h"
#include "ops/op.h"
#include "runtime/pool.h"

#define MINMAX_FLOAT(CODE, T, U)                                     \
  EW_BIN_LOOP(min_##CODE, T, T, T, (av < bv || isnan(av)) ? av : bv) \
  EW_BIN_LOOP(max_##CODE, T, T, T, (av > bv || isnan(av)) ? av : bv) \
  EW_BIN_LOOP(sum_##CODE, T, T, T, av + bv)
#define MINMAX_INT(CODE, T, U)                        \
  EW_BIN_LOOP(min_##CODE, T, T, T, av < bv ? av : bv) \
  EW_BIN_LOOP(max_##CODE, T, T, T, av > bv ? av : bv) \
  EW_BIN_LOOP(sum_##CODE, T, T, T, (uint64_t)av + (uint64_t)bv) /* wraps, like numpy */
EW_FLOAT_TYPES(MINMAX_FLOAT)
EW_INT_TYPES(MINMAX_INT)

#define NUM_ENTRIES(name)                                                                            \
  [OD_DTYPE_FLOAT] = name##_FLOAT, [OD_DTYPE_DOUBLE] = name##_DOUBLE, [OD_DTYPE_INT8] = name##_INT8, \
  [OD_DTYPE_INT16] = name##_INT16, [OD_DTYPE_INT32] = name##_INT32, [OD_DTYPE_INT64] = name##_INT64, \
  [OD_DTYPE_UINT8] = name##_UINT8, [OD_DTYPE_UINT16] = name##_UINT16,                                \
  [OD_DTYPE_UINT32] = name##_UINT32, [OD_DTYPE_UINT64] = name##_UINT64

struct variadic_def {
  const char *op_type;
  ew_bcast_fn loops[EW_NDTYPES]; /* float16/bfloat16 use [FLOAT] */
  bool mean;                     /* divide by the input count at the end */
  bool select;                   /* Min, Max: the gradient goes to the selected input */
};

static const struct variadic_def variadic_defs[] = {
    {"Min", {NUM_ENTRIES(min)}, false, true},
    {"Max", {NUM_ENTRIES(max)}, false, true},
    {"Sum", {NUM_ENTRIES(sum)}, false, false},
    {"Mean", {[OD_DTYPE_FLOAT] = sum_FLOAT, [OD_DTYPE_DOUBLE] = sum_DOUBLE}, true, false},
};

struct variadic_attrs {
  const struct variadic_def *def;
};

static enum od_status variadic_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct variadic_attrs *a = attrs;
  for (size_t i = 0; i < sizeof variadic_defs / sizeof variadic_defs[0]; i++)
    if (!strcmp(variadic_defs[i].op_type, node->op_type)) a->def = &variadic_defs[i];
  if (!a->def) return od_err_set(err, OD_ERR_INTERNAL, "no variadic table entry for %s", node->op_type);
  return OD_OK;
}

static enum od_status variadic_infer(struct od_infer_ctx *ctx) {
  const struct variadic_def *d = ((const struct variadic_attrs *)ctx->attrs)->def;
  if (ctx->n_in < 1) return od_err_set(ctx->err, OD_ERR_SHAPE, "%s needs at least one input", d->op_type);
  int dt = ctx->in[0].dtype;
  for (int i = 0; i < ctx->n_in; i++) {
    if (!ctx->in[i].dtype) return od_err_set(ctx->err, OD_ERR_SHAPE, "input %d is missing", i);
    if (ctx->in[i].dtype != dt)
      return od_err_set(ctx->err, OD_ERR_SHAPE, "inputs have different dtypes: %s (input 0) and %s (input %d)",
                        od_dtype_name(dt), od_dtype_name(ctx->in[i].dtype), i);
  }
  int lt = ew_is_half(dt) ? OD_DTYPE_FLOAT : dt;
  if (lt <= 0 || lt >= EW_NDTYPES || !d->loops[lt]) return ew_err_dtype(ctx->err, d->op_type, dt);
  OD_TRY(ew_infer_broadcast(ctx, 0, ctx->n_in, &ctx->out[0]));
  ctx->out[0].dtype = dt;
  return OD_OK;
}

/* y /= n over float or double values. */
struct mean_job {
  void *y;
  int dtype;
  double n;
};

static void mean_range(void *ctx, int64_t b, int64_t e) {
  const struct mean_job *j = ctx;
  if (j->dtype == OD_DTYPE_FLOAT) {
    float *y = j->y, n = (float)j->n;
    for (int64_t i = b; i < e; i++) y[i] /= n;
  } else {
    double *y = j->y;
    for (int64_t i = b; i < e; i++) y[i] /= j->n;
  }
}

static enum od_status variadic_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct variadic_def *d = ((const struct variadic_attrs *)ctx->attrs)->def;
  struct od_tensor *y = ctx->out[0];
  int n = ctx->n_in;
  if (n == 1) { /* the output has the one input's shape */
    if (y->data != ctx->in[0]->data) memcpy(y->data, ctx->in[0]->data, od_tensor_nbytes(y));
    return OD_OK;
  }
  /* float16/bfloat16: widen every input once and fold in a float32 output buffer. */
  bool half = ew_is_half(y->dtype);
  struct od_tensor yw = *y, xw[2];
  float *ybuf = NULL, *xbuf[2] = {NULL, NULL};
  enum od_status s = OD_OK;
  if (half) {
    int64_t numel = od_tensor_numel(y);
    if (!(ybuf = malloc((size_t)(numel > 0 ? numel : 1) * sizeof(float))))
      return od_err_set(ctx->err, OD_ERR_OOM, "out of memory for %lld float values", (long long)numel);
    yw.dtype = OD_DTYPE_FLOAT;
    yw.data = ybuf;
  }
  ew_bcast_fn fn = d->loops[half ? OD_DTYPE_FLOAT : y->dtype];
  for (int i = 1; i < n && s == OD_OK; i++) {
    /* step i: yw = f(i == 1 ? x0 : yw, xi) */
    s = ew_widen(ctx->in[i], &xw[1], &xbuf[1], ctx->err);
    if (s == OD_OK && i == 1) s = ew_widen(ctx->in[0], &xw[0], &xbuf[0], ctx->err);
    if (s != OD_OK) break;
    const struct od_tensor *xs[2] = {i == 1 ? &xw[0] : &yw, &xw[1]};
    ew_bcast_run(ctx->pool, &yw, 2, xs, fn, NULL, 1 << 15);
    free(xbuf[0]);
    free(xbuf[1]);
    xbuf[0] = xbuf[1] = NULL;
  }
  if (s == OD_OK && d->mean) {
    struct mean_job j = {yw.data, yw.dtype, (double)n};
    od_pool_parallel_for(ctx->pool, od_tensor_numel(&yw), 1 << 15, mean_range, &j);
  }
  if (s == OD_OK && half) ew_narrow(ybuf, y->dtype, y->data, od_tensor_numel(y));
  free(xbuf[0]);
  free(xbuf[1]);
  free(ybuf);
  return s;
}

/* ---- backward -------------------------------------------------------------------------------- */

/* Min/Max selection: sel[i] = the first k with x_k[i] == y[i] (or both NaN). The loop's output is
 * sel itself (read and written: -1 until an input claims the element); x[0] = Y, x[1] = x_k. */
#define SELECT_LOOP(CODE, T, U)                                                                          \
  static void select_##CODE(void *s_, const void *const *x, const int64_t *step, int64_t n, const void *p) { \
    int32_t *sel = s_;                                                                                   \
    const T *y = x[0], *xk = x[1];                                                                       \
    const int32_t k = *(const int32_t *)p;                                                               \
    const int64_t sk = step[1];                                                                          \
    for (int64_t i = 0; i < n; i++) {                                                                    \
      const T v = xk[i * sk];                                                                            \
      if (sel[i] < 0 && (v == y[i] || (isnan(v) && isnan(y[i])))) sel[i] = k;                            \
    }                                                                                                    \
  }
#define PICK_GRAD(CODE, T, U)                                                                     \
  EW_GRAD_LOOP(pickg_##CODE, T, int32_t, int32_t, av == *(const int32_t *)P ? g : 0)              \
  /* two inputs: a = x0, b = Y; x0 is selected where it holds the result, x1 everywhere else */  \
  EW_GRAD_LOOP(pick0g_##CODE, T, T, T, (av == bv || (isnan(av) && isnan(bv))) ? g : 0)            \
  EW_GRAD_LOOP(pick1g_##CODE, T, T, T, (av == bv || (isnan(av) && isnan(bv))) ? 0 : g)
#define WHERE_GRAD(CODE, T, U)                          \
  EW_GRAD_LOOP(wherexg_##CODE, T, uint8_t, uint8_t, av ? g : 0) \
  EW_GRAD_LOOP(whereyg_##CODE, T, uint8_t, uint8_t, av ? 0 : g)
EW_FLOAT_TYPES(SELECT_LOOP)
EW_FLOAT_TYPES(PICK_GRAD)
EW_FLOAT_TYPES(WHERE_GRAD)
#define GRAD_FN(name, dt) ((dt) == OD_DTYPE_FLOAT ? name##_FLOAT : name##_DOUBLE)

static enum od_status minmax_backward(struct od_kernel_ctx *ctx, const char *op) {
  const struct od_tensor *dY = ctx->dout[0], *Y = ctx->out[0];
  int dt = dY->dtype;
  int64_t n = od_tensor_numel(Y);
  if (n <= 0) return OD_OK;
  if (ctx->n_in == 2) { /* no selection tensor needed */
    if (ctx->din[0]) OD_TRY(ew_grad_bcast(ctx->pool, ctx->din[0], dY, ctx->in[0], Y, GRAD_FN(pick0g, dt), NULL, op, ctx->err));
    if (ctx->din[1]) OD_TRY(ew_grad_bcast(ctx->pool, ctx->din[1], dY, ctx->in[0], Y, GRAD_FN(pick1g, dt), NULL, op, ctx->err));
    return OD_OK;
  }
  struct od_tensor sel = *Y;
  sel.dtype = OD_DTYPE_INT32;
  if (!(sel.data = malloc((size_t)n * sizeof(int32_t))))
    return od_err_set(ctx->err, OD_ERR_OOM, "%s backward: out of memory for the selection", op);
  memset(sel.data, 0xff, (size_t)n * sizeof(int32_t)); /* -1: not claimed yet */
  int last = 0; /* inputs after the last one that wants a gradient cannot change the selection of it */
  for (int k = 0; k < ctx->n_in; k++)
    if (ctx->din[k]) last = k;
  for (int32_t k = 0; k <= last; k++) {
    const struct od_tensor *xs[2] = {Y, ctx->in[k]};
    ew_bcast_run(ctx->pool, &sel, 2, xs, GRAD_FN(select, dt), &k, 1 << 15);
  }
  enum od_status s = OD_OK;
  for (int32_t k = 0; k <= last && s == OD_OK; k++)
    if (ctx->din[k]) s = ew_grad_bcast(ctx->pool, ctx->din[k], dY, &sel, &sel, GRAD_FN(pickg, dt), &k, op, ctx->err);
  free(sel.data);
  return s;
}

static enum od_status variadic_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct variadic_def *d = ((const struct variadic_attrs *)ctx->attrs)->def;
  const struct od_tensor *dY = ctx->dout[0];
  if (!dY) return OD_OK;
  if (!ew_is_grad_dtype(dY->dtype)) return ew_err_grad_dtype(ctx->err, d->op_type, dY->dtype);
  if (d->select) return minmax_backward(ctx, d->op_type);
  double scale = d->mean ? 1.0 / ctx->n_in : 1.0; /* Sum, Mean */
  for (int k = 0; k < ctx->n_in; k++)
    if (ctx->din[k]) OD_TRY(ew_reduce_grad(ctx->pool, ctx->din[k], dY, scale, d->op_type, ctx->err));
  return OD_OK;
}

#define VARIADIC_KERNELS(sym, dtype_list)                                                               \
  const struct od_op_kernels od_kernels_##sym = {.attrs_size = sizeof(struct variadic_attrs),           \
                                                 .parse = variadic_parse,                               \
                                                 .infer = variadic_infer,                               \
                                                 .forward = {[OD_DEVICE_CPU] = variadic_forward_cpu,    \
                                                             [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_##sym##_fwd)}, \
                                                 .backward = {[OD_DEVICE_CPU] = variadic_backward_cpu,  \
                                                              [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_##sym##_bwd)}, \
                                                 .flags = OD_OP_FOLDABLE,                               \
                                                 .dtypes = dtype_list};

VARIADIC_KERNELS(min, "float, double, float16, bfloat16, int8..int64, uint8..uint64")
VARIADIC_KERNELS(max, "float, double, float16, bfloat16, int8..int64, uint8..uint64")
VARIADIC_KERNELS(sum, "float, double, float16, bfloat16, int8..int64, uint8..uint64")
VARIADIC_KERNELS(mean, "float, double, float16, bfloat16")

/* ---- Where ---------------------------------------------------------------------------------------
 * Y = condition ? X : Y elementwise with three-way numpy broadcasting. The data is only moved, so
 * one loop per element size serves every dtype. */

#define WHERE_LOOP(BYTES, T)                                                                                 \
  static void where_##BYTES(void *y_, const void *const *x, const int64_t *step, int64_t n, const void *p) { \
    const uint8_t *c = x[0];                                                                                 \
    const T *a = x[1], *b = x[2];                                                                            \
    T *y = y_;                                                                                               \
    (void)p;                                                                                                 \
    if (step[0] && step[1] && step[2]) {                                                                     \
      for (int64_t i = 0; i < n; i++) y[i] = c[i] ? a[i] : b[i];                                             \
      return;                                                                                                \
    }                                                                                                        \
    const int64_t sc = step[0], sa = step[1], sb = step[2];                                                  \
    for (int64_t i = 0; i < n; i++) y[i] = c[i * sc] ? a[i * sa] : b[i * sb];                                \
  }
WHERE_LOOP(1, uint8_t)
WHERE_LOOP(2, uint16_t)
WHERE_LOOP(4, uint32_t)
WHERE_LOOP(8, uint64_t)

static enum od_status where_infer(struct od_infer_ctx *ctx) {
  if (ctx->n_in < 3 || !ctx->in[0].dtype || !ctx->in[1].dtype || !ctx->in[2].dtype)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "Where needs three inputs (condition, X, Y)");
  if (ctx->in[0].dtype != OD_DTYPE_BOOL)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "condition must be bool, not %s", od_dtype_name(ctx->in[0].dtype));
  if (ctx->in[1].dtype != ctx->in[2].dtype)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "X and Y have different dtypes: %s and %s",
                      od_dtype_name(ctx->in[1].dtype), od_dtype_name(ctx->in[2].dtype));
  if (!od_dtype_is_supported(ctx->in[1].dtype)) return ew_err_dtype(ctx->err, "Where", ctx->in[1].dtype);
  OD_TRY(ew_infer_broadcast(ctx, 0, 3, &ctx->out[0]));
  ctx->out[0].dtype = ctx->in[1].dtype;
  return OD_OK;
}

static enum od_status where_forward_cpu(struct od_kernel_ctx *ctx) {
  struct od_tensor *y = ctx->out[0];
  const struct od_tensor *xs[3] = {ctx->in[0], ctx->in[1], ctx->in[2]};
  ew_bcast_fn fn;
  switch (od_dtype_size(y->dtype)) {
    case 1: fn = where_1; break;
    case 2: fn = where_2; break;
    case 4: fn = where_4; break;
    case 8: fn = where_8; break;
    default: return ew_err_dtype(ctx->err, "Where", y->dtype);
  }
  ew_bcast_run(ctx->pool, y, 3, xs, fn, NULL, 1 << 15);
  return OD_OK;
}

static enum od_status where_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *dY = ctx->dout[0], *C = ctx->in[0];
  if (!dY) return OD_OK;
  if (!ew_is_grad_dtype(dY->dtype)) return ew_err_grad_dtype(ctx->err, "Where", dY->dtype);
  int dt = dY->dtype;
  if (ctx->din[1]) OD_TRY(ew_grad_bcast(ctx->pool, ctx->din[1], dY, C, C, GRAD_FN(wherexg, dt), NULL, "Where", ctx->err));
  if (ctx->din[2]) OD_TRY(ew_grad_bcast(ctx->pool, ctx->din[2], dY, C, C, GRAD_FN(whereyg, dt), NULL, "Where", ctx->err));
  return OD_OK;
}

const struct od_op_kernels od_kernels_where = {.infer = where_infer,
                                               .forward = {[OD_DEVICE_CPU] = where_forward_cpu},
                                               .backward = {[OD_DEVICE_CPU] = where_backward_cpu},
                                               .no_grad_inputs = 0x1u, /* condition */
                                               .flags = OD_OP_FOLDABLE,
                                               .dtypes = "all tensor dtypes"};
