/*
 * sample.c - the sampling chain, in llama.cpp's default order: penalties,
 * top-k, top-p, min-p, temperature, then a draw from the distribution.
 */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct slm_sampler {
	slm_sample_params p;
	int n_vocab;
	uint64_t rng[4];
	int32_t *hist;
	int nhist, hpos;
	int32_t *idx;      /* candidates */
	float *val;
	int *count;        /* per-token count within the window (penalties) */
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t next_u64(uint64_t *s)
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

slm_sampler *sampler_new(const slm_sample_params *p, int n_vocab, uint64_t stream)
{
	slm_sampler *s = slm_xcalloc(1, sizeof *s);
	s->p = *p;
	s->n_vocab = n_vocab;
	uint64_t x = p->seed ^ (stream * 0xd1342543de82ef95ull);
	for (int i = 0; i < 4; i++)
		s->rng[i] = splitmix(&x);
	s->nhist = p->repeat_last_n > 0 ? p->repeat_last_n : 0;
	s->hist = slm_xcalloc((size_t)s->nhist + 1, sizeof *s->hist);
	for (int i = 0; i < s->nhist; i++)
		s->hist[i] = -1;
	s->idx = slm_xmalloc((size_t)n_vocab * sizeof *s->idx);
	s->val = slm_xmalloc((size_t)n_vocab * sizeof *s->val);
	s->count = slm_xcalloc((size_t)n_vocab, sizeof *s->count);
	return s;
}

void sampler_free(slm_sampler *s)
{
	if (!s)
		return;
	free(s->hist);
	free(s->idx);
	free(s->val);
	free(s->count);
	free(s);
}

void sampler_accept(slm_sampler *s, int32_t tok)
{
	if (s->nhist == 0 || tok < 0 || tok >= s->n_vocab)
		return;
	int32_t old = s->hist[s->hpos];
	if (old >= 0)
		s->count[old]--;
	s->hist[s->hpos] = tok;
	s->count[tok]++;
	s->hpos = (s->hpos + 1) % s->nhist;
}

static void penalize(slm_sampler *s, float *logits)
{
	const slm_sample_params *p = &s->p;
	if (s->nhist == 0 || (p->repeat_penalty == 1.0f && p->freq_penalty == 0.0f &&
			      p->presence_penalty == 0.0f))
		return;
	for (int i = 0; i < s->nhist; i++) {
		int32_t t = s->hist[i];
		if (t < 0 || s->count[t] == 0)
			continue;
		/* each distinct token once: mark by negating the count */
		int c = s->count[t];
		if (c < 0)
			continue;
		float l = logits[t];
		if (p->repeat_penalty != 1.0f)
			l = l <= 0 ? l * p->repeat_penalty : l / p->repeat_penalty;
		l -= (float)c * p->freq_penalty + (c > 0 ? p->presence_penalty : 0);
		logits[t] = l;
		s->count[t] = -c;
	}
	for (int i = 0; i < s->nhist; i++) {
		int32_t t = s->hist[i];
		if (t >= 0 && s->count[t] < 0)
			s->count[t] = -s->count[t];
	}
}

static int argmax(const float *x, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

/* descending by value, ties by id */
static int cmp_desc(const void *a, const void *b, void *ctx)
{
	const float *v = ctx;
	int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
	if (v[i] > v[j])
		return -1;
	if (v[i] < v[j])
		return 1;
	return i < j ? -1 : i > j;
}

int32_t sampler_sample(slm_sampler *s, float *logits)
{
	const slm_sample_params *p = &s->p;
	int n = s->n_vocab;
	penalize(s, logits);
	if (p->temp <= 0)
		return argmax(logits, n);
	/* candidates sorted by logit, cut by top-k */
	int k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
	for (int i = 0; i < n; i++)
		s->idx[i] = i;
	if (k < n) {
		/* partial selection: nth_element-like via quickselect */
		int lo = 0, hi = n - 1;
		while (lo < hi) {
			float pivot = logits[s->idx[(lo + hi) / 2]];
			int i = lo, j = hi;
			while (i <= j) {
				while (logits[s->idx[i]] > pivot)
					i++;
				while (logits[s->idx[j]] < pivot)
					j--;
				if (i <= j) {
					int32_t t = s->idx[i];
					s->idx[i] = s->idx[j];
					s->idx[j] = t;
					i++;
					j--;
				}
			}
			if (k - 1 <= j)
				hi = j;
			else if (k - 1 >= i)
				lo = i;
			else
				break;
		}
	}
	qsort_r(s->idx, (size_t)k, sizeof *s->idx, cmp_desc, logits);
	/* softmax over candidates (for top-p / min-p, before temperature as
	 * llama.cpp's chain applies temperature last) */
	float mx = logits[s->idx[0]];
	double sum = 0;
	for (int i = 0; i < k; i++) {
		s->val[i] = expf(logits[s->idx[i]] - mx);
		sum += s->val[i];
	}
	int keep = k;
	if (p->top_p < 1.0f) {
		double cum = 0;
		for (int i = 0; i < k; i++) {
			cum += s->val[i] / sum;
			if (cum >= p->top_p) {
				keep = i + 1;
				break;
			}
		}
	}
	if (p->min_p > 0.0f) {
		float thr = p->min_p * s->val[0]; /* relative to the best */
		int i = 1;
		while (i < keep && s->val[i] >= thr)
			i++;
		keep = i;
	}
	/* temperature, then draw */
	sum = 0;
	for (int i = 0; i < keep; i++) {
		s->val[i] = expf((logits[s->idx[i]] - mx) / p->temp);
		sum += s->val[i];
	}
	double r = (double)(next_u64(s->rng) >> 11) * (1.0 / 9007199254740992.0) * sum;
	double acc = 0;
	for (int i = 0; i < keep; i++) {
		acc += s->val[i];
		if (r < acc)
			return s->idx[i];
	}
	return s->idx[keep - 1];
}

double logsumexp(const float *x, int n)
{
	float mx = x[argmax(x, n)];
	double s = 0;
	for (int i = 0; i < n; i++)
		s += exp((double)x[i] - mx);
	return mx + log(s);
}

void top_logprobs(const float *logits, int n, int k, int32_t *ids, float *lp)
{
	double lse = logsumexp(logits, n);
	for (int j = 0; j < k; j++)
		ids[j] = -1;
	for (int i = 0; i < n; i++) {
		if (ids[k - 1] >= 0 && logits[i] <= logits[ids[k - 1]])
			continue;
		int j = k - 1;
		while (j > 0 && (ids[j - 1] < 0 || logits[i] > logits[ids[j - 1]])) {
			ids[j] = ids[j - 1];
			j--;
		}
		ids[j] = i;
	}
	for (int j = 0; j < k; j++)
		lp[j] = ids[j] >= 0 ? (float)(logits[ids[j]] - lse) : -INFINITY;
}
