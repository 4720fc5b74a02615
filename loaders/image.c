/* loaders/image.c: JPEG decoding (libjpeg API, as libjpeg-turbo provides it) and the resize and
 * normalisation that turn a photo into a network input (see image.h).
 *
 * libjpeg reports fatal errors through error_exit, which by default prints and calls exit(). Here
 * error_exit formats the message and longjmps back to the decoder, which frees everything and
 * returns a status. Warnings are silent, except "premature end of data": libjpeg-turbo would fill
 * the missing part with grey and carry on, and a half-grey image is not an input anybody wants. */
#include "loaders/image.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "runtime/dtype.h"

/* Refuse images larger than this many pixels (a 20000 x 12500 photo): a tiny corrupt header can
 * otherwise announce 65535 x 65535 and have us allocate 12 GiB before finding the data missing. */
#define OD_JPEG_MAX_PIXELS 250000000ull
#define OD_JPEG_MAX_FILE (1ull << 30)

struct jpeg_error_ctx {
  struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to this */
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
};

static void on_error_exit(j_common_ptr cinfo) {
  struct jpeg_error_ctx *e = (struct jpeg_error_ctx *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->msg);
  longjmp(e->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level) {
  struct jpeg_error_ctx *e = (struct jpeg_error_ctx *)cinfo->err;
  if (level < 0) { /* a warning */
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
      (*cinfo->err->format_message)(cinfo, e->msg);
      longjmp(e->jump, 1);
    }
    cinfo->err->num_warnings++;
  }
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; /* never print */ }

enum od_status od_jpeg_decode_buffer(const uint8_t *buf, size_t len, const char *name, uint8_t **rgb, int *width,
                                     int *height, struct od_err *err) {
  const char *volatile label = name ? name : "<memory>"; /* volatile: read after a longjmp */
  name = label;
  /* a JPEG starts with SOI (FF D8) then another marker (FF); say so plainly for other files */
  if (len < 3 || buf[0] != 0xff || buf[1] != 0xd8 || buf[2] != 0xff)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: not a JPEG file (no FF D8 FF start-of-image marker)", name);
  if ((unsigned long)len != len)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: the file is too large for libjpeg", name);

  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_ctx jerr;
  memset(&jerr, 0, sizeof jerr);
  uint8_t *volatile pixels = NULL; /* volatile: assigned after setjmp, freed after a longjmp */
  memset(&cinfo, 0, sizeof cinfo);  /* so that jpeg_destroy_decompress is safe at any point */
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = on_error_exit;
  jerr.pub.emit_message = on_emit_message;
  jerr.pub.output_message = on_output_message;
  if (setjmp(jerr.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(pixels);
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: broken JPEG: %s", label, jerr.msg);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, buf, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: CMYK JPEGs are not supported; convert it to RGB first", name);
  }
  if ((unsigned long long)cinfo.image_width * cinfo.image_height > OD_JPEG_MAX_PIXELS) {
    unsigned w = cinfo.image_width, h = cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: image of %u x %u pixels is larger than the %llu-pixel limit",
                      name, w, h, OD_JPEG_MAX_PIXELS);
  }
  cinfo.out_color_space = JCS_RGB; /* libjpeg-turbo expands grayscale to RGB itself */
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3) {
    int nc = cinfo.output_components;
    jpeg_destroy_decompress(&cinfo);
    return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: decoder gave %d components, expected 3 (RGB)", name, nc);
  }
  size_t w = cinfo.output_width, h = cinfo.output_height, stride = w * 3;
  pixels = malloc(stride * h);
  if (!pixels) {
    jpeg_destroy_decompress(&cinfo);
    return od_err_set(err, OD_ERR_OOM, "%s: cannot allocate %zu x %zu RGB pixels", name, w, h);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = pixels + (size_t)cinfo.output_scanline * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  *rgb = pixels;
  *width = (int)w;
  *height = (int)h;
  return OD_OK;
}

enum od_status od_jpeg_decode(const char *path, uint8_t **rgb, int *width, int *height, struct od_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return od_err_set(err, OD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  uint8_t *buf = NULL;
  enum od_status s = OD_OK;
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
  if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
    s = od_err_set(err, OD_ERR_IO, "%s: cannot read (not a regular file?)", path);
  } else if ((unsigned long long)size > OD_JPEG_MAX_FILE) {
    s = od_err_set(err, OD_ERR_UNSUPPORTED, "%s: %ld bytes is too large for an image input", path, size);
  } else if (!(buf = malloc(size ? (size_t)size : 1))) {
    s = od_err_set(err, OD_ERR_OOM, "%s: cannot allocate %ld bytes", path, size);
  } else if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
    s = od_err_set(err, OD_ERR_IO, "%s: read error: %s", path, strerror(errno));
  } else {
    s = od_jpeg_decode_buffer(buf, (size_t)size, path, rgb, width, height, err);
  }
  free(buf);
  fclose(f);
  return s;
}

/* Source coordinate of destination pixel d (half-pixel centres), as index i0 and weight of i0+1. */
static void bilinear_tap(int d, int dn, int sn, int *i0, int *i1, float *frac) {
  double s = ((double)d + 0.5) * sn / dn - 0.5;
  if (s < 0) s = 0;
  int i = (int)s;
  if (i >= sn - 1) {
    *i0 = *i1 = sn - 1;
    *frac = 0;
    return;
  }
  *i0 = i;
  *i1 = i + 1;
  *frac = (float)(s - i);
}

void od_image_resize_normalize(const uint8_t *rgb, int sw, int sh, const struct od_image_opts *opts, float *dst) {
  int dw = opts->width, dh = opts->height;
  size_t plane = (size_t)dw * dh;
  float scale[3], shift[3]; /* (v/255 - mean) / std == v * scale + shift */
  for (int c = 0; c < 3; c++) {
    scale[c] = 1.0f / (255.0f * opts->std[c]);
    shift[c] = -opts->mean[c] / opts->std[c];
  }
  int *x0 = malloc(sizeof(int) * 2 * (size_t)dw);
  float *fx = malloc(sizeof(float) * (size_t)dw);
  if (!x0 || !fx) { /* tiny tables; if even they fail, fall back to computing taps per pixel */
    free(x0);
    free(fx);
    x0 = NULL;
    fx = NULL;
  } else {
    for (int x = 0; x < dw; x++) bilinear_tap(x, dw, sw, &x0[2 * x], &x0[2 * x + 1], &fx[x]);
  }
  for (int y = 0; y < dh; y++) {
    int y0, y1;
    float wy;
    bilinear_tap(y, dh, sh, &y0, &y1, &wy);
    const uint8_t *r0 = rgb + (size_t)y0 * sw * 3, *r1 = rgb + (size_t)y1 * sw * 3;
    for (int x = 0; x < dw; x++) {
      int a, b;
      float wx;
      if (x0) {
        a = x0[2 * x];
        b = x0[2 * x + 1];
        wx = fx[x];
      } else {
        bilinear_tap(x, dw, sw, &a, &b, &wx);
      }
      for (int c = 0; c < 3; c++) {
        float top = r0[a * 3 + c] + (r0[b * 3 + c] - r0[a * 3 + c]) * wx;
        float bot = r1[a * 3 + c] + (r1[b * 3 + c] - r1[a * 3 + c]) * wx;
        float v = top + (bot - top) * wy;
        dst[c * plane + (size_t)y * dw + x] = v * scale[c] + shift[c];
      }
    }
  }
  free(x0);
  free(fx);
}

enum od_status od_image_load(const char *path, const struct od_image_opts *opts, struct od_host_tensor *out,
                             struct od_err *err) {
  if (opts->width < 1 || opts->height < 1 || opts->width > 16384 || opts->height > 16384)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: image size %d x %d is out of range (1..16384)", path,
                      opts->width, opts->height);
  for (int c = 0; c < 3; c++)
    if (opts->std[c] == 0 || !isfinite(opts->std[c]) || !isfinite(opts->mean[c]))
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: std[%d] = %g, mean[%d] = %g: std must be non-zero and both finite",
                        path, c, opts->std[c], c, opts->mean[c]);
  uint8_t *rgb = NULL;
  int w = 0, h = 0;
  OD_TRY(od_jpeg_decode(path, &rgb, &w, &h, err));
  size_t nelem = (size_t)3 * opts->height * opts->width;
  float *data = malloc(nelem * sizeof(float));
  if (!data) {
    free(rgb);
    return od_err_set(err, OD_ERR_OOM, "%s: cannot allocate the %d x %d input", path, opts->width, opts->height);
  }
  od_image_resize_normalize(rgb, w, h, opts, data);
  free(rgb);
  memset(out, 0, sizeof *out);
  out->dtype = OD_DTYPE_FLOAT;
  out->rank = 4;
  out->dims[0] = 1;
  out->dims[1] = 3;
  out->dims[2] = opts->height;
  out->dims[3] = opts->width;
  out->nelem = nelem;
  out->nbytes = nelem * sizeof(float);
  out->data = data;
  return OD_OK;
}
