"""Exports a PaddleDetection-style YOLOv3-MobileNetV1 inference model (VOC: 20 classes) from PaddlePaddle
through paddle2onnx, post-processing included, as PaddleDetection's dygraph export does:

  inputs   image [N,3,H,W] float32, im_shape [N,2] float32 (resized h,w), scale_factor [N,2] float32
  network  MobileNetV1 (conv-bn-relu, depthwise-separable; `scale` = --width), YOLOv3 FPN (5-conv blocks,
           3x3 tip, 1x1 output conv with bias -> 75 channels; route 1x1 conv, nearest upsample x2, concat)
  decode   origin_shape = cast(im_shape / scale_factor, int32) (ppdet YOLOBox), then
           paddle.vision.ops.yolo_box per level (anchors of the VOC/COCO config, conf_thresh 0.005,
           downsample 32/16/8, clip_bbox), boxes concatenated [N,M,4], scores transposed and concatenated [N,C,M]
  nms      multiclass_nms3 (ppdet MultiClassNMS of the yolov3 configs: score_threshold 0.01, nms_top_k 1000,
           keep_top_k 100, nms_threshold 0.45, background_label -1, normalized False as in the static-era
           yolov3_mobilenet_v1_voc.yml)
  outputs  bbox [M,6] (label, score, x1, y1, x2, y2) and bbox_num [N] int32

The layer is converted with paddle.jit.save (PIR program) and paddle2onnx.export(opset_version=11,
optimize_tool="None": the C++ exporter's own output, weights as Constant nodes, no Polygraphy folding).

Weights are random (seeded); batch-norm statistics are calibrated on a random batch (gamma in [0.5, 1],
beta in [0.2, 0.6], as export_torch.py explains), and the output convs are rescaled so that, as with
a trained detector, only a few anchors pass the score threshold (LOGIT_TARGETS below).

Default (committed, ~2.4 MB): backbone 0.25, head 0.125, input 160x160, written to
models/yolov3_mbv1/paddle_w025.onnx with reference data in paddle_w025/ (inputs and ONNX Runtime CPU
outputs as .npy, read by tests/real_models.py). Also checks ONNX Runtime's detections against Paddle's own.

Needs paddlepaddle + paddle2onnx + onnxruntime (an exporters venv, never CI):
  /work/exporters-venv/bin/pip install paddlepaddle paddle2onnx onnx onnxruntime
  /work/exporters-venv/bin/python models/yolov3_mbv1/export_paddle.py
"""
import argparse
import os
import shutil
import sys
import tempfile

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NC = 20
NA = 3
OUT_CH = NA * (5 + NC)
# PaddleDetection yolov3 configs: anchors and masks (level 0 = stride 32)
ANCHORS = [[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198], [373, 326]]
ANCHOR_MASKS = [[6, 7, 8], [3, 4, 5], [0, 1, 2]]
STRIDES = [32, 16, 8]


def scaled(c, w):
    return max(8, int(c * w))


class ConvBN(nn.Layer):
    """conv (no bias) + batch_norm + relu / leaky_relu(0.1): ppdet's ConvBNLayer."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act="relu"):
        super().__init__()
        self.conv = nn.Conv2D(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias_attr=False)
        self.bn = nn.BatchNorm2D(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act == "relu" else F.leaky_relu(x, 0.1)


class MobileNetV1(nn.Layer):
    def __init__(self, scale=1.0):
        super().__init__()
        cfg = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
               (256, 512, 2)] + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
        self.conv1 = ConvBN(3, scaled(32, scale), 3, 2)
        self.dws = nn.LayerList()
        for ci, co, s in cfg:
            ci, co = scaled(ci, scale), scaled(co, scale)
            self.dws.append(nn.Sequential(ConvBN(ci, ci, 3, s, groups=ci), ConvBN(ci, co, 1)))
        self.taps = (4, 10, 12)  # ppdet feature_maps [4, 6, 13]: C3 256, C4 512, C5 1024 (x scale)
        self.channels = [scaled(c, scale) for c in (256, 512, 1024)]

    def forward(self, x):
        x = self.conv1(x)
        feats = []
        for i, b in enumerate(self.dws):
            x = b(x)
            if i in self.taps:
                feats.append(x)
        return feats


class YoloV3Head(nn.Layer):
    """ppdet YOLOv3FPN (YoloDetBlock: conv0..conv3, route, tip) + YOLOv3Head (1x1 conv with bias)."""

    def __init__(self, in_channels, width=1.0):
        super().__init__()
        c3, c4, c5 = in_channels
        self.blocks, self.tips, self.outs, self.routes = (nn.LayerList() for _ in range(4))
        cin = c5
        for lvl, ch in enumerate((512, 256, 128)):
            ch = scaled(ch, width)
            self.blocks.append(nn.Sequential(
                ConvBN(cin, ch, 1, act="leaky"), ConvBN(ch, ch * 2, 3, act="leaky"),
                ConvBN(ch * 2, ch, 1, act="leaky"), ConvBN(ch, ch * 2, 3, act="leaky"),
                ConvBN(ch * 2, ch, 1, act="leaky")))
            self.tips.append(ConvBN(ch, ch * 2, 3, act="leaky"))
            self.outs.append(nn.Conv2D(ch * 2, OUT_CH, 1))
            if lvl < 2:
                self.routes.append(ConvBN(ch, ch // 2, 1, act="leaky"))
                cin = ch // 2 + (c4 if lvl == 0 else c3)

    def forward(self, feats):
        c3, c4, c5 = feats
        skips = [c4, c3]
        outs, x = [], c5
        for lvl in range(3):
            r = self.blocks[lvl](x)
            outs.append(self.outs[lvl](self.tips[lvl](r)))
            if lvl < 2:
                up = F.interpolate(self.routes[lvl](r), scale_factor=2.0, mode="nearest")
                x = paddle.concat([up, skips[lvl]], axis=1)
        return outs


class YoloV3Infer(nn.Layer):
    """The inference model PaddleDetection exports: network + YOLOBox decode + MultiClassNMS."""

    def __init__(self, width=1.0, head_width=1.0, with_nms=True):
        super().__init__()
        self.backbone = MobileNetV1(width)
        self.head = YoloV3Head(self.backbone.channels, head_width)
        self.with_nms = with_nms

    def forward(self, image, im_shape, scale_factor):
        outs = self.head(self.backbone(image))
        origin_shape = paddle.cast(im_shape / scale_factor, "int32")
        boxes, scores = [], []
        for out, mask, ds in zip(outs, ANCHOR_MASKS, STRIDES):
            anchors = sum([ANCHORS[i] for i in mask], [])
            b, s = paddle.vision.ops.yolo_box(out, origin_shape, anchors, NC, conf_thresh=0.005,
                                              downsample_ratio=ds, clip_bbox=True, scale_x_y=1.0)
            boxes.append(b)
            scores.append(paddle.transpose(s, perm=[0, 2, 1]))
        yolo_boxes = paddle.concat(boxes, axis=1)
        yolo_scores = paddle.concat(scores, axis=2)
        if not self.with_nms:
            return yolo_boxes, yolo_scores
        # ppdet/modeling/ops.py multiclass_nms (dygraph / to_static path): the multiclass_nms3 kernel
        bbox, _, bbox_num = paddle._C_ops.multiclass_nms3(yolo_boxes, yolo_scores, None, 0.01, 1000, 100, 0.45,
                                                          False, 1.0, -1)
        return bbox, bbox_num


def make_inputs(size, seed=1):
    rng = np.random.default_rng(seed)
    img = rng.random((1, 3, size, size), dtype=np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    image = ((img - mean) / std).astype(np.float32)
    # a 320x640 (h, w) picture resized to size x size: origin_shape = im_shape / scale_factor = [320, 640]
    # exactly (a ratio that is not exact in float32 would truncate to 639 in the int32 cast, as in ppdet)
    im_shape = np.array([[size, size]], np.float32)
    scale_factor = np.array([[size / 320.0, size / 640.0]], np.float32)
    return {"image": image, "im_shape": im_shape, "scale_factor": scale_factor}


# Targets for the output-conv logits (per channel kind: x, y, w, h, objectness, classes), mean and std
# over the calibration batch. Chosen so that, on the reference input, ~60 (anchor, class) candidates
# pass the 0.01 score threshold and keep_top_k (100) does not bind: no score of the output lies within
# 2.5e-3 (relative) of the threshold or 8e-4 of another output score, so the detections do not hinge on
# float32 rounding (a different runtime's ~1e-5 relative error cannot change which boxes are kept).
LOGIT_TARGETS = {"box": (0.0, 1.0), "obj": (-6.0, 1.5), "cls": (-4.0, 1.0)}


def build(width, head_width, size, with_nms=True, seed=0):
    paddle.seed(seed)
    net = YoloV3Infer(width, head_width, with_nms)
    rng = np.random.default_rng(seed)
    for layer in net.sublayers():
        if isinstance(layer, nn.BatchNorm2D):
            n = layer.weight.shape[0]
            layer.weight.set_value(rng.uniform(0.5, 1.0, n).astype(np.float32))
            layer.bias.set_value(rng.uniform(0.2, 0.6, n).astype(np.float32))
            layer._momentum = 0.0  # running = batch statistics of the calibration batch
    calib = paddle.to_tensor(np.concatenate([make_inputs(size, seed + 100 + i)["image"] for i in range(4)]))
    net.train()
    with paddle.no_grad():
        net.head(net.backbone(calib))
    for layer in net.sublayers():
        if isinstance(layer, nn.BatchNorm2D):
            layer._momentum = 0.9
    net.eval()
    # output convs: rescale each channel to the target logit statistics (a trained detector is confident
    # about few anchors; random weights would make every anchor a candidate)
    with paddle.no_grad():
        logits = [t.numpy() for t in net.head(net.backbone(calib))]
    mean_t, std_t = np.zeros(OUT_CH, np.float32), np.ones(OUT_CH, np.float32)
    for a in range(NA):
        k = a * (5 + NC)
        mean_t[k:k + 4], std_t[k:k + 4] = LOGIT_TARGETS["box"]
        mean_t[k + 4], std_t[k + 4] = LOGIT_TARGETS["obj"]
        mean_t[k + 5:k + 5 + NC], std_t[k + 5:k + 5 + NC] = LOGIT_TARGETS["cls"]
    for out, l in zip(net.head.outs, logits):
        m, sd = l.mean(axis=(0, 2, 3)), l.std(axis=(0, 2, 3))
        gain = std_t / sd
        out.weight.set_value((out.weight.numpy() * gain[:, None, None, None]).astype(np.float32))
        out.bias.set_value(((out.bias.numpy() - m) * gain + mean_t).astype(np.float32))
    return net


def export(net, path, size, opset):
    import paddle2onnx
    from paddle.static import InputSpec
    spec = [InputSpec([None, 3, size, size], "float32", "image"),
            InputSpec([None, 2], "float32", "im_shape"),
            InputSpec([None, 2], "float32", "scale_factor")]
    tmp = tempfile.mkdtemp()
    try:
        paddle.jit.save(net, os.path.join(tmp, "model"), input_spec=spec)
        model_file = os.path.join(tmp, "model.json")
        if not os.path.exists(model_file):
            model_file = os.path.join(tmp, "model.pdmodel")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if os.path.exists(path):
            os.remove(path)
        paddle2onnx.export(model_file, os.path.join(tmp, "model.pdiparams"), path, opset_version=opset,
                           auto_upgrade_opset=False, enable_onnx_checker=True, optimize_tool="None")
        if not os.path.exists(path):
            raise RuntimeError("paddle2onnx wrote no model (see its log above)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("wrote", path, os.path.getsize(path), "bytes", flush=True)


def write_reference(net, model_path, ref_dir, size):
    """Inputs and ONNX Runtime's CPU outputs as .npy (names = graph names); compares with Paddle."""
    import onnxruntime as ort
    os.makedirs(ref_dir, exist_ok=True)
    feeds = make_inputs(size)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    outs = sess.run(None, {k: feeds[k] for k in names})
    for k in names:
        np.save(os.path.join(ref_dir, "input_" + k + ".npy"), feeds[k])
    for o, v in zip(sess.get_outputs(), outs):
        np.save(os.path.join(ref_dir, "output_" + o.name + ".npy"), v)
        print(f"  {o.name}: {v.dtype} {list(v.shape)} {v.ravel()[:6]}")
    with paddle.no_grad():
        pd = net(*[paddle.to_tensor(feeds[k]) for k in ("image", "im_shape", "scale_factor")])
    pd = [t.numpy() for t in pd]
    print(f"  paddle: bbox {list(pd[0].shape)}, bbox_num {pd[1]}; onnxruntime: bbox {list(outs[0].shape)}")
    if pd[0].shape == outs[0].shape:
        print(f"  paddle vs onnxruntime: labels equal {np.array_equal(pd[0][:, 0], outs[0][:, 0])}, "
              f"max |diff| score {np.abs(pd[0][:, 1] - outs[0][:, 1]).max():.3g}, "
              f"boxes {np.abs(pd[0][:, 2:] - outs[0][:, 2:]).max():.3g}")
    # robustness of the recorded detections against rounding (see LOGIT_TARGETS)
    net.with_nms = False
    with paddle.no_grad():
        _, sc = net(*[paddle.to_tensor(feeds[k]) for k in ("image", "im_shape", "scale_factor")])
    net.with_nms = True
    v = sc.numpy().ravel()
    thr_margin = np.abs(v[v > 0] - 0.01).min() / 0.01
    ds = np.sort(outs[0][:, 1])
    gap = (np.diff(ds) / ds[1:]).min() if len(ds) > 1 else 1.0
    print(f"  candidates over 0.01: {(v > 0.01).sum()}, detections {len(ds)} (keep_top_k 100); closest score to the "
          f"threshold {thr_margin:.2e} away, closest pair of output scores {gap:.2e} apart (relative)")
    if len(ds) >= 100 or thr_margin < 2e-4 or gap < 2e-4:  # 20x the tolerance of tests/real_models.py
        raise SystemExit("reference detections hinge on rounding: change LOGIT_TARGETS or the input seed")
    print("wrote reference data to", ref_dir, flush=True)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=float, default=0.25, help="MobileNetV1 scale")
    ap.add_argument("--head-width", type=float, default=0.125, help="YOLOv3 head channel multiplier")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--opset", type=int, default=11)
    ap.add_argument("--no-nms", action="store_true", help="stop after yolo_box (outputs boxes [N,M,4], scores [N,C,M])")
    ap.add_argument("--out", default=None)
    ap.add_argument("--ref", default=None)
    a = ap.parse_args(argv)
    out = a.out or os.path.join(HERE, "paddle_w025.onnx")
    ref = a.ref or os.path.splitext(out)[0]
    paddle.set_device("cpu")
    net = build(a.width, a.head_width, a.size, with_nms=not a.no_nms)
    print(f"YOLOv3-MobileNetV1 (paddle) width {a.width} head {a.head_width}: "
          f"{sum(int(np.prod(p.shape)) for p in net.parameters())} parameters; paddle {paddle.__version__}",
          flush=True)
    export(net, out, a.size, a.opset)
    write_reference(net, out, ref, a.size)


if __name__ == "__main__":
    main(sys.argv[1:])
