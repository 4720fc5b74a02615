/* loaders/onnx_import.h: ONNX file -> struct od_model (the runtime graph plus the unpacked
 * ModelProto, kept so that export writes back everything we do not interpret).
 *
 * Import validates what the runtime relies on and fails with OD_ERR_INVALID_MODEL and a message
 * naming the place: truncated or corrupt protobuf (with field path and byte offset), tensors whose
 * data does not match their shape, negative or overflowing dims, dangling value names, cycles,
 * values produced twice. Subgraph ops (If, Loop, Scan) import; the runtime reports them as
 * unsupported later. */
#ifndef OD_ONNX_IMPORT_H
#define OD_ONNX_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "onnx/onnx.pb-c.h"
#include "runtime/graph.h"
#include "runtime/status.h"

struct od_model {
  struct od_graph *graph;
  Onnx__ModelProto *proto;      /* the unpacked file, kept for export; freed with alloc */
  ProtobufCAllocator alloc;     /* the zeroing allocator proto was unpacked with (pb_alloc.h) */
  char *path;                   /* the file as given (for messages); "<memory>" for buffers */
  char *dir;                    /* the file's folder: external data is relative to it; NULL for buffers */
};

/* Reads and imports an ONNX file. On failure *out is untouched and err says why. */
enum od_status od_model_load(const char *path, struct od_model **out, struct od_err *err);

/* Imports a serialized ModelProto from memory. name is used in messages; dir is the folder for
 * external data (NULL refuses external data). The buffer is not kept. */
enum od_status od_model_load_buffer(const uint8_t *buf, size_t len, const char *name, const char *dir,
                                    struct od_model **out, struct od_err *err);

/* Frees the model, its graph and its proto; NULL is a no-op. */
void od_model_destroy(struct od_model *m);

#endif
