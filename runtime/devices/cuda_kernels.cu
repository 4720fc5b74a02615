/* runtime/devices/cuda_kernels.cu: the device's own small kernels.
 * fill: grid-stride loop, 256 threads per block, at most 4096 blocks. */
#include "runtime/devices/cuda_kernels.h"

static __global__ void fill_f32_kernel(float *ptr, size_t n, float value) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    ptr[i] = value;
}

extern "C" cudaError_t od_cuda_fill_f32(float *ptr, size_t n, float value, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  size_t blocks = (n + 255) / 256;
  if (blocks > 4096) blocks = 4096;
  fill_f32_kernel<<<(unsigned)blocks, 256, 0, stream>>>(ptr, n, value);
  return cudaGetLastError();
}
