"""Storage sharing is not weight tying: a student written the way PyTorch's exporter writes a fresh
network (equal BatchNormalization scales and biases deduplicated into one initializer each, read
through Identity nodes) and with one conv weight read by two convs. With untie_shared (default)
training gives every use its own parameter, and the export keeps every node, name, input and
output while each Identity now reads its own initializer; with untie_shared false the shared
tensors train as one (and are not frozen by constant folding). ONNX Runtime runs both exports and
agrees with our forward pass.

usage: train_untie.py TOOL TMPDIR"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

TOOL, TMP = sys.argv[1], os.path.abspath(os.path.join(sys.argv[2], "train_untie"))
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
rng = np.random.default_rng(0)
failures, passed = [], 0


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failures.append(name)
        print(f"FAIL {name}: {str(detail)[-1500:]}")


def w(shape, name):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


# student: conv1 -> bn1 -> relu -> conv2 (shares conv1's weight? no: c2.w shared by conv2 and conv3) ...
inits = [w((8, 3, 3, 3), "c1.w"), w((8, 8, 3, 3), "shared.w"),
         numpy_helper.from_array(np.ones(8, np.float32), "ones"), numpy_helper.from_array(np.zeros(8, np.float32), "zeros"),
         numpy_helper.from_array(np.zeros(8, np.float32), "mean"), numpy_helper.from_array(np.ones(8, np.float32), "var")]
nodes = [helper.make_node("Identity", ["ones"], ["bn1.scale"], name="id_s1"),
         helper.make_node("Identity", ["zeros"], ["bn1.bias"], name="id_b1"),
         helper.make_node("Identity", ["ones"], ["bn2.scale"], name="id_s2"),
         helper.make_node("Identity", ["zeros"], ["bn2.bias"], name="id_b2"),
         helper.make_node("Conv", ["image", "c1.w"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c1", "bn1.scale", "bn1.bias", "mean", "var"], ["b1"], name="bn1"),
         helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
         helper.make_node("Conv", ["r1", "shared.w"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c2", "bn2.scale", "bn2.bias", "mean", "var"], ["b2"], name="bn2"),
         helper.make_node("Relu", ["b2"], ["r2"], name="relu2"),
         helper.make_node("Conv", ["r2", "shared.w"], ["out"], name="conv3", pads=[1, 1, 1, 1])]
g = helper.make_graph(nodes, "student", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 16, 16])],
                      [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 8, 16, 16])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, os.path.join(TMP, "student.onnx"))
# teacher: any net with the same output shape
tg = helper.make_graph([helper.make_node("Conv", ["image", "tw"], ["out"], name="t", pads=[1, 1, 1, 1])], "teacher",
                       [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 16, 16])],
                       [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 8, 16, 16])], [w((8, 3, 3, 3), "tw")])
tm = helper.make_model(tg, opset_imports=[helper.make_opsetid("", 13)])
tm.ir_version = 8
onnx.save(tm, os.path.join(TMP, "teacher.onnx"))
with open(os.path.join(TMP, "pairs.json"), "w") as f:
    json.dump({"teacher": {"model": "teacher.onnx"}, "student": {"model": "student.onnx"}, "data": {"format": "random"},
               "pairs": [{"teacher": "out", "student": "out", "loss": "l2"}],
               "train": {"batch_size": 2, "steps": 10, "log_every": 5, "checkpoint_every": 0,
                         "optimizer": {"type": "momentum", "lr": 0.05}}}, f)

x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
np.save(os.path.join(TMP, "x.npy"), x)


def ours(model):
    out = os.path.join(TMP, "run_" + os.path.basename(model))
    r = subprocess.run([TOOL, "run", model, "--input", f"image={TMP}/x.npy", "--output", out], capture_output=True,
                       text=True, timeout=120)
    return np.load(os.path.join(out, "out.npy")) if r.returncode == 0 else None


for untie in (True, False):
    tag = "untied" if untie else "tied"
    args = [TOOL, "train", os.path.join(TMP, "pairs.json"), "--set", f"train.untie_shared={str(untie).lower()}",
            "--set", f"train.out_dir={tag}"]
    r = subprocess.run(args + ["--dry-run"], capture_output=True, text=True, timeout=120)
    if untie:
        check("dry run reports the untied uses", "untied: 5 shared parameter uses" in r.stdout, r.stdout + r.stderr)
    else:
        check("dry run reports tied storage", "stay tied" in r.stdout, r.stdout + r.stderr)
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    check(f"{tag}: train exits 0", r.returncode == 0, r.stderr)
    path = os.path.join(TMP, tag, "student_distilled.onnx")
    if r.returncode != 0 or not os.path.exists(path):
        continue
    e = onnx.load(path)
    onnx.checker.check_model(e, full_check=True)
    check(f"{tag}: nodes, inputs and outputs kept",
          [n.name for n in e.graph.node] == [n.name for n in m.graph.node] and
          [i.name for i in e.graph.input] == ["image"] and [o.name for o in e.graph.output] == ["out"])
    init = {t.name: numpy_helper.to_array(t) for t in e.graph.initializer}
    ids = {n.name: n.input[0] for n in e.graph.node if n.op_type == "Identity"}
    if untie:
        check("each Identity reads its own initializer", len(set(ids.values())) == 4 and all(v in init for v in ids.values()),
              ids)
        check("untied BN scales trained apart", not np.array_equal(init[ids["id_s1"]], init[ids["id_s2"]]))
        conv3_w = [n.input[1] for n in e.graph.node if n.name == "conv3"][0]
        check("conv3 reads its own copy of the shared weight", conv3_w != "shared.w" and conv3_w in init, conv3_w)
        check("the two conv weights trained apart", not np.array_equal(init["shared.w"], init[conv3_w]))
    else:
        check("tied: structure unchanged", set(ids.values()) == {"ones", "zeros"} and set(init) == {t.name for t in m.graph.initializer})
        check("tied: the shared BN scale trained (not frozen)", not np.array_equal(init["ones"], np.ones(8, np.float32)))
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    got = ours(path)
    err = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want))))) if got is not None else None
    check(f"{tag}: ONNX Runtime agrees with our forward", err is not None and err <= 1e-4, err)

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
