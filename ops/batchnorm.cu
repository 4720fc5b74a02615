/* ops/batchnorm.cu: CUDA BatchNormalization, forward and backward, float32 (the semantics, the
 * outputs and the running-statistics update are those of ops/batchnorm.c; read it first).
 *
 * X is viewed as (N, F, P): F statistics (channels, or channels x positions for spatial=0), P
 * elements per statistic per image, M = N * P elements per statistic.
 *
 * Forward, training (batch statistics), three launches:
 *   bn_stats:  grid (chunks, F): block (j, f) reduces the j-th chunk of statistic f's M elements
 *              (walked in memory order: P-contiguous runs, coalesced) to (count, mean, M2) —
 *              per thread over groups of 4 loads, then a shared-memory tree, merged with Chan's
 *              update (ops/cuda/reduce.cuh), so large means do not cancel. Partials go to the
 *              workspace. Chunks are sized so that the grid has ~2048 blocks (many per channel
 *              for big feature maps, one per channel for small ones).
 *   bn_finish: a thread per statistic merges its chunks, and writes mean/var-derived mul, add
 *              (Y = X * mul + add), the optional outputs, the in-place running statistics (when
 *              the executor trains) and the batch mean and 1/sqrt(var + eps) kept in node state
 *              for the backward.
 *   bn_apply:  Y = X * mul[f] + add[f]: a 2-D grid (P-chunks, rows n*F+f) when P is large (16-byte
 *              accesses when P % 4 == 0 and the tensors are aligned), a flat grid-stride loop
 *              otherwise.
 * Forward, inference: bn_finish from the running statistics (inputs mean, var), then bn_apply.
 * Backward (the math of ops/batchnorm.c): bn_bwd_reduce (same grid as bn_stats) sums dY and
 * dY * (X - mean) per chunk; bn_bwd_finish (a thread per statistic) adds dscale, dB and forms the
 * per-statistic coefficients; bn_bwd_apply adds dX = k dY - c1 - c2 (X - mean). In inference mode
 * with no dscale/dB wanted the reduction is skipped. The training backward uses the statistics the
 * forward saved in node state for this X, or recomputes them (no state). Fresh gradients (ops/op.h
 * din_fresh) are stored instead of added: dX by bn_bwd_apply, dscale and dB by bn_bwd_finish (dscale
 * before dB, so one buffer for both takes the write then the add).
 * All statistics and sums are float32. */
#include "ops/cuda/reduce.cuh"

extern "C" {
#include "ops/batchnorm.h"
}

#include <stdlib.h>

/* ---- geometry ------------------------------------------------------------------------------- */

/* Walk of one statistic's M elements: element v of statistic f is X[(n * F + f) * P + p] with
 * n = v / P, p = v % P. A thread steps v by OD_RED_THREADS: p by step_p, n by step_n, plus a wrap. */
struct bn_geom {
  int64_t N, F, P, M;
  int64_t chunk;      /* elements of M per block */
  int64_t nchunk;
  int64_t step_n, step_p;
};

static bn_geom bn_geom_make(int64_t N, int64_t F, int64_t P) {
  bn_geom g;
  g.N = N;
  g.F = F;
  g.P = P;
  g.M = N * P;
  int64_t want = (2048 + F - 1) / F;              /* blocks per statistic to fill the GPU */
  int64_t by_size = (g.M + 2047) / 2048;          /* but >= 2048 elements (8 per thread) each */
  int64_t nb = want < by_size ? want : by_size;
  if (nb < 1) nb = 1;
  g.chunk = g.M > 0 ? (g.M + nb - 1) / nb : 1;
  g.nchunk = g.M > 0 ? (g.M + g.chunk - 1) / g.chunk : 1;
  g.step_n = P > 0 ? OD_RED_THREADS / P : 0;
  g.step_p = P > 0 ? OD_RED_THREADS % P : 0;
  return g;
}

/* A thread's cursor over its chunk of statistic f. */
struct bn_cursor {
  int64_t v, end, p, off, d_main, d_wrap;
};

static __device__ inline bn_cursor bn_cursor_start(const bn_geom &g, int64_t f) {
  bn_cursor c;
  int64_t begin = (int64_t)blockIdx.x * g.chunk;
  c.end = begin + g.chunk < g.M ? begin + g.chunk : g.M;
  c.v = begin + threadIdx.x;
  int64_t n = g.P > 0 ? c.v / g.P : 0;
  c.p = g.P > 0 ? c.v % g.P : 0;
  c.off = (n * g.F + f) * g.P + c.p;
  c.d_main = g.step_n * g.F * g.P + g.step_p;
  c.d_wrap = g.F * g.P - g.P;
  return c;
}

static __device__ inline void bn_cursor_next(const bn_geom &g, bn_cursor *c) {
  c->v += OD_RED_THREADS;
  c->p += g.step_p;
  c->off += c->d_main;
  if (c->p >= g.P) {
    c->p -= g.P;
    c->off += c->d_wrap;
  }
}

/* ---- kernels -------------------------------------------------------------------------------- */

/* part[(f * nchunk + j) * 3 + {0, 1, 2}] = (count, mean, M2) of chunk j of statistic f. */
static __global__ void bn_stats_kernel(const float *x, bn_geom g, float *part) {
  __shared__ float shn[OD_RED_THREADS], shm[OD_RED_THREADS], shq[OD_RED_THREADS];
  for (int64_t f = blockIdx.y; f < g.F; f += gridDim.y) {
    bn_cursor c = bn_cursor_start(g, f);
    od_welford w = {0.f, 0.f, 0.f};
    while (c.v < c.end) {
      float a[4];
      float k = 0.f;
      for (int u = 0; u < 4; u++) { /* four independent loads in flight */
        a[u] = 0.f;
        if (c.v < c.end) {
          a[u] = x[c.off];
          k += 1.f;
        }
        bn_cursor_next(g, &c);
      }
      float gm = (a[0] + a[1] + a[2] + a[3]) / k, q = 0.f;
      for (int u = 0; u < 4; u++)
        if ((float)u < k) q += (a[u] - gm) * (a[u] - gm);
      od_welford b = {k, gm, q};
      od_welford_merge(&w, b);
    }
    w = od_block_welford(w, shn, shm, shq);
    if (threadIdx.x == 0) {
      float *o = part + (f * g.nchunk + blockIdx.x) * 3;
      o[0] = w.n;
      o[1] = w.mean;
      o[2] = w.m2;
    }
  }
}

/* What bn_finish reads and writes (NULL pointers: not wanted / not given). */
struct bn_finish_args {
  const float *part;            /* chunk statistics (training), or NULL: use run_mean/run_var */
  int64_t nchunk, F;
  float eps, momentum;
  const float *scale, *bias;
  const float *run_mean, *run_var; /* inputs 3, 4 */
  float *upd_mean, *upd_var;    /* the same, updated in place (executor trains) */
  float *out_mean, *out_var, *out_saved_mean, *out_saved_var; /* optional outputs 1..4 */
  float *mul, *add;             /* Y = X * mul + add */
  float *keep_mean, *keep_inv;  /* batch mean and 1/sqrt(var + eps) for the backward */
};

static __global__ void bn_finish_kernel(bn_finish_args a) {
  OD_GRID_LOOP(f, a.F) {
    float mean, var;
    if (a.part) {
      od_welford w = {0.f, 0.f, 0.f};
      for (int64_t j = 0; j < a.nchunk; j++) {
        const float *p = a.part + (f * a.nchunk + j) * 3;
        od_welford b = {p[0], p[1], p[2]};
        od_welford_merge(&w, b);
      }
      mean = w.n > 0.f ? w.mean : 0.f;
      var = w.n > 0.f ? w.m2 / w.n : 0.f;
    } else {
      mean = a.run_mean[f];
      var = a.run_var[f];
    }
    float inv = 1.0f / sqrtf(var + a.eps);
    if (a.mul) {
      float m = a.scale[f] * inv;
      a.mul[f] = m;
      a.add[f] = a.bias[f] - mean * m;
    }
    if (a.keep_mean) {
      a.keep_mean[f] = mean;
      a.keep_inv[f] = inv;
    }
    if (a.out_mean || a.out_var || a.upd_mean) {
      float rm = a.run_mean[f], rv = a.run_var[f]; /* read before any in-place write */
      float nm = rm, nv = rv;
      if (a.part) {
        nm = rm * a.momentum + mean * (1.f - a.momentum);
        nv = rv * a.momentum + var * (1.f - a.momentum);
      }
      if (a.out_mean) a.out_mean[f] = nm;
      if (a.out_var) a.out_var[f] = nv;
      if (a.upd_mean) {
        a.upd_mean[f] = rm * a.momentum + mean * (1.f - a.momentum);
        a.upd_var[f] = rv * a.momentum + var * (1.f - a.momentum);
      }
    }
    if (a.out_saved_mean) a.out_saved_mean[f] = mean;
    if (a.out_saved_var) a.out_saved_var[f] = var;
  }
}

/* Y = X * mul[f] + add[f]: rows r = n * F + f of P elements (grid y over rows, x over P). */
static __global__ void bn_apply_rows_kernel(const float *x, float *y, const float *mul, const float *add, int64_t F,
                                            int64_t P, int64_t rows) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    int64_t f = r % F;
    float m = mul[f], b = add[f];
    const float *xr = x + r * P;
    float *yr = y + r * P;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < P; i += (int64_t)blockDim.x * gridDim.x)
      yr[i] = xr[i] * m + b;
  }
}

/* The same with 16-byte loads and stores (P % 4 == 0 and 16-byte aligned tensors): each thread
 * keeps more bytes in flight, which the memory-bound passes over big feature maps need. */
struct __align__(16) bn_f4 {
  float a, b, c, d;
};

static __global__ void bn_apply_rows4_kernel(const bn_f4 *x, bn_f4 *y, const float *mul, const float *add, int64_t F,
                                             int64_t P4, int64_t rows) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    int64_t f = r % F;
    float m = mul[f], b = add[f];
    const bn_f4 *xr = x + r * P4;
    bn_f4 *yr = y + r * P4;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < P4; i += (int64_t)blockDim.x * gridDim.x) {
      bn_f4 v = xr[i];
      v.a = v.a * m + b;
      v.b = v.b * m + b;
      v.c = v.c * m + b;
      v.d = v.d * m + b;
      yr[i] = v;
    }
  }
}

static __global__ void bn_apply_flat_kernel(const float *x, float *y, const float *mul, const float *add, int64_t F,
                                            int64_t P, int64_t total) {
  OD_GRID_LOOP(i, total) {
    int64_t f = (i / P) % F;
    y[i] = x[i] * mul[f] + add[f];
  }
}

/* part[(f * nchunk + j) * 2 + {0, 1}] = sum of dY, sum of dY * (X - mean[f]) over chunk j. */
static __global__ void bn_bwd_reduce_kernel(const float *x, const float *dy, const float *mean, bn_geom g,
                                            float *part) {
  __shared__ float sha[OD_RED_THREADS], shb[OD_RED_THREADS];
  for (int64_t f = blockIdx.y; f < g.F; f += gridDim.y) {
    bn_cursor c = bn_cursor_start(g, f);
    float mu = mean[f], s1 = 0.f, s2 = 0.f;
    while (c.v < c.end) {
      float d[4], xv[4];
      for (int u = 0; u < 4; u++) {
        d[u] = 0.f;
        xv[u] = mu;
        if (c.v < c.end) {
          d[u] = dy[c.off];
          xv[u] = x[c.off];
        }
        bn_cursor_next(g, &c);
      }
      for (int u = 0; u < 4; u++) {
        s1 += d[u];
        s2 += d[u] * (xv[u] - mu);
      }
    }
    od_block_sum2_f32(&s1, &s2, sha, shb);
    if (threadIdx.x == 0) {
      float *o = part + (f * g.nchunk + blockIdx.x) * 2;
      o[0] = s1;
      o[1] = s2;
    }
  }
}

struct bn_bwd_finish_args {
  const float *part;            /* NULL: no sums (inference, dscale and dB not wanted) */
  int64_t nchunk, F;
  float m, eps;                 /* elements per statistic, epsilon */
  bool training;
  const float *scale, *mean;
  const float *inv;             /* 1/sqrt(var + eps), or NULL: compute from var */
  const float *var;
  float *dscale, *dbias;        /* accumulate (store where w_scale, w_bias), or NULL */
  bool w_scale, w_bias;
  float *coef;                  /* per f: k, c1, c2, mean: dX += k dY - c1 - c2 (X - mean) */
};

static __global__ void bn_bwd_finish_kernel(bn_bwd_finish_args a) {
  OD_GRID_LOOP(f, a.F) {
    float s1 = 0.f, s2 = 0.f;
    if (a.part)
      for (int64_t j = 0; j < a.nchunk; j++) {
        s1 += a.part[(f * a.nchunk + j) * 2];
        s2 += a.part[(f * a.nchunk + j) * 2 + 1];
      }
    float inv = a.inv ? a.inv[f] : 1.0f / sqrtf(a.var[f] + a.eps);
    s2 *= inv; /* sum of dY * xhat */
    if (a.dscale) a.dscale[f] = a.w_scale ? s2 : a.dscale[f] + s2;
    if (a.dbias) a.dbias[f] = a.w_bias ? s1 : a.dbias[f] + s1;
    float k = a.scale[f] * inv, c1 = 0.f, c2 = 0.f;
    if (a.training && a.m > 0.f) {
      c1 = k * s1 / a.m;
      c2 = k * s2 / a.m * inv;
    }
    a.coef[f * 4] = k;
    a.coef[f * 4 + 1] = c1;
    a.coef[f * 4 + 2] = c2;
    a.coef[f * 4 + 3] = a.mean[f];
  }
}

/* dX += k dY - c1 - c2 (X - mean) (W: dX =) */
template <bool W>
static __global__ void bn_bwd_apply_rows_kernel(const float *x, const float *dy, float *dx, const float *coef,
                                                int64_t F, int64_t P, int64_t rows) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const float *cf = coef + (r % F) * 4;
    float k = cf[0], c1 = cf[1], c2 = cf[2], mu = cf[3];
    const float *xr = x + r * P, *dr = dy + r * P;
    float *o = dx + r * P;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < P; i += (int64_t)blockDim.x * gridDim.x) {
      float v = k * dr[i] - c1 - c2 * (xr[i] - mu);
      o[i] = W ? v : o[i] + v;
    }
  }
}

template <bool W>
static __global__ void bn_bwd_apply_rows4_kernel(const bn_f4 *x, const bn_f4 *dy, bn_f4 *dx, const float *coef,
                                                 int64_t F, int64_t P4, int64_t rows) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const float *cf = coef + (r % F) * 4;
    float k = cf[0], c1 = cf[1], c2 = cf[2], mu = cf[3];
    const bn_f4 *xr = x + r * P4, *dr = dy + r * P4;
    bn_f4 *o = dx + r * P4;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < P4; i += (int64_t)blockDim.x * gridDim.x) {
      bn_f4 xv = xr[i], d = dr[i], v;
      v.a = k * d.a - c1 - c2 * (xv.a - mu);
      v.b = k * d.b - c1 - c2 * (xv.b - mu);
      v.c = k * d.c - c1 - c2 * (xv.c - mu);
      v.d = k * d.d - c1 - c2 * (xv.d - mu);
      if (!W) {
        bn_f4 g = o[i];
        v.a += g.a, v.b += g.b, v.c += g.c, v.d += g.d;
      }
      o[i] = v;
    }
  }
}

template <bool W>
static __global__ void bn_bwd_apply_flat_kernel(const float *x, const float *dy, float *dx, const float *coef,
                                                int64_t F, int64_t P, int64_t total) {
  OD_GRID_LOOP(i, total) {
    const float *cf = coef + ((i / P) % F) * 4;
    float v = cf[0] * dy[i] - cf[1] - cf[2] * (x[i] - cf[3]);
    dx[i] = W ? v : dx[i] + v;
  }
}

/* ---- node state: the batch statistics of the last training forward -------------------------- */

struct bn_state {
  od_node_state base;
  float *buf;                   /* mean[cap], inv[cap] */
  int64_t cap;
  const void *x;                /* the X they belong to (NULL: none) */
  int64_t F, M;
};

static void bn_state_destroy(od_node_state *self, od_device *dev) {
  bn_state *s = (bn_state *)self;
  if (s->buf) dev->ops->free(dev, s->buf);
  free(s);
}

/* This node's state with room for F statistics, or NULL when the caller keeps none. */
static od_status bn_state_get(od_kernel_ctx *ctx, int64_t F, bn_state **out) {
  *out = NULL;
  if (!ctx->state) return OD_OK;
  bn_state *s = (bn_state *)*ctx->state;
  if (!s) {
    s = (bn_state *)calloc(1, sizeof *s);
    if (!s) return od_err_set(ctx->err, OD_ERR_OOM, "BatchNormalization: out of memory for node state");
    s->base.destroy = bn_state_destroy;
    *ctx->state = &s->base;
  }
  if (s->cap < F) {
    if (s->buf) ctx->dev->ops->free(ctx->dev, s->buf);
    s->buf = NULL;
    s->cap = 0;
    s->x = NULL;
    void *p;
    OD_TRY(ctx->dev->ops->alloc(ctx->dev, sizeof(float) * 2 * (size_t)F, &p, ctx->err));
    s->buf = (float *)p;
    s->cap = F;
  }
  *out = s;
  return OD_OK;
}

/* ---- host side ------------------------------------------------------------------------------ */

static float *bn_f32(const od_tensor *t) { return t ? (float *)t->data : NULL; }

/* Checks the dtypes (all float32 here; the rest runs on the CPU) and gets N, F, P. */
static od_status bn_shape(od_kernel_ctx *ctx, int64_t *N, int64_t *F, int64_t *P) {
  const bn_attrs *a = (const bn_attrs *)ctx->attrs;
  if (ctx->n_in != 5) return od_err_set(ctx->err, OD_ERR_INVALID_MODEL, "BatchNormalization needs 5 inputs");
  for (int i = 0; i < 5; i++)
    if (!ctx->in[i] || ctx->in[i]->dtype != OD_DTYPE_FLOAT)
      return od_err_set(ctx->err, OD_ERR_UNSUPPORTED,
                        "CUDA BatchNormalization takes float32 tensors only (input %d is %s)", i,
                        ctx->in[i] ? od_dtype_name(ctx->in[i]->dtype) : "missing");
  const od_tensor *x = ctx->in[0];
  int64_t plane = 1;
  for (int i = 2; i < x->rank; i++) plane *= x->dims[i];
  *N = x->dims[0];
  *F = a->spatial ? x->dims[1] : x->dims[1] * plane;
  *P = a->spatial ? plane : 1;
  return OD_OK;
}

/* True when the row kernels can use 16-byte accesses on these pointers. */
static bool bn_vec4(int64_t P, const void *a, const void *b, const void *c) {
  return P % 4 == 0 && ((uintptr_t)a & 15) == 0 && ((uintptr_t)b & 15) == 0 && ((uintptr_t)c & 15) == 0;
}

/* Grid of the row kernels: x over the row (about 4 vectors or elements per thread), y over rows. */
static dim3 bn_rows_grid(int64_t per_row, int64_t rows) {
  return dim3((unsigned)((per_row + 4 * OD_CUDA_THREADS - 1) / (4 * OD_CUDA_THREADS)), od_red_blocks(rows, 65535));
}

/* Y = X * mul + add on the stream. */
static od_status bn_apply(od_kernel_ctx *ctx, const float *x, float *y, const float *mul, const float *add,
                          int64_t N, int64_t F, int64_t P) {
  cudaStream_t st = od_cuda_stream(ctx->dev);
  int64_t rows = N * F;
  if (rows * P == 0) return OD_OK;
  if (P >= 64 && bn_vec4(P, x, y, y)) {
    OD_LAUNCH(bn_apply_rows4_kernel, bn_rows_grid(P / 4, rows), OD_CUDA_THREADS, st)((const bn_f4 *)x, (bn_f4 *)y, mul,
                                                                                    add, F, P / 4, rows);
  } else if (P >= 64) {
    OD_LAUNCH(bn_apply_rows_kernel, bn_rows_grid(P, rows), OD_CUDA_THREADS, st)(x, y, mul, add, F, P, rows);
  } else {
    OD_LAUNCH(bn_apply_flat_kernel, od_cuda_blocks(rows * P), OD_CUDA_THREADS, st)(x, y, mul, add, F, P, rows * P);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

extern "C" od_status od_cuda_batchnorm_fwd(od_kernel_ctx *ctx) {
  const bn_attrs *a = (const bn_attrs *)ctx->attrs;
  int64_t N, F, P;
  OD_TRY(bn_shape(ctx, &N, &F, &P));
  bool training = a->training_mode || ctx->training;
  bool old = ctx->node->opset < 14;
  if (!training && old && ctx->n_out > 3 && (ctx->out[3] || (ctx->n_out > 4 && ctx->out[4])))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED,
                      "outputs saved_mean/saved_var exist only in training; this model runs BatchNormalization "
                      "in inference mode");
  for (int i = 1; i < ctx->n_out; i++)
    if (ctx->out[i] && ctx->out[i]->dtype != OD_DTYPE_FLOAT)
      return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "CUDA BatchNormalization: output %d is not float32", i);
  if (F == 0) return OD_OK;
  bn_geom g = bn_geom_make(N, F, P);
  bn_state *s = NULL;
  if (training) OD_TRY(bn_state_get(ctx, F, &s));

  /* workspace: mul[F], add[F], then the chunk statistics (training) */
  size_t n_ws = 2 * (size_t)F + (training ? 3 * (size_t)F * (size_t)g.nchunk : 0);
  void *ws;
  OD_TRY(od_cuda_workspace(ctx->dev, sizeof(float) * n_ws, &ws, ctx->err));
  float *mul = (float *)ws, *add = mul + F, *part = add + F;
  cudaStream_t st = od_cuda_stream(ctx->dev);
  const float *x = bn_f32(ctx->in[0]);

  if (training) {
    dim3 grid((unsigned)g.nchunk, od_red_blocks(F, 65535));
    OD_LAUNCH(bn_stats_kernel, grid, OD_RED_THREADS, st)(x, g, part);
    OD_CUDA_LAUNCHED(ctx);
  }
  bn_finish_args fa = {};
  fa.part = training ? part : NULL;
  fa.nchunk = g.nchunk;
  fa.F = F;
  fa.eps = a->epsilon;
  fa.momentum = a->momentum;
  fa.scale = bn_f32(ctx->in[1]);
  fa.bias = bn_f32(ctx->in[2]);
  fa.run_mean = bn_f32(ctx->in[3]);
  fa.run_var = bn_f32(ctx->in[4]);
  if (ctx->training) { /* compiled for training: the running statistics are state */
    fa.upd_mean = bn_f32(ctx->in[3]);
    fa.upd_var = bn_f32(ctx->in[4]);
  }
  fa.out_mean = ctx->n_out > 1 ? bn_f32(ctx->out[1]) : NULL;
  fa.out_var = ctx->n_out > 2 ? bn_f32(ctx->out[2]) : NULL;
  fa.out_saved_mean = ctx->n_out > 3 ? bn_f32(ctx->out[3]) : NULL;
  fa.out_saved_var = ctx->n_out > 4 ? bn_f32(ctx->out[4]) : NULL;
  fa.mul = mul;
  fa.add = add;
  if (s) {
    fa.keep_mean = s->buf;
    fa.keep_inv = s->buf + s->cap;
  }
  OD_LAUNCH(bn_finish_kernel, od_cuda_blocks(F), OD_CUDA_THREADS, st)(fa);
  OD_CUDA_LAUNCHED(ctx);
  if (s) {
    s->x = x;
    s->F = F;
    s->M = g.M;
  }
  return bn_apply(ctx, x, bn_f32(ctx->out[0]), mul, add, N, F, P);
}

extern "C" od_status od_cuda_batchnorm_bwd(od_kernel_ctx *ctx) {
  const bn_attrs *a = (const bn_attrs *)ctx->attrs;
  const od_tensor *dyt = ctx->dout[0];
  if (!dyt) return od_cuda_fresh_zero(ctx, 7u); /* only Y is differentiated: a fresh gradient is 0 */
  int64_t N, F, P;
  OD_TRY(bn_shape(ctx, &N, &F, &P));
  float *dx = bn_f32(ctx->din[0]), *dscale = bn_f32(ctx->din[1]), *dbias = bn_f32(ctx->din[2]);
  for (int i = 0; i < 3; i++)
    if (ctx->din[i] && ctx->din[i]->dtype != OD_DTYPE_FLOAT)
      return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "CUDA BatchNormalization: gradient %d is not float32", i);
  if (dyt->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "CUDA BatchNormalization: dY is not float32");
  if (F == 0 || (!dx && !dscale && !dbias)) return OD_OK;
  bool training = a->training_mode || ctx->training;
  bn_geom g = bn_geom_make(N, F, P);
  const float *x = bn_f32(ctx->in[0]), *dy = (const float *)dyt->data;
  cudaStream_t st = od_cuda_stream(ctx->dev);

  /* The batch statistics: saved by the forward for this X, else recomputed. */
  const float *mean = NULL, *inv = NULL;
  bool recompute = false;
  if (training) {
    bn_state *s = ctx->state ? (bn_state *)*ctx->state : NULL;
    if (s && s->x == x && s->F == F && s->M == g.M) {
      mean = s->buf;
      inv = s->buf + s->cap;
    } else {
      recompute = true;
    }
  } else {
    mean = bn_f32(ctx->in[3]);
  }
  bool sums = training || dscale || dbias;

  /* workspace: coef[4F], part[2 F nchunk], then (recompute) mean[F], inv[F], stats part[3 F nchunk] */
  size_t fc = (size_t)F * (size_t)g.nchunk;
  size_t n_ws = 4 * (size_t)F + (sums ? 2 * fc : 0) + (recompute ? 2 * (size_t)F + 3 * fc : 0);
  void *ws;
  OD_TRY(od_cuda_workspace(ctx->dev, sizeof(float) * n_ws, &ws, ctx->err));
  float *coef = (float *)ws, *part = coef + 4 * F, *rest = part + (sums ? 2 * fc : 0);
  dim3 grid((unsigned)g.nchunk, od_red_blocks(F, 65535));

  if (recompute) {
    float *rmean = rest, *rinv = rest + F, *spart = rest + 2 * F;
    OD_LAUNCH(bn_stats_kernel, grid, OD_RED_THREADS, st)(x, g, spart);
    OD_CUDA_LAUNCHED(ctx);
    bn_finish_args fa = {};
    fa.part = spart;
    fa.nchunk = g.nchunk;
    fa.F = F;
    fa.eps = a->epsilon;
    fa.keep_mean = rmean;
    fa.keep_inv = rinv;
    OD_LAUNCH(bn_finish_kernel, od_cuda_blocks(F), OD_CUDA_THREADS, st)(fa);
    OD_CUDA_LAUNCHED(ctx);
    mean = rmean;
    inv = rinv;
  }
  if (sums) {
    OD_LAUNCH(bn_bwd_reduce_kernel, grid, OD_RED_THREADS, st)(x, dy, mean, g, part);
    OD_CUDA_LAUNCHED(ctx);
  }
  bn_bwd_finish_args ba = {};
  ba.part = sums ? part : NULL;
  ba.nchunk = g.nchunk;
  ba.F = F;
  ba.m = (float)g.M;
  ba.eps = a->epsilon;
  ba.training = training;
  ba.scale = bn_f32(ctx->in[1]);
  ba.mean = mean;
  ba.inv = inv;
  ba.var = bn_f32(ctx->in[4]);
  ba.dscale = dscale;
  ba.dbias = dbias;
  ba.w_scale = od_cuda_fresh(ctx, 1);
  ba.w_bias = od_cuda_fresh(ctx, 2);
  ba.coef = coef;
  OD_LAUNCH(bn_bwd_finish_kernel, od_cuda_blocks(F), OD_CUDA_THREADS, st)(ba);
  OD_CUDA_LAUNCHED(ctx);
  if (!dx) return OD_OK;
  int64_t rows = N * F;
  if (rows * P == 0) return OD_OK;
  bool w = od_cuda_fresh(ctx, 0);
  if (P >= 64 && bn_vec4(P, x, dy, dx)) {
    OD_LAUNCH((w ? bn_bwd_apply_rows4_kernel<true> : bn_bwd_apply_rows4_kernel<false>), bn_rows_grid(P / 4, rows),
              OD_CUDA_THREADS, st)((const bn_f4 *)x, (const bn_f4 *)dy, (bn_f4 *)dx, coef, F, P / 4, rows);
  } else if (P >= 64) {
    OD_LAUNCH((w ? bn_bwd_apply_rows_kernel<true> : bn_bwd_apply_rows_kernel<false>), bn_rows_grid(P, rows),
              OD_CUDA_THREADS, st)(x, dy, dx, coef, F, P, rows);
  } else {
    OD_LAUNCH((w ? bn_bwd_apply_flat_kernel<true> : bn_bwd_apply_flat_kernel<false>), od_cuda_blocks(rows * P),
              OD_CUDA_THREADS, st)(x, dy, dx, coef, F, P, rows * P);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}
