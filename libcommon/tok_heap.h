/*
 * tok_heap.h - the binary heap of candidate merges that byte-level BPE
 * (tok_bpe.c) and SentencePiece (tok_spm.c) keep their neighbour pairs in.
 * TOK_HEAP(name, type, before) defines the heap type `name` (a zeroed one
 * is empty; h may also be a buffer kept from an earlier use, with its cap)
 * and name_push / name_pop, with `before(a, b)` true when *a comes out
 * first. Internal to libcommon.
 */
#ifndef SLM_TOK_HEAP_H
#define SLM_TOK_HEAP_H

#include <stddef.h>

#include "util.h"

#define TOK_HEAP(name, type, before)                                          \
	typedef struct name {                                                 \
		type *h;                                                      \
		size_t n, cap;                                                \
	} name;                                                               \
                                                                              \
	static void name##_push(name *q, type p)                              \
	{                                                                     \
		if (q->n == q->cap) {                                         \
			q->cap = q->cap ? q->cap * 2 : 64;                    \
			q->h = slm_xrealloc(q->h, q->cap * sizeof *q->h);     \
		}                                                             \
		size_t i = q->n++;                                            \
		while (i > 0) {                                               \
			size_t up = (i - 1) / 2;                              \
			if (!before(&p, &q->h[up]))                           \
				break;                                        \
			q->h[i] = q->h[up];                                   \
			i = up;                                               \
		}                                                             \
		q->h[i] = p;                                                  \
	}                                                                     \
                                                                              \
	static type name##_pop(name *q)                                       \
	{                                                                     \
		type top = q->h[0], last = q->h[--q->n];                      \
		size_t i = 0;                                                 \
		for (;;) {                                                    \
			size_t c = 2 * i + 1;                                 \
			if (c >= q->n)                                        \
				break;                                        \
			if (c + 1 < q->n && before(&q->h[c + 1], &q->h[c]))   \
				c++;                                          \
			if (!before(&q->h[c], &last))                         \
				break;                                        \
			q->h[i] = q->h[c];                                    \
			i = c;                                                \
		}                                                             \
		if (q->n)                                                     \
			q->h[i] = last;                                       \
		return top;                                                   \
	}

#endif
