/* ops/pool.c: ONNX MaxPool (opsets 1, 8, 10, 11, 12, 22) and AveragePool (opsets 1, 7, 10, 11,
 * 19, 22), over 1, 2 or 3 spatial dims: X (N, C, D1[, D2[, D3]]) -> Y (N, C, O1[, O2[, O3]]).
 *
 * Attributes: kernel_shape (required), strides (default 1), pads ([x1_begin, x2_begin, ...,
 * x1_end, x2_end, ...], default 0), dilations (default 1; MaxPool 10+, AveragePool 19+ — read
 * whenever present), ceil_mode (10+), auto_pad (NOTSET, VALID, SAME_UPPER, SAME_LOWER),
 * AveragePool count_include_pad (7+), MaxPool storage_order (8+).
 *
 * Output size per spatial dim, with window w = (k - 1) * d + 1:
 *   explicit pads: O = floor_or_ceil((D + pad_begin + pad_end - w) / s) + 1; in ceil mode a last
 *                  window that would start at or after D + pad_begin (entirely in the end padding)
 *                  is dropped ("last window starts on pad").
 *   SAME_*:        O = ceil(D / s); total pad = max(0, (O - 1) * s + w - D), split evenly with the
 *                  odd one at the end (SAME_UPPER) or at the beginning (SAME_LOWER).
 *   VALID:         no padding, then as explicit pads.
 * Window of output o starts at input position o * s - pad_begin and takes positions start + j * d,
 * j in [0, k). Max and average only read positions inside the input. The average divides by the
 * number of positions read, or with count_include_pad by the number of positions before
 * D + pad_end (padding counts, but not the part of a ceil-mode window beyond the end padding),
 * as PyTorch and ONNX Runtime do.
 *
 * MaxPool's optional second output Indices (int64) holds, for each output, the position of the
 * max in the flattened input (ties: the first in window order), counting N and C:
 *   (n * C + c) * D1*D2*D3 + spatial index, the spatial index row-major (storage_order 0:
 *   (i1 * D2 + i2) * D3 + i3) or column-major (storage_order 1: i1 + i2 * D1 + i3 * D1 * D2).
 *
 * dtypes: MaxPool float, double, int8, uint8; AveragePool float, double. Backward (float, double):
 * MaxPool routes dY to each window's (first) max, AveragePool spreads dY / count over the taps read.
 * Spec: https://onnx.ai/onnx/operators/onnx__MaxPool.html, onnx__AveragePool.html */
#include <math.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "ops/pool.h"
#include "runtime/pool.h"

/* ---- attributes ------------------------------------------------------------------------------ */

static enum od_status pool_ints(const struct od_node *node, const char *name, int64_t *out, size_t want,
                                int64_t def, bool positive, struct od_err *err) {
  size_t count;
  bool present;
  OD_TRY(od_attr_get_ints(node, name, out, want, &count, &present, err));
  if (!present) {
    for (size_t i = 0; i < want; i++) out[i] = def;
    return OD_OK;
  }
  if (count != want)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute '%s' has %zu values; kernel_shape needs %zu", name,
                      count, want);
  for (size_t i = 0; i < want; i++)
    if (positive ? out[i] < 1 : out[i] < 0)
      return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute '%s' value %lld must be %s", name,
                        (long long)out[i], positive ? ">= 1" : ">= 0");
  return OD_OK;
}

static enum od_status pool_parse_common(const struct od_node *node, struct pool_attrs *a, bool is_max,
                                        struct od_err *err) {
  a->is_max = is_max;
  size_t n;
  bool present;
  OD_TRY(od_attr_get_ints(node, "kernel_shape", a->kernel, POOL_MAX_SPATIAL, &n, &present, err));
  if (!present || n == 0)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'kernel_shape' is required");
  a->n = (int)n;
  OD_TRY(pool_ints(node, "kernel_shape", a->kernel, n, 1, true, err));
  OD_TRY(pool_ints(node, "strides", a->strides, n, 1, true, err));
  OD_TRY(pool_ints(node, "dilations", a->dilations, n, 1, true, err));
  OD_TRY(pool_ints(node, "pads", a->pads, 2 * n, 0, false, err));
  const char *auto_pad;
  OD_TRY(od_attr_get_string(node, "auto_pad", "NOTSET", &auto_pad, err));
  if (!strcmp(auto_pad, "NOTSET") || !auto_pad[0]) a->auto_pad = POOL_NOTSET;
  else if (!strcmp(auto_pad, "VALID")) a->auto_pad = POOL_VALID;
  else if (!strcmp(auto_pad, "SAME_UPPER")) a->auto_pad = POOL_SAME_UPPER;
  else if (!strcmp(auto_pad, "SAME_LOWER")) a->auto_pad = POOL_SAME_LOWER;
  else
    return od_err_set(err, OD_ERR_INVALID_MODEL,
                      "attribute 'auto_pad' must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, not '%s'", auto_pad);
  OD_TRY(od_attr_get_int(node, "ceil_mode", 0, &a->ceil_mode, err));
  OD_TRY(od_attr_get_int(node, "count_include_pad", 0, &a->count_include_pad, err));
  OD_TRY(od_attr_get_int(node, "storage_order", 0, &a->storage_order, err));
  if (a->storage_order != 0 && a->storage_order != 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'storage_order' must be 0 or 1, not %lld",
                      (long long)a->storage_order);
  return OD_OK;
}

static enum od_status maxpool_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  return pool_parse_common(node, attrs, true, err);
}

static enum od_status avgpool_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  return pool_parse_common(node, attrs, false, err);
}

/* ---- geometry -------------------------------------------------------------------------------- */

static int64_t pool_div_floor(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Fills g[0..2], the spatial dims right-aligned: a 2-D pool gets g[0] = a dim of size 1 with a
 * kernel of 1, so that one 3-D loop serves 1-D, 2-D and 3-D. */
enum od_status pool_geometry(const struct pool_attrs *a, const struct od_tensor *x, struct pool_dim g[POOL_MAX_SPATIAL],
                             struct od_err *err) {
  char s[128];
  if (x->rank != a->n + 2)
    return od_err_set(err, OD_ERR_SHAPE, "X %s must have rank %d (N, C and %d spatial dims of kernel_shape)",
                      od_shape_str(x->rank, x->dims, s, sizeof s), a->n + 2, a->n);
  int lead = POOL_MAX_SPATIAL - a->n;
  for (int i = 0; i < lead; i++) g[i] = (struct pool_dim){1, 1, 1, 1, 1, 0, 0};
  for (int i = 0; i < a->n; i++) {
    struct pool_dim *p = &g[lead + i];
    p->in = x->dims[2 + i];
    p->k = a->kernel[i];
    p->s = a->strides[i];
    p->d = a->dilations[i];
    int64_t w = (p->k - 1) * p->d + 1;
    if (a->auto_pad == POOL_SAME_UPPER || a->auto_pad == POOL_SAME_LOWER) {
      p->out = (p->in + p->s - 1) / p->s;
      int64_t total = (p->out - 1) * p->s + w - p->in;
      if (total < 0) total = 0;
      p->pb = a->auto_pad == POOL_SAME_UPPER ? total / 2 : total - total / 2;
      p->pe = total - p->pb;
      continue;
    }
    p->pb = a->auto_pad == POOL_VALID ? 0 : a->pads[i];
    p->pe = a->auto_pad == POOL_VALID ? 0 : a->pads[a->n + i];
    int64_t span = p->in + p->pb + p->pe - w;
    if (span < 0)
      return od_err_set(err, OD_ERR_SHAPE,
                        "window %lld (kernel %lld, dilation %lld) is larger than padded dim %d of X %s",
                        (long long)w, (long long)p->k, (long long)p->d, 2 + i,
                        od_shape_str(x->rank, x->dims, s, sizeof s));
    if (a->ceil_mode) {
      p->out = pool_div_floor(span + p->s - 1, p->s) + 1;
      if ((p->out - 1) * p->s >= p->in + p->pb) p->out--; /* the last window would start in the end pad */
    } else {
      p->out = span / p->s + 1;
    }
  }
  return OD_OK;
}

static enum od_status pool_infer(struct od_infer_ctx *ctx) {
  const struct pool_attrs *a = ctx->attrs;
  const struct od_tensor *x = &ctx->in[0];
  bool ok = x->dtype == OD_DTYPE_FLOAT || x->dtype == OD_DTYPE_DOUBLE ||
            (a->is_max && (x->dtype == OD_DTYPE_INT8 || x->dtype == OD_DTYPE_UINT8));
  if (!ok)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "input dtype %s is not supported (%s)", od_dtype_name(x->dtype),
                      a->is_max ? "float, double, int8, uint8" : "float, double");
  struct pool_dim g[POOL_MAX_SPATIAL];
  OD_TRY(pool_geometry(a, x, g, ctx->err));
  struct od_tensor *y = &ctx->out[0];
  y->dtype = x->dtype;
  y->rank = x->rank;
  y->dims[0] = x->dims[0];
  y->dims[1] = x->dims[1];
  for (int i = 0; i < a->n; i++) y->dims[2 + i] = g[POOL_MAX_SPATIAL - a->n + i].out;
  if (ctx->n_out > 1) {
    if (!a->is_max) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "AveragePool has one output, not %d", ctx->n_out);
    ctx->out[1] = *y;
    ctx->out[1].dtype = OD_DTYPE_INT64;
  }
  return OD_OK;
}

/* ---- kernels --------------------------------------------------------------------------------- */

/* Valid taps of one window along one dim: j in [lo, hi) read input positions start + j * d inside
 * [0, in); j in [0, hi_pad) lie before in + pe (count_include_pad's divisor). */
static inline void pool_taps(const struct pool_dim *g, int64_t o, int64_t *start, int64_t *lo, int64_t *hi,
                             int64_t *hi_pad) {
  int64_t st = o * g->s - g->pb;
  *start = st;
  *lo = st < 0 ? (-st + g->d - 1) / g->d : 0;
  int64_t h = g->in - st > 0 ? (g->in - st + g->d - 1) / g->d : 0;
  *hi = h < g->k ? h : g->k;
  int64_t hp = g->in + g->pe - st > 0 ? (g->in + g->pe - st + g->d - 1) / g->d : 0;
  *hi_pad = hp < g->k ? hp : g->k;
}

struct pool_task {
  const struct pool_attrs *a;
  struct pool_dim g[POOL_MAX_SPATIAL];
  const void *x;
  void *y;
  int64_t *indices;             /* MaxPool's second output, or NULL */
  void *dx;                     /* backward: the input's gradient (y is then dY) */
};

/* A work item is one output row: (plane nc, o0, o1) for all o2. */
#define POOL_ROW_SETUP                                                                        \
  const struct pool_task *t = vt;                                                             \
  const struct pool_dim *g = t->g;                                                            \
  int64_t in_plane = g[0].in * g[1].in * g[2].in;                                             \
  int64_t out_row = g[2].out;

/* MAXPOOL_DEFINE(NAME, T, LOWEST): the max over the valid taps, and its flat index. */
#define MAXPOOL_DEFINE(NAME, T, LOWEST)                                                          \
  static void maxpool_rows_##NAME(void *vt, int64_t begin, int64_t end) {                       \
    POOL_ROW_SETUP                                                                              \
    bool col_major = t->a->storage_order == 1;                                                  \
    for (int64_t row = begin; row < end; row++) {                                               \
      int64_t o1 = row % g[1].out, o0 = (row / g[1].out) % g[0].out, nc = row / (g[1].out * g[0].out); \
      const T *x = (const T *)t->x + nc * in_plane;                                             \
      T *y = (T *)t->y + row * out_row;                                                         \
      int64_t *yi = t->indices ? t->indices + row * out_row : NULL;                             \
      int64_t s0, lo0, hi0, hp0, s1, lo1, hi1, hp1;                                             \
      pool_taps(&g[0], o0, &s0, &lo0, &hi0, &hp0);                                              \
      pool_taps(&g[1], o1, &s1, &lo1, &hi1, &hp1);                                              \
      for (int64_t o2 = 0; o2 < out_row; o2++) {                                                \
        int64_t s2, lo2, hi2, hp2;                                                              \
        pool_taps(&g[2], o2, &s2, &lo2, &hi2, &hp2);                                            \
        T m = LOWEST;                                                                           \
        int64_t best = -1; /* row-major offset in the plane */                                  \
        for (int64_t j0 = lo0; j0 < hi0; j0++) {                                                \
          int64_t i0 = s0 + j0 * g[0].d;                                                        \
          for (int64_t j1 = lo1; j1 < hi1; j1++) {                                              \
            int64_t row_off = (i0 * g[1].in + s1 + j1 * g[1].d) * g[2].in + s2;                 \
            const T *xr = x + row_off;                                                          \
            for (int64_t j2 = lo2; j2 < hi2; j2++) {                                            \
              T v = xr[j2 * g[2].d];                                                            \
              if (v > m || best < 0) {                                                          \
                m = v;                                                                          \
                best = row_off + j2 * g[2].d;                                                   \
              }                                                                                 \
            }                                                                                   \
          }                                                                                     \
        }                                                                                       \
        y[o2] = m;                                                                              \
        if (yi) {                                                                               \
          if (best >= 0 && col_major) { /* (i0, i1, i2) -> i0 + i1 * D0 + i2 * D0 * D1 */        \
            int64_t i2 = best % g[2].in, i1 = (best / g[2].in) % g[1].in, i0 = best / (g[2].in * g[1].in); \
            best = i0 + i1 * g[0].in + i2 * g[0].in * g[1].in;                                  \
          }                                                                                     \
          yi[o2] = best < 0 ? -1 : nc * in_plane + best;                                        \
        }                                                                                       \
      }                                                                                         \
    }                                                                                           \
  }

MAXPOOL_DEFINE(f32, float, -INFINITY)
MAXPOOL_DEFINE(f64, double, -INFINITY)
MAXPOOL_DEFINE(i8, int8_t, INT8_MIN)
MAXPOOL_DEFINE(u8, uint8_t, 0)

/* AVGPOOL_DEFINE(NAME, T): the mean of the valid taps (sum in double), divided as described at
 * the top. A window with no tap inside the input gives 0. */
#define AVGPOOL_DEFINE(NAME, T)                                                                  \
  static void avgpool_rows_##NAME(void *vt, int64_t begin, int64_t end) {                       \
    POOL_ROW_SETUP                                                                              \
    bool include_pad = t->a->count_include_pad != 0;                                            \
    for (int64_t row = begin; row < end; row++) {                                               \
      int64_t o1 = row % g[1].out, o0 = (row / g[1].out) % g[0].out, nc = row / (g[1].out * g[0].out); \
      const T *x = (const T *)t->x + nc * in_plane;                                             \
      T *y = (T *)t->y + row * out_row;                                                         \
      int64_t s0, lo0, hi0, hp0, s1, lo1, hi1, hp1;                                             \
      pool_taps(&g[0], o0, &s0, &lo0, &hi0, &hp0);                                              \
      pool_taps(&g[1], o1, &s1, &lo1, &hi1, &hp1);                                              \
      for (int64_t o2 = 0; o2 < out_row; o2++) {                                                \
        int64_t s2, lo2, hi2, hp2;                                                              \
        pool_taps(&g[2], o2, &s2, &lo2, &hi2, &hp2);                                            \
        double sum = 0;                                                                         \
        for (int64_t j0 = lo0; j0 < hi0; j0++) {                                                \
          int64_t i0 = s0 + j0 * g[0].d;                                                        \
          for (int64_t j1 = lo1; j1 < hi1; j1++) {                                              \
            const T *xr = x + (i0 * g[1].in + s1 + j1 * g[1].d) * g[2].in + s2;                 \
            for (int64_t j2 = lo2; j2 < hi2; j2++) sum += xr[j2 * g[2].d];                      \
          }                                                                                     \
        }                                                                                       \
        int64_t count = include_pad                                                             \
                            ? hp0 * hp1 * hp2                                                   \
                            : (hi0 > lo0 ? hi0 - lo0 : 0) * (hi1 > lo1 ? hi1 - lo1 : 0) *       \
                                  (hi2 > lo2 ? hi2 - lo2 : 0);                                  \
        y[o2] = count > 0 ? (T)(sum / (double)count) : (T)0;                                    \
      }                                                                                         \
    }                                                                                           \
  }

AVGPOOL_DEFINE(f32, float)
AVGPOOL_DEFINE(f64, double)

static enum od_status pool_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct pool_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  struct pool_task t = {.a = a, .x = x->data, .y = ctx->out[0]->data};
  OD_TRY(pool_geometry(a, x, t.g, ctx->err));
  t.indices = ctx->n_out > 1 && ctx->out[1] ? ctx->out[1]->data : NULL;
  od_range_fn fn = NULL;
  switch (x->dtype) {
    case OD_DTYPE_FLOAT: fn = a->is_max ? maxpool_rows_f32 : avgpool_rows_f32; break;
    case OD_DTYPE_DOUBLE: fn = a->is_max ? maxpool_rows_f64 : avgpool_rows_f64; break;
    case OD_DTYPE_INT8: fn = a->is_max ? maxpool_rows_i8 : NULL; break;
    case OD_DTYPE_UINT8: fn = a->is_max ? maxpool_rows_u8 : NULL; break;
    default: break;
  }
  if (!fn) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "input dtype %s is not supported", od_dtype_name(x->dtype));
  int64_t rows = x->dims[0] * x->dims[1] * t.g[0].out * t.g[1].out;
  int64_t per_row = t.g[2].out * a->kernel[0] * (a->n > 1 ? a->kernel[1] : 1) * (a->n > 2 ? a->kernel[2] : 1);
  if (per_row < 1) per_row = 1;
  od_pool_parallel_for(ctx->pool, rows, (16384 + per_row - 1) / per_row, fn, &t);
  return OD_OK;
}

/* ---- backward ------------------------------------------------------------------------------- */

/* MaxPool:     dX[argmax of each window] += dY (the window's first max in window order, the one the
 *              forward's Indices names: PyTorch's choice on ties).
 * AveragePool: dX[each tap the window read] += dY / count (count as in the forward, so padding
 *              that counts (count_include_pad) only shrinks the share, it takes no gradient).
 * Windows of one plane overlap, so a work item is a whole (n, c) plane. */
#define POOL_BWD_DEFINE(NAME, T)                                                                 \
  static void pool_bwd_planes_##NAME(void *vt, int64_t begin, int64_t end) {                    \
    const struct pool_task *t = vt;                                                             \
    const struct pool_dim *g = t->g;                                                            \
    int64_t in_plane = g[0].in * g[1].in * g[2].in, out_plane = g[0].out * g[1].out * g[2].out; \
    bool is_max = t->a->is_max, include_pad = t->a->count_include_pad != 0;                     \
    for (int64_t nc = begin; nc < end; nc++) {                                                  \
      const T *x = (const T *)t->x + nc * in_plane;                                             \
      const T *dy = (const T *)t->y + nc * out_plane;                                           \
      T *dx = (T *)t->dx + nc * in_plane;                                                       \
      for (int64_t o0 = 0; o0 < g[0].out; o0++)                                                 \
        for (int64_t o1 = 0; o1 < g[1].out; o1++) {                                             \
          int64_t s0, lo0, hi0, hp0, s1, lo1, hi1, hp1;                                         \
          pool_taps(&g[0], o0, &s0, &lo0, &hi0, &hp0);                                          \
          pool_taps(&g[1], o1, &s1, &lo1, &hi1, &hp1);                                          \
          for (int64_t o2 = 0; o2 < g[2].out; o2++) {                                           \
            int64_t s2, lo2, hi2, hp2;                                                          \
            pool_taps(&g[2], o2, &s2, &lo2, &hi2, &hp2);                                        \
            T d = dy[(o0 * g[1].out + o1) * g[2].out + o2];                                     \
            if (is_max) {                                                                       \
              T m = -INFINITY;                                                                  \
              int64_t best = -1;                                                                \
              for (int64_t j0 = lo0; j0 < hi0; j0++)                                            \
                for (int64_t j1 = lo1; j1 < hi1; j1++) {                                        \
                  int64_t row_off = ((s0 + j0 * g[0].d) * g[1].in + s1 + j1 * g[1].d) * g[2].in + s2; \
                  for (int64_t j2 = lo2; j2 < hi2; j2++) {                                      \
                    T v = x[row_off + j2 * g[2].d];                                             \
                    if (v > m || best < 0) {                                                    \
                      m = v;                                                                    \
                      best = row_off + j2 * g[2].d;                                             \
                    }                                                                           \
                  }                                                                             \
                }                                                                               \
              if (best >= 0) dx[best] += d;                                                     \
            } else {                                                                            \
              int64_t count = include_pad                                                       \
                                  ? hp0 * hp1 * hp2                                             \
                                  : (hi0 > lo0 ? hi0 - lo0 : 0) * (hi1 > lo1 ? hi1 - lo1 : 0) * \
                                        (hi2 > lo2 ? hi2 - lo2 : 0);                            \
              if (count <= 0) continue;                                                         \
              T share = (T)((double)d / (double)count);                                         \
              for (int64_t j0 = lo0; j0 < hi0; j0++)                                            \
                for (int64_t j1 = lo1; j1 < hi1; j1++) {                                        \
                  T *dr = dx + ((s0 + j0 * g[0].d) * g[1].in + s1 + j1 * g[1].d) * g[2].in + s2; \
                  for (int64_t j2 = lo2; j2 < hi2; j2++) dr[j2 * g[2].d] += share;              \
                }                                                                               \
            }                                                                                   \
          }                                                                                     \
        }                                                                                       \
    }                                                                                           \
  }

POOL_BWD_DEFINE(f32, float)
POOL_BWD_DEFINE(f64, double)

static enum od_status pool_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct pool_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *dy = ctx->dout[0];
  struct od_tensor *dx = ctx->din[0];
  if (!dy || !dx) return OD_OK; /* Indices (output 1) takes no gradient */
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "backward: input dtype %s is not supported (float, double)",
                      od_dtype_name(x->dtype));
  struct pool_task t = {.a = a, .x = x->data, .y = dy->data, .dx = dx->data};
  OD_TRY(pool_geometry(a, x, t.g, ctx->err));
  int64_t planes = x->dims[0] * x->dims[1];
  int64_t per = t.g[0].out * t.g[1].out * t.g[2].out * a->kernel[0] * (a->n > 1 ? a->kernel[1] : 1) *
                (a->n > 2 ? a->kernel[2] : 1);
  if (per < 1) per = 1;
  od_pool_parallel_for(ctx->pool, planes, (16384 + per - 1) / per,
                       x->dtype == OD_DTYPE_FLOAT ? pool_bwd_planes_f32 : pool_bwd_planes_f64, &t);
  return OD_OK;
}

const struct od_op_kernels od_kernels_maxpool = {
    .attrs_size = sizeof(struct pool_attrs),
    .parse = maxpool_parse,
    .infer = pool_infer,
    .forward = {[OD_DEVICE_CPU] = pool_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_pool_fwd)},
    .backward = {[OD_DEVICE_CPU] = pool_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_pool_bwd)},
    .flags = OD_OP_BWD_FRESH,
    .dtypes = "float, double, int8, uint8",
};

const struct od_op_kernels od_kernels_averagepool = {
    .attrs_size = sizeof(struct pool_attrs),
    .parse = avgpool_parse,
    .infer = pool_infer,
    .forward = {[OD_DEVICE_CPU] = pool_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_pool_fwd)},
    .backward = {[OD_DEVICE_CPU] = pool_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_pool_bwd)},
    .flags = OD_OP_BWD_FRESH,
    .dtypes = "float, double",
};
