/* ops/pool.cu: CUDA MaxPool and AveragePool, forward and backward, float32, 1-D/2-D/3-D with every
 * attribute of ops/pool.c (kernel_shape, strides, pads, dilations, auto_pad, ceil_mode,
 * count_include_pad, MaxPool's Indices output and storage_order). The geometry is the CPU's
 * (pool_geometry, ops/pool.h); windows, tap ranges, tie-breaking and divisors are computed exactly
 * as there.
 *
 * Forward: a thread per output element (grid-stride), reading its window.
 * Backward, deterministic (no atomics):
 *   MaxPool, windows that do not overlap (stride >= window extent in every dim): a thread per
 *     output recomputes its window's argmax from the saved X and adds dY there (each input has at
 *     most one window, so no two threads write the same element).
 *   MaxPool, overlapping windows: a first pass recomputes every window's argmax into the workspace
 *     (int32 offsets in the plane), then a thread per input element sums dY of the windows whose
 *     argmax it is, in output order.
 *   AveragePool: a thread per input element sums dY / count of the windows that read it.
 * A fresh dX (ops/op.h din_fresh) is written instead of added to: the gathers store every element
 * (0 where no window reads it); the non-overlapping MaxPool writes each window whole (dY at the
 * argmax, 0 elsewhere) when the windows tile the input exactly (YOLO's 2x2 stride 2 on even
 * sizes), else zeroes dX before scattering.
 * Other dtypes return OD_ERR_UNSUPPORTED (the executor then runs the node on the CPU). */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/pool.h"
}

/* The geometry in 32-bit form for the kernels, dims right-aligned as in pool_geometry. */
struct pool_kgeom {
  int in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
  int in_plane, out_plane;
  bool include_pad, col_major;
};

/* Taps of output o along dim i: j in [lo, hi) read positions start + j * d inside the input;
 * j in [0, hp) lie before in + pe (count_include_pad's divisor). As pool_taps in ops/pool.c. */
static __device__ inline void pool_taps_d(const pool_kgeom &g, int i, int o, int *start, int *lo, int *hi, int *hp) {
  int st = o * g.s[i] - g.pb[i], d = g.d[i];
  *start = st;
  *lo = st < 0 ? (-st + d - 1) / d : 0;
  int h = g.in[i] - st > 0 ? (g.in[i] - st + d - 1) / d : 0;
  *hi = h < g.k[i] ? h : g.k[i];
  int p = g.in[i] + g.pe[i] - st > 0 ? (g.in[i] + g.pe[i] - st + d - 1) / d : 0;
  *hp = p < g.k[i] ? p : g.k[i];
}

/* The window's first maximum in window order (row-major offset in the plane, -1 if the window
 * reads nothing) and its value, as the CPU's MAXPOOL_DEFINE. */
static __device__ inline int pool_argmax(const pool_kgeom &g, const float *x, int o0, int o1, int o2, float *val) {
  int s0, lo0, hi0, hp0, s1, lo1, hi1, hp1, s2, lo2, hi2, hp2;
  pool_taps_d(g, 0, o0, &s0, &lo0, &hi0, &hp0);
  pool_taps_d(g, 1, o1, &s1, &lo1, &hi1, &hp1);
  pool_taps_d(g, 2, o2, &s2, &lo2, &hi2, &hp2);
  float m = -INFINITY;
  int best = -1;
  for (int j0 = lo0; j0 < hi0; j0++) {
    int i0 = s0 + j0 * g.d[0];
    for (int j1 = lo1; j1 < hi1; j1++) {
      int row = (i0 * g.in[1] + s1 + j1 * g.d[1]) * g.in[2] + s2;
      for (int j2 = lo2; j2 < hi2; j2++) {
        float v = x[row + j2 * g.d[2]];
        if (v > m || best < 0) {
          m = v;
          best = row + j2 * g.d[2];
        }
      }
    }
  }
  *val = m;
  return best;
}

/* Output element idx -> (plane, o0, o1, o2). */
static __device__ inline int64_t pool_split_out(const pool_kgeom &g, int64_t idx, int *o0, int *o1, int *o2) {
  *o2 = (int)(idx % g.out[2]);
  int64_t t = idx / g.out[2];
  *o1 = (int)(t % g.out[1]);
  t /= g.out[1];
  *o0 = (int)(t % g.out[0]);
  return t / g.out[0];
}

static __global__ void maxpool_fwd_kernel(pool_kgeom g, const float *x, float *y, int64_t *indices, int64_t total) {
  OD_GRID_LOOP(idx, total) {
    int o0, o1, o2;
    int64_t nc = pool_split_out(g, idx, &o0, &o1, &o2);
    float m;
    int best = pool_argmax(g, x + nc * g.in_plane, o0, o1, o2, &m);
    y[idx] = m;
    if (indices) {
      int64_t b = best;
      if (best >= 0 && g.col_major) { /* (i0, i1, i2) -> i0 + i1 * D0 + i2 * D0 * D1 */
        int i2 = best % g.in[2], i1 = (best / g.in[2]) % g.in[1], i0 = best / (g.in[2] * g.in[1]);
        b = i0 + (int64_t)i1 * g.in[0] + (int64_t)i2 * g.in[0] * g.in[1];
      }
      indices[idx] = best < 0 ? -1 : nc * g.in_plane + b;
    }
  }
}

static __global__ void avgpool_fwd_kernel(pool_kgeom g, const float *x, float *y, int64_t total) {
  OD_GRID_LOOP(idx, total) {
    int o0, o1, o2;
    int64_t nc = pool_split_out(g, idx, &o0, &o1, &o2);
    const float *xp = x + nc * g.in_plane;
    int s0, lo0, hi0, hp0, s1, lo1, hi1, hp1, s2, lo2, hi2, hp2;
    pool_taps_d(g, 0, o0, &s0, &lo0, &hi0, &hp0);
    pool_taps_d(g, 1, o1, &s1, &lo1, &hi1, &hp1);
    pool_taps_d(g, 2, o2, &s2, &lo2, &hi2, &hp2);
    float sum = 0.f;
    for (int j0 = lo0; j0 < hi0; j0++)
      for (int j1 = lo1; j1 < hi1; j1++) {
        const float *xr = xp + ((s0 + j0 * g.d[0]) * g.in[1] + s1 + j1 * g.d[1]) * g.in[2] + s2;
        for (int j2 = lo2; j2 < hi2; j2++) sum += xr[j2 * g.d[2]];
      }
    int count = g.include_pad ? hp0 * hp1 * hp2
                              : (hi0 > lo0 ? hi0 - lo0 : 0) * (hi1 > lo1 ? hi1 - lo1 : 0) * (hi2 > lo2 ? hi2 - lo2 : 0);
    y[idx] = count > 0 ? sum / (float)count : 0.f;
  }
}

/* Non-overlapping MaxPool backward: dX[argmax] += dY, one window per input at most. write: every
 * element of the window is stored (dY at the argmax, 0 elsewhere; the windows must tile dX). */
static __global__ void maxpool_bwd_scatter_kernel(pool_kgeom g, const float *x, const float *dy, float *dx,
                                                  int64_t total, bool write) {
  OD_GRID_LOOP(idx, total) {
    int o0, o1, o2;
    int64_t nc = pool_split_out(g, idx, &o0, &o1, &o2);
    float m;
    int best = pool_argmax(g, x + nc * g.in_plane, o0, o1, o2, &m);
    float *dxp = dx + nc * g.in_plane;
    if (!write) {
      if (best >= 0) dxp[best] += dy[idx];
      continue;
    }
    int s0, lo0, hi0, hp0, s1, lo1, hi1, hp1, s2, lo2, hi2, hp2;
    pool_taps_d(g, 0, o0, &s0, &lo0, &hi0, &hp0);
    pool_taps_d(g, 1, o1, &s1, &lo1, &hi1, &hp1);
    pool_taps_d(g, 2, o2, &s2, &lo2, &hi2, &hp2);
    for (int j0 = lo0; j0 < hi0; j0++)
      for (int j1 = lo1; j1 < hi1; j1++) {
        int row = ((s0 + j0 * g.d[0]) * g.in[1] + s1 + j1 * g.d[1]) * g.in[2] + s2;
        for (int j2 = lo2; j2 < hi2; j2++) {
          int e = row + j2 * g.d[2];
          dxp[e] = e == best ? dy[idx] : 0.0f;
        }
      }
  }
}

static __global__ void maxpool_argmax_kernel(pool_kgeom g, const float *x, int *arg, int64_t total) {
  OD_GRID_LOOP(idx, total) {
    int o0, o1, o2;
    int64_t nc = pool_split_out(g, idx, &o0, &o1, &o2);
    float m;
    arg[idx] = pool_argmax(g, x + nc * g.in_plane, o0, o1, o2, &m);
  }
}

/* Outputs o whose window along dim i covers input position p: [*olo, *ohi] (empty if olo > ohi);
 * a covering o reads p when (p + pb - o * s) % d == 0. */
static __device__ inline void pool_cover(const pool_kgeom &g, int i, int p, int *olo, int *ohi) {
  int a = p + g.pb[i] - (g.k[i] - 1) * g.d[i]; /* o * s >= a */
  *olo = a <= 0 ? 0 : (a + g.s[i] - 1) / g.s[i];
  int h = (p + g.pb[i]) / g.s[i];
  *ohi = h < g.out[i] - 1 ? h : g.out[i] - 1;
}

/* Gather backward, a thread per input element: MaxPool (arg != NULL) sums dY of the windows whose
 * argmax it is; AveragePool sums dY / count of the windows that read it. write: stored (0 for no
 * window) instead of added. */
static __global__ void pool_bwd_gather_kernel(pool_kgeom g, const int *arg, const float *dy, float *dx,
                                              int64_t total, bool write) {
  OD_GRID_LOOP(idx, total) {
    int p2 = (int)(idx % g.in[2]);
    int64_t t = idx / g.in[2];
    int p1 = (int)(t % g.in[1]);
    t /= g.in[1];
    int p0 = (int)(t % g.in[0]);
    int64_t nc = t / g.in[0];
    int me = (p0 * g.in[1] + p1) * g.in[2] + p2;
    int a0, b0, a1, b1, a2, b2;
    pool_cover(g, 0, p0, &a0, &b0);
    pool_cover(g, 1, p1, &a1, &b1);
    pool_cover(g, 2, p2, &a2, &b2);
    const float *dyp = dy + nc * g.out_plane;
    const int *ap = arg ? arg + nc * g.out_plane : NULL;
    float acc = 0.f;
    bool hit = false;
    for (int o0 = a0; o0 <= b0; o0++) {
      if ((p0 + g.pb[0] - o0 * g.s[0]) % g.d[0]) continue;
      int c0 = 1, st, lo, hi, hp;
      if (!ap) {
        pool_taps_d(g, 0, o0, &st, &lo, &hi, &hp);
        c0 = g.include_pad ? hp : hi - lo;
      }
      for (int o1 = a1; o1 <= b1; o1++) {
        if ((p1 + g.pb[1] - o1 * g.s[1]) % g.d[1]) continue;
        int c1 = 1;
        if (!ap) {
          pool_taps_d(g, 1, o1, &st, &lo, &hi, &hp);
          c1 = g.include_pad ? hp : hi - lo;
        }
        for (int o2 = a2; o2 <= b2; o2++) {
          if ((p2 + g.pb[2] - o2 * g.s[2]) % g.d[2]) continue;
          int o = (o0 * g.out[1] + o1) * g.out[2] + o2;
          if (ap) {
            if (ap[o] == me) {
              acc += dyp[o];
              hit = true;
            }
          } else {
            pool_taps_d(g, 2, o2, &st, &lo, &hi, &hp);
            int count = c0 * c1 * (g.include_pad ? hp : hi - lo);
            if (count > 0) {
              acc += dyp[o] / (float)count;
              hit = true;
            }
          }
        }
      }
    }
    if (write) dx[idx] = acc;
    else if (hit) dx[idx] += acc;
  }
}

/* ---- host side ------------------------------------------------------------------------------ */

static od_status pool_kgeom_make(od_kernel_ctx *ctx, pool_kgeom *kg, int64_t *planes) {
  const pool_attrs *a = (const pool_attrs *)ctx->attrs;
  const od_tensor *x = ctx->in[0];
  pool_dim g[POOL_MAX_SPATIAL];
  OD_TRY(pool_geometry(a, x, g, ctx->err));
  int64_t in_plane = 1, out_plane = 1;
  for (int i = 0; i < POOL_MAX_SPATIAL; i++) {
    kg->in[i] = (int)g[i].in;
    kg->out[i] = (int)g[i].out;
    kg->k[i] = (int)g[i].k;
    kg->s[i] = (int)g[i].s;
    kg->d[i] = (int)g[i].d;
    kg->pb[i] = (int)g[i].pb;
    kg->pe[i] = (int)g[i].pe;
    in_plane *= g[i].in;
    out_plane *= g[i].out;
  }
  if (in_plane > INT32_MAX / 2 || out_plane > INT32_MAX / 2)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "CUDA pooling: a plane of more than 2^30 elements");
  kg->in_plane = (int)in_plane;
  kg->out_plane = (int)out_plane;
  kg->include_pad = a->count_include_pad != 0;
  kg->col_major = a->storage_order == 1;
  *planes = x->dims[0] * x->dims[1];
  return OD_OK;
}

extern "C" od_status od_cuda_pool_fwd(od_kernel_ctx *ctx) {
  const pool_attrs *a = (const pool_attrs *)ctx->attrs;
  const od_tensor *x = ctx->in[0];
  if (x->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "CUDA pooling takes float32 only, not %s", od_dtype_name(x->dtype));
  pool_kgeom g;
  int64_t planes;
  OD_TRY(pool_kgeom_make(ctx, &g, &planes));
  int64_t total = planes * g.out_plane;
  if (total == 0) return OD_OK;
  cudaStream_t st = od_cuda_stream(ctx->dev);
  float *y = (float *)ctx->out[0]->data;
  if (a->is_max) {
    int64_t *ind = ctx->n_out > 1 && ctx->out[1] ? (int64_t *)ctx->out[1]->data : NULL;
    OD_LAUNCH(maxpool_fwd_kernel, od_cuda_blocks(total), OD_CUDA_THREADS, st)(g, (const float *)x->data, y, ind, total);
  } else {
    OD_LAUNCH(avgpool_fwd_kernel, od_cuda_blocks(total), OD_CUDA_THREADS, st)(g, (const float *)x->data, y, total);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

extern "C" od_status od_cuda_pool_bwd(od_kernel_ctx *ctx) {
  const pool_attrs *a = (const pool_attrs *)ctx->attrs;
  const od_tensor *x = ctx->in[0], *dyt = ctx->dout[0];
  od_tensor *dxt = ctx->din[0];
  if (!dyt || !dxt) return OD_OK; /* Indices takes no gradient */
  if (x->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "CUDA pooling takes float32 only, not %s", od_dtype_name(x->dtype));
  pool_kgeom g;
  int64_t planes;
  OD_TRY(pool_kgeom_make(ctx, &g, &planes));
  int64_t n_out = planes * g.out_plane, n_in = planes * g.in_plane;
  if (n_out == 0 || n_in == 0) return od_cuda_fresh_zero(ctx, 1u);
  bool write = od_cuda_fresh(ctx, 0);
  cudaStream_t st = od_cuda_stream(ctx->dev);
  const float *xd = (const float *)x->data, *dy = (const float *)dyt->data;
  float *dx = (float *)dxt->data;
  if (a->is_max) {
    bool overlap = false;
    for (int i = 0; i < POOL_MAX_SPATIAL; i++) overlap |= g.s[i] < (g.k[i] - 1) * g.d[i] + 1;
    if (!overlap) {
      /* the windows tile the input exactly: each input element lies in one window */
      bool tiles = true;
      for (int i = 0; i < POOL_MAX_SPATIAL; i++)
        tiles &= (g.k[i] == 1 || g.d[i] == 1) && g.s[i] == g.k[i] && g.pb[i] == 0 && g.out[i] * g.s[i] == g.in[i];
      if (write && !tiles) {
        OD_TRY(od_cuda_fresh_zero(ctx, 1u));
        write = false;
      }
      OD_LAUNCH(maxpool_bwd_scatter_kernel, od_cuda_blocks(n_out), OD_CUDA_THREADS, st)(g, xd, dy, dx, n_out, write);
      OD_CUDA_LAUNCHED(ctx);
      return OD_OK;
    }
    void *ws;
    OD_TRY(od_cuda_workspace(ctx->dev, sizeof(int) * (size_t)n_out, &ws, ctx->err));
    OD_LAUNCH(maxpool_argmax_kernel, od_cuda_blocks(n_out), OD_CUDA_THREADS, st)(g, xd, (int *)ws, n_out);
    OD_CUDA_LAUNCHED(ctx);
    OD_LAUNCH(pool_bwd_gather_kernel, od_cuda_blocks(n_in), OD_CUDA_THREADS, st)(g, (const int *)ws, dy, dx, n_in,
                                                                                  write);
  } else {
    OD_LAUNCH(pool_bwd_gather_kernel, od_cuda_blocks(n_in), OD_CUDA_THREADS, st)(g, NULL, dy, dx, n_in, write);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}
