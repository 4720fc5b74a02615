"""Writes the NumPy-made .npy fixtures in tests/data/npy/ that tests/test_npy.c reads (committed;
rerun only to change them): .venv/bin/python tests/gen_npy.py [OUTDIR]

Contents follow one rule that the C test recomputes: element i of a signed or float array is
(i - 3) * step (step 0.5 for floats, 1 for ints), of an unsigned one i * 7 % 256 (u1) or i * 1000003
(wider), of a bool one i % 3 == 0. File names: <descr without byte order>_<shape>[_<variant>].npy."""
import os
import sys

import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "data", "npy")
os.makedirs(out, exist_ok=True)


def values(dtype, shape):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        v = (i - 3) * 0.5
    elif dt.kind == "i":
        v = i - 3
    elif dt.kind == "u":
        v = i * 7 % 256 if dt.itemsize == 1 else i * 1000003
    else:
        v = i % 3 == 0
    return v.astype(dtype).reshape(shape)


def save(name, a, version=None):
    path = os.path.join(out, name)
    if version is None:
        np.save(path, a)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, a, version=version)


save("f4_2x3.npy", values("<f4", (2, 3)))
save("f8_5.npy", values("<f8", (5,)))
save("f2_2x2.npy", values("<f2", (2, 2)))
save("i1_7.npy", values("i1", (7,)))
save("i2_3x2.npy", values("<i2", (3, 2)))
save("i4_1x2x3x4.npy", values("<i4", (1, 2, 3, 4)))
save("i8_4.npy", values("<i8", (4,)))
save("u1_3x3.npy", values("u1", (3, 3)))
save("u2_4.npy", values("<u2", (4,)))
save("u4_2x2.npy", values("<u4", (2, 2)))
save("u8_3.npy", values("<u8", (3,)))
save("b1_2x3.npy", values("?", (2, 3)))
save("f4_scalar.npy", values("<f4", ()))
save("f4_2x0x3.npy", values("<f4", (2, 0, 3)))
save("f4_2x3_v2.npy", values("<f4", (2, 3)), version=(2, 0))
save("f4_2x3_v3.npy", values("<f4", (2, 3)), version=(3, 0))
save("i4_2x3_be.npy", values(">i4", (2, 3)))
save("f8_3_be.npy", values(">f8", (3,)))
save("f4_2x3_fortran.npy", np.asfortranarray(values("<f4", (2, 3))))
save("c8_2.npy", np.zeros(2, np.complex64))
save("U3_2.npy", np.array(["ab", "c"], dtype="<U3"))
save("struct_2.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
print(f"wrote {len(os.listdir(out))} files to {out}")
