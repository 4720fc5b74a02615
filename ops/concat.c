/* ops/concat.c: ONNX Concat (opsets 1, 4, 11, 13). Joins the inputs along one axis; every other
 * dim must match. Inputs with 0 elements along the axis are allowed (they add nothing).
 *   1: axis optional, default 1     4: axis required     11: negative axis, [-r, r-1]
 * dtypes: every fixed-size dtype the runtime holds (byte copies); backward float and double.
 * Spec: https://onnx.ai/onnx/operators/onnx__Concat.html */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/concat.h"
#include "ops/op.h"
#include "ops/transpose.h"
#include "runtime/pool.h"

static enum od_status concat_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct concat_attrs *a = attrs;
  if (node->opset >= 4 && !od_node_attr(node, "axis"))
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'axis' is required from opset 4");
  return od_attr_get_int(node, "axis", 1, &a->axis, err);
}

static enum od_status concat_infer(struct od_infer_ctx *ctx) {
  const struct concat_attrs *a = ctx->attrs;
  if (ctx->n_in < 1) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "needs at least one input");
  const struct od_tensor *X0 = &ctx->in[0];
  int axis;
  OD_TRY(od_axis_normalize(a->axis, X0->rank, "attribute 'axis'", &axis, ctx->err));
  if (X0->rank == 0) return od_err_set(ctx->err, OD_ERR_SHAPE, "cannot concatenate scalars");
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X0->dtype;
  Y->rank = X0->rank;
  memcpy(Y->dims, X0->dims, sizeof(int64_t) * (size_t)X0->rank);
  Y->dims[axis] = 0;
  for (int i = 0; i < ctx->n_in; i++) {
    const struct od_tensor *X = &ctx->in[i];
    bool ok = X->dtype == X0->dtype && X->rank == X0->rank;
    for (int k = 0; ok && k < X->rank; k++) ok = k == axis || X->dims[k] == X0->dims[k];
    if (!ok) {
      char s0[128], si[128];
      return od_err_set(ctx->err, OD_ERR_SHAPE, "input %d (%s %s) does not fit input 0 (%s %s) along axis %d", i,
                        od_dtype_name(X->dtype), od_shape_str(X->rank, X->dims, si, sizeof si),
                        od_dtype_name(X0->dtype), od_shape_str(X0->rank, X0->dims, s0, sizeof s0), axis);
    }
    Y->dims[axis] += X->dims[axis];
  }
  return OD_OK;
}

struct concat_job {
  struct od_kernel_ctx *ctx;
  size_t out_row;  /* bytes of one output row: dims[axis:] */
  size_t *in_row;  /* bytes of one row of each input */
};

/* Rows [begin, end) of the dims before the axis: each input's row goes after the previous one. */
static void concat_rows(void *p, int64_t begin, int64_t end) {
  const struct concat_job *jb = p;
  char *y = jb->ctx->out[0]->data;
  for (int64_t r = begin; r < end; r++) {
    char *d = y + (size_t)r * jb->out_row;
    for (int i = 0; i < jb->ctx->n_in; i++) {
      if (!jb->in_row[i]) continue;
      memcpy(d, (const char *)jb->ctx->in[i]->data + (size_t)r * jb->in_row[i], jb->in_row[i]);
      d += jb->in_row[i];
    }
  }
}

static enum od_status concat_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct concat_attrs *a = ctx->attrs;
  struct od_tensor *Y = ctx->out[0];
  int axis;
  OD_TRY(od_axis_normalize(a->axis, Y->rank, "attribute 'axis'", &axis, ctx->err));
  size_t es = od_dtype_size(Y->dtype);
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < axis; k++) outer *= Y->dims[k];
  for (int k = axis + 1; k < Y->rank; k++) inner *= Y->dims[k];
  size_t in_row[64], *rows = in_row;
  if (ctx->n_in > 64 && !(rows = malloc(sizeof *rows * (size_t)ctx->n_in)))
    return od_err_set(ctx->err, OD_ERR_OOM, "cannot allocate %d row sizes", ctx->n_in);
  for (int i = 0; i < ctx->n_in; i++) rows[i] = (size_t)(ctx->in[i]->dims[axis] * inner) * es;
  struct concat_job jb = {ctx, (size_t)(Y->dims[axis] * inner) * es, rows};
  if (outer && jb.out_row)
    od_pool_parallel_for(ctx->pool, outer, 1 + (int64_t)(65536 / jb.out_row), concat_rows, &jb);
  if (rows != in_row) free(rows);
  return OD_OK;
}

/* Backward: input i is the block [off_i, off_i + d_i) of Y along the axis, so dX_i += that block
 * of dY (read through Y's strides). */
static enum od_status concat_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct concat_attrs *a = ctx->attrs;
  const struct od_tensor *dY = ctx->dout[0];
  if (!dY) return OD_OK;
  int axis;
  OD_TRY(od_axis_normalize(a->axis, dY->rank, "attribute 'axis'", &axis, ctx->err));
  int64_t ys[OD_MAX_DIMS], off = 0;
  od_strides(dY->rank, dY->dims, ys);
  size_t es = od_dtype_size(dY->dtype);
  for (int i = 0; i < ctx->n_in; i++) {
    struct od_tensor *dX = ctx->din[i];
    int64_t d = ctx->in[i]->dims[axis];
    if (dX && od_tensor_numel(dX))
      OD_TRY(od_strided_add(ctx->pool, dX->dtype, dX->rank, dX->dims, dX->data, NULL,
                            (const char *)dY->data + (size_t)(off * ys[axis]) * es, ys, "Concat", ctx->err));
    off += d;
  }
  return OD_OK;
}

const struct od_op_kernels od_kernels_concat = {
    .bwd_reads = od_bwd_reads_nothing,
    .attrs_size = sizeof(struct concat_attrs),
    .parse = concat_parse,
    .infer = concat_infer,
    .forward = {[OD_DEVICE_CPU] = concat_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_concat_fwd)},
    .backward = {[OD_DEVICE_CPU] = concat_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_concat_bwd)},
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};
