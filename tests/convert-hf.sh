#!/bin/sh
# convert-hf.sh - slm-convert on Hugging Face model directories: tiny random
# models of every supported architecture (one safetensors file, shards with
# model.safetensors.index.json, a tar stream on standard input) convert and
# every tensor equals its source array (q/k rows in llama.cpp's order, norms
# in f32, gemma3 norms + 1), with the vocabulary, special tokens and
# hyper-parameters llama.cpp's converter would write; SmolLM2's dequantized
# weights written as a Hugging Face directory convert back to the GGUF's
# tensors; bad input fails with one line naming the file, exit 65, and no
# output file.
#
# Needs python3 with numpy and safetensors (skips, exit 77, without them);
# the SmolLM2 part also needs gguf and the model from scripts/fetch-models
# (or $SLM_SMOLLM2_GGUF), and is skipped without them.

set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
fixture="$top_srcdir/scripts/make-hf-fixture.py"

command -v slm-convert >/dev/null 2>&1 || skip_all "slm-convert is not built"
python3 -c 'import numpy, safetensors' >/dev/null 2>&1 ||
	skip_all "python3 lacks numpy or safetensors"

scratch

# check BUNDLE DIR [--gguf G]: the fixture's checker, one test per bundle
check() {
	what=$1
	shift
	if python3 "$fixture" check "$@" >"$tmp/check.log" 2>&1; then
		ok 0 "$what: $(grep -c '^ok' "$tmp/check.log") checks"
	else
		ok 1 "$what"
		grep -v '^ok' "$tmp/check.log" | sed 's/^/# /'
	fi
}

# convert WHAT DIR [checker options]: convert a directory, then check it
convert() {
	what=$1 dir=$2
	shift 2
	if slm-convert "$dir" -o "$tmp/out.slm" 2>"$tmp/err"; then
		check "$what" "$tmp/out.slm" "$dir" "$@"
	else
		ok 1 "$what: slm-convert failed"
		sed 's/^/# /' "$tmp/err"
	fi
	rm -f "$tmp/out.slm"
}

# --- every architecture, every dtype, one file ---------------------------
for arch in llama smollm3 qwen2 qwen3 gemma3 phi3; do
	for dt in bf16 f16 f32; do
		d="$tmp/$arch-$dt"
		python3 "$fixture" tiny "$d" --arch "$arch" --dtype "$dt" || exit 99
		convert "$arch $dt" "$d"
		rm -rf "$d"
	done
done

# --- shards, an lm_head, llama3 RoPE factors -----------------------------
d="$tmp/shards"
python3 "$fixture" tiny "$d" --dtype f16 --shards 3 --untied --llama3-rope --seed 2 || exit 99
convert "llama f16 in 3 shards, untied, llama3 RoPE" "$d"

# a shard the index names but that is missing
mv "$d/model-00002-of-00003.safetensors" "$tmp/shard2"
slm-convert "$d" -o "$tmp/out.slm" 2>"$tmp/err"
st=$?
ok "$([ $st -eq 66 ] && grep -q 'model-00002-of-00003.safetensors' "$tmp/err"; echo $?)" \
	"missing shard: exit 66 naming it"
mv "$tmp/shard2" "$d/model-00002-of-00003.safetensors"

# an index that lists a tensor no shard holds
python3 - "$d/model.safetensors.index.json" <<'EOF' || exit 99
import json, sys
p = sys.argv[1]
j = json.load(open(p))
j["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00003.safetensors"
json.dump(j, open(p, "w"))
EOF
slm-convert "$d" -o "$tmp/out.slm" 2>"$tmp/err"
st=$?
ok "$([ $st -eq 65 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
	grep -q "index.json: tensor 'model.layers.9.mlp.up_proj.weight' is not in" "$tmp/err"; echo $?)" \
	"index naming an absent tensor: one line, exit 65"
[ -e "$tmp/out.slm" ] && ok 1 "no output file" || ok 0 "no output file"
rm -rf "$d"

# --- a tar stream on standard input ---------------------------------------
d="$tmp/tarred/mymodel"
mkdir -p "$tmp/tarred"
python3 "$fixture" tiny "$d" --dtype f32 --string-merges --seed 3 || exit 99
if tar -C "$d" -cf - . | slm-convert -o "$tmp/out.slm" 2>"$tmp/err"; then
	check "tar stream of the directory's files ('a b' merges)" "$tmp/out.slm" "$d"
else
	ok 1 "tar stream: slm-convert failed"
	sed 's/^/# /' "$tmp/err"
fi
rm -f "$tmp/out.slm"
if tar -C "$tmp/tarred" -czf - mymodel | slm-convert -o "$tmp/out.slm" 2>"$tmp/err"; then
	check "gzipped tar stream under a top directory" "$tmp/out.slm" "$d"
else
	ok 1 "gzipped tar stream: slm-convert failed"
	sed 's/^/# /' "$tmp/err"
fi
rm -f "$tmp/out.slm"

# members that must not be extracted
for kind in dotdot absolute symlink; do
	python3 - "$d" "$tmp/evil.tar" "$kind" <<'EOF' || exit 99
import io, os, sys, tarfile
src, out, kind = sys.argv[1:]
with tarfile.open(out, "w") as tf:
    for fn in sorted(os.listdir(src)):
        tf.add(os.path.join(src, fn), arcname=fn)
    ti = tarfile.TarInfo({"dotdot": "../escape", "absolute": "/tmp/escape",
                          "symlink": "link"}[kind])
    if kind == "symlink":
        ti.type, ti.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(ti)
    else:
        ti.size = 4
        tf.addfile(ti, io.BytesIO(b"evil"))
EOF
	slm-convert -o "$tmp/out.slm" <"$tmp/evil.tar" 2>"$tmp/err"
	st=$?
	ok "$([ $st -eq 65 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q 'standard input: member' "$tmp/err"; echo $?)" \
		"tar member ($kind) refused: one line naming it, exit 65"
	[ -e "$tmp/out.slm" ] || [ -e "$tmp/escape" ] && ok 1 "$kind: nothing written" || ok 0 "$kind: nothing written"
done

# --- bad input: one line naming the file, exit 65, no output --------------
# bad NAME FILE-IN-MESSAGE PATTERN: convert $tmp/bad, expect failure
bad() {
	slm-convert "$tmp/bad" -o "$tmp/out.slm" 2>"$tmp/err"
	st=$?
	if [ $st -eq 65 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "$2" "$tmp/err" &&
		grep -q "$3" "$tmp/err" && [ ! -e "$tmp/out.slm" ]; then
		ok 0 "$1: exit 65, one line naming $2, no output"
	else
		ok 1 "$1: exit $st"
		sed 's/^/# /' "$tmp/err"
	fi
	rm -f "$tmp/out.slm"
}
fresh() {
	rm -rf "$tmp/bad"
	python3 "$fixture" tiny "$tmp/bad" --dtype f16 || exit 99
}
# patch FILE PYTHON: run PYTHON with f = the file's bytes (bytearray), write back
patch() {
	python3 -c "import json, struct, sys
p = sys.argv[1]
f = bytearray(open(p, 'rb').read())
$2
open(p, 'wb').write(f)" "$1" || exit 99
}
# patch_header FILE PYTHON: run PYTHON with h = the safetensors header (a
# dict) and names = its sorted tensor names, write the header back
patch_header() {
	patch "$1" "n = struct.unpack('<Q', f[:8])[0]
h = json.loads(f[8:8 + n])
names = sorted(k for k in h if k != '__metadata__')
$2
nh = json.dumps(h).encode()
f = bytearray(struct.pack('<Q', len(nh)) + nh + f[8 + n:])"
}

fresh
patch "$tmp/bad/model.safetensors" 'f[0:8] = struct.pack("<Q", len(f))'
bad "safetensors header longer than the file" "model.safetensors" "header length"

fresh
patch "$tmp/bad/model.safetensors" 'f[0:8] = struct.pack("<Q", 1 << 32)'
bad "safetensors header length of 4 GiB" "model.safetensors" "4294967296"

fresh
patch_header "$tmp/bad/model.safetensors" '
a, b = h[names[0]], h[names[1]]
size = b["data_offsets"][1] - b["data_offsets"][0]
b["data_offsets"] = [a["data_offsets"][0], a["data_offsets"][0] + size]'
bad "safetensors ranges overlapping" "model.safetensors" "overlaps"

fresh
patch "$tmp/bad/model.safetensors" 'f[:] = f[:len(f) - 100]'
bad "safetensors data past the end of the file" "model.safetensors" "runs past the end"

fresh
patch_header "$tmp/bad/model.safetensors" 'h[names[0]]["shape"][:0] = [1 << 32, 1 << 32]'
bad "safetensors shape whose product overflows" "model.safetensors" "overflows"

fresh
patch_header "$tmp/bad/model.safetensors" 'h[names[0]]["shape"][0] += 1'
bad "safetensors shape and byte range disagree" "model.safetensors" "shape needs"

fresh
patch_header "$tmp/bad/model.safetensors" 'h[names[0]]["dtype"] = "I16"'
bad "tensor dtype not F32/F16/BF16" "model.safetensors" "dtype I16 is not supported"

fresh
patch_header "$tmp/bad/model.safetensors" 'h["model.bad\nname.weight"] = h.pop(names[-1])'
bad "unknown tensor, a newline in its name" "model.safetensors" "'model.bad?name.weight' has no llama"

fresh
patch "$tmp/bad/config.json" 'f[:] = f[:len(f) // 2]'
bad "config.json cut in half" "config.json" "line"

fresh
patch "$tmp/bad/config.json" 'f[:] = f.replace(b"LlamaForCausalLM", b"MambaForCausalLM")'
bad "unknown architecture" "config.json" "supported: LlamaForCausalLM, MistralForCausalLM"

fresh
patch "$tmp/bad/config.json" 'f[:] = f.replace(b"\"num_hidden_layers\": 2", b"\"num_hidden_layers\": \"two\"")'
bad "block count not a number" "config.json" "num_hidden_layers"

fresh
patch "$tmp/bad/config.json" 'f[:] = f.replace(b"\"num_hidden_layers\": 2", b"\"num_hidden_layers\": 1")'
bad "tensors of a block config.json does not have" "model.safetensors" "block 1"

fresh
patch "$tmp/bad/tokenizer.json" 'f[:] = f[:len(f) - 10]'
bad "tokenizer.json cut short" "tokenizer.json" "line"

fresh
patch "$tmp/bad/tokenizer.json" 'f[:] = f.replace(b"\"id\": 300", b"\"id\": 4000", 1)'
bad "token id beyond vocab_size" "tokenizer.json" "vocab_size"
rm -rf "$tmp/bad"

# --- SmolLM2: dequantized GGUF -> Hugging Face directory -> bundle --------
gguf=${SLM_SMOLLM2_GGUF:-}
if [ -z "$gguf" ] && [ -x "$top_srcdir/scripts/fetch-models" ]; then
	gguf=$("$top_srcdir/scripts/fetch-models" smollm2 2>/dev/null | tail -n 1)
fi
if [ -n "$gguf" ] && [ -f "$gguf" ] && python3 -c 'import gguf' >/dev/null 2>&1; then
	d="$tmp/smollm2"
	if python3 "$fixture" from-gguf "$gguf" "$d"; then
		convert "SmolLM2-135M from its dequantized GGUF: equals the source and the GGUF" \
			"$d" --gguf "$gguf"
	else
		ok 1 "SmolLM2: writing the Hugging Face directory"
	fi
	rm -rf "$d" "$tmp/out.slm"
else
	skip "SmolLM2 (no scripts/fetch-models result or no gguf module)"
fi

plan
finish
