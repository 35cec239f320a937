/*
 * unit-gguf.c - tests for libcommon/gguf.c.
 *
 * Checks the reader against tests/data/gguf/expect.json (written by
 * scripts/make-gguf-fixtures.py from what the Python gguf package reads),
 * against the shared tokenizer vocabularies when present, and against
 * many malformed files made by mutating a fixture in memory.
 *
 * Environment: top_srcdir (default ".") locates tests/data/gguf;
 * SLM_SHARED (default $top_srcdir/../shared) locates the vocab/ GGUFs.
 * Prints "ok N - ..." / "not ok N - ..." lines (tests/unit.h) and the
 * plan; exits 1 if anything failed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gguf.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

/* A skipped test, counted as run ("ok N # skip reason"). */
static void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void skip(const char *fmt, ...)
{
	va_list ap;

	unit_run_++;
	printf("ok %d # skip ", unit_run_);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static int read_whole(const char *path, uint8_t **data, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	long sz;

	if (!fp)
		return -1;
	if (fseek(fp, 0, SEEK_END) || (sz = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET)) {
		fclose(fp);
		return -1;
	}
	*data = malloc(sz ? (size_t)sz : 1);
	if (!*data || fread(*data, 1, (size_t)sz, fp) != (size_t)sz) {
		fclose(fp);
		free(*data);
		return -1;
	}
	fclose(fp);
	*n = (size_t)sz;
	return 0;
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[2 * len] = '\0';
}

static int streq_g(gguf_str s, const char *c)
{
	return gguf_str_eq(s, c);
}

static void put64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64le(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ------------------------------------------------------------------ */
/* Walking every value: makes ASan see any out-of-bounds pointer.      */

static uint64_t touch_sum;

static int touch_array(const gguf_kv *kv, int depth)
{
	uint64_t i;

	if (depth > GGUF_MAX_ARRAY_DEPTH)
		return -1;
	for (i = 0; i < kv->arr_n; i++) {
		gguf_str s;
		gguf_kv sub;
		double d;
		int64_t v;

		switch (kv->arr_type) {
		case GGUF_T_STRING:
			if (gguf_arr_str(kv, i, &s))
				return -1;
			for (uint64_t k = 0; k < s.len; k++)
				touch_sum += (unsigned char)s.ptr[k];
			break;
		case GGUF_T_ARRAY:
			if (gguf_arr_sub(kv, i, &sub) || touch_array(&sub, depth + 1))
				return -1;
			break;
		case GGUF_T_FLOAT32:
		case GGUF_T_FLOAT64:
			if (gguf_arr_f64(kv, i, &d))
				return -1;
			touch_sum += (uint64_t)(d == d);
			break;
		case GGUF_T_UINT64: {
			uint64_t u;
			if (gguf_arr_u64(kv, i, &u))
				return -1;
			touch_sum += u;
			break;
		}
		default:
			if (gguf_arr_i64(kv, i, &v))
				return -1;
			touch_sum += (uint64_t)v;
			break;
		}
	}
	return 0;
}

/* Touch every key, value, element and tensor byte; 0 if all accessors
 * agreed with the counts. */
static int touch_all(const gguf_file *f)
{
	size_t i;

	for (i = 0; i < gguf_n_kv(f); i++) {
		const gguf_kv *kv = gguf_kv_at(f, i);
		for (uint64_t k = 0; k < kv->key.len; k++)
			touch_sum += (unsigned char)kv->key.ptr[k];
		for (uint64_t k = 0; k < kv->raw_size; k++)
			touch_sum += kv->raw[k];
		if (kv->type == GGUF_T_ARRAY && touch_array(kv, 1))
			return -1;
		if (kv->type == GGUF_T_STRING)
			for (uint64_t k = 0; k < kv->v.s.len; k++)
				touch_sum += (unsigned char)kv->v.s.ptr[k];
	}
	for (i = 0; i < gguf_n_tensors(f); i++) {
		const gguf_tensor *t = gguf_tensor_at(f, i);
		for (uint64_t k = 0; k < t->name.len; k++)
			touch_sum += (unsigned char)t->name.ptr[k];
		for (uint64_t k = 0; k < t->size; k++)
			touch_sum += t->data[k];
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Comparing with expect.json                                          */

static int check_elem(const gguf_kv *kv, uint64_t i, json_t *want, char *why, size_t whysz)
{
	switch (kv->arr_type) {
	case GGUF_T_STRING: {
		gguf_str s;
		if (gguf_arr_str(kv, i, &s) || !json_is_string(want) ||
		    s.len != json_string_length(want) ||
		    memcmp(s.ptr, json_string_value(want), s.len)) {
			snprintf(why, whysz, "string element %" PRIu64 " differs", i);
			return -1;
		}
		return 0;
	}
	case GGUF_T_FLOAT32:
	case GGUF_T_FLOAT64: {
		double d;
		if (gguf_arr_f64(kv, i, &d) || !json_is_number(want) || d != json_number_value(want)) {
			snprintf(why, whysz, "float element %" PRIu64 " differs", i);
			return -1;
		}
		return 0;
	}
	case GGUF_T_UINT64: {
		uint64_t u;
		if (gguf_arr_u64(kv, i, &u) || !json_is_string(want) ||
		    u != strtoull(json_string_value(want), NULL, 10)) {
			snprintf(why, whysz, "uint64 element %" PRIu64 " differs", i);
			return -1;
		}
		return 0;
	}
	case GGUF_T_BOOL: {
		int64_t v;
		if (gguf_arr_i64(kv, i, &v) || !json_is_boolean(want) || v != json_is_true(want)) {
			snprintf(why, whysz, "bool element %" PRIu64 " differs", i);
			return -1;
		}
		return 0;
	}
	default: {
		int64_t v;
		if (gguf_arr_i64(kv, i, &v) || !json_is_integer(want) ||
		    v != json_integer_value(want)) {
			snprintf(why, whysz, "integer element %" PRIu64 " differs", i);
			return -1;
		}
		return 0;
	}
	}
}

/* Compare the (possibly nested) array kv with GGUFReader's flattened
 * leaf list, starting at *pos. */
static int check_flat(const gguf_kv *kv, json_t *flat, size_t *pos, char *why, size_t whysz)
{
	for (uint64_t i = 0; i < kv->arr_n; i++) {
		if (kv->arr_type == GGUF_T_ARRAY) {
			gguf_kv sub;
			if (gguf_arr_sub(kv, i, &sub)) {
				snprintf(why, whysz, "gguf_arr_sub(%" PRIu64 ") failed", i);
				return -1;
			}
			if (check_flat(&sub, flat, pos, why, whysz))
				return -1;
			continue;
		}
		if (*pos >= json_array_size(flat)) {
			snprintf(why, whysz, "more elements than expected");
			return -1;
		}
		if (check_elem(kv, i, json_array_get(flat, (*pos)++), why, whysz))
			return -1;
	}
	return 0;
}

static int check_kv(const gguf_file *f, size_t idx, json_t *e, char *why, size_t whysz)
{
	const gguf_kv *kv = gguf_kv_at(f, idx);
	const char *key = json_string_value(json_object_get(e, "key"));
	int type = (int)json_integer_value(json_object_get(e, "type"));
	json_t *val = json_object_get(e, "value");

	if (!kv || !key || !streq_g(kv->key, key)) {
		snprintf(why, whysz, "key %zu is not '%s'", idx, key ? key : "?");
		return -1;
	}
	if (gguf_find(f, key) != kv) {
		snprintf(why, whysz, "gguf_find('%s') does not return kv %zu", key, idx);
		return -1;
	}
	if ((int)kv->type != type) {
		snprintf(why, whysz, "%s: type %d, expected %d", key, kv->type, type);
		return -1;
	}
	switch (kv->type) {
	case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: {
		uint64_t u;
		int64_t i;
		double d;
		if (kv->v.u != (uint64_t)json_integer_value(val) || gguf_get_u64(f, key, &u) ||
		    u != kv->v.u || gguf_get_i64(f, key, &i) || (uint64_t)i != u ||
		    gguf_get_f64(f, key, &d) || d != (double)u)
			goto bad;
		break;
	}
	case GGUF_T_UINT64: {
		uint64_t u;
		if (!json_is_string(val) || kv->v.u != strtoull(json_string_value(val), NULL, 10) ||
		    gguf_get_u64(f, key, &u) || u != kv->v.u)
			goto bad;
		break;
	}
	case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64: {
		int64_t i;
		if (!json_is_integer(val) || kv->v.i != json_integer_value(val) ||
		    gguf_get_i64(f, key, &i) || i != kv->v.i)
			goto bad;
		break;
	}
	case GGUF_T_FLOAT32: case GGUF_T_FLOAT64: {
		double d;
		if (!json_is_number(val) || kv->v.f != json_number_value(val) ||
		    gguf_get_f64(f, key, &d) || d != kv->v.f)
			goto bad;
		break;
	}
	case GGUF_T_BOOL: {
		int b;
		if (!json_is_boolean(val) || kv->v.b != json_is_true(val) ||
		    gguf_get_bool(f, key, &b) || b != kv->v.b)
			goto bad;
		break;
	}
	case GGUF_T_STRING: {
		gguf_str s;
		if (!json_is_string(val) || !streq_g(kv->v.s, json_string_value(val)) ||
		    gguf_get_str(f, key, &s) || s.ptr != kv->v.s.ptr || s.len != kv->v.s.len)
			goto bad;
		break;
	}
	case GGUF_T_ARRAY: {
		json_t *flat = json_object_get(e, "flat");
		size_t pos = 0;
		if ((int)kv->arr_type != json_integer_value(json_object_get(e, "arr_type")) ||
		    kv->arr_n != (uint64_t)json_integer_value(json_object_get(e, "arr_n"))) {
			snprintf(why, whysz, "%s: array type/length differ", key);
			return -1;
		}
		if (check_flat(kv, flat, &pos, why, whysz))
			return -1;
		if (pos != json_array_size(flat)) {
			snprintf(why, whysz, "%s: %zu leaves, expected %zu", key, pos,
				 json_array_size(flat));
			return -1;
		}
		break;
	}
	default:
		goto bad;
	}
	return 0;
bad:
	snprintf(why, whysz, "%s: value differs", key);
	return -1;
}

static int check_tensor(const gguf_file *f, size_t idx, json_t *e, char *why, size_t whysz)
{
	const gguf_tensor *t = gguf_tensor_at(f, idx);
	const char *name = json_string_value(json_object_get(e, "name"));
	json_t *ne = json_object_get(e, "ne");
	char hex[65];
	uint32_t d;

	if (!t || !name || !streq_g(t->name, name)) {
		snprintf(why, whysz, "tensor %zu is not '%s'", idx, name ? name : "?");
		return -1;
	}
	if (gguf_find_tensor(f, name) != t) {
		snprintf(why, whysz, "gguf_find_tensor('%s') is wrong", name);
		return -1;
	}
	if (t->ggml_type != json_integer_value(json_object_get(e, "type")) ||
	    !gguf_type_name(t->ggml_type) ||
	    strcmp(gguf_type_name(t->ggml_type), json_string_value(json_object_get(e, "type_name")))) {
		snprintf(why, whysz, "%s: type differs", name);
		return -1;
	}
	if (t->n_dims != json_array_size(ne)) {
		snprintf(why, whysz, "%s: n_dims %u, expected %zu", name, t->n_dims, json_array_size(ne));
		return -1;
	}
	for (d = 0; d < GGUF_MAX_DIMS; d++) {
		uint64_t want = d < t->n_dims ? (uint64_t)json_integer_value(json_array_get(ne, d)) : 1;
		if (t->ne[d] != want) {
			snprintf(why, whysz, "%s: ne[%u] = %" PRIu64 ", expected %" PRIu64,
				 name, d, t->ne[d], want);
			return -1;
		}
	}
	if (t->offset != (uint64_t)json_integer_value(json_object_get(e, "offset")) ||
	    t->size != (uint64_t)json_integer_value(json_object_get(e, "n_bytes"))) {
		snprintf(why, whysz, "%s: offset/size %" PRIu64 "/%" PRIu64 " differ", name,
			 t->offset, t->size);
		return -1;
	}
	if (t->data != gguf_bytes(f, NULL) + gguf_data_offset(f) + t->offset) {
		snprintf(why, whysz, "%s: data pointer wrong", name);
		return -1;
	}
	sha256_hex(t->data, t->size, hex);
	if (strcmp(hex, json_string_value(json_object_get(e, "sha256")))) {
		snprintf(why, whysz, "%s: sha256 %s differs", name, hex);
		return -1;
	}
	return 0;
}

static void check_fixture(const char *label, const gguf_file *f, json_t *exp)
{
	json_t *kvs = json_object_get(exp, "kv"), *ts = json_object_get(exp, "tensors");
	char why[512] = "";
	size_t i;
	int good;

	ok(gguf_version(f) == 3 &&
	   gguf_alignment(f) == (uint64_t)json_integer_value(json_object_get(exp, "alignment")) &&
	   gguf_data_offset(f) == (uint64_t)json_integer_value(json_object_get(exp, "data_offset")) &&
	   gguf_n_kv(f) == (size_t)json_integer_value(json_object_get(exp, "n_kv")) &&
	   gguf_n_tensors(f) == (size_t)json_integer_value(json_object_get(exp, "n_tensors")),
	   "%s: version, alignment, data offset and counts", label);

	good = json_array_size(kvs) == gguf_n_kv(f);
	for (i = 0; good && i < json_array_size(kvs); i++)
		if (check_kv(f, i, json_array_get(kvs, i), why, sizeof why))
			good = 0;
	if (!ok(good, "%s: %zu keys match the Python reader", label, json_array_size(kvs)))
		diag("%s", why);

	good = json_array_size(ts) == gguf_n_tensors(f);
	for (i = 0; good && i < json_array_size(ts); i++)
		if (check_tensor(f, i, json_array_get(ts, i), why, sizeof why))
			good = 0;
	if (!ok(good, "%s: %zu tensors (shape, type, offset, size, sha256) match", label,
		json_array_size(ts)))
		diag("%s", why);
	ok(gguf_kv_at(f, gguf_n_kv(f)) == NULL && gguf_tensor_at(f, gguf_n_tensors(f)) == NULL &&
	   gguf_find(f, "no.such.key") == NULL && gguf_find_tensor(f, "no.such.tensor") == NULL,
	   "%s: out-of-range and absent lookups give NULL", label);
	ok(touch_all(f) == 0, "%s: every value and tensor byte reachable", label);
}

/* ------------------------------------------------------------------ */
/* Getter semantics on all-types.gguf                                  */

static void check_getters(const gguf_file *f)
{
	uint64_t u;
	int64_t i;
	double d;
	int b;
	gguf_str s;
	const gguf_kv *kv;
	gguf_kv sub;

	ok(gguf_get_u64(f, "test.u8", &u) == 0 && u == 200 &&
	   gguf_get_u64(f, "test.i8", &u) == -1 &&
	   gguf_get_i64(f, "test.i8", &i) == 0 && i == -100 &&
	   gguf_get_u64(f, "test.u64", &u) == 0 && u == (1ULL << 63) + 5 &&
	   gguf_get_i64(f, "test.u64", &i) == -1 &&
	   gguf_get_i64(f, "test.u32", &i) == 0 && i == 4000000000LL &&
	   gguf_get_i64(f, "test.i64", &i) == 0 && i == -(1LL << 62) - 7,
	   "integer getters convert exactly and refuse out-of-range values");
	ok(gguf_get_f64(f, "test.f32_inexact", &d) == 0 && d == (double)0.1f &&
	   gguf_get_f64(f, "test.f64", &d) == 0 && d == -1.5e300 &&
	   gguf_get_f64(f, "test.i16", &d) == 0 && d == -30000.0 &&
	   gguf_get_f64(f, "test.string", &d) == -1 && gguf_get_f64(f, "test.bool_true", &d) == -1 &&
	   gguf_get_u64(f, "test.f32", &u) == -1,
	   "float getter takes floats and integers only");
	ok(gguf_get_bool(f, "test.bool_true", &b) == 0 && b == 1 &&
	   gguf_get_bool(f, "test.bool_false", &b) == 0 && b == 0 &&
	   gguf_get_bool(f, "test.u8", &b) == -1 && gguf_get_u64(f, "test.bool_true", &u) == -1,
	   "bool getter");
	ok(gguf_get_str(f, "test.empty_string", &s) == 0 && s.len == 0 &&
	   gguf_get_str(f, "general.architecture", &s) == 0 && streq_g(s, "slmtest") &&
	   gguf_get_str(f, "test.u8", &s) == -1 && gguf_get_str(f, "test.arr_str", &s) == -1 &&
	   gguf_get_u64(f, "test.missing", &u) == -1 && gguf_find(f, "test.u") == NULL &&
	   gguf_find(f, "test.u88") == NULL,
	   "string getter, missing keys and prefixes");

	kv = gguf_find(f, "test.arr_str");
	ok(kv && kv->arr_type == GGUF_T_STRING && kv->arr_n == 5 && kv->elem_off &&
	   gguf_arr_str(kv, 4, &s) == 0 && s.len == 40 && gguf_arr_str(kv, 2, &s) == 0 && s.len == 0 &&
	   gguf_arr_str(kv, 5, &s) == -1 && gguf_arr_str(kv, UINT64_MAX, &s) == -1 &&
	   gguf_arr_f64(kv, 0, &d) == -1 && gguf_arr_i64(kv, 0, &i) == -1 &&
	   gguf_arr_sub(kv, 0, &sub) == -1,
	   "string array access and bounds");
	kv = gguf_find(f, "test.arr_u64");
	ok(kv && gguf_arr_u64(kv, 1, &u) == 0 && u == UINT64_MAX && gguf_arr_i64(kv, 1, &i) == -1 &&
	   gguf_arr_i64(kv, 0, &i) == 0 && i == 0 && gguf_arr_f64(kv, 1, &d) == 0 &&
	   d == 18446744073709551615.0 && gguf_arr_str(kv, 0, &s) == -1 &&
	   gguf_arr_u64(kv, 2, &u) == -1,
	   "uint64 array conversions");
	kv = gguf_find(f, "test.arr_i8");
	ok(kv && gguf_arr_i64(kv, 0, &i) == 0 && i == -128 && gguf_arr_u64(kv, 0, &u) == -1 &&
	   gguf_arr_u64(kv, 2, &u) == 0 && u == 127 && gguf_arr_f64(kv, 0, &d) == 0 && d == -128.0,
	   "int8 array conversions");
	kv = gguf_find(f, "test.arr_bool");
	ok(kv && gguf_arr_i64(kv, 0, &i) == 0 && i == 1 && gguf_arr_i64(kv, 1, &i) == 0 && i == 0 &&
	   gguf_arr_f64(kv, 0, &d) == -1,
	   "bool array reads as 0/1 integers, not floats");
	kv = gguf_find(f, "test.nested");
	ok(kv && kv->arr_type == GGUF_T_ARRAY && kv->arr_n == 3 &&
	   gguf_arr_sub(kv, 2, &sub) == 0 && sub.arr_type == GGUF_T_INT32 && sub.arr_n == 3 &&
	   gguf_arr_i64(&sub, 2, &i) == 0 && i == 6 && gguf_arr_sub(kv, 3, &sub) == -1 &&
	   gguf_arr_i64(kv, 0, &i) == -1,
	   "nested array access");
	kv = gguf_find(f, "test.nested_str");
	ok(kv && gguf_arr_sub(kv, 0, &sub) == 0 && sub.arr_type == GGUF_T_STRING && sub.arr_n == 2 &&
	   gguf_arr_str(&sub, 1, &s) == 0 && streq_g(s, "yy") && gguf_arr_str(&sub, 2, &s) == -1 &&
	   gguf_get_str(f, "test.after_nested", &s) == 0 && streq_g(s, "still parsed"),
	   "nested string arrays, and the key after them");
	ok(gguf_kv_at(f, 0) && gguf_kv_at(f, 0)->raw_size == 8 + 7 &&
	   !strcmp(gguf_value_type_name(GGUF_T_FLOAT64), "float64") &&
	   gguf_value_type_name(GGUF_T_COUNT) == NULL,
	   "raw value bytes and value type names");
}

static void check_type_table(json_t *qs)
{
	const char *id;
	json_t *v;
	int good = 1;
	uint32_t be, bb, t;

	json_object_foreach(qs, id, v) {
		t = (uint32_t)strtoul(id, NULL, 10);
		/* q8_1: ggml's block_q8_1 is two halves and 32 quants, 36 bytes;
		 * gguf-py still lists the old layout with two floats, 40 */
		json_int_t want_bb = t == 9 ? 36 : json_integer_value(json_array_get(v, 2));
		if (gguf_type_block(t, &be, &bb) || !gguf_type_name(t) ||
		    strcmp(gguf_type_name(t), json_string_value(json_array_get(v, 0))) ||
		    be != json_integer_value(json_array_get(v, 1)) || bb != want_bb) {
			diag("ggml type %u differs from the Python table", t);
			good = 0;
		}
	}
	for (t = 0; t < 1000; t++) {
		char k[16];
		snprintf(k, sizeof k, "%u", t);
		if (!json_object_get(qs, k) && (gguf_type_name(t) || gguf_type_block(t, &be, &bb) == 0)) {
			diag("ggml type %u known to C but not to Python", t);
			good = 0;
		}
	}
	ok(good && gguf_type_name(UINT32_MAX) == NULL && gguf_type_block(4, NULL, NULL) == -1,
	   "ggml type table matches gguf-py's GGML_QUANT_SIZES (%zu types; q8_1 as ggml)", json_object_size(qs));
}

/* ------------------------------------------------------------------ */
/* Malformed input                                                     */

#define MUT_NAME "mut.gguf"

/* Open a private exact-size copy; fills err. */
static int open_copy(const uint8_t *buf, size_t n, slm_err *err, int touch)
{
	uint8_t *copy = malloc(n ? n : 1);
	gguf_file *f;
	int rc;

	memcpy(copy, buf, n);
	memset(err, 0, sizeof *err);
	rc = gguf_open_mem(&f, copy, n, MUT_NAME, err);
	if (rc == 0) {
		if (touch && touch_all(f))
			rc = -2;
		gguf_close(f);
	}
	free(copy);
	return rc;
}

/* A proper failure: -1, EX_DATAERR, "mut.gguf: offset N: ..." on one line. */
static int well_formed_error(const slm_err *err)
{
	const char *p = err->msg + strlen(MUT_NAME ": offset ");
	if (err->code != EX_DATAERR || strncmp(err->msg, MUT_NAME ": offset ", strlen(MUT_NAME ": offset ")))
		return 0;
	if (*p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return p[0] == ':' && p[1] == ' ' && p[2] && !strchr(err->msg, '\n');
}

static void expect_fail(const uint8_t *buf, size_t n, const char *substr, const char *desc)
{
	slm_err err;
	int rc = open_copy(buf, n, &err, 1);
	int good = rc == -1 && well_formed_error(&err) && (!substr || strstr(err.msg, substr));

	if (!ok(good, "%s", desc))
		diag("rc %d code %d msg \"%s\" (wanted \"%s\")", rc, err.code, err.msg,
		     substr ? substr : "");
	else
		diag("%s", err.msg);
}

static void expect_open(const uint8_t *buf, size_t n, const char *desc)
{
	slm_err err;
	int rc = open_copy(buf, n, &err, 1);
	if (!ok(rc == 0, "%s", desc))
		diag("rc %d: %s", rc, err.msg);
}

/* Offset of the length field of the length-prefixed string s in buf. */
static size_t find_lstr(const uint8_t *buf, size_t n, const char *s)
{
	size_t len = strlen(s);
	uint8_t pat[128];

	put64le(pat, len);
	memcpy(pat + 8, s, len);
	for (size_t i = 0; i + 8 + len <= n; i++)
		if (!memcmp(buf + i, pat, 8 + len))
			return i;
	fprintf(stderr, "fixture lacks '%s'\n", s);
	exit(2);
}

/* Offset just after a key's name (its value type field). */
static size_t key_end(const uint8_t *buf, size_t n, const char *key)
{
	return find_lstr(buf, n, key) + 8 + strlen(key);
}

static uint8_t *dup_buf(const uint8_t *b, size_t n)
{
	uint8_t *c = malloc(n);
	memcpy(c, b, n);
	return c;
}

/* A minimal GGUF writer for hand-made files. */
typedef struct {
	uint8_t *p;
	size_t n, cap;
} bld;

static void b_put(bld *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void b_u32(bld *b, uint32_t v)
{
	uint8_t t[4];
	put32le(t, v);
	b_put(b, t, 4);
}

static void b_u64(bld *b, uint64_t v)
{
	uint8_t t[8];
	put64le(t, v);
	b_put(b, t, 8);
}

static void b_str(bld *b, const char *s)
{
	b_u64(b, strlen(s));
	b_put(b, s, strlen(s));
}

static void b_header(bld *b, uint32_t version, uint64_t n_t, uint64_t n_kv)
{
	b_put(b, "GGUF", 4);
	b_u32(b, version);
	b_u64(b, n_t);
	b_u64(b, n_kv);
}

/* A file with one key holding arrays nested depth deep around one int. */
static bld nested_file(int depth)
{
	bld b = { 0 };
	b_header(&b, 3, 0, 1);
	b_str(&b, "deep");
	b_u32(&b, GGUF_T_ARRAY);
	for (int d = 1; d < depth; d++) {
		b_u32(&b, GGUF_T_ARRAY);
		b_u64(&b, 1);
	}
	b_u32(&b, GGUF_T_INT32);
	b_u64(&b, 1);
	b_u32(&b, 42);
	return b;
}

static void check_handmade(void)
{
	bld b = { 0 };
	gguf_file *f;
	slm_err err;

	b_header(&b, 2, 0, 0);
	ok(gguf_open_mem(&f, b.p, b.n, "tiny", &err) == 0 && gguf_version(f) == 2 &&
	   gguf_n_kv(f) == 0 && gguf_n_tensors(f) == 0 && gguf_alignment(f) == 32,
	   "v2 file with no keys and no tensors opens");
	if (f)
		gguf_close(f);
	free(b.p);

	b = nested_file(GGUF_MAX_ARRAY_DEPTH);
	{
		int good = gguf_open_mem(&f, b.p, b.n, "deep", &err) == 0;
		if (good) {
			const gguf_kv *kv = gguf_find(f, "deep");
			gguf_kv cur = *kv, sub;
			int64_t v = 0;
			for (int d = 1; d < GGUF_MAX_ARRAY_DEPTH && good; d++) {
				good = gguf_arr_sub(&cur, 0, &sub) == 0;
				cur = sub;
			}
			good = good && gguf_arr_i64(&cur, 0, &v) == 0 && v == 42;
			gguf_close(f);
		} else {
			diag("%s", err.msg);
		}
		ok(good, "arrays nested %d deep open and can be walked", GGUF_MAX_ARRAY_DEPTH);
	}
	free(b.p);
	b = nested_file(GGUF_MAX_ARRAY_DEPTH + 1);
	expect_fail(b.p, b.n, "nested more than", "arrays nested one level too deep fail");
	free(b.p);
	b = nested_file(100000);
	expect_fail(b.p, b.n, "nested more than", "arrays nested 100000 deep fail (no stack blowup)");
	free(b.p);

	/* A 4 GiB string length prefix: an error, never an allocation. */
	memset(&b, 0, sizeof b);
	b_header(&b, 3, 0, 1);
	b_str(&b, "s");
	b_u32(&b, GGUF_T_STRING);
	b_u64(&b, 1ULL << 32);
	b_put(&b, "abc", 3);
	expect_fail(b.p, b.n, "exceeds", "4 GiB string length prefix fails");
	free(b.p);

	/* Many empty arrays of arrays: huge count for nested arrays. */
	memset(&b, 0, sizeof b);
	b_header(&b, 3, 0, 1);
	b_str(&b, "a");
	b_u32(&b, GGUF_T_ARRAY);
	b_u32(&b, GGUF_T_ARRAY);
	b_u64(&b, 1ULL << 40);
	b_u32(&b, GGUF_T_UINT8);
	b_u64(&b, 0);
	expect_fail(b.p, b.n, "array of", "2^40 arrays of arrays fail before allocating");
	free(b.p);

	/* Zero-element tensor (ne[1] = 0) is allowed, with size 0. */
	memset(&b, 0, sizeof b);
	b_header(&b, 3, 1, 0);
	b_str(&b, "z");
	b_u32(&b, 2);
	b_u64(&b, 32);
	b_u64(&b, 0);
	b_u32(&b, 2 /* q4_0 */);
	b_u64(&b, 0);
	while (b.n % 32)
		b_put(&b, "", 1);
	ok(gguf_open_mem(&f, b.p, b.n, "z", &err) == 0 && gguf_tensor_at(f, 0)->size == 0,
	   "tensor with a zero dimension opens with size 0");
	if (f)
		gguf_close(f);
	/* An exotic but known type: size from the table. */
	b.p[24 + 9 + 4 + 16] = 17; /* iq2_xs */
	b.p[24 + 9 + 4] = 0;       /* ne[0] = 256 */
	b.p[24 + 9 + 4 + 1] = 1;
	b.p[24 + 9 + 4 + 8] = 1;   /* ne[1] = 1 */
	{
		bld c = { 0 };
		b_put(&c, b.p, b.n);
		for (int k = 0; k < 74; k++)
			b_put(&c, "\x11", 1);
		ok(gguf_open_mem(&f, c.p, c.n, "iq", &err) == 0 &&
		   gguf_tensor_at(f, 0)->size == 74 && !strcmp(gguf_type_name(17), "iq2_xs"),
		   "iq2_xs tensor opens with size from the block table");
		if (f)
			gguf_close(f);
		expect_fail(c.p, c.n - 1, "past end of file", "iq2_xs tensor one byte short fails");
		free(c.p);
	}
	free(b.p);
}

static void check_malformed(const uint8_t *base, size_t n, json_t *exp)
{
	uint64_t data_off = (uint64_t)json_integer_value(json_object_get(exp, "data_offset"));
	json_t *ts = json_object_get(exp, "tensors");
	uint64_t need = data_off;
	uint8_t *m;
	size_t p, len;
	int good;
	slm_err err;

	for (size_t i = 0; i < json_array_size(ts); i++) {
		json_t *t = json_array_get(ts, i);
		uint64_t end = data_off + (uint64_t)json_integer_value(json_object_get(t, "offset")) +
			       (uint64_t)json_integer_value(json_object_get(t, "n_bytes"));
		if (end > need)
			need = end;
	}

	/* Every prefix shorter than the end of the last tensor must fail. */
	good = 1;
	for (len = 0; len < need; len++) {
		if (open_copy(base, len, &err, 1) != -1 || !well_formed_error(&err)) {
			diag("prefix %zu: %s", len, err.msg);
			good = 0;
			break;
		}
	}
	ok(good, "all %" PRIu64 " truncations (header, tables and data) fail cleanly", need);
	expect_open(base, need, "file cut right after the last tensor's data opens");
	expect_fail(base, 0, "empty file", "empty buffer fails");

	m = dup_buf(base, n);
	memcpy(m, "GGUX", 4);
	expect_fail(m, n, "not a GGUF file", "wrong magic");
	memcpy(m, base, n);
	put32le(m + 4, 1);
	expect_fail(m, n, "unsupported GGUF version 1", "version 1");
	put32le(m + 4, 4);
	expect_fail(m, n, "unsupported GGUF version 4", "version 4");
	put32le(m + 4, 0x03000000);
	expect_fail(m, n, "big-endian", "big-endian file");
	put32le(m + 4, 2);
	expect_open(m, n, "same file marked version 2 opens");
	memcpy(m, base, n);

	put64le(m + 8, UINT64_MAX);
	expect_fail(m, n, "tensor count", "n_tensors = 2^64-1");
	put64le(m + 8, 1ULL << 32);
	expect_fail(m, n, "tensor count", "n_tensors = 2^32");
	put64le(m + 8, get64le(base + 8) + 1);
	expect_fail(m, n, NULL, "n_tensors one too many");
	memcpy(m, base, n);
	put64le(m + 16, UINT64_MAX);
	expect_fail(m, n, "key count", "n_kv = 2^64-1");
	put64le(m + 16, get64le(base + 16) + 1);
	expect_fail(m, n, NULL, "n_kv one too many");
	memcpy(m, base, n);

	put64le(m + 24, UINT64_MAX);
	expect_fail(m, n, "key length 18446744073709551615 exceeds", "first key length 2^64-1");
	put64le(m + 24, 0xFFFFFFFFULL);
	expect_fail(m, n, "exceeds", "first key length 0xFFFFFFFF");
	memcpy(m, base, n);

	p = key_end(base, n, "general.architecture") + 4;
	put64le(m + p, 0xFFFFFFFFFFFFFFFFULL);
	expect_fail(m, n, "string length", "string value length 2^64-1");
	put64le(m + p, 1ULL << 32);
	expect_fail(m, n, "string length", "string value length 4 GiB");
	memcpy(m, base, n);

	p = key_end(base, n, "test.u8");
	put32le(m + p, 13);
	expect_fail(m, n, "unknown value type 13", "value type 13");
	put32le(m + p, 0xFFFFFFFF);
	expect_fail(m, n, "unknown value type", "value type 2^32-1");
	memcpy(m, base, n);

	p = key_end(base, n, "test.bool_true") + 4;
	m[p] = 2;
	expect_fail(m, n, "not 0 or 1", "bool value 2");
	memcpy(m, base, n);
	p = key_end(base, n, "test.arr_bool") + 4 + 12;
	m[p + 1] = 0xff;
	expect_fail(m, n, "not 0 or 1", "bool array element 255");
	memcpy(m, base, n);

	p = key_end(base, n, "test.arr_u8") + 4;
	put32le(m + p, 77);
	expect_fail(m, n, "unknown array element type 77", "array element type 77");
	memcpy(m, base, n);
	put64le(m + p + 4, UINT64_MAX);
	expect_fail(m, n, "array of 18446744073709551615", "uint8 array count 2^64-1");
	put64le(m + p + 4, 0xFFFFFFFFULL);
	expect_fail(m, n, "array of", "uint8 array count 0xFFFFFFFF");
	memcpy(m, base, n);
	p = key_end(base, n, "test.arr_f64") + 4;
	put64le(m + p + 4, (UINT64_MAX / 8) + 2); /* count * 8 wraps around */
	expect_fail(m, n, "array of", "float64 array count whose byte size wraps");
	memcpy(m, base, n);
	p = key_end(base, n, "test.arr_str") + 4;
	put64le(m + p + 4, 1ULL << 60);
	expect_fail(m, n, "array of", "string array count 2^60");
	put64le(m + p + 4, 6);
	expect_fail(m, n, NULL, "string array count one too many");
	memcpy(m, base, n);
	put64le(m + p + 12, UINT64_MAX - 3);
	expect_fail(m, n, "string length", "string array element length 2^64-4");
	memcpy(m, base, n);
	p = key_end(base, n, "test.nested") + 4;
	put64le(m + p + 4, UINT64_MAX / 12 + 1);
	expect_fail(m, n, "array of", "nested array count 2^64/12");
	memcpy(m, base, n);
	put64le(m + p + 12 + 4, 1ULL << 62); /* first inner array's count */
	expect_fail(m, n, "array of", "inner array count 2^62");
	memcpy(m, base, n);

	p = find_lstr(base, n, "test.i8");
	m[p + 8 + 5] = 'u';
	expect_fail(m, n, "duplicate key", "duplicate key");
	memcpy(m, base, n);

	p = find_lstr(base, n, "t.f16");
	memcpy(m + p + 8, "t.f32", 5);
	expect_fail(m, n, "duplicate tensor name", "duplicate tensor name");
	memcpy(m, base, n);

	p = find_lstr(base, n, "t.f16") + 8 + 5; /* n_dims */
	put32le(m + p, 5);
	expect_fail(m, n, "5 dimensions", "n_dims 5");
	put32le(m + p, 0);
	expect_fail(m, n, "0 dimensions", "n_dims 0");
	memcpy(m, base, n);
	/* t.f16: 3 dims, then type at p + 4 + 24, offset after that */
	put32le(m + p + 4 + 24, 4);
	expect_fail(m, n, "unsupported ggml type 4", "removed ggml type 4");
	put32le(m + p + 4 + 24, 42);
	expect_fail(m, n, "unsupported ggml type 42", "ggml type 42 past the table");
	put32le(m + p + 4 + 24, 0xFFFFFFFF);
	expect_fail(m, n, "unsupported ggml type", "ggml type 2^32-1");
	memcpy(m, base, n);
	put64le(m + p + 4 + 24 + 4, 65);
	expect_fail(m, n, "not a multiple of the alignment", "misaligned tensor offset");
	memcpy(m, base, n);
	put64le(m + p + 4, 1ULL << 40);
	put64le(m + p + 4 + 8, 1ULL << 40);
	expect_fail(m, n, "overflows", "element count overflow (2^40 x 2^40)");
	memcpy(m, base, n);
	put64le(m + p + 4, 1ULL << 63);
	expect_fail(m, n, "too large", "dimension 2^63");
	memcpy(m, base, n);
	put64le(m + p + 4, 1ULL << 40);
	expect_fail(m, n, "past end of file", "huge but valid element count exceeds the file");
	memcpy(m, base, n);

	p = find_lstr(base, n, "t.q8_0") + 8 + 6;
	put64le(m + p + 4, 48);
	expect_fail(m, n, "not a multiple of the block size 32", "q8_0 row length 48");
	memcpy(m, base, n);
	p = find_lstr(base, n, "t.q4_k") + 8 + 6;
	put64le(m + p + 4, 128);
	expect_fail(m, n, "block size 256", "q4_k row length 128");
	memcpy(m, base, n);

	p = find_lstr(base, n, "t.f32_4d") + 8 + 8; /* n_dims */
	put64le(m + p + 4 + 16, 2);                /* ne[2]: 1 -> 2 doubles the size */
	expect_fail(m, n, "data extends past end of file", "last tensor grown past EOF");
	memcpy(m, base, n);
	put64le(m + p + 4 + 32 + 4, 1ULL << 40);
	expect_fail(m, n, "data extends past end of file", "tensor offset 2^40");
	put64le(m + p + 4 + 32 + 4, UINT64_MAX & ~31ULL);
	expect_fail(m, n, "data extends past end of file", "tensor offset near 2^64 (overflow)");
	memcpy(m, base, n);
	free(m);
}

static void check_alignment_mutations(const uint8_t *base, size_t n)
{
	uint8_t *m = dup_buf(base, n);
	size_t p = key_end(base, n, "general.alignment");

	expect_open(m, n, "align64 fixture opens from memory");
	put32le(m + p + 4, 48);
	expect_fail(m, n, "not a power of two", "alignment 48");
	put32le(m + p + 4, 0);
	expect_fail(m, n, "not a power of two", "alignment 0");
	put32le(m + p + 4, 1U << 31);
	expect_fail(m, n, NULL, "alignment 2^31 puts data past EOF");
	memcpy(m, base, n);
	put32le(m + p, GGUF_T_INT32);
	expect_fail(m, n, "must be uint32", "alignment stored as int32");
	memcpy(m, base, n);
	free(m);
}

/* Random mutations of the metadata and tensor tables: must never crash,
 * and either open consistently or fail with a proper message. */
static void check_fuzz(const uint8_t *base, size_t n, size_t hdr_end, int rounds)
{
	static const uint64_t interesting[] = {
		0, 1, 2, 3, 4, 7, 8, 9, 12, 13, 31, 32, 33, 255, 256, 0x7fffffff,
		0xffffffff, 0x100000000ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
		0xffffffffffffffffULL, 0xfffffffffffffff8ULL,
	};
	uint8_t *m = malloc(n);
	unsigned long long seed = 0x9e3779b97f4a7c15ULL;
	int opened = 0, failed = 0, bad = 0;

	for (int r = 0; r < rounds; r++) {
		slm_err err;
		int k, rc, edits;

		memcpy(m, base, n);
		edits = 1 + r % 4;
		for (k = 0; k < edits; k++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			size_t at = (size_t)((seed >> 17) % hdr_end);
			if ((seed >> 8) & 1) {
				m[at] = (uint8_t)(seed >> 40);
			} else {
				uint64_t v = interesting[(seed >> 44) % (sizeof interesting / sizeof *interesting)];
				for (int b = 0; b < 8 && at + (size_t)b < n; b++)
					m[at + (size_t)b] = (uint8_t)(v >> (8 * b));
			}
		}
		rc = open_copy(m, n, &err, 1);
		if (rc == 0)
			opened++;
		else if (rc == -1 && well_formed_error(&err))
			failed++;
		else {
			if (bad++ < 5)
				diag("round %d: rc %d: %s", r, rc, err.msg);
		}
	}
	free(m);
	ok(bad == 0, "%d random header mutations: %d opened, %d failed cleanly, %d bad",
	   rounds, opened, failed, bad);
}

/* ------------------------------------------------------------------ */
/* Files on disk                                                       */

static void check_paths(const char *fixture)
{
	gguf_file *f = NULL;
	slm_err err;
	char tmpl[] = "/tmp/unit-gguf-XXXXXX";
	int fd = mkstemp(tmpl);

	memset(&err, 0, sizeof err);
	ok(fd >= 0 && gguf_open(&f, tmpl, &err) == -1 && err.code == EX_DATAERR &&
	   strstr(err.msg, "empty file") && !strncmp(err.msg, tmpl, strlen(tmpl)),
	   "empty file fails with EX_DATAERR naming the file");
	if (fd >= 0) {
		/* a file of 3 bytes */
		if (write(fd, "GGU", 3) != 3)
			diag("write failed");
		ok(gguf_open(&f, tmpl, &err) == -1 && err.code == EX_DATAERR &&
		   strstr(err.msg, "not a GGUF file"), "3-byte file fails");
		close(fd);
		unlink(tmpl);
	}
	ok(gguf_open(&f, "/nonexistent/x.gguf", &err) == -1 && err.code == EX_NOINPUT &&
	   strstr(err.msg, "/nonexistent/x.gguf"), "missing file fails with EX_NOINPUT");
	ok(gguf_open(&f, "/tmp", &err) == -1 && err.code == EX_NOINPUT,
	   "directory fails with EX_NOINPUT");
	ok(gguf_open(&f, "-", &err) == -1 && err.code == EX_USAGE && f == NULL,
	   "\"-\" is refused");
	ok(gguf_open(&f, fixture, &err) == 0 && f && !strcmp(gguf_name(f), fixture),
	   "gguf_open keeps the path as the name");
	gguf_close(f);
	gguf_close(NULL);
}

static void array_digest(const gguf_kv *kv, char out[65])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE], b[8];
	unsigned int len = 0;

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	for (uint64_t i = 0; i < kv->arr_n; i++) {
		switch (kv->arr_type) {
		case GGUF_T_STRING: {
			gguf_str s = { 0 };
			gguf_arr_str(kv, i, &s);
			put64le(b, s.len);
			EVP_DigestUpdate(c, b, 8);
			EVP_DigestUpdate(c, s.ptr, s.len);
			break;
		}
		case GGUF_T_FLOAT32:
		case GGUF_T_FLOAT64: {
			double d = 0;
			uint64_t u;
			gguf_arr_f64(kv, i, &d);
			memcpy(&u, &d, 8);
			put64le(b, u);
			EVP_DigestUpdate(c, b, 8);
			break;
		}
		case GGUF_T_UINT64: {
			uint64_t u = 0;
			gguf_arr_u64(kv, i, &u);
			put64le(b, u);
			EVP_DigestUpdate(c, b, 8);
			break;
		}
		default: {
			int64_t v = 0;
			gguf_arr_i64(kv, i, &v);
			put64le(b, (uint64_t)v);
			EVP_DigestUpdate(c, b, 8);
			break;
		}
		}
	}
	EVP_DigestFinal_ex(c, md, &len);
	EVP_MD_CTX_free(c);
	for (unsigned int i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[2 * len] = '\0';
}

static void check_vocab(const char *shared, json_t *vexp)
{
	char *dir = xasprintf("%s/vocab", shared);
	struct dirent **ents = NULL, *de;
	const char *name;
	json_t *v;
	int n_files = 0, n_ents, di;

	n_ents = scandir(dir, &ents, NULL, alphasort);
	if (n_ents < 0) {
		skip("shared vocabularies not found at %s (set SLM_SHARED)", dir);
		free(dir);
		return;
	}
	for (di = 0; di < n_ents; di++) {
		de = ents[di];
		size_t l = strlen(de->d_name);
		char *path;
		gguf_file *f;
		slm_err err;
		json_t *e;
		int good;

		if (l < 5 || strcmp(de->d_name + l - 5, ".gguf"))
			continue;
		n_files++;
		path = xasprintf("%s/%s", dir, de->d_name);
		good = gguf_open(&f, path, &err) == 0;
		if (!good) {
			ok(0, "vocab %s opens", de->d_name);
			diag("%s", err.msg);
			free(path);
			continue;
		}
		good = touch_all(f) == 0;
		e = json_object_get(vexp, de->d_name);
		if (!e) {
			ok(good, "vocab %s opens (no Python expectations recorded)",
			   de->d_name);
		} else {
			json_t *arrs = json_object_get(e, "arrays"), *a;
			const char *key;
			char why[256] = "";
			const gguf_kv *tok = gguf_find(f, "tokenizer.ggml.tokens");

			if (gguf_n_kv(f) != (size_t)json_integer_value(json_object_get(e, "n_kv")) ||
			    gguf_n_tensors(f) != (size_t)json_integer_value(json_object_get(e, "n_tensors"))) {
				snprintf(why, sizeof why, "counts differ");
				good = 0;
			}
			json_object_foreach(arrs, key, a) {
				const gguf_kv *kv = gguf_find(f, key);
				char hex[65];
				if (!kv || kv->type != GGUF_T_ARRAY ||
				    (int)kv->arr_type != json_integer_value(json_object_get(a, "arr_type")) ||
				    kv->arr_n != (uint64_t)json_integer_value(json_object_get(a, "n"))) {
					snprintf(why, sizeof why, "%s: type or length differs", key);
					good = 0;
					continue;
				}
				array_digest(kv, hex);
				if (strcmp(hex, json_string_value(json_object_get(a, "sha256")))) {
					snprintf(why, sizeof why, "%s: element digest differs", key);
					good = 0;
				}
			}
			if (!ok(good && tok, "vocab %s: %" PRIu64 " tokens; keys and %zu arrays "
				"match the Python reader", de->d_name, tok ? tok->arr_n : 0,
				json_object_size(arrs)))
				diag("%s", why);
		}
		gguf_close(f);
		free(path);
	}
	for (di = 0; di < n_ents; di++)
		free(ents[di]);
	free(ents);
	json_object_foreach(vexp, name, v) {
		char *path = xasprintf("%s/%s", dir, name);
		if (access(path, F_OK))
			skip("vocab %s recorded in expect.json but absent", name);
		free(path);
	}
	if (!n_files)
		skip("no .gguf files in %s", dir);
	free(dir);
}

int main(void)
{
	const char *top = getenv("top_srcdir");
	const char *shared_env = getenv("SLM_SHARED");
	char *datadir, *expath, *shared;
	json_t *expect, *fixtures, *fx, *all;
	json_error_t jerr;
	const char *fname;

	if (!top || !*top)
		top = ".";
	datadir = xasprintf("%s/tests/data/gguf", top);
	expath = xasprintf("%s/expect.json", datadir);
	shared = shared_env && *shared_env ? xasprintf("%s", shared_env)
					   : xasprintf("%s/../shared", top);
	expect = json_load_file(expath, 0, &jerr);
	if (!expect) {
		ok(0, "load %s: %s", expath, jerr.text);
		return done_testing();
	}
	fixtures = json_object_get(expect, "fixtures");

	json_object_foreach(fixtures, fname, fx) {
		char *path = xasprintf("%s/%s", datadir, fname);
		gguf_file *f = NULL;
		slm_err err;
		uint8_t *buf = NULL;
		size_t n = 0;

		if (!ok(gguf_open(&f, path, &err) == 0, "%s opens (mmap)", fname)) {
			diag("%s", err.msg);
		} else {
			check_fixture(fname, f, fx);
			if (!strcmp(fname, "all-types.gguf"))
				check_getters(f);
			gguf_close(f);
		}
		if (read_whole(path, &buf, &n) == 0) {
			if (!ok(gguf_open_mem(&f, buf, n, fname, &err) == 0, "%s opens (memory)", fname))
				diag("%s", err.msg);
			else {
				ok(gguf_bytes(f, NULL) == buf, "%s: gguf_open_mem borrows the buffer", fname);
				check_fixture(fname, f, fx);
				gguf_close(f);
			}
			if (!strcmp(fname, "align64.gguf"))
				check_alignment_mutations(buf, n);
			free(buf);
		} else {
			ok(0, "read %s", path);
		}
		free(path);
	}

	check_type_table(json_object_get(expect, "quant_sizes"));

	all = json_object_get(fixtures, "all-types.gguf");
	{
		char *path = xasprintf("%s/all-types.gguf", datadir);
		uint8_t *buf;
		size_t n;
		if (all && read_whole(path, &buf, &n) == 0) {
			check_malformed(buf, n, all);
			check_fuzz(buf, n, (size_t)json_integer_value(json_object_get(all, "data_offset")),
				   20000);
			free(buf);
		} else {
			ok(0, "all-types.gguf fixture present");
		}
		check_paths(path);
		free(path);
	}
	check_handmade();
	check_vocab(shared, json_object_get(expect, "vocab"));

	json_decref(expect);
	free(datadir);
	free(expath);
	free(shared);
	return done_testing();
}
