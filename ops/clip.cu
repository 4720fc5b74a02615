/* ops/clip.cu: CUDA forward and backward of Clip (ops/clip.c), every opset form: bounds from the
 * attributes (opsets 1, 6) or from the optional min/max inputs (11+). Float32.
 *   forward   y = min(max(x, lo), hi) as the CPU writes it (x < lo ? lo : x, then > hi ? hi), so
 *             NaN stays NaN and min > max gives max;
 *   backward  dx += dy where lo <= x <= hi, else 0 (an absent bound does not limit).
 * The min/max inputs are device scalars: the kernels read them themselves (one cached load per
 * element), so no copy to the host and no synchronisation. Flat grid-stride loops through
 * ew_apply (ops/cuda/ew.cuh), 4 elements per step when aligned. */
#include "ops/cuda/ew.cuh"

extern "C" {
#include "ops/ew_attrs.h"
}

/* The bounds: from device scalars (lo_p, hi_p) when given, else the values (+-inf: absent). */
struct clip_bounds {
  const float *lo_p, *hi_p;
  float lo_v, hi_v;
  __device__ float lo() const { return lo_p ? *lo_p : lo_v; }
  __device__ float hi() const { return hi_p ? *hi_p : hi_v; }
};

struct clip_fwd_f {
  static constexpr int N = 1;
  clip_bounds b;
  __device__ float operator()(float x, float, float, float) const {
    float lo = b.lo(), hi = b.hi();
    float v = x < lo ? lo : x;
    return v > hi ? hi : v;
  }
};

struct clip_bwd_f { /* (dx, dy, x) */
  static constexpr int N = 3;
  clip_bounds b;
  __device__ float operator()(float dx, float dy, float x, float) const {
    return dx + ((x >= b.lo() && x <= b.hi()) ? dy : 0.0f);
  }
};

/* The node's bounds (checking that every tensor involved is float32). */
static enum od_status clip_bounds_of(struct od_kernel_ctx *ctx, clip_bounds *b) {
  const struct clip_attrs *a = (const struct clip_attrs *)ctx->attrs;
  b->lo_p = b->hi_p = NULL;
  b->lo_v = -INFINITY;
  b->hi_v = INFINITY;
  if (a->legacy) {
    if (a->has_min) b->lo_v = a->min;
    if (a->has_max) b->hi_v = a->max;
    return OD_OK;
  }
  const struct od_tensor *t[2] = {ctx->n_in > 1 ? ctx->in[1] : NULL, ctx->n_in > 2 ? ctx->in[2] : NULL};
  OD_TRY(ew_need_f32(ctx, 2, t));
  if (t[0]) b->lo_p = (const float *)t[0]->data;
  if (t[1]) b->hi_p = (const float *)t[1]->data;
  return OD_OK;
}

extern "C" enum od_status od_cuda_clip_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *t[2] = {ctx->in[0], ctx->out[0]};
  OD_TRY(ew_need_f32(ctx, 2, t));
  clip_fwd_f f;
  OD_TRY(clip_bounds_of(ctx, &f.b));
  return ew_apply_t(ctx, f, ctx->out[0], t);
}

extern "C" enum od_status od_cuda_clip_bwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *dx = ctx->din[0];
  if (!ctx->dout[0] || !dx) return OD_OK;
  const struct od_tensor *t[3] = {dx, ctx->dout[0], ctx->in[0]};
  OD_TRY(ew_need_f32(ctx, 3, t));
  clip_bwd_f f;
  OD_TRY(clip_bounds_of(ctx, &f.b));
  return ew_apply_t(ctx, f, dx, t);
}
