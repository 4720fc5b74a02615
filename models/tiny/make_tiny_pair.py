"""Writes models/tiny/teacher.onnx and models/tiny/student.onnx: two small conv nets (conv-BN-ReLU
stacks, different widths) for the distillation smoke run and the trainer's tests, plus
models/tiny/pairs.json pairing a feature map (channels differ: the trainer adds a 1x1 adapter)
and the logits (same shape). The student is stored PyTorch-style (initializers) with Relu/Conv
names that the pairs refer to; the teacher keeps its conv weights in Constant nodes, as
paddle2onnx does. Usage: .venv/bin/python models/tiny/make_tiny_pair.py [OUTDIR]"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def net(prefix, widths, seed, as_constants):
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def param(name, arr):
        if as_constants:
            nodes.append(helper.make_node("Constant", [], [name], name=name + "_const",
                                          value=numpy_helper.from_array(arr, name)))
        else:
            inits.append(numpy_helper.from_array(arr, name))

    x, cin = "image", 3
    for i, w in enumerate(widths):
        stride = 2 if i > 0 else 1
        param(f"{prefix}c{i}.w", (rng.standard_normal((w, cin, 3, 3)) * np.sqrt(2 / (9 * cin))).astype(np.float32))
        param(f"{prefix}bn{i}.s", np.ones(w, np.float32))
        param(f"{prefix}bn{i}.b", np.zeros(w, np.float32))
        param(f"{prefix}bn{i}.m", np.zeros(w, np.float32))
        param(f"{prefix}bn{i}.v", np.ones(w, np.float32))
        nodes += [
            helper.make_node("Conv", [x, f"{prefix}c{i}.w"], [f"conv{i}"], name=f"conv{i}", pads=[1, 1, 1, 1],
                             strides=[stride, stride]),
            helper.make_node("BatchNormalization", [f"conv{i}", f"{prefix}bn{i}.s", f"{prefix}bn{i}.b",
                                                    f"{prefix}bn{i}.m", f"{prefix}bn{i}.v"], [f"bn{i}"], name=f"bn{i}"),
            helper.make_node("Relu", [f"bn{i}"], [f"feat{i}"], name=f"relu{i}"),
        ]
        x, cin = f"feat{i}", w
    param(f"{prefix}head.w", (rng.standard_normal((10, cin, 1, 1)) * np.sqrt(1 / cin)).astype(np.float32))
    param(f"{prefix}head.b", np.zeros(10, np.float32))
    nodes.append(helper.make_node("Conv", [x, f"{prefix}head.w", f"{prefix}head.b"], ["head"], name="head"))
    graph = helper.make_graph(
        nodes, prefix + "net", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("head", TensorProto.FLOAT, ["batch", 10, 8, 8])], inits)
    m = helper.make_model(graph, producer_name="onnx-distill models/tiny/make_tiny_pair.py",
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
os.makedirs(out, exist_ok=True)
onnx.save(net("t_", [24, 32, 48], 1, True), os.path.join(out, "teacher.onnx"))
onnx.save(net("s_", [8, 12, 16], 2, False), os.path.join(out, "student.onnx"))
pairs = {
    "teacher": {"model": "teacher.onnx"},
    "student": {"model": "student.onnx"},
    "data": {"format": "random"},
    "pairs": [
        {"teacher": "feat1", "student": "feat1", "loss": "l2", "weight": 1},
        {"teacher": "head", "student": "head", "loss": "l2", "weight": 10},
    ],
    "train": {"batch_size": 4, "steps": 60, "seed": 0, "checkpoint_every": 20, "log_every": 10,
              "optimizer": {"type": "momentum", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005}},
}
with open(os.path.join(out, "pairs.json"), "w") as f:
    json.dump(pairs, f, indent=2)
    f.write("\n")
