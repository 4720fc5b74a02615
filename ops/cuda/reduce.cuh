/* ops/cuda/reduce.cuh: block-wide reductions for the normalisation, pooling, softmax and Reduce*
 * kernels (ops/batchnorm.cu, ops/global_pool.cu, ops/softmax.cu, ops/reduce.cu).
 *
 * Every helper is a shared-memory tree (no warp shuffles: the emulation lacks them) over the
 * blockDim.x threads of a 1-D block; blockDim.x must be a power of two (the callers launch
 * OD_RED_THREADS). Every thread of the block must call the helper (it synchronises), every thread
 * gets the result, and the scratch array `sh` (a __shared__ array of at least blockDim.x elements
 * declared by the calling kernel) may be reused right after the call returns.
 *
 * Statistics (mean and variance) combine partial results (count, mean, M2 = sum of squared
 * deviations from the mean) with Chan et al.'s pairwise update, which stays accurate when the mean
 * is large against the spread (no sum-of-squares cancellation). */
#ifndef OD_CUDA_REDUCE_CUH
#define OD_CUDA_REDUCE_CUH

#include "ops/cuda/common.cuh"

#define OD_RED_THREADS 256

/* Blocks to launch for `units` independent units of work (capped: kernels loop). */
static inline unsigned od_red_blocks(int64_t units, int64_t cap) {
  if (units < 1) units = 1;
  return (unsigned)(units < cap ? units : cap);
}

/* A running (count, mean, M2) triple: merge b into a (Chan et al.). */
struct od_welford {
  float n, mean, m2;
};

static __device__ inline void od_welford_merge(od_welford *a, const od_welford b) {
  float n = a->n + b.n;
  if (b.n == 0.f) return;
  if (a->n == 0.f) {
    *a = b;
    return;
  }
  float d = b.mean - a->mean, wb = b.n / n;
  a->mean += d * wb;
  a->m2 += b.m2 + d * d * a->n * wb;
  a->n = n;
}

/* Sum of v over the block. */
static __device__ inline float od_block_sum_f32(float v, float *sh) {
  unsigned t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  float r = sh[0];
  __syncthreads();
  return r;
}

static __device__ inline double od_block_sum_f64(double v, double *sh) {
  unsigned t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

/* Two sums at once (one tree for both). */
static __device__ inline void od_block_sum2_f32(float *a, float *b, float *sha, float *shb) {
  unsigned t = threadIdx.x;
  sha[t] = *a;
  shb[t] = *b;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) {
      sha[t] += sha[t + s];
      shb[t] += shb[t + s];
    }
    __syncthreads();
  }
  *a = sha[0];
  *b = shb[0];
  __syncthreads();
}

/* Max of v over the block; NaN-ignoring like fmaxf (the result is NaN only if every v is). */
static __device__ inline float od_block_max_f32(float v, float *sh) {
  unsigned t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] = fmaxf(sh[t], sh[t + s]);
    __syncthreads();
  }
  float r = sh[0];
  __syncthreads();
  return r;
}

/* The (count, mean, M2) statistics of the whole block. */
static __device__ inline od_welford od_block_welford(od_welford w, float *shn, float *shm, float *shq) {
  unsigned t = threadIdx.x;
  shn[t] = w.n;
  shm[t] = w.mean;
  shq[t] = w.m2;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) {
      od_welford a = {shn[t], shm[t], shq[t]}, b = {shn[t + s], shm[t + s], shq[t + s]};
      od_welford_merge(&a, b);
      shn[t] = a.n;
      shm[t] = a.mean;
      shq[t] = a.m2;
    }
    __syncthreads();
  }
  od_welford r = {shn[0], shm[0], shq[0]};
  __syncthreads();
  return r;
}

/* The position of the block's maximum of v (pos < 0: no candidate), the first (smallest pos) on
 * ties; candidates whose value compares false with everything (NaN) win only against none. */
static __device__ inline int64_t od_block_argmax_f32(float v, int64_t pos, float *shv, int64_t *shp) {
  unsigned t = threadIdx.x;
  shv[t] = v;
  shp[t] = pos;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) {
      float bv = shv[t + s];
      int64_t bp = shp[t + s], ap = shp[t];
      if (bp >= 0 && (ap < 0 || bv > shv[t] || (bv == shv[t] && bp < ap))) {
        shv[t] = bv;
        shp[t] = bp;
      }
    }
    __syncthreads();
  }
  int64_t r = shp[0];
  __syncthreads();
  return r;
}

#endif
