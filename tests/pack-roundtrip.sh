#!/bin/sh
# pack-roundtrip.sh - slm-pack on bundles made by tests/mkbundle: info
# (text and --json), verify, extract, build (options, gzip, draft,
# determinism), install into a private store, list, and model resolution.
# Facts are checked against an independent reading of the bundle
# (tests/bundletool.py: Python's tarfile and a small msgpack decoder).
#
# Environment (from make check): top_srcdir, top_builddir, PATH with
# slm-pack.
# Exit 0 pass, 1 fail, 77 skip (no python3), 99 error.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
. "$top_srcdir/tests/lib.sh"
mkbundle=$top_builddir/tests/mkbundle
if [ ! -x "$mkbundle" ]; then
	echo "pack-roundtrip: $mkbundle not built" >&2
	exit 99
fi
. "$top_srcdir/tests/pack-lib.sh"
if ! command -v python3 >/dev/null 2>&1; then
	echo "pack-roundtrip: python3 not found, skipping" >&2
	exit 77
fi

scratch
pack_init "$tmp" # a private store; no model from the caller's environment

# run COMMAND...: status in $rc, output in out, errors in err
run() {
	"$@" > out 2> err
	rc=$?
}
# py EXPR [ARGS...]: evaluate a Python expression on j = the JSON in out
py() {
	expr=$1; shift
	python3 -c "import json, sys; j = json.load(open('out')); sys.exit(0 if ($expr) else 1)" "$@"
}

# ---- the bundles ----
"$mkbundle" b.slm && "$mkbundle" --gzip bz.slm && \
	"$mkbundle" --seed 2 --name draft-model d.slm
check "mkbundle makes a plain, a gzip and a draft bundle" test $? -eq 0
params=$(bt check b.slm)
check "independent check of the bundle (tar, manifest, sha256s): $params params" \
	test -n "$params" -a "$params" -gt 0
check "independent check of the gzip bundle" test "$(bt check bz.slm)" = "$params"

# ---- info ----
run "$slmpack" info b.slm
check "info: exit 0, nothing on stderr" test $rc -eq 0 -a ! -s err
check "info: architecture" grep -q '^architecture: *llama$' out
check "info: parameters = sum of tensor elements ($params)" \
	grep -q "^parameters: *$params\$" out
check "info: name" grep -q '^name: *tiny-test$' out
check "info: every dtype listed" sh -c 'for t in f16 q8_0 q4_0 q4_k f32 bf16; do
	grep -q "^  $t  *1 tensors" out || exit 1; done'
run "$slmpack" info b.slm --json
check "info --json: exit 0, one line" test $rc -eq 0 -a "$(lines out)" -eq 1
check "info --json: arch, name, params, not compressed" \
	py "j['arch'] == 'llama' and j['name'] == 'tiny-test' and j['params'] == int(sys.argv[1]) and j['compressed'] is False" "$params"
check "info --json: params = sum over tensors of their shape's product" \
	py "j['params'] == sum(__import__('math').prod(t['shape']) for t in j['tensors'])"
check "info --json: dtypes and their byte counts" \
	py "{k: (v['count'], v['bytes']) for k, v in j['dtypes'].items()} == {'f16': (1, 768), 'q8_0': (1, 4352), 'q4_0': (1, 1152), 'q4_k': (1, 288), 'f32': (1, 256), 'bf16': (1, 128)}"
check "info --json: type is the dtype with most bytes" py "j['type'] == 'q8_0'"
bt manifest b.slm > man.json
check "info --json: tensors as in the manifest (name, dtype, shape)" \
	python3 -c "
import json
m = json.load(open('man.json')); j = json.load(open('out'))
assert [(t['name'], t['dtype'], t['shape']) for t in m['tensors']] == \
       [(t['name'], t['dtype'], t['shape']) for t in j['tensors']]
assert j['hparams'] == m['hparams'] and j['generation'] == m['generation']
assert j['chat_template'] == m['chat_template']
assert j['tokenizer']['tokens'] == len(m['tokenizer']['tokens'])
assert j['file_size'] == __import__('os').path.getsize('b.slm')"
run "$slmpack" info --json bz.slm
check "info --json of the gzip bundle: compressed, same params" \
	py "j['compressed'] is True and j['params'] == int(sys.argv[1])" "$params"
run "$slmpack" info -m b.slm
check "info -m BUNDLE" grep -q '^architecture: *llama$' out

# ---- verify ----
run "$slmpack" verify b.slm
check "verify: exit 0 and silent" test $rc -eq 0 -a ! -s out -a ! -s err
run "$slmpack" verify bz.slm
check "verify gzip bundle: exit 0 and silent" test $rc -eq 0 -a ! -s out -a ! -s err
run "$slmpack" verify -v b.slm
check "verify -v: says so on stderr" test $rc -eq 0 -a ! -s out -a -s err

# ---- extract ----
bt sums b.slm > sums
mkdir x
run "$slmpack" extract b.slm -C x
check "extract all: exit 0" test $rc -eq 0 -a ! -s out
check "extract all: every member's sha256 is the manifest's" \
	sh -c 'cd x && sha256sum -c --quiet ../sums'
check "extract all: manifest.sha256 checks the manifest" \
	sh -c 'cd x && sha256sum -c --quiet manifest.sha256'
check "extract all: nothing else ($(find x -type f | wc -l) files)" \
	test "$(find x -type f | wc -l)" -eq $(($(lines sums) + 2))
mkdir xz
"$slmpack" extract bz.slm -C xz
check "extract from the gzip bundle: same files" diff -r x xz
mkdir y
run "$slmpack" extract b.slm notes/README tensors/output_norm.weight -C y
check "extract two members: exactly those" \
	test $rc -eq 0 -a "$(cd y && find . -type f | sort | tr '\n' ' ')" = "./notes/README ./tensors/output_norm.weight "
check "extract two members: their bytes" \
	sh -c 'cmp -s x/notes/README y/notes/README && cmp -s x/tensors/output_norm.weight y/tensors/output_norm.weight'
check "extracted README is the text mkbundle wrote" \
	test "$(cat y/notes/README)" = "hello bundle"
mkdir z
run nolsan "$slmpack" extract b.slm no/such/member -C z
check "extract a missing member: exit 64, nothing written" \
	test $rc -eq 64 -a -s err -a -z "$(ls -A z)"
run nolsan "$slmpack" extract b.slm -C does-not-exist
check "extract into a missing directory: exit 73" test $rc -eq 73 -a ! -e does-not-exist
mkdir w
(cd w && "$slmpack" extract ../b.slm notes/README)
check "extract without -C: into the current directory" cmp -s w/notes/README x/notes/README

# ---- build ----
run "$slmpack" build b.slm -o same.slm
check "build, no changes: exit 0, silent" test $rc -eq 0 -a ! -s out -a ! -s err
check "build, no changes: byte-identical to the original" cmp -s b.slm same.slm
"$slmpack" build bz.slm -o fromgz.slm
check "build from the gzip bundle: byte-identical to the plain one" cmp -s b.slm fromgz.slm
"$slmpack" build b.slm --gzip -o gz.slm
check "build --gzip: byte-identical to mkbundle --gzip" cmp -s bz.slm gz.slm
"$slmpack" build b.slm > stdout.slm
check "build to standard output: the same bytes" cmp -s b.slm stdout.slm

printf 'TEMPLATE {{ messages }}\n\xc3\xa9\n' > tmpl.txt
opts="--name renamed --set generation.temperature=0.2 --set foo.bar=baz --set hparams.n_layer=3 --template tmpl.txt"
run "$slmpack" build b.slm -o new.slm $opts
check "build with --name/--set/--template: exit 0" test $rc -eq 0 -a ! -s err
"$slmpack" build b.slm -o new2.slm $opts
check "build with options twice: byte-identical" cmp -s new.slm new2.slm
run "$slmpack" info --json new.slm
check "build: name, generation.temperature=0.2 (a number), top_k kept" \
	py "j['name'] == 'renamed' and j['generation'] == {'temperature': 0.2, 'top_k': 40}"
check "build: --set hparams.n_layer=3, other hparams kept" \
	py "j['hparams']['n_layer'] == 3 and j['hparams']['n_embd'] == 64"
check "build: chat template from the file" \
	py "j['chat_template'] == open('tmpl.txt', encoding='utf-8').read()"
bt manifest new.slm > out
check "build: --set foo.bar=baz makes a map with a string" py "j['foo'] == {'bar': 'baz'}"
check "build: tensors and their bytes unchanged" \
	sh -c 'bt() { python3 "$0" "$@"; }; bt check new.slm >/dev/null && test "$(bt sums new.slm)" = "$(cat sums)"' \
	"$top_srcdir/tests/bundletool.py"
run "$slmpack" verify new.slm
check "build: result verifies" test $rc -eq 0

run "$slmpack" build b.slm --gzip --name zipped -o newz.slm
check "build --gzip: gzip magic" test "$(od -An -tx1 -N2 newz.slm | tr -d ' ')" = 1f8b
run "$slmpack" info --json newz.slm
check "build --gzip: info says compressed, name set" \
	py "j['compressed'] is True and j['name'] == 'zipped'"

run "$slmpack" build b.slm --draft d.slm -o withdraft.slm
check "build --draft: exit 0" test $rc -eq 0 -a ! -s err
run "$slmpack" info --json withdraft.slm
check "build --draft: manifest names the draft" \
	py "j['draft'] == {'member': 'draft.slm', 'name': 'draft-model', 'arch': 'llama'}"
mkdir dx
"$slmpack" extract withdraft.slm draft.slm -C dx
check "build --draft: the draft is carried byte for byte" cmp -s dx/draft.slm d.slm
run "$slmpack" verify withdraft.slm
check "build --draft: result verifies" test $rc -eq 0
run "$slmpack" build withdraft.slm -o rebuilt.slm
check "rebuilding a bundle with a draft keeps it identical" cmp -s withdraft.slm rebuilt.slm
run nolsan "$slmpack" build b.slm --draft withdraft.slm -o nested.slm
check "build --draft with a draft that has a draft: exit 65, no output" \
	test $rc -eq 65 -a ! -e nested.slm

for bad in "--set arch=x" "--set tensors=1" "--set version=2" "--set noequals" \
	"--set =1" "--name ../evil" "--name .hidden"; do
	run nolsan "$slmpack" build b.slm -o refused.slm $bad
	check "build $bad: exit 64, one line on stderr, no output" \
		test $rc -eq 64 -a "$(lines err)" -eq 1 -a ! -e refused.slm
done
run nolsan "$slmpack" build b.slm -o refused.slm --template no-such-file
check "build --template missing: exit 66, no output" test $rc -eq 66 -a ! -e refused.slm
check "no temporary files left in the working directory" \
	test -z "$(ls -A | grep '^\.')"

# ---- install, list, resolution ----
store=$XDG_DATA_HOME/slm/models
run "$slmpack" list
check "list with no store: exit 0, no output" test $rc -eq 0 -a ! -s out -a ! -s err
run "$slmpack" install b.slm
check "install: exit 0, silent" test $rc -eq 0 -a ! -s out -a ! -s err
check "install: stored under its manifest name, byte for byte" cmp -s b.slm "$store/tiny-test.slm"
check "install: first install becomes the default" \
	test "$(readlink "$store/default.slm")" = tiny-test.slm
"$slmpack" install new.slm
check "install second: stored as renamed.slm, default unchanged" \
	test -f "$store/renamed.slm" -a "$(readlink "$store/default.slm")" = tiny-test.slm
"$slmpack" install --name other --default bz.slm
check "install --name other --default: default moves" \
	test -f "$store/other.slm" -a "$(readlink "$store/default.slm")" = other.slm
check "install: no temporary files in the store" \
	test "$(ls -A "$store" | sort | tr '\n' ' ')" = "default.slm other.slm renamed.slm tiny-test.slm "
run nolsan "$slmpack" install --name default b.slm
check "install --name default: exit 64" test $rc -eq 64 -a ! -L "$store/default.slm.tmp"
run "$slmpack" list
check "list: exit 0, a header and three models" test $rc -eq 0 -a "$(lines out)" -eq 4
check "list: the default is marked" grep -q '^\* *other  *llama  *'"$params" out
check "list: the others are not" \
	sh -c "grep -q '^ *renamed  *llama' out && grep -q '^ *tiny-test  *llama' out && test \$(grep -c '^\*' out) -eq 1"
run "$slmpack" list --json
check "list --json: one JSON object per model, sorted by name" \
	python3 -c "
import json, sys
ms = [json.loads(l) for l in open('out')]
assert [m['name'] for m in ms] == ['other', 'renamed', 'tiny-test'], ms
assert [m['default'] for m in ms] == [True, False, False]
assert all(m['arch'] == 'llama' and m['params'] == int(sys.argv[1]) for m in ms)
assert ms[0]['path'].endswith('/other.slm')
" "$params"
run "$slmpack" info --json -m renamed
check "-m NAME finds the model in the store" py "j['name'] == 'renamed'"
run "$slmpack" info --json renamed
check "a bare NAME argument finds it too" py "j['name'] == 'renamed'"
SLM_MODEL=renamed "$slmpack" info --json > out 2> err
check "SLM_MODEL=NAME" py "j['name'] == 'renamed'"
SLM_MODEL=$tmp/withdraft.slm "$slmpack" info --json > out 2> err
check "SLM_MODEL=PATH" py "'draft' in j"
run "$slmpack" info --json
check "no -m, no SLM_MODEL: the store's default" \
	py "j['compressed'] is True and j['file'].endswith('/default.slm')"
SLM_MODEL=renamed "$slmpack" info --json -m tiny-test > out 2> err
check "-m wins over SLM_MODEL" py "j['name'] == 'tiny-test'"
run nolsan "$slmpack" info -m no-such-model
check "-m unknown name: exit 66, one line" test $rc -eq 66 -a "$(lines err)" -eq 1
run "$slmpack" verify -m tiny-test
check "verify -m NAME" test $rc -eq 0 -a ! -s err
nolsan env XDG_DATA_HOME="$tmp/empty" "$slmpack" info > out 2> err
check "no model anywhere: exit 64, one line" test $? -eq 64 -a "$(lines err)" -eq 1

# ---- terminal, usage ----
if command -v script >/dev/null 2>&1 &&
	script -qec true /dev/null >/dev/null 2>&1; then
	nolsan script -qec "'$slmpack' build '$tmp/b.slm'" /dev/null > tty.out 2>&1
	st=$?
	check "build to a terminal: refused, exit 64" test $st -eq 64
	check "build to a terminal: says why, writes no bundle" \
		sh -c "grep -q 'terminal' tty.out && ! grep -q 'manifest' tty.out"
else
	echo "# skipped: no usable script(1) for the terminal check"
fi
run "$slmpack" --version
check "--version: exit 0, 'slm-pack (slm) VERSION'" \
	sh -c "test $rc -eq 0 && grep -q '^slm-pack (slm) [0-9]' out"
run "$slmpack" --help
check "--help: exit 0, usage on stdout" sh -c "test $rc -eq 0 && grep -q 'usage' out && test ! -s err"
run "$slmpack" info --help
check "COMMAND --help: exit 0" test $rc -eq 0 -a -s out
run nolsan "$slmpack" frobnicate
check "unknown command: exit 64, message on stderr" test $rc -eq 64 -a -s err -a ! -s out
run nolsan "$slmpack"
check "no command: exit 64" test $rc -eq 64
run nolsan "$slmpack" info --no-such-option b.slm
check "unknown option: exit 64" test $rc -eq 64
run nolsan "$slmpack" info b.slm extra-arg
check "extra argument: exit 64" test $rc -eq 64

plan
finish
