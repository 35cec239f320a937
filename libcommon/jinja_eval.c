/*
 * jinja_eval.c - jinja_render(): runs a parsed template over a JSON
 * context the way jinja2's ImmutableSandboxedEnvironment does: scoping
 * of set/for/macro, Undefined, attribute and item lookup, Python
 * arithmetic and comparisons, the filters, tests, methods and globals of
 * the subset. Errors unwind with longjmp; everything a render allocates
 * lives in one arena freed at the end.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "jinja_int.h"

/* ---- render state ---- */

typedef struct jvar {
	const char *name;
	jv val;
} jvar;

typedef struct scope scope;
struct scope {
	scope *parent;
	jvar *v;
	size_t n, cap;
	int captured;      /* a macro keeps it: do not reuse */
};

struct jmacro {
	const jnode *node;
	scope *scope;      /* where it was defined */
};

struct jloop {
	jlist *items;
	size_t i;
	jv changed_last;
	int changed_set;
};

enum { FLOW_NEXT, FLOW_BREAK, FLOW_CONTINUE };

typedef struct rctx {
	jarena a;
	jmp_buf jb;
	slm_err *err;
	jbuf *out;           /* where output goes now */
	size_t max_output;
	int depth, max_depth;
	uint64_t steps, max_steps;
	int line;            /* of the node being run, for errors */
	struct tm now;
} rctx;

__attribute__((noreturn, format(printf, 2, 3)))
static void rerr(rctx *R, const char *fmt, ...)
{
	char msg[SLM_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	slm_seterr(R->err, EX_DATAERR, "template line %d: %s", R->line, msg);
	longjmp(R->jb, 1);
}

static void arena_fail(void *ud, const char *why)
{
	rctx *R = ud;
	if (!strcmp(why, "out of memory"))
		rerr(R, "rendering needs more than %zu bytes of memory", R->a.limit);
	rerr(R, "%s", why);
}

/* Undefined values carry the message an error about them shows. */
__attribute__((format(printf, 2, 3)))
static jv mk_undef(rctx *R, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return jv_undef(ja_strndup(&R->a, msg, strlen(msg)));
}

__attribute__((noreturn))
static void undef_fail(rctx *R, jv u)
{
	rerr(R, "%.*s", (int)u.u.s.n, u.u.s.p ? u.u.s.p : "undefined value");
}

/* An argument not given (distinct from any value a template can make). */
#define MISSING_ID 0xFFFF
static jv missing(void)
{
	jv v = { .type = JV_UNDEF, .id = MISSING_ID };
	return v;
}
static int is_missing(jv v) { return v.type == JV_UNDEF && v.id == MISSING_ID; }
static int is_none_or_missing(jv v) { return v.type == JV_NONE || is_missing(v); }

static void step(rctx *R)
{
	if (++R->steps > R->max_steps)
		rerr(R, "rendering takes more than %llu steps",
		     (unsigned long long)R->max_steps);
}

/* ---- scopes ---- */

static scope *scope_new(rctx *R, scope *parent)
{
	scope *s = ja_alloc(&R->a, sizeof *s);
	s->parent = parent;
	return s;
}

static jv *scope_find(scope *s, const char *name)
{
	for (; s; s = s->parent)
		for (size_t i = s->n; i > 0; i--)
			if (!strcmp(s->v[i - 1].name, name))
				return &s->v[i - 1].val;
	return NULL;
}

static void scope_set(rctx *R, scope *s, const char *name, jv v)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].name, name)) {
			s->v[i].val = v;
			return;
		}
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 8;
		s->v = ja_grow(&R->a, s->v, s->cap * sizeof *s->v, nc * sizeof *s->v);
		s->cap = nc;
	}
	s->v[s->n].name = name;
	s->v[s->n].val = v;
	s->n++;
}

/* ---- values ---- */

static jlist *list_new(rctx *R, size_t n)
{
	jlist *l = ja_alloc(&R->a, sizeof *l);
	l->n = n;
	l->v = n ? ja_alloc(&R->a, n * sizeof *l->v) : NULL;
	return l;
}

static jv mk_list(jlist *l, int flags)
{
	jv v = { .type = JV_LIST, .flags = (uint8_t)flags };
	v.u.l = l;
	return v;
}

static jv mk_dict(jdict *d)
{
	jv v = { .type = JV_DICT };
	v.u.d = d;
	return v;
}

static jv mk_tuple2(rctx *R, jv a, jv b)
{
	jlist *l = list_new(R, 2);
	l->v[0] = a;
	l->v[1] = b;
	return mk_list(l, JVF_TUPLE);
}

static jv buf_str(jbuf *b, int flags)
{
	jv v = jv_str(b->p ? b->p : "", b->n);
	v.flags = (uint8_t)flags;
	return v;
}

static jv cstr(const char *s)
{
	return jv_str(s, strlen(s));
}

/* str(v); strings (Markup too) are returned as they are */
static jv to_str(rctx *R, jv v)
{
	if (v.type == JV_STR)
		return v;
	jbuf b = { 0 };
	jv_str_to(&R->a, &b, v);
	return buf_str(&b, 0);
}

static jv from_json(rctx *R, const json_t *j, int depth)
{
	if (depth > JV_MAX_DEPTH)
		rerr(R, "context value nested more than %d deep", JV_MAX_DEPTH);
	switch (json_typeof(j)) {
	case JSON_NULL: return jv_none();
	case JSON_TRUE: return jv_bool(1);
	case JSON_FALSE: return jv_bool(0);
	case JSON_INTEGER: return jv_int((int64_t)json_integer_value(j));
	case JSON_REAL: return jv_float(json_real_value(j));
	case JSON_STRING: {
		size_t n = json_string_length(j);
		const char *s = json_string_value(j);
		size_t bad;
		if (!ju_valid(s, n, &bad))
			rerr(R, "context string is not valid UTF-8");
		return jv_str(s, n);
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(j);
		jlist *l = list_new(R, n);
		for (size_t i = 0; i < n; i++)
			l->v[i] = from_json(R, json_array_get(j, i), depth + 1);
		return mk_list(l, 0);
	}
	default: {
		jdict *d = jd_new(&R->a, json_object_size(j));
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)j, key, val)
			jd_set(&R->a, d, cstr(key), from_json(R, val, depth + 1));
		return mk_dict(d);
	}
	}
}

static jlist empty_list;

/* The items iterating over v gives (for loops, list(), join...). */
static jlist *iter_list(rctx *R, jv v)
{
	switch (v.type) {
	case JV_LIST:
		if (v.flags & JVF_ITER) {
			if (v.u.l->consumed)
				return &empty_list;
			v.u.l->consumed = 1;
		}
		return v.u.l;
	case JV_DICT: {
		jlist *l = list_new(R, v.u.d->n);
		memcpy(l->v, v.u.d->k, v.u.d->n * sizeof *l->v);
		return l;
	}
	case JV_STR: {
		size_t n = ju_len(v.u.s.p, v.u.s.n), i = 0, k = 0;
		jlist *l = list_new(R, n);
		while (i < v.u.s.n) {
			size_t st = i;
			ju_decode(v.u.s.p, v.u.s.n, &i);
			l->v[k] = jv_str(v.u.s.p + st, i - st);
			l->v[k++].flags = v.flags & JVF_MARKUP;
		}
		return l;
	}
	case JV_UNDEF:
		return &empty_list;
	default:
		rerr(R, "'%s' object is not iterable", jv_typename(v));
	}
}

/* len(v) */
static int64_t py_len(rctx *R, jv v)
{
	switch (v.type) {
	case JV_STR: return (int64_t)ju_len(v.u.s.p, v.u.s.n);
	case JV_LIST:
		if (v.flags & JVF_ITER)
			break;
		return (int64_t)v.u.l->n;
	case JV_DICT: return (int64_t)v.u.d->n;
	case JV_UNDEF: return 0;
	case JV_LOOP: return (int64_t)v.u.loop->items->n;
	default: break;
	}
	rerr(R, "object of type '%s' has no len()", jv_typename(v));
}

/* Byte offsets of each code point of s, plus the end (n + 1 entries). */
static size_t *cp_offsets(rctx *R, const char *s, size_t n, size_t *count)
{
	size_t c = ju_len(s, n), i = 0, k = 0;
	size_t *off = ja_alloc(&R->a, (c + 1) * sizeof *off);
	while (i < n) {
		off[k++] = i;
		ju_decode(s, n, &i);
	}
	off[k] = n;
	*count = c;
	return off;
}

static void escape_to(rctx *R, jbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '&': jb_puts(&R->a, b, "&amp;"); break;
		case '<': jb_puts(&R->a, b, "&lt;"); break;
		case '>': jb_puts(&R->a, b, "&gt;"); break;
		case '\'': jb_puts(&R->a, b, "&#39;"); break;
		case '"': jb_puts(&R->a, b, "&#34;"); break;
		default: jb_putc(&R->a, b, s[i]); break;
		}
	}
}

/* markupsafe.escape(v): a Markup string */
static jv py_escape(rctx *R, jv v)
{
	if (v.type == JV_STR && (v.flags & JVF_MARKUP))
		return v;
	jv s = to_str(R, v);
	jbuf b = { 0 };
	escape_to(R, &b, s.u.s.p, s.u.s.n);
	return buf_str(&b, JVF_MARKUP);
}

static void check_size(rctx *R, size_t n)
{
	if (n > R->max_output)
		rerr(R, "a string or list of more than %zu bytes", R->max_output);
}

/* ---- call arguments ---- */

typedef struct cargs {
	jv *v;
	size_t n;
	const char *const *kwn;
	jv *kwv;
	size_t nkw;
} cargs;

/* Bind arguments to named parameters (a NULL-terminated list); slots not
 * given are missing(). */
static void bind(rctx *R, const char *what, const char *const *params,
		 jv *out, const cargs *a)
{
	size_t np = 0;
	while (params[np])
		np++;
	if (a->n > np)
		rerr(R, "%s takes at most %zu argument%s (%zu given)", what, np,
		     np == 1 ? "" : "s", a->n);
	for (size_t i = 0; i < np; i++)
		out[i] = i < a->n ? a->v[i] : missing();
	for (size_t k = 0; k < a->nkw; k++) {
		size_t j;
		for (j = 0; j < np; j++)
			if (!strcmp(params[j], a->kwn[k]))
				break;
		if (j == np)
			rerr(R, "%s got an unexpected keyword argument '%s'", what,
			     a->kwn[k]);
		if (j < a->n)
			rerr(R, "%s got multiple values for argument '%s'", what,
			     a->kwn[k]);
		out[j] = a->kwv[k];
	}
}

static int64_t want_int(rctx *R, jv v, const char *what)
{
	if (v.type == JV_INT || v.type == JV_BOOL)
		return v.u.i;
	if (v.type == JV_UNDEF)
		undef_fail(R, v);
	rerr(R, "%s: expected an integer, got '%s'", what, jv_typename(v));
}

static jv want_str(rctx *R, jv v, const char *what)
{
	if (v.type == JV_STR)
		return v;
	if (v.type == JV_UNDEF)
		undef_fail(R, v);
	rerr(R, "%s: expected a string, got '%s'", what, jv_typename(v));
}

/* ---- methods ---- */

enum jmethod {
	JM_NONE,
	JM_STRIP, JM_LSTRIP, JM_RSTRIP, JM_SPLIT, JM_RSPLIT, JM_SPLITLINES,
	JM_STARTSWITH, JM_ENDSWITH, JM_UPPER, JM_LOWER, JM_TITLE,
	JM_CAPITALIZE, JM_SWAPCASE, JM_REPLACE, JM_FORMAT, JM_JOIN, JM_FIND,
	JM_RFIND, JM_SCOUNT, JM_ISDIGIT, JM_ISALPHA, JM_ISALNUM, JM_ISSPACE,
	JM_ISUPPER, JM_ISLOWER, JM_REMOVEPREFIX, JM_REMOVESUFFIX,
	JM_GET, JM_ITEMS, JM_KEYS, JM_VALUES,
	JM_INDEX, JM_LCOUNT,
	JM_CYCLE, JM_CHANGED,
	JM_UNSUPPORTED, JM_UNSAFE,
};

static const struct {
	const char *name;
	uint8_t type;
	uint8_t id;
} methods[] = {
	{ "strip", JV_STR, JM_STRIP }, { "lstrip", JV_STR, JM_LSTRIP },
	{ "rstrip", JV_STR, JM_RSTRIP }, { "split", JV_STR, JM_SPLIT },
	{ "rsplit", JV_STR, JM_RSPLIT }, { "splitlines", JV_STR, JM_SPLITLINES },
	{ "startswith", JV_STR, JM_STARTSWITH }, { "endswith", JV_STR, JM_ENDSWITH },
	{ "upper", JV_STR, JM_UPPER }, { "lower", JV_STR, JM_LOWER },
	{ "title", JV_STR, JM_TITLE }, { "capitalize", JV_STR, JM_CAPITALIZE },
	{ "swapcase", JV_STR, JM_SWAPCASE }, { "replace", JV_STR, JM_REPLACE },
	{ "format", JV_STR, JM_FORMAT }, { "join", JV_STR, JM_JOIN },
	{ "find", JV_STR, JM_FIND }, { "rfind", JV_STR, JM_RFIND },
	{ "count", JV_STR, JM_SCOUNT }, { "isdigit", JV_STR, JM_ISDIGIT },
	{ "isalpha", JV_STR, JM_ISALPHA }, { "isalnum", JV_STR, JM_ISALNUM },
	{ "isspace", JV_STR, JM_ISSPACE }, { "isupper", JV_STR, JM_ISUPPER },
	{ "islower", JV_STR, JM_ISLOWER }, { "removeprefix", JV_STR, JM_REMOVEPREFIX },
	{ "removesuffix", JV_STR, JM_REMOVESUFFIX },
	{ "casefold", JV_STR, JM_UNSUPPORTED }, { "center", JV_STR, JM_UNSUPPORTED },
	{ "encode", JV_STR, JM_UNSUPPORTED }, { "expandtabs", JV_STR, JM_UNSUPPORTED },
	{ "format_map", JV_STR, JM_UNSUPPORTED }, { "index", JV_STR, JM_UNSUPPORTED },
	{ "isascii", JV_STR, JM_UNSUPPORTED }, { "isdecimal", JV_STR, JM_UNSUPPORTED },
	{ "isidentifier", JV_STR, JM_UNSUPPORTED }, { "isnumeric", JV_STR, JM_UNSUPPORTED },
	{ "isprintable", JV_STR, JM_UNSUPPORTED }, { "istitle", JV_STR, JM_UNSUPPORTED },
	{ "ljust", JV_STR, JM_UNSUPPORTED }, { "maketrans", JV_STR, JM_UNSUPPORTED },
	{ "partition", JV_STR, JM_UNSUPPORTED }, { "rindex", JV_STR, JM_UNSUPPORTED },
	{ "rjust", JV_STR, JM_UNSUPPORTED }, { "rpartition", JV_STR, JM_UNSUPPORTED },
	{ "translate", JV_STR, JM_UNSUPPORTED }, { "zfill", JV_STR, JM_UNSUPPORTED },
	{ "get", JV_DICT, JM_GET }, { "items", JV_DICT, JM_ITEMS },
	{ "keys", JV_DICT, JM_KEYS }, { "values", JV_DICT, JM_VALUES },
	{ "copy", JV_DICT, JM_UNSUPPORTED }, { "fromkeys", JV_DICT, JM_UNSUPPORTED },
	{ "clear", JV_DICT, JM_UNSAFE }, { "pop", JV_DICT, JM_UNSAFE },
	{ "popitem", JV_DICT, JM_UNSAFE }, { "setdefault", JV_DICT, JM_UNSAFE },
	{ "update", JV_DICT, JM_UNSAFE },
	{ "index", JV_LIST, JM_INDEX }, { "count", JV_LIST, JM_LCOUNT },
	{ "copy", JV_LIST, JM_UNSUPPORTED },
	{ "append", JV_LIST, JM_UNSAFE }, { "clear", JV_LIST, JM_UNSAFE },
	{ "extend", JV_LIST, JM_UNSAFE }, { "insert", JV_LIST, JM_UNSAFE },
	{ "pop", JV_LIST, JM_UNSAFE }, { "remove", JV_LIST, JM_UNSAFE },
	{ "reverse", JV_LIST, JM_UNSAFE }, { "sort", JV_LIST, JM_UNSAFE },
};

static int method_lookup(jv obj, const char *name)
{
	if (obj.type == JV_LIST && (obj.flags & (JVF_ITER | JVF_VIEW)))
		return JM_NONE;
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (methods[i].type == obj.type && !strcmp(methods[i].name, name)) {
			if ((obj.flags & JVF_TUPLE) && methods[i].id != JM_INDEX &&
			    methods[i].id != JM_LCOUNT)
				return JM_NONE;
			return methods[i].id;
		}
	return JM_NONE;
}

static jv bound(rctx *R, jv self, int id, const char *name)
{
	if (id == JM_UNSAFE)
		return mk_undef(R, "access to attribute '%s' of '%s' object is unsafe",
				name, jv_typename(self));
	jbound *b = ja_alloc(&R->a, sizeof *b);
	b->self = self;
	b->method = id;
	b->name = name;
	jv v = { .type = JV_METHOD };
	v.u.b = b;
	return v;
}

static jv loop_attr(rctx *R, jv lv, const char *name)
{
	jloop *L = lv.u.loop;
	size_t n = L->items->n, i = L->i;
	if (!strcmp(name, "index")) return jv_int((int64_t)i + 1);
	if (!strcmp(name, "index0")) return jv_int((int64_t)i);
	if (!strcmp(name, "revindex")) return jv_int((int64_t)(n - i));
	if (!strcmp(name, "revindex0")) return jv_int((int64_t)(n - i - 1));
	if (!strcmp(name, "first")) return jv_bool(i == 0);
	if (!strcmp(name, "last")) return jv_bool(i + 1 == n);
	if (!strcmp(name, "length")) return jv_int((int64_t)n);
	if (!strcmp(name, "depth")) return jv_int(1);
	if (!strcmp(name, "depth0")) return jv_int(0);
	if (!strcmp(name, "previtem"))
		return i > 0 ? L->items->v[i - 1] : mk_undef(R, "there is no previous item");
	if (!strcmp(name, "nextitem"))
		return i + 1 < n ? L->items->v[i + 1] : mk_undef(R, "there is no next item");
	if (!strcmp(name, "cycle"))
		return bound(R, lv, JM_CYCLE, "cycle");
	if (!strcmp(name, "changed"))
		return bound(R, lv, JM_CHANGED, "changed");
	return mk_undef(R, "'LoopContext object' has no attribute '%s'", name);
}

/* obj.name (the sandbox's getattr: attribute, then item) */
static jv get_attr(rctx *R, jv obj, const char *name)
{
	int m;
	switch (obj.type) {
	case JV_UNDEF:
		undef_fail(R, obj);
	case JV_DICT: {
		if ((m = method_lookup(obj, name)))
			return bound(R, obj, m, name);
		jv *p = jd_gets(obj.u.d, name, strlen(name));
		if (p)
			return *p;
		return mk_undef(R, "'dict object' has no attribute '%s'", name);
	}
	case JV_STR:
	case JV_LIST:
		if ((m = method_lookup(obj, name)))
			return bound(R, obj, m, name);
		break;
	case JV_NS: {
		jv *p = jd_gets(obj.u.d, name, strlen(name));
		if (p)
			return *p;
		break;
	}
	case JV_LOOP:
		return loop_attr(R, obj, name);
	default:
		break;
	}
	return mk_undef(R, "'%s object' has no attribute '%s'", jv_typename(obj), name);
}

static int plain_seq(jv v)
{
	return v.type == JV_LIST && !(v.flags & (JVF_ITER | JVF_VIEW));
}

/* obj[key] (the sandbox's getitem: item, then attribute) */
static jv get_item(rctx *R, jv obj, jv key)
{
	if (obj.type == JV_UNDEF)
		undef_fail(R, obj);
	if (obj.type == JV_DICT) {
		jv *p = jd_get(obj.u.d, key);
		if (p)
			return *p;
	} else if ((plain_seq(obj) || obj.type == JV_STR) &&
		   (key.type == JV_INT || key.type == JV_BOOL)) {
		int64_t i = key.u.i;
		if (obj.type == JV_LIST) {
			int64_t n = (int64_t)obj.u.l->n;
			if (i < 0)
				i += n;
			if (i >= 0 && i < n)
				return obj.u.l->v[i];
		} else {
			const char *s = obj.u.s.p;
			size_t n = obj.u.s.n, cnt = ju_len(s, n);
			if (i < 0)
				i += (int64_t)cnt;
			if (i >= 0 && i < (int64_t)cnt) {
				size_t p = 0;
				for (int64_t k = 0; k < i; k++)
					ju_decode(s, n, &p);
				size_t st = p;
				ju_decode(s, n, &p);
				jv r = jv_str(s + st, p - st);
				r.flags = obj.flags & JVF_MARKUP;
				return r;
			}
		}
		return mk_undef(R, "'%s object' has no element %lld", jv_typename(obj),
				(long long)key.u.i);
	}
	if (key.type == JV_STR)
		return get_attr(R, obj, ja_strndup(&R->a, key.u.s.p, key.u.s.n));
	jbuf b = { 0 };
	jv_repr_to(&R->a, &b, key);
	return mk_undef(R, "'%s object' has no element %s", jv_typename(obj),
			b.p ? b.p : "");
}

/* obj[start:stop:step]: jinja2 compiles slices to plain Python
 * subscripts, so errors are errors here (not undefined values). */
static jv get_slice(rctx *R, jv obj, jv start, jv stop, jv stepv)
{
	if (obj.type == JV_UNDEF)
		undef_fail(R, obj);
	jv parts[3] = { start, stop, stepv };
	int has[3];
	int64_t val[3];
	if (obj.type == JV_DICT)
		rerr(R, "unhashable type: 'slice'");
	if (!plain_seq(obj) && obj.type != JV_STR)
		rerr(R, "'%s' object is not subscriptable", jv_typename(obj));
	for (int k = 0; k < 3; k++) {
		jv p = parts[k];
		has[k] = !is_none_or_missing(p);
		if (has[k] && p.type != JV_INT && p.type != JV_BOOL)
			rerr(R, "slice indices must be integers or None");
		val[k] = has[k] ? p.u.i : 0;
	}
	int64_t st = has[2] ? val[2] : 1;
	if (st == 0)
		rerr(R, "slice step cannot be zero");
	if (st < -INT64_MAX)
		st = -INT64_MAX;
	size_t count;
	size_t *off = NULL;
	if (obj.type == JV_STR) {
		count = ju_len(obj.u.s.p, obj.u.s.n);
		if (count != obj.u.s.n)
			off = cp_offsets(R, obj.u.s.p, obj.u.s.n, &count);
	} else {
		count = obj.u.l->n;
	}
	int64_t len = (int64_t)count;
	int64_t b = has[0] ? val[0] : (st < 0 ? INT64_MAX : 0);
	int64_t e = has[1] ? val[1] : (st < 0 ? INT64_MIN : INT64_MAX);
	if (b < 0) {
		b = b < -len ? (st < 0 ? -1 : 0) : b + len;
	} else if (b >= len) {
		b = st < 0 ? len - 1 : len;
	}
	if (e < 0) {
		e = e < -len ? (st < 0 ? -1 : 0) : e + len;
	} else if (e >= len) {
		e = st < 0 ? len - 1 : len;
	}
	int64_t n = 0;
	if (st < 0) {
		if (e < b)
			n = (b - e - 1) / (-st) + 1;
	} else if (b < e) {
		n = (e - b - 1) / st + 1;
	}
	if (obj.type == JV_LIST) {
		jlist *l = list_new(R, (size_t)n);
		for (int64_t k = 0; k < n; k++)
			l->v[k] = obj.u.l->v[b + k * st];
		return mk_list(l, obj.flags & JVF_TUPLE);
	}
	if (st == 1) {
		size_t from = off ? off[b] : (size_t)b, to = off ? off[b + n] : (size_t)(b + n);
		jv r = jv_str(obj.u.s.p + from, to - from);
		r.flags = obj.flags & JVF_MARKUP;
		return r;
	}
	jbuf out = { 0 };
	for (int64_t k = 0; k < n; k++) {
		int64_t ci = b + k * st;
		size_t from = off ? off[ci] : (size_t)ci, to = off ? off[ci + 1] : (size_t)ci + 1;
		jb_put(&R->a, &out, obj.u.s.p + from, to - from);
	}
	return buf_str(&out, obj.flags & JVF_MARKUP);
}

/* ---- arithmetic ---- */

__attribute__((noreturn))
static void op_type_error(rctx *R, const char *op, jv a, jv b)
{
	rerr(R, "unsupported operand type(s) for %s: '%s' and '%s'", op,
	     jv_typename(a), jv_typename(b));
}

static double num_f(jv v)
{
	return v.type == JV_FLOAT ? v.u.f : (double)v.u.i;
}

static jv repeat(rctx *R, jv seq, int64_t times)
{
	if (times < 0)
		times = 0;
	if (seq.type == JV_STR) {
		uint64_t total;
		if (slm_mul_ok(seq.u.s.n, (uint64_t)times, &total) || total > R->max_output)
			rerr(R, "a string of more than %zu bytes", R->max_output);
		char *p = ja_alloc(&R->a, (size_t)total + 1);
		for (int64_t k = 0; k < times; k++)
			memcpy(p + (size_t)k * seq.u.s.n, seq.u.s.p, seq.u.s.n);
		jv r = jv_str(p, (size_t)total);
		r.flags = seq.flags & JVF_MARKUP;
		return r;
	}
	uint64_t total;
	if (slm_mul_ok(seq.u.l->n, (uint64_t)times, &total) ||
	    total > R->max_output / sizeof(jv))
		rerr(R, "a list of more than %zu bytes", R->max_output);
	jlist *l = list_new(R, (size_t)total);
	for (int64_t k = 0; k < times; k++)
		memcpy(l->v + (size_t)k * seq.u.l->n, seq.u.l->v, seq.u.l->n * sizeof(jv));
	return mk_list(l, seq.flags & JVF_TUPLE);
}

static jv percent_format(rctx *R, jv fmt, jv args);

static jv arith(rctx *R, int op, jv a, jv b)
{
	static const char *const names[] = {
		[OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/",
		[OP_FLOORDIV] = "//", [OP_MOD] = "%", [OP_POW] = "**",
	};
	if (a.type == JV_UNDEF)
		undef_fail(R, a);
	if (b.type == JV_UNDEF)
		undef_fail(R, b);
	int nums = jv_isnum(a) && jv_isnum(b);
	int ints = nums && a.type != JV_FLOAT && b.type != JV_FLOAT;
	int64_t r;
	switch (op) {
	case OP_ADD:
		if (ints) {
			if (__builtin_add_overflow(a.u.i, b.u.i, &r))
				rerr(R, "integer overflow");
			return jv_int(r);
		}
		if (nums)
			return jv_float(num_f(a) + num_f(b));
		if (a.type == JV_STR && b.type == JV_STR) {
			int markup = (a.flags | b.flags) & JVF_MARKUP;
			if (markup) {
				if (!(a.flags & JVF_MARKUP))
					a = py_escape(R, a);
				if (!(b.flags & JVF_MARKUP))
					b = py_escape(R, b);
			}
			check_size(R, a.u.s.n + b.u.s.n);
			jbuf o = { 0 };
			jb_put(&R->a, &o, a.u.s.p, a.u.s.n);
			jb_put(&R->a, &o, b.u.s.p, b.u.s.n);
			return buf_str(&o, markup);
		}
		if (plain_seq(a) && plain_seq(b) &&
		    (a.flags & JVF_TUPLE) == (b.flags & JVF_TUPLE)) {
			jlist *l = list_new(R, a.u.l->n + b.u.l->n);
			if (a.u.l->n)
				memcpy(l->v, a.u.l->v, a.u.l->n * sizeof(jv));
			if (b.u.l->n)
				memcpy(l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof(jv));
			return mk_list(l, a.flags & JVF_TUPLE);
		}
		if (a.type == JV_STR && b.type != JV_STR)
			rerr(R, "can only concatenate str (not \"%s\") to str", jv_typename(b));
		op_type_error(R, "+", a, b);
	case OP_SUB:
		if (ints) {
			if (__builtin_sub_overflow(a.u.i, b.u.i, &r))
				rerr(R, "integer overflow");
			return jv_int(r);
		}
		if (nums)
			return jv_float(num_f(a) - num_f(b));
		op_type_error(R, "-", a, b);
	case OP_MUL:
		if (ints) {
			if (__builtin_mul_overflow(a.u.i, b.u.i, &r))
				rerr(R, "integer overflow");
			return jv_int(r);
		}
		if (nums)
			return jv_float(num_f(a) * num_f(b));
		if ((a.type == JV_STR || plain_seq(a)) && (b.type == JV_INT || b.type == JV_BOOL))
			return repeat(R, a, b.u.i);
		if ((b.type == JV_STR || plain_seq(b)) && (a.type == JV_INT || a.type == JV_BOOL))
			return repeat(R, b, a.u.i);
		op_type_error(R, "*", a, b);
	case OP_DIV:
		if (!nums)
			op_type_error(R, "/", a, b);
		if (num_f(b) == 0)
			rerr(R, "division by zero");
		return jv_float(num_f(a) / num_f(b));
	case OP_FLOORDIV:
	case OP_MOD:
		if (a.type == JV_STR && op == OP_MOD)
			return percent_format(R, a, b);
		if (!nums)
			op_type_error(R, names[op], a, b);
		if (ints) {
			if (b.u.i == 0)
				rerr(R, "integer division or modulo by zero");
			if (a.u.i == INT64_MIN && b.u.i == -1)
				rerr(R, "integer overflow");
			int64_t q = a.u.i / b.u.i, m = a.u.i % b.u.i;
			if (m && ((m < 0) != (b.u.i < 0))) {
				q--;
				m += b.u.i;
			}
			return jv_int(op == OP_MOD ? m : q);
		} else {
			double x = num_f(a), y = num_f(b);
			if (y == 0)
				rerr(R, "float division by zero");
			double mod = fmod(x, y), div = (x - mod) / y, fd;
			if (mod) {
				if ((y < 0) != (mod < 0)) {
					mod += y;
					div -= 1.0;
				}
			} else {
				mod = copysign(0.0, y);
			}
			if (div) {
				fd = floor(div);
				if (div - fd > 0.5)
					fd += 1.0;
			} else {
				fd = copysign(0.0, x / y);
			}
			return jv_float(op == OP_MOD ? mod : fd);
		}
	default: /* OP_POW */
		if (!nums)
			op_type_error(R, "**", a, b);
		if (ints && b.u.i >= 0) {
			int64_t base = a.u.i, e = b.u.i, acc = 1;
			while (e) {
				if ((e & 1) && __builtin_mul_overflow(acc, base, &acc))
					rerr(R, "integer overflow");
				e >>= 1;
				if (e && __builtin_mul_overflow(base, base, &base))
					rerr(R, "integer overflow");
			}
			return jv_int(acc);
		}
		{
			double x = num_f(a), y = num_f(b);
			if (x == 0 && y < 0)
				rerr(R, "0.0 cannot be raised to a negative power");
			if (x < 0 && y != floor(y))
				rerr(R, "unsupported: a complex result of **");
			return jv_float(pow(x, y));
		}
	}
}

/* ---- comparisons ---- */

static int contains(rctx *R, jv container, jv item)
{
	switch (container.type) {
	case JV_STR:
		if (item.type != JV_STR)
			rerr(R, "'in <string>' requires string as left operand, not %s",
			     jv_typename(item));
		if (!item.u.s.n)
			return 1;
		return memmem(container.u.s.p, container.u.s.n, item.u.s.p,
			      item.u.s.n) != NULL;
	case JV_LIST: {
		jlist *l = iter_list(R, container);
		for (size_t i = 0; i < l->n; i++)
			if (jv_eq(l->v[i], item))
				return 1;
		return 0;
	}
	case JV_DICT:
		if (!jv_hashable(item))
			rerr(R, "unhashable type: '%s'", jv_typename(item));
		return jd_get(container.u.d, item) != NULL;
	case JV_UNDEF:
		return 0;
	default:
		rerr(R, "argument of type '%s' is not iterable", jv_typename(container));
	}
}

static int compare(rctx *R, int op, jv a, jv b)
{
	static const char *const names[] = {
		[OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">=",
	};
	switch (op) {
	case OP_EQ: return jv_eq(a, b);
	case OP_NE: return !jv_eq(a, b);
	case OP_IN: return contains(R, b, a);
	case OP_NOTIN: return !contains(R, b, a);
	default: break;
	}
	if (a.type == JV_UNDEF)
		undef_fail(R, a);
	if (b.type == JV_UNDEF)
		undef_fail(R, b);
	int c = jv_cmp(a, b);
	if (c == JV_CMP_TYPE)
		rerr(R, "'%s' not supported between instances of '%s' and '%s'",
		     names[op], jv_typename(a), jv_typename(b));
	if (c == 3)
		return 0;
	switch (op) {
	case OP_LT: return c < 0;
	case OP_LE: return c <= 0;
	case OP_GT: return c > 0;
	default: return c >= 0;
	}
}

/* ---- strings ---- */

/* A growable list of values. */
typedef struct jvec {
	jv *v;
	size_t n, cap;
} jvec;

static void jvec_push(rctx *R, jvec *x, jv v)
{
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 8;
		x->v = ja_grow(&R->a, x->v, x->cap * sizeof *x->v, nc * sizeof *x->v);
		x->cap = nc;
	}
	x->v[x->n++] = v;
}

static jv jvec_list(rctx *R, jvec *x, int flags)
{
	jlist *l = ja_alloc(&R->a, sizeof *l);
	l->n = x->n;
	l->v = x->v;
	return mk_list(l, flags);
}

static int in_set(const char *set, size_t n, uint32_t c)
{
	size_t i = 0;
	while (i < n)
		if ((uint32_t)ju_decode(set, n, &i) == c)
			return 1;
	return 0;
}

/* str.strip/lstrip/rstrip(chars) */
static jv py_strip(rctx *R, jv s, jv chars, int left, int right)
{
	const char *p = s.u.s.p;
	size_t b = 0, e = s.u.s.n;
	int ws = is_none_or_missing(chars);
	if (!ws)
		chars = want_str(R, chars, "strip");
	while (left && b < e) {
		size_t k = b;
		uint32_t c = (uint32_t)ju_decode(p, e, &k);
		if (ws ? !ju_isspace(c) : !in_set(chars.u.s.p, chars.u.s.n, c))
			break;
		b = k;
	}
	while (right && e > b) {
		size_t k = e - 1;
		while (k > b && ((unsigned char)p[k] & 0xC0) == 0x80)
			k--;
		size_t t = k;
		uint32_t c = (uint32_t)ju_decode(p, e, &t);
		if (ws ? !ju_isspace(c) : !in_set(chars.u.s.p, chars.u.s.n, c))
			break;
		e = k;
	}
	jv r = jv_str(p + b, e - b);
	r.flags = s.flags & JVF_MARKUP;
	return r;
}

static size_t skip_space(const char *p, size_t n, size_t i)
{
	while (i < n) {
		size_t k = i;
		if (!ju_isspace((uint32_t)ju_decode(p, n, &k)))
			break;
		i = k;
	}
	return i;
}

static size_t skip_word(const char *p, size_t n, size_t i)
{
	while (i < n) {
		size_t k = i;
		if (ju_isspace((uint32_t)ju_decode(p, n, &k)))
			break;
		i = k;
	}
	return i;
}

/* Start of the code point before byte i. */
static size_t cp_before(const char *p, size_t i)
{
	do
		i--;
	while (i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80);
	return i;
}

static int space_before(const char *p, size_t n, size_t e)
{
	size_t k = cp_before(p, e);
	return ju_isspace((uint32_t)ju_decode(p, n, &k));
}

/* str.split(sep, maxsplit) and str.rsplit() */
static jv py_split(rctx *R, jv s, jv sep, jv maxsplit, int from_right)
{
	const char *p = s.u.s.p;
	size_t n = s.u.s.n;
	int64_t max = is_missing(maxsplit) ? -1 : want_int(R, maxsplit, "split");
	jvec out = { 0 };
	if (is_none_or_missing(sep)) {
		if (!from_right) {
			size_t i = 0;
			for (;;) {
				i = skip_space(p, n, i);
				if (i == n)
					break;
				if (max >= 0 && (int64_t)out.n == max) {
					jvec_push(R, &out, jv_str(p + i, n - i));
					break;
				}
				size_t e = skip_word(p, n, i);
				jvec_push(R, &out, jv_str(p + i, e - i));
				i = e;
			}
		} else {
			jvec rev = { 0 };
			size_t e = n;
			for (;;) {
				while (e > 0 && space_before(p, n, e))
					e = cp_before(p, e);
				if (e == 0)
					break;
				if (max >= 0 && (int64_t)rev.n == max) {
					jvec_push(R, &rev, jv_str(p, e));
					break;
				}
				size_t b = e;
				while (b > 0 && !space_before(p, n, b))
					b = cp_before(p, b);
				jvec_push(R, &rev, jv_str(p + b, e - b));
				e = b;
			}
			for (size_t k = rev.n; k > 0; k--)
				jvec_push(R, &out, rev.v[k - 1]);
		}
		return jvec_list(R, &out, 0);
	}
	sep = want_str(R, sep, "split");
	size_t m = sep.u.s.n;
	if (!m)
		rerr(R, "empty separator");
	if (!from_right) {
		size_t i = 0;
		const char *f;
		while ((max < 0 || (int64_t)out.n < max) &&
		       (f = memmem(p + i, n - i, sep.u.s.p, m))) {
			jvec_push(R, &out, jv_str(p + i, (size_t)(f - p) - i));
			i = (size_t)(f - p) + m;
		}
		jvec_push(R, &out, jv_str(p + i, n - i));
		return jvec_list(R, &out, 0);
	}
	jvec rev = { 0 };
	size_t e = n;
	while (max < 0 || (int64_t)rev.n < max) {
		size_t k, found = (size_t)-1;
		for (k = e; k >= m; k--)
			if (!memcmp(p + k - m, sep.u.s.p, m)) {
				found = k - m;
				break;
			}
		if (found == (size_t)-1)
			break;
		jvec_push(R, &rev, jv_str(p + found + m, e - found - m));
		e = found;
	}
	jvec_push(R, &rev, jv_str(p, e));
	for (size_t k = rev.n; k > 0; k--)
		jvec_push(R, &out, rev.v[k - 1]);
	return jvec_list(R, &out, 0);
}

/* str.splitlines(keepends) (and what the indent filter splits on) */
static jv py_splitlines(rctx *R, const char *p, size_t n, int keepends)
{
	jvec out = { 0 };
	size_t i = 0, st = 0;
	while (i < n) {
		size_t at = i;
		uint32_t c = (uint32_t)ju_decode(p, n, &i);
		if (!ju_islinebreak(c))
			continue;
		if (c == '\r' && i < n && p[i] == '\n')
			i++;
		jvec_push(R, &out, jv_str(p + st, (keepends ? i : at) - st));
		st = i;
	}
	if (st < n)
		jvec_push(R, &out, jv_str(p + st, n - st));
	return jvec_list(R, &out, 0);
}

static jv py_replace(rctx *R, jv s, jv old, jv new, int64_t count)
{
	const char *p = s.u.s.p;
	size_t n = s.u.s.n, m = old.u.s.n;
	jbuf o = { 0 };
	int64_t done = 0;
	if (!m) {
		size_t i = 0;
		while (i <= n && (count < 0 || done < count)) {
			jb_put(&R->a, &o, new.u.s.p, new.u.s.n);
			done++;
			if (i == n) {
				i++;
				break;
			}
			size_t k = i;
			ju_decode(p, n, &k);
			jb_put(&R->a, &o, p + i, k - i);
			i = k;
			check_size(R, o.n);
		}
		if (i < n)
			jb_put(&R->a, &o, p + i, n - i);
		return buf_str(&o, 0);
	}
	size_t i = 0;
	const char *f;
	while ((count < 0 || done < count) && (f = memmem(p + i, n - i, old.u.s.p, m))) {
		jb_put(&R->a, &o, p + i, (size_t)(f - p) - i);
		jb_put(&R->a, &o, new.u.s.p, new.u.s.n);
		check_size(R, o.n);
		i = (size_t)(f - p) + m;
		done++;
	}
	jb_put(&R->a, &o, p + i, n - i);
	return buf_str(&o, 0);
}

static jv case_map(rctx *R, jv s, int mode)
{
	jbuf o = { 0 };
	ju_case_to(&R->a, &o, s.u.s.p, s.u.s.n, mode);
	return buf_str(&o, s.flags & JVF_MARKUP);
}

/* str.isdigit() and friends: 1 if s is not empty and every code point
 * passes. */
static int str_is(jv s, int what)
{
	const char *p = s.u.s.p;
	size_t n = s.u.s.n, i = 0;
	int cased = 0;
	if (!n)
		return 0;
	while (i < n) {
		uint32_t c = (uint32_t)ju_decode(p, n, &i);
		utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
		int alpha = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
		int digit = cat == UTF8PROC_CATEGORY_ND;
		int numeric = digit || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
		switch (what) {
		case JM_ISDIGIT: if (!digit) return 0; break;
		case JM_ISALPHA: if (!alpha) return 0; break;
		case JM_ISALNUM: if (!alpha && !numeric) return 0; break;
		case JM_ISSPACE: if (!ju_isspace(c)) return 0; break;
		case JM_ISUPPER:
			if (ju_islower(c) || cat == UTF8PROC_CATEGORY_LT)
				return 0;
			cased |= ju_isupper(c);
			break;
		default: /* JM_ISLOWER */
			if (ju_isupper(c) || cat == UTF8PROC_CATEGORY_LT)
				return 0;
			cased |= ju_islower(c);
			break;
		}
	}
	return what == JM_ISUPPER || what == JM_ISLOWER ? cased : 1;
}

/* Pad s (code points) to width with fill, aligned '<', '>', '^'. */
static void pad_to(rctx *R, jbuf *o, const char *s, size_t n, int64_t width,
		   char align, const char *fill, size_t filln)
{
	int64_t len = (int64_t)ju_len(s, n), padn = width > len ? width - len : 0;
	int64_t left = align == '>' ? padn : align == '^' ? padn / 2 : 0;
	check_size(R, (size_t)padn * filln + n);
	for (int64_t k = 0; k < left; k++)
		jb_put(&R->a, o, fill, filln);
	jb_put(&R->a, o, s, n);
	for (int64_t k = left; k < padn; k++)
		jb_put(&R->a, o, fill, filln);
}

/* printf-style formatting: fmt % args */
static jv percent_format(rctx *R, jv fmt, jv args)
{
	const char *p = fmt.u.s.p;
	size_t n = fmt.u.s.n, i = 0, argi = 0;
	jlist one = { 1, &args, 0 };
	jlist *av = (args.type == JV_LIST && (args.flags & JVF_TUPLE)) ? args.u.l : &one;
	jbuf o = { 0 };
	int used_map = 0;
	while (i < n) {
		if (p[i] != '%') {
			jb_putc(&R->a, &o, p[i++]);
			continue;
		}
		i++;
		if (i < n && p[i] == '%') {
			jb_putc(&R->a, &o, '%');
			i++;
			continue;
		}
		jv arg;
		int have_arg = 0;
		if (i < n && p[i] == '(') {
			size_t st = ++i;
			while (i < n && p[i] != ')')
				i++;
			if (i == n || args.type != JV_DICT)
				rerr(R, "format requires a mapping");
			jv *x = jd_gets(args.u.d, p + st, i - st);
			if (!x)
				rerr(R, "format: key '%.*s' not found", (int)(i - st), p + st);
			arg = *x;
			have_arg = used_map = 1;
			i++;
		}
		char flags[8] = "";
		size_t nf = 0;
		while (i < n && strchr("-+ #0", p[i]) && nf < sizeof flags - 1)
			flags[nf++] = p[i++];
		flags[nf] = 0;
		int64_t width = -1, prec = -1;
		if (i < n && p[i] == '*') {
			rerr(R, "unsupported: '*' in a %% format");
		}
		while (i < n && p[i] >= '0' && p[i] <= '9')
			width = (width < 0 ? 0 : width) * 10 + (p[i++] - '0');
		if (i < n && p[i] == '.') {
			i++;
			prec = 0;
			while (i < n && p[i] >= '0' && p[i] <= '9')
				prec = prec * 10 + (p[i++] - '0');
		}
		if (width > 100000 || prec > 100000)
			rerr(R, "format width too large");
		while (i < n && strchr("hlL", p[i]))
			i++;
		if (i == n)
			rerr(R, "incomplete format");
		char t = p[i++];
		if (!have_arg) {
			if (argi >= av->n)
				rerr(R, "not enough arguments for format string");
			arg = av->v[argi++];
		}
		char cf[96], tmp[512];
		if (t == 's' || t == 'r' || t == 'a') {
			jbuf sb = { 0 };
			if (t == 's')
				jv_str_to(&R->a, &sb, arg);
			else
				jv_repr_to(&R->a, &sb, arg);
			size_t len = sb.n;
			if (prec >= 0) {
				size_t k = 0;
				for (int64_t c = 0; c < prec && k < sb.n; c++)
					ju_decode(sb.p, sb.n, &k);
				len = k;
			}
			pad_to(R, &o, sb.p ? sb.p : "", len, width, strchr(flags, '-') ? '<' : '>',
			       " ", 1);
			continue;
		}
		if (strchr("diuxXoc", t) && !jv_isnum(arg) && t != 'c')
			rerr(R, "%%%c format: a real number is required, not %s", t, jv_typename(arg));
		if (strchr("eEfFgG", t) && !jv_isnum(arg))
			rerr(R, "must be real number, not %s", jv_typename(arg));
		if (strchr("xXo", t) && arg.type == JV_FLOAT)
			rerr(R, "%%%c format: an integer is required, not float", t);
		char w[24] = "", pr[24] = "";
		if (width >= 0)
			snprintf(w, sizeof w, "%lld", (long long)width);
		if (prec >= 0)
			snprintf(pr, sizeof pr, ".%lld", (long long)prec);
		if (strchr("diu", t)) {
			double f = num_f(arg);
			if (arg.type == JV_FLOAT && !(fabs(f) < 9.2e18))
				rerr(R, "cannot convert float to integer");
			long long v = arg.type == JV_FLOAT ? (long long)f : (long long)arg.u.i;
			snprintf(cf, sizeof cf, "%%%s%s%slld", flags, w, pr);
			snprintf(tmp, sizeof tmp, cf, v);
		} else if (strchr("xXo", t)) {
			snprintf(cf, sizeof cf, "%%%s%s%sll%c", flags, w, pr, t);
			long long v = (long long)arg.u.i;
			if (v < 0) {
				snprintf(tmp, sizeof tmp, cf, (unsigned long long)-v);
				jb_putc(&R->a, &o, '-');
			} else {
				snprintf(tmp, sizeof tmp, cf, (unsigned long long)v);
			}
		} else if (t == 'c') {
			char u[4];
			if (arg.type == JV_STR && ju_len(arg.u.s.p, arg.u.s.n) == 1) {
				jb_put(&R->a, &o, arg.u.s.p, arg.u.s.n);
			} else if ((arg.type == JV_INT || arg.type == JV_BOOL) && arg.u.i >= 0 &&
				   arg.u.i <= 0x10FFFF) {
				jb_put(&R->a, &o, u, (size_t)ju_encode((uint32_t)arg.u.i, u));
			} else {
				rerr(R, "%%c requires an int or a unicode character");
			}
			continue;
		} else if (strchr("eEfFgG", t)) {
			snprintf(cf, sizeof cf, "%%%s%s%s%c", flags, w, pr, t);
			snprintf(tmp, sizeof tmp, cf, num_f(arg));
		} else {
			rerr(R, "unsupported format character '%c'", t);
		}
		jb_puts(&R->a, &o, tmp);
	}
	if (!used_map && argi < av->n && av != &one)
		rerr(R, "not all arguments converted during string formatting");
	return buf_str(&o, 0);
}

/* format(value, spec) for str.format(): [[fill]align][sign][#][0][width]
 * [,][.precision][type] */
static void format_spec(rctx *R, jbuf *o, jv v, const char *spec, size_t sn)
{
	if (!sn) {
		jv_str_to(&R->a, o, v);
		return;
	}
	size_t i = 0;
	const char *fill = " ";
	size_t filln = 1;
	char align = 0, sign = '-';
	int alt = 0, zero = 0, comma = 0;
	int64_t width = -1, prec = -1;
	size_t k = 0;
	if (sn) {
		ju_decode(spec, sn, &k);
		if (k < sn && strchr("<>^=", spec[k])) {
			fill = spec;
			filln = k;
			align = spec[k];
			i = k + 1;
		} else if (strchr("<>^=", spec[0])) {
			align = spec[0];
			i = 1;
		}
	}
	if (i < sn && strchr("+- ", spec[i]))
		sign = spec[i++];
	if (i < sn && spec[i] == '#') {
		alt = 1;
		i++;
	}
	if (i < sn && spec[i] == '0') {
		zero = 1;
		i++;
	}
	while (i < sn && spec[i] >= '0' && spec[i] <= '9')
		width = (width < 0 ? 0 : width) * 10 + (spec[i++] - '0');
	if (i < sn && spec[i] == ',') {
		comma = 1;
		i++;
	}
	if (i < sn && spec[i] == '.') {
		i++;
		prec = 0;
		while (i < sn && spec[i] >= '0' && spec[i] <= '9')
			prec = prec * 10 + (spec[i++] - '0');
	}
	char t = i < sn ? spec[i++] : 0;
	if (i != sn || width > 100000 || prec > 100)
		rerr(R, "unsupported format spec '%.*s'", (int)sn, spec);
	if (zero && !align) {
		fill = "0";
		filln = 1;
		align = '=';
	}
	jbuf body = { 0 };
	const char *prefix = "";
	if (v.type == JV_STR) {
		if (t && t != 's')
			rerr(R, "unknown format code '%c' for object of type 'str'", t);
		size_t len = v.u.s.n;
		if (prec >= 0) {
			size_t q = 0;
			for (int64_t c = 0; c < prec && q < v.u.s.n; c++)
				ju_decode(v.u.s.p, v.u.s.n, &q);
			len = q;
		}
		pad_to(R, o, v.u.s.p, len, width, align ? align : '<', fill, filln);
		return;
	}
	if (!jv_isnum(v))
		rerr(R, "unsupported format string passed to %s.__format__", jv_typename(v));
	char tmp[512];
	int neg;
	if (v.type != JV_FLOAT && (!t || strchr("dxXob", t))) {
		long long x = (long long)v.u.i;
		neg = x < 0;
		unsigned long long ux = neg ? 0ULL - (unsigned long long)x : (unsigned long long)x;
		if (t == 'b') {
			char bits[72];
			int nb = 0;
			do {
				bits[nb++] = (char)('0' + (ux & 1));
				ux >>= 1;
			} while (ux);
			for (int q = 0; q < nb; q++)
				tmp[q] = bits[nb - 1 - q];
			tmp[nb] = 0;
		} else {
			snprintf(tmp, sizeof tmp, t == 'x' ? "%llx" : t == 'X' ? "%llX" :
				 t == 'o' ? "%llo" : "%llu", ux);
		}
		if (alt && t && t != 'd')
			prefix = t == 'x' ? "0x" : t == 'X' ? "0X" : t == 'o' ? "0o" : "0b";
	} else {
		double f = num_f(v);
		neg = signbit(f) && !isnan(f);
		double af = fabs(f);
		if (!t && prec < 0) {
			jv_float_repr(af, tmp);
		} else {
			char cf[8];
			char ct = t ? t : 'g';
			int pct = ct == '%';
			if (pct) {
				af *= 100;
				ct = 'f';
			}
			if (!strchr("eEfFgG", ct))
				rerr(R, "unknown format code '%c' for a number", ct);
			snprintf(cf, sizeof cf, "%%.*%c", ct);
			snprintf(tmp, sizeof tmp, cf, (int)(prec < 0 ? 6 : prec), af);
			if (pct)
				strcat(tmp, "%");
		}
	}
	if (comma) {
		char *dot = strpbrk(tmp, ".eE%");
		size_t ilen = dot ? (size_t)(dot - tmp) : strlen(tmp);
		for (size_t q = 0; q < ilen; q++) {
			if (q && (ilen - q) % 3 == 0)
				jb_putc(&R->a, &body, ',');
			jb_putc(&R->a, &body, tmp[q]);
		}
		jb_puts(&R->a, &body, tmp + ilen);
	} else {
		jb_puts(&R->a, &body, tmp);
	}
	char sgn[2] = { 0, 0 };
	if (neg)
		sgn[0] = '-';
	else if (sign == '+' || sign == ' ')
		sgn[0] = sign;
	if (align == '=') {
		jb_puts(&R->a, o, sgn);
		jb_puts(&R->a, o, prefix);
		int64_t used = (int64_t)(strlen(sgn) + strlen(prefix));
		pad_to(R, o, body.p, body.n, width - used, '>', fill, filln);
		return;
	}
	jbuf all = { 0 };
	jb_puts(&R->a, &all, sgn);
	jb_puts(&R->a, &all, prefix);
	jb_put(&R->a, &all, body.p, body.n);
	pad_to(R, o, all.p, all.n, width, align ? align : '>', fill, filln);
}

/* str.format(*args, **kwargs) */
static jv str_format(rctx *R, jv fmt, const cargs *a)
{
	const char *p = fmt.u.s.p;
	size_t n = fmt.u.s.n, i = 0, autoidx = 0;
	int numbering = 0; /* 1: automatic, 2: manual */
	jbuf o = { 0 };
	while (i < n) {
		char c = p[i];
		if (c == '}') {
			if (i + 1 < n && p[i + 1] == '}') {
				jb_putc(&R->a, &o, '}');
				i += 2;
				continue;
			}
			rerr(R, "single '}' encountered in format string");
		}
		if (c != '{') {
			jb_putc(&R->a, &o, c);
			i++;
			continue;
		}
		if (i + 1 < n && p[i + 1] == '{') {
			jb_putc(&R->a, &o, '{');
			i += 2;
			continue;
		}
		size_t st = ++i;
		while (i < n && p[i] != '}' && p[i] != '{')
			i++;
		if (i == n || p[i] == '{')
			rerr(R, "unsupported or malformed format field");
		const char *f = p + st, *fe = p + i;
		i++;
		const char *colon = memchr(f, ':', (size_t)(fe - f));
		const char *spec = colon ? colon + 1 : fe;
		const char *ne = colon ? colon : fe;
		char conv = 0;
		const char *bang = memchr(f, '!', (size_t)(ne - f));
		if (bang) {
			if (ne - bang != 2)
				rerr(R, "malformed conversion in a format field");
			conv = bang[1];
			ne = bang;
		}
		size_t nl = 0;
		while (f + nl < ne && f[nl] != '.' && f[nl] != '[')
			nl++;
		jv v;
		if (!nl || (f[0] >= '0' && f[0] <= '9')) {
			if (numbering && numbering != (nl ? 2 : 1))
				rerr(R, "cannot switch between automatic and manual field numbering");
			numbering = nl ? 2 : 1;
		}
		if (!nl) {
			if (autoidx >= a->n)
				rerr(R, "format: replacement index %zu out of range", autoidx);
			v = a->v[autoidx++];
		} else if (f[0] >= '0' && f[0] <= '9') {
			size_t idx = (size_t)strtoul(f, NULL, 10);
			if (idx >= a->n)
				rerr(R, "format: replacement index %zu out of range", idx);
			v = a->v[idx];
		} else {
			size_t k;
			for (k = 0; k < a->nkw; k++)
				if (strlen(a->kwn[k]) == nl && !memcmp(a->kwn[k], f, nl))
					break;
			if (k == a->nkw)
				rerr(R, "format: no argument '%.*s'", (int)nl, f);
			v = a->kwv[k];
		}
		const char *q = f + nl;
		while (q < ne) {
			if (*q == '.') {
				const char *e = q + 1;
				while (e < ne && *e != '.' && *e != '[')
					e++;
				v = get_attr(R, v, ja_strndup(&R->a, q + 1, (size_t)(e - q - 1)));
				q = e;
			} else {
				const char *e = memchr(q, ']', (size_t)(ne - q));
				if (!e)
					rerr(R, "format: missing ']'");
				jv key = jv_str(q + 1, (size_t)(e - q - 1));
				if (e > q + 1 && q[1] >= '0' && q[1] <= '9')
					key = jv_int(strtoll(q + 1, NULL, 10));
				v = get_item(R, v, key);
				q = e + 1;
			}
		}
		if (conv == 'r' || conv == 'a') {
			jbuf rb = { 0 };
			jv_repr_to(&R->a, &rb, v);
			v = buf_str(&rb, 0);
		} else if (conv == 's') {
			v = to_str(R, v);
		} else if (conv) {
			rerr(R, "unknown conversion specifier '%c'", conv);
		}
		format_spec(R, &o, v, spec, (size_t)(fe - spec));
		check_size(R, o.n);
	}
	return buf_str(&o, 0);
}

/* ---- filters and tests: names ---- */

enum jfilter {
	F_ABS, F_ATTR, F_CAPITALIZE, F_COUNT, F_D, F_DEFAULT, F_DICTSORT, F_E,
	F_ESCAPE, F_FIRST, F_FLOAT, F_FORMAT, F_INDENT, F_INT, F_ITEMS, F_JOIN,
	F_LAST, F_LENGTH, F_LIST, F_LOWER, F_MAP, F_MAX, F_MIN, F_REJECT,
	F_REJECTATTR, F_REPLACE, F_REVERSE, F_ROUND, F_SAFE, F_SELECT,
	F_SELECTATTR, F_SORT, F_STRING, F_SUM, F_TITLE, F_TOJSON, F_TRIM,
	F_UNIQUE, F_UPPER,
};

static const char *const filter_names[] = {
	"abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e",
	"escape", "first", "float", "format", "indent", "int", "items", "join",
	"last", "length", "list", "lower", "map", "max", "min", "reject",
	"rejectattr", "replace", "reverse", "round", "safe", "select",
	"selectattr", "sort", "string", "sum", "title", "tojson", "trim",
	"unique", "upper", NULL,
};

int jinja_filter_id(const char *name)
{
	for (int i = 0; filter_names[i]; i++)
		if (!strcmp(filter_names[i], name))
			return i;
	return -1;
}

enum jtest {
	T_DEFINED, T_UNDEFINED, T_NONE, T_BOOLEAN, T_FALSE, T_TRUE, T_INTEGER,
	T_FLOAT, T_NUMBER, T_STRING, T_MAPPING, T_ITERABLE, T_SEQUENCE,
	T_CALLABLE, T_SAMEAS, T_ESCAPED, T_ODD, T_EVEN, T_DIVISIBLEBY, T_LOWER,
	T_UPPER, T_IN, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_FILTER, T_TEST,
};

static const struct {
	const char *name;
	int id;
} test_names[] = {
	{ "defined", T_DEFINED }, { "undefined", T_UNDEFINED }, { "none", T_NONE },
	{ "boolean", T_BOOLEAN }, { "false", T_FALSE }, { "true", T_TRUE },
	{ "integer", T_INTEGER }, { "float", T_FLOAT }, { "number", T_NUMBER },
	{ "string", T_STRING }, { "mapping", T_MAPPING }, { "iterable", T_ITERABLE },
	{ "sequence", T_SEQUENCE }, { "callable", T_CALLABLE }, { "sameas", T_SAMEAS },
	{ "escaped", T_ESCAPED }, { "odd", T_ODD }, { "even", T_EVEN },
	{ "divisibleby", T_DIVISIBLEBY }, { "lower", T_LOWER }, { "upper", T_UPPER },
	{ "in", T_IN }, { "eq", T_EQ }, { "equalto", T_EQ }, { "==", T_EQ },
	{ "ne", T_NE }, { "!=", T_NE }, { "lt", T_LT }, { "lessthan", T_LT },
	{ "<", T_LT }, { "le", T_LE }, { "<=", T_LE }, { "gt", T_GT },
	{ "greaterthan", T_GT }, { ">", T_GT }, { "ge", T_GE }, { ">=", T_GE },
	{ "filter", T_FILTER }, { "test", T_TEST },
};

int jinja_test_id(const char *name)
{
	for (size_t i = 0; i < sizeof test_names / sizeof test_names[0]; i++)
		if (!strcmp(test_names[i].name, name))
			return test_names[i].id;
	return -1;
}

static const char *cname(rctx *R, jv s)
{
	return ja_strndup(&R->a, s.u.s.p, s.u.s.n);
}

/* ---- tests ---- */

static int run_test(rctx *R, int tid, jv v, const cargs *a)
{
	static const char *const one[] = { "other", NULL };
	jv arg[1] = { missing() };
	if (tid >= T_SAMEAS && tid != T_ESCAPED && tid != T_ODD && tid != T_EVEN &&
	    tid != T_LOWER && tid != T_UPPER && tid != T_FILTER && tid != T_TEST) {
		bind(R, "test", one, arg, a);
		if (is_missing(arg[0]))
			rerr(R, "test is missing its argument");
	} else if (a->n || a->nkw) {
		rerr(R, "test takes no arguments");
	}
	switch (tid) {
	case T_DEFINED: return v.type != JV_UNDEF;
	case T_UNDEFINED: return v.type == JV_UNDEF;
	case T_NONE: return v.type == JV_NONE;
	case T_BOOLEAN: return v.type == JV_BOOL;
	case T_FALSE: return v.type == JV_BOOL && !v.u.i;
	case T_TRUE: return v.type == JV_BOOL && v.u.i;
	case T_INTEGER: return v.type == JV_INT;
	case T_FLOAT: return v.type == JV_FLOAT;
	case T_NUMBER: return jv_isnum(v);
	case T_STRING: return v.type == JV_STR;
	case T_MAPPING: return v.type == JV_DICT;
	case T_ITERABLE:
		return v.type == JV_LIST || v.type == JV_DICT || v.type == JV_STR ||
		       v.type == JV_UNDEF || v.type == JV_LOOP;
	case T_SEQUENCE:
		return v.type == JV_STR || plain_seq(v) || v.type == JV_DICT ||
		       v.type == JV_UNDEF;
	case T_CALLABLE:
		return v.type == JV_MACRO || v.type == JV_FUNC || v.type == JV_METHOD ||
		       v.type == JV_UNDEF || v.type == JV_LOOP;
	case T_SAMEAS:
		if (v.type != arg[0].type)
			return 0;
		if (v.type == JV_LIST || v.type == JV_DICT || v.type == JV_NS)
			return v.u.l == arg[0].u.l;
		return jv_eq(v, arg[0]);
	case T_ESCAPED: return v.type == JV_STR && (v.flags & JVF_MARKUP);
	case T_ODD: return jv_eq(arith(R, OP_MOD, v, jv_int(2)), jv_int(1));
	case T_EVEN: return jv_eq(arith(R, OP_MOD, v, jv_int(2)), jv_int(0));
	case T_DIVISIBLEBY: return jv_eq(arith(R, OP_MOD, v, arg[0]), jv_int(0));
	case T_LOWER: return str_is(to_str(R, v), JM_ISLOWER);
	case T_UPPER: return str_is(to_str(R, v), JM_ISUPPER);
	case T_IN: return contains(R, arg[0], v);
	case T_EQ: return jv_eq(v, arg[0]);
	case T_NE: return !jv_eq(v, arg[0]);
	case T_LT: return compare(R, OP_LT, v, arg[0]);
	case T_LE: return compare(R, OP_LE, v, arg[0]);
	case T_GT: return compare(R, OP_GT, v, arg[0]);
	case T_GE: return compare(R, OP_GE, v, arg[0]);
	case T_FILTER:
		return v.type == JV_STR && jinja_filter_id(cname(R, v)) >= 0;
	default: /* T_TEST */
		return v.type == JV_STR && jinja_test_id(cname(R, v)) >= 0;
	}
}

static int test_by_name(rctx *R, jv name)
{
	name = want_str(R, name, "select");
	int tid = jinja_test_id(cname(R, name));
	if (tid < 0)
		rerr(R, "unsupported test '%s'", cname(R, name));
	return tid;
}

/* ---- filters ---- */

/* make_attrgetter(): "a.b.0" looked up item by item */
typedef struct attrget {
	jv *parts;
	size_t n;
	jv deflt;          /* missing(): none */
	int lower;         /* lower-case string results (case-insensitive) */
} attrget;

static attrget make_getter(rctx *R, jv attribute, jv deflt, int lower)
{
	attrget g = { .deflt = deflt, .lower = lower };
	if (is_none_or_missing(attribute))
		return g;
	if (attribute.type != JV_STR) {
		g.parts = ja_alloc(&R->a, sizeof *g.parts);
		g.parts[0] = attribute;
		g.n = 1;
		return g;
	}
	const char *p = attribute.u.s.p;
	size_t n = attribute.u.s.n, st = 0;
	g.parts = ja_alloc(&R->a, (n + 1) * sizeof *g.parts);
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != '.')
			continue;
		size_t len = i - st, k = 0;
		while (k < len && p[st + k] >= '0' && p[st + k] <= '9')
			k++;
		if (len && k == len && len < 18)
			g.parts[g.n++] = jv_int(strtoll(ja_strndup(&R->a, p + st, len), NULL, 10));
		else
			g.parts[g.n++] = jv_str(p + st, len);
		st = i + 1;
	}
	return g;
}

static jv getter_apply(rctx *R, const attrget *g, jv item)
{
	for (size_t i = 0; i < g->n; i++)
		item = get_item(R, item, g->parts[i]);
	if (!is_missing(g->deflt) && item.type == JV_UNDEF)
		item = g->deflt;
	if (g->lower && item.type == JV_STR)
		item = case_map(R, item, JCASE_LOWER);
	return item;
}

static jv generator(jvec *x, rctx *R)
{
	return jvec_list(R, x, JVF_ITER);
}

/* Stable merge sort of items by keys. */
typedef struct kv {
	jv key, item;
} kv;

static int key_lt(rctx *R, jv a, jv b)
{
	if (a.type == JV_LIST && b.type == JV_LIST && a.u.l->n == b.u.l->n) {
		for (size_t i = 0; i < a.u.l->n; i++)
			if (!jv_eq(a.u.l->v[i], b.u.l->v[i]))
				return key_lt(R, a.u.l->v[i], b.u.l->v[i]);
		return 0;
	}
	if (a.type == JV_UNDEF)
		undef_fail(R, a);
	if (b.type == JV_UNDEF)
		undef_fail(R, b);
	int c = jv_cmp(a, b);
	if (c == JV_CMP_TYPE)
		rerr(R, "'<' not supported between instances of '%s' and '%s'",
		     jv_typename(a), jv_typename(b));
	return c == -1;
}

static void merge_sort(rctx *R, kv *x, kv *tmp, size_t n, int rev)
{
	if (n < 2)
		return;
	size_t h = n / 2;
	merge_sort(R, x, tmp, h, rev);
	merge_sort(R, x + h, tmp, n - h, rev);
	size_t i = 0, j = h, k = 0;
	while (i < h && j < n) {
		int take_right = rev ? key_lt(R, x[i].key, x[j].key)
				     : key_lt(R, x[j].key, x[i].key);
		tmp[k++] = take_right ? x[j++] : x[i++];
	}
	while (i < h)
		tmp[k++] = x[i++];
	while (j < n)
		tmp[k++] = x[j++];
	memcpy(x, tmp, n * sizeof *x);
}

static jv do_select(rctx *R, jv v, const cargs *a, int attr, int reject)
{
	jvec out = { 0 };
	if (!jv_truthy(v))
		return generator(&out, R);
	size_t off = 0;
	attrget g = { 0 };
	if (attr) {
		if (a->n < 1)
			rerr(R, "missing parameter for attribute name");
		g = make_getter(R, a->v[0], missing(), 0);
		off = 1;
	}
	int tid = -1;
	cargs targs = { 0 };
	if (a->n > off) {
		tid = test_by_name(R, a->v[off]);
		targs.v = a->v + off + 1;
		targs.n = a->n - off - 1;
		targs.kwn = a->kwn;
		targs.kwv = a->kwv;
		targs.nkw = a->nkw;
	}
	jlist *items = iter_list(R, v);
	for (size_t i = 0; i < items->n; i++) {
		jv x = attr ? getter_apply(R, &g, items->v[i]) : items->v[i];
		int r = tid >= 0 ? run_test(R, tid, x, &targs) : jv_truthy(x);
		if (r != reject)
			jvec_push(R, &out, items->v[i]);
	}
	return generator(&out, R);
}

static jv do_filter(rctx *R, int fid, jv v, const cargs *a);

static jv do_map(rctx *R, jv v, const cargs *a)
{
	attrget g = { 0 };
	int fid = -1;
	cargs fargs = { 0 };
	size_t ai = a->nkw;
	for (size_t k = 0; k < a->nkw; k++)
		if (!strcmp(a->kwn[k], "attribute"))
			ai = k;
	if (!a->n && ai < a->nkw) {
		jv deflt = missing();
		for (size_t k = 0; k < a->nkw; k++) {
			if (k == ai)
				continue;
			if (strcmp(a->kwn[k], "default"))
				rerr(R, "unexpected keyword argument '%s'", a->kwn[k]);
			if (a->kwv[k].type != JV_NONE)
				deflt = a->kwv[k];
		}
		g = make_getter(R, a->kwv[ai], deflt, 0);
	} else {
		if (!a->n)
			rerr(R, "map requires a filter argument");
		jv name = want_str(R, a->v[0], "map");
		fid = jinja_filter_id(cname(R, name));
		if (fid < 0)
			rerr(R, "unsupported filter '%s'", cname(R, name));
		fargs = *a;
		fargs.v++;
		fargs.n--;
	}
	jvec out = { 0 };
	if (jv_truthy(v)) {
		jlist *items = iter_list(R, v);
		for (size_t i = 0; i < items->n; i++)
			jvec_push(R, &out, fid >= 0 ? do_filter(R, fid, items->v[i], &fargs)
						    : getter_apply(R, &g, items->v[i]));
	}
	return generator(&out, R);
}

/* Python's int(str, base): 1 and *out on success. */
static int parse_py_int(const char *s, size_t n, int base, int64_t *out)
{
	size_t i = 0;
	while (i < n && ju_isspace((unsigned char)s[i]))
		i++;
	while (n > i && ju_isspace((unsigned char)s[n - 1]))
		n--;
	int neg = 0;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (i + 1 < n && s[i] == '0') {
		char x = (char)(s[i + 1] | 0x20);
		if ((x == 'x' && base == 16) || (x == 'o' && base == 8) || (x == 'b' && base == 2)) {
			i += 2;
			if (i < n && s[i] == '_')
				i++;
		}
	}
	if (i >= n)
		return 0;
	uint64_t v = 0;
	int prev_digit = 0;
	for (; i < n; i++) {
		if (s[i] == '_') {
			if (!prev_digit || i + 1 >= n)
				return 0;
			prev_digit = 0;
			continue;
		}
		int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
			(s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z' ? (s[i] | 0x20) - 'a' + 10 : 99;
		if (d >= base)
			return 0;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -1;
		v = v * (uint64_t)base + (uint64_t)d;
		prev_digit = 1;
	}
	if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
		return -1;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 1;
}

/* Python's float(str): 1 and *out on success. */
static int parse_py_float(rctx *R, const char *s, size_t n, double *out)
{
	size_t i = 0;
	while (i < n && ju_isspace((unsigned char)s[i]))
		i++;
	while (n > i && ju_isspace((unsigned char)s[n - 1]))
		n--;
	char *t = ja_alloc(&R->a, n - i + 1);
	size_t k = 0, j = i;
	if (j < n && (s[j] == '+' || s[j] == '-'))
		t[k++] = s[j++];
	static const char *const words[] = { "inf", "infinity", "nan" };
	for (size_t w = 0; w < 3; w++)
		if (n - j == strlen(words[w]) && !strncasecmp(s + j, words[w], n - j)) {
			memcpy(t + k, words[w], n - j);
			t[k + n - j] = 0;
			*out = strtod(t, NULL);
			return 1;
		}
	int digits = 0, dot = 0, exp = 0;
	for (; j < n; j++) {
		char c = s[j];
		if (c >= '0' && c <= '9') {
			digits = 1;
			t[k++] = c;
		} else if (c == '_' && k && t[k - 1] >= '0' && t[k - 1] <= '9' &&
			   j + 1 < n && s[j + 1] >= '0' && s[j + 1] <= '9') {
			continue;
		} else if (c == '.' && !dot && !exp) {
			dot = 1;
			t[k++] = c;
		} else if ((c | 0x20) == 'e' && digits && !exp) {
			exp = 1;
			t[k++] = c;
			if (j + 1 < n && (s[j + 1] == '+' || s[j + 1] == '-'))
				t[k++] = s[++j];
			if (j + 1 >= n || s[j + 1] < '0' || s[j + 1] > '9')
				return 0;
		} else {
			return 0;
		}
	}
	if (!digits)
		return 0;
	t[k] = 0;
	*out = strtod(t, NULL);
	return 1;
}

static jv float_to_int(rctx *R, double f, jv deflt)
{
	if (isnan(f))
		return deflt;
	if (isinf(f))
		rerr(R, "cannot convert float infinity to integer");
	if (!(fabs(f) < 9.2e18))
		rerr(R, "integer overflow");
	return jv_int((int64_t)f);
}

static jv filter_int(rctx *R, jv v, jv deflt, jv basev)
{
	int64_t base = is_missing(basev) ? 10 : want_int(R, basev, "int");
	if (is_missing(deflt))
		deflt = jv_int(0);
	switch (v.type) {
	case JV_STR: {
		int64_t i;
		int r = parse_py_int(v.u.s.p, v.u.s.n, (int)base, &i);
		if (r > 0)
			return jv_int(i);
		if (r < 0)
			rerr(R, "integer overflow");
		double f;
		if (parse_py_float(R, v.u.s.p, v.u.s.n, &f))
			return float_to_int(R, f, deflt);
		return deflt;
	}
	case JV_INT: case JV_BOOL: return jv_int(v.u.i);
	case JV_FLOAT: return float_to_int(R, v.u.f, deflt);
	case JV_UNDEF: undef_fail(R, v);
	default: return deflt;
	}
}

static jv filter_float(rctx *R, jv v, jv deflt)
{
	if (is_missing(deflt))
		deflt = jv_float(0);
	switch (v.type) {
	case JV_STR: {
		double f;
		return parse_py_float(R, v.u.s.p, v.u.s.n, &f) ? jv_float(f) : deflt;
	}
	case JV_INT: case JV_BOOL: return jv_float((double)v.u.i);
	case JV_FLOAT: return v;
	case JV_UNDEF: undef_fail(R, v);
	default: return deflt;
	}
}

static jv filter_tojson(rctx *R, jv v, const cargs *a)
{
	static const char *const params[] = { "ensure_ascii", "indent", "separators",
					      "sort_keys", NULL };
	jv p[4];
	bind(R, "filter 'tojson'", params, p, a);
	jjson_opts o = { 0 };
	o.ensure_ascii = !is_missing(p[0]) && jv_truthy(p[0]);
	o.sort_keys = !is_missing(p[3]) && jv_truthy(p[3]);
	jv ind = p[1];
	if (ind.type == JV_INT || ind.type == JV_BOOL) {
		int64_t k = ind.u.i < 0 ? 0 : ind.u.i;
		if (k > 1000)
			rerr(R, "tojson: indent too large");
		char *sp = ja_alloc(&R->a, (size_t)k + 1);
		memset(sp, ' ', (size_t)k);
		o.indent = sp;
		o.indentn = (size_t)k;
	} else if (ind.type == JV_STR) {
		o.indent = ind.u.s.p;
		o.indentn = ind.u.s.n;
	} else if (!is_none_or_missing(ind)) {
		rerr(R, "tojson: indent must be an integer or a string");
	}
	o.item_sep = o.indent ? "," : ", ";
	o.key_sep = ": ";
	if (!is_none_or_missing(p[2])) {
		jv s = p[2];
		if (!plain_seq(s) || s.u.l->n != 2 || s.u.l->v[0].type != JV_STR ||
		    s.u.l->v[1].type != JV_STR)
			rerr(R, "tojson: separators must be a pair of strings");
		o.item_sep = cname(R, s.u.l->v[0]);
		o.key_sep = cname(R, s.u.l->v[1]);
	}
	jbuf b = { 0 };
	const char *why = NULL;
	if (jv_json_to(&R->a, &b, v, &o, 0, &why)) {
		if (strchr(why, ' '))
			rerr(R, "tojson: %s", why);
		rerr(R, "Object of type %s is not JSON serializable", why);
	}
	return buf_str(&b, 0);
}

static jv filter_indent(rctx *R, jv s, jv width, jv first, jv blank)
{
	if (s.type == JV_UNDEF)
		undef_fail(R, s);
	if (s.type != JV_STR)
		rerr(R, "indent: expected a string, got '%s'", jv_typename(s));
	jbuf ind = { 0 };
	if (width.type == JV_STR) {
		jb_put(&R->a, &ind, width.u.s.p, width.u.s.n);
	} else {
		int64_t w = is_missing(width) ? 4 : want_int(R, width, "indent");
		if (w > 100000)
			rerr(R, "indent: width too large");
		for (int64_t k = 0; k < w; k++)
			jb_putc(&R->a, &ind, ' ');
	}
	jbuf src = { 0 };
	jb_put(&R->a, &src, s.u.s.p, s.u.s.n);
	jb_putc(&R->a, &src, '\n');
	jv lines = py_splitlines(R, src.p, src.n, 0);
	jlist *l = lines.u.l;
	jbuf o = { 0 };
	if (!is_missing(blank) && jv_truthy(blank)) {
		for (size_t i = 0; i < l->n; i++) {
			if (i) {
				jb_putc(&R->a, &o, '\n');
				jb_put(&R->a, &o, ind.p, ind.n);
			}
			jb_put(&R->a, &o, l->v[i].u.s.p, l->v[i].u.s.n);
		}
	} else {
		for (size_t i = 0; i < l->n; i++) {
			if (i) {
				jb_putc(&R->a, &o, '\n');
				if (l->v[i].u.s.n)
					jb_put(&R->a, &o, ind.p, ind.n);
			}
			jb_put(&R->a, &o, l->v[i].u.s.p, l->v[i].u.s.n);
		}
	}
	check_size(R, o.n);
	if (!is_missing(first) && jv_truthy(first)) {
		jbuf f = { 0 };
		jb_put(&R->a, &f, ind.p, ind.n);
		jb_put(&R->a, &f, o.p, o.n);
		return buf_str(&f, s.flags & JVF_MARKUP);
	}
	return buf_str(&o, s.flags & JVF_MARKUP);
}

static jv filter_round(rctx *R, jv v, jv precv, jv methodv)
{
	int64_t prec = is_missing(precv) ? 0 : want_int(R, precv, "round");
	const char *method = is_missing(methodv) ? "common" : cname(R, want_str(R, methodv, "round"));
	if (!jv_isnum(v))
		rerr(R, "round: expected a number, got '%s'", jv_typename(v));
	if (strcmp(method, "common") && strcmp(method, "floor") && strcmp(method, "ceil"))
		rerr(R, "round: method must be common, ceil or floor");
	if (prec < -300 || prec > 300)
		rerr(R, "round: precision out of range");
	if (!strcmp(method, "common")) {
		if (v.type != JV_FLOAT && prec >= 0)
			return jv_int(v.u.i);
		double f = num_f(v);
		if (prec < 0 || !isfinite(f)) {
			double m = pow(10, (double)-prec);
			double r = nearbyint(f / m) * m;
			return v.type == JV_FLOAT ? jv_float(r) : jv_int((int64_t)r);
		}
		char tmp[400];
		snprintf(tmp, sizeof tmp, "%.*f", (int)prec, f);
		return jv_float(strtod(tmp, NULL));
	}
	double m = pow(10, (double)prec), f = num_f(v) * m;
	return jv_float((method[0] == 'f' ? floor(f) : ceil(f)) / m);
}

static jv filter_minmax(rctx *R, jv v, const cargs *a, int want_max)
{
	static const char *const params[] = { "case_sensitive", "attribute", NULL };
	jv p[2];
	bind(R, want_max ? "filter 'max'" : "filter 'min'", params, p, a);
	int cs = !is_missing(p[0]) && jv_truthy(p[0]);
	attrget g = make_getter(R, p[1], missing(), !cs);
	jlist *items = iter_list(R, v);
	if (!items->n)
		return mk_undef(R, "no aggregated item, sequence was empty");
	size_t best = 0;
	jv bk = getter_apply(R, &g, items->v[0]);
	for (size_t i = 1; i < items->n; i++) {
		jv k = getter_apply(R, &g, items->v[i]);
		if (want_max ? key_lt(R, bk, k) : key_lt(R, k, bk)) {
			best = i;
			bk = k;
		}
	}
	return items->v[best];
}

static jv do_filter(rctx *R, int fid, jv v, const cargs *a)
{
	char what[48];
	snprintf(what, sizeof what, "filter '%s'", filter_names[fid]);
	jv p[4];
	switch (fid) {
	case F_ABS:
		bind(R, what, (const char *const[]){ NULL }, p, a);
		if (v.type == JV_FLOAT)
			return jv_float(fabs(v.u.f));
		if (v.type == JV_INT || v.type == JV_BOOL) {
			if (v.u.i == INT64_MIN)
				rerr(R, "integer overflow");
			return jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
		}
		rerr(R, "bad operand type for abs(): '%s'", jv_typename(v));
	case F_ATTR:
		bind(R, what, (const char *const[]){ "name", NULL }, p, a);
		return get_attr(R, v, cname(R, want_str(R, p[0], what)));
	case F_CAPITALIZE:
	case F_LOWER:
	case F_UPPER:
	case F_TITLE:
		bind(R, what, (const char *const[]){ NULL }, p, a);
		return case_map(R, to_str(R, v),
				fid == F_CAPITALIZE ? JCASE_CAPITALIZE : fid == F_LOWER ? JCASE_LOWER :
				fid == F_UPPER ? JCASE_UPPER : JCASE_JTITLE);
	case F_COUNT:
	case F_LENGTH:
		bind(R, what, (const char *const[]){ NULL }, p, a);
		return jv_int(py_len(R, v));
	case F_D:
	case F_DEFAULT:
		bind(R, what, (const char *const[]){ "default_value", "boolean", NULL }, p, a);
		if (v.type == JV_UNDEF ||
		    (!is_missing(p[1]) && jv_truthy(p[1]) && !jv_truthy(v)))
			return is_missing(p[0]) ? jv_str("", 0) : p[0];
		return v;
	case F_DICTSORT: {
		bind(R, what, (const char *const[]){ "case_sensitive", "by", "reverse", NULL }, p, a);
		if (v.type != JV_DICT)
			rerr(R, "dictsort: expected a mapping, got '%s'", jv_typename(v));
		int cs = !is_missing(p[0]) && jv_truthy(p[0]);
		int by_value = 0;
		if (!is_missing(p[1])) {
			jv by = want_str(R, p[1], what);
			if (by.u.s.n == 5 && !memcmp(by.u.s.p, "value", 5))
				by_value = 1;
			else if (!(by.u.s.n == 3 && !memcmp(by.u.s.p, "key", 3)))
				rerr(R, "You can only sort by either \"key\" or \"value\"");
		}
		size_t n = v.u.d->n;
		kv *x = ja_alloc(&R->a, (n + 1) * sizeof *x), *tmp = ja_alloc(&R->a, (n + 1) * sizeof *tmp);
		for (size_t i = 0; i < n; i++) {
			x[i].item = mk_tuple2(R, v.u.d->k[i], v.u.d->v[i]);
			x[i].key = by_value ? v.u.d->v[i] : v.u.d->k[i];
			if (!cs && x[i].key.type == JV_STR)
				x[i].key = case_map(R, x[i].key, JCASE_LOWER);
		}
		merge_sort(R, x, tmp, n, !is_missing(p[2]) && jv_truthy(p[2]));
		jlist *l = list_new(R, n);
		for (size_t i = 0; i < n; i++)
			l->v[i] = x[i].item;
		return mk_list(l, 0);
	}
	case F_E:
	case F_ESCAPE:
		bind(R, what, (const char *const[]){ NULL }, p, a);
		return py_escape(R, v);
	case F_FIRST: {
		bind(R, what, (const char *const[]){ NULL }, p, a);
		jlist *l = iter_list(R, v);
		return l->n ? l->v[0] : mk_undef(R, "no first item, sequence was empty");
	}
	case F_LAST: {
		bind(R, what, (const char *const[]){ NULL }, p, a);
		if (v.type == JV_LIST && (v.flags & JVF_ITER))
			rerr(R, "'generator' object is not reversible");
		jlist *l = iter_list(R, v);
		return l->n ? l->v[l->n - 1] : mk_undef(R, "no last item, sequence was empty");
	}
	case F_FLOAT:
		bind(R, what, (const char *const[]){ "default", NULL }, p, a);
		return filter_float(R, v, p[0]);
	case F_INT:
		bind(R, what, (const char *const[]){ "default", "base", NULL }, p, a);
		return filter_int(R, v, p[0], p[1]);
	case F_FORMAT: {
		jv args;
		if (a->nkw) {
			jdict *d = jd_new(&R->a, a->nkw);
			for (size_t k = 0; k < a->nkw; k++)
				jd_set(&R->a, d, cstr(a->kwn[k]), a->kwv[k]);
			args = mk_dict(d);
		} else {
			jlist *l = list_new(R, a->n);
			if (a->n)
				memcpy(l->v, a->v, a->n * sizeof(jv));
			args = mk_list(l, JVF_TUPLE);
		}
		return percent_format(R, to_str(R, v), args);
	}
	case F_INDENT:
		bind(R, what, (const char *const[]){ "width", "first", "blank", NULL }, p, a);
		return filter_indent(R, v, p[0], p[1], p[2]);
	case F_ITEMS: {
		bind(R, what, (const char *const[]){ NULL }, p, a);
		jvec out = { 0 };
		if (v.type == JV_UNDEF)
			return generator(&out, R);
		if (v.type != JV_DICT)
			rerr(R, "can only get item pairs from a mapping");
		for (size_t i = 0; i < v.u.d->n; i++)
			jvec_push(R, &out, mk_tuple2(R, v.u.d->k[i], v.u.d->v[i]));
		return generator(&out, R);
	}
	case F_JOIN: {
		bind(R, what, (const char *const[]){ "d", "attribute", NULL }, p, a);
		jv sep = is_missing(p[0]) ? jv_str("", 0) : to_str(R, p[0]);
		attrget g = make_getter(R, p[1], missing(), 0);
		jlist *l = iter_list(R, v);
		jbuf o = { 0 };
		for (size_t i = 0; i < l->n; i++) {
			if (i)
				jb_put(&R->a, &o, sep.u.s.p, sep.u.s.n);
			jv_str_to(&R->a, &o, g.n ? getter_apply(R, &g, l->v[i]) : l->v[i]);
			check_size(R, o.n);
		}
		return buf_str(&o, 0);
	}
	case F_LIST: {
		bind(R, what, (const char *const[]){ NULL }, p, a);
		jlist *l = iter_list(R, v), *c = list_new(R, l->n);
		if (l->n)
			memcpy(c->v, l->v, l->n * sizeof(jv));
		return mk_list(c, 0);
	}
	case F_MAP:
		return do_map(R, v, a);
	case F_MAX:
	case F_MIN:
		return filter_minmax(R, v, a, fid == F_MAX);
	case F_REJECT:
	case F_SELECT:
		return do_select(R, v, a, 0, fid == F_REJECT);
	case F_REJECTATTR:
	case F_SELECTATTR:
		return do_select(R, v, a, 1, fid == F_REJECTATTR);
	case F_REPLACE: {
		bind(R, what, (const char *const[]){ "old", "new", "count", NULL }, p, a);
		if (is_missing(p[0]) || is_missing(p[1]))
			rerr(R, "replace needs old and new");
		int64_t count = is_none_or_missing(p[2]) ? -1 : want_int(R, p[2], what);
		return py_replace(R, to_str(R, v), to_str(R, p[0]), to_str(R, p[1]), count);
	}
	case F_REVERSE: {
		bind(R, what, (const char *const[]){ NULL }, p, a);
		if (v.type == JV_STR)
			return get_slice(R, v, missing(), missing(), jv_int(-1));
		if (v.type == JV_UNDEF || v.type == JV_LIST || v.type == JV_DICT) {
			int was_iter = v.type == JV_LIST && (v.flags & JVF_ITER);
			jlist *l = iter_list(R, v), *r = list_new(R, l->n);
			for (size_t i = 0; i < l->n; i++)
				r->v[i] = l->v[l->n - 1 - i];
			return mk_list(r, was_iter ? 0 : JVF_ITER);
		}
		rerr(R, "argument must be iterable");
	}
	case F_ROUND:
		bind(R, what, (const char *const[]){ "precision", "method", NULL }, p, a);
		return filter_round(R, v, p[0], p[1]);
	case F_SAFE: {
		bind(R, what, (const char *const[]){ NULL }, p, a);
		jv s = to_str(R, v);
		s.flags |= JVF_MARKUP;
		return s;
	}
	case F_SORT: {
		bind(R, what, (const char *const[]){ "reverse", "case_sensitive", "attribute", NULL },
		     p, a);
		/* make_multi_attrgetter(): the key is the list of the values
		 * of "a,b" (lists compare == first, so equal undefined
		 * values do not fail) */
		int cs = !is_missing(p[1]) && jv_truthy(p[1]);
		jv attrs = p[2];
		size_t ng = 1;
		attrget *g;
		if (attrs.type == JV_STR) {
			for (size_t k = 0; k < attrs.u.s.n; k++)
				ng += attrs.u.s.p[k] == ',';
			g = ja_alloc(&R->a, ng * sizeof *g);
			size_t st = 0, gi = 0;
			for (size_t k = 0; k <= attrs.u.s.n; k++)
				if (k == attrs.u.s.n || attrs.u.s.p[k] == ',') {
					g[gi++] = make_getter(R, jv_str(attrs.u.s.p + st, k - st),
							      missing(), !cs);
					st = k + 1;
				}
		} else {
			g = ja_alloc(&R->a, sizeof *g);
			g[0] = make_getter(R, attrs, missing(), !cs);
		}
		jlist *l = iter_list(R, v);
		kv *x = ja_alloc(&R->a, (l->n + 1) * sizeof *x);
		kv *tmp = ja_alloc(&R->a, (l->n + 1) * sizeof *tmp);
		for (size_t i = 0; i < l->n; i++) {
			jlist *key = list_new(R, ng);
			for (size_t k = 0; k < ng; k++)
				key->v[k] = getter_apply(R, &g[k], l->v[i]);
			x[i].item = l->v[i];
			x[i].key = mk_list(key, 0);
		}
		merge_sort(R, x, tmp, l->n, !is_missing(p[0]) && jv_truthy(p[0]));
		jlist *r = list_new(R, l->n);
		for (size_t i = 0; i < l->n; i++)
			r->v[i] = x[i].item;
		return mk_list(r, 0);
	}
	case F_STRING:
		bind(R, what, (const char *const[]){ NULL }, p, a);
		return to_str(R, v);
	case F_SUM: {
		bind(R, what, (const char *const[]){ "attribute", "start", NULL }, p, a);
		attrget g = make_getter(R, p[0], missing(), 0);
		jv acc = is_missing(p[1]) ? jv_int(0) : p[1];
		if (acc.type == JV_STR)
			rerr(R, "sum() can't sum strings [use ''.join(seq) instead]");
		jlist *l = iter_list(R, v);
		for (size_t i = 0; i < l->n; i++)
			acc = arith(R, OP_ADD, acc, getter_apply(R, &g, l->v[i]));
		return acc;
	}
	case F_TOJSON:
		return filter_tojson(R, v, a);
	case F_TRIM:
		bind(R, what, (const char *const[]){ "chars", NULL }, p, a);
		return py_strip(R, to_str(R, v), p[0], 1, 1);
	default: { /* F_UNIQUE */
		bind(R, what, (const char *const[]){ "case_sensitive", "attribute", NULL }, p, a);
		int cs = !is_missing(p[0]) && jv_truthy(p[0]);
		attrget g = make_getter(R, p[1], missing(), !cs);
		jlist *l = iter_list(R, v);
		jdict *seen = jd_new(&R->a, 0);
		jvec out = { 0 };
		for (size_t i = 0; i < l->n; i++) {
			jv k = getter_apply(R, &g, l->v[i]);
			if (!jv_hashable(k))
				rerr(R, "unhashable type: '%s'", jv_typename(k));
			if (jd_get(seen, k))
				continue;
			jd_set(&R->a, seen, k, jv_none());
			jvec_push(R, &out, l->v[i]);
		}
		return generator(&out, R);
	}
	}
}

/* ---- method calls ---- */

static jv view(rctx *R, jdict *d, int kind)
{
	jlist *l = list_new(R, d->n);
	for (size_t i = 0; i < d->n; i++)
		l->v[i] = kind == JVIEW_KEYS ? d->k[i] : kind == JVIEW_VALUES ? d->v[i] :
			  mk_tuple2(R, d->k[i], d->v[i]);
	jv v = mk_list(l, JVF_VIEW);
	v.id = (uint16_t)kind;
	return v;
}

static int match_affix(rctx *R, jv s, jv affix, int at_end)
{
	if (plain_seq(affix) && (affix.flags & JVF_TUPLE)) {
		for (size_t i = 0; i < affix.u.l->n; i++)
			if (match_affix(R, s, affix.u.l->v[i], at_end))
				return 1;
		return 0;
	}
	affix = want_str(R, affix, at_end ? "endswith" : "startswith");
	size_t m = affix.u.s.n;
	if (m > s.u.s.n)
		return 0;
	return !memcmp(s.u.s.p + (at_end ? s.u.s.n - m : 0), affix.u.s.p, m);
}

static jv call_method(rctx *R, const jbound *b, const cargs *a)
{
	jv self = b->self, p[3];
	char what[64];
	snprintf(what, sizeof what, "%s.%s()", jv_typename(self), b->name);
	switch (b->method) {
	case JM_STRIP: case JM_LSTRIP: case JM_RSTRIP:
		bind(R, what, (const char *const[]){ "chars", NULL }, p, a);
		return py_strip(R, self, p[0], b->method != JM_RSTRIP, b->method != JM_LSTRIP);
	case JM_SPLIT: case JM_RSPLIT:
		bind(R, what, (const char *const[]){ "sep", "maxsplit", NULL }, p, a);
		return py_split(R, self, p[0], p[1], b->method == JM_RSPLIT);
	case JM_SPLITLINES:
		bind(R, what, (const char *const[]){ "keepends", NULL }, p, a);
		return py_splitlines(R, self.u.s.p, self.u.s.n, !is_missing(p[0]) && jv_truthy(p[0]));
	case JM_STARTSWITH: case JM_ENDSWITH:
		bind(R, what, (const char *const[]){ "prefix", NULL }, p, a);
		if (is_missing(p[0]))
			rerr(R, "%s takes exactly one argument", what);
		return jv_bool(match_affix(R, self, p[0], b->method == JM_ENDSWITH));
	case JM_UPPER: case JM_LOWER: case JM_TITLE: case JM_CAPITALIZE: case JM_SWAPCASE:
		bind(R, what, (const char *const[]){ NULL }, p, a);
		return case_map(R, self, b->method == JM_UPPER ? JCASE_UPPER :
				b->method == JM_LOWER ? JCASE_LOWER :
				b->method == JM_TITLE ? JCASE_TITLE :
				b->method == JM_CAPITALIZE ? JCASE_CAPITALIZE : JCASE_SWAPCASE);
	case JM_REPLACE: {
		bind(R, what, (const char *const[]){ "old", "new", "count", NULL }, p, a);
		if (is_missing(p[0]) || is_missing(p[1]))
			rerr(R, "%s needs old and new", what);
		int64_t count = is_missing(p[2]) ? -1 : want_int(R, p[2], what);
		return py_replace(R, self, want_str(R, p[0], what), want_str(R, p[1], what), count);
	}
	case JM_FORMAT:
		return str_format(R, self, a);
	case JM_JOIN: {
		bind(R, what, (const char *const[]){ "iterable", NULL }, p, a);
		jlist *l = iter_list(R, p[0]);
		jbuf o = { 0 };
		for (size_t i = 0; i < l->n; i++) {
			if (l->v[i].type != JV_STR)
				rerr(R, "sequence item %zu: expected str instance, %s found", i,
				     jv_typename(l->v[i]));
			if (i)
				jb_put(&R->a, &o, self.u.s.p, self.u.s.n);
			jb_put(&R->a, &o, l->v[i].u.s.p, l->v[i].u.s.n);
			check_size(R, o.n);
		}
		return buf_str(&o, 0);
	}
	case JM_FIND: case JM_RFIND: case JM_SCOUNT: {
		bind(R, what, (const char *const[]){ "sub", NULL }, p, a);
		jv sub = want_str(R, p[0], what);
		const char *s = self.u.s.p;
		size_t n = self.u.s.n, m = sub.u.s.n;
		if (b->method == JM_SCOUNT) {
			if (!m)
				return jv_int((int64_t)ju_len(s, n) + 1);
			int64_t c = 0;
			const char *f;
			size_t i = 0;
			while ((f = memmem(s + i, n - i, sub.u.s.p, m))) {
				c++;
				i = (size_t)(f - s) + m;
			}
			return jv_int(c);
		}
		long at = -1;
		for (size_t i = 0; i + m <= n; i++)
			if (!memcmp(s + i, sub.u.s.p, m)) {
				at = (long)i;
				if (b->method == JM_FIND)
					break;
			}
		return jv_int(at < 0 ? -1 : (int64_t)ju_len(s, (size_t)at));
	}
	case JM_ISDIGIT: case JM_ISALPHA: case JM_ISALNUM: case JM_ISSPACE:
	case JM_ISUPPER: case JM_ISLOWER:
		bind(R, what, (const char *const[]){ NULL }, p, a);
		return jv_bool(str_is(self, b->method));
	case JM_REMOVEPREFIX: case JM_REMOVESUFFIX: {
		bind(R, what, (const char *const[]){ "affix", NULL }, p, a);
		jv x = want_str(R, p[0], what);
		int end = b->method == JM_REMOVESUFFIX;
		if (!match_affix(R, self, x, end))
			return self;
		jv r = jv_str(self.u.s.p + (end ? 0 : x.u.s.n), self.u.s.n - x.u.s.n);
		r.flags = self.flags;
		return r;
	}
	case JM_GET: {
		bind(R, what, (const char *const[]){ "key", "default", NULL }, p, a);
		if (is_missing(p[0]))
			rerr(R, "%s expected at least 1 argument", what);
		if (!jv_hashable(p[0]))
			rerr(R, "unhashable type: '%s'", jv_typename(p[0]));
		jv *x = jd_get(self.u.d, p[0]);
		return x ? *x : is_missing(p[1]) ? jv_none() : p[1];
	}
	case JM_ITEMS: case JM_KEYS: case JM_VALUES:
		bind(R, what, (const char *const[]){ NULL }, p, a);
		return view(R, self.u.d, b->method == JM_KEYS ? JVIEW_KEYS :
			    b->method == JM_VALUES ? JVIEW_VALUES : JVIEW_ITEMS);
	case JM_INDEX: case JM_LCOUNT: {
		bind(R, what, (const char *const[]){ "value", NULL }, p, a);
		int64_t c = 0;
		for (size_t i = 0; i < self.u.l->n; i++)
			if (jv_eq(self.u.l->v[i], p[0])) {
				if (b->method == JM_INDEX)
					return jv_int((int64_t)i);
				c++;
			}
		if (b->method == JM_INDEX)
			rerr(R, "%s: value is not in list", what);
		return jv_int(c);
	}
	case JM_CYCLE:
		if (!a->n)
			rerr(R, "no items for cycling given");
		return a->v[self.u.loop->i % a->n];
	case JM_CHANGED: {
		jlist *l = list_new(R, a->n);
		if (a->n)
			memcpy(l->v, a->v, a->n * sizeof(jv));
		jv now = mk_list(l, JVF_TUPLE);
		jloop *L = self.u.loop;
		if (L->changed_set && jv_eq(L->changed_last, now))
			return jv_bool(0);
		L->changed_last = now;
		L->changed_set = 1;
		return jv_bool(1);
	}
	default:
		rerr(R, "unsupported method '%s' of '%s'", b->name, jv_typename(self));
	}
}

/* ---- global functions ---- */

enum { G_RANGE, G_DICT, G_NAMESPACE, G_RAISE, G_STRFTIME, G_LIPSUM, G_CYCLER, G_JOINER };
static const char *const global_names[] = {
	"range", "dict", "namespace", "raise_exception", "strftime_now", "lipsum",
	"cycler", "joiner", NULL,
};

static jdict *dict_from_args(rctx *R, const cargs *a, const char *what)
{
	if (a->n > 1)
		rerr(R, "%s expected at most 1 positional argument", what);
	jdict *d = jd_new(&R->a, 0);
	if (a->n) {
		jv src = a->v[0];
		if (src.type == JV_DICT || src.type == JV_NS) {
			for (size_t i = 0; i < src.u.d->n; i++)
				jd_set(&R->a, d, src.u.d->k[i], src.u.d->v[i]);
		} else {
			jlist *l = iter_list(R, src);
			for (size_t i = 0; i < l->n; i++) {
				jlist *pair = iter_list(R, l->v[i]);
				if (pair->n != 2)
					rerr(R, "%s: sequence element #%zu has length %zu; 2 is required",
					     what, i, pair->n);
				if (!jv_hashable(pair->v[0]))
					rerr(R, "unhashable type: '%s'", jv_typename(pair->v[0]));
				jd_set(&R->a, d, pair->v[0], pair->v[1]);
			}
		}
	}
	for (size_t k = 0; k < a->nkw; k++)
		jd_set(&R->a, d, cstr(a->kwn[k]), a->kwv[k]);
	return d;
}

static jv fn_strftime(rctx *R, const cargs *a)
{
	jv p[1];
	bind(R, "strftime_now()", (const char *const[]){ "format", NULL }, p, a);
	jv f = want_str(R, p[0], "strftime_now");
	/* a naive datetime: %z and %Z are empty, %f the microseconds (0) */
	jbuf fmt = { 0 };
	for (size_t i = 0; i < f.u.s.n; i++) {
		if (f.u.s.p[i] == '%' && i + 1 < f.u.s.n) {
			char c = f.u.s.p[i + 1];
			if (c == 'z' || c == 'Z') {
				i++;
				continue;
			}
			if (c == 'f') {
				jb_puts(&R->a, &fmt, "000000");
				i++;
				continue;
			}
			jb_putc(&R->a, &fmt, '%');
			jb_putc(&R->a, &fmt, c);
			i++;
			continue;
		}
		if (!f.u.s.p[i])
			rerr(R, "strftime_now: embedded null character");
		jb_putc(&R->a, &fmt, f.u.s.p[i]);
	}
	if (!fmt.n)
		return jv_str("", 0);
	for (size_t cap = 1024; cap <= 256 * fmt.n + 1024; cap *= 2) {
		char *buf = ja_alloc(&R->a, cap);
		size_t n = strftime(buf, cap, fmt.p, &R->now);
		if (n)
			return jv_str(buf, n);
	}
	return jv_str("", 0);
}

static jv call_global(rctx *R, int id, const cargs *a)
{
	switch (id) {
	case G_RANGE: {
		if (a->nkw)
			rerr(R, "range() takes no keyword arguments");
		if (a->n < 1 || a->n > 3)
			rerr(R, "range expected 1 to 3 arguments, got %zu", a->n);
		int64_t b = 0, e, st = 1;
		if (a->n == 1) {
			e = want_int(R, a->v[0], "range");
		} else {
			b = want_int(R, a->v[0], "range");
			e = want_int(R, a->v[1], "range");
			if (a->n == 3)
				st = want_int(R, a->v[2], "range");
		}
		if (!st)
			rerr(R, "range() arg 3 must not be zero");
		double cnt = st > 0 ? ((double)e - (double)b) / (double)st
				    : ((double)b - (double)e) / (double)-st;
		if (cnt > 100000)
			rerr(R, "range too big: the sandbox allows at most 100000 items");
		jvec out = { 0 };
		for (int64_t i = b; st > 0 ? i < e : i > e; i += st)
			jvec_push(R, &out, jv_int(i));
		return jvec_list(R, &out, 0);
	}
	case G_DICT:
		return mk_dict(dict_from_args(R, a, "dict()"));
	case G_NAMESPACE: {
		jv v = { .type = JV_NS };
		v.u.d = dict_from_args(R, a, "namespace()");
		return v;
	}
	case G_RAISE: {
		jv msg = a->n ? to_str(R, a->v[0]) : jv_str("", 0);
		rerr(R, "raise_exception: %.*s", (int)msg.u.s.n, msg.u.s.p);
	}
	case G_STRFTIME:
		return fn_strftime(R, a);
	default:
		rerr(R, "unsupported function '%s'", global_names[id]);
	}
}

/* ---- evaluation ---- */

static jv eval(rctx *R, scope *S, const jnode *n);
static int exec_body(rctx *R, scope *S, jnode *const *kids, size_t nkids);

static cargs eval_args(rctx *R, scope *S, const jnode *n)
{
	cargs c = { 0 };
	c.n = n->nkids;
	if (c.n) {
		c.v = ja_alloc(&R->a, c.n * sizeof *c.v);
		for (size_t i = 0; i < c.n; i++)
			c.v[i] = eval(R, S, n->kids[i]);
	}
	c.nkw = n->nkw;
	c.kwn = n->kwnames;
	if (c.nkw) {
		c.kwv = ja_alloc(&R->a, c.nkw * sizeof *c.kwv);
		for (size_t i = 0; i < c.nkw; i++)
			c.kwv[i] = eval(R, S, n->kw[i]);
	}
	R->line = n->line;
	return c;
}

/* Render body into a string of its own. */
static jv capture(rctx *R, scope *S, jnode *const *kids, size_t nkids)
{
	jbuf buf = { 0 }, *saved = R->out;
	R->out = &buf;
	exec_body(R, S, kids, nkids);
	R->out = saved;
	return buf_str(&buf, 0);
}

static jv call_macro(rctx *R, const jmacro *m, const cargs *a)
{
	const jnode *n = m->node;
	int line = R->line;
	if (R->depth >= R->max_depth)
		rerr(R, "macro calls nested more than %d deep", R->max_depth);
	R->depth++;
	size_t np = n->nkw;
	if (a->n > np && !(n->op & MACRO_VARARGS))
		rerr(R, "macro '%s' takes not more than %zu argument(s)", n->name, np);
	jv *vals = ja_alloc(&R->a, (np + 1) * sizeof *vals);
	for (size_t i = 0; i < np; i++)
		vals[i] = i < a->n ? a->v[i] : missing();
	jdict *kw = jd_new(&R->a, 0);
	for (size_t k = 0; k < a->nkw; k++) {
		size_t j;
		for (j = 0; j < np; j++)
			if (!strcmp(n->kwnames[j], a->kwn[k]))
				break;
		if (j < np) {
			if (j < a->n)
				rerr(R, "macro '%s' got multiple values for argument '%s'",
				     n->name, a->kwn[k]);
			vals[j] = a->kwv[k];
		} else if (n->op & MACRO_KWARGS) {
			jd_set(&R->a, kw, cstr(a->kwn[k]), a->kwv[k]);
		} else {
			rerr(R, "macro '%s' takes no keyword argument '%s'", n->name, a->kwn[k]);
		}
	}
	scope *ms = scope_new(R, m->scope);
	for (size_t j = 0; j < np; j++) {
		jv v = vals[j];
		if (is_missing(v))
			v = n->kw[j] ? eval(R, ms, n->kw[j])
				     : mk_undef(R, "parameter '%s' was not provided", n->kwnames[j]);
		scope_set(R, ms, n->kwnames[j], v);
	}
	if (n->op & MACRO_VARARGS) {
		size_t extra = a->n > np ? a->n - np : 0;
		jlist *l = list_new(R, extra);
		for (size_t i = 0; i < extra; i++)
			l->v[i] = a->v[np + i];
		scope_set(R, ms, "varargs", mk_list(l, JVF_TUPLE));
	}
	if (n->op & MACRO_KWARGS)
		scope_set(R, ms, "kwargs", mk_dict(kw));
	jv r = capture(R, ms, n->kids, n->nkids);
	R->depth--;
	R->line = line;
	return r;
}

static jv call_value(rctx *R, jv f, const cargs *a)
{
	switch (f.type) {
	case JV_UNDEF: undef_fail(R, f);
	case JV_MACRO: return call_macro(R, f.u.m, a);
	case JV_FUNC: return call_global(R, f.id, a);
	case JV_METHOD: return call_method(R, f.u.b, a);
	default: rerr(R, "'%s' object is not callable", jv_typename(f));
	}
}

static jv lookup(rctx *R, scope *S, const char *name)
{
	jv *p = scope_find(S, name);
	if (p)
		return *p;
	for (int i = 0; global_names[i]; i++)
		if (!strcmp(global_names[i], name)) {
			jv f = { .type = JV_FUNC, .id = (uint16_t)i };
			return f;
		}
	return mk_undef(R, "'%s' is undefined", name);
}

/* Apply a filter chain (a N_FILTER whose innermost operand is NULL) to v. */
static jv filter_chain(rctx *R, scope *S, const jnode *f, jv v)
{
	jv in = f->a ? filter_chain(R, S, f->a, v) : v;
	cargs c = eval_args(R, S, f);
	return do_filter(R, f->fid, in, &c);
}

static jv eval(rctx *R, scope *S, const jnode *n)
{
	step(R);
	R->line = n->line;
	switch (n->kind) {
	case N_CONST:
		return n->val;
	case N_NAME:
		return lookup(R, S, n->name);
	case N_LIST:
	case N_TUPLE: {
		jlist *l = list_new(R, n->nkids);
		for (size_t i = 0; i < n->nkids; i++)
			l->v[i] = eval(R, S, n->kids[i]);
		return mk_list(l, n->kind == N_TUPLE ? JVF_TUPLE : 0);
	}
	case N_DICT: {
		jdict *d = jd_new(&R->a, n->nkids / 2);
		for (size_t i = 0; i + 1 < n->nkids; i += 2) {
			jv k = eval(R, S, n->kids[i]);
			jv v = eval(R, S, n->kids[i + 1]);
			if (!jv_hashable(k)) {
				R->line = n->line;
				rerr(R, "unhashable type: '%s'", jv_typename(k));
			}
			jd_set(&R->a, d, k, v);
		}
		return mk_dict(d);
	}
	case N_GETATTR: {
		jv o = eval(R, S, n->a);
		R->line = n->line;
		return get_attr(R, o, n->name);
	}
	case N_GETITEM: {
		jv o = eval(R, S, n->a);
		jv k = eval(R, S, n->b);
		R->line = n->line;
		return get_item(R, o, k);
	}
	case N_SLICE: {
		jv o = eval(R, S, n->a);
		jv b = n->b ? eval(R, S, n->b) : missing();
		jv c = n->c ? eval(R, S, n->c) : missing();
		jv d = n->d ? eval(R, S, n->d) : missing();
		R->line = n->line;
		return get_slice(R, o, b, c, d);
	}
	case N_CALL: {
		jv f = eval(R, S, n->a);
		cargs c = eval_args(R, S, n);
		return call_value(R, f, &c);
	}
	case N_FILTER: {
		jv v = eval(R, S, n->a);
		cargs c = eval_args(R, S, n);
		return do_filter(R, n->fid, v, &c);
	}
	case N_TEST: {
		jv v = eval(R, S, n->a);
		cargs c = eval_args(R, S, n);
		int r = run_test(R, n->fid, v, &c);
		return jv_bool(n->op ? !r : r);
	}
	case N_NOT:
		return jv_bool(!jv_truthy(eval(R, S, n->a)));
	case N_NEG:
	case N_POS: {
		jv v = eval(R, S, n->a);
		R->line = n->line;
		if (v.type == JV_UNDEF)
			undef_fail(R, v);
		if (!jv_isnum(v))
			rerr(R, "bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+',
			     jv_typename(v));
		if (n->kind == N_POS)
			return v.type == JV_BOOL ? jv_int(v.u.i) : v;
		if (v.type == JV_FLOAT)
			return jv_float(-v.u.f);
		if (v.u.i == INT64_MIN)
			rerr(R, "integer overflow");
		return jv_int(-v.u.i);
	}
	case N_BINOP: {
		jv a = eval(R, S, n->a);
		jv b = eval(R, S, n->b);
		R->line = n->line;
		if (n->op == OP_TILDE) {
			jbuf o = { 0 };
			jv_str_to(&R->a, &o, a);
			jv_str_to(&R->a, &o, b);
			check_size(R, o.n);
			return buf_str(&o, 0);
		}
		return arith(R, n->op, a, b);
	}
	case N_AND: {
		jv l = eval(R, S, n->a);
		return jv_truthy(l) ? eval(R, S, n->b) : l;
	}
	case N_OR: {
		jv l = eval(R, S, n->a);
		return jv_truthy(l) ? l : eval(R, S, n->b);
	}
	case N_COMPARE: {
		jv l = eval(R, S, n->a);
		for (size_t i = 0; i < n->nkids; i++) {
			jv r = eval(R, S, n->kids[i]);
			R->line = n->line;
			if (!compare(R, n->ops[i], l, r))
				return jv_bool(0);
			l = r;
		}
		return jv_bool(1);
	}
	case N_COND:
		if (jv_truthy(eval(R, S, n->a)))
			return eval(R, S, n->b);
		if (n->c)
			return eval(R, S, n->c);
		return mk_undef(R, "the inline if-expression on line %d evaluated to false "
			       "and no else section was defined", n->line);
	default:
		rerr(R, "internal error: statement in an expression");
	}
}

/* ---- statements ---- */

static void out_value(rctx *R, jv v)
{
	if (v.type == JV_UNDEF)
		return;
	jv_str_to(&R->a, R->out, v);
	if (R->out->n > R->max_output)
		rerr(R, "output exceeds %zu bytes", R->max_output);
}

static void assign(rctx *R, scope *S, const jnode *target, jv v)
{
	if (target->kind == N_NAME) {
		scope_set(R, S, target->name, v);
		return;
	}
	if (target->kind == N_GETATTR) {
		jv *ns = scope_find(S, target->a->name);
		if (!ns || ns->type != JV_NS)
			rerr(R, "cannot assign attribute on non-namespace object");
		jd_set(&R->a, ns->u.d, cstr(target->name), v);
		return;
	}
	jlist *items = iter_list(R, v);
	if (items->n != target->nkids)
		rerr(R, "%s values to unpack (expected %zu, got %zu)",
		     items->n > target->nkids ? "too many" : "not enough", target->nkids,
		     items->n);
	for (size_t i = 0; i < target->nkids; i++)
		assign(R, S, target->kids[i], items->v[i]);
}

static int exec_for(rctx *R, scope *S, const jnode *n)
{
	jlist *items = iter_list(R, eval(R, S, n->b));
	if (n->c) {
		scope *fs = scope_new(R, S);
		jlist *kept = list_new(R, items->n);
		size_t k = 0;
		for (size_t i = 0; i < items->n; i++) {
			step(R);
			fs->n = 0;
			assign(R, fs, n->a, items->v[i]);
			if (jv_truthy(eval(R, fs, n->c)))
				kept->v[k++] = items->v[i];
		}
		kept->n = k;
		items = kept;
	}
	if (!items->n) {
		if (n->d)
			return exec_body(R, scope_new(R, S), n->d->kids, n->d->nkids);
		return FLOW_NEXT;
	}
	jloop *L = ja_alloc(&R->a, sizeof *L);
	L->items = items;
	jv lv = { .type = JV_LOOP };
	lv.u.loop = L;
	scope *is = scope_new(R, S);
	for (size_t i = 0; i < items->n; i++) {
		step(R);
		if (is->captured)
			is = scope_new(R, S);
		is->n = 0;
		L->i = i;
		R->line = n->line;
		scope_set(R, is, "loop", lv);
		assign(R, is, n->a, items->v[i]);
		if (exec_body(R, is, n->kids, n->nkids) == FLOW_BREAK)
			break;
	}
	return FLOW_NEXT;
}

static int exec_node(rctx *R, scope *S, const jnode *n)
{
	step(R);
	R->line = n->line;
	switch (n->kind) {
	case N_DATA:
		if (R->out->n + n->val.u.s.n > R->max_output)
			rerr(R, "output exceeds %zu bytes", R->max_output);
		jb_put(&R->a, R->out, n->val.u.s.p, n->val.u.s.n);
		return FLOW_NEXT;
	case N_OUTPUT:
		out_value(R, eval(R, S, n->a));
		return FLOW_NEXT;
	case N_BODY:
		return exec_body(R, S, n->kids, n->nkids);
	case N_IF:
		while (n) {
			if (n->kind != N_IF)
				return exec_body(R, S, n->kids, n->nkids);
			R->line = n->line;
			if (jv_truthy(eval(R, S, n->a)))
				return exec_body(R, S, n->kids, n->nkids);
			n = n->b;
		}
		return FLOW_NEXT;
	case N_FOR:
		return exec_for(R, S, n);
	case N_SET: {
		jv v = eval(R, S, n->b);
		R->line = n->line;
		assign(R, S, n->a, v);
		return FLOW_NEXT;
	}
	case N_SETBLOCK: {
		jv v = capture(R, scope_new(R, S), n->kids, n->nkids);
		if (n->c)
			v = filter_chain(R, S, n->c, v);
		R->line = n->line;
		assign(R, S, n->a, v);
		return FLOW_NEXT;
	}
	case N_FILTERBLOCK: {
		jv v = capture(R, scope_new(R, S), n->kids, n->nkids);
		out_value(R, filter_chain(R, S, n->c, v));
		return FLOW_NEXT;
	}
	case N_MACRO: {
		jmacro *m = ja_alloc(&R->a, sizeof *m);
		m->node = n;
		m->scope = S;
		S->captured = 1;
		jv v = { .type = JV_MACRO };
		v.u.m = m;
		scope_set(R, S, n->name, v);
		return FLOW_NEXT;
	}
	case N_WITH: {
		scope *w = scope_new(R, S);
		jv *vals = ja_alloc(&R->a, (n->nkw + 1) * sizeof *vals);
		for (size_t i = 0; i < n->nkw; i++)
			vals[i] = eval(R, S, n->kw[i]);
		for (size_t i = 0; i < n->nkw; i++)
			scope_set(R, w, n->kwnames[i], vals[i]);
		return exec_body(R, w, n->kids, n->nkids);
	}
	case N_BREAK:
		return FLOW_BREAK;
	case N_CONTINUE:
		return FLOW_CONTINUE;
	default:
		rerr(R, "internal error: expression as a statement");
	}
}

static int exec_body(rctx *R, scope *S, jnode *const *kids, size_t nkids)
{
	for (size_t i = 0; i < nkids; i++) {
		int f = exec_node(R, S, kids[i]);
		if (f != FLOW_NEXT)
			return f;
	}
	return FLOW_NEXT;
}

/* ---- entry points ---- */

int jinja_render_opts(const jinja_tmpl *t, const json_t *ctx,
		      const jinja_opts *opts, char **out, size_t *outlen,
		      slm_err *err)
{
	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (ctx && !json_is_object(ctx))
		return slm_seterr(err, EX_DATAERR, "template context is not a JSON object");
	rctx *R = calloc(1, sizeof *R);
	if (!R)
		return slm_seterr(err, EX_OSERR, "out of memory");
	jinja_opts o = { 0 };
	if (opts)
		o = *opts;
	R->err = err;
	R->a.limit = o.max_memory ? o.max_memory : (size_t)1 << 30;
	R->a.fail = arena_fail;
	R->a.ud = R;
	R->max_output = o.max_output ? o.max_output : (size_t)256 << 20;
	R->max_depth = o.max_depth > 0 ? o.max_depth : 100;
	R->max_steps = o.max_steps ? o.max_steps : 100000000;
	if (o.now) {
		R->now = *o.now;
	} else {
		time_t now = time(NULL);
		localtime_r(&now, &R->now);
	}
	if (setjmp(R->jb)) {
		ja_free(&R->a);
		free(R);
		return -1;
	}
	scope *cs = scope_new(R, NULL);
	if (ctx) {
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)ctx, key, val)
			scope_set(R, cs, ja_strndup(&R->a, key, strlen(key)),
				  from_json(R, val, 0));
	}
	jbuf buf = { 0 };
	R->out = &buf;
	exec_body(R, scope_new(R, cs), t->root->kids, t->root->nkids);
	char *res = malloc(buf.n + 1);
	if (!res) {
		ja_free(&R->a);
		free(R);
		return slm_seterr(err, EX_OSERR, "out of memory");
	}
	if (buf.n)
		memcpy(res, buf.p, buf.n);
	res[buf.n] = 0;
	*out = res;
	if (outlen)
		*outlen = buf.n;
	ja_free(&R->a);
	free(R);
	return 0;
}

int jinja_render(const jinja_tmpl *t, const json_t *ctx, char **out,
		 size_t *outlen, slm_err *err)
{
	return jinja_render_opts(t, ctx, NULL, out, outlen, err);
}
