/*
 * tok_spm.c - SentencePiece BPE as llama.cpp runs it: the text (spaces
 * already written as U+2581) starts as one symbol per UTF-8 character;
 * repeatedly the neighbouring pair whose concatenation is the token with
 * the highest score (leftmost on ties) is merged. Symbols that are not
 * tokens in the end fall back to <0xXX> byte tokens. Linked list plus
 * binary heap: O(n log n).
 */
#include <stdlib.h>
#include <string.h>

#include "tok_heap.h"
#include "vocab.h"

typedef struct ssym {
	int32_t prev, next;
	uint32_t off, len;
} ssym;

typedef struct spair {
	float score;
	int32_t left, right;
	uint32_t size;
} spair;

static int spair_before(const spair *a, const spair *b)
{
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

TOK_HEAP(sheap, spair, spair_before)

static void try_pair(const tok_vocab *v, const char *text, const ssym *s,
		     sheap *q, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return;
	uint32_t size = s[l].len + s[r].len;
	if (size > v->max_token_len)
		return;
	int32_t id = vocab_lookup(v, text + s[l].off, size);
	if (id == TOK_NULL || id >= v->n)
		return;
	sheap_push(q, (spair){ v->tok[id].score, l, r, size });
}

void tok_spm_encode(const tok_vocab *v, const char *text, size_t len,
		    tok_ids *out)
{
	if (len == 0)
		return;
	ssym *s = slm_xmalloc(len * sizeof *s);
	int32_t n = 0;
	for (size_t off = 0; off < len;) {
		size_t k = tok_utf8_len((uint8_t)text[off]);
		if (k > len - off)
			k = len - off;
		s[n] = (ssym){ n - 1, off + k < len ? n + 1 : -1, (uint32_t)off, (uint32_t)k };
		n++;
		off += k;
	}
	sheap q = { 0 };
	for (int32_t i = 1; i < n; i++)
		try_pair(v, text, s, &q, i - 1, i);
	while (q.n) {
		spair p = sheap_pop(&q);
		ssym *l = &s[p.left], *r = &s[p.right];
		if (l->len == 0 || r->len == 0 || l->len + r->len != p.size)
			continue;
		l->len += r->len;
		r->len = 0;
		l->next = r->next;
		if (r->next >= 0)
			s[r->next].prev = p.left;
		try_pair(v, text, s, &q, l->prev, p.left);
		try_pair(v, text, s, &q, p.left, l->next);
	}
	free(q.h);
	for (int32_t i = 0; i >= 0; i = s[i].next) {
		int32_t id = vocab_lookup(v, text + s[i].off, s[i].len);
		if (id != TOK_NULL && id < v->n) {
			tok_ids_push(out, id);
			continue;
		}
		for (uint32_t j = 0; j < s[i].len; j++) {
			int32_t b = v->byte_tok[(uint8_t)text[s[i].off + j]];
			if (b == TOK_NULL)
				b = v->unk;
			if (b != TOK_NULL)
				tok_ids_push(out, b);
		}
	}
	free(s);
}
