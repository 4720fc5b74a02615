/* ops/conv_transpose.c: ONNX ConvTranspose (opsets 1, 11, 22: the same semantics; 11 reworded the
 * output_shape / pads rules, 22 added bfloat16). dtypes: float, double.
 * Spec: https://onnx.ai/onnx/operators/onnx__ConvTranspose.html
 *
 *   X (N, C, D1..Dn), W (C, M/group, k1..kn), optional B (M)  ->  Y (N, M, O1..On)
 *
 * ConvTranspose is the adjoint of Conv with the same attributes: every input element scatters
 * W[c, m, tap] * X[n, c, i] into Y[n, m, i * stride - pad + tap * dilation]. The output size is
 *   O = stride * (D - 1) + output_padding + (k - 1) * dilation + 1 - pad_begin - pad_end
 * unless output_shape fixes it (then pads follow from it; see od_conv_geom_transpose for the
 * auto_pad and output_shape rules, which follow the spec's text and the ONNX reference).
 *
 * Algorithm: per image and group, col = W_g^T (M/g*K x C/g) times X_g (C/g x tile of input
 * positions) by one GEMM, then col2im adds the column matrix into Y (pre-filled with B). A 1x1
 * stride-1 unpadded kernel is a single GEMM straight into Y.
 *
 * Backward (float, double): im2col of dY, then GEMMs for dX and dW (see above the backward). */
#include <stdlib.h>
#include <string.h>

#include "ops/im2col.h"
#include "ops/op.h"

static enum od_status conv_transpose_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  return od_conv_attrs_parse(node, true, attrs, err);
}

static bool present(const struct od_tensor *t) { return t && t->dtype != OD_DTYPE_UNDEFINED; }

static enum od_status conv_transpose_check(const struct od_conv_attrs *a, const struct od_tensor *x,
                                           const struct od_tensor *w, const struct od_tensor *b,
                                           struct od_conv_geom *g, struct od_err *err) {
  char s1[128], s2[128];
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "X has dtype %s; ConvTranspose supports float and double",
                      od_dtype_name(x->dtype));
  if (w->dtype != x->dtype || (present(b) && b->dtype != x->dtype))
    return od_err_set(err, OD_ERR_SHAPE, "X is %s but W is %s%s%s", od_dtype_name(x->dtype), od_dtype_name(w->dtype),
                      present(b) ? " and B is " : "", present(b) ? od_dtype_name(b->dtype) : "");
  if (x->rank < 3 || w->rank != x->rank)
    return od_err_set(err, OD_ERR_SHAPE, "X %s and W %s: expected (N, C, D1..Dn) and (C, M/group, k1..kn)",
                      od_shape_str(x->rank, x->dims, s1, sizeof s1), od_shape_str(w->rank, w->dims, s2, sizeof s2));
  int64_t C = x->dims[1];
  if (w->dims[0] != C || C % a->group)
    return od_err_set(err, OD_ERR_SHAPE, "X %s, W %s and group %lld do not fit: need W dim 0 = C, C %% group == 0",
                      od_shape_str(x->rank, x->dims, s1, sizeof s1), od_shape_str(w->rank, w->dims, s2, sizeof s2),
                      (long long)a->group);
  int64_t M = w->dims[1] * a->group;
  if (present(b) && (b->rank != 1 || b->dims[0] != M))
    return od_err_set(err, OD_ERR_SHAPE, "B has shape %s; expected [%lld] (W's dim 1 times group)",
                      od_shape_str(b->rank, b->dims, s1, sizeof s1), (long long)M);
  return od_conv_geom_transpose(a, x->rank, x->dims, w->dims, g, err);
}

static enum od_status conv_transpose_infer(struct od_infer_ctx *ctx) {
  if (ctx->n_in < 2) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "ConvTranspose needs inputs X and W");
  const struct od_conv_attrs *a = ctx->attrs;
  struct od_conv_geom g;
  OD_TRY(conv_transpose_check(a, &ctx->in[0], &ctx->in[1], ctx->n_in > 2 ? &ctx->in[2] : NULL, &g, ctx->err));
  struct od_tensor *y = &ctx->out[0];
  y->dtype = ctx->in[0].dtype;
  y->rank = ctx->in[0].rank;
  y->dims[0] = ctx->in[0].dims[0];
  y->dims[1] = ctx->in[1].dims[1] * a->group;
  for (int d = 0; d < g.nd; d++) y->dims[2 + d] = g.in[d]; /* g.in: the image col2im writes */
  return OD_OK;
}

static enum od_status conv_transpose_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *x = ctx->in[0], *w = ctx->in[1];
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  struct od_tensor *y = ctx->out[0];
  const struct od_conv_attrs *a = ctx->attrs;
  struct od_conv_geom g;
  OD_TRY(conv_transpose_check(a, x, w, b, &g, ctx->err));
  int dtype = x->dtype;
  size_t es = od_dtype_size(dtype);
  int64_t N = x->dims[0], C = x->dims[1], G = a->group, Cg = C / G, Mg = w->dims[1], M = Mg * G;
  int64_t S = g.out_size;   /* input positions per channel */
  int64_t Y = g.in_size;    /* output positions per channel */

  /* Y starts as the bias (or zero): the GEMM / col2im below accumulate. */
  for (int64_t n = 0; n < N; n++)
    for (int64_t m = 0; m < M; m++) {
      int64_t o = (n * M + m) * Y;
      if (dtype == OD_DTYPE_FLOAT) {
        float v = b ? ((const float *)b->data)[m] : 0.0f, *d = (float *)y->data + o;
        for (int64_t i = 0; i < Y; i++) d[i] = v;
      } else {
        double v = b ? ((const double *)b->data)[m] : 0.0, *d = (double *)y->data + o;
        for (int64_t i = 0; i < Y; i++) d[i] = v;
      }
    }
  if (N == 0 || M == 0 || S == 0 || Cg == 0) return OD_OK;

  int64_t rows = Mg * g.k_size;
  bool pointwise = od_conv_geom_is_pointwise(&g);
  int64_t tile = pointwise ? S : od_conv_col_tile(rows, S, es);
  void *col = NULL;
  if (!pointwise && !(col = malloc((size_t)(rows * tile) * es)))
    return od_err_set(ctx->err, OD_ERR_OOM, "ConvTranspose: out of memory for a %lld x %lld column buffer",
                      (long long)rows, (long long)tile);
  const char *xd = x->data, *wd = w->data;
  char *yd = y->data;
  for (int64_t n = 0; n < N; n++)
    for (int64_t grp = 0; grp < G; grp++) {
      const char *xg = xd + (size_t)((n * C + grp * Cg) * S) * es;   /* (Cg, S) */
      const char *wg = wd + (size_t)(grp * Cg * rows) * es;          /* (Cg, Mg * K) */
      char *yg = yd + (size_t)((n * M + grp * Mg) * Y) * es;          /* (Mg, Y) */
      if (pointwise) {
        od_gemm(dtype, true, false, Mg, S, Cg, 1.0, wg, Mg, xg, S, 1.0, yg, S);
        continue;
      }
      for (int64_t p0 = 0; p0 < S; p0 += tile) {
        int64_t p1 = p0 + tile < S ? p0 + tile : S;
        od_gemm(dtype, true, false, rows, p1 - p0, Cg, 1.0, wg, rows, xg + (size_t)p0 * es, S, 0.0, col, p1 - p0);
        /* serial, like Conv's im2col: OpenBLAS's spinning threads already occupy the cores */
        if (dtype == OD_DTYPE_FLOAT) od_col2im_f32(NULL, col, Mg, &g, p0, p1, (float *)yg);
        else od_col2im_f64(NULL, col, Mg, &g, p0, p1, (double *)yg);
      }
    }
  free(col);
  return OD_OK;
}

/* Backward. The forward is Y_g = col2im(W_g^T X_g) + B per image and group; im2col is the adjoint
 * of col2im (same geometry), so with dcol = im2col(dY_g) (Mg*K x P):
 *   term 1: dB[m] += sum over images and output positions of dY[n, m, :]
 *   term 2: dX_g  += W_g * dcol            (Cg x Mg*K) (Mg*K x P)
 *   term 3: dW_g  += X_g * dcol^T          (Cg x P) (P x Mg*K)
 * both one GEMM per column tile, accumulating (beta = 1). A pointwise kernel has dcol = dY_g. */
static enum od_status conv_transpose_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *x = ctx->in[0], *w = ctx->in[1], *dy = ctx->dout[0];
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  struct od_tensor *dx = ctx->din[0], *dw = ctx->din[1], *db = b ? ctx->din[2] : NULL;
  const struct od_conv_attrs *a = ctx->attrs;
  struct od_conv_geom g;
  if (!dy) return OD_OK;
  OD_TRY(conv_transpose_check(a, x, w, b, &g, ctx->err));
  int dtype = x->dtype;
  size_t es = od_dtype_size(dtype);
  int64_t N = x->dims[0], C = x->dims[1], G = a->group, Cg = C / G, Mg = w->dims[1], M = Mg * G;
  int64_t S = g.out_size, Y = g.in_size;
  if (db) /* term 1, sums in double */
    for (int64_t m = 0; m < M; m++) {
      double s = 0;
      for (int64_t n = 0; n < N; n++) {
        size_t o = (size_t)((n * M + m) * Y);
        if (dtype == OD_DTYPE_FLOAT)
          for (int64_t i = 0; i < Y; i++) s += ((const float *)dy->data)[o + i];
        else
          for (int64_t i = 0; i < Y; i++) s += ((const double *)dy->data)[o + i];
      }
      if (dtype == OD_DTYPE_FLOAT) ((float *)db->data)[m] += (float)s;
      else ((double *)db->data)[m] += s;
    }
  if ((!dx && !dw) || N == 0 || M == 0 || S == 0 || Cg == 0) return OD_OK;

  int64_t rows = Mg * g.k_size;
  bool pointwise = od_conv_geom_is_pointwise(&g);
  int64_t tile = pointwise ? S : od_conv_col_tile(rows, S, es);
  void *dcol = NULL;
  if (!pointwise && !(dcol = malloc((size_t)(rows * tile) * es)))
    return od_err_set(ctx->err, OD_ERR_OOM, "ConvTranspose backward: out of memory for a %lld x %lld column buffer",
                      (long long)rows, (long long)tile);
  const char *xd = x->data, *wd = w->data, *dyd = dy->data;
  char *dxd = dx ? dx->data : NULL, *dwd = dw ? dw->data : NULL;
  for (int64_t n = 0; n < N; n++)
    for (int64_t grp = 0; grp < G; grp++) {
      size_t xo = (size_t)((n * C + grp * Cg) * S) * es;              /* (Cg, S) */
      size_t wo = (size_t)(grp * Cg * rows) * es;                     /* (Cg, Mg * K) */
      const char *dyg = dyd + (size_t)((n * M + grp * Mg) * Y) * es;  /* (Mg, Y) */
      if (pointwise) {
        if (dx) od_gemm(dtype, false, false, Cg, S, Mg, 1.0, wd + wo, Mg, dyg, S, 1.0, dxd + xo, S);
        if (dw) od_gemm(dtype, false, true, Cg, Mg, S, 1.0, xd + xo, S, dyg, S, 1.0, dwd + wo, Mg);
        continue;
      }
      for (int64_t p0 = 0; p0 < S; p0 += tile) {
        int64_t p1 = p0 + tile < S ? p0 + tile : S, np = p1 - p0;
        if (dtype == OD_DTYPE_FLOAT) od_im2col_f32(NULL, (const float *)dyg, Mg, &g, p0, p1, dcol);
        else od_im2col_f64(NULL, (const double *)dyg, Mg, &g, p0, p1, dcol);
        if (dx) od_gemm(dtype, false, false, Cg, np, rows, 1.0, wd + wo, rows, dcol, np, 1.0,
                        dxd + xo + (size_t)p0 * es, S);
        if (dw) od_gemm(dtype, false, true, Cg, rows, np, 1.0, xd + xo + (size_t)p0 * es, S, dcol, np, 1.0,
                        dwd + wo, rows);
      }
    }
  free(dcol);
  return OD_OK;
}

const struct od_op_kernels od_kernels_conv_transpose = {
    .attrs_size = sizeof(struct od_conv_attrs),
    .parse = conv_transpose_parse,
    .infer = conv_transpose_infer,
    .forward = {[OD_DEVICE_CPU] = conv_transpose_forward_cpu},
    .backward = {[OD_DEVICE_CPU] = conv_transpose_backward_cpu},
    .dtypes = "float, double",
};
