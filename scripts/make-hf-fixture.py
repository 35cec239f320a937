#!/usr/bin/env python3
"""Hugging Face model directories for the slm-convert tests, and the checker
that compares a converted bundle with its source.

  make-hf-fixture.py tiny DIR [--arch ARCH] [--dtype bf16|f16|f32] [--shards N]
                              [--untied] [--llama3-rope] [--string-merges] [--seed N]
      A tiny model (2 blocks, width 64, 4 heads, 2 KV heads) with random
      weights, shaped as ARCH (llama, smollm3, qwen2, qwen3, gemma3, phi3):
      config.json, model.safetensors (or N shards and
      model.safetensors.index.json), generation_config.json, and the tokenizer
      files committed in tests/data/hf/ (byte-level BPE for llama, smollm3,
      qwen2, qwen3; SentencePiece-style BPE with byte fallback in
      tests/data/hf/spm/ for gemma3 and phi3). f16 and f32 files are written
      with the PyPI safetensors package; bf16 (which numpy lacks) by this
      script, byte for byte in the same layout.

  make-hf-fixture.py from-gguf GGUF DIR
      A Hugging Face directory made from a llama GGUF (SmolLM2): every tensor
      dequantized with gguf.quants.dequantize, renamed to its Hugging Face
      name, q/k rows put back into Hugging Face's order (the inverse of
      llama.cpp's LlamaModel.permute), stored as f16; config.json,
      tokenizer.json and tokenizer_config.json rebuilt from the metadata.

  make-hf-fixture.py check BUNDLE DIR [--gguf GGUF]
      Every tensor of BUNDLE equals its source array in DIR (q/k rows in
      llama.cpp's order, 1-D tensors as f32), the bundle has no other
      tensors, and its vocabulary, special tokens and hyper-parameters are
      those of DIR. With --gguf, tensors and vocabulary also equal the GGUF's
      (so the q/k permutation is checked against llama.cpp's own layout).
      Prints one "ok"/"not ok" line per check; exit status 1 on failure.

  make-hf-fixture.py tokenizer OUTDIR
      Regenerates the committed tokenizer files, OUTDIR/ and OUTDIR/spm/
      (needs PyPI tokenizers).

Needs numpy and safetensors; from-gguf and --gguf also need gguf.
"""

import json
import os
import struct
import sys
import tarfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOKDIR = os.path.join(os.path.dirname(HERE), "tests", "data", "hf")

# --------------------------------------------------------------------------
# safetensors writing (bf16) and reading (all three float types)
# --------------------------------------------------------------------------


def write_safetensors_raw(path, tensors, metadata=None):
    """tensors: name -> (dtype string, shape, bytes). Header padded with
    spaces to a multiple of 8, as the reference writer does."""
    hdr = {}
    if metadata:
        hdr["__metadata__"] = metadata
    off = 0
    for name in sorted(tensors):
        dt, shape, data = tensors[name]
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name in sorted(tensors):
            f.write(tensors[name][2])


def read_safetensors(path):
    """name -> (dtype string, shape, raw numpy array: uint16 for F16/BF16)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    hdr = json.loads(data[8:8 + n])
    out = {}
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        np_dt = {"F32": np.float32, "F16": np.uint16, "BF16": np.uint16}[t["dtype"]]
        out[name] = (t["dtype"], tuple(t["shape"]), np.frombuffer(raw, dtype=np_dt).reshape(t["shape"]))
    return out


def to_bf16(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def as_f32(dt, a):
    if dt == "F32":
        return a.astype(np.float32)
    if dt == "F16":
        return a.view(np.float16).astype(np.float32)
    return (a.astype(np.uint32) << 16).view(np.float32)


def save_tensors(path, arrays, dtype):
    """arrays: name -> float32 numpy array."""
    if dtype == "bf16":
        write_safetensors_raw(path, {k: ("BF16", v.shape, to_bf16(v).tobytes()) for k, v in arrays.items()},
                              {"format": "pt"})
        return
    from safetensors.numpy import save_file
    npdt = np.float16 if dtype == "f16" else np.float32
    save_file({k: np.ascontiguousarray(v.astype(npdt)) for k, v in arrays.items()}, path,
              metadata={"format": "pt"})


def write_model(d, arrays, dtype, shards):
    if shards <= 1:
        save_tensors(os.path.join(d, "model.safetensors"), arrays, dtype)
        return
    names = sorted(arrays)
    wm = {}
    for s in range(shards):
        fn = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = {k: arrays[k] for k in names[s::shards]}
        save_tensors(os.path.join(d, fn), part, dtype)
        wm.update({k: fn for k in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f, indent=1)


# --------------------------------------------------------------------------
# llama.cpp's row order for q/k
# --------------------------------------------------------------------------


def permute(w, n_head):
    """llama.cpp's LlamaModel.permute: Hugging Face rows -> GGUF rows."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head):
    """The inverse: GGUF rows -> Hugging Face rows."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


HF_BLOCK = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "self_attn.qkv_proj": "attn_qkv", "mlp.gate_up_proj": "ffn_up",
}
GEMMA3_BLOCK = {"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
                "post_feedforward_layernorm": "post_ffw_norm"}
HF_TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
          "lm_head.weight": "output.weight"}


def gguf_name(hf, arch="llama"):
    if hf in HF_TOP:
        return HF_TOP[hf]
    parts = hf.split(".")
    assert parts[0] == "model" and parts[1] == "layers", hf
    base = ".".join(parts[3:-1])
    m = dict(HF_BLOCK, **GEMMA3_BLOCK) if arch == "gemma3" else HF_BLOCK
    return "blk.%s.%s.%s" % (parts[2], m[base], parts[-1])


def hf_name(gg):
    """llama GGUF name -> Hugging Face name."""
    for k, v in HF_TOP.items():
        if v == gg:
            return k
    _, b, base, suf = gg.split(".")
    inv = {v: k for k, v in list(HF_BLOCK.items())[:9]}
    return "model.layers.%s.%s.%s" % (b, inv[base], suf)


# --------------------------------------------------------------------------
# tiny model
# --------------------------------------------------------------------------

TINY = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5,
            rope_theta=10000.0, vocab_size=320)

ARCHS = {  # HF class, model_type, q/k rows permuted, tokenizer fixture
    "llama": ("LlamaForCausalLM", "llama", True, ""),
    "smollm3": ("SmolLM3ForCausalLM", "smollm3", True, ""),
    "qwen2": ("Qwen2ForCausalLM", "qwen2", False, ""),
    "qwen3": ("Qwen3ForCausalLM", "qwen3", False, ""),
    "gemma3": ("Gemma3ForCausalLM", "gemma3_text", False, "spm"),
    "phi3": ("Phi3ForCausalLM", "phi3", False, "spm"),
}


def tiny_config(arch, untied, llama3, dtype):
    c = dict(TINY)
    c.update({"architectures": [ARCHS[arch][0]], "model_type": ARCHS[arch][1],
              "tie_word_embeddings": not untied, "bos_token_id": 1, "eos_token_id": 2,
              "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[dtype]})
    if ARCHS[arch][3] == "spm":
        c["vocab_size"] = 352
    if arch in ("qwen3", "gemma3"):
        c["head_dim"] = 16
    if arch == "gemma3":
        c.update({"rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "sliding_window": 16,
                  "layer_types": ["sliding_attention", "full_attention"], "query_pre_attn_scalar": 16,
                  "final_logit_softcapping": None, "bos_token_id": 2, "eos_token_id": 1})
    if arch == "phi3":
        c.update({"original_max_position_embeddings": 64, "sliding_window": 128,
                  "rope_scaling": {"type": "longrope", "long_factor": [1.0 + i for i in range(8)],
                                   "short_factor": [1.0 + 0.5 * i for i in range(8)]}})
    if llama3:
        c["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    return c


def cmd_tiny(d, arch="llama", dtype="bf16", shards=1, untied=False, llama3=False, string_merges=False,
             seed=1):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    c = tiny_config(arch, untied, llama3, dtype)
    n_embd, n_ff, hd = c["hidden_size"], c["intermediate_size"], c["hidden_size"] // c["num_attention_heads"]
    kv = hd * c["num_key_value_heads"]
    arrays = {"model.embed_tokens.weight": rng.standard_normal((c["vocab_size"], n_embd)),
              "model.norm.weight": 1 + 0.1 * rng.standard_normal(n_embd)}
    if untied:
        arrays["lm_head.weight"] = rng.standard_normal((c["vocab_size"], n_embd))
    block = [("input_layernorm.weight", (n_embd,)), ("post_attention_layernorm.weight", (n_embd,)),
             ("self_attn.o_proj.weight", (n_embd, n_embd)), ("mlp.down_proj.weight", (n_embd, n_ff))]
    if arch == "phi3":
        block += [("self_attn.qkv_proj.weight", (n_embd + 2 * kv, n_embd)),
                  ("mlp.gate_up_proj.weight", (2 * n_ff, n_embd))]
    else:
        block += [("self_attn.q_proj.weight", (n_embd, n_embd)), ("self_attn.k_proj.weight", (kv, n_embd)),
                  ("self_attn.v_proj.weight", (kv, n_embd)), ("mlp.gate_proj.weight", (n_ff, n_embd)),
                  ("mlp.up_proj.weight", (n_ff, n_embd))]
    if arch == "qwen2":
        block += [("self_attn.q_proj.bias", (n_embd,)), ("self_attn.k_proj.bias", (kv,)),
                  ("self_attn.v_proj.bias", (kv,))]
    if arch in ("qwen3", "gemma3"):
        block += [("self_attn.q_norm.weight", (hd,)), ("self_attn.k_norm.weight", (hd,))]
    if arch == "gemma3":
        block += [("pre_feedforward_layernorm.weight", (n_embd,)),
                  ("post_feedforward_layernorm.weight", (n_embd,))]
    for b in range(c["num_hidden_layers"]):
        for name, shape in block:
            arrays["model.layers.%d.%s" % (b, name)] = rng.standard_normal(shape)
    arrays = {k: (0.05 * v).astype(np.float32) for k, v in arrays.items()}
    write_model(d, arrays, dtype, shards)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    with open(os.path.join(TOKDIR, ARCHS[arch][3], "tokenizer.json"), encoding="utf-8") as f:
        added = {a["content"]: a["id"] for a in json.load(f)["added_tokens"]}
    eos = [1, added["<end_of_turn>"]] if ARCHS[arch][3] == "spm" else [2, 0]
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": eos, "temperature": 0.2,
                   "top_p": 0.9, "top_k": 40, "repetition_penalty": 1.1, "do_sample": True}, f, indent=2)
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        with open(os.path.join(TOKDIR, ARCHS[arch][3], fn), encoding="utf-8") as f:
            t = json.load(f)
        if fn == "tokenizer.json" and string_merges:
            t["model"]["merges"] = [" ".join(m) for m in t["model"]["merges"]]
        if fn == "tokenizer.json" and arch == "phi3":  # Llama 2 style: a leading "▁"
            t["normalizer"] = {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "\u2581"}, t["normalizer"]]}
        with open(os.path.join(d, fn), "w", encoding="utf-8") as f:
            json.dump(t, f, indent=1, ensure_ascii=False)


def cmd_tokenizer(outdir):
    """The committed byte-level BPE fixture, shaped like SmolLM2's."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    corpus = [
        "Once upon a time there was a little robot who loved to count: 1, 2, 3, 42, 1000.",
        "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away!",
        "Tokenizers split text into pieces; byte-level BPE merges frequent pairs of bytes.",
        "Hello world! Hello there, small language model. It's a fine day, isn't it?",
    ] * 4
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=300, min_frequency=2, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens([AddedToken("<tool_call>", special=False, normalized=False)])
    os.makedirs(outdir, exist_ok=True)
    tok.save(os.path.join(outdir, "tokenizer.json"))
    tc = {"add_prefix_space": False, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
          "unk_token": "<|endoftext|>", "pad_token": "<|im_end|>", "model_max_length": 256,
          "tokenizer_class": "GPT2Tokenizer",
          "chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                           "{{ m['content'] }}<|im_end|>\n{% endfor %}"}
    with open(os.path.join(outdir, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2)

    # SentencePiece-style (Gemma, Llama 2): BPE over "▁"-joined text with byte
    # fallback; the byte tokens live in the vocabulary, not among the added ones
    sp = ["<pad>", "<eos>", "<bos>", "<unk>"] + ["<0x%02X>" % i for i in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                       special_tokens=[("<bos>", 2)])
    trainer = trainers.BpeTrainer(vocab_size=345, min_frequency=2, show_progress=False, special_tokens=sp)
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens(["<start_of_turn>", "<end_of_turn>"])
    tok.add_tokens([AddedToken("\u2581\u2581", special=False, normalized=False)])
    j = json.loads(tok.to_str())
    j["added_tokens"] = [a for a in j["added_tokens"] if not a["content"].startswith("<0x")]
    os.makedirs(os.path.join(outdir, "spm"), exist_ok=True)
    with open(os.path.join(outdir, "spm", "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(j, f, indent=1, ensure_ascii=False)
    tc = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>", "eos_token": "<eos>",
          "unk_token": "<unk>", "pad_token": "<pad>", "model_max_length": 256,
          "chat_template": "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n"
                           "{{ m['content'] }}<end_of_turn>\n{% endfor %}"}
    with open(os.path.join(outdir, "spm", "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2)


# --------------------------------------------------------------------------
# from a GGUF (SmolLM2)
# --------------------------------------------------------------------------


def gguf_fields(r):
    import gguf
    out = {}
    for k, f in r.fields.items():
        if not f.types:
            continue
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            if f.types[-1] == gguf.GGUFValueType.STRING:
                out[k] = [bytes(f.parts[i]) for i in f.data]
            else:
                out[k] = [f.parts[i].tolist()[0] for i in f.data]
        elif f.types[0] == gguf.GGUFValueType.STRING:
            out[k] = bytes(f.parts[f.data[0]]).decode()
        else:
            out[k] = f.parts[f.data[0]].tolist()[0]
    return out


def gguf_tensors(r):
    """name -> float32 array in GGUF row layout (numpy shape: outermost first)."""
    from gguf.quants import dequantize
    return {t.name: dequantize(t.data, t.tensor_type).astype(np.float32).reshape(
        [int(x) for x in reversed(t.shape)]) for t in r.tensors}


def cmd_from_gguf(path, d):
    import gguf
    r = gguf.GGUFReader(path)
    kv = gguf_fields(r)
    a = kv["general.architecture"]
    assert a == "llama", "only llama GGUFs are supported"
    n_head, n_kv = kv[a + ".attention.head_count"], kv[a + ".attention.head_count_kv"]
    arrays = {}
    for name, w in gguf_tensors(r).items():
        if ".attn_q." in name:
            w = unpermute(w, n_head)
        elif ".attn_k." in name:
            w = unpermute(w, n_kv)
        arrays[hf_name(name)] = w
    os.makedirs(d, exist_ok=True)
    save_tensors(os.path.join(d, "model.safetensors"), arrays, "f16")
    tokens = [t.decode() for t in kv["tokenizer.ggml.tokens"]]
    types = kv["tokenizer.ggml.token_type"]
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
           "hidden_size": kv[a + ".embedding_length"], "intermediate_size": kv[a + ".feed_forward_length"],
           "num_hidden_layers": kv[a + ".block_count"], "num_attention_heads": n_head,
           "num_key_value_heads": n_kv, "max_position_embeddings": kv[a + ".context_length"],
           "rms_norm_eps": kv[a + ".attention.layer_norm_rms_epsilon"], "rope_theta": kv[a + ".rope.freq_base"],
           "vocab_size": len(tokens), "tie_word_embeddings": "output.weight" not in [t.name for t in r.tensors],
           "bos_token_id": kv.get("tokenizer.ggml.bos_token_id"), "eos_token_id": kv.get("tokenizer.ggml.eos_token_id"),
           "torch_dtype": "float16"}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(tokens) if types[i] == 3]
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
          "normalizer": None,
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Digits", "individual_digits": True},
              {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
          "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                             "use_regex": True},
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                    "vocab": {t: i for i, t in enumerate(tokens)},
                    "merges": [m.decode() for m in kv["tokenizer.ggml.merges"]]}}
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tj, f, ensure_ascii=False)
    tc = {"add_prefix_space": kv.get("tokenizer.ggml.add_space_prefix", False),
          "chat_template": kv.get("tokenizer.chat_template")}
    for key, typ in (("bos", "bos"), ("eos", "eos"), ("unknown", "unk"), ("padding", "pad")):
        i = kv.get("tokenizer.ggml.%s_token_id" % key)
        if i is not None:
            tc[typ + "_token"] = tokens[i]
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------
# checking a bundle
# --------------------------------------------------------------------------


def unpack(b, i=0):
    """A minimal msgpack decoder (strings kept as bytes)."""
    c = b[i]
    if c <= 0x7F:
        return c, i + 1
    if c >= 0xE0:
        return c - 0x100, i + 1
    if 0x80 <= c <= 0x8F or c in (0xDE, 0xDF):
        n, i = (c & 0x0F, i + 1) if c <= 0x8F else (
            struct.unpack_from(">H" if c == 0xDE else ">I", b, i + 1)[0], i + (3 if c == 0xDE else 5))
        m = {}
        for _ in range(n):
            k, i = unpack(b, i)
            v, i = unpack(b, i)
            m[k.decode() if isinstance(k, bytes) else k] = v
        return m, i
    if 0x90 <= c <= 0x9F or c in (0xDC, 0xDD):
        n, i = (c & 0x0F, i + 1) if c <= 0x9F else (
            struct.unpack_from(">H" if c == 0xDC else ">I", b, i + 1)[0], i + (3 if c == 0xDC else 5))
        a = []
        for _ in range(n):
            v, i = unpack(b, i)
            a.append(v)
        return a, i
    if 0xA0 <= c <= 0xBF or c in (0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6):
        if c <= 0xBF:
            n, i = c & 0x1F, i + 1
        else:
            w = {0xD9: 1, 0xC4: 1, 0xDA: 2, 0xC5: 2, 0xDB: 4, 0xC6: 4}[c]
            n = int.from_bytes(b[i + 1:i + 1 + w], "big")
            i += 1 + w
        return bytes(b[i:i + n]), i + n
    fixed = {0xC0: (None, 0), 0xC2: (False, 0), 0xC3: (True, 0)}
    if c in fixed:
        return fixed[c][0], i + 1
    fmt = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
           0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}[c]
    return struct.unpack_from(fmt, b, i + 1)[0], i + 1 + struct.calcsize(fmt)


class Checker:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, why=""):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc))
        if not cond and why:
            print("#   " + str(why)[:500])
        sys.stdout.flush()
        return cond


def load_bundle(path):
    tf = tarfile.open(path)
    members = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}
    man, _ = unpack(members["manifest.msgpack"])
    return man, members


def looks_special(c):
    return (c in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (c.startswith("<|") and c.endswith("|>"))
            or (c.startswith("<unused") and c.endswith(">")))


def expected_vocab(d, n_vocab):
    """tokens, token types, scores (None for byte-level BPE), merges (None
    for SentencePiece-style), as llama.cpp's converters produce them."""
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    m = tj["model"]
    spm = m.get("byte_fallback", False)
    toks = [None] * n_vocab
    types = [1] * n_vocab
    for t, i in m["vocab"].items():
        toks[i] = t.encode()
        if spm and (t == m.get("unk_token")):
            types[i] = 2
        elif spm and len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            types[i] = 6
    pairs = [m.split(" ", 1) if isinstance(m, str) else m for m in m["merges"]]
    scores = None
    if spm:  # minus the rank of the merge making a token
        scores = [-(len(pairs) + i) if types[i] == 1 else 0.0 for i in range(n_vocab)]
        for r in range(len(pairs) - 1, -1, -1):
            i = m["vocab"].get(pairs[r][0] + pairs[r][1])
            if i is not None and types[i] == 1:
                scores[i] = -r
    for a in tj["added_tokens"]:
        c = a["content"]
        special = a["special"] or looks_special(c)
        toks[a["id"]] = (c if special else c.replace("\u2581", " ")).encode()
        types[a["id"]] = 2 if special and types[a["id"]] == 2 else 3 if special else 4
        if spm:
            scores[a["id"]] = -1000.0
    for i in range(n_vocab):
        if toks[i] is None:
            toks[i], types[i] = ("[PAD%d]" % i).encode(), 5
            if spm:
                scores[i] = -1000.0
    merges = None if spm else [" ".join(p.replace(" ", "\u0120") for p in pr).encode() for pr in pairs]
    return toks, types, scores, merges


def expected_tensor(arch, cfg, name, dt, shape, raw):
    """GGUF name, dtype and bytes llama.cpp's converter makes of a tensor."""
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    g = gguf_name(name, arch)
    one_d = len(shape) == 1 or g.endswith("_norm.weight")
    want_dt = "f32" if one_d else dt.lower()
    a = raw
    if arch == "gemma3" and name.endswith("norm.weight"):  # Gemma3RMSNorm: 1 + weight
        x = as_f32(dt, raw) + np.float32(1)
        a = x.astype(np.float16).astype(np.float32) if dt == "F16" else x
    elif one_d:
        a = as_f32(dt, raw)
    if ARCHS[arch][2] and ".attn_q." in g:
        a = permute(a, n_head)
    elif ARCHS[arch][2] and ".attn_k." in g:
        a = permute(a, n_kv)
    return g, want_dt, np.ascontiguousarray(a).tobytes()


def expected_hparams(arch, cfg):
    n_head = cfg["num_attention_heads"]
    hp = {"block_count": cfg["num_hidden_layers"], "context_length": cfg["max_position_embeddings"],
          "embedding_length": cfg["hidden_size"], "feed_forward_length": cfg["intermediate_size"],
          "attention.head_count": n_head, "attention.head_count_kv": cfg["num_key_value_heads"],
          "rope.freq_base": cfg["rope_theta"], "attention.layer_norm_rms_epsilon": cfg["rms_norm_eps"]}
    if arch in ("llama", "smollm3"):
        hp.update({"vocab_size": cfg["vocab_size"], "rope.dimension_count": cfg["hidden_size"] // n_head})
    if "head_dim" in cfg:
        hp.update({"attention.key_length": cfg["head_dim"], "attention.value_length": cfg["head_dim"]})
    if arch == "gemma3":
        hp.update({"attention.sliding_window": cfg["sliding_window"],
                   "rope.freq_base_swa": cfg["rope_local_base_freq"],
                   "attention.sliding_window_pattern": [t == "sliding_attention" for t in cfg["layer_types"]]})
    if arch == "phi3":
        orig = cfg["original_max_position_embeddings"]
        scale = cfg["max_position_embeddings"] / orig
        hp.update({"rope.dimension_count": cfg["hidden_size"] // n_head,
                   "attention.sliding_window": cfg["sliding_window"],
                   "rope.scaling.original_context_length": orig,
                   "rope.scaling.attn_factor": float(np.sqrt(1 + np.log(scale) / np.log(orig)))})
    return hp


def cmd_check(bundle, d, gguf_path=None):
    ck = Checker()
    man, members = load_bundle(bundle)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    arch = [k for k, v in ARCHS.items() if v[0] == cfg["architectures"][0]][0]
    n_head = cfg["num_attention_heads"]
    ck.ok(man.get("arch") == arch.encode(), "arch is %s" % arch, man.get("arch"))

    src = {}
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".safetensors"):
            src.update(read_safetensors(os.path.join(d, fn)))
    table = {t["name"].decode(): t for t in man["tensors"]}
    seen = set()
    for name, (dt, shape, raw) in sorted(src.items()):
        g, want_dt, want = expected_tensor(arch, cfg, name, dt, shape, raw)
        seen.add(g)
        t = table.get(g)
        if not ck.ok(t is not None, "%s present as %s" % (name, g)):
            continue
        got = members.get(t["member"].decode())
        ok = (t["dtype"].decode() == want_dt and [int(x) for x in t["shape"]] == list(reversed(shape))
              and got == want)
        note = " (rows permuted)" if ARCHS[arch][2] and (".attn_q." in g or ".attn_k." in g) else ""
        note += " (+1)" if arch == "gemma3" and name.endswith("norm.weight") else ""
        ck.ok(ok, "%s: %s %s equals the source%s" % (g, want_dt, list(reversed(shape)), note),
              "dtype %s shape %s" % (t["dtype"], t["shape"]))
    hp = man.get("hparams", {})
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type") == "llama3":
        t = table.get("rope_freqs.weight")
        seen.add("rope_freqs.weight")
        dim = cfg["hidden_size"] // n_head
        freqs = 1.0 / (cfg["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
        old = rs["original_max_position_embeddings"]
        lo, hi = old / rs["low_freq_factor"], old / rs["high_freq_factor"]
        want = []
        for fr in freqs:
            wl = 2 * np.pi / fr
            if wl < hi:
                want.append(1.0)
            elif wl > lo:
                want.append(rs["factor"])
            else:
                s = (old / wl - rs["low_freq_factor"]) / (rs["high_freq_factor"] - rs["low_freq_factor"])
                want.append(1 / ((1 - s) / rs["factor"] + s))
        got = np.frombuffer(members.get(t["member"].decode(), b""), dtype=np.float32) if t else None
        ck.ok(t is not None and got is not None and np.allclose(got, want, rtol=1e-6),
              "rope_freqs.weight: llama3 factors", got)
    for key in ("long_factor", "short_factor"):
        if key in rs:
            g = "rope_factors_%s.weight" % key.split("_")[0]
            seen.add(g)
            t = table.get(g)
            got = members.get(t["member"].decode()) if t else None
            ck.ok(got == np.array(rs[key], dtype=np.float32).tobytes(), g)
    ck.ok(set(table) == seen, "no other tensors", sorted(set(table) ^ seen))
    tied = "lm_head.weight" not in src
    ck.ok(bool(hp.get("tied_embeddings")) == tied, "tied_embeddings %s" % tied, hp.get("tied_embeddings"))
    for k, v in expected_hparams(arch, cfg).items():
        got = hp.get(k)
        good = (abs(got - v) <= 1e-12 * abs(v) if isinstance(v, float) and isinstance(got, float)
                else got == v and type(got) is type(v))
        ck.ok(good, "hparams %s = %r" % (k, v), got)

    voc, _ = unpack(members[man["tokenizer"]["member"].decode()])
    toks, types, scores, merges = expected_vocab(d, cfg["vocab_size"])
    ck.ok(voc["tokens"] == toks, "%d tokens in id order, padded" % len(toks))
    ck.ok(voc["token_type"] == types, "token types",
          [(i, a, b) for i, (a, b) in enumerate(zip(voc["token_type"], types)) if a != b][:5])
    if merges is not None:
        ck.ok(voc.get("merges") == merges, "%d merges" % len(merges))
    else:
        ck.ok("merges" not in voc, "no merges for a SentencePiece vocabulary")
        ck.ok(voc.get("scores") is not None and
              np.array_equal(np.array(voc["scores"], dtype=np.float32), np.array(scores, dtype=np.float32)),
              "scores follow the merge ranks")
    tok = man["tokenizer"]
    want_model, want_pre = ("llama", "default") if merges is None else ("gpt2", "smollm")
    ck.ok(tok.get("model") == want_model.encode() and tok.get("pre") == want_pre.encode(),
          "%s / %s" % (want_model, want_pre), (tok.get("model"), tok.get("pre")))
    with open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8") as f:
        tc = json.load(f)
    by_text = {t: i for i, t in enumerate(toks)}
    for key, typ in (("bos_token_id", "bos"), ("eos_token_id", "eos"), ("unknown_token_id", "unk"),
                     ("padding_token_id", "pad")):
        if typ + "_token" in tc:
            want = by_text[tc[typ + "_token"].encode()]
            ck.ok(tok.get(key) == want, "%s = %d" % (key, want), tok.get(key))
    # SentencePiece-style: whether the normalizer prepends "▁"; byte-level:
    # llama.cpp's LlamaModel copies tokenizer_config's add_prefix_space
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        prefix = "Prepend" in json.dumps(json.load(f).get("normalizer"))
    if merges is not None:
        prefix = tc.get("add_prefix_space") if arch in ("llama", "smollm3") else None
    ck.ok(tok.get("add_space_prefix") is prefix, "add_space_prefix %s" % prefix, tok.get("add_space_prefix"))
    # a ByteLevel post-processor adds no BOS (and llama.cpp forces that for
    # 49152-token vocabularies); a TemplateProcessing "<bos> $A" adds it
    want_bos = merges is None
    ck.ok(tok.get("add_bos_token") is want_bos, "add_bos_token %s" % want_bos, tok.get("add_bos_token"))
    if tc.get("chat_template"):
        ck.ok(man.get("chat_template") == tc["chat_template"].encode(), "chat template")
    gp = os.path.join(d, "generation_config.json")
    if os.path.exists(gp):
        with open(gp) as f:
            gc = json.load(f)
        gen = man.get("generation", {})
        ck.ok(gen.get("temperature") == gc["temperature"] and gen.get("top_p") == gc["top_p"]
              and gen.get("top_k") == gc.get("top_k")
              and gen.get("repeat_penalty") == gc["repetition_penalty"], "generation defaults", gen)
        eos = gc["eos_token_id"]
        if isinstance(eos, list) and len(eos) > 1:
            ck.ok(tok.get("eot_token_id") == eos[1], "eot_token_id %d from generation_config" % eos[1],
                  tok.get("eot_token_id"))

    if gguf_path:
        import gguf
        r = gguf.GGUFReader(gguf_path)
        kv = gguf_fields(r)
        bad = []
        for name, w in gguf_tensors(r).items():
            t = table.get(name)
            if t is None:
                bad.append(name + " missing")
                continue
            raw = members[t["member"].decode()]
            got = np.frombuffer(raw, dtype=np.float32 if t["dtype"] == b"f32" else np.float16).astype(np.float32)
            want = w.reshape(-1)
            if t["dtype"] == b"f16":
                want = want.astype(np.float16).astype(np.float32)
            if not np.array_equal(got, want):
                bad.append(name)
        ck.ok(not bad, "%d tensors equal the GGUF's dequantized ones (q/k in llama.cpp's order)"
              % len(r.tensors), bad[:5])
        ck.ok(voc["tokens"] == kv["tokenizer.ggml.tokens"], "tokens equal the GGUF's")
        ck.ok(voc["token_type"] == kv["tokenizer.ggml.token_type"], "token types equal the GGUF's")
        ck.ok(voc["merges"] == kv["tokenizer.ggml.merges"], "merges equal the GGUF's")
        for key in ("pre", "bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id",
                    "add_bos_token", "add_space_prefix"):
            want = kv.get("tokenizer.ggml." + key)
            got = tok.get(key)
            if isinstance(got, bytes):
                got = got.decode()
            if isinstance(want, int) and key.startswith("add_"):
                want = bool(want)
            ck.ok(got == want, "tokenizer %s = %r as in the GGUF" % (key, want), got)
        for key in ("block_count", "context_length", "embedding_length", "feed_forward_length",
                    "attention.head_count", "attention.head_count_kv", "rope.dimension_count", "vocab_size"):
            ck.ok(hp.get(key) == kv.get("llama." + key), "hparams %s as in the GGUF" % key, hp.get(key))
    print("1..%d" % ck.n)
    return 1 if ck.failed else 0


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tiny")
    p.add_argument("dir")
    p.add_argument("--arch", choices=sorted(ARCHS), default="llama")
    p.add_argument("--dtype", choices=("bf16", "f16", "f32"), default="bf16")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--untied", action="store_true")
    p.add_argument("--llama3-rope", action="store_true")
    p.add_argument("--string-merges", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("from-gguf")
    p.add_argument("gguf")
    p.add_argument("dir")
    p = sub.add_parser("check")
    p.add_argument("bundle")
    p.add_argument("dir")
    p.add_argument("--gguf")
    p = sub.add_parser("tokenizer")
    p.add_argument("outdir")
    a = ap.parse_args(argv)
    if a.cmd == "tiny":
        cmd_tiny(a.dir, a.arch, a.dtype, a.shards, a.untied, a.llama3_rope, a.string_merges, a.seed)
    elif a.cmd == "from-gguf":
        cmd_from_gguf(a.gguf, a.dir)
    elif a.cmd == "check":
        return cmd_check(a.bundle, a.dir, a.gguf)
    else:
        cmd_tokenizer(a.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
