/*
 * jinja_int.h - internals shared by the Jinja interpreter's files:
 * jinja_lex.c (source to tokens), jinja_parse.c (tokens to a syntax
 * tree), jinja_eval.c (rendering) and jinja.c (values as Python prints
 * them: str(), repr(), json.dumps(); comparisons; Unicode helpers).
 */
#ifndef SLM_JINJA_INT_H
#define SLM_JINJA_INT_H

#include <setjmp.h>
#include <stdint.h>
#include <stddef.h>

#include "jinja.h"

/* ---- arena: every allocation of a parse or a render, freed at once ---- */

typedef struct ja_chunk ja_chunk;
typedef struct jarena {
	ja_chunk *head;
	size_t total;              /* bytes taken from malloc */
	size_t limit;              /* 0: none */
	/* called (must not return) when over limit or out of memory, and by
	 * the printers on values nested too deeply */
	void (*fail)(void *ud, const char *why);
	void *ud;
} jarena;

void *ja_alloc(jarena *a, size_t n);                /* zeroed, 16-aligned */
void *ja_grow(jarena *a, void *p, size_t oldn, size_t newn);
char *ja_strndup(jarena *a, const char *s, size_t n); /* NUL-terminated */
void ja_free(jarena *a);

/* A growable byte buffer in an arena. */
typedef struct jbuf {
	char *p;
	size_t n, cap;
} jbuf;
void jb_put(jarena *a, jbuf *b, const void *s, size_t n);
void jb_putc(jarena *a, jbuf *b, char c);
void jb_puts(jarena *a, jbuf *b, const char *s);
void jb_printf(jarena *a, jbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- values ---- */

enum jv_type {
	JV_UNDEF,   /* u.s: the message an error about it shows */
	JV_NONE,
	JV_BOOL,    /* u.i: 0 or 1 */
	JV_INT,     /* u.i */
	JV_FLOAT,   /* u.f */
	JV_STR,     /* u.s: UTF-8 bytes, not NUL-terminated */
	JV_LIST,    /* u.l; JVF_TUPLE for a tuple */
	JV_DICT,    /* u.d, insertion-ordered */
	JV_NS,      /* u.d: a namespace() object's attributes (mutable) */
	JV_LOOP,    /* u.loop: the loop variable of a for loop */
	JV_MACRO,   /* u.m */
	JV_FUNC,    /* id: a global function (JF_*) */
	JV_METHOD,  /* u.b: a method bound to a value */
};

#define JVF_MARKUP 1   /* a string marked safe (markupsafe.Markup) */
#define JVF_TUPLE 2    /* a list that is a tuple */
#define JVF_ITER 4     /* a list that is a one-pass iterator (generator) */
#define JVF_VIEW 8     /* a list that is a dict view; id: JVIEW_* */

enum { JVIEW_KEYS = 1, JVIEW_VALUES, JVIEW_ITEMS };

/* How deep values may nest for printing, comparing and hashing. */
#define JV_MAX_DEPTH 1000

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jloop jloop;
typedef struct jmacro jmacro;
typedef struct jbound jbound;

typedef struct jv {
	uint8_t type;
	uint8_t flags;
	uint16_t id;
	union {
		int64_t i;
		double f;
		struct {
			const char *p;
			size_t n;
		} s;
		jlist *l;
		jdict *d;
		jloop *loop;
		jmacro *m;
		jbound *b;
	} u;
} jv;

struct jlist {
	size_t n;
	jv *v;
	int consumed;    /* JVF_ITER: iterated once already */
};

struct jdict {
	size_t n, cap;
	jv *k, *v;
	uint32_t *idx;   /* open-addressed hash index (slot = entry + 1), or NULL */
	size_t icap;
};

struct jbound {
	jv self;
	int method;      /* JM_* */
	const char *name;
};

static inline jv jv_undef(const char *msg)
{
	jv v = { .type = JV_UNDEF };
	v.u.s.p = msg;
	v.u.s.n = msg ? __builtin_strlen(msg) : 0;
	return v;
}
static inline jv jv_none(void) { jv v = { .type = JV_NONE }; return v; }
static inline jv jv_bool(int b) { jv v = { .type = JV_BOOL }; v.u.i = !!b; return v; }
static inline jv jv_int(int64_t i) { jv v = { .type = JV_INT }; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v = { .type = JV_FLOAT }; v.u.f = f; return v; }
static inline jv jv_str(const char *p, size_t n)
{
	jv v = { .type = JV_STR };
	v.u.s.p = p;
	v.u.s.n = n;
	return v;
}
static inline int jv_isnum(jv v)
{
	return v.type == JV_INT || v.type == JV_BOOL || v.type == JV_FLOAT;
}

/* A dict: create, look up (NULL when absent), insert or replace. Keys
 * must be hashable (jv_hashable); lookups of unhashable keys find
 * nothing. */
jdict *jd_new(jarena *a, size_t cap);
jv *jd_get(const jdict *d, jv key);
jv *jd_gets(const jdict *d, const char *key, size_t n);
void jd_set(jarena *a, jdict *d, jv key, jv val);
int jv_hashable(jv v);

/* Python semantics. jv_eq: ==. jv_cmp: <0, 0, >0 for orderable pairs, or
 * JV_CMP_TYPE when Python raises TypeError. */
#define JV_CMP_TYPE 2
int jv_truthy(jv v);
int jv_eq(jv a, jv b);
int jv_cmp(jv a, jv b);
const char *jv_typename(jv v);   /* "str", "int", "dict"... as Python names them */

/* str(), repr(), json.dumps() into a buffer. json returns -1 (with a
 * message in *why) for a value JSON cannot hold. */
void jv_str_to(jarena *a, jbuf *b, jv v);
void jv_repr_to(jarena *a, jbuf *b, jv v);
void jv_float_repr(double f, char out[32]);
typedef struct jjson_opts {
	const char *indent;        /* NULL: no newlines */
	size_t indentn;
	const char *item_sep, *key_sep;
	int ensure_ascii;
	int sort_keys;
} jjson_opts;
int jv_json_to(jarena *a, jbuf *b, jv v, const jjson_opts *o, int level,
	       const char **why);

/* Unicode helpers over UTF-8 (the input is valid UTF-8). */
int ju_decode(const char *s, size_t n, size_t *i);     /* next code point */
int ju_encode(uint32_t c, char out[4]);                /* bytes written */
int ju_isspace(uint32_t c);                            /* str.isspace() */
int ju_isprintable(uint32_t c);                        /* str.isprintable() */
int ju_iscased(uint32_t c);                            /* Cased */
int ju_islower(uint32_t c);                            /* Lowercase */
int ju_isupper(uint32_t c);                            /* Uppercase */
size_t ju_len(const char *s, size_t n);                /* code points */
/* Case mappings into b: str.upper(), .lower(), .title(), .capitalize(),
 * .swapcase(), and the title filter's (words split at [-\s({[<]). */
enum { JCASE_UPPER, JCASE_LOWER, JCASE_TITLE, JCASE_CAPITALIZE,
       JCASE_SWAPCASE, JCASE_JTITLE };
void ju_case_to(jarena *a, jbuf *b, const char *s, size_t n, int mode);
int ju_valid(const char *s, size_t n, size_t *bad);    /* well-formed UTF-8 */

/* ---- tokens and syntax tree ---- */

enum jtok_type {
	TK_EOF, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN,
	TK_BLOCK_END, TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP,
};

/* Operators: TK_OP tokens carry one of these in .op. */
enum jop {
	OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
	OP_TILDE, OP_LBRACKET, OP_RBRACKET, OP_LPAREN, OP_RPAREN, OP_LBRACE,
	OP_RBRACE, OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE, OP_ASSIGN,
	OP_DOT, OP_COLON, OP_PIPE, OP_COMMA, OP_SEMICOLON,
	/* comparison operators only in syntax trees */
	OP_IN, OP_NOTIN,
};

typedef struct jtok {
	uint8_t type;
	uint8_t op;
	int line;
	const char *s;     /* name, string value, data text */
	size_t n;
	int64_t i;
	double f;
} jtok;

typedef struct jtoks {
	jtok *v;
	size_t n, cap;
} jtoks;

/* Tokenize src (already newline-normalized) into toks. Returns 0, or -1
 * with err filled. */
int jinja_lex(jarena *a, const char *src, size_t len, jtoks *toks,
	      slm_err *err);

enum jnode_kind {
	/* expressions */
	N_CONST,    /* val */
	N_NAME,     /* name */
	N_LIST,     /* kids */
	N_TUPLE,    /* kids */
	N_DICT,     /* kids: key, value, key, value... */
	N_GETATTR,  /* a.name */
	N_GETITEM,  /* a[b] */
	N_SLICE,    /* a[b:c:d], any of b, c, d may be NULL */
	N_CALL,     /* a(kids..., kwnames[i]=kw[i]...) */
	N_FILTER,   /* a|name(kids..., kw...); a NULL: the filtered block */
	N_TEST,     /* a is [not] name(kids...); op: 1 if negated */
	N_NOT, N_NEG, N_POS,  /* a */
	N_BINOP,    /* a op b */
	N_AND, N_OR, /* a, b */
	N_COMPARE,  /* a ops[0] kids[0] ops[1] kids[1]... */
	N_COND,     /* b if a else c */
	/* statements */
	N_DATA,     /* val: literal text */
	N_OUTPUT,   /* {{ a }} */
	N_BODY,     /* kids */
	N_IF,       /* if a: kids, else b (N_IF for elif, N_BODY, or NULL) */
	N_FOR,      /* for a in b if c: kids, else d */
	N_SET,      /* a = b; a: N_NAME, N_TUPLE of names, or N_GETATTR */
	N_SETBLOCK, /* a = output of kids, through filter chain c */
	N_MACRO,    /* macro name(kwnames[i]=kw[i]...): kids */
	N_FILTERBLOCK, /* output of kids through filter chain c */
	N_WITH,     /* with kwnames[i] = kw[i]...: kids */
	N_BREAK, N_CONTINUE,
};

typedef struct jnode jnode;
struct jnode {
	uint16_t kind;
	uint16_t op;       /* N_BINOP: OP_*; N_TEST: negated; N_MACRO: flags */
	int line;
	int fid;           /* N_FILTER, N_TEST: filter or test id */
	jnode *a, *b, *c, *d;
	jnode **kids;
	size_t nkids;
	jnode **kw;        /* keyword argument values, macro defaults */
	const char **kwnames;
	size_t nkw;
	uint8_t *ops;      /* N_COMPARE */
	const char *name;
	jv val;
};

#define MACRO_VARARGS 1
#define MACRO_KWARGS 2

struct jinja_tmpl {
	jarena arena;
	jnode *root;       /* N_BODY */
};

/* Filter and test names known to the interpreter: the id (>= 0), -1 if
 * unknown. */
int jinja_filter_id(const char *name);
int jinja_test_id(const char *name);

/* Python's newline set for str.splitlines(). */
int ju_islinebreak(uint32_t c);

#endif
