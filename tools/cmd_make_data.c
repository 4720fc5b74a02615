/* tools/cmd_make_data.c: `onnx-distill make-data --out DIR --images N [--seed S] [--size 320]
 * [--val-fraction 0.2] [--classes 4] [--quality 90]`: writes the synthetic VOC-format dataset of
 * trainer/synthetic.h (drawn shapes on textured backgrounds), byte-identical for the same options. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/commands.h"
#include "trainer/synthetic.h"

static int usage(void) {
  fprintf(stderr,
          "usage: onnx-distill make-data --out DIR --images N [--seed S] [--size 320] [--val-fraction 0.2]\n"
          "                              [--classes 4] [--quality 90]\n");
  return 2;
}

/* Parses a whole-string number; false (with a message) otherwise. */
static bool parse_num(const char *opt, const char *s, double lo, double hi, bool integer, double *out) {
  char *end = NULL;
  errno = 0;
  double v = integer ? (double)strtoll(s, &end, 10) : strtod(s, &end);
  if (!s[0] || *end || errno == ERANGE || v < lo || v > hi) {
    fprintf(stderr, "onnx-distill make-data: %s: expected %s in [%g, %g], got '%s'\n", opt,
            integer ? "an integer" : "a number", lo, hi, s);
    return false;
  }
  *out = v;
  return true;
}

int od_cmd_make_data(int argc, char **argv) {
  struct od_synth_write_opts o = {.size = 320, .val_fraction = 0.2, .n_classes = OD_SYNTH_DEFAULT_CLASSES, .quality = 90};
  bool have_images = false;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    double x = 0;
    if (!strcmp(a, "--out") && v) {
      o.out = v;
    } else if (!strcmp(a, "--images") && v) {
      if (!parse_num(a, v, 1, 1e8, true, &x)) return 2;
      o.images = (int)x;
      have_images = true;
    } else if (!strcmp(a, "--seed") && v) {
      char *end = NULL;
      errno = 0;
      unsigned long long s = strtoull(v, &end, 10);
      if (!v[0] || *end || errno == ERANGE || v[0] == '-') {
        fprintf(stderr, "onnx-distill make-data: --seed: expected a non-negative integer, got '%s'\n", v);
        return 2;
      }
      o.seed = s;
    } else if (!strcmp(a, "--size") && v) {
      if (!parse_num(a, v, 16, 8192, true, &x)) return 2;
      o.size = (int)x;
    } else if (!strcmp(a, "--val-fraction") && v) {
      if (!parse_num(a, v, 0, 0.99, false, &x)) return 2;
      o.val_fraction = x;
    } else if (!strcmp(a, "--classes") && v) {
      if (!parse_num(a, v, 1, OD_SYNTH_MAX_CLASSES, true, &x)) return 2;
      o.n_classes = (int)x;
    } else if (!strcmp(a, "--quality") && v) {
      if (!parse_num(a, v, 1, 100, true, &x)) return 2;
      o.quality = (int)x;
    } else {
      fprintf(stderr, "onnx-distill make-data: unexpected argument '%s'%s\n", a,
              a[0] == '-' && !v ? " (missing its value?)" : "");
      return usage();
    }
    i++; /* every option takes a value */
  }
  if (!o.out || !have_images) {
    fprintf(stderr, "onnx-distill make-data: %s is required\n", !o.out ? "--out DIR" : "--images N");
    return usage();
  }
  if (isatty(fileno(stderr))) o.progress = stderr;
  struct od_err err = {0};
  if (od_synth_write(&o, &err) != OD_OK) return od_cmd_fail(&err);
  int n_test = (int)(o.images * o.val_fraction + 0.5);
  if (n_test >= o.images) n_test = o.images - 1;
  printf("wrote %d images (%d trainval, %d test) of %d classes (", o.images, o.images - n_test, n_test, o.n_classes);
  for (int i = 0; i < o.n_classes; i++) printf("%s%s", i ? ", " : "", od_synth_class_names[i]);
  printf(") to %s\n", o.out);
  return 0;
}
