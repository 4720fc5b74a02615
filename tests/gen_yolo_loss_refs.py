#!/usr/bin/env python3
"""Reference values for tests/test_yolo_loss.c (trainer/yolo_loss.c, PaddleDetection's YOLOv3 loss).

The loss is written again here with numpy, vectorised over cells and anchors, from the definition of
Paddle's yolov3_loss (reference/method.md 1.5; conventions listed in trainer/yolo_loss.c's header:
ignore region first, then gts in order, positives overwrite the ignore mark, duplicates sum their box
and class terms and the later score wins the objectness mask, label smoothing delta = min(1/C, 1/40)),
without the C loops. It also computes the analytic gradient (the exact derivative of that value).

The inputs are built from a splitmix64 stream that tests/test_yolo_loss.c reproduces bit for bit
(same generator, same order of draws, same "planting" of near-gt predictions so that the ignore region
is exercised). The case: anchors/masks/strides of DESIGN.md (VOC YOLOv3), C = 3 classes, N = 2 images
of 128 x 128 (maps 4x4, 8x8, 16x16), 9 gts incl. an invalid one, a duplicate cell and mixup scores.

    .venv/bin/python tests/gen_yolo_loss_refs.py     # prints the C block for the test
"""
import numpy as np

M64 = (1 << 64) - 1


class SplitMix:
    def __init__(self, seed):
        self.s = seed & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def uniform(self, amp):
        """uniform in [-amp, amp), exactly as the C test computes it"""
        return amp * (2.0 * float(self.next() >> 11) / 9007199254740992.0 - 1.0)


ANCHORS = [[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198], [373, 326]]
MASKS = [[6, 7, 8], [3, 4, 5], [0, 1, 2]]
DS = [32, 16, 8]
C = 3
N = 2
IN_H = IN_W = 128
IGNORE = 0.7
SEED = 0x5EED0123

# (x, y, w, h, label, score) per image; float32 like struct od_gt_box
GTS = [
    [(0.50, 0.50, 0.90, 0.80, 2, 1.0),    # big: anchor 6 (stride 32)
     (0.30, 0.40, 0.40, 0.45, 0, 0.6),    # anchor 4/5 region (stride 16)
     (0.70, 0.20, 0.10, 0.12, 1, 1.0),    # small (stride 8)
     (0.72, 0.23, 0.11, 0.10, 2, 0.35),   # same 16x16 cell as the previous one, same anchor: duplicate
     (0.15, 0.85, 0.25, 0.50, 1, 1.0)],
    [(0.40, 0.60, 0.30, 0.20, 0, 0.8),
     (0.90, 0.10, 0.00, 0.30, 1, 1.0),    # zero width: invalid, ignored everywhere
     (0.62, 0.33, 0.55, 0.95, 2, 1.0),
     (0.05, 0.05, 0.06, 0.08, 1, 0.5)],
]


def f32(v):
    return float(np.float32(v))


def gts_f32():
    return [[(f32(x), f32(y), f32(w), f32(h), l, f32(s)) for (x, y, w, h, l, s) in img] for img in GTS]


def logit(p):
    return np.log(p / (1.0 - p))


def make_maps(gts):
    """the maps: uniform(-2, 2) for every element (output by output, C order), then planted
    predictions near each valid gt: for gt t of image n, output i, mask position a with
    (t + a + i) even, at the gt's cell: x, y = logit(clip(frac, .05, .95)) + d, w, h = log(g*in/anchor) + d,
    d = +-(0.02 + 0.13 |u|) from the stream (order n, t, i, a, then x y w h)"""
    rng = SplitMix(SEED)
    maps = []
    for i, ds in enumerate(DS):
        h, w = IN_H // ds, IN_W // ds
        shape = (N, len(MASKS[i]) * (5 + C), h, w)
        flat = np.array([rng.uniform(2.0) for _ in range(int(np.prod(shape)))])
        maps.append(flat.reshape(shape))
    for n in range(N):
        for t, (gx, gy, gw, gh, _, _) in enumerate(gts[n]):
            if gw < 1e-6 or gh < 1e-6:
                continue
            for i, ds in enumerate(DS):
                h, w = IN_H // ds, IN_W // ds
                for a, k in enumerate(MASKS[i]):
                    if (t + a + i) % 2:
                        continue
                    gi, gj = min(int(gx * w), w - 1), min(int(gy * h), h - 1)
                    tx = logit(min(max(gx * w - gi, 0.05), 0.95))
                    ty = logit(min(max(gy * h - gj, 0.05), 0.95))
                    tw = np.log(gw * IN_W / ANCHORS[k][0])
                    th = np.log(gh * IN_H / ANCHORS[k][1])
                    base = a * (5 + C)
                    for ch, v in enumerate((tx, ty, tw, th)):
                        u = rng.uniform(1.0)
                        d = (0.02 + 0.13 * abs(u)) * (1.0 if u >= 0 else -1.0)
                        maps[i][n, base + ch, gj, gi] = v + d
    return maps


def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def bce(z, p):
    # log(1 + e^z) - z p, written differently from the C code
    return np.logaddexp(0.0, z) - z * p


def iou_cwh(x1, y1, w1, h1, x2, y2, w2, h2):
    ow = np.minimum(x1 + w1 / 2, x2 + w2 / 2) - np.maximum(x1 - w1 / 2, x2 - w2 / 2)
    oh = np.minimum(y1 + h1 / 2, y2 + h2 / 2) - np.maximum(y1 - h1 / 2, y2 - h2 / 2)
    inter = np.where((ow < 0) | (oh < 0), 0.0, ow * oh)
    return inter / (w1 * h1 + w2 * h2 - inter)


def yolo_loss(maps, gts, smooth):
    total = 0.0
    grads, stats = [], []
    an = np.array(ANCHORS, dtype=np.float64)
    delta = min(1.0 / C, 1.0 / 40.0) if smooth else 0.0
    margin = np.inf
    for i, X in enumerate(maps):
        n_img, _, h, w = X.shape
        A = len(MASKS[i])
        X5 = X.reshape(n_img, A, 5 + C, h, w)
        G = np.zeros_like(X5)
        aw = an[MASKS[i], 0][None, :, None, None]
        ah = an[MASKS[i], 1][None, :, None, None]
        px = (np.arange(w)[None, None, None, :] + sig(X5[:, :, 0])) / w
        py = (np.arange(h)[None, None, :, None] + sig(X5[:, :, 1])) / h
        pw = np.exp(X5[:, :, 2]) * aw / IN_W
        ph = np.exp(X5[:, :, 3]) * ah / IN_H
        out_loss, n_ign, n_pos = 0.0, 0, 0
        for n in range(n_img):
            valid = [g for g in gts[n] if g[2] >= 1e-6 and g[3] >= 1e-6]
            g_arr = np.array([g[:4] for g in valid])
            ious = iou_cwh(px[n][..., None], py[n][..., None], pw[n][..., None], ph[n][..., None],
                           g_arr[:, 0], g_arr[:, 1], g_arr[:, 2], g_arr[:, 3])
            best = np.maximum(ious.max(axis=-1), 0.0)
            margin = min(margin, np.abs(best - IGNORE).min())
            objmask = np.where(best > IGNORE, -1.0, 0.0)
            loss = 0.0
            for (gx, gy, gw, gh, label, score) in valid:
                inter = np.minimum(an[:, 0] / IN_W, gw) * np.minimum(an[:, 1] / IN_H, gh)
                a_iou = inter / (an[:, 0] / IN_W * an[:, 1] / IN_H + gw * gh - inter)
                k = int(np.argmax(a_iou))
                if k not in MASKS[i]:
                    continue
                m = MASKS[i].index(k)
                gi, gj = min(int(gx * w), w - 1), min(int(gy * h), h - 1)
                tgt = np.array([gx * w - gi, gy * h - gj, np.log(gw * IN_W / an[k, 0]), np.log(gh * IN_H / an[k, 1])])
                sc = (2.0 - gw * gh) * score
                z = X5[n, m, :4, gj, gi]
                loss += sc * (bce(z[0], tgt[0]) + bce(z[1], tgt[1]) + abs(z[2] - tgt[2]) + abs(z[3] - tgt[3]))
                G[n, m, 0, gj, gi] += sc * (sig(z[0]) - tgt[0])
                G[n, m, 1, gj, gi] += sc * (sig(z[1]) - tgt[1])
                G[n, m, 2, gj, gi] += sc * (1.0 if z[2] > tgt[2] else -1.0)
                G[n, m, 3, gj, gi] += sc * (1.0 if z[3] > tgt[3] else -1.0)
                margin = min(margin, abs(z[2] - tgt[2]), abs(z[3] - tgt[3]))
                p = np.full(C, delta)
                p[label] = 1.0 - delta
                zc = X5[n, m, 5:, gj, gi]
                loss += score * np.sum(bce(zc, p))
                G[n, m, 5:, gj, gi] += score * (sig(zc) - p)
                objmask[m, gj, gi] = score
            zo = X5[n, :, 4]
            pos = objmask > 1e-5
            neg = (objmask <= 1e-5) & (objmask > -0.5)
            loss += np.sum(np.where(pos, bce(zo, 1.0) * objmask, 0.0)) + np.sum(np.where(neg, bce(zo, 0.0), 0.0))
            G[n, :, 4] += np.where(pos, (sig(zo) - 1.0) * objmask, 0.0) + np.where(neg, sig(zo), 0.0)
            out_loss += loss
            n_ign += int(np.sum(objmask < -0.5))
            n_pos += int(np.sum(pos))
        total += out_loss / n_img
        grads.append((G / n_img).reshape(X.shape))
        stats.append((n_ign, n_pos))
    return total, grads, stats, margin


def main():
    gts = gts_f32()
    maps = make_maps(gts)
    print("/* ---- generated by tests/gen_yolo_loss_refs.py: do not edit ---- */")
    for smooth in (False, True):
        v, grads, stats, margin = yolo_loss(maps, gts, smooth)
        tag = "smooth" if smooth else "plain"
        print(f"/* {tag}: ignored/positive cells per output {stats}; smallest margin to the ignore threshold "
              f"or an L1 kink {margin:.3g} */")
        print(f"static const double ref_value_{tag} = {float(v)!r};")
        sums = []
        for g in grads:
            flat = g.ravel()
            wts = (np.arange(flat.size) % 7) - 3.0
            sums.append((float(np.sum(flat)), float(np.sum(flat * wts)), float(np.sum(np.abs(flat)))))
        print(f"static const double ref_grad_{tag}[3][3] = {{ /* per output: sum, sum * ((k % 7) - 3), sum |g| */")
        for s in sums:
            print(f"    {{{s[0]!r}, {s[1]!r}, {s[2]!r}}},")
        print("};")
    print("/* ---- end of generated block ---- */")


if __name__ == "__main__":
    main()
