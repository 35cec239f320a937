#!/usr/bin/env python3
"""Write tiny random-weight GGUF models, one per architecture slm-gen runs.

The models have real structure (grouped-query attention, the
architecture's own tensors and hyper-parameters) and tiny sizes, so the
forward pass of slm can be compared with llama.cpp's on architectures for
which no small real weights are at hand (tests/gen-golden.sh,
scripts/make-gen-golden.py):

  llama    2 layers, f16 matrices, untied output, linear RoPE scaling x2
  qwen2    2 layers, f32, biases on q/k/v, tied output
  qwen3    2 layers, f16, q/k RMS norms, head size 32 != n_embd/n_head
  smollm3  4 layers, f32, layer 3 without RoPE (every 4th layer)
  phi3     2 layers, f32, fused attn_qkv, fused ffn_up (gate | up), and a
           sliding_window key as real Phi-3 GGUFs carry (llama.cpp ignores it)
  gemma3   6 layers, f32, sliding window 8 on layers 0-4, global layer 5,
           q/k norms, post-norms, GELU gating, embedding scaling

The vocabulary is a small byte-level BPE (GPT-2 style) made here: the 256
byte tokens, merges learned from a fixed text, and <|endoftext|> as BOS/EOS.

Deterministic: weights come from PCG64 raw 64-bit outputs (their top 24
bits as float32 uniforms in [-1, 1)), which do not depend on the numpy
version, and only exact float32 arithmetic (products, casts). The digest
printed for each model hashes the metadata and tensor bytes, so a test can
check that it regenerated the very model its golden file was made with.

Usage: scripts/make-tiny-models.py OUTDIR [NAME...]
Prints one line per model: NAME PATH DIGEST. Needs numpy and gguf (PyPI).
"""

import hashlib
import json
import os
import sys
import zlib

import numpy as np

import gguf

SEED = 20261124

# ---------------------------------------------------------------------------
# vocabulary: byte-level BPE
# ---------------------------------------------------------------------------

CORPUS = """\
The quick brown fox jumps over the lazy dog. A small language model reads
tokens and writes tokens: it takes the text of a prompt, one token at a time,
and predicts the next one. The sky is blue because the air scatters the short
waves of sunlight more than the long ones. Unix tools read standard input and
write standard output, so that they can be joined in a pipe. When the light of
the sun passes through the atmosphere, the molecules of the air scatter it in
every direction, and we see the blue light coming from all over the sky. There
are many tools that work together, and each of them does one thing well.
"""
N_MERGES = 63
EOS_TEXT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible mapping of bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def make_vocab():
    """Tokens, types and merges: 256 bytes, N_MERGES merges, EOS."""
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    # words as GPT-2's pre-tokenizer would roughly split them: a leading
    # space stays with the word
    words = {}
    for w in CORPUS.replace("\n", " ").split(" "):
        if w:
            s = "".join(b2u[b] for b in (" " + w).encode())
            words[s] = words.get(s, 0) + 1
    seqs = {w: list(w) for w in words}
    merges = []
    for _ in range(N_MERGES):
        pairs = {}
        for w, syms in seqs.items():
            for a, b in zip(syms, syms[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + words[w]
        if not pairs:
            break
        # most frequent; ties broken by the pair's text, so the result is
        # independent of dict order
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best[0] + " " + best[1])
        tokens.append(best[0] + best[1])
        for w, syms in seqs.items():
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and (syms[i], syms[i + 1]) == best:
                    out.append(syms[i] + syms[i + 1])
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            seqs[w] = out
    types = [1] * len(tokens)
    tokens.append(EOS_TEXT)
    types.append(3)  # control
    return tokens, types, merges


# ---------------------------------------------------------------------------
# deterministic weights
# ---------------------------------------------------------------------------

def uniform(name, shape):
    """float32 uniforms in [-1, 1) from PCG64's raw output, seeded by name."""
    n = int(np.prod(shape))
    bg = np.random.PCG64(np.random.SeedSequence([SEED, zlib.crc32(name.encode())]))
    raw = bg.random_raw(n)
    u = (raw >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -23) - np.float32(1.0)
    return u.reshape(shape)


def matrix(name, rows, cols, gain=1.0):
    # uniform [-a, a) has variance a^2/3: a = gain * sqrt(3 / cols) gives
    # outputs of about unit variance times gain for unit inputs
    a = np.float32(gain * np.sqrt(3.0 / cols))
    return uniform(name, (rows, cols)) * a


def norm(name, n, centre=1.0, spread=0.25):
    return np.float32(centre) + uniform(name, (n,)) * np.float32(spread)


def bias(name, n, spread=0.5):
    return uniform(name, (n,)) * np.float32(spread)


# ---------------------------------------------------------------------------
# architectures
# ---------------------------------------------------------------------------

# common: n_embd 64, 4 heads, 2 KV heads, n_ff 192
MODELS = {
    "llama":   dict(arch="llama", n_layer=2, head_dim=16, wtype="f16", tied=False,
                    rope_base=10000.0, rope_linear=2.0),
    "qwen2":   dict(arch="qwen2", n_layer=2, head_dim=16, wtype="f32", tied=True,
                    rope_base=1000000.0, qkv_bias=True),
    "qwen3":   dict(arch="qwen3", n_layer=2, head_dim=32, wtype="f16", tied=True,
                    rope_base=1000000.0, qk_norm=True),
    "smollm3": dict(arch="smollm3", n_layer=4, head_dim=16, wtype="f32", tied=True,
                    rope_base=5000000.0),
    "phi3":    dict(arch="phi3", n_layer=2, head_dim=16, wtype="f32", tied=False,
                    rope_base=10000.0, fused=True, swa=8),
    "gemma3":  dict(arch="gemma3", n_layer=6, head_dim=32, wtype="f32", tied=True,
                    rope_base=1000000.0, qk_norm=True, post_norms=True, swa=8,
                    eps=1e-6),
}
N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_CTX = 64, 4, 2, 192, 512


def build(name):
    """(metadata list of (key, kind, value), tensors list of (name, array))."""
    s = MODELS[name]
    arch = s["arch"]
    hd = s["head_dim"]
    qd, kvd = N_HEAD * hd, N_HEAD_KV * hd
    tokens, types, merges = make_vocab()
    nv = len(tokens)
    kv = [
        # not "phi3"/"phi-3": llama.cpp then expects Phi-3's <s>, </s>, <unk>
        ("general.name", "str", "slm-tiny-" + name.replace("phi3", "phi")),
        (arch + ".context_length", "u32", N_CTX),
        (arch + ".embedding_length", "u32", N_EMBD),
        (arch + ".block_count", "u32", s["n_layer"]),
        (arch + ".feed_forward_length", "u32", N_FF),
        (arch + ".attention.head_count", "u32", N_HEAD),
        (arch + ".attention.head_count_kv", "u32", N_HEAD_KV),
        (arch + ".attention.key_length", "u32", hd),
        (arch + ".attention.value_length", "u32", hd),
        (arch + ".attention.layer_norm_rms_epsilon", "f32", s.get("eps", 1e-5)),
        (arch + ".rope.freq_base", "f32", s["rope_base"]),
        (arch + ".rope.dimension_count", "u32", hd),
    ]
    if "rope_linear" in s:
        kv += [(arch + ".rope.scaling.type", "str", "linear"),
               (arch + ".rope.scaling.factor", "f32", s["rope_linear"])]
    if "swa" in s:
        kv.append((arch + ".attention.sliding_window", "u32", s["swa"]))
    kv += [
        ("tokenizer.ggml.model", "str", "gpt2"),
        ("tokenizer.ggml.pre", "str", "gpt-2"),
        ("tokenizer.ggml.tokens", "strs", tokens),
        ("tokenizer.ggml.token_type", "i32s", types),
        ("tokenizer.ggml.merges", "strs", merges),
        ("tokenizer.ggml.bos_token_id", "u32", nv - 1),
        ("tokenizer.ggml.eos_token_id", "u32", nv - 1),
        ("tokenizer.ggml.add_bos_token", "bool", False),
    ]

    t = []
    gemma = arch == "gemma3"
    # gemma scales the embeddings by sqrt(n_embd): keep its rows small
    t.append(("token_embd.weight", uniform("token_embd.weight", (nv, N_EMBD)) *
              np.float32(0.125 if gemma else 1.0)))
    for l in range(s["n_layer"]):
        p = "blk.%d." % l
        t.append((p + "attn_norm.weight", norm(p + "attn_norm.weight", N_EMBD)))
        if s.get("fused"):
            t.append((p + "attn_qkv.weight", matrix(p + "attn_qkv.weight", qd + 2 * kvd, N_EMBD, 1.3)))
        else:
            t.append((p + "attn_q.weight", matrix(p + "attn_q.weight", qd, N_EMBD, 1.3)))
            t.append((p + "attn_k.weight", matrix(p + "attn_k.weight", kvd, N_EMBD, 1.3)))
            t.append((p + "attn_v.weight", matrix(p + "attn_v.weight", kvd, N_EMBD)))
        if s.get("qkv_bias"):
            t.append((p + "attn_q.bias", bias(p + "attn_q.bias", qd)))
            t.append((p + "attn_k.bias", bias(p + "attn_k.bias", kvd)))
            t.append((p + "attn_v.bias", bias(p + "attn_v.bias", kvd)))
        if s.get("qk_norm"):
            t.append((p + "attn_q_norm.weight", norm(p + "attn_q_norm.weight", hd, 1.5, 0.5)))
            t.append((p + "attn_k_norm.weight", norm(p + "attn_k_norm.weight", hd, 1.5, 0.5)))
        t.append((p + "attn_output.weight", matrix(p + "attn_output.weight", N_EMBD, qd)))
        if s.get("post_norms"):
            t.append((p + "post_attention_norm.weight", norm(p + "post_attention_norm.weight", N_EMBD)))
        t.append((p + "ffn_norm.weight", norm(p + "ffn_norm.weight", N_EMBD)))
        if s.get("fused"):
            t.append((p + "ffn_up.weight", matrix(p + "ffn_up.weight", 2 * N_FF, N_EMBD, 1.5)))
        else:
            t.append((p + "ffn_gate.weight", matrix(p + "ffn_gate.weight", N_FF, N_EMBD, 1.5)))
            t.append((p + "ffn_up.weight", matrix(p + "ffn_up.weight", N_FF, N_EMBD, 1.5)))
        t.append((p + "ffn_down.weight", matrix(p + "ffn_down.weight", N_EMBD, N_FF)))
        if s.get("post_norms"):
            t.append((p + "post_ffw_norm.weight", norm(p + "post_ffw_norm.weight", N_EMBD)))
    # gemma's tied output matrix is the small embedding: a larger final
    # norm gives logits of the usual spread
    t.append(("output_norm.weight", norm("output_norm.weight", N_EMBD, 8.0 if gemma else 1.0,
                                         2.0 if gemma else 0.25)))
    if not s["tied"]:
        t.append(("output.weight", matrix("output.weight", nv, N_EMBD, 3.0)))
    # matrices in the model's weight type, vectors (norms, biases) in f32
    if s["wtype"] == "f16":
        t = [(n, a.astype(np.float16) if a.ndim == 2 else a) for n, a in t]
    return arch, kv, t


def digest(kv, tensors):
    h = hashlib.sha256()
    h.update(json.dumps(kv, sort_keys=False).encode())
    for n, a in tensors:
        h.update(("%s %s %s\n" % (n, a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def write(name, path):
    arch, kv, tensors = build(name)
    w = gguf.GGUFWriter(path, arch)
    for key, kind, val in kv:
        if kind == "str":
            w.add_string(key, val)
        elif kind == "u32":
            w.add_uint32(key, val)
        elif kind == "f32":
            w.add_float32(key, val)
        elif kind == "bool":
            w.add_bool(key, val)
        elif kind == "strs":
            w.add_array(key, val)
        elif kind == "i32s":
            w.add_key_value(key, val, gguf.GGUFValueType.ARRAY,
                            sub_type=gguf.GGUFValueType.INT32)
    for n, a in tensors:
        w.add_tensor(n, np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return digest(kv, tensors)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        return 2 if len(argv) < 2 else 0
    out = argv[1]
    names = argv[2:] or list(MODELS)
    for n in names:
        if n not in MODELS:
            sys.stderr.write("make-tiny-models: unknown model %s (have: %s)\n" %
                             (n, " ".join(MODELS)))
            return 2
    os.makedirs(out, exist_ok=True)
    for n in names:
        path = os.path.join(out, "tiny-%s.gguf" % n)
        tmp = path + ".tmp"
        d = write(n, tmp)
        os.replace(tmp, path)
        print(n, path, d)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
