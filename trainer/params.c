/* trainer/params.c: choosing the trainable parameters and laying out the block (see params.h). */
#include "trainer/params.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_ALIGN 16 /* floats: every tensor starts on a 64-byte boundary */

/* Is input k of node n a weight input (a trainable use)? */
bool od_params_weight_input(const struct od_node *n, int k, const struct od_value *v) {
  const char *op = n->op_type;
  if (n->domain[0]) return false;
  if (!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose")) return k == 1 || k == 2;
  if (!strcmp(op, "Gemm")) return k <= 2;
  if (!strcmp(op, "MatMul")) return k <= 1;
  if (!strcmp(op, "BatchNormalization") || !strcmp(op, "InstanceNormalization") ||
      !strcmp(op, "LayerNormalization"))
    return k == 1 || k == 2;
  if (!strcmp(op, "PRelu")) return k == 1;
  if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
    return k <= 1 && od_value_numel(v) > 1;
  return false;
}

/* Weight decay is off for normalisation scale/bias and for biases. */
static bool decays(const struct od_node *n, int k, const struct od_value *v) {
  const char *op = n->op_type;
  if (!strcmp(op, "BatchNormalization") || !strcmp(op, "InstanceNormalization") || !strcmp(op, "LayerNormalization"))
    return false;
  if ((!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") || !strcmp(op, "Gemm")) && k == 2) return false;
  return v->rank > 1;
}

static enum od_status grow(struct od_params *ps, struct od_err *err) {
  struct od_param *p = realloc(ps->p, sizeof *p * (size_t)(ps->n + 1));
  if (!p) return od_err_set(err, OD_ERR_OOM, "out of memory");
  ps->p = p;
  memset(&ps->p[ps->n], 0, sizeof ps->p[ps->n]);
  return OD_OK;
}

/* (Re)allocates w, g and state for ps->total floats, keeping existing w contents. */
static enum od_status realloc_block(struct od_params *ps, size_t old_total, struct od_err *err) {
  size_t n = ps->total ? ps->total : 1;
  float *w = realloc(ps->w, n * sizeof *w);
  if (!w) return od_err_set(err, OD_ERR_OOM, "cannot allocate %zu parameters", ps->total);
  ps->w = w;
  memset(ps->w + old_total, 0, (n - old_total) * sizeof *w);
  free(ps->g);
  free(ps->state);
  ps->g = calloc(n, sizeof *ps->g);
  ps->state = calloc(n * (size_t)(ps->state_per_param ? ps->state_per_param : 1), sizeof *ps->state);
  if (!ps->g || !ps->state) return od_err_set(err, OD_ERR_OOM, "cannot allocate %zu gradients", ps->total);
  return OD_OK;
}

enum od_status od_params_from_graph(const struct od_graph *g, const char *const *freeze, int n_freeze,
                                    int state_per_param, struct od_params *out, struct od_err *err) {
  struct od_params ps = {.state_per_param = state_per_param};
  int *index = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  if (!index) return od_err_set(err, OD_ERR_OOM, "out of memory");
  for (int v = 0; v < g->n_values; v++) index[v] = -1;
  enum od_status st = OD_OK;
  for (int i = 0; i < g->n_nodes && st == OD_OK; i++) {
    const struct od_node *n = &g->nodes[i];
    for (int k = 0; k < n->n_inputs && st == OD_OK; k++) {
      int v = n->inputs[k];
      if (v < 0) continue;
      const struct od_value *val = &g->values[v];
      if ((val->kind != OD_VALUE_INITIALIZER && val->kind != OD_VALUE_CONSTANT) || val->dtype != OD_DTYPE_FLOAT)
        continue;
      if (!od_params_weight_input(n, k, val)) continue;
      if (index[v] >= 0) { /* shared storage: a second weight use */
        ps.p[index[v]].n_uses++;
        ps.p[index[v]].decay &= decays(n, k, val);
        continue;
      }
      bool frozen = false;
      for (int f = 0; f < n_freeze && !frozen; f++) frozen = fnmatch(freeze[f], val->name, 0) == 0;
      if (frozen) {
        ps.n_frozen++;
        index[v] = -2;
        continue;
      }
      if (index[v] == -2) continue;
      st = grow(&ps, err);
      if (st != OD_OK) break;
      struct od_param *p = &ps.p[ps.n];
      p->name = strdup(val->name);
      p->value = v;
      p->n = (size_t)od_value_numel(val);
      p->rank = val->rank;
      memcpy(p->dims, val->dims, sizeof p->dims);
      p->decay = decays(n, k, val);
      p->n_uses = 1;
      p->offset = ps.total;
      ps.total += (p->n + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
      index[v] = ps.n++;
      if (!p->name) st = od_err_set(err, OD_ERR_OOM, "out of memory");
    }
  }
  free(index);
  if (st == OD_OK) st = realloc_block(&ps, 0, err);
  if (st != OD_OK) {
    od_params_free(&ps);
    return st;
  }
  for (int i = 0; i < ps.n; i++) {
    const struct od_value *val = &g->values[ps.p[i].value];
    memcpy(ps.w + ps.p[i].offset, od_value_data(g, val), ps.p[i].n * sizeof(float));
  }
  *out = ps;
  return OD_OK;
}

enum od_status od_params_add(struct od_params *ps, const char *name, int rank, const int64_t *dims, bool decay,
                             const float *init, int *index, struct od_err *err) {
  OD_TRY(grow(ps, err));
  struct od_param *p = &ps->p[ps->n];
  p->name = strdup(name);
  if (!p->name) return od_err_set(err, OD_ERR_OOM, "out of memory");
  p->value = -1;
  p->rank = rank;
  p->n = 1;
  for (int d = 0; d < rank; d++) {
    p->dims[d] = dims[d];
    p->n *= (size_t)dims[d];
  }
  p->decay = decay;
  p->n_uses = 1;
  p->offset = ps->total;
  size_t old = ps->total;
  ps->total += (p->n + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
  *index = ps->n++;
  OD_TRY(realloc_block(ps, old, err));
  if (init) memcpy(ps->w + p->offset, init, p->n * sizeof(float));
  return OD_OK;
}

void od_params_to_graph(const struct od_params *ps, struct od_graph *g) {
  for (int i = 0; i < ps->n; i++) {
    if (ps->p[i].value < 0) continue;
    const struct od_value *val = &g->values[ps->p[i].value];
    memcpy(od_value_data(g, val), ps->w + ps->p[i].offset, ps->p[i].n * sizeof(float));
  }
}

void od_params_free(struct od_params *ps) {
  if (!ps) return;
  for (int i = 0; i < ps->n; i++) free(ps->p[i].name);
  free(ps->p);
  free(ps->w);
  free(ps->g);
  free(ps->state);
  memset(ps, 0, sizeof *ps);
}
