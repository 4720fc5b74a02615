/* ops/split.c: ONNX Split (opsets 1, 2, 11, 13, 18). Cuts the input along one axis into the outputs.
 *   1: sizes from optional input 1 or the 'split' attribute     2: 'split' attribute only
 *   11: negative axis       13: sizes from optional input 1 (int64), attribute gone
 *   18: 'num_outputs' attribute: parts of ceil(d / n), the last one smaller (uneven splits)
 * Without sizes the axis is cut into n_outputs equal parts (before 18 it must divide evenly).
 * Zero-sized parts are allowed. dtypes: every fixed-size dtype the runtime holds (byte copies);
 * backward float and double.
 * Spec: https://onnx.ai/onnx/operators/onnx__Split.html */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "ops/split.h"
#include "ops/transpose.h"
#include "runtime/pool.h"

#define SPLIT_MAX_OUTPUTS 1024

static enum od_status split_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct split_attrs *a = attrs;
  OD_TRY(od_attr_get_int(node, "axis", 0, &a->axis, err));
  if (node->opset >= 18) {
    OD_TRY(od_attr_get_int(node, "num_outputs", 0, &a->num_outputs, err));
    if (od_node_attr(node, "num_outputs") && (a->num_outputs < 1 || a->num_outputs != node->n_outputs))
      return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'num_outputs' is %lld, the node has %d outputs",
                        (long long)a->num_outputs, node->n_outputs);
  }
  if (node->opset < 13) {
    const struct od_attr *s = od_node_attr(node, "split");
    if (s) {
      if (s->type != OD_ATTR_INTS)
        return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'split' must be INTS, not %s",
                          od_attr_type_name(s->type));
      a->has_split = true;
      a->n_split = (int)s->n;
      a->split = s->ints;
    }
  }
  if (node->n_outputs < 1 || node->n_outputs > SPLIT_MAX_OUTPUTS)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%d outputs (1..%d supported)", node->n_outputs, SPLIT_MAX_OUTPUTS);
  return OD_OK;
}

/* The size of each part along the axis (n_out values) for an axis of size d. *pending when the
 * sizes input has no value yet. */
static enum od_status split_sizes(const struct split_attrs *a, const struct od_node *node, int n_in,
                                  const struct od_tensor *split_in, int64_t d, int64_t *sizes, bool *pending,
                                  struct od_err *err) {
  int n_out = node->n_outputs;
  *pending = false;
  /* an empty 'split' tensor counts as absent (some exporters write one; onnxruntime agrees) */
  bool input_sizes = n_in >= 2 && split_in && split_in->dtype && (node->opset >= 13 || node->opset < 2) &&
                     od_tensor_numel(split_in) > 0;
  if (input_sizes) {
    if (!split_in->data) {
      *pending = true;
      return OD_OK;
    }
    if (split_in->dtype != OD_DTYPE_INT64 && split_in->dtype != OD_DTYPE_INT32)
      return od_err_set(err, OD_ERR_SHAPE, "input 'split' must be int64, not %s", od_dtype_name(split_in->dtype));
    int64_t n = od_tensor_numel(split_in);
    if (n != n_out || split_in->rank > 1)
      return od_err_set(err, OD_ERR_SHAPE, "input 'split' has %lld values for %d outputs", (long long)n, n_out);
    for (int i = 0; i < n_out; i++) sizes[i] = od_tensor_get_i64(split_in, i);
  } else if (a->has_split && node->opset < 13) {
    if (a->n_split != n_out)
      return od_err_set(err, OD_ERR_SHAPE, "attribute 'split' has %d values for %d outputs", a->n_split, n_out);
    memcpy(sizes, a->split, sizeof(int64_t) * (size_t)n_out);
  } else if (d % n_out == 0) {
    for (int i = 0; i < n_out; i++) sizes[i] = d / n_out;
  } else if (node->opset >= 18) {
    /* num_outputs: ceil-sized parts, the last takes what is left */
    int64_t chunk = (d + n_out - 1) / n_out;
    for (int i = 0; i < n_out; i++) sizes[i] = chunk;
    sizes[n_out - 1] = d - chunk * (n_out - 1);
    if (sizes[n_out - 1] < 0)
      return od_err_set(err, OD_ERR_SHAPE, "an axis of size %lld cannot be split into %d parts of %lld",
                        (long long)d, n_out, (long long)chunk);
  } else {
    return od_err_set(err, OD_ERR_SHAPE, "an axis of size %lld does not split evenly into %d outputs",
                      (long long)d, n_out);
  }
  int64_t sum = 0;
  for (int i = 0; i < n_out; i++) {
    if (sizes[i] < 0) return od_err_set(err, OD_ERR_SHAPE, "split size %d is negative (%lld)", i, (long long)sizes[i]);
    sum += sizes[i];
  }
  if (sum != d)
    return od_err_set(err, OD_ERR_SHAPE, "split sizes add up to %lld, the axis has %lld", (long long)sum, (long long)d);
  return OD_OK;
}

static enum od_status split_infer(struct od_infer_ctx *ctx) {
  const struct split_attrs *a = ctx->attrs;
  const struct od_tensor *X = &ctx->in[0];
  int axis;
  OD_TRY(od_axis_normalize(a->axis, X->rank, "attribute 'axis'", &axis, ctx->err));
  if (X->rank == 0) return od_err_set(ctx->err, OD_ERR_SHAPE, "cannot split a scalar");
  int64_t sizes[SPLIT_MAX_OUTPUTS];
  bool pending;
  OD_TRY(split_sizes(a, ctx->node, ctx->n_in, ctx->n_in >= 2 ? &ctx->in[1] : NULL, X->dims[axis], sizes,
                     &pending, ctx->err));
  if (pending) {
    ctx->needs_values = true;
    return OD_OK;
  }
  for (int i = 0; i < ctx->n_out; i++) {
    struct od_tensor *Y = &ctx->out[i];
    Y->dtype = X->dtype;
    Y->rank = X->rank;
    memcpy(Y->dims, X->dims, sizeof(int64_t) * (size_t)X->rank);
    Y->dims[axis] = sizes[i];
  }
  return OD_OK;
}

struct split_job {
  struct od_kernel_ctx *ctx;
  size_t in_row;   /* bytes of one input row: dims[axis:] */
  size_t *out_row; /* bytes of one row of each output */
};

static void split_rows(void *p, int64_t begin, int64_t end) {
  const struct split_job *jb = p;
  const char *x = jb->ctx->in[0]->data;
  for (int64_t r = begin; r < end; r++) {
    const char *s = x + (size_t)r * jb->in_row;
    for (int i = 0; i < jb->ctx->n_out; i++) {
      struct od_tensor *Y = jb->ctx->out[i];
      if (Y && jb->out_row[i]) memcpy((char *)Y->data + (size_t)r * jb->out_row[i], s, jb->out_row[i]);
      s += jb->out_row[i];
    }
  }
}

static enum od_status split_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct split_attrs *a = ctx->attrs;
  const struct od_tensor *X = ctx->in[0];
  int axis;
  OD_TRY(od_axis_normalize(a->axis, X->rank, "attribute 'axis'", &axis, ctx->err));
  int64_t sizes[SPLIT_MAX_OUTPUTS];
  bool pending;
  OD_TRY(split_sizes(a, ctx->node, ctx->n_in, ctx->n_in >= 2 ? ctx->in[1] : NULL, X->dims[axis], sizes, &pending,
                     ctx->err));
  if (pending) return od_err_set(ctx->err, OD_ERR_INTERNAL, "input 'split' has no value at run time");
  size_t es = od_dtype_size(X->dtype);
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < axis; k++) outer *= X->dims[k];
  for (int k = axis + 1; k < X->rank; k++) inner *= X->dims[k];
  size_t *rows = malloc(sizeof *rows * (size_t)ctx->n_out);
  if (!rows) return od_err_set(ctx->err, OD_ERR_OOM, "cannot allocate %d row sizes", ctx->n_out);
  for (int i = 0; i < ctx->n_out; i++) rows[i] = (size_t)(sizes[i] * inner) * es;
  struct split_job jb = {ctx, (size_t)(X->dims[axis] * inner) * es, rows};
  if (outer && jb.in_row)
    od_pool_parallel_for(ctx->pool, outer, 1 + (int64_t)(65536 / jb.in_row), split_rows, &jb);
  free(rows);
  return OD_OK;
}

/* Backward: output i is the block [off_i, off_i + d_i) of X along the axis, so that block of dX
 * += dY_i; outputs no gradient reaches (dout NULL) add nothing. */
static enum od_status split_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct split_attrs *a = ctx->attrs;
  struct od_tensor *dX = ctx->din[0];
  if (!dX) return OD_OK;
  int axis;
  OD_TRY(od_axis_normalize(a->axis, dX->rank, "attribute 'axis'", &axis, ctx->err));
  int64_t sizes[SPLIT_MAX_OUTPUTS];
  bool pending;
  OD_TRY(split_sizes(a, ctx->node, ctx->n_in, ctx->n_in >= 2 ? ctx->in[1] : NULL, dX->dims[axis], sizes, &pending,
                     ctx->err));
  if (pending) return od_err_set(ctx->err, OD_ERR_INTERNAL, "input 'split' has no value at run time");
  int64_t xs[OD_MAX_DIMS], off = 0;
  od_strides(dX->rank, dX->dims, xs);
  size_t es = od_dtype_size(dX->dtype);
  for (int i = 0; i < ctx->n_out; i++) {
    const struct od_tensor *dY = ctx->dout[i];
    int64_t d = sizes[i];
    if (dY && od_tensor_numel(dY))
      OD_TRY(od_strided_add(ctx->pool, dX->dtype, dY->rank, dY->dims, (char *)dX->data + (size_t)(off * xs[axis]) * es,
                            xs, dY->data, NULL, "Split", ctx->err));
    off += d;
  }
  return OD_OK;
}

const struct od_op_kernels od_kernels_split = {
    .attrs_size = sizeof(struct split_attrs),
    .parse = split_parse,
    .infer = split_infer,
    .forward = {[OD_DEVICE_CPU] = split_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_split_fwd)},
    .backward = {[OD_DEVICE_CPU] = split_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_split_bwd)},
    .no_grad_inputs = 1u << 1,
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};
