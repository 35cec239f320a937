#!/bin/sh
# quant.sh - slm-quant on SmolLM2-135M (scripts/fetch-models smollm2: its
# Q4_1 GGUF, converted to a bundle and dequantized by slm-quant f32 into the
# F32 source):
#  - the requantization warning; NaN and infinity in the input: exit 65
#    naming the tensor, no output; bad arguments: exit 64; standard input
#    and output; --keep; the manifest's quantization record;
#  - with llama-cpp-python: each recipe (and Q4_K_M with an importance
#    matrix) byte-identical, tensor for tensor, to what llama.cpp's
#    quantizer (llama_model_quantize) makes of the same F32 GGUF;
#  - with llama-cpp-python: every block type's GGUF export (--pure) loads
#    in llama.cpp, whose logits agree with slm's (tests/logits) on the same
#    bytes: same argmax at >= 80% of positions, and a largest difference
#    (relative to the logit range) at most 1.5 times the type's own effect
#    on llama.cpp's logits (quantized vs F32) plus 0.01: the engines round
#    activations differently, and 30 layers amplify that as much as the
#    weights' rounding;
#  - --calib: importances from a token stream (the GPL 2 through slm-tok,
#    tests/data/quant/gpl-2.txt) in both file forms: the GGUF form reads
#    with gguf's GGUFReader (names, shapes, keys), both forms give the same
#    bytes, and llama.cpp's quantizer given the GGUF form's importances
#    makes the same bytes as slm-quant --imatrix --no-awq;
#  - activation-aware scales folded at a fixed alpha into an f32 model
#    leave its logits unchanged up to rounding;
#  - with slm-perf: perplexity and KL divergence from F32 on another fixed
#    text (the GPL 3, tests/data/quant/gpl-3.txt, 14 chunks of 512): the
#    Q8_0 weights within 0.2% of F32 (dequantized, so that only the
#    weights' rounding counts), the Q8_0 model run with its int8 kernels
#    within 0.5% (the kernels round the activations to int8 too: llama.cpp's
#    own Q8_0 is 0.24% above F32 here), the Q8_0 model run with
#    slm-perf --f32-act (f32 activations against its weights dequantized
#    in tiles) within 0.2% of F32 and within 0.01% of the dequantized
#    weights' perplexity (the same products, summed in another order by
#    BLIS: 0.003% apart on 2026-11-24); slm's Q4_K_M within 0.5% of
#    llama.cpp's (byte-identical, above, so equal); Q4_K_M and Q4_0 with
#    the importances below them without; Q4_0 with activation-aware scales
#    below plain Q4_0 in perplexity and below Q4_0 with importances alone
#    in KL divergence. The figures are in tests/data/quant/README.
#
# Environment (from make check): top_srcdir, top_builddir, PATH with the
# tools. Exit 0 pass, 1 fail, 77 skip (no model: offline), 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
. "$top_srcdir/tests/lib.sh"
logits=$top_builddir/tests/logits
need slm-quant slm-convert slm-pack
gguf=$(bash "$top_srcdir/scripts/fetch-models" smollm2) && [ -f "$gguf" ] || {
	echo "quant: scripts/fetch-models smollm2 failed (offline?), skipping" >&2
	exit 77
}
scratch

# check and exit_is keep the command's standard error in $tmp/prev.err
check() { # check DESCRIPTION COMMAND...
	tap_check "$@"
	cp "$tmp/err" "$tmp/prev.err"
}
# exit_is CODE DESCRIPTION COMMAND...: the command fails with CODE
exit_is() {
	want=$1 d=$2; shift 2
	"$@" > "$tmp/out" 2> "$tmp/err"
	rc=$?
	if [ "$rc" = "$want" ]; then
		pass "$d (exit $rc: $(head -n 1 "$tmp/err"))"
	else
		fail "$d (exit $rc, expected $want)"
		sed 's/^/# /' "$tmp/err" | head -n 5
	fi
	cp "$tmp/err" "$tmp/prev.err"
}
have_py() { python3 -c "import $1" >/dev/null 2>&1; }

# ---- the F32 source ----
check "convert the Q4_1 GGUF" slm-convert -q "$gguf" -o "$tmp/q41.slm"
slm-quant f32 "$tmp/q41.slm" -o "$tmp/f32.slm" 2> "$tmp/warn"
if [ $? = 0 ] && grep -q "already quantized (q4_1): dequantizing first" "$tmp/warn"; then
	pass "f32 from Q4_1, with the requantization warning"
else
	fail "f32 from Q4_1, with the requantization warning"
	sed 's/^/# /' "$tmp/warn" | head -n 5
	exit 1
fi
check "export the F32 source as GGUF" slm-convert --to gguf "$tmp/f32.slm" -o "$tmp/f32.gguf"

# ---- the command line ----
check "q8_0 from standard input to standard output" \
	sh -c 'slm-quant q8_0 < "$1" > "$2" && test -s "$2"' sh "$tmp/f32.slm" "$tmp/q8.slm"
check "quiet on success" sh -c '[ ! -s "$1" ]' sh "$tmp/prev.err"
exit_is 64 "unknown type" slm-quant q7_k "$tmp/f32.slm" -o "$tmp/x.slm"
exit_is 64 "bad --keep" slm-quant q8_0 --keep 'blk.*' "$tmp/f32.slm" -o "$tmp/x.slm"
exit_is 64 "bad --keep type" slm-quant q8_0 --keep 'blk.*=q9' "$tmp/f32.slm" -o "$tmp/x.slm"
exit_is 66 "missing input" slm-quant q8_0 "$tmp/none.slm" -o "$tmp/x.slm"
check "--keep and --json" slm-quant q4_k_m --json --keep 'blk.1?.ffn_down.weight=q8_0' \
	--keep 'blk.2.*=keep' "$tmp/f32.slm" -o "$tmp/keep.slm"
check "--json: one record per tensor and the totals" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
t = {r["tensor"]: r for r in recs if "tensor" in r}
assert len(t) == 272 and "bytes_out" in recs[-1] and "tensor" not in recs[-1]
assert t["blk.15.ffn_down.weight"]["type"] == "q8_0"
assert t["blk.2.ffn_down.weight"]["type"] == "f32"
assert t["blk.3.ffn_down.weight"]["type"] == "q4_k"
assert t["token_embd.weight"]["type"] == "q8_0" and t["output_norm.weight"]["type"] == "f32"
assert all(r["rmse"] >= 0 and r["max_error"] >= r["rmse"] for r in t.values())
' "$tmp/prev.err"
check "the manifest records the quantization" sh -c '
slm-pack info --json "$1" > "$2" && python3 -c "
import json, sys
j = json.load(open(sys.argv[1]))
m = j.get(\"manifest\", j)
p = m[\"provenance\"]
q = p[\"quantization\"]
assert q[\"recipe\"] == \"q4_k_m\" and q[\"type\"] == \"q4_k\" and q[\"tool\"].startswith(\"slm-quant\")
assert p[\"general\"][\"file_type\"] == 15
" "$2"' sh "$tmp/keep.slm" "$tmp/info.json"

# NaN and infinity: patch one element of a tensor member (bundle_open does
# not hash members), expect exit 65 naming it and no output file
poison() { # poison IN OUT TENSOR INDEX BYTES(hex of a little-endian f32)
	python3 - "$@" <<'EOF'
import shutil, sys, tarfile
src, dst, name, idx, val = sys.argv[1:6]
shutil.copyfile(src, dst)
with tarfile.open(src) as t:
    off = t.getmember("tensors/" + name).offset_data
with open(dst, "r+b") as f:
    f.seek(off + 4 * int(idx))
    f.write(bytes.fromhex(val))
EOF
}
if poison "$tmp/f32.slm" "$tmp/nan.slm" blk.7.ffn_up.weight 1000 0000c07f &&
	poison "$tmp/f32.slm" "$tmp/inf.slm" blk.0.attn_norm.weight 100 0000807f; then
	exit_is 65 "NaN in the input" slm-quant q4_k_m "$tmp/nan.slm" -o "$tmp/nan-out.slm"
	check "NaN: the message names the tensor, no output" sh -c \
		'grep -q "blk.7.ffn_up.weight.*NaN at row 1, column 424" "$1" && [ ! -e "$2" ]' \
		sh "$tmp/prev.err" "$tmp/nan-out.slm"
	exit_is 65 "infinity in a norm" slm-quant q8_0 "$tmp/inf.slm" -o "$tmp/inf-out.slm"
	check "infinity: named, no output" sh -c \
		'grep -q "blk.0.attn_norm.weight.*infinity" "$1" && [ ! -e "$2" ]' \
		sh "$tmp/prev.err" "$tmp/inf-out.slm"
	exit_is 65 "NaN to standard output: nothing written" \
		sh -c 'slm-quant q8_0 < "$1" > "$2"; rc=$?; [ -s "$2" ] && exit 1; exit $rc' \
		sh "$tmp/nan.slm" "$tmp/nan-stdout.slm"
else
	fail "make the NaN and infinity inputs"
fi

# ---- against llama.cpp's quantizer ----
if have_py llama_cpp && have_py gguf && have_py numpy; then
	cat > "$tmp/ll.py" <<'EOF'
import ctypes, sys
import numpy as np, gguf, llama_cpp
FT = {"q4_k_m": 15, "q4_k_s": 14, "q5_k_m": 17, "q3_k_m": 12, "q2_k": 10,
      "q6_k": 18, "q8_0": 7, "q4_0": 2, "q5_1": 9, "f16": 1, "bf16": 32}

def importances(path):
    """A GGUF imatrix's importances as llama-quantize computes them."""
    r = gguf.GGUFReader(path)
    t = {x.name: x for x in r.tensors}
    ent = []
    for n in sorted(t):
        if n.endswith(".in_sum2"):
            base = n[:-8]
            s = np.asarray(t[n].data, dtype=np.float32).reshape(-1)
            c = np.asarray(t[base + ".counts"].data, dtype=np.float32).reshape(-1)
            ent.append((ctypes.create_string_buffer(base.encode()), s / c[0]))
    return ent

def quantize(src, out, ftype, imat=None, load=None):
    """llama.cpp's quantizer; imat: GGUF imatrix file written with the same
    importances (synthetic: the test only needs both to use them alike);
    load: instead, the importances of this GGUF imatrix file."""
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = FT[ftype]
    p.nthread = 2
    if load:
        ent = importances(load)
    if imat:
        r = gguf.GGUFReader(src)
        rng = np.random.default_rng(7)
        w = gguf.GGUFWriter(imat, arch="imatrix")
        w.add_array("imatrix.datasets", ["synthetic"])
        w.add_uint32("imatrix.chunk_count", 1)
        w.add_uint32("imatrix.chunk_size", 512)
        ent = []
        for t in r.tensors:
            if len(t.shape) < 2 or t.shape[1] == 1:
                continue
            s = (rng.gamma(0.8, 1.0, int(t.shape[0])) * 7).astype(np.float32)
            w.add_tensor(t.name + ".in_sum2", s.reshape(1, -1))
            w.add_tensor(t.name + ".counts", np.array([[7.0]], dtype=np.float32))
            ent.append((ctypes.create_string_buffer(t.name.encode()), s / np.float32(7)))
        w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    if imat or load:
        arr = (llama_cpp.llama_model_imatrix_data * (len(ent) + 1))()
        for i, (nb, v) in enumerate(ent):
            arr[i].name = ctypes.cast(nb, ctypes.c_char_p)
            arr[i].data = v.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            arr[i].size = v.size
        p.imatrix = arr
    return llama_cpp.llama_model_quantize(src.encode(), out.encode(), ctypes.byref(p))

def same(a, b):
    ta = {t.name: t for t in gguf.GGUFReader(a).tensors}
    tb = {t.name: t for t in gguf.GGUFReader(b).tensors}
    bad = [n for n in ta if n not in tb or ta[n].tensor_type != tb[n].tensor_type
           or ta[n].data.tobytes() != tb[n].data.tobytes()]
    if bad or len(ta) != len(tb):
        print(f"{len(bad)} of {len(ta)} tensors differ, e.g. {bad[:3]}", file=sys.stderr)
        return 1
    print(f"{len(ta)} tensors byte-identical")
    return 0

IDS = [1, 504, 3458, 282, 4649, 314, 253, 1789, 30, 378, 3400, 1219, 7493,
       690, 260, 23790, 28, 339, 1120, 4376, 30, 2]

def llama_logits(path):
    m = llama_cpp.Llama(model_path=path, verbose=False, logits_all=True,
                        n_ctx=64, n_threads=2)
    m.eval(IDS)
    return np.array(m.scores[:len(IDS)], dtype=np.float64)

def logits(helper, bundle, gg, ref):
    """slm and llama.cpp on the same quantized bytes; ref: the F32 GGUF."""
    import json, subprocess
    out = subprocess.run([helper, bundle, "-t", "2", "-p", "all"] + [str(i) for i in IDS],
                         capture_output=True, check=True).stdout
    j = json.loads(out)
    s = np.array([j["logits"][str(k)] for k in range(len(IDS))], dtype=np.float64)
    import os
    cache = ref + ".logits.npy"
    if not os.path.exists(cache):
        np.save(cache, llama_logits(ref))
    q, f = llama_logits(gg), np.load(cache)
    rel = lambda a, b: float((np.abs(a - b).max(1) / np.abs(b).max(1)).max())
    d, effect = rel(s, q), rel(q, f)
    agree = float((s.argmax(1) == q.argmax(1)).mean())
    bound = 1.5 * effect + 0.01
    print(f"slm vs llama.cpp {d:.4f} (bound {bound:.4f}: the type changes llama.cpp's "
          f"logits by {effect:.4f}), argmax agree {agree:.2f}")
    return 0 if d <= bound and agree >= 0.8 else 1

cmd = sys.argv[1]
if cmd == "quantize":
    sys.exit(quantize(*sys.argv[2:]))
if cmd == "quantize-with":
    sys.exit(quantize(sys.argv[2], sys.argv[3], sys.argv[4], load=sys.argv[5]))
if cmd == "same":
    sys.exit(same(*sys.argv[2:]))
if cmd == "logits":
    sys.exit(logits(*sys.argv[2:]))
EOF
	ll() { python3 "$tmp/ll.py" "$@"; }
	for r in q4_k_m q5_k_m q3_k_m q2_k q6_k q8_0 q4_0 bf16; do
		if ll quantize "$tmp/f32.gguf" "$tmp/ll-$r.gguf" $r > "$tmp/ll.log" 2>&1 &&
			slm-quant $r "$tmp/f32.slm" -o "$tmp/$r.slm" &&
			slm-convert --to gguf "$tmp/$r.slm" -o "$tmp/$r.gguf"; then
			check "$r: byte-identical to llama.cpp's" ll same "$tmp/$r.gguf" "$tmp/ll-$r.gguf"
		else
			fail "$r: quantize with both"
			tail -n 5 "$tmp/ll.log" | sed 's/^/# /'
		fi
		rm -f "$tmp/ll-$r.gguf" "$tmp/$r.gguf" "$tmp/$r.slm"
	done
	# importances: 576-column rows are 18 blocks of 32, not a multiple of
	# the 4 the weighted searches run side by side
	for r in q4_k_m q5_1; do
		if ll quantize "$tmp/f32.gguf" "$tmp/lli.gguf" $r "$tmp/imatrix.gguf" > "$tmp/ll.log" 2>&1 &&
			slm-quant $r --no-awq --imatrix "$tmp/imatrix.gguf" "$tmp/f32.slm" -o "$tmp/qi.slm" &&
			slm-convert --to gguf "$tmp/qi.slm" -o "$tmp/qi.gguf"; then
			check "$r --imatrix: byte-identical to llama.cpp's" ll same "$tmp/qi.gguf" "$tmp/lli.gguf"
		else
			fail "$r --imatrix: quantize with both"
		fi
		rm -f "$tmp/lli.gguf" "$tmp/qi.gguf" "$tmp/qi.slm"
	done

	if [ -x "$logits" ]; then
		for t in f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k; do
			if slm-quant $t --pure "$tmp/f32.slm" -o "$tmp/p.slm" &&
				slm-convert --to gguf "$tmp/p.slm" -o "$tmp/p.gguf"; then
				check "$t: llama.cpp loads the export; logits agree with slm's" \
					ll logits "$logits" "$tmp/p.slm" "$tmp/p.gguf" "$tmp/f32.gguf"
			else
				fail "$t: quantize and export"
			fi
		done
		rm -f "$tmp/p.slm" "$tmp/p.gguf"
	else
		skip "logits against llama.cpp" "no $logits"
	fi
else
	skip "comparisons with llama.cpp" "python3 without llama_cpp, gguf and numpy"
fi

# ---- calibration and perplexity ----
# Importances from a calibration stream (the GPL 2, tokenized by slm-tok),
# then perplexities on another text (the GPL 3, 14 chunks of 512), all the
# models in one slm-perf run.
cal=$top_srcdir/tests/data/quant/gpl-2.txt
text=$top_srcdir/tests/data/quant/gpl-3.txt
if command -v slm-tok >/dev/null 2>&1 && [ -r "$cal" ]; then
	check "tokenize the calibration text" slm-tok -m "$tmp/f32.slm" "$cal" -o "$tmp/cal.tok"
	mkdir -p "$tmp/g" "$tmp/d"
	check "--calib writes an importance matrix (GGUF form, from the name)" \
		slm-quant --calib "$tmp/cal.tok" --chunks 8 "$tmp/f32.slm" -o "$tmp/cal.gguf"
	check "--calib --format dat writes the legacy form" \
		slm-quant --calib "$tmp/cal.tok" --chunks 8 --format dat "$tmp/f32.slm" \
		-o "$tmp/d/cal.imatrix"
	cp "$tmp/cal.gguf" "$tmp/g/cal.imatrix"
	if have_py gguf && have_py numpy; then
		check "the GGUF imatrix reads with gguf's GGUFReader: keys, names, shapes" python3 -c '
import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
f = r.fields
s = lambda k: bytes(f[k].parts[f[k].data[0]]).decode()
assert s("general.type") == "imatrix", s("general.type")
assert s("imatrix.datasets") == "cal.tok"
assert int(f["imatrix.chunk_count"].parts[-1][0]) == 7 and int(f["imatrix.chunk_size"].parts[-1][0]) == 512
t = {x.name: x for x in r.tensors}
names = [x.name for x in r.tensors]
assert names == sorted(names, key=lambda n: (n.rsplit(".", 1)[0], n.endswith(".counts")))
assert len(t) == 2 * 7 * 30, len(t)
for n, x in t.items():
    assert x.tensor_type == gguf.GGMLQuantizationType.F32
    base = n.rsplit(".", 1)[0]
    if n.endswith(".in_sum2"):
        cols = 1536 if base.endswith("ffn_down.weight") else 576
        assert list(x.shape) == [cols, 1], (n, x.shape)
        assert (x.data >= 0).all()
    else:
        assert n.endswith(".counts") and list(x.shape) == [1, 1], n
        assert float(x.data.reshape(-1)[0]) == 7 * 512
' "$tmp/cal.gguf"
	else
		skip "the GGUF imatrix through GGUFReader" "no gguf or numpy"
	fi
	check "q4_0 --imatrix: the GGUF and dat forms give the same bundle" sh -c '
		slm-quant q4_0 --imatrix "$1/g/cal.imatrix" "$2" -o "$1/g.slm" &&
		slm-quant q4_0 --imatrix "$1/d/cal.imatrix" "$2" -o "$1/d.slm" &&
		cmp "$1/g.slm" "$1/d.slm"; rc=$?; rm -f "$1/g.slm" "$1/d.slm"; exit $rc' \
		sh "$tmp" "$tmp/f32.slm"
	if [ -f "$tmp/ll.py" ]; then
		if python3 "$tmp/ll.py" quantize-with "$tmp/f32.gguf" "$tmp/lli.gguf" q4_k_m \
			"$tmp/cal.gguf" > "$tmp/ll.log" 2>&1 &&
			slm-quant q4_k_m --no-awq --imatrix "$tmp/cal.gguf" "$tmp/f32.slm" -o "$tmp/qi.slm" &&
			slm-convert --to gguf "$tmp/qi.slm" -o "$tmp/qi.gguf"; then
			check "llama.cpp's quantizer with slm's GGUF imatrix: the same bytes" \
				python3 "$tmp/ll.py" same "$tmp/qi.gguf" "$tmp/lli.gguf"
		else
			fail "q4_k_m with slm's GGUF imatrix: quantize with both"
			tail -n 5 "$tmp/ll.log" | sed 's/^/# /'
		fi
		rm -f "$tmp/lli.gguf" "$tmp/qi.gguf" "$tmp/qi.slm"
	fi
	check "q4_k_m with it" slm-quant q4_k_m --imatrix "$tmp/cal.gguf" "$tmp/f32.slm" \
		-o "$tmp/q4i.slm"
	check "q4_k_m --calib in one step gives the same bundle but for the manifest" sh -c '
		slm-quant q4_k_m --calib "$1" --chunks 8 "$2" -o "$3" &&
		slm-convert --to gguf "$3" -o "$3.gguf" && slm-convert --to gguf "$4" -o "$4.gguf" &&
		python3 -c "
import sys, gguf
a, b = (gguf.GGUFReader(p).tensors for p in sys.argv[1:3])
sys.exit(0 if all(x.data.tobytes() == y.data.tobytes() for x, y in zip(a, b)) else 1)
" "$3.gguf" "$4.gguf"; rc=$?; rm -f "$3" "$3.gguf" "$4.gguf"; exit $rc' \
		sh "$tmp/cal.tok" "$tmp/f32.slm" "$tmp/q4c.slm" "$tmp/q4i.slm"
	check "q4_0 with it, with activation-aware scales (--json report)" \
		slm-quant q4_0 --json --imatrix "$tmp/cal.gguf" "$tmp/f32.slm" -o "$tmp/q40a.slm"
	check "--json: an alpha per group, the scaled tensors marked" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
g = [r for r in recs if "awq" in r]
assert len(g) == 90, len(g)
assert all(0 <= r["alpha"] <= 1 and r["error"] <= r["error_alpha0"] for r in g)
assert any(r["alpha"] > 0 for r in g)
a = {r["awq"]: r for r in g}
assert a["blk.3.attn_norm.weight"]["tensors"] == ["blk.3.attn_q.weight", "blk.3.attn_k.weight", "blk.3.attn_v.weight"]
t = {r["tensor"]: r for r in recs if "tensor" in r}
assert t["blk.3.attn_q.weight"].get("awq_alpha") == a["blk.3.attn_norm.weight"]["alpha"]
for name, r in a.items():
    if r["alpha"] > 0 and name.endswith("norm.weight"):
        assert t[name]["type"] == "f32"
' "$tmp/prev.err"
	check "q4_0 --imatrix --no-awq" slm-quant q4_0 --no-awq --imatrix "$tmp/cal.gguf" \
		"$tmp/f32.slm" -o "$tmp/q40i.slm"
	exit_is 64 "--awq without importances" slm-quant q4_0 --awq "$tmp/f32.slm" -o "$tmp/x.slm"
	if [ -x "$logits" ] && have_py numpy; then
		check "scales folded at alpha 0.5 into an f32 model: the same logits up to rounding" sh -c '
			slm-quant f32 --awq-alpha 0.5 --imatrix "$1" "$2" -o "$3" &&
			"$4" "$2" -t 2 -p all 1 504 3458 282 4649 314 253 1789 30 378 > "$3.a" &&
			"$4" "$3" -t 2 -p all 1 504 3458 282 4649 314 253 1789 30 378 > "$3.b" &&
			python3 -c "
import json, sys
import numpy as np
a, b = (json.load(open(p))[\"logits\"] for p in sys.argv[1:3])
d = max(float(np.abs(np.array(a[k]) - np.array(b[k])).max() / np.abs(np.array(a[k])).max()) for k in a)
same = all(np.argmax(a[k]) == np.argmax(b[k]) for k in a)
print(\"largest relative difference\", d)
sys.exit(0 if d < 2e-3 and same else 1)
" "$3.a" "$3.b"; rc=$?; rm -f "$3" "$3.a" "$3.b"; exit $rc' \
			sh "$tmp/cal.gguf" "$tmp/f32.slm" "$tmp/fold.slm" "$logits"
	else
		skip "the fold against the logits" "no $logits or numpy"
	fi
else
	skip "calibration" "no slm-tok or no $cal"
fi
within() { # within A B PERCENT: |A/B - 1| <= PERCENT%
	python3 -c 'import sys; a, b, p = map(float, sys.argv[1:]); sys.exit(0 if abs(a / b - 1) * 100 <= p else 1)' "$@"
}
below() { # below A B: A < B
	python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$@"
}
# llama.cpp's Q4_K_M of the same F32 GGUF, when llama-cpp-python is there
llq4=
if [ -f "$tmp/ll.py" ] && python3 "$tmp/ll.py" quantize "$tmp/f32.gguf" "$tmp/ll-q4.gguf" q4_k_m \
	> "$tmp/ll.log" 2>&1 && slm-convert -q "$tmp/ll-q4.gguf" -o "$tmp/ll-q4.slm"; then
	llq4="-m $tmp/ll-q4.slm"
fi
if command -v slm-perf >/dev/null 2>&1 && [ -r "$text" ] && [ -f "$tmp/q40a.slm" ] &&
	slm-quant q4_k_m "$tmp/f32.slm" -o "$tmp/q4.slm" &&
	slm-quant q4_0 "$tmp/f32.slm" -o "$tmp/q40.slm" &&
	slm-quant -q f32 "$tmp/q8.slm" -o "$tmp/q8w.slm" &&
	slm-perf ppl -q -t 2 -c 512 --json --kld "$tmp/f32.slm" -m "$tmp/f32.slm" \
		-m "$tmp/q8w.slm" -m "$tmp/q8.slm" -m "$tmp/q4.slm" -m "$tmp/q4i.slm" \
		-m "$tmp/q40.slm" -m "$tmp/q40i.slm" -m "$tmp/q40a.slm" $llq4 "$text" > "$tmp/ppl.json"; then
	# the figures for tests/data/quant/README
	python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    print("# %-10s ppl %8.4f  kld %.5f  top1 %5.1f%%" % (r["model"].rsplit("/", 1)[-1],
          r["ppl"], r["kld"], r["top1_pct"]))' "$tmp/ppl.json"
	set -- $(python3 -c '
import json, sys
print(*["%r %r" % (r["ppl"], r["kld"]) for r in map(json.loads, open(sys.argv[1]))])' "$tmp/ppl.json")
	f32=$1 q8w=$3 q8=$5 q4=$7 q4i=$9 q40=${11} q40i=${13} kq40i=${14} q40a=${15} kq40a=${16}
	ll=${17:-}
	check "Q8_0 weights (run in f32) perplexity $q8w within 0.2% of F32's $f32" within "$q8w" "$f32" 0.2
	check "Q8_0 run as Q8_0 perplexity $q8 within 0.5% of F32's $f32" within "$q8" "$f32" 0.5
	if slm-perf ppl -q -t 2 -c 512 --json --f32-act --kld "$tmp/f32.slm" -m "$tmp/q8.slm" \
		"$text" > "$tmp/ppl32.json"; then
		python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("# %-10s ppl %8.4f  kld %.5f  top1 %5.1f%%  (--f32-act)" % ("q8.slm", r["ppl"], r["kld"], r["top1_pct"]))
sys.exit(0 if r.get("f32_act") is True else 1)' "$tmp/ppl32.json" || fail "ppl --f32-act --json: no f32_act"
		q8f=$(python3 -c 'import json, sys; print(repr(json.load(open(sys.argv[1]))["ppl"]))' "$tmp/ppl32.json")
		check "Q8_0 run with --f32-act perplexity $q8f within 0.2% of F32's $f32" within "$q8f" "$f32" 0.2
		check "Q8_0 run with --f32-act perplexity $q8f within 0.01% of its weights dequantized to f32 ($q8w)" \
			within "$q8f" "$q8w" 0.01
	else
		fail "slm-perf ppl --f32-act"
	fi
	if [ -n "$ll" ]; then
		check "Q4_K_M perplexity $q4 within 0.5% of llama.cpp's Q4_K_M's $ll" within "$q4" "$ll" 0.5
	else
		skip "Q4_K_M against llama.cpp's" "no llama-cpp-python"
	fi
	check "Q4_K_M perplexity with importances $q4i below $q4 without (F32: $f32)" below "$q4i" "$q4"
	check "Q4_0 perplexity with importances $q40i below $q40 without" below "$q40i" "$q40"
	check "Q4_0 perplexity with importances and scales $q40a below $q40 without" below "$q40a" "$q40"
	check "Q4_0 KL divergence from F32 with scales $kq40a below with importances alone $kq40i" \
		below "$kq40a" "$kq40i"
else
	skip "perplexity" "no slm-perf, no $text or no calibrated model"
fi

plan
finish
