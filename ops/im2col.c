/* ops/im2col.c: shared Conv / ConvTranspose attributes, geometry, im2col and col2im (see im2col.h).
 *
 * Both rearrangements walk the same index map, one column-matrix row (channel c, kernel tap) at a
 * time, and cut each row into segments: runs of output positions whose input positions are either
 * all padding or all inside the image at a fixed input stride. im2col copies a segment (or zeroes
 * it), col2im adds it back; the element type only matters in that innermost step, so one walk
 * serves float and double. */
#include "ops/im2col.h"

#include <cblas.h>
#include <string.h>

#include "ops/attr.h"

/* ---- attributes and geometry ---- */

static enum od_status parse_positive(const struct od_node *node, const char *name, int64_t *v, size_t *n,
                                     struct od_err *err) {
  OD_TRY(od_attr_get_ints(node, name, v, OD_CONV_MAX_ND, n, NULL, err));
  for (size_t i = 0; i < *n; i++)
    if (v[i] < 1)
      return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute '%s'[%zu] is %lld; must be >= 1", name, i,
                        (long long)v[i]);
  return OD_OK;
}

enum od_status od_conv_attrs_parse(const struct od_node *node, bool transpose, struct od_conv_attrs *a,
                                   struct od_err *err) {
  memset(a, 0, sizeof *a);
  OD_TRY(od_attr_get_int(node, "group", 1, &a->group, err));
  if (a->group < 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'group' is %lld; must be >= 1", (long long)a->group);
  const char *ap;
  OD_TRY(od_attr_get_string(node, "auto_pad", "NOTSET", &ap, err));
  if (!strcmp(ap, "NOTSET") || !ap[0]) a->auto_pad = OD_AUTO_PAD_NOTSET;
  else if (!strcmp(ap, "SAME_UPPER")) a->auto_pad = OD_AUTO_PAD_SAME_UPPER;
  else if (!strcmp(ap, "SAME_LOWER")) a->auto_pad = OD_AUTO_PAD_SAME_LOWER;
  else if (!strcmp(ap, "VALID")) a->auto_pad = OD_AUTO_PAD_VALID;
  else
    return od_err_set(err, OD_ERR_INVALID_MODEL,
                      "attribute 'auto_pad' is '%s'; expected NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap);
  OD_TRY(parse_positive(node, "kernel_shape", a->kernel_shape, &a->n_kernel, err));
  OD_TRY(parse_positive(node, "strides", a->strides, &a->n_strides, err));
  OD_TRY(parse_positive(node, "dilations", a->dilations, &a->n_dilations, err));
  OD_TRY(od_attr_get_ints(node, "pads", a->pads, 2 * OD_CONV_MAX_ND, &a->n_pads, NULL, err));
  if (a->n_pads % 2)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'pads' has %zu values; expected 2 per spatial dim",
                      a->n_pads);
  if (!transpose) {
    for (size_t i = 0; i < a->n_pads; i++)
      if (a->pads[i] < 0)
        return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'pads'[%zu] is %lld; must be >= 0", i,
                          (long long)a->pads[i]);
    return OD_OK;
  }
  OD_TRY(od_attr_get_ints(node, "output_padding", a->output_padding, OD_CONV_MAX_ND, &a->n_output_padding, NULL,
                          err));
  for (size_t i = 0; i < a->n_output_padding; i++)
    if (a->output_padding[i] < 0)
      return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'output_padding'[%zu] is %lld; must be >= 0", i,
                        (long long)a->output_padding[i]);
  OD_TRY(od_attr_get_ints(node, "output_shape", a->output_shape, OD_MAX_DIMS, &a->n_output_shape, NULL, err));
  return OD_OK;
}

/* Checks the per-dim attribute counts against the spatial rank nd. */
static enum od_status check_counts(const struct od_conv_attrs *a, int nd, struct od_err *err) {
  const struct {
    const char *name;
    size_t n, want;
  } c[] = {{"kernel_shape", a->n_kernel, (size_t)nd}, {"strides", a->n_strides, (size_t)nd},
           {"dilations", a->n_dilations, (size_t)nd}, {"pads", a->n_pads, 2 * (size_t)nd},
           {"output_padding", a->n_output_padding, (size_t)nd}};
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
    if (c[i].n && c[i].n != c[i].want)
      return od_err_set(err, OD_ERR_SHAPE, "attribute '%s' has %zu values; the input has %d spatial dims (want %zu)",
                        c[i].name, c[i].n, nd, c[i].want);
  return OD_OK;
}

/* Common part: spatial rank, kernel from W (checked against kernel_shape), strides, dilations. */
static enum od_status geom_common(const struct od_conv_attrs *a, int x_rank, const int64_t *w_dims,
                                  struct od_conv_geom *g, struct od_err *err) {
  int nd = x_rank - 2;
  if (nd < 1 || nd > OD_CONV_MAX_ND)
    return od_err_set(err, OD_ERR_SHAPE, "input has rank %d; expected (N, C, D1, ..., Dn) with 1 <= n <= %d",
                      x_rank, OD_CONV_MAX_ND);
  OD_TRY(check_counts(a, nd, err));
  memset(g, 0, sizeof *g);
  g->nd = nd;
  g->k_size = 1;
  for (int d = 0; d < nd; d++) {
    g->k[d] = w_dims[2 + d];
    if (a->n_kernel && a->kernel_shape[d] != g->k[d])
      return od_err_set(err, OD_ERR_SHAPE, "kernel_shape[%d] = %lld but W's dim %d is %lld", d,
                        (long long)a->kernel_shape[d], d + 2, (long long)g->k[d]);
    if (g->k[d] < 1) return od_err_set(err, OD_ERR_SHAPE, "W has an empty kernel dim %d", d + 2);
    g->stride[d] = a->n_strides ? a->strides[d] : 1;
    g->dil[d] = a->n_dilations ? a->dilations[d] : 1;
    g->k_size *= g->k[d];
  }
  return OD_OK;
}

static int64_t floor_div2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

static void geom_sizes(struct od_conv_geom *g) {
  g->in_size = g->out_size = 1;
  for (int d = 0; d < g->nd; d++) {
    g->in_size *= g->in[d];
    g->out_size *= g->out[d];
  }
}

enum od_status od_conv_geom_forward(const struct od_conv_attrs *a, int x_rank, const int64_t *x_dims,
                                    const int64_t *w_dims, struct od_conv_geom *g, struct od_err *err) {
  OD_TRY(geom_common(a, x_rank, w_dims, g, err));
  for (int d = 0; d < g->nd; d++) {
    int64_t in = x_dims[2 + d], s = g->stride[d], dk = (g->k[d] - 1) * g->dil[d] + 1, out;
    g->in[d] = in;
    switch (a->auto_pad) {
      case OD_AUTO_PAD_SAME_UPPER:
      case OD_AUTO_PAD_SAME_LOWER: {
        /* out = ceil(in / stride); the padding that needs is split, odd unit at the end (UPPER)
         * or the beginning (LOWER). */
        out = (in + s - 1) / s;
        int64_t total = (out - 1) * s + dk - in;
        if (total < 0) total = 0;
        g->pad[d] = a->auto_pad == OD_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
        g->pad_end[d] = total - g->pad[d];
        break;
      }
      case OD_AUTO_PAD_VALID:
        g->pad[d] = g->pad_end[d] = 0;
        out = in >= dk ? (in - dk) / s + 1 : 0;
        break;
      default:
        g->pad[d] = a->n_pads ? a->pads[d] : 0;
        g->pad_end[d] = a->n_pads ? a->pads[g->nd + d] : 0;
        out = in + g->pad[d] + g->pad_end[d] >= dk ? (in + g->pad[d] + g->pad_end[d] - dk) / s + 1 : 0;
        break;
    }
    if (out < 1)
      return od_err_set(err, OD_ERR_SHAPE,
                        "spatial dim %d: input %lld with pads (%lld, %lld) is smaller than the dilated kernel %lld",
                        d, (long long)in, (long long)g->pad[d], (long long)g->pad_end[d], (long long)dk);
    g->out[d] = out;
  }
  geom_sizes(g);
  return OD_OK;
}

enum od_status od_conv_geom_transpose(const struct od_conv_attrs *a, int x_rank, const int64_t *x_dims,
                                      const int64_t *w_dims, struct od_conv_geom *g, struct od_err *err) {
  OD_TRY(geom_common(a, x_rank, w_dims, g, err));
  int nd = g->nd;
  const int64_t *oshape = NULL;
  if (a->n_output_shape) {
    if (a->n_output_shape == (size_t)nd) oshape = a->output_shape;
    else if (a->n_output_shape == (size_t)nd + 2) oshape = a->output_shape + 2;
    else
      return od_err_set(err, OD_ERR_SHAPE, "attribute 'output_shape' has %zu values; the input has %d spatial dims",
                        a->n_output_shape, nd);
  }
  for (int d = 0; d < nd; d++) {
    int64_t in = x_dims[2 + d], s = g->stride[d], dk = (g->k[d] - 1) * g->dil[d] + 1;
    int64_t opad = a->n_output_padding ? a->output_padding[d] : 0;
    int64_t full = s * (in - 1) + opad + dk; /* output size before padding is cut off */
    int64_t y;
    bool same = a->auto_pad == OD_AUTO_PAD_SAME_UPPER || a->auto_pad == OD_AUTO_PAD_SAME_LOWER;
    if (a->auto_pad == OD_AUTO_PAD_NOTSET && a->n_pads) {
      /* Explicit pads win; output_shape, if also given, only fixes the size (as the ONNX reference). */
      g->pad[d] = a->pads[d];
      g->pad_end[d] = a->pads[nd + d];
      y = oshape ? oshape[d] : full - g->pad[d] - g->pad_end[d];
    } else if (oshape || same) {
      /* Spec: total_padding = full - output_shape, split as total/2 at the beginning for SAME_UPPER
       * and total - total/2 otherwise (floor division: a negative total extends the end). Without
       * output_shape, SAME_* asks for output = input * stride. */
      y = oshape ? oshape[d] : in * s;
      int64_t total = full - y;
      g->pad[d] = a->auto_pad == OD_AUTO_PAD_SAME_UPPER ? floor_div2(total) : total - floor_div2(total);
      g->pad_end[d] = total - g->pad[d];
    } else {
      g->pad[d] = g->pad_end[d] = 0;
      y = full;
    }
    if (y < 1)
      return od_err_set(err, OD_ERR_SHAPE, "spatial dim %d: output size %lld (input %lld, pads %lld, %lld)", d,
                        (long long)y, (long long)in, (long long)g->pad[d], (long long)g->pad_end[d]);
    g->in[d] = y;   /* the image the (adjoint) convolution reads is ConvTranspose's output */
    g->out[d] = in;
  }
  geom_sizes(g);
  return OD_OK;
}

bool od_conv_geom_is_pointwise(const struct od_conv_geom *g) {
  for (int d = 0; d < g->nd; d++)
    if (g->k[d] != 1 || g->stride[d] != 1 || g->pad[d] != 0 || g->in[d] != g->out[d]) return false;
  return true;
}

int64_t od_conv_col_tile(int64_t rows, int64_t total, size_t elem_size) {
  const int64_t budget = ((int64_t)8 << 20) / (int64_t)elem_size; /* elements */
  int64_t t = rows > 0 ? budget / rows : total;
  if (t < 256) t = 256;
  return t < total ? t : total;
}

/* ---- the index walk ---- */

enum walk_op {
  WALK_IM2COL_F32,
  WALK_IM2COL_F64,
  WALK_COL2IM_F32,
  WALK_COL2IM_F64,
};

/* One segment: n column entries starting at col[j]; their input positions are x[xo + i * xs],
 * or padding when xo < 0 (im2col writes zeros; col2im skips). */
static inline void seg(enum walk_op op, void *col, int64_t j, void *x, int64_t xo, int64_t xs, int64_t n) {
  if (n <= 0) return;
  switch (op) {
    case WALK_IM2COL_F32: {
      float *c = (float *)col + j;
      if (xo < 0) memset(c, 0, (size_t)n * sizeof *c);
      else if (xs == 1) memcpy(c, (const float *)x + xo, (size_t)n * sizeof *c);
      else {
        const float *s = (const float *)x + xo;
        for (int64_t i = 0; i < n; i++) c[i] = s[i * xs];
      }
      break;
    }
    case WALK_IM2COL_F64: {
      double *c = (double *)col + j;
      if (xo < 0) memset(c, 0, (size_t)n * sizeof *c);
      else if (xs == 1) memcpy(c, (const double *)x + xo, (size_t)n * sizeof *c);
      else {
        const double *s = (const double *)x + xo;
        for (int64_t i = 0; i < n; i++) c[i] = s[i * xs];
      }
      break;
    }
    case WALK_COL2IM_F32: {
      if (xo < 0) break;
      const float *c = (const float *)col + j;
      float *s = (float *)x + xo;
      for (int64_t i = 0; i < n; i++) s[i * xs] += c[i];
      break;
    }
    case WALK_COL2IM_F64: {
      if (xo < 0) break;
      const double *c = (const double *)col + j;
      double *s = (double *)x + xo;
      for (int64_t i = 0; i < n; i++) s[i * xs] += c[i];
      break;
    }
  }
}

void od_conv_valid_range(int64_t off, int64_t s, int64_t in, int64_t out, int64_t *lo, int64_t *hi) {
  int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t b = in - 1 - off < 0 ? 0 : (in - 1 - off) / s + 1;
  if (b > out) b = out;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

/* One column row (one kernel tap of one channel) over positions [p0, p1), 1-D or 2-D. col_row points
 * at the row; x_chan at the channel's image. */
static void walk_row_2d(enum walk_op op, const struct od_conv_geom *g, int64_t tap, int64_t p0, int64_t p1,
                        void *col_row, void *x_chan) {
  bool two = g->nd == 2;
  int64_t H = two ? g->in[0] : 1, W = g->in[g->nd - 1];
  int64_t OW = g->out[g->nd - 1];
  int64_t KW = g->k[g->nd - 1];
  int64_t kh = tap / KW, kw = tap % KW;
  int64_t sh = two ? g->stride[0] : 1, ph = two ? g->pad[0] : 0, dh = two ? g->dil[0] : 1;
  int64_t sw = g->stride[g->nd - 1], iw0 = kw * g->dil[g->nd - 1] - g->pad[g->nd - 1];
  int64_t lo, hi;
  od_conv_valid_range(iw0, sw, W, OW, &lo, &hi);
  for (int64_t oh = p0 / OW; oh * OW < p1; oh++) {
    int64_t a = p0 - oh * OW > 0 ? p0 - oh * OW : 0; /* this row's part of [p0, p1) */
    int64_t b = p1 - oh * OW < OW ? p1 - oh * OW : OW;
    int64_t j = oh * OW + a - p0;                     /* column of ow = a */
    int64_t ih = oh * sh - ph + kh * dh;
    if (ih < 0 || ih >= H) {
      seg(op, col_row, j, x_chan, -1, 0, b - a);
      continue;
    }
    int64_t l = lo > a ? lo : a; /* [a, l) padding, [l, h) inside, [h, b) padding */
    if (l > b) l = b;
    int64_t h = hi < b ? hi : b;
    if (h < l) h = l;
    seg(op, col_row, j, x_chan, -1, 0, l - a);
    if (h > l) seg(op, col_row, j + (l - a), x_chan, ih * W + l * sw + iw0, sw, h - l);
    seg(op, col_row, j + (h - a), x_chan, -1, 0, b - h);
  }
}

/* Generic N-D row walk, one element at a time (3-D and up are rare). */
static void walk_row_nd(enum walk_op op, const struct od_conv_geom *g, int64_t tap, int64_t p0, int64_t p1,
                        void *col_row, void *x_chan) {
  int nd = g->nd;
  int64_t kc[OD_CONV_MAX_ND], oc[OD_CONV_MAX_ND];
  for (int d = nd - 1; d >= 0; d--) {
    kc[d] = tap % g->k[d];
    tap /= g->k[d];
  }
  int64_t p = p0;
  for (int d = nd - 1; d >= 0; d--) {
    oc[d] = p % g->out[d];
    p /= g->out[d];
  }
  for (int64_t q = p0; q < p1; q++) {
    int64_t xo = 0;
    for (int d = 0; d < nd; d++) {
      int64_t i = oc[d] * g->stride[d] - g->pad[d] + kc[d] * g->dil[d];
      if (i < 0 || i >= g->in[d]) {
        xo = -1;
        break;
      }
      xo = xo * g->in[d] + i;
    }
    seg(op, col_row, q - p0, x_chan, xo, 1, 1);
    for (int d = nd - 1; d >= 0; d--) { /* next output position */
      if (++oc[d] < g->out[d]) break;
      oc[d] = 0;
    }
  }
}

struct walk_job {
  enum walk_op op;
  const struct od_conv_geom *g;
  int64_t p0, p1;
  char *col;
  char *x;
  size_t es;
};

/* Rows [b, e) of the column matrix (row = c * k_size + tap). */
static void walk_rows(void *ctx, int64_t b, int64_t e) {
  const struct walk_job *j = ctx;
  int64_t ncols = j->p1 - j->p0;
  for (int64_t r = b; r < e; r++) {
    int64_t c = r / j->g->k_size, tap = r % j->g->k_size;
    void *row = j->col + (size_t)(r * ncols) * j->es;
    void *xc = j->x + (size_t)(c * j->g->in_size) * j->es;
    if (j->g->nd <= 2) walk_row_2d(j->op, j->g, tap, j->p0, j->p1, row, xc);
    else walk_row_nd(j->op, j->g, tap, j->p0, j->p1, row, xc);
  }
}

/* Channels [b, e): col2im must not split one channel's taps across threads (they add into the same
 * image). */
static void walk_channels(void *ctx, int64_t b, int64_t e) {
  const struct walk_job *j = ctx;
  walk_rows(ctx, b * j->g->k_size, e * j->g->k_size);
}

static void run_walk(struct od_pool *pool, enum walk_op op, size_t es, const void *col, void *x, int64_t channels,
                     const struct od_conv_geom *g, int64_t p0, int64_t p1) {
  struct walk_job j = {op, g, p0, p1, (char *)col, (char *)x, es};
  int64_t ncols = p1 - p0 > 0 ? p1 - p0 : 1;
  int64_t min_rows = 16384 / ncols + 1; /* keep chunks worth a thread wake-up */
  if (op == WALK_IM2COL_F32 || op == WALK_IM2COL_F64)
    od_pool_parallel_for(pool, channels * g->k_size, min_rows, walk_rows, &j);
  else
    od_pool_parallel_for(pool, channels, min_rows / g->k_size + 1, walk_channels, &j);
}

void od_im2col_f32(struct od_pool *pool, const float *x, int64_t channels, const struct od_conv_geom *g,
                   int64_t p0, int64_t p1, float *col) {
  run_walk(pool, WALK_IM2COL_F32, sizeof(float), col, (void *)x, channels, g, p0, p1);
}

void od_im2col_f64(struct od_pool *pool, const double *x, int64_t channels, const struct od_conv_geom *g,
                   int64_t p0, int64_t p1, double *col) {
  run_walk(pool, WALK_IM2COL_F64, sizeof(double), col, (void *)x, channels, g, p0, p1);
}

void od_col2im_f32(struct od_pool *pool, const float *col, int64_t channels, const struct od_conv_geom *g,
                   int64_t p0, int64_t p1, float *x) {
  run_walk(pool, WALK_COL2IM_F32, sizeof(float), col, x, channels, g, p0, p1);
}

void od_col2im_f64(struct od_pool *pool, const double *col, int64_t channels, const struct od_conv_geom *g,
                   int64_t p0, int64_t p1, double *x) {
  run_walk(pool, WALK_COL2IM_F64, sizeof(double), col, x, channels, g, p0, p1);
}

/* ---- GEMM for every dtype of the family ---- */

/* The plain loop for integer types: C[i][j] = alpha * sum_k A[i][k] B[k][j] + beta * C[i][j]. */
#define OD_GEMM_INT(T)                                                                              \
  do {                                                                                             \
    const T *a_ = A, *b_ = B;                                                                      \
    T *c_ = C;                                                                                     \
    bool exact_ = alpha == 1.0 && (beta == 0.0 || beta == 1.0);                                    \
    for (int64_t i = 0; i < M; i++)                                                                \
      for (int64_t j = 0; j < N; j++) {                                                            \
        uint64_t sum_ = 0; /* modulo 2^64: wraps like numpy, no signed-overflow UB */              \
        for (int64_t k = 0; k < K; k++)                                                            \
          sum_ += (uint64_t)(trans_a ? a_[k * lda + i] : a_[i * lda + k]) *                        \
                  (uint64_t)(trans_b ? b_[j * ldb + k] : b_[k * ldb + j]);                         \
        T acc_ = (T)sum_;                                                                          \
        T *cij_ = &c_[i * ldc + j];                                                                \
        if (exact_) *cij_ = beta == 0.0 ? acc_ : (T)((uint64_t)*cij_ + (uint64_t)acc_);            \
        else *cij_ = (T)(alpha * (double)acc_ + (beta == 0.0 ? 0.0 : beta * (double)*cij_));       \
      }                                                                                            \
  } while (0)

void od_gemm(int dtype, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const void *A,
             int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  bool blas = dtype == OD_DTYPE_FLOAT || dtype == OD_DTYPE_DOUBLE;
  if (blas && K <= 0) { /* BLAS wants lda >= 1 even when nothing is read: C = beta * C by hand */
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        if (dtype == OD_DTYPE_FLOAT) {
          float *c = (float *)C + i * ldc + j;
          *c = beta == 0.0 ? 0.0f : (float)(beta * *c);
        } else {
          double *c = (double *)C + i * ldc + j;
          *c = beta == 0.0 ? 0.0 : beta * *c;
        }
      }
    return;
  }
  enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  switch (dtype) {
    case OD_DTYPE_FLOAT:
      cblas_sgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)K, (float)alpha, A, (blasint)lda, B,
                  (blasint)ldb, (float)beta, C, (blasint)ldc);
      break;
    case OD_DTYPE_DOUBLE:
      cblas_dgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B,
                  (blasint)ldb, beta, C, (blasint)ldc);
      break;
    case OD_DTYPE_INT32: OD_GEMM_INT(int32_t); break;
    case OD_DTYPE_INT64: OD_GEMM_INT(int64_t); break;
    case OD_DTYPE_UINT32: OD_GEMM_INT(uint32_t); break;
    case OD_DTYPE_UINT64: OD_GEMM_INT(uint64_t); break;
    default: break; /* callers check dtypes in infer */
  }
}
