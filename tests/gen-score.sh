#!/bin/sh
# gen-score.sh - slm-gen --echo-logits (--score): teacher-forced scoring.
#
# Tiny random-weight models (scripts/make-tiny-models.py; python3 with
# numpy and gguf, else skipped): qwen2 (f32 weights) and llama (f16):
#  - the records: one score record per position from 1 (none for position
#    0), the sequence's own tokens, logprob <= 0, top (--logprobs) sorted
#    and holding the token when it is the most likely; the end record's
#    n_scored, logprob (the sum of the records', in position order) and
#    ppl; msgpack output read back equal to --json;
#  - batching: the same records, bit for bit, scored one at a time in
#    passes of 5 tokens on one thread and 6 at a time with the default
#    batch on two threads (which must stay below the batch from which
#    BLIS takes the products: 128 tokens for f32, 256 for f16);
#  - bad input: an error record for each bad sequence only (a token
#    outside the vocabulary, longer than -c, empty), the others as alone;
#  - --f32-act: on the f32 model the same records bit for bit (f32 weights
#    keep their route); on the f16 model other figures (f32 activations
#    instead of f16-rounded ones), batched as above bit for bit.
#
# SmolLM2-135M-Instruct Q4_1 (scripts/fetch-models; skipped when it cannot
# be had), with tests/data/perf:
#  - logprob at position p is the log-softmax of tests/logits's logits at
#    p - 1 (|difference| <= 2e-4: tests/logits prints 6 digits, logits
#    reach 30);
#  - against slm-perf, to its printed precision (10 digits): the
#    log-likelihood of each choice of mc.jsonl (the sum of the score
#    records after the context, tokenized as slm-perf mc does), and the
#    perplexity of declaration.txt in the windows of slm-perf ppl -c 128
#    (the second half of each window of 128 tokens scored);
#  - against llama.cpp (golden-smollm2.json, made by llama-cpp-python):
#    each choice's log-likelihood within 0.35 nats per continuation token
#    (seen 2026-11-24 with the ref, avx2 and avx512 kernels: at most 0.26
#    per token, 0.78 on one choice of three tokens; the forward pass rounds
#    unlike llama.cpp, see tests/gen-golden.sh),
#    the choices llama.cpp picks by more than 1 nat, and the perplexity of the windows within
#    llama.cpp's own spread of configurations ("spread");
#  - batching and bad input as above, on all of those sequences;
#  - --f32-act: other logits (tests/logits: f32 activations instead of
#    int8 ones), batching as above bit for bit, and the windows' perplexity
#    equal to slm-perf ppl -c 128 --f32-act's in passes of 512 tokens (4
#    windows: BLIS's exact route does not depend on the batch).
#
# Environment (from make check): top_srcdir, top_builddir, PATH with the
# tools. Exit 0 pass, 1 fail, 77 skip (no python3, or no model at all), 99
# error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
data=$top_srcdir/tests/data/perf
logits=$top_builddir/tests/logits
streamcat=$top_builddir/tests/streamcat
. "$top_srcdir/tests/lib.sh"
need slm-gen slm-perf slm-tok slm-convert
scratch
for p in "$logits" "$streamcat"; do
	[ -x "$p" ] || { echo "gen-score: $p not built (make check builds it)" >&2; exit 99; }
done
if ! command -v python3 >/dev/null 2>&1; then
	echo "gen-score: python3 needed, skipping" >&2
	exit 77
fi
unset SLM_MODEL
ran=0

# lib.py: reading the JSON lines slm-gen and slm-perf write
cat > "$tmp/lib.py" <<'EOF'
import json, math, sys

def lines(path):
    return [json.loads(l) for l in open(path) if l.strip()]

def seqs(path):
    """id -> tokens of the seq records of a stream"""
    return {r["id"]: r["tokens"] for r in lines(path) if r["type"] == "seq"}

def scored(path):
    """(id -> [score records in order], id -> end record, [error records])"""
    recs, ends, errs = {}, {}, []
    for r in lines(path):
        if r["type"] == "score":
            recs.setdefault(r["id"], []).append(r)
        elif r["type"] == "end":
            assert r["id"] not in ends, "two end records for %r" % r["id"]
            ends[r["id"]] = r
        elif r["type"] == "error":
            errs.append(r)
    return recs, ends, errs

def comparable(path):
    """the records without their times, ordered by id and position"""
    out = []
    for r in lines(path):
        r.pop("t_prompt_ms", None)
        out.append(r)
    return sorted(out, key=lambda r: (r["type"], str(r.get("id")), r.get("pos", -1)))

def digits(x):
    """a figure as slm-perf --json prints it (10 significant digits)"""
    return float("%.10g" % x)

def need(ok, *msg):
    if not ok:
        print(*msg, file=sys.stderr)
        sys.exit(1)
EOF

# shape SEQS OUT: the records of OUT are those of the sequences of SEQS
# (no error), as documented
shape() {
	python3 - "$1" "$2" "$tmp/lib.py" <<'EOF'
import sys
exec(open(sys.argv[3]).read())
want = seqs(sys.argv[1])
recs, ends, errs = scored(sys.argv[2])
need(not errs, "errors:", errs)
need(set(ends) == set(want), "end records for", list(ends), "want", list(want))
for i, toks in want.items():
    rs, e = recs.get(i, []), ends[i]
    need([r["pos"] for r in rs] == list(range(1, len(toks))), i, "positions", [r["pos"] for r in rs])
    need([r["token"] for r in rs] == toks[1:], i, "tokens differ from the sequence's")
    need(all(r["logprob"] <= 0 for r in rs), i, "a logprob > 0")
    total = 0.0
    for r in rs:
        total += r["logprob"]
        top = r.get("top")
        if top is not None:
            lps = [t[1] for t in top]
            need(lps == sorted(lps, reverse=True), i, r["pos"], "top not sorted", top)
            ids = [t[0] for t in top]
            if r["token"] in ids:
                need(abs(lps[ids.index(r["token"])] - r["logprob"]) < 1e-6, i, r["pos"], "top gives the token another logprob")
            else:
                need(min(lps) >= r["logprob"] - 1e-6, i, r["pos"], "the token ranks above one of top")
    need(e["reason"] == "scored" and e["n_prompt"] == len(toks) and e["n_scored"] == len(toks) - 1, i, "end", e)
    need(e["logprob"] == total, i, "end logprob %r, records sum %r" % (e["logprob"], total))
    if len(toks) > 1:
        need(e["ppl"] == math.exp(-total / (len(toks) - 1)), i, "ppl", e["ppl"])
    else:
        need("ppl" not in e, i, "ppl without a scored token")
EOF
}

# same A B: the same records apart from times, bit for bit
same() {
	python3 - "$1" "$2" "$tmp/lib.py" <<'EOF'
import sys
exec(open(sys.argv[3]).read())
a, b = comparable(sys.argv[1]), comparable(sys.argv[2])
for x, y in zip(a, b):
    need(x == y, "differ:\n", x, "\n", y)
need(len(a) == len(b), "%d records, %d" % (len(a), len(b)))
EOF
}

# bad BUNDLE SEQS CTX: bad sequences among SEQS get an error record each,
# and the others what they get alone
bad() {
	python3 - "$2" "$3" > "$tmp/bad.jsonl" <<'EOF'
import json, sys
ctx = int(sys.argv[2])
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if r["type"] == "seq"]
out = []
for k, r in enumerate(recs):
    out.append(r)
    if k == 0:
        out.append({"type": "seq", "id": "oov", "tokens": (r["tokens"] * 3)[:3] + [2**31 - 1] + r["tokens"]})
        out.append({"type": "seq", "id": "long", "tokens": (r["tokens"] * (ctx + 1))[:ctx + 1]})
    if k == 1:
        out.append({"type": "seq", "id": "empty", "tokens": []})
        out.append({"type": "seq", "id": "fits", "tokens": (r["tokens"] * ctx)[:ctx]})
for r in out:
    print(json.dumps(r))
EOF
	slm-gen -m "$1" --score --json -c "$3" -t 2 --parallel 3 "$tmp/bad.jsonl" > "$tmp/bad.out" || return 1
	grep -v '"id": "\(oov\|long\|empty\)"' "$tmp/bad.jsonl" > "$tmp/good.jsonl"
	slm-gen -m "$1" --score --json -c "$3" -t 1 --parallel 1 "$tmp/good.jsonl" > "$tmp/good.out" || return 1
	python3 - "$tmp/bad.out" "$tmp/lib.py" <<'EOF' || return 1
import sys
exec(open(sys.argv[2]).read())
recs, ends, errs = scored(sys.argv[1])
got = {e.get("id"): e["message"] for e in errs}
need(sorted(got) == ["empty", "long", "oov"], "error records:", errs)
need("outside the vocabulary" in got["oov"] and "position 3" in got["oov"], got["oov"])
need("does not fit the context" in got["long"], got["long"])
need(not {"oov", "long", "empty"} & (set(recs) | set(ends)), "records for a bad sequence")
need("fits" in ends, "a sequence that fills the context is scored")
EOF
	grep -v '"type":"error"' "$tmp/bad.out" > "$tmp/bad.good"
	same "$tmp/bad.good" "$tmp/good.out"
}

# batching BUNDLE SEQS [OPTION...]: one at a time in passes of 5 tokens on
# one thread, six at a time in default passes on two threads, with
# --logprobs and the OPTIONs: the same
batching() {
	b_m=$1 b_s=$2
	shift 2
	slm-gen -m "$b_m" --score --json --logprobs 3 -t 1 --parallel 1 --batch 5 "$@" "$b_s" > "$tmp/b1.out" &&
	slm-gen -m "$b_m" --score --json --logprobs 3 -t 2 --parallel 6 "$@" "$b_s" > "$tmp/b2.out" &&
	shape "$b_s" "$tmp/b1.out" && same "$tmp/b1.out" "$tmp/b2.out"
}

# win_ppl MODEL BATCH SCORES [--f32-act]: the perplexity of the windows'
# second halves (positions > 64) in the score records SCORES equals, to
# printed precision and over as many tokens, what slm-perf ppl -c 128
# --batch BATCH [--f32-act] gives on the declaration (which must then say
# f32_act)
win_ppl() {
	slm-perf ppl -q -m "$1" -c 128 --batch "$2" ${4:-} --json "$data/declaration.txt" \
		> "$tmp/ppl.perf" || return 1
	python3 - "$tmp/win.jsonl" "$3" "$tmp/ppl.perf" "$tmp/lib.py" "${4:-}" <<'EOF'
import sys
exec(open(sys.argv[4]).read())
recs, _, _ = scored(sys.argv[2])
perf = lines(sys.argv[3])[0]
if sys.argv[5] == "--f32-act":
    need(perf.get("f32_act") is True, "no f32_act in", perf)
nll, count = 0.0, 0
for i in sorted(seqs(sys.argv[1]), key=lambda i: int(i[1:])):
    for x in recs[i]:
        if x["pos"] > 64:
            nll += -x["logprob"]
            count += 1
need(count == perf["scored"], "scored %d, slm-perf %d" % (count, perf["scored"]))
need(digits(math.exp(nll / count)) == perf["ppl"], "slm-gen %.17g, slm-perf %r" % (math.exp(nll / count), perf["ppl"]))
EOF
}

# differ A B: as many records, some different (apart from times)
differ() {
	python3 - "$1" "$2" "$tmp/lib.py" <<'EOF'
import sys
exec(open(sys.argv[3]).read())
a, b = comparable(sys.argv[1]), comparable(sys.argv[2])
need(len(a) == len(b), "%d records, %d" % (len(a), len(b)))
n = sum(x != y for x, y in zip(a, b))
need(n > 0, "the same %d records" % len(a))
print("%d of %d records differ" % (n, len(a)))
EOF
}

# ---- without a model ----
check "--help names --echo-logits and --score" sh -c 'slm-gen --help | grep -q -- "--echo-logits | --score"'

# ---- tiny models ----
if python3 -c 'import numpy, gguf' >/dev/null 2>&1; then
	python3 "$top_srcdir/scripts/make-tiny-models.py" "$tmp" qwen2 llama > "$tmp/tiny.txt" 2> "$tmp/tiny.err" ||
		{ cat "$tmp/tiny.err" >&2; exit 99; }
	python3 -c 'import json, random
r = random.Random(7)
for i in range(8):
    print(json.dumps({"type": "seq", "id": "s%d" % i, "tokens": [r.randrange(256) for _ in range(1 + 23 * i)]}))
print(json.dumps({"type": "seq", "id": 42, "tokens": [5, 6]}))' > "$tmp/tiny.jsonl"
	for m in qwen2 llama; do
		ran=1
		b=$tmp/$m.slm
		if ! slm-convert -q "$tmp/tiny-$m.gguf" -o "$b"; then
			fail "tiny-$m: slm-convert"
			continue
		fi
		check "tiny-$m: the records of each sequence, its end record" \
			sh -c 'slm-gen -m "$1" --echo-logits --json "$2" > "$3"' sh "$b" "$tmp/tiny.jsonl" "$tmp/t.out"
		check "tiny-$m: positions 1 to n - 1, the sequence's tokens, the sum and perplexity" \
			shape "$tmp/tiny.jsonl" "$tmp/t.out"
		check "tiny-$m: msgpack output reads back as the JSON lines" \
			sh -c 'slm-gen -m "$1" --score "$2" | "$3" --json > "$4/t.mp.out" && python3 - "$4/t.out" "$4/t.mp.out" "$4/lib.py" <<EOF
import sys
exec(open(sys.argv[3]).read())
need(comparable(sys.argv[1]) == comparable(sys.argv[2]), "msgpack and JSON differ")
EOF' sh "$b" "$tmp/tiny.jsonl" "$streamcat" "$tmp"
		check "tiny-$m: the same, bit for bit, one at a time or six at a time, -t 1 or 2" \
			batching "$b" "$tmp/tiny.jsonl"
		check "tiny-$m: bad sequences get an error record each, the others as alone" \
			bad "$b" "$tmp/tiny.jsonl" 200
		if ! slm-gen -m "$b" --echo-logits --json --f32-act "$tmp/tiny.jsonl" > "$tmp/t32.out"; then
			fail "tiny-$m: slm-gen --echo-logits --f32-act"
		elif [ "$m" = qwen2 ]; then
			check "tiny-qwen2 (f32 weights): --f32-act gives the same records, bit for bit" \
				same "$tmp/t.out" "$tmp/t32.out"
		else
			check "tiny-llama (f16 weights): --f32-act changes the figures" \
				differ "$tmp/t.out" "$tmp/t32.out"
			check "tiny-llama --f32-act: the same, bit for bit, one at a time or six at a time, -t 1 or 2" \
				batching "$b" "$tmp/tiny.jsonl" --f32-act
		fi
	done
else
	skip "tiny models" "python3 without numpy or gguf"
fi

# ---- SmolLM2 ----
if g=$(bash "$top_srcdir/scripts/fetch-models" smollm2) && [ -f "$g" ] &&
   slm-convert -q "$g" -o "$tmp/smollm2.slm"; then
	ran=1
	b=$tmp/smollm2.slm
	GOLDEN=$data/golden-smollm2.json

	# the mc sequences, as slm-perf mc makes them: the context without its
	# trailing white space, then the tokens that context + " " + choice
	# has after the context's
	python3 - "$data/mc.jsonl" > "$tmp/mc.txt" <<'EOF'
import json, sys
for l in open(sys.argv[1]):
    if l.strip():
        q = json.loads(l)
        ctx = q.get("question", q.get("ctx"))
        print(ctx.rstrip())
        for c in q["choices"]:
            print(ctx + " " + c)
EOF
	slm-tok -m "$b" --lines --json "$tmp/mc.txt" > "$tmp/mc.tok"
	python3 - "$data/mc.jsonl" "$tmp/mc.tok" "$tmp/lib.py" > "$tmp/mc.jsonl" <<'EOF'
import json, sys
exec(open(sys.argv[3]).read())
toks = [r["tokens"] for r in lines(sys.argv[2]) if r["type"] == "seq"]
k = 0
for qi, l in enumerate(l for l in open(sys.argv[1]) if l.strip()):
    q = json.loads(l)
    ctx = toks[k]; k += 1
    for ci in range(len(q["choices"])):
        whole = toks[k]; k += 1
        print(json.dumps({"type": "seq", "id": "q%d-%d" % (qi, ci), "tokens": ctx + whole[len(ctx):],
                          "meta": {"nctx": len(ctx)}}))
EOF
	# the windows of slm-perf ppl -c 128 (SmolLM2 adds no BOS)
	slm-tok -m "$b" --json "$data/declaration.txt" > "$tmp/decl.tok"
	python3 - "$tmp/decl.tok" "$tmp/lib.py" > "$tmp/win.jsonl" <<'EOF'
import json, sys
exec(open(sys.argv[2]).read())
toks = [t for r in lines(sys.argv[1]) if r["type"] == "seq" for t in r["tokens"]]
for w in range(len(toks) // 128):
    print(json.dumps({"type": "seq", "id": "w%d" % w, "tokens": toks[w * 128:(w + 1) * 128]}))
EOF
	cat "$tmp/mc.jsonl" "$tmp/win.jsonl" > "$tmp/all.jsonl"

	check "smollm2: slm-gen --echo-logits on the mc choices and the windows" \
		sh -c 'slm-gen -m "$1" --echo-logits --json -c 128 "$2" > "$3"' sh "$b" "$tmp/all.jsonl" "$tmp/all.out"
	check "smollm2: the records of each sequence, its end record" shape "$tmp/all.jsonl" "$tmp/all.out"

	# position p: the log-softmax of the logits at p - 1
	check "smollm2: logprob at p is the log-softmax of tests/logits's logits at p - 1" \
		python3 - "$tmp/win.jsonl" "$tmp/all.out" "$tmp/lib.py" "$logits" "$b" <<'EOF'
import subprocess, sys
exec(open(sys.argv[3]).read())
toks = seqs(sys.argv[1])["w1"][:24]
recs, _, _ = scored(sys.argv[2])
out = subprocess.run([sys.argv[4], sys.argv[5], "-t", "2", "-p", "all"] + [str(t) for t in toks],
                     check=True, capture_output=True, text=True).stdout
lg = json.loads(out)["logits"]
rows = lg if isinstance(lg, list) else [lg[str(p)] for p in range(len(toks))]
worst = 0
for r in recs["w1"][:23]:
    row = rows[r["pos"] - 1]
    m = max(row)
    lp = row[toks[r["pos"]]] - (m + math.log(sum(math.exp(x - m) for x in row)))
    worst = max(worst, abs(lp - r["logprob"]))
need(worst <= 2e-4, "largest difference %g" % worst)
EOF

	check "smollm2: slm-perf mc --json -v" sh -c 'slm-perf mc -q -m "$1" --json -v "$2" > "$3"' \
		sh "$b" "$data/mc.jsonl" "$tmp/mc.perf"
	check "smollm2: mc choices: the sum after the context equals slm-perf mc's log-likelihood" \
		python3 - "$tmp/mc.jsonl" "$tmp/all.out" "$tmp/mc.perf" "$tmp/lib.py" <<'EOF'
import sys
exec(open(sys.argv[4]).read())
recs, _, _ = scored(sys.argv[2])
perf = lines(sys.argv[3])[0]["loglik"]
for r in lines(sys.argv[1]):
    qi, ci = map(int, r["id"][1:].split("-"))
    s = 0.0
    for x in recs[r["id"]]:
        if x["pos"] >= r["meta"]["nctx"]:
            s += x["logprob"]
    need(digits(s) == perf[qi][ci], r["id"], "slm-gen %.17g, slm-perf %r" % (s, perf[qi][ci]))
EOF
	for pb in 128 256; do
		check "smollm2: windows: the perplexity of their second halves equals slm-perf ppl -c 128 --batch $pb" \
			win_ppl "$b" "$pb" "$tmp/all.out"
	done

	check "smollm2: mc choices within 0.35 nats per token of llama.cpp's, its clear picks" \
		python3 - "$tmp/mc.jsonl" "$tmp/all.out" "$GOLDEN" "$tmp/lib.py" <<'EOF'
import sys
exec(open(sys.argv[4]).read())
recs, _, _ = scored(sys.argv[2])
gold = json.load(open(sys.argv[3]))["mc"]["loglik"]
mine = [[None] * len(g) for g in gold]
worst = 0
for r in lines(sys.argv[1]):
    qi, ci = map(int, r["id"][1:].split("-"))
    cont = [x["logprob"] for x in recs[r["id"]] if x["pos"] >= r["meta"]["nctx"]]
    mine[qi][ci] = sum(cont)
    d = abs(mine[qi][ci] - gold[qi][ci]) / len(cont)
    worst = max(worst, d)
    need(d <= 0.35, r["id"], "slm %.4f, llama.cpp %.4f over %d tokens" % (mine[qi][ci], gold[qi][ci], len(cont)))
pick = lambda row: max(range(len(row)), key=row.__getitem__)
for qi, (a, g) in enumerate(zip(mine, gold)):
    lead = g[pick(g)] - max(x for k, x in enumerate(g) if k != pick(g))
    need(lead <= 1 or pick(a) == pick(g), "question %d: picks %d, llama.cpp %d" % (qi, pick(a), pick(g)))
print("largest difference per token %.3f" % worst)
EOF
	check "smollm2: windows: perplexity within llama.cpp's spread of its own configurations" \
		python3 - "$tmp/win.jsonl" "$tmp/all.out" "$GOLDEN" "$tmp/lib.py" <<'EOF'
import sys
exec(open(sys.argv[4]).read())
recs, _, _ = scored(sys.argv[2])
g = json.load(open(sys.argv[3]))
lps = [-x["logprob"] for i in sorted(seqs(sys.argv[1]), key=lambda i: int(i[1:])) for x in recs[i] if x["pos"] > 64]
need(len(lps) == g["scored"], len(lps), g["scored"])
ppl = math.exp(sum(lps) / len(lps))
need(abs(ppl / g["ppl"] - 1) <= g["spread"], "slm %.4f, llama.cpp %.4f, spread %.4f" % (ppl, g["ppl"], g["spread"]))
EOF
	check "smollm2: the same, bit for bit, one at a time or six at a time, -t 1 or 2" \
		batching "$b" "$tmp/all.jsonl"
	check "smollm2: bad sequences get an error record each, the others as alone" \
		bad "$b" "$tmp/all.jsonl" 128

	# --f32-act: f32 activations against the dequantized weights
	check "smollm2: --f32-act changes the logits (tests/logits)" \
		python3 - "$tmp/win.jsonl" "$tmp/lib.py" "$logits" "$b" <<'EOF'
import subprocess, sys
exec(open(sys.argv[2]).read())
toks = [str(t) for t in seqs(sys.argv[1])["w1"][:24]]
run = lambda *o: json.loads(subprocess.run([sys.argv[3], sys.argv[4], "-t", "2", "-p", "all", *o] + toks,
                                           check=True, capture_output=True, text=True).stdout)
a, b = run(), run("--f32-act")
d = max(abs(x - y) for k in a["logits"] for x, y in zip(a["logits"][k], b["logits"][k]))
print("largest difference %g" % d)
need(d > 1e-3, "logits differ by at most %g" % d)
EOF
	check "smollm2 --f32-act: the same, bit for bit, one at a time or six at a time, -t 1 or 2" \
		batching "$b" "$tmp/all.jsonl" --f32-act
	check "smollm2 --f32-act: the windows' perplexity equals slm-perf ppl -c 128 --batch 512 --f32-act's" \
		win_ppl "$b" 512 "$tmp/b2.out" --f32-act
else
	skip "smollm2" "scripts/fetch-models smollm2 failed (offline?)"
fi

plan
if [ "$ran" = 0 ]; then
	echo "gen-score: no model available, skipping" >&2
	exit 77
fi
finish
