/* ops/registry.c: the op table (from ops/op_list.h) and the opset rule, written once:
 * for a node, take the entry with the largest since-version not above the model's opset. */
#include "ops/op.h"

uint32_t od_bwd_reads_nothing(const struct od_node *node, const void *attrs, bool *outputs) {
  *outputs = false;
  return 0;
}

uint32_t od_bwd_reads_shape_inputs(const struct od_node *node, const void *attrs, bool *outputs) {
  *outputs = false;
  return ~1u;
}

uint32_t od_bwd_reads_inputs(const struct od_node *node, const void *attrs, bool *outputs) {
  *outputs = false;
  return ~0u;
}

#include <stddef.h>
#include <string.h>

#define OP(domain, op_type, since, sym) extern const struct od_op_kernels od_kernels_##sym;
#include "ops/op_list.h"
#undef OP

static const struct od_op op_table[] = {
#define OP(domain, op_type, since, sym) {domain, #op_type, since, &od_kernels_##sym},
#include "ops/op_list.h"
#undef OP
    {NULL, NULL, 0, NULL} /* sentinel: keeps the array non-empty */
};

int od_op_count(void) { return (int)(sizeof op_table / sizeof op_table[0]) - 1; }

const struct od_op *od_op_at(int i) { return i >= 0 && i < od_op_count() ? &op_table[i] : NULL; }

const struct od_op *od_op_find(const char *domain, const char *op_type, int64_t opset) {
  if (!domain || !strcmp(domain, "ai.onnx")) domain = "";
  const struct od_op *best = NULL;
  for (int i = 0; i < od_op_count(); i++) {
    const struct od_op *op = &op_table[i];
    if (strcmp(op->op_type, op_type) || strcmp(op->domain, domain) || op->since > opset) continue;
    if (!best || op->since > best->since) best = op;
  }
  return best;
}
