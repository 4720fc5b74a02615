"""Writes the demo's initial networks (random weights, Kaiming init, seeded):
models/demo/teacher_init.onnx  YOLOv3-style detector on a small ResNet-like backbone (BasicBlocks)
models/demo/student.onnx       the same YOLOv3 head on a small MobileNetV1-like backbone
                               (depthwise-separable convs)
Both: input 'image' [batch, 3, S, S] (S multiple of 32), three raw head maps 'head0' (stride 32),
'head1' (stride 16), 'head2' (stride 8) with 3 * (5 + C) channels in PaddleDetection's layout,
upsample by Resize (opset 11, nearest, asymmetric/floor: what paddle2onnx and torch emit). The
teacher keeps its weights in Constant nodes (paddle2onnx style), the student in initializers
(PyTorch style), so the demo exercises both. The teacher is then trained by onnx-distill itself
(models/demo/teacher_train.json) and the result committed as models/demo/teacher.onnx.

usage: .venv/bin/python models/demo/make_demo.py [--classes 4]"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


class Net:
    def __init__(self, seed, constants):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.constants, self.n = [], [], constants, 0

    def param(self, name, arr):
        if self.constants:
            self.nodes.append(helper.make_node("Constant", [], [name], name=name + ".const",
                                               value=numpy_helper.from_array(arr, name)))
        else:
            self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def conv_bn(self, x, cin, cout, k, s=1, groups=1, act="relu", name=None):
        self.n += 1
        name = name or f"conv{self.n}"
        fan_in = cin // groups * k * k
        w = self.param(name + ".w", (self.rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2 / fan_in)).astype(np.float32))
        pad = k // 2
        self.nodes.append(helper.make_node("Conv", [x, w], [name + ".out"], name=name, kernel_shape=[k, k],
                                           strides=[s, s], pads=[pad] * 4, group=groups))
        bn = [self.param(name + ".bn." + p, v) for p, v in
              (("scale", np.ones(cout, np.float32)), ("bias", np.zeros(cout, np.float32)),
               ("mean", np.zeros(cout, np.float32)), ("var", np.ones(cout, np.float32)))]
        self.nodes.append(helper.make_node("BatchNormalization", [name + ".out"] + bn, [name + ".bn"], name=name + ".bn",
                                           epsilon=1e-5, momentum=0.9))
        if act is None:
            return name + ".bn"
        if act == "leaky":
            self.nodes.append(helper.make_node("LeakyRelu", [name + ".bn"], [name + ".act"], name=name + ".act", alpha=0.1))
        else:
            self.nodes.append(helper.make_node("Relu", [name + ".bn"], [name + ".act"], name=name + ".act"))
        return name + ".act"

    def add_relu(self, a, b, name):
        self.nodes.append(helper.make_node("Add", [a, b], [name + ".sum"], name=name + ".add"))
        self.nodes.append(helper.make_node("Relu", [name + ".sum"], [name + ".out"], name=name + ".relu"))
        return name + ".out"

    def upsample(self, x, name):
        scales = self.param(name + ".scales", np.array([1, 1, 2, 2], np.float32))
        roi = self.param(name + ".roi", np.zeros(0, np.float32))
        self.nodes.append(helper.make_node("Resize", [x, roi, scales], [name + ".out"], name=name, mode="nearest",
                                           coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
        return name + ".out"

    def concat(self, xs, name):
        self.nodes.append(helper.make_node("Concat", xs, [name + ".out"], name=name, axis=1))
        return name + ".out"

    def head(self, x, cin, out_ch, name):
        w = self.param(name + ".w", (self.rng.standard_normal((out_ch, cin, 1, 1)) * 0.01).astype(np.float32))
        b = self.param(name + ".b", np.zeros(out_ch, np.float32))
        self.nodes.append(helper.make_node("Conv", [x, w, b], [name], name=name + ".conv"))
        return name


def yolo_neck(net, c3, c4, c5, ch, out_ch, widths):
    """YOLOv3 FPN head: stride 32 -> upsample + concat stride 16 -> upsample + concat stride 8."""
    w5, w4, w3 = widths
    x = net.conv_bn(c5, ch[2], w5, 1, act="leaky")
    x = net.conv_bn(x, w5, w5 * 2, 3, act="leaky")
    net.head(x, w5 * 2, out_ch, "head0")
    r = net.conv_bn(x, w5 * 2, w4, 1, act="leaky")
    x = net.concat([net.upsample(r, "up1"), c4], "cat1")
    x = net.conv_bn(x, w4 + ch[1], w4, 1, act="leaky")
    x = net.conv_bn(x, w4, w4 * 2, 3, act="leaky")
    net.head(x, w4 * 2, out_ch, "head1")
    r = net.conv_bn(x, w4 * 2, w3, 1, act="leaky")
    x = net.concat([net.upsample(r, "up2"), c3], "cat2")
    x = net.conv_bn(x, w3 + ch[0], w3, 1, act="leaky")
    x = net.conv_bn(x, w3, w3 * 2, 3, act="leaky")
    net.head(x, w3 * 2, out_ch, "head2")


def basic_block(net, x, cin, cout, s, name):
    y = net.conv_bn(x, cin, cout, 3, s, name=name + ".c1")
    y = net.conv_bn(y, cout, cout, 3, 1, act=None, name=name + ".c2")
    short = x if (s == 1 and cin == cout) else net.conv_bn(x, cin, cout, 1, s, act=None, name=name + ".short")
    return net.add_relu(y, short, name)


def teacher(out_ch):
    net = Net(1, constants=True)
    x = net.conv_bn("image", 3, 24, 3, 2, name="stem1")                     # /2
    x = net.conv_bn(x, 24, 32, 3, 2, name="stem2")                          # /4
    x = basic_block(net, x, 32, 32, 1, "layer1")
    c3 = basic_block(net, basic_block(net, x, 32, 64, 2, "layer2a"), 64, 64, 1, "layer2b")   # /8
    c4 = basic_block(net, basic_block(net, c3, 64, 96, 2, "layer3a"), 96, 96, 1, "layer3b")  # /16
    c5 = basic_block(net, c4, 96, 128, 2, "layer4")                          # /32
    yolo_neck(net, c3, c4, c5, (64, 96, 128), out_ch, (96, 64, 32))
    return net


def student(out_ch):
    net = Net(2, constants=False)
    x = net.conv_bn("image", 3, 16, 3, 2, name="stem")                      # /2
    ch = 16
    cfg = [(32, 2), (32, 1), (48, 2), (48, 1), (64, 2), (64, 1), (96, 2)]    # /4 /8 /16 /32
    taps = {}
    for i, (co, s) in enumerate(cfg):
        x = net.conv_bn(x, ch, ch, 3, s, groups=ch, name=f"dw{i}")
        x = net.conv_bn(x, ch, co, 1, name=f"pw{i}")
        ch = co
        taps[i] = (x, ch)
    (c3, a), (c4, b), (c5, c) = taps[3], taps[5], taps[6]
    yolo_neck(net, c3, c4, c5, (a, b, c), out_ch, (48, 32, 16))
    return net


def save(net, path, producer, out_ch):
    heads = ["head0", "head1", "head2"]
    graph = helper.make_graph(
        net.nodes, os.path.basename(path).replace(".onnx", ""),
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info(h, TensorProto.FLOAT, ["batch", out_ch, f"h{i}", f"w{i}"])
         for i, h in enumerate(heads)], net.inits)
    m = helper.make_model(graph, producer_name=producer, opset_imports=[helper.make_opsetid("", 11)])
    m.ir_version = 6
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--classes", type=int, default=4)
    args = ap.parse_args()
    out_ch = 3 * (5 + args.classes)
    save(teacher(out_ch), os.path.join(HERE, "teacher_init.onnx"), "onnx-distill models/demo/make_demo.py (teacher)", out_ch)
    save(student(out_ch), os.path.join(HERE, "student.onnx"), "onnx-distill models/demo/make_demo.py (student)", out_ch)


main()
