/*
 * jinja_parse.c - jinja_parse(): a template's tokens to a syntax tree,
 * following jinja2's grammar (parser.py) for the statements and
 * expressions of the subset; anything else fails naming the construct.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_int.h"

#define MAX_NEST 200

typedef struct parser {
	jarena *a;
	jtok *t;           /* tokens, ending with TK_EOF */
	size_t i;
	slm_err *err;
	jmp_buf jb;
	int depth;         /* recursion, for MAX_NEST */
	int loops;         /* enclosing for loops (in this macro) */
	jnode *macro;      /* the macro being parsed */
} parser;

__attribute__((noreturn, format(printf, 3, 4)))
static void perr(parser *P, int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	slm_seterr(P->err, EX_DATAERR, "template line %d: %s", line, msg);
	longjmp(P->jb, 1);
}

static jtok *cur(parser *P) { return &P->t[P->i]; }
static jtok *peek(parser *P, size_t k)
{
	size_t j = P->i;
	for (size_t m = 0; m < k && P->t[j].type != TK_EOF; m++)
		j++;
	return &P->t[j];
}
static jtok *next(parser *P)
{
	jtok *t = &P->t[P->i];
	if (t->type != TK_EOF)
		P->i++;
	return t;
}

static const char *op_text(int op)
{
	static const char *names[] = {
		[OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/",
		[OP_FLOORDIV] = "//", [OP_MOD] = "%", [OP_POW] = "**",
		[OP_TILDE] = "~", [OP_LBRACKET] = "[", [OP_RBRACKET] = "]",
		[OP_LPAREN] = "(", [OP_RPAREN] = ")", [OP_LBRACE] = "{",
		[OP_RBRACE] = "}", [OP_EQ] = "==", [OP_NE] = "!=", [OP_GT] = ">",
		[OP_GE] = ">=", [OP_LT] = "<", [OP_LE] = "<=", [OP_ASSIGN] = "=",
		[OP_DOT] = ".", [OP_COLON] = ":", [OP_PIPE] = "|", [OP_COMMA] = ",",
		[OP_SEMICOLON] = ";", [OP_IN] = "in", [OP_NOTIN] = "not in",
	};
	return op > 0 && op <= OP_NOTIN && names[op] ? names[op] : "?";
}

/* A token described for an error message. */
static const char *describe(parser *P, jtok *t)
{
	switch (t->type) {
	case TK_EOF: return "end of template";
	case TK_DATA: return "template text";
	case TK_VAR_BEGIN: return "'{{'";
	case TK_VAR_END: return "end of print statement '}}'";
	case TK_BLOCK_BEGIN: return "'{%'";
	case TK_BLOCK_END: return "end of statement block '%}'";
	case TK_STRING: return "string literal";
	case TK_INT: return "integer";
	case TK_FLOAT: return "float";
	case TK_NAME: {
		size_t n = strlen(t->s) + 3;
		char *s = ja_alloc(P->a, n);
		snprintf(s, n, "'%s'", t->s);
		return s;
	}
	default: {
		char *s = ja_alloc(P->a, 8);
		snprintf(s, 8, "'%s'", op_text(t->op));
		return s;
	}
	}
}

static int is_op(parser *P, int op)
{
	return cur(P)->type == TK_OP && cur(P)->op == op;
}
static int is_name(parser *P, const char *name)
{
	return cur(P)->type == TK_NAME && strcmp(cur(P)->s, name) == 0;
}
static int skip_op(parser *P, int op)
{
	if (!is_op(P, op))
		return 0;
	next(P);
	return 1;
}
static int skip_name(parser *P, const char *name)
{
	if (!is_name(P, name))
		return 0;
	next(P);
	return 1;
}
static void expect_op(parser *P, int op)
{
	if (!skip_op(P, op))
		perr(P, cur(P)->line, "expected '%s', got %s", op_text(op),
		     describe(P, cur(P)));
}
static const char *expect_name(parser *P)
{
	if (cur(P)->type != TK_NAME)
		perr(P, cur(P)->line, "expected a name, got %s", describe(P, cur(P)));
	return next(P)->s;
}
/* A filter's or test's name: name[.name...] */
static const char *expect_dotted_name(parser *P)
{
	const char *name = expect_name(P);
	while (is_op(P, OP_DOT)) {
		next(P);
		const char *more = expect_name(P);
		size_t l = strlen(name) + strlen(more) + 2;
		char *s = ja_alloc(P->a, l);
		snprintf(s, l, "%s.%s", name, more);
		name = s;
	}
	return name;
}
static void expect_type(parser *P, int type, const char *what)
{
	if (cur(P)->type != type)
		perr(P, cur(P)->line, "expected %s, got %s", what, describe(P, cur(P)));
	next(P);
}

static jnode *mk(parser *P, int kind, int line)
{
	jnode *n = ja_alloc(P->a, sizeof *n);
	n->kind = (uint16_t)kind;
	n->line = line;
	return n;
}

/* A growable array of node pointers. */
typedef struct nvec {
	jnode **v;
	size_t n, cap;
} nvec;
static void nv_push(parser *P, nvec *v, jnode *x)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 4;
		v->v = ja_grow(P->a, v->v, v->cap * sizeof *v->v, nc * sizeof *v->v);
		v->cap = nc;
	}
	v->v[v->n++] = x;
}

/* Named nodes: a call's keyword arguments, a macro's parameters (NULL
 * where there is no default), a with block's assignments. */
typedef struct kwvec {
	nvec vals;
	const char **names;
} kwvec;
static void kw_push(parser *P, kwvec *k, const char *name, jnode *x)
{
	size_t cap = k->vals.cap;
	nv_push(P, &k->vals, x);
	if (k->vals.cap != cap)
		k->names = ja_grow(P->a, k->names, cap * sizeof *k->names,
				   k->vals.cap * sizeof *k->names);
	k->names[k->vals.n - 1] = name;
}
static void set_kw(jnode *n, const kwvec *k)
{
	n->kw = k->vals.v;
	n->kwnames = k->names;
	n->nkw = k->vals.n;
}

static void enter(parser *P)
{
	if (++P->depth > MAX_NEST)
		perr(P, cur(P)->line, "template nested too deeply (more than %d levels)",
		     MAX_NEST);
}
static void leave(parser *P) { P->depth--; }

static jnode *parse_expression(parser *P, int with_condexpr);
static jnode *parse_tuple(parser *P, int simplified, int with_condexpr,
			  const char *extra_end, int explicit_parens);
static jnode *parse_primary(parser *P);
static jnode *parse_postfix(parser *P, jnode *node);
static jnode *parse_filter_expr(parser *P, jnode *node);

/* (args, kw) of a call: "(" [expr | name=expr] {"," ...} [","] ")" */
static void parse_call_args(parser *P, jnode *n)
{
	nvec args = { 0 };
	kwvec kw = { 0 };
	expect_op(P, OP_LPAREN);
	int require_comma = 0;
	while (!is_op(P, OP_RPAREN)) {
		if (require_comma) {
			expect_op(P, OP_COMMA);
			if (is_op(P, OP_RPAREN))
				break;
		}
		if (is_op(P, OP_MUL) || is_op(P, OP_POW))
			perr(P, cur(P)->line, "unsupported call syntax '%s' (argument unpacking)",
			     op_text(cur(P)->op));
		if (cur(P)->type == TK_NAME && peek(P, 1)->type == TK_OP &&
		    peek(P, 1)->op == OP_ASSIGN) {
			const char *key = next(P)->s;
			next(P);
			kw_push(P, &kw, key, parse_expression(P, 1));
		} else {
			if (kw.vals.n)
				perr(P, cur(P)->line, "%s",
				     "positional argument follows keyword argument");
			nv_push(P, &args, parse_expression(P, 1));
		}
		require_comma = 1;
	}
	expect_op(P, OP_RPAREN);
	n->kids = args.v;
	n->nkids = args.n;
	set_kw(n, &kw);
}

/* "|" name[.name] [(args)] */
static jnode *parse_filter(parser *P, jnode *node, int start_inline)
{
	while (is_op(P, OP_PIPE) || start_inline) {
		if (!start_inline)
			next(P);
		start_inline = 0;
		int line = cur(P)->line;
		const char *name = expect_dotted_name(P);
		int fid = jinja_filter_id(name);
		if (fid < 0)
			perr(P, line, "unsupported filter '%s'", name);
		jnode *f = mk(P, N_FILTER, line);
		f->a = node;
		f->name = name;
		f->fid = fid;
		if (is_op(P, OP_LPAREN))
			parse_call_args(P, f);
		node = f;
	}
	return node;
}

static jnode *parse_test(parser *P, jnode *node)
{
	int line = next(P)->line; /* "is" */
	int negated = skip_name(P, "not");
	const char *name = expect_dotted_name(P);
	int tid = jinja_test_id(name);
	if (tid < 0)
		perr(P, line, "unsupported test '%s'", name);
	jnode *t = mk(P, N_TEST, line);
	t->a = node;
	t->name = name;
	t->fid = tid;
	t->op = (uint16_t)negated;
	jtok *c = cur(P);
	if (is_op(P, OP_LPAREN)) {
		parse_call_args(P, t);
	} else if ((c->type == TK_NAME || c->type == TK_STRING || c->type == TK_INT ||
		    c->type == TK_FLOAT ||
		    (c->type == TK_OP && (c->op == OP_LPAREN || c->op == OP_LBRACKET ||
					  c->op == OP_LBRACE))) &&
		   !is_name(P, "else") && !is_name(P, "or") && !is_name(P, "and")) {
		if (is_name(P, "is"))
			perr(P, c->line, "%s", "you cannot chain multiple tests with 'is'");
		jnode *arg = parse_postfix(P, parse_primary(P));
		t->kids = ja_alloc(P->a, sizeof *t->kids);
		t->kids[0] = arg;
		t->nkids = 1;
	}
	return t;
}

static jnode *parse_filter_expr(parser *P, jnode *node)
{
	for (;;) {
		if (is_op(P, OP_PIPE)) {
			node = parse_filter(P, node, 0);
		} else if (is_name(P, "is")) {
			node = parse_test(P, node);
		} else if (is_op(P, OP_LPAREN)) {
			jnode *c = mk(P, N_CALL, cur(P)->line);
			c->a = node;
			parse_call_args(P, c);
			node = c;
		} else {
			return node;
		}
	}
}

static jnode *parse_subscribed(parser *P)
{
	int line = cur(P)->line;
	jnode *args[3] = { 0 };
	if (is_op(P, OP_COLON)) {
		next(P);
	} else {
		jnode *e = parse_expression(P, 1);
		if (!is_op(P, OP_COLON))
			return e;
		next(P);
		args[0] = e;
	}
	if (!is_op(P, OP_COLON) && !is_op(P, OP_RBRACKET) && !is_op(P, OP_COMMA))
		args[1] = parse_expression(P, 1);
	if (is_op(P, OP_COLON)) {
		next(P);
		if (!is_op(P, OP_RBRACKET) && !is_op(P, OP_COMMA))
			args[2] = parse_expression(P, 1);
	}
	jnode *s = mk(P, N_SLICE, line);
	s->b = args[0];
	s->c = args[1];
	s->d = args[2];
	return s;
}

static jnode *parse_postfix(parser *P, jnode *node)
{
	for (;;) {
		int line = cur(P)->line;
		if (is_op(P, OP_DOT)) {
			next(P);
			jtok *t = next(P);
			if (t->type == TK_NAME) {
				jnode *g = mk(P, N_GETATTR, line);
				g->a = node;
				g->name = t->s;
				node = g;
			} else if (t->type == TK_INT) {
				jnode *k = mk(P, N_CONST, line);
				k->val = jv_int(t->i);
				jnode *g = mk(P, N_GETITEM, line);
				g->a = node;
				g->b = k;
				node = g;
			} else {
				perr(P, line, "expected a name or number after '.', got %s",
				     describe(P, t));
			}
		} else if (is_op(P, OP_LBRACKET)) {
			next(P);
			nvec args = { 0 };
			while (!is_op(P, OP_RBRACKET)) {
				if (args.n)
					expect_op(P, OP_COMMA);
				nv_push(P, &args, parse_subscribed(P));
			}
			expect_op(P, OP_RBRACKET);
			if (args.n != 1)
				perr(P, line, "%s", "unsupported subscript (not exactly one index)");
			jnode *arg = args.v[0];
			if (arg->kind == N_SLICE) {
				arg->a = node;
				node = arg;
			} else {
				jnode *g = mk(P, N_GETITEM, line);
				g->a = node;
				g->b = arg;
				node = g;
			}
		} else if (is_op(P, OP_LPAREN)) {
			jnode *c = mk(P, N_CALL, line);
			c->a = node;
			parse_call_args(P, c);
			node = c;
		} else {
			return node;
		}
	}
}

static jnode *parse_primary(parser *P)
{
	jtok *t = cur(P);
	jnode *n;
	enter(P);
	switch (t->type) {
	case TK_NAME:
		next(P);
		n = mk(P, N_CONST, t->line);
		if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
			n->val = jv_bool(1);
		} else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
			n->val = jv_bool(0);
		} else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
			n->val = jv_none();
		} else {
			n->kind = N_NAME;
			n->name = t->s;
			if (P->macro && !strcmp(t->s, "varargs"))
				P->macro->op |= MACRO_VARARGS;
			if (P->macro && !strcmp(t->s, "kwargs"))
				P->macro->op |= MACRO_KWARGS;
		}
		break;
	case TK_STRING: {
		next(P);
		n = mk(P, N_CONST, t->line);
		if (cur(P)->type != TK_STRING) {
			n->val = jv_str(t->s, t->n);
			break;
		}
		jbuf b = { 0 };
		jb_put(P->a, &b, t->s, t->n);
		while (cur(P)->type == TK_STRING) {
			jtok *u = next(P);
			jb_put(P->a, &b, u->s, u->n);
		}
		n->val = jv_str(b.p ? b.p : "", b.n);
		break;
	}
	case TK_INT:
		next(P);
		n = mk(P, N_CONST, t->line);
		n->val = jv_int(t->i);
		break;
	case TK_FLOAT:
		next(P);
		n = mk(P, N_CONST, t->line);
		n->val = jv_float(t->f);
		break;
	case TK_OP:
		if (t->op == OP_LPAREN) {
			next(P);
			n = parse_tuple(P, 0, 1, NULL, 1);
			expect_op(P, OP_RPAREN);
			break;
		}
		if (t->op == OP_LBRACKET || t->op == OP_LBRACE) {
			int dict = t->op == OP_LBRACE;
			int close = dict ? OP_RBRACE : OP_RBRACKET;
			nvec items = { 0 };
			next(P);
			while (!is_op(P, close)) {
				if (items.n)
					expect_op(P, OP_COMMA);
				if (is_op(P, close))
					break;
				nv_push(P, &items, parse_expression(P, 1));
				if (dict) {
					expect_op(P, OP_COLON);
					nv_push(P, &items, parse_expression(P, 1));
				}
			}
			expect_op(P, close);
			n = mk(P, dict ? N_DICT : N_LIST, t->line);
			n->kids = items.v;
			n->nkids = items.n;
			break;
		}
		/* fall through */
	default:
		perr(P, t->line, "unexpected %s", describe(P, t));
	}
	leave(P);
	return n;
}

static jnode *parse_unary(parser *P, int with_filter)
{
	jnode *n;
	int line = cur(P)->line;
	enter(P);
	if (is_op(P, OP_SUB) || is_op(P, OP_ADD)) {
		int neg = next(P)->op == OP_SUB;
		n = mk(P, neg ? N_NEG : N_POS, line);
		n->a = parse_unary(P, 0);
	} else {
		n = parse_primary(P);
	}
	n = parse_postfix(P, n);
	if (with_filter)
		n = parse_filter_expr(P, n);
	leave(P);
	return n;
}

static jnode *binop(parser *P, int op, jnode *l, jnode *r, int line)
{
	jnode *n = mk(P, N_BINOP, line);
	n->op = (uint16_t)op;
	n->a = l;
	n->b = r;
	return n;
}

static jnode *parse_pow(parser *P)
{
	jnode *l = parse_unary(P, 1);
	while (is_op(P, OP_POW)) {
		int line = next(P)->line;
		l = binop(P, OP_POW, l, parse_unary(P, 1), line);
	}
	return l;
}

static jnode *parse_math2(parser *P)
{
	jnode *l = parse_pow(P);
	while (is_op(P, OP_MUL) || is_op(P, OP_DIV) || is_op(P, OP_FLOORDIV) ||
	       is_op(P, OP_MOD)) {
		jtok *t = next(P);
		l = binop(P, t->op, l, parse_pow(P), t->line);
	}
	return l;
}

static jnode *parse_concat(parser *P)
{
	jnode *l = parse_math2(P);
	while (is_op(P, OP_TILDE)) {
		int line = next(P)->line;
		l = binop(P, OP_TILDE, l, parse_math2(P), line);
	}
	return l;
}

static jnode *parse_math1(parser *P)
{
	jnode *l = parse_concat(P);
	while (is_op(P, OP_ADD) || is_op(P, OP_SUB)) {
		jtok *t = next(P);
		l = binop(P, t->op, l, parse_concat(P), t->line);
	}
	return l;
}

static jnode *parse_compare(parser *P)
{
	int line = cur(P)->line;
	jnode *first = parse_math1(P);
	nvec rhs = { 0 };
	uint8_t *ops = NULL;
	size_t cap = 0;
	for (;;) {
		int op;
		jtok *t = cur(P);
		if (t->type == TK_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT ||
					 t->op == OP_LE || t->op == OP_GT || t->op == OP_GE)) {
			op = t->op;
			next(P);
		} else if (is_name(P, "in")) {
			op = OP_IN;
			next(P);
		} else if (is_name(P, "not") && peek(P, 1)->type == TK_NAME &&
			   !strcmp(peek(P, 1)->s, "in")) {
			op = OP_NOTIN;
			next(P);
			next(P);
		} else {
			break;
		}
		if (rhs.n == cap) {
			size_t nc = cap ? cap * 2 : 4;
			ops = ja_grow(P->a, ops, cap, nc);
			cap = nc;
		}
		ops[rhs.n] = (uint8_t)op;
		nv_push(P, &rhs, parse_math1(P));
	}
	if (!rhs.n)
		return first;
	jnode *n = mk(P, N_COMPARE, line);
	n->a = first;
	n->kids = rhs.v;
	n->nkids = rhs.n;
	n->ops = ops;
	return n;
}

static jnode *parse_not(parser *P)
{
	if (is_name(P, "not")) {
		int line = next(P)->line;
		enter(P);
		jnode *n = mk(P, N_NOT, line);
		n->a = parse_not(P);
		leave(P);
		return n;
	}
	return parse_compare(P);
}

static jnode *parse_and(parser *P)
{
	jnode *l = parse_not(P);
	while (is_name(P, "and")) {
		int line = next(P)->line;
		jnode *n = mk(P, N_AND, line);
		n->a = l;
		n->b = parse_not(P);
		l = n;
	}
	return l;
}

static jnode *parse_or(parser *P)
{
	jnode *l = parse_and(P);
	while (is_name(P, "or")) {
		int line = next(P)->line;
		jnode *n = mk(P, N_OR, line);
		n->a = l;
		n->b = parse_and(P);
		l = n;
	}
	return l;
}

static jnode *parse_condexpr(parser *P)
{
	int line = cur(P)->line;
	enter(P);
	jnode *e1 = parse_or(P);
	while (skip_name(P, "if")) {
		jnode *n = mk(P, N_COND, line);
		n->a = parse_or(P);
		n->b = e1;
		if (skip_name(P, "else"))
			n->c = parse_condexpr(P);
		e1 = n;
	}
	leave(P);
	return e1;
}

static jnode *parse_expression(parser *P, int with_condexpr)
{
	return with_condexpr ? parse_condexpr(P) : parse_or(P);
}

static int is_tuple_end(parser *P, const char *extra_end)
{
	jtok *t = cur(P);
	if (t->type == TK_VAR_END || t->type == TK_BLOCK_END || t->type == TK_EOF ||
	    (t->type == TK_OP && t->op == OP_RPAREN))
		return 1;
	return extra_end && is_name(P, extra_end);
}

static jnode *parse_tuple(parser *P, int simplified, int with_condexpr,
			  const char *extra_end, int explicit_parens)
{
	int line = cur(P)->line;
	nvec args = { 0 };
	int is_tuple = 0;
	for (;;) {
		if (args.n)
			expect_op(P, OP_COMMA);
		if (is_tuple_end(P, extra_end))
			break;
		nv_push(P, &args, simplified ? parse_primary(P)
					     : parse_expression(P, with_condexpr));
		if (is_op(P, OP_COMMA))
			is_tuple = 1;
		else
			break;
	}
	if (!is_tuple) {
		if (args.n)
			return args.v[0];
		if (!explicit_parens)
			perr(P, cur(P)->line, "expected an expression, got %s",
			     describe(P, cur(P)));
	}
	jnode *n = mk(P, N_TUPLE, line);
	n->kids = args.v;
	n->nkids = args.n;
	return n;
}

static void check_assignable(parser *P, jnode *n)
{
	if (n->kind == N_NAME)
		return;
	if (n->kind == N_TUPLE) {
		for (size_t i = 0; i < n->nkids; i++)
			check_assignable(P, n->kids[i]);
		return;
	}
	perr(P, n->line, "%s", "cannot assign to this expression");
}

static jnode *parse_assign_target(parser *P, int with_namespace,
				  const char *extra_end)
{
	if (with_namespace && cur(P)->type == TK_NAME && peek(P, 1)->type == TK_OP &&
	    peek(P, 1)->op == OP_DOT) {
		int line = cur(P)->line;
		jnode *obj = mk(P, N_NAME, line);
		obj->name = next(P)->s;
		next(P);
		jnode *g = mk(P, N_GETATTR, line);
		g->a = obj;
		g->name = expect_name(P);
		return g;
	}
	jnode *t = parse_tuple(P, 1, 1, extra_end, 0);
	check_assignable(P, t);
	return t;
}

static void expect_block_end(parser *P)
{
	expect_type(P, TK_BLOCK_END, "end of statement block '%}'");
}

/* Parse a body up to one of ends; returns it with the parser on the end
 * tag's name. */
static jnode *parse_body(parser *P, const char *const *ends, const char *opener,
			 int open_line);

static const char *end_name(parser *P)
{
	return next(P)->s;
}

static jnode *parse_for(parser *P, int line)
{
	static const char *const ends1[] = { "endfor", "else", NULL };
	static const char *const ends2[] = { "endfor", NULL };
	jnode *n = mk(P, N_FOR, line);
	n->a = parse_assign_target(P, 0, "in");
	if (!skip_name(P, "in"))
		perr(P, cur(P)->line, "expected 'in', got %s", describe(P, cur(P)));
	n->b = parse_tuple(P, 0, 0, "recursive", 0);
	if (skip_name(P, "if"))
		n->c = parse_expression(P, 1);
	if (is_name(P, "recursive"))
		perr(P, cur(P)->line, "%s", "unsupported: recursive for loops");
	expect_block_end(P);
	P->loops++;
	jnode *body = parse_body(P, ends1, "for", line);
	P->loops--;
	n->kids = body->kids;
	n->nkids = body->nkids;
	if (!strcmp(end_name(P), "else")) {
		expect_block_end(P);
		n->d = parse_body(P, ends2, "for", line);
		next(P);
	}
	expect_block_end(P);
	return n;
}

static jnode *parse_if(parser *P, int line)
{
	static const char *const ends[] = { "elif", "else", "endif", NULL };
	static const char *const ends2[] = { "endif", NULL };
	jnode *n = mk(P, N_IF, line);
	n->a = parse_tuple(P, 0, 0, NULL, 0);
	expect_block_end(P);
	jnode *body = parse_body(P, ends, "if", line);
	n->kids = body->kids;
	n->nkids = body->nkids;
	int eline = cur(P)->line;
	const char *e = end_name(P);
	if (!strcmp(e, "elif")) {
		n->b = parse_if(P, eline);
		return n;
	}
	if (!strcmp(e, "else")) {
		expect_block_end(P);
		n->b = parse_body(P, ends2, "if", line);
		next(P);
	}
	expect_block_end(P);
	return n;
}

static jnode *parse_set(parser *P, int line)
{
	static const char *const ends[] = { "endset", NULL };
	jnode *target = parse_assign_target(P, 1, NULL);
	if (skip_op(P, OP_ASSIGN)) {
		jnode *n = mk(P, N_SET, line);
		n->a = target;
		n->b = parse_tuple(P, 0, 1, NULL, 0);
		expect_block_end(P);
		return n;
	}
	if (target->kind != N_NAME && target->kind != N_GETATTR)
		perr(P, line, "%s", "a block set assigns one name");
	jnode *n = mk(P, N_SETBLOCK, line);
	n->a = target;
	n->c = parse_filter(P, NULL, 0);
	expect_block_end(P);
	jnode *body = parse_body(P, ends, "set", line);
	next(P);
	expect_block_end(P);
	n->kids = body->kids;
	n->nkids = body->nkids;
	return n;
}

static jnode *parse_macro(parser *P, int line)
{
	static const char *const ends[] = { "endmacro", NULL };
	jnode *n = mk(P, N_MACRO, line);
	n->name = expect_name(P);
	kwvec defs = { 0 };
	int have_default = 0;
	expect_op(P, OP_LPAREN);
	while (!is_op(P, OP_RPAREN)) {
		if (defs.vals.n)
			expect_op(P, OP_COMMA);
		const char *pname = expect_name(P);
		jnode *def = NULL;
		if (skip_op(P, OP_ASSIGN)) {
			def = parse_expression(P, 1);
			have_default = 1;
		} else if (have_default) {
			perr(P, cur(P)->line, "%s",
			     "non-default argument follows default argument");
		}
		kw_push(P, &defs, pname, def);
	}
	expect_op(P, OP_RPAREN);
	expect_block_end(P);
	set_kw(n, &defs);
	jnode *saved_macro = P->macro;
	int saved_loops = P->loops;
	P->macro = n;
	P->loops = 0;
	jnode *body = parse_body(P, ends, "macro", line);
	P->macro = saved_macro;
	P->loops = saved_loops;
	next(P);
	expect_block_end(P);
	n->kids = body->kids;
	n->nkids = body->nkids;
	return n;
}

static jnode *parse_with(parser *P, int line)
{
	static const char *const ends[] = { "endwith", NULL };
	jnode *n = mk(P, N_WITH, line);
	kwvec assigns = { 0 };
	while (cur(P)->type != TK_BLOCK_END) {
		if (assigns.vals.n)
			expect_op(P, OP_COMMA);
		const char *name = expect_name(P);
		expect_op(P, OP_ASSIGN);
		kw_push(P, &assigns, name, parse_expression(P, 1));
	}
	expect_block_end(P);
	jnode *body = parse_body(P, ends, "with", line);
	next(P);
	expect_block_end(P);
	set_kw(n, &assigns);
	n->kids = body->kids;
	n->nkids = body->nkids;
	return n;
}

static jnode *parse_statement(parser *P)
{
	jtok *t = cur(P);
	if (t->type != TK_NAME)
		perr(P, t->line, "expected a statement name, got %s", describe(P, t));
	const char *name = t->s;
	int line = t->line;
	next(P);
	jnode *n;
	enter(P);
	if (!strcmp(name, "for")) {
		n = parse_for(P, line);
	} else if (!strcmp(name, "if")) {
		n = parse_if(P, line);
	} else if (!strcmp(name, "set")) {
		n = parse_set(P, line);
	} else if (!strcmp(name, "macro")) {
		n = parse_macro(P, line);
	} else if (!strcmp(name, "with")) {
		n = parse_with(P, line);
	} else if (!strcmp(name, "filter")) {
		static const char *const ends[] = { "endfilter", NULL };
		n = mk(P, N_FILTERBLOCK, line);
		n->c = parse_filter(P, NULL, 1);
		expect_block_end(P);
		jnode *body = parse_body(P, ends, "filter", line);
		next(P);
		expect_block_end(P);
		n->kids = body->kids;
		n->nkids = body->nkids;
	} else if (!strcmp(name, "generation")) {
		/* transformers' {% generation %}: marks assistant text; renders
		 * its body unchanged */
		static const char *const ends[] = { "endgeneration", NULL };
		expect_block_end(P);
		n = parse_body(P, ends, "generation", line);
		next(P);
		expect_block_end(P);
	} else if (!strcmp(name, "break") || !strcmp(name, "continue")) {
		if (!P->loops)
			perr(P, line, "'%s' outside of a for loop", name);
		n = mk(P, name[0] == 'b' ? N_BREAK : N_CONTINUE, line);
		expect_block_end(P);
	} else if (!strcmp(name, "call") || !strcmp(name, "include") ||
		   !strcmp(name, "import") || !strcmp(name, "from") ||
		   !strcmp(name, "extends") || !strcmp(name, "block") ||
		   !strcmp(name, "autoescape") || !strcmp(name, "do") ||
		   !strcmp(name, "trans") || !strcmp(name, "print")) {
		perr(P, line, "unsupported tag '%s'", name);
	} else {
		perr(P, line, "unknown tag '%s'", name);
	}
	leave(P);
	return n;
}

static jnode *parse_body(parser *P, const char *const *ends, const char *opener,
			 int open_line)
{
	nvec body = { 0 };
	jnode *n = mk(P, N_BODY, cur(P)->line);
	for (;;) {
		jtok *t = cur(P);
		switch (t->type) {
		case TK_EOF:
			if (ends) {
				char want[128] = "";
				for (size_t k = 0; ends[k]; k++)
					snprintf(want + strlen(want), sizeof want - strlen(want),
						 "%s'%s'", k ? " or " : "", ends[k]);
				perr(P, open_line,
				     "unexpected end of template: '%s' is never closed (expected %s)",
				     opener, want);
			}
			n->kids = body.v;
			n->nkids = body.n;
			return n;
		case TK_DATA: {
			next(P);
			jnode *d = mk(P, N_DATA, t->line);
			d->val = jv_str(t->s, t->n);
			nv_push(P, &body, d);
			break;
		}
		case TK_VAR_BEGIN: {
			next(P);
			jnode *o = mk(P, N_OUTPUT, t->line);
			o->a = parse_tuple(P, 0, 1, NULL, 0);
			expect_type(P, TK_VAR_END, "end of print statement '}}'");
			nv_push(P, &body, o);
			break;
		}
		case TK_BLOCK_BEGIN: {
			jtok *nm = peek(P, 1);
			if (nm->type == TK_NAME && ends) {
				for (size_t k = 0; ends[k]; k++)
					if (!strcmp(nm->s, ends[k])) {
						next(P);
						n->kids = body.v;
						n->nkids = body.n;
						return n;
					}
			}
			if (nm->type == TK_NAME && (!strncmp(nm->s, "end", 3) ||
						    !strcmp(nm->s, "else") ||
						    !strcmp(nm->s, "elif")))
				perr(P, nm->line, "unexpected tag '%s'%s%s%s", nm->s,
				     opener ? " inside '" : "", opener ? opener : "",
				     opener ? "'" : "");
			next(P);
			nv_push(P, &body, parse_statement(P));
			break;
		}
		default:
			perr(P, t->line, "unexpected %s", describe(P, t));
		}
	}
}

int jinja_parse(jinja_tmpl **tp, const char *src, size_t len, slm_err *err)
{
	*tp = NULL;
	size_t bad;
	if (!ju_valid(src, len, &bad)) {
		int line = 1;
		for (size_t i = 0; i < bad; i++)
			line += src[i] == '\n';
		return slm_seterr(err, EX_DATAERR,
				  "template line %d: invalid UTF-8 at byte %zu", line, bad);
	}
	jinja_tmpl *t = calloc(1, sizeof *t);
	if (!t)
		return slm_seterr(err, EX_OSERR, "out of memory");
	/* newlines: \r\n and \r become \n; one trailing newline goes
	 * (jinja2's keep_trailing_newline=False) */
	char *s = ja_alloc(&t->arena, len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\r') {
			s[n++] = '\n';
			if (i + 1 < len && src[i + 1] == '\n')
				i++;
		} else {
			s[n++] = src[i];
		}
	}
	if (n && s[n - 1] == '\n')
		n--;
	s[n] = 0;

	jtoks toks = { 0 };
	if (jinja_lex(&t->arena, s, n, &toks, err)) {
		jinja_free(t);
		return -1;
	}
	parser P = { .a = &t->arena, .t = toks.v, .err = err };
	if (setjmp(P.jb)) {
		jinja_free(t);
		return -1;
	}
	t->root = parse_body(&P, NULL, NULL, 1);
	*tp = t;
	return 0;
}

void jinja_free(jinja_tmpl *t)
{
	if (!t)
		return;
	ja_free(&t->arena);
	free(t);
}
