/* ops/resize.c: ONNX Resize (opsets 10, 11, 13, 18, 19) and Upsample (opsets 7, 9).
 * Spec: https://onnx.ai/onnx/operators/onnx__Resize.html, .../onnx__Upsample.html
 *
 * dtypes: mode "nearest" copies elements, so it takes every dtype of 1, 2, 4 or 8 bytes (float,
 * double, float16, bfloat16, int8..int64, uint8..uint64, bool); "linear" and "cubic" take float
 * (computed in float) and double (computed in double).
 *
 * Versions and what changed:
 *   Upsample-7   X; scales is an attribute. Asymmetric coordinates, "legacy" nearest (below).
 *   Upsample-9   scales became input 1. (Upsample-10 is deprecated in favour of Resize.)
 *   Resize-10    X, scales; mode nearest|linear; same legacy semantics as Upsample.
 *   Resize-11    X, roi, scales, sizes; coordinate_transformation_mode (with tf_half_pixel_for_nn,
 *                dropped in 13), nearest_mode, cubic mode, cubic_coeff_a, exclude_outside,
 *                extrapolation_value. An empty tensor (or "") stands for an absent roi/scales/sizes.
 *   Resize-13    roi and scales optional; tf_half_pixel_for_nn removed.
 *   Resize-18    axes, antialias, keep_aspect_ratio_policy.
 *   Resize-19    coordinate_transformation_mode half_pixel_symmetric.
 * "Legacy" (opsets < 11, as onnxruntime does it): x_original = x_resized / scale, and the nearest
 * pixel is floor(x_original) when the axis is upsampled, ceil(x_original) when downsampled.
 *
 * Output shape: sizes when given (adjusted by keep_aspect_ratio_policy), else
 * floor(input_dim * scale) with the product in float32 as onnxruntime computes it (roi does not
 * enter, as in onnxruntime and the ONNX reference implementation).
 *
 * Interpolation is separable: for each resized axis a table gives, per output position, the first
 * input index and n weights (n = 1 nearest, 2 linear, 4 cubic, more with antialias when
 * downsampling), with indices clamped to the edge ("edge padding" in the reference). Coordinates
 * are computed in double like the ONNX reference implementation (onnx/reference/ops/op_resize.py),
 * whose outputs the node tests hold; in particular align_corners and tf_crop_and_resize divide by
 * the fractional output length scale * input_length when scales are given.
 * Axes whose scale is 1 with an unchanged length are left alone (identity), as the reference does.
 *
 * Kernels: nearest is a row gather over any element size (a repeated source row is one memcpy;
 * an integer-factor repeat along the last axis is a plain loop: YOLOv3's x2 upsample);
 * linear/cubic on the last two axes (NCHW images) is one direct 2-D pass (bilinear unrolled);
 * other axis sets go through one 1-D pass per resized axis. Backward (float, double; every mode,
 * coordinate transform, nearest rule, antialias) runs the transposed 1-D passes over the same
 * tables (see resize_backward_cpu). */
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "ops/resize.h"
#include "runtime/pool.h"

/* ---- parse ------------------------------------------------------------------------------------ */

static enum od_status parse_enum(const struct od_node *n, const char *name, const char *def,
                                 const char *const *names, int count, int *out, struct od_err *err) {
  const char *s;
  OD_TRY(od_attr_get_string(n, name, def, &s, err));
  for (int i = 0; i < count; i++)
    if (!strcmp(s, names[i])) {
      *out = i;
      return OD_OK;
    }
  return od_err_set(err, OD_ERR_UNSUPPORTED, "attribute '%s' = '%s' is not supported", name, s);
}

static enum od_status resize_parse(const struct od_node *n, void *vattrs, struct od_err *err) {
  struct resize_attrs *a = vattrs;
  bool upsample = !strcmp(n->op_type, "Upsample");
  bool legacy = upsample || n->opset < 11;
  static const char *const modes[] = {"nearest", "linear", "cubic"};
  int v = 0;
  OD_TRY(parse_enum(n, "mode", "nearest", modes, legacy ? 2 : 3, &v, err));
  a->mode = (enum resize_mode)v;
  a->in_roi = a->in_sizes = -1;
  a->in_scales = 1;
  a->cubic_a = -0.75;
  if (legacy) {
    a->ctm = CTM_ASYMMETRIC;
    a->nearest = NEAREST_LEGACY;
    if (upsample && n->opset < 9) {
      size_t cnt;
      bool present;
      OD_TRY(od_attr_get_floats(n, "scales", a->attr_scales, OD_MAX_DIMS, &cnt, &present, err));
      if (!present) return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'scales' is required");
      a->n_attr_scales = (int)cnt;
      a->in_scales = -1;
    }
    if (n->n_inputs < 1 || (a->in_scales >= 0 && (n->n_inputs < 2 || n->inputs[1] < 0)))
      return od_err_set(err, OD_ERR_INVALID_MODEL, "%s expects the inputs X and scales", n->op_type);
    return OD_OK;
  }
  a->in_roi = 1;
  a->in_scales = 2;
  a->in_sizes = 3;
  static const char *const ctms[] = {"half_pixel",         "half_pixel_symmetric", "pytorch_half_pixel",
                                     "align_corners",      "asymmetric",           "tf_half_pixel_for_nn",
                                     "tf_crop_and_resize"};
  OD_TRY(parse_enum(n, "coordinate_transformation_mode", "half_pixel", ctms, 7, &v, err));
  /* accepted at every opset from 11 on, as onnxruntime does (tf_half_pixel_for_nn left the spec
   * at 13, half_pixel_symmetric entered at 19) */
  a->ctm = (enum resize_ctm)v;
  static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  OD_TRY(parse_enum(n, "nearest_mode", "round_prefer_floor", nms, 4, &v, err));
  a->nearest = (enum resize_nearest)v;
  float f;
  OD_TRY(od_attr_get_float(n, "cubic_coeff_a", -0.75f, &f, err));
  a->cubic_a = f;
  int64_t i;
  OD_TRY(od_attr_get_int(n, "exclude_outside", 0, &i, err));
  a->exclude_outside = i != 0;
  OD_TRY(od_attr_get_float(n, "extrapolation_value", 0.0f, &a->extrapolation_value, err));
  if (n->opset >= 18) {
    OD_TRY(od_attr_get_int(n, "antialias", 0, &i, err));
    a->antialias = i != 0;
    static const char *const keeps[] = {"stretch", "not_larger", "not_smaller"};
    OD_TRY(parse_enum(n, "keep_aspect_ratio_policy", "stretch", keeps, 3, &v, err));
    a->keep = (enum resize_keep)v;
    size_t cnt;
    OD_TRY(od_attr_get_ints(n, "axes", a->axes, OD_MAX_DIMS, &cnt, NULL, err));
    a->n_axes = (int)cnt;
  }
  if (n->n_inputs < 1 || n->inputs[0] < 0)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "Resize expects the input X");
  return OD_OK;
}

/* ---- the plan: output shape and per-axis geometry --------------------------------------------- */

/* An optional input: NULL when omitted or empty (an empty tensor means absent in Resize). */
static const struct od_tensor *opt_input(const struct od_tensor *t) {
  if (!t || t->dtype == OD_DTYPE_UNDEFINED || od_tensor_numel(t) == 0) return NULL;
  return t;
}

/* Fills p from X's shape and the scales/sizes/roi inputs (NULL = absent). Sets *needs_values and
 * returns OK when scales or sizes are present but their values are not known yet. With
 * need_roi, roi values must be known (forward); infer only needs the shape. */
enum od_status od_resize_make_plan(const struct resize_attrs *a, const struct od_tensor *X, const struct od_tensor *roi,
                                   const struct od_tensor *scales, const struct od_tensor *sizes, bool need_roi,
                                   struct resize_plan *p, bool *needs_values, struct od_err *err) {
  int r = X->rank;
  char sb[128];
  p->rank = r;
  *needs_values = false;
  /* which axes scales/sizes/roi refer to */
  int axes[OD_MAX_DIMS], n_axes = a->n_axes ? a->n_axes : r;
  bool used[OD_MAX_DIMS] = {false};
  for (int i = 0; i < n_axes; i++) {
    if (a->n_axes) OD_TRY(od_axis_normalize(a->axes[i], r, "axes", &axes[i], err));
    else axes[i] = i;
    if (used[axes[i]]) return od_err_set(err, OD_ERR_INVALID_MODEL, "axes repeats axis %d", axes[i]);
    used[axes[i]] = true;
  }
  for (int d = 0; d < r; d++) {
    struct resize_axis *ax = &p->ax[d];
    ax->in = ax->out = X->dims[d];
    ax->scale = 1.0;
    ax->width = (double)X->dims[d];
    ax->roi_start = 0.0;
    ax->roi_end = 1.0;
    ax->resized = false;
  }
  if (scales && sizes)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "only one of the inputs scales and sizes may be given");
  if (a->n_attr_scales) {
    if (a->n_attr_scales != r)
      return od_err_set(err, OD_ERR_SHAPE, "attribute 'scales' has %d values for the %d-D input %s",
                        a->n_attr_scales, r, od_shape_str(r, X->dims, sb, sizeof sb));
    for (int d = 0; d < r; d++) {
      p->ax[d].scale = a->attr_scales[d];
      if (!(p->ax[d].scale > 0))
        return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'scales' holds %g (must be > 0)", p->ax[d].scale);
    }
  } else if (scales) {
    if (scales->rank != 1 || scales->dims[0] != n_axes)
      return od_err_set(err, OD_ERR_SHAPE, "scales has shape %s; expected [%d] for the input %s",
                        od_shape_str(scales->rank, scales->dims, sb, sizeof sb), n_axes,
                        od_shape_str(r, X->dims, sb + 64, sizeof sb - 64));
    if (!od_dtype_is_float(scales->dtype))
      return od_err_set(err, OD_ERR_SHAPE, "scales must be float, not %s", od_dtype_name(scales->dtype));
    if (!scales->data) {
      *needs_values = true;
      return OD_OK;
    }
    for (int i = 0; i < n_axes; i++) {
      double s = od_tensor_get_f64(scales, i);
      if (!(s > 0)) return od_err_set(err, OD_ERR_INVALID_MODEL, "scales[%d] = %g (must be > 0)", i, s);
      p->ax[axes[i]].scale = s;
    }
  } else if (sizes) {
    if (sizes->rank != 1 || sizes->dims[0] != n_axes)
      return od_err_set(err, OD_ERR_SHAPE, "sizes has shape %s; expected [%d] for the input %s",
                        od_shape_str(sizes->rank, sizes->dims, sb, sizeof sb), n_axes,
                        od_shape_str(r, X->dims, sb + 64, sizeof sb - 64));
    if (sizes->dtype != OD_DTYPE_INT64)
      return od_err_set(err, OD_ERR_SHAPE, "sizes must be int64, not %s", od_dtype_name(sizes->dtype));
    if (!sizes->data) {
      *needs_values = true;
      return OD_OK;
    }
    double keep_scale = a->keep == KEEP_NOT_LARGER ? INFINITY : 0.0;
    for (int i = 0; i < n_axes; i++) {
      struct resize_axis *ax = &p->ax[axes[i]];
      int64_t s = od_tensor_get_i64(sizes, i);
      if (s < 0) return od_err_set(err, OD_ERR_INVALID_MODEL, "sizes[%d] = %lld (must be >= 0)", i, (long long)s);
      if (ax->in == 0) return od_err_set(err, OD_ERR_SHAPE, "sizes cannot resize an empty axis %d", axes[i]);
      ax->out = s;
      ax->width = (double)s;
      ax->scale = (double)s / (double)ax->in;
      if (a->keep == KEEP_NOT_LARGER) keep_scale = fmin(keep_scale, ax->scale);
      if (a->keep == KEEP_NOT_SMALLER) keep_scale = fmax(keep_scale, ax->scale);
    }
    if (a->keep != KEEP_STRETCH)
      for (int i = 0; i < n_axes; i++) {
        struct resize_axis *ax = &p->ax[axes[i]];
        ax->scale = keep_scale;
        ax->width = keep_scale * (double)ax->in;
        ax->out = (int64_t)(ax->width + 0.5); /* round half up */
      }
  } else {
    return od_err_set(err, OD_ERR_INVALID_MODEL, "one of the inputs scales and sizes must be given");
  }
  if (!sizes)
    for (int d = 0; d < r; d++) {
      struct resize_axis *ax = &p->ax[d];
      ax->width = ax->scale * (double)ax->in;
      /* the product in float32, as onnxruntime computes it: 2.3f * 10 gives 23 (in double,
       * 22.9999995 would floor to 22, as the ONNX reference and shape inference do) */
      ax->out = (int64_t)floorf((float)ax->scale * (float)ax->in);
    }
  if (roi && a->ctm == CTM_TF_CROP_AND_RESIZE && need_roi) {
    int want = 2 * n_axes;
    if (od_tensor_numel(roi) != want)
      return od_err_set(err, OD_ERR_SHAPE, "roi has %lld values; expected %d", (long long)od_tensor_numel(roi), want);
    if (!roi->data) {
      *needs_values = true;
      return OD_OK;
    }
    for (int i = 0; i < n_axes; i++) {
      p->ax[axes[i]].roi_start = od_tensor_get_f64(roi, i);
      p->ax[axes[i]].roi_end = od_tensor_get_f64(roi, n_axes + i);
    }
  }
  for (int d = 0; d < r; d++) {
    struct resize_axis *ax = &p->ax[d];
    bool trivial_roi = a->ctm != CTM_TF_CROP_AND_RESIZE ||
                       (fabs(ax->roi_start) <= 1e-9 && fabs(ax->roi_end - 1.0) <= 1e-9);
    ax->resized = !(fabs(ax->scale - 1.0) <= 1e-9 && ax->out == ax->in && trivial_roi);
    if (ax->resized && ax->in == 0 && ax->out > 0)
      return od_err_set(err, OD_ERR_SHAPE, "cannot resize the empty axis %d of %s to %lld", d,
                        od_shape_str(r, X->dims, sb, sizeof sb), (long long)ax->out);
  }
  return OD_OK;
}

/* The input tensors of the kernel context as plan arguments. */
static const struct od_tensor *ctx_opt(struct od_kernel_ctx *ctx, int i) {
  return i >= 0 && i < ctx->n_in ? opt_input(ctx->in[i]) : NULL;
}

static const struct od_tensor *infer_opt(struct od_infer_ctx *ctx, int i) {
  return i >= 0 && i < ctx->n_in ? opt_input(&ctx->in[i]) : NULL;
}

static enum od_status resize_check_dtype(const struct resize_attrs *a, int dtype, struct od_err *err) {
  if (a->mode == RESIZE_NEAREST) {
    size_t es = od_dtype_size(dtype);
    if (od_dtype_is_supported(dtype) && (es == 1 || es == 2 || es == 4 || es == 8)) return OD_OK;
  } else if (dtype == OD_DTYPE_FLOAT || dtype == OD_DTYPE_DOUBLE) {
    return OD_OK;
  }
  return od_err_set(err, OD_ERR_UNSUPPORTED, "mode '%s' does not support X of type %s",
                    a->mode == RESIZE_NEAREST ? "nearest" : a->mode == RESIZE_LINEAR ? "linear" : "cubic",
                    od_dtype_name(dtype));
}

static enum od_status resize_infer(struct od_infer_ctx *ctx) {
  const struct resize_attrs *a = ctx->attrs;
  const struct od_tensor *X = &ctx->in[0];
  OD_TRY(resize_check_dtype(a, X->dtype, ctx->err));
  struct resize_plan p;
  bool nv;
  OD_TRY(od_resize_make_plan(a, X, infer_opt(ctx, a->in_roi), infer_opt(ctx, a->in_scales), infer_opt(ctx, a->in_sizes),
                          false, &p, &nv, ctx->err));
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = X->rank;
  for (int d = 0; d < X->rank; d++) Y->dims[d] = nv ? OD_DIM_UNKNOWN : p.ax[d].out;
  if (nv) ctx->needs_values = true;
  return OD_OK;
}

/* ---- coordinate transform and tables ----------------------------------------------------------- */

/* x_original for output position o of one axis; *ex set when tf_crop_and_resize falls outside. */
static double resize_coord(const struct resize_attrs *a, const struct resize_axis *ax, int64_t o, bool *ex) {
  double in = (double)ax->in, s = ax->scale, w = ax->width, x = (double)o;
  *ex = false;
  switch (a->ctm) {
    case CTM_HALF_PIXEL: return (x + 0.5) / s - 0.5;
    case CTM_HALF_PIXEL_SYMMETRIC: {
      double adjustment = (double)ax->out / w, center = in / 2;
      return center * (1 - adjustment) + (x + 0.5) / s - 0.5;
    }
    case CTM_PYTORCH_HALF_PIXEL: return ax->out > 1 ? (x + 0.5) / s - 0.5 : 0.0;
    case CTM_ALIGN_CORNERS: return w == 1 ? 0.0 : x * (in - 1) / (w - 1);
    case CTM_ASYMMETRIC: return x / s;
    case CTM_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / s;
    case CTM_TF_CROP_AND_RESIZE: {
      double span = ax->roi_end - ax->roi_start;
      double xo = w == 1 ? span * (in - 1) / 2 : x * span * (in - 1) / (w - 1);
      xo += ax->roi_start * (in - 1);
      *ex = xo < 0 || xo > in - 1;
      return xo;
    }
  }
  return x;
}

static double cubic_kernel(double d, double A) {
  d = fabs(d);
  if (d <= 1) return ((A + 2) * d - (A + 3)) * d * d + 1;
  if (d < 2) return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
  return 0.0;
}

static int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

void od_resize_table_free(struct resize_table *t) {
  free(t->idx);
  free(t->wf);
  free(t->wd);
  free(t->ex);
  memset(t, 0, sizeof *t);
}

/* Builds the table of one axis. Identity axes get n = 1, idx = o, w = 1. */
enum od_status od_resize_table_build(const struct resize_attrs *a, const struct resize_axis *ax, struct resize_table *t,
                                     struct od_err *err) {
  memset(t, 0, sizeof *t);
  int64_t out = ax->out, in = ax->in;
  /* taps: for antialias the filter is stretched by 1/scale when downsampling */
  double aa = a->antialias ? fmin(ax->scale, 1.0) : 1.0;
  int n = 1;
  int64_t k0 = 0; /* first tap's offset from floor(x) (with the ratio in (0, 1]) */
  if (ax->resized && a->mode == RESIZE_LINEAR) {
    k0 = a->antialias ? (int64_t)floor(-1.0 / aa) + 1 : 0;
    n = (int)(2 - 2 * k0);
  } else if (ax->resized && a->mode == RESIZE_CUBIC) {
    k0 = a->antialias ? (int64_t)floor(-2.0 / aa) + 1 : -1;
    n = (int)(2 - 2 * k0);
  }
  size_t cnt = (size_t)(out > 0 ? out : 1) * (size_t)n;
  t->n = n;
  t->idx = malloc(cnt * sizeof *t->idx);
  t->wf = malloc(cnt * sizeof *t->wf);
  t->wd = malloc(cnt * sizeof *t->wd);
  if (!t->idx || !t->wf || !t->wd) {
    od_resize_table_free(t);
    return od_err_set(err, OD_ERR_OOM, "out of memory for a resize table of %zu entries", cnt);
  }
  for (int64_t o = 0; o < out; o++) {
    int64_t *idx = t->idx + o * n;
    double *w = t->wd + o * n;
    if (!ax->resized) {
      idx[0] = o;
      w[0] = 1.0;
      continue;
    }
    bool ex;
    double x = resize_coord(a, ax, o, &ex);
    if (ex) {
      if (!t->ex && !(t->ex = calloc((size_t)out, 1))) {
        od_resize_table_free(t);
        return od_err_set(err, OD_ERR_OOM, "out of memory for a resize table");
      }
      t->ex[o] = 1;
    }
    double f = floor(x);
    if (a->mode == RESIZE_NEAREST) {
      double r = x - f, pick = f;
      if (r != 0) {
        switch (a->nearest) {
          case NEAREST_ROUND_PREFER_FLOOR: pick = r <= 0.5 ? f : f + 1; break;
          case NEAREST_ROUND_PREFER_CEIL: pick = r < 0.5 ? f : f + 1; break;
          case NEAREST_FLOOR: pick = f; break;
          case NEAREST_CEIL: pick = f + 1; break;
          case NEAREST_LEGACY: pick = ax->scale < 1 ? f + 1 : f; break;
        }
      }
      idx[0] = clamp_i64(ex ? 0 : (int64_t)pick, 0, in - 1);
      w[0] = 1.0;
      continue;
    }
    /* ratio in (0, 1]: an integer x is taken as floor(x) - 1 plus ratio 1, as the reference does */
    double r = x - f;
    if (r == 0) {
      f -= 1;
      r = 1;
    }
    int64_t base = ex ? 0 : (int64_t)f;
    double sum = 0;
    for (int k = 0; k < n; k++) {
      double d = (double)(k0 + k) - r; /* signed distance of the tap from x */
      double wk;
      if (a->mode == RESIZE_LINEAR) wk = a->antialias ? fmax(0.0, 1.0 - fabs(d * aa)) : (k == 0 ? 1 - r : r);
      else wk = cubic_kernel(a->antialias ? d * aa : d, a->cubic_a);
      int64_t ii = base + k0 + k;
      if (a->exclude_outside && (ii < 0 || ii >= in)) wk = 0;
      w[k] = wk;
      sum += wk;
      idx[k] = clamp_i64(ii, 0, in - 1);
    }
    if ((a->antialias || a->exclude_outside) && sum != 0)
      for (int k = 0; k < n; k++) w[k] /= sum;
  }
  for (size_t i = 0; i < (size_t)out * (size_t)n; i++) t->wf[i] = (float)t->wd[i];
  return OD_OK;
}

/* ---- nearest: row gather over any element size ------------------------------------------------ */

struct nearest_job {
  const uint8_t *src;
  uint8_t *dst;
  size_t es;                         /* element size */
  int rank;
  const int64_t *out_dims;
  int64_t in_strides[OD_MAX_DIMS];   /* elements */
  const struct resize_table *tab;    /* per axis (identity tables where not resized) */
  int64_t rows, row_len;             /* output rows (all axes but the last) and their length */
  int64_t repeat;                    /* > 0: last axis is an integer-factor repeat */
  uint8_t ev[8];                     /* extrapolation value in X's dtype */
};

#define NEAREST_GATHER(T)                                                       \
  do {                                                                          \
    const T *s_ = (const T *)srow;                                              \
    T *d_ = (T *)drow;                                                          \
    if (j->repeat == 1)                                                         \
      memcpy(d_, s_, rowb);                                                     \
    else if (j->repeat == 2)                                                    \
      for (int64_t i_ = 0; i_ < j->row_len / 2; i_++) d_[2 * i_] = d_[2 * i_ + 1] = s_[i_]; \
    else if (j->repeat > 0)                                                     \
      for (int64_t i_ = 0; i_ < j->row_len; i_++) d_[i_] = s_[i_ / j->repeat];  \
    else                                                                        \
      for (int64_t i_ = 0; i_ < j->row_len; i_++) d_[i_] = s_[lidx[i_]];        \
  } while (0)

static void nearest_rows(void *vj, int64_t begin, int64_t end) {
  const struct nearest_job *j = vj;
  int r = j->rank, last = r - 1;
  size_t rowb = (size_t)j->row_len * j->es;
  int64_t mi[OD_MAX_DIMS];
  /* multi-index of row `begin` over axes 0..r-2 */
  int64_t rem = begin;
  for (int d = last - 1; d >= 0; d--) {
    mi[d] = rem % j->out_dims[d];
    rem /= j->out_dims[d];
  }
  const struct resize_table *lt = &j->tab[last];
  const int64_t *lidx = lt->idx;
  int64_t prev_off = -1;
  uint8_t *prev_row = NULL;
  for (int64_t row = begin; row < end; row++) {
    uint8_t *drow = j->dst + (size_t)row * rowb;
    int64_t off = 0;
    bool ex = false;
    for (int d = 0; d < last; d++) {
      off += j->tab[d].idx[mi[d]] * j->in_strides[d];
      if (j->tab[d].ex && j->tab[d].ex[mi[d]]) ex = true;
    }
    if (ex) {
      for (int64_t i = 0; i < j->row_len; i++) memcpy(drow + (size_t)i * j->es, j->ev, j->es);
      prev_row = NULL;
    } else if (prev_row && off == prev_off) {
      memcpy(drow, prev_row, rowb); /* same source row (upsampled outer axis) */
    } else {
      const uint8_t *srow = j->src + (size_t)off * j->es;
      switch (j->es) {
        case 1: NEAREST_GATHER(uint8_t); break;
        case 2: NEAREST_GATHER(uint16_t); break;
        case 4: NEAREST_GATHER(uint32_t); break;
        default: NEAREST_GATHER(uint64_t); break;
      }
      if (lt->ex)
        for (int64_t i = 0; i < j->row_len; i++)
          if (lt->ex[i]) memcpy(drow + (size_t)i * j->es, j->ev, j->es);
      prev_row = drow;
      prev_off = off;
    }
    for (int d = last - 1; d >= 0; d--) { /* next multi-index */
      if (++mi[d] < j->out_dims[d]) break;
      mi[d] = 0;
    }
  }
}

static void resize_nearest(const struct od_tensor *X, struct od_tensor *Y, const struct resize_table *tab,
                           double ev, struct od_pool *pool) {
  struct nearest_job j;
  memset(&j, 0, sizeof j);
  j.src = X->data;
  j.dst = Y->data;
  j.es = od_dtype_size(X->dtype);
  j.rank = X->rank;
  j.out_dims = Y->dims;
  od_strides(X->rank, X->dims, j.in_strides);
  j.tab = tab;
  j.row_len = Y->dims[X->rank - 1];
  j.rows = od_tensor_numel(Y) / (j.row_len ? j.row_len : 1);
  struct od_tensor evt = {.dtype = X->dtype, .rank = 0, .data = j.ev};
  od_tensor_set_f64(&evt, 0, ev);
  /* integer-factor repeat along the last axis: idx[o] == o / k everywhere */
  const struct resize_table *lt = &tab[X->rank - 1];
  int64_t in_last = X->dims[X->rank - 1];
  if (!lt->ex && in_last > 0 && j.row_len % in_last == 0) {
    int64_t k = j.row_len / in_last;
    bool rep = true;
    for (int64_t o = 0; o < j.row_len && rep; o++) rep = lt->idx[o] == o / k;
    if (rep) j.repeat = k;
  }
  if (j.rows == 0 || j.row_len == 0) return;
  od_pool_parallel_for(pool, j.rows, 1 + 16384 / j.row_len, nearest_rows, &j);
}

/* ---- linear / cubic ---------------------------------------------------------------------------- */

/* Direct 2-D pass over the last two axes of a tensor viewed as [outer, H, W]. */
struct interp2d_job {
  const void *src;
  void *dst;
  int64_t H, W, OH, OW;
  const struct resize_table *th, *tw;
  double ev;
};

/* One 1-D pass along an axis of a tensor viewed as [outer, in, inner]. */
struct interp1d_job {
  const void *src;
  void *dst;
  int64_t in, out, inner;
  const struct resize_table *t;
  double ev;
};

#define INTERP_KERNELS(T, WF)                                                                       \
  /* Horizontal pass of one input row into dst (OW values). */                                      \
  static void interp_row_##T(const T *src, T *dst, const struct resize_table *tw, int64_t OW) {     \
    int nw = tw->n;                                                                                 \
    if (nw == 2) {                                                                                  \
      for (int64_t ox = 0; ox < OW; ox++)                                                           \
        dst[ox] = tw->WF[2 * ox] * src[tw->idx[2 * ox]] + tw->WF[2 * ox + 1] * src[tw->idx[2 * ox + 1]]; \
      return;                                                                                       \
    }                                                                                               \
    for (int64_t ox = 0; ox < OW; ox++) {                                                           \
      const int64_t *xi = tw->idx + ox * nw;                                                        \
      const T *wx = tw->WF + ox * nw;                                                               \
      T s = 0;                                                                                      \
      for (int k = 0; k < nw; k++) s += wx[k] * src[xi[k]];                                         \
      dst[ox] = s;                                                                                  \
    }                                                                                               \
  }                                                                                                 \
  /* Rows [begin, end) of the [outer * OH] output rows: each output row is the weighted sum of nh  \
   * horizontally resized input rows, kept in a small direct-mapped cache (slot = y % nh) so that  \
   * consecutive output rows sharing input rows resize them once. */                                \
  static void interp2d_rows_##T(void *vj, int64_t begin, int64_t end) {                             \
    const struct interp2d_job *j = vj;                                                              \
    const struct resize_table *th = j->th, *tw = j->tw;                                             \
    int nh = th->n;                                                                                 \
    int64_t OW = j->OW;                                                                             \
    T *cache = NULL;                                                                                \
    int64_t *tag = NULL;                                                                            \
    const T **rowp = NULL;                                                                          \
    if (nh > 1) {                                                                                   \
      cache = malloc((size_t)nh * (size_t)OW * sizeof(T));                                          \
      tag = malloc((size_t)nh * sizeof *tag);                                                       \
      rowp = malloc((size_t)nh * sizeof *rowp);                                                     \
      if (!cache || !tag || !rowp) { /* no scratch: one output row at a time through d itself */    \
        free(cache);                                                                                \
        free(tag);                                                                                  \
        free(rowp);                                                                                 \
        cache = NULL;                                                                               \
        tag = NULL;                                                                                 \
        rowp = NULL;                                                                                \
      }                                                                                             \
    }                                                                                               \
    int64_t cur_b = -1;                                                                             \
    for (int64_t row = begin; row < end; row++) {                                                   \
      int64_t b = row / j->OH, oy = row % j->OH;                                                    \
      T *d = (T *)j->dst + row * OW;                                                                \
      if (th->ex && th->ex[oy]) {                                                                   \
        for (int64_t ox = 0; ox < OW; ox++) d[ox] = (T)j->ev;                                       \
        continue;                                                                                   \
      }                                                                                             \
      const T *plane = (const T *)j->src + b * j->H * j->W;                                         \
      const int64_t *yi = th->idx + oy * nh;                                                        \
      const T *wy = th->WF + oy * nh;                                                               \
      if (nh == 1) { /* H not resized */                                                            \
        interp_row_##T(plane + yi[0] * j->W, d, tw, OW);                                            \
      } else if (cache) {                                                                           \
        if (b != cur_b) {                                                                           \
          for (int i = 0; i < nh; i++) tag[i] = -1;                                                 \
          cur_b = b;                                                                                \
        }                                                                                           \
        for (int i = 0; i < nh; i++) {                                                              \
          int64_t y = yi[i], slot = y % nh;                                                         \
          T *c = cache + slot * OW;                                                                 \
          if (tag[slot] != y) {                                                                     \
            interp_row_##T(plane + y * j->W, c, tw, OW);                                            \
            tag[slot] = y;                                                                          \
          }                                                                                         \
          rowp[i] = c;                                                                              \
        }                                                                                           \
        if (nh == 2) {                                                                              \
          const T *r0 = rowp[0], *r1 = rowp[1];                                                     \
          T w0 = wy[0], w1 = wy[1];                                                                 \
          for (int64_t ox = 0; ox < OW; ox++) d[ox] = w0 * r0[ox] + w1 * r1[ox];                    \
        } else {                                                                                    \
          const T *r0 = rowp[0];                                                                    \
          T w0 = wy[0];                                                                             \
          for (int64_t ox = 0; ox < OW; ox++) d[ox] = w0 * r0[ox];                                  \
          for (int i = 1; i < nh; i++) {                                                            \
            const T *ri = rowp[i];                                                                  \
            T wi = wy[i];                                                                           \
            for (int64_t ox = 0; ox < OW; ox++) d[ox] += wi * ri[ox];                               \
          }                                                                                         \
        }                                                                                           \
      } else {                                                                                      \
        for (int64_t ox = 0; ox < OW; ox++) {                                                       \
          const int64_t *xi = tw->idx + ox * tw->n;                                                 \
          const T *wx = tw->WF + ox * tw->n;                                                        \
          T acc = 0;                                                                                \
          for (int i = 0; i < nh; i++) {                                                            \
            const T *rw = plane + yi[i] * j->W;                                                     \
            T s = 0;                                                                                \
            for (int k = 0; k < tw->n; k++) s += wx[k] * rw[xi[k]];                                 \
            acc += wy[i] * s;                                                                       \
          }                                                                                         \
          d[ox] = acc;                                                                              \
        }                                                                                           \
      }                                                                                             \
      if (tw->ex)                                                                                   \
        for (int64_t ox = 0; ox < OW; ox++)                                                         \
          if (tw->ex[ox]) d[ox] = (T)j->ev;                                                         \
    }                                                                                               \
    free(cache);                                                                                    \
    free(tag);                                                                                      \
    free(rowp);                                                                                     \
  }                                                                                                 \
  static void interp1d_rows_##T(void *vj, int64_t begin, int64_t end) {                             \
    const struct interp1d_job *j = vj;                                                              \
    const struct resize_table *t = j->t;                                                            \
    int n = t->n;                                                                                   \
    int64_t inner = j->inner;                                                                       \
    for (int64_t row = begin; row < end; row++) {                                                   \
      int64_t b = row / j->out, o = row % j->out;                                                   \
      T *d = (T *)j->dst + row * inner;                                                             \
      if (t->ex && t->ex[o]) {                                                                      \
        for (int64_t k = 0; k < inner; k++) d[k] = (T)j->ev;                                        \
        continue;                                                                                   \
      }                                                                                             \
      const T *s = (const T *)j->src + b * j->in * inner;                                           \
      const int64_t *ii = t->idx + o * n;                                                           \
      const T *w = t->WF + o * n;                                                                   \
      const T *s0 = s + ii[0] * inner;                                                              \
      for (int64_t k = 0; k < inner; k++) d[k] = w[0] * s0[k];                                      \
      for (int i = 1; i < n; i++) {                                                                 \
        const T *si = s + ii[i] * inner;                                                            \
        T wi = w[i];                                                                                \
        for (int64_t k = 0; k < inner; k++) d[k] += wi * si[k];                                     \
      }                                                                                             \
    }                                                                                               \
  }

INTERP_KERNELS(float, wf)
INTERP_KERNELS(double, wd)

static enum od_status resize_interp(const struct od_tensor *X, struct od_tensor *Y, const struct resize_plan *p,
                                    const struct resize_table *tab, double ev, struct od_pool *pool,
                                    struct od_err *err) {
  int r = X->rank;
  if (r < 1 || r > OD_MAX_DIMS) return od_err_set(err, OD_ERR_INTERNAL, "rank %d", r);
  bool dbl = X->dtype == OD_DTYPE_DOUBLE;
  size_t es = dbl ? sizeof(double) : sizeof(float);
  bool only_last2 = true;
  for (int d = 0; d < r - 2; d++)
    if (p->ax[d].resized) only_last2 = false;
  if (only_last2) {
    struct interp2d_job j = {.src = X->data, .dst = Y->data, .ev = ev};
    j.H = r >= 2 ? X->dims[r - 2] : 1;
    j.OH = r >= 2 ? Y->dims[r - 2] : 1;
    j.W = X->dims[r - 1];
    j.OW = Y->dims[r - 1];
    /* rank 1: a one-row identity table stands in for H */
    int64_t zero = 0;
    double one_d = 1.0;
    float one_f = 1.0f;
    struct resize_table id1 = {.n = 1, .idx = &zero, .wf = &one_f, .wd = &one_d, .ex = NULL};
    j.th = r >= 2 ? &tab[r - 2] : &id1;
    j.tw = &tab[r - 1];
    int64_t rows = od_tensor_numel(Y) / (j.OW ? j.OW : 1);
    if (rows && j.OW)
      od_pool_parallel_for(pool, rows, 1 + 4096 / j.OW, dbl ? interp2d_rows_double : interp2d_rows_float, &j);
    return OD_OK;
  }
  /* general N-D: one pass per resized axis, through two scratch buffers */
  int64_t cur[OD_MAX_DIMS];
  memcpy(cur, X->dims, sizeof(int64_t) * (size_t)r);
  int last_axis = -1;
  size_t maxn = 0;
  for (int d = 0; d < r; d++) {
    if (!p->ax[d].resized) continue;
    cur[d] = p->ax[d].out;
    last_axis = d;
    int64_t n = 1;
    for (int k = 0; k < r; k++) n *= cur[k];
    if ((size_t)n > maxn) maxn = (size_t)n;
  }
  void *buf[2] = {malloc(maxn * es + 1), malloc(maxn * es + 1)};
  if (!buf[0] || !buf[1]) {
    free(buf[0]);
    free(buf[1]);
    return od_err_set(err, OD_ERR_OOM, "out of memory for %zu resize intermediates", maxn);
  }
  memcpy(cur, X->dims, sizeof(int64_t) * (size_t)r);
  const void *src = X->data;
  int which = 0;
  for (int d = 0; d < r; d++) {
    if (!p->ax[d].resized) continue;
    struct interp1d_job j = {.src = src, .in = cur[d], .out = p->ax[d].out, .t = &tab[d], .ev = ev};
    j.inner = 1;
    for (int k = d + 1; k < r; k++) j.inner *= cur[k];
    int64_t outer = 1;
    for (int k = 0; k < d; k++) outer *= cur[k];
    j.dst = d == last_axis ? Y->data : buf[which];
    int64_t rows = outer * j.out;
    if (rows && j.inner)
      od_pool_parallel_for(pool, rows, 1 + 4096 / j.inner, dbl ? interp1d_rows_double : interp1d_rows_float, &j);
    cur[d] = j.out;
    src = j.dst;
    which ^= 1;
  }
  free(buf[0]);
  free(buf[1]);
  return OD_OK;
}

/* ---- forward ----------------------------------------------------------------------------------- */

static enum od_status resize_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct resize_attrs *a = ctx->attrs;
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  struct resize_plan p;
  bool nv;
  OD_TRY(od_resize_make_plan(a, X, ctx_opt(ctx, a->in_roi), ctx_opt(ctx, a->in_scales), ctx_opt(ctx, a->in_sizes),
                          true, &p, &nv, ctx->err));
  if (nv) return od_err_set(ctx->err, OD_ERR_INTERNAL, "scales, sizes or roi have no values at run time");
  for (int d = 0; d < X->rank; d++)
    if (p.ax[d].out != Y->dims[d]) {
      char sb[128];
      return od_err_set(ctx->err, OD_ERR_INTERNAL, "output allocated as %s, but dim %d is %lld",
                        od_shape_str(Y->rank, Y->dims, sb, sizeof sb), d, (long long)p.ax[d].out);
    }
  size_t nb = od_tensor_nbytes(Y);
  bool any = false;
  for (int d = 0; d < X->rank; d++) any |= p.ax[d].resized;
  if (!any) { /* identity (also rank 0) */
    if (nb) memcpy(Y->data, X->data, nb);
    return OD_OK;
  }
  if (nb == 0) return OD_OK;
  struct resize_table tab[OD_MAX_DIMS];
  memset(tab, 0, sizeof tab);
  enum od_status st = OD_OK;
  for (int d = 0; d < X->rank && st == OD_OK; d++) st = od_resize_table_build(a, &p.ax[d], &tab[d], ctx->err);
  if (st == OD_OK) {
    if (a->mode == RESIZE_NEAREST) resize_nearest(X, Y, tab, a->extrapolation_value, ctx->pool);
    else st = resize_interp(X, Y, &p, tab, a->extrapolation_value, ctx->pool, ctx->err);
  }
  for (int d = 0; d < X->rank; d++) od_resize_table_free(&tab[d]);
  return st;
}

/* ---- backward ---------------------------------------------------------------------------------- */

/* The forward is linear in X and separable: Y = (T_0 (x) T_1 (x) ... (x) T_{r-1}) X, where T_d is
 * the out x in matrix of axis d's table (row o: weights w[o*n+k] at columns idx[o*n+k]; nearest is
 * one weight 1; cubic, antialias and exclude_outside are just other weights; identity axes are
 * the identity), and rows o that extrapolate (tf_crop_and_resize) are zero (the output is the
 * constant there). The adjoint is dX += (T_0^T (x) ... (x) T_{r-1}^T) dY. The tables are the
 * ones the forward builds (same coordinate transform, weights in the same dtype), so the backward
 * is the exact adjoint of the forward for every mode, coordinate transform and nearest rule.
 * Only the last two axes resized (NCHW images): per plane and output row, the row goes back
 * through T_w^T into a scratch row, which is added into the rows T_h^T names. Otherwise one
 * transposed 1-D pass per resized axis: dst[b, idx[o*n+k], :] += w[o*n+k] * src[b, o, :]. */
#define RESIZE_BWD_CHUNK 1024

struct resize_bwd_job {
  const void *src;
  void *dst;                      /* accumulated */
  int64_t in, out, inner, chunks; /* 1-D pass: [outer, out, inner] -> [outer, in, inner] */
  int64_t H, W, OH, OW;           /* 2-D: planes of [OH, OW] -> [H, W] */
  int64_t rep_w;                  /* 2-D: > 0 when T_w is an integer repeat (nearest x2: YOLO) */
  const struct resize_table *t, *th, *tw;
  atomic_bool *oom;               /* 2-D: set when a task cannot allocate its scratch row */
};

#define RESIZE_BWD_KERNELS(T, WF)                                                                   \
  static void bwd1d_##T(void *vj, int64_t begin, int64_t end) { /* task = (outer, inner chunk) */   \
    const struct resize_bwd_job *j = vj;                                                            \
    const struct resize_table *t = j->t;                                                            \
    int n = t->n;                                                                                   \
    for (int64_t task = begin; task < end; task++) {                                                \
      int64_t b = task / j->chunks, k0 = (task % j->chunks) * RESIZE_BWD_CHUNK;                     \
      int64_t len = j->inner - k0 < RESIZE_BWD_CHUNK ? j->inner - k0 : RESIZE_BWD_CHUNK;            \
      const T *s = (const T *)j->src + b * j->out * j->inner + k0;                                  \
      T *d = (T *)j->dst + b * j->in * j->inner + k0;                                               \
      for (int64_t o = 0; o < j->out; o++) {                                                        \
        if (t->ex && t->ex[o]) continue;                                                            \
        const T *so = s + o * j->inner;                                                             \
        for (int k = 0; k < n; k++) {                                                               \
          T w = t->WF[o * n + k], *di = d + t->idx[o * n + k] * j->inner;                           \
          for (int64_t i = 0; i < len; i++) di[i] += w * so[i];                                     \
        }                                                                                           \
      }                                                                                             \
    }                                                                                               \
  }                                                                                                 \
  static void bwd2d_##T(void *vj, int64_t begin, int64_t end) { /* task = one plane */              \
    const struct resize_bwd_job *j = vj;                                                            \
    const struct resize_table *th = j->th, *tw = j->tw;                                             \
    int nh = th->n, nw = tw->n;                                                                     \
    T *row = malloc(sizeof(T) * (size_t)j->W);                                                      \
    if (!row) {                                                                                     \
      atomic_store(j->oom, true);                                                                   \
      return;                                                                                       \
    }                                                                                               \
    for (int64_t b = begin; b < end; b++) {                                                         \
      const T *gy = (const T *)j->src + b * j->OH * j->OW;                                          \
      T *gx = (T *)j->dst + b * j->H * j->W;                                                        \
      for (int64_t oy = 0; oy < j->OH; oy++) {                                                      \
        if (th->ex && th->ex[oy]) continue;                                                         \
        const T *g = gy + oy * j->OW;                                                               \
        if (j->rep_w) { /* row[x] = the sum of its rep_w copies */                                 \
          for (int64_t x = 0; x < j->W; x++) {                                                      \
            T acc = 0;                                                                              \
            for (int64_t q = 0; q < j->rep_w; q++) acc += g[x * j->rep_w + q];                      \
            row[x] = acc;                                                                           \
          }                                                                                         \
        } else {                                                                                    \
          memset(row, 0, sizeof(T) * (size_t)j->W);                                                 \
          for (int64_t ox = 0; ox < j->OW; ox++) {                                                  \
            if (tw->ex && tw->ex[ox]) continue;                                                     \
            for (int k = 0; k < nw; k++) row[tw->idx[ox * nw + k]] += tw->WF[ox * nw + k] * g[ox];  \
          }                                                                                         \
        }                                                                                           \
        for (int k = 0; k < nh; k++) {                                                              \
          T w = th->WF[oy * nh + k], *dx = gx + th->idx[oy * nh + k] * j->W;                        \
          for (int64_t x = 0; x < j->W; x++) dx[x] += w * row[x];                                   \
        }                                                                                           \
      }                                                                                             \
    }                                                                                               \
    free(row);                                                                                      \
  }

RESIZE_BWD_KERNELS(float, wf)
RESIZE_BWD_KERNELS(double, wd)

static enum od_status resize_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct resize_attrs *a = ctx->attrs;
  const struct od_tensor *X = ctx->in[0], *dY = ctx->dout[0];
  struct od_tensor *dX = ctx->din[0];
  if (!dX || !dY) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT && dX->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "no backward for %s (float and double only)",
                      od_dtype_name(dX->dtype));
  struct resize_plan p;
  bool nv;
  OD_TRY(od_resize_make_plan(a, X, ctx_opt(ctx, a->in_roi), ctx_opt(ctx, a->in_scales), ctx_opt(ctx, a->in_sizes),
                          true, &p, &nv, ctx->err));
  if (nv) return od_err_set(ctx->err, OD_ERR_INTERNAL, "scales, sizes or roi have no values at run time");
  int r = X->rank, first = -1; /* the first resized axis: the passes go from the last one to it */
  for (int d = 0; d < r; d++) {
    if (p.ax[d].out != dY->dims[d])
      return od_err_set(ctx->err, OD_ERR_INTERNAL, "gradient shape differs from the output");
    if (p.ax[d].resized && first < 0) first = d;
  }
  bool dbl = dX->dtype == OD_DTYPE_DOUBLE;
  size_t es = dbl ? sizeof(double) : sizeof(float);
  int64_t n_dx = od_tensor_numel(dX);
  if (first < 0) { /* identity */
    for (int64_t i = 0; i < n_dx; i++) {
      if (dbl) ((double *)dX->data)[i] += ((const double *)dY->data)[i];
      else ((float *)dX->data)[i] += ((const float *)dY->data)[i];
    }
    return OD_OK;
  }
  if (od_tensor_numel(dY) == 0 || n_dx == 0) return OD_OK;
  struct resize_table tab[OD_MAX_DIMS];
  memset(tab, 0, sizeof tab);
  void *buf[2] = {NULL, NULL};
  enum od_status st = OD_OK;
  for (int d = 0; d < r && st == OD_OK; d++) st = od_resize_table_build(a, &p.ax[d], &tab[d], ctx->err);
  if (st == OD_OK && first >= r - 2) { /* the 2-D path (rank 1: H is a one-row identity) */
    int64_t zero = 0;
    double one_d = 1.0;
    float one_f = 1.0f;
    struct resize_table id1 = {.n = 1, .idx = &zero, .wf = &one_f, .wd = &one_d, .ex = NULL};
    atomic_bool oom = false;
    struct resize_bwd_job j = {.src = dY->data, .dst = dX->data, .th = r >= 2 ? &tab[r - 2] : &id1, .tw = &tab[r - 1],
                               .oom = &oom};
    j.H = r >= 2 ? X->dims[r - 2] : 1;
    j.OH = r >= 2 ? dY->dims[r - 2] : 1;
    j.W = X->dims[r - 1];
    j.OW = dY->dims[r - 1];
    if (j.tw->n == 1 && !j.tw->ex && j.W > 0 && j.OW % j.W == 0) { /* idx[o] == o / k, weight 1 */
      j.rep_w = j.OW / j.W;
      for (int64_t o = 0; o < j.OW && j.rep_w; o++)
        if (j.tw->idx[o] != o / j.rep_w || j.tw->wd[o] != 1.0) j.rep_w = 0;
    }
    int64_t work = j.OH * (j.OW * j.tw->n + j.W * j.th->n);
    od_pool_parallel_for(ctx->pool, n_dx / (j.H * j.W), 1 + 32768 / (work ? work : 1), dbl ? bwd2d_double : bwd2d_float,
                         &j);
    if (atomic_load(&oom)) st = od_err_set(ctx->err, OD_ERR_OOM, "out of memory for a resize gradient row");
  } else if (st == OD_OK) {
    int64_t cur[OD_MAX_DIMS];
    memcpy(cur, dY->dims, sizeof(int64_t) * (size_t)r);
    size_t maxn = 0; /* the largest intermediate (after each pass but the last) */
    for (int d = r - 1; d > first; d--) {
      cur[d] = p.ax[d].in;
      int64_t n = 1;
      for (int k = 0; k < r; k++) n *= cur[k];
      if (p.ax[d].resized && (size_t)n > maxn) maxn = (size_t)n;
    }
    if (!(buf[0] = malloc(maxn * es + 1)) || !(buf[1] = malloc(maxn * es + 1)))
      st = od_err_set(ctx->err, OD_ERR_OOM, "out of memory for %zu resize gradient intermediates", maxn);
    memcpy(cur, dY->dims, sizeof(int64_t) * (size_t)r);
    const void *src = dY->data;
    int which = 0;
    for (int d = r - 1; d >= first && st == OD_OK; d--) {
      if (!p.ax[d].resized) continue;
      struct resize_bwd_job j = {.src = src, .in = p.ax[d].in, .out = p.ax[d].out, .t = &tab[d], .inner = 1};
      for (int k = d + 1; k < r; k++) j.inner *= cur[k];
      j.chunks = (j.inner + RESIZE_BWD_CHUNK - 1) / RESIZE_BWD_CHUNK;
      int64_t outer = 1, n = 1;
      for (int k = 0; k < d; k++) outer *= cur[k];
      cur[d] = p.ax[d].in;
      for (int k = 0; k < r; k++) n *= cur[k];
      j.dst = d == first ? dX->data : buf[which];
      if (d != first) memset(j.dst, 0, (size_t)n * es);
      int64_t work = j.out * tab[d].n * (j.inner < RESIZE_BWD_CHUNK ? j.inner : RESIZE_BWD_CHUNK);
      od_pool_parallel_for(ctx->pool, outer * j.chunks, 1 + 32768 / (work ? work : 1), dbl ? bwd1d_double : bwd1d_float,
                           &j);
      src = j.dst;
      which ^= 1;
    }
  }
  for (int d = 0; d < r; d++) od_resize_table_free(&tab[d]);
  free(buf[0]);
  free(buf[1]);
  return st;
}

static const char resize_dtypes[] =
    "nearest: float, double, float16, bfloat16, int8..int64, uint8..uint64, bool; linear/cubic: float, double";

const struct od_op_kernels od_kernels_resize = {
    .bwd_reads = od_bwd_reads_shape_inputs,
    .attrs_size = sizeof(struct resize_attrs),
    .parse = resize_parse,
    .infer = resize_infer,
    .forward = {[OD_DEVICE_CPU] = resize_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_resize_fwd)},
    .backward = {[OD_DEVICE_CPU] = resize_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_resize_bwd)},
    .no_grad_inputs = (1u << 1) | (1u << 2) | (1u << 3), /* roi, scales, sizes */
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = resize_dtypes,
};

/* Upsample shares the kernel; parse reads the op type and opset (scales attribute before 9). */
const struct od_op_kernels od_kernels_upsample = {
    .bwd_reads = od_bwd_reads_shape_inputs,
    .attrs_size = sizeof(struct resize_attrs),
    .parse = resize_parse,
    .infer = resize_infer,
    .forward = {[OD_DEVICE_CPU] = resize_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_resize_fwd)},
    .backward = {[OD_DEVICE_CPU] = resize_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_resize_bwd)},
    .no_grad_inputs = 1u << 1, /* scales */
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = resize_dtypes,
};
