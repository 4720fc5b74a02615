/* ops/concat.cu: CUDA Concat. Y viewed as [outer, d_axis * inner] rows: input i fills the column
 * block [off_i, off_i + d_i * inner) of every row. Forward: one launch per input, a 2-D strided
 * copy (ops/cuda/index.cuh) that moves 16-byte units where rows and offsets are aligned (the
 * YOLOv3 route layers: channel concat of NCHW maps) and is a single device copy when outer is 1.
 * Backward (float): the inverse, dX_i += the same block of dY, one launch per input that wants a
 * gradient (float4 where aligned); a fresh dX_i (ops/op.h din_fresh) is written by the copy instead.
 * Inputs are done in order, so Concat(x, x) writes the first block and adds the second. Forward
 * moves bytes, so every dtype of 1, 2, 4 or 8 bytes works. */
#include "ops/cuda/index.cuh"

extern "C" {
#include "ops/attr.h"
#include "ops/concat.h"
}

/* axis, outer (dims before it) and inner (dims after it) of the rank-r output Y. */
static enum od_status concat_geometry(struct od_kernel_ctx *ctx, const struct od_tensor *Y, int *axis, int64_t *outer,
                                      int64_t *inner) {
  const struct concat_attrs *a = (const struct concat_attrs *)ctx->attrs;
  OD_TRY(od_axis_normalize(a->axis, Y->rank, "attribute 'axis'", axis, ctx->err));
  *outer = *inner = 1;
  for (int k = 0; k < *axis; k++) *outer *= Y->dims[k];
  for (int k = *axis + 1; k < Y->rank; k++) *inner *= Y->dims[k];
  return OD_OK;
}

enum od_status od_cuda_concat_fwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *Y = ctx->out[0];
  int axis;
  int64_t outer, inner;
  OD_TRY(concat_geometry(ctx, Y, &axis, &outer, &inner));
  size_t es = od_dtype_size(Y->dtype);
  int64_t row_y = Y->dims[axis] * inner, off = 0;
  for (int i = 0; i < ctx->n_in; i++) {
    const struct od_tensor *X = ctx->in[i];
    int64_t row = X->dims[axis] * inner;
    int64_t dims[2] = {outer, row}, ds[2] = {row_y, 1};
    OD_TRY(od_cuda_strided_copy(ctx, es, 2, dims, (char *)Y->data + (size_t)off * es, ds, X->data, NULL));
    off += row;
  }
  return OD_OK;
}

enum od_status od_cuda_concat_bwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *dY = ctx->dout[0];
  if (!dY) return OD_OK;
  if (dY->dtype != OD_DTYPE_FLOAT) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Concat backward on CUDA: float only");
  int axis;
  int64_t outer, inner;
  OD_TRY(concat_geometry(ctx, dY, &axis, &outer, &inner));
  int64_t row_y = dY->dims[axis] * inner, off = 0;
  for (int i = 0; i < ctx->n_in; i++) {
    struct od_tensor *dX = ctx->din[i];
    int64_t row = ctx->in[i]->dims[axis] * inner;
    int64_t dims[2] = {outer, row}, ss[2] = {row_y, 1};
    if (dX)
      OD_TRY(od_cuda_strided_acc(ctx, od_cuda_fresh(ctx, i), 2, dims, (float *)dX->data, NULL,
                                 (const float *)dY->data + off, ss));
    off += row;
  }
  return OD_OK;
}
