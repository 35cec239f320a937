/*
 * jinja.c - the Jinja interpreter's values: the arena everything lives
 * in, insertion-ordered dicts, Python's ==/< between values, and values
 * printed the way Python prints them (str(), repr(), json.dumps()), with
 * the Unicode properties those need.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "jinja_int.h"

/* ---- arena ---- */

struct ja_chunk {
	ja_chunk *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

#define JA_CHUNK (64 * 1024)

static void ja_fail(jarena *a)
{
	if (a->fail)
		a->fail(a->ud, "out of memory");
	slm_die(EX_OSERR, "out of memory");
}

static void too_deep(jarena *a)
{
	if (a->fail)
		a->fail(a->ud, "value nested too deeply");
	slm_die(EX_SOFTWARE, "value nested too deeply");
}

static ja_chunk *ja_newchunk(jarena *a, size_t size)
{
	if (a->limit && (size > a->limit || a->total > a->limit - size))
		ja_fail(a);
	ja_chunk *c = calloc(1, sizeof *c + size);
	if (!c)
		ja_fail(a);
	c->size = size;
	a->total += size;
	return c;
}

void *ja_alloc(jarena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (!n)
		n = 16;
	ja_chunk *h = a->head;
	if (h && h->size - h->used >= n) {
		void *p = h->data + h->used;
		h->used += n;
		return p;
	}
	if (n > JA_CHUNK / 4) {
		/* a big block gets a chunk of its own, behind the head */
		ja_chunk *c = ja_newchunk(a, n);
		c->used = n;
		if (h) {
			c->next = h->next;
			h->next = c;
		} else {
			a->head = c;
		}
		return c->data;
	}
	ja_chunk *c = ja_newchunk(a, JA_CHUNK);
	c->next = h;
	a->head = c;
	c->used = n;
	return c->data;
}

void *ja_grow(jarena *a, void *p, size_t oldn, size_t newn)
{
	if (newn <= oldn)
		return p;
	ja_chunk *h = a->head;
	size_t o16 = (oldn + 15) & ~(size_t)15, n16 = (newn + 15) & ~(size_t)15;
	if (p && h && (unsigned char *)p + o16 == h->data + h->used &&
	    h->used - o16 + n16 <= h->size) {
		h->used = h->used - o16 + n16;
		return p;
	}
	void *q = ja_alloc(a, newn);
	if (p && oldn)
		memcpy(q, p, oldn);
	return q;
}

char *ja_strndup(jarena *a, const char *s, size_t n)
{
	char *r = ja_alloc(a, n + 1);
	if (n)
		memcpy(r, s, n);
	r[n] = 0;
	return r;
}

void ja_free(jarena *a)
{
	ja_chunk *c = a->head;
	while (c) {
		ja_chunk *nx = c->next;
		free(c);
		c = nx;
	}
	a->head = NULL;
	a->total = 0;
}

void jb_put(jarena *a, jbuf *b, const void *s, size_t n)
{
	if (!n)
		return;
	if (b->cap - b->n < n + 1) {
		size_t ncap = b->cap ? b->cap : 64;
		while (ncap - b->n < n + 1) {
			if (ncap > SIZE_MAX / 2)
				ja_fail(a);
			ncap *= 2;
		}
		b->p = ja_grow(a, b->p, b->cap, ncap);
		b->cap = ncap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

void jb_putc(jarena *a, jbuf *b, char c)
{
	jb_put(a, b, &c, 1);
}

void jb_puts(jarena *a, jbuf *b, const char *s)
{
	jb_put(a, b, s, strlen(s));
}

void jb_printf(jarena *a, jbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		jb_put(a, b, tmp, (size_t)n);
		return;
	}
	char *big = ja_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	jb_put(a, b, big, (size_t)n);
}

/* ---- Unicode ---- */

int ju_decode(const char *s, size_t n, size_t *i)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t k = *i;
	unsigned c = u[k];
	int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	if (c >= 0x80 && c < 0xC0)
		len = 1;
	if (k + (size_t)len > n)
		len = 1;
	uint32_t cp;
	switch (len) {
	case 1: cp = c; break;
	case 2: cp = (c & 0x1F) << 6 | (u[k + 1] & 0x3F); break;
	case 3: cp = (c & 0x0F) << 12 | (u[k + 1] & 0x3F) << 6 | (u[k + 2] & 0x3F); break;
	default:
		cp = (c & 0x07) << 18 | (u[k + 1] & 0x3F) << 12 |
		     (u[k + 2] & 0x3F) << 6 | (u[k + 3] & 0x3F);
		break;
	}
	*i = k + (size_t)len;
	return (int)cp;
}

int ju_encode(uint32_t c, char out[4])
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3F));
	out[2] = (char)(0x80 | (c >> 6 & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

int ju_isspace(uint32_t c)
{
	if (c < 0x80)
		return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
	return c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202F || c == 0x205F || c == 0x3000;
}

int ju_islinebreak(uint32_t c)
{
	return (c >= 0x0A && c <= 0x0D) || (c >= 0x1C && c <= 0x1E) ||
	       c == 0x85 || c == 0x2028 || c == 0x2029;
}

int ju_isprintable(uint32_t c)
{
	if (c < 0x80)
		return c >= 0x20 && c < 0x7F;
	switch (utf8proc_category((utf8proc_int32_t)c)) {
	case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF:
	case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
	case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL:
	case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
		return 0;
	default:
		return 1;
	}
}

/* Python's derived properties beyond the general categories (Unicode 14,
 * as in Python 3.11): Other_Lowercase, Other_Uppercase, and the
 * Case_Ignorable characters that are not Mn, Me, Cf, Lm or Sk. */
static const uint32_t other_lower[][2] = {
	{ 0x00AA, 0x00AA }, { 0x00BA, 0x00BA }, { 0x02B0, 0x02B8 }, { 0x02C0,
	0x02C1 }, { 0x02E0, 0x02E4 }, { 0x0345, 0x0345 }, { 0x037A, 0x037A }, {
	0x1D2C, 0x1D6A }, { 0x1D78, 0x1D78 }, { 0x1D9B, 0x1DBF }, { 0x2071,
	0x2071 }, { 0x207F, 0x207F }, { 0x2090, 0x209C }, { 0x2170, 0x217F }, {
	0x24D0, 0x24E9 }, { 0x2C7C, 0x2C7D }, { 0xA69C, 0xA69D }, { 0xA770,
	0xA770 }, { 0xA7F8, 0xA7F9 }, { 0xAB5C, 0xAB5F }, { 0x10780, 0x10780 },
	{ 0x10783, 0x10785 }, { 0x10787, 0x107B0 }, { 0x107B2, 0x107BA }
};

static const uint32_t other_upper[][2] = {
	{ 0x2160, 0x216F }, { 0x24B6, 0x24CF }, { 0x1F130, 0x1F149 }, { 0x1F150,
	0x1F169 }, { 0x1F170, 0x1F189 }
};

static const uint32_t ignorable_extra[] = {
	0x0027, 0x002E, 0x003A, 0x00B7, 0x0387, 0x055F, 0x05F4, 0x2018, 0x2019,
	0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A,
};

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c)
{
	for (size_t i = 0; i < n; i++)
		if (c >= r[i][0] && c <= r[i][1])
			return 1;
	return 0;
}

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

int ju_islower(uint32_t c)
{
	return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_LL ||
	       in_ranges(other_lower, NELEM(other_lower), c);
}

int ju_isupper(uint32_t c)
{
	return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_LU ||
	       in_ranges(other_upper, NELEM(other_upper), c);
}

int ju_iscased(uint32_t c)
{
	return ju_islower(c) || ju_isupper(c) ||
	       utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_LT;
}

static int ju_case_ignorable(uint32_t c)
{
	switch (utf8proc_category((utf8proc_int32_t)c)) {
	case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME:
	case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_SK:
		return 1;
	default:
		for (size_t i = 0; i < NELEM(ignorable_extra); i++)
			if (ignorable_extra[i] == c)
				return 1;
		return 0;
	}
}

size_t ju_len(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xC0) != 0x80;
	return k;
}

int ju_valid(const char *s, size_t n, size_t *bad)
{
	utf8proc_int32_t cp;
	size_t i = 0;
	while (i < n) {
		utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
						      (utf8proc_ssize_t)(n - i), &cp);
		if (r <= 0) {
			*bad = i;
			return 0;
		}
		i += (size_t)r;
	}
	return 1;
}

/* ---- dicts ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

int jv_hashable(jv v)
{
	if (v.type == JV_LIST) {
		if (v.flags & JVF_ITER)
			return 1;
		if (!(v.flags & JVF_TUPLE))
			return 0;
		for (size_t i = 0; i < v.u.l->n; i++)
			if (!jv_hashable(v.u.l->v[i]))
				return 0;
		return 1;
	}
	return v.type != JV_DICT && v.type != JV_NS;
}

static uint64_t jv_hash(jv v, int depth)
{
	if (depth > JV_MAX_DEPTH)
		return 0;
	switch (v.type) {
	case JV_BOOL: case JV_INT:
		return mix64((uint64_t)v.u.i);
	case JV_FLOAT:
		if (v.u.f == floor(v.u.f) && fabs(v.u.f) < 9.2e18)
			return mix64((uint64_t)(int64_t)v.u.f);
		{
			uint64_t b;
			memcpy(&b, &v.u.f, sizeof b);
			return mix64(b);
		}
	case JV_STR: {
		uint64_t h = 1469598103934665603ULL;
		for (size_t i = 0; i < v.u.s.n; i++)
			h = (h ^ (unsigned char)v.u.s.p[i]) * 1099511628211ULL;
		return h;
	}
	case JV_LIST: {
		if (v.flags & JVF_ITER)
			return mix64((uint64_t)(uintptr_t)v.u.l);
		uint64_t h = 0x345678;
		for (size_t i = 0; i < v.u.l->n; i++)
			h = mix64(h ^ jv_hash(v.u.l->v[i], depth + 1));
		return h;
	}
	case JV_NONE: return 0x9e3779b97f4a7c15ULL;
	case JV_UNDEF: return 0x1234567;
	default:
		return mix64((uint64_t)(uintptr_t)v.u.l ^ v.id);
	}
}

jdict *jd_new(jarena *a, size_t cap)
{
	jdict *d = ja_alloc(a, sizeof *d);
	if (cap) {
		d->k = ja_alloc(a, cap * sizeof *d->k);
		d->v = ja_alloc(a, cap * sizeof *d->v);
		d->cap = cap;
	}
	return d;
}

static void jd_index(jarena *a, jdict *d)
{
	size_t icap = 16;
	while (icap < d->n * 2 + 2)
		icap *= 2;
	d->idx = ja_alloc(a, icap * sizeof *d->idx);
	d->icap = icap;
	for (size_t e = 0; e < d->n; e++) {
		size_t s = jv_hash(d->k[e], 0) & (icap - 1);
		while (d->idx[s])
			s = (s + 1) & (icap - 1);
		d->idx[s] = (uint32_t)(e + 1);
	}
}

static long jd_find(const jdict *d, jv key)
{
	if (!jv_hashable(key))
		return -1;
	if (!d->idx) {
		for (size_t e = 0; e < d->n; e++)
			if (jv_eq(d->k[e], key))
				return (long)e;
		return -1;
	}
	size_t s = jv_hash(key, 0) & (d->icap - 1);
	while (d->idx[s]) {
		size_t e = d->idx[s] - 1;
		if (jv_eq(d->k[e], key))
			return (long)e;
		s = (s + 1) & (d->icap - 1);
	}
	return -1;
}

jv *jd_get(const jdict *d, jv key)
{
	long e = jd_find(d, key);
	return e < 0 ? NULL : &d->v[e];
}

jv *jd_gets(const jdict *d, const char *key, size_t n)
{
	return jd_get(d, jv_str(key, n));
}

void jd_set(jarena *a, jdict *d, jv key, jv val)
{
	long e = jd_find(d, key);
	if (e >= 0) {
		d->v[e] = val;
		return;
	}
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 4;
		d->k = ja_grow(a, d->k, d->cap * sizeof *d->k, ncap * sizeof *d->k);
		d->v = ja_grow(a, d->v, d->cap * sizeof *d->v, ncap * sizeof *d->v);
		d->cap = ncap;
	}
	d->k[d->n] = key;
	d->v[d->n] = val;
	d->n++;
	if (d->idx && d->n * 2 + 2 <= d->icap) {
		size_t s = jv_hash(key, 0) & (d->icap - 1);
		while (d->idx[s])
			s = (s + 1) & (d->icap - 1);
		d->idx[s] = (uint32_t)d->n;
	} else if (d->n > 8) {
		jd_index(a, d);
	}
}

/* ---- Python semantics ---- */

int jv_truthy(jv v)
{
	switch (v.type) {
	case JV_UNDEF: case JV_NONE: return 0;
	case JV_BOOL: case JV_INT: return v.u.i != 0;
	case JV_FLOAT: return v.u.f != 0;
	case JV_STR: return v.u.s.n != 0;
	case JV_LIST: return (v.flags & JVF_ITER) || v.u.l->n != 0;
	case JV_DICT: return v.u.d->n != 0;
	default: return 1;
	}
}

/* Compare an integer with a float exactly: <0, 0, >0, or 3 if f is NaN. */
static int cmp_int_float(int64_t i, double f)
{
	if (isnan(f))
		return 3;
	if (f >= 9223372036854775808.0)
		return -1;
	if (f < -9223372036854775808.0)
		return 1;
	double fl = floor(f);
	int64_t fi = (int64_t)fl;
	if (i != fi)
		return i < fi ? -1 : 1;
	return f > fl ? -1 : 0;
}

static int num_cmp(jv a, jv b)
{
	if (a.type != JV_FLOAT && b.type != JV_FLOAT)
		return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
	if (a.type == JV_FLOAT && b.type == JV_FLOAT) {
		if (isnan(a.u.f) || isnan(b.u.f))
			return 3;
		return a.u.f < b.u.f ? -1 : a.u.f > b.u.f;
	}
	if (a.type == JV_FLOAT) {
		int c = cmp_int_float(b.u.i, a.u.f);
		return c == 3 ? 3 : -c;
	}
	return cmp_int_float(a.u.i, b.u.f);
}

static int eq_rec(jv a, jv b, int depth)
{
	if (depth > JV_MAX_DEPTH)
		return 0;
	if (jv_isnum(a) && jv_isnum(b))
		return num_cmp(a, b) == 0;
	if (a.type != b.type)
		return 0;
	switch (a.type) {
	case JV_UNDEF: case JV_NONE:
		return 1;
	case JV_STR:
		return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
	case JV_LIST:
		if ((a.flags | b.flags) & (JVF_ITER | JVF_VIEW))
			return a.u.l == b.u.l;
		if ((a.flags & JVF_TUPLE) != (b.flags & JVF_TUPLE) ||
		    a.u.l->n != b.u.l->n)
			return 0;
		for (size_t i = 0; i < a.u.l->n; i++)
			if (!eq_rec(a.u.l->v[i], b.u.l->v[i], depth + 1))
				return 0;
		return 1;
	case JV_DICT:
		if (a.u.d->n != b.u.d->n)
			return 0;
		for (size_t i = 0; i < a.u.d->n; i++) {
			jv *o = jd_get(b.u.d, a.u.d->k[i]);
			if (!o || !eq_rec(a.u.d->v[i], *o, depth + 1))
				return 0;
		}
		return 1;
	case JV_FUNC:
		return a.id == b.id;
	case JV_METHOD:
		return a.u.b == b.u.b;
	default:
		return a.u.d == b.u.d;
	}
}

int jv_eq(jv a, jv b)
{
	return eq_rec(a, b, 0);
}

static int cmp_rec(jv a, jv b, int depth)
{
	if (depth > JV_MAX_DEPTH)
		return JV_CMP_TYPE;
	if (jv_isnum(a) && jv_isnum(b))
		return num_cmp(a, b);
	if (a.type == JV_STR && b.type == JV_STR) {
		size_t m = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
		int c = m ? memcmp(a.u.s.p, b.u.s.p, m) : 0;
		if (c)
			return c < 0 ? -1 : 1;
		return a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n;
	}
	if (a.type == JV_LIST && b.type == JV_LIST && a.flags == b.flags &&
	    !(a.flags & (JVF_ITER | JVF_VIEW))) {
		size_t m = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
		for (size_t i = 0; i < m; i++)
			if (!eq_rec(a.u.l->v[i], b.u.l->v[i], depth + 1))
				return cmp_rec(a.u.l->v[i], b.u.l->v[i], depth + 1);
		return a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
	}
	return JV_CMP_TYPE;
}

int jv_cmp(jv a, jv b)
{
	return cmp_rec(a, b, 0);
}

const char *jv_typename(jv v)
{
	switch (v.type) {
	case JV_UNDEF: return "Undefined";
	case JV_NONE: return "NoneType";
	case JV_BOOL: return "bool";
	case JV_INT: return "int";
	case JV_FLOAT: return "float";
	case JV_STR: return v.flags & JVF_MARKUP ? "Markup" : "str";
	case JV_LIST:
		if (v.flags & JVF_ITER)
			return "generator";
		if (v.flags & JVF_VIEW)
			return v.id == JVIEW_KEYS ? "dict_keys" :
			       v.id == JVIEW_VALUES ? "dict_values" : "dict_items";
		return v.flags & JVF_TUPLE ? "tuple" : "list";
	case JV_DICT: return "dict";
	case JV_NS: return "Namespace";
	case JV_LOOP: return "LoopContext";
	case JV_MACRO: return "Macro";
	case JV_FUNC: return "function";
	default: return "builtin_function_or_method";
	}
}

/* ---- printing ---- */

/* repr(float): the shortest digits that read back the same, laid out as
 * Python does (fixed between 1e-4 and 1e16, else exponent). */
void jv_float_repr(double f, char out[32])
{
	if (isnan(f)) {
		strcpy(out, "nan");
		return;
	}
	if (isinf(f)) {
		strcpy(out, f < 0 ? "-inf" : "inf");
		return;
	}
	if (f == 0) {
		strcpy(out, signbit(f) ? "-0.0" : "0.0");
		return;
	}
	char e[40];
	for (int p = 0; p < 17; p++) {
		snprintf(e, sizeof e, "%.*e", p, f);
		if (strtod(e, NULL) == f)
			break;
	}
	/* e: [-]d[.ddd]e[+-]XX */
	char digits[24];
	size_t nd = 0;
	const char *s = e;
	int neg = *s == '-';
	if (neg)
		s++;
	for (; *s && *s != 'e'; s++)
		if (*s != '.')
			digits[nd++] = *s;
	digits[nd] = 0;
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = 0;
	int exp10 = atoi(s + 1);
	int decpt = exp10 + 1;
	char *o = out;
	if (neg)
		*o++ = '-';
	if (decpt <= -4 || decpt > 16) {
		*o++ = digits[0];
		if (nd > 1) {
			*o++ = '.';
			memcpy(o, digits + 1, nd - 1);
			o += nd - 1;
		}
		sprintf(o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
		return;
	}
	if (decpt <= 0) {
		*o++ = '0';
		*o++ = '.';
		for (int i = 0; i < -decpt; i++)
			*o++ = '0';
		memcpy(o, digits, nd);
		o += nd;
	} else if ((size_t)decpt >= nd) {
		memcpy(o, digits, nd);
		o += nd;
		for (size_t i = nd; i < (size_t)decpt; i++)
			*o++ = '0';
		*o++ = '.';
		*o++ = '0';
	} else {
		memcpy(o, digits, (size_t)decpt);
		o += decpt;
		*o++ = '.';
		memcpy(o, digits + decpt, nd - (size_t)decpt);
		o += nd - (size_t)decpt;
	}
	*o = 0;
}

static void str_repr_to(jarena *a, jbuf *b, const char *s, size_t n)
{
	int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
	char q = has_sq && !has_dq ? '"' : '\'';
	jb_putc(a, b, q);
	size_t i = 0;
	while (i < n) {
		size_t st = i;
		uint32_t c = (uint32_t)ju_decode(s, n, &i);
		if (c == (uint32_t)q || c == '\\') {
			jb_putc(a, b, '\\');
			jb_putc(a, b, (char)c);
		} else if (c == '\t') {
			jb_puts(a, b, "\\t");
		} else if (c == '\n') {
			jb_puts(a, b, "\\n");
		} else if (c == '\r') {
			jb_puts(a, b, "\\r");
		} else if (c < 0x20 || c == 0x7F) {
			jb_printf(a, b, "\\x%02x", c);
		} else if (c < 0x7F || ju_isprintable(c)) {
			jb_put(a, b, s + st, i - st);
		} else if (c <= 0xFF) {
			jb_printf(a, b, "\\x%02x", c);
		} else if (c <= 0xFFFF) {
			jb_printf(a, b, "\\u%04x", c);
		} else {
			jb_printf(a, b, "\\U%08x", c);
		}
	}
	jb_putc(a, b, q);
}

static void repr_rec(jarena *a, jbuf *b, jv v, int depth);

static void dict_repr_to(jarena *a, jbuf *b, const jdict *d, int depth)
{
	jb_putc(a, b, '{');
	for (size_t i = 0; i < d->n; i++) {
		if (i)
			jb_puts(a, b, ", ");
		repr_rec(a, b, d->k[i], depth + 1);
		jb_puts(a, b, ": ");
		repr_rec(a, b, d->v[i], depth + 1);
	}
	jb_putc(a, b, '}');
}

static void str_rec(jarena *a, jbuf *b, jv v, int depth)
{
	char tmp[32];
	if (depth > JV_MAX_DEPTH)
		too_deep(a);
	switch (v.type) {
	case JV_UNDEF:
		return;
	case JV_NONE:
		jb_puts(a, b, "None");
		return;
	case JV_BOOL:
		jb_puts(a, b, v.u.i ? "True" : "False");
		return;
	case JV_INT:
		jb_printf(a, b, "%lld", (long long)v.u.i);
		return;
	case JV_FLOAT:
		jv_float_repr(v.u.f, tmp);
		jb_puts(a, b, tmp);
		return;
	case JV_STR:
		jb_put(a, b, v.u.s.p, v.u.s.n);
		return;
	case JV_LIST: {
		if (v.flags & JVF_ITER) {
			jb_puts(a, b, "<generator object>");
			return;
		}
		if (v.flags & JVF_VIEW) {
			jb_puts(a, b, jv_typename(v));
			jb_putc(a, b, '(');
		}
		int tuple = v.flags & JVF_TUPLE;
		jb_putc(a, b, tuple ? '(' : '[');
		for (size_t i = 0; i < v.u.l->n; i++) {
			if (i)
				jb_puts(a, b, ", ");
			repr_rec(a, b, v.u.l->v[i], depth + 1);
		}
		if (tuple && v.u.l->n == 1)
			jb_putc(a, b, ',');
		jb_putc(a, b, tuple ? ')' : ']');
		if (v.flags & JVF_VIEW)
			jb_putc(a, b, ')');
		return;
	}
	case JV_DICT:
		dict_repr_to(a, b, v.u.d, depth);
		return;
	case JV_NS:
		jb_puts(a, b, "<Namespace ");
		dict_repr_to(a, b, v.u.d, depth);
		jb_putc(a, b, '>');
		return;
	case JV_LOOP:
		jb_puts(a, b, "<LoopContext>");
		return;
	case JV_MACRO:
		jb_puts(a, b, "<Macro>");
		return;
	case JV_FUNC:
		jb_puts(a, b, "<function>");
		return;
	default:
		jb_printf(a, b, "<built-in method %s of %s object>", v.u.b->name,
			  jv_typename(v.u.b->self));
		return;
	}
}

static void repr_rec(jarena *a, jbuf *b, jv v, int depth)
{
	if (v.type == JV_STR)
		str_repr_to(a, b, v.u.s.p, v.u.s.n);
	else if (v.type == JV_UNDEF)
		jb_puts(a, b, "Undefined");
	else
		str_rec(a, b, v, depth);
}

void jv_str_to(jarena *a, jbuf *b, jv v)
{
	str_rec(a, b, v, 0);
}

void jv_repr_to(jarena *a, jbuf *b, jv v)
{
	repr_rec(a, b, v, 0);
}

static void json_str_to(jarena *a, jbuf *b, const char *s, size_t n, int ascii)
{
	jb_putc(a, b, '"');
	size_t i = 0;
	while (i < n) {
		size_t st = i;
		uint32_t c = (uint32_t)ju_decode(s, n, &i);
		switch (c) {
		case '"': jb_puts(a, b, "\\\""); continue;
		case '\\': jb_puts(a, b, "\\\\"); continue;
		case '\n': jb_puts(a, b, "\\n"); continue;
		case '\r': jb_puts(a, b, "\\r"); continue;
		case '\t': jb_puts(a, b, "\\t"); continue;
		case '\b': jb_puts(a, b, "\\b"); continue;
		case '\f': jb_puts(a, b, "\\f"); continue;
		}
		if (c < 0x20 || (ascii && c >= 0x7F)) {
			if (c >= 0x10000) {
				uint32_t v = c - 0x10000;
				jb_printf(a, b, "\\u%04x\\u%04x", 0xD800 | (v >> 10),
					  0xDC00 | (v & 0x3FF));
			} else {
				jb_printf(a, b, "\\u%04x", c);
			}
		} else {
			jb_put(a, b, s + st, i - st);
		}
	}
	jb_putc(a, b, '"');
}

static void json_nl(jarena *a, jbuf *b, const jjson_opts *o, int level)
{
	jb_putc(a, b, '\n');
	for (int i = 0; i < level; i++)
		jb_put(a, b, o->indent, o->indentn);
}

/* A dict key as json.dumps writes it; -1 if JSON keys cannot be that. */
static int json_key_to(jarena *a, jbuf *b, jv k, const jjson_opts *o)
{
	char tmp[32];
	switch (k.type) {
	case JV_STR:
		json_str_to(a, b, k.u.s.p, k.u.s.n, o->ensure_ascii);
		return 0;
	case JV_BOOL:
		jb_puts(a, b, k.u.i ? "\"true\"" : "\"false\"");
		return 0;
	case JV_NONE:
		jb_puts(a, b, "\"null\"");
		return 0;
	case JV_INT:
		jb_printf(a, b, "\"%lld\"", (long long)k.u.i);
		return 0;
	case JV_FLOAT:
		if (isnan(k.u.f))
			strcpy(tmp, "NaN");
		else if (isinf(k.u.f))
			strcpy(tmp, k.u.f < 0 ? "-Infinity" : "Infinity");
		else
			jv_float_repr(k.u.f, tmp);
		jb_printf(a, b, "\"%s\"", tmp);
		return 0;
	default:
		return -1;
	}
}

int jv_json_to(jarena *a, jbuf *b, jv v, const jjson_opts *o, int level,
	       const char **why)
{
	char tmp[32];
	if (level > JV_MAX_DEPTH) {
		*why = "a value nested too deeply";
		return -1;
	}
	switch (v.type) {
	case JV_NONE:
		jb_puts(a, b, "null");
		return 0;
	case JV_BOOL:
		jb_puts(a, b, v.u.i ? "true" : "false");
		return 0;
	case JV_INT:
		jb_printf(a, b, "%lld", (long long)v.u.i);
		return 0;
	case JV_FLOAT:
		if (isnan(v.u.f))
			jb_puts(a, b, "NaN");
		else if (isinf(v.u.f))
			jb_puts(a, b, v.u.f < 0 ? "-Infinity" : "Infinity");
		else {
			jv_float_repr(v.u.f, tmp);
			jb_puts(a, b, tmp);
		}
		return 0;
	case JV_STR:
		json_str_to(a, b, v.u.s.p, v.u.s.n, o->ensure_ascii);
		return 0;
	case JV_LIST:
		if (v.flags & (JVF_ITER | JVF_VIEW)) {
			*why = jv_typename(v);
			return -1;
		}
		if (!v.u.l->n) {
			jb_puts(a, b, "[]");
			return 0;
		}
		jb_putc(a, b, '[');
		for (size_t i = 0; i < v.u.l->n; i++) {
			if (i)
				jb_puts(a, b, o->item_sep);
			if (o->indent)
				json_nl(a, b, o, level + 1);
			if (jv_json_to(a, b, v.u.l->v[i], o, level + 1, why))
				return -1;
		}
		if (o->indent)
			json_nl(a, b, o, level);
		jb_putc(a, b, ']');
		return 0;
	case JV_DICT: {
		const jdict *d = v.u.d;
		if (!d->n) {
			jb_puts(a, b, "{}");
			return 0;
		}
		size_t *order = ja_alloc(a, d->n * sizeof *order);
		for (size_t i = 0; i < d->n; i++)
			order[i] = i;
		if (o->sort_keys) {
			/* insertion sort: stable, and dicts are small */
			for (size_t i = 1; i < d->n; i++) {
				size_t x = order[i], j = i;
				while (j > 0) {
					int c = jv_cmp(d->k[order[j - 1]], d->k[x]);
					if (c == JV_CMP_TYPE) {
						*why = "sort_keys: keys of different types";
						return -1;
					}
					if (c <= 0)
						break;
					order[j] = order[j - 1];
					j--;
				}
				order[j] = x;
			}
		}
		jb_putc(a, b, '{');
		for (size_t i = 0; i < d->n; i++) {
			size_t e = order[i];
			if (i)
				jb_puts(a, b, o->item_sep);
			if (o->indent)
				json_nl(a, b, o, level + 1);
			if (json_key_to(a, b, d->k[e], o)) {
				*why = "keys must be str, int, float, bool or None";
				return -1;
			}
			jb_puts(a, b, o->key_sep);
			if (jv_json_to(a, b, d->v[e], o, level + 1, why))
				return -1;
		}
		if (o->indent)
			json_nl(a, b, o, level);
		jb_putc(a, b, '}');
		return 0;
	}
	default:
		*why = jv_typename(v);
		return -1;
	}
}

/* ---- case mapping (Python's full mappings for the common specials) ---- */

static void put_cp(jarena *a, jbuf *b, uint32_t c)
{
	char u[4];
	jb_put(a, b, u, (size_t)ju_encode(c, u));
}

/* Python's full (multi-character) upper and title case mappings: the
 * unconditional part of Unicode's SpecialCasing.txt (Unicode 14, as in
 * Python 3.11; made with [c for c in map(chr, range(0x110000)) if
 * len(c.upper()) > 1 or len(c.title()) > 1]). */
static const struct special_case {
	uint32_t c;
	const char *up, *ti;
} special_cases[] = {
		{ 0x00DF, "SS", "Ss" },
		{ 0x0149, "\xCA\xBCN", "\xCA\xBCN" },
		{ 0x01F0, "J\xCC\x8C", "J\xCC\x8C" },
		{ 0x0390, "\xCE\x99\xCC\x88\xCC\x81", "\xCE\x99\xCC\x88\xCC\x81" },
		{ 0x03B0, "\xCE\xA5\xCC\x88\xCC\x81", "\xCE\xA5\xCC\x88\xCC\x81" },
		{ 0x0587, "\xD4\xB5\xD5\x92", "\xD4\xB5\xD6\x82" },
		{ 0x1E96, "H\xCC\xB1", "H\xCC\xB1" },
		{ 0x1E97, "T\xCC\x88", "T\xCC\x88" },
		{ 0x1E98, "W\xCC\x8A", "W\xCC\x8A" },
		{ 0x1E99, "Y\xCC\x8A", "Y\xCC\x8A" },
		{ 0x1E9A, "A\xCA\xBE", "A\xCA\xBE" },
		{ 0x1F50, "\xCE\xA5\xCC\x93", "\xCE\xA5\xCC\x93" },
		{ 0x1F52, "\xCE\xA5\xCC\x93\xCC\x80", "\xCE\xA5\xCC\x93\xCC\x80" },
		{ 0x1F54, "\xCE\xA5\xCC\x93\xCC\x81", "\xCE\xA5\xCC\x93\xCC\x81" },
		{ 0x1F56, "\xCE\xA5\xCC\x93\xCD\x82", "\xCE\xA5\xCC\x93\xCD\x82" },
		{ 0x1F80, "\xE1\xBC\x88\xCE\x99", "\xE1\xBE\x88" },
		{ 0x1F81, "\xE1\xBC\x89\xCE\x99", "\xE1\xBE\x89" },
		{ 0x1F82, "\xE1\xBC\x8A\xCE\x99", "\xE1\xBE\x8A" },
		{ 0x1F83, "\xE1\xBC\x8B\xCE\x99", "\xE1\xBE\x8B" },
		{ 0x1F84, "\xE1\xBC\x8C\xCE\x99", "\xE1\xBE\x8C" },
		{ 0x1F85, "\xE1\xBC\x8D\xCE\x99", "\xE1\xBE\x8D" },
		{ 0x1F86, "\xE1\xBC\x8E\xCE\x99", "\xE1\xBE\x8E" },
		{ 0x1F87, "\xE1\xBC\x8F\xCE\x99", "\xE1\xBE\x8F" },
		{ 0x1F88, "\xE1\xBC\x88\xCE\x99", "\xE1\xBE\x88" },
		{ 0x1F89, "\xE1\xBC\x89\xCE\x99", "\xE1\xBE\x89" },
		{ 0x1F8A, "\xE1\xBC\x8A\xCE\x99", "\xE1\xBE\x8A" },
		{ 0x1F8B, "\xE1\xBC\x8B\xCE\x99", "\xE1\xBE\x8B" },
		{ 0x1F8C, "\xE1\xBC\x8C\xCE\x99", "\xE1\xBE\x8C" },
		{ 0x1F8D, "\xE1\xBC\x8D\xCE\x99", "\xE1\xBE\x8D" },
		{ 0x1F8E, "\xE1\xBC\x8E\xCE\x99", "\xE1\xBE\x8E" },
		{ 0x1F8F, "\xE1\xBC\x8F\xCE\x99", "\xE1\xBE\x8F" },
		{ 0x1F90, "\xE1\xBC\xA8\xCE\x99", "\xE1\xBE\x98" },
		{ 0x1F91, "\xE1\xBC\xA9\xCE\x99", "\xE1\xBE\x99" },
		{ 0x1F92, "\xE1\xBC\xAA\xCE\x99", "\xE1\xBE\x9A" },
		{ 0x1F93, "\xE1\xBC\xAB\xCE\x99", "\xE1\xBE\x9B" },
		{ 0x1F94, "\xE1\xBC\xAC\xCE\x99", "\xE1\xBE\x9C" },
		{ 0x1F95, "\xE1\xBC\xAD\xCE\x99", "\xE1\xBE\x9D" },
		{ 0x1F96, "\xE1\xBC\xAE\xCE\x99", "\xE1\xBE\x9E" },
		{ 0x1F97, "\xE1\xBC\xAF\xCE\x99", "\xE1\xBE\x9F" },
		{ 0x1F98, "\xE1\xBC\xA8\xCE\x99", "\xE1\xBE\x98" },
		{ 0x1F99, "\xE1\xBC\xA9\xCE\x99", "\xE1\xBE\x99" },
		{ 0x1F9A, "\xE1\xBC\xAA\xCE\x99", "\xE1\xBE\x9A" },
		{ 0x1F9B, "\xE1\xBC\xAB\xCE\x99", "\xE1\xBE\x9B" },
		{ 0x1F9C, "\xE1\xBC\xAC\xCE\x99", "\xE1\xBE\x9C" },
		{ 0x1F9D, "\xE1\xBC\xAD\xCE\x99", "\xE1\xBE\x9D" },
		{ 0x1F9E, "\xE1\xBC\xAE\xCE\x99", "\xE1\xBE\x9E" },
		{ 0x1F9F, "\xE1\xBC\xAF\xCE\x99", "\xE1\xBE\x9F" },
		{ 0x1FA0, "\xE1\xBD\xA8\xCE\x99", "\xE1\xBE\xA8" },
		{ 0x1FA1, "\xE1\xBD\xA9\xCE\x99", "\xE1\xBE\xA9" },
		{ 0x1FA2, "\xE1\xBD\xAA\xCE\x99", "\xE1\xBE\xAA" },
		{ 0x1FA3, "\xE1\xBD\xAB\xCE\x99", "\xE1\xBE\xAB" },
		{ 0x1FA4, "\xE1\xBD\xAC\xCE\x99", "\xE1\xBE\xAC" },
		{ 0x1FA5, "\xE1\xBD\xAD\xCE\x99", "\xE1\xBE\xAD" },
		{ 0x1FA6, "\xE1\xBD\xAE\xCE\x99", "\xE1\xBE\xAE" },
		{ 0x1FA7, "\xE1\xBD\xAF\xCE\x99", "\xE1\xBE\xAF" },
		{ 0x1FA8, "\xE1\xBD\xA8\xCE\x99", "\xE1\xBE\xA8" },
		{ 0x1FA9, "\xE1\xBD\xA9\xCE\x99", "\xE1\xBE\xA9" },
		{ 0x1FAA, "\xE1\xBD\xAA\xCE\x99", "\xE1\xBE\xAA" },
		{ 0x1FAB, "\xE1\xBD\xAB\xCE\x99", "\xE1\xBE\xAB" },
		{ 0x1FAC, "\xE1\xBD\xAC\xCE\x99", "\xE1\xBE\xAC" },
		{ 0x1FAD, "\xE1\xBD\xAD\xCE\x99", "\xE1\xBE\xAD" },
		{ 0x1FAE, "\xE1\xBD\xAE\xCE\x99", "\xE1\xBE\xAE" },
		{ 0x1FAF, "\xE1\xBD\xAF\xCE\x99", "\xE1\xBE\xAF" },
		{ 0x1FB2, "\xE1\xBE\xBA\xCE\x99", "\xE1\xBE\xBA\xCD\x85" },
		{ 0x1FB3, "\xCE\x91\xCE\x99", "\xE1\xBE\xBC" },
		{ 0x1FB4, "\xCE\x86\xCE\x99", "\xCE\x86\xCD\x85" },
		{ 0x1FB6, "\xCE\x91\xCD\x82", "\xCE\x91\xCD\x82" },
		{ 0x1FB7, "\xCE\x91\xCD\x82\xCE\x99", "\xCE\x91\xCD\x82\xCD\x85" },
		{ 0x1FBC, "\xCE\x91\xCE\x99", "\xE1\xBE\xBC" },
		{ 0x1FC2, "\xE1\xBF\x8A\xCE\x99", "\xE1\xBF\x8A\xCD\x85" },
		{ 0x1FC3, "\xCE\x97\xCE\x99", "\xE1\xBF\x8C" },
		{ 0x1FC4, "\xCE\x89\xCE\x99", "\xCE\x89\xCD\x85" },
		{ 0x1FC6, "\xCE\x97\xCD\x82", "\xCE\x97\xCD\x82" },
		{ 0x1FC7, "\xCE\x97\xCD\x82\xCE\x99", "\xCE\x97\xCD\x82\xCD\x85" },
		{ 0x1FCC, "\xCE\x97\xCE\x99", "\xE1\xBF\x8C" },
		{ 0x1FD2, "\xCE\x99\xCC\x88\xCC\x80", "\xCE\x99\xCC\x88\xCC\x80" },
		{ 0x1FD3, "\xCE\x99\xCC\x88\xCC\x81", "\xCE\x99\xCC\x88\xCC\x81" },
		{ 0x1FD6, "\xCE\x99\xCD\x82", "\xCE\x99\xCD\x82" },
		{ 0x1FD7, "\xCE\x99\xCC\x88\xCD\x82", "\xCE\x99\xCC\x88\xCD\x82" },
		{ 0x1FE2, "\xCE\xA5\xCC\x88\xCC\x80", "\xCE\xA5\xCC\x88\xCC\x80" },
		{ 0x1FE3, "\xCE\xA5\xCC\x88\xCC\x81", "\xCE\xA5\xCC\x88\xCC\x81" },
		{ 0x1FE4, "\xCE\xA1\xCC\x93", "\xCE\xA1\xCC\x93" },
		{ 0x1FE6, "\xCE\xA5\xCD\x82", "\xCE\xA5\xCD\x82" },
		{ 0x1FE7, "\xCE\xA5\xCC\x88\xCD\x82", "\xCE\xA5\xCC\x88\xCD\x82" },
		{ 0x1FF2, "\xE1\xBF\xBA\xCE\x99", "\xE1\xBF\xBA\xCD\x85" },
		{ 0x1FF3, "\xCE\xA9\xCE\x99", "\xE1\xBF\xBC" },
		{ 0x1FF4, "\xCE\x8F\xCE\x99", "\xCE\x8F\xCD\x85" },
		{ 0x1FF6, "\xCE\xA9\xCD\x82", "\xCE\xA9\xCD\x82" },
		{ 0x1FF7, "\xCE\xA9\xCD\x82\xCE\x99", "\xCE\xA9\xCD\x82\xCD\x85" },
		{ 0x1FFC, "\xCE\xA9\xCE\x99", "\xE1\xBF\xBC" },
		{ 0xFB00, "FF", "Ff" },
		{ 0xFB01, "FI", "Fi" },
		{ 0xFB02, "FL", "Fl" },
		{ 0xFB03, "FFI", "Ffi" },
		{ 0xFB04, "FFL", "Ffl" },
		{ 0xFB05, "ST", "St" },
		{ 0xFB06, "ST", "St" },
		{ 0xFB13, "\xD5\x84\xD5\x86", "\xD5\x84\xD5\xB6" },
		{ 0xFB14, "\xD5\x84\xD4\xB5", "\xD5\x84\xD5\xA5" },
		{ 0xFB15, "\xD5\x84\xD4\xBB", "\xD5\x84\xD5\xAB" },
		{ 0xFB16, "\xD5\x8E\xD5\x86", "\xD5\x8E\xD5\xB6" },
		{ 0xFB17, "\xD5\x84\xD4\xBD", "\xD5\x84\xD5\xAD" },
};

static int special_cmp(const void *k, const void *e)
{
	uint32_t c = *(const uint32_t *)k, d = ((const struct special_case *)e)->c;
	return c < d ? -1 : c > d;
}

/* Upper (or, with title, title) case of c. */
static void put_upper(jarena *a, jbuf *b, uint32_t c, int title)
{
	if (c >= 0xDF) {
		const struct special_case *sc = bsearch(&c, special_cases,
			sizeof special_cases / sizeof special_cases[0],
			sizeof special_cases[0], special_cmp);
		if (sc) {
			jb_puts(a, b, title ? sc->ti : sc->up);
			return;
		}
	}
	put_cp(a, b, (uint32_t)(title ? utf8proc_totitle((utf8proc_int32_t)c)
				      : utf8proc_toupper((utf8proc_int32_t)c)));
}

/* Lower case of s[at] (code point c), with İ's full mapping and the final
 * sigma rule. */
static void put_lower(jarena *a, jbuf *b, uint32_t c, const char *s, size_t n,
		      size_t at, size_t after)
{
	if (c == 0x130) {
		jb_puts(a, b, "i\xCC\x87");
		return;
	}
	if (c == 0x3A3) {
		/* final sigma: a cased letter before (case-ignorable ones
		 * skipped), none after */
		int before_cased = 0, after_cased = 0;
		size_t k = at;
		while (k > 0) {
			do
				k--;
			while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80);
			size_t q = k;
			uint32_t p = (uint32_t)ju_decode(s, n, &q);
			if (!ju_case_ignorable(p)) {
				before_cased = ju_iscased(p);
				break;
			}
		}
		k = after;
		while (k < n) {
			uint32_t q = (uint32_t)ju_decode(s, n, &k);
			if (!ju_case_ignorable(q)) {
				after_cased = ju_iscased(q);
				break;
			}
		}
		put_cp(a, b, before_cased && !after_cased ? 0x3C2 : 0x3C3);
		return;
	}
	put_cp(a, b, (uint32_t)utf8proc_tolower((utf8proc_int32_t)c));
}

static int jtitle_sep(uint32_t c)
{
	return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' ||
	       ju_isspace(c);
}

void ju_case_to(jarena *a, jbuf *b, const char *s, size_t n, int mode)
{
	int prev_cased = 0, word_start = 1, first = 1;
	size_t i = 0;
	while (i < n) {
		size_t at = i;
		uint32_t c = (uint32_t)ju_decode(s, n, &i);
		switch (mode) {
		case JCASE_UPPER:
			put_upper(a, b, c, 0);
			break;
		case JCASE_LOWER:
			put_lower(a, b, c, s, n, at, i);
			break;
		case JCASE_SWAPCASE:
			if (ju_islower(c))
				put_upper(a, b, c, 0);
			else if (ju_isupper(c))
				put_lower(a, b, c, s, n, at, i);
			else
				put_cp(a, b, c);
			break;
		case JCASE_CAPITALIZE:
			if (first)
				put_upper(a, b, c, 1);
			else
				put_lower(a, b, c, s, n, at, i);
			break;
		case JCASE_TITLE:
			if (prev_cased)
				put_lower(a, b, c, s, n, at, i);
			else
				put_upper(a, b, c, 1);
			prev_cased = ju_iscased(c);
			break;
		default: /* JCASE_JTITLE */
			if (jtitle_sep(c)) {
				put_cp(a, b, c);
				word_start = 1;
			} else if (word_start) {
				put_upper(a, b, c, 0);
				word_start = 0;
			} else {
				put_lower(a, b, c, s, n, at, i);
			}
			break;
		}
		first = 0;
	}
}
