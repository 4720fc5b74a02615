/* runtime/devices/cuda_impl.h: what CUDA kernels (ops/<family>.cu) may ask of a CUDA device: its stream,
 * its cuBLAS and cuDNN handles, a scratch workspace, and the precision mode. Implemented by the
 * real device (runtime/devices/cuda_device.c) and by the host emulation used in CI
 * (runtime/devices/cuda_emu_device.cc, built with OD_CUDA_EMU; its cuDNN is the fake of
 * ops/cuda/emu_cudnn.*, covering what ops/conv.cu uses).
 *
 * Rules for kernels: all work goes on od_cuda_stream(dev); device memory comes only from
 * dev->ops->alloc (never cudaMalloc directly) and only when a node's state is first built, never
 * per call; the workspace is valid until the next od_cuda_workspace call (stream-ordered, so one
 * kernel function may use it for everything it launches). */
#ifndef OD_CUDA_IMPL_H
#define OD_CUDA_IMPL_H

#include <stddef.h>

#ifdef OD_CUDA_EMU
#include "ops/cuda/emu.h"
#include "ops/cuda/emu_cudnn.h" /* od_cuda_cudnn's fake handle is defined in ops/cuda/emu_cudnn.cc */
#else
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#endif

#include "runtime/device.h"
#include "runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaStream_t od_cuda_stream(const struct od_device *dev);
cublasHandle_t od_cuda_cublas(const struct od_device *dev);
cudnnHandle_t od_cuda_cudnn(const struct od_device *dev);

/* A device scratch buffer of at least bytes (grown on demand: the first steps may allocate, later
 * ones do not). Growing waits for the stream before releasing the old buffer. */
enum od_status od_cuda_workspace(struct od_device *dev, size_t bytes, void **out, struct od_err *err);

#ifdef __cplusplus
}
#endif

#endif
