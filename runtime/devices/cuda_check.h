/* runtime/devices/cuda_check.h: turning CUDA, cuBLAS and cuDNN failures into od_err.
 * Each macro evaluates the call once; on failure it records OD_ERR_CUDA with the statement,
 * file:line and the library's own error string, and returns from the enclosing function. */
#ifndef OD_CUDA_CHECK_H
#define OD_CUDA_CHECK_H

#ifdef OD_CUDA_EMU
#include "ops/cuda/emu.h"       /* the host emulation */
#include "ops/cuda/emu_cudnn.h" /* its fake cuDNN (the subset ops/conv.cu uses) */
#else
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#endif

#include "runtime/status.h"

const char *od_cublas_status_string(cublasStatus_t s);

#define OD_CUDA_TRY(err, call)                                                                   \
  do {                                                                                           \
    cudaError_t od_ce_ = (call);                                                                 \
    if (od_ce_ != cudaSuccess)                                                                   \
      return od_err_set((err), OD_ERR_CUDA, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__, \
                        cudaGetErrorString(od_ce_));                                             \
  } while (0)

#define OD_CUBLAS_TRY(err, call)                                                                 \
  do {                                                                                           \
    cublasStatus_t od_cb_ = (call);                                                              \
    if (od_cb_ != CUBLAS_STATUS_SUCCESS)                                                         \
      return od_err_set((err), OD_ERR_CUDA, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__, \
                        od_cublas_status_string(od_cb_));                                        \
  } while (0)

#define OD_CUDNN_TRY(err, call)                                                                  \
  do {                                                                                           \
    cudnnStatus_t od_cd_ = (call);                                                               \
    if (od_cd_ != CUDNN_STATUS_SUCCESS)                                                          \
      return od_err_set((err), OD_ERR_CUDA, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__, \
                        cudnnGetErrorString(od_cd_));                                            \
  } while (0)

/* Launches a kernel-side helper and checks cudaGetLastError() after it (llm.c's rule). */
#define OD_CUDA_CHECK_LAUNCH(err) OD_CUDA_TRY(err, cudaGetLastError())

#endif
