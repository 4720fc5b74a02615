/* ops/pad.cu: CUDA Pad, every mode of ops/pad.c (constant, reflect, edge, wrap; negative pads
 * crop first). The pads come from the attributes or, from opset 11, from the 'pads'/'axes' device
 * tensors, read on the host once per node (od_pad_amounts on host copies, kept in the node
 * state); the constant_value input is read by the kernel itself (no host round trip).
 * Forward: one thread per output element; per axis the input index is the CPU's map
 * (pad_index: c0 + p inside the kept block, else by mode; -1 = the constant), computed inline.
 * Any dtype of 1, 2, 4 or 8 bytes. Backward (float): dX[map(o)] += dY[o]; plain stores in
 * constant mode (each input element is read once), atomicAdd in the other modes (edges are read
 * by several outputs); d(constant_value) = the sum of dY over the padded elements (per-block tree,
 * one atomicAdd per block). Fresh gradients (ops/op.h din_fresh): a constant-mode dX that no pad
 * crops is stored (every element is read once), any other fresh gradient is zeroed first. */
#include "ops/cuda/index.cuh"

extern "C" {
#include "ops/pad.h"
}

struct pad_geo {
  int rank, mode;
  od_dim dims[OD_MAX_DIMS];  /* output dims */
  int64_t xs[OD_MAX_DIMS];   /* input strides */
  int64_t b[OD_MAX_DIMS];    /* begin pad (>= 0) */
  int64_t c0[OD_MAX_DIMS];   /* first kept input index (the crop) */
  int64_t m[OD_MAX_DIMS];    /* kept length */
};

/* Input index read by padded position p (output index - begin pad) of one axis, -1 = constant. */
static __device__ inline int64_t pad_index(int mode, int64_t p, int64_t c0, int64_t m) {
  if (p >= 0 && p < m) return c0 + p;
  switch (mode) {
    case PAD_EDGE: return c0 + (p < 0 ? 0 : m - 1);
    case PAD_WRAP: return c0 + ((p % m) + m) % m;
    case PAD_REFLECT: {
      if (m == 1) return c0;
      int64_t period = 2 * (m - 1), q = ((p % period) + period) % period;
      return c0 + (q < m ? q : period - q);
    }
  }
  return -1;
}

/* Input offset of output element i, -1 when it reads the constant. */
template <bool WIDE>
static __device__ inline int64_t pad_src(const pad_geo &g, uint64_t i) {
  int64_t off = 0;
  bool outside = false;
  for (int k = g.rank - 1; k >= 0; k--) {
    uint64_t q = k ? od_dim_div<WIDE>(g.dims[k], i) : 0;
    int64_t o = (int64_t)(i - q * g.dims[k].d);
    i = q;
    int64_t x = pad_index(g.mode, o - g.b[k], g.c0[k], g.m[k]);
    if (x < 0) outside = true;
    off += x * g.xs[k];
  }
  return outside ? -1 : off;
}

template <typename T, bool WIDE>
static __global__ void pad_fwd(pad_geo g, uint64_t n, T *y, const T *x, T value, const T *cv) {
  T v = cv ? *cv : value;
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)blockDim.x * gridDim.x) {
    int64_t s = pad_src<WIDE>(g, i);
    y[i] = s < 0 ? v : x[s];
  }
}

/* STORE: dX[map(o)] = dY[o] (constant mode without crop: each input element is read once). */
template <bool ATOMIC, bool WIDE, bool STORE = false>
static __global__ void pad_bwd(pad_geo g, uint64_t n, const float *dy, float *dx, float *dc) {
  __shared__ float sh[OD_CUDA_THREADS];
  float c = 0;
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)blockDim.x * gridDim.x) {
    int64_t s = pad_src<WIDE>(g, i);
    if (s < 0) c += dy[i];
    else if (dx && ATOMIC) atomicAdd(dx + s, dy[i]);
    else if (dx && STORE) dx[s] = dy[i];
    else if (dx) dx[s] += dy[i];
  }
  if (!dc) return; /* the same for every thread */
  sh[threadIdx.x] = c;
  __syncthreads();
  for (unsigned s = OD_CUDA_THREADS / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(dc, sh[0]);
}

struct pad_state {
  struct od_node_state base;
  bool ready;
  int rank;
  int64_t xdims[OD_MAX_DIMS], pb[OD_MAX_DIMS], pe[OD_MAX_DIMS];
};

/* The pads of every axis (kept in the node state after the first call) and the kernel geometry. */
static enum od_status pad_geometry(struct od_kernel_ctx *ctx, const struct od_tensor *X, const int64_t *out_dims,
                                   pad_geo *g) {
  const struct pad_attrs *a = (const struct pad_attrs *)ctx->attrs;
  struct pad_state local, *s = od_cuda_state(ctx, &local, od_cuda_state_free);
  if (!s) return od_err_set(ctx->err, OD_ERR_OOM, "cannot allocate the Pad state");
  if (!s->ready || s->rank != X->rank || memcmp(s->xdims, X->dims, sizeof(int64_t) * (size_t)X->rank)) {
    struct od_tensor host[4];
    const struct od_tensor *in[4] = {X, NULL, NULL, NULL};
    int64_t bufs[4][2 * OD_MAX_DIMS];
    for (int i = 1; i < ctx->n_in && i < 4; i++) {
      if (i == 2 || ctx->node->opset < 11 || !ctx->in[i]) continue; /* 2: constant_value, read on the device */
      OD_TRY(od_cuda_small_to_host(ctx, ctx->in[i], &host[i], bufs[i], sizeof bufs[i]));
      in[i] = &host[i];
    }
    bool pending;
    OD_TRY(od_pad_amounts(ctx->node, a, X, in, ctx->n_in, s->pb, s->pe, &pending, ctx->err));
    if (pending) return od_err_set(ctx->err, OD_ERR_INTERNAL, "pads have no value at run time");
    int64_t dims[OD_MAX_DIMS];
    OD_TRY(od_pad_check(a, X, s->pb, s->pe, dims, ctx->err));
    for (int k = 0; k < X->rank; k++)
      if (dims[k] != out_dims[k]) return od_err_set(ctx->err, OD_ERR_INTERNAL, "output dim %d differs from the pads", k);
    s->ready = true;
    s->rank = X->rank;
    memcpy(s->xdims, X->dims, sizeof(int64_t) * (size_t)X->rank);
  }
  g->rank = X->rank;
  g->mode = a->mode;
  od_strides(X->rank, X->dims, g->xs);
  for (int k = 0; k < X->rank; k++) {
    g->dims[k] = od_dim_make(out_dims[k]);
    g->c0[k] = s->pb[k] < 0 ? -s->pb[k] : 0;
    g->b[k] = s->pb[k] > 0 ? s->pb[k] : 0;
    g->m[k] = X->dims[k] - g->c0[k] - (s->pe[k] < 0 ? -s->pe[k] : 0);
  }
  return OD_OK;
}

template <typename T>
static enum od_status pad_launch(struct od_kernel_ctx *ctx, const pad_geo &g, int64_t n, void *y, const void *x,
                                 const uint8_t *value, const void *cv) {
  T v;
  memcpy(&v, value, sizeof v);
  cudaStream_t st = od_cuda_stream(ctx->dev);
  if (od_idx_wide(n))
    OD_LAUNCH((pad_fwd<T, true>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(g, (uint64_t)n, (T *)y, (const T *)x, v,
                                                                          (const T *)cv);
  else
    OD_LAUNCH((pad_fwd<T, false>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(g, (uint64_t)n, (T *)y, (const T *)x, v,
                                                                           (const T *)cv);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

enum od_status od_cuda_pad_fwd(struct od_kernel_ctx *ctx) {
  const struct pad_attrs *a = (const struct pad_attrs *)ctx->attrs;
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  int64_t n = od_tensor_numel(Y);
  size_t es = od_dtype_size(X->dtype);
  if (n == 0) return OD_OK;
  if (X->rank == 0) return ctx->dev->ops->copy(ctx->dev, Y->data, X->data, es, ctx->err);
  pad_geo g;
  OD_TRY(pad_geometry(ctx, X, Y->dims, &g));
  /* the constant: the attribute (opset < 11) in X's dtype, or the constant_value input */
  uint8_t value[8] = {0};
  const void *cv = NULL;
  if (ctx->node->opset < 11) {
    struct od_tensor v = {};
    v.dtype = X->dtype;
    v.data = value;
    od_tensor_set_f64(&v, 0, a->value);
  } else if (ctx->n_in > 2 && ctx->in[2] && od_tensor_numel(ctx->in[2]) > 0) {
    cv = ctx->in[2]->data;
  }
  switch (es) {
    case 1: return pad_launch<uint8_t>(ctx, g, n, Y->data, X->data, value, cv);
    case 2: return pad_launch<uint16_t>(ctx, g, n, Y->data, X->data, value, cv);
    case 4: return pad_launch<uint32_t>(ctx, g, n, Y->data, X->data, value, cv);
    case 8: return pad_launch<uint64_t>(ctx, g, n, Y->data, X->data, value, cv);
  }
  return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Pad on CUDA: elements of %zu bytes", es);
}

enum od_status od_cuda_pad_bwd(struct od_kernel_ctx *ctx) {
  const struct pad_attrs *a = (const struct pad_attrs *)ctx->attrs;
  const struct od_tensor *X = ctx->in[0], *dY = ctx->dout[0];
  struct od_tensor *dX = ctx->din[0], *dC = ctx->n_in > 2 ? ctx->din[2] : NULL;
  if (!dY) return OD_OK;
  if (dY->dtype != OD_DTYPE_FLOAT) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Pad backward on CUDA: float only");
  pad_geo g;
  memset(&g, 0, sizeof g);
  if (X->rank > 0 && (dX || dC) && od_tensor_numel(dY) > 0) /* may read the pads: before any write */
    OD_TRY(pad_geometry(ctx, X, dY->dims, &g));
  /* a fresh constant_value gradient, one of another mode, or one no element reaches: 0 first */
  OD_TRY(od_cuda_fresh_zero(ctx, 1u << 2));
  if (dC && (od_tensor_numel(dC) == 0 || a->mode != PAD_CONSTANT)) dC = NULL;
  if (dX && od_tensor_numel(dX) == 0) dX = NULL;
  if (od_tensor_numel(dY) == 0) OD_TRY(od_cuda_fresh_zero(ctx, 1u));
  if ((!dX && !dC) || od_tensor_numel(dY) == 0) return OD_OK;
  if (X->rank == 0)
    return dX ? od_cuda_acc(ctx, od_cuda_fresh(ctx, 0), (float *)dX->data, (const float *)dY->data, 1) : OD_OK;
  /* a fresh dX is stored where each element is read once (constant mode, no crop), else zeroed */
  bool crop = false;
  for (int k = 0; k < g.rank; k++) crop |= g.c0[k] > 0 || g.m[k] < X->dims[k];
  bool store = dX && od_cuda_fresh(ctx, 0) && a->mode == PAD_CONSTANT && !crop;
  if (dX && !store) OD_TRY(od_cuda_fresh_zero(ctx, 1u));
  int64_t n = od_tensor_numel(dY);
  bool atomic = a->mode != PAD_CONSTANT, wide = od_idx_wide(n);
  float *dx = dX ? (float *)dX->data : NULL, *dc = dC ? (float *)dC->data : NULL;
  const float *dy = (const float *)dY->data;
  cudaStream_t st = od_cuda_stream(ctx->dev);
  unsigned grid = od_cuda_blocks(n);
  if (atomic && wide) OD_LAUNCH((pad_bwd<true, true>), grid, OD_CUDA_THREADS, st)(g, (uint64_t)n, dy, dx, dc);
  else if (atomic) OD_LAUNCH((pad_bwd<true, false>), grid, OD_CUDA_THREADS, st)(g, (uint64_t)n, dy, dx, dc);
  else if (store && wide)
    OD_LAUNCH((pad_bwd<false, true, true>), grid, OD_CUDA_THREADS, st)(g, (uint64_t)n, dy, dx, dc);
  else if (store)
    OD_LAUNCH((pad_bwd<false, false, true>), grid, OD_CUDA_THREADS, st)(g, (uint64_t)n, dy, dx, dc);
  else if (wide) OD_LAUNCH((pad_bwd<false, true>), grid, OD_CUDA_THREADS, st)(g, (uint64_t)n, dy, dx, dc);
  else OD_LAUNCH((pad_bwd<false, false>), grid, OD_CUDA_THREADS, st)(g, (uint64_t)n, dy, dx, dc);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}
