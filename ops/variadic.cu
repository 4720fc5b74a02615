/* ops/variadic.cu: CUDA forward and backward of Sum, Mean, Max, Min (ops/variadic.c) over 1..N
 * inputs with numpy broadcasting. Float32. Where stays on the CPU.
 *
 * Forward folds pairwise into the output like the CPU (y = f(x0, x1), then y = f(y, xi); Mean
 * divides by N at the end), so the results match it bit for bit; each step is one ew_apply
 * (ops/cuda/ew.cuh): a flat vectorised loop for same-shape or scalar inputs, else the broadcast
 * kernel. NaN propagates through Max/Min (the CPU's (a > b || isnan(a)) ? a : b).
 * Backward, each input's gradient reduced over the dims it was broadcast along (ew_reduce):
 *   Sum, Mean  dXi += dY (/ N);
 *   Max, Min   dXi += dY where input i is the one selected: the first input holding the result
 *              (or, for a NaN result, the first NaN). Two inputs test directly; more build a
 *              selection (input index per element, as float) in the workspace first. */
#include "ops/cuda/ew.cuh"

#define VAR_OP(name, EXPR)                                                             \
  struct v_##name {                                                                    \
    static constexpr int N = 2;                                                        \
    __device__ float operator()(float a, float b, float, float) const { return EXPR; } \
  };
VAR_OP(sum, a + b)
VAR_OP(max, (a > b || isnan(a)) ? a : b)
VAR_OP(min, (a < b || isnan(a)) ? a : b)

struct v_divn { /* Mean: y / n */
  static constexpr int N = 1;
  float n;
  __device__ float operator()(float y, float, float, float) const { return y / n; }
};

static enum od_status var_check(struct od_kernel_ctx *ctx, bool backward) {
  for (int i = 0; i < ctx->n_in; i++) OD_TRY(ew_need_f32(ctx, 1, &ctx->in[i]));
  OD_TRY(ew_need_f32(ctx, 1, &ctx->out[0]));
  if (backward) {
    OD_TRY(ew_need_f32(ctx, 1, &ctx->dout[0]));
    for (int i = 0; i < ctx->n_in; i++) OD_TRY(ew_need_f32(ctx, 1, &ctx->din[i]));
  }
  return OD_OK;
}

template <class F>
static enum od_status var_fwd(struct od_kernel_ctx *ctx, bool mean) {
  OD_TRY(var_check(ctx, false));
  struct od_tensor *y = ctx->out[0];
  int n = ctx->n_in;
  if (n == 1) { /* the output has the one input's shape */
    size_t bytes = od_tensor_nbytes(y);
    if (y->data == ctx->in[0]->data || !bytes) return OD_OK;
    return ctx->dev->ops->copy(ctx->dev, y->data, ctx->in[0]->data, bytes, ctx->err);
  }
  for (int i = 1; i < n; i++) {
    const struct od_tensor *x[2] = {i == 1 ? ctx->in[0] : y, ctx->in[i]};
    OD_TRY(ew_apply_t(ctx, F{}, y, x));
  }
  if (mean) {
    const struct od_tensor *x[1] = {y};
    OD_TRY(ew_apply_t(ctx, v_divn{(float)n}, y, x));
  }
  return OD_OK;
}

extern "C" enum od_status od_cuda_sum_fwd(struct od_kernel_ctx *ctx) { return var_fwd<v_sum>(ctx, false); }
extern "C" enum od_status od_cuda_mean_fwd(struct od_kernel_ctx *ctx) { return var_fwd<v_sum>(ctx, true); }
extern "C" enum od_status od_cuda_max_fwd(struct od_kernel_ctx *ctx) { return var_fwd<v_max>(ctx, false); }
extern "C" enum od_status od_cuda_min_fwd(struct od_kernel_ctx *ctx) { return var_fwd<v_min>(ctx, false); }

/* ---- backward ---------------------------------------------------------------------------------- */

/* Sum (scale 1), Mean (scale 1/N) */
static enum od_status var_sum_bwd(struct od_kernel_ctx *ctx, bool mean) {
  if (!ctx->dout[0]) return OD_OK;
  OD_TRY(var_check(ctx, true));
  double scale = mean ? 1.0 / ctx->n_in : 1.0;
  for (int k = 0; k < ctx->n_in; k++)
    if (ctx->din[k]) OD_TRY(ew_reduce_grad(ctx, ctx->din[k], ctx->dout[0], scale, ctx->node->op_type));
  return OD_OK;
}

extern "C" enum od_status od_cuda_sum_bwd(struct od_kernel_ctx *ctx) { return var_sum_bwd(ctx, false); }
extern "C" enum od_status od_cuda_mean_bwd(struct od_kernel_ctx *ctx) { return var_sum_bwd(ctx, true); }

static __device__ inline bool v_same(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

/* Two inputs: a = x0, b = Y; x0 is selected where it holds the result, x1 everywhere else. */
struct v_pick0 {
  static constexpr int N = 3;
  __device__ float operator()(float g, float a, float b, float) const { return v_same(a, b) ? g : 0.0f; }
};
struct v_pick1 {
  static constexpr int N = 3;
  __device__ float operator()(float g, float a, float b, float) const { return v_same(a, b) ? 0.0f : g; }
};
/* sel = the first k with x_k == Y (or both NaN); -1 until claimed. Reads (sel, Y, x_k). */
struct v_select {
  static constexpr int N = 3;
  float k;
  __device__ float operator()(float s, float y, float v, float) const { return s < 0 && v_same(v, y) ? k : s; }
};
/* dY where sel == k. Reads (dY, sel). */
struct v_pickk {
  static constexpr int N = 2;
  float k;
  __device__ float operator()(float g, float s, float, float) const { return s == k ? g : 0.0f; }
};

static enum od_status var_minmax_bwd(struct od_kernel_ctx *ctx) {
  const struct od_tensor *dY = ctx->dout[0], *Y = ctx->out[0];
  if (!dY) return OD_OK;
  OD_TRY(var_check(ctx, true));
  const char *op = ctx->node->op_type;
  int64_t n = od_tensor_numel(Y);
  if (n <= 0) return OD_OK;
  if (ctx->n_in == 2) { /* no selection needed */
    if (ctx->din[0]) OD_TRY(ew_grad_bcast(ctx, ctx->din[0], dY, ctx->in[0], Y, v_pick0{}, op));
    if (ctx->din[1]) OD_TRY(ew_grad_bcast(ctx, ctx->din[1], dY, ctx->in[0], Y, v_pick1{}, op));
    return OD_OK;
  }
  /* one workspace: the selection, then the scratch of the largest gradient term */
  int last = -1; /* inputs after the last one that wants a gradient cannot change its selection */
  size_t grad_bytes = 0;
  for (int k = 0; k < ctx->n_in; k++) {
    if (!ctx->din[k]) continue;
    size_t b;
    OD_TRY(ew_grad_scratch(ctx, ctx->din[k], dY, op, &b));
    if (b > grad_bytes) grad_bytes = b;
    last = k;
  }
  if (last < 0) return OD_OK;
  size_t sel_bytes = ew_align256((size_t)n * sizeof(float));
  void *ws;
  OD_TRY(od_cuda_workspace(ctx->dev, sel_bytes + grad_bytes, &ws, ctx->err));
  struct od_tensor sel = *Y;
  sel.data = ws;
  OD_TRY(ew_apply_t(ctx, ew_fill{-1.0f}, &sel, NULL));
  for (int k = 0; k <= last; k++) {
    const struct od_tensor *x[3] = {&sel, Y, ctx->in[k]};
    OD_TRY(ew_apply_t(ctx, v_select{(float)k}, &sel, x));
  }
  for (int k = 0; k <= last; k++)
    if (ctx->din[k])
      OD_TRY(ew_grad_bcast(ctx, ctx->din[k], dY, &sel, &sel, v_pickk{(float)k}, op, (char *)ws + sel_bytes));
  return OD_OK;
}

extern "C" enum od_status od_cuda_max_bwd(struct od_kernel_ctx *ctx) { return var_minmax_bwd(ctx); }
extern "C" enum od_status od_cuda_min_bwd(struct od_kernel_ctx *ctx) { return var_minmax_bwd(ctx); }
