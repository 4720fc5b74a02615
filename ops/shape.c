/* ops/shape.c: ONNX Shape (opsets 1, 13, 15, 19, 21, 23-25) and Size (opsets 1, 13, 19, 21, 23-25).
 * Both read only the input's shape (OD_OP_SHAPE_ONLY: folded at compile time when shapes are known).
 *   Shape: int64 1-D tensor of the dims. From opset 15 the 'start' and 'end' attributes select the
 *          dims [start, end) (negative values count from the back, both clamped to [0, rank]; an
 *          empty range gives a 0-length output).
 *   Size:  int64 scalar, the element count.
 * Input dtypes: any. Spec: https://onnx.ai/onnx/operators/onnx__Shape.html, onnx__Size.html */
#include <stdbool.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"

struct shape_attrs {
  int64_t start, end;
  bool has_end;
};

static enum od_status shape_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct shape_attrs *a = attrs;
  if (node->opset < 15) return OD_OK; /* no attributes before 15: the whole shape */
  OD_TRY(od_attr_get_int(node, "start", 0, &a->start, err));
  a->has_end = od_node_attr(node, "end") != NULL;
  OD_TRY(od_attr_get_int(node, "end", 0, &a->end, err));
  return OD_OK;
}

/* The selected range [*s, *e) of the dims of a rank-r input. */
static void shape_range(const struct shape_attrs *a, int r, int64_t *s, int64_t *e) {
  int64_t start = a->start, end = a->has_end ? a->end : r;
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = start < 0 ? 0 : start > r ? r : start;
  end = end < 0 ? 0 : end > r ? r : end;
  *s = start;
  *e = end > start ? end : start;
}

static enum od_status shape_infer(struct od_infer_ctx *ctx) {
  int64_t s, e;
  shape_range(ctx->attrs, ctx->in[0].rank, &s, &e);
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = OD_DTYPE_INT64;
  Y->rank = 1;
  Y->dims[0] = e - s;
  return OD_OK;
}

static enum od_status shape_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  int64_t s, e;
  shape_range(ctx->attrs, X->rank, &s, &e);
  int64_t *y = ctx->out[0]->data;
  for (int64_t k = s; k < e; k++) y[k - s] = X->dims[k];
  return OD_OK;
}

const struct od_op_kernels od_kernels_shape = {
    .attrs_size = sizeof(struct shape_attrs),
    .parse = shape_parse,
    .infer = shape_infer,
    .forward = {[OD_DEVICE_CPU] = shape_forward_cpu},
    .no_grad_inputs = 1u << 0,
    .flags = OD_OP_FOLDABLE | OD_OP_SHAPE_ONLY,
    .dtypes = "any (output int64)",
};

static enum od_status size_infer(struct od_infer_ctx *ctx) {
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = OD_DTYPE_INT64;
  Y->rank = 0;
  return OD_OK;
}

static enum od_status size_forward_cpu(struct od_kernel_ctx *ctx) {
  *(int64_t *)ctx->out[0]->data = od_tensor_numel(ctx->in[0]);
  return OD_OK;
}

const struct od_op_kernels od_kernels_size = {
    .infer = size_infer,
    .forward = {[OD_DEVICE_CPU] = size_forward_cpu},
    .no_grad_inputs = 1u << 0,
    .flags = OD_OP_FOLDABLE | OD_OP_SHAPE_ONLY,
    .dtypes = "any (output int64)",
};
