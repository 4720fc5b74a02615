/* trainer/train_cuda.cuh: what trainer/loss_cuda.cu and trainer/optim_cuda.cu share (not a public
 * API; the public one is trainer/train_cuda.h).
 *
 * Whole-array sums: a kernel reduces its part of the array per thread and then per block with a
 * float32 shared-memory tree (ops/cuda/reduce.cuh), writing one float partial per block into the
 * workspace; tc_sum_to_host then adds the partials in double in one block and copies that double
 * to the host (the one synchronising copy of the call). Grids for such sums have at most
 * TC_SUM_BLOCKS blocks of OD_RED_THREADS (about one full wave on an H100), so each thread reads
 * several 16-byte vectors and the partials stay few. */
#ifndef OD_TRAIN_CUDA_CUH
#define OD_TRAIN_CUDA_CUH

#include "ops/cuda/reduce.cuh"

extern "C" {
#include "trainer/train_cuda.h"
}

#define TC_SUM_BLOCKS 1024

/* 4 floats as one 16-byte load/store (float4's layout; defined here so the emulation needs none). */
struct alignas(16) tc_f4 {
  float x, y, z, w;
};

/* Blocks for a sum over n elements: one 4-float vector per thread at least, at most TC_SUM_BLOCKS. */
static inline unsigned tc_sum_blocks(int64_t n) {
  int64_t b = (n + 4 * OD_RED_THREADS - 1) / (4 * OD_RED_THREADS);
  return (unsigned)(b < 1 ? 1 : b > TC_SUM_BLOCKS ? TC_SUM_BLOCKS : b);
}

/* Workspace layout of a sum: the double result first, then the float partials. */
struct tc_sum_scratch {
  double *total;
  float *partial;
};

static inline enum od_status tc_sum_scratch_get(struct od_device *dev, struct tc_sum_scratch *s, struct od_err *err) {
  void *ws = NULL;
  OD_TRY(od_cuda_workspace(dev, 256 + TC_SUM_BLOCKS * sizeof(float), &ws, err));
  s->total = (double *)ws;
  s->partial = (float *)((char *)ws + 256);
  return OD_OK;
}

/* *total = sum of partial[0..nb) in double (one block). */
static __global__ void tc_sum_finish(const float *partial, int nb, double *total) {
  __shared__ double sh[OD_RED_THREADS];
  double a = 0.0;
  for (int i = (int)threadIdx.x; i < nb; i += (int)blockDim.x) a += (double)partial[i];
  double r = od_block_sum_f64(a, sh);
  if (threadIdx.x == 0) *total = r;
}

/* Adds the nb partials of s in double and copies the sum to *out (waits for the stream). */
static inline enum od_status tc_sum_to_host(struct od_device *dev, const struct tc_sum_scratch *s, unsigned nb,
                                            double *out, struct od_err *err) {
  cudaStream_t st = od_cuda_stream(dev);
  OD_LAUNCH(tc_sum_finish, 1, OD_RED_THREADS, st)(s->partial, (int)nb, s->total);
  OD_CUDA_TRY(err, cudaGetLastError());
  double host = 0.0;
  OD_CUDA_TRY(err, cudaMemcpyAsync(&host, s->total, sizeof host, cudaMemcpyDeviceToHost, st));
  OD_CUDA_TRY(err, cudaStreamSynchronize(st));
  *out = host;
  return OD_OK;
}

/* True when p is 16-byte aligned (NULL counts as aligned: an absent gradient). */
static inline bool tc_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

#endif
