/* ops/op_list.h: the one table of operator kernels, expanded by X-macro in ops/registry.c (no
 * include guard: included once per expansion with OP defined).
 *
 *   OP(domain, op_type, since_version, sym)   -> kernels `od_kernels_<sym>` from ops/<file>.c
 *
 * List an op at the opset where the semantics our kernel implements begin; a kernel that handles
 * several versions (attribute -> input moves) can read node->opset in parse. Keep the sections:
 * each op family adds its lines in its own section. */

/* ---- elementwise: unary, binary, variadic (ops/unary.c, ops/binary.c, ...) ---- */
OP("", Relu, 1, relu)               /* unary table (ops/unary.c); later versions added dtypes only */
OP("", LeakyRelu, 1, leakyrelu)
OP("", Elu, 1, elu)
OP("", Selu, 1, selu)               /* 1: rounded alpha/gamma defaults; 6: exact ones */
OP("", Selu, 6, selu)
OP("", Sigmoid, 1, sigmoid)
OP("", HardSigmoid, 1, hardsigmoid)
OP("", HardSwish, 14, hardswish)
OP("", Tanh, 1, tanh)
OP("", Softplus, 1, softplus)
OP("", Erf, 9, erf)
OP("", Sqrt, 1, sqrt)
OP("", Exp, 1, exp)
OP("", Log, 1, log)
OP("", Abs, 1, abs)
OP("", Neg, 1, neg)
OP("", Floor, 1, floor)
OP("", Ceil, 1, ceil)
OP("", Reciprocal, 1, reciprocal)
OP("", Not, 1, not)
OP("", Identity, 1, identity)
OP("", Dropout, 1, dropout)         /* 1-6: is_test, mask of T; 10: bool mask; 12: ratio/training_mode inputs */
OP("", Dropout, 10, dropout)
OP("", Dropout, 12, dropout)
OP("", Clip, 1, clip)               /* 1: optional min/max attrs; 6: +-FLT_MAX defaults; 11: inputs; 12: ints */
OP("", Clip, 6, clip)
OP("", Clip, 11, clip)
OP("", Clip, 12, clip)
OP("", Cast, 1, cast)               /* 1: 'to' is a string; 6: an int (ops/cast.c) */
OP("", Cast, 6, cast)
OP("", CastLike, 15, cast_like)
OP("", Add, 1, add)                 /* < 7: legacy broadcast/axis attributes; 7: numpy broadcasting (ops/binary.c) */
OP("", Add, 7, add)
OP("", Sub, 1, sub)
OP("", Sub, 7, sub)
OP("", Mul, 1, mul)
OP("", Mul, 7, mul)
OP("", Div, 1, div)
OP("", Div, 7, div)
OP("", Pow, 1, pow)                 /* 12: exponent of another dtype */
OP("", Pow, 7, pow)
OP("", Pow, 12, pow)
OP("", PRelu, 1, prelu)             /* 7: unidirectional broadcasting of slope */
OP("", PRelu, 7, prelu)
OP("", Equal, 1, equal)
OP("", Equal, 7, equal)
OP("", Greater, 1, greater)
OP("", Greater, 7, greater)
OP("", Less, 1, less)
OP("", Less, 7, less)
OP("", GreaterOrEqual, 12, greater_or_equal)
OP("", LessOrEqual, 12, less_or_equal)
OP("", Where, 9, where)             /* ops/variadic.c */
OP("", Min, 1, min)                 /* 8: numpy broadcasting (before: equal shapes); 12: ints */
OP("", Min, 8, min)
OP("", Max, 1, max)
OP("", Max, 8, max)
OP("", Sum, 1, sum)
OP("", Sum, 8, sum)
OP("", Mean, 1, mean)
OP("", Mean, 8, mean)

/* ---- convolution, GEMM, normalisation (ops/conv.c, ops/gemm.c, ...) ---- */
OP("", Conv, 1, conv)               /* 11 and 22 changed only text and bfloat16 */
OP("", ConvTranspose, 1, conv_transpose)
OP("", Gemm, 1, gemm)               /* < 7: 'broadcast' attribute; 9: integer types; 11: C optional */
OP("", Gemm, 7, gemm)
OP("", Gemm, 9, gemm)
OP("", Gemm, 11, gemm)
OP("", MatMul, 1, matmul)           /* 9: integer types */
OP("", MatMul, 9, matmul)
OP("", BatchNormalization, 1, batchnorm) /* < 9: 'spatial'; < 14: 5 outputs; 14: training_mode; 15: T1/T2 */
OP("", BatchNormalization, 7, batchnorm)
OP("", BatchNormalization, 9, batchnorm)
OP("", BatchNormalization, 14, batchnorm)
OP("", BatchNormalization, 15, batchnorm)
OP("", InstanceNormalization, 1, instancenorm)
OP("", LayerNormalization, 17, layernorm)

/* ---- pooling, softmax, reductions, top-k (ops/pool.c, ops/softmax.c, ops/reduce.c, ...) ---- */
OP("", MaxPool, 1, maxpool)         /* 8: storage_order + Indices; 10: dilations, ceil_mode; 12: int8/uint8 */
OP("", MaxPool, 8, maxpool)
OP("", MaxPool, 10, maxpool)
OP("", MaxPool, 12, maxpool)
OP("", AveragePool, 1, averagepool) /* 7: count_include_pad; 10: ceil_mode; 19: dilations */
OP("", AveragePool, 7, averagepool)
OP("", AveragePool, 10, averagepool)
OP("", AveragePool, 19, averagepool)
OP("", GlobalAveragePool, 1, global_averagepool)
OP("", GlobalMaxPool, 1, global_maxpool)
OP("", Softmax, 1, softmax)         /* < 13: coerced to 2-D at axis (default 1); 13: one axis (default -1) */
OP("", Softmax, 13, softmax)
OP("", LogSoftmax, 1, log_softmax)
OP("", LogSoftmax, 13, log_softmax)
OP("", ReduceSum, 1, reduce_sum)    /* 13: axes becomes an input, noop_with_empty_axes */
OP("", ReduceSum, 13, reduce_sum)
OP("", ReduceMean, 1, reduce_mean)  /* the others: axes becomes an input at 18 */
OP("", ReduceMean, 18, reduce_mean)
OP("", ReduceMax, 1, reduce_max)    /* 12: int8/uint8; 20: bool */
OP("", ReduceMax, 18, reduce_max)
OP("", ReduceMax, 20, reduce_max)
OP("", ReduceMin, 1, reduce_min)
OP("", ReduceMin, 18, reduce_min)
OP("", ReduceMin, 20, reduce_min)
OP("", ReduceProd, 1, reduce_prod)
OP("", ReduceProd, 18, reduce_prod)
OP("", ReduceL1, 1, reduce_l1)
OP("", ReduceL1, 18, reduce_l1)
OP("", ReduceL2, 1, reduce_l2)
OP("", ReduceL2, 18, reduce_l2)
OP("", ReduceSumSquare, 1, reduce_sum_square)
OP("", ReduceSumSquare, 18, reduce_sum_square)
OP("", ReduceLogSum, 1, reduce_log_sum)
OP("", ReduceLogSum, 18, reduce_log_sum)
OP("", ReduceLogSumExp, 1, reduce_log_sum_exp)
OP("", ReduceLogSumExp, 18, reduce_log_sum_exp)
OP("", ArgMax, 1, argmax)           /* 11: negative axis; 12: select_last_index */
OP("", ArgMax, 12, argmax)
OP("", ArgMin, 1, argmin)
OP("", ArgMin, 12, argmin)
OP("", TopK, 1, topk)               /* 1: attribute k; 10: input K; 11: largest, sorted */
OP("", TopK, 10, topk)
OP("", TopK, 11, topk)

/* ---- shape and data movement (ops/reshape.c, ops/concat.c, ops/slice.c, ...) ---- */
OP("", Reshape, 1, reshape)         /* 1: shape attribute; 5: shape input; 14: allowzero */
OP("", Reshape, 5, reshape)
OP("", Reshape, 14, reshape)
OP("", Flatten, 1, flatten)         /* 11: negative axis */
OP("", Flatten, 11, flatten)
OP("", Squeeze, 1, squeeze)         /* 13: axes attribute -> optional input */
OP("", Squeeze, 13, squeeze)
OP("", Unsqueeze, 1, unsqueeze)     /* 13: axes attribute -> input */
OP("", Unsqueeze, 13, unsqueeze)
OP("", Transpose, 1, transpose)
OP("", Concat, 1, concat)           /* 1: axis default 1; 4: axis required; 11: negative axis */
OP("", Concat, 4, concat)
OP("", Concat, 11, concat)
OP("", Split, 1, split)             /* 1: split input or attr; 2: attr; 13: input; 18: num_outputs */
OP("", Split, 2, split)
OP("", Split, 11, split)
OP("", Split, 13, split)
OP("", Split, 18, split)
OP("", Slice, 1, slice)             /* 1: attributes; 10: inputs with steps */
OP("", Slice, 10, slice)
OP("", Gather, 1, gather)           /* 11: negative indices spelled out (accepted for all) */
OP("", Gather, 11, gather)
OP("", Shape, 1, shape)             /* 15: start/end */
OP("", Shape, 15, shape)
OP("", Size, 1, size)
OP("", Constant, 1, constant)       /* 12: value_float(s)/value_int(s) */
OP("", Constant, 12, constant)
OP("", ConstantOfShape, 9, constant_of_shape)
OP("", Expand, 8, expand)
OP("", Tile, 1, tile)               /* 1: tiles/axis inputs; 6: repeats input */
OP("", Tile, 6, tile)
OP("", Pad, 1, pad)                 /* 1: paddings attr; 2: pads attr; 11: inputs; 18: axes; 19: wrap */
OP("", Pad, 2, pad)
OP("", Pad, 11, pad)
OP("", Pad, 18, pad)
OP("", Pad, 19, pad)
OP("", Range, 11, range)
OP("", DepthToSpace, 1, depth_to_space) /* 11: mode DCR/CRD */
OP("", DepthToSpace, 11, depth_to_space)
OP("", SpaceToDepth, 1, space_to_depth)
OP("", NonZero, 9, nonzero)

/* ---- resize, post-processing (ops/resize.c, ops/nms.c) ---- */
OP("", Upsample, 7, upsample)
OP("", Upsample, 9, upsample)
OP("", Resize, 10, resize)
OP("", Resize, 11, resize)
OP("", Resize, 13, resize)
OP("", Resize, 18, resize)
OP("", Resize, 19, resize)
OP("", NonMaxSuppression, 10, non_max_suppression)
OP("", NonMaxSuppression, 11, non_max_suppression)
