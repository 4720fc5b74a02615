/* ops/softmax.cu: CUDA Softmax and LogSoftmax, forward and backward, float32, both the opset < 13
 * ("coerce to 2-D at axis") and opset >= 13 ("one axis") semantics, through the CPU's
 * (outer, n, inner) view (softmax_view, ops/softmax.h): outer * inner lines of n elements at
 * stride inner.
 *
 * Forward: max, sum of exp(x - max), then y = exp(x - max) / sum or x - max - log(sum).
 * Backward from the saved Y: Softmax dX += Y (dY - sum dY Y); LogSoftmax dX += dY - exp(Y) sum dY.
 * Parallelisation: inner == 1 (contiguous lines) with n >= SM_BLOCK_MIN: a block per line
 * (grid-stride over lines), threads striding the line, shared-memory trees; the passes re-read x
 * (cached) rather than storing exp. Otherwise a thread per line, consecutive threads on consecutive
 * inner positions (coalesced when inner > 1). Sums are float32. */
#include "ops/cuda/reduce.cuh"

extern "C" {
#include "ops/softmax.h"
}

#define SM_BLOCK_MIN 128

static __global__ void softmax_block_kernel(const float *x, float *y, int64_t lines, int64_t n, bool log) {
  __shared__ float sh[OD_RED_THREADS];
  for (int64_t l = blockIdx.x; l < lines; l += gridDim.x) {
    const float *xl = x + l * n;
    float *yl = y + l * n;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, xl[j]);
    m = od_block_max_f32(m, sh);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += expf(xl[j] - m);
    s = od_block_sum_f32(s, sh);
    if (log) {
      float ml = m + logf(s);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yl[j] = xl[j] - ml;
    } else {
      float inv = 1.0f / s;
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yl[j] = expf(xl[j] - m) * inv;
    }
  }
}

/* A thread per line: line (o, i) is x[o * n * inner + i + j * inner], j in [0, n). */
static __global__ void softmax_line_kernel(const float *x, float *y, int64_t lines, int64_t n, int64_t inner,
                                           bool log) {
  OD_GRID_LOOP(l, lines) {
    int64_t base = (l / inner) * n * inner + l % inner;
    const float *xl = x + base;
    float *yl = y + base;
    float m = -INFINITY, s = 0.f;
    for (int64_t j = 0; j < n; j++) m = fmaxf(m, xl[j * inner]);
    for (int64_t j = 0; j < n; j++) s += expf(xl[j * inner] - m);
    if (log) {
      float ml = m + logf(s);
      for (int64_t j = 0; j < n; j++) yl[j * inner] = xl[j * inner] - ml;
    } else {
      float inv = 1.0f / s;
      for (int64_t j = 0; j < n; j++) yl[j * inner] = expf(xl[j * inner] - m) * inv;
    }
  }
}

static __global__ void softmax_bwd_block_kernel(const float *y, const float *dy, float *dx, int64_t lines, int64_t n,
                                                bool log) {
  __shared__ float sh[OD_RED_THREADS];
  for (int64_t l = blockIdx.x; l < lines; l += gridDim.x) {
    const float *yl = y + l * n, *dl = dy + l * n;
    float *xl = dx + l * n;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += log ? dl[j] : dl[j] * yl[j];
    s = od_block_sum_f32(s, sh);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      xl[j] += log ? dl[j] - expf(yl[j]) * s : yl[j] * (dl[j] - s);
  }
}

static __global__ void softmax_bwd_line_kernel(const float *y, const float *dy, float *dx, int64_t lines, int64_t n,
                                               int64_t inner, bool log) {
  OD_GRID_LOOP(l, lines) {
    int64_t base = (l / inner) * n * inner + l % inner;
    const float *yl = y + base, *dl = dy + base;
    float *xl = dx + base;
    float s = 0.f;
    for (int64_t j = 0; j < n; j++) s += log ? dl[j * inner] : dl[j * inner] * yl[j * inner];
    for (int64_t j = 0; j < n; j++) {
      int64_t e = j * inner;
      xl[e] += log ? dl[e] - expf(yl[e]) * s : yl[e] * (dl[e] - s);
    }
  }
}

static od_status softmax_check(od_kernel_ctx *ctx, int64_t *outer, int64_t *n, int64_t *inner) {
  const od_tensor *x = ctx->in[0];
  if (x->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "CUDA Softmax/LogSoftmax takes float32 only, not %s",
                      od_dtype_name(x->dtype));
  return softmax_view((const softmax_attrs *)ctx->attrs, x, outer, n, inner, ctx->err);
}

extern "C" od_status od_cuda_softmax_fwd(od_kernel_ctx *ctx) {
  const softmax_attrs *a = (const softmax_attrs *)ctx->attrs;
  int64_t outer = 0, n = 0, inner = 0;
  OD_TRY(softmax_check(ctx, &outer, &n, &inner));
  if (outer * n * inner == 0) return OD_OK;
  cudaStream_t st = od_cuda_stream(ctx->dev);
  const float *x = (const float *)ctx->in[0]->data;
  float *y = (float *)ctx->out[0]->data;
  int64_t lines = outer * inner;
  if (inner == 1 && n >= SM_BLOCK_MIN)
    OD_LAUNCH(softmax_block_kernel, od_red_blocks(lines, 65535), OD_RED_THREADS, st)(x, y, lines, n, a->log);
  else
    OD_LAUNCH(softmax_line_kernel, od_cuda_blocks(lines), OD_CUDA_THREADS, st)(x, y, lines, n, inner, a->log);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

extern "C" od_status od_cuda_softmax_bwd(od_kernel_ctx *ctx) {
  const softmax_attrs *a = (const softmax_attrs *)ctx->attrs;
  const od_tensor *dyt = ctx->dout[0];
  if (!dyt || !ctx->din[0]) return OD_OK;
  int64_t outer = 0, n = 0, inner = 0;
  OD_TRY(softmax_check(ctx, &outer, &n, &inner));
  if (outer * n * inner == 0) return OD_OK;
  cudaStream_t st = od_cuda_stream(ctx->dev);
  const float *y = (const float *)ctx->out[0]->data, *dy = (const float *)dyt->data;
  float *dx = (float *)ctx->din[0]->data;
  int64_t lines = outer * inner;
  if (inner == 1 && n >= SM_BLOCK_MIN)
    OD_LAUNCH(softmax_bwd_block_kernel, od_red_blocks(lines, 65535), OD_RED_THREADS, st)(y, dy, dx, lines, n, a->log);
  else
    OD_LAUNCH(softmax_bwd_line_kernel, od_cuda_blocks(lines), OD_CUDA_THREADS, st)(y, dy, dx, lines, n, inner,
                                                                                  a->log);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}
