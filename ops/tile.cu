/* ops/tile.cu: CUDA Tile. The repeats are read from the shapes (Y.shape[k] / X.shape[k]; the
 * 'repeats' input stays in device memory), then as on the CPU: forward copies the 2r-D view
 * [rep_0, d_0, rep_1, d_1, ...] of X with strides [0, s_0, 0, s_1, ...] (any dtype); backward
 * (float) sums dY over the tiles into dX with the transposed view (a reduction per dX element;
 * stored, not added, for a fresh dX: ops/op.h din_fresh). */
#include "ops/cuda/index.cuh"

enum od_status od_cuda_tile_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  if (od_tensor_numel(Y) == 0) return OD_OK;
  int64_t xs[OD_MAX_DIMS], dims[OD_STRIDED_MAX_DIMS], ss[OD_STRIDED_MAX_DIMS];
  od_strides(X->rank, X->dims, xs);
  for (int k = 0; k < X->rank; k++) {
    dims[2 * k] = Y->dims[k] / X->dims[k]; /* X->dims[k] > 0: Y is not empty */
    ss[2 * k] = 0;
    dims[2 * k + 1] = X->dims[k];
    ss[2 * k + 1] = xs[k];
  }
  return od_cuda_strided_copy(ctx, od_dtype_size(X->dtype), 2 * X->rank, dims, Y->data, NULL, X->data, ss);
}

enum od_status od_cuda_tile_bwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Tile backward on CUDA: float only");
  if (od_tensor_numel(dY) == 0) return od_cuda_fresh_zero(ctx, 1u);
  int64_t xs[OD_MAX_DIMS], ys[OD_MAX_DIMS], dims[OD_STRIDED_MAX_DIMS], ds[OD_STRIDED_MAX_DIMS], ss[OD_STRIDED_MAX_DIMS];
  od_strides(dX->rank, dX->dims, xs);
  od_strides(dY->rank, dY->dims, ys);
  for (int k = 0; k < dX->rank; k++) {
    int64_t d = dX->dims[k];
    dims[2 * k] = dY->dims[k] / d; /* the repeat */
    ds[2 * k] = 0;
    ss[2 * k] = d * ys[k];
    dims[2 * k + 1] = d;
    ds[2 * k + 1] = xs[k];
    ss[2 * k + 1] = ys[k];
  }
  return od_cuda_strided_acc(ctx, od_cuda_fresh(ctx, 0), 2 * dX->rank, dims, (float *)dX->data, ds,
                             (const float *)dY->data, ss);
}
