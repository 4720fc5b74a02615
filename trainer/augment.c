/* trainer/augment.c: the reference reader's sample operators and cv2-style resampling (see
 * augment.h). Images are float HWC RGB on the 0..255 scale throughout; where the reference casts
 * to uint8 (after MixupImage, inside RandomExpand) the values are truncated the same way, except
 * that out-of-range values saturate instead of wrapping around as numpy's cast does. */
#include "trainer/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers ------------------------------------------------------------------------------ */

double od_rng_normal(struct od_rng *r) {
  double u = od_rng_unif(r), v = od_rng_unif(r);
  return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v); /* 1 - u in (0, 1] */
}

double od_rng_gamma(struct od_rng *r, double shape) {
  if (shape < 1) { /* boost: G(a) = G(a + 1) * U^(1/a) */
    double u = od_rng_unif(r);
    return od_rng_gamma(r, shape + 1) * pow(1.0 - u, 1.0 / shape);
  }
  double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x = od_rng_normal(r), v = 1 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    double u = 1.0 - od_rng_unif(r);
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (log(u) < 0.5 * x * x + d * (1 - v + log(v))) return d * v;
  }
}

double od_rng_beta(struct od_rng *r, double a, double b) {
  double x = od_rng_gamma(r, a), y = od_rng_gamma(r, b);
  return x + y > 0 ? x / (x + y) : 0.5;
}

/* ---- samples ------------------------------------------------------------------------------------- */

void od_aug_sample_free(struct od_aug_sample *s) {
  free(s->px);
  free(s->b);
  memset(s, 0, sizeof *s);
}

enum od_status od_aug_sample_from_rgb(struct od_aug_sample *s, const uint8_t *rgb, int w, int h, struct od_err *err) {
  size_t n = (size_t)w * (size_t)h * 3;
  float *px = malloc(n * sizeof(float));
  if (!px) return od_err_set(err, OD_ERR_OOM, "cannot allocate a %d x %d image", w, h);
  for (size_t i = 0; i < n; i++) px[i] = rgb[i];
  free(s->px);
  s->px = px;
  s->w = w;
  s->h = h;
  s->n = 0;
  return OD_OK;
}

enum od_status od_aug_add_box(struct od_aug_sample *s, struct od_aug_box b, struct od_err *err) {
  if (s->n == s->cap) {
    int nc = s->cap ? s->cap * 2 : 16;
    struct od_aug_box *nb = realloc(s->b, sizeof *nb * (size_t)nc);
    if (!nb) return od_err_set(err, OD_ERR_OOM, "out of memory (boxes)");
    s->b = nb;
    s->cap = nc;
  }
  s->b[s->n++] = b;
  return OD_OK;
}

/* uint8 cast of the reference: truncation toward zero; out of range saturates (numpy wraps). */
static inline float to_u8(float v) { return v <= 0 ? 0.0f : v >= 255 ? 255.0f : (float)(int)v; }

/* ---- MixupImage ---------------------------------------------------------------------------------- */

enum od_status od_aug_mixup(struct od_aug_sample *a, const struct od_aug_sample *b, double factor, struct od_err *err) {
  if (factor >= 1.0) return OD_OK;
  if (factor <= 0.0) { /* the reference returns the other sample as it is */
    float *px = malloc((size_t)b->w * b->h * 3 * sizeof(float));
    if (!px) return od_err_set(err, OD_ERR_OOM, "out of memory (mixup)");
    memcpy(px, b->px, (size_t)b->w * b->h * 3 * sizeof(float));
    free(a->px);
    a->px = px;
    a->w = b->w;
    a->h = b->h;
    a->n = 0;
    for (int i = 0; i < b->n; i++) OD_TRY(od_aug_add_box(a, b->b[i], err));
    return OD_OK;
  }
  int w = a->w > b->w ? a->w : b->w, h = a->h > b->h ? a->h : b->h;
  float *px = calloc((size_t)w * h * 3, sizeof(float));
  if (!px) return od_err_set(err, OD_ERR_OOM, "cannot allocate a %d x %d mixup canvas", w, h);
  float fa = (float)factor, fb = (float)(1.0 - factor);
  for (int y = 0; y < a->h; y++)
    for (int i = 0; i < a->w * 3; i++) px[((size_t)y * w) * 3 + i] = a->px[((size_t)y * a->w) * 3 + i] * fa;
  for (int y = 0; y < b->h; y++)
    for (int i = 0; i < b->w * 3; i++) px[((size_t)y * w) * 3 + i] += b->px[((size_t)y * b->w) * 3 + i] * fb;
  for (size_t i = 0; i < (size_t)w * h * 3; i++) px[i] = to_u8(px[i]);
  free(a->px);
  a->px = px;
  a->w = w;
  a->h = h;
  for (int i = 0; i < a->n; i++) a->b[i].score *= fa;
  for (int i = 0; i < b->n; i++) {
    struct od_aug_box bb = b->b[i];
    bb.score *= fb;
    OD_TRY(od_aug_add_box(a, bb, err));
  }
  return OD_OK;
}

/* ---- ColorDistort -------------------------------------------------------------------------------- */

static void brightness(struct od_aug_sample *s, float delta) {
  size_t n = (size_t)s->w * s->h * 3;
  for (size_t i = 0; i < n; i++) s->px[i] += delta;
}

static void contrast(struct od_aug_sample *s, float delta) {
  size_t n = (size_t)s->w * s->h * 3;
  for (size_t i = 0; i < n; i++) s->px[i] *= delta;
}

static void saturation(struct od_aug_sample *s, float delta) {
  size_t n = (size_t)s->w * s->h;
  for (size_t i = 0; i < n; i++) {
    float *p = s->px + i * 3;
    float g = (0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]) * (1.0f - delta);
    p[0] = p[0] * delta + g;
    p[1] = p[1] * delta + g;
    p[2] = p[2] * delta + g;
  }
}

/* RGB -> YIQ, rotate I/Q by theta, back to RGB: out = IYIQ * R(theta) * TYIQ * rgb. */
static void hue(struct od_aug_sample *s, double theta) {
  static const double tyiq[3][3] = {{0.299, 0.587, 0.114}, {0.596, -0.274, -0.321}, {0.211, -0.523, 0.311}};
  static const double ityiq[3][3] = {{1.0, 0.956, 0.621}, {1.0, -0.272, -0.647}, {1.0, -1.107, 1.705}};
  double u = cos(theta), w = sin(theta);
  double rot[3][3] = {{1, 0, 0}, {0, u, -w}, {0, w, u}}, a[3][3], m[3][3];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      a[i][j] = 0;
      for (int k = 0; k < 3; k++) a[i][j] += rot[i][k] * tyiq[k][j];
    }
  float mf[3][3];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      m[i][j] = 0;
      for (int k = 0; k < 3; k++) m[i][j] += ityiq[i][k] * a[k][j];
      mf[i][j] = (float)m[i][j];
    }
  size_t n = (size_t)s->w * s->h;
  for (size_t i = 0; i < n; i++) {
    float *p = s->px + i * 3, r = p[0], g = p[1], b = p[2];
    p[0] = mf[0][0] * r + mf[0][1] * g + mf[0][2] * b;
    p[1] = mf[1][0] * r + mf[1][1] * g + mf[1][2] * b;
    p[2] = mf[2][0] * r + mf[2][1] * g + mf[2][2] * b;
  }
}

void od_aug_color_distort(struct od_aug_sample *s, struct od_rng *r) {
  int order[4] = {0, 1, 2, 3}; /* brightness, contrast, saturation, hue */
  for (int i = 3; i > 0; i--) {
    int j = (int)od_rng_int(r, 0, i + 1);
    int t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (int k = 0; k < 4; k++) {
    if (od_rng_unif(r) < 0.5) continue; /* each is skipped with probability 1/2 */
    switch (order[k]) {
    case 0: brightness(s, (float)od_rng_range(r, 0.5, 1.5)); break;
    case 1: contrast(s, (float)od_rng_range(r, 0.5, 1.5)); break;
    case 2: saturation(s, (float)od_rng_range(r, 0.5, 1.5)); break;
    default: hue(s, od_rng_range(r, -18, 18) * 3.14159265358979323846); break;
    }
  }
}

/* ---- RandomExpand -------------------------------------------------------------------------------- */

enum od_status od_aug_expand(struct od_aug_sample *s, struct od_rng *r, double ratio, double prob, const float fill[3],
                             struct od_err *err) {
  if (od_rng_unif(r) < prob) return OD_OK; /* the reference skips when U < prob: expands half the time */
  double e = od_rng_range(r, 1.0, ratio);
  int h = (int)(s->h * e), w = (int)(s->w * e);
  if (!(h > s->h) || !(w > s->w)) return OD_OK;
  int y = (int)od_rng_int(r, 0, h - s->h), x = (int)od_rng_int(r, 0, w - s->w);
  float *px = malloc((size_t)w * h * 3 * sizeof(float));
  if (!px) return od_err_set(err, OD_ERR_OOM, "cannot allocate a %d x %d expand canvas", w, h);
  float f[3] = {to_u8(fill[0]), to_u8(fill[1]), to_u8(fill[2])};
  for (size_t i = 0; i < (size_t)w * h; i++) memcpy(px + i * 3, f, sizeof f);
  for (int yy = 0; yy < s->h; yy++) {
    const float *src = s->px + (size_t)yy * s->w * 3;
    float *dst = px + ((size_t)(yy + y) * w + x) * 3;
    for (int i = 0; i < s->w * 3; i++) dst[i] = to_u8(src[i]);
  }
  free(s->px);
  s->px = px;
  s->w = w;
  s->h = h;
  for (int i = 0; i < s->n; i++) {
    s->b[i].x1 += (float)x;
    s->b[i].x2 += (float)x;
    s->b[i].y1 += (float)y;
    s->b[i].y2 += (float)y;
  }
  return OD_OK;
}

/* ---- RandomCrop ---------------------------------------------------------------------------------- */

static double iou(const struct od_aug_box *a, double x1, double y1, double x2, double y2) {
  double ix1 = a->x1 > x1 ? a->x1 : x1, iy1 = a->y1 > y1 ? a->y1 : y1;
  double ix2 = a->x2 < x2 ? a->x2 : x2, iy2 = a->y2 < y2 ? a->y2 : y2;
  double inter = ix1 < ix2 && iy1 < iy2 ? (ix2 - ix1) * (iy2 - iy1) : 0;
  double ua = (double)(a->x2 - a->x1) * (a->y2 - a->y1) + (x2 - x1) * (y2 - y1) - inter;
  return inter / (ua + 1e-10);
}

/* Whether box i survives a crop (centre inside, non-empty after clipping); the clipped box in *out. */
static bool crop_box(const struct od_aug_box *b, int cx, int cy, int cw, int ch, struct od_aug_box *out) {
  float mx = (b->x1 + b->x2) / 2, my = (b->y1 + b->y2) / 2;
  if (!(cx <= mx && mx < cx + cw && cy <= my && my < cy + ch)) return false;
  *out = *b;
  out->x1 = (b->x1 > cx ? b->x1 : (float)cx) - (float)cx;
  out->y1 = (b->y1 > cy ? b->y1 : (float)cy) - (float)cy;
  out->x2 = (b->x2 < cx + cw ? b->x2 : (float)(cx + cw)) - (float)cx;
  out->y2 = (b->y2 < cy + ch ? b->y2 : (float)(cy + ch)) - (float)cy;
  return out->x1 < out->x2 && out->y1 < out->y2;
}

enum od_status od_aug_crop(struct od_aug_sample *s, struct od_rng *r, struct od_err *err) {
  if (s->n == 0) return OD_OK;
  double th[7] = {0.0, 0.1, 0.3, 0.5, 0.7, 0.9, -1.0}; /* -1: "no_crop" */
  for (int i = 6; i > 0; i--) {
    int j = (int)od_rng_int(r, 0, i + 1);
    double t = th[i];
    th[i] = th[j];
    th[j] = t;
  }
  for (int t = 0; t < 7; t++) {
    if (th[t] < 0) return OD_OK;
    for (int attempt = 0; attempt < 50; attempt++) {
      double scale = od_rng_range(r, 0.3, 1.0);
      double lo = scale * scale > 0.5 ? scale * scale : 0.5, hi = 1 / (scale * scale) < 2 ? 1 / (scale * scale) : 2;
      double ar = od_rng_range(r, lo, hi);
      int ch = (int)(s->h * (scale / sqrt(ar))), cw = (int)(s->w * (scale * sqrt(ar)));
      int cy = (int)od_rng_int(r, 0, s->h - ch), cx = (int)od_rng_int(r, 0, s->w - cw);
      if (ch < 1 || cw < 1) continue;
      double best = 0;
      for (int i = 0; i < s->n; i++) {
        double v = iou(&s->b[i], cx, cy, cx + cw, cy + ch);
        if (v > best) best = v;
      }
      if (best < th[t]) continue;
      int kept = 0;
      struct od_aug_box tmp;
      for (int i = 0; i < s->n; i++) kept += crop_box(&s->b[i], cx, cy, cw, ch, &tmp);
      if (!kept) continue;
      float *px = malloc((size_t)cw * ch * 3 * sizeof(float));
      if (!px) return od_err_set(err, OD_ERR_OOM, "cannot allocate a %d x %d crop", cw, ch);
      for (int y = 0; y < ch; y++)
        memcpy(px + (size_t)y * cw * 3, s->px + ((size_t)(y + cy) * s->w + cx) * 3, (size_t)cw * 3 * sizeof(float));
      free(s->px);
      s->px = px;
      s->w = cw;
      s->h = ch;
      int k = 0;
      for (int i = 0; i < s->n; i++)
        if (crop_box(&s->b[i], cx, cy, cw, ch, &tmp)) s->b[k++] = tmp;
      s->n = k;
      return OD_OK;
    }
  }
  return OD_OK;
}

/* ---- RandomFlipImage ----------------------------------------------------------------------------- */

void od_aug_flip(struct od_aug_sample *s) {
  for (int y = 0; y < s->h; y++) {
    float *row = s->px + (size_t)y * s->w * 3;
    for (int a = 0, b = s->w - 1; a < b; a++, b--) {
      float t[3];
      memcpy(t, row + a * 3, sizeof t);
      memcpy(row + a * 3, row + b * 3, sizeof t);
      memcpy(row + b * 3, t, sizeof t);
    }
  }
  for (int i = 0; i < s->n; i++) {
    float x1 = s->b[i].x1, x2 = s->b[i].x2;
    s->b[i].x1 = (float)s->w - x2 - 1;
    s->b[i].x2 = (float)s->w - x1 - 1;
  }
}

void od_aug_random_flip(struct od_aug_sample *s, struct od_rng *r) {
  if (od_rng_unif(r) < 0.5) od_aug_flip(s);
}

/* ---- resampling ---------------------------------------------------------------------------------- */

/* Taps of one axis: for each destination index, k source indices (clamped) and weights. */
struct taps {
  int k;
  int *idx;
  float *w;
};

static double keys_cubic(double t) { /* Keys' kernel with a = -0.75, as cv2 */
  const double a = -0.75;
  t = fabs(t);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

static double lanczos4(double t) { /* sinc(t) * sinc(t / 4) */
  if (fabs(t) < 1e-7) return 1;
  if (fabs(t) >= 4) return 0;
  const double pi = 3.14159265358979323846;
  return 4 * sin(pi * t) * sin(pi * t / 4) / (pi * pi * t * t);
}

static int clampi(int v, int n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

static bool make_taps(struct taps *t, int sn, int dn, enum od_interp interp, bool area_down) {
  double scale = (double)sn / dn;
  int k = 1;
  if (interp == OD_INTERP_LINEAR || (interp == OD_INTERP_AREA && !area_down)) k = 2;
  else if (interp == OD_INTERP_CUBIC) k = 4;
  else if (interp == OD_INTERP_LANCZOS4) k = 8;
  else if (interp == OD_INTERP_AREA) k = (int)ceil(scale) + 1;
  t->k = k;
  t->idx = calloc((size_t)dn * k, sizeof(int));
  t->w = calloc((size_t)dn * k, sizeof(float));
  if (!t->idx || !t->w) return false;
  for (int d = 0; d < dn; d++) {
    int *ix = t->idx + (size_t)d * k;
    float *wt = t->w + (size_t)d * k;
    if (interp == OD_INTERP_NEAREST) {
      ix[0] = clampi((int)floor(d * scale), sn);
      wt[0] = 1;
    } else if (interp == OD_INTERP_AREA && area_down) { /* the overlap of [d, d+1) * scale with each pixel */
      double f1 = d * scale, f2 = f1 + scale, cell = scale < sn - f1 ? scale : sn - f1;
      int j0 = (int)floor(f1), n = 0;
      for (int j = j0; j < sn && j < f2 && n < k; j++) {
        double lo = j > f1 ? j : f1, hi = j + 1 < f2 ? j + 1 : f2;
        if (hi - lo <= 1e-9) continue;
        ix[n] = j;
        wt[n++] = (float)((hi - lo) / cell);
      }
      for (; n < k; n++) ix[n] = clampi(j0, sn), wt[n] = 0;
    } else if (k == 2) { /* linear; INTER_AREA when enlarging uses cv2's own fraction */
      int sx;
      double fx;
      if (interp == OD_INTERP_AREA) {
        sx = (int)floor(d * scale);
        fx = (d + 1) - (sx + 1) / scale;
        fx = fx <= 0 ? 0 : fx - floor(fx);
      } else {
        fx = (d + 0.5) * scale - 0.5;
        sx = (int)floor(fx);
        fx -= sx;
      }
      if (sx < 0) fx = 0, sx = 0;
      if (sx >= sn - 1) fx = 0, sx = sn - 1;
      ix[0] = sx;
      ix[1] = clampi(sx + 1, sn);
      wt[0] = (float)(1 - fx);
      wt[1] = (float)fx;
    } else { /* cubic, lanczos4: k taps around the half-pixel source position, edges replicated */
      double fx = (d + 0.5) * scale - 0.5;
      int sx = (int)floor(fx);
      fx -= sx;
      double sum = 0, ws[8];
      for (int i = 0; i < k; i++) {
        double dist = (i - (k / 2 - 1)) - fx;
        ws[i] = k == 4 ? keys_cubic(dist) : lanczos4(dist);
        sum += ws[i];
      }
      for (int i = 0; i < k; i++) {
        ix[i] = clampi(sx + i - (k / 2 - 1), sn);
        wt[i] = (float)(k == 8 ? ws[i] / sum : ws[i]);
      }
    }
  }
  return true;
}

static void free_taps(struct taps *t) {
  free(t->idx);
  free(t->w);
}

enum od_status od_resize_normalize(const float *src, int sw, int sh, int dw, int dh, enum od_interp interp,
                                   const float mean[3], const float std[3], float *dst, struct od_err *err) {
  if (sw < 1 || sh < 1 || dw < 1 || dh < 1) return od_err_set(err, OD_ERR_INVALID_ARG, "resize %dx%d -> %dx%d", sw, sh, dw, dh);
  /* cv2: an exact halving with INTER_LINEAR is done as INTER_AREA; INTER_AREA averages only when
   * both axes shrink, and otherwise is a bilinear with its own fraction */
  if (interp == OD_INTERP_LINEAR && sw == 2 * dw && sh == 2 * dh) interp = OD_INTERP_AREA;
  bool area_down = interp == OD_INTERP_AREA && sw >= dw && sh >= dh;
  struct taps tx = {0}, ty = {0};
  float *tmp = malloc((size_t)sh * dw * 3 * sizeof(float));
  if (!tmp || !make_taps(&tx, sw, dw, interp, area_down) || !make_taps(&ty, sh, dh, interp, area_down)) {
    free(tmp);
    free_taps(&tx);
    free_taps(&ty);
    return od_err_set(err, OD_ERR_OOM, "cannot allocate the resize buffers (%dx%d -> %dx%d)", sw, sh, dw, dh);
  }
  for (int y = 0; y < sh; y++) { /* horizontal pass: sh x dw x 3 */
    const float *row = src + (size_t)y * sw * 3;
    float *out = tmp + (size_t)y * dw * 3;
    for (int x = 0; x < dw; x++) {
      const int *ix = tx.idx + (size_t)x * tx.k;
      const float *wt = tx.w + (size_t)x * tx.k;
      float a = 0, b = 0, c = 0;
      for (int i = 0; i < tx.k; i++) {
        const float *p = row + (size_t)ix[i] * 3;
        a += wt[i] * p[0];
        b += wt[i] * p[1];
        c += wt[i] * p[2];
      }
      out[x * 3] = a;
      out[x * 3 + 1] = b;
      out[x * 3 + 2] = c;
    }
  }
  float scale[3], shift[3];
  for (int c = 0; c < 3; c++) {
    scale[c] = 1.0f / (255.0f * std[c]);
    shift[c] = -mean[c] / std[c];
  }
  size_t plane = (size_t)dw * dh, rowlen = (size_t)dw * 3;
  float *acc = malloc(rowlen * sizeof(float));
  if (!acc) {
    free(tmp);
    free_taps(&tx);
    free_taps(&ty);
    return od_err_set(err, OD_ERR_OOM, "out of memory (resize)");
  }
  for (int y = 0; y < dh; y++) { /* vertical pass (whole rows, vectorisable), then into planes */
    const int *iy = ty.idx + (size_t)y * ty.k;
    const float *wt = ty.w + (size_t)y * ty.k;
    const float *r0 = tmp + (size_t)iy[0] * rowlen;
    for (size_t j = 0; j < rowlen; j++) acc[j] = wt[0] * r0[j];
    for (int i = 1; i < ty.k; i++) {
      if (wt[i] == 0) continue;
      const float *ri = tmp + (size_t)iy[i] * rowlen;
      float wi = wt[i];
      for (size_t j = 0; j < rowlen; j++) acc[j] += wi * ri[j];
    }
    for (int c = 0; c < 3; c++) {
      float *o = dst + c * plane + (size_t)y * dw;
      for (int x = 0; x < dw; x++) o[x] = acc[x * 3 + c] * scale[c] + shift[c];
    }
  }
  free(acc);
  free(tmp);
  free_taps(&tx);
  free_taps(&ty);
  return OD_OK;
}
