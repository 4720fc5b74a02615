"""Real exported models through our runtime: each committed model in models/yolov3_mbv1/ (made by real
exporters: torch.onnx.export, paddle2onnx) is run with `onnx-distill run` on its recorded input and
compared with the ONNX Runtime CPU outputs recorded next to it (MODEL/output_<name>.npy, written by
export_torch.py / export_paddle.py).

Pass rule, per output: same dtype and shape; integers equal; floats
  max|got - want| / max|want| <= 1e-4      (relative to the output's largest magnitude)
Detection outputs ([M, 6] rows label, score, x1, y1, x2, y2 from NMS) are compared after matching
rows (same label, nearest values: the row order of equal-score detections is not part of the
contract), with the rule applied to the score column and to the four box columns separately, and
labels equal.

usage: real_models.py TOOL MODELS_DIR TMP_DIR [--threads N] [--device SPEC]

With --device cuda the models run on the CUDA device (the GPU, or the host emulation with
onnx-distill-emu), post-processing (NMS) on the CPU through the host bridge; exit 77 when the tool
has no CUDA device.
Prints one line per output and a closing 'N passed, N failed' (one count per model); exit 1 on any failure."""
import glob
import os
import subprocess
import sys

import numpy as np

REL_TOL = 1e-4
# outputs that hold NMS detections, per model (compared row-matched)
DETECTIONS = {"paddle_w025": {"fetch_name_0"}}


def rel_err(got, want):
    got = got.astype(np.float64)
    want = want.astype(np.float64)
    if want.size == 0:
        return 0.0
    if not (np.isfinite(got).all()):
        return float("inf")
    scale = np.abs(want).max()
    diff = np.abs(got - want).max()
    return diff / scale if scale > 0 else diff


def match_rows(got, want):
    """Reorders got's rows to pair with want's: same label, closest (score, box) values."""
    order, used = [], set()
    scale = np.maximum(np.abs(want[:, 1:]).max(axis=0), 1e-12)
    for w in want:
        best, best_d = None, None
        for j, g in enumerate(got):
            if j in used or g[0] != w[0]:
                continue
            d = (np.abs(g[1:] - w[1:]) / scale).max()
            if best_d is None or d < best_d:
                best, best_d = j, d
        if best is None:
            return None
        used.add(best)
        order.append(best)
    return got[order]


def compare(model, name, got, want):
    """Returns (ok, message)."""
    if got.dtype != want.dtype:
        return False, f"dtype {got.dtype}, want {want.dtype}"
    if got.shape != want.shape:
        return False, f"shape {list(got.shape)}, want {list(want.shape)}"
    if not np.issubdtype(want.dtype, np.floating):
        bad = int((got != want).sum())
        return bad == 0, f"{want.dtype} {list(want.shape)} " + ("equal" if not bad else f"{bad} elements differ")
    if name in DETECTIONS.get(model, ()):
        m = match_rows(got, want)
        if m is None:
            return False, f"detections {list(want.shape)}: the labels differ (no row of ours matches some row)"
        e_score = rel_err(m[:, 1], want[:, 1])
        e_box = rel_err(m[:, 2:], want[:, 2:])
        ok = e_score <= REL_TOL and e_box <= REL_TOL
        return ok, f"detections {list(want.shape)}: labels equal, rel err score {e_score:.2e}, boxes {e_box:.2e}"
    e = rel_err(got, want)
    return e <= REL_TOL, f"float {list(want.shape)}: rel err {e:.2e} (max|want| {np.abs(want).max():.3g})"


def run_model(tool, onnx_path, ref_dir, out_dir, threads, device):
    inputs = sorted(glob.glob(os.path.join(ref_dir, "input_*.npy")))
    cmd = [tool, "run", onnx_path, "--output", out_dir, "--threads", str(threads), "--device", device]
    for f in inputs:
        cmd += ["--input", os.path.basename(f)[len("input_"):-len(".npy")] + "=" + f]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def main(argv):
    threads = 2
    if "--threads" in argv:
        i = argv.index("--threads")
        threads = int(argv[i + 1])
        del argv[i:i + 2]
    device = "cpu"
    if "--device" in argv:
        i = argv.index("--device")
        device = argv[i + 1]
        del argv[i:i + 2]
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    tool, models_dir, tmp = argv
    models = sorted(glob.glob(os.path.join(models_dir, "*.onnx")))
    if not models:
        print(f"no .onnx models in {models_dir}", file=sys.stderr)
        return 1
    passed = failed = 0
    for onnx_path in models:
        model = os.path.splitext(os.path.basename(onnx_path))[0]
        ref_dir = os.path.join(models_dir, model)
        wants = sorted(glob.glob(os.path.join(ref_dir, "output_*.npy")))
        if not wants:
            print(f"FAIL {model}: no reference outputs in {ref_dir}")
            failed += 1
            continue
        out_dir = os.path.join(tmp, "real_models_" + device.replace(":", "_"), model)
        for f in glob.glob(os.path.join(out_dir, "*.npy")):
            os.remove(f)
        r = run_model(tool, onnx_path, ref_dir, out_dir, threads, device)
        if r.returncode != 0 and ("no CUDA device is visible" in r.stderr or "has no CUDA support" in r.stderr):
            print("skipped:", r.stderr.strip())
            return 77
        if r.returncode != 0:
            print(f"FAIL {model}: onnx-distill run exited {r.returncode}: {r.stderr.strip()}")
            failed += 1
            continue
        timing = [l for l in r.stdout.splitlines() if l.startswith("time:")]
        ok_model = True
        for wf in wants:
            name = os.path.basename(wf)[len("output_"):-len(".npy")]
            gf = os.path.join(out_dir, name + ".npy")
            if not os.path.exists(gf):
                ok, msg = False, f"not written ({gf})"
            else:
                ok, msg = compare(model, name, np.load(gf), np.load(wf))
            print(f"{'ok  ' if ok else 'FAIL'} {model} {name}: {msg}")
            ok_model &= ok
        if timing:
            print(f"     {model} {timing[0]}")
        passed += ok_model
        failed += not ok_model
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
