/* ops/cuda_ops.h: the CUDA kernels of the op table (defined in ops/<family>.cu, C linkage). An op's
 * .c file puts them in its od_op_kernels with OD_CUDA_KERNEL(fn), which is NULL in builds without
 * CUDA. Each family adds its lines in its own section (several people edit this file). */
#ifndef OD_CUDA_OPS_H
#define OD_CUDA_OPS_H

#include "runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct od_kernel_ctx;
#define OD_CUDA_DECL(name) enum od_status name(struct od_kernel_ctx *ctx)

/* ---- elementwise: unary, binary, variadic, clip (ops/unary.cu, ops/binary.cu, ...) ---- */
#define OD_CUDA_DECL_FB(op) OD_CUDA_DECL(od_cuda_##op##_fwd); OD_CUDA_DECL(od_cuda_##op##_bwd)
OD_CUDA_DECL_FB(relu);
OD_CUDA_DECL_FB(leakyrelu);
OD_CUDA_DECL_FB(elu);
OD_CUDA_DECL_FB(selu);
OD_CUDA_DECL_FB(sigmoid);
OD_CUDA_DECL_FB(hardsigmoid);
OD_CUDA_DECL_FB(hardswish);
OD_CUDA_DECL_FB(tanh);
OD_CUDA_DECL_FB(softplus);
OD_CUDA_DECL_FB(erf);
OD_CUDA_DECL_FB(sqrt);
OD_CUDA_DECL_FB(exp);
OD_CUDA_DECL_FB(log);
OD_CUDA_DECL_FB(abs);
OD_CUDA_DECL_FB(neg);
OD_CUDA_DECL_FB(floor);
OD_CUDA_DECL_FB(ceil);
OD_CUDA_DECL_FB(reciprocal);
OD_CUDA_DECL(od_cuda_identity_fwd);
OD_CUDA_DECL(od_cuda_dropout_fwd);
OD_CUDA_DECL(od_cuda_pass_through_bwd); /* dX += dY: Identity, Dropout */
OD_CUDA_DECL_FB(add);
OD_CUDA_DECL_FB(sub);
OD_CUDA_DECL_FB(mul);
OD_CUDA_DECL_FB(div);
OD_CUDA_DECL_FB(pow);
OD_CUDA_DECL_FB(prelu);
OD_CUDA_DECL_FB(clip);
OD_CUDA_DECL_FB(sum);
OD_CUDA_DECL_FB(mean);
OD_CUDA_DECL_FB(max);
OD_CUDA_DECL_FB(min);

/* ---- convolution, GEMM (ops/conv.cu, ops/gemm.cu, ops/matmul.cu) ---- */
OD_CUDA_DECL(od_cuda_conv_fwd);        /* Conv (cuDNN) */
OD_CUDA_DECL(od_cuda_conv_bwd);
OD_CUDA_DECL(od_cuda_gemm_fwd);        /* Gemm (cuBLAS) */
OD_CUDA_DECL(od_cuda_gemm_bwd);
OD_CUDA_DECL(od_cuda_matmul_fwd);      /* MatMul (cuBLAS) */
OD_CUDA_DECL(od_cuda_matmul_bwd);

/* ---- normalisation, pooling, softmax, reductions (ops/batchnorm.cu, ops/pool.cu, ...) ---- */
OD_CUDA_DECL(od_cuda_batchnorm_fwd);
OD_CUDA_DECL(od_cuda_batchnorm_bwd);
OD_CUDA_DECL(od_cuda_pool_fwd);        /* MaxPool, AveragePool */
OD_CUDA_DECL(od_cuda_pool_bwd);
OD_CUDA_DECL(od_cuda_global_pool_fwd); /* GlobalMaxPool, GlobalAveragePool */
OD_CUDA_DECL(od_cuda_global_pool_bwd);
OD_CUDA_DECL(od_cuda_softmax_fwd);     /* Softmax, LogSoftmax */
OD_CUDA_DECL(od_cuda_softmax_bwd);
OD_CUDA_DECL(od_cuda_reduce_fwd);      /* the ten Reduce* ops */
OD_CUDA_DECL(od_cuda_reduce_bwd);

/* ---- shape and data movement, resize (ops/concat.cu, ops/slice.cu, ops/resize.cu, ...) ---- */
OD_CUDA_DECL(od_cuda_concat_fwd);
OD_CUDA_DECL(od_cuda_concat_bwd);
OD_CUDA_DECL(od_cuda_split_fwd);
OD_CUDA_DECL(od_cuda_split_bwd);
OD_CUDA_DECL(od_cuda_slice_fwd);
OD_CUDA_DECL(od_cuda_slice_bwd);
OD_CUDA_DECL(od_cuda_transpose_fwd);
OD_CUDA_DECL(od_cuda_transpose_bwd);
OD_CUDA_DECL(od_cuda_view_fwd);        /* Reshape, Flatten, Squeeze, Unsqueeze */
OD_CUDA_DECL(od_cuda_view_bwd);
OD_CUDA_DECL(od_cuda_expand_fwd);
OD_CUDA_DECL(od_cuda_expand_bwd);
OD_CUDA_DECL(od_cuda_tile_fwd);
OD_CUDA_DECL(od_cuda_tile_bwd);
OD_CUDA_DECL(od_cuda_pad_fwd);
OD_CUDA_DECL(od_cuda_pad_bwd);
OD_CUDA_DECL(od_cuda_gather_fwd);
OD_CUDA_DECL(od_cuda_gather_bwd);
OD_CUDA_DECL(od_cuda_depth_space_fwd); /* DepthToSpace, SpaceToDepth */
OD_CUDA_DECL(od_cuda_depth_space_bwd);
OD_CUDA_DECL(od_cuda_resize_fwd);      /* Resize, Upsample */
OD_CUDA_DECL(od_cuda_resize_bwd);

#ifdef __cplusplus
}
#endif

#endif
