/* runtime/status.c: error messages (see status.h). */
#include "runtime/status.h"

#include <stdio.h>
#include <string.h>

enum od_status od_err_set(struct od_err *err, enum od_status status, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->status = status;
  }
  return status;
}

void od_err_prefix(struct od_err *err, const char *fmt, ...) {
  if (!err) return;
  char ctx[OD_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx, sizeof ctx, fmt, ap);
  va_end(ap);
  /* "<ctx>: <old>", cut to the buffer; built by hand so that truncation is explicit */
  char out[OD_ERR_MSG_MAX];
  size_t n = strlen(ctx), k = 0;
  for (size_t i = 0; i < n && k + 1 < sizeof out; i++) out[k++] = ctx[i];
  for (const char *p = ": "; *p && k + 1 < sizeof out; p++) out[k++] = *p;
  for (const char *p = err->msg; *p && k + 1 < sizeof out; p++) out[k++] = *p;
  out[k] = '\0';
  memcpy(err->msg, out, k + 1);
}

void od_err_clear(struct od_err *err) {
  if (!err) return;
  err->status = OD_OK;
  err->msg[0] = '\0';
}

const char *od_status_name(enum od_status status) {
  switch (status) {
    case OD_OK: return "ok";
    case OD_ERR_INVALID_MODEL: return "invalid model";
    case OD_ERR_INVALID_ARG: return "invalid argument";
    case OD_ERR_UNSUPPORTED: return "unsupported";
    case OD_ERR_SHAPE: return "shape error";
    case OD_ERR_IO: return "i/o error";
    case OD_ERR_OOM: return "out of memory";
    case OD_ERR_CUDA: return "CUDA error";
    case OD_ERR_NO_DEVICE: return "no such device";
    case OD_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

int od_status_exit_code(enum od_status status) {
  switch (status) {
    case OD_OK: return 0;
    case OD_ERR_INVALID_MODEL:
    case OD_ERR_INVALID_ARG:
    case OD_ERR_UNSUPPORTED:
    case OD_ERR_SHAPE:
    case OD_ERR_IO:
      return 2;
    default:
      return 1;
  }
}
