/* ops/softmax.h: Softmax/LogSoftmax's parsed attributes and their (outer, n, inner) view, shared
 * by the CPU kernels (ops/softmax.c, where the opset semantics are described) and the CUDA ones
 * (ops/softmax.cu). */
#ifndef OD_OPS_SOFTMAX_H
#define OD_OPS_SOFTMAX_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/status.h"
#include "runtime/tensor.h"

struct softmax_attrs {
  int64_t axis;
  bool log;                     /* LogSoftmax */
  bool coerce_2d;               /* opset < 13 */
};

/* The (outer, n, inner) view of x for the attributes: each of the outer * inner lines of n elements
 * at stride inner is normalised. Fails with OD_ERR_SHAPE on an axis out of range. */
enum od_status softmax_view(const struct softmax_attrs *a, const struct od_tensor *x, int64_t *outer, int64_t *n,
                            int64_t *inner, struct od_err *err);

#endif
