/* ops/topk.c: ONNX TopK, opsets 1, 10, 11, 24.
 *
 * Values, Indices (int64) = the k largest (or smallest) elements along `axis` (default -1) and
 * their positions; both have X's shape with dims[axis] = k. Versions:
 *   1:  k is an INT attribute.
 *   10: k is the second input K (int64, one element); the output shape depends on its value.
 *   11: adds largest (default 1) and sorted (default 1), and negative axis.
 *   24: new dtypes only.
 * Order: best first; equal values keep the lower index first (the spec's tiebreak). NaN counts as
 * larger than every number. sorted=0 leaves the order undefined, so the sorted order is returned.
 *
 * Method: per slice along axis, a heap of the k best seen so far with the worst at the root
 * (O(n log k)), then heap-sorted best first.
 * dtypes: float, double, int8..int64, uint8..uint64. Backward (float, double): the gradient of
 * Values scattered back to the selected positions.
 * Spec: https://onnx.ai/onnx/operators/onnx__TopK.html */
#include <stdlib.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "runtime/pool.h"

struct topk_attrs {
  int64_t axis;
  int64_t largest;
  int64_t sorted;
  int64_t k_attr;               /* opset 1 */
  bool k_input;                 /* opset 10+ */
};

static enum od_status topk_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct topk_attrs *a = attrs;
  a->k_input = node->opset >= 10;
  OD_TRY(od_attr_get_int(node, "axis", -1, &a->axis, err));
  OD_TRY(od_attr_get_int(node, "largest", 1, &a->largest, err));
  OD_TRY(od_attr_get_int(node, "sorted", 1, &a->sorted, err));
  if (!a->k_input) {
    if (!od_node_attr(node, "k"))
      return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'k' is required before opset 10");
    OD_TRY(od_attr_get_int(node, "k", 0, &a->k_attr, err));
    if (a->k_attr < 0)
      return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'k' must be >= 0, not %lld", (long long)a->k_attr);
  } else if (node->n_inputs < 2 || node->inputs[1] < 0) {
    return od_err_set(err, OD_ERR_INVALID_MODEL, "input K is required from opset 10");
  }
  return OD_OK;
}

static bool topk_dtype_ok(int dtype) {
  switch (dtype) {
    case OD_DTYPE_FLOAT: case OD_DTYPE_DOUBLE:
    case OD_DTYPE_INT8: case OD_DTYPE_UINT8: case OD_DTYPE_INT16: case OD_DTYPE_UINT16:
    case OD_DTYPE_INT32: case OD_DTYPE_UINT32: case OD_DTYPE_INT64: case OD_DTYPE_UINT64:
      return true;
    default:
      return false;
  }
}

/* k from the attribute or the K input (whose data must be known), checked against dims[axis]. */
static enum od_status topk_k(const struct topk_attrs *a, const struct od_tensor *x, const struct od_tensor *K,
                             int axis, int64_t *k, struct od_err *err) {
  if (a->k_input) {
    if (K->dtype != OD_DTYPE_INT64)
      return od_err_set(err, OD_ERR_SHAPE, "K must be int64, not %s", od_dtype_name(K->dtype));
    if (od_tensor_numel(K) != 1 || K->rank > 1) {
      char s[128];
      return od_err_set(err, OD_ERR_SHAPE, "K must have one element, not shape %s",
                        od_shape_str(K->rank, K->dims, s, sizeof s));
    }
    *k = ((const int64_t *)K->data)[0];
  } else {
    *k = a->k_attr;
  }
  if (*k < 0 || *k > x->dims[axis]) {
    char s[128];
    return od_err_set(err, OD_ERR_SHAPE, "k = %lld is out of range for axis %d of %s", (long long)*k, axis,
                      od_shape_str(x->rank, x->dims, s, sizeof s));
  }
  return OD_OK;
}

static enum od_status topk_infer(struct od_infer_ctx *ctx) {
  const struct topk_attrs *a = ctx->attrs;
  const struct od_tensor *x = &ctx->in[0];
  if (!topk_dtype_ok(x->dtype))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "input dtype %s is not supported", od_dtype_name(x->dtype));
  if (x->rank == 0) return od_err_set(ctx->err, OD_ERR_SHAPE, "X must have rank >= 1, not a scalar");
  int axis;
  OD_TRY(od_axis_normalize(a->axis, x->rank, "axis", &axis, ctx->err));
  ctx->out[0].dtype = x->dtype;
  if (ctx->n_out > 1) ctx->out[1].dtype = OD_DTYPE_INT64;
  if (a->k_input && !ctx->in[1].data) {
    ctx->needs_values = true;
    return OD_OK;
  }
  int64_t k;
  OD_TRY(topk_k(a, x, &ctx->in[1], axis, &k, ctx->err));
  for (int i = 0; i < ctx->n_out && i < 2; i++) {
    ctx->out[i].rank = x->rank;
    for (int d = 0; d < x->rank; d++) ctx->out[i].dims[d] = d == axis ? k : x->dims[d];
  }
  return OD_OK;
}

struct topk_task {
  const void *x;
  void *values;                 /* NULL when the output is omitted */
  int64_t *indices;             /* NULL when the output is omitted */
  void *scratch;                /* items * k pairs */
  int64_t items, slices, n, inner, k;
  bool largest;
};

/* TOPK_DEFINE(NAME, T, LT): LT(a, b) is "a < b" in the total order used (NaN above numbers).
 * A pair p is better than q when its value is larger (smaller for largest = 0), or equal with a
 * lower index. Work item w handles slices [w*S/items, (w+1)*S/items) with its own k pairs. */
#define TOPK_DEFINE(NAME, T, LT)                                                                   \
  struct topk_pair_##NAME {                                                                       \
    T v;                                                                                          \
    int64_t i;                                                                                    \
  };                                                                                              \
  static inline bool topk_better_##NAME(const struct topk_pair_##NAME *p,                         \
                                        const struct topk_pair_##NAME *q, bool largest) {         \
    if (largest ? LT(q->v, p->v) : LT(p->v, q->v)) return true;                                   \
    if (largest ? LT(p->v, q->v) : LT(q->v, p->v)) return false;                                  \
    return p->i < q->i;                                                                           \
  }                                                                                               \
  /* Restores "every node is worse than (or as bad as) its children" below node p. */             \
  static void topk_sift_##NAME(struct topk_pair_##NAME *h, int64_t size, int64_t p, bool largest) { \
    for (;;) {                                                                                    \
      int64_t w = p, l = 2 * p + 1, r = l + 1;                                                    \
      if (l < size && topk_better_##NAME(&h[w], &h[l], largest)) w = l;                           \
      if (r < size && topk_better_##NAME(&h[w], &h[r], largest)) w = r;                           \
      if (w == p) return;                                                                         \
      struct topk_pair_##NAME tmp = h[p];                                                         \
      h[p] = h[w];                                                                                \
      h[w] = tmp;                                                                                 \
      p = w;                                                                                      \
    }                                                                                             \
  }                                                                                               \
  static void topk_range_##NAME(void *vt, int64_t begin, int64_t end) {                          \
    const struct topk_task *t = vt;                                                               \
    int64_t n = t->n, inner = t->inner, k = t->k;                                                 \
    for (int64_t w = begin; w < end; w++) {                                                       \
      struct topk_pair_##NAME *h = (struct topk_pair_##NAME *)t->scratch + w * k;                 \
      int64_t s0 = w * t->slices / t->items, s1 = (w + 1) * t->slices / t->items;                 \
      for (int64_t s = s0; s < s1; s++) {                                                         \
        int64_t o = s / inner, i = s % inner;                                                     \
        const T *x = (const T *)t->x + o * n * inner + i;                                         \
        for (int64_t j = 0; j < k; j++) {                                                         \
          h[j].v = x[j * inner];                                                                  \
          h[j].i = j;                                                                             \
        }                                                                                         \
        for (int64_t p = k / 2 - 1; p >= 0; p--) topk_sift_##NAME(h, k, p, t->largest);           \
        for (int64_t j = k; j < n; j++) {                                                         \
          struct topk_pair_##NAME c = {x[j * inner], j};                                          \
          if (topk_better_##NAME(&c, &h[0], t->largest)) {                                        \
            h[0] = c;                                                                             \
            topk_sift_##NAME(h, k, 0, t->largest);                                                \
          }                                                                                       \
        }                                                                                         \
        /* Pop the worst into the last free slot: best first. */                                  \
        T *yv = t->values ? (T *)t->values + o * k * inner + i : NULL;                            \
        int64_t *yi = t->indices ? t->indices + o * k * inner + i : NULL;                         \
        for (int64_t size = k; size > 0; size--) {                                                \
          if (yv) yv[(size - 1) * inner] = h[0].v;                                                \
          if (yi) yi[(size - 1) * inner] = h[0].i;                                                \
          h[0] = h[size - 1];                                                                     \
          topk_sift_##NAME(h, size - 1, 0, t->largest);                                           \
        }                                                                                         \
      }                                                                                           \
    }                                                                                             \
  }

#define TOPK_LT_INT(a, b) ((a) < (b))
#define TOPK_LT_FLOAT(a, b) ((a) < (b) || ((b) != (b) && (a) == (a)))
TOPK_DEFINE(f32, float, TOPK_LT_FLOAT)
TOPK_DEFINE(f64, double, TOPK_LT_FLOAT)
TOPK_DEFINE(i8, int8_t, TOPK_LT_INT)
TOPK_DEFINE(u8, uint8_t, TOPK_LT_INT)
TOPK_DEFINE(i16, int16_t, TOPK_LT_INT)
TOPK_DEFINE(u16, uint16_t, TOPK_LT_INT)
TOPK_DEFINE(i32, int32_t, TOPK_LT_INT)
TOPK_DEFINE(u32, uint32_t, TOPK_LT_INT)
TOPK_DEFINE(i64, int64_t, TOPK_LT_INT)
TOPK_DEFINE(u64, uint64_t, TOPK_LT_INT)

static enum od_status topk_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct topk_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  int axis;
  OD_TRY(od_axis_normalize(a->axis, x->rank, "axis", &axis, ctx->err));
  int64_t k;
  OD_TRY(topk_k(a, x, a->k_input ? ctx->in[1] : NULL, axis, &k, ctx->err));
  int64_t outer = 1, n = x->dims[axis], inner = 1;
  for (int d = 0; d < x->rank; d++) {
    if (d < axis) outer *= x->dims[d];
    else if (d > axis) inner *= x->dims[d];
  }
  int64_t slices = outer * inner;
  if (k == 0 || slices == 0) return OD_OK;
  od_range_fn fn = NULL;
  size_t pair = 0;
#define TOPK_CASE(CODE, NAME)             \
  case CODE:                              \
    fn = topk_range_##NAME;               \
    pair = sizeof(struct topk_pair_##NAME); \
    break;
  switch (x->dtype) {
    TOPK_CASE(OD_DTYPE_FLOAT, f32)
    TOPK_CASE(OD_DTYPE_DOUBLE, f64)
    TOPK_CASE(OD_DTYPE_INT8, i8)
    TOPK_CASE(OD_DTYPE_UINT8, u8)
    TOPK_CASE(OD_DTYPE_INT16, i16)
    TOPK_CASE(OD_DTYPE_UINT16, u16)
    TOPK_CASE(OD_DTYPE_INT32, i32)
    TOPK_CASE(OD_DTYPE_UINT32, u32)
    TOPK_CASE(OD_DTYPE_INT64, i64)
    TOPK_CASE(OD_DTYPE_UINT64, u64)
    default:
      return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "input dtype %s is not supported", od_dtype_name(x->dtype));
  }
#undef TOPK_CASE
  /* One work item per thread (at most one per slice), each with its own k pairs of scratch; tiny
   * inputs stay on one item. */
  int64_t items = ctx->pool ? od_pool_threads(ctx->pool) : 1;
  if (slices * n < 16384) items = 1;
  if (items > slices) items = slices;
  void *scratch = malloc(pair * (size_t)(items * k));
  if (!scratch)
    return od_err_set(ctx->err, OD_ERR_OOM, "out of memory for TopK scratch (%lld x %lld)", (long long)items,
                      (long long)k);
  struct topk_task t = {x->data, ctx->out[0] ? ctx->out[0]->data : NULL,
                        ctx->n_out > 1 && ctx->out[1] ? ctx->out[1]->data : NULL,
                        scratch, items, slices, n, inner, k, a->largest != 0};
  od_pool_parallel_for(ctx->pool, items, 1, fn, &t);
  free(scratch);
  return OD_OK;
}

/* Backward of Values (Indices takes none): each selected element gets its value's gradient,
 *   dX[.., Indices[.., j, ..], ..] += dValues[.., j, ..]
 * (a scatter; the k indices of a slice are distinct). Indices come from the saved output, or are
 * recomputed when the model omits it. */
static enum od_status topk_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct topk_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *dv = ctx->dout[0];
  struct od_tensor *dx = ctx->din[0];
  if (!dv || !dx) return OD_OK;
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "backward: input dtype %s is not supported (float, double)",
                      od_dtype_name(x->dtype));
  int axis;
  OD_TRY(od_axis_normalize(a->axis, x->rank, "axis", &axis, ctx->err));
  int64_t k;
  OD_TRY(topk_k(a, x, a->k_input ? ctx->in[1] : NULL, axis, &k, ctx->err));
  int64_t outer = 1, n = x->dims[axis], inner = 1;
  for (int d = 0; d < x->rank; d++) {
    if (d < axis) outer *= x->dims[d];
    else if (d > axis) inner *= x->dims[d];
  }
  int64_t slices = outer * inner;
  if (k == 0 || slices == 0) return OD_OK;
  const int64_t *idx = ctx->n_out > 1 && ctx->out[1] ? ctx->out[1]->data : NULL;
  int64_t *own = NULL;
  if (!idx) { /* rerun the selection for the indices alone */
    size_t pair = x->dtype == OD_DTYPE_FLOAT ? sizeof(struct topk_pair_f32) : sizeof(struct topk_pair_f64);
    own = malloc(sizeof(int64_t) * (size_t)(slices * k));
    void *scratch = malloc(pair * (size_t)k);
    if (!own || !scratch) {
      free(own);
      free(scratch);
      return od_err_set(ctx->err, OD_ERR_OOM, "out of memory for TopK backward");
    }
    struct topk_task t = {x->data, NULL, own, scratch, 1, slices, n, inner, k, a->largest != 0};
    if (x->dtype == OD_DTYPE_FLOAT) topk_range_f32(&t, 0, 1);
    else topk_range_f64(&t, 0, 1);
    free(scratch);
    idx = own;
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < k; j++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t src = (o * k + j) * inner + i, dst = (o * n + idx[src]) * inner + i;
        if (x->dtype == OD_DTYPE_FLOAT) ((float *)dx->data)[dst] += ((const float *)dv->data)[src];
        else ((double *)dx->data)[dst] += ((const double *)dv->data)[src];
      }
  free(own);
  return OD_OK;
}

const struct od_op_kernels od_kernels_topk = {
    .attrs_size = sizeof(struct topk_attrs),
    .parse = topk_parse,
    .infer = topk_infer,
    .forward = {[OD_DEVICE_CPU] = topk_forward_cpu},
    .backward = {[OD_DEVICE_CPU] = topk_backward_cpu},
    .no_grad_inputs = 1u << 1, /* K */
    .flags = OD_OP_FOLDABLE,
    .dtypes = "float, double, int8, uint8, int16, uint16, int32, uint32, int64, uint64",
};
