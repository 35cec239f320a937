#!/usr/bin/env python3
"""make-ppl-golden.py - regenerate tests/data/perf/golden-NAME.json, the
llama.cpp figures tests/perf.sh compares slm-perf ppl and slm-perf mc with.

For each real model the tests use (scripts/fetch-models NAME), runs
llama.cpp through llama-cpp-python with every logit kept (logits_all) and
computes, exactly as llama.cpp's tools/perplexity/perplexity.cpp does:

  perplexity over tests/data/perf/declaration.txt: the text tokenized with
  the vocabulary's special tokens (BOS if it adds one), split into
  floor(tokens / CTX) windows of CTX tokens, the first token of each window
  replaced by BOS when the vocabulary adds BOS, each window run from an
  empty cache, and the second half scored: the logits at positions
  CTX/2 .. CTX-2 predict the tokens at CTX/2+1 .. CTX-1.
  ppl = exp(mean nll), ppl_err = ppl * sqrt((mean(nll^2) - mean^2) / (n-1));

  multiple choice over tests/data/perf/mc.jsonl, as lm-evaluation-harness
  scores loglikelihood tasks: context = "question" (or "ctx"), continuation
  = " " + choice; whole = tokens(context + continuation), context tokens =
  tokens(context), continuation tokens = whole[len(context tokens):]; a
  choice's score is the sum of the log-probabilities of its continuation
  tokens after context tokens + continuation tokens; acc takes the best
  score, acc_norm the best score / len(choice in UTF-8 bytes).

  the same perplexity over tests/data/quant/gpl-3.txt (the GNU GPL version
  3, about 8000 tokens; verbatim copies are permitted) with CTX_LONG = 512:
  enough scored tokens (about 4000) that rounding noise averages out, so
  that a figure within 0.1% of llama.cpp's means something. Under "long":
  {"text", "ctx", "tokens", "chunks", "scored", "ppl", "ppl_err",
  "token_nll": [the negative log-likelihood of every scored token, in
  order], "ppl_variants": {"decode": one token per batch (llama.cpp's
  decoding path), "kv_f32", "flash_attn"}, "spread"}.

Output: {"model", "gguf", "llama_cpp_python", "text", "ctx", "tokens",
"chunks", "scored", "add_bos", "ppl", "ppl_err", "chunk_nll": [mean nll of
each window], "ppl_variants", "spread", "mc": {"file", "questions", "acc",
"acc_norm", "loglik": [[per choice]...]}}.

"ppl" is llama.cpp's default configuration (f16 KV cache, no flash
attention). "ppl_variants" is the same perplexity from llama.cpp with flash
attention and with an f32 KV cache, and "spread" the largest relative
difference of those from "ppl": how far llama.cpp's figure moves with its
own rounding choices, the yardstick for an independent implementation.

Made with llama-cpp-python 0.3.36 (pip install llama-cpp-python).

Usage: scripts/make-ppl-golden.py [NAME...]   (default: smollm2 gemma3)
       scripts/make-ppl-golden.py --token-nll [NAME...]   (only add
       "long"."token_nll" to the existing goldens)
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import llama_cpp
from llama_cpp import Llama

CTX = 128
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "perf")
TEXT = "declaration.txt"
TEXT_LONG = "../quant/gpl-3.txt"  # shared with tests/quant.sh
CTX_LONG = 512
MC = "mc.jsonl"


def log_softmax(row):
    row = row.astype(np.float64)
    m = row.max()
    return row - m - math.log(np.exp(row - m).sum())


def run(llm, tokens):
    """All logits of tokens run from an empty cache: [len][n_vocab]."""
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def perplexity(llm, text, CTX=CTX):
    vocab = llm.model if hasattr(llm, "model") else None
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(vocab)))
    bos = llm.token_bos()
    tokens = llm.tokenize(text, add_bos=True, special=False)
    n_chunk = len(tokens) // CTX
    if len(tokens) < 2 * CTX:
        sys.exit("text too short: %d tokens, need %d" % (len(tokens), 2 * CTX))
    first = CTX // 2
    nll = nll2 = 0.0
    count = 0
    chunk_nll, token_nll = [], []
    for i in range(n_chunk):
        win = list(tokens[i * CTX:(i + 1) * CTX])
        if add_bos:
            win[0] = bos
        lg = run(llm, win)
        s = 0.0
        for j in range(first, CTX - 1):
            v = -log_softmax(lg[j])[win[j + 1]]
            token_nll.append(float("%.7g" % v))
            s += v
            nll += v
            nll2 += v * v
            count += 1
        chunk_nll.append(s / (CTX - 1 - first))
    mean = nll / count
    ppl = math.exp(mean)
    var = nll2 / count - mean * mean
    err = ppl * math.sqrt(var / (count - 1)) if var > 0 else 0.0
    return {"ctx": CTX, "tokens": len(tokens), "chunks": n_chunk, "scored": count,
            "add_bos": add_bos, "ppl": ppl, "ppl_err": err, "chunk_nll": chunk_nll,
            "token_nll": token_nll}


def multiple_choice(llm, path):
    loglik, correct, correct_norm = [], 0, 0
    with open(path, encoding="utf-8") as f:
        items = [json.loads(line) for line in f if line.strip()]
    for it in items:
        ctx = it.get("question", it.get("ctx"))
        # lm-evaluation-harness: trailing white space moves to the continuation
        ctx_enc = llm.tokenize(ctx.rstrip().encode(), add_bos=True, special=False)
        scores = []
        for ch in it["choices"]:
            whole = llm.tokenize((ctx + " " + ch).encode(), add_bos=True, special=False)
            cont = whole[len(ctx_enc):]
            seq = list(ctx_enc) + list(cont)
            lg = run(llm, seq)
            s = 0.0
            for k, t in enumerate(cont):
                s += log_softmax(lg[len(ctx_enc) - 1 + k])[t]
            scores.append(s)
        loglik.append(scores)
        best = max(range(len(scores)), key=lambda i: scores[i])
        norm = [s / len(c.encode()) for s, c in zip(scores, it["choices"])]
        best_norm = max(range(len(norm)), key=lambda i: norm[i])
        correct += best == it["answer"]
        correct_norm += best_norm == it["answer"]
    n = len(items)
    return {"file": MC, "questions": n, "acc": correct / n, "acc_norm": correct_norm / n,
            "loglik": loglik}


def add_token_nll(names):
    """--token-nll: add "long"."token_nll" to existing goldens (the batched
    default configuration only; the rest of the golden is kept)."""
    long_text = open(os.path.join(DATA, TEXT_LONG), "rb").read()
    for name in names:
        gguf = subprocess.run(["bash", os.path.join(HERE, "fetch-models"), name],
                              capture_output=True, text=True).stdout.strip()
        path = os.path.normpath(os.path.join(DATA, "golden-%s.json" % name))
        out = json.load(open(path))
        llm = Llama(gguf, n_ctx=CTX_LONG, n_batch=CTX_LONG, logits_all=True, verbose=False)
        r = perplexity(llm, long_text, CTX_LONG)
        if abs(r["ppl"] / out["long"]["ppl"] - 1) > 1e-9:
            sys.exit("%s: ppl %.6f, golden %.6f: regenerate the whole golden" % (name, r["ppl"], out["long"]["ppl"]))
        out["long"]["token_nll"] = r["token_nll"]
        with open(path + ".tmp", "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        os.replace(path + ".tmp", path)
        print("%s: token_nll added -> %s" % (name, path), file=sys.stderr)


def main():
    if sys.argv[1:2] == ["--token-nll"]:
        return add_token_nll(sys.argv[2:] or ["smollm2", "gemma3"])
    names = sys.argv[1:] or ["smollm2", "gemma3"]
    text = open(os.path.join(DATA, TEXT), "rb").read()
    for name in names:
        gguf = subprocess.run(["bash", os.path.join(HERE, "fetch-models"), name],
                              capture_output=True, text=True).stdout.strip()
        if not gguf:
            print("%s: not available, skipped" % name, file=sys.stderr)
            continue
        llm = Llama(gguf, n_ctx=CTX, n_batch=CTX, logits_all=True, verbose=False)
        out = {"model": name, "gguf": os.path.basename(gguf),
               "llama_cpp_python": llama_cpp.__version__, "text": TEXT}
        out.update(perplexity(llm, text))
        del out["token_nll"]
        out["mc"] = multiple_choice(llm, os.path.join(DATA, MC))
        del llm
        variants = {"flash_attn": dict(flash_attn=True),
                    "kv_f32": dict(flash_attn=False, type_k=0, type_v=0)}
        out["ppl_variants"] = {}
        for k, kw in variants.items():
            v = Llama(gguf, n_ctx=CTX, n_batch=CTX, logits_all=True, verbose=False, **kw)
            out["ppl_variants"][k] = perplexity(v, text)["ppl"]
            del v
        out["spread"] = max(abs(x / out["ppl"] - 1) for x in out["ppl_variants"].values())
        long_text = open(os.path.join(DATA, TEXT_LONG), "rb").read()
        llm = Llama(gguf, n_ctx=CTX_LONG, n_batch=CTX_LONG, logits_all=True, verbose=False)
        lo = {"text": TEXT_LONG}
        lo.update(perplexity(llm, long_text, CTX_LONG))
        del lo["chunk_nll"]  # token_nll kept: the paired test of tests/perf.sh
        del llm
        lo["ppl_variants"] = {}
        for k, kw in [("decode", dict(n_batch=1, n_ubatch=1))] + list(variants.items()):
            kw = dict(kw)
            kw.setdefault("n_batch", CTX_LONG)
            v = Llama(gguf, n_ctx=CTX_LONG, logits_all=True, verbose=False, **kw)
            lo["ppl_variants"][k] = perplexity(v, long_text, CTX_LONG)["ppl"]
            del v
        lo["spread"] = max(abs(x / lo["ppl"] - 1) for x in lo["ppl_variants"].values())
        out["long"] = lo
        print("%s: %s -c %d: ppl %.4f, llama.cpp's own variants %s"
              % (name, TEXT_LONG, CTX_LONG, lo["ppl"], lo["ppl_variants"]), file=sys.stderr)
        path = os.path.normpath(os.path.join(DATA, "golden-%s.json" % name))
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print("%s: ppl %.4f +/- %.4f over %d chunks (spread %.2f%%), mc acc %.2f acc_norm %.2f -> %s"
              % (name, out["ppl"], out["ppl_err"], out["chunks"], 100 * out["spread"],
                 out["mc"]["acc"], out["mc"]["acc_norm"], path), file=sys.stderr)


if __name__ == "__main__":
    main()
