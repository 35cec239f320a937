#!/usr/bin/env python3
"""Checks for slm-convert's tests, against the PyPI `gguf` package's reader.

  gguf-check.py same A.gguf B.gguf
      every metadata key of A is in B with the same value type and value
      (and B has no other key), every tensor has the same type, shape and
      bytes (key and tensor order may differ)
  gguf-check.py bundle [--plain] A.gguf BUNDLE INFO.json [B.gguf]
      every tensor of A is in the bundle (member tensors/NAME, read with
      tarfile) with the same bytes, and INFO.json (slm-pack info --json)
      gives it the same dtype and shape; with B.gguf, also "same A B".
      A tensor INFO.json gives the layout tile16 is turned back into
      plain rows here first, from slm-bundle(5)'s definition; the
      matrices in that layout must be exactly the 2-D ones of the types
      that have it with 16 rows or more (--plain: none)
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


# block elements and bytes of the types with a tile16 layout, and where
# their 2-byte scale d lies when the block is 2 bytes over whole words
TILE16 = {"q4_0": (32, 18, 0), "q4_1": (32, 20, None), "q5_0": (32, 22, 0),
          "q5_1": (32, 24, None), "q8_0": (32, 34, 0), "q4_k": (256, 144, None),
          "q5_k": (256, 176, None), "q6_k": (256, 210, 208)}


def untile(data, dtype, shape):
    """slm-bundle(5), Tile16 layout: back to plain rows."""
    import numpy as np
    be, bb, ho = TILE16[dtype]
    cols, rows = shape
    nb = cols // be
    rb = nb * bb
    nt = rows // 16
    a = np.frombuffer(data, dtype=np.uint8)
    g = a[:nt * 16 * rb].reshape(nt, nb, 16 * bb)
    out = np.empty((nt, 16, nb, bb), dtype=np.uint8)
    if ho is None:
        w = g.reshape(nt, nb, bb // 4, 16, 4).transpose(0, 3, 1, 2, 4)
        out[...] = w.reshape(nt, 16, nb, bb)
    else:
        out[..., ho:ho + 2] = g[:, :, :32].reshape(nt, nb, 16, 2).transpose(0, 2, 1, 3)
        w = g[:, :, 32:].reshape(nt, nb, (bb - 2) // 4, 16, 4).transpose(0, 3, 1, 2, 4)
        w = w.reshape(nt, 16, nb, bb - 2)
        if ho == 0:
            out[..., 2:] = w
        else:
            out[..., :ho] = w
    return out.tobytes() + a[nt * 16 * rb:].tobytes()


def bundle(a, path, info, b=None, plain=False):
    (gguf,) = need("gguf")
    need("numpy")
    r = gguf.GGUFReader(a)
    with open(info) as fp:
        inf = json.load(fp)
    shapes = {t["name"]: (t["dtype"], t["shape"]) for t in inf["tensors"]}
    layout = {t["name"]: t.get("layout") for t in inf["tensors"]}
    bad = []
    ntiled = 0
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
            dt = t.tensor_type.name.lower()
            shape = [int(x) for x in t.shape]
            wanted = (not plain and dt in TILE16 and len(shape) == 2 and shape[1] >= 16)
            if layout.get(t.name) != ("tile16" if wanted else "plain"):
                bad.append(f"tensor {t.name}: layout {layout.get(t.name)}, "
                           f"{'tile16' if wanted else 'plain'} wanted")
            elif wanted:
                data = untile(data, dt, shape)
                ntiled += 1
            if hashlib.sha256(data).hexdigest() != want:
                bad.append(f"tensor {t.name}: bytes differ")
            if shapes.get(t.name) != (dt, shape):
                bad.append(f"tensor {t.name}: {shapes.get(t.name)} in the bundle, "
                           f"{dt} {list(t.shape)} in the GGUF")
    for m in bad:
        print(f"gguf-check: {m}", file=sys.stderr)
    print(f"{len(r.tensors)} tensors compared ({ntiled} of them tile16)")
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
            not cmds[argv[1]][1] <= len(argv) - 2 - (argv[2:3] == ["--plain"]) <= cmds[argv[1]][2]:
        print(__doc__, file=sys.stderr)
        return 2
    args = argv[2:]
    if argv[1] == "bundle" and args and args[0] == "--plain":
        return bundle(*args[1:], plain=True) if 3 <= len(args) - 1 <= 4 else 2
    return cmds[argv[1]][0](*args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
