/* ops/reshape.cu: CUDA Reshape, Flatten, Squeeze, Unsqueeze (the "view" ops of ops/reshape.c).
 * The output holds the input's bytes: forward is one device-to-device copy on the stream (none
 * when the executor gave the output the input's memory), any dtype; backward (float) is
 * dX += dY, one float4 grid-stride loop (a fresh dX, ops/op.h din_fresh: one device copy). */
#include "ops/cuda/index.cuh"

enum od_status od_cuda_view_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  size_t nb = od_tensor_nbytes(X);
  if (nb != od_tensor_nbytes(Y))
    return od_err_set(ctx->err, OD_ERR_INTERNAL, "output has %zu bytes, input %zu", od_tensor_nbytes(Y), nb);
  if (!nb || Y->data == X->data) return OD_OK;
  return ctx->dev->ops->copy(ctx->dev, Y->data, X->data, nb, ctx->err);
}

enum od_status od_cuda_view_bwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "%s backward on CUDA: float only", ctx->node->op_type);
  int64_t n = od_tensor_numel(dX);
  if (n != od_tensor_numel(dY))
    return od_err_set(ctx->err, OD_ERR_INTERNAL, "gradient has %lld elements, input %lld",
                      (long long)od_tensor_numel(dY), (long long)n);
  return od_cuda_acc(ctx, od_cuda_fresh(ctx, 0), (float *)dX->data, (const float *)dY->data, n);
}
