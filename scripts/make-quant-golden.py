#!/usr/bin/env python3
"""make-quant-golden.py - golden blocks for tests/unit-quant.c.

Quantizes fixed f32 inputs with llama.cpp's own quantizer, the ggml library
that the PyPI package llama-cpp-python ships (ggml_quantize_chunk, the
function llama-quantize calls), with and without an importance matrix, and
writes inputs and outputs to tests/data/quant/golden.bin:

    "SLMQGLD1", u32 record count, then per record:
    u16 name length, name, u32 byte count, bytes

Records: "n" (u32 row length), "w" (f32 importances, one per column),
"x/SET" (f32 rows), "q/SET/TYPE" (blocks without importances) and
"qi/SET/TYPE" (blocks with them, for the types that use them).

Run from the source tree: python3 scripts/make-quant-golden.py
"""
import ctypes
import glob
import os
import struct
import sys

import numpy as np

N = 512          # row length: two 256-element super-blocks
ROWS = 2

# ggml type ids
TYPES = {"f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
         "q2_k": 10, "q3_k": 11, "q4_k": 12, "q5_k": 13, "q6_k": 14,
         "bf16": 30}
WEIGHTED = {"q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k",
            "q6_k"}


def ggml():
    import llama_cpp
    libdir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    path = sorted(glob.glob(os.path.join(libdir, "libggml-base.so*")))[0]
    lib = ctypes.CDLL(path)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    return lib


def quantize(lib, tid, x, w):
    rows, n = x.shape
    out = ctypes.create_string_buffer(lib.ggml_row_size(tid, n) * rows)
    x = np.ascontiguousarray(x, dtype=np.float32)
    wp = None if w is None else np.ascontiguousarray(w, dtype=np.float32)
    size = lib.ggml_quantize_chunk(tid, x.ctypes.data, out, 0, rows, n,
                                   None if wp is None else wp.ctypes.data)
    return out.raw[:size]


def inputs():
    rng = np.random.default_rng(20261124)
    sets = {}
    sets["gauss"] = rng.standard_normal((ROWS, N)) * 0.02
    x = rng.standard_normal((ROWS, N)) * 0.05
    x[0, 17] = 40.0            # huge outliers
    x[1, 300] = -75.0
    x[1, 301] = 1e4
    sets["outlier"] = x
    # all-positive and all-negative groups, offsets: the min/affine paths
    x = np.abs(rng.standard_normal((ROWS, N))) * 0.3 + 0.1
    x[1] = -x[1]
    sets["offset"] = x
    # zero blocks, constant blocks, tiny values, sparse rows
    x = rng.standard_normal((ROWS, N)) * 1e-3
    x[0, :64] = 0.0
    x[0, 64:96] = 0.25
    x[0, 256:512] = 0.0
    x[1, :32] = 3e-9
    x[1, 32:256] = 0.0
    x[1, 100] = -1.0
    x[1, 300:316] = 1e-30
    sets["edge"] = x
    # heavy tails
    sets["laplace"] = rng.laplace(0, 0.03, (ROWS, N))
    w = rng.gamma(0.7, 1.0, N) + 1e-4
    w[::37] *= 50.0
    return sets, w


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(top, "tests", "data", "quant", "golden.bin")
    lib = ggml()
    sets, w = inputs()
    recs = [("n", struct.pack("<I", N)),
            ("w", np.asarray(w, dtype="<f4").tobytes())]
    for name, x in sets.items():
        x = np.asarray(x, dtype=np.float32)
        recs.append(("x/" + name, x.astype("<f4").tobytes()))
        for t, tid in TYPES.items():
            recs.append((f"q/{name}/{t}", quantize(lib, tid, x, None)))
            if t in WEIGHTED:
                recs.append((f"qi/{name}/{t}", quantize(lib, tid, x, w)))
    with open(out + ".tmp", "wb") as f:
        f.write(b"SLMQGLD1" + struct.pack("<I", len(recs)))
        for name, data in recs:
            nb = name.encode()
            f.write(struct.pack("<H", len(nb)) + nb + struct.pack("<I", len(data)))
            f.write(data)
    os.replace(out + ".tmp", out)
    print(f"{out}: {len(recs)} records, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    sys.exit(main())
