#!/bin/sh
# convert-bad.sh - slm-convert on malformed input: each case must give
# exactly one line on standard error naming the file and the problem,
# exit 65 and leave the output directory empty, both from a file and from
# standard input. The bad GGUF files are written by scripts/gguf-check.py
# bad (plain python3, no packages).
#
# Environment (from make check): top_srcdir, PATH with slm-convert.
# Exit 0 pass, 1 fail, 77 skip (no python3), 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
need slm-convert
if ! command -v python3 >/dev/null 2>&1; then
	echo "convert-bad: python3 not found, skipping" >&2
	exit 77
fi

scratch
mkdir "$tmp/in" "$tmp/out" || exit 99
python3 "$top_srcdir/scripts/gguf-check.py" bad "$tmp/in" || exit 99

# bad DESCRIPTION FILE NAME-IN-MESSAGE REGEX [OPTIONS...]: slm-convert
# OPTIONS FILE (or < FILE when NAME is "standard input") exits 65 with one
# line "slm-convert: NAME...REGEX" and writes nothing.
bad() {
	d=$1 f=$2 shown=$3 re=$4
	shift 4
	if [ "$shown" = "standard input" ]; then
		slm-convert "$@" -o "$tmp/out/x.slm" < "$f" 2> "$tmp/err"
	else
		slm-convert "$@" -o "$tmp/out/x.slm" "$f" 2> "$tmp/err"
	fi
	rc=$?
	lines=$(wc -l < "$tmp/err" | tr -d ' ')
	left=$(ls -A "$tmp/out")
	if [ "$rc" = 65 ] && [ "$lines" = 1 ] && [ -z "$left" ] &&
	   grep -q "^slm-convert: $shown: .*$re" "$tmp/err"; then
		pass "$d"
	else
		fail "$d (exit $rc, $lines lines, left: ${left:-nothing})"
		sed 's/^/# /' "$tmp/err"
	fi
	rm -rf "$tmp/out" && mkdir "$tmp/out"
}

for how in file stdin; do
	for c in \
		"truncated|truncated GGUF|unexpected end of file" \
		"magic|wrong magic|not a GGUF file" \
		"offset|tensor offset past the end of the file|data extends past end of file" \
		"overflow|dimensions whose product overflows|element count overflows" \
		"dtype|unknown tensor type|unsupported ggml type 99" \
		"iq2|unsupported tensor type|tensor 'w': unsupported type iq2_xs" \
		"arch|unsupported architecture|unsupported architecture 'gpt2' (supported: llama, qwen2, qwen3, gemma3, smollm3, phi3)"
	do
		f=${c%%|*} rest=${c#*|}
		d=${rest%%|*} re=${rest#*|}
		if [ $how = file ]; then
			bad "$f.gguf: $d" "$tmp/in/$f.gguf" "$tmp/in/$f.gguf" "$re"
		else
			bad "stdin $f.gguf: $d" "$tmp/in/$f.gguf" "standard input" "$re"
		fi
	done
done
# not even a vocabulary
bad "--vocab-only without tokens" "$tmp/in/arch.gguf" "$tmp/in/arch.gguf" \
	"no tokenizer.ggml.tokens array" --vocab-only
# usage errors: exit 64, nothing written
slm-convert --to gguf -o "$tmp/out/x.gguf" "$tmp/in/arch.gguf" 2> "$tmp/err"
rc=$?
if [ $rc = 64 ] && [ -z "$(ls -A "$tmp/out")" ]; then
	pass "--to gguf refuses a GGUF input"
else
	fail "--to gguf refuses a GGUF input (exit $rc)"
fi
# --layout: tile16 or plain, and not with --to gguf (which writes plain
# rows whatever the bundle's layout)
for args in "--layout tile8" "--layout=" "--to gguf --layout plain"; do
	slm-convert $args -o "$tmp/out/x.slm" "$tmp/in/arch.gguf" 2> "$tmp/err"
	rc=$?
	if [ $rc = 64 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && [ -z "$(ls -A "$tmp/out")" ]; then
		pass "slm-convert $args: exit 64, one line, nothing written"
	else
		fail "slm-convert $args: exit 64, one line, nothing written (exit $rc)"
	fi
done
if command -v slm-quant >/dev/null 2>&1; then
	slm-quant q8_0 --layout rows -o "$tmp/out/x.slm" "$tmp/in/arch.gguf" 2> "$tmp/err"
	rc=$?
	if [ $rc = 64 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && [ -z "$(ls -A "$tmp/out")" ]; then
		pass "slm-quant --layout rows: exit 64, one line, nothing written"
	else
		fail "slm-quant --layout rows: exit 64, one line, nothing written (exit $rc)"
	fi
fi
slm-convert -o "$tmp/out/x.slm" "$tmp/in/none.gguf" 2> "$tmp/err"
rc=$?
if [ $rc = 66 ] && [ -z "$(ls -A "$tmp/out")" ]; then
	pass "missing input: exit 66"
else
	fail "missing input: exit 66 (exit $rc)"
fi

plan
finish
