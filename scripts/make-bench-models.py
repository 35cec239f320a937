#!/usr/bin/env python3
"""Write the random-weight GGUF models of scripts/bench-peer.

Two shapes with real dimensions and random weights (numpy float32 normal,
scaled by 1/sqrt(fan-in), written as F16; norms 1):

  smol   SmolLM2-135M: 30 layers, n_embd 576, 9 heads / 3 KV heads, n_ff
         1536, tied output; the vocabulary (49152 byte-level BPE tokens)
         and every other tokenizer.* key copied from the real SmolLM2 GGUF
         (scripts/fetch-models smollm2)
  tiny   TinyLlama-1.1B: 22 layers, n_embd 2048, 32 heads / 4 KV heads, n_ff
         5632, untied output; the vocabulary (32000 SentencePiece tokens)
         from llama.cpp's ggml-vocab-llama-spm.gguf (VOCAB_SPM below or
         --spm-vocab)

each in F16 (as written) and Q8_0, Q4_0 and Q4_K_M made by llama.cpp's own
quantizer (llama_cpp.llama_model_quantize, PyPI llama-cpp-python), into
OUTDIR (default ${SLM_CACHE:-~/.cache/slm}/bench) as SHAPE-TYPE.gguf, e.g.
smol-q4_k_m.gguf. Existing files are kept; new ones appear atomically.

Usage: scripts/make-bench-models.py [--outdir DIR] [--smol-gguf FILE]
           [--spm-vocab FILE] [NAME...]
NAME: smol-f16, tiny-q4_0, ... or a shape (smol, tiny); default all.
Prints one line per model: NAME PATH. Needs numpy, gguf and llama-cpp-python.
"""

import argparse
import ctypes
import os
import subprocess
import sys

import numpy as np

import gguf

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB_SPM = "/work/shared/vocab/ggml-vocab-llama-spm.gguf"

SHAPES = {
    "smol": dict(name="bench-smollm2-135m", n_layer=30, n_embd=576, n_head=9,
                 n_head_kv=3, n_ff=1536, n_vocab=49152, n_ctx=8192,
                 rope_base=100000.0, tied=True),
    "tiny": dict(name="bench-tinyllama-1.1b", n_layer=22, n_embd=2048, n_head=32,
                 n_head_kv=4, n_ff=5632, n_vocab=32000, n_ctx=2048,
                 rope_base=10000.0, tied=False),
}
# llama.cpp's llama_ftype values
TYPES = {"f16": None, "q8_0": 7, "q4_0": 2, "q4_k_m": 15}


def tokenizer_fields(path):
    """The tokenizer.* keys of a GGUF: (key, value, GGUFValueType, sub-type)."""
    r = gguf.GGUFReader(path)
    out = []
    for k, f in r.fields.items():
        if not k.startswith("tokenizer."):
            continue
        vt = f.types[0]
        sub = f.types[1] if vt == gguf.GGUFValueType.ARRAY else None
        out.append((k, f.contents(), vt, sub))
    return out


def write_f16(shape, vocab_gguf, path, seed):
    s = SHAPES[shape]
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path + ".tmp", "llama")
    w.add_name(s["name"])
    w.add_context_length(s["n_ctx"])
    w.add_embedding_length(s["n_embd"])
    w.add_block_count(s["n_layer"])
    w.add_feed_forward_length(s["n_ff"])
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_head_kv"])
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(s["rope_base"])
    w.add_rope_dimension_count(s["n_embd"] // s["n_head"])
    w.add_vocab_size(s["n_vocab"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    n_tok = None
    for k, v, vt, sub in tokenizer_fields(vocab_gguf):
        if k == "tokenizer.ggml.tokens":
            n_tok = len(v)
        w.add_key_value(k, v, vt, sub_type=sub)
    if n_tok != s["n_vocab"]:
        sys.exit(f"make-bench-models: {vocab_gguf} has {n_tok} tokens, {shape} needs {s['n_vocab']}")

    def mat(rows, cols):
        a = rng.standard_normal((rows, cols), dtype=np.float32)
        a *= np.float32(1.0 / np.sqrt(cols))
        return a.astype(np.float16)

    D, F, V = s["n_embd"], s["n_ff"], s["n_vocab"]
    hd = D // s["n_head"]
    kvd = s["n_head_kv"] * hd
    ones = np.ones(D, dtype=np.float32)
    w.add_tensor("token_embd.weight", rng.standard_normal((V, D), dtype=np.float32).astype(np.float16))
    for l in range(s["n_layer"]):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", ones)
        w.add_tensor(p + "attn_q.weight", mat(D, D))
        w.add_tensor(p + "attn_k.weight", mat(kvd, D))
        w.add_tensor(p + "attn_v.weight", mat(kvd, D))
        w.add_tensor(p + "attn_output.weight", mat(D, D))
        w.add_tensor(p + "ffn_norm.weight", ones)
        w.add_tensor(p + "ffn_gate.weight", mat(F, D))
        w.add_tensor(p + "ffn_up.weight", mat(F, D))
        w.add_tensor(p + "ffn_down.weight", mat(D, F))
    w.add_tensor("output_norm.weight", ones)
    if not s["tied"]:
        w.add_tensor("output.weight", mat(V, D))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)


_quiet = None


def quantize(src, dst, ftype, threads):
    import llama_cpp
    global _quiet
    if _quiet is None:
        _quiet = llama_cpp.llama_log_callback(lambda level, text, ud: None)
        llama_cpp.llama_log_set(_quiet, ctypes.c_void_p())
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = threads
    rc = llama_cpp.llama_model_quantize(src.encode(), (dst + ".tmp").encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"make-bench-models: llama_model_quantize {src} -> {dst} failed ({rc})")
    os.replace(dst + ".tmp", dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--outdir", default=os.path.join(
        os.environ.get("SLM_CACHE", os.path.expanduser("~/.cache/slm")), "bench"))
    ap.add_argument("--smol-gguf", help="the real SmolLM2 GGUF (its tokenizer)")
    ap.add_argument("--spm-vocab", default=VOCAB_SPM)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    want = []
    for shape in SHAPES:
        for t in TYPES:
            n = f"{shape}-{t}"
            if not a.names or n in a.names or shape in a.names:
                want.append((shape, t, n))
    if not want:
        sys.exit(f"make-bench-models: nothing matches {' '.join(a.names)}")
    os.makedirs(a.outdir, exist_ok=True)
    for shape, t, n in want:
        path = os.path.join(a.outdir, n + ".gguf")
        if not os.path.exists(path):
            f16 = os.path.join(a.outdir, f"{shape}-f16.gguf")
            if not os.path.exists(f16):
                if shape == "smol":
                    vocab = a.smol_gguf or subprocess.run(
                        [os.path.join(HERE, "fetch-models"), "smollm2"],
                        capture_output=True, text=True).stdout.strip()
                    if not vocab:
                        sys.exit("make-bench-models: no SmolLM2 GGUF for the vocabulary "
                                 "(scripts/fetch-models smollm2 failed; try --smol-gguf)")
                else:
                    vocab = a.spm_vocab
                write_f16(shape, vocab, f16, seed=20261124 + len(shape))
            if TYPES[t] is not None:
                quantize(f16, path, TYPES[t], a.threads)
        print(n, path, flush=True)


if __name__ == "__main__":
    main()
