/* ops/cuda/emu.h: a host emulation of the CUDA runtime subset the kernels use, and of cuBLAS GEMM.
 *
 * Included instead of <cuda_runtime.h>/<cublas_v2.h> when OD_CUDA_EMU is defined (the odcore_emu
 * library that CI tests every .cu with; docs/cuda-kernels.md). The runtime API, cuBLAS and
 * device-memory declarations are C-compatible (C linkage, as the real runtime's); the device-side
 * parts (qualifiers, threadIdx, launches, atomics, math, bfloat16) need C++17.
 *
 * How kernels run: OD_LAUNCH(kernel, grid, block, stream)(args...) runs the whole grid before it
 * returns, block after block (blockIdx.x fastest). The threads of a block are cooperative fibers on
 * one OS thread: a thread runs until it finishes or reaches __syncthreads(), which is a barrier of
 * all threads of the block still alive (a thread that returned early does not hold it up). A kernel
 * that never reaches a barrier runs its threads one after the other with no context switch.
 * __shared__ is `static`: correct because blocks never overlap; its contents persist between blocks
 * and launches (on a GPU they would be garbage), so a kernel must write shared memory before reading.
 *
 * Device memory (od_emu_malloc, cudaMalloc, the emulated device's alloc) lives in one reserved
 * region that is PROT_NONE except while a grid, a copy/memset or an emulated cuBLAS call runs:
 * host code that dereferences a device pointer gets SIGSEGV. Each allocation has an inaccessible
 * page after it and is placed at the end of its pages (64-byte aligned), so a kernel reading or
 * writing past the end of a buffer crashes too (an overrun within the 64-byte rounding does not);
 * freed memory stays inaccessible (addresses are never reused). Fresh allocations are filled with
 * 0xff bytes (NaN floats, -1 integers) as cudaMalloc memory is garbage: OD_EMU_POISON=0 turns that
 * off. Kernel arguments that are raw pointers must be NULL or device pointers: a host pointer makes
 * the launch fail with cudaErrorIllegalAddress (on the GPU it would be an illegal address).
 * Device pointers inside structs or device-side tables work (their memory opens on first touch
 * through a SIGSEGV handler, see emu.cc; in gdb: `handle SIGSEGV nostop noprint pass`).
 *
 * Not emulated (compile errors, as the rules in common.cuh forbid them): warp intrinsics (__shfl*,
 * __ballot*, cooperative groups), dynamic shared memory, inline PTX, textures, cuDNN. Streams are
 * synchronous (work runs when submitted, except on a capturing stream: see "Stream capture"
 * below); atomics are plain read-modify-writes (one OS thread).
 *
 * A template kernel with several template arguments has a comma that splits the macro
 * arguments of OD_LAUNCH: put the kernel in parentheses or name it through a function pointer,
 *     OD_LAUNCH((my_kernel<float, 3>), grid, block, stream)(args...);
 *     auto *kfn = my_kernel<float, 3>;  OD_LAUNCH(kfn, grid, block, stream)(args...);
 * (both work with nvcc too). Template arguments can also be left to deduction from the call
 * arguments exactly as with <<<>>>: OD_LAUNCH(my_kernel, ...)(x, n) deduces my_kernel<float>.
 * Arguments are converted to the parameter types as in a plain call (NULL for a pointer works). */
#ifndef OD_CUDA_EMU_H
#define OD_CUDA_EMU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define OD_EMU_DEFAULT(v) = v
extern "C" {
#else
#define OD_EMU_DEFAULT(v)
#endif

/* ---- runtime API subset ---------------------------------------------------------------------- */
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureWrongThread = 908,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
typedef enum cudaMemcpyKind cudaMemcpyKind;

typedef struct CUstream_st *cudaStream_t;
#define cudaStreamDefault 0x0
#define cudaStreamNonBlocking 0x1

cudaError_t cudaGetLastError(void);  /* returns and clears the last error of this OS thread */
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaMalloc(void **ptr, size_t bytes);
cudaError_t cudaFree(void *ptr);
/* Copies check that every device side lies inside one live allocation (cudaErrorInvalidValue
 * otherwise) and that host sides are not device memory; cudaMemcpyDefault infers the direction. */
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream OD_EMU_DEFAULT(0));
cudaError_t cudaMemset(void *ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream OD_EMU_DEFAULT(0));
cudaError_t cudaMallocAsync(void **ptr, size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void *ptr, cudaStream_t stream);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes); /* of the reserved region */
cudaError_t cudaStreamCreate(cudaStream_t *stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize(void);

/* Events (host clock; everything is synchronous). */
typedef struct CUevent_st *cudaEvent_t;
#define cudaEventDefault 0x0
#define cudaEventBlockingSync 0x1
#define cudaEventDisableTiming 0x2
cudaError_t cudaEventCreate(cudaEvent_t *event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream OD_EMU_DEFAULT(0));
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags OD_EMU_DEFAULT(0));

/* Pinned host memory: plain malloc here, but remembered, because a capturing stream accepts
 * copies from and to pinned memory only (as CUDA does; pageable copies synchronise). */
#define cudaHostAllocDefault 0x0
cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void **ptr, size_t bytes);
cudaError_t cudaFreeHost(void *ptr);

/* Stream capture and graphs (the CUDA 12 subset the trainer uses). Between
 * cudaStreamBeginCapture and cudaStreamEndCapture, work submitted on the stream is RECORDED
 * instead of run: kernel launches (the kernel and a copy of its arguments), cudaMemcpyAsync
 * (device to device, or between device and pinned host memory, the host side read or written
 * when the graph runs, as CUDA does), cudaMemsetAsync, cuBLAS calls on a handle bound to the
 * stream, and the fake cuDNN's calls (its handle has no stream: they follow the capture of the
 * calling OS thread). cudaGraphLaunch replays the records in order, each time it is called.
 * As in CUDA, calls that would synchronise or allocate while the calling thread captures
 * (ThreadLocal or Global mode) fail with cudaErrorStreamCaptureUnsupported and invalidate the
 * capture: cudaStreamSynchronize of the capturing stream, cudaDeviceSynchronize, cudaMemcpy,
 * cudaMemset, a pageable copy on the capturing stream, cudaMalloc/cudaFree (and od_emu_malloc /
 * od_emu_free, which the emulated device allocates with), cudaMemGetInfo, cudaHostAlloc and
 * cudaFreeHost. Work submitted to an invalidated capture is dropped with
 * cudaErrorStreamCaptureInvalidated, and cudaStreamEndCapture then returns that error and no
 * graph. Launches on another stream run at once. Relaxed mode refuses nothing. */
typedef enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
} cudaStreamCaptureMode;
typedef enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
} cudaStreamCaptureStatus;
typedef struct CUgraph_st *cudaGraph_t;
typedef struct CUgraphExec_st *cudaGraphExec_t;
typedef struct CUgraphNode_st *cudaGraphNode_t;
#define cudaGraphInstantiateFlagAutoFreeOnLaunch 1
#define cudaGraphInstantiateFlagUpload 2
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
/* Only the count: nodes must be NULL (*count = recorded operations). */
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count);

/* Device properties: an H100-like answer (132 SMs, 1024 threads per block, 48 KiB static shared
 * memory per block), for kernels that size grids by the SM count. */
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem, sharedMemPerBlock;
  int warpSize, maxThreadsPerBlock, maxThreadsDim[3], maxGridSize[3], multiProcessorCount;
  int major, minor, maxThreadsPerMultiProcessor;
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};
typedef enum cudaDeviceAttr cudaDeviceAttr;
typedef struct cudaDeviceProp cudaDeviceProp;
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);

/* ---- device memory (the emulation's own API) ------------------------------------------------ */
/* Allocates bytes of protected device memory (64-byte aligned; 0 bytes gives a valid pointer);
 * NULL when the region is exhausted. */
void *od_emu_malloc(size_t bytes);
/* Frees an od_emu_malloc pointer (NULL is a no-op); the memory stays inaccessible. A pointer that
 * is not a live allocation is counted (od_emu_bad_frees) and otherwise ignored. */
void od_emu_free(void *ptr);
/* 1 when p lies in the device region (live, freed or guard), 0 otherwise. */
int od_emu_is_device_ptr(const void *p);
/* Bytes currently allocated (requested sizes), and the count of invalid od_emu_free calls. */
size_t od_emu_live_bytes(void);
size_t od_emu_bad_frees(void);

/* ---- cuBLAS subset (column-major, CUBLAS_POINTER_MODE_HOST) ------------------------------------- */
typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
} cublasStatus_t;

typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;

typedef enum {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
  CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16,
} cublasMath_t;

typedef enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 } cublasPointerMode_t;

typedef enum {
  CUDA_R_32F = 0,
  CUDA_R_64F = 1,
  CUDA_R_16F = 2,
  CUDA_R_16BF = 14,
} cudaDataType_t;
typedef cudaDataType_t cudaDataType;

typedef enum {
  CUBLAS_COMPUTE_16F = 64,
  CUBLAS_COMPUTE_16F_PEDANTIC = 65,
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_PEDANTIC = 69,
  CUBLAS_COMPUTE_32F_FAST_16F = 74,
  CUBLAS_COMPUTE_32F_FAST_16BF = 75,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
  CUBLAS_COMPUTE_64F = 70,
} cublasComputeType_t;

typedef enum { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 } cublasGemmAlgo_t;

typedef struct cublasContext *cublasHandle_t;

cublasStatus_t cublasCreate(cublasHandle_t *handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *stream);
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode);
cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode); /* HOST only */
cublasStatus_t cublasGetPointerMode(cublasHandle_t handle, cublasPointerMode_t *mode);
const char *cublasGetStatusString(cublasStatus_t status);

/* C = alpha op(A) op(B) + beta C, column-major; CUBLAS_TF32_TENSOR_OP_MATH rounds A and B to TF32
 * as the tensor cores may. beta == 0: C is not read. */
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                           int n, int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k, const float *alpha,
                                         const float *A, int lda, long long strideA, const float *B, int ldb,
                                         long long strideB, const float *beta, float *C, int ldc,
                                         long long strideC, int batchCount);
/* A/B/C types: all CUDA_R_32F, or A/B CUDA_R_16BF with C CUDA_R_16BF or CUDA_R_32F (compute 32F);
 * alpha/beta are floats. FAST_TF32 / FAST_16BF round the float inputs to TF32 / bfloat16. */
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType_t Atype, int lda,
                            const void *B, cudaDataType_t Btype, int ldb, const void *beta, void *C,
                            cudaDataType_t Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo);
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k, const void *alpha,
                                          const void *A, cudaDataType_t Atype, int lda, long long strideA,
                                          const void *B, cudaDataType_t Btype, int ldb, long long strideB,
                                          const void *beta, void *C, cudaDataType_t Ctype, int ldc,
                                          long long strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo);

/* Lives in runtime/devices/cuda_device.c in the real build; here in emu.cc. */
const char *od_cublas_status_string(cublasStatus_t s);

#ifdef __cplusplus
}  // extern "C"
#endif

#ifdef __cplusplus
/* ---- C++ only: what device code and launches need ------------------------------------------- */
extern "C++" {

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <math.h>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---- qualifiers ---------------------------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__ static
#define __align__(n) __attribute__((aligned(n)))
/* __restrict__ is a g++ keyword already. */

/* ---- thread geometry ----------------------------------------------------------------------- */
struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

/* Set by the scheduler before each fiber (thread) resumes; per OS thread. */
extern __thread uint3 threadIdx;
extern __thread uint3 blockIdx;
extern __thread uint3 blockDim;
extern __thread uint3 gridDim;
static constexpr int warpSize = 32;

/* Barrier of the current block (see above). Calling it outside a kernel does nothing. */
void __syncthreads();
int __syncthreads_count(int predicate);
int __syncthreads_and(int predicate);
int __syncthreads_or(int predicate);
static inline void __threadfence() {}
static inline void __threadfence_block() {}
static inline void __threadfence_system() {}
template <class T>
static inline T __ldg(const T *p) {
  return *p;
}

template <class T>
cudaError_t cudaMemcpyToSymbol(T &symbol, const void *src, size_t bytes, size_t offset = 0,
                               cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
  if (offset + bytes > sizeof(T) || kind == cudaMemcpyDeviceToDevice) return cudaErrorInvalidValue;
  std::memcpy(reinterpret_cast<char *>(&symbol) + offset, src, bytes);
  return cudaSuccess;
}

/* ---- kernel launch ---------------------------------------------------------------------------- */
namespace od_emu {

struct launch_config {
  dim3 grid, block;
  cudaStream_t stream;
};

/* A raw-pointer kernel argument: it must be NULL or device memory, and its allocation is opened
 * before the grid runs (others open on first touch, see emu.cc). */
struct pointer_arg {
  const void *p;
  int index;
};

/* Runs body(closure) once per thread of the grid (in emu.cc). Validates the configuration first
 * (check_launch): a bad one sets cudaErrorInvalidConfiguration and runs nothing; a host pointer
 * among ptrs sets cudaErrorIllegalAddress and runs nothing. */
void run_grid(const launch_config &cfg, void (*body)(void *), void *closure, const pointer_arg *ptrs, int nptrs);
bool check_launch(const launch_config &cfg, const pointer_arg *ptrs, int nptrs);

/* Stream capture (see cudaStreamBeginCapture above). capture_state: the stream's
 * cudaStreamCaptureStatus (None for the legacy stream; cheap when nothing captures). record:
 * appends work to the stream's capture; false with cudaErrorStreamCaptureInvalidated when the
 * capture was invalidated. submit_thread: runs work now, or records it into the capture the
 * calling OS thread holds (for handles without a stream: the fake cuDNN); false when refused. */
int capture_state(cudaStream_t stream);
bool record(cudaStream_t stream, std::function<void()> work);
bool submit_thread(std::function<void()> work);

template <class A>
inline void collect_pointer(const A &a, int index, pointer_arg *out, int &n) {
  if constexpr (std::is_pointer_v<A> && !std::is_function_v<std::remove_pointer_t<A>>)
    out[n++] = pointer_arg{(const void *)a, index};
  else
    (void)a, (void)index, (void)out, (void)n;
}

/* A literal NULL or 0 for a pointer parameter stops being a null pointer constant once copied
 * (NULL is a long in g++): when the direct call does not compile, integer arguments are passed
 * through this, which converts to the integer or to a null pointer of any type. */
template <class T>
struct null_or_int {
  T v;
  operator T() const { return v; }
  template <class P>
  operator P *() const {
    return nullptr;
  }
};

template <class T>
inline decltype(auto) null_arg(T &x) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return null_or_int<T>{x};
  else
    return (x);
}

template <class Args>
inline int collect_pointers(const Args &args, pointer_arg *ptrs) {
  int nptrs = 0;
  std::apply(
      [&](const auto &...x) {
        int i = 0;
        (void)i;
        (collect_pointer(x, i++, ptrs, nptrs), ...);
      },
      args);
  return nptrs;
}

template <class Direct, class Fallback>
struct launcher {
  launch_config cfg;
  Direct direct;
  Fallback fallback;

  /* Runs the grid with these arguments. */
  template <class Args>
  void launch(Args &args) {
    pointer_arg ptrs[std::tuple_size_v<Args> + 1] = {};
    int nptrs = collect_pointers(args, ptrs);
    struct closure {
      launcher *self;
      Args *args;
    } c{this, &args};
    run_grid(cfg,
             [](void *p) {
               closure *cl = static_cast<closure *>(p);
               std::apply(
                   [cl](auto &...x) {
                     if constexpr (std::is_invocable_v<Direct &, decltype(x)...>)
                       cl->self->direct(x...);
                     else
                       cl->self->fallback(x...);
                   },
                   *cl->args);
             },
             &c, ptrs, nptrs);
  }

  template <class... A>
  void operator()(A &&...a) {
    using args_t = std::tuple<std::decay_t<A>...>;
    if (!capture_state(cfg.stream)) {
      args_t args(std::forward<A>(a)...);
      launch(args);
      return;
    }
    /* the stream captures: keep the kernel and a copy of its arguments for cudaGraphLaunch */
    auto rec = std::make_shared<std::pair<launcher, args_t>>(*this, args_t(std::forward<A>(a)...));
    pointer_arg ptrs[sizeof...(A) + 1] = {};
    int nptrs = collect_pointers(rec->second, ptrs);
    if (check_launch(cfg, ptrs, nptrs)) (void)record(cfg.stream, [rec] { rec->first.launch(rec->second); });
  }
};

template <class Direct, class Fallback>
inline launcher<Direct, Fallback> make_launcher(dim3 grid, dim3 block, cudaStream_t stream, Direct d, Fallback f) {
  return launcher<Direct, Fallback>{launch_config{grid, block, stream}, d, f};
}

}  // namespace od_emu

/* OD_LAUNCH (common.cuh) expands to this: the kernel is called through a generic lambda so that
 * template arguments are deduced from the launch arguments as with <<<>>>; the arguments are
 * copied once (decayed) and each thread calls the kernel with them (NULL/0 for a pointer
 * parameter goes through null_arg). The lambdas capture by value (a kernel named through a local
 * function pointer stays valid when a graph replays the launch later). */
#define od_emu_launcher(grid, block, stream, kernel)                                              \
  ::od_emu::make_launcher(                                                                        \
      (grid), (block), (stream),                                                                  \
      [=](auto &...od_emu_a_) -> decltype((void)kernel(od_emu_a_...)) { kernel(od_emu_a_...); },  \
      [=](auto &...od_emu_a_) { kernel(::od_emu::null_arg(od_emu_a_)...); })

/* ---- atomics (plain read-modify-write: all threads run on one OS thread) --------------------- */
#define OD_EMU_ATOMIC_RMW(name, T, expr) \
  static inline T name(T *address, T val) { \
    T old = *address;                       \
    *address = (expr);                      \
    return old;                             \
  }
OD_EMU_ATOMIC_RMW(atomicAdd, float, old + val)
OD_EMU_ATOMIC_RMW(atomicAdd, double, old + val)
OD_EMU_ATOMIC_RMW(atomicAdd, int, (int)((unsigned)old + (unsigned)val))
OD_EMU_ATOMIC_RMW(atomicAdd, unsigned, old + val)
OD_EMU_ATOMIC_RMW(atomicAdd, unsigned long long, old + val)
OD_EMU_ATOMIC_RMW(atomicSub, int, (int)((unsigned)old - (unsigned)val))
OD_EMU_ATOMIC_RMW(atomicSub, unsigned, old - val)
OD_EMU_ATOMIC_RMW(atomicMax, int, old > val ? old : val)
OD_EMU_ATOMIC_RMW(atomicMax, unsigned, old > val ? old : val)
OD_EMU_ATOMIC_RMW(atomicMax, long long, old > val ? old : val)
OD_EMU_ATOMIC_RMW(atomicMax, unsigned long long, old > val ? old : val)
OD_EMU_ATOMIC_RMW(atomicMin, int, old < val ? old : val)
OD_EMU_ATOMIC_RMW(atomicMin, unsigned, old < val ? old : val)
OD_EMU_ATOMIC_RMW(atomicMin, long long, old < val ? old : val)
OD_EMU_ATOMIC_RMW(atomicMin, unsigned long long, old < val ? old : val)
OD_EMU_ATOMIC_RMW(atomicExch, int, val)
OD_EMU_ATOMIC_RMW(atomicExch, unsigned, val)
OD_EMU_ATOMIC_RMW(atomicExch, unsigned long long, val)
OD_EMU_ATOMIC_RMW(atomicExch, float, val)
OD_EMU_ATOMIC_RMW(atomicAnd, int, old & val)
OD_EMU_ATOMIC_RMW(atomicAnd, unsigned, old & val)
OD_EMU_ATOMIC_RMW(atomicOr, int, old | val)
OD_EMU_ATOMIC_RMW(atomicOr, unsigned, old | val)
OD_EMU_ATOMIC_RMW(atomicXor, int, old ^ val)
OD_EMU_ATOMIC_RMW(atomicXor, unsigned, old ^ val)
#undef OD_EMU_ATOMIC_RMW
#define OD_EMU_ATOMIC_CAS(T)                                       \
  static inline T atomicCAS(T *address, T compare, T val) {       \
    T old = *address;                                              \
    if (old == compare) *address = val;                            \
    return old;                                                    \
  }
OD_EMU_ATOMIC_CAS(int)
OD_EMU_ATOMIC_CAS(unsigned)
OD_EMU_ATOMIC_CAS(unsigned long long)
OD_EMU_ATOMIC_CAS(unsigned short)
#undef OD_EMU_ATOMIC_CAS

/* ---- math beyond <cmath> ------------------------------------------------------------------------ */
/* (glibc's <math.h> declares __expf, __logf, __log2f, __powf, __sinf, __cosf, __tanf already.) */
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); } /* NaN -> 0 */
static inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
static inline unsigned __float_as_uint(float x) { unsigned i; std::memcpy(&i, &x, 4); return i; }
static inline float __int_as_float(int i) { float x; std::memcpy(&x, &i, 4); return x; }
static inline float __uint_as_float(unsigned i) { float x; std::memcpy(&x, &i, 4); return x; }
static inline int __float2int_rz(float x) { return (int)x; }
static inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
static inline int __float2int_rd(float x) { return (int)floorf(x); }
static inline int __float2int_ru(float x) { return (int)ceilf(x); }
static inline float __int2float_rn(int i) { return (float)i; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __mul24(int a, int b) { return a * b; }
static inline unsigned __umul24(unsigned a, unsigned b) { return a * b; }

/* max/min overloads as CUDA declares them (same types, plus the mixed ones it has). */
#define OD_EMU_MINMAX(T)                                      \
  static inline T max(T a, T b) { return a > b ? a : b; }     \
  static inline T min(T a, T b) { return a < b ? a : b; }
OD_EMU_MINMAX(int)
OD_EMU_MINMAX(unsigned)
OD_EMU_MINMAX(long)
OD_EMU_MINMAX(unsigned long)
OD_EMU_MINMAX(long long)
OD_EMU_MINMAX(unsigned long long)
#undef OD_EMU_MINMAX
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline float min(float a, float b) { return fminf(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(float a, double b) { return fmax((double)a, b); }
static inline double min(float a, double b) { return fmin((double)a, b); }
static inline double max(double a, float b) { return fmax(a, (double)b); }
static inline double min(double a, float b) { return fmin(a, (double)b); }
static inline unsigned max(int a, unsigned b) { return max((unsigned)a, b); }
static inline unsigned min(int a, unsigned b) { return min((unsigned)a, b); }
static inline unsigned max(unsigned a, int b) { return max(a, (unsigned)b); }
static inline unsigned min(unsigned a, int b) { return min(a, (unsigned)b); }

/* ---- bfloat16 ------------------------------------------------------------------------------------ */
struct __nv_bfloat16_raw {
  unsigned short x;
};

static inline unsigned short od_emu_f32_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu; /* NaN stays NaN (CUDA's canonical one) */
  u += 0x7fffu + ((u >> 16) & 1u);                     /* round to nearest even */
  return (unsigned short)(u >> 16);
}
static inline float od_emu_bf16_bits_to_f32(unsigned short b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  constexpr __nv_bfloat16(__nv_bfloat16_raw r) : __x(r.x) {}
  __nv_bfloat16(float f) : __x(od_emu_f32_to_bf16_bits(f)) {}
  operator float() const { return od_emu_bf16_bits_to_f32(__x); }
  operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};
typedef __nv_bfloat16 nv_bfloat16;

static inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16_raw{od_emu_f32_to_bf16_bits(f)}; }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
static inline __nv_bfloat16 __float2bfloat16_rz(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16_raw{0x7fffu};
  return __nv_bfloat16_raw{(unsigned short)(u >> 16)};
}
static inline float __bfloat162float(__nv_bfloat16 b) { return od_emu_bf16_bits_to_f32(b.__x); }
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16_raw{u}; }

}  // extern "C++"
#endif /* __cplusplus */

#endif
