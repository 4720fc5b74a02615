/* ops/conv_depthwise.cu: depthwise Conv on CUDA (float32 NCHW, group == C == M, dilation 1, kernels
 * up to 7 x 7, any stride and pads), forward and backward, instead of cuDNN (ops/conv.cu calls these
 * first; ops/conv_depthwise.h says which nodes qualify). The math is ops/conv.c's depthwise path:
 *
 *   Y[n,c,oh,ow]  = B[c] + sum_{kh,kw} W[c,kh,kw] X[n,c, oh*sh - ph + kh, ow*sw - pw + kw]
 *   dX[n,c,ih,iw] += sum over the (oh, ow, kh, kw) with ih = oh*sh - ph + kh, iw = ow*sw - pw + kw
 *                    of W[c,kh,kw] dY[n,c,oh,ow]                                  (a gather: no atomics)
 *   dW[c,kh,kw]   += sum_{n,oh,ow} dY[n,c,oh,ow] X[n,c, oh*sh - ph + kh, ow*sw - pw + kw]
 *   dB[c]         += sum_{n,oh,ow} dY[n,c,oh,ow]
 * (taps outside the image read zero; pads are the begin pads, the end pads only size the output).
 *
 * Square K x K kernels, K in {3, 5, 7}, with sh == sw == S in {1, 2} run "strip" kernels with K, S
 * and the strip height R as template constants (loops unrolled, the taps and input window in
 * registers). A thread owns one column and R consecutive rows of the plane it writes: consecutive
 * threads of a block take consecutive columns (coalesced loads and stores), the block is a tile of
 * TX columns x (256 / TX) strips (TX the power of two >= the width, 8..32). Each thread loads the
 * input window of its strip once ((R-1)*S + K rows of K values: 4.5 loads per output at 3x3 S1 instead
 * of 9) and its channel's taps once per channel:
 *   dw_fwd:         grid (tiles of the output plane, channel x image-slices); a block keeps its
 *                   channel's taps and walks its slice of the images (taps loaded once per N/slices
 *                   planes). Y = B + sum.
 *   dw_bwd_data:    the adjoint as a gather over dX (same grid over the input plane). Strips start
 *                   at rows where ih + ph is a multiple of S, so which taps reach which row is a
 *                   compile-time fact; along W each thread selects its taps by the parity
 *                   (iw + pw) mod S. At S = 1 this is the correlation of dY with the flipped kernel.
 *                   dX += sum.
 *   dw_bwd_filter:  grid (chunks, channels): a block walks its chunk of the channel's (image, tile)
 *                   units, each thread accumulating all K*K taps and the bias sum of its strips in
 *                   registers (one pass over dY and X; float32 per unit, added into double sums);
 *                   then a shared-memory tree per block (groups of 10 sums) writes the chunk's
 *                   partials to the workspace, and dw_finish (a thread per channel and tap) adds
 *                   the chunks in order to dW, dB. Deterministic, no atomics.
 * Every other shape (rectangular or 1-D kernels, strides other than 1 and 2 or unequal, K = 2, 4, 6)
 * runs generic kernels with runtime taps: one output (forward) or one dX element (backward-data) per
 * thread in a grid-stride loop, and for dW a block per (chunk, channel) that reduces one tap at a
 * time, then the same dw_finish.
 *
 * Fresh gradients (ops/op.h din_fresh): dX is stored instead of added by the same kernels (every
 * dX element is visited), dW and dB by dw_finish (a run-time flag each); a fresh gradient sharing its
 * buffer with another input's is zeroed first (dW and dB are formed before dX).
 *
 * Accumulation: float32 for Y and dX (K*K terms); dW and dB in double across units (dw_sum_t).
 * The precision mode (FP32/TF32/BF16) does not change these kernels: FP32 FMA always (no tensor
 * cores; the kernels are bound by memory traffic, not arithmetic). */
#include "ops/cuda/common.cuh"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "ops/conv_depthwise.h"
#include "ops/im2col.h"
}

#ifdef OD_CUDA_EMU
#define DW_UNROLL _Pragma("GCC unroll 64")
#else
#define DW_UNROLL _Pragma("unroll")
#endif

#define DW_THREADS 256      /* threads per block (power of two: the reduction trees) */
#define DW_GROUP 10         /* sums reduced together by one tree in dw_bwd_filter */
#define DW_TARGET_BLOCKS 2048 /* blocks a launch aims for (about 2 waves of 8 blocks on 132 SMs) */
#define DW_MIN_UNITS 4      /* dw_bwd_filter: (image, tile) units per block at least */
#define DW_GENERIC_CHUNK 2048 /* generic dW: elements of a channel per block at least */
/* Resident blocks per SM the strip kernels ask the compiler to allow (a register cap: 85 per thread
 * for 3x3, 128 for the bigger windows; each thread keeps its whole input window in flight). dW's
 * kernel also holds K*K + 1 double sums: 7x7 gets the whole register file (no spills). */
#define DW_MIN_BLOCKS(K) ((K) == 3 ? 3 : 2)
#define DW_MIN_BLOCKS_FILTER(K) ((K) == 3 ? 3 : (K) == 5 ? 2 : 1)

/* dW and dB sums across a thread's units, the block trees and the chunks: float32 products and
 * per-unit sums added into double, so that a channel's sum over N*OH*OW positions (185k terms in
 * MobileNet's third layer at batch 8) keeps ~1e-5 absolute accuracy where the terms cancel (float
 * throughout drifts by ~2e-4; the loads, not these adds, bound the kernel). */
typedef double dw_sum_t;

/* Geometry, as ints (the caller checks that every tensor has fewer than 2^31 elements). 1-D convs
 * have H = OH = KH = 1. ph, pw: begin pads. */
struct dw_geom {
  int N, C, H, W, OH, OW, KH, KW, sh, sw, ph, pw;
};

/* Tiling of the plane a strip kernel walks: tiles of TX = 1 << tx_log2 columns x (DW_THREADS / TX)
 * strips of R rows; strip s starts at row s * R - row_off. For the forward and dW the plane is the
 * output's (row_off 0); for dX the input's. nsplit: image slices per channel (dw_fwd, dw_bwd_data). */
struct dw_tiles {
  int tx_log2, tiles_x, tiles, row_off, nsplit;
};

static __device__ __forceinline__ int dw_pmod(int a, int s) {
  int r = a % s;
  return r < 0 ? r + s : r;
}

/* ---- strip kernels (K x K, stride S in both dims, R rows per thread) ---- */

template <int K, int S, int R>
static __global__ void __launch_bounds__(DW_THREADS, DW_MIN_BLOCKS(K))
    dw_fwd(const float *__restrict__ x, const float *__restrict__ w, const float *__restrict__ b,
           float *__restrict__ y, struct dw_geom g, struct dw_tiles t) {
  constexpr int NR = (R - 1) * S + K; /* input rows of a strip */
  const int tx = 1 << t.tx_log2;
  int tyi = (int)blockIdx.x / t.tiles_x, txi = (int)blockIdx.x - tyi * t.tiles_x;
  int ow = txi * tx + ((int)threadIdx.x & (tx - 1));
  int oh0 = (tyi * (DW_THREADS >> t.tx_log2) + ((int)threadIdx.x >> t.tx_log2)) * R;
  if (ow >= g.OW || oh0 >= g.OH) return; /* no barriers in this kernel */
  int ih0 = oh0 * S - g.ph, iw0 = ow * S - g.pw;
  bool colok[K], rowok[NR];
  DW_UNROLL for (int k = 0; k < K; k++) colok[k] = (unsigned)(iw0 + k) < (unsigned)g.W;
  DW_UNROLL for (int i = 0; i < NR; i++) rowok[i] = (unsigned)(ih0 + i) < (unsigned)g.H;
  int plane_in = g.H * g.W, plane_out = g.OH * g.OW, ncs = g.C * t.nsplit;
  for (int cs = (int)blockIdx.y; cs < ncs; cs += (int)gridDim.y) {
    int c = cs / t.nsplit, split = cs - c * t.nsplit;
    float wr[K * K];
    DW_UNROLL for (int i = 0; i < K * K; i++) wr[i] = w[c * K * K + i];
    float bias = b ? b[c] : 0.0f;
    for (int n = split; n < g.N; n += t.nsplit) {
      const float *xp = x + (size_t)(n * g.C + c) * plane_in;
      float xv[NR][K];
      DW_UNROLL for (int i = 0; i < NR; i++) {
        int row = (ih0 + i) * g.W + iw0;
        DW_UNROLL for (int k = 0; k < K; k++) xv[i][k] = rowok[i] && colok[k] ? xp[row + k] : 0.0f;
      }
      float *yp = y + (size_t)(n * g.C + c) * plane_out + oh0 * g.OW + ow;
      DW_UNROLL for (int r = 0; r < R; r++) {
        float acc = bias;
        DW_UNROLL for (int kh = 0; kh < K; kh++) {
          DW_UNROLL for (int kw = 0; kw < K; kw++) acc += wr[kh * K + kw] * xv[r * S + kh][kw];
        }
        if (oh0 + r < g.OH) yp[r * g.OW] = acc;
      }
    }
  }
}

/* dX += the gather of W * dY. Strip s covers input rows ih0 .. ih0 + R - 1 with ih0 = s*R - row_off,
 * row_off = ph mod S, so (ih0 + ph) is a multiple of S and B = (ih0 + ph) / S is the dY row that
 * tap 0 of row 0 reads: row r takes tap kh iff (r - kh) is a multiple of S, from dY row
 * B + (r - kh) / S. Along W, iw + pw = a*S + e: tap kw reaches iw from dY column a + d where
 * kw = e - S*d (d = DLO .. 0), a per-thread selection of the taps made once per channel. */
template <int K, int S, int R>
static __global__ void __launch_bounds__(DW_THREADS, DW_MIN_BLOCKS(K))
    dw_bwd_data(const float *__restrict__ w, const float *__restrict__ dy, float *__restrict__ dx, struct dw_geom g,
                struct dw_tiles t, bool write) {
  static_assert(R % S == 0, "strip height must be a multiple of the stride");
  constexpr int JLO = -((K - 1) / S), NJ = (R - 1) / S - JLO + 1; /* dY rows of a strip */
  constexpr int DLO = -((K - 1) / S), ND = 1 - DLO;               /* dY columns of a thread */
  const int tx = 1 << t.tx_log2;
  int tyi = (int)blockIdx.x / t.tiles_x, txi = (int)blockIdx.x - tyi * t.tiles_x;
  int iw = txi * tx + ((int)threadIdx.x & (tx - 1));
  int strip = tyi * (DW_THREADS >> t.tx_log2) + ((int)threadIdx.x >> t.tx_log2);
  int ih0 = strip * R - t.row_off;
  if (iw >= g.W || ih0 >= g.H) return; /* no barriers in this kernel */
  int B = strip * (R / S) + (g.ph - t.row_off) / S; /* exact: g.ph - row_off is a multiple of S */
  int q = iw + g.pw, e = dw_pmod(q, S), a = (q - e) / S;
  bool rowok[NJ], colok[ND];
  int kwsel[ND];
  DW_UNROLL for (int j = 0; j < NJ; j++) rowok[j] = (unsigned)(B + JLO + j) < (unsigned)g.OH;
  DW_UNROLL for (int d = 0; d < ND; d++) {
    colok[d] = (unsigned)(a + DLO + d) < (unsigned)g.OW;
    kwsel[d] = e - S * (DLO + d); /* >= 0; a tap only where < K */
  }
  int plane_in = g.H * g.W, plane_out = g.OH * g.OW, ncs = g.C * t.nsplit;
  for (int cs = (int)blockIdx.y; cs < ncs; cs += (int)gridDim.y) {
    int c = cs / t.nsplit, split = cs - c * t.nsplit;
    float ws[K][ND];
    DW_UNROLL for (int kh = 0; kh < K; kh++) {
      DW_UNROLL for (int d = 0; d < ND; d++) ws[kh][d] = kwsel[d] < K ? w[(c * K + kh) * K + kwsel[d]] : 0.0f;
    }
    for (int n = split; n < g.N; n += t.nsplit) {
      const float *dyp = dy + (size_t)(n * g.C + c) * plane_out;
      float dv[NJ][ND];
      DW_UNROLL for (int j = 0; j < NJ; j++) {
        int row = (B + JLO + j) * g.OW + a + DLO;
        DW_UNROLL for (int d = 0; d < ND; d++) dv[j][d] = rowok[j] && colok[d] ? dyp[row + d] : 0.0f;
      }
      float *dxp = dx + (size_t)(n * g.C + c) * plane_in + iw;
      DW_UNROLL for (int r = 0; r < R; r++) {
        float acc = 0.0f;
        DW_UNROLL for (int kh = 0; kh < K; kh++) {
          if ((r - kh) % S != 0) continue; /* compile-time */
          const int j = (r - kh) / S - JLO;
          DW_UNROLL for (int d = 0; d < ND; d++) acc += ws[kh][d] * dv[j][d];
        }
        int ih = ih0 + r;
        if ((unsigned)ih < (unsigned)g.H) dxp[ih * g.W] = write ? acc : dxp[ih * g.W] + acc;
      }
    }
  }
}

/* Sums each of v[0..NS) over the block (a shared-memory tree for all of them at once): thread i < NS
 * gets the sum of v[i]. Every thread must call it; sh is free again when it returns. */
template <int NS, typename T>
static __device__ __forceinline__ T dw_block_sums(T (*sh)[DW_THREADS], const T (&v)[NS]) {
  unsigned tid = threadIdx.x;
  DW_UNROLL for (int i = 0; i < NS; i++) sh[i][tid] = v[i];
  __syncthreads();
  for (unsigned s = DW_THREADS / 2; s > 0; s >>= 1) {
    if (tid < s) {
      DW_UNROLL for (int i = 0; i < NS; i++) sh[i][tid] += sh[i][tid + s];
    }
    __syncthreads();
  }
  T r = tid < (unsigned)NS ? sh[tid][0] : T(0);
  __syncthreads();
  return r;
}

/* partial[(c * nchunk + chunk) * (K*K + 1) + tap] = the chunk's sum of dY * X (tap < K*K) and of
 * dY (tap K*K). A block walks units [u0, u1) of its channel: unit u = image u / tiles, tile
 * u % tiles of the output plane. A thread sums each unit's R rows in float32 and adds that into its
 * dw_sum_t sums. */
template <int K, int S, int R>
static __global__ void __launch_bounds__(DW_THREADS, DW_MIN_BLOCKS_FILTER(K))
    dw_bwd_filter(const float *__restrict__ x, const float *__restrict__ dy, dw_sum_t *__restrict__ partial,
                  struct dw_geom g, struct dw_tiles t, int units_per_chunk) {
  constexpr int NR = (R - 1) * S + K, T = K * K + 1;
  __shared__ dw_sum_t sh[DW_GROUP][DW_THREADS];
  const int tx = 1 << t.tx_log2, ty = DW_THREADS >> t.tx_log2;
  int lane = (int)threadIdx.x & (tx - 1), srow = (int)threadIdx.x >> t.tx_log2;
  int nchunk = (int)gridDim.x, units = g.N * t.tiles;
  int u0 = (int)blockIdx.x * units_per_chunk, u1 = u0 + units_per_chunk < units ? u0 + units_per_chunk : units;
  int plane_in = g.H * g.W, plane_out = g.OH * g.OW;
  for (int c = (int)blockIdx.y; c < g.C; c += (int)gridDim.y) {
    dw_sum_t acc[T];
    DW_UNROLL for (int i = 0; i < T; i++) acc[i] = 0;
    for (int u = u0; u < u1; u++) {
      int n = u / t.tiles, tile = u - n * t.tiles;
      int tyi = tile / t.tiles_x, txi = tile - tyi * t.tiles_x;
      int ow = txi * tx + lane, oh0 = (tyi * ty + srow) * R;
      if (ow >= g.OW || oh0 >= g.OH) continue;
      int ih0 = oh0 * S - g.ph, iw0 = ow * S - g.pw;
      const float *xp = x + (size_t)(n * g.C + c) * plane_in;
      const float *dyp = dy + (size_t)(n * g.C + c) * plane_out + oh0 * g.OW + ow;
      float dv[R], xv[NR][K];
      DW_UNROLL for (int r = 0; r < R; r++) dv[r] = oh0 + r < g.OH ? dyp[r * g.OW] : 0.0f;
      DW_UNROLL for (int i = 0; i < NR; i++) {
        bool rowok = (unsigned)(ih0 + i) < (unsigned)g.H;
        int row = (ih0 + i) * g.W + iw0;
        DW_UNROLL for (int k = 0; k < K; k++)
          xv[i][k] = rowok && (unsigned)(iw0 + k) < (unsigned)g.W ? xp[row + k] : 0.0f;
      }
      float part[T];
      DW_UNROLL for (int i = 0; i < T; i++) part[i] = 0.0f;
      DW_UNROLL for (int r = 0; r < R; r++) {
        DW_UNROLL for (int kh = 0; kh < K; kh++) {
          DW_UNROLL for (int kw = 0; kw < K; kw++) part[kh * K + kw] += dv[r] * xv[r * S + kh][kw];
        }
        part[K * K] += dv[r];
      }
      DW_UNROLL for (int i = 0; i < T; i++) acc[i] += part[i];
    }
    dw_sum_t *out = partial + ((size_t)c * nchunk + blockIdx.x) * T;
    DW_UNROLL for (int g0 = 0; g0 < T; g0 += DW_GROUP) {
      dw_sum_t v[DW_GROUP];
      DW_UNROLL for (int i = 0; i < DW_GROUP; i++) v[i] = g0 + i < T ? acc[g0 + i] : 0;
      dw_sum_t s = dw_block_sums(sh, v);
      if (threadIdx.x < DW_GROUP && g0 + (int)threadIdx.x < T) out[g0 + threadIdx.x] = s;
    }
  }
}

/* ---- generic kernels (runtime taps, any stride, 1-D and 2-D) ---- */

static __global__ void dw_fwd_generic(const float *__restrict__ x, const float *__restrict__ w,
                                      const float *__restrict__ b, float *__restrict__ y, struct dw_geom g,
                                      int total) {
  OD_GRID_LOOP(i, total) {
    int idx = (int)i, ow = idx % g.OW, q = idx / g.OW, oh = q % g.OH, nc = q / g.OH, c = nc % g.C;
    const float *xp = x + (size_t)nc * g.H * g.W, *wp = w + c * g.KH * g.KW;
    float acc = b ? b[c] : 0.0f;
    int ih0 = oh * g.sh - g.ph, iw0 = ow * g.sw - g.pw;
    for (int kh = 0; kh < g.KH; kh++) {
      int ih = ih0 + kh;
      if ((unsigned)ih >= (unsigned)g.H) continue;
      for (int kw = 0; kw < g.KW; kw++) {
        int iw = iw0 + kw;
        if ((unsigned)iw < (unsigned)g.W) acc += wp[kh * g.KW + kw] * xp[ih * g.W + iw];
      }
    }
    y[idx] = acc;
  }
}

static __global__ void dw_bwd_data_generic(const float *__restrict__ w, const float *__restrict__ dy,
                                           float *__restrict__ dx, struct dw_geom g, int total, bool write) {
  OD_GRID_LOOP(i, total) {
    int idx = (int)i, iw = idx % g.W, q = idx / g.W, ih = q % g.H, nc = q / g.H, c = nc % g.C;
    const float *dyp = dy + (size_t)nc * g.OH * g.OW, *wp = w + c * g.KH * g.KW;
    float acc = 0.0f;
    for (int kh = 0; kh < g.KH; kh++) {
      int th = ih + g.ph - kh; /* = oh * sh */
      if (th < 0 || th % g.sh) continue;
      int oh = th / g.sh;
      if (oh >= g.OH) continue;
      for (int kw = 0; kw < g.KW; kw++) {
        int tw = iw + g.pw - kw;
        if (tw < 0 || tw % g.sw) continue;
        int ow = tw / g.sw;
        if (ow < g.OW) acc += wp[kh * g.KW + kw] * dyp[oh * g.OW + ow];
      }
    }
    dx[idx] = write ? acc : dx[idx] + acc;
  }
}

/* partial[(c * nchunk + chunk) * T + tap], T = KH*KW + 1: block (chunk, c) sums its chunk of the
 * channel's N*OH*OW positions, one tap after the other (the last "tap" is dB's sum of dY). */
static __global__ void dw_bwd_filter_generic(const float *__restrict__ x, const float *__restrict__ dy,
                                             dw_sum_t *__restrict__ partial, struct dw_geom g, int chunk) {
  __shared__ dw_sum_t sh[1][DW_THREADS];
  int T = g.KH * g.KW + 1, nchunk = (int)gridDim.x, P = g.OH * g.OW, M = g.N * P;
  int v0 = (int)blockIdx.x * chunk, v1 = v0 + chunk < M ? v0 + chunk : M;
  for (int c = (int)blockIdx.y; c < g.C; c += (int)gridDim.y) {
    for (int tap = 0; tap < T; tap++) {
      int kh = tap / g.KW, kw = tap - kh * g.KW;
      dw_sum_t acc = 0;
      for (int v = v0 + (int)threadIdx.x; v < v1; v += DW_THREADS) {
        int n = v / P, p = v - n * P, oh = p / g.OW, ow = p - oh * g.OW;
        float d = dy[(size_t)(n * g.C + c) * P + p];
        if (tap == T - 1) {
          acc += d;
          continue;
        }
        int ih = oh * g.sh - g.ph + kh, iw = ow * g.sw - g.pw + kw;
        if ((unsigned)ih < (unsigned)g.H && (unsigned)iw < (unsigned)g.W)
          acc += d * x[(size_t)(n * g.C + c) * g.H * g.W + ih * g.W + iw];
      }
      dw_sum_t v[1] = {acc};
      dw_sum_t s = dw_block_sums(sh, v);
      if (threadIdx.x == 0) partial[((size_t)c * nchunk + blockIdx.x) * T + tap] = s;
    }
  }
}

/* dW[c, tap] += sum over chunks of partial (in chunk order); dB[c] += the last tap's (ww, wb: = instead). */
static __global__ void dw_finish(const dw_sum_t *__restrict__ partial, float *__restrict__ dw, float *__restrict__ db,
                                 int C, int T, int nchunk, bool ww, bool wb) {
  OD_GRID_LOOP(i, (int64_t)C * T) {
    int c = (int)(i / T), tap = (int)(i % T);
    const dw_sum_t *p = partial + (size_t)c * nchunk * T + tap;
    dw_sum_t s = 0;
    for (int k = 0; k < nchunk; k++) s += p[(size_t)k * T];
    if (tap < T - 1) {
      if (dw) dw[c * (T - 1) + tap] = ww ? (float)s : dw[c * (T - 1) + tap] + (float)s;
    } else if (db) {
      db[c] = wb ? (float)s : db[c] + (float)s;
    }
  }
}

/* ---- host side ---- */

static bool present(const struct od_tensor *t) { return t && t->dtype != OD_DTYPE_UNDEFINED; }

static bool enabled(void) {
  const char *e = getenv("OD_CUDA_DEPTHWISE");
  return !(e && e[0] == '0' && e[1] == '\0');
}

/* Fills g when the node is one this file handles (see ops/conv_depthwise.h); false otherwise, with
 * no error set. *empty: nothing to compute (no output elements). */
static bool dw_setup(struct od_kernel_ctx *ctx, struct dw_geom *g, bool *empty) {
  const struct od_tensor *x = ctx->in[0], *w = ctx->n_in > 1 ? ctx->in[1] : NULL;
  const struct od_tensor *b = ctx->n_in > 2 && present(ctx->in[2]) ? ctx->in[2] : NULL;
  const struct od_conv_attrs *a = (const struct od_conv_attrs *)ctx->attrs;
  if (!enabled() || !x || !w) return false;
  if (x->dtype != OD_DTYPE_FLOAT || w->dtype != OD_DTYPE_FLOAT || (b && b->dtype != OD_DTYPE_FLOAT)) return false;
  if ((x->rank != 3 && x->rank != 4) || w->rank != x->rank) return false;
  int64_t N = x->dims[0], C = x->dims[1];
  if (a->group != C || w->dims[0] != C || w->dims[1] != 1 || (b && (b->rank != 1 || b->dims[0] != C))) return false;
  struct od_conv_geom cg;
  struct od_err tmp = {};
  if (od_conv_geom_forward(a, x->rank, x->dims, w->dims, &cg, &tmp) != OD_OK) return false;
  for (int d = 0; d < cg.nd; d++)
    if (cg.dil[d] != 1 || cg.k[d] > 7 || cg.k[d] < 1 || cg.stride[d] < 1 || cg.stride[d] > 64 ||
        cg.pad[d] < -64 || cg.pad[d] > 64)
      return false;
  *empty = N == 0 || C == 0 || cg.out_size == 0;
  if (*empty) return true;
  if (N * C * cg.in_size > INT_MAX || N * C * cg.out_size > INT_MAX) return false;
  bool two = cg.nd == 2;
  *g = {(int)N, (int)C, two ? (int)cg.in[0] : 1, (int)cg.in[cg.nd - 1], two ? (int)cg.out[0] : 1,
        (int)cg.out[cg.nd - 1], two ? (int)cg.k[0] : 1, (int)cg.k[cg.nd - 1], two ? (int)cg.stride[0] : 1,
        (int)cg.stride[cg.nd - 1], two ? (int)cg.pad[0] : 0, (int)cg.pad[cg.nd - 1]};
  return true;
}

/* K when the strip kernels take g (K x K, K in {3, 5, 7}, equal strides 1 or 2), else 0. */
static int strip_k(const struct dw_geom *g) {
  if (g->KH != g->KW || g->sh != g->sw || (g->sh != 1 && g->sh != 2)) return 0;
  return g->KH == 3 || g->KH == 5 || g->KH == 7 ? g->KH : 0;
}

/* Strip height for kernel size K (registers: the input window is ((R-1)*S + K) x K floats). */
static int strip_r(int K) { return K == 3 ? 4 : 2; }

/* Tiles of a plane width x rows (rows counted from -row_off) in strips of R rows. */
static struct dw_tiles make_tiles(int width, int rows, int row_off, int R) {
  struct dw_tiles t = {};
  int tx_log2 = 3;
  while (tx_log2 < 5 && (1 << tx_log2) < width) tx_log2++;
  int strips = (rows + row_off + R - 1) / R, ty = DW_THREADS >> tx_log2;
  t.tx_log2 = tx_log2;
  t.tiles_x = (width + (1 << tx_log2) - 1) >> tx_log2;
  t.tiles = t.tiles_x * ((strips + ty - 1) / ty);
  t.row_off = row_off;
  t.nsplit = 1;
  return t;
}

/* Image slices per channel so that tiles x C x slices is about DW_TARGET_BLOCKS blocks. */
static void split_images(struct dw_tiles *t, const struct dw_geom *g) {
  int64_t per = (int64_t)t->tiles * g->C;
  int64_t s = (DW_TARGET_BLOCKS + per - 1) / per;
  t->nsplit = (int)(s < 1 ? 1 : s > g->N ? g->N : s);
}

static dim3 strip_grid(const struct dw_tiles *t, int64_t ys) {
  return dim3((unsigned)t->tiles, (unsigned)(ys < 65535 ? ys : 65535));
}

typedef void (*fwd_fn)(const float *, const float *, const float *, float *, struct dw_geom, struct dw_tiles);
typedef void (*bwd_data_fn)(const float *, const float *, float *, struct dw_geom, struct dw_tiles, bool);
typedef void (*bwd_filter_fn)(const float *, const float *, dw_sum_t *, struct dw_geom, struct dw_tiles, int);

/* The instantiations: index (K - 3) / 2 * 2 + (S - 1). */
static const fwd_fn k_fwd[6] = {dw_fwd<3, 1, 4>, dw_fwd<3, 2, 4>, dw_fwd<5, 1, 2>,
                                dw_fwd<5, 2, 2>, dw_fwd<7, 1, 2>, dw_fwd<7, 2, 2>};
static const bwd_data_fn k_bwd_data[6] = {dw_bwd_data<3, 1, 4>, dw_bwd_data<3, 2, 4>, dw_bwd_data<5, 1, 2>,
                                          dw_bwd_data<5, 2, 2>, dw_bwd_data<7, 1, 2>, dw_bwd_data<7, 2, 2>};
static const bwd_filter_fn k_bwd_filter[6] = {dw_bwd_filter<3, 1, 4>, dw_bwd_filter<3, 2, 4>,
                                              dw_bwd_filter<5, 1, 2>, dw_bwd_filter<5, 2, 2>,
                                              dw_bwd_filter<7, 1, 2>, dw_bwd_filter<7, 2, 2>};

static int kernel_index(int K, int S) { return (K - 3) / 2 * 2 + (S - 1); }

extern "C" enum od_status od_cuda_depthwise_fwd(struct od_kernel_ctx *ctx, bool *handled) {
  struct dw_geom g;
  bool empty = false;
  *handled = dw_setup(ctx, &g, &empty);
  if (!*handled || empty) return OD_OK;
  const float *x = (const float *)ctx->in[0]->data, *w = (const float *)ctx->in[1]->data;
  const float *b = ctx->n_in > 2 && present(ctx->in[2]) ? (const float *)ctx->in[2]->data : NULL;
  float *y = (float *)ctx->out[0]->data;
  cudaStream_t stream = od_cuda_stream(ctx->dev);
  int K = strip_k(&g);
  if (K) {
    struct dw_tiles t = make_tiles(g.OW, g.OH, 0, strip_r(K));
    split_images(&t, &g);
    OD_LAUNCH(k_fwd[kernel_index(K, g.sh)], strip_grid(&t, (int64_t)g.C * t.nsplit), DW_THREADS,
              stream)(x, w, b, y, g, t);
  } else {
    int total = g.N * g.C * g.OH * g.OW;
    OD_LAUNCH(dw_fwd_generic, od_cuda_blocks(total), OD_CUDA_THREADS, stream)(x, w, b, y, g, total);
  }
  OD_CUDA_LAUNCHED(ctx);
  return OD_OK;
}

extern "C" enum od_status od_cuda_depthwise_bwd(struct od_kernel_ctx *ctx, bool *handled) {
  struct dw_geom g;
  bool empty = false;
  *handled = dw_setup(ctx, &g, &empty);
  if (!*handled || !ctx->dout[0]) return OD_OK;
  if (empty) return od_cuda_fresh_zero(ctx, 7u); /* no output: the gradients are 0 */
  OD_TRY(od_cuda_fresh_unalias(ctx));
  bool has_b = ctx->n_in > 2 && present(ctx->in[2]);
  struct od_tensor *dxt = ctx->din[0], *dwt = ctx->din[1], *dbt = has_b ? ctx->din[2] : NULL;
  const float *x = (const float *)ctx->in[0]->data, *w = (const float *)ctx->in[1]->data;
  const float *dy = (const float *)ctx->dout[0]->data;
  cudaStream_t stream = od_cuda_stream(ctx->dev);
  int K = strip_k(&g);

  if (dwt || dbt) {
    int T = g.KH * g.KW + 1, nchunk;
    dim3 grid;
    struct dw_tiles t = {};
    int per_chunk;
    if (K) { /* chunks of (image, tile) units, about DW_TARGET_BLOCKS blocks in all */
      t = make_tiles(g.OW, g.OH, 0, strip_r(K));
      int units = g.N * t.tiles, want = (DW_TARGET_BLOCKS + g.C - 1) / g.C;
      per_chunk = (units + want - 1) / want;
      if (per_chunk < DW_MIN_UNITS) per_chunk = DW_MIN_UNITS;
      nchunk = (units + per_chunk - 1) / per_chunk;
    } else { /* chunks of the channel's N*OH*OW positions */
      int M = g.N * g.OH * g.OW, want = (DW_TARGET_BLOCKS + g.C - 1) / g.C;
      per_chunk = (M + want - 1) / want;
      if (per_chunk < DW_GENERIC_CHUNK) per_chunk = DW_GENERIC_CHUNK;
      nchunk = (M + per_chunk - 1) / per_chunk;
    }
    grid = dim3((unsigned)nchunk, (unsigned)(g.C < 65535 ? g.C : 65535));
    dw_sum_t *partial = NULL;
    OD_TRY(od_cuda_workspace(ctx->dev, (size_t)g.C * nchunk * T * sizeof(dw_sum_t), (void **)&partial, ctx->err));
    if (K) OD_LAUNCH(k_bwd_filter[kernel_index(K, g.sh)], grid, DW_THREADS, stream)(x, dy, partial, g, t, per_chunk);
    else OD_LAUNCH(dw_bwd_filter_generic, grid, DW_THREADS, stream)(x, dy, partial, g, per_chunk);
    OD_CUDA_LAUNCHED(ctx);
    OD_LAUNCH(dw_finish, od_cuda_blocks((int64_t)g.C * T), OD_CUDA_THREADS, stream)(
        partial, dwt ? (float *)dwt->data : NULL, dbt ? (float *)dbt->data : NULL, g.C, T, nchunk,
        od_cuda_fresh(ctx, 1), od_cuda_fresh(ctx, 2));
    OD_CUDA_LAUNCHED(ctx);
  }
  if (dxt) {
    float *dx = (float *)dxt->data;
    if (K) {
      int S = g.sh, R = strip_r(K);
      struct dw_tiles t = make_tiles(g.W, g.H, ((g.ph % S) + S) % S, R);
      split_images(&t, &g);
      OD_LAUNCH(k_bwd_data[kernel_index(K, S)], strip_grid(&t, (int64_t)g.C * t.nsplit), DW_THREADS, stream)(
          w, dy, dx, g, t, od_cuda_fresh(ctx, 0));
    } else {
      int total = g.N * g.C * g.H * g.W;
      OD_LAUNCH(dw_bwd_data_generic, od_cuda_blocks(total), OD_CUDA_THREADS, stream)(w, dy, dx, g, total,
                                                                                  od_cuda_fresh(ctx, 0));
    }
    OD_CUDA_LAUNCHED(ctx);
  }
  return OD_OK;
}
