#!/usr/bin/env python3
"""Expected values for tests/test_ops_pool.c (pooling, softmax, reductions, arg-extremes, top-k).

The ONNX node tests cover the newest opsets; these cases cover the old forms exporters still
write (Softmax-11 coerced to 2-D, Reduce* with an axes attribute, TopK-1/10, MaxPool-8 Indices with
storage_order, AveragePool-7/10 count_include_pad with ceil_mode, ...) and the kernels' other
paths (non-adjacent reduced axes, blocked column paths, integer dtypes).

Each case is a one-node model built with onnx.helper and run with onnxruntime (the reference the
ONNX node tests agree with; the ONNX ReferenceEvaluator where onnxruntime has no kernel for the
opset); the inputs come from a fixed numpy seed. The script prints the C
block (case table) and, with --write, replaces the block between the GENERATED markers of
tests/test_ops_pool.c.

    .venv/bin/python tests/gen_ops_pool.py --write
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

rng = np.random.default_rng(20240611)
ort.set_default_logger_severity(3)

NP_TO_ONNX = {
    np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.int8: TensorProto.INT8,
    np.uint8: TensorProto.UINT8, np.int32: TensorProto.INT32, np.int64: TensorProto.INT64,
    np.bool_: TensorProto.BOOL,
}


def onnx_dtype(a):
    return NP_TO_ONNX[np.dtype(a.dtype).type] if np.dtype(a.dtype).type in NP_TO_ONNX else {
        "int64": TensorProto.INT64, "float64": TensorProto.DOUBLE}[np.dtype(a.dtype).name]
C_DTYPE = {
    TensorProto.FLOAT: ("OD_DTYPE_FLOAT", "float"), TensorProto.DOUBLE: ("OD_DTYPE_DOUBLE", "double"),
    TensorProto.INT8: ("OD_DTYPE_INT8", "int8_t"), TensorProto.UINT8: ("OD_DTYPE_UINT8", "uint8_t"),
    TensorProto.INT32: ("OD_DTYPE_INT32", "int32_t"), TensorProto.INT64: ("OD_DTYPE_INT64", "int64_t"),
    TensorProto.BOOL: ("OD_DTYPE_BOOL", "uint8_t"),
}


def randf(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def randi(lo, hi, *shape, dtype=np.int32):
    return rng.integers(lo, hi, size=shape).astype(dtype)


CASES = []


def case(name, op, opset, attrs, inputs, n_out=1, use_reference=False):
    """inputs: list of numpy arrays (None = omitted optional input). use_reference: take the ONNX
    ReferenceEvaluator's values where onnxruntime departs from the spec."""
    CASES.append((name, op, opset, attrs, inputs, n_out, use_reference))


# ---- Softmax / LogSoftmax: opset < 13 coerces to 2-D at axis ----
x4 = randf(2, 3, 2, 2)
case("softmax11_4d_axis1", "Softmax", 11, {"axis": 1}, [x4])
case("logsoftmax11_4d_axis1", "LogSoftmax", 11, {"axis": 1}, [x4])
case("softmax11_default_axis", "Softmax", 11, {}, [randf(2, 3, 4)])
case("softmax1_axis2", "Softmax", 1, {"axis": 2}, [randf(2, 3, 4)])
case("logsoftmax11_axis_neg1", "LogSoftmax", 11, {"axis": -1}, [randf(2, 3, 4)])
case("softmax13_axis1_wide", "Softmax", 13, {"axis": 1}, [randf(1, 2, 260)])
case("logsoftmax13_axis0_wide", "LogSoftmax", 13, {"axis": 0}, [randf(2, 260)])
case("softmax13_double", "Softmax", 13, {}, [rng.standard_normal((3, 7))])
masked = randf(3, 11) * 20  # wide range for the float exp, and -inf entries as attention masks write
masked[0, 3] = masked[1, 0] = masked[1, 10] = masked[2, 5] = -np.inf
case("softmax13_masked", "Softmax", 13, {}, [masked])
case("logsoftmax13_masked", "LogSoftmax", 13, {}, [masked])
case("softmax13_masked_axis0", "Softmax", 13, {"axis": 0}, [masked])

# ---- Reduce*: axes attribute (old opsets) and input (new) ----
x3 = randf(2, 3, 4)
case("reducemean11_axes1", "ReduceMean", 11, {"axes": [1], "keepdims": 0}, [x3])
case("reducemean11_all", "ReduceMean", 11, {}, [x3])
case("reducesum11_axes02", "ReduceSum", 11, {"axes": [0, 2]}, [x3])
case("reducesum11_int32", "ReduceSum", 11, {"axes": [-1], "keepdims": 0}, [randi(-50, 50, 3, 5)])
case("reducemax13_axes13", "ReduceMax", 13, {"axes": [1, 3], "keepdims": 0}, [randf(2, 3, 4, 5)])
case("reducemin18_input", "ReduceMin", 18, {}, [x3, np.array([1], np.int64)])
case("reducemin13_int8", "ReduceMin", 13, {"axes": [0]}, [randi(-100, 100, 4, 3, dtype=np.int8)])
case("reduceprod13_int64", "ReduceProd", 13, {"axes": [0], "keepdims": 0},
     [np.array([[2, 3, 4], [5, 1, 7]], np.int64)])
case("reduceprod18_all", "ReduceProd", 18, {"keepdims": 0}, [np.array([1.5, -2.0, 3.0, 0.5], np.float32)])
case("reducel1_13", "ReduceL1", 13, {"axes": [1]}, [x3])
case("reducel2_13", "ReduceL2", 13, {"axes": [1]}, [x3])
case("reducesumsquare_13", "ReduceSumSquare", 13, {"axes": [2], "keepdims": 0}, [x3])
case("reducelogsum_13", "ReduceLogSum", 13, {"axes": [1]}, [np.abs(x3) + 0.1])
case("reducelogsumexp_13", "ReduceLogSumExp", 13, {"axes": [0, 2]}, [x3 * 30])
case("reducel2_18_noop", "ReduceL2", 18, {"noop_with_empty_axes": 1}, [x3])
case("reducemean18_rows", "ReduceMean", 18, {}, [randf(2, 5, 20), np.array([1], np.int64)])
case("reducemax13_rows", "ReduceMax", 13, {"axes": [0]}, [randf(5, 33)])
case("reducesumsquare18_rows", "ReduceSumSquare", 18, {"keepdims": 0}, [randf(2, 3, 20), np.array([-2], np.int64)])
case("reducemax20_bool", "ReduceMin", 20, {"keepdims": 0},
     [np.array([[True, False], [True, True]]), np.array([1], np.int64)])

# ---- ArgMax / ArgMin ----
ties = np.array([[1, 3, 3, 0], [2, 2, 1, 1], [0, 5, 5, 5]], np.float32)
case("argmin11_neg_axis", "ArgMin", 11, {"axis": -1, "keepdims": 0}, [ties])
case("argmin12_last", "ArgMin", 12, {"axis": 1, "select_last_index": 1}, [ties])
case("argmax12_last_axis0", "ArgMax", 12, {"axis": 0, "select_last_index": 1}, [ties])
case("argmax1_int32", "ArgMax", 1, {"axis": 1}, [randi(-5, 5, 3, 4, 2)])
case("argmin13_wide", "ArgMin", 13, {"axis": 0}, [randf(2, 260)])

# ---- TopK: k attribute (1), K input (10), largest/sorted (11) ----
case("topk1_attr_k", "TopK", 1, {"k": 2}, [randf(3, 4)], n_out=2)
case("topk10_input_k_axis0", "TopK", 10, {"axis": 0}, [randf(5, 2), np.array([3], np.int64)], n_out=2)
case("topk11_smallest_ties", "TopK", 11, {"axis": 1, "largest": 0},
     [np.array([[3, 1, 1, 2, 1], [0, 0, 0, 0, 0]], np.int32), np.array([3], np.int64)], n_out=2)
case("topk11_big", "TopK", 11, {}, [randf(2, 100), np.array([7], np.int64)], n_out=2)
case("topk11_k_equals_n_double", "TopK", 11, {"axis": 1},
     [rng.standard_normal((2, 6, 2)), np.array([6], np.int64)], n_out=2)

# ---- MaxPool / AveragePool old forms ----
case("maxpool8_storage_order1", "MaxPool", 8, {"kernel_shape": [2, 2], "strides": [2, 2], "storage_order": 1},
     [randf(1, 2, 4, 6)], n_out=2)
case("maxpool10_1d_ceil_pads", "MaxPool", 10,
     {"kernel_shape": [3], "strides": [2], "pads": [1, 1], "ceil_mode": 1}, [randf(2, 1, 8)], n_out=2)
case("maxpool12_int8_pads", "MaxPool", 12, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
     [randi(-128, 127, 1, 1, 4, 4, dtype=np.int8)])
case("maxpool12_3d_indices", "MaxPool", 12, {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2], "pads": [0, 1, 0, 1, 0, 1]},
     [randf(1, 2, 3, 4, 4)], n_out=2)
case("maxpool11_same_lower_strided", "MaxPool", 11,
     {"kernel_shape": [3, 2], "strides": [2, 1], "auto_pad": "SAME_LOWER"}, [randf(1, 1, 7, 5)])
# SAME with dilation: onnxruntime leaves the dilation out of the SAME padding and the reference
# evaluator floors in/stride for SAME_LOWER (both give 3 rows); the spec and ONNX shape inference
# give ceil(7/2) = 4 rows with pad = (4-1)*2 + (3-1)*2+1 - 7 = 4 split 2/2. Values from
# spec_maxpool_same below, a direct numpy transcription of the spec's formulas.
case("maxpool11_same_lower_dilated", "MaxPool", 11,
     {"kernel_shape": [3, 2], "strides": [2, 1], "dilations": [2, 1], "auto_pad": "SAME_LOWER"}, [randf(1, 1, 7, 5)],
     use_reference="spec")
case("avgpool7_include_pad", "AveragePool", 7,
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}, [randf(1, 2, 5, 5)])
case("avgpool10_ceil_include_pad", "AveragePool", 10,
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1], "ceil_mode": 1, "count_include_pad": 1},
     [randf(1, 1, 6, 6)])
case("avgpool10_ceil_exclude_pad", "AveragePool", 10,
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}, [randf(1, 1, 6, 7)])
case("avgpool19_dilations_pads", "AveragePool", 19,
     {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}, [randf(1, 1, 5, 5)])
case("avgpool1_valid", "AveragePool", 1, {"kernel_shape": [2, 3], "strides": [2, 2], "auto_pad": "VALID"},
     [randf(1, 2, 5, 7)])
case("avgpool11_same_upper_1d", "AveragePool", 11, {"kernel_shape": [4], "strides": [3], "auto_pad": "SAME_UPPER"},
     [randf(1, 2, 10)])
case("globalavgpool1_3d", "GlobalAveragePool", 1, {}, [randf(1, 2, 3, 4, 5)])
case("globalmaxpool1_1d", "GlobalMaxPool", 1, {}, [randf(2, 3, 7)])
case("globalavgpool1_double", "GlobalAveragePool", 1, {}, [rng.standard_normal((2, 2, 3, 3))])


def spec_maxpool_same(x, attrs):
    """MaxPool with auto_pad SAME_*, straight from the spec: out = ceil(in / s), total pad =
    (out - 1) * s + (k - 1) * d + 1 - in, the odd one at the end (UPPER) or beginning (LOWER);
    the max over the taps inside the input."""
    k, s, d = attrs["kernel_shape"], attrs["strides"], attrs["dilations"]
    sp = x.shape[2:]
    out = [-(-n // st) for n, st in zip(sp, s)]
    begin = []
    for n, o, kk, st, dd in zip(sp, out, k, s, d):
        total = max(0, (o - 1) * st + (kk - 1) * dd + 1 - n)
        begin.append(total - total // 2 if attrs["auto_pad"] == "SAME_LOWER" else total // 2)
    y = np.empty(x.shape[:2] + tuple(out), x.dtype)
    for idx in np.ndindex(*out):
        taps = [[st * o - b + j * dd for j in range(kk) if 0 <= st * o - b + j * dd < n]
                for o, st, b, kk, dd, n in zip(idx, s, begin, k, d, sp)]
        win = x[(slice(None), slice(None)) + np.ix_(*taps)]
        y[(slice(None), slice(None)) + idx] = win.reshape(x.shape[0], x.shape[1], -1).max(axis=2)
    return y


def run_case(name, op, opset, attrs, inputs, n_out, use_reference):
    in_names = [f"in{i}" if a is not None else "" for i, a in enumerate(inputs)]
    out_names = [f"out{i}" for i in range(n_out)]
    node = helper.make_node(op, in_names, out_names, **attrs)
    g_in = [helper.make_tensor_value_info(n, onnx_dtype(a), a.shape)
            for n, a in zip(in_names, inputs) if a is not None]
    g_out = [helper.make_empty_tensor_value_info(n) for n in out_names]
    graph = helper.make_graph([node], name, g_in, g_out)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    feed = {n: a for n, a in zip(in_names, inputs) if a is not None}
    if use_reference == "spec":
        return [spec_maxpool_same(inputs[0], attrs)], "numpy, the spec's formulas (spec_maxpool_same)"
    try:
        if use_reference:
            raise NotImplementedError
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, feed), "onnxruntime"
    except Exception:  # kernels onnxruntime dropped (AveragePool-1): the ONNX reference evaluator
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(model).run(None, feed), "onnx ReferenceEvaluator"


def c_values(a):
    flat = a.reshape(-1)
    if a.dtype in (np.float32, np.float64):
        fmt, suffix = ("%.9g", "f") if a.dtype == np.float32 else ("%.17g", "")
        vals = []
        for v in flat:
            if not np.isfinite(v):
                vals.append("NAN" if np.isnan(v) else ("INFINITY" if v > 0 else "-INFINITY"))
                continue
            t = fmt % v
            if suffix and not any(c in t for c in ".en"):
                t += ".0"  # "3" -> "3.0f"
            vals.append(t + suffix)
    elif a.dtype == np.bool_:
        vals = [str(int(v)) for v in flat]
    elif a.dtype == np.int64:
        vals = [f"{int(v)}LL" for v in flat]
    else:
        vals = [str(int(v)) for v in flat]
    if not vals:
        vals = ["0"]
    lines, line = [], "   "
    for v in vals:
        if len(line) + len(v) + 2 > 100:
            lines.append(line)
            line = "   "
        line += " " + v + ","
    lines.append(line)
    return "\n".join(lines)


def c_attrs(attrs):
    parts = []
    for k, v in attrs.items():
        if isinstance(v, list):
            parts.append(f"{k}=I:" + ",".join(str(int(x)) for x in v))
        elif isinstance(v, str):
            parts.append(f"{k}=s:{v}")
        elif isinstance(v, float):
            parts.append(f"{k}=f:{v!r}")
        else:
            parts.append(f"{k}=i:{int(v)}")
    return ";".join(parts)


def emit():
    out = []
    table = []
    for ci, (name, op, opset, attrs, inputs, n_out, use_reference) in enumerate(CASES):
        outs, ref = run_case(name, op, opset, attrs, inputs, n_out, use_reference)
        out.append(f"/* {name}: {op}-{opset}, expected values from {ref} */")
        tens = []
        for kind, arrs in (("in", inputs), ("out", outs)):
            for i, a in enumerate(arrs):
                if a is None:
                    tens.append((kind, i, None))
                    continue
                a = np.asarray(a)
                code, ctype = C_DTYPE[onnx_dtype(a)]
                var = f"c{ci}_{kind}{i}"
                out.append(f"static const {ctype} {var}[] = {{\n{c_values(a)}\n}};")
                dims = ", ".join(str(d) for d in a.shape) or "0"
                tens.append((kind, i, f"{{{code}, {a.ndim}, {{{dims}}}, {var}}}"))
        ins = ", ".join(t or "{0}" for k, _, t in tens if k == "in")
        outs_c = ", ".join(t for k, _, t in tens if k == "out")
        table.append(f'    {{"{name}", "{op}", {opset}, "{c_attrs(attrs)}", {len(inputs)}, {{{ins}}}, {n_out}, {{{outs_c}}}}},')
    out.append("static const struct op_case op_cases[] = {")
    out.extend(table)
    out.append("};")
    return "\n".join(out)


def main():
    block = emit()
    if "--write" in sys.argv:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_ops_pool.c")
        src = open(path).read()
        begin = "/* BEGIN GENERATED by tests/gen_ops_pool.py */\n"
        end = "/* END GENERATED */\n"
        i, j = src.index(begin) + len(begin), src.index(end)
        open(path, "w").write(src[:i] + block + "\n" + src[j:])
    else:
        print(block)


if __name__ == "__main__":
    main()
