"""Our 20-step distillation of models/tiny/reference.json against the PyTorch run of the same
setup (models/tiny/torch_reference.py: same weights, batches, losses and optimizer), whose loss
curve is committed in models/tiny/reference_losses.json. Relative error <= 1e-3 per step: fp32
kernels that sum in different orders drift by ~1e-6 per step; a wrong gradient shows at step 2.

usage: train_reference.py TOOL MODELS_DIR TMPDIR"""
import json
import os
import shutil
import subprocess
import sys

TOOL, MODELS, TMP = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(os.path.join(sys.argv[3], "train_ref"))
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
for f in ("teacher.onnx", "student.onnx", "reference.json"):
    shutil.copy(os.path.join(MODELS, f), TMP)
with open(os.path.join(MODELS, "reference_losses.json")) as f:
    want = json.load(f)["losses"]
r = subprocess.run([TOOL, "train", os.path.join(TMP, "reference.json")], capture_output=True, text=True, timeout=600)
if r.returncode != 0:
    print(r.stderr[-3000:])
    print("0 passed, 1 failed")
    sys.exit(1)
with open(os.path.join(TMP, "out_reference", "train.jsonl")) as f:
    got = [json.loads(l)["loss"] for l in f if l.strip()]
passed = failed = 0
for i, (g, w) in enumerate(zip(got, want)):
    rel = abs(g - w) / max(abs(w), 1e-12)
    ok = rel <= 1e-3
    passed += ok
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} step {i + 1}: ours {g:.8g}, PyTorch {w:.8g}, relative error {rel:.2e}")
if len(got) != len(want):
    failed += 1
    print(f"FAIL {len(got)} logged steps, expected {len(want)}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
