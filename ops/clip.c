/* ops/clip.c: ONNX Clip, Y = min(max(X, min), max) elementwise.
 * Spec: https://onnx.ai/onnx/operators/onnx__Clip.html
 *
 * Versions:
 *   1      attributes min and max, each optional (absent: that side is not clipped);
 *          consumed_inputs (an in-place hint) ignored.
 *   6      attributes min and max with defaults -FLT_MAX and FLT_MAX (so +-inf clip to +-FLT_MAX).
 *   11     min and max became optional scalar inputs of X's dtype (absent: not clipped).
 *   12, 13 integer dtypes, bfloat16.
 * dtypes: float, double, int8..int64, uint8..uint64; float16 and bfloat16 computed in float32.
 * min > max gives max everywhere (numpy's clip, the ONNX reference); NaN in X stays NaN.
 *
 * Backward (float and double): dX += dY where min <= X <= max (an absent bound does not limit),
 * else 0: PyTorch's clamp_backward convention, so the gradient passes at the boundaries themselves
 * (and with min > max, where the output is the constant max, nothing passes; NaN passes nothing).
 * The min and max inputs (opset 11+) take no gradient (no_grad_inputs): they are thresholds,
 * usually constants (ReLU6 exports); a learned bound is left to a later need. */
/* GCC 12's -O2 vectorises only loops whose trip count is a multiple of the vector width
 * ("very-cheap" cost model), and with -ftrapping-math (its default; clang's is off) it keeps the
 * compares of `x < 0 ? a : b` as branches. Nothing here reads floating-point exception flags, and
 * these elementwise loops are where vectorising pays (4-10x on cache-resident tensors). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic", "no-trapping-math")
#endif
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/elementwise.h"
#include "ops/ew_attrs.h" /* struct clip_attrs (read by ops/clip.cu too) */
#include "ops/op.h"

/* Bounds in the loop's element type (raw bytes, read with memcpy as T). */
struct clip_params {
  _Alignas(8) unsigned char lo[8];
  _Alignas(8) unsigned char hi[8];
  bool has_lo, has_hi;
};

#define CLIP_LOOP(CODE, T, U)                                                    \
  static void clip_##CODE(void *y_, const void *x_, int64_t n, const void *p_) { \
    const struct clip_params *p = p_;                                            \
    const T *x = x_;                                                             \
    T *y = y_;                                                                   \
    T lo, hi;                                                                    \
    memcpy(&lo, p->lo, sizeof lo);                                               \
    memcpy(&hi, p->hi, sizeof hi);                                               \
    if (p->has_lo && p->has_hi) {                                                \
      for (int64_t i = 0; i < n; i++) {                                          \
        T v = x[i] < lo ? lo : x[i];                                             \
        y[i] = v > hi ? hi : v;                                                  \
      }                                                                          \
    } else if (p->has_lo) {                                                      \
      for (int64_t i = 0; i < n; i++) y[i] = x[i] < lo ? lo : x[i];              \
    } else if (p->has_hi) {                                                      \
      for (int64_t i = 0; i < n; i++) y[i] = x[i] > hi ? hi : x[i];              \
    } else if (y != x) {                                                         \
      memcpy(y, x, (size_t)n * sizeof(T));                                       \
    }                                                                            \
  }
EW_NUM_TYPES(CLIP_LOOP)

#define CLIP_ENTRY(CODE, T, U) [OD_DTYPE_##CODE] = clip_##CODE,
static const ew_unary_fn clip_loops[EW_NDTYPES] = {EW_NUM_TYPES(CLIP_ENTRY)};

static enum od_status clip_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct clip_attrs *a = attrs;
  a->legacy = node->opset < 11;
  if (!a->legacy) return OD_OK;
  if (node->opset >= 6) {
    a->has_min = a->has_max = true;
    OD_TRY(od_attr_get_float(node, "min", -FLT_MAX, &a->min, err));
    OD_TRY(od_attr_get_float(node, "max", FLT_MAX, &a->max, err));
  } else {
    a->has_min = od_node_attr(node, "min") != NULL;
    a->has_max = od_node_attr(node, "max") != NULL;
    OD_TRY(od_attr_get_float(node, "min", 0, &a->min, err));
    OD_TRY(od_attr_get_float(node, "max", 0, &a->max, err));
  }
  return OD_OK;
}

static enum od_status clip_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *x = &ctx->in[0];
  if (ctx->n_in < 1 || !x->dtype) return od_err_set(ctx->err, OD_ERR_SHAPE, "input is missing");
  if (!ew_has_loop(clip_loops, x->dtype)) return ew_err_dtype(ctx->err, "Clip", x->dtype);
  for (int i = 1; i < ctx->n_in && i < 3; i++) {
    const struct od_tensor *b = &ctx->in[i];
    if (!b->dtype) continue;
    if (b->dtype != x->dtype)
      return od_err_set(ctx->err, OD_ERR_SHAPE, "input %s is %s, input is %s", i == 1 ? "min" : "max",
                        od_dtype_name(b->dtype), od_dtype_name(x->dtype));
    if (od_tensor_numel(b) != 1) {
      char sb[128];
      return od_err_set(ctx->err, OD_ERR_SHAPE, "input %s must be a scalar, has shape %s", i == 1 ? "min" : "max",
                        od_shape_str(b->rank, b->dims, sb, sizeof sb));
    }
  }
  ctx->out[0] = *x;
  ctx->out[0].data = NULL;
  return OD_OK;
}

/* One bound into the loop's type: an input of X's dtype is copied bit for bit (exact for int64);
 * a float16/bfloat16 input or an attribute goes through double. */
static void clip_bound(const struct od_tensor *t, double attr_value, int loop_dtype, unsigned char *out) {
  if (t && t->dtype == loop_dtype) {
    memcpy(out, t->data, od_dtype_size(loop_dtype));
    return;
  }
  struct od_tensor tmp = {.dtype = loop_dtype, .rank = 0, .data = out};
  od_tensor_set_f64(&tmp, 0, t ? od_tensor_get_f64(t, 0) : attr_value);
}

/* The bounds of this node in the loop's dtype lt, from the attributes or the inputs. */
static void clip_params_of(const struct od_kernel_ctx *ctx, int lt, struct clip_params *pp) {
  const struct clip_attrs *a = ctx->attrs;
  struct clip_params p = {0};
  if (a->legacy) {
    p.has_lo = a->has_min;
    p.has_hi = a->has_max;
    if (p.has_lo) clip_bound(NULL, a->min, lt, p.lo);
    if (p.has_hi) clip_bound(NULL, a->max, lt, p.hi);
  } else {
    const struct od_tensor *mn = ctx->n_in > 1 ? ctx->in[1] : NULL, *mx = ctx->n_in > 2 ? ctx->in[2] : NULL;
    p.has_lo = mn != NULL;
    p.has_hi = mx != NULL;
    if (mn) clip_bound(mn, 0, lt, p.lo);
    if (mx) clip_bound(mx, 0, lt, p.hi);
  }
  *pp = p;
}

static enum od_status clip_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *x = ctx->in[0];
  struct clip_params p;
  clip_params_of(ctx, ew_is_half(x->dtype) ? OD_DTYPE_FLOAT : x->dtype, &p);
  return ew_unary_run(ctx->pool, ctx->out[0], x, clip_loops, &p, 1 << 15, "Clip", ctx->err);
}

/* dx += dy where lo <= x <= hi (each bound only when present). */
#define CLIP_GRAD_LOOP(CODE, T, U)                                                                          \
  static void clip_grad_##CODE(void *dx_, const void *dy_, const void *x_, const void *y_, int64_t n,      \
                               const void *p_) {                                                            \
    const struct clip_params *p = p_;                                                                       \
    const T *x = x_, *dy = dy_;                                                                             \
    T *dx = dx_;                                                                                            \
    T lo, hi;                                                                                               \
    (void)y_;                                                                                               \
    memcpy(&lo, p->lo, sizeof lo);                                                                          \
    memcpy(&hi, p->hi, sizeof hi);                                                                          \
    if (!p->has_lo) lo = -INFINITY;                                                                         \
    if (!p->has_hi) hi = INFINITY;                                                                          \
    for (int64_t i = 0; i < n; i++) dx[i] += (x[i] >= lo && x[i] <= hi) ? dy[i] : 0;                        \
  }
EW_FLOAT_TYPES(CLIP_GRAD_LOOP)
static const ew_unary_grad_fn clip_grads[EW_NDTYPES] = {[OD_DTYPE_FLOAT] = clip_grad_FLOAT,
                                                        [OD_DTYPE_DOUBLE] = clip_grad_DOUBLE};

static enum od_status clip_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *x = ctx->in[0];
  if (!ctx->dout[0] || !ctx->din[0]) return OD_OK;
  struct clip_params p;
  clip_params_of(ctx, x->dtype, &p);
  return ew_unary_grad_run(ctx->pool, ctx->din[0], ctx->dout[0], x, NULL, clip_grads, &p, 1 << 15, "Clip", ctx->err);
}

const struct od_op_kernels od_kernels_clip = {.attrs_size = sizeof(struct clip_attrs),
                                              .parse = clip_parse,
                                              .infer = clip_infer,
                                              .forward = {[OD_DEVICE_CPU] = clip_forward_cpu,
                                                          [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_clip_fwd)},
                                              .backward = {[OD_DEVICE_CPU] = clip_backward_cpu,
                                                           [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_clip_bwd)},
                                              .no_grad_inputs = 0x6u, /* min, max: thresholds */
                                              .flags = OD_OP_FOLDABLE,
                                              .dtypes = "float, double, float16, bfloat16, int8..int64, uint8..uint64"};
