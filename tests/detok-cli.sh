#!/bin/sh
# detok-cli.sh - slm-detok as a command:
#  - detok(tok(text)) == text for texts in many scripts, emoji, white space
#    runs and text that looks like special tokens (--no-special), for
#    byte-level BPE (starcoder, SmolLM2) and SentencePiece (llama-spm,
#    Gemma 3) vocabularies, through seq records and, where the vocabulary
#    adds no dummy-prefix space, through tok records one at a time;
#  - streaming: a character split over several tokens (byte-fallback
#    <0xE2><0x82><0xAC> of llama-spm, byte-level pieces of an emoji) is
#    printed only once complete and never broken; liveness: the text of
#    the tok records already written is printed while the writer keeps the
#    pipe open;
#  - --jsonl on interleaved sequences (string and integer ids): one object
#    each, with its text, reason, token count and the end record's keys;
#    the same in text mode, one sequence after the other;
#  - error records: a line on stderr (none with -q), exit 65, the other
#    sequences still printed;
#  - --special; --think show|hide|stderr on a vocabulary with <think> and
#    </think> control tokens (tests/data/cli/think.gguf, made by
#    scripts/make-cli-golden.py); a header of another vocabulary: exit 65.
#
# Environment (from make check): top_srcdir, PATH with slm-tok, slm-detok
# and slm-convert. Exit 0 pass, 1 fail, 77 skip (no python3, or no
# vocabulary available), 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
need slm-tok slm-detok slm-convert
scratch
data=$top_srcdir/tests/data/cli
if ! command -v python3 >/dev/null 2>&1; then
	echo "detok-cli: python3 needed, skipping" >&2
	exit 77
fi

# ---- the bundles: NAME=path, empty when not available ----
bpe= spm= smol= gemma=
if [ -f "$vocab/ggml-vocab-starcoder.gguf" ]; then
	slm-convert -q --vocab-only "$vocab/ggml-vocab-starcoder.gguf" -o "$tmp/starcoder.slm" &&
		bpe=$tmp/starcoder.slm
	slm-convert -q --vocab-only "$vocab/ggml-vocab-llama-spm.gguf" -o "$tmp/llama-spm.slm" &&
		spm=$tmp/llama-spm.slm
fi
g=$(bash "$top_srcdir/scripts/fetch-models" smollm2 2>/dev/null) && [ -f "$g" ] &&
	slm-convert -q --vocab-only "$g" -o "$tmp/smollm2.slm" && smol=$tmp/smollm2.slm
g=$(bash "$top_srcdir/scripts/fetch-models" gemma3 2>/dev/null) && [ -f "$g" ] &&
	slm-convert -q --vocab-only "$g" -o "$tmp/gemma3.slm" && gemma=$tmp/gemma3.slm
[ -n "$bpe" ] || bpe=$smol
if [ -z "$bpe" ]; then
	echo "detok-cli: neither $vocab nor SmolLM2 available, skipping" >&2
	exit 77
fi
if ! slm-convert -q --vocab-only "$data/think.gguf" -o "$tmp/think.slm" 2> "$tmp/err"; then
	fail "think.gguf: slm-convert --vocab-only"
	sed 's/^/# /' "$tmp/err"
fi

# tokrecs ID < seq stream (--json) > tok records of its tokens, then an end
tokrecs() {
	python3 -c 'import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if r["type"] == "seq":
        for t in r["tokens"]:
            print(json.dumps({"type": "tok", "id": json.loads(sys.argv[1]), "token": t}))
print(json.dumps({"type": "end", "id": json.loads(sys.argv[1]), "reason": "eos"}))' "$1"
}

# ---- 1. round trips ----
cat > "$tmp/texts.py" <<'EOF'
TEXTS = [
    "Hello world",
    " leading space",
    "  two leading spaces, trailing two  ",
    "tabs\tand\nnew\nlines\n\n\n",
    "H\u00e9llo w\u00f6rld \u2014 \u00c7a va? \u00d1and\u00fa, fa\u00e7ade, na\u00efve",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u4e2d\u6587\u6587\u672c\u3002 \ud55c\uad6d\uc5b4",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac. "
    "\u05e2\u05d1\u05e8\u05d9\u05ea. \u0627\u0644\u0639\u0631\u0628\u064a\u0629. \u0939\u093f\u0928\u094d\u0926\u0940",
    "emoji \U0001F389\U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F1EB\U0001F1F7 \U0001F9EC",
    "def f(x):\n    return x ** 2  # comment\n\tif (a && b) { return; }\n",
    "<|im_start|>user <s></s> <|endoftext|> <think> <0xE2> [INST]",
    "    \n\t\t  \r\n   ",
    "a" * 300 + " " + "\u00e9" * 50,
    "numbers 1234567890 3.14159 -0.5e10",
    "\u00a0nbsp, \u200bzwsp, \u3000ideographic space",
    "x",
]
EOF
# roundtrip MODEL RECORDS: RECORDS seq (tok | detok) or tok (tok records one
# by one, then end: the text and a newline)
roundtrip() {
	python3 - "$tmp/texts.py" "$1" "$2" <<'EOF'
import json, subprocess, sys
exec(open(sys.argv[1], encoding="utf-8").read())
bundle, how = sys.argv[2:4]
bad = 0
for t in TEXTS:
    r = subprocess.run(["slm-tok", "-m", bundle, "--json", "--no-bos", "--no-special"],
                       input=t.encode(), capture_output=True, check=True)
    stream, want = r.stdout, t.encode()
    if how == "tok":
        toks = json.loads(r.stdout.splitlines()[1])["tokens"]
        stream = "".join(json.dumps({"type": "tok", "id": 0, "token": i}) + "\n" for i in toks)
        stream = (stream + '{"type":"end","id":0,"reason":"eos"}\n').encode()
        want += b"\n"
    d = subprocess.run(["slm-detok", "-m", bundle], input=stream, capture_output=True)
    if d.returncode != 0 or d.stdout != want:
        bad += 1
        print("%r -> %r (exit %d)" % (t[:40], d.stdout[:60], d.returncode))
print("%d texts, %d differ" % (len(TEXTS), bad))
sys.exit(1 if bad else 0)
EOF
}
for m in "starcoder:$bpe" "smollm2:$smol" "llama-spm:$spm" "gemma3:$gemma"; do
	name=${m%%:*} b=${m#*:}
	if [ -z "$b" ]; then
		skip "$name: detok(tok(text)) == text" "vocabulary not available"
		continue
	fi
	check "$name: detok(tok(text)) == text (seq records)" roundtrip "$b" seq
	case $name in
	llama-spm) ;; # a dummy-prefix space: tok records print it
	*) check "$name: the same through tok records, one at a time" roundtrip "$b" tok ;;
	esac
done

# ---- 2. streaming: characters split over tokens; liveness ----
# stream MODEL TOKENS... : feed tok records one by one to a live slm-detok,
# with the pipe kept open; after each, an error record for another id as a
# barrier (its stderr line proves the records before it were handled):
# nothing must be printed until the last token, then the whole character.
cat > "$tmp/stream.py" <<'EOF'
import json, os, select, subprocess, sys, time
bundle, want = sys.argv[1], sys.argv[2].encode()
toks = [int(x) for x in sys.argv[3:]]
p = subprocess.Popen(["slm-detok", "-m", bundle], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
def send(rec):
    p.stdin.write((json.dumps(rec) + "\n").encode())
    p.stdin.flush()
def read_line(f, limit=30):
    """One line from f, waiting at most limit seconds (a liveness bound, not
    a timing measure)."""
    buf, end = b"", time.monotonic() + limit
    while not buf.endswith(b"\n"):
        r, _, _ = select.select([f], [], [], max(0, end - time.monotonic()))
        if not r:
            raise SystemExit("no output within %ds: got %r" % (limit, buf))
        c = os.read(f.fileno(), 1)
        if not c:
            raise SystemExit("end of output: got %r" % buf)
        buf += c
    return buf
def ready(f):
    return select.select([f], [], [], 0)[0] != []
out = b""
for k, t in enumerate(toks):
    send({"type": "tok", "id": "s", "token": t})
    send({"type": "error", "id": "barrier-%d" % k, "message": "sync"})
    line = read_line(p.stderr)
    assert b"sync" in line, line
    if k < len(toks) - 1:
        assert not ready(p.stdout), "printed after %d of %d tokens: %r" % (
            k + 1, len(toks), os.read(p.stdout.fileno(), 100))
# the last token completes the character: it must come out now, pipe open
end = time.monotonic() + 30
while len(out) < len(want):
    r, _, _ = select.select([p.stdout], [], [], max(0, end - time.monotonic()))
    if not r:
        raise SystemExit("character not printed while the pipe is open: %r" % out)
    c = os.read(p.stdout.fileno(), 64)
    if not c:
        break
    out += c
assert out == want, (out, want)
send({"type": "end", "id": "s", "reason": "eos"})
p.stdin.close()
rest = p.stdout.read()
p.wait()
assert rest == b"\n", rest
print("%d tokens -> %r" % (len(toks), out.decode()))
EOF
if [ -n "$spm" ]; then
	# <0xE2> <0x82> <0xAC>: byte tokens 3 + byte in llama-spm
	printf '{"type":"seq","id":0,"tokens":[229,133,175]}\n' | slm-detok -m "$spm" > "$tmp/euro"
	check "llama-spm: the byte tokens 229 133 175 are <0xE2><0x82><0xAC> (\342\202\254)" \
		sh -c 'test "$(cat "$1")" = "€"' sh "$tmp/euro"
	check "llama-spm: a character over 3 byte-fallback tokens: printed only once whole, while the pipe is open" \
		python3 "$tmp/stream.py" "$spm" "€" 229 133 175
else
	skip "byte-fallback streaming" "llama-spm not available"
fi
for m in "starcoder:$bpe" "smollm2:$smol"; do
	name=${m%%:*} b=${m#*:}
	[ -n "$b" ] || { skip "$name: byte-level pieces streaming" "not available"; continue; }
	# the first emoji of these that takes more than one token
	ids=
	for e in 🧬 🦩 𓂀 🫠 🪐; do
		ids=$(printf '%s' "$e" | slm-tok -m "$b" --ids --no-bos --no-special)
		[ "$(echo "$ids" | wc -w)" -ge 2 ] && break
	done
	if [ "$(echo "$ids" | wc -w)" -ge 2 ]; then
		# shellcheck disable=SC2086
		check "$name: $e over $(echo "$ids" | wc -w) byte-level tokens: printed only once whole" \
			python3 "$tmp/stream.py" "$b" "$e" $ids
	else
		skip "$name: byte-level pieces streaming" "no emoji split over tokens"
	fi
done
# liveness: tok records then a writer that sleeps with the pipe open
cat > "$tmp/live.py" <<'EOF'
import json, os, select, subprocess, sys, time
bundle, text = sys.argv[1], sys.argv[2]
ids = subprocess.run(["slm-tok", "-m", bundle, "--ids", "--no-bos"], input=text.encode(),
                     capture_output=True, check=True).stdout.split()
p = subprocess.Popen(["slm-detok", "-m", bundle], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
for t in ids:
    p.stdin.write(b'{"type":"tok","id":1,"token":%s}\n' % t)
p.stdin.flush()
# the writer now "sleeps": the pipe stays open while we read, 30 s at most
out, end = b"", time.monotonic() + 30
while out != text.encode():
    r, _, _ = select.select([p.stdout], [], [], max(0, end - time.monotonic()))
    if not r:
        break
    c = os.read(p.stdout.fileno(), 4096)
    if not c:
        break
    out += c
alive = p.poll() is None
p.stdin.close()
p.wait()
assert alive, "slm-detok ended before its input did"
assert out == text.encode(), "printed so far: %r" % out
EOF
check "liveness: the text of the tok records written so far is out while the writer keeps the pipe open" \
	python3 "$tmp/live.py" "$bpe" "Hello, streaming world: ünïcödé"

# ---- 3. interleaved sequences: --jsonl and text ----
# interleave MODEL [ID TEXT]... : the tok records of the texts, one token of
# each in turn (ids are JSON), no end records
interleave() {
	python3 - "$@" <<'EOF'
import json, subprocess, sys
bundle, args = sys.argv[1], sys.argv[2:]
seqs = []
for i in range(0, len(args), 2):
    ids = subprocess.run(["slm-tok", "-m", bundle, "--ids", "--no-bos", "--no-special"],
                         input=args[i + 1].encode(), capture_output=True, check=True).stdout.split()
    seqs.append((json.loads(args[i]), [int(x) for x in ids]))
for k in range(max(len(t) for _, t in seqs)):
    for id, toks in seqs:
        if k < len(toks):
            print(json.dumps({"type": "tok", "id": id, "token": toks[k]}))
EOF
}
ntok() { printf '%s' "$2" | slm-tok -m "$1" --ids --no-bos --no-special | wc -w | tr -d ' '; }
na=$(ntok "$bpe" "Bonjour le monde") nb=$(ntok "$bpe" "Good morning, world") nc=$(ntok "$bpe" "seven")
{
	printf '{"type":"header","version":1}\n'
	interleave "$bpe" '"a"' "Bonjour le monde" 7 "Good morning, world" '"7"' "seven"
} > "$tmp/trunc.jsonl"
{
	cat "$tmp/trunc.jsonl"
	printf '{"type":"end","id":7,"reason":"length","n_gen":%d}\n' "$nb"
	printf '{"type":"end","id":"a","reason":"eos","n_gen":%d}\n' "$na"
	printf '{"type":"end","id":"7","reason":"stop"}\n'
} > "$tmp/inter.jsonl"
slm-detok -m "$bpe" --jsonl "$tmp/inter.jsonl" > "$tmp/inter.out" 2> "$tmp/err"
check "--jsonl, three interleaved sequences: exit 0" test $? -eq 0
check "--jsonl: one object per sequence as each ends: id (7 and \"7\" apart), text, reason, tokens, the end's keys" \
	python3 - "$tmp/inter.out" "$na" "$nb" "$nc" <<'EOF'
import json, sys
na, nb, nc = map(int, sys.argv[2:5])
assert min(na, nb) >= 3 and nc >= 1, (na, nb, nc)
r = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
want = [
    {"id": 7, "text": "Good morning, world", "reason": "length", "n_gen": nb, "tokens": nb},
    {"id": "a", "text": "Bonjour le monde", "reason": "eos", "n_gen": na, "tokens": na},
    {"id": "7", "text": "seven", "reason": "stop", "tokens": nc},
]
assert r == want, r
EOF
slm-detok -m "$bpe" "$tmp/inter.jsonl" > "$tmp/inter.txt" 2> "$tmp/err"
printf 'Bonjour le monde\nGood morning, world\nseven\n' > "$tmp/inter.want"
check "text mode: the sequences one after the other, not interleaved, exit 0" \
	sh -c 'cmp "$1" "$2" && test ! -s "$3"' sh "$tmp/inter.txt" "$tmp/inter.want" "$tmp/err"
slm-detok -m "$bpe" --jsonl "$tmp/trunc.jsonl" > "$tmp/trunc.out"
check "--jsonl: sequences with no end record written at the end as truncated" \
	python3 -c 'import json, sys
r = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
na, nb, nc = map(int, sys.argv[2:5])
assert r == [{"id": "a", "text": "Bonjour le monde", "reason": "truncated", "tokens": na},
             {"id": 7, "text": "Good morning, world", "reason": "truncated", "tokens": nb},
             {"id": "7", "text": "seven", "reason": "truncated", "tokens": nc}], r' \
	"$tmp/trunc.out" "$na" "$nb" "$nc"

# ---- 4. error records ----
{
	interleave "$bpe" '"a"' "Bonjour le monde" '"b"' "Good morning, world" > "$tmp/il"
	head -n 4 "$tmp/il"
	printf '{"type":"error","id":"b","message":"context full"}\n'
	interleave "$bpe" '"a"' "Bonjour le monde" | tail -n +3
	printf '{"type":"end","id":"a","reason":"eos"}\n'
} > "$tmp/errs.jsonl"
slm-detok -m "$bpe" "$tmp/errs.jsonl" > "$tmp/errs.txt" 2> "$tmp/errs.err"
rc=$?
check "error record: exit 65 (got $rc), the other sequence printed whole" \
	sh -c 'test "$1" -eq 65 && test "$(cat "$2")" = "Bonjour le monde"' sh $rc "$tmp/errs.txt"
check "error record: one line on stderr with its id and message" \
	sh -c 'test "$(wc -l < "$1")" -eq 1 && grep -q "\"b\".*context full" "$1"' sh "$tmp/errs.err"
slm-detok -m "$bpe" --jsonl "$tmp/errs.jsonl" > "$tmp/errs.out" 2> "$tmp/errs.err"
rc=$?
check "--jsonl with an error record: exit 65 (got $rc), an error object and the other sequence" \
	python3 -c 'import json, sys
assert int(sys.argv[2]) == 65
r = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert r == [{"id": "b", "error": "context full"},
             {"id": "a", "text": "Bonjour le monde", "reason": "eos", "tokens": int(sys.argv[3])}], r' \
	"$tmp/errs.out" $rc "$na"
slm-detok -q -m "$bpe" "$tmp/errs.jsonl" > "$tmp/errs.txt" 2> "$tmp/errs.err"
rc=$?
check "-q: nothing on stderr, still exit 65 (got $rc)" \
	sh -c 'test "$1" -eq 65 && test ! -s "$2"' sh $rc "$tmp/errs.err"
# the failing sequence is the one being printed: its part ends with a newline
{
	interleave "$bpe" '"b"' "Good morning, world" '"a"' "Bonjour le monde" > "$tmp/il"
	head -n 4 "$tmp/il"
	printf '{"type":"error","id":"b","message":"context full"}\n'
	interleave "$bpe" '"a"' "Bonjour le monde" | tail -n +3
	printf '{"type":"end","id":"a","reason":"eos"}\n'
} > "$tmp/errs2.jsonl"
slm-detok -m "$bpe" "$tmp/errs2.jsonl" > "$tmp/errs2.txt" 2> /dev/null
check "error record for the sequence being printed: its part, a newline, then the other" \
	python3 -c 'import sys
out = open(sys.argv[1], encoding="utf-8").read()
part, rest = out.split("\n", 1)
assert part and "Good morning, world".startswith(part) and part != "Good morning, world", out
assert rest == "Bonjour le monde\n", out' "$tmp/errs2.txt"

# ---- 5. --special, --think, header ----
if [ -n "$smol" ]; then
	sp=$smol
else
	sp=$bpe
fi
printf '<|endoftext|>Hi' | slm-tok -m "$sp" --json --no-bos | tokrecs 1 > "$tmp/sp.jsonl"
slm-detok -m "$sp" "$tmp/sp.jsonl" > "$tmp/nosp.txt"
slm-detok -m "$sp" --special "$tmp/sp.jsonl" > "$tmp/sp.txt"
check "control tokens: hidden by default, shown with --special" \
	sh -c 'test "$(cat "$1")" = "Hi" && test "$(cat "$2")" = "<|endoftext|>Hi"' sh "$tmp/nosp.txt" "$tmp/sp.txt"

if [ -f "$tmp/think.slm" ]; then
	printf '<think>I think the answer is 4</think>the answer is 4' |
		slm-tok -m "$tmp/think.slm" --json --no-bos | tokrecs '"q"' > "$tmp/think.jsonl"
	check "think vocabulary: <think> and </think> are single tokens" \
		sh -c 'test "$(grep -c token "$1")" -ge 4 && test "$(sed -n 1p "$1")" = "{\"type\": \"tok\", \"id\": \"q\", \"token\": 1}"' \
		sh "$tmp/think.jsonl"
	ntok=$(grep -c '"tok"' "$tmp/think.jsonl")
	for mode in show hide stderr; do
		slm-detok -m "$tmp/think.slm" --think $mode "$tmp/think.jsonl" > "$tmp/th.out" 2> "$tmp/th.err"
		echo $? > "$tmp/th.rc"
		slm-detok -m "$tmp/think.slm" --think $mode --jsonl "$tmp/think.jsonl" > "$tmp/th.json" 2> /dev/null
		case $mode in
		show) out='<think>I think the answer is 4</think>the answer is 4' err= ;;
		hide) out='the answer is 4' err= ;;
		stderr) out='the answer is 4' err='I think the answer is 4' ;;
		esac
		check "--think $mode: stdout '$out', stderr '$err'" \
			sh -c 'test "$(cat "$1")" = 0 && test "$(cat "$2")" = "$4" && test "$(cat "$3")" = "$5"' \
			sh "$tmp/th.rc" "$tmp/th.out" "$tmp/th.err" "$out" "$err"
		check "--think $mode --jsonl: the same text, every tok record counted" \
			python3 -c 'import json, sys
r = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert r == [{"id": "q", "text": sys.argv[2], "reason": "eos", "tokens": int(sys.argv[3])}], r' \
			"$tmp/th.json" "$out" "$ntok"
	done
	check "--think bad: exit 64" sh -c 'slm-detok -m "$1" --think maybe < /dev/null; test $? -eq 64' \
		sh "$tmp/think.slm"
fi

printf 'Hi' | slm-tok -m "$bpe" --json > "$tmp/h.jsonl"
check "a header of the bundle's own vocabulary: accepted" \
	sh -c 'slm-detok -m "$1" "$2" > "$3" && test "$(cat "$3")" = Hi' sh "$bpe" "$tmp/h.jsonl" "$tmp/h.txt"
other=${spm:-$tmp/think.slm}
if [ -f "$other" ]; then
	slm-detok -m "$other" "$tmp/h.jsonl" > "$tmp/h.txt" 2> "$tmp/h.err"
	rc=$?
	check "a header of another vocabulary: exit 65 (got $rc), nothing printed" \
		sh -c 'test "$1" -eq 65 && test ! -s "$2" && grep -q "vocabulary" "$3"' sh $rc "$tmp/h.txt" "$tmp/h.err"
fi
check "--help: usage on stdout, exit 0" sh -c 'slm-detok --help | grep -q "^usage: slm-detok"'
check "--version: 'slm-detok (slm) VERSION', exit 0" \
	sh -c 'slm-detok --version | grep -Eq "^slm-detok \(slm\) [0-9]"'

plan
finish
