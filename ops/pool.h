/* ops/pool.h: MaxPool/AveragePool's parsed attributes and window geometry, shared by the CPU
 * kernels (ops/pool.c, where the geometry is described) and the CUDA ones (ops/pool.cu). */
#ifndef OD_OPS_POOL_H
#define OD_OPS_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/status.h"
#include "runtime/tensor.h"

#define POOL_MAX_SPATIAL 3

enum pool_auto_pad { POOL_NOTSET, POOL_VALID, POOL_SAME_UPPER, POOL_SAME_LOWER };

struct pool_attrs {
  bool is_max;
  int n;                                      /* spatial dims (length of kernel_shape) */
  int64_t kernel[POOL_MAX_SPATIAL];
  int64_t strides[POOL_MAX_SPATIAL];
  int64_t dilations[POOL_MAX_SPATIAL];
  int64_t pads[2 * POOL_MAX_SPATIAL];         /* begins then ends, as in the attribute */
  enum pool_auto_pad auto_pad;
  int64_t ceil_mode;
  int64_t count_include_pad;
  int64_t storage_order;
};

/* One spatial dim's geometry: input size, output size, kernel, stride, dilation, pads. */
struct pool_dim {
  int64_t in, out, k, s, d, pb, pe;
};

/* The geometry of X under the attributes: g[0..2], the spatial dims right-aligned (missing leading
 * dims have size 1 and kernel 1). Fails with OD_ERR_SHAPE on a wrong rank or a window larger than
 * the padded input. */
enum od_status pool_geometry(const struct pool_attrs *a, const struct od_tensor *x, struct pool_dim g[POOL_MAX_SPATIAL],
                             struct od_err *err);

#endif
