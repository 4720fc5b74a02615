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
 * precise as the float computation the spec describes. Rows run in parallel on the pool.
 * Backward (float, double): dX (also from gradients reaching Mean / InvStdDev), dScale, dB reduced
 * to their shapes; see layernorm_backward_cpu. */
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

/* ---- backward ---- */

/* Per row of n elements, with inv = 1 / sqrt(var + epsilon), xhat = (X - Mean) * inv and
 * g = dY * Scale (Scale broadcast):
 *   term 1: dX    += inv * (g - mean(g) - xhat * mean(g * xhat))    (through Mean and var)
 *   term 2: dX    += dMean / n - dInvStdDev * inv^2 * xhat / n      (gradients reaching the optional
 *                    outputs: dMean/dX = 1/n, dInv/dX = -inv^3 (X - Mean) / n)
 *   term 3: dScale += dY * xhat, dB += dY, each summed over the elements that read that Scale / B
 *                    element (the rows, and any dim Scale / B broadcast along).
 * Pass 1 (parallel over rows) computes the row statistics and dX; pass 2 the dScale / dB sums,
 * parallel over blocks of row positions on the fast path, serial otherwise. */
struct layernorm_bwd_job {
  const struct layernorm_job *f;     /* the forward's view: x, scale, b, fast, strides */
  const struct od_tensor *dy, *dmean, *dinv;
  struct od_tensor *dx, *dscale, *db;
  double *mu, *inv;                  /* per row */
  int64_t outer;
};

#define LAYERNORM_BWD_BLOCK 256

#define OD_LAYERNORM_ROW_BWD(T)                                                                  \
  do {                                                                                          \
    const T *x = (const T *)f->x->data + r * n, *dy = (const T *)j->dy->data + r * n;           \
    const T *sc = f->scale->data;                                                               \
    double s = 0, ss = 0;                                                                       \
    for (int64_t i = 0; i < n; i++) s += x[i];                                                  \
    double mu = n ? s / (double)n : 0;                                                          \
    for (int64_t i = 0; i < n; i++) ss += ((double)x[i] - mu) * ((double)x[i] - mu);            \
    double inv = 1.0 / sqrt((n ? ss / (double)n : 0) + f->eps);                                 \
    j->mu[r] = mu;                                                                              \
    j->inv[r] = inv;                                                                            \
    if (!j->dx || !n) break;                                                                    \
    double g1 = 0, g2 = 0;                                                                      \
    for (int64_t i = 0; i < n; i++) {                                                           \
      double sv = f->fast ? (double)sc[i] : (double)sc[bcast_offset(f, f->ss, r * n + i)];      \
      double g = dy[i] * sv;                                                                    \
      g1 += g;                                                                                  \
      g2 += g * (((double)x[i] - mu) * inv);                                                    \
    }                                                                                           \
    g1 /= (double)n;                                                                            \
    g2 /= (double)n;                                                                            \
    double dm = j->dmean ? od_tensor_get_f64(j->dmean, r) / (double)n : 0;                      \
    double di = j->dinv ? od_tensor_get_f64(j->dinv, r) * inv * inv / (double)n : 0;            \
    T *dx = (T *)j->dx->data + r * n;                                                           \
    for (int64_t i = 0; i < n; i++) {                                                           \
      double sv = f->fast ? (double)sc[i] : (double)sc[bcast_offset(f, f->ss, r * n + i)];      \
      double xh = ((double)x[i] - mu) * inv;                                                    \
      dx[i] += (T)(inv * (dy[i] * sv - g1 - xh * g2) + dm - di * xh);                           \
    }                                                                                           \
  } while (0)

static void layernorm_rows_bwd(void *ctx, int64_t begin, int64_t end) {
  const struct layernorm_bwd_job *j = ctx;
  const struct layernorm_job *f = j->f;
  int64_t n = f->inner;
  for (int64_t r = begin; r < end; r++) {
    if (f->x->dtype == OD_DTYPE_FLOAT) OD_LAYERNORM_ROW_BWD(float);
    else OD_LAYERNORM_ROW_BWD(double);
  }
}

/* Fast path of pass 2: row positions [i0, i0 + LAYERNORM_BWD_BLOCK) of every row. */
#define OD_LAYERNORM_COLS_BWD(T)                                                                 \
  do {                                                                                          \
    for (int64_t r = 0; r < j->outer; r++) {                                                    \
      const T *x = (const T *)f->x->data + r * n, *dy = (const T *)j->dy->data + r * n;         \
      double mu = j->mu[r], inv = j->inv[r];                                                    \
      for (int64_t i = i0; i < i1; i++) {                                                       \
        sg[i - i0] += dy[i] * (((double)x[i] - mu) * inv);                                      \
        bg[i - i0] += dy[i];                                                                    \
      }                                                                                         \
    }                                                                                           \
    for (int64_t i = i0; i < i1; i++) {                                                         \
      if (j->dscale) ((T *)j->dscale->data)[i] += (T)sg[i - i0];                                \
      if (j->db) ((T *)j->db->data)[i] += (T)bg[i - i0];                                        \
    }                                                                                           \
  } while (0)

static void layernorm_cols_bwd(void *ctx, int64_t begin, int64_t end) {
  const struct layernorm_bwd_job *j = ctx;
  const struct layernorm_job *f = j->f;
  int64_t n = f->inner;
  double sg[LAYERNORM_BWD_BLOCK], bg[LAYERNORM_BWD_BLOCK];
  for (int64_t blk = begin; blk < end; blk++) {
    int64_t i0 = blk * LAYERNORM_BWD_BLOCK, i1 = i0 + LAYERNORM_BWD_BLOCK < n ? i0 + LAYERNORM_BWD_BLOCK : n;
    for (int64_t i = 0; i < i1 - i0; i++) sg[i] = bg[i] = 0;
    if (f->x->dtype == OD_DTYPE_FLOAT) OD_LAYERNORM_COLS_BWD(float);
    else OD_LAYERNORM_COLS_BWD(double);
  }
}

static enum od_status layernorm_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct layernorm_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *scale = ctx->in[1];
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  int axis;
  OD_TRY(layernorm_check(a, x, scale, b, &axis, ctx->err));
  struct layernorm_bwd_job j = {0};
  j.dy = ctx->dout[0];
  j.dmean = ctx->n_out > 1 ? ctx->dout[1] : NULL;
  j.dinv = ctx->n_out > 2 ? ctx->dout[2] : NULL;
  j.dx = ctx->din[0];
  j.dscale = j.dy ? ctx->din[1] : NULL; /* only Y depends on Scale and B */
  j.db = j.dy && b ? ctx->din[2] : NULL;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < x->rank; d++) {
    if (d < axis) outer *= x->dims[d];
    else inner *= x->dims[d];
  }
  int64_t total = outer * inner;
  if (total == 0) return OD_OK;
  /* A missing dY reads as zeros: a zero buffer keeps one code path for the rare Mean-only case. */
  struct od_tensor zero_dy;
  void *zeros = NULL;
  if (!j.dy) {
    if (!j.dx) return OD_OK;
    zero_dy = *x;
    zero_dy.data = zeros = calloc((size_t)total, od_dtype_size(x->dtype));
    if (!zeros) return od_err_set(ctx->err, OD_ERR_OOM, "LayerNormalization backward: out of memory");
    j.dy = &zero_dy;
  }
  struct layernorm_job f = {0};
  f.x = x;
  f.scale = scale;
  f.b = b;
  f.inner = inner;
  f.eps = a->epsilon;
  f.rank = x->rank;
  f.fast = row_indexed(scale, x, axis) && row_indexed(b, x, axis);
  od_broadcast_strides(scale->rank, scale->dims, x->rank, x->dims, f.ss);
  if (b) od_broadcast_strides(b->rank, b->dims, x->rank, x->dims, f.bs);
  j.f = &f;
  j.outer = outer;
  j.mu = malloc(sizeof(double) * (size_t)(2 * outer));
  if (!j.mu) {
    free(zeros);
    return od_err_set(ctx->err, OD_ERR_OOM, "LayerNormalization backward: out of memory");
  }
  j.inv = j.mu + outer;
  od_pool_parallel_for(ctx->pool, outer, 16384 / (inner + 1) + 1, layernorm_rows_bwd, &j);
  if (j.dscale || j.db) {
    if (f.fast) {
      int64_t nblk = (inner + LAYERNORM_BWD_BLOCK - 1) / LAYERNORM_BWD_BLOCK;
      od_pool_parallel_for(ctx->pool, nblk, 16384 / (outer * LAYERNORM_BWD_BLOCK + 1) + 1, layernorm_cols_bwd, &j);
    } else {
      for (int64_t e = 0; e < total; e++) { /* general broadcast: one element at a time */
        int64_t r = e / inner;
        double dyv = od_tensor_get_f64(j.dy, e), xh = (od_tensor_get_f64(x, e) - j.mu[r]) * j.inv[r];
        if (j.dscale) {
          int64_t o = bcast_offset(&f, f.ss, e);
          od_tensor_set_f64(j.dscale, o, od_tensor_get_f64(j.dscale, o) + dyv * xh);
        }
        if (j.db) {
          int64_t o = bcast_offset(&f, f.bs, e);
          od_tensor_set_f64(j.db, o, od_tensor_get_f64(j.db, o) + dyv);
        }
      }
    }
  }
  free(j.mu);
  free(zeros);
  return OD_OK;
}

const struct od_op_kernels od_kernels_layernorm = {
    .attrs_size = sizeof(struct layernorm_attrs),
    .parse = layernorm_parse,
    .infer = layernorm_infer,
    .forward = {[OD_DEVICE_CPU] = layernorm_forward_cpu},
    .backward = {[OD_DEVICE_CPU] = layernorm_backward_cpu},
    .dtypes = "float, double",
};
