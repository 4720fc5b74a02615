/* runtime/devices/cuda_kernels.h: the device's own small kernels (host launchers, C linkage). */
#ifndef OD_CUDA_KERNELS_H
#define OD_CUDA_KERNELS_H

#include <stddef.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sets n floats at ptr to value on stream; returns the launch's cudaGetLastError(). */
cudaError_t od_cuda_fill_f32(float *ptr, size_t n, float value, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
