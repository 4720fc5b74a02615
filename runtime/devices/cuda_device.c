/* runtime/devices/cuda_device.c: the CUDA device. Owns a stream, the cuBLAS and cuDNN handles
 * (bound to that stream) and a workspace; every call is checked (cuda_check.h). Copies are
 * asynchronous on the stream; od_device_sync waits. While the stream captures a CUDA graph (the
 * trainer's step, trainer/graph_cuda.cu), allocating and growing the workspace fail with a clear
 * message instead of calling CUDA (which would refuse them and invalidate the capture anyway). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device.h"
#include "runtime/devices/cuda_check.h"
#include "runtime/devices/cuda_impl.h"
#include "runtime/devices/cuda_kernels.h"

struct cuda_impl {
  cudaStream_t stream;
  cublasHandle_t cublas;
  cudnnHandle_t cudnn;
  void *workspace;
  size_t workspace_bytes;
};

const char *od_cublas_status_string(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
  }
  return "unknown cuBLAS status";
}

int od_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError(); /* clear the sticky "no device" error */
    return 0;
  }
  return n;
}

static struct cuda_impl *impl_of(const struct od_device *dev) { return (struct cuda_impl *)dev->impl; }

/* Whether the stream is capturing a graph (no allocation, no wait allowed). */
static bool capturing(const struct cuda_impl *c) {
  enum cudaStreamCaptureStatus s = cudaStreamCaptureStatusNone;
  return cudaStreamIsCapturing(c->stream, &s) == cudaSuccess && s != cudaStreamCaptureStatusNone;
}

cudaStream_t od_cuda_stream(const struct od_device *dev) { return impl_of(dev)->stream; }
cublasHandle_t od_cuda_cublas(const struct od_device *dev) { return impl_of(dev)->cublas; }
cudnnHandle_t od_cuda_cudnn(const struct od_device *dev) { return impl_of(dev)->cudnn; }

enum od_status od_cuda_workspace(struct od_device *dev, size_t bytes, void **out, struct od_err *err) {
  struct cuda_impl *c = impl_of(dev);
  if (bytes > c->workspace_bytes || !c->workspace) {
    size_t want = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes;
    if (capturing(c))
      return od_err_set(err, OD_ERR_CUDA, "%s: the workspace must grow to %zu bytes during a CUDA graph capture",
                        dev->name, bytes);
    if (c->workspace) { /* kernels queued on the stream may still use the old one */
      OD_CUDA_TRY(err, cudaStreamSynchronize(c->stream));
      OD_CUDA_TRY(err, cudaFree(c->workspace));
      c->workspace = NULL;
      c->workspace_bytes = 0;
    }
    cudaError_t e = cudaMalloc(&c->workspace, want);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      c->workspace = NULL;
      return od_err_set(err, e == cudaErrorMemoryAllocation ? OD_ERR_OOM : OD_ERR_CUDA,
                        "%s: workspace of %zu bytes: %s", dev->name, want, cudaGetErrorString(e));
    }
    c->workspace_bytes = want;
  }
  *out = c->workspace;
  return OD_OK;
}

static enum od_status cuda_select(struct od_device *dev, struct od_err *err) {
  OD_CUDA_TRY(err, cudaSetDevice(dev->index));
  return OD_OK;
}

static enum od_status cuda_alloc(struct od_device *dev, size_t bytes, void **out, struct od_err *err) {
  if (capturing(impl_of(dev)))
    return od_err_set(err, OD_ERR_CUDA, "%s: cudaMalloc(%zu bytes) during a CUDA graph capture", dev->name, bytes);
  OD_TRY(cuda_select(dev, err));
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return od_err_set(err, e == cudaErrorMemoryAllocation ? OD_ERR_OOM : OD_ERR_CUDA,
                      "%s: cudaMalloc(%zu bytes) failed: %s", dev->name, bytes, cudaGetErrorString(e));
  }
  *out = p;
  return OD_OK;
}

static void cuda_free(struct od_device *dev, void *ptr) {
  if (ptr && cudaSetDevice(dev->index) == cudaSuccess) (void)cudaFree(ptr);
}

static enum od_status cuda_to_device(struct od_device *dev, void *dst, const void *src, size_t bytes,
                                     struct od_err *err) {
  OD_CUDA_TRY(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, impl_of(dev)->stream));
  return OD_OK;
}

static enum od_status cuda_to_host(struct od_device *dev, void *dst, const void *src, size_t bytes,
                                   struct od_err *err) {
  OD_CUDA_TRY(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, impl_of(dev)->stream));
  OD_CUDA_TRY(err, cudaStreamSynchronize(impl_of(dev)->stream)); /* the host reads it next */
  return OD_OK;
}

static enum od_status cuda_copy(struct od_device *dev, void *dst, const void *src, size_t bytes,
                                struct od_err *err) {
  OD_CUDA_TRY(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_of(dev)->stream));
  return OD_OK;
}

static enum od_status cuda_zero(struct od_device *dev, void *ptr, size_t bytes, struct od_err *err) {
  OD_CUDA_TRY(err, cudaMemsetAsync(ptr, 0, bytes, impl_of(dev)->stream));
  return OD_OK;
}

static enum od_status cuda_fill(struct od_device *dev, float *ptr, size_t n, float value, struct od_err *err) {
  OD_CUDA_TRY(err, od_cuda_fill_f32(ptr, n, value, impl_of(dev)->stream));
  return OD_OK;
}

static enum od_status cuda_sync(struct od_device *dev, struct od_err *err) {
  OD_CUDA_TRY(err, cudaStreamSynchronize(impl_of(dev)->stream));
  return OD_OK;
}

static enum od_status cuda_pin(struct od_device *dev, void *host, size_t bytes, struct od_err *err) {
  cudaError_t e = cudaHostRegister(host, bytes, cudaHostRegisterDefault);
  if (e != cudaSuccess) (void)cudaGetLastError(); /* e.g. already registered: copies still work, unpinned */
  return OD_OK;
}

static void cuda_unpin(struct od_device *dev, void *host) {
  if (cudaHostUnregister(host) != cudaSuccess) (void)cudaGetLastError();
}

static void cuda_close(struct od_device *dev) {
  struct cuda_impl *c = impl_of(dev);
  if (c) {
    if (cudaSetDevice(dev->index) == cudaSuccess) {
      if (c->workspace) (void)cudaFree(c->workspace);
      if (c->cudnn) (void)cudnnDestroy(c->cudnn);
      if (c->cublas) (void)cublasDestroy(c->cublas);
      if (c->stream) (void)cudaStreamDestroy(c->stream);
    }
    free(c);
  }
  free(dev);
}

static const struct od_device_ops cuda_ops = {
    .alloc = cuda_alloc, .free = cuda_free, .to_device = cuda_to_device, .to_host = cuda_to_host,
    .copy = cuda_copy, .zero = cuda_zero, .fill_f32 = cuda_fill, .sync = cuda_sync, .close = cuda_close,
    .pin = cuda_pin, .unpin = cuda_unpin,
};

/* Creates the stream and handles; on failure the caller closes the half-built device. */
static enum od_status cuda_init(struct od_device *d, struct cuda_impl *c, struct od_err *err) {
  struct cudaDeviceProp prop;
  OD_CUDA_TRY(err, cudaSetDevice(d->index));
  OD_CUDA_TRY(err, cudaGetDeviceProperties(&prop, d->index));
  snprintf(d->name, sizeof d->name, "cuda:%d (%s)", d->index, prop.name);
  OD_CUDA_TRY(err, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  OD_CUBLAS_TRY(err, cublasCreate(&c->cublas));
  OD_CUBLAS_TRY(err, cublasSetStream(c->cublas, c->stream));
  OD_CUDNN_TRY(err, cudnnCreate(&c->cudnn));
  OD_CUDNN_TRY(err, cudnnSetStream(c->cudnn, c->stream));
  return OD_OK;
}

enum od_status od_device_cuda_open(int ordinal, struct od_device **out, struct od_err *err) {
  int count = od_cuda_device_count();
  if (count == 0)
    return od_err_set(err, OD_ERR_NO_DEVICE, "cuda:%d: no CUDA device is visible on this machine", ordinal);
  if (ordinal >= count)
    return od_err_set(err, OD_ERR_NO_DEVICE, "cuda:%d: only %d CUDA device(s) present", ordinal, count);
  struct od_device *d = calloc(1, sizeof *d);
  struct cuda_impl *c = calloc(1, sizeof *c);
  if (!d || !c) {
    free(d);
    free(c);
    return od_err_set(err, OD_ERR_OOM, "cuda:%d: out of memory", ordinal);
  }
  d->kind = OD_DEVICE_CUDA;
  d->index = ordinal;
  d->ops = &cuda_ops;
  d->impl = c;
  enum od_status st = cuda_init(d, c, err);
  if (st != OD_OK) {
    cuda_close(d);
    return st;
  }
  *out = d;
  return OD_OK;
}
