/* ops/global_pool.cu: CUDA GlobalAveragePool and GlobalMaxPool, forward and backward, float32
 * (semantics of ops/global_pool.c: the mean / max over each (n, c) plane of P positions).
 *
 * Planes of at least GP_BLOCK_MIN positions: a block per plane (grid-stride over planes), threads
 * striding the plane (coalesced), a shared-memory tree for the sum / max / argmax. Smaller planes:
 * a thread per plane. Backward: GlobalAveragePool adds dY / P to the plane (2-D grid: plane chunks
 * x planes, or flat for small planes); GlobalMaxPool finds the plane's first maximum again (as the
 * CPU: the smallest position on ties) and adds dY there. A fresh dX (ops/op.h din_fresh) is
 * written instead: dY / P stored, or the whole plane stored (dY at the maximum, 0 elsewhere).
 * Sums are float32. */
#include "ops/cuda/reduce.cuh"

extern "C" {
#include "ops/global_pool.h"
}

#define GP_BLOCK_MIN 128

static __global__ void gp_fwd_block_kernel(const float *x, float *y, int64_t planes, int64_t P, bool is_max) {
  __shared__ float sh[OD_RED_THREADS];
  for (int64_t pl = blockIdx.x; pl < planes; pl += gridDim.x) {
    const float *xp = x + pl * P;
    float acc = is_max ? -INFINITY : 0.f;
    for (int64_t i = threadIdx.x; i < P; i += blockDim.x) acc = is_max ? fmaxf(acc, xp[i]) : acc + xp[i];
    acc = is_max ? od_block_max_f32(acc, sh) : od_block_sum_f32(acc, sh);
    if (threadIdx.x == 0) y[pl] = is_max ? acc : acc / (float)P;
  }
}

static __global__ void gp_fwd_thread_kernel(const float *x, float *y, int64_t planes, int64_t P, bool is_max) {
  OD_GRID_LOOP(pl, planes) {
    const float *xp = x + pl * P;
    float acc = is_max ? -INFINITY : 0.f;
    for (int64_t i = 0; i < P; i++) acc = is_max ? fmaxf(acc, xp[i]) : acc + xp[i];
    y[pl] = is_max ? acc : (P ? acc / (float)P : NAN);
  }
}

/* dX[plane, best] += dY[plane], best the plane's first maximum (write: the plane stored, 0 but
 * at best). */
static __global__ void gp_max_bwd_block_kernel(const float *x, const float *dy, float *dx, int64_t planes, int64_t P,
                                               bool write) {
  __shared__ float shv[OD_RED_THREADS];
  __shared__ int64_t shp[OD_RED_THREADS];
  for (int64_t pl = blockIdx.x; pl < planes; pl += gridDim.x) {
    const float *xp = x + pl * P;
    float bv = 0.f;
    int64_t bp = -1;
    for (int64_t i = threadIdx.x; i < P; i += blockDim.x)
      if (bp < 0 || xp[i] > bv) {
        bv = xp[i];
        bp = i;
      }
    bp = od_block_argmax_f32(bv, bp, shv, shp);
    if (write) {
      for (int64_t i = threadIdx.x; i < P; i += blockDim.x) dx[pl * P + i] = i == bp ? dy[pl] : 0.f;
    } else if (threadIdx.x == 0 && bp >= 0) {
      dx[pl * P + bp] += dy[pl];
    }
  }
}

static __global__ void gp_max_bwd_thread_kernel(const float *x, const float *dy, float *dx, int64_t planes, int64_t P,
                                                bool write) {
  OD_GRID_LOOP(pl, planes) {
    const float *xp = x + pl * P;
    int64_t best = 0;
    for (int64_t i = 1; i < P; i++)
      if (xp[i] > xp[best]) best = i;
    if (write)
      for (int64_t i = 0; i < P; i++) dx[pl * P + i] = i == best ? dy[pl] : 0.f;
    else if (P)
      dx[pl * P + best] += dy[pl];
  }
}

/* dX[plane, :] += dY[plane] / P (write: =). */
static __global__ void gp_avg_bwd_rows_kernel(const float *dy, float *dx, int64_t planes, int64_t P, bool write) {
  for (int64_t pl = blockIdx.y; pl < planes; pl += gridDim.y) {
    float share = dy[pl] / (float)P;
    float *o = dx + pl * P;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < P; i += (int64_t)blockDim.x * gridDim.x)
      o[i] = write ? share : o[i] + share;
  }
}

static __global__ void gp_avg_bwd_flat_kernel(const float *dy, float *dx, int64_t P, int64_t total, bool write) {
  OD_GRID_LOOP(i, total) {
    float share = dy[i / P] / (float)P;
    dx[i] = write ? share : dx[i] + share;
  }
}

static od_status gp_check(od_kernel_ctx *ctx, int64_t *planes, int64_t *P) {
  const od_tensor *x = ctx->in[0];
  if (x->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "CUDA global pooling takes float32 only, not %s",
                      od_dtype_name(x->dtype));
  *planes = x->dims[0] * x->dims[1];
  *P = *planes ? od_tensor_numel(x) / *planes : 0;
  return OD_OK;
}

extern "C" od_status od_cuda_global_pool_fwd(od_kernel_ctx *ctx) {
  const global_pool_attrs *a = (const global_pool_attrs *)ctx->attrs;
  int64_t planes = 0, P = 0;
  OD_TRY(gp_check(ctx, &planes, &P));
  if (planes == 0) return OD_OK;
  cudaStream_t st = od_cuda_stream(ctx->dev);
  const float *x = (const float *)ctx->in[0]->data;
  float *y = (float *)ctx->out[0]->data;
  if (P >= GP_BLOCK_MIN)
    OD_LAUNCH(gp_fwd_block_kernel, od_red_blocks(planes, 65535), OD_RED_THREADS, st)(x, y, planes, P, a->is_max);
  else
    OD_LAUNCH(gp_fwd_thread_kernel, od_cuda_blocks(planes), OD_CUDA_THREADS, st)(x, y, planes, P, a->is_max);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

extern "C" od_status od_cuda_global_pool_bwd(od_kernel_ctx *ctx) {
  const global_pool_attrs *a = (const global_pool_attrs *)ctx->attrs;
  const od_tensor *dyt = ctx->dout[0];
  if (!dyt || !ctx->din[0]) return OD_OK;
  int64_t planes = 0, P = 0;
  OD_TRY(gp_check(ctx, &planes, &P));
  if (planes == 0 || P == 0) return OD_OK; /* dX is empty */
  cudaStream_t st = od_cuda_stream(ctx->dev);
  const float *x = (const float *)ctx->in[0]->data, *dy = (const float *)dyt->data;
  float *dx = (float *)ctx->din[0]->data;
  bool w = od_cuda_fresh(ctx, 0);
  if (a->is_max) {
    if (P >= GP_BLOCK_MIN)
      OD_LAUNCH(gp_max_bwd_block_kernel, od_red_blocks(planes, 65535), OD_RED_THREADS, st)(x, dy, dx, planes, P, w);
    else
      OD_LAUNCH(gp_max_bwd_thread_kernel, od_cuda_blocks(planes), OD_CUDA_THREADS, st)(x, dy, dx, planes, P, w);
  } else if (P >= 64) {
    dim3 grid((unsigned)((P + 4 * OD_CUDA_THREADS - 1) / (4 * OD_CUDA_THREADS)), od_red_blocks(planes, 65535));
    OD_LAUNCH(gp_avg_bwd_rows_kernel, grid, OD_CUDA_THREADS, st)(dy, dx, planes, P, w);
  } else {
    OD_LAUNCH(gp_avg_bwd_flat_kernel, od_cuda_blocks(planes * P), OD_CUDA_THREADS, st)(dy, dx, P, planes * P, w);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}
