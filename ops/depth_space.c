/* ops/depth_space.c: ONNX DepthToSpace (opsets 1, 11, 13) and SpaceToDepth (opsets 1, 13). 4-D
 * (N, C, H, W) input, 'blocksize' b >= 1.
 *   DepthToSpace: (N, C, H, W) -> (N, C/b^2, H*b, W*b). Mode 'DCR' (the only one before opset 11;
 *     the default) reads the channel as (b1, b2, c'); 'CRD' (opset 11+) as (c', b1, b2):
 *       DCR: reshape [N, b, b, C', H, W], transpose [0, 3, 4, 1, 5, 2], reshape
 *       CRD: reshape [N, C', b, b, H, W], transpose [0, 1, 4, 2, 5, 3], reshape
 *   SpaceToDepth: (N, C, H, W) -> (N, C*b^2, H/b, W/b): reshape [N, C, H/b, b, W/b, b],
 *     transpose [0, 3, 5, 1, 2, 4], reshape (the inverse of DCR).
 * Each is one 6-D strided copy (ops/transpose.h); every fixed-size dtype works. Backward (float,
 * double) adds dY back through the same view.
 * Spec: https://onnx.ai/onnx/operators/onnx__DepthToSpace.html, onnx__SpaceToDepth.html */
#include <stdbool.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/depth_space.h"
#include "ops/op.h"
#include "ops/transpose.h"

static enum od_status depth_space_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct depth_space_attrs *a = attrs;
  if (!od_node_attr(node, "blocksize")) return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'blocksize' is required");
  OD_TRY(od_attr_get_int(node, "blocksize", 0, &a->blocksize, err));
  if (a->blocksize < 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'blocksize' must be >= 1, not %lld", (long long)a->blocksize);
  if (!strcmp(node->op_type, "DepthToSpace") && node->opset >= 11) {
    const char *mode;
    OD_TRY(od_attr_get_string(node, "mode", "DCR", &mode, err));
    if (!strcmp(mode, "CRD")) a->crd = true;
    else if (strcmp(mode, "DCR"))
      return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'mode' must be DCR or CRD, not '%s'", mode);
  }
  return OD_OK;
}

static enum od_status check_4d(const struct od_tensor *X, struct od_err *err) {
  if (X->rank != 4) {
    char s[128];
    return od_err_set(err, OD_ERR_SHAPE, "input must be 4-D (N, C, H, W), got %s", od_shape_str(X->rank, X->dims, s, sizeof s));
  }
  return OD_OK;
}

static enum od_status depth_to_space_infer(struct od_infer_ctx *ctx) {
  const struct depth_space_attrs *a = ctx->attrs;
  const struct od_tensor *X = &ctx->in[0];
  OD_TRY(check_4d(X, ctx->err));
  int64_t b = a->blocksize;
  if (X->dims[1] % (b * b))
    return od_err_set(ctx->err, OD_ERR_SHAPE, "channels %lld are not a multiple of blocksize^2 = %lld",
                      (long long)X->dims[1], (long long)(b * b));
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = 4;
  Y->dims[0] = X->dims[0];
  Y->dims[1] = X->dims[1] / (b * b);
  Y->dims[2] = X->dims[2] * b;
  Y->dims[3] = X->dims[3] * b;
  return OD_OK;
}

/* The output viewed as [N, C', H, b1, W, b2] (dims) and the input's strides for each (ss). */
static void depth_to_space_view(const struct depth_space_attrs *a, const struct od_tensor *X, int64_t *dims,
                                int64_t *ss) {
  int64_t b = a->blocksize, N = X->dims[0], C = X->dims[1], H = X->dims[2], W = X->dims[3], Cp = C / (b * b);
  dims[0] = N;
  dims[1] = Cp;
  dims[2] = H;
  dims[3] = b;
  dims[4] = W;
  dims[5] = b;
  ss[0] = C * H * W;
  ss[2] = W;
  ss[4] = 1;
  if (a->crd) { /* channel = (c' * b + b1) * b + b2 */
    ss[1] = b * b * H * W;
    ss[3] = b * H * W;
    ss[5] = H * W;
  } else { /* DCR: channel = (b1 * b + b2) * C' + c' */
    ss[1] = H * W;
    ss[3] = b * Cp * H * W;
    ss[5] = Cp * H * W;
  }
}

static enum od_status depth_to_space_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  int64_t dims[6], ss[6];
  depth_to_space_view(ctx->attrs, X, dims, ss);
  if (od_tensor_numel(Y) == 0) return OD_OK;
  od_strided_copy(ctx->pool, od_dtype_size(X->dtype), 6, dims, Y->data, NULL, X->data, ss);
  return OD_OK;
}

static enum od_status space_to_depth_infer(struct od_infer_ctx *ctx) {
  const struct depth_space_attrs *a = ctx->attrs;
  const struct od_tensor *X = &ctx->in[0];
  OD_TRY(check_4d(X, ctx->err));
  int64_t b = a->blocksize;
  if (X->dims[2] % b || X->dims[3] % b)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "height %lld and width %lld must be multiples of blocksize %lld",
                      (long long)X->dims[2], (long long)X->dims[3], (long long)b);
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = 4;
  Y->dims[0] = X->dims[0];
  Y->dims[1] = X->dims[1] * b * b;
  Y->dims[2] = X->dims[2] / b;
  Y->dims[3] = X->dims[3] / b;
  return OD_OK;
}

/* The output viewed as [N, b1, b2, C, H/b, W/b]: X[n, c, h' * b + b1, w' * b + b2]. */
static void space_to_depth_view(const struct depth_space_attrs *a, const struct od_tensor *X, int64_t *dims,
                                int64_t *ss) {
  int64_t b = a->blocksize, N = X->dims[0], C = X->dims[1], H = X->dims[2], W = X->dims[3];
  int64_t d[6] = {N, b, b, C, H / b, W / b};
  int64_t s[6] = {C * H * W, W, 1, H * W, b * W, b};
  memcpy(dims, d, sizeof d);
  memcpy(ss, s, sizeof s);
}

static enum od_status space_to_depth_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  int64_t dims[6], ss[6];
  space_to_depth_view(ctx->attrs, X, dims, ss);
  if (od_tensor_numel(Y) == 0) return OD_OK;
  od_strided_copy(ctx->pool, od_dtype_size(X->dtype), 6, dims, Y->data, NULL, X->data, ss);
  return OD_OK;
}

/* Backward of both: Y is a permutation of X (Y[j] = X[view(j)]), so dX[view(j)] += dY[j]: the
 * forward's view with dX on the strided side. */
static enum od_status depth_space_backward_cpu(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY || od_tensor_numel(dY) == 0) return OD_OK;
  int64_t dims[6], ss[6];
  bool d2s = !strcmp(ctx->node->op_type, "DepthToSpace");
  if (d2s) depth_to_space_view(ctx->attrs, ctx->in[0], dims, ss);
  else space_to_depth_view(ctx->attrs, ctx->in[0], dims, ss);
  return od_strided_add(ctx->pool, dX->dtype, 6, dims, dX->data, ss, dY->data, NULL, ctx->node->op_type, ctx->err);
}

const struct od_op_kernels od_kernels_depth_to_space = {
    .attrs_size = sizeof(struct depth_space_attrs),
    .parse = depth_space_parse,
    .infer = depth_to_space_infer,
    .forward = {[OD_DEVICE_CPU] = depth_to_space_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_depth_space_fwd)},
    .backward = {[OD_DEVICE_CPU] = depth_space_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_depth_space_bwd)},
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};

const struct od_op_kernels od_kernels_space_to_depth = {
    .attrs_size = sizeof(struct depth_space_attrs),
    .parse = depth_space_parse,
    .infer = space_to_depth_infer,
    .forward = {[OD_DEVICE_CPU] = space_to_depth_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_depth_space_fwd)},
    .backward = {[OD_DEVICE_CPU] = depth_space_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_depth_space_bwd)},
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};
