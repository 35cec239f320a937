#!/bin/sh
# manlint.sh - the manual pages: every page in $MAN_PAGES must pass
# "mandoc -Tlint -Wwarning" without a message, and every long option a
# tool's --help prints must be documented (with Fl) in the tool's page.
#
# Environment (set by the test harness, see Makefile.am): top_srcdir,
# MAN_PAGES (relative to top_srcdir), MANDOC (empty: mandoc is absent,
# skip), PATH with the built tools first. Run by hand, the defaults are the
# source tree around this script, every page in it, and mandoc from PATH.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
if [ -z "${MANDOC+set}" ]; then
	MANDOC=$(command -v mandoc 2>/dev/null)
fi
[ -n "$MANDOC" ] || skip_all "mandoc not found"
if [ -z "${MAN_PAGES:-}" ]; then
	MAN_PAGES=
	for f in "$top_srcdir"/man/*.[1-9] "$top_srcdir"/tools/*/*.[1-9]; do
		[ -f "$f" ] && MAN_PAGES="$MAN_PAGES ${f#"$top_srcdir"/}"
	done
fi

# documented PAGE OPTION: is --OPTION written with the Fl macro in PAGE?
# (".Fl -json", ".Op Fl -set Ar kv", ".Fl h | -help | -version")
documented() {
	sed 's/\\-/-/g' "$1" |
		grep -E '(^|[[:space:]])Fl[[:space:]]' |
		grep -Eq -- "(^|[[:space:]|])-$2([^A-Za-z0-9_-]|\$)"
}

for page in $MAN_PAGES; do
	file=$top_srcdir/$page
	if [ ! -f "$file" ]; then
		fail "$page: no such file"
		continue
	fi

	out=$("$MANDOC" -Tlint -Wwarning "$file" 2>&1)
	status=$?
	if [ $status -eq 0 ] && [ -z "$out" ]; then
		pass "$page: mandoc -Tlint -Wwarning"
	else
		fail "$page: mandoc -Tlint -Wwarning (status $status)"
		printf '%s\n' "$out" | sed 's/^/# /'
	fi

	# Section 1 pages: compare with the tool's --help.
	case $page in
	*.1) ;;
	*) continue ;;
	esac
	tool=$(basename "$page" .1)
	if ! command -v "$tool" >/dev/null 2>&1; then
		skip "$page: $tool --help" "$tool not on PATH"
		continue
	fi
	help=$("$tool" --help 2>&1)
	status=$?
	if [ $status -ne 0 ] || [ -z "$help" ]; then
		fail "$page: $tool --help exits $status"
		printf '%s\n' "$help" | sed 's/^/# /'
		continue
	fi
	opts=$(printf '%s\n' "$help" |
		grep -oE -- '--[A-Za-z0-9][A-Za-z0-9_-]*' | sort -u)
	if [ -z "$opts" ]; then
		pass "$page: $tool --help lists no long options"
		continue
	fi
	for o in $opts; do
		name=${o#--}
		if documented "$file" "$name"; then
			pass "$page: $o"
		else
			fail "$page: $o (in $tool --help) is not documented"
		fi
	done
done

plan
finish
