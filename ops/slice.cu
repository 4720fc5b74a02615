/* ops/slice.cu: CUDA Slice. The plan (first index, step, count per axis) is the CPU's
 * (od_slice_make_plan, ops/slice.c); from opset 10 starts/ends/axes/steps are tiny device tensors,
 * read on the host once per node (od_cuda_small_to_host: one stream wait) and the plan kept in
 * the node state for later steps (their values were fixed when the program was compiled: the
 * output shape depends on them). Forward: the strided view X[start + i * step] through the copy
 * of ops/cuda/index.cuh (negative steps give negative strides; 16-byte units when the innermost
 * run is contiguous: channel slices); any dtype. Backward (float): the same view of dX += dY (a
 * fresh dX, ops/op.h din_fresh, is zeroed first: the view covers only part of it). */
#include "ops/cuda/index.cuh"

extern "C" {
#include "ops/slice.h"
}

struct slice_state {
  struct od_node_state base;
  bool ready;
  int rank;
  int64_t xdims[OD_MAX_DIMS];
  struct slice_plan plan;
};

/* The node's plan for input X (read and kept on first use, or when X's shape changed). */
static enum od_status slice_plan_get(struct od_kernel_ctx *ctx, const struct od_tensor *X, struct slice_plan *out) {
  struct slice_state local, *s = od_cuda_state(ctx, &local, od_cuda_state_free);
  if (!s) return od_err_set(ctx->err, OD_ERR_OOM, "cannot allocate the Slice state");
  if (s->ready && s->rank == X->rank && !memcmp(s->xdims, X->dims, sizeof(int64_t) * (size_t)X->rank)) {
    *out = s->plan;
    return OD_OK;
  }
  struct od_tensor host[5];
  const struct od_tensor *in[5] = {NULL};
  int64_t bufs[4][2 * OD_MAX_DIMS];
  in[0] = X;
  for (int i = 1; i < ctx->n_in && i < 5; i++) {
    if (ctx->node->opset < 10 || !ctx->in[i]) continue;
    OD_TRY(od_cuda_small_to_host(ctx, ctx->in[i], &host[i], bufs[i - 1], sizeof bufs[i - 1]));
    in[i] = &host[i];
  }
  bool pending;
  OD_TRY(od_slice_make_plan(ctx->node, (const struct slice_attrs *)ctx->attrs, X, in, ctx->n_in, &s->plan, &pending,
                            ctx->err));
  if (pending) return od_err_set(ctx->err, OD_ERR_INTERNAL, "slice parameters have no value at run time");
  s->ready = true;
  s->rank = X->rank;
  memcpy(s->xdims, X->dims, sizeof(int64_t) * (size_t)X->rank);
  *out = s->plan;
  return OD_OK;
}

/* Offset of the first element read and the view's strides over X (elements). */
static void slice_view(const struct slice_plan *p, const struct od_tensor *X, int64_t *off, int64_t *vs) {
  int64_t xs[OD_MAX_DIMS];
  od_strides(X->rank, X->dims, xs);
  *off = 0;
  for (int k = 0; k < X->rank; k++) {
    *off += p->start[k] * xs[k];
    vs[k] = p->step[k] * xs[k];
  }
}

enum od_status od_cuda_slice_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  if (od_tensor_numel(Y) == 0) return OD_OK;
  struct slice_plan p;
  OD_TRY(slice_plan_get(ctx, X, &p));
  int64_t off, vs[OD_MAX_DIMS];
  slice_view(&p, X, &off, vs);
  size_t es = od_dtype_size(X->dtype);
  return od_cuda_strided_copy(ctx, es, Y->rank, Y->dims, Y->data, NULL, (const char *)X->data + off * (int64_t)es, vs);
}

enum od_status od_cuda_slice_bwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Slice backward on CUDA: float only");
  if (od_tensor_numel(dY) == 0) return od_cuda_fresh_zero(ctx, 1u);
  struct slice_plan p;
  OD_TRY(slice_plan_get(ctx, ctx->in[0], &p));
  bool whole = od_tensor_numel(dY) == od_tensor_numel(dX); /* the view is a permutation of dX */
  if (!whole) OD_TRY(od_cuda_fresh_zero(ctx, 1u));
  int64_t off, vs[OD_MAX_DIMS];
  slice_view(&p, ctx->in[0], &off, vs);
  return od_cuda_strided_acc(ctx, whole && od_cuda_fresh(ctx, 0), dY->rank, dY->dims, (float *)dX->data + off, vs,
                             (const float *)dY->data, NULL);
}
