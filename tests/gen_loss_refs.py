#!/usr/bin/env python3
"""Reference values for tests/test_loss.c (the distillation losses of trainer/loss*.c).

Each loss is written here again with numpy from its published definition (PaddleSlim l2_loss /
soft_label_loss / fsp_loss, PyTorch's kl_div batchmean and SmoothL1Loss and cosine_similarity,
mmrazor's ChannelWiseDivergence / PKDLoss / ATLoss, PaddleDetection's split_distill, FM-NMS as
documented in trainer/loss_yolo.c), vectorised, without looking at the C loops. Inputs are drawn
from a fixed seed and rounded to 4 decimals so that the float and double copies in C are the
same numbers. Prints the C block that sits between the GENERATED markers in tests/test_loss.c:

    .venv/bin/python tests/gen_loss_refs.py > /tmp/block.c   # then paste
"""
import numpy as np

rng = np.random.default_rng(20240611)


def rnd(shape, scale=1.0):
    return np.round(rng.normal(0.0, scale, size=shape), 4)


def log_softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def bce(z, p):
    return np.maximum(z, 0) - z * p + np.log1p(np.exp(-np.abs(z)))


def l2(s, t):
    return np.mean((s - t) ** 2)


def l1(s, t):
    return np.mean(np.abs(s - t))


def smooth_l1(s, t, beta):
    d = np.abs(s - t)
    return np.mean(np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta))


def kd(s, t, tau, axis):
    # torch: kl_div(log_softmax(s/tau), softmax(t/tau), batchmean) * tau^2 for [N, C]; for maps the
    # mean runs over every non-class position (see trainer/loss_softmax.c)
    ls, lt = log_softmax(s / tau, axis), log_softmax(t / tau, axis)
    kl = np.sum(np.exp(lt) * (lt - ls), axis=axis)
    return tau * tau * np.mean(kl)


def soft_label(s, t, tau_s, tau_t, axis):
    ls, pt = log_softmax(s / tau_s, axis), np.exp(log_softmax(t / tau_t, axis))
    return np.mean(-np.sum(pt * ls, axis=axis))


def cosine(s, t, eps=1e-8):
    dot = np.sum(s * t, axis=1)
    ns, nt = np.sqrt(np.sum(s * s, axis=1)), np.sqrt(np.sum(t * t, axis=1))
    return np.mean(1.0 - dot / (np.maximum(ns, eps) * np.maximum(nt, eps)))


def cwd(s, t, tau):
    n, c = s.shape[:2]
    ss, tt = s.reshape(n * c, -1) / tau, t.reshape(n * c, -1) / tau
    lt, ls = log_softmax(tt, 1), log_softmax(ss, 1)
    return tau * tau * np.sum(np.exp(lt) * (lt - ls)) / (n * c)


def pkd(s, t):
    def norm(f):
        c = f.shape[1]
        g = np.moveaxis(f, 1, 0).reshape(c, -1)
        mean = g.mean(axis=1, keepdims=True)
        std = g.std(axis=1, ddof=1, keepdims=True)
        return (g - mean) / (std + 1e-6)

    return np.mean((norm(s) - norm(t)) ** 2) / 2


def at(s, t):
    def amap(f):
        v = np.mean(f ** 2, axis=1).reshape(f.shape[0], -1)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    return np.mean((amap(s) - amap(t)) ** 2)


def fsp(s1, s2, t1, t2):
    def g(x, y):
        n, c1 = x.shape[:2]
        c2 = y.shape[1]
        hw = np.prod(x.shape[2:])
        return np.einsum("nip,njp->nij", x.reshape(n, c1, -1), y.reshape(n, c2, -1)) / hw

    return np.mean((g(s1, s2) - g(t1, t2)) ** 2)


def fm_nms_keep(t, a_n, c_n, k):
    """keep mask [N, A, H, W]: suppressed when a same-class candidate within the KxK window (any
    anchor) has a higher conf, or the same conf and a smaller (a*H + h)*W + w."""
    n, _, h, w = t.shape
    m = t.reshape(n, a_n, 5 + c_n, h, w)
    cls = np.argmax(m[:, :, 5:], axis=2)
    conf = sig(m[:, :, 4]) * sig(np.max(m[:, :, 5:], axis=2))
    lin = np.arange(a_n * h * w).reshape(a_n, h, w)
    r = k // 2
    suppressed = np.zeros((n, a_n, h, w), dtype=bool)
    for a2 in range(a_n):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                for y in range(h):
                    for x in range(w):
                        y2, x2 = y + dy, x + dx
                        if not (0 <= y2 < h and 0 <= x2 < w):
                            continue
                        for a in range(a_n):
                            if (a2, y2, x2) == (a, y, x):
                                continue
                            same = cls[:, a2, y2, x2] == cls[:, a, y, x]
                            hi = conf[:, a2, y2, x2] > conf[:, a, y, x]
                            tie = (conf[:, a2, y2, x2] == conf[:, a, y, x]) & (lin[a2, y2, x2] < lin[a, y, x])
                            suppressed[:, a, y, x] |= same & (hi | tie)
    return ~suppressed


def yolo_split(s, t, a_n, c_n, keep=None):
    n, _, h, w = s.shape
    S = s.reshape(n, a_n, 5 + c_n, h, w)
    T = t.reshape(n, a_n, 5 + c_n, h, w)
    wobj = sig(T[:, :, 4])
    tgt = (T[:, :, 4] > 0).astype(float)
    if keep is not None:
        wobj = wobj * keep
        tgt = tgt * keep
    reg = (bce(S[:, :, 0], sig(T[:, :, 0])) + bce(S[:, :, 1], sig(T[:, :, 1]))
           + np.abs(S[:, :, 2] - T[:, :, 2]) + np.abs(S[:, :, 3] - T[:, :, 3])) * wobj
    cls = bce(S[:, :, 5:], sig(T[:, :, 5:])) * wobj[:, :, None]
    obj = bce(S[:, :, 4], tgt)
    return np.mean(reg) + np.mean(cls) + np.mean(obj)


def c_array(name, a):
    vals = [repr(float(v)) for v in a.ravel()]
    rows = [", ".join(vals[i:i + 8]) for i in range(0, len(vals), 8)]
    return f"static const double {name}[] = {{\n    " + ",\n    ".join(rows) + ",\n};"


cases = []  # (name, kind-enum, params C initialiser, [student arrays], [teacher arrays], value)


def add(name, kind, params, S, T, value):
    cases.append((name, kind, params, S, T, float(value)))


s, t = rnd((2, 3)), rnd((2, 3))
add("l2", "OD_LOSS_L2", "", [s], [t], l2(s, t))
s, t = rnd((2, 3)), rnd((2, 3))
add("l1", "OD_LOSS_L1", "", [s], [t], l1(s, t))
s, t = rnd((2, 5)), rnd((2, 5))
add("smooth_l1_beta0.5", "OD_LOSS_SMOOTH_L1", ".beta = 0.5", [s], [t], smooth_l1(s, t, 0.5))
s, t = rnd((3, 5), 2.0), rnd((3, 5), 2.0)
add("kd_logits_tau2", "OD_LOSS_KD", ".temperature = 2", [s], [t], kd(s, t, 2.0, -1))
s, t = rnd((2, 3, 2, 2), 2.0), rnd((2, 3, 2, 2), 2.0)
add("kd_nchw_axis1_tau3", "OD_LOSS_KD", ".temperature = 3, .axis = 1", [s], [t], kd(s, t, 3.0, 1))
s, t = rnd((3, 4), 2.0), rnd((3, 4), 2.0)
add("soft_label_ts2_tt4", "OD_LOSS_SOFT_LABEL", ".temperature = 2, .teacher_temperature = 4", [s], [t],
    soft_label(s, t, 2.0, 4.0, -1))
s, t = rnd((2, 4, 3), 2.0), rnd((2, 4, 3), 2.0)
add("soft_label_axis0", "OD_LOSS_SOFT_LABEL", ".axis = 0", [s], [t], soft_label(s, t, 1.0, 1.0, 0))
s, t = rnd((2, 3, 2, 2)), rnd((2, 3, 2, 2))
add("cosine", "OD_LOSS_COSINE", "", [s], [t], cosine(s, t))
s, t = rnd((2, 3, 2, 3), 2.0), rnd((2, 3, 2, 3), 2.0)
add("cwd_tau2", "OD_LOSS_CWD", ".temperature = 2", [s], [t], cwd(s, t, 2.0))
s, t = rnd((2, 3, 2, 2)), rnd((2, 3, 2, 2), 3.0) + 1.0
add("pkd", "OD_LOSS_PKD", "", [s], [t], pkd(s, t))
s, t = rnd((2, 3, 2, 3)), rnd((2, 3, 2, 3))
add("at", "OD_LOSS_AT", "", [s], [t], at(s, t))
s1, s2, t1, t2 = rnd((2, 2, 2, 3)), rnd((2, 3, 2, 3)), rnd((2, 2, 3, 3)), rnd((2, 3, 3, 3))
add("fsp_teacher_hw_differs", "OD_LOSS_FSP", "", [s1, s2], [t1, t2], fsp(s1, s2, t1, t2))
s, t = rnd((2, 14, 3, 4), 1.5), rnd((2, 14, 3, 4), 1.5)
add("yolo_split_a2_c2", "OD_LOSS_YOLO_SPLIT", ".num_anchors = 2, .num_classes = 2", [s], [t], yolo_split(s, t, 2, 2))
keep = fm_nms_keep(t, 2, 2, 3)
add("yolo_split_a2_c2_fm_nms3", "OD_LOSS_YOLO_SPLIT", ".num_anchors = 2, .num_classes = 2, .fm_nms = true, .fm_nms_kernel = 3",
    [s], [t], yolo_split(s, t, 2, 2, keep))
s, t = rnd((1, 27, 4, 5), 1.5), rnd((1, 27, 4, 5), 1.5)
keep1 = fm_nms_keep(t, 3, 4, 1)
add("yolo_split_a3_c4_fm_nms1", "OD_LOSS_YOLO_SPLIT", ".num_anchors = 3, .num_classes = 4, .fm_nms = true, .fm_nms_kernel = 1",
    [s], [t], yolo_split(s, t, 3, 4, keep1))

print("/* BEGIN GENERATED by tests/gen_loss_refs.py (numpy formulas written independently of trainer/) */")
for i, (name, kind, params, S, T, value) in enumerate(cases):
    for k, a in enumerate(S):
        print(c_array(f"r{i}_s{k}", a))
    for k, a in enumerate(T):
        print(c_array(f"r{i}_t{k}", a))
    sets = "".join(f"\n  p->{f.strip().lstrip('.')};" for f in params.split(",") if f.strip())
    print(f"static void r{i}_params(struct od_loss_params *p) {{\n  od_loss_params_default({kind}, p);{sets}\n}}")
print("static const struct ref_case ref_cases[] = {")
for i, (name, kind, params, S, T, value) in enumerate(cases):
    def shp(a):
        return f"{len(a.shape)}, {{{', '.join(str(d) for d in a.shape)}}}"
    tens = lambda side, arrs: ", ".join(f"{{r{i}_{side}{k}, {shp(a)}}}" for k, a in enumerate(arrs))
    print(f'  {{"{name}", r{i}_params, {len(S)},')
    print(f"   {{{tens('s', S)}}},")
    print(f"   {{{tens('t', T)}}},")
    print(f"   {value!r}}},")
print("};")
# the FM-NMS masks of the two FM-NMS cases, [N, A, H, W]
for name, m in (("fm_keep_a2_c2_k3", keep), ("fm_keep_a3_c4_k1", keep1)):
    v = [str(int(x)) for x in m.ravel()]
    rows = [", ".join(v[i:i + 24]) for i in range(0, len(v), 24)]
    print(f"static const unsigned char {name}[] = {{\n    " + ",\n    ".join(rows) + ",\n};")
print("/* END GENERATED */")
