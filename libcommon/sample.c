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

/* a before b in the candidate order: higher logit, then lower id */
static inline int before(const float *v, int32_t a, int32_t b)
{
	return v[a] > v[b] || (v[a] == v[b] && a < b);
}

/* s->idx[0..k) = the k first ids in that order (unsorted): one pass with a
 * heap of k whose root is the last of them */
static void select_top(slm_sampler *s, const float *v, int k)
{
	int32_t *h = s->idx;
	for (int i = 0; i < s->n_vocab; i++) {
		int j;
		if (i < k) {
			j = i; /* sift up */
			while (j > 0 && before(v, h[(j - 1) / 2], i)) {
				h[j] = h[(j - 1) / 2];
				j = (j - 1) / 2;
			}
			h[j] = i;
			continue;
		}
		if (!before(v, i, h[0]))
			continue;
		j = 0; /* replace the root, sift down */
		for (;;) {
			int c = 2 * j + 1;
			if (c >= k)
				break;
			if (c + 1 < k && before(v, h[c], h[c + 1]))
				c++;
			if (!before(v, i, h[c]))
				break;
			h[j] = h[c];
			j = c;
		}
		h[j] = i;
	}
}

int32_t sampler_sample(slm_sampler *s, float *logits)
{
	const slm_sample_params *p = &s->p;
	int n = s->n_vocab;
	penalize(s, logits);
	if (p->temp <= 0)
		return argmax(logits, n);
	/* candidates: the top-k by logit (ties by id), unsorted */
	int k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
	if (k < n) {
		select_top(s, logits, k);
	} else {
		for (int i = 0; i < n; i++)
			s->idx[i] = i;
	}
	float mx = logits[s->idx[0]];
	for (int i = 1; i < k; i++)
		mx = logits[s->idx[i]] > mx ? logits[s->idx[i]] : mx;
	/* softmax over the candidates (for top-p / min-p, before temperature
	 * as llama.cpp's chain applies temperature last); min-p keeps the
	 * candidates with p >= min_p * p_best, a prefix of the sorted list: only
	 * those need sorting */
	double sum = 0;
	int m = 0;
	for (int i = 0; i < k; i++) {
		int32_t t = s->idx[i];
		float v = expf(logits[t] - mx);
		sum += v;
		if (p->min_p <= 0.0f || v >= (p->min_p < 1.0f ? p->min_p : 1.0f))
			s->idx[m++] = t;
	}
	qsort_r(s->idx, (size_t)m, sizeof *s->idx, cmp_desc, logits);
	for (int i = 0; i < m; i++)
		s->val[i] = expf(logits[s->idx[i]] - mx);
	int keep = m;
	if (p->top_p < 1.0f) {
		double cum = 0;
		for (int i = 0; i < m; i++) {
			cum += s->val[i] / sum;
			if (cum >= p->top_p) {
				keep = i + 1;
				break;
			}
		}
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
