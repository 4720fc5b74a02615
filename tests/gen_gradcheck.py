"""Writes the single-op models that tests/gradcheck_runner.c checks against finite differences.

usage: gen_gradcheck.py OUTDIR

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

D = TensorProto.DOUBLE
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

if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for c in CASES:
        write(c, out)
    print(f"wrote {len(CASES)} gradcheck models to {out}")
