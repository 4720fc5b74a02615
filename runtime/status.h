/* runtime/status.h: status codes and error messages for every fallible call.
 *
 * Library code never aborts or exits: a fallible function returns an enum od_status and, on failure,
 * writes a message into the caller's struct od_err naming where (file, node, JSON path) and what was
 * expected. A failed call frees what it allocated and leaves its out-parameters untouched. */
#ifndef OD_STATUS_H
#define OD_STATUS_H

#include <stdarg.h>
#include <stddef.h>

enum od_status {
  OD_OK = 0,
  OD_ERR_INVALID_MODEL, /* the ONNX file (or a tensor in it) is malformed */
  OD_ERR_INVALID_ARG,   /* bad usage: wrong command-line or API argument, bad manifest */
  OD_ERR_UNSUPPORTED,   /* well-formed but not something we implement (op, dtype, subgraph) */
  OD_ERR_SHAPE,         /* shapes or dtypes that do not fit together */
  OD_ERR_IO,            /* a file could not be read or written */
  OD_ERR_OOM,           /* an allocation failed */
  OD_ERR_CUDA,          /* a CUDA, cuDNN or cuBLAS call failed */
  OD_ERR_NO_DEVICE,     /* the requested device does not exist on this machine */
  OD_ERR_INTERNAL,      /* a broken invariant: a bug in onnx-distill */
};

#define OD_ERR_MSG_MAX 1024

struct od_err {
  enum od_status status;
  char msg[OD_ERR_MSG_MAX];
};

/* Records status and a printf-style message in err (err may be NULL) and returns status. */
enum od_status od_err_set(struct od_err *err, enum od_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts a printf-style context in front of the message already in err ("<context>: <old message>"). */
void od_err_prefix(struct od_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err to OD_OK and an empty message. */
void od_err_clear(struct od_err *err);

/* A short name for a status ("invalid model", "unsupported", ...). */
const char *od_status_name(enum od_status status);

/* The exit code the command-line tool uses for a status: 2 for bad input or usage, 1 otherwise. */
int od_status_exit_code(enum od_status status);

/* Propagates a failed status to the caller. */
#define OD_TRY(expr)                       \
  do {                                     \
    enum od_status od_try_s_ = (expr);     \
    if (od_try_s_ != OD_OK) return od_try_s_; \
  } while (0)

#endif
