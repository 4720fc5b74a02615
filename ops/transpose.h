/* ops/transpose.h: the strided copy engine shared by the data-movement ops (Transpose, Slice,
 * Expand, Tile, DepthToSpace, SpaceToDepth). Defined in ops/transpose.c.
 *
 * Every one of those ops is "output element (i_0, ..., i_{r-1}) = src[sum_k i_k * src_strides[k]]"
 * for a suitable view of the input: Transpose permutes strides, Slice multiplies them by steps
 * (negative steps give negative strides, the src pointer points at the first element read),
 * Expand sets broadcast strides to 0, Tile reads a 2r-D view [rep_0, d_0, rep_1, d_1, ...] with
 * strides [0, s_0, 0, s_1, ...], DepthToSpace is a 6-D transpose.
 *
 * The backward passes of the same ops are the adjoint of that map: od_strided_add accumulates the
 * output gradient back through the same view (dst = the input gradient viewed with the forward's
 * src strides), and a 0 stride on the dst side sums over the broadcast dim. */
#ifndef OD_OPS_TRANSPOSE_H
#define OD_OPS_TRANSPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"

struct od_pool;

/* Views handed to od_strided_copy may have up to twice the tensor rank (Tile). */
#define OD_STRIDED_MAX_DIMS (2 * OD_MAX_DIMS)

/* Copies the rank-D block of shape dims (rank <= OD_STRIDED_MAX_DIMS; rank 0 is one element):
 *   dst[sum_k i_k * dst_strides[k]] = src[sum_k i_k * src_strides[k]]
 * Strides count elements of es bytes (es = od_dtype_size: 1, 2, 4 or 8) and may be negative or 0
 * on the src side; dst_strides NULL means dst is contiguous row-major. The copy is by bytes, so it
 * serves every dtype. Dims of size 1 are dropped and contiguous dims merged before copying; rows
 * contiguous on both sides go through memcpy, 2-D transposes through 32x32 tiles. pool may be
 * NULL (serial). dst and src must not overlap. */
void od_strided_copy(struct od_pool *pool, size_t es, int rank, const int64_t *dims, void *dst,
                     const int64_t *dst_strides, const void *src, const int64_t *src_strides);

/* Accumulates the rank-D block of shape dims (rank <= OD_STRIDED_MAX_DIMS; rank 0 is one element):
 *   dst[sum_k i_k * dst_strides[k]] += src[sum_k i_k * src_strides[k]]
 * for dtype OD_DTYPE_FLOAT or OD_DTYPE_DOUBLE (gradients). Strides count elements and may be
 * negative on either side; NULL means contiguous row-major. A dst stride of 0 sums over that dim
 * (sums are formed in double, then added); otherwise distinct index tuples must reach distinct dst
 * elements (the work is split over them). dst and src must not overlap. Fails with
 * OD_ERR_UNSUPPORTED for another dtype, naming what. */
enum od_status od_strided_add(struct od_pool *pool, int dtype, int rank, const int64_t *dims, void *dst,
                              const int64_t *dst_strides, const void *src, const int64_t *src_strides,
                              const char *what, struct od_err *err);

/* Transpose's parsed attributes (shared with the CUDA kernel, ops/transpose.cu). */
struct transpose_attrs {
  bool has_perm;
  int n_perm;
  int64_t perm[OD_MAX_DIMS];
};

#endif
