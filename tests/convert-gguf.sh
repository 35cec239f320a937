#!/bin/sh
# convert-gguf.sh - slm-convert on real GGUF files, checked against the PyPI
# gguf package's reader (scripts/gguf-check.py):
#  - SmolLM2-135M-Instruct Q4_1 (and Gemma 3 270M Q4_K_M), fetched and
#    cached by scripts/fetch-models: every tensor in the bundle byte-
#    identical to GGUFReader's; slm-pack info's architecture and shapes;
#    GGUF -> bundle -> GGUF equal in every key (type and value) and tensor;
#    byte-identical bundles from two runs; standard input; --gzip; the
#    export loaded by llama.cpp with the same logits (when llama-cpp-python
#    is installed);
#  - every vocabulary in ${SLM_SHARED:-$top_srcdir/../shared}/vocab with
#    --vocab-only and back to GGUF, three of them (one of each kind)
#    compared with the original.
#
# Environment (from make check): top_srcdir, PATH with slm-convert and
# slm-pack. Exit 0 pass, 1 fail, 77 skip (python3 without gguf and numpy,
# or neither a model nor the vocabularies available), 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
need slm-convert slm-pack
scratch
check_py=$top_srcdir/scripts/gguf-check.py
top_builddir=${top_builddir:-$top_srcdir}
logits=$top_builddir/tests/logits
if ! python3 -c 'import gguf, numpy' >/dev/null 2>&1; then
	echo "convert-gguf: python3 with gguf and numpy needed (pip install gguf numpy), skipping" >&2
	exit 77
fi
ran=0

# jq-like test of slm-pack info --json: info_is BUNDLE PYTHON-EXPR (on j)
info_is() {
	slm-pack info --json "$1" > "$tmp/info.json" &&
		python3 -c "import json, sys; j = json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" \
			"$tmp/info.json"
}
same_gguf() { python3 "$check_py" same "$1" "$2"; }

# model NAME ARCH: the full set of checks on one fetched model
model() {
	g=$(bash "$top_srcdir/scripts/fetch-models" "$1") && [ -f "$g" ] || {
		skip "$1" "scripts/fetch-models $1 failed (offline?)"
		return
	}
	ran=1
	b=$tmp/$1.slm
	check "$1: GGUF to bundle" slm-convert -q "$g" -o "$b"
	check "$1: slm-pack verify" slm-pack verify "$b"
	check "$1: slm-pack info: architecture $2" info_is "$b" "j['arch'] == '$2'"
	check "$1: provenance" info_is "$b" \
		"j['provenance']['source_format'] == 'gguf' and j['provenance']['general']['architecture'] == '$2' and len(j['provenance']['source_sha256']) == 64"
	check "$1: second conversion byte-identical" \
		sh -c 'slm-convert -q "$1" -o "$2" && cmp "$2" "$3"' sh "$g" "$tmp/again.slm" "$b"
	check "$1: bundle to GGUF" slm-convert --to gguf "$b" -o "$tmp/$1.gguf"
	check "$1: tensors byte-identical to GGUFReader's, same dtypes and shapes; GGUF -> bundle -> GGUF: every key, type, value and tensor equal" \
		sh -c 'slm-pack info --json "$1" > "$2" && python3 "$3" bundle "$4" "$1" "$2" "$5"' \
		sh "$b" "$tmp/info.json" "$check_py" "$g" "$tmp/$1.gguf"
	if python3 -c 'import llama_cpp' >/dev/null 2>&1; then
		check "$1: llama.cpp loads the export, same logits" \
			python3 "$check_py" llama "$g" "$tmp/$1.gguf"
	else
		skip "$1: llama.cpp loads the export" "no llama_cpp in python3"
	fi
	rm -f "$tmp/$1.gguf" "$tmp/again.slm"
}

model smollm2 llama
b=$tmp/smollm2.slm
if [ -f "$b" ]; then
	g=$(bash "$top_srcdir/scripts/fetch-models" smollm2)
	check "smollm2: tied embeddings, hparams, tokenizer" info_is "$b" \
		"j['hparams']['tied_embeddings'] is True and j['hparams']['block_count'] == 30 and j['tokenizer']['model'] == 'gpt2' and j['chat_template'].startswith('{% for message')"
	check "smollm2: token_embd.weight q8_0 576 x 49152" info_is "$b" \
		"[t for t in j['tensors'] if t['name'] == 'token_embd.weight'][0]['shape'] == [576, 49152] and [t for t in j['tensors'] if t['name'] == 'token_embd.weight'][0]['dtype'] == 'q8_0'"
	check "smollm2: from standard input" \
		sh -c 'slm-convert < "$1" > "$2" && slm-pack verify "$2"' sh "$g" "$tmp/stdin.slm"
	check "smollm2: standard input gives the same tensors, source '-'" \
		sh -c 'slm-pack info --json "$1" > "$3" && slm-pack info --json "$2" > "$4" &&
			python3 -c "import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a[\"tensors\"] == b[\"tensors\"] and b[\"provenance\"][\"source\"] == \"-\" else 1)" "$3" "$4"' \
		sh "$b" "$tmp/stdin.slm" "$tmp/i1.json" "$tmp/i2.json"
	check "smollm2: --gzip bundle exports the same GGUF" \
		sh -c 'slm-convert -q --gzip "$1" -o "$2" && slm-convert --to gguf "$2" -o "$3.a" &&
			slm-convert --to gguf "$4" -o "$3.b" && cmp "$3.a" "$3.b"' \
		sh "$g" "$tmp/z.slm" "$tmp/z" "$b"
	# the tile16 layout (the default above) against --layout plain: the
	# plain rows, the same GGUF export, and the same logits bit for bit,
	# one token at a time (matrix-vector kernels) and in one batch
	check "smollm2: --layout plain: GGUF's rows, no tile16 tensor" \
		sh -c 'slm-convert -q --layout plain "$1" -o "$2" && slm-pack info --json "$2" > "$3" &&
			python3 "$4" bundle --plain "$1" "$2" "$3"' sh "$g" "$tmp/plain.slm" "$tmp/pi.json" "$check_py"
	check "smollm2: tile16 and plain bundles export byte-identical GGUF" \
		sh -c 'slm-convert --to gguf "$1" -o "$3.t" && slm-convert --to gguf "$2" -o "$3.p" &&
			cmp "$3.t" "$3.p"' sh "$b" "$tmp/plain.slm" "$tmp/lay"
	if [ -x "$logits" ]; then
		ids="1 504 3458 314 253 6357 6149 47 28 1545 2 9 66 4331 1021 30 5 17"
		for bt in 1 18; do
			check "smollm2: tile16 and plain give the same logits, batch $bt, bitwise" \
				sh -c '"$1" "$2" -b "$4" -p all $5 > "$6.t" && "$1" "$3" -b "$4" -p all $5 > "$6.p" &&
					cmp "$6.t" "$6.p"' sh "$logits" "$b" "$tmp/plain.slm" "$bt" "$ids" "$tmp/lg"
		done
	fi
	# slm-quant reads either layout and writes either: q4_0 from the plain
	# bundle (tile16 out) and from the tile16 one with --layout plain (the
	# copied q8_0 embeddings turned back into rows) hold the same tensors
	if command -v slm-quant >/dev/null 2>&1; then
		check "smollm2: slm-quant q4_0 plain -> tile16 and tile16 -> --layout plain: the same tensors" \
			sh -c 'slm-quant -q q4_0 "$1" -o "$3.t.slm" && slm-quant -q q4_0 --layout plain "$2" -o "$3.p.slm" &&
				slm-convert --to gguf "$3.p.slm" -o "$3.p.gguf" && slm-pack info --json "$3.t.slm" > "$3.t.json" &&
				python3 "$4" bundle "$3.p.gguf" "$3.t.slm" "$3.t.json" &&
				slm-pack info --json "$3.p.slm" > "$3.p.json" &&
				python3 "$4" bundle --plain "$3.p.gguf" "$3.p.slm" "$3.p.json"' \
			sh "$tmp/plain.slm" "$b" "$tmp/q" "$check_py"
		rm -f "$tmp"/q.*
	fi
	rm -f "$tmp/lay.t" "$tmp/lay.p" "$tmp/lg.t" "$tmp/lg.p"
	check "smollm2: --name" slm-convert -q --name smol "$g" -o "$tmp/named.slm"
	check "smollm2: --name in the manifest" info_is "$tmp/named.slm" "j['name'] == 'smol'"
	rm -f "$tmp"/*.slm "$tmp"/z*
fi
model gemma3 gemma3
rm -f "$tmp"/*.slm

if [ -d "$vocab" ]; then
	for v in "$vocab"/*.gguf; do
		[ -f "$v" ] || continue
		ran=1
		name=$(basename "$v" .gguf)
		check "$name: --vocab-only" slm-convert --vocab-only "$v" -o "$tmp/v.slm"
		check "$name: tokenizer bundle" info_is "$tmp/v.slm" \
			"j['arch'] == 'tokenizer' and j['tensors'] == [] and j['tokenizer']['member'] == 'tokenizer/vocab.msgpack'"
		check "$name: back to GGUF" slm-convert --to gguf "$tmp/v.slm" -o "$tmp/v.gguf"
		# GGUFReader takes seconds per large vocabulary: compare one of
		# each kind (SentencePiece scores, BPE merges, WordPiece)
		case $name in
		*llama-spm|*gpt-2|*bert-bge)
			check "$name: back to GGUF, equal" python3 "$check_py" same "$v" "$tmp/v.gguf" ;;
		esac
		rm -f "$tmp/v.slm" "$tmp/v.gguf"
	done
else
	skip vocabularies "$vocab not found"
fi

plan
if [ "$ran" = 0 ]; then
	echo "convert-gguf: no model and no vocabulary available, skipping" >&2
	exit 77
fi
finish
