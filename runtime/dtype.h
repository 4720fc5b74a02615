/* runtime/dtype.h: element types. The numeric codes are ONNX's TensorProto.DataType codes, so a
 * value read from a file converts with a range check and nothing else. */
#ifndef OD_DTYPE_H
#define OD_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum od_dtype {
  OD_DTYPE_UNDEFINED = 0,
  OD_DTYPE_FLOAT = 1,
  OD_DTYPE_UINT8 = 2,
  OD_DTYPE_INT8 = 3,
  OD_DTYPE_UINT16 = 4,
  OD_DTYPE_INT16 = 5,
  OD_DTYPE_INT32 = 6,
  OD_DTYPE_INT64 = 7,
  OD_DTYPE_STRING = 8,
  OD_DTYPE_BOOL = 9,
  OD_DTYPE_FLOAT16 = 10,
  OD_DTYPE_DOUBLE = 11,
  OD_DTYPE_UINT32 = 12,
  OD_DTYPE_UINT64 = 13,
  OD_DTYPE_COMPLEX64 = 14,
  OD_DTYPE_COMPLEX128 = 15,
  OD_DTYPE_BFLOAT16 = 16,
  OD_DTYPE_FLOAT8E4M3FN = 17,
  OD_DTYPE_FLOAT8E4M3FNUZ = 18,
  OD_DTYPE_FLOAT8E5M2 = 19,
  OD_DTYPE_FLOAT8E5M2FNUZ = 20,
  OD_DTYPE_UINT4 = 21,
  OD_DTYPE_INT4 = 22,
  OD_DTYPE_FLOAT4E2M1 = 23,
  OD_DTYPE_FLOAT8E8M0 = 24,
  OD_DTYPE_UINT2 = 25,
  OD_DTYPE_INT2 = 26,
  OD_DTYPE_MAX_KNOWN = 26,
};

/* ONNX's name of a dtype code ("float", "int64", ...), or "dtype(<code>)" style "unknown" for
 * codes newer than this table. Never NULL. */
const char *od_dtype_name(int code);

/* Bytes per element in host memory for the dtypes the runtime stores (bool is one byte, float16
 * and bfloat16 are 2-byte bit patterns); 0 for strings, complex, sub-byte and float8 types. */
size_t od_dtype_size(int code);

/* True for the dtypes whose tensors the runtime can hold: float, double, float16, bfloat16,
 * int8..int64, uint8..uint64 and bool. */
bool od_dtype_is_supported(int code);

/* True for float, double, float16, bfloat16. */
bool od_dtype_is_float(int code);

/* Conversions between float32 and the 16-bit float formats (round to nearest even). */
float od_f16_to_f32(uint16_t h);
uint16_t od_f32_to_f16(float f);
float od_bf16_to_f32(uint16_t b);
uint16_t od_f32_to_bf16(float f);

#endif
