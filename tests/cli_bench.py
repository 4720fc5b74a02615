"""`onnx-distill bench`: runs, prints its JSON line and per-op profile, refuses bad usage with exit 2.

usage: cli_bench.py TOOL MODELS_DIR   (MODELS_DIR = models/yolov3_mbv1, with torch_w025.onnx and paddle_w025/)"""
import json
import os
import subprocess
import sys


def run(tool, *args):
    return subprocess.run([tool, "bench", *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))


def main(argv):
    tool, models = argv
    torch_model = os.path.join(models, "torch_w025.onnx")
    paddle_model = os.path.join(models, "paddle_w025.onnx")
    ref = os.path.join(models, "paddle_w025")
    checks = []

    r = run(tool, torch_model, "--shape", "image=1,3,96,96", "--iters", "3", "--warmup", "1", "--threads", "1",
            "--json", "--profile")
    js = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    ok = r.returncode == 0 and len(js) == 2 and len(js[0]["times_ms"]) == 3 and js[1]["iters"] == 3 and \
        js[1]["threads"] == 1 and 0 < js[1]["min_ms"] <= js[1]["median_ms"] <= js[1]["p90_ms"] <= js[1]["max_ms"] \
        and js[1]["min_ms"] == min(js[0]["times_ms"])
    checks.append(("bench --json on a dynamic-shape model", ok, r.stdout + r.stderr))
    ok = r.returncode == 0 and "Conv depthwise 3x3" in r.stdout and "slowest nodes" in r.stdout
    checks.append(("bench --profile lists op kinds and nodes", ok, r.stdout))

    r = run(tool, paddle_model, "--input", "image=" + os.path.join(ref, "input_image.npy"), "--input",
            "im_shape=" + os.path.join(ref, "input_im_shape.npy"), "--input",
            "scale_factor=" + os.path.join(ref, "input_scale_factor.npy"), "--iters", "2", "--profile")
    ok = r.returncode == 0 and "latency over 2 runs" in r.stdout and "NonMaxSuppression" in r.stdout and \
        "slowest nodes" in r.stdout
    checks.append(("bench with .npy inputs; profile includes run-time-shaped nodes (NMS)", ok, r.stdout + r.stderr))

    for args, what in [((torch_model,), "symbolic dims without --shape"),
                       ((torch_model, "--shape", "image=1,3,96"), "wrong rank"),
                       ((torch_model, "--shape", "image=2,4,96,96"), "fixed dim contradicted"),
                       ((torch_model, "--iters", "0"), "--iters 0"),
                       ((paddle_model, "--shape", "1,3,160,160"), "unnamed shape with several inputs"),
                       ((torch_model, "--bogus"), "unknown option")]:
        r = run(tool, *args)
        checks.append((f"refuses {what} with exit 2", r.returncode == 2 and "onnx-distill" in r.stderr,
                       f"exit {r.returncode}: {r.stderr}"))

    failed = 0
    for name, ok, detail in checks:
        print(("ok   " if ok else "FAIL ") + name)
        if not ok:
            failed += 1
            print("     " + detail.strip().replace("\n", "\n     "))
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
