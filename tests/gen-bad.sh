#!/bin/sh
# gen-bad.sh - slm-gen on bad input (slm-gen(1): DESCRIPTION, EXIT STATUS):
#  - jobs with a token id >= the vocabulary size, an empty prompt, a prompt
#    not shorter than the context (-c): each an error record with the job's
#    id and the cause; the good jobs of the same stream (before, between and
#    after them) still run to their end records; exit 0;
#  - a negative token id is a malformed record: exit 65, one line;
#  - a bundle of an unsupported architecture (slm-convert --vocab-only
#    writes architecture "tokenizer"): exit 65, one line naming the
#    supported architectures;
#  - a KV cache that cannot fit (-c 16777216 --parallel 1024): exit 75
#    before loading, one line with what is needed and what is available;
#    -c beyond its documented range (100000000): exit 64, one line.
# The model: the tiny llama of scripts/make-tiny-models.py (python3 with
# numpy and gguf), else SmolLM2 from scripts/fetch-models; skip (77) when
# neither can be had. Exit 0 pass, 1 fail, 77 skip, 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
need slm-convert slm-gen
command -v python3 >/dev/null 2>&1 || { echo "gen-bad: python3 needed, skipping" >&2; exit 77; }

scratch
cd "$tmp" || exit 99

if python3 -c 'import numpy, gguf' >/dev/null 2>&1 &&
   python3 "$top_srcdir/scripts/make-tiny-models.py" "$tmp" llama > line 2> err; then
	gguf=$(cut -d' ' -f2 line)
else
	gguf=$(bash "$top_srcdir/scripts/fetch-models" smollm2 2>/dev/null)
	[ -f "$gguf" ] || {
		echo "gen-bad: no model (python3 numpy+gguf for the tiny one, or scripts/fetch-models smollm2), skipping" >&2
		exit 77
	}
fi
slm-convert -q "$gguf" -o m.slm || { echo "gen-bad: slm-convert $gguf failed" >&2; exit 99; }
slm-convert -q --vocab-only "$gguf" -o vocab.slm || { echo "gen-bad: slm-convert --vocab-only failed" >&2; exit 99; }
nv=$(slm-pack info --json m.slm 2>/dev/null | python3 -c 'import json, sys
j = json.load(sys.stdin)
t = [x for x in j.get("tensors", []) if x.get("name") == "token_embd.weight"]
print(t[0]["shape"][1] if t else "")' 2>/dev/null)
case $nv in '' | *[!0-9]*) nv=$(python3 -c 'import sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
print([int(t.shape[1]) for t in r.tensors if t.name == "token_embd.weight"][0])' "$gguf" 2>/dev/null) ;; esac
case $nv in '' | *[!0-9]*) echo "gen-bad: cannot tell the vocabulary size" >&2; exit 99 ;; esac

# py EXPR FILE: EXPR over recs (the JSON records of FILE), by id: toks,
# ends, errs (id -> list / record / message)
py() {
	python3 -c 'import json, sys
recs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
toks, ends, errs = {}, {}, {}
for r in recs:
    if r.get("type") == "tok": toks.setdefault(r["id"], []).append(r["token"])
    if r.get("type") == "end": ends[r["id"]] = r
    if r.get("type") == "error": errs[r.get("id")] = r.get("message", "")
ok = eval(sys.argv[1])
if not ok:
    print("records:", *recs, sep="\n  ")
sys.exit(0 if ok else 1)' "$1" "$2"
}
# run EXPECTED-STATUS ARGS... < input: slm-gen, status checked
run() {
	want=$1; shift
	slm-gen -m m.slm --json --temp 0 "$@" > gen.out 2> gen.err
	rc=$?
	[ $rc = "$want" ] || { echo "exit $rc, want $want"; cat gen.err; return 1; }
}

job() { # job ID TOKENS-JSON: a seq record
	printf '{"type":"seq","id":%s,"tokens":%s}\n' "$1" "$2"
}
good='[10,20,30,40,50]'
long=$(python3 -c 'print([(7 * i) % 200 + 1 for i in range(40)])' | tr -d ' ')

# each bad job alone between good ones
{ job '"a"' "$good"; job '"big"' "[1,2,$nv,3]"; job '"b"' "$good"; } > s1
check "token id $nv (= n_vocab) between good jobs: exit 0" run 0 -n 4 < s1
check "  error record for it, naming the token and the vocabulary" \
	py '"big" in errs and str('"$nv"') in errs["big"] and "vocabulary" in errs["big"] and "big" not in ends' gen.out
check "  the good jobs before and after it: 4 tokens each, end records" \
	py 'len(toks.get("a", [])) == 4 and toks.get("a") == toks.get("b") and ends["a"]["reason"] == "length" and "b" in ends' gen.out

{ job 1 "$good"; job 2 '[]'; job 3 "$good"; } > s2
check "empty prompt between good jobs: exit 0" run 0 -n 4 < s2
check "  error record 'empty prompt' for it, the others end" \
	py '2 in errs and "empty" in errs[2] and 2 not in ends and 1 in ends and 3 in ends and toks[1] == toks[3]' gen.out

{ job 1 "$good"; job 2 "$long"; job 3 "$good"; } > s3
check "prompt of 40 tokens with -c 16: exit 0" run 0 -n 4 -c 16 < s3
check "  error record naming the prompt length and the context" \
	py '2 in errs and "40" in errs[2] and "16" in errs[2] and 2 not in ends and 1 in ends and 3 in ends' gen.out
{ job 1 "$(python3 -c 'print(list(range(1, 17)))' | tr -d ' ')"; job 2 "$(python3 -c 'print(list(range(1, 16)))' | tr -d ' ')"; } > s3b
check "prompts of 16 and 15 tokens with -c 16: the first refused, the second ends (context)" run 0 -n 4 -c 16 < s3b
check "  error record for 16, an end record for 15" \
	py '1 in errs and 2 in ends and 1 not in ends' gen.out

# all of them in one stream, several slots
{ job 1 "$good"; job 2 "[1,$((nv + 1000)),2]"; job 3 '[]'; job 4 "$long"; job 5 "$good"
  job 6 "[$((nv - 1))]"; } > s4
check "good and bad jobs mixed, --parallel 2 -c 32: exit 0" run 0 -n 4 -c 32 --parallel 2 < s4
check "  three error records (ids 2, 3, 4), end records for 1, 5 and 6 (last token id)" \
	py 'sorted(errs) == [2, 3, 4] and sorted(ends) == [1, 5, 6] and toks[1] == toks[5] and len(toks[6]) == 4' gen.out

# a negative id: a malformed record (slm-stream(5)), the stream fails
{ job 1 "$good"; job 2 '[1,-5,2]'; } > s5
check "negative token id: exit 65, one line naming the tokens" \
	sh -c 'slm-gen -m m.slm --json --temp 0 -n 2 < s5 > gen.out 2> gen.err; rc=$?
		cat gen.err; [ $rc = 65 ] && [ "$(grep -c . gen.err)" = 1 ] && grep -q tokens gen.err'

# unsupported architecture
job 1 "$good" > s6
check "bundle of architecture 'tokenizer': exit 65, one line naming the supported ones" \
	sh -c 'slm-gen -m vocab.slm --json --temp 0 < s6 > gen.out 2> gen.err; rc=$?
		cat gen.err; [ $rc = 65 ] && [ "$(grep -c . gen.err)" = 1 ] &&
		grep -q "tokenizer" gen.err && grep -q "llama, qwen2, qwen3, gemma3, smollm3, phi3" gen.err'

# memory
check "-c 16777216 --parallel 1024: exit 75, one line with what it needs and what is available" \
	sh -c 'slm-gen -m m.slm --json --temp 0 -c 16777216 --parallel 1024 < s6 > gen.out 2> gen.err; rc=$?
		cat gen.err; [ $rc = 75 ] && [ "$(grep -c . gen.err)" = 1 ] &&
		grep -q "needs [0-9.]* *[KMGTPE]i*B.*[0-9.]* *[KMGTPE]i*B available" gen.err &&
		grep -q -- "-c" gen.err && [ ! -s gen.out ]'
check "-c 100000000 (beyond 16777216): exit 64, one line" \
	sh -c 'slm-gen -m m.slm --json --temp 0 -c 100000000 < s6 > gen.out 2> gen.err; rc=$?
		cat gen.err; [ $rc = 64 ] && [ "$(grep -c . gen.err)" = 1 ]'

plan
finish
