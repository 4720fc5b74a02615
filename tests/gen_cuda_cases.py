"""Writes the extra CUDA parity cases: shapes that reach the CUDA kernels' fast paths, which the small
gradcheck models (tests/gen_gradcheck.py) are too small to select.

usage: gen_cuda_cases.py OUTDIR [NODE_TESTS_DIR]

Run by tests/cuda_parity.c (emulated in CI, on the GPU by bench/gpu/run.sh), which compares each case
on the CPU and on the device, forward and backward. Two kinds of case:
  OUTDIR/<case>.onnx      float32 single-op models (a few small multi-node ones) on random inputs,
                          metadata "gradcheck" as in gen_gradcheck.py: "positive" (inputs in
                          [0.5, 1.5]), "spread=S" (distinct inputs: max/min), "training" (batch
                          statistics). Inputs that take no gradient are initializers.
  OUTDIR/nodes/<case>/    node-test folders (model.onnx, test_data_set_0/input_K.pb) for cases that
                          need fixed inputs: ties and boundary values (random inputs never tie), and,
                          when NODE_TESTS_DIR is given, copies of the ONNX node tests whose node runs
                          on the host in the plain node-test run because a shape/axes input leaves its
                          output shape unknown at compile time; every input but the first is folded
                          into an initializer, so the node runs on the device.
Paths and thresholds are those of the kernels' .cu files (and ops/cuda/ew.cuh for the elementwise
reductions); the comment above each group says which path its cases reach. Keep the whole set quick
in the emulation (tens of seconds at most): a case only needs to be just past its threshold.

Fresh gradients (OD_OP_BWD_FRESH, ops/op.h din_fresh): in the cases above every gradient the node
writes belongs to a graph input, which the executor zeroes up front, so the write paths of the
backward kernels never run. Every case (models, fixed-input and folded node tests, and the float32
gradcheck models of tests/gen_gradcheck.py, prefixed gc_) therefore also comes as:
  fresh_<case>   each float graph input goes through an Identity first: the node's gradients are
                 intermediate buffers, garbage (NaN in the emulation) until the backward writes them;
  accum_<case>   the same, plus a Neg of each of those Identity outputs as an extra graph output,
                 after the node: Neg's backward writes the buffer first, the node must add onto it;
  accum2_<case>  (models with two float inputs of one shape) the node reads the first input's
                 Identity output in both places: the first gradient is written, the second added to
                 the same buffer."""
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
RNG = np.random.RandomState(0)  # initializer values (deterministic)
CASES = {}  # name -> writer (unique names: a repeated name is an error)


def _add(name, writer):
    if name in CASES:
        raise SystemExit(f"gen_cuda_cases.py: case {name} defined twice")
    CASES[name] = writer


def _tensor(a, name):
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return numpy_helper.from_array(a, name)


def _model(name, nodes, ins, inits, outs, opset, meta):
    g = helper.make_graph(nodes, name, ins, outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    if meta:
        helper.set_model_props(m, {"gradcheck": meta})
    return m


def case(name, op, inputs, attrs=None, outputs=1, opset=17, meta="", dtype=F, out_types=None, wiring=None):
    """One node on random inputs. inputs: a shape (graph input of dtype), an ndarray (initializer) or
    None (omitted optional input); wiring names the node's inputs instead (the same input twice)."""
    ins, inits, names = [], [], []
    for i, spec in enumerate(inputs):
        if spec is None:
            names.append("")
            continue
        n = f"x{i}"
        names.append(n)
        if isinstance(spec, np.ndarray):
            inits.append(_tensor(spec, n))
        else:
            ins.append(helper.make_tensor_value_info(n, dtype, list(spec)))
    outs = [f"y{k}" for k in range(outputs)]
    types = out_types or [dtype] * outputs
    node = helper.make_node(op, wiring or names, outs, name=name, **(attrs or {}))
    m = _model(name, [node], ins, inits, [helper.make_tensor_value_info(o, t, None) for o, t in zip(outs, types)],
               opset, meta)
    _add(name, lambda out: onnx.save(m, os.path.join(out, name + ".onnx")))


def graph(name, nodes, ins, inits, outs, opset=17, meta=""):
    """Several nodes on random float inputs: ins (name, shape), inits (name, array), outs names."""
    m = _model(name, nodes, [helper.make_tensor_value_info(n, F, list(s)) for n, s in ins],
               [_tensor(a, n) for n, a in inits], [helper.make_tensor_value_info(o, F, None) for o in outs],
               opset, meta)
    _add(name, lambda out: onnx.save(m, os.path.join(out, name + ".onnx")))


def fixed(name, op, inputs, attrs=None, opset=17):
    """One node on the given inputs, as a node-test folder under OUTDIR/nodes. inputs: arrays, graph
    inputs; ("init", array): initializer."""
    ins, inits, names, data = [], [], [], []
    for i, a in enumerate(inputs):
        n = f"x{i}"
        names.append(n)
        if isinstance(a, tuple):
            inits.append(_tensor(a[1], n))
            continue
        t = numpy_helper.from_array(a.astype(np.float32) if a.dtype == np.float64 else a, n)
        ins.append(helper.make_tensor_value_info(n, t.data_type, list(a.shape)))
        data.append(t)
    node = helper.make_node(op, names, ["y"], name=name, **(attrs or {}))
    m = _model(name, [node], ins, inits, [helper.make_tensor_value_info("y", F, None)], opset, "")

    def write(out):
        d = os.path.join(out, "nodes", name, "test_data_set_0")
        os.makedirs(d, exist_ok=True)
        onnx.save(m, os.path.join(out, "nodes", name, "model.onnx"))
        for k, t in enumerate(data):
            with open(os.path.join(d, f"input_{k}.pb"), "wb") as f:
                f.write(t.SerializeToString())

    _add(name, write)


def i64(*v):
    return np.array(v, dtype=np.int64)


def f32(*v):
    return np.array(v, dtype=np.float32)


def rand(*shape, scale=1.0):
    return RNG.standard_normal(shape) * scale


def stats(c):  # BatchNormalization running mean, var
    return [rand(c, scale=0.3), RNG.rand(c) + 0.5]


def ints(lo, hi, *shape):  # integer-valued floats: many exact ties
    return RNG.randint(lo, hi, size=shape).astype(np.float32)


# ======== elementwise (ops/cuda/ew.cuh, binary.cu, variadic.cu, unary.cu) ========
# Gradient of a broadcast input (ew_reduce): dims collapse into kept / reduced groups; the
# innermost group reduced with >= 32 elements -> block kernel (a block per dst element), else the
# thread kernel. Slices (gridDim.y, partial sums + a finishing kernel) when the GPU would be short
# of work: block r_total / 4096 and ceil(1024 / n_dst), thread r_total / 64 and ceil(65536 / n_dst);
# the finish is a block per dst element below 1024 of them, a thread per element from 1024.
case("ew_red_thread_rows", "Add", [(64, 3000), (3000,)])             # thread, one slice
case("ew_red_thread_slices", "Add", [(4096, 8), (8,)])               # thread, 64 slices, finish by blocks
case("ew_red_thread_bigdst", "Add", [(300, 1024), (1024,)])          # thread, 4 slices, finish by threads
case("ew_red_thread_kept2", "Add", [(40, 30, 2), (40, 1, 2)])        # thread, kept group innermost
case("ew_red_thread_alt", "Add", [(7, 3, 5, 3, 9), (3, 1, 3, 1)])    # thread, 3 reduced groups, 4 slices
case("ew_red_block_rows", "Add", [(64, 3000), (64, 1)])              # block, one slice
case("ew_red_block_scalar", "Add", [(65537,), (1,)])                 # block, 16 slices into one value
case("ew_red_block_outer", "Add", [(40, 5, 600), (1, 5, 1)])         # block, outer reduced group too
case("ew_red_block_alt", "Add", [(50, 3, 5, 3, 64), (3, 1, 3, 1)])   # block, 3 reduced groups, 3 slices
# A term reduced from scratch (ew_grad_bcast: both operands broadcast), the general broadcast
# kernel (collapsed dims), a scalar on the left, the flat loops' 4-wide steps with a tail.
case("ew_mul_bcast_both", "Mul", [(64, 1, 50), (1, 30, 50)])
case("ew_mul_general", "Mul", [(2, 3, 1), (5,)])
case("ew_div_alt", "Div", [(7, 3, 5, 3, 9), (3, 1, 3, 1)], meta="positive")
case("ew_pow_bcast_both", "Pow", [(3, 1, 4), (5, 1)], meta="positive")
case("ew_prelu_chan", "PRelu", [(2, 16, 7, 7), (16, 1, 1)])
case("ew_sub_scalar_big", "Sub", [(1,), (70001,)])
case("ew_add_odd", "Add", [(1001,), (1001,)])
case("ew_relu_odd", "Relu", [(1003,)])
case("ew_leaky_big", "LeakyRelu", [(2, 8, 33, 33)], {"alpha": 0.1})
# Variadic: pairwise folding with broadcasting; Max/Min select directly for two inputs and through
# a selection buffer for more (distinct inputs; ties: ties_* below).
case("ew_sum3_bcast", "Sum", [(8, 1, 16), (16,), (4, 1)])
case("ew_mean3_bcast", "Mean", [(8, 1, 16), (16,), (4, 1)])
case("ew_max2_bcast", "Max", [(6, 1, 5), (4, 5)], meta="spread=1")
case("ew_max3_bcast", "Max", [(6, 1, 5), (4, 5), (6, 4, 5)], meta="spread=1")
case("ew_min4_bcast", "Min", [(6, 1, 5), (4, 5), (6, 4, 5), (1,)], meta="spread=1")
# The same input twice: both gradients accumulate into one buffer (Add/Sub's single pass for both,
# Mul's term reading the input being written, Max's tie on every element).
for op, k in [("Add", 2), ("Sub", 2), ("Mul", 2), ("Sum", 3), ("Max", 2)]:
    case(f"ew_{op.lower()}_self{k}", op, [(4, 64)], wiring=["x0"] * k)

# ======== BatchNormalization (batchnorm.cu) ========
# X as (N, F, P): bn_stats chunks a statistic's M = N * P elements so the grid has ~2048 blocks of
# >= 2048 elements; bn_apply is a 2-D grid for P >= 64 (16-byte when P % 4 == 0), else flat.
def bn(name, shape, opset=15, attrs=None, outputs=1, meta="training", params=None):
    c = shape[1]  # params: scale, B, mean, var (default: per channel, running statistics random)
    case(name, "BatchNormalization", [shape] + (params or [(c,), (c,)] + stats(c)), attrs, outputs, opset, meta)


bn("bn_train_rows", (4, 8, 40, 40))               # 2-D apply, 16-byte, 4 chunks per channel
bn("bn_train_flat", (2, 300, 5, 7))               # P < 64: flat apply, one chunk
bn("bn_train_2d", (64, 20))                       # rank 2 (P = 1)
bn("bn_train_chunks", (2, 2, 100, 100))           # 10 chunks per channel merged (Chan)
bn("bn_train_chunks_1img", (1, 3, 150, 151))      # chunks, P % 4 != 0: 2-D apply, scalar
bn("bn_infer_rows", (2, 4, 30, 30), meta="")      # running statistics, 2-D apply
bn("bn_infer_flat", (3, 40, 3, 3), meta="")
bn("bn9_train_5out", (3, 5, 6, 7), 9, {"momentum": 0.7}, 5)                          # old outputs
bn("bn14_trainmode_3out", (3, 5, 6, 7), 14, {"training_mode": 1, "momentum": 0.8}, 3, meta="")
bn("bn14_train_3out", (3, 5, 70), 14, {"training_mode": 1}, 3)
bn("bn7_spatial0_train", (4, 3, 5, 5), 7, {"spatial": 0},
   params=[(3, 5, 5), (3, 5, 5), rand(3, 5, 5, scale=0.3), RNG.rand(3, 5, 5) + 0.5])   # F = C * H * W

# ======== MaxPool, AveragePool (pool.cu), GlobalAverage/MaxPool (global_pool.cu) ========
# MaxPool backward: windows that do not overlap (stride >= extent) recompute their argmax and add
# dY there; overlapping ones go through an argmax map in the workspace and a gather per input.
# AveragePool backward: a gather per input. Global pools: a block per plane from 128 positions.
mp = lambda name, shape, attrs, **kw: case(name, "MaxPool", [shape], attrs, opset=12, **kw)
mp("maxpool_overlap_big", (2, 4, 33, 35), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
mp("maxpool_spp5", (2, 8, 13, 13), {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]})
mp("maxpool_k2s2", (2, 4, 32, 31), {"kernel_shape": [2, 2], "strides": [2, 2]})                 # no overlap
mp("maxpool_k2s2_even", (2, 4, 16, 14), {"kernel_shape": [2, 2], "strides": [2, 2]})            # windows tile X
mp("maxpool_k2s1_same", (2, 4, 13, 13), {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"})
mp("maxpool_indices", (2, 3, 9, 10), {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]},
   outputs=2, out_types=[F, TensorProto.INT64])
mp("maxpool_indices_colmajor", (2, 3, 9, 10), {"kernel_shape": [3, 3], "strides": [2, 2], "storage_order": 1},
   outputs=2, out_types=[F, TensorProto.INT64])
mp("maxpool_dil_ceil", (1, 3, 17, 16),
   {"kernel_shape": [3, 3], "strides": [3, 2], "dilations": [2, 1], "ceil_mode": 1, "pads": [1, 1, 0, 2]})
ap = lambda name, shape, attrs: case(name, "AveragePool", [shape], attrs, opset=19)
ap("avgpool_big_pad", (2, 4, 33, 35), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
ap("avgpool_big_incl", (2, 4, 33, 35),
   {"kernel_shape": [5, 3], "strides": [2, 3], "pads": [2, 1, 2, 1], "count_include_pad": 1, "ceil_mode": 1})
ap("avgpool_dil", (1, 3, 17, 16), {"kernel_shape": [3, 2], "strides": [1, 2], "dilations": [2, 3], "pads": [2, 1, 1, 2]})
ap("avgpool_same_lower", (1, 3, 11, 10),
   {"kernel_shape": [4, 3], "strides": [3, 2], "auto_pad": "SAME_LOWER", "count_include_pad": 1})
ap("avgpool_3d", (1, 2, 7, 6, 5), {"kernel_shape": [3, 2, 3], "strides": [2, 1, 2], "pads": [1, 0, 1, 1, 1, 0]})
case("globalavg_block", "GlobalAveragePool", [(2, 3, 20, 20)])
case("globalmax_block", "GlobalMaxPool", [(2, 3, 20, 20)])
case("globalavg_rank2", "GlobalAveragePool", [(3, 4)])

# ======== Softmax, LogSoftmax (softmax.cu) ========
# Contiguous lines (inner 1) of >= 128: a block per line; else a thread per line (inner > 1: strided).
case("softmax13_block", "Softmax", [(4, 300)], {"axis": -1}, opset=13)
case("softmax13_inner7", "Softmax", [(3, 200, 7)], {"axis": 1}, opset=13)
case("softmax11_flat", "Softmax", [(2, 3, 50)], {"axis": 1}, opset=11)         # coerced 2-D: block
case("logsoftmax13_block", "LogSoftmax", [(5, 500)], {"axis": -1}, opset=13)
case("logsoftmax11_axis0", "LogSoftmax", [(4, 5, 6)], {"axis": 0}, opset=11)    # one line of 120
case("logsoftmax13_inner", "LogSoftmax", [(2, 130, 3, 4)], {"axis": 1}, opset=13)

# ======== Reduce* (reduce.cu) ========
# Block kernel when r >= 64 and the last group is reduced (or r >= 1024 with < 4096 outputs); a
# single output of a long line splits into chunks (r / 4096, partials + finish; not LogSumExp,
# nor Max/Min/Prod backward); else a thread per output.
red = lambda name, op, shape, axes=None, opset=18, **kw: case(
    name, op, [shape] + ([axes] if axes is not None else []), opset=opset, **kw)
red("rsum_rows", "ReduceSum", (3, 1000), i64(1), opset=13)
red("rmean_rows", "ReduceMean", (8, 3, 300), i64(2), attrs={"keepdims": 0})
red("rsum_all_chunks", "ReduceSum", (100, 200), opset=13, attrs={"keepdims": 0})    # 4 chunks
red("rmean_all_chunks", "ReduceMean", (4, 100, 100))                                   # 9 chunks
red("rmean_general", "ReduceMean", (4, 3, 20, 20), i64(0, 2, 3))
red("rsum_general_col", "ReduceSum", (4, 3, 20, 5), i64(0, 2), opset=13)                # thread
red("rmax_rows", "ReduceMax", (4, 500), i64(1))
red("rmin_rows", "ReduceMin", (4, 500), i64(1))
red("rmax_col_chunks", "ReduceMax", (8192, 2), i64(0))   # r >= 1024, few outputs
red("rprod_rows", "ReduceProd", (2, 100), i64(1), meta="positive")
red("rlse_rows", "ReduceLogSumExp", (3, 400), i64(1))
red("rlse_col", "ReduceLogSumExp", (400, 3), i64(0))
red("rl2_col_chunks", "ReduceL2", (20000, 2), i64(0))
red("rl1_rows", "ReduceL1", (6, 200), i64(1))
red("rss_col", "ReduceSumSquare", (2, 64, 10), i64(1))
red("rlogsum_rows", "ReduceLogSum", (3, 256), i64(-1), meta="positive")
red("rmean11_attr", "ReduceMean", (4, 3, 20, 20), opset=11, attrs={"axes": [1, 3]})
red("rsum_int32axes", "ReduceSum", (4, 3, 5), np.array([1], dtype=np.int32), opset=13)

# ======== a small training network (conv, BN, pooling, softmax, reduce chained) ========
# Gradients flow through every kernel above from device-resident intermediates; BN statistics in
# training mode (running statistics updated) and in inference mode.
NET = dict(
    nodes=[helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
           helper.make_node("BatchNormalization", ["c1", "s1", "b1", "m1", "v1"], ["n1"]),
           helper.make_node("LeakyRelu", ["n1"], ["a1"], alpha=0.1),
           helper.make_node("MaxPool", ["a1"], ["p1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
           helper.make_node("BatchNormalization", ["p1", "s2", "b2", "m2", "v2"], ["n2"]),
           helper.make_node("AveragePool", ["n2"], ["q"], kernel_shape=[2, 2], strides=[2, 2]),
           helper.make_node("Softmax", ["q"], ["sm"], axis=1),
           helper.make_node("ReduceMean", ["sm", "ax"], ["y"], keepdims=0),
           helper.make_node("GlobalMaxPool", ["n2"], ["y2"])],
    ins=[("x", (4, 3, 24, 20))],
    inits=[("w1", rand(8, 3, 3, 3, scale=0.3)), ("s1", RNG.rand(8) + .5), ("b1", rand(8, scale=0.1)),
           ("m1", rand(8, scale=0.1)), ("v1", RNG.rand(8) + .5), ("s2", RNG.rand(8) + .5), ("b2", rand(8, scale=0.1)),
           ("m2", rand(8, scale=0.1)), ("v2", RNG.rand(8) + .5), ("ax", i64(1))],
    outs=["y", "y2"], opset=18)
graph("net_train", meta="training", **NET)
graph("net_infer", **NET)


# YOLOv3's blocks (conv + BN + LeakyRelu, a strided conv, a residual Add, MaxPool 2x2, the x2
# upsample and route Concat, the head's Reshape + Transpose + Sigmoid): every gradient but x's is
# an intermediate buffer, written fresh by the first backward that reaches it (ops/op.h din_fresh),
# some of them reusing buffers that earlier gradients have released.
def cbl(name, x, w, c, k=3, s=1):
    w_ = rand(c, w, k, k, scale=(2.0 / (w * k * k)) ** 0.5)
    return ([helper.make_node("Conv", [x, name + "_w"], [name + "_c"], pads=[k // 2] * 4, strides=[s, s]),
             helper.make_node("BatchNormalization", [name + "_c", name + "_s", name + "_b", name + "_m", name + "_v"],
                              [name + "_n"]),
             helper.make_node("LeakyRelu", [name + "_n"], [name], alpha=0.1)],
            [(name + "_w", w_), (name + "_s", RNG.rand(c) + .5), (name + "_b", rand(c, scale=0.1)),
             (name + "_m", rand(c, scale=0.1)), (name + "_v", RNG.rand(c) + .5)])


YOLO_NODES, YOLO_INITS = [], []
for args in [("a1", "x", 3, 8), ("a2", "a1", 8, 16, 3, 2), ("a3", "a2", 16, 8, 1), ("a4", "a3", 8, 16),
             ("h1", "cat", 24, 8, 1)]:
    n, i = cbl(*args)
    YOLO_NODES += n
    YOLO_INITS += i
YOLO_NODES[12:12] = [helper.make_node("Add", ["a2", "a4"], ["res"]),
                     helper.make_node("MaxPool", ["res"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
                     helper.make_node("Conv", ["pool", "wr"], ["route"]),
                     helper.make_node("Resize", ["route", "", "up2"], ["up"], mode="nearest"),
                     helper.make_node("Concat", ["up", "res"], ["cat"], axis=1)]
YOLO_NODES += [helper.make_node("Conv", ["h1", "wh", "bh"], ["head"]),
               helper.make_node("Reshape", ["head", "hshape"], ["head5"]),
               helper.make_node("Transpose", ["head5"], ["headt"], perm=[0, 1, 3, 4, 2]),
               helper.make_node("Sigmoid", ["headt"], ["y"]),
               helper.make_node("GlobalAveragePool", ["res"], ["y2"])]
YOLO_INITS += [("wr", rand(8, 16, 1, 1, scale=0.3)), ("up2", f32(1, 1, 2, 2)), ("wh", rand(15, 8, 1, 1, scale=0.3)),
               ("bh", rand(15, scale=0.1)), ("hshape", i64(2, 3, 5, 8, 8))]
graph("yolo_blocks_train", YOLO_NODES, [("x", (2, 3, 16, 16))], YOLO_INITS, ["y", "y2"], meta="training")

# ======== data movement (transpose.cu and ops/cuda/index.cuh; concat, split, slice, expand, tile,
# reshape, gather, resize, pad, depth_space) ========
# Transpose: 32x32 shared-memory tiles when the innermost dst dim is contiguous while another is
# contiguous in src (NCHW <-> NHWC, the YOLO head); any dtype (1-, 2-, 8-byte too; forward only).
case("move_transpose_tile3d", "Transpose", [(2, 40, 33)], {"perm": [0, 2, 1]})
case("move_transpose_yolo_head", "Transpose", [(2, 3, 85, 13, 13)], {"perm": [0, 1, 3, 4, 2]})
case("move_transpose_nchw_nhwc", "Transpose", [(2, 16, 9, 9)], {"perm": [0, 2, 3, 1]})
case("move_transpose_nhwc_nchw", "Transpose", [(2, 9, 9, 16)], {"perm": [0, 3, 1, 2]})
case("move_transpose_uint8_tiles", "Transpose", [(3, 20, 24)], {"perm": [0, 2, 1]}, dtype=TensorProto.UINT8)
case("move_transpose_int64", "Transpose", [(3, 20, 24)], {"perm": [2, 1, 0]}, dtype=TensorProto.INT64)
case("move_transpose_int16_general", "Transpose", [(3, 4, 5, 6)], {"perm": [1, 3, 0, 2]}, dtype=TensorProto.INT16)
# Strided copies grouped into 16-byte units (channel blocks of NCHW maps), a single copy for axis 0.
case("move_concat_aligned", "Concat", [(2, 8, 4, 4), (2, 4, 4, 4), (2, 12, 4, 4)], {"axis": 1})
case("move_concat_axis0", "Concat", [(3, 8), (5, 8)], {"axis": 0})
case("move_concat_uint8", "Concat", [(2, 3, 5), (2, 3, 5)], {"axis": 1}, dtype=TensorProto.UINT8)
case("move_split_aligned", "Split", [(2, 24, 4, 4), i64(8, 16)], {"axis": 1}, outputs=2, opset=13)
case("move_slice_channels", "Slice", [(2, 16, 4, 4), i64(4), i64(12), i64(1)], opset=13)
case("move_slice_reverse", "Slice", [(2, 8, 4, 4), i64(-1), i64(-100), i64(1), i64(-1)], opset=13)
case("move_slice_step3", "Slice", [(3, 10, 11), i64(1, 10), i64(100, 0), i64(1, 2), i64(3, -2)], opset=13)
# Accumulating backward of stride-0 views: a block per dX element when the sum runs along memory,
# else a thread per element over chunks (atomicAdd when there are few dX elements).
case("move_expand_inner_reduce", "Expand", [(4, 1), i64(4, 512)], opset=13)
case("move_expand_outer_reduce", "Expand", [(1, 8), i64(4096, 8)], opset=13)
case("move_expand_mixed", "Expand", [(3, 1, 5, 1), i64(3, 7, 5, 300)], opset=13)
case("move_expand_all", "Expand", [(1,), i64(70, 30)], opset=13)
case("move_tile_big", "Tile", [(2, 3, 4), i64(1, 50, 8)], opset=13)
case("move_reshape_big", "Reshape", [(2, 3, 40, 40), i64(6, -1)], opset=13)
# Gather: whole rows as 16-byte units, int32 indices, negative and repeated indices (atomicAdd).
case("move_gather_rows", "Gather", [(10, 16), np.array([[1, 9, 1], [0, -1, 3]], dtype=np.int64)], {"axis": 0}, opset=13)
case("move_gather_axis1_int32", "Gather", [(4, 10, 6), np.array([3, 3, -2], dtype=np.int32)], {"axis": 1}, opset=13)
case("move_gather_last", "Gather", [(4, 5, 7), np.array([[6, 0], [0, 6]], dtype=np.int64)], {"axis": 2}, opset=13)
# Resize: integer-factor nearest upsample without tables, the 2-D gather (last two axes), the
# general product of taps (other axes, 5-D, cubic).
case("move_resize_nearest_x2", "Resize", [(2, 3, 13, 13), None, f32(1, 1, 2, 2)], {"mode": "nearest"}, opset=13)
case("move_upsample9_x2", "Upsample", [(2, 4, 5, 7), f32(1, 1, 2, 2)], {"mode": "nearest"}, opset=9)
case("move_resize_bilinear_x2", "Resize", [(2, 3, 9, 11), None, f32(1, 1, 2, 2)], {"mode": "linear"}, opset=13)
case("move_resize_nearest_h_only", "Resize", [(1, 2, 5, 6), None, None, i64(1, 2, 10, 6)], {"mode": "nearest"}, opset=13)
case("move_resize_linear_h_only", "Resize", [(1, 2, 5, 6), None, None, i64(1, 2, 7, 6)], {"mode": "linear"}, opset=13)
case("move_resize_channels", "Resize", [(2, 4, 3, 3), None, f32(1, 2, 1, 1)], {"mode": "nearest"}, opset=13)
case("move_resize_channels_down", "Resize", [(2, 6, 3, 4), None, f32(1, 0.5, 1, 1)], {"mode": "nearest"}, opset=13)
case("move_resize_3axes_cubic", "Resize", [(2, 3, 4, 5), None, f32(1, 1.5, 0.8, 1.3)], {"mode": "cubic"}, opset=13)
case("move_resize_5d_linear", "Resize", [(1, 2, 3, 4, 5), None, f32(1, 1, 2, 1.5, 0.6)], {"mode": "linear"}, opset=13)
# Pad: reflect / wrap maps (atomicAdd backward), the constant_value input's gradient (block trees),
# another dtype.
case("move_pad_reflect_4d", "Pad", [(2, 3, 9, 10), i64(0, 0, 2, 3, 0, 0, 1, 4)], {"mode": "reflect"}, opset=13)
case("move_pad_wrap_4d", "Pad", [(2, 3, 5, 6), i64(0, 1, 7, 2, 1, 0, 3, 9)], {"mode": "wrap"}, opset=19)
case("move_pad_const_value_input", "Pad", [(2, 3, 40, 40), i64(0, 0, 3, 3, 0, 0, 3, 3), ()], {"mode": "constant"}, opset=11)
case("move_pad_uint8_edge", "Pad", [(2, 5, 6), i64(0, 2, 1, 1, 0, 2)], {"mode": "edge"}, opset=13, dtype=TensorProto.UINT8)
case("move_depthtospace_crd", "DepthToSpace", [(2, 16, 5, 6)], {"blocksize": 2, "mode": "CRD"}, opset=13)
case("move_spacetodepth_b3", "SpaceToDepth", [(2, 3, 9, 12)], {"blocksize": 3}, opset=13)

# ======== Conv (conv.cu: cuDNN), Gemm (gemm.cu), MatMul (matmul.cu) ========
# Conv: asymmetric pads (SAME_* with an odd total, explicit begin != end) go through the explicit
# zero-border copy and its backward; 1-D as 2-D; 3-D; grouped; constant X or W (no gradient for it).
def conv(name, shapes, attrs, consts=()):
    case(name, "Conv", [rand(*s) if i in consts else s for i, s in enumerate(shapes)], attrs)


conv("conv_same_lower", [(1, 3, 7, 6), (4, 3, 3, 2), (4,)], {"auto_pad": "SAME_LOWER", "strides": [2, 2]})
conv("conv_valid", [(2, 3, 8, 7), (5, 3, 3, 3)], {"auto_pad": "VALID", "strides": [2, 3]})
conv("conv_3d_groups_same", [(1, 4, 5, 4, 6), (6, 2, 3, 1, 2), (6,)],
     {"group": 2, "auto_pad": "SAME_UPPER", "strides": [2, 1, 2], "dilations": [1, 2, 1]})
conv("conv_depthwise_3d", [(1, 3, 4, 5, 4), (3, 1, 2, 2, 2)], {"group": 3, "pads": [1, 0, 1, 1, 1, 0]})
conv("conv_1d_same_even", [(2, 3, 10), (4, 3, 4), (4,)], {"auto_pad": "SAME_UPPER", "strides": [3]})
conv("conv_big_dilated", [(1, 2, 9, 9), (2, 2, 5, 5)], {"pads": [4, 4, 4, 4], "dilations": [2, 2]})
conv("conv_asym_big", [(1, 4, 6, 6), (4, 2, 3, 3), (4,)], {"group": 2, "pads": [3, 0, 0, 3], "strides": [1, 2]})
conv("conv_x_const", [(2, 3, 6, 6), (4, 3, 3, 3), (4,)], {"pads": [0, 1, 1, 0]}, consts=(0,))
conv("conv_w_const", [(2, 3, 6, 6), (4, 3, 3, 3), (4,)], {"pads": [1, 1, 1, 1]}, consts=(1, 2))
conv("conv_batch3_bias", [(3, 8, 9, 10), (16, 8, 3, 3), (16,)], {"pads": [1, 1, 1, 1]})
# two convs of the same shape (the algorithm cache), then a strided asymmetric one
W = rand(6, 6, 3, 3, scale=0.3)
graph("conv_chain", [helper.make_node("Conv", ["x", "w1"], ["h1"], pads=[1, 1, 1, 1]),
                     helper.make_node("Conv", ["h1", "w2"], ["h2"], pads=[1, 1, 1, 1]),
                     helper.make_node("Conv", ["h2", "w3", "b3"], ["y"], pads=[0, 1, 1, 0], strides=[2, 2])],
      [("x", (2, 6, 8, 8))], [("w1", W), ("w2", W * 0.5), ("w3", W[:4]), ("b3", rand(4))], ["y"])
# MatMul: one GEMM over the batch (unbroadcast A, 2-D B), strided-batched GEMMs over merged batch
# dims, broadcast operands whose gradients are reduced from per-batch products in the workspace.
mm = lambda name, a, b, b_const=False: case(name, "MatMul", [a, rand(*b) if b_const else b])
mm("matmul_3d_2d", (2, 3, 4, 5), (5, 6))
mm("matmul_2d_3d", (4, 5), (3, 5, 6))
mm("matmul_mixed", (2, 1, 4, 5), (1, 3, 5, 6))
mm("matmul_1d_3d", (5,), (2, 5, 6))
mm("matmul_3d_1d", (2, 4, 5), (5,))
mm("matmul_bcast_inner", (3, 1, 4, 5), (3, 2, 5, 6))
mm("matmul_bcast_outer", (1, 2, 4, 5), (3, 2, 5, 6))
mm("matmul_k1", (3, 4, 1), (1, 5))
mm("matmul_b_const", (2, 3, 4), (4, 5), b_const=True)
mm("matmul_5d", (2, 1, 3, 2, 4), (3, 1, 4, 3))
# Gemm: C broadcast into Y (column, row, 1x1, full), beta 0 drops C, dC reduced by a block per
# element of C; both transposes; the opset-6 broadcast attribute.
case("gemm_c_col", "Gemm", [(4, 5), (5, 3), (4, 1)], {"alpha": 0.5, "beta": 1.5})
case("gemm_c_n", "Gemm", [(4, 5), (5, 3), (3,)])
case("gemm_c_1x1", "Gemm", [(4, 5), (5, 3), (1, 1)], {"beta": -2.0})
case("gemm_beta0", "Gemm", [(4, 5), (3, 5), (4, 3)], {"beta": 0.0, "transB": 1})
case("gemm_both_trans_full_c", "Gemm", [(5, 4), (3, 5), (4, 3)], {"transA": 1, "transB": 1, "alpha": -1.2, "beta": 0.3})
case("gemm_old_opset", "Gemm", [(4, 5), (5, 3), (4, 3)], {"broadcast": 1}, opset=6)
case("gemm_big", "Gemm", [(33, 70), (70, 45), (45,)])

# ======== fixed inputs (OUTDIR/nodes): ties and boundary values ========
# Integer-valued inputs tie often: the backward must pick the element the CPU picks (the first
# maximum for pools and Max/Min; ReduceMax/Min share among ties as the CPU does), in each path.
fixed("ties_maxpool_overlap", "MaxPool", [ints(0, 3, 1, 2, 8, 8)], {"kernel_shape": [3, 3]}, opset=12)
fixed("ties_maxpool_k2s2", "MaxPool", [ints(0, 2, 2, 3, 8, 9)], {"kernel_shape": [2, 2], "strides": [2, 2]}, opset=12)
fixed("ties_globalmax_block", "GlobalMaxPool", [ints(0, 4, 2, 3, 24, 24)])  # > 256: several per thread
fixed("ties_globalmax_thread", "GlobalMaxPool", [ints(0, 3, 2, 3, 5, 5)])
fixed("ties_reducemax_rows", "ReduceMax", [ints(0, 5, 4, 300), ("init", i64(1))], opset=18)
fixed("ties_reducemin_col", "ReduceMin", [ints(0, 3, 50, 8), ("init", i64(0))], opset=18)
fixed("ties_reducemax_all_chunks", "ReduceMax", [ints(0, 9, 100, 100)], {"keepdims": 0}, opset=18)
fixed("ties_max2_bcast", "Max", [ints(0, 3, 6, 4, 5), ints(0, 3, 5)])
fixed("ties_min3_bcast", "Min", [ints(0, 3, 6, 1, 5), ints(0, 3, 4, 5), ints(0, 3, 6, 4, 5)])
# Derivative conventions at kinks (Relu, LeakyRelu, Abs at 0, Clip at its bounds), ReduceProd with
# zeros in a line (0, 1, 2 of them), ReduceL2 / ReduceL1 of an all-zero line.
fixed("kink_relu", "Relu", [ints(-2, 3, 4, 33)])
fixed("kink_leakyrelu", "LeakyRelu", [ints(-2, 3, 4, 33)], {"alpha": 0.1})
fixed("kink_abs", "Abs", [ints(-2, 3, 4, 33)])
fixed("kink_clip", "Clip", [ints(-3, 4, 4, 33), ("init", f32(-1)), ("init", f32(2))], opset=13)
ZEROS = np.array([[1, 2, 3, 4, 5, 0.5], [1, 0, 3, 2, 1, 1], [0, 2, 1, 0, 3, 1], [0, 0, 0, 0, 0, 0]], np.float32)
fixed("kink_reduceprod_zeros", "ReduceProd", [ZEROS, ("init", i64(1))], opset=18)
fixed("kink_reducel2_zero_row", "ReduceL2", [ZEROS, ("init", i64(1))], opset=18)
fixed("kink_reducel1_zero_row", "ReduceL1", [ZEROS, ("init", i64(1))], opset=18)

# ======== folded node tests (OUTDIR/nodes/test_*) ========
# Node tests of these ops with more than one graph input: their shape / axes / scales inputs become
# initializers (from test_data_set_0), so the node is shaped at compile time and runs on the device.
FOLD_OPS = {"Reshape", "Expand", "Tile", "Slice", "Pad", "Resize", "Upsample", "Split", "Squeeze", "Unsqueeze",
            "ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
            "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"}


def fold_node_tests(src, out):
    n = 0
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name, "model.onnx")
        ds = os.path.join(src, name, "test_data_set_0")
        if not os.path.exists(path) or not os.path.isdir(ds):
            continue
        m = onnx.load(path)
        g = m.graph
        inits = {t.name for t in g.initializer}
        real = [i for i in g.input if i.name not in inits]
        if len(g.node) != 1 or g.node[0].op_type not in FOLD_OPS or len(real) < 2:
            continue
        if real[0].type.tensor_type.elem_type == TensorProto.BOOL:  # no CUDA kernel takes bool
            continue
        for k, inp in enumerate(real[1:], 1):
            t = onnx.TensorProto()
            with open(os.path.join(ds, f"input_{k}.pb"), "rb") as f:
                t.ParseFromString(f.read())
            t.name = inp.name
            g.initializer.append(t)
        del g.input[:]
        g.input.extend(real[:1])
        d = os.path.join(out, "nodes", name)
        os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
        onnx.save(m, os.path.join(d, "model.onnx"))
        shutil.copy(os.path.join(ds, "input_0.pb"), os.path.join(d, "test_data_set_0", "input_0.pb"))
        n += 1
    return n


# ======== fresh gradients: the variants of every case (see the top of this file) ========
def _float_inputs(g):
    return [i for i in g.input if i.type.tensor_type.elem_type == F]


def _through_identity(m):
    """m with every float graph input x read through Identity(x) -> x__fresh; None when m has none."""
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    g = m2.graph
    names = [i.name for i in _float_inputs(g)]
    if not names:
        return None
    for node in g.node:
        for k, n in enumerate(node.input):
            if n in names:
                node.input[k] = n + "__fresh"
    ids = [helper.make_node("Identity", [n], [n + "__fresh"], name=n + "__fresh") for n in names]
    nodes = ids + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return m2


def _with_neg(m):
    """accum_: a Neg of each Identity output after the node, as an extra graph output."""
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    g = m2.graph
    for i in _float_inputs(g):
        g.node.append(helper.make_node("Neg", [i.name + "__fresh"], [i.name + "__neg"], name=i.name + "__neg"))
        g.output.append(helper.make_tensor_value_info(i.name + "__neg", F, None))
    return m2


def _read_twice(m):
    """accum2_: the second float input of the first same-shaped pair replaced by the first (through
    its Identity); None when there is no such pair."""
    g = m.graph
    ins = _float_inputs(g)
    shape = lambda i: [d.dim_value for d in i.type.tensor_type.shape.dim]
    for a in range(len(ins)):
        for b in range(a + 1, len(ins)):
            if shape(ins[a]) != shape(ins[b]):
                continue
            m2 = onnx.ModelProto()
            m2.CopyFrom(m)
            g2 = m2.graph
            for node in g2.node:
                for k, n in enumerate(node.input):
                    if n == ins[b].name + "__fresh":
                        node.input[k] = ins[a].name + "__fresh"
            keep = [n for n in g2.node if not (n.op_type == "Identity" and n.input[0] == ins[b].name)]
            del g2.node[:]
            g2.node.extend(keep)
            inputs = [i for i in g2.input if i.name != ins[b].name]
            del g2.input[:]
            g2.input.extend(inputs)
            return m2
    return None


def fresh_variants(m):
    """(prefix, model) pairs for model m (fresh_, accum_, accum2_), or none."""
    f = _through_identity(m)
    if f is None:
        return []
    out = [("fresh_", f), ("accum_", _with_neg(f))]
    twice = _read_twice(f)
    if twice is not None:
        out.append(("accum2_", twice))
    return out


def write_fresh_models(src, out, prefix=""):
    """The variants of every model src/<case>.onnx as out/<variant><prefix><case>.onnx; their count."""
    n = 0
    for f in sorted(os.listdir(src)):
        if not f.endswith(".onnx") or f.startswith(("fresh_", "accum_", "accum2_")):
            continue
        for pre, v in fresh_variants(onnx.load(os.path.join(src, f))):
            onnx.save(v, os.path.join(out, pre + prefix + f))
            n += 1
    return n


def write_fresh_nodes(nodes):
    """The variants of every node-test folder nodes/<case> whose graph inputs stay the same (fresh_,
    accum_): nodes/<variant><case> with the same test_data_set_0; their count."""
    n = 0
    for name in sorted(os.listdir(nodes)):
        if name.startswith(("fresh_", "accum_", "accum2_")):
            continue
        for pre, v in fresh_variants(onnx.load(os.path.join(nodes, name, "model.onnx"))):
            if pre == "accum2_":  # one graph input less: the input files would not match
                continue
            d = os.path.join(nodes, pre + name)
            shutil.copytree(os.path.join(nodes, name, "test_data_set_0"), os.path.join(d, "test_data_set_0"))
            onnx.save(v, os.path.join(d, "model.onnx"))
            n += 1
    return n


def write_fresh_gradcheck(out):
    """The variants of the float32 gradcheck models (tests/gen_gradcheck.py, which picks float32 from
    its command line when imported) as out/<variant>gc_<case>.onnx; their count."""
    import tempfile
    argv, sys.argv = sys.argv, [sys.argv[0], "--float32"]
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import gen_gradcheck
    finally:
        sys.argv = argv
    if not gen_gradcheck.FLOAT32:
        raise SystemExit("gen_cuda_cases.py: gen_gradcheck was imported without --float32")
    with tempfile.TemporaryDirectory() as tmp:
        for c in gen_gradcheck.CASES:
            gen_gradcheck.write(c, tmp)
        return write_fresh_models(tmp, out, "gc_")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: gen_cuda_cases.py OUTDIR [NODE_TESTS_DIR]")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):  # no stale cases from an older version of this file
        if f.endswith(".onnx"):
            os.remove(os.path.join(out, f))
    shutil.rmtree(os.path.join(out, "nodes"), ignore_errors=True)
    for write in CASES.values():
        write(out)
    folded = 0
    if len(sys.argv) == 3 and os.path.isdir(sys.argv[2]):
        folded = fold_node_tests(sys.argv[2], out)
    elif len(sys.argv) == 3:
        print(f"gen_cuda_cases.py: {sys.argv[2]}: no node tests there, none folded", file=sys.stderr)
    n_fixed = len(os.listdir(os.path.join(out, "nodes"))) - folded
    n_models = len(CASES) - n_fixed
    fresh = write_fresh_models(out, out) + write_fresh_gradcheck(out)
    fresh_nodes = write_fresh_nodes(os.path.join(out, "nodes"))
    print(f"wrote {n_models} models to {out}, {n_fixed} fixed-input cases and {folded} folded node tests "
          f"to {out}/nodes; fresh-gradient variants: {fresh} models, {fresh_nodes} node tests")
