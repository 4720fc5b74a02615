/* ops/nonzero.c: ONNX NonZero (opsets 9, 13: 13 adds bfloat16). Y (int64, shape (rank, nnz)) holds
 * the indices of the non-zero elements in row-major order, one row per axis (numpy.nonzero
 * stacked). A scalar input gives shape (0, nnz) (the spec's exception to numpy). The output's
 * shape depends on the values: infer counts them when the input is known, and otherwise sets
 * needs_values. Zero is tested by value, so -0.0 counts as zero and NaN as non-zero.
 * dtypes: every fixed-size dtype the runtime holds.
 * Spec: https://onnx.ai/onnx/operators/onnx__NonZero.html */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ops/op.h"

/* Whether element i of X is non-zero. Floats by value (sign bit ignored), integers and bool by
 * their bits. */
static bool nonzero_at(const struct od_tensor *X, int64_t i) {
  const char *p = X->data;
  switch (X->dtype) {
    case OD_DTYPE_FLOAT: {
      float v;
      memcpy(&v, p + i * 4, 4);
      return v != 0.0f;
    }
    case OD_DTYPE_DOUBLE: {
      double v;
      memcpy(&v, p + i * 8, 8);
      return v != 0.0;
    }
    case OD_DTYPE_FLOAT16:
    case OD_DTYPE_BFLOAT16: {
      uint16_t v;
      memcpy(&v, p + i * 2, 2);
      return (v & 0x7fffu) != 0; /* NaN has exponent bits set: non-zero */
    }
    default: {
      size_t es = od_dtype_size(X->dtype);
      for (size_t k = 0; k < es; k++)
        if (p[(size_t)i * es + k]) return true;
      return false;
    }
  }
}

static int64_t nonzero_count(const struct od_tensor *X) {
  int64_t n = od_tensor_numel(X), nnz = 0;
  for (int64_t i = 0; i < n; i++) nnz += nonzero_at(X, i);
  return nnz;
}

static enum od_status nonzero_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *X = &ctx->in[0];
  if (!od_dtype_size(X->dtype)) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "dtype %s", od_dtype_name(X->dtype));
  if (!X->data) {
    ctx->needs_values = true;
    return OD_OK;
  }
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = OD_DTYPE_INT64;
  Y->rank = 2;
  Y->dims[0] = X->rank;
  Y->dims[1] = nonzero_count(X);
  return OD_OK;
}

static enum od_status nonzero_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  int64_t n = od_tensor_numel(X), nnz = Y->dims[1], r = X->rank;
  int64_t *y = Y->data;
  int64_t idx[OD_MAX_DIMS] = {0};
  int64_t j = 0;
  for (int64_t i = 0; i < n; i++) {
    if (nonzero_at(X, i)) {
      if (j >= nnz)
        return od_err_set(ctx->err, OD_ERR_INTERNAL, "more non-zeros than the %lld the output was shaped for", (long long)nnz);
      for (int64_t k = 0; k < r; k++) y[k * nnz + j] = idx[k];
      j++;
    }
    for (int64_t k = r - 1; k >= 0; k--) { /* row-major odometer */
      if (++idx[k] < X->dims[k]) break;
      idx[k] = 0;
    }
  }
  if (j != nnz)
    return od_err_set(ctx->err, OD_ERR_INTERNAL, "%lld non-zeros, the output was shaped for %lld", (long long)j, (long long)nnz);
  return OD_OK;
}

const struct od_op_kernels od_kernels_nonzero = {
    .infer = nonzero_infer,
    .forward = {[OD_DEVICE_CPU] = nonzero_forward_cpu},
    .no_grad_inputs = 1u << 0,
    .flags = OD_OP_FOLDABLE,
    .dtypes = "all numeric, bool",
};
