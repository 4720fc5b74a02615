/* ops/pad.c: ONNX Pad (opsets 1, 2, 11, 13, 18, 19, 21, 23-25).
 *   1: attributes 'paddings' ([x1_begin, x2_begin, ..., x1_end, x2_end, ...]), 'mode', 'value'
 *   2: the same with the attribute named 'pads'
 *   11: 'pads' (int64 1-D) and optional 'constant_value' (a scalar of the data's dtype) are inputs
 *   18: optional input 'axes': pads has 2 * len(axes) values, for those axes only
 *   19: mode 'wrap'         later: more dtypes
 * Modes: constant (the value, default 0), reflect (mirror about the edge element, numpy
 * 'reflect'; repeats when the pad is longer than the dim), edge (repeat the edge element), wrap
 * (periodic). Negative pads crop; for the non-constant modes the input is cropped first and the
 * cropped block is what gets reflected / repeated (as onnxruntime does).
 * Every output element reads one input index per axis (a per-axis index map, -1 = the constant),
 * so the copy moves bytes and serves every fixed-size dtype. Backward (float, double) adds the
 * gradient back through the same maps (see pad_backward_cpu).
 * Spec: https://onnx.ai/onnx/operators/onnx__Pad.html */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "ops/pad.h"
#include "runtime/pool.h"

static enum od_status pad_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct pad_attrs *a = attrs;
  const char *mode;
  OD_TRY(od_attr_get_string(node, "mode", "constant", &mode, err));
  if (!strcmp(mode, "constant")) a->mode = PAD_CONSTANT;
  else if (!strcmp(mode, "reflect")) a->mode = PAD_REFLECT;
  else if (!strcmp(mode, "edge")) a->mode = PAD_EDGE;
  else if (!strcmp(mode, "wrap")) a->mode = PAD_WRAP;
  else return od_err_set(err, OD_ERR_UNSUPPORTED, "attribute 'mode' '%s' is not one of constant, reflect, edge, wrap", mode);
  if (node->opset >= 11) return OD_OK;
  const char *name = node->opset < 2 ? "paddings" : "pads";
  size_t n = 0;
  bool present = false;
  OD_TRY(od_attr_get_ints(node, name, a->pads, 2 * OD_MAX_DIMS, &n, &present, err));
  if (!present) return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute '%s' is required before opset 11", name);
  a->n_pads = (int)n;
  return od_attr_get_float(node, "value", 0.0f, &a->value, err);
}

/* Begin and end pads of every axis of X (pb[k], pe[k]). *pending when an input has no value yet.
 * in[i] is NULL or has dtype 0 where omitted. (Declared in ops/pad.h.) */
enum od_status od_pad_amounts(const struct od_node *node, const struct pad_attrs *a, const struct od_tensor *X,
                              const struct od_tensor *const *in, int n_in, int64_t *pb, int64_t *pe, bool *pending,
                              struct od_err *err) {
  int r = X->rank;
  int64_t pads[2 * OD_MAX_DIMS];
  int n, axes[OD_MAX_DIMS];
  *pending = false;
  for (int k = 0; k < r; k++) pb[k] = pe[k] = 0;
  if (node->opset < 11) {
    n = a->n_pads;
    memcpy(pads, a->pads, sizeof(int64_t) * (size_t)n);
  } else {
    const struct od_tensor *P = n_in > 1 ? in[1] : NULL;
    if (!P || !P->dtype) return od_err_set(err, OD_ERR_INVALID_MODEL, "input 'pads' is required");
    if (P->dtype != OD_DTYPE_INT64)
      return od_err_set(err, OD_ERR_SHAPE, "input 'pads' must be int64, not %s", od_dtype_name(P->dtype));
    int64_t cnt = od_tensor_numel(P);
    if (P->rank != 1 || cnt > 2 * OD_MAX_DIMS)
      return od_err_set(err, OD_ERR_SHAPE, "input 'pads' must be 1-D with at most %d values", 2 * OD_MAX_DIMS);
    const struct od_tensor *A = n_in > 3 && in[3] && in[3]->dtype ? in[3] : NULL;
    if (!P->data || (A && !A->data)) {
      *pending = true;
      return OD_OK;
    }
    n = (int)cnt;
    for (int i = 0; i < n; i++) pads[i] = ((const int64_t *)P->data)[i];
    if (A) {
      if (A->dtype != OD_DTYPE_INT64 && A->dtype != OD_DTYPE_INT32)
        return od_err_set(err, OD_ERR_SHAPE, "input 'axes' must be int32 or int64, not %s", od_dtype_name(A->dtype));
      int64_t na = od_tensor_numel(A);
      if (A->rank != 1 || 2 * na != n)
        return od_err_set(err, OD_ERR_SHAPE, "input 'pads' has %d values for %lld axes", n, (long long)na);
      for (int i = 0; i < na; i++) OD_TRY(od_axis_normalize(od_tensor_get_i64(A, i), r, "axes value", &axes[i], err));
      for (int i = 0; i < na; i++) {
        pb[axes[i]] = pads[i];
        pe[axes[i]] = pads[na + i];
      }
      return OD_OK;
    }
  }
  if (n != 2 * r)
    return od_err_set(err, OD_ERR_SHAPE, "pads has %d values, the input has rank %d (needs %d)", n, r, 2 * r);
  for (int k = 0; k < r; k++) {
    pb[k] = pads[k];
    pe[k] = pads[r + k];
  }
  return OD_OK;
}

/* Output dims from the pads; errors for negative sizes and for non-constant modes with nothing left
 * to repeat. (Declared in ops/pad.h.) */
enum od_status od_pad_check(const struct pad_attrs *a, const struct od_tensor *X, const int64_t *pb, const int64_t *pe,
                            int64_t *out_dims, struct od_err *err) {
  char s[128];
  for (int k = 0; k < X->rank; k++) {
    int64_t d = X->dims[k];
    out_dims[k] = d + pb[k] + pe[k];
    if (out_dims[k] < 0)
      return od_err_set(err, OD_ERR_SHAPE, "pads %lld, %lld on axis %d of %s give a negative size", (long long)pb[k],
                        (long long)pe[k], k, od_shape_str(X->rank, X->dims, s, sizeof s));
    int64_t kept = d - (pb[k] < 0 ? -pb[k] : 0) - (pe[k] < 0 ? -pe[k] : 0);
    if (a->mode != PAD_CONSTANT && kept <= 0 && out_dims[k] > 0)
      return od_err_set(err, OD_ERR_SHAPE, "mode %s cannot pad axis %d of %s: nothing left to repeat",
                        a->mode == PAD_REFLECT ? "reflect" : a->mode == PAD_EDGE ? "edge" : "wrap", k,
                        od_shape_str(X->rank, X->dims, s, sizeof s));
  }
  return OD_OK;
}

static enum od_status pad_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *X = &ctx->in[0];
  const struct od_tensor *in[4] = {NULL};
  for (int i = 0; i < ctx->n_in && i < 4; i++) in[i] = &ctx->in[i];
  if (ctx->n_in > 2 && ctx->in[2].dtype && ctx->in[2].dtype != X->dtype)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "input 'constant_value' is %s, the data %s", od_dtype_name(ctx->in[2].dtype),
                      od_dtype_name(X->dtype));
  int64_t pb[OD_MAX_DIMS], pe[OD_MAX_DIMS];
  bool pending;
  OD_TRY(od_pad_amounts(ctx->node, ctx->attrs, X, in, ctx->n_in, pb, pe, &pending, ctx->err));
  if (pending) {
    ctx->needs_values = true;
    return OD_OK;
  }
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = X->rank;
  return od_pad_check(ctx->attrs, X, pb, pe, Y->dims, ctx->err);
}

struct pad_job {
  int rank;
  const int64_t *dims;         /* output dims */
  const int64_t *map[OD_MAX_DIMS]; /* per axis: input index of each output index, -1 = constant */
  int64_t xs[OD_MAX_DIMS];     /* input strides */
  int64_t lo, hi;              /* last axis: output run [lo, hi) reading consecutive input */
  size_t es;
  const char *x;
  char *y;
  unsigned char value[8];
  bool value_zero;
};

static void pad_fill(const struct pad_job *jb, char *d, int64_t n) {
  if (jb->value_zero) {
    memset(d, 0, (size_t)n * jb->es);
    return;
  }
  for (int64_t i = 0; i < n; i++) memcpy(d + (size_t)i * jb->es, jb->value, jb->es);
}

/* Output rows [begin, end) over the axes 0..rank-2. */
static void pad_rows(void *p, int64_t begin, int64_t end) {
  const struct pad_job *jb = p;
  int last = jb->rank - 1;
  int64_t n = jb->dims[last];
  const int64_t *ml = jb->map[last];
  size_t es = jb->es;
  for (int64_t r = begin; r < end; r++) {
    char *d = jb->y + (size_t)(r * n) * es;
    int64_t rem = r, off = 0;
    bool outside = false;
    for (int k = last - 1; k >= 0; k--) {
      int64_t m = jb->map[k][rem % jb->dims[k]];
      rem /= jb->dims[k];
      if (m < 0) outside = true;
      off += m * jb->xs[k];
    }
    if (outside) {
      pad_fill(jb, d, n);
      continue;
    }
    const char *s = jb->x + (size_t)off * es;
    for (int64_t o = 0; o < jb->lo; o++) {
      if (ml[o] < 0) pad_fill(jb, d + (size_t)o * es, 1);
      else memcpy(d + (size_t)o * es, s + (size_t)ml[o] * es, es);
    }
    if (jb->hi > jb->lo) memcpy(d + (size_t)jb->lo * es, s + (size_t)ml[jb->lo] * es, (size_t)(jb->hi - jb->lo) * es);
    for (int64_t o = jb->hi > jb->lo ? jb->hi : jb->lo; o < n; o++) {
      if (ml[o] < 0) pad_fill(jb, d + (size_t)o * es, 1);
      else memcpy(d + (size_t)o * es, s + (size_t)ml[o] * es, es);
    }
  }
}

/* Input index for output index o of an axis: c0 + f(o - b) where the kept (cropped) input block
 * is [c0, c0 + m) and b >= 0 is the begin pad. */
static int64_t pad_index(enum pad_mode mode, int64_t p, int64_t c0, int64_t m) {
  if (p >= 0 && p < m) return c0 + p;
  switch (mode) {
    case PAD_CONSTANT: return -1;
    case PAD_EDGE: return c0 + (p < 0 ? 0 : m - 1);
    case PAD_WRAP: return c0 + ((p % m) + m) % m;
    case PAD_REFLECT: {
      if (m == 1) return c0;
      int64_t period = 2 * (m - 1), q = ((p % period) + period) % period;
      return c0 + (q < m ? q : period - q);
    }
  }
  return -1;
}

/* The per-axis index maps (map[k][o]: the input index output index o of axis k reads, -1 = the
 * constant) in one allocation *block the caller frees. */
static enum od_status pad_maps(enum pad_mode mode, const struct od_tensor *X, const int64_t *out_dims,
                               const int64_t *pb, const int64_t *pe, const int64_t **map, int64_t **block,
                               struct od_err *err) {
  int64_t total = 0;
  for (int k = 0; k < X->rank; k++) total += out_dims[k];
  int64_t *m = malloc(sizeof *m * (size_t)(total ? total : 1));
  if (!m) return od_err_set(err, OD_ERR_OOM, "cannot allocate %lld index map entries", (long long)total);
  *block = m;
  for (int k = 0; k < X->rank; k++) {
    int64_t c0 = pb[k] < 0 ? -pb[k] : 0, b = pb[k] > 0 ? pb[k] : 0;
    int64_t kept = X->dims[k] - c0 - (pe[k] < 0 ? -pe[k] : 0);
    for (int64_t o = 0; o < out_dims[k]; o++) m[o] = pad_index(mode, o - b, c0, kept);
    map[k] = m;
    m += out_dims[k];
  }
  return OD_OK;
}

static enum od_status pad_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct pad_attrs *a = ctx->attrs;
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  int64_t pb[OD_MAX_DIMS], pe[OD_MAX_DIMS], dims[OD_MAX_DIMS];
  bool pending;
  OD_TRY(od_pad_amounts(ctx->node, a, X, (const struct od_tensor *const *)ctx->in, ctx->n_in, pb, pe, &pending,
                        ctx->err));
  if (pending) return od_err_set(ctx->err, OD_ERR_INTERNAL, "pads have no value at run time");
  OD_TRY(od_pad_check(a, X, pb, pe, dims, ctx->err));
  struct pad_job jb = {.rank = X->rank, .dims = Y->dims, .es = od_dtype_size(X->dtype), .x = X->data, .y = Y->data};
  /* the constant's bytes */
  if (ctx->node->opset < 11) {
    struct od_tensor v = {.dtype = X->dtype, .rank = 0, .data = jb.value};
    od_tensor_set_f64(&v, 0, a->value);
  } else if (ctx->n_in > 2 && ctx->in[2] && od_tensor_numel(ctx->in[2]) > 0) {
    memcpy(jb.value, ctx->in[2]->data, jb.es);
  }
  jb.value_zero = true;
  for (size_t i = 0; i < jb.es; i++) jb.value_zero = jb.value_zero && jb.value[i] == 0;
  if (od_tensor_numel(Y) == 0) return OD_OK;
  if (X->rank == 0) {
    memcpy(Y->data, X->data, jb.es);
    return OD_OK;
  }
  od_strides(X->rank, X->dims, jb.xs);
  int64_t *maps;
  OD_TRY(pad_maps(a->mode, X, Y->dims, pb, pe, jb.map, &maps, ctx->err));
  /* the run of the last axis that reads the kept block in order */
  int last = X->rank - 1;
  int64_t b = pb[last] > 0 ? pb[last] : 0, kept = X->dims[last] - (pb[last] < 0 ? -pb[last] : 0) - (pe[last] < 0 ? -pe[last] : 0);
  jb.lo = b;
  jb.hi = kept > 0 ? b + kept : b;
  int64_t rows = od_tensor_numel(Y) / Y->dims[last];
  od_pool_parallel_for(ctx->pool, rows, 1 + 16384 / Y->dims[last], pad_rows, &jb);
  free(maps);
  return OD_OK;
}

/* Backward: every output element reads one input element (all axis maps >= 0) or the constant.
 * So dX[map(o)] += dY[o] over the elements that read X: in constant mode each input element is
 * read once (the crop of dY); reflect / edge / wrap read some several times, folding the padded
 * gradient back onto its source. d(constant_value) = the sum of dY over the padded elements.
 * Rows of the output go in parallel in constant mode (distinct rows write distinct dX rows); the
 * other modes map several output rows onto one input row and run serially. */
struct pad_bwd_job {
  int rank;
  const int64_t *dims;             /* output dims */
  const int64_t *map[OD_MAX_DIMS];
  int64_t xs[OD_MAX_DIMS];
  bool dbl;
  const void *dy;
  void *dx;
};

#define PAD_BWD_ROW(T)                                                       \
  do {                                                                       \
    T *dx_ = (T *)jb->dx + off;                                              \
    const T *dy_ = (const T *)jb->dy + r * n;                                \
    for (int64_t o = 0; o < n; o++)                                          \
      if (ml[o] >= 0) dx_[ml[o]] += dy_[o];                                  \
  } while (0)

static void pad_bwd_rows(void *p, int64_t begin, int64_t end) {
  const struct pad_bwd_job *jb = p;
  int last = jb->rank - 1;
  int64_t n = jb->dims[last];
  const int64_t *ml = jb->map[last];
  for (int64_t r = begin; r < end; r++) {
    int64_t rem = r, off = 0;
    bool outside = false;
    for (int k = last - 1; k >= 0; k--) {
      int64_t m = jb->map[k][rem % jb->dims[k]];
      rem /= jb->dims[k];
      if (m < 0) outside = true;
      off += m * jb->xs[k];
    }
    if (outside) continue;
    if (jb->dbl) PAD_BWD_ROW(double);
    else PAD_BWD_ROW(float);
  }
}

/* The sum of dY over the elements that read the constant. */
static double pad_constant_grad(const struct pad_bwd_job *jb) {
  int last = jb->rank - 1;
  int64_t n = jb->dims[last], rows = 1;
  for (int k = 0; k < last; k++) rows *= jb->dims[k];
  const int64_t *ml = jb->map[last];
  double sum = 0;
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r;
    bool outside = false;
    for (int k = last - 1; k >= 0 && !outside; k--) {
      outside = jb->map[k][rem % jb->dims[k]] < 0;
      rem /= jb->dims[k];
    }
    for (int64_t o = 0; o < n; o++) {
      if (!outside && ml[o] >= 0) continue;
      sum += jb->dbl ? ((const double *)jb->dy)[r * n + o] : ((const float *)jb->dy)[r * n + o];
    }
  }
  return sum;
}

static enum od_status pad_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct pad_attrs *a = ctx->attrs;
  const struct od_tensor *X = ctx->in[0], *dY = ctx->dout[0];
  struct od_tensor *dX = ctx->din[0], *dC = ctx->n_in > 2 ? ctx->din[2] : NULL;
  if (!dY || (!dX && !dC) || od_tensor_numel(dY) == 0) return OD_OK;
  if (dY->dtype != OD_DTYPE_FLOAT && dY->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "no backward for %s (float and double only)",
                      od_dtype_name(dY->dtype));
  int64_t pb[OD_MAX_DIMS], pe[OD_MAX_DIMS], dims[OD_MAX_DIMS];
  bool pending;
  OD_TRY(od_pad_amounts(ctx->node, a, X, (const struct od_tensor *const *)ctx->in, ctx->n_in, pb, pe, &pending,
                        ctx->err));
  if (pending) return od_err_set(ctx->err, OD_ERR_INTERNAL, "pads have no value at run time");
  OD_TRY(od_pad_check(a, X, pb, pe, dims, ctx->err));
  if (X->rank == 0) { /* a scalar passes through */
    if (dX) od_tensor_set_f64(dX, 0, od_tensor_get_f64(dX, 0) + od_tensor_get_f64(dY, 0));
    return OD_OK;
  }
  struct pad_bwd_job jb = {.rank = X->rank, .dims = dY->dims, .dbl = dY->dtype == OD_DTYPE_DOUBLE, .dy = dY->data,
                           .dx = dX ? dX->data : NULL};
  od_strides(X->rank, X->dims, jb.xs);
  int64_t *maps;
  OD_TRY(pad_maps(a->mode, X, dY->dims, pb, pe, jb.map, &maps, ctx->err));
  int last = X->rank - 1;
  int64_t rows = od_tensor_numel(dY) / dY->dims[last];
  if (dX && od_tensor_numel(dX)) {
    if (a->mode == PAD_CONSTANT) od_pool_parallel_for(ctx->pool, rows, 1 + 16384 / dY->dims[last], pad_bwd_rows, &jb);
    else pad_bwd_rows(&jb, 0, rows);
  }
  if (dC && od_tensor_numel(dC) > 0 && a->mode == PAD_CONSTANT)
    od_tensor_set_f64(dC, 0, od_tensor_get_f64(dC, 0) + pad_constant_grad(&jb));
  free(maps);
  return OD_OK;
}

const struct od_op_kernels od_kernels_pad = {
    .attrs_size = sizeof(struct pad_attrs),
    .parse = pad_parse,
    .infer = pad_infer,
    .forward = {[OD_DEVICE_CPU] = pad_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_pad_fwd)},
    .backward = {[OD_DEVICE_CPU] = pad_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_pad_bwd)},
    .no_grad_inputs = 0xau, /* pads, axes */
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};
