/* runtime/tensor.h: a tensor is metadata plus a pointer into memory someone else owns (the graph
 * arena, the parameter block, a host buffer). It never frees its data. */
#ifndef OD_TENSOR_H
#define OD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"

struct od_tensor {
  int dtype;                  /* enum od_dtype; OD_DTYPE_UNDEFINED marks an absent optional tensor */
  int rank;                   /* 0 for scalars */
  int64_t dims[OD_MAX_DIMS];
  void *data;                 /* element (0, ..., 0); row-major, contiguous */
};

/* Product of dims (1 for a scalar, 0 if any dim is 0). */
int64_t od_tensor_numel(const struct od_tensor *t);

/* numel * element size. */
size_t od_tensor_nbytes(const struct od_tensor *t);

/* True when the two tensors have the same rank and dims. */
bool od_tensor_same_shape(const struct od_tensor *a, const struct od_tensor *b);

/* "[2, 3, 4]" into buf. */
const char *od_shape_str(int rank, const int64_t *dims, char *buf, size_t size);

/* Numpy-style (multidirectional) broadcasting of shapes a and b into out (rank, dims); fails with
 * OD_ERR_SHAPE naming both shapes when a dim pair is neither equal nor 1. */
enum od_status od_broadcast_shapes(int ra, const int64_t *da, int rb, const int64_t *db, int *rank,
                                   int64_t *dims, struct od_err *err);

/* Row-major strides of a shape, in elements. */
void od_strides(int rank, const int64_t *dims, int64_t *strides);

/* Strides for reading a tensor of shape (r, d) as if broadcast to (rank, out_dims): 0 where the
 * input's dim is 1 (or missing) and the output's is not. */
void od_broadcast_strides(int r, const int64_t *d, int rank, const int64_t *out_dims, int64_t *strides);

/* Reads element i of a numeric tensor as double / int64 (any supported dtype). Slow: meant for
 * shape-like inputs (Reshape's shape, Slice's starts) and tests, not for hot loops. */
double od_tensor_get_f64(const struct od_tensor *t, int64_t i);
int64_t od_tensor_get_i64(const struct od_tensor *t, int64_t i);
void od_tensor_set_f64(struct od_tensor *t, int64_t i, double v);

#endif
