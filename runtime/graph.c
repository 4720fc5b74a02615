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

static enum od_status table_grow(struct od_graph *g) {
  size_t cap = g->name_table_cap ? g->name_table_cap * 2 : 64;
  int *t = malloc(cap * sizeof *t);
  if (!t) return OD_ERR_OOM;
  for (size_t i = 0; i < cap; i++) t[i] = -1;
  for (int id = 0; id < g->n_values; id++) {
    size_t i = name_hash(g->values[id].name) & (cap - 1);
    while (t[i] >= 0) i = (i + 1) & (cap - 1);
    t[i] = id;
  }
  free(g->name_table);
  g->name_table = t;
  g->name_table_cap = cap;
  return OD_OK;
}

enum od_status od_graph_add_value(struct od_graph *g, const char *name, enum od_value_kind kind, int *id) {
  if ((size_t)(g->n_values + 1) * 2 > g->name_table_cap && table_grow(g) != OD_OK) return OD_ERR_OOM;
  if (g->n_values == g->values_cap) {
    int cap = g->values_cap ? g->values_cap * 2 : 64;
    struct od_value *v = realloc(g->values, (size_t)cap * sizeof *v);
    if (!v) return OD_ERR_OOM;
    g->values = v;
    g->values_cap = cap;
  }
  struct od_value *v = &g->values[g->n_values];
  memset(v, 0, sizeof *v);
  size_t len = strlen(name) + 1;
  v->name = malloc(len);
  if (!v->name) return OD_ERR_OOM;
  memcpy(v->name, name, len);
  v->kind = kind;
  v->rank = -1;
  v->producer = -1;
  v->source_index = -1;
  for (int d = 0; d < OD_MAX_DIMS; d++) v->dims[d] = OD_DIM_UNKNOWN;
  size_t i = name_hash(name) & (g->name_table_cap - 1);
  while (g->name_table[i] >= 0) i = (i + 1) & (g->name_table_cap - 1);
  g->name_table[i] = g->n_values;
  *id = g->n_values++;
  return OD_OK;
}

enum od_status od_graph_add_param_copy(struct od_graph *g, const char *name, int src, int *id) {
  const size_t align = 64;
  size_t nbytes = g->values[src].nbytes;
  size_t offset = (g->param_bytes + align - 1) & ~(align - 1);
  size_t total = offset + ((nbytes + align - 1) & ~(align - 1));
  uint8_t *data = realloc(g->param_data, total ? total : 1);
  if (!data) return OD_ERR_OOM;
  g->param_data = data;
  memset(data + g->param_bytes, 0, total - g->param_bytes);
  g->param_bytes = total;
  int nid;
  OD_TRY(od_graph_add_value(g, name, OD_VALUE_INITIALIZER, &nid));
  struct od_value *v = &g->values[nid];
  const struct od_value *s = &g->values[src];
  v->type_kind = OD_TYPE_TENSOR;
  v->dtype = s->dtype;
  v->rank = s->rank;
  memcpy(v->dims, s->dims, sizeof v->dims);
  v->nbytes = nbytes;
  v->data_offset = offset;
  if (nbytes) memcpy(data + offset, data + s->data_offset, nbytes);
  *id = nid;
  return OD_OK;
}
