/* ops/reshape.c: the "view" ops, whose output holds the input's bytes in the same order under
 * another shape: ONNX Reshape, Flatten, Squeeze and Unsqueeze. Forward is one memcpy (none when
 * the executor gives the output the input's memory); backward (float, double) is dX += dY.
 * dtypes: every fixed-size dtype the runtime holds (float, double, float16, bfloat16,
 * int8..int64, uint8..uint64, bool).
 *
 * Versions and what changed (the kernels read node->opset):
 *   Reshape  1: shape attribute          5: shape is input 1 (int64)    14: allowzero attribute
 *            (0 in shape copies the input's dim at that index unless allowzero=1; one -1 is inferred)
 *   Flatten  1: axis in [0, r]           11: negative axis allowed, [-r, r]
 *   Squeeze  1: axes attribute           13: axes is optional input 1; no axes = every dim of 1
 *   Unsqueeze 1: axes attribute          13: axes is input 1; axes index the OUTPUT's dims
 * Later versions (19, 21, 23-25) only add dtypes.
 * Spec: https://onnx.ai/onnx/operators/onnx__Reshape.html, onnx__Flatten.html, onnx__Squeeze.html,
 * onnx__Unsqueeze.html */
#include <stdbool.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "ops/transpose.h"

/* Reads a 1-D (or scalar) int64/int32 shape-like input into out; err names it. */
static enum od_status read_ints_input(const struct od_tensor *t, const char *what, int64_t *out, int max,
                                      int *n, struct od_err *err) {
  if (t->dtype != OD_DTYPE_INT64 && t->dtype != OD_DTYPE_INT32)
    return od_err_set(err, OD_ERR_SHAPE, "input '%s' must be int64, not %s", what, od_dtype_name(t->dtype));
  if (t->rank > 1) {
    char s[128];
    return od_err_set(err, OD_ERR_SHAPE, "input '%s' must be 1-D, got shape %s", what,
                      od_shape_str(t->rank, t->dims, s, sizeof s));
  }
  int64_t cnt = od_tensor_numel(t);
  if (cnt > max)
    return od_err_set(err, OD_ERR_SHAPE, "input '%s' has %lld values; at most %d are supported", what,
                      (long long)cnt, max);
  for (int64_t i = 0; i < cnt; i++) out[i] = od_tensor_get_i64(t, i);
  *n = (int)cnt;
  return OD_OK;
}

/* Shared forward: the output is the input's bytes. */
static enum od_status view_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  size_t nb = od_tensor_nbytes(X);
  if (nb != od_tensor_nbytes(Y))
    return od_err_set(ctx->err, OD_ERR_INTERNAL, "output has %zu bytes, input %zu", od_tensor_nbytes(Y), nb);
  if (nb && Y->data != X->data) memcpy(Y->data, X->data, nb);
  return OD_OK;
}

/* Shared backward: the map is the identity on the bytes, so dX += dY element by element. */
static enum od_status view_backward_cpu(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY) return OD_OK;
  int64_t n = od_tensor_numel(dX);
  if (n != od_tensor_numel(dY))
    return od_err_set(ctx->err, OD_ERR_INTERNAL, "gradient has %lld elements, input %lld",
                      (long long)od_tensor_numel(dY), (long long)n);
  return od_strided_add(ctx->pool, dX->dtype, 1, &n, dX->data, NULL, dY->data, NULL, ctx->node->op_type, ctx->err);
}

static int64_t prod(const int64_t *d, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; i++) p *= d[i];
  return p;
}

/* ---- Reshape ----------------------------------------------------------------------------------- */

struct reshape_attrs {
  bool allowzero;
  int n_shape;                  /* opset < 5: the shape attribute */
  int64_t shape[OD_MAX_DIMS];
};

static enum od_status reshape_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct reshape_attrs *a = attrs;
  int64_t az = 0;
  OD_TRY(od_attr_get_int(node, "allowzero", 0, &az, err));
  if (az != 0 && az != 1) return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'allowzero' must be 0 or 1, not %lld", (long long)az);
  a->allowzero = az == 1;
  if (node->opset < 5) {
    size_t n = 0;
    bool present = false;
    OD_TRY(od_attr_get_ints(node, "shape", a->shape, OD_MAX_DIMS, &n, &present, err));
    if (!present) return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'shape' is required before opset 5");
    a->n_shape = (int)n;
  }
  return OD_OK;
}

static enum od_status reshape_infer(struct od_infer_ctx *ctx) {
  const struct reshape_attrs *a = ctx->attrs;
  const struct od_tensor *X = &ctx->in[0];
  int64_t shape[OD_MAX_DIMS];
  int n;
  if (ctx->node->opset < 5) {
    n = a->n_shape;
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)n);
  } else {
    if (ctx->n_in < 2 || !ctx->in[1].dtype)
      return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "input 'shape' is required");
    if (!ctx->in[1].data) {
      ctx->needs_values = true;
      return OD_OK;
    }
    OD_TRY(read_ints_input(&ctx->in[1], "shape", shape, OD_MAX_DIMS, &n, ctx->err));
  }
  char sx[128], ss[128];
  int infer_at = -1;
  int64_t known = 1;
  bool has_zero = false;
  for (int i = 0; i < n; i++) {
    if (shape[i] == -1) {
      if (infer_at >= 0)
        return od_err_set(ctx->err, OD_ERR_SHAPE, "shape %s has more than one -1",
                          od_shape_str(n, shape, ss, sizeof ss));
      infer_at = i;
      continue;
    }
    if (shape[i] < -1)
      return od_err_set(ctx->err, OD_ERR_SHAPE, "shape %s has a negative dim", od_shape_str(n, shape, ss, sizeof ss));
    if (shape[i] == 0 && !a->allowzero) {
      if (i >= X->rank)
        return od_err_set(ctx->err, OD_ERR_SHAPE, "shape %s copies dim %d (0) but the input %s has rank %d",
                          od_shape_str(n, shape, ss, sizeof ss), i, od_shape_str(X->rank, X->dims, sx, sizeof sx),
                          X->rank);
      shape[i] = X->dims[i];
    } else if (shape[i] == 0) {
      has_zero = true;
    }
    known *= shape[i];
  }
  if (has_zero && infer_at >= 0)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "shape %s has both 0 and -1 with allowzero=1",
                      od_shape_str(n, shape, ss, sizeof ss));
  int64_t numel = od_tensor_numel(X);
  if (infer_at >= 0) {
    if (known == 0 || numel % known)
      return od_err_set(ctx->err, OD_ERR_SHAPE, "cannot reshape %s into %s", od_shape_str(X->rank, X->dims, sx, sizeof sx),
                        od_shape_str(n, shape, ss, sizeof ss));
    shape[infer_at] = numel / known;
  } else if (known != numel) {
    return od_err_set(ctx->err, OD_ERR_SHAPE, "cannot reshape %s (%lld elements) into %s",
                      od_shape_str(X->rank, X->dims, sx, sizeof sx), (long long)numel,
                      od_shape_str(n, shape, ss, sizeof ss));
  }
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = n;
  memcpy(Y->dims, shape, sizeof(int64_t) * (size_t)n);
  return OD_OK;
}

const struct od_op_kernels od_kernels_reshape = {
    .bwd_reads = od_bwd_reads_shape_inputs,
    .attrs_size = sizeof(struct reshape_attrs),
    .parse = reshape_parse,
    .infer = reshape_infer,
    .forward = {[OD_DEVICE_CPU] = view_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_view_fwd)},
    .backward = {[OD_DEVICE_CPU] = view_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_view_bwd)},
    .no_grad_inputs = 1u << 1,
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};

/* ---- Flatten ----------------------------------------------------------------------------------- */

struct flatten_attrs {
  int64_t axis;
};

static enum od_status flatten_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct flatten_attrs *a = attrs;
  return od_attr_get_int(node, "axis", 1, &a->axis, err);
}

static enum od_status flatten_infer(struct od_infer_ctx *ctx) {
  const struct flatten_attrs *a = ctx->attrs;
  const struct od_tensor *X = &ctx->in[0];
  int r = X->rank;
  int64_t axis = a->axis;
  if (axis < -r || axis > r || (axis < 0 && ctx->node->opset < 11))
    return od_err_set(ctx->err, OD_ERR_SHAPE, "attribute 'axis' %lld is out of range for rank %d", (long long)axis, r);
  if (axis < 0) axis += r;
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = 2;
  Y->dims[0] = prod(X->dims, 0, (int)axis);
  Y->dims[1] = prod(X->dims, (int)axis, r);
  return OD_OK;
}

const struct od_op_kernels od_kernels_flatten = {
    .bwd_reads = od_bwd_reads_shape_inputs,
    .attrs_size = sizeof(struct flatten_attrs),
    .parse = flatten_parse,
    .infer = flatten_infer,
    .forward = {[OD_DEVICE_CPU] = view_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_view_fwd)},
    .backward = {[OD_DEVICE_CPU] = view_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_view_bwd)},
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};

/* ---- Squeeze and Unsqueeze --------------------------------------------------------------------- */

struct squeeze_attrs {
  bool has_axes;                /* opset < 13: the axes attribute */
  int n_axes;
  int64_t axes[OD_MAX_DIMS];
};

static enum od_status squeeze_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct squeeze_attrs *a = attrs;
  if (node->opset >= 13) return OD_OK;
  size_t n = 0;
  OD_TRY(od_attr_get_ints(node, "axes", a->axes, OD_MAX_DIMS, &n, &a->has_axes, err));
  a->n_axes = (int)n;
  if (!strcmp(node->op_type, "Unsqueeze") && !a->has_axes)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'axes' is required before opset 13");
  return OD_OK;
}

/* The axes (attribute before 13, input 1 from 13), normalised against rank r, as a bit mask.
 * *have is false when none (or an empty list) are given (Squeeze: every dim of 1). Needs values:
 * *pending. */
static enum od_status squeeze_axes(struct od_infer_ctx *ctx, int r, unsigned *mask, bool *have, bool *pending) {
  const struct squeeze_attrs *a = ctx->attrs;
  int64_t axes[OD_MAX_DIMS];
  int n = 0;
  *mask = 0;
  *have = false;
  *pending = false;
  if (ctx->node->opset < 13) {
    *have = a->has_axes;
    n = a->n_axes;
    memcpy(axes, a->axes, sizeof(int64_t) * (size_t)n);
  } else if (ctx->n_in >= 2 && ctx->in[1].dtype) {
    if (!ctx->in[1].data) {
      *pending = true;
      return OD_OK;
    }
    *have = true;
    OD_TRY(read_ints_input(&ctx->in[1], "axes", axes, OD_MAX_DIMS, &n, ctx->err));
  }
  if (n == 0) *have = false; /* empty axes: as if absent (onnxruntime does the same) */
  for (int i = 0; i < n; i++) {
    int ax;
    OD_TRY(od_axis_normalize(axes[i], r, "axes value", &ax, ctx->err));
    if (*mask & (1u << ax))
      return od_err_set(ctx->err, OD_ERR_SHAPE, "axes repeat axis %d", ax);
    *mask |= 1u << ax;
  }
  return OD_OK;
}

static enum od_status squeeze_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *X = &ctx->in[0];
  unsigned mask;
  bool have, pending;
  OD_TRY(squeeze_axes(ctx, X->rank, &mask, &have, &pending));
  if (pending) {
    ctx->needs_values = true;
    return OD_OK;
  }
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = 0;
  for (int i = 0; i < X->rank; i++) {
    bool drop = have ? (mask >> i) & 1u : X->dims[i] == 1;
    if (drop && X->dims[i] != 1) {
      char s[128];
      return od_err_set(ctx->err, OD_ERR_SHAPE, "cannot squeeze axis %d of shape %s (size %lld, not 1)", i,
                        od_shape_str(X->rank, X->dims, s, sizeof s), (long long)X->dims[i]);
    }
    if (!drop) Y->dims[Y->rank++] = X->dims[i];
  }
  return OD_OK;
}

static enum od_status unsqueeze_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *X = &ctx->in[0];
  /* the number of axes fixes the output rank, which the axes are normalised against */
  int n_axes;
  if (ctx->node->opset < 13) {
    n_axes = ((const struct squeeze_attrs *)ctx->attrs)->n_axes;
  } else {
    if (ctx->n_in < 2 || !ctx->in[1].dtype)
      return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "input 'axes' is required");
    n_axes = (int)od_tensor_numel(&ctx->in[1]);
  }
  int r = X->rank + n_axes;
  if (r > OD_MAX_DIMS)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, OD_MAX_DIMS);
  unsigned mask;
  bool have, pending;
  OD_TRY(squeeze_axes(ctx, r, &mask, &have, &pending));
  if (pending) {
    ctx->needs_values = true;
    return OD_OK;
  }
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = r;
  for (int i = 0, k = 0; i < r; i++) Y->dims[i] = (mask >> i) & 1u ? 1 : X->dims[k++];
  return OD_OK;
}

const struct od_op_kernels od_kernels_squeeze = {
    .bwd_reads = od_bwd_reads_shape_inputs,
    .attrs_size = sizeof(struct squeeze_attrs),
    .parse = squeeze_parse,
    .infer = squeeze_infer,
    .forward = {[OD_DEVICE_CPU] = view_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_view_fwd)},
    .backward = {[OD_DEVICE_CPU] = view_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_view_bwd)},
    .no_grad_inputs = 1u << 1,
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};

const struct od_op_kernels od_kernels_unsqueeze = {
    .bwd_reads = od_bwd_reads_shape_inputs,
    .attrs_size = sizeof(struct squeeze_attrs),
    .parse = squeeze_parse,
    .infer = unsqueeze_infer,
    .forward = {[OD_DEVICE_CPU] = view_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_view_fwd)},
    .backward = {[OD_DEVICE_CPU] = view_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_view_bwd)},
    .no_grad_inputs = 1u << 1,
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};
