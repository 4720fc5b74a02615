#!/usr/bin/env python3
"""Expected values for tests/test_ops_conv.c (the conv / GEMM / normalisation family).

Builds one-node models with onnx.helper for the OLD opset forms and attribute combinations the ONNX
node tests lack (Gemm-6 'broadcast', Gemm-11 without C, integer Gemm/MatMul, MatMul broadcasting,
BatchNormalization-6/7/9/14/15, InstanceNormalization-1/6, LayerNormalization broadcasting and
Mean/InvStdDev, Conv/ConvTranspose with auto_pad, output_shape, output_padding), runs them and
prints the case table that the C test pastes between its "BEGIN GENERATED" / "END GENERATED"
markers:

    .venv/bin/python tests/gen_ops_conv.py > /tmp/conv_cases.inc

References: onnxruntime where it implements the case; onnx.reference.ReferenceEvaluator where it
does not (integer Gemm, BatchNormalization-15 mixed dtypes); and for the two BatchNormalization
forms neither implements (spatial=0 of opset 7, the 5 training outputs of opset 9), the formulas
of the ONNX spec written out in numpy below. For every case both engines are tried, onnxruntime's
answer is used when it has one, and a disagreement beyond 1e-5 is reported on stderr. One is
expected: bn9_inference, where the reference evaluator's BatchNormalization_9 switches to batch
statistics whenever 'momentum' has a value (it always does, from the schema default);
onnxruntime computes the inference formula, as the spec says.

Inputs are made by a formula the C test repeats, so only outputs are printed. For input number s
(the "seed") element i is
    kind 0: (((i * 7 + s * 5) % 29) - 14) / 8      (float types; integers: without the / 8)
    kind 1: 0.25 + ((i * 7 + s * 5) % 29) / 16     (positive: variances)
"""
import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

NP2ONNX = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.int32: TensorProto.INT32,
           np.int64: TensorProto.INT64, np.uint64: TensorProto.UINT64}
C_DTYPE = {"float32": "OD_DTYPE_FLOAT", "float64": "OD_DTYPE_DOUBLE", "int32": "OD_DTYPE_INT32",
           "int64": "OD_DTYPE_INT64", "uint64": "OD_DTYPE_UINT64"}


def make_input(shape, dtype, seed, kind=0):
    n = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(n, dtype=np.int64)
    r = (i * 7 + seed * 5) % 29
    if kind == 1:
        v = 0.25 + r / 16.0
    elif dtype in (np.float32, np.float64):
        v = (r - 14) / 8.0
    elif dtype == np.uint64:
        v = r
    else:
        v = r - 14
    return v.astype(dtype).reshape(shape)


class Case:
    def __init__(self, name, op, opset, attrs, inputs, n_out, training=False, numpy_ref=None):
        """inputs: list of (shape, dtype, kind) or None for an omitted optional input."""
        self.name, self.op, self.opset, self.attrs = name, op, opset, attrs
        self.inputs, self.n_out, self.training, self.numpy_ref = inputs, n_out, training, numpy_ref

    def arrays(self):
        return [None if t is None else make_input(t[0], t[1], s, t[2] if len(t) > 2 else 0)
                for s, t in enumerate(self.inputs)]

    def model(self):
        names, vis = [], []
        for k, (t, a) in enumerate(zip(self.inputs, self.arrays())):
            if t is None:
                names.append("")
                continue
            names.append(f"i{k}")
            vis.append(helper.make_tensor_value_info(f"i{k}", NP2ONNX[a.dtype.type], a.shape))
        outs = [f"o{k}" for k in range(self.n_out)]
        node = helper.make_node(self.op, names, outs, **self.attrs)
        g = helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info(o) for o in outs])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)], ir_version=7)

    def feeds(self):
        return {f"i{k}": a for k, a in enumerate(self.arrays()) if a is not None}

    def expected(self):
        if not hasattr(self, "_expected"):
            self._expected = self._compute()
        return self._expected

    def _compute(self):
        if self.numpy_ref is not None:
            return self.numpy_ref(*self.arrays())
        results = {}
        try:
            sess = ort.InferenceSession(self.model().SerializeToString(), providers=["CPUExecutionProvider"])
            results["ort"] = sess.run(None, self.feeds())
        except Exception as e:  # noqa: BLE001 - any refusal means: use the reference evaluator
            print(f"{self.name}: onnxruntime: {str(e).splitlines()[0][:120]}", file=sys.stderr)
        try:
            results["ref"] = ReferenceEvaluator(self.model()).run(None, self.feeds())
        except Exception as e:  # noqa: BLE001
            print(f"{self.name}: reference: {str(e).splitlines()[0][:120]}", file=sys.stderr)
        if "ort" in results and "ref" in results:
            for a, b in zip(results["ort"], results["ref"]):
                if a.shape != b.shape or not np.allclose(a.astype(np.float64), b.astype(np.float64), atol=1e-5):
                    print(f"{self.name}: onnxruntime and the reference evaluator DISAGREE", file=sys.stderr)
        return results.get("ort", results.get("ref"))


# ---- numpy renderings of the spec for the forms no engine implements ----

def bn_spatial0(x, s, b, mean, var, eps=1e-3):
    """BatchNormalization-7, spatial=0: one statistic per (channel, position), params (C, D1..Dn)."""
    return [((x - mean[None]) / np.sqrt(var[None] + eps) * s[None] + b[None]).astype(x.dtype)]


def bn9_training(x, s, b, mean, var, eps=1e-5, momentum=0.75):
    """BatchNormalization-9 run for training: Y from the batch statistics; outputs running mean,
    running var, saved (batch) mean, saved (batch, population) var."""
    axes = (0,) + tuple(range(2, x.ndim))
    bm = x.astype(np.float64).mean(axis=axes)
    bv = x.astype(np.float64).var(axis=axes)
    sh = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - bm.reshape(sh)) / np.sqrt(bv.reshape(sh) + eps) * s.reshape(sh) + b.reshape(sh)
    return [y.astype(x.dtype), (mean * momentum + bm * (1 - momentum)).astype(x.dtype),
            (var * momentum + bv * (1 - momentum)).astype(x.dtype), bm.astype(x.dtype), bv.astype(x.dtype)]


F, D, I32, I64, U64 = np.float32, np.float64, np.int32, np.int64, np.uint64

CASES = [
    # ---- Gemm ----
    Case("gemm6_broadcast_transA", "Gemm", 6, dict(broadcast=1, transA=1, alpha=0.5, beta=2.0),
         [((3, 2), F), ((3, 4), F), ((4,), F)], 1),
    Case("gemm6_full_c_transB", "Gemm", 6, dict(transB=1), [((2, 3), F), ((4, 3), F), ((2, 4), F)], 1),
    Case("gemm9_col_c_both_trans", "Gemm", 9, dict(transA=1, transB=1, beta=-1.0),
         [((3, 2), F), ((4, 3), F), ((2, 1), F)], 1),
    Case("gemm11_no_c", "Gemm", 11, dict(alpha=2.0), [((2, 3), F), ((3, 4), F)], 1),
    Case("gemm11_int64", "Gemm", 11, {}, [((2, 3), I64), ((3, 4), I64), ((4,), I64)], 1),
    Case("gemm7_double_scalar_c", "Gemm", 7, dict(beta=0.5), [((3, 5), D), ((5, 2), D), ((), D)], 1),
    Case("gemm13_c_1x1", "Gemm", 13, {}, [((4, 3), F), ((3, 2), F), ((1, 1), F)], 1),
    # ---- MatMul ----
    Case("matmul9_bcast_batch", "MatMul", 9, {}, [((2, 1, 3, 4), F), ((5, 4, 2), F)], 1),
    Case("matmul13_2d_1d", "MatMul", 13, {}, [((4, 3), F), ((3,), F)], 1),
    Case("matmul9_int32", "MatMul", 9, {}, [((2, 3, 4), I32), ((4, 5), I32)], 1),
    Case("matmul9_int64_bcast_a", "MatMul", 9, {}, [((1, 2, 3), I64), ((3, 3, 2), I64)], 1),
    Case("matmul1_double", "MatMul", 1, {}, [((2, 2, 3), D), ((2, 3, 2), D)], 1),
    Case("matmul13_uint64", "MatMul", 13, {}, [((3, 4), U64), ((4, 2), U64)], 1),
    # ---- BatchNormalization ----
    Case("bn7_spatial0", "BatchNormalization", 7, dict(spatial=0, epsilon=1e-3),
         [((2, 3, 2, 2), F), ((3, 2, 2), F), ((3, 2, 2), F), ((3, 2, 2), F), ((3, 2, 2), F, 1)], 1,
         numpy_ref=bn_spatial0),
    Case("bn9_inference", "BatchNormalization", 9, dict(epsilon=1e-2),
         [((2, 3, 3), F), ((3,), F), ((3,), F), ((3,), F), ((3,), F, 1)], 1),
    Case("bn6_is_test", "BatchNormalization", 6, dict(is_test=1),
         [((1, 2, 2, 3), F), ((2,), F), ((2,), F), ((2,), F), ((2,), F, 1)], 1),
    Case("bn14_training", "BatchNormalization", 14, dict(training_mode=1, momentum=0.8),
         [((3, 2, 2, 2), F), ((2,), F), ((2,), F), ((2,), F), ((2,), F, 1)], 3),
    Case("bn15_mixed_dtypes", "BatchNormalization", 15, {},
         [((2, 2, 3), D), ((2,), F), ((2,), F), ((2,), D), ((2,), D, 1)], 1),
    Case("bn9_training_flag", "BatchNormalization", 9, dict(momentum=0.75),
         [((2, 3, 2, 2), F), ((3,), F), ((3,), F), ((3,), F), ((3,), F, 1)], 5, training=True,
         numpy_ref=bn9_training),
    # ---- InstanceNormalization ----
    Case("in6_double", "InstanceNormalization", 6, dict(epsilon=1e-2), [((2, 3, 5), D), ((3,), D), ((3,), D)], 1),
    Case("in1_3d", "InstanceNormalization", 1, {}, [((1, 2, 2, 2, 3), F), ((2,), F), ((2,), F)], 1),
    # ---- LayerNormalization ----
    Case("ln17_bcast_scale", "LayerNormalization", 17, dict(axis=1), [((2, 3, 4), F), ((1, 4), F), ((4,), F)], 3),
    Case("ln17_double_no_b", "LayerNormalization", 17, dict(epsilon=1e-3), [((2, 3, 4), D), ((4,), D)], 3),
    Case("ln17_axis0", "LayerNormalization", 17, dict(axis=0), [((3, 5), F), ((3, 5), F), ((1, 5), F)], 1),
    # ---- Conv / ConvTranspose: old opsets, auto_pad, output_shape (onnxruntime as an independent check) ----
    Case("conv1_same_lower", "Conv", 1, dict(auto_pad="SAME_LOWER", kernel_shape=[3, 2], strides=[2, 2]),
         [((1, 2, 5, 6), F), ((3, 2, 3, 2), F), ((3,), F)], 1),
    Case("conv11_same_upper_dil", "Conv", 11, dict(auto_pad="SAME_UPPER", dilations=[2, 1], strides=[1, 2]),
         [((1, 2, 6, 5), F), ((2, 2, 2, 2), F)], 1),
    Case("conv11_valid_group", "Conv", 11, dict(auto_pad="VALID", group=2, strides=[2, 1]),
         [((2, 4, 5, 4), F), ((2, 2, 3, 3), F)], 1),
    Case("convt1_output_shape", "ConvTranspose", 1, dict(output_shape=[7, 8], strides=[2, 3]),
         [((1, 2, 3, 3), F), ((2, 1, 3, 2), F)], 1),
    Case("convt11_group_outpad_dil", "ConvTranspose", 11,
         dict(group=2, strides=[2, 2], dilations=[2, 1], pads=[1, 0, 0, 1], output_padding=[1, 1]),
         [((1, 4, 3, 2), F), ((4, 2, 2, 3), F), ((4,), F)], 1),
    Case("convt11_same_lower", "ConvTranspose", 11, dict(auto_pad="SAME_LOWER", strides=[2]),
         [((1, 1, 4), F), ((1, 2, 3), F)], 1),
]


def c_num(v, dt):
    if dt == np.float32:
        return f"{float(v):.9g}"
    if dt == np.float64:
        return f"{float(v):.17g}"
    return str(int(v))


def main():
    out = []
    for ci, c in enumerate(CASES):
        exp = c.expected()
        if exp is None:
            sys.exit(f"{c.name}: no reference could run it")
        for k, e in enumerate(exp):
            vals = ", ".join(c_num(v, e.dtype.type) for v in e.flatten())
            out.append(f"static const double want_{ci}_{k}[] = {{{vals}}};")
    out.append("static const struct gen_case gen_cases[] = {")
    for ci, c in enumerate(CASES):
        exp = c.expected()
        attrs = []
        for k, v in c.attrs.items():
            if isinstance(v, str):
                attrs.append(f'{{"{k}", OD_ATTR_STRING, 0, 0, "{v}", 0, {{0}}}}')
            elif isinstance(v, float):
                attrs.append(f'{{"{k}", OD_ATTR_FLOAT, 0, {v!r}f, NULL, 0, {{0}}}}')
            elif isinstance(v, list):
                attrs.append(f'{{"{k}", OD_ATTR_INTS, 0, 0, NULL, {len(v)}, {{{", ".join(map(str, v))}}}}}')
            else:
                attrs.append(f'{{"{k}", OD_ATTR_INT, {v}, 0, NULL, 0, {{0}}}}')
        ins = []
        for t in c.inputs:
            if t is None:
                ins.append("{0}")
                continue
            shape = t[0]
            dims = ", ".join(map(str, shape)) if shape else "0"
            ins.append(f"{{{C_DTYPE[np.dtype(t[1]).name]}, {len(shape)}, {{{dims}}}, {t[2] if len(t) > 2 else 0}}}")
        outs = []
        for k, e in enumerate(exp):
            dims = ", ".join(map(str, e.shape)) if e.shape else "0"
            outs.append(f"{{{C_DTYPE[e.dtype.name]}, {e.ndim}, {{{dims}}}, want_{ci}_{k}}}")
        out.append(f'  {{"{c.name}", "{c.op}", {c.opset}, {str(c.training).lower()}, {len(attrs)}, {{{", ".join(attrs) or "{0}"}}},\n'
                   f'   {len(ins)}, {{{", ".join(ins)}}},\n   {len(outs)}, {{{", ".join(outs)}}}}},')
    out.append("};")
    print("\n".join(out))


if __name__ == "__main__":
    main()
