/* ops/depth_space.h: DepthToSpace/SpaceToDepth's parsed attributes (the CPU kernel in ops/depth_space.c and the CUDA one in ops/depth_space.cu). */
#ifndef OD_OPS_DEPTH_SPACE_H
#define OD_OPS_DEPTH_SPACE_H

#include <stdbool.h>
#include <stdint.h>

struct depth_space_attrs {
  int64_t blocksize;
  bool crd; /* DepthToSpace mode CRD */
};

#endif
