/* tests/test_fuzz_regressions.c: replays the inputs that once crashed the importer's fuzzer.
 *
 * Every file in tests/fuzz/regressions/ is a malformed ONNX model that made od_model_load crash,
 * leak or hit undefined behaviour before its fix (docs/fuzzing.md says which). Each must now fail
 * cleanly: a status other than OD_OK (and not OD_ERR_INTERNAL), a message, *out untouched. Under
 * -DOD_SANITIZE=ON the sanitizers check the rest. The folder is found next to this source file. */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_import.h"

/* Writes the regressions folder (tests/fuzz/regressions, beside this file) into dir. */
static void regressions_dir(char *dir, size_t size) {
  snprintf(dir, size, "%s", __FILE__);
  char *slash = strrchr(dir, '/');
  size_t keep = slash ? (size_t)(slash - dir) + 1 : 0;
  snprintf(dir + keep, size - keep, "fuzz/regressions");
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(test_regressions_fail_cleanly) {
  char dir[PATH_MAX];
  regressions_dir(dir, sizeof dir);
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "cannot open the regressions folder %s", dir);
  char *names[256];
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    ck_assert_uint_lt(n, sizeof names / sizeof names[0]);
    names[n] = strdup(e->d_name);
    ck_assert_ptr_nonnull(names[n]);
    n++;
  }
  closedir(d);
  ck_assert_msg(n >= 2, "expected the regression inputs in %s, found %zu files", dir, n);
  qsort(names, n, sizeof names[0], name_cmp);

  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct od_model *m = NULL;
    struct od_err err = {0};
    enum od_status st = od_model_load(path, &m, &err);
    ck_assert_msg(st != OD_OK, "%s: imported, expected a clean error", names[i]);
    ck_assert_msg(st != OD_ERR_INTERNAL, "%s: internal error: %s", names[i], err.msg);
    ck_assert_msg(err.status == st && err.msg[0] != '\0', "%s: status %d without its message ('%s')", names[i],
                  (int)st, err.msg);
    ck_assert_msg(m == NULL, "%s: failed but set *out", names[i]);
    free(names[i]);
  }
}
END_TEST

START_TEST(test_deep_nesting_message) {
  /* the deeply nested file is refused before protobuf-c recurses into it, with the place named */
  char dir[PATH_MAX], path[PATH_MAX + 64];
  regressions_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/deep-nesting-stack-overflow.onnx", dir);
  struct od_model *m = NULL;
  struct od_err err = {0};
  ck_assert_int_eq(od_model_load(path, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "graph.input[0].type.sequence_type"), "%s", err.msg);
  ck_assert_msg(strstr(err.msg, "nested more than 100 deep"), "%s", err.msg);
}
END_TEST

static Suite *fuzz_regressions_suite(void) {
  Suite *s = suite_create("fuzz_regressions");
  TCase *tc = tcase_create("regressions_fail_cleanly");
  tcase_add_test(tc, test_regressions_fail_cleanly);
  suite_add_tcase(s, tc);
  tc = tcase_create("deep_nesting_message");
  tcase_add_test(tc, test_deep_nesting_message);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(fuzz_regressions_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
