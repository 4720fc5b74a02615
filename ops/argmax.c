/* ops/argmax.c: ONNX ArgMax and ArgMin, opsets 1, 11, 12, 13.
 *
 * Y (int64) = the index along `axis` (default 0) of the largest (smallest) element; keepdims
 * (default 1) keeps the reduced axis as size 1. Versions: 11 allows a negative axis, 12 adds
 * select_last_index (default 0: the first of equal extremes wins; 1: the last); 13 only adds
 * bfloat16. NaN counts as larger than everything for ArgMax and smaller for ArgMin (numpy's rule:
 * the first NaN is selected).
 *
 * dtypes: float, double, int8..int64, uint8..uint64. Not differentiable: X is marked as taking no
 * gradient through this op (a backward pass does not stop here).
 * Spec: https://onnx.ai/onnx/operators/onnx__ArgMax.html, onnx__ArgMin.html */
#include "ops/attr.h"
#include "ops/op.h"
#include "runtime/pool.h"

struct argmax_attrs {
  int64_t axis;
  int64_t keepdims;
  int64_t select_last_index;
  bool is_min;                  /* ArgMin */
};

static enum od_status arg_parse_common(const struct od_node *node, struct argmax_attrs *a, bool is_min,
                                       struct od_err *err) {
  a->is_min = is_min;
  OD_TRY(od_attr_get_int(node, "axis", 0, &a->axis, err));
  OD_TRY(od_attr_get_int(node, "keepdims", 1, &a->keepdims, err));
  OD_TRY(od_attr_get_int(node, "select_last_index", 0, &a->select_last_index, err));
  if (a->keepdims != 0 && a->keepdims != 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'keepdims' must be 0 or 1, not %lld",
                      (long long)a->keepdims);
  return OD_OK;
}

static enum od_status argmax_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  return arg_parse_common(node, attrs, false, err);
}

static enum od_status argmin_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  return arg_parse_common(node, attrs, true, err);
}

static bool arg_dtype_ok(int dtype) {
  switch (dtype) {
    case OD_DTYPE_FLOAT: case OD_DTYPE_DOUBLE:
    case OD_DTYPE_INT8: case OD_DTYPE_UINT8: case OD_DTYPE_INT16: case OD_DTYPE_UINT16:
    case OD_DTYPE_INT32: case OD_DTYPE_UINT32: case OD_DTYPE_INT64: case OD_DTYPE_UINT64:
      return true;
    default:
      return false;
  }
}

static enum od_status argmax_infer(struct od_infer_ctx *ctx) {
  const struct argmax_attrs *a = ctx->attrs;
  const struct od_tensor *x = &ctx->in[0];
  struct od_tensor *y = &ctx->out[0];
  if (!arg_dtype_ok(x->dtype))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "input dtype %s is not supported", od_dtype_name(x->dtype));
  int axis;
  OD_TRY(od_axis_normalize(a->axis, x->rank, "axis", &axis, ctx->err));
  if (x->rank > 0 && x->dims[axis] == 0) {
    char s[128];
    return od_err_set(ctx->err, OD_ERR_SHAPE, "cannot take the arg-extreme of an empty axis %d of %s", axis,
                      od_shape_str(x->rank, x->dims, s, sizeof s));
  }
  y->dtype = OD_DTYPE_INT64;
  y->rank = 0;
  for (int d = 0; d < x->rank; d++) {
    if (d != axis) y->dims[y->rank++] = x->dims[d];
    else if (a->keepdims) y->dims[y->rank++] = 1;
  }
  return OD_OK;
}

struct arg_task {
  const void *x;
  int64_t *y;
  int64_t n, inner, nblk;
  bool is_min, last;
};

#define ARG_BLOCK 256

/* ARG_DEFINE(NAME, T): work items are (outer index, block of ARG_BLOCK positions along inner); each
 * walks the n rows of its block in memory order, keeping the best value and its index per column.
 * `better` is written once for both directions: for ArgMin the comparison is mirrored. */
#define ARG_DEFINE(NAME, T)                                                                       \
  static void arg_range_##NAME(void *vt, int64_t begin, int64_t end) {                           \
    const struct arg_task *t = vt;                                                               \
    int64_t n = t->n, inner = t->inner;                                                          \
    T best[ARG_BLOCK];                                                                           \
    int64_t idx[ARG_BLOCK];                                                                      \
    for (int64_t w = begin; w < end; w++) {                                                      \
      int64_t o = w / t->nblk, i0 = (w % t->nblk) * ARG_BLOCK;                                   \
      int64_t nb = inner - i0 < ARG_BLOCK ? inner - i0 : ARG_BLOCK;                              \
      const T *x = (const T *)t->x + o * n * inner + i0;                                         \
      for (int64_t i = 0; i < nb; i++) {                                                         \
        best[i] = x[i];                                                                          \
        idx[i] = 0;                                                                              \
      }                                                                                          \
      for (int64_t j = 1; j < n; j++) {                                                          \
        const T *row = x + j * inner;                                                            \
        for (int64_t i = 0; i < nb; i++) {                                                       \
          T v = row[i], b = best[i];                                                             \
          bool take;                                                                             \
          if (b != b) take = false;           /* a NaN already won */                            \
          else if (v != v) take = true;       /* the first NaN wins */                           \
          else if (t->is_min) take = t->last ? v <= b : v < b;                                   \
          else take = t->last ? v >= b : v > b;                                                  \
          if (take) {                                                                            \
            best[i] = v;                                                                         \
            idx[i] = j;                                                                          \
          }                                                                                      \
        }                                                                                        \
      }                                                                                          \
      int64_t *y = t->y + o * inner + i0;                                                        \
      for (int64_t i = 0; i < nb; i++) y[i] = idx[i];                                            \
    }                                                                                            \
  }

ARG_DEFINE(f32, float)
ARG_DEFINE(f64, double)
ARG_DEFINE(i8, int8_t)
ARG_DEFINE(u8, uint8_t)
ARG_DEFINE(i16, int16_t)
ARG_DEFINE(u16, uint16_t)
ARG_DEFINE(i32, int32_t)
ARG_DEFINE(u32, uint32_t)
ARG_DEFINE(i64, int64_t)
ARG_DEFINE(u64, uint64_t)

static enum od_status argmax_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct argmax_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  int axis;
  OD_TRY(od_axis_normalize(a->axis, x->rank, "axis", &axis, ctx->err));
  int64_t outer = 1, n = 1, inner = 1;
  for (int d = 0; d < x->rank; d++) {
    if (d < axis) outer *= x->dims[d];
    else if (d == axis) n = x->dims[d];
    else inner *= x->dims[d];
  }
  if (outer * inner == 0) return OD_OK;
  struct arg_task t = {x->data, ctx->out[0]->data, n, inner, (inner + ARG_BLOCK - 1) / ARG_BLOCK, a->is_min,
                       a->select_last_index != 0};
  od_range_fn fn = NULL;
  switch (x->dtype) {
    case OD_DTYPE_FLOAT: fn = arg_range_f32; break;
    case OD_DTYPE_DOUBLE: fn = arg_range_f64; break;
    case OD_DTYPE_INT8: fn = arg_range_i8; break;
    case OD_DTYPE_UINT8: fn = arg_range_u8; break;
    case OD_DTYPE_INT16: fn = arg_range_i16; break;
    case OD_DTYPE_UINT16: fn = arg_range_u16; break;
    case OD_DTYPE_INT32: fn = arg_range_i32; break;
    case OD_DTYPE_UINT32: fn = arg_range_u32; break;
    case OD_DTYPE_INT64: fn = arg_range_i64; break;
    case OD_DTYPE_UINT64: fn = arg_range_u64; break;
    default:
      return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "input dtype %s is not supported", od_dtype_name(x->dtype));
  }
  int64_t per = n * (inner < ARG_BLOCK ? inner : ARG_BLOCK);
  od_pool_parallel_for(ctx->pool, outer * t.nblk, (16384 + per - 1) / per, fn, &t);
  return OD_OK;
}

#define ARG_DTYPES "float, double, int8, uint8, int16, uint16, int32, uint32, int64, uint64"

const struct od_op_kernels od_kernels_argmax = {
    .attrs_size = sizeof(struct argmax_attrs),
    .parse = argmax_parse,
    .infer = argmax_infer,
    .forward = {[OD_DEVICE_CPU] = argmax_forward_cpu},
    .no_grad_inputs = 1u << 0, /* an index is piecewise constant in X: no gradient, none needed */
    .flags = OD_OP_FOLDABLE,
    .dtypes = ARG_DTYPES,
};

const struct od_op_kernels od_kernels_argmin = {
    .attrs_size = sizeof(struct argmax_attrs),
    .parse = argmin_parse,
    .infer = argmax_infer,
    .forward = {[OD_DEVICE_CPU] = argmax_forward_cpu},
    .no_grad_inputs = 1u << 0, /* an index is piecewise constant in X: no gradient, none needed */
    .flags = OD_OP_FOLDABLE,
    .dtypes = ARG_DTYPES,
};
