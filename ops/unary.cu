/* ops/unary.cu: CUDA forward and backward of the unary table of ops/unary.c (Relu, LeakyRelu, Elu,
 * Selu, Sigmoid, HardSigmoid, HardSwish, Tanh, Softplus, Erf, Sqrt, Exp, Log, Abs, Neg, Floor, Ceil,
 * Reciprocal), Identity and inference-mode Dropout. Float32 (other dtypes: UNSUPPORTED, so the
 * executor runs the node on the CPU; Identity and Dropout copy any dtype).
 *
 * Forward y = f(x) and backward dx += dy * f'(x, y) use the expressions of ops/unary.c's tables
 * (same NaN handling, same derivative conventions: Relu 0 at 0, Sigmoid y (1 - y), ...; Floor and
 * Ceil add nothing). Each op is a functor (fwd, grad, and which of x, y grad reads, so backward
 * loads only those); the kernels are ew_apply's flat grid-stride loops (ops/cuda/ew.cuh), 4
 * elements per thread step through 16-byte loads and stores when the tensors are aligned.
 * Identity and Dropout forward are one device-to-device copy on the stream; their backward
 * dx += dy. A fresh dx (OD_OP_BWD_FRESH, ops/op.h) is written instead: dx = dy * f'(x, y) by the
 * same loops without the read of dx (Floor, Ceil: zeros), dx = dy one device copy. */
#include <type_traits>

#include "ops/cuda/ew.cuh"

extern "C" {
#include "ops/ew_attrs.h"
}

/* a * b rounded on its own: nvcc would fuse `a * b + c` into one FMA, which moves the boundaries
 * of HardSigmoid/HardSwish by an ulp against the CPU kernels. */
static __device__ inline float u_mul(float a, float b) {
#ifdef OD_CUDA_EMU
  return a * b;
#else
  return __fmul_rn(a, b);
#endif
}

enum { U_NONE, U_X, U_Y, U_CONST }; /* what the derivative reads (U_NONE: adds nothing) */

/* One struct per op: fwd(x), grad(x, y) = f'(x) (x, y: the saved input and output), and USES. */
#define UNARY_OP(name, USES, FWD, GRAD)                 \
  struct u_##name {                                     \
    static constexpr int uses = USES;                   \
    float A, B, G;                                      \
    __device__ float fwd(float x) const { return FWD; } \
    __device__ float grad(float x, float y) const {     \
      (void)x, (void)y;                                 \
      return GRAD;                                      \
    }                                                   \
  };

#define ERF_K 1.12837916709551257390f /* 2/sqrt(pi) */

/* x < 0 rather than x > 0 where it matters, so NaN propagates (as on the CPU). */
UNARY_OP(relu, U_Y, x < 0 ? 0.0f : x, y > 0 ? 1.0f : 0.0f)
/* from y: valid for A >= 0 (= x > 0); the backward entry declines A < 0 (the CPU reads x then) */
UNARY_OP(leakyrelu, U_Y, x < 0 ? A * x : x, y > 0 ? 1.0f : A)
UNARY_OP(elu, U_X, x < 0 ? A * expm1f(x) : x, x > 0 ? 1.0f : A * expf(x))
UNARY_OP(selu, U_X, x <= 0 ? G * (A * expf(x) - A) : G * x, x > 0 ? G : G * A * expf(x))
UNARY_OP(sigmoid, U_Y, 1.0f / (1.0f + expf(-x)), y * (1.0f - y))
UNARY_OP(hardsigmoid, U_X, fmaxf(0.0f, fminf(1.0f, u_mul(A, x) + B)),
         (u_mul(A, x) + B > 0 && u_mul(A, x) + B < 1) ? A : 0.0f)
UNARY_OP(hardswish, U_X, x * fmaxf(0.0f, fminf(1.0f, u_mul(A, x) + B)),
         u_mul(A, x) + B < 0 ? 0.0f : u_mul(A, x) + B <= 1 ? u_mul(2 * A, x) + B : 1.0f)
UNARY_OP(tanh, U_Y, tanhf(x), 1.0f - y * y)
/* log(1 + e^x) without overflow: x + log1p(e^-x) for x > 0 */
UNARY_OP(softplus, U_X, x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)), 1.0f / (1.0f + expf(-x)))
UNARY_OP(erf, U_X, erff(x), ERF_K * expf(-x * x))
UNARY_OP(sqrt, U_Y, sqrtf(x), 1.0f / (2 * y))
UNARY_OP(exp, U_Y, expf(x), y)
UNARY_OP(log, U_X, logf(x), 1.0f / x)
UNARY_OP(abs, U_X, fabsf(x), x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f)
UNARY_OP(neg, U_CONST, -x, -1.0f)
UNARY_OP(floor, U_NONE, floorf(x), 0.0f) /* U_NONE: backward adds nothing */
UNARY_OP(ceil, U_NONE, ceilf(x), 0.0f)
UNARY_OP(reciprocal, U_Y, 1.0f / x, -(y * y))

/* ---- ew_apply functors ------------------------------------------------------------------------ */

template <class Op>
struct u_fwd {
  static constexpr int N = 1;
  Op op;
  __device__ float operator()(float x, float, float, float) const { return op.fwd(x); }
};
/* dy * f': the term written into a fresh dx; accumulated through ew_acc (dx first) otherwise */
template <class Op>
struct u_bwd_x { /* (dy, x) */
  static constexpr int N = 2;
  Op op;
  __device__ float operator()(float dy, float x, float, float) const { return dy * op.grad(x, 0.0f); }
};
template <class Op>
struct u_bwd_y { /* (dy, y) */
  static constexpr int N = 2;
  Op op;
  __device__ float operator()(float dy, float y, float, float) const { return dy * op.grad(0.0f, y); }
};
template <class Op>
struct u_bwd_const { /* (dy): a constant derivative */
  static constexpr int N = 1;
  Op op;
  __device__ float operator()(float dy, float, float, float) const { return dy * op.grad(0.0f, 0.0f); }
};

/* dx = f(dy, v) when fresh, else dx += f(dy, v) (v: x, y or nothing, per F::N) */
template <class F>
static enum od_status u_bwd_run(struct od_kernel_ctx *ctx, const F &f, struct od_tensor *dx,
                                const struct od_tensor *dy, const struct od_tensor *v) {
  if (od_cuda_fresh(ctx, 0)) {
    const struct od_tensor *x[2] = {dy, v};
    return ew_apply_t(ctx, f, dx, x);
  }
  const struct od_tensor *x[3] = {dx, dy, v};
  return ew_apply_t(ctx, ew_acc<F>{f}, dx, x);
}

template <class Op>
static enum od_status unary_fwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *x[1] = {ctx->in[0]};
  const struct od_tensor *t[2] = {ctx->in[0], ctx->out[0]};
  OD_TRY(ew_need_f32(ctx, 2, t));
  const struct unary_attrs *a = (const struct unary_attrs *)ctx->attrs;
  u_fwd<Op> f = {{a->alpha, a->beta, a->gamma}};
  return ew_apply_t(ctx, f, ctx->out[0], x);
}

/* dX += dY * f'(X, Y) (= when fresh) */
template <class Op>
static enum od_status unary_bwd(struct od_kernel_ctx *ctx) {
  struct od_tensor *dx = ctx->din[0];
  const struct od_tensor *dy = ctx->dout[0];
  if (!dx || !dy) return OD_OK;
  const struct od_tensor *t[4] = {dx, dy, ctx->in[0], ctx->out[0]};
  OD_TRY(ew_need_f32(ctx, 4, t));
  const struct unary_attrs *a = (const struct unary_attrs *)ctx->attrs;
  Op op = {a->alpha, a->beta, a->gamma};
  if (std::is_same<Op, u_leakyrelu>::value && a->alpha < 0)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "LeakyRelu with alpha < 0: the derivative needs X (CPU)");
  if constexpr (Op::uses == U_X) {
    return u_bwd_run(ctx, u_bwd_x<Op>{op}, dx, dy, ctx->in[0]);
  } else if constexpr (Op::uses == U_Y) {
    return u_bwd_run(ctx, u_bwd_y<Op>{op}, dx, dy, ctx->out[0]);
  } else if constexpr (Op::uses == U_CONST) {
    return u_bwd_run(ctx, u_bwd_const<Op>{op}, dx, dy, dy);
  } else { /* Floor, Ceil: the derivative is 0 almost everywhere, nothing to add (a fresh dx: 0) */
    return od_cuda_fresh_zero(ctx, 1u);
  }
}

#define UNARY_ENTRY(name)                                                                                        \
  extern "C" enum od_status od_cuda_##name##_fwd(struct od_kernel_ctx *ctx) { return unary_fwd<u_##name>(ctx); } \
  extern "C" enum od_status od_cuda_##name##_bwd(struct od_kernel_ctx *ctx) { return unary_bwd<u_##name>(ctx); }

UNARY_ENTRY(relu)
UNARY_ENTRY(leakyrelu)
UNARY_ENTRY(elu)
UNARY_ENTRY(selu)
UNARY_ENTRY(sigmoid)
UNARY_ENTRY(hardsigmoid)
UNARY_ENTRY(hardswish)
UNARY_ENTRY(tanh)
UNARY_ENTRY(softplus)
UNARY_ENTRY(erf)
UNARY_ENTRY(sqrt)
UNARY_ENTRY(exp)
UNARY_ENTRY(log)
UNARY_ENTRY(abs)
UNARY_ENTRY(neg)
UNARY_ENTRY(floor)
UNARY_ENTRY(ceil)
UNARY_ENTRY(reciprocal)

/* ---- Identity, Dropout (inference) ------------------------------------------------------------- */

static enum od_status u_copy(struct od_kernel_ctx *ctx, const struct od_tensor *x, struct od_tensor *y) {
  size_t bytes = od_tensor_nbytes(x);
  if (y->data == x->data || !bytes) return OD_OK;
  return ctx->dev->ops->copy(ctx->dev, y->data, x->data, bytes, ctx->err);
}

extern "C" enum od_status od_cuda_identity_fwd(struct od_kernel_ctx *ctx) {
  return u_copy(ctx, ctx->in[0], ctx->out[0]);
}

/* dX += dY (Identity, Dropout; = when fresh) */
extern "C" enum od_status od_cuda_pass_through_bwd(struct od_kernel_ctx *ctx) {
  if (!ctx->din[0]) return OD_OK;
  if (!ctx->dout[0]) return od_cuda_fresh_zero(ctx, 1u); /* only Dropout's mask was differentiated */
  const struct od_tensor *t[2] = {ctx->dout[0], ctx->din[0]};
  OD_TRY(ew_need_f32(ctx, 2, t));
  return ew_reduce_grad(ctx, ctx->din[0], ctx->dout[0], 1.0, ctx->node->op_type, od_cuda_fresh(ctx, 0));
}

/* n elements of sz bytes each set to the first sz bytes of pattern. */
static __global__ void u_fill_bytes_kernel(unsigned char *p, int64_t n, int sz, uint64_t pattern) {
  OD_GRID_LOOP(i, n) {
    for (int b = 0; b < sz; b++) p[i * sz + b] = (unsigned char)(pattern >> (8 * b));
  }
}

/* As dropout_forward_cpu (ops/unary.c): Y = X and an all-true mask, unless training with ratio > 0
 * (not implemented there either). The opset 12 ratio and training_mode inputs are device scalars:
 * read (a synchronising copy) only when they decide something. */
extern "C" enum od_status od_cuda_dropout_fwd(struct od_kernel_ctx *ctx) {
  const struct dropout_attrs *a = (const struct dropout_attrs *)ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  double ratio = a->ratio;
  bool training = ctx->training;
  if (ctx->node->opset >= 12) {
    const struct od_tensor *r = ctx->n_in > 1 ? ctx->in[1] : NULL, *tm = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (!training && tm) {
      uint8_t v = 0;
      OD_TRY(ctx->dev->ops->to_host(ctx->dev, &v, tm->data, 1, ctx->err));
      training = v != 0;
    }
    ratio = 0.5;
    if (training && r) {
      unsigned char buf[8] = {0};
      struct od_tensor h = *r;
      h.data = buf;
      if (od_dtype_size(r->dtype) > sizeof buf)
        return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "ratio of dtype %s", od_dtype_name(r->dtype));
      OD_TRY(ctx->dev->ops->to_host(ctx->dev, buf, r->data, od_dtype_size(r->dtype), ctx->err));
      ratio = od_tensor_get_f64(&h, 0);
    }
  }
  if (training && ratio != 0)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "training-mode Dropout (ratio %g) is not implemented yet", ratio);
  OD_TRY(u_copy(ctx, x, ctx->out[0]));
  struct od_tensor *mask = ctx->n_out > 1 ? ctx->out[1] : NULL;
  int64_t n = mask ? od_tensor_numel(mask) : 0;
  if (n <= 0) return OD_OK;
  /* all true (bool), or ones of X's type (opsets 1-9): the element's bytes made on the host */
  uint64_t pattern = 0;
  struct od_tensor one = *mask;
  one.rank = 0;
  one.data = &pattern;
  size_t sz = od_dtype_size(mask->dtype);
  if (sz < 1 || sz > sizeof pattern) return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Dropout mask dtype");
  if (mask->dtype == OD_DTYPE_BOOL)
    pattern = 1;
  else
    od_tensor_set_f64(&one, 0, 1.0);
  unsigned char *m = (unsigned char *)mask->data;
  OD_LAUNCH(u_fill_bytes_kernel, od_cuda_blocks(n), OD_CUDA_THREADS, od_cuda_stream(ctx->dev))(m, n, (int)sz, pattern);
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}
