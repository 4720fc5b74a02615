/* ops/op_list.h: the one table of operator kernels, expanded by X-macro in ops/registry.c (no
 * include guard: included once per expansion with OP defined).
 *
 *   OP(domain, op_type, since_version, sym)   -> kernels `od_kernels_<sym>` from ops/<file>.c
 *
 * List an op at the opset where the semantics our kernel implements begin; a kernel that handles
 * several versions (attribute -> input moves) can read node->opset in parse. Keep the sections:
 * each op family adds its lines in its own section. */

/* ---- elementwise: unary, binary, variadic (ops/unary.c, ops/binary.c, ...) ---- */

/* ---- convolution, GEMM, normalisation (ops/conv.c, ops/gemm.c, ...) ---- */

/* ---- pooling, softmax, reductions, top-k (ops/pool.c, ops/softmax.c, ops/reduce.c, ...) ---- */

/* ---- shape and data movement (ops/reshape.c, ops/concat.c, ops/slice.c, ...) ---- */

/* ---- resize, post-processing (ops/resize.c, ops/nms.c) ---- */
