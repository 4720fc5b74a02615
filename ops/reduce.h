/* ops/reduce.h: the Reduce* ops' parsed attributes and axes, shared by the CPU kernels
 * (ops/reduce.c, where the semantics are described) and the CUDA ones (ops/reduce.cu). */
#ifndef OD_OPS_REDUCE_H
#define OD_OPS_REDUCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

enum reduce_kind {
  REDUCE_SUM,
  REDUCE_MEAN,
  REDUCE_MAX,
  REDUCE_MIN,
  REDUCE_PROD,
  REDUCE_L1,
  REDUCE_L2,
  REDUCE_SUM_SQUARE,
  REDUCE_LOG_SUM,
  REDUCE_LOG_SUM_EXP,
};

struct reduce_attrs {
  enum reduce_kind kind;
  int64_t keepdims;
  int64_t noop_with_empty_axes;
  bool axes_input;              /* opset where axes is the second input */
  size_t n_axes;                /* from the attribute (old opsets) */
  int64_t axes[OD_MAX_DIMS];
};

/* Fills mask[d] (true = reduced) for an input of the given rank. axes_in is the axes input or NULL
 * when omitted; its data must be a host pointer. */
enum od_status reduce_mask(const struct reduce_attrs *a, int rank, const struct od_tensor *axes_in, bool *mask,
                           struct od_err *err);

#endif
