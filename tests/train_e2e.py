"""End-to-end distillation on the tiny teacher/student pair (models/tiny, random data):
dry run, training (the loss falls), determinism, resume equal to an uninterrupted run, SIGINT
writing a checkpoint, and the exported student checked by onnx and ONNX Runtime against the
original graph structure and against our own forward pass.

usage: train_e2e.py TOOL MODELS_DIR TMPDIR"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

TOOL, MODELS, TMP = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(os.path.join(sys.argv[3], "train_e2e"))
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
for f in ("teacher.onnx", "student.onnx", "pairs.json"):
    shutil.copy(os.path.join(MODELS, f), TMP)
MANIFEST = os.path.join(TMP, "pairs.json")
failures = []
passed = 0


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failures.append(name)
        print(f"FAIL {name}: {detail}")


def train(*args, timeout=600):
    return subprocess.run([TOOL, "train", MANIFEST, *args], capture_output=True, text=True, timeout=timeout)


def log_lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


# 1. dry run
r = train("--dry-run")
check("dry-run exits 0", r.returncode == 0, r.stderr)
check("dry-run reports the adapter", "adapter: 1x1 conv" in r.stdout, r.stdout)
check("dry-run reports backward coverage", "has a backward" in r.stdout, r.stdout)
check("dry-run reports a memory estimate", "memory (batch 4 at 32x32)" in r.stdout, r.stdout)

# 2. training: the loss falls, the log has every logged step
r = train("--set", "train.out_dir=run_a")
check("train exits 0", r.returncode == 0, r.stderr[-2000:])
log_a = log_lines(os.path.join(TMP, "run_a", "train.jsonl")) if r.returncode == 0 else []
check("log has steps 10..60", [l["step"] for l in log_a] == [10, 20, 30, 40, 50, 60], [l.get("step") for l in log_a])
if log_a:
    check("loss falls", log_a[-1]["loss"] < 0.7 * log_a[0]["loss"], f"{log_a[0]['loss']} -> {log_a[-1]['loss']}")
    check("per-pair terms logged", set(log_a[0]["terms"]) == {"pairs[0].l2", "pairs[1].l2"}, log_a[0]["terms"])

# 3. determinism: a second identical run gives the same losses
r = train("--set", "train.out_dir=run_b")
log_b = log_lines(os.path.join(TMP, "run_b", "train.jsonl")) if r.returncode == 0 else []
check("same seed, same losses", [l["loss"] for l in log_a] == [l["loss"] for l in log_b],
      f"{[l['loss'] for l in log_a]} vs {[l['loss'] for l in log_b]}")

# 4. resume: 20 steps, then resume to 60 == uninterrupted
r1 = train("--set", "train.out_dir=run_c", "--set", "train.steps=20")
r2 = train("--set", "train.out_dir=run_c", "--resume", os.path.join(TMP, "run_c"))
log_c = log_lines(os.path.join(TMP, "run_c", "train.jsonl")) if r2.returncode == 0 else []
check("resume runs", r1.returncode == 0 and r2.returncode == 0, r1.stderr[-1000:] + r2.stderr[-1000:])
check("resumed losses equal the uninterrupted run", [l["loss"] for l in log_c] == [l["loss"] for l in log_a],
      f"{[l['loss'] for l in log_c]} vs {[l['loss'] for l in log_a]}")

# 5. SIGINT: checkpoint written, exit 130, resume hint
p = subprocess.Popen([TOOL, "train", MANIFEST, "--set", "train.out_dir=run_d", "--set", "train.steps=1000000",
                      "--set", "train.checkpoint_every=1000000"], stderr=subprocess.PIPE, text=True)
log_d = os.path.join(TMP, "run_d", "train.jsonl")
deadline = time.time() + 120
while time.time() < deadline and not (os.path.exists(log_d) and os.path.getsize(log_d) > 0):
    time.sleep(0.1)
p.send_signal(signal.SIGINT)
_, err = p.communicate(timeout=120)
check("SIGINT exits 130", p.returncode == 130, f"exit {p.returncode}: {err[-1000:]}")
check("SIGINT leaves a checkpoint", os.path.exists(os.path.join(TMP, "run_d", "checkpoint.bin")))
check("SIGINT says how to resume", "--resume" in err, err[-500:])

# 6. the exported student: valid ONNX, same structure, trained values, agrees with our forward
exported = os.path.join(TMP, "run_a", "student_distilled.onnx")
orig = onnx.load(os.path.join(TMP, "student.onnx"))
if os.path.exists(exported):
    new = onnx.load(exported)
    onnx.checker.check_model(new, full_check=True)
    check("export keeps nodes, inputs, outputs",
          [n.name for n in new.graph.node] == [n.name for n in orig.graph.node] and
          [i.name for i in new.graph.input] == [i.name for i in orig.graph.input] and
          [o.name for o in new.graph.output] == [o.name for o in orig.graph.output])
    check("no adapter or teacher tensor leaks into the export",
          {t.name for t in new.graph.initializer} == {t.name for t in orig.graph.initializer})
    changed = [t.name for t, u in zip(orig.graph.initializer, new.graph.initializer)
               if not np.array_equal(onnx.numpy_helper.to_array(t), onnx.numpy_helper.to_array(u))]
    check("weights and running statistics changed", any(".w" in c for c in changed) and any(".m" in c for c in changed),
          changed)
    x = np.random.default_rng(5).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.save(os.path.join(TMP, "x.npy"), x)
    want = ort.InferenceSession(exported, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    r = subprocess.run([TOOL, "run", exported, "--input", f"image={os.path.join(TMP, 'x.npy')}", "--output",
                        os.path.join(TMP, "run_out")], capture_output=True, text=True, timeout=120)
    got = np.load(os.path.join(TMP, "run_out", "head.npy")) if r.returncode == 0 else None
    err = float(np.max(np.abs(got - want)) / np.max(np.abs(want))) if got is not None else None
    check("ONNX Runtime agrees with our forward on the export", err is not None and err <= 1e-4, f"{err} {r.stderr}")
else:
    check("export written", False, exported)

# 7. an image folder (with one corrupt file, which is skipped and counted)
from PIL import Image  # noqa: E402

imgs = os.path.join(TMP, "imgs")
os.makedirs(imgs)
rng = np.random.default_rng(3)
for k in range(12):
    base = np.linspace(0, 255, 40 * 48, dtype=np.float32).reshape(40, 48)
    arr = np.stack([np.roll(base, 7 * k, axis=1), np.flipud(base), rng.uniform(0, 255, (40, 48))], -1)
    Image.fromarray(arr.astype(np.uint8)).save(os.path.join(imgs, f"img{k:02d}.jpg"), quality=90)
with open(os.path.join(imgs, "broken.jpg"), "wb") as f:
    f.write(b"\xff\xd8\xff\xe0 this is not really a jpeg")
r = train("--set", "train.out_dir=run_img", "--set", "data.format=images", "--set", "data.root=imgs",
          "--set", "data.size=32", "--set", "train.steps=40")
check("train on an image folder exits 0", r.returncode == 0, r.stderr[-2000:])
check("the corrupt JPEG is reported with its path", "broken.jpg" in r.stderr, r.stderr[-1000:])
log_i = log_lines(os.path.join(TMP, "run_img", "train.jsonl")) if r.returncode == 0 else []
if log_i:
    check("image-folder loss falls", log_i[-1]["loss"] < log_i[0]["loss"], f"{log_i[0]['loss']} -> {log_i[-1]['loss']}")
    check("skipped files counted in the log", log_i[-1]["skipped_files"] == 1, log_i[-1])

# 8. freezing by name pattern: matching parameters keep their values, the others train
r = train("--set", "train.out_dir=run_frozen", "--set", "train.steps=10", "--set", 'train.freeze=["s_c0*", "s_bn0.*"]')
check("train with freeze exits 0", r.returncode == 0, r.stderr[-1000:])
fz = os.path.join(TMP, "run_frozen", "student_distilled.onnx")
if os.path.exists(fz):
    fzi = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(fz).graph.initializer}
    ori = {t.name: onnx.numpy_helper.to_array(t) for t in orig.graph.initializer}
    check("frozen parameters unchanged", all(np.array_equal(fzi[k], ori[k]) for k in ("s_c0.w", "s_bn0.s", "s_bn0.b")))
    check("other parameters trained", not np.array_equal(fzi["s_c1.w"], ori["s_c1.w"]))

# 9. a bad manifest is a clear usage error
r = train("--set", "train.batch_size=-3")
check("bad manifest exits 2 with the JSON path", r.returncode == 2 and "train.batch_size" in r.stderr, r.stderr)

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
