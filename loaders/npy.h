/* loaders/npy.h: NumPy .npy files (the format np.save writes), for `onnx-distill run` inputs and
 * outputs and for test data.
 *
 * Format (numpy/lib/format.py, "NEP 1"): the magic "\x93NUMPY", a major and minor version byte,
 * the header length (uint16 little-endian in version 1.0, uint32 in 2.0 and 3.0), then the header:
 * a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ended by '\n', then the raw elements in C (row-major) order.
 *
 * Read: versions 1.0, 2.0 and 3.0; dtypes <f4 <f8 <f2 <i1..<i8 <u1..<u8 |i1 |u1 |b1 ('>' big-endian
 * ones are byte-swapped, '=' is taken as little-endian); C order only. Every failure names the file
 * and what is wrong: OD_ERR_IO when the file cannot be read, OD_ERR_INVALID_ARG when it is not a
 * well-formed .npy file, OD_ERR_UNSUPPORTED for a well-formed one we do not take (Fortran order,
 * structured or object dtypes, more than OD_MAX_DIMS dims).
 * Write: version 1.0 (2.0 only when the header would not fit), header padded to 64 bytes. */
#ifndef OD_NPY_H
#define OD_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"

/* Reads a .npy file into *out (data malloc'd; free with od_host_tensor_free). Bool values other
 * than 0 and 1 are stored as 1. On failure *out is untouched. */
enum od_status od_npy_read(const char *path, struct od_host_tensor *out, struct od_err *err);

/* The same from a buffer holding a whole .npy file; name is used in messages. */
enum od_status od_npy_read_buffer(const uint8_t *buf, size_t len, const char *name,
                                  struct od_host_tensor *out, struct od_err *err);

/* Writes a tensor of the given dtype (float, double, float16, int8..int64, uint8..uint64, bool;
 * bfloat16 has no NumPy dtype and is refused) and shape. data holds numel elements, row-major.
 * A partly written file is removed on failure. */
enum od_status od_npy_write(const char *path, int dtype, int rank, const int64_t *dims, const void *data,
                            struct od_err *err);

/* The NumPy descr for a dtype ("<f4", "|b1", ...), or NULL when NumPy has none. */
const char *od_npy_descr(int dtype);

#endif
