#!/bin/sh
# convert-llama2c.sh - slm-convert on Karpathy's llama2.c checkpoints: tiny
# random models written by scripts/make-llama2c-fixture.py in the legacy
# layout (classifier shared, and unshared with a negative vocab_size) and as
# export version 1 (256-byte "ak42" header) convert to "llama" bundles whose
# hyper-parameters, tensors (bytes, shapes, llama.cpp names) and vocabulary
# (pieces, scores, types, special ids; slm-tok encodes with it) are the
# checkpoint's; bad checkpoints and tokenizer.bin files fail with one line
# naming the file, exit 65, and no output file.
#
# Needs python3 with numpy (skips, exit 77, without it).

set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
fixture="$top_srcdir/scripts/make-llama2c-fixture.py"

for t in slm-convert slm-pack slm-tok; do
	command -v $t >/dev/null 2>&1 || skip_all "$t is not built"
done
python3 -c 'import numpy' >/dev/null 2>&1 || skip_all "python3 lacks numpy"

scratch

fx="$tmp/fx"
python3 "$fixture" "$fx" || exit 99
mkdir "$tmp/o" || exit 99

# The checker: EXPECT.JSON MODEL INFO.JSON DIR (the bundle's `slm-pack info
# --json` and its members extracted into DIR) -> "STATUS description" lines,
# "# detail" lines after a failure.
cat >"$tmp/check.py" <<'EOF'
import hashlib, json, os, sys
expect, model, info, d = sys.argv[1:5]
sys.path.insert(0, os.path.join(os.environ["top_srcdir"], "tests"))
import bundletool
e = json.load(open(expect))
m = e["models"][model]
i = json.load(open(info))

def report(desc, bad):
    print("%d %s: %s" % (1 if bad else 0, model, desc))
    for b in bad[:10]:
        print("# " + b)

report("arch is llama", [] if i.get("arch") == "llama" else ["arch %r" % i.get("arch")])

hp = i.get("hparams", {})
bad = ["%s: %r, expected %r" % (k, hp.get(k), v) for k, v in e["hparams"].items()
       if hp.get(k) != v]
if bool(hp.get("tied_embeddings")) != m["shared"]:
    bad.append("tied_embeddings %r, classifier shared: %r" % (hp.get("tied_embeddings"),
                                                             m["shared"]))
report("hparams (blocks, width, heads, FFN, context, vocab, tied)", bad)

got = {t["name"]: t for t in i.get("tensors", [])}
want = m["tensors"]
bad = ["missing %s" % k for k in sorted(set(want) - set(got))]
bad += ["unexpected %s" % k for k in sorted(set(got) - set(want))]
bad += ["%s: %s %r, expected f32 %r" % (k, got[k]["dtype"], got[k]["shape"], want[k]["shape"])
        for k in sorted(set(want) & set(got))
        if got[k]["dtype"] != "f32" or got[k]["shape"] != want[k]["shape"]]
report("%d tensors, names, f32, shapes" % len(want), bad)

bad = []
for k, w in sorted(want.items()):
    p = os.path.join(d, "tensors", k)
    if not os.path.exists(p):
        bad.append("%s: not extracted" % k)
    elif hashlib.sha256(open(p, "rb").read()).hexdigest() != w["sha256"]:
        bad.append("%s: bytes differ" % k)
report("every tensor's bytes equal the checkpoint's", bad)

tok = i.get("tokenizer", {})
want_tok = {"model": "llama", "unknown_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
            "add_bos_token": True}
report("tokenizer model and special ids",
       ["%s: %r, expected %r" % (k, tok.get(k), v) for k, v in want_tok.items()
        if tok.get(k) != v])

bad = []
try:
    v, _ = bundletool.unpack(open(os.path.join(d, "tokenizer", "vocab.msgpack"), "rb").read())
    for k, key in (("vocab", "tokens"), ("scores", "scores"), ("token_type", "token_type")):
        if v.get(key) != e[k]:
            bad.append("%s differ" % key)
except Exception as x:
    bad.append("tokenizer/vocab.msgpack: %s" % x)
report("vocabulary: %d pieces, scores and types" % len(e["vocab"]), bad)
EOF

# run_check MODEL BUNDLE: the checker's lines as tests
run_check() {
	rm -rf "$tmp/x"
	mkdir "$tmp/x"
	if ! slm-pack info --json "$2" >"$tmp/info.json" 2>"$tmp/err" ||
		! slm-pack extract "$2" -C "$tmp/x" 2>>"$tmp/err"; then
		ok 1 "$1: slm-pack info/extract"
		sed 's/^/# /' "$tmp/err"
		return
	fi
	top_srcdir=$top_srcdir PYTHONDONTWRITEBYTECODE=1 python3 "$tmp/check.py" "$fx/expect.json" "$1" \
		"$tmp/info.json" "$tmp/x" >"$tmp/res" 2>&1 || echo "1 $1: checker failed" >>"$tmp/res"
	while read -r st desc; do
		case $st in
		0 | 1) ok "$st" "$desc" ;;
		*) echo "$st $desc" ;;
		esac
	done <"$tmp/res"
}

# convert MODEL: convert $fx/MODEL into $tmp/out.slm and check it
convert() {
	rm -f "$tmp/out.slm"
	if slm-convert "$fx/$1" --tokenizer "$fx/tokenizer.bin" -o "$tmp/out.slm" 2>"$tmp/err" &&
		[ ! -s "$tmp/err" ]; then
		run_check "$1" "$tmp/out.slm"
	else
		ok 1 "$1: slm-convert failed or wrote to stderr"
		sed 's/^/# /' "$tmp/err"
	fi
}

# --- the four layouts --------------------------------------------------------
for model in shared.bin unshared.bin v1.bin v1-unshared.bin; do
	convert "$model"
	if [ "$model" = unshared.bin ]; then
		grep -q '"name":"output.weight"' "$tmp/info.json"
		ok $? "unshared.bin: has output.weight"
	fi
	if [ "$model" = v1.bin ]; then
		cp "$tmp/info.json" "$tmp/info-v1.json"
		slm-pack info --json "$tmp/shared.slm" >"$tmp/info-legacy.json" 2>/dev/null
		python3 -c 'import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for j in (a, b):
    for k in ("file", "name", "provenance"):
        j.pop(k, None)
sys.exit(a != b)' "$tmp/info-legacy.json" "$tmp/info-v1.json"
		ok $? "v1.bin: the same bundle as the legacy shared.bin but for name and source"
	fi
	[ "$model" = shared.bin ] && cp "$tmp/out.slm" "$tmp/shared.slm"
done

# --- the vocabulary at work: slm-tok on the converted bundle -------------------
# tok TEXT EXPECTED [slm-tok options]
tok() {
	text=$1 want=$2
	shift 2
	got=$(printf '%s' "$text" | slm-tok -m "$tmp/shared.slm" --ids "$@" 2>"$tmp/err")
	if [ "$got" = "$want" ]; then
		ok 0 "slm-tok${*:+ $*} '$text' -> $want"
	else
		ok 1 "slm-tok${*:+ $*} '$text' -> '$got', expected $want"
		sed 's/^/# /' "$tmp/err"
	fi
}
ids=$(python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))
w, v = e["words"], e["vocab"]
print(w["cat"], "%d %d %d" % (w["the"], w["cat"], w["sat"]),
      "%d %d %d" % (v.index("\u2581"), v.index("<0xC3>"), v.index("<0xA9>")))' "$fx/expect.json") ||
	exit 99
set -- $ids
tok cat "$1" --no-bos
tok "the cat sat" "$2 $3 $4" --no-bos
tok "the cat sat" "1 $2 $3 $4"
tok "é" "$5 $6 $7" --no-bos

# --- the checkpoint on standard input ------------------------------------------
rm -f "$tmp/out.slm"
if slm-convert --tokenizer "$fx/tokenizer.bin" -o "$tmp/out.slm" <"$fx/unshared.bin" 2>"$tmp/err"; then
	run_check unshared.bin "$tmp/out.slm"
	grep -q '"source":"-"' "$tmp/info.json"
	ok $? "standard input: provenance source is '-'"
else
	ok 1 "unshared.bin on standard input: slm-convert failed"
	sed 's/^/# /' "$tmp/err"
fi
rm -f "$tmp/out.slm"

# --- bad input: one line naming the file, the exit status, no output ----------
# bad DESC STATUS FILE PATTERN [slm-convert arguments]: FILE is the one named
bad() {
	desc=$1 want=$2 file=$3 pat=$4
	shift 4
	slm-convert "$@" -o "$tmp/o/out.slm" 2>"$tmp/err"
	st=$?
	if [ $st -eq "$want" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
		grep -qF "slm-convert: $file: " "$tmp/err" && grep -q "$pat" "$tmp/err" &&
		[ -z "$(ls -A "$tmp/o")" ]; then
		ok 0 "$desc: exit $want, one line naming $(basename "$file"), no output"
	else
		ok 1 "$desc: exit $st (expected $want)"
		sed 's/^/# /' "$tmp/err"
		ls -A "$tmp/o" | sed 's/^/# left in the output directory: /'
	fi
	rm -f "$tmp/o/"* "$tmp/o/".[!.]* 2>/dev/null
}
# mk NAME SOURCE PYTHON: $tmp/NAME from SOURCE's bytes f (a bytearray) after PYTHON
mk() {
	python3 -c "import struct, sys
f = bytearray(open(sys.argv[1], 'rb').read())
$3
open(sys.argv[2], 'wb').write(f)" "$2" "$tmp/$1" || exit 99
}
tb="$fx/tokenizer.bin"

mk cut.bin "$fx/shared.bin" 'f[:] = f[:-100]'
bad "checkpoint cut short" 65 "$tmp/cut.bin" "header describes" "$tmp/cut.bin" --tokenizer "$tb"

mk long.bin "$fx/unshared.bin" 'f += b"\0" * 4'
bad "checkpoint with bytes after the weights" 65 "$tmp/long.bin" "the file holds" \
	"$tmp/long.bin" --tokenizer "$tb"

mk cutv1.bin "$fx/v1.bin" 'f[:] = f[:100]'
bad "version 1 header cut short" 65 "$tmp/cutv1.bin" "truncated header" \
	"$tmp/cutv1.bin" --tokenizer "$tb"

mk tiny.bin "$fx/shared.bin" 'f[:] = f[:20]'
bad "legacy header cut short" 65 "$tmp/tiny.bin" "truncated header" \
	"$tmp/tiny.bin" --tokenizer "$tb"

mk negdim.bin "$fx/shared.bin" 'f[0:4] = struct.pack("<i", -16)'
bad "negative dim" 65 "$tmp/negdim.bin" "dim is -16" "$tmp/negdim.bin" --tokenizer "$tb"

mk neglayers.bin "$fx/unshared.bin" 'f[8:12] = struct.pack("<i", -2)'
bad "negative n_layers" 65 "$tmp/neglayers.bin" "n_layers is -2" \
	"$tmp/neglayers.bin" --tokenizer "$tb"

mk zeroheads.bin "$fx/shared.bin" 'f[12:16] = struct.pack("<i", 0)'
bad "zero n_heads" 65 "$tmp/zeroheads.bin" "n_heads is 0" "$tmp/zeroheads.bin" --tokenizer "$tb"

mk negv1.bin "$fx/v1.bin" 'f[28:32] = struct.pack("<i", -struct.unpack("<i", f[28:32])[0])'
bad "version 1 with a negative vocab_size" 65 "$tmp/negv1.bin" "vocab_size is -" \
	"$tmp/negv1.bin" --tokenizer "$tb"

mk v2.bin "$fx/v1.bin" 'f[4:8] = struct.pack("<i", 2)'
bad "export version 2 (Q8_0)" 65 "$tmp/v2.bin" "version 2 is not supported" \
	"$tmp/v2.bin" --tokenizer "$tb"

mk heads.bin "$fx/shared.bin" 'f[12:16] = struct.pack("<i", 3)'
bad "dim not a multiple of n_heads" 65 "$tmp/heads.bin" "do not make heads" \
	"$tmp/heads.bin" --tokenizer "$tb"

mk huge.bin "$fx/shared.bin" 'f[0:4] = struct.pack("<i", 0x7ffffffe); f[4:8] = struct.pack("<i", 0x7fffffff); f[8:12] = struct.pack("<i", 0x7fffffff); f[12:16] = struct.pack("<i", 1); f[16:20] = struct.pack("<i", 1)'
bad "dims whose product overflows" 65 "$tmp/huge.bin" "sizes overflow" \
	"$tmp/huge.bin" --tokenizer "$tb"

mk tcut.bin "$tb" 'f[:] = f[:len(f) // 2]'
bad "tokenizer.bin cut in half" 65 "$tmp/tcut.bin" "truncated at token" \
	"$fx/shared.bin" --tokenizer "$tmp/tcut.bin"

mk tcut2.bin "$tb" 'f[:] = f[:len(f) - 2]'
bad "tokenizer.bin cut inside the last piece" 65 "$tmp/tcut2.bin" "does not fit" \
	"$fx/shared.bin" --tokenizer "$tmp/tcut2.bin"

mk tempty.bin "$tb" 'f[:] = f[:3]'
bad "tokenizer.bin shorter than its header" 65 "$tmp/tempty.bin" "truncated" \
	"$fx/shared.bin" --tokenizer "$tmp/tempty.bin"

mk tlen.bin "$tb" 'f[8:12] = struct.pack("<i", -5)'
bad "tokenizer.bin with a negative length" 65 "$tmp/tlen.bin" "length -5" \
	"$fx/shared.bin" --tokenizer "$tmp/tlen.bin"

mk tlong.bin "$tb" 'f += struct.pack("<fi", 0.0, 1) + b"x"'
bad "tokenizer.bin with more pieces than vocab_size" 65 "$tmp/tlong.bin" "bytes after" \
	"$fx/shared.bin" --tokenizer "$tmp/tlong.bin"

bad "tokenizer.bin missing" 66 "$tmp/none.bin" "No such file" \
	"$fx/shared.bin" --tokenizer "$tmp/none.bin"

cp "$fx/shared.bin" "$tmp/model.bin" || exit 99
bad "a .bin without --tokenizer" 64 "$tmp/model.bin" "needs --tokenizer" "$tmp/model.bin"

plan
finish
