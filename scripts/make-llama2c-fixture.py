#!/usr/bin/env python3
"""Tiny llama2.c checkpoints for the slm-convert tests.

  make-llama2c-fixture.py OUTDIR [--seed N]

Writes into OUTDIR, with seeded random weights (numpy):

  shared.bin      legacy layout: 7 int32 (dim, hidden_dim, n_layers,
                  n_heads, n_kv_heads, vocab_size, seq_len), then the float32
                  weights in llama2.c's export.py legacy_export order, the
                  freq_cis tables included; the classifier is the embedding
                  (vocab_size > 0)
  unshared.bin    the same layout with vocab_size negated and the classifier
                  (wcls) after the freq_cis tables
  v1.bin          export version 1 (version1_export): the 256-byte header
                  (uint32 magic "ak42", int32 version 1, the 7 int32, a byte
                  shared_classifier = 1, zeros), then the weights in that
                  format's order, no freq_cis; same weights as shared.bin
  v1-unshared.bin version 1 with shared_classifier = 0 and the classifier
                  last; same weights as unshared.bin
  tokenizer.bin   as llama2.c's tokenizer.py writes it: uint32
                  max_token_length, then per token float32 score, int32
                  length, the bytes (SentencePiece's "\u2581" written as a
                  space, BOS as "\\n<s>\\n", EOS as "\\n</s>\\n"): <unk>, <s>,
                  </s>, <0x00>..<0xFF>, single letters, then "\u2581"-prefixed
                  words with every prefix of each, so SentencePiece's BPE
                  merges a word up to its whole piece
  expect.json     {"hparams": {...}, "vocab": [pieces], "scores": [...],
                  "token_type": [llama.cpp's types], "words": {word: id},
                  "models": {FILE: {"shared": bool, "tensors": {GGUF name:
                  {"shape": [innermost first], "sha256": of the little-endian
                  float32 bytes}}}}}

Tensor names are llama.cpp's: token_embd.weight, blk.N.attn_norm.weight,
attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate (w1), ffn_down (w2),
ffn_up (w3), output_norm.weight, and output.weight when unshared. llama2.c's
q/k rows are already in the order llama.cpp's "llama" graph uses, so the
expected bytes are the PyTorch weights as they are.
"""

import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np

DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, SEQ_LEN = 16, 40, 2, 4, 2, 32
WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "tiny", "story"]


def vocabulary():
    """(pieces, scores, words): SentencePiece pieces in id order."""
    pieces = ["<unk>", "<s>", "</s>"]
    pieces += ["<0x%02X>" % b for b in range(256)]
    letters = sorted(set("".join(WORDS)))
    pieces += ["\u2581"] + letters
    for w in WORDS:
        for k in range(1, len(w) + 1):
            p = "\u2581" + w[:k]
            if p not in pieces:
                pieces.append(p)
    # llama2.c's scores: higher for earlier merges, 0 for specials and bytes
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces) - 259)]
    words = {w: pieces.index("\u2581" + w) for w in WORDS}
    return pieces, scores, words


def write_tokenizer(path, pieces, scores):
    toks = []
    for i, p in enumerate(pieces):
        if i == 1:
            p = "\n<s>\n"
        elif i == 2:
            p = "\n</s>\n"
        toks.append(p.replace("\u2581", " ").encode("utf-8"))
    with open(path, "wb") as f:
        f.write(struct.pack("<I", max(len(t) for t in toks)))
        for t, s in zip(toks, scores):
            f.write(struct.pack("<fi", s, len(t)))
            f.write(t)


def weights(rng, vocab):
    """PyTorch-shaped float32 arrays (out features, in features)."""
    head = DIM // HEADS
    kv = head * KV_HEADS

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    w = {
        "emb": r(vocab, DIM),
        "att_norm": [r(DIM) for _ in range(LAYERS)],
        "wq": [r(DIM, DIM) for _ in range(LAYERS)],
        "wk": [r(kv, DIM) for _ in range(LAYERS)],
        "wv": [r(kv, DIM) for _ in range(LAYERS)],
        "wo": [r(DIM, DIM) for _ in range(LAYERS)],
        "ffn_norm": [r(DIM) for _ in range(LAYERS)],
        "w1": [r(HIDDEN, DIM) for _ in range(LAYERS)],
        "w2": [r(DIM, HIDDEN) for _ in range(LAYERS)],
        "w3": [r(HIDDEN, DIM) for _ in range(LAYERS)],
        "norm": r(DIM),
        "cls": r(vocab, DIM),
    }
    # model.py's precompute_freqs_cis: cos and sin of (seq_len, head/2)
    freqs = 1.0 / (10000.0 ** (np.arange(0, head, 2)[: head // 2] / head))
    ang = np.outer(np.arange(SEQ_LEN), freqs)
    w["freq_cos"] = np.cos(ang).astype(np.float32)
    w["freq_sin"] = np.sin(ang).astype(np.float32)
    return w


def f32(a):
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def header7(vocab):
    return struct.pack("<7i", DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, vocab, SEQ_LEN)


def write_legacy(path, w, vocab, shared):
    with open(path, "wb") as f:
        f.write(header7(vocab if shared else -vocab))
        f.write(f32(w["emb"]))
        for k in ("att_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"):
            for a in w[k]:
                f.write(f32(a))
        f.write(f32(w["norm"]))
        f.write(f32(w["freq_cos"]))
        f.write(f32(w["freq_sin"]))
        if not shared:
            f.write(f32(w["cls"]))


def write_v1(path, w, vocab, shared):
    hdr = struct.pack("<Ii", 0x616B3432, 1) + header7(vocab) + struct.pack("B", int(shared))
    hdr += b"\0" * (256 - len(hdr))
    with open(path, "wb") as f:
        f.write(hdr)
        for a in w["att_norm"] + w["ffn_norm"] + [w["norm"], w["emb"]]:
            f.write(f32(a))
        for k in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"):
            for a in w[k]:
                f.write(f32(a))
        if not shared:
            f.write(f32(w["cls"]))


def expected(w, shared):
    t = {}

    def put(name, a):
        t[name] = {"shape": list(reversed(a.shape)),
                   "sha256": hashlib.sha256(f32(a)).hexdigest()}

    put("token_embd.weight", w["emb"])
    put("output_norm.weight", w["norm"])
    if not shared:
        put("output.weight", w["cls"])
    gguf = {"att_norm": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v",
            "wo": "attn_output", "ffn_norm": "ffn_norm", "w1": "ffn_gate",
            "w2": "ffn_down", "w3": "ffn_up"}
    for k, g in gguf.items():
        for i, a in enumerate(w[k]):
            put("blk.%d.%s.weight" % (i, g), a)
    return {"shared": shared, "tensors": t}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    pieces, scores, words = vocabulary()
    vocab = len(pieces)
    w = weights(np.random.default_rng(a.seed), vocab)
    out = lambda fn: os.path.join(a.outdir, fn)
    write_tokenizer(out("tokenizer.bin"), pieces, scores)
    write_legacy(out("shared.bin"), w, vocab, True)
    write_legacy(out("unshared.bin"), w, vocab, False)
    write_v1(out("v1.bin"), w, vocab, True)
    write_v1(out("v1-unshared.bin"), w, vocab, False)
    exp = {
        "hparams": {"block_count": LAYERS, "embedding_length": DIM,
                    "feed_forward_length": HIDDEN, "attention.head_count": HEADS,
                    "attention.head_count_kv": KV_HEADS, "context_length": SEQ_LEN,
                    "vocab_size": vocab, "rope.dimension_count": DIM // HEADS},
        "vocab": pieces,
        "scores": scores,
        "token_type": [2, 3, 3] + [6] * 256 + [1] * (vocab - 259),
        "words": words,
        "models": {"shared.bin": expected(w, True), "unshared.bin": expected(w, False),
                   "v1.bin": expected(w, True), "v1-unshared.bin": expected(w, False)},
    }
    with open(out("expect.json"), "w") as f:
        json.dump(exp, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
