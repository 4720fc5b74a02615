/* ops/cuda/ew.cuh: what the CUDA kernels of the elementwise family (ops/unary.cu, ops/binary.cu,
 * ops/clip.cu, ops/variadic.cu) share. Float32 only (the executor runs other dtypes on the CPU).
 *
 * ew_apply<F>: y[i] = f(x0, x1, x2, x3) over y's shape, each input read broadcast to it (numpy
 *   rules; a legacy or PRelu view is just another shape for the same data). F is a functor with
 *   `static constexpr int N` (inputs read, 0..4) and `__device__ float operator()(float, float,
 *   float, float) const` (arguments past N are 0). y may also be one of the inputs when that input
 *   has y's shape (accumulation: pass y as x0; each element is read and written by one thread).
 *   Two kernels:
 *   - flat: every input has y's numel (then also its layout) or is one value: a grid-stride loop,
 *     4 elements per step through 16-byte loads and stores when every pointer is 16-byte aligned
 *     (the hot case: activations, residual adds, their gradients), the few left over one by one;
 *   - general: dims collapsed on the host (dims of 1 dropped, neighbours merged when every input
 *     walks them as one), and each output index split into per-input offsets by the collapsed
 *     dims and strides (struct ew_bcast, passed by value; 32-bit index math below 2^31 elements).
 *
 * ew_reduce: dst += scale * (src summed over the dims along which dst was broadcast to src's
 *   shape): the gradient of a broadcast input; or dst = (the write variant, for a fresh gradient:
 *   ops/op.h din_fresh). Sums are formed in double (like the CPU kernels).
 *   src's dims are collapsed into alternating kept / reduced groups, then:
 *   - same numel: dst += scale * src through ew_apply (vectorised; the write variant of scale 1 is
 *     one device copy);
 *   - innermost group reduced with >= 32 elements (bias over [N, C, H*W], a scalar, rows):
 *     a block per dst element, its threads striding over the reduced positions in order
 *     (coalesced), then a shared-memory tree;
 *   - otherwise (innermost kept: columns over leading dims, or short reduced runs): a thread per
 *     dst element looping over the reduced positions; neighbouring threads read neighbouring
 *     columns (coalesced).
 *   When that leaves the GPU short of threads (a small dst from a large src), the reduced range is
 *   cut into slices (gridDim.y): each slice writes double partial sums to scratch and a second
 *   kernel adds them up into dst. Deterministic: no atomics. */
#ifndef OD_CUDA_EW_CUH
#define OD_CUDA_EW_CUH

#include <math.h>
#include <string.h>

#include "ops/cuda/common.cuh"

#define EW_MAX_N 4 /* inputs of one ew_apply functor */

/* 4 floats moved as one 16-byte load/store (CUDA's float4 has the same layout and alignment;
 * defined here so the emulation needs no float4). */
struct alignas(16) ew_f4 {
  float x, y, z, w;
};

/* ---- ew_apply ------------------------------------------------------------------------------- */

struct ew_ptrs {
  const float *x[EW_MAX_N];
  unsigned scalar; /* bit k: input k is one value, read once */
};

/* Collapsed output dims and each input's strides along them (0: broadcast). */
struct ew_bcast {
  int rank;
  int64_t dims[OD_MAX_DIMS];
  int64_t str[EW_MAX_N][OD_MAX_DIMS];
};

template <class F>
static __global__ void ew_flat_kernel(F f, float *y, ew_ptrs p, int64_t n, int64_t n4) {
  float sv[EW_MAX_N] = {0, 0, 0, 0};
  for (int k = 0; k < F::N; k++)
    if (p.scalar >> k & 1u) sv[k] = p.x[k][0];
  OD_GRID_LOOP(i, n4) {
    ew_f4 v[EW_MAX_N] = {};
    for (int k = 0; k < F::N; k++) {
      if (p.scalar >> k & 1u)
        v[k].x = v[k].y = v[k].z = v[k].w = sv[k];
      else
        v[k] = reinterpret_cast<const ew_f4 *>(p.x[k])[i];
    }
    ew_f4 r;
    r.x = f(v[0].x, v[1].x, v[2].x, v[3].x);
    r.y = f(v[0].y, v[1].y, v[2].y, v[3].y);
    r.z = f(v[0].z, v[1].z, v[2].z, v[3].z);
    r.w = f(v[0].w, v[1].w, v[2].w, v[3].w);
    reinterpret_cast<ew_f4 *>(y)[i] = r;
  }
  for (int64_t i = 4 * n4 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    float v[EW_MAX_N] = {0, 0, 0, 0};
    for (int k = 0; k < F::N; k++) v[k] = p.scalar >> k & 1u ? sv[k] : p.x[k][i];
    y[i] = f(v[0], v[1], v[2], v[3]);
  }
}

/* Offsets of output element i in each of the N inputs. */
template <int N, typename I>
static __device__ inline void ew_offsets(const ew_bcast &b, I i, I *off) {
  for (int k = 0; k < N; k++) off[k] = 0;
  for (int d = b.rank - 1; d >= 0; d--) {
    I dim = (I)b.dims[d], q = i / dim, r = i - q * dim;
    for (int k = 0; k < N; k++) off[k] += r * (I)b.str[k][d];
    i = q;
  }
}

template <class F, typename I>
static __device__ inline void ew_bcast_loop(const F &f, float *y, const ew_ptrs &p, const ew_bcast &b, I n) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)blockDim.x * gridDim.x) {
    I off[EW_MAX_N];
    float v[EW_MAX_N] = {0, 0, 0, 0};
    ew_offsets<F::N, I>(b, i, off);
    for (int k = 0; k < F::N; k++) v[k] = p.x[k][off[k]];
    y[i] = f(v[0], v[1], v[2], v[3]);
  }
}

template <class F>
static __global__ void ew_bcast_kernel(F f, float *y, ew_ptrs p, ew_bcast b, int64_t n) {
  if (n < ((int64_t)1 << 31))
    ew_bcast_loop<F, uint32_t>(f, y, p, b, (uint32_t)n);
  else
    ew_bcast_loop<F, int64_t>(f, y, p, b, n);
}

/* y (float32, shape rank/dims, device data) = f(x[0..F::N)) with x[k] broadcast to y's shape. The
 * shapes must broadcast (infer checked them). */
template <class F>
static enum od_status ew_apply(struct od_kernel_ctx *ctx, const F &f, float *y, int rank, const int64_t *dims,
                               const struct od_tensor *const *x) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  if (n <= 0) return OD_OK;
  cudaStream_t stream = od_cuda_stream(ctx->dev);
  ew_ptrs p;
  memset(&p, 0, sizeof p);
  bool flat = true, aligned = ((uintptr_t)y & 15u) == 0;
  for (int k = 0; k < F::N; k++) {
    int64_t nk = od_tensor_numel(x[k]);
    p.x[k] = (const float *)x[k]->data;
    if (nk == 1 && n != 1)
      p.scalar |= 1u << k;
    else if (nk == n)
      aligned = aligned && ((uintptr_t)p.x[k] & 15u) == 0;
    else
      flat = false;
  }
  if (flat) {
    int64_t n4 = aligned ? n / 4 : 0;
    OD_LAUNCH(ew_flat_kernel<F>, od_cuda_blocks(n4 > 0 ? n4 : n), OD_CUDA_THREADS, stream)(f, y, p, n, n4);
    OD_CUDA_LAUNCHED(ctx);
    return OD_OK;
  }
  /* General: collapse like ew_bcast_run (ops/elementwise.c). */
  int64_t st[EW_MAX_N][OD_MAX_DIMS];
  for (int k = 0; k < F::N; k++) od_broadcast_strides(x[k]->rank, x[k]->dims, rank, dims, st[k]);
  ew_bcast b;
  memset(&b, 0, sizeof b);
  int m = 0;
  for (int i = 0; i < rank; i++) {
    if (dims[i] == 1) continue;
    bool merge = m > 0;
    for (int k = 0; k < F::N && merge; k++) merge = b.str[k][m - 1] == st[k][i] * dims[i];
    if (merge) {
      b.dims[m - 1] *= dims[i];
      for (int k = 0; k < F::N; k++) b.str[k][m - 1] = st[k][i];
      continue;
    }
    b.dims[m] = dims[i];
    for (int k = 0; k < F::N; k++) b.str[k][m] = st[k][i];
    m++;
  }
  if (m == 0) b.dims[m++] = 1; /* unreachable: n > 1 when not flat */
  b.rank = m;
  OD_LAUNCH(ew_bcast_kernel<F>, od_cuda_blocks(n), OD_CUDA_THREADS, stream)(f, y, p, b, n);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

/* ew_apply onto a tensor's own data and shape. */
template <class F>
static enum od_status ew_apply_t(struct od_kernel_ctx *ctx, const F &f, struct od_tensor *y,
                                 const struct od_tensor *const *x) {
  return ew_apply(ctx, f, (float *)y->data, y->rank, y->dims, x);
}

/* dst = dst + scale * src (scale 1: dst + src, as the CPU's ew_reduce_grad). */
struct ew_axpy {
  static constexpr int N = 2;
  float scale;
  bool one;
  __device__ float operator()(float d, float s, float, float) const { return one ? d + s : d + scale * s; }
};

/* y = scale * src (scale 1: src) */
struct ew_scale {
  static constexpr int N = 1;
  float scale;
  __device__ float operator()(float s, float, float, float) const { return scale * s; }
};

/* y = value */
struct ew_fill {
  static constexpr int N = 0;
  float value;
  __device__ float operator()(float, float, float, float) const { return value; }
};

/* ---- ew_reduce ------------------------------------------------------------------------------ */

enum { EW_RED_SAME, EW_RED_BLOCK, EW_RED_THREAD };

struct ew_reduce {
  int mode;
  int64_t n_src, n_dst;
  int nk, nr;                               /* kept and reduced groups, outer to inner */
  int64_t kd[OD_MAX_DIMS], ks[OD_MAX_DIMS]; /* kept lengths, src strides (dst: row-major) */
  int64_t rd[OD_MAX_DIMS], rs[OD_MAX_DIMS]; /* reduced lengths, src strides */
  int64_t r_total;                          /* product of rd */
  int slices;                               /* gridDim.y; > 1: partial sums in scratch */
  bool write;                               /* dst = instead of dst += (set by ew_reduce_run) */
};

/* src offset of kept index j (a dst element) */
[[maybe_unused]] static __device__ inline int64_t ew_red_kept(const ew_reduce &p, int64_t j) {
  int64_t off = 0;
  for (int d = p.nk - 1; d >= 0; d--) {
    int64_t q = j / p.kd[d];
    off += (j - q * p.kd[d]) * p.ks[d];
    j = q;
  }
  return off;
}

/* src offset of outer reduced index o (all reduced groups but the innermost) */
[[maybe_unused]] static __device__ inline int64_t ew_red_outer(const ew_reduce &p, int64_t o) {
  int64_t off = 0;
  for (int d = p.nr - 2; d >= 0; d--) {
    int64_t q = o / p.rd[d];
    off += (o - q * p.rd[d]) * p.rs[d];
    o = q;
  }
  return off;
}

/* Sum of src over reduced positions [r0, r1) for the element at src offset base, visiting
 * r0 + t, r0 + t + step, ... (t, step: this thread's share). */
[[maybe_unused]] static __device__ inline double ew_red_range(const ew_reduce &p, const float *src, int64_t base,
                                                              int64_t r0, int64_t r1, int64_t t, int64_t step) {
  const int64_t L = p.rd[p.nr - 1], ls = p.rs[p.nr - 1];
  int64_t r = r0 + t;
  if (r >= r1) return 0;
  int64_t o = r / L, in = r - o * L, ooff = ew_red_outer(p, o);
  double acc = 0;
  if (step == 1) { /* one thread: whole runs of the innermost reduced group */
    while (r < r1) {
      int64_t run = L - in < r1 - r ? L - in : r1 - r;
      const float *s = src + base + ooff + in * ls;
      for (int64_t q = 0; q < run; q++) acc += s[q * ls];
      r += run;
      in = 0;
      ooff = ew_red_outer(p, ++o);
    }
    return acc;
  }
  for (; r < r1; r += step) {
    acc += src[base + ooff + in * ls];
    in += step;
    if (in >= L) {
      do {
        in -= L;
        o++;
      } while (in >= L);
      ooff = ew_red_outer(p, o);
    }
  }
  return acc;
}

/* Slice s = blockIdx.y covers reduced positions [r_total * s / slices, r_total * (s + 1) / slices). */
#define EW_RED_SLICE(p, r0, r1)                                      \
  const int64_t r0 = (p).r_total * (int64_t)blockIdx.y / (p).slices; \
  const int64_t r1 = (p).r_total * ((int64_t)blockIdx.y + 1) / (p).slices

/* dst[j] += scale * sum (= when p.write), or the slice's partial sum */
[[maybe_unused]] static __device__ inline void ew_red_store(const ew_reduce &p, float *dst, double *partial,
                                                            double scale, int64_t j, double acc) {
  if (p.slices > 1)
    partial[(int64_t)blockIdx.y * p.n_dst + j] = acc;
  else if (p.write)
    dst[j] = (float)(scale * acc);
  else
    dst[j] += (float)(scale * acc);
}

[[maybe_unused]] static __global__ void ew_reduce_thread_kernel(ew_reduce p, float *dst, const float *src, double scale,
                                                                double *partial) {
  EW_RED_SLICE(p, r0, r1);
  OD_GRID_LOOP(j, p.n_dst) {
    ew_red_store(p, dst, partial, scale, j, ew_red_range(p, src, ew_red_kept(p, j), r0, r1, 0, 1));
  }
}

/* Tree sum of one value per thread (blockDim.x == OD_CUDA_THREADS); the total in sh[0]. */
[[maybe_unused]] static __device__ inline void ew_block_sum(double *sh, double v) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = OD_CUDA_THREADS / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
}

[[maybe_unused]] static __global__ void ew_reduce_block_kernel(ew_reduce p, float *dst, const float *src, double scale,
                                                               double *partial) {
  __shared__ double sh[OD_CUDA_THREADS];
  EW_RED_SLICE(p, r0, r1);
  for (int64_t j = blockIdx.x; j < p.n_dst; j += gridDim.x) {
    ew_block_sum(sh, ew_red_range(p, src, ew_red_kept(p, j), r0, r1, threadIdx.x, blockDim.x));
    if (threadIdx.x == 0) ew_red_store(p, dst, partial, scale, j, sh[0]);
    __syncthreads(); /* sh is reused by the next j */
  }
}

/* dst[j] += scale * sum over s of partial[s * n_dst + j] (= when write): a thread per j (coalesced
 * over j) ... */
[[maybe_unused]] static __global__ void ew_reduce_finish_thread_kernel(int64_t n_dst, int slices, float *dst,
                                                                       const double *partial, double scale,
                                                                       bool write) {
  OD_GRID_LOOP(j, n_dst) {
    double acc = 0;
    for (int s = 0; s < slices; s++) acc += partial[(int64_t)s * n_dst + j];
    float v = (float)(scale * acc);
    dst[j] = write ? v : dst[j] + v;
  }
}

/* ... or a block per j when dst is small and the slices many. */
[[maybe_unused]] static __global__ void ew_reduce_finish_block_kernel(int64_t n_dst, int slices, float *dst,
                                                                      const double *partial, double scale,
                                                                      bool write) {
  __shared__ double sh[OD_CUDA_THREADS];
  for (int64_t j = blockIdx.x; j < n_dst; j += gridDim.x) {
    double acc = 0;
    for (int s = threadIdx.x; s < slices; s += blockDim.x) acc += partial[(int64_t)s * n_dst + j];
    ew_block_sum(sh, acc);
    if (threadIdx.x == 0) {
      float v = (float)(scale * sh[0]);
      dst[j] = write ? v : dst[j] + v;
    }
    __syncthreads();
  }
}

/* Plans dst += reduce(src) for shapes dst (what was broadcast) and src (the output's shape). */
[[maybe_unused]] static enum od_status ew_reduce_plan(ew_reduce *p, const struct od_tensor *dst,
                                                      const struct od_tensor *src, const char *op, struct od_err *err) {
  memset(p, 0, sizeof *p);
  p->n_src = od_tensor_numel(src);
  p->n_dst = od_tensor_numel(dst);
  p->r_total = 1;
  p->slices = 1;
  if (p->n_src <= 0 || p->n_dst == p->n_src) {
    p->mode = EW_RED_SAME;
    return OD_OK;
  }
  bool fits = dst->rank <= src->rank;
  for (int i = 0; fits && i < dst->rank; i++) {
    int64_t dd = dst->dims[dst->rank - 1 - i], sd = src->dims[src->rank - 1 - i];
    fits = dd == sd || dd == 1;
  }
  if (!fits) {
    char sa[128], sb[128];
    return od_err_set(err, OD_ERR_INTERNAL, "%s backward: gradient of shape %s cannot be reduced to shape %s", op,
                      od_shape_str(src->rank, src->dims, sa, sizeof sa),
                      od_shape_str(dst->rank, dst->dims, sb, sizeof sb));
  }
  int64_t ss[OD_MAX_DIMS], ds[OD_MAX_DIMS], dims[OD_MAX_DIMS], str[OD_MAX_DIMS];
  bool red[OD_MAX_DIMS];
  od_strides(src->rank, src->dims, ss);
  od_broadcast_strides(dst->rank, dst->dims, src->rank, src->dims, ds);
  int m = 0;
  for (int i = 0; i < src->rank; i++) { /* neighbours of the same kind merge (both contiguous) */
    if (src->dims[i] == 1) continue;
    bool r = ds[i] == 0;
    if (m > 0 && red[m - 1] == r) {
      dims[m - 1] *= src->dims[i];
      str[m - 1] = ss[i];
      continue;
    }
    red[m] = r;
    dims[m] = src->dims[i];
    str[m++] = ss[i];
  }
  for (int d = 0; d < m; d++) { /* n_dst < n_src: at least one reduced group */
    if (red[d]) {
      p->rd[p->nr] = dims[d];
      p->rs[p->nr++] = str[d];
      p->r_total *= dims[d];
    } else {
      p->kd[p->nk] = dims[d];
      p->ks[p->nk++] = str[d];
    }
  }
  int64_t want; /* slices that give the GPU enough parallel work */
  if (red[m - 1] && dims[m - 1] >= 32) {
    p->mode = EW_RED_BLOCK;
    int64_t by_work = p->r_total / 4096, by_blocks = (1024 + p->n_dst - 1) / p->n_dst;
    want = by_work < by_blocks ? by_work : by_blocks;
  } else {
    p->mode = EW_RED_THREAD;
    int64_t by_work = p->r_total / 64, by_threads = (65536 + p->n_dst - 1) / p->n_dst;
    want = by_work < by_threads ? by_work : by_threads;
  }
  p->slices = (int)(want < 1 ? 1 : want > 65535 ? 65535 : want);
  return OD_OK;
}

/* Scratch bytes ew_reduce_run needs (partial sums), 0 for none. */
[[maybe_unused]] static inline size_t ew_reduce_scratch(const ew_reduce *p) {
  return p->mode != EW_RED_SAME && p->slices > 1 ? (size_t)p->slices * (size_t)p->n_dst * sizeof(double) : 0;
}

/* dst += scale * reduce(src) (write: dst = scale * reduce(src), every element of dst written);
 * scratch: ew_reduce_scratch(p) bytes of device memory. */
[[maybe_unused]] static enum od_status ew_reduce_run(struct od_kernel_ctx *ctx, const ew_reduce *p,
                                                     const struct od_tensor *dst, const struct od_tensor *src,
                                                     double scale, void *scratch, bool write = false) {
  if (p->n_src <= 0) { /* an empty src reduces to zeros (a broadcast of an empty tensor) */
    size_t bytes = od_tensor_nbytes(dst);
    return write && bytes ? ctx->dev->ops->zero(ctx->dev, dst->data, bytes, ctx->err) : OD_OK;
  }
  if (p->mode == EW_RED_SAME) {
    if (write && scale == 1.0)
      return ctx->dev->ops->copy(ctx->dev, dst->data, src->data, od_tensor_nbytes(src), ctx->err);
    if (write) {
      const struct od_tensor *x[1] = {src};
      return ew_apply(ctx, ew_scale{(float)scale}, (float *)dst->data, src->rank, src->dims, x);
    }
    const struct od_tensor *x[2] = {dst, src};
    ew_axpy f = {(float)scale, scale == 1.0};
    return ew_apply(ctx, f, (float *)dst->data, src->rank, src->dims, x);
  }
  cudaStream_t stream = od_cuda_stream(ctx->dev);
  float *d = (float *)dst->data;
  const float *s = (const float *)src->data;
  double *partial = p->slices > 1 ? (double *)scratch : NULL;
  ew_reduce q = *p;
  q.write = write;
  if (q.mode == EW_RED_BLOCK) {
    dim3 grid((unsigned)(q.n_dst < 65535 ? q.n_dst : 65535), (unsigned)q.slices);
    OD_LAUNCH(ew_reduce_block_kernel, grid, OD_CUDA_THREADS, stream)(q, d, s, scale, partial);
  } else {
    dim3 grid(od_cuda_blocks(q.n_dst), (unsigned)q.slices);
    OD_LAUNCH(ew_reduce_thread_kernel, grid, OD_CUDA_THREADS, stream)(q, d, s, scale, partial);
  }
  OD_CUDA_LAUNCHED(ctx);
  if (q.slices > 1) {
    int64_t n = q.n_dst;
    if (n < 1024) /* few outputs, many slices: a block per output */
      OD_LAUNCH(ew_reduce_finish_block_kernel, (unsigned)n, OD_CUDA_THREADS, stream)(n, q.slices, d, partial, scale,
                                                                                     write);
    else
      OD_LAUNCH(ew_reduce_finish_thread_kernel, od_cuda_blocks(n), OD_CUDA_THREADS, stream)(n, q.slices, d, partial,
                                                                                            scale, write);
    OD_CUDA_LAUNCHED(ctx);
  }
  return OD_OK;
}

/* dst += scale * reduce(src) (write: =), taking its scratch from the device workspace. */
[[maybe_unused]] static enum od_status ew_reduce_grad(struct od_kernel_ctx *ctx, const struct od_tensor *dst,
                                                      const struct od_tensor *src, double scale, const char *op,
                                                      bool write = false) {
  ew_reduce p;
  OD_TRY(ew_reduce_plan(&p, dst, src, op, ctx->err));
  void *scratch = NULL;
  size_t bytes = ew_reduce_scratch(&p);
  if (bytes) OD_TRY(od_cuda_workspace(ctx->dev, bytes, &scratch, ctx->err));
  return ew_reduce_run(ctx, &p, dst, src, scale, scratch, write);
}

/* Gradients of broadcast operands: din += reduce(f(dY, a, b)) (write: din =), f a functor reading
 * (dY, a, b) (N == 2: dY and a only) broadcast to dY's shape. When din has dY's numel, one fused
 * kernel accumulates into din (ew_acc) or writes f's values; otherwise f's values go to a dY-shaped
 * scratch term, which is then reduced (ew_reduce). Scratch: ew_grad_scratch bytes, or NULL to take
 * it from the workspace (a caller that keeps its own data in the workspace passes the part after
 * it). */
template <class F>
struct ew_acc {
  static constexpr int N = F::N + 1;
  F f;
  __device__ float operator()(float d, float g, float a, float b) const { return d + f(g, a, b, 0); }
};

[[maybe_unused]] static inline size_t ew_align256(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

[[maybe_unused]] static enum od_status ew_grad_scratch(struct od_kernel_ctx *ctx, const struct od_tensor *din,
                                                       const struct od_tensor *dy, const char *op, size_t *bytes) {
  int64_t n = od_tensor_numel(dy);
  *bytes = 0;
  if (n <= 0 || od_tensor_numel(din) == n) return OD_OK;
  ew_reduce p;
  OD_TRY(ew_reduce_plan(&p, din, dy, op, ctx->err));
  *bytes = ew_align256((size_t)n * sizeof(float)) + ew_reduce_scratch(&p);
  return OD_OK;
}

template <class F>
static enum od_status ew_grad_bcast(struct od_kernel_ctx *ctx, const struct od_tensor *din, const struct od_tensor *dy,
                                    const struct od_tensor *a, const struct od_tensor *b, const F &f, const char *op,
                                    void *scratch = NULL, bool write = false) {
  int64_t n = od_tensor_numel(dy);
  if (n <= 0) {
    size_t bytes = od_tensor_nbytes(din);
    return write && bytes ? ctx->dev->ops->zero(ctx->dev, din->data, bytes, ctx->err) : OD_OK;
  }
  if (od_tensor_numel(din) == n && write) {
    const struct od_tensor *x[3] = {dy, a, b};
    return ew_apply(ctx, f, (float *)din->data, dy->rank, dy->dims, x);
  }
  if (od_tensor_numel(din) == n) {
    const struct od_tensor *x[4] = {din, dy, a, b};
    ew_acc<F> acc = {f};
    return ew_apply(ctx, acc, (float *)din->data, dy->rank, dy->dims, x);
  }
  ew_reduce p;
  OD_TRY(ew_reduce_plan(&p, din, dy, op, ctx->err));
  size_t term_bytes = ew_align256((size_t)n * sizeof(float));
  if (!scratch) OD_TRY(od_cuda_workspace(ctx->dev, term_bytes + ew_reduce_scratch(&p), &scratch, ctx->err));
  struct od_tensor term = *dy;
  term.data = scratch;
  const struct od_tensor *x[3] = {dy, a, b};
  OD_TRY(ew_apply_t(ctx, f, &term, x));
  return ew_reduce_run(ctx, &p, din, &term, 1.0, (char *)scratch + term_bytes, write);
}

/* ---- checks --------------------------------------------------------------------------------- */

/* UNSUPPORTED unless every listed tensor (NULL: skipped) is float32: the executor then runs the
 * node on the CPU. Checked before any launch, so a fallback never follows partial work. */
[[maybe_unused]] static inline enum od_status ew_need_f32(struct od_kernel_ctx *ctx, int n,
                                                          const struct od_tensor *const *t) {
  for (int i = 0; i < n; i++)
    if (t[i] && t[i]->dtype != OD_DTYPE_FLOAT)
      return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "%s on CUDA supports float32 only, not %s", ctx->node->op_type,
                        od_dtype_name(t[i]->dtype));
  return OD_OK;
}

#endif
