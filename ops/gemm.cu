/* ops/gemm.cu: ONNX Gemm on CUDA (float32), and od_cuda_sgemm, the row-major cuBLAS GEMM that
 * Gemm and MatMul (ops/matmul.cu) share.
 *
 *   Y (M, N) = alpha * A' * B' + beta * C     (A' = transA ? A^T : A, B' likewise; see ops/gemm.c)
 *
 * Row-major through column-major cuBLAS: a row-major X (r x c) is the column-major X^T, so
 * C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: cublasGemmEx(opB, opA, N, M, K, B, A, C).
 * Math (ctx->dev->precision): FP32 -> CUBLAS_COMPUTE_32F (no TF32; the device's handle stays in
 * CUBLAS_DEFAULT_MATH), TF32 -> CUBLAS_COMPUTE_32F_FAST_TF32, BF16 -> CUBLAS_COMPUTE_32F_FAST_16BF
 * (float storage, bfloat16 tensor-core products, float accumulation).
 *
 * Forward: C broadcast into Y by a grid-stride kernel (when C is present and beta != 0; beta == 0
 * drops C, NaNs included), then one GEMM with that beta. Backward (same terms as gemm_backward_cpu):
 * dA and dB by one GEMM each with beta = 1 (accumulating), dC += beta * dY reduced over the dims C
 * broadcasts along: one block per element of C, a shared-memory tree over its rows and columns.
 * int dtypes and double run on the CPU (OD_ERR_UNSUPPORTED). */
#include "ops/cuda/common.cuh"

#include <limits.h>

#include "ops/gemm.h"

static bool present(const struct od_tensor *t) { return t && t->dtype != OD_DTYPE_UNDEFINED; }

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* C = beta * C over n contiguous elements (a GEMM with K = 0); beta == 0 writes zeros. */
static __global__ void scale_kernel(float *c, float beta, int64_t n) {
  OD_GRID_LOOP(i, n) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
}

extern "C" enum od_status od_cuda_sgemm(struct od_kernel_ctx *ctx, bool trans_a, bool trans_b, int64_t M, int64_t N,
                                        int64_t K, float alpha, const float *A, int64_t lda, int64_t stride_a,
                                        const float *B, int64_t ldb, int64_t stride_b, float beta, float *C,
                                        int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return OD_OK;
  if (K == 0) { /* nothing to multiply: C = beta C (callers pass contiguous C here) */
    if (ldc != N || (batch > 1 && stride_c != M * N))
      return od_err_set(ctx->err, OD_ERR_INTERNAL, "od_cuda_sgemm: K = 0 with a strided C");
    int64_t n = batch * M * N;
    OD_LAUNCH(scale_kernel, od_cuda_blocks(n), OD_CUDA_THREADS, od_cuda_stream(ctx->dev))(C, beta, n);
    OD_CUDA_LAUNCHED(ctx);
    return OD_OK;
  }
  if (lda < 1) lda = 1;
  if (ldb < 1) ldb = 1;
  if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(lda) || !fits_int(ldb) || !fits_int(ldc) ||
      !fits_int(batch))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "GEMM of %lld x %lld x %lld (batch %lld) beyond cuBLAS's int",
                      (long long)M, (long long)N, (long long)K, (long long)batch);
  cublasComputeType_t ct = ctx->dev->precision == OD_PRECISION_TF32   ? CUBLAS_COMPUTE_32F_FAST_TF32
                           : ctx->dev->precision == OD_PRECISION_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                                      : CUBLAS_COMPUTE_32F;
  cublasHandle_t h = od_cuda_cublas(ctx->dev);
  cublasOperation_t oa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, ob = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1)
    OD_CUBLAS_TRY(ctx->err, cublasGemmEx(h, ob, oa, (int)N, (int)M, (int)K, &alpha, B, CUDA_R_32F, (int)ldb, A,
                                         CUDA_R_32F, (int)lda, &beta, C, CUDA_R_32F, (int)ldc, ct,
                                         CUBLAS_GEMM_DEFAULT));
  else
    OD_CUBLAS_TRY(ctx->err, cublasGemmStridedBatchedEx(h, ob, oa, (int)N, (int)M, (int)K, &alpha, B, CUDA_R_32F,
                                                       (int)ldb, stride_b, A, CUDA_R_32F, (int)lda, stride_a, &beta,
                                                       C, CUDA_R_32F, (int)ldc, stride_c, (int)batch, ct,
                                                       CUBLAS_GEMM_DEFAULT));
  return OD_OK;
}

/* ---- Gemm ---- */

/* C's broadcast into (M, N): element (i, j) of Y reads C[i * s0 + j * s1]. */
static __global__ void broadcast_c_kernel(const float *c, float *y, int64_t N, int64_t s0, int64_t s1, int64_t n) {
  OD_GRID_LOOP(t, n) {
    int64_t i = t / N, j = t - i * N;
    y[t] = c[i * s0 + j * s1];
  }
}

/* dC[e] += beta * sum of dY over the rows and columns element e of C covers: block per element,
 * its threads stride over the (rows x cols) set, then a shared-memory tree. C is (c0, c1) as 2-D
 * (c0 == 1 or M, c1 == 1 or N). */
static __global__ void reduce_dc_kernel(const float *dy, float *dc, int64_t M, int64_t N, int64_t c0, int64_t c1,
                                        float beta) {
  __shared__ float part[OD_CUDA_THREADS];
  int64_t rows = c0 == M ? 1 : M, cols = c1 == N ? 1 : N, cnt = rows * cols;
  for (int64_t e = blockIdx.x; e < c0 * c1; e += gridDim.x) {
    int64_t ei = e / c1, ej = e - ei * c1;
    float s = 0.0f;
    for (int64_t r = threadIdx.x; r < cnt; r += blockDim.x) {
      int64_t ri = r / cols, rj = r - ri * cols;
      int64_t i = c0 == M ? ei : ri, j = c1 == N ? ej : rj;
      s += dy[i * N + j];
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned w = blockDim.x / 2; w > 0; w /= 2) {
      if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0) dc[e] += beta * part[0];
    __syncthreads();
  }
}

/* Shapes as gemm_check (ops/gemm.c) computes them; infer has validated them already. */
static enum od_status gemm_dims(struct od_kernel_ctx *ctx, int64_t *M, int64_t *N, int64_t *K) {
  const struct gemm_attrs *a = (const struct gemm_attrs *)ctx->attrs;
  const struct od_tensor *A = ctx->in[0], *B = ctx->in[1];
  const struct od_tensor *C = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  if (A->dtype != OD_DTYPE_FLOAT || B->dtype != OD_DTYPE_FLOAT || (C && C->dtype != OD_DTYPE_FLOAT))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Gemm on CUDA supports float32, not %s",
                      od_dtype_name(A->dtype));
  if (A->rank != 2 || B->rank != 2 || (C && C->rank > 2))
    return od_err_set(ctx->err, OD_ERR_SHAPE, "Gemm: A and B must be 2-D");
  *M = a->trans_a ? A->dims[1] : A->dims[0];
  *K = a->trans_a ? A->dims[0] : A->dims[1];
  *N = a->trans_b ? B->dims[0] : B->dims[1];
  return OD_OK;
}

/* C as (c0, c1): a scalar or (n) is (1, 1) or (1, n). */
static void c_dims2(const struct od_tensor *C, int64_t *c0, int64_t *c1) {
  *c0 = C->rank == 2 ? C->dims[0] : 1;
  *c1 = C->rank >= 1 ? C->dims[C->rank - 1] : 1;
}

extern "C" enum od_status od_cuda_gemm_fwd(struct od_kernel_ctx *ctx) {
  const struct gemm_attrs *a = (const struct gemm_attrs *)ctx->attrs;
  const struct od_tensor *A = ctx->in[0], *B = ctx->in[1];
  const struct od_tensor *C = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  float *y = (float *)ctx->out[0]->data;
  int64_t M = 0, N = 0, K = 0;
  OD_TRY(gemm_dims(ctx, &M, &N, &K));
  if (M == 0 || N == 0) return OD_OK;
  float beta = C ? a->beta : 0.0f;
  if (beta != 0.0f) {
    int64_t c0, c1, n = M * N;
    c_dims2(C, &c0, &c1);
    OD_LAUNCH(broadcast_c_kernel, od_cuda_blocks(n), OD_CUDA_THREADS, od_cuda_stream(ctx->dev))(
        (const float *)C->data, y, N, c0 == 1 ? 0 : c1, c1 == 1 ? 0 : 1, n);
    OD_CUDA_LAUNCHED(ctx);
  }
  return od_cuda_sgemm(ctx, a->trans_a, a->trans_b, M, N, K, a->alpha, (const float *)A->data, A->dims[1], 0,
                       (const float *)B->data, B->dims[1], 0, beta, y, N, 0, 1);
}

/* The terms of gemm_backward_cpu (ops/gemm.c), with A' = op(A), B' = op(B):
 *   dA += alpha dY B'^T (transA = 0) or alpha B' dY^T (transA = 1)
 *   dB += alpha A'^T dY (transB = 0) or alpha dY^T A' (transB = 1)
 *   dC += beta dY reduced to C's shape */
extern "C" enum od_status od_cuda_gemm_bwd(struct od_kernel_ctx *ctx) {
  const struct gemm_attrs *a = (const struct gemm_attrs *)ctx->attrs;
  const struct od_tensor *A = ctx->in[0], *B = ctx->in[1], *dY = ctx->dout[0];
  const struct od_tensor *C = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  struct od_tensor *dA = ctx->din[0], *dB = ctx->din[1], *dC = C ? ctx->din[2] : NULL;
  if (!dY) return OD_OK;
  int64_t M = 0, N = 0, K = 0;
  OD_TRY(gemm_dims(ctx, &M, &N, &K));
  if (M == 0 || N == 0) return OD_OK;
  const float *ad = (const float *)A->data, *bd = (const float *)B->data, *dy = (const float *)dY->data;
  int64_t lda = A->dims[1], ldb = B->dims[1];
  float alpha = a->alpha;
  if (dA && !a->trans_a) /* dA (M x K) */
    OD_TRY(od_cuda_sgemm(ctx, false, !a->trans_b, M, K, N, alpha, dy, N, 0, bd, ldb, 0, 1.0f, (float *)dA->data,
                         lda, 0, 1));
  else if (dA) /* dA (K x M) */
    OD_TRY(od_cuda_sgemm(ctx, a->trans_b, true, K, M, N, alpha, bd, ldb, 0, dy, N, 0, 1.0f, (float *)dA->data,
                         lda, 0, 1));
  if (dB && !a->trans_b) /* dB (K x N) */
    OD_TRY(od_cuda_sgemm(ctx, !a->trans_a, false, K, N, M, alpha, ad, lda, 0, dy, N, 0, 1.0f, (float *)dB->data,
                         ldb, 0, 1));
  else if (dB) /* dB (N x K) */
    OD_TRY(od_cuda_sgemm(ctx, true, a->trans_a, N, K, M, alpha, dy, N, 0, ad, lda, 0, 1.0f, (float *)dB->data,
                         ldb, 0, 1));
  if (dC && a->beta != 0.0f) {
    int64_t c0, c1;
    c_dims2(C, &c0, &c1);
    int64_t ne = c0 * c1;
    unsigned blocks = ne < 65535 ? (unsigned)ne : 65535u;
    OD_LAUNCH(reduce_dc_kernel, blocks, OD_CUDA_THREADS, od_cuda_stream(ctx->dev))(dy, (float *)dC->data, M, N, c0,
                                                                                  c1, a->beta);
    OD_CUDA_LAUNCHED(ctx);
  }
  return OD_OK;
}
