"""Writes the single-op models that tests/gradcheck_runner.c checks against finite differences.

usage: gen_gradcheck.py OUTDIR [--float32]

--float32 writes the same cases in float32 (inputs, outputs and float initializers), for
tests/cuda_parity.c: the CUDA kernels are float32 and are compared with the CPU ones, not with
finite differences.

Each case is one ONNX node on double inputs (float64 keeps the finite differences exact enough to
catch any wrong term; see gradcheck_runner.c for the tolerance argument). Inputs that take no
gradient (indices, shapes, axes) are initializers. Metadata "gradcheck" may say "positive" (inputs
in [0.5, 1.5]) or "spread=S" (distinct inputs, for max/min/pool ties) or loosen rtol/atol with a
reason in the case's comment."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT32 = "--float32" in sys.argv
D = TensorProto.FLOAT if FLOAT32 else TensorProto.DOUBLE
CASES = []


def case(name, op, inputs, attrs=None, consts=None, outputs=1, opset=17, meta="", out_names=None):
    CASES.append(dict(name=name, op=op, inputs=inputs, attrs=attrs or {}, consts=consts or {},
                      outputs=outputs, opset=opset, meta=meta))


def write(c, outdir):
    ins, inits, names = [], [], []
    for i, spec in enumerate(c["inputs"]):
        if spec is None:  # omitted optional input
            names.append("")
            continue
        n = f"x{i}"
        names.append(n)
        if isinstance(spec, np.ndarray):
            if FLOAT32 and spec.dtype == np.float64:
                spec = spec.astype(np.float32)
            inits.append(numpy_helper.from_array(spec, n))
        else:
            ins.append(helper.make_tensor_value_info(n, D, list(spec)))
    outs = [f"y{k}" for k in range(c["outputs"])]
    node = helper.make_node(c["op"], names, outs, name=c["name"], **c["attrs"])
    graph = helper.make_graph([node], c["name"], ins, [helper.make_tensor_value_info(o, D, None) for o in outs], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", c["opset"])])
    m.ir_version = 8
    if c["meta"]:
        helper.set_model_props(m, {"gradcheck": c["meta"]})
    onnx.save(m, os.path.join(outdir, c["name"] + ".onnx"))


def i64(*v):
    return np.array(v, dtype=np.int64)


# ---- elementwise (unary) ----
for op, meta in [("Relu", ""), ("Sigmoid", ""), ("Tanh", ""), ("Softplus", ""), ("Erf", ""), ("Exp", ""),
                 ("Neg", ""), ("Abs", ""), ("Identity", ""), ("HardSwish", ""), ("Log", "positive"),
                 ("Sqrt", "positive"), ("Reciprocal", "positive")]:
    case(f"unary_{op.lower()}", op, [(3, 5, 7)], meta=meta)
case("unary_leakyrelu", "LeakyRelu", [(4, 9)], {"alpha": 0.1})
# a negative slope: the derivative must read X (Y > 0 no longer means X > 0); CUDA hands it to the CPU
case("unary_leakyrelu_negative_alpha", "LeakyRelu", [(4, 9)], {"alpha": -0.2})
case("unary_elu", "Elu", [(4, 9)], {"alpha": 0.7})
case("unary_selu", "Selu", [(4, 9)])
case("unary_hardsigmoid", "HardSigmoid", [(4, 9)], {"alpha": 0.3, "beta": 0.4})
case("unary_clip13", "Clip", [(4, 9), np.array(-0.5), np.array(0.6)], opset=13)
case("unary_clip6", "Clip", [(4, 9)], {"min": -0.5, "max": 0.6}, opset=6)
case("unary_dropout_inference", "Dropout", [(4, 9)], opset=13)
# ---- binary, broadcasting ----
for op, meta in [("Add", ""), ("Sub", ""), ("Mul", ""), ("Div", "positive"), ("Pow", "positive")]:
    case(f"binary_{op.lower()}_same", op, [(3, 4), (3, 4)], meta=meta)
    case(f"binary_{op.lower()}_bcast", op, [(2, 3, 4, 5), (3, 1, 5)], meta=meta)
    case(f"binary_{op.lower()}_scalar", op, [(3, 4), ()], meta=meta)
case("binary_prelu", "PRelu", [(2, 3, 4, 5), (3, 1, 1)])
case("binary_min", "Min", [(3, 4), (4,), (3, 1)], meta="spread=0.01")
case("binary_max", "Max", [(3, 4), (4,), (3, 1)], meta="spread=0.01")
case("binary_sum", "Sum", [(3, 4), (4,), (3, 1)])
case("binary_mean", "Mean", [(3, 4), (4,), (3, 1)])
case("where", "Where", [np.array([[True, False, True], [False, False, True]]), (2, 3), (1, 3)])
# ---- convolution, GEMM, normalisation ----
case("conv_basic", "Conv", [(2, 3, 7, 6), (4, 3, 3, 3), (4,)], {"pads": [1, 1, 1, 1]})
case("conv_stride2_asym", "Conv", [(1, 2, 9, 8), (3, 2, 3, 2)], {"strides": [2, 2], "pads": [0, 1, 2, 0]})
case("conv_groups_dilation", "Conv", [(1, 4, 9, 9), (6, 2, 3, 3), (6,)], {"group": 2, "dilations": [2, 2], "pads": [2, 2, 2, 2]})
case("conv_depthwise", "Conv", [(2, 4, 7, 7), (4, 1, 3, 3)], {"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 2]})
case("conv_1x1", "Conv", [(2, 5, 4, 3), (3, 5, 1, 1), (3,)])
case("convtranspose_basic", "ConvTranspose", [(1, 3, 4, 5), (3, 2, 3, 3), (2,)], {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]})
case("convtranspose_groups", "ConvTranspose", [(1, 4, 3, 3), (4, 1, 3, 3)], {"group": 2})
case("gemm_transb", "Gemm", [(4, 5), (3, 5), (3,)], {"transB": 1, "alpha": 0.7, "beta": 1.3})
case("gemm_transa", "Gemm", [(5, 4), (5, 3), (4, 3)], {"transA": 1})
case("matmul_2d", "MatMul", [(4, 5), (5, 3)])
case("matmul_batched_bcast", "MatMul", [(2, 3, 4, 5), (1, 5, 2)])
case("matmul_1d", "MatMul", [(5,), (2, 5, 3)])
case("batchnorm_inference", "BatchNormalization", [(2, 3, 4, 5), (3,), (3,), np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 0.8])], opset=15)
case("instancenorm", "InstanceNormalization", [(2, 3, 4, 5), (3,), (3,)])
case("layernorm", "LayerNormalization", [(2, 3, 8), (8,), (8,)], {"axis": -1})
case("layernorm_axis1", "LayerNormalization", [(2, 3, 4), (3, 4), (3, 4)], {"axis": 1})
case("conv_1d", "Conv", [(2, 3, 11), (4, 3, 3), (4,)], {"strides": [2], "pads": [1, 2], "dilations": [2]})
case("conv_3d", "Conv", [(1, 2, 4, 5, 4), (3, 2, 2, 3, 2), (3,)],
     {"strides": [1, 2, 1], "pads": [1, 0, 1, 0, 1, 1], "dilations": [2, 1, 1]})
case("conv_depthwise_multiplier", "Conv", [(1, 3, 6, 5), (6, 1, 3, 2), (6,)], {"group": 3, "pads": [0, 1, 2, 0], "dilations": [1, 2]})
case("conv_depthwise_1d", "Conv", [(2, 2, 9), (2, 1, 3)], {"group": 2, "strides": [2], "pads": [1, 1]})
case("conv_1x1_groups", "Conv", [(2, 4, 3, 3), (6, 2, 1, 1), (6,)], {"group": 2})
case("conv_auto_pad_same", "Conv", [(1, 2, 5, 6), (2, 2, 3, 3)], {"auto_pad": "SAME_UPPER", "strides": [2, 2]})
case("convtranspose_1d", "ConvTranspose", [(1, 2, 5), (2, 3, 3), (3,)], {"strides": [2], "pads": [1, 0], "output_padding": [1]})
case("convtranspose_3d", "ConvTranspose", [(1, 2, 2, 3, 2), (2, 2, 2, 2, 2)], {"strides": [2, 1, 2], "dilations": [1, 2, 1]})
case("convtranspose_1x1", "ConvTranspose", [(2, 4, 3, 3), (4, 3, 1, 1), (3,)])
case("convtranspose_output_shape", "ConvTranspose", [(1, 2, 3, 3), (2, 2, 3, 3)],
     {"strides": [2, 2], "dilations": [2, 1], "output_shape": [8, 7]})
case("gemm_both_trans_c_col", "Gemm", [(5, 4), (3, 5), (4, 1)], {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0})
case("gemm_c_scalar", "Gemm", [(4, 5), (5, 3), ()], {"beta": 0.5})
case("gemm_c_row", "Gemm", [(4, 5), (5, 3), (1, 3)])
case("gemm_no_c", "Gemm", [(4, 5), (5, 3)], opset=13)
case("matmul_1d_1d", "MatMul", [(5,), (5,)])
case("matmul_2d_1d", "MatMul", [(3, 5), (5,)])
case("matmul_bcast_both", "MatMul", [(2, 1, 3, 4), (3, 4, 5)])
case("matmul_batched_a_only", "MatMul", [(2, 3, 4, 5), (5, 2)])
# training: batch statistics (the runner compiles with od_compile_opts.training); mean/var are state
case("batchnorm_training", "BatchNormalization",
     [(4, 3, 2, 3), (3,), (3,), np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 0.8])], opset=15, meta="training")
case("batchnorm_training_mode_attr", "BatchNormalization",
     [(3, 2, 5), (2,), (2,), np.array([0.1, -0.2]), np.array([0.5, 1.5])], {"training_mode": 1}, opset=15)
case("batchnorm_spatial0", "BatchNormalization",
     [(2, 3, 2, 2), (3, 2, 2), (3, 2, 2), np.linspace(-0.3, 0.3, 12).reshape(3, 2, 2),
      np.linspace(0.5, 1.5, 12).reshape(3, 2, 2)], {"spatial": 0}, opset=7)
case("instancenorm_1d", "InstanceNormalization", [(2, 3, 7), (3,), (3,)])
case("instancenorm_3d", "InstanceNormalization", [(1, 2, 2, 3, 2), (2,), (2,)])
# Mean and InvStdDev in double (stash_type 11) so that their gradients are checked too
case("layernorm_outputs", "LayerNormalization", [(3, 6), (6,), (6,)], {"axis": 1, "stash_type": 11}, outputs=3)
case("layernorm_bcast", "LayerNormalization", [(2, 3, 4), (1, 4), (3, 1)], {"axis": 1})
case("layernorm_no_bias", "LayerNormalization", [(4, 5), (5,)], {"axis": -1})
# ---- pooling, softmax, reductions ----
case("maxpool", "MaxPool", [(2, 3, 7, 8)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, meta="spread=0.001")
case("maxpool_ceil", "MaxPool", [(1, 2, 7, 7)], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, meta="spread=0.001")
case("averagepool", "AveragePool", [(2, 3, 7, 8)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
case("averagepool_include_pad", "AveragePool", [(1, 2, 6, 6)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1})
case("globalaveragepool", "GlobalAveragePool", [(2, 3, 5, 4)])
case("globalmaxpool", "GlobalMaxPool", [(2, 3, 5, 4)], meta="spread=0.001")
case("softmax13", "Softmax", [(2, 3, 5)], {"axis": 1}, opset=13)
case("softmax11", "Softmax", [(2, 3, 5)], {"axis": 1}, opset=11)
case("logsoftmax13", "LogSoftmax", [(2, 3, 5)], {"axis": -1}, opset=13)
case("reducemean18", "ReduceMean", [(2, 3, 4), i64(1)], opset=18)
case("reducemean11", "ReduceMean", [(2, 3, 4)], {"axes": [0, 2], "keepdims": 0}, opset=11)
case("reducesum13", "ReduceSum", [(2, 3, 4), i64(-1)], opset=13)
case("reducemax18", "ReduceMax", [(2, 3, 4), i64(2)], opset=18, meta="spread=0.001")
case("reducemin18", "ReduceMin", [(2, 3, 4), i64(1)], opset=18, meta="spread=0.001")
case("maxpool_1d", "MaxPool", [(2, 3, 9)], {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, meta="spread=0.001")
case("maxpool_3d", "MaxPool", [(1, 2, 4, 5, 4)], {"kernel_shape": [2, 2, 2], "strides": [2, 2, 1]}, meta="spread=0.001")
case("maxpool_dilation_overlap", "MaxPool", [(1, 2, 7, 7)],
     {"kernel_shape": [3, 3], "dilations": [2, 1], "pads": [1, 1, 1, 1]}, opset=12, meta="spread=0.001")
case("averagepool_ceil", "AveragePool", [(1, 2, 7, 6)], {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1}, opset=10)
case("averagepool_ceil_include_pad", "AveragePool", [(1, 2, 6, 7)],
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, "count_include_pad": 1}, opset=11)
case("averagepool_1d", "AveragePool", [(2, 3, 8)], {"kernel_shape": [3], "pads": [2, 1]})
case("averagepool_3d_same", "AveragePool", [(1, 2, 4, 5, 3)], {"kernel_shape": [2, 3, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2, 1]})
case("globalaveragepool_3d", "GlobalAveragePool", [(2, 3, 2, 3, 2)])
case("globalmaxpool_1d", "GlobalMaxPool", [(2, 3, 6)], meta="spread=0.001")
case("softmax11_4d", "Softmax", [(2, 3, 2, 4)], {"axis": 2}, opset=11)
case("softmax1_default_axis", "Softmax", [(2, 3, 4)], opset=1)
case("softmax13_inner", "Softmax", [(2, 4, 3, 5)], {"axis": 1}, opset=13)
case("logsoftmax11", "LogSoftmax", [(2, 3, 4)], {"axis": 1}, opset=11)
case("logsoftmax13_axis1", "LogSoftmax", [(2, 4, 3)], {"axis": 1}, opset=13)
case("reducesum13_general", "ReduceSum", [(2, 3, 4, 5), i64(1, 3)], opset=13)
case("reducesum13_all", "ReduceSum", [(2, 3, 4)], {"keepdims": 0}, opset=13)
case("reducesum13_noop", "ReduceSum", [(2, 3), np.zeros(0, dtype=np.int64)], {"noop_with_empty_axes": 1}, opset=13)
case("reducemean18_keep", "ReduceMean", [(2, 3, 4, 5), i64(2, 3)], opset=18)
case("reducemax11", "ReduceMax", [(3, 4, 5)], {"axes": [0, 2]}, opset=11, meta="spread=0.001")
case("reduceprod18", "ReduceProd", [(2, 3, 4), i64(1)], opset=18, meta="positive")
case("reducel1_18", "ReduceL1", [(2, 3, 4), i64(2)], opset=18)
case("reducel2_18", "ReduceL2", [(2, 3, 4), i64(0, 2)], opset=18)
case("reducesumsquare18", "ReduceSumSquare", [(2, 3, 4), i64(1)], opset=18)
case("reducelogsum18", "ReduceLogSum", [(2, 3, 4), i64(1)], opset=18, meta="positive")
case("reducelogsumexp18", "ReduceLogSumExp", [(2, 3, 4), i64(2)], opset=18)
# TopK: the Values gradient (Indices is int64 and takes none)
case("topk11", "TopK", [(3, 7), i64(3)], {"axis": 1}, outputs=2, opset=11, meta="spread=0.01")
case("topk11_smallest_axis0", "TopK", [(6, 2, 3), i64(2)], {"axis": 0, "largest": 0}, outputs=2, opset=11, meta="spread=0.01")
case("topk1", "TopK", [(4, 5)], {"k": 2}, outputs=2, opset=1, meta="spread=0.01")
# ---- shape and data movement ----
case("concat", "Concat", [(2, 3), (2, 1), (2, 4)], {"axis": 1})
case("split13", "Split", [(2, 6), i64(2, 4)], {"axis": 1}, outputs=2, opset=13)
case("split11", "Split", [(6, 2)], {"axis": 0, "split": [1, 2, 3]}, outputs=3, opset=11)
case("slice_neg_step", "Slice", [(5, 6), i64(4, 1), i64(0, 6), i64(0, 1), i64(-2, 2)], opset=13)
case("reshape", "Reshape", [(2, 3, 4), i64(4, -1)], opset=14)
case("transpose", "Transpose", [(2, 3, 4)], {"perm": [2, 0, 1]})
case("flatten", "Flatten", [(2, 3, 4)], {"axis": 2})
case("squeeze13", "Squeeze", [(2, 1, 3), i64(1)], opset=13)
case("squeeze11", "Squeeze", [(2, 1, 3)], {"axes": [1]}, opset=11)
case("unsqueeze13", "Unsqueeze", [(2, 3), i64(0, 3)], opset=13)
case("gather", "Gather", [(5, 4), np.array([[0, 3], [3, -1]], dtype=np.int64)], {"axis": 0})
case("pad_constant", "Pad", [(2, 3), i64(1, 0, 0, 2)], {"mode": "constant"}, opset=13)
case("pad_reflect", "Pad", [(3, 4), i64(0, 2, 0, 1)], {"mode": "reflect"}, opset=13)
case("pad_edge", "Pad", [(3, 4), i64(1, 1, 2, 0)], {"mode": "edge"}, opset=13)
case("expand", "Expand", [(3, 1), i64(2, 3, 4)], opset=13)
case("tile", "Tile", [(2, 3), i64(2, 2)], opset=13)
# ---- resize ----
case("resize_nearest", "Resize", [(1, 2, 3, 4), None, np.array([1, 1, 2, 2], dtype=np.float32)], {"mode": "nearest"}, opset=13)
case("resize_linear", "Resize", [(1, 2, 3, 4), None, np.array([1, 1, 2, 1.5], dtype=np.float32)], {"mode": "linear"}, opset=13)
case("resize_linear_align", "Resize", [(1, 1, 4, 4), None, None, i64(1, 1, 7, 5)], {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, opset=13)
case("resize_cubic", "Resize", [(1, 1, 4, 4), None, np.array([1, 1, 2, 2], dtype=np.float32)], {"mode": "cubic"}, opset=13)
case("upsample9", "Upsample", [(1, 2, 3, 3), np.array([1, 1, 2, 2], dtype=np.float32)], {"mode": "nearest"}, opset=9)

# ---- shape/resize cases (added) ----
# Data movement (Reshape..Tile, DepthToSpace/SpaceToDepth) and Resize/Upsample: every backward is the
# adjoint of a linear map, so the default tolerance applies everywhere.
F32 = np.float32
case("concat3_axis0", "Concat", [(1, 3, 2), (2, 3, 2), (3, 3, 2)], {"axis": -3}, opset=13)
case("concat_axis2", "Concat", [(2, 2, 1), (2, 2, 3)], {"axis": 2}, opset=4)
case("split18_num_outputs", "Split", [(2, 7)], {"axis": 1, "num_outputs": 3}, outputs=3, opset=18)
case("split18_even", "Split", [(6, 2, 2)], {"axis": -3, "num_outputs": 3}, outputs=3, opset=18)
case("split2_attr", "Split", [(3, 5)], {"axis": 1, "split": [2, 0, 3]}, outputs=3, opset=2)
# outputs 0 and 2 are not graph outputs: no gradient flows into them (their dY is absent)
case("split13_unused_outputs", "Split", [(2, 6), i64(1, 2, 3)], {"axis": 1}, outputs=3, opset=13)
case("slice_clamped", "Slice", [(5, 7), i64(-100, 1), i64(100, 2**62), i64(0, 1), i64(2, 3)], opset=13)
case("slice_neg_step_clamped", "Slice", [(6, 4), i64(2**62, -1), i64(-2**62, -5), i64(0, 1), i64(-2, -1)], opset=13)
case("slice_no_axes", "Slice", [(3, 4, 5), i64(1, -4), i64(-1, 5)], opset=13)
case("slice_axes_neg", "Slice", [(3, 4, 5), i64(-4, 1), i64(5, -1), i64(-1, -3)], opset=13)
case("slice10", "Slice", [(4, 6), i64(1, 0), i64(3, 6), i64(0, 1), i64(1, 2)], opset=10)
case("slice1_attr", "Slice", [(4, 6)], {"starts": [1, -3], "ends": [10, -1], "axes": [0, 1]}, opset=1)
case("reshape5_zero", "Reshape", [(2, 3, 4), i64(0, -1, 2)], opset=5)
case("reshape1_attr", "Reshape", [(2, 3, 4)], {"shape": [6, 4]}, opset=1)
case("transpose_default", "Transpose", [(2, 3, 4)])
case("transpose_4d", "Transpose", [(2, 9, 10, 3)], {"perm": [0, 2, 3, 1]}, opset=13)
case("flatten11_neg", "Flatten", [(2, 3, 4)], {"axis": -1}, opset=11)
case("flatten_axis0", "Flatten", [(2, 3, 4)], {"axis": 0}, opset=13)
case("squeeze13_all", "Squeeze", [(1, 3, 1, 2)], opset=13)
case("unsqueeze11", "Unsqueeze", [(2, 3)], {"axes": [-1, 1]}, opset=11)
case("gather_repeat_neg", "Gather", [(3, 5, 2), np.array([[4, -1, 0], [-5, 4, 4]], dtype=np.int64)], {"axis": 1}, opset=13)
case("gather_scalar_index", "Gather", [(3, 4), np.array(-2, dtype=np.int64)], {"axis": -1}, opset=13)
case("gather_int32_axis0", "Gather", [(4, 3), np.array([1, 1, 3, -4, 1], dtype=np.int32)], {"axis": 0}, opset=11)
case("pad_wrap", "Pad", [(3, 4), i64(2, 5, 1, 3)], {"mode": "wrap"}, opset=19)
case("pad_reflect_long", "Pad", [(3, 4), i64(4, 7, 1, 0)], {"mode": "reflect"}, opset=13)
case("pad_negative_constant", "Pad", [(4, 5), i64(-1, 2, 1, -2)], {"mode": "constant"}, opset=13)
case("pad_negative_edge", "Pad", [(4, 5), i64(-1, 2, 2, -2)], {"mode": "edge"}, opset=13)
case("pad_constant_value", "Pad", [(2, 3), i64(1, 2, 0, 1), ()], {"mode": "constant"}, opset=13)
case("pad18_axes", "Pad", [(2, 3, 4), i64(1, 2, 0, 1), None, i64(0, -1)], {"mode": "reflect"}, opset=18)
case("pad2_attr", "Pad", [(1, 2, 3, 3)], {"mode": "edge", "pads": [0, 0, 1, 2, 0, 0, 2, 1]}, opset=2)
case("pad11_constant_3d", "Pad", [(2, 3, 2), i64(0, 1, 1, 1, 0, 2), np.array(0.5)], {"mode": "constant"}, opset=11)
case("expand_rank_up", "Expand", [(3, 1, 2), i64(2, 1, 4, 2)], opset=13)
case("expand_scalar", "Expand", [(), i64(2, 3)], opset=13)
case("expand_same", "Expand", [(2, 3), i64(1, 1)], opset=8)
case("tile_3d", "Tile", [(2, 1, 3), i64(1, 3, 2)], opset=13)
case("tile6_identity", "Tile", [(3, 2), i64(1, 1)], opset=6)
case("tile1_axis", "Tile", [(3, 2), np.array(3, dtype=np.int64), np.array(-1, dtype=np.int64)], opset=1)
for mode in ["DCR", "CRD"]:
    case(f"depthtospace_{mode.lower()}", "DepthToSpace", [(2, 8, 2, 3)], {"blocksize": 2, "mode": mode}, opset=13)
case("depthtospace1", "DepthToSpace", [(1, 9, 2, 2)], {"blocksize": 3}, opset=1)
case("spacetodepth", "SpaceToDepth", [(2, 2, 4, 6)], {"blocksize": 2}, opset=13)
# Resize: each coordinate transformation mode with linear (nearest for tf_half_pixel_for_nn),
# up- and downsampling, each nearest rule, cubic variants, antialias, axes, tf_crop_and_resize
# extrapolation, old forms. Shapes keep <= 64 elements per input (all of them checked).
SC_UP = np.array([1, 1, 1.6, 2.5], dtype=F32)
SC_DOWN = np.array([1, 1, 0.6, 0.5], dtype=F32)
for ctm in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"]:
    for tag, sc in [("up", SC_UP), ("down", SC_DOWN)]:
        case(f"resize_linear_{ctm}_{tag}", "Resize", [(1, 2, 5, 4), None, sc],
             {"mode": "linear", "coordinate_transformation_mode": ctm}, opset=19)
for ctm in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]:
    for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
        case(f"resize_nearest_{ctm}_{nm}", "Resize", [(1, 2, 5, 4), None, np.array([1, 1, 1.6, 0.75], dtype=F32)],
             {"mode": "nearest", "coordinate_transformation_mode": ctm, "nearest_mode": nm}, opset=13)
case("resize_nearest_sizes_down", "Resize", [(1, 1, 7, 8), None, None, i64(1, 1, 3, 5)], {"mode": "nearest"}, opset=13)
case("resize_cubic_down", "Resize", [(1, 1, 8, 7), None, SC_DOWN], {"mode": "cubic"}, opset=13)
case("resize_cubic_exclude_a05", "Resize", [(1, 2, 4, 5), None, np.array([1, 1, 1.5, 1.8], dtype=F32)],
     {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1, "coordinate_transformation_mode": "asymmetric"}, opset=13)
case("resize_cubic_align", "Resize", [(1, 1, 4, 5), None, None, i64(1, 1, 7, 3)],
     {"mode": "cubic", "coordinate_transformation_mode": "align_corners"}, opset=13)
case("resize_linear_antialias", "Resize", [(1, 1, 8, 7), None, np.array([1, 1, 0.4, 0.6], dtype=F32)],
     {"mode": "linear", "antialias": 1}, opset=18)
case("resize_cubic_antialias", "Resize", [(1, 1, 8, 7), None, np.array([1, 1, 0.5, 0.7], dtype=F32)],
     {"mode": "cubic", "antialias": 1}, opset=18)
case("resize_axes_keep_ratio", "Resize", [(1, 2, 4, 5), None, None, i64(6, 9)],
     {"mode": "linear", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}, opset=18)
case("resize_crop_and_resize", "Resize",
     [(1, 1, 4, 5), np.array([0, 0, -0.2, 0.1, 1, 1, 1.1, 0.9], dtype=F32), None, i64(1, 1, 5, 6)],
     {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 2.5}, opset=13)
case("resize_crop_and_resize_nearest", "Resize",
     [(1, 1, 4, 5), np.array([0, 0, 0.3, -0.3, 1, 1, 1.2, 0.8], dtype=F32), None, i64(1, 1, 5, 6)],
     {"mode": "nearest", "coordinate_transformation_mode": "tf_crop_and_resize"}, opset=13)
# not the last two axes: the general N-D path of the forward (axis 1 and 3 resized)
case("resize_linear_nd", "Resize", [(2, 3, 2, 4), None, np.array([1, 1.7, 1, 0.75], dtype=F32)], {"mode": "linear"}, opset=13)
case("resize_cubic_1d", "Resize", [(9,), None, np.array([1.5], dtype=F32)], {"mode": "cubic"}, opset=13)
case("resize11_sizes", "Resize", [(1, 1, 3, 4), np.array([], dtype=F32), np.array([], dtype=F32), i64(1, 1, 5, 7)],
     {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}, opset=11)
case("resize10_linear", "Resize", [(1, 2, 3, 4), np.array([1, 1, 2, 1.5], dtype=F32)], {"mode": "linear"}, opset=10)
case("resize10_nearest_down", "Resize", [(1, 1, 6, 8), np.array([1, 1, 0.5, 0.7], dtype=F32)], {"mode": "nearest"}, opset=10)
case("upsample7", "Upsample", [(1, 2, 3, 3)], {"mode": "nearest", "scales": [1.0, 1.0, 2.0, 3.0]}, opset=7)
case("upsample9_linear", "Upsample", [(1, 2, 3, 4), np.array([1, 1, 2, 1.5], dtype=F32)], {"mode": "linear"}, opset=9)

# Graph outputs other than all of the node's (split13_unused_outputs): a wrapper around write()
# drops the node outputs not listed, so that no gradient reaches them.
_GRAPH_OUTPUTS = {"split13_unused_outputs": ["y1"]}
_write_all_outputs = write


def write(c, outdir):  # noqa: F811 (wraps the writer above)
    _write_all_outputs(c, outdir)
    keep = _GRAPH_OUTPUTS.get(c["name"])
    if keep is None:
        return
    path = os.path.join(outdir, c["name"] + ".onnx")
    m = onnx.load(path)
    outs = [o for o in m.graph.output if o.name in keep]
    del m.graph.output[:]
    m.graph.output.extend(outs)
    onnx.save(m, path)
# ---- end of shape/resize cases ----

# ---- elementwise cases (added) ----
# Backward of the elementwise family (ops/unary.c, binary.c, variadic.c, clip.c, cast.c): old opset
# forms, every broadcasting direction, and the ops the first list lacks. Names start with unary_,
# binary_ or where (the prefixes of the gradcheck_elementwise CTest).
case("unary_selu6", "Selu", [(4, 9)], {"alpha": 1.5, "gamma": 2.0}, opset=6)
case("unary_selu1_defaults", "Selu", [(4, 9)], opset=1)
case("unary_elu_default", "Elu", [(4, 9)], opset=6)
case("unary_leakyrelu_default", "LeakyRelu", [(4, 9)], opset=6)
case("unary_hardsigmoid_default", "HardSigmoid", [(4, 9)], opset=6)
case("unary_softplus_wide", "Softplus", [(4, 9)], meta="spread=0.5")  # inputs in about [-9, 9]
case("unary_erf_wide", "Erf", [(4, 9)], meta="spread=0.1")
# Floor/Ceil: the gradient is 0 (numeric too: random inputs are not within h of an integer)
case("unary_floor", "Floor", [(3, 5)])
case("unary_ceil", "Ceil", [(3, 5)])
case("unary_clip11_min_only", "Clip", [(4, 9), np.array(-0.3)], opset=11)
case("unary_clip11_max_only", "Clip", [(4, 9), None, np.array(0.4)], opset=11)
case("unary_clip11_none", "Clip", [(4, 9)], opset=11)
case("unary_clip13_min_gt_max", "Clip", [(4, 9), np.array(0.5), np.array(-0.5)], opset=13)
case("unary_clip1_max_attr", "Clip", [(4, 9)], {"max": 0.3}, opset=1)
case("unary_dropout7", "Dropout", [(4, 9)], {"ratio": 0.3}, opset=7)
case("unary_dropout12_ratio", "Dropout", [(4, 9), np.array(0.3)], opset=12)
case("unary_cast_double", "Cast", [(3, 4)], {"to": TensorProto.DOUBLE}, opset=13)
# double -> float -> double (two nodes, see _EW_CAST_BACK): the float rounding of x +- h limits the
# finite difference to ~ulp(x) / 2h ~ 6% relative, hence rtol=0.1; a missing or wrong gradient is
# still an O(1) error.
case("unary_cast_float_roundtrip", "Cast", [(3, 4)], {"to": TensorProto.FLOAT}, opset=13, meta="rtol=0.1")
case("unary_castlike_float_roundtrip", "CastLike", [(3, 4), np.array([1.0], dtype=np.float32)], opset=15,
     meta="rtol=0.1")
# binary: A broadcast, both broadcast, legacy (opset < 7) axis broadcasting
case("binary_add_bcast_a", "Add", [(3, 1), (2, 3, 4)])
case("binary_sub_bcast_a", "Sub", [(4,), (2, 3, 4)])
case("binary_mul_bcast_both", "Mul", [(3, 1, 5), (4, 1)])
case("binary_div_bcast_a", "Div", [(3, 1), (2, 3, 4)], meta="positive")
case("binary_div_bcast_both", "Div", [(1, 4), (3, 1)], meta="positive")
case("binary_add_legacy_axis", "Add", [(2, 3, 4, 5), (3, 4)], {"broadcast": 1, "axis": 1}, opset=6)
case("binary_mul_legacy_trailing", "Mul", [(2, 3, 4), (4,)], {"broadcast": 1}, opset=6)
case("binary_sub_legacy_same", "Sub", [(2, 3), (2, 3)], opset=1)
# big reductions (per-channel and scalar gradients of 2*3*64*64 elements); the multi-threaded paths of
# the reduction are checked in tests/test_ops_elementwise.c (this runner runs serially)
case("binary_add_big_bias", "Add", [(2, 3, 64, 64), (3, 1, 1)])
case("binary_mul_big_scalar", "Mul", [(2, 3, 64, 64), ()])
# Pow: broadcast exponent, broadcast base, integer exponent (only the base takes a gradient),
# negative base with a constant exponent (the base gradient is defined there)
case("binary_pow_bcast_exp", "Pow", [(2, 3, 4), (4,)], meta="positive")
case("binary_pow_bcast_base", "Pow", [(4, 1), (2, 4, 3)], meta="positive")
case("binary_pow_int_exponent", "Pow", [(3, 4), np.array(3, dtype=np.int64)], opset=13)
case("binary_pow_neg_base", "Pow", [(3, 4), np.array(2.0)])
case("binary_pow_float_exponent", "Pow", [(3, 4), np.array([1.5, 2.0, 0.5, 3.0], dtype=np.float32)], opset=13,
     meta="positive")
# PRelu: 1-D slope broadcast numpy-style (last dim), and the 1-D per-channel fallback (length of dim 1)
case("binary_prelu_slope_last", "PRelu", [(2, 3, 4, 5), (5,)])
case("binary_prelu_slope_channel", "PRelu", [(2, 3, 4, 5), (3,)])
case("binary_prelu_scalar_slope", "PRelu", [(3, 4), (1,)])
case("binary_prelu6", "PRelu", [(2, 3, 4, 5), (3, 1, 1)], opset=6)
# variadic: Min/Max over 3 broadcast inputs and 2, Sum/Mean of one input
case("binary_max3_bcast", "Max", [(2, 3, 4), (3, 1), (1, 4)], meta="spread=0.01")
case("binary_min3_bcast", "Min", [(2, 1, 4), (3, 1), ()], meta="spread=0.01")
case("binary_max2_same", "Max", [(3, 4), (3, 4)], meta="spread=0.01")
case("binary_min1", "Min", [(3, 4)], opset=13)
case("binary_sum_one", "Sum", [(3, 4)])
case("binary_mean_one", "Mean", [(3, 4)])
case("binary_mean2_bcast", "Mean", [(2, 3, 4), (4,)])
case("binary_sum8", "Sum", [(2, 3, 4), (3, 4)], opset=8)
# Where: condition broadcast, X a scalar, Y broadcast
case("where_bcast", "Where", [np.array([[[True, False, True]], [[False, False, True]]]), (), (4, 1)])
case("where_all_true", "Where", [np.array([True]), (2, 3), (2, 3)])

# Two-node round trips: the node's output goes through a Cast back to double.
_EW_CAST_BACK = {"unary_cast_float_roundtrip", "unary_castlike_float_roundtrip"}
_write_before_ew = write


def write(c, outdir):  # noqa: F811 (wraps the writer above)
    _write_before_ew(c, outdir)
    if c["name"] not in _EW_CAST_BACK:
        return
    path = os.path.join(outdir, c["name"] + ".onnx")
    m = onnx.load(path)
    node = m.graph.node[0]
    node.output[0] = "mid"
    m.graph.node.append(helper.make_node("Cast", ["mid"], ["y0"], name=c["name"] + "_back", to=D))
    onnx.save(m, path)
# ---- end of elementwise cases ----

if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for c in CASES:
        write(c, out)
    print(f"wrote {len(CASES)} gradcheck models to {out}")
