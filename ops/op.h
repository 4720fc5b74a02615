/* ops/op.h: the operator kernel interface and the lookup by opset.
 *
 * Each op file (ops/<op>.c) defines one or more `const struct od_op_kernels od_kernels_<sym>` and
 * ops/op_list.h lists them, one line per (domain, op type, since-version). For a node the runtime
 * takes the entry with the largest since-version <= the model's opset for the node's domain.
 *
 * Life of a node:
 *   parse(node, attrs)      once at compile time: attributes -> the op's own struct (attrs_size
 *                           bytes, zeroed before the call). Validate here; name the attribute.
 *   infer(ctx)              output dtypes and shapes from input dtypes and shapes. ctx->in[i].data
 *                           is a host pointer when the input's value is known (initializer,
 *                           Constant, folded, or at run time); NULL otherwise. An op whose output
 *                           shape depends on an unknown input value sets ctx->needs_values and
 *                           returns OD_OK: the executor calls infer again at run time with values.
 *   forward[dev](ctx)       computes outputs (already shaped and allocated) from inputs.
 *   backward[dev](ctx)      reads dout (and the saved in/out) and ACCUMULATES into din (+=).
 *                           din[i] is NULL where no gradient is wanted.
 * Kernels never allocate outputs and never free inputs; they may use malloc for CPU scratch.
 * Errors: return a status with a message; the executor prefixes "node 'name' (Op-opset)". */
#ifndef OD_OP_H
#define OD_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/device.h"
#include "runtime/graph.h"
#include "runtime/status.h"
#include "runtime/tensor.h"
#include "ops/cuda_ops.h"

struct od_pool;

/* Per-node state a kernel may keep between calls (e.g. a cuDNN algorithm chosen once per shape,
 * descriptors, device buffers). A kernel that needs it defines a struct whose first member is this
 * one and stores it in *ctx->state on first use; the program calls destroy when it is destroyed.
 * Forward and backward of one node share the same state. */
struct od_node_state {
  void (*destroy)(struct od_node_state *self, struct od_device *dev);
};

struct od_infer_ctx {
  const struct od_node *node;
  const void *attrs;                /* the parsed attributes */
  int n_in;                         /* == node->n_inputs */
  const struct od_tensor *in;       /* in[i].dtype == 0 for an omitted optional input */
  int n_out;                        /* == node->n_outputs */
  struct od_tensor *out;            /* set dtype, rank, dims of each output (data untouched) */
  bool needs_values;                /* set by infer: shape depends on values not known yet */
  struct od_err *err;
};

struct od_kernel_ctx {
  const struct od_node *node;
  const void *attrs;
  int n_in;
  struct od_tensor *const *in;      /* NULL for an omitted optional input */
  int n_out;
  struct od_tensor *const *out;     /* NULL for an omitted optional output */
  struct od_tensor *const *dout;    /* backward: gradient of each output, NULL where none flows */
  struct od_tensor *const *din;     /* backward: accumulate (+=) the gradient of each input here, NULL = not wanted */
  bool training;                    /* BatchNormalization/Dropout: training-mode semantics */
  struct od_device *dev;
  struct od_pool *pool;             /* CPU worker threads (may be NULL: run serially) */
  struct od_node_state **state;     /* this node's kernel state (NULL when the caller keeps none:
                                       a kernel then builds and destroys it within the call) */
  uint32_t din_fresh;               /* backward, ops with OD_OP_BWD_FRESH only: bit k set = din[k] holds
                                       no gradient yet (its contents are garbage): WRITE it (=) instead
                                       of accumulating. Where two inputs read the same value only the
                                       first has the bit; the later one accumulates onto it. */
  struct od_err *err;
};

typedef enum od_status (*od_parse_fn)(const struct od_node *node, void *attrs, struct od_err *err);
typedef enum od_status (*od_infer_fn)(struct od_infer_ctx *ctx);
typedef enum od_status (*od_kernel_fn)(struct od_kernel_ctx *ctx);
/* Which saved tensors a node's backward reads: returns a bit per input (1 = its data is read) and
 * sets *outputs when the outputs' data is read. Training programs release activations that no
 * backward reads (compile.c plan_arena), so an op that declares less saves memory; shapes stay
 * known either way. NULL: everything is read. */
typedef uint32_t (*od_bwd_reads_fn)(const struct od_node *node, const void *attrs, bool *outputs);
/* For ops whose backward reads no tensor data at all, only dY (Add, Sub, Concat, Reshape, ...). */
uint32_t od_bwd_reads_nothing(const struct od_node *node, const void *attrs, bool *outputs);
/* For ops whose backward reads neither its data input 0 nor the outputs, only the small inputs after
 * it (shape, axes, scales: Reshape, Squeeze, Resize, ...). */
uint32_t od_bwd_reads_shape_inputs(const struct od_node *node, const void *attrs, bool *outputs);
/* For ops whose backward reads the inputs but not the outputs (Conv, BatchNormalization, ...). */
uint32_t od_bwd_reads_inputs(const struct od_node *node, const void *attrs, bool *outputs);

enum od_op_flags {
  OD_OP_FOLDABLE = 1u << 0,   /* deterministic and cheap: evaluated at compile time when all inputs are known */
  OD_OP_SHAPE_ONLY = 1u << 1, /* output depends only on input shapes (Shape, Size): folded when shapes are known */
  OD_OP_BWD_FRESH = 1u << 2,  /* its CUDA backward honours od_kernel_ctx.din_fresh (writes fresh gradients) */
};

struct od_op_kernels {
  size_t attrs_size;                        /* bytes of the op's attribute struct (0: none) */
  od_parse_fn parse;                        /* NULL: no attributes to parse */
  od_infer_fn infer;                        /* required */
  od_kernel_fn forward[OD_DEVICE_COUNT];    /* NULL: not on this device */
  od_kernel_fn backward[OD_DEVICE_COUNT];   /* NULL: not differentiable (on this device) */
  uint32_t no_grad_inputs;                  /* bit i set: input i never takes a gradient (indices, shapes) */
  od_bwd_reads_fn bwd_reads;                /* what backward reads (NULL: every input and output) */
  unsigned flags;                           /* enum od_op_flags */
  const char *dtypes;                       /* for docs/supported-ops.md, e.g. "float, double, int64" */
};

/* A CUDA kernel slot: the function in a build with CUDA (or its host emulation, OD_CUDA_EMU), NULL
 * otherwise. CUDA kernels are declared in ops/cuda_ops.h and defined in ops/<family>.cu. */
#if defined(OD_HAVE_CUDA) || defined(OD_CUDA_EMU)
#define OD_CUDA_KERNEL(fn) fn
#else
#define OD_CUDA_KERNEL(fn) NULL
#endif

struct od_op {
  const char *domain;                       /* "" for ai.onnx */
  const char *op_type;
  int since;                                /* first opset version this entry implements */
  const struct od_op_kernels *k;
};

/* The entry for (domain, op_type) with the largest since <= opset, or NULL. */
const struct od_op *od_op_find(const char *domain, const char *op_type, int64_t opset);

/* Number of entries in the table and the i-th entry (for generated documentation). */
int od_op_count(void);
const struct od_op *od_op_at(int i);

#endif
