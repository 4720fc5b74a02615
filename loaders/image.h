/* loaders/image.h: JPEG images as network inputs, for `onnx-distill run --input NAME=photo.jpg`.
 *
 * Decoding uses libjpeg(-turbo) through its libjpeg API. A corrupt or truncated file returns an
 * error naming the file and libjpeg's reason (libjpeg's default handler would exit the process).
 * Preprocessing is what torchvision-style classifiers and detectors expect:
 *   RGB (grayscale is expanded, CMYK is refused) -> bilinear resize to height x width
 *   (half-pixel centres, edge clamped, no antialiasing: cv2.resize INTER_LINEAR) ->
 *   (x / 255 - mean[c]) / std[c] -> NCHW float [1, 3, height, width]. */
#ifndef OD_IMAGE_H
#define OD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"

struct od_image_opts {
  int height, width;  /* output size, each in [1, 16384] */
  float mean[3];      /* per channel, in [0, 1] units: 0.485, 0.456, 0.406 for ImageNet */
  float std[3];       /* per channel, non-zero: 0.229, 0.224, 0.225 for ImageNet */
};

/* Decodes a JPEG file into interleaved 8-bit RGB (*rgb malloc'd, width*height*3 bytes). */
enum od_status od_jpeg_decode(const char *path, uint8_t **rgb, int *width, int *height, struct od_err *err);

/* The same from memory; name is used in messages. */
enum od_status od_jpeg_decode_buffer(const uint8_t *buf, size_t len, const char *name, uint8_t **rgb, int *width,
                                     int *height, struct od_err *err);

/* Bilinear resize of interleaved RGB (sw x sh) and normalisation into planar float dst
 * (3 x opts->height x opts->width). */
void od_image_resize_normalize(const uint8_t *rgb, int sw, int sh, const struct od_image_opts *opts, float *dst);

/* Decodes and preprocesses a JPEG file into *out: float [1, 3, height, width] (data malloc'd;
 * free with od_host_tensor_free). On failure *out is untouched. */
enum od_status od_image_load(const char *path, const struct od_image_opts *opts, struct od_host_tensor *out,
                             struct od_err *err);

#endif
