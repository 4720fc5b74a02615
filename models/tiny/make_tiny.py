"""Writes models/tiny/tiny_cnn.onnx: a small conv net (conv-bn-relu x2, pool, gemm) built with the
onnx helper API, used by the README's first command until the distillation demo exists, and by
tests. Weights are seeded. Usage: .venv/bin/python models/tiny/make_tiny.py [OUT]"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)


def t(name, shape, scale=0.1):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


inits = [
    t("c1.w", (8, 3, 3, 3)), t("c1.b", (8,)),
    numpy_helper.from_array(np.ones(8, np.float32), "bn1.scale"), t("bn1.bias", (8,)),
    t("bn1.mean", (8,)), numpy_helper.from_array(np.full(8, 0.9, np.float32), "bn1.var"),
    t("c2.w", (16, 8, 3, 3)), t("c2.b", (16,)),
    t("fc.w", (10, 16)), t("fc.b", (10,)),
]
nodes = [
    helper.make_node("Conv", ["image", "c1.w", "c1.b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
    helper.make_node("BatchNormalization", ["c1", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"], ["bn1"],
                     name="bn1", epsilon=1e-5),
    helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
    helper.make_node("Conv", ["r1", "c2.w", "c2.b"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
    helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
    helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
    helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
    helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
]
graph = helper.make_graph(
    nodes, "tiny_cnn",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
    inits)
model = helper.make_model(graph, producer_name="onnx-distill models/tiny/make_tiny.py",
                          opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
onnx.save(model, sys.argv[1] if len(sys.argv) > 1 else "models/tiny/tiny_cnn.onnx")
