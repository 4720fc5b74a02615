#!/usr/bin/env python3
"""Reference values for tests/test_detect.c: the VOC detection metric, written from the VOC devkit
(VOCdevkit VOCevaldet.m: global sort of a class's detections by confidence, match each to the gt
of its image with the largest overlap, > 0.5 needed, difficult gts ignored, a gt matched twice
makes the second a false positive; VOCap.m for the all-point AP; the VOC2007 11-point AP), with
numpy, without looking at trainer/detect.c. Two deliberate choices, both PaddleDetection's:
- the 11 recall thresholds are t = j / 10 exactly (the devkit's 0:0.1:1 carries rounding, e.g.
  0.30000000000000004, which would drop a recall of exactly 0.3);
- the mean runs over the classes that have at least one non-difficult gt (AP 0 without detections).
IoU uses the devkit's inclusive pixel convention (+1).

Random cases: integer VOC-like boxes, a difficult flag on some gts, detections that are jittered
copies of gts (some with a wrong label, some duplicates) plus random false positives, float32
scores (distinct). The data and the expected APs are printed as the C block of the test:

    .venv/bin/python tests/gen_map_refs.py
"""
import numpy as np


def make_case(seed, n_images, n_classes):
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for img in range(n_images):
        W, H = int(rng.integers(200, 500)), int(rng.integers(200, 500))
        for _ in range(int(rng.integers(1, 7))):
            w, h = int(rng.integers(12, 160)), int(rng.integers(12, 160))
            x1, y1 = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
            label = int(rng.integers(0, n_classes))
            diff = int(rng.random() < 0.15)
            gts.append((img, label, diff, x1, y1, x1 + w - 1, y1 + h - 1))
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
                j = rng.integers(-12, 13, size=4)
                bx = [x1 + j[0], y1 + j[1], x1 + w - 1 + j[2], y1 + h - 1 + j[3]]
                if bx[2] <= bx[0] or bx[3] <= bx[1]:
                    continue
                dl = label if rng.random() > 0.1 else int(rng.integers(0, n_classes))
                dets.append((img, dl, float(np.float32(rng.random())), *[float(v) for v in bx]))
        for _ in range(int(rng.integers(0, 6))):
            w, h = int(rng.integers(12, 160)), int(rng.integers(12, 160))
            x1, y1 = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
            dets.append((img, int(rng.integers(0, n_classes)), float(np.float32(rng.random())),
                         float(x1), float(y1), float(x1 + w - 1), float(y1 + h - 1)))
    scores = [d[2] for d in dets]
    assert len(set(scores)) == len(scores), "tied scores: pick another seed"
    return gts, dets


def voc_ap_all(rec, prec):
    """VOCap.m"""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def voc_ap_11(rec, prec):
    ap = 0.0
    for j in range(11):
        t = j / 10.0
        p = np.max(prec[rec >= t]) if np.any(rec >= t) else 0.0
        ap += p / 11.0
    return float(ap)


def evaluate(gts, dets, n_classes):
    out = []
    for c in range(n_classes):
        cg = [g for g in gts if g[1] == c]
        npos = sum(1 for g in cg if not g[2])
        cd = [d for d in dets if d[1] == c]
        conf = np.array([d[2] for d in cd])
        order = np.argsort(-conf, kind="stable")
        detected = {id(g): False for g in cg}
        tp, fp = [], []
        for k in order:
            img, _, _, x1, y1, x2, y2 = cd[k]
            ovmax, gmax = -np.inf, None
            for g in cg:
                if g[0] != img:
                    continue
                iw = min(x2, g[5]) - max(x1, g[3]) + 1
                ih = min(y2, g[6]) - max(y1, g[4]) + 1
                if iw > 0 and ih > 0:
                    ua = (x2 - x1 + 1) * (y2 - y1 + 1) + (g[5] - g[3] + 1) * (g[6] - g[4] + 1) - iw * ih
                    ov = iw * ih / ua
                    if ov > ovmax:
                        ovmax, gmax = ov, g
            if ovmax > 0.5:
                if gmax[2]:
                    continue  # difficult: neither
                if not detected[id(gmax)]:
                    detected[id(gmax)] = True
                    tp.append(1), fp.append(0)
                else:
                    tp.append(0), fp.append(1)
            else:
                tp.append(0), fp.append(1)
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        if npos == 0:
            out.append((0.0, 0.0, 0, len(tp)))
            continue
        if len(tp) == 0:
            out.append((0.0, 0.0, npos, 0))
            continue
        rec = tp / npos
        prec = tp / (tp + fp)
        out.append((voc_ap_11(rec, prec), voc_ap_all(rec, prec), npos, len(tp)))
    valid = [o for o in out if o[2] > 0]
    m11 = float(np.mean([o[0] for o in valid])) if valid else 0.0
    mall = float(np.mean([o[1] for o in valid])) if valid else 0.0
    return out, m11, mall


def emit(name, seed, n_images, n_classes):
    gts, dets = make_case(seed, n_images, n_classes)
    per, m11, mall = evaluate(gts, dets, n_classes)
    print(f"/* {name}: seed {seed}, {n_images} images, {n_classes} classes, {len(gts)} gts, {len(dets)} detections */")
    print(f"static const float {name}_gt[][7] = {{ /* image, label, difficult, x1, y1, x2, y2 */")
    for g in gts:
        print("    {" + ", ".join(str(v) for v in g) + "},")
    print("};")
    print(f"static const float {name}_det[][7] = {{ /* image, label, score, x1, y1, x2, y2 */")
    for d in dets:
        print(f"    {{{d[0]}, {d[1]}, {np.float32(d[2])!r}f, {d[3]:g}, {d[4]:g}, {d[5]:g}, {d[6]:g}}},".replace(
            "np.float32(", "").replace(")f", "f"))
    print("};")
    print(f"static const double {name}_ap[][4] = {{ /* per class: ap11, ap_all, n_gt (non-difficult), n_det recorded */")
    for o in per:
        print(f"    {{{o[0]!r}, {o[1]!r}, {o[2]}, {o[3]}}},")
    print("};")
    print(f"static const double {name}_map[2] = {{{m11!r}, {mall!r}}};")


def main():
    print("/* ---- generated by tests/gen_map_refs.py: do not edit ---- */")
    emit("rc0", 7, 8, 4)
    emit("rc1", 2024, 20, 6)
    print("/* ---- end of generated block ---- */")


if __name__ == "__main__":
    main()
