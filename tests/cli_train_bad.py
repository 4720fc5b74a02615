"""Bad manifests given to `onnx-distill train`: each case asserts exit code 2 and a message naming
the JSON path and the reason (missing fields, wrong types, unknown tensors with suggestions,
shapes that cannot pair without an adapter, unknown losses, bad overrides, broken JSON).

usage: cli_train_bad.py TOOL MODELS_DIR TMPDIR"""
import json
import os
import re
import shutil
import subprocess
import sys

TOOL, MODELS, TMP = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(os.path.join(sys.argv[3], "train_bad"))
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
for f in ("teacher.onnx", "student.onnx"):
    shutil.copy(os.path.join(MODELS, f), TMP)
GOOD = {
    "teacher": {"model": "teacher.onnx"},
    "student": {"model": "student.onnx"},
    "data": {"format": "random"},
    "pairs": [{"teacher": "head", "student": "head", "loss": "l2"}],
    "train": {"steps": 2},
}


def variant(mutate):
    m = json.loads(json.dumps(GOOD))
    mutate(m)
    return m


CASES = [
    # name, manifest (dict or raw text), extra args, patterns
    ("missing teacher", variant(lambda m: m.pop("teacher")), [], [r"teacher"]),
    ("missing student model", variant(lambda m: m["student"].pop("model")), [], [r"student\.model"]),
    ("teacher file missing", variant(lambda m: m["teacher"].update(model="nope.onnx")), [], [r"teacher\.model", r"nope\.onnx"]),
    ("wrong type", variant(lambda m: m["train"].update(steps="100")), [], [r"train\.steps", r"integer"]),
    ("negative batch", variant(lambda m: m["train"].update(batch_size=-3)), [], [r"train\.batch_size"]),
    ("unknown key", variant(lambda m: m["train"].update(stepz=5)), [], [r"stepz", r"steps"]),
    ("unknown loss", variant(lambda m: m["pairs"][0].update(loss="l3")), [], [r"pairs\[0\]\.loss", r"unknown loss 'l3'"]),
    ("unknown tensor", variant(lambda m: m["pairs"][0].update(student="feat9")), [],
     [r"pairs\[0\]\.student: no tensor 'feat9' in .*student\.onnx; closest: feat"]),
    ("unknown node ref", variant(lambda m: m["pairs"][0].update(teacher="node:nosuch:out:0")), [],
     [r"pairs\[0\]\.teacher: no node named 'nosuch'"]),
    ("shapes cannot pair, adapter none", variant(lambda m: m["pairs"][0].update(student="feat1", teacher="feat1", adapter="none")), [],
     [r"pairs\[0\]", r"\[\d+, 12, 16, 16\]", r"\[\d+, 32, 16, 16\]", r"adapter is \"none\""]),
    ("loss cannot take the shapes", variant(lambda m: m["pairs"][0].update(loss="yolo_split", num_classes=20)), [],
     [r"pairs\[0\] \(yolo_split\)", r"75"]),
    ("bad adapter value", variant(lambda m: m["pairs"][0].update(adapter="conv3x3")), [], [r"pairs\[0\]\.adapter"]),
    ("broken json", '{"teacher": {"model": "teacher.onnx"},, }', [], [r"line 1", r"column"]),
    ("bad override", GOOD, ["--set", "train.steps=abc"], [r"train\.steps"]),
    ("bad resume", GOOD, ["--resume", "/nonexistent/dir"], [r"--resume", r"/nonexistent/dir"]),
]

passed = failed = 0
for i, (name, manifest, extra, patterns) in enumerate(CASES):
    path = os.path.join(TMP, f"case{i}.json")
    with open(path, "w") as f:
        f.write(manifest if isinstance(manifest, str) else json.dumps(manifest))
    r = subprocess.run([TOOL, "train", path, *extra], capture_output=True, text=True, timeout=120)
    problems = []
    if r.returncode != 2:
        problems.append(f"exit {r.returncode}, expected 2")
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        problems.append("sanitizer report")
    for p in patterns:
        if not re.search(p, r.stderr):
            problems.append(f"message lacks /{p}/")
    if problems:
        failed += 1
        print(f"FAIL {name}: {'; '.join(problems)}\n  stderr: {r.stderr.strip()[:1500]}")
    else:
        passed += 1
        print(f"ok   {name}: {r.stderr.strip()[:300]}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
