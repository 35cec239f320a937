/*
 * unit-safetensors.c - the safetensors reader on good files and on every
 * kind of malformed one it must refuse (each built here in memory or in a
 * temporary file): header length past the file or over the limit, header
 * not JSON, duplicate keys, bad dtype/shape/offsets, overlapping ranges.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "unit.h"

/* A file image: 8-byte little-endian length of hdr, hdr, then data bytes
 * 0, 1, 2, ... (ndata of them). hlen_override != 0 replaces the length. */
static uint8_t *image(const char *hdr, size_t ndata, uint64_t hlen_override,
		      size_t *n)
{
	size_t h = strlen(hdr);
	*n = 8 + h + ndata;
	uint8_t *b = malloc(*n);
	uint64_t hl = hlen_override ? hlen_override : h;
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(hl >> (8 * i));
	memcpy(b + 8, hdr, h);
	for (size_t i = 0; i < ndata; i++)
		b[8 + h + i] = (uint8_t)i;
	return b;
}

/* Open an image from memory; returns the st_open_mem result and leaves
 * the message in err. */
static int try_mem(const char *hdr, size_t ndata, uint64_t hlen, slm_err *err)
{
	size_t n;
	uint8_t *b = image(hdr, ndata, hlen, &n);
	st_file *f = NULL;
	memset(err, 0, sizeof *err);
	int rc = st_open_mem(&f, b, n, "x.safetensors", err);
	st_close(f);
	free(b);
	return rc;
}

/* A refused header: -1, EX_DATAERR, one line naming the file, the
 * offset and containing want. */
static void refused(const char *what, const char *hdr, size_t ndata, uint64_t hlen,
		    const char *want)
{
	slm_err err;
	int rc = try_mem(hdr, ndata, hlen, &err);
	ok(rc == -1 && err.code == EX_DATAERR, "%s: refused with EX_DATAERR", what);
	ok(strncmp(err.msg, "x.safetensors: offset ", 22) == 0 &&
		   strchr(err.msg, '\n') == NULL && strstr(err.msg, want) != NULL,
	   "%s: one line naming file, offset and '%s'", what, want);
	if (!strstr(err.msg, want))
		diag("message: %s", err.msg);
}

static void good_files(void)
{
	const char *hdr =
		"{\"__metadata__\":{\"format\":\"pt\",\"who\":\"me\"},"
		"\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
		"\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
		"\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[40,48]},"
		"\"z\":{\"dtype\":\"F16\",\"shape\":[0,7],\"data_offsets\":[32,32]}}    ";
	size_t n;
	uint8_t *b = image(hdr, 48, 0, &n);
	st_file *f;
	slm_err err;
	if (!ok(st_open_mem(&f, b, n, "good", &err) == 0, "good file opens")) {
		diag("%s", err.msg);
		free(b);
		return;
	}
	is_int(st_n_tensors(f), 4, "four tensors");
	is_int(st_data_offset(f), 8 + strlen(hdr), "data offset after the padded header");
	const st_tensor *t = st_tensor_at(f, 0);
	is_str(t->name, "b", "header order kept");
	t = st_find(f, "a");
	ok(t && !strcmp(t->dtype, "F32") && t->ndim == 2 && t->shape[0] == 2 &&
		   t->shape[1] == 3 && t->nelems == 6, "tensor a: F32 [2,3]");
	ok(t && t->data == b + 8 + strlen(hdr) && t->data[5] == 5,
	   "tensor a points into the buffer");
	t = st_find(f, "b");
	ok(t && t->data == b + 8 + strlen(hdr) + 24 && t->elem_bits == 16,
	   "tensor b: BF16 at offset 24");
	t = st_find(f, "s");
	ok(t && t->ndim == 0 && t->nelems == 1, "scalar: no dimensions, one element");
	t = st_find(f, "z");
	ok(t && t->nelems == 0 && t->begin == t->end, "empty tensor");
	ok(st_find(f, "nope") == NULL, "absent tensor not found");
	is_int(st_n_meta(f), 2, "two metadata entries");
	is_str(st_meta(f, "format"), "pt", "metadata format=pt");
	const char *k, *v;
	ok(st_meta_at(f, 1, &k, &v) == 0 && !strcmp(k, "who") && !strcmp(v, "me"),
	   "metadata in header order");
	ok(st_meta_at(f, 2, &k, &v) == -1, "metadata index out of range");
	st_close(f);
	free(b);

	/* hole between tensors: allowed */
	slm_err e2;
	ok(try_mem("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
		   "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}",
		   8, 0, &e2) == 0, "a gap between tensors is allowed");
	ok(try_mem("{}", 0, 0, &e2) == 0, "no tensors at all");
	ok(try_mem("{\"a\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[0,3]}}",
		   3, 0, &e2) == 0, "F4: six elements in three bytes");
}

static void bad_headers(void)
{
	slm_err err;
	ok(try_mem("", 0, 0, &err) == -1 && err.code == EX_DATAERR,
	   "empty header refused");
	{
		uint8_t b[5] = { 1, 2, 3, 4, 5 };
		st_file *f;
		ok(st_open_mem(&f, b, sizeof b, "tiny", &err) == -1 &&
			   strstr(err.msg, "8-byte header length"), "file shorter than 8 bytes");
	}
	refused("header length longer than the file", "{}", 0, 1000, "header length 1000");
	refused("4 GiB header length", "{}", 16, 1ull << 32, "header length 4294967296");
	refused("header length 2^64-1", "{}", 0, UINT64_MAX, "is longer than");
	refused("header not JSON", "{\"a\": nope}", 0, 0, "not valid JSON");
	refused("header a JSON array", "[1, 2]", 0, 0, "not a JSON object");
	refused("trailing garbage", "{} x", 0, 0, "not valid JSON");
	refused("duplicate keys",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
		"\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
		2, 0, "duplicate");
	refused("metadata not a map", "{\"__metadata__\":[1]}", 0, 0, "__metadata__");
	refused("metadata value not a string", "{\"__metadata__\":{\"k\":1}}", 0, 0,
		"entry 'k' is not a string");
	refused("tensor entry not a map", "{\"a\":3}", 0, 0, "not a JSON object");
	refused("control characters in a name stay on one line",
		"{\"a\\nb\\r\\u0001\":{\"dtype\":\"Q4\",\"shape\":[1],"
		"\"data_offsets\":[0,1]}}", 1, 0, "tensor 'a?b?" "?'");
	refused("dtype missing",
		"{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, 0, "'dtype'");
	refused("unknown dtype",
		"{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, 0,
		"unknown dtype 'Q4'");
	refused("shape not an array",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", 1, 0,
		"'shape'");
	refused("negative dimension",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, 0,
		"non-negative integer");
	refused("fractional dimension",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1, 0,
		"non-negative integer");
	refused("nine dimensions",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
		"\"data_offsets\":[0,1]}}", 1, 0, "more than 8 dimensions");
	refused("shape product overflow",
		"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],"
		"\"data_offsets\":[0,4]}}", 4, 0, "overflows");
	refused("byte count overflow",
		"{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
		"\"data_offsets\":[0,8]}}", 8, 0, "overflows");
	refused("F4 odd element count",
		"{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, 0,
		"whole bytes");
	refused("offsets not two integers",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1, 0,
		"'data_offsets'");
	refused("begin after end",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,1]}}", 2, 0,
		"begin after they end");
	refused("offsets past the end",
		"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0,
		"runs past the end");
	refused("offsets far past the end",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
		"\"data_offsets\":[9223372036854775806,9223372036854775807]}}", 8, 0,
		"runs past the end");
	refused("offsets beyond 64-bit signed range",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
		"\"data_offsets\":[18446744073709551614,18446744073709551615]}}", 8, 0,
		"too big integer");
	refused("dtype/shape size mismatch",
		"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16, 0,
		"holds 12 bytes but its F32 shape needs 16");
	refused("overlapping ranges",
		"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		"\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0,
		"overlaps");
	refused("one range inside another",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
		"\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9,10]},"
		"\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]}}", 10, 0,
		"overlaps");
	refused("same range twice",
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
		"\"b\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, 0,
		"overlaps");
	/* the position of a bad tensor is that of its key in the header */
	try_mem("{\"first\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
		"\"second\":{\"dtype\":\"XX\",\"shape\":[1],\"data_offsets\":[1,2]}}",
		2, 0, &err);
	ok(strstr(err.msg, "offset 65:") != NULL, "error names the key's offset");
	if (!strstr(err.msg, "offset 65:"))
		diag("message: %s", err.msg);
}

/* Files on disk: the mapped path, a missing file, and a header length
 * over the 100 MiB limit in a sparse file long enough to hold it. */
static void files(void)
{
	char dir[] = "/tmp/unit-safetensors.XXXXXX";
	if (!ok(mkdtemp(dir) != NULL, "temporary directory"))
		return;
	char path[256];
	snprintf(path, sizeof path, "%s/m.safetensors", dir);
	size_t n;
	uint8_t *b = image("{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}",
			   6, 0, &n);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ok(fd >= 0 && write(fd, b, n) == (ssize_t)n && close(fd) == 0, "file written");
	free(b);
	st_file *f;
	slm_err err;
	if (ok(st_open(&f, path, &err) == 0, "mapped file opens")) {
		const st_tensor *t = st_find(f, "w");
		ok(t && t->data[0] == 0 && t->data[5] == 5, "mapped tensor bytes");
		is_str(st_name(f), path, "file name kept");
		st_close(f);
	}

	snprintf(path, sizeof path, "%s/missing.safetensors", dir);
	ok(st_open(&f, path, &err) == -1 && err.code == EX_NOINPUT, "missing file: EX_NOINPUT");

	snprintf(path, sizeof path, "%s/big.safetensors", dir);
	uint64_t hl = ST_MAX_HEADER + 1ull;
	uint8_t len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)(hl >> (8 * i));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ok(fd >= 0 && write(fd, len, 8) == 8 && write(fd, "{", 1) == 1 &&
		   ftruncate(fd, (off_t)(8 + hl + 16)) == 0 && close(fd) == 0,
	   "sparse file with a 100 MiB + 1 header written");
	ok(st_open(&f, path, &err) == -1 && err.code == EX_DATAERR &&
		   strstr(err.msg, "exceeds the limit"), "header over 100 MiB refused");
	if (!strstr(err.msg, "exceeds the limit"))
		diag("message: %s", err.msg);

	snprintf(path, sizeof path, "%s/empty.safetensors", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	close(fd);
	ok(st_open(&f, path, &err) == -1 && err.code == EX_DATAERR, "empty file refused");

	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ok(system(cmd) == 0, "temporary directory removed");
}

int main(void)
{
	good_files();
	bad_headers();
	files();
	return done_testing();
}
