/* ops/cuda/emu_cudnn.cc: the fake cuDNN of the host emulation (see emu_cudnn.h for what it
 * covers and the traps it sets). Every computation runs as a one-thread emulated grid
 * (od_emu::run_grid), so device memory is accessible exactly while it runs; the loops accumulate
 * in double, then combine alpha * result + beta * destination. The handle has no stream: while
 * the calling thread captures a stream (cudaStreamBeginCapture), a computation is recorded into
 * that capture instead (its closure holds copies of everything it reads, see on_device). */
#include "ops/cuda/emu_cudnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <new>
#include <vector>

extern "C" {
#include "runtime/devices/cuda_impl.h"
}

/* One packed tensor (or filter): dims, nbDims 4 or 5. */
struct od_emu_cudnn_tensor {
  int nd;
  int dims[5];
};

struct od_emu_cudnn_conv {
  int nsp;
  int pad[3], stride[3], dil[3];
  int groups;
  cudnnMathType_t math;
  bool set;
};

struct od_emu_cudnn_context {
  unsigned magic;
};

namespace {

constexpr size_t kAlgoWorkspace = 4096; /* what every working algorithm claims (and gets NaN-filled) */
constexpr int kGoodAlgo = 1;            /* algorithm 1 of each direction works; 0 is "not supported" */

od_emu_cudnn_context g_handle = {0x0dcd0001u};

bool handle_ok(cudnnHandle_t h) { return h == &g_handle; }

/* Runs f() inside a one-thread emulated grid, with the allocations of the device pointers ptrs
 * (NULL allowed) opened for it as a kernel's pointer arguments are; or, while this thread
 * captures a stream, records that for each launch of the graph (f captures by value and may run
 * several times). */
template <class F>
cudnnStatus_t on_device(F f, std::initializer_list<const void *> ptrs) {
  struct rec {
    F f;
    od_emu::pointer_arg args[8];
    int n;
  };
  std::shared_ptr<rec> r = std::make_shared<rec>(rec{std::move(f), {}, 0});
  for (const void *p : ptrs)
    if (r->n < 8) {
      r->args[r->n] = od_emu::pointer_arg{p, r->n};
      r->n++;
    }
  bool ok = od_emu::submit_thread([r] {
    od_emu::launch_config cfg{dim3(1), dim3(1), nullptr};
    od_emu::run_grid(cfg, [](void *p) { (*static_cast<F *>(p))(); }, &r->f, r->args, r->n);
  });
  return ok ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

int64_t numel(const od_emu_cudnn_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->nd; i++) n *= t->dims[i];
  return n;
}

/* The geometry of one convolution in 3 spatial dims (leading ones of extent 1). */
struct geom {
  int64_t N, C, M, G, Cg, Mg;
  int64_t in[3], out[3], k[3], pad[3], stride[3], dil[3];
  int64_t in_size, out_size, k_size;
};

/* Checks x, w, y and conv against each other as cuDNN does (y must be the conv's output shape). */
cudnnStatus_t geometry(const od_emu_cudnn_tensor *x, const od_emu_cudnn_tensor *w, const od_emu_cudnn_conv *c,
                       const od_emu_cudnn_tensor *y, geom *g) {
  if (!x || !w || !c || !y || !c->set) return CUDNN_STATUS_BAD_PARAM;
  if (x->nd != w->nd || x->nd != y->nd || x->nd != c->nsp + 2 || c->groups < 1) return CUDNN_STATUS_BAD_PARAM;
  g->N = x->dims[0];
  g->C = x->dims[1];
  g->M = w->dims[0];
  g->G = c->groups;
  if (g->C % g->G || g->M % g->G || w->dims[1] * g->G != g->C || y->dims[0] != g->N || y->dims[1] != g->M)
    return CUDNN_STATUS_BAD_PARAM;
  g->Cg = g->C / g->G;
  g->Mg = g->M / g->G;
  g->in_size = g->out_size = g->k_size = 1;
  for (int d = 0; d < 3; d++) {
    int s = d - (3 - c->nsp); /* index among the descriptor's spatial dims, < 0: padding dim */
    g->in[d] = s < 0 ? 1 : x->dims[2 + s];
    g->k[d] = s < 0 ? 1 : w->dims[2 + s];
    g->out[d] = s < 0 ? 1 : y->dims[2 + s];
    g->pad[d] = s < 0 ? 0 : c->pad[s];
    g->stride[d] = s < 0 ? 1 : c->stride[s];
    g->dil[d] = s < 0 ? 1 : c->dil[s];
    if (g->pad[d] < 0 || g->stride[d] < 1 || g->dil[d] < 1) return CUDNN_STATUS_BAD_PARAM;
    int64_t dk = (g->k[d] - 1) * g->dil[d] + 1, span = g->in[d] + 2 * g->pad[d];
    if (span < dk || (span - dk) / g->stride[d] + 1 != g->out[d]) return CUDNN_STATUS_BAD_PARAM;
    g->in_size *= g->in[d];
    g->out_size *= g->out[d];
    g->k_size *= g->k[d];
  }
  return CUDNN_STATUS_SUCCESS;
}

/* Calls f(o, t, i) for every output position o, tap t and input position i that meet (in the
 * image): i = o * stride - pad + t * dilation in every dim. */
template <class F>
void for_each_tap(const geom &g, F &&f) {
  for (int64_t o0 = 0; o0 < g.out[0]; o0++)
    for (int64_t o1 = 0; o1 < g.out[1]; o1++)
      for (int64_t o2 = 0; o2 < g.out[2]; o2++) {
        int64_t o = (o0 * g.out[1] + o1) * g.out[2] + o2;
        for (int64_t k0 = 0; k0 < g.k[0]; k0++) {
          int64_t i0 = o0 * g.stride[0] - g.pad[0] + k0 * g.dil[0];
          if (i0 < 0 || i0 >= g.in[0]) continue;
          for (int64_t k1 = 0; k1 < g.k[1]; k1++) {
            int64_t i1 = o1 * g.stride[1] - g.pad[1] + k1 * g.dil[1];
            if (i1 < 0 || i1 >= g.in[1]) continue;
            for (int64_t k2 = 0; k2 < g.k[2]; k2++) {
              int64_t i2 = o2 * g.stride[2] - g.pad[2] + k2 * g.dil[2];
              if (i2 < 0 || i2 >= g.in[2]) continue;
              f(o, (k0 * g.k[1] + k1) * g.k[2] + k2, (i0 * g.in[1] + i1) * g.in[2] + i2);
            }
          }
        }
      }
}

/* dst[i] = alpha * acc[i] + beta * dst[i] (beta == 0: dst not read). Inside a grid. */
void combine(float *dst, const std::vector<double> &acc, float alpha, float beta) {
  for (size_t i = 0; i < acc.size(); i++)
    dst[i] = (float)((double)alpha * acc[i] + (beta == 0.0f ? 0.0 : (double)beta * dst[i]));
}

void nan_fill(void *p, size_t bytes) {
  if (!p) return;
  float *f = (float *)p;
  for (size_t i = 0; i < bytes / sizeof(float); i++) f[i] = NAN;
}

/* Every computing call: the algorithm must be the working one and the workspace big enough. */
cudnnStatus_t check_algo(int algo, void *ws, size_t ws_bytes) {
  if (algo != kGoodAlgo) return CUDNN_STATUS_NOT_SUPPORTED;
  if (ws_bytes < kAlgoWorkspace || !ws || !od_emu_is_device_ptr(ws)) return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

bool dev_ptrs(std::initializer_list<const void *> ps) {
  for (const void *p : ps)
    if (!p || !od_emu_is_device_ptr(p)) return false;
  return true;
}

/* Fills perf[0..1]: algorithm 0 fails, algorithm 1 works with kAlgoWorkspace. */
template <class Perf, class Algo>
cudnnStatus_t perf_list(int requested, int *returned, Perf *perf, const od_emu_cudnn_conv *c) {
  if (requested < 1 || !returned || !perf) return CUDNN_STATUS_BAD_PARAM;
  Perf bad = {}, good = {};
  bad.algo = (Algo)0;
  bad.status = CUDNN_STATUS_NOT_SUPPORTED;
  bad.time = -1.0f;
  bad.memory = 0;
  bad.mathType = c->math;
  good.algo = (Algo)kGoodAlgo;
  good.status = CUDNN_STATUS_SUCCESS;
  good.time = 1.0f;
  good.memory = kAlgoWorkspace;
  good.determinism = CUDNN_DETERMINISTIC;
  good.mathType = c->math;
  int n = 0;
  perf[n++] = bad;
  if (n < requested) perf[n++] = good;
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

/* ---- the computations (inside a grid) ---- */

void forward(const geom &g, const float *x, const float *w, std::vector<double> &acc) {
  for (int64_t n = 0; n < g.N; n++)
    for (int64_t m = 0; m < g.M; m++) {
      int64_t grp = m / g.Mg;
      double *yo = &acc[(size_t)((n * g.M + m) * g.out_size)];
      for (int64_t c = 0; c < g.Cg; c++) {
        const float *xc = x + (n * g.C + grp * g.Cg + c) * g.in_size;
        const float *wc = w + (m * g.Cg + c) * g.k_size;
        for_each_tap(g, [&](int64_t o, int64_t t, int64_t i) { yo[o] += (double)wc[t] * xc[i]; });
      }
    }
}

void backward_data(const geom &g, const float *w, const float *dy, std::vector<double> &acc) {
  for (int64_t n = 0; n < g.N; n++)
    for (int64_t m = 0; m < g.M; m++) {
      int64_t grp = m / g.Mg;
      const float *dyo = dy + (n * g.M + m) * g.out_size;
      for (int64_t c = 0; c < g.Cg; c++) {
        double *dxc = &acc[(size_t)((n * g.C + grp * g.Cg + c) * g.in_size)];
        const float *wc = w + (m * g.Cg + c) * g.k_size;
        for_each_tap(g, [&](int64_t o, int64_t t, int64_t i) { dxc[i] += (double)wc[t] * dyo[o]; });
      }
    }
}

void backward_filter(const geom &g, const float *x, const float *dy, std::vector<double> &acc) {
  for (int64_t n = 0; n < g.N; n++)
    for (int64_t m = 0; m < g.M; m++) {
      int64_t grp = m / g.Mg;
      const float *dyo = dy + (n * g.M + m) * g.out_size;
      for (int64_t c = 0; c < g.Cg; c++) {
        const float *xc = x + (n * g.C + grp * g.Cg + c) * g.in_size;
        double *dwc = &acc[(size_t)((m * g.Cg + c) * g.k_size)];
        for_each_tap(g, [&](int64_t o, int64_t t, int64_t i) { dwc[t] += (double)dyo[o] * xc[i]; });
      }
    }
}

cudnnStatus_t alloc_acc(std::vector<double> &acc, int64_t n) {
  try {
    acc.assign((size_t)n, 0.0);
  } catch (const std::bad_alloc &) {
    return CUDNN_STATUS_INTERNAL_ERROR;
  }
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

/* ---- the emulated device's handle ---- */

extern "C" cudnnHandle_t od_cuda_cudnn(const struct od_device *dev) {
  (void)dev;
  return &g_handle;
}

const char *cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}

/* ---- descriptors ---- */

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *desc) {
  if (!desc) return CUDNN_STATUS_BAD_PARAM;
  *desc = new (std::nothrow) od_emu_cudnn_tensor();
  return *desc ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc) {
  delete desc;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t desc, cudnnDataType_t type, int nbDims,
                                         const int dimA[], const int strideA[]) {
  if (!desc || type != CUDNN_DATA_FLOAT || nbDims < 4 || nbDims > 5 || !dimA || !strideA)
    return CUDNN_STATUS_BAD_PARAM;
  int64_t packed = 1;
  for (int i = nbDims - 1; i >= 0; i--) { /* only fully packed tensors are emulated */
    if (dimA[i] < 1 || strideA[i] != packed) return CUDNN_STATUS_BAD_PARAM;
    packed *= dimA[i];
  }
  desc->nd = nbDims;
  for (int i = 0; i < nbDims; i++) desc->dims[i] = dimA[i];
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *desc) { return cudnnCreateTensorDescriptor(desc); }

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t desc) { return cudnnDestroyTensorDescriptor(desc); }

cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t desc, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int nbDims, const int filterDimA[]) {
  if (format != CUDNN_TENSOR_NCHW || !filterDimA || nbDims < 4 || nbDims > 5) return CUDNN_STATUS_BAD_PARAM;
  int st[5];
  st[nbDims - 1] = 1;
  for (int i = nbDims - 2; i >= 0; i--) st[i] = st[i + 1] * filterDimA[i + 1];
  return cudnnSetTensorNdDescriptor(desc, type, nbDims, filterDimA, st);
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *desc) {
  if (!desc) return CUDNN_STATUS_BAD_PARAM;
  *desc = new (std::nothrow) od_emu_cudnn_conv();
  if (!*desc) return CUDNN_STATUS_INTERNAL_ERROR;
  (*desc)->groups = 1;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t desc) {
  delete desc;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t desc, int arrayLength, const int padA[],
                                              const int filterStrideA[], const int dilationA[],
                                              cudnnConvolutionMode_t mode, cudnnDataType_t computeType) {
  if (!desc || arrayLength < 2 || arrayLength > 3 || mode != CUDNN_CROSS_CORRELATION ||
      computeType != CUDNN_DATA_FLOAT)
    return CUDNN_STATUS_BAD_PARAM; /* CUDNN_CONVOLUTION (flipped kernel) is not emulated */
  for (int i = 0; i < arrayLength; i++) {
    if (padA[i] < 0 || filterStrideA[i] < 1 || dilationA[i] < 1) return CUDNN_STATUS_BAD_PARAM;
    desc->pad[i] = padA[i];
    desc->stride[i] = filterStrideA[i];
    desc->dil[i] = dilationA[i];
  }
  desc->nsp = arrayLength;
  desc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t desc, int groupCount) {
  if (!desc || groupCount < 1) return CUDNN_STATUS_BAD_PARAM;
  desc->groups = groupCount;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t desc, cudnnMathType_t mathType) {
  if (!desc || mathType < CUDNN_DEFAULT_MATH || mathType > CUDNN_FMA_MATH) return CUDNN_STATUS_BAD_PARAM;
  desc->math = mathType;
  return CUDNN_STATUS_SUCCESS;
}

/* ---- forward ---- */

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                     const cudnnFilterDescriptor_t wDesc,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t yDesc, const int requestedAlgoCount,
                                                     int *returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t *perf) {
  geom g;
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  cudnnStatus_t st = geometry(xDesc, wDesc, convDesc, yDesc, &g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  return perf_list<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(requestedAlgoCount, returnedAlgoCount,
                                                                             perf, convDesc);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                     const void *x, const cudnnFilterDescriptor_t wDesc, const void *w,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t yDesc, void *y,
                                                     const int requestedAlgoCount, int *returnedAlgoCount,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf, void *workSpace,
                                                     size_t workSpaceSizeInBytes) {
  cudnnStatus_t st = cudnnGetConvolutionForwardAlgorithm_v7(handle, xDesc, wDesc, convDesc, yDesc, requestedAlgoCount,
                                                            returnedAlgoCount, perf);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (!dev_ptrs({x, w, y}) || (workSpaceSizeInBytes && !dev_ptrs({workSpace}))) return CUDNN_STATUS_BAD_PARAM;
  size_t yb = (size_t)numel(yDesc) * sizeof(float);
  return on_device([=] { nan_fill(y, yb); }, {y});
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc,
                                                      cudnnConvolutionFwdAlgo_t algo, size_t *sizeInBytes) {
  geom g;
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  cudnnStatus_t st = geometry(xDesc, wDesc, convDesc, yDesc, &g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if ((int)algo != kGoodAlgo || !sizeInBytes) return CUDNN_STATUS_NOT_SUPPORTED;
  *sizeInBytes = kAlgoWorkspace;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc,
                                      const void *x, const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
                                      void *workSpace, size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y) {
  geom g;
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  cudnnStatus_t st = geometry(xDesc, wDesc, convDesc, yDesc, &g);
  if (st == CUDNN_STATUS_SUCCESS) st = check_algo((int)algo, workSpace, workSpaceSizeInBytes);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (!alpha || !beta || !dev_ptrs({x, w, y})) return CUDNN_STATUS_BAD_PARAM;
  std::vector<double> acc;
  if ((st = alloc_acc(acc, numel(yDesc))) != CUDNN_STATUS_SUCCESS) return st;
  float a = *(const float *)alpha, b = *(const float *)beta;
  auto f = [=]() mutable {
    std::fill(acc.begin(), acc.end(), 0.0); /* each replay starts from zero */
    nan_fill(workSpace, workSpaceSizeInBytes);
    forward(g, (const float *)x, (const float *)w, acc);
    combine((float *)y, acc, a, b);
  };
  return on_device(std::move(f), {x, w, y, workSpace});
}

/* ---- backward data ---- */

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                          const cudnnTensorDescriptor_t dyDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnTensorDescriptor_t dxDesc,
                                                          const int requestedAlgoCount, int *returnedAlgoCount,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perf) {
  geom g;
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  cudnnStatus_t st = geometry(dxDesc, wDesc, convDesc, dyDesc, &g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  return perf_list<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      requestedAlgoCount, returnedAlgoCount, perf, convDesc);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                          const void *w, const cudnnTensorDescriptor_t dyDesc,
                                                          const void *dy, const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnTensorDescriptor_t dxDesc, void *dx,
                                                          const int requestedAlgoCount, int *returnedAlgoCount,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perf, void *workSpace,
                                                          size_t workSpaceSizeInBytes) {
  cudnnStatus_t st = cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, wDesc, dyDesc, convDesc, dxDesc,
                                                                 requestedAlgoCount, returnedAlgoCount, perf);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (!dev_ptrs({w, dy, dx}) || (workSpaceSizeInBytes && !dev_ptrs({workSpace}))) return CUDNN_STATUS_BAD_PARAM;
  size_t xb = (size_t)numel(dxDesc) * sizeof(float);
  return on_device([=] { nan_fill(dx, xb); }, {dx});
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                           const cudnnTensorDescriptor_t dyDesc,
                                                           const cudnnConvolutionDescriptor_t convDesc,
                                                           const cudnnTensorDescriptor_t dxDesc,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t *sizeInBytes) {
  geom g;
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  cudnnStatus_t st = geometry(dxDesc, wDesc, convDesc, dyDesc, &g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if ((int)algo != kGoodAlgo || !sizeInBytes) return CUDNN_STATUS_NOT_SUPPORTED;
  *sizeInBytes = kAlgoWorkspace;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha, const cudnnFilterDescriptor_t wDesc,
                                           const void *w, const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                           size_t workSpaceSizeInBytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxDesc, void *dx) {
  geom g;
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  cudnnStatus_t st = geometry(dxDesc, wDesc, convDesc, dyDesc, &g);
  if (st == CUDNN_STATUS_SUCCESS) st = check_algo((int)algo, workSpace, workSpaceSizeInBytes);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (!alpha || !beta || !dev_ptrs({w, dy, dx})) return CUDNN_STATUS_BAD_PARAM;
  std::vector<double> acc;
  if ((st = alloc_acc(acc, numel(dxDesc))) != CUDNN_STATUS_SUCCESS) return st;
  float a = *(const float *)alpha, b = *(const float *)beta;
  auto f = [=]() mutable {
    std::fill(acc.begin(), acc.end(), 0.0); /* each replay starts from zero */
    nan_fill(workSpace, workSpaceSizeInBytes);
    backward_data(g, (const float *)w, (const float *)dy, acc);
    combine((float *)dx, acc, a, b);
  };
  return on_device(std::move(f), {w, dy, dx, workSpace});
}

/* ---- backward filter ---- */

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                            const cudnnTensorDescriptor_t dyDesc,
                                                            const cudnnConvolutionDescriptor_t convDesc,
                                                            const cudnnFilterDescriptor_t dwDesc,
                                                            const int requestedAlgoCount, int *returnedAlgoCount,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
  geom g;
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  cudnnStatus_t st = geometry(xDesc, dwDesc, convDesc, dyDesc, &g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  return perf_list<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      requestedAlgoCount, returnedAlgoCount, perf, convDesc);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t dyDesc,
    const void *dy, const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void *dw,
    const int requestedAlgoCount, int *returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t *perf, void *workSpace,
    size_t workSpaceSizeInBytes) {
  cudnnStatus_t st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, xDesc, dyDesc, convDesc, dwDesc,
                                                                   requestedAlgoCount, returnedAlgoCount, perf);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (!dev_ptrs({x, dy, dw}) || (workSpaceSizeInBytes && !dev_ptrs({workSpace}))) return CUDNN_STATUS_BAD_PARAM;
  size_t wb = (size_t)numel(dwDesc) * sizeof(float);
  return on_device([=] { nan_fill(dw, wb); }, {dw});
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                             const cudnnTensorDescriptor_t dyDesc,
                                                             const cudnnConvolutionDescriptor_t convDesc,
                                                             const cudnnFilterDescriptor_t dwDesc,
                                                             cudnnConvolutionBwdFilterAlgo_t algo,
                                                             size_t *sizeInBytes) {
  geom g;
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  cudnnStatus_t st = geometry(xDesc, dwDesc, convDesc, dyDesc, &g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if ((int)algo != kGoodAlgo || !sizeInBytes) return CUDNN_STATUS_NOT_SUPPORTED;
  *sizeInBytes = kAlgoWorkspace;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void *x,
                                             const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace,
                                             size_t workSpaceSizeInBytes, const void *beta,
                                             const cudnnFilterDescriptor_t dwDesc, void *dw) {
  geom g;
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  cudnnStatus_t st = geometry(xDesc, dwDesc, convDesc, dyDesc, &g);
  if (st == CUDNN_STATUS_SUCCESS) st = check_algo((int)algo, workSpace, workSpaceSizeInBytes);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (!alpha || !beta || !dev_ptrs({x, dy, dw})) return CUDNN_STATUS_BAD_PARAM;
  std::vector<double> acc;
  if ((st = alloc_acc(acc, numel(dwDesc))) != CUDNN_STATUS_SUCCESS) return st;
  float a = *(const float *)alpha, b = *(const float *)beta;
  auto f = [=]() mutable {
    std::fill(acc.begin(), acc.end(), 0.0); /* each replay starts from zero */
    nan_fill(workSpace, workSpaceSizeInBytes);
    backward_filter(g, (const float *)x, (const float *)dy, acc);
    combine((float *)dw, acc, a, b);
  };
  return on_device(std::move(f), {x, dy, dw, workSpace});
}

/* ---- bias ---- */

cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void *alpha,
                                           const cudnnTensorDescriptor_t dyDesc, const void *dy, const void *beta,
                                           const cudnnTensorDescriptor_t dbDesc, void *db) {
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  if (!dyDesc || !dbDesc || dyDesc->nd != dbDesc->nd || dbDesc->dims[0] != 1 || dbDesc->dims[1] != dyDesc->dims[1] ||
      numel(dbDesc) != dbDesc->dims[1] || !alpha || !beta || !dev_ptrs({dy, db}))
    return CUDNN_STATUS_BAD_PARAM;
  int64_t N = dyDesc->dims[0], M = dyDesc->dims[1], plane = numel(dyDesc) / (N * M);
  std::vector<double> acc;
  cudnnStatus_t st = alloc_acc(acc, M);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  float a = *(const float *)alpha, b = *(const float *)beta;
  auto f = [=]() mutable {
    std::fill(acc.begin(), acc.end(), 0.0);
    const float *d = (const float *)dy;
    for (int64_t n = 0; n < N; n++)
      for (int64_t m = 0; m < M; m++)
        for (int64_t i = 0; i < plane; i++) acc[(size_t)m] += d[(n * M + m) * plane + i];
    combine((float *)db, acc, a, b);
  };
  return on_device(std::move(f), {dy, db});
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t aDesc,
                             const void *A, const void *beta, const cudnnTensorDescriptor_t cDesc, void *C) {
  if (!handle_ok(handle)) return CUDNN_STATUS_NOT_INITIALIZED;
  if (!aDesc || !cDesc || aDesc->nd != cDesc->nd || !alpha || !beta || !dev_ptrs({A, C}))
    return CUDNN_STATUS_BAD_PARAM;
  int nd = cDesc->nd;
  od_emu_cudnn_tensor cd = *cDesc; /* read when the computation runs (perhaps as a graph, later) */
  int64_t ast[5], st = 1;
  for (int i = nd - 1; i >= 0; i--) { /* A's strides as broadcast to C (0 along its dims of 1) */
    if (aDesc->dims[i] != cDesc->dims[i] && aDesc->dims[i] != 1) return CUDNN_STATUS_BAD_PARAM;
    ast[i] = aDesc->dims[i] == 1 ? 0 : st;
    st *= aDesc->dims[i];
  }
  int64_t n = numel(cDesc);
  float a = *(const float *)alpha, b = *(const float *)beta;
  auto f = [=] {
    const float *src = (const float *)A;
    float *dst = (float *)C;
    for (int64_t i = 0; i < n; i++) {
      int64_t q = i, off = 0;
      for (int d = nd - 1; d >= 0; d--) {
        off += (q % cd.dims[d]) * ast[d];
        q /= cd.dims[d];
      }
      dst[i] = (float)((double)a * src[off] + (b == 0.0f ? 0.0 : (double)b * dst[i]));
    }
  };
  return on_device(f, {A, C});
}
