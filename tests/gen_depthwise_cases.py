#!/usr/bin/env python3
"""Single-Conv float32 models of depthwise convolutions (group == C == M), for tests/cuda_parity.c:
the CUDA kernels of ops/conv_depthwise.cu against the CPU's depthwise path of ops/conv.c.

usage: gen_depthwise_cases.py OUTDIR [--mobilenet]

--mobilenet writes instead the 13 depthwise layers of YOLOv3-MobileNetV1 (width 1.0) at batch 8 and a
608 x 608 image (3x3, pad 1, no bias; the first is 8 x 32 x 304 x 304), as mbv1_dwNN_*.onnx: for the
GPU machine, parity at full size (cuda_parity DIR) and forward timings (onnx-distill bench M --device
cuda), each with OD_CUDA_DEPTHWISE=0 (cuDNN) and without (ours).

The cases cover both families of kernels in ops/conv_depthwise.cu: the strip kernels (square 3x3, 5x5,
7x7 at equal strides 1 or 2) and the generic ones (rectangular, 1-D, stride 3 or unequal strides,
even kernels), with and without bias, batch 1 and 3, 1, 7 or 32 channels, pads symmetric and not
(auto_pad too), odd sizes at stride 2, and planes big enough that one channel spans several blocks
(forward/dX tiles) and several chunks of several units (dW). Inputs are graph inputs, so every
gradient is compared; the *_winit / *_xinit cases make W or X an initializer (constant), so the
backward runs without dW (dX and dB only) or without dX.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CASES = []


def case(name, x, k, stride=(1, 1), pads=None, bias=True, auto_pad=None, const=None):
    """x: X's shape (N, C, H, W) or (N, C, L); k: kernel shape; const: 'x' or 'w' as an initializer."""
    CASES.append(dict(name=name, x=x, k=k, stride=stride, pads=pads, bias=bias, auto_pad=auto_pad, const=const))


def write(c, outdir):
    x, k = tuple(c["x"]), tuple(c["k"])
    C = x[1]
    shapes = {"x": x, "w": (C, 1) + k, "b": (C,)}
    names = ["x", "w"] + (["b"] if c["bias"] else [])
    rng = np.random.default_rng(len(c["name"]))
    ins, inits = [], []
    for n in names:
        if c["const"] == n:
            inits.append(numpy_helper.from_array(rng.standard_normal(shapes[n]).astype(np.float32), n))
        else:
            ins.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shapes[n])))
    attrs = {"group": C, "kernel_shape": list(k), "strides": list(c["stride"][: len(k)])}
    if c["auto_pad"]:
        attrs["auto_pad"] = c["auto_pad"]
    elif c["pads"] is not None:
        attrs["pads"] = list(c["pads"])
    node = helper.make_node("Conv", names, ["y"], name=c["name"], **attrs)
    graph = helper.make_graph([node], c["name"], ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, os.path.join(outdir, c["name"] + ".onnx"))


# ---- strip kernels: 3x3 (MobileNet's), stride 1 and 2 ----
case("dw_3x3_s1_p1_bias_n2c32", (2, 32, 40, 40), (3, 3), pads=(1, 1, 1, 1))
case("dw_3x3_s1_p1_nobias_n3c7", (3, 7, 64, 64), (3, 3), pads=(1, 1, 1, 1), bias=False)
case("dw_3x3_s1_p1_n1c1", (1, 1, 17, 23), (3, 3), pads=(1, 1, 1, 1))
case("dw_3x3_s1_p0", (3, 7, 9, 11), (3, 3), bias=False)
case("dw_3x3_s2_p1_odd_n2c32", (2, 32, 41, 39), (3, 3), stride=(2, 2), pads=(1, 1, 1, 1))
case("dw_3x3_s2_p1_even_n3c7", (3, 7, 40, 36), (3, 3), stride=(2, 2), pads=(1, 1, 1, 1), bias=False)
case("dw_3x3_s2_p1_n1c1", (1, 1, 13, 9), (3, 3), stride=(2, 2), pads=(1, 1, 1, 1))
case("dw_3x3_s2_p0_odd", (1, 7, 15, 13), (3, 3), stride=(2, 2))
case("dw_3x3_s2_asym_pads", (2, 7, 19, 20), (3, 3), stride=(2, 2), pads=(0, 1, 1, 0))
case("dw_3x3_s1_asym_pads", (2, 7, 12, 14), (3, 3), pads=(2, 0, 0, 2))
case("dw_3x3_s2_same_upper", (1, 7, 16, 15), (3, 3), stride=(2, 2), auto_pad="SAME_UPPER")
case("dw_3x3_s2_same_lower", (1, 7, 16, 15), (3, 3), stride=(2, 2), auto_pad="SAME_LOWER")
case("dw_3x3_s1_big_pads", (1, 7, 6, 5), (3, 3), pads=(3, 2, 2, 3))
case("dw_3x3_s1_wide_n1c32", (1, 32, 8, 100), (3, 3), pads=(1, 1, 1, 1))
case("dw_3x3_s1_tall_n3c1", (3, 1, 150, 5), (3, 3), pads=(1, 1, 1, 1))
# one channel over many (image, tile) units: several dW chunks of several units each
case("dw_3x3_s1_many_units", (3, 1, 130, 70), (3, 3), pads=(1, 1, 1, 1))
case("dw_3x3_s2_many_units", (3, 1, 131, 71), (3, 3), stride=(2, 2), pads=(1, 1, 1, 1), bias=False)
# many channels of small planes (8-wide tiles): image slices of several images per block
case("dw_3x3_s1_c512_small", (5, 512, 8, 8), (3, 3), pads=(1, 1, 1, 1))
case("dw_3x3_s2_c512_small", (5, 512, 9, 8), (3, 3), stride=(2, 2), pads=(1, 1, 1, 1))
# more channels than a grid's y dimension (65535): blocks loop over channels
case("dw_3x3_s1_c70000", (1, 70000, 3, 2), (3, 3), pads=(1, 1, 1, 1))
# W or X constant: backward without dW (dX and dB only), or without dX
case("dw_3x3_s2_winit", (2, 7, 21, 19), (3, 3), stride=(2, 2), pads=(1, 1, 1, 1), const="w")
case("dw_3x3_s1_xinit", (2, 7, 21, 19), (3, 3), pads=(1, 1, 1, 1), const="x")
# ---- strip kernels: 5x5 and 7x7 ----
case("dw_5x5_s1_p2", (2, 7, 23, 21), (5, 5), pads=(2, 2, 2, 2))
case("dw_5x5_s2_p2_odd", (3, 7, 23, 21), (5, 5), stride=(2, 2), pads=(2, 2, 2, 2), bias=False)
case("dw_5x5_s2_asym", (1, 7, 20, 22), (5, 5), stride=(2, 2), pads=(1, 2, 2, 1))
case("dw_7x7_s1_p3", (2, 7, 20, 19), (7, 7), pads=(3, 3, 3, 3))
case("dw_7x7_s2_p3", (1, 7, 21, 24), (7, 7), stride=(2, 2), pads=(3, 3, 3, 3))
case("dw_7x7_s2_p0_small", (2, 3, 9, 8), (7, 7), stride=(2, 2), bias=False)
# ---- generic kernels ----
case("dw_3x1_s1_rect", (2, 7, 19, 17), (3, 1), pads=(1, 0, 1, 0))
case("dw_1x3_s2_rect", (3, 7, 19, 17), (1, 3), stride=(2, 2), pads=(0, 1, 0, 1), bias=False)
case("dw_5x3_s1_asym", (1, 32, 20, 18), (5, 3), pads=(2, 1, 1, 0))
case("dw_3x3_s3", (2, 7, 20, 22), (3, 3), stride=(3, 3), pads=(1, 1, 1, 1))
case("dw_3x3_s2x1", (2, 7, 17, 20), (3, 3), stride=(2, 1), pads=(1, 1, 1, 1))
case("dw_2x2_s2", (1, 7, 16, 17), (2, 2), stride=(2, 2))
case("dw_4x4_s1_p_asym", (1, 7, 13, 12), (4, 4), pads=(1, 2, 2, 1), bias=False)
case("dw_7x5_s1", (2, 3, 16, 15), (7, 5), pads=(3, 2, 3, 2))
case("dw_1x1", (2, 7, 9, 10), (1, 1))
case("dw_1d_k3_s1", (3, 7, 50), (3,), stride=(1,), pads=(1, 1))
case("dw_1d_k5_s2", (2, 32, 41), (5,), stride=(2,), pads=(2, 1), bias=False)
case("dw_generic_big_n2c32", (2, 32, 40, 40), (3, 5), pads=(1, 2, 1, 2))
case("dw_generic_many_chunks", (3, 1, 60, 70), (3, 1), stride=(1, 1), pads=(1, 0, 1, 0), const="x")



def write_shared(name, outdir):
    """Two depthwise convs (3x3 stride 1 and stride 2) on the same X with the same W and B: each
    gradient gets two contributions, so a backward that overwrote dX, dW or dB instead of adding to it
    would lose one of them."""
    C = 7
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, C, 21, 18]),
           helper.make_tensor_value_info("w", TensorProto.FLOAT, [C, 1, 3, 3]),
           helper.make_tensor_value_info("b", TensorProto.FLOAT, [C])]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y0"], name=name + "_s1", group=C, pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "w", "b"], ["y1"], name=name + "_s2", group=C, pads=[1, 1, 1, 1],
                              strides=[2, 2])]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in ("y0", "y1")]
    m = helper.make_model(helper.make_graph(nodes, name, ins, outs), opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, os.path.join(outdir, name + ".onnx"))


# (channels, input size, stride) of MobileNetV1's depthwise layers at a 608 x 608 image
MOBILENET = [(32, 304, 1), (64, 304, 2), (128, 152, 1), (128, 152, 2), (256, 76, 1), (256, 76, 2)] + \
    [(512, 38, 1)] * 5 + [(512, 38, 2), (1024, 19, 1)]

if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if "--mobilenet" in sys.argv[2:]:
        for i, (C, H, st) in enumerate(MOBILENET):
            write(dict(name=f"mbv1_dw{i + 1:02d}_c{C}_{H}_s{st}", x=(8, C, H, H), k=(3, 3), stride=(st, st),
                       pads=(1, 1, 1, 1), bias=False, auto_pad=None, const=None), out)
        print(f"wrote {len(MOBILENET)} MobileNetV1 depthwise layers to {out}")
        sys.exit(0)
    for c in CASES:
        write(c, out)
    write_shared("dw_shared_xwb_accumulate", out)
    print(f"wrote {len(CASES) + 1} depthwise models to {out}")
