"""Fails when docs/supported-ops.md differs from `onnx-distill ops --markdown`, so that the file is
never hand-edited or stale. The committed file comes from a build with CUDA; a CPU-only build cannot
know the CUDA column, so there that column (and the build note) is left out of the comparison.

usage: check_ops_doc.py TOOL DOC"""
import difflib
import re
import subprocess
import sys

TOOL, DOC = sys.argv[1], sys.argv[2]
REGEN = f"{TOOL} ops --markdown > {DOC}   (from a build with CUDA: cmake -DOD_CUDA=ON)"

gen = subprocess.run([TOOL, "ops", "--markdown"], capture_output=True, text=True, timeout=60)
if gen.returncode != 0:
    print(f"FAIL: `{TOOL} ops --markdown` exited {gen.returncode}: {gen.stderr.strip()}")
    sys.exit(1)
try:
    with open(DOC, encoding="utf-8") as f:
        committed = f.read()
except OSError as e:
    print(f"FAIL: cannot read {DOC}: {e}\nCreate it: {REGEN}")
    sys.exit(1)

generated = gen.stdout
if generated == committed:
    print(f"ok: {DOC} is current")
    sys.exit(0)

cpu_only = "Build: CPU only" in generated


def masked(text):
    """The text without what a CPU-only build cannot know: the build note and the CUDA column."""
    out = []
    for line in text.splitlines():
        if line.startswith("Build:"):
            line = "Build: (not compared)"
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line)  # '|' not escaped with '\'
            line = "|".join(cells[:-2] + [""])   # drop the last cell (CUDA)
        out.append(line)
    return out


if cpu_only and masked(generated) == masked(committed):
    print(f"ok: {DOC} is current (CUDA column not compared: this build has no CUDA)")
    sys.exit(0)

a, b = (masked(committed), masked(generated)) if cpu_only else (committed.splitlines(), generated.splitlines())
diff = list(difflib.unified_diff(a, b, DOC + " (committed)", "onnx-distill ops --markdown", lineterm="", n=1))
print(f"FAIL: {DOC} is out of date{' (CUDA column not compared)' if cpu_only else ''}. Regenerate it:\n  {REGEN}\n")
print("\n".join(diff[:80]))
if len(diff) > 80:
    print(f"... {len(diff) - 80} more diff lines")
sys.exit(1)
