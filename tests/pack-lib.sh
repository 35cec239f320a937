# pack-lib.sh - sourced, after lib.sh, by the tests of slm-pack on bundles
# (pack-roundtrip.sh, bad-input.sh). They run in their scratch directory
# and keep what the command under test printed in files out and err there,
# which their checks read: check leaves its command's output alone
# (check_capture=no). Needs top_srcdir and top_builddir.
#
#   $slmpack                slm-pack from PATH, else the build tree's (exit
#                           99 when neither is there)
#   pack_init DIR           cd to DIR, with a private model store under it
#                           ($HOME, $XDG_DATA_HOME) and no $SLM_MODEL
#   lines FILE              the number of lines in FILE
#   nolsan COMMAND...       for commands meant to fail: error exits leave
#                           memory allocated, which LeakSanitizer
#                           (--enable-sanitizers builds) would report,
#                           changing the exit status; leak checking stays
#                           on for everything else
#   bt ARGS...              tests/bundletool.py, an independent reading of
#                           a bundle (needs python3)

check_capture=no

slmpack=$(command -v slm-pack) || slmpack=$top_builddir/tools/slm-pack/slm-pack
if [ ! -x "$slmpack" ]; then
	echo "$me: slm-pack not found" >&2
	exit 99
fi

pack_init() {
	cd "$1" || exit 99
	XDG_DATA_HOME=$1/xdg HOME=$1/home
	export XDG_DATA_HOME HOME
	unset SLM_MODEL
	mkdir -p "$HOME"
}

lines() { wc -l < "$1" | tr -d ' '; }
nolsan() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$@"; }
bt() { python3 "$top_srcdir/tests/bundletool.py" "$@"; }
