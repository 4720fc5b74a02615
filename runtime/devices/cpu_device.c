/* runtime/devices/cpu_device.c: the CPU device: host memory, 64-byte aligned, synchronous copies. */
#include <stdlib.h>
#include <string.h>

#include "runtime/device.h"

static enum od_status cpu_alloc(struct od_device *dev, size_t bytes, void **out, struct od_err *err) {
  void *p = NULL;
  size_t n = (bytes + 63) & ~(size_t)63;
  if (posix_memalign(&p, 64, n ? n : 64) != 0)
    return od_err_set(err, OD_ERR_OOM, "cpu: cannot allocate %zu bytes", bytes);
  *out = p;
  return OD_OK;
}

static void cpu_free(struct od_device *dev, void *ptr) { free(ptr); }

static enum od_status cpu_copy(struct od_device *dev, void *dst, const void *src, size_t bytes, struct od_err *err) {
  if (bytes) memmove(dst, src, bytes);
  return OD_OK;
}

static enum od_status cpu_zero(struct od_device *dev, void *ptr, size_t bytes, struct od_err *err) {
  if (bytes) memset(ptr, 0, bytes);
  return OD_OK;
}

static enum od_status cpu_fill_f32(struct od_device *dev, float *ptr, size_t n, float value, struct od_err *err) {
  for (size_t i = 0; i < n; i++) ptr[i] = value;
  return OD_OK;
}

static enum od_status cpu_sync(struct od_device *dev, struct od_err *err) { return OD_OK; }

static void cpu_close(struct od_device *dev) { free(dev); }

static const struct od_device_ops cpu_ops = {
    .alloc = cpu_alloc, .free = cpu_free, .to_device = cpu_copy, .to_host = cpu_copy, .copy = cpu_copy,
    .zero = cpu_zero, .fill_f32 = cpu_fill_f32, .sync = cpu_sync, .close = cpu_close,
};

enum od_status od_device_cpu_open(struct od_device **out, struct od_err *err) {
  struct od_device *d = calloc(1, sizeof *d);
  if (!d) return od_err_set(err, OD_ERR_OOM, "cpu: out of memory");
  d->kind = OD_DEVICE_CPU;
  d->ops = &cpu_ops;
  strcpy(d->name, "cpu");
  *out = d;
  return OD_OK;
}
