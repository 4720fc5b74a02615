/* ops/expand.c: ONNX Expand (opsets 8, 13: 13 only adds bfloat16). Broadcasts the input to
 * broadcast(input.shape, shape) with numpy's two-way rule: a dim of 1 in 'shape' keeps the input's
 * dim, so the output can be larger than 'shape' says. 'shape' is input 1 (int64 1-D).
 * The copy reads the input with stride 0 along broadcast dims (ops/transpose.h); every fixed-size
 * dtype works; backward (float, double) sums the gradient over the broadcast dims.
 * Spec: https://onnx.ai/onnx/operators/onnx__Expand.html */
#include <string.h>

#include "ops/op.h"
#include "ops/transpose.h"

static enum od_status expand_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *X = &ctx->in[0], *S = &ctx->in[1];
  if (S->dtype != OD_DTYPE_INT64)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "input 'shape' must be int64, not %s", od_dtype_name(S->dtype));
  int64_t n = od_tensor_numel(S);
  if (S->rank != 1 || n > OD_MAX_DIMS) {
    char s[128];
    return od_err_set(ctx->err, OD_ERR_SHAPE, "input 'shape' must be 1-D with at most %d values, got shape %s",
                      OD_MAX_DIMS, od_shape_str(S->rank, S->dims, s, sizeof s));
  }
  if (!S->data) {
    ctx->needs_values = true;
    return OD_OK;
  }
  int64_t shape[OD_MAX_DIMS];
  for (int64_t i = 0; i < n; i++) {
    shape[i] = ((const int64_t *)S->data)[i];
    if (shape[i] < 0)
      return od_err_set(ctx->err, OD_ERR_SHAPE, "shape value %lld at %lld is negative", (long long)shape[i], (long long)i);
  }
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  return od_broadcast_shapes(X->rank, X->dims, (int)n, shape, &Y->rank, Y->dims, ctx->err);
}

static enum od_status expand_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  if (od_tensor_numel(Y) == 0) return OD_OK;
  int64_t ss[OD_MAX_DIMS];
  od_broadcast_strides(X->rank, X->dims, Y->rank, Y->dims, ss);
  od_strided_copy(ctx->pool, od_dtype_size(X->dtype), Y->rank, Y->dims, Y->data, NULL, X->data, ss);
  return OD_OK;
}

/* Backward: Y[i] = X[i with broadcast dims at 0], so dX[j] = sum of dY over every i that reads j:
 * the same view with stride 0 on the dX side sums over the broadcast dims. */
static enum od_status expand_backward_cpu(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY || od_tensor_numel(dY) == 0) return OD_OK;
  int64_t ds[OD_MAX_DIMS];
  od_broadcast_strides(dX->rank, dX->dims, dY->rank, dY->dims, ds);
  return od_strided_add(ctx->pool, dX->dtype, dY->rank, dY->dims, dX->data, ds, dY->data, NULL, "Expand", ctx->err);
}

const struct od_op_kernels od_kernels_expand = {
    .infer = expand_infer,
    .forward = {[OD_DEVICE_CPU] = expand_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_expand_fwd)},
    .backward = {[OD_DEVICE_CPU] = expand_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_expand_bwd)},
    .no_grad_inputs = 1u << 1,
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};
