/* ops/elementwise.c: drivers shared by the elementwise op family (see ops/elementwise.h). */
/* GCC 12's -O2 vectorises only loops whose trip count is a multiple of the vector width
 * ("very-cheap" cost model): the gradient sums and same-layout adds below are such loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic", "no-trapping-math")
#endif
#include "ops/elementwise.h"

#include <stdlib.h>
#include <string.h>

#include "ops/op.h"
#include "runtime/pool.h"

enum { EW_HALF_CHUNK = 1024 }; /* float32 scratch (on the stack) per step of a half-precision loop */

enum od_status ew_err_dtype(struct od_err *err, const char *op, int dtype) {
  return od_err_set(err, OD_ERR_UNSUPPORTED, "%s does not support %s inputs", op, od_dtype_name(dtype));
}

void ew_widen_n(const void *src, int dtype, float *dst, int64_t n) {
  const uint16_t *s = src;
  if (dtype == OD_DTYPE_FLOAT16)
    for (int64_t i = 0; i < n; i++) dst[i] = od_f16_to_f32(s[i]);
  else if (dtype == OD_DTYPE_BFLOAT16)
    for (int64_t i = 0; i < n; i++) dst[i] = od_bf16_to_f32(s[i]);
  else if (dtype == OD_DTYPE_FLOAT)
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void ew_narrow(const float *src, int dtype, void *dst, int64_t n) {
  uint16_t *d = dst;
  if (dtype == OD_DTYPE_FLOAT16)
    for (int64_t i = 0; i < n; i++) d[i] = od_f32_to_f16(src[i]);
  else if (dtype == OD_DTYPE_BFLOAT16)
    for (int64_t i = 0; i < n; i++) d[i] = od_f32_to_bf16(src[i]);
  else if (dtype == OD_DTYPE_FLOAT)
    memcpy(dst, src, (size_t)n * sizeof(float));
}

enum od_status ew_widen(const struct od_tensor *t, struct od_tensor *w, float **buf, struct od_err *err) {
  *w = *t;
  *buf = NULL;
  if (!ew_is_half(t->dtype)) return OD_OK;
  int64_t n = od_tensor_numel(t);
  float *b = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  if (!b) return od_err_set(err, OD_ERR_OOM, "out of memory widening %lld %s values to float", (long long)n,
                            od_dtype_name(t->dtype));
  ew_widen_n(t->data, t->dtype, b, n);
  w->dtype = OD_DTYPE_FLOAT;
  w->data = b;
  *buf = b;
  return OD_OK;
}

/* ---- unary ------------------------------------------------------------------------------------ */

struct unary_job {
  char *y;
  const char *x;
  size_t ysz, xsz;
  ew_unary_fn fn;
  const void *params;
  int half; /* 0, or the float16/bfloat16 dtype computed through float32 */
};

static void unary_range(void *ctx, int64_t b, int64_t e) {
  const struct unary_job *j = ctx;
  if (!j->half) {
    j->fn(j->y + (size_t)b * j->ysz, j->x + (size_t)b * j->xsz, e - b, j->params);
    return;
  }
  float in[EW_HALF_CHUNK], out[EW_HALF_CHUNK];
  for (int64_t i = b; i < e; i += EW_HALF_CHUNK) {
    int64_t n = e - i < EW_HALF_CHUNK ? e - i : EW_HALF_CHUNK;
    ew_widen_n(j->x + (size_t)i * 2, j->half, in, n);
    j->fn(out, in, n, j->params);
    ew_narrow(out, j->half, j->y + (size_t)i * 2, n);
  }
}

bool ew_has_loop(const ew_unary_fn *loops, int dtype) {
  if (dtype <= 0 || dtype >= EW_NDTYPES) return false;
  return loops[dtype] || (ew_is_half(dtype) && loops[OD_DTYPE_FLOAT]);
}

enum od_status ew_unary_run(struct od_pool *pool, struct od_tensor *y, const struct od_tensor *x,
                            const ew_unary_fn *loops, const void *params, int64_t min_chunk,
                            const char *op, struct od_err *err) {
  if (!ew_has_loop(loops, x->dtype)) return ew_err_dtype(err, op, x->dtype);
  struct unary_job j = {.y = y->data, .x = x->data, .ysz = od_dtype_size(y->dtype),
                        .xsz = od_dtype_size(x->dtype), .fn = loops[x->dtype], .params = params};
  if (!j.fn) {
    j.fn = loops[OD_DTYPE_FLOAT];
    j.half = x->dtype;
  }
  od_pool_parallel_for(pool, od_tensor_numel(x), min_chunk, unary_range, &j);
  return OD_OK;
}

/* ---- broadcast -------------------------------------------------------------------------------- */

struct bcast_job {
  int rank;                               /* collapsed rank, >= 1 */
  int64_t dims[OD_MAX_DIMS];              /* collapsed output dims; dims[rank-1] is the run length */
  int n_in;
  int64_t strides[EW_MAX_IN][OD_MAX_DIMS];/* element strides of each input over the collapsed dims */
  int64_t step[EW_MAX_IN];                /* strides[k][rank-1]: 0 or 1 */
  const char *x[EW_MAX_IN];
  size_t xsz[EW_MAX_IN];
  char *y;
  size_t ysz;
  ew_bcast_fn fn;
  const void *params;
};

/* Output elements [begin, end): split into runs along the innermost dim; an odometer over the outer
 * dims keeps each input's offset of the current row. */
static void bcast_range(void *ctx, int64_t begin, int64_t end) {
  const struct bcast_job *j = ctx;
  int r = j->rank;
  int64_t inner = j->dims[r - 1];
  int64_t row = begin / inner, col = begin % inner;
  int64_t idx[OD_MAX_DIMS], off[EW_MAX_IN] = {0};
  for (int d = r - 2; d >= 0; d--) {
    idx[d] = row % j->dims[d];
    row /= j->dims[d];
    for (int k = 0; k < j->n_in; k++) off[k] += idx[d] * j->strides[k][d];
  }
  const void *xp[EW_MAX_IN];
  for (int64_t pos = begin; pos < end;) {
    int64_t n = inner - col < end - pos ? inner - col : end - pos;
    for (int k = 0; k < j->n_in; k++) xp[k] = j->x[k] + (size_t)(off[k] + col * j->step[k]) * j->xsz[k];
    j->fn(j->y + (size_t)pos * j->ysz, xp, j->step, n, j->params);
    pos += n;
    col = 0;
    for (int d = r - 2; d >= 0; d--) { /* next row */
      for (int k = 0; k < j->n_in; k++) off[k] += j->strides[k][d];
      if (++idx[d] < j->dims[d]) break;
      idx[d] = 0;
      for (int k = 0; k < j->n_in; k++) off[k] -= j->strides[k][d] * j->dims[d];
    }
  }
}

void ew_bcast_run(struct od_pool *pool, struct od_tensor *y, int n_in, const struct od_tensor *const *x,
                  ew_bcast_fn fn, const void *params, int64_t min_chunk) {
  int64_t total = od_tensor_numel(y);
  if (total <= 0) return;
  struct bcast_job j = {.n_in = n_in, .y = y->data, .ysz = od_dtype_size(y->dtype), .fn = fn, .params = params};
  int64_t st[EW_MAX_IN][OD_MAX_DIMS];
  for (int k = 0; k < n_in; k++) {
    od_broadcast_strides(x[k]->rank, x[k]->dims, y->rank, y->dims, st[k]);
    j.x[k] = x[k]->data;
    j.xsz[k] = od_dtype_size(x[k]->dtype);
  }
  /* Collapse: drop output dims of 1, and merge dim i into the previous kept dim when every input
   * walks the pair as one (outer stride == inner stride * inner dim; covers broadcast 0, 0 too). */
  int m = 0;
  for (int i = 0; i < y->rank; i++) {
    if (y->dims[i] == 1) continue;
    bool merge = m > 0;
    for (int k = 0; k < n_in && merge; k++) merge = j.strides[k][m - 1] == st[k][i] * y->dims[i];
    if (merge) {
      j.dims[m - 1] *= y->dims[i];
      for (int k = 0; k < n_in; k++) j.strides[k][m - 1] = st[k][i];
      continue;
    }
    j.dims[m] = y->dims[i];
    for (int k = 0; k < n_in; k++) j.strides[k][m] = st[k][i];
    m++;
  }
  if (m == 0) { /* one element */
    j.dims[0] = 1;
    for (int k = 0; k < n_in; k++) j.strides[k][0] = 0;
    m = 1;
  }
  j.rank = m;
  for (int k = 0; k < n_in; k++) j.step[k] = j.strides[k][m - 1];
  od_pool_parallel_for(pool, total, min_chunk, bcast_range, &j);
}

enum od_status ew_infer_broadcast(struct od_infer_ctx *ctx, int first, int count, struct od_tensor *out) {
  const struct od_tensor *a = &ctx->in[first];
  int rank = a->rank;
  int64_t dims[OD_MAX_DIMS];
  memcpy(dims, a->dims, sizeof(int64_t) * (size_t)rank);
  for (int i = first + 1; i < first + count; i++) {
    const struct od_tensor *b = &ctx->in[i];
    OD_TRY(od_broadcast_shapes(rank, dims, b->rank, b->dims, &rank, dims, ctx->err));
  }
  out->rank = rank;
  memcpy(out->dims, dims, sizeof(int64_t) * (size_t)rank);
  return OD_OK;
}

enum od_status ew_bcast_run_half(struct od_pool *pool, struct od_tensor *y, int n_in,
                                 const struct od_tensor *const *x, ew_bcast_fn fn, const void *params,
                                 int64_t min_chunk, struct od_err *err) {
  struct od_tensor w[EW_MAX_IN], yw = *y;
  const struct od_tensor *wp[EW_MAX_IN];
  float *buf[EW_MAX_IN + 1] = {NULL};
  enum od_status s = OD_OK;
  for (int k = 0; k < n_in && s == OD_OK; k++) {
    s = ew_widen(x[k], &w[k], &buf[k], err);
    wp[k] = &w[k];
  }
  if (s == OD_OK && ew_is_half(y->dtype)) {
    int64_t n = od_tensor_numel(y);
    if (!(buf[EW_MAX_IN] = malloc((size_t)(n > 0 ? n : 1) * sizeof(float))))
      s = od_err_set(err, OD_ERR_OOM, "out of memory for %lld float values", (long long)n);
    yw.dtype = OD_DTYPE_FLOAT;
    yw.data = buf[EW_MAX_IN];
  }
  if (s == OD_OK) {
    ew_bcast_run(pool, &yw, n_in, wp, fn, params, min_chunk);
    if (ew_is_half(y->dtype)) ew_narrow(yw.data, y->dtype, y->data, od_tensor_numel(y));
  }
  for (int k = 0; k <= EW_MAX_IN; k++) free(buf[k]);
  return s;
}

/* ---- backward --------------------------------------------------------------------------------- */

enum {
  RG_BLOCK = 256,           /* output columns summed together when the innermost dim is kept */
  RG_SPLIT_MAX_DST = 4096,  /* largest dst reduced through per-slice partial sums */
  RG_MIN_WORK = 1 << 15,    /* src elements per thread at least */
};

enum od_status ew_err_grad_dtype(struct od_err *err, const char *op, int dtype) {
  return od_err_set(err, OD_ERR_UNSUPPORTED, "%s backward supports float and double, not %s", op,
                    od_dtype_name(dtype));
}

/* Runs of src (float or double) summed in double: the whole run, or added column by column. The
 * whole-run sum keeps 8 independent partial sums: with one accumulator every add would wait for
 * the previous one (the compiler may not reorder floating-point adds) and nothing vectorises. */
#define RG_SUM8(T)                                                            \
  do {                                                                        \
    const T *p = src;                                                         \
    double s8[8] = {0};                                                       \
    int64_t i = 0;                                                            \
    for (; i + 8 <= n; i += 8)                                                \
      for (int k = 0; k < 8; k++) s8[k] += p[i + k];                          \
    for (; i < n; i++) s8[0] += p[i];                                         \
    return ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7])); \
  } while (0)

static double rg_sum_run(const void *src, int dt, int64_t n) {
  if (dt == OD_DTYPE_FLOAT) RG_SUM8(float);
  RG_SUM8(double);
}

static void rg_add_run(double *acc, const void *src, int dt, int64_t n) {
  if (dt == OD_DTYPE_FLOAT) {
    const float *p = src;
    for (int64_t i = 0; i < n; i++) acc[i] += p[i];
  } else {
    const double *p = src;
    for (int64_t i = 0; i < n; i++) acc[i] += p[i];
  }
}

/* dst[off + i] += scale * acc[i] */
static void rg_store(void *dst, int dt, int64_t off, const double *acc, int64_t n, double scale) {
  if (dt == OD_DTYPE_FLOAT) {
    float *d = (float *)dst + off;
    for (int64_t i = 0; i < n; i++) d[i] += (float)(scale * acc[i]);
  } else {
    double *d = (double *)dst + off;
    for (int64_t i = 0; i < n; i++) d[i] += scale * acc[i];
  }
}

/* Same layout: dst[i] += scale * src[i], one loop per dtype pair. */
struct rg_same_job {
  void *dst;
  const void *src;
  int ddt, sdt;
  double scale;
};

#define RG_SAME(TD, TS)                                                 \
  do {                                                                  \
    TD *d = j->dst;                                                     \
    const TS *s = j->src;                                               \
    if (j->scale == 1.0) {                                              \
      for (int64_t i = b; i < e; i++) d[i] += (TD)s[i];                 \
    } else {                                                            \
      const TD sc = (TD)j->scale;                                       \
      for (int64_t i = b; i < e; i++) d[i] += sc * (TD)s[i];            \
    }                                                                   \
  } while (0)

static void rg_same_range(void *ctx, int64_t b, int64_t e) {
  const struct rg_same_job *j = ctx;
  bool df = j->ddt == OD_DTYPE_FLOAT, sf = j->sdt == OD_DTYPE_FLOAT;
  if (df && sf) RG_SAME(float, float);
  else if (df) RG_SAME(float, double);
  else if (sf) RG_SAME(double, float);
  else RG_SAME(double, double);
}

/* The broadcast reduction over collapsed dims: consecutive output dims of the same kind (kept by
 * dst, or reduced: dst stride 0) merged, dims of 1 dropped, so kinds alternate. The innermost dim
 * (length L) is contiguous in src; the outer ones are split into kept (kd, ks: src strides) and
 * reduced (rd, rs) lists. */
struct rg_job {
  const char *src;
  int sdt;
  size_t ssz;
  void *dst;
  int ddt;
  double scale;
  int m;
  int64_t dims[OD_MAX_DIMS], sstr[OD_MAX_DIMS], dstr[OD_MAX_DIMS];
  bool inner_kept;
  int64_t L;
  int nk, nr;
  int64_t kd[OD_MAX_DIMS], ks[OD_MAX_DIMS], rd[OD_MAX_DIMS], rs[OD_MAX_DIMS];
  int64_t r_total; /* product of rd */
  int64_t nblocks; /* inner kept: column blocks of RG_BLOCK per kept row */
  int64_t n_src, n_dst;
  int slices;
  double *partial; /* slices x n_dst */
};

/* Work items [b, e): a dst element (inner dim reduced) or a block of up to RG_BLOCK consecutive dst
 * elements of one row (inner dim kept), each summed over every reduced index. */
static void rg_items(void *ctx, int64_t b, int64_t e) {
  const struct rg_job *j = ctx;
  double acc[RG_BLOCK];
  for (int64_t w = b; w < e; w++) {
    int64_t kidx = j->inner_kept ? w / j->nblocks : w;
    int64_t c0 = j->inner_kept ? (w % j->nblocks) * RG_BLOCK : 0;
    int64_t nc = j->inner_kept ? (j->L - c0 < RG_BLOCK ? j->L - c0 : RG_BLOCK) : 1;
    int64_t base = 0, t = kidx;
    for (int d = j->nk - 1; d >= 0; d--) {
      base += (t % j->kd[d]) * j->ks[d];
      t /= j->kd[d];
    }
    for (int64_t c = 0; c < nc; c++) acc[c] = 0;
    int64_t idx[OD_MAX_DIMS] = {0}, roff = 0;
    for (int64_t r = 0; r < j->r_total; r++) {
      const char *p = j->src + (size_t)(base + roff + c0) * j->ssz;
      if (j->inner_kept) rg_add_run(acc, p, j->sdt, nc);
      else acc[0] += rg_sum_run(p, j->sdt, j->L);
      for (int d = j->nr - 1; d >= 0; d--) { /* next reduced index */
        roff += j->rs[d];
        if (++idx[d] < j->rd[d]) break;
        roff -= j->rs[d] * j->rd[d];
        idx[d] = 0;
      }
    }
    rg_store(j->dst, j->ddt, j->inner_kept ? kidx * j->L + c0 : kidx, acc, nc, j->scale);
  }
}

/* Slices [b, e) of src in flat order, each summed into its own partial dst (a small dst). */
static void rg_slices(void *ctx, int64_t b, int64_t e) {
  const struct rg_job *j = ctx;
  int r = j->m;
  int64_t inner = j->dims[r - 1];
  for (int64_t s = b; s < e; s++) {
    double *part = j->partial + s * j->n_dst;
    int64_t begin = j->n_src * s / j->slices, end = j->n_src * (s + 1) / j->slices;
    int64_t row = begin / inner, col = begin % inner, idx[OD_MAX_DIMS], doff = 0;
    for (int d = r - 2; d >= 0; d--) {
      idx[d] = row % j->dims[d];
      row /= j->dims[d];
      doff += idx[d] * j->dstr[d];
    }
    for (int64_t pos = begin; pos < end;) {
      int64_t n = inner - col < end - pos ? inner - col : end - pos;
      const char *p = j->src + (size_t)pos * j->ssz;
      if (j->inner_kept) rg_add_run(part + doff + col, p, j->sdt, n);
      else part[doff] += rg_sum_run(p, j->sdt, n);
      pos += n;
      col = 0;
      for (int d = r - 2; d >= 0; d--) { /* next row */
        doff += j->dstr[d];
        if (++idx[d] < j->dims[d]) break;
        doff -= j->dstr[d] * j->dims[d];
        idx[d] = 0;
      }
    }
  }
}

enum od_status ew_reduce_grad(struct od_pool *pool, struct od_tensor *dst, const struct od_tensor *src, double scale,
                              const char *op, struct od_err *err) {
  if (!ew_is_grad_dtype(dst->dtype)) return ew_err_grad_dtype(err, op, dst->dtype);
  if (!ew_is_grad_dtype(src->dtype)) return ew_err_grad_dtype(err, op, src->dtype);
  int64_t n_src = od_tensor_numel(src), n_dst = od_tensor_numel(dst);
  if (n_src <= 0) return OD_OK;
  if (n_dst == n_src) {
    struct rg_same_job sj = {dst->data, src->data, dst->dtype, src->dtype, scale};
    od_pool_parallel_for(pool, n_src, RG_MIN_WORK, rg_same_range, &sj);
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
                      od_shape_str(src->rank, src->dims, sa, sizeof sa), od_shape_str(dst->rank, dst->dims, sb, sizeof sb));
  }
  struct rg_job j = {.src = src->data, .sdt = src->dtype, .ssz = od_dtype_size(src->dtype), .dst = dst->data,
                     .ddt = dst->dtype, .scale = scale, .n_src = n_src, .n_dst = n_dst, .r_total = 1};
  int64_t ss[OD_MAX_DIMS], ds[OD_MAX_DIMS];
  bool red[OD_MAX_DIMS] = {false};
  od_strides(src->rank, src->dims, ss);
  od_broadcast_strides(dst->rank, dst->dims, src->rank, src->dims, ds);
  for (int i = 0; i < src->rank; i++) {
    if (src->dims[i] == 1) continue;
    bool r = ds[i] == 0;
    if (j.m > 0 && red[j.m - 1] == r) { /* same kind as the previous dim: one dim */
      j.dims[j.m - 1] *= src->dims[i];
      j.sstr[j.m - 1] = ss[i];
      j.dstr[j.m - 1] = ds[i];
      continue;
    }
    red[j.m] = r;
    j.dims[j.m] = src->dims[i];
    j.sstr[j.m] = ss[i];
    j.dstr[j.m] = ds[i];
    j.m++;
  }
  /* n_dst < n_src: at least one reduced dim, so m >= 1 */
  j.inner_kept = !red[j.m - 1];
  j.L = j.dims[j.m - 1];
  for (int d = 0; d < j.m - 1; d++) {
    if (red[d]) {
      j.rd[j.nr] = j.dims[d];
      j.rs[j.nr++] = j.sstr[d];
      j.r_total *= j.dims[d];
    } else {
      j.kd[j.nk] = j.dims[d];
      j.ks[j.nk++] = j.sstr[d];
    }
  }
  j.nblocks = (j.L + RG_BLOCK - 1) / RG_BLOCK;
  int64_t items = j.inner_kept ? n_dst / j.L * j.nblocks : n_dst;
  int threads = od_pool_threads(pool);
  if (threads > 1 && items < 2 * (int64_t)threads && n_dst <= RG_SPLIT_MAX_DST && n_src >= 2 * (int64_t)RG_MIN_WORK) {
    int64_t slices = n_src / RG_MIN_WORK;
    j.slices = (int)(slices < threads ? slices : threads);
    j.partial = calloc((size_t)j.slices * (size_t)n_dst, sizeof(double));
    if (!j.partial) return od_err_set(err, OD_ERR_OOM, "%s backward: out of memory for partial sums", op);
    od_pool_parallel_for(pool, j.slices, 1, rg_slices, &j);
    for (int s = 1; s < j.slices; s++)
      for (int64_t i = 0; i < n_dst; i++) j.partial[i] += j.partial[s * n_dst + i];
    rg_store(j.dst, j.ddt, 0, j.partial, n_dst, scale);
    free(j.partial);
    return OD_OK;
  }
  int64_t per_item = n_src / (items > 0 ? items : 1);
  od_pool_parallel_for(pool, items, 1 + RG_MIN_WORK / (per_item > 0 ? per_item : 1), rg_items, &j);
  return OD_OK;
}

enum od_status ew_grad_bcast(struct od_pool *pool, struct od_tensor *din, const struct od_tensor *dy,
                             const struct od_tensor *a, const struct od_tensor *b, ew_bcast_fn fn, const void *params,
                             const char *op, struct od_err *err) {
  if (!ew_is_grad_dtype(dy->dtype)) return ew_err_grad_dtype(err, op, dy->dtype);
  if (!ew_is_grad_dtype(din->dtype)) return ew_err_grad_dtype(err, op, din->dtype);
  int64_t n = od_tensor_numel(dy);
  if (n <= 0) return OD_OK;
  const struct od_tensor *xs[3] = {dy, a, b};
  struct od_tensor y = *dy;
  if (din->dtype == dy->dtype && od_tensor_numel(din) == n) { /* din has the output's layout */
    y.data = din->data;
    ew_bcast_run(pool, &y, 3, xs, fn, params, 1 << 14);
    return OD_OK;
  }
  void *tmp = calloc((size_t)n, od_dtype_size(dy->dtype));
  if (!tmp) return od_err_set(err, OD_ERR_OOM, "%s backward: out of memory for %lld gradient values", op, (long long)n);
  y.data = tmp;
  ew_bcast_run(pool, &y, 3, xs, fn, params, 1 << 14);
  enum od_status s = ew_reduce_grad(pool, din, &y, 1.0, op, err);
  free(tmp);
  return s;
}

struct unary_grad_job {
  char *dx;
  const char *dy, *x, *y;
  size_t sz;
  ew_unary_grad_fn fn;
  const void *params;
};

static void unary_grad_range(void *ctx, int64_t b, int64_t e) {
  const struct unary_grad_job *j = ctx;
  size_t o = (size_t)b * j->sz;
  j->fn(j->dx + o, j->dy + o, j->x + o, j->y ? j->y + o : NULL, e - b, j->params);
}

enum od_status ew_unary_grad_run(struct od_pool *pool, struct od_tensor *dx, const struct od_tensor *dy,
                                 const struct od_tensor *x, const struct od_tensor *y, const ew_unary_grad_fn *loops,
                                 const void *params, int64_t min_chunk, const char *op, struct od_err *err) {
  int dt = x->dtype;
  if (dt <= 0 || dt >= EW_NDTYPES || !loops[dt] || dx->dtype != dt || dy->dtype != dt || (y && y->dtype != dt))
    return ew_err_grad_dtype(err, op, dt != dx->dtype ? dx->dtype : dt);
  struct unary_grad_job j = {.dx = dx->data, .dy = dy->data, .x = x->data, .y = y ? y->data : NULL,
                             .sz = od_dtype_size(dt), .fn = loops[dt], .params = params};
  od_pool_parallel_for(pool, od_tensor_numel(x), min_chunk, unary_grad_range, &j);
  return OD_OK;
}
