/* ops/elementwise.h: helpers shared by the elementwise op family (ops/unary.c, ops/binary.c,
 * ops/variadic.c, ops/clip.c, ops/cast.c); not a public interface.
 *
 * - dtype X-macros, so one loop body expands for every C type (no copy-paste per dtype);
 * - a unary driver over contiguous tensors, and a broadcast driver for up to EW_MAX_IN inputs
 *   (numpy rules): both cut the work into inner loops `fn(y, x, step, n)` over n contiguous
 *   output elements and spread them over the pool;
 * - float16/bfloat16 support by widening to float32 (kernels compute in float32 and narrow the
 *   result: rounding once, like onnxruntime's CPU provider for most ops);
 * - backward helpers (float and double): the one "reduce a gradient to the shape of the input that
 *   was broadcast" routine (ew_reduce_grad), gradient terms over broadcast operands
 *   (ew_grad_bcast, EW_GRAD_LOOP) and the unary derivative driver (ew_unary_grad_run). */
#ifndef OD_OPS_ELEMENTWISE_H
#define OD_OPS_ELEMENTWISE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/dtype.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

struct od_pool;
struct od_infer_ctx;

/* X(CODE, ctype, unsigned ctype) for every dtype with a native C type, by class. CODE pastes onto
 * OD_DTYPE_ (OD_DTYPE_INT8, ...). Bool is stored as uint8 0/1 and listed on its own. */
#define EW_SINT_TYPES(X) \
  X(INT8, int8_t, uint8_t) X(INT16, int16_t, uint16_t) X(INT32, int32_t, uint32_t) X(INT64, int64_t, uint64_t)
#define EW_UINT_TYPES(X) \
  X(UINT8, uint8_t, uint8_t) X(UINT16, uint16_t, uint16_t) X(UINT32, uint32_t, uint32_t) X(UINT64, uint64_t, uint64_t)
#define EW_FLOAT_TYPES(X) X(FLOAT, float, float) X(DOUBLE, double, double)
#define EW_INT_TYPES(X) EW_SINT_TYPES(X) EW_UINT_TYPES(X)
#define EW_NUM_TYPES(X) EW_FLOAT_TYPES(X) EW_INT_TYPES(X)

/* Per-dtype tables of loops are indexed by the dtype code. */
#define EW_NDTYPES (OD_DTYPE_MAX_KNOWN + 1)

static inline bool ew_is_half(int dtype) { return dtype == OD_DTYPE_FLOAT16 || dtype == OD_DTYPE_BFLOAT16; }

/* ---- unary: y[i] = f(x[i]) over n contiguous elements ---------------------------------------- */
typedef void (*ew_unary_fn)(void *y, const void *x, int64_t n, const void *params);

/* Runs loops[x->dtype] over all of x into y (same numel), split over the pool in chunks of at least
 * min_chunk elements. A float16/bfloat16 x without its own loop runs loops[OD_DTYPE_FLOAT] on
 * float32 copies, chunk by chunk (y must then have x's dtype). Fails (UNSUPPORTED) when no loop fits. */
enum od_status ew_unary_run(struct od_pool *pool, struct od_tensor *y, const struct od_tensor *x,
                            const ew_unary_fn *loops, const void *params, int64_t min_chunk,
                            const char *op, struct od_err *err);

/* True when loops has a loop for dtype (directly, or through float32 for float16/bfloat16). */
bool ew_has_loop(const ew_unary_fn *loops, int dtype);

/* ---- broadcast: y[i] = f(x0[...], x1[...], ...) ------------------------------------------------ */
#define EW_MAX_IN 3

/* x[k] points at the first element input k contributes to y[0]; step[k] is 1 when input k advances
 * with the output along this run and 0 when it repeats one value (broadcast). */
typedef void (*ew_bcast_fn)(void *y, const void *const *x, const int64_t *step, int64_t n, const void *params);

/* Runs fn over every element of y, reading each x[k] broadcast (numpy rules) to y's shape. y's
 * rank/dims must be the broadcast of the inputs' (as set by infer). Dims are collapsed first, so a
 * same-shape call is one loop of numel elements and [N,C,H,W] + [C,1,1] a loop per (n, c) row. */
void ew_bcast_run(struct od_pool *pool, struct od_tensor *y, int n_in, const struct od_tensor *const *x,
                  ew_bcast_fn fn, const void *params, int64_t min_chunk);

/* ew_bcast_run for inputs and output that may be float16/bfloat16: those inputs are widened to
 * float32 copies, and a half output is computed in a float32 buffer and narrowed; fn must be the
 * loop for the widened dtypes. */
enum od_status ew_bcast_run_half(struct od_pool *pool, struct od_tensor *y, int n_in,
                                 const struct od_tensor *const *x, ew_bcast_fn fn, const void *params,
                                 int64_t min_chunk, struct od_err *err);

/* One loop body, specialised for the four stride patterns of a run (both inputs advance, only A,
 * only B, neither) so each compiles to a plain vectorisable loop. av, bv: the elements;
 * name is a static ew_bcast_fn. */
#define EW_BIN_LOOP(name, TA, TB, TY, EXPR)                                                          \
  static void name(void *y_, const void *const *x, const int64_t *step, int64_t n, const void *p_) { \
    const TA *a = x[0];                                                                              \
    const TB *b = x[1];                                                                              \
    TY *y = y_;                                                                                      \
    (void)p_;                                                                                        \
    if (step[0] && step[1]) {                                                                        \
      for (int64_t i = 0; i < n; i++) {                                                              \
        const TA av = a[i];                                                                          \
        const TB bv = b[i];                                                                          \
        y[i] = (TY)(EXPR);                                                                           \
      }                                                                                              \
    } else if (step[0]) {                                                                            \
      const TB bv = b[0];                                                                            \
      for (int64_t i = 0; i < n; i++) {                                                              \
        const TA av = a[i];                                                                          \
        y[i] = (TY)(EXPR);                                                                           \
      }                                                                                              \
    } else if (step[1]) {                                                                            \
      const TA av = a[0];                                                                            \
      for (int64_t i = 0; i < n; i++) {                                                              \
        const TB bv = b[i];                                                                          \
        y[i] = (TY)(EXPR);                                                                           \
      }                                                                                              \
    } else {                                                                                         \
      const TA av = a[0];                                                                            \
      const TB bv = b[0];                                                                            \
      const TY v = (TY)(EXPR);                                                                       \
      for (int64_t i = 0; i < n; i++) y[i] = v;                                                      \
    }                                                                                                \
  }

/* infer helper: out = numpy broadcast of the shapes of in[first .. first+count). */
enum od_status ew_infer_broadcast(struct od_infer_ctx *ctx, int first, int count, struct od_tensor *out);

/* ---- float16 / bfloat16 ------------------------------------------------------------------------- */

/* If t is float16/bfloat16: *w describes a float32 copy in *buf (malloc'd, caller frees);
 * otherwise *w = *t and *buf = NULL. */
enum od_status ew_widen(const struct od_tensor *t, struct od_tensor *w, float **buf, struct od_err *err);

/* n float32 values -> y (float16/bfloat16, or float32: copied). */
void ew_narrow(const float *src, int dtype, void *dst, int64_t n);
/* n float16/bfloat16 values -> float32. */
void ew_widen_n(const void *src, int dtype, float *dst, int64_t n);

/* double -> integer without C's undefined behaviour, as x86 (so numpy's astype and onnxruntime)
 * does it: truncation toward zero when in range; NaN and out-of-range values give the "integer
 * indefinite" value INT64_MIN (64-bit conversion) or INT32_MIN (32-bit conversion, which C
 * compilers use for int8..int32, uint8 and uint16 targets). The caller's C cast then wraps. */
static inline int64_t ew_f2i64(double v) {
  return v > -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v : INT64_MIN;
}
static inline int32_t ew_f2i32(double v) { return v > -2147483649.0 && v < 2147483648.0 ? (int32_t)v : INT32_MIN; }
static inline uint64_t ew_f2u64(double v) {
  return v >= 9223372036854775808.0 && v < 18446744073709551616.0 ? (uint64_t)v : (uint64_t)ew_f2i64(v);
}

/* "float16", ... into an UNSUPPORTED error: "<op> does not support <dtype> inputs". */
enum od_status ew_err_dtype(struct od_err *err, const char *op, int dtype);

/* ---- backward (float and double) ----------------------------------------------------------------
 * Every gradient here follows the accumulate contract of ops/op.h: din += ..., never din = ...
 * The one shape rule of the family: an input broadcast to the output's shape gets the sum of the
 * output-shaped term over the dims it was broadcast along (ew_reduce_grad). */

static inline bool ew_is_grad_dtype(int dtype) { return dtype == OD_DTYPE_FLOAT || dtype == OD_DTYPE_DOUBLE; }

/* "<op> backward supports float and double, not <dtype>" (UNSUPPORTED). */
enum od_status ew_err_grad_dtype(struct od_err *err, const char *op, int dtype);

/* dst += scale * (src summed over the dims along which dst's shape broadcasts to src's shape).
 * dst's shape must broadcast unidirectionally to src's (numpy rules: dst is what was broadcast);
 * the same numel means the same layout (one fused loop). Each of dst, src is float or double
 * (they may differ: Cast, Pow's exponent); sums are formed in double. Work is split over dst
 * elements, or, when dst is small and src large (a bias, a scalar), over slices of src with
 * partial sums added at the end. */
enum od_status ew_reduce_grad(struct od_pool *pool, struct od_tensor *dst, const struct od_tensor *src, double scale,
                              const char *op, struct od_err *err);

/* din += reduce_to_shape(term): fn (an EW_GRAD_LOOP) ACCUMULATES term[i] into y[i], reading
 * x[0] = dy and the operands a, b broadcast to dy's shape (pass a twice for one operand). When din
 * has dy's numel and dtype the term is accumulated into din directly; otherwise into a zeroed
 * dy-shaped scratch buffer (dy's dtype), then reduced with ew_reduce_grad. */
enum od_status ew_grad_bcast(struct od_pool *pool, struct od_tensor *din, const struct od_tensor *dy,
                             const struct od_tensor *a, const struct od_tensor *b, ew_bcast_fn fn, const void *params,
                             const char *op, struct od_err *err);

/* One gradient loop body for ew_grad_bcast: y[i] += (T)(EXPR) with g = dy[i] (dy always has the
 * output's shape, so it advances with i) and av, bv the operands' elements; P is the params
 * pointer. Specialised for the four stride patterns of (a, b), like EW_BIN_LOOP. */
#define EW_GRAD_LOOP(name, T, TA, TB, EXPR)                                                           \
  static void name(void *y_, const void *const *x, const int64_t *step, int64_t n, const void *P) {   \
    const T *gs = x[0];                                                                               \
    const TA *a = x[1];                                                                               \
    const TB *b = x[2];                                                                               \
    T *y = y_;                                                                                        \
    (void)P;                                                                                          \
    if (step[1] && step[2]) {                                                                         \
      for (int64_t i = 0; i < n; i++) {                                                               \
        const T g = gs[i];                                                                            \
        const TA av = a[i];                                                                           \
        const TB bv = b[i];                                                                           \
        (void)av, (void)bv;                                                                           \
        y[i] += (T)(EXPR);                                                                            \
      }                                                                                               \
    } else if (step[1]) {                                                                             \
      const TB bv = b[0];                                                                             \
      (void)bv;                                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                               \
        const T g = gs[i];                                                                            \
        const TA av = a[i];                                                                           \
        (void)av;                                                                                     \
        y[i] += (T)(EXPR);                                                                            \
      }                                                                                               \
    } else if (step[2]) {                                                                             \
      const TA av = a[0];                                                                             \
      (void)av;                                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                               \
        const T g = gs[i];                                                                            \
        const TB bv = b[i];                                                                           \
        (void)bv;                                                                                     \
        y[i] += (T)(EXPR);                                                                            \
      }                                                                                               \
    } else {                                                                                          \
      const TA av = a[0];                                                                             \
      const TB bv = b[0];                                                                             \
      (void)av, (void)bv;                                                                             \
      for (int64_t i = 0; i < n; i++) {                                                               \
        const T g = gs[i];                                                                            \
        y[i] += (T)(EXPR);                                                                            \
      }                                                                                               \
    }                                                                                                 \
  }

/* Unary gradient loop: dx[i] += dy[i] * f'(x[i]), where f' may read the forward output y[i]. */
typedef void (*ew_unary_grad_fn)(void *dx, const void *dy, const void *x, const void *y, int64_t n,
                                 const void *params);

/* Runs loops[x->dtype] over every element (dx, dy, x, y all of x's dtype and numel), split over the
 * pool in chunks of at least min_chunk. Fails (UNSUPPORTED) for a dtype without a loop. */
enum od_status ew_unary_grad_run(struct od_pool *pool, struct od_tensor *dx, const struct od_tensor *dy,
                                 const struct od_tensor *x, const struct od_tensor *y, const ew_unary_grad_fn *loops,
                                 const void *params, int64_t min_chunk, const char *op, struct od_err *err);

#endif
