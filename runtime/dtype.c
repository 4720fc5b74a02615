/* runtime/dtype.c: element type names, sizes and 16-bit float conversions (see dtype.h). */
#include "runtime/dtype.h"

#include <math.h>
#include <string.h>

static const char *const dtype_names[] = {
    "undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string",
    "bool", "float16", "double", "uint32", "uint64", "complex64", "complex128", "bfloat16",
    "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "uint4", "int4",
    "float4e2m1", "float8e8m0", "uint2", "int2",
};

const char *od_dtype_name(int code) {
  if (code >= 0 && code <= OD_DTYPE_MAX_KNOWN) return dtype_names[code];
  return "unknown";
}

size_t od_dtype_size(int code) {
  switch (code) {
    case OD_DTYPE_FLOAT: case OD_DTYPE_INT32: case OD_DTYPE_UINT32: return 4;
    case OD_DTYPE_DOUBLE: case OD_DTYPE_INT64: case OD_DTYPE_UINT64: return 8;
    case OD_DTYPE_FLOAT16: case OD_DTYPE_BFLOAT16: case OD_DTYPE_INT16: case OD_DTYPE_UINT16: return 2;
    case OD_DTYPE_INT8: case OD_DTYPE_UINT8: case OD_DTYPE_BOOL: return 1;
    default: return 0;
  }
}

bool od_dtype_is_supported(int code) { return od_dtype_size(code) != 0; }

bool od_dtype_is_float(int code) {
  return code == OD_DTYPE_FLOAT || code == OD_DTYPE_DOUBLE || code == OD_DTYPE_FLOAT16 ||
         code == OD_DTYPE_BFLOAT16;
}

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float od_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0) { /* zero or subnormal: man * 2^-24 */
    float v = ldexpf((float)man, -24);
    return sign ? -v : v;
  }
  if (exp == 31) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf or nan */
  return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t od_f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t exp = (u >> 23) & 0xffu;
  uint32_t man = u & 0x7fffffu;
  if (exp == 255) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0u));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u); /* overflow to inf */
  if (e <= 0) {                                    /* subnormal or zero in half */
    if (e < -10) return sign;
    man |= 0x800000u;
    int shift = 14 - e;
    uint32_t half = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1u);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = ((uint32_t)e << 10) | (man >> 13);
  uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) half++; /* may carry into exponent: fine */
  return (uint16_t)(sign | half);
}

float od_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

uint16_t od_f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet nan */
  uint32_t lsb = (u >> 16) & 1u;
  u += 0x7fffu + lsb;
  return (uint16_t)(u >> 16);
}
