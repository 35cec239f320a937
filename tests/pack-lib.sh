# pack-lib.sh - sourced by the tests of slm-pack on bundles (pack-roundtrip.sh,
# bad-input.sh), which run in their scratch directory. Needs top_srcdir.
#
#   pack_init DIR           cd to DIR, with a private model store under it
#                           ($HOME, $XDG_DATA_HOME) and no $SLM_MODEL
#   pass DESC, fail DESC    an "ok" / "not ok" line; $n counts, $failed fails
#   check DESC COMMAND...   pass if COMMAND succeeds, else fail
#   lines FILE              the number of lines in FILE
#   nolsan COMMAND...       for commands meant to fail: error exits leave
#                           memory allocated, which LeakSanitizer
#                           (--enable-sanitizers builds) would report,
#                           changing the exit status; leak checking stays
#                           on for everything else
#   bt ARGS...              tests/bundletool.py, an independent reading of
#                           a bundle (needs python3)

n=0 failed=0

pack_init() {
	cd "$1" || exit 99
	XDG_DATA_HOME=$1/xdg HOME=$1/home
	export XDG_DATA_HOME HOME
	unset SLM_MODEL
	mkdir -p "$HOME"
}

pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { # check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@"; then pass "$d"; else fail "$d"; fi
}
lines() { wc -l < "$1" | tr -d ' '; }
nolsan() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$@"; }
bt() { python3 "$top_srcdir/tests/bundletool.py" "$@"; }
