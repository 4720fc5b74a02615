/* ops/layernorm.c: ONNX LayerNormalization (opset 17). dtypes: float, double.
 * Spec: https://onnx.ai/onnx/operators/onnx__LayerNormalization.html
 *
 * With normalized axes [axis, rank): for each "row" (one index of the leading dims),
 *   Mean      = mean of X over the row
 *   InvStdDev = 1 / sqrt(population variance of the row + epsilon)
 *   Y         = (X - Mean) * InvStdDev * Scale + B
 * Scale and the optional B broadcast unidirectionally to X (usually they have the normalized dims'
 * shape; that case takes a fast path). The optional outputs Mean and InvStdDev have X's leading
 * dims followed by 1s, and the dtype stash_type names (1 = float, the default; 11 = double is also
 * accepted). Statistics are accumulated in double for every stash_type, which is at least as
 * precise as the float computation the spec describes. Rows run in parallel on the pool. */
#include <math.h>
#include <stdlib.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "runtime/pool.h"

struct layernorm_attrs {
  int64_t axis;
  float epsilon;
  int stash_type;
};

static enum od_status layernorm_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct layernorm_attrs *a = attrs;
  int64_t st;
  OD_TRY(od_attr_get_int(node, "axis", -1, &a->axis, err));
  OD_TRY(od_attr_get_float(node, "epsilon", 1e-5f, &a->epsilon, err));
  OD_TRY(od_attr_get_int(node, "stash_type", 1, &st, err));
  if (st != OD_DTYPE_FLOAT && st != OD_DTYPE_DOUBLE)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "attribute 'stash_type' is %lld (%s); supported: 1 (float), 11 (double)",
                      (long long)st, od_dtype_name((int)st));
  a->stash_type = (int)st;
  return OD_OK;
}

static bool present(const struct od_tensor *t) { return t && t->dtype != OD_DTYPE_UNDEFINED; }

/* Unidirectional broadcast of t to x's shape. */
static enum od_status check_bcast(const char *name, const struct od_tensor *t, const struct od_tensor *x,
                                  struct od_err *err) {
  char s1[128], s2[128];
  if (t->dtype != x->dtype)
    return od_err_set(err, OD_ERR_SHAPE, "X is %s but %s is %s", od_dtype_name(x->dtype), name, od_dtype_name(t->dtype));
  bool ok = t->rank <= x->rank;
  for (int i = 0; ok && i < t->rank; i++) {
    int64_t d = t->dims[i], want = x->dims[x->rank - t->rank + i];
    ok = d == want || d == 1;
  }
  if (!ok)
    return od_err_set(err, OD_ERR_SHAPE, "%s %s does not broadcast to X %s", name,
                      od_shape_str(t->rank, t->dims, s1, sizeof s1), od_shape_str(x->rank, x->dims, s2, sizeof s2));
  return OD_OK;
}

static enum od_status layernorm_check(const struct layernorm_attrs *a, const struct od_tensor *x,
                                      const struct od_tensor *scale, const struct od_tensor *b, int *axis,
                                      struct od_err *err) {
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "X has dtype %s; LayerNormalization supports float and double",
                      od_dtype_name(x->dtype));
  if (x->rank < 1) return od_err_set(err, OD_ERR_SHAPE, "X is a scalar; LayerNormalization needs rank >= 1");
  OD_TRY(od_axis_normalize(a->axis, x->rank, "axis", axis, err));
  OD_TRY(check_bcast("Scale", scale, x, err));
  if (present(b)) OD_TRY(check_bcast("B", b, x, err));
  return OD_OK;
}

static enum od_status layernorm_infer(struct od_infer_ctx *ctx) {
  const struct layernorm_attrs *a = ctx->attrs;
  if (ctx->n_in < 2) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "LayerNormalization needs inputs X and Scale");
  const struct od_tensor *x = &ctx->in[0];
  int axis;
  OD_TRY(layernorm_check(a, x, &ctx->in[1], ctx->n_in > 2 ? &ctx->in[2] : NULL, &axis, ctx->err));
  ctx->out[0] = *x;
  ctx->out[0].data = NULL;
  for (int i = 1; i < ctx->n_out && i < 3; i++) {
    struct od_tensor *o = &ctx->out[i];
    o->dtype = a->stash_type;
    o->rank = x->rank;
    for (int d = 0; d < x->rank; d++) o->dims[d] = d < axis ? x->dims[d] : 1;
  }
  return OD_OK;
}

struct layernorm_job {
  const struct od_tensor *x, *scale, *b;
  struct od_tensor *y, *mean_out, *inv_out;
  int64_t inner;
  double eps;
  bool fast;                           /* Scale and B are indexed by the position in the row */
  int64_t ss[OD_MAX_DIMS], bs[OD_MAX_DIMS]; /* general case: broadcast strides over X's dims */
  int rank;
};

/* Offset into a broadcast operand for element e of X (general case). */
static int64_t bcast_offset(const struct layernorm_job *j, const int64_t *strides, int64_t e) {
  int64_t o = 0;
  for (int d = j->rank - 1; d >= 0; d--) {
    o += (e % j->x->dims[d]) * strides[d];
    e /= j->x->dims[d];
  }
  return o;
}

#define OD_LAYERNORM_ROW(T)                                                                      \
  do {                                                                                          \
    const T *x = (const T *)j->x->data + r * n;                                                 \
    T *y = (T *)j->y->data + r * n;                                                             \
    const T *sc = j->scale->data, *bb = j->b ? (const T *)j->b->data : NULL;                    \
    double s = 0, ss = 0;                                                                       \
    for (int64_t i = 0; i < n; i++) s += x[i];                                                  \
    double mu = n ? s / (double)n : 0;                                                          \
    for (int64_t i = 0; i < n; i++) ss += ((double)x[i] - mu) * ((double)x[i] - mu);            \
    double inv = 1.0 / sqrt((n ? ss / (double)n : 0) + j->eps);                                 \
    if (j->fast) {                                                                              \
      for (int64_t i = 0; i < n; i++)                                                           \
        y[i] = (T)(((double)x[i] - mu) * inv * (double)sc[i] + (bb ? (double)bb[i] : 0.0));     \
    } else {                                                                                    \
      for (int64_t i = 0; i < n; i++) {                                                         \
        int64_t e = r * n + i;                                                                  \
        double v = ((double)x[i] - mu) * inv * (double)sc[bcast_offset(j, j->ss, e)];           \
        if (bb) v += (double)bb[bcast_offset(j, j->bs, e)];                                     \
        y[i] = (T)v;                                                                            \
      }                                                                                         \
    }                                                                                           \
    if (j->mean_out) od_tensor_set_f64(j->mean_out, r, mu);                                     \
    if (j->inv_out) od_tensor_set_f64(j->inv_out, r, inv);                                      \
  } while (0)

static void layernorm_rows(void *ctx, int64_t begin, int64_t end) {
  const struct layernorm_job *j = ctx;
  int64_t n = j->inner;
  for (int64_t r = begin; r < end; r++) {
    if (j->x->dtype == OD_DTYPE_FLOAT) OD_LAYERNORM_ROW(float);
    else OD_LAYERNORM_ROW(double);
  }
}

/* True when t's dims (leading 1s dropped) are exactly X's dims [axis, rank) with 1s allowed only
 * where X's dim is 1 too: then element i of a row reads t[i]. */
static bool row_indexed(const struct od_tensor *t, const struct od_tensor *x, int axis) {
  if (!t) return true;
  int lead = 0;
  while (lead < t->rank && t->dims[lead] == 1 && t->rank - lead > x->rank - axis) lead++;
  if (t->rank - lead != x->rank - axis) return false;
  for (int i = lead; i < t->rank; i++)
    if (t->dims[i] != x->dims[axis + i - lead]) return false;
  return true;
}

static enum od_status layernorm_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct layernorm_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *scale = ctx->in[1];
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  int axis;
  OD_TRY(layernorm_check(a, x, scale, b, &axis, ctx->err));
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < x->rank; d++) {
    if (d < axis) outer *= x->dims[d];
    else inner *= x->dims[d];
  }
  struct layernorm_job j = {0};
  j.x = x;
  j.scale = scale;
  j.b = b;
  j.y = ctx->out[0];
  j.mean_out = ctx->n_out > 1 ? ctx->out[1] : NULL;
  j.inv_out = ctx->n_out > 2 ? ctx->out[2] : NULL;
  j.inner = inner;
  j.eps = a->epsilon;
  j.rank = x->rank;
  j.fast = row_indexed(scale, x, axis) && row_indexed(b, x, axis);
  if (!j.fast) {
    od_broadcast_strides(scale->rank, scale->dims, x->rank, x->dims, j.ss);
    if (b) od_broadcast_strides(b->rank, b->dims, x->rank, x->dims, j.bs);
  }
  od_pool_parallel_for(ctx->pool, outer, 16384 / (inner + 1) + 1, layernorm_rows, &j);
  return OD_OK;
}

const struct od_op_kernels od_kernels_layernorm = {
    .attrs_size = sizeof(struct layernorm_attrs),
    .parse = layernorm_parse,
    .infer = layernorm_infer,
    .forward = {[OD_DEVICE_CPU] = layernorm_forward_cpu},
    .dtypes = "float, double",
};
