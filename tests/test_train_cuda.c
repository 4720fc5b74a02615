/* tests/test_train_cuda.c: the trainer's device math (trainer/train_cuda.h: loss_cuda.cu,
 * optim_cuda.cu) against the CPU functions it mirrors, on random data of odd sizes.
 *
 * Built twice: against odcore_emu (label emu: the host emulation of CUDA, runs everywhere) and
 * against odcore (label gpu: exits 77, skipped, where "cuda:0" cannot be opened).
 *
 *  1. losses l2, l1, smooth_l1 (beta 1, 0.3, 0): od_cuda_loss_eval vs od_loss_eval on 1, 5, 4099,
 *     1000003 and 2100003 elements (the last goes twice round the grid), pointers 16-byte aligned
 *     (vectorised path) and not (scalar path), value-only and with a gradient that accumulates
 *     into a non-zero dS; equal pairs (d = 0) included. Bounds:
 *       value:    relative 1e-5. Every term is >= 0 (no cancellation); the device sums float32
 *                 terms per thread (<= ~10 here) and in a 256-leaf float32 tree, so the relative
 *                 error is below (10 + 8) * 2^-24 ~ 1e-6 worst case, plus the terms' own float32
 *                 rounding (~3 ulp); 1e-5 leaves margin for larger tensors.
 *       gradient: |gpu - cpu| <= 4 eps (|inc| + |cpu|), eps = FLT_EPSILON, inc = cpu - dS_before:
 *                 the CPU forms the increment in double and rounds once; the device forms
 *                 d = s - t, the derivative and coef * dv in float32 (<= 3 roundings of the
 *                 increment) and both round the sum dS + inc once.
 *  2. sum of squares: od_cuda_sumsq vs od_grad_norm^2 on 0, 1, 7, 1000003 elements, aligned and
 *     not; relative 1e-5 (same reasoning as the loss value).
 *  3. optimizers sgd, momentum, nesterov, adam, adamw: od_cuda_optim_step vs od_optim_update per
 *     tensor over a block of 7 tensors (sizes 1, 1000003, 3, 8192, 8193, 0, 17; decay on some),
 *     4 steps in a row with fresh gradients, grad_scale 1 and 0.37, state carried; weights and
 *     state compared after every step. The device repeats the CPU's operations in the same order
 *     and precision without fused multiply-adds, so the results are expected to be equal bit for
 *     bit (the count of exact matches is printed); the check allows
 *     |gpu - cpu| <= 4 eps (|cpu| + 0.01 max|cpu|) per array, i.e. a few float32 roundings, so a
 *     compiler that contracts one operation does not fail it while a wrong rule or layout does.
 *  4. errors: unsupported loss kind and dtype, mismatched gradient shape, an optimizer over an
 *     empty block. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "trainer/loss.h"
#include "trainer/optim.h"
#include "trainer/params.h"
#include "trainer/train_cuda.h"

static struct od_device *g_dev;

/* ---- helpers --------------------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static float uni(uint64_t *s, float lo, float hi) {
  return lo + (hi - lo) * (float)((double)(rng_next(s) >> 11) / 9007199254740992.0);
}

static float *host_floats(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  ck_assert_ptr_nonnull(p);
  return p;
}

static float *dev_floats(size_t n) {
  struct od_err err = {0};
  void *p = NULL;
  ck_assert_int_eq(g_dev->ops->alloc(g_dev, (n ? n : 1) * sizeof(float), &p, &err), OD_OK);
  return p;
}

static void up(float *d, const float *h, size_t n) {
  struct od_err err = {0};
  if (n) ck_assert_int_eq(g_dev->ops->to_device(g_dev, d, h, n * sizeof(float), &err), OD_OK);
}

static void down(float *h, const float *d, size_t n) {
  struct od_err err = {0};
  if (n) ck_assert_int_eq(g_dev->ops->to_host(g_dev, h, d, n * sizeof(float), &err), OD_OK);
  ck_assert_int_eq(g_dev->ops->sync(g_dev, &err), OD_OK);
}

static struct od_tensor flat(int64_t n, void *data) {
  struct od_tensor t = {.dtype = OD_DTYPE_FLOAT, .rank = 1, .dims = {n}, .data = data};
  return t;
}

/* ---- 1. losses ------------------------------------------------------------------------------------- */

static void check_loss(enum od_loss_kind kind, double beta, int64_t n, int misalign, bool grad, uint64_t seed) {
  struct od_loss_params p;
  od_loss_params_default(kind, &p);
  p.beta = beta;
  double scale = 3.0;
  float *s = host_floats((size_t)n), *t = host_floats((size_t)n), *g0 = host_floats((size_t)n),
        *gc = host_floats((size_t)n), *gd = host_floats((size_t)n);
  for (int64_t i = 0; i < n; i++) {
    s[i] = uni(&seed, -2.f, 2.f);
    t[i] = i % 97 == 3 ? s[i] : uni(&seed, -2.f, 2.f); /* some d == 0 */
    g0[i] = gc[i] = uni(&seed, -1.f, 1.f) * (float)(scale / (double)n);
  }
  /* the device buffers: S shifted by one float when misaligned (then the scalar path runs) */
  int off = misalign ? 1 : 0;
  float *ds = dev_floats((size_t)n + 1), *dt = dev_floats((size_t)n), *dg = dev_floats((size_t)n + 1);
  up(ds + off, s, (size_t)n);
  up(dt, t, (size_t)n);
  up(dg + off, g0, (size_t)n);

  struct od_err err = {0};
  struct od_tensor S = flat(n, s), T = flat(n, t), G = flat(n, gc);
  const struct od_tensor *Sv[1] = {&S}, *Tv[1] = {&T};
  struct od_tensor *Gv[1] = {&G};
  double vc = 0, vd = 0;
  ck_assert_int_eq(od_loss_eval(&p, Sv, Tv, scale, &vc, grad ? Gv : NULL, &err), OD_OK);
  struct od_tensor dS = flat(n, ds + off), dT = flat(n, dt), dG = flat(n, dg + off);
  ck_assert_msg(od_cuda_loss_eval(g_dev, &p, &dS, &dT, scale, &vd, grad ? &dG : NULL, &err) == OD_OK, "%s", err.msg);
  ck_assert_msg(fabs(vd - vc) <= 1e-5 * fabs(vc) + 1e-30, "%s beta %g n %lld: value %.9g vs CPU %.9g",
                od_loss_name(kind), beta, (long long)n, vd, vc);

  down(gd, dg + off, (size_t)n);
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; i++) {
    double tol = 4.0 * FLT_EPSILON * (fabs((double)gc[i] - g0[i]) + fabs(gc[i])) + 1e-37;
    if (!(fabs((double)gd[i] - gc[i]) <= tol)) {
      if (first < 0) first = i;
      bad++;
    }
  }
  ck_assert_msg(bad == 0, "%s beta %g n %lld grad %d: %lld gradient elements off, first [%lld] %.9g vs CPU %.9g",
                od_loss_name(kind), beta, (long long)n, grad, (long long)bad, (long long)first,
                first >= 0 ? gd[first] : 0.0, first >= 0 ? gc[first] : 0.0);

  g_dev->ops->free(g_dev, ds);
  g_dev->ops->free(g_dev, dt);
  g_dev->ops->free(g_dev, dg);
  free(s);
  free(t);
  free(g0);
  free(gc);
  free(gd);
}

START_TEST(test_losses) {
  static const struct {
    enum od_loss_kind kind;
    double beta;
  } kinds[] = {{OD_LOSS_L2, 1}, {OD_LOSS_L1, 1}, {OD_LOSS_SMOOTH_L1, 1}, {OD_LOSS_SMOOTH_L1, 0.3},
               {OD_LOSS_SMOOTH_L1, 0}};
  static const int64_t sizes[] = {1, 5, 4099, 1000003};
  uint64_t seed = 42;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
      for (int mis = 0; mis < 2; mis++)
        for (int grad = 0; grad < 2; grad++) check_loss(kinds[k].kind, kinds[k].beta, sizes[z], mis, grad, seed++);
  /* more elements than one pass of the grid covers */
  check_loss(OD_LOSS_L2, 1, 2100003, 0, true, seed++);
  check_loss(OD_LOSS_SMOOTH_L1, 0.5, 2100003, 1, true, seed++);
}
END_TEST

START_TEST(test_loss_errors) {
  struct od_err err = {0};
  float *d = dev_floats(24);
  struct od_loss_params p;
  double v = 0;
  struct od_tensor S = flat(24, d), T = flat(24, d);

  od_loss_params_default(OD_LOSS_KD, &p);
  ck_assert(!od_cuda_loss_supported(OD_LOSS_KD));
  ck_assert(od_cuda_loss_supported(OD_LOSS_L2) && od_cuda_loss_supported(OD_LOSS_L1) &&
            od_cuda_loss_supported(OD_LOSS_SMOOTH_L1));
  ck_assert_int_eq(od_cuda_loss_eval(g_dev, &p, &S, &T, 1.0, &v, NULL, &err), OD_ERR_UNSUPPORTED);
  ck_assert_msg(strstr(err.msg, "kd"), "%s", err.msg);

  od_loss_params_default(OD_LOSS_L2, &p);
  struct od_tensor Sd = S, Td = T;
  Sd.dtype = Td.dtype = OD_DTYPE_DOUBLE;
  Sd.dims[0] = Td.dims[0] = 12;
  ck_assert_int_eq(od_cuda_loss_eval(g_dev, &p, &Sd, &Td, 1.0, &v, NULL, &err), OD_ERR_UNSUPPORTED);
  ck_assert_msg(strstr(err.msg, "float32"), "%s", err.msg);

  struct od_tensor G = flat(23, d);
  ck_assert_int_eq(od_cuda_loss_eval(g_dev, &p, &S, &T, 1.0, &v, &G, &err), OD_ERR_SHAPE);
  struct od_tensor T2 = flat(23, d);
  ck_assert_int_eq(od_cuda_loss_eval(g_dev, &p, &S, &T2, 1.0, &v, NULL, &err), OD_ERR_SHAPE);
  ck_assert_int_eq(od_cuda_loss_eval(g_dev, &p, &S, &T, 1.0, NULL, NULL, &err), OD_ERR_INVALID_ARG);
  g_dev->ops->free(g_dev, d);
}
END_TEST

/* ---- 2. sum of squares ------------------------------------------------------------------------------ */

START_TEST(test_sumsq) {
  static const size_t sizes[] = {0, 1, 7, 1000003};
  uint64_t seed = 7;
  for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
    for (int off = 0; off < 2; off++) {
      size_t n = sizes[z];
      float *h = host_floats(n), *d = dev_floats(n + 1);
      for (size_t i = 0; i < n; i++) h[i] = uni(&seed, -3.f, 3.f);
      up(d + off, h, n);
      double ref = od_grad_norm(h, n), got = -1;
      ref *= ref;
      struct od_err err = {0};
      ck_assert_int_eq(od_cuda_sumsq(g_dev, d + off, n, &got, &err), OD_OK);
      ck_assert_msg(fabs(got - ref) <= 1e-5 * ref, "sumsq n %zu off %d: %.9g vs CPU %.9g", n, off, got, ref);
      g_dev->ops->free(g_dev, d);
      free(h);
    }
}
END_TEST

/* ---- 3. optimizers ---------------------------------------------------------------------------------- */

/* Compares n floats; returns the exact matches. */
static size_t compare(const char *what, const char *kind, int step, const float *got, const float *ref, size_t n) {
  double mx = 0;
  for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[i]));
  size_t exact = 0, bad = 0, first = 0;
  for (size_t i = 0; i < n; i++) {
    if (got[i] == ref[i]) {
      exact++;
      continue;
    }
    if (!(fabs((double)got[i] - ref[i]) <= 4.0 * FLT_EPSILON * (fabs(ref[i]) + 0.01 * mx))) {
      if (!bad) first = i;
      bad++;
    }
  }
  ck_assert_msg(bad == 0, "%s step %d: %zu of %zu %s values off, first [%zu] %.9g vs CPU %.9g", kind, step, bad, n,
                what, first, got[first], ref[first]);
  return exact;
}

static void check_optim(const char *name, const struct od_optim_cfg *c) {
  enum { NT = 7 };
  static const size_t sizes[NT] = {1, 1000003, 3, 8192, 8193, 0, 17};
  static const bool decay[NT] = {true, true, false, true, false, true, false};
  struct od_param p[NT];
  struct od_params ps = {.p = p, .n = NT};
  memset(p, 0, sizeof p);
  for (int i = 0; i < NT; i++) {
    p[i].offset = ps.total;
    p[i].n = sizes[i];
    p[i].decay = decay[i];
    ps.total += sizes[i];
  }
  int spp = od_optim_state_per_param(c->kind);
  size_t total = ps.total, ns = total * (size_t)spp;
  float *w = host_floats(total), *g = host_floats(total), *st = host_floats(ns), *wb = host_floats(total),
        *sb = host_floats(ns);
  uint64_t seed = 99;
  for (size_t i = 0; i < total; i++) w[i] = uni(&seed, -1.f, 1.f);
  memset(st, 0, (ns ? ns : 1) * sizeof *st);
  float *dw = dev_floats(total), *dg = dev_floats(total), *dst = spp ? dev_floats(ns) : NULL;
  up(dw, w, total);
  if (spp) up(dst, st, ns);

  struct od_err err = {0};
  struct od_cuda_optim *o = NULL;
  ck_assert_msg(od_cuda_optim_create(g_dev, &ps, &o, &err) == OD_OK, "%s", err.msg);
  size_t exact = 0, compared = 0;
  for (int step = 1; step <= 4; step++) {
    for (size_t i = 0; i < total; i++) g[i] = uni(&seed, -2.f, 2.f);
    up(dg, g, total);
    double lr = c->lr * (1.0 - 0.1 * step), gs = step % 2 ? 1.0 : 0.37;
    for (int i = 0; i < NT; i++)
      od_optim_update(c, lr, step, w + p[i].offset, g + p[i].offset, st + p[i].offset * (size_t)spp, p[i].n,
                      p[i].decay, gs);
    ck_assert_msg(od_cuda_optim_step(o, c, lr, step, dw, dg, dst, gs, &err) == OD_OK, "%s", err.msg);
    down(wb, dw, total);
    exact += compare("weight", name, step, wb, w, total);
    compared += total;
    if (spp) {
      down(sb, dst, ns);
      exact += compare("state", name, step, sb, st, ns);
      compared += ns;
    }
  }
  fprintf(stderr, "test_train_cuda: %-8s %zu of %zu weights and state values bit-identical to the CPU\n", name,
          exact, compared);
  od_cuda_optim_destroy(o);
  g_dev->ops->free(g_dev, dw);
  g_dev->ops->free(g_dev, dg);
  if (dst) g_dev->ops->free(g_dev, dst);
  free(w);
  free(g);
  free(st);
  free(wb);
  free(sb);
}

START_TEST(test_optimizers) {
  struct od_optim_cfg c;
  od_optim_cfg_default(&c);
  c.weight_decay = 0.01;
  c.lr = 0.05;
  c.kind = OD_OPTIM_SGD;
  check_optim("sgd", &c);
  c.kind = OD_OPTIM_MOMENTUM;
  check_optim("momentum", &c);
  c.nesterov = true;
  check_optim("nesterov", &c);
  c.nesterov = false;
  c.lr = 0.01;
  c.kind = OD_OPTIM_ADAM;
  check_optim("adam", &c);
  c.kind = OD_OPTIM_ADAMW;
  check_optim("adamw", &c);
}
END_TEST

START_TEST(test_optim_empty_block) {
  struct od_params ps = {0};
  struct od_cuda_optim *o = NULL;
  struct od_err err = {0};
  struct od_optim_cfg c;
  od_optim_cfg_default(&c);
  ck_assert_int_eq(od_cuda_optim_create(g_dev, &ps, &o, &err), OD_OK);
  ck_assert_int_eq(od_cuda_optim_step(o, &c, 0.1, 1, NULL, NULL, NULL, 1.0, &err), OD_OK);
  od_cuda_optim_destroy(o);
  od_cuda_optim_destroy(NULL);
}
END_TEST

int main(void) {
  struct od_err err = {0};
  enum od_status s = od_device_open("cuda:0", &g_dev, &err);
  if (s == OD_ERR_NO_DEVICE) {
    fprintf(stderr, "test_train_cuda: skipped: %s\n", err.msg);
    return 77;
  }
  if (s != OD_OK) {
    fprintf(stderr, "test_train_cuda: cannot open cuda:0: %s\n", err.msg);
    return EXIT_FAILURE;
  }
  Suite *su = suite_create("train_cuda");
  TCase *tc = tcase_create("train_cuda");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_losses);
  tcase_add_test(tc, test_loss_errors);
  tcase_add_test(tc, test_sumsq);
  tcase_add_test(tc, test_optimizers);
  tcase_add_test(tc, test_optim_empty_block);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_set_fork_status(sr, CK_NOFORK); /* CUDA is not fork-safe */
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  od_device_close(g_dev);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
