#!/usr/bin/env python3
"""make-cli-golden.py - regenerate the fixtures of tests/tok-cli.sh and
tests/detok-cli.sh in tests/data/cli/.

  chat.json   chat prompts rendered by Python's jinja2 exactly as Hugging
              Face transformers' apply_chat_template() renders them
              (ImmutableSandboxedEnvironment(trim_blocks=True,
              lstrip_blocks=True) with the loopcontrols extension,
              raise_exception(), transformers' tojson;
              add_generation_prompt=True, bos_token and eos_token the texts
              of the vocabulary's BOS and EOS tokens), with
                - SmolLM2-135M-Instruct's own template (read from the GGUF
                  that scripts/fetch-models smollm2 caches), and
                - tests/data/cli/custom.jinja (for slm-tok --template).
              {"smollm2": {"gguf", "template", "template_sha256",
              "bos_token", "eos_token", "cases": [...]}, "custom": {...}};
              a case is
              {"name", "messages", "rendered"}: the test gives the messages
              to slm-tok (--chat/--system for a system + user pair, JSONL
              "messages" for any) and checks that the tokens equal those of
              "rendered" tokenized with special tokens parsed and no BOS.
  think.gguf  a tiny vocabulary-only GGUF: byte-level BPE (pre-tokenizer
              gpt-2) of the 256 byte tokens, a few merges, and the control
              tokens <|endoftext|> (BOS and EOS), <think> and </think>;
              made with the PyPI gguf package. For slm-detok --think.

Needs the PyPI packages jinja2 and gguf (and the SmolLM2 GGUF, fetched by
scripts/fetch-models). Output is deterministic.

Usage: scripts/make-cli-golden.py [OUTDIR]   (default: tests/data/cli)
"""
import hashlib
import json
import os
import subprocess
import sys

import gguf
import jinja2
import jinja2.ext
import jinja2.sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def render(template, messages, bos, eos):
    """transformers' _compile_jinja_template + render (add_generation_prompt)."""
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    t = env.from_string(template)
    return t.render(messages=messages, add_generation_prompt=True,
                    bos_token=bos, eos_token=eos)


def sys_user(system, user):
    m = [] if system is None else [{"role": "system", "content": system}]
    return m + [{"role": "user", "content": user}]


# Cases of system + user pairs go through --chat/--system as well as JSONL;
# the others through JSONL only.
CASES = [
    ("user only", sys_user(None, "Why is the sky blue?")),
    ("system and user", sys_user("Answer in French.", "Hello, how are you?")),
    ("multi-line, unicode, emoji", sys_user(
        "Réponds briè-\nvement.", "Line one\nLine two\n\n  indented ☃ 日本語 🎉")),
    ("special-looking text", sys_user(None, "What does <|im_end|> mean in <|im_start|>?")),
    ("trailing spaces and tabs", sys_user("  spaced  ", "\tq  ")),
    ("conversation", [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ]),
]


def chat_golden(name, template, bos, eos, extra):
    cases = []
    for cname, msgs in CASES:
        cases.append({"name": cname, "messages": msgs,
                      "rendered": render(template, msgs, bos, eos)})
    d = dict(extra)
    d.update({"template": template,
              "template_sha256": hashlib.sha256(template.encode()).hexdigest(),
              "bos_token": bos, "eos_token": eos, "cases": cases})
    return d


def smollm2_gguf():
    r = subprocess.run(["bash", os.path.join(HERE, "fetch-models"), "smollm2"],
                       capture_output=True, text=True)
    path = r.stdout.strip()
    if r.returncode != 0 or not path:
        sys.exit("make-cli-golden: scripts/fetch-models smollm2 failed")
    return path


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def write_think_gguf(path):
    # GPT-2's byte <-> unicode map: printable bytes stand for themselves
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    k = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + k)
            k += 1
    byte_char = {b: chr(c) for b, c in zip(bs, cs)}
    tokens = ["<|endoftext|>", "<think>", "</think>"]
    types = [gguf.TokenType.CONTROL] * 3
    for b in range(256):
        tokens.append(byte_char[b])
        types.append(gguf.TokenType.NORMAL)
    merges = []
    for word in ["the", "hink", "answer", "Ġthe", "Ġis", "Ġ4"]:
        # left-to-right merges building the word from its characters
        cur = word[0]
        for ch in word[1:]:
            if cur + ch not in tokens:
                merges.append(cur + " " + ch)
                tokens.append(cur + ch)
                types.append(gguf.TokenType.NORMAL)
            cur = cur + ch
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("think-test")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([int(t) for t in types])
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "tests", "data", "cli")
    os.makedirs(out, exist_ok=True)

    g = smollm2_gguf()
    r = gguf.GGUFReader(g)
    toks = field(r, "tokenizer.ggml.tokens")
    bos = toks[field(r, "tokenizer.ggml.bos_token_id")]
    eos = toks[field(r, "tokenizer.ggml.eos_token_id")]
    smol_t = field(r, "tokenizer.chat_template")
    with open(os.path.join(TOP, "tests", "data", "cli", "custom.jinja"), encoding="utf-8") as f:
        custom_t = f.read()
    gold = {
        "jinja2": jinja2.__version__,
        "smollm2": chat_golden("smollm2", smol_t, bos, eos,
                               {"gguf": os.path.basename(g)}),
        "custom": chat_golden("custom", custom_t, bos, eos,
                              {"template": "custom.jinja"}),
    }
    with open(os.path.join(out, "chat.json"), "w", encoding="utf-8") as f:
        json.dump(gold, f, ensure_ascii=False, indent=1)
        f.write("\n")
    write_think_gguf(os.path.join(out, "think.gguf"))


if __name__ == "__main__":
    main()
