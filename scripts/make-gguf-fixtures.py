#!/usr/bin/env python3
"""Regenerate the GGUF reader fixtures in tests/data/gguf/.

Writes small GGUF files with the PyPI `gguf` package (pip install gguf numpy)
and tests/data/gguf/expect.json, which lists what the `gguf` package's own
reader (GGUFReader) sees in them: every key's type and value, and each
tensor's type, shape, offset, size and the sha256 of its raw bytes. When the
shared tokenizer vocabularies are present (default: ../shared/vocab beside the
repository, or $SLM_SHARED/vocab), it also records, for each of them, the
counts and a digest of every metadata array, so tests/unit-gguf.c can check
the C reader against the Python one.

Usage: scripts/make-gguf-fixtures.py [OUTDIR]
"""

import hashlib
import importlib.metadata
import json
import os
import struct
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def q4_k_bytes(rows):
    """Deterministic, well-formed Q4_K blocks (d, dmin, 12 scale bytes, 128 quant bytes)."""
    out = bytearray()
    for r in range(rows):
        out += np.float16(0.0625 * (r + 1)).tobytes()   # d
        out += np.float16(0.03125).tobytes()             # dmin
        out += bytes((7 * i + r) & 0x3F for i in range(12))
        out += bytes((i * 37 + r * 11) & 0xFF for i in range(128))
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(rows, 144)


def q6_k_bytes(rows):
    """Deterministic, well-formed Q6_K blocks (ql[128], qh[64], scales[16], d)."""
    out = bytearray()
    for r in range(rows):
        out += bytes((i * 29 + r) & 0xFF for i in range(128))
        out += bytes((i * 53 + 3 * r) & 0xFF for i in range(64))
        out += bytes((i - 8) & 0xFF for i in range(16))
        out += np.float16(0.01 * (r + 1)).tobytes()
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(rows, 210)


def write_all_types(path):
    w = gguf.GGUFWriter(path, "slmtest")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 3.25)
    w.add_float32("test.f32_inexact", 0.1)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "h\u00e9llo w\u00f6rld \u2603")
    w.add_key_value("test.empty_string", "", VT.STRING)  # add_string() skips ""
    w.add_uint64("test.u64", (1 << 63) + 5)
    w.add_int64("test.i64", -(1 << 62) - 7)
    w.add_float64("test.f64", -1.5e300)
    w.add_array("test.arr_str", ["a", "bb", "", "h\u00e9llo", "x" * 40])
    w.add_key_value("test.arr_u8", [0, 1, 255], VT.ARRAY, sub_type=VT.UINT8)
    w.add_key_value("test.arr_i8", [-128, 0, 127], VT.ARRAY, sub_type=VT.INT8)
    w.add_key_value("test.arr_u16", [0, 65535], VT.ARRAY, sub_type=VT.UINT16)
    w.add_key_value("test.arr_i16", [-32768, 32767], VT.ARRAY, sub_type=VT.INT16)
    w.add_key_value("test.arr_u32", [1, 4294967295], VT.ARRAY, sub_type=VT.UINT32)
    w.add_array("test.arr_i32", [-5, 0, 7, 2147483647])
    w.add_array("test.arr_f32", [0.5, -2.25, 1e-3])
    w.add_key_value("test.arr_u64", [0, 18446744073709551615], VT.ARRAY, sub_type=VT.UINT64)
    w.add_key_value("test.arr_i64", [-9223372036854775808, 9223372036854775807],
                    VT.ARRAY, sub_type=VT.INT64)
    w.add_key_value("test.arr_f64", [1.0, -0.1, 6.02e23], VT.ARRAY, sub_type=VT.FLOAT64)
    w.add_array("test.arr_bool", [True, False, True])
    w.add_array("test.nested", [[1, 2], [3], [4, 5, 6]])
    w.add_array("test.nested_str", [["x", "yy"], ["z"]])
    w.add_string("test.after_nested", "still parsed")

    rng = np.random.default_rng(1234)
    f32 = (np.arange(15, dtype=np.float32) * 0.5 - 3.0).reshape(3, 5)
    w.add_tensor("t.f32", f32)
    f16 = (np.arange(24, dtype=np.float32) / 8.0).astype(np.float16).reshape(2, 3, 4)
    w.add_tensor("t.f16", f16)
    x = (rng.standard_normal((2, 64)) * 0.5).astype(np.float32)
    w.add_tensor("t.q8_0", gguf.quants.quantize(x, QT.Q8_0), raw_dtype=QT.Q8_0)
    x = (rng.standard_normal((3, 32))).astype(np.float32)
    w.add_tensor("t.q4_0", gguf.quants.quantize(x, QT.Q4_0), raw_dtype=QT.Q4_0)
    x = (rng.standard_normal((1, 96))).astype(np.float32)
    w.add_tensor("t.q4_1", gguf.quants.quantize(x, QT.Q4_1), raw_dtype=QT.Q4_1)
    w.add_tensor("t.q4_k", q4_k_bytes(2), raw_dtype=QT.Q4_K)
    w.add_tensor("t.q6_k", q6_k_bytes(1), raw_dtype=QT.Q6_K)
    w.add_tensor("t.f32_4d", np.arange(2 * 1 * 3 * 2, dtype=np.float32).reshape(2, 1, 3, 2))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_align64(path):
    w = gguf.GGUFWriter(path, "slmtest")
    w.add_custom_alignment(64)
    w.add_string("test.note", "custom alignment")
    w.add_tensor("a", np.arange(3, dtype=np.float32))
    w.add_tensor("b", np.arange(5, dtype=np.float32) * -1.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_no_tensors(path):
    w = gguf.GGUFWriter(path, "slmtest")
    w.add_string("test.note", "metadata only")
    w.add_uint32("test.n", 7)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def jvalue(vtype, v):
    """A scalar as JSON: 64-bit unsigned ints as decimal strings (jansson's
    integers are signed 64-bit)."""
    if vtype == VT.UINT64:
        return str(int(v))
    if vtype in (VT.FLOAT32, VT.FLOAT64):
        return float(v)
    if vtype == VT.BOOL:
        return bool(v)
    if vtype == VT.STRING:
        return v
    return int(v)


def field_entry(field):
    types = list(field.types)
    e = {"key": field.name, "type": int(types[0])}
    if types[0] == VT.ARRAY:
        # GGUFReader flattens nested arrays; record the element type of the
        # top level (types[1]) and the flat leaf values it returns.
        e["arr_type"] = int(types[1])
        # parts: key length, key bytes, value type, element type, count, ...
        e["arr_n"] = int(field.parts[4][0])
        leaf = types[-1]
        e["leaf_type"] = int(leaf)
        e["flat"] = [jvalue(leaf, v) for v in field.contents()]
    else:
        e["value"] = jvalue(types[0], field.contents())
    return e


def describe(path):
    r = gguf.GGUFReader(path)
    d = {
        "n_kv": len(r.fields) - 3,  # GGUFReader adds GGUF.version/tensor_count/kv_count
        "n_tensors": len(r.tensors),
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "kv": [],
        "tensors": [],
    }
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        d["kv"].append(field_entry(field))
    for t in r.tensors:
        raw = t.data.tobytes()
        d["tensors"].append({
            "name": t.name,
            "type": int(t.tensor_type),
            "type_name": t.tensor_type.name.lower(),
            "ne": [int(n) for n in t.shape],
            "offset": int(t.data_offset) - int(r.data_offset),
            "n_bytes": int(t.n_bytes),
            "sha256": hashlib.sha256(raw).hexdigest(),
        })
    return d


def array_digest(field):
    """sha256 over the elements of a top-level array, as the C test rebuilds it:
    strings as (u64 LE length, bytes); floats as f64 LE; ints and bools as i64 LE
    (u64 as u64 LE)."""
    types = list(field.types)
    sub = types[1]
    h = hashlib.sha256()
    vals = field.contents()
    for v in vals:
        if sub == VT.STRING:
            b = v.encode("utf-8")
            h.update(struct.pack("<Q", len(b)) + b)
        elif sub in (VT.FLOAT32, VT.FLOAT64):
            h.update(struct.pack("<d", float(v)))
        elif sub == VT.UINT64:
            h.update(struct.pack("<Q", int(v)))
        else:
            h.update(struct.pack("<q", int(v)))
    return {"arr_type": int(sub), "n": len(vals), "sha256": h.hexdigest()}


def describe_vocab(path):
    r = gguf.GGUFReader(path)
    d = {"n_kv": len(r.fields) - 3, "n_tensors": len(r.tensors), "arrays": {}}
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or field.types[0] != VT.ARRAY:
            continue
        if len(field.types) > 2:
            continue  # nested: not in the vocab files
        d["arrays"][name] = array_digest(field)
    return d


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "tests", "data", "gguf")
    os.makedirs(outdir, exist_ok=True)
    fixtures = {
        "all-types.gguf": write_all_types,
        "align64.gguf": write_align64,
        "no-tensors.gguf": write_no_tensors,
    }
    expect = {"generator": "gguf-py %s" % importlib.metadata.version("gguf"),
              "fixtures": {}, "vocab": {}}
    # ggml type id -> [name, elements per block, bytes per block]
    expect["quant_sizes"] = {str(int(t)): [t.name.lower(), blck, nbytes]
                             for t, (blck, nbytes) in gguf.GGML_QUANT_SIZES.items()}
    for name, fn in fixtures.items():
        p = os.path.join(outdir, name)
        fn(p)
        expect["fixtures"][name] = describe(p)

    shared = os.environ.get("SLM_SHARED") or os.path.join(TOP, "..", "shared")
    vdir = os.path.join(shared, "vocab")
    if os.path.isdir(vdir):
        for name in sorted(os.listdir(vdir)):
            if name.endswith(".gguf"):
                expect["vocab"][name] = describe_vocab(os.path.join(vdir, name))
    else:
        print("note: %s not found; no vocab expectations written" % vdir, file=sys.stderr)

    with open(os.path.join(outdir, "expect.json"), "w", encoding="utf-8") as f:
        json.dump(expect, f, indent=1, ensure_ascii=False, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    main()
