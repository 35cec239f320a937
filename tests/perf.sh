#!/bin/sh
# perf.sh - slm-perf on real models (SmolLM2-135M Q4_1, and Gemma 3 270M
# Q4_K_M when scripts/fetch-models can have it), with tests/data/perf/:
#  - ppl over declaration.txt (-c 128, 6 windows): the tokens, windows and
#    BOS handling of llama.cpp's perplexity (golden-NAME.json, made by
#    scripts/make-ppl-golden.py with llama-cpp-python); the figure equal to
#    one recomputed here from the model's own logits (tests/logits), so the
#    method is exact; within the spread of llama.cpp's own configurations
#    (golden "spread": on 378 scored tokens rounding alone moves it ~1%);
#  - ppl over tests/data/quant/gpl-3.txt with -c 512 (~3600 scored tokens),
#    token by token against llama.cpp's (golden "long", see long_ppl);
#  - ppl --tokens gives what the text gives; --kld against itself: KL 0,
#    top-1 100%, dppl 0; --json keys; the text output;
#  - bench --json / --csv / --markdown on a tiny run; --svg renders
#    (rsvg-convert, when installed) for bench and ppl --kld;
#  - mc on mc.jsonl: the keys, accuracy in [0, 1] and llama.cpp's choices
#    where its best leads by more than 1 nat;
#  - profile --json; progress lines only on a terminal; usage and data
#    errors.
#
# Environment (from make check): top_srcdir, top_builddir, PATH with
# slm-perf, slm-convert and slm-tok. Exit 0 pass, 1 fail, 77 skip (no
# python3, or no model), 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
. "$top_srcdir/tests/lib.sh"
data=$top_srcdir/tests/data/perf
logits=$top_builddir/tests/logits
need slm-perf slm-convert slm-tok
if ! command -v python3 >/dev/null 2>&1; then
	echo "perf: python3 needed, skipping" >&2
	exit 77
fi

scratch
unset SLM_MODEL

# status_is CODE COMMAND...: exits with CODE and says why on stderr
status_is() {
	want=$1; shift
	"$@" > /dev/null 2> "$tmp/status.err"
	st=$?
	[ "$st" = "$want" ] && [ -s "$tmp/status.err" ] ||
		{ echo "exit $st, wanted $want" >&2; cat "$tmp/status.err" >&2; return 1; }
}
# py EXPR FILE...: a Python expression over the JSON lines of each file
# (j: the first object, js: all of them, g: the golden file if given as
# GOLDEN=path in the environment) must be true
py() {
	expr=$1; shift
	python3 -c 'import json, os, sys
def lines(p):
    return [json.loads(l) for l in open(p) if l.strip()]
js = [o for p in sys.argv[2:] for o in lines(p)]
j = js[0] if js else None
g = json.load(open(os.environ["GOLDEN"])) if os.environ.get("GOLDEN") else None
ok = eval(sys.argv[1])
if not ok:
    print("false:", sys.argv[1], "\n", json.dumps(js)[:1500], file=sys.stderr)
sys.exit(0 if ok else 1)' "$expr" "$@"
}

# ---- without a model ----
check "no mode: usage error" status_is 64 slm-perf
check "unknown mode: usage error" status_is 64 slm-perf fly
check "an option of another mode: usage error" status_is 64 slm-perf bench --kld x.slm
check "--csv with --json: usage error" status_is 64 slm-perf bench --csv --json
check "--version" slm-perf --version
check "--help" slm-perf --help

# ---- one model ----
# model NAME: convert the cached GGUF to $tmp/NAME.slm; 1 if not available
model() {
	g=$(bash "$top_srcdir/scripts/fetch-models" "$1") && [ -f "$g" ] &&
		slm-convert -q "$g" -o "$tmp/$1.slm"
}

# method BUNDLE CTX CHUNKS: perplexity from tests/logits's logits of the
# first CHUNKS windows of slm-tok's tokens, printed with 6 decimals
method() {
	slm-tok -m "$1" --json "$data/declaration.txt" > "$tmp/method.tok" &&
	python3 - "$1" "$2" "$3" "$logits" "$tmp/method.tok" <<'EOF'
import json, math, subprocess, sys
bundle, ctx, chunks, logits, tokfile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
toks = [t for r in map(json.loads, open(tokfile)) if r.get("type") == "seq" for t in r["tokens"]]
first = ctx // 2
nll, count = 0.0, 0
for i in range(chunks):
    win = toks[i * ctx:(i + 1) * ctx]
    pos = ",".join(str(p) for p in range(first, ctx - 1))
    out = subprocess.run([logits, bundle, "-t", "2", "-p", pos] + [str(t) for t in win],
                         check=True, capture_output=True, text=True).stdout
    lg = json.loads(out)["logits"]
    for p in range(first, ctx - 1):
        row = lg[str(p)]
        m = max(row)
        nll += m + math.log(sum(math.exp(x - m) for x in row)) - row[win[p + 1]]
        count += 1
print("%.6f" % math.exp(nll / count))
EOF
}

# long_ppl NAME BUNDLE: perplexity over tests/data/quant/gpl-3.txt with -c 512
# (llama.cpp's windows, ~3600 scored tokens), token by token against
# llama.cpp's (golden "long"."token_nll"), through slm-gen --echo-logits:
#  - the tokens and windows are llama.cpp's;
#  - no systematic difference: the mean of the per-token differences of
#    the negative log-likelihood is within 2 sqrt(se^2 + s^2) of 0, where
#    se is its standard error (the differences are rounding noise, sd
#    ~0.1 nats per token) and s the spread of llama.cpp's own means: the
#    root mean square of ln(ppl_variant / ppl) over its configurations in
#    the golden (one token per batch, flash attention, f32 KV cache: the
#    mean per-token difference of each from llama.cpp's default). A
#    difference of implementations that only round differently moves the
#    mean by that much: on Gemma 3 two slm builds whose products differ by
#    ~1e-7 relative differ per token as much as slm and llama.cpp do (sd
#    0.12 nats; from layer 7 on, after an f16 rounding in attention
#    flips, the difference grows to ~3% of the logits' input), and 1-ulp
#    perturbations of the products move the mean with sd ~0.0015 nats (15
#    such builds: -0.0058 to -0.0008; the ref kernels -0.0058), while
#    llama.cpp's own configurations give -0.0029 to -0.0013 (s = 0.0022;
#    SmolLM2: -0.0011 to +0.0020, s = 0.0013); the kernels' check is
#    unit-kern against ref;
#  - within 0.1% of llama.cpp's perplexity: reported as TODO when not met,
#    since one standard error of that comparison is ~0.16% on this text
#    (llama.cpp's own configurations differ from each other by up to 0.3%).
long_ppl() {
	lname=$1 lb=$2
	check "$lname: ppl -c 512 over gpl-3.txt token by token against llama.cpp's: no systematic difference" \
		sh -c 'slm-tok -m "$1" --json "$2" > "$3/long.tok" &&
			python3 - "$3/long.tok" "$GOLDEN" > "$3/long.seq" <<PYEOF &&
import json, sys
toks = [t for r in map(json.loads, open(sys.argv[1])) if r.get("type") == "seq" for t in r["tokens"]]
g = json.load(open(sys.argv[2]))["long"]
if len(toks) != g["tokens"]:
    sys.exit("%d tokens, llama.cpp %d" % (len(toks), g["tokens"]))
ctx = g["ctx"]
for i in range(len(toks) // ctx):
    w = toks[i * ctx:(i + 1) * ctx]
    if g["add_bos"]:
        w[0] = toks[0]
    print(json.dumps({"type": "seq", "id": i, "tokens": w}))
PYEOF
			slm-gen -m "$1" --echo-logits --json -c 512 < "$3/long.seq" > "$3/long.score" &&
			python3 - "$3/long.score" "$GOLDEN" "$3/long.res" <<PYEOF
import json, math, sys
g = json.load(open(sys.argv[2]))["long"]
lp = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "score":
        lp[(r["id"], r["pos"])] = r["logprob"]
ctx, first = g["ctx"], g["ctx"] // 2
mine = [-lp[(i, j + 1)] for i in range(g["chunks"]) for j in range(first, ctx - 1)]
ref = g["token_nll"]
assert len(mine) == len(ref) == g["scored"], (len(mine), len(ref))
d = [a - b for a, b in zip(mine, ref)]
n = len(d)
mean = sum(d) / n
sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
se = sd / math.sqrt(n)
ppl = math.exp(sum(mine) / n)
rel = ppl / g["ppl"] - 1
own = ", ".join("%s %+.3f%%" % (k, 100 * (v / g["ppl"] - 1)) for k, v in sorted(g["ppl_variants"].items()))
print("slm %.4f, llama.cpp %.4f: %+.3f%% over %d tokens; per-token difference %+.5f +/- %.5f (se; sd %.3f); llama.cpp itself: %s"
      % (ppl, g["ppl"], 100 * rel, n, mean, se, sd, own))
json.dump({"rel": rel}, open(sys.argv[3], "w"))
s = math.sqrt(sum(math.log(v / g["ppl"]) ** 2 for v in g["ppl_variants"].values()) / len(g["ppl_variants"]))
bound = 2 * math.sqrt(se * se + s * s)
print("bound 2 sqrt(se^2 + s^2) = %.5f, s = %.5f (spread of the llama.cpp configurations)" % (bound, s))
sys.exit(0 if abs(mean) <= bound else 1)
PYEOF' sh "$lb" "$top_srcdir/tests/data/quant/gpl-3.txt" "$tmp"
	sed 's/^/# /' "$tmp/out"
	if python3 -c 'import json, sys; sys.exit(0 if abs(json.load(open(sys.argv[1]))["rel"]) <= 0.001 else 1)' "$tmp/long.res" 2>/dev/null; then
		pass "$lname: ppl over gpl-3.txt within 0.1% of llama.cpp's"
	else
		todo "$lname: ppl over gpl-3.txt within 0.1% of llama.cpp's" "$(python3 -c 'import json, sys; print("%+.3f%%: within the noise of the comparison (se ~0.16%%), not within 0.1%%" % (100 * json.load(open(sys.argv[1]))["rel"]))' "$tmp/long.res" 2>/dev/null)"
	fi
	rm -f "$tmp/long.res"
}

ran=0
if model smollm2; then
	ran=1
	b=$tmp/smollm2.slm
	text=$data/declaration.txt
	GOLDEN=$data/golden-smollm2.json
	export GOLDEN
	check "smollm2: ppl --json" sh -c 'slm-perf ppl -q -m "$1" -c 128 --json "$2" > "$3"' \
		sh "$b" "$text" "$tmp/ppl.json"
	check "smollm2: ppl --json keys: ppl, ppl_err, tokens, ctx, chunks" \
		py 'set(["model", "ppl", "ppl_err", "tokens", "ctx", "chunks", "scored"]) <= set(j) and j["ctx"] == 128' "$tmp/ppl.json"
	check "smollm2: the tokens and windows of llama.cpp (golden)" \
		py 'j["tokens"] == g["tokens"] and j["chunks"] == g["chunks"] and j["scored"] == g["scored"]' "$tmp/ppl.json"
	check "smollm2: ppl within llama.cpp's own spread of configurations" \
		py 'abs(j["ppl"] / g["ppl"] - 1) <= g["spread"]' "$tmp/ppl.json"
	long_ppl smollm2 "$b"
	if [ -x "$logits" ]; then
		# --batch 128: one window per call, as tests/logits runs it (products
		# may take other paths, e.g. BLIS, for larger batches)
		a=$(slm-perf ppl -q -m "$b" -c 128 --batch 128 --chunks 2 --json "$text" |
			python3 -c 'import json, sys; print("%.6f" % json.load(sys.stdin)["ppl"])')
		r=$(method "$b" 128 2)
		check "smollm2: ppl --chunks 2 equals the perplexity of the model's own logits" \
			python3 -c 'import sys
a, b = float(sys.argv[1] or "nan"), float(sys.argv[2] or "nan")
print("slm-perf %s, recomputed %s" % (a, b))
sys.exit(0 if abs(a / b - 1) < 1e-4 else 1)' "$a" "$r"
	else
		skip "smollm2: ppl equals the perplexity of the model's own logits" "$logits not built"
	fi
	check "smollm2: ppl text output" sh -c 'slm-perf ppl -q -m "$1" -c 128 "$2" |
		grep -Eq "^ppl = [0-9]+\.[0-9]{4} ± [0-9]+\.[0-9]{4}$"' sh "$b" "$text"
	check "smollm2: ppl --tokens (slm-tok's stream) gives the text's figure" \
		sh -c 'slm-tok -m "$1" "$2" > "$3/t.stream" &&
			slm-perf ppl -q -m "$1" -c 128 --json --tokens "$3/t.stream" > "$3/ppl-tok.json" &&
			python3 -c "import json, sys; a, b = (json.load(open(p)) for p in sys.argv[1:]); sys.exit(0 if a[\"ppl\"] == b[\"ppl\"] and a[\"tokens\"] == b[\"tokens\"] else 1)" "$3/ppl.json" "$3/ppl-tok.json"' \
		sh "$b" "$text" "$tmp"
	check "smollm2: ppl --kld against itself, --svg" \
		sh -c 'slm-perf ppl -q -m "$1" --kld "$1" -c 128 --json --svg "$3/kld.svg" "$2" > "$3/kld.json"' \
		sh "$b" "$text" "$tmp"
	check "smollm2: --kld against itself: KL 0, top-1 100%, dppl 0" \
		py 'j["kld"] <= 1e-6 and j["kld_max"] <= 1e-6 and j["top1_pct"] == 100 and j["dppl"] == 0 and j["ref_ppl"] == j["ppl"]' "$tmp/kld.json"
	check "smollm2: ppl text too short for -c: exit 65" \
		status_is 65 slm-perf ppl -q -m "$b" -c 512 "$text"

	check "smollm2: bench --json" sh -c 'slm-perf bench -q -m "$1" -p 32 -n 8 -r 2 -t 1 --json --svg "$2/bench.svg" > "$2/bench.json"' \
		sh "$b" "$tmp"
	check "smollm2: bench --json: one object per test with the keys" \
		py 'len(js) == 2 and [o["test"] for o in js] == ["pp32", "tg8"] and all(set(["model", "test", "threads", "tps_mean", "tps_sd", "load_ms", "peak_rss_mb", "kernel", "ttft_ms"]) <= set(o) and o["tps_mean"] > 0 and o["threads"] == 1 and o["peak_rss_mb"] > 0 and len(o["samples_tps"]) == 2 for o in js) and js[0]["ttft_ms"] > 0 and js[1]["ttft_ms"] is None' "$tmp/bench.json"
	check "smollm2: bench --csv parses" sh -c 'slm-perf bench -q -m "$1" -p 16 -n 4 -r 2 -b 1,2 --csv |
		python3 -c "import csv, sys
rows = list(csv.DictReader(sys.stdin))
ok = len(rows) == 4 and [r[\"test\"] for r in rows] == [\"pp16\", \"tg4\", \"pp16\", \"tg4\"] and [r[\"seqs\"] for r in rows] == [\"1\", \"1\", \"2\", \"2\"] and all(float(r[\"tps_mean\"]) > 0 for r in rows)
sys.exit(0 if ok else 1)"' sh "$b"
	check "smollm2: bench --markdown: a table" sh -c 'slm-perf bench -q -m "$1" -p 16 -n 4 -r 2 --pg 8,4 --markdown > "$2/md" &&
		python3 -c "import sys
ls = [l.rstrip(\"\n\") for l in open(sys.argv[1])]
cols = {l.count(\"|\") for l in ls}
ok = len(ls) == 5 and len(cols) == 1 and all(l.startswith(\"|\") and l.endswith(\"|\") for l in ls) and set(ls[1]) <= set(\"|-: \") and \"pp8+tg4\" in ls[4]
sys.exit(0 if ok else 1)" "$2/md"' sh "$b" "$tmp"
	check "smollm2: bench table" sh -c 'slm-perf bench -q -m "$1" -p 16 -n 0 -r 1 | grep -q "pp16"' sh "$b"
	for svg in bench kld; do
		check "smollm2: $svg.svg is well-formed SVG" python3 -c 'import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot()
sys.exit(0 if r.tag.endswith("svg") and len(r.findall(".//{http://www.w3.org/2000/svg}rect")) >= 2 else 1)' "$tmp/$svg.svg"
		if command -v rsvg-convert >/dev/null 2>&1; then
			check "smollm2: $svg.svg renders (rsvg-convert) to a non-trivial PNG" \
				sh -c 'rsvg-convert -o "$1.png" "$1" && [ $(wc -c < "$1.png") -gt 5000 ]' sh "$tmp/$svg.svg"
		else
			skip "smollm2: $svg.svg renders" "no rsvg-convert"
		fi
	done

	check "smollm2: mc --json -v" sh -c 'slm-perf mc -q -m "$1" --json -v "$2" > "$3/mc.json"' \
		sh "$b" "$data/mc.jsonl" "$tmp"
	check "smollm2: mc --json keys, accuracy in [0, 1]" \
		py 'set(["model", "questions", "acc", "acc_err", "acc_norm", "acc_norm_err"]) <= set(j) and j["questions"] == 5 and 0 <= j["acc"] <= 1 and 0 <= j["acc_norm"] <= 1' "$tmp/mc.json"
	# llama.cpp's choice wherever its best leads the second by more than
	# MC_TIE nats (two roundings of the same model differ by up to ~0.7 on a
	# whole continuation's log-likelihood: see tests/gen-golden.sh)
	check "smollm2: mc picks llama.cpp's choices (but near-ties)" \
		py 'all(max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)
			for a, b in zip(j["loglik"], g["mc"]["loglik"])
			if sorted(b)[-1] - sorted(b)[-2] > 1.0) and len(j["loglik"]) == len(g["mc"]["loglik"])' "$tmp/mc.json"
	check "smollm2: mc text output" sh -c 'slm-perf mc -q -m "$1" "$2" | grep -Eq "^acc_norm = [01]\.[0-9]{4} ± "' \
		sh "$b" "$data/mc.jsonl"
	printf '{"question": "x", "choices": ["a"], "answer": 3}\n' > "$tmp/bad.jsonl"
	check "smollm2: mc answer out of range: exit 65" status_is 65 slm-perf mc -m "$b" "$tmp/bad.jsonl"

	check "smollm2: profile --json" sh -c 'slm-perf profile -q -m "$1" -p 16 -n 4 --json > "$2/prof.json"' \
		sh "$b" "$tmp"
	check "smollm2: profile --json: the parts of prompt and decode" \
		py '{(o["phase"], o["op"]) for o in js} >= {("prompt", "matmul"), ("prompt", "attention"), ("decode", "matmul"), ("decode", "sampling"), ("decode", "logits")} and all(o["calls"] > 0 and o["total_ms"] >= 0 for o in js) and all(abs(sum(o["share"] for o in js if o["phase"] == p and not o["detail"]) - 1) < 1e-6 for p in ("prompt", "decode"))' "$tmp/prof.json"

	check "smollm2: no progress when stderr is not a terminal" sh -c 'slm-perf ppl -m "$1" -c 128 --chunks 2 "$2" 2>&1 >/dev/null | grep -c chunk | grep -qx 0' \
		sh "$b" "$text"
	if command -v script >/dev/null 2>&1; then
		check "smollm2: progress on a terminal" sh -c 'script -qec "slm-perf ppl -m $1 -c 128 --chunks 2 $2 >/dev/null" /dev/null | grep -q "chunk 2/2"' \
			sh "$b" "$text"
		check "smollm2: -q: no progress on a terminal" sh -c 'script -qec "slm-perf ppl -q -m $1 -c 128 --chunks 2 $2 >/dev/null" /dev/null | grep -c chunk | grep -qx 0' \
			sh "$b" "$text"
	else
		skip "smollm2: progress on a terminal" "no script(1)"
	fi
	rm -f "$b"
else
	skip "smollm2" "scripts/fetch-models smollm2 failed (offline?)"
fi

# Gemma 3: a vocabulary that adds BOS (each window starts with it)
if model gemma3; then
	ran=1
	GOLDEN=$data/golden-gemma3.json
	export GOLDEN
	check "gemma3: ppl --json" sh -c 'slm-perf ppl -q -m "$1" -c 128 --json "$2" > "$3"' \
		sh "$tmp/gemma3.slm" "$data/declaration.txt" "$tmp/gppl.json"
	check "gemma3: BOS at each window, the tokens and windows of llama.cpp" \
		py 'g["add_bos"] and j["tokens"] == g["tokens"] and j["chunks"] == g["chunks"] and j["scored"] == g["scored"]' "$tmp/gppl.json"
	check "gemma3: ppl within llama.cpp's own spread of configurations" \
		py 'abs(j["ppl"] / g["ppl"] - 1) <= g["spread"]' "$tmp/gppl.json"
	long_ppl gemma3 "$tmp/gemma3.slm"
	rm -f "$tmp/gemma3.slm"
else
	skip "gemma3" "scripts/fetch-models gemma3 failed (offline?)"
fi

plan
if [ "$ran" = 0 ]; then
	echo "perf: no model available, skipping" >&2
	exit 77
fi
finish
