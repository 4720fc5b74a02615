/* runtime/bridge.c: running a node of a CUDA program on the CPU (see program.h).
 *
 * The node's CPU kernel sees host views of its tensors: values that live on the host (run-time
 * shaped ones) directly, folded constants through their host copy, everything else through the
 * slot's staging buffer (copied from the device first). After a forward the outputs are copied back
 * to the device; after a backward the input gradients (the kernel accumulated into the staged
 * copy of their current contents). Slow by design: it is the fallback for ops without a CUDA
 * kernel (post-processing such as NMS, index ops) and the reason inspect lists where nodes run. */
#include <stdlib.h>
#include <string.h>

#include "runtime/program.h"

#define MAX_NODE_IO 64

static enum od_status grow(void **buf, size_t *cap, size_t bytes, struct od_err *err) {
  if (*cap >= bytes && *buf) return OD_OK;
  void *b = realloc(*buf, bytes ? bytes : 1);
  if (!b) return od_err_set(err, OD_ERR_OOM, "out of memory for a %zu-byte host copy", bytes);
  *buf = b;
  *cap = bytes;
  return OD_OK;
}

enum od_status od_slot_host_view(struct od_program *p, int v, bool grad, struct od_tensor *out, struct od_err *err) {
  struct slot *s = &p->slots[v];
  const struct od_tensor *t = grad ? &s->grad : &s->t;
  *out = *t;
  if (!p->cuda || s->on_host) return OD_OK;
  size_t bytes = od_tensor_nbytes(t);
  if (!grad && s->kind == SLOT_CONST && s->host) {
    out->data = s->host;
    return OD_OK;
  }
  void **buf = grad ? &s->gstage : &s->stage;
  size_t *cap = grad ? &s->gstage_bytes : &s->stage_bytes;
  OD_TRY(grow(buf, cap, bytes, err));
  if (bytes) OD_TRY(p->dev->ops->to_host(p->dev, *buf, t->data, bytes, err));
  out->data = *buf;
  return OD_OK;
}

/* Host buffer for an output about to be written (no copy from the device). */
static enum od_status out_view(struct od_program *p, int v, struct od_tensor *out, struct od_err *err) {
  struct slot *s = &p->slots[v];
  *out = s->t;
  if (s->on_host) return OD_OK;
  OD_TRY(grow(&s->stage, &s->stage_bytes, od_tensor_nbytes(&s->t), err));
  out->data = s->stage;
  return OD_OK;
}

/* Shapes a run-time-shaped node from host views of its inputs and (re)allocates its host outputs. */
static enum od_status shape_now(struct od_program *p, int i, const struct od_tensor *in_h, struct od_err *err) {
  const struct prog_node *pn = &p->nodes[i];
  const struct od_node *n = pn->node;
  struct od_tensor out[MAX_NODE_IO];
  memset(out, 0, sizeof(struct od_tensor) * (size_t)n->n_outputs);
  struct od_infer_ctx c = {.node = n, .attrs = pn->attrs, .n_in = n->n_inputs, .in = in_h,
                           .n_out = n->n_outputs, .out = out, .err = err};
  OD_TRY(pn->op->k->infer(&c));
  if (c.needs_values)
    return od_err_set(err, OD_ERR_INTERNAL, "output shape still unknown with every input value present");
  for (int o = 0; o < n->n_outputs; o++) {
    int v = n->outputs[o];
    if (v < 0) continue;
    struct slot *s = &p->slots[v];
    if (!s->on_host) return od_err_set(err, OD_ERR_INTERNAL, "a run-time-shaped output lives on the device");
    size_t bytes = od_tensor_nbytes(&out[o]);
    void *buf = realloc(s->t.data, bytes ? bytes : 1);
    if (!buf) return od_err_set(err, OD_ERR_OOM, "cannot allocate %zu bytes for output %d", bytes, o);
    s->t = out[o];
    s->t.data = buf;
    s->nbytes = bytes;
  }
  return OD_OK;
}

enum od_status od_bridge_forward(struct od_program *p, int i, struct od_err *err) {
  struct prog_node *pn = &p->nodes[i];
  const struct od_node *n = pn->node;
  od_kernel_fn fwd = pn->op->k->forward[OD_DEVICE_CPU];
  if (!fwd) return od_err_set(err, OD_ERR_UNSUPPORTED, "no kernel for this op on %s or on the CPU", p->dev->name);
  if (n->n_inputs > MAX_NODE_IO || n->n_outputs > MAX_NODE_IO)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "more than %d inputs or outputs", MAX_NODE_IO);
  struct od_tensor in_h[MAX_NODE_IO], out_h[MAX_NODE_IO];
  struct od_tensor *in[MAX_NODE_IO], *out[MAX_NODE_IO];
  for (int k = 0; k < n->n_inputs; k++) {
    memset(&in_h[k], 0, sizeof in_h[k]);
    in[k] = NULL;
    if (n->inputs[k] < 0) continue;
    OD_TRY(od_slot_host_view(p, n->inputs[k], false, &in_h[k], err));
    in[k] = &in_h[k];
  }
  if (pn->dynamic) OD_TRY(shape_now(p, i, in_h, err));
  for (int o = 0; o < n->n_outputs; o++) {
    out[o] = NULL;
    if (n->outputs[o] < 0) continue;
    OD_TRY(out_view(p, n->outputs[o], &out_h[o], err));
    out[o] = &out_h[o];
  }
  struct od_kernel_ctx c = {.node = n, .attrs = pn->attrs, .n_in = n->n_inputs, .in = in, .n_out = n->n_outputs,
                            .out = out, .training = p->training, .dev = p->dev, .pool = p->pool,
                            .state = NULL, .err = err};
  OD_TRY(fwd(&c));
  for (int o = 0; o < n->n_outputs; o++) {
    int v = n->outputs[o];
    if (v < 0 || p->slots[v].on_host) continue;
    size_t bytes = od_tensor_nbytes(&p->slots[v].t);
    if (bytes) OD_TRY(p->dev->ops->to_device(p->dev, p->slots[v].t.data, out_h[o].data, bytes, err));
  }
  /* in-place updates of inputs (training BatchNormalization's running statistics) go back too */
  for (int k = 0; k < n->n_inputs; k++) {
    int v = n->inputs[k];
    if (v < 0 || p->slots[v].on_host || p->slots[v].kind != SLOT_PARAM || !p->training) continue;
    size_t bytes = od_tensor_nbytes(&p->slots[v].t);
    if (bytes) OD_TRY(p->dev->ops->to_device(p->dev, p->slots[v].t.data, in_h[k].data, bytes, err));
  }
  return OD_OK;
}

enum od_status od_bridge_backward(struct od_program *p, int i, struct od_tensor *const *dout,
                                  struct od_tensor *const *din, struct od_err *err) {
  struct prog_node *pn = &p->nodes[i];
  const struct od_node *n = pn->node;
  od_kernel_fn bwd = pn->op->k->backward[OD_DEVICE_CPU];
  if (!bwd)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s has no backward, but a gradient must flow through it", n->op_type);
  struct od_tensor in_h[MAX_NODE_IO], out_h[MAX_NODE_IO], dout_h[MAX_NODE_IO], din_h[MAX_NODE_IO];
  struct od_tensor *in[MAX_NODE_IO], *out[MAX_NODE_IO], *dout_p[MAX_NODE_IO], *din_p[MAX_NODE_IO];
  for (int k = 0; k < n->n_inputs; k++) {
    int v = n->inputs[k];
    in[k] = din_p[k] = NULL;
    if (v < 0) continue;
    OD_TRY(od_slot_host_view(p, v, false, &in_h[k], err));
    in[k] = &in_h[k];
    if (din[k]) {
      OD_TRY(od_slot_host_view(p, v, true, &din_h[k], err)); /* current contents: the kernel accumulates */
      din_p[k] = &din_h[k];
    }
  }
  for (int o = 0; o < n->n_outputs; o++) {
    int v = n->outputs[o];
    out[o] = dout_p[o] = NULL;
    if (v < 0) continue;
    OD_TRY(od_slot_host_view(p, v, false, &out_h[o], err));
    out[o] = &out_h[o];
    if (dout[o]) {
      OD_TRY(od_slot_host_view(p, v, true, &dout_h[o], err));
      dout_p[o] = &dout_h[o];
    }
  }
  struct od_kernel_ctx c = {.node = n, .attrs = pn->attrs, .n_in = n->n_inputs, .in = in, .n_out = n->n_outputs,
                            .out = out, .dout = dout_p, .din = din_p, .training = p->training, .dev = p->dev,
                            .pool = p->pool, .state = NULL, .err = err};
  OD_TRY(bwd(&c));
  for (int k = 0; k < n->n_inputs; k++) {
    int v = n->inputs[k];
    if (!din_p[k] || p->slots[v].on_host) continue;
    size_t bytes = od_tensor_nbytes(&p->slots[v].grad);
    if (bytes) OD_TRY(p->dev->ops->to_device(p->dev, p->slots[v].grad.data, din_h[k].data, bytes, err));
  }
  return OD_OK;
}
