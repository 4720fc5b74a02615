#!/usr/bin/env python3
"""Export round-trip cases the ONNX node tests lack, generated here with the onnx package.

usage: roundtrip_cases.py ONNX_DISTILL [-k SUBSTRING]

Cases: initializers in every encoding (float_data, raw_data, int64_data, int32_data for the narrow
types and float16/bfloat16 bit patterns, double_data, uint64_data), non-canonical int32_data
encodings, Constant-node weights (paddle2onnx style, including value_float/value_floats/
value_int/value_ints), an IR 3 model whose initializers are also graph inputs, symbolic dims,
metadata and doc strings (including fields newer than the ONNX 1.12 schema the tool is built
with, which must survive as unknown fields), external data (kept, written in place, moved out with
--external-data always, brought in with never), refused external locations ('..', absolute) and
a failed export leaving no temporary file. The references are onnx (equality of ModelProtos,
checker) and onnxruntime (identical outputs).

The last line is "N passed, N failed"; the exit status is 1 on any failure, 77 (skipped) when
onnx, onnxruntime or numpy is missing.
"""
import argparse
import copy
import os
import subprocess
import sys
import tempfile
import traceback

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import uses_external_data
except ImportError as e:  # pragma: no cover - depends on the environment
    print(f"skipped: a reference package is missing ({e})")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roundtrip import first_diff  # noqa: E402

TOOL = None
IR = 10       # what onnxruntime accepts for sure
OPSET = 17

# ---- helpers -----------------------------------------------------------------------------------


class CaseError(Exception):
    pass


def run_tool(*args, expect=0):
    proc = subprocess.run([TOOL, *args], capture_output=True, text=True)
    if expect is not None and proc.returncode != expect:
        raise CaseError(f"`onnx-distill {' '.join(args)}` exited {proc.returncode}, expected {expect}: "
                        f"{proc.stderr.strip()}")
    return proc


def export(src, dst, *extra, expect=0):
    return run_tool("export", src, "-o", dst, *extra, expect=expect)


def save(model, path, **kw):
    """onnx.save on a copy (saving with external data changes the proto in place)."""
    onnx.save(copy.deepcopy(model), path, **kw)


def assert_same_proto(a, b, what):
    if not (a == b and a.SerializeToString() == b.SerializeToString()):
        raise CaseError(f"{what}: {first_diff(a, b) or '== is False but no field differs'}")


def assert_roundtrip_equal(src, dst, what="export"):
    """The files parse to equal ModelProtos (external data not loaded: entries compared as is)."""
    assert_same_proto(onnx.load(src, load_external_data=False), onnx.load(dst, load_external_data=False), what)


def check(path):
    onnx.checker.check_model(path, full_check=True)


def check_like(src, dst):
    """The checker passes on dst whenever it passes on src."""
    try:
        check(src)
    except Exception:  # noqa: BLE001 - the source itself fails: nothing to require of the export
        return
    check(dst)


def tensor_values(model_path):
    """name -> bytes of every initializer and Constant 'value' tensor, external data loaded."""
    m = onnx.load(model_path)
    out = {}
    for t in m.graph.initializer:
        out[t.name] = (t.data_type, tuple(t.dims), numpy_helper.to_array(t).tobytes())
    for n in m.graph.node:
        for a in n.attribute:
            if n.op_type == "Constant" and a.name == "value":
                out[n.output[0]] = (a.t.data_type, tuple(a.t.dims), numpy_helper.to_array(a.t).tobytes())
    return out


def assert_same_values(a_path, b_path):
    va, vb = tensor_values(a_path), tensor_values(b_path)
    if va.keys() != vb.keys():
        raise CaseError(f"tensor names differ: {sorted(va.keys() ^ vb.keys())}")
    for k in va:
        if va[k] != vb[k]:
            raise CaseError(f"tensor '{k}' differs after export")


def ort_outputs(path):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else 2 for d in i.shape]
        dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64}[i.type]
        feeds[i.name] = rng.standard_normal(shape).astype(dtype)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def assert_same_outputs(a_path, b_path):
    oa, ob = ort_outputs(a_path), ort_outputs(b_path)
    if oa.keys() != ob.keys():
        raise CaseError(f"onnxruntime outputs differ in names: {sorted(oa)} vs {sorted(ob)}")
    for k in oa:
        x, y = oa[k], ob[k]
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            raise CaseError(f"onnxruntime output '{k}' differs between original and export")


def external_tensors(path):
    m = onnx.load(path, load_external_data=False)
    ext = [t for t in m.graph.initializer if uses_external_data(t)]
    ext += [a.t for n in m.graph.node for a in n.attribute if a.HasField("t") and uses_external_data(a.t)]
    return m, ext


def make(nodes, inputs, outputs, inits=(), ir=IR, opset=OPSET, **model_kw):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, ir_version=ir, opset_imports=[helper.make_opsetid("", opset)], **model_kw)


def identity_model(tensors):
    """Each tensor is an initializer read by an Identity node, so onnxruntime returns it."""
    nodes = [helper.make_node("Identity", ["x"], ["x_out"], name="id_x")]
    outputs = [helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [2])]
    for t in tensors:
        if t.data_type == TensorProto.BFLOAT16:  # onnxruntime's Python API returns no bfloat16 arrays
            nodes.append(helper.make_node("Cast", [t.name], [t.name + "_out"], name="cast_" + t.name,
                                          to=TensorProto.FLOAT))
            outputs.append(helper.make_tensor_value_info(t.name + "_out", TensorProto.FLOAT, list(t.dims)))
            continue
        nodes.append(helper.make_node("Identity", [t.name], [t.name + "_out"], name="id_" + t.name))
        outputs.append(helper.make_tensor_value_info(t.name + "_out", t.data_type, list(t.dims)))
    return make(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], outputs, tensors)


def tensor(name, dtype, dims, field=None, values=(), raw=None):
    t = TensorProto(name=name, data_type=dtype, dims=dims)
    if raw is not None:
        t.raw_data = raw
    elif field:
        getattr(t, field).extend(values)
    return t


def f16_bits(vals):
    return np.array(vals, dtype=np.float16).view(np.uint16).astype(np.int32).tolist()


def bf16_bits(vals):
    return (np.array(vals, dtype=np.float32).view(np.uint32) >> 16).astype(np.int32).tolist()


# ---- models ------------------------------------------------------------------------------------


def encodings_model():
    specials = [1.5, -0.0, float("inf"), float("nan"), 1e-45, -3.25]
    return identity_model([
        tensor("f_float_data", TensorProto.FLOAT, [2, 3], "float_data", specials),
        tensor("f_raw", TensorProto.FLOAT, [3], raw=np.array([1, -2, 3.5], np.float32).tobytes()),
        tensor("f_scalar", TensorProto.FLOAT, [], "float_data", [3.5]),
        tensor("f_empty", TensorProto.FLOAT, [0, 3]),
        tensor("i64", TensorProto.INT64, [4], "int64_data", [0, -1, 2**63 - 1, -2**63]),
        tensor("i64_raw", TensorProto.INT64, [2], raw=np.array([7, -7], np.int64).tobytes()),
        tensor("i32", TensorProto.INT32, [3], "int32_data", [2**31 - 1, -2**31, 5]),
        tensor("i16", TensorProto.INT16, [3], "int32_data", [-32768, 32767, -1]),
        tensor("u16", TensorProto.UINT16, [2], "int32_data", [65535, 1]),
        tensor("i8", TensorProto.INT8, [4], "int32_data", [-128, 127, -1, 0]),
        tensor("i8_raw", TensorProto.INT8, [3], raw=np.array([-5, 6, -128], np.int8).tobytes()),
        tensor("u8", TensorProto.UINT8, [3], "int32_data", [0, 255, 17]),
        tensor("b", TensorProto.BOOL, [3], "int32_data", [1, 0, 1]),
        tensor("b_raw", TensorProto.BOOL, [2], raw=bytes([0, 1])),
        tensor("f16", TensorProto.FLOAT16, [5], "int32_data", f16_bits([1.0, -0.0, 65504, float("nan"), 6e-8])),
        tensor("f16_raw", TensorProto.FLOAT16, [2], raw=np.array([0.5, -2], np.float16).tobytes()),
        tensor("bf16", TensorProto.BFLOAT16, [3], "int32_data", bf16_bits([1.0, -3.0, 1e30])),
        tensor("d", TensorProto.DOUBLE, [3], "double_data", [1e300, -0.0, float("nan")]),
        tensor("d_raw", TensorProto.DOUBLE, [1], raw=np.array([2.5], np.float64).tobytes()),
        tensor("u64", TensorProto.UINT64, [2], "uint64_data", [2**64 - 1, 3]),
        tensor("u32", TensorProto.UINT32, [2], "uint64_data", [2**32 - 1, 9]),
        tensor("f_big", TensorProto.FLOAT, [64, 33], raw=np.arange(64 * 33, dtype=np.float32).tobytes()),
    ])


def constants_model():
    """paddle2onnx keeps weights in Constant nodes; here in every form Constant allows."""
    rng = np.random.default_rng(1)
    W = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    B = rng.standard_normal(2).astype(np.float32)
    w_t = numpy_helper.from_array(W, "conv_w")  # raw_data
    b_t = helper.make_tensor("conv_b", TensorProto.FLOAT, [2], B.tolist())  # float_data
    nodes = [
        helper.make_node("Constant", [], ["W"], name="const_w", value=w_t),
        helper.make_node("Constant", [], ["B"], name="const_b", value=b_t),
        helper.make_node("Constant", [], ["scale"], name="const_scale", value_float=0.75),
        helper.make_node("Constant", [], ["bias"], name="const_bias", value_floats=[0.25, -1.5]),
        helper.make_node("Constant", [], ["shape"], name="const_shape", value_ints=[1, 2, 1, 1]),
        helper.make_node("Constant", [], ["index"], name="const_index", value_int=1),
        helper.make_node("Conv", ["x", "W", "B"], ["y"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["y", "scale"], ["y2"], name="mul"),
        helper.make_node("Reshape", ["bias", "shape"], ["bias4"], name="reshape"),
        helper.make_node("Add", ["y2", "bias4"], ["y3"], name="add"),
        helper.make_node("Gather", ["y3", "index"], ["out"], name="gather", axis=1),
    ]
    return make(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5])],
                [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5, 5])])


def old_ir_model():
    """IR 3 (opset 8): initializers are listed as graph inputs too."""
    W = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "W")
    C = helper.make_tensor("C", TensorProto.FLOAT, [4], [0.5, -0.5, 1, 2])
    nodes = [helper.make_node("Gemm", ["x", "W", "C"], ["y"], name="gemm"),
             helper.make_node("Relu", ["y"], ["out"], name="relu")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
              helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 4]),
              helper.make_tensor_value_info("C", TensorProto.FLOAT, [4])]
    return make(nodes, inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 4])], [W, C],
                ir=3, opset=8)


def symbolic_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    x.type.tensor_type.shape.dim.add()  # a fifth dim with neither value nor name
    s = numpy_helper.from_array(np.array([2.0], np.float32), "s")
    nodes = [helper.make_node("Mul", ["x", "s"], ["y"], name="mul"),
             helper.make_node("Relu", ["y"], ["out"], name="relu")]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, "height", "width", None])
    m = make(nodes, [x], [out], [s])
    m.graph.value_info.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, None, "width", "depth"]))
    return m


def metadata_model():
    """Doc strings and metadata everywhere, a local function, and fields newer than the ONNX 1.12
    schema (NodeProto/TensorProto/GraphProto metadata_props): unknown fields for protobuf-c."""
    w = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "w")
    w.doc_string = "a weight"
    w.metadata_props.add(key="origin", value="test")
    fn = helper.make_function("local.fns", "Double", ["a"], ["b"],
                              [helper.make_node("Add", ["a", "a"], ["b"])],
                              [helper.make_opsetid("", OPSET)])
    n1 = helper.make_node("Mul", ["x", "w"], ["y"], name="mul", doc_string="scales x")
    n1.metadata_props.add(key="source_line", value="42")
    n2 = helper.make_node("Double", ["y"], ["out"], name="double", domain="local.fns")
    g = helper.make_graph([n1, n2], "meta_graph", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2])], initializer=[w],
                          doc_string="graph documentation \u00e9\u4e2d")
    g.metadata_props.add(key="graph_key", value="graph_value")
    m = helper.make_model(g, ir_version=IR, producer_name="roundtrip_cases", producer_version="1.0",
                          domain="ai.onnx-distill.test", model_version=7, doc_string="model doc",
                          opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("local.fns", 1)],
                          functions=[fn])
    helper.set_model_props(m, {"author": "test", "license": "MIT", "empty": ""})
    return m


def noncanonical_model():
    """int32_data values a writer may legally spell differently (int8 -1 as 255, bool true as 7)."""
    return identity_model([
        tensor("i8_as_u", TensorProto.INT8, [2], "int32_data", [255, 128]),
        tensor("b_as_7", TensorProto.BOOL, [2], "int32_data", [7, 0]),
        tensor("u16_neg", TensorProto.UINT16, [1], "int32_data", [-1]),
        tensor("u32_wide", TensorProto.UINT32, [1], "uint64_data", [2**32 + 5]),
    ])


# ---- cases -------------------------------------------------------------------------------------


def plain_roundtrip(tmp, model, name, run_ort=True):
    src, dst = os.path.join(tmp, name + ".onnx"), os.path.join(tmp, name + "_out.onnx")
    save(model, src)
    check(src)
    export(src, dst)
    assert_roundtrip_equal(src, dst)
    check(dst)
    if run_ort:
        assert_same_outputs(src, dst)


def case_encodings(tmp):
    plain_roundtrip(tmp, encodings_model(), "encodings")


def case_noncanonical_encodings(tmp):
    src, dst = os.path.join(tmp, "noncanon.onnx"), os.path.join(tmp, "noncanon_out.onnx")
    save(noncanonical_model(), src)
    export(src, dst)
    assert_roundtrip_equal(src, dst)


def case_constant_weights(tmp):
    plain_roundtrip(tmp, constants_model(), "constants")


def case_old_ir_initializer_inputs(tmp):
    plain_roundtrip(tmp, old_ir_model(), "old_ir")


def case_symbolic_dims(tmp):
    plain_roundtrip(tmp, symbolic_model(), "symbolic")


def case_metadata_and_newer_fields(tmp):
    plain_roundtrip(tmp, metadata_model(), "metadata")


def _external_source(tmp, model, name, **kw):
    d = os.path.join(tmp, name + "_src")
    os.makedirs(d)
    src = os.path.join(d, "model.onnx")
    save(model, src, save_as_external_data=True, all_tensors_to_one_file=True, size_threshold=0,
         location="weights.bin", **kw)
    _, ext = external_tensors(src)
    if not ext:
        raise CaseError("test setup: onnx.save wrote no external tensor")
    return src


def case_external_kept(tmp):
    for name, model, kw in [("enc", encodings_model(), {}), ("const", constants_model(), {"convert_attribute": True})]:
        src = _external_source(tmp, model, name, **kw)
        out_dir = os.path.join(tmp, name + "_out")
        os.makedirs(out_dir)
        dst = os.path.join(out_dir, "exported.onnx")
        export(src, dst)
        assert_roundtrip_equal(src, dst, f"{name}: proto with external entries")
        if not os.path.exists(os.path.join(out_dir, "weights.bin")):
            raise CaseError(f"{name}: weights.bin was not written beside the export")
        assert_same_proto(onnx.load(src), onnx.load(dst), f"{name}: with external data loaded")
        check(dst)
        assert_same_outputs(src, dst)
        if sorted(os.listdir(out_dir)) != ["exported.onnx", "weights.bin"]:
            raise CaseError(f"{name}: unexpected files in the output folder: {sorted(os.listdir(out_dir))}")


def case_external_same_folder(tmp):
    """Export beside the source: the data file is rewritten while it is the source's too."""
    src = _external_source(tmp, encodings_model(), "same")
    reference = onnx.load(src)
    dst = os.path.join(os.path.dirname(src), "model2.onnx")
    export(src, dst)
    assert_same_proto(reference, onnx.load(dst), "export beside the source")
    assert_same_proto(reference, onnx.load(src), "source after an export beside it")
    export(src, src)  # over itself
    assert_same_proto(reference, onnx.load(src), "source exported over itself")
    leftovers = [f for f in os.listdir(os.path.dirname(src)) if f.endswith(".tmp")]
    if leftovers:
        raise CaseError(f"temporary files left: {leftovers}")


def case_external_always(tmp):
    for name, model in [("enc", encodings_model()), ("const", constants_model())]:
        src = os.path.join(tmp, name + "_inline.onnx")
        save(model, src)
        out_dir = os.path.join(tmp, name + "_always")
        os.makedirs(out_dir)
        dst = os.path.join(out_dir, "m.onnx")
        export(src, dst, "--external-data", "always", "--threshold", "0")
        m, ext = external_tensors(dst)
        want = [t.name for t in m.graph.initializer if np.prod(t.dims) > 0]
        want += [a.t.name for n in m.graph.node for a in n.attribute if a.name == "value" and np.prod(a.t.dims) > 0]
        got = sorted(t.name for t in ext)
        if got != sorted(want):
            raise CaseError(f"{name}: external tensors {got}, expected every non-empty one {sorted(want)}")
        for t in ext:
            keys = [e.key for e in t.external_data]
            if keys != ["location", "offset", "length"] or t.external_data[0].value != "m.onnx.data":
                raise CaseError(f"{name}: tensor '{t.name}' external_data entries {keys}")
            if t.HasField("raw_data") or len(t.float_data) or len(t.int32_data):
                raise CaseError(f"{name}: tensor '{t.name}' is external but keeps inline data")
        check(dst)
        assert_same_values(src, dst)
        assert_same_outputs(src, dst)
        # our own external output exported again (default auto) keeps its layout
        dst2 = os.path.join(out_dir, "again.onnx")
        export(dst, dst2)
        assert_roundtrip_equal(dst, dst2, f"{name}: re-export of the always output")
        assert_same_values(src, dst2)
        # and with a larger threshold only the big tensor of the encodings model moves
        if name == "enc":
            dst3 = os.path.join(out_dir, "big_only.onnx")
            export(src, dst3, "--external-data", "always", "--threshold", "4096")
            _, ext3 = external_tensors(dst3)
            if [t.name for t in ext3] != ["f_big"]:
                raise CaseError(f"threshold 4096 moved {[t.name for t in ext3]}, expected ['f_big']")
            assert_same_outputs(src, dst3)


def case_external_never(tmp):
    src = _external_source(tmp, constants_model(), "never", convert_attribute=True)
    dst = os.path.join(tmp, "never_out.onnx")
    export(src, dst, "--external-data", "never")
    _, ext = external_tensors(dst)
    if ext:
        raise CaseError(f"--external-data never left external tensors: {[t.name for t in ext]}")
    assert_same_values(src, dst)
    assert_same_outputs(src, dst)
    check(dst)


def subgraph_model():
    """Tensors that are not parameters of the main graph: If branches' initializers and a
    ConstantOfShape value attribute. Export copies their external bytes from the source."""
    def branch(name, values):
        w = numpy_helper.from_array(np.array(values, np.float32), name + "_w")
        return helper.make_graph([helper.make_node("Identity", [w.name], [name + "_y"])], name, [],
                                 [helper.make_tensor_value_info(name + "_y", TensorProto.FLOAT, [4])], [w])
    fill = numpy_helper.from_array(np.array([2.5], np.float32), "fill")
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
             helper.make_node("Constant", [], ["zero"], name="zero", value_float=0.0),
             helper.make_node("Greater", ["s", "zero"], ["cond"], name="gt"),
             helper.make_node("If", ["cond"], ["picked"], name="if", then_branch=branch("then", [1, 2, 3, 4]),
                              else_branch=branch("else", [5, 6, 7, 8])),
             helper.make_node("Constant", [], ["shape"], name="shape", value_ints=[4]),
             helper.make_node("ConstantOfShape", ["shape"], ["filled"], name="cos", value=fill),
             helper.make_node("Add", ["picked", "filled"], ["out"], name="add")]
    return make(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                [helper.make_tensor_value_info("out", TensorProto.FLOAT, [4])])


def all_external(path):
    from onnx.external_data_helper import _get_all_tensors
    return [t.name for t in _get_all_tensors(onnx.load(path, load_external_data=False)) if uses_external_data(t)]


def case_external_non_parameters(tmp):
    src = _external_source(tmp, subgraph_model(), "subgraph", convert_attribute=True)
    if sorted(all_external(src)) != ["else_w", "fill", "then_w"]:
        raise CaseError(f"test setup: external tensors {sorted(all_external(src))}")
    out_dir = os.path.join(tmp, "subgraph_out")
    os.makedirs(out_dir)
    dst = os.path.join(out_dir, "m.onnx")
    export(src, dst)
    assert_roundtrip_equal(src, dst)
    assert_same_proto(onnx.load(src), onnx.load(dst), "with external data loaded")
    check_like(src, dst)
    assert_same_outputs(src, dst)
    never = os.path.join(out_dir, "never.onnx")
    export(src, never, "--external-data", "never")
    if all_external(never):
        raise CaseError(f"--external-data never left {all_external(never)} external")
    reference = onnx.load(src)
    from onnx.external_data_helper import convert_model_from_external_data
    convert_model_from_external_data(reference)  # data_location DEFAULT, as our never output
    assert_same_proto(reference, onnx.load(never), "never output vs the source brought inline by onnx")
    assert_same_outputs(src, never)


def case_external_location_refused(tmp):
    base = _external_source(tmp, encodings_model(), "bad")
    d = os.path.dirname(base)
    abs_data = os.path.join(d, "weights.bin")
    with open(os.path.join(tmp, "evil.bin"), "wb") as f:  # exists, so only the path can be refused
        f.write(open(abs_data, "rb").read())
    for label, location in [("dotdot", "../evil.bin"), ("nested_dotdot", "sub/../../evil.bin"),
                            ("absolute", abs_data)]:
        m = onnx.load(base, load_external_data=False)
        victim = next(t for t in m.graph.initializer if uses_external_data(t))
        for e in victim.external_data:
            if e.key == "location":
                e.value = location
        path = os.path.join(d, f"{label}.onnx")
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        out = os.path.join(tmp, f"{label}_out.onnx")
        for cmd in (["inspect", path], ["export", path, "-o", out]):
            proc = run_tool(*cmd, expect=2)
            if f"'{victim.name}'" not in proc.stderr or location not in proc.stderr:
                raise CaseError(f"{label}: `{cmd[0]}` message does not name tensor '{victim.name}' and "
                                f"location '{location}': {proc.stderr.strip()}")
        if os.path.exists(out):
            raise CaseError(f"{label}: an output was written for a refused model")


def case_failed_export_leaves_nothing(tmp):
    src = _external_source(tmp, encodings_model(), "fail")
    out_dir = os.path.join(tmp, "fail_out")
    os.makedirs(os.path.join(out_dir, "weights.bin"))  # a folder where the data file must go
    proc = export(src, os.path.join(out_dir, "m.onnx"), expect=None)
    if proc.returncode == 0:
        raise CaseError("export over a folder named like the data file succeeded")
    if "weights.bin" not in proc.stderr:
        raise CaseError(f"message does not name the data file: {proc.stderr.strip()}")
    if sorted(os.listdir(out_dir)) != ["weights.bin"] or os.listdir(os.path.join(out_dir, "weights.bin")):
        raise CaseError(f"files left after a failed export: {sorted(os.listdir(out_dir))}")


def case_usage_errors(tmp):
    src = os.path.join(tmp, "usage.onnx")
    save(symbolic_model(), src)
    for args in (["export"], ["export", src], ["export", src, "-o"], ["export", src, "-o", "x.onnx", "--bogus"],
                 ["export", src, "-o", "x.onnx", "--external-data", "sometimes"],
                 ["export", src, "-o", "x.onnx", "--threshold", "-5"],
                 ["export", src, "-o", "x.onnx", "--threshold", "12kb"]):
        run_tool(*args, expect=2)
    run_tool("export", os.path.join(tmp, "missing.onnx"), "-o", os.path.join(tmp, "x.onnx"), expect=2)
    if os.path.exists("x.onnx") or os.path.exists(os.path.join(tmp, "x.onnx")):
        raise CaseError("a usage error wrote an output")


CASES = [(name[5:], fn) for name, fn in sorted(globals().items()) if name.startswith("case_")]


def main():
    global TOOL
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tool", help="path of the onnx-distill binary")
    ap.add_argument("-k", default="", help="run only the cases whose name contains this")
    a = ap.parse_args()
    TOOL = os.path.abspath(a.tool)
    passed = failed = 0
    for name, fn in CASES:
        if a.k not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="od_cases_") as tmp:
            try:
                fn(tmp)
                passed += 1
                print(f"ok   {name}")
            except CaseError as e:
                failed += 1
                print(f"FAIL {name}: {e}")
            except Exception:  # noqa: BLE001 - an unexpected error fails the case, with its trace
                failed += 1
                print(f"FAIL {name}: unexpected error\n{traceback.format_exc()}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
