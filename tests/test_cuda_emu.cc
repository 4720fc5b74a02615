/* tests/test_cuda_emu.cc: the host emulation of CUDA (ops/cuda/emu.h): block barriers and shared
 * memory, grid-stride coverage, launch validation, cuBLAS GEMM against a naive row-major reference,
 * the protection of device memory from host code, and the emulated device's ops table. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "ops/cuda/common.cuh"

#if defined(__SANITIZE_ADDRESS__)
/* The protection tests expect a plain SIGSEGV: leave SIGSEGV to the emulation and the default. */
extern "C" const char *__asan_default_options(void) { return "handle_segv=0"; }
#endif

/* ---- helpers ------------------------------------------------------------------------------------ */

template <class T>
static T *dev_alloc(size_t n) {
  void *p = od_emu_malloc(n * sizeof(T));
  ck_assert_ptr_nonnull(p);
  return static_cast<T *>(p);
}

template <class T>
static void upload(T *dst, const std::vector<T> &src) {
  ck_assert_int_eq(cudaMemcpy(dst, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
}

template <class T>
static std::vector<T> download(const T *src, size_t n) {
  std::vector<T> out(n);
  ck_assert_int_eq(cudaMemcpy(out.data(), src, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return out;
}

/* Deterministic values in [-1, 1). */
static std::vector<float> pattern(size_t n, unsigned seed) {
  std::vector<float> v(n);
  unsigned s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    v[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return v;
}

/* ---- kernels under test ---------------------------------------------------------------------------- */

/* Sum of each block's slice with a shared-memory tree: out[blockIdx.x] = sum(in[block's range]). */
__global__ void block_sum_kernel(const float *in, int n, float *out) {
  __shared__ float buf[256];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  buf[threadIdx.x] = i < n ? in[i] : 0.0f;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}

/* Threads that leave before the barrier must not hold up the others. */
__global__ void early_exit_kernel(int *out) {
  __shared__ int count[1];
  if (threadIdx.x == 0) count[0] = 0;
  __syncthreads();
  if (threadIdx.x % 3 == 0) return;
  atomicAdd(&count[0], 1);
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = count[0];
}

__global__ void count_kernel(int *hits, int64_t n) {
  OD_GRID_LOOP(i, n) { atomicAdd(&hits[i], 1); }
}

/* 2-D/3-D geometry: each thread writes its linear id at its own slot. */
__global__ void geometry_kernel(unsigned *out) {
  unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned bid = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  out[bid * per_block + tid] = bid * 1000u + tid;
}

template <class T>
__global__ void scale_kernel(T *x, int n, T factor) {
  OD_GRID_LOOP(i, n) { x[i] *= factor; }
}

/* Device pointers reached through a struct argument and through a device-side pointer table. */
struct two_ptrs {
  const float *src;
  float *const *dst_table; /* device array of device pointers */
};
__global__ void indirect_kernel(two_ptrs p, int n) {
  OD_GRID_LOOP(i, n) { p.dst_table[i % 2][i / 2] = p.src[i]; }
}

template <class T, int N>
__global__ void scale_n_kernel(T *x, const int *unused, int n) {
  OD_GRID_LOOP(i, n) { x[i] *= (T)N; }
}

/* All 1024 threads of a block cooperate: reverse an array in shared memory. */
__global__ void reverse_kernel(int *x) {
  __shared__ int buf[1024];
  unsigned t = threadIdx.x;
  buf[t] = x[blockIdx.x * blockDim.x + t];
  __syncthreads();
  x[blockIdx.x * blockDim.x + t] = buf[blockDim.x - 1 - t];
}

__global__ void syncthreads_count_kernel(int *out) {
  int c = __syncthreads_count(threadIdx.x % 2 == 0);
  int a = __syncthreads_and(threadIdx.x < 1000);
  int o = __syncthreads_or(threadIdx.x == 5);
  if (threadIdx.x == 0) {
    out[0] = c;
    out[1] = a;
    out[2] = o;
  }
}

/* ---- kernels and launches ------------------------------------------------------------------------- */

START_TEST(test_block_reduction) {
  const int sizes[] = {1, 255, 256, 1000, 4097, 100003};
  for (int n : sizes) {
    std::vector<float> h = pattern((size_t)n, (unsigned)n);
    int blocks = (n + 255) / 256;
    float *x = dev_alloc<float>((size_t)n), *partial = dev_alloc<float>((size_t)blocks);
    upload(x, h);
    OD_LAUNCH(block_sum_kernel, blocks, 256, 0)(x, n, partial);
    ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
    std::vector<float> p = download(partial, (size_t)blocks);
    double got = 0.0, want = 0.0;
    for (float v : p) got += v;
    for (float v : h) want += v;
    ck_assert_double_eq_tol(got, want, 1e-3);
    od_emu_free(x);
    od_emu_free(partial);
  }
}
END_TEST

START_TEST(test_early_exit_barrier) {
  const int threads = 100, blocks = 3;
  int *out = dev_alloc<int>(threads * blocks);
  ck_assert_int_eq(cudaMemset(out, 0, threads * blocks * sizeof(int)), cudaSuccess);
  OD_LAUNCH(early_exit_kernel, blocks, threads, 0)(out);
  ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
  std::vector<int> h = download(out, threads * blocks);
  for (int b = 0; b < blocks; b++)
    for (int t = 0; t < threads; t++) ck_assert_int_eq(h[b * threads + t], t % 3 == 0 ? 0 : 66);
  od_emu_free(out);
}
END_TEST

START_TEST(test_syncthreads_predicates) {
  int *out = dev_alloc<int>(3);
  OD_LAUNCH(syncthreads_count_kernel, 2, 77, 0)(out);
  ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
  std::vector<int> h = download(out, 3);
  ck_assert_int_eq(h[0], 39);
  ck_assert_int_eq(h[1], 1);
  ck_assert_int_eq(h[2], 1);
  od_emu_free(out);
}
END_TEST

START_TEST(test_grid_stride_covers_once) {
  const int64_t sizes[] = {1, 300, 65536 * 3 + 7};
  for (int64_t n : sizes) {
    int *hits = dev_alloc<int>((size_t)n);
    ck_assert_int_eq(cudaMemset(hits, 0, (size_t)n * sizeof(int)), cudaSuccess);
    /* a grid smaller than n / threads: every thread loops */
    unsigned blocks = od_cuda_blocks(n) > 7 ? 7 : od_cuda_blocks(n);
    OD_LAUNCH(count_kernel, blocks, OD_CUDA_THREADS, 0)(hits, n);
    ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
    std::vector<int> h = download(hits, (size_t)n);
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(h[(size_t)i], 1);
    od_emu_free(hits);
  }
}
END_TEST

START_TEST(test_geometry_3d) {
  dim3 grid(3, 2, 2), block(4, 3, 2);
  unsigned total = 3 * 2 * 2 * 4 * 3 * 2;
  unsigned *out = dev_alloc<unsigned>(total);
  OD_LAUNCH(geometry_kernel, grid, block, 0)(out);
  ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
  std::vector<unsigned> h = download(out, total);
  for (unsigned i = 0; i < total; i++) ck_assert_uint_eq(h[i], (i / 24) * 1000u + i % 24);
  od_emu_free(out);
}
END_TEST

START_TEST(test_template_kernel) {
  std::vector<float> h = {1, 2, 3, 4, 5};
  float *x = dev_alloc<float>(5);
  upload(x, h);
  OD_LAUNCH(scale_kernel, 1, 32, 0)(x, 5, 2.0f); /* T deduced as with <<<>>> */
  auto *kfn = scale_kernel<float>;                /* explicit instantiation through a pointer */
  OD_LAUNCH(kfn, 1, 32, 0)(x, 5, 0.5f);
  OD_LAUNCH(scale_kernel<float>, 2, 3, 0)(x, 5, 3.0f);
  /* several template arguments: parenthesised (nvcc accepts it too); NULL for a pointer */
  OD_LAUNCH((scale_n_kernel<float, 2>), 1, 8, 0)(x, NULL, 5);
  ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
  std::vector<float> back = download(x, 5);
  for (int i = 0; i < 5; i++) ck_assert_float_eq(back[(size_t)i], 6.0f * h[(size_t)i]);
  od_emu_free(x);
}
END_TEST

START_TEST(test_indirect_pointers) {
  const int n = 9;
  std::vector<float> h = pattern(n, 3);
  float *src = dev_alloc<float>(n), *d0 = dev_alloc<float>(5), *d1 = dev_alloc<float>(4);
  float **table = dev_alloc<float *>(2);
  upload(src, h);
  upload(table, std::vector<float *>{d0, d1});
  OD_LAUNCH(indirect_kernel, 2, 4, 0)(two_ptrs{src, table}, n);
  ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
  std::vector<float> a = download(d0, 5), b = download(d1, 4);
  for (int i = 0; i < n; i++) ck_assert_float_eq(i % 2 ? b[(size_t)i / 2] : a[(size_t)i / 2], h[(size_t)i]);
  od_emu_free(src);
  od_emu_free(d0);
  od_emu_free(d1);
  od_emu_free(table);
}
END_TEST

START_TEST(test_full_block_barrier) {
  const int blocks = 3;
  std::vector<int> h(1024 * blocks);
  for (size_t i = 0; i < h.size(); i++) h[i] = (int)i;
  int *x = dev_alloc<int>(h.size());
  upload(x, h);
  OD_LAUNCH(reverse_kernel, blocks, 1024, 0)(x);
  ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
  std::vector<int> back = download(x, h.size());
  for (int b = 0; b < blocks; b++)
    for (int t = 0; t < 1024; t++) ck_assert_int_eq(back[(size_t)(b * 1024 + t)], b * 1024 + 1023 - t);
  od_emu_free(x);
}
END_TEST

START_TEST(test_invalid_launch) {
  int *hits = dev_alloc<int>(4);
  ck_assert_int_eq(cudaMemset(hits, 0, 4 * sizeof(int)), cudaSuccess);
  OD_LAUNCH(count_kernel, 1, 2048, 0)(hits, (int64_t)4);
  ck_assert_int_eq(cudaPeekAtLastError(), cudaErrorInvalidConfiguration);
  ck_assert_int_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
  ck_assert_int_eq(cudaGetLastError(), cudaSuccess); /* cleared */
  ck_assert_str_eq(cudaGetErrorString(cudaErrorInvalidConfiguration), "invalid configuration argument");
  OD_LAUNCH(count_kernel, 0, 32, 0)(hits, (int64_t)4);
  ck_assert_int_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
  OD_LAUNCH(count_kernel, dim3(1, 65536), 32, 0)(hits, (int64_t)4);
  ck_assert_int_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
  OD_LAUNCH(count_kernel, 1, dim3(32, 32, 2), 0)(hits, (int64_t)4);
  ck_assert_int_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
  std::vector<int> h = download(hits, 4);
  for (int v : h) ck_assert_int_eq(v, 0); /* nothing ran */
  /* a host pointer as a kernel argument */
  std::vector<int> host(4, 0);
  OD_LAUNCH(count_kernel, 1, 32, 0)(host.data(), (int64_t)4);
  ck_assert_int_eq(cudaGetLastError(), cudaErrorIllegalAddress);
  ck_assert_int_eq(host[0], 0);
  od_emu_free(hits);
}
END_TEST

START_TEST(test_memcpy_checks) {
  float *x = dev_alloc<float>(10);
  float host[12] = {0};
  ck_assert_int_eq(cudaMemcpy(x, host, 10 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  ck_assert_int_eq(cudaMemcpy(x, host, 11 * sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  ck_assert_int_eq(cudaGetLastError(), cudaErrorInvalidValue);
  ck_assert_int_eq(cudaMemcpy(host, x, 4, cudaMemcpyHostToDevice), cudaErrorInvalidValue); /* wrong way */
  ck_assert_int_eq(cudaMemcpy(x + 2, x, 4 * sizeof(float), cudaMemcpyDeviceToDevice), cudaSuccess);
  ck_assert_int_eq(cudaMemcpy(host, x, 10 * sizeof(float), cudaMemcpyDefault), cudaSuccess);
  ck_assert_int_eq(cudaMemsetAsync(x, 0, 11 * sizeof(float), 0), cudaErrorInvalidValue);
  od_emu_free(x);
  ck_assert_int_eq(cudaMemcpy(host, x, 4, cudaMemcpyDeviceToHost), cudaErrorInvalidValue); /* freed */
  (void)cudaGetLastError();
  /* fresh memory is poisoned (NaN floats), as cudaMalloc memory is garbage */
  float *y = dev_alloc<float>(3);
  std::vector<float> p = download(y, 3);
  ck_assert(std::isnan(p[0]) && std::isnan(p[2]));
  od_emu_free(y);
}
END_TEST

/* ---- cuBLAS ---------------------------------------------------------------------------------------- */

/* Row-major reference of the column-major cuBLAS call: C^T (n x m, row-major view) etc. Computed
 * from the definition: C[i,j] (column-major, ldc) = alpha * sum_p opA[i,p] opB[p,j] + beta C[i,j]. */
static void ref_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const std::vector<float> &A, int lda,
                     const std::vector<float> &B, int ldb, float beta, std::vector<float> &C, int ldc) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int p = 0; p < k; p++) {
        /* element (r, c) of a column-major matrix with leading dimension ld is at r + c * ld */
        double a = ta ? A[(size_t)p + (size_t)i * lda] : A[(size_t)i + (size_t)p * lda];
        double b = tb ? B[(size_t)j + (size_t)p * ldb] : B[(size_t)p + (size_t)j * ldb];
        s += a * b;
      }
      float &c = C[(size_t)i + (size_t)j * ldc];
      c = (float)(alpha * s + (beta == 0.0f ? 0.0 : beta * (double)c));
    }
}

START_TEST(test_sgemm_all_transposes) {
  cublasHandle_t h = nullptr;
  ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  const int m = 5, n = 7, k = 3;
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    int arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
    int lda = arows + 2, ldb = brows + 3, ldc = m + 1;
    std::vector<float> A = pattern((size_t)lda * acols, 1u + t), B = pattern((size_t)ldb * bcols, 11u + t),
                       C = pattern((size_t)ldc * n, 21u + t);
    std::vector<float> want = C;
    const float alpha = 1.5f, beta = -0.75f;
    ref_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, want, ldc);
    float *dA = dev_alloc<float>(A.size()), *dB = dev_alloc<float>(B.size()), *dC = dev_alloc<float>(C.size());
    upload(dA, A);
    upload(dB, B);
    upload(dC, C);
    ck_assert_int_eq(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
                                 dA, lda, dB, ldb, &beta, dC, ldc),
                     CUBLAS_STATUS_SUCCESS);
    std::vector<float> got = download(dC, C.size());
    for (size_t i = 0; i < got.size(); i++) ck_assert_float_eq_tol(got[i], want[i], 1e-5f);
    /* the padding rows of C (row m of each column) are untouched */
    for (int j = 0; j < n; j++) ck_assert_float_eq(got[(size_t)m + (size_t)j * ldc], C[(size_t)m + (size_t)j * ldc]);
    od_emu_free(dA);
    od_emu_free(dB);
    od_emu_free(dC);
  }
  ck_assert_int_eq(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}
END_TEST

START_TEST(test_sgemm_checks_and_beta_zero) {
  cublasHandle_t h = nullptr;
  ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  float one = 1.0f, zero = 0.0f;
  float *dA = dev_alloc<float>(4), *dB = dev_alloc<float>(4), *dC = dev_alloc<float>(4);
  upload(dA, std::vector<float>{1, 2, 3, 4});
  upload(dB, std::vector<float>{1, 0, 0, 1});
  /* dC is poisoned with NaN: beta == 0 must not read it */
  ck_assert_int_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA, 2, dB, 2, &zero, dC, 2),
                   CUBLAS_STATUS_SUCCESS);
  std::vector<float> c = download(dC, 4);
  ck_assert_float_eq(c[0], 1.0f);
  ck_assert_float_eq(c[3], 4.0f);
  ck_assert_int_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, -1, 2, 2, &one, dA, 2, dB, 2, &zero, dC, 2),
                   CUBLAS_STATUS_INVALID_VALUE);
  ck_assert_int_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA, 1, dB, 2, &zero, dC, 2),
                   CUBLAS_STATUS_INVALID_VALUE);
  ck_assert_int_eq(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, 3, 2, 1, &one, dA, 1, dB, 1, &zero, dC, 3),
                   CUBLAS_STATUS_SUCCESS);                                   /* A^T: lda >= k = 1 */
  ck_assert_int_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 2, &one, dA, 2, dB, 1, &zero, dC, 2),
                   CUBLAS_STATUS_INVALID_VALUE);                             /* B^T: ldb >= n = 2 */
  ck_assert_int_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA, 2, dB, 2, &zero, dC, 1),
                   CUBLAS_STATUS_INVALID_VALUE);
  ck_assert_int_eq(cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA, 2, dB, 2, &zero, dC, 2),
                   CUBLAS_STATUS_NOT_INITIALIZED);
  ck_assert_str_eq(od_cublas_status_string(CUBLAS_STATUS_INVALID_VALUE), "invalid value");
  od_emu_free(dA);
  od_emu_free(dB);
  od_emu_free(dC);
  cublasDestroy(h);
}
END_TEST

START_TEST(test_gemm_strided_batched) {
  cublasHandle_t h = nullptr;
  ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  const int m = 3, n = 4, k = 5, batch = 3;
  const long long sA = m * k + 1, sB = k * n + 2, sC = m * n + 3;
  std::vector<float> A = pattern((size_t)sA * batch, 5), B = pattern((size_t)sB * batch, 6),
                     C = pattern((size_t)sC * batch, 7);
  std::vector<float> want = C;
  float alpha = 0.5f, beta = 2.0f;
  for (int b = 0; b < batch; b++) {
    std::vector<float> a(A.begin() + b * sA, A.begin() + b * sA + m * k);
    std::vector<float> bb(B.begin() + b * sB, B.begin() + b * sB + k * n);
    std::vector<float> c(want.begin() + b * sC, want.begin() + b * sC + m * n);
    ref_gemm(false, false, m, n, k, alpha, a, m, bb, k, beta, c, m);
    std::copy(c.begin(), c.end(), want.begin() + b * sC);
  }
  float *dA = dev_alloc<float>(A.size()), *dB = dev_alloc<float>(B.size()), *dC = dev_alloc<float>(C.size());
  upload(dA, A);
  upload(dB, B);
  upload(dC, C);
  ck_assert_int_eq(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, dA, m, sA, dB, k, sB,
                                             &beta, dC, m, sC, batch),
                   CUBLAS_STATUS_SUCCESS);
  std::vector<float> got = download(dC, C.size());
  for (size_t i = 0; i < got.size(); i++) ck_assert_float_eq_tol(got[i], want[i], 1e-5f);
  /* the same through GemmStridedBatchedEx, fp32 */
  upload(dC, C);
  ck_assert_int_eq(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, dA, CUDA_R_32F, m, sA,
                                              dB, CUDA_R_32F, k, sB, &beta, dC, CUDA_R_32F, m, sC, batch,
                                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  got = download(dC, C.size());
  for (size_t i = 0; i < got.size(); i++) ck_assert_float_eq_tol(got[i], want[i], 1e-5f);
  od_emu_free(dA);
  od_emu_free(dB);
  od_emu_free(dC);
  cublasDestroy(h);
}
END_TEST

START_TEST(test_gemmex_bf16_rounds_inputs) {
  cublasHandle_t h = nullptr;
  ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  /* 1 + 2^-10 is not a bfloat16 (8-bit mantissa): it rounds to 1 */
  const float x = 1.0f + 1.0f / 1024.0f;
  ck_assert_float_eq(__bfloat162float(__float2bfloat16(x)), 1.0f);
  ck_assert_float_eq(__bfloat162float(__float2bfloat16(1.0f + 3.0f / 256.0f)), 1.0f + 4.0f / 256.0f); /* tie->even */
  ck_assert(std::isnan(__bfloat162float(__float2bfloat16(NAN))));
  std::vector<__nv_bfloat16> A = {__float2bfloat16(x), __float2bfloat16(2.0f)}; /* 1 x 2 */
  std::vector<__nv_bfloat16> B = {__float2bfloat16(3.0f), __float2bfloat16(x)}; /* 2 x 1 */
  __nv_bfloat16 *dA = dev_alloc<__nv_bfloat16>(2), *dB = dev_alloc<__nv_bfloat16>(2);
  float *dC = dev_alloc<float>(1);
  upload(dA, A);
  upload(dB, B);
  float one = 1.0f, zero = 0.0f;
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, &one, dA, CUDA_R_16BF, 1, dB, CUDA_R_16BF, 2,
                                &zero, dC, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  ck_assert_float_eq(download(dC, 1)[0], 5.0f); /* 1*3 + 2*1, not 3.0029 + 2.0019 */
  /* fp32 inputs with FAST_16BF are rounded too; plain COMPUTE_32F is exact */
  float *fA = dev_alloc<float>(2), *fB = dev_alloc<float>(2);
  upload(fA, std::vector<float>{x, 2.0f});
  upload(fB, std::vector<float>{3.0f, x});
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, &one, fA, CUDA_R_32F, 1, fB, CUDA_R_32F, 2,
                                &zero, dC, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  ck_assert_float_eq(download(dC, 1)[0], 5.0f);
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, &one, fA, CUDA_R_32F, 1, fB, CUDA_R_32F, 2,
                                &zero, dC, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  ck_assert_float_eq_tol(download(dC, 1)[0], 3.0f * x + 2.0f * x, 1e-6f);
  /* bf16 output */
  __nv_bfloat16 *dCb = dev_alloc<__nv_bfloat16>(1);
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, &one, dA, CUDA_R_16BF, 1, dB, CUDA_R_16BF, 2,
                                &zero, dCb, CUDA_R_16BF, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  ck_assert_float_eq(__bfloat162float(download(dCb, 1)[0]), 5.0f);
  /* unsupported mix */
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, &one, dA, CUDA_R_16BF, 1, fB, CUDA_R_32F, 2,
                                &zero, dC, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_NOT_SUPPORTED);
  od_emu_free(dA);
  od_emu_free(dB);
  od_emu_free(dC);
  od_emu_free(dCb);
  od_emu_free(fA);
  od_emu_free(fB);
  cublasDestroy(h);
}
END_TEST

/* ---- protection ------------------------------------------------------------------------------------ */

START_TEST(test_host_read_of_device_memory_crashes) {
  float *x = dev_alloc<float>(16);
  ck_assert_int_eq(cudaMemset(x, 0, 16 * sizeof(float)), cudaSuccess);
  volatile float v = x[3]; /* host code touching device memory: SIGSEGV */
  (void)v;
}
END_TEST

START_TEST(test_freed_memory_stays_inaccessible) {
  float *x = dev_alloc<float>(16);
  float *y = dev_alloc<float>(16);
  (void)y;
  od_emu_free(x);
  /* even while a grid runs (y is open), x stays closed */
  OD_LAUNCH(scale_kernel<float>, 1, 1, 0)(x, 1, 2.0f);
}
END_TEST

START_TEST(test_kernel_overrun_crashes) {
  float *x = dev_alloc<float>(16); /* 64 bytes: the end of x is the end of its pages */
  OD_LAUNCH(scale_kernel<float>, 1, 32, 0)(x, 17, 2.0f);
}
END_TEST

/* ---- the emulated device --------------------------------------------------------------------------- */

START_TEST(test_device_roundtrip) {
  struct od_err err = {};
  struct od_device *dev = nullptr;
  ck_assert_int_eq(od_cuda_device_count(), 1);
  ck_assert_int_eq(od_device_open("cuda:0", &dev, &err), OD_OK);
  ck_assert_int_eq(dev->kind, OD_DEVICE_CUDA);
  ck_assert_int_eq(dev->index, 0);
  ck_assert_str_eq(dev->name, "cuda:0 (host emulation)");
  ck_assert_ptr_nonnull(od_cuda_cublas(dev));
  ck_assert_ptr_nonnull(od_cuda_stream(dev));
  enum { N = 100003 };
  std::vector<float> host(N), back(N);
  for (int i = 0; i < N; i++) host[i] = (float)(i % 977) - 3.5f;
  void *p = nullptr, *q = nullptr;
  ck_assert_int_eq(dev->ops->alloc(dev, N * sizeof(float), &p, &err), OD_OK);
  ck_assert_int_eq(dev->ops->alloc(dev, N * sizeof(float), &q, &err), OD_OK);
  ck_assert_int_eq((uintptr_t)p % 64, 0);
  ck_assert_int_eq(dev->ops->to_device(dev, p, host.data(), N * sizeof(float), &err), OD_OK);
  ck_assert_int_eq(dev->ops->copy(dev, q, p, N * sizeof(float), &err), OD_OK);
  ck_assert_int_eq(dev->ops->to_host(dev, back.data(), q, N * sizeof(float), &err), OD_OK);
  ck_assert(back == host);
  ck_assert_int_eq(dev->ops->fill_f32(dev, (float *)p, N, -1.25f, &err), OD_OK);
  ck_assert_int_eq(dev->ops->to_host(dev, back.data(), p, N * sizeof(float), &err), OD_OK);
  for (int i = 0; i < N; i++) ck_assert_float_eq(back[i], -1.25f);
  ck_assert_int_eq(dev->ops->zero(dev, q, N * sizeof(float), &err), OD_OK);
  ck_assert_int_eq(dev->ops->to_host(dev, back.data(), q, N * sizeof(float), &err), OD_OK);
  for (int i = 0; i < N; i++) ck_assert_float_eq(back[i], 0.0f);
  /* a copy past the end fails with a message */
  ck_assert_int_eq(dev->ops->to_host(dev, back.data(), q, (N + 1) * sizeof(float), &err), OD_ERR_CUDA);
  ck_assert(strstr(err.msg, "invalid argument"));
  ck_assert_int_eq(dev->ops->sync(dev, &err), OD_OK);
  void *ws = nullptr, *ws2 = nullptr;
  ck_assert_int_eq(od_cuda_workspace(dev, 1000, &ws, &err), OD_OK);
  ck_assert_int_eq(od_cuda_workspace(dev, 500, &ws2, &err), OD_OK);
  ck_assert_ptr_eq(ws, ws2);
  ck_assert_int_eq(od_cuda_workspace(dev, 5000, &ws2, &err), OD_OK);
  ck_assert_int_eq(cudaMemset(ws2, 0, 5000), cudaSuccess);
  dev->ops->free(dev, p);
  dev->ops->free(dev, q);
  od_device_close(dev);
  ck_assert_int_eq(od_device_open("cuda:1", &dev, &err), OD_ERR_NO_DEVICE);
}
END_TEST

START_TEST(test_device_hidden) {
  struct od_err err = {};
  struct od_device *dev = nullptr;
  setenv("OD_EMU_NO_DEVICE", "1", 1);
  ck_assert_int_eq(od_cuda_device_count(), 0);
  ck_assert_int_eq(od_device_open("cuda", &dev, &err), OD_ERR_NO_DEVICE);
  ck_assert_ptr_null(dev);
  unsetenv("OD_EMU_NO_DEVICE");
}
END_TEST

int main(void) {
  Suite *s = suite_create("cuda_emu");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_block_reduction);
  tcase_add_test(tc, test_early_exit_barrier);
  tcase_add_test(tc, test_syncthreads_predicates);
  tcase_add_test(tc, test_grid_stride_covers_once);
  tcase_add_test(tc, test_geometry_3d);
  tcase_add_test(tc, test_template_kernel);
  tcase_add_test(tc, test_indirect_pointers);
  tcase_add_test(tc, test_full_block_barrier);
  tcase_add_test(tc, test_invalid_launch);
  tcase_add_test(tc, test_memcpy_checks);
  tcase_add_test(tc, test_sgemm_all_transposes);
  tcase_add_test(tc, test_sgemm_checks_and_beta_zero);
  tcase_add_test(tc, test_gemm_strided_batched);
  tcase_add_test(tc, test_gemmex_bf16_rounds_inputs);
  tcase_add_test(tc, test_device_roundtrip);
  tcase_add_test(tc, test_device_hidden);
  suite_add_tcase(s, tc);
  /* These crash on purpose: they need fork mode (set for the whole runner below). */
  TCase *prot = tcase_create("protection");
  tcase_add_test_raise_signal(prot, test_host_read_of_device_memory_crashes, SIGSEGV);
  tcase_add_test_raise_signal(prot, test_freed_memory_stays_inaccessible, SIGSEGV);
  tcase_add_test_raise_signal(prot, test_kernel_overrun_crashes, SIGSEGV);
  suite_add_tcase(s, prot);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
