/*
 * tok.c - the tokenizer API: splitting text at special tokens, handing
 * the raw fragments to the model's tokenizer (tok_spm.c, tok_bpe.c,
 * tok_wpm.c), BOS/EOS, and decoding ids back to bytes.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "vocab.h"

/* ---------------------------------------------------------------------
 * Special tokens in the text
 *
 * llama.cpp takes the special tokens longest first and cuts every
 * occurrence of each out of the text fragments still raw, left to right;
 * a token with RSTRIP / LSTRIP also swallows the white space after /
 * before it. Here: a trie walk from each position finds the occurrences
 * of the active special tokens; overlapping occurrences form a component,
 * and each component is resolved on its own, accepting occurrences in
 * llama.cpp's order (token rank, then position) when they do not overlap
 * anything accepted before. Same result, in time linear in the text and
 * the occurrences, and memory bounded by the largest component: one with
 * more than CAND_MAX occurrences (a long run of spaces in a vocabulary
 * with tokens for runs of spaces) is resolved by scanning the component
 * once per token present instead. When some special token strips white
 * space, the stripping can reach into the next component, so the whole
 * text is one component.
 * ------------------------------------------------------------------- */

#define CAND_MAX 65536

typedef struct cand {
	uint32_t rank;  /* index in v->special */
	uint32_t pos;
} cand;

static int cmp_rank_pos(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_pos(const void *a, const void *b)
{
	uint32_t x = ((const cand *)a)->pos, y = ((const cand *)b)->pos;
	return (x > y) - (x < y);
}

static int taken(const uint64_t *bm, size_t i)
{
	return bm[i >> 6] >> (i & 63) & 1;
}

static void take(uint64_t *bm, size_t i)
{
	bm[i >> 6] |= 1ull << (i & 63);
}

/* Is [a, b) free in the bitmap? */
static int span_free(const uint64_t *bm, size_t a, size_t b)
{
	for (size_t i = a; i < b;) {
		if ((i & 63) == 0 && i + 64 <= b) {
			if (bm[i >> 6])
				return 0;
			i += 64;
			continue;
		}
		if (taken(bm, i))
			return 0;
		i++;
	}
	return 1;
}

static int is_space_byte(char c)
{
	return isspace((unsigned char)c) != 0;
}

static int special_active(const tok_vocab *v, int32_t id, unsigned flags)
{
	if (flags & TOK_PARSE_SPECIAL)
		return 1;
	return !(v->tok[id].attr & (TA_CONTROL | TA_UNKNOWN));
}

/* One piece of the partition: raw text [a, b) or token id (a == b). */
typedef struct frag {
	uint32_t a, b;
	int32_t id;
} frag;

typedef struct part {
	const tok_vocab *v;
	const char *text;
	size_t len;
	uint64_t *bm;      /* taken bytes: accepted tokens, stripped space */
	cand *acc;         /* accepted: rank field holds the token id */
	size_t nacc, cacc;
	cand *c;           /* the current component's occurrences */
	size_t nc, cc;
	size_t ncomp;      /* occurrences in the component, stored or not */
	uint8_t *seen;     /* ranks present, for big components */
	uint32_t lo, hi;   /* the component's extent */
} part;

static void accept(part *pt, int32_t id, size_t a)
{
	const tok_vocab *v = pt->v;
	size_t b = a + v->tok[id].len;
	for (size_t j = a; j < b; j++)
		take(pt->bm, j);
	if (pt->nacc == pt->cacc) {
		pt->cacc = pt->cacc ? pt->cacc * 2 : 16;
		pt->acc = slm_xrealloc(pt->acc, pt->cacc * sizeof *pt->acc);
	}
	pt->acc[pt->nacc++] = (cand){ (uint32_t)id, (uint32_t)a };
	uint16_t at = v->tok[id].attr;
	if (at & TA_LSTRIP)
		for (size_t j = a; j > 0 && !taken(pt->bm, j - 1) &&
				   is_space_byte(pt->text[j - 1]); j--)
			take(pt->bm, j - 1);
	if (at & TA_RSTRIP)
		for (size_t j = b; j < pt->len && !taken(pt->bm, j) &&
				   is_space_byte(pt->text[j]); j++)
			take(pt->bm, j);
}

static void resolve(part *pt)
{
	const tok_vocab *v = pt->v;
	if (pt->ncomp <= CAND_MAX) {
		qsort(pt->c, pt->nc, sizeof *pt->c, cmp_rank_pos);
		for (size_t i = 0; i < pt->nc; i++) {
			int32_t id = v->special[pt->c[i].rank];
			if (span_free(pt->bm, pt->c[i].pos, pt->c[i].pos + v->tok[id].len))
				accept(pt, id, pt->c[i].pos);
		}
	} else {
		for (size_t r = 0; r < v->n_special; r++) {
			if (!pt->seen[r])
				continue;
			pt->seen[r] = 0;
			int32_t id = v->special[r];
			const char *t = vocab_text(v, id);
			size_t l = v->tok[id].len;
			for (size_t p = pt->lo; p + l <= pt->hi;) {
				if (!taken(pt->bm, p) && !memcmp(pt->text + p, t, l) &&
				    span_free(pt->bm, p, p + l)) {
					accept(pt, id, p);
					p += l;
				} else {
					p++;
				}
			}
		}
	}
	pt->nc = pt->ncomp = 0;
}

static void add_cand(part *pt, uint32_t rank, size_t p, size_t end)
{
	if (pt->ncomp == 0)
		pt->lo = (uint32_t)p;
	if (end > pt->hi)
		pt->hi = (uint32_t)end;
	pt->ncomp++;
	if (pt->ncomp <= CAND_MAX) {
		if (pt->nc == pt->cc) {
			pt->cc = pt->cc ? pt->cc * 2 : 16;
			pt->c = slm_xrealloc(pt->c, pt->cc * sizeof *pt->c);
		}
		pt->c[pt->nc++] = (cand){ rank, (uint32_t)p };
		return;
	}
	if (!pt->seen) {
		pt->seen = slm_xcalloc(pt->v->n_special, 1);
	}
	if (pt->ncomp == CAND_MAX + 1)
		for (size_t i = 0; i < pt->nc; i++)
			pt->seen[pt->c[i].rank] = 1;
	pt->seen[rank] = 1;
}

/* Partition text into fragments; returns how many (in *out, malloc'd). */
static size_t partition(const tok_vocab *v, const char *text, size_t len,
			unsigned flags, frag **out)
{
	part pt = { .v = v, .text = text, .len = len };
	const uint8_t *s = (const uint8_t *)text;
	int one_component = v->has_strip;
	for (size_t p = 0; v->n_special && p < len; p++) {
		if (pt.ncomp && p >= pt.hi && !one_component)
			resolve(&pt);
		if (!(v->tr_first[s[p] >> 3] >> (s[p] & 7) & 1))
			continue;
		int32_t node = 0;
		for (size_t q = p; q < len; q++) {
			node = vocab_trie_child(v, node, s[q]);
			if (node < 0)
				break;
			int32_t r = v->tr_rank[node];
			if (r < 0 || !special_active(v, v->special[r], flags))
				continue;
			if (!pt.bm)
				pt.bm = slm_xcalloc((len + 63) / 64, sizeof *pt.bm);
			add_cand(&pt, (uint32_t)r, p, q + 1);
		}
	}
	if (pt.ncomp)
		resolve(&pt);
	free(pt.c);
	free(pt.seen);

	if (pt.nacc > 1)
		qsort(pt.acc, pt.nacc, sizeof *pt.acc, cmp_pos);
	frag *f = slm_xmalloc((2 * pt.nacc + 1) * sizeof *f);
	size_t nf = 0, k = 0;
	for (size_t p = 0; p < len;) {
		if (k < pt.nacc && pt.acc[k].pos == p) {
			int32_t id = (int32_t)pt.acc[k++].rank;
			f[nf++] = (frag){ (uint32_t)p, (uint32_t)p, id };
			p += v->tok[id].len;
		} else if (pt.bm && taken(pt.bm, p)) {
			p++; /* stripped white space */
		} else {
			size_t q = p + 1;
			while (q < len && !(pt.bm && taken(pt.bm, q)))
				q++;
			f[nf++] = (frag){ (uint32_t)p, (uint32_t)q, TOK_NULL };
			p = q;
		}
	}
	free(pt.bm);
	free(pt.acc);
	*out = f;
	return nf;
}

/* ---------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------- */

/* SentencePiece input: the optional dummy-prefix space, then the text
 * with every space written as U+2581. */
static void spm_fragment(const tok_vocab *v, const char *text, size_t len,
			 int prefix, char **buf, size_t *cap, tok_ids *out)
{
	size_t spaces = prefix;
	for (size_t i = 0; i < len; i++)
		spaces += text[i] == ' ';
	size_t need = len + prefix + spaces * 2;
	if (need > *cap) {
		*cap = need;
		*buf = slm_xrealloc(*buf, *cap);
	}
	char *o = *buf;
	if (prefix) {
		memcpy(o, "\xe2\x96\x81", 3);
		o += 3;
	}
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ') {
			memcpy(o, "\xe2\x96\x81", 3);
			o += 3;
		} else {
			*o++ = text[i];
		}
	}
	tok_spm_encode(v, *buf, (size_t)(o - *buf), out);
}

int tok_encode(const tok_vocab *v, const char *text, size_t len, unsigned flags,
	       int32_t **ids, size_t *n, slm_err *err)
{
	*ids = NULL;
	*n = 0;
	if (len > UINT32_MAX / 4)
		return slm_seterr(err, EX_DATAERR, "text of %zu bytes is too long to tokenize", len);
	frag *f;
	size_t nf = partition(v, text, len, flags, &f);
	tok_ids out = { 0 };
	int add = (flags & TOK_ADD_SPECIAL) != 0;
	if (add && v->add_bos && v->bos != TOK_NULL)
		tok_ids_push(&out, v->bos);

	tok_pieces pcs = { 0 };
	char *buf = NULL;
	size_t cap = 0;
	int prev_special = 1;
	for (size_t i = 0; i < nf; i++) {
		if (f[i].id != TOK_NULL) {
			tok_ids_push(&out, f[i].id);
			prev_special = 1;
			continue;
		}
		const char *t = text + f[i].a;
		size_t l = f[i].b - f[i].a;
		switch (v->kind) {
		case TOK_SPM:
			spm_fragment(v, t, l, v->add_space_prefix && prev_special,
				     &buf, &cap, &out);
			break;
		case TOK_BPE:
			tok_bpe_encode(v, t, l, &pcs, &out);
			break;
		case TOK_WPM:
			tok_wpm_encode(v, t, l, &out);
			break;
		}
		prev_special = 0;
	}
	free(f);
	free(buf);
	tok_pieces_free(&pcs);
	if (add && v->add_eos && v->eos != TOK_NULL)
		tok_ids_push(&out, v->eos);
	if (add && v->add_sep && v->sep != TOK_NULL)
		tok_ids_push(&out, v->sep);
	if (!out.p)
		out.p = slm_xmalloc(sizeof *out.p);
	*ids = out.p;
	*n = out.n;
	return 0;
}

/* ---------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------- */

/* The byte of a <0xXX> token; -1 if the text is not of that form. */
static int byte_of(const char *t, size_t len)
{
	if (len != 6 || memcmp(t, "<0x", 3) || t[5] != '>')
		return -1;
	int h = slm_hexval(t[3]), l = slm_hexval(t[4]);
	return h < 0 || l < 0 ? -1 : h * 16 + l;
}

/* Append to buf[0..cap) at *o, counting what does not fit. */
static void put(char *buf, size_t cap, size_t *o, const char *s, size_t n)
{
	if (*o < cap)
		memcpy(buf + *o, s, n < cap - *o ? n : cap - *o);
	*o += n;
}

size_t tok_piece(const tok_vocab *v, int32_t id, unsigned flags, char *buf,
		 size_t cap)
{
	if (id < 0 || id >= v->n)
		return 0;
	const tok_entry *t = &v->tok[id];
	uint16_t at = t->attr;
	if ((at & (TA_UNKNOWN | TA_CONTROL)) && !(flags & TOK_SHOW_SPECIAL))
		return 0;
	const char *s = vocab_text(v, id);
	size_t n = t->len, o = 0;
	int lstrip = (flags & TOK_LSTRIP) != 0;

	if (at & (TA_UNKNOWN | TA_CONTROL | TA_USER)) {
		if (lstrip && n && s[0] == ' ') {
			s++;
			n--;
		}
		put(buf, cap, &o, s, n);
		return o;
	}
	if (at & TA_BYTE) {
		int b = byte_of(s, n);
		char c = (char)(b < 0 ? 0 : b);
		if (b < 0)
			return 0;
		if (!(lstrip && c == ' '))
			put(buf, cap, &o, &c, 1);
		return o;
	}
	if (!(at & TA_NORMAL))
		return 0;
	if (v->kind == TOK_BPE) {
		/* undo the byte-to-character mapping */
		for (size_t i = 0; i < n;) {
			size_t k;
			uint32_t cp = tok_utf8_next((const uint8_t *)s + i, n - i, &k);
			int b = cp < sizeof v->chr_byte / sizeof *v->chr_byte ? v->chr_byte[cp] : -1;
			if (b >= 0) {
				char c = (char)b;
				if (!(lstrip && o == 0 && c == ' '))
					put(buf, cap, &o, &c, 1);
			} else {
				put(buf, cap, &o, s + i, k);
			}
			lstrip = 0;
			i += k;
		}
		return o;
	}
	/* SentencePiece and WordPiece: U+2581 stands for a space */
	for (size_t i = 0; i < n;) {
		if (n - i >= 3 && !memcmp(s + i, "\xe2\x96\x81", 3)) {
			if (!(lstrip && o == 0))
				put(buf, cap, &o, " ", 1);
			i += 3;
		} else {
			put(buf, cap, &o, s + i, 1);
			i++;
		}
		lstrip = 0;
	}
	return o;
}

/* Hugging Face's clean_up_tokenization_spaces, as llama.cpp does it. */
static size_t clean_spaces(char *t, size_t n)
{
	size_t o = n ? 1 : 0;
	for (size_t i = 1; i < n; i++) { /* " ?", " !", " .", " ," */
		char x = t[i];
		if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
			o--;
		t[o++] = x;
	}
	n = o;
	o = n ? 1 : 0;
	for (size_t i = 1; i < n; i++) { /* " ' " -> "'" */
		char x = t[i];
		if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
			o--;
			t[++i] = 0;
		}
		t[o++] = x;
	}
	n = o;
	o = n ? 1 : 0;
	for (size_t i = 1; i < n; i++) { /* " 's", " 'm", " 're", " 've" */
		char x = t[i];
		if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
			char x1 = t[i + 1];
			if (x1 == 's' || x1 == 'm')
				o--;
			else if (i + 2 < n && ((x1 == 'r' && t[i + 2] == 'e') ||
					       (x1 == 'v' && t[i + 2] == 'e')))
				o--;
		}
		t[o++] = x;
	}
	return o;
}

int tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, unsigned flags,
	       char **out, size_t *len, slm_err *err)
{
	(void)err;
	int lstrip = v->add_space_prefix;
	if ((flags & TOK_SKIP_SPECIAL) && v->add_bos && n && ids[0] == v->bos) {
		ids++;
		n--;
	}
	if ((flags & TOK_SKIP_SPECIAL) && v->add_eos && n && ids[n - 1] == v->eos)
		n--;
	size_t cap = 64, o = 0;
	char *buf = slm_xmalloc(cap);
	unsigned pf = flags & TOK_SHOW_SPECIAL;
	for (size_t i = 0; i < n; i++) {
		unsigned f = pf | (lstrip ? TOK_LSTRIP : 0);
		size_t k = tok_piece(v, ids[i], f, buf + o, cap - o - 1);
		if (k > cap - o - 1) {
			while (k > cap - o - 1)
				cap *= 2;
			buf = slm_xrealloc(buf, cap);
			tok_piece(v, ids[i], f, buf + o, cap - o - 1);
		}
		o += k;
		/* the dummy prefix follows a leading BOS */
		if (!(i == 0 && ids[i] == v->bos))
			lstrip = 0;
	}
	if ((flags & TOK_CLEAN_SPACES) && v->clean_spaces)
		o = clean_spaces(buf, o);
	buf[o] = 0;
	*out = buf;
	*len = o;
	return 0;
}

/* ---------------------------------------------------------------------
 * Facts
 * ------------------------------------------------------------------- */

int32_t tok_n_vocab(const tok_vocab *v) { return v->n; }
enum tok_kind tok_kind(const tok_vocab *v) { return v->kind; }
const char *tok_model_name(const tok_vocab *v) { return v->model; }
const char *tok_pre_name(const tok_vocab *v) { return v->pre; }
int32_t tok_bos(const tok_vocab *v) { return v->bos; }
int32_t tok_eos(const tok_vocab *v) { return v->eos; }
int32_t tok_eot(const tok_vocab *v) { return v->eot; }
int32_t tok_unk(const tok_vocab *v) { return v->unk; }
int32_t tok_sep(const tok_vocab *v) { return v->sep; }
int32_t tok_pad(const tok_vocab *v) { return v->pad; }
int32_t tok_nl(const tok_vocab *v) { return v->nl; }
int tok_add_bos(const tok_vocab *v) { return v->add_bos; }
int tok_add_eos(const tok_vocab *v) { return v->add_eos; }
int tok_add_sep(const tok_vocab *v) { return v->add_sep; }
int tok_add_space_prefix(const tok_vocab *v) { return v->add_space_prefix; }
int tok_clean_spaces(const tok_vocab *v) { return v->clean_spaces; }

int tok_is_eog(const tok_vocab *v, int32_t id)
{
	size_t lo = 0, hi = v->n_eog;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v->eog[mid] < id)
			lo = mid + 1;
		else if (v->eog[mid] > id)
			hi = mid;
		else
			return 1;
	}
	return 0;
}

int tok_is_control(const tok_vocab *v, int32_t id)
{
	return id >= 0 && id < v->n && (v->tok[id].attr & (TA_CONTROL | TA_UNKNOWN));
}

enum tok_type tok_type_of(const tok_vocab *v, int32_t id)
{
	return id >= 0 && id < v->n ? (enum tok_type)v->tok[id].type : (enum tok_type)0;
}

float tok_score(const tok_vocab *v, int32_t id)
{
	return id >= 0 && id < v->n ? v->tok[id].score : 0.0f;
}

const char *tok_text(const tok_vocab *v, int32_t id, size_t *len)
{
	if (id < 0 || id >= v->n)
		return NULL;
	if (len)
		*len = v->tok[id].len;
	return vocab_text(v, id);
}

int32_t tok_find(const tok_vocab *v, const char *s, size_t len)
{
	int32_t id = vocab_lookup(v, s, len);
	return id < v->n ? id : TOK_NULL;
}
