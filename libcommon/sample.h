/*
 * sample.h - choosing the next token from logits: repetition, frequency
 * and presence penalties, top-k, top-p, min-p, temperature, and a seeded
 * random draw (greedy when the temperature is 0). One sampler per
 * sequence, so results do not depend on how sequences are batched.
 */
#ifndef SLM_SAMPLE_H
#define SLM_SAMPLE_H

#include <stdint.h>

typedef struct slm_sample_params {
	float temp;            /* <= 0: greedy */
	int top_k;             /* <= 0: off */
	float top_p;           /* >= 1: off */
	float min_p;           /* <= 0: off */
	float repeat_penalty;  /* 1: off */
	int repeat_last_n;     /* tokens looked back for penalties */
	float freq_penalty, presence_penalty;
	uint64_t seed;
} slm_sample_params;

typedef struct slm_sampler slm_sampler;

slm_sampler *sampler_new(const slm_sample_params *p, int n_vocab, uint64_t stream);
void sampler_free(slm_sampler *s);
/* Remember a token (prompt or generated) for the penalties. */
void sampler_accept(slm_sampler *s, int32_t tok);
/* Pick a token; logits are modified. */
int32_t sampler_sample(slm_sampler *s, float *logits);

/* log-softmax helpers for --logprobs and scoring */
double logsumexp(const float *x, int n);
/* The k most likely tokens (ids and log-probabilities), best first. */
void top_logprobs(const float *logits, int n, int k, int32_t *ids, float *lp);

#endif
