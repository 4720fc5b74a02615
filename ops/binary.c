/* ops/binary.c: binary elementwise ops with numpy broadcasting.
 *
 * ONNX ops (spec: https://onnx.ai/onnx/operators/onnx__<Op>.html):
 *   Add, Sub, Mul, Div   since 1: opsets 1 and 6 broadcast only with the attribute broadcast=1,
 *                        B aligned to A's dims at `axis` (default: trailing) ("legacy broadcasting"
 *                        below); opset 7+ numpy (multidirectional) broadcasting. 13/14 added dtypes.
 *   Pow                  since 1: same legacy form before 7; 12+ the exponent may have another
 *                        numeric dtype than the base (output: the base's dtype).
 *   Equal, Greater, Less since 1 (legacy form before 7); GreaterOrEqual, LessOrEqual since 12.
 *                        Output bool.
 *   PRelu                since 1: slope broadcast unidirectionally to X (opset 7+); failing that, a
 *                        1-D slope applies along the one dim of X with its length (opset 6
 *                        per-channel slopes; the ONNX reference's fallback).
 * dtypes: float, double, int8..int64, uint8..uint64 (+ bool for Equal); float16 and bfloat16 are
 *   computed in float32. Pow: base float, double, int32, int64 (+ halves); exponent any numeric.
 *   PRelu: float, double, int32, int64, uint32, uint64 (+ halves).
 * Integer semantics follow numpy (the ONNX reference): add/sub/mul wrap; Div truncates toward zero
 * (C, and test_div_int32_trunc), x / 0 gives 0 and INT_MIN / -1 wraps instead of trapping.
 *
 * Backward (float and double): each input's gradient is formed on the output's shape and summed
 * over the dims that input was broadcast along (ew_grad_bcast / ew_reduce_grad; legacy opset < 7
 * broadcasting and PRelu's 1-D slope reduce to the same view of B that forward reads):
 *   Add   dA += dY,           dB += dY
 *   Sub   dA += dY,           dB -= dY
 *   Mul   dA += dY B,         dB += dY A
 *   Div   dA += dY / B,       dB -= dY A / B^2
 *   Pow   dA += dY B A^(B-1)  (0 where B = 0, like PyTorch),
 *         dB += dY Y ln A where A > 0, else 0 (x^y has no real derivative in y for x < 0; PyTorch
 *         gives NaN there and 0 at A = 0). The exponent takes a gradient only when it is float or
 *         double (an integer exponent takes none).
 *   PRelu dX += dY (X > 0 ? 1 : slope),  dslope += dY (X > 0 ? 0 : X)  (PyTorch's convention at 0)
 * Comparisons (Equal, Greater, Less, ...) output bool: not differentiable, no backward. */
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

#include "ops/attr.h"
#include "ops/elementwise.h"
#include "ops/ew_attrs.h" /* od_binary_b_view (for ops/binary.cu) */
#include "ops/op.h"

/* ---- arithmetic and comparison loops ----------------------------------------------------------- */

#define ARITH_FLOAT(CODE, T, U)             \
  EW_BIN_LOOP(add_##CODE, T, T, T, av + bv) \
  EW_BIN_LOOP(sub_##CODE, T, T, T, av - bv) \
  EW_BIN_LOOP(mul_##CODE, T, T, T, av * bv) \
  EW_BIN_LOOP(div_##CODE, T, T, T, av / bv)
/* Integers: wrap-around in uint64 arithmetic (signed overflow would be undefined in C). */
#define ARITH_INT(CODE, T, U)                                   \
  EW_BIN_LOOP(add_##CODE, T, T, T, (uint64_t)av + (uint64_t)bv) \
  EW_BIN_LOOP(sub_##CODE, T, T, T, (uint64_t)av - (uint64_t)bv) \
  EW_BIN_LOOP(mul_##CODE, T, T, T, (uint64_t)av * (uint64_t)bv)
#define DIV_SINT(CODE, T, U) \
  EW_BIN_LOOP(div_##CODE, T, T, T, bv == 0 ? 0 : bv == -1 ? (T)(0 - (uint64_t)av) : av / bv)
#define DIV_UINT(CODE, T, U) EW_BIN_LOOP(div_##CODE, T, T, T, bv == 0 ? 0 : av / bv)
#define COMPARE(CODE, T, U)                       \
  EW_BIN_LOOP(eq_##CODE, T, T, uint8_t, av == bv) \
  EW_BIN_LOOP(gt_##CODE, T, T, uint8_t, av > bv)  \
  EW_BIN_LOOP(lt_##CODE, T, T, uint8_t, av < bv)  \
  EW_BIN_LOOP(ge_##CODE, T, T, uint8_t, av >= bv) \
  EW_BIN_LOOP(le_##CODE, T, T, uint8_t, av <= bv)

EW_FLOAT_TYPES(ARITH_FLOAT)
EW_INT_TYPES(ARITH_INT)
EW_SINT_TYPES(DIV_SINT)
EW_UINT_TYPES(DIV_UINT)
EW_NUM_TYPES(COMPARE)
EW_BIN_LOOP(eq_BOOL, uint8_t, uint8_t, uint8_t, av == bv)

#define NUM_ENTRIES(name)                                                                            \
  [OD_DTYPE_FLOAT] = name##_FLOAT, [OD_DTYPE_DOUBLE] = name##_DOUBLE, [OD_DTYPE_INT8] = name##_INT8, \
  [OD_DTYPE_INT16] = name##_INT16, [OD_DTYPE_INT32] = name##_INT32, [OD_DTYPE_INT64] = name##_INT64, \
  [OD_DTYPE_UINT8] = name##_UINT8, [OD_DTYPE_UINT16] = name##_UINT16,                                \
  [OD_DTYPE_UINT32] = name##_UINT32, [OD_DTYPE_UINT64] = name##_UINT64

/* ---- PRelu: Y = X < 0 ? slope * X : X ------------------------------------------------------------ */
#define PRELU_FLOAT(CODE, T, U) EW_BIN_LOOP(prelu_##CODE, T, T, T, av < 0 ? av * bv : av)
EW_FLOAT_TYPES(PRELU_FLOAT)
EW_BIN_LOOP(prelu_INT32, int32_t, int32_t, int32_t, av < 0 ? (uint64_t)av * (uint64_t)bv : (uint64_t)av)
EW_BIN_LOOP(prelu_INT64, int64_t, int64_t, int64_t, av < 0 ? (uint64_t)av * (uint64_t)bv : (uint64_t)av)
EW_BIN_LOOP(prelu_UINT32, uint32_t, uint32_t, uint32_t, ((void)bv, av)) /* never negative */
EW_BIN_LOOP(prelu_UINT64, uint64_t, uint64_t, uint64_t, ((void)bv, av))

/* ---- the table ---------------------------------------------------------------------------------- */

enum binary_kind { BK_PLAIN, BK_PRELU, BK_POW };
enum binary_grad { BG_NONE, BG_ADD, BG_SUB, BG_MUL, BG_DIV, BG_POW, BG_PRELU }; /* which backward */

struct binary_def {
  const char *op_type;
  ew_bcast_fn loops[EW_NDTYPES]; /* by input dtype (float16/bfloat16 use [FLOAT]); Pow: see below */
  bool bool_out;                 /* comparisons: output bool */
  enum binary_kind kind;
  enum binary_grad grad;
};

static const struct binary_def binary_defs[] = {
    {"Add", {NUM_ENTRIES(add)}, false, BK_PLAIN, BG_ADD},
    {"Sub", {NUM_ENTRIES(sub)}, false, BK_PLAIN, BG_SUB},
    {"Mul", {NUM_ENTRIES(mul)}, false, BK_PLAIN, BG_MUL},
    {"Div", {NUM_ENTRIES(div)}, false, BK_PLAIN, BG_DIV},
    {"Equal", {NUM_ENTRIES(eq), [OD_DTYPE_BOOL] = eq_BOOL}, true, BK_PLAIN, BG_NONE},
    {"Greater", {NUM_ENTRIES(gt)}, true, BK_PLAIN, BG_NONE},
    {"Less", {NUM_ENTRIES(lt)}, true, BK_PLAIN, BG_NONE},
    {"GreaterOrEqual", {NUM_ENTRIES(ge)}, true, BK_PLAIN, BG_NONE},
    {"LessOrEqual", {NUM_ENTRIES(le)}, true, BK_PLAIN, BG_NONE},
    {"PRelu",
     {[OD_DTYPE_FLOAT] = prelu_FLOAT, [OD_DTYPE_DOUBLE] = prelu_DOUBLE, [OD_DTYPE_INT32] = prelu_INT32,
      [OD_DTYPE_INT64] = prelu_INT64, [OD_DTYPE_UINT32] = prelu_UINT32, [OD_DTYPE_UINT64] = prelu_UINT64},
     false, BK_PRELU, BG_PRELU},
    {"Pow", {0}, false, BK_POW, BG_POW}, /* loops picked by (base, exponent) dtypes: pow_loop() */
};

struct binary_attrs {
  const struct binary_def *def;
  bool legacy;     /* opset < 7: broadcasting only with broadcast=1, B aligned at axis */
  int64_t broadcast;
  int64_t axis;    /* legacy; INT64_MIN when absent (B aligned to A's trailing dims) */
};

static enum od_status binary_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct binary_attrs *a = attrs;
  for (size_t i = 0; i < sizeof binary_defs / sizeof binary_defs[0]; i++)
    if (!strcmp(binary_defs[i].op_type, node->op_type)) a->def = &binary_defs[i];
  if (!a->def) return od_err_set(err, OD_ERR_INTERNAL, "no binary table entry for %s", node->op_type);
  a->legacy = node->opset < 7 && a->def->kind != BK_PRELU;
  a->axis = INT64_MIN;
  if (a->legacy) {
    OD_TRY(od_attr_get_int(node, "broadcast", 0, &a->broadcast, err));
    OD_TRY(od_attr_get_int(node, "axis", INT64_MIN, &a->axis, err));
  }
  return OD_OK;
}

/* The shape B is read with. Legacy (opset < 7): without broadcast=1 the shapes must be equal; with
 * it, B's dims sit at A's dims [axis, axis + rank(B)) and each equals A's or is 1 (output: A's
 * shape). PRelu: a 1-D slope that does not broadcast numpy-style but whose length is exactly one of
 * X's dims applies along that dim (opset 6's per-channel slopes; the ONNX reference does the same). */
static enum od_status binary_b_view(const struct binary_attrs *a, int64_t opset, const struct od_tensor *A,
                                    const struct od_tensor *B, struct od_tensor *Bv, struct od_err *err) {
  char sa[128], sb[128];
  *Bv = *B;
  if (a->def->kind == BK_PRELU) {
    int r;
    int64_t d[OD_MAX_DIMS];
    struct od_err ignore;
    bool uni = od_broadcast_shapes(A->rank, A->dims, B->rank, B->dims, &r, d, &ignore) == OD_OK && r == A->rank &&
               !memcmp(d, A->dims, sizeof(int64_t) * (size_t)r);
    if (uni || B->rank != 1) return OD_OK; /* infer reports a misfit */
    int at = -1, found = 0;
    for (int i = 0; i < A->rank; i++)
      if (A->dims[i] == B->dims[0]) at = i, found++;
    if (found == 1) { /* the ONNX reference's fallback: the one dim of X of the slope's length */
      Bv->rank = A->rank;
      for (int i = 0; i < A->rank; i++) Bv->dims[i] = i == at ? B->dims[0] : 1;
    }
    return OD_OK;
  }
  if (!a->legacy) return OD_OK;
  if (!a->broadcast) {
    if (!od_tensor_same_shape(A, B))
      return od_err_set(err, OD_ERR_SHAPE,
                        "shapes %s and %s differ and attribute 'broadcast' is 0 (opset %lld has no implicit "
                        "broadcasting)",
                        od_shape_str(A->rank, A->dims, sa, sizeof sa), od_shape_str(B->rank, B->dims, sb, sizeof sb),
                        (long long)opset);
    return OD_OK;
  }
  int64_t axis = a->axis == INT64_MIN ? A->rank - B->rank : a->axis;
  if (axis < 0) axis += A->rank; /* not in the old spec, but harmless */
  bool ok = axis >= 0 && axis + B->rank <= A->rank;
  for (int i = 0; ok && i < B->rank; i++) ok = B->dims[i] == A->dims[axis + i] || B->dims[i] == 1;
  if (!ok)
    return od_err_set(err, OD_ERR_SHAPE, "legacy broadcast of B %s onto A %s at attribute 'axis' %lld does not fit",
                      od_shape_str(B->rank, B->dims, sb, sizeof sb), od_shape_str(A->rank, A->dims, sa, sizeof sa),
                      (long long)axis);
  Bv->rank = A->rank;
  for (int i = 0; i < A->rank; i++) Bv->dims[i] = i >= axis && i < axis + B->rank ? B->dims[i - axis] : 1;
  return OD_OK;
}

enum od_status od_binary_b_view(const struct od_kernel_ctx *ctx, struct od_tensor *Bv) {
  return binary_b_view(ctx->attrs, ctx->node->opset, ctx->in[0], ctx->in[1], Bv, ctx->err);
}

static bool pow_base_ok(int dt) {
  return dt == OD_DTYPE_FLOAT || dt == OD_DTYPE_DOUBLE || dt == OD_DTYPE_INT32 || dt == OD_DTYPE_INT64 ||
         ew_is_half(dt);
}

static enum od_status binary_infer(struct od_infer_ctx *ctx) {
  const struct binary_attrs *a = ctx->attrs;
  const struct binary_def *d = a->def;
  if (ctx->n_in < 2 || !ctx->in[0].dtype || !ctx->in[1].dtype)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "%s needs two inputs", d->op_type);
  const struct od_tensor *A = &ctx->in[0], *B = &ctx->in[1];
  if (d->kind == BK_POW) {
    if (!pow_base_ok(A->dtype)) return ew_err_dtype(ctx->err, "Pow (base)", A->dtype);
    if (B->dtype == OD_DTYPE_BOOL || !od_dtype_is_supported(B->dtype))
      return ew_err_dtype(ctx->err, "Pow (exponent)", B->dtype);
  } else {
    if (A->dtype != B->dtype)
      return od_err_set(ctx->err, OD_ERR_SHAPE, "%s inputs have different dtypes: %s and %s", d->op_type,
                        od_dtype_name(A->dtype), od_dtype_name(B->dtype));
    int lt = ew_is_half(A->dtype) ? OD_DTYPE_FLOAT : A->dtype;
    if (lt <= 0 || lt >= EW_NDTYPES || !d->loops[lt]) return ew_err_dtype(ctx->err, d->op_type, A->dtype);
  }
  struct od_tensor Bv, *out = &ctx->out[0];
  OD_TRY(binary_b_view(a, ctx->node->opset, A, B, &Bv, ctx->err));
  OD_TRY(od_broadcast_shapes(A->rank, A->dims, Bv.rank, Bv.dims, &out->rank, out->dims, ctx->err));
  if (d->kind == BK_PRELU && !od_tensor_same_shape(out, A)) {
    char sa[128], sb[128];
    return od_err_set(ctx->err, OD_ERR_SHAPE, "slope %s does not broadcast to X %s (unidirectional)",
                      od_shape_str(B->rank, B->dims, sb, sizeof sb), od_shape_str(A->rank, A->dims, sa, sizeof sa));
  }
  out->dtype = d->bool_out ? OD_DTYPE_BOOL : A->dtype;
  return OD_OK;
}

/* ---- Pow ---------------------------------------------------------------------------------------
 * Float bases: pow() in the base's precision (float^float: powf, with x*x for a scalar exponent 2,
 * the common "square" in exported graphs); any other exponent dtype is read as double. Integer
 * bases: an integer exponent gives the exact wrapped integer power (negative exponents truncate
 * toward zero: 0 unless |base| == 1); a float exponent goes through double pow and truncates
 * (numpy: np.power(int, float).astype(int)). */

static int64_t ipow(int64_t base, int64_t e) {
  if (e < 0) return base == 1 ? 1 : base == -1 ? (e & 1 ? -1 : 1) : 0;
  uint64_t r = 1, b = (uint64_t)base;
  for (; e; e >>= 1, b *= b)
    if (e & 1) r *= b;
  return (int64_t)r;
}

EW_BIN_LOOP(pow_ff, float, float, float, powf(av, bv))
EW_BIN_LOOP(pow_fd, float, double, float, pow((double)av, bv))
EW_BIN_LOOP(pow_dd, double, double, double, pow(av, bv))
EW_BIN_LOOP(pow_i32d, int32_t, double, int32_t, ew_f2i32(pow((double)av, bv)))
EW_BIN_LOOP(pow_i64d, int64_t, double, int64_t, ew_f2i64(pow((double)av, bv)))
EW_BIN_LOOP(pow_i32i, int32_t, int64_t, int32_t, ipow(av, bv))
EW_BIN_LOOP(pow_i64i, int64_t, int64_t, int64_t, ipow(av, bv))

static void pow_square_f(void *y_, const void *const *x, const int64_t *step, int64_t n, const void *p) {
  const float *a = x[0];
  float *y = y_;
  for (int64_t i = 0; i < n; i++) {
    float v = a[step[0] ? i : 0];
    y[i] = v * v;
  }
}

/* Runs Pow: base A (float16/bfloat16 widened), exponent converted to what the loop reads. */
static enum od_status pow_forward(struct od_kernel_ctx *ctx, struct od_tensor *A, struct od_tensor *B) {
  struct od_tensor *y = ctx->out[0];
  int base = ew_is_half(A->dtype) ? OD_DTYPE_FLOAT : A->dtype;
  int edt = ew_is_half(B->dtype) ? OD_DTYPE_FLOAT : B->dtype;
  bool int_base = base == OD_DTYPE_INT32 || base == OD_DTYPE_INT64;
  bool int_exp = !od_dtype_is_float(edt);
  ew_bcast_fn fn;
  int want; /* dtype the exponent is read as */
  if (base == OD_DTYPE_FLOAT && edt == OD_DTYPE_FLOAT) {
    want = OD_DTYPE_FLOAT;
    fn = pow_ff;
    if (od_tensor_numel(B) == 1 && !ew_is_half(B->dtype) && ((const float *)B->data)[0] == 2.0f) fn = pow_square_f;
  } else if (int_base && int_exp) {
    want = OD_DTYPE_INT64;
    fn = base == OD_DTYPE_INT32 ? pow_i32i : pow_i64i;
  } else {
    want = OD_DTYPE_DOUBLE;
    fn = base == OD_DTYPE_FLOAT    ? pow_fd
         : base == OD_DTYPE_DOUBLE ? pow_dd
         : base == OD_DTYPE_INT32  ? pow_i32d
                                   : pow_i64d;
  }
  struct od_tensor e = *B;
  void *ebuf = NULL;
  if (B->dtype != want && !(ew_is_half(B->dtype) && want == OD_DTYPE_FLOAT)) {
    int64_t n = od_tensor_numel(B);
    if (!(ebuf = malloc((size_t)(n > 0 ? n : 1) * 8)))
      return od_err_set(ctx->err, OD_ERR_OOM, "out of memory converting the exponent");
    e.dtype = want;
    e.data = ebuf;
    for (int64_t i = 0; i < n; i++) { /* exponents are few: usually one scalar */
      if (want == OD_DTYPE_INT64)
        ((int64_t *)ebuf)[i] = od_tensor_get_i64(B, i);
      else
        ((double *)ebuf)[i] = od_tensor_get_f64(B, i);
    }
  }
  const struct od_tensor *xs[2] = {A, &e};
  enum od_status s = ew_bcast_run_half(ctx->pool, y, 2, xs, fn, NULL, 1 << 12, ctx->err);
  free(ebuf);
  return s;
}

static enum od_status binary_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct binary_attrs *a = ctx->attrs;
  struct od_tensor A = *ctx->in[0], B;
  OD_TRY(binary_b_view(a, ctx->node->opset, ctx->in[0], ctx->in[1], &B, ctx->err));
  if (a->def->kind == BK_POW) return pow_forward(ctx, &A, &B);
  int lt = ew_is_half(A.dtype) ? OD_DTYPE_FLOAT : A.dtype;
  const struct od_tensor *xs[2] = {&A, &B};
  return ew_bcast_run_half(ctx->pool, ctx->out[0], 2, xs, a->def->loops[lt], NULL, 1 << 15, ctx->err);
}

/* ---- backward (see the header comment for the math) -------------------------------------------
 * Gradient loops: g = dY, av and bv the operands named in each call; y += term. */
#define BINARY_GRADS(CODE, T, U)                                                                  \
  EW_GRAD_LOOP(mulg_##CODE, T, T, T, g * av)                   /* Mul: dY * (the other input) */   \
  EW_GRAD_LOOP(divag_##CODE, T, T, T, g / av)                  /* Div dA: a = B */                 \
  EW_GRAD_LOOP(divbg_##CODE, T, T, T, -(g * av) / (bv * bv))   /* Div dB: a = A, b = B */          \
  EW_GRAD_LOOP(powag_##CODE, T, T, T, bv == 0 ? 0 : g * bv * pow(av, bv - 1)) /* a = A, b = B */   \
  EW_GRAD_LOOP(powbg_##CODE, T, T, T, av > 0 ? g * bv * log(av) : 0)          /* a = A, b = Y */   \
  EW_GRAD_LOOP(preluxg_##CODE, T, T, T, av > 0 ? g : g * bv)   /* PRelu dX: a = X, b = slope */     \
  EW_GRAD_LOOP(prelusg_##CODE, T, T, T, av > 0 ? 0 : g * av)   /* PRelu dslope: a = X */
BINARY_GRADS(FLOAT, float, float)
BINARY_GRADS(DOUBLE, double, double)

/* The gradient loop for dtype dt (float or double). */
#define GRAD_FN(name, dt) ((dt) == OD_DTYPE_FLOAT ? name##_FLOAT : name##_DOUBLE)

/* Pow's exponent as a tensor of the base's dtype (an int or other-precision exponent converted;
 * exponents are usually one scalar). *buf: malloc'd copy or NULL. */
static enum od_status pow_exponent_as(const struct od_tensor *B, int dt, struct od_tensor *e, void **buf,
                                      struct od_err *err) {
  *e = *B;
  *buf = NULL;
  if (B->dtype == dt) return OD_OK;
  int64_t n = od_tensor_numel(B);
  if (!(*buf = malloc((size_t)(n > 0 ? n : 1) * od_dtype_size(dt))))
    return od_err_set(err, OD_ERR_OOM, "Pow backward: out of memory converting the exponent");
  e->dtype = dt;
  e->data = *buf;
  for (int64_t i = 0; i < n; i++) od_tensor_set_f64(e, i, od_tensor_get_f64(B, i));
  return OD_OK;
}

static enum od_status binary_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct binary_attrs *a = ctx->attrs;
  const struct od_tensor *dY = ctx->dout[0], *A = ctx->in[0], *Y = ctx->out[0];
  const char *op = a->def->op_type;
  if (!dY) return OD_OK;
  if (!ew_is_grad_dtype(dY->dtype)) return ew_err_grad_dtype(ctx->err, op, dY->dtype);
  if (!ew_is_grad_dtype(A->dtype)) return ew_err_grad_dtype(ctx->err, op, A->dtype);
  struct od_tensor B, dBv;
  OD_TRY(binary_b_view(a, ctx->node->opset, ctx->in[0], ctx->in[1], &B, ctx->err));
  struct od_tensor *dA = ctx->din[0], *dB = NULL;
  if (ctx->din[1]) { /* dB viewed with the shape forward read B as (same data, same numel) */
    dBv = B;
    dBv.dtype = ctx->din[1]->dtype;
    dBv.data = ctx->din[1]->data;
    dB = &dBv;
  }
  int dt = dY->dtype;
  struct od_pool *pool = ctx->pool;
  struct od_err *err = ctx->err;
  switch (a->def->grad) {
    case BG_ADD:
    case BG_SUB:
      if (dA) OD_TRY(ew_reduce_grad(pool, dA, dY, 1.0, op, err));
      if (dB) OD_TRY(ew_reduce_grad(pool, dB, dY, a->def->grad == BG_SUB ? -1.0 : 1.0, op, err));
      return OD_OK;
    case BG_MUL:
      if (dA) OD_TRY(ew_grad_bcast(pool, dA, dY, &B, &B, GRAD_FN(mulg, dt), NULL, op, err));
      if (dB) OD_TRY(ew_grad_bcast(pool, dB, dY, A, A, GRAD_FN(mulg, dt), NULL, op, err));
      return OD_OK;
    case BG_DIV:
      if (dA) OD_TRY(ew_grad_bcast(pool, dA, dY, &B, &B, GRAD_FN(divag, dt), NULL, op, err));
      if (dB) OD_TRY(ew_grad_bcast(pool, dB, dY, A, &B, GRAD_FN(divbg, dt), NULL, op, err));
      return OD_OK;
    case BG_PRELU:
      if (dA) OD_TRY(ew_grad_bcast(pool, dA, dY, A, &B, GRAD_FN(preluxg, dt), NULL, op, err));
      if (dB) OD_TRY(ew_grad_bcast(pool, dB, dY, A, A, GRAD_FN(prelusg, dt), NULL, op, err));
      return OD_OK;
    case BG_POW: {
      if (dA) {
        struct od_tensor e;
        void *ebuf;
        OD_TRY(pow_exponent_as(&B, dt, &e, &ebuf, err));
        enum od_status s = ew_grad_bcast(pool, dA, dY, A, &e, GRAD_FN(powag, dt), NULL, op, err);
        free(ebuf);
        OD_TRY(s);
      }
      if (dB) OD_TRY(ew_grad_bcast(pool, dB, dY, A, Y, GRAD_FN(powbg, dt), NULL, op, err));
      return OD_OK;
    }
    case BG_NONE: break;
  }
  return od_err_set(err, OD_ERR_INTERNAL, "%s has no backward", op);
}

#define NUM_DTYPES "float, double, float16, bfloat16, int8..int64, uint8..uint64"
/* Add and Sub backward read only dY (bwd_reads in op.h); the others read the operands. */
static uint32_t binary_bwd_reads(const struct od_node *node, const void *attrs, bool *outputs) {
  const struct binary_attrs *a = attrs;
  *outputs = a->def->grad == BG_POW;
  return a->def->grad == BG_ADD || a->def->grad == BG_SUB ? 0 : ~0u;
}

#define BINARY_KERNELS(sym, dtype_list, bwd, cuda_fwd, cuda_bwd)                                    \
  const struct od_op_kernels od_kernels_##sym = {.attrs_size = sizeof(struct binary_attrs),         \
                                                 .parse = binary_parse,                             \
                                                 .infer = binary_infer,                             \
                                                 .forward = {[OD_DEVICE_CPU] = binary_forward_cpu,  \
                                                             [OD_DEVICE_CUDA] = cuda_fwd},          \
                                                 .backward = {[OD_DEVICE_CPU] = bwd, [OD_DEVICE_CUDA] = cuda_bwd}, \
                                                 .bwd_reads = binary_bwd_reads,                     \
                                                 .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,         \
                                                 .dtypes = dtype_list};

BINARY_KERNELS(add, NUM_DTYPES, binary_backward_cpu,
               OD_CUDA_KERNEL(od_cuda_add_fwd), OD_CUDA_KERNEL(od_cuda_add_bwd))
BINARY_KERNELS(sub, NUM_DTYPES, binary_backward_cpu,
               OD_CUDA_KERNEL(od_cuda_sub_fwd), OD_CUDA_KERNEL(od_cuda_sub_bwd))
BINARY_KERNELS(mul, NUM_DTYPES, binary_backward_cpu,
               OD_CUDA_KERNEL(od_cuda_mul_fwd), OD_CUDA_KERNEL(od_cuda_mul_bwd))
BINARY_KERNELS(div, NUM_DTYPES, binary_backward_cpu,
               OD_CUDA_KERNEL(od_cuda_div_fwd), OD_CUDA_KERNEL(od_cuda_div_bwd))
BINARY_KERNELS(pow, "base: float, double, float16, bfloat16, int32, int64; exponent: any numeric", binary_backward_cpu,
               OD_CUDA_KERNEL(od_cuda_pow_fwd), OD_CUDA_KERNEL(od_cuda_pow_bwd))
BINARY_KERNELS(equal, NUM_DTYPES ", bool", NULL, NULL, NULL) /* bool output: CPU */
BINARY_KERNELS(greater, NUM_DTYPES, NULL, NULL, NULL) /* bool output: CPU */
BINARY_KERNELS(less, NUM_DTYPES, NULL, NULL, NULL) /* bool output: CPU */
BINARY_KERNELS(greater_or_equal, NUM_DTYPES, NULL, NULL, NULL) /* bool output: CPU */
BINARY_KERNELS(less_or_equal, NUM_DTYPES, NULL, NULL, NULL) /* bool output: CPU */
BINARY_KERNELS(prelu, "float, double, float16, bfloat16, int32, int64, uint32, uint64", binary_backward_cpu,
               OD_CUDA_KERNEL(od_cuda_prelu_fwd), OD_CUDA_KERNEL(od_cuda_prelu_bwd))
