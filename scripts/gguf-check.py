#!/usr/bin/env python3
"""Checks for slm-convert's tests, against the PyPI `gguf` package's reader.

  gguf-check.py same A.gguf B.gguf
      every metadata key of A is in B with the same value type and value
      (and B has no other key), every tensor has the same type, shape and
      bytes (key and tensor order may differ)
  gguf-check.py bundle A.gguf BUNDLE INFO.json [B.gguf]
      every tensor of A is in the bundle (member tensors/NAME, read with
      tarfile) with the same bytes, and INFO.json (slm-pack info --json)
      gives it the same dtype and shape; with B.gguf, also "same A B"
      (A is read once: GGUFReader takes seconds on large vocabularies)
  gguf-check.py llama A.gguf B.gguf
      llama.cpp (llama-cpp-python) loads both and gives the same logits
  gguf-check.py bad DIR
      writes malformed GGUF files into DIR (needs only python3)

Exit status: 0 equal / done, 1 different (each difference on stderr), 77
when a needed package (gguf, numpy, llama_cpp) is missing.
"""

import hashlib
import json
import struct
import sys
import tarfile


def need(*mods):
    out = []
    for m in mods:
        try:
            out.append(__import__(m))
        except ImportError:
            print(f"gguf-check: python3 lacks {m} (pip install {m})", file=sys.stderr)
            sys.exit(77)
    return out


def fields(r):
    """key -> (value types, raw bytes of each value part)"""
    out = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        out[k] = ([int(t) for t in f.types], [bytes(f.parts[i]) for i in f.data])
    return out


def tensors(r):
    return {t.name: (int(t.tensor_type), [int(x) for x in t.shape],
                     hashlib.sha256(t.data.tobytes()).hexdigest())
            for t in r.tensors}


def same(a, b, ra=None):
    (gguf,) = need("gguf")
    need("numpy")
    ra, rb = ra or gguf.GGUFReader(a), gguf.GGUFReader(b)
    fa, fb = fields(ra), fields(rb)
    bad = [f"key {k}: only in {a}" for k in fa if k not in fb]
    bad += [f"key {k}: only in {b}" for k in fb if k not in fa]
    bad += [f"key {k}: type or value differs" for k in fa if k in fb and fa[k] != fb[k]]
    ta, tb = tensors(ra), tensors(rb)
    bad += [f"tensor {n}: only in one file" for n in set(ta) ^ set(tb)]
    bad += [f"tensor {n}: type, shape or bytes differ" for n in ta
            if n in tb and ta[n] != tb[n]]
    for m in bad:
        print(f"gguf-check: {m}", file=sys.stderr)
    print(f"{len(fa)} keys, {len(ta)} tensors compared")
    return 1 if bad else 0


def bundle(a, path, info, b=None):
    (gguf,) = need("gguf")
    need("numpy")
    r = gguf.GGUFReader(a)
    with open(info) as fp:
        inf = json.load(fp)
    shapes = {t["name"]: (t["dtype"], t["shape"]) for t in inf["tensors"]}
    bad = []
    if len(shapes) != len(r.tensors):
        bad.append(f"{len(r.tensors)} tensors in {a}, {len(shapes)} in the bundle")
    with tarfile.open(path) as tf:
        for t in r.tensors:
            want = hashlib.sha256(t.data.tobytes()).hexdigest()
            try:
                data = tf.extractfile("tensors/" + t.name).read()
            except KeyError:
                bad.append(f"tensor {t.name}: not in the bundle")
                continue
            if hashlib.sha256(data).hexdigest() != want:
                bad.append(f"tensor {t.name}: bytes differ")
            dt = t.tensor_type.name.lower()
            if shapes.get(t.name) != (dt, [int(x) for x in t.shape]):
                bad.append(f"tensor {t.name}: {shapes.get(t.name)} in the bundle, "
                           f"{dt} {list(t.shape)} in the GGUF")
    for m in bad:
        print(f"gguf-check: {m}", file=sys.stderr)
    print(f"{len(r.tensors)} tensors compared")
    rc = 1 if bad else 0
    return max(rc, same(a, b, r)) if b else rc


def llama(a, b):
    llama_cpp, np = need("llama_cpp", "numpy")
    out = []
    for p in (a, b):
        m = llama_cpp.Llama(model_path=p, verbose=False, logits_all=True, n_ctx=64)
        toks = m.tokenize(b"The capital of France is")
        m.eval(toks)
        out.append((toks, np.array(m.scores[len(toks) - 1])))
    if out[0][0] != out[1][0] or not np.array_equal(out[0][1], out[1][1]):
        print("gguf-check: llama.cpp gives different tokens or logits", file=sys.stderr)
        return 1
    print(f"llama.cpp: same {len(out[0][0])} tokens and logits")
    return 0


# ---- malformed files ----

def s(x):
    x = x.encode()
    return struct.pack("<Q", len(x)) + x


def kv_str(k, v):
    return s(k) + struct.pack("<I", 8) + s(v)


def tinfo(name, dims, typ, off):
    return (s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            + struct.pack("<I", typ) + struct.pack("<Q", off))


def gguf_file(kvs, tis, data):
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tis), len(kvs)) + b"".join(kvs) + b"".join(tis)
    head += b"\0" * (-len(head) % 32)
    return head + data


def bad(d):
    arch = kv_str("general.architecture", "llama")
    good = gguf_file([arch], [tinfo("w", [32], 0, 0)], b"\0" * 128)
    files = {
        "truncated.gguf": good[:60],
        "magic.gguf": b"GGUX" + good[4:],
        "offset.gguf": gguf_file([arch], [tinfo("w", [32], 0, 1 << 20)], b"\0" * 128),
        "overflow.gguf": gguf_file([arch], [tinfo("w", [1 << 32, 1 << 32], 0, 0)], b"\0" * 128),
        "dtype.gguf": gguf_file([arch], [tinfo("w", [32], 99, 0)], b"\0" * 128),
        "iq2.gguf": gguf_file([arch], [tinfo("w", [256], 17, 0)], b"\0" * 128),
        "arch.gguf": gguf_file([kv_str("general.architecture", "gpt2")],
                               [tinfo("w", [32], 0, 0)], b"\0" * 128),
    }
    for name, data in files.items():
        with open(f"{d}/{name}", "wb") as fp:
            fp.write(data)
    return 0


def main(argv):
    cmds = {"same": (same, 2, 2), "bundle": (bundle, 3, 4), "llama": (llama, 2, 2),
            "bad": (bad, 1, 1)}
    if len(argv) < 2 or argv[1] not in cmds or \
            not cmds[argv[1]][1] <= len(argv) - 2 <= cmds[argv[1]][2]:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
