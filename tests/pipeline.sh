#!/bin/sh
# pipeline.sh - the README's pipeline on SmolLM2-135M-Instruct
# (scripts/fetch-models smollm2; skipped when it cannot be had):
#
#   echo "Why is the sky blue?" | slm-tok -m smol.slm --chat |
#           slm-gen -m smol.slm --temp 0 -n 24 | slm-detok -m smol.slm
#
# against tests/data/gen/smollm2.json (scripts/make-gen-golden.py, llama.cpp):
#  - slm-tok --chat gives the tokens llama.cpp gets from the model's chat
#    template rendered by jinja2;
#  - slm-gen's tokens equal llama.cpp's greedy continuation of them, up to
#    its first near-tie (a step where its best logit leads by less than 1.0;
#    see tests/gen-golden.sh for why such steps may go either way), and the
#    text is non-empty and begins with llama.cpp's detokenized text of the
#    tokens compared (all of it when there was no near-tie), then the
#    newline slm-detok ends a sequence with; likewise a second question,
#    "Continue the sequence: 1, 2, 3, 4, 5," (its first near-tie at step 15);
#  - the binary pipeline and the same with --json streams agree;
#  - liveness: slm-gen writes its first tok record, and slm-detok its first
#    text, while slm-gen's input is still open (the writer holds the pipe
#    until the test has seen them), so tokens are flushed one by one and
#    not at the end of input. Waits have a generous time-out that only
#    turns a hang into a failure; nothing is timed.
# Exit 0 pass, 1 fail, 77 skip, 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
golden=$top_srcdir/tests/data/gen/smollm2.json
need slm-convert slm-tok slm-gen slm-detok
command -v python3 >/dev/null 2>&1 || { echo "pipeline: python3 needed, skipping" >&2; exit 77; }
gguf=$(bash "$top_srcdir/scripts/fetch-models" smollm2 2>/dev/null)
[ -f "$gguf" ] || { echo "pipeline: scripts/fetch-models smollm2 failed (offline?), skipping" >&2; exit 77; }

# at exit, before $tmp goes: release the liveness writer and end it
cleanup() {
	touch "$tmp/release" 2>/dev/null
	[ -n "${live_pid:-}" ] && kill "$live_pid" 2>/dev/null
	wait 2>/dev/null
}
scratch cleanup
cd "$tmp" || exit 99
slm-convert -q "$gguf" -o smol.slm || { echo "pipeline: slm-convert failed" >&2; exit 99; }

check_show=1 # check: the pipeline's output, also on success

# compare K GEN.jsonl TEXT: question K of the golden's pipeline entries
cat > compare.py <<'EOF'
import json, sys
k, gen, text = int(sys.argv[1]), sys.argv[2], sys.argv[3]
P = json.load(open(sys.argv[4]))["pipeline"][k]
mine = [json.loads(l)["token"] for l in open(gen) if '"tok"' in l]
txt = open(text, encoding="utf-8", errors="replace").read()
# slm-detok(1): a newline follows the text of a complete sequence
if not txt.endswith("\n"):
    print("no newline after the text")
    sys.exit(1)
txt = txt[:-1]
ref, gap, near = P["continuation"], P["gap"], P.get("near", {})
m, note = len(ref), "equal"
for s, r in enumerate(ref):
    if s >= len(mine) or mine[s] != r:
        m = s
        cand = dict((i, v) for i, v in near.get(str(s), []))
        if s < len(mine) and gap[s] < 1.0 and mine[s] in cand and cand[mine[s]] >= max(cand.values()) - 1.0:
            note = "diverged at step %d, a near-tie (gap %.3g)" % (s, gap[s])
        else:
            note = "FAIL at step %d: %s, llama.cpp %d (its gap %.3g)" % (
                s, mine[s] if s < len(mine) else "end", r, gap[s])
        break
if note == "equal" and len(mine) != len(ref):
    note = "FAIL: %d tokens, llama.cpp %d" % (len(mine), len(ref))
ok = not note.startswith("FAIL") and txt.strip() != ""
if P.get("decisive") and note != "equal":
    ok, note = False, note + " (a decisive question: must be equal)"
if note == "equal":
    ok = ok and txt == P["text"]
else:
    ok = ok and txt.startswith(P["prefix_text"][m])
print("%s; %d tokens compared" % (note, m))
print("slm:       %r" % txt)
print("llama.cpp: %r" % P["text"])
sys.exit(0 if ok else 1)
EOF
cat > tokcheck.py <<'EOF'
import json, sys
seq = [json.loads(l) for l in open(sys.argv[1]) if '"seq"' in l]
want = json.load(open(sys.argv[2]))["pipeline"][int(sys.argv[3])]["tokens"]
print("%d tokens" % len(seq[0]["tokens"]) if seq else "no seq record")
sys.exit(0 if len(seq) == 1 and seq[0]["tokens"] == want else 1)
EOF
nq=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["pipeline"]))' "$golden")

k=0
while [ $k -lt "$nq" ]; do
	python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["pipeline"][int(sys.argv[2])]["question"])' "$golden" $k > q$k.txt
	q=$(cat q$k.txt)
	check "\"$q\": slm-tok --chat: the tokens of llama.cpp on the rendered chat template" \
		sh -c 'slm-tok -m smol.slm --chat --json < "$1" > "$2" && python3 tokcheck.py "$2" "$3" "$4"' \
		sh q$k.txt tok$k.jsonl "$golden" $k
	# the pipeline as users type it (msgpack streams)
	slm-tok -m smol.slm --chat < q$k.txt | slm-gen -m smol.slm --temp 0 -n 24 |
		slm-detok -m smol.slm > text$k.txt 2> pipe.err
	# the same with JSON streams, to see the tokens
	slm-gen -m smol.slm --temp 0 -n 24 --json < tok$k.jsonl > gen$k.jsonl 2>> pipe.err
	check "\"$q\": | slm-gen --temp 0 -n 24 | slm-detok: llama.cpp's greedy answer" \
		python3 compare.py $k gen$k.jsonl text$k.txt "$golden"
	check "\"$q\": JSON streams give the same text" \
		sh -c 'slm-detok -m smol.slm < "$1" > "$2" && cmp "$2" "$3"' sh gen$k.jsonl json$k.txt text$k.txt
	k=$((k + 1))
done
[ -s pipe.err ] && { echo "# stderr of the pipelines:"; sed 's/^/#   /' pipe.err; }

# liveness: the writer keeps the pipe open until the test creates release
(
	slm-tok -m smol.slm --chat < q0.txt
	i=0
	while [ ! -e release ] && [ $i -lt 600 ]; do sleep 1; i=$((i + 1)); done
) | slm-gen -m smol.slm --temp 0 -n 24 --json > live.jsonl 2> live.err &
live_pid=$!
(
	slm-tok -m smol.slm --chat < q0.txt
	i=0
	while [ ! -e release ] && [ $i -lt 600 ]; do sleep 1; i=$((i + 1)); done
) | slm-gen -m smol.slm --temp 0 -n 24 | slm-detok -m smol.slm > live.txt 2> live2.err &
# wait_for FILE GREP-PATTERN: up to $SLM_TEST_TIMEOUT s (300), then give up
# (a hang, not slowness)
wait_for() {
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		[ $i -ge "${SLM_TEST_TIMEOUT:-300}" ] && return 1
		sleep 1
		i=$((i + 1))
	done
}
if wait_for live.jsonl '"type":"tok"' && [ ! -e release ] && kill -0 $live_pid 2>/dev/null; then
	pass "slm-gen writes its first tok record while its input is still open"
else
	fail "slm-gen writes its first tok record while its input is still open"
	sed 's/^/# /' live.jsonl live.err | head -n 10
fi
if wait_for live.txt . && [ ! -e release ]; then
	pass "slm-tok | slm-gen | slm-detok: text appears while the input is still open"
else
	fail "slm-tok | slm-gen | slm-detok: text appears while the input is still open"
	sed 's/^/# /' live.txt live2.err | head -n 10
fi
touch release
wait $live_pid
live_rc=$?
live_pid=
wait
check "liveness runs: slm-gen ended the job and exited 0 at the end of input, same text" \
	sh -c '[ "$1" = 0 ] && grep -q "\"type\":\"end\"" live.jsonl && [ ! -s live.err ] && cmp live.txt text0.txt' \
	sh "$live_rc"

plan
finish
