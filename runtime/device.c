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

void od_device_close(struct od_device *dev) {
  if (dev) dev->ops->close(dev);
}
