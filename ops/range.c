/* ops/range.c: ONNX Range (opsets 11, 27: 27 adds float16/bfloat16). start, limit, delta are
 * scalars of one dtype; Y has max(ceil((limit - start) / delta), 0) elements, Y[i] = start + i * delta.
 * dtypes: float, double, int16, int32, int64 (the spec's), plus float16 and bfloat16 (computed in
 * double, rounded once per element), int8/uint*. Integer dtypes are computed in int64, so large
 * int64 ranges are exact; float ones in double. delta = 0 is an error.
 * Spec: https://onnx.ai/onnx/operators/onnx__Range.html */
#include <math.h>
#include <stdbool.h>

#include "ops/op.h"

static enum od_status range_check(const struct od_tensor *const *in, struct od_err *err) {
  static const char *const names[] = {"start", "limit", "delta"};
  for (int i = 0; i < 3; i++) {
    if (in[i]->dtype != in[0]->dtype)
      return od_err_set(err, OD_ERR_SHAPE, "input '%s' is %s, 'start' is %s", names[i], od_dtype_name(in[i]->dtype),
                        od_dtype_name(in[0]->dtype));
    if (od_tensor_numel(in[i]) != 1 || in[i]->rank > 1)
      return od_err_set(err, OD_ERR_SHAPE, "input '%s' must be a scalar, has %lld elements", names[i],
                        (long long)od_tensor_numel(in[i]));
  }
  if (in[0]->dtype == OD_DTYPE_BOOL || !od_dtype_size(in[0]->dtype))
    return od_err_set(err, OD_ERR_UNSUPPORTED, "dtype %s", od_dtype_name(in[0]->dtype));
  return OD_OK;
}

/* The element count, from values known in in[0..2]. */
static enum od_status range_count(const struct od_tensor *const *in, int64_t *n, struct od_err *err) {
  if (od_dtype_is_float(in[0]->dtype)) {
    double s = od_tensor_get_f64(in[0], 0), l = od_tensor_get_f64(in[1], 0), d = od_tensor_get_f64(in[2], 0);
    if (d == 0 || isnan(d) || isnan(s) || isnan(l) || isinf(s) || isinf(l))
      return od_err_set(err, OD_ERR_SHAPE, "start %g, limit %g, delta %g do not give a finite range", s, l, d);
    double c = ceil((l - s) / d);
    if (c > (double)INT64_MAX / 2) return od_err_set(err, OD_ERR_SHAPE, "range of %g elements is too large", c);
    *n = c > 0 ? (int64_t)c : 0;
    return OD_OK;
  }
  int64_t s = od_tensor_get_i64(in[0], 0), l = od_tensor_get_i64(in[1], 0), d = od_tensor_get_i64(in[2], 0);
  if (d == 0) return od_err_set(err, OD_ERR_SHAPE, "delta is 0");
  /* ceil((l - s) / d) in exact integer arithmetic; the difference is formed in double first to
   * detect int64 overflow */
  if (fabs((double)l - (double)s) > 9.0e18) return od_err_set(err, OD_ERR_SHAPE, "range too large");
  int64_t diff = l - s;
  if ((diff > 0) != (d > 0) || diff == 0) {
    *n = 0;
    return OD_OK;
  }
  int64_t ad = d > 0 ? d : -d, adiff = diff > 0 ? diff : -diff;
  *n = (adiff - 1) / ad + 1;
  return OD_OK;
}

static enum od_status range_infer(struct od_infer_ctx *ctx) {
  if (ctx->n_in != 3) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "needs 3 inputs, has %d", ctx->n_in);
  const struct od_tensor *in[3] = {&ctx->in[0], &ctx->in[1], &ctx->in[2]};
  OD_TRY(range_check(in, ctx->err));
  if (!in[0]->data || !in[1]->data || !in[2]->data) {
    ctx->needs_values = true;
    return OD_OK;
  }
  int64_t n = 0;
  OD_TRY(range_count(in, &n, ctx->err));
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = in[0]->dtype;
  Y->rank = 1;
  Y->dims[0] = n;
  return OD_OK;
}

static enum od_status range_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *in[3] = {ctx->in[0], ctx->in[1], ctx->in[2]};
  struct od_tensor *Y = ctx->out[0];
  int64_t n = Y->dims[0];
  if (od_dtype_is_float(Y->dtype)) {
    double s = od_tensor_get_f64(in[0], 0), d = od_tensor_get_f64(in[2], 0);
    if (Y->dtype == OD_DTYPE_FLOAT) {
      float *y = Y->data;
      for (int64_t i = 0; i < n; i++) y[i] = (float)(s + (double)i * d);
    } else {
      for (int64_t i = 0; i < n; i++) od_tensor_set_f64(Y, i, s + (double)i * d);
    }
    return OD_OK;
  }
  int64_t s = od_tensor_get_i64(in[0], 0), d = od_tensor_get_i64(in[2], 0);
  switch (Y->dtype) {
    case OD_DTYPE_INT64: {
      int64_t *y = Y->data;
      for (int64_t i = 0; i < n; i++) y[i] = s + i * d;
      break;
    }
    case OD_DTYPE_INT32: {
      int32_t *y = Y->data;
      for (int64_t i = 0; i < n; i++) y[i] = (int32_t)(s + i * d);
      break;
    }
    default:
      for (int64_t i = 0; i < n; i++) od_tensor_set_f64(Y, i, (double)(s + i * d));
  }
  return OD_OK;
}

const struct od_op_kernels od_kernels_range = {
    .infer = range_infer,
    .forward = {[OD_DEVICE_CPU] = range_forward_cpu},
    .no_grad_inputs = 0x7u,
    .flags = OD_OP_FOLDABLE,
    .dtypes = "float, double, float16, bfloat16, int8..int64, uint8..uint64",
};
