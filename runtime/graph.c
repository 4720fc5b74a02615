/* runtime/graph.c: graph lookups and destruction (see graph.h). Built by loaders/onnx_import.c. */
#include "runtime/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void attr_free(struct od_attr *a) {
  free(a->name);
  free(a->s);
  free(a->floats);
  free(a->ints);
  if (a->strings)
    for (size_t i = 0; i < a->n; i++) free(a->strings[i]);
  free(a->strings);
  if (a->tensors) {
    size_t nt = a->type == OD_ATTR_TENSOR ? 1 : a->n;
    for (size_t i = 0; i < nt; i++) od_host_tensor_free(&a->tensors[i]);
  }
  free(a->tensors);
}

void od_host_tensor_free(struct od_host_tensor *t) {
  if (!t) return;
  free(t->data);
  t->data = NULL;
}

void od_graph_destroy(struct od_graph *g) {
  if (!g) return;
  free(g->name);
  free(g->producer_name);
  free(g->producer_version);
  for (int i = 0; i < g->n_opsets; i++) free(g->opsets[i].domain);
  free(g->opsets);
  for (int i = 0; i < g->n_values; i++) {
    free(g->values[i].name);
    for (int d = 0; d < OD_MAX_DIMS; d++) free(g->values[i].dim_params[d]);
  }
  free(g->values);
  for (int i = 0; i < g->n_nodes; i++) {
    struct od_node *n = &g->nodes[i];
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->inputs);
    free(n->outputs);
    for (int a = 0; a < n->n_attrs; a++) attr_free(&n->attrs[a]);
    free(n->attrs);
  }
  free(g->nodes);
  free(g->inputs);
  free(g->outputs);
  free(g->param_data);
  free(g->name_table);
  free(g);
}

/* FNV-1a: the name table is an open-addressing hash with linear probing. */
static size_t name_hash(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

int od_graph_find_value(const struct od_graph *g, const char *name) {
  if (!g || !name || !g->name_table_cap) return -1;
  size_t mask = g->name_table_cap - 1;
  for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
    int id = g->name_table[i];
    if (id < 0) return -1;
    if (!strcmp(g->values[id].name, name)) return id;
  }
}

int64_t od_graph_opset(const struct od_graph *g, const char *domain) {
  if (!domain || !strcmp(domain, "ai.onnx")) domain = "";
  for (int i = 0; i < g->n_opsets; i++) {
    const char *d = g->opsets[i].domain;
    if (!strcmp(d, "ai.onnx")) d = "";
    if (!strcmp(d, domain)) return g->opsets[i].version;
  }
  return 0;
}

void *od_value_data(const struct od_graph *g, const struct od_value *v) {
  if (v->kind != OD_VALUE_INITIALIZER && v->kind != OD_VALUE_CONSTANT) return NULL;
  return g->param_data ? g->param_data + v->data_offset : NULL;
}

int64_t od_value_numel(const struct od_value *v) {
  if (v->rank < 0) return -1;
  int64_t n = 1;
  for (int i = 0; i < v->rank; i++) {
    if (v->dims[i] < 0) return -1;
    n *= v->dims[i];
  }
  return n;
}

const struct od_attr *od_node_attr(const struct od_node *n, const char *name) {
  for (int i = 0; i < n->n_attrs; i++)
    if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
  return NULL;
}

const char *od_node_describe(const struct od_node *n, char *buf, size_t size) {
  char unnamed[32];
  const char *name = n->name;
  if (!name || !name[0]) { /* exporters often leave names out: use the position in the file */
    snprintf(unnamed, sizeof unnamed, "#%d", n->proto_index);
    name = unnamed;
  }
  if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
    snprintf(buf, size, "node '%s' (%s:%s-%lld)", name, n->domain, n->op_type, (long long)n->opset);
  else
    snprintf(buf, size, "node '%s' (%s-%lld)", name, n->op_type, (long long)n->opset);
  return buf;
}
