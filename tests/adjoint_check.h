/* tests/adjoint_check.h: checks an op's backward_cpu as the adjoint of its forward, at sizes the
 * finite-difference gradcheck (tests/gradcheck_runner.c, double, small shapes) does not reach,
 * in float and double, serially and on a 2-thread pool. Included by the op family suites.
 *
 * For an op whose outputs are linear in its float inputs (every data-movement op and Resize:
 * Y = A x with x the float inputs stacked, Pad's constant_value included), the backward must give
 * g = A^T dY, so for random x and dY
 *     sum_o <dY_o, Y_o>  ==  sum_i <g_i, x_i>        (the dot-product test)
 * up to rounding: |lhs - rhs| <= tol * sum |terms| with tol 1e-12 in double, 1e-5 in float. A wrong
 * index or weight moves the two sides apart by O(1) of that sum. The backward must also accumulate
 * (din is pre-filled with random values, which are subtracted after), be deterministic (the pool
 * result equals the serial one bit for bit) and agree in float with double
 * (|g_float - g_double| <= 1e-4 * (1 + max |g_double|)). */
#ifndef OD_TESTS_ADJOINT_CHECK_H
#define OD_TESTS_ADJOINT_CHECK_H

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"
#include "runtime/pool.h"
#include "runtime/tensor.h"

#define ADJ_MAX_IO 8

struct adj_spec {
  const char *name;
  const char *op;
  int opset;
  struct od_attr *attrs;
  int n_attrs;
  int n_in;
  struct od_tensor in[ADJ_MAX_IO]; /* float inputs: shape only (dtype and data set per run); others
                                      complete; dtype 0 = omitted */
  unsigned float_inputs;           /* bit i: input i is a float input (random data, takes a gradient) */
  int n_out;
  unsigned no_dout;                /* bit o: no gradient flows into output o (dout NULL) */
};

static double adj_rand(uint64_t *s) { /* uniform in [-1, 1) */
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(*s >> 11) / 4503599627370496.0 - 1.0;
}

/* One run in dtype dt: g[i] (malloc'd doubles, numel of input i) gets the gradient of each float
 * input. Returns through ck_assert on failure. */
static void adj_run(const struct adj_spec *sp, int dt, struct od_pool *pool, double **g) {
  const struct od_op *op = od_op_find("", sp->op, sp->opset);
  ck_assert_msg(op != NULL, "%s: no kernel for %s-%d", sp->name, sp->op, sp->opset);
  const struct od_op_kernels *k = op->k;
  ck_assert_msg(k->backward[OD_DEVICE_CPU] != NULL, "%s: %s has no backward", sp->name, sp->op);
  int ids[ADJ_MAX_IO], outs[ADJ_MAX_IO];
  struct od_node node = {.name = "adjoint", .op_type = (char *)sp->op, .domain = "", .opset = sp->opset,
                         .n_inputs = sp->n_in, .inputs = ids, .n_outputs = sp->n_out, .outputs = outs,
                         .n_attrs = sp->n_attrs, .attrs = sp->attrs};
  struct od_tensor in[ADJ_MAX_IO], out[ADJ_MAX_IO], dout[ADJ_MAX_IO], din[ADJ_MAX_IO];
  struct od_tensor *inp[ADJ_MAX_IO], *outp[ADJ_MAX_IO], *doutp[ADJ_MAX_IO], *dinp[ADJ_MAX_IO];
  double *base[ADJ_MAX_IO] = {NULL};
  uint64_t seed = 0x2545f4914f6cdd1dull;
  struct od_err err = {0};
  memset(out, 0, sizeof out);
  for (int i = 0; i < sp->n_in; i++) {
    ids[i] = sp->in[i].dtype ? i : -1;
    in[i] = sp->in[i];
    inp[i] = in[i].dtype ? &in[i] : NULL;
    dinp[i] = NULL;
    if (!((sp->float_inputs >> i) & 1u)) continue;
    in[i].dtype = dt;
    int64_t n = od_tensor_numel(&in[i]);
    in[i].data = malloc(od_tensor_nbytes(&in[i]) + 1);
    for (int64_t e = 0; e < n; e++) od_tensor_set_f64(&in[i], e, adj_rand(&seed));
    din[i] = in[i];
    din[i].data = malloc(od_tensor_nbytes(&in[i]) + 1);
    base[i] = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t e = 0; e < n; e++) {
      base[i][e] = adj_rand(&seed);
      od_tensor_set_f64(&din[i], e, base[i][e]);
    }
    dinp[i] = &din[i];
  }
  for (int o = 0; o < sp->n_out; o++) outs[o] = sp->n_in + o;
  void *attrs = calloc(1, k->attrs_size + 1);
  if (k->parse) ck_assert_msg(k->parse(&node, attrs, &err) == OD_OK, "%s: parse: %s", sp->name, err.msg);
  struct od_infer_ctx ic = {.node = &node, .attrs = attrs, .n_in = sp->n_in, .in = in, .n_out = sp->n_out, .out = out,
                            .err = &err};
  ck_assert_msg(k->infer(&ic) == OD_OK && !ic.needs_values, "%s: infer: %s", sp->name, err.msg);
  for (int o = 0; o < sp->n_out; o++) {
    out[o].data = malloc(od_tensor_nbytes(&out[o]) + 1);
    outp[o] = &out[o];
    dout[o] = out[o];
    dout[o].data = malloc(od_tensor_nbytes(&out[o]) + 1);
    for (int64_t e = 0; e < od_tensor_numel(&out[o]); e++) od_tensor_set_f64(&dout[o], e, adj_rand(&seed));
    doutp[o] = (sp->no_dout >> o) & 1u ? NULL : &dout[o];
  }
  struct od_kernel_ctx kc = {.node = &node, .attrs = attrs, .n_in = sp->n_in, .in = inp, .n_out = sp->n_out,
                             .out = outp, .dout = doutp, .din = dinp, .pool = pool, .err = &err};
  ck_assert_msg(k->forward[OD_DEVICE_CPU](&kc) == OD_OK, "%s: forward: %s", sp->name, err.msg);
  ck_assert_msg(k->backward[OD_DEVICE_CPU](&kc) == OD_OK, "%s: backward: %s", sp->name, err.msg);
  double lhs = 0, rhs = 0, mag = 0;
  for (int o = 0; o < sp->n_out; o++) {
    if (!doutp[o]) continue;
    for (int64_t e = 0; e < od_tensor_numel(&out[o]); e++) {
      double t = od_tensor_get_f64(&dout[o], e) * od_tensor_get_f64(&out[o], e);
      lhs += t;
      mag += fabs(t);
    }
  }
  for (int i = 0; i < sp->n_in; i++) {
    if (!dinp[i]) continue;
    int64_t n = od_tensor_numel(&in[i]);
    g[i] = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t e = 0; e < n; e++) {
      g[i][e] = od_tensor_get_f64(&din[i], e) - base[i][e];
      double t = g[i][e] * od_tensor_get_f64(&in[i], e);
      rhs += t;
      mag += fabs(t);
    }
  }
  double tol = (dt == OD_DTYPE_DOUBLE ? 1e-12 : 1e-5) * (mag + 1e-30);
  ck_assert_msg(fabs(lhs - rhs) <= tol, "%s (%s, pool %d): <dY, Y> = %.12g but <g, x> = %.12g", sp->name,
                od_dtype_name(dt), pool != NULL, lhs, rhs);
  for (int i = 0; i < sp->n_in; i++) {
    if ((sp->float_inputs >> i) & 1u) {
      free(in[i].data);
      free(din[i].data);
      free(base[i]);
    }
  }
  for (int o = 0; o < sp->n_out; o++) {
    free(out[o].data);
    free(dout[o].data);
  }
  free(attrs);
}

/* The dot-product test in double and float, serial and pooled; pooled == serial exactly, float
 * close to double. */
static void adjoint_check(const struct adj_spec *sp) {
  struct od_pool *pool = NULL;
  struct od_err err = {0};
  ck_assert_int_eq(od_pool_create(2, &pool, &err), OD_OK);
  double *gd[ADJ_MAX_IO] = {NULL}, *gdp[ADJ_MAX_IO] = {NULL}, *gf[ADJ_MAX_IO] = {NULL}, *gfp[ADJ_MAX_IO] = {NULL};
  adj_run(sp, OD_DTYPE_DOUBLE, NULL, gd);
  adj_run(sp, OD_DTYPE_DOUBLE, pool, gdp);
  adj_run(sp, OD_DTYPE_FLOAT, NULL, gf);
  adj_run(sp, OD_DTYPE_FLOAT, pool, gfp);
  for (int i = 0; i < sp->n_in; i++) {
    if (!((sp->float_inputs >> i) & 1u)) continue;
    int64_t n = od_tensor_numel(&sp->in[i]);
    double scale = 1;
    for (int64_t e = 0; e < n; e++) scale = fmax(scale, 1 + fabs(gd[i][e]));
    for (int64_t e = 0; e < n; e++) {
      ck_assert_msg(gd[i][e] == gdp[i][e] && gf[i][e] == gfp[i][e],
                    "%s: input %d element %lld differs between serial and pooled runs", sp->name, i, (long long)e);
      ck_assert_msg(fabs(gf[i][e] - gd[i][e]) <= 1e-4 * scale, "%s: input %d element %lld: float %.8g, double %.8g",
                    sp->name, i, (long long)e, gf[i][e], gd[i][e]);
    }
    free(gd[i]);
    free(gdp[i]);
    free(gf[i]);
    free(gfp[i]);
  }
  od_pool_destroy(pool);
}

/* A shape-only tensor (for float inputs) and a complete int64 1-D tensor. */
static struct od_tensor adj_shape(int rank, const int64_t *dims) {
  struct od_tensor t = {.dtype = OD_DTYPE_FLOAT, .rank = rank};
  memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
  return t;
}

static struct od_tensor adj_i64(int n, const int64_t *v) {
  struct od_tensor t = {.dtype = OD_DTYPE_INT64, .rank = 1, .dims = {n}, .data = (void *)v};
  return t;
}

#endif
