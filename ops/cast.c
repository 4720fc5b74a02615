/* ops/cast.c: ONNX Cast and CastLike (numeric dtypes).
 * Spec: https://onnx.ai/onnx/operators/onnx__Cast.html, .../onnx__CastLike.html
 *
 * Versions:
 *   Cast 1       attribute `to` is a STRING naming the type ("FLOAT", "INT64", ...).
 *   Cast 6+      `to` is an INT (TensorProto.DataType). 9 added strings, 13 bfloat16, 19+ float8
 *                types and the `saturate` attribute, 21+ 4-bit, 24+ round_mode: the types the
 *                runtime does not hold (string, float8, 4/2-bit, complex) fail with UNSUPPORTED;
 *                saturate and round_mode only concern float8 and are ignored.
 *   CastLike 15+ the output takes the dtype of the second input (target_type).
 * dtypes: float, double, float16, bfloat16, int8..int64, uint8..uint64, bool, in any pair.
 *
 * Conversions (numpy's astype, the ONNX reference, on x86): float -> int truncates toward zero,
 * out-of-range and NaN give x86's "integer indefinite" wrapped to the target (ew_f2i32 and
 * friends in ops/elementwise.h: NaN -> 0 for int8/uint8, INT32_MIN for int32); float -> unsigned wraps
 * negative values (-1.0 -> 255 for uint8); int -> int wraps; anything -> bool is != 0 (NaN ->
 * true); float16/bfloat16 round to nearest even.
 * Each element goes through one of three wide types, picked by the source: double for float
 * types, int64 for signed integers and bool, uint64 for unsigned ones, so every source value is
 * exact in the middle and rounded once at the end.
 *
 * Backward: a cast between float types is the identity up to rounding, so dX += dY converted to
 * X's dtype (X float or double; dY float, double, or float16/bfloat16 widened). A cast from or to
 * an integer or bool type passes no gradient (the executor gives integer values none, so it never
 * asks). CastLike's target_type input takes none (only its dtype is read). */
/* GCC 12's -O2 vectorises only loops whose trip count is a multiple of the vector width
 * ("very-cheap" cost model), and with -ftrapping-math (its default; clang's is off) it keeps the
 * compares of `x < 0 ? a : b` as branches. Nothing here reads floating-point exception flags, and
 * these elementwise loops are where vectorising pays (4-10x on cache-resident tensors). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic", "no-trapping-math")
#endif
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ops/attr.h"
#include "ops/elementwise.h"
#include "ops/op.h"
#include "runtime/pool.h"

enum { CAST_CHUNK = 512 };

/* ---- source -> wide --------------------------------------------------------------------------- */

static void load_f(const void *src, int dt, int64_t i0, double *d, int64_t n) {
  switch (dt) {
    case OD_DTYPE_FLOAT: for (int64_t i = 0; i < n; i++) d[i] = ((const float *)src)[i0 + i]; break;
    case OD_DTYPE_DOUBLE: memcpy(d, (const double *)src + i0, (size_t)n * sizeof *d); break;
    case OD_DTYPE_FLOAT16:
      for (int64_t i = 0; i < n; i++) d[i] = od_f16_to_f32(((const uint16_t *)src)[i0 + i]);
      break;
    case OD_DTYPE_BFLOAT16:
      for (int64_t i = 0; i < n; i++) d[i] = od_bf16_to_f32(((const uint16_t *)src)[i0 + i]);
      break;
    default: break;
  }
}

#define LOAD_CASE(CODE, T, U) \
  case OD_DTYPE_##CODE: for (int64_t i = 0; i < n; i++) d[i] = ((const T *)src)[i0 + i]; break;

static void load_i(const void *src, int dt, int64_t i0, int64_t *d, int64_t n) {
  switch (dt) {
    EW_SINT_TYPES(LOAD_CASE)
    case OD_DTYPE_BOOL: for (int64_t i = 0; i < n; i++) d[i] = ((const uint8_t *)src)[i0 + i] != 0; break;
    default: break;
  }
}

static void load_u(const void *src, int dt, int64_t i0, uint64_t *d, int64_t n) {
  switch (dt) {
    EW_UINT_TYPES(LOAD_CASE)
    default: break;
  }
}

/* ---- wide -> destination ----------------------------------------------------------------------
 * One switch over the destination per wide type; SINT32, SINT64 and UINT64 say how a wide value
 * becomes an integer (then narrowed by the C cast, which wraps): for doubles the x86 conversions
 * a C compiler emits for each target type (ew_f2i32 for int8..int32, uint8, uint16; ew_f2i64
 * for int64, uint32; ew_f2u64 for uint64), for integers the value itself. */
#define STORE_LOOP(T, EXPR)                                                       \
  for (int64_t i = 0; i < n; i++) ((T *)dst)[i0 + i] = (T)(EXPR);                 \
  break;
#define STORE_SWITCH(SINT32, SINT64, UINT64)                                      \
  switch (dt) {                                                                   \
    case OD_DTYPE_FLOAT: STORE_LOOP(float, s[i])                                  \
    case OD_DTYPE_DOUBLE: STORE_LOOP(double, s[i])                                \
    case OD_DTYPE_FLOAT16: STORE_LOOP(uint16_t, od_f32_to_f16((float)s[i]))       \
    case OD_DTYPE_BFLOAT16: STORE_LOOP(uint16_t, od_f32_to_bf16((float)s[i]))     \
    case OD_DTYPE_BOOL: STORE_LOOP(uint8_t, s[i] != 0)                            \
    case OD_DTYPE_INT8: STORE_LOOP(int8_t, SINT32(s[i]))                          \
    case OD_DTYPE_INT16: STORE_LOOP(int16_t, SINT32(s[i]))                        \
    case OD_DTYPE_INT32: STORE_LOOP(int32_t, SINT32(s[i]))                        \
    case OD_DTYPE_INT64: STORE_LOOP(int64_t, SINT64(s[i]))                        \
    case OD_DTYPE_UINT8: STORE_LOOP(uint8_t, SINT32(s[i]))                        \
    case OD_DTYPE_UINT16: STORE_LOOP(uint16_t, SINT32(s[i]))                      \
    case OD_DTYPE_UINT32: STORE_LOOP(uint32_t, SINT64(s[i]))                      \
    case OD_DTYPE_UINT64: STORE_LOOP(uint64_t, UINT64(s[i]))                      \
    default: break;                                                               \
  }

#define AS_IS(v) (v)
static void store_f(const double *s, int dt, void *dst, int64_t i0, int64_t n) {
  STORE_SWITCH(ew_f2i32, ew_f2i64, ew_f2u64)
}
static void store_i(const int64_t *s, int dt, void *dst, int64_t i0, int64_t n) {
  STORE_SWITCH(AS_IS, AS_IS, AS_IS)
}
static void store_u(const uint64_t *s, int dt, void *dst, int64_t i0, int64_t n) {
  STORE_SWITCH(AS_IS, AS_IS, AS_IS)
}

struct cast_job {
  const void *x;
  int xdt;
  void *y;
  int ydt;
};

static void cast_range(void *ctx, int64_t b, int64_t e) {
  const struct cast_job *j = ctx;
  union {
    double f[CAST_CHUNK];
    int64_t i[CAST_CHUNK];
    uint64_t u[CAST_CHUNK];
  } w;
  for (int64_t i0 = b; i0 < e; i0 += CAST_CHUNK) {
    int64_t n = e - i0 < CAST_CHUNK ? e - i0 : CAST_CHUNK;
    if (od_dtype_is_float(j->xdt)) {
      load_f(j->x, j->xdt, i0, w.f, n);
      store_f(w.f, j->ydt, j->y, i0, n);
    } else if (j->xdt == OD_DTYPE_UINT8 || j->xdt == OD_DTYPE_UINT16 || j->xdt == OD_DTYPE_UINT32 ||
               j->xdt == OD_DTYPE_UINT64) {
      load_u(j->x, j->xdt, i0, w.u, n);
      store_u(w.u, j->ydt, j->y, i0, n);
    } else {
      load_i(j->x, j->xdt, i0, w.i, n);
      store_i(w.i, j->ydt, j->y, i0, n);
    }
  }
}

/* ---- kernels ---------------------------------------------------------------------------------- */

struct cast_attrs {
  int to; /* Cast: the target dtype; CastLike: 0 (from the second input) */
};

static enum od_status cast_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct cast_attrs *a = attrs;
  const struct od_attr *to = od_node_attr(node, "to");
  if (!to) return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'to' is required");
  if (to->type == OD_ATTR_STRING) { /* Cast-1: "FLOAT", "INT64", ... */
    for (int c = 1; c <= OD_DTYPE_MAX_KNOWN && !a->to; c++)
      if (!strcasecmp(to->s, od_dtype_name(c))) a->to = c;
    if (!a->to) return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'to' names no known type: '%s'", to->s);
  } else {
    int64_t v;
    OD_TRY(od_attr_get_int(node, "to", 0, &v, err));
    if (v <= 0 || v > OD_DTYPE_MAX_KNOWN)
      return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'to' is not a known dtype code: %lld", (long long)v);
    a->to = (int)v;
  }
  if (a->to == OD_DTYPE_STRING || !od_dtype_is_supported(a->to))
    return od_err_set(err, OD_ERR_UNSUPPORTED, "attribute 'to': casting to %s is not supported", od_dtype_name(a->to));
  return OD_OK;
}

static enum od_status cast_like_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  ((struct cast_attrs *)attrs)->to = 0; /* from target_type at infer */
  return OD_OK;
}

static enum od_status cast_infer(struct od_infer_ctx *ctx) {
  const struct cast_attrs *a = ctx->attrs;
  const struct od_tensor *x = &ctx->in[0];
  if (ctx->n_in < 1 || !x->dtype) return od_err_set(ctx->err, OD_ERR_SHAPE, "input is missing");
  int to = a ? a->to : 0;
  if (!to) { /* CastLike */
    if (ctx->n_in < 2 || !ctx->in[1].dtype) return od_err_set(ctx->err, OD_ERR_SHAPE, "input target_type is missing");
    to = ctx->in[1].dtype;
  }
  if (!od_dtype_is_supported(x->dtype)) return ew_err_dtype(ctx->err, "Cast", x->dtype);
  if (!od_dtype_is_supported(to))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "casting to %s is not supported", od_dtype_name(to));
  ctx->out[0] = *x;
  ctx->out[0].data = NULL;
  ctx->out[0].dtype = to;
  return OD_OK;
}

static enum od_status cast_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *x = ctx->in[0];
  struct od_tensor *y = ctx->out[0];
  if (x->dtype == y->dtype) {
    if (y->data != x->data && od_tensor_nbytes(x)) memcpy(y->data, x->data, od_tensor_nbytes(x));
    return OD_OK;
  }
  struct cast_job j = {x->data, x->dtype, y->data, y->dtype};
  od_pool_parallel_for(ctx->pool, od_tensor_numel(x), 1 << 15, cast_range, &j);
  return OD_OK;
}

static enum od_status cast_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *dY = ctx->dout[0];
  struct od_tensor *dX = ctx->din[0];
  if (!dY || !dX || !od_dtype_is_float(dY->dtype)) return OD_OK;
  struct od_tensor w;
  float *buf;
  OD_TRY(ew_widen(dY, &w, &buf, ctx->err)); /* a float16/bfloat16 gradient as float32 */
  enum od_status s = ew_reduce_grad(ctx->pool, dX, &w, 1.0, ctx->node->op_type, ctx->err);
  free(buf);
  return s;
}

#define CAST_DTYPES "float, double, float16, bfloat16, int8..int64, uint8..uint64, bool"
const struct od_op_kernels od_kernels_cast = {.attrs_size = sizeof(struct cast_attrs),
                                              .parse = cast_parse,
                                              .infer = cast_infer,
                                              .forward = {[OD_DEVICE_CPU] = cast_forward_cpu},
                                              .backward = {[OD_DEVICE_CPU] = cast_backward_cpu},
                                              .flags = OD_OP_FOLDABLE,
                                              .dtypes = CAST_DTYPES};

const struct od_op_kernels od_kernels_cast_like = {.attrs_size = sizeof(struct cast_attrs),
                                                   .parse = cast_like_parse,
                                                   .infer = cast_infer,
                                                   .forward = {[OD_DEVICE_CPU] = cast_forward_cpu},
                                                   .backward = {[OD_DEVICE_CPU] = cast_backward_cpu},
                                                   .no_grad_inputs = 0x2u, /* target_type: only its dtype */
                                                   .flags = OD_OP_FOLDABLE,
                                                   .dtypes = CAST_DTYPES};
