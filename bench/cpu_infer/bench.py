"""CPU inference latency of the full-size YOLOv3-MobileNetV1 student: onnx-distill vs ONNX Runtime, same
model file, same input shapes, same thread count, in one run. Called by bench/cpu_infer/run.sh (which
makes the model); writes bench/cpu_infer/results.md unless --no-write.

Ours:  `onnx-distill bench MODEL --shape image=1,3,S,S --iters N --warmup W --threads T --json`
       with OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=T (OpenBLAS keeps its own threads for the GEMMs).
ORT:   InferenceSession on CPUExecutionProvider, intra_op_num_threads T, inter_op_num_threads 1,
       ORT_SEQUENTIAL, default graph optimisations (ORT_ENABLE_ALL: it folds BatchNormalization into
       the convolutions and fuses activations; we run the graph as written). With --ort-noopt also
       ORT_DISABLE_ALL, to show how much those rewrites are worth.
Both:  W untimed runs, then runs each timed alone (monotonic clock around one run); median (mean of
       the two middle values for even N) and p90 (nearest rank, the ceil(0.9 N)-th smallest) over N runs.
       The N runs are split into R rounds that alternate ours and ORT (ours is a fresh process per round,
       with its own W warm-up runs), so load from other processes on a shared machine hits both alike.
A check first: ours and ORT on one random input at the first size, max|ours - ort| / max|ort| per output.
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def stats(times):
    t = sorted(times)
    n = len(t)
    med = t[n // 2] if n % 2 else 0.5 * (t[n // 2 - 1] + t[n // 2])
    p90 = t[max(1, math.ceil(0.9 * n)) - 1]
    return {"median_ms": med, "p90_ms": p90, "min_ms": t[0], "mean_ms": sum(t) / n, "max_ms": t[-1]}


def ours_env(threads, extra=None):
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    env.update(extra or {})
    return env


def bench_ours(tool, model, size, iters, warmup, threads, profile=False, extra_env=None):
    """Returns (times_ms in run order, profile text)."""
    cmd = [tool, "bench", model, "--shape", f"image=1,3,{size},{size}", "--iters", str(iters), "--warmup",
           str(warmup), "--threads", str(threads), "--json"] + (["--profile"] if profile else [])
    r = subprocess.run(cmd, capture_output=True, text=True, env=ours_env(threads, extra_env))
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    times, prof, in_prof = None, [], False
    for line in r.stdout.splitlines():
        if line.startswith("{") and "times_ms" in line:
            times = json.loads(line)["times_ms"]
        elif line.startswith("profile:"):
            in_prof = True
        if in_prof:
            prof.append(line)
    if times is None:
        raise SystemExit(f"no times from {' '.join(cmd)}:\n{r.stdout}")
    return times, "\n".join(prof)


def ort_session(model, threads, optimize=True):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def ort_feed(sess, size, seed=1):
    x = np.random.default_rng(seed).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    return {sess.get_inputs()[0].name: x}


def bench_ort(sess, feed, iters, warmup=0):
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def check(tool, model, sess, size, threads):
    """Relative error of our outputs against ORT's on one input."""
    x = np.random.default_rng(7).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "image.npy"), x)
        r = subprocess.run([tool, "run", model, "--input", "image=" + os.path.join(d, "image.npy"), "--output",
                            os.path.join(d, "out"), "--threads", str(threads)], capture_output=True, text=True,
                           env=ours_env(threads))
        if r.returncode != 0:
            return f"onnx-distill run failed: {r.stderr.strip()}"
        want = sess.run(None, {sess.get_inputs()[0].name: x})
        errs = []
        for o, w in zip(sess.get_outputs(), want):
            g = np.load(os.path.join(d, "out", o.name + ".npy"))
            errs.append(f"{o.name} {np.abs(g - w).max() / np.abs(w).max():.1e}")
        return ", ".join(errs)


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release()}


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "?"


def openblas_version():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libopenblas0-pthread"], capture_output=True,
                             text=True).stdout.strip()
        return out or "?"
    except OSError:
        return "?"


def build_flags(tool):
    """CMAKE_BUILD_TYPE and extra C flags of the build the tool comes from (its CMakeCache.txt)."""
    cache = os.path.join(os.path.dirname(os.path.abspath(tool)), "CMakeCache.txt")
    vals = {}
    try:
        for line in open(cache):
            for key in ("CMAKE_BUILD_TYPE", "CMAKE_C_FLAGS", "OD_CUDA"):
                if line.startswith(key + ":"):
                    vals[key] = line.split("=", 1)[1].strip()
    except OSError:
        return "unknown build"
    return ", ".join(f"{k}={v!r}" for k, v in vals.items())


def openblas_core(tool, threads, extra_env=None):
    """The kernel set OpenBLAS picks (OPENBLAS_VERBOSE=2 prints it), or '?'."""
    r = subprocess.run([tool, "bench", "--help"], capture_output=True, text=True,
                       env=ours_env(threads, dict(extra_env or {}, OPENBLAS_VERBOSE="2")))
    m = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("Core:")]
    return m[-1].split(":", 1)[1].strip() if m else "?"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", default=os.path.join(ROOT, "build", "onnx-distill"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--sizes", default="320,608")
    ap.add_argument("--threads", default="1" if os.cpu_count() == 1 else f"1,{os.cpu_count()}",
                    help="thread counts, comma-separated (default 1 and one per core)")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="alternate the configurations this many times")
    ap.add_argument("--profile-iters", type=int, default=5, help="runs for the per-op profile")
    ap.add_argument("--ort-noopt", action="store_true", help="also time ORT with graph optimisations off")
    ap.add_argument("--ours-variant", action="append", default=[], metavar="ENV=VAL[,ENV=VAL]",
                    help="also time ours with these environment variables (e.g. OPENBLAS_CORETYPE=SkylakeX)")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--exporter", default="?", help="what made the model (for the record)")
    ap.add_argument("--results", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    thread_counts = [int(t) for t in a.threads.split(",")]
    m = machine()
    print(f"machine: {m['nproc']} CPUs, {m['cpu']}; threads {a.threads}; onnxruntime {ort.__version__}", flush=True)
    chk = check(a.tool, a.model, ort_session(a.model, thread_counts[-1]), sizes[0], thread_counts[-1])
    print(f"check at {sizes[0]}: max|ours-ort|/max|ort|: {chk}", flush=True)

    rows, profiles = [], []
    load_before = loadavg()
    per_round = [a.iters // a.rounds + (r < a.iters % a.rounds) for r in range(a.rounds)]
    for threads in thread_counts:
        # the configurations: (label, kind, extra env or ORT session)
        configs = [(f"onnx-distill (OpenBLAS {openblas_core(a.tool, threads)})", "ours", {})]
        for v in a.ours_variant:
            env = dict(kv.split("=", 1) for kv in v.split(","))
            configs.append((f"onnx-distill, {v} (OpenBLAS {openblas_core(a.tool, threads, env)})", "ours", env))
        configs.append(("ONNX Runtime (ORT_ENABLE_ALL)", "ort", ort_session(a.model, threads)))
        if a.ort_noopt:
            configs.append(("ONNX Runtime (ORT_DISABLE_ALL)", "ort", ort_session(a.model, threads, optimize=False)))
        ort_label = configs[[c[1] for c in configs].index("ort")][0]
        for size in sizes:
            feed = ort_feed(configs[-1][2], size)
            times = {c[0]: [] for c in configs}
            for label, kind, x in configs:
                if kind == "ort":
                    bench_ort(x, feed, 0, a.warmup)
            for n in per_round:
                for label, kind, x in configs:
                    if n and kind == "ours":
                        times[label] += bench_ours(a.tool, a.model, size, n, a.warmup, threads, extra_env=x)[0]
                    elif n:
                        times[label] += bench_ort(x, feed, n)
            res = {label: stats(t) for label, t in times.items()}
            ref = res[ort_label]
            for label, _, _ in configs:
                st = res[label]
                rows.append((size, threads, label, st, ref))
                print(f"{size}x{size} {threads} thr {label}: median {st['median_ms']:.1f} ms, p90 {st['p90_ms']:.1f}, "
                      f"min {st['min_ms']:.1f}; / ORT {st['median_ms'] / ref['median_ms']:.2f}", flush=True)
            if not a.no_profile:
                prof = bench_ours(a.tool, a.model, size, a.profile_iters, 1, threads, True)[1]
                profiles.append((size, threads, prof))
                print(prof, flush=True)
    load_after = loadavg()
    if a.no_write:
        return 0
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = ["# CPU inference: YOLOv3-MobileNetV1 student, batch 1", "",
          "Written by `bench/cpu_infer/run.sh` (bench.py); rerun it to refresh. Do not edit by hand.", "",
          f"- date: {now}",
          f"- machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}; load average {load_before} before, "
          f"{load_after} after (other processes share these cores: expect noise, compare min and median)",
          f"- threads: ours --threads T with OPENBLAS_NUM_THREADS=T; ORT intra_op_num_threads T, inter_op 1, sequential",
          f"- model: `{os.path.relpath(a.model, ROOT)}` ({os.path.getsize(a.model) / 1e6:.1f} MB, {a.exporter}; "
          f"Conv + BatchNormalization + Relu/LeakyRelu + Resize + Concat, BN not folded; 6.0 GMACs at 320x320)",
          f"- onnx-distill {git_rev()}, build: {build_flags(a.tool)}; OpenBLAS {openblas_version()}; "
          f"onnxruntime {ort.__version__}; python {platform.python_version()}",
          f"- timing: {a.iters} runs per configuration, each timed alone, in {a.rounds} rounds that alternate the "
          f"configurations (ours: a fresh process per round with {a.warmup} warm-up runs; ORT: {a.warmup} warm-up "
          f"runs per size); median, p90 (nearest rank), min",
          f"- check at {sizes[0]}x{sizes[0]} (ours vs ORT, max|diff| / max|ORT| per output): {chk}", "",
          "| input | threads | runtime | median (ms) | p90 (ms) | min (ms) | median / ORT | min / ORT |",
          "|---|---|---|---|---|---|---|---|"]
    for size, threads, label, st, ref in sorted(rows, key=lambda r: (r[0], r[1])):
        md.append(f"| 1x3x{size}x{size} | {threads} | {label} | {st['median_ms']:.1f} | {st['p90_ms']:.1f} | "
                  f"{st['min_ms']:.1f} | {st['median_ms'] / ref['median_ms']:.2f} | {st['min_ms'] / ref['min_ms']:.2f} |")
    for size, threads, prof in profiles:
        if prof:
            md += ["", f"## Where our time goes at {size}x{size}, {threads} threads (`onnx-distill bench --profile`, "
                   "default environment)", "", "```", prof, "```"]
    with open(a.results, "w") as f:
        f.write("\n".join(md) + "\n")
    print("wrote", a.results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
