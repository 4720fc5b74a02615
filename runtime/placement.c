/* runtime/placement.c: where each node of a CUDA program runs, and moving its data to the device.
 *
 * Compile works on the host (shapes, folding); placement then:
 *   1. picks, per running node, the device or the host bridge (runtime/bridge.c): the device when
 *      the op has a CUDA forward, the node is shaped at compile time and its float tensors are
 *      float32; the reason is kept for inspect / --dry-run. A CUDA kernel that later answers
 *      OD_ERR_UNSUPPORTED moves its node to the host at run time (exec.c).
 *   2. points PARAM slots into a device copy of the graph's parameter block (the caller's shared
 *      copy, or one the program uploads), keeping the host pointer in slot.host;
 *   3. gives each graph input and each folded constant device memory in one block (constants
 *      uploaded now, their host data kept for host-run readers).
 * DYNAMIC slots (shaped at run time) stay in host memory; their nodes are host-run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/program.h"

#define ALIGN 256

static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

enum od_status od_graph_param_upload(const struct od_graph *g, struct od_device *dev, void **mirror,
                                     struct od_err *err) {
  *mirror = NULL;
  OD_TRY(dev->ops->alloc(dev, g->param_bytes ? g->param_bytes : ALIGN, mirror, err));
  if (g->param_bytes) {
    enum od_status st = dev->ops->to_device(dev, *mirror, g->param_data, g->param_bytes, err);
    if (st == OD_OK) st = dev->ops->sync(dev, err);
    if (st != OD_OK) {
      dev->ops->free(dev, *mirror);
      *mirror = NULL;
      return st;
    }
  }
  return OD_OK;
}

enum od_status od_graph_param_download(struct od_graph *g, struct od_device *dev, const void *mirror,
                                       struct od_err *err) {
  if (!g->param_bytes) return OD_OK;
  return dev->ops->to_host(dev, g->param_data, mirror, g->param_bytes, err);
}

static bool float32_only(const struct od_program *p, const struct od_node *n, const char **why) {
  for (int k = 0; k < n->n_inputs + n->n_outputs; k++) {
    int v = k < n->n_inputs ? n->inputs[k] : n->outputs[k - n->n_inputs];
    if (v < 0) continue;
    int dt = p->slots[v].t.dtype;
    if (od_dtype_is_float(dt) && dt != OD_DTYPE_FLOAT) {
      *why = "a float tensor is not float32";
      return false;
    }
  }
  return true;
}

static enum od_status set_why(struct prog_node *pn, const char *why, struct od_err *err) {
  pn->host = true;
  free(pn->host_why);
  pn->host_why = strdup(why);
  if (!pn->host_why) return od_err_set(err, OD_ERR_OOM, "out of memory");
  return OD_OK;
}

static enum od_status place_nodes(struct od_program *p, struct od_err *err) {
  for (int i = 0; i < p->g->n_nodes; i++) {
    struct prog_node *pn = &p->nodes[i];
    if (pn->folded || pn->skipped || !pn->op) continue;
    const char *why = NULL;
    if (pn->dynamic) why = "its output shape is known only at run time";
    else if (!pn->op->k->forward[OD_DEVICE_CUDA]) why = "no CUDA kernel for this op";
    else float32_only(p, pn->node, &why);
    if (why) OD_TRY(set_why(pn, why, err));
    /* backward: on the device when there is a CUDA backward and the forward runs there */
    pn->bwd_host = pn->host || !pn->op->k->backward[OD_DEVICE_CUDA];
  }
  return OD_OK;
}

/* Is slot v read by a node that runs (folded and sliced nodes do not count)? */
static void mark_read(const struct od_program *p, uint8_t *read) {
  for (int i = 0; i < p->g->n_nodes; i++) {
    const struct prog_node *pn = &p->nodes[i];
    if (pn->folded || pn->skipped) continue;
    for (int k = 0; k < pn->node->n_inputs; k++)
      if (pn->node->inputs[k] >= 0) read[pn->node->inputs[k]] = 1;
  }
  for (int o = 0; o < p->g->n_outputs; o++) read[p->g->outputs[o]] = 1;
}

enum od_status od_program_place(struct od_program *p, const struct od_compile_opts *opts, struct od_err *err) {
  const struct od_graph *g = p->g;
  struct od_device *dev = p->dev;
  OD_TRY(place_nodes(p, err));
  /* parameters: the shared device copy of the parameter block, or our own */
  if (opts->param_mirror) {
    p->mirror = opts->param_mirror;
  } else {
    void *m = NULL;
    OD_TRY(od_graph_param_upload(g, dev, &m, err));
    p->mirror = m;
    p->own_mirror = true;
  }
  uint8_t *read = calloc((size_t)g->n_values + 1, 1);
  if (!read) return od_err_set(err, OD_ERR_OOM, "out of memory");
  mark_read(p, read);
  /* one device block for inputs and folded constants that running nodes read */
  size_t total = ALIGN; /* the first ALIGN bytes: where empty values point */
  for (int v = 0; v < g->n_values; v++) {
    struct slot *s = &p->slots[v];
    if ((s->kind == SLOT_INPUT || s->kind == SLOT_CONST) && read[v]) total += align_up(od_tensor_nbytes(&s->t));
  }
  enum od_status st = dev->ops->alloc(dev, total, (void **)&p->dev_block, err);
  if (st != OD_OK) {
    free(read);
    return st;
  }
  p->dev_block_bytes = total;
  size_t off = ALIGN;
  for (int v = 0; v < g->n_values && st == OD_OK; v++) {
    struct slot *s = &p->slots[v];
    size_t bytes = od_tensor_nbytes(&s->t);
    switch (s->kind) {
      case SLOT_PARAM:
        s->host = s->t.data;
        if (s->t.data == (void *)p->empty || !g->param_data) s->t.data = p->dev_block;
        else s->t.data = p->mirror + ((uint8_t *)s->t.data - g->param_data);
        break;
      case SLOT_CONST:
        s->host = s->t.data; /* the folded host buffer: freed at destroy */
        if (!read[v]) {
          s->t.data = p->dev_block; /* nobody on the device reads it */
          break;
        }
        s->t.data = p->dev_block + off;
        if (bytes) st = dev->ops->to_device(dev, s->t.data, s->host, bytes, err);
        off += align_up(bytes);
        break;
      case SLOT_INPUT:
        if (!read[v]) break;
        s->t.data = p->dev_block + off;
        off += align_up(bytes);
        break;
      case SLOT_DYNAMIC:
        s->on_host = true;
        break;
      default:
        break;
    }
  }
  free(read);
  if (st == OD_OK) st = dev->ops->sync(dev, err); /* constants uploaded from host buffers */
  if (st == OD_OK) p->placed = true;
  return st;
}

void od_program_unplace(struct od_program *p) {
  if (!p->cuda) return;
  for (int v = 0; v < p->g->n_values; v++) {
    struct slot *s = &p->slots[v];
    free(s->stage);
    free(s->gstage);
    s->stage = s->gstage = NULL;
  }
  for (int i = 0; i < p->g->n_nodes; i++) {
    free(p->nodes[i].host_why);
    p->nodes[i].host_why = NULL;
  }
  if (p->dev_block) p->dev->ops->free(p->dev, p->dev_block);
  if (p->own_mirror && p->mirror) p->dev->ops->free(p->dev, p->mirror);
  p->dev_block = p->mirror = NULL;
}

bool od_program_node_on_host(const struct od_program *p, int node, const char **why) {
  if (why) *why = NULL;
  if (node < 0 || node >= p->g->n_nodes) return false;
  if (!p->cuda) return true;
  if (why) *why = p->nodes[node].host_why;
  return p->nodes[node].host;
}

bool od_program_all_on_device(const struct od_program *p) {
  if (!p->cuda) return false;
  for (int i = 0; i < p->g->n_nodes; i++) {
    const struct prog_node *pn = &p->nodes[i];
    if (pn->folded || pn->skipped || !pn->op) continue;
    if (pn->host || pn->dynamic) return false;
    if (!p->backward || !pn->bwd_host) continue;
    const struct od_node *n = pn->node;
    for (int k = 0; k < n->n_inputs; k++) /* a host backward matters only where a gradient flows */
      if (n->inputs[k] >= 0 && p->slots[n->inputs[k]].requires_grad && !(k < 32 && (pn->op->k->no_grad_inputs >> k) & 1u))
        return false;
  }
  return true;
}
