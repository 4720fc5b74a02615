/* ops/cuda/common.cuh: what every CUDA op file (ops/<family>.cu) includes.
 *
 * The same .cu source builds two ways:
 *   - with nvcc for the GPU (OD_HAVE_CUDA), and
 *   - as plain C++ with OD_CUDA_EMU for the host emulation (ops/cuda/emu.h): CI has no GPU, so
 *     every kernel also runs there, thread by thread, against the CPU kernels (tests/cuda_parity).
 * To keep both working, kernels follow these rules:
 *   - launch only with OD_LAUNCH(kernel, grid, block, stream)(args...), then OD_CUDA_LAUNCHED(ctx);
 *   - static __shared__ arrays only (no dynamic shared memory), __syncthreads() for block
 *     cooperation, atomicAdd/atomicMax on float/int; no warp intrinsics (__shfl*, cooperative
 *     groups), no inline PTX, no texture objects;
 *   - math through the functions listed in emu.h (expf, logf, fmaxf, ...);
 *   - device memory only from ctx->dev->ops->alloc (in node state) or od_cuda_workspace;
 *   - host code never dereferences device pointers (the emulation makes device memory
 *     inaccessible outside kernels and copies, so a slip crashes the CI tests). */
#ifndef OD_CUDA_COMMON_CUH
#define OD_CUDA_COMMON_CUH

#include <stddef.h>
#include <stdint.h>

#ifdef OD_CUDA_EMU
#include "ops/cuda/emu.h"
#define OD_LAUNCH(kernel, grid, block, stream) od_emu_launcher((grid), (block), (stream), (kernel))
#else
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#define OD_LAUNCH(kernel, grid, block, stream) kernel<<<(grid), (block), 0, (stream)>>>
#endif

extern "C" {
#include "ops/op.h"
#include "runtime/devices/cuda_check.h"
#include "runtime/devices/cuda_impl.h"
}

/* Threads per block for simple grid-stride kernels, and the grid for n elements (capped: the
 * kernels loop). */
#define OD_CUDA_THREADS 256
static inline unsigned od_cuda_blocks(int64_t n) {
  int64_t b = (n + OD_CUDA_THREADS - 1) / OD_CUDA_THREADS;
  if (b < 1) b = 1;
  if (b > 65535) b = 65535;
  return (unsigned)b;
}

/* for (i = this thread's first element; i < n; i += all threads) */
#define OD_GRID_LOOP(i, n)                                                                     \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n);           \
       i += (int64_t)blockDim.x * gridDim.x)

/* After each launch: a failed launch becomes an error naming the statement (the executor adds the
 * node). */
#define OD_CUDA_LAUNCHED(ctx) OD_CUDA_TRY((ctx)->err, cudaGetLastError())

/* Fresh gradients (ops with OD_OP_BWD_FRESH, ops/op.h): where bit k of ctx->din_fresh is set,
 * din[k] holds garbage and the backward WRITES it (=) instead of accumulating (+=). */
static inline bool od_cuda_fresh(const struct od_kernel_ctx *ctx, int k) {
  return k >= 0 && k < 32 && k < ctx->n_in && ctx->din[k] && (ctx->din_fresh >> k & 1u);
}

/* Zeroes the fresh din[k] of mask and clears their bits (they then accumulate like the others):
 * for paths that can only accumulate (atomics, partial coverage) and for gradients the backward
 * adds nothing to. Asynchronous on the device's stream. */
static inline enum od_status od_cuda_fresh_zero(struct od_kernel_ctx *ctx, uint32_t mask) {
  for (int k = 0; k < ctx->n_in && k < 32; k++) {
    if (!(mask >> k & 1u) || !od_cuda_fresh(ctx, k)) continue;
    size_t bytes = od_tensor_nbytes(ctx->din[k]);
    if (bytes) OD_TRY(ctx->dev->ops->zero(ctx->dev, ctx->din[k]->data, bytes, ctx->err));
    ctx->din_fresh &= ~(1u << k);
  }
  return OD_OK;
}

/* For backwards that do not fill their gradients in input order: a fresh din that shares its
 * buffer with another din (the same value read twice; only the first reader has the bit) is
 * zeroed here, so that the other's accumulation cannot come before the write. */
static inline enum od_status od_cuda_fresh_unalias(struct od_kernel_ctx *ctx) {
  for (int k = 0; k < ctx->n_in && k < 32; k++) {
    if (!od_cuda_fresh(ctx, k)) continue;
    for (int j = 0; j < ctx->n_in; j++)
      if (j != k && ctx->din[j] && ctx->din[j]->data == ctx->din[k]->data) {
        OD_TRY(od_cuda_fresh_zero(ctx, 1u << k));
        break;
      }
  }
  return OD_OK;
}

#endif
