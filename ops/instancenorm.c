/* ops/instancenorm.c: ONNX InstanceNormalization (opsets 1, 6, 22: 1 had 'consumed_inputs', which is
 * ignored; 22 added bfloat16). dtypes: float, double.
 * Spec: https://onnx.ai/onnx/operators/onnx__InstanceNormalization.html
 *
 *   X (N, C, D1..Dn), scale (C), B (C):
 *   Y[n, c, :] = scale[c] * (X[n, c, :] - mean) / sqrt(var + epsilon) + B[c]
 * with mean and population variance over the spatial positions of each (image, channel) plane,
 * accumulated in double (two passes). Planes run in parallel on the pool.
 * Backward (float, double): dX through the plane statistics, dscale, dB (see the backward). */
#include <math.h>
#include <stdlib.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "runtime/pool.h"

struct instancenorm_attrs {
  float epsilon;
};

static enum od_status instancenorm_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct instancenorm_attrs *a = attrs;
  return od_attr_get_float(node, "epsilon", 1e-5f, &a->epsilon, err);
}

static enum od_status instancenorm_check(const struct od_tensor *x, const struct od_tensor *s,
                                         const struct od_tensor *b, struct od_err *err) {
  char s1[128], s2[128];
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "input has dtype %s; InstanceNormalization supports float and double",
                      od_dtype_name(x->dtype));
  if (s->dtype != x->dtype || b->dtype != x->dtype)
    return od_err_set(err, OD_ERR_SHAPE, "input is %s but scale is %s and B is %s", od_dtype_name(x->dtype),
                      od_dtype_name(s->dtype), od_dtype_name(b->dtype));
  if (x->rank < 2)
    return od_err_set(err, OD_ERR_SHAPE, "input has shape %s; expected (N, C, D1..Dn)",
                      od_shape_str(x->rank, x->dims, s1, sizeof s1));
  if (od_tensor_numel(s) != x->dims[1] || od_tensor_numel(b) != x->dims[1] || s->rank != 1 || b->rank != 1)
    return od_err_set(err, OD_ERR_SHAPE, "scale %s and B %s must both be [%lld] (the input's channels)",
                      od_shape_str(s->rank, s->dims, s1, sizeof s1), od_shape_str(b->rank, b->dims, s2, sizeof s2),
                      (long long)x->dims[1]);
  return OD_OK;
}

static enum od_status instancenorm_infer(struct od_infer_ctx *ctx) {
  if (ctx->n_in != 3)
    return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "InstanceNormalization needs 3 inputs, got %d", ctx->n_in);
  OD_TRY(instancenorm_check(&ctx->in[0], &ctx->in[1], &ctx->in[2], ctx->err));
  ctx->out[0] = ctx->in[0];
  ctx->out[0].data = NULL;
  return OD_OK;
}

struct instancenorm_job {
  const struct od_tensor *x, *s, *b;
  struct od_tensor *y;
  int64_t C, P;
  double eps;
};

/* Planes [begin, end) of the N * C planes of P elements. */
#define OD_INSTANCENORM_PLANE(T)                                                   \
  do {                                                                            \
    const T *x = (const T *)j->x->data + p * j->P;                                \
    T *y = (T *)j->y->data + p * j->P;                                            \
    double s = 0, ss = 0;                                                         \
    for (int64_t i = 0; i < j->P; i++) s += x[i];                                 \
    double mu = j->P ? s / (double)j->P : 0;                                      \
    for (int64_t i = 0; i < j->P; i++) ss += ((double)x[i] - mu) * ((double)x[i] - mu); \
    double var = j->P ? ss / (double)j->P : 0;                                    \
    double m = ((const T *)j->s->data)[c] / sqrt(var + j->eps);                   \
    double a = ((const T *)j->b->data)[c] - mu * m;                               \
    for (int64_t i = 0; i < j->P; i++) y[i] = (T)(x[i] * m + a);                  \
  } while (0)

static void instancenorm_planes(void *ctx, int64_t begin, int64_t end) {
  const struct instancenorm_job *j = ctx;
  for (int64_t p = begin; p < end; p++) {
    int64_t c = p % j->C;
    if (j->x->dtype == OD_DTYPE_FLOAT) OD_INSTANCENORM_PLANE(float);
    else OD_INSTANCENORM_PLANE(double);
  }
}

static enum od_status instancenorm_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct instancenorm_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  OD_TRY(instancenorm_check(x, ctx->in[1], ctx->in[2], ctx->err));
  int64_t P = 1;
  for (int i = 2; i < x->rank; i++) P *= x->dims[i];
  struct instancenorm_job j = {x, ctx->in[1], ctx->in[2], ctx->out[0], x->dims[1], P, a->epsilon};
  od_pool_parallel_for(ctx->pool, x->dims[0] * x->dims[1], 16384 / (P + 1) + 1, instancenorm_planes, &j);
  return OD_OK;
}

/* Backward. Per plane (n, c) of P elements, with inv = 1 / sqrt(var + epsilon), xhat = (X - mean)
 * * inv (the plane's own statistics), and the plane sums S1 = sum dY, S2 = sum dY * xhat:
 *   term 1: dB[c]     += S1 summed over images
 *   term 2: dscale[c] += S2 summed over images
 *   term 3: dX        += scale[c] * inv / P * (P * dY - S1 - xhat * S2)   (through mean and var)
 * Planes run in parallel; the per-plane sums go through a buffer so dscale/dB add up serially. */
struct instancenorm_bwd_job {
  const struct od_tensor *x, *s, *dy, *dx;  /* dx NULL: not wanted */
  double *sums;                             /* 2 per plane: S1, S2 */
  int64_t C, P;
  double eps;
};

#define OD_INSTANCENORM_PLANE_BWD(T)                                                          \
  do {                                                                                       \
    const T *x = (const T *)j->x->data + p * j->P, *dy = (const T *)j->dy->data + p * j->P;  \
    double s = 0, ss = 0, s1 = 0, s2 = 0;                                                    \
    for (int64_t i = 0; i < j->P; i++) s += x[i];                                            \
    double mu = j->P ? s / (double)j->P : 0;                                                 \
    for (int64_t i = 0; i < j->P; i++) ss += ((double)x[i] - mu) * ((double)x[i] - mu);      \
    double inv = 1.0 / sqrt((j->P ? ss / (double)j->P : 0) + j->eps);                        \
    for (int64_t i = 0; i < j->P; i++) {                                                     \
      s1 += dy[i];                                                                           \
      s2 += dy[i] * (((double)x[i] - mu) * inv);                                             \
    }                                                                                        \
    j->sums[2 * p] = s1;                                                                     \
    j->sums[2 * p + 1] = s2;                                                                 \
    if (j->dx && j->P) {                                                                     \
      T *dx = (T *)j->dx->data + p * j->P;                                                   \
      double k = (double)((const T *)j->s->data)[c] * inv, c1 = k * s1 / (double)j->P,       \
             c2 = k * s2 / (double)j->P;                                                     \
      for (int64_t i = 0; i < j->P; i++) dx[i] += (T)(k * dy[i] - c1 - c2 * (((double)x[i] - mu) * inv)); \
    }                                                                                        \
  } while (0)

static void instancenorm_planes_bwd(void *ctx, int64_t begin, int64_t end) {
  const struct instancenorm_bwd_job *j = ctx;
  for (int64_t p = begin; p < end; p++) {
    int64_t c = p % j->C;
    if (j->x->dtype == OD_DTYPE_FLOAT) OD_INSTANCENORM_PLANE_BWD(float);
    else OD_INSTANCENORM_PLANE_BWD(double);
  }
}

static enum od_status instancenorm_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct instancenorm_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *dy = ctx->dout[0];
  struct od_tensor *dscale = ctx->din[1], *dbias = ctx->din[2];
  if (!dy) return OD_OK;
  OD_TRY(instancenorm_check(x, ctx->in[1], ctx->in[2], ctx->err));
  int64_t N = x->dims[0], C = x->dims[1], P = 1;
  for (int i = 2; i < x->rank; i++) P *= x->dims[i];
  double *sums = malloc(sizeof(double) * (size_t)(2 * N * C + 1));
  if (!sums) return od_err_set(ctx->err, OD_ERR_OOM, "InstanceNormalization backward: out of memory");
  struct instancenorm_bwd_job j = {x, ctx->in[1], dy, ctx->din[0], sums, C, P, a->epsilon};
  od_pool_parallel_for(ctx->pool, N * C, 16384 / (P + 1) + 1, instancenorm_planes_bwd, &j);
  for (int64_t c = 0; c < C; c++) {
    double s1 = 0, s2 = 0;
    for (int64_t n = 0; n < N; n++) {
      s1 += sums[2 * (n * C + c)];
      s2 += sums[2 * (n * C + c) + 1];
    }
    if (dbias) od_tensor_set_f64(dbias, c, od_tensor_get_f64(dbias, c) + s1);
    if (dscale) od_tensor_set_f64(dscale, c, od_tensor_get_f64(dscale, c) + s2);
  }
  free(sums);
  return OD_OK;
}

const struct od_op_kernels od_kernels_instancenorm = {
    .attrs_size = sizeof(struct instancenorm_attrs),
    .parse = instancenorm_parse,
    .infer = instancenorm_infer,
    .forward = {[OD_DEVICE_CPU] = instancenorm_forward_cpu},
    .backward = {[OD_DEVICE_CPU] = instancenorm_backward_cpu},
    .dtypes = "float, double",
};
