/* trainer/adapter.h: what sits between a student tensor and the loss when the shapes of a pair
 * differ ("adapter": "auto"): a trainable 1x1 convolution when the channel counts differ (weights
 * in the parameter block, never exported with the student), then a bilinear resize (half-pixel
 * centres, as PyTorch's align_corners=False) when the spatial sizes differ. Float32, NCHW (or
 * [N, C] for the 1x1 map alone). Forward writes the adapted tensor; backward accumulates into
 * the parameter gradients and into dS. */
#ifndef OD_ADAPTER_H
#define OD_ADAPTER_H

#include <stdbool.h>

#include "runtime/status.h"
#include "runtime/tensor.h"
#include "trainer/params.h"

struct od_adapter_plan {
  bool conv;             /* 1x1 conv Cs -> Ct (decided once: channels do not change with the input size) */
  bool resize;           /* bilinear (H, W) -> (Ht, Wt) on the last call (depends on the input size) */
  bool may_resize;       /* NCHW pair whose spatial sizes may differ: adapter not "none" */
  int w_param, b_param;  /* indices in the parameter block (conv) */
  int rank;              /* 4 (NCHW) or 2 (NC) */
  int64_t in_dims[4], mid_dims[4], out_dims[4]; /* of the last call */
  float *mid, *out;      /* forward buffers: after the conv, after the resize */
  float *dmid;           /* backward scratch */
  size_t mid_cap, dmid_cap, out_cap; /* floats allocated */
};

/* Decides what is needed to map student shape S to teacher shape T (mode: auto, none, conv1x1),
 * adds conv parameters (Kaiming-uniform init from seed) to ps under name_prefix, and allocates the
 * buffers. Fails naming both shapes when they cannot be paired (different batch or rank, or
 * differing shapes with adapter "none"). */
enum od_status od_adapter_plan(const struct od_tensor *S, const struct od_tensor *T, int mode, const char *name_prefix,
                               uint64_t seed, struct od_params *ps, struct od_adapter_plan *out, struct od_err *err);

/* True when the last forward changed nothing (the loss reads S directly). */
bool od_adapter_identity(const struct od_adapter_plan *a);

/* out = adapter(S) shaped like T (a tensor over the plan's own buffers, which grow as needed:
 * multi-scale training changes H and W every step). Fails when S and T cannot be mapped. */
enum od_status od_adapter_forward(struct od_adapter_plan *a, const struct od_params *ps, const struct od_tensor *S,
                                  const struct od_tensor *T, struct od_tensor *out, struct od_err *err);

/* Given dOut (gradient of the adapted tensor), accumulates into the conv parameters' gradients and
 * into dS. */
void od_adapter_backward(struct od_adapter_plan *a, struct od_params *ps, const struct od_tensor *S,
                         const float *dout, float *dS);

void od_adapter_free(struct od_adapter_plan *a);

#endif
