#!/usr/bin/env python3
"""Expected values for tests/test_ops_elementwise.c: the old opset forms and the ops the ONNX node
tests lack (Ceil, Reciprocal, CastLike, GreaterOrEqual, LessOrEqual, legacy broadcasting, Clip and
Dropout attributes, Cast-1's string `to`, ...).

Each case builds a one-node model with onnx.helper and runs it with onnx.reference.ReferenceEvaluator
(or onnxruntime where the reference lacks the opset). Where neither implements an old form (Add-6
legacy broadcasting, Clip-1, Cast-1, Selu-1), the expected values come from numpy following the
spec text, and the case says so. Prints the C table; `--write` replaces the generated block in
tests/test_ops_elementwise.c.

    .venv/bin/python tests/gen_ops_elementwise.py --write
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as h
from onnx.reference import ReferenceEvaluator

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

TP2C = {TP.FLOAT: ("OD_DTYPE_FLOAT", "float"), TP.DOUBLE: ("OD_DTYPE_DOUBLE", "double"),
        TP.FLOAT16: ("OD_DTYPE_FLOAT16", "uint16_t"), TP.INT8: ("OD_DTYPE_INT8", "int8_t"),
        TP.INT16: ("OD_DTYPE_INT16", "int16_t"), TP.INT32: ("OD_DTYPE_INT32", "int32_t"),
        TP.INT64: ("OD_DTYPE_INT64", "int64_t"), TP.UINT8: ("OD_DTYPE_UINT8", "uint8_t"),
        TP.UINT16: ("OD_DTYPE_UINT16", "uint16_t"), TP.UINT32: ("OD_DTYPE_UINT32", "uint32_t"),
        TP.UINT64: ("OD_DTYPE_UINT64", "uint64_t"), TP.BOOL: ("OD_DTYPE_BOOL", "uint8_t")}


def tp_of(a):
    return onnx.helper.np_dtype_to_tensor_dtype(a.dtype)


def model(op, opset, inputs, n_out, out_types, attrs):
    names = [n if a is not None else "" for n, a in inputs]
    outs = [f"Y{i}" for i in range(n_out)]
    node = h.make_node(op, names, outs, **attrs)
    vi = [h.make_tensor_value_info(n, tp_of(a), a.shape) for n, a in inputs if a is not None]
    vo = [h.make_tensor_value_info(o, t, None) for o, t in zip(outs, out_types)]
    m = h.make_model(h.make_graph([node], "g", vi, vo), opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 7
    return m


def run(source, m, inputs):
    feeds = {n: a for n, a in inputs if a is not None}
    if source == "reference":
        return ReferenceEvaluator(m).run(None, feeds)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


def c_value(v, t):
    if t == TP.FLOAT or t == TP.DOUBLE:
        if np.isnan(v):
            return "NAN"
        if np.isinf(v):
            return "INFINITY" if v > 0 else "-INFINITY"
        text = repr(float(v)) if t == TP.DOUBLE else "%.9g" % float(v)
        if not any(c in text for c in ".en"):
            text += ".0"
        return text if t == TP.DOUBLE else text + "f"
    if t == TP.FLOAT16:
        return "0x%04x" % int(np.array(v, np.float16).view(np.uint16))
    if t == TP.BOOL:
        return "1" if v else "0"
    v = int(v)
    if t == TP.INT64 and v == -2**63:
        return "INT64_MIN"
    if t == TP.INT32 and v == -2**31:
        return "INT32_MIN"
    return f"{v}ULL" if t == TP.UINT64 else f"{v}LL" if t == TP.INT64 else str(v)


class Gen:
    def __init__(self):
        self.arrays, self.cases = [], []

    def tensor(self, cname, a):
        if a is None:
            return "{0}"
        a = np.asarray(a)
        t = tp_of(a)
        code, ctype = TP2C[t]
        vals = ", ".join(c_value(v, t) for v in a.ravel()) or "0"
        self.arrays.append(f"static const {ctype} {cname}[] = {{{vals}}};")
        dims = ", ".join(str(d) for d in a.shape) or "0"
        return f"{{{code}, {a.ndim}, {{{dims}}}, {cname}}}"

    def case(self, name, op, opset, inputs, attrs=None, n_out=1, out_types=None, source="reference",
             expect=None, status="OD_OK", note=""):
        """inputs: list of (name, array or None). expect: numpy-computed outputs (source names how)."""
        attrs = attrs or {}
        inputs = [(n, None if a is None else np.asarray(a)) for n, a in inputs]
        if expect is None and status == "OD_OK":
            out_types = out_types or [tp_of(inputs[0][1])] * n_out
            expect = run(source, model(op, opset, inputs, n_out, out_types, attrs), inputs)
        ins = ", ".join(self.tensor(f"{name}_in{i}", a) for i, (_, a) in enumerate(inputs))
        outs = ", ".join(self.tensor(f"{name}_out{i}", np.asarray(e)) for i, e in enumerate(expect or []))
        at = []
        for k, v in attrs.items():
            if isinstance(v, float):
                at.append(f'{{"{k}", OD_ATTR_FLOAT, {v!r}f, 0, NULL}}')
            elif isinstance(v, int):
                at.append(f'{{"{k}", OD_ATTR_INT, 0, {v}, NULL}}')
            else:
                at.append(f'{{"{k}", OD_ATTR_STRING, 0, 0, "{v}"}}')
        desc = f"{op}-{opset} {attrs if attrs else ''} ({source}{'; ' + note if note else ''})".replace("*/", "")
        self.cases.append(f'    /* {desc} */\n    {{"{name}", "{op}", {opset}, {len(inputs)}, {{{ins}}}, '
                          f'{len(expect or [])}, {{{outs or "{0}"}}}, {len(at)}, {{{", ".join(at) or "{0}"}}}, {status}}},')

    def text(self):
        return ("\n".join(self.arrays) + "\n\nstatic const struct g_case g_cases[] = {\n" + "\n".join(self.cases) +
                "\n};\n")


def build():
    g = Gen()
    f32 = lambda *v: np.array(v, np.float32)
    rng = np.random.RandomState(7)
    x6 = (rng.randn(6) * 3).astype(np.float32)

    # ---- unary: old opsets' attributes and defaults, and ops without node tests
    g.case("selu1_default", "Selu", 1, [("X", f32(-2, -0.5, 0, 1.5))], source="numpy",
           expect=[np.where(f32(-2, -0.5, 0, 1.5) > 0, 1.0507 * f32(-2, -0.5, 0, 1.5),
                            1.0507 * (1.6732 * np.exp(f32(-2, -0.5, 0, 1.5)) - 1.6732)).astype(np.float32)],
           note="Selu-1 defaults alpha=1.6732 gamma=1.0507, spec formula")
    g.case("selu6_attrs", "Selu", 6, [("X", x6)], {"alpha": 2.0, "gamma": 3.0})
    g.case("elu6_alpha", "Elu", 6, [("X", x6)], {"alpha": 0.5})
    g.case("leakyrelu6", "LeakyRelu", 6, [("X", x6)], {"alpha": 0.2})
    g.case("hardsigmoid6", "HardSigmoid", 6, [("X", x6)], {"alpha": 0.3, "beta": 0.4})
    g.case("ceil", "Ceil", 13, [("X", f32(-1.5, -0.2, 0, 0.2, 1.5, 2.0))])
    g.case("reciprocal", "Reciprocal", 13, [("X", f32(-4, -0.5, 0.25, 2, 10))])
    g.case("softplus_big", "Softplus", 1, [("X", f32(-100, -20, 0, 20, 100))], source="onnxruntime")
    g.case("sigmoid_big", "Sigmoid", 6, [("X", f32(-100, -5, 0, 5, 100))])
    g.case("relu_int32", "Relu", 14, [("X", np.array([-5, 0, 7, -2**31], np.int32))])
    g.case("abs_int8", "Abs", 13, [("X", np.array([-128, -3, 0, 5], np.int8))])
    g.case("neg_int64", "Neg", 13, [("X", np.array([-5, 0, 7], np.int64))])
    g.case("relu_f16", "Relu", 14, [("X", np.array([-1.5, 0.25, 3.0, -0.0], np.float16))], source="onnxruntime")
    g.case("tanh_double", "Tanh", 13, [("X", np.array([-3, -0.5, 0, 0.5, 3], np.float64))])
    g.case("hardswish", "HardSwish", 14, [("X", f32(-4, -3, -1, 0, 1, 3, 4))])

    # ---- Clip: attribute forms (1, 6), optional inputs (11), integers (12)
    xc = f32(-5, -1, 0.5, 3, np.inf, -np.inf)
    g.case("clip6_attrs", "Clip", 6, [("X", xc)], {"min": -1.0, "max": 2.0})
    g.case("clip6_default", "Clip", 6, [("X", xc)], note="defaults -+FLT_MAX clip the infinities")
    g.case("clip1_min_only", "Clip", 1, [("X", xc)], {"min": 0.0}, source="numpy",
           expect=[np.maximum(xc, 0)], note="Clip-1: absent max does not clip")
    g.case("clip11_max_only", "Clip", 11, [("X", xc), ("min", None), ("max", np.array(1.0, np.float32))])
    g.case("clip12_int32", "Clip", 12, [("X", np.array([-9, -2, 0, 4, 100], np.int32)),
                                        ("min", np.array(-3, np.int32)), ("max", np.array(5, np.int32))])
    g.case("clip13_uint8_min", "Clip", 13, [("X", np.array([0, 3, 200], np.uint8)), ("min", np.array(4, np.uint8))])
    g.case("clip13_f16", "Clip", 13, [("X", np.array([-2, 0.5, 7], np.float16)), ("min", np.array(-1, np.float16)),
                                      ("max", np.array(1, np.float16))], source="onnxruntime")

    # ---- Dropout: old versions in inference
    xd = f32(-1, 2, 3.5)
    g.case("dropout6_is_test", "Dropout", 6, [("X", xd)], {"is_test": 1, "ratio": 0.3}, source="numpy",
           expect=[xd], note="inference: Y = X")
    g.case("dropout7_mask", "Dropout", 7, [("X", xd)], {"ratio": 0.3}, n_out=2, source="numpy",
           expect=[xd, np.ones(3, np.float32)],
           note="mask of type T, all ones (kept); onnxruntime writes zeros, the reference True")
    g.case("dropout10_mask", "Dropout", 10, [("X", xd)], n_out=2, out_types=[TP.FLOAT, TP.BOOL])
    g.case("dropout12_train_ratio0", "Dropout", 12, [("X", xd), ("r", np.array(0.0, np.float32)),
                                                     ("t", np.array(True))], n_out=2,
           out_types=[TP.FLOAT, TP.BOOL])
    g.case("dropout12_train", "Dropout", 12, [("X", xd), ("r", np.array(0.5, np.float32)), ("t", np.array(True))],
           status="OD_ERR_UNSUPPORTED", note="training mode is not implemented yet")

    # ---- Cast
    xf = f32(-2.7, -1, 0, 2.7, 100.5, 300, np.nan)
    g.case("cast1_string_to", "Cast", 1, [("X", xf[:5])], {"to": "INT32"}, source="numpy",
           expect=[xf[:5].astype(np.int32)], note="Cast-1 names the type as a string")
    for t in (TP.INT8, TP.UINT8, TP.INT32, TP.INT64, TP.BOOL, TP.FLOAT16, TP.DOUBLE, TP.UINT16):
        name = onnx.helper.tensor_dtype_to_np_dtype(t).name
        g.case(f"cast_float_to_{name}", "Cast", 13, [("X", xf)], {"to": t}, out_types=[t])
    g.case("cast_int64_to_float", "Cast", 13, [("X", np.array([-(2**40) - 1, -1, 0, 2**53 + 1], np.int64))],
           {"to": TP.FLOAT}, out_types=[TP.FLOAT])
    g.case("cast_uint64_to_double", "Cast", 13, [("X", np.array([0, 2**63 + 2**11, 2**64 - 1], np.uint64))],
           {"to": TP.DOUBLE}, out_types=[TP.DOUBLE])
    g.case("cast_bool_to_int16", "Cast", 13, [("X", np.array([True, False, True]))], {"to": TP.INT16},
           out_types=[TP.INT16])
    g.case("cast_f16_to_int32", "Cast", 13, [("X", np.array([-3.5, 0.5, 1000], np.float16))], {"to": TP.INT32},
           out_types=[TP.INT32])
    g.case("cast_int32_to_uint8", "Cast", 13, [("X", np.array([-1, 256, 255, 1000], np.int32))],
           {"to": TP.UINT8}, out_types=[TP.UINT8])
    g.case("castlike15", "CastLike", 15, [("X", f32(-1.5, 2.5)), ("like", np.array([0], np.int64))],
           out_types=[TP.INT64])

    # ---- binary: legacy broadcasting (opsets 1-6), comparisons without node tests
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    b3 = f32(10, 20, 30)
    g.case("add6_axis1", "Add", 6, [("A", a), ("B", b3)], {"broadcast": 1, "axis": 1}, source="numpy",
           expect=[a + b3.reshape(1, 3, 1)], note="legacy broadcasting: B aligned to A's dim 1")
    b45 = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5
    g.case("sub6_trailing", "Sub", 6, [("A", a), ("B", b45)], {"broadcast": 1}, source="numpy",
           expect=[a - b45], note="legacy broadcasting, default axis: trailing dims")
    g.case("mul1_scalar", "Mul", 1, [("A", a[0]), ("B", np.array(2.0, np.float32))], {"broadcast": 1},
           source="numpy", expect=[a[0] * 2], note="legacy broadcasting of a scalar B")
    g.case("div6_same", "Div", 6, [("A", a[0]), ("B", a[0] + 1)], source="numpy", expect=[a[0] / (a[0] + 1)],
           note="broadcast=0 with equal shapes")
    g.case("add6_no_broadcast", "Add", 6, [("A", a), ("B", b3)], status="OD_ERR_SHAPE",
           note="shapes differ and broadcast=0")
    g.case("pow1_axis0", "Pow", 1, [("A", a[:, :, 0]), ("B", f32(2, 0.5))], {"broadcast": 1, "axis": 0},
           source="numpy", expect=[np.power(a[:, :, 0], f32(2, 0.5).reshape(2, 1))],
           note="legacy broadcasting at axis 0")
    g.case("div_int32_edge", "Div", 14, [("A", np.array([7, -7, 5, -2**31, 9], np.int32)),
                                         ("B", np.array([0, 2, -1, -1, 0], np.int32))], source="numpy",
           expect=[np.array([0, -3, -5, -2**31, 0], np.int32)],
           note="x / 0 = 0 (numpy's result; onnxruntime traps), INT_MIN / -1 wraps")
    g.case("pow_f32_square", "Pow", 15, [("A", f32(-3, -0.5, 0, 1.5)), ("B", np.array(2.0, np.float32))])
    g.case("pow_int32_negexp", "Pow", 15, [("A", np.array([2, -1, 1, 3, -1], np.int32)),
                                           ("B", np.array([-1, -3, -2, 0, 4], np.int32))], source="onnxruntime")
    g.case("pow_f16_int64", "Pow", 15, [("A", np.array([1.5, -2, 3], np.float16)),
                                        ("B", np.array([2, 3, -1], np.int64))], source="onnxruntime")
    g.case("pow_double_f32", "Pow", 15, [("A", np.array([2, 9, 0.5], np.float64)), ("B", f32(0.5, 0.5, 3))],
           source="onnxruntime")
    xa = f32(1, 2, np.nan, 4, 5)
    xb = f32(2, 2, 2, np.nan, 3)
    for op in ("GreaterOrEqual", "LessOrEqual", "Greater", "Less", "Equal"):
        g.case(f"{op.lower()}_nan", op, 16 if "Or" in op else 13, [("A", xa), ("B", xb)], out_types=[TP.BOOL])
    g.case("greaterorequal_int64_bcast", "GreaterOrEqual", 16,
           [("A", np.arange(6, dtype=np.int64).reshape(2, 3)), ("B", np.array([1, 4, 2], np.int64))],
           out_types=[TP.BOOL])
    g.case("equal_bool", "Equal", 13, [("A", np.array([True, False, True])), ("B", np.array([True]))],
           out_types=[TP.BOOL])
    g.case("add_f16_bcast", "Add", 14, [("A", np.array([[1, 2], [3, 4]], np.float16)),
                                        ("B", np.array([0.5, -8], np.float16))], source="onnxruntime")
    g.case("sub_uint8_wrap", "Sub", 14, [("A", np.array([1, 200], np.uint8)), ("B", np.array([2, 100], np.uint8))])
    g.case("mul_int16_wrap", "Mul", 14, [("A", np.array([300, -7], np.int16)), ("B", np.array([300, 5], np.int16))])
    xp = -np.arange(1, 13, dtype=np.float32).reshape(1, 3, 2, 2)
    xp[0, 1, 0, 0] = 5
    g.case("prelu6_channel", "PRelu", 6, [("X", xp), ("slope", f32(0.1, 0.2, 0.3))],
           note="1-D slope along the one dim of length 3")
    g.case("prelu_bcast_c11", "PRelu", 16, [("X", xp), ("slope", f32(0.1, 0.2, 0.3).reshape(3, 1, 1))])

    # ---- variadic and Where
    m1 = f32(1, np.nan, 3, -4)
    m2 = f32(2, 0, np.nan, -5)
    g.case("min6_same", "Min", 6, [("A", m1), ("B", m2)], note="NaN propagates")
    g.case("max6_same", "Max", 6, [("A", m1), ("B", m2)])
    g.case("sum8_three_bcast", "Sum", 8, [("A", f32(1, 2, 3)), ("B", f32(10, 20, 30, 40, 50, 60).reshape(2, 1, 3)),
                                          ("C", np.array(0.5, np.float32))])
    g.case("mean8_bcast", "Mean", 8, [("A", f32(1, 2).reshape(2, 1)), ("B", f32(3, 4, 5))], source="onnxruntime",
           note="the reference's Mean cannot grow its first input")
    g.case("mean13_f16", "Mean", 13, [("A", np.array([1, 2, 3], np.float16)), ("B", np.array([2, 2, 2], np.float16)),
                                      ("C", np.array([0.5, 0.25, 0], np.float16))], source="onnxruntime")
    g.case("max12_uint64", "Max", 12, [("A", np.array([1, 2**63 + 5], np.uint64)), ("B", np.array([7], np.uint64))],
           source="onnxruntime")
    g.case("min13_int8_one", "Min", 13, [("A", np.array([-3, 4], np.int8))])
    g.case("where_bcast3", "Where", 16, [("c", np.array([[True], [False]])), ("X", f32(1, 2, 3)),
                                         ("Y", np.array(-1.0, np.float32))], out_types=[TP.FLOAT])
    g.case("where_int8", "Where", 9, [("c", np.array([True, False, True])), ("X", np.array([1, 2, 3], np.int8)),
                                      ("Y", np.array([-1, -2, -3], np.int8))], out_types=[TP.INT8])
    g.case("where_f16", "Where", 16, [("c", np.array([True, False])), ("X", np.array([1.5, 2], np.float16)),
                                      ("Y", np.array([[-1, -2]], np.float16))], source="onnxruntime",
           out_types=[TP.FLOAT16])
    return g


def main():
    text = ("/* ---- BEGIN GENERATED by tests/gen_ops_elementwise.py (do not edit by hand) ---- */\n" + build().text() +
            "/* ---- END GENERATED ---- */\n")
    if "--write" in sys.argv:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_ops_elementwise.c")
        src = open(path).read()
        b = src.index("/* ---- BEGIN GENERATED")
        e = src.index("/* ---- END GENERATED ---- */\n") + len("/* ---- END GENERATED ---- */\n")
        open(path, "w").write(src[:b] + text + src[e:])
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
