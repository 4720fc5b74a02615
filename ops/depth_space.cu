/* ops/depth_space.cu: CUDA DepthToSpace and SpaceToDepth. Each is the 6-D strided view of
 * ops/depth_space.c (DepthToSpace: Y as [N, C', H, b1, W, b2] read from X's channel split DCR or
 * CRD; SpaceToDepth: Y as [N, b1, b2, C, H/b, W/b]) run through the strided copy of
 * ops/cuda/index.cuh (any dtype); backward (float) adds dY back through the same view (a
 * permutation: no two elements meet), or copies it for a fresh dX (ops/op.h din_fresh). */
#include "ops/cuda/index.cuh"

extern "C" {
#include "ops/depth_space.h"
}

/* The output viewed as 6 dims and X's strides for each (the CPU's views). */
static void view6(const struct od_kernel_ctx *ctx, const struct od_tensor *X, int64_t *dims, int64_t *ss) {
  const struct depth_space_attrs *a = (const struct depth_space_attrs *)ctx->attrs;
  int64_t b = a->blocksize, N = X->dims[0], C = X->dims[1], H = X->dims[2], W = X->dims[3];
  if (!strcmp(ctx->node->op_type, "DepthToSpace")) {
    int64_t Cp = C / (b * b);
    int64_t d[6] = {N, Cp, H, b, W, b};
    int64_t crd[6] = {C * H * W, b * b * H * W, W, b * H * W, 1, H * W};   /* channel (c' * b + b1) * b + b2 */
    int64_t dcr[6] = {C * H * W, H * W, W, b * Cp * H * W, 1, Cp * H * W}; /* channel (b1 * b + b2) * C' + c' */
    memcpy(dims, d, sizeof d);
    memcpy(ss, a->crd ? crd : dcr, sizeof d);
  } else {
    int64_t d[6] = {N, b, b, C, H / b, W / b};
    int64_t s[6] = {C * H * W, W, 1, H * W, b * W, b};
    memcpy(dims, d, sizeof d);
    memcpy(ss, s, sizeof s);
  }
}

enum od_status od_cuda_depth_space_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  if (X->rank != 4) return od_err_set(ctx->err, OD_ERR_SHAPE, "input must be 4-D");
  if (od_tensor_numel(Y) == 0) return OD_OK;
  int64_t dims[6], ss[6];
  view6(ctx, X, dims, ss);
  return od_cuda_strided_copy(ctx, od_dtype_size(X->dtype), 6, dims, Y->data, NULL, X->data, ss);
}

enum od_status od_cuda_depth_space_bwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY || od_tensor_numel(dY) == 0) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "%s backward on CUDA: float only", ctx->node->op_type);
  if (dX->rank != 4) return od_err_set(ctx->err, OD_ERR_SHAPE, "input must be 4-D");
  int64_t dims[6], ss[6];
  view6(ctx, ctx->in[0], dims, ss);
  return od_cuda_strided_acc(ctx, od_cuda_fresh(ctx, 0), 6, dims, (float *)dX->data, ss, (const float *)dY->data,
                             NULL);
}
