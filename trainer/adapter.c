/* trainer/adapter.c: 1x1-conv and bilinear-resize adapters (see adapter.h). */
#include "trainer/adapter.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/manifest.h"

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

enum od_status od_adapter_plan(const struct od_tensor *S, const struct od_tensor *T, int mode, const char *name_prefix,
                               uint64_t seed, struct od_params *ps, struct od_adapter_plan *out, struct od_err *err) {
  struct od_adapter_plan a = {.w_param = -1, .b_param = -1, .rank = S->rank};
  char ss[128], ts[128];
  od_shape_str(S->rank, S->dims, ss, sizeof ss);
  od_shape_str(T->rank, T->dims, ts, sizeof ts);
  if (mode == OD_ADAPTER_NONE) {
    if (!od_tensor_same_shape(S, T))
      return od_err_set(err, OD_ERR_SHAPE, "student %s and teacher %s differ and the adapter is \"none\"", ss, ts);
    *out = a;
    return OD_OK;
  }
  if (od_tensor_same_shape(S, T) && mode != OD_ADAPTER_CONV1X1) {
    a.may_resize = S->rank == 4; /* another input size may still give different H, W */
    *out = a;
    return OD_OK;
  }
  if (S->rank != T->rank || (S->rank != 4 && S->rank != 2) || S->dims[0] != T->dims[0])
    return od_err_set(err, OD_ERR_SHAPE,
                      "student %s and teacher %s cannot be paired: an adapter maps channels (1x1 conv) and H, W "
                      "(resize) of NCHW or NC tensors with the same batch", ss, ts);
  if (S->dtype != OD_DTYPE_FLOAT || T->dtype != OD_DTYPE_FLOAT)
    return od_err_set(err, OD_ERR_SHAPE, "adapters work on float tensors");
  a.conv = S->dims[1] != T->dims[1] || mode == OD_ADAPTER_CONV1X1;
  a.may_resize = S->rank == 4;
  if (a.conv) {
    int64_t cs = S->dims[1], ct = T->dims[1];
    int64_t wd[4] = {ct, cs, 1, 1};
    float *init = malloc(sizeof(float) * (size_t)(ct * cs));
    if (!init) return od_err_set(err, OD_ERR_OOM, "out of memory");
    /* Kaiming-uniform (fan_in = Cs), as PyTorch initialises a fresh conv */
    double bound = sqrt(6.0 / (double)cs) / sqrt(2.0);
    uint64_t s = seed;
    for (int64_t i = 0; i < ct * cs; i++)
      init[i] = (float)(((double)(splitmix(&s) >> 11) / 9007199254740992.0 * 2 - 1) * bound);
    char name[256];
    snprintf(name, sizeof name, "%s.weight", name_prefix);
    enum od_status st = od_params_add(ps, name, 4, wd, true, init, &a.w_param, err);
    free(init);
    OD_TRY(st);
    snprintf(name, sizeof name, "%s.bias", name_prefix);
    OD_TRY(od_params_add(ps, name, 1, &ct, false, NULL, &a.b_param, err));
  }
  *out = a;
  return OD_OK;
}

/* Grows a float buffer to n floats. */
static bool reserve(float **buf, size_t *cap, size_t n) {
  if (n <= *cap) return true;
  float *b = realloc(*buf, n * sizeof(float));
  if (!b) return false;
  *buf = b;
  *cap = n;
  return true;
}

bool od_adapter_identity(const struct od_adapter_plan *a) { return !a->conv && !a->resize; }

/* Half-pixel bilinear source coordinate: x_src = (x + 0.5) * in / out - 0.5, clamped at 0. */
static void lin_coord(int64_t x, int64_t in, int64_t out, int64_t *i0, int64_t *i1, float *w1) {
  double s = ((double)x + 0.5) * (double)in / (double)out - 0.5;
  if (s < 0) s = 0;
  int64_t a = (int64_t)s;
  if (a > in - 1) a = in - 1;
  *i0 = a;
  *i1 = a + 1 < in ? a + 1 : in - 1;
  *w1 = (float)(s - (double)a);
}

static int64_t spatial(const int64_t *d, int rank) { return rank == 4 ? d[2] * d[3] : 1; }

enum od_status od_adapter_forward(struct od_adapter_plan *a, const struct od_params *ps, const struct od_tensor *S,
                                  const struct od_tensor *T, struct od_tensor *out, struct od_err *err) {
  *out = *S;
  a->resize = a->may_resize && S->rank == 4 && T->rank == 4 && (S->dims[2] != T->dims[2] || S->dims[3] != T->dims[3]);
  if (od_adapter_identity(a)) return OD_OK;
  char ss[128], ts[128];
  if (S->rank != a->rank || T->rank != a->rank || S->dims[0] != T->dims[0] ||
      (a->conv && (S->dims[1] != ps->p[a->w_param].dims[1] || T->dims[1] != ps->p[a->w_param].dims[0])) ||
      (!a->conv && S->dims[1] != T->dims[1]))
    return od_err_set(err, OD_ERR_SHAPE, "student %s and teacher %s no longer fit the adapter planned for them",
                      od_shape_str(S->rank, S->dims, ss, sizeof ss), od_shape_str(T->rank, T->dims, ts, sizeof ts));
  memcpy(a->in_dims, S->dims, sizeof(int64_t) * (size_t)S->rank);
  memcpy(a->mid_dims, S->dims, sizeof(int64_t) * (size_t)S->rank);
  a->mid_dims[1] = T->dims[1];
  memcpy(a->out_dims, T->dims, sizeof(int64_t) * (size_t)T->rank);
  int64_t nmid = 1, nout = 1;
  for (int d = 0; d < a->rank; d++) {
    nmid *= a->mid_dims[d];
    nout *= a->out_dims[d];
  }
  if (!reserve(&a->mid, &a->mid_cap, (size_t)nmid) || !reserve(&a->dmid, &a->dmid_cap, (size_t)nmid) ||
      !reserve(&a->out, &a->out_cap, (size_t)nout))
    return od_err_set(err, OD_ERR_OOM, "out of memory for adapter buffers");
  const float *x = S->data;
  int64_t n = a->in_dims[0], cs = a->in_dims[1], ct = a->mid_dims[1], hw = spatial(a->in_dims, a->rank);
  float *mid = (float *)x;
  if (a->conv) {
    const float *W = ps->w + ps->p[a->w_param].offset, *b = ps->w + ps->p[a->b_param].offset;
    mid = a->mid;
    for (int64_t i = 0; i < n; i++) { /* mid_i [Ct, HW] = W [Ct, Cs] * x_i [Cs, HW] + b */
      float *y = mid + i * ct * hw;
      for (int64_t c = 0; c < ct; c++)
        for (int64_t k = 0; k < hw; k++) y[c * hw + k] = b[c];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ct, (int)hw, (int)cs, 1.0f, W, (int)cs,
                  x + i * cs * hw, (int)hw, 1.0f, y, (int)hw);
    }
  }
  float *res = mid;
  if (a->resize) {
    int64_t H = a->mid_dims[2], Wd = a->mid_dims[3], Ho = a->out_dims[2], Wo = a->out_dims[3];
    res = a->out;
    for (int64_t p = 0; p < n * ct; p++) {
      const float *src = mid + p * H * Wd;
      float *dst = res + p * Ho * Wo;
      for (int64_t y = 0; y < Ho; y++) {
        int64_t y0, y1;
        float wy;
        lin_coord(y, H, Ho, &y0, &y1, &wy);
        for (int64_t xo = 0; xo < Wo; xo++) {
          int64_t x0, x1;
          float wx;
          lin_coord(xo, Wd, Wo, &x0, &x1, &wx);
          dst[y * Wo + xo] = (1 - wy) * ((1 - wx) * src[y0 * Wd + x0] + wx * src[y0 * Wd + x1]) +
                             wy * ((1 - wx) * src[y1 * Wd + x0] + wx * src[y1 * Wd + x1]);
        }
      }
    }
  }
  out->data = res;
  memcpy(out->dims, a->out_dims, sizeof(int64_t) * (size_t)a->rank);
  return OD_OK;
}

void od_adapter_backward(struct od_adapter_plan *a, struct od_params *ps, const struct od_tensor *S,
                         const float *dout, float *dS) {
  int64_t n = a->in_dims[0], cs = a->in_dims[1], ct = a->mid_dims[1], hw = spatial(a->in_dims, a->rank);
  if (od_adapter_identity(a)) {
    for (int64_t i = 0; i < n * cs * hw; i++) dS[i] += dout[i];
    return;
  }
  const float *dmid = dout;
  if (a->resize) { /* transpose of the bilinear map: scatter each output gradient to its 4 sources */
    int64_t H = a->mid_dims[2], Wd = a->mid_dims[3], Ho = a->out_dims[2], Wo = a->out_dims[3];
    float *dm = a->conv ? a->dmid : NULL;
    if (!dm) dm = dS; /* no conv: the resize's input is S itself, accumulate straight into dS */
    else memset(dm, 0, sizeof(float) * (size_t)(n * ct * H * Wd));
    for (int64_t p = 0; p < n * ct; p++) {
      const float *g = dout + p * Ho * Wo;
      float *d = dm + p * H * Wd;
      for (int64_t y = 0; y < Ho; y++) {
        int64_t y0, y1;
        float wy;
        lin_coord(y, H, Ho, &y0, &y1, &wy);
        for (int64_t xo = 0; xo < Wo; xo++) {
          int64_t x0, x1;
          float wx;
          lin_coord(xo, Wd, Wo, &x0, &x1, &wx);
          float gv = g[y * Wo + xo];
          d[y0 * Wd + x0] += (1 - wy) * (1 - wx) * gv;
          d[y0 * Wd + x1] += (1 - wy) * wx * gv;
          d[y1 * Wd + x0] += wy * (1 - wx) * gv;
          d[y1 * Wd + x1] += wy * wx * gv;
        }
      }
    }
    if (!a->conv) return;
    dmid = a->dmid;
  }
  /* conv: dW += sum_i dmid_i [Ct, HW] * x_i^T [HW, Cs]; db += sum over i, HW; dx_i += W^T dmid_i */
  const float *x = S->data;
  const float *W = ps->w + ps->p[a->w_param].offset;
  float *dW = ps->g + ps->p[a->w_param].offset, *db = ps->g + ps->p[a->b_param].offset;
  for (int64_t i = 0; i < n; i++) {
    const float *g = dmid + i * ct * hw;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ct, (int)cs, (int)hw, 1.0f, g, (int)hw,
                x + i * cs * hw, (int)hw, 1.0f, dW, (int)cs);
    for (int64_t c = 0; c < ct; c++) {
      double s = 0;
      for (int64_t k = 0; k < hw; k++) s += g[c * hw + k];
      db[c] += (float)s;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cs, (int)hw, (int)ct, 1.0f, W, (int)cs, g, (int)hw,
                1.0f, dS + i * cs * hw, (int)hw);
  }
}

void od_adapter_free(struct od_adapter_plan *a) {
  if (!a) return;
  free(a->mid);
  free(a->dmid);
  free(a->out);
  a->mid = a->dmid = a->out = NULL;
}
