/* ops/resize.h: Resize/Upsample's parsed attributes, plan (output shape and per-axis geometry) and
 * interpolation tables, shared by the CPU kernel (ops/resize.c, where they are described) and the
 * CUDA one (ops/resize.cu), so both compute the same coordinates and weights. */
#ifndef OD_OPS_RESIZE_H
#define OD_OPS_RESIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

enum resize_mode { RESIZE_NEAREST, RESIZE_LINEAR, RESIZE_CUBIC };

enum resize_ctm {
  CTM_HALF_PIXEL,
  CTM_HALF_PIXEL_SYMMETRIC,
  CTM_PYTORCH_HALF_PIXEL,
  CTM_ALIGN_CORNERS,
  CTM_ASYMMETRIC,
  CTM_TF_HALF_PIXEL_FOR_NN,
  CTM_TF_CROP_AND_RESIZE,
};

enum resize_nearest {
  NEAREST_ROUND_PREFER_FLOOR,
  NEAREST_ROUND_PREFER_CEIL,
  NEAREST_FLOOR,
  NEAREST_CEIL,
  NEAREST_LEGACY, /* opsets < 11: floor when upsampling, ceil when downsampling */
};

enum resize_keep { KEEP_STRETCH, KEEP_NOT_LARGER, KEEP_NOT_SMALLER };

struct resize_attrs {
  enum resize_mode mode;
  enum resize_ctm ctm;
  enum resize_nearest nearest;
  double cubic_a;
  bool exclude_outside;
  float extrapolation_value;
  bool antialias;
  enum resize_keep keep;
  int n_axes;                      /* axes attribute (opset 18+); 0 = all axes */
  int64_t axes[OD_MAX_DIMS];
  int n_attr_scales;               /* Upsample-7: the scales attribute */
  float attr_scales[OD_MAX_DIMS];
  int in_roi, in_scales, in_sizes; /* input index, -1 when the opset has no such input */
};

/* What one axis of the resize does. */
struct resize_axis {
  int64_t in, out;
  double scale;     /* the scale of the coordinate transform */
  double width;     /* the (possibly fractional) output length: scale * in, or sizes */
  double roi_start, roi_end;
  bool resized;     /* false: identity along this axis */
};

struct resize_plan {
  int rank;
  struct resize_axis ax[OD_MAX_DIMS];
};

/* Per output position of a resized axis: n taps starting at idx[o * n] (clamped input indices)
 * with weights wf/wd[o * n]; ex[o] set where tf_crop_and_resize extrapolates. */
struct resize_table {
  int n;
  int64_t *idx;
  float *wf;
  double *wd;
  uint8_t *ex; /* NULL when no position extrapolates */
};

/* Fills p from X's shape and the scales/sizes/roi inputs (host values; NULL = absent). Sets
 * *needs_values and returns OK when scales or sizes are present but their values are not known
 * yet. With need_roi, roi values must be known (forward); infer only needs the shape. */
enum od_status od_resize_make_plan(const struct resize_attrs *a, const struct od_tensor *X, const struct od_tensor *roi,
                                   const struct od_tensor *scales, const struct od_tensor *sizes, bool need_roi,
                                   struct resize_plan *p, bool *needs_values, struct od_err *err);

/* Builds the table of one axis (identity axes get n = 1, idx = o, w = 1); free with
 * od_resize_table_free. */
enum od_status od_resize_table_build(const struct resize_attrs *a, const struct resize_axis *ax, struct resize_table *t,
                                     struct od_err *err);
void od_resize_table_free(struct resize_table *t);

#endif
