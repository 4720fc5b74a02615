/* runtime/exec.h: compiling a graph for given input shapes, and running it.
 *
 * Compile resolves every node to a kernel (ops/op.h, opset rule), parses attributes, infers
 * shapes and dtypes for the given input shapes (symbolic dims bound then), folds constant
 * subgraphs (Shape/Gather/Concat/Unsqueeze chains that exporters emit) at compile time, and plans
 * one arena: each activation gets an offset, reusing memory after its last use. Nodes whose output
 * shape depends on run-time values (NonZero, NonMaxSuppression, ...) and everything downstream of
 * them are shaped and allocated at run time instead.
 *
 * A program runs on one device; the CPU device is the reference. On a CUDA device each node runs
 * there when its op has a CUDA kernel for it, else on the CPU through the host bridge (copies in
 * and out): see runtime/placement.c and od_program_node_on_host. */
#ifndef OD_EXEC_H
#define OD_EXEC_H

#include <stddef.h>

#include "runtime/device.h"
#include "runtime/graph.h"
#include "runtime/pool.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

struct od_program;

struct od_compile_opts {
  struct od_device *dev;    /* required */
  struct od_pool *pool;     /* CPU worker threads; NULL = serial */
  bool training;            /* BatchNormalization/Dropout in training mode (batch statistics; running
                               mean/var inputs updated in place) */
  /* Autograd (all optional). trainable[v] != 0 marks value v (an initializer or Constant) as a
   * parameter: never folded, and its gradient is computed by od_program_backward. grad_wanted[v]
   * asks for the gradient of any other value too (e.g. a graph input, for gradient checks). When
   * either is given, every activation is kept for the backward pass (no memory reuse). */
  const uint8_t *trainable;   /* g->n_values flags, or NULL */
  const uint8_t *grad_wanted; /* g->n_values flags, or NULL */
  /* keep[v] != 0: value v stays readable after a run (od_program_value). When keep is given the
   * program is sliced to it: only the nodes these values need are compiled and run (the graph
   * outputs are not computed unless kept), so a teacher runs only up to the paired tensors and
   * a student's post-processing (NMS) is left out of training. */
  const uint8_t *keep;
  /* CUDA devices: a device copy of g->param_data (same layout, od_graph_param_upload) shared by
   * several programs of one graph, so that in-place updates (BatchNormalization running
   * statistics) are seen by all of them. NULL: the program uploads its own copy. */
  void *param_mirror;
};

/* Compiles g for inputs of the given dtypes and shapes (one per g->inputs[i], in order; data is
 * ignored). The graph must outlive the program. On failure err names the node. */
enum od_status od_program_compile(const struct od_graph *g, const struct od_tensor *inputs,
                                  const struct od_compile_opts *opts, struct od_program **out,
                                  struct od_err *err);

/* Runs the program on inputs with the compiled shapes; data are host pointers (copied to the device
 * first on a CUDA device). */
enum od_status od_program_run(struct od_program *p, const struct od_tensor *inputs, struct od_err *err);

/* Runs with the inputs as last bound by od_program_bind_value (device pointers on a CUDA device):
 * no copy. */
enum od_status od_program_run_bound(struct od_program *p, struct od_err *err);

/* A host view of value v after a run (a copy into a program-owned buffer on a CUDA device, valid
 * until the next run; the value itself on the CPU). NULL with err set when v is not readable. */
const struct od_tensor *od_program_host_value(struct od_program *p, int value_id, struct od_err *err);

/* The same for the gradient of v after od_program_backward. */
const struct od_tensor *od_program_host_grad(struct od_program *p, int value_id, struct od_err *err);

/* Whether node i runs on the host (the CPU, or the host bridge of a CUDA program), and why
 * (NULL: no reason recorded, e.g. a CPU program). */
bool od_program_node_on_host(const struct od_program *p, int node, const char **why);

/* Whether every running node (and, for a backward program, every backward) runs on the device:
 * a step made of such programs can be captured as a CUDA graph (no host work, no synchronisation,
 * once the first run has built the kernels' state). */
bool od_program_all_on_device(const struct od_program *p);

/* Device copy of a graph's parameter block for od_compile_opts.param_mirror; download copies it
 * back (BatchNormalization running statistics updated on the device, before export). */
enum od_status od_graph_param_upload(const struct od_graph *g, struct od_device *dev, void **mirror,
                                     struct od_err *err);
enum od_status od_graph_param_download(struct od_graph *g, struct od_device *dev, const void *mirror,
                                       struct od_err *err);

/* Points value v (a parameter, or an input) at caller-owned memory of the same dtype and shape,
 * e.g. the trainer's parameter block (device memory on a CUDA device). Stays bound until rebound. */
enum od_status od_program_bind_value(struct od_program *p, int value_id, void *data, struct od_err *err);

/* Points the gradient of value v at caller-owned memory (e.g. the trainer's gradient block). The
 * caller zeroes it; od_program_backward only accumulates (+=) into bound gradients. */
enum od_status od_program_bind_grad(struct od_program *p, int value_id, void *data, struct od_err *err);

/* Backward pass after od_program_run: seeds the gradient of each value seeds[i] with dys[i] (host
 * data of its shape and dtype; dys NULL or dys[i] NULL means all ones, e.g. for a scalar loss),
 * zeroes the internal gradient buffers, and runs each node's backward in reverse order. Fails
 * naming the first node on the path whose op has no backward. */
enum od_status od_program_backward(struct od_program *p, int n_seeds, const int *seeds, const void *const *dys,
                                   struct od_err *err);

/* The same with each dys[i] in the program's device memory (the trainer's losses computed there). */
enum od_status od_program_backward_device(struct od_program *p, int n_seeds, const int *seeds,
                                          const void *const *dys, struct od_err *err);

/* The gradient of value v after od_program_backward (NULL when v takes no gradient). */
const struct od_tensor *od_program_grad(const struct od_program *p, int value_id);

/* Whether value v takes a gradient (it depends on a trainable or grad_wanted value). Whether every
 * op on the way has a backward is checked when od_program_backward runs. */
bool od_program_requires_grad(const struct od_program *p, int value_id);

/* Nodes that a gradient must flow through (an output takes a gradient) but whose op has no
 * backward on the program's device: returns how many, and writes up to max node ids. */
int od_program_missing_backward(const struct od_program *p, int *nodes, int max);

/* Bytes of the internal gradient buffers (backward programs). */
size_t od_program_grad_bytes(const struct od_program *p);

/* Graph output i after a run (g->outputs[i]); its data is device memory (host memory on the CPU
 * device; od_program_host_value gives a host view on any device). */
const struct od_tensor *od_program_output(const struct od_program *p, int i);

/* Any value by id after a run (NULL if its memory was reused: keep it with od_compile_opts.keep). */
const struct od_tensor *od_program_value(const struct od_program *p, int value_id);

/* Planned bytes of the activation arena (the peak), and how many nodes were folded at compile time. */
size_t od_program_arena_bytes(const struct od_program *p);

/* Profiling: with node_ms non-NULL (one double per graph node, caller-owned), every later
 * od_program_run adds each node's wall time in milliseconds to node_ms[node]; NULL turns it off. */
void od_program_profile(struct od_program *p, double *node_ms);

/* Whether node i runs (it was neither folded at compile time nor sliced away). */
bool od_program_node_runs(const struct od_program *p, int node);

/* The dtype and shape of value v as compiled or last run (data NULL); false when v is not part of
 * the program. Unlike od_program_value it answers for values whose memory was reused. */
bool od_program_shape(const struct od_program *p, int value_id, struct od_tensor *out);
int od_program_folded_nodes(const struct od_program *p);

void od_program_destroy(struct od_program *p);

#endif
