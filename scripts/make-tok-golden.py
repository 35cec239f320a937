#!/usr/bin/env python3
"""make-tok-golden.py - regenerate the tokenizer goldens in tests/data/tok/.

Tokenizes a fixed corpus (written below: many scripts, code, white space
runs, emoji, long words and numbers, text that looks like special tokens)
with llama-cpp-python for the real models the tests use, and for shared
test vocabularies with another pre-tokenizer (VARIANTS), and writes one
JSON file each: {"model", "llama_cpp_python", "gguf" (a cached model) or
"base" + "pre" (a variant), "cases": [{"text", "ids", "special",
"add_bos"}]}. tests/unit-tok.c checks them when the model is cached
(scripts/fetch-models NAME), else skips. Needs the PyPI packages
llama-cpp-python and gguf.

Made with llama-cpp-python 0.3.36 (pip install llama-cpp-python, built
with CMAKE_ARGS="-DGGML_NATIVE=on"), as
    Llama(model_path, vocab_only=True).tokenize(text.encode(),
                                                add_bos=ADD_BOS, special=SPECIAL)
where most cases use add_bos=False, special=False.

Usage: scripts/make-tok-golden.py [OUTDIR]   (default: tests/data/tok)
"""
import json
import os
import random
import subprocess
import sys

MODELS = {
    # name for scripts/fetch-models: GGUF file name in the cache
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}

# Pre-tokenizers no shared test vocabulary uses, checked on a shared
# vocabulary with tokenizer.ggml.pre replaced: name: (base file in
# ../shared/vocab, pre). The test loads the base with the same override.
VARIANTS = {
    "gpt2-llama3": ("ggml-vocab-gpt-2.gguf", "llama-bpe"),
    "gpt2-qwen2": ("ggml-vocab-gpt-2.gguf", "qwen2"),
}


def corpus():
    """The texts, all valid UTF-8 (llama.cpp and this code differ on
    invalid UTF-8 by design: see tok.h)."""
    rnd = random.Random(20261124)
    letters = "abcdefghijklmnopqrstuvwxyz"
    long_word = "".join(rnd.choice(letters) for _ in range(3000))
    long_cjk = "".join(chr(rnd.randrange(0x4E00, 0x9FA5)) for _ in range(400))
    digits = "".join(rnd.choice("0123456789") for _ in range(257))
    t = [
        # Latin with accents
        "Héllo wörld! Ça va? Ñandú, façade, naïve, coöperate, Ærøskøbing.",
        "Cửa Việt, Hà Nội, Đà Nẵng — tiếng Việt có dấu.",
        "Zażółć gęślą jaźń. Příliš žluťoučký kůň úpěl ďábelské ódy.",
        "straße STRASSE Maße ﬁnance ﬂour",
        # Cyrillic, Greek
        "Съешь же ещё этих мягких французских булок, да выпей чаю.",
        "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Άλφα, Ωμέγα, ΐ ΰ.",
        # Arabic, Hebrew (right to left)
        "مرحبا بالعالم! كيف حالك؟ ١٢٣٤٥",
        "שלום עולם, מה שלומך? אבגדה",
        # Devanagari, Thai
        "नमस्ते दुनिया। हिन्दी भाषा ०१२३४५६७८९",
        "สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
        # Chinese, Japanese, Korean
        "你好，世界！我们正在测试分词器。",
        "こんにちは世界。カタカナとひらがなと漢字。ｶﾀｶﾅ",
        "안녕하세요 세계! 한국어 토크나이저 테스트입니다.",
        # code
        'def f(x):\n    return x ** 2  # square\n\nprint(f(3))\n',
        '#include <stdio.h>\nint main(void) {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
        'if (a != b && c <= d || e >= f) { x += 1; y -= 2; z *= 3; }',
        '{"key": [1, 2.5, -3e10, true, null], "k2": {"a": "b"}}',
        "SELECT name, COUNT(*) FROM users WHERE age > 18 GROUP BY name;",
        "<div class=\"x\"><span>text</span></div> <table><tr><td>1</td></tr></table>",
        "$ ls -la | grep '^d' && echo \"done\" > /dev/null 2>&1",
        # white space
        " ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n",
        "a  b   c    d     e",
        "line one\r\nline two\r\n\r\nline four",
        "\t indented\n\t\tmore\n   \n\n  trailing   ",
        "   leading spaces",
        "trailing spaces   ",
        "mixed \u00a0nbsp\u3000ideographic\u2003em space",
        "  \n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n",
        # emoji
        "🚀 rocket 🔥 fire 😀😃😄",
        "👩\u200d💻 👨\u200d👩\u200d👧\u200d👦 🏳️\u200d🌈 ❤️",
        "🇫🇷 🇯🇵 🇺🇸 🇩🇪 flags",
        "👍🏽 👋🏿 skin tones",
        # numbers
        "3", "33", "333", "3333", "33333", "333333", "3333333",
        "1234567890123456789012345678901234567890",
        digits,
        "3.14159 2,718 -42 +7 1e-9 0x1F 1_000_000",
        "Call 555-123-4567 or +1 (800) 555 0199.",
        "٣٤٥ ४५६ ๔๕๖ ½ ¾ ²³",
        # contractions, punctuation
        "I'm you're he's we've they'll I'd don't CAN'T WON'T It'S",
        "Hello, world! How's it going? Fine... (really) [yes] {no}",
        "\"quoted\" 'single' «guillemets» „Anführung“ ‘curly’ “double”",
        "a--b---c ... !!! ??? ,,, ;;; ::: ~~~ ``` ***",
        # long words
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft",
        long_word,
        long_cjk,
        # text that looks like special tokens
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
        "<s>[INST] hi [/INST]</s>",
        "<|endoftext|> and <|endoftext|>",
        "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
        "<bos><eos><pad><unk><mask>",
        "<unused0> <unused99>",
        "<<|im_end|>> <|im_end <im_end|>",
        "< s > </ s > <S>",
        # miscellaneous
        "",
        "ied 4 ½ months",
        "Führer",
        "\u0301combining first, e\u0301 vs é, ñ vs n\u0303",
        "zero\u200bwidth\u200cjoiner\u200dtest\ufeffbom",
        "Ω Å K ﬀ ℌ ⅷ ① ㍿",
        "Tab\tseparated\tvalues\n1\t2\t3",
        "URL: https://example.com/path?q=1&r=2#frag",
        "e-mail: someone@example.org, @handle, #hashtag",
    ]
    return t


# Long white space runs (Gemma has user-defined tokens for runs of
# spaces, tabs and newlines: many overlapping matches); real models only.
LONG_RUNS = [
    "a" + " " * 1000 + "b" + "\n" * 700 + "c" + "\t" * 300 + "d",
    "x" + " " * 3001 + "y " + "\n" * 3001 + "z",
    " \n" * 500 + "\t \n" * 300,
]

SPECIAL_CASES = [
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "<s>[INST] hi [/INST]</s>",
    "<|endoftext|> and <|endoftext|>",
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "<bos><eos><pad><unk><mask>",
    "<<|im_end|>> <|im_end <im_end|>",
    "x <|im_end|> y <end_of_turn> z",
]
BOS_CASES = ["Hello world", "", " leading space", "<|im_start|>hi"]


def model_path(name):
    cache = os.environ.get("SLM_CACHE") or os.path.expanduser("~/.cache/slm")
    path = os.path.join(cache, "models", MODELS[name])
    if not os.path.exists(path):
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run([os.path.join(here, "fetch-models"), name],
                             capture_output=True, text=True)
        path = out.stdout.strip()
    if not path or not os.path.exists(path):
        sys.exit(f"make-tok-golden: cannot get the {name} model "
                 f"(scripts/fetch-models {name})")
    return path


def shared_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("SLM_SHARED") or os.path.join(here, "..", "..", "shared")


def variant_gguf(base, pre, out):
    """Copy base's metadata (no tensors) to out with tokenizer.ggml.pre = pre."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    r = GGUFReader(os.path.join(shared_dir(), "vocab", base))
    w = GGUFWriter(out, r.fields["general.architecture"].contents())
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k in ("general.architecture", "tokenizer.ggml.pre"):
            continue
        t = f.types[0]
        if t == GGUFValueType.ARRAY and f.types[-1] == GGUFValueType.STRING:
            w.add_array(k, [bytes(f.parts[i]) for i in f.data])
        elif t == GGUFValueType.ARRAY:
            w.add_array(k, [f.parts[i][0].item() for i in f.data])
        elif t == GGUFValueType.STRING:
            w.add_string(k, bytes(f.parts[f.data[0]]).decode("utf-8"))
        else:
            w.add_key_value(k, f.parts[f.data[0]][0].item(), t)
    w.add_string("tokenizer.ggml.pre", pre)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def write_doc(path, doc):
    """One case per line: small diffs when the goldens change."""
    cases = doc.pop("cases")
    with open(path, "w", encoding="utf-8") as f:
        head = json.dumps(doc, ensure_ascii=False)[:-1]
        f.write(head + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")
    print(f"{path}: {len(cases)} cases")


def main():
    import tempfile

    import llama_cpp

    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tok")
    os.makedirs(outdir, exist_ok=True)
    tmp = tempfile.mkdtemp()
    jobs = [(name, model_path(name), None) for name in MODELS]
    for name, (base, pre) in VARIANTS.items():
        path = os.path.join(tmp, name + ".gguf")
        variant_gguf(base, pre, path)
        jobs.append((name, path, (base, pre)))
    for name, path, variant in jobs:
        llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        cases = []

        def add(text, special, add_bos):
            ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos,
                               special=special)
            cases.append({"text": text, "ids": list(ids),
                          "special": special, "add_bos": add_bos})

        for text in corpus():
            add(text, False, False)
        if variant is None:
            for text in LONG_RUNS:
                add(text, False, False)
            for text in SPECIAL_CASES:
                add(text, True, False)
            for text in BOS_CASES:
                add(text, False, True)
                add(text, True, True)
        doc = {"model": name, "llama_cpp_python": llama_cpp.__version__}
        if variant is None:
            doc["gguf"] = MODELS[name]
        else:
            doc["base"], doc["pre"] = variant
        doc["cases"] = cases
        del llm
        write_doc(os.path.join(outdir, name + ".json"), doc)
        if variant is not None:
            os.unlink(path)
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
