/* runtime/tensor.c: shape helpers and generic element access (see tensor.h). */
#include "runtime/tensor.h"

#include <stdio.h>
#include <string.h>

int64_t od_tensor_numel(const struct od_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

size_t od_tensor_nbytes(const struct od_tensor *t) {
  return (size_t)od_tensor_numel(t) * od_dtype_size(t->dtype);
}

bool od_tensor_same_shape(const struct od_tensor *a, const struct od_tensor *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

const char *od_shape_str(int rank, const int64_t *dims, char *buf, size_t size) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, size - k, "[");
  for (int i = 0; i < rank && k < size; i++)
    k += (size_t)snprintf(buf + k, size - k, i ? ", %lld" : "%lld", (long long)dims[i]);
  if (k < size) snprintf(buf + k, size - k, "]");
  return buf;
}

enum od_status od_broadcast_shapes(int ra, const int64_t *da, int rb, const int64_t *db, int *rank,
                                   int64_t *dims, struct od_err *err) {
  int r = ra > rb ? ra : rb;
  int64_t out[OD_MAX_DIMS];
  for (int i = 0; i < r; i++) {
    int ia = i - (r - ra), ib = i - (r - rb);
    int64_t a = ia >= 0 ? da[ia] : 1, b = ib >= 0 ? db[ib] : 1;
    if (a != b && a != 1 && b != 1) {
      char sa[128], sb[128];
      return od_err_set(err, OD_ERR_SHAPE, "shapes %s and %s do not broadcast (dim %d: %lld vs %lld)",
                        od_shape_str(ra, da, sa, sizeof sa), od_shape_str(rb, db, sb, sizeof sb), i,
                        (long long)a, (long long)b);
    }
    out[i] = a == 1 ? b : a;
  }
  *rank = r;
  memcpy(dims, out, sizeof(int64_t) * (size_t)r);
  return OD_OK;
}

void od_strides(int rank, const int64_t *dims, int64_t *strides) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= dims[i];
  }
}

void od_broadcast_strides(int r, const int64_t *d, int rank, const int64_t *out_dims, int64_t *strides) {
  int64_t own[OD_MAX_DIMS];
  od_strides(r, d, own);
  for (int i = 0; i < rank; i++) {
    int j = i - (rank - r);
    strides[i] = (j < 0 || (d[j] == 1 && out_dims[i] != 1)) ? 0 : own[j];
  }
}

double od_tensor_get_f64(const struct od_tensor *t, int64_t i) {
  const void *p = t->data;
  switch (t->dtype) {
    case OD_DTYPE_FLOAT: return ((const float *)p)[i];
    case OD_DTYPE_DOUBLE: return ((const double *)p)[i];
    case OD_DTYPE_FLOAT16: return od_f16_to_f32(((const uint16_t *)p)[i]);
    case OD_DTYPE_BFLOAT16: return od_bf16_to_f32(((const uint16_t *)p)[i]);
    case OD_DTYPE_INT8: return ((const int8_t *)p)[i];
    case OD_DTYPE_UINT8: case OD_DTYPE_BOOL: return ((const uint8_t *)p)[i];
    case OD_DTYPE_INT16: return ((const int16_t *)p)[i];
    case OD_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case OD_DTYPE_INT32: return ((const int32_t *)p)[i];
    case OD_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case OD_DTYPE_INT64: return (double)((const int64_t *)p)[i];
    case OD_DTYPE_UINT64: return (double)((const uint64_t *)p)[i];
    default: return 0;
  }
}

int64_t od_tensor_get_i64(const struct od_tensor *t, int64_t i) {
  switch (t->dtype) {
    case OD_DTYPE_INT64: return ((const int64_t *)t->data)[i];
    case OD_DTYPE_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
    case OD_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    default: return (int64_t)od_tensor_get_f64(t, i);
  }
}

void od_tensor_set_f64(struct od_tensor *t, int64_t i, double v) {
  void *p = t->data;
  switch (t->dtype) {
    case OD_DTYPE_FLOAT: ((float *)p)[i] = (float)v; break;
    case OD_DTYPE_DOUBLE: ((double *)p)[i] = v; break;
    case OD_DTYPE_FLOAT16: ((uint16_t *)p)[i] = od_f32_to_f16((float)v); break;
    case OD_DTYPE_BFLOAT16: ((uint16_t *)p)[i] = od_f32_to_bf16((float)v); break;
    case OD_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case OD_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case OD_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case OD_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case OD_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case OD_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case OD_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case OD_DTYPE_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
    case OD_DTYPE_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    default: break;
  }
}
