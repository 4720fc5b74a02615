/* runtime/devices/cuda_emu_device.cc: the CUDA device of the host emulation (odcore_emu, tests only).
 *
 * Stands in for runtime/devices/cuda_device.c: one device, "cuda:0 (host emulation)", whose memory
 * comes from od_emu_malloc (inaccessible to host code, see ops/cuda/emu.h) and whose copies, fills
 * and kernels go through the emulated runtime. Setting OD_EMU_NO_DEVICE in the environment hides
 * it (od_cuda_device_count() == 0), to test the "no GPU" paths with the same binary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cuda/emu.h"

extern "C" {
#include "runtime/device.h"
#include "runtime/devices/cuda_check.h"
#include "runtime/devices/cuda_impl.h"
}

namespace {

struct emu_impl {
  cudaStream_t stream;
  cublasHandle_t cublas;
  void *workspace;
  size_t workspace_bytes;
};

emu_impl *impl_of(const struct od_device *dev) { return static_cast<emu_impl *>(dev->impl); }

__global__ void fill_f32_kernel(float *p, size_t n, float value) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x)
    p[i] = value;
}

enum od_status emu_alloc(struct od_device *dev, size_t bytes, void **out, struct od_err *err) {
  void *p = od_emu_malloc(bytes ? bytes : 256);
  if (!p)
    return od_err_set(err, OD_ERR_OOM, "%s: cudaMalloc(%zu bytes) failed: out of memory (emulated device region)",
                      dev->name, bytes);
  *out = p;
  return OD_OK;
}

void emu_free(struct od_device *dev, void *ptr) {
  (void)dev;
  od_emu_free(ptr);
}

enum od_status emu_to_device(struct od_device *dev, void *dst, const void *src, size_t bytes, struct od_err *err) {
  OD_CUDA_TRY(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, impl_of(dev)->stream));
  return OD_OK;
}

enum od_status emu_to_host(struct od_device *dev, void *dst, const void *src, size_t bytes, struct od_err *err) {
  OD_CUDA_TRY(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, impl_of(dev)->stream));
  OD_CUDA_TRY(err, cudaStreamSynchronize(impl_of(dev)->stream));
  return OD_OK;
}

enum od_status emu_copy(struct od_device *dev, void *dst, const void *src, size_t bytes, struct od_err *err) {
  OD_CUDA_TRY(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_of(dev)->stream));
  return OD_OK;
}

enum od_status emu_zero(struct od_device *dev, void *ptr, size_t bytes, struct od_err *err) {
  OD_CUDA_TRY(err, cudaMemsetAsync(ptr, 0, bytes, impl_of(dev)->stream));
  return OD_OK;
}

enum od_status emu_fill(struct od_device *dev, float *ptr, size_t n, float value, struct od_err *err) {
  if (n == 0) return OD_OK;
  size_t blocks = (n + 255) / 256;
  if (blocks > 65535) blocks = 65535;
  od_emu_launcher((unsigned)blocks, 256, impl_of(dev)->stream, fill_f32_kernel)(ptr, n, value);
  OD_CUDA_TRY(err, cudaGetLastError());
  return OD_OK;
}

enum od_status emu_sync(struct od_device *dev, struct od_err *err) {
  OD_CUDA_TRY(err, cudaStreamSynchronize(impl_of(dev)->stream));
  return OD_OK;
}

void emu_close(struct od_device *dev) {
  emu_impl *c = impl_of(dev);
  if (c) {
    od_emu_free(c->workspace);
    if (c->cublas) (void)cublasDestroy(c->cublas);
    if (c->stream) (void)cudaStreamDestroy(c->stream);
    free(c);
  }
  free(dev);
}

/* Pinning changes nothing in the emulation (host memory is host memory); present so the trainer's
 * pinning path runs in CI too. */
static enum od_status emu_pin(struct od_device *, void *host, size_t, struct od_err *err) {
  return host ? OD_OK : od_err_set(err, OD_ERR_INVALID_ARG, "pin: NULL host pointer");
}
static void emu_unpin(struct od_device *, void *) {}

const struct od_device_ops emu_ops = {
    emu_alloc, emu_free, emu_to_device, emu_to_host, emu_copy, emu_zero, emu_fill, emu_sync, emu_close,
    emu_pin, emu_unpin,
};

enum od_status emu_init(struct od_device *d, emu_impl *c, struct od_err *err) {
  snprintf(d->name, sizeof d->name, "cuda:%d (host emulation)", d->index);
  OD_CUDA_TRY(err, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  OD_CUBLAS_TRY(err, cublasCreate(&c->cublas));
  OD_CUBLAS_TRY(err, cublasSetStream(c->cublas, c->stream));
  return OD_OK;
}

}  // namespace

extern "C" {

int od_cuda_device_count(void) { return getenv("OD_EMU_NO_DEVICE") ? 0 : 1; }

enum od_status od_device_cuda_open(int ordinal, struct od_device **out, struct od_err *err) {
  int count = od_cuda_device_count();
  if (count == 0)
    return od_err_set(err, OD_ERR_NO_DEVICE,
                      "cuda:%d: no CUDA device is visible on this machine (host emulation hidden by "
                      "OD_EMU_NO_DEVICE)",
                      ordinal);
  if (ordinal < 0 || ordinal >= count)
    return od_err_set(err, OD_ERR_NO_DEVICE, "cuda:%d: only %d CUDA device(s) present (host emulation)", ordinal,
                      count);
  struct od_device *d = static_cast<struct od_device *>(calloc(1, sizeof *d));
  emu_impl *c = static_cast<emu_impl *>(calloc(1, sizeof *c));
  if (!d || !c) {
    free(d);
    free(c);
    return od_err_set(err, OD_ERR_OOM, "cuda:%d: out of memory", ordinal);
  }
  d->kind = OD_DEVICE_CUDA;
  d->index = ordinal;
  d->ops = &emu_ops;
  d->precision = OD_PRECISION_FP32;
  d->impl = c;
  enum od_status st = emu_init(d, c, err);
  if (st != OD_OK) {
    emu_close(d);
    return st;
  }
  *out = d;
  return OD_OK;
}

cudaStream_t od_cuda_stream(const struct od_device *dev) { return impl_of(dev)->stream; }

cublasHandle_t od_cuda_cublas(const struct od_device *dev) { return impl_of(dev)->cublas; }

enum od_status od_cuda_workspace(struct od_device *dev, size_t bytes, void **out, struct od_err *err) {
  emu_impl *c = impl_of(dev);
  if (!c->workspace || bytes > c->workspace_bytes) {
    size_t want = bytes < 256 ? 256 : bytes;
    OD_CUDA_TRY(err, cudaStreamSynchronize(c->stream)); /* the old buffer may still be in use */
    void *p = od_emu_malloc(want);
    if (!p)
      return od_err_set(err, OD_ERR_OOM, "%s: workspace of %zu bytes: out of memory (emulated device region)",
                        dev->name, bytes);
    od_emu_free(c->workspace);
    c->workspace = p;
    c->workspace_bytes = want;
  }
  *out = c->workspace;
  return OD_OK;
}

}  // extern "C"
