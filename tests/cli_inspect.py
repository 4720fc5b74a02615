"""`onnx-distill inspect --json` on every node-test model, compared with what the onnx Python
package (an independent reader) says about the same file: IR version, opsets, real inputs and
outputs with dtypes and shapes, the op histogram, node count and parameter totals.

usage: cli_inspect.py TOOL NODE_TESTS_DIR [EXTRA_MODEL...]"""
import collections
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def dtype_name(code):
    return onnx.helper.tensor_dtype_to_string(code).replace("TensorProto.", "").lower() if code else "?"


def value_desc(vi):
    t = vi.type
    kind = t.WhichOneof("value")
    if kind != "tensor_type":
        return ({"sequence_type": "sequence", "map_type": "map", "optional_type": "optional",
                 "sparse_tensor_type": "sparse_tensor"}.get(kind, "?" if kind is None else "other"), None)
    tt = t.tensor_type
    dt = dtype_name(tt.elem_type)
    if not tt.HasField("shape"):
        return dt, None
    shape = []
    for d in tt.shape.dim:
        w = d.WhichOneof("value")
        shape.append(d.dim_value if w == "dim_value" else d.dim_param if w == "dim_param" else None)
    return dt, shape


def expected(path):
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    init_names = {t.name for t in g.initializer}
    inputs = [(vi.name,) + value_desc(vi) for vi in g.input if vi.name not in init_names]
    outputs = [(vi.name,) + value_desc(vi) for vi in g.output]
    hist = collections.OrderedDict()
    for n in g.node:
        hist[(n.domain or "ai.onnx", n.op_type)] = hist.get((n.domain or "ai.onnx", n.op_type), 0) + 1
    tensors = list(g.initializer)
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            for a in n.attribute:
                if a.name == "value":
                    tensors.append(a.t)
                elif a.name in ("value_float", "value_int"):
                    tensors.append(None)
                elif a.name in ("value_floats", "value_ints"):
                    tensors.append(len(a.floats) + len(a.ints))
    elements = 0
    for t in tensors:
        if t is None:
            elements += 1
        elif isinstance(t, int):
            elements += t
        else:
            elements += int(np.prod(t.dims)) if len(t.dims) else 1
    opsets = sorted((o.domain or "ai.onnx", o.version) for o in m.opset_import)
    return dict(ir=m.ir_version, opsets=opsets, inputs=inputs, outputs=outputs, hist=list(hist.items()),
                nodes=len(g.node), tensors=len(tensors), elements=elements)


def got(tool, path):
    r = subprocess.run([tool, "inspect", path, "--json"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}: {r.stderr.strip()}")
    j = json.loads(r.stdout)
    return dict(
        ir=j["ir_version"],
        opsets=sorted((o["domain"], o["version"]) for o in j["opsets"]),
        inputs=[(v["name"], v["dtype"], v["shape"]) for v in j["inputs"]],
        outputs=[(v["name"], v["dtype"], v["shape"]) for v in j["outputs"]],
        hist=[((o["domain"], o["op_type"]), o["count"]) for o in j["ops"]],
        nodes=j["nodes"], tensors=j["parameters"]["tensors"], elements=j["parameters"]["elements"])


def main():
    tool, root = sys.argv[1], sys.argv[2]
    models = [os.path.join(root, d, "model.onnx") for d in sorted(os.listdir(root))
              if os.path.isfile(os.path.join(root, d, "model.onnx"))] + sys.argv[3:]
    passed = failed = 0
    for path in models:
        try:
            e, g = expected(path), got(tool, path)
            for k in e:
                if e[k] != g[k]:
                    raise AssertionError(f"{k}: onnx says {e[k]!r}, inspect says {g[k]!r}")
            passed += 1
        except Exception as ex:  # noqa: BLE001 - report every model, then fail
            failed += 1
            print(f"FAIL {path}: {ex}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or passed < 600 else 0)


main()
