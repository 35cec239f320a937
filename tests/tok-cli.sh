#!/bin/sh
# tok-cli.sh - slm-tok as a command:
#  - every shared vocabulary with test vectors (*.gguf.inp / *.gguf.out in
#    ${SLM_SHARED:-$top_srcdir/../shared}/vocab): a selection of cases,
#    multi-line ones included, each fed as one whole input with
#    --ids --no-bos --no-special, gives the ids of its .out line;
#  - input modes: whole input, --lines (ids 0.., CR LF), --jsonl in its
#    three shapes ({"id","text"}, {"id","messages"}, {"custom_id","body":
#    {"messages"}}) with the ids passed through to the seq records and the
#    request options to "meta"; a bad line gives an error record for that
#    line and the other lines are still tokenized (and an empty line with
#    --ids);
#  - chat: --chat, --system and JSONL messages give the tokens of the text
#    Python's jinja2 renders from SmolLM2's template as transformers does
#    (tests/data/cli/chat.json, made by scripts/make-cli-golden.py),
#    tokenized with special tokens and no BOS; --template FILE overrides
#    the bundle's template, and gives one to a bundle without; --chat with
#    no template is exit 65;
#  - a binary stream refused on a terminal (with script(1)), --help,
#    --version, usage errors.
#
# Environment (from make check): top_srcdir, PATH with slm-tok and
# slm-convert. Exit 0 pass, 1 fail, 77 skip (no python3, or neither the
# shared vocabularies nor SmolLM2 available), 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
need slm-tok slm-convert
scratch
data=$top_srcdir/tests/data/cli
if ! command -v python3 >/dev/null 2>&1; then
	echo "tok-cli: python3 needed, skipping" >&2
	exit 77
fi

# status IS DESCRIPTION COMMAND...: the command exits with IS
status() {
	want=$1 d=$2; shift 2
	"$@" > "$tmp/sout" 2> "$tmp/serr" < /dev/null
	got=$?
	if [ "$got" -eq "$want" ]; then
		pass "$d"
	else
		fail "$d (exit $got, want $want)"
		sed 's/^/# /' "$tmp/serr" | head -n 5
	fi
}

# ---- the bundles ----
plain= chatm=
if [ -f "$vocab/ggml-vocab-starcoder.gguf" ] &&
   slm-convert -q --vocab-only "$vocab/ggml-vocab-starcoder.gguf" -o "$tmp/starcoder.slm"; then
	plain=$tmp/starcoder.slm
fi
g=$(bash "$top_srcdir/scripts/fetch-models" smollm2 2>/dev/null) && [ -f "$g" ] &&
	slm-convert -q --vocab-only "$g" -o "$tmp/smollm2.slm" && chatm=$tmp/smollm2.slm
[ -n "$plain" ] || plain=$chatm
if [ -z "$plain" ]; then
	echo "tok-cli: neither $vocab nor SmolLM2 (scripts/fetch-models smollm2) available, skipping" >&2
	exit 77
fi
# the chat checks: SmolLM2's own template, else its text through --template
python3 -c 'import json, sys
sys.stdout.write(json.load(open(sys.argv[1], encoding="utf-8"))["smollm2"]["template"])' \
	"$data/chat.json" > "$tmp/smollm2.jinja" || exit 99
if [ -n "$chatm" ]; then
	chat_m=$chatm chat_t=
else
	chat_m=$plain chat_t=$tmp/smollm2.jinja
fi

# ---- 1. test vectors, each case a whole input ----
nv=0
for inp in "$vocab"/*.gguf.inp; do
	[ -f "$inp" ] || continue
	gg=${inp%.inp}
	name=$(basename "$gg" .gguf)
	nv=$((nv + 1))
	if ! slm-convert -q --vocab-only "$gg" -o "$tmp/v.slm" 2> "$tmp/err"; then
		fail "$name: slm-convert --vocab-only"
		sed 's/^/# /' "$tmp/err" | head -n 5
		continue
	fi
	check "$name: whole-input cases (--ids --no-bos --no-special) give the .out ids" \
		python3 - "$inp" "$gg.out" "$tmp/v.slm" <<'EOF'
import subprocess, sys
inp, outp, bundle = sys.argv[1:4]
cases = open(inp, "rb").read().split(b"\n__ggml_vocab_test__\n")
want = open(outp, encoding="utf-8").read().split("\n")
n = min(len(cases), len(want))
# every multi-line case, every case of white space only, and every fifth
pick = [i for i in range(n)
        if b"\n" in cases[i] or not cases[i].strip() or i % 5 == 0]
bad = 0
for i in pick:
    r = subprocess.run(["slm-tok", "-m", bundle, "--ids", "--no-bos", "--no-special"],
                       input=cases[i], capture_output=True)
    got = r.stdout.decode()
    if r.returncode != 0 or got != want[i].strip() + "\n":
        bad += 1
        print("case %d %r: got %r (exit %d), want %r"
              % (i, cases[i][:40], got[:80], r.returncode, want[i][:80]))
print("%d cases, %d multi-line, %d wrong"
      % (len(pick), sum(b"\n" in cases[i] for i in pick), bad))
sys.exit(1 if bad or len(pick) < 10 else 0)
EOF
done
[ $nv -gt 0 ] || skip "test vectors" "no $vocab/*.gguf.inp"

# ---- 2. input modes ----
printf 'alpha beta\n\316\263\316\254\316\274\316\274\316\261 <|endoftext|>\r\n\nlast, no newline' > "$tmp/lines.txt"
check "whole input: one seq, id 0, the tokens of the whole text; --lines: a seq per line (ids 0..3, CR LF dropped), each the tokens of its line" \
	python3 - "$plain" "$tmp/lines.txt" <<'EOF'
import json, subprocess, sys
bundle, path = sys.argv[1:3]
def ids(text, *opt):
    r = subprocess.run(["slm-tok", "-m", bundle, "--ids"] + list(opt), input=text,
                       capture_output=True, check=True)
    return [int(x) for x in r.stdout.split()]
def recs(*args):
    r = subprocess.run(["slm-tok", "-m", bundle, "--json"] + list(args),
                       capture_output=True, check=True)
    return [json.loads(l) for l in r.stdout.decode().splitlines()]
text = open(path, "rb").read()
w = recs(path)
assert w[0]["type"] == "header" and len(w[0]["vocab"]) == 64, w[0]
assert len(w) == 2 and w[1]["type"] == "seq" and w[1]["id"] == 0, w
assert w[1]["tokens"] == ids(text), "whole input"
l = recs("--lines", path)
lines = [b"alpha beta", "γάμμα <|endoftext|>".encode(), b"", b"last, no newline"]
assert [r["id"] for r in l[1:]] == [0, 1, 2, 3], l
for r, t in zip(l[1:], lines):
    assert r["type"] == "seq" and r["tokens"] == ids(t), (r, t)
# --no-special and --no-bos apply to each line
l = recs("--lines", "--no-special", "--no-bos", path)
for r, t in zip(l[1:], lines):
    assert r["tokens"] == ids(t, "--no-special", "--no-bos"), (r, t)
assert l[2]["tokens"] != recs("--lines", "--no-bos", path)[2]["tokens"], \
    "--no-special changes nothing on a control token"
assert w[1]["tokens"] != sum((r["tokens"] for r in l[1:]), []), "lines = whole"
EOF

# JSONL: the three shapes, ids passed through, a bad line in the middle
python3 - "$data/chat.json" > "$tmp/batch.jsonl" <<'EOF'
import json, sys
g = json.load(open(sys.argv[1], encoding="utf-8"))["smollm2"]["cases"]
out = [
    {"id": "a", "text": "Once upon a time"},
    {"id": 7, "messages": g[1]["messages"]},
    "not json {",
    {"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions",
     "body": {"messages": g[5]["messages"], "max_tokens": 5, "temperature": 0.5}},
    "   ",
    {"custom_id": "p", "body": {"prompt": "a prompt", "seed": 3}},
    {"id": 1.5, "text": "an id that is not a string nor an integer"},
    [1, 2],
    {"id": "no-text"},
    {"id": "zz", "text": "the end \u00e9\U0001F600"},
]
for o in out:
    print(o if isinstance(o, str) else json.dumps(o, ensure_ascii=False))
EOF
if [ -n "$chat_t" ]; then set -- --template "$chat_t"; else set --; fi
slm-tok -m "$chat_m" "$@" --jsonl --json --no-bos "$tmp/batch.jsonl" > "$tmp/batch.out" 2> "$tmp/batch.err"
check "--jsonl with bad lines: exit 0" test $? -eq 0
check "--jsonl: one record per non-blank line, ids passed through, meta, error records for the bad lines, the others tokenized" \
	python3 - "$chat_m" "$data/chat.json" "$tmp/batch.out" "$@" <<'EOF'
import json, subprocess, sys
bundle, gold, outp = sys.argv[1:4]
extra = sys.argv[4:]
g = json.load(open(gold, encoding="utf-8"))["smollm2"]["cases"]
def ids(text, *opt):
    r = subprocess.run(["slm-tok", "-m", bundle, "--ids", "--no-bos"] + list(opt),
                       input=text.encode(), capture_output=True, check=True)
    return [int(x) for x in r.stdout.split()]
r = [json.loads(l) for l in open(outp, encoding="utf-8")]
assert r[0]["type"] == "header", r[0]
r = r[1:]
assert [(x["type"], x["id"]) for x in r] == [
    ("seq", "a"), ("seq", 7), ("error", 2), ("seq", "req-1"), ("seq", "p"),
    ("seq", 6), ("error", 7), ("error", "no-text"), ("seq", "zz")], r
assert r[0]["tokens"] == ids("Once upon a time")
assert r[1]["tokens"] == ids(g[1]["rendered"]), "messages"
assert r[3]["tokens"] == ids(g[5]["rendered"]), "body.messages"
assert r[3]["meta"] == {"max_tokens": 5, "temperature": 0.5}, r[3]
assert r[4]["tokens"] == ids("a prompt") and r[4]["meta"] == {"seed": 3}, r[4]
assert r[5]["tokens"] == ids("an id that is not a string nor an integer")
assert r[8]["tokens"] == ids("the end \u00e9\U0001F600")
assert "meta" not in r[0] and "meta" not in r[1]
for e in (r[2], r[6], r[7]):
    assert isinstance(e.get("message"), str) and e["message"], e
EOF
check "--jsonl: each bad line reported on stderr with its line number" \
	sh -c 'grep -q "line 3:" "$1" && grep -q "line 8:" "$1" && grep -q "line 9:" "$1" &&
		test "$(wc -l < "$1")" -eq 3' sh "$tmp/batch.err"
slm-tok -m "$chat_m" "$@" --jsonl --ids -q "$tmp/batch.jsonl" > "$tmp/batch.ids" 2> "$tmp/err"
check "--jsonl --ids -q: one line per prompt, empty for the bad ones, nothing on stderr" \
	sh -c 'test "$(wc -l < "$1")" -eq 9 && test "$(sed -n 3p "$1")" = "" &&
		test -n "$(sed -n 4p "$1")" && test "$(sed -n 7p "$1")" = "" && test ! -s "$2"' \
	sh "$tmp/batch.ids" "$tmp/err"

# ---- 3. chat ----
# chat_cases MODEL GOLD [--template FILE]: --chat / --system (user text with
# and without an echo-like newline) and JSONL messages against the golden
chat_cases() {
	python3 - "$data/chat.json" "$@" <<'EOF'
import json, subprocess, sys
gold, bundle, key = sys.argv[1:4]
extra = sys.argv[4:]
cases = json.load(open(gold, encoding="utf-8"))[key]["cases"]
def run(args, data):
    r = subprocess.run(["slm-tok", "-m", bundle, "--ids"] + args, input=data.encode(),
                       capture_output=True)
    if r.returncode != 0:
        raise SystemExit("slm-tok %s: exit %d: %s" % (args, r.returncode, r.stderr.decode()))
    return r.stdout.decode()
bad = nchat = 0
for c in cases:
    want = run(["--no-bos"], c["rendered"])
    assert want.strip(), c
    lines = json.dumps({"id": 1, "messages": c["messages"]}, ensure_ascii=False)
    got = run(["--jsonl"] + extra, lines + "\n")
    if got != want:
        bad += 1
        print("%s: JSONL messages: %r != %r" % (c["name"], got[:80], want[:80]))
    m = c["messages"]
    if m[-1]["role"] == "user" and len(m) <= 2:
        sysargs = ["--system", m[0]["content"]] if len(m) == 2 else []
        for args, inp in ((["--chat"], m[-1]["content"] + "\n"),
                          ([], m[-1]["content"]) if sysargs else (["--chat"], m[-1]["content"])):
            nchat += 1
            got = run(args + sysargs + extra, inp)
            if got != want:
                bad += 1
                print("%s: %s: %r != %r" % (c["name"], args + sysargs, got[:80], want[:80]))
print("%d cases, %d through --chat/--system, %d wrong" % (len(cases), nchat, bad))
sys.exit(1 if bad or nchat < 8 else 0)
EOF
}
if [ -n "$chatm" ]; then
	check "SmolLM2's template: --chat, --system, JSONL messages == tokens of jinja2's rendering" \
		chat_cases "$chatm" smollm2
	check "--template FILE overrides the bundle's template (custom.jinja == jinja2's rendering)" \
		chat_cases "$chatm" custom --template "$data/custom.jinja"
	printf 'Hi' | slm-tok -m "$chatm" --chat --ids > "$tmp/own" &&
		printf 'Hi' | slm-tok -m "$chatm" --chat --ids --template "$data/custom.jinja" > "$tmp/custom"
	check "--template output differs from the bundle template's" \
		sh -c '! cmp -s "$1" "$2"' sh "$tmp/own" "$tmp/custom"
else
	skip "SmolLM2's template" "scripts/fetch-models smollm2 failed (offline?)"
fi
if [ "$plain" != "$chatm" ]; then
	check "bundle without a template + --template FILE (SmolLM2's): == jinja2's rendering" \
		chat_cases "$plain" smollm2 --template "$tmp/smollm2.jinja"
	printf 'hi\n' > "$tmp/hi.txt"
	status 65 "--chat on a bundle without a chat template: exit 65" \
		slm-tok -m "$plain" --chat "$tmp/hi.txt"
	check "... with a message saying so" grep -q "no chat template" "$tmp/serr"
	status 65 "--system on a bundle without a chat template: exit 65" \
		slm-tok -m "$plain" --system S "$tmp/hi.txt"
fi
printf 'hi\n' > "$tmp/hi.txt"
status 66 "--template FILE that does not exist: exit 66" \
	slm-tok -m "$plain" --chat --template "$tmp/none.jinja" "$tmp/hi.txt"
printf '{%% for m in messages %%}{{ m.content }}\n' > "$tmp/broken.jinja"
status 65 "--template FILE that is not a valid template: exit 65" \
	slm-tok -m "$plain" --chat --template "$tmp/broken.jinja" "$tmp/hi.txt"
check "... naming the file" grep -q "broken.jinja" "$tmp/serr"

# ---- 4. terminal, --help, --version, usage ----
if command -v script >/dev/null 2>&1 &&
   script -qec true /dev/null < /dev/null > /dev/null 2>&1; then
	script -qec "slm-tok -m '$plain' '$tmp/hi.txt'" /dev/null < /dev/null > "$tmp/tty" 2>&1
	rc=$?
	check "binary stream to a terminal: refused, exit 64 (got $rc)" \
		sh -c 'test "$1" -eq 64 && grep -q "terminal" "$2" && ! grep -q "header" "$2"' sh $rc "$tmp/tty"
	script -qec "slm-tok -m '$plain' --json '$tmp/hi.txt'" /dev/null < /dev/null > "$tmp/tty" 2>&1
	rc=$?
	check "--json to a terminal: written (exit $rc)" \
		sh -c 'test "$1" -eq 0 && grep -q "\"header\"" "$2"' sh $rc "$tmp/tty"
	script -qec "slm-tok -m '$plain' -f '$tmp/hi.txt'" /dev/null < /dev/null > "$tmp/tty" 2>&1
	rc=$?
	check "-f: binary stream to a terminal written (exit $rc)" \
		sh -c 'test "$1" -eq 0 && grep -q "header" "$2"' sh $rc "$tmp/tty"
else
	skip "binary stream refused on a terminal" "no usable script(1)"
fi
check "--help: usage on stdout, exit 0" sh -c 'slm-tok --help | grep -q "^usage: slm-tok"'
check "--version: 'slm-tok (slm) VERSION', exit 0" \
	sh -c 'slm-tok --version | grep -Eq "^slm-tok \(slm\) [0-9]"'
status 64 "unknown option: exit 64" slm-tok --no-such-option
status 64 "--lines with --jsonl: exit 64" slm-tok -m "$plain" --lines --jsonl "$tmp/hi.txt"
status 64 "two operands: exit 64" slm-tok -m "$plain" "$tmp/hi.txt" "$tmp/hi.txt"
status 66 "missing input file: exit 66" slm-tok -m "$plain" "$tmp/missing.txt"

plan
finish
