/* ops/expand.cu: CUDA Expand. Forward reads X with stride 0 along the broadcast dims (the strided
 * copy of ops/cuda/index.cuh, any dtype; the 'shape' input is not read: the output's shape has
 * it). Backward (float): dX += dY summed over the broadcast dims, the same view with stride 0 on
 * the dX side (a deterministic reduction per dX element); a fresh dX (ops/op.h din_fresh) gets the
 * sums stored. */
#include "ops/cuda/index.cuh"

enum od_status od_cuda_expand_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  if (od_tensor_numel(Y) == 0) return OD_OK;
  int64_t ss[OD_MAX_DIMS];
  od_broadcast_strides(X->rank, X->dims, Y->rank, Y->dims, ss);
  return od_cuda_strided_copy(ctx, od_dtype_size(X->dtype), Y->rank, Y->dims, Y->data, NULL, X->data, ss);
}

enum od_status od_cuda_expand_bwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Expand backward on CUDA: float only");
  if (od_tensor_numel(dY) == 0) return od_cuda_fresh_zero(ctx, 1u);
  int64_t ds[OD_MAX_DIMS];
  od_broadcast_strides(dX->rank, dX->dims, dY->rank, dY->dims, ds);
  return od_cuda_strided_acc(ctx, od_cuda_fresh(ctx, 0), dY->rank, dY->dims, (float *)dX->data, ds,
                             (const float *)dY->data, NULL);
}
