/* ops/transpose.c: ONNX Transpose (opsets 1, 13, 21, 23-25: same semantics, later versions only
 * add dtypes) and the strided copy and accumulate engines of ops/transpose.h.
 *
 * Transpose: Y = X with its axes permuted, Y.shape[i] = X.shape[perm[i]]; perm defaults to the
 * reversed axes. dtypes: every fixed-size dtype the runtime holds (float, double, float16,
 * bfloat16, int8..int64, uint8..uint64, bool): the copy moves bytes. Backward (float, double):
 * dX = dY transposed back by the inverse permutation, accumulated.
 * Spec: https://onnx.ai/onnx/operators/onnx__Transpose.html */
#include "ops/transpose.h"

#include <stdbool.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"
#include "runtime/pool.h"

/* ---- the strided copy engine ---------------------------------------------------------------- */

#define SC_MAX OD_STRIDED_MAX_DIMS
#define SC_TILE 32 /* edge of the square tiles of the 2-D transpose path (elements) */

struct sc_job {
  int rank;
  int64_t dims[SC_MAX];
  int64_t ds[SC_MAX]; /* dst strides (elements) */
  int64_t ss[SC_MAX]; /* src strides (elements) */
  size_t es;
  char *dst;
  const char *src;
  /* the tiled path: tile dims j (src stride 1) and rank-1 (dst stride 1); the other dims are the
   * "outer" ones, listed in other[0..n_other) */
  int j;
  int n_other;
  int other[SC_MAX];
  int64_t nbj; /* tiles along dim j */
};

/* One element of es bytes; memcpy with a constant size compiles to a single move and keeps the
 * copy free of strict-aliasing questions whatever the dtype is. */
#define SC_LOOP(ES, N, D, DSTRIDE, S, SSTRIDE)                                       \
  for (int64_t i_ = 0; i_ < (N); i_++)                                               \
    memcpy((D) + i_ * (DSTRIDE) * (ES), (S) + i_ * (SSTRIDE) * (ES), (ES))

/* n elements from s (stride sst) to d (stride dst), in elements of es bytes. */
static void sc_row(char *d, int64_t dst, const char *s, int64_t sst, int64_t n, size_t es) {
  if (dst == 1 && sst == 1) {
    memcpy(d, s, (size_t)n * es);
    return;
  }
  switch (es) {
    case 1: SC_LOOP(1, n, d, dst, s, sst); break;
    case 2: SC_LOOP(2, n, d, dst, s, sst); break;
    case 4: SC_LOOP(4, n, d, dst, s, sst); break;
    case 8: SC_LOOP(8, n, d, dst, s, sst); break;
    default:
      for (int64_t i = 0; i < n; i++) memcpy(d + i * dst * (int64_t)es, s + i * sst * (int64_t)es, es);
  }
}

/* Rows [begin, end) of the dims 0..rank-2; each row is dims[rank-1] elements. */
static void sc_rows(void *ctx, int64_t begin, int64_t end) {
  const struct sc_job *jb = ctx;
  int last = jb->rank - 1;
  int64_t idx[SC_MAX];
  int64_t doff = 0, soff = 0, rem = begin;
  for (int k = last - 1; k >= 0; k--) {
    idx[k] = rem % jb->dims[k];
    rem /= jb->dims[k];
    doff += idx[k] * jb->ds[k];
    soff += idx[k] * jb->ss[k];
  }
  int64_t es = (int64_t)jb->es;
  for (int64_t r = begin; r < end; r++) {
    sc_row(jb->dst + doff * es, jb->ds[last], jb->src + soff * es, jb->ss[last], jb->dims[last], jb->es);
    for (int k = last - 1; k >= 0; k--) { /* odometer step */
      doff += jb->ds[k];
      soff += jb->ss[k];
      if (++idx[k] < jb->dims[k]) break;
      doff -= jb->ds[k] * jb->dims[k];
      soff -= jb->ss[k] * jb->dims[k];
      idx[k] = 0;
    }
  }
}

/* One SC_TILE x SC_TILE tile: rows p in [p0, p1) of dim j (src stride 1), columns c in [c0, c1) of
 * the last dim (dst stride 1). The inner loop writes dst contiguously while the tile's src lines
 * stay in cache. */
#define SC_TILE_LOOP(ES)                                                                   \
  for (int64_t p = p0; p < p1; p++)                                                        \
    for (int64_t c = c0; c < c1; c++)                                                      \
      memcpy(d + (p * dj + c) * (ES), s + (p + c * sl) * (ES), (ES))

static void sc_tiles(void *ctx, int64_t begin, int64_t end) {
  const struct sc_job *jb = ctx;
  int last = jb->rank - 1;
  int64_t es = (int64_t)jb->es;
  int64_t dj = jb->ds[jb->j], sl = jb->ss[last], nj = jb->dims[jb->j], nl = jb->dims[last];
  for (int64_t t = begin; t < end; t++) {
    int64_t o = t / jb->nbj, p0 = (t % jb->nbj) * SC_TILE;
    int64_t p1 = p0 + SC_TILE < nj ? p0 + SC_TILE : nj;
    int64_t doff = 0, soff = 0;
    for (int q = jb->n_other - 1; q >= 0; q--) {
      int k = jb->other[q];
      int64_t i = o % jb->dims[k];
      o /= jb->dims[k];
      doff += i * jb->ds[k];
      soff += i * jb->ss[k];
    }
    char *d = jb->dst + doff * es;
    const char *s = jb->src + soff * es;
    for (int64_t c0 = 0; c0 < nl; c0 += SC_TILE) {
      int64_t c1 = c0 + SC_TILE < nl ? c0 + SC_TILE : nl;
      switch (es) {
        case 1: SC_TILE_LOOP(1); break;
        case 2: SC_TILE_LOOP(2); break;
        case 4: SC_TILE_LOOP(4); break;
        case 8: SC_TILE_LOOP(8); break;
        default:
          for (int64_t p = p0; p < p1; p++)
            for (int64_t c = c0; c < c1; c++)
              memcpy(d + (p * dj + c) * es, s + (p + c * sl) * es, (size_t)es);
      }
    }
  }
}

void od_strided_copy(struct od_pool *pool, size_t es, int rank, const int64_t *dims, void *dst,
                     const int64_t *dst_strides, const void *src, const int64_t *src_strides) {
  struct sc_job jb = {.es = es, .dst = dst, .src = src};
  int64_t cstr[SC_MAX];
  if (!dst_strides) { /* contiguous row-major dst */
    int64_t s = 1;
    for (int k = rank - 1; k >= 0; k--) {
      cstr[k] = s;
      s *= dims[k];
    }
    dst_strides = cstr;
  }
  /* drop size-1 dims, stop at empty blocks, merge dims contiguous on both sides */
  for (int k = 0; k < rank; k++) {
    if (dims[k] == 0) return;
    if (dims[k] == 1) continue;
    int m = jb.rank;
    if (m > 0 && jb.ds[m - 1] == dst_strides[k] * dims[k] && jb.ss[m - 1] == src_strides[k] * dims[k]) {
      jb.dims[m - 1] *= dims[k];
      jb.ds[m - 1] = dst_strides[k];
      jb.ss[m - 1] = src_strides[k];
      continue;
    }
    jb.dims[m] = dims[k];
    jb.ds[m] = dst_strides[k];
    jb.ss[m] = src_strides[k];
    jb.rank++;
  }
  if (jb.rank == 0) { /* a single element */
    memcpy(dst, src, es);
    return;
  }
  int last = jb.rank - 1;
  int64_t numel = 1;
  for (int k = 0; k < jb.rank; k++) numel *= jb.dims[k];

  /* a transpose of the two innermost-moving dims: tile it */
  jb.j = -1;
  if (jb.ds[last] == 1 && jb.ss[last] != 1 && jb.dims[last] >= 8) {
    for (int k = 0; k < last; k++)
      if (jb.ss[k] == 1 && jb.dims[k] >= 8) jb.j = k;
  }
  if (jb.j >= 0) {
    for (int k = 0; k < last; k++)
      if (k != jb.j) jb.other[jb.n_other++] = k;
    jb.nbj = (jb.dims[jb.j] + SC_TILE - 1) / SC_TILE;
    int64_t tasks = numel / (jb.dims[jb.j] * jb.dims[last]) * jb.nbj;
    int64_t per_task = SC_TILE * jb.dims[last];
    od_pool_parallel_for(pool, tasks, 1 + 32768 / per_task, sc_tiles, &jb);
    return;
  }
  int64_t rows = numel / jb.dims[last];
  od_pool_parallel_for(pool, rows, 1 + 32768 / jb.dims[last], sc_rows, &jb);
}

/* ---- the strided accumulate engine (backward passes) ----------------------------------------- */

/* The block split into "keep" dims (dst stride != 0, each index its own dst element) and "reduce"
 * dims (dst stride 0, summed over), each list in the caller's order with contiguous dims merged. */
struct sa_job {
  bool dbl;
  int nk, nr;
  int64_t kd[SC_MAX], kds[SC_MAX], kss[SC_MAX]; /* keep dims: size, dst stride, src stride */
  int64_t rd[SC_MAX], rss[SC_MAX];              /* reduce dims: size, src stride */
  int64_t nred;                                 /* product of rd */
  char *dst;
  const char *src;
};

/* dst/src offsets of the linear index t over the keep dims [0, n). */
static void sa_offsets(const struct sa_job *jb, int n, int64_t t, int64_t *doff, int64_t *soff) {
  *doff = *soff = 0;
  for (int k = n - 1; k >= 0; k--) {
    int64_t i = t % jb->kd[k];
    t /= jb->kd[k];
    *doff += i * jb->kds[k];
    *soff += i * jb->kss[k];
  }
}

/* Sum over the reduce dims of src (from offset soff), innermost reduce dim as the inner loop. */
#define SA_REDUCE_SUM(T, s, soff, out)                                                          \
  do {                                                                                          \
    int64_t idx_[SC_MAX] = {0}, ro_ = 0, last_ = jb->nr - 1, n_ = jb->rd[last_], st_ = jb->rss[last_]; \
    double acc_ = 0;                                                                            \
    for (int64_t q_ = 0; q_ < jb->nred / n_; q_++) {                                            \
      const T *p_ = (s) + (soff) + ro_;                                                         \
      for (int64_t i_ = 0; i_ < n_; i_++) acc_ += p_[i_ * st_];                                 \
      for (int k_ = last_ - 1; k_ >= 0; k_--) {                                                 \
        ro_ += jb->rss[k_];                                                                     \
        if (++idx_[k_] < jb->rd[k_]) break;                                                     \
        ro_ -= jb->rss[k_] * jb->rd[k_];                                                        \
        idx_[k_] = 0;                                                                           \
      }                                                                                         \
    }                                                                                           \
    (out) = acc_;                                                                               \
  } while (0)

/* Path A: the innermost moving dim is a reduce dim; one task per dst element. */
#define SA_KERNELS(T)                                                                           \
  static void sa_elems_##T(void *ctx, int64_t begin, int64_t end) {                             \
    const struct sa_job *jb = ctx;                                                              \
    T *d = (T *)jb->dst;                                                                        \
    const T *s = (const T *)jb->src;                                                            \
    for (int64_t t = begin; t < end; t++) {                                                     \
      int64_t doff, soff;                                                                       \
      double sum;                                                                               \
      sa_offsets(jb, jb->nk, t, &doff, &soff);                                                  \
      SA_REDUCE_SUM(T, s, soff, sum);                                                           \
      d[doff] += (T)sum;                                                                        \
    }                                                                                           \
  }                                                                                             \
  /* Path B: one task per row of the outer keep dims; every reduce index adds one row. */       \
  static void sa_rows_##T(void *ctx, int64_t begin, int64_t end) {                              \
    const struct sa_job *jb = ctx;                                                              \
    int last = jb->nk - 1;                                                                      \
    int64_t n = jb->kd[last], ds = jb->kds[last], ss = jb->kss[last];                           \
    for (int64_t t = begin; t < end; t++) {                                                     \
      int64_t doff, soff;                                                                       \
      sa_offsets(jb, last, t, &doff, &soff);                                                    \
      T *d = (T *)jb->dst + doff;                                                               \
      int64_t idx[SC_MAX] = {0}, ro = 0;                                                        \
      for (int64_t q = 0; q < jb->nred; q++) {                                                  \
        const T *s = (const T *)jb->src + soff + ro;                                            \
        if (ds == 1 && ss == 1)                                                                 \
          for (int64_t i = 0; i < n; i++) d[i] += s[i];                                         \
        else                                                                                    \
          for (int64_t i = 0; i < n; i++) d[i * ds] += s[i * ss];                               \
        for (int k = jb->nr - 1; k >= 0; k--) {                                                 \
          ro += jb->rss[k];                                                                     \
          if (++idx[k] < jb->rd[k]) break;                                                      \
          ro -= jb->rss[k] * jb->rd[k];                                                         \
          idx[k] = 0;                                                                           \
        }                                                                                       \
      }                                                                                         \
    }                                                                                           \
  }

SA_KERNELS(float)
SA_KERNELS(double)

/* Appends dim (size, dst stride, src stride) to a list, merging it into the previous dim when the
 * two are contiguous on both sides. */
static void sa_push(int *n, int64_t *d, int64_t *ds, int64_t *ss, int64_t size, int64_t dstr, int64_t sstr) {
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

static int64_t sa_abs(int64_t v) { return v < 0 ? -v : v; }

enum od_status od_strided_add(struct od_pool *pool, int dtype, int rank, const int64_t *dims, void *dst,
                              const int64_t *dst_strides, const void *src, const int64_t *src_strides,
                              const char *what, struct od_err *err) {
  if (dtype != OD_DTYPE_FLOAT && dtype != OD_DTYPE_DOUBLE)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: no backward for %s (float and double only)", what,
                      od_dtype_name(dtype));
  if (rank < 0 || rank > SC_MAX) return od_err_set(err, OD_ERR_INTERNAL, "%s: rank %d", what, rank);
  struct sa_job jb = {.dbl = dtype == OD_DTYPE_DOUBLE, .dst = dst, .src = src};
  int64_t cd[SC_MAX], cs[SC_MAX];
  if (!dst_strides || !src_strides) {
    int64_t s = 1;
    for (int k = rank - 1; k >= 0; k--) {
      cd[k] = cs[k] = s;
      s *= dims[k];
    }
    if (!dst_strides) dst_strides = cd;
    if (!src_strides) src_strides = cs;
  }
  for (int k = 0; k < rank; k++) {
    if (dims[k] == 0) return OD_OK;
    if (dims[k] == 1) continue;
    if (dst_strides[k] == 0) sa_push(&jb.nr, jb.rd, NULL, jb.rss, dims[k], 0, src_strides[k]);
    else sa_push(&jb.nk, jb.kd, jb.kds, jb.kss, dims[k], dst_strides[k], src_strides[k]);
  }
  if (jb.nk == 0) { /* everything sums into one element */
    jb.kd[0] = 1;
    jb.kds[0] = jb.kss[0] = 1;
    jb.nk = 1;
  }
  if (jb.nr == 0) {
    jb.rd[0] = 1;
    jb.rss[0] = 0;
    jb.nr = 1;
  }
  jb.nred = 1;
  for (int k = 0; k < jb.nr; k++) jb.nred *= jb.rd[k];
  int64_t keep = 1;
  for (int k = 0; k < jb.nk; k++) keep *= jb.kd[k];
  bool inner_reduce = jb.rd[jb.nr - 1] > 1 &&
                      (jb.kd[jb.nk - 1] == 1 || sa_abs(jb.rss[jb.nr - 1]) < sa_abs(jb.kss[jb.nk - 1]));
  if (inner_reduce) {
    od_pool_parallel_for(pool, keep, 1 + 32768 / jb.nred, jb.dbl ? sa_elems_double : sa_elems_float, &jb);
  } else {
    int64_t rows = keep / jb.kd[jb.nk - 1], per_row = jb.kd[jb.nk - 1] * jb.nred;
    od_pool_parallel_for(pool, rows, 1 + 32768 / per_row, jb.dbl ? sa_rows_double : sa_rows_float, &jb);
  }
  return OD_OK;
}

/* ---- Transpose ------------------------------------------------------------------------------- */

static enum od_status transpose_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct transpose_attrs *a = attrs;
  size_t n = 0;
  OD_TRY(od_attr_get_ints(node, "perm", a->perm, OD_MAX_DIMS, &n, &a->has_perm, err));
  a->n_perm = (int)n;
  return OD_OK;
}

/* The permutation for a rank-r input: perm, or reversed axes when absent. */
static enum od_status transpose_perm(const struct transpose_attrs *a, int r, int *perm, struct od_err *err) {
  if (!a->has_perm) {
    for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
    return OD_OK;
  }
  if (a->n_perm != r)
    return od_err_set(err, OD_ERR_SHAPE, "attribute 'perm' has %d values, input has rank %d", a->n_perm, r);
  bool seen[OD_MAX_DIMS] = {false};
  for (int i = 0; i < r; i++) {
    int64_t p = a->perm[i];
    if (p < 0 || p >= r || seen[p])
      return od_err_set(err, OD_ERR_SHAPE, "attribute 'perm' is not a permutation of 0..%d (value %lld at %d)",
                        r - 1, (long long)p, i);
    seen[p] = true;
    perm[i] = (int)p;
  }
  return OD_OK;
}

static enum od_status transpose_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *X = &ctx->in[0];
  int perm[OD_MAX_DIMS];
  OD_TRY(transpose_perm(ctx->attrs, X->rank, perm, ctx->err));
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = X->dtype;
  Y->rank = X->rank;
  for (int i = 0; i < X->rank; i++) Y->dims[i] = X->dims[perm[i]];
  return OD_OK;
}

static enum od_status transpose_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *X = ctx->in[0];
  struct od_tensor *Y = ctx->out[0];
  int perm[OD_MAX_DIMS];
  OD_TRY(transpose_perm(ctx->attrs, X->rank, perm, ctx->err));
  int64_t xs[OD_MAX_DIMS], ss[OD_MAX_DIMS];
  od_strides(X->rank, X->dims, xs);
  for (int i = 0; i < X->rank; i++) ss[i] = xs[perm[i]]; /* Y[.., i_k, ..] reads X at axis perm[k] */
  od_strided_copy(ctx->pool, od_dtype_size(X->dtype), Y->rank, Y->dims, Y->data, NULL, X->data, ss);
  return OD_OK;
}

/* Backward: Y[j] = X[j permuted], so dX = transpose(dY, inverse perm): walking X's index space,
 * axis k of X is axis inv[k] of Y (perm[inv[k]] = k), read with Y's stride there. */
static enum od_status transpose_backward_cpu(struct od_kernel_ctx *ctx) {
  struct od_tensor *dX = ctx->din[0];
  const struct od_tensor *dY = ctx->dout[0];
  if (!dX || !dY) return OD_OK;
  int perm[OD_MAX_DIMS];
  OD_TRY(transpose_perm(ctx->attrs, dX->rank, perm, ctx->err));
  int64_t ys[OD_MAX_DIMS], ss[OD_MAX_DIMS];
  od_strides(dY->rank, dY->dims, ys);
  for (int i = 0; i < dY->rank; i++) ss[perm[i]] = ys[i];
  return od_strided_add(ctx->pool, dX->dtype, dX->rank, dX->dims, dX->data, NULL, dY->data, ss, "Transpose", ctx->err);
}

const struct od_op_kernels od_kernels_transpose = {
    .bwd_reads = od_bwd_reads_nothing,
    .attrs_size = sizeof(struct transpose_attrs),
    .parse = transpose_parse,
    .infer = transpose_infer,
    .forward = {[OD_DEVICE_CPU] = transpose_forward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_transpose_fwd)},
    .backward = {[OD_DEVICE_CPU] = transpose_backward_cpu, [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_transpose_bwd)},
    .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
    .dtypes = "all numeric, bool",
};
