/* tests/runner_util.h: small pieces the model runners share (node_runner.c, gradcheck_runner.c,
 * cuda_parity.c): a seeded random generator and reading the node tests' TensorProto files. Static
 * functions in a header: each runner is one file and links nothing else of the tests. */
#ifndef OD_TESTS_RUNNER_UTIL_H
#define OD_TESTS_RUNNER_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "loaders/onnx_tensor.h"
#include "loaders/pb_alloc.h"

struct rng {
  uint64_t s;
};

static inline double rng_uniform(struct rng *r) { /* xorshift64*, [0, 1) */
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return (double)((r->s * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static inline double rng_normal(struct rng *r) {
  double u = rng_uniform(r) + 1e-12, v = rng_uniform(r);
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* The whole file, or NULL; *len gets its size. */
static inline char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = n >= 0 ? (size_t)n : 0;
  return buf;
}

/* Reads a TensorProto .pb file into a host tensor; status as od_tensor_proto_to_host. */
static inline enum od_status load_pb(const char *path, struct od_host_tensor *out, struct od_err *err) {
  size_t len;
  char *buf = read_file(path, &len);
  if (!buf) return od_err_set(err, OD_ERR_IO, "%s: cannot read", path);
  ProtobufCAllocator alloc;
  od_pb_allocator_init(&alloc);
  Onnx__TensorProto *t = onnx__tensor_proto__unpack(&alloc, len, (const uint8_t *)buf);
  free(buf);
  if (!t) return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: not a TensorProto (sequence/optional data)", path);
  enum od_status st = od_tensor_proto_to_host(t, NULL, path, out, err);
  protobuf_c_message_free_unpacked(&t->base, &alloc);
  return st;
}

#endif
