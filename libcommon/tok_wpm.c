/*
 * tok_wpm.c - WordPiece (BERT): normalise (drop control characters,
 * optionally lowercase and strip accents after NFD), split at white space
 * and around punctuation and CJK ideographs, then cover each word
 * greedily with the longest vocabulary entries. llama.cpp's converter
 * stores word-initial pieces with a leading U+2581 and continuation
 * pieces ("##x") bare, so a word is matched as "\u2581word". A word that
 * cannot be covered, or longer than 100 characters (Hugging Face's
 * max_input_chars_per_word), becomes the unknown token.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "vocab.h"

#define WPM_MAX_WORD_CHARS 100

static int is_chinese_char(uint32_t c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
	       (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
	       (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

typedef struct wbuf {
	char *p;
	size_t n, cap;
} wbuf;

static void wb_put(wbuf *b, const char *s, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 16;
		b->p = slm_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

/* Cover "\u2581" + word with the longest pieces. */
static void wpm_word(const tok_vocab *v, const char *word, size_t wl,
		     size_t nchars, wbuf *tmp, tok_ids *out)
{
	tmp->n = 0;
	wb_put(tmp, "\xe2\x96\x81", 3);
	wb_put(tmp, word, wl);
	const char *w = tmp->p;
	size_t n = tmp->n, mark = out->n;
	if (nchars <= WPM_MAX_WORD_CHARS) {
		for (size_t i = 0; i < n;) {
			size_t j = i + v->max_token_len < n ? i + v->max_token_len : n;
			int32_t id = TOK_NULL;
			for (; j > i; j--)
				if ((id = vocab_lookup(v, w + i, j - i)) != TOK_NULL && id < v->n)
					break;
			if (j == i) {
				out->n = mark;
				break;
			}
			tok_ids_push(out, id);
			i = j;
		}
	}
	if (out->n == mark && v->unk != TOK_NULL)
		tok_ids_push(out, v->unk);
}

void tok_wpm_encode(const tok_vocab *v, const char *text, size_t len,
		    tok_ids *out)
{
	wbuf word = { 0 }, tmp = { 0 };
	size_t nchars = 0;
	const uint8_t *s = (const uint8_t *)text;
	for (size_t i = 0; i < len;) {
		size_t k;
		uint32_t c0 = tok_utf8_next(s + i, len - i, &k);
		i += k;
		utf8proc_int32_t dec[32];
		utf8proc_ssize_t nd = 1;
		dec[0] = (utf8proc_int32_t)c0;
		if (v->strip_accents) {
			int last = 0;
			nd = utf8proc_decompose_char((utf8proc_int32_t)c0, dec, 32,
						     UTF8PROC_DECOMPOSE, &last);
			if (nd < 1 || nd > 32) {
				nd = 1;
				dec[0] = (utf8proc_int32_t)c0;
			}
		}
		for (utf8proc_ssize_t d = 0; d < nd; d++) {
			uint32_t c = (uint32_t)dec[d];
			unsigned f = tok_cp_flags(c);
			if (f & CF_WS) {
				if (word.n)
					wpm_word(v, word.p, word.n, nchars, &tmp, out);
				word.n = nchars = 0;
				continue;
			}
			if (c == 0 || c == 0xFFFD || (f & CF_C))
				continue;
			if (v->strip_accents && (f & CF_M))
				continue;
			if (v->lowercase)
				c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
			char u[4];
			size_t ul = tok_utf8_put(c, u);
			if ((f & CF_P) || (c < 0x7F && (f & CF_S)) || is_chinese_char(c)) {
				if (word.n)
					wpm_word(v, word.p, word.n, nchars, &tmp, out);
				wpm_word(v, u, ul, 1, &tmp, out);
				word.n = nchars = 0;
			} else {
				wb_put(&word, u, ul);
				nchars++;
			}
		}
	}
	if (word.n)
		wpm_word(v, word.p, word.n, nchars, &tmp, out);
	free(word.p);
	free(tmp.p);
}
