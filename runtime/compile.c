/* runtime/compile.c: graph + input shapes -> struct od_program (see exec.h).
 *
 * Steps: bind the inputs (dtype and shape checked against the declaration; a symbolic dim takes
 * the same value everywhere it appears), then for each node in topological order: find the kernel
 * (opset rule), parse attributes, infer output shapes, and fold the node when every input is known
 * (constant subgraphs exporters emit around Reshape/Resize). Last, plan the arena. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/program.h"

/* Folded outputs larger than this stay run-time work (keeps compile memory bounded). */
#define FOLD_MAX_BYTES ((size_t)64 << 20)
#define ARENA_ALIGN 64

enum od_status od_program_node_error(const struct od_node *n, struct od_err *err) {
  char nd[256];
  od_err_prefix(err, "%s", od_node_describe(n, nd, sizeof nd));
  return err ? err->status : OD_ERR_INTERNAL;
}

/* ---- inputs ------------------------------------------------------------------------------- */

static enum od_status bind_inputs(struct od_program *p, const struct od_tensor *inputs, struct od_err *err) {
  const struct od_graph *g = p->g;
  /* symbolic dims: name -> value, checked for consistency across inputs */
  const char *sym_names[64];
  int64_t sym_vals[64];
  int n_sym = 0;
  for (int i = 0; i < g->n_inputs; i++) {
    const struct od_value *v = &g->values[g->inputs[i]];
    const struct od_tensor *t = &inputs[i];
    char want[256], got[256];
    if (t->dtype == OD_DTYPE_UNDEFINED) continue; /* not given: fine unless a node reads it */
    if (v->type_kind != OD_TYPE_TENSOR && v->type_kind != OD_TYPE_UNKNOWN)
      return od_err_set(err, OD_ERR_UNSUPPORTED, "input '%s': only tensor inputs are supported", v->name);
    if (!od_dtype_is_supported(t->dtype))
      return od_err_set(err, OD_ERR_UNSUPPORTED, "input '%s': element type %s is not supported", v->name,
                        od_dtype_name(t->dtype));
    if (v->dtype && v->dtype != t->dtype)
      return od_err_set(err, OD_ERR_INVALID_ARG, "input '%s': the model expects %s, got %s", v->name,
                        od_dtype_name(v->dtype), od_dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > OD_MAX_DIMS)
      return od_err_set(err, OD_ERR_INVALID_ARG, "input '%s': rank %d is not supported", v->name, t->rank);
    if (v->rank >= 0) {
      bool ok = v->rank == t->rank;
      for (int d = 0; ok && d < v->rank; d++) {
        if (t->dims[d] < 0) ok = false;
        else if (v->dims[d] >= 0 && v->dims[d] != t->dims[d]) ok = false;
        else if (v->dim_params[d]) {
          int s = 0;
          while (s < n_sym && strcmp(sym_names[s], v->dim_params[d])) s++;
          if (s < n_sym && sym_vals[s] != t->dims[d])
            return od_err_set(err, OD_ERR_INVALID_ARG,
                              "input '%s': dim %d ('%s') is %lld, but another input bound '%s' to %lld", v->name,
                              d, v->dim_params[d], (long long)t->dims[d], v->dim_params[d], (long long)sym_vals[s]);
          if (s == n_sym && n_sym < 64) {
            sym_names[n_sym] = v->dim_params[d];
            sym_vals[n_sym++] = t->dims[d];
          }
        }
      }
      if (!ok) {
        /* describe the declared shape with symbolic names */
        size_t k = (size_t)snprintf(want, sizeof want, "[");
        for (int d = 0; d < v->rank && k < sizeof want; d++) {
          if (v->dim_params[d]) k += (size_t)snprintf(want + k, sizeof want - k, "%s%s", d ? ", " : "", v->dim_params[d]);
          else if (v->dims[d] >= 0) k += (size_t)snprintf(want + k, sizeof want - k, "%s%lld", d ? ", " : "", (long long)v->dims[d]);
          else k += (size_t)snprintf(want + k, sizeof want - k, "%s?", d ? ", " : "");
        }
        if (k < sizeof want) snprintf(want + k, sizeof want - k, "]");
        return od_err_set(err, OD_ERR_INVALID_ARG, "input '%s': the model expects shape %s, got %s", v->name, want,
                          od_shape_str(t->rank, t->dims, got, sizeof got));
      }
    }
    for (int d = 0; d < t->rank; d++)
      if (t->dims[d] < 0)
        return od_err_set(err, OD_ERR_INVALID_ARG, "input '%s': dim %d is negative", v->name, d);
    struct slot *s = &p->slots[g->inputs[i]];
    s->kind = SLOT_INPUT;
    s->t = *t;
    s->t.data = NULL;
    s->shape_known = true;
  }
  return OD_OK;
}

/* ---- per node ----------------------------------------------------------------------------- */

static bool inputs_known(const struct od_program *p, const struct od_node *n) {
  for (int k = 0; k < n->n_inputs; k++) {
    int v = n->inputs[k];
    if (v < 0) continue;
    enum slot_kind kind = p->slots[v].kind;
    if (kind != SLOT_PARAM && kind != SLOT_CONST) return false;
    if (p->slots[v].requires_grad) return false; /* a parameter being trained changes every step */
  }
  return true;
}

static bool input_shapes_known(const struct od_program *p, const struct od_node *n) {
  for (int k = 0; k < n->n_inputs; k++)
    if (n->inputs[k] >= 0 && !p->slots[n->inputs[k]].shape_known) return false;
  return true;
}

/* Runs a node at compile time: its outputs become host-owned constants. */
static enum od_status fold_node(struct od_program *p, int i, struct od_err *err) {
  const struct od_node *n = p->nodes[i].node;
  for (int o = 0; o < n->n_outputs; o++) {
    int v = n->outputs[o];
    if (v < 0) continue;
    struct slot *s = &p->slots[v];
    s->nbytes = od_tensor_nbytes(&s->t);
    s->t.data = malloc(s->nbytes ? s->nbytes : 1);
    if (!s->t.data) return od_err_set(err, OD_ERR_OOM, "out of memory folding constants");
    s->kind = SLOT_CONST;
  }
  OD_TRY(od_program_forward_node(p, i, err));
  p->nodes[i].folded = true;
  p->folded++;
  return OD_OK;
}

static bool foldable(const struct od_program *p, int i) {
  const struct prog_node *pn = &p->nodes[i];
  const struct od_node *n = pn->node;
  if (!pn->op->k->forward[OD_DEVICE_CPU]) return false;
  unsigned flags = pn->op->k->flags;
  if (!(flags & OD_OP_FOLDABLE) && !(flags & OD_OP_SHAPE_ONLY)) return false;
  if (!(flags & OD_OP_SHAPE_ONLY) && !inputs_known(p, n)) return false;
  size_t bytes = 0;
  for (int o = 0; o < n->n_outputs; o++)
    if (n->outputs[o] >= 0) bytes += od_tensor_nbytes(&p->slots[n->outputs[o]].t);
  return bytes <= FOLD_MAX_BYTES;
}

/* An output takes a gradient when an input that is differentiable for this op (not in
 * no_grad_inputs) takes one. Gradients are float-only. */
static void mark_requires_grad(struct od_program *p, int i) {
  const struct od_node *n = p->nodes[i].node;
  uint32_t no_grad = p->nodes[i].op->k->no_grad_inputs;
  bool any = false;
  for (int k = 0; k < n->n_inputs; k++)
    if (n->inputs[k] >= 0 && !(k < 32 && (no_grad >> k) & 1u) && p->slots[n->inputs[k]].requires_grad) any = true;
  if (!any) return;
  for (int o = 0; o < n->n_outputs; o++)
    if (n->outputs[o] >= 0 && od_dtype_is_float(p->slots[n->outputs[o]].t.dtype))
      p->slots[n->outputs[o]].requires_grad = true;
}

static enum od_status compile_node(struct od_program *p, int i, struct od_err *err) {
  struct prog_node *pn = &p->nodes[i];
  const struct od_node *n = pn->node;
  if (pn->skipped) return OD_OK;
  /* Constant: the value is already in the parameter block (import put it there). */
  if (!strcmp(n->op_type, "Constant") && !n->domain[0]) {
    pn->folded = true;
    return OD_OK;
  }
  if (n->has_subgraph)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "subgraph ops (If, Loop, Scan) are not supported");
  pn->op = od_op_find(n->domain, n->op_type, n->opset);
  if (!pn->op)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "no kernel for %s%s%s at opset %lld", n->domain,
                      n->domain[0] ? ":" : "", n->op_type, (long long)n->opset);
  const struct od_op_kernels *k = pn->op->k;
  if (k->attrs_size) {
    pn->attrs = calloc(1, k->attrs_size);
    if (!pn->attrs) return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  if (k->parse) OD_TRY(k->parse(n, pn->attrs, err));
  for (int k = 0; k < n->n_inputs; k++) {
    int v = n->inputs[k];
    if (v >= 0 && p->g->values[v].kind == OD_VALUE_INPUT && p->slots[v].kind == SLOT_UNUSED)
      return od_err_set(err, OD_ERR_INVALID_ARG, "needs graph input '%s', which was not given", p->g->values[v].name);
  }
  bool needs_values = false;
  if (!input_shapes_known(p, n)) {
    needs_values = true;
  } else {
    OD_TRY(od_program_infer_node(p, i, &needs_values, err));
  }
  if (needs_values) {
    mark_requires_grad(p, i);
    pn->dynamic = true;
    for (int o = 0; o < n->n_outputs; o++)
      if (n->outputs[o] >= 0) p->slots[n->outputs[o]].kind = SLOT_DYNAMIC;
    return OD_OK;
  }
  for (int o = 0; o < n->n_outputs; o++)
    if (n->outputs[o] >= 0) p->slots[n->outputs[o]].shape_known = true;
  mark_requires_grad(p, i);
  if (foldable(p, i)) return fold_node(p, i, err);
  for (int o = 0; o < n->n_outputs; o++)
    if (n->outputs[o] >= 0) p->slots[n->outputs[o]].kind = SLOT_ARENA;
  return OD_OK;
}

/* Marks the nodes that no kept value depends on as skipped (walking producers backwards). */
static void slice_to(struct od_program *p, const uint8_t *keep) {
  const struct od_graph *g = p->g;
  bool *needed = calloc((size_t)g->n_values + 1, 1);
  if (!needed) return; /* no slicing: correct, only slower */
  for (int v = 0; v < g->n_values; v++) needed[v] = keep[v] != 0;
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    const struct od_node *n = &g->nodes[i];
    bool any = false;
    for (int o = 0; o < n->n_outputs; o++) any |= n->outputs[o] >= 0 && needed[n->outputs[o]];
    p->nodes[i].skipped = !any;
    if (!any) continue;
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0) needed[n->inputs[k]] = true;
  }
  free(needed);
}

/* ---- memory plan ---------------------------------------------------------------------------- */

/* Free blocks of the arena, kept sorted by offset and merged with neighbours. */
struct free_list {
  size_t *off, *len;
  int n, cap;
};

static bool fl_push(struct free_list *f, int at, size_t off, size_t len) {
  if (f->n == f->cap) {
    int cap = f->cap ? f->cap * 2 : 32;
    size_t *o = realloc(f->off, (size_t)cap * sizeof *o);
    if (!o) return false;
    f->off = o;
    size_t *l = realloc(f->len, (size_t)cap * sizeof *l);
    if (!l) return false;
    f->len = l;
    f->cap = cap;
  }
  memmove(f->off + at + 1, f->off + at, (size_t)(f->n - at) * sizeof *f->off);
  memmove(f->len + at + 1, f->len + at, (size_t)(f->n - at) * sizeof *f->len);
  f->off[at] = off;
  f->len[at] = len;
  f->n++;
  return true;
}

static void fl_remove(struct free_list *f, int at) {
  memmove(f->off + at, f->off + at + 1, (size_t)(f->n - at - 1) * sizeof *f->off);
  memmove(f->len + at, f->len + at + 1, (size_t)(f->n - at - 1) * sizeof *f->len);
  f->n--;
}

/* First fit; grows the arena's end when nothing fits (extending a free block at the end). */
static bool fl_alloc(struct free_list *f, size_t *end, size_t len, size_t *out) {
  for (int i = 0; i < f->n; i++)
    if (f->len[i] >= len) {
      *out = f->off[i];
      f->off[i] += len;
      f->len[i] -= len;
      if (!f->len[i]) fl_remove(f, i);
      return true;
    }
  if (f->n && f->off[f->n - 1] + f->len[f->n - 1] == *end) { /* the last free block touches the end */
    *out = f->off[f->n - 1];
    *end = *out + len;
    fl_remove(f, f->n - 1);
    return true;
  }
  *out = *end;
  *end += len;
  return true;
}

static bool fl_free(struct free_list *f, size_t off, size_t len) {
  int at = 0;
  while (at < f->n && f->off[at] < off) at++;
  if (!fl_push(f, at, off, len)) return false;
  if (at + 1 < f->n && f->off[at] + f->len[at] == f->off[at + 1]) { /* merge with next */
    f->len[at] += f->len[at + 1];
    fl_remove(f, at + 1);
  }
  if (at > 0 && f->off[at - 1] + f->len[at - 1] == f->off[at]) { /* merge with previous */
    f->len[at - 1] += f->len[at];
    fl_remove(f, at);
  }
  return true;
}

/* Backward programs: marks the values whose data a backward pass reads (op bwd_reads; everything
 * for ops that do not declare it). Only nodes whose backward can run count: those with an input
 * that takes a gradient. */
static void mark_saved(const struct od_program *p, uint8_t *saved) {
  for (int i = 0; i < p->g->n_nodes; i++) {
    const struct prog_node *pn = &p->nodes[i];
    if (pn->folded || pn->skipped || !pn->op) continue;
    const struct od_node *n = pn->node;
    bool runs = false;
    for (int k = 0; k < n->n_inputs; k++)
      runs |= n->inputs[k] >= 0 && p->slots[n->inputs[k]].requires_grad && !(k < 32 && (pn->op->k->no_grad_inputs >> k) & 1u);
    if (!runs) continue;
    bool outs = true;
    uint32_t ins = pn->op->k->bwd_reads ? pn->op->k->bwd_reads(n, pn->attrs, &outs) : ~0u;
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0 && (k >= 32 || (ins >> k) & 1u)) saved[n->inputs[k]] = 1;
    if (outs)
      for (int o = 0; o < n->n_outputs; o++)
        if (n->outputs[o] >= 0) saved[n->outputs[o]] = 1;
  }
}

/* Liveness-based plan: at node i, allocate its outputs, then release the arena values whose last
 * reader is i. Graph outputs are never released. */
static enum od_status plan_arena(struct od_program *p, struct od_err *err) {
  const struct od_graph *g = p->g;
  for (int v = 0; v < g->n_values; v++) p->slots[v].last_use = -1;
  for (int i = 0; i < g->n_nodes; i++) {
    const struct od_node *n = p->nodes[i].node;
    if (p->nodes[i].folded || p->nodes[i].skipped) continue;
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0) p->slots[n->inputs[k]].last_use = i;
  }
  for (int o = 0; o < g->n_outputs; o++) p->slots[g->outputs[o]].last_use = g->n_nodes;
  if (p->keep)
    for (int v = 0; v < g->n_values; v++)
      if (p->keep[v]) p->slots[v].last_use = g->n_nodes;
  uint8_t *saved = NULL; /* backward programs: values some backward reads (kept to the end) */
  if (p->backward) {
    saved = calloc((size_t)g->n_values + 1, 1);
    if (!saved) return od_err_set(err, OD_ERR_OOM, "out of memory");
    mark_saved(p, saved);
  }
  struct free_list fl = {0};
  size_t end = 0;
  enum od_status st = OD_OK;
  for (int i = 0; i < g->n_nodes && st == OD_OK; i++) {
    const struct od_node *n = p->nodes[i].node;
    if (p->nodes[i].folded || p->nodes[i].dynamic || p->nodes[i].skipped) continue;
    for (int o = 0; o < n->n_outputs; o++) {
      int v = n->outputs[o];
      if (v < 0 || p->slots[v].kind != SLOT_ARENA) continue;
      struct slot *s = &p->slots[v];
      s->nbytes = od_tensor_nbytes(&s->t);
      size_t len = (s->nbytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
      if (!len) len = ARENA_ALIGN;
      fl_alloc(&fl, &end, len, &s->offset);
      if (s->last_use < 0) s->last_use = i; /* unread output: its memory is free after the node */
    }
    for (int k = 0; k < n->n_inputs + n->n_outputs; k++) {
      int v = k < n->n_inputs ? n->inputs[k] : n->outputs[k - n->n_inputs];
      if (v < 0 || p->slots[v].kind != SLOT_ARENA || p->slots[v].last_use != i) continue;
      if (saved && saved[v]) continue; /* a backward reads it */
      /* a value read twice by the same node is released once */
      bool seen = false;
      for (int j = 0; j < k; j++) {
        int w = j < n->n_inputs ? n->inputs[j] : n->outputs[j - n->n_inputs];
        seen |= w == v;
      }
      if (seen) continue;
      size_t len = (p->slots[v].nbytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
      if (!fl_free(&fl, p->slots[v].offset, len ? len : ARENA_ALIGN)) st = od_err_set(err, OD_ERR_OOM, "out of memory");
    }
  }
  free(fl.off);
  free(fl.len);
  free(saved);
  OD_TRY(st);
  p->arena_bytes = end;
  if (end) OD_TRY(p->dev->ops->alloc(p->dev, end, (void **)&p->arena, err));
  for (int v = 0; v < g->n_values; v++)
    if (p->slots[v].kind == SLOT_ARENA) p->slots[v].t.data = p->arena + p->slots[v].offset;
  return OD_OK;
}

/* Gradient buffers, reused like the activation arena but in backward (reverse) order. The gradient
 * of value v is live from the first backward that writes it (its last reader in forward order, or
 * the start of the backward pass for a possible seed: a graph output or a kept value) to the
 * backward of its producer, which reads it last. Gradients the caller may read afterwards (graph
 * inputs, parameters, grad_wanted values) are never released. Buffers are zeroed when first
 * touched during the backward pass (autograd.c), not all at once. Dynamic values get theirs at
 * backward time. */
static bool grad_input(const struct od_program *p, const struct prog_node *pn, int k) {
  int v = pn->node->inputs[k];
  return v >= 0 && p->slots[v].requires_grad && p->slots[v].kind != SLOT_DYNAMIC &&
         !(k < 32 && (pn->op->k->no_grad_inputs >> k) & 1u);
}

static size_t grad_len(const struct slot *s) {
  size_t len = (od_tensor_nbytes(&s->t) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  return len ? len : ARENA_ALIGN;
}

static enum od_status plan_grads(struct od_program *p, const struct od_compile_opts *opts, struct od_err *err) {
  const struct od_graph *g = p->g;
  size_t *off = calloc((size_t)g->n_values + 1, sizeof *off);
  uint8_t *state = calloc((size_t)g->n_values + 1, 1); /* 0 none, 1 allocated, 2 allocated for good */
  if (!off || !state) {
    free(off);
    free(state);
    return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  struct free_list fl = {0};
  size_t end = 0;
  enum od_status st = OD_OK;
  /* possible seeds: allocated before the walk */
  for (int v = 0; v < g->n_values; v++) {
    struct slot *s = &p->slots[v];
    if (!s->requires_grad || s->kind == SLOT_DYNAMIC || s->kind == SLOT_UNUSED) continue;
    bool seed = opts->keep ? opts->keep[v] != 0 : false;
    for (int o = 0; o < g->n_outputs && !seed; o++) seed = g->outputs[o] == v;
    bool keep = s->kind == SLOT_INPUT || s->kind == SLOT_PARAM || (opts->grad_wanted && opts->grad_wanted[v]);
    s->grad_seedable = seed || keep;
    if (seed || keep) {
      fl_alloc(&fl, &end, grad_len(s), &off[v]);
      state[v] = keep ? 2 : 1;
    }
  }
  for (int i = g->n_nodes - 1; i >= 0 && st == OD_OK; i--) {
    const struct prog_node *pn = &p->nodes[i];
    if (pn->folded || pn->skipped || !pn->op) continue;
    const struct od_node *n = pn->node;
    for (int k = 0; k < n->n_inputs; k++) {
      int v = n->inputs[k];
      if (!grad_input(p, pn, k) || state[v]) continue;
      bool keep = p->slots[v].kind == SLOT_INPUT || p->slots[v].kind == SLOT_PARAM ||
                  (opts->grad_wanted && opts->grad_wanted[v]);
      fl_alloc(&fl, &end, grad_len(&p->slots[v]), &off[v]);
      state[v] = keep ? 2 : 1;
    }
    /* the producer's backward was the last reader of its outputs' gradients */
    for (int o = 0; o < n->n_outputs; o++) {
      int v = n->outputs[o];
      if (v < 0 || state[v] != 1) continue;
      if (!fl_free(&fl, off[v], grad_len(&p->slots[v]))) st = od_err_set(err, OD_ERR_OOM, "out of memory");
      state[v] = 3; /* released */
    }
  }
  free(fl.off);
  free(fl.len);
  p->grad_bytes = end;
  if (st == OD_OK && end) st = p->dev->ops->alloc(p->dev, end, (void **)&p->grad_arena, err);
  for (int v = 0; v < g->n_values && st == OD_OK; v++) {
    struct slot *s = &p->slots[v];
    if (!s->requires_grad || s->kind == SLOT_DYNAMIC) continue;
    s->grad = s->t;
    s->grad.data = state[v] ? p->grad_arena + off[v] : NULL;
    s->grad_keep = state[v] == 2;
  }
  free(off);
  free(state);
  return st;
}

/* ---- entry point ---------------------------------------------------------------------------- */

enum od_status od_program_compile(const struct od_graph *g, const struct od_tensor *inputs,
                                  const struct od_compile_opts *opts, struct od_program **out,
                                  struct od_err *err) {
  if (!opts || !opts->dev) return od_err_set(err, OD_ERR_INVALID_ARG, "compile: no device given");
  struct od_program *p = calloc(1, sizeof *p);
  if (!p) return od_err_set(err, OD_ERR_OOM, "out of memory");
  p->g = g;
  p->dev = opts->dev;
  p->pool = opts->pool;
  p->training = opts->training;
  p->keep = opts->keep;
  p->cuda = opts->dev->kind != OD_DEVICE_CPU;
  p->slots = calloc((size_t)g->n_values + 1, sizeof *p->slots);
  p->nodes = calloc((size_t)g->n_nodes + 1, sizeof *p->nodes);
  if (!p->slots || !p->nodes) {
    od_program_destroy(p);
    return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  for (int v = 0; v < g->n_values; v++) {
    const struct od_value *val = &g->values[v];
    struct slot *s = &p->slots[v];
    s->t.rank = 0;
    if (val->kind == OD_VALUE_INITIALIZER || val->kind == OD_VALUE_CONSTANT) {
      s->kind = SLOT_PARAM;
      s->shape_known = true;
      s->t.dtype = val->dtype;
      s->t.rank = val->rank;
      memcpy(s->t.dims, val->dims, sizeof s->t.dims);
      s->t.data = od_value_data(g, val);
      if (!s->t.data) s->t.data = p->empty; /* an empty tensor is still a known value */
      s->nbytes = val->nbytes;
    }
  }
  for (int i = 0; i < g->n_nodes; i++) p->nodes[i].node = &g->nodes[i];
  p->backward = opts->trainable || opts->grad_wanted;
  if (opts->keep) slice_to(p, opts->keep);
  enum od_status st = bind_inputs(p, inputs, err);
  for (int v = 0; v < g->n_values && st == OD_OK; v++) {
    struct slot *s = &p->slots[v];
    bool train = opts->trainable && opts->trainable[v];
    if (train && s->kind != SLOT_PARAM)
      st = od_err_set(err, OD_ERR_INVALID_ARG, "value '%s' is not an initializer or Constant: it cannot be trained",
                      g->values[v].name);
    s->trainable = train;
    s->requires_grad = (train || (opts->grad_wanted && opts->grad_wanted[v])) && od_dtype_is_float(s->t.dtype);
  }
  for (int i = 0; i < g->n_nodes && st == OD_OK; i++) {
    st = compile_node(p, i, err);
    if (st != OD_OK) od_program_node_error(&g->nodes[i], err);
  }
  if (st == OD_OK) st = plan_arena(p, err);
  if (st == OD_OK && p->backward) st = plan_grads(p, opts, err);
  if (st == OD_OK && p->cuda) st = od_program_place(p, opts, err);
  p->keep = NULL; /* the caller's flags are not kept past compile */
  if (st != OD_OK) {
    od_program_destroy(p);
    return st;
  }
  *out = p;
  return OD_OK;
}
