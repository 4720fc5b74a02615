"""`onnx-distill eval` end to end, against an independent Python pipeline.

The model is built here: its three YOLO head outputs are fixed random constants (plus 0 * the mean
of the image, so they depend on the input only formally). Every image therefore gets the same
normalised candidates, scaled to its own size, which Python can decode without reproducing our
image resizing. The JPEGs come from `onnx-distill make-data`; the annotations of the val images
are then rewritten here from Python's own detections (some of the best-scored kept as gts with a few pixels of jitter,
some difficult, plus boxes nothing detects), so the metric sees hits, misses, duplicates and
difficult boxes and the mAP is far from 0 and 1.
Checks:
  1. the detections the command writes (--detections) equal Python's yolo_box + multiclass NMS
     (Paddle semantics, written again here) on every image;
  2. the mAP it prints (--json) equals the VOC devkit metric of tests/gen_map_refs.py computed from
     the annotations (parsed here with xml.etree, clipped as loaders/voc.h says) and those
     detections, both 11-point and all-point, per class and mean;
  3. the text report, batch sizes that do not divide the image count, and the error messages for a
     manifest without head tensors and for heads whose channels do not fit.

usage: cli_eval.py TOOL TMPDIR"""
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_map_refs  # noqa: E402  (the numpy VOC metric)

TOOL, TMP = os.path.abspath(sys.argv[1]), os.path.abspath(os.path.join(sys.argv[2], "cli_eval"))
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)

S, C, A = 128, 4, 3
DS = [32, 16, 8]
ANCHORS = [[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198], [373, 326]]
MASKS = [[6, 7, 8], [3, 4, 5], [0, 1, 2]]


def run(args, expect_rc=0):
    p = subprocess.run([TOOL, "eval"] + args, capture_output=True, text=True, cwd=TMP)
    if p.returncode != expect_rc:
        sys.exit(f"onnx-distill eval {' '.join(args)}: exit {p.returncode}, expected {expect_rc}\n{p.stdout}\n{p.stderr}")
    return p


# ---- the data ----
subprocess.run([TOOL, "make-data", "--out", os.path.join(TMP, "data"), "--images", "60", "--size", "160",
                "--classes", str(C), "--seed", "11", "--val-fraction", "0.5"], check=True, capture_output=True)
classes = open(os.path.join(TMP, "data", "label_list.txt")).read().split()
assert len(classes) == C, classes

# ---- the model: constant heads ----
rng = np.random.default_rng(5)
heads = []
for ds in DS:
    h = S // ds
    t = np.zeros((1, A, 5 + C, h, h), np.float32)
    t[:, :, 0:2] = rng.normal(0, 1, (1, A, 2, h, h))
    t[:, :, 2:4] = rng.normal(0, 0.7, (1, A, 2, h, h))
    t[:, :, 4] = rng.uniform(-7, 3, (1, A, h, h))
    t[:, :, 5:] = rng.normal(0, 2, (1, A, C, h, h))
    heads.append(t.reshape(1, A * (5 + C), h, h))
nodes = [helper.make_node("ReduceMean", ["image"], ["m"], axes=[1, 2, 3], keepdims=1),
         helper.make_node("Mul", ["m", "zero"], ["z"])]
inits = [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]
outputs = []
for i, t in enumerate(heads):
    nodes.append(helper.make_node("Add", ["z", f"c{i}"], [f"head{i}"]))
    inits.append(helper.make_tensor(f"c{i}", TensorProto.FLOAT, list(t.shape), t.ravel().tolist()))
    outputs.append(helper.make_tensor_value_info(f"head{i}", TensorProto.FLOAT, ["N", A * (5 + C), S // DS[i], S // DS[i]]))
graph = helper.make_graph(nodes, "const_heads", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, S, S])],
                          outputs, inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(model)
onnx.save(model, os.path.join(TMP, "heads.onnx"))

manifest = {
    "teacher": {"model": "heads.onnx"}, "student": {"model": "heads.onnx"},
    "data": {"format": "voc", "root": "data", "train": "trainval.txt", "val": "test.txt", "size": S, "classes": classes},
    "pairs": [{"teacher": "head0", "student": "head0", "loss": "l2"}],
    "task_loss": {"outputs": ["head0", "head1", "head2"], "num_classes": C},
}
with open(os.path.join(TMP, "pairs.json"), "w") as f:
    json.dump(manifest, f)


# ---- Python: yolo_box + multiclass NMS (Paddle), on one image of width w, height h ----
def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def decode(w, h):
    boxes, scores = [], []
    for i, t in enumerate(heads):
        t = t.astype(np.float64).reshape(A, 5 + C, S // DS[i], S // DS[i])
        g = S // DS[i]
        for a in range(A):
            aw, ah = ANCHORS[MASKS[i][a]]
            for r in range(g):
                for c in range(g):
                    conf = sig(t[a, 4, r, c])
                    if conf < 0.005:
                        continue
                    cx = (c + sig(t[a, 0, r, c])) * w / g
                    cy = (r + sig(t[a, 1, r, c])) * h / g
                    bw = np.exp(t[a, 2, r, c]) * aw * w / S
                    bh = np.exp(t[a, 3, r, c]) * ah * h / S
                    boxes.append([max(cx - bw / 2, 0), max(cy - bh / 2, 0), min(cx + bw / 2, w - 1), min(cy + bh / 2, h - 1)])
                    scores.append(conf * sig(t[a, 5:, r, c]))
    return np.array(boxes), np.array(scores)


def iou_plus1(a, b):
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return 0.0
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    area = lambda x: (x[2] - x[0] + 1) * (x[3] - x[1] + 1)
    return iw * ih / (area(a) + area(b) - iw * ih)


_memo = {}


def expected(w, h):
    """decode + NMS for an image of w x h (the same for every image of that size)"""
    if (w, h) not in _memo:
        _memo[(w, h)] = nms(*decode(w, h))
    return _memo[(w, h)]


def nms(boxes, scores):
    kept = []  # (score, label, index)
    for c in range(C):
        idx = [k for k in range(len(boxes)) if scores[k, c] > 0.01]
        idx.sort(key=lambda k: -scores[k, c])  # stable
        idx = idx[:1000]
        sel = []
        for k in idx:
            if all(iou_plus1(boxes[k], boxes[j]) <= 0.45 for j in sel):
                sel.append(k)
        kept += [(scores[k, c], c, k) for k in sel]
    if len(kept) > 100:
        order = sorted(range(len(kept)), key=lambda q: -kept[q][0])[:100]
        kept = [kept[q] for q in sorted(order, key=lambda q: (kept[q][1], order.index(q)))]
    return [(c, s, *boxes[k]) for (s, c, k) in kept]


def load_gts(xml_path, image_index):
    root = ET.parse(xml_path).getroot()
    w, h = int(root.find("size/width").text), int(root.find("size/height").text)
    out = []
    for obj in root.findall("object"):
        name = obj.find("name").text
        if name not in classes:
            continue
        d = obj.find("difficult")
        bb = obj.find("bndbox")
        x1, y1, x2, y2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(w - 1.0, x2), min(h - 1.0, y2)
        if x2 > x1 and y2 > y1:
            out.append((image_index, classes.index(name), int(d.text) if d is not None else 0, x1, y1, x2, y2))
    return w, h, out


# ---- the val annotations, rewritten from the detections Python expects ----
XML_OBJ = """	<object>
		<name>{name}</name>
		<difficult>{diff}</difficult>
		<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>
	</object>
"""
grng = np.random.default_rng(17)
val = [x.split() for x in open(os.path.join(TMP, "data", "test.txt")) if x.strip()]
for jpg, xml in val:
    root = ET.parse(os.path.join(TMP, "data", xml)).getroot()
    w, h = int(root.find("size/width").text), int(root.find("size/height").text)
    want = expected(w, h)
    objs = []
    top = sorted(range(len(want)), key=lambda q: -want[q][1])[:10]  # gts among the best-scored detections
    for q in grng.choice(top, size=min(6, len(top)), replace=False):
        c, _, x1, y1, x2, y2 = want[q]
        j = grng.integers(-2, 3, size=4)
        box = [int(round(x1)) + j[0], int(round(y1)) + j[1], int(round(x2)) + j[2], int(round(y2)) + j[3]]
        objs.append((classes[c], int(grng.random() < 0.2), *box))
    for _ in range(int(grng.integers(0, 3))):  # boxes nothing was built to detect
        bw, bh = int(grng.integers(10, w // 2)), int(grng.integers(10, h // 2))
        x1, y1 = int(grng.integers(0, w - bw)), int(grng.integers(0, h - bh))
        objs.append((classes[int(grng.integers(0, C))], 0, x1, y1, x1 + bw, y1 + bh))
    with open(os.path.join(TMP, "data", xml), "w") as f:
        f.write(f"<annotation>\n\t<size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n")
        for (name, diff, x1, y1, x2, y2) in objs:
            f.write(XML_OBJ.format(name=name, diff=diff, x1=x1, y1=y1, x2=x2, y2=y2))
        f.write("</annotation>\n")

# ---- 1. + 2. ----
p = run(["heads.onnx", "pairs.json", "--json", "--batch", "7", "--detections", "dets.jsonl"])
result = json.loads(p.stdout)
lines = [json.loads(x) for x in open(os.path.join(TMP, "dets.jsonl"))]
assert result["images"] == len(val) == len(lines), (result["images"], len(val), len(lines))
gts, dets = [], []
n_dets = 0
for k, (entry, (jpg, xml)) in enumerate(zip(lines, val)):
    assert entry["image"].endswith(jpg), (entry["image"], jpg)
    w, h, g = load_gts(os.path.join(TMP, "data", xml), k)
    assert (entry["width"], entry["height"]) == (w, h), (entry, w, h)
    gts += g
    want = expected(w, h)
    got = entry["detections"]
    assert len(got) == len(want), f"image {k}: {len(got)} detections, Python {len(want)}"
    for a, b in zip(got, want):
        assert a[0] == b[0] and abs(a[1] - b[1]) < 1e-6 and all(abs(x - y) < 2e-3 for x, y in zip(a[2:], b[2:])), (k, a, b)
    dets += [(k, d[0], d[1], *d[2:]) for d in got]
    n_dets += len(got)
per, m11, mall = gen_map_refs.evaluate(gts, dets, C)
assert abs(result["map11"] - m11) < 1e-9 and abs(result["map_all"] - mall) < 1e-9, (result["map11"], m11, result["map_all"], mall)
for c in range(C):
    pc = result["per_class"][c]
    assert pc["class"] == classes[c]
    assert abs(pc["ap11"] - per[c][0]) < 1e-9 and abs(pc["ap_all"] - per[c][1]) < 1e-9, (c, pc, per[c])
    assert pc["n_gt"] == per[c][2] and pc["n_det"] == per[c][3], (c, pc, per[c])
assert 0.2 < m11 < 0.95 and 0.2 < mall < 0.95, f"mAP {m11}, {mall}: the annotations should give a mid-range mAP"
assert sum(1 for g in gts if g[2]) > 0, "some difficult gts"
assert result["images_per_s"] > 0 and result["network_images_per_s"] > 0
print(f"eval: {len(lines)} images, {n_dets} detections, {len(gts)} gts: mAP 11-point {m11:.4f}, all-point {mall:.4f} "
      "(the command and Python agree)")

# ---- 3. the text report, another batch, errors ----
p = run(["heads.onnx", "pairs.json", "--batch", "4"])
assert re.search(r"mAP@0\.5: 11-point %.2f, all-point %.2f" % (100 * m11, 100 * mall), p.stdout), p.stdout
assert re.search(r"images/s: [0-9.]+ end to end, [0-9.]+ network only", p.stdout), p.stdout
assert re.search(r"head 0: head0 -> value 'head0'", p.stdout), p.stdout
no_task = dict(manifest)
no_task.pop("task_loss")
with open(os.path.join(TMP, "no_task.json"), "w") as f:
    json.dump(no_task, f)
p = run(["heads.onnx", "no_task.json"], expect_rc=2)
assert "give --outputs A,B,C or task_loss.outputs" in p.stderr, p.stderr
# --outputs on a manifest without task_loss: defaults (num_classes = data.classes)
p = run(["heads.onnx", "no_task.json", "--outputs", "head0,head1,head2", "--json"])
assert abs(json.loads(p.stdout)["map11"] - m11) < 1e-9
p = run(["heads.onnx", "pairs.json", "--outputs", "head0,head2,head1"], expect_rc=2)
assert "do not come from one input size" in p.stderr, p.stderr
p = run(["heads.onnx", "pairs.json", "--set", "task_loss.num_classes=3", "--set", 'data.classes=["a","b","c"]'],
        expect_rc=2)
assert "27 channels, expected anchors x (5 + num_classes) = 3 x (5 + 3) = 24" in p.stderr or "channels" in p.stderr, p.stderr
p = run(["heads.onnx", "pairs.json", "--size", "96"], expect_rc=2)
assert "--size 96" in p.stderr, p.stderr
print("cli_eval: all checks passed")
