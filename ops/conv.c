/* ops/conv.c: ONNX Conv (opsets 1, 11, 22: the same semantics; 11 only rewrote the text and 22 added
 * bfloat16). dtypes: float, double.
 * Spec: https://onnx.ai/onnx/operators/onnx__Conv.html
 *
 *   X (N, C, D1..Dn), W (M, C/group, k1..kn), optional B (M)  ->  Y (N, M, O1..On)
 *   Y[n, m, o] = B[m] + sum_{c in group(m), tap} W[m, c, tap] * X[n, c, o * stride - pad + tap * dilation]
 *
 * Attributes: group, kernel_shape (inferred from W when absent), strides, dilations, pads (begin of
 * every dim, then end), auto_pad NOTSET / SAME_UPPER / SAME_LOWER / VALID (geometry in im2col.c).
 *
 * Algorithm: for each image and group, im2col (tiled over output positions so the column buffer
 * stays around 8 MiB) then one GEMM, W_g (M/g x C/g*K) times col (C/g*K x tile), written into the
 * output with ldc = O1*..*On. A 1x1 stride-1 unpadded conv skips im2col. OpenBLAS threads the GEMM
 * itself, so im2col stays serial (no oversubscription). Depthwise convs (C/group == 1, 1-D or 2-D)
 * run a direct loop instead, parallel over (image, output channel) planes: a GEMM with one input
 * channel per group would be a matrix-vector product per plane.
 *
 * Backward (float, double): dX, dW, dB by the same im2col + GEMM tiling (col2im for dX), or direct
 * loops for depthwise convs; the math is stated above conv_backward_cpu. */
#include <stdlib.h>
#include <string.h>

#include "ops/im2col.h"
#include "ops/op.h"

static enum od_status conv_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  return od_conv_attrs_parse(node, false, attrs, err);
}

static bool present(const struct od_tensor *t) { return t && t->dtype != OD_DTYPE_UNDEFINED; }

/* Checks X, W, B and computes the geometry. */
static enum od_status conv_check(const struct od_conv_attrs *a, const struct od_tensor *x, const struct od_tensor *w,
                                 const struct od_tensor *b, struct od_conv_geom *g, struct od_err *err) {
  char s1[128], s2[128];
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "X has dtype %s; Conv supports float and double",
                      od_dtype_name(x->dtype));
  if (w->dtype != x->dtype || (present(b) && b->dtype != x->dtype))
    return od_err_set(err, OD_ERR_SHAPE, "X is %s but W is %s%s%s", od_dtype_name(x->dtype), od_dtype_name(w->dtype),
                      present(b) ? " and B is " : "", present(b) ? od_dtype_name(b->dtype) : "");
  if (x->rank < 3 || w->rank != x->rank)
    return od_err_set(err, OD_ERR_SHAPE, "X %s and W %s: expected (N, C, D1..Dn) and (M, C/group, k1..kn)",
                      od_shape_str(x->rank, x->dims, s1, sizeof s1), od_shape_str(w->rank, w->dims, s2, sizeof s2));
  int64_t C = x->dims[1], M = w->dims[0];
  if (C % a->group || w->dims[1] * a->group != C || M % a->group)
    return od_err_set(err, OD_ERR_SHAPE, "X %s, W %s and group %lld do not fit: need W dim 1 = C/group and M %% group == 0",
                      od_shape_str(x->rank, x->dims, s1, sizeof s1), od_shape_str(w->rank, w->dims, s2, sizeof s2),
                      (long long)a->group);
  if (present(b) && (b->rank != 1 || b->dims[0] != M))
    return od_err_set(err, OD_ERR_SHAPE, "B has shape %s; expected [%lld] (W's dim 0)",
                      od_shape_str(b->rank, b->dims, s1, sizeof s1), (long long)M);
  return od_conv_geom_forward(a, x->rank, x->dims, w->dims, g, err);
}

static enum od_status conv_infer(struct od_infer_ctx *ctx) {
  if (ctx->n_in < 2) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "Conv needs inputs X and W");
  struct od_conv_geom g;
  OD_TRY(conv_check(ctx->attrs, &ctx->in[0], &ctx->in[1], ctx->n_in > 2 ? &ctx->in[2] : NULL, &g, ctx->err));
  struct od_tensor *y = &ctx->out[0];
  y->dtype = ctx->in[0].dtype;
  y->rank = ctx->in[0].rank;
  y->dims[0] = ctx->in[0].dims[0];
  y->dims[1] = ctx->in[1].dims[0];
  for (int d = 0; d < g.nd; d++) y->dims[2 + d] = g.out[d];
  return OD_OK;
}

/* ---- depthwise: direct loop per output plane ---- */

#define OD_DW_MAX_KW 64 /* widest kernel the direct path takes (wider ones go through im2col) */

/* y[ow] += w * x[ow * sw] for ow in [0, n): the innermost depthwise loop. At stride 1 the body is
 * unrolled by 8 so that GCC's -O2 (which does straight-line SLP vectorisation but only "very cheap"
 * loop vectorisation) turns it into vector code; restrict tells it x and y do not overlap. */
#define OD_DEFINE_AXPY(T, SFX)                                                                   \
  static void axpy_##SFX(int64_t n, T w, const T *restrict x, int64_t sw, T *restrict y) {       \
    int64_t i = 0;                                                                               \
    if (sw == 1) {                                                                               \
      for (; i + 8 <= n; i += 8) {                                                               \
        y[i + 0] += w * x[i + 0];                                                                \
        y[i + 1] += w * x[i + 1];                                                                \
        y[i + 2] += w * x[i + 2];                                                                \
        y[i + 3] += w * x[i + 3];                                                                \
        y[i + 4] += w * x[i + 4];                                                                \
        y[i + 5] += w * x[i + 5];                                                                \
        y[i + 6] += w * x[i + 6];                                                                \
        y[i + 7] += w * x[i + 7];                                                                \
      }                                                                                          \
      for (; i < n; i++) y[i] += w * x[i];                                                       \
    } else {                                                                                     \
      for (; i < n; i++) y[i] += w * x[i * sw];                                                  \
    }                                                                                            \
  }
OD_DEFINE_AXPY(float, f32)
OD_DEFINE_AXPY(double, f64)

/* One output plane y (O1 x O2, 1-D as 1 x O) from one input plane x with kernel w (k_size). The
 * valid output column range of each kernel column is the same for every row: computed once. */
#define OD_DEFINE_DEPTHWISE_PLANE(T, SFX)                                                          \
  static void dw_plane_##SFX(const struct od_conv_geom *g, const T *x, const T *w, T bias, T *y) { \
    bool two = g->nd == 2;                                                                       \
    int64_t H = two ? g->in[0] : 1, W = g->in[g->nd - 1];                                        \
    int64_t OH = two ? g->out[0] : 1, OW = g->out[g->nd - 1];                                    \
    int64_t KH = two ? g->k[0] : 1, KW = g->k[g->nd - 1];                                        \
    int64_t sh = two ? g->stride[0] : 1, dh = two ? g->dil[0] : 1, ph = two ? g->pad[0] : 0;     \
    int64_t sw = g->stride[g->nd - 1], dw = g->dil[g->nd - 1], pw = g->pad[g->nd - 1];           \
    int64_t lo[OD_DW_MAX_KW], hi[OD_DW_MAX_KW];                                                  \
    for (int64_t kw = 0; kw < KW; kw++)                                                          \
      od_conv_valid_range(kw * dw - pw, sw, W, OW, &lo[kw], &hi[kw]);                            \
    for (int64_t oh = 0; oh < OH; oh++) {                                                        \
      T *yr = y + oh * OW;                                                                       \
      for (int64_t ow = 0; ow < OW; ow++) yr[ow] = bias;                                         \
      for (int64_t kh = 0; kh < KH; kh++) {                                                      \
        int64_t ih = oh * sh - ph + kh * dh;                                                     \
        if (ih < 0 || ih >= H) continue;                                                         \
        const T *xr = x + ih * W;                                                                \
        for (int64_t kw = 0; kw < KW; kw++)                                                      \
          if (hi[kw] > lo[kw])                                                                   \
            axpy_##SFX(hi[kw] - lo[kw], w[kh * KW + kw], xr + lo[kw] * sw + kw * dw - pw, sw,    \
                       yr + lo[kw]);                                                             \
      }                                                                                          \
    }                                                                                            \
  }
OD_DEFINE_DEPTHWISE_PLANE(float, f32)
OD_DEFINE_DEPTHWISE_PLANE(double, f64)

struct dw_job {
  const struct od_conv_geom *g;
  int dtype;
  const void *x, *w, *b;   /* X (N, C, ...), W (M, 1, ...), B (M) or NULL */
  void *y;                 /* (N, M, ...) */
  int64_t C, M, Mg;        /* Mg = output channels per input channel (the channel multiplier) */
};

/* Output planes [begin, end) of the N * M planes. */
static void dw_planes(void *ctx, int64_t begin, int64_t end) {
  const struct dw_job *j = ctx;
  const struct od_conv_geom *g = j->g;
  for (int64_t p = begin; p < end; p++) {
    int64_t n = p / j->M, m = p % j->M, c = m / j->Mg;
    size_t xi = (size_t)((n * j->C + c) * g->in_size), yi = (size_t)(p * g->out_size), wi = (size_t)(m * g->k_size);
    if (j->dtype == OD_DTYPE_FLOAT)
      dw_plane_f32(g, (const float *)j->x + xi, (const float *)j->w + wi, j->b ? ((const float *)j->b)[m] : 0.0f,
                   (float *)j->y + yi);
    else
      dw_plane_f64(g, (const double *)j->x + xi, (const double *)j->w + wi, j->b ? ((const double *)j->b)[m] : 0.0,
                   (double *)j->y + yi);
  }
}

/* ---- general: im2col + GEMM ---- */

/* Y[n, m, :] = B[m] for every image. */
static void fill_bias(int dtype, void *y, const void *b, int64_t N, int64_t M, int64_t plane) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t m = 0; m < M; m++) {
      int64_t o = (n * M + m) * plane;
      if (dtype == OD_DTYPE_FLOAT) {
        float v = ((const float *)b)[m], *d = (float *)y + o;
        for (int64_t i = 0; i < plane; i++) d[i] = v;
      } else {
        double v = ((const double *)b)[m], *d = (double *)y + o;
        for (int64_t i = 0; i < plane; i++) d[i] = v;
      }
    }
}

static enum od_status conv_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *x = ctx->in[0], *w = ctx->in[1];
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  struct od_tensor *y = ctx->out[0];
  const struct od_conv_attrs *a = ctx->attrs;
  struct od_conv_geom g;
  OD_TRY(conv_check(a, x, w, b, &g, ctx->err));
  int dtype = x->dtype;
  size_t es = od_dtype_size(dtype);
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], G = a->group, Cg = C / G, Mg = M / G;
  if (N == 0 || M == 0 || g.out_size == 0) return OD_OK;

  if (G > 1 && Cg == 1 && g.nd <= 2 && g.k[g.nd - 1] <= OD_DW_MAX_KW) {
    struct dw_job j = {&g, dtype, x->data, w->data, b ? b->data : NULL, y->data, C, M, Mg};
    od_pool_parallel_for(ctx->pool, N * M, 16384 / g.out_size / g.k_size + 1, dw_planes, &j);
    return OD_OK;
  }

  if (b) fill_bias(dtype, y->data, b->data, N, M, g.out_size);
  double beta = b ? 1.0 : 0.0;
  int64_t rows = Cg * g.k_size; /* rows of the column matrix = columns of W_g */
  bool pointwise = od_conv_geom_is_pointwise(&g);
  int64_t tile = pointwise ? g.out_size : od_conv_col_tile(rows, g.out_size, es);
  void *col = NULL;
  if (!pointwise && !(col = malloc((size_t)(rows * tile) * es)))
    return od_err_set(ctx->err, OD_ERR_OOM, "Conv: out of memory for a %lld x %lld column buffer", (long long)rows,
                      (long long)tile);
  const char *xd = x->data, *wd = w->data;
  char *yd = y->data;
  for (int64_t n = 0; n < N; n++)
    for (int64_t grp = 0; grp < G; grp++) {
      const char *xg = xd + (size_t)((n * C + grp * Cg) * g.in_size) * es;  /* (Cg, in...) */
      const char *wg = wd + (size_t)(grp * Mg * rows) * es;                   /* (Mg, Cg * K) */
      char *yg = yd + (size_t)((n * M + grp * Mg) * g.out_size) * es;         /* (Mg, out...) */
      if (pointwise) {
        od_gemm(dtype, false, false, Mg, g.out_size, Cg, 1.0, wg, Cg, xg, g.out_size, beta, yg, g.out_size);
        continue;
      }
      for (int64_t p0 = 0; p0 < g.out_size; p0 += tile) {
        int64_t p1 = p0 + tile < g.out_size ? p0 + tile : g.out_size;
        /* im2col runs serially (pool NULL): OpenBLAS's threads keep spinning for a while after each
         * GEMM, and waking our pool between GEMMs oversubscribes the cores (measured: a 32-group
         * conv ran 5x slower with a parallel im2col on 2 cores). */
        if (dtype == OD_DTYPE_FLOAT) od_im2col_f32(NULL, (const float *)xg, Cg, &g, p0, p1, col);
        else od_im2col_f64(NULL, (const double *)xg, Cg, &g, p0, p1, col);
        od_gemm(dtype, false, false, Mg, p1 - p0, rows, 1.0, wg, rows, col, p1 - p0, beta, yg + (size_t)p0 * es,
                g.out_size);
      }
    }
  free(col);
  return OD_OK;
}

/* ---- backward ---- */

/* Y = W * col(X) + B per image and group (col = im2col), so with dY (Mg x out_size) per group:
 *   term 1: dB[m]  += sum over images and output positions of dY[n, m, :]
 *   term 2: dW_g   += dY_g * col(X_g)^T          (Mg x P) (P x Cg*K)      one GEMM per column tile
 *   term 3: dX_g   += col2im(W_g^T * dY_g)       (Cg*K x Mg) (Mg x P), then scattered back by the
 *                                                 adjoint of im2col (col2im adds, so += holds)
 * A pointwise conv has col = X: term 2 is dY_g X_g^T and term 3 is W_g^T dY_g straight into dX.
 * Depthwise convs (the forward's direct path) use direct loops instead: term 2 is, per output
 * channel m and tap, the dot product of dY's plane with the shifted input plane; term 3 scatters
 * w * dY back into the input plane. */

/* sum_i y[i] * x[i * sx]: one tap's contribution to dW on one output row (depthwise). At stride 1,
 * eight partial sums in T (unrolled like axpy so that -O2 vectorises it; a row is short, so T's
 * precision is enough before the caller adds the row's sum in double). */
#define OD_DEFINE_DOT(T, SFX)                                                                    \
  static double dot_##SFX(int64_t n, const T *restrict y, const T *restrict x, int64_t sx) {     \
    int64_t i = 0;                                                                               \
    T p[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                           \
    if (sx == 1)                                                                                 \
      for (; i + 8 <= n; i += 8) {                                                               \
        p[0] += y[i + 0] * x[i + 0];                                                             \
        p[1] += y[i + 1] * x[i + 1];                                                             \
        p[2] += y[i + 2] * x[i + 2];                                                             \
        p[3] += y[i + 3] * x[i + 3];                                                             \
        p[4] += y[i + 4] * x[i + 4];                                                             \
        p[5] += y[i + 5] * x[i + 5];                                                             \
        p[6] += y[i + 6] * x[i + 6];                                                             \
        p[7] += y[i + 7] * x[i + 7];                                                             \
      }                                                                                          \
    double s = (double)((p[0] + p[4]) + (p[1] + p[5])) + (double)((p[2] + p[6]) + (p[3] + p[7])); \
    for (; i < n; i++) s += (double)y[i] * x[i * sx];                                            \
    return s;                                                                                    \
  }
OD_DEFINE_DOT(float, f32)
OD_DEFINE_DOT(double, f64)

/* One input/output plane pair of a depthwise conv: dx (may be NULL) += scatter of w * dy, and
 * dw (may be NULL, k_size values) += the correlation of dy with x. */
#define OD_DEFINE_DEPTHWISE_BACKWARD(T, SFX)                                                      \
  static void dw_plane_backward_##SFX(const struct od_conv_geom *g, const T *x, const T *w, const T *dy, \
                                      T *dx, double *dw) {                                        \
    bool two = g->nd == 2;                                                                        \
    int64_t H = two ? g->in[0] : 1, W = g->in[g->nd - 1];                                         \
    int64_t OH = two ? g->out[0] : 1, OW = g->out[g->nd - 1];                                     \
    int64_t KH = two ? g->k[0] : 1, KW = g->k[g->nd - 1];                                         \
    int64_t sh = two ? g->stride[0] : 1, dh = two ? g->dil[0] : 1, ph = two ? g->pad[0] : 0;      \
    int64_t sw = g->stride[g->nd - 1], dwl = g->dil[g->nd - 1], pw = g->pad[g->nd - 1];           \
    int64_t lo[OD_DW_MAX_KW], hi[OD_DW_MAX_KW];                                                   \
    for (int64_t kw = 0; kw < KW; kw++)                                                           \
      od_conv_valid_range(kw * dwl - pw, sw, W, OW, &lo[kw], &hi[kw]);                            \
    for (int64_t oh = 0; oh < OH; oh++) {                                                         \
      const T *dyr = dy + oh * OW;                                                                \
      for (int64_t kh = 0; kh < KH; kh++) {                                                       \
        int64_t ih = oh * sh - ph + kh * dh;                                                      \
        if (ih < 0 || ih >= H) continue;                                                          \
        for (int64_t kw = 0; kw < KW; kw++) {                                                     \
          int64_t n = hi[kw] - lo[kw], off = ih * W + lo[kw] * sw + kw * dwl - pw;                 \
          if (n <= 0) continue;                                                                   \
          if (dw) dw[kh * KW + kw] += dot_##SFX(n, dyr + lo[kw], x + off, sw);                    \
          if (dx) {                                                                               \
            T wv = w[kh * KW + kw], *d = dx + off;                                                \
            const T *s = dyr + lo[kw];                                                            \
            if (sw == 1) axpy_##SFX(n, wv, s, 1, d);                                              \
            else                                                                                  \
              for (int64_t i = 0; i < n; i++) d[i * sw] += wv * s[i];                             \
          }                                                                                       \
        }                                                                                         \
      }                                                                                           \
    }                                                                                             \
  }
OD_DEFINE_DEPTHWISE_BACKWARD(float, f32)
OD_DEFINE_DEPTHWISE_BACKWARD(double, f64)

struct dw_bwd_job {
  const struct od_conv_geom *g;
  int dtype;
  const void *x, *w, *dy;
  void *dx, *dw;           /* either may be NULL */
  int64_t N, C, M, Mg;
};

/* dX: input planes [begin, end) of the N * C planes; each gathers from its Mg output channels. */
static void dw_bwd_dx(void *ctx, int64_t begin, int64_t end) {
  const struct dw_bwd_job *j = ctx;
  const struct od_conv_geom *g = j->g;
  for (int64_t p = begin; p < end; p++) {
    int64_t n = p / j->C, c = p % j->C;
    for (int64_t m = c * j->Mg; m < (c + 1) * j->Mg; m++) {
      size_t xi = (size_t)(p * g->in_size), yi = (size_t)((n * j->M + m) * g->out_size), wi = (size_t)(m * g->k_size);
      if (j->dtype == OD_DTYPE_FLOAT)
        dw_plane_backward_f32(g, NULL, (const float *)j->w + wi, (const float *)j->dy + yi, (float *)j->dx + xi, NULL);
      else
        dw_plane_backward_f64(g, NULL, (const double *)j->w + wi, (const double *)j->dy + yi, (double *)j->dx + xi,
                              NULL);
    }
  }
}

/* dW: output channels [begin, end), each summed over the images (in double, then added). */
static void dw_bwd_dw(void *ctx, int64_t begin, int64_t end) {
  const struct dw_bwd_job *j = ctx;
  const struct od_conv_geom *g = j->g;
  double sum[OD_DW_MAX_KW * OD_DW_MAX_KW]; /* the caller sends kernels up to OD_DW_MAX_KW square */
  for (int64_t m = begin; m < end; m++) {
    int64_t c = m / j->Mg;
    for (int64_t t = 0; t < g->k_size; t++) sum[t] = 0;
    for (int64_t n = 0; n < j->N; n++) {
      size_t xi = (size_t)((n * j->C + c) * g->in_size), yi = (size_t)((n * j->M + m) * g->out_size);
      if (j->dtype == OD_DTYPE_FLOAT)
        dw_plane_backward_f32(g, (const float *)j->x + xi, NULL, (const float *)j->dy + yi, NULL, sum);
      else
        dw_plane_backward_f64(g, (const double *)j->x + xi, NULL, (const double *)j->dy + yi, NULL, sum);
    }
    for (int64_t t = 0; t < g->k_size; t++) {
      if (j->dtype == OD_DTYPE_FLOAT) ((float *)j->dw)[m * g->k_size + t] += (float)sum[t];
      else ((double *)j->dw)[m * g->k_size + t] += sum[t];
    }
  }
}

/* dB[m] += sum over n and positions of dY[n, m, :] (sums in double). */
static void bias_grad(int dtype, const void *dy, void *db, int64_t N, int64_t M, int64_t plane) {
  for (int64_t m = 0; m < M; m++) {
    double s = 0;
    for (int64_t n = 0; n < N; n++) {
      size_t o = (size_t)((n * M + m) * plane);
      if (dtype == OD_DTYPE_FLOAT)
        for (int64_t i = 0; i < plane; i++) s += ((const float *)dy)[o + i];
      else
        for (int64_t i = 0; i < plane; i++) s += ((const double *)dy)[o + i];
    }
    if (dtype == OD_DTYPE_FLOAT) ((float *)db)[m] += (float)s;
    else ((double *)db)[m] += s;
  }
}

static enum od_status conv_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *x = ctx->in[0], *w = ctx->in[1], *dy = ctx->dout[0];
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  struct od_tensor *dx = ctx->din[0], *dw = ctx->din[1], *db = b ? ctx->din[2] : NULL;
  const struct od_conv_attrs *a = ctx->attrs;
  struct od_conv_geom g;
  if (!dy) return OD_OK;
  OD_TRY(conv_check(a, x, w, b, &g, ctx->err));
  int dtype = x->dtype;
  size_t es = od_dtype_size(dtype);
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], G = a->group, Cg = C / G, Mg = M / G;
  if (N == 0 || M == 0 || g.out_size == 0) return OD_OK;
  if (db) bias_grad(dtype, dy->data, db->data, N, M, g.out_size);
  if (!dx && !dw) return OD_OK;

  if (G > 1 && Cg == 1 && g.nd <= 2 && g.k[g.nd - 1] <= OD_DW_MAX_KW && g.k[0] <= OD_DW_MAX_KW) {
    struct dw_bwd_job j = {&g, dtype, x->data, w->data, dy->data, dx ? dx->data : NULL, dw ? dw->data : NULL,
                           N, C, M, Mg};
    int64_t work = Mg * g.out_size * g.k_size;
    if (dx) od_pool_parallel_for(ctx->pool, N * C, 16384 / (work + 1) + 1, dw_bwd_dx, &j);
    if (dw) od_pool_parallel_for(ctx->pool, M, 16384 / (N * g.out_size * g.k_size + 1) + 1, dw_bwd_dw, &j);
    return OD_OK;
  }

  int64_t rows = Cg * g.k_size;
  bool pointwise = od_conv_geom_is_pointwise(&g);
  int64_t tile = pointwise ? g.out_size : od_conv_col_tile(rows, g.out_size, es);
  void *col = NULL, *dcol = NULL;
  if (!pointwise && ((dw && !(col = malloc((size_t)(rows * tile) * es))) ||
                     (dx && !(dcol = malloc((size_t)(rows * tile) * es))))) {
    free(col);
    return od_err_set(ctx->err, OD_ERR_OOM, "Conv backward: out of memory for a %lld x %lld column buffer",
                      (long long)rows, (long long)tile);
  }
  const char *xd = x->data, *wd = w->data, *dyd = dy->data;
  char *dxd = dx ? dx->data : NULL, *dwd = dw ? dw->data : NULL;
  for (int64_t n = 0; n < N; n++)
    for (int64_t grp = 0; grp < G; grp++) {
      size_t xo = (size_t)((n * C + grp * Cg) * g.in_size) * es;   /* (Cg, in...) */
      size_t wo = (size_t)(grp * Mg * rows) * es;                  /* (Mg, Cg * K) */
      const char *dyg = dyd + (size_t)((n * M + grp * Mg) * g.out_size) * es; /* (Mg, out...) */
      if (pointwise) {
        if (dw) od_gemm(dtype, false, true, Mg, Cg, g.out_size, 1.0, dyg, g.out_size, xd + xo, g.out_size, 1.0,
                        dwd + wo, Cg);
        if (dx) od_gemm(dtype, true, false, Cg, g.out_size, Mg, 1.0, wd + wo, Cg, dyg, g.out_size, 1.0, dxd + xo,
                        g.out_size);
        continue;
      }
      for (int64_t p0 = 0; p0 < g.out_size; p0 += tile) {
        int64_t p1 = p0 + tile < g.out_size ? p0 + tile : g.out_size, np = p1 - p0;
        const char *dyt = dyg + (size_t)p0 * es;
        if (dw) {
          if (dtype == OD_DTYPE_FLOAT) od_im2col_f32(NULL, (const float *)(xd + xo), Cg, &g, p0, p1, col);
          else od_im2col_f64(NULL, (const double *)(xd + xo), Cg, &g, p0, p1, col);
          od_gemm(dtype, false, true, Mg, rows, np, 1.0, dyt, g.out_size, col, np, 1.0, dwd + wo, rows);
        }
        if (dx) {
          od_gemm(dtype, true, false, rows, np, Mg, 1.0, wd + wo, rows, dyt, g.out_size, 0.0, dcol, np);
          if (dtype == OD_DTYPE_FLOAT) od_col2im_f32(NULL, dcol, Cg, &g, p0, p1, (float *)(dxd + xo));
          else od_col2im_f64(NULL, dcol, Cg, &g, p0, p1, (double *)(dxd + xo));
        }
      }
    }
  free(col);
  free(dcol);
  return OD_OK;
}

const struct od_op_kernels od_kernels_conv = {
    .bwd_reads = od_bwd_reads_inputs,
    .attrs_size = sizeof(struct od_conv_attrs),
    .parse = conv_parse,
    .infer = conv_infer,
    .forward = {[OD_DEVICE_CPU] = conv_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_conv_fwd)},
    .backward = {[OD_DEVICE_CPU] = conv_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_conv_bwd)},
    .flags = OD_OP_BWD_FRESH,
    .dtypes = "float, double",
};
