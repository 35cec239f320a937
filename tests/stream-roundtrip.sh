#!/bin/sh
# stream-roundtrip.sh - token streams through the library's reader and
# writer (tests/streamcat): JSON lines -> msgpack -> JSON lines -> msgpack
# is byte-identical, non-canonical msgpack becomes canonical, and records
# pass through a live pipe as soon as each is complete.
#
# Environment (from make check): top_srcdir, top_builddir. Exit 0 pass,
# 1 fail, 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
. "$top_srcdir/tests/lib.sh"
streamcat=$top_builddir/tests/streamcat
if [ ! -x "$streamcat" ]; then
	echo "stream-roundtrip: $streamcat not built" >&2
	exit 99
fi

bgpid= # the streamcat of a live test, ended at exit
scratch '[ -z "$bgpid" ] || kill "$bgpid" 2>/dev/null'
check_capture=no # checks read $tmp/err of the command run before them
have_python=
command -v python3 >/dev/null 2>&1 && have_python=1

# ---- every record type as JSON lines (keys deliberately unsorted) ----
cat > "$tmp/in.jsonl" <<'EOF'
{"type":"header","version":1,"vocab":"sha256:0123456789abcdef","bundle":"tiny.slm"}

{"type":"seq","id":1,"tokens":[0,1,2,2147483647],"meta":{"temperature":0.5,"stop":["\n","</s>"],"nested":{"a":[true,false,null],"z":-1e-300}}}
{"type":"seq","id":"req-\u00e9 \ud83d\ude00","tokens":[]}
{"type":"tok","id":1,"token":42,"logprob":-1.25}
{"type":"tok","id":"req-\u00e9 \ud83d\ude00","token":7}
{"type":"end","id":1,"reason":"eos"}
{"type":"end","id":"req-\u00e9 \ud83d\ude00","reason":"length"}
{"type":"error","message":"quote \" backslash \\ tab \t"}
{"type":"error","id":2,"message":"context full","extra":-9223372036854775808,"big":9223372036854775807,"r":0.1}
EOF
nrec=9

"$streamcat" "$tmp/in.jsonl" > "$tmp/a.mp" 2> "$tmp/err"
check "JSON lines -> msgpack: exit 0, nothing on stderr" \
	test $? -eq 0 -a ! -s "$tmp/err"
first=$(od -An -tx1 -N1 "$tmp/a.mp" | tr -d ' ')
check "msgpack output starts with a map, not '{' (0x$first)" \
	test "$first" = 8$(echo "$first" | cut -c2) -a "$first" != 7b
"$streamcat" --json "$tmp/a.mp" > "$tmp/b.jsonl" 2> "$tmp/err"
check "msgpack -> JSON lines: exit 0" test $? -eq 0 -a ! -s "$tmp/err"
check "JSON lines output has one line per record ($nrec)" \
	test "$(wc -l < "$tmp/b.jsonl" | tr -d ' ')" -eq $nrec
"$streamcat" "$tmp/b.jsonl" > "$tmp/c.mp"
check "msgpack -> JSON -> msgpack: identical bytes" cmp -s "$tmp/a.mp" "$tmp/c.mp"
"$streamcat" "$tmp/a.mp" > "$tmp/d.mp"
check "msgpack -> msgpack: identical bytes" cmp -s "$tmp/a.mp" "$tmp/d.mp"
"$streamcat" --json "$tmp/b.jsonl" > "$tmp/e.jsonl"
check "JSON -> JSON (canonical form): identical bytes" cmp -s "$tmp/b.jsonl" "$tmp/e.jsonl"
"$streamcat" < "$tmp/a.mp" > "$tmp/f.mp"
check "standard input (no argument)" cmp -s "$tmp/a.mp" "$tmp/f.mp"
"$streamcat" - < "$tmp/a.mp" > "$tmp/g.mp"
check "standard input ('-')" cmp -s "$tmp/a.mp" "$tmp/g.mp"
cat "$tmp/a.mp" | "$streamcat" --json > "$tmp/h.jsonl"
check "a pipe as input" cmp -s "$tmp/b.jsonl" "$tmp/h.jsonl"

if [ -n "$have_python" ]; then
	python3 - "$tmp/in.jsonl" "$tmp/b.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
b = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert a == b, "records differ"
for l in open(sys.argv[2], encoding="utf-8"):
    o = json.loads(l)
    assert list(o) == sorted(o), "keys not in sorted order: %r" % list(o)
    assert l.startswith('{"') and l.endswith("}\n"), "not one compact object a line"
EOF
	check "records equal the input's, keys sorted (python3)" test $? -eq 0
fi

# ---- non-canonical msgpack becomes canonical ----
# {"type":"tok","id":1,"token":5,"logprob":0.5} with str8 keys/values,
# uint16/uint64 integers, a float32 and unsorted keys
printf '\204\331\004type\331\003tok\242id\315\000\001\245token\317\000\000\000\000\000\000\000\005\247logprob\312\077\000\000\000' > "$tmp/nc.mp"
printf '\204\242id\001\247logprob\313\077\340\000\000\000\000\000\000\245token\005\244type\243tok' > "$tmp/canon.mp"
"$streamcat" "$tmp/nc.mp" > "$tmp/nc.out"
check "non-canonical msgpack is rewritten canonically" cmp -s "$tmp/nc.out" "$tmp/canon.mp"
"$streamcat" --json "$tmp/nc.mp" > "$tmp/nc.jsonl"
check "... and as JSON (keys in the input's order)" \
	test "$(cat "$tmp/nc.jsonl")" = '{"type":"tok","id":1,"token":5,"logprob":0.5}'
"$streamcat" "$tmp/nc.jsonl" > "$tmp/nc2.mp"
check "... and back to the same canonical msgpack" cmp -s "$tmp/nc2.mp" "$tmp/canon.mp"

# ---- empty input ----
: > "$tmp/empty"
"$streamcat" "$tmp/empty" > "$tmp/empty.out"
check "empty input: exit 0, no output" test $? -eq 0 -a ! -s "$tmp/empty.out"
printf '\n\n  \n' | "$streamcat" --json > "$tmp/blank.out"
check "blank lines only: exit 0, no output" test $? -eq 0 -a ! -s "$tmp/blank.out"

# ---- live pipes: the first record comes out before the second is sent ----
# (keys sorted, so JSON -> JSON, which keeps the key order, is canonical too)
printf '%s\n' '{"id":1,"tokens":[1,2,3],"type":"seq"}' > "$tmp/rec1.jsonl"
printf '%s\n' '{"id":1,"reason":"eos","type":"end"}' > "$tmp/rec2.jsonl"
"$streamcat" "$tmp/rec1.jsonl" > "$tmp/rec1.mp"
"$streamcat" "$tmp/rec2.jsonl" > "$tmp/rec2.mp"
cat "$tmp/rec1.jsonl" "$tmp/rec2.jsonl" > "$tmp/want.out"

# live NAME INPUT1 INPUT2 COMMAND...: feed INPUT1 into COMMAND, sleep, mark
# the moment before INPUT2 is sent, send it; COMMAND's first output line
# must appear before the mark.
live() {
	name=$1 in1=$2 in2=$3
	shift 3
	rm -f "$tmp/sent2" "$tmp/live.out"
	: > "$tmp/live.out"
	( cat "$in1"; sleep 3; : > "$tmp/sent2"; cat "$in2" ) |
		"$@" > "$tmp/live.out" 2> "$tmp/live.err" &
	bgpid=$!
	result=timeout
	i=0
	while [ $i -lt 400 ]; do
		if [ "$(wc -l < "$tmp/live.out")" -ge 1 ]; then
			if [ -e "$tmp/sent2" ]; then result=late; else result=early; fi
			break
		fi
		if [ -e "$tmp/sent2" ]; then
			result=late
			break
		fi
		sleep 0.05 2>/dev/null || sleep 1
		i=$((i + 1))
	done
	wait "$bgpid"
	st=$?
	bgpid=
	check "live $name: first record out before the second was sent ($result)" \
		test "$result" = early
	check "live $name: both records out, exit 0, stderr empty" \
		test $st -eq 0 -a ! -s "$tmp/live.err"
	check "live $name: output is right" cmp -s "$tmp/live.out" "$tmp/want.out"
}
live "JSON lines -> JSON lines" "$tmp/rec1.jsonl" "$tmp/rec2.jsonl" \
	"$streamcat" --json
live "msgpack -> JSON lines" "$tmp/rec1.mp" "$tmp/rec2.mp" "$streamcat" --json
live "JSON -> msgpack -> JSON (two processes)" "$tmp/rec1.jsonl" "$tmp/rec2.jsonl" \
	sh -c '"$0" | "$0" --json' "$streamcat"

plan
finish
