/*
 * tok_bpe.c - byte-level BPE (GPT-2 family): every byte of a
 * pre-tokenized word starts as its own symbol (the token of the
 * character that stands for the byte), then the pair of neighbours with
 * the lowest merge rank is merged, leftmost first on ties, until no pair
 * has a merge. Symbols form a linked list and candidate pairs sit in a
 * binary heap, so a word of n bytes costs O(n log n) whatever its shape.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_heap.h"
#include "vocab.h"

typedef struct bsym {
	int32_t id;     /* token or virtual string; TOK_NULL: byte without a token */
	int32_t prev, next;
	uint32_t off, len; /* bytes of the word */
} bsym;

typedef struct bpair {
	int32_t rank;
	int32_t left;
	int32_t lid, rid, res;
} bpair;

static int pair_before(const bpair *a, const bpair *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

TOK_HEAP(heap, bpair, pair_before)

static void try_pair(const tok_vocab *v, const bsym *s, heap *q, int32_t l, int32_t r)
{
	if (l < 0 || r < 0 || s[l].id == TOK_NULL || s[r].id == TOK_NULL)
		return;
	int32_t res;
	int32_t rank = vocab_merge(v, s[l].id, s[r].id, &res);
	if (rank < 0)
		return;
	heap_push(q, (bpair){ rank, l, s[l].id, s[r].id, res });
}

static void emit_symbol(const tok_vocab *v, const uint8_t *w, const bsym *s,
			tok_ids *out)
{
	if (s->id != TOK_NULL && s->id < v->n) {
		tok_ids_push(out, s->id);
		return;
	}
	/* not a token (a malformed vocabulary): its bytes one by one */
	for (uint32_t i = 0; i < s->len; i++)
		if (v->byte_tok[w[s->off + i]] != TOK_NULL)
			tok_ids_push(out, v->byte_tok[w[s->off + i]]);
}

static void bpe_word(const tok_vocab *v, const uint8_t *w, size_t n,
		     tok_pieces *pcs, tok_ids *out)
{
	if (n == 1) {
		bsym one = { v->byte_tok[w[0]], -1, -1, 0, 1 };
		emit_symbol(v, w, &one, out);
		return;
	}
	if (pcs->sym_cap < n) {
		pcs->sym_cap = n;
		pcs->sym = slm_xrealloc(pcs->sym, n * sizeof(bsym));
	}
	bsym *s = pcs->sym;
	for (size_t i = 0; i < n; i++)
		s[i] = (bsym){ v->byte_tok[w[i]], (int32_t)i - 1,
			       i + 1 < n ? (int32_t)i + 1 : -1, (uint32_t)i, 1 };
	heap q = { pcs->heap, 0, pcs->heap_cap };
	for (size_t i = 1; i < n; i++)
		try_pair(v, s, &q, (int32_t)i - 1, (int32_t)i);
	while (q.n) {
		bpair p = heap_pop(&q);
		bsym *l = &s[p.left];
		if (l->len == 0 || l->id != p.lid || l->next < 0)
			continue;
		bsym *r = &s[l->next];
		if (r->id != p.rid)
			continue;
		l->id = p.res;
		l->len += r->len;
		r->len = 0;
		l->next = r->next;
		if (r->next >= 0)
			s[r->next].prev = p.left;
		try_pair(v, s, &q, l->prev, p.left);
		try_pair(v, s, &q, p.left, l->next);
	}
	pcs->heap = q.h;
	pcs->heap_cap = q.cap;
	for (int32_t i = 0; i >= 0; i = s[i].next)
		emit_symbol(v, w, &s[i], out);
}

void tok_bpe_encode(const tok_vocab *v, const char *text, size_t len,
		    tok_pieces *pcs, tok_ids *out)
{
	tok_pretokenize(v, text, len, pcs);
	size_t start = 0;
	for (size_t i = 0; i < pcs->n; i++) {
		size_t end = pcs->end[i];
		const uint8_t *w = (const uint8_t *)text + start;
		size_t n = end - start;
		start = end;
		if (v->ignore_merges) {
			/* a word that is a token as a whole is that token */
			if (pcs->enc_cap < 2 * n) {
				pcs->enc_cap = 2 * n;
				pcs->enc = slm_xrealloc(pcs->enc, pcs->enc_cap);
			}
			size_t o = 0;
			for (size_t j = 0; j < n; j++) {
				memcpy(pcs->enc + o, v->byte_chr[w[j]], v->byte_chr_len[w[j]]);
				o += v->byte_chr_len[w[j]];
			}
			int32_t id = vocab_lookup(v, pcs->enc, o);
			if (id != TOK_NULL && id < v->n) {
				tok_ids_push(out, id);
				continue;
			}
		}
		bpe_word(v, w, n, pcs, out);
	}
}
