/* ops/op_list.h: the one table of operator kernels, expanded by X-macro (no include guard: it is
 * included with OP defined, once per expansion).
 *
 * One line per (op, since-version) entry:
 *   OP(domain, op_type, since_version, symbol, flags)
 * where symbol names the kernels defined in ops/<file>.c. For a node the runtime takes the entry
 * with the largest since_version <= the model's opset for the node's domain (ops/registry.c).
 *
 * The CPU inference engine (issue 3) fills this table; until then `onnx-distill inspect` reports
 * every op as not yet runnable. */
