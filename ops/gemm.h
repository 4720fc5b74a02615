/* ops/gemm.h: Gemm's parsed attributes, shared by the CPU kernel (ops/gemm.c) and the CUDA one
 * (ops/gemm.cu), and the cuBLAS GEMM helper that ops/gemm.cu and ops/matmul.cu share. */
#ifndef OD_OPS_GEMM_H
#define OD_OPS_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/status.h"

struct gemm_attrs {
  float alpha, beta;
  bool trans_a, trans_b;
};

#if defined(OD_HAVE_CUDA) || defined(OD_CUDA_EMU)
#ifdef __cplusplus
extern "C" {
#endif
struct od_kernel_ctx;

/* Row-major, float32, on ctx's device (cuBLAS, math mode from ctx->dev->precision), for batch
 * matrices t = 0..batch-1 at element offsets t * stride_{a,b,c}:
 *   C_t (M x N, ldc) = alpha op(A_t) op(B_t) + beta C_t,  op(A) M x K (A is K x M when trans_a).
 * beta == 0 does not read C. Strides may be 0 for A and B (a shared matrix), never for C when
 * batch > 1. OD_ERR_UNSUPPORTED when a size does not fit cuBLAS's int. */
enum od_status od_cuda_sgemm(struct od_kernel_ctx *ctx, bool trans_a, bool trans_b, int64_t M, int64_t N,
                             int64_t K, float alpha, const float *A, int64_t lda, int64_t stride_a, const float *B,
                             int64_t ldb, int64_t stride_b, float beta, float *C, int64_t ldc, int64_t stride_c,
                             int64_t batch);
#ifdef __cplusplus
}
#endif
#endif

#endif
