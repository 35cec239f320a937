#!/bin/sh
# fetch.sh - slm-fetch against a real HTTP server: nginx on loopback serving
# a Hub-shaped tree (tests/data/fetch: the server configuration, model API
# answers, small repository files; the large files are generated here).
# Fresh downloads into an empty huggingface_hub cache and its layout; a
# second run that downloads nothing; revisions sharing blobs; the default
# choice of files (safetensors, shards by index, one GGUF) and
# --include/--exclude; a tar stream; files the API does not describe (HEAD
# and X-Linked-Etag); a transfer killed mid-file that resumes with Range; a
# corrupted blob rejected and never linked; 401 without a token and 200
# with it, the token kept from another origin and out of -v output; 404
# repository and revision; retries of 503; offline mode with a warm and a
# cold cache; plain http:// URLs, Hub resolve URLs, file:// URLs and
# directories. Nothing reaches beyond 127.0.0.1.
#
# Needs nginx (Debian: nginx-light); skips (exit 77) without it.

set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/lib.sh"
data=$top_srcdir/tests/data/fetch

command -v slm-fetch >/dev/null 2>&1 || skip_all "slm-fetch is not built"
NGINX=$(command -v nginx 2>/dev/null)
for p in /usr/sbin/nginx /usr/local/sbin/nginx; do
	[ -z "$NGINX" ] && [ -x "$p" ] && NGINX=$p
done
[ -n "$NGINX" ] || skip_all "nginx not found (Debian package nginx-light)"

stop_nginx() {
	[ -f "$tmp/nginx.pid" ] || return 0
	pid=$(cat "$tmp/nginx.pid")
	kill "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}
scratch stop_nginx

# ok STATUS DESCRIPTION: lib.sh's, and a failure shows $tmp/err (why)
ok() {
	if [ "$1" -eq 0 ]; then
		pass "$2"
	else
		fail "$2"
		[ -s "$tmp/err" ] && sed 's/^/# /' "$tmp/err"
	fi
}

# ---- the served tree -----------------------------------------------------
www=$tmp/www
mkdir -p "$www/blobs" "$www/files" "$tmp/tmp" || exit 99
cp -R "$data/api" "$www/" || exit 99

# gen TEXT SIZE [MAGIC]: the deterministic content of a large file
gen() {
	{
		[ -n "${3:-}" ] && printf '%s' "$3"
		yes "slm-fetch test blob $1"
	} | head -c "$2"
}
sha256() { sha256sum "$1" | cut -d' ' -f1; }
gitsha1() { { printf 'blob %d\000' "$(wc -c <"$1")"; cat "$1"; } | sha1sum | cut -d' ' -f1; }

# blob TEXT SIZE [MAGIC]: generate into blobs/ by sha256; prints the id
blob() {
	gen "$@" >"$tmp/gen" || exit 99
	id=$(sha256 "$tmp/gen")
	grep -q "\"$id\"" "$www"/api/models/test/*/revision/* ||
		{ echo "Bail out! fixture $1: sha256 $id is in no API answer"; exit 99; }
	mv "$tmp/gen" "$www/blobs/$id"
	echo "$id"
}
for f in "$data"/files/*; do
	cp "$f" "$www/blobs/$(gitsha1 "$f")" || exit 99
done
tiny=$(blob tiny 300000)
q2=$(blob q2 3000 GGUF)
q4=$(blob q4 5000 GGUF)
blob q8 9000 GGUF >/dev/null
blob f16 17000 GGUF >/dev/null
blob mmproj 2000 GGUF >/dev/null
blob consolidated 8000 >/dev/null
shard1=$(blob shard1 4000)
shard2=$(blob shard2 4000)
private=$(blob private 20000)
slow=$(blob slow 1048576)
flaky=$(blob flaky 10000)
good=$(blob good 5000)
gen bad 5000 >"$www/blobs/$good" # served in its place: corrupt
cp "$www/blobs/$q4" "$www/files/tiny.gguf"
cp "$data/files/config.json" "$www/files/config.json"
config=$(gitsha1 "$data/files/config.json")
onnx=$(gitsha1 "$data/files/model.onnx")

c_tiny=405f37a863cb859ff75cea67230ee1047abff7f4
c_tiny_v1=0f729148e37d91fe5add3295ad608707d58166f7
c_corrupt=853eb6c51d98a73270b429be3f8afe4ba51c7c04

# ---- nginx on two free loopback ports -----------------------------------
user=
[ "$(id -u)" -eq 0 ] && user="user root;"
# -e (1.19.5): the error log before the configuration is read
elog=
"$NGINX" -h 2>&1 | grep -q '^ *-e ' && elog="-e $tmp/error.log"
started=
for try in 1 2 3 4 5 6 7 8; do
	port=$(($(od -An -N2 -tu2 /dev/urandom) % 20000 + 20000))
	port2=$((port + 1))
	sed -e "s|@TMP@|$tmp|g" -e "s|@PORT@|$port|g" -e "s|@PORT2@|$port2|g" \
		-e "s|@USER@|$user|" "$data/nginx.conf.in" >"$tmp/nginx.conf" || exit 99
	# shellcheck disable=SC2086
	if "$NGINX" -p "$tmp/" -c "$tmp/nginx.conf" $elog 2>"$tmp/nginx.err"; then
		started=1
		break
	fi
	grep -q "in use" "$tmp/nginx.err" "$tmp/error.log" 2>/dev/null || break
done
if [ -z "$started" ]; then
	echo "Bail out! nginx did not start:"
	sed 's/^/# /' "$tmp/nginx.err" "$tmp/error.log" 2>/dev/null
	exit 99
fi

# ---- the environment of every run: this server, this cache --------------
unset HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_TOKEN HUGGING_FACE_HUB_TOKEN \
	HF_TOKEN_PATH HF_HUB_OFFLINE XDG_CACHE_HOME HF_HUB_DOWNLOAD_TIMEOUT \
	http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
HF_ENDPOINT=http://127.0.0.1:$port
HF_HOME=$tmp/hf
SLM_FETCH_RETRY_BASE_MS=20
NO_PROXY='*'
no_proxy='*'
export HF_ENDPOINT HF_HOME SLM_FETCH_RETRY_BASE_MS NO_PROXY no_proxy
cache=$HF_HOME/hub

log=$tmp/access.log
cdn=$tmp/cdn.log
content() { cat "$log" "$cdn" 2>/dev/null | grep -cE '^GET /(blobs|raw|slow|flaky)/'; }
requests() { cat "$log" "$cdn" 2>/dev/null | wc -l; }

# same DIR FILE BLOB...: each FILE under DIR has the content of its blob
same() {
	d=$1
	shift
	while [ $# -ge 2 ]; do
		cmp -s "$d/$1" "$www/blobs/$2" || { echo "$d/$1 differs" >>"$tmp/err"; return 1; }
		shift 2
	done
}
# names DIR: the files under DIR, sorted, on one line
names() { (cd "$1" && find . -type f -o -type l | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' '); }
# one_line FILE PATTERN: FILE is one line matching PATTERN
one_line() { [ "$(wc -l <"$1")" -eq 1 ] && grep -q "$2" "$1"; }

small=$(for f in generation_config special_tokens_map tokenizer tokenizer_config; do
	printf '%s.json %s ' "$f" "$(gitsha1 "$data/files/$f.json")"; done)

# ---- a fresh download ---------------------------------------------------
: >"$tmp/err"
slm-fetch -q test/tiny -o "$tmp/o1" 2>"$tmp/err"
ok $? "test/tiny: downloads into an empty cache"
expect="config.json generation_config.json model.safetensors special_tokens_map.json tokenizer.json tokenizer_config.json "
[ "$(names "$tmp/o1")" = "$expect" ]
ok $? "test/tiny: the default files, no README, .gitattributes or onnx/"
# shellcheck disable=SC2086
same "$tmp/o1" config.json "$config" model.safetensors "$tiny" $small
ok $? "test/tiny: every file has its content"

repo=$cache/models--test--tiny
[ "$(cat "$repo/refs/main")" = "$c_tiny" ] && [ "$(wc -c <"$repo/refs/main")" -eq 40 ]
ok $? "cache: refs/main holds the commit"
[ "$(readlink "$repo/snapshots/$c_tiny/model.safetensors")" = "../../blobs/$tiny" ] &&
	[ "$(readlink "$repo/snapshots/$c_tiny/config.json")" = "../../blobs/$config" ]
ok $? "cache: snapshots/COMMIT/FILE are relative links to blobs/ (sha256, git sha1)"
[ "$(ls "$repo/blobs" | wc -l)" -eq 6 ] && ! ls "$repo/blobs" | grep -q incomplete &&
	[ "$(names "$repo/snapshots/$c_tiny")" = "$expect" ]
ok $? "cache: six blobs, six links, nothing incomplete"

before=$(content)
slm-fetch test/tiny -o "$tmp/o2" 2>"$tmp/err"
st=$?
[ $st -eq 0 ] && [ "$(content)" -eq "$before" ] && [ "$(names "$tmp/o2")" = "$expect" ] &&
	[ ! -s "$tmp/err" ]
ok $? "second run: downloads nothing, says nothing"

before=$(content)
slm-fetch test/tiny@v1 -o "$tmp/o3" 2>"$tmp/err" &&
	[ "$(cat "$repo/refs/v1")" = "$c_tiny_v1" ] &&
	[ "$(content)" -eq $((before + 1)) ] &&
	[ "$(names "$tmp/o3")" = "config.json model.safetensors tokenizer.json " ] &&
	cmp -s "$tmp/o3/config.json" "$data/files/config-v1.json"
ok $? "test/tiny@v1: refs/v1; only the changed config.json downloaded"

slm-fetch test/tiny --include 'onnx/' --include README.md -o "$tmp/o4" 2>"$tmp/err" &&
	[ "$(names "$tmp/o4")" = "README.md onnx/model.onnx " ] &&
	[ "$(readlink "$repo/snapshots/$c_tiny/onnx/model.onnx")" = "../../../blobs/$onnx" ]
ok $? "--include: a subdirectory (one more ../ in its link) and a name"

slm-fetch test/tiny --exclude '*.json' -o "$tmp/o5" 2>"$tmp/err" &&
	[ "$(names "$tmp/o5")" = "model.safetensors " ]
ok $? "--exclude: the default set less the JSON files"

slm-fetch test/tiny --include 'nothing*' -o "$tmp/o6" 2>"$tmp/err"
[ $? -eq 66 ] && one_line "$tmp/err" "no file matches --include"
ok $? "--include matching nothing: exit 66"

# ---- a tar stream ---------------------------------------------------------
slm-fetch test/tiny >"$tmp/tiny.tar" 2>"$tmp/err" &&
	[ "$(tar -tf "$tmp/tiny.tar" | tr '\n' ' ')" = "$expect" ] &&
	mkdir "$tmp/x" && tar -xf "$tmp/tiny.tar" -C "$tmp/x" &&
	same "$tmp/x" config.json "$config" model.safetensors "$tiny"
ok $? "stdout not a terminal: a tar stream of relative names; tar -x gives the files"

# ---- the default choice ---------------------------------------------------
slm-fetch test/gguf >"$tmp/q4.gguf" 2>"$tmp/err" && cmp -s "$tmp/q4.gguf" "$www/blobs/$q4"
ok $? "GGUF repository: the Q4_K_M file alone, as itself (not a tar)"
slm-fetch test/gguf --exclude '*Q4_K_M*' --exclude '*Q8_0*' -o "$tmp/g" 2>"$tmp/err" &&
	[ "$(names "$tmp/g")" = "tiny-Q2_K.gguf " ] && same "$tmp/g" tiny-Q2_K.gguf "$q2"
ok $? "GGUF repository without Q4_K_M or Q8_0: the smallest, never mmproj"
slm-fetch test/sharded -o "$tmp/s" 2>"$tmp/err" &&
	[ "$(names "$tmp/s")" = "config.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json " ] &&
	same "$tmp/s" model-00001-of-00002.safetensors "$shard1" \
		model-00002-of-00002.safetensors "$shard2"
ok $? "shards: those model.safetensors.index.json names, not consolidated.safetensors"

# ---- an API without blob metadata: HEAD, X-Linked-Etag, ETag ------------
slm-fetch test/nometa -o "$tmp/nm" 2>"$tmp/err" &&
	same "$tmp/nm" config.json "$config" model.safetensors "$tiny" &&
	[ -f "$cache/models--test--nometa/blobs/$tiny" ] &&
	[ -f "$cache/models--test--nometa/blobs/$config" ] &&
	grep -q '^HEAD /test/nometa/resolve/' "$log"
ok $? "no sizes or hashes from the API: HEAD gives X-Linked-Etag and ETag"

# ---- a transfer killed mid-file resumes with Range ----------------------
slowrepo=$cache/models--test--slow
touch "$tmp/slow.on"
slm-fetch -q test/slow -o "$tmp/sl" 2>"$tmp/err" &
pid=$!
part=$slowrepo/blobs/$slow.incomplete
i=0
while [ $i -lt 200 ]; do
	[ -f "$part" ] && [ "$(wc -c <"$part")" -ge 65536 ] && break
	sleep 0.05
	i=$((i + 1))
done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
got=$(wc -c <"$part" 2>/dev/null || echo 0)
[ "$got" -ge 65536 ] && [ "$got" -lt 1048576 ] && [ ! -f "$slowrepo/blobs/$slow" ] &&
	[ ! -e "$slowrepo/snapshots/09c49873885a0fed717a9adf5ad32da38a2c6e52/model.safetensors" ]
ok $? "killed mid-file: blobs/SHA256.incomplete holds part of it, nothing linked"
rm -f "$tmp/slow.on"
slm-fetch -q test/slow -o "$tmp/sl" 2>"$tmp/err" &&
	same "$tmp/sl" model.safetensors "$slow" &&
	grep -q "^GET /slow/$slow 206 range=bytes=[1-9][0-9]*-" "$log" &&
	[ ! -f "$part" ]
ok $? "the next run resumes it with a Range request (206) and verifies it"

# ---- a corrupted blob ------------------------------------------------------
slm-fetch test/corrupt -o "$tmp/c" 2>"$tmp/err"
st=$?
crepo=$cache/models--test--corrupt
[ $st -eq 65 ] && one_line "$tmp/err" "model.safetensors: checksum mismatch" &&
	[ ! -e "$crepo/blobs/$good" ] && [ ! -e "$crepo/blobs/$good.incomplete" ] &&
	[ ! -e "$crepo/snapshots/$c_corrupt/model.safetensors" ] && [ ! -e "$tmp/c" ]
ok $? "corrupted blob: exit 65, the download removed, nothing in snapshots or -o"

# ---- authentication ---------------------------------------------------------
slm-fetch test/private -o "$tmp/p" 2>"$tmp/err"
[ $? -eq 77 ] && one_line "$tmp/err" "test/private: authentication required: set HF_TOKEN"
ok $? "private repository without HF_TOKEN: 401, exit 77, asks for HF_TOKEN"
HF_TOKEN=wrong slm-fetch test/private -o "$tmp/p" 2>"$tmp/err"
[ $? -eq 77 ] && one_line "$tmp/err" "HF_TOKEN was refused"
ok $? "a wrong HF_TOKEN: refused, exit 77"
: >"$cdn"
HF_TOKEN=secret slm-fetch -v test/private -o "$tmp/p" 2>"$tmp/err" &&
	same "$tmp/p" model.safetensors "$private" config.json "$config" &&
	! grep -q secret "$tmp/err" &&
	grep -q "^GET /api/models/test/private/revision/main 200 range=- auth" "$log" &&
	grep -q "^GET /blobs/$private 200 range=- -" "$cdn"
ok $? "HF_TOKEN: 200; sent to the Hub, not to the CDN's origin, not in -v output"
printf 'secret\n' >"$HF_HOME/token"
rm -rf "$cache/models--test--private"
slm-fetch test/private -o "$tmp/p2" 2>"$tmp/err" && same "$tmp/p2" model.safetensors "$private"
ok $? "the token huggingface-cli login saves in \$HF_HOME/token"
rm -f "$HF_HOME/token"

# ---- not found ---------------------------------------------------------------
slm-fetch test/none -o "$tmp/nf" 2>"$tmp/err"
[ $? -eq 66 ] && one_line "$tmp/err" "test/none: repository not found"
ok $? "404 repository: exit 66, one line"
slm-fetch test/gone -o "$tmp/nf" 2>"$tmp/err"
[ $? -eq 66 ] && one_line "$tmp/err" "test/gone: repository not found"
ok $? "the Hub's 401 RepoNotFound: repository not found, exit 66"
slm-fetch test/tiny@nope -o "$tmp/nf" 2>"$tmp/err"
[ $? -eq 66 ] && one_line "$tmp/err" "test/tiny: revision 'nope' not found"
ok $? "404 revision: exit 66, one line"

# ---- retries -------------------------------------------------------------------
touch "$tmp/flaky.on"
SLM_FETCH_RETRY_BASE_MS=400 slm-fetch test/flaky -o "$tmp/f" 2>"$tmp/err" &
pid=$!
i=0
while [ $i -lt 100 ] && ! grep -q "^GET /flaky/$flaky 503" "$log"; do
	sleep 0.05
	i=$((i + 1))
done
rm -f "$tmp/flaky.on"
wait $pid
st=$?
[ $st -eq 0 ] && same "$tmp/f" model.safetensors "$flaky" &&
	grep -q "^GET /flaky/$flaky 200" "$log"
ok $? "503 then 200: retried after a back-off, downloaded"
touch "$tmp/flaky.on"
rm -rf "$cache/models--test--flaky"
before=$(grep -c "^GET /flaky/$flaky 503" "$log")
slm-fetch test/flaky -o "$tmp/f2" 2>"$tmp/err"
st=$?
rm -f "$tmp/flaky.on"
[ $st -eq 75 ] && one_line "$tmp/err" "HTTP 503 (after 5 attempts)" &&
	[ "$(grep -c "^GET /flaky/$flaky 503" "$log")" -eq $((before + 5)) ]
ok $? "503 every time: five attempts, exit 75"

# ---- offline ---------------------------------------------------------------------
before=$(requests)
HF_HUB_OFFLINE=1 slm-fetch test/tiny -o "$tmp/off" 2>"$tmp/err" &&
	[ "$(names "$tmp/off")" = "$expect" ] && same "$tmp/off" model.safetensors "$tiny" &&
	HF_HUB_OFFLINE=1 slm-fetch "test/tiny@$c_tiny" --include config.json -o "$tmp/off2" \
		2>"$tmp/err" && same "$tmp/off2" config.json "$config" &&
	[ "$(requests)" -eq "$before" ]
ok $? "offline, warm cache: refs/main or a commit, no request"
HF_HOME=$tmp/cold HF_HUB_OFFLINE=1 slm-fetch test/tiny -o "$tmp/off3" 2>"$tmp/err"
[ $? -eq 69 ] && one_line "$tmp/err" "test/tiny@main: not in the cache"
ok $? "offline, cold cache: exit 69, not in the cache"
# port 1 of loopback: nothing listens, the connection is refused at once
HF_ENDPOINT=http://127.0.0.1:1 slm-fetch test/tiny -o "$tmp/off4" 2>"$tmp/err" &&
	one_line "$tmp/err" "using the cached snapshot $c_tiny" &&
	same "$tmp/off4" model.safetensors "$tiny"
ok $? "the Hub out of reach, warm cache: a warning, the cached snapshot"
HF_HOME=$tmp/cold HF_ENDPOINT=http://127.0.0.1:1 slm-fetch test/tiny -o "$tmp/off5" \
	2>"$tmp/err"
[ $? -eq 69 ] && one_line "$tmp/err" "^slm-fetch: test/tiny: .*127.0.0.1"
ok $? "the Hub out of reach, cold cache: exit 69, names the host"

# ---- other sources ------------------------------------------------------------------
slm-fetch "$HF_ENDPOINT/files/tiny.gguf" >"$tmp/u.gguf" 2>"$tmp/err" &&
	cmp -s "$tmp/u.gguf" "$www/blobs/$q4" &&
	slm-fetch "$HF_ENDPOINT/files/tiny.gguf" -o "$tmp/u" 2>"$tmp/err" &&
	[ "$(names "$tmp/u")" = "tiny.gguf " ] && same "$tmp/u" tiny.gguf "$q4"
ok $? "http:// URL: the file, to standard output and to -o DIR"
slm-fetch "$HF_ENDPOINT/files/config.json" 2>"$tmp/err" | tar -tf - >"$tmp/list" &&
	[ "$(cat "$tmp/list")" = "config.json" ]
ok $? "http:// URL of a file that is not GGUF: a tar stream"
slm-fetch "$HF_ENDPOINT/files/none.gguf" -o "$tmp/u2" 2>"$tmp/err"
[ $? -eq 66 ] && one_line "$tmp/err" "none.gguf: not found" && [ ! -e "$tmp/u2/none.gguf" ]
ok $? "http:// URL not found: exit 66"
slm-fetch "$HF_ENDPOINT/test/tiny/resolve/main/onnx/model.onnx" -o "$tmp/r" 2>"$tmp/err" &&
	[ "$(names "$tmp/r")" = "onnx/model.onnx " ]
ok $? "a Hub resolve URL: that file, through the cache"

local=$tmp/local
mkdir -p "$local/sub" && cp "$data/files/config.json" "$www/blobs/$tiny" "$local/" &&
	mv "$local/$tiny" "$local/model.safetensors" && echo x >"$local/README.md" &&
	echo x >"$local/.hidden" && echo x >"$local/sub/model.safetensors"
slm-fetch "$local" 2>"$tmp/err" | tar -tf - >"$tmp/list" &&
	[ "$(tr '\n' ' ' <"$tmp/list")" = "config.json model.safetensors " ]
ok $? "a directory: the default files, as a tar stream"
slm-fetch "file://$local" --include '*.md' -o "$tmp/l" 2>"$tmp/err" &&
	[ "$(names "$tmp/l")" = "README.md " ]
ok $? "a file:// URL of a directory, with --include"
slm-fetch "file://$local/model.safetensors" -o "$tmp/l2" 2>"$tmp/err" &&
	same "$tmp/l2" model.safetensors "$tiny"
ok $? "a file:// URL of a file"

# ---- usage -----------------------------------------------------------------------------
slm-fetch -o "$tmp/z" 2>"$tmp/err"
[ $? -eq 64 ]
ok $? "no source: exit 64"
slm-fetch 'not a repo' -o "$tmp/z" 2>"$tmp/err"
[ $? -eq 66 ] && one_line "$tmp/err" "not a repository id"
ok $? "neither a path nor a repository id: exit 66"
HF_HUB_OFFLINE=1 slm-fetch "$HF_ENDPOINT/files/tiny.gguf" -o "$tmp/z" 2>"$tmp/err"
[ $? -eq 69 ]
ok $? "offline: a URL is refused, exit 69"

plan
finish
