/*
 * tok_pre.c - Unicode helpers and the pre-tokenizers of byte-level BPE:
 * hand-written scanners, one per regex that tokenizer.json files use,
 * each linear in its input. A vocabulary's pre-tokenizer is a list of
 * stages; each stage splits every piece of the previous one into the
 * regex's matches and the gaps between them, as llama.cpp's
 * unicode_regex_split does (and Hugging Face's Split with "Isolated").
 *
 * Character classes follow llama.cpp: \p{L}, \p{N}, \p{P} are the Unicode
 * general categories (from utf8proc), \s is the White_Space property.
 * Classes written as explicit ranges never match a non-ASCII white space
 * character (llama.cpp maps those to U+000B before matching).
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "vocab.h"

/* ---------------------------------------------------------------------
 * Code points
 * ------------------------------------------------------------------- */

static unsigned ascii_flags(uint32_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return CF_L;
	if (c >= '0' && c <= '9')
		return CF_N;
	if (c == ' ')
		return CF_Z | CF_WS;
	if (c >= 9 && c <= 13)
		return CF_C | CF_WS;
	if (c < 32 || c == 127)
		return CF_C;
	if (strchr("$+<=>^`|~", (int)c))
		return CF_S;
	return CF_P;
}

static int is_white_space(uint32_t c)
{
	return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
	       c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

unsigned tok_cp_flags(uint32_t cp)
{
	static uint16_t ascii[128];
	static int ascii_ready;
	if (cp < 128) {
		/* Racing initialisations write identical values. */
		if (!__atomic_load_n(&ascii_ready, __ATOMIC_ACQUIRE)) {
			for (uint32_t c = 0; c < 128; c++)
				ascii[c] = (uint16_t)ascii_flags(c);
			__atomic_store_n(&ascii_ready, 1, __ATOMIC_RELEASE);
		}
		return ascii[cp];
	}
	if (cp > 0x10FFFF)
		return CF_UNDEF;
	unsigned f;
	switch (utf8proc_category((utf8proc_int32_t)cp)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL:
	case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_LO:
		f = CF_L; break;
	case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC:
	case UTF8PROC_CATEGORY_ME:
		f = CF_M; break;
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_NO:
		f = CF_N; break;
	case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD:
	case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
	case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
	case UTF8PROC_CATEGORY_PO:
		f = CF_P; break;
	case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC:
	case UTF8PROC_CATEGORY_SK: case UTF8PROC_CATEGORY_SO:
		f = CF_S; break;
	case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL:
	case UTF8PROC_CATEGORY_ZP:
		f = CF_Z; break;
	case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF:
	case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
		f = CF_C; break;
	default:
		f = CF_UNDEF; break;
	}
	if (is_white_space(cp))
		f |= CF_WS;
	return f;
}

uint32_t tok_utf8_next(const uint8_t *s, size_t n, size_t *len)
{
	uint8_t c = s[0];
	*len = 1;
	if (c < 0x80)
		return c;
	size_t k;
	uint32_t cp;
	if ((c & 0xE0) == 0xC0) {
		k = 2; cp = c & 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		k = 3; cp = c & 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		k = 4; cp = c & 0x07;
	} else {
		return 0xFFFD;
	}
	if (k > n)
		return 0xFFFD;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0xFFFD;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	*len = k;
	return cp;
}

size_t tok_utf8_put(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

size_t tok_utf8_ready(const char *buf, size_t len)
{
	/* Look back at most 3 bytes for a lead byte whose sequence is cut. */
	size_t back = len < 3 ? len : 3;
	for (size_t i = 1; i <= back; i++) {
		uint8_t c = (uint8_t)buf[len - i];
		if ((c & 0xC0) == 0x80)
			continue; /* continuation: keep looking for the lead */
		size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
			    : (c & 0xF8) == 0xF0 ? 4 : 1;
		return need > i ? len - i : len;
	}
	return len;
}

/* ---------------------------------------------------------------------
 * Growable arrays
 * ------------------------------------------------------------------- */

void tok_ids_push(tok_ids *a, int32_t id)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->p = slm_xrealloc(a->p, a->cap * sizeof *a->p);
	}
	a->p[a->n++] = id;
}

void tok_pieces_free(tok_pieces *p)
{
	free(p->end);
	free(p->cp);
	free(p->off);
	free(p->b1);
	free(p->b2);
	free(p->fl);
	free(p->sym);
	free(p->heap);
	free(p->enc);
	memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------------
 * Explicit classes (matched against the code point, never against
 * non-ASCII white space)
 * ------------------------------------------------------------------- */

typedef struct { uint32_t lo, hi; } cp_range;

static const cp_range ds_letters[] = {
	{0x0041, 0x005A}, {0x0061, 0x007A}, {0x00B5, 0x00B5}, {0x00C0, 0x00D6},
	{0x00D8, 0x00F6}, {0x00F8, 0x01BA}, {0x01BC, 0x01BF}, {0x01C4, 0x0293},
	{0x0295, 0x02AF}, {0x0370, 0x0373}, {0x0376, 0x0377}, {0x037B, 0x037D},
	{0x037F, 0x037F}, {0x0386, 0x0386}, {0x0388, 0x038A}, {0x038C, 0x038C},
	{0x038E, 0x03A1}, {0x03A3, 0x03F5}, {0x03F7, 0x0481}, {0x048A, 0x052F},
	{0x0531, 0x0556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD},
	{0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77},
	{0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D}, {0x1F20, 0x1F45},
	{0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
	{0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC},
	{0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3},
	{0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC},
	{0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115},
	{0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128},
	{0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
	{0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B},
	{0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0xA640, 0xA66D},
	{0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E},
	{0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A},
	{0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3},
	{0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2},
	{0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

static const cp_range ds_punct[] = {
	{0x0021, 0x002F}, {0x003A, 0x007E}, {0x2018, 0x201F}, {0x3000, 0x3002},
	{0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
};

static const cp_range cjk[] = {
	{0x0800, 0x4E00}, {0x4E00, 0x9FA5}, {0xAC00, 0xD7FF},
};

static int in_ranges(const cp_range *r, size_t n, uint32_t c)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c > r[mid].hi)
			lo = mid + 1;
		else if (c < r[mid].lo)
			hi = mid;
		else
			return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * Stages. Each scans cp[s..e) and calls out(end) for every match and
 * gap, in order.
 * ------------------------------------------------------------------- */

typedef struct scan {
	const uint32_t *cp;
	const uint16_t *fl;
	uint32_t *out;
	size_t n_out;
	uint32_t prev;
} scan;

static void emit(scan *sc, uint32_t end)
{
	if (end > sc->prev) {
		sc->out[sc->n_out++] = end;
		sc->prev = end;
	}
}

/* Emit the gap before a match at [ms, me) and the match itself. */
static void emit_match(scan *sc, uint32_t ms, uint32_t me)
{
	emit(sc, ms);
	emit(sc, me);
}

static int contraction(const uint32_t *cp, uint32_t pos, uint32_t e, int icase)
{
	if (cp[pos] != '\'' || pos + 1 >= e)
		return 0;
	uint32_t a = cp[pos + 1];
	if (icase && a >= 'A' && a <= 'Z')
		a += 32;
	if (a == 's' || a == 't' || a == 'm' || a == 'd')
		return 2;
	if (pos + 2 >= e)
		return 0;
	uint32_t b = cp[pos + 2];
	if (icase && b >= 'A' && b <= 'Z')
		b += 32;
	if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
		return 3;
	return 0;
}

static void stage_gpt2(scan *sc, uint32_t s, uint32_t e)
{
	const uint32_t *cp = sc->cp;
	const uint16_t *fl = sc->fl;
	uint32_t pos = s;
	while (pos < e) {
		int k = contraction(cp, pos, e, 0);
		if (k) {
			pos += k;
			emit(sc, pos);
			continue;
		}
		uint32_t c = cp[pos];
		unsigned f2 = c == ' ' ? (pos + 1 < e ? fl[pos + 1] : 0) : fl[pos];
		unsigned cls = f2 & CF_L ? CF_L : f2 & CF_N ? CF_N : 0;
		if (cls) {
			pos += c == ' ';
			while (pos < e && (fl[pos] & cls))
				pos++;
			emit(sc, pos);
			continue;
		}
		if (f2 && !(f2 & (CF_WS | CF_L | CF_N))) {
			pos += c == ' ';
			while (pos < e && !(fl[pos] & (CF_WS | CF_L | CF_N)))
				pos++;
			emit(sc, pos);
			continue;
		}
		uint32_t w = pos;
		while (w < e && (fl[w] & CF_WS))
			w++;
		if (w - pos > 1 && w < e)
			pos = w - 1;        /* \s+(?!\S) */
		else if (w > pos)
			pos = w;            /* \s+ */
		else
			pos++;
		emit(sc, pos);
	}
}

/* llama3 (maxd 3) and qwen2 (maxd 1) */
static void stage_llama3(scan *sc, uint32_t s, uint32_t e, uint32_t maxd)
{
	const uint32_t *cp = sc->cp;
	const uint16_t *fl = sc->fl;
	uint32_t pos = s;
	while (pos < e) {
		int k = contraction(cp, pos, e, 1);
		if (k) {
			pos += k;
			emit(sc, pos);
			continue;
		}
		uint32_t c = cp[pos];
		unsigned f = fl[pos];
		/* [^\r\n\p{L}\p{N}]?\p{L}+ */
		if (c != '\r' && c != '\n' && !(f & CF_N) &&
		    ((f & CF_L) || (pos + 1 < e && (fl[pos + 1] & CF_L)))) {
			pos++;
			while (pos < e && (fl[pos] & CF_L))
				pos++;
			emit(sc, pos);
			continue;
		}
		/* \p{N}{1,maxd} */
		if (f & CF_N) {
			uint32_t d = 0;
			while (pos < e && (fl[pos] & CF_N) && d < maxd) {
				pos++;
				d++;
			}
			emit(sc, pos);
			continue;
		}
		/*  ?[^\s\p{L}\p{N}]+[\r\n]* */
		uint32_t q = pos + (c == ' ');
		if (q < e && !(fl[q] & (CF_WS | CF_L | CF_N))) {
			while (q < e && !(fl[q] & (CF_WS | CF_L | CF_N)))
				q++;
			while (q < e && (cp[q] == '\r' || cp[q] == '\n'))
				q++;
			pos = q;
			emit(sc, pos);
			continue;
		}
		/* \s*[\r\n]+ | \s+(?!\S) | \s+ */
		uint32_t w = pos, last_nl = 0;
		while (w < e && (fl[w] & CF_WS)) {
			if (cp[w] == '\r' || cp[w] == '\n')
				last_nl = w + 1;
			w++;
		}
		if (last_nl)
			pos = last_nl;
		else if (w - pos > 1 && w < e)
			pos = w - 1;
		else if (w > pos)
			pos = w;
		else
			pos++;
		emit(sc, pos);
	}
}

/* White space as llama.cpp's std::regex sees it (ASCII isspace, and
 * every non-ASCII White_Space character). */
static int re_space(scan *sc, uint32_t i)
{
	return (sc->fl[i] & CF_WS) != 0;
}

static int ascii_in(uint32_t c, const char *set)
{
	return c && c < 128 && strchr(set, (int)c);
}

/* Explicit-class membership: never non-ASCII white space. */
static int cls_match(int stage, uint32_t c, unsigned f)
{
	if (c >= 128 && (f & CF_WS))
		return 0;
	switch (stage) {
	case PS_DIGIT:
	case PS_DIGITS:
		return (f & CF_N) != 0;
	case PS_ASCII3:
		return c >= '0' && c <= '9';
	case PS_PUNCT:
		return (f & CF_P) || ascii_in(c, "$+<=>^~|");
	case PS_PUNCT_FALCON:
		return (f & CF_P) || ascii_in(c, "$+<=>^~|`");
	case PS_NEWLINE:
		return c == '\r' || c == '\n';
	case PS_WS_LETTERS:
		return (f & CF_L) != 0;
	case PS_WS_PUNCT:
		return (f & CF_P) != 0;
	case PS_CJK:
		return in_ranges(cjk, sizeof cjk / sizeof *cjk, c);
	case PS_DS_LETTERS:
		return in_ranges(ds_letters, sizeof ds_letters / sizeof *ds_letters, c);
	case PS_DS_PUNCT:
		return in_ranges(ds_punct, sizeof ds_punct / sizeof *ds_punct, c);
	case PS_BLOOM:
		return !((f & CF_WS) || ascii_in(c, "(|.,!?)") ||
			 c == 0x2026 || c == 0x3002 || c == 0xFF0C || c == 0x3001 ||
			 c == 0x0964 || c == 0x06D4 || c == 0x060C);
	}
	return 0;
}

/* X, X+ or X{3}, optionally preceded by one white space (\s?X+) or a
 * space ( ?X+). */
static void stage_class(scan *sc, int stage, uint32_t s, uint32_t e)
{
	const uint32_t *cp = sc->cp;
	const uint16_t *fl = sc->fl;
	int opt_ws = stage == PS_WS_LETTERS || stage == PS_WS_PUNCT ||
		     stage == PS_DS_LETTERS || stage == PS_DS_PUNCT;
	int opt_sp = stage == PS_BLOOM;
	int single = stage == PS_DIGIT || stage == PS_NEWLINE;
	int three = stage == PS_ASCII3;
	uint32_t pos = s;
	while (pos < e) {
		uint32_t ms = pos, q = pos;
		if (((opt_ws && re_space(sc, q)) || (opt_sp && cp[q] == ' ')) &&
		    q + 1 < e && cls_match(stage, cp[q + 1], fl[q + 1]))
			q++;
		if (!cls_match(stage, cp[q], fl[q])) {
			pos++;
			continue;
		}
		if (three) {
			if (q + 3 > e || !cls_match(stage, cp[q + 1], fl[q + 1]) ||
			    !cls_match(stage, cp[q + 2], fl[q + 2])) {
				pos++;
				continue;
			}
			q += 3;
		} else if (single) {
			q++;
		} else {
			while (q < e && cls_match(stage, cp[q], fl[q]))
				q++;
		}
		emit_match(sc, ms, q);
		pos = q;
	}
	emit(sc, e);
}

/* \s+$ : the white space that ends the piece */
static void stage_ws_end(scan *sc, uint32_t s, uint32_t e)
{
	uint32_t w = e;
	while (w > s && re_space(sc, w - 1))
		w--;
	emit(sc, w);
	emit(sc, e);
}

/* ---------------------------------------------------------------------
 * Driver
 * ------------------------------------------------------------------- */

static void grow_scratch(tok_pieces *p, size_t n)
{
	if (n <= p->scap)
		return;
	size_t cap = p->scap ? p->scap : 256;
	while (cap < n)
		cap *= 2;
	p->cp = slm_xrealloc(p->cp, cap * sizeof *p->cp);
	p->off = slm_xrealloc(p->off, (cap + 1) * sizeof *p->off);
	p->b1 = slm_xrealloc(p->b1, cap * sizeof *p->b1);
	p->b2 = slm_xrealloc(p->b2, cap * sizeof *p->b2);
	p->fl = slm_xrealloc(p->fl, cap * sizeof *p->fl);
	p->scap = cap;
}

void tok_pretokenize(const tok_vocab *v, const char *text, size_t len,
		     tok_pieces *p)
{
	p->n = 0;
	if (len == 0)
		return;
	grow_scratch(p, len);
	const uint8_t *s = (const uint8_t *)text;
	uint32_t n = 0;
	for (size_t i = 0; i < len;) {
		size_t k;
		uint32_t c = tok_utf8_next(s + i, len - i, &k);
		p->cp[n] = c;
		p->fl[n] = (uint16_t)tok_cp_flags(c);
		p->off[n] = (uint32_t)i;
		n++;
		i += k;
	}
	p->off[n] = (uint32_t)len;

	/* piece ends, in code points */
	uint32_t *cur = p->b1, *nxt = p->b2;
	size_t ncur = 1;
	cur[0] = n;
	for (int st = 0; st < v->n_stages; st++) {
		scan sc = { p->cp, p->fl, nxt, 0, 0 };
		uint32_t start = 0;
		for (size_t i = 0; i < ncur; i++) {
			uint32_t end = cur[i];
			sc.prev = start;
			switch (v->stage[st]) {
			case PS_GPT2:
				stage_gpt2(&sc, start, end);
				break;
			case PS_LLAMA3:
				stage_llama3(&sc, start, end, 3);
				break;
			case PS_QWEN2:
				stage_llama3(&sc, start, end, 1);
				break;
			case PS_WS_END:
				stage_ws_end(&sc, start, end);
				break;
			default:
				stage_class(&sc, v->stage[st], start, end);
				break;
			}
			emit(&sc, end);
			start = end;
		}
		uint32_t *t = cur;
		cur = nxt;
		nxt = t;
		ncur = sc.n_out;
	}

	if (p->cap < ncur) {
		p->cap = ncur;
		p->end = slm_xrealloc(p->end, p->cap * sizeof *p->end);
	}
	for (size_t i = 0; i < ncur; i++)
		p->end[i] = p->off[cur[i]];
	p->n = ncur;
}
