# cli-lib.sh - sourced by the shell tests that run the tools on real
# vocabularies and models (tok-cli.sh, detok-cli.sh, convert-gguf.sh):
# TAP counting and a scratch directory. Needs top_srcdir.
#
#   cli_init NAME TOOL...   exit 99 unless every TOOL is on PATH, then make
#                           $tmp (removed at exit); NAME is the test's
#   pass DESC, fail DESC    an "ok" / "not ok" line; $n counts, $failed fails
#   skip DESC WHY           an "ok ... # SKIP WHY" line
#   check DESC COMMAND...   pass if COMMAND succeeds, else fail and show
#                           the start of its output (kept in $tmp/out, err)
# $vocab: the shared vocabularies with their test vectors.

vocab=${SLM_SHARED:-$top_srcdir/../shared}/vocab
n=0 failed=0

cli_init() {
	cli_name=$1
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || { echo "$cli_name: $t not on PATH" >&2; exit 99; }
	done
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$cli_name.XXXXXX") || exit 99
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 1' INT TERM HUP
}

pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { # check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@" > "$tmp/out" 2> "$tmp/err"; then
		pass "$d"
	else
		fail "$d"
		sed 's/^/# /' "$tmp/out" "$tmp/err" | head -n 20
	fi
}
