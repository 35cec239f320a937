#!/bin/sh
# bad-input.sh - damaged bundles and token streams on the command line:
# each must fail with exit 65 (EX_DATAERR) and exactly one line on stderr
# naming the file and the position; extract must write nothing outside
# (or inside) its -C directory, and a failed build or install must leave
# no file behind.
#
# Environment (from make check): top_srcdir, top_builddir, PATH with
# slm-pack.
# Exit 0 pass, 1 fail, 99 error. The bundle parts need python3 (tarfile);
# without it they are skipped.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
. "$top_srcdir/tests/lib.sh"
mkbundle=$top_builddir/tests/mkbundle
streamcat=$top_builddir/tests/streamcat
for p in "$mkbundle" "$streamcat"; do
	if [ ! -x "$p" ]; then
		echo "bad-input: $p not built" >&2
		exit 99
	fi
done
. "$top_srcdir/tests/pack-lib.sh"
have_python=
command -v python3 >/dev/null 2>&1 && have_python=1

scratch
pack_init "$tmp"

fsize() { wc -c < "$1" | tr -d ' '; }

# expect DESC CODE FILE POSITION-REGEX COMMAND...: COMMAND exits CODE with
# exactly one line on stderr that starts with the program's name (slm-pack
# or streamcat) and
# contains FILE and matches POSITION-REGEX (extended grep).
expect() {
	desc=$1 code=$2 file=$3 pos=$4
	shift 4
	nolsan "$@" > out 2> err
	rc=$?
	if [ $rc -eq "$code" ] && [ "$(lines err)" -eq 1 ] &&
		grep -qE '^(slm-pack|streamcat): ' err && grep -qF -- "$file" err &&
		grep -qE -- "$pos" err; then
		pass "$desc: exit $code, one line naming the file and position"
	else
		fail "$desc: exit $code, one line naming the file and position"
		echo "#   exit $rc, stderr:"
		sed 's/^/#   /' err
	fi
}
# flip FILE OFFSET: change one bit of a byte in place
flip() {
	python3 -c "
import sys
f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2])); b = f.read(1)
f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x01]))" "$1" "$2"
}
# tree DIR: every path under DIR, sorted
tree() { (cd "$1" && find . | LC_ALL=C sort); }

"$mkbundle" good.slm && "$mkbundle" --gzip goodz.slm || exit 99
size=$(fsize good.slm)
off='offset [0-9]+'

# ===================== bundles =====================

# ---- truncated ----
for cut in 100 512 1000 1536 $((size / 2)) $((size / 2 + 3)) $((size - 1100)) $((size - 1024)); do
	head -c $cut good.slm > trunc.slm
	expect "truncated to $cut of $size bytes: info" 65 trunc.slm "$off" \
		"$slmpack" info trunc.slm
	expect "truncated to $cut of $size bytes: verify" 65 trunc.slm "$off" \
		"$slmpack" verify trunc.slm
done
head -c $(($(fsize goodz.slm) / 2)) goodz.slm > truncz.slm
expect "gzip bundle cut in half" 65 truncz.slm "$off" "$slmpack" verify truncz.slm
printf '\037\213\010\000\000\000\000\000\000\003this is not deflate data at all' > garbage.gz
expect "gzip header and garbage" 65 garbage.gz "$off" "$slmpack" info garbage.gz
printf 'just some text\n' > text.slm
expect "a text file" 65 text.slm "$off" "$slmpack" info text.slm
expect "standard input with a truncated bundle" 65 "standard input" "$off" \
	sh -c '"$0" info - < trunc.slm' "$slmpack"
expect "missing file: exit 66" 66 no-such.slm "" "$slmpack" info no-such.slm

if [ -n "$have_python" ]; then
# ---- a flipped byte in a tensor ----
q=tensors/blk.0.attn_q.weight
qoff=$(bt member good.slm $q)
cp good.slm flip.slm
flip flip.slm $((qoff + 100))
"$slmpack" info flip.slm > out 2> err
check "flipped tensor byte: info still works (contents are not hashed)" test $? -eq 0
expect "flipped tensor byte: verify" 65 flip.slm "offset $qoff: member '$q'" \
	"$slmpack" verify flip.slm
expect "flipped tensor byte: install" 65 flip.slm "$off" "$slmpack" install flip.slm
check "flipped tensor byte: install leaves the store empty" \
	test -z "$(ls -A "$XDG_DATA_HOME/slm/models" 2>/dev/null)"
mkdir out-dir
expect "flipped tensor byte: build" 65 flip.slm "$off.*$q" \
	"$slmpack" build flip.slm -o out-dir/rebuilt.slm
check "flipped tensor byte: build writes nothing" test -z "$(ls -A out-dir)"
# a byte of the manifest (inside the "llama" string) and of its checksum
moff=$(bt member good.slm manifest.msgpack)
loff=$(python3 -c "import sys; print(open('good.slm','rb').read().index(b'llama'))")
cp good.slm flipm.slm
flip flipm.slm $((loff + 2))
expect "flipped manifest byte" 65 flipm.slm "offset $moff: manifest checksum" \
	"$slmpack" info flipm.slm
cp good.slm flips.slm
flip flips.slm $(bt member good.slm manifest.sha256)
expect "flipped manifest.sha256 byte" 65 flips.slm "checksum" "$slmpack" info flips.slm
cp good.slm fliph.slm
flip fliph.slm $((qoff - 512 + 2))
expect "flipped tar header byte" 65 fliph.slm "offset $((qoff - 512)): tar header checksum" \
	"$slmpack" info fliph.slm

# ---- the manifest lies (checksums made to agree) ----
bt rewrite good.slm same.slm same
"$slmpack" verify same.slm
check "control: re-encoded manifest with fixed checksums verifies" test $? -eq 0
bt rewrite good.slm lie.slm shape blk.0.attn_q.weight '[64, 65]'
expect "manifest lies about a shape: info" 65 lie.slm "$off: tensor 'blk.0.attn_q.weight' needs" \
	"$slmpack" info lie.slm
expect "manifest lies about a shape: verify" 65 lie.slm "$off" "$slmpack" verify lie.slm
bt rewrite good.slm lie2.slm shape output_norm.weight '[32]'
expect "manifest lies about a shape (smaller)" 65 lie2.slm "$off" "$slmpack" info lie2.slm
bt rewrite good.slm lie3.slm size notes/README 14
expect "manifest lies about a member's size" 65 lie3.slm "$off: member 'notes/README'" \
	"$slmpack" info lie3.slm
mkdir lie-out
expect "manifest lie: extract" 65 lie.slm "$off" "$slmpack" extract lie.slm -C lie-out
check "manifest lie: extract writes nothing" test -z "$(ls -A lie-out)"
expect "manifest lie: build" 65 lie.slm "$off" "$slmpack" build lie.slm -o lie-out/x.slm
check "manifest lie: build writes nothing" test -z "$(ls -A lie-out)"

# ---- hostile tar entries: nothing may be written anywhere ----
mkdir -p jail/target
bt rewrite good.slm abs.slm insert "$tmp/jail/abs-pwned"
bt rewrite good.slm dotdot.slm insert ../dotdot-pwned
bt rewrite good.slm dotdot2.slm insert tensors/../../dotdot2-pwned
bt rewrite good.slm sym.slm symlink tensors "$tmp/jail"
bt rewrite good.slm hard.slm hardlink notes "$tmp/jail/x"
tree jail > before
for f in abs dotdot dotdot2 sym hard; do
	expect "tar member $f: info" 65 $f.slm "$off: member '" "$slmpack" info $f.slm
	expect "tar member $f: extract" 65 $f.slm "$off" \
		"$slmpack" extract $f.slm -C jail/target
	(cd jail/target && nolsan "$slmpack" extract ../../$f.slm) > /dev/null 2>&1
done
tree jail > after
check "hostile members: extract changed nothing in or around its directory" \
	cmp -s before after
check "hostile members: nothing escaped" \
	test ! -e jail/abs-pwned -a ! -e dotdot-pwned -a ! -e jail/dotdot-pwned -a ! -e dotdot2-pwned
grep -q "unsafe" err 2>/dev/null
expect "absolute member: says unsafe" 65 abs.slm "unsafe" "$slmpack" verify abs.slm
expect "symlink member: says entry type" 65 sym.slm "entry type" "$slmpack" verify sym.slm
bt rewrite good.slm dup.slm rename tensors/output_norm.weight tensors/token_embd.weight
expect "duplicate member" 65 dup.slm "$off: duplicate member" "$slmpack" info dup.slm
# a 4 GiB size field in a member header (checksum fixed)
python3 -c "
import sys
d = bytearray(open('good.slm', 'rb').read()); h = int(sys.argv[1]) - 512
d[h + 124:h + 135] = b'40000000000'
d[h + 148:h + 156] = b'        '
d[h + 148:h + 155] = b'%06o\0' % sum(d[h:h + 512])
open('huge.slm', 'wb').write(d)" $qoff
expect "4 GiB size field" 65 huge.slm "$off.*4294967296" "$slmpack" info huge.slm

# ---- build failures leave nothing ----
mkdir build-out
for f in trunc lie flip abs; do
	nolsan "$slmpack" build $f.slm -o build-out/out.slm > /dev/null 2>&1
	check "build from $f.slm: exit 65" test $? -eq 65
done
nolsan "$slmpack" build good.slm -o build-out/missing/out.slm > out 2> err
check "build into a missing directory: exit 73" test $? -eq 73
nolsan "$slmpack" build good.slm --template no-such-template -o build-out/out.slm > out 2> err
check "build with a missing template: exit 66" test $? -eq 66
check "failed builds left no file (not even a temporary one)" test -z "$(ls -A build-out)"
else
	echo "# skipped the damaged-bundle tests: no python3"
fi

# ===================== token streams =====================

hdr='\202\244type\246header\247version\001'	# {"type":"header","version":1}
hlen=22
printf '\301' > garbage.mp
expect "stream: garbage byte 0xc1" 65 garbage.mp "byte 0 \(record 1\)" \
	"$streamcat" garbage.mp
printf "$hdr\\203\\242id\\001\\246tokens\\222\\001" > trunc.mp
expect "stream: truncated record" 65 trunc.mp "byte $hlen \(record 2\).*truncated" \
	"$streamcat" --json trunc.mp
check "stream: the record before the damage was passed on" \
	test "$(cat out)" = '{"type":"header","version":1}'
printf "$hdr\\203\\242id\\001\\246tokens\\221\\377\\244type\\243seq" > neg.mp
expect "stream: seq with a negative token" 65 neg.mp "byte $hlen \(record 2\).*tokens" \
	"$streamcat" neg.mp
printf "$hdr$hdr\\202\\244type\\243tok\\245token\\001" > noid.mp
expect "stream: tok without id" 65 noid.mp "byte $((2 * hlen)) \(record 3\).*id" \
	"$streamcat" noid.mp
printf '\222\001\002' > array.mp
expect "stream: record that is not a map" 65 array.mp "byte 0.*not a map" \
	"$streamcat" array.mp
printf '\202\244type\246header\247version\143' > v99.mp
expect "stream: header version 99" 65 v99.mp "byte 0.*version" "$streamcat" v99.mp
printf '{"type":"header","version":1}\n\n{"type":"seq","id":1,"tokens":["a"]}\n' > shape.jsonl
expect "stream: JSON record of the wrong shape" 65 shape.jsonl "line 3.*tokens" \
	"$streamcat" shape.jsonl
printf '{"type":"header","version":1}\n{"type":"seq",\n' > broken.jsonl
expect "stream: JSON line that is not JSON" 65 broken.jsonl "line 2" \
	"$streamcat" broken.jsonl
printf '{"type":"bogus"}\n' > bogus.jsonl
expect "stream: unknown record type" 65 "standard input" "line 1.*unknown" \
	sh -c '"$0" < bogus.jsonl' "$streamcat"
expect "stream: missing file: exit 66" 66 no-such.mp "" "$streamcat" no-such.mp

# a 4 GiB length prefix: refused from the 5 header bytes, at once, while
# the writer still holds the pipe open
printf "$hdr\\201\\241x\\333\\377\\377\\377\\377" > huge.mp
expect "stream: str32 with a 4 GiB length" 65 huge.mp "byte $((hlen + 3)) \(record 2\).*limit" \
	"$streamcat" huge.mp
printf '\335\377\377\377\377' > huge-array.mp
expect "stream: array32 with 0xFFFFFFFF items" 65 huge-array.mp "byte 0.*limit" \
	"$streamcat" huge-array.mp
rm -f sent-more
( cat huge.mp; sleep 3; : > sent-more ) |
	{ nolsan "$streamcat" > /dev/null 2> err; echo $? > rc; test -e sent-more && : > late; }
check "stream: 4 GiB prefix refused without waiting for more input" \
	test "$(cat rc)" = 65 -a ! -e late

plan
finish
