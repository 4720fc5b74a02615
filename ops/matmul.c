/* ops/matmul.c: ONNX MatMul (opsets 1, 9, 13: 9 added int32/int64/uint32/uint64, 13 bfloat16).
 * dtypes: float, double (OpenBLAS), int32, int64, uint32, uint64 (plain loop).
 * Spec: https://onnx.ai/onnx/operators/onnx__MatMul.html
 *
 * numpy.matmul semantics: A (..., M, K) times B (..., K, N) -> Y (..., M, N), the leading "batch"
 * dims broadcast (multidirectionally). A 1-D A is read as (1, K) and a 1-D B as (K, 1); the added
 * dim is removed from the output again (so 1-D x 1-D gives a scalar).
 *
 * When B has no batch (or all its batch dims are 1) and A's batch is not broadcast, the whole
 * batch is one GEMM: (batch * M, K) times (K, N) — the usual Linear layer. Otherwise one GEMM per
 * batch element.
 * Backward: float and double, GEMMs into dA and dB (broadcast batch dims reduced by accumulation). */
#include "ops/im2col.h"
#include "ops/op.h"

static bool matmul_dtype_ok(int dt) {
  return dt == OD_DTYPE_FLOAT || dt == OD_DTYPE_DOUBLE || dt == OD_DTYPE_INT32 || dt == OD_DTYPE_INT64 ||
         dt == OD_DTYPE_UINT32 || dt == OD_DTYPE_UINT64;
}

/* The operands seen as batches of matrices. */
struct matmul_shape {
  int64_t M, K, N;
  int a_batch_rank, b_batch_rank, batch_rank;  /* batch dims of A, B and of the broadcast output */
  int64_t batch[OD_MAX_DIMS];
  int64_t nbatch;
  int y_rank;
  int64_t y_dims[OD_MAX_DIMS];
};

static enum od_status matmul_shape(const struct od_tensor *A, const struct od_tensor *B, struct matmul_shape *s,
                                   struct od_err *err) {
  char s1[128], s2[128];
  if (!matmul_dtype_ok(A->dtype))
    return od_err_set(err, OD_ERR_UNSUPPORTED, "A has dtype %s; MatMul supports float, double, int32, int64, uint32, uint64",
                      od_dtype_name(A->dtype));
  if (B->dtype != A->dtype)
    return od_err_set(err, OD_ERR_SHAPE, "A is %s but B is %s", od_dtype_name(A->dtype), od_dtype_name(B->dtype));
  if (A->rank < 1 || B->rank < 1)
    return od_err_set(err, OD_ERR_SHAPE, "A %s and B %s: MatMul needs at least 1-D operands",
                      od_shape_str(A->rank, A->dims, s1, sizeof s1), od_shape_str(B->rank, B->dims, s2, sizeof s2));
  s->M = A->rank >= 2 ? A->dims[A->rank - 2] : 1;
  s->K = A->dims[A->rank - 1];
  int64_t kb = B->rank >= 2 ? B->dims[B->rank - 2] : B->dims[0];
  s->N = B->rank >= 2 ? B->dims[B->rank - 1] : 1;
  if (kb != s->K)
    return od_err_set(err, OD_ERR_SHAPE, "A %s and B %s: inner dims %lld and %lld differ",
                      od_shape_str(A->rank, A->dims, s1, sizeof s1), od_shape_str(B->rank, B->dims, s2, sizeof s2),
                      (long long)s->K, (long long)kb);
  s->a_batch_rank = A->rank > 2 ? A->rank - 2 : 0;
  s->b_batch_rank = B->rank > 2 ? B->rank - 2 : 0;
  enum od_status st = od_broadcast_shapes(s->a_batch_rank, A->dims, s->b_batch_rank, B->dims, &s->batch_rank,
                                          s->batch, err);
  if (st != OD_OK) {
    od_err_prefix(err, "batch dims of A %s and B %s", od_shape_str(A->rank, A->dims, s1, sizeof s1),
                  od_shape_str(B->rank, B->dims, s2, sizeof s2));
    return st;
  }
  s->nbatch = 1;
  for (int i = 0; i < s->batch_rank; i++) s->nbatch *= s->batch[i];
  s->y_rank = 0;
  for (int i = 0; i < s->batch_rank; i++) s->y_dims[s->y_rank++] = s->batch[i];
  if (A->rank >= 2) s->y_dims[s->y_rank++] = s->M;
  if (B->rank >= 2) s->y_dims[s->y_rank++] = s->N;
  return OD_OK;
}

static enum od_status matmul_infer(struct od_infer_ctx *ctx) {
  if (ctx->n_in != 2) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "MatMul needs inputs A and B");
  struct matmul_shape s;
  OD_TRY(matmul_shape(&ctx->in[0], &ctx->in[1], &s, ctx->err));
  struct od_tensor *y = &ctx->out[0];
  y->dtype = ctx->in[0].dtype;
  y->rank = s.y_rank;
  for (int i = 0; i < s.y_rank; i++) y->dims[i] = s.y_dims[i];
  return OD_OK;
}

static enum od_status matmul_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *A = ctx->in[0], *B = ctx->in[1];
  struct od_tensor *Y = ctx->out[0];
  struct matmul_shape s;
  OD_TRY(matmul_shape(A, B, &s, ctx->err));
  int dt = A->dtype;
  size_t es = od_dtype_size(dt);
  int64_t M = s.M, K = s.K, N = s.N;
  if (s.nbatch == 0 || M == 0 || N == 0) return OD_OK;
  int64_t lda = K > 0 ? K : 1, ldb = N;

  int64_t a_batch = 1, b_batch = 1;
  for (int i = 0; i < s.a_batch_rank; i++) a_batch *= A->dims[i];
  for (int i = 0; i < s.b_batch_rank; i++) b_batch *= B->dims[i];
  if (b_batch == 1 && a_batch == s.nbatch) {
    od_gemm(dt, false, false, s.nbatch * M, N, K, 1.0, A->data, lda, B->data, ldb, 0.0, Y->data, N);
    return OD_OK;
  }

  /* One GEMM per batch element; matrix strides of A and B over the broadcast batch dims. */
  int64_t sa[OD_MAX_DIMS], sb[OD_MAX_DIMS], idx[OD_MAX_DIMS] = {0};
  od_broadcast_strides(s.a_batch_rank, A->dims, s.batch_rank, s.batch, sa);
  od_broadcast_strides(s.b_batch_rank, B->dims, s.batch_rank, s.batch, sb);
  const char *ad = A->data, *bd = B->data;
  char *yd = Y->data;
  for (int64_t t = 0; t < s.nbatch; t++) {
    int64_t ao = 0, bo = 0;
    for (int i = 0; i < s.batch_rank; i++) {
      ao += idx[i] * sa[i];
      bo += idx[i] * sb[i];
    }
    od_gemm(dt, false, false, M, N, K, 1.0, ad + (size_t)(ao * M * K) * es, lda, bd + (size_t)(bo * K * N) * es, ldb,
            0.0, yd + (size_t)(t * M * N) * es, N);
    for (int i = s.batch_rank - 1; i >= 0; i--) {
      if (++idx[i] < s.batch[i]) break;
      idx[i] = 0;
    }
  }
  return OD_OK;
}

/* Backward (float, double). Per batch element t, with A_t (M x K), B_t (K x N), dY_t (M x N):
 *   term 1: dA[batch of A for t] += dY_t B_t^T     (M x N) (N x K)
 *   term 2: dB[batch of B for t] += A_t^T dY_t     (K x M) (M x N)
 * A batch dim that A (or B) broadcasts along maps several t to the same matrix, so the GEMMs'
 * accumulation (beta = 1) is the reduction over broadcast dims. A 1-D operand is the (1, K) or
 * (K, 1) matrix of the forward; dY has the same memory layout whether or not the 1 was dropped.
 * Unbatched B with an unbroadcast batch of A is two GEMMs over the whole batch. */
static enum od_status matmul_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *A = ctx->in[0], *B = ctx->in[1], *dY = ctx->dout[0];
  struct od_tensor *dA = ctx->din[0], *dB = ctx->din[1];
  struct matmul_shape s;
  if (!dY) return OD_OK;
  OD_TRY(matmul_shape(A, B, &s, ctx->err));
  int dt = A->dtype;
  if (dt != OD_DTYPE_FLOAT && dt != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "MatMul backward supports float and double, not %s",
                      od_dtype_name(dt));
  size_t es = od_dtype_size(dt);
  int64_t M = s.M, K = s.K, N = s.N;
  if (s.nbatch == 0 || M == 0 || N == 0 || K == 0) return OD_OK;

  int64_t a_batch = 1, b_batch = 1;
  for (int i = 0; i < s.a_batch_rank; i++) a_batch *= A->dims[i];
  for (int i = 0; i < s.b_batch_rank; i++) b_batch *= B->dims[i];
  if (b_batch == 1 && a_batch == s.nbatch) {
    if (dA) od_gemm(dt, false, true, s.nbatch * M, K, N, 1.0, dY->data, N, B->data, N, 1.0, dA->data, K);
    if (dB) od_gemm(dt, true, false, K, N, s.nbatch * M, 1.0, A->data, K, dY->data, N, 1.0, dB->data, N);
    return OD_OK;
  }

  int64_t sa[OD_MAX_DIMS], sb[OD_MAX_DIMS], idx[OD_MAX_DIMS] = {0};
  od_broadcast_strides(s.a_batch_rank, A->dims, s.batch_rank, s.batch, sa);
  od_broadcast_strides(s.b_batch_rank, B->dims, s.batch_rank, s.batch, sb);
  const char *ad = A->data, *bd = B->data, *dyd = dY->data;
  for (int64_t t = 0; t < s.nbatch; t++) {
    int64_t ao = 0, bo = 0;
    for (int i = 0; i < s.batch_rank; i++) {
      ao += idx[i] * sa[i];
      bo += idx[i] * sb[i];
    }
    const char *dyt = dyd + (size_t)(t * M * N) * es;
    if (dA) od_gemm(dt, false, true, M, K, N, 1.0, dyt, N, bd + (size_t)(bo * K * N) * es, N, 1.0,
                    (char *)dA->data + (size_t)(ao * M * K) * es, K);
    if (dB) od_gemm(dt, true, false, K, N, M, 1.0, ad + (size_t)(ao * M * K) * es, K, dyt, N, 1.0,
                    (char *)dB->data + (size_t)(bo * K * N) * es, N);
    for (int i = s.batch_rank - 1; i >= 0; i--) {
      if (++idx[i] < s.batch[i]) break;
      idx[i] = 0;
    }
  }
  return OD_OK;
}

const struct od_op_kernels od_kernels_matmul = {
    .parse = NULL,
    .infer = matmul_infer,
    .forward = {[OD_DEVICE_CPU] = matmul_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_matmul_fwd)},
    .backward = {[OD_DEVICE_CPU] = matmul_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_matmul_bwd)},
    .dtypes = "float, double, int32, int64, uint32, uint64",
};
