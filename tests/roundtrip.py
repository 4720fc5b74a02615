#!/usr/bin/env python3
"""Round trip of every ONNX node-test model through `onnx-distill export`.

usage: roundtrip.py ONNX_DISTILL [NODE_TESTS_DIR] [-j JOBS]

For each */model.onnx under NODE_TESTS_DIR (default: ../shared/onnx-node-tests beside the
repository), export it unchanged with the tool and check, with the onnx package as the independent
reference:
  - the export exits 0;
  - onnx.checker.check_model(full_check=True) passes on the output whenever it passes on the
    original (originals that fail it are listed, and must still round-trip equal);
  - the output ModelProto equals the original: `orig == out` and equal SerializeToString() bytes
    (both parsed by onnx.load, so field order in the file does not matter). On a mismatch the
    first differing field is printed.
The last line is "N passed, N failed"; the exit status is 1 on any failure, 77 (skipped) when the
onnx package is missing.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

try:
    import onnx
    from google.protobuf.message import Message
except ImportError as e:  # pragma: no cover - depends on the environment
    print(f"skipped: the onnx Python package is not available ({e})")
    sys.exit(77)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_NODE_TESTS = os.path.normpath(os.path.join(REPO, "..", "shared", "onnx-node-tests"))


def _scalar_equal(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def first_diff(a, b, path="model"):
    """The path of the first field where two messages differ, or None."""
    if isinstance(a, Message):
        fa = {f.name: v for f, v in a.ListFields()}
        fb = {f.name: v for f, v in b.ListFields()}
        for name in sorted(set(fa) | set(fb)):
            if name not in fb:
                return f"{path}.{name}: only in the original"
            if name not in fa:
                return f"{path}.{name}: only in the export"
            d = first_diff(fa[name], fb[name], f"{path}.{name}")
            if d:
                return d
        if a.SerializeToString() != b.SerializeToString():
            return f"{path}: serialized bytes differ (unknown fields?)"
        return None
    if hasattr(a, "__len__") and not isinstance(a, (str, bytes)):
        if len(a) != len(b):
            return f"{path}: {len(a)} elements in the original, {len(b)} in the export"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if not _scalar_equal(a, b):
        ra, rb = repr(a), repr(b)
        return f"{path}: original {ra[:80]} != export {rb[:80]}"
    return None


def check_one(args):
    """Exports one model and compares; returns (name, error or None, original passes checker)."""
    tool, model_path, out_dir = args
    name = os.path.basename(os.path.dirname(model_path))
    out = os.path.join(out_dir, name + ".onnx")
    proc = subprocess.run([tool, "export", model_path, "-o", out], capture_output=True, text=True)
    if proc.returncode != 0:
        return name, f"export exited {proc.returncode}: {proc.stderr.strip()}", None
    try:
        orig = onnx.load(model_path)
        exported = onnx.load(out)
    except Exception as e:  # noqa: BLE001 - any parse failure is a test failure
        return name, f"onnx.load failed: {e}", None
    orig_ok = True
    try:
        onnx.checker.check_model(orig, full_check=True)
    except Exception:  # noqa: BLE001
        orig_ok = False
    error = None
    if orig_ok:
        try:
            onnx.checker.check_model(exported, full_check=True)
        except Exception as e:  # noqa: BLE001
            error = f"checker fails on the export but not on the original: {str(e).splitlines()[0]}"
    if error is None and not (orig == exported and orig.SerializeToString() == exported.SerializeToString()):
        error = "export differs from the original: " + (first_diff(orig, exported) or "(== is False, no field differs)")
    try:
        os.unlink(out)
    except OSError:
        pass
    return name, error, orig_ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tool", help="path of the onnx-distill binary")
    ap.add_argument("node_tests", nargs="?", default=DEFAULT_NODE_TESTS)
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    models = []
    for root, _dirs, files in os.walk(a.node_tests):
        if "model.onnx" in files:
            models.append(os.path.join(root, "model.onnx"))
    models.sort()
    if not models:
        print(f"no model.onnx found under {a.node_tests}")
        print("0 passed, 1 failed")
        return 1
    start = time.time()
    passed = failed = 0
    checker_fails = []
    with tempfile.TemporaryDirectory(prefix="od_roundtrip_") as tmp:
        with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            for name, error, orig_ok in pool.map(check_one, [(a.tool, m, tmp) for m in models], chunksize=8):
                if orig_ok is False:
                    checker_fails.append(name)
                if error:
                    failed += 1
                    print(f"FAIL {name}: {error}")
                else:
                    passed += 1
        leftovers = os.listdir(tmp)
    if leftovers:
        failed += 1
        print(f"FAIL temporary files left behind: {leftovers[:5]}")
    if checker_fails:
        print(f"note: {len(checker_fails)} originals fail onnx.checker (full_check) themselves and were only "
              f"compared: {', '.join(checker_fails[:10])}{' ...' if len(checker_fails) > 10 else ''}")
    print(f"{len(models)} models in {time.time() - start:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
