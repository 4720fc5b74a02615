"""Bad input to `onnx-distill inspect`: each case writes a broken model file and asserts the exit
code (2), that the message names the place and the reason, and that nothing crashed (a signal, or
a sanitizer report in the ASan build, fails the case).

usage: cli_bad_input.py TOOL TMPDIR"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TOOL, TMP = sys.argv[1], os.path.abspath(os.path.join(sys.argv[2], "bad_input"))
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)


def model(nodes, inputs=("X",), outputs=("Y",), inits=(), opset=13, ir=8, value_info=()):
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in outputs],
        list(inits), value_info=list(value_info))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m.SerializeToString()


def relu(i, o, name="r"):
    return helper.make_node("Relu", [i], [o], name=name)


GOOD = model([relu("X", "Y")])
W = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "W")


def with_w(mutate):
    t = onnx.TensorProto()
    t.CopyFrom(W)
    mutate(t)
    return model([helper.make_node("Add", ["X", "W"], ["Y"], name="add")], inits=[t])


def external(location, offset="0", length=None):
    def mutate(t):
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", offset), ("length", length)):
            if v is not None:
                e = t.external_data.add()
                e.key, e.value = k, v
    return with_w(mutate)


with open(os.path.join(TMP, "w.bin"), "wb") as f:
    f.write(np.arange(6, dtype=np.float32).tobytes())


def set_raw(t, data):
    t.raw_data = data


def set_dims(t, dims):
    del t.dims[:]
    t.dims.extend(dims)


def set_string(t):
    t.data_type = TensorProto.STRING
    t.ClearField("raw_data")
    t.string_data.extend([b"a"] * 6)


# graph (field 7) written as a varint instead of a message
WRONG_WIRE = bytes([0x08, 0x08, 0x38, 0x05])
# graph (field 7) declares 200 bytes, only 3 follow (a well-formed name field)
TOO_LONG = bytes([0x08, 0x08, 0x3a, 0xc8, 0x01, 0x12, 0x01, 0x67])

CASES = [
    # name, file bytes (or None for "no file"), patterns the message must contain
    ("empty", b"", [r"file is empty"]),
    ("missing", None, [r"cannot open: No such file"]),
    ("text", b"hello world, not a model\n", [r"not a valid ONNX model"]),
    ("truncated", GOOD[: len(GOOD) // 2], [r"not a valid ONNX model: graph\.", r"at byte \d+", r"remain|truncated"]),
    ("truncated_tensor", with_w(lambda t: None)[:-12], [r"not a valid ONNX model", r"at byte \d+"]),
    ("wrong_wire_type", WRONG_WIRE, [r"graph \(field 7\)", r"expected length-delimited, got varint"]),
    ("size_past_end", TOO_LONG, [r"graph \(field 7\)", r"declares 200 bytes but only 3 remain"]),
    ("no_graph", bytes([0x08, 0x08]), [r"the model has no graph"]),
    ("negative_dim", with_w(lambda t: set_dims(t, [2, -3])), [r"initializer 'W': dims\[1\] is negative \(-3\)"]),
    ("overflow_dims", with_w(lambda t: set_dims(t, [1 << 40, 1 << 40])), [r"initializer 'W': element count overflows"]),
    ("raw_data_length", with_w(lambda t: set_raw(t, t.raw_data[:-4])),
     [r"initializer 'W': raw_data has 20 bytes but float shape with 6 elements needs 24"]),
    ("string_tensor", with_w(set_string), [r"initializer 'W': string tensors are not supported"]),
    ("dangling_input", model([helper.make_node("Add", ["X", "Q"], ["Y"], name="add")]),
     [r"node 'add' \(Add-13\) input 1 'Q' is not a graph input, an initializer or any node's output"]),
    ("dangling_output", model([relu("X", "Z")]), [r"graph output 'Y' is not produced by any node"]),
    ("cycle", model([relu("X2", "Y", "a"), relu("Y", "X2", "b")]), [r"the graph has a cycle through node '[ab]'"]),
    ("duplicate_output", model([relu("X", "Y", "a"), relu("X", "Y", "b")]),
     [r"node 'b' \(Relu-13\) output 0 'Y' is already produced by node 'a' \(Relu-13\)"]),
    ("output_overwrites_input", model([relu("X", "X", "a"), relu("X", "Y", "b")]),
     [r"node 'a' \(Relu-13\) output 0 'X' is already produced by a graph input"]),
    ("external_dotdot", external("../w.bin"), [r"initializer 'W': external data location '\.\./w\.bin' leaves the model's folder"]),
    ("external_absolute", external(os.path.join(TMP, "w.bin")), [r"initializer 'W': external data location '/.*' is an absolute path"]),
    ("external_past_end", external("w.bin", offset="8"), [r"initializer 'W': external data '.*w\.bin' needs bytes 8\.\.32 but the file has 24 bytes"]),
    ("external_missing", external("nope.bin"), [r"initializer 'W': cannot open external data file '.*nope\.bin'"]),
    ("external_bad_length", external("w.bin", length="7"), [r"external data length 7 does not match the shape's 24 bytes"]),
    ("unknown_domain", model([helper.make_node("Foo", ["X"], ["Y"], name="f", domain="com.example")]),
     [r"node 'f' \(com\.example:Foo\) uses domain 'com\.example', which opset_import does not list"]),
]

# a value_info-free input with a negative declared dim
neg = onnx.load_from_string(GOOD)
neg.graph.input[0].type.tensor_type.shape.dim[1].dim_value = -4
CASES.append(("negative_input_dim", neg.SerializeToString(), [r"graph input 'X' dim 1 is negative \(-4\)"]))

passed = failed = 0
for name, data, patterns in CASES:
    path = os.path.join(TMP, name + ".onnx")
    if data is not None:
        with open(path, "wb") as f:
            f.write(data)
    r = subprocess.run([TOOL, "inspect", path], capture_output=True, text=True, timeout=60)
    problems = []
    if r.returncode != 2:
        problems.append(f"exit code {r.returncode}, expected 2")
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        problems.append("sanitizer report")
    if path not in r.stderr:
        problems.append("message does not name the file")
    for p in patterns:
        if not re.search(p, r.stderr):
            problems.append(f"message lacks /{p}/")
    if problems:
        failed += 1
        print(f"FAIL {name}: {'; '.join(problems)}\n  stderr: {r.stderr.strip()[:2000]}")
    else:
        passed += 1
        print(f"ok   {name}: {r.stderr.strip()}")

# the good model still loads (guards against a harness that fails everything)
good = os.path.join(TMP, "good.onnx")
with open(good, "wb") as f:
    f.write(GOOD)
r = subprocess.run([TOOL, "inspect", good], capture_output=True, text=True, timeout=60)
if r.returncode == 0 and "Relu" in r.stdout:
    passed += 1
else:
    failed += 1
    print(f"FAIL good model: exit {r.returncode}: {r.stderr}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
