/* loaders/model_info.c: the report of `onnx-distill inspect` (see model_info.h). */
#include "loaders/model_info.h"

#include <stdlib.h>
#include <string.h>

#include "ops/op.h"

/* One row of the op-type histogram. */
struct op_count {
  const char *domain;
  const char *op_type;
  int64_t opset;
  int count;
  const char *unsupported; /* why the runtime cannot run it, or NULL */
};

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", f);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

static const char *type_kind_name(enum od_type_kind k) {
  switch (k) {
    case OD_TYPE_SEQUENCE: return "sequence";
    case OD_TYPE_MAP: return "map";
    case OD_TYPE_OPTIONAL: return "optional";
    case OD_TYPE_SPARSE_TENSOR: return "sparse_tensor";
    case OD_TYPE_OTHER: return "other";
    default: return "tensor";
  }
}

static const char *value_dtype(const struct od_value *v) {
  if (v->type_kind != OD_TYPE_TENSOR && v->type_kind != OD_TYPE_UNKNOWN) return type_kind_name(v->type_kind);
  return v->dtype ? od_dtype_name(v->dtype) : "?";
}

static void print_shape_text(FILE *f, const struct od_value *v) {
  if (v->type_kind != OD_TYPE_TENSOR || v->rank < 0) {
    fputs("[?]", f);
    return;
  }
  fputc('[', f);
  for (int d = 0; d < v->rank; d++) {
    if (d) fputs(", ", f);
    if (v->dim_params[d]) fputs(v->dim_params[d], f);
    else if (v->dims[d] >= 0) fprintf(f, "%lld", (long long)v->dims[d]);
    else fputc('?', f);
  }
  fputc(']', f);
}

static void print_shape_json(FILE *f, const struct od_value *v) {
  if (v->type_kind != OD_TYPE_TENSOR || v->rank < 0) {
    fputs("null", f);
    return;
  }
  fputc('[', f);
  for (int d = 0; d < v->rank; d++) {
    if (d) fputc(',', f);
    if (v->dim_params[d]) json_str(f, v->dim_params[d]);
    else if (v->dims[d] >= 0) fprintf(f, "%lld", (long long)v->dims[d]);
    else fputs("null", f);
  }
  fputc(']', f);
}

/* Histogram in order of first appearance; returns the row count (rows has n_nodes capacity). */
static int count_ops(const struct od_graph *g, struct op_count *rows) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const struct od_node *node = &g->nodes[i];
    int r = 0;
    while (r < n && (strcmp(rows[r].op_type, node->op_type) || strcmp(rows[r].domain, node->domain))) r++;
    if (r == n) {
      rows[n] = (struct op_count){node->domain, node->op_type, node->opset, 0, NULL};
      if (node->has_subgraph) rows[n].unsupported = "subgraph ops (If/Loop/Scan) are not supported";
      else if (!od_op_find(node->domain, node->op_type, node->opset)) rows[n].unsupported = "no kernel yet";
      n++;
    }
    rows[r].count++;
  }
  return n;
}

struct param_totals {
  int tensors, from_constants;
  int64_t elements, float_elements;
  size_t bytes;
};

static struct param_totals count_params(const struct od_graph *g) {
  struct param_totals t = {0};
  for (int i = 0; i < g->n_values; i++) {
    const struct od_value *v = &g->values[i];
    if (v->kind != OD_VALUE_INITIALIZER && v->kind != OD_VALUE_CONSTANT) continue;
    int64_t ne = od_value_numel(v);
    t.tensors++;
    t.from_constants += v->kind == OD_VALUE_CONSTANT;
    t.elements += ne;
    if (od_dtype_is_float(v->dtype)) t.float_elements += ne;
    t.bytes += v->nbytes;
  }
  return t;
}

/* Where an op type runs on a CUDA device, for the text listing (NULL: nothing to say). Nodes with a
 * CUDA kernel can still run on the CPU when a tensor is not float32 or the shape is known only at
 * run time: `train --dry-run` on a device lists each such node. */
static const char *cuda_placement(const struct op_count *row) {
#if !defined(OD_HAVE_CUDA) && !defined(OD_CUDA_EMU)
  return NULL; /* a build without CUDA: everything runs on the CPU */
#endif
  if (row->unsupported) return NULL;
  const struct od_op *op = od_op_find(row->domain, row->op_type, row->opset);
  if (!op) return NULL;
  if (!strcmp(row->op_type, "Constant") && !row->domain[0]) return "parameters";
  if (op->k->flags & OD_OP_SHAPE_ONLY) return "compile time";
  if (!op->k->forward[OD_DEVICE_CUDA]) return "cpu";
  return op->k->backward[OD_DEVICE_CUDA] || !op->k->backward[OD_DEVICE_CPU] ? "cuda" : "cuda (backward on cpu)";
}

static void print_text(const struct od_model *m, FILE *f, struct op_count *rows, int nrows,
                       struct param_totals pt) {
  const struct od_graph *g = m->graph;
  fprintf(f, "model:      %s\n", m->path);
  fprintf(f, "ir_version: %lld\n", (long long)g->ir_version);
  fprintf(f, "producer:   %s %s\n", g->producer_name[0] ? g->producer_name : "(none)", g->producer_version);
  fprintf(f, "graph:      %s\n", g->name);
  fprintf(f, "opsets:    ");
  for (int i = 0; i < g->n_opsets; i++)
    fprintf(f, " %s %lld%s", g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx",
            (long long)g->opsets[i].version, i + 1 < g->n_opsets ? "," : "");
  fprintf(f, "\ninputs (%d):\n", g->n_inputs);
  for (int i = 0; i < g->n_inputs; i++) {
    const struct od_value *v = &g->values[g->inputs[i]];
    fprintf(f, "  %-24s %-8s ", v->name, value_dtype(v));
    print_shape_text(f, v);
    fputc('\n', f);
  }
  fprintf(f, "outputs (%d):\n", g->n_outputs);
  for (int i = 0; i < g->n_outputs; i++) {
    const struct od_value *v = &g->values[g->outputs[i]];
    fprintf(f, "  %-24s %-8s ", v->name, value_dtype(v));
    print_shape_text(f, v);
    fputc('\n', f);
  }
#if defined(OD_HAVE_CUDA) || defined(OD_CUDA_EMU)
  fprintf(f, "ops (%d nodes, %d types; where they run with --device cuda):\n", g->n_nodes, nrows);
#else
  fprintf(f, "ops (%d nodes, %d types):\n", g->n_nodes, nrows);
#endif
  for (int r = 0; r < nrows; r++) {
    const char *where = cuda_placement(&rows[r]);
    fprintf(f, "  %s%s%-22s %5d%s%s\n", rows[r].domain, rows[r].domain[0] ? ":" : "", rows[r].op_type, rows[r].count,
            where ? "   " : "", where ? where : "");
  }
  fprintf(f, "parameters: %lld elements (%lld float) in %d tensors, %.2f MiB", (long long)pt.elements,
          (long long)pt.float_elements, pt.tensors, (double)pt.bytes / (1024.0 * 1024.0));
  if (pt.from_constants) fprintf(f, "; %d of them in Constant nodes", pt.from_constants);
  fputc('\n', f);
  int n_unsup = 0;
  for (int r = 0; r < nrows; r++) n_unsup += rows[r].unsupported != NULL;
  if (!n_unsup) {
    fprintf(f, "runnable:   every op has a kernel\n");
    return;
  }
  fprintf(f, "not runnable yet (%d op types):\n", n_unsup);
  for (int r = 0; r < nrows; r++)
    if (rows[r].unsupported)
      fprintf(f, "  %s%s%s-%lld x%d: %s\n", rows[r].domain, rows[r].domain[0] ? ":" : "", rows[r].op_type,
              (long long)rows[r].opset, rows[r].count, rows[r].unsupported);
}

static void print_values_json(FILE *f, const struct od_graph *g, const int *ids, int n) {
  fputc('[', f);
  for (int i = 0; i < n; i++) {
    const struct od_value *v = &g->values[ids[i]];
    fprintf(f, "%s{\"name\":", i ? "," : "");
    json_str(f, v->name);
    fputs(",\"dtype\":", f);
    json_str(f, value_dtype(v));
    fputs(",\"shape\":", f);
    print_shape_json(f, v);
    fputc('}', f);
  }
  fputc(']', f);
}

static void print_json(const struct od_model *m, FILE *f, struct op_count *rows, int nrows,
                       struct param_totals pt) {
  const struct od_graph *g = m->graph;
  fputs("{\"model\":", f);
  json_str(f, m->path);
  fprintf(f, ",\"ir_version\":%lld,\"producer_name\":", (long long)g->ir_version);
  json_str(f, g->producer_name);
  fputs(",\"producer_version\":", f);
  json_str(f, g->producer_version);
  fputs(",\"graph_name\":", f);
  json_str(f, g->name);
  fputs(",\"opsets\":[", f);
  for (int i = 0; i < g->n_opsets; i++) {
    fprintf(f, "%s{\"domain\":", i ? "," : "");
    json_str(f, g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx");
    fprintf(f, ",\"version\":%lld}", (long long)g->opsets[i].version);
  }
  fputs("],\"inputs\":", f);
  print_values_json(f, g, g->inputs, g->n_inputs);
  fputs(",\"outputs\":", f);
  print_values_json(f, g, g->outputs, g->n_outputs);
  fprintf(f, ",\"nodes\":%d,\"ops\":[", g->n_nodes);
  for (int r = 0; r < nrows; r++) {
    fprintf(f, "%s{\"op_type\":", r ? "," : "");
    json_str(f, rows[r].op_type);
    fputs(",\"domain\":", f);
    json_str(f, rows[r].domain[0] ? rows[r].domain : "ai.onnx");
    const struct od_op *op = rows[r].unsupported ? NULL : od_op_find(rows[r].domain, rows[r].op_type, rows[r].opset);
    fprintf(f, ",\"opset\":%lld,\"count\":%d,\"runnable\":%s,\"cuda_forward\":%s,\"cuda_backward\":%s}",
            (long long)rows[r].opset, rows[r].count, rows[r].unsupported ? "false" : "true",
            op && op->k->forward[OD_DEVICE_CUDA] ? "true" : "false",
            op && op->k->backward[OD_DEVICE_CUDA] ? "true" : "false");
  }
  fprintf(f, "],\"parameters\":{\"tensors\":%d,\"elements\":%lld,\"float_elements\":%lld,\"bytes\":%zu,"
             "\"from_constant_nodes\":%d},\"unsupported_ops\":[",
          pt.tensors, (long long)pt.elements, (long long)pt.float_elements, pt.bytes, pt.from_constants);
  int k = 0;
  for (int r = 0; r < nrows; r++) {
    if (!rows[r].unsupported) continue;
    fprintf(f, "%s{\"op_type\":", k++ ? "," : "");
    json_str(f, rows[r].op_type);
    fputs(",\"domain\":", f);
    json_str(f, rows[r].domain[0] ? rows[r].domain : "ai.onnx");
    fprintf(f, ",\"opset\":%lld,\"count\":%d,\"reason\":", (long long)rows[r].opset, rows[r].count);
    json_str(f, rows[r].unsupported);
    fputc('}', f);
  }
  fputs("]}\n", f);
}

void od_model_info_print(const struct od_model *m, FILE *f, bool json) {
  const struct od_graph *g = m->graph;
  struct op_count *rows = calloc((size_t)g->n_nodes + 1, sizeof *rows);
  int nrows = rows ? count_ops(g, rows) : 0;
  struct param_totals pt = count_params(g);
  if (json) print_json(m, f, rows, nrows, pt);
  else print_text(m, f, rows, nrows, pt);
  free(rows);
}
