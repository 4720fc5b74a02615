#!/usr/bin/env python3
"""Export of a model past protobuf's 2 GiB limit (about 2.2 GB of float32 weights).

usage: roundtrip_big.py ONNX_DISTILL [TMP_DIR]

The source keeps the big tensor in an external file (written directly, so generating it is
cheap); the default export (auto) must keep it external (same entries, data file written beside
the output) and onnx.load (external data loaded) must read back the generated values exactly;
`--external-data never` must be refused (exit 2) without leaving any file behind.
(A source holding more than 2 GiB inline cannot be tested: protobuf, and so the importer, refuses
such a file. AUTO's moving of inline tensors shares its code with --external-data always, which
roundtrip_cases.py covers.)
Files go under TMP_DIR (default: the system's; CTest passes the build tree, as /tmp may be RAM)
and are removed at the end. Needs about 5 GB of disk and 6 GB of memory; exits 77
(skipped) when the machine has less or onnx/numpy are missing.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import uses_external_data
except ImportError as e:  # pragma: no cover - depends on the environment
    print(f"skipped: a reference package is missing ({e})")
    sys.exit(77)

N = 550_000_000                 # float32 elements: 2.2e9 bytes, over 2**31
CHUNK = 1 << 26                 # elements generated / compared at a time (256 MiB)
NEED_DISK = 5 * 10**9           # source + output of one case at a time, plus margin
NEED_MEM = 6 * 2**30            # onnx.load's copies of the 2.2 GB tensor, plus the tool's parameter block


def pattern(start, stop):
    """The big tensor's bits: i * 2654435761 mod 2**32 (Knuth's multiplicative hash), so a chunk
    written at the wrong offset or twice cannot compare equal."""
    return (np.arange(start, stop, dtype=np.uint32) * np.uint32(2654435761)).view(np.float32)


def write_pattern(f):
    for s in range(0, N, CHUNK):
        pattern(s, min(N, s + CHUNK)).tofile(f)


def small_tensor():
    return helper.make_tensor("small", TensorProto.FLOAT, [4], [1.0, -2.0, 3.5, float("nan")])


def graph(with_big_initializer):
    nodes = [helper.make_node("ReduceSum", ["big"], ["total"], name="sum", keepdims=0),
             helper.make_node("Mul", ["small", "total"], ["out"], name="mul")]
    inits = [small_tensor()]
    if with_big_initializer:
        inits.insert(0, TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[N]))
    g = helper.make_graph(nodes, "big_graph", [], [helper.make_tensor_value_info("out", TensorProto.FLOAT, [4])],
                          initializer=inits)
    return helper.make_model(g, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def verify_values(path, what):
    """onnx.load with external data; big must be the pattern, small the original bytes."""
    m = onnx.load(path)
    tensors = {t.name: t for t in m.graph.initializer}
    big = tensors["big"].raw_data
    if len(big) != 4 * N:
        raise AssertionError(f"{what}: big has {len(big)} bytes, expected {4 * N}")
    bits = np.frombuffer(big, dtype=np.uint32)
    for s in range(0, N, CHUNK):
        e = min(N, s + CHUNK)
        if not np.array_equal(bits[s:e], pattern(s, e).view(np.uint32)):
            raise AssertionError(f"{what}: big differs in elements {s}..{e}")
    if numpy_helper.to_array(tensors["small"]).tobytes() != numpy_helper.to_array(small_tensor()).tobytes():
        raise AssertionError(f"{what}: small differs")
    return onnx.load(path, load_external_data=False)


def run(tool, *args):
    t = time.time()
    proc = subprocess.run([tool, *args], capture_output=True, text=True)
    print(f"  onnx-distill {' '.join(os.path.basename(a) for a in args)}: exit {proc.returncode}, "
          f"{time.time() - t:.1f} s")
    return proc


def case_external(tool, tmp):
    src_dir, out_dir = os.path.join(tmp, "src"), os.path.join(tmp, "out")
    os.makedirs(src_dir)
    os.makedirs(out_dir)
    m = graph(True)
    big = m.graph.initializer[0]
    big.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "big.bin"), ("offset", "0"), ("length", str(4 * N))):
        big.external_data.add(key=k, value=v)
    src = os.path.join(src_dir, "model.onnx")
    with open(src, "wb") as f:
        f.write(m.SerializeToString())
    with open(os.path.join(src_dir, "big.bin"), "wb") as f:
        write_pattern(f)
    dst = os.path.join(out_dir, "model.onnx")
    proc = run(tool, "export", src, "-o", dst)
    if proc.returncode != 0:
        raise AssertionError(f"export failed: {proc.stderr.strip()}")
    if sorted(os.listdir(out_dir)) != ["big.bin", "model.onnx"]:
        raise AssertionError(f"output folder holds {sorted(os.listdir(out_dir))}")
    out = verify_values(dst, "external -> auto")
    if out != onnx.load(src, load_external_data=False):
        raise AssertionError("the exported proto differs from the source (external entries should be kept)")
    os.unlink(os.path.join(out_dir, "big.bin"))
    os.unlink(dst)
    proc = run(tool, "export", src, "-o", dst, "--external-data", "never")
    if proc.returncode != 2 or "2 GiB" not in proc.stderr:
        raise AssertionError(f"--external-data never: exit {proc.returncode}, expected 2 with a 2 GiB message: "
                             f"{proc.stderr.strip()}")
    if os.listdir(out_dir):
        raise AssertionError(f"a refused export left {os.listdir(out_dir)}")


def available_memory():
    """MemAvailable (free memory plus what the page cache would give back), else free pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    tool = os.path.abspath(sys.argv[1])
    base = sys.argv[2] if len(sys.argv) > 2 else tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    free = shutil.disk_usage(base).free
    mem = available_memory()
    if free < NEED_DISK or mem < NEED_MEM:
        print(f"skipped: needs {NEED_DISK / 1e9:.0f} GB free disk under {base} (has {free / 1e9:.1f}) and "
              f"{NEED_MEM / 2**30:.0f} GiB free memory (has {mem / 2**30:.1f})")
        return 77
    passed = failed = 0
    for name, fn in (("external", case_external),):
        tmp = tempfile.mkdtemp(prefix="od_big_", dir=base)
        start = time.time()
        try:
            fn(tool, tmp)
            passed += 1
            print(f"ok   {name} ({time.time() - start:.1f} s)")
        except AssertionError as e:
            failed += 1
            print(f"FAIL {name}: {e}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
