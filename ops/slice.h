/* ops/slice.h: Slice's parsed attributes and plan (the CPU kernel in ops/slice.c and the CUDA one in
 * ops/slice.cu). */
#ifndef OD_OPS_SLICE_H
#define OD_OPS_SLICE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

struct slice_attrs { /* opset < 10 */
  int n_starts, n_ends, n_axes;
  bool has_axes;
  int64_t starts[OD_MAX_DIMS], ends[OD_MAX_DIMS], axes[OD_MAX_DIMS];
};

/* The effective slice of every axis of X: first index, step and count. */
struct slice_plan {
  int64_t start[OD_MAX_DIMS], step[OD_MAX_DIMS], count[OD_MAX_DIMS];
};

/* Fills plan from starts/ends/axes/steps (attributes or inputs: host values). *pending when an
 * input has no value yet. in[i] is NULL or has dtype 0 where omitted. */
enum od_status od_slice_make_plan(const struct od_node *node, const struct slice_attrs *a, const struct od_tensor *X,
                                  const struct od_tensor *const *in, int n_in, struct slice_plan *p, bool *pending,
                                  struct od_err *err);

#endif
