#!/bin/sh
# convert-progress.sh - slm-convert's progress line: on standard error when
# it is a terminal and the conversion has taken over a second, never
# otherwise, never with -q.
#
# The terminal is script(1)'s (util-linux). The second is counted from the
# start of the program, so the input is SmolLM2-135M (scripts/fetch-models,
# or $SLM_SMOLLM2_GGUF) piped in after a pause: spooling standard input
# takes over a second on any machine, and the tensors are written after it.
# Skips (exit 77) without script(1) or the model. Also, when python3 has
# numpy, a tiny llama2.c checkpoint converted at once under a terminal shows
# no progress line.

set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"

command -v slm-convert >/dev/null 2>&1 || skip_all "slm-convert is not built"
script -qec true /dev/null </dev/null >/dev/null 2>&1 ||
	skip_all "no script(1) from util-linux"
gguf=${SLM_SMOLLM2_GGUF:-}
if [ -z "$gguf" ] && [ -x "$top_srcdir/scripts/fetch-models" ]; then
	gguf=$("$top_srcdir/scripts/fetch-models" smollm2 2>/dev/null | tail -n 1)
fi
if [ -z "$gguf" ] || [ ! -f "$gguf" ]; then
	skip_all "SmolLM2 GGUF not available (scripts/fetch-models smollm2)"
fi

scratch

# show FILE: a transcript, control characters made visible, as comments
show() {
	od -c "$1" | head -n 8 | sed 's/^/# /'
}

# The commands script(1) runs get their values from the environment.
SLM_GGUF=$gguf SLM_OUT=$tmp/out.slm
export SLM_GGUF SLM_OUT
slow='(sleep 1.5; cat "$SLM_GGUF") | slm-convert -o "$SLM_OUT"'

# --- a terminal, a slow conversion: the progress line ------------------------
rm -f "$tmp/out.slm"
script -qec "$slow" /dev/null </dev/null >"$tmp/tty" 2>&1
st=$?
ok $st "under a terminal: slm-convert succeeds"
# the last update, of every tensor: "\rslm-convert: N/N tensors, A/A MiB, R MiB/s"
tr '\r' '\n' <"$tmp/tty" >"$tmp/lines"
if grep -q '^slm-convert: \([0-9][0-9]*\)/\1 tensors, [0-9.]*/[0-9.]* MiB, [0-9.]* MiB/s' \
	"$tmp/lines" && [ "$(head -c 1 "$tmp/tty")" = "$(printf '\r')" ]; then
	ok 0 "under a terminal: the progress line, ending with every tensor written"
else
	ok 1 "under a terminal: no progress line"
	show "$tmp/tty"
fi
# it ends with a newline, and nothing else is said
if [ "$(tail -c 2 "$tmp/tty" | od -An -c | tr -d ' ')" = '\r\n' ] &&
	! grep -v '^slm-convert: [0-9]*/[0-9]* tensors' "$tmp/lines" | grep -q .; then
	ok 0 "under a terminal: only progress, ended by a newline"
else
	ok 1 "under a terminal: more than the progress line, or no final newline"
	show "$tmp/tty"
fi
slm-pack verify "$tmp/out.slm" >/dev/null 2>&1
ok $? "under a terminal: the bundle verifies"

# --- not a terminal: nothing on standard error -------------------------------
rm -f "$tmp/out.slm"
sh -c "$slow" </dev/null 2>"$tmp/err"
st=$?
if [ $st -eq 0 ] && [ ! -s "$tmp/err" ] && [ -s "$tmp/out.slm" ]; then
	ok 0 "standard error not a terminal: silent"
else
	ok 1 "standard error not a terminal: exit $st"
	show "$tmp/err"
fi

# --- -q under a terminal: nothing ----------------------------------------------
rm -f "$tmp/out.slm"
script -qec "$slow -q" /dev/null </dev/null >"$tmp/tty" 2>&1
st=$?
if [ $st -eq 0 ] && [ ! -s "$tmp/tty" ] && [ -s "$tmp/out.slm" ]; then
	ok 0 "-q under a terminal: silent"
else
	ok 1 "-q under a terminal: exit $st"
	show "$tmp/tty"
fi

# --- a terminal, a conversion done at once: nothing ----------------------------
if python3 -c 'import numpy' >/dev/null 2>&1 &&
	python3 "$top_srcdir/scripts/make-llama2c-fixture.py" "$tmp/fx" >/dev/null; then
	SLM_FX=$tmp/fx
	export SLM_FX
	rm -f "$tmp/out.slm"
	script -qec 'slm-convert "$SLM_FX/unshared.bin" --tokenizer "$SLM_FX/tokenizer.bin" -o "$SLM_OUT"' \
		/dev/null </dev/null >"$tmp/tty" 2>&1
	st=$?
	if [ $st -eq 0 ] && [ ! -s "$tmp/tty" ] && [ -s "$tmp/out.slm" ]; then
		ok 0 "under a terminal, done within a second: silent"
	else
		ok 1 "under a terminal, done within a second: exit $st"
		show "$tmp/tty"
	fi
else
	skip "fast conversion (python3 lacks numpy)"
fi

plan
finish
