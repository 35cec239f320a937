/*
 * unit-stream.c - unit tests of libcommon's msgpack scanner/codec (mpjson)
 * and of the token stream reader and writer (stream).
 *
 * Covers: mpj_scan on every msgpack type (complete, every prefix, trailing
 * bytes, size limits, hostile length prefixes, nesting), mpj_decode and
 * mpj_pack round trips with canonical (sorted-key) bytes, records of every
 * type written and read back as msgpack and as JSON lines, a reader fed
 * byte by byte through a pipe by another process that hands out each record
 * before the next one is written, and bad inputs that must fail at once
 * with EX_DATAERR and the position in the message.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mpjson.h"
#include "stream.h"
#include "unit.h"

/* ---- a watchdog: a reader that waits for bytes never sent must fail the
 * test, not hang it ---- */

static const char *volatile watch_what = "";

static void on_alarm(int sig)
{
	(void)sig;
	static const char a[] = "not ok - TIMEOUT (blocked waiting for input): ";
	ssize_t r = write(1, a, sizeof a - 1);
	r = write(1, (const char *)watch_what, strlen((const char *)watch_what));
	r = write(1, "\n", 1);
	(void)r;
	_exit(1);
}

static void watch(const char *what, unsigned secs)
{
	watch_what = what;
	alarm(secs);
}

static void unwatch(void)
{
	alarm(0);
}

/* ---- byte buffers ---- */

typedef struct {
	uint8_t *p;
	size_t n, cap;
} buf;

static void bput(buf *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = slm_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void bbytes(buf *b, int n, ...)
{
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		uint8_t c = (uint8_t)va_arg(ap, int);
		bput(b, &c, 1);
	}
	va_end(ap);
}

static void bjson(buf *b, const json_t *v)
{
	char *d;
	size_t n;
	mpj_encode(v, &d, &n);
	bput(b, d, n);
	free(d);
}

static void bfree(buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static json_t *J(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
	if (!v) {
		diag("bad JSON in test: %s: %s", text, je.text);
		abort();
	}
	return v;
}

/* A file descriptor reading the given bytes (a temporary file). */
static int fd_of(const void *d, size_t n)
{
	FILE *f = tmpfile();
	if (!f || (n && fwrite(d, 1, n, f) != n) || fflush(f) != 0) {
		perror("tmpfile");
		abort();
	}
	int fd = dup(fileno(f));
	fclose(f);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* =====================================================================
 * mpj_scan
 * ===================================================================== */

static int scan(const buf *b, size_t n, size_t limit, size_t *len,
		size_t *errpos, const char **why)
{
	*len = 0;
	*errpos = (size_t)-1;
	*why = NULL;
	return mpj_scan(b->p, n, limit, len, errpos, why);
}

/* The object in b is complete at exactly b->n bytes: every prefix needs
 * more, the whole is found, and bytes after it are not looked at. */
static void scan_complete(const buf *b, const char *what)
{
	size_t len, ep;
	const char *why;
	int bad = 0;
	size_t step = b->n > 4096 ? b->n / 97 + 1 : 1;
	for (size_t i = 0; i < b->n; i += (i < 16 || b->n - i < 16) ? 1 : step) {
		int r = scan(b, i, SIZE_MAX, &len, &ep, &why);
		if (r != 0) {
			diag("%s: prefix of %zu/%zu bytes gave %d (%s)", what, i, b->n, r,
			     why ? why : "");
			bad = 1;
			break;
		}
	}
	ok(!bad, "scan %s: every prefix needs more bytes", what);
	int r = scan(b, b->n, SIZE_MAX, &len, &ep, &why);
	ok(r == 1 && len == b->n, "scan %s: complete at %zu bytes (got %d, %zu)",
	   what, b->n, r, len);
	buf t = { 0 };
	bput(&t, b->p, b->n);
	bbytes(&t, 3, 0xc1, 0xc1, 0xc1);
	r = scan(&t, t.n, SIZE_MAX, &len, &ep, &why);
	ok(r == 1 && len == b->n, "scan %s: trailing bytes are not part of it", what);
	r = scan(&t, t.n, b->n, &len, &ep, &why);
	ok(r == 1 && len == b->n, "scan %s: limit == its size is accepted", what);
	if (b->n > 1) {
		r = scan(&t, t.n, b->n - 1, &len, &ep, &why);
		ok(r == -1 && why, "scan %s: limit one byte short is an error (%s)",
		   what, why ? why : "no reason");
	}
	bfree(&t);
}

static void test_scan_types(void)
{
	struct {
		const char *name;
		int n;
		uint8_t b[24];
	} fixed[] = {
		{ "nil", 1, { 0xc0 } },
		{ "false", 1, { 0xc2 } },
		{ "true", 1, { 0xc3 } },
		{ "positive fixint", 1, { 0x7f } },
		{ "negative fixint", 1, { 0xe0 } },
		{ "uint8", 2, { 0xcc, 0xff } },
		{ "uint16", 3, { 0xcd, 0xff, 0xff } },
		{ "uint32", 5, { 0xce, 1, 2, 3, 4 } },
		{ "uint64", 9, { 0xcf, 1, 2, 3, 4, 5, 6, 7, 8 } },
		{ "int8", 2, { 0xd0, 0x80 } },
		{ "int16", 3, { 0xd1, 0x80, 0 } },
		{ "int32", 5, { 0xd2, 0x80, 0, 0, 0 } },
		{ "int64", 9, { 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0 } },
		{ "float32", 5, { 0xca, 0x3f, 0, 0, 0 } },
		{ "float64", 9, { 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0 } },
		{ "fixstr", 4, { 0xa3, 'a', 'b', 'c' } },
		{ "empty fixstr", 1, { 0xa0 } },
		{ "str8", 5, { 0xd9, 3, 'a', 'b', 'c' } },
		{ "str16", 6, { 0xda, 0, 3, 'a', 'b', 'c' } },
		{ "str32", 8, { 0xdb, 0, 0, 0, 3, 'a', 'b', 'c' } },
		{ "bin8", 4, { 0xc4, 2, 0, 1 } },
		{ "bin16", 5, { 0xc5, 0, 2, 0, 1 } },
		{ "bin32", 7, { 0xc6, 0, 0, 0, 2, 0, 1 } },
		{ "fixext1", 3, { 0xd4, 1, 9 } },
		{ "fixext2", 4, { 0xd5, 1, 9, 9 } },
		{ "fixext4", 6, { 0xd6, 1, 9, 9, 9, 9 } },
		{ "fixext8", 10, { 0xd7, 1, 9, 9, 9, 9, 9, 9, 9, 9 } },
		{ "fixext16", 18, { 0xd8, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } },
		{ "ext8", 5, { 0xc7, 2, 1, 9, 9 } },
		{ "ext16", 6, { 0xc8, 0, 2, 1, 9, 9 } },
		{ "ext32", 8, { 0xc9, 0, 0, 0, 2, 1, 9, 9 } },
		{ "empty fixarray", 1, { 0x90 } },
		{ "fixarray", 4, { 0x93, 1, 0xc0, 0xa0 } },
		{ "array16", 5, { 0xdc, 0, 2, 1, 2 } },
		{ "array32", 7, { 0xdd, 0, 0, 0, 2, 1, 2 } },
		{ "empty fixmap", 1, { 0x80 } },
		{ "fixmap", 5, { 0x82, 0xa0, 1, 2, 3 } },
		{ "map16", 6, { 0xde, 0, 1, 0xa1, 'k', 0xc3 } },
		{ "map32", 8, { 0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xc2 } },
		{ "nested", 12, { 0x81, 0xa1, 'a', 0x92, 0x91, 0x80, 0x81, 0xa0, 0xdc, 0, 1, 0xc0 } },
	};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		buf b = { 0 };
		bput(&b, fixed[i].b, (size_t)fixed[i].n);
		scan_complete(&b, fixed[i].name);
		bfree(&b);
	}

	/* long bodies: str/bin of 300 and 70000 bytes, a 70000-element array */
	buf b = { 0 };
	bbytes(&b, 3, 0xda, 0x01, 0x2c);
	for (int i = 0; i < 300; i++)
		bbytes(&b, 1, 'x');
	scan_complete(&b, "str16 of 300 bytes");
	bfree(&b);
	bbytes(&b, 5, 0xc6, 0, 1, 0x11, 0x70);
	for (int i = 0; i < 70000; i++)
		bbytes(&b, 1, i & 0xff);
	scan_complete(&b, "bin32 of 70000 bytes");
	bfree(&b);
	bbytes(&b, 5, 0xdd, 0, 1, 0x11, 0x70);
	for (int i = 0; i < 70000; i++)
		bbytes(&b, 1, i & 0x7f);
	scan_complete(&b, "array32 of 70000 items");
	bfree(&b);
}

static void test_scan_errors(void)
{
	size_t len, ep;
	const char *why;
	buf b = { 0 };
	int r;

	bbytes(&b, 1, 0xc1);
	r = scan(&b, b.n, SIZE_MAX, &len, &ep, &why);
	ok(r == -1 && ep == 0 && why && strstr(why, "0xc1"),
	   "scan 0xc1: error at offset 0 naming the byte (%s)", why ? why : "-");
	bfree(&b);

	bbytes(&b, 5, 0x93, 0x01, 0xa1, 'x', 0xc1);
	r = scan(&b, b.n, SIZE_MAX, &len, &ep, &why);
	ok(r == -1 && ep == 4, "scan: 0xc1 inside an array is found at its offset (%zu)", ep);
	bfree(&b);

	/* hostile length prefixes: an error as soon as the prefix is known,
	 * never "need more bytes" */
	struct {
		const char *name;
		int n;
		uint8_t b[8];
	} hostile[] = {
		{ "str32 0xFFFFFFFF", 5, { 0xdb, 0xff, 0xff, 0xff, 0xff } },
		{ "bin32 0xFFFFFFFF", 5, { 0xc6, 0xff, 0xff, 0xff, 0xff } },
		{ "ext32 0xFFFFFFFF", 5, { 0xc9, 0xff, 0xff, 0xff, 0xff } },
		{ "array32 count 0xFFFFFFFF", 5, { 0xdd, 0xff, 0xff, 0xff, 0xff } },
		{ "map32 count 0xFFFFFFFF", 5, { 0xdf, 0xff, 0xff, 0xff, 0xff } },
		{ "map32 count 0x80000000", 5, { 0xdf, 0x80, 0, 0, 0 } },
		{ "str16 beyond a 100-byte limit", 3, { 0xda, 0x01, 0x00 } },
		{ "array16 beyond a 100-byte limit", 3, { 0xdc, 0x00, 0x80 } },
	};
	for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
		bput(&b, hostile[i].b, (size_t)hostile[i].n);
		size_t limit = i >= 6 ? 100 : SLM_STREAM_MAX_RECORD;
		r = scan(&b, b.n, limit, &len, &ep, &why);
		ok(r == -1 && ep == 0 && why,
		   "scan %s: error from the header bytes alone (%d, %s)", hostile[i].name,
		   r, why ? why : "-");
		/* the same inside a map, at an offset */
		buf m = { 0 };
		bbytes(&m, 3, 0x81, 0xa1, 'k');
		bput(&m, b.p, b.n);
		r = scan(&m, m.n, limit, &len, &ep, &why);
		ok(r == -1 && ep == 3, "scan %s inside a map: error at offset 3 (%zu)",
		   hostile[i].name, ep);
		bfree(&m);
		bfree(&b);
	}
	/* a 4-byte prefix not yet complete: needs more, within the limit */
	bbytes(&b, 3, 0xdb, 0xff, 0xff);
	r = scan(&b, b.n, SLM_STREAM_MAX_RECORD, &len, &ep, &why);
	ok(r == 0, "scan: str32 with 2 of 4 length bytes needs more");
	bfree(&b);

	/* nesting: MPJ_MAX_DEPTH containers are fine, one more is not */
	for (int extra = 0; extra <= 1; extra++) {
		int depth = MPJ_MAX_DEPTH + extra;
		for (int i = 0; i < depth; i++)
			bbytes(&b, 1, 0x91);
		bbytes(&b, 1, 0x01);
		r = scan(&b, b.n, SIZE_MAX, &len, &ep, &why);
		if (extra)
			ok(r == -1 && why && strstr(why, "deep") && ep == (size_t)depth - 1,
			   "scan: %d nested arrays: too deep at offset %d (%d, %zu, %s)",
			   depth, depth - 1, r, ep, why ? why : "-");
		else
			ok(r == 1 && len == b.n, "scan: %d nested arrays are accepted", depth);
		bfree(&b);
	}
	/* deep nesting of empty containers costs no stack */
	for (int i = 0; i < MPJ_MAX_DEPTH; i++)
		bbytes(&b, 1, 0x91);
	bbytes(&b, 1, 0x90);
	r = scan(&b, b.n, SIZE_MAX, &len, &ep, &why);
	ok(r == 1, "scan: empty array at the deepest level is accepted");
	bfree(&b);
	for (int i = 0; i < 1000; i++)
		bbytes(&b, 2, 0x81, 0xa0);
	bbytes(&b, 1, 0xc0);
	r = scan(&b, b.n, SIZE_MAX, &len, &ep, &why);
	ok(r == -1 && why && strstr(why, "deep"), "scan: 1000 nested maps: too deep");
	bfree(&b);

	/* limit: an object can never grow past it, even if incomplete */
	bbytes(&b, 2, 0xd9, 200);
	r = scan(&b, b.n, 100, &len, &ep, &why);
	ok(r == -1, "scan: str8 of 200 with limit 100 fails before its body");
	bfree(&b);
	bbytes(&b, 1, 0x9f); /* 15 items, each at least one byte */
	r = scan(&b, b.n, 10, &len, &ep, &why);
	ok(r == -1, "scan: fixarray of 15 cannot fit a limit of 10");
	bfree(&b);
	r = mpj_scan((const uint8_t *)"", 0, 100, &len, &ep, &why);
	ok(r == 0, "scan: no bytes at all needs more");
}

/* =====================================================================
 * mpj_decode / mpj_pack
 * ===================================================================== */

static json_t *big_tree(void)
{
	json_t *t = json_object();
	json_object_set_new(t, "null", json_null());
	json_object_set_new(t, "true", json_true());
	json_object_set_new(t, "false", json_false());
	static const json_int_t ints[] = {
		0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
		INT64_MAX, -1, -32, -33, -128, -129, -32768, -32769, -2147483648LL,
		-2147483649LL, INT64_MIN,
	};
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
		json_array_append_new(a, json_integer(ints[i]));
	json_object_set_new(t, "ints", a);
	a = json_array();
	static const double reals[] = { 0.0, 0.5, -0.25, 1e300, -1e-300, 3.141592653589793,
					0.1 };
	for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
		json_array_append_new(a, json_real(reals[i]));
	json_object_set_new(t, "reals", a);
	a = json_array();
	static const size_t lens[] = { 0, 1, 31, 32, 255, 256, 65535, 65536 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		char *s = slm_xmalloc(lens[i] + 1);
		for (size_t k = 0; k < lens[i]; k++)
			s[k] = (char)('a' + k % 26);
		s[lens[i]] = 0;
		json_array_append_new(a, json_string(s));
		free(s);
	}
	json_array_append_new(a, json_string("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	json_array_append_new(a, json_stringn("nul\0inside", 10));
	json_object_set_new(t, "strings", a);
	static const size_t alens[] = { 0, 15, 16, 65536 };
	for (size_t i = 0; i < sizeof alens / sizeof alens[0]; i++) {
		a = json_array();
		for (size_t k = 0; k < alens[i]; k++)
			json_array_append_new(a, json_integer((json_int_t)k));
		char key[32];
		snprintf(key, sizeof key, "array%zu", alens[i]);
		json_object_set_new(t, key, a);
	}
	static const size_t mlens[] = { 0, 15, 16, 70000 };
	for (size_t i = 0; i < sizeof mlens / sizeof mlens[0]; i++) {
		json_t *m = json_object();
		for (size_t k = 0; k < mlens[i]; k++) {
			char key[32];
			snprintf(key, sizeof key, "k%zu", (k * 7919) % (mlens[i] ? mlens[i] : 1));
			json_object_set_new(m, key, json_integer((json_int_t)k));
		}
		char key[32];
		snprintf(key, sizeof key, "map%zu", mlens[i]);
		json_object_set_new(t, key, m);
	}
	json_object_set_new(t, "nested", J("{\"a\":[{\"b\":[[],{}]},null,[1,[2,[3]]]],\"\":\"empty key\"}"));
	json_object_set_new(t, "\xc3\xa9", json_string("non-ASCII key"));
	return t;
}

/* The same tree built with the keys inserted in the reverse order. */
static json_t *reversed(const json_t *v)
{
	if (json_is_array(v)) {
		json_t *a = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) json_array_append_new(a, reversed(e));
		return a;
	}
	if (!json_is_object(v))
		return json_deep_copy(v);
	size_t n = json_object_size(v), i = 0;
	const char **keys = slm_xmalloc((n + 1) * sizeof *keys);
	const char *k;
	json_t *e;
	json_object_foreach((json_t *)v, k, e) keys[i++] = k;
	json_t *o = json_object();
	while (i-- > 0)
		json_object_set_new(o, keys[i], reversed(json_object_get(v, keys[i])));
	free(keys);
	return o;
}

static void test_codec(void)
{
	json_t *t = big_tree();
	char *enc;
	size_t n;
	mpj_encode(t, &enc, &n);
	size_t len, ep;
	const char *why = NULL;
	int r = mpj_scan((uint8_t *)enc, n, SIZE_MAX, &len, &ep, &why);
	ok(r == 1 && len == n, "big tree: encoding scans as one object of %zu bytes", n);
	json_t *d = mpj_decode((uint8_t *)enc, n, &why);
	ok(d && json_equal(d, t), "big tree: decodes to an equal tree");
	char *enc2 = NULL;
	size_t n2 = 0;
	if (d)
		mpj_encode(d, &enc2, &n2);
	ok(enc2 && n2 == n && !memcmp(enc, enc2, n),
	   "big tree: re-encoding the decoded tree gives identical bytes");
	free(enc2);
	json_t *rev = reversed(t);
	mpj_encode(rev, &enc2, &n2);
	ok(n2 == n && !memcmp(enc, enc2, n),
	   "big tree: keys inserted in another order give identical bytes");
	free(enc2);
	json_decref(rev);
	/* integers within int64 keep their exact values */
	json_t *ints = d ? json_object_get(d, "ints") : NULL;
	ok(ints && json_integer_value(json_array_get(ints, 10)) == INT64_MAX &&
		   json_integer_value(json_array_get(ints, 20)) == INT64_MIN,
	   "big tree: INT64_MAX and INT64_MIN survive");
	json_t *strs = d ? json_object_get(d, "strings") : NULL;
	ok(strs && json_string_length(json_array_get(strs, 9)) == 10,
	   "big tree: a string with a NUL byte keeps its length");
	json_decref(d);
	json_decref(t);
	free(enc);

	/* exact canonical bytes */
	struct {
		const char *json;
		int n;
		uint8_t b[16];
	} canon[] = {
		{ "1", 1, { 0x01 } },
		{ "-1", 1, { 0xff } },
		{ "-33", 2, { 0xd0, 0xdf } },
		{ "200", 2, { 0xcc, 200 } },
		{ "256", 3, { 0xcd, 1, 0 } },
		{ "70000", 5, { 0xce, 0, 1, 0x11, 0x70 } },
		{ "0.5", 9, { 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0 } },
		{ "\"a\"", 2, { 0xa1, 'a' } },
		{ "[]", 1, { 0x90 } },
		{ "{}", 1, { 0x80 } },
		{ "null", 1, { 0xc0 } },
		{ "true", 1, { 0xc3 } },
		{ "{\"b\":1,\"a\":2}", 7, { 0x82, 0xa1, 'a', 2, 0xa1, 'b', 1 } },
		{ "{\"ab\":1,\"b\":2,\"a\":3}", 11,
		  { 0x83, 0xa1, 'a', 3, 0xa2, 'a', 'b', 1, 0xa1, 'b', 2 } },
	};
	for (size_t i = 0; i < sizeof canon / sizeof canon[0]; i++) {
		json_t *v = J(canon[i].json);
		mpj_encode(v, &enc, &n);
		ok(n == (size_t)canon[i].n && !memcmp(enc, canon[i].b, n),
		   "pack %s: canonical bytes", canon[i].json);
		free(enc);
		json_decref(v);
	}

	/* decoding values JSON can hold, from non-canonical encodings */
	struct {
		const char *name;
		int n;
		uint8_t b[16];
		const char *json;
	} dec[] = {
		{ "float32 0.5", 5, { 0xca, 0x3f, 0, 0, 0 }, "0.5" },
		{ "str8", 5, { 0xd9, 3, 'a', 'b', 'c' }, "\"abc\"" },
		{ "uint64 small", 9, { 0xcf, 0, 0, 0, 0, 0, 0, 0, 5 }, "5" },
		{ "int8 positive", 2, { 0xd0, 5 }, "5" },
		{ "array16", 5, { 0xdc, 0, 2, 1, 2 }, "[1,2]" },
		{ "map16", 6, { 0xde, 0, 1, 0xa1, 'k', 0xc3 }, "{\"k\":true}" },
		{ "uint64 INT64_MAX", 9, { 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		  "9223372036854775807" },
	};
	for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++) {
		json_t *v = mpj_decode(dec[i].b, (size_t)dec[i].n, &why);
		json_t *want = J(dec[i].json);
		ok(v && json_equal(v, want), "decode %s", dec[i].name);
		json_decref(v);
		json_decref(want);
	}

	/* values JSON cannot hold */
	struct {
		const char *name;
		int n;
		uint8_t b[16];
		const char *why;
	} rej[] = {
		{ "uint64 above INT64_MAX", 9, { 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0 }, "too large" },
		{ "bin8", 4, { 0xc4, 2, 0, 1 }, "binary" },
		{ "fixext1", 3, { 0xd4, 1, 9 }, "extension" },
		{ "invalid UTF-8 string", 3, { 0xa2, 0xc3, 0x28 }, "UTF-8" },
		{ "integer map key", 3, { 0x81, 0x01, 0x02 }, "key" },
		{ "key with a NUL byte", 5, { 0x81, 0xa2, 'a', 0, 0x01 }, "key" },
		{ "bin inside an array", 5, { 0x92, 0x01, 0xc4, 1, 0 }, "binary" },
		{ "truncated", 3, { 0x92, 0x01 }, "" },
	};
	rej[7].n = 2;
	for (size_t i = 0; i < sizeof rej / sizeof rej[0]; i++) {
		why = NULL;
		json_t *v = mpj_decode(rej[i].b, (size_t)rej[i].n, &why);
		ok(!v && why && strstr(why, rej[i].why), "decode %s: rejected (%s)",
		   rej[i].name, why ? why : "no reason");
		json_decref(v);
	}
}

/* =====================================================================
 * records
 * ===================================================================== */

static json_t **sample_records(size_t *n)
{
	json_t *id7 = json_integer(7), *ids = json_string("req-\xc3\xa9");
	int32_t toks[] = { 0, 1, 2, 2147483647, 42 };
	json_t **r = slm_xcalloc(16, sizeof *r);
	size_t k = 0;
	r[k++] = stream_header("sha256:0123abcd", "tiny.slm");
	r[k++] = stream_header(NULL, NULL);
	r[k++] = stream_seq(id7, toks, 5);
	r[k++] = stream_seq(ids, NULL, 0);
	r[k++] = J("{\"type\":\"seq\",\"id\":1,\"tokens\":[3],\"meta\":{\"temperature\":0.5,\"stop\":[\"x\"]}}");
	r[k++] = stream_tok(id7, 0);
	r[k++] = stream_tok(ids, 2147483647);
	r[k++] = J("{\"type\":\"tok\",\"id\":7,\"token\":5,\"logprob\":-0.25}");
	r[k++] = stream_end(id7, "eos");
	r[k++] = stream_end(ids, "length");
	r[k++] = stream_error(id7, "context full");
	r[k++] = stream_error(NULL, "model failed to load");
	r[k++] = stream_score(id7, 1, 42, -2.5);
	r[k++] = J("{\"type\":\"score\",\"id\":\"a\",\"pos\":3,\"token\":0,\"logprob\":-0.125,\"top\":[[0,-0.125]]}");
	json_decref(id7);
	json_decref(ids);
	*n = k;
	return r;
}

static void free_records(json_t **r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(r[i]);
	free(r);
}

static void test_records(void)
{
	size_t n;
	json_t **r = sample_records(&n);
	static const int types[] = { SLM_REC_HEADER, SLM_REC_HEADER, SLM_REC_SEQ,
				     SLM_REC_SEQ, SLM_REC_SEQ, SLM_REC_TOK, SLM_REC_TOK,
				     SLM_REC_TOK, SLM_REC_END, SLM_REC_END,
				     SLM_REC_ERROR, SLM_REC_ERROR, SLM_REC_SCORE, SLM_REC_SCORE };
	int all = 1;
	for (size_t i = 0; i < n; i++) {
		const char *why = NULL;
		if (stream_check(r[i], &why) != 0 || stream_rec_type(r[i]) != types[i]) {
			char *s = json_dumps(r[i], JSON_COMPACT);
			diag("record %zu %s: %s", i, s, why ? why : "wrong type");
			free(s);
			all = 0;
		}
	}
	ok(all, "builders make valid records of every type");
	ok(json_integer_value(json_object_get(r[0], "version")) == SLM_STREAM_VERSION &&
		   !strcmp(json_string_value(json_object_get(r[0], "vocab")), "sha256:0123abcd"),
	   "header record carries version and vocab");
	ok(json_array_size(json_object_get(r[2], "tokens")) == 5 &&
		   json_integer_value(json_array_get(json_object_get(r[2], "tokens"), 3)) ==
			   2147483647,
	   "seq record carries its tokens");
	ok(!json_object_get(r[11], "id"), "error record without id has no id key");
	ok(json_integer_value(json_object_get(r[12], "pos")) == 1 &&
		   json_integer_value(json_object_get(r[12], "token")) == 42 &&
		   json_real_value(json_object_get(r[12], "logprob")) == -2.5,
	   "score record carries position, token and log-probability");

	struct {
		const char *json, *why;
	} bad[] = {
		{ "[1]", "not a map" },
		{ "{}", "type" },
		{ "{\"type\":1}", "type" },
		{ "{\"type\":\"bogus\"}", "unknown record type" },
		{ "{\"type\":\"header\"}", "version" },
		{ "{\"type\":\"header\",\"version\":99}", "version" },
		{ "{\"type\":\"header\",\"version\":0}", "version" },
		{ "{\"type\":\"header\",\"version\":\"1\"}", "version" },
		{ "{\"type\":\"seq\",\"tokens\":[1]}", "id" },
		{ "{\"type\":\"seq\",\"id\":[1],\"tokens\":[1]}", "id" },
		{ "{\"type\":\"seq\",\"id\":1.5,\"tokens\":[1]}", "id" },
		{ "{\"type\":\"seq\",\"id\":1}", "tokens" },
		{ "{\"type\":\"seq\",\"id\":1,\"tokens\":[-1]}", "tokens" },
		{ "{\"type\":\"seq\",\"id\":1,\"tokens\":[\"a\"]}", "tokens" },
		{ "{\"type\":\"seq\",\"id\":1,\"tokens\":[2147483648]}", "tokens" },
		{ "{\"type\":\"seq\",\"id\":1,\"tokens\":[1.0]}", "tokens" },
		{ "{\"type\":\"seq\",\"id\":1,\"tokens\":[],\"meta\":[]}", "meta" },
		{ "{\"type\":\"tok\",\"token\":1}", "id" },
		{ "{\"type\":\"tok\",\"id\":1}", "token" },
		{ "{\"type\":\"tok\",\"id\":1,\"token\":-5}", "token" },
		{ "{\"type\":\"tok\",\"id\":1,\"token\":1,\"logprob\":\"x\"}", "logprob" },
		{ "{\"type\":\"score\",\"pos\":1,\"token\":1,\"logprob\":0}", "id" },
		{ "{\"type\":\"score\",\"id\":1,\"token\":1,\"logprob\":0}", "pos" },
		{ "{\"type\":\"score\",\"id\":1,\"pos\":-1,\"token\":1,\"logprob\":0}", "pos" },
		{ "{\"type\":\"score\",\"id\":1,\"pos\":1,\"logprob\":0}", "token" },
		{ "{\"type\":\"score\",\"id\":1,\"pos\":1,\"token\":1}", "logprob" },
		{ "{\"type\":\"score\",\"id\":1,\"pos\":1,\"token\":1,\"logprob\":\"x\"}", "logprob" },
		{ "{\"type\":\"end\",\"reason\":\"eos\"}", "id" },
		{ "{\"type\":\"end\",\"id\":1}", "reason" },
		{ "{\"type\":\"error\"}", "message" },
		{ "{\"type\":\"error\",\"id\":null,\"message\":\"m\"}", "id" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *v = J(bad[i].json);
		const char *why = NULL;
		int rc = stream_check(v, &why);
		ok(rc == -1 && why && strstr(why, bad[i].why), "stream_check rejects %s (%s)",
		   bad[i].json, why ? why : "accepted");
		json_decref(v);
	}
	free_records(r, n);
}

/* Write records with swriter into a memory buffer. */
static void write_records(buf *out, json_t **r, size_t n, int json)
{
	char *mem = NULL;
	size_t memn = 0;
	FILE *f = open_memstream(&mem, &memn);
	slm_swriter *w = swriter_new(f, json);
	slm_err err;
	for (size_t i = 0; i < n; i++)
		if (swriter_put(w, r[i], &err) != 0) {
			diag("swriter_put: %s", err.msg);
			abort();
		}
	swriter_free(w);
	fclose(f);
	memset(out, 0, sizeof *out);
	bput(out, mem, memn);
	free(mem);
}

/* Read every record from fd; returns the last sreader_next() result. */
static int read_all(int fd, const char *name, json_t ***out, size_t *n,
		    slm_err *err, int *is_json)
{
	slm_sreader *rd = sreader_new(fd, name);
	json_t **v = NULL;
	size_t k = 0;
	int rc;
	json_t *rec;
	while ((rc = sreader_next(rd, &rec, err)) == 1) {
		v = slm_xrealloc(v, (k + 1) * sizeof *v);
		v[k++] = rec;
	}
	if (is_json)
		*is_json = sreader_is_json(rd);
	sreader_free(rd);
	close(fd);
	*out = v;
	*n = k;
	return rc;
}

static int same_records(json_t **a, size_t na, json_t **b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (!json_equal(a[i], b[i]))
			return 0;
	return 1;
}

static void test_roundtrip(void)
{
	size_t n;
	json_t **r = sample_records(&n);
	buf mp, js;
	write_records(&mp, r, n, 0);
	write_records(&js, r, n, 1);
	ok(mp.n > 0 && mp.p[0] != '{', "msgpack stream does not start with '{'");
	size_t lines = 0;
	for (size_t i = 0; i < js.n; i++)
		lines += js.p[i] == '\n';
	ok(lines == n && js.p[0] == '{' && js.p[js.n - 1] == '\n',
	   "JSON stream: one line per record (%zu lines for %zu records)", lines, n);

	json_t **got;
	size_t ng;
	slm_err err = { 0 };
	int isj = -1;
	int rc = read_all(fd_of(mp.p, mp.n), "mp", &got, &ng, &err, &isj);
	ok(rc == 0 && same_records(r, n, got, ng) && isj == 0,
	   "msgpack stream reads back the same %zu records (rc %d, %zu, %s)", n, rc, ng,
	   rc < 0 ? err.msg : "");
	json_t **got2;
	size_t ng2;
	rc = read_all(fd_of(js.p, js.n), "js", &got2, &ng2, &err, &isj);
	ok(rc == 0 && same_records(r, n, got2, ng2) && isj == 1,
	   "JSON lines stream reads back the same %zu records (rc %d, %zu, %s)", n, rc,
	   ng2, rc < 0 ? err.msg : "");
	ok(same_records(got, ng, got2, ng2), "msgpack and JSON lines give equal records");

	/* msgpack -> records -> msgpack: identical bytes (canonical writer) */
	buf mp2;
	write_records(&mp2, got2, ng2, 0);
	ok(mp2.n == mp.n && !memcmp(mp2.p, mp.p, mp.n),
	   "records read from JSON re-encode to the identical msgpack bytes");
	bfree(&mp2);
	free_records(got, ng);
	free_records(got2, ng2);

	/* JSON lines with blank lines, CRLF and spaces; no final newline */
	const char *loose =
		"\n\n  \n{\"type\":\"header\",\"version\":1}\r\n\n \t\n"
		"{\"id\":1,\"type\":\"tok\",\"token\":3}\n"
		"  {\"type\":\"end\",\"id\":1,\"reason\":\"eos\"}  ";
	rc = read_all(fd_of(loose, strlen(loose)), "loose", &got, &ng, &err, &isj);
	ok(rc == 0 && ng == 3 && isj == 1 && stream_rec_type(got[2]) == SLM_REC_END,
	   "JSON lines: blank lines, CR and a missing final newline are accepted (rc %d, %zu, %s)",
	   rc, ng, rc < 0 ? err.msg : "");
	free_records(got, ng);

	/* empty input and blank-only input: no records, no error */
	rc = read_all(fd_of("", 0), "empty", &got, &ng, &err, NULL);
	ok(rc == 0 && ng == 0, "empty input: end of stream at once");
	free(got);
	rc = read_all(fd_of("\n \n\n", 4), "blank", &got, &ng, &err, NULL);
	ok(rc == 0 && ng == 0, "blank lines only: end of stream");
	free(got);

	/* a big record (1 MiB of tokens) crosses the reader's buffer size */
	int32_t *many = slm_xmalloc(300000 * sizeof *many);
	for (int i = 0; i < 300000; i++)
		many[i] = i * 7;
	json_t *id = json_integer(1);
	json_t *big[2] = { stream_seq(id, many, 300000), stream_end(id, "eos") };
	json_decref(id);
	free(many);
	for (int json = 0; json <= 1; json++) {
		buf bb;
		write_records(&bb, big, 2, json);
		rc = read_all(fd_of(bb.p, bb.n), "big", &got, &ng, &err, NULL);
		ok(rc == 0 && same_records(big, 2, got, ng),
		   "%s: a %zu-byte record reads back intact", json ? "JSON" : "msgpack", bb.n);
		free_records(got, ng);
		bfree(&bb);
	}
	json_decref(big[0]);
	json_decref(big[1]);

	/* sreader_open: a file by name, and a missing one */
	const char *td = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/unit-stream.XXXXXX", td && *td ? td : "/tmp");
	int fd = mkstemp(path);
	ok(fd >= 0 && write(fd, mp.p, mp.n) == (ssize_t)mp.n, "temporary stream file");
	close(fd);
	slm_sreader *rd = sreader_open(path, &err);
	json_t *rec = NULL;
	ok(rd && sreader_next(rd, &rec, &err) == 1 && json_equal(rec, r[0]),
	   "sreader_open reads a file");
	json_decref(rec);
	sreader_free(rd);
	unlink(path);
	rd = sreader_open(path, &err);
	ok(!rd && err.code == EX_NOINPUT && strstr(err.msg, path),
	   "sreader_open of a missing file: EX_NOINPUT naming it (%s)", err.msg);

	bfree(&mp);
	bfree(&js);
	free_records(r, n);
}

/* =====================================================================
 * live pipe: byte by byte, each record handed out before the next is sent
 * ===================================================================== */

static int pipe_pending(int fd)
{
	int k = 0;
	if (ioctl(fd, FIONREAD, &k) != 0)
		return -1;
	return k;
}

/* Child: write each record one byte at a time, waiting until the reader
 * has taken every byte before sending the next; after a record's last byte
 * wait for the parent's acknowledgement that it has the record. */
static void writer_child(int wfd, int ackfd, const buf *b, const size_t *ends,
			 size_t n)
{
	size_t pos = 0;
	for (size_t i = 0; i < n; i++) {
		for (; pos < ends[i]; pos++) {
			if (write(wfd, b->p + pos, 1) != 1)
				_exit(2);
			struct timespec ts = { 0, 100000 };
			int waited = 0;
			while (pipe_pending(wfd) > 0) {
				nanosleep(&ts, NULL);
				if (++waited > 50000)
					_exit(3); /* reader stopped reading */
			}
		}
		char c;
		if (read(ackfd, &c, 1) != 1)
			_exit(4); /* parent gone */
	}
	close(wfd);
	_exit(0);
}

static void test_live_pipe(int json)
{
	size_t n;
	json_t **r = sample_records(&n);
	buf b = { 0 };
	size_t ends[32];
	/* encode record by record to know where each ends */
	for (size_t i = 0; i < n; i++) {
		buf one;
		write_records(&one, &r[i], 1, json);
		bput(&b, one.p, one.n);
		ends[i] = b.n;
		bfree(&one);
	}
	int dp[2], ap[2];
	if (pipe(dp) != 0 || pipe(ap) != 0)
		abort();
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(dp[0]);
		close(ap[1]);
		writer_child(dp[1], ap[0], &b, ends, n);
	}
	close(dp[1]);
	close(ap[0]);
	const char *mode = json ? "JSON lines" : "msgpack";
	watch(json ? "live JSON pipe" : "live msgpack pipe", 20);
	slm_sreader *rd = sreader_new(dp[0], "pipe");
	slm_err err;
	int good = 1;
	for (size_t i = 0; i < n; i++) {
		json_t *rec = NULL;
		int rc = sreader_next(rd, &rec, &err);
		if (rc != 1 || !json_equal(rec, r[i])) {
			diag("%s: record %zu: rc %d %s", mode, i, rc, rc < 0 ? err.msg : "");
			good = 0;
		}
		json_decref(rec);
		if (write(ap[1], "k", 1) != 1)
			good = 0;
		if (!good)
			break;
	}
	ok(good, "%s: %zu records fed one byte at a time, each read before the next was sent",
	   mode, n);
	json_t *rec = NULL;
	int rc = good ? sreader_next(rd, &rec, &err) : -2;
	ok(rc == 0, "%s: end of stream when the writer closes", mode);
	unwatch();
	close(ap[1]);
	int st = 0;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: writer process finished cleanly (%d)",
	   mode, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	sreader_free(rd);
	close(dp[0]);
	bfree(&b);
	free_records(r, n);
}

/* =====================================================================
 * bad input
 * ===================================================================== */

/* Read bytes (from a file) until the reader stops; expect an EX_DATAERR
 * error after ngood records, with the name, pos and why in the message. */
static void expect_bad(const char *what, const void *d, size_t n, size_t ngood,
		       const char *pos, const char *why)
{
	json_t **got;
	size_t ng;
	slm_err err = { 0, "" };
	watch(what, 10);
	int rc = read_all(fd_of(d, n), "input.bin", &got, &ng, &err, NULL);
	unwatch();
	int good = rc == -1 && ng == ngood && err.code == EX_DATAERR &&
		   strstr(err.msg, "input.bin") && strstr(err.msg, pos) &&
		   strstr(err.msg, why) && !strchr(err.msg, '\n');
	ok(good, "%s: EX_DATAERR after %zu records with '%s' and '%s'", what, ngood, pos,
	   why);
	if (!good)
		diag("rc %d, %zu records, code %d, message: %s", rc, ng, err.code, err.msg);
	free_records(got, ng);
}

static void expect_bad_json(const char *what, const char *text, size_t ngood,
			    const char *pos, const char *why)
{
	expect_bad(what, text, strlen(text), ngood, pos, why);
}

/* Hostile prefixes must fail from the bytes already there, while the
 * writer keeps the pipe open (the reader must not wait for more). */
static void expect_bad_open_pipe(const char *what, const buf *b, size_t ngood,
				 const char *pos, const char *why)
{
	int p[2];
	if (pipe(p) != 0)
		abort();
	if (write(p[1], b->p, b->n) != (ssize_t)b->n)
		abort();
	slm_sreader *rd = sreader_new(p[0], "pipe");
	slm_err err = { 0, "" };
	json_t *rec = NULL;
	watch(what, 10);
	size_t ng = 0;
	int rc;
	while ((rc = sreader_next(rd, &rec, &err)) == 1) {
		json_decref(rec);
		rec = NULL;
		ng++;
	}
	unwatch();
	int good = rc == -1 && ng == ngood && err.code == EX_DATAERR && strstr(err.msg, "pipe") &&
		   strstr(err.msg, pos) && strstr(err.msg, why);
	ok(good, "%s: fails at once with the writer still open ('%s', '%s')", what, pos,
	   why);
	if (!good)
		diag("rc %d, code %d, message: %s", rc, err.code, err.msg);
	json_decref(rec);
	sreader_free(rd);
	close(p[0]);
	close(p[1]);
}

static void test_bad_input(void)
{
	buf b = { 0 }, first = { 0 };
	json_t *h = stream_header(NULL, NULL);
	bjson(&first, h);
	json_decref(h);
	char pos[64];

	bbytes(&b, 1, 0xc1);
	expect_bad("garbage byte 0xc1", b.p, b.n, 0, "byte 0", "0xc1");
	bfree(&b);

	bput(&b, first.p, first.n);
	bbytes(&b, 4, 0x81, 0xa1, 'a', 0xc1);
	snprintf(pos, sizeof pos, "byte %zu (record 2)", first.n + 3);
	expect_bad("0xc1 inside the second record", b.p, b.n, 1, pos, "0xc1");
	bfree(&b);

	bput(&b, first.p, first.n);
	bput(&b, first.p, first.n - 3);
	snprintf(pos, sizeof pos, "byte %zu (record 2)", first.n);
	expect_bad("truncated record at end of input", b.p, b.n, 1, pos, "truncated");
	bfree(&b);

	bbytes(&b, 5, 0xdb, 0xff, 0xff, 0xff, 0xff);
	expect_bad("str32 with a 4 GiB length prefix", b.p, b.n, 0, "byte 0", "limit");
	expect_bad_open_pipe("str32 with a 4 GiB length prefix", &b, 0, "byte 0", "limit");
	bfree(&b);

	bput(&b, first.p, first.n);
	bbytes(&b, 8, 0x81, 0xa1, 'x', 0xdb, 0xff, 0xff, 0xff, 0xff);
	snprintf(pos, sizeof pos, "byte %zu", first.n + 3);
	expect_bad_open_pipe("str32 4 GiB inside the second record", &b, 1, pos, "limit");
	bfree(&b);

	bbytes(&b, 5, 0xdd, 0xff, 0xff, 0xff, 0xff);
	expect_bad("array32 with count 0xFFFFFFFF", b.p, b.n, 0, "byte 0", "limit");
	expect_bad_open_pipe("array32 with count 0xFFFFFFFF", &b, 0, "byte 0", "limit");
	bfree(&b);

	bbytes(&b, 5, 0xdf, 0xff, 0xff, 0xff, 0xff);
	expect_bad_open_pipe("map32 with count 0xFFFFFFFF", &b, 0, "byte 0", "limit");
	bfree(&b);

	/* just over the record size limit */
	uint32_t l = SLM_STREAM_MAX_RECORD;
	bbytes(&b, 8, 0x81, 0xa1, 'x', 0xdb, l >> 24, (l >> 16) & 255, (l >> 8) & 255, l & 255);
	expect_bad_open_pipe("str32 of exactly the record size limit", &b, 0, "byte 3", "limit");
	bfree(&b);

	bbytes(&b, 3, 0x81, 0xa1, 'a');
	for (int i = 0; i < MPJ_MAX_DEPTH + 1; i++)
		bbytes(&b, 1, 0x91);
	bbytes(&b, 1, 0x01);
	snprintf(pos, sizeof pos, "byte %d", 3 + MPJ_MAX_DEPTH - 1);
	expect_bad("nesting deeper than MPJ_MAX_DEPTH", b.p, b.n, 0, pos, "deep");
	bfree(&b);

	bput(&b, first.p, first.n);
	bbytes(&b, 3, 0x92, 0x01, 0x02);
	snprintf(pos, sizeof pos, "byte %zu (record 2)", first.n);
	expect_bad("record that is an array", b.p, b.n, 1, pos, "not a map");
	bfree(&b);

	bbytes(&b, 1, 0x2a); /* a bare integer */
	expect_bad("record that is an integer", b.p, b.n, 0, "byte 0", "not a map");
	bfree(&b);

	/* records of the wrong shape, at the position of their first byte */
	struct {
		const char *what, *json, *why;
	} shapes[] = {
		{ "unknown record type", "{\"type\":\"bogus\",\"id\":1}", "unknown record type" },
		{ "seq with a negative token", "{\"type\":\"seq\",\"id\":1,\"tokens\":[1,-2]}",
		  "tokens" },
		{ "seq with string tokens", "{\"type\":\"seq\",\"id\":1,\"tokens\":[\"a\",\"b\"]}",
		  "tokens" },
		{ "tok without id", "{\"type\":\"tok\",\"token\":1}", "'id'" },
		{ "end without id", "{\"type\":\"end\",\"reason\":\"eos\"}", "'id'" },
		{ "header version 99", "{\"type\":\"header\",\"version\":99}", "version" },
		{ "record without type", "{\"id\":1,\"token\":2}", "type" },
	};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		bput(&b, first.p, first.n);
		bput(&b, first.p, first.n);
		json_t *v = J(shapes[i].json);
		bjson(&b, v);
		json_decref(v);
		snprintf(pos, sizeof pos, "byte %zu (record 3)", 2 * first.n);
		expect_bad(shapes[i].what, b.p, b.n, 2, pos, shapes[i].why);
		bfree(&b);
		/* and the same as JSON lines: line 3 */
		char text[512];
		snprintf(text, sizeof text,
			 "{\"type\":\"header\",\"version\":1}\n\n%s\n{\"type\":\"header\",\"version\":1}\n",
			 shapes[i].json);
		char what[128];
		snprintf(what, sizeof what, "JSON %s", shapes[i].what);
		expect_bad_json(what, text, 1, "line 3", shapes[i].why);
	}

	/* msgpack values JSON cannot hold */
	bput(&b, first.p, first.n);
	bbytes(&b, 5, 0x81, 0xa1, 'x', 0xc4, 0x00);
	snprintf(pos, sizeof pos, "byte %zu (record 2)", first.n);
	expect_bad("binary value in a record", b.p, b.n, 1, pos, "binary");
	bfree(&b);

	/* JSON lines */
	expect_bad_json("JSON line that is not JSON",
			"{\"type\":\"header\",\"version\":1}\n{\"type\":\n", 1, "line 2", "");
	expect_bad_json("JSON line with trailing garbage",
			"{\"type\":\"header\",\"version\":1}\n\n\n{\"type\":\"end\",\"id\":1,\"reason\":\"x\"} x\n",
			1, "line 4", "");
	expect_bad_json("JSON line that is an array",
			"{\"type\":\"header\",\"version\":1}\n[1,2]\n", 1, "line 2", "not a map");
	expect_bad_json("JSON duplicate key",
			"{\"type\":\"tok\",\"id\":1,\"token\":1,\"token\":2}\n", 0, "line 1",
			"duplicate");
	expect_bad_json("JSON line with a huge integer",
			"{\"type\":\"tok\",\"id\":1,\"token\":99999999999999999999999}\n", 0,
			"line 1", "");
	expect_bad_json("JSON truncated last line",
			"{\"type\":\"header\",\"version\":1}\n{\"type\":\"tok\",\"id\":1,\"tok", 1,
			"line 2", "");
	expect_bad_json("JSON after leading blank lines",
			"\n\n{\"type\":\"nope\"}\n", 0, "line 3", "unknown record type");
	bfree(&first);
}

int main(void)
{
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	test_scan_types();
	test_scan_errors();
	test_codec();
	test_records();
	test_roundtrip();
	test_live_pipe(0);
	test_live_pipe(1);
	test_bad_input();
	return done_testing();
}
