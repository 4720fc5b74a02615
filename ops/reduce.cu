/* ops/reduce.cu: CUDA forward and backward of the ten Reduce* ops (ReduceSum, ReduceMean,
 * ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum,
 * ReduceLogSumExp), float32, axes as attribute or as input, keepdims, noop_with_empty_axes: the
 * semantics of ops/reduce.c (same axes logic through reduce_mask, ops/reduce.h). Accumulation is in
 * double, as on the CPU (free for these memory-bound loops). Other dtypes return OD_ERR_UNSUPPORTED.
 *
 * Layout: dims of size 1 dropped, runs of kept / reduced dims merged into groups; output o reads
 * x[base(o) + roff(j)], j in [0, r), base and roff decoded from the kept and reduced groups.
 * Parallelisation (forward and backward):
 *   block kernel: a block per (output, chunk of j), threads striding j (coalesced when the last
 *     group is reduced), shared-memory trees; used when the rows are contiguous and r >= 64, or
 *     when there are few outputs with long reductions. With several chunks per output (few
 *     outputs, e.g. a loss reduced to a scalar) the forward writes partials to the workspace and a
 *     finishing kernel combines them; the backward chunks without any combination except for
 *     Max/Min/Prod (their tie count / zero count need the whole line: one chunk).
 *   thread kernel: a thread per output (coalesced when the reduced axis is not the last: reducing
 *     over channels, batch...).
 * An axes input lives on the device: it is copied to the host once (the executor places a node on
 * the device only when its output shape, hence its axes, are known at compile time) and kept in
 * node state, keyed by its address. */
#include "ops/cuda/reduce.cuh"

extern "C" {
#include "ops/reduce.h"
}

#include <stdlib.h>
#include <string.h>

/* ---- layout --------------------------------------------------------------------------------- */

struct red_layout {
  int nk, nr;                    /* kept / reduced groups, outermost first */
  int64_t kdim[OD_MAX_DIMS], kstr[OD_MAX_DIMS];
  int64_t rdim[OD_MAX_DIMS], rstr[OD_MAX_DIMS];
  int64_t n_out, r;
  bool last_reduced;             /* the innermost group is reduced (contiguous rows) */
};

static void red_layout_make(const od_tensor *x, const bool *mask, red_layout *L) {
  int64_t gdim[OD_MAX_DIMS];
  bool gred[OD_MAX_DIMS];
  int g = 0;
  for (int d = 0; d < x->rank; d++) {
    if (x->dims[d] == 1) continue;
    if (g > 0 && gred[g - 1] == mask[d]) {
      gdim[g - 1] *= x->dims[d];
    } else {
      gdim[g] = x->dims[d];
      gred[g] = mask[d];
      g++;
    }
  }
  memset(L, 0, sizeof *L);
  L->n_out = 1;
  L->r = 1;
  int64_t stride = 1, gstr[OD_MAX_DIMS];
  for (int i = g - 1; i >= 0; i--) {
    gstr[i] = stride;
    stride *= gdim[i];
  }
  for (int i = 0; i < g; i++) {
    if (gred[i]) {
      L->rdim[L->nr] = gdim[i];
      L->rstr[L->nr++] = gstr[i];
      L->r *= gdim[i];
    } else {
      L->kdim[L->nk] = gdim[i];
      L->kstr[L->nk++] = gstr[i];
      L->n_out *= gdim[i];
    }
  }
  L->last_reduced = g > 0 && gred[g - 1];
}

static __device__ inline int64_t red_base(const red_layout &L, int64_t o) {
  int64_t off = 0;
  for (int i = L.nk - 1; i >= 0; i--) {
    int64_t q = o / L.kdim[i];
    off += (o - q * L.kdim[i]) * L.kstr[i];
    o = q;
  }
  return off;
}

static __device__ inline int64_t red_roff(const red_layout &L, int64_t j) {
  if (L.nr <= 1) return L.nr ? j * L.rstr[0] : 0;
  int64_t off = 0;
  for (int i = L.nr - 1; i >= 0; i--) {
    int64_t q = j / L.rdim[i];
    off += (j - q * L.rdim[i]) * L.rstr[i];
    j = q;
  }
  return off;
}

/* ---- the reductions: pre(x) combined by max, min, product or sum, then post ----------------- */

static __device__ inline double red_identity(int kind) {
  switch (kind) {
    case REDUCE_MAX: return -INFINITY;
    case REDUCE_MIN: return INFINITY;
    case REDUCE_PROD: return 1.0;
    default: return 0.0;
  }
}

static __device__ inline double red_pre(int kind, float v) {
  switch (kind) {
    case REDUCE_L1: return fabs((double)v);
    case REDUCE_L2:
    case REDUCE_SUM_SQUARE: return (double)v * (double)v;
    default: return (double)v;
  }
}

/* Max and Min propagate NaN, as the CPU's (v > m || v != v). */
static __device__ inline double red_combine(int kind, double a, double b) {
  switch (kind) {
    case REDUCE_MAX: return (b > a || b != b) ? b : a;
    case REDUCE_MIN: return (b < a || b != b) ? b : a;
    case REDUCE_PROD: return a * b;
    default: return a + b;
  }
}

static __device__ inline float red_post(int kind, double acc, int64_t r) {
  switch (kind) {
    case REDUCE_MEAN: return r ? (float)(acc / (double)r) : NAN;
    case REDUCE_L2: return (float)sqrt(acc);
    case REDUCE_LOG_SUM: return (float)log(acc);
    default: return (float)acc;
  }
}

static __device__ inline double red_block_combine(int kind, double v, double *sh) {
  unsigned t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] = red_combine(kind, sh[t], sh[t + s]);
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

/* Serial reduction of one output's line (thread kernel), LogSumExp included. */
static __device__ inline float red_line(int kind, const float *x, const red_layout &L) {
  if (kind == REDUCE_LOG_SUM_EXP) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < L.r; j++) m = fmax(m, (double)x[red_roff(L, j)]);
    if (L.r == 0 || isinf(m)) return (float)m;
    for (int64_t j = 0; j < L.r; j++) s += exp((double)x[red_roff(L, j)] - m);
    return (float)(m + log(s));
  }
  double acc = red_identity(kind);
  for (int64_t j = 0; j < L.r; j++) acc = red_combine(kind, acc, red_pre(kind, x[red_roff(L, j)]));
  return red_post(kind, acc, L.r);
}

static __global__ void red_thread_kernel(const float *x, float *y, red_layout L, int kind) {
  OD_GRID_LOOP(o, L.n_out) y[o] = red_line(kind, x + red_base(L, o), L);
}

/* Block (o, c) reduces j in [c * chunk, (c + 1) * chunk) of output o: into y[o] when there is one
 * chunk, else into part[o * gridDim.y + c]. LogSumExp: one chunk. */
static __global__ void red_block_kernel(const float *x, float *y, double *part, red_layout L, int kind,
                                        int64_t chunk) {
  __shared__ double sh[OD_RED_THREADS];
  int64_t j0 = (int64_t)blockIdx.y * chunk, j1 = j0 + chunk < L.r ? j0 + chunk : L.r;
  for (int64_t o = blockIdx.x; o < L.n_out; o += gridDim.x) {
    const float *xo = x + red_base(L, o);
    if (kind == REDUCE_LOG_SUM_EXP) {
      double m = -INFINITY, s = 0;
      for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) m = fmax(m, (double)xo[red_roff(L, j)]);
      m = red_block_combine(REDUCE_MAX, m, sh); /* no NaN left after fmax, unless all are */
      if (L.r == 0 || isinf(m)) {
        if (threadIdx.x == 0) y[o] = (float)m;
        continue;
      }
      for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) s += exp((double)xo[red_roff(L, j)] - m);
      s = red_block_combine(REDUCE_SUM, s, sh);
      if (threadIdx.x == 0) y[o] = (float)(m + log(s));
      continue;
    }
    double acc = red_identity(kind);
    for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x)
      acc = red_combine(kind, acc, red_pre(kind, xo[red_roff(L, j)]));
    acc = red_block_combine(kind, acc, sh);
    if (threadIdx.x == 0) {
      if (gridDim.y == 1) y[o] = red_post(kind, acc, L.r);
      else part[o * gridDim.y + blockIdx.y] = acc;
    }
  }
}

static __global__ void red_finish_kernel(const double *part, float *y, int64_t n_out, int64_t nchunk, int64_t r,
                                         int kind) {
  OD_GRID_LOOP(o, n_out) {
    double acc = red_identity(kind);
    for (int64_t c = 0; c < nchunk; c++) acc = red_combine(kind, acc, part[o * nchunk + c]);
    y[o] = red_post(kind, acc, r);
  }
}

/* ---- backward (the formulas of ops/reduce.c, in double) ------------------------------------- */

/* Per-output facts the gradient needs beyond y and dY: Max/Min the number of ties, Prod the number
 * of zeros and the product of the other elements. */
struct red_aux {
  double ties, zeros, prod;
};

static __device__ inline bool red_needs_aux(int kind) {
  return kind == REDUCE_MAX || kind == REDUCE_MIN || kind == REDUCE_PROD;
}

static __device__ inline void red_aux_add(int kind, red_aux *a, float v, float y) {
  if (kind == REDUCE_PROD) {
    if (v == 0.f) a->zeros += 1;
    else a->prod *= v;
  } else {
    a->ties += v == y;
  }
}

/* dx += the gradient of element v (only where the CPU writes). */
static __device__ inline void red_grad(int kind, float *dx, float v, double d, double y, int64_t r,
                                       const red_aux &a) {
  switch (kind) {
    case REDUCE_SUM: *dx += (float)d; break;
    case REDUCE_MEAN: *dx += (float)(d / (double)r); break;
    case REDUCE_MAX:
    case REDUCE_MIN:
      if (a.ties > 0 && v == (float)y) *dx += (float)(d / a.ties);
      break;
    case REDUCE_PROD:
      if (a.zeros == 1 && v == 0.f) *dx += (float)(d * a.prod);
      else if (a.zeros == 0) *dx += (float)(d * a.prod / (double)v);
      break;
    case REDUCE_L1: *dx += (float)(v > 0 ? d : v < 0 ? -d : 0.0); break;
    case REDUCE_L2:
      if (y != 0) *dx += (float)(d * (double)v / y);
      break;
    case REDUCE_SUM_SQUARE: *dx += (float)(2 * d * (double)v); break;
    case REDUCE_LOG_SUM: *dx += (float)(d * exp(-y)); break;
    case REDUCE_LOG_SUM_EXP: *dx += (float)(d * exp((double)v - y)); break;
  }
}

static __global__ void red_bwd_thread_kernel(const float *x, const float *y, const float *dy, float *dx, red_layout L,
                                             int kind) {
  OD_GRID_LOOP(o, L.n_out) {
    int64_t b = red_base(L, o);
    const float *xo = x + b;
    float *dxo = dx + b;
    float yv = y[o];
    double d = dy[o];
    red_aux a = {0, 0, 1};
    if (red_needs_aux(kind))
      for (int64_t j = 0; j < L.r; j++) red_aux_add(kind, &a, xo[red_roff(L, j)], yv);
    for (int64_t j = 0; j < L.r; j++) {
      int64_t e = red_roff(L, j);
      red_grad(kind, dxo + e, xo[e], d, yv, L.r, a);
    }
  }
}

/* Block (o, c) writes the gradient of j in [c * chunk, (c + 1) * chunk) of output o (Max, Min,
 * Prod: one chunk, their facts gathered by the block first). */
static __global__ void red_bwd_block_kernel(const float *x, const float *y, const float *dy, float *dx, red_layout L,
                                            int kind, int64_t chunk) {
  __shared__ double sha[OD_RED_THREADS], shb[OD_RED_THREADS];
  int64_t j0 = (int64_t)blockIdx.y * chunk, j1 = j0 + chunk < L.r ? j0 + chunk : L.r;
  for (int64_t o = blockIdx.x; o < L.n_out; o += gridDim.x) {
    int64_t b = red_base(L, o);
    const float *xo = x + b;
    float *dxo = dx + b;
    float yv = y[o];
    red_aux a = {0, 0, 1};
    if (red_needs_aux(kind)) {
      for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) red_aux_add(kind, &a, xo[red_roff(L, j)], yv);
      if (kind == REDUCE_PROD) {
        a.zeros = red_block_combine(REDUCE_SUM, a.zeros, sha);
        a.prod = red_block_combine(REDUCE_PROD, a.prod, shb);
      } else {
        a.ties = red_block_combine(REDUCE_SUM, a.ties, sha);
      }
    }
    double d = dy[o];
    for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
      int64_t e = red_roff(L, j);
      red_grad(kind, dxo + e, xo[e], d, yv, L.r, a);
    }
  }
}

/* ---- host side ------------------------------------------------------------------------------ */

/* The axes input copied to the host, kept per node. */
struct red_state {
  od_node_state base;
  const void *src;              /* device address it came from */
  int dtype;
  int64_t n;
  int64_t vals[OD_MAX_DIMS];
};

static void red_state_destroy(od_node_state *self, od_device *dev) {
  (void)dev;
  free(self);
}

/* mask[] from the attributes or the (device) axes input. */
static od_status red_mask(od_kernel_ctx *ctx, bool *mask) {
  const reduce_attrs *a = (const reduce_attrs *)ctx->attrs;
  const od_tensor *x = ctx->in[0];
  const od_tensor *axes_in = a->axes_input && ctx->n_in > 1 ? ctx->in[1] : NULL;
  if (!axes_in) return reduce_mask(a, x->rank, NULL, mask, ctx->err);
  od_tensor h = *axes_in; /* the same tensor, data on the host */
  int64_t n = od_tensor_numel(axes_in);
  size_t es = axes_in->dtype == OD_DTYPE_INT64 ? 8 : axes_in->dtype == OD_DTYPE_INT32 ? 4 : 0;
  int64_t vals[OD_MAX_DIMS];
  h.data = NULL;
  if (es && n > OD_MAX_DIMS)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "axes has %lld values for an input of rank %d", (long long)n, x->rank);
  if (es && n > 0) {
    red_state *s = ctx->state ? (red_state *)*ctx->state : NULL;
    if (s && s->src == axes_in->data && s->dtype == axes_in->dtype && s->n == n) {
      memcpy(vals, s->vals, sizeof vals);
    } else {
      OD_TRY(ctx->dev->ops->to_host(ctx->dev, vals, axes_in->data, es * (size_t)n, ctx->err));
      if (ctx->state) {
        if (!s) {
          s = (red_state *)calloc(1, sizeof *s);
          if (!s) return od_err_set(ctx->err, OD_ERR_OOM, "out of memory for a reduction's state");
          s->base.destroy = red_state_destroy;
          *ctx->state = &s->base;
        }
        s->src = axes_in->data;
        s->dtype = axes_in->dtype;
        s->n = n;
        memcpy(s->vals, vals, sizeof vals);
      }
    }
    h.data = vals;
  }
  return reduce_mask(a, x->rank, &h, mask, ctx->err);
}

static od_status red_setup(od_kernel_ctx *ctx, red_layout *L) {
  const od_tensor *x = ctx->in[0];
  if (x->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "CUDA Reduce* takes float32 only, not %s", od_dtype_name(x->dtype));
  bool mask[OD_MAX_DIMS];
  OD_TRY(red_mask(ctx, mask));
  red_layout_make(x, mask, L);
  if (L->n_out != od_tensor_numel(ctx->out[0]))
    return od_err_set(ctx->err, OD_ERR_INTERNAL, "output has %lld elements, the reduction gives %lld",
                      (long long)od_tensor_numel(ctx->out[0]), (long long)L->n_out);
  return OD_OK;
}

/* Block kernel or thread kernel, and the block kernel's threads and chunks. */
struct red_plan {
  bool block;
  unsigned threads;
  int64_t nchunk, chunk;
};

static red_plan red_plan_make(const red_layout *L, bool can_split) {
  red_plan p = {false, OD_RED_THREADS, 1, L->r > 0 ? L->r : 1};
  p.block = L->r >= 64 && (L->last_reduced || (L->r >= 1024 && L->n_out < 4096));
  if (!p.block) return p;
  p.threads = L->r >= OD_RED_THREADS ? OD_RED_THREADS : 64;
  if (can_split) {
    int64_t want = (1024 + L->n_out - 1) / L->n_out, by_size = L->r / 4096;
    int64_t nc = want < by_size ? want : by_size;
    if (nc > 65535) nc = 65535;
    if (nc > 1) {
      p.chunk = (L->r + nc - 1) / nc;
      p.nchunk = (L->r + p.chunk - 1) / p.chunk;
    }
  }
  return p;
}

extern "C" od_status od_cuda_reduce_fwd(od_kernel_ctx *ctx) {
  const reduce_attrs *a = (const reduce_attrs *)ctx->attrs;
  red_layout L;
  OD_TRY(red_setup(ctx, &L));
  if (L.n_out == 0) return OD_OK;
  cudaStream_t st = od_cuda_stream(ctx->dev);
  const float *x = (const float *)ctx->in[0]->data;
  float *y = (float *)ctx->out[0]->data;
  int kind = (int)a->kind;
  red_plan p = red_plan_make(&L, kind != REDUCE_LOG_SUM_EXP);
  if (!p.block) {
    OD_LAUNCH(red_thread_kernel, od_cuda_blocks(L.n_out), OD_CUDA_THREADS, st)(x, y, L, kind);
    OD_CUDA_LAUNCHED(ctx);
    return OD_OK;
  }
  double *part = NULL;
  if (p.nchunk > 1) {
    void *ws;
    OD_TRY(od_cuda_workspace(ctx->dev, sizeof(double) * (size_t)(L.n_out * p.nchunk), &ws, ctx->err));
    part = (double *)ws;
  }
  dim3 grid(od_red_blocks(L.n_out, 1 << 20), (unsigned)p.nchunk);
  OD_LAUNCH(red_block_kernel, grid, p.threads, st)(x, y, part, L, kind, p.chunk);
  OD_CUDA_LAUNCHED(ctx);
  if (p.nchunk > 1) {
    OD_LAUNCH(red_finish_kernel, od_cuda_blocks(L.n_out), OD_CUDA_THREADS, st)(part, y, L.n_out, p.nchunk, L.r, kind);
    OD_CUDA_LAUNCHED(ctx);
  }
  return OD_OK;
}

extern "C" od_status od_cuda_reduce_bwd(od_kernel_ctx *ctx) {
  const reduce_attrs *a = (const reduce_attrs *)ctx->attrs;
  const od_tensor *dyt = ctx->dout[0];
  if (!dyt || !ctx->din[0]) return OD_OK;
  red_layout L;
  OD_TRY(red_setup(ctx, &L));
  if (L.n_out == 0 || L.r == 0) return OD_OK;
  cudaStream_t st = od_cuda_stream(ctx->dev);
  const float *x = (const float *)ctx->in[0]->data, *y = (const float *)ctx->out[0]->data;
  const float *dy = (const float *)dyt->data;
  float *dx = (float *)ctx->din[0]->data;
  int kind = (int)a->kind;
  red_plan p = red_plan_make(&L, kind != REDUCE_MAX && kind != REDUCE_MIN && kind != REDUCE_PROD);
  if (!p.block) {
    OD_LAUNCH(red_bwd_thread_kernel, od_cuda_blocks(L.n_out), OD_CUDA_THREADS, st)(x, y, dy, dx, L, kind);
  } else {
    dim3 grid(od_red_blocks(L.n_out, 1 << 20), (unsigned)p.nchunk);
    OD_LAUNCH(red_bwd_block_kernel, grid, p.threads, st)(x, y, dy, dx, L, kind, p.chunk);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}
