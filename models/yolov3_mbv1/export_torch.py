"""Exports a YOLOv3-MobileNetV1 (VOC: 20 classes, 3 anchors per scale, 75-channel outputs) from PyTorch
with torch.onnx.export, the network of /work/shared/bench/torch_peer_yolov3.py's student rewritten here
with width multipliers:

  --width W        MobileNetV1 channels x W (PaddleDetection's MobileNetV1 `scale`; 1.0 = full)
  --head-width H   YOLOv3 FPN/head channels (512/256/128 at 1.0) x H; default: the same as --width

Weights are random (seeded) with batch-norm statistics calibrated on a random batch, so every layer
sees activations of order one, as in a trained network (see build() for the conditioning). BatchNormalization nodes are kept (no folding
into the convolutions: a student is trained from this file), like the peer script.

Default (committed, ~2.3 MB): backbone 0.25, head 0.125, input 160x160, opset 11, dynamic N/H/W,
written to models/yolov3_mbv1/torch_w025.onnx with reference data in torch_w025/ (input and the
ONNX Runtime CPU outputs as .npy, read by tests/real_models.py).
--full: backbone and head 1.0 (the full student, ~97 MB, not committed), written to --out
(default out/bench/yolov3_mbv1_torch_full.onnx), no reference data unless --ref.

Needs torch + onnx + onnxruntime (an exporters venv, never CI):
  python -m venv /work/exporters-venv && /work/exporters-venv/bin/pip install torch onnx onnxruntime
  /work/exporters-venv/bin/python models/yolov3_mbv1/export_torch.py            # committed small model
  /work/exporters-venv/bin/python models/yolov3_mbv1/export_torch.py --full     # benchmark model
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NC = 20
OUT_CH = 3 * (5 + NC)


def cbr(cin, cout, k, s=1, groups=1, act="relu"):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    layers.append(nn.ReLU(inplace=True) if act == "relu" else nn.LeakyReLU(0.1, inplace=True))
    return nn.Sequential(*layers)


def scaled(c, w):
    return max(8, int(c * w))


class MobileNetV1(nn.Module):
    """Depthwise-separable conv-bn-relu stack; taps C3 (256w), C4 (512w), C5 (1024w)."""

    def __init__(self, width=1.0):
        super().__init__()
        cfg = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
               (256, 512, 2)] + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
        self.stem = cbr(3, scaled(32, width), 3, 2)
        self.blocks = nn.ModuleList()
        for ci, co, s in cfg:
            ci, co = scaled(ci, width), scaled(co, width)
            self.blocks.append(nn.Sequential(cbr(ci, ci, 3, s, groups=ci), cbr(ci, co, 1)))
        self.taps = {4: 0, 10: 1, 12: 2}
        self.channels = tuple(scaled(c, width) for c in (256, 512, 1024))

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in self.taps:
                feats.append(x)
        return feats


class YoloV3(nn.Module):
    """YOLOv3 FPN head: per level a 5-conv block, a 3x3 tip and a 1x1 output conv (with bias); the
    route goes through a 1x1 conv, nearest upsample x2 and a concat with the next backbone tap."""

    def __init__(self, backbone, head_width=1.0):
        super().__init__()
        self.backbone = backbone
        c3, c4, c5 = backbone.channels
        self.blocks, self.tips, self.outs, self.routes = (nn.ModuleList() for _ in range(4))
        cin = c5
        for lvl, ch in enumerate((512, 256, 128)):
            ch = scaled(ch, head_width)
            self.blocks.append(nn.Sequential(
                cbr(cin, ch, 1, act="leaky"), cbr(ch, ch * 2, 3, act="leaky"),
                cbr(ch * 2, ch, 1, act="leaky"), cbr(ch, ch * 2, 3, act="leaky"),
                cbr(ch * 2, ch, 1, act="leaky")))
            self.tips.append(cbr(ch, ch * 2, 3, act="leaky"))
            self.outs.append(nn.Conv2d(ch * 2, OUT_CH, 1))
            if lvl < 2:
                self.routes.append(cbr(ch, ch // 2, 1, act="leaky"))
                cin = ch // 2 + (c4 if lvl == 0 else c3)

    def forward(self, x):
        c3, c4, c5 = self.backbone(x)
        skips = [c4, c3]
        outs, x = [], c5
        for lvl in range(3):
            r = self.blocks[lvl](x)
            outs.append(self.outs[lvl](self.tips[lvl](r)))
            if lvl < 2:
                x = torch.cat([F.interpolate(self.routes[lvl](r), scale_factor=2.0, mode="nearest"), skips[lvl]], 1)
        return outs


def make_input(size, batch=1, seed=1):
    """An image-like input: uniform pixels in [0,1] normalised with the ImageNet mean/std."""
    rng = np.random.default_rng(seed)
    img = rng.random((batch, 3, size, size), dtype=np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    return ((img - mean) / std).astype(np.float32)


def build(width, head_width, size, seed=0):
    torch.manual_seed(seed)
    net = YoloV3(MobileNetV1(width), head_width)
    # random affine BN parameters, then statistics from one random batch (momentum None = plain average).
    # gamma in [0.5, 1], beta in [0.2, 0.6] (mostly positive, as in trained networks): with zero-mean betas
    # and gamma up to 1.5 a random BN-ReLU stack is chaotic (a float32 rounding error grows ~15% per
    # layer: 5e-5 relative at the outputs, torch and ONNX Runtime alike, against a float64 run); with
    # these it stays at ~5e-6, well under the 1e-4 the tests allow.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.0)
                m.bias.uniform_(0.2, 0.6)
                m.momentum = None
                m.reset_running_stats()
        net.train()
        net(torch.from_numpy(make_input(size, batch=4, seed=seed + 100)))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
    net.eval()
    return net


def export(net, path, size, opset):
    x = torch.from_numpy(make_input(size))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    kw = dict(input_names=["image"], output_names=["out_s32", "out_s16", "out_s8"], opset_version=opset,
              dynamic_axes={"image": {0: "N", 2: "H", 3: "W"}, "out_s32": {0: "N", 2: "H32", 3: "W32"},
                            "out_s16": {0: "N", 2: "H16", 3: "W16"}, "out_s8": {0: "N", 2: "H8", 3: "W8"}},
              do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    try:
        torch.onnx.export(net, (x,), path, dynamo=False, **kw)
    except TypeError:  # torch < 2.5 has no dynamo argument
        torch.onnx.export(net, (x,), path, **kw)
    print("wrote", path, os.path.getsize(path), "bytes", flush=True)


def write_reference(model_path, ref_dir, size):
    """The input and ONNX Runtime's CPU outputs, one .npy per tensor (names = graph names)."""
    import onnxruntime as ort
    os.makedirs(ref_dir, exist_ok=True)
    x = make_input(size)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"image": x})
    np.save(os.path.join(ref_dir, "input_image.npy"), x)
    for o, v in zip(sess.get_outputs(), outs):
        np.save(os.path.join(ref_dir, "output_" + o.name + ".npy"), v)
        print(f"  {o.name}: {v.dtype} {list(v.shape)} max|v| {np.abs(v).max():.4g}")
    print("wrote reference data to", ref_dir, flush=True)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="width 1.0 backbone and head, for the benchmark")
    ap.add_argument("--width", type=float, default=None, help="backbone width multiplier (default 0.25; 1.0 with --full)")
    ap.add_argument("--head-width", type=float, default=None, help="head width multiplier (default 0.125; 1.0 with --full)")
    ap.add_argument("--size", type=int, default=None, help="export/reference input side (default 160; 320 with --full)")
    ap.add_argument("--opset", type=int, default=11)
    ap.add_argument("--out", default=None, help="output .onnx path")
    ap.add_argument("--ref", default=None, help="folder for reference .npy data (default: next to the model unless --full)")
    a = ap.parse_args(argv)
    if a.full:
        width = a.width if a.width is not None else 1.0
        head_width = a.head_width if a.head_width is not None else width
        size = a.size or 320
        out = a.out or os.path.join(ROOT, "out", "bench", "yolov3_mbv1_torch_full.onnx")
        ref = a.ref
    else:
        width = a.width if a.width is not None else 0.25
        head_width = a.head_width if a.head_width is not None else 0.125
        size = a.size or 160
        out = a.out or os.path.join(HERE, "torch_w025.onnx")
        ref = a.ref or os.path.splitext(out)[0]
    net = build(width, head_width, size)
    print(f"YOLOv3-MobileNetV1 width {width} head {head_width}: "
          f"{sum(p.numel() for p in net.parameters())} parameters; torch {torch.__version__}", flush=True)
    export(net, out, size, a.opset)
    if ref:
        write_reference(out, ref, size)


if __name__ == "__main__":
    main(sys.argv[1:])
