/* loaders/npy.c: NumPy .npy read and write (see npy.h; the format is described in NumPy's
 * numpy/lib/format.py docstring). The header is parsed by a small hand-written scanner for the
 * subset of Python literal syntax np.save emits: strings in ' or ", True/False, and tuples of
 * non-negative integers (Python 2 files may carry an 'L' suffix). Nothing is trusted: lengths are
 * checked against the file size and element counts against overflow before anything is read. */
#include "loaders/npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/dtype.h"
#include "runtime/tensor.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* np.load refuses headers over 10000 bytes unless told otherwise; we allow far more but not an
 * arbitrary 4 GiB that a corrupt length would ask us to read. */
#define NPY_MAX_HEADER (1u << 20)
#define NPY_ALIGN 64

struct npy_info {
  int dtype;
  size_t itemsize;
  bool swap;          /* the file's byte order differs from the host's */
  bool fortran;
  int rank;
  int64_t dims[OD_MAX_DIMS];
  size_t nelem;
  size_t nbytes;
  size_t data_offset; /* where the elements start in the file */
};

static bool host_is_little_endian(void) {
  const uint16_t one = 1;
  uint8_t b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* ---- header scanner ------------------------------------------------------------------------- */

struct scan {
  const char *s;
  size_t n, i;
  const char *file;
  struct od_err *err;
};

static void skip_ws(struct scan *sc) {
  while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' || sc->s[sc->i] == '\n' ||
                           sc->s[sc->i] == '\r'))
    sc->i++;
}

/* What is at the cursor, for messages: the character quoted, or "the end of the header". */
static const char *here(const struct scan *sc, char *buf, size_t size) {
  if (sc->i >= sc->n) return "the end of the header";
  unsigned char c = (unsigned char)sc->s[sc->i];
  if (c >= 0x20 && c < 0x7f)
    snprintf(buf, size, "'%c' at byte %zu of the header", c, sc->i);
  else
    snprintf(buf, size, "byte 0x%02x at byte %zu of the header", c, sc->i);
  return buf;
}

static enum od_status bad(struct scan *sc, const char *expected) {
  char b[64];
  return od_err_set(sc->err, OD_ERR_INVALID_ARG, "%s: malformed .npy header: expected %s, found %s", sc->file,
                    expected, here(sc, b, sizeof b));
}

static enum od_status expect_char(struct scan *sc, char c, const char *what) {
  skip_ws(sc);
  if (sc->i >= sc->n || sc->s[sc->i] != c) return bad(sc, what);
  sc->i++;
  return OD_OK;
}

/* A Python string literal without escapes (np.save never writes any) into out. */
static enum od_status scan_string(struct scan *sc, char *out, size_t size, const char *what) {
  skip_ws(sc);
  if (sc->i >= sc->n || (sc->s[sc->i] != '\'' && sc->s[sc->i] != '"')) return bad(sc, what);
  char q = sc->s[sc->i++];
  size_t k = 0;
  while (sc->i < sc->n && sc->s[sc->i] != q) {
    char c = sc->s[sc->i];
    if (c == '\\' || c == '\n' || c == '\0')
      return od_err_set(sc->err, OD_ERR_INVALID_ARG,
                        "%s: malformed .npy header: unexpected %s inside a string at byte %zu of the header",
                        sc->file, c == '\\' ? "escape" : c == '\n' ? "newline" : "NUL byte", sc->i);
    if (k + 1 >= size)
      return od_err_set(sc->err, OD_ERR_INVALID_ARG,
                        "%s: malformed .npy header: string at byte %zu of the header is too long", sc->file, sc->i);
    out[k++] = c;
    sc->i++;
  }
  if (sc->i >= sc->n)
    return od_err_set(sc->err, OD_ERR_INVALID_ARG, "%s: malformed .npy header: unterminated string", sc->file);
  sc->i++;
  out[k] = '\0';
  return OD_OK;
}

static bool scan_word(struct scan *sc, const char *w) {
  size_t len = strlen(w);
  if (sc->n - sc->i < len || memcmp(sc->s + sc->i, w, len)) return false;
  /* a whole word: not the prefix of a longer identifier */
  if (sc->i + len < sc->n) {
    char c = sc->s[sc->i + len];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') return false;
  }
  sc->i += len;
  return true;
}

/* (d0, d1, ...) with (), (5,) and a trailing comma allowed. */
static enum od_status scan_shape(struct scan *sc, struct npy_info *info) {
  OD_TRY(expect_char(sc, '(', "a tuple '(' for 'shape'"));
  int rank = 0;
  for (;;) {
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == ')') {
      sc->i++;
      break;
    }
    if (sc->i < sc->n && sc->s[sc->i] == '-')
      return od_err_set(sc->err, OD_ERR_INVALID_ARG, "%s: malformed .npy header: negative dimension in 'shape'",
                        sc->file);
    if (sc->i >= sc->n || sc->s[sc->i] < '0' || sc->s[sc->i] > '9')
      return bad(sc, "a dimension (non-negative integer) or ')' in 'shape'");
    int64_t v = 0;
    while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9') {
      int digit = sc->s[sc->i] - '0';
      if (v > (INT64_MAX - digit) / 10)
        return od_err_set(sc->err, OD_ERR_INVALID_ARG,
                          "%s: malformed .npy header: dimension %d of 'shape' does not fit in 64 bits", sc->file,
                          rank);
      v = v * 10 + digit;
      sc->i++;
    }
    if (sc->i < sc->n && (sc->s[sc->i] == 'L' || sc->s[sc->i] == 'l')) sc->i++; /* Python 2 long */
    if (rank >= OD_MAX_DIMS)
      return od_err_set(sc->err, OD_ERR_UNSUPPORTED, "%s: the array has more than %d dimensions", sc->file,
                        OD_MAX_DIMS);
    info->dims[rank++] = v;
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == ',') {
      sc->i++;
      continue;
    }
    if (sc->i < sc->n && sc->s[sc->i] == ')') {
      sc->i++;
      break;
    }
    return bad(sc, "',' or ')' in 'shape'");
  }
  info->rank = rank;
  return OD_OK;
}

/* descr -> dtype, item size and byte order. */
static enum od_status parse_descr(const char *file, const char *descr, struct npy_info *info, struct od_err *err) {
  char order = descr[0];
  if (order != '<' && order != '>' && order != '|' && order != '=')
    return od_err_set(err, OD_ERR_UNSUPPORTED,
                      "%s: dtype '%s' is not supported (expected a byte order '<', '>', '|' or '=' then a type "
                      "such as f4, i8, b1)",
                      file, descr);
  char kind = descr[1];
  const char *num = descr + 2;
  char *end = NULL;
  long size = (kind && *num >= '0' && *num <= '9') ? strtol(num, &end, 10) : -1;
  int dtype = OD_DTYPE_UNDEFINED;
  if (end && *end == '\0') {
    switch (kind) {
      case 'f': dtype = size == 2 ? OD_DTYPE_FLOAT16 : size == 4 ? OD_DTYPE_FLOAT : size == 8 ? OD_DTYPE_DOUBLE : 0; break;
      case 'i':
        dtype = size == 1 ? OD_DTYPE_INT8 : size == 2 ? OD_DTYPE_INT16 : size == 4 ? OD_DTYPE_INT32
              : size == 8 ? OD_DTYPE_INT64 : 0;
        break;
      case 'u':
        dtype = size == 1 ? OD_DTYPE_UINT8 : size == 2 ? OD_DTYPE_UINT16 : size == 4 ? OD_DTYPE_UINT32
              : size == 8 ? OD_DTYPE_UINT64 : 0;
        break;
      case 'b': dtype = size == 1 ? OD_DTYPE_BOOL : 0; break;
      default: break;
    }
  }
  if (dtype == OD_DTYPE_UNDEFINED)
    return od_err_set(err, OD_ERR_UNSUPPORTED,
                      "%s: dtype '%s' is not supported (supported: f2 f4 f8, i1 i2 i4 i8, u1 u2 u4 u8, b1)", file,
                      descr);
  info->dtype = dtype;
  info->itemsize = (size_t)size;
  if (order == '|' && size != 1)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: dtype '%s' has no byte order but items of %ld bytes", file,
                      descr, size);
  bool file_le = order != '>'; /* '=' is native: every machine np.save runs on here is little-endian */
  info->swap = size > 1 && file_le != host_is_little_endian();
  return OD_OK;
}

static enum od_status parse_dict(const char *file, const char *hdr, size_t len, struct npy_info *info,
                                 struct od_err *err) {
  struct scan sc = {hdr, len, 0, file, err};
  char descr[64] = "";
  bool have_descr = false, have_fortran = false, have_shape = false;
  OD_TRY(expect_char(&sc, '{', "'{' (a Python dict)"));
  for (;;) {
    skip_ws(&sc);
    if (sc.i < sc.n && sc.s[sc.i] == '}') {
      sc.i++;
      break;
    }
    char key[32];
    OD_TRY(scan_string(&sc, key, sizeof key, "a key ('descr', 'fortran_order' or 'shape') or '}'"));
    OD_TRY(expect_char(&sc, ':', "':' after a key"));
    skip_ws(&sc);
    bool *seen;
    if (!strcmp(key, "descr")) {
      seen = &have_descr;
      if (sc.i < sc.n && sc.s[sc.i] == '[')
        return od_err_set(err, OD_ERR_UNSUPPORTED,
                          "%s: structured (record) dtypes are not supported: 'descr' is a list", file);
      OD_TRY(scan_string(&sc, descr, sizeof descr, "a string for 'descr'"));
    } else if (!strcmp(key, "fortran_order")) {
      seen = &have_fortran;
      if (scan_word(&sc, "True"))
        info->fortran = true;
      else if (scan_word(&sc, "False"))
        info->fortran = false;
      else
        return bad(&sc, "True or False for 'fortran_order'");
    } else if (!strcmp(key, "shape")) {
      seen = &have_shape;
      OD_TRY(scan_shape(&sc, info));
    } else {
      return od_err_set(err, OD_ERR_INVALID_ARG,
                        "%s: malformed .npy header: unknown key '%s' (expected 'descr', 'fortran_order', 'shape')",
                        file, key);
    }
    if (*seen)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: malformed .npy header: key '%s' appears twice", file, key);
    *seen = true;
    skip_ws(&sc);
    if (sc.i < sc.n && sc.s[sc.i] == ',') {
      sc.i++;
      continue;
    }
    if (sc.i < sc.n && sc.s[sc.i] == '}') {
      sc.i++;
      break;
    }
    return bad(&sc, "',' or '}' after a value");
  }
  skip_ws(&sc);
  while (sc.i < sc.n && sc.s[sc.i] == '\0') sc.i++; /* some writers pad with NULs */
  if (sc.i < sc.n) return bad(&sc, "only padding after the dict");
  const char *missing = !have_descr ? "descr" : !have_fortran ? "fortran_order" : !have_shape ? "shape" : NULL;
  if (missing)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: malformed .npy header: key '%s' is missing", file, missing);
  OD_TRY(parse_descr(file, descr, info, err));
  if (info->fortran) {
    /* a 0-d or 1-d array is the same in both orders, but np.save writes False for those anyway */
    return od_err_set(err, OD_ERR_UNSUPPORTED,
                      "%s: the array is stored in Fortran order (fortran_order: True); save it in C order, e.g. "
                      "np.save(path, np.ascontiguousarray(a))",
                      file);
  }
  size_t nelem = 1;
  for (int d = 0; d < info->rank; d++) {
    uint64_t dim = (uint64_t)info->dims[d];
    if (dim != 0 && nelem > SIZE_MAX / dim) {
      char b[160];
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: shape %s has more elements than memory can hold", file,
                        od_shape_str(info->rank, info->dims, b, sizeof b));
    }
    nelem *= (size_t)dim;
  }
  if (nelem > SIZE_MAX / info->itemsize)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: the array's size in bytes overflows", file);
  info->nelem = nelem;
  info->nbytes = nelem * info->itemsize;
  return OD_OK;
}

/* ---- reading --------------------------------------------------------------------------------- */

/* Magic, version and header length from the first bytes (avail of them) of a file of file_size
 * bytes; sets *hdr_off and *hdr_len. */
static enum od_status parse_preamble(const char *file, const uint8_t *b, size_t avail, uint64_t file_size,
                                     size_t *hdr_off, size_t *hdr_len, struct od_err *err) {
  if (file_size == 0) return od_err_set(err, OD_ERR_INVALID_ARG, "%s: empty file, not a .npy file", file);
  if (avail < NPY_MAGIC_LEN || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN))
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: not a .npy file (it does not start with \"\\x93NUMPY\")", file);
  if (avail < NPY_MAGIC_LEN + 2)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: truncated .npy file: ends inside the version bytes", file);
  int major = b[6], minor = b[7];
  if (major < 1 || major > 3 || minor != 0)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is not supported (1.0, 2.0, 3.0 are)",
                      file, major, minor);
  size_t len_bytes = major == 1 ? 2 : 4;
  if (avail < 8 + len_bytes)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: truncated .npy file: ends inside the header length", file);
  uint32_t len = (uint32_t)b[8] | (uint32_t)b[9] << 8;
  if (len_bytes == 4) len |= (uint32_t)b[10] << 16 | (uint32_t)b[11] << 24;
  if (len > NPY_MAX_HEADER)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: malformed .npy file: header length %" PRIu32
                      " bytes is implausible (more than %u)", file, len, NPY_MAX_HEADER);
  if (8 + len_bytes + (uint64_t)len > file_size)
    return od_err_set(err, OD_ERR_INVALID_ARG,
                      "%s: truncated .npy file: the header says it is %" PRIu32 " bytes, only %" PRIu64
                      " follow the preamble", file, len, file_size - 8 - len_bytes);
  *hdr_off = 8 + len_bytes;
  *hdr_len = len;
  return OD_OK;
}

static enum od_status check_data_size(const char *file, const struct npy_info *info, uint64_t file_size,
                                      struct od_err *err) {
  uint64_t have = file_size - info->data_offset;
  if (have == info->nbytes) return OD_OK;
  char b[160];
  od_shape_str(info->rank, info->dims, b, sizeof b);
  if (have < info->nbytes)
    return od_err_set(err, OD_ERR_INVALID_ARG,
                      "%s: truncated .npy file: shape %s of %s needs %zu data bytes, the file has %" PRIu64, file, b,
                      od_dtype_name(info->dtype), info->nbytes, have);
  return od_err_set(err, OD_ERR_INVALID_ARG,
                    "%s: malformed .npy file: %" PRIu64 " bytes after the data (shape %s of %s is %zu bytes)", file,
                    have - info->nbytes, b, od_dtype_name(info->dtype), info->nbytes);
}

static void byteswap(uint8_t *p, size_t nelem, size_t itemsize) {
  for (size_t i = 0; i < nelem; i++, p += itemsize)
    for (size_t a = 0, z = itemsize - 1; a < z; a++, z--) {
      uint8_t t = p[a];
      p[a] = p[z];
      p[z] = t;
    }
}

/* Byte order and bool normalisation after the raw bytes are in place. */
static void fix_data(const struct npy_info *info, uint8_t *data) {
  if (info->swap) byteswap(data, info->nelem, info->itemsize);
  if (info->dtype == OD_DTYPE_BOOL)
    for (size_t i = 0; i < info->nelem; i++) data[i] = data[i] != 0;
}

static void fill_out(const struct npy_info *info, void *data, struct od_host_tensor *out) {
  memset(out, 0, sizeof *out);
  out->dtype = info->dtype;
  out->rank = info->rank;
  for (int d = 0; d < info->rank; d++) out->dims[d] = info->dims[d];
  out->nelem = info->nelem;
  out->nbytes = info->nbytes;
  out->data = data;
}

/* Parses preamble and header from b (avail bytes of a file of file_size). */
static enum od_status parse_all(const char *file, const uint8_t *b, size_t avail, uint64_t file_size,
                                struct npy_info *info, struct od_err *err) {
  size_t off = 0, len = 0;
  OD_TRY(parse_preamble(file, b, avail, file_size, &off, &len, err));
  if (avail < off + len) return od_err_set(err, OD_ERR_INTERNAL, "%s: header not read", file);
  memset(info, 0, sizeof *info);
  OD_TRY(parse_dict(file, (const char *)b + off, len, info, err));
  info->data_offset = off + len;
  return check_data_size(file, info, file_size, err);
}

enum od_status od_npy_read_buffer(const uint8_t *buf, size_t len, const char *name, struct od_host_tensor *out,
                                  struct od_err *err) {
  if (!name) name = "<memory>";
  struct npy_info info;
  OD_TRY(parse_all(name, buf, len, len, &info, err));
  void *data = NULL;
  if (info.nbytes) {
    data = malloc(info.nbytes);
    if (!data) return od_err_set(err, OD_ERR_OOM, "%s: cannot allocate %zu bytes for the array", name, info.nbytes);
    memcpy(data, buf + info.data_offset, info.nbytes);
    fix_data(&info, data);
  }
  fill_out(&info, data, out);
  return OD_OK;
}

enum od_status od_npy_read(const char *path, struct od_host_tensor *out, struct od_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return od_err_set(err, OD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  enum od_status s = OD_OK;
  uint8_t *hdr = NULL;
  void *data = NULL;
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    s = od_err_set(err, OD_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    s = od_err_set(err, OD_ERR_IO, "%s: not a regular file", path);
    goto done;
  }
  uint64_t file_size = (uint64_t)st.st_size;
  /* the preamble first (12 bytes at most), then exactly the header it announces */
  uint8_t pre[12];
  size_t npre = fread(pre, 1, sizeof pre, f);
  size_t off = 0, len = 0;
  if ((s = parse_preamble(path, pre, npre, file_size, &off, &len, err)) != OD_OK) goto done;
  hdr = malloc(off + len);
  if (!hdr) {
    s = od_err_set(err, OD_ERR_OOM, "%s: cannot allocate the header", path);
    goto done;
  }
  memcpy(hdr, pre, off); /* parse_preamble checked that the preamble (off bytes) was read */
  if (fseek(f, (long)off, SEEK_SET) != 0 || fread(hdr + off, 1, len, f) != len) {
    s = od_err_set(err, OD_ERR_IO, "%s: read error in the header", path);
    goto done;
  }
  struct npy_info info;
  if ((s = parse_all(path, hdr, off + len, file_size, &info, err)) != OD_OK) goto done;
  if (info.nbytes) {
    data = malloc(info.nbytes);
    if (!data) {
      s = od_err_set(err, OD_ERR_OOM, "%s: cannot allocate %zu bytes for the array", path, info.nbytes);
      goto done;
    }
    if (fread(data, 1, info.nbytes, f) != info.nbytes) {
      s = od_err_set(err, OD_ERR_IO, "%s: read error in the data (%s)", path,
                     ferror(f) ? strerror(errno) : "file shorter than it was");
      goto done;
    }
    fix_data(&info, data);
  }
  fill_out(&info, data, out);
  data = NULL;
done:
  free(data);
  free(hdr);
  fclose(f);
  return s;
}

/* ---- writing --------------------------------------------------------------------------------- */

const char *od_npy_descr(int dtype) {
  switch (dtype) {
    case OD_DTYPE_FLOAT: return "<f4";
    case OD_DTYPE_DOUBLE: return "<f8";
    case OD_DTYPE_FLOAT16: return "<f2";
    case OD_DTYPE_INT8: return "|i1";
    case OD_DTYPE_INT16: return "<i2";
    case OD_DTYPE_INT32: return "<i4";
    case OD_DTYPE_INT64: return "<i8";
    case OD_DTYPE_UINT8: return "|u1";
    case OD_DTYPE_UINT16: return "<u2";
    case OD_DTYPE_UINT32: return "<u4";
    case OD_DTYPE_UINT64: return "<u8";
    case OD_DTYPE_BOOL: return "|b1";
    default: return NULL;
  }
}

enum od_status od_npy_write(const char *path, int dtype, int rank, const int64_t *dims, const void *data,
                            struct od_err *err) {
  const char *descr = od_npy_descr(dtype);
  if (!descr)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: NumPy has no dtype for %s; cannot write it as .npy", path,
                      od_dtype_name(dtype));
  if (rank < 0 || rank > OD_MAX_DIMS)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: rank %d is out of range", path, rank);
  size_t itemsize = od_dtype_size(dtype), nelem = 1;
  for (int d = 0; d < rank; d++) {
    if (dims[d] < 0) return od_err_set(err, OD_ERR_INVALID_ARG, "%s: dimension %d is negative", path, d);
    if (dims[d] && nelem > SIZE_MAX / itemsize / (uint64_t)dims[d])
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: the array's size overflows", path);
    nelem *= (size_t)dims[d];
  }
  size_t nbytes = nelem * itemsize;

  /* "(3, 4)", "(5,)", "()" exactly as Python writes tuples */
  char shape[OD_MAX_DIMS * 22 + 4];
  size_t k = 0;
  shape[k++] = '(';
  for (int d = 0; d < rank; d++)
    k += (size_t)snprintf(shape + k, sizeof shape - k, d ? ", %" PRId64 : "%" PRId64, dims[d]);
  if (rank == 1) shape[k++] = ',';
  shape[k++] = ')';
  shape[k] = '\0';
  char dict[sizeof shape + 96];
  int dn = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
  /* version 1.0: 10 bytes of preamble; pad with spaces so that the data starts on a multiple of 64 */
  size_t pre = 10, total = pre + (size_t)dn + 1;
  size_t padded = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
  size_t hlen = padded - pre; /* dict + spaces + '\n'; always < 65536 with at most 8 dims */
  uint8_t hdr[sizeof dict + NPY_ALIGN + 16];
  memcpy(hdr, NPY_MAGIC, NPY_MAGIC_LEN);
  hdr[6] = 1;
  hdr[7] = 0;
  hdr[8] = (uint8_t)(hlen & 0xff);
  hdr[9] = (uint8_t)(hlen >> 8);
  memcpy(hdr + pre, dict, (size_t)dn);
  memset(hdr + pre + dn, ' ', hlen - (size_t)dn - 1);
  hdr[padded - 1] = '\n';

  FILE *f = fopen(path, "wb");
  if (!f) return od_err_set(err, OD_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  bool ok = fwrite(hdr, 1, padded, f) == padded;
  if (ok && nbytes) {
    if (itemsize > 1 && !host_is_little_endian()) {
      /* swap a chunk at a time into a scratch buffer: the caller's data stays untouched */
      uint8_t tmp[4096];
      const uint8_t *p = data;
      for (size_t done = 0; ok && done < nbytes;) {
        size_t n = nbytes - done < sizeof tmp ? nbytes - done : sizeof tmp;
        memcpy(tmp, p + done, n);
        byteswap(tmp, n / itemsize, itemsize);
        ok = fwrite(tmp, 1, n, f) == n;
        done += n;
      }
    } else {
      ok = fwrite(data, 1, nbytes, f) == nbytes;
    }
  }
  int saved = errno;
  if (fclose(f) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    remove(path);
    return od_err_set(err, OD_ERR_IO, "%s: write failed: %s", path, strerror(saved));
  }
  return OD_OK;
}
