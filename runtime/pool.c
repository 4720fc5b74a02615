/* runtime/pool.c: worker threads for parallel loops (see pool.h). Workers sleep on a condition
 * variable; each parallel_for bumps a generation counter, workers take their chunk, and the caller
 * runs chunk 0 itself and waits for the rest. */
#include "runtime/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <cblas.h>

struct od_pool {
  int threads;
  pthread_t *workers;
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  uint64_t generation;
  int pending;          /* chunks still running in this generation */
  int chunks;           /* chunks of the current job */
  bool stop;
  od_range_fn fn;
  void *ctx;
  int64_t n;
};

struct worker_arg {
  struct od_pool *p;
  int index;
};

static void chunk_range(int64_t n, int chunks, int i, int64_t *b, int64_t *e) {
  *b = n * i / chunks;
  *e = n * (i + 1) / chunks;
}

static void *worker_main(void *arg) {
  struct worker_arg *wa = arg;
  struct od_pool *p = wa->p;
  int index = wa->index;
  free(wa);
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) break;
    seen = p->generation;
    if (index < p->chunks) {
      od_range_fn fn = p->fn;
      void *ctx = p->ctx;
      int64_t b, e;
      chunk_range(p->n, p->chunks, index, &b, &e);
      pthread_mutex_unlock(&p->mu);
      fn(ctx, b, e);
      pthread_mutex_lock(&p->mu);
      if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

enum od_status od_pool_create(int threads, struct od_pool **out, struct od_err *err) {
  if (threads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n > 0 ? (int)n : 1;
  }
  struct od_pool *p = calloc(1, sizeof *p);
  if (!p) return od_err_set(err, OD_ERR_OOM, "thread pool: out of memory");
  p->threads = threads;
  /* The pool's size is the process's compute budget: OpenBLAS (the GEMMs of Conv, Gemm, MatMul)
   * keeps threads of its own, one per core unless told otherwise. */
  openblas_set_num_threads(threads);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  if (threads > 1 && !(p->workers = calloc((size_t)threads - 1, sizeof *p->workers))) {
    od_pool_destroy(p);
    return od_err_set(err, OD_ERR_OOM, "thread pool: out of memory");
  }
  for (int i = 1; i < threads; i++) {
    struct worker_arg *wa = malloc(sizeof *wa);
    if (wa) { /* filled before the thread starts: the worker reads and frees it */
      wa->p = p;
      wa->index = i;
    }
    if (!wa || pthread_create(&p->workers[i - 1], NULL, worker_main, wa) != 0) {
      free(wa);
      p->threads = i; /* destroy joins the ones started */
      od_pool_destroy(p);
      return od_err_set(err, OD_ERR_OOM, "thread pool: cannot start thread %d", i);
    }
  }
  *out = p;
  return OD_OK;
}

void od_pool_destroy(struct od_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 1; i < p->threads; i++) pthread_join(p->workers[i - 1], NULL);
  free(p->workers);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p);
}

int od_pool_threads(const struct od_pool *p) { return p ? p->threads : 1; }

void od_pool_parallel_for(struct od_pool *p, int64_t n, int64_t min_chunk, od_range_fn fn, void *ctx) {
  if (n <= 0) return;
  if (min_chunk < 1) min_chunk = 1;
  int chunks = p ? p->threads : 1;
  if (n / min_chunk < chunks) chunks = (int)(n / min_chunk);
  if (chunks <= 1) {
    fn(ctx, 0, n);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->n = n;
  p->chunks = chunks;
  p->pending = chunks - 1;
  p->generation++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  int64_t b, e;
  chunk_range(n, chunks, 0, &b, &e);
  fn(ctx, b, e);
  pthread_mutex_lock(&p->mu);
  while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
