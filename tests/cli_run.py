"""`onnx-distill run` end to end: outputs written with --output are compared with onnxruntime on the
same inputs (tiny_cnn and a set of node-test models whose ops are all registered), image inputs
with a NumPy re-implementation of the preprocessing, output file naming, and bad input: each error
case must exit 2 with a message naming the offending file, and nothing may crash.

Comparison: max |got - want| / max(max |want|, 1e-3) <= 1e-4 for floats; integers and bools exact.

usage: cli_run.py TOOL TMPDIR NODE_TESTS_DIR TINY_CNN.onnx"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

TOOL, NODE_DIR, TINY = sys.argv[1], sys.argv[3], sys.argv[4]
# a folder of its own: several builds' ctest may share TMPDIR; kept when something fails
os.makedirs(sys.argv[2], exist_ok=True)
TMP = tempfile.mkdtemp(prefix="cli_run_", dir=os.path.abspath(sys.argv[2]))
EXCLUDED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_tests_excluded.txt")
RTOL = 1e-4

failures = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)
        print(f"FAIL: {what}")


def run(args, timeout=120):
    p = subprocess.run([TOOL, "run"] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    crashed = p.returncode < 0 or "Sanitizer" in p.stderr or "runtime error:" in p.stderr
    if crashed:
        failures.append(f"crash: run {' '.join(map(str, args))}: rc {p.returncode}\n{p.stderr[-2000:]}")
        print(f"FAIL: crash {args}: {p.stderr[-2000:]}")
    return p


def path(name):
    return os.path.join(TMP, name)


def save(name, arr):
    p = path(name)
    np.save(p, arr)
    return p


def file_name(output_name):
    """The file name rule of tools/cmd_run.c."""
    s = "".join("_" if c in "/\\:" or ord(c) < 0x20 else c for c in output_name)
    return "_" + s[1:] if s.startswith(".") else s


def rel_err(got, want):
    if want.size == 0:
        return 0.0
    g, w = got.astype(np.float64), want.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(w)
    both_inf = np.isinf(g) & np.isinf(w) & (np.sign(g) == np.sign(w))
    d = np.where(both_nan | both_inf, 0.0, np.abs(g - w))
    d = np.nan_to_num(d, nan=np.inf)
    finite = np.abs(w[np.isfinite(w)])
    scale = max(float(finite.max()) if finite.size else 0.0, 1e-3)
    return float(d.max()) / scale


def compare(got, want, what, rtol=RTOL):
    if got.dtype != want.dtype or got.shape != want.shape:
        check(False, f"{what}: got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}")
        return
    if want.dtype.kind in "fc":
        e = rel_err(got, want)
        check(e <= rtol, f"{what}: max rel err {e:.3g} > {rtol}")
    else:
        bad = int(np.count_nonzero(got != want))
        check(bad == 0, f"{what}: {bad} of {want.size} elements differ")


def run_and_compare(model_path, feeds, what, extra=(), ref=None, rtol=RTOL):
    """Saves feeds as .npy, runs the tool with --output, compares every output with onnxruntime."""
    tag = what.replace("/", "_").replace(" ", "_")
    args = [model_path]
    for i, (name, arr) in enumerate(feeds.items()):
        args += ["--input", f"{name}={save(f'{tag}_in{i}.npy', arr)}"]
    out = path(f"{tag}_out")
    p = run(args + ["--output", out, "--threads", "2"] + list(extra))
    if p.returncode != 0:
        check(False, f"{what}: exit {p.returncode}: {p.stderr.strip()[-600:]}")
        return
    m = onnx.load(model_path)
    if ref is None:
        sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        ref = sess.run(None, feeds)
    for o, want in zip(m.graph.output, ref):
        f = os.path.join(out, file_name(o.name) + ".npy")
        if not os.path.exists(f):
            check(False, f"{what}: {f} not written (stdout: {p.stdout.strip()})")
            continue
        got = np.load(f)
        compare(got, np.asarray(want), f"{what} output '{o.name}'", rtol)
        check(f"{o.name}: " in p.stdout, f"{what}: summary line for '{o.name}' missing: {p.stdout}")
    check(p.stdout.count("time: ") == 1, f"{what}: one timing line expected: {p.stdout}")


def expect_error(args, what, names, code=2):
    """Runs, expects exit `code` and every string of `names` in stderr."""
    p = run(args)
    ok = p.returncode == code and all(n in p.stderr for n in names)
    check(ok, f"{what}: exit {p.returncode} (want {code}), stderr lacks one of {names}: {p.stderr.strip()}")
    return p


# ---- registered ops (from `ops --markdown`) -------------------------------------------------------
md = subprocess.run([TOOL, "ops", "--markdown"], capture_output=True, text=True, check=True).stdout
registered = {}
for line in md.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    if len(cells) >= 3 and cells[2][:1].isdigit():
        domain = "" if cells[1] == "ai.onnx" else cells[1]
        registered[(domain, cells[0])] = [int(v) for v in cells[2].split(",")]


def runnable(m):
    opsets = {o.domain: o.version for o in m.opset_import}
    opsets.setdefault("", opsets.get("ai.onnx", 0))
    for n in m.graph.node:
        dom = "" if n.domain in ("", "ai.onnx") else n.domain
        if not any(s <= opsets.get(dom, 0) for s in registered.get((dom, n.op_type), [])):
            return False
    return True


# ---- tiny_cnn --------------------------------------------------------------------------------------
rng = np.random.default_rng(0)
tiny = onnx.load(TINY)
if runnable(tiny):
    run_and_compare(TINY, {"image": rng.standard_normal((2, 3, 32, 32)).astype(np.float32)}, "tiny_cnn batch 2")
    run_and_compare(TINY, {"image": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)}, "tiny_cnn batch 1")
else:
    print("note: tiny_cnn skipped: not all of its ops are registered yet")

# ---- node-test models -------------------------------------------------------------------------------
# A spread of input kinds: several inputs, int64 and bool inputs, int64 outputs, several outputs,
# scalars, shape-carrying inputs; each runs if its ops are registered and it is not excluded.
PREFERRED = [
    "test_relu", "test_add_bcast", "test_conv_with_strides_padding", "test_gemm_default_single_elem_vector_bias",
    "test_softmax_axis_1", "test_maxpool_2d_pads", "test_argmax_default_axis_example", "test_concat_3d_axis_0",
    "test_reshape_reordered_all_dims", "test_top_k", "test_resize_upsample_scales_linear",
    "test_nonmaxsuppression_center_point_box_format", "test_transpose_default", "test_gather_0",
    "test_batchnorm_epsilon", "test_globalaveragepool", "test_flatten_axis0", "test_where_example",
    "test_slice", "test_split_equal_parts_1d", "test_shape", "test_size",
    "test_equal", "test_range_float_type_positive_delta", "test_nonzero_example", "test_clip_default_inbounds",
    "test_reduce_sum_keepdims_example", "test_matmul_4d", "test_expand_dim_changed", "test_tile",
]
excluded = set()
if os.path.exists(EXCLUDED):
    with open(EXCLUDED) as f:
        excluded = {l.split("\t")[0].strip() for l in f if l.strip() and not l.startswith("#")}

ran = 0
for test in [t for t in PREFERRED if t]:
    d = os.path.join(NODE_DIR, test)
    if test in excluded or not os.path.isdir(d):
        continue
    m = onnx.load(os.path.join(d, "model.onnx"))
    if not runnable(m):
        continue
    inits = {i.name for i in m.graph.initializer}
    names = [i.name for i in m.graph.input if i.name not in inits]
    feeds = {}
    for k, name in enumerate(names):
        t = onnx.TensorProto()
        with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        feeds[name] = numpy_helper.to_array(t)
    if any(a.dtype.kind in "OSU" for a in feeds.values()):
        continue
    run_and_compare(os.path.join(d, "model.onnx"), feeds, test)
    ran += 1
print(f"node-test models run: {ran}")
check(ran >= 5 or len(registered) < 20, f"only {ran} node-test models could run")


# ---- small models made here ------------------------------------------------------------------------
def make_model(nodes, inputs, outputs, name, opset=13):
    g = helper.make_graph(nodes, name, inputs, outputs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    p = path(name + ".onnx")
    onnx.save(m, p)
    return p


have_identity = ("", "Identity") in registered
if have_identity:
    # output names that are not file names; two of them collide after the rule
    outs = ["a/b", ".hidden", "c:d\\e", "p/q", "p_q", "plain"]
    nodes = [helper.make_node("Identity", ["X"], [o], name=f"id{i}") for i, o in enumerate(outs)]
    m = make_model(nodes, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])],
                   [helper.make_tensor_value_info(o, TensorProto.FLOAT, [2]) for o in outs], "names")
    out = path("names_out/deeper/still")  # created with its parents
    p = run([m, "--input", f"X={save('names_x.npy', np.array([1.5, -2], np.float32))}", "--output", out])
    check(p.returncode == 0, f"names: exit {p.returncode}: {p.stderr}")
    want_files = ["a_b.npy", "_hidden.npy", "c_d_e.npy", "p_q.npy", "p_q_4.npy", "plain.npy"]
    got_files = sorted(os.listdir(out)) if os.path.isdir(out) else []
    check(got_files == sorted(want_files), f"names: files {got_files}, want {sorted(want_files)}")
    for f in got_files:
        compare(np.load(os.path.join(out, f)), np.array([1.5, -2], np.float32), f"names: {f}")

    # scalars, 1-tuples, bool, int64, uint8, float16, double: every npy dtype through Identity
    cases = [("f32_scalar", np.array(3.25, np.float32)), ("f64", np.array([1e300, -0.5])),
             ("f16", np.array([[1.5, -2]], np.float16)), ("i8", np.array([-128, 127], np.int8)),
             ("i16", np.array([-3], np.int16)), ("i32", np.arange(6, dtype=np.int32).reshape(2, 3)),
             ("i64", np.array([-(2 ** 62), 5], np.int64)), ("u8", np.array([0, 255], np.uint8)),
             ("u16", np.array([65535], np.uint16)), ("u32", np.array([4000000000], np.uint32)),
             ("u64", np.array([2 ** 63 + 5], np.uint64)), ("bool", np.array([True, False, True])),
             ("empty", np.zeros((2, 0), np.float32))]
    for name, arr in cases:
        dt = helper.np_dtype_to_tensor_dtype(arr.dtype)
        m = make_model([helper.make_node("Identity", ["x"], ["y"])],
                       [helper.make_tensor_value_info("x", dt, list(arr.shape))],
                       [helper.make_tensor_value_info("y", dt, list(arr.shape))], f"id_{name}")
        run_and_compare(m, {"x": arr}, f"identity {name}", ref=[arr])

    # --- image inputs: our decode + resize + normalise vs PIL decode + the same resize in NumPy ---
    try:
        from PIL import Image
    except ImportError:
        Image = None
        check(False, "Pillow missing: pip install -r tools/requirements-test.txt")
    if Image is not None:
        h, w = 45, 60
        yy, xx = np.mgrid[0:h, 0:w]
        pic = np.stack([20 + 200 * xx / (w - 1), 30 + 180 * yy / (h - 1), 128 + 60 * np.sin(xx / 5.0)], -1)
        jpg = path("photo.jpg")
        Image.fromarray(pic.astype(np.uint8)).save(jpg, quality=95)
        gray = path("gray.jpeg")
        Image.fromarray(pic[..., 0].astype(np.uint8), mode="L").save(gray, quality=95)

        def reference(file, size, mean, std):
            rgb = np.asarray(Image.open(file).convert("RGB"), dtype=np.float64)
            sh, sw = rgb.shape[:2]

            def taps(dn, sn):
                s = np.maximum((np.arange(dn) + 0.5) * sn / dn - 0.5, 0)
                i0 = np.minimum(s.astype(np.int64), sn - 1)
                i1 = np.minimum(i0 + 1, sn - 1)
                return i0, i1, np.where(i0 >= sn - 1, 0.0, s - i0)

            y0, y1, fy = taps(size, sh)
            x0, x1, fx = taps(size, sw)
            top = rgb[y0][:, x0] * (1 - fx)[None, :, None] + rgb[y0][:, x1] * fx[None, :, None]
            bot = rgb[y1][:, x0] * (1 - fx)[None, :, None] + rgb[y1][:, x1] * fx[None, :, None]
            v = top * (1 - fy)[:, None, None] + bot * fy[:, None, None]
            v = (v / 255 - np.array(mean)) / np.array(std)
            return v.transpose(2, 0, 1)[None].astype(np.float32)

        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        m = make_model([helper.make_node("Identity", ["image"], ["pre"])],
                       [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])],
                       [helper.make_tensor_value_info("pre", TensorProto.FLOAT, [1, 3, "h", "w"])], "pre")
        for file, size in ((jpg, 608), (jpg, 24), (gray, 37)):
            out = path(f"pre_out_{size}")
            p = run([m, "--input", f"image={file}", "--size", size, "--mean", ",".join(map(str, mean)),
                     "--std", ",".join(map(str, std)), "--output", out])
            check(p.returncode == 0, f"image {file} size {size}: exit {p.returncode}: {p.stderr}")
            if p.returncode == 0:
                got, want = np.load(os.path.join(out, "pre.npy")), reference(file, size, mean, std)
                check(got.shape == (1, 3, size, size), f"image {file}: shape {got.shape}")
                if got.shape == want.shape:
                    # libjpeg-turbo here and Pillow's own copy may differ by a level or two per pixel
                    lv = np.abs(got - want) * np.array(std, np.float32)[None, :, None, None] * 255
                    check(lv.max() <= 3 and lv.mean() <= 0.5,
                          f"image {file} size {size}: differs from the reference by up to {lv.max():.2f} "
                          f"levels (mean {lv.mean():.3f})")
        # the size comes from the model when --size is left out; tiny_cnn end to end on a photo
        if runnable(tiny):
            want_in = reference(jpg, 32, [0, 0, 0], [1, 1, 1])
            sess = ort.InferenceSession(TINY, providers=["CPUExecutionProvider"])
            # decoder differences of a level reach the logits scaled down; 1e-3 is ample
            run_and_compare(TINY, {}, "tiny_cnn on a JPEG", extra=["--input", f"image={jpg}"],
                            ref=sess.run(None, {"image": want_in}), rtol=1e-3)

        # broken JPEGs: truncated, garbage with a .jpg name, a JPEG header then junk
        with open(jpg, "rb") as f:
            data = f.read()
        for name, blob in (("trunc.jpg", data[: len(data) // 2]), ("garbage.jpg", b"not a jpeg at all"),
                           ("junk.jpg", data[:20] + bytes(range(256)) * 4), ("empty.jpg", b"")):
            with open(path(name), "wb") as f:
                f.write(blob)
            expect_error([m, "--input", f"image={path(name)}", "--size", 8], f"broken JPEG {name}", [path(name)])
        # an image for an input that is not float NCHW with 3 channels
        m_int = make_model([helper.make_node("Identity", ["x"], ["y"])],
                           [helper.make_tensor_value_info("x", TensorProto.INT64, [4])],
                           [helper.make_tensor_value_info("y", TensorProto.INT64, [4])], "int_in")
        expect_error([m_int, "--input", f"x={jpg}"], "JPEG for an int64 input", [jpg, "'x'"])
        m_dyn = make_model([helper.make_node("Identity", ["x"], ["y"])],
                           [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])], "dyn_in")
        expect_error([m_dyn, "--input", f"x={jpg}"], "JPEG with no size known", [jpg, "--size"])

# ---- bad input: every case exits 2 and names the file ------------------------------------------------
good = save("good.npy", rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
p = expect_error([TINY], "missing input", [TINY, "'image'", "float [batch, 3, 32, 32]"])
check("expects 1 input" in p.stderr, f"missing input: expected-input list missing: {p.stderr}")
p = expect_error([TINY, "--input", f"imgae={good}"], "unknown input name", [TINY, "'imgae'", "image: float"])
expect_error([TINY, "--input", f"c1.w={good}"], "initializer as input", [TINY, "'c1.w'", "weight"])
expect_error([TINY, "--input", f"image={good}", "--input", f"image={good}"], "input given twice", ["twice"])
expect_error([TINY, "--input", f"image={save('i64.npy', np.zeros((1, 3, 32, 32), np.int64))}"], "wrong dtype npy",
             [path("i64.npy"), "int64", "float"])
expect_error([TINY, "--input", f"image={save('f64.npy', np.zeros((1, 3, 32, 32)))}"], "double for float",
             [path("f64.npy"), "double"])
expect_error([TINY, "--input", f"image={save('shape.npy', np.zeros((1, 3, 31, 32), np.float32))}"],
             "wrong shape npy", [path("shape.npy"), "[1, 3, 31, 32]"])
expect_error([TINY, "--input", f"image={save('rank.npy', np.zeros((3, 32, 32), np.float32))}"],
             "wrong rank npy", [path("rank.npy")])
expect_error([TINY, "--input", f"image={path('nonexistent.npy')}"], "missing file", [path("nonexistent.npy")])
with open(good, "rb") as f:
    npy = f.read()
broken = {
    "magic.npy": b"\x93NUMPZ" + npy[6:],
    "trunc_data.npy": npy[:-5],
    "trunc_header.npy": npy[:40],
    "header.npy": npy.replace(b"'shape'", b"'shapf'"),
    "fortran.npy": npy.replace(b"False", b"True "),
    "version.npy": npy[:6] + b"\x09\x00" + npy[8:],
    "empty.npy": b"",
}
for name, blob in broken.items():
    with open(path(name), "wb") as f:
        f.write(blob)
    expect_error([TINY, "--input", f"image={path(name)}"], f"broken npy {name}", [path(name)])
expect_error([TINY, "--input", f"image={good}", "--size", "abc"], "bad --size", ["--size"])
expect_error([TINY, "--input", f"image={good}", "--std", "1,0,1"], "zero --std", ["--std"])
expect_error([TINY, "--input", f"image={good}", "--bogus"], "unknown option", ["--bogus"])
expect_error([path("nonexistent.onnx"), "--input", f"x={good}"], "missing model", [path("nonexistent.onnx")])
blocker = path("blocker")
open(blocker, "w").close()
expect_error([TINY, "--input", f"image={good}", "--output", os.path.join(blocker, "sub")], "unwritable --output",
             [blocker])
# NAME= may be left out for a one-input model
p = run([TINY, "--input", good])
check(p.returncode == 0 and "logits: float [1, 10]" in p.stdout or not runnable(tiny),
      f"input without NAME=: exit {p.returncode}: {p.stderr}")

print(f"{passed} passed, {len(failures)} failed")
if failures:
    print(f"files kept in {TMP}")
else:
    shutil.rmtree(TMP, ignore_errors=True)
sys.exit(1 if failures else 0)
