/* trainer/params.h: the parameter block. Every trainable float tensor of the student (initializer
 * or paddle2onnx Constant) plus the adapters' weights live in one float array, with gradients and
 * optimizer state in the same layout, so zero-grad, the update and checkpoints are single loops.
 *
 * What is trainable: a float initializer or Constant that feeds a weight input, i.e. Conv and
 * ConvTranspose W and B, Gemm A/B/C, MatMul operands, Batch/Instance/LayerNormalization scale and
 * bias, PRelu slope, and a non-scalar operand of Add/Sub/Mul/Div (paddle2onnx's separate bias add
 * and scale). BatchNormalization mean and variance are state (updated by training-mode BN, not by
 * the optimizer); scalar constants of elementwise ops (e.g. the 3 and 6 of a lowered HardSwish)
 * and shape/index inputs are not parameters. Names matching a "freeze" glob stay fixed. Weight
 * decay is off for BatchNormalization scale/bias and for biases (rank-1 tensors), as in the
 * reference method. */
#ifndef OD_PARAMS_H
#define OD_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"

struct od_param {
  char *name;          /* the graph value's name, or "adapter.pairs[i].weight" */
  int value;           /* graph value id; -1 for adapter parameters */
  size_t offset;       /* in floats, into w/g (state uses offset * state_per_param) */
  size_t n;            /* element count */
  int rank;
  int64_t dims[OD_MAX_DIMS];
  bool decay;          /* weight decay applies */
  int n_uses;          /* how many node inputs read it (shared storage when > 1) */
};

struct od_params {
  struct od_param *p;
  int n;
  size_t total;        /* floats */
  float *w, *g, *state;
  int state_per_param;
  int n_frozen;        /* candidates left fixed by "freeze" */
};

/* Is input k of node n (reading value v) a weight input: a use that makes v trainable? */
bool od_params_weight_input(const struct od_node *n, int k, const struct od_value *v);

/* Picks the trainable parameters of g (see above), minus those whose name matches one of the
 * freeze globs, and copies their values from the graph. state_per_param: optimizer floats per
 * element. */
enum od_status od_params_from_graph(const struct od_graph *g, const char *const *freeze, int n_freeze,
                                    int state_per_param, struct od_params *out, struct od_err *err);

/* Adds an extra parameter (adapters) of the given shape, initialised to init (n floats) or zero. */
enum od_status od_params_add(struct od_params *ps, const char *name, int rank, const int64_t *dims, bool decay,
                             const float *init, int *index, struct od_err *err);

/* Copies the current values of the graph-backed parameters into the graph's parameter block
 * (before export or a checkpoint). */
void od_params_to_graph(const struct od_params *ps, struct od_graph *g);

void od_params_free(struct od_params *ps);

#endif
