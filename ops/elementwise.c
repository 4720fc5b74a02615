/* ops/elementwise.c: drivers shared by the elementwise op family (see ops/elementwise.h). */
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
