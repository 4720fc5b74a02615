/* runtime/device.h: one interface for every place tensors can live (CPU memory, a CUDA device).
 *
 * A device is opened by name ("cpu", "cuda", "cuda:1") and owns what work on it needs: for CUDA a
 * stream, the cuBLAS and cuDNN handles and a workspace (no globals anywhere). Memory calls go
 * through the ops table, so the executor and the parameter block never branch on the device kind.
 * All copies are ordered on the device's stream; od_device_sync waits for them. */
#ifndef OD_DEVICE_H
#define OD_DEVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/status.h"

enum od_device_kind {
  OD_DEVICE_CPU = 0,
  OD_DEVICE_CUDA = 1,
  OD_DEVICE_COUNT
};

struct od_device;
struct od_memo;

/* Math precision of a device's kernels (train.precision). Master weights, losses and
 * BatchNormalization statistics stay float32 in every mode.
 *   FP32  plain float32 everywhere (cuDNN/cuBLAS without tensor-core TF32)
 *   TF32  float32 storage, convolutions and GEMMs on TF32 tensor cores
 *   BF16  convolutions and GEMMs on bfloat16 tensor cores, float32 accumulation */
enum od_precision { OD_PRECISION_FP32 = 0, OD_PRECISION_TF32, OD_PRECISION_BF16 };

struct od_device_ops {
  enum od_status (*alloc)(struct od_device *dev, size_t bytes, void **out, struct od_err *err);
  void (*free)(struct od_device *dev, void *ptr);
  enum od_status (*to_device)(struct od_device *dev, void *dst, const void *host_src, size_t bytes,
                              struct od_err *err);
  enum od_status (*to_host)(struct od_device *dev, void *host_dst, const void *src, size_t bytes,
                            struct od_err *err);
  enum od_status (*copy)(struct od_device *dev, void *dst, const void *src, size_t bytes, struct od_err *err);
  enum od_status (*zero)(struct od_device *dev, void *ptr, size_t bytes, struct od_err *err);
  /* Sets n floats at ptr to value (used to seed gradients, e.g. dLoss = 1). */
  enum od_status (*fill_f32)(struct od_device *dev, float *ptr, size_t n, float value, struct od_err *err);
  enum od_status (*sync)(struct od_device *dev, struct od_err *err);
  void (*close)(struct od_device *dev);
  /* Page-locks host memory the caller owns (cudaHostRegister) so copies from it run at full speed
   * and asynchronously; unpin releases it before the memory is freed. Optional (NULL: nothing to
   * do, e.g. the CPU); pinning is an optimisation, so a device may also decline it and return OD_OK. */
  enum od_status (*pin)(struct od_device *dev, void *host, size_t bytes, struct od_err *err);
  void (*unpin)(struct od_device *dev, void *host);
};

struct od_device {
  enum od_device_kind kind;
  int index;                        /* CUDA ordinal; 0 for the CPU */
  char name[320];                   /* "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)" */
  const struct od_device_ops *ops;
  enum od_precision precision;      /* set by the caller after opening; FP32 by default */
  struct od_memo *memo;             /* od_device_memo_*: choices measured once per device */
  void *impl;                       /* backend state (stream, handles, workspace) */
};

/* Opens "cpu", "cuda" (= "cuda:0") or "cuda:N". Without a GPU, or in a build without CUDA, asking
 * for CUDA fails with OD_ERR_NO_DEVICE and a message saying which. */
enum od_status od_device_open(const char *spec, struct od_device **out, struct od_err *err);

/* Releases the device and everything it owns; NULL is a no-op. Memory allocated on it must have
 * been freed first. */
void od_device_close(struct od_device *dev);

/* A small store of results measured once per device and shape (e.g. the cuDNN algorithm of a
 * convolution shape), so layers of the same shape and every program on the device share them;
 * owned by the device, freed with it. Keys and values are plain bytes compared with memcmp. get
 * returns false when the key is absent; put replaces an existing value. */
bool od_device_memo_get(const struct od_device *dev, const void *key, size_t key_bytes, void *value,
                        size_t value_bytes);
enum od_status od_device_memo_put(struct od_device *dev, const void *key, size_t key_bytes, const void *value,
                                  size_t value_bytes, struct od_err *err);

/* Number of CUDA devices this process can use (0 without a GPU or without a CUDA build). */
int od_cuda_device_count(void);

/* Backends (runtime/devices/): */
enum od_status od_device_cpu_open(struct od_device **out, struct od_err *err);
enum od_status od_device_cuda_open(int ordinal, struct od_device **out, struct od_err *err);

#endif
