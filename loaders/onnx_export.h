/* loaders/onnx_export.h: writes a model back to ONNX with the current parameter values.
 *
 * Export starts from the ModelProto kept at import, so every field (including unknown fields of
 * newer IR versions, which protobuf-c keeps) survives; only the data of initializers and Constant
 * values is rewritten, from the graph's parameter block, in the encoding each tensor already used.
 * A protobuf message cannot exceed 2 GiB: when the model would, large tensors go to an external
 * data file beside the output (ONNX's external data convention). */
#ifndef OD_ONNX_EXPORT_H
#define OD_ONNX_EXPORT_H

#include <stddef.h>

#include "loaders/onnx_import.h"
#include "runtime/status.h"

enum od_external_mode {
  OD_EXTERNAL_AUTO = 0,   /* keep each tensor where it was; externalise only if the file would pass 2 GiB */
  OD_EXTERNAL_ALWAYS,     /* every tensor of at least threshold bytes goes to the data file */
  OD_EXTERNAL_NEVER,      /* everything inline; fails if the model would pass 2 GiB */
};

struct od_export_opts {
  enum od_external_mode external;
  size_t threshold;       /* bytes; 0 means 1024 (ONNX's default size_threshold) */
  const char *data_file;  /* external data file name in the output's folder; NULL: "<output file name>.data" */
};

/* Writes m to path (atomically: temporary file, fsync, rename). opts may be NULL (defaults). */
enum od_status od_model_export(struct od_model *m, const char *path, const struct od_export_opts *opts,
                               struct od_err *err);

#endif
