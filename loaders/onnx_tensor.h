/* loaders/onnx_tensor.h: reading ONNX TensorProto data in every encoding.
 *
 * Encodings: the typed fields (float_data, int32_data for int8/uint8/int16/uint16/bool/float16/
 * bfloat16, int64_data, double_data, uint64_data for uint32/uint64), raw_data (little-endian,
 * fixed width), and external data (data_location = EXTERNAL with location/offset/length, relative
 * to the model's folder; absolute paths and paths that leave the folder are refused). String
 * tensors and the sub-byte and float8 types are refused with OD_ERR_UNSUPPORTED. */
#ifndef OD_ONNX_TENSOR_H
#define OD_ONNX_TENSOR_H

#include <stddef.h>

#include "onnx/onnx.pb-c.h"
#include "runtime/graph.h"
#include "runtime/status.h"

/* Validates dtype and dims (rank <= OD_MAX_DIMS, no negative dim, no overflow of the element or
 * byte count) and fills info's dtype, rank, dims, nelem and nbytes; info->data is set to NULL.
 * where names the tensor in messages ("initializer 'conv1.weight'"). */
enum od_status od_tensor_proto_info(const Onnx__TensorProto *t, const char *where,
                                    struct od_host_tensor *info, struct od_err *err);

/* Decodes the data of t into dst (info->nbytes bytes, info from od_tensor_proto_info). model_dir
 * is the folder external data is relative to; NULL refuses external data. Checks that exactly one
 * encoding holds the data and that its length matches the shape. dst NULL: only the checks (the
 * importer checks every tensor before it allocates the parameter block). */
enum od_status od_tensor_proto_read(const Onnx__TensorProto *t, const struct od_host_tensor *info,
                                    const char *model_dir, void *dst, const char *where,
                                    struct od_err *err);

/* info + read into a newly allocated buffer: out owns out->data afterwards (od_host_tensor_free). */
enum od_status od_tensor_proto_to_host(const Onnx__TensorProto *t, const char *model_dir,
                                       const char *where, struct od_host_tensor *out,
                                       struct od_err *err);

/* The external_data entry named key ("location", "offset", "length", "checksum") or NULL. */
const char *od_tensor_proto_external_entry(const Onnx__TensorProto *t, const char *key);

/* Joins model_dir and an external-data location after checking that the location is relative and
 * does not leave the folder (no absolute path, no ".." component). out gets a malloc'd path. */
enum od_status od_external_path(const char *model_dir, const char *location, const char *where,
                                char **out, struct od_err *err);

#endif
