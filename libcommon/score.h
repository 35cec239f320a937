/*
 * score.h - teacher-forced scoring: the tokens of known sequences run
 * through the model in batched forward passes, and the log-probability
 * the model gave each actual next token. slm-perf (ppl, mc) and
 * slm-gen --score share it, so their figures agree to the bit.
 */
#ifndef SLM_SCORE_H
#define SLM_SCORE_H

#include <stdint.h>

#include "model.h"

/* Logit rows to hold for forward calls of up to max_batch entries: as many
 * as fit in 128 MiB of floats, at least one, at most max_batch. */
int score_rows_cap(int n_vocab, int max_batch);

/* The entries of one sequence: tok[0..n) at positions 0..n-1 of slot,
 * those at positions from <= p < to wanting logits (score_run numbers the
 * rows). Returns n, the entries written. */
int score_seq_entries(slm_entry *e, const int32_t *tok, int n, int slot, int from, int to);

/* The log-probability of target under a row of logits (log-softmax):
 * row[target] - logsumexp(row), in double. */
double score_logprob(const float *row, int n_vocab, int32_t target);

/* Called after each forward call with the call's entries (logits rows
 * renumbered 0, 1, ...) and the logits of each context. */
typedef void (*score_rows_fn)(void *arg, const slm_entry *e, int n, float *const *logits);

/* Run e[0..n) through each of nctx contexts (the same entries each, e.g. a
 * model and a reference), in forward calls of at most max_batch entries
 * and max_rows logit rows; logits[i] holds max_rows rows for ctx[i]. The
 * entries' logits fields are renumbered per call. */
void score_run(slm_ctx *const *ctx, float *const *logits, int nctx, slm_entry *e, long n,
	       int max_batch, int max_rows, score_rows_fn fn, void *arg);

#endif
