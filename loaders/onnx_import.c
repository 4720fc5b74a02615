/* loaders/onnx_import.c: ONNX ModelProto -> struct od_model (see onnx_import.h).
 *
 * Order of work: wire-format check (pb_diagnose), unpack (zeroing allocator), opsets, values
 * (graph inputs, initializers, node outputs: each name produced once), node inputs resolved
 * (dangling names rejected), declared types from inputs/outputs/value_info, attributes, the
 * parameter block (initializers and Constant values decoded into one 64-byte aligned block), and
 * a topological order (cycles rejected). Every failure frees what was built so far. */
#include "loaders/onnx_import.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loaders/onnx_tensor.h"
#include "loaders/pb_alloc.h"
#include "loaders/pb_diagnose.h"

#define PARAM_ALIGN 64

/* Import state: the graph under construction plus the file name for messages. */
struct builder {
  struct od_graph *g;
  const Onnx__GraphProto *gp;
  const char *file;
  const char *dir;
  struct od_err *err;
};

static char *dup_str(const char *s) {
  if (!s) s = "";
  size_t n = strlen(s) + 1;
  char *r = malloc(n);
  if (r) memcpy(r, s, n);
  return r;
}

static enum od_status oom(struct builder *b) {
  return od_err_set(b->err, OD_ERR_OOM, "%s: out of memory while importing", b->file);
}

/* ---- value table ------------------------------------------------------------------------ */

static enum od_status add_value(struct builder *b, const char *name, enum od_value_kind kind, int *id) {
  if (od_graph_add_value(b->g, name, kind, id) != OD_OK) return oom(b);
  return OD_OK;
}

/* ---- types ------------------------------------------------------------------------------- */

/* Reads a declared TypeProto into v. what names the declaration for messages. */
static enum od_status read_type(struct builder *b, const Onnx__TypeProto *tp, struct od_value *v,
                                const char *what) {
  if (!tp) return OD_OK;
  switch (tp->value_case) {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE: break;
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: v->type_kind = OD_TYPE_SEQUENCE; return OD_OK;
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: v->type_kind = OD_TYPE_MAP; return OD_OK;
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: v->type_kind = OD_TYPE_OPTIONAL; return OD_OK;
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: v->type_kind = OD_TYPE_SPARSE_TENSOR; return OD_OK;
    default:
      /* an empty TypeProto, or a variant this schema does not know (kept as unknown fields) */
      if (tp->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET) v->type_kind = OD_TYPE_OTHER;
      return OD_OK;
  }
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  v->type_kind = OD_TYPE_TENSOR;
  if (tt->has_elem_type) v->dtype = tt->elem_type;
  if (!tt->shape) return OD_OK; /* rank unknown */
  const Onnx__TensorShapeProto *sp = tt->shape;
  if (sp->n_dim > OD_MAX_DIMS)
    return od_err_set(b->err, OD_ERR_UNSUPPORTED, "%s: %s '%s' has rank %zu; at most %d dims are supported",
                      b->file, what, v->name, sp->n_dim, OD_MAX_DIMS);
  v->rank = (int)sp->n_dim;
  for (size_t d = 0; d < sp->n_dim; d++) {
    const Onnx__TensorShapeProto__Dimension *dim = sp->dim[d];
    v->dims[d] = OD_DIM_UNKNOWN;
    free(v->dim_params[d]);
    v->dim_params[d] = NULL;
    if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
      if (dim->dim_value < 0)
        return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: %s '%s' dim %zu is negative (%lld)", b->file,
                          what, v->name, d, (long long)dim->dim_value);
      v->dims[d] = dim->dim_value;
    } else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param) {
      v->dim_params[d] = dup_str(dim->dim_param);
      if (!v->dim_params[d]) return oom(b);
    }
  }
  return OD_OK;
}

/* ---- attributes -------------------------------------------------------------------------- */

/* Old files may leave AttributeProto.type unset: infer it from the field that holds data. */
static enum od_attr_type attr_type_of(const Onnx__AttributeProto *a) {
  if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return (enum od_attr_type)a->type;
  if (a->n_floats) return OD_ATTR_FLOATS;
  if (a->n_ints) return OD_ATTR_INTS;
  if (a->n_strings) return OD_ATTR_STRINGS;
  if (a->n_tensors) return OD_ATTR_TENSORS;
  if (a->n_graphs) return OD_ATTR_GRAPHS;
  if (a->t) return OD_ATTR_TENSOR;
  if (a->g) return OD_ATTR_GRAPH;
  if (a->has_s) return OD_ATTR_STRING;
  if (a->has_i) return OD_ATTR_INT;
  if (a->has_f) return OD_ATTR_FLOAT;
  return OD_ATTR_UNDEFINED;
}

static enum od_status read_attr(struct builder *b, const Onnx__AttributeProto *ap, struct od_node *n,
                                struct od_attr *a) {
  char nd[256], where[512];
  od_node_describe(n, nd, sizeof nd);
  if (!ap->name || !ap->name[0])
    return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: %s has an attribute without a name", b->file, nd);
  a->name = dup_str(ap->name);
  if (!a->name) return oom(b);
  a->type = attr_type_of(ap);
  snprintf(where, sizeof where, "%s: %s attribute '%s'", b->file, nd, ap->name);
  bool is_constant_value = !strcmp(n->op_type, "Constant") && !strcmp(ap->name, "value");
  switch (a->type) {
    case OD_ATTR_FLOAT: a->f = ap->f; break;
    case OD_ATTR_INT: a->i = ap->i; break;
    case OD_ATTR_STRING:
      a->s = malloc(ap->s.len + 1);
      if (!a->s) return oom(b);
      if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
      a->s[ap->s.len] = '\0';
      a->s_len = ap->s.len;
      break;
    case OD_ATTR_FLOATS:
      a->n = ap->n_floats;
      if (a->n) {
        if (!(a->floats = malloc(a->n * sizeof *a->floats))) return oom(b);
        memcpy(a->floats, ap->floats, a->n * sizeof *a->floats);
      }
      break;
    case OD_ATTR_INTS:
      a->n = ap->n_ints;
      if (a->n) {
        if (!(a->ints = malloc(a->n * sizeof *a->ints))) return oom(b);
        memcpy(a->ints, ap->ints, a->n * sizeof *a->ints);
      }
      break;
    case OD_ATTR_STRINGS:
      a->n = ap->n_strings;
      if (a->n && !(a->strings = calloc(a->n, sizeof *a->strings))) return oom(b);
      for (size_t i = 0; i < a->n; i++) {
        a->strings[i] = malloc(ap->strings[i].len + 1);
        if (!a->strings[i]) return oom(b);
        if (ap->strings[i].len) memcpy(a->strings[i], ap->strings[i].data, ap->strings[i].len);
        a->strings[i][ap->strings[i].len] = '\0';
      }
      break;
    case OD_ATTR_TENSOR:
      if (!ap->t) return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: type TENSOR but no tensor", where);
      /* A Constant's value lives in the parameter block (its output value), not in the attribute. */
      if (is_constant_value) break;
      a->n = 1;
      if (!(a->tensors = calloc(1, sizeof *a->tensors))) return oom(b);
      OD_TRY(od_tensor_proto_to_host(ap->t, b->dir, where, &a->tensors[0], b->err));
      break;
    case OD_ATTR_TENSORS:
      if (ap->n_tensors && !(a->tensors = calloc(ap->n_tensors, sizeof *a->tensors))) return oom(b);
      for (size_t i = 0; i < ap->n_tensors; i++) {
        char w[600];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        OD_TRY(od_tensor_proto_to_host(ap->tensors[i], b->dir, w, &a->tensors[i], b->err));
        a->n = i + 1;
      }
      break;
    case OD_ATTR_GRAPH:
    case OD_ATTR_GRAPHS:
      n->has_subgraph = true; /* If/Loop/Scan bodies: not imported; the op is reported unsupported */
      break;
    case OD_ATTR_UNDEFINED:
      return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: attribute has no type and no value", where);
    default:
      break; /* sparse tensors, type protos, newer kinds: kept in the proto, unused by our ops */
  }
  return OD_OK;
}

/* ---- nodes ------------------------------------------------------------------------------- */

static enum od_status describe_producer(struct builder *b, int id, char *buf, size_t size) {
  const struct od_value *v = &b->g->values[id];
  if (v->producer >= 0) od_node_describe(&b->g->nodes[v->producer], buf, size);
  else if (v->kind == OD_VALUE_INITIALIZER) snprintf(buf, size, "an initializer");
  else snprintf(buf, size, "a graph input");
  return OD_OK;
}

/* Pass 1: every node's outputs become values, each produced exactly once. */
static enum od_status create_nodes(struct builder *b) {
  const Onnx__GraphProto *gp = b->gp;
  struct od_graph *g = b->g;
  if (gp->n_node && !(g->nodes = calloc(gp->n_node, sizeof *g->nodes))) return oom(b);
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    struct od_node *n = &g->nodes[i];
    g->n_nodes = (int)i + 1;
    n->proto_index = (int)i;
    n->name = dup_str(np->name);
    n->op_type = dup_str(np->op_type);
    n->domain = dup_str(np->domain && strcmp(np->domain, "ai.onnx") ? np->domain : "");
    if (!n->name || !n->op_type || !n->domain) return oom(b);
    char nd[256];
    if (!np->op_type || !np->op_type[0])
      return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: %s has no op_type", b->file,
                        od_node_describe(n, nd, sizeof nd));
    n->opset = od_graph_opset(g, n->domain);
    if (n->opset == 0)
      return od_err_set(b->err, OD_ERR_INVALID_MODEL,
                        "%s: node '%s' (%s:%s) uses domain '%s', which opset_import does not list", b->file,
                        n->name[0] ? n->name : "(unnamed)", n->domain, n->op_type, n->domain);
    if (np->n_output && !(n->outputs = malloc(np->n_output * sizeof *n->outputs))) return oom(b);
    if (np->n_input && !(n->inputs = malloc(np->n_input * sizeof *n->inputs))) return oom(b);
    n->n_outputs = (int)np->n_output;
    n->n_inputs = (int)np->n_input;
    for (size_t k = 0; k < np->n_input; k++) n->inputs[k] = -1;
    for (size_t k = 0; k < np->n_output; k++) {
      const char *name = np->output[k];
      n->outputs[k] = -1;
      if (!name || !name[0]) continue; /* omitted optional output */
      int prev = od_graph_find_value(g, name);
      if (prev >= 0) {
        char other[256];
        describe_producer(b, prev, other, sizeof other);
        return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: %s output %zu '%s' is already produced by %s",
                          b->file, od_node_describe(n, nd, sizeof nd), k, name, other);
      }
      int id;
      OD_TRY(add_value(b, name, OD_VALUE_ACTIVATION, &id));
      g->values[id].producer = (int)i;
      n->outputs[k] = id;
    }
  }
  return OD_OK;
}

/* Pass 2: inputs resolved by name (after pass 1, so file order need not be topological). */
static enum od_status resolve_inputs(struct builder *b) {
  struct od_graph *g = b->g;
  for (int i = 0; i < g->n_nodes; i++) {
    const Onnx__NodeProto *np = b->gp->node[i];
    struct od_node *n = &g->nodes[i];
    for (int k = 0; k < n->n_inputs; k++) {
      const char *name = np->input[k];
      if (!name || !name[0]) continue; /* omitted optional input */
      int id = od_graph_find_value(g, name);
      if (id < 0) {
        char nd[256];
        return od_err_set(b->err, OD_ERR_INVALID_MODEL,
                          "%s: %s input %d '%s' is not a graph input, an initializer or any node's output",
                          b->file, od_node_describe(n, nd, sizeof nd), k, name);
      }
      n->inputs[k] = id;
      g->values[id].n_consumers++;
    }
    for (size_t a = 0; a < np->n_attribute; a++) {
      if (!np->attribute[a]) continue;
      if (!n->attrs && !(n->attrs = calloc(np->n_attribute, sizeof *n->attrs))) return oom(b);
      n->n_attrs = (int)a + 1;
      OD_TRY(read_attr(b, np->attribute[a], n, &n->attrs[a]));
    }
  }
  return OD_OK;
}

/* ---- parameters ---------------------------------------------------------------------------- */

/* The tensor a Constant node carries in its value attribute, or NULL (value_float etc.). */
static const Onnx__AttributeProto *constant_attr(const Onnx__NodeProto *np) {
  for (size_t a = 0; a < np->n_attribute; a++) {
    const Onnx__AttributeProto *ap = np->attribute[a];
    if (ap && ap->name && !strncmp(ap->name, "value", 5)) return ap;
  }
  return NULL;
}

/* Shape and dtype of a Constant's value: the tensor of 'value', or the scalar / 1-D forms
 * value_float, value_floats, value_int, value_ints (opset 12). */
static enum od_status constant_info(struct builder *b, struct od_node *n, const Onnx__AttributeProto *ap,
                                    struct od_host_tensor *info, const char *where) {
  memset(info, 0, sizeof *info);
  const char *nm = ap->name;
  if (!strcmp(nm, "value")) {
    if (!ap->t) return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: attribute 'value' holds no tensor", where);
    return od_tensor_proto_info(ap->t, where, info, b->err);
  }
  if (!strcmp(nm, "value_float")) *info = (struct od_host_tensor){.dtype = OD_DTYPE_FLOAT, .nelem = 1};
  else if (!strcmp(nm, "value_int")) *info = (struct od_host_tensor){.dtype = OD_DTYPE_INT64, .nelem = 1};
  else if (!strcmp(nm, "value_floats"))
    *info = (struct od_host_tensor){.dtype = OD_DTYPE_FLOAT, .rank = 1, .dims = {(int64_t)ap->n_floats}, .nelem = ap->n_floats};
  else if (!strcmp(nm, "value_ints"))
    *info = (struct od_host_tensor){.dtype = OD_DTYPE_INT64, .rank = 1, .dims = {(int64_t)ap->n_ints}, .nelem = ap->n_ints};
  else if (!strcmp(nm, "value_string") || !strcmp(nm, "value_strings"))
    return od_err_set(b->err, OD_ERR_UNSUPPORTED, "%s: string constants are not supported", where);
  else
    return od_err_set(b->err, OD_ERR_UNSUPPORTED, "%s: Constant attribute '%s' is not supported", where, nm);
  info->nbytes = info->nelem * od_dtype_size(info->dtype);
  return OD_OK;
}

static void set_value_shape(struct od_value *v, const struct od_host_tensor *info) {
  v->type_kind = OD_TYPE_TENSOR;
  v->dtype = info->dtype;
  v->rank = info->rank;
  for (int d = 0; d < info->rank; d++) v->dims[d] = info->dims[d];
  v->nbytes = info->nbytes;
}

static size_t align_up(size_t x) { return (x + PARAM_ALIGN - 1) & ~(size_t)(PARAM_ALIGN - 1); }

/* Initializers and Constant values: shapes first (to size the block), then the data. */
static enum od_status load_params(struct builder *b) {
  struct od_graph *g = b->g;
  const Onnx__GraphProto *gp = b->gp;
  size_t total = 0;
  char where[600];
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const Onnx__TensorProto *t = gp->initializer[i];
    const char *name = t->name ? t->name : "";
    snprintf(where, sizeof where, "%s: initializer '%s'", b->file, name);
    if (!name[0]) return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: initializer %zu has no name", b->file, i);
    int id = od_graph_find_value(g, name);
    if (id >= 0 && g->values[id].kind != OD_VALUE_INPUT) {
      char other[256];
      describe_producer(b, id, other, sizeof other);
      return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: name is already used by %s", where, other);
    }
    if (id < 0) {
      OD_TRY(add_value(b, name, OD_VALUE_INITIALIZER, &id));
    } else { /* old IR: initializers are listed as graph inputs too (defaults for them) */
      g->values[id].kind = OD_VALUE_INITIALIZER;
    }
    struct od_host_tensor info;
    OD_TRY(od_tensor_proto_info(t, where, &info, b->err));
    /* the data is checked (dst NULL) before the block is allocated: shapes alone would let a tiny
     * file claim gigabytes, and their sum could wrap */
    OD_TRY(od_tensor_proto_read(t, &info, b->dir, NULL, where, b->err));
    if (info.nbytes > SIZE_MAX / 2 - total)
      return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: parameters exceed %zu bytes", where, SIZE_MAX / 2);
    struct od_value *v = &g->values[id];
    set_value_shape(v, &info);
    v->source_index = (int)i;
    v->data_offset = total;
    total = align_up(total + info.nbytes);
  }
  if (gp->n_sparse_initializer)
    return od_err_set(b->err, OD_ERR_UNSUPPORTED, "%s: sparse initializers are not supported ('%s')", b->file,
                      gp->sparse_initializer[0]->values && gp->sparse_initializer[0]->values->name
                          ? gp->sparse_initializer[0]->values->name : "");
  for (int i = 0; i < g->n_nodes; i++) {
    struct od_node *n = &g->nodes[i];
    if (strcmp(n->op_type, "Constant") || n->domain[0] || n->n_outputs < 1 || n->outputs[0] < 0) continue;
    const Onnx__AttributeProto *ap = constant_attr(gp->node[n->proto_index]);
    char nd[256];
    od_node_describe(n, nd, sizeof nd);
    if (!ap) return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: %s has no value attribute", b->file, nd);
    snprintf(where, sizeof where, "%s: %s attribute '%s'", b->file, nd, ap->name);
    struct od_host_tensor info;
    OD_TRY(constant_info(b, n, ap, &info, where));
    if (!strcmp(ap->name, "value")) OD_TRY(od_tensor_proto_read(ap->t, &info, b->dir, NULL, where, b->err));
    if (info.nbytes > SIZE_MAX / 2 - total)
      return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: parameters exceed %zu bytes", where, SIZE_MAX / 2);
    struct od_value *v = &g->values[n->outputs[0]];
    set_value_shape(v, &info);
    v->kind = OD_VALUE_CONSTANT;
    v->source_index = i;
    v->data_offset = total;
    total = align_up(total + info.nbytes);
  }
  /* at least one byte, so that param_data + data_offset is a valid pointer even when every value
   * is empty (NULL + 0 is undefined behaviour in C) */
  if (!(g->param_data = calloc(1, total ? total : 1)))
    return od_err_set(b->err, OD_ERR_OOM, "%s: cannot allocate %zu bytes for parameters", b->file, total);
  g->param_bytes = total;
  for (int id = 0; id < g->n_values; id++) {
    struct od_value *v = &g->values[id];
    if (v->kind == OD_VALUE_INITIALIZER) {
      const Onnx__TensorProto *t = gp->initializer[v->source_index];
      snprintf(where, sizeof where, "%s: initializer '%s'", b->file, v->name);
      struct od_host_tensor info;
      OD_TRY(od_tensor_proto_info(t, where, &info, b->err));
      OD_TRY(od_tensor_proto_read(t, &info, b->dir, g->param_data + v->data_offset, where, b->err));
    } else if (v->kind == OD_VALUE_CONSTANT) {
      struct od_node *n = &g->nodes[v->source_index];
      const Onnx__AttributeProto *ap = constant_attr(gp->node[n->proto_index]);
      char nd[256];
      snprintf(where, sizeof where, "%s: %s attribute '%s'", b->file, od_node_describe(n, nd, sizeof nd), ap->name);
      void *dst = g->param_data + v->data_offset;
      if (!strcmp(ap->name, "value")) {
        struct od_host_tensor info;
        OD_TRY(od_tensor_proto_info(ap->t, where, &info, b->err));
        OD_TRY(od_tensor_proto_read(ap->t, &info, b->dir, dst, where, b->err));
      } else if (!strcmp(ap->name, "value_float")) {
        memcpy(dst, &ap->f, sizeof(float));
      } else if (!strcmp(ap->name, "value_int")) {
        memcpy(dst, &ap->i, sizeof(int64_t));
      } else if (!strcmp(ap->name, "value_floats") && ap->n_floats) {
        memcpy(dst, ap->floats, ap->n_floats * sizeof(float));
      } else if (!strcmp(ap->name, "value_ints") && ap->n_ints) {
        memcpy(dst, ap->ints, ap->n_ints * sizeof(int64_t));
      }
    }
  }
  return OD_OK;
}

/* ---- graph inputs and outputs ---------------------------------------------------------------- */

static enum od_status load_inputs(struct builder *b) {
  struct od_graph *g = b->g;
  const Onnx__GraphProto *gp = b->gp;
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    if (!vi->name || !vi->name[0])
      return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: graph input %zu has no name", b->file, i);
    if (od_graph_find_value(g, vi->name) >= 0)
      return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: graph input '%s' is listed twice", b->file, vi->name);
    int id;
    OD_TRY(add_value(b, vi->name, OD_VALUE_INPUT, &id));
    g->values[id].is_graph_input = true;
    OD_TRY(read_type(b, vi->type, &g->values[id], "graph input"));
  }
  return OD_OK;
}

/* After initializers: the real inputs are the graph inputs that no initializer fills. */
static enum od_status collect_inputs(struct builder *b) {
  struct od_graph *g = b->g;
  const Onnx__GraphProto *gp = b->gp;
  if (gp->n_input && !(g->inputs = malloc(gp->n_input * sizeof *g->inputs))) return oom(b);
  for (size_t i = 0; i < gp->n_input; i++) {
    int id = od_graph_find_value(g, gp->input[i]->name);
    if (g->values[id].kind == OD_VALUE_INPUT) g->inputs[g->n_inputs++] = id;
  }
  if (gp->n_output && !(g->outputs = malloc(gp->n_output * sizeof *g->outputs))) return oom(b);
  for (size_t i = 0; i < gp->n_output; i++) {
    const Onnx__ValueInfoProto *vi = gp->output[i];
    int id = vi->name ? od_graph_find_value(g, vi->name) : -1;
    if (id < 0)
      return od_err_set(b->err, OD_ERR_INVALID_MODEL,
                        "%s: graph output '%s' is not produced by any node, input or initializer", b->file,
                        vi->name ? vi->name : "");
    for (int k = 0; k < g->n_outputs; k++)
      if (g->outputs[k] == id)
        return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: graph output '%s' is listed twice", b->file, vi->name);
    struct od_value *v = &g->values[id];
    v->is_graph_output = true;
    if (v->kind == OD_VALUE_ACTIVATION) OD_TRY(read_type(b, vi->type, v, "graph output"));
    g->outputs[g->n_outputs++] = id;
  }
  for (size_t i = 0; i < gp->n_value_info; i++) {
    const Onnx__ValueInfoProto *vi = gp->value_info[i];
    int id = vi->name ? od_graph_find_value(g, vi->name) : -1;
    if (id >= 0 && g->values[id].kind == OD_VALUE_ACTIVATION && !g->values[id].is_graph_output)
      OD_TRY(read_type(b, vi->type, &g->values[id], "value_info"));
  }
  return OD_OK;
}

/* ---- topological order ------------------------------------------------------------------------ */

/* Keeps the file order when it is already topological (the common case), else Kahn's algorithm;
 * a node left over is on a cycle. Node ids inside values (producer) are renumbered. */
static enum od_status sort_nodes(struct builder *b) {
  struct od_graph *g = b->g;
  int nn = g->n_nodes;
  bool sorted = true;
  for (int i = 0; i < nn && sorted; i++)
    for (int k = 0; k < g->nodes[i].n_inputs; k++) {
      int v = g->nodes[i].inputs[k];
      if (v >= 0 && g->values[v].producer >= i) { sorted = false; break; }
    }
  if (sorted) return OD_OK;
  int *indeg = calloc((size_t)nn, sizeof *indeg), *order = malloc((size_t)nn * sizeof *order);
  int *cons_start = calloc((size_t)g->n_values + 1, sizeof *cons_start);
  int total_edges = 0;
  for (int i = 0; i < nn; i++) total_edges += g->nodes[i].n_inputs;
  int *cons = malloc(((size_t)total_edges + 1) * sizeof *cons), *fill = NULL;
  struct od_node *nodes = malloc((size_t)nn * sizeof *nodes);
  enum od_status st = OD_OK;
  if (!indeg || !order || !cons_start || !cons || !nodes) { st = oom(b); goto done; }
  /* consumer lists per value (CSR), indegree = inputs produced by nodes */
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].n_inputs; k++) {
      int v = g->nodes[i].inputs[k];
      if (v >= 0 && g->values[v].producer >= 0) { cons_start[v + 1]++; indeg[i]++; }
    }
  for (int v = 0; v < g->n_values; v++) cons_start[v + 1] += cons_start[v];
  fill = calloc((size_t)g->n_values + 1, sizeof *fill);
  if (!fill) { st = oom(b); goto done; }
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].n_inputs; k++) {
      int v = g->nodes[i].inputs[k];
      if (v >= 0 && g->values[v].producer >= 0) cons[cons_start[v] + fill[v]++] = i;
    }
  int head = 0, tail = 0;
  for (int i = 0; i < nn; i++)
    if (!indeg[i]) order[tail++] = i;
  while (head < tail) {
    struct od_node *n = &g->nodes[order[head++]];
    for (int o = 0; o < n->n_outputs; o++) {
      int v = n->outputs[o];
      if (v < 0) continue;
      for (int c = cons_start[v]; c < cons_start[v + 1]; c++)
        if (--indeg[cons[c]] == 0) order[tail++] = cons[c];
    }
  }
  if (tail < nn) {
    int stuck = 0;
    while (stuck < nn && !indeg[stuck]) stuck++;
    char nd[256];
    st = od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: the graph has a cycle through %s", b->file,
                    od_node_describe(&g->nodes[stuck], nd, sizeof nd));
    goto done;
  }
  for (int i = 0; i < nn; i++) nodes[i] = g->nodes[order[i]];
  memcpy(g->nodes, nodes, (size_t)nn * sizeof *nodes);
  for (int i = 0; i < nn; i++)
    for (int o = 0; o < g->nodes[i].n_outputs; o++)
      if (g->nodes[i].outputs[o] >= 0) g->values[g->nodes[i].outputs[o]].producer = i;
  for (int v = 0; v < g->n_values; v++)
    if (g->values[v].kind == OD_VALUE_CONSTANT) g->values[v].source_index = g->values[v].producer;
done:
  free(indeg);
  free(order);
  free(cons_start);
  free(cons);
  free(fill);
  free(nodes);
  return st;
}

/* ---- model --------------------------------------------------------------------------------- */

static enum od_status load_opsets(struct builder *b, const Onnx__ModelProto *mp) {
  struct od_graph *g = b->g;
  size_t n = mp->n_opset_import;
  if (n == 0) { /* IR < 3 files carry no opset_import: ONNX says they are opset 1 */
    if (!(g->opsets = calloc(1, sizeof *g->opsets)) || !(g->opsets[0].domain = dup_str(""))) return oom(b);
    g->opsets[0].version = 1;
    g->n_opsets = 1;
    return OD_OK;
  }
  if (!(g->opsets = calloc(n, sizeof *g->opsets))) return oom(b);
  for (size_t i = 0; i < n; i++) {
    const Onnx__OperatorSetIdProto *op = mp->opset_import[i];
    const char *d = op->domain && strcmp(op->domain, "ai.onnx") ? op->domain : "";
    for (int k = 0; k < g->n_opsets; k++)
      if (!strcmp(g->opsets[k].domain, d))
        return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: opset_import lists domain '%s' twice", b->file, d);
    if (!op->has_version || op->version < 1)
      return od_err_set(b->err, OD_ERR_INVALID_MODEL, "%s: opset_import for domain '%s' has no valid version",
                        b->file, d);
    if (!(g->opsets[i].domain = dup_str(d))) return oom(b);
    g->opsets[i].version = op->version;
    g->n_opsets = (int)i + 1;
  }
  return OD_OK;
}

static enum od_status build_graph(struct builder *b, const Onnx__ModelProto *mp) {
  struct od_graph *g = b->g;
  g->ir_version = mp->has_ir_version ? mp->ir_version : 0;
  g->producer_name = dup_str(mp->producer_name);
  g->producer_version = dup_str(mp->producer_version);
  g->name = dup_str(b->gp->name);
  if (!g->producer_name || !g->producer_version || !g->name) return oom(b);
  OD_TRY(load_opsets(b, mp));
  OD_TRY(load_inputs(b));
  OD_TRY(create_nodes(b));
  OD_TRY(load_params(b));
  OD_TRY(resolve_inputs(b));
  OD_TRY(collect_inputs(b));
  return sort_nodes(b);
}

void od_model_destroy(struct od_model *m) {
  if (!m) return;
  od_graph_destroy(m->graph);
  if (m->proto) protobuf_c_message_free_unpacked(&m->proto->base, &m->alloc);
  free(m->path);
  free(m->dir);
  free(m);
}

enum od_status od_model_load_buffer(const uint8_t *buf, size_t len, const char *name, const char *dir,
                                    struct od_model **out, struct od_err *err) {
  if (!name) name = "<memory>";
  if (len == 0) return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: file is empty", name);
  struct od_model *m = calloc(1, sizeof *m);
  if (!m) return od_err_set(err, OD_ERR_OOM, "%s: out of memory", name);
  od_pb_allocator_init(&m->alloc);
  m->path = dup_str(name);
  m->dir = dir ? dup_str(dir) : NULL;
  if (!m->path || (dir && !m->dir)) {
    od_model_destroy(m);
    return od_err_set(err, OD_ERR_OOM, "%s: out of memory", name);
  }
  /* The wire format is checked before unpacking: protobuf-c unpacks nested messages recursively
   * with no depth limit, so a small file of deeply nested messages (TypeProto.sequence_type, ...)
   * overflows the stack. pb_diagnose walks iteratively, refuses nesting deeper than 100 and
   * otherwise accepts exactly what protobuf-c accepts, naming the field when it does not. */
  struct od_err diag = {0};
  if (od_pb_diagnose(buf, len, &onnx__model_proto__descriptor, &diag) != OD_OK) {
    od_model_destroy(m);
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: not a valid ONNX model: %s", name, diag.msg);
  }
  m->proto = onnx__model_proto__unpack(&m->alloc, len, buf);
  if (!m->proto) {
    od_model_destroy(m);
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: not a valid ONNX model (protobuf parsing failed)", name);
  }
  if (!m->proto->graph) {
    od_model_destroy(m);
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: the model has no graph (is this an ONNX model file?)", name);
  }
  struct builder b = {.file = name, .dir = m->dir, .gp = m->proto->graph, .err = err};
  b.g = m->graph = calloc(1, sizeof *m->graph);
  enum od_status st = b.g ? build_graph(&b, m->proto) : od_err_set(err, OD_ERR_OOM, "%s: out of memory", name);
  if (st != OD_OK) {
    od_model_destroy(m);
    return st;
  }
  *out = m;
  return OD_OK;
}

enum od_status od_model_load(const char *path, struct od_model **out, struct od_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return od_err_set(err, OD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(f);
    return od_err_set(err, OD_ERR_IO, "%s: not a regular file", path);
  }
  size_t len = (size_t)sb.st_size;
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) {
    fclose(f);
    return od_err_set(err, OD_ERR_OOM, "%s: cannot allocate %zu bytes to read it", path, len);
  }
  size_t got = fread(buf, 1, len, f);
  fclose(f);
  if (got != len) {
    free(buf);
    return od_err_set(err, OD_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, len);
  }
  /* external data is relative to the model's folder */
  char *dir = dup_str(path);
  if (!dir) {
    free(buf);
    return od_err_set(err, OD_ERR_OOM, "%s: out of memory", path);
  }
  char *slash = strrchr(dir, '/');
  if (slash == dir) slash[1] = '\0';
  else if (slash) *slash = '\0';
  else strcpy(dir, ".");
  enum od_status st = od_model_load_buffer(buf, len, path, dir, out, err);
  free(dir);
  free(buf);
  return st;
}
