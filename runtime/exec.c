/* runtime/exec.c: running a compiled program (see exec.h): nodes in topological order, kernels
 * from the op table; nodes shaped at run time get their outputs allocated just before they run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/program.h"

#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#define MAX_NODE_IO 64

enum od_status od_program_infer_node(struct od_program *p, int i, bool *needs_values, struct od_err *err) {
  const struct prog_node *pn = &p->nodes[i];
  const struct od_node *n = pn->node;
  if (n->n_inputs > MAX_NODE_IO || n->n_outputs > MAX_NODE_IO)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "more than %d inputs or outputs", MAX_NODE_IO);
  struct od_tensor in[MAX_NODE_IO], out[MAX_NODE_IO];
  memset(out, 0, sizeof(struct od_tensor) * (size_t)n->n_outputs);
  for (int k = 0; k < n->n_inputs; k++) {
    if (n->inputs[k] < 0) {
      memset(&in[k], 0, sizeof in[k]);
      continue;
    }
    in[k] = p->slots[n->inputs[k]].t;
  }
  struct od_infer_ctx c = {.node = n, .attrs = pn->attrs, .n_in = n->n_inputs, .in = in,
                           .n_out = n->n_outputs, .out = out, .err = err};
  OD_TRY(pn->op->k->infer(&c));
  *needs_values = c.needs_values;
  if (c.needs_values) return OD_OK;
  for (int o = 0; o < n->n_outputs; o++) {
    int v = n->outputs[o];
    if (v < 0) continue;
    if (!od_dtype_is_supported(out[o].dtype) || out[o].rank < 0 || out[o].rank > OD_MAX_DIMS)
      return od_err_set(err, OD_ERR_INTERNAL, "shape inference left output %d without a valid dtype/rank", o);
    for (int d = 0; d < out[o].rank; d++)
      if (out[o].dims[d] < 0)
        return od_err_set(err, OD_ERR_SHAPE, "output %d would have a negative dim", o);
    struct slot *s = &p->slots[v];
    void *data = s->t.data;
    s->t = out[o];
    s->t.data = data;
  }
  return OD_OK;
}

static enum od_status device_forward(struct od_program *p, int i, struct od_err *err) {
  struct prog_node *pn = &p->nodes[i];
  const struct od_node *n = pn->node;
  struct od_tensor *in[MAX_NODE_IO], *out[MAX_NODE_IO];
  for (int k = 0; k < n->n_inputs; k++) in[k] = n->inputs[k] >= 0 ? &p->slots[n->inputs[k]].t : NULL;
  for (int o = 0; o < n->n_outputs; o++) out[o] = n->outputs[o] >= 0 ? &p->slots[n->outputs[o]].t : NULL;
  struct od_kernel_ctx c = {.node = n, .attrs = pn->attrs, .n_in = n->n_inputs, .in = in,
                            .n_out = n->n_outputs, .out = out, .training = p->training,
                            .dev = p->dev, .pool = p->pool, .state = &pn->state, .err = err};
  od_kernel_fn fwd = pn->op->k->forward[p->placed ? p->dev->kind : OD_DEVICE_CPU];
  if (!fwd) return od_err_set(err, OD_ERR_UNSUPPORTED, "no %s kernel", p->placed ? p->dev->name : "CPU");
  return fwd(&c);
}

enum od_status od_program_forward_node(struct od_program *p, int i, struct od_err *err) {
  struct prog_node *pn = &p->nodes[i];
  if (!p->placed || !p->cuda) return device_forward(p, i, err); /* CPU programs; folding at compile time */
  if (pn->host) return od_bridge_forward(p, i, err);
  enum od_status st = device_forward(p, i, err);
  if (st != OD_ERR_UNSUPPORTED) return st;
  /* the CUDA kernel does not handle this case (dtype, attribute form): the host runs it from now on */
  pn->host = pn->bwd_host = true;
  free(pn->host_why);
  pn->host_why = strdup(err && err->msg[0] ? err->msg : "the CUDA kernel declined");
  od_err_clear(err);
  return od_bridge_forward(p, i, err);
}

/* Shapes a run-time node now that its inputs hold data, and (re)allocates its outputs. */
static enum od_status shape_dynamic(struct od_program *p, int i, struct od_err *err) {
  const struct od_node *n = p->nodes[i].node;
  bool needs_values = false;
  OD_TRY(od_program_infer_node(p, i, &needs_values, err));
  if (needs_values)
    return od_err_set(err, OD_ERR_INTERNAL, "output shape still unknown with every input value present");
  for (int o = 0; o < n->n_outputs; o++) {
    int v = n->outputs[o];
    if (v < 0) continue;
    struct slot *s = &p->slots[v];
    size_t bytes = od_tensor_nbytes(&s->t);
    void *buf = realloc(s->t.data, bytes ? bytes : 1);
    if (!buf) return od_err_set(err, OD_ERR_OOM, "cannot allocate %zu bytes for output %d", bytes, o);
    s->t.data = buf;
    s->nbytes = bytes;
  }
  return OD_OK;
}

static enum od_status run_nodes(struct od_program *p, struct od_err *err) {
  const struct od_graph *g = p->g;
  for (int i = 0; i < g->n_nodes; i++) {
    const struct prog_node *pn = &p->nodes[i];
    if (pn->folded || pn->skipped) continue;
    double t0 = p->profile_ms ? now_ms() : 0;
    enum od_status st = pn->dynamic && !p->cuda ? shape_dynamic(p, i, err) : OD_OK;
    if (st == OD_OK) st = od_program_forward_node(p, i, err);
    if (p->profile_ms && p->cuda && st == OD_OK) st = p->dev->ops->sync(p->dev, err);
    if (p->profile_ms) p->profile_ms[i] += now_ms() - t0;
    if (st != OD_OK) return od_program_node_error(pn->node, err);
  }
  return OD_OK;
}

enum od_status od_program_run(struct od_program *p, const struct od_tensor *inputs, struct od_err *err) {
  const struct od_graph *g = p->g;
  for (int i = 0; i < g->n_inputs; i++) {
    struct slot *s = &p->slots[g->inputs[i]];
    if (s->kind == SLOT_UNUSED) continue; /* not given at compile time and not needed */
    if (inputs[i].dtype != s->t.dtype || !od_tensor_same_shape(&inputs[i], &s->t)) {
      char a[128], b[128];
      return od_err_set(err, OD_ERR_INVALID_ARG, "input '%s': compiled for %s %s, got %s %s",
                        g->values[g->inputs[i]].name, od_dtype_name(s->t.dtype),
                        od_shape_str(s->t.rank, s->t.dims, a, sizeof a), od_dtype_name(inputs[i].dtype),
                        od_shape_str(inputs[i].rank, inputs[i].dims, b, sizeof b));
    }
    if (!p->cuda) {
      s->t.data = inputs[i].data;
    } else if (s->t.data) { /* NULL: no node that runs reads it (e.g. only its shape is used) */
      size_t bytes = od_tensor_nbytes(&s->t);
      if (bytes) OD_TRY(p->dev->ops->to_device(p->dev, s->t.data, inputs[i].data, bytes, err));
    }
  }
  return run_nodes(p, err);
}

enum od_status od_program_run_bound(struct od_program *p, struct od_err *err) {
  for (int i = 0; i < p->g->n_inputs; i++) {
    const struct slot *s = &p->slots[p->g->inputs[i]];
    if (s->kind == SLOT_INPUT && s->last_use >= 0 && !s->t.data && od_tensor_nbytes(&s->t)) /* read, never bound */
      return od_err_set(err, OD_ERR_INVALID_ARG, "input '%s' was not bound", p->g->values[p->g->inputs[i]].name);
  }
  return run_nodes(p, err);
}

const struct od_tensor *od_program_host_value(struct od_program *p, int value_id, struct od_err *err) {
  if (!od_program_value(p, value_id)) {
    od_err_set(err, OD_ERR_INVALID_ARG, "value %d is not readable after the run (it was not kept)", value_id);
    return NULL;
  }
  struct slot *s = &p->slots[value_id];
  if (!p->cuda) return &s->t;
  if (od_slot_host_view(p, value_id, false, &s->hview, err) != OD_OK) return NULL;
  return &s->hview;
}

const struct od_tensor *od_program_host_grad(struct od_program *p, int value_id, struct od_err *err) {
  if (!od_program_grad(p, value_id)) {
    od_err_set(err, OD_ERR_INVALID_ARG, "value %d takes no gradient", value_id);
    return NULL;
  }
  struct slot *s = &p->slots[value_id];
  if (!p->cuda) return &s->grad;
  if (od_slot_host_view(p, value_id, true, &s->hgview, err) != OD_OK) return NULL;
  return &s->hgview;
}

const struct od_tensor *od_program_output(const struct od_program *p, int i) {
  if (i < 0 || i >= p->g->n_outputs) return NULL;
  return &p->slots[p->g->outputs[i]].t;
}

const struct od_tensor *od_program_value(const struct od_program *p, int value_id) {
  if (value_id < 0 || value_id >= p->g->n_values) return NULL;
  const struct slot *s = &p->slots[value_id];
  if (s->kind == SLOT_UNUSED) return NULL;
  if (s->kind == SLOT_ARENA && s->last_use < p->g->n_nodes) return NULL; /* memory reused */
  return &s->t;
}

void od_program_profile(struct od_program *p, double *node_ms) { p->profile_ms = node_ms; }

bool od_program_node_runs(const struct od_program *p, int node) {
  return node >= 0 && node < p->g->n_nodes && !p->nodes[node].folded && !p->nodes[node].skipped;
}

bool od_program_shape(const struct od_program *p, int value_id, struct od_tensor *out) {
  if (value_id < 0 || value_id >= p->g->n_values || p->slots[value_id].kind == SLOT_UNUSED) return false;
  *out = p->slots[value_id].t;
  out->data = NULL;
  return true;
}

size_t od_program_arena_bytes(const struct od_program *p) { return p ? p->arena_bytes : 0; }

int od_program_folded_nodes(const struct od_program *p) { return p->folded; }

void od_program_destroy(struct od_program *p) {
  if (!p) return;
  if (p->slots)
    for (int v = 0; v < p->g->n_values; v++) {
      struct slot *s = &p->slots[v];
      if (s->kind == SLOT_CONST) free(p->placed ? s->host : s->t.data);
      if (s->kind == SLOT_DYNAMIC) free(s->t.data);
      if (s->kind == SLOT_DYNAMIC && s->requires_grad && !s->grad_bound) free(s->grad.data);
    }
  if (p->grad_arena) p->dev->ops->free(p->dev, p->grad_arena);
  if (p->nodes)
    for (int i = 0; i < p->g->n_nodes; i++) {
      if (p->nodes[i].state) p->nodes[i].state->destroy(p->nodes[i].state, p->dev);
      free(p->nodes[i].attrs);
    }
  od_program_unplace(p);
  if (p->arena) p->dev->ops->free(p->dev, p->arena);
  free(p->slots);
  free(p->nodes);
  free(p);
}
