/* ops/gemm.c: ONNX Gemm (opsets 1, 6, 7, 9, 11, 13). dtypes: float, double (OpenBLAS), int32, int64,
 * uint32, uint64 (plain loop; from opset 9).
 * Spec: https://onnx.ai/onnx/operators/onnx__Gemm.html
 *
 *   Y (M, N) = alpha * A' * B' + beta * C,   A' = transA ? A^T : A (M x K),  B' = transB ? B^T : B (K x N)
 *
 * Versions:
 *   1, 6: attribute 'broadcast' (default 0); with 0, C had to be exactly (M, N). We accept every C
 *         that broadcasts unidirectionally to (M, N), which every valid old model satisfies.
 *   7:    'broadcast' removed; C broadcasts unidirectionally to (M, N).
 *   9:    integer types.
 *   11:   C optional (absent = no bias term). Older opsets require it; an old model without C is
 *         accepted the same way.
 *   13:   bfloat16 (not supported here).
 * beta == 0 drops C entirely (so a NaN in C does not leak).
 * Backward: float and double (dA, dB by GEMM, dC reduced to C's shape; see gemm_backward_cpu). */
#include <string.h>

#include "ops/attr.h"
#include "ops/gemm.h"
#include "ops/im2col.h"
#include "ops/op.h"

static enum od_status gemm_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct gemm_attrs *a = attrs;
  int64_t ta, tb, broadcast;
  OD_TRY(od_attr_get_float(node, "alpha", 1.0f, &a->alpha, err));
  OD_TRY(od_attr_get_float(node, "beta", 1.0f, &a->beta, err));
  OD_TRY(od_attr_get_int(node, "transA", 0, &ta, err));
  OD_TRY(od_attr_get_int(node, "transB", 0, &tb, err));
  if (node->opset < 7) OD_TRY(od_attr_get_int(node, "broadcast", 0, &broadcast, err)); /* type check only */
  a->trans_a = ta != 0;
  a->trans_b = tb != 0;
  return OD_OK;
}

static bool gemm_dtype_ok(int dt) {
  return dt == OD_DTYPE_FLOAT || dt == OD_DTYPE_DOUBLE || dt == OD_DTYPE_INT32 || dt == OD_DTYPE_INT64 ||
         dt == OD_DTYPE_UINT32 || dt == OD_DTYPE_UINT64;
}

static bool present(const struct od_tensor *t) { return t && t->dtype != OD_DTYPE_UNDEFINED; }

/* Checks the operands; *M, *N, *K from A and B. */
static enum od_status gemm_check(const struct gemm_attrs *a, const struct od_tensor *A, const struct od_tensor *B,
                                 const struct od_tensor *C, int64_t *M, int64_t *N, int64_t *K, struct od_err *err) {
  char s1[128], s2[128];
  if (!gemm_dtype_ok(A->dtype))
    return od_err_set(err, OD_ERR_UNSUPPORTED, "A has dtype %s; Gemm supports float, double, int32, int64, uint32, uint64",
                      od_dtype_name(A->dtype));
  if (B->dtype != A->dtype || (present(C) && C->dtype != A->dtype))
    return od_err_set(err, OD_ERR_SHAPE, "A is %s but B is %s%s%s", od_dtype_name(A->dtype), od_dtype_name(B->dtype),
                      present(C) ? " and C is " : "", present(C) ? od_dtype_name(C->dtype) : "");
  if (A->rank != 2 || B->rank != 2)
    return od_err_set(err, OD_ERR_SHAPE, "A %s and B %s must both be 2-D", od_shape_str(A->rank, A->dims, s1, sizeof s1),
                      od_shape_str(B->rank, B->dims, s2, sizeof s2));
  *M = a->trans_a ? A->dims[1] : A->dims[0];
  *K = a->trans_a ? A->dims[0] : A->dims[1];
  int64_t kb = a->trans_b ? B->dims[1] : B->dims[0];
  *N = a->trans_b ? B->dims[0] : B->dims[1];
  if (kb != *K)
    return od_err_set(err, OD_ERR_SHAPE, "A %s (transA=%d) and B %s (transB=%d): inner dims %lld and %lld differ",
                      od_shape_str(A->rank, A->dims, s1, sizeof s1), a->trans_a, od_shape_str(B->rank, B->dims, s2, sizeof s2),
                      a->trans_b, (long long)*K, (long long)kb);
  if (present(C)) {
    int64_t want[2] = {*M, *N};
    bool ok = C->rank <= 2;
    for (int i = 0; ok && i < C->rank; i++) {
      int64_t c = C->dims[i], w = want[2 - C->rank + i];
      ok = c == w || c == 1;
    }
    if (!ok)
      return od_err_set(err, OD_ERR_SHAPE, "C %s does not broadcast to the output [%lld, %lld]",
                        od_shape_str(C->rank, C->dims, s1, sizeof s1), (long long)*M, (long long)*N);
  }
  return OD_OK;
}

static enum od_status gemm_infer(struct od_infer_ctx *ctx) {
  if (ctx->n_in < 2) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "Gemm needs inputs A and B");
  int64_t M, N, K;
  OD_TRY(gemm_check(ctx->attrs, &ctx->in[0], &ctx->in[1], ctx->n_in > 2 ? &ctx->in[2] : NULL, &M, &N, &K, ctx->err));
  struct od_tensor *y = &ctx->out[0];
  y->dtype = ctx->in[0].dtype;
  y->rank = 2;
  y->dims[0] = M;
  y->dims[1] = N;
  return OD_OK;
}

static enum od_status gemm_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct gemm_attrs *a = ctx->attrs;
  const struct od_tensor *A = ctx->in[0], *B = ctx->in[1];
  const struct od_tensor *C = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  struct od_tensor *Y = ctx->out[0];
  int64_t M, N, K;
  OD_TRY(gemm_check(a, A, B, C, &M, &N, &K, ctx->err));
  size_t es = od_dtype_size(A->dtype);
  double beta = C ? a->beta : 0.0;
  if (beta != 0.0) {
    /* Y = C broadcast to (M, N); the GEMM then computes alpha * A'B' + beta * Y. */
    int64_t st[2];
    int64_t out_dims[2] = {M, N};
    od_broadcast_strides(C->rank, C->dims, 2, out_dims, st);
    const char *c = C->data;
    char *y = Y->data;
    if (st[1] == 1 && st[0] == N) memcpy(y, c, (size_t)(M * N) * es);
    else
      for (int64_t i = 0; i < M; i++) {
        if (st[1] == 1) memcpy(y + (size_t)(i * N) * es, c + (size_t)(i * st[0]) * es, (size_t)N * es);
        else
          for (int64_t j = 0; j < N; j++) memcpy(y + (size_t)(i * N + j) * es, c + (size_t)(i * st[0]) * es, es);
      }
  }
  int64_t lda = A->dims[1], ldb = B->dims[1];
  od_gemm(A->dtype, a->trans_a, a->trans_b, M, N, K, a->alpha, A->data, lda > 0 ? lda : 1, B->data, ldb > 0 ? ldb : 1,
          beta, Y->data, N > 0 ? N : 1);
  return OD_OK;
}

/* Backward (float, double). With A' = op(A) (M x K), B' = op(B) (K x N) and dY (M x N):
 *   term 1: dA' = alpha * dY B'^T; stored as dA += that (transA = 0) or its transpose
 *           alpha * B' dY^T (transA = 1, A is K x M)
 *   term 2: dB' = alpha * A'^T dY; stored as dB += that (transB = 0) or alpha * dY^T A' (transB = 1)
 *   term 3: dC  += beta * dY summed over the dims C broadcasts along (C may be a scalar, (N),
 *           (1, N), (M, 1) or (M, N)).
 * Terms 1 and 2 are one GEMM each with beta = 1, so they accumulate into dA / dB directly. */
static enum od_status gemm_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct gemm_attrs *a = ctx->attrs;
  const struct od_tensor *A = ctx->in[0], *B = ctx->in[1], *dY = ctx->dout[0];
  const struct od_tensor *C = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  struct od_tensor *dA = ctx->din[0], *dB = ctx->din[1], *dC = C ? ctx->din[2] : NULL;
  int64_t M, N, K;
  if (!dY) return OD_OK;
  OD_TRY(gemm_check(a, A, B, C, &M, &N, &K, ctx->err));
  int dt = A->dtype;
  if (dt != OD_DTYPE_FLOAT && dt != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Gemm backward supports float and double, not %s",
                      od_dtype_name(dt));
  int64_t lda = A->dims[1] > 0 ? A->dims[1] : 1, ldb = B->dims[1] > 0 ? B->dims[1] : 1, ldy = N > 0 ? N : 1;
  double alpha = a->alpha;
  if (dA && !a->trans_a) /* dA (M x K) += alpha dY B'^T */
    od_gemm(dt, false, !a->trans_b, M, K, N, alpha, dY->data, ldy, B->data, ldb, 1.0, dA->data, lda);
  else if (dA) /* dA (K x M) += alpha B' dY^T */
    od_gemm(dt, a->trans_b, true, K, M, N, alpha, B->data, ldb, dY->data, ldy, 1.0, dA->data, lda);
  if (dB && !a->trans_b) /* dB (K x N) += alpha A'^T dY */
    od_gemm(dt, !a->trans_a, false, K, N, M, alpha, A->data, lda, dY->data, ldy, 1.0, dB->data, ldb);
  else if (dB) /* dB (N x K) += alpha dY^T A' */
    od_gemm(dt, true, a->trans_a, N, K, M, alpha, dY->data, ldy, A->data, lda, 1.0, dB->data, ldb);
  if (dC && a->beta != 0.0) {
    int64_t st[2], out_dims[2] = {M, N};
    od_broadcast_strides(C->rank, C->dims, 2, out_dims, st);
    double beta = a->beta;
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        int64_t c = i * st[0] + j * st[1], y = i * N + j;
        if (dt == OD_DTYPE_FLOAT) ((float *)dC->data)[c] += (float)(beta * ((const float *)dY->data)[y]);
        else ((double *)dC->data)[c] += beta * ((const double *)dY->data)[y];
      }
  }
  return OD_OK;
}

const struct od_op_kernels od_kernels_gemm = {
    .attrs_size = sizeof(struct gemm_attrs),
    .parse = gemm_parse,
    .infer = gemm_infer,
    .forward = {[OD_DEVICE_CPU] = gemm_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_gemm_fwd)},
    .backward = {[OD_DEVICE_CPU] = gemm_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_gemm_bwd)},
    .dtypes = "float, double, int32, int64, uint32, uint64",
};
