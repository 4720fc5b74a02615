/* ops/slice.c: ONNX Slice (opsets 1, 10, 11, 13). numpy-style data[starts:ends:steps] along axes.
 *   1: starts, ends, axes are attributes (steps are 1)
 *   10: starts, ends, axes (optional), steps (optional) are inputs (int32 or int64)
 *   11: negative axes; negative steps          13: more dtypes
 * Negative starts/ends count from the back; out-of-range values (INT64_MAX / INT64_MIN as "to the
 * end") are clamped: to [0, d] for positive steps, starts to [0, d-1] and ends to [-1, d-1] for
 * negative ones. The copy is a strided view of the input (ops/transpose.h), so every fixed-size
 * dtype works; backward (float, double) adds dY into the same view of dX.
 * Spec: https://onnx.ai/onnx/operators/onnx__Slice.html */
#include <stdbool.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "ops/slice.h"
#include "ops/transpose.h"

static enum od_status slice_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct slice_attrs *a = attrs;
  if (node->opset >= 10) return OD_OK;
  size_t ns = 0, ne = 0, na = 0;
  bool ps = false, pe = false;
  OD_TRY(od_attr_get_ints(node, "starts", a->starts, OD_MAX_DIMS, &ns, &ps, err));
  OD_TRY(od_attr_get_ints(node, "ends", a->ends, OD_MAX_DIMS, &ne, &pe, err));
  OD_TRY(od_attr_get_ints(node, "axes", a->axes, OD_MAX_DIMS, &na, &a->has_axes, err));
  if (!ps || !pe) return od_err_set(err, OD_ERR_INVALID_MODEL, "attributes 'starts' and 'ends' are required before opset 10");
  if (ns != ne || (a->has_axes && na != ns))
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attributes 'starts' (%zu), 'ends' (%zu) and 'axes' (%zu) differ in length",
                      ns, ne, na);
  a->n_starts = (int)ns;
  a->n_ends = (int)ne;
  a->n_axes = (int)na;
  return OD_OK;
}

/* Reads input i (int32/int64, 1-D, n values expected; n < 0: any count, set *n). */
static enum od_status slice_read(const struct od_tensor *t, const char *what, int64_t *out, int *n, struct od_err *err) {
  if (t->dtype != OD_DTYPE_INT64 && t->dtype != OD_DTYPE_INT32)
    return od_err_set(err, OD_ERR_SHAPE, "input '%s' must be int32 or int64, not %s", what, od_dtype_name(t->dtype));
  int64_t cnt = od_tensor_numel(t);
  if (t->rank != 1 || cnt > OD_MAX_DIMS || (*n >= 0 && cnt != *n))
    return od_err_set(err, OD_ERR_SHAPE, "input '%s' has %lld values (rank %d), expected %d", what, (long long)cnt,
                      t->rank, *n >= 0 ? *n : OD_MAX_DIMS);
  for (int64_t i = 0; i < cnt; i++) out[i] = od_tensor_get_i64(t, i);
  *n = (int)cnt;
  return OD_OK;
}

/* Fills plan from starts/ends/axes/steps (attributes or inputs). *pending when an input has no
 * value yet. in[i] is NULL or has dtype 0 where omitted. (Declared in ops/slice.h.) */
enum od_status od_slice_make_plan(const struct od_node *node, const struct slice_attrs *a, const struct od_tensor *X,
                                  const struct od_tensor *const *in, int n_in, struct slice_plan *p, bool *pending,
                                  struct od_err *err) {
  int64_t starts[OD_MAX_DIMS], ends[OD_MAX_DIMS], axes[OD_MAX_DIMS], steps[OD_MAX_DIMS];
  int n = -1, r = X->rank;
  bool has_axes = false;
  *pending = false;
  if (node->opset < 10) {
    n = a->n_starts;
    memcpy(starts, a->starts, sizeof(int64_t) * (size_t)n);
    memcpy(ends, a->ends, sizeof(int64_t) * (size_t)n);
    memcpy(axes, a->axes, sizeof(int64_t) * (size_t)a->n_axes);
    has_axes = a->has_axes;
    for (int i = 0; i < n; i++) steps[i] = 1;
  } else {
    static const char *const names[] = {"", "starts", "ends", "axes", "steps"};
    if (n_in < 3 || !in[1] || !in[2] || !in[1]->dtype || !in[2]->dtype)
      return od_err_set(err, OD_ERR_INVALID_MODEL, "inputs 'starts' and 'ends' are required");
    for (int i = 1; i < n_in && i <= 4; i++)
      if (in[i] && in[i]->dtype && !in[i]->data) {
        *pending = true;
        return OD_OK;
      }
    OD_TRY(slice_read(in[1], names[1], starts, &n, err));
    OD_TRY(slice_read(in[2], names[2], ends, &n, err));
    if (n_in > 3 && in[3] && in[3]->dtype) {
      OD_TRY(slice_read(in[3], names[3], axes, &n, err));
      has_axes = true;
    }
    if (n_in > 4 && in[4] && in[4]->dtype) {
      OD_TRY(slice_read(in[4], names[4], steps, &n, err));
    } else {
      for (int i = 0; i < n; i++) steps[i] = 1;
    }
  }
  for (int k = 0; k < r; k++) {
    p->start[k] = 0;
    p->step[k] = 1;
    p->count[k] = X->dims[k];
  }
  unsigned seen = 0;
  for (int i = 0; i < n; i++) {
    int ax = i;
    if (has_axes) OD_TRY(od_axis_normalize(axes[i], r, "axes value", &ax, err));
    else if (i >= r) return od_err_set(err, OD_ERR_SHAPE, "%d starts for an input of rank %d", n, r);
    if (seen & (1u << ax)) return od_err_set(err, OD_ERR_SHAPE, "axes repeat axis %d", ax);
    seen |= 1u << ax;
    int64_t d = X->dims[ax], s = starts[i], e = ends[i], st = steps[i];
    if (st == 0) return od_err_set(err, OD_ERR_SHAPE, "steps value %d is 0", i);
    if (s < 0) s += d; /* no overflow: d >= 0 and s < 0 */
    if (e < 0) e += d;
    int64_t cnt;
    if (st > 0) {
      s = s < 0 ? 0 : s > d ? d : s;
      e = e < 0 ? 0 : e > d ? d : e;
      cnt = e > s ? (e - s - 1) / st + 1 : 0; /* ceil((e - s) / st) without overflow */
    } else {
      s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
      e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
      int64_t nst = st == INT64_MIN ? INT64_MAX : -st;
      cnt = s > e ? (s - e - 1) / nst + 1 : 0;
    }
    if (d == 0) cnt = 0;
    p->start[ax] = cnt ? s : 0;
    p->step[ax] = cnt > 1 ? st : 1; /* a huge step with one element must not overflow the stride */
    p->count[ax] = cnt;
  }
  return OD_OK;
}

static enum od_status slice_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *X = &ctx->in[0];
  const struct od_tensor *in[5] = {NULL};
  for (int i = 0; i < ctx->n_in && i < 5; i++) in[i] = &ctx->in[i];
  struct slice_plan p;
  bool pending;
  OD_TRY(od_slice_make_plan(ctx->node, ctx->attrs, X, in, ctx->n_in, &p, &pending, ctx->err));
  if (pending) {
    ctx->needs_values = true;
    return OD_OK;
  }
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = X->rank;
  memcpy(Y->dims, p.count, sizeof(int64_t) * (size_t)X->rank);
  return OD_OK;
}

static enum od_status slice_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  const struct od_tensor *in[5] = {NULL};
  for (int i = 0; i < ctx->n_in && i < 5; i++) in[i] = ctx->in[i];
  struct slice_plan p;
  bool pending;
  OD_TRY(od_slice_make_plan(ctx->node, ctx->attrs, X, in, ctx->n_in, &p, &pending, ctx->err));
  if (pending) return od_err_set(ctx->err, OD_ERR_INTERNAL, "slice parameters have no value at run time");
  int64_t xs[OD_MAX_DIMS], ss[OD_MAX_DIMS], off = 0;
  od_strides(X->rank, X->dims, xs);
  for (int k = 0; k < X->rank; k++) {
    off += p.start[k] * xs[k];
    ss[k] = p.step[k] * xs[k];
  }
  size_t es = od_dtype_size(X->dtype);
  if (od_tensor_numel(Y) == 0) return OD_OK;
  od_strided_copy(ctx->pool, es, Y->rank, Y->dims, Y->data, NULL, (const char *)X->data + off * (int64_t)es, ss);
  return OD_OK;
}

/* Backward: Y[j] = X[start + j * step] (per axis), an injective read, so dX[start + j * step] +=
 * dY[j] through the same strided view (negative steps walk back); the rest of dX gets nothing. */
static enum od_status slice_backward_cpu(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY || od_tensor_numel(dY) == 0) return OD_OK;
  const struct od_tensor *in[5] = {NULL};
  for (int i = 0; i < ctx->n_in && i < 5; i++) in[i] = ctx->in[i];
  struct slice_plan p;
  bool pending;
  OD_TRY(od_slice_make_plan(ctx->node, ctx->attrs, ctx->in[0], in, ctx->n_in, &p, &pending, ctx->err));
  if (pending) return od_err_set(ctx->err, OD_ERR_INTERNAL, "slice parameters have no value at run time");
  int64_t xs[OD_MAX_DIMS], ds[OD_MAX_DIMS], off = 0;
  od_strides(dX->rank, dX->dims, xs);
  for (int k = 0; k < dX->rank; k++) {
    off += p.start[k] * xs[k];
    ds[k] = p.step[k] * xs[k];
  }
  size_t es = od_dtype_size(dX->dtype);
  return od_strided_add(ctx->pool, dX->dtype, dY->rank, dY->dims, (char *)dX->data + off * (int64_t)es, ds, dY->data,
                        NULL, "Slice", ctx->err);
}

const struct od_op_kernels od_kernels_slice = {
    .attrs_size = sizeof(struct slice_attrs),
    .parse = slice_parse,
    .infer = slice_infer,
    .forward = {[OD_DEVICE_CPU] = slice_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_slice_fwd)},
    .backward = {[OD_DEVICE_CPU] = slice_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_slice_bwd)},
    .no_grad_inputs = 0x1eu, /* starts, ends, axes, steps */
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};
