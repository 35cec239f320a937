# lib.sh - what the shell tests share: TAP output, a scratch directory
# removed at exit, the tools a test needs. Each test sources it first:
#
#   top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
#   . "$top_srcdir/tests/lib.sh"
#
# (make check sets top_srcdir, see Makefile.am; the default is for running
# a test by hand.)
#
#   me                      the test's name (NAME of tests/NAME.sh)
#   vocab                   the shared vocabularies with their test vectors
#   need TOOL...            exit 99 ("ME: TOOL not on PATH") unless every
#                           TOOL is on PATH
#   scratch [COMMAND]       make $tmp, a scratch directory; at exit COMMAND
#                           (the test's own cleanup, evaluated then) runs
#                           and $tmp is removed; INT, TERM, HUP exit 1
#   skip_all WHY            "1..0 # SKIP WHY" and exit 77
#   pass DESC, fail DESC    an "ok" / "not ok" line; $n counts, $failed
#                           counts the failures
#   skip DESC WHY           an "ok N - DESC # SKIP WHY" line; skip WHY
#                           alone: "ok N # SKIP WHY"
#   todo DESC WHY           a "not ok N - DESC # TODO WHY" line: a known
#                           shortfall, not counted as a failure
#   ok STATUS DESC          pass DESC if STATUS is 0, else fail DESC
#   check DESC COMMAND...   pass if COMMAND succeeds, else fail. Its output
#                           is kept in $tmp/out and $tmp/err and its first
#                           $check_lines (20) lines shown on failure; with
#                           check_show=1 its standard output is shown on
#                           success too; with check_capture=no its output
#                           is left alone (for tests that keep files of
#                           their own named out and err in $tmp).
#                           tap_check is the same, for a test whose check
#                           does more.
#   plan                    the plan line, "1..$n"
#   finish                  exit 1, with "# F of N failed", if a test
#                           failed; else exit 0

me=${0##*/}
me=${me%.sh}
vocab=${SLM_SHARED:-$top_srcdir/../shared}/vocab
n=0 failed=0
check_lines=20 check_show= check_capture=yes

need() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || { echo "$me: $t not on PATH" >&2; exit 99; }
	done
}

scratch() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$me.XXXXXX") || exit 99
	tap_atexit=${1:-:}
	trap 'eval "$tap_atexit"; rm -rf "$tmp"' EXIT
	trap 'exit 1' INT TERM HUP
}

skip_all() { echo "1..0 # SKIP $1"; exit 77; }

pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() {
	n=$((n + 1))
	if [ $# -eq 1 ]; then echo "ok $n # SKIP $1"; else echo "ok $n - $1 # SKIP $2"; fi
}
todo() { n=$((n + 1)); echo "not ok $n - $1 # TODO $2"; }
ok() { if [ "$1" -eq 0 ]; then pass "$2"; else fail "$2"; fi; }

tap_check() { # tap_check DESCRIPTION COMMAND...
	d=$1; shift
	if [ "$check_capture" = no ]; then
		if "$@"; then pass "$d"; else fail "$d"; fi
	elif "$@" > "$tmp/out" 2> "$tmp/err"; then
		pass "$d"
		if [ -n "$check_show" ]; then sed 's/^/# /' "$tmp/out"; fi
	else
		fail "$d"
		sed 's/^/# /' "$tmp/out" "$tmp/err" | head -n "$check_lines"
	fi
}
check() { tap_check "$@"; }

plan() { echo "1..$n"; }
finish() {
	[ "$failed" = 0 ] || { echo "# $failed of $n failed"; exit 1; }
	exit 0
}
