/* runtime/program.h: the inside of a compiled program, shared by compile.c and exec.c only. */
#ifndef OD_PROGRAM_H
#define OD_PROGRAM_H

#include "ops/op.h"
#include "runtime/exec.h"

enum slot_kind {
  SLOT_UNUSED = 0,   /* not reachable (omitted, or produced by nothing we run) */
  SLOT_PARAM,        /* initializer or Constant: points into the graph's parameter block */
  SLOT_INPUT,        /* a graph input: points at the caller's data during a run */
  SLOT_CONST,        /* folded at compile time: owns a host buffer */
  SLOT_ARENA,        /* planned activation: arena + offset */
  SLOT_DYNAMIC,      /* shaped at run time: owns a buffer allocated during the run */
};

struct slot {
  enum slot_kind kind;
  struct od_tensor t;  /* dtype, shape, data (data valid for PARAM/CONST always, others during a run) */
  bool shape_known;    /* shape and dtype known at compile time */
  size_t offset;       /* SLOT_ARENA */
  size_t nbytes;
  int last_use;        /* index of the last node that reads it (n_nodes for graph outputs) */
  bool trainable;      /* a parameter: never folded */
  bool requires_grad;  /* its gradient is computed by the backward pass */
  struct od_tensor grad; /* gradient (same dtype and shape); data in the grad arena or bound */
  bool grad_bound;     /* grad.data is caller-owned (od_program_bind_grad) */
  bool grad_reached;   /* during backward: a gradient has flowed into it */
  bool grad_seedable;  /* its gradient buffer is live from the start of backward (graph outputs, kept values) */
  bool grad_keep;      /* its gradient buffer is not shared: readable after backward (inputs, params) */
  /* Programs on a CUDA device (runtime/placement.c, runtime/bridge.c): */
  bool on_host;        /* the value lives in host memory (DYNAMIC slots; every slot on the CPU) */
  void *host;          /* host copy: the original data of a PARAM, the folded data of a CONST */
  void *stage;         /* host staging buffer (nbytes) for host-run nodes and host reads */
  void *gstage;        /* the same for the gradient */
  size_t stage_bytes, gstage_bytes;
  struct od_tensor hview, hgview; /* what od_program_host_value / host_grad hand out */
};

struct prog_node {
  const struct od_node *node;
  const struct od_op *op;  /* NULL for Constant nodes, whose value is already a parameter */
  void *attrs;
  bool folded;             /* evaluated at compile time */
  bool dynamic;            /* shaped at run time */
  bool skipped;            /* not needed for the kept values (sliced away) */
  bool host;               /* CUDA program: runs on the CPU through the host bridge */
  bool bwd_host;           /* CUDA program: its backward runs through the host bridge */
  char *host_why;          /* why it runs on the host (for inspect / --dry-run), or NULL */
  struct od_node_state *state; /* the kernel's per-node state (ops/op.h), or NULL */
};

struct od_program {
  const struct od_graph *g;
  struct od_device *dev;
  struct od_pool *pool;
  bool training;
  struct slot *slots;      /* one per graph value */
  struct prog_node *nodes; /* one per graph node, in graph order */
  uint8_t *arena;
  size_t arena_bytes;
  uint64_t empty[8];       /* where known empty values point: data == NULL means "not known" */
  bool backward;           /* compiled for autograd: activations kept */
  const uint8_t *keep;     /* values kept readable (caller's flags; only read during compile) */
  uint8_t *grad_arena;     /* internal gradient buffers (one per requires_grad value) */
  size_t grad_bytes;
  int folded;
  double *profile_ms;      /* od_program_profile: per-node wall time accumulated by runs, or NULL */
  /* CUDA programs (runtime/placement.c) */
  bool cuda;               /* runs on a non-CPU device */
  bool placed;             /* placement done: slots hold device pointers (before: host, for folding) */
  uint8_t *mirror;         /* device copy of g->param_data (PARAM slots point into it) */
  bool own_mirror;         /* allocated by the program (else the caller's, od_compile_opts.param_mirror) */
  uint8_t *dev_block;      /* device memory for inputs and folded constants */
  size_t dev_block_bytes;
};

/* Prefixes err with the node ("node 'conv1' (Conv-11)") and returns its status. */
enum od_status od_program_node_error(const struct od_node *n, struct od_err *err);

/* Infers the outputs of node i with the inputs' current slots (values where known); sets
 * *needs_values when the node must be shaped at run time. */
enum od_status od_program_infer_node(struct od_program *p, int i, bool *needs_values, struct od_err *err);

/* Runs node i's forward with the slots' current data: on the program's device, or through the host
 * bridge for a host-run node of a CUDA program. */
enum od_status od_program_forward_node(struct od_program *p, int i, struct od_err *err);

/* CUDA programs (runtime/placement.c): decides where each node runs and moves parameters, folded
 * constants and inputs to the device; called at the end of compile. */
enum od_status od_program_place(struct od_program *p, const struct od_compile_opts *opts, struct od_err *err);
void od_program_unplace(struct od_program *p); /* frees what placement allocated */

/* The host bridge (runtime/bridge.c): node i of a CUDA program run by its CPU kernel on host
 * copies of its tensors (shaped first when it is a run-time-shaped node); outputs (forward) or
 * input gradients (backward) copied back. */
enum od_status od_bridge_forward(struct od_program *p, int i, struct od_err *err);
enum od_status od_bridge_backward(struct od_program *p, int i, struct od_tensor *const *dout,
                                  struct od_tensor *const *din, struct od_err *err);

/* A host view of a slot's value (or gradient): the data itself when it lives on the host, else a
 * copy in the slot's staging buffer. */
enum od_status od_slot_host_view(struct od_program *p, int v, bool grad, struct od_tensor *out, struct od_err *err);

#endif
