/* ops/cuda/index.cuh: N-D index helpers of the CUDA data-movement kernels (ops/concat.cu,
 * split.cu, slice.cu, transpose.cu, reshape.cu, expand.cu, tile.cu, pad.cu, gather.cu,
 * depth_space.cu, resize.cu), and the strided copy / accumulate engine they share (defined in
 * ops/transpose.cu: the device twin of ops/transpose.h, same view conventions).
 *
 * Index arithmetic: a linear index is split into a multi-index with one division per dim. A
 * 64-bit divide is a long instruction sequence on the GPU, so while every index is below 2^31
 * the kernels divide with a precomputed multiply-and-shift (od_dim, Granlund-Montgomery as in
 * PyTorch's IntDivider); beyond that they fall back to plain 64-bit division (template flag
 * WIDE). Offsets (which may be negative: reversed slices) stay int64. */
#ifndef OD_CUDA_INDEX_CUH
#define OD_CUDA_INDEX_CUH

#include <stdlib.h>
#include <string.h>

#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/transpose.h"
}

/* ---- division by a run-time constant ----------------------------------------------------------- */

/* One dim of size d: n / d is (umulhi(n, m) + n) >> s for n, d < 2^31; plain division when WIDE. */
struct od_dim {
  uint64_t d;
  uint32_t m, s;
};

static inline od_dim od_dim_make(int64_t d) {
  od_dim r;
  r.d = (uint64_t)(d > 0 ? d : 1);
  r.s = 0;
  r.m = 1;
  if (r.d < (1ull << 31)) {
    while ((1ull << r.s) < r.d) r.s++;
    r.m = (uint32_t)(((1ull << 32) * ((1ull << r.s) - r.d)) / r.d + 1);
  }
  return r;
}

template <bool WIDE>
static __device__ inline uint64_t od_dim_div(const od_dim &x, uint64_t n) {
  if (WIDE) return n / x.d;
  uint32_t n32 = (uint32_t)n;
  uint32_t t = (uint32_t)(((uint64_t)n32 * x.m) >> 32);
  return (t + n32) >> x.s;
}

/* True when every index of a kernel over n elements (and each dim) fits the 32-bit division. */
static inline bool od_idx_wide(int64_t n) { return n >= (int64_t)1 << 31; }

/* ---- element types ----------------------------------------------------------------------------- */

/* 16-byte units for vectorised copies and float4 adds (the CUDA built-ins are the same layout;
 * declared here so the host emulation needs nothing extra). */
struct alignas(16) od_u128 {
  uint32_t a, b, c, d;
};
struct alignas(16) od_f4 {
  float x, y, z, w;
};

static __device__ inline void od_acc(float &d, const float &s) { d += s; }
static __device__ inline void od_acc(od_f4 &d, const od_f4 &s) {
  d.x += s.x;
  d.y += s.y;
  d.z += s.z;
  d.w += s.w;
}

/* ---- the strided view engine (ops/transpose.cu) ------------------------------------------------ */

/* Views have at most twice the tensor rank (Tile), as on the CPU. */
#define OD_CV_MAX OD_STRIDED_MAX_DIMS

/* dst[sum_k i_k * dst_strides[k]] = src[sum_k i_k * src_strides[k]] over the block dims (strides in
 * elements of es bytes, es 1, 2, 4 or 8; src strides may be negative or 0; dst_strides NULL =
 * contiguous row-major). Size-1 dims are dropped and contiguous dims merged; a contiguous block is
 * one device copy, rows contiguous on both sides move in 16-byte units where aligned, transposes
 * of two dims go through 32x32 shared-memory tiles. Asynchronous on the device's stream. */
enum od_status od_cuda_strided_copy(struct od_kernel_ctx *ctx, size_t es, int rank, const int64_t *dims, void *dst,
                                    const int64_t *dst_strides, const void *src, const int64_t *src_strides);

/* dst[sum_k i_k * dst_strides[k]] += src[sum_k i_k * src_strides[k]] on float32 (gradients); NULL
 * strides = contiguous. A dst stride of 0 sums over that dim (a tree reduction per dst element
 * when the sum runs along memory, else one thread per dst element and chunk of the sum, chunks
 * joined with atomicAdd only when there are too few dst elements to fill the GPU); otherwise
 * distinct index tuples must reach distinct dst elements. */
enum od_status od_cuda_strided_add(struct od_kernel_ctx *ctx, int rank, const int64_t *dims, float *dst,
                                   const int64_t *dst_strides, const float *src, const int64_t *src_strides);

/* The same with write: dst[...] = the sum instead of += (a fresh gradient, ops/op.h din_fresh);
 * only the dst elements the view reaches are written. write false: od_cuda_strided_add. */
enum od_status od_cuda_strided_acc(struct od_kernel_ctx *ctx, bool write, int rank, const int64_t *dims, float *dst,
                                   const int64_t *dst_strides, const float *src, const int64_t *src_strides);

/* dst[i] += src[i] for n floats (float4 where aligned); od_cuda_acc with write: dst[i] = src[i]. */
enum od_status od_cuda_add(struct od_kernel_ctx *ctx, float *dst, const float *src, int64_t n);
enum od_status od_cuda_acc(struct od_kernel_ctx *ctx, bool write, float *dst, const float *src, int64_t n);

/* ---- small inputs read on the host ------------------------------------------------------------- */

/* Shape-like inputs (Slice's starts, Pad's pads, Resize's scales) are tiny device tensors whose
 * values were known when the program was compiled (the output shape depends on them). A kernel
 * that needs them copies them to the host (this waits for the stream) and keeps what it derives
 * in its node state, so a step does it once per node. *host gets t's dtype and shape with data
 * in buf (cap bytes); t NULL or without dtype gives host->dtype 0. */
enum od_status od_cuda_small_to_host(struct od_kernel_ctx *ctx, const struct od_tensor *t, struct od_tensor *host,
                                     void *buf, size_t cap);

/* The node state of a kernel family: a struct whose first member is struct od_node_state, created
 * zeroed (calloc) with destroy set on first use. When the caller keeps no state (ctx->state NULL)
 * the zeroed *local is used instead and the kernel cleans up before it returns. NULL on OOM. */
template <typename S>
static S *od_cuda_state(struct od_kernel_ctx *ctx, S *local, void (*destroy)(struct od_node_state *, struct od_device *)) {
  if (!ctx->state) {
    memset((void *)local, 0, sizeof *local);
    local->base.destroy = destroy;
    return local;
  }
  if (!*ctx->state) {
    S *s = (S *)calloc(1, sizeof(S));
    if (!s) return NULL;
    s->base.destroy = destroy;
    *ctx->state = &s->base;
  }
  return (S *)*ctx->state;
}

/* A destroy for states that own no device memory. */
static inline void od_cuda_state_free(struct od_node_state *self, struct od_device *dev) {
  (void)dev;
  free(self);
}

#endif
