/* ops/global_pool.h: GlobalAveragePool/GlobalMaxPool's parsed attributes, shared by the CPU
 * kernels (ops/global_pool.c) and the CUDA ones (ops/global_pool.cu). */
#ifndef OD_OPS_GLOBAL_POOL_H
#define OD_OPS_GLOBAL_POOL_H

#include <stdbool.h>

struct global_pool_attrs {
  bool is_max;
};

#endif
