#!/usr/bin/env python3
"""make-kern-golden.py - golden files for the dequantization kernels.

For each weight type, writes tests/data/kern/NAME.bin (random GGUF blocks,
512 elements) and NAME.f32 (their values as little-endian float32, from
gguf-py's numpy dequantization, the reference). The block bytes are random
except the f16 scale fields, set to finite values of realistic size (random
bytes there could be NaN or infinity). tests/unit-kern.c checks that every
kernel variant's dequantization gives exactly these floats.

Usage: scripts/make-kern-golden.py [OUTDIR]   (needs: pip install gguf numpy)
The output is deterministic (fixed seed); the files are committed.
"""
import os
import sys

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf.quants import dequantize

N = 512  # elements per type

# name -> (type, [(byte offset of an f16 field, low, high), ...])
TYPES = {
    "f32": (T.F32, []),
    "f16": (T.F16, []),
    "bf16": (T.BF16, []),
    "q4_0": (T.Q4_0, [(0, 1e-3, 5e-2)]),
    "q4_1": (T.Q4_1, [(0, 1e-3, 5e-2), (2, -0.2, 0.2)]),
    "q5_0": (T.Q5_0, [(0, 1e-3, 5e-2)]),
    "q5_1": (T.Q5_1, [(0, 1e-3, 5e-2), (2, -0.2, 0.2)]),
    "q8_0": (T.Q8_0, [(0, 1e-4, 5e-3)]),
    "q2_k": (T.Q2_K, [(80, 1e-3, 5e-2), (82, 1e-3, 5e-2)]),
    "q3_k": (T.Q3_K, [(108, 1e-3, 5e-2)]),
    "q4_k": (T.Q4_K, [(0, 1e-4, 5e-3), (2, 1e-4, 5e-3)]),
    "q5_k": (T.Q5_K, [(0, 1e-4, 5e-3), (2, 1e-4, 5e-3)]),
    "q6_k": (T.Q6_K, [(208, 1e-4, 5e-3)]),
}


def blocks(rng, qtype, fields):
    be, bb = GGML_QUANT_SIZES[qtype]
    nb = N // be
    if qtype == T.F32:
        return rng.uniform(-2, 2, N).astype("<f4").view(np.uint8).reshape(nb, bb)
    if qtype == T.F16:
        v = rng.uniform(-2, 2, N).astype("<f2")
        v[:4] = [6.1e-5, -3e-7, 65504.0, 0.0]  # smallest normal, subnormal, max
        return v.view(np.uint8).reshape(nb, bb)
    if qtype == T.BF16:
        v = rng.uniform(-2, 2, N).astype("<f4").view("<u4")
        return (v >> 16).astype("<u2").view(np.uint8).reshape(nb, bb)
    b = rng.integers(0, 256, (nb, bb), dtype=np.uint8)
    for off, lo, hi in fields:
        h = rng.uniform(lo, hi, nb).astype("<f2")
        b[:, off:off + 2] = h.view(np.uint8).reshape(nb, 2)
    return b


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "data", "kern")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261124)
    for name, (qtype, fields) in TYPES.items():
        b = blocks(rng, qtype, fields)
        y = dequantize(b.reshape(-1), qtype).astype("<f4").reshape(-1)
        assert y.size == N and np.all(np.isfinite(y)), name
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(b.tobytes())
        with open(os.path.join(out, name + ".f32"), "wb") as f:
            f.write(y.tobytes())
    print("wrote", len(TYPES), "types to", out)


if __name__ == "__main__":
    main()
