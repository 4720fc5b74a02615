/* ops/ew_attrs.h: the parsed attributes of the elementwise family that its CUDA kernels
 * (ops/unary.cu, ops/binary.cu, ops/clip.cu) read too. Parsing stays in the .c files; see them for
 * what each field means. Not a public interface. */
#ifndef OD_OPS_EW_ATTRS_H
#define OD_OPS_EW_ATTRS_H

#include <stdbool.h>

#include "runtime/status.h"
#include "runtime/tensor.h"

struct od_kernel_ctx;

/* ops/unary.c */
struct unary_def;
struct unary_attrs {
  const struct unary_def *def;
  float alpha, beta, gamma;
};

struct dropout_attrs {
  float ratio; /* opset < 12 */
};

/* ops/clip.c */
struct clip_attrs {
  bool legacy; /* opset < 11: bounds from attributes */
  bool has_min, has_max;
  float min, max;
};

/* ops/binary.c: *Bv = input B described with the shape forward reads it as (legacy opset < 7
 * broadcasting at an axis, PRelu's 1-D slope along its one matching dim; otherwise B itself). */
enum od_status od_binary_b_view(const struct od_kernel_ctx *ctx, struct od_tensor *Bv);

#endif
