/* ops/split.h: Split's parsed attributes (the CPU kernel in ops/split.c and the CUDA one in ops/split.cu). */
#ifndef OD_OPS_SPLIT_H
#define OD_OPS_SPLIT_H

#include <stdbool.h>
#include <stdint.h>

struct split_attrs {
  int64_t axis;
  int64_t num_outputs;          /* opset 18; 0 when absent */
  int n_split;                  /* opset < 13: the split attribute */
  bool has_split;
  int64_t *split;               /* points into the node's attribute (lives as long as the graph) */
};

#endif
