"""The demo's path in small: make-data, a few distillation steps of models/demo/pairs.json on it
(teacher + student + YOLOv3 loss, multi-scale, eval_every writing the best checkpoint), export,
and eval of the export. Checks the pieces connect; tools/demo.sh runs the full-size version.

usage: demo_smoke.py TOOL REPO TMPDIR"""
import json
import os
import shutil
import subprocess
import sys

TOOL, REPO, TMP = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(os.path.join(sys.argv[3], "demo_smoke"))
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
failures, passed = [], 0


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failures.append(name)
        print(f"FAIL {name}: {str(detail)[-2000:]}")


def run(*args, timeout=900):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=timeout)


data = os.path.join(TMP, "data")
r = run("make-data", "--out", data, "--images", "40", "--size", "160", "--seed", "3")
check("make-data", r.returncode == 0, r.stderr)
manifest = os.path.join(REPO, "models", "demo", "pairs.json")
common = ["--set", f"data.root={data}", "--set", f"train.out_dir={TMP}/run", "--set", "train.batch_size=2",
          "--set", "data.workers=1"]
r = run("train", manifest, *common, "--set", "train.steps=4", "--set", "train.log_every=2", "--set",
        "train.eval_every=4", "--set", "train.checkpoint_every=2", "--set", "train.schedule.warmup_steps=1",
        "--set", f"student.export={TMP}/student_distilled.onnx")
check("train exits 0", r.returncode == 0, r.stderr)
log = [json.loads(l) for l in open(os.path.join(TMP, "run", "train.jsonl"))] if r.returncode == 0 else []
steps = [l for l in log if "loss" in l]
evals = [l for l in log if "eval" in l]
check("losses logged with pair and task terms",
      len(steps) == 2 and {"pairs[0].l2", "task.yolov3"} <= set(steps[0]["terms"]), log)
check("eval logged at step 4", len(evals) == 1 and evals[0]["step"] == 4 and 0 <= evals[0]["eval"]["map11"] <= 1, evals)
check("best checkpoint kept", os.path.exists(os.path.join(TMP, "run", "best", "checkpoint.bin")))
r = run("eval", os.path.join(TMP, "student_distilled.onnx"), manifest, "--set", f"data.root={data}", "--json")
check("eval of the export", r.returncode == 0 and '"map11"' in r.stdout, r.stderr + r.stdout)
print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
