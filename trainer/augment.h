/* trainer/augment.h: the training augmentation of the reference method's reader and the image
 * resampling it needs, on float RGB images (HWC, 0..255 scale).
 *
 * Reference: PaddleDetection static configs/yolov3_reader.yml and the operators it names
 * (static/ppdet/data/transform/operators.py, batch_operators.py); see trainer/data.c for the order
 * and the few deliberate deviations. Every random choice comes from an od_rng passed in, so the
 * caller decides what the stream is derived from (seed, step, image). */
#ifndef OD_AUGMENT_H
#define OD_AUGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/status.h"

/* ---- counter-based random numbers (splitmix64) ------------------------------------------------- */

struct od_rng {
  uint64_t s;
};

static inline uint64_t od_mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A stream for (a, b): e.g. (seed, image number). */
static inline struct od_rng od_rng_make(uint64_t a, uint64_t b) {
  struct od_rng r = {od_mix64(a ^ od_mix64(b ^ 0x632be59bd9b4e019ull))};
  return r;
}
static inline uint64_t od_rng_next(struct od_rng *r) { return od_mix64(r->s++); }
/* Uniform in [0, 1). */
static inline double od_rng_unif(struct od_rng *r) { return (double)(od_rng_next(r) >> 11) / 9007199254740992.0; }
/* Uniform in [lo, hi). */
static inline double od_rng_range(struct od_rng *r, double lo, double hi) { return lo + (hi - lo) * od_rng_unif(r); }
/* Integer in [lo, hi) (numpy's randint); lo when hi <= lo. */
static inline int64_t od_rng_int(struct od_rng *r, int64_t lo, int64_t hi) {
  return hi <= lo ? lo : lo + (int64_t)(od_rng_next(r) % (uint64_t)(hi - lo));
}
double od_rng_normal(struct od_rng *r);
double od_rng_gamma(struct od_rng *r, double shape); /* shape > 0, scale 1 (Marsaglia-Tsang) */
double od_rng_beta(struct od_rng *r, double a, double b);

/* ---- samples ----------------------------------------------------------------------------------- */

struct od_aug_box {
  float x1, y1, x2, y2; /* pixels of the current image */
  float score;          /* gt_score: 1, or the mixup weight */
  int label;
  int difficult;
};

struct od_aug_sample {
  float *px; /* h x w x 3, RGB, malloc'd */
  int w, h;
  struct od_aug_box *b; /* malloc'd */
  int n, cap;
};

void od_aug_sample_free(struct od_aug_sample *s);
/* Fills s from 8-bit RGB (copies the pixels); boxes are added by the caller (od_aug_add_box). */
enum od_status od_aug_sample_from_rgb(struct od_aug_sample *s, const uint8_t *rgb, int w, int h, struct od_err *err);
enum od_status od_aug_add_box(struct od_aug_sample *s, struct od_aug_box b, struct od_err *err);

/* ---- the sample operators (in reader order) ------------------------------------------------------ */

/* MixupImage: a = a * factor + b * (1 - factor) on a canvas of the larger height and width (each
 * image at the top-left, zeros elsewhere), truncated to 8-bit levels as the reference's uint8 cast;
 * boxes of both, scores multiplied by factor and 1 - factor. factor >= 1 keeps a, factor <= 0 gives b. */
enum od_status od_aug_mixup(struct od_aug_sample *a, const struct od_aug_sample *b, double factor, struct od_err *err);

/* ColorDistort (random_apply): brightness, contrast, saturation, hue in a random order, each applied
 * with probability 1/2: brightness adds U(0.5, 1.5) (sic: the reference adds, on the 0..255
 * scale), contrast multiplies by U(0.5, 1.5), saturation blends with the 0.299/0.587/0.114 grey by
 * U(0.5, 1.5), hue rotates the YIQ chroma by U(-18, 18) * pi radians. Values may leave 0..255. */
void od_aug_color_distort(struct od_aug_sample *s, struct od_rng *r);

/* RandomExpand(ratio 4, prob 0.5, fill): a canvas of int(h * U(1, ratio)) x int(w * ...) filled with
 * fill (RGB, truncated to integers as the reference's uint8 array), the image pasted at a random
 * offset (its values saturated to 0..255 and truncated, as the uint8 cast), boxes shifted. */
enum od_status od_aug_expand(struct od_aug_sample *s, struct od_rng *r, double ratio, double prob, const float fill[3],
                             struct od_err *err);

/* RandomCrop (SSD style): thresholds {0, .1, .3, .5, .7, .9, no crop} in random order; per
 * threshold up to 50 tries of scale U(.3, 1), aspect U(max(.5, s^2), min(2, s^-2)); a try is
 * taken when the best IoU of a box with the crop reaches the threshold and at least one box centre
 * lies inside; boxes are clipped to the crop, those with centres outside are dropped. */
enum od_status od_aug_crop(struct od_aug_sample *s, struct od_rng *r, struct od_err *err);

/* RandomFlipImage(prob 0.5, pixel boxes): draws the coin from r and flips when it says so. */
void od_aug_random_flip(struct od_aug_sample *s, struct od_rng *r);
/* The flip itself: mirrors the pixels; x1' = w - x2 - 1, x2' = w - x1 - 1 (the reference's pixel
 * convention). Applying it twice gives back the sample. */
void od_aug_flip(struct od_aug_sample *s);

/* ---- resampling (cv2.resize semantics, in float) -------------------------------------------------- */

enum od_interp { OD_INTERP_NEAREST, OD_INTERP_LINEAR, OD_INTERP_AREA, OD_INTERP_CUBIC, OD_INTERP_LANCZOS4, OD_INTERP_COUNT };

/* Resizes src (sw x sh x 3, HWC float) to dw x dh and writes planar normalised floats
 * dst[c][y][x] = (v / 255 - mean[c]) / std[c]. */
enum od_status od_resize_normalize(const float *src, int sw, int sh, int dw, int dh, enum od_interp interp,
                                   const float mean[3], const float std[3], float *dst, struct od_err *err);

#endif
