/* ops/binary.cu: CUDA forward and backward of the arithmetic ops of ops/binary.c: Add, Sub, Mul,
 * Div, Pow, PRelu, with numpy broadcasting, opset < 7 legacy broadcasting and PRelu's 1-D slope
 * (B is read through the view ops/binary.c gives, od_binary_b_view). Float32; Pow's exponent must
 * be float32 too (an integer exponent: UNSUPPORTED, the node runs on the CPU). The comparisons
 * (bool outputs) stay on the CPU.
 *
 * Forward: ew_apply (ops/cuda/ew.cuh): a flat vectorised loop when both inputs have the output's
 * shape or one is a scalar (residual adds, scaling), else the general broadcast kernel.
 * Backward, as ops/binary.c (same expressions):
 *   Add, Sub  dA += dY, dB += +-dY: one vectorised pass for both when their shapes match dY (the
 *             residual add), else ew_reduce for each (vectorised dX += dY for a same-shape one, the
 *             reduction over the broadcast dims for a broadcast one);
 *   Mul, Div, Pow, PRelu: the term (e.g. dY * B) accumulated straight into dA when A has the
 *             output's shape, else formed in workspace scratch and reduced (ew_grad_bcast).
 * Fresh gradients (OD_OP_BWD_FRESH, ops/op.h): a fresh dA or dB is written (=) instead, by the same
 * kernels' write variants. dA is finished before dB is touched, so Add(x, x) (dA and dB one buffer,
 * only dA fresh) writes dY and then adds dB's share. */
#include "ops/cuda/ew.cuh"

extern "C" {
#include "ops/ew_attrs.h"
}

/* ---- forward ------------------------------------------------------------------------------------ */

#define BIN_OP(name, EXPR)                                                             \
  struct b_##name {                                                                    \
    static constexpr int N = 2;                                                        \
    __device__ float operator()(float a, float b, float, float) const { return EXPR; } \
  };
BIN_OP(add, a + b)
BIN_OP(sub, a - b)
BIN_OP(mul, a * b)
BIN_OP(div, a / b)
BIN_OP(pow, b == 2.0f ? a * a : powf(a, b)) /* the CPU's x*x for a scalar exponent 2 */
BIN_OP(prelu, a < 0 ? a * b : a)

/* Checks dtypes (before any launch: a fallback must not follow partial work) and gets B's view. */
static enum od_status bin_prepare(struct od_kernel_ctx *ctx, struct od_tensor *B, bool backward) {
  const struct od_tensor *t[3] = {ctx->in[0], ctx->in[1], ctx->out[0]};
  OD_TRY(ew_need_f32(ctx, 3, t));
  if (backward) {
    const struct od_tensor *d[3] = {ctx->dout[0], ctx->din[0], ctx->din[1]};
    OD_TRY(ew_need_f32(ctx, 3, d));
  }
  return od_binary_b_view(ctx, B);
}

template <class F>
static enum od_status bin_fwd(struct od_kernel_ctx *ctx) {
  struct od_tensor B;
  OD_TRY(bin_prepare(ctx, &B, false));
  const struct od_tensor *x[2] = {ctx->in[0], &B};
  return ew_apply_t(ctx, F{}, ctx->out[0], x);
}

extern "C" enum od_status od_cuda_add_fwd(struct od_kernel_ctx *ctx) { return bin_fwd<b_add>(ctx); }
extern "C" enum od_status od_cuda_sub_fwd(struct od_kernel_ctx *ctx) { return bin_fwd<b_sub>(ctx); }
extern "C" enum od_status od_cuda_mul_fwd(struct od_kernel_ctx *ctx) { return bin_fwd<b_mul>(ctx); }
extern "C" enum od_status od_cuda_div_fwd(struct od_kernel_ctx *ctx) { return bin_fwd<b_div>(ctx); }
extern "C" enum od_status od_cuda_pow_fwd(struct od_kernel_ctx *ctx) { return bin_fwd<b_pow>(ctx); }
extern "C" enum od_status od_cuda_prelu_fwd(struct od_kernel_ctx *ctx) { return bin_fwd<b_prelu>(ctx); }

/* ---- backward ----------------------------------------------------------------------------------
 * Gradient terms f(g, a, b): g = dY, a and b the operands named at each call. */

#define GRAD_OP(name, NIN, EXPR)                                          \
  struct g_##name {                                                       \
    static constexpr int N = NIN;                                         \
    __device__ float operator()(float g, float a, float b, float) const { \
      (void)b;                                                            \
      return EXPR;                                                        \
    }                                                                     \
  };
GRAD_OP(mul, 2, g * a)                                    /* Mul: a = the other input */
GRAD_OP(diva, 2, g / a)                                   /* Div dA: a = B */
GRAD_OP(divb, 3, -(g * a) / (b * b))                      /* Div dB: a = A, b = B */
GRAD_OP(powa, 3, b == 0 ? 0.0f : g * b * powf(a, b - 1))  /* a = A, b = B */
GRAD_OP(powb, 3, a > 0 ? g * b * logf(a) : 0.0f)          /* a = A, b = Y */
GRAD_OP(prelux, 3, a > 0 ? g : g * b)                     /* PRelu dX: a = X, b = slope */
GRAD_OP(prelus, 2, a > 0 ? 0.0f : g * a)                  /* PRelu dslope: a = X */

/* The backward's tensors: dY, A, B's view, dA and dB (viewed like B; NULL where not wanted). */
struct bin_grads {
  const struct od_tensor *dY, *A, *Y;
  struct od_tensor B, dBv;
  const struct od_tensor *dA, *dB;
};

static enum od_status bin_grads_of(struct od_kernel_ctx *ctx, struct bin_grads *g) {
  g->dY = ctx->dout[0];
  if (!g->dY) return OD_OK;
  OD_TRY(bin_prepare(ctx, &g->B, true));
  g->A = ctx->in[0];
  g->Y = ctx->out[0];
  g->dA = ctx->din[0];
  g->dB = NULL;
  if (ctx->din[1]) { /* dB with the shape forward read B as (same data, same numel) */
    g->dBv = g->B;
    g->dBv.data = ctx->din[1]->data;
    g->dB = &g->dBv;
  }
  return OD_OK;
}

/* dA += dY, dB += sign * dY with both of dY's shape (a residual Add): one pass that reads dY once
 * (not for Add(x, x), whose dA and dB are one buffer); n4 groups of 4 through 16-byte accesses (0
 * when unaligned), then the rest one by one. WA, WB: write dA, dB (fresh) instead of adding. */
template <bool WA, bool WB>
static __global__ void b_add_bwd2_kernel(float *da, float *db, const float *dy, float sign, int64_t n, int64_t n4) {
  OD_GRID_LOOP(i, n4) {
    ew_f4 g = reinterpret_cast<const ew_f4 *>(dy)[i];
    ew_f4 a = {}, b = {};
    if (!WA) a = reinterpret_cast<ew_f4 *>(da)[i];
    if (!WB) b = reinterpret_cast<ew_f4 *>(db)[i];
    a.x += g.x, a.y += g.y, a.z += g.z, a.w += g.w;
    b.x += sign * g.x, b.y += sign * g.y, b.z += sign * g.z, b.w += sign * g.w;
    reinterpret_cast<ew_f4 *>(da)[i] = a;
    reinterpret_cast<ew_f4 *>(db)[i] = b;
  }
  for (int64_t i = 4 * n4 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    da[i] = WA ? dy[i] : da[i] + dy[i];
    db[i] = WB ? sign * dy[i] : db[i] + sign * dy[i];
  }
}

typedef void (*b_add_bwd2_fn)(float *, float *, const float *, float, int64_t, int64_t);

/* Add (sign 1), Sub (sign -1) */
static enum od_status bin_add_bwd(struct od_kernel_ctx *ctx, double sign) {
  struct bin_grads g;
  OD_TRY(bin_grads_of(ctx, &g));
  if (!g.dY) return OD_OK;
  const char *op = ctx->node->op_type;
  int64_t n = od_tensor_numel(g.dY);
  bool wa = od_cuda_fresh(ctx, 0), wb = od_cuda_fresh(ctx, 1);
  if (g.dA && g.dB && g.dA->data != g.dB->data && od_tensor_numel(g.dA) == n && od_tensor_numel(g.dB) == n) {
    if (n <= 0) return OD_OK;
    float *da = (float *)g.dA->data, *db = (float *)g.dB->data;
    const float *dy = (const float *)g.dY->data;
    bool aligned = (((uintptr_t)da | (uintptr_t)db | (uintptr_t)dy) & 15u) == 0;
    int64_t n4 = aligned ? n / 4 : 0;
    b_add_bwd2_fn k = wa ? (wb ? b_add_bwd2_kernel<true, true> : b_add_bwd2_kernel<true, false>)
                         : (wb ? b_add_bwd2_kernel<false, true> : b_add_bwd2_kernel<false, false>);
    OD_LAUNCH(k, od_cuda_blocks(n4 > 0 ? n4 : n), OD_CUDA_THREADS, od_cuda_stream(ctx->dev))(da, db, dy, (float)sign,
                                                                                            n, n4);
    OD_CUDA_LAUNCHED(ctx);
    return OD_OK;
  }
  if (g.dA) OD_TRY(ew_reduce_grad(ctx, g.dA, g.dY, 1.0, op, wa));
  if (g.dB) OD_TRY(ew_reduce_grad(ctx, g.dB, g.dY, sign, op, wb));
  return OD_OK;
}

extern "C" enum od_status od_cuda_add_bwd(struct od_kernel_ctx *ctx) { return bin_add_bwd(ctx, 1.0); }
extern "C" enum od_status od_cuda_sub_bwd(struct od_kernel_ctx *ctx) { return bin_add_bwd(ctx, -1.0); }

/* dA += reduce(fa(dY, a0, a1)), dB += reduce(fb(dY, b0, b1)) (= where fresh, dA first) */
template <class FA, class FB>
static enum od_status bin_terms_bwd(struct od_kernel_ctx *ctx, struct bin_grads *g, const struct od_tensor *a0,
                                    const struct od_tensor *a1, const struct od_tensor *b0,
                                    const struct od_tensor *b1) {
  const char *op = ctx->node->op_type;
  if (g->dA) OD_TRY(ew_grad_bcast(ctx, g->dA, g->dY, a0, a1, FA{}, op, NULL, od_cuda_fresh(ctx, 0)));
  if (g->dB) OD_TRY(ew_grad_bcast(ctx, g->dB, g->dY, b0, b1, FB{}, op, NULL, od_cuda_fresh(ctx, 1)));
  return OD_OK;
}

extern "C" enum od_status od_cuda_mul_bwd(struct od_kernel_ctx *ctx) {
  struct bin_grads g;
  OD_TRY(bin_grads_of(ctx, &g));
  if (!g.dY) return OD_OK;
  return bin_terms_bwd<g_mul, g_mul>(ctx, &g, &g.B, &g.B, g.A, g.A);
}

extern "C" enum od_status od_cuda_div_bwd(struct od_kernel_ctx *ctx) {
  struct bin_grads g;
  OD_TRY(bin_grads_of(ctx, &g));
  if (!g.dY) return OD_OK;
  return bin_terms_bwd<g_diva, g_divb>(ctx, &g, &g.B, &g.B, g.A, &g.B);
}

extern "C" enum od_status od_cuda_pow_bwd(struct od_kernel_ctx *ctx) {
  struct bin_grads g;
  OD_TRY(bin_grads_of(ctx, &g));
  if (!g.dY) return OD_OK;
  return bin_terms_bwd<g_powa, g_powb>(ctx, &g, g.A, &g.B, g.A, g.Y);
}

extern "C" enum od_status od_cuda_prelu_bwd(struct od_kernel_ctx *ctx) {
  struct bin_grads g;
  OD_TRY(bin_grads_of(ctx, &g));
  if (!g.dY) return OD_OK;
  return bin_terms_bwd<g_prelux, g_prelus>(ctx, &g, g.A, &g.B, g.A, g.A);
}
