/* ops/gather.c: ONNX Gather (opsets 1, 11, 13). Picks entries of data along axis by indices:
 *   Y.shape = data.shape[:axis] + indices.shape + data.shape[axis+1:]
 *   Y[i.., j.., k..] = data[i.., indices[j..], k..]
 * Indices are int32 or int64; negative ones count from the back (spelled out from opset 11, and
 * accepted for every version). An index outside [-d, d-1] is an error naming it and its position;
 * all indices are checked before anything is read. data: every fixed-size dtype (byte copies);
 * backward (scatter-add into data's gradient) float and double.
 * Spec: https://onnx.ai/onnx/operators/onnx__Gather.html */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/gather.h"
#include "ops/op.h"
#include "runtime/pool.h"

static enum od_status gather_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct gather_attrs *a = attrs;
  return od_attr_get_int(node, "axis", 0, &a->axis, err);
}

static enum od_status gather_infer(struct od_infer_ctx *ctx) {
  const struct gather_attrs *a = ctx->attrs;
  const struct od_tensor *X = &ctx->in[0], *I = &ctx->in[1];
  if (X->rank == 0) return od_err_set(ctx->err, OD_ERR_SHAPE, "input 'data' must have rank >= 1, got a scalar");
  int axis;
  OD_TRY(od_axis_normalize(a->axis, X->rank, "attribute 'axis'", &axis, ctx->err));
  if (I->dtype != OD_DTYPE_INT64 && I->dtype != OD_DTYPE_INT32)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "input 'indices' must be int32 or int64, not %s", od_dtype_name(I->dtype));
  int r = X->rank - 1 + I->rank;
  if (r > OD_MAX_DIMS) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, OD_MAX_DIMS);
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = 0;
  for (int k = 0; k < axis; k++) Y->dims[Y->rank++] = X->dims[k];
  for (int k = 0; k < I->rank; k++) Y->dims[Y->rank++] = I->dims[k];
  for (int k = axis + 1; k < X->rank; k++) Y->dims[Y->rank++] = X->dims[k];
  return OD_OK;
}

struct gather_job {
  const char *x;
  char *y;
  const int64_t *idx; /* normalised to [0, d) */
  int64_t n_idx, d;
  size_t row;         /* bytes of one slice data[i.., j, :] */
};

/* Output rows [begin, end): row t = (outer o, index j). */
static void gather_rows(void *p, int64_t begin, int64_t end) {
  const struct gather_job *jb = p;
  for (int64_t t = begin; t < end; t++) {
    int64_t o = t / jb->n_idx, j = t % jb->n_idx;
    memcpy(jb->y + (size_t)t * jb->row, jb->x + (size_t)(o * jb->d + jb->idx[j]) * jb->row, jb->row);
  }
}

static enum od_status gather_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct gather_attrs *a = ctx->attrs;
  const struct od_tensor *X = ctx->in[0], *I = ctx->in[1];
  struct od_tensor *Y = ctx->out[0];
  int axis;
  OD_TRY(od_axis_normalize(a->axis, X->rank, "attribute 'axis'", &axis, ctx->err));
  int64_t d = X->dims[axis], n_idx = od_tensor_numel(I), outer = 1, inner = 1;
  for (int k = 0; k < axis; k++) outer *= X->dims[k];
  for (int k = axis + 1; k < X->rank; k++) inner *= X->dims[k];
  if (n_idx == 0) return OD_OK;
  int64_t *idx = malloc(sizeof *idx * (size_t)n_idx);
  if (!idx) return od_err_set(ctx->err, OD_ERR_OOM, "cannot allocate %lld indices", (long long)n_idx);
  for (int64_t j = 0; j < n_idx; j++) {
    int64_t v = od_tensor_get_i64(I, j);
    if (v < -d || v >= d) {
      free(idx);
      char s[128];
      return od_err_set(ctx->err, OD_ERR_INVALID_ARG,
                        "index %lld at position %lld of 'indices' is out of range [%lld, %lld] for axis %d of %s",
                        (long long)v, (long long)j, (long long)-d, (long long)d - 1, axis,
                        od_shape_str(X->rank, X->dims, s, sizeof s));
    }
    idx[j] = v < 0 ? v + d : v;
  }
  struct gather_job jb = {X->data, Y->data, idx, n_idx, d, (size_t)inner * od_dtype_size(X->dtype)};
  if (jb.row && outer)
    od_pool_parallel_for(ctx->pool, outer * n_idx, 1 + (int64_t)(32768 / jb.row), gather_rows, &jb);
  free(idx);
  return OD_OK;
}

/* Backward: Y[o, j, k] = X[o, idx[j], k], so dX[o, idx[j], k] += dY[o, j, k] for every j; a
 * repeated index accumulates each of its rows. Tasks are (o, a chunk of k): each owns its dX
 * elements and walks all j in order, so the sums need no locks and are deterministic. */
#define GATHER_BWD_CHUNK 256

struct gather_bwd_job {
  const char *dy;
  char *dx;
  const int64_t *idx;
  int64_t n_idx, d, inner, chunks;
  bool dbl;
};

#define GATHER_BWD_LOOP(T)                                                        \
  for (int64_t j = 0; j < jb->n_idx; j++) {                                       \
    T *dst = (T *)jb->dx + (o * jb->d + jb->idx[j]) * jb->inner + k0;             \
    const T *src = (const T *)jb->dy + (o * jb->n_idx + j) * jb->inner + k0;      \
    for (int64_t k = 0; k < k1 - k0; k++) dst[k] += src[k];                       \
  }

static void gather_bwd_tasks(void *p, int64_t begin, int64_t end) {
  const struct gather_bwd_job *jb = p;
  for (int64_t t = begin; t < end; t++) {
    int64_t o = t / jb->chunks, k0 = (t % jb->chunks) * GATHER_BWD_CHUNK;
    int64_t k1 = k0 + GATHER_BWD_CHUNK < jb->inner ? k0 + GATHER_BWD_CHUNK : jb->inner;
    if (jb->dbl) {
      GATHER_BWD_LOOP(double)
    } else {
      GATHER_BWD_LOOP(float)
    }
  }
}

static enum od_status gather_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct gather_attrs *a = ctx->attrs;
  const struct od_tensor *X = ctx->in[0], *I = ctx->in[1];
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT && dX->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "no backward for %s (float and double only)",
                      od_dtype_name(dX->dtype));
  int axis;
  OD_TRY(od_axis_normalize(a->axis, X->rank, "attribute 'axis'", &axis, ctx->err));
  int64_t d = X->dims[axis], n_idx = od_tensor_numel(I), outer = 1, inner = 1;
  for (int k = 0; k < axis; k++) outer *= X->dims[k];
  for (int k = axis + 1; k < X->rank; k++) inner *= X->dims[k];
  if (n_idx == 0 || outer == 0 || inner == 0) return OD_OK;
  int64_t *idx = malloc(sizeof *idx * (size_t)n_idx);
  if (!idx) return od_err_set(ctx->err, OD_ERR_OOM, "cannot allocate %lld indices", (long long)n_idx);
  for (int64_t j = 0; j < n_idx; j++) {
    int64_t v = od_tensor_get_i64(I, j);
    if (v < -d || v >= d) {
      free(idx);
      return od_err_set(ctx->err, OD_ERR_INVALID_ARG,
                        "index %lld at position %lld of 'indices' is out of range for axis %d", (long long)v,
                        (long long)j, axis);
    }
    idx[j] = v < 0 ? v + d : v;
  }
  struct gather_bwd_job jb = {dY->data, dX->data, idx, n_idx, d, inner,
                              (inner + GATHER_BWD_CHUNK - 1) / GATHER_BWD_CHUNK, dX->dtype == OD_DTYPE_DOUBLE};
  int64_t per_task = n_idx * (inner < GATHER_BWD_CHUNK ? inner : GATHER_BWD_CHUNK);
  od_pool_parallel_for(ctx->pool, outer * jb.chunks, 1 + 32768 / per_task, gather_bwd_tasks, &jb);
  free(idx);
  return OD_OK;
}

const struct od_op_kernels od_kernels_gather = {
    .attrs_size = sizeof(struct gather_attrs),
    .parse = gather_parse,
    .infer = gather_infer,
    .forward = {[OD_DEVICE_CPU] = gather_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_gather_fwd)},
    .backward = {[OD_DEVICE_CPU] = gather_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_gather_bwd)},
    .no_grad_inputs = 1u << 1,
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool (indices int32, int64)",
};
