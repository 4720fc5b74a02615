/* ops/im2col.h: what Conv and ConvTranspose share: their common attributes (kernel_shape, strides,
 * dilations, pads, auto_pad, group), the geometry of one convolution, and the im2col / col2im
 * rearrangements that turn a convolution into a GEMM.
 *
 * Geometry of a convolution with nd spatial dims, for every spatial dim d:
 *   input position  i = o * stride[d] - pad[d] + k * dilation[d]
 * where o runs over the output positions (0 <= o < out[d]) and k over the kernel taps
 * (0 <= k < k[d]); taps with i outside [0, in[d]) read zero padding.
 *
 * The column matrix of one image (or one group of one image) holds one row per (channel, tap) and
 * one column per output position:
 *   col[(c * k_size + tap) * ncols + (p - p0)] = x[c][input position of (p, tap)]   p in [p0, p1)
 * so that Conv is W (M x C*k_size) times col (C*k_size x out_size). ConvTranspose runs the other
 * way: col = W^T x, then col2im scatters (adds) every entry back to its input position; its "input"
 * is the transposed convolution's output and its "output" the transposed convolution's input.
 *
 * A range [p0, p1) of output positions lets callers tile the column matrix so that its memory stays
 * bounded for big images. 1-D and 2-D take a fast path (contiguous row runs, memcpy at stride 1);
 * 3-D and up a generic one. The pool (may be NULL) splits rows (im2col) or channels (col2im). */
#ifndef OD_IM2COL_H
#define OD_IM2COL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/pool.h"
#include "runtime/status.h"

#define OD_CONV_MAX_ND (OD_MAX_DIMS - 2)

enum od_auto_pad {
  OD_AUTO_PAD_NOTSET = 0,
  OD_AUTO_PAD_SAME_UPPER, /* extra padding (odd total) at the end */
  OD_AUTO_PAD_SAME_LOWER, /* extra padding at the beginning */
  OD_AUTO_PAD_VALID,      /* no padding */
};

/* Attributes shared by Conv and ConvTranspose (the last two only for ConvTranspose). Counts are 0
 * where the attribute is absent; the spatial rank is known only once X's shape is. */
struct od_conv_attrs {
  int64_t group;
  enum od_auto_pad auto_pad;
  size_t n_kernel, n_strides, n_dilations, n_pads, n_output_padding, n_output_shape;
  int64_t kernel_shape[OD_CONV_MAX_ND];
  int64_t strides[OD_CONV_MAX_ND];
  int64_t dilations[OD_CONV_MAX_ND];
  int64_t pads[2 * OD_CONV_MAX_ND];      /* begin of each dim, then end of each dim */
  int64_t output_padding[OD_CONV_MAX_ND];
  int64_t output_shape[OD_MAX_DIMS];     /* spatial dims, or (rarely) N, C and the spatial dims */
};

/* One convolution's geometry (see the header comment). For ConvTranspose, in/out are the
 * transposed op's output/input respectively, so im2col and col2im read it the same way. */
struct od_conv_geom {
  int nd;                               /* spatial dims, >= 1 */
  int64_t in[OD_CONV_MAX_ND];           /* spatial size of the image the kernel reads */
  int64_t out[OD_CONV_MAX_ND];          /* spatial size of the output positions */
  int64_t k[OD_CONV_MAX_ND];
  int64_t stride[OD_CONV_MAX_ND];
  int64_t dil[OD_CONV_MAX_ND];
  int64_t pad[OD_CONV_MAX_ND];          /* begin padding; may be negative (cropping) */
  int64_t pad_end[OD_CONV_MAX_ND];      /* end padding (only for shape computation and tests) */
  int64_t in_size, out_size, k_size;    /* products of in, out, k */
};

/* Reads group, auto_pad, kernel_shape, strides, dilations, pads (and for transpose also
 * output_padding, output_shape) and validates what needs no shapes (positive strides, ...). */
enum od_status od_conv_attrs_parse(const struct od_node *node, bool transpose, struct od_conv_attrs *a,
                                   struct od_err *err);

/* Conv: geometry from X (N, C, D1..Dn) and W (M, C/group, k1..kn) dims; checks that kernel_shape
 * matches W and that the output is not empty. */
enum od_status od_conv_geom_forward(const struct od_conv_attrs *a, int x_rank, const int64_t *x_dims,
                                    const int64_t *w_dims, struct od_conv_geom *g, struct od_err *err);

/* ConvTranspose: geometry from X (N, C, D1..Dn) and W (C, M/group, k1..kn) dims, with output_shape,
 * output_padding and auto_pad resolved as the ONNX spec states; g->in is the output's spatial size
 * and g->out is X's. */
enum od_status od_conv_geom_transpose(const struct od_conv_attrs *a, int x_rank, const int64_t *x_dims,
                                      const int64_t *w_dims, struct od_conv_geom *g, struct od_err *err);

/* True when the convolution is a plain matrix product: 1x1 kernel, stride 1, no padding, and
 * the output covers the input exactly (so col == x). */
bool od_conv_geom_is_pointwise(const struct od_conv_geom *g);

/* x: (channels, in...) contiguous; col: (channels * k_size, p1 - p0). */
void od_im2col_f32(struct od_pool *pool, const float *x, int64_t channels, const struct od_conv_geom *g,
                   int64_t p0, int64_t p1, float *col);
void od_im2col_f64(struct od_pool *pool, const double *x, int64_t channels, const struct od_conv_geom *g,
                   int64_t p0, int64_t p1, double *col);

/* The adjoint of im2col: x[c][input position of (p, tap)] += col[...] for every in-range entry. */
void od_col2im_f32(struct od_pool *pool, const float *col, int64_t channels, const struct od_conv_geom *g,
                   int64_t p0, int64_t p1, float *x);
void od_col2im_f64(struct od_pool *pool, const double *col, int64_t channels, const struct od_conv_geom *g,
                   int64_t p0, int64_t p1, double *x);

/* Range [*lo, *hi) of output positions o in [0, out) whose input position o * s + off lies in
 * [0, in) (lo == hi when none does). */
void od_conv_valid_range(int64_t off, int64_t s, int64_t in, int64_t out, int64_t *lo, int64_t *hi);

/* C = alpha * op(A) * op(B) + beta * C, row-major, for the family's dtypes: float and double through
 * OpenBLAS (cblas_sgemm / cblas_dgemm, itself multi-threaded), int32, int64, uint32, uint64 by a
 * plain loop (integer arithmetic wraps; alpha/beta other than 1 and 0/1 go through double).
 * op(A) is M x K (A is K x M when trans_a), op(B) is K x N. beta == 0 ignores C's old contents. */
void od_gemm(int dtype, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const void *A,
             int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc);

/* Number of output positions per column tile so that a (rows x tile) column buffer stays within
 * about 8 MiB of elem_size-byte elements (at least a few hundred positions, at most total). */
int64_t od_conv_col_tile(int64_t rows, int64_t total, size_t elem_size);

#endif
