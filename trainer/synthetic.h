/* trainer/synthetic.h: a synthetic detection dataset of drawn shapes on textured backgrounds.
 *
 * Image k of a seed is a pure function of (seed, k, size, classes): the same whether it is written
 * to disk by `onnx-distill make-data` (JPEG + VOC XML + list files) or drawn in memory by the
 * `synthetic` data source without a folder. Each image has 1 to 4 objects of 10% to 60% of the
 * short side, in random colours, partially overlapping at most (a new object may cover at most 40%
 * of an earlier one's box), on a background of gradients, stripes, checks or blotches with noise.
 * Boxes are the tight extent of each shape's pixels (coverage >= 1/2) written the VOC way: 1-based
 * inclusive pixel numbers (xmin = first column + 1, xmax = last column + 1). */
#ifndef OD_SYNTHETIC_H
#define OD_SYNTHETIC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/status.h"

#define OD_SYNTH_MAX_CLASSES 6
#define OD_SYNTH_DEFAULT_CLASSES 4
#define OD_SYNTH_MAX_OBJECTS 4

/* "circle", "square", "triangle", "cross", "star", "ring" */
extern const char *const od_synth_class_names[OD_SYNTH_MAX_CLASSES];

struct od_synth_object {
  int cls;                        /* index among the drawn classes (kinds[] of the config) */
  int xmin, ymin, xmax, ymax;     /* VOC: 1-based, inclusive */
};

struct od_synth_cfg {
  uint64_t seed;
  int size;                       /* the long side in pixels; the short one is 75%..100% of it */
  int n_kinds;                    /* shapes drawn: kinds[0..n_kinds) index od_synth_class_names */
  int kinds[OD_SYNTH_MAX_CLASSES];
};

/* The config drawing the first n_classes shapes (circle, square, ...). */
void od_synth_cfg_default(struct od_synth_cfg *c, uint64_t seed, int size, int n_classes);

/* Draws image `index`: *rgb (malloc'd, w*h*3 interleaved), the objects (at most
 * OD_SYNTH_MAX_OBJECTS). */
enum od_status od_synth_draw(const struct od_synth_cfg *c, int64_t index, uint8_t **rgb, int *w, int *h,
                             struct od_synth_object *objs, int *n_objs, struct od_err *err);

/* The split make-data writes: image k is a test image when it is among the first
 * round(images * val_fraction) of a seeded permutation. *is_test is a malloc'd flag per image. */
enum od_status od_synth_split(uint64_t seed, int images, double val_fraction, bool **is_test, struct od_err *err);

struct od_synth_write_opts {
  const char *out;                /* folder, created if missing */
  int images;
  uint64_t seed;
  int size;                       /* default 320 */
  double val_fraction;            /* default 0.2 */
  int n_classes;                  /* default 4 */
  int quality;                    /* JPEG quality, default 90 */
  FILE *progress;                 /* NULL: quiet */
};

/* Writes the dataset: OUT/JPEGImages/<id>.jpg, OUT/Annotations/<id>.xml (id = 000000, 000001, ...),
 * OUT/ImageSets/Main/{trainval,test}.txt (id per line), OUT/{trainval,test}.txt
 * ("JPEGImages/<id>.jpg Annotations/<id>.xml" per line) and OUT/label_list.txt (one class a line).
 * Byte-identical for the same options. */
enum od_status od_synth_write(const struct od_synth_write_opts *o, struct od_err *err);

#endif
