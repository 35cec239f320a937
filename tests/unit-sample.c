/*
 * unit-sample.c - the sampling chain (libcommon/sample.c) against a plain
 * reference written here from its definition: candidates sorted by logit
 * (ties by id), cut to top-k, softmax over them, top-p (the shortest prefix
 * whose probability reaches top_p), min-p (p >= min_p * p_best), then
 * temperature and a draw. Checked: greedy is the argmax (first on ties);
 * every drawn token is in the reference's kept set; the frequencies of many
 * draws match the reference's probabilities (|observed - expected| <= 5
 * standard deviations per token, for tokens expected 5 times or more);
 * seeds reproduce; streams differ; the repetition penalty moves the pick.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"
#include "unit.h"

static uint64_t rs = 88172645463325252ull;
static double urand(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (double)(rs >> 11) / 9007199254740992.0;
}

static const float *cmp_v;
static int cmp_ref(const void *a, const void *b)
{
	int i = *(const int *)a, j = *(const int *)b;
	if (cmp_v[i] != cmp_v[j])
		return cmp_v[i] > cmp_v[j] ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* The reference distribution: ids[0..return) with probabilities q. */
static int ref_dist(const float *l, int n, const slm_sample_params *p, int *ids, double *q)
{
	for (int i = 0; i < n; i++)
		ids[i] = i;
	cmp_v = l;
	qsort(ids, (size_t)n, sizeof *ids, cmp_ref);
	int k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
	double mx = l[ids[0]], sum = 0;
	for (int i = 0; i < k; i++)
		sum += exp(l[ids[i]] - mx);
	int keep = k;
	if (p->top_p < 1.0f) {
		double cum = 0;
		for (int i = 0; i < k; i++) {
			cum += exp(l[ids[i]] - mx) / sum;
			if (cum >= p->top_p) {
				keep = i + 1;
				break;
			}
		}
	}
	if (p->min_p > 0.0f) {
		int i = 1;
		while (i < keep && exp(l[ids[i]] - mx) >= p->min_p)
			i++;
		keep = i;
	}
	sum = 0;
	for (int i = 0; i < keep; i++)
		sum += q[i] = exp((l[ids[i]] - mx) / p->temp);
	for (int i = 0; i < keep; i++)
		q[i] /= sum;
	return keep;
}

static void check_dist(int n, int top_k, float top_p, float min_p, float temp, int draws)
{
	slm_sample_params p = { .temp = temp, .top_k = top_k, .top_p = top_p, .min_p = min_p,
				.repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 7 };
	float *l = malloc((size_t)n * sizeof *l), *w = malloc((size_t)n * sizeof *w);
	int *ids = malloc((size_t)n * sizeof *ids), *pos = malloc((size_t)n * sizeof *pos);
	double *q = malloc((size_t)n * sizeof *q);
	long *cnt = calloc((size_t)n, sizeof *cnt);
	/* logits spread like a model's, some exactly tied */
	for (int i = 0; i < n; i++)
		l[i] = (float)(6.0 * urand() - 3.0 + (urand() < 0.02 ? 6.0 : 0.0));
	for (int i = 0; i + 1 < n; i += 17)
		l[i + 1] = l[i];
	int keep = ref_dist(l, n, &p, ids, q);
	for (int i = 0; i < n; i++)
		pos[i] = -1;
	for (int i = 0; i < keep; i++)
		pos[ids[i]] = i;
	slm_sampler *s = sampler_new(&p, n, 3);
	int outside = 0;
	for (int d = 0; d < draws; d++) {
		memcpy(w, l, (size_t)n * sizeof *w);
		int32_t t = sampler_sample(s, w);
		if (t < 0 || t >= n || pos[t] < 0)
			outside++;
		else
			cnt[t]++;
	}
	sampler_free(s);
	ok(outside == 0, "n_vocab %d top_k %d top_p %.2f min_p %.2f temp %.1f: every draw in the "
	   "reference's %d candidates (%d outside)", n, top_k, top_p, min_p, temp, keep, outside);
	int bad = 0, tested = 0;
	double worst = 0;
	for (int i = 0; i < keep; i++) {
		double e = q[i] * draws;
		if (e < 5)
			continue;
		tested++;
		double z = fabs((double)cnt[ids[i]] - e) / sqrt(e * (1 - q[i]) + 1e-9);
		worst = z > worst ? z : worst;
		bad += z > 5;
	}
	ok(bad == 0 && tested > 0, "n_vocab %d top_k %d top_p %.2f min_p %.2f temp %.1f: "
	   "frequencies of %d draws match (%d tokens tested, worst %.2f sd)", n, top_k, top_p,
	   min_p, temp, draws, tested, worst);
	free(l);
	free(w);
	free(ids);
	free(pos);
	free(q);
	free(cnt);
}

int main(void)
{
	/* greedy: the argmax, the first of equal maxima */
	{
		float l[6] = { 0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 0.0f };
		slm_sample_params p = { .temp = 0, .repeat_penalty = 1.0f };
		slm_sampler *s = sampler_new(&p, 6, 0);
		is_int(sampler_sample(s, l), 1, "temp 0: the argmax (first of two equal maxima)");
		sampler_free(s);
	}
	/* top-k 1 is greedy whatever the temperature */
	{
		int n = 1000, same = 1;
		float *l = malloc((size_t)n * sizeof *l), *w = malloc((size_t)n * sizeof *w);
		for (int i = 0; i < n; i++)
			l[i] = (float)urand();
		int best = 0;
		for (int i = 1; i < n; i++)
			best = l[i] > l[best] ? i : best;
		slm_sample_params p = { .temp = 5.0f, .top_k = 1, .top_p = 1.0f,
					.repeat_penalty = 1.0f, .seed = 1 };
		slm_sampler *s = sampler_new(&p, n, 0);
		for (int d = 0; d < 200; d++) {
			memcpy(w, l, (size_t)n * sizeof *w);
			same &= sampler_sample(s, w) == best;
		}
		ok(same, "top_k 1, temp 5: always the argmax");
		sampler_free(s);
		free(l);
		free(w);
	}
	/* the chain against the reference */
	check_dist(7, 0, 1.0f, 0.0f, 1.0f, 20000);
	check_dist(1000, 40, 1.0f, 0.0f, 1.0f, 20000);
	check_dist(1000, 40, 0.95f, 0.05f, 0.8f, 20000);
	check_dist(1000, 0, 0.9f, 0.0f, 1.0f, 20000);
	check_dist(1000, 0, 1.0f, 0.05f, 1.5f, 20000);
	check_dist(1000, 0, 0.5f, 0.3f, 0.7f, 20000);
	check_dist(1000, 5, 1.0f, 0.0f, 2.0f, 20000);
	check_dist(1000, 999, 0.95f, 0.0f, 1.0f, 20000);
	check_dist(49152, 40, 0.95f, 0.05f, 0.8f, 4000);
	check_dist(49152, 100, 1.0f, 0.0f, 1.0f, 4000);
	check_dist(49152, 0, 1.0f, 0.1f, 1.0f, 2000);
	/* seeds reproduce, streams differ */
	{
		int n = 5000, same = 1, differ = 0;
		float *l = malloc((size_t)n * sizeof *l), *w = malloc((size_t)n * sizeof *w);
		for (int i = 0; i < n; i++)
			l[i] = (float)(4 * urand());
		slm_sample_params p = { .temp = 1.0f, .top_k = 50, .top_p = 0.95f, .min_p = 0.02f,
					.repeat_penalty = 1.0f, .seed = 42 };
		slm_sampler *a = sampler_new(&p, n, 0), *b = sampler_new(&p, n, 0),
			    *c = sampler_new(&p, n, 1);
		for (int d = 0; d < 100; d++) {
			memcpy(w, l, (size_t)n * sizeof *w);
			int32_t ta = sampler_sample(a, w);
			memcpy(w, l, (size_t)n * sizeof *w);
			int32_t tb = sampler_sample(b, w);
			memcpy(w, l, (size_t)n * sizeof *w);
			int32_t tc = sampler_sample(c, w);
			same &= ta == tb;
			differ += ta != tc;
		}
		ok(same, "the same seed and stream: the same 100 draws");
		ok(differ > 50, "another stream: different draws (%d of 100)", differ);
		sampler_free(a);
		sampler_free(b);
		sampler_free(c);
		free(l);
		free(w);
	}
	/* the repetition penalty: a repeated best token loses to the next */
	{
		float l[4] = { 1.0f, 3.0f, 2.9f, 0.0f }, w[4];
		slm_sample_params p = { .temp = 0, .repeat_penalty = 1.3f, .repeat_last_n = 8 };
		slm_sampler *s = sampler_new(&p, 4, 0);
		memcpy(w, l, sizeof w);
		is_int(sampler_sample(s, w), 1, "penalty: the best before it is seen");
		sampler_accept(s, 1);
		memcpy(w, l, sizeof w);
		is_int(sampler_sample(s, w), 2, "penalty 1.3 on a seen token: 3.0 / 1.3 < 2.9");
		sampler_free(s);
	}
	return done_testing();
}
