/* ops/conv.cu: ONNX Conv on CUDA through cuDNN (float32; the attributes of ops/conv.c: group,
 * strides, pads, dilations, auto_pad, 1-D / 2-D / 3-D, optional B).
 *
 * cuDNN's legacy convolution API (cudnnConvolutionForward / BackwardData / BackwardFilter; cuDNN 9
 * keeps it in libcudnn_cnn) on NCHW tensors, CUDNN_CROSS_CORRELATION (ONNX's Conv is a correlation).
 * A 1-D conv runs as a 2-D one with H = 1. cuDNN pads symmetrically, so asymmetric pads (SAME_UPPER
 * with an odd total, explicit pads begin != end; negative ones too) keep the symmetric part in cuDNN and
 * pad the rest explicitly: X is copied into a zero-bordered buffer in the workspace (a grid-stride
 * kernel), and backward-data writes dX of that buffer, whose interior a second kernel adds into dX.
 *
 * Parallelism is cuDNN's; ours are the two padding kernels (grid-stride, one thread per element).
 * The node state (struct conv_state) keeps the descriptors (one convolution descriptor per
 * direction, each with its own math type) and the algorithm of each direction; it is rebuilt only
 * if the shapes change. In the emulation (CI) cuDNN is the fake of ops/cuda/emu_cudnn.*.
 *
 * Algorithms: chosen once per node (shapes are fixed per compiled program) by measurement,
 * cudnnFind*AlgorithmEx with up to OD_CONV_WS_LIMIT of workspace (set OD_CUDNN_FIND=0 for the
 * heuristics, cudnnGet*Algorithm_v7, instead). The fastest result whose math type the precision
 * allows wins. The device's memo, keyed by shape, geometry and precision, spares repeated layers
 * (ResNet stages, multi-scale programs) the search. Find writes its outputs, so it gets scratch
 * buffers (never din, which backward must accumulate into), allocated for the search and freed.
 *
 * Math (ctx->dev->precision): FP32 -> CUDNN_FMA_MATH (no TF32 tensor cores); TF32 -> CUDNN_DEFAULT_MATH,
 * which lets cuDNN use TF32 on Ampere and later (the choice PyTorch makes for allow_tf32; never
 * CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, which may round to FP16); BF16 -> as TF32 for now.
 *
 * Forward: Y = conv(X, W) (beta 0), then Y += B with cudnnAddTensor. Backward ACCUMULATES:
 * dX += BackwardData (beta 1), dW += BackwardFilter (beta 1), dB += BackwardBias (beta 1); a fresh
 * gradient (ops/op.h din_fresh) is written instead (beta 0; with explicit padding the interior copy
 * stores). A fresh gradient sharing its buffer with another input's (Conv(x, x)) is zeroed first,
 * since dB, dW and dX are not formed in input order.
 *
 * Not on the device (OD_ERR_UNSUPPORTED, so the executor runs the node on the CPU): double, more
 * than 3 spatial dims, dims or element counts beyond int, and C/group == 0. Depthwise convs
 * (group == C == M, dilation 1, kernels up to 7x7) run our own kernels instead, ops/conv_depthwise.cu
 * (cuDNN's NCHW grouped paths are slow for them); OD_CUDA_DEPTHWISE=0 sends them to cuDNN too. */
#include "ops/cuda/common.cuh"

#include <limits.h>
#include <stdlib.h>
#include <string.h>


extern "C" {
#include "ops/conv_depthwise.h"
#include "ops/im2col.h"
}

#ifdef OD_CUDA_EMU
#define OD_CONV_WS_LIMIT ((size_t)1 << 20)   /* the fake cuDNN's algorithms need 4 KiB */
#else
#define OD_CONV_WS_LIMIT ((size_t)512 << 20) /* workspace an algorithm may use */
#endif
#define OD_CONV_ALIGN 256                    /* alignment of the workspace's parts */

enum { DIR_FWD, DIR_BWD_DATA, DIR_BWD_FILTER, DIR_COUNT };

/* What cuDNN sees: dims of X (after explicit padding), W and Y, and the symmetric geometry. Ints
 * only (compared with memcmp, built zeroed). */
struct conv_key {
  int device, precision, nsp, group;
  int x[5], w[5], y[5];
  int pad[3], stride[3], dil[3];
};

/* The algorithm of one direction. */
struct conv_plan {
  bool ready;
  int algo;              /* cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
  cudnnMathType_t math;
  size_t ws;             /* workspace bytes it needs */
};

/* Explicit padding: X (N, C, in...) -> buffer (N, C, padded...), x_pad[p] = x[p - begin]. Spatial
 * dims in cuDNN's view, leading ones 1 (so 1-D and 2-D run as 3-D with extent 1). */
struct conv_pad {
  bool on;
  int64_t nc;
  int64_t in[3], padded[3], begin[3];
};

struct conv_state {
  struct od_node_state base;
  struct conv_key key;
  struct conv_pad pad;
  bool described;
  cudnnTensorDescriptor_t x_desc, y_desc, b_desc;
  cudnnFilterDescriptor_t w_desc;
  cudnnConvolutionDescriptor_t conv[DIR_COUNT]; /* one per direction: each has its own math type */
  struct conv_plan plan[DIR_COUNT];
};

/* ---- explicit padding kernels ---- */

static __global__ void pad_kernel(const float *x, float *xp, struct conv_pad p, int64_t total) {
  int64_t in_plane = p.in[0] * p.in[1] * p.in[2];
  OD_GRID_LOOP(i, total) {
    int64_t q = i, c2 = q % p.padded[2];
    q /= p.padded[2];
    int64_t c1 = q % p.padded[1];
    q /= p.padded[1];
    int64_t c0 = q % p.padded[0], nc = q / p.padded[0];
    int64_t s0 = c0 - p.begin[0], s1 = c1 - p.begin[1], s2 = c2 - p.begin[2];
    bool in = s0 >= 0 && s0 < p.in[0] && s1 >= 0 && s1 < p.in[1] && s2 >= 0 && s2 < p.in[2];
    xp[i] = in ? x[nc * in_plane + (s0 * p.in[1] + s1) * p.in[2] + s2] : 0.0f;
  }
}

/* dx += the interior of dxp (the adjoint of pad_kernel); write: dx = the interior. */
static __global__ void unpad_add_kernel(const float *dxp, float *dx, struct conv_pad p, int64_t total, bool write) {
  int64_t pad_plane = p.padded[0] * p.padded[1] * p.padded[2];
  OD_GRID_LOOP(i, total) {
    int64_t q = i, s2 = q % p.in[2];
    q /= p.in[2];
    int64_t s1 = q % p.in[1];
    q /= p.in[1];
    int64_t s0 = q % p.in[0], nc = q / p.in[0];
    int64_t c0 = s0 + p.begin[0], c1 = s1 + p.begin[1], c2 = s2 + p.begin[2];
    bool in = c0 >= 0 && c0 < p.padded[0] && c1 >= 0 && c1 < p.padded[1] && c2 >= 0 && c2 < p.padded[2];
    float v = in ? dxp[nc * pad_plane + (c0 * p.padded[1] + c1) * p.padded[2] + c2] : 0.0f;
    dx[i] = write ? v : dx[i] + v;
  }
}

static int64_t pad_numel(const struct conv_pad *p) { return p->nc * p->padded[0] * p->padded[1] * p->padded[2]; }
static int64_t in_numel(const struct conv_pad *p) { return p->nc * p->in[0] * p->in[1] * p->in[2]; }

static int64_t key_numel(const int *dims, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) p *= dims[i];
  return p;
}

static size_t align_up(size_t n) { return (n + OD_CONV_ALIGN - 1) / OD_CONV_ALIGN * OD_CONV_ALIGN; }

/* ---- geometry -> cuDNN view ---- */

static bool present(const struct od_tensor *t) { return t && t->dtype != OD_DTYPE_UNDEFINED; }

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* Fills the key and the explicit padding from the node; OD_ERR_UNSUPPORTED where cuDNN cannot run
 * it. *empty is set when the output has no elements (nothing to do). */
static enum od_status conv_setup(struct od_kernel_ctx *ctx, struct conv_key *k, struct conv_pad *pad, bool *empty) {
  const struct od_tensor *x = ctx->in[0], *w = ctx->in[1];
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  const struct od_conv_attrs *a = (const struct od_conv_attrs *)ctx->attrs;
  if (x->dtype != OD_DTYPE_FLOAT || w->dtype != OD_DTYPE_FLOAT || (b && b->dtype != OD_DTYPE_FLOAT))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Conv on CUDA supports float32, not %s",
                      od_dtype_name(x->dtype));
  if (x->rank < 3 || w->rank != x->rank || x->rank > 5)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Conv on CUDA supports 1 to 3 spatial dims (X has rank %d)",
                      x->rank);
  struct od_conv_geom g;
  OD_TRY(od_conv_geom_forward(a, x->rank, x->dims, w->dims, &g, ctx->err));
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], G = a->group;
  *empty = N == 0 || M == 0 || g.out_size == 0;
  if (*empty) return OD_OK;
  if (C == 0 || G < 1 || C % G || M % G || w->dims[1] * G != C)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Conv on CUDA: C = %lld, M = %lld, group = %lld not supported",
                      (long long)C, (long long)M, (long long)G);

  memset(k, 0, sizeof *k);
  memset(pad, 0, sizeof *pad);
  int nsp = g.nd < 2 ? 2 : g.nd, off = nsp - g.nd; /* 1-D: H = 1 in front */
  k->device = ctx->dev->index;
  k->precision = (int)ctx->dev->precision;
  k->nsp = nsp;
  k->group = (int)G;
  int64_t x5[5] = {N, C, 1, 1, 1}, w5[5] = {M, C / G, 1, 1, 1}, y5[5] = {N, M, 1, 1, 1};
  pad->nc = N * C;
  for (int d = 0; d < 3; d++) pad->in[d] = pad->padded[d] = 1;
  for (int d = 0; d < nsp; d++) k->stride[d] = k->dil[d] = 1;
  for (int d = 0; d < g.nd; d++) {
    int cd = off + d;                 /* index among cuDNN's spatial dims */
    int pd = 3 - nsp + cd;            /* index in conv_pad's 3 dims */
    int64_t begin = g.pad[d], end = g.pad_end[d];
    int64_t sym = begin < end ? begin : end;
    if (sym < 0) sym = 0;
    int64_t in = g.in[d], padded = in + (begin - sym) + (end - sym);
    if (begin != sym || end != sym) pad->on = true;
    pad->in[pd] = in;
    pad->padded[pd] = padded;
    pad->begin[pd] = begin - sym;
    int64_t dk = (g.k[d] - 1) * g.dil[d] + 1;
    if (padded + 2 * sym < dk || (padded + 2 * sym - dk) / g.stride[d] + 1 != g.out[d])
      return od_err_set(ctx->err, OD_ERR_INTERNAL, "Conv on CUDA: output size mismatch in spatial dim %d", d);
    if (!fits_int(sym) || !fits_int(g.stride[d]) || !fits_int(g.dil[d]) || !fits_int(padded) || !fits_int(g.k[d]))
      return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Conv on CUDA: spatial dim %d beyond int", d);
    k->pad[cd] = (int)sym;
    k->stride[cd] = (int)g.stride[d];
    k->dil[cd] = (int)g.dil[d];
    x5[2 + cd] = padded;
    w5[2 + cd] = g.k[d];
    y5[2 + cd] = g.out[d];
  }
  int64_t nx = 1, nw = 1, ny = 1;
  for (int i = 0; i < 2 + nsp; i++) {
    nx *= x5[i];
    nw *= w5[i];
    ny *= y5[i];
    if (!fits_int(x5[i]) || !fits_int(w5[i]) || !fits_int(y5[i]) || !fits_int(nx) || !fits_int(nw) || !fits_int(ny))
      return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Conv on CUDA: tensors beyond 2^31 elements");
    k->x[i] = (int)x5[i];
    k->w[i] = (int)w5[i];
    k->y[i] = (int)y5[i];
  }
  if (!fits_int(in_numel(pad)) || !fits_int(pad_numel(pad)))
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Conv on CUDA: tensors beyond 2^31 elements");
  return OD_OK;
}

/* ---- descriptors and node state ---- */

static void conv_state_release(struct conv_state *s) {
  if (!s->described) return;
  if (s->x_desc) (void)cudnnDestroyTensorDescriptor(s->x_desc);
  if (s->y_desc) (void)cudnnDestroyTensorDescriptor(s->y_desc);
  if (s->b_desc) (void)cudnnDestroyTensorDescriptor(s->b_desc);
  if (s->w_desc) (void)cudnnDestroyFilterDescriptor(s->w_desc);
  for (int d = 0; d < DIR_COUNT; d++)
    if (s->conv[d]) (void)cudnnDestroyConvolutionDescriptor(s->conv[d]);
  s->x_desc = s->y_desc = s->b_desc = NULL;
  s->w_desc = NULL;
  for (int d = 0; d < DIR_COUNT; d++) {
    s->conv[d] = NULL;
    s->plan[d].ready = false;
  }
  s->described = false;
}

static void conv_state_destroy(struct od_node_state *self, struct od_device *dev) {
  (void)dev;
  struct conv_state *s = (struct conv_state *)self;
  conv_state_release(s);
  free(s);
}

static void packed_strides(int n, const int *dims, int *st) {
  st[n - 1] = 1;
  for (int i = n - 2; i >= 0; i--) st[i] = st[i + 1] * dims[i + 1];
}

static cudnnMathType_t default_math(int precision) {
  return precision == OD_PRECISION_FP32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

/* Creates the descriptors of s->key (s->described tells conv_state_release what to free). */
static enum od_status conv_describe(struct conv_state *s, struct od_err *err) {
  const struct conv_key *k = &s->key;
  int n = 2 + k->nsp, st[5], bdims[5] = {1, k->y[1], 1, 1, 1}, bst[5];
  s->described = true;
  OD_CUDNN_TRY(err, cudnnCreateTensorDescriptor(&s->x_desc));
  OD_CUDNN_TRY(err, cudnnCreateTensorDescriptor(&s->y_desc));
  OD_CUDNN_TRY(err, cudnnCreateTensorDescriptor(&s->b_desc));
  OD_CUDNN_TRY(err, cudnnCreateFilterDescriptor(&s->w_desc));
  packed_strides(n, k->x, st);
  OD_CUDNN_TRY(err, cudnnSetTensorNdDescriptor(s->x_desc, CUDNN_DATA_FLOAT, n, k->x, st));
  packed_strides(n, k->y, st);
  OD_CUDNN_TRY(err, cudnnSetTensorNdDescriptor(s->y_desc, CUDNN_DATA_FLOAT, n, k->y, st));
  packed_strides(n, bdims, bst);
  OD_CUDNN_TRY(err, cudnnSetTensorNdDescriptor(s->b_desc, CUDNN_DATA_FLOAT, n, bdims, bst));
  OD_CUDNN_TRY(err, cudnnSetFilterNdDescriptor(s->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, n, k->w));
  for (int d = 0; d < DIR_COUNT; d++) {
    OD_CUDNN_TRY(err, cudnnCreateConvolutionDescriptor(&s->conv[d]));
    OD_CUDNN_TRY(err, cudnnSetConvolutionNdDescriptor(s->conv[d], k->nsp, k->pad, k->stride, k->dil,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    OD_CUDNN_TRY(err, cudnnSetConvolutionGroupCount(s->conv[d], k->group));
    OD_CUDNN_TRY(err, cudnnSetConvolutionMathType(s->conv[d], default_math(k->precision)));
  }
  return OD_OK;
}

/* The node's state for key (built, or rebuilt when the shapes changed). With ctx->state NULL the
 * caller's *local is used and the caller releases it. */
static enum od_status conv_state_get(struct od_kernel_ctx *ctx, const struct conv_key *key, const struct conv_pad *pad,
                                     struct conv_state *local, struct conv_state **out) {
  struct conv_state *s;
  if (!ctx->state) {
    s = local;
    memset(s, 0, sizeof *s);
  } else if (*ctx->state) {
    s = (struct conv_state *)*ctx->state;
  } else {
    s = (struct conv_state *)calloc(1, sizeof *s);
    if (!s) return od_err_set(ctx->err, OD_ERR_OOM, "Conv: out of memory for the node state");
    s->base.destroy = conv_state_destroy;
    *ctx->state = &s->base;
  }
  if (s->described && memcmp(&s->key, key, sizeof *key) != 0) conv_state_release(s);
  s->pad = *pad;
  if (!s->described) {
    s->key = *key;
    OD_TRY(conv_describe(s, ctx->err));
  }
  *out = s;
  return OD_OK;
}

/* ---- algorithm choice ---- */

/* Results kept in the device's memo (od_device_memo_*, runtime/device.h): layers of the same shape,
 * and every program on the device (per-size training programs, eval), search once. */
struct conv_memo_key {
  char tag[8]; /* "conv": the memo is shared with other kernels */
  struct conv_key key;
  int dir;
};

static struct conv_memo_key memo_key(const struct conv_key *k, int dir) {
  struct conv_memo_key mk;
  memset(&mk, 0, sizeof mk); /* compared with memcmp: no stray bytes */
  memcpy(mk.tag, "conv", 4);
  mk.key = *k;
  mk.dir = dir;
  return mk;
}

static bool cache_get(struct od_device *dev, const struct conv_key *k, int dir, struct conv_plan *p) {
  struct conv_memo_key mk = memo_key(k, dir);
  return od_device_memo_get(dev, &mk, sizeof mk, p, sizeof *p);
}

static enum od_status cache_put(struct od_device *dev, const struct conv_key *k, int dir, const struct conv_plan *p,
                                struct od_err *err) {
  struct conv_memo_key mk = memo_key(k, dir);
  return od_device_memo_put(dev, &mk, sizeof mk, p, sizeof *p, err);
}

/* The first (fastest) result that succeeded within the workspace and whose math the precision
 * allows: FP32 only FMA kernels (the descriptor stays at FMA_MATH), otherwise anything but a
 * conversion to FP16. */
template <typename Perf>
static bool pick(const Perf *perf, int n, int precision, size_t limit, struct conv_plan *out) {
  for (int i = 0; i < n; i++) {
    const Perf *p = &perf[i];
    if (p->status != CUDNN_STATUS_SUCCESS || p->memory > limit) continue;
    if (p->mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    if (precision == OD_PRECISION_FP32 && p->mathType == CUDNN_TENSOR_OP_MATH) continue;
    out->algo = (int)p->algo;
    out->math = precision == OD_PRECISION_FP32 ? CUDNN_FMA_MATH : p->mathType;
    out->ws = p->memory;
    return true;
  }
  return false;
}

static bool use_find(void) {
  const char *e = getenv("OD_CUDNN_FIND");
  return !(e && e[0] == '0');
}

/* Device scratch for a search: the Find workspace (as much of OD_CONV_WS_LIMIT as the device can
 * give) plus `extra` bytes for output scratch. Freed by search_free. */
struct search_mem {
  void *base;
  size_t ws_bytes;
  char *extra;
};

static enum od_status search_alloc(struct od_kernel_ctx *ctx, size_t extra, struct search_mem *m) {
  struct od_device *dev = ctx->dev;
  struct od_err tmp;
  extra = align_up(extra);
  for (size_t ws = OD_CONV_WS_LIMIT;; ws /= 2) {
    if (ws < OD_CONV_WS_LIMIT / 64) ws = 0;
    if (dev->ops->alloc(dev, extra + ws, &m->base, &tmp) == OD_OK) {
      m->extra = (char *)m->base;
      m->ws_bytes = ws;
      return OD_OK;
    }
    if (ws == 0) return od_err_set(ctx->err, tmp.status, "%s", tmp.msg);
  }
}

static void search_free(struct od_kernel_ctx *ctx, struct search_mem *m) {
  /* Find ran on the handle's stream and synchronises itself; free waits for the device anyway. */
  ctx->dev->ops->free(ctx->dev, m->base);
}

/* Sets the chosen math type on the direction's descriptor and takes the larger of the reported
 * and the queried workspace. */
static enum od_status plan_commit(struct od_kernel_ctx *ctx, struct conv_state *s, int dir, struct conv_plan *p) {
  cudnnHandle_t h = od_cuda_cudnn(ctx->dev);
  size_t ws = 0;
  OD_CUDNN_TRY(ctx->err, cudnnSetConvolutionMathType(s->conv[dir], p->math));
  if (dir == DIR_FWD)
    OD_CUDNN_TRY(ctx->err, cudnnGetConvolutionForwardWorkspaceSize(h, s->x_desc, s->w_desc, s->conv[dir], s->y_desc,
                                                                   (cudnnConvolutionFwdAlgo_t)p->algo, &ws));
  else if (dir == DIR_BWD_DATA)
    OD_CUDNN_TRY(ctx->err, cudnnGetConvolutionBackwardDataWorkspaceSize(h, s->w_desc, s->y_desc, s->conv[dir],
                                                                        s->x_desc,
                                                                        (cudnnConvolutionBwdDataAlgo_t)p->algo, &ws));
  else
    OD_CUDNN_TRY(ctx->err, cudnnGetConvolutionBackwardFilterWorkspaceSize(
                               h, s->x_desc, s->y_desc, s->conv[dir], s->w_desc,
                               (cudnnConvolutionBwdFilterAlgo_t)p->algo, &ws));
  if (ws > p->ws) p->ws = ws;
  p->ready = true;
  s->plan[dir] = *p;
  return OD_OK;
}

/* Measures the algorithms of direction dir with cudnnFind*AlgorithmEx on scratch outputs; false
 * (and no error: the caller falls back to the heuristics) when the search cannot run. x, w, dy are
 * the node's device inputs (x unpadded); y is the forward output, which Find may overwrite. */
static bool plan_find(struct od_kernel_ctx *ctx, struct conv_state *s, int dir, const float *x, const float *w,
                      float *y, const float *dy, struct conv_plan *p) {
  size_t xb = align_up((size_t)pad_numel(&s->pad) * sizeof(float));
  size_t wb = align_up((size_t)key_numel(s->key.w, 2 + s->key.nsp) * sizeof(float));
  size_t extra = (s->pad.on ? xb : 0) + (dir == DIR_BWD_DATA ? xb : 0) + (dir == DIR_BWD_FILTER ? wb : 0);
  struct search_mem m;
  if (search_alloc(ctx, extra, &m) != OD_OK) return false;
  cudnnHandle_t h = od_cuda_cudnn(ctx->dev);
  char *cur = m.extra;
  const float *xe = x;
  if (s->pad.on) { /* the padded X, as the real run will see it */
    int64_t total = pad_numel(&s->pad);
    OD_LAUNCH(pad_kernel, od_cuda_blocks(total), OD_CUDA_THREADS, od_cuda_stream(ctx->dev))(x, (float *)cur, s->pad,
                                                                                          total);
    xe = (const float *)cur;
    cur += xb;
  }
  bool ok = cudaGetLastError() == cudaSuccess; /* cur: the output scratch, then the workspace */
  void *ws = cur + (dir == DIR_BWD_DATA ? xb : dir == DIR_BWD_FILTER ? wb : 0);
  int n = 0, prec = s->key.precision;
  if (ok && dir == DIR_FWD) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    ok = cudnnFindConvolutionForwardAlgorithmEx(h, s->x_desc, xe, s->w_desc, w, s->conv[dir], s->y_desc, y,
                                                CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, ws,
                                                m.ws_bytes) == CUDNN_STATUS_SUCCESS &&
         pick(perf, n, prec, m.ws_bytes, p);
  } else if (ok && dir == DIR_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    ok = cudnnFindConvolutionBackwardDataAlgorithmEx(h, s->w_desc, w, s->y_desc, dy, s->conv[dir], s->x_desc, cur,
                                                     CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf, ws,
                                                     m.ws_bytes) == CUDNN_STATUS_SUCCESS &&
         pick(perf, n, prec, m.ws_bytes, p);
  } else if (ok) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    ok = cudnnFindConvolutionBackwardFilterAlgorithmEx(h, s->x_desc, xe, s->y_desc, dy, s->conv[dir], s->w_desc, cur,
                                                       CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf, ws,
                                                       m.ws_bytes) == CUDNN_STATUS_SUCCESS &&
         pick(perf, n, prec, m.ws_bytes, p);
  }
  search_free(ctx, &m);
  return ok;
}

/* cuDNN's ranking of direction dir without running anything (cudnnGet*Algorithm_v7). */
static enum od_status plan_heuristic(struct od_kernel_ctx *ctx, struct conv_state *s, int dir, struct conv_plan *p) {
  cudnnHandle_t h = od_cuda_cudnn(ctx->dev);
  int n = 0, prec = s->key.precision;
  bool found;
  if (dir == DIR_FWD) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    OD_CUDNN_TRY(ctx->err, cudnnGetConvolutionForwardAlgorithm_v7(h, s->x_desc, s->w_desc, s->conv[dir], s->y_desc,
                                                                  CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    found = pick(perf, n, prec, OD_CONV_WS_LIMIT, p);
  } else if (dir == DIR_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    OD_CUDNN_TRY(ctx->err, cudnnGetConvolutionBackwardDataAlgorithm_v7(h, s->w_desc, s->y_desc, s->conv[dir],
                                                                       s->x_desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                       &n, perf));
    found = pick(perf, n, prec, OD_CONV_WS_LIMIT, p);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    OD_CUDNN_TRY(ctx->err, cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, s->x_desc, s->y_desc, s->conv[dir],
                                                                         s->w_desc,
                                                                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n,
                                                                         perf));
    found = pick(perf, n, prec, OD_CONV_WS_LIMIT, p);
  }
  if (!found)
    return od_err_set(ctx->err, OD_ERR_UNSUPPORTED, "Conv: cuDNN offers no algorithm (direction %d) for this shape",
                      dir);
  return OD_OK;
}

/* Chooses the algorithm of direction dir once: the device's memo, else Find (only with a
 * persistent node state: one search per node, not per call), else the heuristics. */
static enum od_status plan_ensure(struct od_kernel_ctx *ctx, struct conv_state *s, int dir, const float *x,
                                  const float *w, float *y, const float *dy) {
  if (s->plan[dir].ready) return OD_OK;
  struct conv_plan p = {};
  if (cache_get(ctx->dev, &s->key, dir, &p)) return plan_commit(ctx, s, dir, &p);
  bool measured = use_find() && ctx->state && plan_find(ctx, s, dir, x, w, y, dy, &p);
  if (!measured) OD_TRY(plan_heuristic(ctx, s, dir, &p));
  OD_TRY(plan_commit(ctx, s, dir, &p));
  if (measured) OD_TRY(cache_put(ctx->dev, &s->key, dir, &s->plan[dir], ctx->err)); /* heuristic picks are not shared */
  return OD_OK;
}

/* ---- forward ---- */

static enum od_status conv_fwd(struct od_kernel_ctx *ctx, struct conv_state *s) {
  const float *x = (const float *)ctx->in[0]->data, *w = (const float *)ctx->in[1]->data;
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  float *y = (float *)ctx->out[0]->data;
  OD_TRY(plan_ensure(ctx, s, DIR_FWD, x, w, y, NULL));
  const struct conv_plan *p = &s->plan[DIR_FWD];
  size_t xb = s->pad.on ? align_up((size_t)pad_numel(&s->pad) * sizeof(float)) : 0;
  void *ws = NULL;
  if (xb + p->ws) OD_TRY(od_cuda_workspace(ctx->dev, xb + p->ws, &ws, ctx->err));
  const float *xe = x;
  if (s->pad.on) {
    int64_t total = pad_numel(&s->pad);
    OD_LAUNCH(pad_kernel, od_cuda_blocks(total), OD_CUDA_THREADS, od_cuda_stream(ctx->dev))(x, (float *)ws, s->pad,
                                                                                          total);
    OD_CUDA_LAUNCHED(ctx);
    xe = (const float *)ws;
  }
  cudnnHandle_t h = od_cuda_cudnn(ctx->dev);
  const float one = 1.0f, zero = 0.0f;
  void *alg_ws = p->ws ? (char *)ws + xb : NULL;
  OD_CUDNN_TRY(ctx->err, cudnnConvolutionForward(h, &one, s->x_desc, xe, s->w_desc, w, s->conv[DIR_FWD],
                                                 (cudnnConvolutionFwdAlgo_t)p->algo, alg_ws, p->ws, &zero,
                                                 s->y_desc, y));
  if (b) OD_CUDNN_TRY(ctx->err, cudnnAddTensor(h, &one, s->b_desc, b->data, &one, s->y_desc, y));
  return OD_OK;
}

extern "C" enum od_status od_cuda_conv_fwd(struct od_kernel_ctx *ctx) {
  bool depthwise;
  enum od_status dst = od_cuda_depthwise_fwd(ctx, &depthwise);
  if (depthwise) return dst;
  struct conv_key key;
  struct conv_pad pad;
  bool empty;
  OD_TRY(conv_setup(ctx, &key, &pad, &empty));
  if (empty) return OD_OK;
  struct conv_state local, *s;
  enum od_status st = conv_state_get(ctx, &key, &pad, &local, &s);
  if (st == OD_OK) st = conv_fwd(ctx, s);
  if (!ctx->state) conv_state_release(&local);
  return st;
}

/* ---- backward ---- */

static enum od_status conv_bwd(struct od_kernel_ctx *ctx, struct conv_state *s) {
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  struct od_tensor *dxt = ctx->din[0], *dwt = ctx->n_in > 1 ? ctx->din[1] : NULL, *dbt = b ? ctx->din[2] : NULL;
  const float *x = (const float *)ctx->in[0]->data, *w = (const float *)ctx->in[1]->data;
  const float *dy = (const float *)ctx->dout[0]->data;
  cudnnHandle_t h = od_cuda_cudnn(ctx->dev);
  cudaStream_t stream = od_cuda_stream(ctx->dev);
  const float one = 1.0f, zero = 0.0f;
  /* the algorithms first: a search or a decline must come before any gradient is touched */
  if (dxt) OD_TRY(plan_ensure(ctx, s, DIR_BWD_DATA, x, w, NULL, dy));
  if (dwt) OD_TRY(plan_ensure(ctx, s, DIR_BWD_FILTER, x, w, NULL, dy));
  OD_TRY(od_cuda_fresh_unalias(ctx));
  bool wx = od_cuda_fresh(ctx, 0), ww = od_cuda_fresh(ctx, 1), wb = od_cuda_fresh(ctx, 2);
  if (dbt)
    OD_CUDNN_TRY(ctx->err, cudnnConvolutionBackwardBias(h, &one, s->y_desc, dy, wb ? &zero : &one, s->b_desc,
                                                        dbt->data));
  if (!dxt && !dwt) return OD_OK;

  /* workspace: [padded X (dW) | padded dX (dX) | the larger algorithm workspace] */
  size_t pb = s->pad.on ? align_up((size_t)pad_numel(&s->pad) * sizeof(float)) : 0;
  size_t xpb = dwt ? pb : 0, dxpb = dxt ? pb : 0;
  size_t alg = 0;
  if (dxt && s->plan[DIR_BWD_DATA].ws > alg) alg = s->plan[DIR_BWD_DATA].ws;
  if (dwt && s->plan[DIR_BWD_FILTER].ws > alg) alg = s->plan[DIR_BWD_FILTER].ws;
  char *ws = NULL;
  if (xpb + dxpb + alg) OD_TRY(od_cuda_workspace(ctx->dev, xpb + dxpb + alg, (void **)&ws, ctx->err));
  char *alg_ws = alg ? ws + xpb + dxpb : NULL;

  if (dwt) {
    const float *xe = x;
    if (s->pad.on) {
      int64_t total = pad_numel(&s->pad);
      OD_LAUNCH(pad_kernel, od_cuda_blocks(total), OD_CUDA_THREADS, stream)(x, (float *)ws, s->pad, total);
      OD_CUDA_LAUNCHED(ctx);
      xe = (const float *)ws;
    }
    const struct conv_plan *p = &s->plan[DIR_BWD_FILTER];
    OD_CUDNN_TRY(ctx->err, cudnnConvolutionBackwardFilter(h, &one, s->x_desc, xe, s->y_desc, dy,
                                                          s->conv[DIR_BWD_FILTER],
                                                          (cudnnConvolutionBwdFilterAlgo_t)p->algo, alg_ws, p->ws,
                                                          ww ? &zero : &one, s->w_desc, dwt->data));
  }
  if (dxt) {
    const struct conv_plan *p = &s->plan[DIR_BWD_DATA];
    float *dxe = s->pad.on ? (float *)(ws + xpb) : (float *)dxt->data;
    OD_CUDNN_TRY(ctx->err, cudnnConvolutionBackwardData(h, &one, s->w_desc, w, s->y_desc, dy, s->conv[DIR_BWD_DATA],
                                                        (cudnnConvolutionBwdDataAlgo_t)p->algo, alg_ws, p->ws,
                                                        s->pad.on || wx ? &zero : &one, s->x_desc, dxe));
    if (s->pad.on) {
      int64_t total = in_numel(&s->pad);
      OD_LAUNCH(unpad_add_kernel, od_cuda_blocks(total), OD_CUDA_THREADS, stream)(dxe, (float *)dxt->data, s->pad,
                                                                                 total, wx);
      OD_CUDA_LAUNCHED(ctx);
    }
  }
  return OD_OK;
}

extern "C" enum od_status od_cuda_conv_bwd(struct od_kernel_ctx *ctx) {
  if (!ctx->dout[0]) return OD_OK; /* one output: there when the backward runs */
  bool depthwise;
  enum od_status dst = od_cuda_depthwise_bwd(ctx, &depthwise);
  if (depthwise) return dst;
  struct conv_key key;
  struct conv_pad pad;
  bool empty;
  OD_TRY(conv_setup(ctx, &key, &pad, &empty));
  if (empty) return od_cuda_fresh_zero(ctx, 7u); /* no output: the gradients are 0 */
  struct conv_state local, *s;
  enum od_status st = conv_state_get(ctx, &key, &pad, &local, &s);
  if (st == OD_OK) st = conv_bwd(ctx, s);
  if (!ctx->state) conv_state_release(&local);
  return st;
}
