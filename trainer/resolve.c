/* trainer/resolve.c: tensor references -> values (see resolve.h). */
#include "trainer/resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int node_by_name(const struct od_graph *g, const char *name, size_t len) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strlen(g->nodes[i].name) == len && !strncmp(g->nodes[i].name, name, len)) return i;
  return -1;
}

/* node:NAME:out:K or node:NAME:in:K (NAME may itself contain ':'; the suffix is parsed from the end). */
static enum od_status resolve_node_ref(const struct od_graph *g, const char *ref, const char *model,
                                       const char *where, struct od_ref_binding *out, struct od_err *err) {
  const char *body = ref + 5;
  const char *last = strrchr(body, ':');
  if (!last || last == body) goto bad;
  const char *kind = last - 1;
  while (kind > body && *kind != ':') kind--;
  if (kind == body) goto bad;
  bool is_out = !strncmp(kind + 1, "out:", 4), is_in = !strncmp(kind + 1, "in:", 3);
  if (!is_out && !is_in) goto bad;
  char *end = NULL;
  long k = strtol(last + 1, &end, 10);
  if (!last[1] || *end || k < 0) goto bad;
  int ni = node_by_name(g, body, (size_t)(kind - body));
  if (ni < 0)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: no node named '%.*s' in %s", where, (int)(kind - body), body, model);
  const struct od_node *n = &g->nodes[ni];
  int count = is_out ? n->n_outputs : n->n_inputs;
  int v = k < count ? (is_out ? n->outputs[k] : n->inputs[k]) : -1;
  if (v < 0)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: node '%s' (%s) has no %s %ld (it has %d)", where, n->name,
                      n->op_type, is_out ? "output" : "input", k, count);
  out->value = v;
  snprintf(out->how, sizeof out->how, "node '%s' (%s) %s %ld = '%s'", n->name, n->op_type, is_out ? "output" : "input",
           k, g->values[v].name);
  return OD_OK;
bad:
  return od_err_set(err, OD_ERR_INVALID_ARG, "%s: '%s' is not a valid node reference (node:NAME:out:K or node:NAME:in:K)",
                    where, ref);
}

/* Paddle's 'X.tmp_K': when the bias add was folded, a sibling X.tmp_J produced by a biased Conv,
 * ConvTranspose or Gemm stands for it. */
static int folded_bias_sibling(const struct od_graph *g, const char *name) {
  const char *dot = strstr(name, ".tmp_");
  if (!dot) return -1;
  size_t stem = (size_t)(dot - name) + 5;
  for (int v = 0; v < g->n_values; v++) {
    const struct od_value *val = &g->values[v];
    if (strncmp(val->name, name, stem) || val->producer < 0) continue;
    const struct od_node *n = &g->nodes[val->producer];
    bool biased = (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose") || !strcmp(n->op_type, "Gemm")) &&
                  n->n_inputs >= 3 && n->inputs[2] >= 0;
    if (biased) return v;
  }
  return -1;
}

/* Levenshtein distance, capped (names are short). */
static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 200 || lb > 200) return 1000;
  int row[201];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int prev = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int cur = row[j];
      int sub = prev + (a[i - 1] != b[j - 1]);
      int best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
      row[j] = sub < best ? sub : best;
      prev = cur;
    }
  }
  return row[lb];
}

enum od_status od_ref_resolve(const struct od_graph *g, const char *ref, const char *model, const char *where,
                              struct od_ref_binding *out, struct od_err *err) {
  if (!ref || !ref[0]) return od_err_set(err, OD_ERR_INVALID_ARG, "%s: empty tensor reference", where);
  if (!strncmp(ref, "node:", 5)) return resolve_node_ref(g, ref, model, where, out, err);
  int v = od_graph_find_value(g, ref);
  if (v >= 0) {
    out->value = v;
    snprintf(out->how, sizeof out->how, "value '%s'", ref);
    return OD_OK;
  }
  v = folded_bias_sibling(g, ref);
  if (v >= 0) {
    out->value = v;
    snprintf(out->how, sizeof out->how, "'%s' (no '%s': the exporter folded the bias add into %s '%s')",
             g->values[v].name, ref, g->nodes[g->values[v].producer].op_type, g->nodes[g->values[v].producer].name);
    return OD_OK;
  }
  /* the three closest names */
  int best[3] = {-1, -1, -1}, dist[3] = {1 << 30, 1 << 30, 1 << 30};
  for (int i = 0; i < g->n_values; i++) {
    int d = edit_distance(ref, g->values[i].name);
    for (int k = 0; k < 3; k++)
      if (d < dist[k]) {
        for (int j = 2; j > k; j--) {
          dist[j] = dist[j - 1];
          best[j] = best[j - 1];
        }
        dist[k] = d;
        best[k] = i;
        break;
      }
  }
  char closest[600] = "";
  size_t len = 0;
  for (int k = 0; k < 3 && best[k] >= 0 && len + 1 < sizeof closest; k++)
    len += (size_t)snprintf(closest + len, sizeof closest - len, "%s%s", k ? ", " : "", g->values[best[k]].name);
  return od_err_set(err, OD_ERR_INVALID_ARG, "%s: no tensor '%s' in %s%s%s", where, ref, model,
                    best[0] >= 0 ? "; closest: " : "", closest);
}
