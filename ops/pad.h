/* ops/pad.h: Pad's parsed attributes and pad amounts (the CPU kernel in ops/pad.c and the CUDA one in
 * ops/pad.cu). */
#ifndef OD_OPS_PAD_H
#define OD_OPS_PAD_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

struct pad_attrs {
  enum pad_mode mode;
  /* opset < 11 */
  int n_pads;
  int64_t pads[2 * OD_MAX_DIMS];
  float value;
};

/* Begin and end pads of every axis of X (pb[k], pe[k]) from the attributes or the inputs (host
 * values). *pending when an input has no value yet. in[i] is NULL or has dtype 0 where omitted. */
enum od_status od_pad_amounts(const struct od_node *node, const struct pad_attrs *a, const struct od_tensor *X,
                              const struct od_tensor *const *in, int n_in, int64_t *pb, int64_t *pe, bool *pending,
                              struct od_err *err);

/* Output dims from the pads; errors for negative sizes and for non-constant modes with nothing left
 * to repeat. */
enum od_status od_pad_check(const struct pad_attrs *a, const struct od_tensor *X, const int64_t *pb, const int64_t *pe,
                            int64_t *out_dims, struct od_err *err);

#endif
