#!/usr/bin/env python3
"""Expected values for tests/test_ops_resize.c, computed by onnxruntime.

Builds one-node models (Resize at opsets 10/11/13, Upsample at 7/9, NonMaxSuppression at 10/11)
with onnx.helper, runs them with onnxruntime and prints the case table that the C test pastes
between its "BEGIN GENERATED" and "END GENERATED" markers:

    .venv/bin/python tests/gen_ops_resize.py > /tmp/cases.inc

Inputs are made by a formula that the C test repeats (so only the small inputs and the outputs are
printed): element i of X is ((i * 37) % 101) / 10 - 5 for float types and (i * 37) % 101 for
integer types.
"""
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

ort.set_default_logger_severity(3)  # no shape-inference warnings on stderr

NP2ONNX = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.int32: TensorProto.INT32,
           np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8, np.int64: TensorProto.INT64}
C_DTYPE = {np.float32: "OD_DTYPE_FLOAT", np.float64: "OD_DTYPE_DOUBLE", np.int32: "OD_DTYPE_INT32",
           np.uint8: "OD_DTYPE_UINT8", np.int8: "OD_DTYPE_INT8", np.int64: "OD_DTYPE_INT64"}


def make_x(shape, dtype):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    if dtype in (np.float32, np.float64):
        return ((((i * 37) % 101) / 10.0) - 5.0).astype(dtype).reshape(shape)
    return ((i * 37) % 101).astype(dtype).reshape(shape)


def run(op, opset, attrs, x, extra, reference=False):
    """extra: list of (name, array or None) for the inputs after X; None = omitted ("").
    reference: use onnx.reference.ReferenceEvaluator (for what onnxruntime refuses)."""
    names = ["X"]
    inits = []
    for k, (nm, arr) in enumerate(extra):
        if arr is None:
            names.append("")
        else:
            names.append(nm)
            inits.append(helper.make_tensor(nm, NP2ONNX[arr.dtype.type], arr.shape, arr.flatten().tolist()))
    node = helper.make_node(op, names, ["Y"], **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", NP2ONNX[x.dtype.type], x.shape)],
                          [helper.make_tensor_value_info("Y", NP2ONNX[x.dtype.type], None)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
    if reference:
        return ReferenceEvaluator(m).run(None, {"X": x})[0]
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": x})[0]


def c_num(v):
    """Shortest text that reads back to the same value (float32 values: 9 significant digits)."""
    if isinstance(v, (np.floating,)) and v.dtype == np.float32:
        return "%.9g" % float(v)
    return repr(float(v)) if np.isfinite(v) else "0"


def c_list(vals):
    out, line = [], ""
    for v in vals:
        s = c_num(v) + ", "
        if len(line) + len(s) > 96:
            out.append(line.rstrip())
            line = ""
        line += s
    if line:
        out.append(line.rstrip())
    return "\n    ".join(out)


def c_wrap(text, width=96):
    """Breaks a comma-separated list of {a, b, c} rows into lines."""
    out, line = [], ""
    for item in text.split("}, "):
        item = item if item.endswith("}") else item + "}"
        if len(line) + len(item) + 2 > width:
            out.append(line.rstrip())
            line = ""
        line += item + ", "
    out.append(line.rstrip().rstrip(","))
    return "\n    " + "\n    ".join(out)


def c_attr(name, v):
    if isinstance(v, str):
        return f'{{"{name}", OD_ATTR_STRING, 0, 0, "{v}", 0, NULL}}'
    if isinstance(v, float):
        return f'{{"{name}", OD_ATTR_FLOAT, 0, {v!r}f, NULL, 0, NULL}}'
    if isinstance(v, int):
        return f'{{"{name}", OD_ATTR_INT, {v}, 0, NULL, 0, NULL}}'
    # list of floats
    arr = "(const float[]){" + ", ".join(f"{float(f)!r}f" for f in v) + "}"
    return f'{{"{name}", OD_ATTR_FLOATS, 0, 0, NULL, {len(v)}, {arr}}}'


CASES = []


def case(name, op, opset, attrs, shape, dtype, extra, reference=False):
    x = make_x(shape, dtype)
    extra = [(nm, None if a is None else np.array(a[0], dtype=a[1])) for nm, a in extra]
    y = run(op, opset, attrs, x, extra, reference)
    CASES.append((name, op, opset, attrs, x, extra, y))


F32, I64 = np.float32, np.int64
# PyTorch-style nearest upsample (F.interpolate(scale_factor=2), YOLOv3 at opset 11): scales input
case("r11_nearest_asym_floor_x2", "Resize", 11,
     dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
     [1, 2, 3, 4], F32, [("roi", ([], F32)), ("scales", ([1, 1, 2, 2], F32))])
# ... with a non-integer scale and an omitted roi
case("r11_nearest_asym_floor_x1p5", "Resize", 11,
     dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
     [1, 1, 3, 5], F32, [("roi", ([], F32)), ("scales", ([1, 1, 1.5, 1.7], F32))])
# output length floor(2.3f * 10): 23 in float32 (onnxruntime), 22 in double
case("r13_linear_scale_2p3", "Resize", 13, dict(mode="linear"),
     [1, 1, 2, 10], F32, [("roi", None), ("scales", ([1, 1, 1, 2.3], F32))])
# sizes input (scales given as an empty tensor)
case("r11_sizes_linear_pytorch", "Resize", 11,
     dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
     [1, 2, 3, 5], F32, [("roi", ([], F32)), ("scales", ([], F32)), ("sizes", ([1, 2, 5, 8], I64))])
case("r11_sizes_nearest_half_pixel", "Resize", 11,
     dict(mode="nearest"),
     [1, 1, 4, 6], F32, [("roi", ([], F32)), ("scales", ([], F32)), ("sizes", ([1, 1, 7, 3], I64))])
case("r11_sizes_cubic_align_corners", "Resize", 11,
     dict(mode="cubic", coordinate_transformation_mode="align_corners"),
     [1, 1, 4, 5], F32, [("roi", ([], F32)), ("scales", ([], F32)), ("sizes", ([1, 1, 6, 3], I64))])
case("r11_tf_half_pixel_for_nn", "Resize", 11,
     dict(mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn"),
     [1, 1, 3, 4], F32, [("roi", ([], F32)), ("scales", ([1, 1, 1.7, 0.75], F32))])
case("r11_linear_half_pixel_big", "Resize", 11,
     dict(mode="linear"),
     [2, 3, 9, 13], F32, [("roi", ([], F32)), ("scales", ([1, 1, 2.3, 0.6], F32))])
case("r13_linear_3d_separable", "Resize", 13,
     dict(mode="linear", coordinate_transformation_mode="align_corners"),
     [1, 2, 3, 4, 5], F32, [("roi", ([], F32)), ("scales", ([1, 1, 2, 1.5, 0.6], F32))])
# onnxruntime refuses linear over a channel axis: the ONNX reference implementation gives these
case("r13_cubic_channel_axis_reference", "Resize", 13,
     dict(mode="cubic", exclude_outside=1, cubic_coeff_a=-0.5),
     [2, 3, 4, 2], F32, [("roi", ([], F32)), ("scales", ([1, 2, 1.5, 1], F32))], reference=True)
case("r13_nearest_int32", "Resize", 13,
     dict(mode="nearest", nearest_mode="round_prefer_ceil"),
     [1, 2, 3, 3], np.int32, [("roi", None), ("scales", ([1, 1, 1.5, 2.5], F32))])
case("r13_nearest_uint8_x2", "Resize", 13,
     dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
     [1, 3, 2, 5], np.uint8, [("roi", None), ("scales", ([1, 1, 2, 2], F32))])
# onnxruntime has no double Resize: reference implementation
case("r13_linear_double_reference", "Resize", 13,
     dict(mode="linear", coordinate_transformation_mode="half_pixel"),
     [1, 1, 3, 4], np.float64, [("roi", None), ("scales", ([1, 1, 2, 0.5], F32))], reference=True)
# pytorch_half_pixel onto a length-1 axis: x_original = 0 (the spec and onnxruntime; the ONNX
# reference implementation takes -0.5, which changes cubic results)
case("r13_cubic_pytorch_half_pixel_len1", "Resize", 13,
     dict(mode="cubic", coordinate_transformation_mode="pytorch_half_pixel"),
     [1, 1, 4, 5], F32, [("roi", ([], F32)), ("scales", ([], F32)), ("sizes", ([1, 1, 1, 3], I64))])
# tf_crop_and_resize with roi and extrapolation on an upsampled and a downsampled axis
case("r11_tf_crop_and_resize_linear", "Resize", 11,
     dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-7.0),
     [1, 1, 4, 5], F32, [("roi", ([0, 0, -0.2, 0.3, 1, 1, 0.9, 1.4], F32)), ("scales", ([], F32)),
                         ("sizes", ([1, 1, 6, 3], I64))])
case("r11_tf_crop_and_resize_nearest", "Resize", 11,
     dict(mode="nearest", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=9.0),
     [1, 2, 4, 5], F32, [("roi", ([0, 0, -0.3, 0.5, 1, 1, 1.2, 0.9], F32)), ("scales", ([], F32)),
                         ("sizes", ([1, 2, 5, 4], I64))])
# several planes through the 2-D path (row cache across plane boundaries), cubic and antialias
case("r13_cubic_planes", "Resize", 13, dict(mode="cubic"),
     [2, 2, 7, 6], F32, [("roi", ([], F32)), ("scales", ([1, 1, 0.6, 1.8], F32))])
case("r18_linear_antialias_planes", "Resize", 18, dict(mode="linear", antialias=1),
     [1, 3, 8, 9], F32, [("roi", ([], F32)), ("scales", ([1, 1, 0.4, 0.7], F32))])
# opsets before 11: Resize-10 and Upsample (asymmetric coordinates, legacy nearest rounding)
case("r10_nearest_up", "Resize", 10, dict(mode="nearest"),
     [1, 1, 3, 4], F32, [("scales", ([1, 1, 2.5, 1.5], F32))])
case("r10_nearest_down", "Resize", 10, dict(mode="nearest"),
     [1, 1, 5, 7], F32, [("scales", ([1, 1, 0.6, 0.45], F32))])
case("r10_linear", "Resize", 10, dict(mode="linear"),
     [1, 1, 3, 4], F32, [("scales", ([1, 1, 2, 0.75], F32))])
case("u7_nearest_attr", "Upsample", 7, dict(mode="nearest", scales=[1.0, 1.0, 2.0, 3.0]),
     [1, 2, 2, 3], F32, [])
case("u7_linear_attr", "Upsample", 7, dict(mode="linear", scales=[1.0, 1.0, 2.0, 2.0]),
     [1, 1, 3, 3], F32, [])
case("u9_nearest_input", "Upsample", 9, dict(mode="nearest"),
     [1, 2, 2, 3], F32, [("scales", ([1, 1, 2, 2], F32))])
case("u9_linear_input", "Upsample", 9, dict(mode="linear"),
     [1, 1, 2, 4], F32, [("scales", ([1, 1, 2.5, 1.5], F32))])


def emit_resize():
    print("/* BEGIN GENERATED by tests/gen_ops_resize.py (onnxruntime %s, onnx %s) */" % (ort.__version__, onnx.__version__))
    print("static const struct resize_case resize_cases[] = {")
    for name, op, opset, attrs, x, extra, y in CASES:
        print(f'  {{"{name}", "{op}", {opset}, {len(attrs)},')
        print("   {" + ",\n    ".join(c_attr(k, v) for k, v in attrs.items()) + "},")
        print(f"   {C_DTYPE[x.dtype.type]}, {x.ndim}, {{{', '.join(str(d) for d in x.shape)}}}, {len(extra)},")
        ins = []
        for nm, a in extra:
            if a is None:
                ins.append("{0, 0, 0, NULL}")
            else:
                vals = "(const double[]){" + ", ".join(c_num(v) for v in a.flatten()) + "}" if a.size else "NULL"
                ins.append(f"{{1, {C_DTYPE[a.dtype.type]}, {a.size}, {vals}}}")
        print("   {" + ",\n    ".join(ins) + "},")
        print(f"   {y.ndim}, {{{', '.join(str(d) for d in y.shape)}}},")
        print("   (const double[]){\n    " + c_list(y.flatten()) + "}},")
    print("};")


# ---- NonMaxSuppression --------------------------------------------------------------------------
def nms_case(name, opset, cpb, boxes, scores, max_out, iou, score_th):
    names = ["boxes", "scores", "max_output_boxes_per_class", "iou_threshold", "score_threshold"]
    vals = [boxes, scores, max_out, iou, score_th]
    inputs, feeds = [], {}
    used = []
    for nm, v in zip(names, vals):
        if v is None:
            used.append("")
            continue
        used.append(nm)
        inputs.append(helper.make_tensor_value_info(nm, NP2ONNX[v.dtype.type], v.shape))
        feeds[nm] = v
    while used and used[-1] == "":
        used.pop()
    node = helper.make_node("NonMaxSuppression", used, ["Y"], center_point_box=cpb)
    g = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("Y", TensorProto.INT64, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
    y = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    return name, opset, cpb, vals, y


def emit_nms():
    rng = np.random.default_rng(7)
    b, n, c = 2, 40, 3
    # corners in random order ([y1, x1, y2, x2] with y1 > y2 sometimes), distinct scores
    centers = rng.uniform(0, 10, size=(b, n, 2))
    sizes = rng.uniform(0.5, 4, size=(b, n, 2))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=2).astype(np.float32)
    flip = rng.random((b, n)) < 0.3
    boxes[flip] = boxes[flip][:, [2, 3, 0, 1]]
    scores = rng.permutation(b * c * n).reshape(b, c, n).astype(np.float32) / (b * c * n)
    cxcy = np.concatenate([centers, sizes], axis=2).astype(np.float32)
    # ties: equal scores, and identical boxes
    tb = boxes[:1, :12].copy()
    tb[0, 5] = tb[0, 2]
    ts = np.round(scores[:1, :2, :12] * 4).astype(np.float32) / 4
    cases = [
        nms_case("nms11_ties", 11, 0, tb, ts, np.array([6], np.int64), np.array([0.1], np.float32), None),
        nms_case("nms10_corners", 10, 0, boxes, scores, np.array([5], np.int64), np.array([0.3], np.float32),
                 np.array([0.2], np.float32)),
        nms_case("nms11_center_no_score_th", 11, 1, cxcy, scores, np.array([4], np.int64),
                 np.array([0.5], np.float32), None),
        nms_case("nms11_no_max", 11, 0, boxes, scores, None, None, None),
    ]
    print("/* NonMaxSuppression: boxes and scores in full (seeded numpy random). */")
    arrays = {"nms_boxes_corners": boxes, "nms_boxes_center": cxcy, "nms_scores": scores, "nms_ties_boxes": tb,
              "nms_ties_scores": ts}
    for nm, a in arrays.items():
        print(f"static const float {nm}[] = {{\n    " + c_list(a.flatten()) + "};")
    for name, opset, cpb, vals, y in cases:
        if y.size:
            rows = ", ".join(f"{{{r[0]}, {r[1]}, {r[2]}}}" for r in y.tolist())
            print(f"static const int64_t {name}_expected[][3] = {{" + c_wrap(rows) + "};")
    print("static const struct nms_case nms_cases[] = {")
    for name, opset, cpb, vals, y in cases:
        bx, sc, mo, iou, st = vals
        bname = "nms_boxes_center" if cpb else "nms_boxes_corners"
        sname = "nms_scores"
        if "ties" in name:
            bname, sname = "nms_ties_boxes", "nms_ties_scores"

        def opt(v, fmt):
            return "{0, 0}" if v is None else "{1, " + fmt(v.flatten()[0]) + "}"
        exp = f"{name}_expected[0]" if y.size else "NULL"
        print(f'  {{"{name}", {opset}, {cpb}, {{{", ".join(str(d) for d in bx.shape)}}}, {sc.shape[1]}, '
              f"{bname}, {sname}, {opt(mo, str)}, {opt(iou, c_num)}, {opt(st, c_num)}, {y.shape[0]}, {exp}}},")
    print("};")
    print("/* END GENERATED */")


if __name__ == "__main__":
    emit_resize()
    emit_nms()
