/* trainer/untie.c: giving every weight use its own parameter (see untie.h). */
#include "trainer/untie.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/params.h"

static bool is_param(const struct od_value *v) {
  return (v->kind == OD_VALUE_INITIALIZER || v->kind == OD_VALUE_CONSTANT) && v->dtype == OD_DTYPE_FLOAT;
}

/* A fresh value name: base + ".untied" (+ a number when taken). */
static void fresh_name(const struct od_graph *g, const char *base, char *out, size_t size) {
  snprintf(out, size, "%s.untied", base);
  for (int k = 2; od_graph_find_value(g, out) >= 0; k++) snprintf(out, size, "%s.untied%d", base, k);
}

/* Appends a float initializer TensorProto for value id to the proto (raw_data; filled at export). */
static enum od_status proto_add_initializer(struct od_model *m, int id, struct od_err *err) {
  Onnx__GraphProto *gp = m->proto->graph;
  struct od_value *v = &m->graph->values[id];
  Onnx__TensorProto *t = calloc(1, sizeof *t);
  Onnx__TensorProto **arr = realloc(gp->initializer, sizeof *arr * (gp->n_initializer + 1));
  if (!t || !arr) {
    free(t);
    return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  gp->initializer = arr;
  onnx__tensor_proto__init(t);
  t->name = strdup(v->name);
  t->has_data_type = 1;
  t->data_type = v->dtype;
  t->n_dims = (size_t)v->rank;
  t->dims = malloc(sizeof(int64_t) * (size_t)(v->rank ? v->rank : 1));
  t->has_raw_data = 1;
  t->raw_data.len = v->nbytes;
  t->raw_data.data = calloc(1, v->nbytes ? v->nbytes : 1);
  if (!t->name || !t->dims || !t->raw_data.data) {
    protobuf_c_message_free_unpacked(&t->base, &m->alloc);
    return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  for (int d = 0; d < v->rank; d++) t->dims[d] = v->dims[d];
  v->source_index = (int)gp->n_initializer;
  gp->initializer[gp->n_initializer++] = t;
  return OD_OK;
}

/* Renames input k of the file's node behind graph node i. */
static enum od_status proto_rename_input(struct od_model *m, int i, int k, const char *name, struct od_err *err) {
  Onnx__NodeProto *np = m->proto->graph->node[m->graph->nodes[i].proto_index];
  char *s = strdup(name);
  if (!s) return od_err_set(err, OD_ERR_OOM, "out of memory");
  free(np->input[k]);
  np->input[k] = s;
  return OD_OK;
}

/* A copy of parameter src named after base, registered in the file as a new initializer. */
static enum od_status new_copy(struct od_model *m, int src, const char *base, int *id, struct od_err *err) {
  char name[512];
  fresh_name(m->graph, base, name, sizeof name);
  if (od_graph_add_param_copy(m->graph, name, src, id) != OD_OK) return od_err_set(err, OD_ERR_OOM, "out of memory");
  return proto_add_initializer(m, *id, err);
}

static bool feeds_weight(const struct od_graph *g, int v) {
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i].n_inputs; k++)
      if (g->nodes[i].inputs[k] == v && od_params_weight_input(&g->nodes[i], k, &g->values[v]))
        return true;
  return false;
}

enum od_status od_untie_shared(struct od_model *m, bool untie, int *n_untied, struct od_err *err) {
  struct od_graph *g = m->graph;
  *n_untied = 0;
  int n_nodes = g->n_nodes;
  /* 1. Identity(P) -> V feeding weight inputs */
  for (int i = 0; i < n_nodes; i++) {
    struct od_node *n = &g->nodes[i];
    if (strcmp(n->op_type, "Identity") || n->domain[0] || n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1 ||
        n->outputs[0] < 0)
      continue;
    int p = n->inputs[0], v = n->outputs[0];
    if (!is_param(&g->values[p]) || g->values[v].is_graph_output) continue;
    /* V's consumers treat it as the weight they read */
    g->values[v].dtype = g->values[p].dtype;
    g->values[v].rank = g->values[p].rank;
    memcpy(g->values[v].dims, g->values[p].dims, sizeof g->values[v].dims);
    g->values[v].nbytes = g->values[p].nbytes;
    if (!feeds_weight(g, v)) continue;
    int target = p;
    if (untie) {
      OD_TRY(new_copy(m, p, g->values[v].name, &target, err));
      n = &g->nodes[i]; /* values may have moved; nodes did not, but stay safe */
      OD_TRY(proto_rename_input(m, i, 0, g->values[target].name, err));
      (*n_untied)++;
    }
    for (int j = 0; j < n_nodes; j++)
      for (int k = 0; k < g->nodes[j].n_inputs; k++)
        if (g->nodes[j].inputs[k] == v) {
          g->nodes[j].inputs[k] = target;
          g->values[v].n_consumers--;
          g->values[target].n_consumers++;
        }
  }
  if (!untie) return OD_OK;
  /* 2. one parameter read by weight inputs of several nodes: later readers get copies */
  int n_values = g->n_values;
  int *first = malloc(sizeof(int) * (size_t)(n_values + 1));
  if (!first) return od_err_set(err, OD_ERR_OOM, "out of memory");
  for (int v = 0; v < n_values; v++) first[v] = -1;
  enum od_status st = OD_OK;
  for (int i = 0; i < n_nodes && st == OD_OK; i++)
    for (int k = 0; k < g->nodes[i].n_inputs && st == OD_OK; k++) {
      int p = g->nodes[i].inputs[k];
      if (p < 0 || p >= n_values || !is_param(&g->values[p]) ||
          !od_params_weight_input(&g->nodes[i], k, &g->values[p]))
        continue;
      if (first[p] < 0 || first[p] == i) {
        first[p] = i;
        continue;
      }
      char base[400];
      snprintf(base, sizeof base, "%s.%s", g->values[p].name, g->nodes[i].name[0] ? g->nodes[i].name : "node");
      int copy;
      st = new_copy(m, p, base, &copy, err);
      if (st == OD_OK) st = proto_rename_input(m, i, k, g->values[copy].name, err);
      if (st == OD_OK) {
        g->nodes[i].inputs[k] = copy;
        g->values[p].n_consumers--;
        g->values[copy].n_consumers++;
        (*n_untied)++;
      }
    }
  free(first);
  return st;
}
