/* ops/constant_of_shape.c: ONNX ConstantOfShape (opsets 9, 20, 21, 23-25: later versions only add
 * dtypes). Output of the shape given by input 0 (int64 1-D; empty = scalar; dims >= 0), every
 * element equal to the one-element 'value' tensor attribute, whose dtype is the output's
 * (default: float 0). dtypes: every fixed-size dtype the runtime holds.
 * Spec: https://onnx.ai/onnx/operators/onnx__ConstantOfShape.html */
#include <stdbool.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"

struct constant_of_shape_attrs {
  int dtype;
  size_t es;
  unsigned char value[8]; /* the element's bytes */
};

static enum od_status constant_of_shape_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct constant_of_shape_attrs *a = attrs;
  a->dtype = OD_DTYPE_FLOAT;
  a->es = sizeof(float);
  const struct od_attr *v = od_node_attr(node, "value");
  if (!v) return OD_OK; /* float 0: value[] is zeroed */
  if (v->type != OD_ATTR_TENSOR || v->n != 1 || !v->tensors)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'value' must be a TENSOR, not %s", od_attr_type_name(v->type));
  const struct od_host_tensor *t = &v->tensors[0];
  size_t es = od_dtype_size(t->dtype);
  if (!od_dtype_is_supported(t->dtype) || es == 0 || es > sizeof a->value)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "attribute 'value' has dtype %s", od_dtype_name(t->dtype));
  if (t->nelem != 1 || t->nbytes != es || !t->data)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'value' must hold one element, has %zu", t->nelem);
  a->dtype = t->dtype;
  a->es = es;
  memcpy(a->value, t->data, es);
  return OD_OK;
}

static enum od_status constant_of_shape_infer(struct od_infer_ctx *ctx) {
  const struct constant_of_shape_attrs *a = ctx->attrs;
  const struct od_tensor *S = &ctx->in[0];
  if (S->dtype != OD_DTYPE_INT64)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "input 'input' must be int64, not %s", od_dtype_name(S->dtype));
  int64_t n = od_tensor_numel(S);
  if (S->rank != 1 || n > OD_MAX_DIMS) {
    char s[128];
    return od_err_set(ctx->err, OD_ERR_SHAPE, "input 'input' must be 1-D with at most %d values, got shape %s",
                      OD_MAX_DIMS, od_shape_str(S->rank, S->dims, s, sizeof s));
  }
  if (!S->data) {
    ctx->needs_values = true;
    return OD_OK;
  }
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = a->dtype;
  Y->rank = (int)n;
  for (int64_t i = 0; i < n; i++) {
    Y->dims[i] = ((const int64_t *)S->data)[i];
    if (Y->dims[i] < 0)
      return od_err_set(ctx->err, OD_ERR_SHAPE, "shape value %lld at %lld is negative", (long long)Y->dims[i], (long long)i);
  }
  return OD_OK;
}

static enum od_status constant_of_shape_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct constant_of_shape_attrs *a = ctx->attrs;
  struct od_tensor *Y = ctx->out[0];
  size_t nb = (size_t)od_tensor_numel(Y) * a->es;
  if (!nb) return OD_OK;
  bool zero = true;
  for (size_t i = 0; i < a->es; i++) zero = zero && a->value[i] == 0;
  if (zero) {
    memset(Y->data, 0, nb);
    return OD_OK;
  }
  /* one element, then doubling copies of what is written */
  char *y = Y->data;
  memcpy(y, a->value, a->es);
  for (size_t done = a->es; done < nb;) {
    size_t n = done < nb - done ? done : nb - done;
    memcpy(y + done, y, n);
    done += n;
  }
  return OD_OK;
}

const struct od_op_kernels od_kernels_constant_of_shape = {
    .attrs_size = sizeof(struct constant_of_shape_attrs),
    .parse = constant_of_shape_parse,
    .infer = constant_of_shape_infer,
    .forward = {[OD_DEVICE_CPU] = constant_of_shape_forward_cpu},
    .no_grad_inputs = 1u << 0,
    .flags = OD_OP_FOLDABLE,
    .dtypes = "all numeric, bool",
};
