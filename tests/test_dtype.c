/* tests/test_dtype.c: dtype table and 16-bit float conversions, checked against values computed
 * independently (IEEE 754 bit patterns from the standard's definitions). */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "runtime/dtype.h"
#include "runtime/status.h"

START_TEST(test_sizes) {
  ck_assert_uint_eq(od_dtype_size(OD_DTYPE_FLOAT), 4);
  ck_assert_uint_eq(od_dtype_size(OD_DTYPE_DOUBLE), 8);
  ck_assert_uint_eq(od_dtype_size(OD_DTYPE_BOOL), 1);
  ck_assert_uint_eq(od_dtype_size(OD_DTYPE_BFLOAT16), 2);
  ck_assert_uint_eq(od_dtype_size(OD_DTYPE_UINT64), 8);
  ck_assert_uint_eq(od_dtype_size(OD_DTYPE_STRING), 0);
  ck_assert(!od_dtype_is_supported(OD_DTYPE_FLOAT8E4M3FN));
  ck_assert(!od_dtype_is_supported(999));
  ck_assert_str_eq(od_dtype_name(OD_DTYPE_INT64), "int64");
  ck_assert_str_eq(od_dtype_name(-3), "unknown");
}
END_TEST

START_TEST(test_f16_known_values) {
  /* bit patterns from IEEE 754 binary16 */
  ck_assert_uint_eq(od_f32_to_f16(1.0f), 0x3c00);
  ck_assert_uint_eq(od_f32_to_f16(-2.0f), 0xc000);
  ck_assert_uint_eq(od_f32_to_f16(65504.0f), 0x7bff);
  ck_assert_uint_eq(od_f32_to_f16(1e6f), 0x7c00);                 /* overflow -> inf */
  ck_assert_uint_eq(od_f32_to_f16(5.960464477539063e-08f), 0x0001); /* smallest subnormal */
  ck_assert_uint_eq(od_f32_to_f16(1.0f + 1.0f / 2048.0f), 0x3c00);  /* tie -> even */
  ck_assert_uint_eq(od_f32_to_f16(1.0f + 3.0f / 2048.0f), 0x3c02);  /* tie -> even (up) */
  ck_assert(isnan(od_f16_to_f32(0x7e00)));
  ck_assert_float_eq(od_f16_to_f32(0x3555), 0.333251953125f);
  ck_assert_float_eq(od_f16_to_f32(0x0001), 5.960464477539063e-08f);
}
END_TEST

START_TEST(test_f16_roundtrip_all) {
  /* every finite half converts to float and back unchanged */
  for (unsigned h = 0; h < 0x10000; h++) {
    if (((h >> 10) & 0x1f) == 0x1f) continue;
    float f = od_f16_to_f32((uint16_t)h);
    ck_assert_msg(od_f32_to_f16(f) == h, "half 0x%04x -> %g -> 0x%04x", h, f, od_f32_to_f16(f));
  }
}
END_TEST

START_TEST(test_bf16) {
  ck_assert_uint_eq(od_f32_to_bf16(1.0f), 0x3f80);
  ck_assert_float_eq(od_bf16_to_f32(0x4049), 3.140625f);
  ck_assert_uint_eq(od_f32_to_bf16(1.00390625f), 0x3f80);  /* tie -> even */
  ck_assert(isnan(od_bf16_to_f32(od_f32_to_bf16(NAN))));
}
END_TEST

START_TEST(test_err_prefix) {
  struct od_err e = {0};
  ck_assert_int_eq(od_err_set(&e, OD_ERR_SHAPE, "dims %d", 3), OD_ERR_SHAPE);
  od_err_prefix(&e, "node '%s'", "c1");
  ck_assert_str_eq(e.msg, "node 'c1': dims 3");
  ck_assert_int_eq(od_status_exit_code(OD_ERR_INVALID_MODEL), 2);
  ck_assert_int_eq(od_status_exit_code(OD_ERR_CUDA), 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dtype");
  TCase *tc = tcase_create("dtype");
  tcase_add_test(tc, test_sizes);
  tcase_add_test(tc, test_f16_known_values);
  tcase_add_test(tc, test_f16_roundtrip_all);
  tcase_add_test(tc, test_bf16);
  tcase_add_test(tc, test_err_prefix);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
