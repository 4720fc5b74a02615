/* ops/gather.h: Gather's parsed attributes (the CPU kernel in ops/gather.c and the CUDA one in ops/gather.cu). */
#ifndef OD_OPS_GATHER_H
#define OD_OPS_GATHER_H

#include <stdbool.h>
#include <stdint.h>

struct gather_attrs {
  int64_t axis;
};

#endif
