/* ops/split.cu: CUDA Split, the mirror of Concat (ops/concat.cu). X viewed as [outer, d_axis *
 * inner] rows; output i is the column block [off_i, off_i + d_i * inner). The part sizes are read
 * from the outputs' shapes (fixed at compile time), so a 'split' input in device memory is never
 * read. Forward: one strided copy per output (bytes: any dtype of 1, 2, 4 or 8 bytes); backward
 * (float): that block of dX += dY_i, one launch per output a gradient reaches; a fresh dX (ops/op.h
 * din_fresh) is written by the copies instead when every output has a gradient, else zeroed first. */
#include "ops/cuda/index.cuh"

extern "C" {
#include "ops/attr.h"
#include "ops/split.h"
}

/* Size along the axis of part i: from its output, else its gradient; -1 when neither is there. */
static int64_t part_size(struct od_kernel_ctx *ctx, int i, int axis) {
  if (ctx->out[i]) return ctx->out[i]->dims[axis];
  if (ctx->dout && ctx->dout[i]) return ctx->dout[i]->dims[axis];
  return -1;
}

/* axis, outer, inner of X and the offsets (in rows of inner) of each part; off has n_out + 1 slots. */
static enum od_status split_geometry(struct od_kernel_ctx *ctx, const struct od_tensor *X, int *axis, int64_t *outer,
                                     int64_t *inner, int64_t *off) {
  const struct split_attrs *a = (const struct split_attrs *)ctx->attrs;
  OD_TRY(od_axis_normalize(a->axis, X->rank, "attribute 'axis'", axis, ctx->err));
  *outer = *inner = 1;
  for (int k = 0; k < *axis; k++) *outer *= X->dims[k];
  for (int k = *axis + 1; k < X->rank; k++) *inner *= X->dims[k];
  /* one omitted output (no tensor, no gradient) takes what the others leave */
  int64_t known = 0;
  int missing = -1;
  for (int i = 0; i < ctx->n_out; i++) {
    int64_t s = part_size(ctx, i, *axis);
    if (s >= 0) known += s;
    else if (missing >= 0) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Split on CUDA: several omitted outputs");
    else missing = i;
  }
  off[0] = 0;
  for (int i = 0; i < ctx->n_out; i++) {
    int64_t s = i == missing ? X->dims[*axis] - known : part_size(ctx, i, *axis);
    off[i + 1] = off[i] + s;
  }
  if (off[ctx->n_out] != X->dims[*axis])
    return od_err_set(ctx->err, OD_ERR_INTERNAL, "output sizes add up to %lld, the axis has %lld",
                      (long long)off[ctx->n_out], (long long)X->dims[*axis]);
  return OD_OK;
}

#define SPLIT_CUDA_MAX 1024

enum od_status od_cuda_split_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  if (ctx->n_out > SPLIT_CUDA_MAX) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "%d outputs", ctx->n_out);
  int axis;
  int64_t outer, inner, off[SPLIT_CUDA_MAX + 1];
  OD_TRY(split_geometry(ctx, X, &axis, &outer, &inner, off));
  size_t es = od_dtype_size(X->dtype);
  int64_t row_x = X->dims[axis] * inner;
  for (int i = 0; i < ctx->n_out; i++) {
    struct od_tensor *Y = ctx->out[i];
    if (!Y) continue;
    int64_t dims[2] = {outer, (off[i + 1] - off[i]) * inner}, ss[2] = {row_x, 1};
    OD_TRY(od_cuda_strided_copy(ctx, es, 2, dims, Y->data, NULL, (const char *)X->data + (size_t)(off[i] * inner) * es, ss));
  }
  return OD_OK;
}

enum od_status od_cuda_split_bwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  if (!dX) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Split backward on CUDA: float only");
  if (ctx->n_out > SPLIT_CUDA_MAX) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "%d outputs", ctx->n_out);
  int axis;
  int64_t outer, inner, off[SPLIT_CUDA_MAX + 1];
  OD_TRY(split_geometry(ctx, dX, &axis, &outer, &inner, off));
  int64_t row_x = dX->dims[axis] * inner;
  for (int i = 0; i < ctx->n_out; i++) /* a part no gradient reaches is 0 */
    if (!ctx->dout[i] && off[i + 1] > off[i]) OD_TRY(od_cuda_fresh_zero(ctx, 1u));
  bool write = od_cuda_fresh(ctx, 0);
  for (int i = 0; i < ctx->n_out; i++) {
    const struct od_tensor *dY = ctx->dout[i];
    if (!dY) continue;
    int64_t dims[2] = {outer, (off[i + 1] - off[i]) * inner}, ds[2] = {row_x, 1};
    OD_TRY(od_cuda_strided_acc(ctx, write, 2, dims, (float *)dX->data + off[i] * inner, ds, (const float *)dY->data,
                               NULL));
  }
  return OD_OK;
}
