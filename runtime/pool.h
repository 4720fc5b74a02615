/* runtime/pool.h: a small fixed pool of worker threads for CPU kernels' parallel loops.
 * Owned by the execution context (no global pool). A NULL pool runs every loop serially. */
#ifndef OD_POOL_H
#define OD_POOL_H

#include <stdint.h>

#include "runtime/status.h"

struct od_pool;

/* The calling thread plus threads-1 workers; threads <= 0 means one per online CPU. Also sets
 * OpenBLAS's thread count to the same number (its GEMMs run between the pool's loops). */
enum od_status od_pool_create(int threads, struct od_pool **out, struct od_err *err);
void od_pool_destroy(struct od_pool *p);
int od_pool_threads(const struct od_pool *p);

/* fn(ctx, begin, end) over [0, n) split into at most one contiguous chunk per thread, none smaller
 * than min_chunk (so tiny loops stay on one thread). Returns when every chunk is done. Not
 * reentrant: a chunk must not call od_pool_parallel_for on the same pool. */
typedef void (*od_range_fn)(void *ctx, int64_t begin, int64_t end);
void od_pool_parallel_for(struct od_pool *p, int64_t n, int64_t min_chunk, od_range_fn fn, void *ctx);

#endif
