/* tests/test_cuda_graphs.c: the graph-safe training step of trainer/train_cuda.h and its capture as
 * a CUDA graph, against the synchronous functions the trainer used before (themselves checked
 * against the CPU by tests/test_train_cuda.c).
 *
 * Built twice: against odcore_emu (label emu: the host emulation records captured work and replays
 * it, ops/cuda/emu.h) and against odcore (label gpu: exits 77, skipped, where "cuda:0" cannot be
 * opened).
 *
 *  1. od_cuda_loss_eval_dev vs od_cuda_loss_eval (l2, l1, smooth_l1; 1, 4099 and 300001 elements):
 *     the value read back with od_cuda_step_read and the gradient are equal bit for bit (the same
 *     kernels; the value's last multiply is done on the device instead of the host); the step's
 *     total is host_total + sum w_i v_i added in that order, the norm sqrt(od_cuda_sumsq), the
 *     clip scale clip / norm, all bit for bit.
 *  2. od_cuda_optim_step_dev (lr, step and clip scale from device memory) vs od_cuda_optim_step
 *     with the same numbers passed as arguments, every optimizer, 3 steps: weights and state equal
 *     bit for bit; a non-finite loss skips the update.
 *  3. a graph of (losses, reduce, update) captured once and launched for 4 steps with a different
 *     lr each (od_cuda_step_set before each launch) gives exactly the weights of the same 4 steps
 *     run without a graph; nothing runs while capturing.
 *  4. a capture that meets a synchronising call (od_cuda_sumsq, a device-to-host copy, an
 *     allocation) fails cleanly: od_cuda_capture_end gives no graph and an error, and the stream
 *     works normally afterwards.
 *  5. (emulation) the capture rules of ops/cuda/emu.h: status queries, pinned host-to-device copies
 *     read when the graph runs, pageable copies refused, EndCapture without a capture. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef OD_CUDA_EMU
#include "ops/cuda/emu.h"
#else
#include <cuda_runtime.h>
#endif

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "trainer/loss.h"
#include "trainer/optim.h"
#include "trainer/params.h"
#include "trainer/train_cuda.h"

cudaStream_t od_cuda_stream(const struct od_device *dev); /* runtime/devices/cuda_impl.h (C++ in the emulation) */

static struct od_device *g_dev;

/* ---- helpers --------------------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static float uni(uint64_t *s, float lo, float hi) {
  return lo + (hi - lo) * (float)((double)(rng_next(s) >> 11) / 9007199254740992.0);
}

static float *host_rand(size_t n, uint64_t *seed, float lo, float hi) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  ck_assert_ptr_nonnull(p);
  for (size_t i = 0; i < n; i++) p[i] = uni(seed, lo, hi);
  return p;
}

static float *dev_copy(const float *h, size_t n) {
  struct od_err err = {0};
  void *p = NULL;
  ck_assert_int_eq(g_dev->ops->alloc(g_dev, (n ? n : 1) * sizeof(float), &p, &err), OD_OK);
  if (n) ck_assert_int_eq(g_dev->ops->to_device(g_dev, p, h, n * sizeof(float), &err), OD_OK);
  ck_assert_int_eq(g_dev->ops->sync(g_dev, &err), OD_OK);
  return p;
}

static float *down(const float *d, size_t n) {
  struct od_err err = {0};
  float *h = malloc((n ? n : 1) * sizeof *h);
  ck_assert_ptr_nonnull(h);
  if (n) ck_assert_int_eq(g_dev->ops->to_host(g_dev, h, d, n * sizeof(float), &err), OD_OK);
  return h;
}

static struct od_tensor flat(int64_t n, void *data) {
  struct od_tensor t = {.dtype = OD_DTYPE_FLOAT, .rank = 1, .dims = {n}, .data = data};
  return t;
}

static void same_floats(const float *a, const float *b, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(memcmp(&a[i], &b[i], sizeof(float)) == 0, "%s [%zu]: %.9g vs %.9g", what, i, a[i], b[i]);
}

/* ---- 1. losses and the step's reductions --------------------------------------------------------------- */

START_TEST(test_losses_dev) {
  static const int64_t sizes[] = {1, 4099, 300001};
  static const enum od_loss_kind kinds[] = {OD_LOSS_L2, OD_LOSS_L1, OD_LOSS_SMOOTH_L1};
  uint64_t seed = 11;
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    int64_t n = sizes[si];
    const double weights[3] = {1.0, 3.0, 0.25}, clip = 0.01, host_total = 0.5;
    struct od_err err = {0};
    struct od_cuda_step *st = NULL;
    ck_assert_msg(od_cuda_step_create(g_dev, 3, weights, clip, &st, &err) == OD_OK, "%s", err.msg);
    float *s = host_rand((size_t)n, &seed, -2, 2), *t = host_rand((size_t)n, &seed, -2, 2),
          *g0 = host_rand((size_t)n, &seed, -1e-3f, 1e-3f);
    float *ds = dev_copy(s, (size_t)n), *dt = dev_copy(t, (size_t)n), *ga = dev_copy(g0, (size_t)n),
          *gb = dev_copy(g0, (size_t)n);
    double vsync[3];
    for (int k = 0; k < 3; k++) {
      struct od_loss_params p;
      od_loss_params_default(kinds[k], &p);
      p.beta = 0.3;
      struct od_tensor S = flat(n, ds), T = flat(n, dt), GA = flat(n, ga), GB = flat(n, gb);
      ck_assert_int_eq(od_cuda_loss_eval(g_dev, &p, &S, &T, weights[k], &vsync[k], &GA, &err), OD_OK);
      ck_assert_msg(od_cuda_loss_eval_dev(g_dev, &p, &S, &T, weights[k], od_cuda_step_loss_slot(st, k), &GB, &err) ==
                        OD_OK,
                    "%s", err.msg);
    }
    double sumsq = 0;
    ck_assert_int_eq(od_cuda_sumsq(g_dev, ga, (size_t)n, &sumsq, &err), OD_OK);
    struct od_optim_cfg c;
    od_optim_cfg_default(&c);
    ck_assert_int_eq(od_cuda_step_set(st, &c, 0.1, 1, host_total, &err), OD_OK);
    ck_assert_int_eq(od_cuda_step_reduce(st, gb, (size_t)n, &err), OD_OK);
    double values[3];
    struct od_cuda_step_result r;
    ck_assert_int_eq(od_cuda_step_read(st, values, &r, &err), OD_OK);
    double total = host_total;
    for (int k = 0; k < 3; k++) {
      ck_assert_msg(values[k] == vsync[k], "n %lld loss %d: %.17g vs %.17g", (long long)n, k, values[k], vsync[k]);
      total += weights[k] * values[k];
    }
    double norm = sqrt(sumsq);
    ck_assert_msg(r.total == total && r.finite, "total %.17g vs %.17g", r.total, total);
    ck_assert_msg(r.norm == norm, "norm %.17g vs %.17g", r.norm, norm);
    ck_assert_msg(r.grad_scale == (norm > clip ? clip / norm : 1.0), "scale %.17g", r.grad_scale);
    float *ha = down(ga, (size_t)n), *hb = down(gb, (size_t)n);
    same_floats(hb, ha, (size_t)n, "gradient");
    free(ha);
    free(hb);
    free(s);
    free(t);
    free(g0);
    void *bufs[] = {ds, dt, ga, gb};
    for (int k = 0; k < 4; k++) g_dev->ops->free(g_dev, bufs[k]);
    od_cuda_step_destroy(st);
  }
  od_cuda_step_destroy(NULL);
}
END_TEST

/* ---- 2. the optimizer step from device scalars -------------------------------------------------------- */

/* A block of 4 parameter tensors (sizes 5, 9000, 1, 333), decay on two. */
static void make_block(struct od_params *ps, int spp, uint64_t *seed) {
  static const size_t sizes[] = {5, 9000, 1, 333};
  memset(ps, 0, sizeof *ps);
  ps->n = 4;
  ps->p = calloc(4, sizeof *ps->p);
  ck_assert_ptr_nonnull(ps->p);
  size_t off = 0;
  for (int i = 0; i < 4; i++) {
    ps->p[i].offset = off;
    ps->p[i].n = sizes[i];
    ps->p[i].decay = i % 2 == 0;
    off += sizes[i];
  }
  ps->total = off;
  ps->state_per_param = spp;
  ps->w = host_rand(off, seed, -1, 1);
  ps->g = host_rand(off, seed, -2, 2);
  ps->state = host_rand(off * (size_t)(spp ? spp : 1), seed, 0, 0.1f);
}

static void free_block(struct od_params *ps) {
  free(ps->p);
  free(ps->w);
  free(ps->g);
  free(ps->state);
}

START_TEST(test_optim_dev) {
  static const enum od_optim_kind kinds[] = {OD_OPTIM_SGD, OD_OPTIM_MOMENTUM, OD_OPTIM_ADAM, OD_OPTIM_ADAMW};
  for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
    uint64_t seed = 5 + ki;
    struct od_optim_cfg c;
    od_optim_cfg_default(&c);
    c.kind = kinds[ki];
    c.weight_decay = 0.01;
    c.nesterov = ki == 1;
    int spp = od_optim_state_per_param(c.kind);
    struct od_params ps;
    make_block(&ps, spp, &seed);
    size_t ns = ps.total * (size_t)(spp ? spp : 1);
    struct od_err err = {0};
    struct od_cuda_optim *o = NULL;
    struct od_cuda_step *st = NULL;
    ck_assert_int_eq(od_cuda_optim_create(g_dev, &ps, &o, &err), OD_OK);
    ck_assert_int_eq(od_cuda_step_create(g_dev, 0, NULL, 1.5, &st, &err), OD_OK);
    float *wa = dev_copy(ps.w, ps.total), *wb = dev_copy(ps.w, ps.total), *g = dev_copy(ps.g, ps.total),
          *sa = dev_copy(ps.state, ns), *sb = dev_copy(ps.state, ns);
    for (int step = 1; step <= 3; step++) {
      double lr = 0.01 * step, sumsq = 0;
      ck_assert_int_eq(od_cuda_sumsq(g_dev, g, ps.total, &sumsq, &err), OD_OK);
      double norm = sqrt(sumsq), scale = norm > 1.5 ? 1.5 / norm : 1.0;
      ck_assert_int_eq(od_cuda_optim_step(o, &c, lr, step, wa, g, sa, scale, &err), OD_OK);
      ck_assert_int_eq(od_cuda_step_set(st, &c, lr, step, 0, &err), OD_OK);
      ck_assert_int_eq(od_cuda_step_reduce(st, g, ps.total, &err), OD_OK);
      ck_assert_int_eq(od_cuda_optim_step_dev(o, &c, wb, g, sb, st, &err), OD_OK);
    }
    float *hwa = down(wa, ps.total), *hwb = down(wb, ps.total), *hsa = down(sa, ns), *hsb = down(sb, ns);
    same_floats(hwb, hwa, ps.total, "weights");
    if (spp) same_floats(hsb, hsa, ns, "optimizer state");
    /* a non-finite loss: the update is skipped */
    ck_assert_int_eq(od_cuda_step_set(st, &c, 0.5, 4, NAN, &err), OD_OK);
    ck_assert_int_eq(od_cuda_step_reduce(st, g, ps.total, &err), OD_OK);
    ck_assert_int_eq(od_cuda_optim_step_dev(o, &c, wb, g, sb, st, &err), OD_OK);
    struct od_cuda_step_result r;
    ck_assert_int_eq(od_cuda_step_read(st, NULL, &r, &err), OD_OK);
    ck_assert(!r.finite);
    float *hw2 = down(wb, ps.total);
    same_floats(hw2, hwb, ps.total, "weights after a skipped update");
    free(hw2);
    free(hwa);
    free(hwb);
    free(hsa);
    free(hsb);
    void *bufs[] = {wa, wb, g, sa, sb};
    for (int k = 0; k < 5; k++) g_dev->ops->free(g_dev, bufs[k]);
    od_cuda_step_destroy(st);
    od_cuda_optim_destroy(o);
    free_block(&ps);
  }
}
END_TEST

/* ---- 3. a captured step replayed ------------------------------------------------------------------------- */

struct mini {
  float *s, *t, *seed, *w, *g, *state;
  struct od_cuda_optim *o;
  struct od_cuda_step *st;
  struct od_params ps;
  struct od_optim_cfg c;
  struct od_loss_params lp;
  int64_t n;
};

/* A toy step: the seed is zeroed, the l2 loss of (w, t) writes its gradient into it, the seed is
 * the gradient (a copy), then reduce and update. w doubles as the student's tensor. */
static enum od_status mini_step(struct mini *m, struct od_err *err) {
  OD_TRY(g_dev->ops->zero(g_dev, m->seed, (size_t)m->n * sizeof(float), err));
  struct od_tensor S = flat(m->n, m->w), T = flat(m->n, m->t), dS = flat(m->n, m->seed);
  OD_TRY(od_cuda_loss_eval_dev(g_dev, &m->lp, &S, &T, 2.0, od_cuda_step_loss_slot(m->st, 0), &dS, err));
  OD_TRY(g_dev->ops->copy(g_dev, m->g, m->seed, (size_t)m->n * sizeof(float), err));
  OD_TRY(od_cuda_step_reduce(m->st, m->g, (size_t)m->n, err));
  return od_cuda_optim_step_dev(m->o, &m->c, m->w, m->g, m->state, m->st, err);
}

static void mini_init(struct mini *m, uint64_t seed) {
  memset(m, 0, sizeof *m);
  od_optim_cfg_default(&m->c);
  m->c.kind = OD_OPTIM_ADAM;
  od_loss_params_default(OD_LOSS_L2, &m->lp);
  make_block(&m->ps, 2, &seed);
  m->n = (int64_t)m->ps.total;
  float *t = host_rand(m->ps.total, &seed, -1, 1);
  m->w = dev_copy(m->ps.w, m->ps.total);
  m->t = dev_copy(t, m->ps.total);
  m->seed = dev_copy(t, m->ps.total);
  m->g = dev_copy(t, m->ps.total);
  m->state = dev_copy(m->ps.state, m->ps.total * 2);
  free(t);
  struct od_err err = {0};
  const double w1 = 2.0;
  ck_assert_int_eq(od_cuda_optim_create(g_dev, &m->ps, &m->o, &err), OD_OK);
  ck_assert_int_eq(od_cuda_step_create(g_dev, 1, &w1, 0.001, &m->st, &err), OD_OK); /* clips */
}

static void mini_free(struct mini *m) {
  void *bufs[] = {m->w, m->t, m->seed, m->g, m->state};
  for (int k = 0; k < 5; k++) g_dev->ops->free(g_dev, bufs[k]);
  od_cuda_step_destroy(m->st);
  od_cuda_optim_destroy(m->o);
  free_block(&m->ps);
}

START_TEST(test_graph_replay) {
  struct mini a, b;
  mini_init(&a, 3);
  mini_init(&b, 3);
  struct od_err err = {0};
  struct od_cuda_graph *graph = NULL;
  /* b: captured once (after a warm-up step, as the trainer does), then launched */
  ck_assert_int_eq(od_cuda_step_set(b.st, &b.c, 0.001, 1, 0, &err), OD_OK);
  ck_assert_int_eq(mini_step(&b, &err), OD_OK);
  ck_assert_int_eq(od_cuda_step_set(a.st, &a.c, 0.001, 1, 0, &err), OD_OK);
  ck_assert_int_eq(mini_step(&a, &err), OD_OK);
  float *w_before = down(b.w, b.ps.total);
  ck_assert_int_eq(od_cuda_capture_begin(g_dev, &err), OD_OK);
  enum od_status st = mini_step(&b, &err);
  ck_assert_msg(st == OD_OK, "%s", err.msg);
  ck_assert_msg(od_cuda_capture_end(g_dev, true, &graph, &err) == OD_OK && graph, "%s", err.msg);
  ck_assert_uint_ge(od_cuda_graph_size(graph), 6);
  ck_assert(od_cuda_graph_current(graph));
  float *w_after = down(b.w, b.ps.total);
  same_floats(w_after, w_before, b.ps.total, "weights after the capture (nothing may run)");
  for (int step = 2; step <= 5; step++) {
    double lr = 0.001 * step;
    ck_assert_int_eq(od_cuda_step_set(a.st, &a.c, lr, step, 0, &err), OD_OK);
    ck_assert_int_eq(mini_step(&a, &err), OD_OK);
    ck_assert_int_eq(od_cuda_step_set(b.st, &b.c, lr, step, 0, &err), OD_OK);
    ck_assert_msg(od_cuda_graph_launch(graph, &err) == OD_OK, "%s", err.msg);
    double va, vb;
    struct od_cuda_step_result ra, rb;
    ck_assert_int_eq(od_cuda_step_read(a.st, &va, &ra, &err), OD_OK);
    ck_assert_int_eq(od_cuda_step_read(b.st, &vb, &rb, &err), OD_OK);
    ck_assert_msg(va == vb && ra.total == rb.total && ra.norm == rb.norm && ra.grad_scale < 1, "step %d", step);
  }
  float *wa = down(a.w, a.ps.total), *wb = down(b.w, b.ps.total), *sa = down(a.state, 2 * a.ps.total),
        *sb = down(b.state, 2 * b.ps.total);
  same_floats(wb, wa, a.ps.total, "weights: graph vs no graph");
  same_floats(sb, sa, 2 * a.ps.total, "Adam state: graph vs no graph");
  free(wa);
  free(wb);
  free(sa);
  free(sb);
  free(w_before);
  free(w_after);
  od_cuda_graph_destroy(graph);
  od_cuda_graph_destroy(NULL);
  mini_free(&a);
  mini_free(&b);
}
END_TEST

/* ---- 4. failed captures ------------------------------------------------------------------------------------ */

START_TEST(test_capture_failures) {
  struct mini m;
  mini_init(&m, 9);
  struct od_err err = {0};
  for (int how = 0; how < 3; how++) {
    struct od_cuda_graph *graph = NULL;
    ck_assert_int_eq(od_cuda_capture_begin(g_dev, &err), OD_OK);
    enum od_status st = mini_step(&m, &err);
    ck_assert_int_eq(st, OD_OK);
    if (how == 0) { /* a loss that returns its value to the host */
      struct od_tensor S = flat(m.n, m.w), T = flat(m.n, m.t);
      double v;
      st = od_cuda_loss_eval(g_dev, &m.lp, &S, &T, 1.0, &v, NULL, &err);
    } else if (how == 1) { /* a device-to-host copy */
      float h[4];
      st = g_dev->ops->to_host(g_dev, h, m.w, sizeof h, &err);
    } else { /* an allocation */
      void *p = NULL;
      st = g_dev->ops->alloc(g_dev, 1024, &p, &err);
      if (st == OD_OK) g_dev->ops->free(g_dev, p);
    }
    ck_assert_msg(st != OD_OK, "case %d: a synchronising call succeeded during a capture", how);
    struct od_err eerr = {0};
    ck_assert_int_eq(od_cuda_capture_end(g_dev, st == OD_OK, &graph, &eerr), OD_OK);
    ck_assert_ptr_null(graph);
    /* with ok = true, the failed capture itself is reported */
    ck_assert_int_eq(od_cuda_capture_begin(g_dev, &err), OD_OK);
    float h[4];
    (void)g_dev->ops->to_host(g_dev, h, m.w, sizeof h, &err);
    ck_assert_int_ne(od_cuda_capture_end(g_dev, true, &graph, &eerr), OD_OK);
    ck_assert_ptr_null(graph);
    /* the stream works normally again */
    double sumsq = -1;
    ck_assert_msg(od_cuda_sumsq(g_dev, m.g, (size_t)m.n, &sumsq, &err) == OD_OK && sumsq >= 0, "%s", err.msg);
  }
  mini_free(&m);
}
END_TEST

/* ---- 5. the emulation's capture rules --------------------------------------------------------------------- */

#ifdef OD_CUDA_EMU
START_TEST(test_emu_capture_rules) {
  cudaStream_t s = od_cuda_stream(g_dev);
  cudaStreamCaptureStatus cs;
  ck_assert_int_eq(cudaStreamIsCapturing(s, &cs), cudaSuccess);
  ck_assert_int_eq(cs, cudaStreamCaptureStatusNone);
  cudaGraph_t graph = NULL;
  ck_assert_int_eq(cudaStreamEndCapture(s, &graph), cudaErrorIllegalState);
  (void)cudaGetLastError();

  struct od_err err = {0};
  float *pinned = NULL, host[4] = {0}, back[4];
  ck_assert_int_eq(cudaHostAlloc((void **)&pinned, 4 * sizeof(float), cudaHostAllocDefault), cudaSuccess);
  float *d = dev_copy(host, 4);
  /* a pinned upload is read when the graph runs */
  for (int i = 0; i < 4; i++) pinned[i] = 1.0f;
  ck_assert_int_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ck_assert_int_eq(cudaStreamIsCapturing(s, &cs), cudaSuccess);
  ck_assert_int_eq(cs, cudaStreamCaptureStatusActive);
  ck_assert_int_eq(cudaMemcpyAsync(d, pinned, 4 * sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
  ck_assert_int_eq(cudaStreamEndCapture(s, &graph), cudaSuccess);
  size_t nodes = 0;
  ck_assert_int_eq(cudaGraphGetNodes(graph, NULL, &nodes), cudaSuccess);
  ck_assert_uint_eq(nodes, 1);
  cudaGraphExec_t exec = NULL;
  ck_assert_int_eq(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ck_assert_int_eq(cudaGraphDestroy(graph), cudaSuccess);
  float *h0 = down(d, 4);
  ck_assert(h0[0] == 0.0f); /* not run while capturing */
  for (int i = 0; i < 4; i++) pinned[i] = 7.0f;
  ck_assert_int_eq(cudaGraphLaunch(exec, s), cudaSuccess);
  ck_assert_int_eq(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
  ck_assert(back[0] == 7.0f && back[3] == 7.0f);
  ck_assert_int_eq(cudaGraphExecDestroy(exec), cudaSuccess);
  /* a pageable upload invalidates the capture */
  ck_assert_int_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ck_assert_int_eq(cudaMemcpyAsync(d, host, sizeof host, cudaMemcpyHostToDevice, s), cudaErrorStreamCaptureUnsupported);
  ck_assert_int_eq(cudaStreamIsCapturing(s, &cs), cudaSuccess);
  ck_assert_int_eq(cs, cudaStreamCaptureStatusInvalidated);
  ck_assert_int_eq(cudaMemsetAsync(d, 0, sizeof host, s), cudaErrorStreamCaptureInvalidated);
  ck_assert_int_eq(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  ck_assert_ptr_null(graph);
  /* malloc during a capture: refused */
  ck_assert_int_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  void *p = (void *)1;
  ck_assert_int_eq(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
  ck_assert_ptr_null(od_emu_malloc(64));
  ck_assert_int_eq(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();
  ck_assert_int_eq(cudaFreeHost(pinned), cudaSuccess);
  g_dev->ops->free(g_dev, d);
  free(h0);
  (void)err;
}
END_TEST
#endif

int main(void) {
  struct od_err err = {0};
  enum od_status s = od_device_open("cuda:0", &g_dev, &err);
  if (s == OD_ERR_NO_DEVICE) {
    fprintf(stderr, "test_cuda_graphs: skipped: %s\n", err.msg);
    return 77;
  }
  if (s != OD_OK) {
    fprintf(stderr, "test_cuda_graphs: cannot open cuda:0: %s\n", err.msg);
    return EXIT_FAILURE;
  }
  Suite *su = suite_create("cuda_graphs");
  TCase *tc = tcase_create("cuda_graphs");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_losses_dev);
  tcase_add_test(tc, test_optim_dev);
  tcase_add_test(tc, test_graph_replay);
  tcase_add_test(tc, test_capture_failures);
#ifdef OD_CUDA_EMU
  tcase_add_test(tc, test_emu_capture_rules);
#endif
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_set_fork_status(sr, CK_NOFORK); /* CUDA is not fork-safe */
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  od_device_close(g_dev);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
