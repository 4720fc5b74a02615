/* loaders/onnx_tensor.c: TensorProto -> host data in every encoding (see onnx_tensor.h).
 * Host byte order is assumed little-endian (x86-64, aarch64), the order raw_data uses. */
#include "loaders/onnx_tensor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum od_status od_tensor_proto_info(const Onnx__TensorProto *t, const char *where,
                                    struct od_host_tensor *info, struct od_err *err) {
  int dt = t->has_data_type ? t->data_type : 0;
  if (dt == OD_DTYPE_UNDEFINED)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: data_type is not set", where);
  if (dt == OD_DTYPE_STRING)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: string tensors are not supported", where);
  if (!od_dtype_is_supported(dt))
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: element type %s (code %d) is not supported", where,
                      od_dtype_name(dt), dt);
  if (t->segment)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", where);
  if (t->n_dims > OD_MAX_DIMS)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: rank %zu exceeds the supported %d dims", where,
                      t->n_dims, OD_MAX_DIMS);
  size_t nelem = 1;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0)
      return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: dims[%zu] is negative (%lld)", where, i,
                        (long long)t->dims[i]);
    if (__builtin_mul_overflow(nelem, (size_t)t->dims[i], &nelem) || nelem > (SIZE_MAX >> 4))
      return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: element count overflows at dims[%zu] = %lld",
                        where, i, (long long)t->dims[i]);
  }
  struct od_host_tensor r = {.dtype = dt, .rank = (int)t->n_dims, .nelem = nelem};
  for (size_t i = 0; i < t->n_dims; i++) r.dims[i] = t->dims[i];
  r.nbytes = nelem * od_dtype_size(dt);
  *info = r;
  return OD_OK;
}

const char *od_tensor_proto_external_entry(const Onnx__TensorProto *t, const char *key) {
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = t->external_data[i];
    if (e && e->key && !strcmp(e->key, key)) return e->value ? e->value : "";
  }
  return NULL;
}

static bool is_separator(char c) { return c == '/' || c == '\\'; }

enum od_status od_external_path(const char *model_dir, const char *location, const char *where,
                                char **out, struct od_err *err) {
  if (!location || !location[0])
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: external data has no location", where);
  if (!model_dir)
    return od_err_set(err, OD_ERR_INVALID_MODEL,
                      "%s: external data '%s' needs a model folder (model was not loaded from a file)",
                      where, location);
  if (is_separator(location[0]) || (location[0] && location[1] == ':'))
    return od_err_set(err, OD_ERR_INVALID_MODEL,
                      "%s: external data location '%s' is an absolute path; it must be relative to the "
                      "model's folder", where, location);
  for (const char *p = location; *p;) {
    const char *e = p;
    while (*e && !is_separator(*e)) e++;
    if (e - p == 2 && p[0] == '.' && p[1] == '.')
      return od_err_set(err, OD_ERR_INVALID_MODEL,
                        "%s: external data location '%s' leaves the model's folder ('..')", where, location);
    p = *e ? e + 1 : e;
  }
  size_t n = strlen(model_dir) + strlen(location) + 2;
  char *path = malloc(n);
  if (!path) return od_err_set(err, OD_ERR_OOM, "%s: out of memory", where);
  snprintf(path, n, "%s/%s", model_dir, location);
  *out = path;
  return OD_OK;
}

static enum od_status parse_u64(const char *s, const char *key, const char *where, uint64_t *out,
                                struct od_err *err) {
  if (!s || !*s) return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: external data '%s' is empty", where, key);
  for (const char *p = s; *p; p++)
    if (*p < '0' || *p > '9')
      return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: external data '%s' is not a number: '%s'", where,
                        key, s);
  errno = 0;
  unsigned long long v = strtoull(s, NULL, 10);
  if (errno) return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: external data '%s' overflows: '%s'", where, key, s);
  *out = v;
  return OD_OK;
}

static enum od_status read_external(const Onnx__TensorProto *t, const struct od_host_tensor *info,
                                    const char *model_dir, void *dst, const char *where,
                                    struct od_err *err) {
  const char *loc = od_tensor_proto_external_entry(t, "location");
  const char *off_s = od_tensor_proto_external_entry(t, "offset");
  const char *len_s = od_tensor_proto_external_entry(t, "length");
  uint64_t off = 0, len = info->nbytes;
  if (off_s) OD_TRY(parse_u64(off_s, "offset", where, &off, err));
  if (len_s) OD_TRY(parse_u64(len_s, "length", where, &len, err));
  if (len != info->nbytes)
    return od_err_set(err, OD_ERR_INVALID_MODEL,
                      "%s: external data length %llu does not match the shape's %zu bytes", where,
                      (unsigned long long)len, info->nbytes);
  char *path = NULL;
  OD_TRY(od_external_path(model_dir, loc, where, &path, err));
  enum od_status st = OD_OK;
  FILE *f = fopen(path, "rb");
  struct stat sb;
  if (!f) {
    st = od_err_set(err, OD_ERR_IO, "%s: cannot open external data file '%s': %s", where, path, strerror(errno));
  } else if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st = od_err_set(err, OD_ERR_IO, "%s: external data '%s' is not a regular file", where, path);
  } else if ((uint64_t)sb.st_size < off || (uint64_t)sb.st_size - off < len) {
    st = od_err_set(err, OD_ERR_INVALID_MODEL,
                    "%s: external data '%s' needs bytes %llu..%llu but the file has %lld bytes", where,
                    path, (unsigned long long)off, (unsigned long long)(off + len), (long long)sb.st_size);
  } else if (dst && len && (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(dst, 1, len, f) != len)) {
    st = od_err_set(err, OD_ERR_IO, "%s: reading external data '%s' failed", where, path);
  }
  if (f) fclose(f);
  free(path);
  return st;
}

/* Which typed field carries each dtype (ONNX's TensorProto comments). */
enum typed_field { TF_NONE, TF_FLOAT, TF_INT32, TF_INT64, TF_DOUBLE, TF_UINT64 };

static enum typed_field typed_field_for(int dt) {
  switch (dt) {
    case OD_DTYPE_FLOAT: return TF_FLOAT;
    case OD_DTYPE_INT32: case OD_DTYPE_INT16: case OD_DTYPE_INT8: case OD_DTYPE_UINT16:
    case OD_DTYPE_UINT8: case OD_DTYPE_BOOL: case OD_DTYPE_FLOAT16: case OD_DTYPE_BFLOAT16:
      return TF_INT32;
    case OD_DTYPE_INT64: return TF_INT64;
    case OD_DTYPE_DOUBLE: return TF_DOUBLE;
    case OD_DTYPE_UINT32: case OD_DTYPE_UINT64: return TF_UINT64;
    default: return TF_NONE;
  }
}

static const char *const typed_field_names[] = {"none", "float_data", "int32_data", "int64_data",
                                                "double_data", "uint64_data"};

static void copy_typed(const Onnx__TensorProto *t, int dt, size_t n, void *dst) {
  switch (dt) {
    case OD_DTYPE_FLOAT: memcpy(dst, t->float_data, n * 4); break;
    case OD_DTYPE_DOUBLE: memcpy(dst, t->double_data, n * 8); break;
    case OD_DTYPE_INT64: memcpy(dst, t->int64_data, n * 8); break;
    case OD_DTYPE_UINT64: memcpy(dst, t->uint64_data, n * 8); break;
    case OD_DTYPE_UINT32: for (size_t i = 0; i < n; i++) ((uint32_t *)dst)[i] = (uint32_t)t->uint64_data[i]; break;
    case OD_DTYPE_INT32: memcpy(dst, t->int32_data, n * 4); break;
    case OD_DTYPE_INT16: for (size_t i = 0; i < n; i++) ((int16_t *)dst)[i] = (int16_t)t->int32_data[i]; break;
    case OD_DTYPE_UINT16: case OD_DTYPE_FLOAT16: case OD_DTYPE_BFLOAT16:
      for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = (uint16_t)t->int32_data[i];
      break;
    case OD_DTYPE_INT8: for (size_t i = 0; i < n; i++) ((int8_t *)dst)[i] = (int8_t)t->int32_data[i]; break;
    case OD_DTYPE_UINT8: for (size_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)t->int32_data[i]; break;
    case OD_DTYPE_BOOL: for (size_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = t->int32_data[i] != 0; break;
    default: break;
  }
}

enum od_status od_tensor_proto_read(const Onnx__TensorProto *t, const struct od_host_tensor *info,
                                    const char *model_dir, void *dst, const char *where,
                                    struct od_err *err) {
  bool external = t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  size_t typed_counts[] = {0, t->n_float_data, t->n_int32_data, t->n_int64_data, t->n_double_data,
                           t->n_uint64_data};
  int n_enc = external + (t->has_raw_data && t->raw_data.len > 0) + (t->n_string_data > 0);
  enum typed_field used = TF_NONE;
  for (int f = TF_FLOAT; f <= TF_UINT64; f++)
    if (typed_counts[f]) {
      n_enc++;
      used = (enum typed_field)f;
    }
  if (n_enc > 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: data is stored in more than one field (%s%s%s)", where,
                      external ? "external, " : "", t->has_raw_data && t->raw_data.len ? "raw_data, " : "",
                      typed_field_names[used]);
  if (external) return read_external(t, info, model_dir, dst, where, err);
  if (t->has_raw_data && t->raw_data.len > 0) {
    if (t->raw_data.len != info->nbytes)
      return od_err_set(err, OD_ERR_INVALID_MODEL,
                        "%s: raw_data has %zu bytes but %s shape with %zu elements needs %zu", where,
                        t->raw_data.len, od_dtype_name(info->dtype), info->nelem, info->nbytes);
    if (dst) memcpy(dst, t->raw_data.data, info->nbytes);
    return OD_OK;
  }
  if (t->n_string_data)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: %s tensor stores its data in string_data", where,
                      od_dtype_name(info->dtype));
  if (used == TF_NONE) {
    if (info->nelem == 0) return OD_OK;
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: no data for its %zu elements", where, info->nelem);
  }
  enum typed_field want = typed_field_for(info->dtype);
  if (used != want)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: %s tensor stores its data in %s, expected %s", where,
                      od_dtype_name(info->dtype), typed_field_names[used], typed_field_names[want]);
  if (typed_counts[used] != info->nelem)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "%s: %s has %zu values but the shape has %zu elements",
                      where, typed_field_names[used], typed_counts[used], info->nelem);
  if (dst) copy_typed(t, info->dtype, info->nelem, dst);
  return OD_OK;
}

enum od_status od_tensor_proto_to_host(const Onnx__TensorProto *t, const char *model_dir,
                                       const char *where, struct od_host_tensor *out,
                                       struct od_err *err) {
  struct od_host_tensor r;
  OD_TRY(od_tensor_proto_info(t, where, &r, err));
  /* check the data before allocating what the shape claims (a tiny file can claim terabytes) */
  OD_TRY(od_tensor_proto_read(t, &r, model_dir, NULL, where, err));
  if (r.nbytes) {
    r.data = malloc(r.nbytes);
    if (!r.data) return od_err_set(err, OD_ERR_OOM, "%s: cannot allocate %zu bytes", where, r.nbytes);
  }
  enum od_status st = od_tensor_proto_read(t, &r, model_dir, r.data, where, err);
  if (st != OD_OK) {
    free(r.data);
    return st;
  }
  *out = r;
  return OD_OK;
}
