/*
 * jinja_lex.c - the Jinja template lexer: text, {{ }}, {% %}, {# #} and
 * {% raw %}, with jinja2's whitespace control exactly (trim_blocks and
 * lstrip_blocks on, "-" and "+" modifiers), then the tokens inside tags:
 * names, Python string literals, numbers, operators.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_int.h"

typedef struct lexer {
	jarena *a;
	const char *s;
	size_t n;
	size_t pos;
	int line;
	int line_starting;   /* the last match ended with a newline */
	jtoks *toks;
	slm_err *err;
} lexer;

static jtok *push(lexer *L, int type, int line)
{
	jtoks *t = L->toks;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		t->v = ja_grow(L->a, t->v, t->cap * sizeof *t->v,
			       ncap * sizeof *t->v);
		t->cap = ncap;
	}
	jtok *k = &t->v[t->n++];
	memset(k, 0, sizeof *k);
	k->type = type;
	k->line = line;
	return k;
}

static int count_nl(const char *s, size_t n)
{
	int c = 0;
	for (size_t i = 0; i < n; i++)
		c += s[i] == '\n';
	return c;
}

/* Length of the Unicode whitespace run (Python's \s) at s[i..n). */
static size_t space_run(const char *s, size_t n, size_t i)
{
	size_t j = i;
	while (j < n) {
		size_t k = j;
		int c = ju_decode(s, n, &k);
		if (!ju_isspace((uint32_t)c))
			break;
		j = k;
	}
	return j - i;
}

/* Length of text after str.rstrip() (Unicode whitespace). */
static size_t rstrip_len(const char *s, size_t n)
{
	size_t end = 0, i = 0;
	while (i < n) {
		size_t k = i;
		int c = ju_decode(s, n, &k);
		if (!ju_isspace((uint32_t)c))
			end = k;
		i = k;
	}
	return end;
}

/* Emit the text before a tag, whitespace-controlled by the tag's sign. */
static void emit_text(lexer *L, const char *text, size_t len, int sign,
		      int is_var)
{
	if (sign == '-') {
		len = rstrip_len(text, len);
	} else if (sign != '+' && !is_var) {
		size_t l_pos = 0;
		for (size_t i = len; i > 0; i--)
			if (text[i - 1] == '\n') {
				l_pos = i;
				break;
			}
		if (l_pos > 0 || L->line_starting) {
			size_t i = l_pos;
			while (i < len && (text[i] == ' ' || text[i] == '\t'))
				i++;
			if (i == len)
				len = l_pos;
		}
	}
	if (len) {
		jtok *t = push(L, TK_DATA, L->line);
		t->s = text;
		t->n = len;
	}
}

static int fail(lexer *L, int line, const char *fmt, const char *arg)
{
	char msg[256];
	snprintf(msg, sizeof msg, fmt, arg);
	return slm_seterr(L->err, EX_DATAERR, "template line %d: %s", line,
			  msg);
}

/* Match "raw" directive after "{%" (and sign) at p: returns the position
 * after it, or 0. */
static size_t match_raw_begin(lexer *L, size_t p)
{
	const char *s = L->s;
	size_t n = L->n;
	p += space_run(s, n, p);
	if (n - p < 3 || memcmp(s + p, "raw", 3) != 0)
		return 0;
	p += 3;
	p += space_run(s, n, p);
	if (p + 3 <= n && s[p] == '-' && s[p + 1] == '%' && s[p + 2] == '}') {
		p += 3;
		return p + space_run(s, n, p);
	}
	if (p + 2 <= n && s[p] == '%' && s[p + 1] == '}')
		return p + 2;
	return 0;
}

/* Block end at p: "+%}", "-%}\s*" or "%}\n?"; returns the length or 0. */
static size_t match_block_end(lexer *L, size_t p)
{
	const char *s = L->s;
	size_t n = L->n;
	if (p + 3 <= n && s[p] == '+' && s[p + 1] == '%' && s[p + 2] == '}')
		return 3;
	if (p + 3 <= n && s[p] == '-' && s[p + 1] == '%' && s[p + 2] == '}')
		return 3 + space_run(s, n, p + 3);
	if (p + 2 <= n && s[p] == '%' && s[p + 1] == '}')
		return p + 2 < n && s[p + 2] == '\n' ? 3 : 2;
	return 0;
}

static int lex_raw(lexer *L, size_t after, int open_line)
{
	const char *s = L->s;
	size_t n = L->n;
	L->line += count_nl(s + L->pos, after - L->pos);
	L->pos = after;
	L->line_starting = after > 0 && s[after - 1] == '\n';
	for (size_t i = after; i + 1 < n; i++) {
		if (s[i] != '{' || s[i + 1] != '%')
			continue;
		size_t p = i + 2;
		int sign = 0;
		if (p < n && (s[p] == '-' || s[p] == '+'))
			sign = s[p++];
		p += space_run(s, n, p);
		if (n - p < 6 || memcmp(s + p, "endraw", 6) != 0)
			continue;
		p += 6;
		p += space_run(s, n, p);
		size_t e = match_block_end(L, p);
		if (!e)
			continue;
		emit_text(L, s + after, i - after, sign, 0);
		L->line += count_nl(s + after, p + e - after);
		L->pos = p + e;
		L->line_starting = s[p + e - 1] == '\n';
		return 0;
	}
	return fail(L, open_line, "%s", "missing end of raw directive");
}

static int lex_comment(lexer *L, int open_line)
{
	const char *s = L->s;
	size_t n = L->n;
	for (size_t i = L->pos; i + 1 < n; i++) {
		size_t end = 0;
		if ((s[i] == '+' || s[i] == '-') && i + 2 < n && s[i + 1] == '#' &&
		    s[i + 2] == '}') {
			end = i + 3;
			if (s[i] == '-')
				end += space_run(s, n, end);
		} else if (s[i] == '#' && s[i + 1] == '}') {
			end = i + 2;
			if (end < n && s[end] == '\n')
				end++;
		}
		if (!end)
			continue;
		L->line += count_nl(s + L->pos, end - L->pos);
		L->pos = end;
		L->line_starting = s[end - 1] == '\n';
		return 0;
	}
	return fail(L, open_line, "%s", "missing end of comment tag '#}'");
}

/* Decode a Python string literal body the way jinja2 does
 * (backslashreplace, then unicode-escape). */
static int lex_string(lexer *L, const char *b, size_t n, jtok *t)
{
	jbuf out = { 0 };
	size_t i = 0;
	while (i < n) {
		if (b[i] != '\\') {
			jb_putc(L->a, &out, b[i++]);
			continue;
		}
		if (i + 1 >= n) {
			jb_putc(L->a, &out, '\\');
			i++;
			continue;
		}
		unsigned char e = (unsigned char)b[i + 1];
		i += 2;
		uint32_t cp;
		int nd;
		switch (e) {
		case '\n': continue;
		case '\\': jb_putc(L->a, &out, '\\'); continue;
		case '\'': jb_putc(L->a, &out, '\''); continue;
		case '"': jb_putc(L->a, &out, '"'); continue;
		case 'a': jb_putc(L->a, &out, '\a'); continue;
		case 'b': jb_putc(L->a, &out, '\b'); continue;
		case 'f': jb_putc(L->a, &out, '\f'); continue;
		case 'n': jb_putc(L->a, &out, '\n'); continue;
		case 'r': jb_putc(L->a, &out, '\r'); continue;
		case 't': jb_putc(L->a, &out, '\t'); continue;
		case 'v': jb_putc(L->a, &out, '\v'); continue;
		case '0': case '1': case '2': case '3':
		case '4': case '5': case '6': case '7':
			cp = e - '0';
			for (int k = 0; k < 2 && i < n && b[i] >= '0' && b[i] <= '7'; k++)
				cp = cp * 8 + (uint32_t)(b[i++] - '0');
			goto put;
		case 'N':
			return fail(L, L->line, "%s",
				    "unsupported escape \\N{...} (named character) in a string literal");
		case 'x': nd = 2; goto hex;
		case 'u': nd = 4; goto hex;
		case 'U': nd = 8; goto hex;
		default:
			if (e >= 0x80) {
				/* backslashreplace turned the character into an
				 * escape of its own, whose backslash this one
				 * escapes: "\é" is "\\xe9" */
				size_t k = i - 1;
				int c = ju_decode(b, n, &k);
				char esc[16];
				if (c < 0x100)
					snprintf(esc, sizeof esc, "\\x%02x", c);
				else if (c < 0x10000)
					snprintf(esc, sizeof esc, "\\u%04x", c);
				else
					snprintf(esc, sizeof esc, "\\U%08x", c);
				jb_puts(L->a, &out, esc);
				i = k;
				continue;
			}
			jb_putc(L->a, &out, '\\');
			jb_putc(L->a, &out, (char)e);
			continue;
		}
hex:
		cp = 0;
		for (int k = 0; k < nd; k++) {
			int h = i < n ? slm_hexval((unsigned char)b[i]) : -1;
			if (h < 0)
				return fail(L, L->line, "truncated \\%s escape in a string literal",
					    nd == 2 ? "xXX" : nd == 4 ? "uXXXX" : "UXXXXXXXX");
			cp = cp * 16 + (uint32_t)h;
			i++;
		}
put:
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return fail(L, L->line, "%s",
				    "string literal escape is not a Unicode scalar value");
		{
			char u[4];
			jb_put(L->a, &out, u, (size_t)ju_encode(cp, u));
		}
	}
	t->s = out.p ? out.p : "";
	t->n = out.n;
	return 0;
}

static int isdig(int c) { return c >= '0' && c <= '9'; }

/* Digits with single underscores between them ((\d+_)*\d+); 0 if none. */
static size_t digits_(const char *s, size_t n, size_t p)
{
	size_t q = p;
	if (q >= n || !isdig(s[q]))
		return 0;
	while (q < n && isdig(s[q])) {
		q++;
		if (q + 1 < n && s[q] == '_' && isdig(s[q + 1]))
			q++;
	}
	return q - p;
}

static char *strip_us(jarena *a, const char *s, size_t n)
{
	char *r = ja_alloc(a, n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '_')
			r[k++] = s[i];
	r[k] = 0;
	return r;
}

/* Number at p: a float or an integer token; returns its length or 0. */
static size_t lex_number(lexer *L, size_t p, jtok **out)
{
	const char *s = L->s;
	size_t n = L->n;
	size_t d = digits_(s, n, p);
	if (!d)
		return 0;
	/* float: (?<!\.)digits((\.digits)?e[+-]?digits|\.digits) */
	if (!(p > 0 && s[p - 1] == '.')) {
		size_t q = p + d, frac = 0;
		if (q < n && s[q] == '.' && (frac = digits_(s, n, q + 1)))
			q += 1 + frac;
		size_t ex = 0;
		if (q < n && (s[q] == 'e' || s[q] == 'E')) {
			size_t r = q + 1;
			if (r < n && (s[r] == '+' || s[r] == '-'))
				r++;
			size_t ed = digits_(s, n, r);
			if (ed)
				ex = r + ed - q;
		}
		if (frac || ex) {
			q += ex;
			jtok *t = push(L, TK_FLOAT, L->line);
			t->f = strtod(strip_us(L->a, s + p, q - p), NULL);
			*out = t;
			return q - p;
		}
	}
	/* integer: 0b.., 0o.., 0x.., [1-9](_?\d)*, 0(_?0)* */
	size_t q = p;
	int base = 10;
	if (s[p] == '0' && p + 2 < n && strchr("bBoOxX", s[p + 1])) {
		base = (s[p + 1] | 0x20) == 'b' ? 2 : (s[p + 1] | 0x20) == 'o' ? 8 : 16;
		size_t r = p + 2, k = 0;
		for (;;) {
			size_t t0 = r;
			if (t0 < n && s[t0] == '_')
				t0++;
			int h = t0 < n ? slm_hexval((unsigned char)s[t0]) : -1;
			if (h < 0 || h >= base)
				break;
			r = t0 + 1;
			k++;
		}
		if (k)
			q = r;
		else
			base = 10;
	}
	if (base == 10) {
		if (s[p] == '0') {
			q = p + 1;
			while (q < n && (s[q] == '0' ||
					 (s[q] == '_' && q + 1 < n && s[q + 1] == '0')))
				q += s[q] == '_' ? 2 : 1;
		} else {
			q = p + d;
		}
	}
	char *txt = strip_us(L->a, s + p + (base == 10 ? 0 : 2),
			     q - p - (base == 10 ? 0 : 2));
	errno = 0;
	char *end;
	unsigned long long v = strtoull(txt, &end, base);
	if (errno || v > INT64_MAX) {
		fail(L, L->line, "%s", "integer literal too large");
		return (size_t)-1;
	}
	jtok *t = push(L, TK_INT, L->line);
	t->i = (int64_t)v;
	*out = t;
	return q - p;
}

static const struct {
	const char *s;
	int op;
} ops[] = {
	{ "//", OP_FLOORDIV }, { "**", OP_POW }, { "==", OP_EQ },
	{ "!=", OP_NE }, { ">=", OP_GE }, { "<=", OP_LE },
	{ "+", OP_ADD }, { "-", OP_SUB }, { "/", OP_DIV }, { "*", OP_MUL },
	{ "%", OP_MOD }, { "~", OP_TILDE }, { "[", OP_LBRACKET },
	{ "]", OP_RBRACKET }, { "(", OP_LPAREN }, { ")", OP_RPAREN },
	{ "{", OP_LBRACE }, { "}", OP_RBRACE }, { "<", OP_LT }, { ">", OP_GT },
	{ "=", OP_ASSIGN }, { ".", OP_DOT }, { ":", OP_COLON },
	{ "|", OP_PIPE }, { ",", OP_COMMA }, { ";", OP_SEMICOLON },
};

/* Tokens inside {{ }} or {% %} up to the closing delimiter. */
static int lex_tag(lexer *L, int is_var, int open_line)
{
	const char *s = L->s;
	size_t n = L->n;
	char stack[256];
	size_t depth = 0;
	for (;;) {
		size_t p = L->pos;
		if (p >= n)
			return fail(L, open_line,
				    "unexpected end of template: '%s' is never closed",
				    is_var ? "{{" : "{%");
		if (!depth) {
			size_t e = 0;
			if (is_var) {
				if (p + 3 <= n && s[p] == '-' && s[p + 1] == '}' && s[p + 2] == '}')
					e = 3 + space_run(s, n, p + 3);
				else if (p + 2 <= n && s[p] == '}' && s[p + 1] == '}')
					e = 2;
			} else {
				e = match_block_end(L, p);
			}
			if (e) {
				push(L, is_var ? TK_VAR_END : TK_BLOCK_END, L->line);
				L->line += count_nl(s + p, e);
				L->pos = p + e;
				L->line_starting = s[p + e - 1] == '\n';
				return 0;
			}
		}
		size_t w = space_run(s, n, p);
		if (w) {
			L->line += count_nl(s + p, w);
			L->pos += w;
			continue;
		}
		unsigned char c = (unsigned char)s[p];
		if (isdig(c)) {
			jtok *t = NULL;
			size_t len = lex_number(L, p, &t);
			if (len == (size_t)-1)
				return -1;
			L->pos += len;
			continue;
		}
		if (c == '_' || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
			size_t q = p;
			while (q < n && (s[q] == '_' || isdig(s[q]) ||
					 ((s[q] | 0x20) >= 'a' && (s[q] | 0x20) <= 'z')))
				q++;
			jtok *t = push(L, TK_NAME, L->line);
			t->s = ja_strndup(L->a, s + p, q - p);
			t->n = q - p;
			L->pos = q;
			continue;
		}
		if (c == '\'' || c == '"') {
			size_t q = p + 1;
			while (q < n && s[q] != (char)c) {
				if (s[q] == '\\' && q + 1 < n)
					q++;
				q++;
			}
			if (q >= n)
				return fail(L, L->line, "%s", "unterminated string literal");
			jtok *t = push(L, TK_STRING, L->line);
			if (lex_string(L, s + p + 1, q - p - 1, t))
				return -1;
			L->line += count_nl(s + p, q + 1 - p);
			L->pos = q + 1;
			continue;
		}
		size_t k;
		for (k = 0; k < sizeof ops / sizeof ops[0]; k++) {
			size_t ol = strlen(ops[k].s);
			if (p + ol <= n && memcmp(s + p, ops[k].s, ol) == 0)
				break;
		}
		if (k == sizeof ops / sizeof ops[0]) {
			char ch[8];
			size_t q = p;
			ju_decode(s, n, &q);
			snprintf(ch, sizeof ch, "%.*s", (int)(q - p), s + p);
			return fail(L, L->line, "unexpected character '%s'", ch);
		}
		int op = ops[k].op;
		if (op == OP_LPAREN || op == OP_LBRACKET || op == OP_LBRACE) {
			if (depth == sizeof stack)
				return fail(L, L->line, "%s", "brackets nested too deeply");
			stack[depth++] = op == OP_LPAREN ? ')' : op == OP_LBRACKET ? ']' : '}';
		} else if (op == OP_RPAREN || op == OP_RBRACKET || op == OP_RBRACE) {
			char ch[2] = { s[p], 0 };
			if (!depth || stack[depth - 1] != s[p])
				return fail(L, L->line, "unexpected '%s'", ch);
			depth--;
		}
		jtok *t = push(L, TK_OP, L->line);
		t->op = (uint8_t)op;
		L->pos += strlen(ops[k].s);
	}
}

int jinja_lex(jarena *a, const char *src, size_t len, jtoks *toks,
	      slm_err *err)
{
	lexer L = { .a = a, .s = src, .n = len, .line = 1,
		    .line_starting = 1, .toks = toks, .err = err };
	while (L.pos < len) {
		size_t tag = len;
		for (size_t i = L.pos; i + 1 < len; i++)
			if (src[i] == '{' && (src[i + 1] == '{' || src[i + 1] == '%' ||
					      src[i + 1] == '#')) {
				tag = i;
				break;
			}
		if (tag == len) {
			jtok *t = push(&L, TK_DATA, L.line);
			t->s = src + L.pos;
			t->n = len - L.pos;
			break;
		}
		char kind = src[tag + 1];
		size_t p = tag + 2;
		int sign = 0;
		if (p < len && (src[p] == '-' || src[p] == '+'))
			sign = src[p++];
		size_t raw_end = kind == '%' ? match_raw_begin(&L, p) : 0;
		emit_text(&L, src + L.pos, tag - L.pos, sign, kind == '{');
		L.line += count_nl(src + L.pos, tag - L.pos);
		int open_line = L.line;
		L.line_starting = 0;
		if (raw_end) {
			L.pos = tag;
			if (lex_raw(&L, raw_end, open_line))
				return -1;
			continue;
		}
		L.pos = p;
		if (kind == '#') {
			if (lex_comment(&L, open_line))
				return -1;
			continue;
		}
		push(&L, kind == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, open_line);
		if (lex_tag(&L, kind == '{', open_line))
			return -1;
	}
	push(&L, TK_EOF, L.line);
	return 0;
}
