/* ops/conv_depthwise.h: our CUDA kernels for depthwise Conv nodes (ops/conv_depthwise.cu), called by
 * ops/conv.cu before it turns to cuDNN, whose NCHW depthwise paths are slow.
 *
 * A node is "depthwise" here when X is float32 (N, C, H, W) or (N, C, L), group == C == M (W is
 * (C, 1, kh, kw), channel multiplier 1), every dilation is 1 and the kernel is at most 7 x 7; strides
 * and pads (begin and end, as ops/im2col.c resolves them, auto_pad included) may be anything the
 * CPU kernel accepts. Anything else, or the environment variable OD_CUDA_DEPTHWISE=0, leaves the
 * node to cuDNN.
 *
 * Each function sets *handled: false means nothing was done and no error was set (the caller runs
 * cuDNN); true means the node was computed (or failed: the returned status). The backward
 * ACCUMULATES into whichever of dX, dW, dB the executor asks for (ctx->din), or writes those that
 * ctx->din_fresh marks fresh. */
#ifndef OD_CONV_DEPTHWISE_H
#define OD_CONV_DEPTHWISE_H

#include <stdbool.h>

#include "ops/op.h"

#ifdef __cplusplus
extern "C" {
#endif

enum od_status od_cuda_depthwise_fwd(struct od_kernel_ctx *ctx, bool *handled);
enum od_status od_cuda_depthwise_bwd(struct od_kernel_ctx *ctx, bool *handled);

#ifdef __cplusplus
}
#endif

#endif
