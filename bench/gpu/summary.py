"""Summarises bench/gpu/run.sh's output folder as a markdown table (ours vs PyTorch, same card).

usage: summary.py OUT"""
import json
import os
import sys

OUT = sys.argv[1]
B = int(os.environ.get("BATCH", "8"))


def last_rate(path):
    """images/s of our training from the JSON-lines log: the last logged interval (after warm-up)."""
    try:
        rows = [json.loads(l) for l in open(path) if '"steps_per_s"' in l]
    except OSError:
        return None
    return rows[-1]["steps_per_s"] * B if len(rows) >= 2 else None


def infer_ms(path):
    try:
        for l in open(path):
            if l.startswith("{") and '"median_ms"' in l:
                return json.loads(l)["median_ms"]
            if l.startswith("latency"):
                return float(l.split("median")[1].split()[0])
    except OSError:
        pass
    return None


def peak_mib(label):
    try:
        vals = [int(v) for v in open(os.path.join(OUT, f"mem_{label}.txt")) if v.strip().isdigit()]
        return max(vals) if vals else None
    except OSError:
        return None


torch = {}
try:
    for l in open(os.path.join(OUT, "torch_anchor.jsonl")):
        r = json.loads(l)
        torch[r["mode"]] = r
except OSError:
    pass
peer_mode = {"fp32": "fp32", "tf32": "tf32", "bf16": "bf16-amp+channels_last"}
fmt = lambda v, f="%.1f": (f % v) if v is not None else "-"
print("| precision | ours img/s | PyTorch img/s | ours / PyTorch | ours infer b1 ms | PyTorch infer b1 ms |")
print("|---|---|---|---|---|---|")
for prec in ("fp32", "tf32", "bf16"):
    ours = last_rate(os.path.join(OUT, f"ours_{prec}.jsonl"))
    t = torch.get(peer_mode[prec], {})
    peer = t.get("distill_img_s")
    ratio = ours / peer if ours and peer else None
    print(f"| {prec} | {fmt(ours)} | {fmt(peer)} ({peer_mode[prec]}) | {fmt(ratio, '%.2fx')} | "
          f"{fmt(infer_ms(os.path.join(OUT, f'ours_infer_{prec}.txt')), '%.2f')} | {fmt(t.get('student_infer_b1_ms'), '%.2f')} |")
abl = [(k, last_rate(os.path.join(OUT, f"ours_fp32_{k}.jsonl"))) for k in ("OD_CUDA_GRAPHS", "OD_CUDA_DEPTHWISE")]
if any(v for _, v in abl):
    base = last_rate(os.path.join(OUT, "ours_fp32.jsonl"))
    print()
    print("ablations (fp32 img/s): default " + fmt(base) + ", " +
          ", ".join(f"{k}=0: {fmt(v)}" for k, v in abl))
print()
print("peak device memory (nvidia-smi, MiB, CUDA context included): " +
      ", ".join(f"ours {p}: {fmt(peak_mib('ours_' + p), '%d')}" for p in ("fp32", "tf32", "bf16")) +
      f", PyTorch (all modes in one process): {fmt(peak_mib('torch'), '%d')}")
