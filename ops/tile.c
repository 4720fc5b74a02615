/* ops/tile.c: ONNX Tile (opsets 1, 6, 13). Repeats the input: Y.shape[k] = X.shape[k] * repeats[k],
 * Y[i_k] = X[i_k mod X.shape[k]].
 *   1: inputs 'tiles' and 'axis' (scalars): repeat along one axis
 *   6: input 'repeats' (int64 1-D, one value >= 0 per input dim)     13: bfloat16
 * The copy reads the 2r-D view [rep_0, d_0, rep_1, d_1, ...] of the input with strides
 * [0, s_0, 0, s_1, ...] (ops/transpose.h); every fixed-size dtype works. Backward (float,
 * double) sums the gradient over the tiles.
 * Spec: https://onnx.ai/onnx/operators/onnx__Tile.html */
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "ops/transpose.h"

/* repeats[k] for every dim of X. *pending when an input value is not known yet. in[i] may have
 * data NULL (infer, not yet known). */
static enum od_status tile_repeats(const struct od_node *node, const struct od_tensor *X, const struct od_tensor *R,
                                   const struct od_tensor *A, int64_t *rep, bool *pending, struct od_err *err) {
  *pending = false;
  for (int k = 0; k < X->rank; k++) rep[k] = 1;
  if (node->opset < 6) {
    if (!A) return od_err_set(err, OD_ERR_INVALID_MODEL, "inputs 'tiles' and 'axis' are required before opset 6");
    if (!R->data || !A->data) {
      *pending = true;
      return OD_OK;
    }
    if (od_tensor_numel(R) != 1 || od_tensor_numel(A) != 1 || od_dtype_is_float(R->dtype) || od_dtype_is_float(A->dtype))
      return od_err_set(err, OD_ERR_SHAPE, "inputs 'tiles' and 'axis' must be integer scalars");
    int axis;
    OD_TRY(od_axis_normalize(od_tensor_get_i64(A, 0), X->rank, "input 'axis'", &axis, err));
    rep[axis] = od_tensor_get_i64(R, 0);
  } else {
    if (R->dtype != OD_DTYPE_INT64)
      return od_err_set(err, OD_ERR_SHAPE, "input 'repeats' must be int64, not %s", od_dtype_name(R->dtype));
    if (R->rank != 1 || R->dims[0] != X->rank)
      return od_err_set(err, OD_ERR_SHAPE, "input 'repeats' must be 1-D with %d values (the input's rank), has %lld",
                        X->rank, (long long)od_tensor_numel(R));
    if (!R->data) {
      *pending = true;
      return OD_OK;
    }
    for (int k = 0; k < X->rank; k++) rep[k] = ((const int64_t *)R->data)[k];
  }
  for (int k = 0; k < X->rank; k++)
    if (rep[k] < 0) return od_err_set(err, OD_ERR_SHAPE, "repeat %lld for axis %d is negative", (long long)rep[k], k);
  return OD_OK;
}

static enum od_status tile_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *X = &ctx->in[0];
  if (ctx->n_in < 2) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "input 'repeats' is required");
  int64_t rep[OD_MAX_DIMS];
  bool pending;
  OD_TRY(tile_repeats(ctx->node, X, &ctx->in[1], ctx->n_in > 2 ? &ctx->in[2] : NULL, rep, &pending, ctx->err));
  if (pending) {
    ctx->needs_values = true;
    return OD_OK;
  }
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = X->rank;
  for (int k = 0; k < X->rank; k++) Y->dims[k] = X->dims[k] * rep[k];
  return OD_OK;
}

static enum od_status tile_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  int64_t rep[OD_MAX_DIMS];
  bool pending;
  OD_TRY(tile_repeats(ctx->node, X, ctx->in[1], ctx->n_in > 2 ? ctx->in[2] : NULL, rep, &pending, ctx->err));
  if (pending) return od_err_set(ctx->err, OD_ERR_INTERNAL, "repeats have no value at run time");
  if (od_tensor_numel(Y) == 0) return OD_OK;
  int64_t xs[OD_MAX_DIMS], dims[OD_STRIDED_MAX_DIMS], ss[OD_STRIDED_MAX_DIMS];
  od_strides(X->rank, X->dims, xs);
  for (int k = 0; k < X->rank; k++) {
    dims[2 * k] = rep[k];
    ss[2 * k] = 0;
    dims[2 * k + 1] = X->dims[k];
    ss[2 * k + 1] = xs[k];
  }
  od_strided_copy(ctx->pool, od_dtype_size(X->dtype), 2 * X->rank, dims, Y->data, NULL, X->data, ss);
  return OD_OK;
}

/* Backward: Y[t_k * d_k + i_k] = X[i_k], so dX[i] = sum over the tiles t of dY[t * d + i]: the
 * forward's 2r-D view [rep_k, d_k] with dX strides [0, xs_k] and dY strides [d_k * ys_k, ys_k]. */
static enum od_status tile_backward_cpu(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY || od_tensor_numel(dY) == 0) return OD_OK;
  int64_t xs[OD_MAX_DIMS], ys[OD_MAX_DIMS], dims[OD_STRIDED_MAX_DIMS], ds[OD_STRIDED_MAX_DIMS], ss[OD_STRIDED_MAX_DIMS];
  od_strides(dX->rank, dX->dims, xs);
  od_strides(dY->rank, dY->dims, ys);
  for (int k = 0; k < dX->rank; k++) {
    int64_t d = dX->dims[k];
    dims[2 * k] = d ? dY->dims[k] / d : 0; /* the repeat */
    ds[2 * k] = 0;
    ss[2 * k] = d * ys[k];
    dims[2 * k + 1] = d;
    ds[2 * k + 1] = xs[k];
    ss[2 * k + 1] = ys[k];
  }
  return od_strided_add(ctx->pool, dX->dtype, 2 * dX->rank, dims, dX->data, ds, dY->data, ss, "Tile", ctx->err);
}

const struct od_op_kernels od_kernels_tile = {
    .infer = tile_infer,
    .forward = {[OD_DEVICE_CPU] = tile_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_tile_fwd)},
    .backward = {[OD_DEVICE_CPU] = tile_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_tile_bwd)},
    .no_grad_inputs = 0x6u,
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};
