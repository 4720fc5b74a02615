/* ops/unary.c: table-driven unary elementwise ops, plus Identity and Dropout (inference).
 *
 * ONNX ops (spec: https://onnx.ai/onnx/operators/onnx__<Op>.html), registered from the first opset
 * whose semantics we implement (later versions only added dtypes; opset 1's `consumed_inputs`
 * attribute was an in-place hint and is ignored):
 *   Relu 1, LeakyRelu 1 (alpha=0.01), Elu 1 (alpha=1), Selu 1 (alpha, gamma: opset 1 had the
 *   rounded defaults 1.6732/1.0507, opset 6+ the exact ones), Sigmoid 1, HardSigmoid 1 (alpha=0.2,
 *   beta=0.5), HardSwish 14, Tanh 1, Softplus 1, Erf 9, Sqrt 1, Exp 1, Log 1, Abs 1, Neg 1,
 *   Floor 1, Ceil 1, Reciprocal 1, Not 1, Identity 1, Dropout 1 (see below).
 * dtypes: float, double, float16 and bfloat16 (computed in float32) for all but Not; also
 *   int8..int64 for Relu and Neg, int8..uint64 for Abs, bool for Not; Identity and Dropout copy
 *   any dtype.
 *
 * One table (unary_defs) lists each op's name, its per-dtype loops, its derivative loops, the
 * attributes it reads and how heavy it is: pairs (f, f') like darknet's activate/gradient. Loops are
 * generated from one expression per op (x: the element, A/B/G: alpha/beta/gamma in the element
 * type), with <tgmath.h> picking expf/exp etc. by type.
 *
 * Backward (float and double; the integer and half loops have no derivative): dX += dY * f'(X),
 * f' written in terms of the input x and, where cheaper or more accurate, the saved output y:
 *   Relu        y > 0 ? 1 : 0                 (= x > 0: 0 at x = 0, like PyTorch's threshold_backward)
 *   LeakyRelu   y > 0 ? 1 : alpha for alpha >= 0 (= x > 0), else x > 0 ? 1 : alpha
 *   (Relu and LeakyRelu read only their output: a training program then releases their input,
 *   usually a BatchNormalization output, as PyTorch's in-place ReLU does.)
 *   Elu         x > 0 ? 1 : alpha e^x
 *   Selu        x > 0 ? gamma : gamma alpha e^x
 *   Sigmoid     y (1 - y)
 *   HardSigmoid alpha where 0 < alpha x + beta < 1, else 0
 *   HardSwish   t = x/6 + 1/2: t < 0 ? 0 : t <= 1 ? x/3 + 1/2 : 1   (PyTorch's hardswish_backward)
 *   Tanh        1 - y^2
 *   Softplus    sigmoid(x) = 1 / (1 + e^-x)
 *   Erf         2/sqrt(pi) e^(-x^2)
 *   Sqrt        1 / (2 y)
 *   Exp         y
 *   Log         1 / x
 *   Abs         sign(x) (0 at 0)
 *   Neg         -1
 *   Reciprocal  -y^2
 *   Floor, Ceil 0 almost everywhere: the backward adds nothing (registered so that training
 *               through them does not fail).
 *   Not         not differentiable (bool): no backward.
 * Identity and Dropout (inference) pass the gradient through: dX += dY. */
/* GCC 12's -O2 vectorises only loops whose trip count is a multiple of the vector width
 * ("very-cheap" cost model), and with -ftrapping-math (its default; clang's is off) it keeps the
 * compares of `x < 0 ? a : b` as branches. Nothing here reads floating-point exception flags, and
 * these elementwise loops are where vectorising pays (4-10x on cache-resident tensors). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic", "no-trapping-math")
#endif
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "ops/attr.h"
#include "ops/elementwise.h"
#include "ops/ew_attrs.h" /* struct unary_attrs, dropout_attrs (read by ops/unary.cu too) */
#include "ops/op.h"

enum { UA_ALPHA = 1, UA_BETA = 2, UA_GAMMA = 4 }; /* attributes an op reads */

struct unary_def {
  const char *op_type;
  ew_unary_fn loops[EW_NDTYPES]; /* by input dtype; float16/bfloat16 go through [FLOAT] */
  ew_unary_grad_fn grads[EW_NDTYPES]; /* derivative: dx += dy * f'(x, y), float and double */
  unsigned attrs;                /* UA_* */
  float alpha, beta, gamma;      /* defaults (or fixed constants when the op has no attribute) */
  int64_t min_chunk;             /* elements per thread at least: lower for transcendental ops */
};

/* ---- loops ------------------------------------------------------------------------------------ */

#define UNARY_BODY(T, EXPR)                                 \
  const T *xs = x_;                                         \
  T *ys = y_;                                               \
  const struct unary_attrs *p = p_;                         \
  const T A = (T)p->alpha, B = (T)p->beta, G = (T)p->gamma; \
  (void)A, (void)B, (void)G;                                \
  for (int64_t i = 0; i < n; i++) {                         \
    const T x = xs[i];                                      \
    ys[i] = (T)(EXPR);                                      \
  }

/* name_FLOAT and name_DOUBLE from one expression. */
#define UNARY_FLOAT_LOOPS(name, EXPR)                                              \
  static void name##_FLOAT(void *y_, const void *x_, int64_t n, const void *p_) {  \
    UNARY_BODY(float, EXPR)                                                        \
  }                                                                                \
  static void name##_DOUBLE(void *y_, const void *x_, int64_t n, const void *p_) { \
    UNARY_BODY(double, EXPR)                                                       \
  }
#define UNARY_INT_LOOP(name, CODE, T, U, EXPR)                                     \
  static void name##_##CODE(void *y_, const void *x_, int64_t n, const void *p_) { \
    const T *xs = x_;                                                              \
    T *ys = y_;                                                                    \
    (void)p_;                                                                      \
    for (int64_t i = 0; i < n; i++) {                                              \
      const T x = xs[i];                                                           \
      ys[i] = (T)(EXPR);                                                           \
    }                                                                              \
  }

/* x < 0 rather than x > 0 where it matters, so NaN propagates like numpy's reference. */
UNARY_FLOAT_LOOPS(relu, x < 0 ? 0 : x)
UNARY_FLOAT_LOOPS(leakyrelu, x < 0 ? A * x : x)
UNARY_FLOAT_LOOPS(elu, x < 0 ? A * expm1(x) : x)
UNARY_FLOAT_LOOPS(selu, x <= 0 ? G * (A * exp(x) - A) : G * x)
UNARY_FLOAT_LOOPS(sigmoid, 1 / (1 + exp(-x)))
UNARY_FLOAT_LOOPS(hardsigmoid, fmax(0, fmin(1, A * x + B)))
UNARY_FLOAT_LOOPS(hardswish, x * fmax(0, fmin(1, A * x + B)))
UNARY_FLOAT_LOOPS(tanh, tanh(x))
/* log(1 + e^x) without overflow: x + log1p(e^-x) for x > 0 */
UNARY_FLOAT_LOOPS(softplus, x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)))
UNARY_FLOAT_LOOPS(erf, erf(x))
UNARY_FLOAT_LOOPS(sqrt, sqrt(x))
UNARY_FLOAT_LOOPS(exp, exp(x))
UNARY_FLOAT_LOOPS(log, log(x))
UNARY_FLOAT_LOOPS(abs, fabs(x))
UNARY_FLOAT_LOOPS(neg, -x)
UNARY_FLOAT_LOOPS(floor, floor(x))
UNARY_FLOAT_LOOPS(ceil, ceil(x))
UNARY_FLOAT_LOOPS(reciprocal, 1 / x)

/* ---- derivative loops: dx[i] += dy[i] * (EXPR), EXPR = f'(x) given x and the output y --------- */

#define UNARY_GRAD_BODY(T, EXPR)                            \
  const T *xs = x_, *ys = y_, *gs = dy_;                    \
  T *dxs = dx_;                                             \
  const struct unary_attrs *p = p_;                         \
  const T A = (T)p->alpha, B = (T)p->beta, G = (T)p->gamma; \
  const T ERF_K = (T)1.12837916709551257390; /* 2/sqrt(pi) */ \
  (void)A, (void)B, (void)G, (void)ERF_K, (void)xs, (void)ys; \
  for (int64_t i = 0; i < n; i++) {                         \
    const T x = xs[i], y = ys[i];                           \
    (void)x, (void)y;                                       \
    dxs[i] += gs[i] * (T)(EXPR);                            \
  }

#define UNARY_GRAD_LOOPS(name, EXPR)                                                                            \
  static void name##_grad_FLOAT(void *dx_, const void *dy_, const void *x_, const void *y_, int64_t n,           \
                                const void *p_) {                                                              \
    UNARY_GRAD_BODY(float, EXPR)                                                                               \
  }                                                                                                            \
  static void name##_grad_DOUBLE(void *dx_, const void *dy_, const void *x_, const void *y_, int64_t n,          \
                                 const void *p_) {                                                             \
    UNARY_GRAD_BODY(double, EXPR)                                                                              \
  }

UNARY_GRAD_LOOPS(relu, y > 0 ? 1 : 0)
UNARY_GRAD_LOOPS(leakyrelu, (A >= 0 ? y > 0 : x > 0) ? 1 : A)
UNARY_GRAD_LOOPS(elu, x > 0 ? 1 : A * exp(x))
UNARY_GRAD_LOOPS(selu, x > 0 ? G : G * A * exp(x))
UNARY_GRAD_LOOPS(sigmoid, y * (1 - y))
UNARY_GRAD_LOOPS(hardsigmoid, (A * x + B > 0 && A * x + B < 1) ? A : 0)
UNARY_GRAD_LOOPS(hardswish, A * x + B < 0 ? 0 : A * x + B <= 1 ? 2 * A * x + B : 1)
UNARY_GRAD_LOOPS(tanh, 1 - y * y)
UNARY_GRAD_LOOPS(softplus, 1 / (1 + exp(-x)))
UNARY_GRAD_LOOPS(erf, ERF_K * exp(-x * x))
UNARY_GRAD_LOOPS(sqrt, 1 / (2 * y))
UNARY_GRAD_LOOPS(exp, y)
UNARY_GRAD_LOOPS(log, 1 / x)
UNARY_GRAD_LOOPS(abs, x > 0 ? 1 : x < 0 ? -1 : 0)
UNARY_GRAD_LOOPS(neg, -1)
UNARY_GRAD_LOOPS(reciprocal, -(y * y))

/* Floor, Ceil: the derivative is 0 almost everywhere; nothing to add. */
static void none_grad(void *dx, const void *dy, const void *x, const void *y, int64_t n, const void *p) {
  (void)dx, (void)dy, (void)x, (void)y, (void)n, (void)p;
}

/* Integers: negation through the unsigned type, so INT_MIN wraps (as numpy) instead of being UB. */
#define RELU_INT(CODE, T, U) UNARY_INT_LOOP(relu, CODE, T, U, x < 0 ? 0 : x)
#define NEG_INT(CODE, T, U) UNARY_INT_LOOP(neg, CODE, T, U, (U)0 - (U)x)
#define ABS_SINT(CODE, T, U) UNARY_INT_LOOP(abs, CODE, T, U, x < 0 ? (U)0 - (U)x : (U)x)
#define ABS_UINT(CODE, T, U) UNARY_INT_LOOP(abs, CODE, T, U, x)
EW_SINT_TYPES(RELU_INT)
EW_SINT_TYPES(NEG_INT)
EW_SINT_TYPES(ABS_SINT)
EW_UINT_TYPES(ABS_UINT)
UNARY_INT_LOOP(not, BOOL, uint8_t, uint8_t, !x)

#define FLOAT_ENTRIES(name) [OD_DTYPE_FLOAT] = name##_FLOAT, [OD_DTYPE_DOUBLE] = name##_DOUBLE
#define SINT_ENTRIES(name)                                                                         \
  [OD_DTYPE_INT8] = name##_INT8, [OD_DTYPE_INT16] = name##_INT16, [OD_DTYPE_INT32] = name##_INT32, \
  [OD_DTYPE_INT64] = name##_INT64
#define UINT_ENTRIES(name)                                                                               \
  [OD_DTYPE_UINT8] = name##_UINT8, [OD_DTYPE_UINT16] = name##_UINT16, [OD_DTYPE_UINT32] = name##_UINT32, \
  [OD_DTYPE_UINT64] = name##_UINT64

enum { CHEAP = 1 << 15, HEAVY = 1 << 12 };

#define GRAD_ENTRIES(name) [OD_DTYPE_FLOAT] = name##_grad_FLOAT, [OD_DTYPE_DOUBLE] = name##_grad_DOUBLE
#define NO_GRAD_ENTRIES [OD_DTYPE_FLOAT] = none_grad, [OD_DTYPE_DOUBLE] = none_grad

static const struct unary_def unary_defs[] = {
    {"Relu", {FLOAT_ENTRIES(relu), SINT_ENTRIES(relu)}, {GRAD_ENTRIES(relu)}, 0, 0, 0, 0, CHEAP},
    {"LeakyRelu", {FLOAT_ENTRIES(leakyrelu)}, {GRAD_ENTRIES(leakyrelu)}, UA_ALPHA, 0.01f, 0, 0, CHEAP},
    {"Elu", {FLOAT_ENTRIES(elu)}, {GRAD_ENTRIES(elu)}, UA_ALPHA, 1.0f, 0, 0, HEAVY},
    {"Selu", {FLOAT_ENTRIES(selu)}, {GRAD_ENTRIES(selu)}, UA_ALPHA | UA_GAMMA, 1.67326319217681884765625f, 0,
     1.05070102214813232421875f, HEAVY},
    {"Sigmoid", {FLOAT_ENTRIES(sigmoid)}, {GRAD_ENTRIES(sigmoid)}, 0, 0, 0, 0, HEAVY},
    {"HardSigmoid", {FLOAT_ENTRIES(hardsigmoid)}, {GRAD_ENTRIES(hardsigmoid)}, UA_ALPHA | UA_BETA, 0.2f, 0.5f, 0, CHEAP},
    {"HardSwish", {FLOAT_ENTRIES(hardswish)}, {GRAD_ENTRIES(hardswish)}, 0, 1.0f / 6.0f, 0.5f, 0,
     CHEAP}, /* fixed alpha, beta */
    {"Tanh", {FLOAT_ENTRIES(tanh)}, {GRAD_ENTRIES(tanh)}, 0, 0, 0, 0, HEAVY},
    {"Softplus", {FLOAT_ENTRIES(softplus)}, {GRAD_ENTRIES(softplus)}, 0, 0, 0, 0, HEAVY},
    {"Erf", {FLOAT_ENTRIES(erf)}, {GRAD_ENTRIES(erf)}, 0, 0, 0, 0, HEAVY},
    {"Sqrt", {FLOAT_ENTRIES(sqrt)}, {GRAD_ENTRIES(sqrt)}, 0, 0, 0, 0, CHEAP},
    {"Exp", {FLOAT_ENTRIES(exp)}, {GRAD_ENTRIES(exp)}, 0, 0, 0, 0, HEAVY},
    {"Log", {FLOAT_ENTRIES(log)}, {GRAD_ENTRIES(log)}, 0, 0, 0, 0, HEAVY},
    {"Abs", {FLOAT_ENTRIES(abs), SINT_ENTRIES(abs), UINT_ENTRIES(abs)}, {GRAD_ENTRIES(abs)}, 0, 0, 0, 0, CHEAP},
    {"Neg", {FLOAT_ENTRIES(neg), SINT_ENTRIES(neg)}, {GRAD_ENTRIES(neg)}, 0, 0, 0, 0, CHEAP},
    {"Floor", {FLOAT_ENTRIES(floor)}, {NO_GRAD_ENTRIES}, 0, 0, 0, 0, CHEAP},
    {"Ceil", {FLOAT_ENTRIES(ceil)}, {NO_GRAD_ENTRIES}, 0, 0, 0, 0, CHEAP},
    {"Reciprocal", {FLOAT_ENTRIES(reciprocal)}, {GRAD_ENTRIES(reciprocal)}, 0, 0, 0, 0, CHEAP},
    {"Not", {[OD_DTYPE_BOOL] = not_BOOL}, {0}, 0, 0, 0, 0, CHEAP}, /* bool: not differentiable */
};

/* ---- kernel functions ------------------------------------------------------------------------- */

static enum od_status unary_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct unary_attrs *a = attrs;
  for (size_t i = 0; i < sizeof unary_defs / sizeof unary_defs[0]; i++)
    if (!strcmp(unary_defs[i].op_type, node->op_type)) a->def = &unary_defs[i];
  if (!a->def) return od_err_set(err, OD_ERR_INTERNAL, "no unary table entry for %s", node->op_type);
  const struct unary_def *d = a->def;
  a->alpha = d->alpha;
  a->beta = d->beta;
  a->gamma = d->gamma;
  if (!strcmp(d->op_type, "Selu") && node->opset < 6) { /* Selu-1's defaults, rounded */
    a->alpha = 1.6732f;
    a->gamma = 1.0507f;
  }
  if (d->attrs & UA_ALPHA) OD_TRY(od_attr_get_float(node, "alpha", a->alpha, &a->alpha, err));
  if (d->attrs & UA_BETA) OD_TRY(od_attr_get_float(node, "beta", a->beta, &a->beta, err));
  if (d->attrs & UA_GAMMA) OD_TRY(od_attr_get_float(node, "gamma", a->gamma, &a->gamma, err));
  return OD_OK;
}

static enum od_status unary_infer(struct od_infer_ctx *ctx) {
  const struct unary_attrs *a = ctx->attrs;
  const struct od_tensor *x = &ctx->in[0];
  if (ctx->n_in < 1 || !x->dtype) return od_err_set(ctx->err, OD_ERR_SHAPE, "input X is missing");
  if (!ew_has_loop(a->def->loops, x->dtype)) return ew_err_dtype(ctx->err, a->def->op_type, x->dtype);
  ctx->out[0].dtype = x->dtype;
  ctx->out[0].rank = x->rank;
  memcpy(ctx->out[0].dims, x->dims, sizeof x->dims);
  return OD_OK;
}

static enum od_status unary_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct unary_attrs *a = ctx->attrs;
  return ew_unary_run(ctx->pool, ctx->out[0], ctx->in[0], a->def->loops, a, a->def->min_chunk,
                      a->def->op_type, ctx->err);
}

/* dX += dY * f'(X) through the table's derivative column (see the header comment). */
static enum od_status unary_backward_cpu(struct od_kernel_ctx *ctx) {
  const struct unary_attrs *a = ctx->attrs;
  if (!ctx->dout[0] || !ctx->din[0]) return OD_OK;
  return ew_unary_grad_run(ctx->pool, ctx->din[0], ctx->dout[0], ctx->in[0], ctx->out[0], a->def->grads, a,
                           a->def->min_chunk, a->def->op_type, ctx->err);
}

/* Relu reads y only; LeakyRelu too when alpha >= 0; the others everything (bwd_reads in op.h). */
static uint32_t unary_bwd_reads(const struct od_node *node, const void *attrs, bool *outputs) {
  const struct unary_attrs *a = attrs;
  *outputs = true;
  if (!strcmp(a->def->op_type, "Relu") || (!strcmp(a->def->op_type, "LeakyRelu") && a->alpha >= 0)) return 0;
  return ~0u;
}

#define FLOAT_DTYPES "float, double, float16, bfloat16"
#define UNARY_KERNELS(sym, dtype_list)                                                               \
  const struct od_op_kernels od_kernels_##sym = {.attrs_size = sizeof(struct unary_attrs),           \
                                                 .parse = unary_parse,                               \
                                                 .infer = unary_infer,                               \
                                                 .forward = {[OD_DEVICE_CPU] = unary_forward_cpu,    \
                                                             [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_##sym##_fwd)}, \
                                                 .backward = {[OD_DEVICE_CPU] = unary_backward_cpu,  \
                                                              [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_##sym##_bwd)}, \
                                                 .bwd_reads = unary_bwd_reads,                       \
                                                 .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,          \
                                                 .dtypes = dtype_list};

UNARY_KERNELS(relu, FLOAT_DTYPES ", int8, int16, int32, int64")
UNARY_KERNELS(leakyrelu, FLOAT_DTYPES)
UNARY_KERNELS(elu, FLOAT_DTYPES)
UNARY_KERNELS(selu, FLOAT_DTYPES)
UNARY_KERNELS(sigmoid, FLOAT_DTYPES)
UNARY_KERNELS(hardsigmoid, FLOAT_DTYPES)
UNARY_KERNELS(hardswish, FLOAT_DTYPES)
UNARY_KERNELS(tanh, FLOAT_DTYPES)
UNARY_KERNELS(softplus, FLOAT_DTYPES)
UNARY_KERNELS(erf, FLOAT_DTYPES)
UNARY_KERNELS(sqrt, FLOAT_DTYPES)
UNARY_KERNELS(exp, FLOAT_DTYPES)
UNARY_KERNELS(log, FLOAT_DTYPES)
UNARY_KERNELS(abs, FLOAT_DTYPES ", int8..int64, uint8..uint64")
UNARY_KERNELS(neg, FLOAT_DTYPES ", int8, int16, int32, int64")
UNARY_KERNELS(floor, FLOAT_DTYPES)
UNARY_KERNELS(ceil, FLOAT_DTYPES)
UNARY_KERNELS(reciprocal, FLOAT_DTYPES)
const struct od_op_kernels od_kernels_not = {.attrs_size = sizeof(struct unary_attrs), /* no backward: bool */
                                             .parse = unary_parse,
                                             .infer = unary_infer,
                                             .forward = {[OD_DEVICE_CPU] = unary_forward_cpu},
                                             .flags = OD_OP_FOLDABLE,
                                             .dtypes = "bool"};

/* ---- Identity ----------------------------------------------------------------------------------
 * Y = X for any tensor dtype (sequence and optional values are not tensors: unsupported). */

static enum od_status identity_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *x = &ctx->in[0];
  if (ctx->n_in < 1 || !x->dtype) return od_err_set(ctx->err, OD_ERR_SHAPE, "input is missing");
  if (!od_dtype_is_supported(x->dtype)) return ew_err_dtype(ctx->err, "Identity", x->dtype);
  ctx->out[0] = *x;
  ctx->out[0].data = NULL;
  return OD_OK;
}

static enum od_status identity_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *x = ctx->in[0];
  struct od_tensor *y = ctx->out[0];
  if (y->data != x->data && od_tensor_nbytes(x)) memcpy(y->data, x->data, od_tensor_nbytes(x));
  return OD_OK;
}

/* dX += dY (float and double gradients). */
static enum od_status pass_through_backward_cpu(struct od_kernel_ctx *ctx) {
  if (!ctx->dout[0] || !ctx->din[0]) return OD_OK;
  return ew_reduce_grad(ctx->pool, ctx->din[0], ctx->dout[0], 1.0, ctx->node->op_type, ctx->err);
}

const struct od_op_kernels od_kernels_identity = {.infer = identity_infer,
                                                  .forward = {[OD_DEVICE_CPU] = identity_forward_cpu,
                                                              [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_identity_fwd)},
                                                  .backward = {[OD_DEVICE_CPU] = pass_through_backward_cpu,
                                                               [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_pass_through_bwd)},
                                                  .flags = OD_OP_FOLDABLE | OD_OP_BWD_FRESH,
                                                  .dtypes = "all tensor dtypes"};

/* ---- Dropout -----------------------------------------------------------------------------------
 * Versions: 1 and 6 (attributes ratio, is_test; mask of type T), 7 (is_test gone), 10 (mask is
 * bool), 12+ (ratio and training_mode became optional inputs; seed attribute).
 * Inference (the executor not training and training_mode absent or false, or ratio 0): Y = X and
 * the optional mask is all true. Training-mode dropout with ratio > 0 needs a random generator
 * owned by the execution context and is not implemented yet: it fails with UNSUPPORTED.
 * is_test (opsets 1, 6) is ignored: the executor's mode decides.
 * Backward: the inference form is the identity, dX += dY (the training form fails in forward, so
 * never reaches backward); the mask output (constant) passes no gradient; ratio and training_mode
 * take none. */

static enum od_status dropout_parse(const struct od_node *node, void *attrs, struct od_err *err) {
  struct dropout_attrs *a = attrs;
  a->ratio = 0.5f;
  if (node->opset < 12) OD_TRY(od_attr_get_float(node, "ratio", 0.5f, &a->ratio, err));
  if (a->ratio < 0 || a->ratio >= 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'ratio' must be in [0, 1), not %g", a->ratio);
  return OD_OK;
}

static enum od_status dropout_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *x = &ctx->in[0];
  if (ctx->n_in < 1 || !x->dtype) return od_err_set(ctx->err, OD_ERR_SHAPE, "input data is missing");
  if (!od_dtype_is_supported(x->dtype)) return ew_err_dtype(ctx->err, "Dropout", x->dtype);
  for (int i = 1; i < ctx->n_in && i < 3; i++) {
    const struct od_tensor *t = &ctx->in[i];
    if (!t->dtype) continue;
    if (t->rank != 0 && od_tensor_numel(t) != 1)
      return od_err_set(ctx->err, OD_ERR_SHAPE, "input %s must be a scalar, has %lld elements",
                        i == 1 ? "ratio" : "training_mode", (long long)od_tensor_numel(t));
    if (i == 1 && !od_dtype_is_float(t->dtype))
      return od_err_set(ctx->err, OD_ERR_SHAPE, "input ratio must be a float type, not %s", od_dtype_name(t->dtype));
    if (i == 2 && t->dtype != OD_DTYPE_BOOL)
      return od_err_set(ctx->err, OD_ERR_SHAPE, "input training_mode must be bool, not %s",
                        od_dtype_name(t->dtype));
  }
  ctx->out[0] = *x;
  ctx->out[0].data = NULL;
  if (ctx->n_out > 1) {
    ctx->out[1] = ctx->out[0];
    if (ctx->node->opset >= 10) ctx->out[1].dtype = OD_DTYPE_BOOL;
  }
  return OD_OK;
}

static enum od_status dropout_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct dropout_attrs *a = ctx->attrs;
  const struct od_tensor *x = ctx->in[0];
  double ratio = a->ratio;
  bool training = ctx->training;
  if (ctx->node->opset >= 12) {
    ratio = ctx->n_in > 1 && ctx->in[1] ? od_tensor_get_f64(ctx->in[1], 0) : 0.5;
    if (ctx->n_in > 2 && ctx->in[2] && ((const uint8_t *)ctx->in[2]->data)[0]) training = true;
  }
  if (training && ratio != 0)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "training-mode Dropout (ratio %g) is not implemented yet",
                      ratio);
  struct od_tensor *y = ctx->out[0];
  if (y->data != x->data && od_tensor_nbytes(x)) memcpy(y->data, x->data, od_tensor_nbytes(x));
  struct od_tensor *mask = ctx->n_out > 1 ? ctx->out[1] : NULL;
  if (mask) {
    int64_t n = od_tensor_numel(mask);
    if (mask->dtype == OD_DTYPE_BOOL)
      memset(mask->data, 1, (size_t)n);
    else /* opsets 1-9: mask of X's type, all ones */
      for (int64_t i = 0; i < n; i++) od_tensor_set_f64(mask, i, 1.0);
  }
  return OD_OK;
}

const struct od_op_kernels od_kernels_dropout = {.attrs_size = sizeof(struct dropout_attrs),
                                                 .parse = dropout_parse,
                                                 .infer = dropout_infer,
                                                 .forward = {[OD_DEVICE_CPU] = dropout_forward_cpu,
                                                             [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_dropout_fwd)},
                                                 .backward = {[OD_DEVICE_CPU] = pass_through_backward_cpu,
                                                              [OD_DEVICE_CUDA] = OD_CUDA_KERNEL(od_cuda_pass_through_bwd)},
                                                 .no_grad_inputs = 0x6u, /* ratio, training_mode */
                                                 .flags = OD_OP_BWD_FRESH,
                                                 .dtypes = FLOAT_DTYPES " (inference)"};
