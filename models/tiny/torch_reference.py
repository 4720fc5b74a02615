"""The PyTorch reference run for models/tiny/reference.json: the same teacher and student (weights
read from the ONNX files), the same random batches (onnx-distill's generator re-implemented
below), the same losses and momentum SGD with the same weight-decay exclusions, for 20 steps.
Writes models/tiny/reference_losses.json, which tests/train_reference.py compares our loss curve
with (relative error <= 1e-3 per step). Needs torch (not needed in CI: the result is committed).

usage: python models/tiny/torch_reference.py"""
import json
import math
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
M64 = (1 << 64) - 1


def mix(z):  # trainer/data.c mix(): splitmix64 finaliser
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def random_batch(seed, step, shape):  # trainer/data.c fill_random()
    s = mix(seed) ^ mix((step * 0x2545F4914F6CDD1D) & M64)
    n = int(np.prod(shape))
    out = np.empty(n, np.float32)
    i = 0
    while i + 1 < n:
        u = (mix(s) >> 11) / 9007199254740992.0 + 1e-12
        s = (s + 1) & M64
        v = (mix(s) >> 11) / 9007199254740992.0
        s = (s + 1) & M64
        r = math.sqrt(-2 * math.log(u))
        out[i] = r * math.cos(6.283185307179586 * v)
        out[i + 1] = r * math.sin(6.283185307179586 * v)
        i += 2
    if n % 2:
        out[n - 1] = 0
    return out.reshape(shape)


def weights(path):
    m = onnx.load(path)
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            w[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return w


class Net(nn.Module):
    """conv3x3-BN-ReLU x3 (stride 1, 2, 2) and a 1x1 head, as models/tiny/make_tiny_pair.py builds."""

    def __init__(self, w, prefix):
        super().__init__()
        self.convs, self.bns = nn.ModuleList(), nn.ModuleList()
        for i in range(3):
            cw = torch.tensor(w[f"{prefix}c{i}.w"])
            conv = nn.Conv2d(cw.shape[1], cw.shape[0], 3, 2 if i else 1, 1, bias=False)
            conv.weight.data.copy_(cw)
            bn = nn.BatchNorm2d(cw.shape[0], eps=1e-5, momentum=0.1)
            bn.weight.data.copy_(torch.tensor(w[f"{prefix}bn{i}.s"]))
            bn.bias.data.copy_(torch.tensor(w[f"{prefix}bn{i}.b"]))
            bn.running_mean.copy_(torch.tensor(w[f"{prefix}bn{i}.m"]))
            bn.running_var.copy_(torch.tensor(w[f"{prefix}bn{i}.v"]))
            self.convs.append(conv)
            self.bns.append(bn)
        hw = torch.tensor(w[f"{prefix}head.w"])
        self.head = nn.Conv2d(hw.shape[1], hw.shape[0], 1)
        self.head.weight.data.copy_(hw)
        self.head.bias.data.copy_(torch.tensor(w[f"{prefix}head.b"]))

    def forward(self, x):
        for conv, bn in zip(self.convs, self.bns):
            x = F.relu(bn(conv(x)))
        return self.head(x)


def main():
    with open(os.path.join(HERE, "reference.json")) as f:
        cfg = json.load(f)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    teacher = Net(weights(os.path.join(HERE, "teacher.onnx")), "t_").eval()
    student = Net(weights(os.path.join(HERE, "student.onnx")), "s_").train()
    opt_cfg = cfg["train"]["optimizer"]
    decay = [p for n, p in student.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in student.named_parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": opt_cfg["weight_decay"]},
                           {"params": no_decay, "weight_decay": 0.0}], lr=opt_cfg["lr"], momentum=opt_cfg["momentum"])
    n, seed = cfg["train"]["batch_size"], cfg["train"]["seed"]
    losses = []
    for step in range(cfg["train"]["steps"]):
        x = torch.tensor(random_batch(seed, step, (n, 3, 32, 32)))
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        l2 = F.mse_loss(s, t)
        sl1 = F.smooth_l1_loss(s, t, beta=cfg["pairs"][1]["beta"])
        loss = cfg["pairs"][0]["weight"] * l2 + cfg["pairs"][1]["weight"] * sl1
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        print(f"step {step + 1}: loss {loss.item():.8g}")
    with open(os.path.join(HERE, "reference_losses.json"), "w") as f:
        json.dump({"source": "models/tiny/torch_reference.py, torch " + torch.__version__, "losses": losses}, f, indent=1)
        f.write("\n")


main()
