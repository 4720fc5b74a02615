/* runtime/device.c: opening a device by name (see device.h). */
#include "runtime/device.h"

#include <stdlib.h>
#include <string.h>

enum od_status od_device_open(const char *spec, struct od_device **out, struct od_err *err) {
  if (!spec || !strcmp(spec, "cpu")) return od_device_cpu_open(out, err);
  if (!strncmp(spec, "cuda", 4)) {
    int ordinal = 0;
    if (spec[4] == ':') {
      char *end = NULL;
      long v = strtol(spec + 5, &end, 10);
      if (!spec[5] || *end || v < 0 || v > 1024)
        return od_err_set(err, OD_ERR_INVALID_ARG, "device '%s': expected cuda:N with N a device number", spec);
      ordinal = (int)v;
    } else if (spec[4]) {
      return od_err_set(err, OD_ERR_INVALID_ARG, "device '%s': expected cpu, cuda or cuda:N", spec);
    }
    return od_device_cuda_open(ordinal, out, err);
  }
  return od_err_set(err, OD_ERR_INVALID_ARG, "device '%s': expected cpu, cuda or cuda:N", spec);
}

struct od_memo {
  size_t key_bytes, value_bytes;
  struct od_memo *next;
  /* key bytes, then value bytes */
};

static unsigned char *memo_data(struct od_memo *m) { return (unsigned char *)(m + 1); }

bool od_device_memo_get(const struct od_device *dev, const void *key, size_t key_bytes, void *value,
                        size_t value_bytes) {
  for (struct od_memo *m = dev->memo; m; m = m->next)
    if (m->key_bytes == key_bytes && m->value_bytes == value_bytes && !memcmp(memo_data(m), key, key_bytes)) {
      memcpy(value, memo_data(m) + key_bytes, value_bytes);
      return true;
    }
  return false;
}

enum od_status od_device_memo_put(struct od_device *dev, const void *key, size_t key_bytes, const void *value,
                                  size_t value_bytes, struct od_err *err) {
  for (struct od_memo *m = dev->memo; m; m = m->next)
    if (m->key_bytes == key_bytes && m->value_bytes == value_bytes && !memcmp(memo_data(m), key, key_bytes)) {
      memcpy(memo_data(m) + key_bytes, value, value_bytes);
      return OD_OK;
    }
  struct od_memo *m = malloc(sizeof *m + key_bytes + value_bytes);
  if (!m) return od_err_set(err, OD_ERR_OOM, "out of memory");
  m->key_bytes = key_bytes;
  m->value_bytes = value_bytes;
  memcpy(memo_data(m), key, key_bytes);
  memcpy(memo_data(m) + key_bytes, value, value_bytes);
  m->next = dev->memo;
  dev->memo = m;
  return OD_OK;
}

void od_device_close(struct od_device *dev) {
  if (!dev) return;
  for (struct od_memo *m = dev->memo, *next; m; m = next) {
    next = m->next;
    free(m);
  }
  dev->memo = NULL;
  dev->ops->close(dev);
}
