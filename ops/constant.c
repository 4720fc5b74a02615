/* ops/constant.c: ONNX Constant (opsets 1, 9, 11, 12, 13, 19, 21, 23-25).
 *   1: 'value' tensor attribute     11: or 'sparse_value' (not supported)
 *   12: or one of 'value_float' (float scalar), 'value_floats' (float 1-D), 'value_int' (int64
 *       scalar), 'value_ints' (int64 1-D), 'value_string(s)' (not supported: no string tensors)
 * Later versions only add dtypes.
 *
 * How the runtime treats Constant: the importer (loaders/onnx_import.c) decodes every Constant's
 * value into the graph's parameter block, and the output value is an OD_VALUE_CONSTANT with its
 * declared dtype and shape; the 'value' attribute itself is NOT decoded on the node (its od_attr
 * has type TENSOR and no tensors). The executor pre-sets the output's dtype, shape and data from
 * the parameter block and treats it as a known value, so it normally calls neither infer nor
 * forward. For completeness:
 *   infer:   for 'value' leaves ctx->out[0] as the executor pre-set it (returns OD_OK); for the
 *            value_* attributes sets the dtype and shape they imply (the same as the importer's).
 *   forward: for 'value' does nothing (the data already is the parameter); for value_* writes the
 *            attribute's numbers.
 * Spec: https://onnx.ai/onnx/operators/onnx__Constant.html */
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"

enum constant_kind {
  CONSTANT_TENSOR = 0,  /* 'value': in the parameter block */
  CONSTANT_FLOAT,
  CONSTANT_FLOATS,
  CONSTANT_INT,
  CONSTANT_INTS,
};

struct constant_attrs {
  enum constant_kind kind;
  const struct od_attr *attr;   /* value_*: the node's attribute (lives as long as the graph) */
};

static enum od_status constant_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct constant_attrs *a = attrs;
  static const struct {
    const char *name;
    enum od_attr_type type;
    enum constant_kind kind;
  } forms[] = {
      {"value", OD_ATTR_TENSOR, CONSTANT_TENSOR},     {"value_float", OD_ATTR_FLOAT, CONSTANT_FLOAT},
      {"value_floats", OD_ATTR_FLOATS, CONSTANT_FLOATS}, {"value_int", OD_ATTR_INT, CONSTANT_INT},
      {"value_ints", OD_ATTR_INTS, CONSTANT_INTS},
  };
  int found = 0;
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    const struct od_attr *at = od_node_attr(node, forms[i].name);
    if (!at) continue;
    if (at->type != forms[i].type)
      return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute '%s' must be %s, not %s", forms[i].name,
                        od_attr_type_name(forms[i].type), od_attr_type_name(at->type));
    a->kind = forms[i].kind;
    a->attr = at;
    found++;
  }
  for (int i = 0; i < node->n_attrs; i++) {
    const char *nm = node->attrs[i].name;
    if (!strcmp(nm, "sparse_value") || !strcmp(nm, "value_string") || !strcmp(nm, "value_strings"))
      return od_err_set(err, OD_ERR_UNSUPPORTED, "attribute '%s' is not supported", nm);
  }
  if (found != 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "needs exactly one of 'value', 'value_float(s)', 'value_int(s)', has %d",
                      found);
  return OD_OK;
}

static enum od_status constant_infer(struct od_infer_ctx *ctx) {
  const struct constant_attrs *a = ctx->attrs;
  struct od_tensor *Y = &ctx->out[0];
  switch (a->kind) {
    case CONSTANT_TENSOR: return OD_OK; /* pre-set by the executor from the parameter block */
    case CONSTANT_FLOAT: *Y = (struct od_tensor){.dtype = OD_DTYPE_FLOAT, .rank = 0, .data = Y->data}; break;
    case CONSTANT_INT: *Y = (struct od_tensor){.dtype = OD_DTYPE_INT64, .rank = 0, .data = Y->data}; break;
    case CONSTANT_FLOATS:
    case CONSTANT_INTS:
      Y->dtype = a->kind == CONSTANT_FLOATS ? OD_DTYPE_FLOAT : OD_DTYPE_INT64;
      Y->rank = 1;
      Y->dims[0] = (int64_t)a->attr->n;
      break;
  }
  return OD_OK;
}

static enum od_status constant_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct constant_attrs *a = ctx->attrs;
  void *y = ctx->out[0]->data;
  switch (a->kind) {
    case CONSTANT_TENSOR: break; /* the output is the parameter itself */
    case CONSTANT_FLOAT: memcpy(y, &a->attr->f, sizeof(float)); break;
    case CONSTANT_INT: memcpy(y, &a->attr->i, sizeof(int64_t)); break;
    case CONSTANT_FLOATS:
      if (a->attr->n) memcpy(y, a->attr->floats, a->attr->n * sizeof(float));
      break;
    case CONSTANT_INTS:
      if (a->attr->n) memcpy(y, a->attr->ints, a->attr->n * sizeof(int64_t));
      break;
  }
  return OD_OK;
}

const struct od_op_kernels od_kernels_constant = {
    .attrs_size = sizeof(struct constant_attrs),
    .parse = constant_parse,
    .infer = constant_infer,
    .forward = {[OD_DEVICE_CPU] = constant_forward_cpu},
    .flags = OD_OP_FOLDABLE,
    .dtypes = "all numeric, bool",
};
