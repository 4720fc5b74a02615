/* tests/test_npy.c: loaders/npy.c. Files written by NumPy (tests/data/npy/, made by
 * tests/gen_npy.py, whose value rule expected() recomputes) read correctly; every dtype round-trips
 * through od_npy_write and od_npy_read; malformed headers each fail with OD_ERR_INVALID_ARG (or
 * OD_ERR_UNSUPPORTED for well-formed files we do not take) and a message naming the file and the
 * fault. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/npy.h"
#include "runtime/dtype.h"
#include "runtime/tensor.h"

#ifndef OD_NPY_FIXTURES
#error "OD_NPY_FIXTURES (tests/data/npy) must be defined by tests/CMakeLists.txt"
#endif

/* gen_npy.py's rule for element i, as a double */
static double expected(int dtype, size_t i) {
  double x = (double)i;
  switch (dtype) {
    case OD_DTYPE_FLOAT: case OD_DTYPE_DOUBLE: case OD_DTYPE_FLOAT16: return (x - 3) * 0.5;
    case OD_DTYPE_INT8: case OD_DTYPE_INT16: case OD_DTYPE_INT32: case OD_DTYPE_INT64: return x - 3;
    case OD_DTYPE_UINT8: return (double)(i * 7 % 256);
    case OD_DTYPE_UINT16: return (double)((i * 1000003) % 65536);
    case OD_DTYPE_UINT32: case OD_DTYPE_UINT64: return (double)(i * 1000003);
    case OD_DTYPE_BOOL: return i % 3 == 0;
    default: return NAN;
  }
}

static void as_tensor(const struct od_host_tensor *h, struct od_tensor *t) {
  memset(t, 0, sizeof *t);
  t->dtype = h->dtype;
  t->rank = h->rank;
  memcpy(t->dims, h->dims, sizeof t->dims);
  t->data = h->data;
}

struct fixture {
  const char *file;
  int dtype;
  int rank;
  int64_t dims[4];
};

static const struct fixture fixtures[] = {
    {"f4_2x3.npy", OD_DTYPE_FLOAT, 2, {2, 3}},
    {"f8_5.npy", OD_DTYPE_DOUBLE, 1, {5}},
    {"f2_2x2.npy", OD_DTYPE_FLOAT16, 2, {2, 2}},
    {"i1_7.npy", OD_DTYPE_INT8, 1, {7}},
    {"i2_3x2.npy", OD_DTYPE_INT16, 2, {3, 2}},
    {"i4_1x2x3x4.npy", OD_DTYPE_INT32, 4, {1, 2, 3, 4}},
    {"i8_4.npy", OD_DTYPE_INT64, 1, {4}},
    {"u1_3x3.npy", OD_DTYPE_UINT8, 2, {3, 3}},
    {"u2_4.npy", OD_DTYPE_UINT16, 1, {4}},
    {"u4_2x2.npy", OD_DTYPE_UINT32, 2, {2, 2}},
    {"u8_3.npy", OD_DTYPE_UINT64, 1, {3}},
    {"b1_2x3.npy", OD_DTYPE_BOOL, 2, {2, 3}},
    {"f4_scalar.npy", OD_DTYPE_FLOAT, 0, {0}},
    {"f4_2x0x3.npy", OD_DTYPE_FLOAT, 3, {2, 0, 3}},
    {"f4_2x3_v2.npy", OD_DTYPE_FLOAT, 2, {2, 3}},
    {"f4_2x3_v3.npy", OD_DTYPE_FLOAT, 2, {2, 3}},
    {"i4_2x3_be.npy", OD_DTYPE_INT32, 2, {2, 3}},
    {"f8_3_be.npy", OD_DTYPE_DOUBLE, 1, {3}},
};

START_TEST(test_numpy_fixtures) {
  const struct fixture *fx = &fixtures[_i];
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", OD_NPY_FIXTURES, fx->file);
  struct od_host_tensor h;
  struct od_err err = {0};
  enum od_status s = od_npy_read(path, &h, &err);
  ck_assert_msg(s == OD_OK, "%s: %s", fx->file, err.msg);
  ck_assert_int_eq(h.dtype, fx->dtype);
  ck_assert_int_eq(h.rank, fx->rank);
  size_t n = 1;
  for (int d = 0; d < fx->rank; d++) {
    ck_assert_int_eq(h.dims[d], fx->dims[d]);
    n *= (size_t)fx->dims[d];
  }
  ck_assert_uint_eq(h.nelem, n);
  ck_assert_uint_eq(h.nbytes, n * od_dtype_size(fx->dtype));
  struct od_tensor t;
  as_tensor(&h, &t);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(od_tensor_get_f64(&t, (int64_t)i) == expected(fx->dtype, i), "%s[%zu] = %g, want %g", fx->file, i,
                  od_tensor_get_f64(&t, (int64_t)i), expected(fx->dtype, i));
  od_host_tensor_free(&h);
}
END_TEST

/* Well-formed files we refuse, each with its reason. */
START_TEST(test_numpy_refused) {
  static const struct {
    const char *file;
    enum od_status status;
    const char *phrase;
  } cases[] = {
      {"f4_2x3_fortran.npy", OD_ERR_UNSUPPORTED, "Fortran order"},
      {"c8_2.npy", OD_ERR_UNSUPPORTED, "'<c8' is not supported"},
      {"U3_2.npy", OD_ERR_UNSUPPORTED, "'<U3' is not supported"},
      {"struct_2.npy", OD_ERR_UNSUPPORTED, "structured"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", OD_NPY_FIXTURES, cases[c].file);
    struct od_host_tensor h = {.data = (void *)&h};
    struct od_err err = {0};
    ck_assert_int_eq(od_npy_read(path, &h, &err), cases[c].status);
    ck_assert_msg(strstr(err.msg, cases[c].file) && strstr(err.msg, cases[c].phrase), "%s: '%s'", cases[c].file,
                  err.msg);
    ck_assert_ptr_eq(h.data, (void *)&h); /* untouched on failure */
  }
}
END_TEST

/* Every writable dtype, with shapes (), (5,), (2, 3) and (2, 0, 3): write, read back, compare. */
START_TEST(test_round_trip) {
  static const int dtypes[] = {OD_DTYPE_FLOAT, OD_DTYPE_DOUBLE, OD_DTYPE_FLOAT16, OD_DTYPE_INT8, OD_DTYPE_INT16,
                               OD_DTYPE_INT32, OD_DTYPE_INT64, OD_DTYPE_UINT8, OD_DTYPE_UINT16, OD_DTYPE_UINT32,
                               OD_DTYPE_UINT64, OD_DTYPE_BOOL};
  static const struct {
    int rank;
    int64_t dims[3];
  } shapes[] = {{0, {0}}, {1, {5}}, {2, {2, 3}}, {3, {2, 0, 3}}};
  for (size_t a = 0; a < sizeof dtypes / sizeof dtypes[0]; a++)
    for (size_t b = 0; b < sizeof shapes / sizeof shapes[0]; b++) {
      int dt = dtypes[a];
      struct od_tensor t = {.dtype = dt, .rank = shapes[b].rank};
      memcpy(t.dims, shapes[b].dims, sizeof shapes[b].dims);
      size_t n = (size_t)od_tensor_numel(&t), sz = od_dtype_size(dt);
      t.data = calloc(n ? n : 1, sz);
      for (size_t i = 0; i < n; i++) od_tensor_set_f64(&t, (int64_t)i, expected(dt, i + 11));
      char path[1024];
      snprintf(path, sizeof path, "%s/npy_rt_%s_%d.npy", OD_TEST_TMP, od_dtype_name(dt), t.rank);
      struct od_err err = {0};
      ck_assert_msg(od_npy_write(path, dt, t.rank, t.dims, t.data, &err) == OD_OK, "%s", err.msg);
      struct od_host_tensor h;
      ck_assert_msg(od_npy_read(path, &h, &err) == OD_OK, "%s", err.msg);
      ck_assert_int_eq(h.dtype, dt);
      ck_assert_int_eq(h.rank, t.rank);
      for (int d = 0; d < t.rank; d++) ck_assert_int_eq(h.dims[d], t.dims[d]);
      ck_assert_uint_eq(h.nbytes, n * sz);
      if (n) ck_assert_msg(!memcmp(h.data, t.data, n * sz), "%s: data differs", path);
      else ck_assert_ptr_null(h.data);
      /* the header is padded so that the data starts on a 64-byte boundary, as np.save does */
      FILE *f = fopen(path, "rb");
      ck_assert_ptr_nonnull(f);
      fseek(f, 0, SEEK_END);
      ck_assert_int_eq((ftell(f) - (long)(n * sz)) % 64, 0);
      fclose(f);
      od_host_tensor_free(&h);
      free(t.data);
      remove(path);
    }
}
END_TEST

START_TEST(test_write_header_text) {
  /* what np.save writes for these shapes (Python's tuple repr) */
  char path[1024];
  snprintf(path, sizeof path, "%s/npy_hdr.npy", OD_TEST_TMP);
  static const struct {
    int rank;
    int64_t dims[2];
    const char *text;
  } cases[] = {
      {0, {0}, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }"},
      {1, {5}, "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }"},
      {2, {2, 3}, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"},
  };
  int64_t zeros[6] = {0};
  for (size_t c = 0; c < 3; c++) {
    struct od_err err = {0};
    ck_assert_int_eq(od_npy_write(path, OD_DTYPE_INT64, cases[c].rank, cases[c].dims, zeros, &err), OD_OK);
    char buf[256] = {0};
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    ck_assert_uint_ge(got, 10 + strlen(cases[c].text));
    ck_assert(!memcmp(buf, "\x93NUMPY\x01\x00", 8));
    ck_assert_msg(!memcmp(buf + 10, cases[c].text, strlen(cases[c].text)), "header '%.*s'", 80, buf + 10);
    size_t hlen = (unsigned char)buf[8] | (unsigned char)buf[9] << 8;
    ck_assert_int_eq(buf[10 + hlen - 1], '\n');
  }
  struct od_err err = {0};
  remove(path);
  ck_assert_int_eq(od_npy_write(path, OD_DTYPE_BFLOAT16, 1, (int64_t[]){1}, zeros, &err), OD_ERR_UNSUPPORTED);
  ck_assert(strstr(err.msg, "bfloat16"));
  ck_assert_int_eq(od_npy_write("/nonexistent-dir/x.npy", OD_DTYPE_FLOAT, 0, NULL, zeros, &err), OD_ERR_IO);
  ck_assert(strstr(err.msg, "/nonexistent-dir/x.npy"));
}
END_TEST

/* ---- malformed files, built in memory -------------------------------------------------------- */

/* A version-1.0 file with the given header text (padded as np.save would) and data bytes. */
static size_t make_npy(uint8_t *buf, const char *header, size_t data_bytes) {
  size_t hl = strlen(header);
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (uint8_t)(hl & 0xff);
  buf[9] = (uint8_t)(hl >> 8);
  memcpy(buf + 10, header, hl);
  memset(buf + 10 + hl, 0x42, data_bytes);
  return 10 + hl + data_bytes;
}

struct bad_case {
  const char *header;   /* NULL: raw bytes below */
  size_t data_bytes;
  enum od_status status;
  const char *phrase;   /* must appear in the message (as must the file name) */
};

static const struct bad_case bad_cases[] = {
    {"[1, 2]\n", 0, OD_ERR_INVALID_ARG, "expected '{'"},
    {"{'descr': '<f4', 'fortran_order': False, }\n", 0, OD_ERR_INVALID_ARG, "key 'shape' is missing"},
    {"{'fortran_order': False, 'shape': (2,), }\n", 8, OD_ERR_INVALID_ARG, "key 'descr' is missing"},
    {"{'descr': '<f4', 'shape': (2,), }\n", 8, OD_ERR_INVALID_ARG, "key 'fortran_order' is missing"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}\n", 8, OD_ERR_INVALID_ARG,
     "unknown key 'extra'"},
    {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", 8, OD_ERR_INVALID_ARG,
     "'descr' appears twice"},
    {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", 16, OD_ERR_UNSUPPORTED, "Fortran order"},
    {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }\n", 8, OD_ERR_INVALID_ARG, "True or False"},
    {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,), }\n", 8, OD_ERR_INVALID_ARG, "True or False"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }\n", 8, OD_ERR_INVALID_ARG, "negative"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", 0, OD_ERR_INVALID_ARG,
     "does not fit in 64 bits"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }\n", 0,
     OD_ERR_INVALID_ARG, "more elements than memory"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }\n", 0, OD_ERR_INVALID_ARG,
     "overflows"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }\n", 4, OD_ERR_UNSUPPORTED,
     "more than 8 dimensions"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }\n", 8, OD_ERR_INVALID_ARG, "',' or ')'"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }\n", 24, OD_ERR_INVALID_ARG, "a tuple"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 7, OD_ERR_INVALID_ARG, "needs 8 data bytes"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 9, OD_ERR_INVALID_ARG, "1 bytes after the data"},
    {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }\n", 8, OD_ERR_INVALID_ARG, "',' or '}' after a value"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), \n", 8, OD_ERR_INVALID_ARG, "a key"},
    {"{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}", 8, OD_ERR_INVALID_ARG, "':' after a key"},
    {"{'descr': '<f4\n', 'fortran_order': False, 'shape': (2,), }\n", 8, OD_ERR_INVALID_ARG, "newline"},
    {"{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }\n", 8, OD_ERR_INVALID_ARG, "no byte order"},
    {"{'descr': '<f3', 'fortran_order': False, 'shape': (2,), }\n", 6, OD_ERR_UNSUPPORTED, "'<f3' is not supported"},
    {"{'descr': 'f4', 'fortran_order': False, 'shape': (2,), }\n", 8, OD_ERR_UNSUPPORTED, "'f4' is not supported"},
    {"{'descr': '<O8', 'fortran_order': False, 'shape': (2,), }\n", 16, OD_ERR_UNSUPPORTED, "'<O8' is not supported"},
    {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", 8, OD_ERR_UNSUPPORTED, "structured"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk\n", 8, OD_ERR_INVALID_ARG, "only padding"},
    {"{'descr': '<f4\\n', 'fortran_order': False, 'shape': (2,), }\n", 8, OD_ERR_INVALID_ARG, "escape"},
    {"", 0, OD_ERR_INVALID_ARG, "the end of the header"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8, OD_ERR_INVALID_ARG, "the end of the header"},
};

START_TEST(test_malformed_header) {
  const struct bad_case *bc = &bad_cases[_i];
  uint8_t buf[512];
  size_t len = make_npy(buf, bc->header, bc->data_bytes);
  struct od_host_tensor h = {.data = (void *)&h};
  struct od_err err = {0};
  enum od_status s = od_npy_read_buffer(buf, len, "bad.npy", &h, &err);
  ck_assert_msg(s == bc->status, "case %d: status %d (%s), want %d", _i, s, err.msg, bc->status);
  ck_assert_msg(strstr(err.msg, "bad.npy") && strstr(err.msg, bc->phrase), "case %d: '%s' lacks '%s'", _i, err.msg,
                bc->phrase);
  ck_assert_ptr_eq(h.data, (void *)&h);
}
END_TEST

START_TEST(test_malformed_preamble) {
  static const struct {
    const char *bytes;
    size_t len;
    const char *phrase;
  } cases[] = {
      {"", 0, "not a .npy file"},
      {"PK\x03\x04", 4, "not a .npy file"},
      {"\x93NUMPY", 6, "version bytes"},
      {"\x93NUMPY\x01\x00\x10", 9, "header length"},
      {"\x93NUMPY\x02\x00\x10\x00\x00", 11, "header length"},
      {"\x93NUMPY\x04\x00\x10\x00", 10, "version 4.0"},
      {"\x93NUMPY\x01\x01\x10\x00", 10, "version 1.1"},
      {"\x93NUMPY\x01\x00\x10\x00{'d", 13, "truncated .npy file: the header says it is 16 bytes"},
      {"\x93NUMPY\x02\x00\xff\xff\xff\xff{", 13, "implausible"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    struct od_host_tensor h;
    struct od_err err = {0};
    enum od_status s = od_npy_read_buffer((const uint8_t *)cases[c].bytes, cases[c].len, "pre.npy", &h, &err);
    ck_assert_msg(s == OD_ERR_INVALID_ARG || s == OD_ERR_UNSUPPORTED, "case %zu: status %d", c, s);
    ck_assert_msg(strstr(err.msg, "pre.npy") && strstr(err.msg, cases[c].phrase), "case %zu: '%s' lacks '%s'", c,
                  err.msg, cases[c].phrase);
  }
}
END_TEST

/* Versions 2.0 and 3.0 (4-byte header length), double quotes, odd spacing, Python 2 'L' dims. */
START_TEST(test_header_variants) {
  static const char *headers[] = {
      "{\"descr\": \"<i2\", \"fortran_order\": False, \"shape\": (3L,)}",
      "{ 'shape' : ( 3 , ) ,'fortran_order':False,'descr':'<i2'}\n",
      "{'descr': '=i2', 'fortran_order': False, 'shape': (3,), }\x00\x00",
  };
  for (int v = 1; v <= 3; v++)
    for (size_t c = 0; c < sizeof headers / sizeof headers[0]; c++) {
      uint8_t buf[256];
      size_t hl = strlen(headers[c]) + (c == 2 ? 2 : 0), off = v == 1 ? 10 : 12;
      memcpy(buf, "\x93NUMPY", 6);
      buf[6] = (uint8_t)v;
      buf[7] = 0;
      memset(buf + 8, 0, 4);
      buf[8] = (uint8_t)hl;
      memcpy(buf + off, headers[c], hl);
      int16_t vals[3] = {-1, 2, 300};
      memcpy(buf + off + hl, vals, sizeof vals);
      struct od_host_tensor h;
      struct od_err err = {0};
      ck_assert_msg(od_npy_read_buffer(buf, off + hl + 6, "v.npy", &h, &err) == OD_OK, "v%d case %zu: %s", v, c,
                    err.msg);
      ck_assert_int_eq(h.dtype, OD_DTYPE_INT16);
      ck_assert_int_eq(h.rank, 1);
      ck_assert_int_eq(h.dims[0], 3);
      ck_assert(!memcmp(h.data, vals, 6));
      od_host_tensor_free(&h);
    }
}
END_TEST

START_TEST(test_bool_normalised) {
  uint8_t buf[256];
  size_t len = make_npy(buf, "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }\n", 0);
  memcpy(buf + len, "\x00\x01\x02\xff", 4);
  struct od_host_tensor h;
  struct od_err err = {0};
  ck_assert_int_eq(od_npy_read_buffer(buf, len + 4, "b.npy", &h, &err), OD_OK);
  ck_assert(!memcmp(h.data, "\x00\x01\x01\x01", 4));
  od_host_tensor_free(&h);
}
END_TEST

START_TEST(test_file_errors) {
  struct od_host_tensor h;
  struct od_err err = {0};
  ck_assert_int_eq(od_npy_read("/nonexistent/in.npy", &h, &err), OD_ERR_IO);
  ck_assert(strstr(err.msg, "/nonexistent/in.npy"));
  ck_assert_int_eq(od_npy_read(OD_NPY_FIXTURES, &h, &err), OD_ERR_IO); /* a folder */
  ck_assert(strstr(err.msg, OD_NPY_FIXTURES));
  /* a truncated copy of a NumPy file, read from disk */
  char src[1024], dst[1024];
  snprintf(src, sizeof src, "%s/f8_5.npy", OD_NPY_FIXTURES);
  snprintf(dst, sizeof dst, "%s/npy_truncated.npy", OD_TEST_TMP);
  FILE *f = fopen(src, "rb");
  ck_assert_ptr_nonnull(f);
  uint8_t buf[512];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  for (size_t cut = 0; cut < n; cut += 7) {
    f = fopen(dst, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(buf, 1, cut, f);
    fclose(f);
    enum od_status s = od_npy_read(dst, &h, &err);
    ck_assert_msg(s == OD_ERR_INVALID_ARG, "cut %zu: status %d: %s", cut, s, err.msg);
    ck_assert_msg(strstr(err.msg, dst) != NULL, "cut %zu: '%s'", cut, err.msg);
  }
  remove(dst);
}
END_TEST

static Suite *npy_suite(void) {
  Suite *s = suite_create("npy");
  TCase *tc = tcase_create("npy");
  tcase_add_loop_test(tc, test_numpy_fixtures, 0, (int)(sizeof fixtures / sizeof fixtures[0]));
  tcase_add_test(tc, test_numpy_refused);
  tcase_add_test(tc, test_round_trip);
  tcase_add_test(tc, test_write_header_text);
  tcase_add_loop_test(tc, test_malformed_header, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
  tcase_add_test(tc, test_malformed_preamble);
  tcase_add_test(tc, test_header_variants);
  tcase_add_test(tc, test_bool_normalised);
  tcase_add_test(tc, test_file_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(npy_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
