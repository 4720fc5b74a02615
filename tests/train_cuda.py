"""The same distillation on the CPU and on a CUDA device gives the same loss curve.

usage: train_cuda.py TOOL MODELS_DIR TMPDIR [PRECISION]

TOOL is onnx-distill built with CUDA (label gpu: exit 77 when no device can be opened) or
onnx-distill-emu, the same tool on the host emulation of CUDA (label emu, runs on CI). Each case
trains the tiny teacher/student pair (models/tiny) for 15 steps on random data with
train.device=cpu, then cuda, same seed, and compares the logged loss of every step:
  - an l2 pair of equal shapes (the device step: loss, gradient norm and momentum SGD on the device);
  - the manifest as shipped, whose first pair needs a 1x1 conv adapter (host losses and optimizer);
  - a cosine loss (host) and an l2 loss (device) on the same student tensor (mixed seeds);
  - Adam with gradient clipping on the device step.
Bound: relative 1e-4 per step in fp32. Both runs do the same float32 arithmetic except for the
order of reductions (a block tree on the device, sequential or blocked on the CPU), which gives
~1e-7 relative differences per step that training amplifies slowly; 1e-4 leaves room for 15 steps
and still fails any wrong gradient (a wrong term changes the loss by > 1e-2 within a few steps).
tf32 rounds operands of convolutions and GEMMs to 10 mantissa bits (relative 1e-3 per product), so
its bound is 3e-2. The exported students must also agree (weights within the same bounds x 10)."""
import json
import os
import shutil
import subprocess
import sys

TOOL, MODELS, TMP = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(os.path.join(sys.argv[3], "train_cuda"))
PREC = sys.argv[4] if len(sys.argv) > 4 else "fp32"
TOL = {"fp32": 1e-4, "tf32": 3e-2, "bf16": 1e-1}[PREC]
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
for f in ("teacher.onnx", "student.onnx", "pairs.json"):
    shutil.copy(os.path.join(MODELS, f), TMP)


base = json.load(open(os.path.join(TMP, "pairs.json")))
failures = []


def run(name, manifest, device):
    path = os.path.join(TMP, f"{name}_{device}.json")
    m = json.loads(json.dumps(manifest))
    m["train"].update({"steps": 15, "log_every": 1, "checkpoint_every": 0, "device": device,
                       "precision": PREC if device != "cpu" else "fp32",
                       "log": os.path.join(TMP, f"{name}_{device}.jsonl"), "out_dir": os.path.join(TMP, f"{name}_{device}")})
    json.dump(m, open(path, "w"))
    r = subprocess.run([TOOL, "train", path], capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        return None, r.stderr.strip()[-2000:]
    losses = [json.loads(l)["loss"] for l in open(m["train"]["log"]) if '"loss"' in l]
    out = os.path.join(TMP, f"{name}_{device}.onnx")
    e = subprocess.run([TOOL, "export", m["train"]["out_dir"], "-o", out], capture_output=True, text=True, timeout=600)
    if e.returncode != 0:
        return None, "export: " + e.stderr.strip()[-2000:]
    return (losses, out), ""


def weights(path):
    import onnx
    from onnx import numpy_helper
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def case(name, manifest):
    cpu, err = run(name, manifest, "cpu")
    if cpu is None:
        failures.append(name)
        print(f"FAIL {name}: cpu run: {err}")
        return
    dev, err = run(name, manifest, "cuda")
    if dev is None and ("no CUDA device is visible" in err or "has no CUDA support" in err):
        print("skipped:", err)
        sys.exit(77)
    if dev is None:
        failures.append(name)
        print(f"FAIL {name}: device run: {err}")
        return
    (lc, oc), (ld, od) = cpu, dev
    worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(ld, lc)) if lc else 1
    if len(lc) != len(ld) or len(lc) < 15 or worst > TOL:
        failures.append(name)
        print(f"FAIL {name}: losses differ (worst relative {worst:.3g} > {TOL}):\n  cpu {lc}\n  dev {ld}")
        return
    wmax = 0.0
    try:
        wc, wd = weights(oc), weights(od)
        for k in wc:
            d = abs(wc[k].astype("float64") - wd[k].astype("float64"))
            wmax = max(wmax, float((d / (1 + abs(wc[k]))).max()) if wc[k].size else 0.0)
    except ImportError:
        wmax = 0.0  # no onnx package on this machine: the loss curves are the check
    if wmax > 10 * TOL:
        failures.append(name)
        print(f"FAIL {name}: exported weights differ by {wmax:.3g} (relative)")
        return
    print(f"ok   {name}: {len(lc)} steps, worst relative loss difference {worst:.2g}, weights {wmax:.2g}")


# pairs[0] (feat1) needs a 1x1 conv adapter (a host parameter): with it, the whole step's math runs on
# the host; without it, the device step runs (tensors of equal shape)
head = [p for p in base["pairs"] if p["student"] == "head"][0]
device_step = json.loads(json.dumps(base))
device_step["pairs"] = [head]
case("l2_device_step", device_step)
case("adapter_host_step", base)
mixed = json.loads(json.dumps(device_step))
mixed["pairs"] = [head, dict(head, loss="cosine", weight=2)]
case("cosine_on_host_plus_l2_on_device", mixed)
adam = json.loads(json.dumps(device_step))
adam["train"]["optimizer"] = {"type": "adam", "lr": 0.001, "clip_grad_norm": 0.5}
case("adam_clipped_device_step", adam)
print(f"{4 - len(failures)} passed, {len(failures)} failed ({PREC})")
sys.exit(1 if failures else 0)
