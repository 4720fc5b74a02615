/* ops/matmul.cu: ONNX MatMul on CUDA (float32) through cuBLAS (od_cuda_sgemm, ops/gemm.cu).
 *
 * numpy.matmul semantics as ops/matmul.c: A (..., M, K) times B (..., K, N), batch dims broadcast,
 * a 1-D A is (1, K) and a 1-D B is (K, 1) (same memory; the output drops the added dim).
 *
 * Batches: unbatched B with an unbroadcast A is one GEMM over the whole batch, (batch * M, K) x
 * (K, N) — the Linear layer. Otherwise the output's batch dims (size-1 dims dropped) are merged
 * where both operands step uniformly across them (a broadcast operand has stride 0), and each
 * remaining outer index is one cublasGemmStridedBatchedEx over the innermost merged dim: one call
 * for the usual cases (equal batches, or one operand shared by all).
 *
 * Backward (the terms of matmul_backward_cpu): dA_t += dY_t B_t^T and dB_t += A_t^T dY_t. Where the
 * operand is not broadcast each t has its own gradient matrix, so the GEMMs accumulate into it
 * (beta = 1). Where it is broadcast, the per-t products go to the workspace (beta = 0) and a
 * reduction kernel adds, for each element of the operand's gradient, the products of every t that
 * maps to it (one thread per element, the matrix index fastest: coalesced). */
#include "ops/cuda/common.cuh"

#include "ops/gemm.h"

/* The operands seen as batches of matrices (as struct matmul_shape in ops/matmul.c). Batch dims
 * of size 1 are dropped; sa/sb/sy: matrix strides (in matrices) of A, B and Y along each dim, 0
 * where the operand broadcasts. */
struct mm_shape {
  int64_t M, K, N;
  int64_t a_batch, b_batch, nbatch; /* matrices in A, B, Y */
  int nd;
  int64_t dim[OD_MAX_DIMS], sa[OD_MAX_DIMS], sb[OD_MAX_DIMS], sy[OD_MAX_DIMS];
};

static enum od_status mm_shape(struct od_kernel_ctx *ctx, struct mm_shape *s) {
  const struct od_tensor *A = ctx->in[0], *B = ctx->in[1];
  if (A->dtype != OD_DTYPE_FLOAT || B->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "MatMul on CUDA supports float32, not %s",
                      od_dtype_name(A->dtype));
  if (A->rank < 1 || B->rank < 1) return od_err_set(ctx->err, OD_ERR_SHAPE, "MatMul needs at least 1-D operands");
  s->M = A->rank >= 2 ? A->dims[A->rank - 2] : 1;
  s->K = A->dims[A->rank - 1];
  s->N = B->rank >= 2 ? B->dims[B->rank - 1] : 1;
  int ar = A->rank > 2 ? A->rank - 2 : 0, br = B->rank > 2 ? B->rank - 2 : 0, r;
  int64_t batch[OD_MAX_DIMS], sa[OD_MAX_DIMS], sb[OD_MAX_DIMS];
  OD_TRY(od_broadcast_shapes(ar, A->dims, br, B->dims, &r, batch, ctx->err));
  od_broadcast_strides(ar, A->dims, r, batch, sa);
  od_broadcast_strides(br, B->dims, r, batch, sb);
  s->a_batch = s->b_batch = s->nbatch = 1;
  for (int i = 0; i < ar; i++) s->a_batch *= A->dims[i];
  for (int i = 0; i < br; i++) s->b_batch *= B->dims[i];
  s->nd = 0;
  for (int i = 0; i < r; i++) {
    s->nbatch *= batch[i];
    if (batch[i] == 1) continue;
    s->dim[s->nd] = batch[i];
    s->sa[s->nd] = sa[i];
    s->sb[s->nd] = sb[i];
    s->nd++;
  }
  for (int i = s->nd - 1; i >= 0; i--) s->sy[i] = i == s->nd - 1 ? 1 : s->sy[i + 1] * s->dim[i + 1];
  return OD_OK;
}

/* Merges adjacent dims where all of a, b, c step uniformly (c: the strides of the product's
 * output, a and b of its operands; any may be 0). Returns the new dim count. */
static int mm_merge(int nd, int64_t *dim, int64_t *a, int64_t *b, int64_t *c) {
  int out = 0;
  for (int i = 0; i < nd; i++) {
    if (out > 0) {
      int j = out - 1;
      if (a[j] == a[i] * dim[i] && b[j] == b[i] * dim[i] && c[j] == c[i] * dim[i]) {
        dim[j] *= dim[i];
        a[j] = a[i];
        b[j] = b[i];
        c[j] = c[i];
        continue;
      }
    }
    dim[out] = dim[i];
    a[out] = a[i];
    b[out] = b[i];
    c[out] = c[i];
    out++;
  }
  return out;
}

/* C_t = alpha op(A_t) op(B_t) + beta C_t over the batch dims (dim, and matrix strides sa, sb, sc
 * in matrices of ma, mb, mc elements): merged, then one strided-batched GEMM per outer index. */
static enum od_status mm_batched(struct od_kernel_ctx *ctx, int nd, const int64_t *dim_in, const int64_t *sa_in,
                                 const int64_t *sb_in, const int64_t *sc_in, bool ta, bool tb, int64_t M, int64_t N,
                                 int64_t K, const float *A, int64_t lda, int64_t ma, const float *B, int64_t ldb,
                                 int64_t mb, float beta, float *C, int64_t ldc, int64_t mc) {
  int64_t dim[OD_MAX_DIMS], sa[OD_MAX_DIMS], sb[OD_MAX_DIMS], sc[OD_MAX_DIMS], idx[OD_MAX_DIMS] = {0};
  for (int i = 0; i < nd; i++) {
    dim[i] = dim_in[i];
    sa[i] = sa_in[i];
    sb[i] = sb_in[i];
    sc[i] = sc_in[i];
  }
  nd = mm_merge(nd, dim, sa, sb, sc);
  if (nd == 0) return od_cuda_sgemm(ctx, ta, tb, M, N, K, 1.0f, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
  int64_t inner = dim[nd - 1], outer = 1;
  for (int i = 0; i < nd - 1; i++) outer *= dim[i];
  for (int64_t t = 0; t < outer; t++) {
    int64_t ao = 0, bo = 0, co = 0;
    for (int i = 0; i < nd - 1; i++) {
      ao += idx[i] * sa[i];
      bo += idx[i] * sb[i];
      co += idx[i] * sc[i];
    }
    OD_TRY(od_cuda_sgemm(ctx, ta, tb, M, N, K, 1.0f, A + ao * ma, lda, sa[nd - 1] * ma, B + bo * mb, ldb,
                         sb[nd - 1] * mb, beta, C + co * mc, ldc, sc[nd - 1] * mc, inner));
    for (int i = nd - 2; i >= 0; i--) {
      if (++idx[i] < dim[i]) break;
      idx[i] = 0;
    }
  }
  return OD_OK;
}

extern "C" enum od_status od_cuda_matmul_fwd(struct od_kernel_ctx *ctx) {
  struct mm_shape s;
  OD_TRY(mm_shape(ctx, &s));
  const float *A = (const float *)ctx->in[0]->data, *B = (const float *)ctx->in[1]->data;
  float *Y = (float *)ctx->out[0]->data;
  int64_t M = s.M, K = s.K, N = s.N;
  if (s.nbatch == 0 || M == 0 || N == 0) return OD_OK;
  if (s.b_batch == 1 && s.a_batch == s.nbatch)
    return od_cuda_sgemm(ctx, false, false, s.nbatch * M, N, K, 1.0f, A, K, 0, B, N, 0, 0.0f, Y, N, 0, 1);
  return mm_batched(ctx, s.nd, s.dim, s.sa, s.sb, s.sy, false, false, M, N, K, A, K, M * K, B, N, K * N, 0.0f, Y, N,
                    M * N);
}

/* Gradient reduction over broadcast batch dims: g (the operand's gradient, its matrices in the
 * order of its own batch dims) += sum of the per-output-batch products p (nbatch matrices of
 * `inner` elements) that map to each of its matrices. keep: the dims the operand has (stride != 0),
 * red: the dims it broadcasts along; strides are the output's, in matrices. */
struct mm_reduce {
  int n_keep, n_red;
  int64_t keep_dim[OD_MAX_DIMS], keep_sy[OD_MAX_DIMS], red_dim[OD_MAX_DIMS], red_sy[OD_MAX_DIMS];
  int64_t n_red_total, inner;
};

static __global__ void reduce_batch_kernel(const float *p, float *g, struct mm_reduce r, int64_t total) {
  OD_GRID_LOOP(o, total) {
    int64_t mat = o / r.inner, e = o - mat * r.inner, base = 0;
    for (int i = r.n_keep - 1; i >= 0; i--) {
      base += (mat % r.keep_dim[i]) * r.keep_sy[i];
      mat /= r.keep_dim[i];
    }
    float sum = 0.0f;
    for (int64_t t = 0; t < r.n_red_total; t++) {
      int64_t q = t, off = base;
      for (int i = r.n_red - 1; i >= 0; i--) {
        off += (q % r.red_dim[i]) * r.red_sy[i];
        q /= r.red_dim[i];
      }
      sum += p[off * r.inner + e];
    }
    g[o] += sum;
  }
}

/* The gradient of one operand (stride st over s's dims, `own` matrices of `inner` elements):
 * when it is not broadcast, the batched GEMM accumulates straight into g; otherwise into the
 * workspace, then reduce_batch_kernel. The GEMM is op(X) op(Z) with X, Z over the output batch. */
static enum od_status mm_grad(struct od_kernel_ctx *ctx, const struct mm_shape *s, const int64_t *st, int64_t own,
                              float *g, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *X,
                              int64_t ldx, int64_t mx, const int64_t *sx, const float *Z, int64_t ldz, int64_t mz,
                              const int64_t *sz) {
  int64_t inner = M * N;
  if (own == s->nbatch)
    return mm_batched(ctx, s->nd, s->dim, sx, sz, st, ta, tb, M, N, K, X, ldx, mx, Z, ldz, mz, 1.0f, g, N, inner);
  float *p = NULL;
  OD_TRY(od_cuda_workspace(ctx->dev, (size_t)(s->nbatch * inner) * sizeof(float), (void **)&p, ctx->err));
  OD_TRY(mm_batched(ctx, s->nd, s->dim, sx, sz, s->sy, ta, tb, M, N, K, X, ldx, mx, Z, ldz, mz, 0.0f, p, N, inner));
  struct mm_reduce r = {};
  r.inner = inner;
  r.n_red_total = 1;
  for (int i = 0; i < s->nd; i++) {
    if (st[i] != 0) {
      r.keep_dim[r.n_keep] = s->dim[i];
      r.keep_sy[r.n_keep++] = s->sy[i];
    } else {
      r.red_dim[r.n_red] = s->dim[i];
      r.red_sy[r.n_red++] = s->sy[i];
      r.n_red_total *= s->dim[i];
    }
  }
  int64_t total = own * inner;
  OD_LAUNCH(reduce_batch_kernel, od_cuda_blocks(total), OD_CUDA_THREADS, od_cuda_stream(ctx->dev))(p, g, r, total);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

/* Per batch element t: dA_t += dY_t B_t^T (M x N)(N x K), dB_t += A_t^T dY_t (K x M)(M x N). */
extern "C" enum od_status od_cuda_matmul_bwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *dYt = ctx->dout[0];
  struct od_tensor *dA = ctx->din[0], *dB = ctx->din[1];
  if (!dYt || (!dA && !dB)) return OD_OK;
  struct mm_shape s;
  OD_TRY(mm_shape(ctx, &s));
  const float *A = (const float *)ctx->in[0]->data, *B = (const float *)ctx->in[1]->data;
  const float *dY = (const float *)dYt->data;
  int64_t M = s.M, K = s.K, N = s.N;
  if (s.nbatch == 0 || M == 0 || N == 0 || K == 0) return OD_OK;
  if (s.b_batch == 1 && s.a_batch == s.nbatch) {
    if (dA) OD_TRY(od_cuda_sgemm(ctx, false, true, s.nbatch * M, K, N, 1.0f, dY, N, 0, B, N, 0, 1.0f,
                                 (float *)dA->data, K, 0, 1));
    if (dB) OD_TRY(od_cuda_sgemm(ctx, true, false, K, N, s.nbatch * M, 1.0f, A, K, 0, dY, N, 0, 1.0f,
                                 (float *)dB->data, N, 0, 1));
    return OD_OK;
  }
  if (dA) OD_TRY(mm_grad(ctx, &s, s.sa, s.a_batch, (float *)dA->data, false, true, M, K, N, dY, N, M * N, s.sy, B, N,
                         K * N, s.sb));
  if (dB) OD_TRY(mm_grad(ctx, &s, s.sb, s.b_batch, (float *)dB->data, true, false, K, N, M, A, K, M * K, s.sa, dY, N,
                         M * N, s.sy));
  return OD_OK;
}
