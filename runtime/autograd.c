/* runtime/autograd.c: the backward pass over a compiled program (see exec.h).
 *
 * Contract (one, documented once): walking nodes in reverse topological order, a node whose
 * outputs received a gradient calls its op's backward, which reads dout and the saved forward
 * tensors and ACCUMULATES (+=) into din for each input that takes a gradient. Internal gradient
 * buffers are zeroed at the start; gradients bound by the caller (the trainer's block) are not. */
#include <stdlib.h>
#include <string.h>

#include "runtime/program.h"

#define MAX_NODE_IO 64

enum od_status od_program_bind_value(struct od_program *p, int v, void *data, struct od_err *err) {
  if (v < 0 || v >= p->g->n_values) return od_err_set(err, OD_ERR_INVALID_ARG, "bind: no value %d", v);
  struct slot *s = &p->slots[v];
  if (s->kind != SLOT_PARAM && s->kind != SLOT_INPUT)
    return od_err_set(err, OD_ERR_INVALID_ARG, "bind: '%s' is not a parameter or input", p->g->values[v].name);
  s->t.data = data;
  return OD_OK;
}

enum od_status od_program_bind_grad(struct od_program *p, int v, void *data, struct od_err *err) {
  if (v < 0 || v >= p->g->n_values) return od_err_set(err, OD_ERR_INVALID_ARG, "bind: no value %d", v);
  struct slot *s = &p->slots[v];
  if (!s->requires_grad)
    return od_err_set(err, OD_ERR_INVALID_ARG, "bind: '%s' takes no gradient", p->g->values[v].name);
  s->grad = s->t;
  s->grad.data = data;
  s->grad_bound = true;
  return OD_OK;
}

const struct od_tensor *od_program_grad(const struct od_program *p, int v) {
  if (v < 0 || v >= p->g->n_values || !p->slots[v].requires_grad || !p->slots[v].grad.data) return NULL;
  return &p->slots[v].grad;
}

bool od_program_requires_grad(const struct od_program *p, int v) {
  return v >= 0 && v < p->g->n_values && p->slots[v].requires_grad;
}

/* Gradient buffers of values shaped at run time follow their current shape. */
static enum od_status dynamic_grads(struct od_program *p, struct od_err *err) {
  for (int v = 0; v < p->g->n_values; v++) {
    struct slot *s = &p->slots[v];
    if (!s->requires_grad || s->kind != SLOT_DYNAMIC || s->grad_bound) continue;
    size_t bytes = od_tensor_nbytes(&s->t);
    void *buf = realloc(s->grad.data, bytes ? bytes : 1);
    if (!buf) return od_err_set(err, OD_ERR_OOM, "out of memory for gradients");
    s->grad = s->t;
    s->grad.data = buf;
  }
  return OD_OK;
}

static enum od_status backward_node(struct od_program *p, int i, struct od_err *err) {
  struct prog_node *pn = &p->nodes[i];
  const struct od_node *n = pn->node;
  struct od_tensor *in[MAX_NODE_IO], *out[MAX_NODE_IO], *dout[MAX_NODE_IO], *din[MAX_NODE_IO];
  bool any_out = false, any_in = false;
  for (int o = 0; o < n->n_outputs; o++) {
    int v = n->outputs[o];
    out[o] = v >= 0 ? &p->slots[v].t : NULL;
    dout[o] = v >= 0 && p->slots[v].grad_reached ? &p->slots[v].grad : NULL;
    any_out |= dout[o] != NULL;
  }
  if (!any_out) return OD_OK;
  uint32_t no_grad = pn->op->k->no_grad_inputs;
  for (int k = 0; k < n->n_inputs; k++) {
    int v = n->inputs[k];
    in[k] = v >= 0 ? &p->slots[v].t : NULL;
    bool want = v >= 0 && p->slots[v].requires_grad && !(k < 32 && (no_grad >> k) & 1u);
    din[k] = want ? &p->slots[v].grad : NULL;
    any_in |= want;
  }
  if (!any_in) return OD_OK;
  /* a gradient buffer is zeroed when first touched (buffers are shared along the backward pass,
   * compile.c plan_grads); caller-bound ones are the caller's to zero. A CUDA backward that
   * declares OD_OP_BWD_FRESH writes a first-touched buffer instead (ctx.din_fresh): no zeroing
   * pass, one read less. */
  bool may_write = p->cuda && !pn->bwd_host && (pn->op->k->flags & OD_OP_BWD_FRESH);
  uint32_t fresh = 0;
  for (int k = 0; k < n->n_inputs; k++) {
    if (!din[k]) continue;
    struct slot *s = &p->slots[n->inputs[k]];
    if (s->grad_reached || s->grad_bound || s->kind == SLOT_DYNAMIC) continue;
    if (!s->grad.data) return od_err_set(err, OD_ERR_INTERNAL, "no gradient buffer for input %d", k);
    if (may_write && k < 32) fresh |= 1u << k; /* a later input reading the same value accumulates */
    else if (s->on_host || !p->cuda) memset(s->grad.data, 0, od_tensor_nbytes(&s->grad));
    else OD_TRY(p->dev->ops->zero(p->dev, s->grad.data, od_tensor_nbytes(&s->grad), err));
    s->grad_reached = true;
  }
  if (p->cuda && pn->bwd_host) {
    OD_TRY(od_bridge_backward(p, i, dout, din, err));
  } else {
    od_kernel_fn bwd = pn->op->k->backward[p->dev->kind];
    if (!bwd)
      return od_err_set(err, OD_ERR_UNSUPPORTED, "%s has no backward on %s, but a gradient must flow through it",
                        n->op_type, p->dev->name);
    struct od_kernel_ctx c = {.node = n, .attrs = pn->attrs, .n_in = n->n_inputs, .in = in, .n_out = n->n_outputs,
                              .out = out, .dout = dout, .din = din, .training = p->training, .dev = p->dev,
                              .pool = p->pool, .state = &pn->state, .din_fresh = fresh, .err = err};
    enum od_status st = bwd(&c);
    if (st == OD_ERR_UNSUPPORTED && p->cuda) { /* the CUDA backward declines this case: the host does it */
      pn->bwd_host = true;
      od_err_clear(err);
      for (int k = 0; k < n->n_inputs && k < 32; k++) /* the host accumulates: zero what was left unwritten */
        if ((fresh >> k) & 1u) OD_TRY(p->dev->ops->zero(p->dev, din[k]->data, od_tensor_nbytes(din[k]), err));
      st = od_bridge_backward(p, i, dout, din, err);
    }
    OD_TRY(st);
  }
  for (int k = 0; k < n->n_inputs; k++)
    if (din[k]) p->slots[n->inputs[k]].grad_reached = true;
  return OD_OK;
}

static enum od_status backward(struct od_program *p, int n_seeds, const int *seeds, const void *const *dys,
                               bool dys_on_device, struct od_err *err) {
  const struct od_graph *g = p->g;
  if (!p->backward) return od_err_set(err, OD_ERR_INVALID_ARG, "backward: the program was compiled without autograd");
  for (int k = 0; k < n_seeds; k++) {
    int v = seeds[k];
    if (v < 0 || v >= g->n_values || !p->slots[v].requires_grad)
      return od_err_set(err, OD_ERR_INVALID_ARG, "backward: '%s' does not depend on any trainable value",
                        v >= 0 && v < g->n_values ? g->values[v].name : "?");
    if (p->slots[v].kind != SLOT_DYNAMIC && !p->slots[v].grad_seedable)
      return od_err_set(err, OD_ERR_INVALID_ARG,
                        "backward: '%s' can seed the backward pass only if it is a graph output or kept "
                        "(od_compile_opts.keep)", g->values[v].name);
  }
  OD_TRY(dynamic_grads(p, err));
  for (int v = 0; v < g->n_values; v++) {
    struct slot *s = &p->slots[v];
    s->grad_reached = false;
    if (s->requires_grad && s->grad_keep && !s->grad_bound && s->grad.data) { /* readable after: zero now */
      if (!p->cuda) memset(s->grad.data, 0, od_tensor_nbytes(&s->grad));
      else OD_TRY(p->dev->ops->zero(p->dev, s->grad.data, od_tensor_nbytes(&s->grad), err));
      s->grad_reached = true;
    }
    if (s->requires_grad && s->kind == SLOT_DYNAMIC && !s->grad_bound) {
      if (s->on_host) memset(s->grad.data, 0, od_tensor_nbytes(&s->t));
      else OD_TRY(p->dev->ops->zero(p->dev, s->grad.data, od_tensor_nbytes(&s->t), err));
    }
  }
  for (int k = 0; k < n_seeds; k++) {
    struct slot *seed = &p->slots[seeds[k]];
    const void *dy = dys ? dys[k] : NULL;
    if (dy && dys_on_device) {
      if (seed->on_host) return od_err_set(err, OD_ERR_INVALID_ARG, "backward: '%s' lives on the host", g->values[seeds[k]].name);
      OD_TRY(p->dev->ops->copy(p->dev, seed->grad.data, dy, od_tensor_nbytes(&seed->t), err));
    } else if (dy && p->cuda && seed->on_host) {
      memcpy(seed->grad.data, dy, od_tensor_nbytes(&seed->t));
    } else if (dy) {
      OD_TRY(p->dev->ops->to_device(p->dev, seed->grad.data, dy, od_tensor_nbytes(&seed->t), err));
    } else if (!p->cuda || seed->on_host) {
      int64_t n = od_tensor_numel(&seed->t);
      for (int64_t e = 0; e < n; e++) od_tensor_set_f64(&seed->grad, e, 1.0);
    } else if (seed->t.dtype == OD_DTYPE_FLOAT) {
      OD_TRY(p->dev->ops->fill_f32(p->dev, seed->grad.data, (size_t)od_tensor_numel(&seed->t), 1.0f, err));
    } else {
      return od_err_set(err, OD_ERR_UNSUPPORTED, "backward: seeding '%s' (%s) with ones on %s: pass its gradient",
                        g->values[seeds[k]].name, od_dtype_name(seed->t.dtype), p->dev->name);
    }
    seed->grad_reached = true;
  }
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    if (p->nodes[i].folded || p->nodes[i].skipped || !p->nodes[i].op) continue;
    enum od_status st = backward_node(p, i, err);
    if (st != OD_OK) return od_program_node_error(p->nodes[i].node, err);
  }
  return OD_OK;
}

enum od_status od_program_backward(struct od_program *p, int n_seeds, const int *seeds, const void *const *dys,
                                   struct od_err *err) {
  return backward(p, n_seeds, seeds, dys, false, err);
}

enum od_status od_program_backward_device(struct od_program *p, int n_seeds, const int *seeds,
                                          const void *const *dys, struct od_err *err) {
  return backward(p, n_seeds, seeds, dys, true, err);
}

int od_program_missing_backward(const struct od_program *p, int *nodes, int max) {
  int count = 0;
  for (int i = 0; i < p->g->n_nodes; i++) {
    const struct prog_node *pn = &p->nodes[i];
    if (pn->folded || pn->skipped || !pn->op) continue;
    /* a CUDA program can always fall back on the CPU backward (host bridge) */
    if (pn->op->k->backward[p->dev->kind] || (p->cuda && pn->op->k->backward[OD_DEVICE_CPU])) continue;
    const struct od_node *n = pn->node;
    bool needs = false;
    for (int k = 0; k < n->n_inputs; k++) {
      int v = n->inputs[k];
      needs |= v >= 0 && p->slots[v].requires_grad && !(k < 32 && (pn->op->k->no_grad_inputs >> k) & 1u);
    }
    if (!needs) continue;
    if (count < max) nodes[count] = i;
    count++;
  }
  return count;
}

size_t od_program_grad_bytes(const struct od_program *p) { return p ? p->grad_bytes : 0; }
