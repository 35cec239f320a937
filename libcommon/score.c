/*
 * score.c - teacher-forced scoring: batched forward passes over known
 * tokens, and the log-probability of each actual next token.
 */
#include "score.h"

#include "sample.h"

/* Most logit rows held per context and forward call (128 MiB of floats). */
#define SCORE_ROWS_BYTES (128u << 20)

int score_rows_cap(int n_vocab, int max_batch)
{
	long r = (long)(SCORE_ROWS_BYTES / ((size_t)n_vocab * sizeof(float)));
	if (r < 1)
		r = 1;
	return r < max_batch ? (int)r : max_batch;
}

int score_seq_entries(slm_entry *e, const int32_t *tok, int n, int slot, int from, int to)
{
	for (int p = 0; p < n; p++)
		e[p] = (slm_entry){ tok[p], p, slot, p >= from && p < to ? 0 : -1 };
	return n;
}

double score_logprob(const float *row, int n_vocab, int32_t target)
{
	return row[target] - logsumexp(row, n_vocab);
}

void score_run(slm_ctx *const *ctx, float *const *logits, int nctx, slm_entry *e, long n,
	       int max_batch, int max_rows, score_rows_fn fn, void *arg)
{
	long i = 0;
	while (i < n) {
		int k = 0, rows = 0;
		while (i + k < n && k < max_batch) {
			if (e[i + k].logits >= 0) {
				if (rows == max_rows)
					break;
				e[i + k].logits = rows++;
			}
			k++;
		}
		for (int j = 0; j < nctx; j++)
			model_forward(ctx[j], e + i, k, logits[j]);
		fn(arg, e + i, k, logits);
		i += k;
	}
}
