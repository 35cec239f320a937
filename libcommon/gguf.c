/*
 * gguf.c - read-only GGUF v2/v3 reader, safe against hostile input.
 *
 * File layout (all little-endian):
 *   "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 value type, value },
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 *                 u64 offset },
 *   padding to the alignment, tensor data.
 * A string is a u64 byte count and the bytes; an array value is a u32
 * element type, a u64 count and the elements (arrays may hold arrays).
 *
 * Everything is checked once in gguf_open*; the accessors then trust the
 * checked structure but still never step outside a value's bytes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gguf.h"
#include "dtype.h"

#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct gguf_file {
	const uint8_t *base;
	size_t size;
	int mapped;           /* base is our mmap */
	char *name;
	uint32_t version;
	uint64_t alignment;
	uint64_t data_off;
	size_t n_kv;
	gguf_kv *kv;
	size_t *kv_hash;      /* open addressing: index + 1, 0 = empty */
	size_t kv_hmask;
	size_t n_tensors;
	gguf_tensor *t;
	size_t *t_hash;
	size_t t_hmask;
};

/* ---------------------------------------------------------------------
 * ggml tensor types: dtype.c's table
 */

const char *gguf_type_name(uint32_t ggml_type)
{
	const slm_dtype *dt = dtype_by_ggml(ggml_type);
	return dt ? dt->name : NULL;
}

int gguf_type_block(uint32_t ggml_type, uint32_t *block_elems, uint32_t *block_bytes)
{
	const slm_dtype *dt = dtype_by_ggml(ggml_type);
	if (!dt)
		return -1;
	if (block_elems)
		*block_elems = dt->block_elems;
	if (block_bytes)
		*block_bytes = dt->block_bytes;
	return 0;
}

static const char *const value_type_names[GGUF_T_COUNT] = {
	"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64",
};

const char *gguf_value_type_name(uint32_t type)
{
	return type < GGUF_T_COUNT ? value_type_names[type] : NULL;
}

/* Size of a fixed-size value type, 0 for string and array. */
static const uint8_t scalar_size[GGUF_T_COUNT] = {
	1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8,
};

/* ---------------------------------------------------------------------
 * Little-endian decoding (host-independent)
 */

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int is_int_type(uint32_t t)
{
	return t <= GGUF_T_INT32 || t == GGUF_T_UINT64 || t == GGUF_T_INT64;
}

static int is_signed_type(uint32_t t)
{
	return t == GGUF_T_INT8 || t == GGUF_T_INT16 || t == GGUF_T_INT32 ||
	       t == GGUF_T_INT64;
}

/* Decode a scalar of type t at p: integers into *u (unsigned) or *i
 * (signed), floats into *d, bools into *u. */
static void decode_scalar(uint32_t t, const uint8_t *p, uint64_t *u, int64_t *i, double *d)
{
	switch (t) {
	case GGUF_T_UINT8: case GGUF_T_BOOL: *u = p[0]; break;
	case GGUF_T_INT8: *i = (int8_t)p[0]; break;
	case GGUF_T_UINT16: *u = le16(p); break;
	case GGUF_T_INT16: *i = (int16_t)le16(p); break;
	case GGUF_T_UINT32: *u = le32(p); break;
	case GGUF_T_INT32: *i = (int32_t)le32(p); break;
	case GGUF_T_UINT64: *u = le64(p); break;
	case GGUF_T_INT64: *i = (int64_t)le64(p); break;
	case GGUF_T_FLOAT32: {
		uint32_t b = le32(p);
		float f;
		memcpy(&f, &b, sizeof f);
		*d = f;
		break;
	}
	case GGUF_T_FLOAT64: {
		uint64_t b = le64(p);
		memcpy(d, &b, sizeof *d);
		break;
	}
	default: break;
	}
}

/* ---------------------------------------------------------------------
 * Checked reading with error reporting
 */

typedef struct rd {
	const uint8_t *base;
	size_t size;
	size_t pos;
	const char *name;
	slm_err *err;     /* may be NULL: fail silently */
	char what[160];   /* context: "key 'x'", "tensor 'y'", ... */
} rd;

static int rd_fail(rd *r, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int rd_fail(rd *r, size_t off, const char *fmt, ...)
{
	char msg[SLM_ERR_MAX];
	va_list ap;

	if (!r->err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r->what[0])
		return slm_seterr(r->err, EX_DATAERR, "%s: offset %zu: %s: %s",
				  r->name, off, r->what, msg);
	return slm_seterr(r->err, EX_DATAERR, "%s: offset %zu: %s", r->name, off, msg);
}

static size_t rd_left(const rd *r)
{
	return r->size - r->pos;
}

static int rd_need(rd *r, uint64_t n, const char *item)
{
	if (n > rd_left(r))
		return rd_fail(r, r->pos, "unexpected end of file reading %s "
			       "(%llu bytes needed, %zu left)", item,
			       (unsigned long long)n, rd_left(r));
	return 0;
}

static int rd_u32(rd *r, uint32_t *v, const char *item)
{
	if (rd_need(r, 4, item))
		return -1;
	*v = le32(r->base + r->pos);
	r->pos += 4;
	return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *item)
{
	if (rd_need(r, 8, item))
		return -1;
	*v = le64(r->base + r->pos);
	r->pos += 8;
	return 0;
}

static int rd_str(rd *r, gguf_str *s, const char *item)
{
	size_t at = r->pos;
	uint64_t len;

	if (rd_u64(r, &len, item))
		return -1;
	if (len > rd_left(r))
		return rd_fail(r, at, "%s length %llu exceeds the %zu bytes left in the file",
			       item, (unsigned long long)len, rd_left(r));
	s->ptr = (const char *)r->base + r->pos;
	s->len = len;
	r->pos += (size_t)len;
	return 0;
}

/* Quote a name from the file for a one-line message: printable ASCII kept,
 * everything else as \xNN, long names cut with "...". */
static void quote_name(char *out, size_t outsz, const char *p, uint64_t len)
{
	size_t o = 0;
	uint64_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (o + 8 >= outsz || i >= 64) {
			memcpy(out + o, "...", 4);
			return;
		}
		if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\')
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

static void set_what(rd *r, const char *kind, gguf_str name)
{
	char q[sizeof r->what - 16];
	quote_name(q, sizeof q, name.ptr, name.len);
	snprintf(r->what, sizeof r->what, "%s '%s'", kind, q);
}

/* ---------------------------------------------------------------------
 * Values
 */

static int check_vtype(rd *r, size_t at, uint32_t t, const char *what)
{
	if (t >= GGUF_T_COUNT)
		return rd_fail(r, at, "unknown %s %u", what, t);
	return 0;
}

/* Check and skip one value of type t (already read) at r->pos. depth is
 * the number of arrays enclosing it. */
static int skip_value(rd *r, uint32_t t, int depth);

/* Check and skip the body of an array (element type and count at r->pos).
 * On success *et, *n and *first describe it. If offs is non-NULL (top
 * level only) and the elements are strings or arrays, *offs receives a
 * malloc'd table of element offsets from *first. */
static int skip_array(rd *r, int depth, uint32_t *et, uint64_t *n, size_t *first,
		      uint64_t **offs)
{
	size_t at = r->pos;
	uint64_t cnt, i, min;
	uint32_t t;

	if (depth >= GGUF_MAX_ARRAY_DEPTH)
		return rd_fail(r, at, "arrays nested more than %d deep", GGUF_MAX_ARRAY_DEPTH);
	if (rd_u32(r, &t, "array element type"))
		return -1;
	if (check_vtype(r, at, t, "array element type"))
		return -1;
	if (rd_u64(r, &cnt, "array length"))
		return -1;
	/* Smallest possible element: a scalar, an empty string (8), an empty
	 * array (12). Check the count before looping or allocating. */
	min = scalar_size[t] ? scalar_size[t] : t == GGUF_T_STRING ? 8 : 12;
	if (cnt > rd_left(r) / min)
		return rd_fail(r, at + 4, "array of %llu %s elements cannot fit in the "
			       "%zu bytes left in the file", (unsigned long long)cnt,
			       value_type_names[t], rd_left(r));
	*et = t;
	*n = cnt;
	*first = r->pos;
	if (scalar_size[t]) {
		if (t == GGUF_T_BOOL) {
			for (i = 0; i < cnt; i++)
				if (r->base[r->pos + i] > 1)
					return rd_fail(r, r->pos + (size_t)i,
						       "bool array element %llu is %u, not 0 or 1",
						       (unsigned long long)i, r->base[r->pos + i]);
		}
		r->pos += (size_t)(cnt * min);
		return 0;
	}
	if (offs) {
		*offs = malloc(cnt ? (size_t)cnt * sizeof **offs : 1);
		if (!*offs) {
			if (r->err)
				slm_seterr(r->err, EX_OSERR, "%s: out of memory", r->name);
			return -1;
		}
	}
	for (i = 0; i < cnt; i++) {
		if (offs)
			(*offs)[i] = r->pos - *first;
		if (skip_value(r, t, depth + 1)) {
			if (offs) {
				free(*offs);
				*offs = NULL;
			}
			return -1;
		}
	}
	return 0;
}

static int skip_value(rd *r, uint32_t t, int depth)
{
	/* callers checked t (check_vtype); said again for the optimizer */
	if (t >= GGUF_T_COUNT)
		return rd_fail(r, r->pos, "value type %u unknown", t);
	if (scalar_size[t]) {
		if (rd_need(r, scalar_size[t], value_type_names[t]))
			return -1;
		if (t == GGUF_T_BOOL && r->base[r->pos] > 1)
			return rd_fail(r, r->pos, "bool value is %u, not 0 or 1", r->base[r->pos]);
		r->pos += scalar_size[t];
		return 0;
	}
	if (t == GGUF_T_STRING) {
		gguf_str s;
		return rd_str(r, &s, "string");
	}
	{
		uint32_t et;
		uint64_t n;
		size_t first;
		return skip_array(r, depth, &et, &n, &first, NULL);
	}
}

/* ---------------------------------------------------------------------
 * Hash index (FNV-1a) for keys and tensor names
 */

static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	while (n--) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static size_t *hash_new(size_t n, size_t *mask)
{
	size_t cap = 8;
	while (cap < n * 2)
		cap *= 2;
	*mask = cap - 1;
	return calloc(cap, sizeof(size_t));
}

/* Slot for a name: holds 0 (absent; insert here) or index + 1 of the
 * entry with that name. Entries are stride bytes apart, each with a
 * gguf_str at name_off. */
static size_t hash_slot(const size_t *tab, size_t mask, const void *entries,
			size_t stride, size_t name_off, const void *p, size_t len)
{
	size_t h = (size_t)hash_bytes(p, len) & mask;

	for (;;) {
		size_t e = tab[h];
		gguf_str n;

		if (!e)
			return h;
		memcpy(&n, (const char *)entries + (e - 1) * stride + name_off, sizeof n);
		if (n.len == len && !memcmp(n.ptr, p, len))
			return h;
		h = (h + 1) & mask;
	}
}

#define KV_SLOT(f, p, len) \
	hash_slot((f)->kv_hash, (f)->kv_hmask, (f)->kv, sizeof(gguf_kv), \
		  offsetof(gguf_kv, key), (p), (len))
#define T_SLOT(f, p, len) \
	hash_slot((f)->t_hash, (f)->t_hmask, (f)->t, sizeof(gguf_tensor), \
		  offsetof(gguf_tensor, name), (p), (len))

/* ---------------------------------------------------------------------
 * Open
 */

static void free_parts(gguf_file *f)
{
	size_t i;

	if (f->kv)
		for (i = 0; i < f->n_kv; i++)
			free((void *)f->kv[i].elem_off);
	free(f->kv);
	free(f->kv_hash);
	free(f->t);
	free(f->t_hash);
	free(f->name);
}

void gguf_close(gguf_file *f)
{
	if (!f)
		return;
	if (f->mapped && f->base)
		munmap((void *)f->base, f->size);
	free_parts(f);
	free(f);
}

static int oom(slm_err *err, const char *name)
{
	return slm_seterr(err, EX_OSERR, "%s: out of memory", name);
}

static int parse_kvs(gguf_file *f, rd *r, uint64_t n_kv)
{
	size_t i;

	f->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *f->kv);
	f->kv_hash = hash_new((size_t)n_kv, &f->kv_hmask);
	if (!f->kv || !f->kv_hash)
		return oom(r->err, r->name);
	for (i = 0; i < n_kv; i++) {
		gguf_kv *kv = &f->kv[i];
		size_t key_at = r->pos, at, slot;
		uint32_t t;

		snprintf(r->what, sizeof r->what, "key #%zu", i);
		if (rd_str(r, &kv->key, "key"))
			return -1;
		set_what(r, "key", kv->key);
		slot = KV_SLOT(f, kv->key.ptr, (size_t)kv->key.len);
		if (f->kv_hash[slot])
			return rd_fail(r, key_at, "duplicate key");
		f->kv_hash[slot] = i + 1;
		f->n_kv = i + 1; /* for free_parts */

		at = r->pos;
		if (rd_u32(r, &t, "value type") || check_vtype(r, at, t, "value type"))
			return -1;
		kv->type = (gguf_type)t;
		at = r->pos;
		if (t == GGUF_T_ARRAY) {
			uint32_t et;
			uint64_t n, *offs = NULL;
			size_t first;
			if (skip_array(r, 0, &et, &n, &first, &offs))
				return -1;
			kv->arr_type = (gguf_type)et;
			kv->arr_n = n;
			kv->raw = r->base + first;
			kv->raw_size = r->pos - first;
			kv->elem_off = offs;
			continue;
		}
		if (skip_value(r, t, 0))
			return -1;
		kv->raw = r->base + at;
		kv->raw_size = r->pos - at;
		if (t == GGUF_T_STRING) {
			kv->v.s.ptr = (const char *)kv->raw + 8;
			kv->v.s.len = kv->raw_size - 8;
		} else if (t == GGUF_T_BOOL) {
			kv->v.b = kv->raw[0];
		} else {
			uint64_t u = 0;
			int64_t iv = 0;
			double d = 0;
			decode_scalar(t, kv->raw, &u, &iv, &d);
			if (t == GGUF_T_FLOAT32 || t == GGUF_T_FLOAT64)
				kv->v.f = d;
			else if (is_signed_type(t))
				kv->v.i = iv;
			else
				kv->v.u = u;
		}
	}
	r->what[0] = '\0';
	return 0;
}

static int parse_tensors(gguf_file *f, rd *r, uint64_t n_t, size_t *info_at)
{
	size_t i;

	f->t = calloc(n_t ? (size_t)n_t : 1, sizeof *f->t);
	f->t_hash = hash_new((size_t)n_t, &f->t_hmask);
	if (!f->t || !f->t_hash)
		return oom(r->err, r->name);
	for (i = 0; i < n_t; i++) {
		gguf_tensor *t = &f->t[i];
		const slm_dtype *dt;
		size_t name_at = r->pos, at, slot;
		uint64_t nel = 1, sz, d;

		snprintf(r->what, sizeof r->what, "tensor #%zu", i);
		if (rd_str(r, &t->name, "tensor name"))
			return -1;
		set_what(r, "tensor", t->name);
		slot = T_SLOT(f, t->name.ptr, (size_t)t->name.len);
		if (f->t_hash[slot])
			return rd_fail(r, name_at, "duplicate tensor name");
		f->t_hash[slot] = i + 1;

		at = r->pos;
		if (rd_u32(r, &t->n_dims, "dimension count"))
			return -1;
		if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
			return rd_fail(r, at, "%u dimensions (must be 1 to %d)",
				       t->n_dims, GGUF_MAX_DIMS);
		for (d = 0; d < GGUF_MAX_DIMS; d++)
			t->ne[d] = 1;
		for (d = 0; d < t->n_dims; d++) {
			at = r->pos;
			if (rd_u64(r, &t->ne[d], "dimension"))
				return -1;
			if (t->ne[d] > (uint64_t)INT64_MAX)
				return rd_fail(r, at, "dimension %llu is %llu, too large",
					       (unsigned long long)d, (unsigned long long)t->ne[d]);
			if (slm_mul_ok(nel, t->ne[d], &nel) || nel > (uint64_t)INT64_MAX)
				return rd_fail(r, at, "element count overflows (dimensions "
					       "multiply to more than 2^63)");
		}
		at = r->pos;
		if (rd_u32(r, &t->ggml_type, "tensor type"))
			return -1;
		dt = dtype_by_ggml(t->ggml_type);
		if (!dt)
			return rd_fail(r, at, "unsupported ggml type %u", t->ggml_type);
		if (t->ne[0] % dt->block_elems)
			return rd_fail(r, at, "ne[0] = %llu is not a multiple of the "
				       "block size %u of type %s",
				       (unsigned long long)t->ne[0], dt->block_elems, dt->name);
		/* bytes = ne[0]/blck * bytes_per_block * ne[1] * ne[2] * ne[3] */
		if (slm_mul_ok(t->ne[0] / dt->block_elems, dt->block_bytes, &sz))
			return rd_fail(r, at, "tensor size overflows");
		for (d = 1; d < GGUF_MAX_DIMS; d++)
			if (slm_mul_ok(sz, t->ne[d], &sz))
				return rd_fail(r, at, "tensor size overflows");
		t->size = sz;
		info_at[i] = r->pos;
		if (rd_u64(r, &t->offset, "tensor data offset"))
			return -1;
	}
	r->what[0] = '\0';
	return 0;
}

static int check_alignment(gguf_file *f, rd *r)
{
	const gguf_kv *kv = gguf_find(f, "general.alignment");

	f->alignment = GGUF_DEFAULT_ALIGNMENT;
	if (!kv)
		return 0;
	snprintf(r->what, sizeof r->what, "key 'general.alignment'");
	if (kv->type != GGUF_T_UINT32)
		return rd_fail(r, (size_t)((const uint8_t *)kv->key.ptr + kv->key.len - r->base),
			       "value type is %s, must be uint32",
			       value_type_names[kv->type]);
	if (kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)))
		return rd_fail(r, (size_t)(kv->raw - r->base),
			       "alignment %llu is not a power of two",
			       (unsigned long long)kv->v.u);
	f->alignment = kv->v.u;
	r->what[0] = '\0';
	return 0;
}

static int parse(gguf_file *f, slm_err *err)
{
	rd r = { .base = f->base, .size = f->size, .pos = 0, .name = f->name, .err = err };
	uint64_t n_t, n_kv;
	uint32_t v;
	size_t *info_at = NULL, i, pad;
	int rc = -1;

	r.what[0] = '\0';
	if (f->size == 0)
		return rd_fail(&r, 0, "empty file");
	if (f->size < 4 || memcmp(f->base, "GGUF", 4)) {
		char q[40];
		quote_name(q, sizeof q, (const char *)f->base, f->size < 4 ? f->size : 4);
		return rd_fail(&r, 0, "not a GGUF file (magic '%s', expected 'GGUF')", q);
	}
	r.pos = 4;
	if (rd_u32(&r, &v, "version"))
		return -1;
	if ((v & 0xffff) == 0 && v != 0 && __builtin_bswap32(v) <= 3)
		return rd_fail(&r, 4, "big-endian GGUF file (version %u byte-swapped) "
			       "is not supported", __builtin_bswap32(v));
	if (v != 2 && v != 3)
		return rd_fail(&r, 4, "unsupported GGUF version %u (only 2 and 3 are)", v);
	f->version = v;
	if (rd_u64(&r, &n_t, "tensor count") || rd_u64(&r, &n_kv, "key count"))
		return -1;
	/* A key takes at least 13 bytes (length, type, 1-byte value), a tensor
	 * info at least 32 (length, n_dims, one dimension, type, offset). */
	if (n_kv > rd_left(&r) / 13)
		return rd_fail(&r, 16, "key count %llu is more than the %zu bytes left "
			       "in the file can hold", (unsigned long long)n_kv, rd_left(&r));
	if (n_t > rd_left(&r) / 32)
		return rd_fail(&r, 8, "tensor count %llu is more than the %zu bytes left "
			       "in the file can hold", (unsigned long long)n_t, rd_left(&r));
	if (parse_kvs(f, &r, n_kv))
		return -1;
	if (check_alignment(f, &r))
		return -1;
	if (n_t > rd_left(&r) / 32)
		return rd_fail(&r, 8, "tensor count %llu is more than the %zu bytes left "
			       "after the metadata can hold", (unsigned long long)n_t,
			       rd_left(&r));
	info_at = malloc(n_t ? (size_t)n_t * sizeof *info_at : 1);
	if (!info_at)
		return oom(err, f->name);
	if (parse_tensors(f, &r, n_t, info_at))
		goto out;
	f->n_tensors = (size_t)n_t;

	/* The data section starts at the next multiple of the alignment. */
	pad = (size_t)((f->alignment - r.pos % f->alignment) % f->alignment);
	f->data_off = (uint64_t)r.pos + pad;
	if (n_t && f->data_off > f->size) {
		rd_fail(&r, r.pos, "tensor data section would start at %llu, past the "
			"end of the file (%zu bytes)", (unsigned long long)f->data_off, f->size);
		goto out;
	}
	for (i = 0; i < n_t; i++) {
		gguf_tensor *t = &f->t[i];
		uint64_t avail = f->size - f->data_off, end;

		set_what(&r, "tensor", t->name);
		if (t->offset % f->alignment) {
			rd_fail(&r, info_at[i], "data offset %llu is not a multiple of the "
				"alignment %llu", (unsigned long long)t->offset,
				(unsigned long long)f->alignment);
			goto out;
		}
		if (slm_add_ok(t->offset, t->size, &end) || end > avail) {
			rd_fail(&r, info_at[i], "data extends past end of file (offset %llu + "
				"%llu bytes, data section holds %llu)",
				(unsigned long long)t->offset, (unsigned long long)t->size,
				(unsigned long long)avail);
			goto out;
		}
		t->data = f->base + f->data_off + t->offset;
	}
	rc = 0;
out:
	free(info_at);
	return rc;
}

int gguf_open_mem(gguf_file **out, const void *data, size_t n, const char *name,
		  slm_err *err)
{
	gguf_file *f;

	*out = NULL;
	if (!name)
		name = "<memory>";
	f = calloc(1, sizeof *f);
	if (!f || !(f->name = strdup(name))) {
		free(f);
		return oom(err, name);
	}
	f->base = data;
	f->size = n;
	if (parse(f, err)) {
		gguf_close(f);
		return -1;
	}
	*out = f;
	return 0;
}

int gguf_open(gguf_file **out, const char *path, slm_err *err)
{
	gguf_file *f;
	const uint8_t *m;
	size_t size;

	*out = NULL;
	if (!strcmp(path, "-"))
		return slm_seterr(err, EX_USAGE, "-: GGUF from standard input is not "
				  "supported (spool it to a file first)");
	if (slm_map_file(path, &m, &size, err) < 0)
		return -1;
	if (size == 0)
		return slm_seterr(err, EX_DATAERR, "%s: offset 0: empty file", path);
	f = calloc(1, sizeof *f);
	if (!f || !(f->name = strdup(path))) {
		free(f);
		munmap((void *)m, size);
		return oom(err, path);
	}
	f->base = m;
	f->size = size;
	f->mapped = 1;
	if (parse(f, err)) {
		gguf_close(f);
		return -1;
	}
	*out = f;
	return 0;
}

/* ---------------------------------------------------------------------
 * Accessors
 */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_alignment(const gguf_file *f) { return f->alignment; }
const char *gguf_name(const gguf_file *f) { return f->name; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_off; }
size_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
size_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const uint8_t *gguf_bytes(const gguf_file *f, size_t *size)
{
	if (size)
		*size = f->size;
	return f->base;
}

const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i)
{
	return i < f->n_kv ? &f->kv[i] : NULL;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i)
{
	return i < f->n_tensors ? &f->t[i] : NULL;
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key)
{
	size_t slot, len = strlen(key);
	slot = KV_SLOT(f, key, len);
	return f->kv_hash[slot] ? &f->kv[f->kv_hash[slot] - 1] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
	size_t slot, len = strlen(name);
	slot = T_SLOT(f, name, len);
	return f->t_hash[slot] ? &f->t[f->t_hash[slot] - 1] : NULL;
}

int gguf_str_eq(gguf_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len == n && !memcmp(s.ptr, c, n);
}

/* Integer conversions shared by getters and array access. kind: 'u' for
 * a uint64_t result, 'i' for int64_t. */
static int conv_u64(uint32_t t, uint64_t u, int64_t i, uint64_t *out)
{
	if (!is_int_type(t) && t != GGUF_T_BOOL)
		return -1;
	if (is_signed_type(t)) {
		if (i < 0)
			return -1;
		*out = (uint64_t)i;
	} else {
		*out = u;
	}
	return 0;
}

static int conv_i64(uint32_t t, uint64_t u, int64_t i, int64_t *out)
{
	if (!is_int_type(t) && t != GGUF_T_BOOL)
		return -1;
	if (is_signed_type(t)) {
		*out = i;
	} else {
		if (u > (uint64_t)INT64_MAX)
			return -1;
		*out = (int64_t)u;
	}
	return 0;
}

static int conv_f64(uint32_t t, uint64_t u, int64_t i, double d, double *out)
{
	if (t == GGUF_T_FLOAT32 || t == GGUF_T_FLOAT64)
		*out = d;
	else if (is_signed_type(t))
		*out = (double)i;
	else if (is_int_type(t))
		*out = (double)u;
	else
		return -1;
	return 0;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out)
{
	const gguf_kv *kv = gguf_find(f, key);
	if (!kv || kv->type == GGUF_T_BOOL)
		return -1;
	return conv_u64(kv->type, kv->v.u, kv->v.i, out);
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out)
{
	const gguf_kv *kv = gguf_find(f, key);
	if (!kv || kv->type == GGUF_T_BOOL)
		return -1;
	return conv_i64(kv->type, kv->v.u, kv->v.i, out);
}

int gguf_get_f64(const gguf_file *f, const char *key, double *out)
{
	const gguf_kv *kv = gguf_find(f, key);
	if (!kv)
		return -1;
	return conv_f64(kv->type, kv->v.u, kv->v.i, kv->v.f, out);
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out)
{
	const gguf_kv *kv = gguf_find(f, key);
	if (!kv || kv->type != GGUF_T_BOOL)
		return -1;
	*out = kv->v.b;
	return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out)
{
	const gguf_kv *kv = gguf_find(f, key);
	if (!kv || kv->type != GGUF_T_STRING)
		return -1;
	*out = kv->v.s;
	return 0;
}

/* Element i of a scalar array, decoded. */
static int arr_scalar(const gguf_kv *kv, uint64_t i, uint64_t *u, int64_t *iv, double *d)
{
	uint64_t sz;

	if (kv->type != GGUF_T_ARRAY || kv->arr_type >= GGUF_T_COUNT || i >= kv->arr_n)
		return -1;
	sz = scalar_size[kv->arr_type];
	if (!sz || i >= kv->raw_size / sz)
		return -1;
	decode_scalar(kv->arr_type, kv->raw + i * sz, u, iv, d);
	return 0;
}

int gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out)
{
	uint64_t u = 0;
	int64_t iv = 0;
	double d = 0;
	if (kv->arr_type == GGUF_T_BOOL || arr_scalar(kv, i, &u, &iv, &d))
		return -1;
	return conv_f64(kv->arr_type, u, iv, d, out);
}

int gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out)
{
	uint64_t u = 0;
	int64_t iv = 0;
	double d = 0;
	if (arr_scalar(kv, i, &u, &iv, &d))
		return -1;
	return conv_i64(kv->arr_type, u, iv, out);
}

int gguf_arr_u64(const gguf_kv *kv, uint64_t i, uint64_t *out)
{
	uint64_t u = 0;
	int64_t iv = 0;
	double d = 0;
	if (arr_scalar(kv, i, &u, &iv, &d))
		return -1;
	return conv_u64(kv->arr_type, u, iv, out);
}

/* Offset from kv->raw of element i of an array of strings or arrays:
 * from the index if there is one, else by walking (bounded by raw_size). */
static int elem_offset(const gguf_kv *kv, uint64_t i, uint64_t *off)
{
	rd r;
	uint64_t k;

	if (kv->type != GGUF_T_ARRAY || i >= kv->arr_n ||
	    (kv->arr_type != GGUF_T_STRING && kv->arr_type != GGUF_T_ARRAY))
		return -1;
	if (kv->elem_off) {
		*off = kv->elem_off[i];
		return *off < kv->raw_size ? 0 : -1;
	}
	memset(&r, 0, sizeof r);
	r.base = kv->raw;
	r.size = (size_t)kv->raw_size;
	for (k = 0; k < i; k++)
		if (skip_value(&r, kv->arr_type, 1))
			return -1;
	*off = r.pos;
	return 0;
}

int gguf_arr_str(const gguf_kv *kv, uint64_t i, gguf_str *out)
{
	uint64_t off, len;

	if (kv->arr_type != GGUF_T_STRING || elem_offset(kv, i, &off))
		return -1;
	if (kv->raw_size - off < 8)
		return -1;
	len = le64(kv->raw + off);
	if (len > kv->raw_size - off - 8)
		return -1;
	out->ptr = (const char *)kv->raw + off + 8;
	out->len = len;
	return 0;
}

int gguf_arr_sub(const gguf_kv *kv, uint64_t i, gguf_kv *out)
{
	uint64_t off;
	uint32_t et;
	uint64_t n;
	size_t first;
	rd r;

	if (kv->arr_type != GGUF_T_ARRAY || elem_offset(kv, i, &off))
		return -1;
	memset(&r, 0, sizeof r);
	r.base = kv->raw;
	r.size = (size_t)kv->raw_size;
	r.pos = (size_t)off;
	if (skip_array(&r, 1, &et, &n, &first, NULL))
		return -1;
	memset(out, 0, sizeof *out);
	out->key = kv->key;
	out->type = GGUF_T_ARRAY;
	out->arr_type = (gguf_type)et;
	out->arr_n = n;
	out->raw = kv->raw + first;
	out->raw_size = r.pos - first;
	out->elem_off = NULL;
	return 0;
}
