/* ops/batchnorm.c: ONNX BatchNormalization (opsets 1, 6, 7, 9, 14, 15). dtypes: X float or double;
 * scale, B, mean, var any of float, double, float16, bfloat16 (read as double).
 * Spec: https://onnx.ai/onnx/operators/onnx__BatchNormalization.html
 *
 * Inference:  Y = (X - mean) / sqrt(var + epsilon) * scale + B,  per channel (X is (N, C, D1..Dn)).
 * Training (training_mode=1 from opset 14, or the executor's training flag): mean and var are the
 * batch statistics over (N, D1..Dn), population variance (divide by the count, not count - 1), and
 *   running_mean = input_mean * momentum + batch_mean * (1 - momentum)
 *   running_var  = input_var  * momentum + batch_var  * (1 - momentum)
 *
 * Versions:
 *   1, 6: 'is_test' (ignored: inference unless the executor trains), 'spatial', 'consumed_inputs'.
 *   7:    'is_test' removed. Up to 8, spatial=0 gives scale/B/mean/var the shape (C, D1..Dn): one
 *         statistic per (channel, position) instead of per channel.
 *   9:    'spatial' removed (always per channel).
 *   1-13: outputs Y, mean, var, saved_mean, saved_var; the last four only in training. Here
 *         mean/var are the running statistics as above and saved_mean/saved_var the batch mean and
 *         batch (population) variance.
 *   14:   'training_mode'; outputs Y, running_mean, running_var (the latter two only in training).
 *   15:   scale/B (T1) and mean/var (T2) may have a dtype other than X's.
 * Outside training the extra outputs are not valid ONNX; we still fill running mean/var with the
 * inputs (nothing changes them) and reject saved_mean/saved_var.
 * When the executor compiles for training (od_compile_opts.training), the running statistics are
 * also written back in place into inputs mean and var: they are the model's state.
 *
 * Backward (float, double): dX, dscale, dB, in inference mode (affine) or training mode (through
 * the batch statistics); see bn_backward_cpu. */
#include <math.h>
#include <stdlib.h>

#include "ops/attr.h"
#include "ops/batchnorm.h"
#include "ops/op.h"
#include "runtime/pool.h"

static enum od_status bn_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct bn_attrs *a = attrs;
  int64_t v;
  OD_TRY(od_attr_get_float(node, "epsilon", 1e-5f, &a->epsilon, err));
  OD_TRY(od_attr_get_float(node, "momentum", 0.9f, &a->momentum, err));
  a->spatial = true;
  if (node->opset < 9) {
    OD_TRY(od_attr_get_int(node, "spatial", 1, &v, err));
    a->spatial = v != 0;
  }
  if (node->opset < 7) OD_TRY(od_attr_get_int(node, "is_test", 0, &v, err)); /* type check only */
  if (node->opset >= 14) {
    OD_TRY(od_attr_get_int(node, "training_mode", 0, &v, err));
    a->training_mode = v != 0;
  }
  return OD_OK;
}

/* Number of statistics F (C, or C * D1..Dn for spatial=0) and elements per statistic per image P. */
static enum od_status bn_check(const struct bn_attrs *a, const struct od_tensor *in, int n_in, int64_t *F,
                               int64_t *P, struct od_err *err) {
  static const char *const names[] = {"X", "scale", "B", "mean", "var"};
  char s1[128], s2[128];
  if (n_in != 5) return od_err_set(err, OD_ERR_INVALID_MODEL, "BatchNormalization needs 5 inputs, got %d", n_in);
  const struct od_tensor *x = &in[0];
  if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "X has dtype %s; BatchNormalization supports float and double",
                      od_dtype_name(x->dtype));
  if (x->rank < 2)
    return od_err_set(err, OD_ERR_SHAPE, "X has shape %s; expected (N, C, D1..Dn)",
                      od_shape_str(x->rank, x->dims, s1, sizeof s1));
  int64_t plane = 1;
  for (int i = 2; i < x->rank; i++) plane *= x->dims[i];
  *F = a->spatial ? x->dims[1] : x->dims[1] * plane;
  *P = a->spatial ? plane : 1;
  for (int i = 1; i < 5; i++) {
    const struct od_tensor *t = &in[i];
    if (!od_dtype_is_float(t->dtype))
      return od_err_set(err, OD_ERR_SHAPE, "%s has dtype %s; expected a float type", names[i], od_dtype_name(t->dtype));
    if (od_tensor_numel(t) != *F)
      return od_err_set(err, OD_ERR_SHAPE, "%s has shape %s; X %s needs %lld values%s", names[i],
                        od_shape_str(t->rank, t->dims, s1, sizeof s1), od_shape_str(x->rank, x->dims, s2, sizeof s2),
                        (long long)*F, a->spatial ? " (one per channel)" : " (spatial=0: one per channel and position)");
  }
  return OD_OK;
}

static enum od_status bn_infer(struct od_infer_ctx *ctx) {
  int64_t F, P;
  OD_TRY(bn_check(ctx->attrs, ctx->in, ctx->n_in, &F, &P, ctx->err));
  int max_out = ctx->node->opset >= 14 ? 3 : 5;
  if (ctx->n_out > max_out)
    return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "BatchNormalization-%lld has at most %d outputs, got %d",
                      (long long)ctx->node->opset, max_out, ctx->n_out);
  ctx->out[0].dtype = ctx->in[0].dtype;
  ctx->out[0].rank = ctx->in[0].rank;
  for (int i = 0; i < ctx->in[0].rank; i++) ctx->out[0].dims[i] = ctx->in[0].dims[i];
  for (int i = 1; i < ctx->n_out; i++) {
    /* running mean/var keep the statistics' dtype (T2 / U from 14; T before); saved_* are X's */
    const struct od_tensor *like = i <= 2 ? &ctx->in[2 + i] : &ctx->in[0];
    ctx->out[i].dtype = ctx->node->opset >= 14 ? like->dtype : ctx->in[0].dtype;
    ctx->out[i].rank = ctx->in[3].rank;
    for (int d = 0; d < ctx->in[3].rank; d++) ctx->out[i].dims[d] = ctx->in[3].dims[d];
  }
  return OD_OK;
}

/* Y = X * mul[f] + add[f] over rows (n, f) of P elements. */
struct bn_apply_job {
  int dtype;
  const void *x;
  void *y;
  const double *mul, *add;
  int64_t F, P;
};

static void bn_apply_rows(void *ctx, int64_t begin, int64_t end) {
  const struct bn_apply_job *j = ctx;
  for (int64_t r = begin; r < end; r++) {
    int64_t f = r % j->F, o = r * j->P;
    if (j->dtype == OD_DTYPE_FLOAT) {
      const float *x = (const float *)j->x + o;
      float *y = (float *)j->y + o, m = (float)j->mul[f], b = (float)j->add[f];
      for (int64_t i = 0; i < j->P; i++) y[i] = x[i] * m + b;
    } else {
      const double *x = (const double *)j->x + o;
      double *y = (double *)j->y + o, m = j->mul[f], b = j->add[f];
      for (int64_t i = 0; i < j->P; i++) y[i] = x[i] * m + b;
    }
  }
}

/* Batch mean and population variance of each statistic f over (N, P), two passes in double. */
struct bn_stats_job {
  const struct od_tensor *x;
  int64_t N, F, P;
  double *mean, *var;
};

static void bn_stats(void *ctx, int64_t begin, int64_t end) {
  const struct bn_stats_job *j = ctx;
  double count = (double)(j->N * j->P);
  for (int64_t f = begin; f < end; f++) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < j->N; n++) {
      int64_t o = (n * j->F + f) * j->P;
      if (j->x->dtype == OD_DTYPE_FLOAT)
        for (int64_t i = 0; i < j->P; i++) s += ((const float *)j->x->data)[o + i];
      else
        for (int64_t i = 0; i < j->P; i++) s += ((const double *)j->x->data)[o + i];
    }
    double mu = count > 0 ? s / count : 0;
    for (int64_t n = 0; n < j->N; n++) {
      int64_t o = (n * j->F + f) * j->P;
      for (int64_t i = 0; i < j->P; i++) {
        double d = (j->x->dtype == OD_DTYPE_FLOAT ? ((const float *)j->x->data)[o + i]
                                                 : ((const double *)j->x->data)[o + i]) - mu;
        ss += d * d;
      }
    }
    j->mean[f] = mu;
    j->var[f] = count > 0 ? ss / count : 0;
  }
}

static enum od_status bn_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct bn_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *scale = ctx->in[1], *bias = ctx->in[2], *mean = ctx->in[3],
                         *var = ctx->in[4];
  struct od_tensor *y = ctx->out[0];
  int64_t F, P;
  {
    struct od_tensor in[5];
    for (int i = 0; i < 5 && i < ctx->n_in; i++) in[i] = *ctx->in[i];
    OD_TRY(bn_check(a, in, ctx->n_in, &F, &P, ctx->err));
  }
  bool training = a->training_mode || ctx->training;
  bool old = ctx->node->opset < 14;
  if (!training && old && ctx->n_out > 3 && (ctx->out[3] || (ctx->n_out > 4 && ctx->out[4])))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED,
                      "outputs saved_mean/saved_var exist only in training; this model runs BatchNormalization "
                      "in inference mode");
  int64_t N = x->dims[0];
  double *buf = malloc(sizeof(double) * (size_t)(4 * F + 1));
  if (!buf) return od_err_set(ctx->err, OD_ERR_OOM, "BatchNormalization: out of memory");
  double *mul = buf, *add = buf + F, *bmean = buf + 2 * F, *bvar = buf + 3 * F;

  if (training) {
    struct bn_stats_job sj = {x, N, F, P, bmean, bvar};
    od_pool_parallel_for(ctx->pool, F, 16384 / (N * P + 1) + 1, bn_stats, &sj);
  } else {
    for (int64_t f = 0; f < F; f++) {
      bmean[f] = od_tensor_get_f64(mean, f);
      bvar[f] = od_tensor_get_f64(var, f);
    }
  }
  for (int64_t f = 0; f < F; f++) {
    mul[f] = od_tensor_get_f64(scale, f) / sqrt(bvar[f] + (double)a->epsilon);
    add[f] = od_tensor_get_f64(bias, f) - bmean[f] * mul[f];
  }
  struct bn_apply_job aj = {x->dtype, x->data, y->data, mul, add, F, P};
  od_pool_parallel_for(ctx->pool, N * F, 16384 / (P + 1) + 1, bn_apply_rows, &aj);

  /* Optional outputs: 1, 2 running mean / var; 3, 4 (opset < 14) saved (batch) mean / var. */
  double mom = a->momentum;
  for (int i = 1; i < ctx->n_out; i++) {
    struct od_tensor *o = ctx->out[i];
    if (!o) continue;
    for (int64_t f = 0; f < F; f++) {
      double v;
      if (i == 1) v = training ? od_tensor_get_f64(mean, f) * mom + bmean[f] * (1 - mom) : od_tensor_get_f64(mean, f);
      else if (i == 2) v = training ? od_tensor_get_f64(var, f) * mom + bvar[f] * (1 - mom) : od_tensor_get_f64(var, f);
      else v = i == 3 ? bmean[f] : bvar[f];
      od_tensor_set_f64(o, f, v);
    }
  }
  /* Compiled for training (the executor's flag, not the attribute alone): the running statistics
   * are state, updated in place in inputs mean and var (after the outputs above read them). */
  if (ctx->training)
    for (int64_t f = 0; f < F; f++) {
      od_tensor_set_f64(ctx->in[3], f, od_tensor_get_f64(mean, f) * mom + bmean[f] * (1 - mom));
      od_tensor_set_f64(ctx->in[4], f, od_tensor_get_f64(var, f) * mom + bvar[f] * (1 - mom));
    }
  free(buf);
  return OD_OK;
}

/* ---- backward ---- */

/* Per statistic f, with inv = 1 / sqrt(var + epsilon), xhat = (X - mean) * inv, Y = scale * xhat + B
 * and the sums S1 = sum dY, S2 = sum dY * xhat over the m = N * P elements of f:
 *   term 1: dB[f]     += S1
 *   term 2: dscale[f] += S2
 *   term 3 (inference: mean and var are constants): dX += dY * scale * inv
 *   term 3 (training: mean and var are the batch statistics of X, so dX also flows through them):
 *           dX += scale * inv / m * (m * dY - S1 - xhat * S2)
 * mean and var (inputs 3, 4) are state and take no gradient; nor do the optional outputs. */
struct bn_bwd_job {
  int dtype;
  const void *x, *dy;
  void *dx;                      /* NULL: not wanted */
  const double *mean, *inv, *scale;
  double *s1, *s2;               /* per statistic */
  int64_t N, F, P;
  bool training;
};

static void bn_bwd(void *ctx, int64_t begin, int64_t end) {
  const struct bn_bwd_job *j = ctx;
  double m = (double)(j->N * j->P);
  for (int64_t f = begin; f < end; f++) {
    double mu = j->mean[f], inv = j->inv[f], s1 = 0, s2 = 0;
    for (int64_t n = 0; n < j->N; n++) {
      int64_t o = (n * j->F + f) * j->P;
      if (j->dtype == OD_DTYPE_FLOAT) {
        const float *x = (const float *)j->x + o, *dy = (const float *)j->dy + o;
        for (int64_t i = 0; i < j->P; i++) {
          s1 += dy[i];
          s2 += dy[i] * ((x[i] - mu) * inv);
        }
      } else {
        const double *x = (const double *)j->x + o, *dy = (const double *)j->dy + o;
        for (int64_t i = 0; i < j->P; i++) {
          s1 += dy[i];
          s2 += dy[i] * ((x[i] - mu) * inv);
        }
      }
    }
    j->s1[f] = s1;
    j->s2[f] = s2;
    if (!j->dx) continue;
    double k = j->scale[f] * inv, c1 = 0, c2 = 0; /* dX = k * dY - c1 - c2 * xhat */
    if (j->training && m > 0) {
      c1 = k * s1 / m;
      c2 = k * s2 / m;
    }
    for (int64_t n = 0; n < j->N; n++) {
      int64_t o = (n * j->F + f) * j->P;
      if (j->dtype == OD_DTYPE_FLOAT) {
        const float *x = (const float *)j->x + o, *dy = (const float *)j->dy + o;
        float *dx = (float *)j->dx + o;
        for (int64_t i = 0; i < j->P; i++) dx[i] += (float)(k * dy[i] - c1 - c2 * ((x[i] - mu) * inv));
      } else {
        const double *x = (const double *)j->x + o, *dy = (const double *)j->dy + o;
        double *dx = (double *)j->dx + o;
        for (int64_t i = 0; i < j->P; i++) dx[i] += k * dy[i] - c1 - c2 * ((x[i] - mu) * inv);
      }
    }
  }
}

static enum od_status bn_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct bn_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0], *scale = ctx->in[1], *dy = ctx->dout[0];
  struct od_tensor *dx = ctx->din[0], *dscale = ctx->din[1], *dbias = ctx->din[2];
  if (!dy) return OD_OK; /* only Y is differentiated (the other outputs are statistics) */
  int64_t F, P;
  {
    struct od_tensor in[5];
    for (int i = 0; i < 5 && i < ctx->n_in; i++) in[i] = *ctx->in[i];
    OD_TRY(bn_check(a, in, ctx->n_in, &F, &P, ctx->err));
  }
  bool training = a->training_mode || ctx->training;
  int64_t N = x->dims[0];
  double *buf = malloc(sizeof(double) * (size_t)(6 * F + 1));
  if (!buf) return od_err_set(ctx->err, OD_ERR_OOM, "BatchNormalization backward: out of memory");
  double *mean = buf, *var = buf + F, *inv = buf + 2 * F, *sc = buf + 3 * F, *s1 = buf + 4 * F, *s2 = buf + 5 * F;
  if (training) {
    /* the batch statistics again (the running ones in inputs 3, 4 were updated in place) */
    struct bn_stats_job sj = {x, N, F, P, mean, var};
    od_pool_parallel_for(ctx->pool, F, 16384 / (N * P + 1) + 1, bn_stats, &sj);
  } else {
    for (int64_t f = 0; f < F; f++) {
      mean[f] = od_tensor_get_f64(ctx->in[3], f);
      var[f] = od_tensor_get_f64(ctx->in[4], f);
    }
  }
  for (int64_t f = 0; f < F; f++) {
    inv[f] = 1.0 / sqrt(var[f] + (double)a->epsilon);
    sc[f] = od_tensor_get_f64(scale, f);
  }
  struct bn_bwd_job j = {x->dtype, x->data, dy->data, dx ? dx->data : NULL, mean, inv, sc, s1, s2, N, F, P, training};
  od_pool_parallel_for(ctx->pool, F, 16384 / (N * P + 1) + 1, bn_bwd, &j);
  for (int64_t f = 0; f < F; f++) {
    if (dscale) od_tensor_set_f64(dscale, f, od_tensor_get_f64(dscale, f) + s2[f]);
    if (dbias) od_tensor_set_f64(dbias, f, od_tensor_get_f64(dbias, f) + s1[f]);
  }
  free(buf);
  return OD_OK;
}

const struct od_op_kernels od_kernels_batchnorm = {
    .bwd_reads = od_bwd_reads_inputs,
    .attrs_size = sizeof(struct bn_attrs),
    .parse = bn_parse,
    .infer = bn_infer,
    .forward = {[OD_DEVICE_CPU] = bn_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_batchnorm_fwd)},
    .backward = {[OD_DEVICE_CPU] = bn_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_batchnorm_bwd)},
    .no_grad_inputs = 1u << 3 | 1u << 4, /* mean, var: state */
    .flags = OD_OP_BWD_FRESH,
    .dtypes = "float, double",
};
