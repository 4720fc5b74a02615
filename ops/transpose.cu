/* ops/transpose.cu: CUDA Transpose (forward, backward) and the strided copy / accumulate engine of
 * ops/cuda/index.cuh that the other data-movement kernels share (the device twin of the CPU
 * engine in ops/transpose.c: same views, same dim dropping and merging).
 *
 * Copy: after merging, a contiguous block is one device-to-device copy. A view whose innermost
 * dst dim is contiguous while another dim is contiguous in src (a transpose of those two: NCHW <->
 * NHWC, the YOLO head's [N, 3, 85, HW] -> [N, 3, HW, 85]) goes through 32x32 tiles staged in
 * shared memory: each block loads a tile with reads coalesced along the src-contiguous dim and
 * stores it with writes coalesced along the dst-contiguous one (256 threads, 8 rows per pass,
 * padding column against bank conflicts). Everything else is one thread per dst element in a
 * grid-stride loop; when the innermost dim is contiguous on both sides and sizes and addresses
 * allow, elements are grouped into 16-, 8- or 4-byte units first (Slice of channels, Concat rows).
 *
 * Accumulate (backward passes, float): dims whose dst stride is 0 are summed over (Expand, Tile).
 * Without such dims it is the copy with += (tiles included). With them: when the sum runs along
 * memory (innermost src dim) one block per dst element reduces with a shared-memory tree; else
 * each thread owns one dst element and a chunk of the summed index range, chunks joined with
 * atomicAdd only when there are too few dst elements to fill the GPU.
 * Write (od_cuda_strided_acc with write: a fresh gradient, ops/op.h din_fresh): without summed dims
 * it is the copy; with them the same reductions store their sums (the atomicAdd path zeroes its
 * dst elements first).
 *
 * Transpose: Y[.., i_k, ..] = X[.., i_perm[k], ..]; dX = dY permuted back (the same view with +=,
 * or the copy for a fresh dX). */
#include "ops/cuda/index.cuh"

/* ---- general strided kernel (one thread per element) ------------------------------------------- */

struct cv_plan {
  int rank;
  od_dim dims[OD_CV_MAX];
  int64_t ds[OD_CV_MAX], ss[OD_CV_MAX];
};

template <typename T, bool ADD, bool WIDE>
static __global__ void cv_kernel(cv_plan p, uint64_t n, T *dst, const T *src) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)blockDim.x * gridDim.x) {
    uint64_t r = i;
    int64_t doff = 0, soff = 0;
    for (int k = p.rank - 1; k > 0; k--) {
      uint64_t q = od_dim_div<WIDE>(p.dims[k], r);
      int64_t idx = (int64_t)(r - q * p.dims[k].d);
      r = q;
      doff += idx * p.ds[k];
      soff += idx * p.ss[k];
    }
    doff += (int64_t)r * p.ds[0];
    soff += (int64_t)r * p.ss[0];
    if constexpr (ADD) od_acc(dst[doff], src[soff]);
    else dst[doff] = src[soff];
  }
}

/* ---- 32x32 tiles: dim j contiguous in src, the last dim contiguous in dst ----------------------- */

#define TILE 32
#define TILE_ROWS 8 /* 256 threads = 32 x 8 */

struct tile_plan {
  int n_other;
  int64_t odims[OD_CV_MAX], ods[OD_CV_MAX], oss[OD_CV_MAX]; /* the other dims */
  int64_t nj, nl, dj, sl;                                   /* sizes of j and last, dst stride of j, src stride of last */
  int64_t tj, tl, ntiles;                                   /* tiles along j, along last, in all */
};

template <typename T, bool ADD>
static __global__ void tile_kernel(tile_plan p, T *dst, const T *src) {
  __shared__ T tile[TILE][TILE + 1];
  int tx = (int)(threadIdx.x % TILE), ty = (int)(threadIdx.x / TILE);
  for (int64_t t = blockIdx.x; t < p.ntiles; t += gridDim.x) {
    int64_t c0 = (t % p.tl) * TILE, rest = t / p.tl;
    int64_t p0 = (rest % p.tj) * TILE, o = rest / p.tj;
    int64_t doff = 0, soff = 0;
    for (int q = p.n_other - 1; q >= 0; q--) { /* once per tile: plain division is fine */
      int64_t i = o % p.odims[q];
      o /= p.odims[q];
      doff += i * p.ods[q];
      soff += i * p.oss[q];
    }
    for (int c = ty; c < TILE; c += TILE_ROWS) { /* load: consecutive tx read consecutive src */
      int64_t pj = p0 + tx, cl = c0 + c;
      if (pj < p.nj && cl < p.nl) tile[c][tx] = src[soff + pj + cl * p.sl];
    }
    __syncthreads();
    for (int r = ty; r < TILE; r += TILE_ROWS) { /* store: consecutive tx write consecutive dst */
      int64_t pj = p0 + r, cl = c0 + tx;
      if (pj < p.nj && cl < p.nl) {
        if constexpr (ADD) dst[doff + pj * p.dj + cl] += tile[tx][r];
        else dst[doff + pj * p.dj + cl] = tile[tx][r];
      }
    }
    __syncthreads();
  }
}

/* ---- reductions over dst-stride-0 dims ---------------------------------------------------------- */

struct red_plan {
  int nk, nr;
  od_dim kd[OD_CV_MAX];
  int64_t kds[OD_CV_MAX], kss[OD_CV_MAX]; /* keep dims: dst and src strides */
  od_dim rd[OD_CV_MAX];
  int64_t rss[OD_CV_MAX];                 /* reduce dims: src strides */
  uint64_t nkeep, nred;
};

template <bool WIDE>
static __device__ inline void red_keep(const red_plan &p, uint64_t i, int64_t &doff, int64_t &soff) {
  doff = soff = 0;
  for (int k = p.nk - 1; k > 0; k--) {
    uint64_t q = od_dim_div<WIDE>(p.kd[k], i);
    int64_t idx = (int64_t)(i - q * p.kd[k].d);
    i = q;
    doff += idx * p.kds[k];
    soff += idx * p.kss[k];
  }
  doff += (int64_t)i * p.kds[0];
  soff += (int64_t)i * p.kss[0];
}

template <bool WIDE>
static __device__ inline int64_t red_off(const red_plan &p, uint64_t q) {
  int64_t off = 0;
  for (int k = p.nr - 1; k > 0; k--) {
    uint64_t d = od_dim_div<WIDE>(p.rd[k], q);
    off += (int64_t)(q - d * p.rd[k].d) * p.rss[k];
    q = d;
  }
  return off + (int64_t)q * p.rss[0];
}

/* dst of every keep element = 0 (before the atomicAdd chunks of a write). */
template <bool WIDE>
static __global__ void red_zero(red_plan p, float *dst) {
  uint64_t step = (uint64_t)blockDim.x * gridDim.x;
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < p.nkeep; i += step) {
    int64_t doff, soff;
    red_keep<WIDE>(p, i, doff, soff);
    dst[doff] = 0.0f;
  }
}

/* Thread (keep element i, chunk c) sums reduce indices [c * len, (c + 1) * len) with an odometer;
 * adjacent threads take adjacent keep elements. write: one chunk stores its sum instead of adding
 * it (several chunks add onto zeroed elements). */
template <bool WIDE>
static __global__ void red_threads(red_plan p, uint64_t chunks, uint64_t len, float *dst, const float *src,
                                   bool write) {
  uint64_t n = p.nkeep * chunks;
  for (uint64_t t = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; t < n; t += (uint64_t)blockDim.x * gridDim.x) {
    uint64_t i = t % p.nkeep, c = t / p.nkeep;
    int64_t doff, soff;
    red_keep<WIDE>(p, i, doff, soff);
    uint64_t q0 = c * len, q1 = q0 + len < p.nred ? q0 + len : p.nred;
    if (q0 >= q1) continue;
    int64_t idx[OD_CV_MAX], ro = 0;
    uint64_t q = q0;
    for (int k = p.nr - 1; k >= 0; k--) {
      uint64_t d = od_dim_div<WIDE>(p.rd[k], q);
      idx[k] = (int64_t)(q - d * p.rd[k].d);
      ro += idx[k] * p.rss[k];
      q = d;
    }
    float acc = 0;
    int last = p.nr - 1;
    int64_t n_last = (int64_t)p.rd[last].d, st_last = p.rss[last];
    for (q = q0; q < q1;) {
      /* the rest of the innermost reduce dim in one loop */
      int64_t run = n_last - idx[last];
      if ((uint64_t)run > q1 - q) run = (int64_t)(q1 - q);
      const float *s = src + soff + ro;
      for (int64_t e = 0; e < run; e++) acc += s[e * st_last];
      q += (uint64_t)run;
      ro += run * st_last;
      idx[last] += run;
      if (idx[last] < n_last) break; /* only at q == q1 */
      ro -= n_last * st_last;
      idx[last] = 0;
      for (int k = last - 1; k >= 0; k--) {
        ro += p.rss[k];
        if (++idx[k] < (int64_t)p.rd[k].d) break;
        ro -= p.rss[k] * (int64_t)p.rd[k].d;
        idx[k] = 0;
      }
    }
    if (chunks > 1) atomicAdd(dst + doff, acc);
    else if (write) dst[doff] = acc;
    else dst[doff] += acc;
  }
}

/* One block per keep element: threads stride over the reduce indices, then a tree (write: the
 * sum is stored). */
template <bool WIDE>
static __global__ void red_block(red_plan p, float *dst, const float *src, bool write) {
  __shared__ float sh[OD_CUDA_THREADS];
  for (uint64_t i = blockIdx.x; i < p.nkeep; i += gridDim.x) {
    int64_t doff, soff;
    red_keep<WIDE>(p, i, doff, soff);
    float acc = 0;
    for (uint64_t q = threadIdx.x; q < p.nred; q += blockDim.x) acc += src[soff + red_off<WIDE>(p, q)];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned s = OD_CUDA_THREADS / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) dst[doff] = write ? sh[0] : dst[doff] + sh[0];
    __syncthreads();
  }
}

/* ---- host side ---------------------------------------------------------------------------------- */

/* A merged view: dims with dst and src strides. */
struct mview {
  int rank;
  int64_t dims[OD_CV_MAX], ds[OD_CV_MAX], ss[OD_CV_MAX];
};

/* Appends (size, dst stride, src stride), merging into the previous dim when contiguous on both
 * sides. */
static void mview_push(mview *v, int64_t size, int64_t ds, int64_t ss) {
  int m = v->rank;
  if (m > 0 && v->ds[m - 1] == ds * size && v->ss[m - 1] == ss * size) {
    v->dims[m - 1] *= size;
    v->ds[m - 1] = ds;
    v->ss[m - 1] = ss;
    return;
  }
  v->dims[m] = size;
  v->ds[m] = ds;
  v->ss[m] = ss;
  v->rank = m + 1;
}

template <typename T, bool ADD>
static enum od_status launch_general(struct od_kernel_ctx *ctx, const mview &v, void *dst, const void *src) {
  cv_plan p;
  p.rank = v.rank;
  int64_t n = 1;
  for (int k = 0; k < v.rank; k++) {
    p.dims[k] = od_dim_make(v.dims[k]);
    p.ds[k] = v.ds[k];
    p.ss[k] = v.ss[k];
    n *= v.dims[k];
  }
  cudaStream_t st = od_cuda_stream(ctx->dev);
  if (od_idx_wide(n))
    OD_LAUNCH((cv_kernel<T, ADD, true>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(p, (uint64_t)n, (T *)dst, (const T *)src);
  else
    OD_LAUNCH((cv_kernel<T, ADD, false>), od_cuda_blocks(n), OD_CUDA_THREADS, st)(p, (uint64_t)n, (T *)dst, (const T *)src);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

/* Groups the contiguous innermost dim into units of `unit` bytes when sizes, strides and addresses
 * allow; returns the unit (es when not possible). */
static size_t mview_widen(mview *v, size_t es, const void *dst, const void *src, size_t unit) {
  int last = v->rank - 1;
  if (unit <= es || v->ds[last] != 1 || v->ss[last] != 1) return es;
  int64_t f = (int64_t)(unit / es);
  if (v->dims[last] % f || (uintptr_t)dst % unit || (uintptr_t)src % unit) return es;
  for (int k = 0; k < last; k++)
    if (v->ds[k] % f || v->ss[k] % f) return es;
  v->dims[last] /= f;
  for (int k = 0; k < last; k++) {
    v->ds[k] /= f;
    v->ss[k] /= f;
  }
  return unit;
}

/* The tiled path when the view is a transpose of dim j (src stride 1) and the last dim (dst stride
 * 1); returns false when the view is not one. */
template <typename T, bool ADD>
static bool try_tiles(struct od_kernel_ctx *ctx, const mview &v, void *dst, const void *src, enum od_status *st) {
  int last = v.rank - 1, j = -1;
  if (v.rank < 2 || v.ds[last] != 1 || v.ss[last] == 1 || v.dims[last] < 8) return false;
  for (int k = 0; k < last; k++)
    if (v.ss[k] == 1 && v.dims[k] >= 8) j = k;
  if (j < 0) return false;
  tile_plan p;
  p.n_other = 0;
  for (int k = 0; k < last; k++) {
    if (k == j) continue;
    p.odims[p.n_other] = v.dims[k];
    p.ods[p.n_other] = v.ds[k];
    p.oss[p.n_other] = v.ss[k];
    p.n_other++;
  }
  p.nj = v.dims[j];
  p.nl = v.dims[last];
  p.dj = v.ds[j];
  p.sl = v.ss[last];
  p.tj = (p.nj + TILE - 1) / TILE;
  p.tl = (p.nl + TILE - 1) / TILE;
  int64_t outer = 1;
  for (int q = 0; q < p.n_other; q++) outer *= p.odims[q];
  p.ntiles = outer * p.tj * p.tl;
  unsigned grid = (unsigned)(p.ntiles < 65535 ? p.ntiles : 65535);
  OD_LAUNCH((tile_kernel<T, ADD>), grid, TILE * TILE_ROWS, od_cuda_stream(ctx->dev))(p, (T *)dst, (const T *)src);
  cudaError_t ce = cudaGetLastError();
  *st = ce == cudaSuccess ? OD_OK
                          : od_err_set(ctx->err, OD_ERR_CUDA, "tile_kernel launch failed: %s", cudaGetErrorString(ce));
  return true;
}

/* Fills contiguous strides where NULL and merges; false when the block is empty. */
static bool mview_build(mview *v, int rank, const int64_t *dims, const int64_t *dst_strides,
                        const int64_t *src_strides) {
  int64_t cd[OD_CV_MAX], s = 1;
  for (int k = rank - 1; k >= 0; k--) {
    cd[k] = s;
    s *= dims[k];
  }
  if (!dst_strides) dst_strides = cd;
  if (!src_strides) src_strides = cd;
  v->rank = 0;
  for (int k = 0; k < rank; k++) {
    if (dims[k] == 0) return false;
    if (dims[k] == 1) continue;
    mview_push(v, dims[k], dst_strides[k], src_strides[k]);
  }
  if (v->rank == 0) { /* one element */
    v->rank = 1;
    v->dims[0] = 1;
    v->ds[0] = v->ss[0] = 1;
  }
  return true;
}

template <typename T>
static enum od_status copy_typed(struct od_kernel_ctx *ctx, const mview &v, void *dst, const void *src) {
  enum od_status st;
  if (try_tiles<T, false>(ctx, v, dst, src, &st)) return st;
  return launch_general<T, false>(ctx, v, dst, src);
}

enum od_status od_cuda_strided_copy(struct od_kernel_ctx *ctx, size_t es, int rank, const int64_t *dims, void *dst,
                                    const int64_t *dst_strides, const void *src, const int64_t *src_strides) {
  if (rank < 0 || rank > OD_CV_MAX) return od_err_set(ctx->err, OD_ERR_INTERNAL, "strided copy of rank %d", rank);
  mview v;
  if (!mview_build(&v, rank, dims, dst_strides, src_strides)) return OD_OK;
  if (v.rank == 1 && v.ds[0] == 1 && v.ss[0] == 1)
    return ctx->dev->ops->copy(ctx->dev, dst, src, (size_t)v.dims[0] * es, ctx->err);
  if (v.ds[v.rank - 1] == 1 && v.ss[v.rank - 1] == 1) {
    size_t u = mview_widen(&v, es, dst, src, 16);
    if (u == es) u = mview_widen(&v, es, dst, src, 8);
    if (u == es) u = mview_widen(&v, es, dst, src, 4);
    es = u;
  }
  switch (es) {
    case 1: return copy_typed<uint8_t>(ctx, v, dst, src);
    case 2: return copy_typed<uint16_t>(ctx, v, dst, src);
    case 4: return copy_typed<uint32_t>(ctx, v, dst, src);
    case 8: return copy_typed<uint64_t>(ctx, v, dst, src);
    case 16: return launch_general<od_u128, false>(ctx, v, dst, src);
  }
  return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "elements of %zu bytes", es);
}

/* Appends a dim to a keep or reduce list of the reduction plan, merging contiguous neighbours. */
static void red_push(int *n, int64_t *d, int64_t *ds, int64_t *ss, int64_t size, int64_t dstr, int64_t sstr) {
  int m = *n;
  if (m > 0 && (!ds || ds[m - 1] == dstr * size) && ss[m - 1] == sstr * size) {
    d[m - 1] *= size;
    if (ds) ds[m - 1] = dstr;
    ss[m - 1] = sstr;
    return;
  }
  d[m] = size;
  if (ds) ds[m] = dstr;
  ss[m] = sstr;
  *n = m + 1;
}

static int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

enum od_status od_cuda_strided_acc(struct od_kernel_ctx *ctx, bool write, int rank, const int64_t *dims, float *dst,
                                   const int64_t *dst_strides, const float *src, const int64_t *src_strides) {
  if (rank < 0 || rank > OD_CV_MAX) return od_err_set(ctx->err, OD_ERR_INTERNAL, "strided add of rank %d", rank);
  int64_t cd[OD_CV_MAX], s = 1;
  for (int k = rank - 1; k >= 0; k--) {
    cd[k] = s;
    s *= dims[k];
  }
  if (!dst_strides) dst_strides = cd;
  if (!src_strides) src_strides = cd;
  bool reduce = false;
  for (int k = 0; k < rank; k++) {
    if (dims[k] == 0) return OD_OK;
    if (dims[k] > 1 && dst_strides[k] == 0) reduce = true;
  }
  if (!reduce && write) return od_cuda_strided_copy(ctx, sizeof(float), rank, dims, dst, dst_strides, src, src_strides);
  if (!reduce) {
    mview v;
    if (!mview_build(&v, rank, dims, dst_strides, src_strides)) return OD_OK;
    enum od_status st;
    if (try_tiles<float, true>(ctx, v, dst, src, &st)) return st;
    if (mview_widen(&v, 4, dst, src, 16) == 16) return launch_general<od_f4, true>(ctx, v, dst, src);
    return launch_general<float, true>(ctx, v, dst, src);
  }
  /* keep dims (dst stride != 0) and reduce dims (dst stride 0), each merged */
  int nk = 0, nr = 0;
  int64_t kd[OD_CV_MAX], kds[OD_CV_MAX], kss[OD_CV_MAX], rd[OD_CV_MAX], rss[OD_CV_MAX];
  for (int k = 0; k < rank; k++) {
    if (dims[k] == 1) continue;
    if (dst_strides[k] == 0) red_push(&nr, rd, NULL, rss, dims[k], 0, src_strides[k]);
    else red_push(&nk, kd, kds, kss, dims[k], dst_strides[k], src_strides[k]);
  }
  if (nk == 0) { /* everything sums into one element */
    kd[0] = 1;
    kds[0] = kss[0] = 1;
    nk = 1;
  }
  red_plan p;
  p.nk = nk;
  p.nr = nr;
  p.nkeep = p.nred = 1;
  for (int k = 0; k < nk; k++) {
    p.kd[k] = od_dim_make(kd[k]);
    p.kds[k] = kds[k];
    p.kss[k] = kss[k];
    p.nkeep *= (uint64_t)kd[k];
  }
  for (int k = 0; k < nr; k++) {
    p.rd[k] = od_dim_make(rd[k]);
    p.rss[k] = rss[k];
    p.nred *= (uint64_t)rd[k];
  }
  bool wide = od_idx_wide((int64_t)(p.nkeep * p.nred));
  cudaStream_t st = od_cuda_stream(ctx->dev);
  bool inner_reduce = kd[nk - 1] == 1 || abs64(rss[nr - 1]) < abs64(kss[nk - 1]);
  if (inner_reduce && p.nred >= 256) {
    unsigned grid = (unsigned)(p.nkeep < 65535 ? p.nkeep : 65535);
    if (wide) OD_LAUNCH(red_block<true>, grid, OD_CUDA_THREADS, st)(p, dst, src, write);
    else OD_LAUNCH(red_block<false>, grid, OD_CUDA_THREADS, st)(p, dst, src, write);
  } else {
    /* enough threads to fill the GPU (~1M), each summing at least 64 indices */
    uint64_t chunks = ((1u << 20) + p.nkeep - 1) / p.nkeep, max_chunks = (p.nred + 63) / 64;
    if (chunks > max_chunks) chunks = max_chunks;
    if (chunks < 1) chunks = 1;
    uint64_t len = (p.nred + chunks - 1) / chunks;
    chunks = (p.nred + len - 1) / len;
    int64_t n = (int64_t)(p.nkeep * chunks);
    if (write && chunks > 1) { /* the chunks add up with atomicAdd: onto zeros */
      int64_t nk = (int64_t)p.nkeep;
      if (wide) OD_LAUNCH(red_zero<true>, od_cuda_blocks(nk), OD_CUDA_THREADS, st)(p, dst);
      else OD_LAUNCH(red_zero<false>, od_cuda_blocks(nk), OD_CUDA_THREADS, st)(p, dst);
      OD_CUDA_LAUNCHED(ctx);
    }
    if (wide) OD_LAUNCH(red_threads<true>, od_cuda_blocks(n), OD_CUDA_THREADS, st)(p, chunks, len, dst, src, write);
    else OD_LAUNCH(red_threads<false>, od_cuda_blocks(n), OD_CUDA_THREADS, st)(p, chunks, len, dst, src, write);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

enum od_status od_cuda_strided_add(struct od_kernel_ctx *ctx, int rank, const int64_t *dims, float *dst,
                                   const int64_t *dst_strides, const float *src, const int64_t *src_strides) {
  return od_cuda_strided_acc(ctx, false, rank, dims, dst, dst_strides, src, src_strides);
}

enum od_status od_cuda_acc(struct od_kernel_ctx *ctx, bool write, float *dst, const float *src, int64_t n) {
  return od_cuda_strided_acc(ctx, write, 1, &n, dst, NULL, src, NULL);
}

enum od_status od_cuda_add(struct od_kernel_ctx *ctx, float *dst, const float *src, int64_t n) {
  return od_cuda_acc(ctx, false, dst, src, n);
}

enum od_status od_cuda_small_to_host(struct od_kernel_ctx *ctx, const struct od_tensor *t, struct od_tensor *host,
                                     void *buf, size_t cap) {
  memset(host, 0, sizeof *host);
  if (!t || !t->dtype) return OD_OK;
  *host = *t;
  host->data = buf;
  size_t nb = od_tensor_nbytes(t);
  if (nb > cap)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "a shape input of %zu bytes (at most %zu read on the host)", nb, cap);
  if (nb) OD_TRY(ctx->dev->ops->to_host(ctx->dev, buf, t->data, nb, ctx->err));
  return OD_OK;
}

/* ---- Transpose ---------------------------------------------------------------------------------- */

/* perm, or the reversed axes when the attribute is absent (parse/infer validated it). */
static enum od_status cuda_perm(const struct od_kernel_ctx *ctx, int r, int *perm) {
  const struct transpose_attrs *a = (const struct transpose_attrs *)ctx->attrs;
  if (a->has_perm && a->n_perm != r)
    return od_err_set(ctx->err, OD_ERR_SHAPE, "attribute 'perm' has %d values, input has rank %d", a->n_perm, r);
  for (int i = 0; i < r; i++) perm[i] = a->has_perm ? (int)a->perm[i] : r - 1 - i;
  return OD_OK;
}

enum od_status od_cuda_transpose_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  int perm[OD_MAX_DIMS];
  OD_TRY(cuda_perm(ctx, X->rank, perm));
  int64_t xs[OD_MAX_DIMS], ss[OD_MAX_DIMS];
  od_strides(X->rank, X->dims, xs);
  for (int i = 0; i < X->rank; i++) ss[i] = xs[perm[i]];
  return od_cuda_strided_copy(ctx, od_dtype_size(X->dtype), Y->rank, Y->dims, Y->data, NULL, X->data, ss);
}

enum od_status od_cuda_transpose_bwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY) return OD_OK; /* one output: dY is there when the backward runs */
  if (dX->dtype != OD_DTYPE_FLOAT) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Transpose backward on CUDA: float only");
  int perm[OD_MAX_DIMS];
  OD_TRY(cuda_perm(ctx, dX->rank, perm));
  int64_t ys[OD_MAX_DIMS], ss[OD_MAX_DIMS];
  od_strides(dY->rank, dY->dims, ys);
  for (int i = 0; i < dY->rank; i++) ss[perm[i]] = ys[i];
  return od_cuda_strided_acc(ctx, od_cuda_fresh(ctx, 0), dX->rank, dX->dims, (float *)dX->data, NULL,
                             (const float *)dY->data, ss);
}
