/* tests/test_device.c: the device interface. The CPU device is checked everywhere; the CUDA device
 * is checked against the CPU when a GPU is present. Without one, the CUDA case checks that opening
 * fails cleanly with OD_ERR_NO_DEVICE. (The CUDA kernel parity suites under the gpu label exit 77.) */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device.h"

START_TEST(test_cpu_roundtrip) {
  struct od_err err = {0};
  struct od_device *dev = NULL;
  ck_assert_int_eq(od_device_open("cpu", &dev, &err), OD_OK);
  ck_assert_int_eq(dev->kind, OD_DEVICE_CPU);
  float host[37], back[37];
  for (int i = 0; i < 37; i++) host[i] = (float)i * 0.5f;
  void *p = NULL;
  ck_assert_int_eq(dev->ops->alloc(dev, sizeof host, &p, &err), OD_OK);
  ck_assert_int_eq((uintptr_t)p % 64, 0);
  ck_assert_int_eq(dev->ops->to_device(dev, p, host, sizeof host, &err), OD_OK);
  ck_assert_int_eq(dev->ops->to_host(dev, back, p, sizeof back, &err), OD_OK);
  ck_assert_mem_eq(host, back, sizeof host);
  ck_assert_int_eq(dev->ops->fill_f32(dev, p, 37, 3.0f, &err), OD_OK);
  ck_assert_int_eq(dev->ops->to_host(dev, back, p, sizeof back, &err), OD_OK);
  for (int i = 0; i < 37; i++) ck_assert_float_eq(back[i], 3.0f);
  dev->ops->free(dev, p);
  od_device_close(dev);
}
END_TEST

/* The per-device memo: absent keys, values by exact key, replacement, different sizes apart. */
START_TEST(test_memo) {
  struct od_err err = {0};
  struct od_device *dev = NULL;
  ck_assert_int_eq(od_device_open("cpu", &dev, &err), OD_OK);
  int key[3] = {1, 2, 3}, other[3] = {1, 2, 4};
  double v = 0, w = 2.5;
  ck_assert(!od_device_memo_get(dev, key, sizeof key, &v, sizeof v));
  ck_assert_int_eq(od_device_memo_put(dev, key, sizeof key, &w, sizeof w, &err), OD_OK);
  ck_assert(od_device_memo_get(dev, key, sizeof key, &v, sizeof v));
  ck_assert(v == 2.5);
  ck_assert(!od_device_memo_get(dev, other, sizeof other, &v, sizeof v));
  ck_assert(!od_device_memo_get(dev, key, 2 * sizeof key[0], &v, sizeof v)); /* a shorter key is another key */
  w = -1;
  ck_assert_int_eq(od_device_memo_put(dev, key, sizeof key, &w, sizeof w, &err), OD_OK);
  ck_assert(od_device_memo_get(dev, key, sizeof key, &v, sizeof v));
  ck_assert(v == -1);
  od_device_close(dev); /* frees the memo (ASan checks) */
}
END_TEST

START_TEST(test_bad_spec) {
  struct od_err err = {0};
  struct od_device *dev = NULL;
  ck_assert_int_eq(od_device_open("tpu", &dev, &err), OD_ERR_INVALID_ARG);
  ck_assert(strstr(err.msg, "expected cpu, cuda or cuda:N"));
  ck_assert_int_eq(od_device_open("cuda:x", &dev, &err), OD_ERR_INVALID_ARG);
  ck_assert_ptr_null(dev);
}
END_TEST

START_TEST(test_cuda_matches_cpu_or_reports_absence) {
  struct od_err err = {0};
  struct od_device *dev = NULL;
  if (od_cuda_device_count() == 0) {
    ck_assert_int_eq(od_device_open("cuda:0", &dev, &err), OD_ERR_NO_DEVICE);
    ck_assert_ptr_null(dev);
    ck_assert(strstr(err.msg, "cuda:0"));
    return;
  }
  ck_assert_int_eq(od_device_open("cuda:0", &dev, &err), OD_OK);
  enum { N = 100003 };
  float *host = malloc(N * sizeof *host), *back = malloc(N * sizeof *back);
  for (int i = 0; i < N; i++) host[i] = (float)(i % 977) - 3.5f;
  void *p = NULL;
  ck_assert_int_eq(dev->ops->alloc(dev, N * sizeof(float), &p, &err), OD_OK);
  ck_assert_int_eq(dev->ops->to_device(dev, p, host, N * sizeof(float), &err), OD_OK);
  ck_assert_int_eq(dev->ops->to_host(dev, back, p, N * sizeof(float), &err), OD_OK);
  ck_assert_mem_eq(host, back, N * sizeof(float));
  ck_assert_int_eq(dev->ops->fill_f32(dev, p, N, -1.25f, &err), OD_OK);
  ck_assert_int_eq(dev->ops->to_host(dev, back, p, N * sizeof(float), &err), OD_OK);
  for (int i = 0; i < N; i++) ck_assert_float_eq(back[i], -1.25f);
  dev->ops->free(dev, p);
  od_device_close(dev);
  free(host);
  free(back);
}
END_TEST

int main(void) {
  Suite *s = suite_create("device");
  TCase *tc = tcase_create("device");
  tcase_add_test(tc, test_cpu_roundtrip);
  tcase_add_test(tc, test_bad_spec);
  tcase_add_test(tc, test_memo);
  tcase_add_test(tc, test_cuda_matches_cpu_or_reports_absence);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK); /* CUDA is not fork-safe */
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
