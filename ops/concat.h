/* ops/concat.h: Concat's parsed attributes (the CPU kernel in ops/concat.c and the CUDA one in ops/concat.cu). */
#ifndef OD_OPS_CONCAT_H
#define OD_OPS_CONCAT_H

#include <stdbool.h>
#include <stdint.h>

struct concat_attrs {
  int64_t axis;
};

#endif
