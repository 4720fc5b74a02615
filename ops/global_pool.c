/* ops/global_pool.c: ONNX GlobalAveragePool and GlobalMaxPool, opsets 1 and 22 (22 only adds
 * bfloat16/float16). X (N, C, D1, ..., Dn) -> Y (N, C, 1, ..., 1): the mean / max over all spatial
 * positions of each (n, c) plane. An input of rank 2 (no spatial dims) is passed through.
 *
 * dtypes: float, double. The mean sums in double. Backward: float, double (see above it).
 * Spec: https://onnx.ai/onnx/operators/onnx__GlobalAveragePool.html, onnx__GlobalMaxPool.html */
#include <math.h>

#include "ops/global_pool.h"
#include "ops/op.h"
#include "runtime/pool.h"

static enum od_status global_maxpool_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  ((struct global_pool_attrs *)attrs)->is_max = true;
  return OD_OK;
}

static enum od_status global_avgpool_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  ((struct global_pool_attrs *)attrs)->is_max = false;
  return OD_OK;
}

static enum od_status global_pool_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *x = &ctx->in[0];
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "input dtype %s is not supported (float, double)",
                      od_dtype_name(x->dtype));
  if (x->rank < 2) {
    char s[128];
    return od_err_set(ctx->err, OD_ERR_SHAPE, "X %s must have rank >= 2 (N, C, spatial...)",
                      od_shape_str(x->rank, x->dims, s, sizeof s));
  }
  struct od_tensor *y = &ctx->out[0];
  *y = *x;
  y->data = NULL;
  for (int d = 2; d < x->rank; d++) y->dims[d] = 1;
  return OD_OK;
}

struct global_pool_task {
  const void *x;
  void *y;
  int64_t plane;                /* spatial elements per (n, c) */
  bool is_max;
};

#define GLOBAL_POOL_DEFINE(NAME, T)                                               \
  static void global_pool_##NAME(void *vt, int64_t begin, int64_t end) {         \
    const struct global_pool_task *t = vt;                                       \
    for (int64_t p = begin; p < end; p++) {                                      \
      const T *x = (const T *)t->x + p * t->plane;                               \
      if (t->is_max) {                                                           \
        T m = -INFINITY;                                                         \
        for (int64_t i = 0; i < t->plane; i++) m = x[i] > m ? x[i] : m;          \
        ((T *)t->y)[p] = m;                                                      \
      } else {                                                                   \
        double s = 0;                                                            \
        for (int64_t i = 0; i < t->plane; i++) s += x[i];                        \
        ((T *)t->y)[p] = (T)(t->plane ? s / (double)t->plane : NAN);             \
      }                                                                          \
    }                                                                            \
  }

GLOBAL_POOL_DEFINE(f32, float)
GLOBAL_POOL_DEFINE(f64, double)

static enum od_status global_pool_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct global_pool_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  int64_t planes = x->dims[0] * x->dims[1];
  struct global_pool_task t = {x->data, ctx->out[0]->data, planes ? od_tensor_numel(x) / planes : 0, a->is_max};
  int64_t per = t.plane > 0 ? t.plane : 1;
  od_pool_parallel_for(ctx->pool, planes, (16384 + per - 1) / per,
                       x->dtype == OD_DTYPE_FLOAT ? global_pool_f32 : global_pool_f64, &t);
  return OD_OK;
}

/* Backward, per (n, c) plane of P positions:
 *   GlobalAveragePool: dX[p, :] += dY[p] / P
 *   GlobalMaxPool:     dX[p, i] += dY[p] at the plane's first maximum i (the forward's max). */
struct global_pool_bwd_task {
  const void *x, *dy;
  void *dx;
  int64_t plane;
  bool is_max;
};

#define GLOBAL_POOL_BWD_DEFINE(NAME, T)                                           \
  static void global_pool_bwd_##NAME(void *vt, int64_t begin, int64_t end) {     \
    const struct global_pool_bwd_task *t = vt;                                   \
    for (int64_t p = begin; p < end; p++) {                                      \
      const T *x = (const T *)t->x + p * t->plane;                               \
      T *dx = (T *)t->dx + p * t->plane, d = ((const T *)t->dy)[p];              \
      if (t->is_max) {                                                           \
        int64_t best = 0;                                                        \
        for (int64_t i = 1; i < t->plane; i++)                                   \
          if (x[i] > x[best]) best = i;                                          \
        if (t->plane) dx[best] += d;                                             \
      } else {                                                                   \
        T share = (T)((double)d / (double)t->plane);                             \
        for (int64_t i = 0; i < t->plane; i++) dx[i] += share;                   \
      }                                                                          \
    }                                                                            \
  }

GLOBAL_POOL_BWD_DEFINE(f32, float)
GLOBAL_POOL_BWD_DEFINE(f64, double)

static enum od_status global_pool_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct global_pool_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *dy = ctx->dout[0];
  if (!dy || !ctx->din[0]) return OD_OK;
  int64_t planes = x->dims[0] * x->dims[1];
  struct global_pool_bwd_task t = {x->data, dy->data, ctx->din[0]->data, planes ? od_tensor_numel(x) / planes : 0,
                                   a->is_max};
  int64_t per = t.plane > 0 ? t.plane : 1;
  od_pool_parallel_for(ctx->pool, planes, (16384 + per - 1) / per,
                       x->dtype == OD_DTYPE_FLOAT ? global_pool_bwd_f32 : global_pool_bwd_f64, &t);
  return OD_OK;
}

const struct od_op_kernels od_kernels_global_maxpool = {
    .attrs_size = sizeof(struct global_pool_attrs),
    .parse = global_maxpool_parse,
    .infer = global_pool_infer,
    .forward = {[OD_DEVICE_CPU] = global_pool_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_global_pool_fwd)},
    .backward = {[OD_DEVICE_CPU] = global_pool_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_global_pool_bwd)},
    .flags = OD_OP_BWD_FRESH,
    .dtypes = "float, double",
};

const struct od_op_kernels od_kernels_global_averagepool = {
    .attrs_size = sizeof(struct global_pool_attrs),
    .parse = global_avgpool_parse,
    .infer = global_pool_infer,
    .forward = {[OD_DEVICE_CPU] = global_pool_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_global_pool_fwd)},
    .backward = {[OD_DEVICE_CPU] = global_pool_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_global_pool_bwd)},
    .flags = OD_OP_BWD_FRESH,
    .dtypes = "float, double",
};
