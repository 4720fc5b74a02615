/* ops/resize.cu: CUDA Resize and Upsample (float32), every mode, coordinate transform, nearest
 * rule, antialias and extrapolation the CPU kernel (ops/resize.c) supports, on any rank.
 *
 * Geometry: the CPU's own plan and tables (od_resize_make_plan, od_resize_table_build in
 * ops/resize.h), so both sides use the same coordinates and weights. scales/sizes/roi are tiny
 * device tensors, read on the host once per node; the plan, the tables and their transposes are
 * uploaded once into a device buffer kept in the node state (the values were fixed when the
 * program was compiled: the output shape depends on them). Per resized axis the device holds:
 *   forward table   out x n taps: input index (int32) and weight, plus the extrapolation flags;
 *   inverse table   CSR over input positions: the (output position, weight) pairs that read it.
 *
 * Forward: one thread per output element. Only the last two axes resized (NCHW images) is a 2-D
 * gather: y = sum_ky wy * sum_kx wx * x[iy, ix] (taps unrolled for nearest and bilinear); an
 * integer-factor nearest upsample (YOLOv3's x2) reads x[oy / rh, ox / rw] without tables. Other
 * axis sets: the product of every resized axis' taps, in one pass.
 * Backward is the adjoint, written as a gather so it needs no atomics and is deterministic: one
 * thread per dX element sums w * dY over the output positions of the inverse tables (for the
 * integer-factor nearest upsample: the rh x rw block of dY it was copied to). Extrapolated
 * outputs (tf_crop_and_resize) are the constant and take no gradient. Every dX element is visited,
 * so a fresh dX (ops/op.h din_fresh) is written by the same kernels (add false) instead. */
#include "ops/cuda/index.cuh"

extern "C" {
#include "ops/resize.h"
}

/* ---- device tables ---------------------------------------------------------------------------- */

struct rz_tab {
  int n;               /* taps per output position */
  const int32_t *idx;  /* [out * n] input index of each tap */
  const float *w;      /* [out * n] weights */
  const uint8_t *ex;   /* [out] extrapolated outputs, NULL when none */
  const int32_t *iptr; /* [in + 1] inverse: pairs of input i are [iptr[i], iptr[i + 1]) */
  const int32_t *io;   /* output position of each pair */
  const float *iw;     /* weight of each pair */
};

/* ---- the last two axes (H, W) ----------------------------------------------------------------- */

struct rz2d {
  od_dim OW, OH, W, H, rw, rh; /* rw, rh: integer-factor nearest repeats (repeat kernels) */
  int64_t h, w, oh, ow;
  rz_tab th, tw;
  float ev;
};

template <int NH, int NW, bool WIDE>
static __global__ void rz2d_fwd(rz2d p, uint64_t n, float *y, const float *x) {
  const int nh = NH ? NH : p.th.n, nw = NW ? NW : p.tw.n;
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)blockDim.x * gridDim.x) {
    uint64_t r = od_dim_div<WIDE>(p.OW, i), b = od_dim_div<WIDE>(p.OH, r);
    int64_t ox = (int64_t)(i - r * p.OW.d), oy = (int64_t)(r - b * p.OH.d);
    if ((p.th.ex && p.th.ex[oy]) || (p.tw.ex && p.tw.ex[ox])) {
      y[i] = p.ev;
      continue;
    }
    const float *plane = x + (int64_t)b * p.h * p.w;
    float acc = 0;
    for (int ky = 0; ky < nh; ky++) {
      const float *row = plane + (int64_t)p.th.idx[oy * nh + ky] * p.w;
      float s = 0;
      for (int kx = 0; kx < nw; kx++) s += p.tw.w[ox * nw + kx] * row[p.tw.idx[ox * nw + kx]];
      acc += p.th.w[oy * nh + ky] * s;
    }
    y[i] = acc;
  }
}

template <bool WIDE>
static __global__ void rz2d_fwd_repeat(rz2d p, uint64_t n, float *y, const float *x) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)blockDim.x * gridDim.x) {
    uint64_t r = od_dim_div<WIDE>(p.OW, i), b = od_dim_div<WIDE>(p.OH, r);
    uint64_t ox = i - r * p.OW.d, oy = r - b * p.OH.d;
    y[i] = x[((int64_t)b * p.h + (int64_t)od_dim_div<WIDE>(p.rh, oy)) * p.w + (int64_t)od_dim_div<WIDE>(p.rw, ox)];
  }
}

/* dX[b, iy, ix] += sum over the inverse pairs (oy, wy) of iy and (ox, wx) of ix of wy wx dY[b, oy, ox] */
template <bool WIDE>
static __global__ void rz2d_bwd(rz2d p, uint64_t n, float *dx, const float *dy, bool add) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)blockDim.x * gridDim.x) {
    uint64_t r = od_dim_div<WIDE>(p.W, i), b = od_dim_div<WIDE>(p.H, r);
    int64_t ix = (int64_t)(i - r * p.W.d), iy = (int64_t)(r - b * p.H.d);
    const float *g = dy + (int64_t)b * p.oh * p.ow;
    int32_t e0 = p.th.iptr[iy], e1 = p.th.iptr[iy + 1], f0 = p.tw.iptr[ix], f1 = p.tw.iptr[ix + 1];
    float acc = 0;
    for (int32_t e = e0; e < e1; e++) {
      const float *row = g + (int64_t)p.th.io[e] * p.ow;
      float s = 0;
      for (int32_t f = f0; f < f1; f++) s += p.tw.iw[f] * row[p.tw.io[f]];
      acc += p.th.iw[e] * s;
    }
    dx[i] = add ? dx[i] + acc : acc;
  }
}

template <bool WIDE>
static __global__ void rz2d_bwd_repeat(rz2d p, uint64_t n, float *dx, const float *dy, bool add) {
  int64_t rh = (int64_t)p.rh.d, rw = (int64_t)p.rw.d;
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)blockDim.x * gridDim.x) {
    uint64_t r = od_dim_div<WIDE>(p.W, i), b = od_dim_div<WIDE>(p.H, r);
    int64_t ix = (int64_t)(i - r * p.W.d), iy = (int64_t)(r - b * p.H.d);
    const float *g = dy + ((int64_t)b * p.oh + iy * rh) * p.ow + ix * rw;
    float acc = 0;
    for (int64_t qy = 0; qy < rh; qy++)
      for (int64_t qx = 0; qx < rw; qx++) acc += g[qy * p.ow + qx];
    dx[i] = add ? dx[i] + acc : acc;
  }
}

/* ---- any axis set ----------------------------------------------------------------------------- */

struct rznd {
  int rank, nres;
  od_dim odims[OD_MAX_DIMS], idims[OD_MAX_DIMS]; /* output and input dims */
  int64_t xs[OD_MAX_DIMS], ys[OD_MAX_DIMS];      /* input and output strides */
  int raxis[OD_MAX_DIMS];                        /* the resized axes */
  rz_tab t[OD_MAX_DIMS];                         /* their tables (by position in raxis) */
  float ev;
};

/* Splits i over dims (rank r) into idx. */
template <bool WIDE>
static __device__ inline void rz_split(const od_dim *dims, int r, uint64_t i, int64_t *idx) {
  for (int k = r - 1; k > 0; k--) {
    uint64_t q = od_dim_div<WIDE>(dims[k], i);
    idx[k] = (int64_t)(i - q * dims[k].d);
    i = q;
  }
  idx[0] = (int64_t)i;
}

template <bool WIDE>
static __global__ void rznd_fwd(rznd p, uint64_t n, float *y, const float *x) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)blockDim.x * gridDim.x) {
    int64_t o[OD_MAX_DIMS], base = 0;
    rz_split<WIDE>(p.odims, p.rank, i, o);
    for (int k = 0; k < p.rank; k++) base += o[k] * p.xs[k]; /* resized axes corrected below */
    bool ex = false;
    int taps = 1;
    for (int q = 0; q < p.nres; q++) {
      int a = p.raxis[q];
      base -= o[a] * p.xs[a];
      ex = ex || (p.t[q].ex && p.t[q].ex[o[a]]);
      taps *= p.t[q].n;
    }
    if (ex) {
      y[i] = p.ev;
      continue;
    }
    float acc = 0;
    for (int t = 0; t < taps; t++) {
      int tt = t;
      float w = 1;
      int64_t off = base;
      for (int q = p.nres - 1; q >= 0; q--) {
        int nq = p.t[q].n, k = tt % nq;
        tt /= nq;
        int64_t e = o[p.raxis[q]] * nq + k;
        w *= p.t[q].w[e];
        off += (int64_t)p.t[q].idx[e] * p.xs[p.raxis[q]];
      }
      acc += w * x[off];
    }
    y[i] = acc;
  }
}

template <bool WIDE>
static __global__ void rznd_bwd(rznd p, uint64_t n, float *dx, const float *dy, bool add) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)blockDim.x * gridDim.x) {
    int64_t c[OD_MAX_DIMS], base = 0;
    rz_split<WIDE>(p.idims, p.rank, i, c);
    for (int k = 0; k < p.rank; k++) base += c[k] * p.ys[k];
    int32_t pos[OD_MAX_DIMS], end[OD_MAX_DIMS];
    bool empty = false;
    for (int q = 0; q < p.nres; q++) {
      int a = p.raxis[q];
      base -= c[a] * p.ys[a];
      pos[q] = p.t[q].iptr[c[a]];
      end[q] = p.t[q].iptr[c[a] + 1];
      empty = empty || pos[q] == end[q];
    }
    if (empty) {
      if (!add) dx[i] = 0.0f;
      continue;
    }
    int32_t beg[OD_MAX_DIMS];
    for (int q = 0; q < p.nres; q++) beg[q] = pos[q];
    float acc = 0;
    for (;;) {
      float w = 1;
      int64_t off = base;
      for (int q = 0; q < p.nres; q++) {
        w *= p.t[q].iw[pos[q]];
        off += (int64_t)p.t[q].io[pos[q]] * p.ys[p.raxis[q]];
      }
      acc += w * dy[off];
      int q = p.nres - 1; /* odometer over the pair lists */
      while (q >= 0 && ++pos[q] == end[q]) {
        pos[q] = beg[q];
        q--;
      }
      if (q < 0) break;
    }
    dx[i] = add ? dx[i] + acc : acc;
  }
}

/* ---- node state: plan and device tables ------------------------------------------------------- */

struct resize_state {
  struct od_node_state base;
  struct od_device *dev;
  bool ready;
  int rank;
  int64_t xdims[OD_MAX_DIMS];
  struct resize_plan plan;
  bool any;                      /* some axis is resized */
  bool last2;                    /* only the last two axes are resized (rank >= 2) */
  int64_t rep[OD_MAX_DIMS];      /* > 0: the axis is an integer-factor nearest repeat (or identity) */
  rz_tab tab[OD_MAX_DIMS];       /* per axis, pointers into buf */
  void *buf;                     /* device memory of every table */
};

static void resize_state_release(struct resize_state *s) {
  if (s->buf) s->dev->ops->free(s->dev, s->buf);
  s->buf = NULL;
  s->ready = false;
}

static void resize_state_destroy(struct od_node_state *self, struct od_device *dev) {
  (void)dev;
  resize_state_release((struct resize_state *)self);
  free(self);
}

/* An optional input: NULL when omitted or empty (an empty tensor means absent in Resize). */
static const struct od_tensor *rz_opt(struct od_kernel_ctx *ctx, int i) {
  if (i < 0 || i >= ctx->n_in || !ctx->in[i] || !ctx->in[i]->dtype || od_tensor_numel(ctx->in[i]) == 0) return NULL;
  return ctx->in[i];
}

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Host layout of one axis' tables in the upload buffer (byte offsets). */
struct rz_layout {
  size_t idx, w, ex, iptr, io, iw, end;
  int64_t nnz;
};

/* Builds the plan and uploads the tables (state s, not ready). */
static enum od_status resize_state_build(struct od_kernel_ctx *ctx, struct resize_state *s, const struct od_tensor *X) {
  const struct resize_attrs *a = (const struct resize_attrs *)ctx->attrs;
  int r = X->rank;
  /* scales / sizes / roi to the host */
  struct od_tensor host[3];
  int64_t bufs[3][2 * OD_MAX_DIMS];
  const struct od_tensor *in[3] = {NULL, NULL, NULL};
  int which[3] = {a->in_roi, a->in_scales, a->in_sizes};
  for (int i = 0; i < 3; i++) {
    const struct od_tensor *t = rz_opt(ctx, which[i]);
    if (!t) continue;
    OD_TRY(od_cuda_small_to_host(ctx, t, &host[i], bufs[i], sizeof bufs[i]));
    in[i] = &host[i];
  }
  bool nv;
  OD_TRY(od_resize_make_plan(a, X, in[0], in[1], in[2], true, &s->plan, &nv, ctx->err));
  if (nv) return od_err_set(ctx->err, OD_ERR_INTERNAL, "scales, sizes or roi have no values at run time");
  s->any = false;
  int first = -1;
  for (int d = 0; d < r; d++)
    if (s->plan.ax[d].resized) {
      s->any = true;
      if (first < 0) first = d;
    }
  s->last2 = r >= 2 && first >= r - 2;
  s->rank = r;
  memcpy(s->xdims, X->dims, sizeof(int64_t) * (size_t)r);
  if (!s->any) {
    s->ready = true;
    return OD_OK;
  }
  /* host tables of every axis, then one buffer with all of them */
  struct resize_table t[OD_MAX_DIMS];
  struct rz_layout lay[OD_MAX_DIMS];
  memset(t, 0, sizeof t);
  enum od_status st = OD_OK;
  size_t total = 0;
  for (int d = 0; d < r && st == OD_OK; d++) {
    const struct resize_axis *ax = &s->plan.ax[d];
    if (ax->in >= INT32_MAX || ax->out >= INT32_MAX) {
      st = od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Resize on CUDA: axis %d longer than 2^31", d);
      break;
    }
    st = od_resize_table_build(a, ax, &t[d], ctx->err);
    if (st != OD_OK) break;
    int64_t cnt = ax->out * t[d].n, nnz = 0;
    for (int64_t o = 0; o < ax->out; o++)
      if (!t[d].ex || !t[d].ex[o]) nnz += t[d].n;
    lay[d].nnz = nnz;
    lay[d].idx = total;
    lay[d].w = lay[d].idx + align16(sizeof(int32_t) * (size_t)cnt);
    lay[d].ex = lay[d].w + align16(sizeof(float) * (size_t)cnt);
    lay[d].iptr = lay[d].ex + (t[d].ex ? align16((size_t)ax->out) : 0);
    lay[d].io = lay[d].iptr + align16(sizeof(int32_t) * (size_t)(ax->in + 1));
    lay[d].iw = lay[d].io + align16(sizeof(int32_t) * (size_t)nnz);
    lay[d].end = lay[d].iw + align16(sizeof(float) * (size_t)nnz);
    total = lay[d].end;
    /* integer-factor nearest repeat: idx[o] == o / k, weight 1 */
    s->rep[d] = 0;
    if (t[d].n == 1 && !t[d].ex && ax->in > 0 && ax->out % ax->in == 0) {
      int64_t k = ax->out / ax->in;
      s->rep[d] = k;
      for (int64_t o = 0; o < ax->out && s->rep[d]; o++)
        if (t[d].idx[o] != o / k || t[d].wf[o] != 1.0f) s->rep[d] = 0;
    }
  }
  uint8_t *h = st == OD_OK ? (uint8_t *)calloc(1, total ? total : 1) : NULL;
  if (st == OD_OK && !h) st = od_err_set(ctx->err, OD_ERR_OOM, "cannot allocate %zu bytes of resize tables", total);
  if (st == OD_OK) {
    for (int d = 0; d < r; d++) {
      const struct resize_axis *ax = &s->plan.ax[d];
      int n = t[d].n;
      int64_t cnt = ax->out * n;
      int32_t *idx = (int32_t *)(h + lay[d].idx), *iptr = (int32_t *)(h + lay[d].iptr), *io = (int32_t *)(h + lay[d].io);
      float *w = (float *)(h + lay[d].w), *iw = (float *)(h + lay[d].iw);
      for (int64_t e = 0; e < cnt; e++) {
        idx[e] = (int32_t)t[d].idx[e];
        w[e] = t[d].wf[e];
      }
      if (t[d].ex) memcpy(h + lay[d].ex, t[d].ex, (size_t)ax->out);
      /* the inverse (CSR by input position), pairs in output order */
      for (int64_t o = 0; o < ax->out; o++)
        if (!t[d].ex || !t[d].ex[o])
          for (int k = 0; k < n; k++) iptr[t[d].idx[o * n + k] + 1]++;
      for (int64_t i = 0; i < ax->in; i++) iptr[i + 1] += iptr[i];
      int32_t *fill = (int32_t *)calloc((size_t)ax->in + 1, sizeof(int32_t));
      if (!fill) {
        st = od_err_set(ctx->err, OD_ERR_OOM, "cannot allocate a resize table");
        break;
      }
      for (int64_t o = 0; o < ax->out; o++)
        if (!t[d].ex || !t[d].ex[o])
          for (int k = 0; k < n; k++) {
            int64_t i = t[d].idx[o * n + k];
            int32_t at = iptr[i] + fill[i]++;
            io[at] = (int32_t)o;
            iw[at] = t[d].wf[o * n + k];
          }
      free(fill);
    }
  }
  if (st == OD_OK) {
    s->dev = ctx->dev;
    st = ctx->dev->ops->alloc(ctx->dev, total ? total : 16, &s->buf, ctx->err);
  }
  if (st == OD_OK) st = ctx->dev->ops->to_device(ctx->dev, s->buf, h, total, ctx->err);
  if (st == OD_OK) {
    const uint8_t *b = (const uint8_t *)s->buf;
    for (int d = 0; d < r; d++) {
      rz_tab *dt = &s->tab[d];
      dt->n = t[d].n;
      dt->idx = (const int32_t *)(b + lay[d].idx);
      dt->w = (const float *)(b + lay[d].w);
      dt->ex = t[d].ex ? b + lay[d].ex : NULL;
      dt->iptr = (const int32_t *)(b + lay[d].iptr);
      dt->io = (const int32_t *)(b + lay[d].io);
      dt->iw = (const float *)(b + lay[d].iw);
    }
    s->ready = true;
  }
  free(h);
  for (int d = 0; d < r; d++) od_resize_table_free(&t[d]);
  if (st != OD_OK) resize_state_release(s);
  return st;
}

/* The node's state for X (built on first use or when X's shape changed); *local stands in when
 * the caller keeps no state (release it after the kernels with resize_local_done). */
static enum od_status resize_state_get(struct od_kernel_ctx *ctx, const struct od_tensor *X, struct resize_state *local,
                                       struct resize_state **out) {
  struct resize_state *s = od_cuda_state(ctx, local, resize_state_destroy);
  if (!s) return od_err_set(ctx->err, OD_ERR_OOM, "cannot allocate the Resize state");
  if (s->ready && (s->rank != X->rank || memcmp(s->xdims, X->dims, sizeof(int64_t) * (size_t)X->rank)))
    resize_state_release(s);
  if (!s->ready) OD_TRY(resize_state_build(ctx, s, X));
  *out = s;
  return OD_OK;
}

/* Frees a call-local state once its kernels are done. */
static enum od_status resize_local_done(struct od_kernel_ctx *ctx, struct resize_state *s, enum od_status st) {
  if (ctx->state || !s->buf) return st;
  enum od_status sy = ctx->dev->ops->sync(ctx->dev, ctx->err);
  resize_state_release(s);
  return st != OD_OK ? st : sy;
}

/* ---- launches --------------------------------------------------------------------------------- */

/* The 2-D geometry (rank >= 2). */
static rz2d rz2d_make(const struct resize_state *s, const struct od_tensor *X, const struct od_tensor *Y) {
  int r = X->rank;
  rz2d p;
  memset(&p, 0, sizeof p);
  p.h = X->dims[r - 2];
  p.oh = Y->dims[r - 2];
  p.w = X->dims[r - 1];
  p.ow = Y->dims[r - 1];
  p.OW = od_dim_make(p.ow);
  p.OH = od_dim_make(p.oh);
  p.W = od_dim_make(p.w);
  p.H = od_dim_make(p.h);
  p.tw = s->tab[r - 1];
  p.th = s->tab[r - 2];
  int64_t rh = s->rep[r - 2], rw = s->rep[r - 1];
  p.rh = od_dim_make(rh > 0 ? rh : 1);
  p.rw = od_dim_make(rw > 0 ? rw : 1);
  return p;
}

static bool rz2d_repeat(const struct resize_state *s, int r) { return s->rep[r - 1] > 0 && s->rep[r - 2] > 0; }

static rznd rznd_make(const struct resize_state *s, const struct od_tensor *X, const struct od_tensor *Y) {
  rznd p;
  memset(&p, 0, sizeof p);
  p.rank = X->rank;
  od_strides(X->rank, X->dims, p.xs);
  od_strides(Y->rank, Y->dims, p.ys);
  for (int k = 0; k < X->rank; k++) {
    p.odims[k] = od_dim_make(Y->dims[k]);
    p.idims[k] = od_dim_make(X->dims[k]);
    if (s->plan.ax[k].resized) {
      p.raxis[p.nres] = k;
      p.t[p.nres] = s->tab[k];
      p.nres++;
    }
  }
  return p;
}

#define RZ_LAUNCH(kernel, n, ...)                                                                          \
  do {                                                                                                     \
    if (od_idx_wide(n)) OD_LAUNCH((kernel<true>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(__VA_ARGS__);    \
    else OD_LAUNCH((kernel<false>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(__VA_ARGS__);                 \
  } while (0)

static enum od_status resize_fwd_run(struct od_kernel_ctx *ctx, const struct resize_state *s, const struct od_tensor *X,
                                     struct od_tensor *Y) {
  const struct resize_attrs *a = (const struct resize_attrs *)ctx->attrs;
  int r = X->rank;
  int64_t n = od_tensor_numel(Y);
  if (!s->any) return n ? ctx->dev->ops->copy(ctx->dev, Y->data, X->data, od_tensor_nbytes(Y), ctx->err) : OD_OK;
  if (n == 0) return OD_OK;
  cudaStream_t st = od_cuda_stream(ctx->dev);
  float *y = (float *)Y->data;
  const float *x = (const float *)X->data;
  bool wide = od_idx_wide(n);
  if (s->last2) {
    rz2d p = rz2d_make(s, X, Y);
    p.ev = a->extrapolation_value;
    unsigned g = od_cuda_blocks(n);
    if (rz2d_repeat(s, r)) RZ_LAUNCH(rz2d_fwd_repeat, n, p, (uint64_t)n, y, x);
    else if (p.th.n == 1 && p.tw.n == 1 && !wide) OD_LAUNCH((rz2d_fwd<1, 1, false>), g, OD_CUDA_THREADS, st)(p, n, y, x);
    else if (p.th.n == 2 && p.tw.n == 2 && !wide) OD_LAUNCH((rz2d_fwd<2, 2, false>), g, OD_CUDA_THREADS, st)(p, n, y, x);
    else if (wide) OD_LAUNCH((rz2d_fwd<0, 0, true>), g, OD_CUDA_THREADS, st)(p, n, y, x);
    else OD_LAUNCH((rz2d_fwd<0, 0, false>), g, OD_CUDA_THREADS, st)(p, n, y, x);
  } else {
    rznd p = rznd_make(s, X, Y);
    p.ev = a->extrapolation_value;
    RZ_LAUNCH(rznd_fwd, n, p, (uint64_t)n, y, x);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

static enum od_status resize_bwd_run(struct od_kernel_ctx *ctx, const struct resize_state *s, const struct od_tensor *X,
                                     struct od_tensor *dX, const struct od_tensor *dY) {
  int r = X->rank;
  int64_t n = od_tensor_numel(dX);
  if (n == 0) return OD_OK;
  float *dx = (float *)dX->data;
  const float *dy = (const float *)dY->data;
  bool add = !od_cuda_fresh(ctx, 0);
  if (!s->any) return od_cuda_acc(ctx, !add, dx, dy, n);
  if (od_tensor_numel(dY) == 0) return od_cuda_fresh_zero(ctx, 1u);
  cudaStream_t st = od_cuda_stream(ctx->dev);
  if (s->last2) {
    rz2d p = rz2d_make(s, X, dY);
    if (rz2d_repeat(s, r)) RZ_LAUNCH(rz2d_bwd_repeat, n, p, (uint64_t)n, dx, dy, add);
    else RZ_LAUNCH(rz2d_bwd, n, p, (uint64_t)n, dx, dy, add);
  } else {
    RZ_LAUNCH(rznd_bwd, n, rznd_make(s, X, dY), (uint64_t)n, dx, dy, add);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

enum od_status od_cuda_resize_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  if (X->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "%s on CUDA: float only, not %s", ctx->node->op_type,
                      od_dtype_name(X->dtype));
  struct resize_state local, *s;
  OD_TRY(resize_state_get(ctx, X, &local, &s));
  for (int d = 0; d < X->rank; d++)
    if (s->plan.ax[d].out != Y->dims[d])
      return resize_local_done(ctx, s, od_err_set(ctx->err, OD_ERR_INTERNAL, "output dim %d is %lld, the plan says %lld",
                                                  d, (long long)Y->dims[d], (long long)s->plan.ax[d].out));
  return resize_local_done(ctx, s, resize_fwd_run(ctx, s, X, Y));
}

enum od_status od_cuda_resize_bwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0], *dY = ctx->dout[0];
  struct od_tensor *dX = ctx->din[0];
  if (!dX || !dY) return OD_OK;
  if (dX->dtype != OD_DTYPE_FLOAT)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "%s backward on CUDA: float only", ctx->node->op_type);
  struct resize_state local, *s;
  OD_TRY(resize_state_get(ctx, X, &local, &s));
  for (int d = 0; d < X->rank; d++)
    if (s->plan.ax[d].out != dY->dims[d])
      return resize_local_done(ctx, s, od_err_set(ctx->err, OD_ERR_INTERNAL, "gradient shape differs from the output"));
  return resize_local_done(ctx, s, resize_bwd_run(ctx, s, X, dX, dY));
}
