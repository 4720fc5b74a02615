/* ops/op.h: what the runtime knows about an operator kernel, and the lookup by opset.
 *
 * struct od_op is one row of ops/op_list.h: domain, op type, the opset version it is valid from,
 * and flags. Kernel entry points (attribute parsing, shape inference, forward and backward per
 * device) are added to this struct by the execution engine; NULL means "not on this device". */
#ifndef OD_OP_H
#define OD_OP_H

#include <stdbool.h>
#include <stdint.h>

enum od_op_flags {
  OD_OP_DIFFERENTIABLE = 1u << 0, /* has a backward */
};

struct od_op {
  const char *domain;   /* "" for ai.onnx */
  const char *op_type;
  int since;            /* first opset version this entry implements */
  unsigned flags;
};

/* The entry for (domain, op_type) with the largest since <= opset, or NULL when the runtime has
 * no kernel for it. */
const struct od_op *od_op_find(const char *domain, const char *op_type, int64_t opset);

/* Number of entries in the table and the i-th entry (for generated documentation). */
int od_op_count(void);
const struct od_op *od_op_at(int i);

#endif
