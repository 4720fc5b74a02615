/* tests/test_image.c: loaders/image.c. JPEGs are made here with libjpeg's compressor (quality 100,
 * no chroma subsampling, so a decode is within a few levels of the source), then decoded; broken
 * files must return errors naming the file (libjpeg's default handler would exit the process);
 * the bilinear resize is checked on sizes small enough to work out by hand. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "loaders/image.h"
#include "runtime/dtype.h"

/* Compresses w x h pixels of `comps` (3: RGB, 1: gray) channels; *out malloc'd by libjpeg. */
static void encode(const uint8_t *px, int w, int h, int comps, uint8_t **out, size_t *len) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  unsigned char *mem = NULL;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &mem, &size);
  c.image_width = (JDIMENSION)w;
  c.image_height = (JDIMENSION)h;
  c.input_components = comps;
  c.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  for (int i = 0; i < c.num_components; i++) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  *out = mem;
  *len = size;
}

/* A smooth test picture: R rises left to right, G top to bottom, B is their mix. */
static uint8_t *picture(int w, int h) {
  uint8_t *p = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *q = p + ((size_t)y * w + x) * 3;
      q[0] = (uint8_t)(20 + 200 * x / (w - 1));
      q[1] = (uint8_t)(30 + 180 * y / (h - 1));
      q[2] = (uint8_t)((q[0] + q[1]) / 2);
    }
  return p;
}

START_TEST(test_decode_rgb) {
  int w = 40, h = 30;
  uint8_t *src = picture(w, h), *jpg, *rgb = NULL;
  size_t len;
  encode(src, w, h, 3, &jpg, &len);
  int gw = 0, gh = 0;
  struct od_err err = {0};
  ck_assert_msg(od_jpeg_decode_buffer(jpg, len, "pic.jpg", &rgb, &gw, &gh, &err) == OD_OK, "%s", err.msg);
  ck_assert_int_eq(gw, w);
  ck_assert_int_eq(gh, h);
  int worst = 0;
  for (size_t i = 0; i < (size_t)w * h * 3; i++) {
    int d = abs((int)rgb[i] - (int)src[i]);
    worst = d > worst ? d : worst;
  }
  ck_assert_msg(worst <= 4, "worst pixel difference %d", worst);
  free(rgb);
  free(jpg);
  free(src);
}
END_TEST

START_TEST(test_decode_gray_expands) {
  int w = 16, h = 8;
  uint8_t src[16 * 8], *jpg, *rgb = NULL;
  for (int i = 0; i < w * h; i++) src[i] = (uint8_t)(i * 2);
  size_t len;
  encode(src, w, h, 1, &jpg, &len);
  int gw, gh;
  struct od_err err = {0};
  ck_assert_msg(od_jpeg_decode_buffer(jpg, len, "gray.jpg", &rgb, &gw, &gh, &err) == OD_OK, "%s", err.msg);
  for (int i = 0; i < w * h; i++) {
    ck_assert_int_eq(rgb[3 * i], rgb[3 * i + 1]);
    ck_assert_int_eq(rgb[3 * i], rgb[3 * i + 2]);
    ck_assert_int_le(abs((int)rgb[3 * i] - (int)src[i]), 3);
  }
  free(rgb);
  free(jpg);
}
END_TEST

START_TEST(test_broken_jpegs) {
  int w = 64, h = 48;
  uint8_t *src = picture(w, h), *jpg;
  size_t len;
  encode(src, w, h, 3, &jpg, &len);
  /* truncated at many places: inside the headers, inside the entropy-coded data */
  for (size_t cut = 3; cut < len - 2; cut += len / 23 + 1) {
    uint8_t *rgb = (uint8_t *)&cut;
    int gw = -7, gh = -7;
    struct od_err err = {0};
    enum od_status s = od_jpeg_decode_buffer(jpg, cut, "cut.jpg", &rgb, &gw, &gh, &err);
    ck_assert_msg(s == OD_ERR_INVALID_ARG, "cut at %zu of %zu: status %d (%s)", cut, len, s, err.msg);
    ck_assert_msg(strstr(err.msg, "cut.jpg: broken JPEG: ") != NULL, "'%s'", err.msg);
    ck_assert_ptr_eq(rgb, (uint8_t *)&cut); /* untouched */
    ck_assert_int_eq(gw, -7);
  }
  /* a zero width in the frame header (SOF0: FF C0, length, precision, height, width) */
  uint8_t *bad = malloc(len);
  memcpy(bad, jpg, len);
  for (size_t i = 2; i + 9 < len; i++)
    if (bad[i] == 0xff && bad[i + 1] == 0xc0) {
      bad[i + 7] = bad[i + 8] = 0;
      break;
    }
  uint8_t *rgb = NULL;
  int gw, gh;
  struct od_err err = {0};
  ck_assert_int_eq(od_jpeg_decode_buffer(bad, len, "zero.jpg", &rgb, &gw, &gh, &err), OD_ERR_INVALID_ARG);
  ck_assert_msg(strstr(err.msg, "zero.jpg: broken JPEG") != NULL, "'%s'", err.msg);
  /* not a JPEG at all */
  ck_assert_int_eq(od_jpeg_decode_buffer((const uint8_t *)"\x89PNG\r\n", 6, "x.png", &rgb, &gw, &gh, &err),
                   OD_ERR_INVALID_ARG);
  ck_assert_msg(strstr(err.msg, "x.png: not a JPEG") != NULL, "'%s'", err.msg);
  ck_assert_int_eq(od_jpeg_decode("/nonexistent/a.jpg", &rgb, &gw, &gh, &err), OD_ERR_IO);
  ck_assert(strstr(err.msg, "/nonexistent/a.jpg"));
  free(bad);
  free(jpg);
  free(src);
}
END_TEST

START_TEST(test_resize_by_hand) {
  /* upscale 2 -> 4 with half-pixel centres: source x = (d + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75,
   * 1.25, clamped to the edges: 0, 25, 75, 100 for a row 0, 100 */
  const uint8_t up[2 * 3] = {0, 0, 0, 100, 100, 100};
  struct od_image_opts o = {.height = 1, .width = 4, .mean = {0, 0, 0}, .std = {1, 1, 1}};
  float out[12];
  od_image_resize_normalize(up, 2, 1, &o, out);
  const float want_up[4] = {0, 25, 75, 100};
  for (int c = 0; c < 3; c++)
    for (int x = 0; x < 4; x++) ck_assert_float_eq_tol(out[c * 4 + x] * 255, want_up[x], 1e-4);
  /* downscale 4 -> 2: source x = 0.5 and 2.5: averages of neighbours */
  const uint8_t down[4 * 3] = {10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40};
  o.width = 2;
  od_image_resize_normalize(down, 4, 1, &o, out);
  ck_assert_float_eq_tol(out[0] * 255, 15, 1e-4);
  ck_assert_float_eq_tol(out[1] * 255, 35, 1e-4);
  /* normalisation per channel, planar output: (v / 255 - mean) / std */
  const uint8_t px[3] = {255, 51, 0};
  struct od_image_opts n = {.height = 2, .width = 3, .mean = {0.5f, 0.2f, 0.1f}, .std = {0.25f, 0.5f, 2}};
  float norm[18];
  od_image_resize_normalize(px, 1, 1, &n, norm);
  for (int i = 0; i < 6; i++) {
    ck_assert_float_eq_tol(norm[i], (1.0f - 0.5f) / 0.25f, 1e-5);
    ck_assert_float_eq_tol(norm[6 + i], (0.2f - 0.2f) / 0.5f, 1e-5);
    ck_assert_float_eq_tol(norm[12 + i], (0.0f - 0.1f) / 2, 1e-5);
  }
}
END_TEST

START_TEST(test_load_file) {
  /* a red picture: channel 0 near 1, channels 1 and 2 near 0 after x / 255 */
  int w = 24, h = 20;
  uint8_t *src = malloc((size_t)w * h * 3), *jpg;
  for (int i = 0; i < w * h; i++) {
    src[3 * i] = 250;
    src[3 * i + 1] = 5;
    src[3 * i + 2] = 5;
  }
  size_t len;
  encode(src, w, h, 3, &jpg, &len);
  char path[1024];
  snprintf(path, sizeof path, "%s/image_red.jpg", OD_TEST_TMP);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite(jpg, 1, len, f);
  fclose(f);
  struct od_image_opts o = {.height = 10, .width = 7, .mean = {0, 0, 0}, .std = {1, 1, 1}};
  struct od_host_tensor t;
  struct od_err err = {0};
  ck_assert_msg(od_image_load(path, &o, &t, &err) == OD_OK, "%s", err.msg);
  ck_assert_int_eq(t.dtype, OD_DTYPE_FLOAT);
  ck_assert_int_eq(t.rank, 4);
  ck_assert_int_eq(t.dims[0], 1);
  ck_assert_int_eq(t.dims[1], 3);
  ck_assert_int_eq(t.dims[2], 10);
  ck_assert_int_eq(t.dims[3], 7);
  ck_assert_uint_eq(t.nbytes, 3 * 10 * 7 * sizeof(float));
  const float *v = t.data;
  for (int i = 0; i < 70; i++) {
    ck_assert_float_eq_tol(v[i], 250 / 255.0f, 4 / 255.0f);
    ck_assert_float_eq_tol(v[70 + i], 5 / 255.0f, 4 / 255.0f);
    ck_assert_float_eq_tol(v[140 + i], 5 / 255.0f, 4 / 255.0f);
  }
  od_host_tensor_free(&t);
  o.width = 0;
  ck_assert_int_eq(od_image_load(path, &o, &t, &err), OD_ERR_INVALID_ARG);
  o.width = 7;
  o.std[1] = 0;
  ck_assert_int_eq(od_image_load(path, &o, &t, &err), OD_ERR_INVALID_ARG);
  ck_assert(strstr(err.msg, "std[1]"));
  remove(path);
  free(jpg);
  free(src);
}
END_TEST

static Suite *image_suite(void) {
  Suite *s = suite_create("image");
  TCase *tc = tcase_create("image");
  tcase_add_test(tc, test_decode_rgb);
  tcase_add_test(tc, test_decode_gray_expands);
  tcase_add_test(tc, test_broken_jpegs);
  tcase_add_test(tc, test_resize_by_hand);
  tcase_add_test(tc, test_load_file);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(image_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
