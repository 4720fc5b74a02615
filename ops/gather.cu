/* ops/gather.cu: CUDA Gather. Y[o, j, k] = X[o, idx[j], k] with o over the dims before the axis,
 * j over the indices (int32 or int64, device memory; negative ones count from the back) and k over
 * the dims after it. Forward: one thread per output unit in a grid-stride loop; the unit is 16, 8
 * or 4 bytes when the inner rows allow it (whole rows of NCHW planes), else one element, so any
 * dtype of 1, 2, 4 or 8 bytes works. An index out of range cannot be reported without waiting for
 * the device: its output row is zero (the CPU kernel fails instead). Backward (float):
 * dX[o, idx[j], k] += dY[o, j, k] with atomicAdd, since indices may repeat (a fresh dX, ops/op.h
 * din_fresh, is zeroed first: rows no index names get nothing). */
#include "ops/cuda/index.cuh"

extern "C" {
#include "ops/attr.h"
#include "ops/gather.h"
}

struct gather_geo {
  od_dim inner, n_idx;
  int64_t d;
};

/* The index of position j, normalised; -1 when out of range. */
template <typename I>
static __device__ inline int64_t gather_index(const I *idx, uint64_t j, int64_t d) {
  int64_t v = (int64_t)idx[j];
  if (v < 0) v += d;
  return v >= 0 && v < d ? v : -1;
}

template <typename T, typename I, bool WIDE>
static __global__ void gather_fwd(gather_geo g, uint64_t n, T *y, const T *x, const I *idx) {
  for (uint64_t t = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; t < n; t += (uint64_t)blockDim.x * gridDim.x) {
    uint64_t r = od_dim_div<WIDE>(g.inner, t), k = t - r * g.inner.d;
    uint64_t o = od_dim_div<WIDE>(g.n_idx, r), j = r - o * g.n_idx.d;
    int64_t v = gather_index(idx, j, g.d);
    if (v < 0) y[t] = T{};
    else y[t] = x[((int64_t)o * g.d + v) * (int64_t)g.inner.d + (int64_t)k];
  }
}

template <typename I, bool WIDE>
static __global__ void gather_bwd(gather_geo g, uint64_t n, float *dx, const float *dy, const I *idx) {
  for (uint64_t t = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; t < n; t += (uint64_t)blockDim.x * gridDim.x) {
    uint64_t r = od_dim_div<WIDE>(g.inner, t), k = t - r * g.inner.d;
    uint64_t o = od_dim_div<WIDE>(g.n_idx, r), j = r - o * g.n_idx.d;
    int64_t v = gather_index(idx, j, g.d);
    if (v >= 0) atomicAdd(dx + ((int64_t)o * g.d + v) * (int64_t)g.inner.d + (int64_t)k, dy[t]);
  }
}

/* axis, outer and inner (elements) of data X. */
static enum od_status gather_geometry(struct od_kernel_ctx *ctx, const struct od_tensor *X, const struct od_tensor *I,
                                      int *axis, int64_t *outer, int64_t *inner) {
  const struct gather_attrs *a = (const struct gather_attrs *)ctx->attrs;
  OD_TRY(od_axis_normalize(a->axis, X->rank, "attribute 'axis'", axis, ctx->err));
  if (I->dtype != OD_DTYPE_INT64 && I->dtype != OD_DTYPE_INT32)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "input 'indices' must be int32 or int64, not %s", od_dtype_name(I->dtype));
  *outer = *inner = 1;
  for (int k = 0; k < *axis; k++) *outer *= X->dims[k];
  for (int k = *axis + 1; k < X->rank; k++) *inner *= X->dims[k];
  return OD_OK;
}

template <typename T, typename I>
static enum od_status gather_launch(struct od_kernel_ctx *ctx, gather_geo g, int64_t n, void *y, const void *x,
                                    const void *idx) {
  cudaStream_t st = od_cuda_stream(ctx->dev);
  if (od_idx_wide(n))
    OD_LAUNCH((gather_fwd<T, I, true>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(g, (uint64_t)n, (T *)y, (const T *)x,
                                                                                (const I *)idx);
  else
    OD_LAUNCH((gather_fwd<T, I, false>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(g, (uint64_t)n, (T *)y, (const T *)x,
                                                                                 (const I *)idx);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

template <typename I>
static enum od_status gather_by_unit(struct od_kernel_ctx *ctx, size_t unit, gather_geo g, int64_t n, void *y,
                                     const void *x, const void *idx) {
  switch (unit) {
    case 1: return gather_launch<uint8_t, I>(ctx, g, n, y, x, idx);
    case 2: return gather_launch<uint16_t, I>(ctx, g, n, y, x, idx);
    case 4: return gather_launch<uint32_t, I>(ctx, g, n, y, x, idx);
    case 8: return gather_launch<uint64_t, I>(ctx, g, n, y, x, idx);
    case 16: return gather_launch<od_u128, I>(ctx, g, n, y, x, idx);
  }
  return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "elements of %zu bytes", unit);
}

enum od_status od_cuda_gather_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0], *I = ctx->in[1];
  struct od_tensor *Y = ctx->out[0];
  int axis;
  int64_t outer, inner;
  OD_TRY(gather_geometry(ctx, X, I, &axis, &outer, &inner));
  int64_t n_idx = od_tensor_numel(I);
  if (od_tensor_numel(Y) == 0) return OD_OK;
  /* the widest unit that divides the rows and the addresses */
  size_t es = od_dtype_size(X->dtype), unit = es;
  for (size_t u = 16; u > es; u /= 2)
    if ((size_t)inner * es % u == 0 && (uintptr_t)X->data % u == 0 && (uintptr_t)Y->data % u == 0) {
      unit = u;
      break;
    }
  int64_t units = inner * (int64_t)es / (int64_t)unit;
  gather_geo g = {od_dim_make(units), od_dim_make(n_idx), X->dims[axis]};
  int64_t n = outer * n_idx * units;
  if (I->dtype == OD_DTYPE_INT64) return gather_by_unit<int64_t>(ctx, unit, g, n, Y->data, X->data, I->data);
  return gather_by_unit<int32_t>(ctx, unit, g, n, Y->data, X->data, I->data);
}

enum od_status od_cuda_gather_bwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0], *I = ctx->in[1];
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Gather backward on CUDA: float only");
  int axis;
  int64_t outer, inner;
  OD_TRY(gather_geometry(ctx, X, I, &axis, &outer, &inner));
  int64_t n_idx = od_tensor_numel(I), n = outer * n_idx * inner;
  OD_TRY(od_cuda_fresh_zero(ctx, 1u));
  if (n == 0) return OD_OK;
  gather_geo g = {od_dim_make(inner), od_dim_make(n_idx), X->dims[axis]};
  cudaStream_t st = od_cuda_stream(ctx->dev);
  float *dx = (float *)dX->data;
  const float *dy = (const float *)dY->data;
  bool wide = od_idx_wide(n);
  if (I->dtype == OD_DTYPE_INT64) {
    const int64_t *idx = (const int64_t *)I->data;
    if (wide) OD_LAUNCH((gather_bwd<int64_t, true>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(g, (uint64_t)n, dx, dy, idx);
    else OD_LAUNCH((gather_bwd<int64_t, false>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(g, (uint64_t)n, dx, dy, idx);
  } else {
    const int32_t *idx = (const int32_t *)I->data;
    if (wide) OD_LAUNCH((gather_bwd<int32_t, true>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(g, (uint64_t)n, dx, dy, idx);
    else OD_LAUNCH((gather_bwd<int32_t, false>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(g, (uint64_t)n, dx, dy, idx);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}
