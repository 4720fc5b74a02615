#!/usr/bin/env python3
"""Expected values for tests/test_ops_shape.c (shape and data-movement ops).

Builds one-node models with onnx.helper, mostly at the OLD opsets the ONNX node tests lack
(Reshape-1/5, Squeeze/Unsqueeze-11 axes attributes, Split-2/11 split attribute, Slice-1
attributes, Pad-1/2/11, Tile-1, Concat-1, DepthToSpace-1, ...) and on dtypes other than float,
runs them and prints the case table that the C test pastes between its "BEGIN GENERATED" and
"END GENERATED" markers:

    .venv/bin/python tests/gen_ops_shape.py > /tmp/cases.inc

Every input is a graph input fed at run time (so the C test feeds the same values, all known).
Engines: onnxruntime where it implements the opset, else onnx.reference.ReferenceEvaluator; the
few forms neither implements (Reshape-1, Split-1, Tile-1, Concat-1's default axis) are computed with numpy directly and
say so in the case's 'ref' field.
"""
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

I64_MAX = np.iinfo(np.int64).max
I64_MIN = np.iinfo(np.int64).min

NP2ONNX = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.int8: TensorProto.INT8,
           np.uint8: TensorProto.UINT8, np.int16: TensorProto.INT16, np.int32: TensorProto.INT32,
           np.int64: TensorProto.INT64, np.bool_: TensorProto.BOOL, np.uint16: TensorProto.UINT16}
C_DTYPE = {np.float32: ("OD_DTYPE_FLOAT", "float"), np.float64: ("OD_DTYPE_DOUBLE", "double"),
           np.int8: ("OD_DTYPE_INT8", "int8_t"), np.uint8: ("OD_DTYPE_UINT8", "uint8_t"),
           np.int16: ("OD_DTYPE_INT16", "int16_t"), np.int32: ("OD_DTYPE_INT32", "int32_t"),
           np.int64: ("OD_DTYPE_INT64", "int64_t"), np.bool_: ("OD_DTYPE_BOOL", "uint8_t"),
           np.uint16: ("OD_DTYPE_UINT16", "uint16_t")}
C_DTYPE = {np.dtype(k).name: v for k, v in C_DTYPE.items()}  # by name: int64 may be long or longlong
NP2ONNX = {np.dtype(k).name: v for k, v in NP2ONNX.items()}


def arange(shape, dtype, start=1):
    """start, start+1, ... in row-major order (bool: alternating)."""
    n = int(np.prod(shape))
    v = np.arange(start, start + n)
    if dtype == np.bool_:
        return (v % 3 != 0).reshape(shape)
    if dtype in (np.float32, np.float64):
        return (v * 0.5).astype(dtype).reshape(shape)
    return v.astype(dtype).reshape(shape)


def i64(*v):
    return np.array(v, dtype=np.int64)


CASES = []


def case(name, op, opset, inputs, attrs=None, n_out=1, engine="ort", numpy_fn=None):
    """inputs: list of arrays or None (omitted optional input)."""
    attrs = attrs or {}
    names = [("" if a is None else "in%d" % i) for i, a in enumerate(inputs)]
    while names and names[-1] == "":
        names.pop()
    outs = ["out%d" % i for i in range(n_out)]
    if engine == "numpy":
        results = numpy_fn(*inputs)
    else:
        node = helper.make_node(op, names, outs, **attrs)
        g = helper.make_graph(
            [node], "g",
            [helper.make_tensor_value_info(nm, NP2ONNX[a.dtype.name], a.shape)
             for nm, a in zip(names, inputs) if a is not None],
            [onnx.ValueInfoProto(name=o) for o in outs])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
        feeds = {nm: a for nm, a in zip(names, inputs) if a is not None}
        results = None
        if engine == "ort":
            so = ort.SessionOptions()
            so.log_severity_level = 3
            try:
                sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
                results = sess.run(None, feeds)
            except ort.capi.onnxruntime_pybind11_state.NotImplemented:
                engine = "ref"  # onnxruntime lacks this dtype for the op
        if results is None:
            results = ReferenceEvaluator(m).run(None, feeds)
    CASES.append((name, op, opset, attrs, inputs, [np.asarray(r) for r in results], engine))


# ---- the cases ---------------------------------------------------------------------------------
x234 = arange((2, 3, 4), np.float32)

# Reshape: 1 attribute (numpy: neither engine has Reshape-1), 5 input with 0 / -1, 14 allowzero
case("reshape_v1_attr", "Reshape", 1, [x234], {"shape": [0, -1]}, engine="numpy",
     numpy_fn=lambda x: [x.reshape(2, 12)])
case("reshape_v5_zero_neg", "Reshape", 5, [x234, i64(0, -1, 2)])
case("reshape_v13_zero_copy", "Reshape", 13, [arange((2, 3, 4), np.int8), i64(4, 0, 2)])
case("reshape_v14_allowzero", "Reshape", 14, [arange((0, 3), np.float32), i64(3, 0)], {"allowzero": 1})
case("reshape_v13_scalar", "Reshape", 13, [arange((1, 1), np.int64), np.zeros(0, np.int64)])
# Flatten: 9 axis 0, 11 negative axis, bool
case("flatten_v9_axis0", "Flatten", 9, [arange((2, 3), np.int32)], {"axis": 0})
case("flatten_v11_neg", "Flatten", 11, [arange((2, 3, 4), np.bool_)], {"axis": -1})
# Squeeze / Unsqueeze: 11 axes attribute, no axes, 13 input
case("squeeze_v11_attr", "Squeeze", 11, [arange((1, 3, 1), np.float32)], {"axes": [0, -1]})
case("squeeze_v11_noaxes", "Squeeze", 11, [arange((1, 3, 1, 2), np.uint8)])
case("squeeze_v13_noaxes", "Squeeze", 13, [arange((1, 1), np.float64)])
case("squeeze_v13_input", "Squeeze", 13, [arange((2, 1, 3), np.int16), i64(1)])
case("squeeze_v13_empty_axes", "Squeeze", 13, [arange((1, 3, 1), np.float32), np.zeros(0, np.int64)])
case("unsqueeze_v11_attr", "Unsqueeze", 11, [arange((2, 3), np.float32)], {"axes": [0, 3]})
case("unsqueeze_v1_attr", "Unsqueeze", 1, [arange((2, 3), np.int64)], {"axes": [1]})
case("unsqueeze_v13_scalar", "Unsqueeze", 13, [np.array(5.0, np.float32), i64(-1)])
# Transpose: other dtypes, the tiled path (dims >= 8 on both sides of a 2-D transpose); big 4-D
# float transposes are checked in C against a naive loop
case("transpose_v1_default_i64", "Transpose", 1, [arange((2, 3, 4), np.int64)])
case("transpose_f64_perm", "Transpose", 13, [arange((2, 3, 4, 5), np.float64)], {"perm": [0, 2, 3, 1]})
case("transpose_i16_tiled", "Transpose", 13, [arange((10, 12), np.int16)], {"perm": [1, 0]})
case("transpose_f32_nchw_nhwc", "Transpose", 13, [arange((1, 8, 3, 4), np.float32)], {"perm": [0, 2, 3, 1]})
case("transpose_f32_nhwc_nchw", "Transpose", 13, [arange((1, 3, 4, 8), np.float32)], {"perm": [0, 3, 1, 2]})
case("transpose_bool", "Transpose", 13, [arange((3, 1, 2), np.bool_)], {"perm": [2, 0, 1]})
case("transpose_u8_5d", "Transpose", 13, [arange((2, 3, 2, 2, 3), np.uint8)], {"perm": [4, 1, 3, 0, 2]})
# Concat: 1 default axis 1 (reference), 4 with an empty input, bool
case("concat_v1_default_axis", "Concat", 1, [arange((2, 1), np.float32), arange((2, 3), np.float32, 10)],
     engine="numpy", numpy_fn=lambda a, b: [np.concatenate([a, b], axis=1)])
case("concat_v4_empty", "Concat", 4, [np.zeros((0, 3), np.int64), arange((2, 3), np.int64)], {"axis": 0})
case("concat_v11_bool3", "Concat", 11, [arange((2, 1), np.bool_), arange((2, 2), np.bool_, 2),
                                        arange((2, 1), np.bool_, 5)], {"axis": -1})
# Split: 1 sizes as input (numpy), 2 split attribute, 11 equal parts negative axis,
# 13 input with a zero part, 18 num_outputs uneven
case("split_v1_input", "Split", 1, [arange((2, 5), np.float32), i64(2, 3)], {"axis": 1}, n_out=2,
     engine="numpy", numpy_fn=lambda x, s: [x[:, :2], x[:, 2:]])
case("split_v2_attr", "Split", 2, [arange((2, 4), np.float32)], {"axis": 1, "split": [1, 3]}, n_out=2)
case("split_v11_equal", "Split", 11, [arange((2, 6), np.int32)], {"axis": -1}, n_out=3)
case("split_v13_input", "Split", 13, [arange((3, 2), np.int32), i64(2, 0, 1)], n_out=3)
case("split_v18_num_outputs", "Split", 18, [arange((8,), np.float32)], {"num_outputs": 3}, n_out=3)
case("split_v13_empty_split", "Split", 13, [arange((4, 3), np.float32), np.zeros(0, np.int64)], n_out=2)
# Slice: 1 attributes (reference), 10+ inputs, negative steps, INT64_MAX / INT64_MIN, clamping
x35 = arange((3, 5), np.float32)
case("slice_v1_attrs", "Slice", 1, [arange((2, 4), np.float32)], {"starts": [1, 0], "ends": [2, 3], "axes": [0, 1]},
     engine="ref")
case("slice_v1_noaxes_max", "Slice", 1, [arange((3, 4), np.int64)], {"starts": [1, -3], "ends": [I64_MAX, -1]},
     engine="ref")
case("slice_v10_negsteps", "Slice", 10, [x35, i64(-1), i64(I64_MIN), i64(1), i64(-2)])
case("slice_v13_int32", "Slice", 13, [x35, np.array([0, 1], np.int32), np.array([2, 4], np.int32)])
case("slice_v13_clamp", "Slice", 13, [arange((3, 7), np.float64), i64(-100, 1), i64(100, I64_MAX), i64(0, 1),
                                      i64(1, 3)])
case("slice_v13_empty", "Slice", 13, [x35, i64(3), i64(1), i64(1)])
case("slice_v13_reverse_all", "Slice", 13, [x35, i64(100, 100), i64(-100, I64_MIN), i64(0, 1), i64(-1, -1)])
case("slice_v13_bool_step", "Slice", 13, [arange((2, 7), np.bool_), i64(1), i64(7), i64(-1), i64(2)])
# Gather: negative indices, int32 indices, scalar index, bool data
case("gather_v11_neg", "Gather", 11, [arange((3, 3), np.float32), i64(-1, 0, 2, -3).reshape(2, 2)], {"axis": 1})
case("gather_v13_scalar_i32", "Gather", 13, [arange((4, 2), np.int64), np.array(-2, np.int32)])
case("gather_v1_axis0", "Gather", 1, [arange((3, 2, 2), np.float32), i64(2, 0)])
case("gather_v13_bool_last", "Gather", 13, [arange((2, 3), np.bool_), i64(1, 1, 0)], {"axis": -1})
# Shape / Size
case("shape_v13", "Shape", 13, [x234])
case("shape_v15_start_neg", "Shape", 15, [x234], {"start": -2})
case("shape_v15_end", "Shape", 15, [arange((2, 3, 4, 5), np.int8)], {"start": 1, "end": -1})
case("size_v13", "Size", 13, [x234])
case("size_v13_scalar", "Size", 13, [np.array(3, np.int32)])
# ConstantOfShape: value dtypes, default, empty shape
case("cos_v9_int64", "ConstantOfShape", 9, [i64(2, 3)], {"value": helper.make_tensor("v", TensorProto.INT64, [1], [7])})
case("cos_v9_default", "ConstantOfShape", 9, [i64(2)])
case("cos_v9_bool", "ConstantOfShape", 9, [i64(3)], {"value": helper.make_tensor("v", TensorProto.BOOL, [1], [True])})
case("cos_v9_scalar", "ConstantOfShape", 9, [np.zeros(0, np.int64)],
     {"value": helper.make_tensor("v", TensorProto.DOUBLE, [1], [2.5])})
# Expand
case("expand_v8_i32", "Expand", 8, [arange((3, 1), np.int32), i64(2, 1, 4)])
case("expand_v13_smaller_shape", "Expand", 13, [arange((2, 3), np.float32), i64(3)])
case("expand_v13_bool", "Expand", 13, [arange((1, 2), np.bool_), i64(3, 1)])
# Tile: 1 tiles/axis inputs (numpy), 6, zero repeats
case("tile_v1", "Tile", 1, [arange((2, 3), np.float32), i64(3), i64(1)], engine="numpy",
     numpy_fn=lambda x, t, a: [np.tile(x, (1, 3))])
case("tile_v6_i64", "Tile", 6, [arange((2, 3), np.int64), i64(2, 1)])
case("tile_v13_3d", "Tile", 13, [arange((2, 1, 2), np.float32), i64(1, 3, 2)])
case("tile_v13_zero", "Tile", 13, [arange((2, 3), np.float32), i64(0, 2)])
# Pad: 1 paddings and 2 pads attributes (reference), 11 inputs, negative pads, 18 axes, 19 wrap
x33 = arange((3, 3), np.float32)
case("pad_v1_paddings", "Pad", 1, [x33], {"paddings": [1, 0, 0, 2], "value": 1.5}, engine="ref")
case("pad_v2_reflect", "Pad", 2, [x33], {"pads": [0, 2, 0, 1], "mode": "reflect"})
case("pad_v2_constant_value", "Pad", 2, [arange((2, 2), np.float64)], {"pads": [1, 0, 0, 1], "value": 7.0})
case("pad_v11_edge", "Pad", 11, [arange((2, 3), np.int64), i64(1, 2, 1, 0)], {"mode": "edge"})
case("pad_v11_negative", "Pad", 11, [x33, i64(-1, 1, 0, -1), np.array(9.0, np.float32)])
case("pad_v11_reflect_negative", "Pad", 11, [arange((4, 4), np.float32), i64(0, -1, 0, 2)], {"mode": "reflect"})
case("pad_v13_reflect_long", "Pad", 13, [arange((2, 3), np.float32), i64(0, 5, 0, 4)], {"mode": "reflect"},
     engine="ref")
case("pad_v18_axes", "Pad", 18, [arange((2, 3), np.float32), i64(2, 1), np.array(-1.0, np.float32), i64(-1)])
case("pad_v19_wrap", "Pad", 19, [arange((2, 3), np.int32), i64(1, 4, 2, 0)], {"mode": "wrap"}, engine="ref")
case("pad_v13_bool", "Pad", 13, [arange((2, 2), np.bool_), i64(0, 1, 1, 0)])
case("pad_v13_3d_edge", "Pad", 13, [arange((2, 2, 3), np.float64), i64(1, 0, 2, 0, 1, 1)], {"mode": "edge"})
# Range
case("range_i64_neg", "Range", 11, [np.array(10, np.int64), np.array(1, np.int64), np.array(-3, np.int64)])
case("range_f64", "Range", 11, [np.array(0, np.float64), np.array(1, np.float64), np.array(0.25, np.float64)])
case("range_i16", "Range", 11, [np.array(-4, np.int16), np.array(5, np.int16), np.array(2, np.int16)])
case("range_f32_empty", "Range", 11, [np.array(5, np.float32), np.array(1, np.float32), np.array(1, np.float32)])
case("range_f32_frac", "Range", 11, [np.array(1, np.float32), np.array(2.2, np.float32), np.array(0.3, np.float32)])
# DepthToSpace / SpaceToDepth
case("d2s_v1_dcr", "DepthToSpace", 1, [arange((1, 8, 2, 3), np.float32)], {"blocksize": 2})
case("d2s_v11_crd_i8", "DepthToSpace", 11, [arange((2, 8, 1, 2), np.int8)], {"blocksize": 2, "mode": "CRD"})
case("s2d_v1_i64", "SpaceToDepth", 1, [arange((1, 2, 4, 6), np.int64)], {"blocksize": 2})
case("s2d_v13_b3", "SpaceToDepth", 13, [arange((2, 1, 3, 6), np.float32)], {"blocksize": 3})
# NonZero
case("nonzero_f32_negzero", "NonZero", 13, [np.array([[1.0, -0.0], [0.0, -2.0]], np.float32)])
case("nonzero_i32_3d", "NonZero", 13, [(arange((2, 2, 3), np.int32) % 3).astype(np.int32)])
case("nonzero_bool", "NonZero", 9, [arange((5,), np.bool_)])
case("nonzero_scalar", "NonZero", 13, [np.array(3, np.int64)], engine="ref")
case("nonzero_empty", "NonZero", 13, [np.zeros((2, 0), np.float32)])


# ---- printing --------------------------------------------------------------------------------------
def c_float(v):
    """9 significant digits (exact for float32), always with a '.' or exponent so 'f' can follow."""
    t = "%.9g" % float(v)
    return t if any(c in t for c in ".en") else t + ".0"


def c_vals(a):
    a = np.asarray(a)
    t = a.dtype.name
    flat = a.flatten()
    if flat.size == 0:
        return "0"
    if t == "float32":
        return ", ".join(c_float(v) + "f" for v in flat)
    if t == "float64":
        return ", ".join(repr(float(v)) for v in flat)
    if t == "bool":
        return ", ".join("1" if v else "0" for v in flat)
    if t == "int64":
        return ", ".join(("INT64_MIN" if int(v) == I64_MIN else "%dLL" % int(v)) for v in flat)
    return ", ".join("%d" % int(v) for v in flat)


def c_tensor(a):
    if a is None:
        return "{0}"
    a = np.asarray(a)
    code, ctype = C_DTYPE[a.dtype.name]
    dims = ", ".join(str(d) for d in a.shape) or "0"
    return "{%s, %d, {%s}, (const %s[]){%s}}" % (code, a.ndim, dims, ctype, c_vals(a))


def c_attr(name, v):
    if isinstance(v, onnx.TensorProto):
        arr = onnx.numpy_helper.to_array(v)
        code, ctype = C_DTYPE[arr.dtype.name]
        dims = ", ".join(str(d) for d in arr.shape) or "0"
        return ('{.name = "%s", .type = OD_ATTR_TENSOR, .n = 1, .tensors = (struct od_host_tensor[]){{.dtype = %s, '
                '.rank = %d, .dims = {%s}, .nelem = %d, .nbytes = %d, .data = (%s[]){%s}}}}'
                % (name, code, arr.ndim, dims, arr.size, arr.nbytes, ctype, c_vals(arr)))
    if isinstance(v, str):
        return '{.name = "%s", .type = OD_ATTR_STRING, .s = "%s", .s_len = %d}' % (name, v, len(v))
    if isinstance(v, float):
        return '{.name = "%s", .type = OD_ATTR_FLOAT, .f = %sf}' % (name, c_float(v))
    if isinstance(v, int):
        return '{.name = "%s", .type = OD_ATTR_INT, .i = %dLL}' % (name, v)
    vals = ", ".join(("INT64_MAX" if x == I64_MAX else "%dLL" % x) for x in v)
    return '{.name = "%s", .type = OD_ATTR_INTS, .n = %d, .ints = (int64_t[]){%s}}' % (name, len(v), vals)


print("/* generated by tests/gen_ops_shape.py (onnx %s, onnxruntime %s, numpy %s) */"
      % (onnx.__version__, ort.__version__, np.__version__))
print("static const struct gen_case gen_cases[] = {")
for name, op, opset, attrs, inputs, outs, engine in CASES:
    at = ", ".join(c_attr(k, v) for k, v in attrs.items())
    line = ('{"%s", "%s", %d, "%s", %d, %s, %d, {%s}, %d, {%s}},' % (
        name, op, opset, engine, len(attrs), "(struct od_attr[]){%s}" % at if attrs else "NULL",
        len(inputs), ", ".join(c_tensor(a) for a in inputs), len(outs), ", ".join(c_tensor(o) for o in outs)))
    print(textwrap.fill(line, width=110, initial_indent="    ", subsequent_indent="        ", break_on_hyphens=False,
                        break_long_words=False))
print("};")
